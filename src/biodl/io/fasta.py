"""FASTA reading (plain or gzip) and indexed genome access through pyfaidx."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
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


def validate_sequence(seq: str, path, record, iupac_as_n: bool = False, allow_empty: bool = False) -> None:
    """Raise a BiodlInputError naming ``path`` and ``record`` if ``seq`` is empty or has a
    character outside ``ACGTUN`` (any case)."""
    if not seq and not allow_empty:
        raise BiodlInputError("empty sequence", path=path, record=record)
    pos = _first_invalid(seq, iupac_as_n)
    if pos >= 0:
        raise BiodlInputError(
            f"invalid character {seq[pos]!r} at position {pos + 1} of the sequence "
            "(allowed: A, C, G, T, U, N in either case)",
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
    p = check_file(path)
    records: list[FastaRecord] = []
    header: str | None = None
    header_line = 0
    chunks: list[str] = []

    def flush() -> None:
        if header is None:
            return
        seq = "".join(chunks)
        name = header.split(maxsplit=1)[0] if header.strip() else ""
        if not name:
            raise BiodlInputError("header line without a name", path=p, record=header_line)
        if validate:
            try:
                validate_sequence(seq, p, header_line, iupac_as_n)
            except BiodlInputError as e:
                raise BiodlInputError(f"record {name!r}: {e.problem}", path=p, record=header_line) from None
        records.append(FastaRecord(name, header, seq, header_line))

    with open_text(p) as fh:
        for lineno, line in enumerate(fh, start=1):
            line = line.rstrip("\r\n")
            if line.startswith(">"):
                flush()
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
    flush()
    if not records:
        raise BiodlInputError("no FASTA records found", path=p)
    return records


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


def open_genome(path: str | Path, cache_dir: str | Path | None = None):
    """Open a genome FASTA for random access with pyfaidx (never loaded whole into RAM).

    Plain FASTA and BGZF-compressed FASTA are indexed in place. A plain-gzip FASTA (which
    cannot be indexed) is decompressed once into the cache directory (``$BIODL_CACHE``,
    default ``~/.cache/biodl``) and indexed there.

    Returns
    -------
    pyfaidx.Fasta
        With ``as_raw=True`` (slices are strings), ``sequence_always_upper=False``.
    """
    import pyfaidx

    p = check_file(path)
    target = p
    if is_gzip(p) and not _is_bgzf(p):
        cdir = Path(cache_dir) if cache_dir else _cache_dir() / "genomes"
        cdir.mkdir(parents=True, exist_ok=True)
        st = p.stat()
        key = hashlib.sha1(f"{p.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:16]
        target = cdir / f"{p.name.removesuffix('.gz')}.{key}.fa"
        if not target.exists():
            with (
                input_errors(p),
                atomic_output(target) as tmp,
                gzip.open(p, "rb") as src,
                open(tmp, "wb") as dst,
            ):
                shutil.copyfileobj(src, dst, 1 << 20)
    try:
        return pyfaidx.Fasta(str(target), as_raw=True, sequence_always_upper=False, rebuild=True)
    except Exception as e:  # pyfaidx raises several types for malformed files
        raise BiodlInputError(f"cannot index genome FASTA: {e}", path=p) from None
