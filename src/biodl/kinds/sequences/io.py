"""Labelled sequence tables: TSV/CSV (optionally gzip) with a sequence column and one or
more label columns, including DeepBind's ``FoldID EventID seq Bound`` files, and labelled
FASTA (labels in the header as ``class:1`` or ``label=1``)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from biodl.errors import BiodlInputError
from biodl.io._util import RowLines, check_file, open_text, unshift_columns
from biodl.io.fasta import iter_fasta, read_fasta, validate_sequence

SEQ_COLUMNS = ("seq", "sequence", "sequences", "Sequence", "SEQ", "Seq")
LABEL_COLUMNS = ("Bound", "label", "labels", "Label", "class", "Class", "y", "target")
ID_COLUMNS = ("EventID", "id", "ID", "name", "Name", "seq_id")
_HEADER_LABEL = re.compile(r"(?:class|label)\s*[:=]\s*([^\s;|,]+)")


@dataclass
class SequenceTable:
    """Sequences with optional labels.

    Attributes
    ----------
    ids
        One identifier per sequence.
    seqs
        The sequences (strings, case kept).
    labels
        ``(n, n_labels)`` float32; NaN marks a missing label (masked in training). For a
        multi-class table, one column of class indices. ``None`` when unlabelled.
    label_names
        Names of the label columns.
    classes
        Class names for a multi-class table (index = class code), else ``None``.
    source
        The file the table came from.
    """

    ids: list[str]
    seqs: list[str]
    labels: np.ndarray | None = None
    label_names: list[str] = field(default_factory=list)
    classes: list[str] | None = None
    source: str | None = None

    def __len__(self) -> int:
        return len(self.seqs)

    def subset(self, idx) -> SequenceTable:
        idx = np.asarray(idx)
        return SequenceTable(
            ids=[self.ids[i] for i in idx],
            seqs=[self.seqs[i] for i in idx],
            labels=None if self.labels is None else self.labels[idx],
            label_names=list(self.label_names),
            classes=self.classes,
            source=self.source,
        )

    def fixed_length(self) -> int:
        """The common length of all sequences; raises a clear error if they differ."""
        if not self.seqs:
            raise BiodlInputError("no sequences", path=self.source)
        lengths = np.fromiter((len(s) for s in self.seqs), dtype=np.int64, count=len(self.seqs))
        if (lengths != lengths[0]).any():
            bad = int(np.argmax(lengths != lengths[0]))
            raise BiodlInputError(
                f"sequences must all have the same length here: {self.ids[bad]!r} has {lengths[bad]} bases, "
                f"{self.ids[0]!r} has {lengths[0]} (use --pad to pad with N, or trim the input)",
                path=self.source,
                record=self.ids[bad],
            )
        return int(lengths[0])

    @property
    def task_hint(self) -> str:
        """``binary``, ``multilabel``, ``multiclass`` or ``regression`` guessed from labels."""
        if self.labels is None:
            return "binary"
        if self.classes is not None:
            return "multiclass"
        vals = self.labels[~np.isnan(self.labels)]
        if vals.size and np.isin(vals, (0.0, 1.0)).all():
            return "binary" if self.labels.shape[1] == 1 else "multilabel"
        return "regression"


def _sep_for(path: Path, first_line: str) -> str:
    name = path.name.lower().removesuffix(".gz")
    if name.endswith(".csv"):  # a tab or ';' when the header has that and no comma (spreadsheet exports)
        from biodl.io._util import guess_separator

        return guess_separator(path, first_line) or ","
    if name.endswith((".tsv", ".seq", ".txt", ".tab")):
        return "\t"
    return "\t" if first_line.count("\t") >= first_line.count(",") else ","


def _default_column(names: tuple[str, ...], cols: list[str], skip: set | None = None) -> str | None:
    """The first of ``names`` that is a column of ``cols`` (not in ``skip``); failing that, the
    first whose name matches a column's but for case (``bound``, ``SEQUENCE``), when only one
    column so matches it."""
    skip = skip or set()
    exact = next((c for c in names if c in cols and c not in skip), None)
    if exact is not None:
        return exact
    for name in names:
        same = [c for c in cols if c.lower() == name.lower() and c not in skip]
        if len(same) == 1:
            return same[0]
    return None


def _cols_text(cols: list[str], limit: int = 12) -> str:
    """The column names for an error message: all of them when few, else the first ``limit``
    and how many there are (a 919-label table would otherwise print 919 names)."""
    if len(cols) <= limit:
        return ", ".join(cols)
    return ", ".join(cols[:limit]) + f", ... ({len(cols)} columns)"


def _expand_label_cols(label_cols: list[str], cols: list[str], skip: set[str]) -> list[str]:
    """Label columns named or matched: a name with ``*``/``?``/``[`` is a glob pattern over the
    column names (``--label-col 'f*'`` takes every column starting with f, in file order),
    ``all`` takes every column other than the sequence and id columns."""
    import fnmatch

    out: list[str] = []
    for c in label_cols:
        if c == "all" and "all" not in cols:
            got = [x for x in cols if x not in skip]
        elif any(ch in c for ch in "*?[") and c not in cols:
            got = [x for x in cols if fnmatch.fnmatchcase(x, c) and x not in skip]
            if not got:
                got = [c]  # reported as missing below
        else:
            got = [c]
        out += [x for x in got if x not in out]
    return out


def _table_start(path: str | Path) -> tuple[Path, str]:
    """The checked path of a sequence table and its column separator."""
    p = check_file(path)
    with open_text(p) as fh:
        first = fh.readline()
    if not first.strip():
        raise BiodlInputError("the file is empty (expected a header line)", path=p, record=1)
    return p, _sep_for(p, first)


def _parser_error(e: Exception, p: Path) -> BiodlInputError:
    m = re.search(r"line (\d+)", str(e))
    record = int(m.group(1)) if m else None
    return BiodlInputError(f"malformed table: {str(e).strip()}", path=p, record=record)


def _table_columns(
    p: Path,
    cols: list[str],
    seq_col: str | None,
    label_cols: list[str] | str | None,
    id_col: str | None,
    require_labels: bool,
    prefer_labels: list[str] | None,
) -> tuple[str, list[str], str | None]:
    """``(sequence column, label columns, id column)`` of a table with columns ``cols``
    (see :func:`read_sequence_table`)."""
    if seq_col is None:
        seq_col = _default_column(SEQ_COLUMNS, cols)
        if seq_col is None:
            import re

            if any(re.fullmatch(r"[ACGTUNRYSWKMBDHVacgtunryswkmbdhv]{8,}", c.strip()) for c in cols):
                raise BiodlInputError(
                    f"the first line looks like a sequence ({cols[0][:30]!r}), not a header: a table's "
                    "first line names its columns (e.g. 'seq' or 'id<TAB>seq<TAB>label'), and a FASTA "
                    "file has a '>' line before each sequence; add one of these",
                    path=p,
                    record=1,
                )
            raise BiodlInputError(
                f"no sequence column found (looked for {', '.join(SEQ_COLUMNS[:2])}, in any case; "
                f"columns are: {_cols_text(cols)}); name it with --seq-col",
                path=p,
                record=1,
            )
    elif seq_col not in cols:
        raise BiodlInputError(
            f"sequence column {seq_col!r} not found; columns are: {_cols_text(cols)}", path=p, record=1
        )
    if isinstance(label_cols, str):
        label_cols = [c.strip() for c in label_cols.split(",") if c.strip()]
    if id_col is None:
        id_col = _default_column(ID_COLUMNS, cols)
    if label_cols:
        label_cols = _expand_label_cols(label_cols, cols, {seq_col, id_col})
    elif prefer_labels and all(c in cols for c in prefer_labels) and seq_col not in prefer_labels:
        label_cols = list(prefer_labels)
    if not label_cols:
        found = _default_column(LABEL_COLUMNS, cols, skip={seq_col, id_col})
        label_cols = [found] if found else []
    if seq_col in label_cols:
        raise BiodlInputError(
            f"the label column(s) include the sequence column {seq_col!r}; name the label column(s) "
            f"with --label-col (columns are: {_cols_text(cols)})",
            path=p,
            record=1,
        )
    missing = [c for c in label_cols if c not in cols]
    if missing:
        raise BiodlInputError(
            f"label column(s) {', '.join(map(repr, missing))} not found; columns are: {_cols_text(cols)}",
            path=p,
            record=1,
        )
    if require_labels and not label_cols:
        raise BiodlInputError(
            f"no label column found (looked for {', '.join(LABEL_COLUMNS[:4])}, in any case; "
            f"columns are: {_cols_text(cols)}); name it with --label-col (a glob such as 'f*', "
            "or 'all', takes many)",
            path=p,
            record=1,
        )
    return seq_col, list(label_cols), id_col


def _table_sequences(
    df: pd.DataFrame,
    p: Path,
    seq_col: str,
    id_col: str | None,
    start: int,
    iupac_as_n: bool,
    uppercase: bool,
    sep: str,
) -> tuple[list[str], list[str]]:
    """``(ids, sequences)`` of the rows of ``df``, the ``start``-th data row of the file first
    (line numbers in errors and the default ids ``seq1, seq2, ...`` count from the file's top)."""
    seqs = df[seq_col].str.strip().tolist()
    if uppercase:
        seqs = [s.upper() for s in seqs]
    validate_all(seqs, p, RowLines(p, sep, len(seqs), start), iupac_as_n)  # raises with the line
    ids = df[id_col].tolist() if id_col else [f"seq{start + i + 1}" for i in range(len(seqs))]
    return ids, seqs


def read_sequence_table(
    path: str | Path,
    seq_col: str | None = None,
    label_cols: list[str] | str | None = None,
    id_col: str | None = None,
    require_labels: bool = True,
    iupac_as_n: bool = False,
    uppercase: bool = False,
    prefer_labels: list[str] | None = None,
) -> SequenceTable:
    """Read a TSV/CSV (optionally gzip) table of sequences and labels.

    Columns are found by name when not given: sequence in ``seq``/``sequence``, labels in
    ``Bound``/``label``/``class``..., ids in ``EventID``/``id``/``name``; ``label_cols`` may hold
    glob patterns (``f*``) or ``all`` (every column but the sequence and id); without them,
    ``prefer_labels`` (a model's label columns) when the table has them all. DeepBind's
    ``FoldID EventID seq Bound`` files are read as they are. Numeric label columns give
    binary/multi-label/regression targets (empty cells are missing labels); a single
    non-numeric label column gives a multi-class target.

    Raises
    ------
    BiodlInputError
        Missing file or column, an empty or invalid sequence (with its line), or a
        non-numeric value in a numeric label column (with its line).
    """
    p, sep = _table_start(path)
    try:
        with open_text(p) as fh:
            df = pd.read_csv(fh, sep=sep, dtype=str, keep_default_na=False, comment=None)
    except pd.errors.ParserError as e:
        raise _parser_error(e, p) from None
    df = unshift_columns(df, p)
    seq_col, label_cols, id_col = _table_columns(
        p, list(df.columns), seq_col, label_cols, id_col, require_labels, prefer_labels
    )
    ids, seqs = _table_sequences(df, p, seq_col, id_col, 0, iupac_as_n, uppercase, sep)

    labels = None
    classes = None
    if label_cols:
        raw = df[label_cols]
        missing = ("", "na", "nan", "n/a", "null")  # a missing label, any case (NaN, NA, N/A, ...)
        is_missing = raw.apply(lambda c: c.str.strip().str.lower().isin(missing))
        numeric = raw.apply(lambda c: pd.to_numeric(c.str.strip(), errors="coerce")).mask(is_missing)
        bad = numeric.isna() & ~is_missing
        if bad.to_numpy().any():
            if len(label_cols) == 1 and bad.to_numpy().mean() > 0.5:
                # a categorical label: multi-class
                col = raw.iloc[:, 0].str.strip()
                gap = is_missing.iloc[:, 0].to_numpy()
                if gap.any():  # ("NA" was a class of its own)
                    row = int(np.argmax(gap))
                    raise BiodlInputError(
                        f"missing class label ({col.iloc[row]!r}) in column {label_cols[0]!r}: give every "
                        "row its class, or leave the row out",
                        path=p,
                        record=RowLines(p, sep, len(df))[row],
                    )
                classes = sorted(col.unique().tolist())
                code = {c: i for i, c in enumerate(classes)}
                labels = col.map(code).to_numpy(dtype=np.float32)[:, None]
            else:
                r, c = np.argwhere(bad.to_numpy())[0]
                raise BiodlInputError(
                    f"non-numeric label {raw.iat[r, c]!r} in column {label_cols[c]!r}",
                    path=p,
                    record=RowLines(p, sep, len(df))[int(r)],
                )
        else:
            labels = numeric.to_numpy(dtype=np.float32)
    return SequenceTable(
        ids=ids, seqs=seqs, labels=labels, label_names=list(label_cols), classes=classes, source=str(p)
    )


#: Words of a two-word label column known to mean the positive / negative class (any case).
POSITIVE_WORDS = frozenset(
    {
        "1",
        "true",
        "t",
        "yes",
        "y",
        "bound",
        "positive",
        "pos",
        "active",
        "case",
        "present",
        "+",
        "target",
        "hit",
    }
)
NEGATIVE_WORDS = frozenset(
    {
        "0",
        "false",
        "f",
        "no",
        "n",
        "unbound",
        "negative",
        "neg",
        "inactive",
        "control",
        "absent",
        "-",
        "background",
        "nontarget",
        "non-target",
        "decoy",
    }
)


def positive_word(classes: list[str], positive: str | None, source) -> str:
    """Which of a two-word label column's ``classes`` is the positive class (label 1) of a binary
    task: ``positive`` when given (it must be one of them), else the one word of a known pair
    (``True``/``False``, ``yes``/``no``, ``bound``/``unbound``, ...). Anything else is refused:
    the words' alphabetical order would decide it silently."""
    if positive is not None:
        if positive not in classes:
            raise BiodlInputError(
                f"--set positive={positive}: not a label of the file (its labels: {', '.join(classes)})",
                path=source,
            )
        return positive
    if len(classes) == 2:
        low = [c.strip().lower() for c in classes]
        pos = [c for c, w in zip(classes, low, strict=True) if w in POSITIVE_WORDS]
        neg = [c for c, w in zip(classes, low, strict=True) if w in NEGATIVE_WORDS]
        if len(pos) == 1 and len(neg) == 1 and pos != neg:
            return pos[0]
    raise BiodlInputError(
        f"the labels are words ({', '.join(map(repr, classes))}), and a binary task needs to know which "
        "is the positive class (label 1): give --set positive=WORD, or write the labels as 1 / 0",
        path=source,
    )


def binary_from_words(table: SequenceTable, classes: list[str], source) -> SequenceTable:
    """``table`` (a two-word label column read as classes) with labels 0 / 1 by ``classes``
    (``[negative, positive]``, a model's), refusing a word that is neither."""
    words = table.classes or []
    other = [w for w in words if w not in classes]
    if other:
        raise BiodlInputError(
            f"label(s) {', '.join(map(repr, other))} are neither of the model's classes "
            f"({classes[0]!r} = 0, {classes[1]!r} = 1)",
            path=source,
        )
    code = np.array([classes.index(w) for w in words] + [np.nan], dtype=np.float32)
    lab = table.labels[:, 0]
    idx = np.where(np.isnan(lab), len(words), np.nan_to_num(lab)).astype(np.int64)
    table.labels = code[idx][:, None]
    table.classes = list(classes)
    return table


def validate_all(seqs: list[str], path, records, iupac_as_n: bool) -> None:
    """Check every sequence (a fast test first), raising for the first bad one with its
    ``records`` entry (a line number, or an id)."""
    for i, s in enumerate(seqs):
        if not s or not _quick_ok(s, iupac_as_n):
            validate_sequence(s, path, records[i], iupac_as_n)


def _quick_ok(s: str, iupac_as_n: bool) -> bool:
    allowed = "ACGTUNacgtunRYSWKMBDHVryswkmbdhv" if iupac_as_n else "ACGTUNacgtun"
    return not s.strip(allowed)


def read_labelled_fasta(
    path: str | Path, require_labels: bool = True, iupac_as_n: bool = False, uppercase: bool = False
) -> SequenceTable:
    """Read FASTA whose headers carry a label as ``class:1`` or ``label=1`` (e.g. deepRAM/iONMF
    files). Without labels in the headers, ``require_labels=False`` gives an unlabelled table."""
    p = check_file(path)
    recs = read_fasta(p, iupac_as_n=iupac_as_n)
    raw_labels = []
    for r in recs:
        m = _HEADER_LABEL.search(r.description)
        raw_labels.append(m.group(1) if m else None)
    seqs = [r.sequence.upper() if uppercase else r.sequence for r in recs]
    ids = [r.name for r in recs]
    if all(v is None for v in raw_labels):
        if require_labels:
            raise BiodlInputError(
                "no labels in the FASTA headers (expected 'class:1' or 'label=1', e.g. '>seq1 class:1'); "
                "label the headers or give a table with a label column (for training, peak sequences "
                "without labels are positives: --shuffle-negatives auto or yes adds shuffled negatives)",
                path=p,
                record=recs[0].line,
            )
        return SequenceTable(ids=ids, seqs=seqs, source=str(p))
    missing = [i for i, v in enumerate(raw_labels) if v is None]
    if missing:
        r = recs[missing[0]]
        raise BiodlInputError(f"record {r.name!r} has no label in its header", path=p, record=r.line)
    try:
        labels = np.array([float(v) for v in raw_labels], dtype=np.float32)[:, None]
        classes = None
    except ValueError:
        classes = sorted(set(raw_labels))
        code = {c: i for i, c in enumerate(classes)}
        labels = np.array([code[v] for v in raw_labels], dtype=np.float32)[:, None]
    return SequenceTable(
        ids=ids, seqs=seqs, labels=labels, label_names=["label"], classes=classes, source=str(p)
    )


def _looks_like_fasta(p: Path) -> bool:
    with open_text(p) as fh:
        for line in fh:
            if line.strip() and not line.startswith(";"):  # ';' lines are FASTA comments
                return line.startswith(">")
    return False


def read_sequences(path: str | Path, require_labels: bool = True, **kwargs) -> SequenceTable:
    """Read a labelled (or, with ``require_labels=False``, unlabelled) sequence file of any
    supported kind: FASTA (labels in headers) or a TSV/CSV table."""
    p = check_file(path)
    if _looks_like_fasta(p):
        kw = {k: v for k, v in kwargs.items() if k in ("iupac_as_n", "uppercase")}
        return read_labelled_fasta(p, require_labels=require_labels, **kw)
    return read_sequence_table(p, require_labels=require_labels, **kwargs)


def iter_sequences(
    path: str | Path,
    rows: int = 100_000,
    seq_col: str | None = None,
    iupac_as_n: bool = False,
    uppercase: bool = False,
) -> Iterator[SequenceTable]:
    """The sequences of a FASTA file or TSV/CSV table (optionally gzip) as unlabelled
    :class:`SequenceTable` pieces of at most ``rows`` sequences, in file order: a file of any
    size in memory of one piece. Read and checked as :func:`read_sequences` reads them (the
    same errors, with the file's line numbers, raised when the reader reaches the bad
    record); label columns or header labels are not read."""
    import itertools

    if rows < 1:
        raise ValueError("rows must be at least 1")
    p = check_file(path)
    if _looks_like_fasta(p):
        recs = iter_fasta(p, iupac_as_n=iupac_as_n)
        while piece := list(itertools.islice(recs, rows)):
            seqs = [r.sequence.upper() if uppercase else r.sequence for r in piece]
            yield SequenceTable(ids=[r.name for r in piece], seqs=seqs, source=str(p))
        return
    p, sep = _table_start(p)
    try:
        with open_text(p) as fh:
            cols = list(pd.read_csv(fh, sep=sep, dtype=str, nrows=0).columns)
        seq_col, _, id_col = _table_columns(p, cols, seq_col, None, None, False, None)
        start, pieces = 0, 0
        with open_text(p) as fh:
            reader = pd.read_csv(fh, sep=sep, dtype=str, keep_default_na=False, comment=None, chunksize=rows)
            for df in reader:
                df = unshift_columns(df, p)
                ids, seqs = _table_sequences(df, p, seq_col, id_col, start, iupac_as_n, uppercase, sep)
                start, pieces = start + len(df), pieces + 1
                yield SequenceTable(ids=ids, seqs=seqs, source=str(p))
        if not pieces:  # a header without rows: one empty table, as the whole-file reader gives
            yield SequenceTable(ids=[], seqs=[], source=str(p))
    except pd.errors.ParserError as e:
        raise _parser_error(e, p) from None


def viewpoint(seq: str, path: str | Path | None = None, record: str | int | None = None) -> str:
    """The uppercase viewpoint of a GraphProt-style sequence (lowercase flanks, uppercase
    centre): the stretch from its first to its last uppercase base (lowercase bases between
    them, if any, are kept, upper-cased).

    Raises
    ------
    BiodlInputError
        The sequence has no uppercase base (names ``path`` and ``record``).
    """
    upper = [i for i, c in enumerate(seq) if c.isupper()]
    if not upper:
        raise BiodlInputError(
            "no uppercase viewpoint in the sequence (viewpoint mode keeps only the uppercase "
            "part; --set viewpoint=false uses the whole sequence)",
            path=path,
            record=record,
        )
    return seq[upper[0] : upper[-1] + 1].upper()


def fold_case(table: SequenceTable, keep_viewpoint: bool) -> SequenceTable:
    """``table`` with every sequence upper-cased, or cut to its uppercase viewpoint
    (:func:`viewpoint`) when ``keep_viewpoint``."""
    if keep_viewpoint:
        table.seqs = [viewpoint(s, table.source, i) for s, i in zip(table.seqs, table.ids, strict=True)]
    else:
        table.seqs = [s.upper() for s in table.seqs]
    return table


def _require_fasta(p: Path, what: str) -> None:
    with open_text(p) as fh:
        for lineno, line in enumerate(fh, start=1):
            if line.strip():
                if not line.startswith(">"):
                    raise BiodlInputError(
                        f"{what} must be FASTA, but line {lineno} does not start with '>' "
                        f"({line.strip()[:30]!r})",
                        path=p,
                        record=lineno,
                    )
                return
    raise BiodlInputError(f"the file is empty ({what} must be FASTA)", path=p)


def read_fasta_pair(
    positives: str | Path, negatives: str | Path, iupac_as_n: bool = False, keep_viewpoint: bool | None = None
) -> SequenceTable:
    """A positives FASTA and a negatives FASTA (GraphProt's ``*.positives.fa`` /
    ``*.negatives.fa``) as one labelled table: label 1 for the first file's records, 0 for
    the second's, positives first; labels in the headers are ignored. Sequences keep their
    case (``keep_viewpoint=None``), are upper-cased (``False``) or cut to their uppercase
    viewpoint (``True``; see :func:`fold_case`).

    Raises
    ------
    BiodlInputError
        A file missing, empty or not FASTA, or an invalid record (file and record named).
    """
    tables = []
    for path, what in ((positives, "the positives file"), (negatives, "the negatives file (--negatives)")):
        p = check_file(path)
        _require_fasta(p, what)
        recs = read_fasta(p, iupac_as_n=iupac_as_n)
        part = SequenceTable([r.name for r in recs], [r.sequence for r in recs], source=str(p))
        if keep_viewpoint is not None:
            part = fold_case(part, keep_viewpoint)
        tables.append((part.ids, part.seqs))
    (pid, pseq), (nid, nseq) = tables
    labels = np.concatenate([np.ones(len(pseq), np.float32), np.zeros(len(nseq), np.float32)])[:, None]
    return SequenceTable(
        ids=pid + nid, seqs=pseq + nseq, labels=labels, label_names=["label"], source=str(positives)
    )
