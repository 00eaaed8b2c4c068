"""The one DNA augmenter (reverse complement, shifts): deterministic by (seed, epoch, index),
whatever the batch an item lands in; shared by sequence files and genome windows."""

from __future__ import annotations

import numpy as np
import torch

from biodl.kinds.sequences.augment import AugmentedDataset, Augmenter, uniform
from biodl.kinds.sequences.data import SequenceDataset
from biodl.kinds.sequences.io import SequenceTable
from biodl.train.batches import Stacked


def _onehot(n: int = 6, length: int = 12, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, 4, (n, length), generator=g)
    return torch.nn.functional.one_hot(idx, 4).float().transpose(1, 2)


def test_draws_depend_only_on_seed_epoch_and_index() -> None:
    a = uniform(3, 1, np.arange(100), 1)
    assert ((a >= 0) & (a < 1)).all() and 0.35 < a.mean() < 0.65
    assert np.array_equal(a[[7, 3]], uniform(3, 1, np.array([7, 3]), 1))  # batch composition does not matter
    assert not np.array_equal(a, uniform(3, 2, np.arange(100), 1))  # another epoch
    assert not np.array_equal(a, uniform(4, 1, np.arange(100), 1))  # another seed
    assert not np.array_equal(a, uniform(3, 1, np.arange(100), 2))  # another stream


def test_shift_fills_with_n_and_rc_flips_both_axes() -> None:
    x = _onehot()
    aug = Augmenter(shift=3, seed=1)
    shifts, flips = aug.draws(np.arange(6), 0)
    assert set(np.unique(shifts)) <= set(range(-3, 4)) and not flips.any()
    y = aug(x, np.arange(6), 0)
    for k, s in enumerate(shifts):
        if s > 0:
            assert torch.allclose(y[k, :, :s], torch.full((4, s), 0.25)) and torch.equal(
                y[k, :, s:], x[k, :, :-s]
            )
        elif s < 0:
            assert torch.equal(y[k, :, :s], x[k, :, -s:]) and torch.allclose(
                y[k, :, s:], torch.full((4, -s), 0.25)
            )
        else:
            assert torch.equal(y[k], x[k])
    rc = Augmenter(rc=True, seed=2)
    _, flips = rc.draws(np.arange(6), 5)
    z = rc(x, np.arange(6), 5)
    for k in range(6):
        assert torch.equal(z[k], x[k].flip(dims=(0, 1)) if flips[k] else x[k])
    assert not Augmenter() and torch.equal(Augmenter()(x, np.arange(6), 0), x)


def test_augmented_dataset_single_items_equal_batches_and_follow_the_epoch() -> None:
    table = SequenceTable(
        ids=[f"s{i}" for i in range(8)],
        seqs=["ACGTACGTAAAC"] * 8,
        labels=np.ones((8, 1), np.float32),
        label_names=["y"],
    )
    ds = AugmentedDataset(SequenceDataset(table), Augmenter(rc=True, shift=2, seed=0))
    batch = ds.__getitems__(list(range(8)))
    assert isinstance(batch, Stacked)  # one encoded batch, not per-item tuples
    singles = [ds[i] for i in range(8)]
    assert all(
        torch.equal(batch[0][k], s[0]) and torch.equal(batch[1][k], s[1]) for k, s in enumerate(singles)
    )
    e0 = batch[0]
    ds.set_epoch(1)
    e1 = ds.__getitems__(list(range(8)))[0]
    assert not torch.equal(e0, e1)
    ds.set_epoch(0)
    assert torch.equal(e0, ds.__getitems__(list(range(8)))[0])
    # the loaders' collate passes a whole batch through as default_collate's [x, y]
    from biodl.train.batches import BatchCollate

    got = BatchCollate()(batch)
    assert isinstance(got, list) and torch.equal(got[0], e0) and got[1].shape == (8, 1)


def test_shift_moves_items_of_a_mixed_length_batch_within_their_own_length() -> None:
    """In a batch of mixed lengths (NaN past a shorter item's end) a shift fills with N inside
    the item and leaves the padding as it is."""
    t = SequenceTable(ids=["a", "b"], seqs=["ACGTACGTAC", "GGGT"])
    batch = SequenceDataset(t, variable=True).__getitems__([0, 1])[0]
    aug = Augmenter(shift=2, seed=3)
    for epoch in range(6):
        x = aug(batch, np.array([0, 1]), epoch)
        assert torch.isnan(x[1, :, 4:]).all() and not torch.isnan(x[1, :, :4]).any()
        assert not torch.isnan(x[0]).any()
        s = int(aug.draws([1], epoch)[0][0])
        if s > 0:  # moved right by s: N first, then the start of GGGT
            assert torch.equal(x[1, :, s:4], batch[1, :, : 4 - s]) and (x[1, :, :s] == 0.25).all()
