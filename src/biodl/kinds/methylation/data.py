"""Neighbour features of CpG sites, computed per batch (never materialised for all sites).

For a target site and a profile (cell or sample), the inputs are the ``k`` nearest *observed*
CpGs of that profile on each side of the target, the target itself excluded (also in the
other profiles: a site is predicted from its surroundings only): their methylation states and
their distances to the target. Where a chromosome end leaves fewer than ``k`` neighbours, the
missing ones get state 0.5 and the largest distance (``max_dist``). Distances enter the
networks as ``log1p(d) / log1p(max_dist)`` in [0, 1].

Feature layout of one site, per profile: ``2k`` states (left neighbours far to near, then right
neighbours near to far), ``2k`` scaled distances, then the annotation features (inside, log
distance, for each annotation; the same for every profile). A batch is
``(batch, n_profiles, 4k + 2 * n_annotations)``.

With a genome (DeepCpG's DNA module), an item's input is the pair ``(neighbours, dna)``,
``dna`` the one-hot ``(4, dna_window)`` sequence centred on the site (``N`` = 0.25 beyond the
chromosome ends).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from biodl.kinds.methylation.io import Annotation, CpGProfile
from biodl.train.batches import Stacked

MISSING_STATE = 0.5


class DNAWindows:
    """One-hot DNA windows centred on CpG sites, read per batch from a pyfaidx genome."""

    def __init__(self, genome, path: str, width: int, chroms) -> None:
        from biodl.errors import BiodlInputError
        from biodl.kinds.methylation.io import chrom_key

        self.genome, self.path, self.width = genome, str(path), int(width)
        if self.width < 1:
            raise BiodlInputError(f"--set dna_window must be at least 1, got {width}")
        names = {chrom_key(n): n for n in genome.keys()}
        missing = [c for c in chroms if c not in names]
        if missing:
            have = ", ".join(list(names.values())[:8]) + (" ..." if len(names) > 8 else "")
            raise BiodlInputError(
                f"chromosome(s) {', '.join(missing)} of the CpG calls are not in the genome (it has {have})",
                path=path,
            )
        self.names = names
        self.lengths = {c: len(genome[names[c]]) for c in chroms}

    def onehot(self, chrom: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """``(n, 4, width)`` float32 for 1-based positions ``pos`` on chromosomes ``chrom``."""
        from biodl.encode import one_hot_batch
        from biodl.errors import BiodlInputError

        w, half = self.width, self.width // 2
        seqs = []
        for c, p in zip(chrom, pos, strict=True):
            n = self.lengths.get(c)
            if n is None:
                raise BiodlInputError(f"chromosome {c} is not in the genome", path=self.path)
            start, end = int(p) - 1 - half, int(p) - 1 - half + w
            lo, hi = max(start, 0), min(end, n)
            core = self.genome[self.names[c]][lo:hi] if hi > lo else ""
            seqs.append("N" * (lo - start) + str(core) + "N" * (end - max(hi, lo)))
        try:
            return one_hot_batch(seqs, iupac_as_n=True)
        except BiodlInputError as e:
            raise BiodlInputError(f"genome sequence: {e.problem}", path=self.path) from None


def neighbours(
    obs_pos: np.ndarray, obs_val: np.ndarray, targets: np.ndarray, k: int, max_dist: int = 100_000
) -> tuple[np.ndarray, np.ndarray]:
    """States and distances of the ``k`` nearest observed sites on each side of each target.

    Parameters
    ----------
    obs_pos, obs_val
        Sorted positions of the observed sites of one chromosome and their states.
    targets
        Target positions (any order). A target that is itself observed is left out of its
        own neighbours.
    k
        Neighbours per side.
    max_dist
        Distance given to missing neighbours (and the cap of every distance).

    Returns
    -------
    (states, distances)
        ``(n, 2k)`` float32 and int64: left neighbours far to near, then right near to far.
    """
    t = np.asarray(targets, dtype=np.int64)
    n, m = len(t), len(obs_pos)
    lo = np.searchsorted(obs_pos, t, side="left")  # first observed >= t
    hi = np.searchsorted(obs_pos, t, side="right")  # first observed > t
    off = np.arange(k, dtype=np.int64)
    left = lo[:, None] - 1 - off[::-1][None, :]  # (n, k): lo-k .. lo-1
    right = hi[:, None] + off[None, :]  # (n, k): hi .. hi+k-1
    idx = np.concatenate([left, right], axis=1)
    ok = (idx >= 0) & (idx < m)
    safe = np.clip(idx, 0, max(m - 1, 0))
    states = np.full((n, 2 * k), MISSING_STATE, dtype=np.float32)
    dist = np.full((n, 2 * k), max_dist, dtype=np.int64)
    if m:
        states = np.where(ok, obs_val[safe], MISSING_STATE).astype(np.float32)
        dist = np.where(ok, np.abs(obs_pos[safe] - t[:, None]), max_dist)
        dist = np.minimum(dist, max_dist)
    return states, dist


@dataclass
class Sites:
    """Target sites: chromosome keys, 1-based positions and the truth ``(n, n_outputs)`` (NaN
    where a profile has no call), sorted by chromosome then position."""

    chrom: np.ndarray
    pos: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.pos)

    def subset(self, idx) -> Sites:
        idx = np.asarray(idx)
        return Sites(self.chrom[idx], self.pos[idx], self.y[idx])


def observed_sites(outputs: Sequence[CpGProfile], chroms: Sequence[str]) -> Sites:
    """Every site observed in at least one of ``outputs`` on ``chroms``, with each output
    profile's value there (NaN where it has none)."""
    cs, ps, ys = [], [], []
    for c in chroms:
        pos = [p.positions[c] for p in outputs if c in p.positions]
        if not pos:
            continue
        u = np.unique(np.concatenate(pos))
        y = np.full((len(u), len(outputs)), np.nan, dtype=np.float32)
        for j, prof in enumerate(outputs):
            if c in prof.positions:
                i = np.searchsorted(u, prof.positions[c])
                y[i, j] = prof.values[c]
        cs.append(np.full(len(u), c, dtype=object))
        ps.append(u)
        ys.append(y)
    if not ps:
        return Sites(np.zeros(0, object), np.zeros(0, np.int64), np.zeros((0, len(outputs)), np.float32))
    return Sites(np.concatenate(cs), np.concatenate(ps), np.concatenate(ys))


class CpGDataset(Dataset):
    """Neighbour features of ``sites`` from ``profiles`` (inputs), computed per batch.

    Items are ``(x, y)``: ``x`` ``(n_profiles, 4k + 2 * n_annotations)`` float32 (see the
    module docstring), ``y`` ``(n_outputs,)`` float32 (NaN = not observed; binarised at
    ``threshold`` unless ``threshold`` is ``None``).

    ``per_epoch`` (training): each epoch sees a different seeded random subset of that many
    sites (the same subset for the same ``(seed, epoch)``, so a resumed run sees what an
    uninterrupted one would).
    """

    def __init__(
        self,
        profiles: Sequence[CpGProfile],
        sites: Sites,
        k: int = 25,
        annotations: Sequence[Annotation] = (),
        threshold: float | None = 0.5,
        max_dist: int = 100_000,
        per_epoch: int | None = None,
        seed: int = 0,
        dna: DNAWindows | None = None,
    ) -> None:
        self.profiles, self.sites, self.k = list(profiles), sites, int(k)
        self.dna = dna
        self.annotations, self.max_dist = list(annotations), int(max_dist)
        self.threshold = threshold
        y = sites.y
        self.y = (
            np.where(np.isnan(y), np.nan, (y >= threshold).astype(np.float32)) if threshold is not None else y
        )
        self.per_epoch = int(per_epoch) if per_epoch and per_epoch < len(sites) else None
        self.seed, self._order = int(seed), None
        self.set_epoch(0)

    @property
    def n_features(self) -> int:
        return 4 * self.k + 2 * len(self.annotations)

    def set_epoch(self, epoch: int) -> None:
        if self.per_epoch is None:
            self._order = None
            return
        rng = np.random.default_rng([self.seed, 7919, int(epoch)])
        self._order = np.sort(rng.choice(len(self.sites), self.per_epoch, replace=False))

    def __len__(self) -> int:
        return self.per_epoch if self.per_epoch is not None else len(self.sites)

    def features(self, rows: np.ndarray) -> np.ndarray:
        """``(len(rows), n_profiles, n_features)`` for site rows ``rows``."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((len(rows), len(self.profiles), self.n_features), dtype=np.float32)
        chrom, pos = self.sites.chrom[rows], self.sites.pos[rows]
        scale = np.log1p(self.max_dist)
        k2 = 2 * self.k
        for c in np.unique(chrom):
            sel = np.flatnonzero(chrom == c)
            t = pos[sel]
            for j, prof in enumerate(self.profiles):
                op = prof.positions.get(c, np.zeros(0, np.int64))
                ov = prof.values.get(c, np.zeros(0, np.float32))
                st, d = neighbours(op, ov, t, self.k, self.max_dist)
                out[sel, j, :k2] = st
                out[sel, j, k2 : 2 * k2] = np.log1p(d) / scale
            if self.annotations:
                a = np.concatenate([an.features(c, t) for an in self.annotations], axis=1)
                out[sel, :, 2 * k2 :] = a[:, None, :]
        return out

    def __getitem__(self, i: int):
        return self.__getitems__([i]).item(0)

    def __getitems__(self, idx: list[int]) -> Stacked:
        rows = np.asarray(idx, dtype=np.int64)
        if self._order is not None:
            rows = self._order[rows]
        x = torch.from_numpy(self.features(rows))
        y = torch.from_numpy(np.ascontiguousarray(self.y[rows], dtype=np.float32))
        if self.dna is not None:
            d = torch.from_numpy(self.dna.onehot(self.sites.chrom[rows], self.sites.pos[rows]))
            return Stacked(((x, d), y))
        return Stacked((x, y))


def window_mean(x: np.ndarray, k: int, profile: int = 0, n: int | None = None) -> np.ndarray:
    """The baseline of the mean state of the ``n`` (default all ``k``) nearest neighbours on
    each side in one profile, from feature rows ``x`` ``(batch, n_profiles, features)``;
    missing neighbours (state 0.5 at the largest distance) are left out."""
    n = k if n is None else n
    st = x[:, profile, : 2 * k]
    d = x[:, profile, 2 * k : 4 * k]
    cols = np.r_[k - n : k, k : k + n]
    s, dd = st[:, cols], d[:, cols]
    ok = dd < 1.0 - 1e-6
    cnt = ok.sum(1)
    return np.where(cnt > 0, (s * ok).sum(1) / np.maximum(cnt, 1), MISSING_STATE).astype(np.float32)


def nearest_observed(profile: CpGProfile, chrom: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Distance (bp) from each site to the nearest *other* observed site of ``profile`` on its
    chromosome (-1 when there is none)."""
    out = np.full(len(pos), -1, dtype=np.int64)
    for c in np.unique(chrom):
        sel = np.flatnonzero(chrom == c)
        op = profile.positions.get(c)
        if op is None or not len(op):
            continue
        _, d = neighbours(
            op, np.zeros(len(op), np.float32), pos[sel], 1, max_dist=np.iinfo(np.int64).max // 4
        )
        near = d.min(axis=1)
        out[sel] = np.where(near >= np.iinfo(np.int64).max // 4, -1, near)
    return out
