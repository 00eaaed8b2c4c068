"""Readers for expression matrices and gene sets.

Formats: AnnData ``.h5ad`` (cells x genes), PCL / TSV / CSV (plain or gzip; genes x samples
or samples x genes, chosen with ``orientation``), GCT 1.2 / 1.3 (genes x samples). Every
reader returns an :class:`ExpressionMatrix` with samples in rows and genes in columns, the
gene and sample identifiers kept as given.

Problems are reported as :class:`~biodl.errors.BiodlInputError` naming the file, the line
and the column: non-numeric cells, missing (NaN / empty) or infinite values, duplicate or
empty gene identifiers, ragged rows, and a matrix that looks transposed.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from biodl.errors import BiodlInputError
from biodl.io._util import F32_MAX, FLOAT_FORMAT, check_file, guess_separator, note, open_text

ORIENTATIONS = ("auto", "genes-x-samples", "samples-x-genes")

# identifiers that are clearly genes / probes ...
_GENE_PATTERNS = re.compile(
    r"^(?:"
    r"\d+(?:_[a-z]+)*_at"  # Affymetrix probe sets: 1007_s_at, 202954_at
    r"|AFFX-.+"  # Affymetrix controls
    r"|ENS[A-Z]*[GT]\d{6,}(?:\.\d+)?"  # Ensembl genes / transcripts
    r"|PA\d{4}(?:\.\d)?|PA14_\d{5}"  # P. aeruginosa locus tags
    r"|Y[A-P][LR]\d{3}[WC](?:-[A-Z])?"  # yeast ORFs
    r"|[A-Z][A-Z0-9-]{2,9}(?:orf\d+)?"  # gene symbols (upper case, short)
    r"|ILMN_\d+|A_\d{2}_P\d+|NM_\d+|NR_\d+"  # Illumina, Agilent, RefSeq
    r")$"
)
# ... and identifiers that are clearly samples
_SAMPLE_PATTERNS = re.compile(
    r"(?:^GS[MEP]\d+|\.CEL$|^TCGA-|^SRR\d+|^ERR\d+|^[ACGTN]{8,}(?:-\d+)?$|_(?:rep|WT|wt)\d*$|^sample)",
    re.IGNORECASE,
)


def require_genes(
    genes: list[str], present, what: str, source: str | None, where: str = "the matrix"
) -> None:
    """One error naming how many of ``genes`` (called ``what``) are not in ``present`` (a set or
    dict of gene ids) and the first few; nothing when all are."""
    missing = [g for g in genes if g not in present]
    if missing:
        raise BiodlInputError(
            f"{len(missing)} of {len(genes)} {what} are not in {where} (first: {', '.join(missing[:5])})",
            path=source or None,
        )


@dataclass
class ExpressionMatrix:
    """An expression matrix, samples in rows.

    Attributes
    ----------
    values
        ``(n_samples, n_genes)`` float32 array.
    genes
        Gene / probe identifiers, length ``n_genes``.
    samples
        Sample identifiers, length ``n_samples``.
    obs
        Per-sample annotation (AnnData ``obs``, GCT column metadata), indexed by sample, or ``None``.
    source
        The file it was read from.
    """

    values: np.ndarray
    genes: list[str]
    samples: list[str]
    obs: pd.DataFrame | None = None
    source: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def shape(self) -> tuple[int, int]:
        return self.values.shape

    def to_frame(self) -> pd.DataFrame:
        """Samples x genes DataFrame."""
        return pd.DataFrame(self.values, index=self.samples, columns=self.genes)

    def subset_genes(self, genes: list[str], what: str = "genes") -> ExpressionMatrix:
        """The matrix restricted to (and ordered by) ``genes``; all must be present."""
        pos = {g: i for i, g in enumerate(self.genes)}
        require_genes(genes, pos, what, self.source)
        idx = np.fromiter((pos[g] for g in genes), dtype=np.int64, count=len(genes))
        return ExpressionMatrix(self.values[:, idx], list(genes), list(self.samples), self.obs, self.source)

    def align_to(
        self, genes: list[str], fill: float | None = None, what: str = "model genes"
    ) -> ExpressionMatrix:
        """The matrix with columns in the order of ``genes``. Genes absent from the matrix are
        filled with ``fill`` (an error when ``fill`` is ``None``)."""
        pos = {g: i for i, g in enumerate(self.genes)}
        missing = [g for g in genes if g not in pos]
        if missing and fill is None:
            raise BiodlInputError(
                f"{len(missing)} of {len(genes)} {what} are not in the matrix "
                f"(first: {', '.join(missing[:5])}){_missing_genes_hint(missing, self.genes, self.source)}",
                path=self.source or None,
            )
        out = np.full((len(self.samples), len(genes)), fill if fill is not None else 0.0, dtype=np.float32)
        have = [(j, pos[g]) for j, g in enumerate(genes) if g in pos]
        if have:
            dst, src = map(np.asarray, zip(*have, strict=True))
            out[:, dst] = self.values[:, src]
        notes = list(self.notes)
        if missing:
            notes.append(f"{len(missing)} genes missing from the input were set to {fill}")
        return ExpressionMatrix(out, list(genes), list(self.samples), self.obs, self.source, notes)


_VERSION = re.compile(r"\.\d+$")


def _missing_genes_hint(missing: list[str], have: list[str], source: str) -> str:
    """Why genes may be missing: ids that differ by a version suffix (``ENSG00000141510.17`` /
    ``ENSG00000141510``), else a transposed text matrix (an AnnData / GCT has one orientation)."""
    have_base = {_VERSION.sub("", g): g for g in have}
    pairs = [(g, have_base[_VERSION.sub("", g)]) for g in missing[:200] if _VERSION.sub("", g) in have_base]
    if len(pairs) * 2 >= min(len(missing), 200):
        model, data = pairs[0]
        return (
            f"; their ids differ from the matrix's by a version suffix (the model's {model!r}, "
            f"the matrix's {data!r}: annotation releases write them differently): strip the "
            "versions ('.N') from the ids of one of the two (a model keeps its training matrix's ids)"
        )
    if str(source).lower().removesuffix(".gz").endswith((".h5ad", ".gct")) or not source:
        return "; are the matrix's ids the same kind as the model's (symbols, Ensembl ids, probe sets)?"
    return "; is the orientation right, and are the ids the same kind (symbols, Ensembl ids, probe sets)?"


def gene_like_fraction(labels: list[str], known_genes: set[str] | None = None) -> float:
    """Fraction of ``labels`` that look like gene / probe identifiers (or are in ``known_genes``)
    minus the fraction that look like sample identifiers (GSM..., .CEL, barcodes)."""
    labels = [str(x) for x in labels[:2000] if str(x)]
    if not labels:
        return 0.0
    if known_genes:
        hit = sum(x in known_genes for x in labels) / len(labels)
        if hit > 0:
            return hit
    genes = sum(bool(_GENE_PATTERNS.match(x)) for x in labels)
    samples = sum(bool(_SAMPLE_PATTERNS.search(x)) for x in labels)
    return (genes - samples) / len(labels)


#: The id column's header of a matrix whose rows are genes / samples (evidence for ``auto``).
_GENE_ROW_HEADERS = frozenset(
    "gene genes gene_id geneid gene_name gene_symbol symbol id_ref probe probe_id probeset "
    "probeset_id ensembl ensembl_id orf locus locus_tag feature feature_id".split()
)
_SAMPLE_ROW_HEADERS = frozenset(
    "sample samples sample_id sample_name cell cells cell_id barcode barcodes cell_barcode obs "
    "array array_id gsm run run_id specimen patient".split()
)


def _check_orientation(
    rows: list[str],
    cols: list[str],
    orientation: str,
    path: Path | str | None,
    known_genes: set[str] | None,
    id_header: str = "",
) -> str:
    """Resolve ``auto`` and catch a matrix given with the wrong orientation. ``id_header``: the
    id column's name (``gene``, ``ID_REF`` / ``cell``, ``sample``), evidence when the labels
    give none."""
    if orientation not in ORIENTATIONS:
        raise BiodlInputError(f"orientation must be one of {', '.join(ORIENTATIONS)}, not {orientation!r}")
    r, c = gene_like_fraction(rows, known_genes), gene_like_fraction(cols, known_genes)
    if orientation == "auto":
        if abs(r - c) >= 0.3:
            return "genes-x-samples" if r > c else "samples-x-genes"
        head = re.sub(r"[\s.-]+", "_", id_header.strip().lower())
        if head in _GENE_ROW_HEADERS:
            return "genes-x-samples"
        if head in _SAMPLE_ROW_HEADERS:
            return "samples-x-genes"
        # no evidence from the labels: genes usually outnumber samples (not in single-cell
        # tables of selected genes): said, with the option that overrules it
        orient = "genes-x-samples" if len(rows) >= len(cols) else "samples-x-genes"
        rows_are = "genes" if orient == "genes-x-samples" else "samples"
        other = "samples-x-genes" if orient == "genes-x-samples" else "genes-x-samples"
        note(
            f"[biodl] note: {path or 'the matrix'}: neither its labels nor its id column's name tell "
            f"genes from samples; the {rows_are} are taken to be the rows, as there are "
            f"{'more' if len(rows) > len(cols) else 'as many' if len(rows) == len(cols) else 'fewer'} "
            f"rows ({len(rows):,}) than columns ({len(cols):,}). If that is wrong, give the "
            f"orientation: --set orientation={other} (biodl adage activities: --orientation {other})"
        )
        return orient
    genes_are_rows = orientation == "genes-x-samples"
    g, s = (r, c) if genes_are_rows else (c, r)
    if s - g >= 0.5:
        where = "column headers" if genes_are_rows else "row labels"
        raise BiodlInputError(
            f"the {where} look like gene identifiers ({s:.0%} gene-like vs {g:.0%}); the matrix "
            f"seems to be transposed: use orientation="
            f"{'samples-x-genes' if genes_are_rows else 'genes-x-samples'} (or auto)",
            path=path,
        )
    return orientation


def _column_name(sep: str, j: int, header: list[str]) -> str:
    name = header[j] if j < len(header) else ""
    return f"column {j + 1}" + (f" ({name!r})" if name else "")


def _validate_numeric(
    raw: pd.DataFrame, path: Path, line_of_row: np.ndarray, header: list[str], col_offset: int, missing: str
) -> np.ndarray:
    """Convert string cells to float32, naming the first bad cell's line and column."""
    arr = np.empty(raw.shape, dtype=np.float64)
    for j, col in enumerate(raw.columns):
        s = raw[col]
        num = pd.to_numeric(s, errors="coerce")
        na_token = s.str.strip().str.upper().isin(["NA", "NAN", "", "NULL", "N/A"])
        bad = num.isna() & s.notna() & ~na_token
        if bad.any():
            # pandas gives NaN for numbers beyond float range ('1e400'); Python's float gives inf
            num[bad] = [_float_or_nan(v) for v in s[bad]]
            bad = num.isna() & s.notna() & ~na_token
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise BiodlInputError(
                f"{_column_name(',', j + col_offset, header)}: non-numeric value {s.iloc[i]!r}",
                path=path,
                record=int(line_of_row[i]),
            )
        arr[:, j] = num.to_numpy(dtype=np.float64, na_value=np.nan)
    _check_finite(arr, path, line_of_row, header, col_offset, missing)
    return arr.astype(np.float32)


def _float_or_nan(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")


def _check_short_rows(path: Path, sep: str, n_fields: int, line_of_row: np.ndarray) -> None:
    """Name a row with fewer fields than the table (pandas fills its last cells with '')."""
    wanted = {int(n) for n in line_of_row}
    with open_text(path) as fh:
        for number, fields in enumerate(csv.reader(fh, delimiter=sep), start=1):
            if number in wanted and 0 < len(fields) < n_fields:
                raise BiodlInputError(
                    f"{len(fields)} fields, expected {n_fields} (as in the first data line); "
                    "an empty cell is written as an empty field between separators, not left out",
                    path=path,
                    record=number,
                )


def _check_finite(
    arr: np.ndarray, path: Path, line_of_row: np.ndarray, header: list[str], col_offset: int, missing: str
) -> None:
    with np.errstate(invalid="ignore"):  # (NaN: missing, below)
        inf = np.abs(arr) > F32_MAX  # beyond float32 (1e39) is infinite once the matrix is float32
    if inf.any():
        i, j = map(int, np.argwhere(inf)[0])
        v = arr[i, j]
        raise BiodlInputError(
            f"{_column_name(',', j + col_offset, header)}: infinite value"
            + ("" if np.isinf(v) else f" ({v:g} is beyond float32's range, +-3.4e38)"),
            path=path,
            record=int(line_of_row[i]),
        )
    nan = np.isnan(arr)
    if nan.any():
        if missing == "error":
            i, j = map(int, np.argwhere(nan)[0])
            raise BiodlInputError(
                f"{_column_name(',', j + col_offset, header)}: missing value (NA/NaN/empty; "
                f"{int(nan.sum())} in the file; use missing=gene-mean to impute)",
                path=path,
                record=int(line_of_row[i]),
            )


def _impute(values: np.ndarray, missing: str, axis: int, genes=None, path=None) -> np.ndarray:
    """Fill NaN cells with the gene's mean (``axis`` is the sample axis); a gene without any
    value has no mean: an error naming it (``genes``)."""
    nan = np.isnan(values)
    if not nan.any():
        return values
    if missing != "gene-mean":
        raise BiodlInputError(f"missing must be 'error' or 'gene-mean', not {missing!r}")
    empty = nan.all(axis=axis)
    if empty.any():
        j = int(np.flatnonzero(empty)[0])
        name = repr(str(genes[j])) if genes is not None else f"number {j + 1}"
        raise BiodlInputError(
            f"gene {name} has no value at all ({int(empty.sum())} such gene(s)): missing=gene-mean has no "
            "mean to fill it with; leave it out of the file",
            path=path,
        )
    means = np.nanmean(values, axis=axis, keepdims=True)
    return np.where(nan, np.broadcast_to(means, values.shape), values).astype(np.float32)


def _check_ids(
    ids: list[str],
    path: Path,
    line_of: np.ndarray | list[int] | None,
    what: str,
    duplicates: str,
    *,
    places: list[str] | None = None,
    mergeable: bool = True,
) -> None:
    """Refuse empty identifiers, and repeated ones unless ``duplicates`` merges them.

    ``line_of`` gives each identifier's line (the error's record; ``None`` for HDF5);
    ``places`` names each one's place in the message (``column 3``, ``var index 5``), else the
    line is used. ``mergeable=False``: the ids cannot be merged (sample names), so the error
    does not advise ``duplicates=``.
    """
    seen: dict[str, str] = {}
    for i, g in enumerate(ids):
        record = int(line_of[i]) if line_of is not None else None
        place = places[i] if places is not None else f"line {record}"
        prefix = f"{places[i]}: " if places is not None else ""
        if g == "" or g.lower() == "nan":
            raise BiodlInputError(f"{prefix}empty {what} identifier", path=path, record=record)
        if g in seen and (duplicates == "error" or not mergeable):
            advice = (
                "use duplicates=mean or duplicates=first to merge"
                if mergeable
                else f"{what} identifiers must be unique; rename one of them"
            )
            raise BiodlInputError(
                f"{prefix}duplicate {what} identifier {g!r} (first at {seen[g]}; {advice})",
                path=path,
                record=record,
            )
        seen.setdefault(g, place)


def _merge_duplicates(values: np.ndarray, genes: list[str], duplicates: str) -> tuple[np.ndarray, list[str]]:
    """Merge duplicate gene columns (``mean`` or ``first``)."""
    if len(set(genes)) == len(genes):
        return values, genes
    if duplicates not in ("mean", "first"):
        raise BiodlInputError(f"duplicates must be 'error', 'mean' or 'first', not {duplicates!r}")
    df = pd.DataFrame(values, columns=genes)
    grouped = df.T.groupby(level=0, sort=False)
    merged = grouped.mean() if duplicates == "mean" else grouped.first()
    return merged.T.to_numpy(dtype=np.float32), [str(g) for g in merged.index]


def read_table_matrix(
    path: str | Path,
    orientation: str = "auto",
    known_genes: set[str] | None = None,
    missing: str = "error",
    duplicates: str = "error",
) -> ExpressionMatrix:
    """Read a PCL / TSV / CSV matrix or a GEO series matrix (plain or gzip).

    The first line is the header (sample or gene names), the first column the row
    identifiers. PCL extras are recognised and skipped: ``NAME`` / ``GWEIGHT`` columns after
    the id column and an ``EWEIGHT`` row. A GEO series matrix (``GSE..._series_matrix.txt.gz``)
    is read from its table: the ``ID_REF`` line and the rows up to ``!series_matrix_table_end``
    (probes x GSM samples; the ``!Series_`` / ``!Sample_`` lines are skipped).

    Parameters
    ----------
    path
        The file.
    orientation
        ``genes-x-samples`` (PCL, GEO series matrices), ``samples-x-genes`` or ``auto``
        (decided from the labels, then from the shape). An explicit orientation is checked:
        a matrix whose other axis looks like gene identifiers is rejected as transposed.
    known_genes
        Gene identifiers expected in the file (e.g. a model's genes); helps ``auto``.
    missing
        ``error`` (default) or ``gene-mean`` (impute NaN / empty cells with the gene's mean).
    duplicates
        ``error`` (default), ``mean`` or ``first`` for repeated gene identifiers.
    """
    p = check_file(path)
    span = _table_span(p)
    if span[1] is not None and orientation == "auto":  # a GEO series matrix: probes x GSM samples
        orientation = "genes-x-samples"
    fast = _read_numeric_matrix(p, span)
    if fast is not None:  # every cell a number: read as numbers (a string per cell is ~80 bytes)
        header, data_start, row_labels, lines, values64 = fast
        col_labels = [h.strip() for h in header[data_start:]]
        orient = _check_orientation(row_labels, col_labels, orientation, p, known_genes, header[0])
        _check_finite(values64, p, lines, header, data_start, missing)
        values = values64.astype(np.float32)
        del values64
    else:  # anything else (missing values, text, blank or short lines): read and named cell by cell
        header, data_start, row_labels, col_labels, lines, orient, values = _read_text_matrix(
            p, orientation, known_genes, missing, span
        )
    header_places = [f"column {j + data_start + 1}" for j in range(len(col_labels))]
    header_lines = [span[0] + 1] * len(col_labels)
    if orient == "genes-x-samples":
        _check_ids(row_labels, p, lines, "gene", duplicates)
        _check_ids(col_labels, p, header_lines, "sample", "error", places=header_places, mergeable=False)
        values = _impute(values, missing, axis=1, genes=row_labels, path=p).T
        genes, samples = row_labels, col_labels
    else:
        _check_ids(col_labels, p, header_lines, "gene", duplicates, places=header_places)
        _check_ids(row_labels, p, lines, "sample", "error", mergeable=False)
        values = _impute(values, missing, axis=0, genes=col_labels, path=p)
        genes, samples = col_labels, row_labels
    values, genes = _merge_duplicates(np.ascontiguousarray(values, dtype=np.float32), genes, duplicates)
    return ExpressionMatrix(values, genes, samples, None, str(p))


_SERIES_BEGIN, _SERIES_END = "!series_matrix_table_begin", "!series_matrix_table_end"


def _table_span(p: Path) -> tuple[int, int | None]:
    """``(lines before the header, data rows or None for all)``: ``(0, None)`` for a plain
    matrix; for a GEO series matrix (``!Series_...`` / ``!Sample_...`` lines, then the table
    between ``!series_matrix_table_begin`` and ``!series_matrix_table_end``) the table's place."""
    with open_text(p) as fh:
        first = fh.readline()
        if not first.startswith("!"):
            return 0, None
        begin = end = None
        for number, line in enumerate(fh, start=2):
            low = line.strip().strip('"').lower()
            if begin is None and low == _SERIES_BEGIN:
                begin = number
            elif begin is not None and low == _SERIES_END:
                end = number
                break
    if begin is None:
        raise BiodlInputError(
            f"a GEO series matrix (its lines start with '!') without its {_SERIES_BEGIN} line: "
            "give the table itself (the ID_REF line and the rows below it)",
            path=p,
            record=1,
        )
    if end is None:
        raise BiodlInputError(
            f"a GEO series matrix without its {_SERIES_END} line (a truncated download?)", path=p
        )
    return begin, end - begin - 2


def _header_line(fh, skip: int) -> str:
    """The header line, after ``skip`` lines (a GEO series matrix's metadata)."""
    for _ in range(skip):
        fh.readline()
    return fh.readline().rstrip("\r\n")


def _data_start(header: list[str]) -> int:
    """The first value column: after the id column and PCL's ``NAME`` / ``GWEIGHT`` columns."""
    data_start = 1
    low = [h.strip().upper() for h in header]
    while data_start < len(low) and low[data_start] in ("NAME", "GWEIGHT", "DESCRIPTION", "DESC"):
        data_start += 1
    return data_start


def _read_body(fh, sep: str, dtype, span: tuple[int, int | None] = (0, None)) -> pd.DataFrame:
    """The rows after the header line (``span``: see :func:`_table_span`), as they are (no value
    taken for missing, blank lines kept), each column as ``dtype`` says."""
    return pd.read_csv(
        fh,
        sep=sep,
        header=None,
        skiprows=span[0] + 1,
        nrows=span[1],
        dtype=dtype,
        keep_default_na=False,
        na_filter=False,
        engine="c",
        quoting=csv.QUOTE_MINIMAL,
        skip_blank_lines=False,
    )


def _read_numeric_matrix(p: Path, span: tuple[int, int | None] = (0, None)):
    """``(header, data_start, row ids, lines, values float64)`` of a matrix whose every value cell
    parses as a number (PCL's ``EWEIGHT`` row dropped), read by pandas as numbers; ``None`` for
    anything else, which :func:`_read_text_matrix` reads and names cell by cell."""
    with open_text(p) as fh:
        first = _header_line(fh, span[0])
        second = fh.readline().rstrip("\r\n")
        if not first.strip() or not second.strip():
            return None
        sep = guess_separator(p, first)
        header = next(csv.reader([first], delimiter=sep))
        n_fields = len(next(csv.reader([second], delimiter=sep)))
        if len(header) == n_fields - 1:  # R's write.table: no label for the id column
            header = ["", *header]
        if len(header) != n_fields:
            return None
        data_start = _data_start(header)
        if data_start >= n_fields:
            return None
        fh.seek(0)
        try:
            dtype = {j: (str if j < data_start else np.float64) for j in range(n_fields)}
            df = _read_body(fh, sep, dtype, span)
        except (ValueError, TypeError, pd.errors.ParserError, pd.errors.EmptyDataError):
            return None
    if df.empty or df.shape[1] != n_fields:
        return None
    ids = df.iloc[:, 0].astype(str).str.strip()
    keep = ~ids.str.upper().isin(["EWEIGHT"]).to_numpy()
    values = df.iloc[:, data_start:].to_numpy(dtype=np.float64)
    del df
    if np.isnan(values).any():  # (a numeric column of a short line): the text reader names it
        return None
    lines = np.arange(len(ids)) + span[0] + 2
    return header, data_start, ids[keep].tolist(), lines[keep], np.ascontiguousarray(values[keep])


def _read_text_matrix(
    p: Path, orientation: str, known_genes, missing: str, span: tuple[int, int | None] = (0, None)
):
    """:func:`read_table_matrix`'s reader of any matrix, every cell as text first, so that each
    problem names its line and column."""
    head = span[0] + 1  # the header's line
    with open_text(p) as fh:
        first = _header_line(fh, span[0])
        if not first.strip():
            raise BiodlInputError("empty file or empty header line", path=p, record=head)
        sep = guess_separator(p, first)
        header = next(csv.reader([first], delimiter=sep))
        fh.seek(0)
        try:
            raw = _read_body(fh, sep, str, span)
        except pd.errors.ParserError as e:
            m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(e))
            if m:
                raise BiodlInputError(
                    f"{m.group(3)} fields, expected {m.group(1)} (as in the lines before)",
                    path=p,
                    record=int(m.group(2)),
                ) from None
            raise BiodlInputError(f"cannot parse the table ({e})", path=p) from None
        except pd.errors.EmptyDataError:
            raise BiodlInputError("no data rows after the header", path=p) from None
    if raw.empty:
        raise BiodlInputError("no data rows after the header", path=p)
    lines = np.arange(len(raw)) + head + 1
    # blank lines: drop at the end, error in the middle
    blank = (raw.fillna("") == "").all(axis=1).to_numpy()
    if blank.any():
        last_data = np.flatnonzero(~blank)[-1] if (~blank).any() else -1
        inner = np.flatnonzero(blank[: last_data + 1])
        if inner.size:
            raise BiodlInputError("blank line inside the matrix", path=p, record=int(lines[inner[0]]))
        raw, lines = raw.iloc[: last_data + 1], lines[: last_data + 1]
    if len(header) == raw.shape[1] - 1 and (raw.iloc[:, -1].fillna("").str.strip() == "").all():
        # every data line ends with a separator the header lacks (an export artefact): that empty
        # column is no column. (Read as R's layout below, the header's id-column name became
        # the first sample's and every sample took its neighbour's values.)
        raw = raw.iloc[:, :-1]
    if raw.shape[1] > 1 and (raw.iloc[:, -1] == "").any():
        _check_short_rows(p, sep, raw.shape[1], lines)
    if len(header) != raw.shape[1]:
        # header without a label for the id column (R write.table) has one field less
        if len(header) == raw.shape[1] - 1:
            header = ["", *header]
        else:
            raise BiodlInputError(
                f"the header has {len(header)} fields but the rows have {raw.shape[1]}", path=p, record=head
            )
    data_start = _data_start(header)
    ids = raw.iloc[:, 0].str.strip()
    keep = ~ids.str.upper().isin(["EWEIGHT"])
    raw, lines, ids = raw[keep.to_numpy()], lines[keep.to_numpy()], ids[keep]
    cells = raw.iloc[:, data_start:]
    if cells.shape[1] == 0:
        raise BiodlInputError("no data columns (only identifiers)", path=p, record=head)
    col_labels = [h.strip() for h in header[data_start:]]
    row_labels = ids.tolist()
    orient = _check_orientation(row_labels, col_labels, orientation, p, known_genes, header[0])
    values = _validate_numeric(cells, p, lines, header, data_start, missing)
    return header, data_start, row_labels, col_labels, lines, orient, values


def read_gct(path: str | Path, missing: str = "error", duplicates: str = "error") -> ExpressionMatrix:
    """Read a GCT 1.2 or 1.3 file (genes x samples; 1.3 row / column metadata skipped / kept).

    Column metadata of GCT 1.3 become ``obs``.
    """
    p = check_file(path)
    with open_text(p) as fh:
        version = fh.readline().strip()
        if version not in ("#1.2", "#1.3"):
            raise BiodlInputError(
                f"not a GCT file: first line is {version[:20]!r}, expected #1.2 or #1.3", path=p, record=1
            )
        dims = fh.readline().rstrip("\r\n").split("\t")
        try:
            nums = [int(x) for x in dims if x.strip()]
        except ValueError:
            raise BiodlInputError("GCT dimension line is not numeric", path=p, record=2) from None
        header = fh.readline().rstrip("\r\n").split("\t")
        body = [ln.rstrip("\r\n").split("\t") for ln in fh]
    if version == "#1.2":
        if len(nums) != 2:
            raise BiodlInputError(
                f"GCT 1.2 dimension line needs 2 numbers (rows, columns), found {len(nums)}",
                path=p,
                record=2,
            )
        n_rows, n_cols = nums
        n_rmeta, n_cmeta = 1, 0  # Description column
    else:
        if len(nums) != 4:
            raise BiodlInputError("GCT 1.3 dimension line needs 4 numbers", path=p, record=2)
        n_rows, n_cols, n_rmeta, n_cmeta = nums
    first_data = 1 + n_rmeta
    samples = header[first_data:]
    if len(samples) != n_cols:
        raise BiodlInputError(
            f"header has {len(samples)} sample columns, the GCT header says {n_cols}", path=p, record=3
        )
    cmeta = body[:n_cmeta]
    # each data row with its own line number (blank lines skipped: the rows after one were named
    # a line too early)
    kept = [(4 + n_cmeta + i, r) for i, r in enumerate(body[n_cmeta:]) if any(x.strip() for x in r)]
    rows = [r for _, r in kept]
    if len(rows) != n_rows:
        raise BiodlInputError(f"{len(rows)} data rows, the GCT header says {n_rows}", path=p, record=2)
    lines = np.asarray([ln for ln, _ in kept], dtype=np.int64)
    for ln, r in zip(lines, rows, strict=True):
        if len(r) != len(header):
            raise BiodlInputError(f"{len(r)} fields, expected {len(header)}", path=p, record=int(ln))
    genes = [r[0].strip() for r in rows]
    _check_ids(genes, p, lines, "gene", duplicates)
    _check_ids(
        samples,
        p,
        [3] * len(samples),
        "sample",
        "error",
        places=[f"column {j + first_data + 1}" for j in range(len(samples))],
        mergeable=False,
    )
    cells = pd.DataFrame([r[first_data:] for r in rows], dtype=str)
    values = _validate_numeric(cells, p, lines, header, first_data, missing)
    values = _impute(values, missing, axis=1, genes=genes, path=p).T
    obs = None
    if cmeta:
        obs = pd.DataFrame({m[0]: m[first_data:] for m in cmeta}, index=samples)
    values, genes = _merge_duplicates(np.ascontiguousarray(values), genes, duplicates)
    return ExpressionMatrix(values, genes, samples, obs, str(p))


def read_h5ad(
    path: str | Path,
    layer: str | None = None,
    use_raw: bool = False,
    missing: str = "error",
    duplicates: str = "error",
) -> ExpressionMatrix:
    """Read an AnnData ``.h5ad`` file (cells x genes). ``layer`` picks ``adata.layers[layer]``,
    ``use_raw`` picks ``adata.raw.X``; ``obs`` is kept. Repeated ``var_names`` are an error
    (``duplicates=error``, naming the var index) or merged (``mean`` / ``first``); repeated
    ``obs_names`` are an error."""
    import anndata

    p = check_file(path)
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a = anndata.read_h5ad(p)
    except Exception as e:  # h5py / anndata raise many types
        raise BiodlInputError(f"not a readable .h5ad file ({type(e).__name__}: {e})", path=p) from None
    return matrix_from_anndata(a, p, layer=layer, use_raw=use_raw, missing=missing, duplicates=duplicates)


def _mtx_parts(p: Path) -> tuple[Path, Path, Path] | None:
    """``(matrix, features, barcodes)`` of a 10x Genomics folder (Cell Ranger's
    ``filtered_feature_bc_matrix/``) or of its ``matrix.mtx[.gz]``; ``None`` for anything else."""
    folder = p if p.is_dir() else p.parent
    if p.is_dir():  # matrix.mtx[.gz] (either, after gunzip -k), or one GEO-prefixed GSM..._matrix.mtx[.gz]
        exact = [folder / n for n in ("matrix.mtx.gz", "matrix.mtx") if (folder / n).is_file()]
        found = exact or sorted(
            q for q in folder.iterdir() if q.name.lower().endswith(("matrix.mtx", "matrix.mtx.gz"))
        )
        if not found:
            return None
        if not exact and len(found) > 1:
            raise BiodlInputError(
                f"holds {len(found)} matrices ({', '.join(q.name for q in found[:4])}): give one of them",
                path=folder,
            )
        p = found[0]
    elif not p.name.lower().removesuffix(".gz").endswith(".mtx"):
        return None
    prefix = p.name[: p.name.lower().index("matrix.mtx")] if "matrix.mtx" in p.name.lower() else ""

    def first(*names: str) -> Path:
        for n in names:
            for q in (folder / f"{prefix}{n}.gz", folder / f"{prefix}{n}"):
                if q.is_file():
                    return q
        raise BiodlInputError(
            f"a MatrixMarket matrix needs its {names[0]}[.gz] beside it (10x Genomics' layout: "
            "matrix.mtx.gz, features.tsv.gz or genes.tsv.gz, barcodes.tsv.gz)",
            path=p,
        )

    return p, first("features.tsv", "genes.tsv"), first("barcodes.tsv")


def read_10x_mtx(path: str | Path, missing: str = "error", duplicates: str = "error") -> ExpressionMatrix:
    """Read a 10x Genomics matrix folder (or its ``matrix.mtx[.gz]``): genes x cells counts in
    MatrixMarket format with ``features.tsv`` (gene ids, then symbols) and ``barcodes.tsv``; the
    genes are named by their ids (Ensembl, unique), the cells by their barcodes."""
    import scipy.io

    parts = _mtx_parts(Path(path))
    if parts is None:
        raise BiodlInputError("not a 10x Genomics matrix folder (no matrix.mtx[.gz] in it)", path=path)
    mtx, features, barcodes = parts
    import scipy.sparse as sp

    try:
        x = sp.coo_matrix(scipy.io.mmread(str(mtx)))  # (scipy reads .gz by the name; array format too)
    except (ValueError, OSError, IndexError, EOFError) as e:
        raise BiodlInputError(f"not a readable MatrixMarket matrix ({e})", path=mtx) from None
    with open_text(features) as fh:
        genes = [line.split("\t")[0].strip() for line in fh if line.strip()]
    with open_text(barcodes) as fh:
        cells = [line.split("\t")[0].strip() for line in fh if line.strip()]
    if x.shape != (len(genes), len(cells)):
        raise BiodlInputError(
            f"the matrix is {x.shape[0]:,} x {x.shape[1]:,} but {features.name} names {len(genes):,} genes "
            f"and {barcodes.name} {len(cells):,} cells",
            path=mtx,
        )
    import anndata

    a = anndata.AnnData(x.T.tocsr().astype(np.float32))
    a.obs_names, a.var_names = cells, genes
    return matrix_from_anndata(a, mtx, missing=missing, duplicates=duplicates)


def _finite(x: np.ndarray, samples: list[str], genes: list[str], missing: str, p, unit: str) -> np.ndarray:
    """``x`` (samples x genes) with its gaps filled as ``missing`` says; an infinite value, or a
    gap with ``missing=error``, is an error naming the sample (``unit``) and gene."""
    with np.errstate(invalid="ignore"):
        big = np.abs(x) > F32_MAX  # infinite in float32 (x may be float64)
    if np.isfinite(x).all() and not big.any():
        return x
    bad = big if big.any() else ~np.isfinite(x)
    i, j = map(int, np.argwhere(bad)[0])
    if missing == "error" or big.any():
        hint = "" if big.any() else " (missing=gene-mean fills a gap with the gene's mean)"
        raise BiodlInputError(
            f"non-finite value {x[i, j]} at {unit} {samples[i]!r}, gene {genes[j]!r}{hint}",
            path=p,
            record=samples[i],
        )
    return _impute(x, missing, axis=0, genes=genes, path=p)


def matrix_from_anndata(
    a,
    p: str | Path,
    layer: str | None = None,
    use_raw: bool = False,
    missing: str = "error",
    duplicates: str = "error",
) -> ExpressionMatrix:
    """The :class:`ExpressionMatrix` of an AnnData object (cells x genes), read from the file
    ``p`` or given in memory (``p`` then names it in messages); options as :func:`read_h5ad`."""
    import scipy.sparse as sp

    if use_raw:
        if a.raw is None:
            raise BiodlInputError("use_raw was asked for, but the AnnData has no .raw", path=p)
        x, genes = a.raw.X, list(map(str, a.raw.var_names))
    elif layer and not (layer == "X" and "X" not in a.layers):  # layer X: .X
        if layer not in a.layers:
            raise BiodlInputError(f"no layer {layer!r} (layers: {', '.join(a.layers) or 'none'})", path=p)
        x, genes = a.layers[layer], list(map(str, a.var_names))
    else:
        if a.X is None:  # (legal: some pipelines keep only layers)
            raise BiodlInputError(
                "the AnnData has no .X: choose a layer with --set layer=NAME (layers: "
                f"{', '.join(a.layers) or 'none'}) or --set use_raw=true",
                path=p,
            )
        x, genes = a.X, list(map(str, a.var_names))
    x = x.toarray() if sp.issparse(x) else np.asarray(x)
    x = x.astype(np.float32)
    samples = list(map(str, a.obs_names))
    x = _finite(x, samples, genes, missing, p, "cell")
    _check_ids(
        genes, p, None, "gene (var_names)", duplicates, places=[f"var index {i}" for i in range(len(genes))]
    )
    _check_ids(
        samples,
        p,
        None,
        "cell (obs_names)",
        "error",
        places=[f"obs index {i}" for i in range(len(samples))],
        mergeable=False,
    )
    x, genes = _merge_duplicates(np.ascontiguousarray(x, dtype=np.float32), genes, duplicates)
    return ExpressionMatrix(x, genes, samples, a.obs.copy(), str(p))


def matrix_from_memory(
    data,
    orientation: str = "auto",
    known_genes: set[str] | list[str] | None = None,
    missing: str = "error",
    duplicates: str = "error",
    layer: str | None = None,
    use_raw: bool = False,
) -> ExpressionMatrix:
    """The :class:`ExpressionMatrix` of an in-memory AnnData (cells x genes) or pandas DataFrame
    (samples x genes, or genes x samples: ``orientation``, ``auto`` tells them apart by the
    labels, and by ``known_genes``, a model's genes, when given), checked as a file is."""
    from biodl.io.memory import describe

    src = describe(data)
    if type(data).__name__ == "AnnData":
        if orientation == "genes-x-samples":
            raise BiodlInputError("an AnnData is always cells x genes; drop orientation", path=src)
        return matrix_from_anndata(
            data, src, layer=layer, use_raw=use_raw, missing=missing, duplicates=duplicates
        )
    if not isinstance(data, pd.DataFrame):
        raise BiodlInputError(
            f"cannot read a {type(data).__name__} as an expression matrix: give a path, an AnnData, or a "
            "pandas DataFrame (samples x genes, or genes x samples) with gene and sample labels"
        )
    if layer or use_raw:
        raise BiodlInputError("layer / use_raw are for AnnData; a DataFrame has one matrix", path=src)
    if data.empty:
        raise BiodlInputError("the DataFrame is empty", path=src)
    rows, cols = [str(i) for i in data.index], [str(c) for c in data.columns]
    known = set(known_genes) if known_genes is not None else None
    index_name = str(data.index.name or "")
    genes_are_rows = _check_orientation(rows, cols, orientation, src, known, index_name) == "genes-x-samples"
    num = data.apply(pd.to_numeric, errors="coerce")
    bad = num.isna() & data.notna()
    if bad.to_numpy().any():
        i, j = map(int, np.argwhere(bad.to_numpy())[0])
        raise BiodlInputError(
            f"non-numeric value {data.iat[i, j]!r} at row {rows[i]!r}, column {cols[j]!r}", path=src
        )
    x = num.to_numpy(dtype=np.float32)
    genes, samples = (rows, cols) if genes_are_rows else (cols, rows)
    x = np.ascontiguousarray(x.T if genes_are_rows else x)
    x = _finite(x, samples, genes, missing, src, "sample")
    where = "row" if genes_are_rows else "column"
    _check_ids(genes, src, None, "gene", duplicates, places=[f"{where} {i + 1}" for i in range(len(genes))])
    other = "column" if genes_are_rows else "row"
    _check_ids(
        samples,
        src,
        None,
        "sample",
        "error",
        places=[f"{other} {i + 1}" for i in range(len(samples))],
        mergeable=False,
    )
    x, genes = _merge_duplicates(x, genes, duplicates)
    return ExpressionMatrix(x, genes, samples, None, src)


def read_expression(
    path: str | Path,
    orientation: str = "auto",
    known_genes: set[str] | list[str] | None = None,
    missing: str = "error",
    duplicates: str = "error",
    layer: str | None = None,
    use_raw: bool = False,
) -> ExpressionMatrix:
    """Read an expression matrix in any supported format (chosen by the file name).

    ``.h5ad`` -> :func:`read_h5ad`; ``.gct`` -> :func:`read_gct`; a 10x Genomics folder or its
    ``matrix.mtx[.gz]`` -> :func:`read_10x_mtx`; everything else (``.pcl``,
    ``.tsv``, ``.txt``, ``.csv``, optionally ``.gz``) -> :func:`read_table_matrix`.

    Returns
    -------
    ExpressionMatrix
        ``values`` of shape ``(n_samples, n_genes)``.
    """
    p = Path(path)
    name = p.name.lower().removesuffix(".gz")
    known = set(known_genes) if known_genes is not None else None
    if (p.is_dir() or name.endswith(".mtx")) and _mtx_parts(p) is not None:
        if orientation == "genes-x-samples":
            raise BiodlInputError("a 10x matrix is read as cells x genes; drop orientation", path=p)
        return read_10x_mtx(p, missing=missing, duplicates=duplicates)
    if name.endswith(".h5ad"):
        if orientation == "genes-x-samples":
            raise BiodlInputError("an .h5ad file is always cells x genes; drop orientation", path=p)
        return read_h5ad(p, layer=layer, use_raw=use_raw, missing=missing, duplicates=duplicates)
    if name.endswith(".gct"):
        if orientation == "samples-x-genes":
            raise BiodlInputError("a GCT file is always genes x samples; drop orientation", path=p)
        return read_gct(p, missing=missing, duplicates=duplicates)
    if name.endswith(".pcl") and orientation == "auto":
        orientation = "genes-x-samples"
    return read_table_matrix(
        p, orientation=orientation, known_genes=known, missing=missing, duplicates=duplicates
    )


def read_gene_list(path: str | Path) -> list[str]:
    """Gene identifiers, one per line (the first field of tab/space-separated lines is used;
    a D-GEX map ``symbol  ensembl  probe`` gives its probe column)."""
    p = check_file(path)
    out: list[str] = []
    with open_text(p) as fh:
        for i, line in enumerate(fh, 1):
            f = line.split()
            if not f or f[0].startswith("#"):
                continue
            if len(f) >= 3 and f[1].startswith("ENS") and f[2].endswith("_at"):
                out.append(f[2])  # D-GEX map_lm.txt / map_tg.txt
            elif len(f) == 1 or i > 1 or f[0].lower() not in ("gene", "id", "probe"):
                out.append(f[0])
    if not out:
        raise BiodlInputError("no gene identifiers in the file", path=p)
    dup = pd.Index(out).duplicated()
    if dup.any():
        raise BiodlInputError(f"duplicate gene identifier {out[int(np.flatnonzero(dup)[0])]!r}", path=p)
    return out


def read_gene_sets(path: str | Path, min_size: int = 1) -> dict[str, list[str]]:
    """Gene sets from GMT, ADAGE/Tribe term files (``name <tab> size <tab> g1;g2;...``) or
    operon files (one set per line, genes tab-separated; named ``operon_<line>``); a file of
    one gene per line (a gene list) is one set, named by the file."""
    p = check_file(path)
    sets: dict[str, list[str]] = {}
    with open_text(p) as fh:
        lines = fh.read().splitlines()
    fields = [[x.strip() for x in ln.split("\t")] for ln in lines]
    used = [f for f in fields if f and f[0]]
    if len(used) > 1 and all(len(f) == 1 for f in used):  # a gene list, not one-gene operons
        genes = [f[0] for f in used]
        if len(genes) < min_size:
            raise BiodlInputError(f"a gene list of {len(genes)} gene(s), fewer than {min_size}", path=p)
        return {p.name.split(".")[0]: genes}
    for i, f in enumerate(fields, 1):
        if not f or not f[0]:
            continue
        if len(f) == 3 and ";" in f[2] or (len(f) == 3 and f[1].isdigit()):
            name, genes = f[0], [g for g in f[2].split(";") if g]
        elif len(f) >= 3 and not _GENE_PATTERNS.match(f[0]):
            name, genes = f[0], [g for g in f[2:] if g]  # GMT: name, description, genes
        else:
            name, genes = f"operon_{i}", [g for g in f if g]
        if name in sets:
            raise BiodlInputError(f"gene set {name!r} appears twice", path=p, record=i)
        if len(genes) >= min_size:
            sets[name] = genes
    if not sets:
        raise BiodlInputError("no gene sets in the file", path=p)
    return sets


def write_table(df: pd.DataFrame, path: str | Path, index_label: str = "sample") -> Path:
    """Write ``df`` as TSV atomically (``.csv`` suffix: comma-separated; ``.gz``: compressed)."""
    from biodl.io._util import atomic_write_text_by_suffix

    p = Path(path)
    sep = "," if p.name.lower().removesuffix(".gz").endswith(".csv") else "\t"
    text = df.to_csv(sep=sep, index_label=index_label, float_format=FLOAT_FORMAT)
    return atomic_write_text_by_suffix(p, text)
