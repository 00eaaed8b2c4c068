"""Rows that a benchmark hands to ``bench/headline.py``: one measure with its repeats summarised
as min / median / max, the issue goal it answers and the target, written as JSON with ``--json``;
and :func:`require_peer`, the clear error of a bench whose peer package is missing."""

from __future__ import annotations

import importlib.util
import json
import statistics
from pathlib import Path
from typing import Any


def require_peer(
    module: str,
    why: str = "the peer this benchmark is measured against",
    install: str = "Install the bench extra: pip install -e '.[bench]'",
) -> None:
    """Exit with a clear error (and how to install it) when ``module`` is not importable."""
    if importlib.util.find_spec(module) is None:
        raise SystemExit(f"error: {module} is needed for this benchmark ({why})\n{install}")


def row(
    measure: str,
    values: list[float],
    *,
    goal: str = "",
    target: str = "",
    unit: str = "x",
    note: str = "",
) -> dict[str, Any]:
    """One measure: ``values`` are its repeats (a ratio per repeat, or a figure)."""
    v = [float(x) for x in values]
    nan = float("nan")
    return summary_row(
        measure,
        min(v) if v else nan,
        statistics.median(v) if v else nan,
        max(v) if v else nan,
        len(v),
        goal=goal,
        target=target,
        unit=unit,
        note=note,
    )


def summary_row(
    measure: str,
    lo: float,
    median: float,
    hi: float,
    n: int,
    *,
    goal: str = "",
    target: str = "",
    unit: str = "x",
    note: str = "",
) -> dict[str, Any]:
    """One measure already summarised over its ``n`` repeats."""
    return {
        "measure": measure,
        "min": float(lo),
        "median": float(median),
        "max": float(hi),
        "n": int(n),
        "unit": unit,
        "goal": goal,
        "target": target,
        "note": note,
    }


def write_json(path: str | Path | None, rows: list[dict[str, Any]]) -> None:
    """Write ``rows`` to ``path`` (nothing when ``path`` is None)."""
    if path:
        Path(path).write_text(json.dumps(rows, indent=1) + "\n")


def fmt(r: dict[str, Any]) -> str:
    """``min / median / max unit`` with sensible digits."""

    def f(x: float) -> str:
        a = abs(x)
        return f"{x:,.0f}" if a >= 1000 else f"{x:.2f}" if a >= 0.1 else f"{x:.3g}"

    if r["n"] == 1:
        return f"{f(r['median'])}{r['unit']}"
    return f"{f(r['min'])} / {f(r['median'])} / {f(r['max'])}{r['unit']}"
