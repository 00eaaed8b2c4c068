"""Contact precision, the way CASP and the contact papers score a map (numpy only).

Pairs are ranked by score among those whose two residues both have a native coordinate and
whose sequence separation is in the range (long: ``|i - j| >= 24``, medium: 12-23, short:
6-11); top-``L/k`` precision is the fraction of the ``L/k`` best that are contacts (CB-CB
below 8 angstrom, CA for glycine). ``L`` is the number of query residues with a native
coordinate (DNCON2's convention: the length of the structure).
"""

from __future__ import annotations

import numpy as np

RANGES: dict[str, tuple[int, int | None]] = {"long": (24, None), "medium": (12, 23), "short": (6, 11)}
TOPS: dict[str, float] = {"L/5": 5.0, "L/2": 2.0, "L": 1.0}


def pair_index(L: int, min_sep: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """The pairs ``i < j`` with ``j - i >= min_sep`` (0-based), in row order."""
    return np.triu_indices(L, k=max(int(min_sep), 1))


def top_pairs(scores: np.ndarray, n: int, min_sep: int = 6, max_sep: int | None = None, observed=None):
    """The ``n`` best pairs ``(i, j)`` of a score matrix (ties broken by ``i``, then ``j``)."""
    L = scores.shape[0]
    i, j = pair_index(L, min_sep)
    keep = np.ones(len(i), bool) if max_sep is None else (j - i) <= max_sep
    if observed is not None:
        keep &= observed[i] & observed[j]
    s = scores[i, j]
    keep &= np.isfinite(s)
    i, j, s = i[keep], j[keep], s[keep]
    order = np.lexsort((j, i, -s))[: max(int(n), 0)]
    return i[order], j[order]


def precision(
    scores: np.ndarray,
    distances: np.ndarray,
    threshold: float = 8.0,
    ranges: dict[str, tuple[int, int | None]] | None = None,
    tops: dict[str, float] | None = None,
) -> dict[str, float]:
    """Top-``L/k`` precision of ``scores`` ``(L, L)`` against native ``distances`` ``(L, L)``
    (angstrom, NaN where unknown), per separation range: ``{"long_L/5": ..., ...}``. A range
    with no scorable pair gives NaN."""
    ranges = ranges or {k: RANGES[k] for k in ("long", "medium")}
    tops = tops or TOPS
    observed = np.isfinite(distances).any(1) & (np.isfinite(distances).sum(1) > 1)
    n_obs = int(observed.sum())
    out: dict[str, float] = {}
    for rname, (lo, hi) in ranges.items():
        for tname, k in tops.items():
            n = max(1, int(n_obs / k))
            i, j = top_pairs(scores, n, lo, hi, observed)
            d = distances[i, j]
            ok = np.isfinite(d)
            out[f"{rname}_{tname}"] = float((d[ok] < threshold).sum() / n) if ok.any() else float("nan")
    return out


def contact_counts(distances: np.ndarray, threshold: float = 8.0) -> dict[str, int]:
    """Native contacts per separation range."""
    L = distances.shape[0]
    out = {}
    for rname, (lo, hi) in RANGES.items():
        i, j = pair_index(L, lo)
        keep = np.ones(len(i), bool) if hi is None else (j - i) <= hi
        d = distances[i[keep], j[keep]]
        out[rname] = int((d[np.isfinite(d)] < threshold).sum())
    return out
