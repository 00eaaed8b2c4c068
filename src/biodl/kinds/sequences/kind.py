"""Labelled sequence files as a data kind: DeepBind, DeepSEA, Basset, DanQ, the splicing CNN.

Training reads a TSV/CSV table with sequence and label columns (DeepBind ``.seq`` files
included) or a FASTA with ``class:1`` labels in the headers; positive-only files get
dinucleotide-shuffled negatives (DeepBind's protocol), optionally drawn afresh every epoch.
Without ``--valid``, a seeded fraction of the training file is held out for validation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from biodl.errors import BiodlInputError
from biodl.kinds.base import DataKind, Splits, TrainContext, prediction_frame
from biodl.options import Option
from biodl.train.checkpoint import RunMeta, data_as

SEQUENCE_TASKS = ("binary", "multilabel", "multiclass", "regression")

#: Options of the sequence kind that genome windows share (augmentation, strand averaging).
AUGMENT_OPTIONS = (
    Option(
        "rc_augment", "bool", False, "Reverse-complement augmentation of training items.", flag="--rc-augment"
    ),
    Option(
        "shift",
        "int",
        0,
        "Random shifts of training items by up to this many bases.",
        flag="--shift",
        minimum=0,
    ),
    Option(
        "class_weight", "bool", False, "Weight the loss by inverse class frequency.", flag="--class-weight"
    ),
    Option(
        "rc_average",
        "bool",
        None,
        "Average the outputs of both strands when scoring (default: when trained with --rc-augment).",
        flag="--rc-average",
        stages=("train", "evaluate", "predict"),
    ),
)

OPTIONS = (
    Option(
        "data",
        "path",
        None,
        "Training file: TSV/CSV (.seq) with sequence + label columns, or labelled FASTA.",
        flag="DATA",
    ),
    Option(
        "valid_file", "path", None, "Validation file (default: hold out --valid-fraction).", flag="--valid"
    ),
    Option("test_file", "path", None, "Held-out test file, evaluated after training.", flag="--test"),
    Option(
        "task",
        "choice",
        None,
        "Task (default: guessed from the labels).",
        flag="--task",
        choices=SEQUENCE_TASKS,
    ),
    Option(
        "valid_fraction",
        "float",
        0.1,
        "Fraction of the training file held out for validation.",
        flag="--valid-fraction",
        minimum=0,
    ),
    Option(
        "shuffle_negatives",
        "choice",
        "auto",
        "auto: add dinucleotide-shuffled negatives when every label is 1 (DeepBind); yes; no.",
        flag="--shuffle-negatives",
        choices=("auto", "yes", "no"),
    ),
    Option(
        "resample_negatives",
        "bool",
        False,
        "Draw fresh shuffled negatives every epoch (DeepBind's protocol).",
        flag="--resample-negatives",
    ),
    Option("seq_col", "str", None, "Sequence column (default: seq / sequence).", flag="--seq-col"),
    Option(
        "label_col",
        "str",
        None,
        "Label column(s), comma-separated (default: Bound / label / class).",
        flag="--label-col",
    ),
    Option("pad", "int", None, "Pad with N / crop every sequence to this length.", flag="--pad", minimum=1),
    Option("iupac_as_n", "bool", False, "Read IUPAC ambiguity codes (R, Y, ...) as N.", flag="--iupac-as-n"),
    Option(
        "uppercase", "bool", False, "Upper-case sequences on reading (soft-masked input).", flag="--uppercase"
    ),
    *AUGMENT_OPTIONS,
)


@dataclass
class SequenceData:
    """``RunMeta.data`` of a sequence model: how its inputs are read and encoded."""

    seq_len: int | None = None
    n_value: float = 0.25
    iupac_as_n: bool = False
    uppercase: bool = False
    rc_augment: bool = False
    resample_negatives: bool = False
    train_file: str | None = None


def load_table(
    path: str | Path,
    require_labels: bool = True,
    seq_col: str | None = None,
    label_cols: str | list[str] | None = None,
    iupac_as_n: bool = False,
    uppercase: bool = False,
):
    """Read a labelled sequence file (FASTA with labels in headers, or TSV/CSV)."""
    from biodl.kinds.sequences.io import read_sequences

    kw: dict[str, Any] = dict(iupac_as_n=iupac_as_n, uppercase=uppercase)
    if seq_col:
        kw["seq_col"] = seq_col
    if label_cols:
        kw["label_cols"] = label_cols
    from biodl.io._util import warn_duplicate_ids

    table = read_sequences(path, require_labels=require_labels, **kw)
    warn_duplicate_ids(table.ids, path)
    return table


def _is_positive_only(table) -> bool:
    if table.labels is None or table.classes is not None:
        return False
    vals = table.labels[~np.isnan(table.labels)]
    return table.labels.shape[1] == 1 and vals.size > 0 and bool((vals == 1).all())


def class_weights(labels: np.ndarray, task: str, n_classes: int = 0):
    """Inverse-frequency weights: positives weighted by neg/pos per label (binary,
    multilabel), classes by n / (k * count) (multiclass)."""
    import torch

    if task == "multiclass":
        counts = np.bincount(labels[:, 0].astype(int), minlength=n_classes)
        return torch.tensor(len(labels) / (len(counts) * np.maximum(counts, 1)), dtype=torch.float32)
    pos = np.nansum(labels, axis=0)
    neg = np.sum(~np.isnan(labels), axis=0) - pos
    return torch.tensor(neg / np.maximum(pos, 1), dtype=torch.float32)


def augmented(dataset, options: dict[str, Any], seed: int, n_value: float):
    """``dataset`` wrapped in the augmenter when ``rc_augment`` or ``shift`` is set."""
    from biodl.kinds.sequences.augment import AugmentedDataset, Augmenter

    aug = Augmenter(
        rc=bool(options.get("rc_augment")), shift=int(options.get("shift") or 0), seed=seed, n_value=n_value
    )
    return AugmentedDataset(dataset, aug) if aug else dataset


def rc_average_for(meta: RunMeta, options: dict[str, Any]) -> bool:
    """``--rc-average`` as given, else whether the model was trained on both strands."""
    v = options.get("rc_average")
    return bool(meta.data.get("rc_augment", False)) if v is None else bool(v)


def sequence_dataset(meta: RunMeta, table):
    """The dataset to score ``table`` with (the model's length, N value and IUPAC rule), or
    ``None`` when the sequences should be scored at their own lengths: they differ from the
    training length and the model was not built for a fixed length (no ``seq_len`` in its
    kwargs, e.g. DeepBind's global pooling)."""
    from biodl.kinds.sequences.data import SequenceDataset

    d = data_as(SequenceData, meta.data)
    lengths = {len(s) for s in table.seqs}
    if d.seq_len and lengths != {d.seq_len} and meta.model_kwargs.get("seq_len") is None:
        return None
    return SequenceDataset(table, length=d.seq_len, n_value=d.n_value, iupac_as_n=d.iupac_as_n)


def length_notes(meta: RunMeta, table, padded: bool) -> None:
    """Say how many sequences are not scored as they are: with ``padded`` (a fixed-length
    model) those padded with N or cropped to the model's length; otherwise those far
    shorter (under half) than the training sequences, whose scores rest on few positions."""
    from biodl.io._util import note

    d = data_as(SequenceData, meta.data)
    if not d.seq_len or not len(table):
        return
    lens = np.fromiter((len(s) for s in table.seqs), dtype=np.int64, count=len(table))
    L, src = int(d.seq_len), getattr(table, "source", "input")
    if padded:
        short, long_ = lens < L, lens > L
        if short.any():
            note(
                f"[biodl] {src}: {int(short.sum())} of {len(lens)} sequence(s) shorter than the model's "
                f"{L} bp (shortest {int(lens.min())} bp) were padded with N, centred"
            )
        if long_.any():
            note(
                f"[biodl] {src}: {int(long_.sum())} of {len(lens)} sequence(s) longer than the model's "
                f"{L} bp were cropped to their central {L} bp"
            )
    else:
        far = lens < L // 2
        if far.any():
            note(
                f"[biodl] warning: {src}: {int(far.sum())} of {len(lens)} sequence(s) are under half the "
                f"{L}-bp training length (shortest {int(lens.min())} bp): scored at their own length, "
                "their scores rest on few positions"
            )


def score_sequences(model, meta: RunMeta, table, *, device: str, rc_average: bool, batch_size: int = 256):
    """``(outputs, targets)`` for every sequence of ``table``, in table order (sequences of
    other lengths than the training one are scored at their own length, grouped by length,
    when the model allows it)."""
    from biodl.kinds.sequences.data import SequenceDataset
    from biodl.train.predict import predict

    d = data_as(SequenceData, meta.data)
    ds = sequence_dataset(meta, table)
    length_notes(meta, table, padded=ds is not None)
    if ds is not None:
        return predict(model, ds, batch_size=batch_size, device=device, rc_average=rc_average)
    outs = np.zeros((len(table), model.n_outputs), dtype=np.float32)
    by_len: dict[int, list[int]] = {}
    for i, s in enumerate(table.seqs):
        by_len.setdefault(len(s), []).append(i)
    for idx in by_len.values():
        sub = SequenceDataset(table.subset(idx), n_value=d.n_value, iupac_as_n=d.iupac_as_n)
        outs[idx] = predict(model, sub, batch_size=batch_size, device=device, rc_average=rc_average)[0]
    y = table.labels if table.labels is not None else np.zeros((len(table), 0), np.float32)
    return outs, np.asarray(y, np.float32)


def sequence_inputs(meta: RunMeta, path: str | Path):
    """``(ids, X)``: the sequences of a FASTA/table file one-hot ``(n, 4, L)`` as the model
    reads them (its length when it needs one, N value, IUPAC rule), for ISM and attributions."""
    import torch

    from biodl.kinds.sequences.data import SequenceDataset

    d = data_as(SequenceData, meta.data)
    table = load_table(path, require_labels=False, iupac_as_n=d.iupac_as_n, uppercase=d.uppercase)
    lengths = {len(s) for s in table.seqs}
    fixed = meta.model_kwargs.get("seq_len") is not None or len(lengths) > 1
    length_notes(meta, table, padded=fixed)
    ds = SequenceDataset(
        table, length=d.seq_len if fixed else None, n_value=d.n_value, iupac_as_n=d.iupac_as_n
    )
    return list(table.ids), torch.stack([ds[i][0] for i in range(len(ds))])


class OneHotTraining(DataKind):
    """Training hooks shared by the one-hot DNA kinds (sequence files, genome windows): the
    augmenter (``--rc-augment``, ``--shift``) on the training set and ``--class-weight``."""

    def datasets(self, ctx, meta, splits):
        return augmented(splits.train, ctx.options, ctx.config.seed, splits.train.n_value), splits.valid

    def weighted_labels(self, meta, splits) -> tuple[np.ndarray, str, int]:
        """``(labels, task, n_classes)`` of the training set, for the class weights."""
        raise NotImplementedError

    def training_labels(self, meta, splits):
        return self.weighted_labels(meta, splits)[0]

    def plan(self, ctx, model, meta, splits):
        plan = super().plan(ctx, model, meta, splits)
        if ctx.options["class_weight"]:
            plan.pos_weight = class_weights(*self.weighted_labels(meta, splits))
        return plan


class SequencesKind(OneHotTraining):
    """Labelled sequence files."""

    name = "sequences"
    title = "sequence files"
    reads = "DNA sequences: FASTA, or a table with a sequence column (.seq/TSV/CSV)"
    formats = frozenset(("FASTA",))
    options = OPTIONS
    hints = {
        "skip_invalid": "molecule data only; sequence files must be valid, the error names the bad record",
    }

    def _read(self, ctx: TrainContext, path):
        o = ctx.options
        return load_table(
            path,
            seq_col=o["seq_col"],
            label_cols=o["label_col"],
            iupac_as_n=o["iupac_as_n"],
            uppercase=o["uppercase"],
        )

    def load(self, ctx: TrainContext) -> Splits:
        from biodl.kinds.sequences.data import SequenceDataset, add_shuffled_negatives
        from biodl.train.datamodule import split_indices

        o, seed = ctx.options, ctx.config.seed
        if o["data"] is None:
            raise BiodlInputError("no training file given (DATA or --data)")
        table = self._read(ctx, o["data"])
        n0 = None  # rows from n0 on are shuffled negatives (when added)
        if o["shuffle_negatives"] == "yes" or (o["shuffle_negatives"] == "auto" and _is_positive_only(table)):
            n0 = len(table)
            table = add_shuffled_negatives(table, seed=seed)
            ctx.log(
                f"{o['data']}: {n0} positives only; added {len(table) - n0} dinucleotide-shuffled "
                f"negatives (seed {seed})"
            )
        task = o["task"] or table.task_hint
        if o["valid_file"] is not None:
            tr = np.arange(len(table))
            train_t, valid_t = table, self._read(ctx, o["valid_file"])
        else:
            tr, va = split_indices(len(table), o["valid_fraction"], seed)
            train_t, valid_t = table.subset(tr), table.subset(va)
        test_t = self._read(ctx, o["test_file"]) if o["test_file"] is not None else None
        train_ds = SequenceDataset(train_t, length=o["pad"], iupac_as_n=o["iupac_as_n"], seed=seed)
        if o["resample_negatives"]:
            if n0 is None:
                raise BiodlInputError(
                    "--resample-negatives needs shuffled negatives (a positive-only file, or "
                    "--shuffle-negatives yes)",
                    path=o["data"],
                )
            rows = np.flatnonzero(tr >= n0)
            train_ds.resample_negatives(rows, [table.seqs[tr[r] - n0] for r in rows])
            ctx.log(f"{len(rows)} training negatives are re-shuffled every epoch")
        valid_ds = SequenceDataset(valid_t, length=train_ds.length, iupac_as_n=o["iupac_as_n"])
        return Splits(
            train=train_ds,
            valid=valid_ds,
            test=test_t,
            info={
                "n_train": len(train_t),
                "n_valid": len(valid_t),
                "valid": o["valid_file"] or f"{o['valid_fraction']:g} of the training file (seed {seed})",
            },
            extra={"table": table, "train_table": train_t, "task": task},
        )

    def build(self, ctx: TrainContext, splits: Splits):
        from biodl.train.fit import seed_all

        table, task = splits.extra["table"], splits.extra["task"]
        if task not in SEQUENCE_TASKS:
            raise BiodlInputError(f"task must be one of {', '.join(SEQUENCE_TASKS)}, not {task!r}")
        n_out = len(table.classes or []) if task == "multiclass" else table.labels.shape[1]
        seq_len = splits.train.length
        mk = ctx.recipe.model_kwargs(n_out, seq_len=seq_len, **ctx.model_options)
        seed_all(ctx.config.seed)
        try:
            model = ctx.recipe.build(**mk)
        except ValueError as e:
            raise BiodlInputError(f"cannot build {ctx.recipe.name} for {seq_len}-bp sequences: {e}") from None
        o = ctx.options
        data = SequenceData(
            seq_len=seq_len,
            n_value=splits.train.n_value,
            iupac_as_n=o["iupac_as_n"],
            uppercase=o["uppercase"],
            rc_augment=o["rc_augment"],
            resample_negatives=o["resample_negatives"],
            train_file=str(o["data"]),
        )
        meta = RunMeta(
            kind=self.name,
            recipe=ctx.recipe.name,
            task=task,
            model_kwargs=mk,
            label_names=table.classes if task == "multiclass" else table.label_names,
            classes=table.classes,
            data=asdict(data),
        )
        ctx.log(
            f"training {ctx.recipe.title} ({task}, {n_out} output(s), length {seq_len}) on "
            f"{len(splits.train)} sequences, validating on {len(splits.valid)}; output in {ctx.out}"
        )
        return model, meta

    def weighted_labels(self, meta, splits):
        t = splits.extra["train_table"]
        return t.labels, meta.task, len(t.classes or [])

    def after_fit(self, ctx, model, meta, splits):
        return {"seq_len": meta.data.get("seq_len")}

    # ------------------------------------------------------------------ inference
    def read(self, meta, path, options, *, labelled, quiet=True):
        if path is None:
            raise BiodlInputError("no sequence file given")
        d = data_as(SequenceData, meta.data)
        table = load_table(path, require_labels=labelled, iupac_as_n=d.iupac_as_n, uppercase=d.uppercase)
        if labelled and meta.task == "multiclass" and table.classes != meta.classes:
            if not set(table.classes or []) <= set(meta.classes or []):
                raise BiodlInputError(
                    f"classes {table.classes} do not match the model's {meta.classes}", path=path
                )
            remap = {i: meta.classes.index(c) for i, c in enumerate(table.classes)}
            table.labels = np.vectorize(remap.get)(table.labels).astype(np.float32)
        return table

    def score(self, model, meta, table, *, device, options, batch_size=256):
        return score_sequences(
            model, meta, table, device=device, rc_average=rc_average_for(meta, options), batch_size=batch_size
        )

    def frame(self, meta, table, outputs, targets=None) -> pd.DataFrame:
        return prediction_frame(meta.task, table.ids, outputs, meta.label_names, meta.classes, targets)

    def describe_data(self, meta):
        d = data_as(SequenceData, meta.data)
        return {"training file": d.train_file, "sequence length": d.seq_len}

    def report_sections(self, run, model, meta, data, options):
        from biodl.kinds.sequences.report import interpretation_sections, positive_test_sequences

        return interpretation_sections(run, model, meta, positive_test_sequences(run, meta, data))


KIND = SequencesKind()
