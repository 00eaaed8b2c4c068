"""``biodl train/evaluate/predict --system cellcnn``: CellCnn on cytometry samples (FCS files
listed in a sample table). See :mod:`biodl.plugins` for the contract.

Options (``--set KEY=VALUE``): ``markers`` (comma-separated; default every marker channel),
``cofactor`` (arcsinh, 5), ``max_cells`` (cells kept per sample on reading), ``classes``
(class order, control first), ``positive`` (class whose subset is interpreted), the
:class:`~biodl.cells.fit.CellCnnConfig` fields (``ncell``, ``nsubset``, ``nrun``, ``n_best``,
``pool_percents``, ``nfilter_choice``, ``learning_rate``, ``l1``, ``l2``, ``dropout``, ...),
``select_quantile`` (0.99) and ``embedding`` (``tsne``, ``pca`` or ``none``) for the report.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from biodl.cells.fit import CellCnnConfig, config_from_options, encode_labels, predict_samples, train_cellcnn
from biodl.cells.io import SampleSet, SampleTable, load_samples, read_sample_table
from biodl.errors import BiodlInputError
from biodl.io._util import atomic_write_text
from biodl.plugins import CLI_OPTION_KEYS

PLUGIN = "biodl.cells.plugin"

_IO_KEYS = {
    "markers",
    "cofactor",
    "max_cells",
    "classes",
    "positive",
    "select_quantile",
    "embedding",
    "predict_cells",
    "label_col",
    "group_col",
    "file_col",
}
_CLI_KEYS = CLI_OPTION_KEYS


def _log(msg: str, quiet: bool) -> None:
    if not quiet:
        from rich.console import Console

        Console(stderr=True).print(msg, highlight=False)


def _check_options(options: dict) -> None:
    known = set(CellCnnConfig.__dataclass_fields__) - {"extra"}
    unknown = [k for k in options if k not in known | _IO_KEYS | _CLI_KEYS]
    if unknown:
        raise BiodlInputError(
            f"unknown CellCnn option(s): {', '.join(sorted(unknown))} "
            f"(known: {', '.join(sorted(known | _IO_KEYS))})"
        )


def _table(path: str | Path | None, require_labels: bool, options: dict) -> SampleTable:
    """A sample table, or a one-sample table for a single ``.fcs`` file."""
    if path is None:
        raise BiodlInputError("no sample table given (--samples TABLE.csv, or the DATA argument)")
    p = Path(path)
    if p.suffix.lower() == ".fcs":
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
    )


def _load(table: SampleTable, options: dict, markers=None, cofactor=None, seed: int = 0) -> SampleSet:
    return load_samples(
        table,
        markers=markers if markers is not None else options.get("markers"),
        cofactor=float(cofactor if cofactor is not None else options.get("cofactor", 5.0)),
        max_cells=int(options["max_cells"]) if options.get("max_cells") else None,
        seed=seed,
    )


def _classes_opt(options: dict) -> list[str] | None:
    c = options.get("classes")
    if c is None:
        return None
    return [s.strip() for s in (c.split(",") if isinstance(c, str) else c)]


def _metrics(task: str, logp: np.ndarray, targets: np.ndarray, classes: list[str] | None) -> dict[str, float]:
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


def _prediction_frame(ss: SampleSet, logp: np.ndarray, task: str, classes: list[str] | None) -> pd.DataFrame:
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


# --------------------------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------------------------
def train(
    system: str,
    out_dir: str | Path,
    config,
    *,
    data=None,
    valid=None,
    test=None,
    options: dict | None = None,
    model_options: dict | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """Train the CellCnn ensemble on the samples of a table; write ``OUT/model.pt``,
    ``run.json``, ``restarts.tsv``, ``predictions_train.tsv`` (and ``predictions_test.tsv`` /
    ``metrics.json`` with ``--test``), interpretation tables and ``report.html``."""
    from biodl.recipes import get_recipe
    from biodl.train.engine import _atomic_json, export_model, seed_all

    t0 = time.time()
    opts = {k: v for k, v in (options or {}).items() if v is not None}
    opts.update(model_options or {})
    _check_options(opts)
    if valid is not None:
        raise BiodlInputError(
            "CellCnn validates on held-out cells of the training samples; --valid is not used"
        )
    cfg = config_from_options(opts)
    # the engine's config: epochs / patience / batch size / a learning rate given on the CLI
    cfg.max_epochs = int(config.max_epochs)
    cfg.patience = int(config.patience)
    cfg.batch_size = int(config.batch_size)
    if cfg.learning_rate is None and opts.get("lr") is not None:  # --lr given on the CLI
        cfg.learning_rate = float(opts["lr"])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = _table(opts.get("samples") or data, True, opts)
    _log(f"reading {len(table.files)} samples from {table.path}", quiet)
    ss = _load(table, opts, seed=config.seed)
    targets, classes, task = encode_labels(ss.labels, _classes_opt(opts), opts.get("task"))
    regression = task == "regression"
    n_out = 1 if regression else len(classes)
    _log(
        f"{len(ss)} samples, {sum(len(c) for c in ss.cells):,} cells, {len(ss.markers)} markers "
        f"({', '.join(ss.markers)}); "
        + ("regression" if regression else "classes " + ", ".join(f"{i}={c}" for i, c in enumerate(classes))),
        quiet,
    )
    seed_all(config.seed)
    ens, restarts = train_cellcnn(
        ss.cells,
        targets,
        n_out,
        out,
        cfg,
        regression=regression,
        seed=config.seed,
        device=config.device,
        progress=config.progress and not quiet,
        resume=config.resume,
        log=None if quiet else (lambda m: _log(m, False)),
    )
    recipe = get_recipe(system)
    model_kwargs = dict(
        n_markers=len(ss.markers),
        n_outputs=n_out,
        members=[{"n_filters": n.n_filters, "pool_percent": n.pool_percent} for n in ens.nets],
        regression=regression,
    )
    positive = _positive_index(opts, classes)
    meta = dict(
        recipe=recipe.name,
        plugin=PLUGIN,
        model_kwargs=model_kwargs,
        task=task,
        classes=classes,
        label_names=classes,
        positive=positive,
        markers=ss.markers,
        cofactor=float(opts.get("cofactor", 5.0)),
        config={k: v for k, v in cfg.__dict__.items() if k != "extra"},
        seed=config.seed,
        train_table=str(table.path),
    )
    model_path = export_model(out / "model.pt", ens, meta)
    logp_train = predict_samples(ens, ss.cells, max_cells=_int(opts.get("predict_cells")))
    pred_train = _prediction_frame(ss, logp_train, task, classes)
    atomic_write_text(
        out / "predictions_train.tsv", pred_train.to_csv(sep="\t", index=False, float_format="%.6g")
    )
    summary: dict[str, Any] = dict(
        system=recipe.name,
        task=task,
        model=str(model_path),
        n_train=len(ss),
        n_cells=int(sum(map(len, ss.cells))),
        markers=ss.markers,
        classes=classes,
        train_metrics=_metrics(task, logp_train, targets, classes),
        restarts=restarts.to_dict(orient="records"),
    )
    sections = []
    if test is not None:
        tt = _table(test, True, opts)
        ts = _load(tt, opts, markers=ss.markers, seed=config.seed)
        yt, _, _ = encode_labels(ts.labels, classes, task if regression else "classification")
        lt = predict_samples(ens, ts.cells, max_cells=_int(opts.get("predict_cells")))
        summary["n_test"] = len(ts)
        summary["test_metrics"] = _metrics(task, lt, yt, classes)
        pt = _prediction_frame(ts, lt, task, classes)
        atomic_write_text(out / "predictions_test.tsv", pt.to_csv(sep="\t", index=False, float_format="%.6g"))
        _atomic_json(summary["test_metrics"], out / "metrics.json")
        sections += _eval_sections(
            out, "Held-out test samples", summary["test_metrics"], pt, lt, yt, task, classes
        )
    summary["minutes"] = round((time.time() - t0) / 60, 2)
    interp = interpret_run(
        ens,
        ss,
        targets,
        classes,
        out / "interpret",
        positive=positive,
        regression=regression,
        quantile=float(opts.get("select_quantile", 0.99)),
        embedding=str(opts.get("embedding", "tsne")),
        seed=config.seed,
    )
    summary["selected_subset"] = interp["summary"]
    summary["report"] = str(
        write_report(out, summary, restarts, pred_train, sections + interp["sections"], cfg)
    )
    _atomic_json(dict(status="finished", meta=meta, summary=summary), out / "run.json")
    return summary


def _int(v) -> int | None:
    return int(v) if v not in (None, "", 0, "0") else None


def _positive_index(opts: dict, classes: list[str] | None) -> int:
    if not classes:
        return 0
    pos = opts.get("positive")
    if pos is None:
        return len(classes) - 1
    if str(pos) not in classes:
        raise BiodlInputError(f"positive={pos!r} is not a class ({', '.join(classes)})")
    return classes.index(str(pos))


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
    from biodl.cells import interpret as I
    from biodl.report.html import Section

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
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
    sections = [
        Section(
            "Filters",
            text="Each filter is a linear function of a cell's (z-scored) markers followed by ReLU. Filters "
            f"are ranked by how much higher their per-sample pooled response is in {pos_name} samples than "
            "in the others (difference of class means / standard deviation; regression: Spearman "
            "correlation with the target), filters whose output weight also favours that class first.",
            table=rank.head(8).round(4),
            images=[(I.plot_filter_weights(ft, ss.markers, out / "filter_weights.png"), "Filter weights")],
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
            imgs.append(
                (
                    I.plot_embedding(
                        emb_cells,
                        emb_resp,
                        out / f"{name}_{embedding}.png",
                        method=embedding,
                        seed=seed,
                        title=f"{name} response",
                    ),
                    f"{embedding.upper()} of {len(emb_cells):,} cells coloured by the filter response",
                )
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


def _eval_sections(out: Path, title: str, metrics: dict, pred: pd.DataFrame, logp, targets, task, classes):
    from biodl.report.html import Section

    images = []
    if task != "regression" and logp.shape[1] == 2 and len(np.unique(targets)) == 2:
        from biodl.report.plots import plot_roc

        images.append((plot_roc(targets, np.exp(logp[:, 1]), out / "roc.png"), "ROC over samples"))
    return [Section(title, table=metrics, images=images), Section(f"{title}: predictions", table=pred)]


def write_report(
    out: Path,
    summary: dict,
    restarts: pd.DataFrame,
    pred_train: pd.DataFrame,
    extra: list,
    cfg: CellCnnConfig,
) -> Path:
    """``OUT/report.html`` of a training run."""
    from biodl.report.html import Section, write_html_report

    secs = [
        Section(
            "Data",
            text=f"{summary['n_train']} training samples, {summary['n_cells']:,} cells, "
            f"{len(summary['markers'])} markers: {', '.join(summary['markers'])}.",
            table={
                "task": summary["task"],
                "classes": ", ".join(summary["classes"] or []),
                "cells per input (ncell)": cfg.ncell,
                "inputs per class (nsubset)": cfg.nsubset,
                "restarts (nrun)": cfg.nrun,
                "ensemble size": cfg.n_best,
                "minutes": summary.get("minutes"),
            },
        ),
        Section(
            "Restarts",
            text="Networks with random configurations, early-stopped on the validation loss (held-out "
            "cells of "
            "the training samples); the best by validation accuracy form the ensemble (selected).",
            table=restarts.round(4),
        ),
        Section("Training samples (in-sample, optimistic)", table=pred_train),
        *extra,
    ]
    return write_html_report(
        out / "report.html", "CellCnn", secs, subtitle="Arvaniti & Claassen, Nat Commun 8:14825 (2017)"
    )


# --------------------------------------------------------------------------------------------
# evaluate / predict
# --------------------------------------------------------------------------------------------
def _load_model(model_path, device: str):
    from biodl.train.engine import load_model

    return load_model(model_path, device=device)


def evaluate(
    model_path, data, *, out_dir=None, device: str = "cpu", options: dict | None = None, quiet: bool = True
) -> dict[str, Any]:
    """Per-sample evaluation of a trained model on a labelled sample table.

    Returns ``{"metrics": ..., "n": ...}``; with ``out_dir`` writes ``metrics.json``,
    ``predictions.tsv`` and ``roc.png`` (binary)."""
    opts = dict(options or {})
    _check_options(opts)
    model, meta = _load_model(model_path, device)
    table = _table(opts.get("samples") or data, True, opts)
    ss = _load(table, opts, markers=meta["markers"], cofactor=meta["cofactor"])
    task = meta["task"]
    y, _, _ = encode_labels(
        ss.labels, meta["classes"], "regression" if task == "regression" else "classification"
    )
    logp = predict_samples(model, ss.cells, max_cells=_int(opts.get("predict_cells")), device=device)
    metrics = _metrics(task, logp, y, meta["classes"])
    pred = _prediction_frame(ss, logp, task, meta["classes"])
    if out_dir is not None:
        from biodl.train.engine import _atomic_json

        o = Path(out_dir)
        o.mkdir(parents=True, exist_ok=True)
        _atomic_json(metrics, o / "metrics.json")
        atomic_write_text(o / "predictions.tsv", pred.to_csv(sep="\t", index=False, float_format="%.6g"))
        _eval_sections(o, "Evaluation", metrics, pred, logp, y, task, meta["classes"])
    return {"metrics": metrics, "n": len(ss), "predictions": pred}


def predict(
    model_path, data, *, out=None, device: str = "cpu", options: dict | None = None, quiet: bool = True
) -> pd.DataFrame:
    """Per-sample predictions (class probabilities or value) for a sample table (labels not
    needed) or one FCS file; rows keep the table order."""
    opts = dict(options or {})
    _check_options(opts)
    model, meta = _load_model(model_path, device)
    table = _table(opts.get("samples") or data, False, opts)
    ss = _load(table, opts, markers=meta["markers"], cofactor=meta["cofactor"])
    logp = predict_samples(model, ss.cells, max_cells=_int(opts.get("predict_cells")), device=device)
    df = _prediction_frame(ss, logp, meta["task"], meta["classes"])
    if out is not None:
        atomic_write_text(out, df.to_csv(sep="\t", index=False, float_format="%.6g"))
        _log(f"wrote {len(df)} predictions to {out}", quiet)
    return df


def describe(meta: dict) -> str:
    return json.dumps({k: meta[k] for k in ("task", "classes", "markers", "cofactor") if k in meta})


def report(run_dir, data=None, *, quiet: bool = False, **_: Any) -> Path:
    """``biodl report`` for a CellCnn run: the report is written by ``biodl train`` (it needs
    the training cells for the interpretation), so an existing ``report.html`` is kept as it
    is rather than replaced by the generic sequence report; a run without one is an error."""
    from biodl.errors import BiodlError

    run = Path(run_dir)
    run = run if run.is_dir() else run.parent
    path = run / "report.html"
    if not path.exists():
        raise BiodlError(
            f"{run}: no report.html; CellCnn writes it at the end of `biodl train` (it re-reads the "
            "training cells), so train again to rebuild it"
        )
    _log(f"{path} was written by training; kept unchanged", quiet)
    return path
