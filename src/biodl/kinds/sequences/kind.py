"""Labelled sequence files as a data kind: DeepBind, DeepSEA, Basset, DanQ, the splicing CNN.

Training reads a TSV/CSV table with sequence and label columns (DeepBind ``.seq`` files
included) or a FASTA with ``class:1`` labels in the headers; positive-only files get
dinucleotide-shuffled negatives (DeepBind's protocol), optionally drawn afresh every epoch.
Without ``--valid``, a seeded fraction of the training file is held out for validation.
GraphProt-style pairs (a positives FASTA as DATA and ``--negatives NEG.fa``, lowercase flanks
around an uppercase viewpoint) are read as they are: whole sequences by default, the viewpoint
only with ``--set viewpoint=true``.

Defaults that follow the data: RNA input (U and no T, or ``--alphabet rna``) is scanned on
the given strand only (DeepBind did so for RNA), DNA on both where the recipe can; a recipe
whose output does not depend on the input length (DeepBind) trains and scores sequences of
mixed lengths without ``--pad``; binary and multi-label models keep the decision threshold of
largest MCC on the validation split, used by ``evaluate`` (MCC, accuracy, sensitivity,
specificity) and ``predict`` (a ``called_<label>`` column).
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from biodl.errors import BiodlInputError
from biodl.kinds.base import DataKind, Splits, TrainContext, prediction_frame, say_unscaled_targets
from biodl.kinds.sequences.io import binary_from_words, positive_word
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
        "positive",
        "str",
        None,
        "A label column of two words as a binary task: the word that is the positive class (label 1), "
        "e.g. bound (default with --task binary: the positive word of a known pair, such as True / "
        "False, yes / no, bound / unbound).",
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
    Option(
        "seq_col",
        "str",
        None,
        "Sequence column (default: seq / sequence).",
        flag="--seq-col",
        stages=("train", "evaluate", "predict"),
    ),
    Option(
        "label_col",
        "str",
        None,
        "Label column(s), comma-separated; glob patterns ('f*') or 'all' (every column but the "
        "sequence and id) take many (default: Bound / label / class; evaluate: the model's "
        "label columns when the file has them).",
        flag="--label-col",
        stages=("train", "evaluate"),
    ),
    Option("pad", "int", None, "Pad with N / crop every sequence to this length.", flag="--pad", minimum=1),
    Option("iupac_as_n", "bool", False, "Read IUPAC ambiguity codes (R, Y, ...) as N.", flag="--iupac-as-n"),
    Option(
        "uppercase", "bool", False, "Upper-case sequences on reading (soft-masked input).", flag="--uppercase"
    ),
    Option(
        "alphabet",
        "choice",
        "auto",
        "dna: score both strands where the recipe can; rna: the given strand only (DeepBind's RNA "
        "protocol) unless -m reverse_complement=true / --rc-augment; auto: rna when the training "
        "sequences have U and no T.",
        flag="--alphabet",
        choices=("auto", "dna", "rna"),
    ),
    Option(
        "negatives",
        "path",
        None,
        "Negatives FASTA (GraphProt pairs): DATA is then the positives FASTA; label 1 / 0 by file.",
        flag="--negatives",
        stages=("train", "evaluate"),
    ),
    Option("valid_negatives", "path", None, "Negatives FASTA of --valid (GraphProt pairs)."),
    Option("test_negatives", "path", None, "Negatives FASTA of --test (GraphProt pairs)."),
    Option(
        "viewpoint",
        "bool",
        False,
        "Keep only the uppercase viewpoint of each sequence (GraphProt; default: the whole "
        "sequence, case folded). Applies to evaluate and predict too.",
    ),
    *AUGMENT_OPTIONS,
)

#: Added to the training seed for the shuffled negatives of a positives-only --valid / --test
#: file (apart from the training file's); evaluate uses the --test one, so it scores what training did.
HELD_OUT_NEGATIVES_SEED = {"valid": 1, "test": 2}

#: Tasks whose models keep a decision threshold chosen on the validation split.
THRESHOLD_TASKS = ("binary", "multilabel")


@dataclass
class SequenceData:
    """``RunMeta.data`` of a sequence model: how its inputs are read and encoded (``seq_len``
    ``None``: sequences of any length, scored each at its own; ``alphabet`` ``dna`` or ``rna``,
    as chosen at training; ``viewpoint``: only the uppercase part of each sequence is read)."""

    seq_len: int | None = None
    n_value: float = 0.25
    iupac_as_n: bool = False
    uppercase: bool = False
    rc_augment: bool = False
    resample_negatives: bool = False
    train_file: str | None = None
    alphabet: str = "dna"
    viewpoint: bool = False
    #: the training file was positives only (peaks) and got dinucleotide-shuffled negatives: an
    #: evaluation file of positives only gets its own, as a --test file does
    shuffled_negatives: bool = False


def load_table(
    path: str | Path,
    require_labels: bool = True,
    seq_col: str | None = None,
    label_cols: str | list[str] | None = None,
    iupac_as_n: bool = False,
    uppercase: bool = False,
    negatives: str | Path | None = None,
    viewpoint: bool = False,
    prefer_labels: list[str] | None = None,
):
    """Read a labelled sequence file (FASTA with labels in headers, or TSV/CSV), or with
    ``negatives`` a GraphProt pair (``path`` the positives FASTA): whole sequences, upper-cased,
    or only their uppercase viewpoint with ``viewpoint``. A table's labels: ``label_cols``,
    else ``prefer_labels`` when the table has them all, else the usual names."""
    from biodl.io._util import warn_duplicate_ids
    from biodl.kinds.sequences.io import fold_case, read_fasta_pair, read_sequences

    if viewpoint and uppercase:
        raise BiodlInputError(
            "--uppercase and --set viewpoint=true both given: the viewpoint is the uppercase part"
        )
    if negatives is not None:
        table = read_fasta_pair(path, negatives, iupac_as_n=iupac_as_n, keep_viewpoint=viewpoint)
    else:
        kw: dict[str, Any] = dict(iupac_as_n=iupac_as_n, uppercase=uppercase)
        if seq_col:
            kw["seq_col"] = seq_col
        if label_cols:
            kw["label_cols"] = label_cols
        elif prefer_labels:
            kw["prefer_labels"] = prefer_labels
        table = read_sequences(path, require_labels=require_labels, **kw)
    warn_duplicate_ids(table.ids, path)
    return fold_case(table, True) if viewpoint and negatives is None else table


def _refuse_stray_labels(table, source) -> None:
    """A 0/1 label column with a few other values (a ``2`` typed for ``1``) would make the guessed
    task regression and train a regression model without a word: refused, naming them (``--task
    regression`` trains on the values as numbers)."""
    y = table.labels
    ok = ~np.isnan(y)
    binary = ok & np.isin(y, (0.0, 1.0))
    stray = ok & ~binary
    n_stray = int(stray.sum())
    few = 0 < n_stray <= max(1, 0.01 * int(ok.sum()))
    if not few or not (y[binary] == 1).any():  # 0 / 1 labels (or 1s only) with a stray value or two
        return
    i, j = (int(v[0]) for v in np.nonzero(stray))
    vals = ", ".join(f"{v:g}" for v in np.unique(y[stray])[:5])
    name = (table.label_names or ["label"])[j]
    raise BiodlInputError(
        f"label {name} is 0 / 1 but for {n_stray} value(s) ({vals}; first: {table.ids[i]}), which would make "
        "this a regression model: fix them (or leave them empty for missing), or give --task regression "
        "to train on the values as numbers",
        path=source,
    )


def read_like_model(
    meta: RunMeta,
    path,
    *,
    labelled: bool,
    negatives=None,
    seq_col: str | None = None,
    label_col=None,
    model_labels: bool | None = None,
):
    """Sequences of ``path`` read as the model's training data was (IUPAC rule, case,
    viewpoint); a table's labels from ``label_col``, else the model's label columns when the
    file has them all (``model_labels``, default ``labelled``: also when labels are optional),
    else the usual names."""
    d = data_as(SequenceData, meta.data)
    return load_table(
        path,
        require_labels=labelled,
        seq_col=seq_col,
        label_cols=label_col,
        iupac_as_n=d.iupac_as_n,
        uppercase=d.uppercase,
        negatives=negatives,
        viewpoint=d.viewpoint,
        prefer_labels=list(meta.label_names or [])
        if (labelled if model_labels is None else model_labels)
        else None,
    )


def sequences_from_memory(meta: RunMeta, data, options: dict[str, Any], *, labelled: bool, labels=None):
    """A :class:`SequenceTable` of in-memory sequences (:func:`biodl.io.memory.items`), read as
    the model's training data was (IUPAC rule, case, viewpoint); ``labelled``: with the labels
    of :func:`biodl.io.memory.labels` (``labels``, or the DataFrame's label columns)."""
    from biodl.io import memory
    from biodl.io._util import warn_duplicate_ids
    from biodl.kinds.sequences.io import ID_COLUMNS, SEQ_COLUMNS, SequenceTable, fold_case, validate_all

    d = data_as(SequenceData, meta.data)
    ids, seqs, src = memory.items(
        data,
        "sequence",
        SEQ_COLUMNS,
        ID_COLUMNS,
        lambda i: f"seq{i + 1}",
        column=options.get("seq_col"),
        option="seq_col",
    )
    seqs = [s.strip() for s in seqs]
    if d.uppercase:
        seqs = [s.upper() for s in seqs]
    validate_all(seqs, src, ids, d.iupac_as_n)
    table = SequenceTable(ids=ids, seqs=seqs, source=src)
    if labelled:  # (predict says it for every input, in pieces: predict_frames)
        warn_duplicate_ids(ids, src)
        table.labels = memory.labels(data, labels, len(seqs), src, meta.label_names, meta.classes, ids)
        table.label_names = list(meta.label_names)
        table.classes = meta.classes
    return fold_case(table, True) if d.viewpoint else table


def choose_alphabet(seqs, option: str, spelling: str = "--alphabet") -> tuple[str, str]:
    """``(alphabet, why)``: ``dna`` or ``rna`` for training sequences ``seqs``, as ``option``
    (``auto``, ``dna``, ``rna``) says; ``auto`` is ``rna`` when they have U and no T."""
    if option in ("dna", "rna"):
        return option, f"{spelling} {option}"
    n_u = sum(s.count("U") + s.count("u") for s in seqs)
    n_t = sum(s.count("T") + s.count("t") for s in seqs)
    if n_u and not n_t:
        return "rna", "the training sequences have U and no T"
    if n_u:
        return "dna", f"the training sequences have both T and U ({spelling} rna to read them as RNA)"
    return "dna", "the training sequences have T" if n_t else "the training sequences have no U"


def strand_mode(alphabet: str, why: str, recipe, mk: dict[str, Any], ctx: TrainContext) -> str:
    """Turn reverse-complement scanning (the ``reverse_complement`` model option) and
    augmentation (``rc_augment``) off for RNA unless the user asked for them; returns the line
    that says which strand mode was chosen and why. Changes ``mk`` and ``ctx.options``."""
    o = ctx.options
    has_rc = "reverse_complement" in mk
    asked_rc = "reverse_complement" in ctx.model_options
    asked_aug = "rc_augment" in ctx.given
    if alphabet == "rna":
        if has_rc and not asked_rc:
            mk["reverse_complement"] = False
        if o.get("rc_augment") and not asked_aug:
            o["rc_augment"] = False
    rc_on = has_rc and bool(mk["reverse_complement"])
    both = [w for w, on in (("reverse_complement=true", rc_on), ("--rc-augment", o.get("rc_augment"))) if on]
    if both:
        given = " (given)" if alphabet == "rna" else ""
        line = f"strand mode: both strands ({', '.join(both)}{given}); {alphabet.upper()} input: {why}"
        if not rc_on:  # the network scans one strand: evaluate / predict average it with the other
            line += (
                "; the validation metrics of training (best epoch, early stopping) score the given "
                "strand, evaluate and predict average both"
            )
        return line
    if alphabet == "rna":
        how = "-m reverse_complement=true" if has_rc else "--rc-augment"
        return (
            f"strand mode: the given strand only; RNA input: {why} (as DeepBind for RNA; {how} "
            "adds the reverse complement)"
        )
    how = "-m reverse_complement=true or --rc-augment" if has_rc else "--rc-augment"
    return (
        f"strand mode: the given strand only ({recipe.name} default); DNA input: {why}; {how} adds the other"
    )


def decision_thresholds(meta: RunMeta) -> tuple[list[float], str | None]:
    """The model's decision thresholds (probabilities, one per output) and ``None``, or 0.5
    for every output and the reason when the model file stores none."""
    n_out = int(meta.model_kwargs.get("n_outputs") or len(meta.label_names or []) or 1)
    vals = (meta.thresholds or {}).get("values")
    if vals and len(vals) == n_out:
        return [float(v) for v in vals], None
    why = (
        "it was trained without validation items"
        if (meta.splits or {}).get("n_valid") == 0
        else "an older model file, or trained without a validation split"
    )
    return [0.5] * n_out, (
        f"this model stores no decision threshold ({why}): positives are called at probability 0.5"
    )


def validation_thresholds(out: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """``RunMeta.thresholds``: per output, the probability threshold of largest MCC on the
    validation outputs ``out`` (logits, scored as ``evaluate`` scores) and labels ``y`` (never
    the test set)."""
    from biodl.train.metrics import mcc_threshold

    prob = 1 / (1 + np.exp(-out.astype(np.float64)))
    values, mccs = [], []
    for j in range(out.shape[1]):
        t, m = mcc_threshold(prob[:, j], y[:, j])
        values.append(t)
        mccs.append(m)
    return {"values": values, "chosen_on": "validation", "criterion": "max MCC", "n": len(out), "mcc": mccs}


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


def strand_phrase(meta, both: bool) -> str:
    """How the scores were made, as training says it: both strands averaged (a model trained on
    both, ``--rc-augment``), both strands in the network (DeepBind's ``reverse_complement``),
    or the given strand. ``meta``: the run's meta, or its model options."""
    if both:
        return "both strands averaged"
    kw = meta if isinstance(meta, dict) else (getattr(meta, "model_kwargs", None) or {})
    if kw.get("reverse_complement"):
        return "both strands, in the network (reverse_complement)"
    return "given strand"


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
    if meta.model_kwargs.get("seq_len") is None and (not d.seq_len or lengths != {d.seq_len}):
        if padded_batches(meta.recipe):  # any length, in batches of mixed lengths (padding masked)
            return SequenceDataset(
                table, n_value=d.n_value, iupac_as_n=d.iupac_as_n, variable=True, cache=False
            )
        if d.seq_len:
            return None
    return SequenceDataset(table, length=d.seq_len, n_value=d.n_value, iupac_as_n=d.iupac_as_n, cache=False)


def padded_batches(recipe) -> bool:
    """Whether the networks of ``recipe`` (a :class:`~biodl.registry.Recipe` or its name) score
    batches of mixed lengths (NaN-padded, masked) as each sequence alone
    (:attr:`~biodl.models.sequence.base.SequenceModel.padded_batches`)."""
    from biodl.registry import get_recipe

    if isinstance(recipe, str):
        recipe = get_recipe(recipe)
    return bool(getattr(recipe.factory, "padded_batches", False))


class LengthTally:
    """What :func:`length_notes` says, over a file scored in pieces: :meth:`add` each piece's
    lengths, :meth:`emit` once at the end (the counts over the whole file)."""

    def __init__(self, meta: RunMeta) -> None:
        self.L = int(data_as(SequenceData, meta.data).seq_len or 0)
        self.n = self.short = self.long = self.far = 0
        self.shortest: int | None = None

    def add(self, lens: np.ndarray, padded: bool) -> None:
        if not self.L or not len(lens):
            return
        self.n += len(lens)
        self.shortest = int(lens.min()) if self.shortest is None else min(self.shortest, int(lens.min()))
        if padded:
            self.short += int((lens < self.L).sum())
            self.long += int((lens > self.L).sum())
        else:
            self.far += int((lens < self.L // 2).sum())

    def emit(self, src) -> None:
        from biodl.io._util import note

        L, n = self.L, self.n
        if self.short:
            note(
                f"[biodl] {src}: {self.short} of {n} sequence(s) shorter than the model's "
                f"{L} bp (shortest {self.shortest} bp) were padded with N, centred"
            )
        if self.long:
            note(
                f"[biodl] {src}: {self.long} of {n} sequence(s) longer than the model's "
                f"{L} bp were cropped to their central {L} bp"
            )
        if self.far:
            note(
                f"[biodl] warning: {src}: {self.far} of {n} sequence(s) are under half the "
                f"{L}-bp training length (shortest {self.shortest} bp): scored at their own length, "
                "their scores rest on few positions"
            )


def length_notes(meta: RunMeta, table, padded: bool) -> None:
    """Say how many sequences are not scored as they are: with ``padded`` (a fixed-length
    model) those padded with N or cropped to the model's length; otherwise those far
    shorter (under half) than the training sequences, whose scores rest on few positions."""
    tally = LengthTally(meta)
    tally.add(np.fromiter((len(s) for s in table.seqs), dtype=np.int64, count=len(table)), padded)
    tally.emit(getattr(table, "source", "input"))


def score_sequences(
    model,
    meta: RunMeta,
    table,
    *,
    device: str,
    rc_average: bool,
    batch_size: int = 256,
    tally: LengthTally | None = None,
):
    """``(outputs, targets)`` for every sequence of ``table``, in table order (sequences of
    other lengths than the training one are scored at their own length, grouped by length,
    when the model allows it). The lengths not scored as they are are said on standard error,
    or added to ``tally`` (a file scored in pieces says them once)."""
    from biodl.kinds.sequences.data import SequenceDataset
    from biodl.train.predict import predict

    d = data_as(SequenceData, meta.data)
    ds = sequence_dataset(meta, table)
    padded = ds is not None and ds.length == d.seq_len
    if tally is None:
        length_notes(meta, table, padded)
    else:
        tally.add(np.fromiter((len(s) for s in table.seqs), dtype=np.int64, count=len(table)), padded)
    if ds is not None:
        return predict(model, ds, batch_size=batch_size, device=device, rc_average=rc_average)
    outs = np.zeros((len(table), model.n_outputs), dtype=np.float32)
    by_len: dict[int, list[int]] = {}
    for i, s in enumerate(table.seqs):
        by_len.setdefault(len(s), []).append(i)
    for idx in by_len.values():
        sub = SequenceDataset(table.subset(idx), n_value=d.n_value, iupac_as_n=d.iupac_as_n, cache=False)
        outs[idx] = predict(model, sub, batch_size=batch_size, device=device, rc_average=rc_average)[0]
    y = table.labels if table.labels is not None else np.zeros((len(table), 0), np.float32)
    return outs, np.asarray(y, np.float32)


def sequence_inputs(meta: RunMeta, path: str | Path):
    """``(ids, X)``: the sequences of a FASTA/table file one-hot ``(n, 4, L)`` as the model
    reads them (its length when it needs one, N value, IUPAC rule), for ISM and attributions."""
    import torch

    from biodl.kinds.sequences.data import SequenceDataset

    d = data_as(SequenceData, meta.data)
    table = read_like_model(meta, path, labelled=False)
    lengths = {len(s) for s in table.seqs}
    fixed = meta.model_kwargs.get("seq_len") is not None or len(lengths) > 1
    length_notes(meta, table, padded=fixed)
    length = d.seq_len or max(lengths, default=None)
    if fixed and not d.seq_len:
        from biodl.io._util import note

        note(f"[biodl] {path}: sequences of {min(lengths)}-{max(lengths)} bp padded with N to the longest")
    ds = SequenceDataset(table, length=length if fixed else None, n_value=d.n_value, iupac_as_n=d.iupac_as_n)
    return list(table.ids), torch.stack([ds[i][0] for i in range(len(ds))])


@dataclass
class ModelInputs:
    """Sequences as a model reads them, for ISM and attributions, with the way back to the
    input's coordinates.

    ``groups`` holds ``(indices, X, offset)``: the rows ``indices`` of the input, one-hot
    ``(k, 4, W)`` as the model reads them, and ``offset``, the 0-based input position of
    column 0 of ``X`` (positive: the sequences were cropped to their central ``W`` bp;
    negative: padded with ``-offset`` N on the left). A model that takes any length reads
    every sequence whole (``offset`` 0, grouped by length)."""

    ids: list[str]
    lengths: np.ndarray
    groups: list[tuple[np.ndarray, Any, int]]
    source: str

    def real_columns(self, i: int, offset: int, width: int) -> tuple[int, int]:
        """``[a, b)``: the columns of a ``width``-column window (column 0 = input position
        ``offset``) that hold bases of input sequence ``i`` (not N padding)."""
        return max(0, -offset), min(width, int(self.lengths[i]) - offset)


def model_inputs(meta: RunMeta, path: str | Path) -> ModelInputs:
    """The sequences of a FASTA/table file as the model reads them (see :class:`ModelInputs`):
    at their own lengths for a model that takes any length (as ``predict`` scores them, so
    the reference outputs agree), else padded with N / cropped, centred, to its input length
    (the notes say how many)."""
    import torch

    from biodl.kinds.sequences.data import SequenceDataset

    d = data_as(SequenceData, meta.data)
    table = read_like_model(meta, path, labelled=False)
    lengths = np.fromiter((len(s) for s in table.seqs), dtype=np.int64, count=len(table))
    model_len = meta.model_kwargs.get("seq_len") and (d.seq_len or meta.model_kwargs["seq_len"])
    any_length = not model_len
    length_notes(meta, table, padded=not any_length)
    by_len: dict[int, list[int]] = {}
    for i, n in enumerate(lengths.tolist()):
        by_len.setdefault(n, []).append(i)
    groups = []
    for n, idx in by_len.items():
        L = n if any_length else int(model_len)
        ds = SequenceDataset(table.subset(idx), length=L, n_value=d.n_value, iupac_as_n=d.iupac_as_n)
        X = torch.stack([ds[k][0] for k in range(len(ds))])
        offset = (n - L) // 2 if n >= L else -((L - n) // 2)  # as SequenceDataset pads / crops
        groups.append((np.asarray(idx, dtype=np.int64), X, offset))
    return ModelInputs(list(table.ids), lengths, groups, str(getattr(table, "source", path)))


class OneHotTraining(DataKind):
    """Training hooks shared by the one-hot DNA kinds (sequence files, genome windows): the
    augmenter (``--rc-augment``, ``--shift``) on the training set and ``--class-weight``."""

    supports_ensemble = True
    supports_calibration = True

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

    def fit(self, ctx, model, meta, splits):
        """Train (the default runner), then choose the decision threshold of a binary /
        multi-label model on the validation split."""
        model, res, meta = super().fit(ctx, model, meta, splits)
        valid = splits.valid
        if meta.task in THRESHOLD_TASKS and res.is_global_zero and valid is not None and len(valid):
            meta = self.with_thresholds(meta, *self.validation_outputs(ctx, model, meta, valid))
            th = meta.thresholds
            vals = th["values"]
            # 4 significant digits: a threshold of 0.99989 is not "1.000"
            shown = ", ".join(f"{t:.4g}" for t in vals[:8]) + (", ..." if len(vals) > 8 else "")
            ctx.log(
                f"decision threshold{'s' if len(th['values']) > 1 else ''} {shown} (largest MCC on the "
                f"{th['n']} validation items), stored with the model for evaluate / predict"
            )
        return model, res, meta

    def validation_outputs(self, ctx, model, meta, valid):
        """Scored as ``evaluate`` scores: reverse-complement averaging as the run chose."""
        from biodl.train.predict import predict

        rc = rc_average_for(meta, ctx.options)
        return predict(model, valid, batch_size=256, device=ctx.config.device, rc_average=rc)

    def with_thresholds(self, meta, out, y):
        """Binary / multi-label: the thresholds of largest validation MCC (:func:`validation_thresholds`)."""
        if meta.task not in THRESHOLD_TASKS:
            return meta
        return meta.replace(thresholds=validation_thresholds(out, y))

    def metrics(self, meta, outputs, targets, table):
        """The task's metrics; binary / multi-label also MCC, accuracy, sensitivity and
        specificity at the model's decision threshold (chosen on validation at training)."""
        from biodl.io._util import note
        from biodl.train.metrics import threshold_metrics

        m = super().metrics(meta, outputs, targets, table)
        if meta.task in THRESHOLD_TASKS and targets.shape[1] == outputs.shape[1]:
            th, why = decision_thresholds(meta)
            if why:
                note(f"[biodl] {why}")
            m.update(threshold_metrics(outputs, targets, th, meta.label_names))
        return m


class SequencesKind(OneHotTraining):
    """Labelled sequence files."""

    name = "sequences"
    title = "sequence files"
    report_data = "sequences for the filter logos and ISM (its positives when labelled)"
    reads = "DNA sequences: FASTA, or a table with a sequence column (.seq/TSV/CSV)"
    formats = frozenset(("FASTA",))
    options = OPTIONS
    hints = {
        "skip_invalid": "molecule data only; sequence files must be valid, the error names the bad record",
    }

    def _read(
        self, ctx: TrainContext, path, negatives=None, words: list[str] | None = None, positives: bool = False
    ):
        """A training / validation / test file; ``words`` (``[negative, positive]``): a label
        column of words read as a binary task's 0 / 1 by them. ``positives``: a FASTA without
        labels in its headers (peak sequences, ``bedtools getfasta``) is all positives."""
        from biodl.kinds.sequences.io import _looks_like_fasta

        o = ctx.options
        unlabelled = positives and negatives is None and _looks_like_fasta(Path(path))
        table = load_table(
            path,
            require_labels=not unlabelled,
            seq_col=o["seq_col"],
            label_cols=o["label_col"],
            iupac_as_n=o["iupac_as_n"],
            uppercase=o["uppercase"],
            negatives=negatives,
            viewpoint=o["viewpoint"],
        )
        if words is not None and table.classes is not None:
            table = binary_from_words(table, words, path)
        if table.labels is None:
            ctx.log(
                f"{path}: no labels in the FASTA headers: its {len(table)} sequences are taken as positives"
            )
            table = dataclasses.replace(
                table,
                labels=np.ones((len(table), 1), np.float32),
                label_names=table.label_names[:1] or ["label"],
            )
        return table

    def _binary_words(self, ctx: TrainContext, table) -> list[str] | None:
        """``[negative, positive]`` when the training labels are words and the task binary
        (``--task binary`` or ``--set positive``), else ``None``; other tasks on words refused."""
        o = ctx.options
        if table.classes is None:
            if o["positive"] is not None:
                raise BiodlInputError(
                    "--set positive names the positive word of a label column of words; this file's "
                    "labels are numbers (1 is the positive class)",
                    path=o["data"],
                )
            return None
        if o["task"] in (None, "multiclass") and o["positive"] is None:
            return None
        name = (table.label_names or ["label"])[0]
        if o["task"] == "multiclass":
            raise BiodlInputError(
                "--set positive makes the labels a binary task (its word against the other); with "
                "--task multiclass leave it out",
                path=o["data"],
            )
        words = ", ".join(map(repr, table.classes[:5])) + (", ..." if len(table.classes) > 5 else "")
        if o["task"] not in (None, "binary"):
            raise BiodlInputError(
                f"label column {name!r} holds words ({words}): a {o['task']} task needs numbers",
                path=o["data"],
            )
        if len(table.classes) != 2:
            raise BiodlInputError(
                f"a binary task needs two label words, label column {name!r} has {len(table.classes)} "
                f"({words})"
                + ("; for several classes give --task multiclass" if len(table.classes) > 2 else ""),
                path=o["data"],
            )
        pos = positive_word(table.classes, o["positive"], o["data"])
        neg = next(c for c in table.classes if c != pos)
        if ctx.config.resume and (ctx.out / "run.json").exists():  # a run to resume: its own coding
            from biodl.train import read_run_json

            try:
                before = read_run_json(ctx.out).classes
            except BiodlInputError:
                before = None
            if before and list(before) != [neg, pos]:  # (an earlier biodl coded words alphabetically)
                raise BiodlInputError(
                    f"holds a run that coded the labels as {before[0]!r} = 0, {before[1]!r} = 1; resuming it "
                    f"would train on with {pos!r} = 1: start it over with --no-resume",
                    path=ctx.out,
                )
        ctx.log(f"label column {name!r}: {pos!r} is the positive class (1), {neg!r} the negative (0)")
        return [neg, pos]

    def load(self, ctx: TrainContext) -> Splits:
        from biodl.kinds.sequences.data import SequenceDataset, add_shuffled_negatives
        from biodl.train.datamodule import split_indices

        o, seed = ctx.options, ctx.config.seed
        if o["data"] is None:
            raise BiodlInputError("no training file given (DATA or --data)")
        for key, of in (("valid_negatives", "valid_file"), ("test_negatives", "test_file")):
            if o[key] is not None and o[of] is None:
                flag = "--valid" if of == "valid_file" else "--test"
                raise BiodlInputError(f"--set {key} is the negatives file of {flag}, and no {flag} was given")
        shuffled = o["shuffle_negatives"] in ("yes", "auto")
        table = self._read(ctx, o["data"], o["negatives"], positives=shuffled)
        words = self._binary_words(ctx, table)
        if words is not None:
            table = binary_from_words(table, words, o["data"])
        alphabet = choose_alphabet(table.seqs, o["alphabet"])
        n0 = None  # rows from n0 on are shuffled negatives (when added)
        if o["shuffle_negatives"] == "yes" or (o["shuffle_negatives"] == "auto" and _is_positive_only(table)):
            n0 = len(table)
            table = add_shuffled_negatives(table, seed=seed)
            ctx.log(
                f"{o['data']}: {n0} positives only; added {len(table) - n0} dinucleotide-shuffled "
                f"negatives (seed {seed})"
            )
        task = "binary" if words is not None else o["task"] or table.task_hint
        if o["task"] is None and task == "regression":
            _refuse_stray_labels(table, o["data"])
        if task == "regression" and table.labels is not None:
            say_unscaled_targets(ctx.log, table.labels, o["data"], "sequence networks fit")

        def held_out(path, negatives, which: str):
            """A validation / test file; positives only (peaks) where training added shuffled
            negatives get theirs too (DeepBind's test folds: bound + shuffled), else no metric
            could rank them."""
            t = self._read(ctx, path, negatives, words, positives=n0 is not None)
            if n0 is not None and negatives is None and _is_positive_only(t):
                n = len(t)
                t = add_shuffled_negatives(t, seed=seed + HELD_OUT_NEGATIVES_SEED[which])
                ctx.log(f"{path}: {n} positives only; added {len(t) - n} dinucleotide-shuffled negatives")
            return t

        if o["valid_file"] is not None:
            tr = np.arange(len(table))
            train_t, valid_t = table, held_out(o["valid_file"], o["valid_negatives"], "valid")
        else:
            tr, va = split_indices(len(table), o["valid_fraction"], seed)
            train_t, valid_t = table.subset(tr), table.subset(va)
        test_t = None
        if o["test_file"] is not None:
            test_t = held_out(o["test_file"], o["test_negatives"], "test")
        # a network whose output does not depend on the input length (DeepBind) takes batches
        # of mixed lengths, padding masked; the others need one length (--pad, or the clear error)
        variable = o["pad"] is None and padded_batches(ctx.recipe)
        train_ds = SequenceDataset(
            train_t, length=o["pad"], iupac_as_n=o["iupac_as_n"], seed=seed, variable=variable
        )
        if o["pad"] is not None:  # said, as predict says it: how many were padded or cropped
            L = int(o["pad"])
            for what, t in (("training", train_t), ("validation", valid_t), ("test", test_t)):
                lens = np.fromiter((len(x) for x in t.seqs), np.int64, len(t.seqs)) if t is not None else None
                if lens is None or not len(lens):
                    continue
                short, long = int((lens < L).sum()), int((lens > L).sum())
                if short or long:
                    ctx.log(
                        f"--pad {L}: of the {len(lens)} {what} sequences, {short} shorter were padded with N "
                        f"(centred) and {long} longer cropped to their central {L} bp"
                    )
        if variable and train_ds.length is None:
            lens = train_ds.lengths
            ctx.log(
                f"sequences of {int(lens.min())}-{int(lens.max())} bp: {ctx.recipe.name} scores each at its "
                "own length (batches padded internally, the padding masked: no --pad needed)"
            )
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
        valid_ds = SequenceDataset(
            valid_t,
            length=None if variable else train_ds.length,
            iupac_as_n=o["iupac_as_n"],
            variable=variable,
        )
        return Splits(
            train=train_ds,
            valid=valid_ds,
            test=test_t,
            info={
                "n_train": len(train_t),
                "n_valid": len(valid_t),
                "valid": o["valid_file"] or f"{o['valid_fraction']:g} of the training file (seed {seed})",
            },
            extra={
                "table": table,
                "train_table": train_t,
                "task": task,
                "alphabet": alphabet,
                "shuffled_negatives": n0 is not None,
            },
        )

    def build(self, ctx: TrainContext, splits: Splits):
        from biodl.train.fit import seed_all

        table, task = splits.extra["table"], splits.extra["task"]
        if task not in SEQUENCE_TASKS:
            raise BiodlInputError(f"task must be one of {', '.join(SEQUENCE_TASKS)}, not {task!r}")
        n_out = len(table.classes or []) if task == "multiclass" else table.labels.shape[1]
        seq_len = splits.train.length
        mk = ctx.recipe.model_kwargs(n_out, seq_len=seq_len, **ctx.model_options)
        alphabet, why = splits.extra.get("alphabet") or ("dna", "")
        ctx.log(strand_mode(alphabet, why, ctx.recipe, mk, ctx))
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
            alphabet=alphabet,
            viewpoint=o["viewpoint"],
            shuffled_negatives=bool(splits.extra.get("shuffled_negatives")),
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
            f"training {ctx.recipe.title} ({task}, {n_out} output(s), length {seq_len or 'variable'}) on "
            f"{len(splits.train)} sequences, validating on {len(splits.valid)}; output in {ctx.out}"
        )
        return model, meta

    def weighted_labels(self, meta, splits):
        t = splits.extra["train_table"]
        return t.labels, meta.task, len(t.classes or [])

    def after_fit(self, ctx, model, meta, splits):
        out: dict[str, Any] = {"seq_len": meta.data.get("seq_len")}
        if meta.thresholds:
            out["thresholds"] = meta.thresholds
        return out

    # ------------------------------------------------------------------ inference
    def read(self, meta, path, options, *, labelled, quiet=True):
        if path is None:
            raise BiodlInputError("no sequence file given")
        d = data_as(SequenceData, meta.data)
        from biodl.kinds.sequences.io import _looks_like_fasta

        # positives only (a FASTA of peaks, or a table whose labels are all 1) for a model trained
        # against shuffled negatives: scored against its own, as `train --test` scored it
        peaks = labelled and d.shuffled_negatives and options.get("negatives") is None
        table = read_like_model(
            meta,
            path,
            labelled=labelled and not (peaks and _looks_like_fasta(Path(path))),
            model_labels=labelled,
            negatives=options.get("negatives"),
            seq_col=options.get("seq_col"),
            label_col=options.get("label_col"),
        )
        if peaks and (table.labels is None or _is_positive_only(table)):
            from biodl.kinds.sequences.data import add_shuffled_negatives

            n = len(table)
            seed = int((getattr(meta, "training", None) or {}).get("seed", 0))
            table = add_shuffled_negatives(table, seed=seed + HELD_OUT_NEGATIVES_SEED["test"])  # as --test
            table.label_names = list(meta.label_names or ["label"])[:1]
            from biodl.io._util import note

            note(  # said even when quiet: the file scored is not the file given
                f"[biodl] {path}: {n} positives only (the model was trained against shuffled negatives); "
                f"added {len(table) - n} dinucleotide-shuffled negatives"
            )
        if labelled and meta.task != "multiclass" and table.classes is not None:
            # a label column of words: a binary model trained on words reads them by its own
            # [negative, positive]; one trained on numbers cannot tell which word is 1
            if meta.task == "binary" and meta.classes:
                return binary_from_words(table, list(meta.classes), path)
            name = (table.label_names or ["label"])[0]
            raise BiodlInputError(
                f"label column {name!r} holds words ({', '.join(map(repr, table.classes[:5]))}), but this "
                f"{meta.task} model was trained on numbers: write its labels as numbers (1 = positive)",
                path=path,
            )
        if labelled and meta.task == "multiclass" and table.classes != meta.classes:
            if not set(table.classes or []) <= set(meta.classes or []):
                raise BiodlInputError(
                    f"classes {table.classes} do not match the model's {meta.classes}", path=path
                )
            remap = {i: meta.classes.index(c) for i, c in enumerate(table.classes)}
            table.labels = np.vectorize(remap.get)(table.labels).astype(np.float32)
        return table

    memory_inputs = (
        "a list of sequences, a dict or pandas Series of id -> sequence, or a DataFrame with a "
        "seq/sequence column (ids from an id/name column, else the index)"
    )

    def from_memory(self, meta, data, options, *, labelled, labels=None):
        return sequences_from_memory(meta, data, options, labelled=labelled, labels=labels)

    def score(self, model, meta, table, *, device, options, batch_size=256):
        return score_sequences(
            model, meta, table, device=device, rc_average=rc_average_for(meta, options), batch_size=batch_size
        )

    def frame(self, meta, table, outputs, targets=None) -> pd.DataFrame:
        """The prediction table; binary / multi-label add ``called_<label>`` (1 where the
        probability reaches the model's decision threshold)."""
        th = decision_thresholds(meta)[0] if meta.task in THRESHOLD_TASKS else None
        return prediction_frame(
            meta.task, table.ids, outputs, meta.label_names, meta.classes, targets, thresholds=th
        )

    def predict_frame(self, model, meta, table, *, device, options, batch_size=256) -> pd.DataFrame:
        self._threshold_note(meta)
        return super().predict_frame(
            model, meta, table, device=device, options=options, batch_size=batch_size
        )

    @staticmethod
    def _threshold_note(meta) -> None:
        if meta.task in THRESHOLD_TASKS:
            _, why = decision_thresholds(meta)
            if why:
                from biodl.io._util import note

                note(f"[biodl] {why}")

    def read_chunks(self, meta, path, options, rows):
        if path is None or options.get("negatives") is not None:
            return None  # a GraphProt pair: read whole
        from biodl.kinds.sequences.io import fold_case, iter_sequences

        d = data_as(SequenceData, meta.data)
        pieces = iter_sequences(
            path, rows, seq_col=options.get("seq_col"), iupac_as_n=d.iupac_as_n, uppercase=d.uppercase
        )
        return (fold_case(t, True) for t in pieces) if d.viewpoint else pieces

    def predict_frames(self, model, meta, pieces, *, device, options, batch_size=256):
        from biodl.io._util import DuplicateIds

        self._threshold_note(meta)
        tally, dups, src = LengthTally(meta), DuplicateIds(), None
        rc = rc_average_for(meta, options)
        for k, t in enumerate(pieces):
            src = t.source
            if not k and not len(t):  # a table with a header and no rows
                raise BiodlInputError("no sequences to score: the file has no records", path=src)
            dups.add(t.ids)
            out, _ = score_sequences(
                model, meta, t, device=device, rc_average=rc, batch_size=batch_size, tally=tally
            )
            yield self.frame(meta, t, out)
        dups.warn(src)
        tally.emit(src)

    def describe_data(self, meta):
        d = data_as(SequenceData, meta.data)
        both = meta.model_kwargs.get("reverse_complement") or d.rc_augment
        rows = {
            "training file": d.train_file,
            "sequence length": d.seq_len or "variable (each scored at its own length)",
            "alphabet": d.alphabet + (", uppercase viewpoint only" if d.viewpoint else ""),
            "strand": "both" if both else "given strand",
        }
        if meta.task in THRESHOLD_TASKS:
            th, why = decision_thresholds(meta)
            rows["decision threshold"] = "0.5 (none stored)" if why else ", ".join(f"{t:.3g}" for t in th)
        return rows

    def report_sections(self, run, model, meta, data, options):
        from biodl.kinds.sequences.report import interpretation_sections, positive_test_sequences

        return interpretation_sections(run, model, meta, positive_test_sequences(run, meta, data))


KIND = SequencesKind()
