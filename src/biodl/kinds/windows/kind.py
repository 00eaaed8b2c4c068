"""DeepSEA-style multi-label genome windows as a data kind.

``biodl train --system deepsea --genome G.fa --annotation G.gff --labels CDS,tRNA --out run``:
the genome is tiled into ``window``-bp windows every ``step`` bp, each window is labelled per
feature type from the coverage of its central ``center`` bp, whole genomic regions (or
chromosomes) are held out for validation and test, any sequence recipe (``deepsea``,
``basset``, ``danq``, ...) is trained, and the test windows are scored per label. One
:class:`~biodl.kinds.windows.data.WindowSpec`, stored with the model, makes the windows for
training, evaluation, prediction and the report.
"""

from __future__ import annotations

import gzip
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from biodl.errors import BiodlInputError
from biodl.io._util import input_errors, note
from biodl.kinds.base import Splits, TrainContext
from biodl.kinds.sequences.kind import AUGMENT_OPTIONS, THRESHOLD_TASKS, OneHotTraining, rc_average_for
from biodl.options import Option
from biodl.train.checkpoint import RunMeta, data_as

_FASTA_SUFFIXES = (".fa", ".fasta", ".fna", ".fas", ".ffn")
_NOT_USED = (
    "the windows come from --genome; hold out regions or chromosomes with --set valid=... / --set test=..."
)

OPTIONS = (
    Option(
        "genome",
        "path",
        None,
        "Genome FASTA (plain, gzip or bgzip): training windows; for BED input to "
        "evaluate / predict, the genome they are cut from (default: the training genome).",
        flag="--genome",
        stages=("train", "evaluate", "predict"),
    ),
    Option(
        "annotation",
        "paths",
        None,
        "GFF3/BED annotation(s) labelling the windows (evaluate / report: default the training annotation).",
        flag="--annotation",
        stages=("train", "evaluate", "report"),
    ),
    Option(
        "labels",
        "strs",
        None,
        "Feature types used as labels, comma-separated (default: chosen from the annotation).",
        flag="--labels",
    ),
    Option(
        "task",
        "choice",
        "multilabel",
        "multilabel (default) or binary (one label).",
        flag="--task",
        choices=("multilabel", "binary"),
    ),
    Option("window", "int", 1000, "Window length, bp (DeepSEA: 1000).", minimum=1),
    Option("step", "int", None, "Tiling step, bp (default: center).", minimum=1),
    Option("center", "int", 200, "Central bin that labels are computed on, bp.", minimum=1),
    Option(
        "min_overlap", "float", 0.5, "Fraction of the central bin a label's features must cover.", minimum=0
    ),
    Option(
        "valid",
        "any",
        0.1,
        "Validation hold-out: a fraction of the genome, or chromosomes / regions "
        "(chr8,chr9 or NC_000913.3:4000001-4641652).",
    ),
    Option("test", "any", 0.1, "Test hold-out (same forms as valid)."),
    Option(
        "placement",
        "choice",
        "end",
        "Where fractions lie: end, or random (seeded).",
        choices=("end", "random"),
    ),
    Option(
        "scope",
        "choice",
        "genome",
        "Fractions of the whole genome or of every chromosome.",
        choices=("genome", "chromosome"),
    ),
    Option(
        "max_windows",
        "int",
        None,
        "A seeded random subset of at most this many windows (quick runs).",
        minimum=1,
    ),
    Option("chroms", "strs", None, "Chromosomes to use (default all)."),
    Option(
        "split",
        "choice",
        None,
        "Windows of the training genome to score: train, valid, test (default) or all; another genome: all.",
        choices=("train", "valid", "test", "all"),
        stages=("evaluate", "report"),
    ),
    *AUGMENT_OPTIONS,
)


@dataclass
class WindowData:
    """``RunMeta.data`` of a genome-window model: the genome, annotation, labels and the
    :class:`~biodl.kinds.windows.data.WindowSpec` fields."""

    genome: str = ""
    annotation: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    label_types: dict[str, list[str]] | None = None
    window: int = 1000
    step: int | None = None
    center: int = 200
    min_overlap: float = 0.5
    holdout: dict[str, Any] = field(default_factory=lambda: {"valid": 0.1, "test": 0.1})
    placement: str = "end"
    scope: str = "genome"
    chroms: list[str] | None = None
    seed: int = 0
    max_windows: int | None = None
    rc_augment: bool = False
    shift: int = 0
    class_weight: bool = False
    n_value: float = 0.25
    seq_len: int | None = None

    def spec(self):
        from biodl.kinds.windows.data import WindowSpec

        return WindowSpec(
            window=int(self.window),
            step=self.step,
            center=int(self.center),
            min_overlap=float(self.min_overlap),
            valid=holdout(self.holdout.get("valid"), "valid"),
            test=holdout(self.holdout.get("test"), "test"),
            placement=self.placement,
            scope=self.scope,
            chroms=self.chroms,
            max_windows=self.max_windows,
            seed=int(self.seed),
        )

    def label_spec(self) -> dict[str, list[str]]:
        return self.label_types or {n: [n] for n in self.labels}


def holdout(value: Any, key: str) -> Any:
    """A hold-out from the command line: a fraction, or chromosome names / regions (a
    comma-separated string or a list)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise BiodlInputError(f"--set {key} must be a fraction or chromosome names, got {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return [s.strip() for s in value.split(",") if s.strip()]
    if isinstance(value, list):
        return [str(v) for v in value]
    raise BiodlInputError(f"--set {key}: cannot read {value!r} as a fraction or chromosome names")


def _label_list(labels: list[str] | None) -> list[str] | None:
    if not labels:
        return None
    dup = sorted({s for s in labels if labels.count(s) > 1})
    if dup:
        raise BiodlInputError(f"--labels names {dup} more than once")
    return labels


def is_fasta(path: Path) -> bool:
    """Whether ``path`` is a FASTA file (by its name, else by its first line)."""
    name = path.name.lower().removesuffix(".gz").removesuffix(".bgz")
    if name.endswith(_FASTA_SUFFIXES):
        return True
    try:
        with open(path, "rb") as fh:
            gz = fh.read(2) == b"\x1f\x8b"
        with gzip.open(path, "rt") if gz else open(path) as fh, input_errors(path):
            for line in fh:
                if line.strip():
                    return line.startswith(">")
    except (OSError, UnicodeDecodeError):
        return False
    return False


def genome_lengths(genome) -> dict[str, int]:
    from biodl.io.fasta import open_genome

    fa = open_genome(genome)
    try:
        return {k: len(fa[k]) for k in fa.keys()}
    finally:
        fa.close()


def _resize_intervals(bed: pd.DataFrame, window: int, lengths: dict[str, int], path) -> pd.DataFrame:
    """Centre a ``window``-bp window on every BED interval (a zero-length one: on its point),
    moved inside the chromosome when it would run past an end. An interval that starts at or
    beyond the chromosome end is refused: no window of the chromosome is near it."""
    missing = sorted(set(bed["chrom"]) - set(lengths))
    if missing:
        line = int(bed.loc[bed["chrom"] == missing[0], "line"].iloc[0])
        raise BiodlInputError(
            f"chromosome {missing[0]!r} is not in the genome (it has: {', '.join(list(lengths)[:5])})",
            path=path,
            record=line,
        )
    clen = bed["chrom"].map(lengths).to_numpy(np.int64)
    bstart, bend = bed["start"].to_numpy(np.int64), bed["end"].to_numpy(np.int64)
    # no base of the chromosome inside (a zero-length point exactly at the end is allowed)
    beyond = np.flatnonzero((bstart > clen) | ((bstart == clen) & (bend > bstart)))
    if len(beyond):
        i = int(beyond[0])
        more = f" ({len(beyond)} such intervals in the file)" if len(beyond) > 1 else ""
        raise BiodlInputError(
            f"interval {bed['chrom'].iloc[i]}:{bstart[i]}-{bend[i]} lies beyond the end of "
            f"{bed['chrom'].iloc[i]} (length {clen[i]} bp){more}: is the BED for another genome "
            "assembly?",
            path=path,
            record=int(bed["line"].iloc[i]),
        )
    short = np.flatnonzero(clen < window)
    if len(short):
        i = int(short[0])
        raise BiodlInputError(
            f"chromosome {bed['chrom'].iloc[i]!r} ({clen[i]} bp) is shorter than the model's "
            f"{window}-bp window",
            path=path,
            record=int(bed["line"].iloc[i]),
        )
    mid = (bstart + bend) // 2
    want = mid - window // 2
    start = np.clip(want, 0, clen - window)
    moved = int((start != want).sum())
    overhang = int((bend > clen).sum())
    longer = int((bend - bstart > window).sum())
    if moved:
        note(
            f"[biodl] {path}: {moved} of {len(bed)} interval(s) are centred within {window // 2} bp of a "
            "chromosome end"
            + (f" ({overhang} of them run past the end)" if overhang else "")
            + f": their {window}-bp windows were moved inside the chromosome, so they are not centred "
            "on the interval (window_start / window_end in the output say where)"
        )
    if longer:
        note(
            f"[biodl] {path}: {longer} of {len(bed)} interval(s) are longer than the model's {window}-bp "
            "window: only the central window of each is scored"
        )
    return pd.DataFrame({"chrom": bed["chrom"].astype(str).to_numpy(), "start": start, "end": start + window})


def _same(a, b) -> bool:
    return Path(a).resolve() == Path(b).resolve()


class WindowsKind(OneHotTraining):
    """Genome windows labelled by an annotation."""

    name = "windows"
    title = "genome windows"
    report_data = "another genome FASTA whose windows are interpreted"
    reads = "a genome FASTA cut into windows (with --genome), or DNA sequences of the window length"
    formats = frozenset(("FASTA",))
    options = OPTIONS
    hints = {"data": _NOT_USED, "valid_file": _NOT_USED, "test_file": _NOT_USED}

    def claims(self, given: dict[str, Any]) -> bool:
        return given.get("genome") is not None

    # ------------------------------------------------------------------ training
    def _spec(self, o: dict[str, Any], seed: int):
        from biodl.kinds.windows.data import WindowSpec

        return WindowSpec(
            window=o["window"],
            step=o["step"] or o["center"],
            center=o["center"],
            min_overlap=o["min_overlap"],
            valid=holdout(o["valid"], "valid"),
            test=holdout(o["test"], "test"),
            placement=o["placement"],
            scope=o["scope"],
            chroms=o["chroms"],
            max_windows=o["max_windows"],
            seed=seed,
        )

    def load(self, ctx: TrainContext) -> Splits:
        o = ctx.options
        if not o["genome"]:
            raise BiodlInputError("genome-window training needs --genome FASTA")
        if not o["annotation"]:
            raise BiodlInputError("genome-window training needs --annotation (GFF3 or BED file(s))")
        spec = self._spec(o, ctx.config.seed)
        train_ds, valid_ds, test_ds, names = spec.datasets(
            o["genome"], o["annotation"], _label_list(o["labels"]), verbose=not ctx.quiet
        )
        if o["task"] == "binary" and len(names) != 1:
            raise BiodlInputError(f"--task binary needs exactly one label, got {len(names)}: {names}")
        for ds, part in ((train_ds, "train"), (valid_ds, "valid"), (test_ds, "test")):
            if len(ds) == 0:
                raise BiodlInputError(
                    f"the {part} split has no windows: the genome is too short for the window size "
                    f"(--set window=...), or "
                    + (
                        f"the --set {part}=... hold-out is empty (use a fraction, e.g. --set {part}=0.1)"
                        if part != "train"
                        else "the hold-outs (--set valid=..., --set test=...) leave no window to train on"
                    )
                )
        pos = train_ds.labels.sum(axis=0)
        empty = [n for n, p in zip(names, pos, strict=True) if p == 0]
        if len(empty) == len(names):
            raise BiodlInputError(
                f"no training window is positive for any label ({', '.join(names)}); choose other --labels"
            )
        if empty:
            ctx.log(
                f"warning: label(s) {empty} have no positive training window (too rare, or all in the "
                "held-out parts); the model cannot learn them"
            )
        test_ds.source = f"{o['genome']} (test split)"
        counts = {
            part: {n: int(c) for n, c in zip(names, ds.labels.sum(axis=0), strict=True)}
            for part, ds in (("train", train_ds), ("valid", valid_ds), ("test", test_ds))
        }
        return Splits(
            train=train_ds,
            valid=valid_ds,
            test=test_ds,
            info={
                "n_train": len(train_ds),
                "n_valid": len(valid_ds),
                "n_test": len(test_ds),
                "positives": counts,
                "holdout": {"valid": spec.valid, "test": spec.test},
            },
            extra={"names": names, "spec": spec},
        )

    def build(self, ctx: TrainContext, splits: Splits):
        from biodl.train.fit import seed_all

        o, spec, names = ctx.options, splits.extra["spec"], splits.extra["names"]
        mk = ctx.recipe.model_kwargs(len(names), seq_len=spec.window, **ctx.model_options)
        seed_all(ctx.config.seed)
        try:
            model = ctx.recipe.build(**mk)
        except ValueError as e:
            raise BiodlInputError(
                f"cannot build {ctx.recipe.name} for {spec.window}-bp windows: {e}"
            ) from None
        data = WindowData(
            genome=str(Path(o["genome"]).resolve()),
            annotation=[str(Path(a).resolve()) for a in o["annotation"]],
            labels=names,
            window=spec.window,
            step=spec.step,
            center=spec.center,
            min_overlap=spec.min_overlap,
            holdout={"valid": spec.valid, "test": spec.test},
            placement=spec.placement,
            scope=spec.scope,
            chroms=spec.chroms,
            seed=spec.seed,
            max_windows=spec.max_windows,
            rc_augment=o["rc_augment"],
            shift=o["shift"],
            class_weight=o["class_weight"],
            n_value=splits.train.n_value,
            seq_len=spec.window,
        )
        meta = RunMeta(
            kind=self.name,
            recipe=ctx.recipe.name,
            task=o["task"],
            model_kwargs=mk,
            label_names=names,
            data=asdict(data),
        )
        ctx.log(
            f"training {ctx.recipe.title} ({o['task']}, {len(names)} label(s): {', '.join(names)}) on "
            f"{len(splits.train)} genome windows of {spec.window} bp, validating on {len(splits.valid)}"
            + (f", testing on {len(splits.test)}" if splits.test is not None else "")
            + f"; output in {ctx.out}"
        )
        return model, meta

    def weighted_labels(self, meta, splits):
        return splits.train.labels, "multilabel", 0

    def after_fit(self, ctx, model, meta, splits):
        d = data_as(WindowData, meta.data)
        out = {
            "genome": ctx.options["genome"],
            "labels": d.labels,
            "positives": meta.splits["positives"],
            "window": d.window,
        }
        if meta.thresholds:
            out["thresholds"] = meta.thresholds
        return out

    # ------------------------------------------------------------------ inference
    def _annotation(self, d: WindowData, options: dict[str, Any], same_genome: bool) -> list[str]:
        if options.get("annotation"):
            return list(options["annotation"])
        if same_genome and d.annotation and all(Path(a).exists() for a in d.annotation):
            return list(d.annotation)
        raise BiodlInputError(
            "evaluation needs the annotation that labels the windows: give it with --set annotation=PATH"
        )

    def _label(self, d: WindowData, options, windows: pd.DataFrame, same: bool) -> np.ndarray:
        spec = d.spec()
        features, label_spec = spec.features(self._annotation(d, options, same), d.label_spec())
        return spec.label(windows, features, label_spec)

    def genome_windows(
        self, meta: RunMeta, genome: Path, options: dict[str, Any], default_split: str = "test"
    ):
        """``(windows, description, same_genome)``: the model's windows of ``genome`` (for the
        training genome, its ``split``; for another genome, every window)."""
        d = data_as(WindowData, meta.data)
        same = _same(genome, d.genome) if d.genome else False
        split = options.get("split") or (default_split if same else "all")
        windows = d.spec().select(genome_lengths(str(genome)), split, training_genome=same)
        return windows, f"{genome} ({split} windows)", same

    def read(self, meta, path, options, *, labelled, quiet=True):
        from biodl.io.bed import read_bed
        from biodl.kinds.windows.data import GenomeWindowDataset

        if path is None:
            raise BiodlInputError("give a genome FASTA or a BED file of intervals")
        d = data_as(WindowData, meta.data)
        from biodl.io._util import check_file

        p = check_file(path)
        if is_fasta(p):
            genome = str(p)
            windows, desc, same = self.genome_windows(meta, p, options if labelled else {"split": "all"})
            base = windows
            short = {c: n for c, n in genome_lengths(genome).items() if n < int(d.window)}
            if short:
                eg = ", ".join(f"{c} ({n} bp)" for c, n in list(short.items())[:5])
                note(
                    f"[biodl] warning: {p}: {len(short)} record(s) shorter than the model's {d.window}-bp "
                    f"window give no window and are not in the output "
                    f"({eg}{', ...' if len(short) > 5 else ''})"
                )
        else:
            genome = options.get("genome") or d.genome
            if not genome or not Path(genome).exists():
                raise BiodlInputError(
                    f"the genome FASTA {genome!r} is not found; give it with --set genome=PATH"
                    if genome
                    else "no genome FASTA: give it with --set genome=PATH"
                )
            same = _same(genome, d.genome) if d.genome else False
            bed = read_bed(p)
            windows = _resize_intervals(bed, int(d.window), genome_lengths(genome), p)
            desc = f"{p} (windows of {genome})"
            base = pd.DataFrame(
                {
                    "chrom": bed["chrom"].astype(str).to_numpy(),
                    "start": bed["start"].to_numpy(),
                    "end": bed["end"].to_numpy(),
                    "name": bed["name"].to_numpy(),
                    "window_start": windows["start"].to_numpy(),
                    "window_end": windows["end"].to_numpy(),
                }
            )
        if len(windows) == 0:
            raise BiodlInputError(
                f"no {d.window}-bp window to score (genome shorter than the window?)", path=p
            )
        y = self._label(d, options, windows, same) if labelled else None
        ds = GenomeWindowDataset(genome, windows, y, d.labels if labelled else None, n_value=float(d.n_value))
        ds.source, ds.base = desc, base.reset_index(drop=True)
        return ds

    def score(self, model, meta, table, *, device, options, batch_size=256):
        from biodl.train.predict import predict

        if len(table) == 0:
            raise BiodlInputError("nothing to score: no windows")
        return predict(
            model, table, batch_size=batch_size, device=device, rc_average=rc_average_for(meta, options)
        )

    def metrics(self, meta, outputs, targets, table):
        m = super().metrics(meta, outputs, targets, table)
        names = meta.label_names
        if len(names) == 1:  # compute_metrics names per-label values only for several labels
            m[f"auroc/{names[0]}"] = m["auroc"]
            m[f"auprc/{names[0]}"] = m["auprc"]
        return m

    def result_extras(self, meta, table, outputs, targets):
        return {"positives": {n: int(p) for n, p in zip(meta.label_names, targets.sum(axis=0), strict=True)}}

    def source(self, table):
        return getattr(table, "source", None)

    def frame(self, meta, table, outputs, targets=None) -> pd.DataFrame:
        base = getattr(table, "base", None)
        df = (base if base is not None else table.windows).reset_index(drop=True).copy()
        if targets is not None:  # an evaluation: the columns of the training's test/predictions.tsv
            # (an evaluation of the genome also had the centre's; predictions keep them)
            df = df.drop(columns=[c for c in ("center_start", "center_end") if c in df.columns])
        df["chrom"] = df["chrom"].astype(str)
        prob = 1 / (1 + np.exp(-outputs.astype(np.float64)))
        names = list(meta.label_names)
        parts = [df, pd.DataFrame(prob[:, : len(names)], columns=[f"prob_{n}" for n in names])]
        if meta.task in THRESHOLD_TASKS:
            from biodl.kinds.sequences.kind import decision_thresholds

            th = np.asarray(decision_thresholds(meta)[0], dtype=np.float64)[: len(names)]
            called = (prob[:, : len(names)] >= th).astype(np.int8)
            parts.append(pd.DataFrame(called, columns=[f"called_{n}" for n in names]))
        if targets is not None and targets.size:
            parts.append(
                pd.DataFrame(targets[:, : len(names)].astype(int), columns=[f"true_{n}" for n in names])
            )
        return pd.concat(parts, axis=1, copy=False)  # one step: a column at a time fragments 919 labels

    # ------------------------------------------------------------------ report
    def describe_data(self, meta):
        d = data_as(WindowData, meta.data)
        return {
            "genome": d.genome,
            "labels": ", ".join(d.labels),
            "window / step / centre (bp)": f"{d.window} / {d.step or d.center} / {d.center}",
        }

    def report_sections(self, run, model, meta, data, options, max_windows: int = 500):
        """Filter logos / JASPAR matches / ISM on windows of the held-out ``test`` split that are
        positive for some label (at most ``max_windows``, evenly spaced; ``data`` = another genome
        FASTA, or ``--set split=...``, chooses other windows)."""
        from biodl.kinds.sequences.report import interpretation_sections

        return interpretation_sections(
            run, model, meta, self.positive_windows(meta, data, options, max_windows)
        )

    def positive_windows(self, meta, data, options, max_windows: int = 500):
        """``(X, description, ids)``: one-hot ``(n, 4, window)`` windows of the held-out ``test`` split
        of the training genome (``data``: another genome FASTA, all its windows; ``--set
        split=...``: another split) that are positive for some label (all of them when none
        is), at most ``max_windows`` evenly spaced, and their ``chrom:start-end`` (1-based); ``None``
        when there is no window."""
        import torch

        from biodl.kinds.windows.data import GenomeWindowDataset

        d = data_as(WindowData, meta.data)
        genome = Path(data or d.genome)
        if not genome.exists():
            raise BiodlInputError("genome not found (give it: biodl report RUN --data GENOME)", path=genome)
        windows, desc, same = self.genome_windows(meta, genome, options)
        y = self._label(d, options, windows, same)
        pos = np.flatnonzero(np.nansum(y, axis=1) > 0)
        if len(pos) == 0:
            pos = np.arange(len(windows))
        pick = pos[np.unique(np.linspace(0, len(pos) - 1, min(max_windows, len(pos))).astype(int))]
        ds = GenomeWindowDataset(
            str(genome),
            windows.iloc[pick].reset_index(drop=True),
            y[pick],
            d.labels,
            n_value=float(d.n_value),
        )
        if not len(ds):
            return None
        w = windows.iloc[pick]
        ids = [f"{c}:{s + 1}-{e}" for c, s, e in zip(w["chrom"], w["start"], w["end"], strict=True)]
        return torch.stack([ds[i][0] for i in range(len(ds))]), f"{len(ds)} labelled windows of {desc}", ids


KIND = WindowsKind()
