"""BED intervals, and sequences cut from a genome FASTA for them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from biodl.encode import reverse_complement
from biodl.errors import BiodlInputError
from biodl.io._util import check_file, open_text

BED_COLUMNS = ["chrom", "start", "end", "name", "score", "strand"]


def read_bed(path: str | Path) -> pd.DataFrame:
    """Read a BED file (3 to 6+ columns; ``track``/``browser``/``#`` lines skipped).

    Returns
    -------
    pandas.DataFrame
        Columns ``chrom, start, end, name, score, strand, line`` (0-based half-open
        coordinates; ``line`` is the 1-based line in the file).

    Raises
    ------
    BiodlInputError
        Fewer than 3 columns, non-integer or negative coordinates, or ``end < start``
        (the line of the file is named). A zero-length interval (``start == end``: an
        insertion point between two bases) is valid BED and kept.
    """
    p = check_file(path)
    rows = []
    with open_text(p) as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip() or line.startswith(("#", "track", "browser")):
                continue
            f = line.rstrip("\r\n").split("\t")
            if len(f) < 3:
                f = line.split()
            if len(f) < 3:
                raise BiodlInputError(
                    "a BED line needs at least 3 columns (chrom, start, end)", path=p, record=lineno
                )
            try:
                start, end = int(f[1]), int(f[2])
            except ValueError:
                raise BiodlInputError(
                    f"start/end must be integers, got {f[1]!r}, {f[2]!r}", path=p, record=lineno
                ) from None
            if start < 0 or end < start:
                raise BiodlInputError(
                    f"bad interval {f[0]}:{start}-{end} (need 0 <= start <= end)", path=p, record=lineno
                )
            name = f[3] if len(f) > 3 else f"{f[0]}:{start}-{end}"
            score = f[4] if len(f) > 4 else "."
            strand = f[5] if len(f) > 5 else "."
            if strand not in ("+", "-", "."):
                raise BiodlInputError(f"strand must be +, - or ., got {strand!r}", path=p, record=lineno)
            rows.append((f[0], start, end, name, score, strand, lineno))
    if not rows:
        raise BiodlInputError("no intervals found", path=p)
    return pd.DataFrame(rows, columns=BED_COLUMNS + ["line"])


def cut_intervals(
    bed: pd.DataFrame, genome, bed_path: str | Path | None = None, genome_path: str | Path | None = None
) -> list[str]:
    """Cut the sequence of every interval from an open genome (see :func:`biodl.io.open_genome`),
    reverse-complemented on ``-`` strand.

    Raises
    ------
    BiodlInputError
        A chromosome not in the genome, or an interval past the chromosome end (the BED
        line is named).
    """
    seqs = []
    keys = set(genome.keys())
    for row in bed.itertuples(index=False):
        if row.chrom not in keys:
            raise BiodlInputError(
                f"chromosome {row.chrom!r} is not in the genome {genome_path or ''}".rstrip()
                + f" (it has: {', '.join(sorted(keys)[:5])}{', ...' if len(keys) > 5 else ''})",
                path=bed_path,
                record=int(row.line),
            )
        clen = len(genome[row.chrom])
        if row.end > clen:
            raise BiodlInputError(
                f"interval {row.chrom}:{row.start}-{row.end} runs past the end of {row.chrom} "
                f"(length {clen})",
                path=bed_path,
                record=int(row.line),
            )
        s = str(genome[row.chrom][row.start : row.end])
        seqs.append(reverse_complement(s) if row.strand == "-" else s)
    return seqs
