"""The one DNA augmenter: reverse complement and random shifts of one-hot sequences,
deterministic by ``(seed, epoch, index)``.

Used by labelled sequence files and by genome windows alike (:class:`AugmentedDataset` wraps
any dataset of one-hot ``(4, L)`` items). The random draws are a counter-based hash of the seed,
the epoch and the item's index (splitmix64), not a stateful generator: an item gets the same
augmentation whatever the batch it lands in, the number of DataLoader workers, or whether the
run was resumed from a checkpoint.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from biodl.train.batches import Stacked

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MASK = (1 << 64) - 1


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser (uint64 arrays; wraps modulo 2**64)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def uniform(seed: int, epoch: int, index: np.ndarray, stream: int) -> np.ndarray:
    """Uniform draws in ``[0, 1)``, one per ``index``, a function of ``(seed, epoch, index,
    stream)`` only (``stream`` separates independent draws of the same item)."""
    with np.errstate(over="ignore"):
        key = _mix(np.array([(int(seed) * 0x2545F4914F6CDD1D + int(stream)) & _MASK], np.uint64) + _GOLDEN)
        key = _mix(key + np.uint64(int(epoch) & _MASK))
        z = _mix(key + np.asarray(index, dtype=np.int64).astype(np.uint64) * _GOLDEN)
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


class Augmenter:
    """Reverse-complement and shift augmentation of one-hot DNA.

    Parameters
    ----------
    rc
        Reverse-complement each item with probability 1/2 (channels ``A, C, G, T`` flipped
        and the sequence reversed; labels are strand-independent).
    shift
        Move each item by a uniform whole number of bases in ``[-shift, shift]`` within its
        own length; the uncovered end is filled with ``n_value`` (an N).
    seed
        Seed of the draws.
    n_value
        One-hot value of N in every channel.
    """

    def __init__(self, rc: bool = False, shift: int = 0, seed: int = 0, n_value: float = 0.25) -> None:
        if int(shift) < 0:
            raise ValueError(f"shift must be >= 0, not {shift}")
        self.rc, self.shift, self.seed, self.n_value = bool(rc), int(shift), int(seed), float(n_value)

    def __bool__(self) -> bool:
        return self.rc or self.shift > 0

    def draws(self, index, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """``(shifts, flips)`` of the items ``index`` in ``epoch``: ints in ``[-shift, shift]``
        and booleans."""
        index = np.asarray(index, dtype=np.int64)
        shifts = np.zeros(len(index), dtype=np.int64)
        if self.shift:
            u = uniform(self.seed, epoch, index, 1)
            shifts = np.minimum((u * (2 * self.shift + 1)).astype(np.int64), 2 * self.shift) - self.shift
        flips = uniform(self.seed, epoch, index, 2) < 0.5 if self.rc else np.zeros(len(index), dtype=bool)
        return shifts, flips

    def __call__(self, x: torch.Tensor, index, epoch: int) -> torch.Tensor:
        """Augmented copy of one-hot ``x (n, 4, L)`` whose rows are items ``index``."""
        if not self:
            return x
        shifts, flips = self.draws(index, epoch)
        L = x.shape[-1]
        if self.shift and shifts.any():
            s = torch.from_numpy(shifts)
            # each item moves within its own length: a batch of mixed lengths has NaN past
            # the end of its shorter items (SequenceDataset(variable=True)), which stay NaN
            own = (~torch.isnan(x[:, 0, :])).sum(-1, keepdim=True)
            at = torch.arange(L)[None, :]
            pos = at - s[:, None]
            valid = (pos >= 0) & (pos < own)
            moved = x.gather(2, pos.clamp(0, L - 1)[:, None, :].expand(-1, x.shape[1], -1))
            moved = torch.where(valid[:, None, :], moved, torch.full_like(moved, self.n_value))
            x = torch.where((at < own)[:, None, :], moved, x)
        if self.rc and flips.any():
            x = torch.where(torch.from_numpy(flips)[:, None, None], x.flip(dims=(1, 2)), x)
        return x


class AugmentedDataset(Dataset):
    """A dataset of one-hot ``(x, y)`` items with :class:`Augmenter` applied to ``x``.

    The epoch comes from :meth:`set_epoch` (called by :class:`~biodl.train.datamodule.EpochSampler`)
    and is passed on to the wrapped dataset.
    """

    def __init__(self, dataset: Dataset, augmenter: Augmenter) -> None:
        self.dataset, self.augmenter, self.epoch = dataset, augmenter, 0

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name: str):
        if name in ("dataset", "augmenter", "epoch"):
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def __getitem__(self, i: int):
        got = self.__getitems__([i])
        return got.item(0) if isinstance(got, Stacked) else got[0]

    def __getitems__(self, idx: list[int]):
        inner = getattr(self.dataset, "__getitems__", None)
        items = inner(list(idx)) if inner is not None else [self.dataset[i] for i in idx]
        index = np.asarray(idx, dtype=np.int64)
        if isinstance(items, Stacked):  # a whole batch: augment it as one tensor
            return Stacked((self.augmenter(items[0], index, self.epoch), *items[1:]))
        x = torch.stack([it[0] for it in items])
        x = self.augmenter(x, index, self.epoch)
        return [(x[k], *items[k][1:]) for k in range(len(items))]
