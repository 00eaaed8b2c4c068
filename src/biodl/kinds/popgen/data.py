"""From a :class:`~biodl.kinds.popgen.io.GenotypeSet` to network inputs and targets.

Matrix input (the CNN and the exchangeable network): one float32 array ``(1 + n_haplotypes,
n_sites)`` per window. Row 0 holds the distance of each site to the previous one (the first:
to the window start) as a fraction of the window length; rows 1.. the haplotypes, alleles as
-1 / +1 and missing calls as 0. Windows with more than ``n_sites`` sites keep the central
``n_sites``; shorter ones are padded with zeros on the right (Flagel et al.'s padding).
Haplotypes are optionally row-sorted (Flagel et al.): the haplotype closest to all the others
first, the others by their distance to it.

Targets: regression parameters on a log10 scale, standardised with the training mean and
standard deviation (undone by :func:`from_targets`); a class index for classification.
"""

from __future__ import annotations

import numpy as np

from biodl.errors import BiodlInputError


def sort_rows(h: np.ndarray) -> np.ndarray:
    """Row order of ``h`` ``(n_haplotypes, S)`` (entries -1 / 0 / +1): the haplotype with the
    smallest total Hamming distance to the others first, then by distance to it. Ties (the rule
    with few sites) are broken by the haplotypes' alleles, never by their input order: the sorted
    matrix depends on the set of haplotypes only, not on the order of the VCF's samples."""
    if h.shape[1] == 0:
        return np.arange(h.shape[0])
    hf = h.astype(np.float32)
    sim = hf @ hf.T  # S - 2 * Hamming on fully called sites
    tot = sim.sum(1)
    cand = np.flatnonzero(tot == tot.max())
    ref = int(cand[np.lexsort(h[cand].T[::-1])[0]]) if len(cand) > 1 else int(cand[0])
    return np.lexsort((*h.T[::-1], -sim[ref]))  # the last key first: distance, then alleles


def encode_matrix(
    gt: np.ndarray, pos: np.ndarray, length: float, n_sites: int, row_sort: bool = True
) -> np.ndarray:
    """One window as the matrix input.

    Parameters
    ----------
    gt
        ``(S, n_haplotypes)`` alleles 0 / 1, -1 missing.
    pos
        ``(S,)`` positions (bp) within the window.
    length
        Window length (bp).
    n_sites
        Columns of the output.
    row_sort
        Sort the haplotypes (see :func:`sort_rows`).

    Returns
    -------
    numpy.ndarray
        ``(1 + n_haplotypes, n_sites)`` float32.
    """
    S, n = gt.shape
    dist = np.diff(np.concatenate([[0.0], np.asarray(pos, np.float64)])) / float(length)
    h = np.where(gt < 0, 0, 2 * gt.astype(np.int8) - 1).T  # (n, S)
    if S > n_sites:
        a = (S - n_sites) // 2
        h, dist = h[:, a : a + n_sites], dist[a : a + n_sites]
    out = np.zeros((1 + n, n_sites), np.float32)
    if row_sort:
        h = h[sort_rows(h)]
    k = h.shape[1]
    out[0, :k] = dist
    out[1:, :k] = h
    return out


class MatrixDataset:
    """Torch-style dataset of matrix inputs ``(x (1 + n_haplotypes, n_sites), y)``, encoded per item
    (memory stays at the ragged int8 matrices).

    Parameters
    ----------
    gs
        The windows.
    n_sites, row_sort
        See :func:`encode_matrix`.
    y
        ``(n, n_targets)`` float32 targets (``(n, 0)`` unlabelled).
    """

    def __init__(self, gs, n_sites: int, row_sort: bool, y: np.ndarray) -> None:
        self.gs, self.n_sites, self.row_sort = gs, int(n_sites), bool(row_sort)
        self.y = np.asarray(y, np.float32).reshape(len(gs), -1)

    def __len__(self) -> int:
        return len(self.gs)

    def __getitem__(self, i: int):
        import torch

        g, p = self.gs.matrix(int(i))
        x = encode_matrix(g, p, self.gs.length[int(i)], self.n_sites, self.row_sort)
        return torch.from_numpy(x), torch.from_numpy(self.y[int(i)])

    def __getitems__(self, indices):
        """A whole batch at once (:class:`~biodl.train.batches.Stacked`)."""
        import torch

        from biodl.train.batches import Stacked

        idx = [int(i) for i in indices]
        x = np.stack(
            [encode_matrix(*self.gs.matrix(i), self.gs.length[i], self.n_sites, self.row_sort) for i in idx]
        )
        return Stacked((torch.from_numpy(x), torch.from_numpy(self.y[idx])))


def stats_dataset(gs, y: np.ndarray):
    """``TensorDataset`` of summary statistics ``(n, n_stats)`` and targets."""
    import torch
    from torch.utils.data import TensorDataset

    x = torch.from_numpy(np.ascontiguousarray(gs.ensure_stats(), np.float32))
    return TensorDataset(x, torch.from_numpy(np.asarray(y, np.float32).reshape(len(gs), -1)))


def raw_targets(gs, targets: list[str], task: str) -> np.ndarray:
    """``(n, n_targets)`` float64: the parameters (regression) or the class index (``(n, 1)``)."""
    if task == "multiclass":
        return gs.param("class").reshape(-1, 1).astype(np.float64)
    cols = [gs.param(t) for t in targets]
    y = np.stack(cols, axis=1) if cols else np.zeros((len(gs), 0))
    for t, c in zip(targets, cols, strict=True):  # as written, before the log scale hides them
        odd = ~np.isfinite(c)
        if odd.any():
            i = int(np.flatnonzero(odd)[0])
            raise BiodlInputError(
                f"{int(odd.sum())} simulation(s) have a {t} that is not a finite number (first: "
                f"{gs.ids[i]}, {t} = {c[i]}); simulate them again or leave them out (--set max_sims)",
                path=gs.source or None,
            )
    bad = [t for t, c in zip(targets, cols, strict=True) if (c <= 0).any()]
    if bad:
        raise BiodlInputError(
            f"target(s) {', '.join(bad)} have values <= 0; regression is on the log scale and needs "
            "positive parameters",
            path=gs.source or None,
        )
    return y


def to_targets(y: np.ndarray, mean: list[float], std: list[float], task: str) -> np.ndarray:
    """Network targets: standardised log10 values (regression) or the class index."""
    if task == "multiclass":
        return np.asarray(y, np.float32)
    return ((np.log10(y) - np.asarray(mean)) / np.asarray(std)).astype(np.float32)


def from_targets(z: np.ndarray, mean: list[float], std: list[float]) -> np.ndarray:
    """Network regression outputs back in parameter units: ``10 ** (z * std + mean)``."""
    return 10 ** (np.asarray(z, np.float64) * np.asarray(std) + np.asarray(mean))


__all__ = ["MatrixDataset", "encode_matrix", "from_targets", "raw_targets", "sort_rows", "stats_dataset"]
