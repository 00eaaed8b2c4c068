"""Dispatch of ``train`` / ``evaluate`` / ``predict`` to the module that handles a recipe's
data kind.

Labelled sequence files go to :mod:`biodl.api`. Other kinds (genome windows, molecules,
expression matrices, cytometry samples, ...) live in their own module, named by the
recipe's ``plugin`` (or, for sequence recipes given ``--genome``, :mod:`biodl.windows`).
A plugin module provides::

    train(system, out_dir, config, *, data, valid, test, options, model_options, quiet) -> dict
    evaluate(model_path, data, *, out_dir, device, options, quiet) -> dict   # {"metrics": ..., "n": ...}
    predict(model_path, data, *, out, device, options, quiet) -> pandas.DataFrame

``options`` holds the kind-specific CLI options (``target``, ``samples``, ``genome``,
``annotation``, ``labels`` and every ``--set KEY=VALUE``). The training summary dict has at
least ``system``, ``task``, ``model`` and, when a test set was given, ``test_metrics``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from biodl.recipes import Recipe, get_recipe

#: The option keys ``biodl train`` always passes to a plugin (``None`` when not given on the
#: command line). A plugin checks the rest of ``options`` (its ``--set KEY=VALUE`` options)
#: against its own list and refuses unknown keys.
CLI_OPTION_KEYS = frozenset(
    {
        "target",
        "samples",
        "genome",
        "annotation",
        "labels",
        "task",
        "valid_fraction",
        "lr",
        "epochs",
        "batch_size",
        "rc_augment",
        "shift",
        "class_weight",
        "rc_average",
    }
)


def plugin_for(recipe: Recipe, options: dict | None = None) -> ModuleType | None:
    """The plugin module handling ``recipe`` with these options, or ``None`` for the
    sequence-file API."""
    options = options or {}
    if recipe.plugin:
        return importlib.import_module(recipe.plugin)
    if recipe.data_kind == "sequence" and options.get("genome"):
        return importlib.import_module("biodl.windows")
    return None


def plugin_for_model(model_path) -> ModuleType | None:
    """The plugin module that trained the model at ``model_path`` (``None``: sequence API)."""
    from biodl.train.engine import read_model_meta

    meta = read_model_meta(model_path)
    if meta.get("plugin"):
        return importlib.import_module(meta["plugin"])
    recipe = get_recipe(meta["recipe"])
    return importlib.import_module(recipe.plugin) if recipe.plugin else None
