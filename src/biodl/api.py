"""The Python API (kept for callers of ``biodl.api``): train, evaluate, predict and report for
every recipe and data kind, from :mod:`biodl.pipeline`, plus the sequence-file helpers."""

from __future__ import annotations

from pathlib import Path

from biodl.kinds.base import prediction_frame, write_evaluation
from biodl.kinds.sequences.kind import load_table
from biodl.pipeline import evaluate, predict, report, train

RESOURCES = Path(__file__).parent / "resources"

__all__ = [
    "RESOURCES",
    "evaluate",
    "load_table",
    "predict",
    "prediction_frame",
    "report",
    "train",
    "write_evaluation",
]
