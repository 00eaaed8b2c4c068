"""Population-genetic data as a data kind: simulated genotype matrices with their true parameters
(training, evaluation) and VCF windows of real samples (prediction).

Training reads a ``biodl popgen simulate`` directory, infers ``--target`` (parameters on a
log10 scale, standardised, rescaled back for every output; ``--target class`` classifies a
selection scenario), holds out seeded test and validation simulations, and afterwards fits the
rejection-ABC baseline on the training simulations' summary statistics and scores it on the
same test set (``abc/``). Prediction reads simulations or a VCF, cut into windows of the
training length (``--set window``, ``step``), and gives one estimate per window.
"""

from __future__ import annotations

import inspect
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from biodl.errors import BiodlInputError
from biodl.kinds.base import DataKind, Splits, TrainContext, sniff_format
from biodl.options import Option
from biodl.train.checkpoint import RunMeta, data_as

_IO = ("train", "evaluate", "predict")
_VCF = ("predict",)

OPTIONS = (
    Option(
        "data", "path", None, "Simulated dataset directory (biodl popgen simulate).", flag="DATA", stages=_IO
    ),
    Option(
        "target",
        "strs",
        None,
        "Parameters to infer (e.g. rho; N1,N2,N3), or class (selection); default: the scenario's.",
        flag="--target",
    ),
    Option("test_file", "path", None, "Held-out test dataset (else a seeded test_fraction).", flag="--test"),
    Option("test_fraction", "float", 0.1, "Seeded test hold-out without --test (0: none).", minimum=0),
    Option(
        "valid_fraction",
        "float",
        0.1,
        "Seeded validation hold-out of the training simulations.",
        flag="--valid-fraction",
        minimum=0,
    ),
    Option("max_sims", "int", None, "Use only the first N simulations (learning curves).", minimum=3),
    Option(
        "n_sites",
        "int",
        None,
        "Matrix columns (default: the most sites of a training window; more are centre-cropped).",
        minimum=4,
    ),
    Option("row_sort", "bool", True, "Sort haplotypes by similarity (Flagel et al.).", stages=("train",)),
    Option("abc", "bool", True, "Fit the rejection-ABC baseline and score it on the test set (abc/)."),
    Option(
        "abc_fraction", "float", 0.01, "Rejection ABC: share of the training simulations accepted.", minimum=0
    ),
    Option("abc_adjust", "bool", False, "Rejection ABC: local-linear regression adjustment (Beaumont 2002)."),
    Option(
        "window",
        "int",
        None,
        "VCF: window length in bp (default: the training length).",
        stages=_VCF,
        minimum=1,
    ),
    Option(
        "step",
        "int",
        None,
        "VCF: step between window starts in bp (default: the window).",
        stages=_VCF,
        minimum=1,
    ),
    Option("samples", "strs", None, "VCF: use only these samples, in this order.", stages=_VCF),
    Option("chroms", "strs", None, "VCF: use only these chromosomes.", stages=_VCF),
    Option(
        "max_missing",
        "float",
        0.5,
        "VCF: sites with a larger fraction of missing calls are dropped.",
        stages=_VCF,
        minimum=0,
        maximum=1,
    ),
    Option(
        "empty_windows",
        "choice",
        "error",
        "VCF: a window without variants is an error, or skip it.",
        choices=("error", "skip"),
        stages=_VCF,
    ),
    Option("report", "bool", True, "Write OUT/report.html after training."),
)


@dataclass
class PopgenData:
    """``RunMeta.data`` of a population-genetic model: what it reads and how outputs are scaled."""

    scenario: str = ""
    train_dir: str | None = None
    targets: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    log_mean: list[float] = field(default_factory=list)
    log_std: list[float] = field(default_factory=list)
    n_haplotypes: int = 0
    n_sites: int = 0
    length: float = 0.0
    row_sort: bool = True
    input: str = "matrix"
    any_haplotypes: bool = False
    stat_names: list[str] = field(default_factory=list)
    abc_fraction: float = 0.01


def _factory_input(recipe) -> tuple[str, bool]:
    """(``matrix`` or ``stats``, whether the network reads any number of haplotypes)."""
    f = recipe.factory
    params = inspect.signature(f).parameters
    return getattr(f, "input", "matrix"), "n_haplotypes" not in params and getattr(f, "input", "") == "matrix"


class PopgenKind(DataKind):
    """Simulated genotype matrices and VCF windows."""

    name = "popgen"
    title = "population genotype matrices"
    reads = (
        "simulated datasets (a `biodl popgen simulate` directory) or, to predict, a VCF / BCF of "
        "haplotypes or diploid genotypes"
    )
    formats = frozenset(("VCF", "BCF"))
    options = OPTIONS
    report_on_train = True

    # ------------------------------------------------------------------ reading
    def _dataset(self, path, limit=None):
        from biodl.kinds.popgen.io import read_dataset

        if path is None:
            raise BiodlInputError(
                "no simulated dataset given (DATA or --data; make one with biodl popgen simulate)"
            )
        if sniff_format(path) in ("VCF", "BCF"):
            raise BiodlInputError(
                "training and evaluation need simulations with their true parameters; a VCF has none. "
                "Simulate with `biodl popgen simulate`, and give the VCF to `biodl predict`",
                path=path,
            )
        return read_dataset(path, limit=limit)

    # ------------------------------------------------------------------ training
    def load(self, ctx: TrainContext) -> Splits:
        from biodl.kinds.popgen.simulate import dataset_config
        from biodl.train.datamodule import split_indices

        o, seed = ctx.options, ctx.config.seed
        gs = self._dataset(o["data"], o["max_sims"])
        cfg = dataset_config(o["data"])
        targets = list(o["target"] or cfg["default_target"])
        task = "multiclass" if targets == ["class"] else "regression"
        if task == "multiclass" and not cfg.get("classes"):
            raise BiodlInputError(f"scenario {cfg['scenario']} has no classes to predict", path=o["data"])
        if "class" in targets and task == "regression":
            raise BiodlInputError("--target class classifies; give it alone (not with other parameters)")
        for t in targets:
            gs.param(t)
        if task not in ctx.recipe.tasks:
            raise BiodlInputError(
                f"{ctx.recipe.name} does not do {task} (it does {', '.join(ctx.recipe.tasks)})"
            )
        test = None
        if o["test_file"] is not None:
            test = self._dataset(o["test_file"])
            self._check_compatible(test, gs.n_haplotypes, targets, task, o["test_file"], strict=True)
        elif o["test_fraction"] > 0:
            tr, te = split_indices(len(gs), o["test_fraction"], seed, at_least_one=True)
            gs, test = gs.subset(tr), gs.subset(te)
        tr, va = split_indices(len(gs), o["valid_fraction"], seed + 1)
        train, valid = gs.subset(tr), gs.subset(va)
        if len(train) < 2:
            raise BiodlInputError(f"{len(train)} training simulation(s) left; simulate more", path=o["data"])
        empty = int((train.n_sites() == 0).sum())  # no segregating site: nothing to learn from
        if empty == len(train):
            raise BiodlInputError(
                f"none of the {len(train)} training simulations has a segregating site (too small a "
                "population or mutation rate for the sample and length: see --fix and the scenario's "
                "prior, `biodl popgen scenarios`)",
                path=o["data"],
            )
        if empty * 2 > len(train):
            ctx.log(
                f"warning: {empty} of the {len(train)} training simulations have no segregating site; "
                "their matrices and statistics are empty"
            )
        from biodl.kinds.popgen.data import raw_targets

        y = raw_targets(train, targets, task)
        for part in (valid, test):  # checked now: not after training, on the held-out splits
            if part is not None and len(part):
                raw_targets(part, targets, task)
        if task == "regression":
            ly = np.log10(y)
            mean, std = ly.mean(0).tolist(), np.where(ly.std(0) > 0, ly.std(0), 1.0).tolist()
        else:
            mean, std = [], []
        n_sites = o["n_sites"] or int(max(8, -(-int(train.n_sites().max()) // 4) * 4))
        inp, _ = _factory_input(ctx.recipe)
        if inp == "stats" or o["abc"]:
            for part in (train, valid, test):
                if part is not None:
                    part.ensure_stats()
        ctx.log(
            f"{len(train)} training, {len(valid)} validation, {len(test) if test is not None else 0} test "
            f"simulations of {cfg['scenario']} ({gs.n_haplotypes} haplotypes); {task} of "
            f"{', '.join(targets)}; "
            + (f"{n_sites} sites per matrix" if inp == "matrix" else "summary statistics")
        )
        return Splits(
            train=train,
            valid=valid if len(valid) else None,
            test=test,
            info={"n_train": len(train), "n_valid": len(valid), "scenario": cfg["scenario"]},
            extra={
                "targets": targets,
                "task": task,
                "classes": list(cfg.get("classes") or []),
                "mean": mean,
                "std": std,
                "n_sites": n_sites,
                "cfg": cfg,
            },
        )

    def _check_compatible(self, gs, n_hap: int, targets, task, path, strict: bool) -> None:
        if strict and gs.n_haplotypes != n_hap:
            raise BiodlInputError(
                f"sample-count mismatch: {gs.n_haplotypes} haplotypes per simulation, the model reads "
                f"{n_hap}",
                path=path,
            )
        for t in ["class"] if task == "multiclass" else targets:
            gs.param(t)

    def build(self, ctx: TrainContext, splits: Splits):
        import torch

        from biodl.train.fit import seed_all

        e, r = splits.extra, ctx.recipe
        inp, any_hap = _factory_input(r)
        n_out = len(e["classes"]) if e["task"] == "multiclass" else len(e["targets"])
        stat_names = e["cfg"].get("stat_names") or []
        n_stats = splits.train.ensure_stats().shape[1] if inp == "stats" else len(stat_names)
        derived = {
            "n_haplotypes": splits.train.n_haplotypes,
            "n_sites": e["n_sites"],
            "n_stats": n_stats,
            "n_outputs": n_out,
        }
        params = inspect.signature(r.factory).parameters
        mk = r.check_model_options({**r.model_defaults, **ctx.model_options})
        mk.update({k: v for k, v in derived.items() if k in params})
        seed_all(ctx.config.seed)
        model = r.build(**mk)
        if hasattr(model, "scale"):
            model.scale.fit(torch.from_numpy(np.asarray(splits.train.stats, np.float32)))
        data = PopgenData(
            scenario=e["cfg"]["scenario"],
            train_dir=str(ctx.options["data"]),
            targets=list(e["targets"]),
            classes=list(e["classes"]) if e["task"] == "multiclass" else [],
            log_mean=list(e["mean"]),
            log_std=list(e["std"]),
            n_haplotypes=splits.train.n_haplotypes,
            n_sites=int(e["n_sites"]),
            length=float(e["cfg"]["length"]),
            row_sort=bool(ctx.options["row_sort"]),
            input=inp,
            any_haplotypes=any_hap,
            stat_names=list(stat_names),
            abc_fraction=float(ctx.options["abc_fraction"]),
        )
        mc = e["task"] == "multiclass"
        meta = RunMeta(
            kind=self.name,
            recipe=r.name,
            task=e["task"],
            model_kwargs=mk,
            label_names=list(e["classes"]) if mc else list(e["targets"]),
            classes=list(e["classes"]) if mc else None,
            data=asdict(data),
        )
        return model, meta

    def _targets(self, meta, gs) -> np.ndarray:
        """Network targets of ``gs`` (``(n, 0)`` without parameters)."""
        from biodl.kinds.popgen.data import raw_targets, to_targets

        d = data_as(PopgenData, meta.data)
        if gs.params is None:
            return np.zeros((len(gs), 0), np.float32)
        return to_targets(raw_targets(gs, d.targets, meta.task), d.log_mean, d.log_std, meta.task)

    def _torch_dataset(self, meta, gs):
        from biodl.kinds.popgen.data import MatrixDataset, stats_dataset

        d = data_as(PopgenData, meta.data)
        y = self._targets(meta, gs)
        if d.input == "stats":
            return stats_dataset(gs, y)
        return MatrixDataset(gs, d.n_sites, d.row_sort, y)

    def training_labels(self, meta, splits):
        return self._targets(meta, splits.train)

    def datasets(self, ctx, meta, splits):
        valid = self._torch_dataset(meta, splits.valid) if splits.valid is not None else None
        return self._torch_dataset(meta, splits.train), valid

    # ------------------------------------------------------------------ after training
    def after_fit(self, ctx, model, meta, splits):
        from biodl.io._util import atomic_output

        out: dict[str, Any] = {}
        d = data_as(PopgenData, meta.data)
        ex = splits.test if splits.test is not None and len(splits.test) else splits.train
        if ex is not None and len(ex):
            from biodl.kinds.popgen.data import encode_matrix

            x = encode_matrix(*ex.matrix(0), ex.length[0], d.n_sites or 64, d.row_sort)
            desc = ", ".join(f"{n} {v:.4g}" for n, v in zip(ex.param_names, ex.params[0], strict=True))
            with atomic_output(ctx.out / "example_matrix.npz") as tmp:
                with open(tmp, "wb") as fh:
                    np.savez(fh, x=x, id=np.array(ex.ids[0]), params=np.array(desc))
        if ctx.options["abc"] and splits.test is not None and len(splits.test):
            res = self.abc_evaluate(meta, splits.train, splits.test, ctx.options, ctx.out / "abc")
            out["abc_test_metrics"] = res["metrics"]
            shown = ", ".join(f"{k} {v:.4f}" for k, v in res["metrics"].items() if "/" not in k)
            ctx.log(f"rejection ABC on the test set: {shown}")
        return out

    def abc_estimates(self, meta, reference, query, fraction: float, adjust: bool) -> np.ndarray:
        """Rejection-ABC outputs for ``query`` with ``reference`` as the table, shaped like
        :meth:`score`'s outputs (parameter units; log-probabilities for classes)."""
        from biodl.kinds.popgen.abc import RejectionABC
        from biodl.kinds.popgen.data import raw_targets

        d = data_as(PopgenData, meta.data)
        if meta.task == "multiclass":
            return abc_class_outputs(self.abc_probabilities(meta, reference, query, fraction))
        th = np.log10(raw_targets(reference, d.targets, meta.task))
        abc = RejectionABC(reference.ensure_stats(), th, fraction, adjust=adjust)
        return (10 ** abc.predict(query.ensure_stats())).astype(np.float64)

    def abc_probabilities(self, meta, reference, query, fraction: float) -> np.ndarray:
        """Rejection ABC's class probabilities for ``query`` (``(n, n_classes)``: the fractions of
        the accepted reference simulations in each class)."""
        from biodl.kinds.popgen.abc import RejectionABC

        d = data_as(PopgenData, meta.data)
        n = len(d.classes)
        abc = RejectionABC(reference.ensure_stats(), reference.param("class"), fraction, n_classes=n)
        return np.asarray(abc.predict(query.ensure_stats()), np.float64)

    def abc_evaluate(self, meta, reference, test, options, out_dir=None) -> dict[str, Any]:
        """Rejection ABC (training simulations as the reference table) scored on ``test``."""
        from biodl.kinds.popgen.data import raw_targets

        y = raw_targets(test, data_as(PopgenData, meta.data).targets, meta.task)
        if meta.task == "multiclass":  # AUROC ranks the exact fractions: they tie often (k of n accepted)
            prob = self.abc_probabilities(meta, reference, test, options["abc_fraction"])
            est = abc_class_outputs(prob)
            metrics = multiclass_metrics(est, y, list(meta.classes or []), probabilities=prob)
        else:
            est = self.abc_estimates(meta, reference, test, options["abc_fraction"], options["abc_adjust"])
            metrics = self.metrics(meta, est, y, test)
        result = {
            "metrics": metrics,
            "n": len(test),
            "task": meta.task,
            "data": test.source,
            "method": f"rejection ABC (fraction {options['abc_fraction']:g}"
            + (", local-linear adjustment)" if options["abc_adjust"] else ")"),
            "n_reference": len(reference),
        }
        result.update(self.result_extras(meta, test, est, y))
        if out_dir is not None:
            self.write_evaluation(out_dir, result, meta, test, est, y)
        return result

    # ------------------------------------------------------------------ inference
    def read(self, meta, path, options, *, labelled, quiet=True):
        from biodl.kinds.popgen.io import vcf_windows

        d = data_as(PopgenData, meta.data)
        if path is None:
            raise BiodlInputError("give simulations (a dataset directory) or, to predict, a VCF")
        fmt = sniff_format(path)
        if fmt in ("VCF", "BCF"):
            if labelled:
                raise BiodlInputError(
                    "evaluation needs simulations with their true parameters; a VCF has none "
                    "(use `biodl predict` for it)",
                    path=path,
                )
            window = int(options.get("window") or round(d.length))
            if options.get("window") and abs(window - d.length) > 0.01 * d.length and not quiet:
                from biodl.kinds.base import log

                what = ", ".join(meta.label_names or ["its targets"])
                log(
                    f"[biodl] note: --set window={window} differs from the training windows "
                    f"({d.length:g} bp): the model estimates {what} "
                    f"for a region of {d.length:g} bp; parameters that grow with the region's length "
                    "(rho, theta, segregating sites) are then off by the ratio of the lengths",
                    quiet,
                )
            return vcf_windows(
                path,
                window,
                step=options.get("step"),
                n_haplotypes=None if d.any_haplotypes else d.n_haplotypes,
                samples=options.get("samples"),
                chroms=options.get("chroms"),
                max_missing=float(options.get("max_missing", 0.5)),
                empty=options.get("empty_windows") or "error",
                quiet=quiet,
            )
        if Path(path).is_file():
            raise BiodlInputError(
                f"is not a VCF / BCF or a simulated dataset directory; {self.name} reads {self.reads}",
                path=path,
            )
        gs = self._dataset(path)
        if not d.any_haplotypes and gs.n_haplotypes != d.n_haplotypes:
            raise BiodlInputError(
                f"sample-count mismatch: {gs.n_haplotypes} haplotypes per simulation, the model reads "
                f"{d.n_haplotypes}",
                path=path,
            )
        if labelled:
            self._check_compatible(gs, d.n_haplotypes, d.targets, meta.task, path, strict=False)
        if (
            d.input == "stats"
            and d.stat_names
            and gs.stats is not None
            and gs.stats.shape[1] != len(d.stat_names)
        ):
            gs.stats = None
        return gs

    def score(self, model, meta, table, *, device, options, batch_size=256):
        from biodl.kinds.popgen.data import from_targets, raw_targets
        from biodl.train.predict import predict

        d = data_as(PopgenData, meta.data)
        out, _ = predict(model, self._torch_dataset(meta, table), batch_size=batch_size, device=device)
        y = (
            raw_targets(table, d.targets, meta.task)
            if table.params is not None
            else np.zeros((len(table), 0), np.float64)
        )
        if meta.task == "regression":
            out = from_targets(out, d.log_mean, d.log_std)
        return out, y

    def metrics(self, meta, outputs, targets, table):
        if meta.task == "multiclass":
            return multiclass_metrics(outputs, targets, list(meta.classes or []))
        return regression_metrics(outputs, targets, meta.label_names)

    def result_extras(self, meta, table, outputs, targets):
        if meta.task != "multiclass" or not targets.size:
            return {}
        from biodl.kinds.popgen.report import confusion

        cls = meta.classes
        cm = confusion([cls[int(v)] for v in targets[:, 0]], [cls[int(k)] for k in outputs.argmax(1)], cls)
        return {"confusion": {str(i): {str(c): int(v) for c, v in row.items()} for i, row in cm.iterrows()}}

    def frame(self, meta, table, outputs, targets=None) -> pd.DataFrame:
        from biodl.kinds.base import prediction_frame

        if meta.task == "regression":
            df = pd.DataFrame({"id": table.ids})
            for j, n in enumerate(meta.label_names):
                df[f"pred_{n}"] = outputs[:, j]
            if targets is not None and np.asarray(targets).size:
                for j, n in enumerate(meta.label_names):
                    df[f"true_{n}"] = targets[:, j]
        else:
            df = prediction_frame(meta.task, table.ids, outputs, meta.label_names, meta.classes, targets)
        df.insert(1, "n_sites", table.n_sites())
        return df

    def write_evaluation(self, out_dir, result, meta, table, outputs, targets) -> None:
        from biodl.kinds.base import write_results
        from biodl.kinds.popgen.report import confusion, plot_confusion, plot_pred_true

        df = self.frame(meta, table, outputs, targets)
        od = write_results(out_dir, result, df)
        if not targets.size or len(df) < 2:
            return
        if meta.task == "regression":
            plot_pred_true(df, {meta.recipe: df}, list(meta.label_names), od / "pred_vs_true.png")
        else:
            from biodl.report.plots import bounded_confusion

            cm = confusion(df["true"].tolist(), df["predicted"].tolist(), list(meta.classes))
            plot_confusion(bounded_confusion(cm)[0], od / "confusion.png", meta.recipe)

    def evaluation_sections(self, meta):
        # the report's own sections draw these from the same predictions, beside rejection ABC's
        return []

    # ------------------------------------------------------------------ report
    def describe_data(self, meta):
        d = data_as(PopgenData, meta.data)
        rows: dict[str, Any] = {
            "scenario": d.scenario,
            "training data": d.train_dir,
            "haplotypes": d.n_haplotypes if not d.any_haplotypes else f"{d.n_haplotypes} (reads any number)",
            "window length (bp)": f"{d.length:g}",
            "input": "summary statistics" if d.input == "stats" else f"haplotype matrix, {d.n_sites} sites",
        }
        rows["targets" if meta.task == "regression" else "classes"] = ", ".join(
            d.targets if meta.task == "regression" else d.classes
        )
        return rows

    def report_sections(self, run, model, meta, data, options):
        from biodl.kinds.popgen.report import popgen_sections

        return popgen_sections(Path(run), meta)


def abc_class_outputs(prob: np.ndarray) -> np.ndarray:
    """Rejection ABC's class fractions as the network's outputs (log-probabilities; float64, so
    that the probabilities written back from them keep the fractions' ties at 9 digits)."""
    return np.log(prob + 1e-6)


def multiclass_metrics(
    outputs, targets, classes: list[str] | None = None, probabilities: np.ndarray | None = None
) -> dict[str, float]:
    """``accuracy``, ``auroc`` (macro one-vs-rest over the classes present in ``targets``) and
    ``misclassification`` of class scores ``outputs`` ``(n, n_classes)`` against ``targets``
    ``(n, 1)`` class indices (NaN = missing): the shared :func:`~biodl.train.metrics.compute_metrics`
    (AUROC is NaN, with a warning naming the class, when the targets hold one class only)."""
    import torch

    from biodl.train.metrics import compute_metrics

    out = np.asarray(outputs, np.float32).reshape(len(outputs), -1)
    t = np.asarray(targets, np.float32).reshape(len(targets), -1)[:, :1]
    prob = None if probabilities is None else torch.from_numpy(np.asarray(probabilities, np.float64))
    m = compute_metrics(
        "multiclass", torch.from_numpy(out), torch.from_numpy(t), class_names=classes, probabilities=prob
    )
    m["misclassification"] = 1.0 - m["accuracy"]
    return m


def regression_metrics(est: np.ndarray, true: np.ndarray, names: list[str]) -> dict[str, float]:
    """Per parameter (``/name`` keys when there are several) and averaged over parameters:
    ``r2`` (squared Pearson r, Flagel et al.'s R^2), ``rmse`` (parameter units), ``rel_error``
    (mean |est - true| / true, Sheehan & Song's Table 1), ``rmse_log10`` and ``r2_log10``.
    A constant estimate has ``r2`` 0."""
    est = np.asarray(est, np.float64).reshape(len(est), -1)
    true = np.asarray(true, np.float64).reshape(len(true), -1)
    if true.shape[1] != est.shape[1]:
        raise BiodlInputError(
            f"the data has {true.shape[1]} parameter(s), the model {est.shape[1]} output(s)"
        )
    per: dict[str, list[float]] = {k: [] for k in ("r2", "rmse", "rel_error", "rmse_log10", "r2_log10")}
    out: dict[str, float] = {}

    def r2(a, b):
        """Squared Pearson r; undefined (NaN, said once) for one value, or for truth or estimates
        that are one value (a collapsed model predicting 0 everywhere scored 0.0)."""
        if len(a) < 2 or a.std() == 0 or b.std() == 0:
            from biodl.train.metrics import note_once

            what = (
                "fewer than 2 items"
                if len(a) < 2
                else ("the truth is one value" if a.std() == 0 else "the estimates are one value")
            )
            note_once(f"[biodl] warning: r2 is undefined (NaN): {what}")
            return float("nan")
        return float(np.corrcoef(a, b)[0, 1] ** 2)

    for j, n in enumerate(names):
        t, p = true[:, j], est[:, j]
        lt, lp = np.log10(t), np.log10(np.maximum(p, 1e-300))
        vals = {
            "r2": r2(t, p),
            "rmse": float(np.sqrt(np.mean((t - p) ** 2))),
            "rel_error": float(np.mean(np.abs(p - t) / t)),
            "rmse_log10": float(np.sqrt(np.mean((lt - lp) ** 2))),
            "r2_log10": r2(lt, lp),
        }
        for k, v in vals.items():
            per[k].append(v)
            if len(names) > 1:
                out[f"{k}/{n}"] = v
    for k, v in per.items():  # a parameter's undefined r2 (said) is left out of the mean
        defined = [x for x in v if not np.isnan(x)]
        out[k] = float(np.mean(defined)) if defined else float("nan")
    return out


KIND = PopgenKind()
__all__ = ["KIND", "PopgenData", "PopgenKind", "multiclass_metrics", "regression_metrics"]
