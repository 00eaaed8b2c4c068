"""Datasets of labelled sequences (one-hot on the fly from compact integer codes), DeepBind's
shuffled negatives (added once, or drawn afresh every epoch)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from biodl.encode import sequence_codes
from biodl.errors import BiodlInputError
from biodl.kinds.sequences.io import SequenceTable
from biodl.train.batches import Stacked

_PAD = 5  # code of the positions past a sequence's end (NaN once encoded)


def _pad_center(seq: str, length: int) -> str:
    """Pad with N on both sides (or crop the centre) to ``length``."""
    n = len(seq)
    if n >= length:
        start = (n - length) // 2
        return seq[start : start + length]
    left = (length - n) // 2
    return "N" * left + seq + "N" * (length - n - left)


#: Largest one-hot training set (bytes, float32 (4, L) per sequence) kept encoded in memory.
ONEHOT_CACHE_BYTES = 512 * 2**20


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
        all sequences to share one length (a clear error names the first that does not),
        unless ``variable``.
    variable
        With ``length=None``: sequences may differ in length. A batch is then as long as its
        longest sequence and the positions past a shorter sequence's end are NaN in all four
        channels (the padding contract of :class:`~biodl.models.sequence.base.SequenceModel`:
        a model with ``padded_batches`` masks them, so each sequence scores as it would
        alone); :attr:`length` is ``None`` when the lengths differ.
    n_value
        One-hot value of N in every channel (0.25 uniform, 0 zero).
    iupac_as_n
        Read IUPAC ambiguity codes as N.
    seed
        Seed of the negatives drawn afresh each epoch (:meth:`resample_negatives`).
    cache
        Keep the one-hot of a set under :data:`ONEHOT_CACHE_BYTES` encoded (for sets read
        many times, as in training); ``False`` encodes each batch as it is read (scoring: each
        item is read once, and memory stays one byte per base).

    Augmentation (reverse complement, shifts) is applied by wrapping the dataset in
    :class:`~biodl.kinds.sequences.augment.AugmentedDataset`.

    Items
    -----
    ``x`` float32 ``(4, length)`` (a single item has its own length, without padding);
    ``y`` float32 ``(n_labels,)`` (NaN = missing), or ``(0,)`` for an unlabelled table.
    """

    def __init__(
        self,
        table: SequenceTable,
        length: int | None = None,
        n_value: float = 0.25,
        iupac_as_n: bool = False,
        seed: int = 0,
        variable: bool = False,
        cache: bool = True,
    ) -> None:
        self.table = table
        lengths = np.fromiter((len(s) for s in table.seqs), dtype=np.int64, count=len(table.seqs))
        if length is None:
            if not variable:
                length = table.fixed_length()
            elif not len(lengths):
                length = 0  # an empty (validation) set
            elif not (lengths != lengths[0]).any():
                length = int(lengths[0])
            seqs = table.seqs
        else:
            seqs = [_pad_center(s, length) for s in table.seqs]
            lengths = np.full(len(seqs), length, dtype=np.int64)
        self.length = length
        self.lengths = torch.from_numpy(lengths)
        codes = np.full((len(seqs), int(lengths.max(initial=0))), _PAD, dtype=np.uint8)
        for i, s in enumerate(seqs):
            try:
                codes[i, : len(s)] = sequence_codes(s, iupac_as_n=iupac_as_n)
            except BiodlInputError as e:
                raise BiodlInputError(e.problem, path=table.source, record=table.ids[i]) from None
        self.codes = torch.from_numpy(codes)  # uint8: one byte per base (indices once encoded)
        lut = torch.zeros(6, 4)
        lut[torch.arange(4), torch.arange(4)] = 1
        lut[4] = n_value
        lut[_PAD] = float("nan")
        self.lut = lut
        self.n_value = n_value
        self.labels = (
            torch.zeros(len(seqs), 0)
            if table.labels is None
            else torch.from_numpy(np.array(table.labels, np.float32))
        )
        self.seed = seed
        self.epoch = 0
        self._resample: tuple[torch.Tensor, list[str], torch.Tensor] | None = None
        self._neg_epoch = 0
        # a set whose one-hot fits in ONEHOT_CACHE_BYTES is encoded once: a batch is then one
        # row gather (~4% of a DeepBind epoch was the per-batch lookup); larger sets encode per batch
        n, width = self.codes.shape
        self._onehot = self._encode(self.codes) if cache and n * width * 16 <= ONEHOT_CACHE_BYTES else None

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
            codes = np.full((len(seqs), self.codes.shape[1]), _PAD, dtype=np.uint8)
            for k, q in enumerate(seqs):
                q = q if self.length is None else _pad_center(q, self.length)
                codes[k, : len(q)] = sequence_codes(q, iupac_as_n=True)
            self.codes[rows] = torch.from_numpy(codes)
        if self._onehot is not None:
            self._onehot[rows] = self._encode(self.codes[rows])
        self._neg_epoch = epoch

    def _encode(self, codes: torch.Tensor) -> torch.Tensor:
        return self.lut[codes.long()].transpose(-1, -2).contiguous()

    def __getitem__(self, i: int):
        return self.__getitems__([i]).item(0)

    def __getitems__(self, idx: list[int]) -> Stacked:
        index = torch.as_tensor(idx, dtype=torch.long)
        width = int(self.lengths[index].max()) if self.length is None and len(index) else None
        if self._onehot is not None:
            x = self._onehot[index]  # a copy: the cache is never handed out
            if width is not None:  # mixed lengths: as long as the batch's longest
                x = x[:, :, :width].contiguous()
            return Stacked((x, self.labels[index]))
        codes = self.codes[index]
        if width is not None:
            codes = codes[:, :width]
        return Stacked((self._encode(codes), self.labels[index]))


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
