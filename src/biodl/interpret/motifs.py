"""First-layer filters as motifs, matched to JASPAR with Tomtom.

Filters become position probability matrices from their top-activating windows
(:func:`biodl.interpret.filters.filter_pwms`), are written in MEME format, trimmed of
uninformative flanks and compared with memelite's Tomtom (complete scores, both strands)
against a motif database: by default the JASPAR CORE vertebrate collection of the newest
release in the SQLite database that pyjaspar ships (read offline; no network), or any MEME
file. Each filter's best match is reported with its p-value, E-value (p x database size)
and q-value (Benjamini-Hochberg over the database, per filter).

Matrices here are ``(width, 4)`` probabilities, columns ``A, C, G, T``, rows summing to 1.
"""

from __future__ import annotations

import functools
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from biodl.errors import BiodlInputError
from biodl.interpret.filters import filter_pwms
from biodl.io._util import atomic_write_text, check_file, parses_as_number

__all__ = [
    "Motif",
    "filter_motifs",
    "information_content",
    "load_jaspar",
    "load_motif_db",
    "match_motifs",
    "read_meme_motifs",
    "trim_pwm",
    "write_meme",
]


@dataclass(frozen=True)
class Motif:
    """A database motif: ``id`` (e.g. ``MA0138.3``), ``name`` (e.g. ``REST``) and ``ppm``
    ``(width, 4)`` probabilities."""

    id: str
    name: str
    ppm: np.ndarray


def _normalise(counts: np.ndarray, pseudocount: float = 0.0) -> np.ndarray:
    c = np.asarray(counts, dtype=np.float64) + pseudocount
    s = c.sum(axis=1, keepdims=True)
    s[s == 0] = 1.0
    out = c / s
    out[c.sum(axis=1) == 0] = 0.25
    return out


def information_content(ppm: np.ndarray) -> np.ndarray:
    """Per-position information content in bits against a uniform background, ``(width,)``."""
    p = np.asarray(ppm, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(p > 0, p * np.log2(p), 0.0)
    return np.clip(2.0 + plogp.sum(axis=1), 0.0, 2.0)


def trim_pwm(ppm: np.ndarray, min_ic: float = 0.3, min_width: int = 4) -> tuple[int, int]:
    """``(start, end)`` of ``ppm`` without flanking positions below ``min_ic`` bits (the
    trimmed motif keeps at least ``min_width`` positions, centred on the most informative)."""
    ic = information_content(ppm)
    keep = np.flatnonzero(ic >= min_ic)
    w = len(ic)
    if keep.size == 0 or keep[-1] - keep[0] + 1 < min_width:
        c = int(np.argmax(ic)) if keep.size == 0 else int((keep[0] + keep[-1]) // 2)
        s = max(0, min(c - min_width // 2, w - min_width))
        return s, min(w, s + min_width)
    return int(keep[0]), int(keep[-1]) + 1


def consensus(ppm: np.ndarray, min_ic: float = 0.5) -> str:
    """Consensus string: the most likely base, lower case where the position has less than
    ``min_ic`` bits and ``N`` below 0.1 bits."""
    ic = information_content(ppm)
    out = []
    for row, b in zip(np.asarray(ppm), ic, strict=True):
        c = "ACGT"[int(np.argmax(row))]
        out.append("N" if b < 0.1 else (c if b >= min_ic else c.lower()))
    return "".join(out)


@functools.lru_cache(maxsize=8)
def _jaspar(collection: str, tax_group: str | None, release: str | None) -> tuple[Motif, ...]:
    import warnings

    from pyjaspar import jaspar_releases, jaspardb

    if release and release not in jaspar_releases:  # pyjaspar would print and go on without a database
        raise BiodlInputError(
            f"JASPAR release {release!r} is not in pyjaspar's offline databases (available: "
            f"{', '.join(sorted(jaspar_releases))})"
        )
    db = jaspardb(release=release) if release else jaspardb()
    kw = {"collection": collection}
    if tax_group:
        kw["tax_group"] = [tax_group]
    motifs = []
    with warnings.catch_warnings():  # Biopython's "Zero motifs returned": said below, in biodl's words
        warnings.simplefilter("ignore")
        fetched = list(db.fetch_motifs(**kw))
    for m in fetched:
        counts = np.array([m.counts[b] for b in "ACGT"], dtype=np.float64).T  # (w, 4)
        motifs.append(Motif(str(m.matrix_id), str(m.name), _normalise(counts)))
    if not motifs:
        raise BiodlInputError(
            f"JASPAR {db.release} has no motifs for collection={collection!r}, tax_group={tax_group!r}"
        )
    return tuple(motifs)


def _tomtom():
    """memelite's ``tomtom``. Its numba kernels are compiled with ``cache=True``, and numba
    refuses to compile them at all when it can write its cache neither beside the package nor in
    the home folder (a read-only install and home: a container, a cluster node); the cache then
    goes to a folder of this user's under the temporary directory."""
    try:
        from memelite.tomtom import tomtom
    except RuntimeError as e:
        if "cannot cache" not in str(e):
            raise
        import sys
        import tempfile

        import numba

        cache = (
            Path(tempfile.gettempdir()) / f"biodl-numba-{os.getuid() if hasattr(os, 'getuid') else 'user'}"
        )
        cache.mkdir(parents=True, exist_ok=True)
        numba.config.CACHE_DIR = str(cache)
        for name in [m for m in sys.modules if m == "memelite" or m.startswith("memelite.")]:
            del sys.modules[name]  # imported halfway
        from memelite.tomtom import tomtom
    return tomtom


def load_jaspar(
    collection: str = "CORE", tax_group: str | None = "vertebrates", release: str | None = None
) -> list[Motif]:
    """JASPAR matrices from pyjaspar's bundled SQLite database (offline).

    Parameters
    ----------
    collection
        JASPAR collection (``CORE``, ``UNVALIDATED``, ...).
    tax_group
        ``vertebrates``, ``insects``, ``plants``, ``fungi``, ``nematodes``, ``urochordates``
        or None for all.
    release
        e.g. ``JASPAR2024``; default pyjaspar's newest bundled release. Only the latest
        version of each matrix is returned.

    Returns
    -------
    list of Motif
        Counts normalised to probabilities per position.
    """
    return list(_jaspar(collection, tax_group, release))


def read_meme_motifs(path: str | Path) -> list[Motif]:
    """Motifs of a MEME-format file (``MOTIF id [name]`` + letter-probability matrix; plain or
    gzip). Every problem is one :class:`BiodlInputError` naming the file, the motif and the
    line: a ``MOTIF`` line without a name, an ``alength`` other than 4 (DNA / RNA), a matrix
    with fewer or more rows than its ``w=`` (a file cut inside its last motif), a row of
    other than 4 values or with a value that is not a number, a negative, infinite or
    all-zero row, a motif with no letter-probability matrix."""
    import re

    from biodl.io._util import open_text

    p = check_file(path)
    out: list[Motif] = []

    def bad(msg: str, line: int, motif: str | None = None) -> BiodlInputError:
        what = f"motif {motif!r}: {msg}" if motif is not None else msg
        return BiodlInputError(what, path=p, record=line)

    try:
        with open_text(p) as fh:
            lines = [ln.rstrip("\r\n") for ln in fh]
    except UnicodeDecodeError:  # pragma: no cover - open_text replaces undecodable bytes
        raise BiodlInputError("not a text file: cannot read as a MEME motif file", path=p) from None
    motif: tuple[str, int] | None = None  # (MOTIF text, its line) whose matrix is awaited
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if line.startswith("ALPHABET="):
            letters = line[len("ALPHABET=") :].strip().upper()
            if letters not in ("ACGT", "ACGU"):
                raise bad(f"alphabet {letters!r}: biodl matches DNA / RNA motifs (ALPHABET= ACGT or ACGU)", i)
            continue
        if line.startswith("MOTIF"):
            if motif is not None:
                raise bad("no letter-probability matrix before the next MOTIF line", motif[1], motif[0])
            key = " ".join(line[5:].split())
            if not key:
                raise bad("a MOTIF line without a motif name (MOTIF <id> [<name>])", i)
            motif = (key, i)
            continue
        if not line.startswith("letter-probability matrix"):
            continue
        if motif is None:
            raise bad("a letter-probability matrix without a MOTIF line before it", i)
        key, _ = motif
        head_line = i
        m = re.search(r"\balength=\s*(\S+)", line)
        if m and m.group(1) != "4":
            raise bad(f"alength= {m.group(1)}: biodl matches DNA / RNA motifs (alength= 4)", head_line, key)
        m = re.search(r"\bw=\s*(\S+)", line)
        width = None
        if m:
            if not m.group(1).isdigit() or int(m.group(1)) < 1:
                raise bad(f"w= {m.group(1)!r} is not a positive whole number", head_line, key)
            width = int(m.group(1))
        rows: list[list[float]] = []
        while i < len(lines):
            text = lines[i].strip()
            if not text:
                if width is None and rows:
                    break  # no w=: the matrix ends at the first blank line
                i += 1
                continue
            fields = text.split()
            if text.startswith(("MOTIF", "URL", "letter-")) or (width is not None and len(rows) == width):
                break
            if width is None and not parses_as_number(fields[0]):
                break
            i += 1
            if len(fields) != 4:
                raise bad(f"a matrix row of {len(fields)} value(s), expected 4 (A C G T)", i, key)
            try:
                row = [float(v) for v in fields]
            except ValueError:
                v = next(v for v in fields if not parses_as_number(v))
                raise bad(f"{v!r} in its matrix is not a number", i, key) from None
            if not all(np.isfinite(row)) or min(row) < 0:
                raise bad("a matrix row with a negative or non-finite probability", i, key)
            if sum(row) <= 0:
                raise bad("an all-zero matrix row (no probability for any base)", i, key)
            rows.append(row)
        if width is not None and len(rows) < width:
            where = "the file ends" if i >= len(lines) else f"line {i + 1} follows"
            raise bad(
                f"w= {width} but its matrix has {len(rows)} row(s) ({where}: is the file cut short?)",
                head_line,
                key,
            )
        if width is not None and i < len(lines):
            nxt = lines[i].split()
            if len(nxt) == 4 and all(parses_as_number(v) for v in nxt):
                raise bad(f"w= {width} but its matrix has more rows (line {i + 1})", head_line, key)
        if not rows:
            raise bad("an empty letter-probability matrix", head_line, key)
        parts = key.split(maxsplit=1)
        ppm = np.asarray(rows, dtype=np.float64)
        out.append(Motif(parts[0], parts[1] if len(parts) > 1 else parts[0], _normalise(ppm)))
        motif = None
    if motif is not None:
        raise bad("no letter-probability matrix (is the file cut short?)", motif[1], motif[0])
    if not out:
        raise BiodlInputError(
            "no MOTIF with a letter-probability matrix found (is this a MEME file?)", path=p
        )
    return out


#: The forms of ``--db`` that name pyjaspar's JASPAR (any other text is a MEME file).
JASPAR_SPECS = "jaspar, jaspar:TAX_GROUP or jaspar:TAX_GROUP:RELEASE (e.g. jaspar:vertebrates:JASPAR2024)"


def load_motif_db(db: str | Path | None = None) -> tuple[list[Motif], str]:
    """A motif database and its description: a MEME file, or None / ``jaspar`` /
    ``jaspar:<tax_group>`` / ``jaspar:<tax_group>:<release>`` for pyjaspar's JASPAR CORE
    (``all`` or an empty tax group: every taxon). An existing file is always read as a MEME
    file, whatever its name (JASPAR's own downloads are named ``JASPAR2024_...``); any other
    text starting with ``jaspar`` that is not one of these forms is refused."""
    text = None if db is None else str(db)
    if text is not None and Path(text).exists():
        motifs = read_meme_motifs(text)
        return motifs, f"{db} ({len(motifs)} motifs)"
    if text is None or text.lower() == "jaspar" or text.lower().startswith("jaspar:"):
        parts = (text or "jaspar").split(":")
        if len(parts) > 3:
            raise BiodlInputError(
                f"--db {text!r}: too many fields after 'jaspar' (give {JASPAR_SPECS}, or a MEME file)"
            )
        tax = (
            parts[1]
            if len(parts) > 1 and parts[1].lower() not in ("", "all")
            else (None if len(parts) > 1 else "vertebrates")
        )
        release = parts[2] if len(parts) > 2 and parts[2] else None
        motifs = load_jaspar("CORE", tax, release)
        from pyjaspar import jaspardb

        rel = release or jaspardb().release
        return motifs, f"{rel} CORE {tax or 'all taxa'} ({len(motifs)} matrices, pyjaspar)"
    if text.lower().startswith("jaspar"):
        raise BiodlInputError(
            f"--db {text!r} is neither a file nor a JASPAR spec: give {JASPAR_SPECS}, or the path "
            "of a MEME file"
        )
    motifs = read_meme_motifs(text)
    return motifs, f"{db} ({len(motifs)} motifs)"


def write_meme(
    path: str | Path,
    pwms: np.ndarray | list[np.ndarray],
    n_sites: np.ndarray | None = None,
    names: list[str] | None = None,
    *,
    rna: bool = False,
) -> Path:
    """Write ``(width, 4)`` probability matrices as a MEME v4 file (atomically). With
    ``n_sites``, a matrix of no site (a filter nothing activates: a uniform matrix) is left
    out, and each other says its count. ``rna``: the ACGU alphabet on the given strand (an RNA
    model's filters have no reverse complement), else ACGT on both strands."""
    letters = "ACGU" if rna else "ACGT"
    lines = ["MEME version 4", "", f"ALPHABET= {letters}", "", "strands: +" if rna else "strands: + -", ""]
    lines += ["Background letter frequencies", " ".join(f"{c} 0.25" for c in letters), ""]
    for i, p in enumerate(pwms):
        name = names[i] if names is not None else f"filter{i}"
        if n_sites is not None and int(n_sites[i]) < 1:
            continue
        n = 1 if n_sites is None else int(n_sites[i])
        lines += [f"MOTIF {name}", "", f"letter-probability matrix: alength= 4 w= {len(p)} nsites= {n} E= 0"]
        lines += [" ".join(f"{v:.6f}" for v in row) for row in np.asarray(p)]
        lines.append("")
    return atomic_write_text(path, "\n".join(lines))


def _bh(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg q-values along the last axis."""
    n = p.shape[-1]
    order = np.argsort(p, axis=-1)
    ranked = np.take_along_axis(p, order, -1) * n / np.arange(1, n + 1)
    q = np.minimum.accumulate(ranked[..., ::-1], axis=-1)[..., ::-1]
    out = np.empty_like(q)
    np.put_along_axis(out, order, np.minimum(q, 1.0), -1)
    return out


def match_motifs(
    pwms: list[np.ndarray] | np.ndarray,
    db: list[Motif] | None = None,
    *,
    names: list[str] | None = None,
    trim_ic: float = 0.3,
    n_best: int = 1,
    both_strands: bool = True,
) -> pd.DataFrame:
    """Tomtom (memelite) of each query matrix against a motif database.

    Parameters
    ----------
    pwms
        ``k`` query matrices ``(width, 4)``.
    db
        Target motifs (default :func:`load_jaspar`).
    names
        Query names (default ``filter0`` ...).
    trim_ic
        Trim query flanks below this many bits before matching (0: no trimming).
    n_best
        Best matches reported per query.
    both_strands
        Match the targets' reverse complements too (DNA); ``False`` for an RNA model's filters.

    Returns
    -------
    pandas.DataFrame
        One row per query and rank: ``query, rank, match_id, match_name, p_value, e_value,
        q_value, offset, overlap, strand`` (``strand`` ``+`` or ``-`` of the target).
    """
    tomtom = _tomtom()
    db = load_jaspar() if db is None else db
    names = names or [f"filter{i}" for i in range(len(pwms))]
    queries, spans = [], []
    for p in pwms:
        s, e = trim_pwm(p, trim_ic) if trim_ic > 0 else (0, len(p))
        spans.append((s, e))
        queries.append(np.ascontiguousarray(np.asarray(p, dtype=np.float64)[s:e].T))
    targets = [np.ascontiguousarray(m.ppm.T) for m in db]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p, _scores, offsets, overlaps, strands = tomtom(queries, targets, reverse_complement=both_strands)[:5]
    q = _bh(p)
    rows = []
    for i, name in enumerate(names):
        order = np.argsort(p[i], kind="stable")[:n_best]
        for r, j in enumerate(order, start=1):
            rows.append(
                {
                    "query": name,
                    "rank": r,
                    "match_id": db[j].id,
                    "match_name": db[j].name,
                    "p_value": float(p[i, j]),
                    "e_value": float(p[i, j] * len(db)),
                    "q_value": float(q[i, j]),
                    "offset": int(offsets[i, j]),
                    "overlap": int(overlaps[i, j]),
                    "strand": "+" if int(strands[i, j]) == 0 else "-",
                    "trimmed": f"{spans[i][0] + 1}-{spans[i][1]}",
                }
            )
    return pd.DataFrame(rows)


def filter_motifs(
    model: nn.Module,
    X: torch.Tensor,
    db: list[Motif] | None = None,
    *,
    threshold: float = 0.5,
    trim_ic: float = 0.3,
    min_sites: int = 10,
    both_strands: bool = True,
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """First-layer filters of ``model`` as PWMs from ``X``, each with its best database match.

    Parameters
    ----------
    model
        Any model whose first ``Conv1d`` reads the one-hot input.
    X
        ``(n, 4, L)`` one-hot sequences (typically the positive test sequences).
    db
        Target motifs (default JASPAR CORE vertebrates).
    threshold
        Windows activating a filter to at least this fraction of its maximum make its PWM.
    min_sites
        Filters built from fewer windows are reported without a match.
    both_strands
        Match against the database motifs' reverse complements too (``False``: an RNA model).

    Returns
    -------
    (table, pwms, n_sites)
        ``table`` one row per filter, sorted by information content: ``filter, n_sites,
        ic_bits, consensus, match_id, match_name, p_value, e_value, q_value, strand``;
        ``pwms`` ``(n_filters, width, 4)``; ``n_sites`` ``(n_filters,)``.
    """
    pwms, n_sites = filter_pwms(model, X, threshold=threshold)
    names = [f"filter{i}" for i in range(len(pwms))]
    ic = np.array([information_content(p).sum() for p in pwms])
    table = pd.DataFrame(
        {
            "filter": names,
            "n_sites": n_sites.astype(int),
            "ic_bits": ic.round(3),
            "consensus": [consensus(p[slice(*trim_pwm(p, trim_ic))]) for p in pwms],
        }
    )
    ok = np.flatnonzero(n_sites >= min_sites)
    cols = ["match_id", "match_name", "p_value", "e_value", "q_value", "strand"]
    for c in cols:
        table[c] = None
    if ok.size:
        queries, qnames = [pwms[i] for i in ok], [names[i] for i in ok]
        m = match_motifs(queries, db, names=qnames, trim_ic=trim_ic, both_strands=both_strands)
        m = m.set_index("query")
        for c in cols:
            table.loc[ok, c] = m.loc[[names[i] for i in ok], c].to_numpy()
    table = table.iloc[np.argsort(-ic, kind="stable")].reset_index(drop=True)
    return table, pwms, n_sites
