"""Writers of prediction tables: delimited text (a fast formatter that writes what
``DataFrame.to_csv`` writes), NumPy ``.npz``, HDF5 and Parquet, chosen by the file suffix or
by name, every one written atomically.

A 919-output model gives a table of ~2,750 columns; pandas' ``to_csv`` formats it value by
value through its own machinery (2-3.6 ms a row); :func:`format_table` formats each row with
one ``%`` operation (~0.5 ms a row, byte for byte the same text). The array formats keep the
numbers as one float32 matrix for readers that want an array, not a table:

``.npz`` (:func:`numpy.load`) and ``.h5`` / ``.hdf5`` (h5py)
    ``ids`` (n,) strings: one identifier per row (the ``id`` column, ``chrom:start-end`` for
    genomic intervals, ``chrom:pos`` for sites);
    ``predictions`` (n, m) float32: every numeric column after the leading key columns;
    ``columns`` (m,) strings: their names;
    ``fields/<name>`` (HDF5; ``field_<name>`` in npz): each other column (the key columns, a
    predicted class), in its own type.
``.parquet`` (pyarrow)
    The table itself, one typed column per column of the text output.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from biodl.errors import BiodlInputError
from biodl.io._util import FLOAT_FORMAT

#: Format name -> file suffixes that choose it (a trailing ``.gz`` compresses the text formats).
FORMATS: dict[str, tuple[str, ...]] = {
    "tsv": (".tsv", ".tab", ".txt"),
    "csv": (".csv",),
    "npz": (".npz",),
    "h5": (".h5", ".hdf5"),
    "parquet": (".parquet", ".pq"),
}
TEXT_FORMATS = ("tsv", "csv")
FORMAT_ALIASES = {"hdf5": "h5", "hdf": "h5", "pq": "parquet", "tab": "tsv", "txt": "tsv"}

_INT_EXACT = 2**53  # float64 holds every integer up to here


def _suffixes() -> str:
    return ", ".join(s for v in FORMATS.values() for s in v)


def output_format(path: str | Path | None, fmt: str | None = None) -> str:
    """The format to write ``path`` in: ``fmt`` when given (``tsv``, ``csv``, ``npz``, ``h5``,
    ``parquet``), else the one its suffix names (``.gz`` after a text suffix compresses it);
    standard output (``path`` ``None``) is TSV. An unknown suffix or name is one clear error."""
    if fmt:
        f = FORMAT_ALIASES.get(fmt.lower().lstrip("."), fmt.lower().lstrip("."))
        if f not in FORMATS:
            raise BiodlInputError(f"unknown output format {fmt!r} (use {', '.join(FORMATS)})")
        if path is None and f not in TEXT_FORMATS:
            raise BiodlInputError(f"--format {f} writes a file: give it with --out")
        return f
    if path is None:
        return "tsv"
    name = Path(path).name.lower()
    gz = name.endswith(".gz")
    stem = name.removesuffix(".gz") if gz else name
    for f, sufs in FORMATS.items():
        if stem.endswith(sufs) and (not gz or f in TEXT_FORMATS):
            return f
    raise BiodlInputError(
        f"cannot tell the output format from the file name (use one of {_suffixes()}, "
        "a text one optionally followed by .gz, or say it with --format tsv|csv|npz|h5|parquet)",
        path=path,
    )


# ----------------------------------------------------------------------------- text
def _quote(s: str, sep: str) -> str:
    """A field as the csv module writes it with QUOTE_MINIMAL (pandas' ``to_csv``)."""
    if sep in s or '"' in s or "\n" in s or "\r" in s:
        return '"' + s.replace('"', '""') + '"'
    return s


def _text_column(values: np.ndarray, sep: str) -> list[str] | None:
    """An object column as quoted strings (missing values empty), or ``None`` when it holds
    something other than strings (then pandas writes the table)."""
    out = []
    for v in values.tolist():
        if isinstance(v, str):
            out.append(_quote(v, sep))
        elif v is None or (isinstance(v, float) and math.isnan(v)):
            out.append("")
        else:
            return None
    return out


def format_table(
    df: pd.DataFrame, sep: str = "\t", float_format: str = FLOAT_FORMAT, header: bool = True
) -> str:
    """``df.to_csv(sep=sep, index=False, header=header, float_format=float_format)``: the same
    text, formatted a row at a time with one ``%`` operation (several times faster for wide
    tables). Column types it does not know (categoricals, dates, nullable integers, mixed
    objects) are left to pandas."""
    return "".join(iter_table_text(df, sep, float_format, header))


def iter_table_text(
    df: pd.DataFrame,
    sep: str = "\t",
    float_format: str = FLOAT_FORMAT,
    header: bool = True,
    chunk_rows: int = 2048,
) -> Iterator[str]:
    """:func:`format_table` in pieces of ``chunk_rows`` rows (the header first), so that a large
    table is written without holding all its text in memory."""
    plan = _text_plan(df, sep, float_format)
    if plan is None:
        yield df.to_csv(sep=sep, index=False, header=header, float_format=float_format)
        return
    line, numeric, text, steps = plan
    if header:
        yield sep.join(_quote(str(c), sep) for c in df.columns) + "\n"
    n = len(df)
    for a in range(0, n, chunk_rows):
        b = min(n, a + chunk_rows)
        rows = np.column_stack([c[a:b] for c in numeric]).tolist() if numeric else None
        if rows is None:
            yield "".join(line % r for r in zip(*(t[a:b] for t in text), strict=True))
        elif not text:
            yield "".join(line % tuple(r) for r in rows)
        elif len(steps) == 2 and steps[0][0] == 1:  # one text column (an id), then numbers
            yield "".join(line % (t, *r) for t, r in zip(text[0][a:b], rows, strict=True))
        else:
            body = []
            for k, r in enumerate(rows, start=a):
                args: list = []
                for is_text, i, j in steps:
                    if is_text:
                        args.append(text[i][k])
                    else:
                        args.extend(r[i:j])
                body.append(line % tuple(args))
            yield "".join(body)


def _text_plan(df: pd.DataFrame, sep: str, float_format: str):
    """``(line format, numeric columns as float64, text columns as quoted strings, steps)``,
    where ``steps`` lists in column order ``(0, a, b)`` (numeric columns ``a:b``) and ``(1, i,
    0)`` (text column ``i``); ``None`` when pandas should write the table."""
    n, m = df.shape
    if m == 0 or not df.columns.is_unique:
        return None
    specs: list[str] = []
    numeric: list[np.ndarray] = []
    text: list[list[str]] = []
    steps: list[tuple[int, int, int]] = []
    for j, dt in enumerate(df.dtypes.tolist()):
        if not isinstance(dt, np.dtype):
            return None
        v = df.iloc[:, j].to_numpy()
        col: list[str] | None = None
        if dt.kind == "f":
            nan = np.isnan(v)
            if nan.any():  # pandas writes missing values as empty fields
                col = ["" if b else float_format % x for x, b in zip(v.tolist(), nan.tolist(), strict=True)]
            else:
                specs.append(float_format)
        elif dt.kind in "iu":
            if n and (int(v.max()) >= _INT_EXACT or int(v.min()) <= -_INT_EXACT):  # not exact in float64
                return None
            specs.append("%d")
        elif dt.kind == "b":
            col = ["True" if b else "False" for b in v.tolist()]
        elif dt.kind == "O":
            col = _text_column(v, sep)
            if col is None:
                return None
        else:
            return None
        if col is not None:
            text.append(col)
            specs.append("%s")
            steps.append((1, len(text) - 1, 0))
            continue
        numeric.append(v.astype(np.float64, copy=False))
        i = len(numeric) - 1
        if steps and steps[-1][0] == 0 and steps[-1][2] == i:
            steps[-1] = (0, steps[-1][1], i + 1)
        else:
            steps.append((0, i, i + 1))
    return sep.join(specs) + "\n", numeric, text, steps


# ----------------------------------------------------------------------------- arrays
def split_frame(df: pd.DataFrame) -> tuple[list[str], np.ndarray, list[str], dict[str, np.ndarray]]:
    """``(ids, predictions, columns, fields)`` of a prediction table: the leading columns that
    are not floats are its keys; every numeric column after them is one column of the float32
    ``predictions`` matrix (named in ``columns``); the key columns and any other column (a
    predicted class) are ``fields`` (strings as unicode arrays, numbers in their own type).
    ``ids`` names each row: the ``id`` column, else ``chrom:start-end`` or ``chrom:pos``, else
    the first key column, else the row number."""
    kinds = [dt.kind if isinstance(dt, np.dtype) else "O" for dt in df.dtypes.tolist()]
    n_keys = 0
    while n_keys < len(kinds) and kinds[n_keys] != "f":
        n_keys += 1
    cols = [c for j, c in enumerate(df.columns) if j >= n_keys and kinds[j] in "fiub"]
    fields: dict[str, np.ndarray] = {}
    for j, c in enumerate(df.columns):
        if j < n_keys or kinds[j] not in "fiub":
            v = df.iloc[:, j].to_numpy()
            fields[str(c)] = (
                v
                if kinds[j] in "fiub"
                else np.array(["" if x is None else str(x) for x in v.tolist()], dtype=str)
            )
    pred = (
        np.column_stack([df[c].to_numpy(dtype=np.float32) for c in cols])
        if cols
        else np.zeros((len(df), 0), np.float32)
    ).astype(np.float32, copy=False)
    keys = [str(c) for c in df.columns[:n_keys]]
    if "id" in keys:
        ids = fields["id"].tolist()
    elif {"chrom", "start", "end"} <= set(keys):
        ids = [
            f"{a}:{b}-{c}"
            for a, b, c in zip(*(df[k].tolist() for k in ("chrom", "start", "end")), strict=True)
        ]
    elif {"chrom", "pos"} <= set(keys):
        ids = [f"{a}:{b}" for a, b in zip(df["chrom"].tolist(), df["pos"].tolist(), strict=True)]
    elif keys:
        ids = [str(x) for x in df[keys[0]].tolist()]
    else:
        ids = [str(i) for i in range(len(df))]
    return ids, np.ascontiguousarray(pred), [str(c) for c in cols], fields


def _column_dtypes(df: pd.DataFrame, cols: list[str]) -> list[str]:
    """The numpy type of each column of the ``predictions`` matrix in the table it came from
    (``int8`` for a ``called_`` column, ``float64`` for a probability), so that
    :func:`read_predictions` gives back integer columns as integers."""
    return [np.dtype(df[c].dtype).str for c in cols]


def _write_npz(df: pd.DataFrame, tmp: Path) -> None:
    ids, pred, cols, fields = split_frame(df)
    arrays = {
        "ids": np.array(ids, dtype=str),
        "predictions": pred,
        "columns": np.array(cols, dtype=str),
        "column_dtypes": np.array(_column_dtypes(df, cols), dtype=str),
    }
    arrays.update({f"field_{k}": v for k, v in fields.items()})
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
        fh.flush()
        os.fsync(fh.fileno())


def _write_h5(df: pd.DataFrame, tmp: Path) -> None:
    import h5py

    ids, pred, cols, fields = split_frame(df)
    text = h5py.string_dtype()
    with h5py.File(tmp, "w") as h:
        h.attrs["written_by"] = "biodl predict"
        h.create_dataset("ids", data=np.array(ids, dtype=object), dtype=text)
        h.create_dataset("predictions", data=pred)
        h.create_dataset("columns", data=np.array(cols, dtype=object), dtype=text)
        h.create_dataset("column_dtypes", data=np.array(_column_dtypes(df, cols), dtype=object), dtype=text)
        g = h.create_group("fields", track_order=True)  # read back in the table's order, not by name
        for k, v in fields.items():
            if v.dtype.kind == "U":
                g.create_dataset(k, data=v.astype(object), dtype=text)
            else:
                g.create_dataset(k, data=v)


def check_writer(fmt: str, path: str | Path | None = None) -> None:
    """One clear error when the package that writes ``fmt`` is not installed."""
    import importlib.util

    need = {"parquet": "pyarrow", "h5": "h5py"}.get(fmt)
    if need and importlib.util.find_spec(need) is None:
        others = ", ".join(s for f, v in FORMATS.items() if f != fmt for s in v[:1])
        raise BiodlInputError(
            f"writing {fmt} needs the {need} package, which is not installed "
            f"(pip install {need}, or pip install 'biodl[formats]'); or write {others} instead",
            path=path,
        )


def write_predictions(
    df: pd.DataFrame,
    path: str | Path,
    fmt: str | None = None,
    *,
    header: bool = True,
    float_format: str = FLOAT_FORMAT,
) -> Path:
    """Write a prediction table to ``path`` atomically in ``fmt`` (default: by its suffix, see
    :func:`output_format`): TSV / CSV text (``header``: with the column names; ``.gz``:
    compressed), ``npz``, ``h5`` or ``parquet``."""
    with PredictionWriter(path, fmt, header=header, float_format=float_format) as w:
        w.write(df)
    return Path(path)


class PredictionWriter:
    """:func:`write_predictions` a piece at a time, for tables too large to hold at once::

        with PredictionWriter("scores.tsv.gz") as w:
            for df in pieces:
                w.write(df)

    The pieces (same columns) make one table, exactly the file :func:`write_predictions` of
    their concatenation gives. Text and parquet are written as the pieces come; npz and h5
    hold the pieces' columns until the end. The file takes its name only when the block ends
    without an error (before: a hidden temporary file beside it); an error leaves ``path`` as
    it was."""

    def __init__(
        self,
        path: str | Path,
        fmt: str | None = None,
        *,
        header: bool = True,
        float_format: str = FLOAT_FORMAT,
    ):
        self.path, self.fmt = Path(path), output_format(path, fmt)
        self.header, self.float_format = header, float_format
        check_writer(self.fmt, path)
        self.rows = 0
        self._stack: contextlib.ExitStack | None = None

    def __enter__(self) -> PredictionWriter:
        from biodl.io._util import atomic_output, atomic_output_stream

        self._stack = contextlib.ExitStack()
        self._parquet = None
        self._pieces: list[pd.DataFrame] = []
        if self.fmt in TEXT_FORMATS:  # .gz: gzip level 1, ~2.2x smaller at a tenth of level 6's time
            self._fh = self._stack.enter_context(atomic_output_stream(self.path))
        else:
            self._tmp = self._stack.enter_context(atomic_output(self.path))
        return self

    def write(self, df: pd.DataFrame) -> None:
        """Append ``df``'s rows."""
        if self._stack is None:
            raise RuntimeError("PredictionWriter.write outside its with block")
        if self.fmt in TEXT_FORMATS:
            sep = "\t" if self.fmt == "tsv" else ","
            for piece in iter_table_text(df, sep, self.float_format, self.header and not self.rows):
                self._fh.write(piece.encode("utf-8"))
        elif self.fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            if self._parquet is None:
                table = pa.Table.from_pandas(df, preserve_index=False)
                self._parquet = pq.ParquetWriter(self._tmp, table.schema)
                self._stack.callback(self._parquet.close)  # closed before the file is renamed or removed
            else:
                table = pa.Table.from_pandas(df, schema=self._parquet.schema, preserve_index=False)
            self._parquet.write_table(table)
        else:
            self._pieces.append(df)
        self.rows += len(df)

    def __exit__(self, exc_type, exc, tb) -> bool:
        stack, self._stack = self._stack, None
        try:
            if exc_type is None:
                self._finish()
        except BaseException:
            if not stack.__exit__(*sys.exc_info()):
                raise
            return False
        return bool(stack.__exit__(exc_type, exc, tb))

    def _finish(self) -> None:
        if self.fmt in TEXT_FORMATS:
            pass  # atomic_output_stream closes, flushes and renames
        elif self.fmt == "parquet":
            if self._parquet is None:  # no piece: an empty table
                raise ValueError("PredictionWriter: nothing was written")
        else:
            df = pd.concat(self._pieces, ignore_index=True) if len(self._pieces) != 1 else self._pieces[0]
            (_write_npz if self.fmt == "npz" else _write_h5)(df, self._tmp)


#: Key columns of biodl's prediction tables that are text whatever they look like (an id ``007``
#: or ``NA``, a chromosome ``18``, a group ``1``), as the binary formats keep them.
TEXT_KEYS = frozenset(
    ("id", "name", "sample", "group", "file", "chrom", "smiles", "sequence", "read_id", "strand", "reason")
)
#: Spellings of a missing number in a text prediction file.
_MISSING_TEXT = ("", "nan", "NaN", "NA")


def _read_text_predictions(path: str | Path, sep: str) -> pd.DataFrame:
    """A text prediction table as written: key columns as text, every other column that holds
    only numbers (or blanks) as numbers. DeepCpG's header-less call table (``chrom pos value``,
    a one-output methylation prediction) gets its column names back."""
    from biodl.io._util import open_text, parses_as_number

    with open_text(path) as fh:
        first = fh.readline().rstrip("\r\n").split(sep)
    # chrom, a position, a level in [0, 1] (a header of numeric gene ids, "sample 7157 672", is no call)
    header_less = (
        len(first) == 3
        and first[0].strip().lower() not in TEXT_KEYS
        and first[1].strip().isdigit()
        and parses_as_number(first[2])
        and 0.0 <= float(first[2]) <= 1.0
    )
    with open_text(path) as fh:
        df = pd.read_csv(
            fh,
            sep=sep,
            dtype=str,
            keep_default_na=False,
            header=None if header_less else "infer",
            names=["chrom", "pos", "value"] if header_less else None,
        )
    for c in df.columns:
        if str(c) in TEXT_KEYS:
            continue
        col = df[c]
        num = pd.to_numeric(col.where(~col.isin(_MISSING_TEXT)), errors="coerce")
        if not (num.isna() & ~col.isin(_MISSING_TEXT)).any():
            df[c] = num
    return df


def read_predictions(path: str | Path) -> pd.DataFrame:
    """A prediction file written by :func:`write_predictions` back as a table (text: as written,
    key columns such as ``id`` as text; npz / h5: the ``fields`` then the ``predictions``
    columns; parquet: the table)."""
    f = output_format(path)
    if f in TEXT_FORMATS:
        return _read_text_predictions(path, "\t" if f == "tsv" else ",")
    if f == "parquet":
        return pd.read_parquet(path)
    if f == "npz":
        with np.load(path, allow_pickle=False) as z:
            fields = {k.removeprefix("field_"): z[k] for k in z.files if k.startswith("field_")}
            pred, cols = z["predictions"], [str(c) for c in z["columns"]]
            types = [str(t) for t in z["column_dtypes"]] if "column_dtypes" in z.files else None
    else:
        import h5py

        with h5py.File(path, "r") as h:
            fields = {
                k: h["fields"][k].asstr()[()] if h["fields"][k].dtype.kind in "OS" else h["fields"][k][()]
                for k in h["fields"]
            }  # text as UTF-8 (astype(str) decoded bytes as ASCII: a 'café' id raised)
            fields = {k: v.astype(str) if v.dtype.kind in "OS" else v for k, v in fields.items()}
            pred, cols = (
                h["predictions"][()],
                [c.decode() if isinstance(c, bytes) else c for c in h["columns"][()]],
            )
            types = (
                [t.decode() if isinstance(t, bytes) else str(t) for t in h["column_dtypes"][()]]
                if "column_dtypes" in h
                else None
            )
    table = pd.DataFrame(pred, columns=cols)
    if types is not None and len(types) == len(cols):  # files before 2026-12-07 have no types: floats
        for c, t in zip(cols, types, strict=True):
            if np.dtype(t).kind in "iub":
                table[c] = table[c].to_numpy().astype(t)
    return pd.concat([pd.DataFrame(fields), table], axis=1)
