"""Feature tables: one row per region (or sample), one numeric column per feature, labels in a
column or in a separate file (one per row), feature names in the header or in a names file.

Formats: TSV / CSV / whitespace-separated, plain or gzip (DECRES's ``*_Data.txt`` without a header,
``*_Classes.txt`` and ``*_Features.txt`` are read as they are). Validation: every problem (a
ragged row, a value that is not a number, NaN / inf, a label file of another length, names that
do not match the columns, a duplicated feature name) is one :class:`~biodl.errors.BiodlInputError`
naming the file, the line and the column.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from biodl.errors import BiodlInputError
from biodl.io._util import F32_MAX, check_file, guess_separator, open_text

LABEL_COLUMNS = ("label", "class", "Class", "Label", "y", "target")
ID_COLUMNS = ("id", "ID", "name", "region", "sample")


@dataclass
class FeatureTable:
    """Rows of features with their labels.

    Attributes
    ----------
    x
        ``(n, n_features)`` float32.
    feature_names
        Column names, in order.
    labels
        One label (string) per row, or ``None``.
    ids
        Row identifiers (an id column, else ``row1``, ``row2``, ...).
    source
        The file read.
    """

    x: np.ndarray
    feature_names: list[str]
    labels: list[str] | None
    ids: list[str]
    source: str = ""
    lines: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def subset(self, idx) -> FeatureTable:
        idx = np.asarray(idx, dtype=np.int64)
        return FeatureTable(
            self.x[idx], self.feature_names, None if self.labels is None else [self.labels[i] for i in idx],
            [self.ids[i] for i in idx], self.source, [self.lines[i] for i in idx] if self.lines else [],
        )  # fmt: skip

    def select_features(self, names: list[str], what: str = "model") -> FeatureTable:
        """The columns ``names`` (matched by normalised name: case and punctuation ignored), in that order."""
        cols = feature_positions(self.feature_names, names, what, self.source)
        return FeatureTable(self.x[:, cols], list(names), self.labels, self.ids, self.source, self.lines)


def feature_positions(have: list[str], names: list[str], what: str = "model", source=None) -> list[int]:
    """The positions in ``have`` of the features ``names`` (matched by normalised name), in that
    order; all must be there (the missing ones are named)."""
    pos = {norm_name(n): j for j, n in enumerate(have)}
    missing = [n for n in names if norm_name(n) not in pos]
    if missing:
        # a table without a header line has the names f1..fN: the names are in another file
        unnamed = bool(have) and have == [f"f{j + 1}" for j in range(len(have))]
        shown = ", ".join(have) if len(have) <= 12 else ", ".join(have[:12]) + ", ..."
        raise BiodlInputError(
            f"{len(missing)} of the {what}'s {len(names)} features are not in the table (missing: "
            f"{', '.join(missing[:8])}; the table has: {shown})"
            + (
                "; it has no header line: give the file of its feature names with --set feature_names=FILE"
                if unnamed
                else ""
            ),
            path=source or None,
        )
    return [pos[norm_name(n)] for n in names]


def norm_name(name: str) -> str:
    """A feature name compared across tables: upper case, letters and digits only
    (``H2A.Z`` = ``H2AZ``, ``POL2(POLR2A)`` = ``POL2POLR2A``)."""
    return re.sub(r"[^0-9A-Z]", "", str(name).upper())


def _split(line: str, sep: str | None) -> list[str]:
    return [f.strip() for f in (line.rstrip("\r\n").split(sep) if sep else line.split())]


def _number(tok: str) -> float | None:
    try:
        return float(tok)
    except ValueError:
        return None


def read_lines(path: str | Path, what: str) -> list[str]:
    """Non-empty lines of a names or labels file (plain or gzip), stripped."""
    p = check_file(path)
    with open_text(p) as fh:
        out = [ln.strip() for ln in fh]
    while out and not out[-1]:
        out.pop()
    for i, v in enumerate(out, 1):
        if not v:
            raise BiodlInputError(f"empty {what} line", path=p, record=i)
    if not out:
        raise BiodlInputError(f"no {what} in the file", path=p)
    return out


def read_features(
    path: str | Path,
    *,
    labels: str | Path | None = None,
    label_col: str | None = None,
    feature_names: str | Path | None = None,
    id_col: str | None = None,
    header: str = "auto",
    require_labels: bool = True,
) -> FeatureTable:
    """Read a feature table.

    Parameters
    ----------
    path
        The table (TSV / CSV / whitespace, plain or gzip).
    labels
        A file with one label per row of the table (DECRES's ``*_Classes.txt``); else the label
        column (``label_col``, or a column named label / class / ...).
    feature_names
        A file of feature names, one per line (for a table without a header).
    id_col
        Column of row identifiers (default: an id / name / region column, if any).
    header
        ``auto`` (a first line with a field that is not a number is a header), ``yes`` or ``no``.
    require_labels
        Labels must be found (training, evaluation); else they are optional (prediction).
    """
    p = check_file(path)
    if header not in ("auto", "yes", "no"):
        raise BiodlInputError(f"header must be auto, yes or no, got {header!r}")
    with open_text(p) as fh:
        raw = [(i, ln) for i, ln in enumerate(fh, 1) if ln.strip() and not ln.startswith("#")]
    if not raw:
        raise BiodlInputError("no rows in the table", path=p)
    sep = guess_separator(p, raw[0][1], default=None)
    first = _split(raw[0][1], sep)
    has_header = header == "yes" or (header == "auto" and any(_number(t) is None for t in first))
    names = first if has_header else None
    rows = raw[1:] if has_header else raw
    if not rows:
        raise BiodlInputError("the table has a header but no rows", path=p)
    width = len(first)
    label_j = id_j = None
    if names is not None:
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise BiodlInputError(f"duplicated column name(s): {', '.join(dup)}", path=p, record=raw[0][0])
        if label_col is not None and label_col not in names:
            raise BiodlInputError(f"no label column {label_col!r} (columns: {', '.join(names)})", path=p)
        if id_col is not None and id_col not in names:
            raise BiodlInputError(f"no id column {id_col!r} (columns: {', '.join(names)})", path=p)
        if labels is None:
            label_j = names.index(label_col) if label_col else next(
                (names.index(c) for c in LABEL_COLUMNS if c in names), None
            )  # fmt: skip
        id_j = (
            names.index(id_col) if id_col else next((names.index(c) for c in ID_COLUMNS if c in names), None)
        )
    elif label_col is not None or id_col is not None:
        raise BiodlInputError("label_col / id_col need a header line naming the columns", path=p)
    skip = {j for j in (label_j, id_j) if j is not None}
    feat_cols = [j for j in range(width) if j not in skip]
    x = np.empty((len(rows), len(feat_cols)), dtype=np.float32)
    row_labels, ids, lines = [], [], []
    for r, (line_no, line) in enumerate(rows):
        f = _split(line, sep)
        if len(f) != width:
            raise BiodlInputError(
                f"{len(f)} fields, expected {width} (as on the first line)", path=p, record=line_no
            )
        for k, j in enumerate(feat_cols):
            v = _number(f[j])
            col = names[j] if names else f"column {j + 1}"
            if v is None:
                raise BiodlInputError(f"{col}: not a number: {f[j]!r}", path=p, record=line_no)
            if not math.isfinite(v):
                raise BiodlInputError(f"{col}: {f[j]} is not allowed (NaN / inf); impute it first", path=p,
                                      record=line_no)  # fmt: skip
            if abs(v) > F32_MAX:  # infinite once stored as float32
                raise BiodlInputError(f"{col}: {f[j]} is beyond float32's range (+-3.4e38)", path=p,
                                      record=line_no)  # fmt: skip
            x[r, k] = v
        if label_j is not None:
            if not f[label_j]:
                raise BiodlInputError("empty label", path=p, record=line_no)
            row_labels.append(f[label_j])
        ids.append(f[id_j] if id_j is not None else f"row{r + 1}")
        lines.append(line_no)
    if feature_names is not None:
        fn = read_lines(feature_names, "feature name")
        if len(fn) != len(feat_cols):
            raise BiodlInputError(
                f"{len(fn)} feature names for {len(feat_cols)} feature columns of {p.name}",
                path=feature_names,
            )
        feat = fn
    else:
        feat = [names[j] for j in feat_cols] if names else [f"f{j + 1}" for j in range(len(feat_cols))]
    dup = sorted({n for n in feat if feat.count(n) > 1})
    if dup:
        raise BiodlInputError(f"duplicated feature name(s): {', '.join(dup)}", path=feature_names or p)
    out_labels: list[str] | None = row_labels if label_j is not None else None
    if labels is not None:
        out_labels = read_lines(labels, "label")
        if len(out_labels) != len(rows):
            raise BiodlInputError(f"{len(out_labels)} labels for the {len(rows)} rows of {p}", path=labels)
    if require_labels and out_labels is None:
        raise BiodlInputError(
            "no labels: give a label file (--labels FILE, one label per row) or name the label column "
            "(--set label_col=NAME)",
            path=p,
        )
    return FeatureTable(x, feat, out_labels, ids, str(p), lines)
