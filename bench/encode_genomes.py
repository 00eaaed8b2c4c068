"""Benchmark biodl's one-hot encoder against tangermeme's on real genomes (issue 18, goal 4).

For every chromosome (FASTA record) of the genomes in ``<data-dir>/genomes_mcb185/`` (E. coli
K-12, and the first 1 % of each chromosome of A. thaliana, C. elegans and D. melanogaster),
the same string is encoded by :func:`biodl.encode.one_hot` and by
:func:`tangermeme.utils.one_hot_encode` in the same process. Without that directory under the
default data directory (``--data-dir`` not given) the bench falls back to the FASTA files bundled
under ``tests/data`` (4 kb, 20 kb and 100 kb records) plus seeded random sequences of 0.3 Mb and
4.6 Mb, and says so; a ``--data-dir`` given without the genomes stops the bench before any timing.

Timing: ``--repeats`` rounds; in each round every record is timed with both encoders, one
right after the other, in alternating order (so that background load hits both alike). A
sample is the mean of enough back-to-back calls to last ``--min-sample-ms`` (one call for the
large records). A round's ratio is tangermeme time / biodl time (> 1: biodl is faster),
summed over the records of a size class (< 10 kb, 10-100 kb, 0.1-1 Mb, >= 1 Mb) and over all
records; the tables give min / median / max of those ratios over the rounds. Outputs are
checked to be equal first.

Like is compared with like:

* the same output dtype (``float32`` and ``int8`` by default; tangermeme's own default is
  ``int8``);
* the same N convention: tangermeme writes an all-zero column for an ignored character, so
  biodl is called with ``n_value=0``;
* records with other IUPAC ambiguity codes (A. thaliana Chr2 has a few ``Y``, ``K``, ``S``)
  are encoded with ``iupac_as_n=True`` in biodl and with those letters added to tangermeme's
  ``ignore`` list, so both give all-zero columns there;
* lower-case (soft-masked) records are upper-cased first, since tangermeme's alphabet is
  case-sensitive (the genomes shipped here have none);
* one thread: torch (tangermeme's dtype cast) is set to ``--torch-threads`` 1; both encoding
  kernels (numba) are single-threaded.

biodl returns a C-contiguous ``(4, length)`` numpy array; tangermeme returns a ``(4, length)``
torch tensor that is a transposed view of a ``(length, 4)`` buffer. ``--tm-contiguous`` adds a
``.contiguous()`` so that both produce the same memory layout.

Usage (from the repository root)::

    nice -n 10 python bench/encode_genomes.py                  # ../shared/data by default
    python bench/encode_genomes.py --repeats 15 --dtypes float32 --per-record
    python bench/encode_genomes.py --json out.json             # rows for bench/headline.py

:func:`run` does the same from Python and returns the summary rows.
"""

from __future__ import annotations

import argparse
import gzip
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
from _rows import positive_float, positive_int, require_data, require_peer, row, writable_file, write_json  # noqa: E402

DEFAULT_DATA_DIR = "../shared/data"
GENOME_SUBDIR = "genomes_mcb185"
#: The genome FASTA files of GENOME_SUBDIR (a --data-dir given must hold them all).
GENOME_FILES = (
    "GCF_000005845.2_ASM584v2_genomic.fna.gz",
    "A.thaliana.fa.gz",
    "C.elegans.fa.gz",
    "D.melanogaster.fa.gz",
)
DATA_SOURCE = "bench/DATA.md (Sequences)"
FASTA_SUFFIXES = (".fa.gz", ".fna.gz", ".fasta.gz", ".fa", ".fna", ".fasta")
STANDARD = set("ACGTN")
DTYPES = ("float32", "int8")
# Issue 18, goal 4: >= 1.5x tangermeme at every record size in float32, >= parity in int8.
TARGETS = {"float32": 1.5, "int8": 1.0}
SIZE_CLASSES = (
    ("< 10 kb", 0, 10_000),
    ("10-100 kb", 10_000, 100_000),
    ("0.1-1 Mb", 100_000, 1_000_000),
    (">= 1 Mb", 1_000_000, math.inf),
)
# Stand-ins when <data-dir>/genomes_mcb185 is missing: bundled FASTA, then random sequences.
BUNDLED_FASTA = (
    "tests/data/interpret/ecoli_4kb.fa",
    "tests/data/reads/genomes/*.fna.gz",
    "tests/data/genome_windows/ecoli_k12_first100kb.fna.gz",
)
RANDOM_LENGTHS = (300_000, 4_600_000)


@dataclass
class Record:
    name: str
    seq: str
    extra: set[str] = field(default_factory=set)  # IUPAC letters other than ACGTN

    @property
    def size_class(self) -> str:
        return next(name for name, lo, hi in SIZE_CLASSES if lo <= len(self.seq) < hi)


def resolve_data_dir(arg: str | Path | None) -> tuple[Path | None, list[Path]]:
    """Find the data directory: as given (relative to the working directory), then relative
    to the repository this script lives in.

    Returns
    -------
    tuple
        The directory found (or ``None``) and every path tried, in order.
    """
    given = Path(arg or DEFAULT_DATA_DIR).expanduser()
    candidates = [given] if given.is_absolute() else [Path.cwd() / given, REPO_ROOT / given]
    tried: list[Path] = []
    for cand in candidates:
        cand = cand.resolve()
        if cand in tried:
            continue
        tried.append(cand)
        if (cand / GENOME_SUBDIR).is_dir():
            return cand, tried
    return None, tried


def require_genomes(arg: str | Path) -> Path:
    """The data directory of a ``--data-dir`` given on the command line (found as
    :func:`resolve_data_dir` finds it), or exit with a message naming the genome files it lacks:
    a directory given by the user never falls back to the stand-ins."""
    found, tried = resolve_data_dir(arg)
    root = found or next((t for t in tried if t.is_dir()), tried[0])
    return require_data(
        "encode_genomes.py",
        root,
        [f"{GENOME_SUBDIR}/{f}" for f in GENOME_FILES],
        DATA_SOURCE,
        hint="the real genomes; leave --data-dir out to time the bundled stand-ins instead",
    )


def genome_files(genome_dir: Path) -> list[Path]:
    """Genome FASTA files of ``genome_dir`` (transcript sets are left out)."""
    return [
        p
        for p in sorted(genome_dir.iterdir())
        if p.is_file() and p.name.endswith(FASTA_SUFFIXES) and "transcript" not in p.name.lower()
    ]


def read_fasta(path: Path) -> Iterator[tuple[str, str]]:
    """Yield ``(name, sequence)`` for each record of a (gzipped) FASTA file."""
    opener = gzip.open if path.name.endswith(".gz") else open
    name: str | None = None
    chunks: list[str] = []
    with opener(path, "rt") as fh:
        for line in fh:
            if line.startswith(">"):
                if name is not None:
                    yield name, "".join(chunks)
                name = line[1:].split(maxsplit=1)[0] if line[1:].strip() else "(unnamed)"
                chunks = []
            elif name is not None:
                chunks.append(line.strip())
    if name is not None:
        yield name, "".join(chunks)


def species_label(path: Path) -> str:
    """Short label of a genome file (``GCF_000005845...`` is E. coli K-12)."""
    name = path.name
    for suffix in FASTA_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    if name.startswith("GCF_000005845"):
        return "E.coli"
    return name


def random_sequence(length: int, seed: int) -> str:
    """Seeded random ACGT sequence with an N run every 50 kb (as assembled genomes have)."""
    rng = np.random.default_rng(seed)
    codes = np.frombuffer(b"ACGT", dtype=np.uint8)[rng.integers(0, 4, length)]
    for start in range(25_000, length - 100, 50_000):
        codes[start : start + 100] = ord("N")
    return codes.tobytes().decode("ascii")


def _record(name: str, seq: str) -> Record:
    if seq != seq.upper():
        seq = seq.upper()
    return Record(name, seq, set(seq) - STANDARD)


def load_records(data_dir: str | Path | None = None, log: Callable[[str], None] = print) -> list[Record]:
    """The genomes of ``<data_dir>/genomes_mcb185``, or the bundled stand-ins (said in ``log``)."""
    found, tried = resolve_data_dir(data_dir)
    if found is not None:
        files = genome_files(found / GENOME_SUBDIR)
        records = [_record(f"{species_label(p)}:{n}", s) for p in files for n, s in read_fasta(p)]
        if records:
            log(f"data: {found / GENOME_SUBDIR}  ({len(files)} files, {len(records)} records)")
            return records
    log(
        f"data: no {GENOME_SUBDIR}/ with FASTA files under {', '.join(str(p) for p in tried)}; "
        "using the FASTA bundled under tests/data and random sequences of "
        + " and ".join(f"{n / 1e6:g} Mb" for n in RANDOM_LENGTHS)
        + " instead (pass --data-dir for the real genomes)"
    )
    records = []
    for pattern in BUNDLED_FASTA:
        for path in sorted(REPO_ROOT.glob(pattern)):
            label = path.name.split(".")[0]
            records += [_record(f"{label}:{n}", s) for n, s in read_fasta(path)]
    records += [
        _record(f"random:{n / 1e6:g}Mb", random_sequence(n, seed=i)) for i, n in enumerate(RANDOM_LENGTHS)
    ]
    return records


def _sample(fn: Callable[[], object], number: int) -> float:
    """Mean seconds of ``number`` back-to-back calls."""
    t0 = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - t0) / number


def _short(name: str, width: int) -> str:
    return name if len(name) <= width else name[: width - 3] + "..."


def _summary(values: list[float]) -> tuple[float, float, float]:
    return min(values), statistics.median(values), max(values)


def run(
    data_dir: str | Path | None = None,
    repeats: int = 7,
    dtypes: tuple[str, ...] | list[str] = DTYPES,
    *,
    torch_threads: int = 1,
    tm_contiguous: bool = False,
    min_sample_ms: float = 0.5,
    inner: int = 3,
    per_record: bool = False,
    log: Callable[[str], None] = print,
) -> list[dict]:
    """Time biodl's and tangermeme's one-hot encoders on every record; print the tables.

    Returns
    -------
    list[dict]
        Rows of ``bench/_rows.row``: for each dtype, the ratio tangermeme time / biodl time per
        size class and over all records (``min``/``median``/``max`` over the rounds, ``goal``
        ``"4"``, ``target`` ``">= 1.5"`` in float32 and ``">= 1"`` in int8), plus an ``agree``
        key (outputs equal on every record).

    Raises
    ------
    ImportError
        Without tangermeme (``pip install -e '.[bench]'``).
    """
    import tangermeme
    import torch
    from tangermeme.utils import one_hot_encode

    from biodl.encode import one_hot

    if repeats < 1 or inner < 1:
        raise ValueError("repeats and inner must be at least 1")
    bad = [d for d in dtypes if d not in DTYPES]
    if bad or not dtypes:
        raise ValueError(f"dtypes must be a non-empty subset of {DTYPES}, got {list(dtypes)}")
    torch.set_num_threads(torch_threads)
    torch_dtypes = {"float32": torch.float32, "int8": torch.int8}

    records = load_records(data_dir, log=log)
    load0 = os.getloadavg()
    log(
        f"python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__}, "
        f"tangermeme {tangermeme.__version__}; torch threads {torch.get_num_threads()}, "
        f"cpu count {os.cpu_count()}, load average {load0[0]:.2f} at the start"
    )
    log(
        f"{repeats} interleaved rounds; in a round each record's time is the best of {inner} samples "
        f"taken in turn with the other encoder's, a sample the mean of back-to-back calls lasting >= "
        f"{min_sample_ms:g} ms; biodl: one_hot(seq, n_value=0, dtype=...) -> numpy (4, L) C-contiguous; "
        "tangermeme: one_hot_encode(seq, dtype=...) -> torch (4, L) "
        + ("made contiguous" if tm_contiguous else "transposed view of (L, 4)")
    )

    rows: list[dict] = []
    all_agree = True
    for dtype_name in dtypes:
        np_dtype = np.dtype(dtype_name)
        t_dtype = torch_dtypes[dtype_name]
        pairs = []
        for rec in records:
            iupac = bool(rec.extra)
            ignore = ["N", *sorted(rec.extra)]

            def run_biodl(seq=rec.seq, iupac=iupac, np_dtype=np_dtype):
                return one_hot(seq, n_value=0, dtype=np_dtype, iupac_as_n=iupac)

            def run_tm(seq=rec.seq, ignore=ignore, t_dtype=t_dtype):
                out = one_hot_encode(seq, dtype=t_dtype, ignore=ignore)
                return out.contiguous() if tm_contiguous else out

            a, b = run_biodl(), run_tm()  # also the warm-up (numba kernels load or compile here)
            agree = (
                a.shape == tuple(b.shape)
                and a.dtype == np_dtype
                and b.dtype == t_dtype
                and np.array_equal(a, b.numpy())
            )
            all_agree &= agree
            slowest = max(_sample(run_biodl, 1), _sample(run_tm, 1))
            number = max(1, math.ceil(min_sample_ms * 1e-3 / max(slowest, 1e-9)))
            pairs.append((rec, run_biodl, run_tm, number, agree))

        times_b = np.zeros((repeats, len(pairs)))
        times_t = np.zeros((repeats, len(pairs)))
        for r in range(repeats):
            for j, (_, run_biodl, run_tm, number, _) in enumerate(pairs):
                tb, tt = [], []
                for k in range(inner):
                    if (r + j + k) % 2:
                        tt.append(_sample(run_tm, number))
                        tb.append(_sample(run_biodl, number))
                    else:
                        tb.append(_sample(run_biodl, number))
                        tt.append(_sample(run_tm, number))
                times_b[r, j], times_t[r, j] = min(tb), min(tt)

        log("")
        log(f"dtype: biodl numpy.{dtype_name}  vs  tangermeme torch.{dtype_name}  (ratio > 1: biodl faster)")
        if per_record:
            width = min(32, max(len(p[0].name) for p in pairs))
            header = (
                f"{'record':<{width}} {'length':>10} {'biodl ms':>9} {'tm ms':>9}  "
                f"{'ratio min / median / max':>24}  agree  note"
            )
            log(header)
            log("-" * len(header))
            for j, (rec, *_, agree) in enumerate(pairs):
                lo, med, hi = _summary(list(times_t[:, j] / times_b[:, j]))
                note = f"IUPAC {''.join(sorted(rec.extra))} as N" if rec.extra else ""
                ms_b, ms_t = np.median(times_b[:, j]) * 1e3, np.median(times_t[:, j]) * 1e3
                log(
                    f"{_short(rec.name, width):<{width}} {len(rec.seq):>10,} {ms_b:>9.4f} "
                    f"{ms_t:>9.4f}  {lo:>6.2f} / {med:>5.2f} / {hi:>5.2f}      "
                    f"{'yes' if agree else 'NO':<5}  {note}"
                )
            log("")
        header = (
            f"{'size class':<10} {'records':>7} {'bases':>11} {'biodl ms':>9} {'tm ms':>9}  "
            f"{'ratio min / median / max':>24}  {'goal':>6}"
        )
        log(header)
        log("-" * len(header))
        target = TARGETS[dtype_name]
        groups = [
            (name, [j for j, p in enumerate(pairs) if p[0].size_class == name]) for name, *_ in SIZE_CLASSES
        ]
        groups.append(("all", list(range(len(pairs)))))
        for name, idx in groups:
            if not idx:
                continue
            per_round = list(times_t[:, idx].sum(axis=1) / times_b[:, idx].sum(axis=1))
            lo, med, hi = _summary(per_round)
            bases = sum(len(pairs[j][0].seq) for j in idx)
            ms_b = np.median(times_b[:, idx].sum(axis=1)) * 1e3
            ms_t = np.median(times_t[:, idx].sum(axis=1)) * 1e3
            log(
                f"{name:<10} {len(idx):>7} {bases:>11,} {ms_b:>9.3f} {ms_t:>9.3f}  "
                f"{lo:>6.2f} / {med:>5.2f} / {hi:>5.2f}  {'>= ' + format(target, 'g'):>6}"
            )
            label = "all records" if name == "all" else f"{name} records"
            r_ = row(
                f"one-hot {dtype_name}, {label}: tangermeme time / biodl time",
                per_round,
                goal="4",
                target=f">= {target:g}",
                note=f"{len(idx)} record{'s' if len(idx) != 1 else ''}, {bases:,} bases",
            )
            r_["agree"] = bool(all(pairs[j][4] for j in idx))
            rows.append(r_)
    load1 = os.getloadavg()
    log("")
    log(
        "ratio = tangermeme time / biodl time, per round summed over the class's records; "
        f"load average {load1[0]:.2f} at the end (cpu count {os.cpu_count()})"
    )
    if not all_agree:
        log("error: the two encoders disagree on at least one record")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-dir",
        default=None,
        help=f"directory holding {GENOME_SUBDIR}/ (default {DEFAULT_DATA_DIR}, tried relative to the "
        "working directory, then to the repository root; bundled stand-ins when the default lacks it; "
        "a --data-dir given must hold the genomes)",
    )
    parser.add_argument("--repeats", type=int, default=7, help="interleaved rounds (default 7)")
    parser.add_argument(
        "--dtypes",
        default=",".join(DTYPES),
        help=f"comma-separated output dtypes (default {','.join(DTYPES)})",
    )
    parser.add_argument(
        "--torch-threads",
        type=positive_int,
        default=1,
        help="torch intra-op threads (tangermeme's dtype cast runs in torch); default 1, so that both "
        "encoders use one core",
    )
    parser.add_argument(
        "--tm-contiguous",
        action="store_true",
        help="time tangermeme's output made C-contiguous, the layout biodl returns",
    )
    parser.add_argument(
        "--min-sample-ms",
        type=positive_float,
        default=0.5,
        help="a sample repeats the call until it lasts this long (default 0.5 ms)",
    )
    parser.add_argument(
        "--inner",
        type=int,
        default=3,
        help="samples per record, encoder and round, taken in turn; the best is the round's time "
        "(default 3: a sample hit by another process's time slice does not decide a round)",
    )
    parser.add_argument("--per-record", action="store_true", help="also print a line per record")
    parser.add_argument(
        "--json", type=writable_file, default=None, help="also write the rows here (for bench/headline.py)"
    )
    args = parser.parse_args(argv)

    dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    if args.repeats < 1 or args.inner < 1:
        print("error: --repeats and --inner must be at least 1", file=sys.stderr)
        return 2
    if not dtypes or any(d not in DTYPES for d in dtypes):
        print(f"error: --dtypes must be a subset of {','.join(DTYPES)}, got {args.dtypes!r}", file=sys.stderr)
        return 2
    # a --data-dir given: its genomes or a clear stop; left out: the default, else the stand-ins
    data_dir = require_genomes(args.data_dir) if args.data_dir is not None else None
    require_peer("tangermeme")
    rows = run(
        data_dir,
        args.repeats,
        dtypes,
        torch_threads=args.torch_threads,
        tm_contiguous=args.tm_contiguous,
        min_sample_ms=args.min_sample_ms,
        inner=args.inner,
        per_record=args.per_record,
    )
    write_json(args.json, rows)
    return 0 if all(r["agree"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
