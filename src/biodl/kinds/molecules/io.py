"""Read molecules with targets: CSV/TSV/SMILES tables (plain or gzip) and SDF (RDKit).

Every SMILES is parsed and sanitised by RDKit. A molecule RDKit rejects is reported with its
line (tables) or record (SDF: number, title and the line it starts on) and RDKit's reason; with
``skip_invalid=True`` such rows are dropped (and counted) instead.
"""

from __future__ import annotations

import gzip
import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from rdkit import Chem, rdBase

from biodl.errors import BiodlInputError
from biodl.io._util import (
    F32_MAX,
    FLOAT_FORMAT,
    GZIP_MAGIC,
    RowLines,
    guess_separator,
    input_errors,
    note,
    open_text,
    parses_as_number,
    unshift_columns,
    warn_duplicate_ids,
)

__all__ = ["InvalidMolecule", "MoleculeTable", "parse_smiles", "read_molecules", "write_table"]

SMILES_COLUMNS = (
    "smiles",
    "canonical_smiles",
    "canonicalsmiles",  # PubChem
    "isomeric_smiles",
    "isomericsmiles",
    "smi",
    "mol",
    "molecule",
    "drug",  # Therapeutics Data Commons (Drug_ID, Drug, Y)
)
ID_COLUMNS = (
    "id",
    "name",
    "compound id",
    "compound_id",
    "mol_id",
    "molecule_id",
    "molecule_chembl_id",  # ChEMBL
    "chembl_id",
    "drug_id",  # TDC
    "cid",  # PubChem
    "pubchem_cid",
    "inchi_key",
    "inchikey",
    "cmpd_id",
)
TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".smi", ".smiles", ".tab")
SDF_SUFFIXES = (".sdf", ".sd", ".mol")


@dataclass
class InvalidMolecule:
    """A row RDKit could not turn into a molecule.

    ``line`` is the line (tables) or record (SDF) number, 1-based; ``where`` says it in words
    (``line 4``; ``record 6 ('cycloheptatriene', line 160)``).
    """

    line: int
    id: str
    smiles: str
    reason: str
    where: str = ""

    def __post_init__(self) -> None:
        if not self.where:
            self.where = f"line {self.line}"


@dataclass
class MoleculeTable:
    """Molecules read from one file, in file order.

    Attributes
    ----------
    ids
        Identifier of each molecule (the id column, SDF name, or the 1-based row number).
    smiles
        SMILES as given (SDF: RDKit canonical SMILES).
    mols
        Sanitised RDKit molecules.
    targets
        ``(n, n_targets)`` float32 (NaN = missing) or ``None`` when not read.
    target_names
        Target column names.
    lines
        Line (table) or record (SDF) number of each molecule, 1-based.
    invalid
        Rows that were dropped (``skip_invalid``) or, in prediction, kept with a reason.
    path
        The file.
    """

    ids: list[str]
    smiles: list[str]
    mols: list[Chem.Mol]
    targets: np.ndarray | None
    target_names: list[str]
    lines: list[int]
    invalid: list[InvalidMolecule] = field(default_factory=list)
    path: str = ""

    def __len__(self) -> int:
        return len(self.mols)

    def subset(self, idx: Sequence[int] | np.ndarray) -> MoleculeTable:
        """The molecules at ``idx`` (in that order)."""
        idx = [int(i) for i in idx]
        return MoleculeTable(
            [self.ids[i] for i in idx],
            [self.smiles[i] for i in idx],
            [self.mols[i] for i in idx],
            None if self.targets is None else self.targets[idx],
            list(self.target_names),
            [self.lines[i] for i in idx],
            [],
            self.path,
        )


def _first_reason(log: str) -> str:
    msgs = [re.sub(r"^\[[0-9:]+\]\s*", "", m).strip() for m in log.splitlines()]
    msgs = [m for m in msgs if m]
    for m in msgs:
        if not m.startswith("SMILES Parse Error: check for mistakes") and "Failed parsing SMILES" not in m:
            return m.replace("SMILES Parse Error: ", "SMILES parse error: ")
    return msgs[0] if msgs else ""


def parse_smiles(smiles: str) -> tuple[Chem.Mol | None, str]:
    """Parse and sanitise one SMILES with RDKit.

    Returns
    -------
    (mol, reason)
        The molecule, or ``None`` and RDKit's reason (e.g. ``Explicit valence for atom # 1
        N, 4, is greater than permitted``) without printing RDKit's log.
    """
    s = smiles.strip() if isinstance(smiles, str) else ""
    if not s:
        return None, "empty SMILES"
    capture = getattr(rdBase, "CaptureErrorLog", None)
    if capture is not None:
        with capture() as cap:
            mol = Chem.MolFromSmiles(s)
        log = cap.messages if mol is None else ""
    else:  # pragma: no cover - RDKit without CaptureErrorLog
        with rdBase.BlockLogs():
            mol = Chem.MolFromSmiles(s)
        log = ""
    if mol is None:
        if not log:
            with rdBase.BlockLogs():
                raw = Chem.MolFromSmiles(s, sanitize=False)
            if raw is None:
                log = "SMILES syntax error"
            else:
                log = _chemistry_problem(raw) or "RDKit could not sanitise the molecule"
        return None, _first_reason(log) or "RDKit could not parse the SMILES"
    if mol.GetNumAtoms() == 0:
        return None, "no atoms"
    return mol, ""


def _find_column(
    cols: Sequence[str], wanted: str | None, candidates: Sequence[str], what: str, path
) -> str | None:
    lower = {c.lower().strip(): c for c in cols}
    if wanted:
        if wanted in cols:
            return wanted
        if wanted.lower() in lower:
            return lower[wanted.lower()]
        raise BiodlInputError(f"no {what} column {wanted!r} (columns: {', '.join(cols)})", path=path)
    for c in candidates:
        if c in lower:
            return lower[c]
    return None


def _say_row_number_ids(path, df: pd.DataFrame, others: list[str]) -> None:
    """Say that the ids are row numbers when the table has text columns that could be its ids
    (ChEMBL's ``molecule_chembl_id`` was dropped from the predictions without a word)."""
    text = [c for c in others if not all(parses_as_number(v) for v in df[c].head(50) if v)]
    if text:
        note(
            f"[biodl] note: {path}: no identifier column found (looked for "
            f"{', '.join(ID_COLUMNS[:6])}, ...): the molecules are numbered by row; name yours "
            f"with --set id_col=NAME (e.g. {text[0]!r})"
        )


def _split_smi_line(text: str, sep: str) -> list[str]:
    """The fields of one line of a header-less SMILES file: the SMILES and (if any) the name.
    Whitespace-separated: the name is the rest of the line (it may hold spaces), as in Daylight
    ``.smi`` files and RDKit's ``SmilesMolSupplier``."""
    text = text.strip()
    if sep == "\t" or sep == ",":
        return [f.strip() for f in text.split(sep)[:2]]
    return [f.strip() for f in text.split(None, 1)]


def _is_header_less(head: str, sep: str, names: Sequence[str]) -> bool:
    """Whether the first line of a ``.smi`` / ``.smiles`` file is a molecule, not a header:
    its first field parses as a SMILES and is no known (or requested) column name."""
    first = _split_smi_line(head, sep)[0] if head.strip() else ""
    known = {c.lower() for c in (*SMILES_COLUMNS, *ID_COLUMNS, *names)}
    if not first or first.lower() in known:
        return False
    with rdBase.BlockLogs():
        return Chem.MolFromSmiles(first) is not None


def _read_header_less(path: Path, opener, sep: str) -> pd.DataFrame:
    """A header-less SMILES file: column ``smiles`` (field 1) and ``name`` (field 2, or the
    rest of the line; empty when absent); blank lines and ``#`` comments are skipped. The
    1-based line of each row is in ``frame.attrs["lines"]``."""
    smiles, names, lines = [], [], []
    try:
        with input_errors(path), opener(path, "rt") as fh:
            for i, text in enumerate(fh, 1):
                if not text.strip() or text.lstrip().startswith("#"):
                    continue
                f = _split_smi_line(text, sep)
                smiles.append(f[0])
                names.append(f[1] if len(f) > 1 else "")
                lines.append(i)
    except (OSError, UnicodeDecodeError) as e:
        raise BiodlInputError(f"cannot read the file ({e})", path=path) from None
    df = pd.DataFrame({"smiles": smiles, "name": names}, dtype=str)
    df.attrs["lines"] = lines
    df.attrs["header_less"] = True
    return df


def _read_frame(path: Path, names: Sequence[str] = ()) -> pd.DataFrame:
    """The table at ``path`` as strings. A ``.smi`` / ``.smiles`` file whose first line is a
    molecule (a SMILES that is no known column name, nor one of ``names``) is read without a
    header (:func:`_read_header_less`), as RDKit's ``SmilesMolSupplier`` reads it."""
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]

    def opener(p, _mode):  # plain or gzip told by the first bytes, not the name
        return open_text(p)

    try:
        with input_errors(path), opener(path, "rt") as fh:
            head = fh.readline()
            while (
                head
                and (not head.strip() or head.lstrip().startswith("#"))
                and name.endswith((".smi", ".smiles"))
            ):
                head = fh.readline()
    except (OSError, UnicodeDecodeError) as e:
        raise BiodlInputError(f"cannot read the file ({e})", path=path) from None
    if not head.strip():
        raise BiodlInputError("the file is empty", path=path)
    if name.endswith((".tsv", ".tab")):
        sep = "\t"
    else:  # a tab, a comma; or in a .csv without commas a tab or ';' (spreadsheet exports)
        sep = guess_separator(path, head, default=None)
        if sep is None:
            sep = r"\s+" if name.endswith((".smi", ".smiles", ".txt")) else ","
    if name.endswith((".smi", ".smiles")) and _is_header_less(head, sep, ()):
        if not _is_header_less(head, sep, names):
            note(
                f"[biodl] warning: {path}: line 1 ({head.strip()!r}) is a valid SMILES but is read as "
                "the header line, as the column name given with smiles_col/id_col is in it; without "
                "that option the file is read as header-less SMILES (SMILES, name)"
            )
        else:
            return _read_header_less(path, opener, sep)
    try:
        with input_errors(path), open_text(path) as fh:
            df = pd.read_csv(
                fh, sep=sep, dtype=str, keep_default_na=False, engine="python" if sep == r"\s+" else "c"
            )
    except BiodlInputError:
        raise
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as e:
        raise BiodlInputError(f"cannot parse the table ({e})", path=path) from None
    df = unshift_columns(df, path)
    df.columns = [str(c).strip() for c in df.columns]
    df.attrs["sep"] = sep
    return df


#: Target values read as missing (besides an empty one), any case.
_MISSING = ("nan", "na", "none", "null")


def _to_float(v: str, path, line: int, col: str, where: str = "", value_line: int = 0) -> float:
    """``v`` as a float (empty / NaN / NA: NaN). ``line`` is the table line, or with ``where``
    (its place in words, e.g. an SDF record) the SDF record number; ``value_line``: the file
    line of the value, when known."""
    v = v.strip()
    if v == "" or v.lower() in _MISSING:
        return np.nan
    try:
        x = float(v)
    except ValueError:
        hint = ""
        if "," in v:
            try:
                float(v.replace(",", "."))
                hint = " (a decimal comma? write numbers with a decimal point)"
            except ValueError:
                pass
        raise _target_error(f" is not a number: {v!r}", hint, path, line, col, where, value_line) from None
    if abs(x) <= F32_MAX:
        return x
    # infinite, or infinite once stored as float32 (1e39): refused here, by line and molecule
    what = "infinite" if np.isinf(x) else "beyond float32's range (+-3.4e38)"
    raise _target_error(f": {v} is {what}", "", path, line, col, where, value_line)


def _target_error(
    problem: str, hint: str, path, line: int, col: str, where: str, value_line: int
) -> BiodlInputError:
    """The error of a bad target value: a table's names its line; an SDF's its record (``where``,
    the error's record ``line``) and the value's line."""
    if not where:
        return BiodlInputError(f"target {col!r}{problem}{hint}", path=path, record=line)
    at = f" (on line {value_line})" if value_line else ""
    err = BiodlInputError(f"{where}: target {col!r}{problem}{at}{hint}", path=path)
    err.record = line
    return err


def _select_targets(
    cols: list[str], frame: pd.DataFrame, target: str | Sequence[str] | None, skip: set[str], path
) -> list[str]:
    if target is None or (isinstance(target, str) and not target.strip()):
        return []
    if isinstance(target, str):
        if target.strip().lower() == "all":
            out = []
            for c in cols:
                if c in skip:
                    continue
                vals = pd.to_numeric(frame[c].replace("", np.nan), errors="coerce")
                if vals.notna().any() and vals.notna().sum() == (frame[c].str.strip() != "").sum():
                    out.append(c)
            if not out:
                raise BiodlInputError("--target all: no numeric columns found", path=path)
            return out
        names = [t.strip() for t in target.split(",") if t.strip()]
    else:
        names = list(target)
    return [_find_column(cols, n, (), "target", path) for n in names]  # type: ignore[misc]


def read_molecules(
    path: str | Path,
    target: str | Sequence[str] | None = None,
    smiles_col: str | None = None,
    id_col: str | None = None,
    require_targets: bool = True,
    skip_invalid: bool = False,
    keep_invalid: bool = False,
) -> MoleculeTable:
    """Read molecules (and their targets) from a table or an SDF file.

    Parameters
    ----------
    path
        CSV/TSV/``.smi``/``.smiles`` table (gzip allowed) with a SMILES column, or SDF. A
        ``.smi``/``.smiles`` file whose first line is a molecule has no header: ``SMILES`` or
        ``SMILES name`` per line (no targets).
    target
        Target column(s) / SDF property(ies): a comma-separated string, a list, or ``all``
        (every numeric column). Missing values (empty, NaN) are kept as NaN and masked in
        the loss and metrics.
    smiles_col, id_col
        Column names (default: ``smiles`` / ``id``, ``name``, ``Compound ID``, ... found
        case-insensitively; ids default to the row number).
    require_targets
        Raise if ``target`` is not given or names no column.
    skip_invalid
        Drop molecules RDKit rejects (they are listed in ``invalid``) instead of raising.
    keep_invalid
        For prediction: record invalid rows in ``invalid`` without raising (implies
        ``skip_invalid``).

    Raises
    ------
    BiodlInputError
        Naming the file, the line/record and the problem (missing column, non-numeric
        target, SMILES RDKit rejects, ...).
    """
    p, records, target_names, is_sdf = _records(path, target, smiles_col, id_col, require_targets)
    return _molecule_table(records, target_names, str(p), is_sdf, skip_invalid, keep_invalid)


def is_sdf_path(path: str | Path) -> bool:
    """Whether ``path`` names an SDF / MOL file (by its suffix, ``.gz`` allowed)."""
    low = Path(path).name.lower()
    return (low[:-3] if low.endswith(".gz") else low).endswith(SDF_SUFFIXES)


def iter_molecules(
    path: str | Path,
    rows: int,
    *,
    smiles_col: str | None = None,
    id_col: str | None = None,
    skip_invalid: bool = False,
    keep_invalid: bool = False,
) -> Iterator[MoleculeTable]:
    """:func:`read_molecules` (no targets) in pieces of ``rows`` valid molecules, in file order:
    the file's text is read whole (a few bytes a molecule), its SMILES parsed a piece at a time,
    so that RDKit's molecules (about 17 KB each) are held for one piece only. Every piece but the
    last holds exactly ``rows`` valid molecules (and the invalid rows among them), so scoring in
    pieces batches the molecules as scoring the whole file does. Repeated ids are said once, over
    the whole file, after the last piece."""
    p, records, target_names, is_sdf = _records(path, None, smiles_col, id_col, False)
    piece: list = []
    valid: list[str] = []  # the ids of the valid molecules, for the duplicate-id warning
    n_valid = 0
    yielded = False
    for k, (line, rid, smi, mol, y, reason, where) in enumerate(records):
        if mol is None and not reason:
            mol, reason = parse_smiles(smi)
        if mol is None and not (skip_invalid or keep_invalid):  # refused, with the file's count
            invalid = [InvalidMolecule(line, rid, smi, reason, where)]
            for r in records[k + 1 :]:
                m, why = (r[3], r[5]) if r[3] is not None or r[5] else parse_smiles(r[2])
                if m is None:
                    invalid.append(InvalidMolecule(r[0], r[1], r[2], why, r[6]))
            raise _invalid_error(invalid, str(p), is_sdf)
        piece.append((line, rid, smi, mol, y, reason, where))
        if mol is not None:
            n_valid += 1
            valid.append(rid)
        if n_valid == rows:
            yield _molecule_table(
                piece, target_names, str(p), is_sdf, skip_invalid, keep_invalid, warn_ids=False
            )
            piece, n_valid, yielded = [], 0, True
    if piece or not yielded:
        yield _molecule_table(piece, target_names, str(p), is_sdf, skip_invalid, keep_invalid, warn_ids=False)
    warn_duplicate_ids(valid, str(p), "molecule id")


def _records(path, target, smiles_col, id_col, require_targets: bool) -> tuple[Path, list, list[str], bool]:
    """``(path, records, target names, is_sdf)`` of :func:`read_molecules`: one record
    ``(line, id, smiles, mol, targets, reason, where)`` per row (SDF: its molecule parsed)."""
    from biodl.io._util import check_file

    p = check_file(path)  # missing, a directory or a pipe: one clear error
    is_sdf = is_sdf_path(p)
    if is_sdf:
        rows = _sdf_rows(p, target, id_col)
        target_names = rows[1]
        records = rows[0]
    else:
        df = _read_frame(p, [n for n in (smiles_col, id_col) if n])
        cols = list(df.columns)
        header_less = bool(df.attrs.get("header_less"))
        if header_less and target is not None and not (isinstance(target, str) and not target.strip()):
            raise BiodlInputError(
                "the file has no header line (line 1 is a molecule: SMILES and name), so it has no "
                "target columns; add a header line naming the columns (e.g. 'smiles name TARGET')",
                path=p,
            )
        sc = _find_column(cols, smiles_col, SMILES_COLUMNS, "SMILES", p)
        if sc is None:
            raise BiodlInputError(
                f"no SMILES column (looked for {', '.join(SMILES_COLUMNS)}; columns: {', '.join(cols)}); "
                "name it with --set smiles_col=NAME",
                path=p,
            )
        ic = _find_column(cols, id_col, ID_COLUMNS, "id", p)
        if header_less and not any(df["name"]):
            ic = None  # SMILES only: ids are the row numbers
        target_names = _select_targets(cols, df, target, {sc, ic} if ic else {sc}, p)
        if ic is None and not header_less:
            _say_row_number_ids(p, df, [c for c in cols if c != sc and c not in target_names])
        records = []
        smiles_vals = df[sc].tolist()
        id_vals = df[ic].tolist() if ic else [str(i + 1) for i in range(len(df))]
        if header_less:  # a line without a name: its row number
            id_vals = [v or str(i + 1) for i, v in enumerate(id_vals)]
        tvals = [df[t].tolist() for t in target_names]
        file_lines = df.attrs.get("lines") or RowLines(p, df.attrs.get("sep", ","), len(df))
        for i, smi in enumerate(smiles_vals):
            line = file_lines[i]
            y = [_to_float(tv[i], p, line, t) for tv, t in zip(tvals, target_names, strict=True)]
            records.append((line, str(id_vals[i]), smi, None, y, "", f"line {line}"))
    if require_targets and not target_names:
        raise BiodlInputError(
            "no target given: name the target column(s) with --target (comma-separated, or 'all')", path=p
        )
    return p, records, target_names, is_sdf


def molecules_from_memory(
    data,
    *,
    smiles_col: str | None = None,
    id_col: str | None = None,
    also: Sequence[str] = (),
    skip_invalid: bool = False,
    keep_invalid: bool = False,
) -> MoleculeTable:
    """A :class:`MoleculeTable` of in-memory SMILES (:func:`biodl.io.memory.items`: a list, a
    dict or Series of id -> SMILES, or a DataFrame with a SMILES column: ``smiles_col``, else
    the first of ``also`` and the usual names), without targets (an evaluation adds them); ids
    default to the item numbers. Errors name the item's id."""
    from biodl.io import memory

    ids, smiles, src = memory.items(
        data,
        "SMILES",
        (*also, *SMILES_COLUMNS),
        ID_COLUMNS,
        lambda i: str(i + 1),
        column=smiles_col,
        id_column=id_col,
        option="smiles_col",
        missing_ok=skip_invalid,  # a missing SMILES: an empty one, skipped as a file's would be
    )
    records = [
        (i + 1, rid, smi, None, [], "", f"item {i + 1} ({rid!r})")
        for i, (rid, smi) in enumerate(zip(ids, smiles, strict=True))
    ]
    return _molecule_table(records, [], src, False, skip_invalid, keep_invalid, memory=True)


def _molecule_table(
    records: list,
    target_names: list[str],
    p: str,
    is_sdf: bool,
    skip_invalid: bool,
    keep_invalid: bool,
    memory: bool = False,
    warn_ids: bool = True,
) -> MoleculeTable:
    """The table of parsed ``records`` (``(line, id, smiles, mol, targets, reason, where)``):
    invalid molecules raise, or are dropped (``skip_invalid``) or kept aside (``keep_invalid``);
    ``warn_ids``: say repeated ids (a piece of a file: the caller says them over the file)."""
    ids, smiles, mols, ys, lines, invalid = [], [], [], [], [], []
    for line, rid, smi, mol, y, reason, where in records:
        if mol is None and not reason:
            mol, reason = parse_smiles(smi)
        if mol is None:
            invalid.append(InvalidMolecule(line, rid, smi, reason, where))
            continue
        ids.append(rid)
        smiles.append(smi)
        mols.append(mol)
        ys.append(y)
        lines.append(line)
    if invalid and not (skip_invalid or keep_invalid):
        raise _invalid_error(invalid, p, is_sdf, memory)
    if not mols and not keep_invalid:
        raise BiodlInputError(f"no valid molecules in the {'input' if memory else 'file'}", path=p)
    targets = np.asarray(ys, dtype=np.float32).reshape(len(ys), len(target_names)) if target_names else None
    if warn_ids:
        warn_duplicate_ids(ids, p, "molecule id")
    return MoleculeTable(ids, smiles, mols, targets, target_names, lines, invalid, p)


def _invalid_error(
    invalid: list[InvalidMolecule], p: str, is_sdf: bool, memory: bool = False
) -> BiodlInputError:
    """The error for the first of the molecules RDKit rejected (and how many there are)."""
    bad = invalid[0]
    more = f" ({len(invalid)} invalid molecules in total)" if len(invalid) > 1 else ""
    hint = f"{bad.reason}{more}; use --skip-invalid (skip_invalid=True in Python) to skip them"
    if memory:
        return BiodlInputError(f"invalid SMILES {bad.smiles!r}: {hint}", path=p, record=bad.id)
    if not is_sdf:
        return BiodlInputError(f"invalid SMILES {bad.smiles!r}: {hint}", path=p, record=bad.line)
    err = BiodlInputError(f"{bad.where}: invalid molecule: {hint}", path=p)
    err.record = bad.line
    return err


def _sdf_bytes(p: Path) -> bytes:
    """The text of an SDF file as bytes, decompressed when it is gzip (told by its magic bytes):
    read whole first, so a truncated or corrupt gzip file is one clear error naming it (inside
    RDKit's reader it would surface as a SystemError)."""
    try:
        with input_errors(p):
            with open(p, "rb") as fh:
                data = fh.read()
            if data[:2] == GZIP_MAGIC:
                data = gzip.decompress(data)
    except OSError as e:
        raise BiodlInputError(f"cannot read the SDF file ({e})", path=p) from None
    # blank lines after the last record would be read by RDKit as one more (empty, invalid) record
    return data.rstrip() + b"\n" if data.strip() else data


def _sdf_rows(p: Path, target, id_col) -> tuple[list, list[str]]:
    records = []
    data = _sdf_bytes(p)
    with rdBase.BlockLogs():
        suppl = Chem.ForwardSDMolSupplier(io.BytesIO(data), sanitize=True, removeHs=True)
        mols = list(suppl)
    if not mols:
        raise BiodlInputError("no records in the SDF file", path=p)
    layout, terminated = _sdf_layout(data)
    base = p.name.lower().removesuffix(".gz")
    if layout and not terminated and not base.endswith(".mol"):
        start, title, _ = layout[-1]
        where = _sdf_where(len(layout), title, start)
        err = BiodlInputError(
            f"{where}: the last record has no '$$$$' line at its end: the file is truncated or corrupt "
            "(its data items may be cut short); check or re-download it (a complete record ends with "
            "a '$$$$' line)",
            path=p,
        )
        err.record = len(layout)
        raise err
    # the properties of every record, in order of first appearance (a record without a
    # measurement lacks its property: its target is missing, not the file's)
    props = list(dict.fromkeys(n for m in mols if m is not None for n in m.GetPropNames()))
    if isinstance(target, str) and target.strip().lower() == "all":
        # as for tables: the properties whose every given value is a number
        names = []
        for n in props:
            if n == id_col or n.strip().lower() in ID_COLUMNS:  # identifiers, numbers or not
                continue
            vals = [m.GetProp(n).strip() for m in mols if m is not None and m.HasProp(n)]
            vals = [v for v in vals if v and v.lower() not in _MISSING]
            if vals and all(parses_as_number(v) for v in vals):
                names.append(n)
        if not names:
            raise BiodlInputError(
                f"--target all: no numeric SDF property (properties: {', '.join(props)})", path=p
            )
    elif isinstance(target, str):
        names = [t.strip() for t in target.split(",") if t.strip()]
    else:
        names = list(target or [])
    for n in names:
        if n not in props:
            raise BiodlInputError(f"no SDF property {n!r} (properties: {', '.join(props)})", path=p)
    if len(layout) != len(mols):  # RDKit split the file otherwise: name records by number only
        layout = []
    # the text of each record RDKit rejected, for its reason (one more pass, only if there is one)
    failed = _record_texts(data, layout, [i for i, m in enumerate(mols) if m is None]) if layout else {}
    for i, m in enumerate(mols):
        rec = i + 1
        start, title, prop_lines = layout[i] if layout else (0, "", {})
        if m is not None and not title:
            title = m.GetProp("_Name") if m.HasProp("_Name") else ""
        where = _sdf_where(rec, title, start)
        if m is None:
            reason = _molblock_reason(failed[i]) if i in failed else ""
            reason = reason or "RDKit could not read or sanitise this SDF record"
            records.append((rec, title or str(rec), "", None, [np.nan] * len(names), reason, where))
            continue
        rid = m.GetProp(id_col) if id_col and m.HasProp(id_col) else (m.GetProp("_Name") or str(rec))
        y = []
        for n in names:
            if not m.HasProp(n):
                y.append(np.nan)
                continue
            y.append(_to_float(m.GetProp(n), p, rec, n, where=where, value_line=prop_lines.get(n, 0)))
        records.append((rec, rid, Chem.MolToSmiles(m), m, y, "", where))
    return records, names


def _record_texts(
    data: bytes, layout: list[tuple[int, str, dict[str, int]]], records: list[int]
) -> dict[int, str]:
    """``{record: its text}`` of the 0-based ``records`` of the SDF text ``data`` whose
    :func:`_sdf_layout` is ``layout``, in one pass (``{}`` when none is asked for)."""
    if not records:
        return {}
    starts = [s for s, _, _ in layout]
    wanted, last = set(records), max(records)
    lines: dict[int, list[bytes]] = {r: [] for r in records}
    rec = -1
    for n, raw in enumerate(io.BytesIO(data), 1):
        while rec + 1 < len(starts) and n >= starts[rec + 1]:
            rec += 1
        if rec in wanted:
            lines[rec].append(raw)
        elif rec > last:
            break
    return {r: b"".join(v).decode("utf-8", "replace") for r, v in lines.items()}


def _molblock_reason(block: str) -> str:
    """Why RDKit rejects the SDF record ``block``: RDKit's own message for a chemistry problem
    (``Explicit valence for atom # 1 C, 5, is greater than permitted``), or that its mol block
    cannot be parsed; ``""`` if the record reads here after all."""
    # (RDKit's parse errors of a mol block go to its C++ log, which CaptureErrorLog does not see)
    with rdBase.BlockLogs():
        raw_mol = Chem.MolFromMolBlock(block, sanitize=False, removeHs=False)
    if raw_mol is None:
        return "RDKit cannot parse its mol block (the counts, atom or bond lines)"
    return _chemistry_problem(raw_mol)


def _chemistry_problem(raw_mol) -> str:
    """RDKit's message for the first chemistry problem of an unsanitised molecule (``""``: none)."""
    with rdBase.BlockLogs():  # it also prints each problem to RDKit's log
        probs = Chem.DetectChemistryProblems(raw_mol)
    return probs[0].Message() if probs else ""


def _sdf_where(rec: int, title: str, start: int) -> str:
    """An SDF record in words: ``record 6 ('cycloheptatriene', line 160)`` (the line where the
    record starts)."""
    inner = [repr(title)] if title else []
    if start:
        inner.append(f"line {start}")
    return f"record {rec}" + (f" ({', '.join(inner)})" if inner else "")


_SDF_PROP = re.compile(rb"^>.*?<([^>]*)>")


def _sdf_layout(data: bytes) -> tuple[list[tuple[int, str, dict[str, int]]], bool]:
    """Per record of the SDF text ``data``: the 1-based line where it starts, its title (first
    line) and the line of each data item's value (``{property: line}``); and whether the last
    record ends with its ``$$$$`` line (``False``: the file is cut short, or a single mol file)."""
    out: list[tuple[int, str, dict[str, int]]] = []
    start, title, props, pending, filled = 1, None, {}, None, False
    for i, raw in enumerate(io.BytesIO(data), 1):
        text = raw.rstrip(b"\r\n")
        if title is None:
            start, title, props, filled = i, text.decode("utf-8", "replace").strip(), {}, False
        filled = filled or bool(text.strip())
        if pending is not None:
            props.setdefault(pending, i)
            pending = None
        if text.startswith(b"$$$$"):
            out.append((start, title, props))
            title = None
            continue
        m = _SDF_PROP.match(text)
        if m:
            pending = m.group(1).decode("utf-8", "replace")
    if title is not None and filled:  # a last record without $$$$
        out.append((start, title, props))
        return out, False
    return out, True


def write_table(path: str | Path, df: pd.DataFrame) -> Path:
    """Write a TSV atomically (temp file + rename)."""
    from biodl.io._util import atomic_write_text

    atomic_write_text(path, df.to_csv(sep="\t", index=False, float_format=FLOAT_FORMAT))
    return Path(path)
