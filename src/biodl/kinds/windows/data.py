"""DeepSEA-style multi-label genomic windows, streamed from a genome FASTA.

DeepSEA (Zhou & Troyanskaya 2015) tiled the genome into 200-bp bins, took the 1000-bp
window centred on each bin as input and labelled the window positive for a chromatin
feature when the feature's peaks covered at least half of the central bin. This module
does the same with any annotation (GFF3 feature types or BED peak files):

1. :func:`make_windows` tiles the chromosomes into ``window``-bp windows every ``step`` bp;
2. :func:`label_windows` gives each window a 0/1 label per feature type from the coverage
   of its central ``center`` bp (vectorised interval arithmetic, no per-base arrays);
3. :func:`split_windows` holds out whole chromosomes or contiguous genomic regions for
   validation and test, dropping windows that straddle a split boundary;
4. :class:`GenomeWindowDataset` cuts and one-hot encodes each window on demand through
   pyfaidx, so the genome is never held in memory (and works with DataLoader workers).

:func:`build_genome_window_datasets` runs the whole pipeline from a FASTA and a GFF.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from biodl.encode import one_hot
from biodl.errors import BiodlInputError
from biodl.io.fasta import open_genome
from biodl.io.gff import derive_introns, read_annotation, type_counts

WINDOW_COLUMNS = ["chrom", "start", "end", "center_start", "center_end"]

#: Labels for a bacterial NCBI RefSeq GFF such as E. coli K-12 MG1655 (ASM584v2).
PROKARYOTE_LABELS: tuple[str, ...] = (
    "CDS",
    "gene",
    "tRNA",
    "rRNA",
    "ncRNA",
    "pseudogene",
    "mobile_genetic_element",
)
#: Labels for a eukaryotic gene annotation (TAIR10, WormBase, FlyBase, Ensembl, ...).
EUKARYOTE_LABELS: tuple[str, ...] = ("CDS", "exon", "intron", "five_prime_UTR", "three_prime_UTR")
#: GFF sources that are experimental evidence rather than annotation (the RNA-seq tracks of
#: the MCB185 model-organism GFFs); excluded by :func:`build_genome_window_datasets` by default.
EVIDENCE_SOURCES: tuple[str, ...] = ("RNASeq_splice", "RNASeq_reads", "RNASeq")

SPLITS = ("train", "valid", "test")
DROPPED = "dropped"

LabelSpec = Sequence[str] | Mapping[str, str | Sequence[str]]
HoldOut = float | str | Sequence[str | tuple[str, int, int]] | None


# ----------------------------------------------------------------------------- windows
def _chrom_lengths(genome) -> dict[str, int]:
    """Chromosome lengths from a FASTA path, an open pyfaidx.Fasta or a ``{name: length}`` map."""
    if isinstance(genome, Mapping):
        return {str(k): int(v) for k, v in genome.items()}
    if isinstance(genome, (str, Path)):
        fa = open_genome(genome)
        try:
            return {k: len(fa[k]) for k in fa.keys()}
        finally:
            fa.close()
    if hasattr(genome, "keys") and hasattr(genome, "__getitem__"):
        return {k: len(genome[k]) for k in genome.keys()}
    raise BiodlInputError(
        f"genome must be a FASTA path, a pyfaidx.Fasta or a name->length map, got {type(genome)}"
    )


def make_windows(
    genome,
    chroms: Sequence[str] | None = None,
    window: int = 1000,
    step: int | None = None,
    center: int = 200,
) -> pd.DataFrame:
    """Tile chromosomes into fixed-size windows (the last window of a chromosome that would
    run past its end is dropped, as are chromosomes shorter than ``window``).

    Parameters
    ----------
    genome
        Genome FASTA path (plain, gzip or BGZF; see :func:`biodl.io.open_genome`), an open
        ``pyfaidx.Fasta``, or a ``{chromosome: length}`` mapping.
    chroms
        Chromosomes to tile, in this order; ``None`` = all, in FASTA order.
    window
        Window length in bp (DeepSEA: 1000).
    step
        Distance between consecutive window starts in bp; ``None`` = ``center``, so the
        central bins tile the genome without gaps or overlap (DeepSEA: 200).
    center
        Length of the central bin that labels are computed on, bp (DeepSEA: 200).

    Returns
    -------
    pandas.DataFrame
        ``(n_windows, 5)``: ``chrom`` (categorical, categories in genome order), ``start``,
        ``end`` (0-based half-open, bp), ``center_start``, ``center_end`` (the central bin,
        ``start + (window - center) // 2``).

    Raises
    ------
    BiodlInputError
        Non-positive sizes, ``center > window``, or a chromosome not in the genome.
    """
    step = center if step is None else step
    for name, v in (("window", window), ("step", step), ("center", center)):
        if int(v) != v or v <= 0:
            raise BiodlInputError(f"{name} must be a positive integer, got {v!r}")
    if center > window:
        raise BiodlInputError(f"center ({center}) cannot be longer than window ({window})")
    lengths = _chrom_lengths(genome)
    if chroms is None:
        chroms = list(lengths)
    else:
        chroms = [chroms] if isinstance(chroms, str) else list(chroms)
        missing = [c for c in chroms if c not in lengths]
        if missing:
            raise BiodlInputError(f"chromosome(s) {missing} not in the genome (it has: {_preview(lengths)})")
    codes, starts = [], []
    for i, c in enumerate(chroms):
        s = np.arange(0, lengths[c] - window + 1, step, dtype=np.int64)
        starts.append(s)
        codes.append(np.full(len(s), i, dtype=np.int32))
    start = np.concatenate(starts) if starts else np.zeros(0, np.int64)
    code = np.concatenate(codes) if codes else np.zeros(0, np.int32)
    off = (window - center) // 2
    return pd.DataFrame(
        {
            "chrom": pd.Categorical.from_codes(code, categories=list(chroms)),
            "start": start,
            "end": start + window,
            "center_start": start + off,
            "center_end": start + off + center,
        }
    )


def _preview(names, n: int = 5) -> str:
    names = list(names)
    return ", ".join(names[:n]) + (", ..." if len(names) > n else "")


def _chrom_codes(windows: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Integer chromosome codes ``(n_windows,)`` and the list of names they index."""
    col = windows["chrom"]
    if isinstance(col.dtype, pd.CategoricalDtype):
        return col.cat.codes.to_numpy(np.int32), [str(c) for c in col.cat.categories]
    codes, names = pd.factorize(col, sort=False)
    return codes.astype(np.int32), [str(c) for c in names]


# --------------------------------------------------------------------- interval maths
def _merge_intervals(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Union of intervals as sorted disjoint ``[s, e)`` plus ``cum[k]`` = bp covered before ``k``."""
    order = np.argsort(starts, kind="stable")
    s, e = starts[order].astype(np.int64), ends[order].astype(np.int64)
    run_end = np.maximum.accumulate(e)
    new = np.ones(len(s), dtype=bool)
    new[1:] = s[1:] > run_end[:-1]
    first = np.flatnonzero(new)
    last = np.r_[first[1:] - 1, len(s) - 1]
    ms, me = s[first], run_end[last]
    cum = np.zeros(len(ms), dtype=np.int64)
    np.cumsum((me - ms)[:-1], out=cum[1:])
    return ms, me, cum


def _covered_before(ms: np.ndarray, me: np.ndarray, cum: np.ndarray, x: np.ndarray) -> np.ndarray:
    """bp of the merged intervals lying before position ``x`` (vectorised over ``x``)."""
    k = np.searchsorted(ms, x, side="right") - 1
    kk = np.maximum(k, 0)
    inside = np.clip(x - ms[kk], 0, me[kk] - ms[kk])
    return np.where(k >= 0, cum[kk] + inside, 0)


def covered_bp(starts: np.ndarray, ends: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Number of bp of each query ``[a, b)`` covered by the union of intervals ``[starts, ends)``.

    O((n_intervals + n_queries) log n_intervals), memory proportional to the inputs (no
    per-base coverage array), so it scales to whole mammalian chromosomes.

    Returns
    -------
    np.ndarray
        ``(n_queries,)`` int64, bp.
    """
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    if len(starts) == 0:
        return np.zeros(len(a), dtype=np.int64)
    ms, me, cum = _merge_intervals(np.asarray(starts), np.asarray(ends))
    return _covered_before(ms, me, cum, b) - _covered_before(ms, me, cum, a)


# ---------------------------------------------------------------------------- labels
def _normalise_labels(label_types: LabelSpec) -> dict[str, list[str]]:
    if isinstance(label_types, str):
        label_types = [label_types]
    if isinstance(label_types, Mapping):
        spec = {str(k): ([v] if isinstance(v, str) else list(v)) for k, v in label_types.items()}
    else:
        spec = {str(t): [str(t)] for t in label_types}
    if not spec:
        raise BiodlInputError("no label types given")
    return spec


def label_windows(
    windows: pd.DataFrame,
    features: pd.DataFrame,
    label_types: LabelSpec,
    center: int = 200,
    min_overlap: float = 0.5,
) -> np.ndarray:
    """Multi-label targets: window ``i`` is positive for label ``j`` when the union of the
    label's features covers at least ``min_overlap`` of the window's central ``center`` bp
    (DeepSEA's rule with ``center=200, min_overlap=0.5``). Strand is ignored.

    Parameters
    ----------
    windows
        Table with ``chrom, start, end`` (0-based half-open), e.g. from :func:`make_windows`.
        The central bin is ``[start + (end - start - center) // 2, ... + center)``.
    features
        Feature table with ``seqid, type, start0, end`` (see :func:`biodl.io.gff.read_gff`
        and :func:`biodl.io.gff.read_bed_features`).
    label_types
        Feature types, one label each (``["CDS", "tRNA"]``), or a mapping from label name
        to the feature type(s) pooled into it (``{"RNA": ["tRNA", "rRNA", "ncRNA"]}``).
    center
        Central bin length, bp.
    min_overlap
        Fraction of the central bin, in ``(0, 1]``, that must be covered.

    Returns
    -------
    np.ndarray
        ``(n_windows, n_labels)`` float32 of 0/1, labels in the order of ``label_types``.

    Raises
    ------
    BiodlInputError
        A label whose types have no features at all (the available types are listed), no
        feature on any window chromosome (chromosome names differ between GFF and FASTA?),
        ``center`` longer than a window, or ``min_overlap`` outside ``(0, 1]``.
    """
    if not 0 < min_overlap <= 1:
        raise BiodlInputError(f"min_overlap must be in (0, 1], got {min_overlap}")
    spec = _normalise_labels(label_types)
    missing = [t for types in spec.values() for t in types if not (features["type"] == t).any()]
    if missing:
        raise BiodlInputError(
            f"no features of type {missing} in the annotation; available types (count): "
            + ", ".join(f"{k} ({v})" for k, v in type_counts(features).items())
        )
    codes, names = _chrom_codes(windows)
    starts = windows["start"].to_numpy(np.int64)
    width = windows["end"].to_numpy(np.int64) - starts
    if len(width) and width.min() < center:
        raise BiodlInputError(f"center ({center}) is longer than the shortest window ({width.min()} bp)")
    cs = starts + (width - center) // 2
    ce = cs + center
    need = min_overlap * center - 1e-9
    y = np.zeros((len(windows), len(spec)), dtype=np.float32)
    if len(windows) == 0:
        return y
    seqids = features["seqid"].astype(str).to_numpy()
    if not np.isin(seqids, names).any():
        raise BiodlInputError(
            f"no feature lies on a window chromosome: the annotation has {_preview(np.unique(seqids))}, "
            f"the windows have {_preview(names)} (do the GFF/BED and FASTA names match?)"
        )
    n_chrom = len(names)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(n_chrom + 1))
    code_of = {n: i for i, n in enumerate(names)}
    f_code = np.fromiter((code_of.get(s, -1) for s in seqids), dtype=np.int64, count=len(seqids))
    types = features["type"].to_numpy()
    f_start = features["start0"].to_numpy(np.int64)
    f_end = features["end"].to_numpy(np.int64)
    for j, tlist in enumerate(spec.values()):
        fi = np.flatnonzero(np.isin(types, tlist) & (f_code >= 0))
        fi = fi[np.argsort(f_code[fi], kind="stable")]
        f_bounds = np.searchsorted(f_code[fi], np.arange(n_chrom + 1))
        for c in range(n_chrom):
            rows = order[bounds[c] : bounds[c + 1]]
            fc = fi[f_bounds[c] : f_bounds[c + 1]]
            if len(rows) == 0 or len(fc) == 0:
                continue
            cov = covered_bp(f_start[fc], f_end[fc], cs[rows], ce[rows])
            y[rows, j] = cov >= need
    return y


def label_counts(labels: np.ndarray, label_names: Sequence[str]) -> pd.DataFrame:
    """Per-label class balance.

    Returns
    -------
    pandas.DataFrame
        Indexed by label, columns ``positives`` (int), ``windows`` (int) and ``fraction``
        (positives / windows).
    """
    labels = np.asarray(labels)
    pos = labels.sum(axis=0).astype(np.int64) if labels.size else np.zeros(len(label_names), np.int64)
    n = labels.shape[0]
    return pd.DataFrame(
        {"positives": pos, "windows": n, "fraction": pos / max(n, 1)},
        index=pd.Index(list(label_names), name="label"),
    )


# ---------------------------------------------------------------------------- splits
_REGION = re.compile(r"^(.+):([\d,]+)-([\d,]+)$")


def _is_region_tuple(item) -> bool:
    return (
        isinstance(item, tuple)
        and len(item) == 3
        and isinstance(item[0], str)
        and all(isinstance(v, (int, np.integer)) for v in item[1:])
    )


def _parse_holdout(spec, lengths: Mapping[str, int], what: str) -> list[tuple[str, int, int]]:
    """Explicit hold-out (chromosome names, ``chr:start-end`` strings 1-based inclusive, or
    ``(chrom, start0, end)`` tuples) as 0-based half-open intervals."""
    items = [spec] if isinstance(spec, str) or _is_region_tuple(spec) else list(spec)
    out = []
    for item in items:
        if _is_region_tuple(item):
            chrom, s, e = str(item[0]), int(item[1]), int(item[2])
        elif isinstance(item, str) and item in lengths:
            chrom, s, e = item, 0, lengths[item]
        elif isinstance(item, str) and (m := _REGION.match(item)) and m.group(1) in lengths:
            chrom, s, e = m.group(1), int(m.group(2).replace(",", "")) - 1, int(m.group(3).replace(",", ""))
        else:
            raise BiodlInputError(
                f"{what}: {item!r} is neither a chromosome of the windows ({_preview(lengths)}) "
                "nor a region 'chrom:start-end'"
            )
        if chrom not in lengths:
            raise BiodlInputError(
                f"{what}: chromosome {chrom!r} is not among the windows ({_preview(lengths)})"
            )
        if not 0 <= s < e:
            shown = item if isinstance(item, str) else f"({chrom!r}, {s}, {e}) (0-based start, end)"
            raise BiodlInputError(
                f"{what}: bad region {shown}: the start must be at least 1 and at most the end "
                "(chrom:start-end, 1-based, both included)"
            )
        out.append((chrom, s, e))
    return out


def _linear_to_regions(a: int, b: int, offsets: np.ndarray, names: list[str]) -> list[tuple[str, int, int]]:
    """Intervals of the concatenated genome ``[a, b)`` (may wrap past the end) as per-chromosome regions."""
    total = int(offsets[-1])
    if b - a <= 0:
        return []
    pieces = [(a % total, a % total + (b - a))]
    if pieces[0][1] > total:
        pieces = [(pieces[0][0], total), (0, pieces[0][1] - total)]
    out = []
    for lo, hi in pieces:
        for i, name in enumerate(names):
            s, e = max(lo, offsets[i]), min(hi, offsets[i + 1])
            if s < e:
                out.append((name, int(s - offsets[i]), int(e - offsets[i])))
    return out


def _fraction_regions(
    valid: float | None,
    test: float | None,
    lengths: Mapping[str, int],
    placement: str,
    scope: str,
    rng: np.random.Generator,
) -> tuple[list, list]:
    v, t = valid or 0.0, test or 0.0
    groups = [[c] for c in lengths] if scope == "chromosome" else [list(lengths)]
    v_reg, t_reg = [], []
    for names in groups:
        offsets = np.r_[0, np.cumsum([lengths[c] for c in names])].astype(np.int64)
        total = int(offsets[-1])
        nt, nv = int(round(t * total)), int(round(v * total))
        origin = total - nt if placement == "end" else int(rng.integers(total))
        t_reg += _linear_to_regions(origin, origin + nt, offsets, names)
        v_reg += _linear_to_regions(origin - nv, origin, offsets, names)
    return v_reg, t_reg


def _is_fraction(spec) -> bool:
    return isinstance(spec, (float, int, np.floating, np.integer)) and not isinstance(spec, bool)


def split_windows(
    windows: pd.DataFrame,
    valid: HoldOut = 0.1,
    test: HoldOut = 0.1,
    *,
    placement: str = "end",
    scope: str = "genome",
    seed: int = 0,
    chrom_lengths: Mapping[str, int] | None = None,
) -> pd.Series:
    """Assign windows to train / valid / test so that no two windows of different splits
    share a base pair.

    The validation and test parts are genomic regions; a window entirely inside the test
    (validation) region is ``"test"`` (``"valid"``), a window touching neither is
    ``"train"``, and a window straddling a boundary is ``"dropped"``.

    Parameters
    ----------
    windows
        Table with ``chrom, start, end`` (from :func:`make_windows`).
    valid, test
        Each one of:

        * a fraction in ``(0, 1)``: a contiguous stretch of that fraction of the genome.
          With ``placement="end"`` the test part is the last ``test`` fraction and the
          validation part the ``valid`` fraction just before it (for E. coli, with the
          defaults: the last 10 % is test, the 10 % before it validation);
        * chromosome names (``["chr8", "chr9"]``, DeepSEA's test set), regions
          ``"chrom:start-end"`` (1-based inclusive, as samtools) or tuples
          ``(chrom, start0, end)`` (0-based half-open), alone or in a list;
        * ``None`` or ``0``: no such split.
    placement
        For fractions: ``"end"`` (deterministic, as above) or ``"random"``: the same layout
        rotated to a start drawn with ``seed`` (wrapping around the end of the genome,
        natural for a circular bacterial chromosome).
    scope
        For fractions: ``"genome"`` (the chromosomes concatenated in window order) or
        ``"chromosome"`` (the fraction is taken from every chromosome).
    seed
        Seed of the ``"random"`` placement.
    chrom_lengths
        ``{chromosome: length}``; default: the extent of the windows on each chromosome.

    Returns
    -------
    pandas.Series
        ``(n_windows,)`` named ``split``, aligned with ``windows.index``; values
        ``"train"``, ``"valid"``, ``"test"`` or ``"dropped"``.

    Raises
    ------
    BiodlInputError
        Fractions outside ``(0, 1)`` or summing to 1 or more, unknown chromosomes, bad
        regions, or validation and test regions that overlap.
    """
    if placement not in ("end", "random"):
        raise BiodlInputError(f"placement must be 'end' or 'random', got {placement!r}")
    if scope not in ("genome", "chromosome"):
        raise BiodlInputError(f"scope must be 'genome' or 'chromosome', got {scope!r}")
    codes, names = _chrom_codes(windows)
    starts = windows["start"].to_numpy(np.int64)
    ends = windows["end"].to_numpy(np.int64)
    if chrom_lengths is None:
        max_end = pd.Series(ends).groupby(codes).max() if len(ends) else pd.Series(dtype=np.int64)
        lengths = {n: int(max_end.get(i, 0)) for i, n in enumerate(names)}
    else:
        lengths = {n: int(chrom_lengths[n]) for n in names if n in chrom_lengths}
        missing = [n for n in names if n not in chrom_lengths]
        if missing:
            raise BiodlInputError(f"chrom_lengths lacks window chromosome(s) {missing}")
    lengths = {n: L for n, L in lengths.items() if L > 0}
    fracs = {}
    for what, spec in (("valid", valid), ("test", test)):
        if spec is None or (_is_fraction(spec) and spec == 0):
            fracs[what] = 0.0
        elif _is_fraction(spec):
            if not 0 < spec < 1:
                raise BiodlInputError(f"{what} fraction must be in (0, 1), got {spec}")
            fracs[what] = float(spec)
    if sum(fracs.values()) >= 1:
        raise BiodlInputError(f"valid + test fractions must be < 1, got {fracs}")
    rng = np.random.default_rng(seed)
    v_frac, t_frac = _fraction_regions(fracs.get("valid"), fracs.get("test"), lengths, placement, scope, rng)
    regions = {}
    for what, spec, from_frac in (("valid", valid, v_frac), ("test", test, t_frac)):
        regions[what] = from_frac if what in fracs else _parse_holdout(spec, lengths, what)
    for c in names:
        v = [(s, e) for n, s, e in regions["valid"] if n == c]
        t = [(s, e) for n, s, e in regions["test"] if n == c]
        if v and t:
            va, vb = np.array(v).T
            if covered_bp(va, vb, [s for s, _ in t], [e for _, e in t]).any():
                raise BiodlInputError(f"the validation and test regions overlap on {c}")
    width = ends - starts
    ov = {}
    for what in ("valid", "test"):
        ov[what] = np.zeros(len(windows), dtype=np.int64)
        for c, name in enumerate(names):
            reg = [(s, e) for n, s, e in regions[what] if n == name]
            if not reg:
                continue
            rows = np.flatnonzero(codes == c)
            rs, re_ = np.array(reg, dtype=np.int64).T
            ov[what][rows] = covered_bp(rs, re_, starts[rows], ends[rows])
    out = np.full(len(windows), DROPPED, dtype=object)
    out[(ov["valid"] == 0) & (ov["test"] == 0)] = "train"
    out[ov["valid"] == width] = "valid"
    out[ov["test"] == width] = "test"
    cats = pd.CategoricalDtype(list(SPLITS) + [DROPPED])
    return pd.Series(out, index=windows.index, name="split").astype(cats)


# --------------------------------------------------------------------------- dataset
class GenomeWindowDataset(Dataset):
    """Windows of a genome FASTA, one-hot encoded on demand, with multi-label targets.

    The dataset holds only the genome's *path* and the window coordinates; each process
    (the main one or a DataLoader worker) opens its own pyfaidx handle on first access, so
    it streams from disk and is safe with ``num_workers > 0``.

    Parameters
    ----------
    genome
        Genome FASTA path (plain, gzip or BGZF; a plain-gzip file is decompressed once into
        the biodl cache by :func:`biodl.io.open_genome`), or an open ``pyfaidx.Fasta``
        (only its file name is kept).
    windows
        Table with ``chrom, start, end`` (0-based half-open, all the same length).
    labels
        ``(n_windows, n_labels)`` targets, or ``None`` for unlabelled windows.
    label_names
        Names of the label columns (default ``label0, label1, ...``).
    n_value
        One-hot value of ``N`` (and other IUPAC ambiguity codes) in all four channels.

    Notes
    -----
    ``dataset[i]`` returns ``(x, y)``: ``x`` float32 tensor ``(4, window)`` (channels
    A, C, G, T; soft-masked lowercase bases encoded like uppercase) and ``y`` float32
    tensor ``(n_labels,)``. Augmentation (strand flips, shifts) wraps the dataset in
    :class:`~biodl.kinds.sequences.augment.AugmentedDataset`.
    """

    def __init__(
        self,
        genome,
        windows: pd.DataFrame,
        labels: np.ndarray | None = None,
        label_names: Sequence[str] | None = None,
        n_value: float = 0.25,
    ) -> None:
        if hasattr(genome, "filename") and not isinstance(genome, (str, Path)):
            genome = genome.filename
        fa = open_genome(genome)
        try:
            self.genome_path = Path(fa.filename)
            lengths = {k: len(fa[k]) for k in fa.keys()}
        finally:
            fa.close()
        self.source_path = Path(genome)
        self.windows = windows[["chrom", "start", "end"]].reset_index(drop=True).copy()
        codes, names = _chrom_codes(self.windows)
        self._chrom_names = names
        self._chrom = codes
        self._start = self.windows["start"].to_numpy(np.int64).copy()
        self._end = self.windows["end"].to_numpy(np.int64).copy()
        missing = [n for n in names if n not in lengths and (codes == names.index(n)).any()]
        if missing:
            raise BiodlInputError(
                f"window chromosome(s) {missing} not in the genome (it has: {_preview(lengths)})",
                path=self.source_path,
            )
        if len(self._start):
            widths = self._end - self._start
            if (widths != widths[0]).any() or widths[0] <= 0:
                raise BiodlInputError("all windows must have the same positive length")
            clen = np.array([lengths.get(n, 0) for n in names], dtype=np.int64)[codes]
            bad = np.flatnonzero((self._start < 0) | (self._end > clen))
            if len(bad):
                i = int(bad[0])
                raise BiodlInputError(
                    f"window {i} {names[codes[i]]}:{self._start[i]}-{self._end[i]} runs past "
                    f"the chromosome end ({clen[i]} bp)",
                    path=self.source_path,
                )
        if labels is None:
            self.labels = np.zeros((len(self._start), 0), dtype=np.float32)
        else:
            self.labels = np.ascontiguousarray(labels, dtype=np.float32)
            if self.labels.ndim != 2 or self.labels.shape[0] != len(self._start):
                raise BiodlInputError(
                    f"labels must be (n_windows={len(self._start)}, n_labels), got {self.labels.shape}"
                )
        n_labels = self.labels.shape[1]
        self.label_names = (
            list(label_names) if label_names is not None else [f"label{j}" for j in range(n_labels)]
        )
        if len(self.label_names) != n_labels:
            raise BiodlInputError(f"{len(self.label_names)} label names for {n_labels} label columns")
        self.n_value = float(n_value)
        self._fasta = None
        self._pid: int | None = None

    # -- lazy per-process resources
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_fasta"] = None
        state["_pid"] = None
        return state

    def _genome(self):
        pid = os.getpid()
        if self._fasta is None or self._pid != pid:
            self._fasta = open_genome(self.genome_path)
            self._pid = pid
        return self._fasta

    def close(self) -> None:
        """Close this process's genome handle (it is reopened on the next access)."""
        if self._fasta is not None:
            self._fasta.close()
        self._fasta = None

    # -- Dataset protocol
    @property
    def window(self) -> int:
        """Window length, bp."""
        return int(self._end[0] - self._start[0]) if len(self._start) else 0

    @property
    def n_labels(self) -> int:
        return self.labels.shape[1]

    def __len__(self) -> int:
        return len(self._start)

    def sequence(self, i: int) -> str:
        """The genome sequence of window ``i`` (forward strand, case as in the FASTA)."""
        c = self._chrom_names[self._chrom[i]]
        return str(self._genome()[c][int(self._start[i]) : int(self._end[i])])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"window index {i} out of range for {n} windows")
        i = int(i) % n
        seq = self.sequence(i)
        try:
            x = torch.from_numpy(one_hot(seq, n_value=self.n_value, iupac_as_n=True))
        except BiodlInputError as e:
            c = self._chrom_names[self._chrom[i]]
            raise BiodlInputError(
                f"window {c}:{self._start[i]}-{self._end[i]}: {e.problem}", path=self.source_path, record=c
            ) from None
        return x, torch.from_numpy(self.labels[i].copy())

    def label_counts(self) -> pd.DataFrame:
        """Per-label positives, windows and positive fraction (see :func:`label_counts`)."""
        return label_counts(self.labels, self.label_names)

    def __repr__(self) -> str:
        return (
            f"GenomeWindowDataset({self.source_path.name}, {len(self)} windows of {self.window} bp, "
            f"{self.n_labels} labels)"
        )


# ----------------------------------------------------------------------- convenience
def _auto_labels(types: set[str]) -> list[str]:
    euk = {"mRNA", "five_prime_UTR", "three_prime_UTR", "intron"} & types
    base = EUKARYOTE_LABELS if euk else PROKARYOTE_LABELS
    return [t for t in base if t in types or (t == "intron" and "exon" in types)]


def _only_bed(annotation) -> bool:
    """Whether the annotation is BED files only (each one label)."""
    from biodl.io.gff import _is_bed

    paths = [annotation] if isinstance(annotation, (str, Path)) else annotation
    try:
        return bool(paths) and all(_is_bed(Path(p)) for p in paths)
    except TypeError:  # a feature table given in memory
        return False


@dataclass
class WindowSpec:
    """How a genome-window run tiles, labels and splits a genome: the one definition used by
    training, evaluation, prediction and the report (stored with the model).

    Attributes
    ----------
    window, step, center
        Window length, tiling step (``None``: ``center``) and labelled central bin, bp.
    min_overlap
        Fraction of the central bin a label's features must cover.
    valid, test
        Held-out parts: fractions, chromosome names or regions (see :func:`split_windows`).
    placement, scope
        How fractions are laid out (see :func:`split_windows`).
    chroms
        Chromosomes of the training genome to use (default all).
    max_windows
        At most this many windows over the three splits: a seeded random subset.
    seed
        Seed of the subset and of a random placement.
    exclude_sources
        GFF sources ignored (RNA-seq evidence tracks).
    derive_introns
        Add exon-gap introns: ``True`` always, ``False`` never, ``None`` when an ``intron``
        label has no intron features.
    """

    window: int = 1000
    step: int | None = None
    center: int = 200
    min_overlap: float = 0.5
    valid: HoldOut = 0.1
    test: HoldOut = 0.1
    placement: str = "end"
    scope: str = "genome"
    chroms: list[str] | None = None
    max_windows: int | None = None
    seed: int = 0
    exclude_sources: tuple[str, ...] = EVIDENCE_SOURCES
    derive_introns: bool | None = None

    def tile(self, lengths: Mapping[str, int], training_genome: bool = True) -> pd.DataFrame:
        """All windows of a genome (``chroms`` only apply to the training genome)."""
        chroms = self.chroms if training_genome else None
        return make_windows(lengths, chroms=chroms, window=self.window, step=self.step, center=self.center)

    def assign(self, windows: pd.DataFrame, lengths: Mapping[str, int], subsample: bool = True) -> np.ndarray:
        """The split of every window (``train``, ``valid``, ``test`` or ``dropped``): straddlers
        of a split boundary are dropped, and with ``subsample`` the windows left out of the
        ``max_windows`` subset too (training; evaluation scores every window of a split)."""
        split = split_windows(
            windows,
            valid=self.valid,
            test=self.test,
            placement=self.placement,
            scope=self.scope,
            seed=self.seed,
            chrom_lengths=lengths,
        ).to_numpy(dtype=object)
        keep = np.flatnonzero(split != DROPPED)
        if subsample and self.max_windows is not None and len(keep) > self.max_windows:
            rng = np.random.default_rng(self.seed)
            chosen = np.sort(rng.choice(keep, size=int(self.max_windows), replace=False))
            out = np.full(len(split), DROPPED, dtype=object)
            out[chosen] = split[chosen]
            split = out
        return split

    def select(self, lengths: Mapping[str, int], split: str, training_genome: bool = True) -> pd.DataFrame:
        """Every window of one split of the training genome, ``max_windows`` not applied (``all``:
        every window; another genome has no splits, only ``all``)."""
        windows = self.tile(lengths, training_genome)
        if split == "all":
            return windows
        if split not in SPLITS:
            raise BiodlInputError(f"split must be train, valid, test or all, got {split!r}")
        if not training_genome:
            raise BiodlInputError(f"split={split} only applies to the training genome; use split=all")
        return windows[self.assign(windows, lengths, subsample=False) == split].reset_index(drop=True)

    def features(
        self, annotation, label_types: LabelSpec | None, verbose: bool = False
    ) -> tuple[pd.DataFrame, dict[str, list[str]]]:
        """The annotation's features for the labels and the label spec ``{label: [types]}``
        (default labels chosen from the feature types; introns derived when needed)."""
        features = read_annotation(annotation)
        if self.exclude_sources:
            features = features[~features["source"].isin(list(self.exclude_sources))].reset_index(drop=True)
        types = set(features["type"].unique())
        if label_types is None:
            label_types = _auto_labels(types)
            if not label_types and (len(types) == 1 or _only_bed(annotation)):
                # BED files of peaks (a label per file), or one feature type: those are the labels
                label_types = sorted(types)
                from biodl.io._util import note

                which = (
                    f"{label_types[0]!r}, the annotation's one feature type"
                    if len(types) == 1
                    else f"{', '.join(map(repr, label_types))}, one per BED file"
                )
                note(f"[biodl] labels: {which} (--labels chooses others)")
            if not label_types:
                raise BiodlInputError(
                    "none of the default label types are in the annotation (available types: "
                    + ", ".join(f"{k} ({v})" for k, v in type_counts(features).items())
                    + "); choose the labels with --labels (e.g. --labels CDS,tRNA; in Python: label_types)",
                    path=annotation if isinstance(annotation, (str, Path)) else None,
                )
        spec = _normalise_labels(label_types)
        wanted = {t for ts in spec.values() for t in ts}
        derive = self.derive_introns
        if derive is None:
            derive = "intron" in wanted and "intron" not in types
        if derive:
            introns = derive_introns(features)
            features = pd.concat([features[features["type"] != "intron"], introns], ignore_index=True)
            if verbose:
                print(f"derived {len(introns)} introns from exon gaps within transcripts")
        return features[features["type"].isin(wanted)], spec

    def label(self, windows: pd.DataFrame, features: pd.DataFrame, spec: dict[str, list[str]]) -> np.ndarray:
        """Labels of ``windows`` (:func:`label_windows` with this spec's centre and overlap)."""
        return label_windows(windows, features, spec, center=self.center, min_overlap=self.min_overlap)

    def datasets(
        self,
        genome,
        annotation,
        label_types: LabelSpec | None = None,
        n_value: float = 0.25,
        verbose: bool = True,
    ) -> tuple[GenomeWindowDataset, GenomeWindowDataset, GenomeWindowDataset, list[str]]:
        """Train / valid / test :class:`GenomeWindowDataset` of ``genome`` labelled by ``annotation``."""
        lengths = _chrom_lengths(genome)
        windows = self.tile(lengths)
        features, spec = self.features(annotation, label_types, verbose)
        labels = self.label(windows, features, spec)
        split = self.assign(windows, lengths)
        names = list(spec)
        out = []
        for part in SPLITS:
            idx = np.flatnonzero(split == part)
            out.append(GenomeWindowDataset(genome, windows.iloc[idx], labels[idx], names, n_value=n_value))
        if verbose:
            n_drop = int((split == DROPPED).sum())
            print(
                f"{len(windows)} windows of {self.window} bp (step {self.step or self.center}, "
                f"centre {self.center}): "
                + ", ".join(f"{p} {len(d)}" for p, d in zip(SPLITS, out, strict=True))
                + f", {n_drop} dropped (split boundaries"
                + (f", max_windows={self.max_windows})" if self.max_windows else ")")
            )
            table = pd.concat(
                {p: d.label_counts()["positives"] for p, d in zip(SPLITS, out, strict=True)}, axis=1
            )
            table["all"] = label_counts(labels, names)["positives"]
            table["fraction_all"] = (table["all"] / max(len(windows), 1)).round(4)
            print(table.to_string())
        return out[0], out[1], out[2], names


def build_genome_window_datasets(
    genome_fa: str | Path,
    gff: str | Path | Sequence[str | Path],
    label_types: LabelSpec | None = None,
    window: int = 1000,
    step: int | None = 200,
    center: int = 200,
    valid: HoldOut = 0.1,
    test: HoldOut = 0.1,
    max_windows: int | None = None,
    seed: int = 0,
    *,
    min_overlap: float = 0.5,
    chroms: Sequence[str] | None = None,
    exclude_sources: Sequence[str] = EVIDENCE_SOURCES,
    derive_intron_features: bool | None = None,
    placement: str = "end",
    scope: str = "genome",
    verbose: bool = True,
) -> tuple[GenomeWindowDataset, GenomeWindowDataset, GenomeWindowDataset, list[str]]:
    """Genome FASTA + annotation -> DeepSEA-style train / valid / test window datasets.

    Tiles the genome (:func:`make_windows`), labels the windows from the annotation
    (:func:`label_windows`), splits them by region or chromosome (:func:`split_windows`,
    straddling windows dropped) and wraps each split in a streaming
    :class:`GenomeWindowDataset`.

    Sensible settings for the MCB185 data (``/work/shared/data/genomes_mcb185``):

    * E. coli K-12 (RefSeq GFF, one circular 4.64 Mb chromosome): the defaults, i.e.
      ``label_types=PROKARYOTE_LABELS`` (``CDS, gene, tRNA, rRNA, ncRNA, pseudogene,
      mobile_genetic_element``), ``valid=0.1, test=0.1`` (the last 10 % of the chromosome
      is test, the 10 % before it validation).
    * A. thaliana / C. elegans / D. melanogaster 1 % slices (several chromosomes):
      ``label_types=EUKARYOTE_LABELS`` (``CDS, exon, intron, five_prime_UTR,
      three_prime_UTR``), and whole chromosomes held out, e.g. ``valid=["Chr4"],
      test=["Chr5"]`` (A. thaliana), ``["IV"], ["V"]`` (C. elegans), ``["3L"], ["X"]``
      (D. melanogaster), or fractions with ``scope="chromosome"``.

    Introns: if ``intron`` is a label and the annotation (after ``exclude_sources``) has
    no ``intron`` features, introns are derived as the gaps between consecutive exons of
    the same transcript (exons grouped by their ``Parent`` attribute; see
    :func:`biodl.io.gff.derive_introns`). This is the case for A. thaliana, whose TAIR10
    annotation lists no introns (its only intron lines are RNA-seq splice junctions,
    source ``RNASeq_splice``, excluded by default as evidence rather than annotation).

    Parameters
    ----------
    genome_fa
        Genome FASTA (plain, gzip or BGZF).
    gff
        GFF3 annotation, or BED file(s) with one label per file (see
        :func:`biodl.io.gff.read_annotation`).
    label_types
        Feature types to predict, or ``{label: [types]}``; ``None`` picks
        :data:`EUKARYOTE_LABELS` when the annotation has mRNA/UTR/intron features, else
        :data:`PROKARYOTE_LABELS`, keeping those present.
    window, step, center
        Window length, tiling step and labelled central bin, bp (DeepSEA: 1000, 200, 200).
    valid, test
        Held-out parts: fractions, chromosome names or regions (see :func:`split_windows`).
    max_windows
        At most this many windows in total over the three splits: a seeded uniform random
        subset (for quick runs); ``None`` keeps all.
    seed
        Seed of the subset and of a random ``placement``.
    min_overlap
        Fraction of the central bin a label's features must cover (DeepSEA: 0.5).
    chroms
        Chromosomes to use (default all).
    exclude_sources
        GFF sources (column 2) to ignore; default :data:`EVIDENCE_SOURCES`.
    derive_intron_features
        ``True``: always add exon-gap introns; ``False``: never; ``None``: only when the
        annotation has no intron features.
    placement, scope
        How fractions are laid out (see :func:`split_windows`).
    verbose
        Print the number of windows per split and the per-label positive counts.

    Returns
    -------
    tuple
        ``(train_ds, valid_ds, test_ds, label_names)``; ``ds.label_counts()`` gives each
        split's class balance, ``ds.windows`` its coordinates.
    """
    spec = WindowSpec(
        window=window,
        step=step,
        center=center,
        min_overlap=min_overlap,
        valid=valid,
        test=test,
        placement=placement,
        scope=scope,
        chroms=list(chroms) if chroms is not None else None,
        max_windows=max_windows,
        seed=seed,
        exclude_sources=tuple(exclude_sources),
        derive_introns=derive_intron_features,
    )
    return spec.datasets(genome_fa, gff, label_types, verbose=verbose)
