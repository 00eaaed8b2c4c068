"""The data side of training, shared by every kind: the seeded hold-out split, the
resumable epoch sampler and the Lightning DataModule.

Any ``torch.utils.data.Dataset`` works (labelled sequences, genome windows, molecular graphs
with their collate function, multi-cell inputs, expression tensors).
"""

from __future__ import annotations

from collections.abc import Iterator

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from biodl.errors import BiodlInputError
from biodl.train.batches import BatchCollate


def split_indices(
    n: int,
    fraction: float,
    seed: int | np.random.Generator,
    *,
    at_least_one: bool = False,
    min_items: int = 0,
    sort: bool = True,
    stratify: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random split of ``range(n)`` into kept and held-out indices.

    Parameters
    ----------
    n
        Number of items.
    fraction
        Fraction held out (``round(n * fraction)`` items).
    seed
        Seed of the permutation, or a ``numpy.random.Generator`` to draw it from.
    at_least_one
        Hold out at least one item when ``fraction > 0``.
    min_items
        Hold out nothing when ``n < min_items``.
    sort
        Return both index sets sorted (otherwise in permutation order).
    stratify
        ``(n,)`` class labels: hold out the fraction of every class (each class split on its
        own, in class order, from the same random stream).

    Returns
    -------
    (kept, held_out)
        Integer index arrays; together a partition of ``range(n)``.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    if stratify is not None:
        stratify = np.asarray(stratify)
        if len(stratify) != n:
            raise ValueError(f"stratify has {len(stratify)} labels for {n} items")
        parts = []
        for c in np.unique(stratify):
            idx = np.flatnonzero(stratify == c)
            kept, held = split_indices(
                len(idx), fraction, rng, at_least_one=at_least_one, min_items=min_items, sort=False
            )
            parts.append((idx[kept], idx[held]))
        kept = np.concatenate([p[0] for p in parts])
        held = np.concatenate([p[1] for p in parts])
        return (np.sort(kept), np.sort(held)) if sort else (kept, held)
    perm = rng.permutation(n)
    k = 0
    if fraction > 0 and n >= min_items:
        k = int(round(n * fraction))
        if at_least_one:
            k = max(1, k)
    kept, held = perm[k:], perm[:k]
    return (np.sort(kept), np.sort(held)) if sort else (kept, held)


class EpochSampler(Sampler[int]):
    """Shuffles with a permutation that depends only on ``(seed, epoch)``, so a run
    resumed from a checkpoint sees exactly the batches an uninterrupted run would.
    Lightning calls :meth:`set_epoch` at the start of every epoch; the epoch is passed on to
    the dataset when it has ``set_epoch`` (augmentation, resampled negatives)."""

    def __init__(self, dataset_or_n, seed: int = 0, shuffle: bool = True, with_epoch: bool = False) -> None:
        self.dataset = None if isinstance(dataset_or_n, int) else dataset_or_n
        self.n = dataset_or_n if isinstance(dataset_or_n, int) else len(dataset_or_n)
        self.seed, self.shuffle, self.epoch = seed, shuffle, 0
        self.with_epoch = with_epoch  # items ``(epoch, index)``, for :class:`EpochItems`

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if self.dataset is not None and hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        if not self.shuffle:
            order = range(self.n)
        else:
            g = torch.Generator().manual_seed(self.seed * 100003 + self.epoch)
            order = torch.randperm(self.n, generator=g).tolist()
        if self.with_epoch:
            return iter([(self.epoch, i) for i in order])
        return iter(order)


class EpochItems(Dataset):
    """A dataset that changes with the epoch (``set_epoch``: augmentation, resampled negatives,
    fresh reads or CpG subsets) read in DataLoader worker processes: each item key is
    ``(epoch, index)`` (:class:`EpochSampler` with ``with_epoch``), and the worker's copy is told
    the epoch before the item is read. Workers keep the copy of the dataset they were started
    with; Lightning starts them before it sets the epoch of a resumed run, so a copy told the
    epoch in the main process only served epoch 0's data (every epoch with persistent workers)."""

    def __init__(self, dataset) -> None:
        self.dataset, self._epoch = dataset, None

    def __len__(self) -> int:
        return len(self.dataset)

    def _at(self, epoch: int) -> None:
        if epoch != self._epoch:
            self.dataset.set_epoch(epoch)
            self._epoch = epoch

    def __getitem__(self, key):
        epoch, i = key
        self._at(epoch)
        return self.dataset[i]

    def __getitems__(self, keys: list):
        """A batch read at once, as the dataset reads it (variable-length sequences are padded
        to the batch's longest there; reads and CpG sites are drawn per batch)."""
        self._at(keys[0][0])
        idx = [i for _, i in keys]
        many = getattr(self.dataset, "__getitems__", None)
        return many(idx) if many is not None else [self.dataset[i] for i in idx]


#: Evaluation batches are this many times the training batch (validation and test predictions
#: are the same per item; only the number of loop iterations changes).
EVAL_BATCH_FACTOR = 4


class DataModule(pl.LightningDataModule):
    """Train / validation / test datasets with seeded, resumable shuffling.

    Parameters
    ----------
    train, valid, test
        Datasets (``valid=None``: no validation loop; the final epoch is exported).
    batch_size
        Batch size of the training loader; validation and test loaders take
        ``EVAL_BATCH_FACTOR`` times as many items per batch (no gradients are kept, and each
        evaluation batch costs the loop a fixed overhead: logging, hooks).
    seed
        Seed of the epoch permutations (:class:`EpochSampler`).
    num_workers
        DataLoader workers (persistent).
    collate_fn
        Batches items that are not plain tensors (e.g. molecular graphs).
    """

    def __init__(
        self,
        train: Dataset,
        valid: Dataset | None = None,
        test: Dataset | None = None,
        batch_size: int = 64,
        seed: int = 0,
        num_workers: int = 0,
        collate_fn=None,
    ) -> None:
        super().__init__()
        self.collate_fn = collate_fn
        # an empty validation set (e.g. --valid-fraction 0) is no validation set: training then
        # monitors the training loss instead of a validation metric that never comes
        if valid is not None and hasattr(valid, "__len__") and len(valid) == 0:
            valid = None
        self.train_ds, self.valid_ds, self.test_ds = train, valid, test
        self.batch_size, self.seed, self.num_workers = batch_size, seed, num_workers
        # the epoch a resumed run starts at (set by :func:`biodl.train.fit.fit`): Lightning starts
        # the first epoch's loader workers (which take their first items) before it sets the
        # sampler's epoch, so a resumed run's first epoch had epoch 0's order and data
        self.first_epoch = 0

    @property
    def has_validation(self) -> bool:
        return self.valid_ds is not None

    def _loader(self, ds: Dataset, shuffle: bool) -> DataLoader:
        # a dataset that changes with the epoch is told it with every item in worker processes
        by_epoch = self.num_workers > 0 and hasattr(ds, "set_epoch")
        sampler = EpochSampler(ds, self.seed, shuffle, with_epoch=by_epoch)
        sampler.set_epoch(self.first_epoch)
        return DataLoader(
            EpochItems(ds) if by_epoch else ds,
            batch_size=self.batch_size if shuffle else self.batch_size * EVAL_BATCH_FACTOR,
            sampler=sampler,
            num_workers=self.num_workers,
            collate_fn=BatchCollate(self.collate_fn),
            persistent_workers=self.num_workers > 0,
            # a last training batch of one item cannot be batch-normalised: drop it
            drop_last=shuffle and len(ds) % self.batch_size == 1,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_ds, True)

    def val_dataloader(self) -> DataLoader | list:
        return self._loader(self.valid_ds, False) if self.valid_ds is not None else []

    def test_dataloader(self) -> DataLoader:
        if self.test_ds is None:
            raise BiodlInputError("no test set was given")
        return self._loader(self.test_ds, False)
