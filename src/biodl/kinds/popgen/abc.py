"""Rejection ABC on the summary statistics: the baseline beside the networks.

The reference table is the training simulations (statistics and parameters). Statistics are
transformed like the MLP's input (``sign(x) log1p(|x|)``) and scaled by their standard deviation
over the reference table; for each query the ``fraction`` closest simulations (Euclidean
distance) are accepted. Regression: the posterior mean of log10 parameters, optionally with
Beaumont et al. (2002)'s local-linear regression adjustment (Epanechnikov weights).
Classification: the class frequencies among the accepted simulations (posterior model
probabilities).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _slog(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log1p(np.abs(x))


@dataclass
class RejectionABC:
    """Rejection ABC.

    Parameters
    ----------
    stats
        ``(n_ref, n_stats)`` reference statistics.
    theta
        ``(n_ref, n_params)`` reference parameters (log10 for regression) or ``(n_ref,)`` class indices.
    fraction
        Share of the reference table accepted per query (at least 10 simulations).
    adjust
        Local-linear regression adjustment (regression only).
    n_classes
        Number of classes (classification); ``None`` for regression.
    """

    stats: np.ndarray
    theta: np.ndarray
    fraction: float = 0.01
    adjust: bool = False
    n_classes: int | None = None

    def __post_init__(self) -> None:
        z = _slog(np.asarray(self.stats, np.float64))
        self.mean = z.mean(0)
        sd = z.std(0)
        self.sd = np.where(sd > 0, sd, 1.0)
        self.ref = (z - self.mean) / self.sd
        self.k = int(min(len(self.ref), max(10, round(self.fraction * len(self.ref)))))

    def _accepted(self, q: np.ndarray, chunk: int = 256):
        zq = (_slog(np.asarray(q, np.float64)) - self.mean) / self.sd
        rr = (self.ref**2).sum(1)
        for a in range(0, len(zq), chunk):
            b = zq[a : a + chunk]
            d2 = (b**2).sum(1)[:, None] + rr[None, :] - 2 * b @ self.ref.T
            idx = np.argpartition(d2, self.k - 1, axis=1)[:, : self.k]
            yield zq[a : a + chunk], idx, np.sqrt(np.maximum(np.take_along_axis(d2, idx, 1), 0))

    def predict(self, q: np.ndarray) -> np.ndarray:
        """Estimates for query statistics ``(n, n_stats)``: ``(n, n_params)`` posterior means
        (log10 scale, as ``theta``), or ``(n, n_classes)`` class probabilities."""
        out = []
        for zq, idx, dist in self._accepted(q):
            if self.n_classes is not None:
                cls = np.asarray(self.theta, np.int64).reshape(-1)[idx]
                out.append(np.stack([(cls == c).mean(1) for c in range(self.n_classes)], axis=1))
                continue
            th = np.asarray(self.theta, np.float64)[idx]  # (b, k, p)
            if not self.adjust:
                out.append(th.mean(1))
                continue
            est = np.empty((len(zq), th.shape[2]))
            for j in range(len(zq)):
                h = dist[j].max() or 1.0
                w = np.clip(1 - (dist[j] / h) ** 2, 0, None) + 1e-12
                X = np.hstack([np.ones((self.k, 1)), self.ref[idx[j]] - zq[j]])
                W = np.sqrt(w)[:, None]
                beta, *_ = np.linalg.lstsq(X * W, th[j] * W, rcond=None)
                est[j] = beta[0]  # the fit at the query = the adjusted posterior mean
            out.append(est)
        width = self.n_classes or np.asarray(self.theta).reshape(len(self.ref), -1).shape[1]
        return np.concatenate(out) if out else np.zeros((0, width))


__all__ = ["RejectionABC"]
