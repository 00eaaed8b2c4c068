"""Baseline for sample classification: per-sample marker medians per cluster -> logistic regression.

KMeans is fitted on cells pooled from the training samples (the same number from each);
every sample is then described by the median of each marker in each cluster (a cluster
with no cells of the sample gets the training median of that cluster), and a standardised,
L2-regularised logistic regression is fitted on these features.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["ClusterMedianBaseline"]


class ClusterMedianBaseline:
    """Cluster-median features + logistic regression.

    Parameters
    ----------
    n_clusters
        KMeans clusters.
    cells_per_sample
        Cells drawn from each training sample for KMeans.
    C
        Inverse L2 strength of the logistic regression.
    seed
        Seed of the subsampling and KMeans.
    """

    def __init__(
        self, n_clusters: int = 10, cells_per_sample: int = 2000, C: float = 1.0, seed: int = 0
    ) -> None:
        self.n_clusters, self.cells_per_sample, self.C, self.seed = n_clusters, cells_per_sample, C, seed

    def fit(self, samples: Sequence[np.ndarray], targets: np.ndarray) -> ClusterMedianBaseline:
        """Fit on ``samples`` (``(n_cells_i, n_markers)`` each) with class indices ``targets``."""
        from sklearn.cluster import KMeans
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        rng = np.random.default_rng(self.seed)
        pool = np.concatenate(
            [c[rng.choice(len(c), min(len(c), self.cells_per_sample), replace=False)] for c in samples]
        )
        self.kmeans_ = KMeans(self.n_clusters, n_init=3, random_state=self.seed).fit(pool)
        lab = self.kmeans_.labels_
        self.fill_ = np.stack(
            [
                np.median(pool[lab == k], axis=0) if (lab == k).any() else self.kmeans_.cluster_centers_[k]
                for k in range(self.n_clusters)
            ]
        )
        self.clf_ = make_pipeline(StandardScaler(), LogisticRegression(C=self.C, max_iter=2000))
        self.clf_.fit(self.features(samples), np.asarray(targets).astype(int))
        return self

    def features(self, samples: Sequence[np.ndarray]) -> np.ndarray:
        """``(n_samples, n_clusters * n_markers)`` per-cluster marker medians."""
        rows = []
        for c in samples:
            lab = self.kmeans_.predict(np.ascontiguousarray(c, dtype=np.float32))
            rows.append(
                np.concatenate(
                    [
                        np.median(c[lab == k], axis=0) if (lab == k).any() else self.fill_[k]
                        for k in range(self.n_clusters)
                    ]
                )
            )
        return np.stack(rows)

    def predict_proba(self, samples: Sequence[np.ndarray]) -> np.ndarray:
        """Class probabilities ``(n_samples, n_classes)``."""
        return self.clf_.predict_proba(self.features(samples))
