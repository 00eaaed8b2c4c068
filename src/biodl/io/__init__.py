"""Readers and writers of the shared genomic formats (FASTA, genomes, BED, GFF). Validation
lives here: bad input raises :class:`biodl.errors.BiodlInputError` naming the file, the line or
record, and the problem. Formats of one data kind live in that kind's package (labelled
sequence tables: :mod:`biodl.kinds.sequences.io`, molecules, expression, FCS, ...).

The names below are imported on first use, so that ``biodl.io._util`` (atomic writes, used by
the CLI) does not pull pandas into ``biodl --help``."""

from __future__ import annotations

import importlib

_WHERE = {
    "cut_intervals": "biodl.io.bed",
    "read_bed": "biodl.io.bed",
    "FastaRecord": "biodl.io.fasta",
    "open_genome": "biodl.io.fasta",
    "read_fasta": "biodl.io.fasta",
    "write_fasta": "biodl.io.fasta",
}

__all__ = ["FastaRecord", "cut_intervals", "open_genome", "read_bed", "read_fasta", "write_fasta"]


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'biodl.io' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
