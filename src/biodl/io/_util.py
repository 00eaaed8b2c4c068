"""Small shared helpers for the io layer."""

from __future__ import annotations

import gzip
import io
import os
import tempfile
from pathlib import Path

from biodl.errors import BiodlInputError

GZIP_MAGIC = b"\x1f\x8b"


def check_file(path: str | Path) -> Path:
    """Return ``path`` as a Path, raising a clear error if it is missing or a directory."""
    p = Path(path)
    if not p.exists():
        raise BiodlInputError("file not found", path=p)
    if p.is_dir():
        raise BiodlInputError("is a directory, expected a file", path=p)
    return p


def is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == GZIP_MAGIC


def open_text(path: str | Path) -> io.TextIOBase:
    """Open a plain or gzip-compressed text file (detected by its magic bytes)."""
    p = check_file(path)
    if is_gzip(p):
        return io.TextIOWrapper(gzip.open(p, "rb"), encoding="utf-8", errors="replace")
    return open(p, encoding="utf-8", errors="replace")


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (temp file in the same directory, then rename)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, p)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return p


def guess_separator(path: Path, first_line: str, default: str | None = "\t") -> str | None:
    """The field separator of a table: ``,`` for ``.csv`` files, else a tab or a comma when the
    first line has one, else ``default`` (``None``: runs of white space)."""
    if Path(path).name.lower().removesuffix(".gz").endswith(".csv"):
        return ","
    if "\t" in first_line:
        return "\t"
    if "," in first_line:
        return ","
    return default
