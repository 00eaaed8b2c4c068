"""Reads for training and scoring.

:func:`sample_reads` draws reads from a reference's genomes, deterministically by
``(seed, stream, epoch, read index)`` through a counter-based hash (splitmix64), vectorised over
the batch: a species uniformly, one of its genomes, a position, a strand, and substitution
errors at ``error_rate`` per base. This is the training augmenter and the fixture generator of
the tests; benchmarks simulate Illumina reads with ART instead.

:class:`SampledReads` is the training / validation dataset built on it (one batch hashed at a
time, see :mod:`biodl.train.batches`); :class:`ReadTable` / :class:`EncodedReads` hold a read
file read into memory for ``biodl evaluate`` / ``predict`` (``biodl reads classify`` streams).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from biodl.errors import BiodlInputError
from biodl.io._util import check_file, open_text
from biodl.kinds.reads.io import Reference, Taxonomy, _mate_name, iter_batches, load_reference
from biodl.kinds.reads.kmers import kmer_indices, read_indices
from biodl.train.batches import Stacked

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_G = np.uint64(0x9E3779B97F4A7C15)


def mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 of ``x`` (uint64 array): a counter-based random stream."""
    with np.errstate(over="ignore"):
        x = x.astype(np.uint64) + _G
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
        return x ^ (x >> np.uint64(31))


def _uniform(h: np.ndarray) -> np.ndarray:
    return (h >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


@dataclass
class _Layout:
    """Per-genome sampling tables of a reference."""

    leaves: np.ndarray  # leaf taxa that have genomes
    leaf_genomes: list[np.ndarray]
    gstart: np.ndarray  # genome start in sequence.npy
    glen: np.ndarray
    cstart: np.ndarray  # contig starts (sorted)
    cend: np.ndarray
    lineage: np.ndarray  # (n_leaves, n_ranks)


def layout(ref: Reference) -> _Layout:
    g_of = ref.contigs[:, 0]
    n_g = len(ref.genomes)
    gstart = np.array([ref.contigs[g_of == g, 1].min() for g in range(n_g)], np.int64)
    glen = np.array([ref.contigs[g_of == g, 2].sum() for g in range(n_g)], np.int64)
    leaf = ref.genome_leaf()
    leaves = np.unique(leaf)
    tax = ref.taxonomy
    lineage = np.array([tax.lineage(i) for i in range(len(tax.names[0]))], np.int64)
    return _Layout(
        leaves,
        [np.flatnonzero(leaf == s) for s in leaves],
        gstart,
        glen,
        ref.contigs[:, 1].copy(),
        ref.contigs[:, 1] + ref.contigs[:, 2],
        lineage,
    )


def check_read_length(ref: Reference, read_len: int, genomes=None, option: str = "--set read_len") -> None:
    """Refuse genomes shorter than one read: every read sampled from them would be mostly N
    (padding) yet labelled with their taxon."""
    gs = np.arange(len(ref.genomes)) if genomes is None else np.asarray(genomes, np.int64)
    total = np.bincount(
        ref.contigs[:, 0].astype(np.int64), weights=ref.contigs[:, 2], minlength=len(ref.genomes)
    )
    short = [int(g) for g in gs if total[g] < read_len]
    if short:
        names = ", ".join(f"{ref.genomes[g]['name']} ({int(total[g]):,} bp)" for g in short[:8])
        raise BiodlInputError(
            f"{len(short)} genome(s) of the reference are shorter than one read ({read_len} bp): {names}; "
            f"their reads would be mostly N. Rebuild the reference without them, or lower {option}",
            path=ref.path,
        )


def sample_reads(
    ref: Reference,
    index: np.ndarray,
    *,
    read_len: int = 150,
    error_rate: float = 0.01,
    seed: int = 0,
    stream: int = 0,
    epoch: int = 0,
    lay: _Layout | None = None,
    genomes: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reads ``index`` (int array) of the stream ``(seed, stream, epoch)``.

    Returns
    -------
    codes, leaf, genome
        ``(n, read_len)`` uint8 2-bit codes (4 = N), the leaf taxon ``(n,)`` and the genome
        ``(n,)`` of every read. With ``genomes`` (indices), reads come from those genomes only.
    """
    lay = lay or layout(ref)
    idx = np.asarray(index, np.uint64)
    base = mix(mix(idx) ^ stream_key(seed, stream, epoch, 12345))
    u = [_uniform(mix(base + np.uint64(j))) for j in range(4)]
    if genomes is None:
        li = np.minimum((u[0] * len(lay.leaves)).astype(np.int64), len(lay.leaves) - 1)
        counts = np.array([len(x) for x in lay.leaf_genomes])
        pick = np.minimum((u[1] * counts[li]).astype(np.int64), counts[li] - 1)
        g = np.array([lay.leaf_genomes[a][b] for a, b in zip(li, pick, strict=True)], np.int64)
    else:
        genomes = np.asarray(genomes, np.int64)
        g = genomes[np.minimum((u[0] * len(genomes)).astype(np.int64), len(genomes) - 1)]
    off = lay.gstart[g] + np.minimum((u[2] * lay.glen[g]).astype(np.int64), lay.glen[g] - 1)
    c = np.searchsorted(lay.cstart, off, side="right") - 1
    start = np.maximum(np.minimum(off, lay.cend[c] - read_len), lay.cstart[c])
    pos = start[:, None] + np.arange(read_len)[None, :]
    inside = pos < lay.cend[c][:, None]
    codes = np.asarray(ref.codes)[np.minimum(pos, len(ref.codes) - 1)]
    codes = np.where(inside, codes, 4).astype(np.uint8)
    rc = u[3] < 0.5
    if rc.any():
        r = codes[rc, ::-1]
        codes[rc] = np.where(r < 4, 3 - r, 4)
    if error_rate > 0:
        h = mix(base[:, None] + np.uint64(16) + np.arange(read_len, dtype=np.uint64)[None, :])
        err = (_uniform(h) < error_rate) & (codes < 4)
        shift = (h % np.uint64(3)).astype(np.uint8) + 1
        codes = np.where(err, (codes + shift) % 4, codes).astype(np.uint8)
    leaf = ref.genome_leaf()[g]
    return codes, leaf, g


DECODE = np.frombuffer(b"ACGTN", np.uint8)


def decode(codes: np.ndarray) -> list[str]:
    """2-bit code rows as strings."""
    return [DECODE[row].tobytes().decode() for row in codes]


DECOY = -2.0  # the target of a decoy read at every rank (unknown targets are NaN)


def stream_seed(seed: int, stream: int, epoch: int, salt: int) -> int:
    """One number for one use (``salt``: sampling, decoys, diverged reads, their substitutions)
    of the read stream ``(seed, stream, epoch)``."""
    return seed * 1_000_003 + stream * 7919 + epoch * 104_729 + salt


def stream_key(seed: int, stream: int, epoch: int, salt: int) -> np.uint64:
    """:func:`stream_seed` hashed: the key that picks reads or their sampling."""
    return mix(np.array([stream_seed(seed, stream, epoch, salt)], np.uint64))[0]


def _share_of(index: np.ndarray, share: float, key: np.uint64) -> np.ndarray:
    """``share`` of the reads ``index``, chosen by a hash of the index under ``key``."""
    if share <= 0:
        return np.zeros(len(index), bool)
    return _uniform(mix(mix(np.asarray(index, np.uint64)) ^ key)) < share


def decoy_rows(index: np.ndarray, share: float, seed: int, stream: int, epoch: int) -> np.ndarray:
    """Which reads ``index`` of the stream ``(seed, stream, epoch)`` are decoys (``share`` of them),
    from a hash of their own (not the one that samples the reads)."""
    return _share_of(index, share, stream_key(seed, stream, epoch, 424242))


def diverged_rows(
    index: np.ndarray, share: float, seed: int, stream: int, epoch: int, exclude: np.ndarray | None = None
) -> np.ndarray:
    """Which reads ``index`` of the stream ``(seed, stream, epoch)`` are *diverged* (``share`` of
    them; never a row of ``exclude``), from a hash of their own."""
    out = _share_of(index, share, stream_key(seed, stream, epoch, 515151))
    return out if exclude is None else out & ~exclude


def diverge(codes: np.ndarray, index: np.ndarray, max_rate: float, key: int) -> np.ndarray:
    """``codes`` with substitutions at a rate drawn per read uniformly from [0, ``max_rate``]
    (deterministic in the read ``index`` and ``key``): reads as a congener of their genome would
    have them, roughly (a k-mer of length k survives with probability ``(1 - rate)^k``)."""
    n, L = codes.shape
    base = mix(mix(np.asarray(index, np.uint64)) ^ np.uint64(key))
    rate = _uniform(base) * max_rate
    h = mix(base[:, None] + np.uint64(7) + np.arange(L, dtype=np.uint64)[None, :])
    hit = (_uniform(h) < rate[:, None]) & (codes < 4)
    shift = (h % np.uint64(3)).astype(np.uint8) + 1
    return np.where(hit, (codes + shift) % 4, codes).astype(np.uint8)


class SampledReads(Dataset):
    """``n`` reads sampled from a reference (fresh reads every epoch when ``per_epoch``), as
    ``(k-mer indices (n, L - k + 1), targets (n, n_ranks))`` batches.

    With ``decoys`` > 0, that share of the reads are *decoys*: sampled reads written backwards
    (reversed, not complemented: the base composition and GC of a real read of the reference,
    but k-mers that are not in it), with target :data:`DECOY` at every rank. The read models
    train them toward the uniform distribution (outlier exposure, Hendrycks et al. 2019), so a
    read whose k-mers only land in buckets that other genomes' k-mers fill by chance gets a low
    confidence instead of the call of the genome that fills most buckets.

    With ``diverged`` > 0, that share of the other reads get extra substitutions, at a rate drawn
    per read from [0, ``divergence``], and lose their lowest-rank (species) target: the model
    learns that a read sharing only some of its k-mers with a genome belongs to that genome's
    genus (and above) without telling which species, as a read of a species absent from the
    reference does with its congeners."""

    def __init__(
        self,
        ref_path: str | Path,
        n: int,
        *,
        k: int,
        bits: int,
        read_len: int,
        error_rate: float,
        seed: int,
        stream: int,
        per_epoch: bool,
        decoys: float = 0.0,
        diverged: float = 0.0,
        divergence: float = 0.2,
    ) -> None:
        if not 0 <= decoys < 1:
            raise ValueError(f"decoys must be in [0, 1), got {decoys}")
        if not 0 <= diverged < 1:
            raise ValueError(f"diverged must be in [0, 1), got {diverged}")
        if not 0 <= divergence <= 0.75:
            raise ValueError(f"divergence must be in [0, 0.75], got {divergence}")
        self.diverged, self.divergence = float(diverged), float(divergence)
        self.ref_path, self.n, self.k, self.bits = str(ref_path), int(n), int(k), int(bits)
        self.read_len, self.error_rate, self.decoys = int(read_len), float(error_rate), float(decoys)
        self.seed, self.stream, self.per_epoch, self.epoch = int(seed), int(stream), per_epoch, 0
        self._ref: Reference | None = None
        self._lay: _Layout | None = None

    def __getstate__(self):
        d = dict(self.__dict__)
        d["_ref"] = d["_lay"] = None
        return d

    def _open(self) -> tuple[Reference, _Layout]:
        if self._ref is None:
            self._ref = load_reference(self.ref_path)
            self._lay = layout(self._ref)
        return self._ref, self._lay  # type: ignore[return-value]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n

    def __getitems__(self, indices) -> Stacked:
        ref, lay = self._open()
        index = np.asarray(indices, np.int64)
        epoch = self.epoch if self.per_epoch else 0
        codes, leaf, _ = sample_reads(
            ref,
            index,
            read_len=self.read_len,
            error_rate=self.error_rate,
            seed=self.seed,
            stream=self.stream,
            epoch=epoch,
            lay=lay,
        )
        y = lay.lineage[leaf].astype(np.float32)
        dec = decoy_rows(index, self.decoys, self.seed, self.stream, epoch)
        if dec.any():
            codes[dec] = codes[dec, ::-1]
            y[dec] = DECOY
        div = diverged_rows(index, self.diverged, self.seed, self.stream, epoch, exclude=dec)
        if div.any():
            key = stream_seed(self.seed, self.stream, epoch, 616161)
            codes[div] = diverge(codes[div], index[div], self.divergence, key)
            y[div, 0] = np.nan
        x = torch.from_numpy(kmer_indices(np.ascontiguousarray(codes), self.k, self.bits))
        return Stacked((x, torch.from_numpy(y)))

    def __getitem__(self, i: int):
        return self.__getitems__([i]).item(0)


# ---------------------------------------------------------------------------- read files
@dataclass
class ReadTable:
    """A read file in memory: ids, sequences (bytes), mates, targets ``(n, n_ranks)`` (class
    index per rank, NaN where unknown) and where it came from."""

    ids: list[str]
    seqs: list[bytes]
    seqs2: list[bytes] | None
    targets: np.ndarray
    source: str

    def __len__(self) -> int:
        return len(self.ids)


def truth_of(name: str | None, tax: Taxonomy, contigs: dict[str, int] | None) -> np.ndarray | None:
    """The target row of a read labelled ``name`` (a taxon at any rank, or a read id whose
    prefix before the last '-' is a reference contig, as ART names reads); ``None`` if unknown."""
    R = len(tax.ranks)
    row = np.full(R, np.nan, np.float32)
    if name is None:
        return None
    hit = tax.find(name)
    if hit is None and contigs is not None:
        base = name.rsplit("-", 1)[0] if "-" in name else name
        leaf = contigs.get(base)
        if leaf is not None:
            hit = (0, leaf)
    if hit is None:
        return None
    r, i = hit
    while True:
        row[r] = i
        if r + 1 >= R:
            break
        i, r = tax.parent[r][i], r + 1
    return row


def read_truth(path: str | Path) -> dict[str, str]:
    """A truth TSV: read id (or pair name, without ``/1``), taxon; ``#`` lines are comments."""
    p = check_file(path)
    out: dict[str, str] = {}
    with open_text(p) as fh:  # (plain or gzip; a byte-order mark, UTF-16 too)
        for ln, line in enumerate(fh, 1):
            line = line.rstrip("\r\n")
            if not line.strip() or line.startswith("#"):
                continue
            f = [c.strip() for c in line.split("\t")]
            if len(f) < 2 or not f[0] or not f[1]:
                raise BiodlInputError(
                    f"expected two non-empty tab-separated columns (read id, taxon), got {line[:80]!r}",
                    path=p,
                    record=ln,
                )
            out[f[0]] = f[1]
    if not out:
        raise BiodlInputError("no rows (read id<TAB>taxon)", path=p)
    return out


def read_table(
    path: str | Path,
    tax: Taxonomy,
    *,
    labelled: bool,
    mate2: str | Path | None = None,
    truth: str | Path | None = None,
    contigs: dict[str, int] | None = None,
    limit: int | None = None,
) -> ReadTable:
    """Read a FASTA/FASTQ file into a :class:`ReadTable`. Labels (``labelled``) come from the
    ``truth`` TSV (read id, taxon), else ``taxon=NAME`` in the headers, else read ids that
    start with a reference contig name (ART's ``contig-N``)."""
    ids: list[str] = []
    seqs: list[bytes] = []
    seqs2: list[bytes] | None = [] if mate2 is not None else None
    names: list[str | None] = []
    for b in iter_batches(path, 8192, mate2, with_labels=True):
        ids += b.ids
        seqs += b.seqs
        if seqs2 is not None and b.seqs2 is not None:
            seqs2 += b.seqs2
        names += b.labels or [None] * len(b)
        if limit is not None and len(ids) >= limit:
            break
    if not ids:
        raise BiodlInputError("no reads in the file", path=path)
    R = len(tax.ranks)
    y = np.full((len(ids), R), np.nan, np.float32)
    if labelled:
        given = read_truth(truth) if truth is not None else {}
        for i, rid in enumerate(ids):
            nm = given.get(rid) or given.get(_mate_name(rid)) if given else None
            src = f"the truth file's {nm!r}" if nm else None
            if not nm and names[i]:
                nm, src = names[i], f"its header's taxon={names[i]!r}"
            row = truth_of(nm or rid, tax, contigs)
            if row is None:
                raise BiodlInputError(
                    f"read {i + 1} ({rid!r}): "
                    + (
                        f"{src} is not a taxon of the model's taxonomy (names match exactly, at any rank)"
                        if src
                        else "no taxon of the model's taxonomy for it (give 'taxon=NAME' in the header, a "
                        "--set truth=TSV of read id and taxon, or read ids that start with a reference "
                        "contig name)"
                    ),
                    path=path,
                )
            y[i] = row
    return ReadTable(ids, seqs, seqs2, y, str(path))


def sampled_table(
    ref: Reference,
    n: int,
    *,
    read_len: int,
    error_rate: float,
    seed: int,
    stream: int,
    genomes: np.ndarray | None = None,
    fragment: int | None = None,
    prefix: str = "sampled",
) -> ReadTable:
    """``n`` labelled reads of the stream ``(seed, stream)`` as a :class:`ReadTable` (from
    ``genomes`` only when given); with ``fragment``, read pairs: both ends of a ``fragment``-bp
    stretch, the second on the reverse strand, as Illumina pairs."""
    lay = layout(ref)
    length = max(int(fragment), read_len) if fragment else read_len
    codes, leaf, _ = sample_reads(
        ref,
        np.arange(n),
        read_len=length,
        error_rate=error_rate,
        seed=seed,
        stream=stream,
        lay=lay,
        genomes=genomes,
    )
    second = None
    if fragment:
        tail = codes[:, -read_len:][:, ::-1]
        second = [s.encode() for s in decode(np.where(tail < 4, 3 - tail, 4).astype(np.uint8))]
    return ReadTable(
        [f"{prefix}{i + 1}" for i in range(n)],
        [s.encode() for s in decode(codes[:, :read_len])],
        second,
        lay.lineage[leaf].astype(np.float32),
        f"{n} {'pairs' if fragment else 'reads'} sampled from {ref.path}",
    )


class EncodedReads(Dataset):
    """A :class:`ReadTable` as ``(k-mer indices, targets)`` batches, hashed one batch at a time."""

    def __init__(self, table: ReadTable, k: int, bits: int) -> None:
        self.t, self.k, self.bits = table, k, bits

    def __len__(self) -> int:
        return len(self.t)

    def __getitems__(self, indices) -> Stacked:
        ix = list(indices)
        s = [self.t.seqs[i] for i in ix]
        s2 = [self.t.seqs2[i] for i in ix] if self.t.seqs2 is not None else None
        x = torch.from_numpy(read_indices(s, self.k, self.bits, s2))
        return Stacked((x, torch.from_numpy(self.t.targets[ix])))

    def __getitem__(self, i: int):
        return self.__getitems__([i]).item(0)


__all__ = [
    "DECOY",
    "EncodedReads",
    "ReadTable",
    "SampledReads",
    "decode",
    "decoy_rows",
    "diverge",
    "diverged_rows",
    "layout",
    "mix",
    "read_table",
    "sample_reads",
]
