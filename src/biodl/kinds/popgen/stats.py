"""Summary statistics of a haplotype matrix (scikit-allel), after Sheehan & Song (2016): the
site-frequency spectrum, linkage disequilibrium by distance, haplotype statistics, and the
same diversity / haplotype statistics in windows along the region.

The vector (:func:`compute_stats`, names in :func:`stat_names`) is, in order:

* global: segregating sites, pi (per region), Watterson's theta (per region), Tajima's D,
  distinct haplotypes / n, haplotype diversity, Garud's H1, H12, H123 and H2/H1;
* folded SFS: the proportion of segregating sites in ``SFS_BINS`` bins of minor-allele count;
* LD: mean r^2 (Rogers & Huff) of site pairs in ``LD_BINS`` distance bins (fractions of the
  region);
* per window (``N_WINDOWS`` equal windows): segregating sites, pi, distinct haplotypes / n, H12.

Missing calls are ``-1``: allele counts leave them out; haplotype statistics group haplotypes
that agree wherever both are called (:func:`_haplotype_counts`; unchanged for a matrix without
missing calls, so ``STATS_VERSION`` stays). Statistics undefined for a matrix
(Tajima's D without sites, r^2 without pairs in a bin) are 0.
"""

from __future__ import annotations

import warnings

import numpy as np

STATS_VERSION = 1
SFS_BINS = 8
LD_BINS = (0.0, 0.01, 0.03, 0.1, 0.25, 0.5)
N_WINDOWS = 5
#: LD is computed on at most this many sites (evenly spaced), so its cost stays bounded.
MAX_LD_SITES = 200

_GLOBAL = ("S", "pi", "theta_w", "tajima_d", "hap_frac", "hap_div", "H1", "H12", "H123", "H2_H1")
_WIN = ("S", "pi", "hap_frac", "H12")


def stat_names(n_haplotypes: int) -> list[str]:
    """Names of the statistics (the order of :func:`compute_stats`)."""
    names = list(_GLOBAL)
    names += [f"sfs_{lo}-{hi}" for lo, hi in sfs_bin_edges(n_haplotypes)]
    names += [f"r2_{LD_BINS[j]:g}-{LD_BINS[j + 1]:g}" for j in range(len(LD_BINS) - 1)]
    names += [f"w{w + 1}_{s}" for w in range(N_WINDOWS) for s in _WIN]
    return names


def sfs_bin_edges(n_haplotypes: int) -> list[tuple[int, int]]:
    """Minor-allele-count ranges ``(lo, hi)`` (inclusive) of the folded-SFS bins."""
    top = n_haplotypes // 2
    edges = np.unique(np.round(np.linspace(1, top + 1, min(SFS_BINS, top) + 1)).astype(int))
    return [(int(edges[j]), int(edges[j + 1] - 1)) for j in range(len(edges) - 1)]


def _haplotype_counts(h: np.ndarray) -> np.ndarray:
    """Sizes of the groups of haplotypes of ``h`` (sites, n) that are one haplotype, largest
    first. Without missing calls: identical ones. With them (-1), a haplotype joins the first
    group it agrees with at every site both have called (haplotypes with fewer missing calls
    first; a group's missing calls are filled by its members'), so a missing call neither makes
    a haplotype of its own (scikit-allel took -1 for an allele: one ./. in 22 sites moved H12
    0.54 -> 0.32) nor drops its site (keeping the fully called sites only read 10 % missing
    calls as a sweep, H12 0.27 -> 1)."""
    hap = h.T
    missing = hap < 0
    if not missing.any():
        _, counts = np.unique(hap, axis=0, return_counts=True)
        return np.sort(counts)[::-1]
    reps: list[np.ndarray] = []
    counts: list[int] = []
    for i in np.argsort(missing.sum(axis=1), kind="stable"):
        x = hap[i]
        for g, rep in enumerate(reps):
            both = (x >= 0) & (rep >= 0)
            if np.array_equal(x[both], rep[both]):
                counts[g] += 1
                fill = rep < 0
                rep[fill] = x[fill]
                break
        else:
            reps.append(x.copy())
            counts.append(1)
    return np.sort(np.asarray(counts))[::-1]


def _hap_stats(h: np.ndarray) -> tuple[float, float, float, float, float, float]:
    """(distinct haplotypes / n, haplotype diversity, H1, H12, H123, H2/H1) of ``h`` (sites, n),
    as scikit-allel's ``distinct_counts``, ``haplotype_diversity`` and ``garud_h`` compute them,
    on the haplotype groups of :func:`_haplotype_counts` (missing calls handled there)."""
    n = h.shape[1]
    if h.shape[0] == 0:
        return 1.0 / n, 0.0, 1.0, 1.0, 1.0, 0.0
    f = _haplotype_counts(h) / n
    h1 = float(np.sum(f**2))
    h12 = float(np.sum(f[:2]) ** 2 + np.sum(f[2:] ** 2))
    h123 = float(np.sum(f[:3]) ** 2 + np.sum(f[3:] ** 2))
    h2_h1 = (h1 - float(f[0]) ** 2) / h1 if h1 > 0 else 0.0
    diversity = (1.0 - h1) * n / (n - 1) if n > 1 else 0.0
    return len(f) / n, diversity, h1, h12, h123, h2_h1


def _ld(h: np.ndarray, pos: np.ndarray, length: float) -> np.ndarray:
    import allel

    out = np.zeros(len(LD_BINS) - 1)
    ac = np.where(h < 0, -1, h).astype(np.int8)
    # sites polymorphic among the called haplotypes
    called = (ac >= 0).sum(1)
    alt = np.where(ac > 0, 1, 0).sum(1)
    keep = np.flatnonzero((alt > 0) & (alt < called))
    if len(keep) > MAX_LD_SITES:
        keep = keep[np.round(np.linspace(0, len(keep) - 1, MAX_LD_SITES)).astype(int)]
    if len(keep) < 2:
        return out
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        r = allel.rogers_huff_r(ac[keep])
    r2 = np.atleast_1d(np.asarray(r, np.float64)) ** 2
    p = pos[keep] / length
    i, j = np.triu_indices(len(keep), 1)
    d = np.abs(p[j] - p[i])
    which = np.digitize(d, LD_BINS) - 1
    ok = np.isfinite(r2) & (which >= 0) & (which < len(out))
    for b in range(len(out)):
        m = ok & (which == b)
        if m.any():
            out[b] = r2[m].mean()
    return out


def compute_stats(gt: np.ndarray, pos: np.ndarray, length: float) -> np.ndarray:
    """The summary statistics of one haplotype matrix.

    Parameters
    ----------
    gt
        ``(n_sites, n_haplotypes)`` alleles 0 / 1, ``-1`` missing.
    pos
        ``(n_sites,)`` positions in bp, increasing, within ``[0, length)``.
    length
        Region length (bp).

    Returns
    -------
    numpy.ndarray
        ``(len(stat_names(n_haplotypes)),)`` float64.
    """
    import allel

    gt = np.asarray(gt)
    n = gt.shape[1]
    pos = np.asarray(pos, np.float64)
    h = gt.astype(np.int8)
    ac = allel.HaplotypeArray(h).count_alleles(max_allele=1)
    seg = ac.is_segregating()
    S = int(seg.sum())
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        pi = float(np.nansum(allel.mean_pairwise_difference(ac[seg]))) if S else 0.0
        tw = S / float(np.sum(1.0 / np.arange(1, n)))
        td = float(allel.tajima_d(ac[seg])) if S >= 3 else 0.0
    g = [S, pi, tw, td if np.isfinite(td) else 0.0, *_hap_stats(h[seg])]
    # folded SFS, binned
    called = ac.sum(1)
    minor = np.minimum(ac[:, 1], called - ac[:, 1])[seg]
    sfs = np.zeros(len(sfs_bin_edges(n)))
    if S:
        for b, (lo, hi) in enumerate(sfs_bin_edges(n)):
            sfs[b] = float(((minor >= lo) & (minor <= hi)).sum()) / S
    ld = _ld(h[seg], pos[seg], length)
    win = []
    edges = np.linspace(0, length, N_WINDOWS + 1)
    for w in range(N_WINDOWS):
        m = seg & (pos >= edges[w]) & (pos < edges[w + 1])
        acw = ac[m]
        pw = 0.0
        if m.any():
            pw = float(np.nansum(allel.mean_pairwise_difference(acw)))
        hs = _hap_stats(h[m])
        win += [int(m.sum()), pw, hs[0], hs[3]]
    v = np.asarray([*g, *sfs, *ld, *win], np.float64)
    return np.nan_to_num(v, nan=0.0, posinf=0.0, neginf=0.0)


__all__ = ["STATS_VERSION", "compute_stats", "sfs_bin_edges", "stat_names"]
