"""Benchmark biodl's one-hot encoder against tangermeme's on real genomes.

For every chromosome (FASTA record) of the genomes in ``<data-dir>/genomes_mcb185/`` (E. coli
K-12, and the first 1 % of each chromosome of A. thaliana, C. elegans and D. melanogaster),
the same string is encoded by :func:`biodl.encode.one_hot` and by
:func:`tangermeme.utils.one_hot_encode`, in the same process, best of ``--repeats`` runs
each (the two are interleaved so that background load hits both alike). The outputs are
checked to be equal and a table is printed: record, length, seconds of each, and the ratio
tangermeme / biodl (> 1 means biodl is faster).

Like is compared with like:

* the same output dtype (``float32`` and ``int8`` by default; tangermeme's own default is
  ``int8``);
* the same N convention: tangermeme writes an all-zero column for an ignored character, so
  biodl is called with ``n_value=0``;
* records with other IUPAC ambiguity codes (A. thaliana has a few ``Y``, ``K``, ``S``) are
  encoded with ``iupac_as_n=True`` in biodl and with those letters added to tangermeme's
  ``ignore`` list, so both give all-zero columns there;
* lower-case (soft-masked) records are upper-cased first, since tangermeme's alphabet is
  case-sensitive (the genomes shipped here have none).

biodl returns a C-contiguous ``(4, length)`` numpy array; tangermeme returns a
``(4, length)`` torch tensor that is a transposed view of a ``(length, 4)`` buffer. The
time of tangermeme is that of its own call as documented; ``--tm-contiguous`` adds a
``.contiguous()`` so that both produce the same memory layout.

Usage (from the repository root)::

    python bench/encode_genomes.py                      # ../shared/data by default
    python bench/encode_genomes.py --data-dir /path/to/data --repeats 7 --dtypes float32
"""

from __future__ import annotations

import argparse
import gzip
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = "../shared/data"
GENOME_SUBDIR = "genomes_mcb185"
FASTA_SUFFIXES = (".fa.gz", ".fna.gz", ".fasta.gz", ".fa", ".fna", ".fasta")
STANDARD = set("ACGTN")
DTYPES = ("float32", "int8")


def resolve_data_dir(arg: str) -> tuple[Path | None, list[Path]]:
    """Find the data directory: as given (relative to the working directory), then relative
    to the repository this script lives in.

    Returns
    -------
    tuple
        The directory found (or ``None``) and every path tried, in order.
    """
    given = Path(arg).expanduser()
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


def genome_files(genome_dir: Path) -> list[Path]:
    """Genome FASTA files of ``genome_dir`` (transcript sets are left out)."""
    files = [
        p
        for p in sorted(genome_dir.iterdir())
        if p.is_file() and p.name.endswith(FASTA_SUFFIXES) and "transcript" not in p.name.lower()
    ]
    return files


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


def best_of(fns: list[Callable[[], object]], repeats: int) -> list[float]:
    """Best wall time of each function over ``repeats`` interleaved runs (after one warm-up).

    Returns
    -------
    list[float]
        Seconds, one per function.
    """
    for fn in fns:
        fn()
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - t0)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-dir",
        default=DEFAULT_DATA_DIR,
        help=f"directory holding {GENOME_SUBDIR}/ (default {DEFAULT_DATA_DIR}, tried relative to the "
        "working directory, then to the repository root)",
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per encoder; the best is kept")
    parser.add_argument(
        "--dtypes",
        default=",".join(DTYPES),
        help=f"comma-separated output dtypes (default {','.join(DTYPES)})",
    )
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="torch intra-op threads (tangermeme's dtype cast runs in torch); default 1, so that both "
        "encoders use one core",
    )
    parser.add_argument(
        "--tm-contiguous",
        action="store_true",
        help="time tangermeme's output made C-contiguous, the layout biodl returns",
    )
    args = parser.parse_args(argv)

    if args.repeats < 1:
        print("error: --repeats must be at least 1", file=sys.stderr)
        return 2
    dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    bad = [d for d in dtypes if d not in DTYPES]
    if bad or not dtypes:
        print(f"error: --dtypes must be a subset of {','.join(DTYPES)}, got {args.dtypes!r}", file=sys.stderr)
        return 2

    data_dir, tried = resolve_data_dir(args.data_dir)
    if data_dir is None:
        print(
            f"error: cannot find {GENOME_SUBDIR}/ for --data-dir {args.data_dir!r}; tried:", file=sys.stderr
        )
        for p in tried:
            state = "exists, but has no " + GENOME_SUBDIR + "/" if p.is_dir() else "does not exist"
            print(f"  {p / GENOME_SUBDIR}  ({state})", file=sys.stderr)
        print("Pass --data-dir pointing at the directory that contains genomes_mcb185/.", file=sys.stderr)
        return 1
    genome_dir = data_dir / GENOME_SUBDIR
    files = genome_files(genome_dir)
    if not files:
        print(f"error: no genome FASTA files ({', '.join(FASTA_SUFFIXES)}) in {genome_dir}", file=sys.stderr)
        return 1

    try:
        import torch
        from tangermeme.utils import one_hot_encode
    except ImportError as exc:
        print(f"error: tangermeme (and torch) are needed for this benchmark: {exc}", file=sys.stderr)
        print("Install the bench extra: pip install -e '.[bench]'", file=sys.stderr)
        return 1
    import tangermeme

    from biodl.encode import one_hot

    torch.set_num_threads(args.torch_threads)
    torch_dtypes = {"float32": torch.float32, "int8": torch.int8}

    records: list[tuple[str, str, set[str]]] = []
    for path in files:
        label = species_label(path)
        for name, seq in read_fasta(path):
            if seq != seq.upper():
                seq = seq.upper()
            records.append((f"{label}:{name}", seq, set(seq) - STANDARD))

    print(f"data: {genome_dir}  ({len(files)} files, {len(records)} records)")
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__}, "
        f"tangermeme {tangermeme.__version__}; torch threads {torch.get_num_threads()}, "
        f"cpu count {os.cpu_count()}"
    )
    print(
        f"best of {args.repeats} interleaved runs each (after one warm-up); "
        "biodl: one_hot(seq, n_value=0, dtype=...) -> numpy (4, L) C-contiguous; "
        "tangermeme: one_hot_encode(seq, dtype=...) -> torch (4, L) "
        + ("made contiguous" if args.tm_contiguous else "transposed view of (L, 4)")
    )

    exit_code = 0
    for dtype_name in dtypes:
        np_dtype = np.dtype(dtype_name)
        t_dtype = torch_dtypes[dtype_name]
        print()
        print(f"dtype: biodl numpy.{dtype_name}  vs  tangermeme torch.{dtype_name}")
        header = (
            f"{'record':<20} {'length':>10} {'biodl ms':>9} {'tangermeme ms':>13} {'ratio':>6}  agree  note"
        )
        print(header)
        print("-" * len(header))
        tot_len, tot_b, tot_t, all_agree = 0, 0.0, 0.0, True
        for rec_name, seq, extra in records:
            iupac = bool(extra)
            ignore = ["N", *sorted(extra)]

            def run_biodl(seq=seq, iupac=iupac, np_dtype=np_dtype):
                return one_hot(seq, n_value=0, dtype=np_dtype, iupac_as_n=iupac)

            def run_tm(seq=seq, ignore=ignore, t_dtype=t_dtype):
                out = one_hot_encode(seq, dtype=t_dtype, ignore=ignore)
                return out.contiguous() if args.tm_contiguous else out

            a, b = run_biodl(), run_tm()
            agree = (
                a.shape == tuple(b.shape)
                and a.dtype == np_dtype
                and b.dtype == t_dtype
                and np.array_equal(a, b.numpy())
            )
            all_agree &= agree
            tb, tt = best_of([run_biodl, run_tm], args.repeats)
            tot_len += len(seq)
            tot_b += tb
            tot_t += tt
            note = f"IUPAC {''.join(sorted(extra))} as N" if iupac else ""
            print(
                f"{rec_name:<20} {len(seq):>10,} {tb * 1e3:>9.3f} {tt * 1e3:>13.3f} {tt / tb:>6.2f}  "
                f"{'yes' if agree else 'NO':<5}  {note}"
            )
        print("-" * len(header))
        print(
            f"{'total':<20} {tot_len:>10,} {tot_b * 1e3:>9.3f} {tot_t * 1e3:>13.3f} {tot_t / tot_b:>6.2f}  "
            f"{'yes' if all_agree else 'NO':<5}"
        )
        if not all_agree:
            exit_code = 1
            print("error: the two encoders disagree on at least one record", file=sys.stderr)
    print()
    print("ratio = tangermeme time / biodl time; > 1 means biodl is faster. total = sum of the best times.")
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
