"""Genotype matrices in and out: simulated datasets (``biodl popgen simulate`` directories of npz
shards) and VCF / BCF files cut into windows (cyvcf2).

Both give a :class:`GenotypeSet`: ragged haplotype matrices (``(n_sites_i, n_haplotypes)`` int8,
0 = reference / ancestral, 1 = alternative / derived, -1 = missing) with positions within each
window, plus the true parameters of simulations.

VCF rules: biallelic SNPs are used (other records are counted and skipped); a diploid sample
gives two haplotypes (phase as written; unphased calls are read in the order written and
reported); every sample of every record must have the ploidy of the first record; a window
with no variant is an error unless ``empty="skip"``. A malformed record, a ploidy mismatch, a
record out of order or a haplotype count the model was not trained on is one
:class:`~biodl.errors.BiodlInputError` naming the file, the record (line and ``CHROM:POS``)
and the problem.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from biodl.errors import BiodlInputError
from biodl.io._util import htslib_quiet, note_input


@dataclass
class GenotypeSet:
    """Ragged haplotype matrices.

    Attributes
    ----------
    gt
        ``(total_sites, n_haplotypes)`` int8: 0 / 1, -1 missing; matrix ``i`` is
        ``gt[offsets[i]:offsets[i + 1]]``.
    pos
        ``(total_sites,)`` float64 positions within each window (bp, from 0).
    offsets
        ``(n + 1,)`` int64.
    length
        ``(n,)`` float64 window lengths (bp).
    ids
        One name per matrix (``sim17``, ``2L:0-20001``).
    params
        ``(n, n_params)`` float64 true parameters (simulations), or ``None``.
    param_names
        Names of the ``params`` columns.
    stats
        ``(n, n_stats)`` summary statistics (:mod:`~biodl.kinds.popgen.stats`), or ``None``
        (computed when needed).
    classes
        Class names of a classification scenario (``class`` holds the index).
    source
        Where the data came from.
    """

    gt: np.ndarray
    pos: np.ndarray
    offsets: np.ndarray
    length: np.ndarray
    ids: list[str]
    params: np.ndarray | None = None
    param_names: list[str] = field(default_factory=list)
    stats: np.ndarray | None = None
    classes: list[str] = field(default_factory=list)
    source: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_haplotypes(self) -> int:
        return int(self.gt.shape[1])

    def n_sites(self) -> np.ndarray:
        """``(n,)`` segregating sites per matrix."""
        return np.diff(self.offsets)

    def matrix(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """``(gt (S, n_haplotypes), pos (S,))`` of matrix ``i``."""
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        return self.gt[a:b], self.pos[a:b]

    def param(self, name: str) -> np.ndarray:
        if self.params is None or name not in self.param_names:
            raise BiodlInputError(
                f"no parameter {name!r} in the data (it has: {', '.join(self.param_names) or 'none'})",
                path=self.source or None,
            )
        return self.params[:, self.param_names.index(name)]

    def subset(self, idx) -> GenotypeSet:
        """The matrices ``idx`` (in that order)."""
        idx = np.asarray(idx, dtype=np.int64)
        sizes = np.diff(self.offsets)[idx]
        rows = (
            np.concatenate([np.arange(self.offsets[i], self.offsets[i + 1]) for i in idx])
            if len(idx)
            else np.zeros(0, np.int64)
        )
        return GenotypeSet(
            self.gt[rows],
            self.pos[rows],
            np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
            self.length[idx],
            [self.ids[i] for i in idx],
            None if self.params is None else self.params[idx],
            list(self.param_names),
            None if self.stats is None else self.stats[idx],
            list(self.classes),
            self.source,
            dict(self.info),
        )

    def ensure_stats(self) -> np.ndarray:
        """The summary statistics, computed (and kept) when missing."""
        if self.stats is None:
            from biodl.kinds.popgen.stats import compute_stats

            self.stats = np.asarray(
                [compute_stats(*self.matrix(i), self.length[i]) for i in range(len(self))], np.float32
            ).reshape(len(self), -1)
        return self.stats


# ---------------------------------------------------------------------- simulated datasets
#: The arrays of a ``biodl popgen simulate`` shard.
SHARD_ARRAYS = ("index", "offsets", "gt", "pos", "params", "stats")


def read_dataset(path: str | Path, limit: int | None = None) -> GenotypeSet:
    """A simulated dataset directory as a :class:`GenotypeSet` (``limit``: its first simulations).

    A missing shard (an unfinished ``biodl popgen simulate``) is an error naming it.
    """
    from biodl.kinds.popgen.simulate import dataset_config, shard_path
    from biodl.kinds.popgen.stats import STATS_VERSION

    p = Path(path)
    cfg = dataset_config(p)
    n = int(cfg["n"]) if limit is None else min(int(limit), int(cfg["n"]))
    chunk = int(cfg["chunk"])
    gts, poss, offs, params, stats, index = [], [], [], [], [], []
    total = 0
    for k in range((n + chunk - 1) // chunk):
        sp = shard_path(p, k)
        if not sp.exists():
            raise BiodlInputError(
                f"shard {sp.name} is missing: the simulation did not finish; rerun the same "
                "`biodl popgen simulate` command to complete it (finished shards are kept)",
                path=p,
            )
        note_input(sp)
        try:
            with np.load(sp) as z:
                absent = [a for a in SHARD_ARRAYS if a not in z.files]
                if absent:
                    raise BiodlInputError(
                        f"shard {sp.name} is not a `biodl popgen simulate` shard (it has no "
                        f"{', '.join(absent)} array); rerun the same `biodl popgen simulate` command to "
                        "rewrite it (finished shards are kept)",
                        path=sp,
                    )
                keep = min(len(z["index"]), n - k * chunk)
                o = z["offsets"][: keep + 1]
                gts.append(z["gt"][: o[-1]])
                poss.append(z["pos"][: o[-1]])
                offs.append(o[1:] + total)
                total += int(o[-1])
                params.append(z["params"][:keep])
                stats.append(z["stats"][:keep])
                index.append(z["index"][:keep])
        except BiodlInputError:  # said above, as it is
            raise
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
            # a shard cut short (disk full, a copy interrupted) or damaged: np.load / zipfile
            # raise BadZipFile, zlib.error, EOFError or ValueError depending on where it ends
            raise BiodlInputError(
                f"simulation shard corrupt or truncated ({type(e).__name__}: {e}); rerun the same "
                "`biodl popgen simulate` command to rewrite it (it checks every shard and simulates "
                "damaged ones again; finished shards are kept)",
                path=sp,
            ) from None
    index = np.concatenate(index) if index else np.zeros(0, np.int64)
    gs = GenotypeSet(
        np.concatenate(gts) if gts else np.zeros((0, cfg["n_haplotypes"]), np.int8),
        np.concatenate(poss) if poss else np.zeros(0),
        np.concatenate([[0], *offs]).astype(np.int64),
        np.full(len(index), float(cfg["length"])),
        [f"sim{i}" for i in index],
        np.concatenate(params) if params else np.zeros((0, len(cfg["params"]))),
        list(cfg["params"]),
        np.concatenate(stats) if stats and cfg.get("stats_version") == STATS_VERSION else None,
        list(cfg.get("classes") or []),
        str(p),
        {"scenario": cfg["scenario"], "seed": cfg.get("seed"), "fixed": cfg.get("fixed", {})},
    )
    return gs


# ---------------------------------------------------------------------- VCF
def _data_line(path: Path, k: int) -> tuple[int | None, str]:
    """Line number and text of the ``k``-th (1-based) data line of a plain or gzip VCF."""
    from biodl.io._util import open_text

    seen = 0
    try:
        with open_text(path) as fh:
            for i, ln in enumerate(fh, 1):
                if not ln.startswith("#"):
                    seen += 1
                    if seen == k:
                        return i, ln.rstrip("\r\n")
    except (OSError, UnicodeDecodeError, EOFError):
        pass
    return None, ""


def _header_lines(path: Path) -> int | None:
    """Number of header lines of a plain or gzip VCF (``None`` for BCF)."""
    from biodl.io._util import open_text
    from biodl.kinds.base import sniff_format

    if sniff_format(path) == "BCF":
        return None
    n = 0
    try:
        with open_text(path) as fh:
            for ln in fh:
                if not ln.startswith("#"):
                    break
                n += 1
    except (OSError, UnicodeDecodeError, EOFError):
        return None
    return n


def _truncated(path: Path) -> BiodlInputError | None:
    """The error for a gzip / BGZF file (``.vcf.gz``, BCF) whose compressed stream ends early or
    is corrupt, else ``None`` (htslib reports such a file as a bad header or a bad record)."""
    import gzip

    from biodl.io._util import input_errors, is_gzip

    try:
        if not is_gzip(path):
            return None
        with input_errors(path), gzip.open(path, "rb") as fh:
            while fh.read(1 << 20):
                pass
    except BiodlInputError as e:  # input_errors' own message for a damaged gzip stream
        return e
    except OSError:
        return None
    return None


def _diagnose(line: str, n_samples: int) -> str:
    """What is wrong with a VCF data line htslib refused to parse."""
    f = line.split("\t")
    if len(f) < 8:
        return f"{len(f)} tab-separated fields (a VCF record has at least 8)"
    if not f[1].isdigit():
        return f"POS {f[1]!r} is not a positive integer"
    if n_samples and len(f) != 9 + n_samples:
        return f"{len(f) - 9} sample column(s), the header names {n_samples}"
    if n_samples and not f[8].split(":")[0] == "GT":
        return f"FORMAT {f[8]!r} does not start with GT"
    return "htslib could not parse it"


def _record_where(rec) -> str:
    return f"{rec.CHROM}:{rec.start + 1}"


@htslib_quiet()  # htslib's own log lines: every problem is reported here, naming file and record
def read_vcf(
    path: str | Path,
    *,
    samples: list[str] | None = None,
    chroms: list[str] | None = None,
    max_missing: float = 0.5,
    quiet: bool = True,
) -> dict[str, Any]:
    """The biallelic SNPs of a VCF / BCF: per chromosome, haplotype alleles and positions.

    Parameters
    ----------
    path
        VCF (plain or bgzip) or BCF.
    samples
        Use only these samples (in this order); default all.
    chroms
        Use only these chromosomes.
    max_missing
        Sites with a larger fraction of missing haplotype calls are dropped.

    Returns
    -------
    dict
        ``{"chroms": {chrom: (gt (S, n_haplotypes) int8, pos (S,) int64 1-based)}, "samples",
        "ploidy", "n_haplotypes", "skipped": {reason: count}, "unphased": int}``.
    """
    import cyvcf2

    from biodl.io._util import check_file

    p = check_file(path)
    try:
        vcf = cyvcf2.VCF(str(p), strict_gt=False)
    except (OSError, Exception) as e:  # htslib gives plain Exceptions
        from biodl.io._util import UTF8_BOM, byte_order_mark_error

        with open(p, "rb") as fh:
            if fh.read(3) == UTF8_BOM:  # htslib cannot read it
                raise byte_order_mark_error(p, "'##fileformat=VCF'") from None
        raise (_truncated(p) or BiodlInputError(f"not a readable VCF / BCF ({e})", path=p)) from None
    all_samples = list(vcf.samples)
    if not all_samples:
        raise BiodlInputError("the VCF has no sample columns (genotypes are needed)", path=p)
    if samples:
        missing = [s for s in samples if s not in all_samples]
        if missing:
            raise BiodlInputError(
                f"sample(s) not in the VCF: {', '.join(missing[:8])} (it has {len(all_samples)}: "
                f"{', '.join(all_samples[:8])}{', ...' if len(all_samples) > 8 else ''})",
                path=p,
            )
        twice = sorted({s for s in samples if list(samples).count(s) > 1})
        if twice:
            raise BiodlInputError(f"sample(s) given twice in --set samples: {', '.join(twice[:8])}", path=p)
        # the columns of the samples asked for, in the order asked (htslib's set_samples keeps the
        # file's order, which would silently relabel the haplotypes)
        cols = np.array([all_samples.index(s) for s in samples])
        use = list(samples)
    else:
        cols = np.arange(len(all_samples))
        use = all_samples
    n_header = _header_lines(p)
    ploidy: int | None = None
    out: dict[str, tuple[list, list]] = {}
    skipped = {
        "not a biallelic SNP": 0,
        "too much missing data": 0,
        "monomorphic": 0,
        "a second SNP at the same position": 0,
    }
    unphased = 0
    k = 0
    last: tuple[str, int] | None = None
    done: set[str] = set()
    others: dict[str, None] = {}  # chromosomes left out by ``chroms``, in file order
    from biodl.io._util import StatusLine

    status = StatusLine(show=not quiet)  # a large VCF takes a while (900,000 records: ~1 min)
    it = iter(vcf)
    while True:
        try:
            rec = next(it)
        except StopIteration:
            status.clear()
            break
        except Exception:  # htslib: a record it cannot parse
            bad = _truncated(p)
            if bad is not None:
                raise bad from None
            line_no, text = _data_line(p, k + 1)
            where = f" ({text.split(chr(9))[0]}:{text.split(chr(9))[1]})" if text.count("\t") >= 1 else ""
            raise BiodlInputError(
                f"malformed VCF record{where}: {_diagnose(text, len(all_samples))}",
                path=p,
                record=line_no if line_no is not None else f"data record {k + 1}",
            ) from None
        k += 1
        if not k % 4096:
            status.count("reading the VCF", k, "records read")
        line_no = n_header + k if n_header is not None else f"data record {k}"
        chrom = rec.CHROM
        if chroms and chrom not in chroms:
            others[chrom] = None
            continue
        pos = int(rec.start) + 1  # cyvcf2's POS is a 32-bit integer: above 2^31 it wraps around
        if pos < 1:
            raise BiodlInputError(
                f"record {_record_where(rec)}: POS {pos} is not a 1-based position (VCF's start at 1)",
                path=p,
                record=line_no,
            )
        if last is not None:
            if chrom != last[0]:
                if chrom in done:
                    raise BiodlInputError(
                        f"record {_record_where(rec)}: chromosome {chrom} appears again after "
                        f"{last[0]}; sort the VCF (bcftools sort)",
                        path=p,
                        record=line_no,
                    )
                done.add(last[0])
            elif pos < last[1]:
                raise BiodlInputError(
                    f"record {_record_where(rec)} comes after {last[0]}:{last[1]}: the VCF is not sorted "
                    "(bcftools sort)",
                    path=p,
                    record=line_no,
                )
        last = (chrom, pos)
        fmt = list(rec.FORMAT or [])
        if "GT" not in fmt:
            raise BiodlInputError(
                f"record {_record_where(rec)} has no GT (genotype) field (FORMAT "
                f"{':'.join(fmt) or 'missing'}): genotypes are needed",
                path=p,
                record=line_no,
            )
        try:
            arr = rec.genotype.array()[cols] if rec.genotypes else None
        except Exception as e:  # htslib / cyvcf2: "error parsing genotypes"
            raise BiodlInputError(
                f"record {_record_where(rec)}: unreadable GT field ({e})", path=p, record=line_no
            ) from None
        if arr is None or arr.size == 0:
            raise BiodlInputError(f"record {_record_where(rec)} has no GT field", path=p, record=line_no)
        alleles, phased = arr[:, :-1].copy(), arr[:, -1]
        present = alleles != -2  # -2: allele absent (a haploid call in a diploid array)
        per_sample = present.sum(1)
        # a bare "." is a missing call of any ploidy (VCF 4.x): it takes the ploidy of the others
        bare = (per_sample == 1) & (alleles[:, 0] == -1)
        if bare.all():  # every call missing: nothing to read (and no ploidy to check)
            skipped["too much missing data"] += 1
            continue
        rec_ploidy = int(per_sample[~bare].max())
        if bare.any() and rec_ploidy > 1:
            alleles[bare] = -2
            alleles[bare, :rec_ploidy] = -1
            per_sample = np.where(bare, rec_ploidy, per_sample)
        if (per_sample != rec_ploidy).any():
            j = int(np.flatnonzero(per_sample != rec_ploidy)[0])
            raise BiodlInputError(
                f"record {_record_where(rec)}: ploidy mismatch: sample {use[j]} has {int(per_sample[j])} "
                f"allele(s), others {rec_ploidy}",
                path=p,
                record=line_no,
            )
        if ploidy is None:
            ploidy = rec_ploidy
        elif rec_ploidy != ploidy:
            raise BiodlInputError(
                f"record {_record_where(rec)}: ploidy mismatch: {rec_ploidy} allele(s) per sample, the "
                f"first record has {ploidy}",
                path=p,
                record=line_no,
            )
        alt = [a.upper() for a in rec.ALT]  # bases in either case (VCF 4.x)
        if (
            len(alt) != 1
            or len(rec.REF) != 1
            or rec.REF.upper() not in "ACGT"
            or alt[0] not in ("A", "C", "G", "T")
        ):
            skipped["not a biallelic SNP"] += 1
            continue
        if ploidy > 1:
            unphased += int(((phased == 0) & (alleles[:, 0] >= 0)).sum())
        h = alleles[:, :ploidy].reshape(-1).astype(np.int16)
        if (h > 1).any():
            raise BiodlInputError(
                f"record {_record_where(rec)}: allele index {int(h.max())} with one ALT allele",
                path=p,
                record=line_no,
            )
        miss = h < 0
        if miss.mean() > max_missing:
            skipped["too much missing data"] += 1
            continue
        called = h[~miss]
        if called.min(initial=0) == called.max(initial=0):
            skipped["monomorphic"] += 1
            continue
        g, ps = out.setdefault(chrom, ([], []))
        if ps and ps[-1] == pos:  # a repeated record, or a split multi-allelic site: one site
            skipped["a second SNP at the same position"] += 1
            continue
        g.append(np.where(miss, -1, h).astype(np.int8))
        ps.append(pos)
    vcf.close()
    if ploidy is None:
        if chroms and others:
            raise BiodlInputError(
                f"no variant records on {', '.join(chroms)} (--set chroms); the VCF has records on "
                f"{', '.join(list(others)[:8])}{', ...' if len(others) > 8 else ''}",
                path=p,
            )
        raise BiodlInputError("no variant records in the VCF", path=p)
    res = {
        c: (np.asarray(g, np.int8).reshape(len(g), -1), np.asarray(ps, np.int64))
        for c, (g, ps) in out.items()
    }
    if unphased and not quiet:
        from biodl.kinds.base import log

        log(
            f"[biodl] {p}: {unphased} unphased diploid call(s) read as two haplotypes in the order written "
            "(the model was trained on phased haplotypes)",
            quiet,
        )
    return {
        "chroms": res,
        "samples": use,
        "ploidy": ploidy,
        "n_haplotypes": len(use) * ploidy,
        "skipped": {k: v for k, v in skipped.items() if v},
        "unphased": unphased,
        "lengths": contig_lengths(vcf.raw_header),
    }


_CONTIG = re.compile(r"^##contig=<(.*)>\s*$")


def contig_lengths(header: str) -> dict[str, int]:
    """``{ID: length}`` of the ``##contig`` header lines that give a length (those without
    one are left out)."""
    out: dict[str, int] = {}
    for line in header.splitlines():
        m = _CONTIG.match(line)
        if not m:
            continue
        fields = dict(f.split("=", 1) for f in re.split(r",(?=[A-Za-z_]+=)", m.group(1)) if "=" in f)
        length = fields.get("length", "").strip()
        if "ID" in fields and length.isdigit():
            out[fields["ID"].strip()] = int(length)
    return out


def vcf_windows(
    path: str | Path,
    window: int,
    *,
    step: int | None = None,
    n_haplotypes: int | None = None,
    samples: list[str] | None = None,
    chroms: list[str] | None = None,
    max_missing: float = 0.5,
    empty: str = "error",
    quiet: bool = True,
) -> GenotypeSet:
    """A VCF cut into windows of ``window`` bp every ``step`` bp (default ``window``), from
    position 1 to the last variant of each chromosome. Where the header gives a chromosome's
    length (``##contig=<ID=..,length=..>``), a window that runs past its end is left out (and
    counted): it holds less sequence than the windows the model was trained on, so its estimate
    would be biased; without a length the last window may run past the end unseen.

    Parameters
    ----------
    n_haplotypes
        The number of haplotypes the model reads (a different number in the file is an error).
    empty
        ``error``: a window with no variant is an error naming it; ``skip``: it is left out
        (and counted).
    """
    if window < 1:
        raise BiodlInputError(f"--set window must be at least 1 bp, got {window}")
    step = int(step or window)
    if step < 1:
        raise BiodlInputError(f"--set step must be at least 1 bp, got {step}")
    v = read_vcf(path, samples=samples, chroms=chroms, max_missing=max_missing, quiet=quiet)
    if n_haplotypes is not None and v["n_haplotypes"] != n_haplotypes:
        raise BiodlInputError(
            f"sample-count mismatch: the model reads {n_haplotypes} haplotypes, the VCF gives "
            f"{v['n_haplotypes']} ({len(v['samples'])} sample(s) x ploidy {v['ploidy']}); choose "
            "samples with --set samples=A,B,... (or train on simulations of this sample size: "
            "`biodl popgen simulate --samples N`)",
            path=path,
        )
    gts, poss, offs, lengths, ids = [], [], [0], [], []
    n_empty = n_partial = 0
    chrom_len = v.get("lengths") or {}
    if not v["chroms"]:
        raise BiodlInputError(
            "no usable biallelic SNP in the VCF"
            + (
                f" (skipped: {', '.join(f'{k}: {c}' for k, c in v['skipped'].items())})"
                if v["skipped"]
                else ""
            ),
            path=path,
        )
    for chrom, (g, pos) in v["chroms"].items():
        last = int(pos[-1])
        start = 0
        end = chrom_len.get(chrom)
        if end is not None and last > end:
            from biodl.kinds.base import log

            log(
                f"[biodl] note: {path}: chromosome {chrom} has variants up to position {last:,}, past its "
                f"length in the ##contig header ({end:,}); the header and the records disagree (another "
                "assembly?), so that length is not used to leave out windows past the end",
                quiet,
            )
            end = None
        while start < last:
            if end is not None and start + window > end:
                n_partial += 1
                start += step
                continue
            lo, hi = np.searchsorted(pos - 1, [start, start + window])
            name = f"{chrom}:{start}-{start + window}"
            if hi == lo:
                if empty == "error":
                    raise BiodlInputError(
                        f"window {name} has no variant (--set empty_windows=skip leaves such windows out)",
                        path=path,
                    )
                n_empty += 1
            else:
                gts.append(g[lo:hi])
                poss.append((pos[lo:hi] - 1 - start).astype(np.float64))
                offs.append(offs[-1] + hi - lo)
                lengths.append(float(window))
                ids.append(name)
            start += step
    if not ids:
        if n_partial:
            raise BiodlInputError(
                f"no window of {window:,} bp fits inside a chromosome (their ##contig lengths: "
                + ", ".join(f"{c} {chrom_len[c]:,}" for c in v["chroms"] if c in chrom_len)
                + "); give a smaller --set window (the model's is its training length)",
                path=path,
            )
        raise BiodlInputError("every window is empty", path=path)
    info = {
        "samples": v["samples"],
        "ploidy": v["ploidy"],
        "skipped": v["skipped"],
        "empty_windows": n_empty,
        "partial_windows": n_partial,
    }
    if not quiet and (n_empty or n_partial or v["skipped"]):
        from biodl.kinds.base import log

        what = [f"{k}: {c} record(s)" for k, c in v["skipped"].items()]
        if n_empty:
            what.append(f"{n_empty} window(s) without variants")
        if n_partial:
            what.append(f"{n_partial} window(s) running past their chromosome's end (##contig length)")
        log(f"[biodl] {path}: skipped {'; '.join(what)}", quiet)
    return GenotypeSet(
        np.concatenate(gts),
        np.concatenate(poss),
        np.asarray(offs, np.int64),
        np.asarray(lengths),
        ids,
        source=str(path),
        info=info,
    )


def write_vcf(ts_or_gt, path: str | Path, *, positions=None, chrom: str = "1", ploidy: int = 1) -> Path:
    """Write haplotypes as a VCF (for fixtures and round trips): a tskit tree sequence, or
    ``gt`` ``(S, n_haplotypes)`` with integer 1-based ``positions``; ``ploidy`` 2 pairs haplotypes."""
    from biodl.io._util import atomic_write_text

    if positions is None:
        gt = ts_or_gt.genotype_matrix()
        positions = np.floor(ts_or_gt.tables.sites.position).astype(np.int64) + 1
        for i in range(1, len(positions)):  # infinite-sites positions can share a base
            positions[i] = max(positions[i], positions[i - 1] + 1)
    else:
        gt = np.asarray(ts_or_gt)
    n = gt.shape[1] // ploidy
    head = [
        "##fileformat=VCFv4.2",
        f"##contig=<ID={chrom}>",
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t" + "\t".join(f"s{i}" for i in range(n)),
    ]
    lines = []
    for row, pos in zip(gt, positions, strict=True):
        calls = ["." if a < 0 else str(int(a)) for a in row]
        gts = ["|".join(calls[i * ploidy : (i + 1) * ploidy]) for i in range(n)]
        lines.append(f"{chrom}\t{int(pos)}\t.\tA\tT\t.\tPASS\t.\tGT\t" + "\t".join(gts))
    return atomic_write_text(path, "\n".join(head + lines) + "\n")


__all__ = ["GenotypeSet", "read_dataset", "read_vcf", "vcf_windows", "write_vcf"]
