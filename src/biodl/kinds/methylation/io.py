"""CpG methylation calls and annotations.

Formats (plain or gzip, detected from the content, not the name -- DeepCpG's own call files are
called ``*.bed`` but are not BED):

* DeepCpG call table: ``chrom  pos  value``, tab- or space-separated, ``pos`` 1-based, ``value``
  a methylation level or a binary call in [0, 1]; an optional header line.
* Bismark coverage (``.cov``): ``chrom  start  end  percent  count_methylated  count_unmethylated``,
  1-based, ``end == start`` (``end == start + 1`` for ``coverage2cytosine --merge_CpG``: then the
  file name must end in ``.cov``); the level is ``count_methylated / (count_methylated +
  count_unmethylated)``.
* bedGraph: ``chrom  start0  end  value`` (``track`` / ``browser`` lines skipped); the site is
  ``start0 + 1``. Bismark writes percentages there: give ``levels="percent"``.
* bedGraph with counts (MethylDackel's default): ``chrom  start0  end  percent  count_methylated
  count_unmethylated``, 0-based start, ``end > start``; told apart from a Bismark ``.cov`` by its
  coordinates: ``end == start`` is a ``.cov``; ``end == start + 1`` is a bedGraph when the file has
  a ``track`` line or a bedGraph name (``.bedGraph``, ``.bg``, ``.bdg``), a ``.cov`` when it is
  named ``*.cov``, and refused as ambiguous otherwise; wider intervals are bedGraph. The level is
  computed from the counts as for ``.cov``. Column 4 is checked against the counts: counts that
  look swapped (column 4 is 100 minus their level on every line) are refused; other
  disagreements are a warning naming the first line.

* Bismark cytosine report: ``chrom  pos  strand  count_methylated  count_unmethylated  context
  trinucleotide`` (1-based; CG context only, sites without reads dropped), and ENCODE bedMethyl:
  ``chrom  start0  end  name  score  strand  thickStart  thickEnd  rgb  coverage  percent``. With
  their strands, each CpG's two strands are merged into one site at the + strand C, counts
  summed. Files without strands where many sites are 1 bp apart (unmerged strands) are warned
  about (:func:`_say_unmerged_strands`).

Five-field lines (a bedGraph with a coverage column, say) are refused, naming the accepted
layouts. :func:`read_sites` reads the positions of any of these files (values ignored; a
``chrom  pos`` table, or a BED of the CpGs' Cs or dinucleotides, is enough).

Several profiles (cells or samples) are given as a *sample table*: a CSV / TSV whose header
has a ``file`` column (paths relative to the table) and optionally ``name``.

Chromosome names ``chr18`` and ``18`` are the same chromosome (annotation BED files and call
files often differ); outputs keep each input's own spelling. Every problem -- a short line, a
non-integer position, a value outside [0, 1] (0-100 with ``levels="percent"``), positions not
sorted within a chromosome, a site given twice, a chromosome split over non-adjacent blocks, an
end that does not fit the format -- is one
:class:`~biodl.errors.BiodlInputError` naming the file and the line.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from biodl.errors import BiodlInputError
from biodl.io._util import check_file, input_errors, open_text, parses_as_number

LEVELS = ("fraction", "percent")
_FILE_COLUMNS = ("file", "path", "filename", "file_name")


def chrom_key(name: str) -> str:
    """The chromosome name biodl compares: without a leading ``chr`` (any case)."""
    s = str(name).strip()
    return s[3:] if s[:3].lower() == "chr" and len(s) > 3 else s


@dataclass
class CpGProfile:
    """The CpG calls of one cell or sample: per chromosome (key from :func:`chrom_key`), sorted
    1-based positions (int64) and levels in [0, 1] (float32)."""

    name: str
    positions: dict[str, np.ndarray]
    values: dict[str, np.ndarray]
    source: str
    spelling: dict[str, str] = field(default_factory=dict)  # chrom key -> the file's own name

    @property
    def chroms(self) -> list[str]:
        return list(self.positions)

    @property
    def n_sites(self) -> int:
        return int(sum(len(p) for p in self.positions.values()))

    def subset(self, chroms) -> CpGProfile:
        keep = [c for c in self.positions if c in set(chroms)]
        return CpGProfile(
            self.name,
            {c: self.positions[c] for c in keep},
            {c: self.values[c] for c in keep},
            self.source,
            {c: self.spelling.get(c, c) for c in keep},
        )


_SKIP = ("#", "track", "browser")
_BEDGRAPH_NAMES = (".bedgraph", ".bg", ".bdg")


def _stem_suffixes(p: Path) -> list[str]:
    """The lower-case suffixes of ``p``'s name without a trailing ``.gz``."""
    sx = [x.lower() for x in p.suffixes]
    return sx[:-1] if sx and sx[-1] in (".gz", ".bgz") else sx


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def _sniff(p: Path) -> tuple[str, list[str], int]:
    """``(format, first data fields, its line number)`` of a call file, from its first data line
    (and its track line and name where the coordinates alone cannot tell):

    * 6+ fields: ``cov`` (Bismark, 1-based, ``end == start``) or ``bedgraph6`` (a bedGraph with
      counts, MethylDackel's default: 0-based start, ``end > start``; see the module docstring);
    * 4: ``bedgraph``; 3 (or 2): ``calls``; 5 fields are refused.
    """
    track = False
    with open_text(p) as fh:
        for i, line in enumerate(fh, start=1):
            if line.startswith("track"):
                track = True
            if not line.strip() or line.startswith(_SKIP):
                continue
            f = line.split()
            if len(f) == 5:
                raise BiodlInputError(
                    "this line has 5 fields, a layout biodl does not read (a bedGraph with a coverage "
                    "column?); give one of: "
                    + "; ".join(f"{k} ({v})" for k, v in _ACCEPTED.items())
                    + " (e.g. cut -f1-4 keeps a bedGraph's value column)",
                    path=p,
                    record=i,
                )
            if len(f) >= 7 and f[2] in ("+", "-"):
                return "cpg_report", f, i  # Bismark's (genome-wide) cytosine report
            if len(f) >= 11 and f[5] in ("+", "-", ".") and _int(f[1]) is not None and _int(f[9]) is not None:
                return "bedmethyl", f, i  # ENCODE's WGBS bedMethyl
            if len(f) >= 6:
                start, end = _int(f[1]), _int(f[2])
                if start is None or end is None:
                    raise BiodlInputError(
                        f"a 6-field line (Bismark .cov or bedGraph with counts) needs integer start and "
                        f"end (columns 2 and 3), got {f[1]!r}, {f[2]!r}",
                        path=p,
                        record=i,
                    )
                sx = _stem_suffixes(p)
                if end == start:
                    if track:
                        raise BiodlInputError(
                            "the file has a bedGraph track line but end == start (a Bismark .cov "
                            "coordinate; a bedGraph interval is 0-based, end > start): remove the track "
                            "line of a .cov, or fix the coordinates",
                            path=p,
                            record=i,
                        )
                    return "cov", f, i
                if end == start + 1:
                    if track or any(x in _BEDGRAPH_NAMES for x in sx):
                        return "bedgraph6", f, i
                    if ".cov" in sx:
                        return "cov", f, i  # coverage2cytosine --merge_CpG: the CpG's two Cs, 1-based
                    raise BiodlInputError(
                        f"cannot tell a Bismark .cov (1-based, site {start}) from a bedGraph with counts "
                        f"(0-based start, site {end}): end == start + 1 fits both. Add a 'track "
                        "type=bedGraph' line or name the file *.bedGraph for a bedGraph (MethylDackel), "
                        "name it *.cov for a Bismark coverage file",
                        path=p,
                        record=i,
                    )
                if end > start:
                    return "bedgraph6", f, i
                raise BiodlInputError(
                    f"end ({end}) is before start ({start}): neither a Bismark .cov (end == start) nor "
                    "a bedGraph (end > start)",
                    path=p,
                    record=i,
                )
            if len(f) == 4:
                return "bedgraph", f, i
            return "calls", f, i
    raise BiodlInputError("the file is empty: no CpG calls", path=p)


#: Names of a call table's chromosome and position columns: a first line whose position field is
#: not a number is a header only when it names them; any other line is data, and is checked.
_CHROM_NAMES = frozenset({"chr", "chrom", "chromo", "chromosome", "seqname", "seqnames", "seqid", "contig"})
_POS_NAMES = frozenset(
    {"pos", "position", "pos1", "start", "loc", "locus", "location", "site", "coord", "coordinate", "bp"}
)


def _is_header(fields: list[str]) -> bool:
    """Whether the first line of a call table (its ``fields``) is a header: its position field
    is not a number and it names a chromosome or position column (``chrom pos value``). A line
    with a bad position or value (``18 abc 0.5``, ``18 -5 1``) is data, refused with its line."""
    if len(fields) < 2 or parses_as_number(fields[1]):
        return False
    norm = [f.strip().lower().lstrip("#").strip("\"'") for f in fields[:2]]
    return norm[0] in _CHROM_NAMES or norm[1] in _POS_NAMES


def _first_bad(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def read_calls(path: str | Path, name: str | None = None, levels: str = "fraction") -> CpGProfile:
    """One profile from a call file (DeepCpG table, Bismark ``.cov`` or bedGraph, with or without
    counts).

    Parameters
    ----------
    path
        The call file.
    name
        Profile name (default: the file name without its extensions).
    levels
        bedGraph / call-table values as ``fraction`` (0-1) or ``percent`` (0-100).

    Raises
    ------
    BiodlInputError
        See the module docstring.
    """
    return _read(path, name, levels, positions_only=False)


def read_sites(path: str | Path) -> CpGProfile:
    """The sites of a call file, its values ignored (returned as NaN): any format of
    :func:`read_calls`, or a ``chrom  pos`` table (1-based; an optional header line)."""
    return _read(path, None, "fraction", positions_only=True)


def _read(path: str | Path, name: str | None, levels: str, positions_only: bool) -> CpGProfile:
    p = check_file(path)
    if levels not in LEVELS:
        raise BiodlInputError(f"levels must be one of {', '.join(LEVELS)}, got {levels!r}")
    fmt, first, _ = _sniff(p)
    if fmt in ("cpg_report", "bedmethyl"):
        return _read_stranded(p, fmt, name, positions_only)
    ncol = {"cov": 6, "bedgraph6": 6, "bedgraph": 4, "calls": 3}[fmt]
    if fmt == "calls" and positions_only:
        ncol = 2
    bed = False  # a sites file that is a BED (chrom start0 end)
    lines, keep = _data_lines(p)
    if not keep:
        raise BiodlInputError("the file is empty: no CpG calls", path=p)
    if fmt == "calls":
        f0 = lines[keep[0]].split()
        if _is_header(f0):
            keep = keep[1:]  # a header line, e.g. "chromo pos value"
            if not keep:
                raise BiodlInputError("the file has a header line but no CpG calls", path=p)
        f0 = lines[keep[0]].split()
        if (
            positions_only
            and len(f0) >= 3
            and f0[1].isdigit()
            and f0[2].isdigit()
            and int(f0[2]) > int(f0[1])
        ):
            # a BED of sites (an integer end past the start; a value is in [0, 1] or a percentage):
            # the C (1 bp) or the CpG dinucleotide (2 bp), 0-based start; the site is start + 1
            bed, ncol = True, 3
    df = _fields(p, lines, keep, list(range(ncol)), ncol, fmt, "chrom, pos" if ncol == 2 else _LAYOUT[fmt])
    line_no = np.asarray(keep, dtype=np.int64) + 1
    pos = pd.to_numeric(df[1], errors="coerce").to_numpy()
    with np.errstate(invalid="ignore"):  # (NaN, inf: named below)
        bad = ~np.isfinite(pos) | (pos != np.round(pos)) | (np.abs(pos) > 2**53)
    if bad.any():
        k = _first_bad(bad)
        hint = (
            " (a header line must name its columns, e.g. chrom pos value)"
            if fmt == "calls" and k == 0 and not parses_as_number(df[1].iloc[k])
            else ""
        )
        raise BiodlInputError(
            f"the position (column 2) must be an integer, got {df[1].iloc[k]!r}{hint}",
            path=p,
            record=int(line_no[k]),
        )
    pos = pos.astype(np.int64)
    if fmt in ("cov", "bedgraph", "bedgraph6"):
        _check_ends(p, fmt, df, pos, line_no)
    if bed:
        end = pd.to_numeric(df[2], errors="coerce").to_numpy()
        with np.errstate(invalid="ignore"):
            bad = ~np.isin(end - pos, (1, 2))
        if bad.any():
            k = _first_bad(bad)
            raise BiodlInputError(
                f"a BED of CpG sites has intervals of the C (1 bp) or of the CpG (2 bp), 0-based start; "
                f"this one is {df[1].iloc[k]}-{df[2].iloc[k]}: give one line per CpG",
                path=p,
                record=int(line_no[k]),
            )
    if bed or fmt in ("bedgraph", "bedgraph6"):
        pos = pos + 1  # 0-based start -> 1-based site (of a sites BED: the CpG's C)
    if positions_only:
        val = np.full(len(pos), np.nan)
    elif fmt in ("cov", "bedgraph6"):
        m = pd.to_numeric(df[4], errors="coerce").to_numpy()
        u = pd.to_numeric(df[5], errors="coerce").to_numpy()
        bad = ~np.isfinite(m) | ~np.isfinite(u) | (m < 0) | (u < 0) | (m + u <= 0)
        if bad.any():
            k = _first_bad(bad)
            raise BiodlInputError(
                f"counts (columns 5 and 6) must be non-negative with a positive sum, got "
                f"{df[4].iloc[k]!r}, {df[5].iloc[k]!r}",
                path=p,
                record=int(line_no[k]),
            )
        val = m / (m + u)
        _check_percent(p, df[3], val, line_no)
    else:
        col = 3 if fmt == "bedgraph" else 2
        val = pd.to_numeric(df[col], errors="coerce").to_numpy(np.float64)
        if levels == "percent":
            val = val / 100.0
        bad = ~np.isfinite(val) | (val < 0) | (val > 1)
        if bad.any():
            k = _first_bad(bad)
            hint = (
                " (percentages? give --set levels=percent)"
                if levels == "fraction" and np.nanmax(val[np.isfinite(val)], initial=0) <= 100
                else ""
            )
            rng = "[0, 100] (--set levels=percent)" if levels == "percent" else "[0, 1]"
            raise BiodlInputError(
                f"the methylation value must be a number in {rng}, got {df[col].iloc[k]!r}{hint}",
                path=p,
                record=int(line_no[k]),
            )
    return _profile(p, name, df[0].astype(str).to_numpy(), pos, val, line_no)


def _profile(
    p: Path, name: str | None, chrom: np.ndarray, pos: np.ndarray, val: np.ndarray, line_no: np.ndarray
) -> CpGProfile:
    """The profile of a file's sites (``chrom``, 1-based ``pos``, level ``val``, ``line_no`` of
    each), checked: positions >= 1, each chromosome one block sorted by position, no site twice."""
    if (pos < 1).any():
        k = _first_bad(pos < 1)
        raise BiodlInputError(f"positions are 1-based, got {pos[k]}", path=p, record=int(line_no[k]))
    df = pd.DataFrame({0: chrom})
    keys = df[0].astype(str).map({u: chrom_key(u) for u in pd.unique(chrom)}).to_numpy(dtype=object)
    positions, values, spelling = {}, {}, {}
    # a chromosome's lines must form one block, sorted by position
    change = np.flatnonzero(keys[1:] != keys[:-1]) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [len(keys)]])
    for s, e in zip(starts, ends, strict=True):
        c = keys[s]
        if c in positions:
            raise BiodlInputError(
                f"chromosome {chrom[s]!r} appears again after other chromosomes: sort the file by "
                "chromosome and position (sort -k1,1 -k2,2n)",
                path=p,
                record=int(line_no[s]),
            )
        pp = pos[s:e]
        d = np.diff(pp)
        if (d < 0).any():
            k = s + 1 + _first_bad(d < 0)
            raise BiodlInputError(
                f"positions are not sorted within {chrom[s]} ({pos[k]} after {pos[k - 1]}): sort the "
                "file (sort -k1,1 -k2,2n)",
                path=p,
                record=int(line_no[k]),
            )
        if (d == 0).any():
            k = s + 1 + _first_bad(d == 0)
            raise BiodlInputError(
                f"site {chrom[s]}:{pos[k]} is given twice (also on line {line_no[k - 1]})",
                path=p,
                record=int(line_no[k]),
            )
        positions[c], values[c], spelling[c] = pp, val[s:e].astype(np.float32), chrom[s]
    _say_unmerged_strands(p, positions)
    nm = name or p.name.split(".")[0]
    return CpGProfile(nm, positions, values, str(p), spelling)


#: Share of sites with a site 1 bp after them above which a file is taken for one whose CpGs'
#: two strands are separate lines (two CpGs cannot be 1 bp apart).
UNMERGED_SHARE = 0.01


def _say_unmerged_strands(p: Path, positions: dict[str, np.ndarray]) -> None:
    """Warn when sites 1 bp apart are common: the two strands' Cs of each CpG on separate lines
    (Bismark's .cov / bedGraph without ``--merge_CpG``). A model would read each CpG's other
    strand as a neighbour 1 bp away (its own state, nearly: optimistic scores) and score each
    CpG twice; without strands in the file biodl cannot merge them itself."""
    n = sum(len(v) for v in positions.values())
    pairs = sum(int((np.diff(v) == 1).sum()) for v in positions.values())
    if n and pairs > UNMERGED_SHARE * n:
        from biodl.io._util import note

        note(
            f"[biodl] warning: {p}: {pairs} of {n} sites have a site 1 bp after them -- two CpGs cannot "
            "be 1 bp apart, so this file looks like one with each CpG's two strands on separate lines "
            "(Bismark without --merge_CpG): each CpG's other strand becomes a neighbour 1 bp away "
            "(scores look better than they are) and CpGs are counted twice. Merge the strands first "
            "(coverage2cytosine --merge_CpG), or give Bismark's CpG report (it has the strands: "
            "biodl merges them)"
        )


_MOD_CODES = frozenset("mhafgcoe")  # modkit's single-letter modification codes


def _five_mc_rows(p: Path, name: pd.Series) -> np.ndarray:
    """The 5mC rows of a bedMethyl: all of an ENCODE file (its name column is free text), the
    ``m`` rows of a modkit file that holds several modifications per site (5hmC's ``h`` rows
    would be summed with them as one site), said once."""
    codes = set(pd.unique(name))
    if len(codes) < 2 or not codes <= _MOD_CODES:
        return np.ones(len(name), bool)
    if "m" not in codes:
        raise BiodlInputError(
            f"this bedMethyl holds modification codes {', '.join(sorted(codes))} (modkit) but no 'm' "
            "(5-methylcytosine) rows",
            path=p,
        )
    from biodl.io._util import note

    note(
        f"[biodl] {p}: modifications {', '.join(sorted(codes))} (modkit codes): the 'm' (5mC) rows are "
        "read, the others left out"
    )
    return (name == "m").to_numpy()


def _data_lines(p: Path) -> tuple[list[str], list[int]]:
    """The lines of a call file and the indices of its data lines (comments, track lines and
    blank lines skipped)."""
    with input_errors(p), open_text(p) as fh:
        lines = fh.read().splitlines()
    return lines, [i for i, s in enumerate(lines) if s.strip() and not s.startswith(_SKIP)]


def _fields(
    p: Path, lines: list[str], keep: list[int], cols: list[int], need: int, fmt: str, layout: str
) -> pd.DataFrame:
    """Fields ``cols`` of the data lines ``keep`` of ``lines`` (a file of ``fmt``, whose lines
    have at least ``need`` fields laid out as ``layout``), as text columns ``0 ..``: pandas' C
    parser, and a line at a time where it cannot (a short line, named with its number)."""
    try:
        df = pd.read_csv(
            io.StringIO("\n".join(lines[i] for i in keep)),
            sep=r"\s+",
            header=None,
            dtype=str,
            keep_default_na=False,
            usecols=cols,
            engine="c",
        )
        df = df[cols]  # (usecols keeps the file's order)
        df.columns = range(len(cols))
        short = df.eq("").any(axis=1).to_numpy()
    except (pd.errors.ParserError, ValueError, KeyError):
        df, short = None, None
    if df is None or short.any() or len(df) != len(keep):
        rows = [lines[i].split() for i in keep]
        bad = [k for k, r in enumerate(rows) if len(r) < need]
        if bad:
            k = bad[0]
            sep = next((c for c in ",;" if len(rows[k]) == 1 and c in rows[k][0]), None)
            raise BiodlInputError(
                f"a {_NAMES[fmt]} line needs {need} fields ({layout}), found {len(rows[k])}"
                + (f" (fields are separated by tabs or spaces; this line uses {sep!r})" if sep else ""),
                path=p,
                record=keep[k] + 1,
            )
        df = pd.DataFrame([[r[c] for c in cols] for r in rows], columns=range(len(cols)))
    return df


def _read_stranded(p: Path, fmt: str, name: str | None, positions_only: bool) -> CpGProfile:
    """A Bismark cytosine report (``chrom pos strand count_methylated count_unmethylated context
    trinucleotide``, 1-based; CG context only, sites without reads dropped) or an ENCODE bedMethyl
    (``chrom start0 end name score strand thickStart thickEnd rgb coverage percent``): each CpG's
    two strands merged into one site at its C on the + strand (the - strand's C is 1 bp after it),
    counts summed, as ``coverage2cytosine --merge_CpG`` does."""
    # bedMethyl: its name column (5 here) is modkit's modification code (m: 5mC, h: 5hmC, ...)
    cols = [0, 1, 2, 3, 4, 5] if fmt == "cpg_report" else [0, 1, 5, 9, 10, 3]
    need = 7 if fmt == "cpg_report" else 11
    lines, keep_lines = _data_lines(p)
    df = _fields(p, lines, keep_lines, cols, need, fmt, _LAYOUT[fmt])
    line_no = np.asarray(keep_lines, dtype=np.int64) + 1
    nums = {c: pd.to_numeric(df[c], errors="coerce").to_numpy() for c in df.columns[[1, 3, 4]]}
    strand = df[2].to_numpy()
    if fmt == "cpg_report":
        what = ("position (column 2)", "count_methylated (column 4)", "count_unmethylated (column 5)")
    else:
        what = ("start (column 2)", "coverage (column 10)", "percent methylated (column 11)")
    for j, c in enumerate((1, 3, 4)):
        v = nums[c]
        whole = not (fmt == "bedmethyl" and c == 4)  # a percentage may have decimals
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(v) | (v < 0) | ((v != np.round(v)) if whole else (v > 100))
        if bad.any():
            k = _first_bad(bad)
            need = "a non-negative integer" if whole else "a number in [0, 100]"
            raise BiodlInputError(
                f"the {what[j]} must be {need}, got {df[c].iloc[k]!r}", path=p, record=int(line_no[k])
            )
    if fmt == "cpg_report":
        pos, m, u = nums[1], nums[3], nums[4]
        keep = (df[5] == "CG").to_numpy()  # CHG / CHH cytosines of a --CX report are not CpGs
    else:
        pos, cov = nums[1] + 1, nums[3]  # 0-based start -> 1-based C
        m = np.round(cov * nums[4] / 100.0)
        u = cov - m
        keep = _five_mc_rows(p, df[5])
    site = pos.astype(np.int64) - (strand == "-")  # the - strand's C is the CpG's G on the + strand
    if not positions_only:  # (a sites file: every CpG listed)
        keep &= (m + u) > 0  # a report lists every CpG of the genome, most without reads
    if not keep.any():
        raise BiodlInputError(
            f"no CpG with reads in this {_NAMES[fmt]}"
            + (" (no line of context CG)" if fmt == "cpg_report" and not (df[5] == "CG").any() else ""),
            path=p,
        )
    t = pd.DataFrame(
        {
            "chrom": df[0].to_numpy()[keep],
            "site": site[keep],
            "m": m[keep],
            "u": u[keep],
            "line": line_no[keep],
        }
    )
    order = {c: k for k, c in enumerate(pd.unique(t["chrom"]))}
    t["block"] = t["chrom"].map(order)
    merged = (
        t.groupby(["block", "site"], sort=True)
        .agg(chrom=("chrom", "first"), m=("m", "sum"), u=("u", "sum"), line=("line", "min"))
        .reset_index()
    )
    val = (
        np.full(len(merged), np.nan)
        if positions_only
        else (merged["m"] / (merged["m"] + merged["u"])).to_numpy(np.float64)
    )
    return _profile(
        p,
        name,
        merged["chrom"].astype(str).to_numpy(),
        merged["site"].to_numpy(np.int64),
        val,
        merged["line"].to_numpy(np.int64),
    )


_LAYOUT = {
    "cov": "chrom, start, end, percent, count_methylated, count_unmethylated",
    "bedgraph6": "chrom, start0, end, percent, count_methylated, count_unmethylated",
    "bedgraph": "chrom, start0, end, value",
    "calls": "chrom, pos, value",
    "cpg_report": "chrom, pos, strand, count_methylated, count_unmethylated, context, trinucleotide",
    "bedmethyl": "chrom, start0, end, name, score, strand, thickStart, thickEnd, rgb, coverage, percent",
}
_NAMES = {
    "cov": "Bismark .cov",
    "bedgraph6": "bedGraph-with-counts",
    "bedgraph": "bedGraph",
    "calls": "call-table",
    "cpg_report": "Bismark cytosine report",
    "bedmethyl": "bedMethyl",
}
_ACCEPTED = {
    "3 fields": "chrom pos value: DeepCpG table, 1-based",
    "4 fields": "chrom start0 end value: bedGraph",
    "6 fields": "chrom start end percent count_methylated count_unmethylated: Bismark .cov, or a "
    "bedGraph with counts (MethylDackel)",
    "7 fields": "chrom pos strand count_methylated count_unmethylated context trinucleotide: Bismark "
    "cytosine report",
    "11 fields": "chrom start0 end name score strand thickStart thickEnd rgb coverage percent: bedMethyl",
}


def _check_percent(p: Path, percent: pd.Series, level: np.ndarray, line_no: np.ndarray) -> None:
    """Column 4 of a ``.cov`` / bedGraph with counts against the level of its counts (columns 5
    and 6, which biodl uses). Counts in the other order (unmethylated first) would give every
    site ``1 - level`` without a word: refused when column 4 fits the swapped counts on every
    line and the written order on some line not. Other disagreements (a tool writing something
    else in column 4) are a warning naming the first line; within 1 percentage point (rounding),
    or column 4 as a fraction, agrees."""
    pct = pd.to_numeric(percent, errors="coerce").to_numpy(np.float64)
    known = np.isfinite(pct)
    if not known.any():
        return
    pct, lvl, lines = pct[known], level[known] * 100.0, line_no[known]
    tol = 1.0 + 1e-9
    fits = (np.abs(pct - lvl) <= tol) | (np.abs(pct * 100.0 - lvl) <= tol)
    if fits.all():
        return
    k = _first_bad(~fits)
    said = f"{percent.iloc[int(np.flatnonzero(known)[k])]!r}"
    if (np.abs(pct - (100.0 - lvl)) <= tol).all():
        raise BiodlInputError(
            f"the percentage in column 4 ({said}) is 100 minus the level of the counts "
            f"(columns 5 and 6 give {lvl[k]:.1f}%), on every line: the counts look swapped. Columns 5 "
            "and 6 are count_methylated, count_unmethylated (Bismark / MethylDackel order); reorder "
            "them, e.g. awk -v OFS='\\t' '{t=$5; $5=$6; $6=t; print}'",
            path=p,
            record=int(lines[k]),
        )
    from biodl.io._util import note

    note(
        f"[biodl] warning: {p}, line {int(lines[k])}: the percentage in column 4 ({said}) disagrees "
        f"with the counts in columns 5 and 6 ({lvl[k]:.1f}% methylated), on {int((~fits).sum()):,} of "
        f"{len(fits):,} line(s); biodl uses the counts (count_methylated, count_unmethylated)"
    )


def _check_ends(p: Path, fmt: str, df: pd.DataFrame, start: np.ndarray, line_no: np.ndarray) -> None:
    """Every line's end (column 3) must agree with the format: ``end == start`` (or ``start + 1``
    in a merged-CpG ``.cov``, as on its first line) in a Bismark ``.cov``, ``end > start`` in a
    bedGraph."""
    end = pd.to_numeric(df[2], errors="coerce").to_numpy()
    bad = ~np.isfinite(end) | (end != np.round(end))
    if bad.any():
        k = _first_bad(bad)
        raise BiodlInputError(
            f"the end (column 3) must be an integer, got {df[2].iloc[k]!r}", path=p, record=int(line_no[k])
        )
    width = end.astype(np.int64) - start
    if fmt == "cov":
        bad = width != width[0]
        want = "end == start" if width[0] == 0 else "end == start + 1 (a merged-CpG .cov, as on line 1)"
    else:
        bad = width < 1
        want = "end > start (a bedGraph interval, 0-based start)"
    if bad.any():
        k = _first_bad(bad)
        raise BiodlInputError(
            f"start {start[k]}, end {int(end[k])} do not fit the file's format ({_NAMES[fmt]}: {want}); "
            "is it a mix of formats?",
            path=p,
            record=int(line_no[k]),
        )


def _sample_table_sep(first: str) -> str:
    """The separator of a sample table, from its header line: a tab, else a comma (a table of
    one column has neither)."""
    return "\t" if "\t" in first else ","


def _is_sample_table(p: Path) -> bool:
    with open_text(p) as fh:
        first = fh.readline()
    if not first.strip():
        return False  # empty: read as a call file, which says so
    cells = [
        c.strip().lower()
        for c in next(csv.reader(io.StringIO(first), delimiter=_sample_table_sep(first)), [])
    ]
    return any(c in _FILE_COLUMNS for c in cells)


def read_profiles(path: str | Path, levels: str = "fraction") -> list[CpGProfile]:
    """Every profile of ``path``: a sample table (``file`` and optional ``name`` columns) or a
    single call file. Profile names must be unique."""
    p = check_file(path)
    if not _is_sample_table(p):
        return [read_calls(p, levels=levels)]
    with open_text(p) as fh:
        sep = _sample_table_sep(fh.readline())
    try:
        with input_errors(p), open_text(p) as fh:  # gzip and a byte-order mark as for call files
            t = pd.read_csv(fh, sep=sep, dtype=str, keep_default_na=False)
    except (ValueError, pd.errors.ParserError) as e:
        raise BiodlInputError(f"cannot read the sample table ({e})", path=p) from None
    from biodl.io._util import unshift_columns

    t = unshift_columns(t, p)  # a separator ending each data line shifted every column
    cols = {str(c).strip().lower(): c for c in t.columns}
    fcol = next((cols[c] for c in _FILE_COLUMNS if c in cols), None)
    if fcol is None:
        raise BiodlInputError(
            f"the sample table has no file column (columns: {', '.join(map(str, t.columns))})",
            path=p,
            record=1,
        )
    ncol = cols.get("name") or cols.get("cell") or cols.get("sample")
    if t.empty:
        raise BiodlInputError("the sample table lists no files", path=p)
    out = []
    for i, row in enumerate(t.to_dict("records"), start=2):
        f = str(row[fcol]).strip()
        if not f:
            raise BiodlInputError("empty file name", path=p, record=i)
        fp = Path(f) if Path(f).is_absolute() else p.parent / f
        if not fp.exists():
            raise BiodlInputError(f"listed file {f!r} not found (looked in {p.parent})", path=p, record=i)
        nm = str(row[ncol]).strip() if ncol else ""
        out.append(read_calls(fp, name=nm or None, levels=levels))
    names = [q.name for q in out]
    if len(set(names)) < len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        if ncol:
            fix = f"give each row its own name in column {ncol!r}; a row without one is named after its file"
        else:
            fix = "names come from the file names here: add a name column with a name per row"
        raise BiodlInputError(f"profile name(s) given twice: {', '.join(dup)} ({fix})", path=p)
    return out


@dataclass
class Annotation:
    """Intervals of one annotation (CGI, exons, ...): per chromosome key, sorted 0-based
    half-open starts and ends, merged so they do not overlap."""

    name: str
    starts: dict[str, np.ndarray]
    ends: dict[str, np.ndarray]

    def features(self, chrom: str, pos: np.ndarray) -> np.ndarray:
        """``(n, 2)``: inside the annotation (0/1) and ``log10(1 + distance)`` to the nearest
        interval (0 inside; 9 when the chromosome has none)."""
        s, e = self.starts.get(chrom), self.ends.get(chrom)
        out = np.zeros((len(pos), 2), dtype=np.float32)
        if s is None or not len(s):
            out[:, 1] = 9.0
            return out
        x = pos.astype(np.int64) - 1  # 0-based
        i = np.searchsorted(s, x, side="right") - 1  # interval starting at or before x
        inside = (i >= 0) & (x < e[np.clip(i, 0, None)])
        left = np.where(i >= 0, x - e[np.clip(i, 0, None)] + 1, np.iinfo(np.int64).max)
        j = np.clip(i + 1, 0, len(s) - 1)
        right = np.where(i + 1 < len(s), s[j] - x, np.iinfo(np.int64).max)
        d = np.where(inside, 0, np.minimum(left, right)).astype(np.float64)
        out[:, 0] = inside
        out[:, 1] = np.log10(1.0 + np.minimum(d, 1e9))
        return out


def read_annotation(path: str | Path, name: str | None = None) -> Annotation:
    """A BED file of intervals (chromosome names compared by :func:`chrom_key`)."""
    from biodl.io.bed import read_bed

    bed = read_bed(path)
    starts, ends = {}, {}
    for c, g in bed.groupby(bed["chrom"].map(chrom_key), sort=False):
        order = np.argsort(g["start"].to_numpy(), kind="stable")
        s, e = g["start"].to_numpy(np.int64)[order], g["end"].to_numpy(np.int64)[order]
        # merge overlaps
        ms, me = [s[0]], [e[0]]
        for a, b in zip(s[1:], e[1:], strict=True):
            if a <= me[-1]:
                me[-1] = max(me[-1], b)
            else:
                ms.append(a)
                me.append(b)
        starts[c], ends[c] = np.asarray(ms, np.int64), np.asarray(me, np.int64)
    return Annotation(name or Path(path).name.split(".")[0], starts, ends)


__all__ = [
    "Annotation",
    "CpGProfile",
    "chrom_key",
    "read_annotation",
    "read_calls",
    "read_profiles",
    "read_sites",
]
