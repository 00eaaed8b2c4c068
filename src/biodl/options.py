"""Declared options: the only place where a kind's flags and ``--set KEY=VALUE`` values are
parsed, converted and refused.

Every data kind declares its options up front (:class:`Option`: name, type, default, help, the
stages it applies to, and optionally the CLI flag that sets it and the recipes it is for).
:func:`resolve` checks what a user gave against that list before any work starts: an unknown
or inapplicable option is a clear error that names it and lists the options the kind accepts
(with a "did you mean" for typos); known ones are converted to their type, and every declared
option gets its default.
"""

from __future__ import annotations

import difflib
import json
import math
import numbers
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from biodl.errors import BiodlInputError

STAGES = ("train", "evaluate", "predict", "report")
TYPES = ("str", "int", "float", "bool", "path", "paths", "strs", "choice", "any")
_TRUE = ("1", "true", "yes", "y", "on")
_FALSE = ("0", "false", "no", "n", "off")


def as_bool(value: Any, true: Sequence[str] = _TRUE, false: Sequence[str] = _FALSE) -> bool | None:
    """``value`` (from the CLI: a string, or JSON-decoded) as a bool: a bool, 0 or 1, or one of
    the words ``true`` / ``false`` (any case); ``None`` when it is none of them."""
    if isinstance(value, bool):
        return value
    if isinstance(value, numbers.Real) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in (*true, *false):
        return value.strip().lower() in true
    return None


def as_number(value: Any, integer: bool) -> int | float | None:
    """``value`` (from the CLI: a string, or JSON-decoded) as a finite number, an ``int`` when
    ``integer`` (a float only when whole); ``None`` when it is not one (a bool is not)."""
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        return None
    if integer:
        return int(value) if value == int(value) else None
    return float(value)


@dataclass(frozen=True)
class Option:
    """One option of a data kind.

    Attributes
    ----------
    name
        Key in ``--set NAME=VALUE`` (and in ``RunMeta.options``).
    type
        ``str``, ``int``, ``float``, ``bool``, ``path``, ``paths`` (comma-separated or a JSON
        list), ``strs`` (likewise), ``choice`` (one of ``choices``) or ``any`` (checked by the kind).
    default
        Value when not given (``None``: unset).
    help
        One line for ``--help-options``.
    flag
        The CLI flag that also sets it (``--target``), if any.
    choices
        Allowed values of a ``choice``.
    stages
        Where it applies: ``train``, ``evaluate``, ``predict``, ``report``.
    minimum, maximum
        Smallest / largest allowed value of a number (a ``*_fraction`` option is at most 0.9
        unless told otherwise: something must be left to train on).
    recipes
        Only these recipes take it (``None``: every recipe of the kind).
    before
        For an option added after runs were made whose training it changes: the value those
        runs had in effect (``decoys`` 0: they trained without decoys). A run recorded without
        the option is read as having had it (a resume that asks for another value is refused,
        a shadow model trains as the run did). ``None``: not compared for such runs.
    """

    name: str
    type: str = "str"
    default: Any = None
    help: str = ""
    flag: str | None = None
    choices: tuple[str, ...] | None = None
    stages: tuple[str, ...] = ("train",)
    minimum: float | None = None
    recipes: tuple[str, ...] | None = None
    maximum: float | None = None
    before: Any = None

    def __post_init__(self) -> None:
        if self.maximum is None and self.name.endswith("_fraction"):
            object.__setattr__(self, "maximum", 0.9)
        if self.type not in TYPES:
            raise ValueError(f"option {self.name}: unknown type {self.type!r}")
        if self.type == "choice" and not self.choices:
            raise ValueError(f"option {self.name}: a choice needs choices")
        if any(s not in STAGES for s in self.stages):
            raise ValueError(f"option {self.name}: stages must be among {STAGES}")
        if self.before is not None:
            try:
                self.convert(self.before)
            except BiodlInputError as e:
                raise ValueError(f"option {self.name}: before is not a value it takes ({e})") from None

    @property
    def spelling(self) -> str:
        """How a user gives it on the command line."""
        return self.flag or f"--set {self.name}"

    def applies(self, stage: str, recipe: str | None = None) -> bool:
        return stage in self.stages and (self.recipes is None or recipe is None or recipe in self.recipes)

    def _bad(self, value: Any, what: str) -> BiodlInputError:
        shown = repr(value)
        if len(shown) > 60 or not isinstance(value, (str, int, float, bool, list, tuple, dict, type(None))):
            shown = f"a {type(value).__name__}"  # a DataFrame, an array: its type, not its repr
        return BiodlInputError(f"{self.spelling} must be {what}, got {shown}")

    def convert(self, value: Any) -> Any:
        """``value`` (from the CLI: a string, or JSON-decoded) as this option's type."""
        if value is None:
            return None
        t = self.type
        if t == "any":
            return value
        if t == "bool":
            b = as_bool(value)
            if b is None:
                raise self._bad(value, "true or false")
            return b
        if t in ("int", "float"):
            if isinstance(value, bool):
                raise self._bad(value, "a number")
            num = as_number(value, t == "int")
            if num is None:
                raise self._bad(value, "an integer" if t == "int" else "a number")
            if self.minimum is not None and num < self.minimum:
                raise self._bad(value, f"at least {self.minimum:g}")
            if self.maximum is not None and num > self.maximum:
                raise self._bad(value, f"at most {self.maximum:g}")
            return num
        if t == "choice":
            v = str(value)
            if v not in self.choices:
                raise self._bad(value, f"one of {', '.join(self.choices)}")
            return v
        # a file named 2024 comes from --set as the number 2024: a name; a DataFrame is no path
        names = (str, os.PathLike, int, float)
        pathlike = isinstance(value, (*names, list, tuple)) and not isinstance(value, bool)
        if t in ("path", "paths") and not pathlike:
            raise self._bad(value, "a file path (in Python: a str or pathlib.Path)")
        if t in ("paths", "strs"):
            if t == "paths" and isinstance(value, (list, tuple)):
                for v in value:
                    if isinstance(v, bool) or not isinstance(v, names):
                        raise self._bad(v, "a list of file paths")
            items = _as_list(value)
            if not items:
                raise self._bad(value, "one or more values")
            return [str(Path(v)) if t == "paths" else v for v in items]
        listed = "comma-separated" in self.help or "comma separated" in self.help
        if listed and isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return ",".join(v.strip() for v in value)  # (in Python) a list of the names it takes
        if isinstance(value, (list, tuple, dict)):
            raise self._bad(value, "a single value")
        return str(Path(str(value))) if t == "path" else str(value)


def with_before(declared: Sequence[Option], recorded: Mapping[str, Any]) -> dict[str, Any]:
    """The options a run recorded (``RunMeta.options`` or a stored request's), with each
    declared option that it lacks and that has a :attr:`Option.before` value set to that value:
    what the run had in effect, for a run made before those options existed."""
    out = dict(recorded)
    for o in declared:
        if o.before is not None and o.name not in out:
            out[o.name] = o.before
    return out


def _as_list(value: Any) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if str(v).strip()]
    s = str(value).strip()
    if s.startswith("["):
        try:
            return [str(v).strip() for v in json.loads(s) if str(v).strip()]
        except ValueError:
            pass
    return [p.strip() for p in s.split(",") if p.strip()]


def parse_set_known(values: Iterable[str] | None, known: Iterable[str], command: str) -> dict[str, Any]:
    """:func:`parse_set` for a command that takes the options ``known`` only: another key is
    refused, with the nearest known one (a typo was silently ignored)."""
    import difflib

    opts = parse_set(values)
    names = sorted(set(known))
    for k in opts:
        if k not in names:
            near = difflib.get_close_matches(k, names, n=1)
            raise BiodlInputError(
                f"{command} does not take --set {k}"
                + (f" (did you mean {near[0]}?)" if near else "")
                + f". It takes: {', '.join(names)}"
            )
    return opts


def parse_set(values: Iterable[str] | None, what: str = "--set") -> dict[str, Any]:
    """``["k=v", ...]`` -> ``{k: v}``; values are JSON-decoded when they are JSON (numbers,
    ``true``, lists), else kept as strings. A key given twice is an error."""
    out: dict[str, Any] = {}
    for item in values or []:
        if "=" not in item:
            raise BiodlInputError(f"{what} expects KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        k = k.strip()
        if not k:
            raise BiodlInputError(f"{what} expects KEY=VALUE, got {item!r}")
        if k in out:
            raise BiodlInputError(f"{what} {k} is given twice")
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


def _suggest(name: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
    return f" (did you mean {close[0]}?)" if close else ""


def resolve(
    declared: Sequence[Option],
    given: Mapping[str, Any],
    *,
    stage: str,
    owner: str,
    recipe: str | None = None,
    spellings: Mapping[str, str] | None = None,
    also_known: Sequence[str] = (),
    hints: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Check ``given`` against the ``declared`` options of ``stage`` and convert them.

    Parameters
    ----------
    declared
        The kind's options.
    given
        What the user gave (``None`` values count as not given).
    stage
        ``train``, ``evaluate``, ``predict`` or ``report``.
    owner
        Named in the error (e.g. ``"deepbind on sequence files"``).
    recipe
        Options restricted to other recipes are refused for this one.
    spellings
        How each given key was spelled by the user (``--labels``, ``--set labels``); default:
        the option's own spelling, or ``--set KEY``.
    also_known
        Further accepted names (listed in the error; e.g. the recipe's model options).
    hints
        Extra advice for a refused key.

    Returns
    -------
    dict
        Every applicable declared option: the given value converted, or its default.

    Raises
    ------
    BiodlInputError
        One message naming every refused option and listing the accepted ones.
    """
    usable = {o.name: o for o in declared if o.applies(stage, recipe)}
    every = {o.name: o for o in declared}
    spellings = dict(spellings or {})
    refused = [k for k, v in given.items() if v is not None and k not in usable]
    if refused:
        accepted = sorted(usable) + sorted(also_known)
        parts = []
        for k in refused:
            sp = spellings.get(k) or (every[k].spelling if k in every else f"--set {k}")
            why = ""
            if k in every:
                o = every[k]
                if stage not in o.stages:
                    why = f" (only for {' / '.join(o.stages)})"
                elif o.recipes is not None:
                    why = f" (only for {', '.join(o.recipes)})"
            elif hints and k in hints:
                why = f" ({hints[k]})"
            elif flag := _training_flag(k):  # a training setting, given as a --set key
                why = f" (a training option: {flag})"
            else:
                why = _suggest(k, accepted)
            parts.append(sp + why)
        takes = ", ".join(usable[k].spelling if k in usable else f"--set {k}" for k in accepted)
        raise BiodlInputError(
            f"{owner} does not take {', '.join(parts)}. "
            + (f"It accepts: {takes}" if takes else "It takes no --set options here.")
        )
    out = {name: o.default for name, o in usable.items()}
    for k, v in given.items():
        if v is not None:
            out[k] = usable[k].convert(v)
    return out


def _training_flag(key: str) -> str | None:
    """The flag of a training setting a user gave as a ``--set`` key (CellCnn crossval's spellings
    ``max_epochs``, ``learning_rate`` included), else ``None``."""
    from biodl.registry import TRAIN_FLAGS  # (here: the registry loads every recipe)

    own = {k: TRAIN_FLAGS[k] for k in ("max_epochs", "patience", "batch_size", "lr", "weight_decay")}
    flags = {**own, "epochs": "--epochs", "learning_rate": "--lr", "seed": "--seed", "device": "--device"}
    return flags.get(key)


def describe(declared: Sequence[Option], stage: str | None = None, recipe: str | None = None) -> list[dict]:
    """Rows (option, type, default, stages, help) for ``--help-options``."""
    rows = []
    for o in declared:
        if stage is not None and not o.applies(stage, recipe):
            continue
        if recipe is not None and o.recipes is not None and recipe not in o.recipes:
            continue
        typ = f"one of {'|'.join(o.choices)}" if o.type == "choice" else o.type
        rows.append(
            {
                "name": o.name,
                "option": o.spelling if o.flag is None else f"{o.flag} (--set {o.name})",
                "type": typ,
                "default": "" if o.default is None else json.dumps(o.default),
                "stages": ", ".join(o.stages),
                "help": o.help,
            }
        )
    return rows
