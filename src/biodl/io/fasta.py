"""FASTA reading (plain or gzip) and indexed genome access through pyfaidx."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from biodl.errors import BiodlInputError
from biodl.io._util import atomic_output, atomic_write_text, check_file, input_errors, is_gzip, open_text

_VALID = np.zeros(256, dtype=bool)
for _c in b"ACGTUNacgtun":
    _VALID[_c] = True
_VALID_IUPAC = _VALID.copy()
for _c in b"RYSWKMBDHVryswkmbdhv":
    _VALID_IUPAC[_c] = True


@dataclass(frozen=True)
class FastaRecord:
    """One FASTA record: ``name`` (first word of the header), full ``description`` and
    ``sequence``; ``line`` is the 1-based line of its header in the file."""

    name: str
    description: str
    sequence: str
    line: int


def _first_invalid(seq: str, iupac_as_n: bool) -> int:
    buf = np.frombuffer(seq.encode("ascii", errors="replace"), dtype=np.uint8)
    ok = (_VALID_IUPAC if iupac_as_n else _VALID)[buf]
    return -1 if ok.all() else int(np.argmax(~ok))


#: What to do with an IUPAC ambiguity code, said by the sequence readers.
IUPAC_HINT = (
    ": an IUPAC ambiguity code; train with --iupac-as-n to read them as N (a model trained "
    "without it scores them once they are written as N)"
)


def validate_sequence(seq: str, path, record, iupac_as_n: bool = False, allow_empty: bool = False) -> None:
    """Raise a BiodlInputError naming ``path`` and ``record`` if ``seq`` is empty or has a
    character outside ``ACGTUN`` (any case)."""
    if not seq and not allow_empty:
        raise BiodlInputError("empty sequence", path=path, record=record)
    pos = _first_invalid(seq, iupac_as_n)
    if pos >= 0:
        hint = ""
        if seq[pos] in "RYSWKMBDHVryswkmbdhv":
            hint = IUPAC_HINT
        raise BiodlInputError(
            f"invalid character {seq[pos]!r} at position {pos + 1} of the sequence "
            f"(allowed: A, C, G, T, U, N in either case){hint}",
            path=path,
            record=record,
        )


def read_fasta(path: str | Path, validate: bool = True, iupac_as_n: bool = False) -> list[FastaRecord]:
    """Read every record of a FASTA file (plain or gzip; multi-line sequences joined).

    Parameters
    ----------
    path
        The FASTA file.
    validate
        Check each sequence is non-empty and uses only ``ACGTUN`` (case-insensitive).
    iupac_as_n
        Accept the other IUPAC ambiguity codes too.

    Raises
    ------
    BiodlInputError
        File missing, text before the first header, an empty record, or an invalid
        character (record name and line are given).
    """
    return list(iter_fasta(path, validate=validate, iupac_as_n=iupac_as_n))


def iter_fasta(path: str | Path, validate: bool = True, iupac_as_n: bool = False) -> Iterator[FastaRecord]:
    """:func:`read_fasta` one record at a time (a file of any size in constant memory); the
    same checks, raised when the reader reaches the bad record."""
    p = check_file(path)
    header: str | None = None
    header_line = 0
    chunks: list[str] = []
    n = 0

    def record() -> FastaRecord:
        seq = "".join(chunks)
        name = header.split(maxsplit=1)[0] if header.strip() else ""
        if not name:
            raise BiodlInputError("header line without a name", path=p, record=header_line)
        if validate:
            try:
                validate_sequence(seq, p, header_line, iupac_as_n)
            except BiodlInputError as e:
                raise BiodlInputError(f"record {name!r}: {e.problem}", path=p, record=header_line) from None
        return FastaRecord(name, header, seq, header_line)

    with open_text(p) as fh:
        for lineno, line in enumerate(fh, start=1):
            line = line.rstrip("\r\n")
            if line.startswith(">"):
                if header is not None:
                    n += 1
                    yield record()
                header, header_line, chunks = line[1:].strip(), lineno, []
            elif line.startswith(";"):
                continue
            elif line.strip():
                if header is None:
                    raise BiodlInputError(
                        "sequence text before the first '>' header: is this a FASTA file?",
                        path=p,
                        record=lineno,
                    )
                chunks.append(line.strip())
    if header is not None:
        n += 1
        yield record()
    if not n:
        raise BiodlInputError("no FASTA records found", path=p)


def write_fasta(path: str | Path, records: list[tuple[str, str]], width: int = 0) -> Path:
    """Write ``(name, sequence)`` pairs as FASTA, atomically. ``width`` > 0 wraps lines."""
    lines = []
    for name, seq in records:
        lines.append(f">{name}")
        if width > 0:
            lines.extend(seq[i : i + width] for i in range(0, len(seq), width))
        else:
            lines.append(seq)
    return atomic_write_text(path, "\n".join(lines) + "\n")


def _is_bgzf(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(18)
    # BGZF: gzip with FEXTRA and a 'BC' subfield.
    return len(head) >= 14 and head[:2] == b"\x1f\x8b" and head[3] & 4 and head[12:14] == b"BC"


def _cache_dir() -> Path:
    return Path(os.environ.get("BIODL_CACHE", Path.home() / ".cache" / "biodl"))


def _genome_cache(cache_dir: str | Path | None, p: Path, why: str) -> Path:
    """The folder for what biodl keeps of genome ``p`` (``why``: a decompressed copy, an index),
    created; one that cannot be created (a read-only home, a container) is a clear error."""
    cdir = Path(cache_dir) if cache_dir else _cache_dir() / "genomes"
    try:
        cdir.mkdir(parents=True, exist_ok=True)
        if not os.access(cdir, os.W_OK):
            raise PermissionError("not writable")
    except OSError as e:
        raise BiodlInputError(
            f"cannot write the genome cache {cdir} ({getattr(e, 'strerror', None) or e}): it holds {why}; "
            "set BIODL_CACHE to a writable folder"
            + (", or give an uncompressed or bgzip-compressed genome" if "decompressed" in why else ""),
            path=p,
        ) from None
    return cdir


def _cache_key(p: Path) -> str:
    st = p.stat()
    return hashlib.sha1(f"{p.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:16]


def _fai_problem(fasta: Path, fai: Path, n_checked: int = 8) -> str | None:
    """Why the ``.fai`` index ``fai`` does not describe the plain FASTA ``fasta`` (``None`` when
    it does). pyfaidx rebuilds an index only when it is older than the FASTA, so an index left
    from another file (copied, or the FASTA replaced by one with an older time) would silently
    give wrong bases. Checked cheaply on the first, last and a few records in between: each
    sequence starts right after a header line naming it, its lines break where the index says,
    and nothing but white space follows the last record."""
    try:
        rows = []
        with open(fai, encoding="utf-8", errors="replace") as fh:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                f = line.rstrip("\r\n").split("\t")
                if len(f) < 5:
                    return f"line {lineno} has {len(f)} fields, expected 5"
                rows.append((f[0], int(f[1]), int(f[2]), int(f[3]), int(f[4])))
    except ValueError:
        return "a field that should be a number is not"
    if not rows:
        return "it lists no sequences"
    size = fasta.stat().st_size
    pick = sorted({0, len(rows) - 1, *range(0, len(rows), max(1, len(rows) // n_checked))})
    with open(fasta, "rb") as fh:
        for i in pick:
            name, length, offset, bases, width = rows[i]
            if offset < 1 or offset > size or bases < 1 or width < bases or width - bases > 2:
                return f"{name!r}: offset {offset} / line length {bases} / line width {width} do not fit"
            fh.seek(max(0, offset - 4096))
            before = fh.read(offset - max(0, offset - 4096))
            if not before.endswith(b"\n"):
                return f"{name!r}: its sequence (byte {offset}) does not start after a header line"
            head_at = before.rfind(b"\n>", 0, len(before) - 1)
            header = before[head_at + 1 :] if head_at >= 0 else before
            if not header.startswith(b">") or (head_at < 0 and offset > 4096):
                return f"{name!r}: no '>' header line before byte {offset}"
            got = header[1:].split(maxsplit=1)[0].decode("utf-8", "replace") if header[1:].strip() else ""
            if got != name:
                return f"the sequence at byte {offset} is {got!r} in the FASTA, not {name!r}"
            if length > bases:
                fh.seek(offset + bases)
                if fh.read(width - bases) not in (b"\n", b"\r\n"):
                    return f"{name!r}: its lines do not break every {bases} bases"
            # the byte after its last base (a file may end without a newline after it)
            end = offset + ((length - 1) // bases) * width + (length - 1) % bases + 1 if length else offset
            if end > size:
                return f"{name!r}: {length} bases would run past the end of the file"
            if i == len(rows) - 1:
                fh.seek(end)
                if fh.read(4097).strip():
                    return f"the FASTA goes on after its last indexed sequence {name!r}"
    return None


def _checked_index(p: Path, target: Path, cache_dir: str | Path | None) -> str | None:
    """The index file to open ``target`` with: ``None`` (pyfaidx's own ``.fai`` beside it),
    or, when that ``.fai`` does not match the FASTA (:func:`_fai_problem`), a fresh one in
    the cache directory (a warning names the stale file; it is left as it is)."""
    fai = Path(str(target) + ".fai")
    if not fai.is_file() or fai.stat().st_mtime < target.stat().st_mtime:
        # pyfaidx (re)builds the .fai beside the FASTA: in a folder biodl cannot write (a shared
        # reference), in the cache directory instead
        if os.access(target.parent, os.W_OK) or _is_bgzf(target):
            return None  # (BGZF: pyfaidx needs its .gzi beside it as well; its own error says so)
        cdir = _genome_cache(cache_dir, p, f"the index of {p} (its folder is not writable)")
        return str(cdir / f"{target.name}.{_cache_key(target)}.fai")
    if _is_bgzf(target):
        return None  # BGZF offsets are not file offsets
    problem = _fai_problem(target, fai)
    if problem is None:
        return None
    from biodl.io._util import note

    cdir = _genome_cache(cache_dir, p, f"a fresh index of {p}")
    side = cdir / f"{target.name}.{_cache_key(target)}.fai"
    note(
        f"[biodl] warning: {fai}: this index does not match {p} ({problem}); it was left as it is "
        f"and a fresh index is used instead ({side}). Delete or re-create it (samtools faidx {p})."
    )
    return str(side)


def open_genome(path: str | Path, cache_dir: str | Path | None = None):
    """Open a genome FASTA for random access with pyfaidx (never loaded whole into RAM).

    Plain FASTA and BGZF-compressed FASTA are indexed in place. A plain-gzip FASTA (which
    cannot be indexed) is decompressed once into the cache directory (``$BIODL_CACHE``,
    default ``~/.cache/biodl``) and indexed there. An existing ``.fai`` newer than a plain
    FASTA (which pyfaidx would trust) is checked against the file; one that does not match
    it is left alone and a fresh index is built in the cache directory, with a warning.

    Returns
    -------
    pyfaidx.Fasta
        With ``as_raw=True`` (slices are strings), ``sequence_always_upper=False``.
    """
    import pyfaidx

    p = check_file(path)
    _check_fasta_start(p)
    target = p
    if is_gzip(p) and not _is_bgzf(p):
        cdir = _genome_cache(cache_dir, p, f"the decompressed copy of {p} (gzip cannot be read at random)")
        target = cdir / f"{p.name.removesuffix('.gz')}.{_cache_key(p)}.fa"
        if not target.exists():
            with (
                input_errors(p),
                atomic_output(target) as tmp,
                gzip.open(p, "rb") as src,
                open(tmp, "wb") as dst,
            ):
                shutil.copyfileobj(src, dst, 1 << 20)
    try:
        indexname = _checked_index(p, target, cache_dir)
        return pyfaidx.Fasta(
            str(target), indexname=indexname, as_raw=True, sequence_always_upper=False, rebuild=True
        )
    except Exception as e:  # pyfaidx raises several types for malformed files
        # name the user's file, not the decompressed copy, and keep no copy that cannot be used
        msg = str(e).replace(str(target), str(p))
        if target != p:
            for f in (target, Path(str(target) + ".fai")):
                f.unlink(missing_ok=True)
        raise BiodlInputError(f"cannot index genome FASTA: {msg}", path=p) from None


def _check_fasta_start(p: Path) -> None:
    """Refuse a file whose first (decompressed) text is not a FASTA header, before anything is
    decompressed or indexed: a GFF, BED or VCF given as the genome."""
    try:
        with input_errors(p), gzip.open(p, "rb") if is_gzip(p) else open(p, "rb") as fh:
            head = fh.read(4096)
    except BiodlInputError:
        return  # a damaged gzip: open_genome's own reading names it
    first = head.lstrip()[:1]
    if first and first != b">":
        line = head.lstrip().split(b"\n", 1)[0][:60].decode("utf-8", "replace")
        raise BiodlInputError(
            f"is not a genome FASTA: it starts with {line!r} (a FASTA starts with a '>' header line)",
            path=p,
        )
