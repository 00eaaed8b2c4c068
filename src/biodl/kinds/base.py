"""The contract every data kind implements (:class:`DataKind`), and the pieces kinds share:
the training context, the splits, the prediction table and the evaluation writer.

:mod:`biodl.pipeline` drives a kind through these steps and nothing else:

* ``biodl train``: :meth:`DataKind.load` (inputs -> :class:`Splits`), :meth:`DataKind.build`
  (the network and its :class:`~biodl.train.checkpoint.RunMeta`), :meth:`DataKind.fit` (by
  default one :func:`biodl.train.fit` of :meth:`DataKind.plan` on :meth:`DataKind.datamodule`;
  systems that train several networks loop over it), then the held-out test evaluation and
  :meth:`DataKind.after_fit` (extra outputs);
* ``biodl evaluate`` / ``predict``: :meth:`DataKind.read`, :meth:`DataKind.score` (through the
  one :func:`biodl.train.predict`), :meth:`DataKind.metrics`, :meth:`DataKind.frame`;
* ``biodl report``: the shared run sections plus :meth:`DataKind.report_sections`.

Options a kind accepts are declared in :attr:`DataKind.options` (:class:`biodl.options.Option`)
and checked before any work starts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from biodl.errors import BiodlInputError
from biodl.options import Option

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

    from biodl.registry import Recipe
    from biodl.train import DataModule, FitResult, RunMeta, TrainConfig, TrainingPlan


def primary_process() -> bool:
    """False in the worker processes of a multi-process (DDP / SLURM) run."""
    import os

    return all(os.environ.get(v, "0") == "0" for v in ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID"))


def log(msg: str, quiet: bool = False) -> None:
    """A progress line on standard error (``[biodl] ...``); said by the primary process of a
    multi-process run only (each DDP worker runs the same command and would repeat it)."""
    if not quiet and primary_process():
        from rich.console import Console

        Console(stderr=True, soft_wrap=True, emoji=False).print(msg, highlight=False, markup=False)


_MAGIC = ((b"\x89HDF\r\n\x1a\n", "HDF5"), (b"FCS", "FCS"), (b"BCF\x02", "BCF"), (b"PK\x03\x04", "ZIP"))
_TEXT_MAGIC = (
    ("##fileformat=VCF", "VCF"),
    ("##gff-version", "GFF"),
    ("##sequence-region", "GFF"),
    (">", "FASTA"),
    ("@", "FASTQ"),
)


def _label_matrix(y: np.ndarray, names: list | None) -> tuple[np.ndarray, list[str]]:
    """Labels as ``(n, n_labels)`` float64 and a name for each column (``output j`` unnamed)."""
    y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    names = [str(n) for n in names] if names is not None and len(names) == y.shape[1] else None
    return y, names or [f"output {j}" for j in range(y.shape[1])]


def check_label_values(y: np.ndarray, names: list | None, task: str, where: str) -> None:
    """Refuse label values no loss or metric can use: infinite values (the model would train to
    NaN), and for binary / multi-label tasks values other than 0 and 1 (NaN, missing, is fine)."""
    y, names = _label_matrix(y, names)
    inf = np.isinf(y)
    if inf.any():
        j = int(np.flatnonzero(inf.any(axis=0))[0])
        raise BiodlInputError(
            f"{int(inf.sum())} infinite label value(s) in the {where} data (first: {names[j]} = "
            f"{y[inf[:, j], j][0]:g}); give finite numbers, or leave a value empty / NaN for missing"
        )
    if task in ("binary", "multilabel"):
        bad = ~np.isnan(y) & (y != 0) & (y != 1)
        if bad.any():
            j = int(np.flatnonzero(bad.any(axis=0))[0])
            vals = ", ".join(f"{v:g}" for v in np.unique(y[bad[:, j], j])[:5])
            raise BiodlInputError(
                f"a {task} task needs labels 0 or 1, but {int(bad.sum())} {where} label value(s) are "
                f"not (label {names[j]}: {vals})"
                + ("; give --task regression for continuous values" if where == "training" else "")
            )


def say_unscaled_targets(log, y: np.ndarray, source, who: str) -> None:
    """Warn (``log``) when regression targets ``y`` are far from mean 0 / sd 1 and the network
    (``who``, e.g. "sequence networks fit") fits them as given, starting near 0 with unit scale:
    +100 or x 1000 trained useless models without a word (molecules, D-GEX and popgen scale
    their targets inside the model)."""
    y = np.asarray(y, dtype=np.float64)
    y = y[np.isfinite(y)]
    if y.size < 2:
        return
    mean, sd = float(y.mean()), float(y.std())
    if 0 < sd and (sd > 100 or sd < 0.01 or abs(mean) > 10 * max(sd, 1.0)):
        log(
            f"warning: {source}: the regression targets have mean {mean:.4g} and sd {sd:.4g}; {who} the "
            "targets as given, starting near 0 with unit scale, and learn slowly or not at all far from "
            "it: standardise them ((y - mean) / sd), or log-transform counts, before training"
        )


def check_labels(y: np.ndarray, names: list | None, task: str, quiet: bool = False, source=None) -> None:
    """Training targets a user should hear about: missing (NaN) values are counted (they are
    masked out of the loss and the metrics); a label with no values, or -- for a binary task
    -- a single class (all 0: nothing to learn, AUROC undefined) is refused; multi-label
    labels with one class and constant regression targets are warned about (nothing to learn;
    a split is scored, and averaged, over its labels that have both classes, see
    :func:`~biodl.train.metrics.warn_one_class`). ``source``: the training file, named
    in the errors."""
    y, names = _label_matrix(y, names)
    check_label_values(y, names, task, "training")
    nan = np.isnan(y)
    if nan.any():
        empty = [n for n, e in zip(names, nan.all(axis=0), strict=True) if e]
        if empty:
            raise BiodlInputError(
                f"label column(s) with no value in the training rows: {', '.join(empty)}", path=source
            )
        per = ", ".join(f"{n}: {int(c)}" for n, c in zip(names, nan.sum(axis=0), strict=True) if c)
        log(
            f"[biodl] {int(nan.sum())} missing (NaN) label value(s) in the training set ({per}); "
            "masked out of the loss and the metrics",
            quiet,
        )
    single = {}
    for j, n in enumerate(names):
        vals = np.unique(y[~nan[:, j], j])
        if len(vals) < 2:
            single[n] = vals[0] if len(vals) else float("nan")
    if not single or task == "multiclass":
        return
    if task == "binary" or len(single) == len(names):
        what = "; ".join(f"{n}: all {v:g}" for n, v in single.items())
        raise BiodlInputError(
            f"the training labels have one value only ({what}): there is nothing to learn and AUROC / "
            "correlation are undefined. Check the label column"
            + (
                ", or add negatives (sequence files: --shuffle-negatives)"
                if task == "binary" and all(v == 1 for v in single.values())
                else ""
            ),
            path=source,
        )
    kind = "class" if task == "multilabel" else "value"
    log(
        f"[biodl] warning: {len(single)} label(s) have one {kind} only in the training set "
        f"({', '.join(f'{n}: all {v:g}' for n, v in list(single.items())[:20])}"
        f"{', ...' if len(single) > 20 else ''}): the model cannot learn them; a split that has both "
        "of their classes (validation, test) still scores them, and its means include them",
        quiet,
    )


_ARTICLE = {"HDF5": "an", "FCS": "an"}


def sniff_format(path: str | Path) -> str | None:
    """The format of ``path`` by its first bytes (plain or gzip): ``FASTA``, ``FASTQ``, ``VCF``,
    ``GFF``, ``HDF5`` (AnnData), ``FCS``, ``BCF``, ``ZIP``; ``None`` for anything else (tables,
    SDF, ...), which the kind's reader judges."""
    import gzip

    p = Path(path)
    if not p.is_file():
        return None
    try:
        with open(p, "rb") as fh:
            head = fh.read(512)
        if head[:2] == b"\x1f\x8b":
            with gzip.open(p, "rb") as fh:
                head = fh.read(512)
    except (OSError, EOFError):
        return None  # the kind's reader says what is wrong with it
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    text = head.decode("utf-8", "replace").lstrip("\ufeff")
    for magic, name in _TEXT_MAGIC:
        if text.startswith(magic):
            return name
    return None


def kind_of(meta: RunMeta) -> DataKind:
    from biodl.kinds import get_kind

    return get_kind(meta.kind)


def require_kind(meta: RunMeta, kinds: tuple[str, ...], command: str, needs: str) -> None:
    """Refuse, naming the model's kind and what it reads, a ``command`` that ``needs`` a model
    of one of ``kinds`` (``biodl ism`` with a CellCnn model, say)."""
    if meta.kind not in kinds:
        raise BiodlInputError(
            f"{command} needs {needs}; this model is {meta.recipe} of kind {meta.kind!r}, which reads "
            f"{kind_of(meta).reads or meta.kind}"
        )


@dataclass
class TrainContext:
    """Everything a kind needs to train: the recipe, the resolved kind options, the model
    options given by the user, the training config and the run directory."""

    recipe: Recipe
    options: dict[str, Any]
    model_options: dict[str, Any]
    config: TrainConfig
    out: Path
    quiet: bool = False
    config_given: frozenset[str] = frozenset()  # TrainConfig fields the user set (not recipe defaults)
    given: frozenset[str] = frozenset()  # kind options the user set (not defaults)

    def log(self, msg: str) -> None:
        log(f"[biodl] {msg}", self.quiet)


@dataclass
class Splits:
    """Training, validation and test data of a run, in the kind's own form (datasets or
    tables), plus ``info`` (sizes, how the hold-outs were made: goes to ``RunMeta.splits``) and
    ``extra`` (anything :meth:`DataKind.build` needs, e.g. the label names)."""

    train: Any
    valid: Any = None
    test: Any = None
    info: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


class DataKind:
    """Base class of the data kinds; subclasses override the hooks their data needs.

    Class attributes
    ----------------
    name
        Registry name (``sequences``, ``windows``, ...).
    title
        Human name used in messages (``"sequence files"``).
    options
        Declared options (train / evaluate / predict / report).
    hints
        Advice shown when a known option of another kind is refused here.
    collate_fn
        DataLoader collate for items that are not plain tensors.
    report_on_train
        Write ``report.html`` at the end of ``biodl train`` (unless ``--set report=false``).
    supports_ensemble
        ``biodl train --ensemble K`` trains K networks through :meth:`build` + :meth:`fit` with
        seeds ``seed .. seed + K - 1`` and keeps them as one model (see :meth:`finish_ensemble`).
    supports_calibration
        ``biodl train --calibrate N`` scores N settings by cross-validation on rows of
        ``splits.train`` (:class:`~biodl.train.calibrate.Rows`), each fold trained by the one
        runner on :meth:`plan` and :meth:`datamodule` of the network :meth:`build` makes with the
        setting's options, then trains the best as usual.
    """

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    #: What the kind's models read, for messages ("DNA sequences: FASTA, or a table ...").
    reads: ClassVar[str] = ""
    #: The formats :func:`sniff_format` recognises that the kind reads (others are refused).
    formats: ClassVar[frozenset[str]] = frozenset()
    options: ClassVar[tuple[Option, ...]] = ()
    hints: ClassVar[dict[str, str]] = {}
    collate_fn: ClassVar[Any] = None
    report_on_train: ClassVar[bool] = False
    supports_ensemble: ClassVar[bool] = False
    supports_calibration: ClassVar[bool] = False
    #: The Python objects :meth:`from_memory` takes (``biodl.load(RUN).predict([...])``), in
    #: words for messages and docs; empty: the kind's models read files only.
    memory_inputs: ClassVar[str] = ""
    #: What ``biodl report RUN --data FILE`` (``--test``) gives the kind's report sections, in
    #: words; empty: its report reads no inputs (the option is refused).
    report_data: ClassVar[str] = ""

    def output_names(self, meta: RunMeta) -> list[str]:
        """The names of the model's outputs, in order (default: its label names)."""
        return list(meta.label_names or [])

    def __repr__(self) -> str:
        return f"<biodl data kind {self.name!r}: {self.title}>"

    def training_labels(self, meta: RunMeta, splits: Splits) -> np.ndarray | None:
        """The training targets ``(n, n_labels)`` (NaN = missing), checked by
        :func:`check_labels` before training; ``None`` when the kind checks its own (or has none)."""
        return None

    def check_format(self, recipe: str, path: str | Path | None, what: str = "this model") -> None:
        """Refuse an input whose format (by :func:`sniff_format`) this kind does not read,
        naming the format, the model and what it reads (a FASTA given to a molecule model)."""
        fmt = sniff_format(path) if isinstance(path, (str, Path)) else None
        if fmt is not None and fmt not in self.formats:
            raise BiodlInputError(
                f"is {_ARTICLE.get(fmt, 'a')} {fmt} file, but {what} ({recipe}, kind "
                f"{self.name!r}) reads {self.reads}",
                path=path,
            )

    # ------------------------------------------------------------------ selection
    def claims(self, given: dict[str, Any]) -> bool:
        """Whether the given options ask for this kind when a recipe accepts several (e.g.
        ``--genome`` asks for genome windows)."""
        return False

    # ------------------------------------------------------------------ training
    def load(self, ctx: TrainContext) -> Splits:
        """Read the training inputs and make the splits."""
        raise NotImplementedError

    def build(self, ctx: TrainContext, splits: Splits) -> tuple[nn.Module, RunMeta]:
        """The network (seeded) and its :class:`RunMeta` (kind, recipe, task, model kwargs,
        label names, data description, split sizes)."""
        raise NotImplementedError

    def datasets(self, ctx: TrainContext, meta: RunMeta, splits: Splits) -> tuple[Any, Any]:
        """The training and validation datasets (default: ``splits.train``, ``splits.valid``)."""
        return splits.train, splits.valid

    def plan(self, ctx: TrainContext, model: nn.Module, meta: RunMeta, splits: Splits) -> TrainingPlan:
        """The training plan (default: the task's loss, AdamW with the config's lr / weight decay)."""
        from biodl.train import TrainingPlan

        c = ctx.config
        return TrainingPlan(
            model,
            meta.task,
            lr=c.lr,
            weight_decay=c.weight_decay,
            seed=c.seed,
            max_epochs=c.max_epochs,
            label_names=meta.label_names,
        )

    def datamodule(self, ctx: TrainContext, meta: RunMeta, splits: Splits) -> DataModule:
        from biodl.train import DataModule

        train, valid = self.datasets(ctx, meta, splits)
        c = ctx.config
        return DataModule(
            train,
            valid,
            batch_size=c.batch_size,
            seed=c.seed,
            num_workers=c.num_workers,
            collate_fn=type(self).collate_fn,
        )

    def fit(
        self, ctx: TrainContext, model: nn.Module, meta: RunMeta, splits: Splits
    ) -> tuple[nn.Module, FitResult, RunMeta]:
        """Train; returns the network with the chosen weights, the fit result and the run's
        meta (a kind that chooses its configuration while fitting updates it). Default: one
        :func:`biodl.train.fit` of :meth:`plan` on :meth:`datamodule`."""
        from biodl.train import fit

        plan = self.plan(ctx, model, meta, splits)
        res = fit(
            plan,
            self.datamodule(ctx, meta, splits),
            ctx.out,
            ctx.config,
            meta,
            threads=self.threads(ctx),
            quiet=ctx.quiet,
        )
        return plan.model, res, meta

    def finish_ensemble(
        self, ctx: TrainContext, model: nn.Module, meta: RunMeta, splits: Splits
    ) -> tuple[RunMeta, dict[str, float]]:
        """After the members of an ensemble are trained (``model`` is the
        :class:`~biodl.train.ensemble.Ensemble`): its meta (:meth:`with_thresholds`) and its
        validation metrics (``val_<metric>``; empty without a validation set), both from one
        scoring of ``splits.valid`` (:meth:`validation_outputs`)."""
        import torch

        from biodl.train import compute_metrics

        if splits.valid is None or not len(splits.valid):
            return meta, {}
        out, y = self.validation_outputs(ctx, model, meta, splits.valid)
        m = compute_metrics(
            meta.task, torch.from_numpy(out), torch.from_numpy(y), meta.label_names, meta.classes
        )
        return self.with_thresholds(meta, out, y), {
            f"val_{k}": float(v) for k, v in m.items() if "/" not in k
        }

    def validation_outputs(
        self, ctx: TrainContext, model: nn.Module, meta: RunMeta, valid: Any
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(outputs, labels)`` of ``model`` on the validation dataset (``(x, y)`` items)."""
        from biodl.train import predict

        return predict(model, valid, batch_size=256, device=ctx.config.device)

    def with_thresholds(self, meta: RunMeta, outputs: np.ndarray, labels: np.ndarray) -> RunMeta:
        """``meta`` with what the kind chooses on validation outputs (default: nothing)."""
        return meta

    def threads(self, ctx: TrainContext) -> int | None:
        """torch CPU threads while training (``None``: leave torch's setting)."""
        return None

    def after_fit(self, ctx: TrainContext, model: nn.Module, meta: RunMeta, splits: Splits) -> dict[str, Any]:
        """Extra outputs of a finished run (files in ``ctx.out``); returns summary entries."""
        return {}

    # ------------------------------------------------------------------ inference
    def read(
        self,
        meta: RunMeta,
        path: str | Path | None,
        options: dict[str, Any],
        *,
        labelled: bool,
        quiet: bool = True,
    ):
        """Read inputs to evaluate (``labelled``) or predict, as the model's training data was read."""
        raise NotImplementedError

    def from_memory(
        self, meta: RunMeta, data: Any, options: dict[str, Any], *, labelled: bool, labels: Any = None
    ):
        """The table :meth:`read` would make, from Python objects (:attr:`memory_inputs`)
        instead of a file; ``labelled`` (evaluation): with ``labels``, one per item, or for a
        DataFrame the name(s) of its label column(s) (default: the model's label names).
        Default: the kind reads files only, and says so."""
        raise BiodlInputError(
            f"{self.title} models read their inputs from files: give a path to {self.reads} "
            f"(not a {type(data).__name__})"
        )

    def score(
        self,
        model: nn.Module,
        meta: RunMeta,
        table,
        *,
        device: str,
        options: dict[str, Any],
        batch_size: int = 256,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(outputs, targets)`` of ``model`` on ``table`` (targets ``(n, 0)`` when unlabelled)."""
        raise NotImplementedError

    def metrics(self, meta: RunMeta, outputs: np.ndarray, targets: np.ndarray, table) -> dict[str, float]:
        """Metrics of ``outputs`` against ``targets`` (default: the task's, :func:`compute_metrics`)."""
        import torch

        from biodl.train.metrics import compute_metrics

        if meta.task != "multiclass" and targets.shape[1] != outputs.shape[1]:
            raise BiodlInputError(
                f"the data has {targets.shape[1]} label column(s), the model {outputs.shape[1]} output(s)",
                path=self.source(table),
            )
        return compute_metrics(
            meta.task, torch.from_numpy(outputs), torch.from_numpy(targets), meta.label_names, meta.classes
        )

    def frame(
        self, meta: RunMeta, table, outputs: np.ndarray, targets: np.ndarray | None = None
    ) -> pd.DataFrame:
        """The prediction table (input order kept; with ``targets``, the truth beside it)."""
        raise NotImplementedError

    def predict_frame(
        self,
        model: nn.Module,
        meta: RunMeta,
        table,
        *,
        device: str,
        options: dict[str, Any],
        batch_size: int = 256,
    ) -> pd.DataFrame:
        """What ``biodl predict`` writes (default: :meth:`frame` of :meth:`score`)."""
        outputs, _ = self.score(model, meta, table, device=device, options=options, batch_size=batch_size)
        return self.frame(meta, table, outputs)

    #: Inputs ``biodl predict`` scores at a time when :meth:`read_chunks` reads a file in pieces
    #: (``None``: :data:`biodl.pipeline.PREDICT_ROWS`); ``--rows`` overrides it.
    predict_rows: ClassVar[int | None] = None

    def read_chunks(self, meta: RunMeta, path, options: dict[str, Any], rows: int):
        """``biodl predict`` of a file in pieces: an iterator over tables of at most ``rows``
        inputs of ``path`` in file order (read and checked as :meth:`read` reads them, labels
        not needed), so that a file of any size is scored in the memory of one piece; ``None``
        (the default) when the kind reads its files whole."""
        return None

    def predict_frames(
        self,
        model: nn.Module,
        meta: RunMeta,
        pieces,
        *,
        device: str,
        options: dict[str, Any],
        batch_size: int = 256,
    ):
        """The :meth:`predict_frame` of each table of :meth:`read_chunks`, one after the other
        (a kind that streams says its notes on the inputs once, over the whole file)."""
        for table in pieces:
            yield self.predict_frame(
                model, meta, table, device=device, options=options, batch_size=batch_size
            )

    def predictions_header(self, df: pd.DataFrame) -> bool:
        """Whether the text ``biodl predict`` writes for ``df`` starts with the column names
        (default: yes)."""
        return True

    def predictions_text(self, df: pd.DataFrame, sep: str = "\t") -> str:
        """The text ``biodl predict`` writes for ``df`` (a TSV, 9 significant digits, with a
        header unless :meth:`predictions_header` says otherwise)."""
        from biodl.io.predictions import format_table

        return format_table(df, sep=sep, header=self.predictions_header(df))

    def size(self, table) -> int:
        return len(table)

    def source(self, table) -> str | None:
        """Where ``table`` came from (named in metrics.json and errors)."""
        src = getattr(table, "source", None) or getattr(table, "path", None)
        return None if src is None else str(src)

    def result_extras(self, meta: RunMeta, table, outputs: np.ndarray, targets: np.ndarray) -> dict[str, Any]:
        """Extra entries of an evaluation's ``metrics.json``."""
        return {}

    def write_evaluation(
        self, out_dir, result: dict[str, Any], meta: RunMeta, table, outputs: np.ndarray, targets: np.ndarray
    ) -> None:
        """Write an evaluation directory (default: :func:`write_evaluation` of :meth:`frame`)."""
        write_evaluation(
            out_dir, result, self.frame(meta, table, outputs, targets), targets, outputs, meta.label_names
        )

    def evaluation_sections(self, meta: RunMeta) -> list[str]:
        """Plot files of an evaluation directory shown in the report."""
        return ["roc.png", "pr.png", "scatter.png"]

    # ------------------------------------------------------------------ report
    def describe_data(self, meta: RunMeta) -> dict[str, Any]:
        """Rows about the data for the report's run table."""
        return {}

    def report_sections(
        self, run: Path, model: nn.Module, meta: RunMeta, data: str | Path | None, options: dict[str, Any]
    ) -> list:
        """The kind's own report sections (interpretation); default none."""
        return []


# ---------------------------------------------------------------------- shared helpers
def prediction_frame(
    task: str,
    ids: list[str],
    logits: np.ndarray,
    names: list[str] | None = None,
    classes: list[str] | None = None,
    targets: np.ndarray | None = None,
    thresholds: list[float] | None = None,
) -> pd.DataFrame:
    """Predictions as a table in input order: ``id`` then, per task, ``prob_<class>`` and
    ``predicted`` (multiclass), ``pred_<name>`` (regression) or ``logit_<name>`` and
    ``prob_<name>`` (binary / multi-label; with ``thresholds``, one probability per output,
    also ``called_<name>``: 1 where the probability reaches it). ``logits`` is ``(n,
    n_outputs)``. With ``targets`` (``(n, n_labels)``, NaN = missing), the truth follows:
    ``true`` (the class, multiclass) or ``true_<name>`` per output (empty where the label is
    missing). The table is built in one step from whole arrays (a model of 919 outputs gives
    ~2,750 columns)."""
    logits = np.asarray(logits)
    names = names or [f"out{j}" for j in range(logits.shape[1])]
    cols: dict[str, Any] = {"id": np.asarray(list(ids), dtype=object)}
    if task == "multiclass":
        z = logits.astype(np.float64)
        z = np.exp(z - z.max(axis=1, keepdims=True)) if len(z) else z
        prob = z / z.sum(axis=1, keepdims=True) if len(z) else z
        classes = classes or names
        cols.update({f"prob_{c}": prob[:, j] for j, c in enumerate(classes)})
        cols["predicted"] = np.asarray(
            [classes[k] for k in prob.argmax(1)] if len(prob) else [], dtype=object
        )
    elif task == "regression":
        cols.update({f"pred_{n}": logits[:, j] for j, n in enumerate(names)})
    else:
        prob = 1 / (1 + np.exp(-logits.astype(np.float64)))
        called = None
        if thresholds is not None:
            called = (prob >= np.asarray(thresholds, dtype=np.float64)[: prob.shape[1]]).astype(np.int8)
        for j, n in enumerate(names[: logits.shape[1]]):
            cols[f"logit_{n}"] = logits[:, j]
            cols[f"prob_{n}"] = prob[:, j]
            if called is not None:
                cols[f"called_{n}"] = called[:, j]
    if targets is not None and np.asarray(targets).size:
        t = np.asarray(targets, dtype=np.float64).reshape(len(ids), -1)
        if task == "multiclass":
            cn = classes or names
            cols["true"] = np.asarray([cn[int(v)] if not np.isnan(v) else "" for v in t[:, 0]], dtype=object)
        else:
            cols.update({f"true_{n}": t[:, j] for j, n in enumerate(names[: t.shape[1]])})
    return pd.DataFrame(cols, copy=False)


def write_table(df: pd.DataFrame, path: str | Path) -> Path:
    """A TSV written atomically (9 significant digits: a float32 exactly)."""
    from biodl.io.predictions import write_predictions

    return write_predictions(df, path, "tsv")


def write_results(out_dir: str | Path, result: dict[str, Any], predictions: pd.DataFrame) -> Path:
    """``out_dir/metrics.json`` (``result``, with ``result["out_dir"]`` set) and
    ``out_dir/predictions.tsv``, both atomic; returns ``out_dir``."""
    from biodl.io._util import output_dir
    from biodl.train.checkpoint import atomic_json  # NaN / inf (undefined metrics) as null

    od = Path(out_dir)
    output_dir(od)
    result.setdefault("out_dir", str(od))  # the final folder when written through staged_outputs
    atomic_json(result, od / "metrics.json")
    write_table(predictions, od / "predictions.tsv")
    return od


def read_results(out_dir: str | Path) -> dict[str, Any] | None:
    """``out_dir/metrics.json`` as :func:`write_results` wrote it, or ``None`` when there is
    none; a file that is not one (cut short, edited) is said in a warning and taken as none,
    so a report leaves out the sections that need it instead of failing."""
    from biodl.io._util import half_replaced

    p = Path(out_dir) / "metrics.json"
    if half_replaced(out_dir) and p.exists():
        from biodl.train.metrics import note_once

        note_once(
            f"[biodl] warning: {out_dir}: an evaluation was stopped while its files were moved in, so "
            "the folder may hold two evaluations' files; its results are left out (biodl evaluate, "
            "or training again, writes them anew)"
        )
        return None
    try:
        result = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        problem = f"unreadable ({type(e).__name__}: {e})"
    else:
        if isinstance(result, dict) and isinstance(result.get("metrics"), dict):
            return result
        problem = "not an evaluation's metrics.json (no 'metrics' table)"
    from biodl.train.metrics import note_once

    note_once(  # once, however many sections ask
        f"[biodl] warning: {p}: {problem}; the sections that need it are left out (biodl evaluate, "
        "or training again, writes it anew)"
    )
    return None


def write_evaluation(
    out_dir: str | Path,
    result: dict[str, Any],
    predictions: pd.DataFrame,
    y: np.ndarray,
    scores: np.ndarray,
    label_names: list[str] | None = None,
) -> None:
    """Write an evaluation to ``out_dir``: ``metrics.json`` (``result``), ``predictions.tsv``
    and, for binary / multi-label tasks, ``roc.png`` and ``pr.png`` of ``scores`` against
    ``y`` (both ``(n, n_labels)``; labels with one class only are left out of the plots); for
    regression, ``scatter.png`` (predicted against observed). Sets ``result["out_dir"]``."""
    od = write_results(out_dir, result, predictions)
    names = label_names or [f"out{j}" for j in range(y.shape[1] if y.ndim == 2 else 1)]
    if result["task"] in ("binary", "multilabel") and y.size:
        from biodl.report.plots import plot_pr, plot_roc

        ok = [j for j in range(y.shape[1]) if len(np.unique(y[~np.isnan(y[:, j]), j])) == 2]
        if ok:
            sub = [names[j] for j in ok] if len(names) == y.shape[1] else None
            plot_roc(y[:, ok], scores[:, ok], od / "roc.png", label_names=sub)
            plot_pr(y[:, ok], scores[:, ok], od / "pr.png", label_names=sub)
    elif result["task"] == "regression" and len(y) >= 2:
        from biodl.report.plots import plot_scatter

        try:
            plot_scatter(y, scores, od / "scatter.png", label_names=label_names)
        except ValueError:  # no target with two observed values: nothing to draw
            pass
