"""Cytometry input: FCS files (2.0, 3.0, 3.1 through :mod:`flowio`), the arcsinh transform,
marker selection by name, and sample tables.

A *sample table* is a CSV (or TSV) with one row per sample::

    file,label,patient
    PBMC8_30min_patient1_Reference.fcs,Ref,1
    PBMC8_30min_patient1_BCR-XL.fcs,BCRXL,1

``file`` (also accepted: ``file_name``, ``filename``, ``path``, ``fcs``) is a path relative
to the table; ``label`` (also ``condition``, ``class``, ``phenotype``, ``y``) is a class name
or a number (regression); ``patient`` / ``group`` / ``donor`` (optional) groups samples for
leave-one-group-out evaluation; ``sample_id`` / ``shortname`` / ``id`` (optional) names the
sample (default: the file name). Every problem (missing or corrupt file, unknown marker,
missing label, ...) raises :class:`biodl.errors.BiodlInputError` naming the file, the record
and what is wrong.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from biodl.errors import BiodlInputError
from biodl.io._util import check_file

__all__ = [
    "FcsData",
    "SampleSet",
    "SampleTable",
    "arcsinh_transform",
    "default_markers",
    "load_samples",
    "read_fcs",
    "read_sample_table",
    "resolve_markers",
]

FCS_VERSIONS = ("2.0", "3.0", "3.1")

# Channels that are not markers (instrument parameters, DNA, barcodes, mass-cytometry
# Gaussian parameters); left out when no marker list is given.
_NOT_MARKERS = re.compile(
    r"^(time|event_?length|cell_?length|dna[-_ ]?\d*|ir19[13]di|bc\d+|barcode.*|center|offset|width|"
    r"residual|beaddist|bead.*|sample_?id|event.*|file.*|.*_?viability|cisplatin)$",
    re.IGNORECASE,
)


@dataclass
class FcsData:
    """The events of one FCS file.

    Attributes
    ----------
    path
        The file.
    events
        ``(n_events, n_channels)`` float32 array of raw channel values (as stored, after the
        FCS gain/log decoding of :meth:`flowio.FlowData.as_array`).
    channels
        ``$PnN`` short channel names, e.g. ``CD3(110:114)Dd``.
    markers
        ``$PnS`` marker names (``""`` where the file has none), e.g. ``CD3``.
    version
        FCS version string (``2.0``, ``3.0`` or ``3.1``).
    text
        The TEXT segment keywords (lower-case keys).
    """

    path: Path
    events: np.ndarray
    channels: list[str]
    markers: list[str]
    version: str
    text: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def names(self) -> list[str]:
        """Display name per channel: the marker name if the file has one, else the channel name."""
        return [m or c for m, c in zip(self.markers, self.channels, strict=True)]


def read_fcs(path: str | Path) -> FcsData:
    """Read one FCS 2.0/3.0/3.1 file.

    DATA offsets that are off by one byte (a common writer bug, e.g. in the Bodenmiller
    2012 files) are tolerated; any other inconsistency is an error.

    Parameters
    ----------
    path
        The ``.fcs`` file.

    Returns
    -------
    FcsData

    Raises
    ------
    BiodlInputError
        Missing file, not an FCS file, unsupported version, truncated or corrupt segments,
        a DATA segment whose size does not match ``$TOT`` x ``$PAR``, or non-finite values.
    """
    import flowio

    p = check_file(path)
    size = p.stat().st_size
    if size < 58:
        raise BiodlInputError(f"not an FCS file: {size} bytes, shorter than the 58-byte FCS header", path=p)
    with open(p, "rb") as fh:
        head = fh.read(10)
    if not head.startswith(b"FCS"):
        raise BiodlInputError(
            f"not an FCS file: it starts with {head[:6]!r}, expected 'FCS2.0', 'FCS3.0' or 'FCS3.1'", path=p
        )
    version = head[3:6].decode("ascii", errors="replace")
    if version not in FCS_VERSIONS:
        raise BiodlInputError(
            f"unsupported FCS version {version!r} (supported: {', '.join(FCS_VERSIONS)})", path=p
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fd = flowio.FlowData(str(p), ignore_offset_error=True)
            n_events, n_channels = int(fd.event_count), int(fd.channel_count)
            raw = np.asarray(fd.events)
            if raw.size != n_events * n_channels:
                raise BiodlInputError(
                    f"corrupt or truncated FCS file: DATA segment holds {raw.size} values, but $TOT x $PAR = "
                    f"{n_events} x {n_channels} = {n_events * n_channels}",
                    path=p,
                )
            events = np.asarray(fd.as_array(preprocess=True), dtype=np.float32).reshape(n_events, n_channels)
    except BiodlInputError:
        raise
    except Exception as e:  # flowio raises many types (FCSParsingError, ValueError, KeyError, ...)
        msg = str(e).replace(str(p), "").strip() or type(e).__name__
        if isinstance(e, KeyError):
            msg = f"required TEXT keyword {e} is missing"
        raise BiodlInputError(f"corrupt or truncated FCS file ({msg})", path=p) from None
    channels, markers = [], []
    for i in range(1, n_channels + 1):
        meta = fd.channels.get(i, fd.channels.get(str(i), {}))
        channels.append(str(meta.get("pnn", f"P{i}")).strip())
        markers.append(str(meta.get("pns", "") or "").strip())
    if not np.isfinite(events).all():
        bad = np.argwhere(~np.isfinite(events))[0]
        raise BiodlInputError(
            f"non-finite value at event {bad[0] + 1}, channel {channels[bad[1]]!r} (corrupt DATA segment?)",
            path=p,
        )
    text = dict(fd.text)
    _say_spillover(p, text)
    return FcsData(p, events, channels, markers, version, text)


_SPILL_SAID = False


def _say_spillover(p: Path, text: dict) -> None:
    """A warning (once per file) when the FCS TEXT holds a spillover / compensation matrix
    (``$SPILLOVER``, ``$SPILL``, ``$COMP``) other than the identity: biodl reads the values as
    stored, uncompensated (mass cytometry files have none; flow files usually need it)."""
    for key in ("spillover", "spill", "comp"):
        raw = str(text.get(key, text.get(f"${key}", text.get(f"${key.upper()}", ""))) or "").strip()
        if not raw:
            continue
        f = [x.strip() for x in raw.split(",")]
        try:
            n = int(f[0])
            m = np.asarray([float(v) for v in f[1 + n : 1 + n + n * n]]).reshape(n, n)
            if np.allclose(m, np.eye(n)):
                return
        except (ValueError, IndexError):
            pass
        global _SPILL_SAID
        if not _SPILL_SAID:  # once per process, naming the first file (a panel has many)
            from biodl.io._util import note

            _SPILL_SAID = True
            note(
                f"[biodl] warning: {p} (and maybe other files) holds a spillover matrix "
                f"(${key.upper()}) that biodl does not apply: values are read as stored; compensate "
                "flow data first (e.g. with FlowKit) if they are not compensated yet"
            )
        return


def arcsinh_transform(x: np.ndarray, cofactor: float = 5.0) -> np.ndarray:
    """``arcsinh(x / cofactor)``, the usual variance-stabilising transform of cytometry data.

    Parameters
    ----------
    x
        Raw intensities, any shape.
    cofactor
        5 for mass cytometry (CyTOF), about 150 for fluorescence flow cytometry. ``0`` or
        negative is an error.

    Returns
    -------
    numpy.ndarray
        float32 array of the same shape.
    """
    if not cofactor or cofactor <= 0:
        raise BiodlInputError(f"the arcsinh cofactor must be positive, got {cofactor!r}")
    return np.arcsinh(np.asarray(x, dtype=np.float32) / np.float32(cofactor)).astype(np.float32)


def _norm(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.lower())


def _channel_stem(channel: str) -> str:
    """``CD3(110:114)Dd`` -> ``CD3``; ``FL1-A`` unchanged."""
    return channel.split("(")[0].strip() if "(" in channel else channel


#: A mass tag before a name (Fluidigm / Helios software: ``191Ir_DNA1``, ``139La_BC1``)
_MASS_TAG = re.compile(r"^\d{2,3}[A-Z][a-z]?_")


def _not_a_marker(*names: str) -> bool:
    """Whether any of a channel's names (``$PnN``, ``$PnS``), as it is, without its isotope
    (``BC1(La139)Dd``) or without a mass tag (``191Ir_DNA1``), is an instrument, DNA or barcode
    channel."""
    for name in names:
        name = name.strip()
        for form in (name, _channel_stem(name), _MASS_TAG.sub("", name)):
            if form and _NOT_MARKERS.match(form.strip()):
                return True
    return False


def unique_name(fcs: FcsData, i: int) -> str:
    """Channel ``i``'s display name when no other channel has it, else its ``$PnN`` name (a flow
    file's ``FITC-A`` and ``FITC-H`` both called ``CD3``: 'CD3' named neither)."""
    n = fcs.names[i]
    return n if fcs.names.count(n) == 1 else fcs.channels[i]


def default_markers(fcs: FcsData) -> list[str]:
    """The channels that are markers: all but time, cell length, DNA, barcodes and other
    instrument parameters, by any of their names (``$PnN`` ``BC1(La139)Dd``, ``$PnS``
    ``139La_BC1``). Names are the display names (:attr:`FcsData.names`), or the ``$PnN`` name
    of a channel whose display name another channel shares (:func:`unique_name`)."""
    return [unique_name(fcs, i) for i in _marker_channels(fcs)]


def _marker_channels(fcs: FcsData) -> list[int]:
    """The indices of :func:`default_markers`' channels."""
    both = zip(fcs.names, fcs.channels, fcs.markers, strict=True)
    return [i for i, (n, c, m) in enumerate(both) if not _not_a_marker(n, c, m)]


def resolve_markers(fcs: FcsData, markers: Sequence[str]) -> list[int]:
    """Column indices of ``markers`` in ``fcs``.

    A marker matches a channel by its ``$PnS`` name, its ``$PnN`` name or the ``$PnN`` name
    without the isotope (``CD3`` matches ``CD3(110:114)Dd``); case, spaces and punctuation
    are ignored. An exact ``$PnS``/``$PnN`` match wins over a normalised one.

    Raises
    ------
    BiodlInputError
        A marker is unknown or ambiguous; the message lists the file's markers.
    """
    idx: list[int] = []
    for m in markers:
        exact = [i for i, (c, s) in enumerate(zip(fcs.channels, fcs.markers, strict=True)) if m in (c, s)]
        if len(exact) == 1:
            idx.append(exact[0])
            continue
        key = _norm(m)
        hits = [
            i
            for i, (c, s) in enumerate(zip(fcs.channels, fcs.markers, strict=True))
            if key and key in (_norm(s), _norm(c), _norm(_channel_stem(c)))
        ]
        if not hits:
            raise BiodlInputError(
                f"unknown marker {m!r}: no channel or marker of this file is {m!r} (a marker asked with "
                f"--set markers, or one the model was trained on); the file has: {', '.join(fcs.names)}",
                path=fcs.path,
            )
        if len(set(hits)) > 1:
            raise BiodlInputError(
                f"marker {m!r} is ambiguous: channels {', '.join(fcs.channels[i] for i in hits)}",
                path=fcs.path,
            )
        idx.append(hits[0])
    if len(set(idx)) != len(idx):
        dup = [markers[j] for j, i in enumerate(idx) if idx.count(i) > 1]
        raise BiodlInputError(f"markers name the same channel twice: {', '.join(dup)}", path=fcs.path)
    return idx


@dataclass
class SampleTable:
    """A parsed sample table.

    Attributes
    ----------
    path
        The table file.
    files
        Absolute sample file paths, in table order.
    labels
        Label per sample as given (strings), or ``None`` per sample when the table has no
        label column (prediction).
    groups
        Group (patient) per sample, or ``None``.
    ids
        Sample name per sample.
    lines
        The table line of each sample (empty for a single FCS file).
    """

    path: Path
    files: list[Path]
    labels: list[str] | None
    groups: list[str] | None
    ids: list[str]
    lines: list[int] = field(default_factory=list)


_FILE_COLS = ("file", "file_name", "filename", "path", "fcs", "fcs_file")
_LABEL_COLS = ("label", "condition", "class", "phenotype", "y", "response")
_GROUP_COLS = ("patient", "patient_id", "group", "donor", "subject")
_ID_COLS = ("sample_id", "shortname", "sample", "id", "name")


def _pick(cols: list[str], options: Sequence[str], want: str | None) -> str | None:
    lower = {c.lower().strip(): c for c in cols}
    if want:
        if want in cols:
            return want
        if want.lower() in lower:
            return lower[want.lower()]
        return None
    for o in options:
        if o in lower:
            return lower[o]
    return None


#: Label values read as missing (any case), as the other readers of labels do.
MISSING_LABELS = ("", "na", "nan", "n/a", "null")


def _read_rows(p: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and the ``(line number, fields)`` of every non-blank line of a sample table
    (CSV, TSV or ;-separated, chosen by the header; gzip is read; a UTF-8 byte-order mark is
    dropped). A line with another number of fields than the header is an error naming it."""
    import csv

    from biodl.io._util import open_text

    try:
        with open_text(p) as fh:
            text = fh.read()
    except BiodlInputError:
        raise
    except (OSError, UnicodeError) as e:
        raise BiodlInputError(f"cannot read the sample table ({e})", path=p) from None
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    sep = next((c for c in ("\t", ",", ";") if c in first), ",")
    reader = csv.reader(text.splitlines(keepends=True), delimiter=sep)
    header: list[str] | None = None
    rows: list[tuple[int, list[str]]] = []
    try:
        for fields in reader:
            if not any(f.strip() for f in fields):
                continue
            if header is None:
                header = fields
                if any(not c.strip() for c in header):
                    raise BiodlInputError(
                        f"the header has an empty column name ({sep!r}-separated: {', '.join(header)})",
                        path=p,
                        record=reader.line_num,
                    )
                continue
            if len(fields) != len(header):
                n = len(fields)
                raise BiodlInputError(
                    f"{n} field{'s' if n != 1 else ''}, the header has {len(header)} "
                    f"({', '.join(c.strip() for c in header)})"
                    + (f"; a field with a {sep!r} in it must be quoted" if n > len(header) else ""),
                    path=p,
                    record=reader.line_num,
                )
            rows.append((reader.line_num, fields))
    except csv.Error as e:
        raise BiodlInputError(f"cannot read the sample table ({e})", path=p, record=reader.line_num) from None
    if header is None:
        raise BiodlInputError("the sample table is empty (no header line)", path=p)
    return header, rows


def _check_label(lab: str, name: str, p: Path, line: int) -> None:
    """Refuse a missing or infinite label of a training / evaluation sample."""
    if lab.lower() in MISSING_LABELS:
        what = "no label" if not lab else f"a missing label ({lab!r})"
        raise BiodlInputError(
            f"sample {name!r} has {what}; CellCnn learns from whole labelled samples: give it its label "
            "or leave the sample out of the table",
            path=p,
            record=line,
        )
    try:
        v = float(lab)
    except ValueError:
        return
    if math.isinf(v):
        raise BiodlInputError(
            f"sample {name!r} has an infinite label value {lab!r}; give a finite number (regression) "
            "or a class name",
            path=p,
            record=line,
        )


def looks_like_fcs(path: str | Path) -> bool:
    """Whether ``path`` starts as an FCS file does (``FCS`` and a version, ``FCS3.1``), whatever
    its name (a Beckman ``.lmd``, a file without extension)."""
    try:
        with open(path, "rb") as fh:
            return re.fullmatch(rb"FCS\d\.\d", fh.read(6)) is not None
    except OSError:
        return False


def read_sample_table(
    path: str | Path,
    *,
    require_labels: bool = True,
    label_col: str | None = None,
    group_col: str | None = None,
    file_col: str | None = None,
    training: bool = True,
) -> SampleTable:
    """Read a sample table (CSV or TSV; see the module docstring).

    Parameters
    ----------
    path
        The table. Sample paths in it are relative to its directory (absolute paths are kept).
    require_labels
        Raise if there is no label column or a label is missing.
    label_col, group_col, file_col
        Column names, when not one of the recognised defaults.

    Raises
    ------
    BiodlInputError
        Unreadable table, no file column, a line with more or fewer fields than the header, a
        listed file that does not exist or is a directory, a file listed twice, a missing
        (empty, ``NA``, ``NaN``, ``N/A``, ``null``) or infinite label, fewer than two distinct
        labels; each naming the table and its line.
    """
    p = check_file(path)
    if looks_like_fcs(p):  # (its bytes were printed as a header)
        raise BiodlInputError(
            "is an FCS file, not a sample table: give a table listing the files and their labels "
            "(file,label), or the file itself where one sample is scored",
            path=p,
        )
    header, rows = _read_rows(p)
    cols = [c.strip() for c in header]
    if not rows:
        raise BiodlInputError("the sample table has no rows", path=p)
    fcol = _pick(cols, _FILE_COLS, file_col)
    if fcol is None:
        raise BiodlInputError(
            f"no file column {file_col!r}"
            if file_col
            else f"no file column (expected one of {', '.join(_FILE_COLS)}; found {', '.join(cols)})",
            path=p,
        )
    lcol = _pick(cols, _LABEL_COLS, label_col)
    if label_col and lcol is None:
        raise BiodlInputError(f"no label column {label_col!r} (found {', '.join(cols)})", path=p)
    if require_labels and lcol is None:
        raise BiodlInputError(
            f"no label column (expected one of {', '.join(_LABEL_COLS)}; found {', '.join(cols)})", path=p
        )
    gcol = _pick(cols, _GROUP_COLS, group_col)
    if group_col and gcol is None:
        raise BiodlInputError(f"no group column {group_col!r} (found {', '.join(cols)})", path=p)
    icol = _pick(cols, _ID_COLS, None)
    files, labels, groups, ids, lines = [], [], [], [], []
    seen: dict[Path, int] = {}
    for i, row in rows:
        r = dict(zip(cols, row, strict=True))
        name = str(r[fcol]).strip()
        if not name:
            raise BiodlInputError("empty file name", path=p, record=i)
        f = Path(name)
        f = f if f.is_absolute() else (p.parent / f)
        f = f.resolve()
        if not f.exists():
            raise BiodlInputError(f"sample file {name!r} does not exist (looked for {f})", path=p, record=i)
        if f.is_dir():
            raise BiodlInputError(
                f"sample file {name!r} is a directory ({f}), not an FCS file", path=p, record=i
            )
        if f in seen:
            raise BiodlInputError(
                f"sample file {name!r} is listed twice (also on line {seen[f]})", path=p, record=i
            )
        seen[f] = i
        files.append(f)
        lines.append(i)
        if lcol is not None:
            lab = str(r[lcol]).strip()
            if require_labels:
                _check_label(lab, name, p, i)
            labels.append(lab)
        if gcol is not None:
            groups.append(str(r[gcol]).strip())
        ids.append(str(r[icol]).strip() if icol and str(r[icol]).strip() else None)
    given: dict[str, int] = {}
    for s, ln in zip(ids, lines, strict=True):
        if s is not None and s in given:  # (every given id was replaced by file names, silently)
            raise BiodlInputError(
                f"sample id {s!r} is given twice (also on line {given[s]})", path=p, record=ln
            )
        if s is not None:
            given[s] = ln
    stems = [f.stem for f in files]
    for k, f in enumerate(files):
        if ids[k] is None:  # a file's name; of one in another folder too: with its folder
            ids[k] = f.stem if stems.count(f.stem) == 1 else f"{f.parent.name}/{f.stem}"
    first: dict[str, int] = {}
    for s, ln in zip(ids, lines, strict=True):
        if s in first:  # (files of one name in two folders of one name; a given id another's name)
            raise BiodlInputError(
                f"two samples would be called {s!r} (lines {first[s]} and {ln}): give them sample_id "
                "values to tell them apart",
                path=p,
                record=ln,
            )
        first[s] = ln
    if training and require_labels and len(set(labels)) < 2:
        raise BiodlInputError(
            f"all samples have the same label {labels[0]!r}; CellCnn needs at least two classes "
            "(or numeric labels for regression)",
            path=p,
        )
    return SampleTable(p, files, labels if lcol is not None else None, groups if gcol else None, ids, lines)


@dataclass
class SampleSet:
    """Transformed cells of several samples with a common marker panel.

    Attributes
    ----------
    cells
        One ``(n_cells_i, n_markers)`` float32 array per sample (arcsinh-transformed).
    markers
        Marker names, in column order.
    ids
        Sample names.
    labels
        Label per sample (strings) or ``None``.
    groups
        Group per sample or ``None``.
    files
        Source file per sample.
    table
        The sample table the samples were listed in (``None``: not from a table).
    lines
        The table line of each sample (empty when not from a table).
    """

    cells: list[np.ndarray]
    markers: list[str]
    ids: list[str]
    labels: list[str] | None = None
    groups: list[str] | None = None
    files: list[Path] = field(default_factory=list)
    table: Path | None = None
    lines: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.cells)

    def subset(self, index: Sequence[int]) -> SampleSet:
        """The samples at ``index`` (a new :class:`SampleSet` sharing the arrays)."""
        index = list(index)
        return SampleSet(
            [self.cells[i] for i in index],
            self.markers,
            [self.ids[i] for i in index],
            None if self.labels is None else [self.labels[i] for i in index],
            None if self.groups is None else [self.groups[i] for i in index],
            [self.files[i] for i in index] if self.files else [],
            self.table,
            [self.lines[i] for i in index] if self.lines else [],
        )


def parse_marker_list(markers: str | Sequence[str] | None) -> list[str] | None:
    """``"CD3,CD20"`` or ``["CD3", "CD20"]`` -> list; ``None``/``""``/``"auto"`` -> ``None``."""
    if markers is None:
        return None
    if isinstance(markers, str):
        if markers.strip().lower() in ("", "auto", "all"):
            return None
        return [m.strip() for m in markers.split(",") if m.strip()]
    return [str(m).strip() for m in markers]


def load_samples(
    table: str | Path | SampleTable,
    *,
    markers: str | Sequence[str] | None = None,
    cofactor: float = 5.0,
    max_cells: int | None = None,
    seed: int = 0,
    require_labels: bool = True,
) -> SampleSet:
    """Read every sample of a table, select markers and arcsinh-transform.

    Parameters
    ----------
    table
        Sample table path (or a parsed :class:`SampleTable`).
    markers
        Marker names (comma-separated string or list). ``None``: every marker channel of the
        first file (see :func:`default_markers`); all files must have them.
    cofactor
        arcsinh cofactor (5 for mass cytometry, ~150 for flow).
    max_cells
        Keep at most this many randomly chosen cells per sample (``None``: all).
    seed
        Seed of that subsampling.

    Returns
    -------
    SampleSet
    """
    st = table if isinstance(table, SampleTable) else read_sample_table(table, require_labels=require_labels)
    wanted = parse_marker_list(markers)
    cells, names = [], None
    rng = np.random.default_rng(seed)
    chosen = wanted is None  # the first file's marker channels, which every file must have
    first = None
    for f in st.files:
        fcs = read_fcs(f)
        if wanted is None:
            wanted, first = default_markers(fcs), f
            if not wanted:
                raise BiodlInputError("no marker channels found; give them with markers=...", path=f)
        idx = resolve_markers(fcs, wanted)
        if chosen and f != first:
            extra = [unique_name(fcs, i) for i in _marker_channels(fcs) if i not in set(idx)]
            if extra:  # (in the other order the first file's would be the error: one rule for both)
                raise BiodlInputError(
                    f"has marker channels the first file ({Path(first).name}) lacks: {', '.join(extra)}; "
                    "give the markers every file has with --set markers=...",
                    path=f,
                )
        if names is None:
            names = [unique_name(fcs, i) for i in idx]
        x = fcs.events[:, idx]
        if x.shape[0] == 0:
            raise BiodlInputError("the file has no events", path=f)
        if max_cells and x.shape[0] > max_cells:
            x = x[np.sort(rng.choice(x.shape[0], max_cells, replace=False))]
        cells.append(arcsinh_transform(x, cofactor))
    return SampleSet(
        cells,
        list(names or []),
        list(st.ids),
        st.labels,
        st.groups,
        list(st.files),
        st.path if st.lines else None,
        list(st.lines),
    )
