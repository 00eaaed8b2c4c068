"""Reading and writing what protein contact prediction eats and makes: multiple sequence
alignments, native structures (as distance matrices aligned to the query), CASP RR contact
lists and protein manifests. Pure numpy (and Biopython for Stockholm, PDB / mmCIF and the
pairwise alignment of a structure's sequence to the query); no torch.

Alignments are stored as integer codes ``(n_seqs, L)`` over :data:`ALPHABET` (the CCMpred /
PSICOV order ``ARNDCQEGHILKMFPSTWYV-``: 0-19 amino acids, 20 gap) plus :data:`UNKNOWN` (21) for
``X`` / ``J`` / ``O`` / ``U``; ``B`` and ``Z`` read as ``D`` and ``E`` (as PSICOV and DeepCov do).
Row 0 is always the query; columns are the query's residues (columns where the query has a gap
are dropped, insert states of A2M / A3M are dropped).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from biodl.errors import BiodlInputError

#: Amino acids then the gap, in the CCMpred / PSICOV / DeepCov order.
ALPHABET = "ARNDCQEGHILKMFPSTWYV-"
GAP = 20
#: Code of an unknown residue (X, J, O, U): a gap for the Potts models, not counted by DeepCov.
UNKNOWN = 21
Q = 21

_LUT = np.full(256, 255, dtype=np.uint8)
for _i, _c in enumerate(ALPHABET):
    _LUT[ord(_c)] = _i
_LUT[ord(".")] = GAP
for _c, _a in (("B", "D"), ("Z", "E")):
    _LUT[ord(_c)] = ALPHABET.index(_a)
for _c in "XJOU":
    _LUT[ord(_c)] = UNKNOWN

_THREE = {
    "ALA": "A", "ARG": "R", "ASN": "N", "ASP": "D", "CYS": "C", "GLN": "Q", "GLU": "E", "GLY": "G",
    "HIS": "H", "ILE": "I", "LEU": "L", "LYS": "K", "MET": "M", "PHE": "F", "PRO": "P", "SER": "S",
    "THR": "T", "TRP": "W", "TYR": "Y", "VAL": "V", "MSE": "M", "SEC": "C", "PYL": "K", "HYP": "P",
    "SEP": "S", "TPO": "T", "PTR": "Y", "CSO": "C", "MLY": "K",
}  # fmt: skip


@dataclass
class MSA:
    """A multiple sequence alignment over the query's residues.

    Attributes
    ----------
    codes
        ``(n_seqs, L)`` uint8 codes over :data:`ALPHABET` (+ :data:`UNKNOWN`); row 0 is the query.
    names
        One name per row (``seq<k>`` for formats without names).
    query
        The query sequence over the ``L`` columns (upper case, no gaps; ``X`` where unknown).
    source
        The file it was read from.
    query_row
        Index of the query among the file's records.
    written
        The query over the ``L`` columns as the file writes it (upper case: ``B``, ``Z``, ``X``
        kept; ``query`` reads ``B`` / ``Z`` as ``D`` / ``E``); the sequence of an RR file.
    """

    codes: np.ndarray
    names: list[str]
    query: str
    source: str | None = None
    query_row: int = 0
    written: str = ""

    @property
    def query_as_written(self) -> str:
        """:attr:`written`, or :attr:`query` where it is not known."""
        return self.written or self.query

    @property
    def L(self) -> int:  # noqa: N802 - the usual name of the sequence length
        return int(self.codes.shape[1])

    @property
    def n_seqs(self) -> int:
        return int(self.codes.shape[0])

    def subset(self, rows) -> MSA:
        """The alignment of ``rows`` (the query, row 0, is always kept first)."""
        rows = np.asarray(rows, dtype=int)
        rows = np.concatenate([[0], rows[rows != 0]])
        return MSA(
            self.codes[rows],
            [self.names[i] for i in rows],
            self.query,
            self.source,
            self.query_row,
            self.written,
        )


def check_query(query: str, what: str = "--query", path=None, record=None) -> str:
    """``query`` upper case without white space (a pasted sequence may wrap), or a
    :class:`BiodlInputError` naming ``what`` when it holds a character that is not an amino-acid
    letter (a digit, ``-``, ``*``, ...: each is named with its position in ``query``) or no letter.
    Any letter is accepted: the 20 amino acids, ``B`` / ``Z`` (read as ``D`` / ``E``), ``X``,
    ``J``, ``O``, ``U`` (unknown)."""
    bad = [(k + 1, c) for k, c in enumerate(query) if not (c.isascii() and c.isalpha()) and not c.isspace()]
    if bad:
        shown = ", ".join(f"{c!r} at position {k}" for k, c in bad[:5]) + (
            f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        )
        raise BiodlInputError(
            f"{what} holds {len(bad)} character(s) that are not amino-acid letters: {shown} (a query is "
            "its residues' one-letter codes, without gaps or numbers)",
            path=path,
            record=record,
        )
    q = re.sub(r"\s", "", query).upper()
    if not q:
        raise BiodlInputError(f"{what} is empty: no residue", path=path, record=record)
    return q


def normalise_query(seq: str) -> str:
    """A sequence as :attr:`MSA.query` writes it: ``B`` / ``Z`` as ``D`` / ``E``, ``J`` / ``O`` /
    ``U`` as ``X`` (letters only)."""
    codes = _LUT[np.frombuffer(seq.upper().encode("ascii", "replace"), dtype=np.uint8)]
    return "".join(ALPHABET[c] if c < GAP else "X" for c in codes)


# ---------------------------------------------------------------------------------- MSA reading
def _records_fasta(lines: list[str], path) -> list[tuple[str, str, int]]:
    recs: list[tuple[str, str, int]] = []
    name, buf, start = None, [], 0
    for k, line in enumerate(lines, start=1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if s.startswith(">"):
            if name is not None:
                recs.append((name, "".join(buf), start))
            name, buf, start = s[1:].split()[0] if s[1:].split() else f"seq{len(recs)}", [], k
        else:
            if name is None:
                raise BiodlInputError("sequence line before the first '>' header", path=path, record=k)
            buf.append(s.replace(" ", ""))
    if name is not None:
        recs.append((name, "".join(buf), start))
    return recs


def _records_aln(lines: list[str], path) -> list[tuple[str, str, int]]:
    recs = []
    for k, line in enumerate(lines, start=1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        parts = s.split()
        seq = parts[-1]  # PSICOV .aln: one sequence per line (a leading name is tolerated)
        recs.append((parts[0] if len(parts) > 1 else f"seq{len(recs)}", seq, k))
    return recs


def _records_stockholm(lines: list[str], path) -> list[tuple[str, str, int]]:
    import io

    from Bio import AlignIO

    try:  # the text already read (and decompressed), not the path: a .sto.gz is read too
        aln = AlignIO.read(io.StringIO("\n".join(lines) + "\n"), "stockholm")
    except ValueError as e:
        raise BiodlInputError(f"not a readable Stockholm alignment ({e})", path=path) from None
    return [(r.id, str(r.seq).replace(".", "-").upper(), k + 1) for k, r in enumerate(aln)]


def _suffix(path: Path) -> str:
    """The file's format suffix, lower case, without a trailing ``.gz`` (``x.a3m.gz`` -> ``a3m``)."""
    sufs = [x.lower().lstrip(".") for x in path.suffixes]
    if sufs and sufs[-1] == "gz":
        sufs = sufs[:-1]
    return sufs[-1] if sufs else ""


def _sniff(path: Path, lines: list[str]) -> str:
    # '#' lines other than Stockholm's header are comments (ColabFold's '#40\t1', HH-suite's '#A3M#')
    first = ""
    for ln in lines:
        first = ln.strip()
        if first and (not first.startswith("#") or first.startswith("# STOCKHOLM")):
            break
    else:
        first = ""
    suf = _suffix(path)
    if first.startswith("# STOCKHOLM"):
        return "stockholm"
    if suf in ("a2m", "a3m"):
        return suf
    if first.startswith(">"):
        return "fasta"
    return "aln"


def _drop_inserts(seq: str) -> str:
    """A2M / A3M: lower-case letters and '.' are insert states (not alignment columns)."""
    return re.sub(r"[a-z.]", "", seq)


def read_msa(path: str | Path, query: str | None = None, fmt: str | None = None) -> MSA:
    """Read an alignment and put its query first, over the query's residues.

    Parameters
    ----------
    path
        Aligned FASTA / A2M / A3M (insert states -- lower case and ``.`` -- dropped), PSICOV
        ``.aln`` (one sequence per line) or Stockholm (Biopython); plain or gzip.
    query
        The query sequence. Without it the first record is the query; with it the record whose
        residues are the query (or a stretch of it, or that contains it; else the most similar
        by global alignment, at least 90 % identical) -- PSICOV ``.aln`` files do not always
        start with the query.
    fmt
        ``fasta``, ``a2m``, ``a3m``, ``aln`` or ``stockholm`` (default: from the content and suffix).

    Returns
    -------
    MSA
        Codes ``(n_seqs, L)``, query first; columns where the query has a gap are dropped.

    Raises
    ------
    BiodlInputError
        Empty alignment, rows of different lengths (ragged), characters that are not amino
        acids or gaps, query not found.
    """
    from biodl.io._util import check_file, open_text

    p = check_file(path)
    with open_text(p) as fh:
        try:
            lines = fh.read().splitlines()
        except UnicodeDecodeError:
            raise BiodlInputError("not a text alignment (binary content)", path=p) from None
    fmt = (fmt or _sniff(p, lines)).lower()
    if fmt == "stockholm":
        recs = _records_stockholm(lines, p)
    elif fmt in ("fasta", "a2m", "a3m"):
        recs = _records_fasta(lines, p)
    elif fmt == "aln":
        recs = _records_aln(lines, p)
    else:
        raise BiodlInputError(f"unknown alignment format {fmt!r} (fasta, a2m, a3m, aln, stockholm)", path=p)
    if not recs or all(not s for _, s, _ in recs):
        raise BiodlInputError("empty alignment: no aligned sequence", path=p)
    seqs = [s for _, s, _ in recs]
    if fmt in ("a2m", "a3m") or (
        fmt == "fasta" and any(re.search(r"[a-z.]", s) for s in seqs) and len({len(s) for s in seqs}) > 1
    ):
        seqs = [_drop_inserts(s) for s in seqs]
    else:
        seqs = [s.upper() for s in seqs]
    width = len(seqs[0])
    if width == 0 and recs[0][1].strip(".-") and len(seqs) > 1:  # the query was all insert states
        raise BiodlInputError(
            f"the first sequence ({recs[0][0]!r}, the query) is all lower case: in A2M / A3M lower-case "
            "letters are insert states, so it has no match column; write the query in upper case",
            path=p,
            record=recs[0][2],
        )
    for (name, _, line), s in zip(recs, seqs, strict=True):
        if len(s) != width:
            raise BiodlInputError(
                f"ragged alignment: sequence {name!r} has {len(s)} columns, the first has {width}"
                + (" (after dropping A2M/A3M insert states)" if fmt in ("a2m", "a3m") else ""),
                path=p,
                record=line,
            )
    if width == 0:
        raise BiodlInputError("empty alignment: the sequences have no columns", path=p)
    raw = np.frombuffer("".join(seqs).encode("latin-1", "replace"), dtype=np.uint8).reshape(len(seqs), width)
    codes = _LUT[raw]
    bad = np.argwhere(codes == 255)
    if len(bad):
        r, c = bad[0]
        ch = chr(raw[r, c])
        raise BiodlInputError(
            f"unknown character {ch!r} in sequence {recs[r][0]!r} at column {c + 1} "
            f"({len(bad)} such character(s); alignments hold amino acids, '-' and '.')",
            path=p,
            record=recs[r][2],
        )
    qrow = 0 if query is None else find_query(seqs, query, path=p)
    keep = codes[qrow] != GAP
    if not keep.any():
        raise BiodlInputError(f"the query (record {qrow + 1}) is all gaps", path=p)
    order = np.concatenate([[qrow], np.delete(np.arange(len(seqs)), qrow)])
    codes = np.ascontiguousarray(codes[order][:, keep])
    qseq = "".join(ALPHABET[c] if c < GAP else "X" for c in codes[0])
    written = raw[qrow][keep].tobytes().decode("latin-1").upper()
    return MSA(codes, [recs[i][0] for i in order], qseq, str(p), int(qrow), written)


def find_query(seqs: list[str], query: str, path=None, min_identity: float = 0.9) -> int:
    """Index of the aligned sequence that is the ``query``.

    In order: a row whose residues equal the query; the longest row whose residues are a
    stretch of the query (an alignment of one domain); a row that contains the query; else
    the row most identical to the query by global alignment (BLOSUM62) among the 20 sharing
    most 5-mers with it, if at least ``min_identity`` identical over the shorter of the two.
    """
    q = normalise_query(check_query(query, "the query sequence"))
    ungapped = [normalise_query(re.sub(r"[^A-Za-z]", "", s)) for s in seqs]
    for i, s in enumerate(ungapped):
        if s == q:
            return i
    inside = [(len(s), -i) for i, s in enumerate(ungapped) if len(s) >= 10 and s in q]
    if inside:
        return -max(inside)[1]
    for i, s in enumerate(ungapped):
        if len(q) >= 10 and q in s:
            return i
    kmers = {q[k : k + 5] for k in range(len(q) - 4)}
    shared = np.array([sum(s[k : k + 5] in kmers for k in range(len(s) - 4)) for s in ungapped])
    best, best_id = -1, 0.0
    for i in np.argsort(-shared, kind="stable")[:20]:
        if shared[i] == 0:
            break
        ident = _identity(ungapped[i], q)
        if ident > best_id:
            best, best_id = int(i), ident
    if best < 0 or best_id < min_identity:
        raise BiodlInputError(
            f"query not found: no aligned sequence matches the query ({len(q)} residues"
            + (f"; the most similar is record {best + 1}, {best_id:.0%} identical" if best >= 0 else "")
            + "). Give the query sequence of this alignment",
            path=path,
        )
    return best


# ------------------------------------------------------------------------------- alignment
def _aligner():
    from Bio import Align
    from Bio.Align import substitution_matrices

    a = Align.PairwiseAligner(mode="global")
    a.substitution_matrix = substitution_matrices.load("BLOSUM62")
    a.open_gap_score, a.extend_gap_score = -10.0, -0.5
    a.open_end_gap_score = a.extend_end_gap_score = 0.0
    return a


def _clean(s: str) -> str:
    """Letters the BLOSUM62 aligner knows (anything else becomes X)."""
    return re.sub(r"[^ARNDCQEGHILKMFPSTWYVBZX*]", "X", s.upper())


def align_map(query: str, target: str) -> np.ndarray:
    """Position of each query residue in ``target`` by global alignment with free end gaps
    (BLOSUM62, gap open -10, extend -0.5): ``(len(query),)`` int, -1 where unaligned."""
    out = np.full(len(query), -1, dtype=int)
    if not query or not target:
        return out
    aln = _aligner().align(_clean(query), _clean(target))[0]
    for (qs, qe), (ts, te) in zip(*aln.aligned, strict=True):
        out[qs:qe] = np.arange(ts, te)
    return out


def _identity(a: str, b: str) -> float:
    m = align_map(a, b)
    ok = m >= 0
    same = sum(a[i] == b[j] for i, j in zip(np.flatnonzero(ok), m[ok], strict=True))
    return same / max(min(len(a), len(b)), 1)


# ------------------------------------------------------------------------------- structures
@dataclass
class Native:
    """A native structure reduced to what contacts are scored on.

    Attributes
    ----------
    sequence
        One letter per residue with a coordinate (``n``).
    distances
        ``(n, n)`` CB-CB distances in angstrom (CA for glycine or a residue without CB).
    source
        The file it came from (and chain).
    numbers
        The residue numbers (with insertion codes) in the file.
    chain
        The chain read (``None`` for a distance list).
    """

    sequence: str
    distances: np.ndarray
    source: str | None = None
    numbers: list[str] = field(default_factory=list)
    chain: str | None = None


def read_structure(path: str | Path, chain: str | None = None, query: str | None = None) -> Native:
    """CB-CB (CA for Gly) distances of one chain of a PDB or mmCIF file, plain or gzip (first
    model; Biopython).

    ``chain`` defaults to the protein chain that matches ``query`` best (most identical residues
    when aligned to it; the first such chain on a tie) or, without a query, the first chain with
    amino-acid residues. :attr:`Native.chain` says which chain was read.

    Raises
    ------
    BiodlInputError
        Unreadable file, the chain missing, or no amino-acid residue with a CA / CB atom.
    """
    import io
    import warnings

    from Bio.PDB import MMCIFParser, PDBParser

    from biodl.io._util import check_file, open_text

    p = check_file(path)
    with open_text(p) as fh:
        text = fh.read()
    cif = _suffix(p) in ("cif", "mmcif") or text[:4096].lstrip().startswith("data_")
    parser = MMCIFParser(QUIET=True) if cif else PDBParser(QUIET=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            structure = parser.get_structure(p.name.split(".")[0], io.StringIO(text))
    except Exception as e:  # noqa: BLE001 - Biopython raises many kinds
        raise BiodlInputError(f"not a readable {'mmCIF' if cif else 'PDB'} file ({e})", path=p) from None
    models = list(structure)
    if not models:
        raise BiodlInputError("no model (no ATOM records)", path=p)
    chains = {c.id: c for c in models[0]}

    def residues(c):
        out = []
        for r in c:
            name = r.get_resname().strip().upper()
            aa = _THREE.get(name)
            if aa is None or r.id[0] not in (" ",) and name not in ("MSE",):
                continue
            atom = r["CB"] if ("CB" in r and aa != "G") else (r["CA"] if "CA" in r else None)
            if atom is None:
                continue
            ca_for_cb = aa != "G" and "CB" not in r
            xyz = atom.coord.astype(np.float64)
            if not np.isfinite(xyz).all():  # Biopython reads "nan" as a number: no distance from it
                raise BiodlInputError(
                    f"chain {c.id!r}, residue {name} {r.id[1]}{r.id[2].strip()}, atom {atom.get_id()}: "
                    f"coordinates are not finite numbers ({', '.join(f'{v:g}' for v in xyz)})",
                    path=p,
                )
            out.append((aa, xyz, f"{r.id[1]}{r.id[2].strip()}", ca_for_cb))
        return out

    if chain is None:
        found = [(cid, res) for cid, c in chains.items() if (res := residues(c))]
        if not found:
            raise BiodlInputError("no amino-acid residue with CA/CB atoms in any chain", path=p)
        chain, res = found[0]
        if query and len(found) > 1:  # the chain that is the query, not a peptide or a partner
            score = [_matches(query, "".join(r[0] for r in rs)) for _, rs in found]
            chain, res = found[int(np.argmax(score))]
    else:
        if chain not in chains:
            raise BiodlInputError(
                f"chain {chain!r} not in the structure "
                f"(chains: {', '.join(repr(c) for c in chains) or 'none'})",
                path=p,
            )
        res = residues(chains[chain])
        if not res:
            raise BiodlInputError(f"chain {chain!r} has no amino-acid residue with CA/CB atoms", path=p)
    no_cb = sum(r[3] for r in res)
    if no_cb:
        from biodl.io._util import note

        n_aa = sum(r[0] != "G" for r in res)
        note(
            f"[biodl] {p}:{chain}: {no_cb} of {n_aa} non-glycine residues have no CB atom"
            + (" (a CA-only model?)" if no_cb == n_aa else "")
            + "; their CA is used instead, so their contacts are scored on CA distances"
        )
    xyz = np.stack([r[1] for r in res])
    d = np.sqrt(((xyz[:, None, :] - xyz[None, :, :]) ** 2).sum(-1))
    return Native("".join(r[0] for r in res), d, f"{p}:{chain}", [r[2] for r in res], chain)


def _matches(query: str, target: str) -> int:
    """Identical residues of ``query`` and ``target`` aligned by :func:`align_map`."""
    m = align_map(query, target)
    ok = np.flatnonzero(m >= 0)
    return int(sum(query[i] == target[m[i]] for i in ok))


def read_distance_list(path: str | Path, sequence: str) -> Native:
    """A PconsC2-style distance list (``i j distance`` per line, 1-based residues of
    ``sequence``; pairs not listed are unknown, ``#`` lines are comments, further columns are
    ignored; plain or gzip) as a :class:`Native`.

    Raises
    ------
    BiodlInputError
        Naming the line: fewer than 3 fields, a residue number that is not a positive integer or
        lies outside ``1..len(sequence)``, a distance that is not a finite number >= 0; and a
        list with no distance at all.
    """
    from biodl.io._util import check_file, open_text

    p = check_file(path)
    n = len(sequence)
    d = np.full((n, n), np.nan)
    np.fill_diagonal(d, 0.0)
    ii: list[int] = []
    jj: list[int] = []
    dd: list[float] = []
    try:
        with open_text(p) as fh:
            for k, line in enumerate(fh, start=1):
                s = line.strip()
                if not s or s.startswith("#"):
                    continue
                f = s.split()
                if len(f) < 3:
                    raise BiodlInputError(
                        f"a distance list line is 'i j distance', got {len(f)} field(s): {s[:60]!r}",
                        path=p,
                        record=k,
                    )
                try:
                    i, j = int(f[0]), int(f[1])
                except ValueError:
                    raise BiodlInputError(
                        f"residue numbers must be positive integers, got {f[0]!r} {f[1]!r} ('i j distance')",
                        path=p,
                        record=k,
                    ) from None
                try:
                    v = float(f[2])
                except ValueError:
                    v = None
                if v is None or not np.isfinite(v) or v < 0:
                    raise BiodlInputError(
                        f"distance {f[2]!r} of residues {i} {j} is not a number >= 0 (angstrom)",
                        path=p,
                        record=k,
                    )
                if min(i, j) < 1 or max(i, j) > n:
                    raise BiodlInputError(
                        f"residue pair {i} {j} outside 1..{n}: the sequence given for the distance list "
                        f"has {n} residues",
                        path=p,
                        record=k,
                    )
                ii.append(i - 1)
                jj.append(j - 1)
                dd.append(v)
    except UnicodeDecodeError:
        raise BiodlInputError("not a distance list 'i j distance' (binary content)", path=p) from None
    if not dd:
        raise BiodlInputError("no distances: the distance list ('i j distance' lines) is empty", path=p)
    i_, j_ = np.asarray(ii), np.asarray(jj)
    d[i_, j_] = d[j_, i_] = np.asarray(dd)
    return Native(sequence.upper(), d, str(p))


#: How to give a distance list's sequence, per entry point (see :func:`read_native`).
SEQUENCE_HOW = (
    "the native_sequence column of a protein table, or --set native_sequence=SEQ with one alignment"
)


def _is_distance_list(p: Path) -> bool:
    """A ``.CB`` suffix, or a first line (after blank and ``#`` lines) ``i j distance``."""
    if _suffix(p) == "cb":
        return True
    from biodl.io._util import open_text

    try:
        with open_text(p) as fh:
            for _, line in zip(range(1000), fh, strict=False):
                s = line.strip()
                if s and not s.startswith("#"):
                    return bool(re.match(r"\d+\s+\d+\s+[-+0-9.eE]+$", s))
    except (OSError, UnicodeDecodeError):
        return False
    return False


def read_native(
    path: str | Path,
    chain: str | None = None,
    sequence: str | None = None,
    *,
    query: str | None = None,
    sequence_how: str = SEQUENCE_HOW,
) -> Native:
    """A structure (PDB / mmCIF, plain or gzip) or a distance list (``.CB``, or lines
    ``i j distance``; needs ``sequence``, the sequence its residues are numbered on).

    ``query`` picks the structure's chain when ``chain`` is not given (see
    :func:`read_structure`); ``sequence_how`` says, in the error of a distance list without
    ``sequence``, how the caller's user gives it."""
    from biodl.io._util import check_file

    p = check_file(path)
    if _is_distance_list(p):
        if sequence is None:
            raise BiodlInputError(
                "a distance list ('i j distance') needs the structure's sequence, the one its residues "
                f"are numbered on ({sequence_how})",
                path=p,
            )
        return read_distance_list(p, sequence)
    return read_structure(p, chain, query)


def native_distances(query: str, native: Native, min_identity: float = 0.3) -> np.ndarray:
    """The native distances over the query's residues: ``(L, L)`` angstrom, NaN where a
    residue has no coordinate. The structure's sequence is aligned to the query (they often
    differ: a domain, missing residues, other numbering) -- never assumed equal.

    Raises
    ------
    BiodlInputError
        When the aligned residues are less than ``min_identity`` identical.
    """
    m = align_map(query, native.sequence)
    ok = np.flatnonzero(m >= 0)
    same = sum(query[i] == native.sequence[m[i]] for i in ok)
    if len(ok) == 0 or same / len(ok) < min_identity:
        raise BiodlInputError(
            f"the structure's sequence does not match the query "
            f"({same}/{len(ok)} aligned residues identical)",
            path=native.source,
        )
    L = len(query)
    d = np.full((L, L), np.nan)
    d[np.ix_(ok, ok)] = native.distances[np.ix_(m[ok], m[ok])]
    return d


# ---------------------------------------------------------------------------------- CASP RR
_RR_KEYS = ("PFRMAT", "TARGET", "AUTHOR", "METHOD", "MODEL", "REMARK", "END", "SEQRES")


def read_rr(path: str | Path) -> tuple[str | None, pd.DataFrame]:
    """A CASP RR contact file: the sequence (header lines of letters, or ``SEQRES`` lines;
    ``None`` if absent) and a table ``i, j, d_min, d_max, p`` (1-based residues, ``i < j``).
    Keyword lines (``PFRMAT``, ``TARGET``, ``MODEL``, ``REMARK``, ...) and ``#`` comment lines
    (MetaPSICOV) are skipped. Only the first model is read: a file of several ``MODEL`` blocks
    (CASP's alternative predictions) is read up to the ``END`` of the first one (a note says so)."""
    from biodl.io._util import check_file, note, open_text

    p = check_file(path)
    seq: list[str] = []
    rows = []
    models, end = 0, False
    with open_text(p) as fh:
        for k, line in enumerate(fh, start=1):
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            parts = s.split()
            key = parts[0]
            if end or key == "MODEL" and models:  # a second model: CASP's alternative predictions
                note(f"[biodl] {p}: read the first model only (line {k} and after: another model)")
                break
            if key == "MODEL":
                models += 1
            if key == "END" and (rows or seq):
                end = True
            if key == "SEQRES":
                s = "".join(parts[1:])
                if not re.fullmatch(r"[A-Za-z]+", s):
                    raise BiodlInputError(f"not a sequence after SEQRES: {s[:60]!r}", path=p, record=k)
                seq.append(s.upper())
                continue
            if re.fullmatch(r"[A-Za-z]+", s) and key not in _RR_KEYS:
                seq.append(s.upper())
                continue
            if key in _RR_KEYS:
                continue
            try:
                vals = [float(v) for v in parts]
            except ValueError:
                raise BiodlInputError(f"not an RR contact line: {s[:60]!r}", path=p, record=k) from None
            if len(vals) == 5:
                i, j, lo, hi, pr = vals
            elif len(vals) == 3:
                (i, j, pr), lo, hi = vals, 0.0, 8.0
            else:
                raise BiodlInputError(
                    f"an RR contact line has 5 fields (i j d_min d_max p), got {len(vals)}", path=p, record=k
                )
            i, j = int(i), int(j)
            if min(i, j) < 1:
                raise BiodlInputError(f"RR residue numbers start at 1, got {s[:60]!r}", path=p, record=k)
            rows.append((min(i, j), max(i, j), lo, hi, pr))
    df = pd.DataFrame(rows, columns=["i", "j", "d_min", "d_max", "p"])
    return ("".join(seq) or None), df


def rr_matrix(df: pd.DataFrame, L: int, path: str | Path | None = None) -> np.ndarray:
    """Scores of an RR table as a symmetric ``(L, L)`` matrix (NaN where not listed);
    ``path``: the RR file it came from, named in the error of a residue outside ``1..L``."""
    m = np.full((L, L), np.nan)
    if len(df):
        i, j = df["i"].to_numpy(int) - 1, df["j"].to_numpy(int) - 1
        bad = np.flatnonzero((i < 0) | (j < 0) | (i >= L) | (j >= L))
        if len(bad):
            b = bad[0]
            raise BiodlInputError(
                f"RR residues outside 1..{L} (the sequence has {L}): pair {i[b] + 1} {j[b] + 1} "
                f"({len(bad)} such pair(s))",
                path=path,
            )
        m[i, j] = m[j, i] = df["p"].to_numpy(float)
    return m


def rr_text(
    sequence: str,
    scores: np.ndarray,
    min_sep: int = 6,
    top: int | None = None,
    *,
    offset: int = 0,
    remarks: tuple[str, ...] | list[str] = (),
) -> str:
    """CASP RR text of a ``(L, L)`` score matrix: ``REMARK`` lines, the sequence (50 per
    line), then ``i j 0 8 p`` for pairs ``j - i >= min_sep``, best first (``top``: only that
    many). The map covers ``sequence[offset:offset + L]`` (a domain of a longer query):
    residues are numbered on ``sequence``."""
    L = scores.shape[0]
    if offset < 0 or len(sequence) < offset + L or (offset == 0 and len(sequence) != L):
        raise BiodlInputError(
            f"the sequence has {len(sequence)} residues, the map {L}"
            + (f" from {offset + 1}" if offset else "")
        )
    iu, ju = np.triu_indices(L, k=max(min_sep, 1))
    s = scores[iu, ju]
    ok = np.isfinite(s)
    iu, ju, s = iu[ok], ju[ok], s[ok]
    order = np.lexsort((ju, iu, -s))
    if top is not None:
        order = order[:top]
    lines = [f"REMARK {r}" for r in remarks]
    lines += [sequence[k : k + 50] for k in range(0, len(sequence), 50)]
    lines += [f"{iu[k] + offset + 1} {ju[k] + offset + 1} 0 8 {s[k]:.6g}" for k in order]
    return "\n".join(lines) + "\n"


def write_rr(
    path: str | Path, sequence: str, scores: np.ndarray, min_sep: int = 6, top: int | None = None
) -> Path:
    """Write :func:`rr_text` atomically."""
    from biodl.io._util import atomic_write_text

    return atomic_write_text(path, rr_text(sequence, scores, min_sep, top))


# -------------------------------------------------------------------------------- manifests
@dataclass
class Protein:
    """One protein of a manifest: its alignment and (optionally) native structure."""

    id: str
    msa: str
    query: str | None = None
    native: str | None = None
    chain: str | None = None
    native_sequence: str | None = None


#: The columns of a protein table.
MANIFEST_COLUMNS = ("id", "msa", "query", "native", "chain", "native_sequence")
#: Suffixes of a protein table (any other file is a table when its header names an ``msa`` column).
_TABLE_SUFFIXES = ("tsv", "csv", "tab")


def _table_lines(p: Path) -> list[tuple[int, str]]:
    """``(line number, text)`` of a table's lines other than blank and ``#`` lines."""
    from biodl.io._util import open_text

    try:
        with open_text(p) as fh:
            return [
                (k, ln.rstrip("\r\n")) for k, ln in enumerate(fh, 1) if ln.strip() and not ln.startswith("#")
            ]
    except UnicodeDecodeError:
        raise BiodlInputError("not a protein table (binary content)", path=p) from None


def _table_sep(p: Path, header: str) -> str:
    """``,`` for a CSV protein table (a ``.csv`` suffix, or a header with commas and no tab), else tab."""
    if _suffix(p) == "csv" or ("\t" not in header and "," in header):
        return ","
    return "\t"


def read_manifest(path: str | Path) -> list[Protein]:
    """A protein table (TSV, or CSV with a ``.csv`` suffix or a comma-separated header; header
    ``[id] msa [query] [native] [chain] [native_sequence]``; paths relative to the table; blank
    and ``#`` lines skipped; without ``id`` a protein is named by its alignment file).
    ``query``: the query sequence (to find it in a PSICOV ``.aln``); ``native``: PDB / mmCIF
    or a ``.CB`` distance list (then ``native_sequence``). Every row has the header's number of
    fields."""
    import csv

    from biodl.io._util import check_file

    p = check_file(path)
    lines = _table_lines(p)
    if not lines:
        raise BiodlInputError("empty protein table (no header line)", path=p)
    sep = _table_sep(p, lines[0][1])
    what = "CSV" if sep == "," else "TSV"
    rows = list(csv.reader([t for _, t in lines], delimiter=sep))
    header = [c.strip().lstrip("\ufeff").lower() for c in rows[0]]
    if "msa" not in header:
        raise BiodlInputError(
            f"no msa column in the protein table's header ({what}; a protein table has an msa column "
            f"and optionally id, query, native, chain, native_sequence; the header has: "
            f"{', '.join(repr(c) for c in header)})",
            path=p,
            record=lines[0][0],
        )
    twice = sorted({c for c in header if header.count(c) > 1})
    if twice:
        raise BiodlInputError(
            f"column(s) named twice in the header: {', '.join(twice)}", path=p, record=lines[0][0]
        )
    if len(lines) == 1:
        raise BiodlInputError("the protein table lists no protein", path=p)
    records: list[tuple[int, dict[str, str]]] = []
    for (n, _), r in zip(lines[1:], rows[1:], strict=True):
        if len(r) != len(header):
            raise BiodlInputError(
                f"{len(r)} field(s), the header has {len(header)} ({', '.join(header)}); "
                f"the table is read as {what}"
                + (" (a stray tab?)" if sep == "\t" and len(r) > len(header) else ""),
                path=p,
                record=n,
            )
        d = {c: v.strip() for c, v in zip(header, r, strict=True)}
        if not d["msa"]:
            raise BiodlInputError("empty msa field (the protein's alignment file)", path=p, record=n)
        for col in ("query", "native_sequence"):
            if d.get(col):
                d[col] = check_query(d[col], f"the {col} column", path=p, record=n)
        if "id" not in header:  # each protein named by its alignment file
            d["id"] = Path(d["msa"]).name.split(".")[0]
        records.append((n, d))
    seen: dict[str, int] = {}
    for n, d in records:
        v = d["id"]
        if not v:
            raise BiodlInputError("empty protein id", path=p, record=n)
        if v in seen:
            raise BiodlInputError(
                f"protein id {v!r} is listed twice (lines {seen[v]} and {n}); ids name the proteins "
                "in the outputs and must be unique",
                path=p,
                record=n,
            )
        seen[v] = n

    def rel(v: str) -> str | None:
        return None if not v else str((p.parent / v) if not Path(v).is_absolute() else Path(v))

    for n, d in records:  # a listed file that is not there: the table's line says which protein
        for col in ("msa", "native"):
            f = rel(d.get(col, ""))
            if f is not None and not Path(f).exists():
                raise BiodlInputError(
                    f"protein {d['id']!r}: its {col} file {f} is not there (paths are relative to the table)",
                    path=p,
                    record=n,
                )

    return [
        Protein(
            id=d["id"],
            msa=rel(d["msa"]),
            query=d.get("query") or None,
            native=rel(d.get("native", "")),
            chain=d.get("chain") or None,
            native_sequence=d.get("native_sequence") or None,
        )
        for _, d in records
    ]


def is_manifest(path: str | Path) -> bool:
    """Whether ``path`` is a protein table rather than an alignment: a ``.tsv`` / ``.csv`` /
    ``.tab`` file, or a file whose first line (after blank and ``#`` lines) is not an alignment's
    (``>``, ``# STOCKHOLM``) and has tab- or comma-separated fields of which one is a protein
    table column (``id``, ``msa``, ``query``, ``native``, ``chain``, ``native_sequence``). A table
    without an ``msa`` column is then refused by :func:`read_manifest` with that error, not read
    as a PSICOV alignment."""
    from biodl.io._util import open_text

    p = Path(path)
    if not p.is_file():
        return False
    if _suffix(p) in _TABLE_SUFFIXES:
        return True
    first = ""
    try:
        with open_text(p) as fh:
            for _, line in zip(range(1000), fh, strict=False):
                s = line.strip().lstrip("\ufeff")
                if s.startswith("# STOCKHOLM"):
                    return False
                if s and not s.startswith("#"):
                    first = s
                    break
    except (OSError, UnicodeDecodeError, EOFError):
        return False
    if not first or first.startswith(">"):
        return False
    cols = [c.strip().lower() for c in re.split(r"[\t,]", first)]
    return len(cols) > 1 and any(c in MANIFEST_COLUMNS for c in cols)
