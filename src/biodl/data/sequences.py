"""Datasets for labelled sequences (one-hot on the fly from compact integer codes)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from biodl.encode import sequence_codes
from biodl.errors import BiodlInputError
from biodl.io.tables import SequenceTable


def _pad_center(seq: str, length: int) -> str:
    """Pad with N on both sides (or crop the centre) to ``length``."""
    n = len(seq)
    if n >= length:
        start = (n - length) // 2
        return seq[start : start + length]
    left = (length - n) // 2
    return "N" * left + seq + "N" * (length - n - left)


class SequenceDataset(Dataset):
    """Labelled sequences as ``(x, y)`` pairs.

    Sequences are kept as uint8 codes (one byte per base) and one-hot encoded per batch,
    so memory is ``n x length`` bytes rather than ``16 x n x length``.

    Parameters
    ----------
    table
        The sequences and labels.
    length
        Pad (with N, centred) or crop every sequence to this length. ``None`` requires
        all sequences to share one length (a clear error names the first that does not).
    n_value
        One-hot value of N in every channel (0.25 uniform, 0 zero).
    rc_augment
        Randomly reverse-complement half of the training sequences each epoch.
    shift
        Randomly shift each training sequence by up to this many bases (filled with N).
    iupac_as_n
        Read IUPAC ambiguity codes as N.
    seed
        Seed of the augmentation (combined with the epoch, so a resumed run matches).

    Items
    -----
    ``x`` float32 ``(4, length)``; ``y`` float32 ``(n_labels,)`` (NaN = missing), or
    ``(0,)`` for an unlabelled table.
    """

    def __init__(
        self,
        table: SequenceTable,
        length: int | None = None,
        n_value: float = 0.25,
        rc_augment: bool = False,
        shift: int = 0,
        iupac_as_n: bool = False,
        seed: int = 0,
    ) -> None:
        self.table = table
        if length is None:
            length = table.fixed_length()
            seqs = table.seqs
        else:
            seqs = [_pad_center(s, length) for s in table.seqs]
        self.length = length
        codes = np.empty((len(seqs), length), dtype=np.uint8)
        for i, s in enumerate(seqs):
            try:
                codes[i] = sequence_codes(s, iupac_as_n=iupac_as_n)
            except BiodlInputError as e:
                raise BiodlInputError(e.problem, path=table.source, record=table.ids[i]) from None
        self.codes = torch.from_numpy(codes).long()
        lut = torch.zeros(5, 4)
        lut[torch.arange(4), torch.arange(4)] = 1
        lut[4] = n_value
        self.lut = lut
        self.n_value = n_value
        self.labels = (
            torch.zeros(len(seqs), 0)
            if table.labels is None
            else torch.from_numpy(np.array(table.labels, np.float32))
        )
        self.rc_augment = rc_augment
        self.shift = int(shift)
        self.seed = seed
        self.epoch = 0
        self._resample: tuple[torch.Tensor, list[str], torch.Tensor] | None = None
        self._neg_epoch = 0

    def __len__(self) -> int:
        return self.codes.shape[0]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if self._resample is not None:
            self._draw_negatives(epoch)

    def resample_negatives(self, rows: Sequence[int], sources: Sequence[str]) -> None:
        """Draw fresh dinucleotide-shuffled negatives every epoch, as DeepBind did.

        ``rows`` are the dataset rows holding shuffled negatives and ``sources[k]`` the
        sequence row ``rows[k]`` was shuffled from. Epoch 0 keeps the rows as they are; epoch
        ``e > 0`` replaces them with new shuffles of their sources drawn from ``(seed, e)``
        only, so a resumed run sees the same negatives as an uninterrupted one. Labels are
        unchanged.
        """
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) != len(sources):
            raise ValueError(f"{len(rows)} negative rows but {len(sources)} source sequences")
        if len(rows) and (rows.min() < 0 or rows.max() >= len(self)):
            raise ValueError("negative rows outside the dataset")
        self._resample = (torch.from_numpy(rows), list(sources), self.codes[torch.from_numpy(rows)].clone())
        self._neg_epoch = 0

    def _draw_negatives(self, epoch: int) -> None:
        from biodl.shuffle import shuffle_negatives

        rows, sources, original = self._resample
        if epoch == self._neg_epoch:
            return
        if epoch == 0:
            self.codes[rows] = original
        else:
            seqs = shuffle_negatives(sources, seed=(self.seed * 1_000_003 + epoch) & 0x7FFFFFFF)
            codes = np.empty((len(seqs), self.length), dtype=np.uint8)
            for k, q in enumerate(seqs):
                codes[k] = sequence_codes(_pad_center(q, self.length), iupac_as_n=True)
            self.codes[rows] = torch.from_numpy(codes).long()
        self._neg_epoch = epoch

    def _encode(self, codes: torch.Tensor) -> torch.Tensor:
        return self.lut[codes].transpose(-1, -2).contiguous()

    def __getitem__(self, i: int):
        return self.__getitems__([i])[0]

    def __getitems__(self, idx: list[int]):
        index = torch.as_tensor(idx)
        codes = self.codes[index]
        if self.shift or self.rc_augment:
            g = torch.Generator().manual_seed(
                hash((self.seed, self.epoch, int(index[0]), len(idx))) & 0x7FFFFFFF
            )
            if self.shift:
                s = torch.randint(-self.shift, self.shift + 1, (len(idx),), generator=g)
                pos = torch.arange(self.length)[None, :] - s[:, None]
                valid = (pos >= 0) & (pos < self.length)
                codes = torch.where(
                    valid, codes.gather(1, pos.clamp(0, self.length - 1)), torch.full_like(codes, 4)
                )
            if self.rc_augment:
                flip = torch.rand(len(idx), generator=g) < 0.5
                comp = torch.tensor([3, 2, 1, 0, 4])
                codes = torch.where(flip[:, None], comp[codes.flip(1)], codes)
        x = self._encode(codes)
        y = self.labels[index]
        return [(x[k], y[k]) for k in range(len(idx))]


class EpochSampler(Sampler[int]):
    """Shuffles with a permutation that depends only on ``(seed, epoch)``, so a run
    resumed from a checkpoint sees exactly the batches an uninterrupted run would.
    Lightning calls :meth:`set_epoch` at the start of every epoch."""

    def __init__(self, n: int, seed: int = 0, shuffle: bool = True) -> None:
        self.n, self.seed, self.shuffle, self.epoch = n, seed, shuffle, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        if not self.shuffle:
            return iter(range(self.n))
        g = torch.Generator().manual_seed(self.seed * 100003 + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())


class _EpochAware(EpochSampler):
    """EpochSampler that forwards the epoch to its dataset (for augmentation)."""

    def __init__(self, dataset, seed: int, shuffle: bool = True) -> None:
        super().__init__(len(dataset), seed, shuffle)
        self.dataset = dataset

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)


def split_indices(n: int, valid_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random split of ``range(n)`` into train and validation indices."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    n_valid = int(round(n * valid_fraction))
    return np.sort(perm[n_valid:]), np.sort(perm[:n_valid])


def add_shuffled_negatives(table: SequenceTable, seed: int = 0, n_per_seq: int = 1) -> SequenceTable:
    """Add dinucleotide-shuffled copies of every sequence as negatives (label 0), as
    DeepBind did for its positive-only ChIP-seq training files. Existing labels are
    replaced by 1 for the originals."""
    from biodl.shuffle import shuffle_negatives

    neg = shuffle_negatives(table.seqs, seed=seed, n_per_seq=n_per_seq)
    ids = list(table.ids) + [f"{table.ids[i // n_per_seq]}_shuf{i % n_per_seq + 1}" for i in range(len(neg))]
    labels = np.concatenate([np.ones((len(table), 1), np.float32), np.zeros((len(neg), 1), np.float32)])
    return SequenceTable(
        ids=ids,
        seqs=list(table.seqs) + list(neg),
        labels=labels,
        label_names=table.label_names[:1] or ["label"],
        source=table.source,
    )


class SequenceDataModule(pl.LightningDataModule):
    """Train / validation / test datasets with seeded, resumable shuffling.

    Any ``torch.utils.data.Dataset`` yielding ``(x, y)`` works (sequences, genome windows).
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
        self.train_ds, self.valid_ds, self.test_ds = train, valid, test
        self.batch_size, self.seed, self.num_workers = batch_size, seed, num_workers

    def _loader(self, ds: Dataset, shuffle: bool) -> DataLoader:
        return DataLoader(
            ds,
            batch_size=self.batch_size,
            sampler=_EpochAware(ds, self.seed, shuffle),
            num_workers=self.num_workers,
            collate_fn=self.collate_fn,
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
