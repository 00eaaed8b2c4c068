"""The recipe registry: one entry per classic system.

A recipe names its network (a lazy ``"module:Class"`` reference into :mod:`biodl.models`, so
listing the registry imports no torch), the data kinds it accepts (the first is the default),
the tasks, defaults of the model, of training and of the kind's options, tiny model options
for smoke tests, the paper's reference numbers and its citation. ``biodl systems`` lists it;
``biodl train --system NAME`` uses it. Switching DeepBind for DanQ is a change of name.

Recipes register themselves from their kind's package (``biodl/kinds/<kind>/recipes.py``);
the kinds are listed once, in :data:`biodl.kinds.KINDS`.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from biodl.errors import BiodlInputError

#: Model parameters filled from the data, never user options.
DERIVED_PARAMS = ("n_outputs", "seq_len")


#: The training flag of each :class:`~biodl.train.fit.TrainConfig` field a recipe may not use.
TRAIN_FLAGS = {
    "max_epochs": "--epochs",
    "patience": "--patience",
    "batch_size": "--batch-size",
    "lr": "--lr",
    "weight_decay": "--weight-decay",
    "precision": "--precision",
    "profiler": "--profiler",
    "num_workers": "--num-workers",
    "min_epochs": "--min-epochs",
    "devices": "--devices",
    "strategy": "--strategy",
    "num_nodes": "--num-nodes",
}
#: Every one of them: a recipe that does not train by gradient descent (in one process).
NO_GRADIENT_TRAINING = tuple(TRAIN_FLAGS)


@dataclass(frozen=True)
class Recipe:
    """One classic system.

    Attributes
    ----------
    name
        Registry key (``deepbind``, ``danq``, ...).
    title
        Human name.
    model
        The network: ``"biodl.models.sequence.deepbind:DeepBind"`` (imported when first
        built) or a callable; ``None`` while the system is planned.
    kinds
        Data kinds the recipe trains on (:data:`biodl.kinds.KINDS`); the first is the default.
    tasks
        Tasks the recipe supports.
    citation
        Paper reference.
    status
        ``ready``, ``in progress`` or ``planned``.
    model_defaults
        Default keyword arguments of the network (besides the data-derived ones).
    train_defaults
        Default :class:`~biodl.train.fit.TrainConfig` fields (``lr``, ``batch_size``,
        ``max_epochs``, ``patience``, ...).
    option_defaults
        The recipe's defaults of kind options (e.g. ``lr_decay`` for neural-fp).
    derived
        Network parameters filled from the data (``n_outputs``, ``seq_len``, ``n_genes``, ...).
    toy
        Tiny model options and kind options (``{"model": {...}, "options": {...}}``) for smoke
        tests: the contract test trains every recipe with them.
    reference
        The paper's headline numbers and ours, as text.
    search_space
        Hyperparameter ranges searched by ``biodl train --calibrate N``
        (:mod:`biodl.train.calibrate`): name -> ``("log", lo, hi)`` (log-uniform), ``("uniform",
        lo, hi)`` or a list of values (uniform choice); names are network parameters or the
        training options ``lr`` / ``weight_decay``. Empty: the generic space
        (:data:`biodl.train.calibrate.GENERIC_SPACE`).
    unused_training
        :class:`~biodl.train.fit.TrainConfig` fields the recipe does not use (random forests and
        SVMs have no epochs or learning rate): their flags are refused, not recorded as if they
        had shaped the model, and left out of ``--help-options``; ``unused_why`` says why.
    """

    name: str
    title: str
    model: str | Callable[..., Any] | None
    kinds: tuple[str, ...]
    tasks: tuple[str, ...]
    citation: str
    status: str
    model_defaults: dict[str, Any] = field(default_factory=dict)
    train_defaults: dict[str, Any] = field(default_factory=dict)
    option_defaults: dict[str, Any] = field(default_factory=dict)
    derived: tuple[str, ...] = DERIVED_PARAMS
    toy: dict[str, dict[str, Any]] = field(default_factory=dict)
    reference: str = ""
    search_space: dict[str, Any] = field(default_factory=dict)
    unused_training: tuple[str, ...] = ()
    unused_why: str = ""

    @property
    def data_kind(self) -> str:
        """The default data kind."""
        return self.kinds[0]

    @property
    def ready(self) -> bool:
        return self.status == "ready" and self.model is not None

    @property
    def short_citation(self) -> str:
        """Authors and year, e.g. ``Alipanahi et al. 2015``, ``Sheehan & Song 2016``."""
        authors = [a.strip() for a in self.citation.split(".")[0].split(",") if a.strip()]
        surnames = [a.split()[0] for a in authors]
        if not surnames:
            who = self.title
        elif len(surnames) > 2 or "et al" in authors[0]:
            who = f"{surnames[0]} et al."
        else:
            who = " & ".join(surnames)
        years = re.findall(r"(?<!\d)(?:19|20)\d\d(?!\d)", self.citation)  # not in "6:19598"
        return f"{who} {years[0]}" if years else "-"

    @property
    def factory(self) -> Callable[..., Any]:
        """The network class (or factory), imported on first use."""
        if self.model is None:
            raise BiodlInputError(f"system {self.name!r} is not implemented yet (status: {self.status})")
        if callable(self.model):
            return self.model
        module, _, attr = self.model.partition(":")
        return getattr(importlib.import_module(module), attr)

    def model_params(self) -> list[str]:
        """Names of the network's user options (its parameters less the data-derived ones)."""
        return [p for p in inspect.signature(self.factory).parameters if p not in self.derived]

    def check_model_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """``options`` converted to the type of each option's default (:func:`convert_model_option`),
        if every key is a model option of this recipe; else a clear error (with a "did you mean"
        for typos, as for ``--set``)."""
        params = self.model_params()
        unknown = [k for k in options if k not in params]
        if unknown:
            from biodl.options import _suggest  # the "did you mean" of --set, for -m typos too

            named = ", ".join(k + _suggest(str(k), params) for k in unknown)
            raise BiodlInputError(
                f"unknown model option(s) for {self.name}: {named} (known: {', '.join(params)})"
            )
        sig = inspect.signature(self.factory).parameters
        return {
            k: convert_model_option(k, v, self.model_defaults.get(k, sig[k].default))
            for k, v in options.items()
        }

    def model_kwargs(self, n_outputs: int, seq_len: int | None = None, **overrides: Any) -> dict[str, Any]:
        """The full keyword arguments for :meth:`build` (stored with the trained model):
        defaults, then ``overrides`` (checked), then ``n_outputs`` and ``seq_len`` when the
        network takes one."""
        kw = dict(self.model_defaults)
        kw.update(self.check_model_options(overrides))
        kw["n_outputs"] = n_outputs
        if "seq_len" in inspect.signature(self.factory).parameters:
            kw["seq_len"] = seq_len
        return kw

    def build(self, **kwargs: Any):
        """The network built with ``kwargs``."""
        return self.factory(**kwargs)


_TRUE = ("true", "yes", "1")
_FALSE = ("false", "no", "0")


def convert_model_option(name: str, value: Any, default: Any) -> Any:
    """``value`` of model option ``name`` (``-m NAME=VALUE``: a string, or JSON-decoded) as the
    type of the recipe's ``default``: a bool takes true/false/yes/no/1/0 (any case); an int takes
    integers (a float only when whole, never a bool), and no negative value where the default
    is a positive count (sizes, widths); a float takes any finite number, at least 0 where the
    default is (penalties, scales), and below 1 for a dropout or corruption rate; a list of
    positive integers (layer sizes) takes one positive integer or a list of them (``[128,64]`` or
    ``128,64``). Other
    defaults (strings, ``None``) take the value as given. One clear error otherwise. A size of
    0 that leaves a layer without weights is refused when the network is built
    (:func:`check_network`). The conversions are :func:`biodl.options.as_bool` /
    :func:`~biodl.options.as_number`, as for ``--set``."""
    from biodl.options import as_bool, as_number

    def bad(what: str) -> BiodlInputError:
        return BiodlInputError(f"-m {name} must be {what} (default {default!r}), got {value!r}")

    if isinstance(default, bool):
        b = as_bool(value, _TRUE, _FALSE)
        if b is None:
            raise bad("true or false (also yes/no, 1/0)")
        return b
    if isinstance(default, int) and default is not inspect.Parameter.empty:
        num = as_number(value, integer=True)
        if num is None:
            raise bad("an integer")
        if default > 0 and num < 0:
            raise bad("a non-negative integer")
        return num
    if isinstance(default, float):
        num = as_number(value, integer=False)
        if num is None:
            raise bad("a number")
        if _is_rate(name) and not 0 <= num < 1:
            raise bad("a fraction at least 0 and below 1")
        if default >= 0 and num < 0:
            raise bad("a number >= 0")
        return num
    if _int_sizes(default):  # layer sizes (hidden=[128, 64]): each a positive integer
        listed = isinstance(value, (list, tuple))
        if isinstance(value, str) and "," in value:  # -m nodes=16,8,4,2, as the docs write it
            items, listed = [v.strip() for v in value.strip("[]() ").split(",") if v.strip()], True
        else:
            items = list(value) if listed else [value]
        sizes = [as_number(v, integer=True) for v in items]
        if not items or any(n is None or n < 1 for n in sizes):
            raise bad("a positive integer or a list of them (e.g. 128,64 or [128,64])")
        return type(default)(sizes) if listed else sizes[0]
    return value


def check_network(model: Any, recipe_name: str, model_options: dict[str, Any]) -> None:
    """Refuse a network built with the user's ``-m`` options (``model_options``) that has a
    layer without weights (a size of 0: ``-m num_motifs=0``), which would train to nothing or
    fail deep inside torch. Networks that are not torch modules are not checked."""
    named = getattr(model, "named_parameters", None)
    if named is None:
        return
    empty = [n for n, p in named() if p.numel() == 0]
    if empty:
        given = " ".join(f"-m {k}={v}" for k, v in model_options.items()) or "its options"
        raise BiodlInputError(
            f"the {recipe_name} network built with {given} has layers without weights "
            f"({', '.join(empty[:4])}{', ...' if len(empty) > 4 else ''}): every size must be at least 1"
        )


def _is_rate(name: str) -> bool:
    """Whether model option ``name`` is a probability of dropping / corrupting an input."""
    return "dropout" in name or "corruption" in name


def _int_sizes(default: Any) -> bool:
    return (
        isinstance(default, (list, tuple))
        and bool(default)
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in default)
    )


_REGISTRY: dict[str, Recipe] = {}


def register(recipe: Recipe) -> Recipe:
    """Add (or replace) a recipe."""
    _REGISTRY[recipe.name] = recipe
    return recipe


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name`` (case-insensitive; ``_`` and ``-`` are the same)."""
    key = name.lower().replace("_", "-")
    if key not in _REGISTRY:
        raise BiodlInputError(f"unknown system {name!r}; known systems: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[key]


def list_recipes() -> list[Recipe]:
    """Every recipe, the ready ones first (in registration order)."""
    return sorted(_REGISTRY.values(), key=lambda r: not r.ready)


def ready_recipes() -> list[Recipe]:
    return [r for r in _REGISTRY.values() if r.ready]


# Systems still to build (their kinds do not exist yet); a kind's package replaces them.
_PLANNED: list[tuple[str, str, str, str]] = []
for _name, _title, _kind, _cite in _PLANNED:
    register(Recipe(_name, _title, None, (_kind,), (), _cite, "planned"))


def _load_kind_recipes() -> None:
    """Import ``<kind package>.recipes`` of every kind (a kind without one registers nothing;
    one that fails to import is an error, never silently skipped)."""
    import importlib.util

    from biodl.kinds import KINDS

    for pkg in KINDS.values():
        mod = f"{pkg}.recipes"
        if importlib.util.find_spec(mod) is not None:
            importlib.import_module(mod)


_load_kind_recipes()
