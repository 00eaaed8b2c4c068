"""Cytometry samples as a data kind: CellCnn (Arvaniti & Claassen 2017) on FCS files listed in
a sample table.

Training: every sample's cells are read (markers selected by name, arcsinh), multi-cell inputs
are drawn per sample, ``nrun`` restarts with random configurations are trained by the one runner
and the best ``n_best`` form the ensemble (:mod:`biodl.kinds.cells.restarts`). The report
interprets the ensemble on the training samples: the best filters, the cells they select and
the selected cells' marker profile.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from biodl.errors import BiodlInputError
from biodl.io._util import FLOAT_FORMAT, atomic_write_text
from biodl.kinds.base import DataKind, Splits, TrainContext, say_unscaled_targets
from biodl.kinds.cells.io import SampleSet, SampleTable, load_samples, looks_like_fcs, read_sample_table
from biodl.kinds.cells.restarts import (
    CellCnnConfig,
    config_from_options,
    encode_labels,
    member_spec,
    predict_samples,
)
from biodl.options import Option
from biodl.train.checkpoint import RunMeta, data_as

_IO = ("train", "evaluate", "predict")
_NOT_VALID = "CellCnn validates on held-out cells of the training samples"

OPTIONS = (
    Option(
        "data",
        "path",
        None,
        "Sample table (CSV: file, label[, group]); same as --samples.",
        flag="DATA",
        stages=_IO,
    ),
    Option(
        "samples",
        "path",
        None,
        "Sample table (CSV of file, label[, group]) or, to predict, one FCS file.",
        flag="--samples",
        stages=_IO,
    ),
    Option("test_file", "path", None, "Held-out sample table, evaluated after training.", flag="--test"),
    Option(
        "task",
        "choice",
        None,
        "classification or regression (default: regression for numeric labels with more than two values).",
        flag="--task",
        choices=("classification", "regression", "binary", "multiclass"),
    ),
    Option("markers", "strs", None, "Markers, comma-separated (default: every marker channel)."),
    Option(
        "cofactor",
        "float",
        5.0,
        "arcsinh cofactor, positive (5 for mass cytometry, ~150 for flow).",
        minimum=0,  # and not 0: _check_options
    ),
    Option("max_cells", "int", None, "Cells kept per sample on reading (seeded subsample).", minimum=1),
    Option("classes", "strs", None, "Class order, control first (default: a control-like name first)."),
    Option("positive", "str", None, "Class whose subset is interpreted (default: the last)."),
    Option(
        "select_quantile",
        "float",
        None,
        "(0.99) Cells above this quantile (0 to 1) of the control cells' responses are selected.",
        stages=("train", "report"),
        minimum=0,
        maximum=1.0,
    ),
    Option(
        "embedding",
        "choice",
        None,
        "Embedding of the report: tsne (default), pca or none.",
        choices=("tsne", "pca", "none"),
        stages=("train", "report"),
    ),
    Option(
        "predict_cells",
        "int",
        None,
        "Score each sample on at most this many random cells.",
        stages=_IO,
        minimum=1,
    ),
    Option("label_col", "str", None, "Label column of the sample table.", stages=_IO),
    Option("group_col", "str", None, "Group (patient) column of the sample table.", stages=_IO),
    Option("file_col", "str", None, "File column of the sample table.", stages=_IO),
    Option("report", "bool", True, "Write OUT/report.html after training."),
    # CellCnnConfig (defaults: biodl.kinds.cells.restarts.CellCnnConfig)
    Option("ncell", "int", None, "Cells per multi-cell input (200).", minimum=1),
    Option("nsubset", "int", None, "Multi-cell inputs per class for training (1000).", minimum=2),
    Option(
        "nsubset_valid", "int", None, "Multi-cell inputs per class for validation (nsubset // 4).", minimum=1
    ),
    Option("per_sample", "bool", None, "nsubset counts per sample rather than per class."),
    Option("nrun", "int", None, "Restarts with random configurations (15).", minimum=1),
    Option("n_best", "int", None, "Networks kept in the ensemble (3).", minimum=1),
    Option("pool_percents", "strs", None, "Pooling percentages cycled through by the restarts."),
    Option("nfilter_choice", "strs", None, "Numbers of filters drawn from (each at least 1)."),
    Option(
        "hidden",
        "int",
        None,
        "Units of a per-cell hidden layer before the filters (0: the published linear filters).",
        minimum=0,
    ),
    Option(
        "learning_rate",
        "float",
        None,
        "Fixed Adam learning rate, positive (default: --lr, else 10**U(-3, -2)).",
        minimum=0,  # and not 0: _check_options
    ),
    Option("l1", "float", None, "L1 penalty on filter and output weights (0).", minimum=0),
    Option("l2", "float", None, "L2 penalty on filter and output weights (1e-4).", minimum=0),
    Option("dropout", "any", None, "auto (0.5 with more than 5 filters) or a probability."),
    Option("dropout_p", "float", None, "Dropout of auto (0 to below 1).", minimum=0, maximum=1.0),
    Option(
        "valid_fraction",
        "float",
        0.2,
        "Fraction of each sample's cells used for validation (above 0, below 1).",
        flag="--valid-fraction",
        minimum=0,  # and not 0: CellCnnConfig.check
    ),
    Option("scale", "bool", None, "z-score each marker with the training cells."),
    Option(
        "sampling",
        "choice",
        None,
        "Multi-cell inputs: random (default, as the reference) or outlier (biased towards cells far "
        "from the control cells; for subsets rarer than ~0.1%).",
        choices=("random", "outlier"),
    ),
    Option(
        "outlier_fraction",
        "float",
        None,
        "sampling=outlier: fraction of each input drawn from the outlying cells (0.5).",
        minimum=0,
        maximum=1.0,
    ),
    Option(
        "outlier_keep",
        "float",
        None,
        "sampling=outlier: fraction of a sample's cells, most outlying first, drawn from (0.1).",
        minimum=0,
        maximum=1.0,
    ),
    Option(
        "outlier_landmarks",
        "int",
        None,
        "sampling=outlier: k-means++ landmarks of the control cells for the outlierness (100).",
        minimum=1,
    ),
    Option(
        "outlier_controls",
        "bool",
        None,
        "sampling=outlier: bias the control samples' inputs too, each against the other control "
        "samples (false, as the reference).",
    ),
)
_CONFIG = set(CellCnnConfig.__dataclass_fields__) - {"extra", "max_epochs", "patience", "batch_size"}
#: Options that must be above their declared minimum of 0 (Option's bounds are inclusive).
_POSITIVE = ("cofactor", "learning_rate", "valid_fraction", "outlier_fraction", "outlier_keep")


def _check_options(options: dict) -> None:
    """What the declared bounds cannot say, refused before any data is read: the options that
    must be positive, and a ``dropout`` that is neither ``auto`` nor a probability below 1."""
    by_name = {o.name: o for o in OPTIONS}
    for k in _POSITIVE:
        v = options.get(k)
        if v is not None and not v > 0:
            raise BiodlInputError(f"{by_name[k].spelling} must be positive (above 0), got {v!r}")
    for k in ("dropout_p",):
        v = options.get(k)
        if v is not None and not 0 <= v < 1:
            raise BiodlInputError(f"--set {k} must be a probability from 0 to below 1, got {v!r}")
    c = options.get("cofactor")
    if c is not None and not 1e-3 <= c <= 1e6:  # arcsinh(x / c) in float32: NaN below, every marker 0 above
        raise BiodlInputError(
            f"{by_name['cofactor'].spelling} must be from 0.001 to 1e6 (5 for mass cytometry, ~150 for "
            f"flow), got {c!r}"
        )


@dataclass
class CellsData:
    """``RunMeta.data`` of a CellCnn model."""

    markers: list[str] = field(default_factory=list)
    cofactor: float = 5.0
    positive: int = 1
    config: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    train_table: str = ""


def _table(
    path: str | Path | None, require_labels: bool, options: dict, training: bool = False
) -> SampleTable:
    """A sample table, or a one-sample table for a single ``.fcs`` file (``training``: its
    labels need two classes; samples scored may all be of one)."""
    if path is None:
        raise BiodlInputError("no sample table given (--samples TABLE.csv, or the DATA argument)")
    p = Path(path)
    if p.suffix.lower() == ".fcs" or looks_like_fcs(p):  # an FCS file by its name or its first bytes
        if require_labels:
            raise BiodlInputError("a single FCS file has no label; give a sample table (file,label)", path=p)
        from biodl.io._util import check_file

        check_file(p)
        return SampleTable(p, [p.resolve()], None, None, [p.stem])
    return read_sample_table(
        p,
        require_labels=require_labels,
        label_col=options.get("label_col"),
        group_col=options.get("group_col"),
        file_col=options.get("file_col"),
        training=training,
    )


def _load(table: SampleTable, options: dict, markers=None, cofactor=None, seed: int = 0) -> SampleSet:
    if cofactor is None:
        cofactor = options.get("cofactor")
    return load_samples(
        table,
        markers=markers if markers is not None else options.get("markers"),
        cofactor=float(5.0 if cofactor is None else cofactor),
        max_cells=options.get("max_cells"),
        seed=seed,
    )


def _metrics(task: str, logp: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """Per-sample metrics: classification accuracy and AUROC (binary: of the class-1
    probability; multiclass: macro), regression mse / pearson / r2."""
    import torch

    from biodl.train.metrics import compute_metrics

    if task == "regression":
        return compute_metrics(
            "regression", torch.from_numpy(logp[:, :1]), torch.from_numpy(targets[:, None])
        )
    out = {"accuracy": float((logp.argmax(1) == targets.astype(int)).mean())}
    if len(np.unique(targets)) > 1:
        if logp.shape[1] == 2:
            from sklearn.metrics import roc_auc_score

            out["auroc"] = float(roc_auc_score(targets.astype(int), np.exp(logp[:, 1])))
        elif len(np.unique(targets)) == logp.shape[1]:
            m = compute_metrics("multiclass", torch.from_numpy(logp), torch.from_numpy(targets[:, None]))
            out["auroc"] = m["auroc"]
    return out


def prediction_frame(ss: SampleSet, logp: np.ndarray, task: str, classes: list[str] | None) -> pd.DataFrame:
    """One row per sample: id, (group), file, cell count, (label), class probabilities and the
    predicted class (regression: the prediction)."""
    df = pd.DataFrame(
        {"sample": ss.ids, "file": [str(f) for f in ss.files], "n_cells": [len(c) for c in ss.cells]}
    )
    if ss.groups is not None:
        df.insert(1, "group", ss.groups)
    if ss.labels is not None:
        df["label"] = ss.labels
    if task == "regression":
        df["prediction"] = logp[:, 0]
    else:
        for k, c in enumerate(classes or []):
            df[f"p_{c}"] = np.exp(logp[:, k])
        df["predicted"] = [classes[i] for i in logp.argmax(1)]
    return df


def _positive_index(positive: str | None, classes: list[str] | None) -> int:
    if not classes:
        return 0
    if positive is None:
        return len(classes) - 1
    if str(positive) not in classes:
        raise BiodlInputError(f"positive={positive!r} is not a class ({', '.join(classes)})")
    return classes.index(str(positive))


def _classes_opt(options: dict) -> list[str] | None:
    c = options.get("classes")
    if c is None:
        return None
    return [s.strip() for s in (c.split(",") if isinstance(c, str) else c)]


@dataclass
class CellTable:
    """Samples read for evaluation or prediction: the cells and the encoded targets."""

    samples: SampleSet
    targets: np.ndarray | None
    source: str

    def __len__(self) -> int:
        return len(self.samples)


class CellsKind(DataKind):
    """Cytometry samples (FCS files in a sample table)."""

    name = "cells"
    title = "cytometry samples"
    report_data = "a labelled sample table for the selected cells"
    reads = "cytometry samples: FCS files, or a sample table (CSV/TSV) listing them with their labels"
    formats = frozenset(("FCS",))
    options = OPTIONS
    hints = {"valid_file": _NOT_VALID}
    report_on_train = True

    # ------------------------------------------------------------------ training
    def _config(self, ctx: TrainContext) -> CellCnnConfig:
        o = ctx.options
        cfg = config_from_options({k: o[k] for k in _CONFIG if o.get(k) is not None})
        # the engine's config: epochs / patience / batch size / a learning rate given with --lr
        cfg.max_epochs, cfg.patience, cfg.batch_size = (
            int(ctx.config.max_epochs),
            int(ctx.config.patience),
            int(ctx.config.batch_size),
        )
        if cfg.learning_rate is None and "lr" in ctx.config_given:
            cfg.learning_rate = float(ctx.config.lr)
        return cfg

    def load(self, ctx: TrainContext) -> Splits:
        o = ctx.options
        _check_options(o)  # before any data is read
        cfg = self._config(ctx)
        table = _table(o["samples"] or o["data"], True, o, training=True)
        ctx.log(f"reading {len(table.files)} samples from {table.path}")
        ss = _load(table, o, seed=ctx.config.seed)
        targets, classes, task = encode_labels(
            ss.labels, _classes_opt(o), o["task"], path=table.path, lines=table.lines
        )
        ctx.log(
            f"{len(ss)} samples, {sum(len(c) for c in ss.cells):,} cells, {len(ss.markers)} markers "
            f"({', '.join(ss.markers)}); "
            + (
                "regression"
                if task == "regression"
                else "classes " + ", ".join(f"{i}={c}" for i, c in enumerate(classes))
            )
        )
        if task == "regression":
            say_unscaled_targets(ctx.log, targets, table.path, "CellCnn fits")
        test = None
        if o["test_file"] is not None:
            test = self._read_table(
                o["test_file"], o, ss.markers, float(o["cofactor"]), classes, task, ctx.config.seed
            )
        return Splits(
            train=ss,
            test=test,
            info={"n_train": len(ss), "n_cells": int(sum(map(len, ss.cells)))},
            extra={"targets": targets, "classes": classes, "task": task, "config": cfg, "table": table},
        )

    def build(self, ctx: TrainContext, splits: Splits):
        """No network yet: the ensemble is the best of the restarts (chosen in :meth:`fit`)."""
        e, o = splits.extra, ctx.options
        data = CellsData(
            markers=splits.train.markers,
            cofactor=float(o["cofactor"]),
            positive=_positive_index(o["positive"], e["classes"]),
            config={k: v for k, v in e["config"].__dict__.items() if k != "extra"},
            seed=ctx.config.seed,
            train_table=str(e["table"].path),
        )
        return None, RunMeta(
            kind=self.name,
            recipe=ctx.recipe.name,
            task=e["task"],
            label_names=e["classes"],
            classes=e["classes"],
            data=asdict(data),
        )

    def fit(self, ctx, model, meta, splits):
        from biodl.kinds.cells.restarts import train_cellcnn
        from biodl.train.fit import FitResult, seed_all

        e = splits.extra
        regression = meta.task == "regression"
        n_out = 1 if regression else len(e["classes"])
        seed_all(ctx.config.seed)
        ens, restarts = train_cellcnn(
            splits.train.cells,
            e["targets"],
            n_out,
            ctx.out,
            e["config"],
            regression=regression,
            seed=ctx.config.seed,
            device=ctx.config.device,
            progress=ctx.config.progress and not ctx.quiet,
            resume=ctx.config.resume,
            log=None if ctx.quiet else ctx.log,
            names=splits.train.ids,
        )
        meta = meta.replace(
            model_kwargs=dict(
                n_markers=len(splits.train.markers),
                n_outputs=n_out,
                regression=regression,
                members=[member_spec(n) for n in ens.nets],
            )
        )
        sel = restarts[restarts["selected"]]
        val = {"val_loss": float(sel["valid_loss"].mean())}
        if not regression:
            val["val_accuracy"] = float(sel["valid_accuracy"].mean())
        res = FitResult(ctx.out, None, int(restarts["epochs_run"].max()), val, None)
        return ens, res, meta

    def after_fit(self, ctx, model, meta, splits):
        ss, e = splits.train, splits.extra
        logp = predict_samples(
            model, ss.cells, max_cells=ctx.options["predict_cells"], device=ctx.config.device
        )
        pred = prediction_frame(ss, logp, meta.task, meta.classes)
        atomic_write_text(
            ctx.out / "predictions_train.tsv", pred.to_csv(sep="\t", index=False, float_format=FLOAT_FORMAT)
        )
        restarts = pd.read_csv(ctx.out / "restarts.tsv", sep="\t")
        return {
            "n_cells": splits.info["n_cells"],
            "markers": ss.markers,
            "classes": meta.classes,
            "train_metrics": _metrics(meta.task, logp, e["targets"]),
            "restarts": restarts.to_dict(orient="records"),
        }

    # ------------------------------------------------------------------ inference
    def _read_table(
        self, path, options, markers, cofactor, classes, task, seed=0, labelled=True
    ) -> CellTable:
        table = _table(path, labelled, options)
        ss = _load(table, options, markers=markers, cofactor=cofactor, seed=seed)
        y = None
        if labelled:
            y, _, _ = encode_labels(
                ss.labels,
                classes,
                "regression" if task == "regression" else "classification",
                path=table.path,
                lines=table.lines,
            )
        return CellTable(ss, y, str(table.path))

    def read(self, meta, path, options, *, labelled, quiet=True):
        d = data_as(CellsData, meta.data)
        return self._read_table(
            options.get("samples") or path,
            options,
            d.markers,
            d.cofactor,
            meta.classes,
            meta.task,
            labelled=labelled,
        )

    def score(self, model, meta, table, *, device, options, batch_size=256):
        logp = predict_samples(
            model, table.samples.cells, max_cells=options.get("predict_cells"), device=device
        )
        y = table.targets if table.targets is not None else np.zeros((len(table), 0), np.float32)
        return logp, np.asarray(y, np.float32).reshape(len(table), -1)

    def metrics(self, meta, outputs, targets, table):
        return _metrics(meta.task, outputs, targets[:, 0])

    def frame(self, meta, table, outputs, targets=None) -> pd.DataFrame:
        return prediction_frame(table.samples, outputs, meta.task, meta.classes)

    def write_evaluation(self, out_dir, result, meta, table, outputs, targets) -> None:
        """``metrics.json``, ``predictions.tsv`` (per sample) and, for two classes, ``roc.png``
        over samples."""
        from biodl.kinds.base import write_results

        od = write_results(out_dir, result, self.frame(meta, table, outputs, targets))
        y = targets[:, 0]
        if meta.task != "regression" and outputs.shape[1] == 2 and len(np.unique(y)) == 2:
            from biodl.report.plots import plot_roc

            plot_roc(y, np.exp(outputs[:, 1]), od / "roc.png")

    # ------------------------------------------------------------------ report
    def describe_data(self, meta):
        d = data_as(CellsData, meta.data)
        c = d.config
        return {
            "training samples": d.train_table,
            "markers": ", ".join(d.markers),
            "classes": ", ".join(meta.classes or []),
            "cells per input (ncell)": c.get("ncell"),
            "inputs per class (nsubset)": c.get("nsubset"),
            "multi-cell inputs (sampling)": c.get("sampling", "random")
            + (
                f" ({c.get('outlier_fraction')} of each input from the {c.get('outlier_keep')} most "
                "outlying cells" + (", control inputs too)" if c.get("outlier_controls") else ")")
                if c.get("sampling") == "outlier"
                else ""
            ),
            "restarts (nrun)": c.get("nrun"),
            "ensemble size": len(meta.model_kwargs.get("members") or []) or c.get("n_best"),
        }

    def report_sections(self, run, model, meta, data, options):
        """The restarts, the training samples' predictions, and the interpretation of the
        ensemble on the training samples (or on the labelled sample table ``data``)."""
        from biodl.report.html import Section

        secs = []
        if (run / "restarts.tsv").exists():
            secs.append(
                Section(
                    "Restarts",
                    text="Networks with random configurations, early-stopped on the validation loss "
                    "(held-out cells of the training samples); the best by validation accuracy form the "
                    "ensemble (selected; member: its number in the ensemble, the 'net' of the filter "
                    "sections below).",
                    table=pd.read_csv(run / "restarts.tsv", sep="\t", dtype={"member": "Int64"}).round(4),
                )
            )
        if (run / "predictions_train.tsv").exists():
            secs.append(
                Section(
                    "Training samples (in-sample, optimistic)",
                    table=pd.read_csv(run / "predictions_train.tsv", sep="\t"),
                )
            )
        d = data_as(CellsData, meta.data)
        src = data or d.train_table
        if not src or not Path(src).exists():
            secs.append(
                Section(
                    "Selected cells",
                    text=f"not interpreted: the sample table {src} is not there "
                    "(give one: biodl report RUN --data TABLE)",
                )
            )
            return secs
        t = self._read_table(src, {}, d.markers, d.cofactor, meta.classes, meta.task, seed=d.seed)
        interp = interpret_run(
            model,
            t.samples,
            t.targets,
            meta.classes,
            run / "interpret",
            positive=d.positive,
            regression=meta.task == "regression",
            quantile=float(options.get("select_quantile") or meta.options.get("select_quantile") or 0.99),
            embedding=str(options.get("embedding") or meta.options.get("embedding") or "tsne"),
            seed=d.seed,
        )
        return secs + interp["sections"]


def interpret_run(
    model,
    ss: SampleSet,
    targets: np.ndarray | None,
    classes: list[str] | None,
    out_dir: str | Path,
    *,
    positive: int = 1,
    regression: bool = False,
    quantile: float = 0.99,
    embedding: str = "tsne",
    n_filters: int = 2,
    seed: int = 0,
) -> dict[str, Any]:
    """Interpret a trained ensemble on samples: rank filters, select cells with the best
    ``n_filters`` filters, marker profiles, per-sample subset frequencies and plots.

    Writes ``filters.tsv``, ``filter_ranking.tsv``, ``profile_filterN.tsv``,
    ``subset_frequency_filterN.tsv`` and PNGs to ``out_dir``.

    Returns
    -------
    dict
        ``sections`` (report sections), ``summary`` (best filter, threshold, top markers)
        and ``profiles`` (DataFrames by filter column).
    """
    from biodl.kinds.cells import interpret as I
    from biodl.report.html import Section

    out = Path(out_dir)
    from biodl.io._util import output_dir

    output_dir(out)
    ft = I.filter_table(model, ss.markers, classes)
    atomic_write_text(out / "filters.tsv", ft.to_csv(sep="\t", index=False, float_format="%.5g"))
    rank = I.rank_filters(
        model,
        ss.cells,
        targets if targets is not None else np.zeros(len(ss)),
        positive=positive,
        regression=regression,
    )
    atomic_write_text(out / "filter_ranking.tsv", rank.to_csv(sep="\t", index=False, float_format="%.5g"))
    pos_name = classes[positive] if classes else "high target"
    hidden = any(n.hidden_units for n in model.nets)
    what = (
        "a function of a cell's (z-scored) markers through a hidden layer (ReLU), followed by ReLU; "
        "its marker weights are not drawn, read it from the cells it selects below"
        if hidden
        else "a linear function of a cell's (z-scored) markers followed by ReLU"
    )
    sections = [
        Section(
            "Filters",
            text=f"Each filter is {what}. Filters "
            f"are ranked by how much higher their per-sample pooled response is in {pos_name} samples than "
            "in the others (difference of class means / standard deviation; regression: Spearman "
            "correlation with the target), filters whose output weight also favours that class first.",
            table=rank.head(8).round(4),
            images=[]
            if hidden
            else [(I.plot_filter_weights(ft, ss.markers, out / "filter_weights.png"), "Filter weights")],
        )
    ]
    all_cells = np.concatenate(ss.cells)
    labels = ss.labels or ["all"] * len(ss)
    profiles, summary = {}, {}
    P = I.pooled_responses(model, ss.cells)
    for rank_i, row in rank.head(n_filters).iterrows():
        col = int(row["column"])
        name = f"filter{rank_i + 1}"
        thr, masks = I.select_cells(model, col, ss.cells, None if regression else targets, positive, quantile)
        sel = np.concatenate([c[m] for c, m in zip(ss.cells, masks, strict=True)])
        prof = I.marker_profile(sel, all_cells, ss.markers)
        profiles[col] = prof
        atomic_write_text(
            out / f"profile_{name}.tsv", prof.to_csv(sep="\t", index=False, float_format="%.4g")
        )
        freq = pd.DataFrame(
            {
                "sample": ss.ids,
                "label": labels,
                "n_cells": [len(c) for c in ss.cells],
                "n_selected": [int(m.sum()) for m in masks],
            }
        )
        freq["percent_selected"] = 100 * freq["n_selected"] / freq["n_cells"]
        atomic_write_text(
            out / f"subset_frequency_{name}.tsv", freq.to_csv(sep="\t", index=False, float_format="%.4g")
        )
        resp = [I.cell_responses(model, c)[:, col] for c in ss.cells]
        by_class = {
            lab: np.concatenate([r for r, s in zip(resp, labels, strict=True) if s == lab])
            for lab in dict.fromkeys(labels)
        }
        imgs = [
            (
                I.plot_response_histograms(
                    by_class, thr, out / f"{name}_hist.png", f"{name}: cell responses"
                ),
                "Cell responses by class",
            ),
            (
                I.plot_pooled(P[:, col], labels, out / f"{name}_pooled.png", f"{name}: pooled per sample"),
                "Pooled response per sample",
            ),
            (
                I.plot_marker_profile(prof, out / f"{name}_profile.png", f"{name}: selected vs all cells"),
                "Marker profile of the selected cells",
            ),
        ]
        if embedding != "none":
            rng = np.random.default_rng(seed)
            sub = [c[rng.choice(len(c), min(len(c), 4000 // len(ss) + 1), replace=False)] for c in ss.cells]
            emb_cells = np.concatenate(sub)
            emb_resp = I.cell_responses(model, emb_cells)[:, col]
            emb = I.plot_embedding(
                emb_cells,
                emb_resp,
                out / f"{name}_{embedding}.png",
                method=embedding,
                seed=seed,
                title=f"{name} response",
            )
            if emb is not None:  # (fewer than 2 markers or 10 cells: no embedding to draw)
                imgs.append(
                    (emb, f"{embedding.upper()} of {len(emb_cells):,} cells coloured by the filter response")
                )
        up = prof[prof["difference"] > 0].head(8)
        s = dict(
            filter=name,
            member=int(row["member"]),
            column=col,
            score=float(row["score"]),
            threshold=thr,
            n_selected=int(len(sel)),
            percent_selected_by_class=freq.groupby("label")["percent_selected"].mean().round(3).to_dict(),
            top_markers=[f"{m} (+{d:.2f})" for m, d in zip(up["marker"], up["difference"], strict=True)],
        )
        if rank_i == 0:
            summary = s
        sections.append(
            Section(
                f"Selected cells: {name} (net {int(row['member'])}, filter {int(row['filter'])})",
                text=[
                    f"Cells whose response exceeds {thr:.3f} -- the {quantile:.0%} quantile of the "
                    "responses of "
                    + ("all cells" if regression else "cells in the control samples")
                    + f" -- are selected: {len(sel):,} of {len(all_cells):,} cells.",
                    "Mean percentage of cells selected per class: "
                    + ", ".join(f"{k}: {v:.2f}%" for k, v in s["percent_selected_by_class"].items()),
                    "Markers higher in the selected cells than in all cells (median difference, arcsinh): "
                    + ", ".join(s["top_markers"]),
                ],
                table=prof.round(3),
                images=imgs,
            )
        )
    return {"sections": sections, "summary": summary, "profiles": profiles}


KIND = CellsKind()
