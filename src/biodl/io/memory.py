"""Inputs given as Python objects instead of files (``biodl.load(RUN).predict([...])``):
the items and their ids, and the labels an evaluation compares against, checked with errors
that name the item, as the file readers name the line."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from biodl.errors import BiodlInputError
from biodl.io._util import parses_as_number


def describe(data: Any) -> str:
    """How an in-memory input is named in messages (``input list of 3 items``, ``input
    DataFrame (57 rows x 160 columns)``)."""
    kind = type(data).__name__
    shape = getattr(data, "shape", None)
    if kind in ("DataFrame", "AnnData") and shape is not None and len(shape) == 2:
        rows, cols = ("rows", "columns") if kind == "DataFrame" else ("cells", "genes")
        return f"input {kind} ({shape[0]} {rows} x {shape[1]} {cols})"
    n = len(data) if hasattr(data, "__len__") else None
    return f"input {kind}" if n is None else f"input {kind} of {n} item{'s' if n != 1 else ''}"


def _column(df: pd.DataFrame, given: str | None, names: Sequence[str], what: str, src: str) -> str | None:
    cols = [str(c) for c in df.columns]
    if given is not None:
        if given not in cols:
            raise BiodlInputError(f"no {what} column {given!r}; columns are: {', '.join(cols)}", path=src)
        return given
    low = {c.lower(): c for c in cols}
    return next((low[n.lower()] for n in names if n.lower() in low), None)


def items(
    data: Any,
    what: str,
    columns: Sequence[str],
    id_columns: Sequence[str],
    default_id: Callable[[int], str],
    *,
    column: str | None = None,
    id_column: str | None = None,
    option: str = "",
    missing_ok: bool = False,
) -> tuple[list[str], list[str], str]:
    """``(ids, values, source)`` of in-memory inputs, in their order.

    ``data`` is a list / tuple / 1-D array of strings (ids ``default_id(i)``, 0-based ``i``), a
    dict or pandas Series of id -> string, or a DataFrame with a column named as one of
    ``columns`` (or ``column``, given by the user as the kind's option ``option``; ids from
    ``id_column``, one of ``id_columns``, else the index).
    Every value must be a string: a number or a missing value is an error naming its item
    (``missing_ok``: a missing value, ``None`` or NaN, is an empty string, for a reader that
    skips empty items when told to).
    """
    src = describe(data)
    whats = what if what.endswith("S") else what + "s"  # "SMILES" is its own plural
    if isinstance(data, (str, bytes)):
        raise BiodlInputError(f"a single string is not a list of {whats}: give a list (['...'])")
    if isinstance(data, pd.DataFrame):
        col = _column(data, column, columns, what, src)
        if col is None:
            cols = ", ".join(map(str, data.columns))
            raise BiodlInputError(
                f"no {what} column (looked for {', '.join(columns[:3])}; columns are: {cols}); "
                + (f"name it with {option}=NAME" if option else "name it"),
                path=src,
            )
        idc = _column(data, id_column, id_columns, "id", src)
        names = [str(c) for c in data.columns]
        for c in (col, idc):
            if c is not None and names.count(c) > 1:
                raise BiodlInputError(f"has {names.count(c)} columns named {c!r}", path=src)
        values = data[col].tolist()
        ids = [str(v) for v in data[idc].tolist()] if idc is not None else index_ids(data.index, default_id)
    elif isinstance(data, pd.Series):
        values = data.tolist()
        ids = index_ids(data.index, default_id)
    elif isinstance(data, Mapping):
        ids = [str(k) for k in data]
        values = list(data.values())
    elif isinstance(data, np.ndarray):
        if data.ndim != 1:
            raise BiodlInputError(f"a {data.ndim}-D array: give a 1-D array or list of {whats}", path=src)
        values = data.tolist()
        ids = [default_id(i) for i in range(len(values))]
    elif isinstance(data, Sequence):
        values = list(data)
        ids = [default_id(i) for i in range(len(values))]
    else:
        raise BiodlInputError(
            f"cannot read a {type(data).__name__} as {whats}: give a path, a list of strings, a dict "
            "or pandas Series of id -> string, or a DataFrame"
        )
    if not values:
        raise BiodlInputError(f"no {whats} (the input is empty)", path=src)
    for i, v in enumerate(values):
        if what == "SMILES" and type(v).__name__ == "Mol" and type(v).__module__.startswith("rdkit"):
            from rdkit import Chem

            values[i] = v = Chem.MolToSmiles(v)  # an RDKit molecule, as a notebook holds it
        if not isinstance(v, str):
            missing = v is None or (isinstance(v, float) and np.isnan(v))
            if missing and missing_ok:
                values[i] = ""
                continue
            shown = "a missing value" if missing else repr(v)
            raise BiodlInputError(
                f"item {i + 1} is {shown} ({type(v).__name__}), not a {what} string", path=src, record=ids[i]
            )
    return ids, values, src


def index_ids(index: pd.Index, default_id) -> list[str]:
    """The ids of a pandas object's rows: a ``RangeIndex`` (the default index, or what a slice
    leaves of it) as the default ids of its values (row 5 is ``default_id(5)`` in the whole frame
    and in ``frame.iloc[5:8]``), any other index as its values' text (integer ids such as
    compound numbers are kept as written)."""
    if isinstance(index, pd.RangeIndex):
        return [default_id(int(v)) for v in index]
    return [str(v) for v in index]


#: Columns a multi-class model's labels are looked for in, when not named (as the file readers do).
CLASS_COLUMNS = ("label", "labels", "class", "y", "target")


def labels(
    data: Any,
    given: Any,
    n: int,
    src: str,
    label_names: Sequence[str],
    classes: Sequence[str] | None = None,
    ids: Sequence[str] | None = None,
) -> np.ndarray:
    """``(n, k)`` float32 labels of ``n`` in-memory items for an evaluation (NaN: missing).

    ``given`` is one label per item (a list, array or Series; ``(n, k)`` for a model with k
    outputs), or, when ``data`` is a DataFrame, the name(s) of its label column(s); ``None``
    takes the DataFrame's columns named as the model's labels (a multi-class model: the first
    of :data:`CLASS_COLUMNS`, in any case). Class names (or their codes) for a multi-class
    model (``classes``). A Series or DataFrame of labels indexed by the items' ``ids`` (in
    another order) is matched to them by id, not by position (:func:`labels_in_item_order`).
    """
    names_columns = (
        isinstance(given, (list, tuple))
        and bool(given)
        and all(isinstance(c, str) for c in given)
        and isinstance(data, pd.DataFrame)
        and set(given) <= set(map(str, data.columns))
        # as long as the items, they may be the items' labels (class names): columns only if not
        and (len(given) != n or classes is None or not set(given) <= set(classes))
    )
    if given is None or isinstance(given, str) or names_columns:
        if not isinstance(data, pd.DataFrame):
            raise BiodlInputError(
                "evaluation needs labels: give labels=[...] (one per item)"
                + (" or a DataFrame with the model's label column(s)" if given is None else ""),
                path=src,
            )
        if given is None and classes is not None:  # multi-class: one column of class names
            low = {str(c).lower(): str(c) for c in data.columns}
            found = next((low[c] for c in CLASS_COLUMNS if c in low), None)
            if found is None:
                raise BiodlInputError(
                    f"no label column (looked for {', '.join(CLASS_COLUMNS)}; columns are: "
                    f"{', '.join(map(str, data.columns))}); give labels=COLUMN or labels=[...]",
                    path=src,
                )
            cols = [found]
        else:
            cols = list(label_names) if given is None else [given] if isinstance(given, str) else list(given)
            if given is None:  # the model's label columns, found as a file's are: in any case
                low = {str(c).lower(): c for c in data.columns}
                cols = [c if c in data.columns else low.get(str(c).lower(), c) for c in cols]
                if len(cols) == 1 and cols[0] not in data.columns:
                    cols = [next((low[c] for c in CLASS_COLUMNS if c in low), cols[0])]
        missing = [c for c in cols if c not in data.columns]
        if missing:
            raise BiodlInputError(
                f"no label column(s) {', '.join(map(repr, missing))} (columns are: "
                f"{', '.join(map(str, data.columns))}); give labels=COLUMN or labels=[...]",
                path=src,
            )
        given = data[cols[0]] if len(cols) == 1 else data[cols]
    elif isinstance(given, (pd.Series, pd.DataFrame)) and ids is not None:
        given = labels_in_item_order(given, data, ids, src)
    named = {str(c): c for c in given.columns} if isinstance(given, pd.DataFrame) else {}
    if len(label_names) > 1 and set(map(str, label_names)) <= set(named):
        # columns named as the model's outputs: taken by name, in the model's order
        given = given[[named[str(n)] for n in label_names]]
    if isinstance(given, Iterator):  # a generator: read once, as a list
        given = list(given)
    raw = (
        given.to_numpy() if isinstance(given, (pd.Series, pd.DataFrame)) else np.asarray(given, dtype=object)
    )
    if raw.ndim == 0 or len(raw) != n:
        got = "one value" if raw.ndim == 0 else f"{len(raw)} labels"
        raise BiodlInputError(f"{got} for {n} items: give one label per item", path=src)
    if classes is not None:  # multi-class: names (or codes) of the model's classes
        flat = raw.reshape(n, -1)
        if flat.shape[1] != 1:
            raise BiodlInputError("a multi-class model takes one class per item", path=src)
        code = {c: i for i, c in enumerate(classes)}
        out = np.empty((n, 1), np.float32)
        for i, v in enumerate(flat[:, 0]):
            number = isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(
                v, (bool, np.bool_)
            )
            if isinstance(v, str) and v in code:
                out[i, 0] = code[v]
            elif number and float(v).is_integer() and 0 <= int(v) < len(classes):  # a class code, 0-based
                out[i, 0] = int(v)
            else:
                raise BiodlInputError(
                    f"label {v!r} of item {i + 1} is not one of the model's classes ({', '.join(classes)})",
                    path=src,
                )
        return out
    try:
        y = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):
        flat = raw.reshape(-1)
        bad = next(i for i, v in enumerate(flat) if not parses_as_number(v))
        raise BiodlInputError(
            f"label {flat[bad]!r} (item {bad // max(1, flat.size // n) + 1}) is not a number", path=src
        ) from None
    y = y.reshape(n, -1) if y.ndim == 1 else y
    if y.ndim != 2:
        raise BiodlInputError(f"labels of shape {y.shape}: give (items,) or (items, outputs)", path=src)
    return y.astype(np.float32)  # infinite values: refused by check_label_values, as a file's


def labels_in_item_order(
    given: pd.Series | pd.DataFrame, data: Any, ids: Sequence[str], src: str
) -> pd.Series | pd.DataFrame:
    """Labels given as a Series / DataFrame, in the items' order. Taken by position when indexed
    as the input ``data`` is (``df["label"]`` of the same DataFrame), when the items have no ids of
    their own (a list) or the index is 0..n-1; matched by id when the items have ids (a dict, a
    Series, a DataFrame) and the index holds them (in another order); refused otherwise."""
    if isinstance(data, (pd.Series, pd.DataFrame)) and given.index.equals(data.index):
        return given  # the items' own rows (a column of the same frame, or of the same subset)
    own_ids = isinstance(data, (pd.Series, pd.DataFrame, Mapping))
    index = [str(v) for v in given.index]
    if index == list(ids) or not own_ids:
        return given
    seen: set[str] = set()
    for v in index:
        if v in seen:
            raise BiodlInputError(
                f"the labels' index repeats {v!r}: labels are matched to items by id", path=src
            )
        seen.add(v)
    if len(index) == len(ids) and seen == set(ids):
        return given.set_axis(index).loc[list(ids)]
    if isinstance(given.index, pd.RangeIndex):
        return given
    missing = next((i for i in ids if i not in seen), None)
    what = f"has no label for item {missing!r}" if missing is not None else "names items that are not inputs"
    raise BiodlInputError(
        f"the labels' index {what}: labels given as a Series or DataFrame indexed by id are matched to "
        "the items by id; give a list (or .to_numpy()) for labels in the items' order",
        path=src,
    )
