"""Data kinds: one package per kind of input, each implementing the
:class:`~biodl.kinds.base.DataKind` contract in its ``kind.py`` and registering its recipes in
``recipes.py`` (and, optionally, kind-specific commands in ``cli.py``).

Adding a kind is one package plus one line here. Importing this module (or a kind's
``__init__``, ``recipes`` or ``cli`` module) imports no torch.
"""

from __future__ import annotations

import importlib

#: kind name -> package
KINDS: dict[str, str] = {
    "sequences": "biodl.kinds.sequences",
    "windows": "biodl.kinds.windows",
    "molecules": "biodl.kinds.molecules",
    "expression": "biodl.kinds.expression",
    "cells": "biodl.kinds.cells",
    "features": "biodl.kinds.features",
    "methylation": "biodl.kinds.methylation",
    "popgen": "biodl.kinds.popgen",
    "contacts": "biodl.kinds.contacts",
    "reads": "biodl.kinds.reads",
}


def get_kind(name: str):
    """The :class:`~biodl.kinds.base.DataKind` called ``name`` (its ``kind.py`` defines ``KIND``)."""
    from biodl.errors import BiodlInputError

    if name not in KINDS:
        raise BiodlInputError(f"unknown data kind {name!r}; known kinds: {', '.join(KINDS)}")
    return importlib.import_module(f"{KINDS[name]}.kind").KIND


__all__ = ["KINDS", "get_kind"]
