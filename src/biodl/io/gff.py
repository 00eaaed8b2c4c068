"""Genome annotation as a feature table: GFF3 (plain or gzip) and BED label files.

Every reader here returns the same table, one row per feature, with 0-based half-open
coordinates (the convention of BED, pyfaidx slices and numpy):

========== ===========================================================================
column     meaning
========== ===========================================================================
seqid      chromosome / sequence name (must match the genome FASTA's record names)
source     GFF column 2 (for BED: the file name)
type       feature type, e.g. ``CDS``, ``exon``, ``tRNA`` (for BED: the label)
start0     0-based start (GFF ``start - 1``), bp
end        0-based exclusive end (= GFF 1-based inclusive end), bp
strand     ``+``, ``-``, ``.`` or ``?``
attributes GFF column 9, unparsed (for BED: ``Name=<name column>``)
line       1-based line of the feature in its file (for error messages)
========== ===========================================================================
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pandas as pd

from biodl.errors import BiodlInputError
from biodl.io._util import check_file, open_text
from biodl.io.bed import read_bed

FEATURE_COLUMNS = ["seqid", "source", "type", "start0", "end", "strand", "attributes", "line"]

_STRANDS = frozenset("+-.?")


def _empty_features() -> pd.DataFrame:
    df = pd.DataFrame({c: pd.Series(dtype=object) for c in FEATURE_COLUMNS})
    return df.astype({"start0": np.int64, "end": np.int64, "line": np.int64})


def read_gff(
    path: str | Path,
    feature_types: Sequence[str] | None = None,
    sources: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Read the features of a GFF3 file (plain or gzip).

    ``#`` comment and directive lines and blank lines are skipped; reading stops at a
    ``##FASTA`` directive (sequences embedded after it are ignored). GFF's 1-based
    inclusive ``start..end`` becomes 0-based half-open ``[start0, end)``, so the feature
    covers ``end - start0`` bp. Every line is validated, also lines whose type is not kept.

    Parameters
    ----------
    path
        GFF3 file, plain text or gzip (detected by content, not by name).
    feature_types
        Keep only features whose type (column 3) is in this set, e.g. ``["CDS", "exon"]``;
        ``None`` keeps all.
    sources
        Keep only features whose source (column 2) is in this set; ``None`` keeps all.

    Returns
    -------
    pandas.DataFrame
        ``(n_features, 8)`` with columns ``seqid, source, type, start0, end, strand,
        attributes, line`` (see the module docstring), in file order.

    Raises
    ------
    BiodlInputError
        The file is missing, or a feature line has fewer than 9 tab-separated fields,
        non-integer coordinates, ``start < 1``, ``end < start`` or an invalid strand
        (the line is named).
    """
    p = check_file(path)
    keep_types = None if feature_types is None else frozenset(feature_types)
    keep_sources = None if sources is None else frozenset(sources)
    rows: list[tuple] = []
    seen: dict[str, int] = {}
    with open_text(p) as fh:
        for lineno, raw in enumerate(fh, start=1):
            if raw.startswith("#"):
                if raw.startswith("##FASTA"):
                    break
                continue
            line = raw.rstrip("\r\n")
            if not line.strip():
                continue
            f = line.split("\t")
            if len(f) < 9:
                hint = " (is the file space- instead of tab-separated?)" if len(line.split()) >= 9 else ""
                if line.startswith(">"):
                    hint = " (FASTA sequence found without a preceding ##FASTA line)"
                raise BiodlInputError(
                    f"a GFF feature line needs 9 tab-separated fields, found {len(f)}{hint}",
                    path=p,
                    record=lineno,
                )
            try:
                start, end = int(f[3]), int(f[4])
            except ValueError:
                raise BiodlInputError(
                    f"start/end (columns 4 and 5) must be integers, got {f[3]!r}, {f[4]!r}",
                    path=p,
                    record=lineno,
                ) from None
            if start < 1:
                raise BiodlInputError(
                    f"start must be >= 1 (GFF is 1-based), got {start}", path=p, record=lineno
                )
            if end < start:
                raise BiodlInputError(f"end {end} is before start {start}", path=p, record=lineno)
            if not f[0]:
                raise BiodlInputError("empty seqid (column 1)", path=p, record=lineno)
            strand = f[6]
            if strand not in _STRANDS:
                raise BiodlInputError(
                    f"strand (column 7) must be +, -, . or ?, got {strand!r}", path=p, record=lineno
                )
            seen[f[2]] = seen.get(f[2], 0) + 1
            if keep_types is not None and f[2] not in keep_types:
                continue
            if keep_sources is not None and f[1] not in keep_sources:
                continue
            rows.append((f[0], f[1], f[2], start - 1, end, strand, f[8], lineno))
    df = pd.DataFrame(rows, columns=FEATURE_COLUMNS) if rows else _empty_features()
    df.attrs["type_counts"] = seen  # every type in the file, also those not kept
    return df


def parse_attributes(attributes: str) -> dict[str, str]:
    """Parse a GFF3 column-9 string ``key=value;key=value`` into a dict (values URL-unescaped;
    multi-valued attributes such as ``Parent=a,b`` are left as the comma-joined string)."""
    out: dict[str, str] = {}
    for item in attributes.split(";"):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        out[unquote(key.strip())] = unquote(value.strip()) if sep else ""
    return out


def gff_attribute(features: pd.DataFrame, key: str) -> pd.Series:
    """Vectorised extraction of one attribute from the ``attributes`` column.

    Returns
    -------
    pandas.Series
        ``(n_features,)`` of strings (raw, still comma-joined for multi-valued attributes),
        ``NaN`` where the attribute is absent.
    """
    pattern = rf"(?:^|;)\s*{re.escape(key)}=([^;]*)"
    return features["attributes"].astype(str).str.extract(pattern, expand=False)


def derive_introns(
    features: pd.DataFrame, exon_type: str = "exon", intron_type: str = "intron"
) -> pd.DataFrame:
    """Introns as the gaps between consecutive exons of the same transcript.

    Exons are grouped by their ``Parent`` attribute (an exon listing several parents,
    ``Parent=tx1,tx2``, counts for each); overlapping or touching exons of one transcript
    are merged first, so every gap is a real intron. Exons without a ``Parent`` are ignored.

    Parameters
    ----------
    features
        Feature table (see :func:`read_gff`); only rows of type ``exon_type`` are used.

    Returns
    -------
    pandas.DataFrame
        Feature table of the derived introns (``source="biodl_derived"``,
        ``attributes="Parent=<transcript>"``, ``line`` = line of the upstream exon); the
        same intron shared by several transcripts appears once per transcript.
    """
    ex = features.loc[
        features["type"] == exon_type, ["seqid", "start0", "end", "strand", "attributes", "line"]
    ]
    if ex.empty:
        return _empty_features()
    ex = ex.assign(parent=gff_attribute(ex, "Parent")).dropna(subset=["parent"])
    ex = ex.assign(parent=ex["parent"].str.split(",")).explode("parent").reset_index(drop=True)
    ex = ex[ex["parent"].str.len() > 0]
    if ex.empty:
        return _empty_features()
    ex = ex.sort_values(["seqid", "parent", "start0", "end"], kind="stable")
    grp = ex.groupby(["seqid", "parent"], sort=False)["end"]
    prev_end = grp.cummax().groupby([ex["seqid"], ex["parent"]], sort=False).shift(1)
    gap = prev_end.notna() & (ex["start0"] > prev_end)
    introns = ex.loc[gap]
    prev_line = ex["line"].groupby([ex["seqid"], ex["parent"]], sort=False).shift(1)
    out = pd.DataFrame(
        {
            "seqid": introns["seqid"].to_numpy(),
            "source": "biodl_derived",
            "type": intron_type,
            "start0": prev_end[gap].astype(np.int64).to_numpy(),
            "end": introns["start0"].astype(np.int64).to_numpy(),
            "strand": introns["strand"].to_numpy(),
            "attributes": ("Parent=" + introns["parent"]).to_numpy(),
            "line": prev_line[gap].astype(np.int64).to_numpy(),
        }
    )
    return out.reset_index(drop=True)


def _bed_label(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".bgz"):
        name = name.removesuffix(suffix)
    for suffix in (".bed", ".narrowPeak", ".broadPeak", ".bedGraph", ".txt"):
        name = name.removesuffix(suffix)
    return name


def read_bed_features(
    paths: str | Path | Sequence[str | Path],
    label_from: str = "file",
    labels: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Read BED files (e.g. ChIP-seq / DNase peaks, as in DeepSEA) as a labelled feature table.

    Parameters
    ----------
    paths
        One BED file or several (plain or gzip; read by :func:`biodl.io.bed.read_bed`).
    label_from
        ``"file"``: one label per file, the file name without ``.bed``/``.narrowPeak``/
        ``.gz`` (or ``labels[i]``). ``"name"``: the label of each interval is its BED name
        (column 4), so one file can hold many labels.
    labels
        With ``label_from="file"``: explicit label names, one per file.

    Returns
    -------
    pandas.DataFrame
        Feature table (see :func:`read_gff`) with ``type`` = label, ``source`` = file name.

    Raises
    ------
    BiodlInputError
        A bad BED line (named by :func:`read_bed`), ``label_from="name"`` on a BED file
        without a name column, or a wrong number of ``labels``.
    """
    plist = [paths] if isinstance(paths, (str, Path)) else list(paths)
    if label_from not in ("file", "name"):
        raise BiodlInputError(f"label_from must be 'file' or 'name', got {label_from!r}")
    if labels is not None and len(labels) != len(plist):
        raise BiodlInputError(f"got {len(labels)} labels for {len(plist)} BED files")
    frames = []
    for i, path in enumerate(plist):
        p = check_file(path)
        bed = read_bed(p)
        if label_from == "name":
            synthetic = bed["name"] == bed["chrom"] + ":" + bed["start"].astype(str) + "-" + bed[
                "end"
            ].astype(str)
            if synthetic.all():
                raise BiodlInputError(
                    "label_from='name' needs a name column (column 4) in the BED file", path=p
                )
            label = bed["name"].astype(str)
        else:
            label = labels[i] if labels is not None else _bed_label(p)
        frames.append(
            pd.DataFrame(
                {
                    "seqid": bed["chrom"].astype(str),
                    "source": p.name,
                    "type": label,
                    "start0": bed["start"].astype(np.int64),
                    "end": bed["end"].astype(np.int64),
                    "strand": bed["strand"],
                    "attributes": "Name=" + bed["name"].astype(str),
                    "line": bed["line"].astype(np.int64),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)[FEATURE_COLUMNS]


def _is_bed(path: Path) -> bool:
    name = path.name.lower().removesuffix(".gz").removesuffix(".bgz")
    return name.endswith((".bed", ".narrowpeak", ".broadpeak"))


def read_annotation(
    paths: str | Path | Sequence[str | Path],
    feature_types: Sequence[str] | None = None,
    bed_label_from: str = "file",
) -> pd.DataFrame:
    """Read labelled features from a GFF3 file and/or BED files into one feature table.

    A file is read as BED if its name ends in ``.bed``, ``.narrowPeak`` or ``.broadPeak``
    (optionally ``.gz``), otherwise as GFF3.

    Parameters
    ----------
    paths
        One file or a list of files.
    feature_types
        Passed to :func:`read_gff` for GFF files (BED labels are always kept).
    bed_label_from
        See ``label_from`` of :func:`read_bed_features`.

    Returns
    -------
    pandas.DataFrame
        Feature table (see :func:`read_gff`).
    """
    plist = [paths] if isinstance(paths, (str, Path)) else list(paths)
    if not plist:
        raise BiodlInputError("no annotation files given")
    frames = []
    by_label: dict[str, Path] = {}  # a BED file's label (its name): two files of one name would merge
    for path in plist:
        p = check_file(path)
        if _is_bed(p):
            frames.append(read_bed_features(p, label_from=bed_label_from))
            if bed_label_from == "file":
                for label in pd.unique(frames[-1]["type"]):
                    if label in by_label and by_label[label].resolve() != p.resolve():
                        raise BiodlInputError(
                            f"{by_label[label]} and {p} both give the label {label!r} (a BED file's label is "
                            "its name): their peaks would be one label; rename one (e.g. CTCF_peaks.bed)",
                            path=p,
                        )
                    by_label[str(label)] = p
        else:
            frames.append(read_gff(p, feature_types=feature_types))
    if len(frames) == 1:
        return frames[0]
    counts: dict[str, int] = {}
    for f in frames:
        for t, n in type_counts(f).items():
            counts[t] = counts.get(t, 0) + n
    out = pd.concat(frames, ignore_index=True)
    out.attrs["type_counts"] = counts
    return out


def type_counts(features: pd.DataFrame) -> dict[str, int]:
    """Every feature type of the annotation file(s) a feature table was read from, with its
    count (also the types a reader was told not to keep), most frequent first."""
    counts = features.attrs.get("type_counts") or features["type"].value_counts().to_dict()
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
