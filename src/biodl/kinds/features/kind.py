"""Tables of genomic features with class labels as a data kind: deep feature selection (DFS),
PEDLA and DEEP on ENCODE signal tables of enhancers, promoters, exons and background regions.

Training reads a feature table and its labels, keeps the classes asked for (``--set
classes=A-E,A-P``), makes the task (7-class, or ``--set positive=A-E`` against the rest), holds
out stratified test and validation parts, and fits the network's standardisation on the
training rows only. DFS can run a path over the penalty (``--set lambdas=...``) and keep the best
model with at most ``max_features`` features; DEEP fits its SVMs with scikit-learn.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from biodl.errors import BiodlInputError
from biodl.kinds.base import DataKind, Splits, TrainContext, log, write_table
from biodl.options import Option
from biodl.train.checkpoint import RunMeta, data_as

_IO = ("train", "evaluate", "predict")
_EV = ("train", "evaluate")

OPTIONS = (
    Option(
        "data",
        "path",
        None,
        "Feature table (TSV/CSV/whitespace, optional header), plain or gzip.",
        flag="DATA",
        stages=_IO,
    ),
    Option(
        "labels",
        "path",
        None,
        "Label file, one label per row of the table (else a label column; predict: shown beside).",
        flag="--labels",
        stages=_IO,
    ),
    Option("label_col", "str", None, "Label column of the table (default: label / class / ...).", stages=_IO),
    Option(
        "feature_names", "path", None, "Feature names, one per line (tables without a header).", stages=_IO
    ),
    Option("id_col", "str", None, "Row id column (default: id / name / region, if any).", stages=_IO),
    Option(
        "header",
        "choice",
        "auto",
        "auto: a first line that is not all numbers is a header; yes; no.",
        choices=("auto", "yes", "no"),
        stages=_IO,
    ),
    Option(
        "classes",
        "strs",
        None,
        "Keep only these classes, in this order (default: all, sorted); evaluate: score only the rows of "
        "these (of the model's) classes.",
        stages=_EV,
    ),
    Option("positive", "strs", None, "Binary task: these classes against the other kept ones (e.g. A-E)."),
    Option(
        "task",
        "choice",
        None,
        "multiclass or binary (default: binary with --set positive, else multiclass).",
        flag="--task",
        choices=("multiclass", "binary"),
    ),
    Option("features", "strs", None, "Use only these features (names; case and punctuation ignored)."),
    Option(
        "constant",
        "choice",
        "error",
        "A feature constant over the training rows: error, or drop it.",
        choices=("error", "drop"),
    ),
    Option(
        "valid_fraction",
        "float",
        0.1,
        "Stratified validation hold-out of the training rows.",
        flag="--valid-fraction",
        minimum=0,
    ),
    Option(
        "valid_file",
        "path",
        None,
        "Validation table (else a stratified valid_fraction of the training rows).",
        flag="--valid",
    ),
    Option("valid_labels", "path", None, "Labels of --valid (one per row), if it has no label column."),
    Option(
        "test_file", "path", None, "Held-out test table (else a stratified test_fraction).", flag="--test"
    ),
    Option("test_labels", "path", None, "Labels of --test (one per row), if it has no label column."),
    Option("test_fraction", "float", 0.1, "Stratified test hold-out without --test (0: none).", minimum=0),
    Option(
        "class_weight",
        "bool",
        False,
        "Weight classes by inverse frequency (PEDLA's imbalance handling).",
        flag="--class-weight",
    ),
    Option(
        "optimizer",
        "choice",
        None,
        "adamw, adam, sgd or momentum (DFS: sgd, so the proximal L1 step is exact).",
        choices=("adamw", "adam", "sgd", "momentum"),
    ),
    Option(
        "lambdas",
        "strs",
        None,
        "DFS: a path of penalties (comma-separated), each warm-started from the last.",
        recipes=("dfs",),
    ),
    Option(
        "refit",
        "bool",
        True,
        "DFS with lambdas: refit the features each penalty keeps without the penalty.",
        recipes=("dfs",),
    ),
    Option(
        "max_features",
        "int",
        None,
        "DFS with lambdas: keep the best validation model with at most this many features.",
        minimum=1,
        recipes=("dfs",),
    ),
    Option(
        "randomized",
        "int",
        0,
        "DFS: stability selection, this many randomized fits on half the training rows (stability.tsv).",
        minimum=0,
        recipes=("dfs",),
    ),
    Option(
        "pretrain_epochs",
        "int",
        10,
        "PEDLA: epochs of denoising pre-training per layer.",
        minimum=0,
        recipes=("pedla",),
    ),
    Option(
        "n_svms",
        "int",
        5,
        "DEEP: SVMs in the ensemble, each on a class-balanced subsample.",
        minimum=1,
        recipes=("deep-enhancer",),
    ),
    Option("svm_c", "float", 1.0, "DEEP: SVM cost C.", minimum=0, recipes=("deep-enhancer",)),
    Option(
        "svm_gamma",
        "float",
        None,
        "DEEP: RBF gamma on standardised features (default 1 / n_features).",
        minimum=0,
        recipes=("deep-enhancer",),
    ),
    Option("report", "bool", True, "Write OUT/report.html after training."),
)


@dataclass
class FeatureData:
    """``RunMeta.data`` of a feature model: the features it reads (in order), the classes kept
    and how they map to outputs."""

    features: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    positive: list[str] | None = None
    train_file: str | None = None
    selected: list[str] | None = None


def class_targets(labels: list[str], classes: list[str], positive: list[str] | None, path=None) -> np.ndarray:
    """``(n, 1)`` float32 targets: ``1/0`` for a binary task (``positive`` classes), else class indices."""
    unknown = sorted(set(labels) - set(classes))
    if unknown:
        raise BiodlInputError(
            f"labels {', '.join(unknown[:8])} are not among the model's classes ({', '.join(classes)})",
            path=path,
        )
    if positive is not None:
        pos = set(positive)
        return np.array([[1.0 if lab in pos else 0.0] for lab in labels], np.float32)
    index = {c: i for i, c in enumerate(classes)}
    return np.array([[index[lab]] for lab in labels], np.float32)


def _note_negative_logged(model, table) -> None:
    """Say (once per call) when features that were never negative in training, and so are taken
    as log1p, have negative values here: they are scored as 0, as the network reads them."""
    scale = getattr(model, "scale", None)
    logged = getattr(scale, "logged", None)
    if logged is None or not bool(getattr(scale, "log1p", False)):
        return
    cols = np.flatnonzero(logged.cpu().numpy())
    if not len(cols):
        return
    neg = table.x[:, cols] < 0
    if not neg.any():
        return
    names = [table.feature_names[c] for c in cols[neg.any(0)]]
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    msg = (
        f"[biodl] note: {table.source}: {int(neg.sum())} negative value(s) in feature(s) {shown}, which "
        "were never negative in training and are read as log1p: scored as 0"
    )
    from biodl.train.metrics import note_once

    note_once(msg)  # once (validation is scored every epoch)


def _keep_classes(table, classes: list[str] | None, what: str):
    if table.labels is None:
        return table
    if classes is None:
        return table
    keep = np.flatnonzero(np.isin(np.asarray(table.labels, dtype=object), classes))
    if len(keep) == 0:
        raise BiodlInputError(f"no row of {what} has a class among {', '.join(classes)}", path=table.source)
    return table.subset(keep)


def _labels_where(options: dict[str, Any], labels_key: str = "labels") -> str:
    """Where the labels come from, for messages: the label file or the label column."""
    if options.get(labels_key):
        return f"the labels of {options[labels_key]}"
    return f"column {options['label_col']}" if options.get("label_col") else "the label column"


def _refuse_unknown(table, classes: list[str], labels_path=None) -> None:
    """Refuse a table with a label outside ``classes``, naming the first such row (its line in
    the label file, or in the table) and every unknown class."""
    known = set(classes)
    bad = [i for i, lab in enumerate(table.labels) if lab not in known]
    if not bad:
        return
    i = bad[0]
    unknown = sorted({table.labels[k] for k in bad})
    where = (
        {"path": labels_path, "record": i + 1}
        if labels_path
        else {"path": table.source or None, "record": table.lines[i] if table.lines else table.ids[i]}
    )
    raise BiodlInputError(
        f"class {table.labels[i]!r} (row {table.ids[i]}) is not among the model's classes "
        f"({', '.join(classes)}); {len(bad)} row(s) have unknown class(es) {', '.join(unknown[:8])}. "
        + (
            "No row has one of them: is it the labels file of this table and model?"
            if len(bad) == len(table.labels)
            else f"To score only the rows of the model's classes, give --set classes={','.join(classes)}"
        ),
        **where,
    )


def _check_part(ctx: TrainContext, part, classes: list[str], what: str) -> None:
    """Warn when a stratified hold-out ``part`` misses some of the ``classes``."""
    have = set(part.labels) if part is not None and part.labels is not None else set()
    missing = [c for c in classes if c not in have]
    if part is not None and len(part) and missing:
        log(
            f"[biodl] warning: the {what} part ({len(part)} rows) has no row of class(es) "
            f"{', '.join(missing)}: too few rows of them to hold out; its metrics leave them out",
            ctx.quiet,
        )


def _per_class(labels) -> str:
    counts = pd.Series(list(labels)).value_counts().sort_index()
    return ", ".join(f"{c}: {n}" for c, n in counts.items())


def _fmt(v) -> str:
    return "n/a" if v is None or not np.isfinite(v) else f"{v:.4f}"


def binary_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Accuracy, sensitivity, specificity, their geometric mean (PEDLA's and DEEP's GM) and
    MCC at probability 0.5. A metric the labels leave undefined is NaN, as AUROC is: sensitivity
    without positives, specificity without negatives, GM and MCC without both classes."""
    from sklearn.metrics import matthews_corrcoef

    y = y.astype(int)
    pred = (p >= 0.5).astype(int)
    tp, tn = int(((pred == 1) & (y == 1)).sum()), int(((pred == 0) & (y == 0)).sum())
    n_pos, n_neg = int((y == 1).sum()), int((y == 0).sum())
    sens = tp / n_pos if n_pos else float("nan")
    spec = tn / n_neg if n_neg else float("nan")
    both = n_pos > 0 and n_neg > 0
    return {
        "accuracy": float((pred == y).mean()) if len(y) else float("nan"),
        "sensitivity": sens,
        "specificity": spec,
        "gm": float(np.sqrt(sens * spec)) if both else float("nan"),
        "mcc": float(matthews_corrcoef(y, pred)) if both else float("nan"),
    }


def path_lambdas(values) -> list[float]:
    """DFS's ``--set lambdas`` as numbers, each finite and >= 0 (checked before training)."""
    out = []
    for v in values:
        try:
            lam = float(v)
        except (TypeError, ValueError):
            raise BiodlInputError(
                f"--set lambdas must be numbers (penalties >= 0, e.g. lambdas=0.5,2,8), got {v!r}"
            ) from None
        if not np.isfinite(lam) or lam < 0:
            raise BiodlInputError(
                f"--set lambdas: {v!r} is not a penalty; each must be a finite number >= 0 "
                "(e.g. lambdas=0.5,2,8)"
            )
        out.append(lam)
    return out


def _refit_dir(d: Path, keep) -> Path:
    """The folder of a penalty's refit on the features ``keep`` selected: one per selection
    (``refit_<digest>``). A path extended with more ``--epochs`` may select anew; its refit then
    starts from scratch in a folder of its own. (One ``refit`` folder was resumed whatever it
    held: the old checkpoint's feature mask replaced the new one, and the model used the old
    features while ``path.tsv`` listed the new.)"""
    import hashlib

    bits = keep.cpu().numpy().astype(np.uint8).tobytes()
    return d / f"refit_{hashlib.sha1(bits).hexdigest()[:10]}"


def _other_refits(d: Path, keep: Path) -> list[Path]:
    """The refit folders of ``d`` other than ``keep`` (of an earlier selection)."""
    return [q for q in d.glob("refit*") if q.is_dir() and q != keep]


class FeaturesKind(DataKind):
    """Feature tables with class labels."""

    name = "features"
    title = "feature tables"
    reads = "tables of numeric genomic features (TSV/CSV/whitespace, plain or gzip)"
    formats = frozenset(())
    options = OPTIONS
    report_on_train = True

    # ------------------------------------------------------------------ reading
    def _read(self, path, options: dict[str, Any], labels=None, require_labels: bool = True):
        from biodl.kinds.features.io import read_features

        return read_features(
            path,
            labels=labels,
            label_col=options.get("label_col"),
            feature_names=options.get("feature_names"),
            id_col=options.get("id_col"),
            header=options.get("header") or "auto",
            require_labels=require_labels,
        )

    # ------------------------------------------------------------------ training
    def load(self, ctx: TrainContext) -> Splits:
        from biodl.train.datamodule import split_indices

        o, seed = ctx.options, ctx.config.seed
        if o["data"] is None:
            raise BiodlInputError("no feature table given (DATA or --data)")
        if ctx.recipe.name == "dfs" and o.get("lambdas"):
            path_lambdas(o["lambdas"])  # before reading and training
        from biodl.train.fit import several_processes

        if o.get("randomized") and several_processes(ctx.config):
            raise BiodlInputError(
                "--set randomized (stability selection) runs its fits after training, in one process: "
                "train with --devices 1 (or without --set randomized)"
            )
        table = self._read(o["data"], o, o["labels"])
        if o["features"]:
            table = table.select_features(o["features"], what="--set features")
        classes = o["classes"] or sorted(set(table.labels))
        if len(classes) < 2:
            raise BiodlInputError(
                f"only one class ({', '.join(classes)}) in {_labels_where(o)}"
                + (" (--set classes)" if o["classes"] else "")
                + "; a classifier needs at least 2",
                path=o["data"],
            )
        table = _keep_classes(table, classes, o["data"])
        missing = [c for c in classes if c not in set(table.labels)]
        if missing:
            raise BiodlInputError(
                f"no row of class {', '.join(missing)} (classes found: "
                f"{', '.join(sorted(set(table.labels)))})",
                path=o["data"],
            )
        positive = o["positive"]
        if positive is not None:
            bad = [c for c in positive if c not in classes]
            if bad:
                raise BiodlInputError(
                    f"positive class(es) {', '.join(bad)} are not among the classes kept "
                    f"({', '.join(classes)})"
                )
            if len(positive) == len(classes):
                raise BiodlInputError(
                    "--set positive names every class: nothing is left for the negative side"
                )
        task = o["task"] or ("binary" if positive is not None else "multiclass")
        if task == "binary" and positive is None:
            if len(classes) != 2:
                raise BiodlInputError(
                    f"a binary task needs --set positive=CLASS (or two classes; kept: {', '.join(classes)})"
                )
            positive = [classes[1]]
        if task not in ctx.recipe.tasks:
            raise BiodlInputError(
                f"{ctx.recipe.name} does not do {task} tasks (it does: {', '.join(ctx.recipe.tasks)})"
            )
        strat = np.asarray(table.labels, dtype=object)
        test = None
        if o["test_file"] is not None:
            test = self._read(o["test_file"], o, o["test_labels"]).select_features(
                table.feature_names, "training"
            )
            test = _keep_classes(test, classes, o["test_file"])
        elif o["test_fraction"] > 0:
            tr, te = split_indices(len(table), o["test_fraction"], seed, stratify=strat)
            if not len(te):
                raise BiodlInputError(
                    f"the stratified test_fraction {o['test_fraction']:g} of {len(table)} rows "
                    f"({_per_class(strat)}) holds no row: give more rows, a larger --set test_fraction, "
                    "--test FILE, or --set test_fraction=0 for no test set",
                    path=o["data"],
                )
            table, test = table.subset(tr), table.subset(te)
            strat = strat[tr]
            _check_part(ctx, test, classes, "test")
        if o["valid_file"] is not None:
            valid = self._read(o["valid_file"], o, o["valid_labels"]).select_features(table.feature_names)
            train, valid = table, _keep_classes(valid, classes, o["valid_file"])
        else:
            tr, va = split_indices(len(table), o["valid_fraction"], seed + 1, stratify=strat)
            train, valid = table.subset(tr), table.subset(va)
            if o["valid_fraction"] > 0 and not len(va):
                if ctx.recipe.name == "dfs" and o["lambdas"]:
                    raise BiodlInputError(
                        f"DFS's path (--set lambdas) chooses its model by validation, but the stratified "
                        f"valid_fraction {o['valid_fraction']:g} of {len(table)} training rows "
                        f"({_per_class(strat)}) holds no row: give more rows, a larger --valid-fraction "
                        "or --valid FILE",
                        path=o["data"],
                    )
                log(
                    f"[biodl] warning: the stratified valid_fraction {o['valid_fraction']:g} of "
                    f"{len(table)} training rows ({_per_class(strat)}) holds no row: no validation "
                    "(no early stopping); give more rows, a larger --valid-fraction or --valid FILE",
                    ctx.quiet,
                )
            else:
                _check_part(ctx, valid, classes, "validation")
        # one value in every row, tested exactly (the float32 sd of 7.3s is 9.5e-7, not 0)
        spread = np.ptp(train.x, axis=0) if len(train) else np.zeros(len(train.feature_names))
        const = [n for n, s in zip(train.feature_names, spread, strict=True) if s == 0]
        if const:
            if o["constant"] == "error":
                raise BiodlInputError(
                    f"feature(s) constant over the training rows: {', '.join(const)}; drop them (--set "
                    "constant=drop) or choose others (--set features=...)",
                    path=o["data"],
                )
            keep = [n for n in train.feature_names if n not in const]
            if not keep:
                raise BiodlInputError(
                    f"every one of the {len(const)} features is constant over the training rows: nothing "
                    "to learn from",
                    path=o["data"],
                )
            ctx.log(f"dropped {len(const)} constant feature(s): {', '.join(const)}")
            train, valid = train.select_features(keep), valid.select_features(keep)
            test = test.select_features(keep) if test is not None else None
        ctx.log(
            f"{len(train)} training, {len(valid)} validation, {len(test) if test is not None else 0} test "
            "rows; "
            f"{len(train.feature_names)} features; {task}: "
            + (
                f"{', '.join(positive)} vs {', '.join(c for c in classes if c not in positive)}"
                if task == "binary"
                else ", ".join(classes)
            )
        )
        return Splits(
            train=train,
            valid=valid if len(valid) else None,
            test=test,
            info={
                "n_train": len(train),
                "n_valid": len(valid),
                "class_counts": pd.Series(train.labels).value_counts().to_dict(),
            },
            extra={"classes": classes, "positive": positive if task == "binary" else None, "task": task},
        )

    def build(self, ctx: TrainContext, splits: Splits):
        import torch

        from biodl.train.fit import seed_all

        e = splits.extra
        n_out = 1 if e["task"] == "binary" else len(e["classes"])
        kw = dict(ctx.recipe.model_defaults)
        kw.update(ctx.model_options)
        mk = {"n_features": len(splits.train.feature_names), **kw}
        if ctx.recipe.name != "deep-enhancer":
            mk["n_outputs"] = n_out
        seed_all(ctx.config.seed)
        model = ctx.recipe.build(**mk)
        model.scale.fit(torch.from_numpy(splits.train.x))
        if model.scale.log1p:
            raw = [
                n
                for n, k in zip(splits.train.feature_names, model.scale.logged.tolist(), strict=True)
                if not k
            ]
            if raw:
                ctx.log(
                    f"log1p of the {len(splits.train.feature_names) - len(raw)} non-negative feature(s) "
                    "only: "
                    f"{len(raw)} have negative training values and are only standardised "
                    f"({', '.join(raw[:8])}{', ...' if len(raw) > 8 else ''})"
                )
        data = FeatureData(
            features=list(splits.train.feature_names),
            classes=e["classes"],
            positive=e["positive"],
            train_file=str(ctx.options["data"]),
        )
        names = ["+".join(e["positive"])] if e["task"] == "binary" else e["classes"]
        meta = RunMeta(
            kind=self.name,
            recipe=ctx.recipe.name,
            task=e["task"],
            model_kwargs=mk,
            label_names=names,
            classes=None if e["task"] == "binary" else e["classes"],
            data=asdict(data),
        )
        return model, meta

    def _dataset(self, meta: RunMeta, table):
        import torch
        from torch.utils.data import TensorDataset

        d = data_as(FeatureData, meta.data)
        x = torch.from_numpy(np.ascontiguousarray(table.x, np.float32))
        if table.labels is None:
            return TensorDataset(x, torch.zeros(len(x), 0))
        y = class_targets(table.labels, d.classes, d.positive, table.source)
        return TensorDataset(x, torch.from_numpy(y))

    def datasets(self, ctx, meta, splits):
        return self._dataset(meta, splits.train), self._dataset(meta, splits.valid) if splits.valid else None

    def plan(self, ctx, model, meta, splits):
        from biodl.kinds.sequences.kind import class_weights

        plan = super().plan(ctx, model, meta, splits)
        plan.optimizer_name = ctx.options["optimizer"] or "adamw"
        if callable(getattr(model, "penalty", None)):
            plan.penalty = model.penalty
        if ctx.options["class_weight"]:
            d = data_as(FeatureData, meta.data)
            y = class_targets(splits.train.labels, d.classes, d.positive)
            plan.pos_weight = class_weights(y, meta.task, len(d.classes))
        return plan

    def fit(self, ctx, model, meta, splits):
        if ctx.recipe.name == "deep-enhancer":
            return self._fit_svms(ctx, model, meta, splits)
        if ctx.recipe.name == "pedla":
            self._pretrain(ctx, model, meta, splits)
        if ctx.recipe.name == "dfs" and ctx.options["lambdas"]:
            return self._fit_path(ctx, model, meta, splits)
        model, res, meta = super().fit(ctx, model, meta, splits)
        return model, res, self._with_selection(model, meta)

    def _with_selection(self, model, meta: RunMeta) -> RunMeta:
        if not hasattr(model, "selected"):
            return meta
        keep = model.selected().cpu().numpy()
        names = [n for n, k in zip(meta.data["features"], keep, strict=True) if k]
        return meta.replace(data={**meta.data, "selected": names})

    def _pretrain(self, ctx, model, meta, splits) -> None:
        """PEDLA: every hidden layer pre-trained as a denoising autoencoder (one :func:`fit` each)."""
        from biodl.train.pretrain import pretrain_layers

        train_ds, valid_ds = self.datasets(ctx, meta, splits)
        pretrain_layers(
            model, train_ds, valid_ds, ctx.out, ctx.config, ctx.options["pretrain_epochs"], log=ctx.log
        )

    def _fit_path(self, ctx, model, meta, splits):
        """DFS over a path of penalties, each warm-started from the previous. At each penalty the
        features left are refitted without the penalty (``refit``, the relaxed lasso: the
        shrinkage that selected them does not also bias the model that uses them); the model
        kept is the best by validation among those with at most ``max_features`` features. Every
        path model is saved (``path/lambda<k>/model.pt``) with ``path.tsv``."""
        import copy
        import shutil

        from biodl.train import save_model
        from biodl.train.fit import finished_meta, seed_all
        from biodl.train.metrics import MONITOR

        lambdas = path_lambdas(ctx.options["lambdas"])
        key, mode = MONITOR[meta.task]
        col = f"val_{key}"
        rows, kept, results = [], [], []
        for k, lam in enumerate(lambdas):
            model.l1 = lam
            d = ctx.out / "path" / f"lambda{k}"
            # selection: every epoch, and the final epoch's weights (the shrinkage done), not the best
            # validation epoch's
            sel = replace(ctx, out=d / "select", config=replace(ctx.config, patience=0))
            model, res, _ = super().fit(sel, model, meta, replace(splits, valid=None))
            keep = model.selected()
            final = copy.deepcopy(model)
            if ctx.options["refit"] and lam > 0:
                # a fresh network on the features kept (the relaxed lasso): the shrinkage that chose
                # them does not also bias the model that uses them
                seed_all(ctx.config.seed)
                final = ctx.recipe.build(**{**meta.model_kwargs, "l1": 0.0})
                final.scale.load_state_dict(model.scale.state_dict())
                final.keep_only(keep)
                rdir = _refit_dir(d, keep)
                others = _other_refits(d, rdir)
                if others and not (rdir / "checkpoints").exists():
                    why = (
                        "the run's refit is of an earlier biodl (one folder for any selection)"
                        if [q.name for q in others] == ["refit"]
                        else f"the selection changed ({int(keep.sum())} features)"
                    )
                    ctx.log(f"lambda {lam:g}: {why}: refitting from scratch")
                final, res, _ = super().fit(replace(ctx, out=rdir), final, meta, splits)
                if res.is_global_zero:  # (after the fit: no rank reads them any more)
                    for q in _other_refits(d, rdir):
                        shutil.rmtree(q, ignore_errors=True)
                    (d / "refit_selection.json").unlink(missing_ok=True)  # (an earlier layout's)
            if not res.is_global_zero:  # another rank of a DDP run: it trains every fit with rank 0,
                results.append(res)  # which alone saves, scores and chooses
                continue
            names = [n for n, s in zip(meta.data["features"], keep.cpu().numpy(), strict=True) if s]
            pmeta = self._with_selection(final, meta.replace(model_kwargs={**meta.model_kwargs, "l1": lam}))
            save_model(d / "model.pt", final, finished_meta(pmeta, res))
            rows.append(
                {
                    "lambda": lam,
                    "n_features": len(names),
                    col: res.val_metrics.get(col),
                    "val_loss": res.val_metrics.get("val_loss"),
                    "features": ",".join(names),
                }
            )
            kept.append((final, pmeta))
            results.append(res)
            ctx.log(f"lambda {lam:g}: {len(names)} features, {col} {_fmt(rows[-1][col])}")
        if not rows:  # a DDP worker
            return model, results[-1], meta
        table = pd.DataFrame(rows)
        cap = ctx.options["max_features"]
        ok = (
            table[(table["n_features"] <= cap) & (table["n_features"] > 0)]
            if cap
            else table[table["n_features"] > 0]
        )
        if ok.empty:
            raise BiodlInputError(
                f"no penalty on the path keeps between 1 and {cap or 'all'} features; change --set lambdas"
            )
        scored = ok[col].astype(float).dropna()
        if scored.empty:
            raise BiodlInputError(
                f"no model on the path has a validation {key} (undefined: the validation rows have "
                "one class only, or training diverged), so none can be chosen; give a larger "
                "--valid-fraction or --valid FILE, or change --set lambdas"
            )
        best = int(scored.idxmax() if mode == "max" else scored.idxmin())
        table["chosen"] = table.index == best
        write_table(table, ctx.out / "path.tsv")
        final, pmeta = kept[best]
        pmeta.splits["path"] = {
            "lambdas": lambdas,
            "chosen": lambdas[best],
            "refit": bool(ctx.options["refit"]),
        }
        return final, results[best], pmeta

    def _fit_svms(self, ctx, model, meta, splits):
        """DEEP: ``n_svms`` RBF SVMs (scikit-learn), each on all positives and as many randomly
        drawn negatives (or the reverse), on the standardised features."""
        import torch
        from sklearn.svm import SVC

        from biodl.models.features import SVMEnsemble
        from biodl.train.fit import FitResult, seed_all

        o = ctx.options
        x = torch.from_numpy(splits.train.x)
        z = model.scale(x).numpy()
        y = class_targets(splits.train.labels, meta.data["classes"], meta.data["positive"])[:, 0].astype(int)
        gamma = o["svm_gamma"] or 1.0 / z.shape[1]
        rng = np.random.default_rng(ctx.config.seed)
        pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
        small, large = (pos, neg) if len(pos) <= len(neg) else (neg, pos)
        fitted = []
        for m in range(o["n_svms"]):
            idx = np.concatenate([small, rng.choice(large, len(small), replace=False)])
            svc = SVC(C=o["svm_c"], gamma=gamma, kernel="rbf").fit(z[idx], y[idx])
            fitted.append(svc)
            ctx.log(
                f"SVM {m + 1}/{o['n_svms']}: {len(idx)} balanced rows, {len(svc.support_)} support vectors"
            )
        mk = {**meta.model_kwargs, "members": [len(s.support_) for s in fitted], "gamma": gamma}
        seed_all(ctx.config.seed)
        ens = SVMEnsemble(**mk)
        ens.scale.load_state_dict(model.scale.state_dict())
        for i, s in enumerate(fitted):
            ens.set_member(i, s.support_vectors_, s.dual_coef_[0], s.intercept_[0])
        meta = meta.replace(model_kwargs=mk)
        val: dict[str, float] = {}
        if splits.valid is not None:
            out, yv = self.score(ens, meta, splits.valid, device="cpu", options=o)
            val = {
                f"val_{k}": v for k, v in self.metrics(meta, out, yv, splits.valid).items() if "/" not in k
            }
        return ens, FitResult(ctx.out, None, 0, val, None), meta

    def after_fit(self, ctx, model, meta, splits):
        out = {"classes": meta.data["classes"], "positive": meta.data["positive"]}
        if meta.data.get("selected") is not None:
            out["selected"] = meta.data["selected"]
            w = (model.w * model.mask).detach().cpu().numpy()
            weights = pd.DataFrame({"feature": meta.data["features"], "weight": w})
            write_table(
                weights.sort_values("weight", key=np.abs, ascending=False), ctx.out / "feature_weights.tsv"
            )
        if ctx.options.get("randomized"):
            from biodl.kinds.features.selection import randomized_dfs

            stab = randomized_dfs(self, ctx, meta, splits, ctx.options["randomized"])
            write_table(stab, ctx.out / "stability.tsv")
            out["stability"] = dict(zip(stab["feature"], stab["frequency"].round(3), strict=True))
        return out

    # ------------------------------------------------------------------ inference
    memory_inputs = (
        "a pandas DataFrame of rows x features (columns named as the model's features, any order; "
        "ids from the index); an evaluation's classes as labels=[...] or the name of a column"
    )

    def from_memory(self, meta, data, options, *, labelled, labels=None):
        from biodl.io import memory
        from biodl.kinds.features.io import FeatureTable, feature_positions

        d = data_as(FeatureData, meta.data)
        src = memory.describe(data)
        if not isinstance(data, pd.DataFrame):
            raise BiodlInputError(
                f"cannot read a {type(data).__name__} as a feature table: give a path or a pandas "
                "DataFrame with the model's feature columns"
            )
        if labelled:
            if isinstance(labels, str) and labels in data.columns:
                labels, data = data[labels], data.drop(columns=labels)
            if labels is None or isinstance(labels, str):
                raise BiodlInputError(
                    f"evaluation needs the rows' classes: labels=[...] (one per row, among "
                    f"{', '.join(d.classes)}) or labels=COLUMN"
                    + (f" (no column {labels!r})" if isinstance(labels, str) else ""),
                    path=src,
                )
        from biodl.io._util import F32_MAX
        from biodl.io.memory import index_ids

        ids = index_ids(data.index, lambda i: f"row{i + 1}")
        sub = data.iloc[:, feature_positions([str(c) for c in data.columns], d.features, source=src)]
        num = sub.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(num) | (np.abs(np.nan_to_num(num)) > F32_MAX)
        if bad.any():
            i, j = map(int, np.argwhere(bad)[0])
            v = sub.iat[i, j]
            v = v.item() if isinstance(v, np.generic) else v
            raise BiodlInputError(
                f"feature {d.features[j]!r}: {v!r} is not a finite number"
                + (" in float32 (the network's precision)" if np.isfinite(num[i, j]) else ""),
                path=src,
                record=ids[i],
            )
        t = FeatureTable(num.astype(np.float32), list(d.features), None, ids, src)
        if not labelled:
            return t
        if isinstance(labels, pd.Series):  # indexed by row name: matched by name (as the rows are)
            labels = memory.labels_in_item_order(labels, data, ids, src)
        raw = labels.tolist() if isinstance(labels, (pd.Series, np.ndarray)) else list(labels)
        if len(raw) != len(t):
            raise BiodlInputError(f"{len(raw)} labels for {len(t)} rows: give one class per row", path=src)
        t.labels = [str(v) for v in raw]
        return self._labelled(t, d, options, src, quiet=True)

    def read(self, meta, path, options, *, labelled, quiet=True):
        d = data_as(FeatureData, meta.data)
        t = self._read(path, options, options.get("labels"), require_labels=labelled)
        t = t.select_features(d.features)
        return self._labelled(t, d, options, path, quiet) if labelled else t

    def _labelled(self, t, d: FeatureData, options, path, quiet: bool):
        """Labelled rows ``t`` checked against the model's classes, or cut to ``--set classes``."""
        wanted = options.get("classes")
        if wanted:
            bad = [c for c in wanted if c not in d.classes]
            if bad:
                raise BiodlInputError(
                    f"--set classes: {', '.join(bad)} not among the model's classes ({', '.join(d.classes)})"
                )
            n = len(t)
            t = _keep_classes(t, list(wanted), path)
            log(f"[biodl] {path}: scoring the {len(t)} row(s) of class(es) {', '.join(wanted)} "
                f"({n - len(t)} other row(s) left out)", quiet)  # fmt: skip
        else:
            _refuse_unknown(t, d.classes, options.get("labels"))
        return t

    def score(self, model, meta, table, *, device, options, batch_size=256):
        from biodl.train.predict import predict

        _note_negative_logged(model, table)
        return predict(model.cpu(), self._dataset(meta, table), batch_size=batch_size, device=device)

    def metrics(self, meta, outputs, targets, table):
        m = super().metrics(meta, outputs, targets, table)
        if meta.task == "binary":
            m.update(binary_metrics(targets[:, 0], 1 / (1 + np.exp(-outputs[:, 0].astype(np.float64)))))
            m["threshold"] = 0.5  # accuracy, sensitivity, ... call at probability 0.5: said with them
        elif len(targets):
            from sklearn.metrics import matthews_corrcoef

            y = targets[:, 0].astype(int)
            # one class only: MCC is undefined (NaN, as AUROC), not sklearn's 0
            m["mcc"] = float(matthews_corrcoef(y, outputs.argmax(1))) if len(set(y)) > 1 else float("nan")
        return m

    def frame(self, meta, table, outputs, targets=None) -> pd.DataFrame:
        from biodl.kinds.base import prediction_frame

        df = prediction_frame(meta.task, table.ids, outputs, meta.label_names, meta.classes)
        if meta.task == "binary":
            df["predicted"] = np.where(df[f"prob_{meta.label_names[0]}"] >= 0.5, meta.label_names[0], "other")
        if table.labels is not None:
            df.insert(1, "label", table.labels)
        return df

    # ------------------------------------------------------------------ report
    def describe_data(self, meta):
        d = data_as(FeatureData, meta.data)
        rows: dict[str, Any] = {
            "training file": d.train_file,
            "features": len(d.features),
            "classes": ", ".join(d.classes),
        }
        if d.positive:
            rows["positive"] = ", ".join(d.positive)
        if d.selected is not None:
            rows["features selected"] = f"{len(d.selected)}: {', '.join(d.selected)}"
        return rows

    def report_sections(self, run, model, meta, data, options):
        """DFS: the selected features and their weights, and accuracy against the number of
        features along the penalty path; every model: the confusion matrix of the test set."""
        from biodl.kinds.features.report import (
            confusion_section,
            path_section,
            stability_section,
            weights_section,
        )

        return [
            *weights_section(run, model, meta),
            *path_section(run, meta),
            *stability_section(run),
            *confusion_section(run, meta),
        ]


KIND = FeaturesKind()
