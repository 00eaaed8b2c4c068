"""Rows that a benchmark hands to ``bench/headline.py``: one measure with its repeats summarised
as min / median / max, the issue goal it answers and the target, written as JSON with ``--json``;
and the clear errors of a bench whose peer package (:func:`require_peer`) or input data
(:func:`require_data`) is missing."""

from __future__ import annotations

import importlib.util
import json
import statistics
from collections.abc import Iterable
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


#: the project's data folder beside the repository: what ``--data-dir`` means when not given
DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"


def require_data(
    script: str,
    root: str | Path,
    needed: Iterable[str],
    source: str,
    hint: str = "",
) -> Path:
    """Check, before any work, that every file or folder in ``needed`` (paths relative to the
    data directory ``root``) exists; exit (status 1) with one message naming all that are
    missing, the data directory and where the data come from (``source``: the section of
    bench/DATA.md that lists them; ``hint``: what the data directory is, said when it does not exist).
    Returns ``root`` as a Path."""
    root = Path(root)
    needed = list(dict.fromkeys(needed))
    where = f"Where the data come from: {source}."
    if not root.is_dir():
        first = needed[0].split("/")[0] + "/" if needed else "the data"
        raise SystemExit(
            f"error: {script}: the data directory {root} does not exist; give --data-dir the folder "
            f"that holds {first}{(' (' + hint + ')') if hint else ''}. {where}"
        )
    missing = [n for n in needed if not (root / n).exists()]
    if missing:
        shown = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
        raise SystemExit(
            f"error: {script}: {len(missing)} of the {len(needed)} input(s) it needs are missing under "
            f"{root}: {shown}. {where}"
        )
    return root


def chosen(script: str, text: str, known, what: str = "task") -> list[str]:
    """The comma-separated names of ``text``, each one of ``known``; exits naming the unknown ones
    (or that none was given) and the choices."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [t for t in names if t not in known]
    if unknown or not names:
        raise SystemExit(
            f"error: {script}: unknown {what}(s) {', '.join(unknown) or '(none given)'}: "
            f"choose from {', '.join(known)}"
        )
    return names


def require_leaf_data(
    script: str, given: Path | None, leaf: str, needed: list[str], known: list[str], source: str
) -> Path:
    """The folder of a bench whose files all lie in one folder ``leaf`` of the data directory
    (``neural_fingerprints/hips``): ``given`` may be that folder itself (it holds one of the
    ``known`` files) or a data directory holding ``leaf/`` (default: ``DEFAULT_DATA_DIR``).
    Exits naming every file of ``needed`` that is missing (:func:`require_data`)."""
    root = Path(given or DEFAULT_DATA_DIR).expanduser().resolve()
    is_leaf = (
        root.is_dir() and not (root / leaf.split("/")[0]).is_dir() and any((root / f).exists() for f in known)
    )
    prefix = "" if is_leaf else f"{leaf}/"
    require_data(
        script,
        root,
        [prefix + f for f in needed],
        source,
        hint=f"--data-dir is the {leaf.rsplit('/', 1)[-1]} folder or a data folder holding {leaf}/",
    )
    return root / prefix if prefix else root


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
