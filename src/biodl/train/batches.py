"""Batches that a dataset builds whole.

A dataset whose ``__getitems__(indices)`` can encode a whole batch at once returns it as a
:class:`Stacked` (``(x, y)`` with a leading batch axis) instead of a list of per-item tuples
that ``default_collate`` would then take apart and stack again. :class:`BatchCollate` (used by
every ``DataLoader`` of biodl: the DataModule's and the predict loop's) passes such a batch
through as the list ``[x, y]`` that ``default_collate`` would have built, and collates anything
else as before. The tensors are the same, so results do not change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch.utils.data import default_collate


class Stacked(tuple):
    """An already-collated batch: ``(x, y, ...)``, each with the batch as its first axis (``x``
    may itself be a tuple of such tensors)."""

    __slots__ = ()

    def item(self, k: int) -> tuple:
        """The ``k``-th item, as ``__getitem__`` returns it."""
        return tuple(_index(v, k) for v in self)


def _index(v: Any, k: int):
    return tuple(_index(u, k) for u in v) if isinstance(v, tuple) else v[k]


class BatchCollate:
    """``collate_fn``: a :class:`Stacked` batch as a list, anything else through ``inner``
    (``default_collate`` by default). A class, not a closure, so DataLoader workers can pickle it."""

    def __init__(self, inner: Callable | None = None) -> None:
        self.inner = inner if inner is not None else default_collate

    def __call__(self, items):
        if isinstance(items, Stacked):
            return list(items)
        return self.inner(items)
