"""Rows that a benchmark hands to ``bench/headline.py``: one measure with its repeats summarised
as min / median / max, the issue goal it answers and the target, written as JSON with ``--json``;
and the clear errors of a bench whose peer package (:func:`require_peer`) or input data
(:func:`require_data`) is missing."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
from collections.abc import Callable, Iterable
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
    """Write ``rows`` to ``path`` (nothing when ``path`` is None), making its folder."""
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(rows, indent=1) + "\n")


def writable_file(text: str) -> str:
    """argparse ``type=`` of an output file (``--json``, ``--out``): makes its parent folders now and
    checks they can be written to, so that a bad path fails at start-up, not after the benchmark ran.
    Returns ``text`` unchanged."""
    p = Path(text).expanduser()
    if p.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; give a file name")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise argparse.ArgumentTypeError(f"cannot make the folder of {text}: {e.strerror or e}") from None
    if not os.access(p.parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise argparse.ArgumentTypeError(f"{text}: not writable")
    return text


def writable_path(text: str) -> Path:
    """:func:`writable_file` returning a Path."""
    return Path(writable_file(text))


def _number(text: str, kind: type, lo: float | None, strict: bool) -> int | float:
    try:
        v = kind(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not {'an integer' if kind is int else 'a number'}"
        ) from None
    if kind is float and v != v:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number")
    if lo is not None and (v <= lo if strict else v < lo):
        raise argparse.ArgumentTypeError(f"{text!r}: must be {'>' if strict else '>='} {lo:g}")
    return v


def int_at_least(lo: int) -> Callable[[str], int]:
    """argparse ``type=``: an integer >= ``lo``."""

    def check(text: str) -> int:
        return int(_number(text, int, lo, False))

    check.__name__ = f"integer >= {lo}"
    return check


#: argparse ``type=``: an integer >= 1 (counts: threads, repeats, epochs, sequences, ...)
positive_int = int_at_least(1)
#: argparse ``type=``: an integer >= 0
nonneg_int = int_at_least(0)


def positive_float(text: str) -> float:
    """argparse ``type=``: a number > 0."""
    return float(_number(text, float, 0, True))


def nonneg_float(text: str) -> float:
    """argparse ``type=``: a number >= 0."""
    return float(_number(text, float, 0, False))


def _csv(kind: type, lo: float | None, strict: bool, what: str) -> Callable[[str], str]:
    def check(text: str) -> str:
        items = [t.strip() for t in text.split(",")]
        if not any(items):
            raise argparse.ArgumentTypeError(f"{text!r}: no {what} given")
        if not all(items):
            raise argparse.ArgumentTypeError(f"{text!r}: an empty item between commas")
        for t in items:
            _number(t, kind, lo, strict)
        return text

    check.__name__ = f"comma-separated {what}"
    return check


def int_list(lo: int | None = 1) -> Callable[[str], str]:
    """argparse ``type=``: comma-separated integers, each >= ``lo`` (None: any); returns the text."""
    return _csv(int, lo, False, "integers")


def float_list(lo: float | None = None, strict: bool = True) -> Callable[[str], str]:
    """argparse ``type=``: comma-separated numbers, each > ``lo`` (>= with ``strict=False``; None:
    any); returns the text."""
    return _csv(float, lo, strict, "numbers")


def names_of(known: Iterable[str], what: str = "name", allow_empty: bool = False) -> Callable[[str], str]:
    """argparse ``type=``: comma-separated names, each one of ``known``; returns the text."""
    known = list(known)

    def check(text: str) -> str:
        names = [t.strip() for t in text.split(",")]
        if not any(names):
            if allow_empty:
                return text
            raise argparse.ArgumentTypeError(f"no {what} given: choose from {', '.join(known)}")
        unknown = [t for t in names if t not in known]
        if unknown:
            raise argparse.ArgumentTypeError(
                f"unknown {what}(s) {', '.join(repr(t) if not t else t for t in unknown)}: "
                f"choose from {', '.join(known)}"
            )
        return text

    check.__name__ = f"{what} list"
    return check


def add_unused_data_dir(ap: argparse.ArgumentParser, what: str = "bundled / random data") -> None:
    """``--data-dir`` of a bench that reads no data folder, accepted so that every bench takes it."""
    ap.add_argument(
        "--data-dir",
        default=None,
        metavar="DIR",
        help=f"not used: this bench uses {what} (accepted so that every bench takes --data-dir)",
    )


def guarded(main: Callable[..., Any], *args: Any) -> Any:
    """Run ``main(*args)``; biodl's own input errors (``BiodlInputError``) end the script with one
    ``error: ...`` line on stderr and exit status 1 instead of a traceback."""
    try:
        return main(*args)
    except Exception as e:
        errors = sys.modules.get("biodl.errors")
        if errors is not None and isinstance(e, errors.BiodlInputError):
            raise SystemExit(f"error: {e}") from None
        raise


def fmt(r: dict[str, Any]) -> str:
    """``min / median / max unit`` with sensible digits."""

    def f(x: float) -> str:
        a = abs(x)
        return f"{x:,.0f}" if a >= 1000 else f"{x:.2f}" if a >= 0.1 else f"{x:.3g}"

    if r["n"] == 1:
        return f"{f(r['median'])}{r['unit']}"
    return f"{f(r['min'])} / {f(r['median'])} / {f(r['max'])}{r['unit']}"
