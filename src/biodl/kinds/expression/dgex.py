"""D-GEX tools: landmark / target split, the paper's baselines (linear regression, KNN-GE),
training a D-GEX network on arrays, and cross-validated comparison.

Metric (Chen et al. 2016): mean absolute error of each target gene over the test samples,
averaged over targets; plus the fraction of targets on which D-GEX has a lower MAE than LR.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from biodl.errors import BiodlInputError
from biodl.kinds.expression.io import ExpressionMatrix, read_gene_list, require_genes
from biodl.models.dgex import DGEX
from biodl.train.fit import TrainConfig


def split_landmarks(
    data: ExpressionMatrix, landmarks: list[str], targets: list[str] | None = None
) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Landmark inputs and target outputs of ``data``.

    Every landmark and every named target must be present (D-GEX needs all its inputs, and a
    target it cannot learn is an error, not a silent drop); default targets: every non-landmark
    gene.

    Returns
    -------
    (x, y, landmarks, targets)
        ``x (n, n_landmarks)``, ``y (n, n_targets)`` float32.
    """
    pos = {g: i for i, g in enumerate(data.genes)}
    require_genes(landmarks, pos, "landmark genes", data.source, where="the data")
    lm = set(landmarks)
    if targets is None:
        targets = [g for g in data.genes if g not in lm]
    else:
        require_genes(targets, pos, "target genes", data.source, where="the data")
        both = [g for g in targets if g in lm]
        if both:  # a landmark is an input: dropping it from the targets left asked-for outputs out
            shown = ", ".join(both[:5]) + (f" and {len(both) - 5} more" if len(both) > 5 else "")
            raise BiodlInputError(
                f"{len(both)} of the {len(targets)} target genes are also landmark genes ({shown}): a "
                "landmark is an input of D-GEX, not an output; leave them out of the targets"
            )
    if not targets:
        raise BiodlInputError("no target genes in the data", path=data.source or None)
    x = data.values[:, [pos[g] for g in landmarks]]
    y = data.values[:, [pos[g] for g in targets]]
    return np.ascontiguousarray(x), np.ascontiguousarray(y), list(landmarks), targets


def load_gene_list_option(value: Any, what: str) -> list[str] | None:
    """A gene list given as a file path (one id per line, or a D-GEX map) or comma-separated ids."""
    if value is None or value == "":
        return None
    if isinstance(value, list):
        genes = [str(v) for v in value]
    else:
        s = str(value)
        if Path(s).exists():
            return read_gene_list(s)
        if "," not in s and ("/" in s or s.lower().endswith((".txt", ".tsv", ".csv", ".gz", ".lst"))):
            raise BiodlInputError(f"{what}: file {s!r} not found")
        genes = [g.strip() for g in s.split(",") if g.strip()]  # ids (one without a comma too)
    seen: set[str] = set()
    twice = [g for g in genes if g in seen or seen.add(g)]
    if twice:  # as a file's list: a gene given twice is a mistake, not a weight
        raise BiodlInputError(f"{what}: {twice[0]!r} is given twice")
    return genes


class LinearBaseline:
    """Per-target least-squares regression on the landmarks with intercept (the paper's LR).

    With fewer training samples than landmarks the least-squares problem is underdetermined;
    ``numpy.linalg.lstsq`` then gives the minimum-norm solution. ``alpha > 0`` gives ridge
    regression instead.
    """

    def __init__(self, alpha: float = 0.0) -> None:
        self.alpha = alpha

    def fit(self, x: np.ndarray, y: np.ndarray) -> LinearBaseline:
        self.xm, self.ym = x.mean(0), y.mean(0)
        xc, yc = (x - self.xm).astype(np.float64), (y - self.ym).astype(np.float64)
        if self.alpha > 0:
            # dual form when n < p: W = X^T (X X^T + a I)^-1 Y
            n = xc.shape[0]
            if n < xc.shape[1]:
                k = xc @ xc.T + self.alpha * np.eye(n)
                self.w = xc.T @ np.linalg.solve(k, yc)
            else:
                self.w = np.linalg.solve(xc.T @ xc + self.alpha * np.eye(xc.shape[1]), xc.T @ yc)
        else:
            self.w = np.linalg.lstsq(xc, yc, rcond=None)[0]
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.xm) @ self.w + self.ym).astype(np.float32)


class KNNBaseline:
    """KNN-GE: a target's expression is the mean over the ``k`` training samples closest to the
    query in landmark space (Euclidean distance)."""

    def __init__(self, k: int = 10) -> None:
        self.k = k

    def fit(self, x: np.ndarray, y: np.ndarray) -> KNNBaseline:
        self.x, self.y = x.astype(np.float64), y
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        d = ((x[:, None, :].astype(np.float64) - self.x[None]) ** 2).sum(-1)
        k = min(self.k, self.x.shape[0])
        idx = np.argsort(d, axis=1)[:, :k]
        return self.y[idx].mean(1).astype(np.float32)


def choose_knn_k(
    x: np.ndarray, y: np.ndarray, ks=(1, 2, 3, 5, 10, 15, 20), folds: int = 5, seed: int = 0
) -> int:
    """``k`` of KNN-GE with the lowest inner cross-validated MAE (the paper tuned k on validation)."""
    from sklearn.model_selection import KFold

    best, best_k = np.inf, ks[0]
    cv = KFold(min(folds, len(x)), shuffle=True, random_state=seed)
    for k in ks:
        errs = []
        for tr, va in cv.split(x):
            if k > len(tr):
                continue
            errs.append(np.abs(KNNBaseline(k).fit(x[tr], y[tr]).predict(x[va]) - y[va]).mean())
        if errs and np.mean(errs) < best:
            best, best_k = float(np.mean(errs)), k
    return best_k


def choose_ridge_alpha(
    x: np.ndarray, y: np.ndarray, alphas=(1, 10, 100, 1e3, 1e4, 1e5), folds: int = 5, seed: int = 0
) -> float:
    """Ridge penalty with the lowest inner cross-validated MAE."""
    from sklearn.model_selection import KFold

    best, best_a = np.inf, alphas[0]
    cv = KFold(min(folds, len(x)), shuffle=True, random_state=seed)
    for a in alphas:
        e = np.mean(
            [
                np.abs(LinearBaseline(a).fit(x[tr], y[tr]).predict(x[va]) - y[va]).mean()
                for tr, va in cv.split(x)
            ]
        )
        if e < best:
            best, best_a = float(e), a
    return best_a


def dgex_split(n: int, valid_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation samples: a random ``valid_fraction`` (at least 1; none under 5
    samples) held out."""
    from biodl.train.datamodule import split_indices

    return split_indices(n, valid_fraction, seed, at_least_one=True, min_items=5, sort=False)


def build_dgex(
    x_train: np.ndarray, y_train: np.ndarray, model_kwargs: dict[str, Any] | None, seed: int
) -> DGEX:
    """A seeded :class:`DGEX` with its standardisation fitted on the training samples."""
    from biodl.train.fit import seed_all

    seed_all(seed)
    model = DGEX(x_train.shape[1], y_train.shape[1], **(model_kwargs or {}))
    model.fit_scaling(torch.from_numpy(x_train), torch.from_numpy(y_train))
    return model


def standardize(model: DGEX, x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Landmarks and targets on the model's standardised scale."""
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    return (xt - model.x_mean) / model.x_std, (yt - model.y_mean) / model.y_std


def train_dgex(
    x: np.ndarray,
    y: np.ndarray,
    config: TrainConfig,
    model_kwargs: dict[str, Any] | None = None,
    valid_fraction: float = 0.1,
    out_dir: str | Path | None = None,
    optimizer: str = "adam",
) -> tuple[DGEX, dict[str, Any]]:
    """Train a :class:`DGEX` on landmarks ``x`` and targets ``y`` (a random ``valid_fraction``
    of the samples, at least 1, is held out for early stopping; see :func:`dgex_split`).

    Returns
    -------
    (model, info)
        The model (best epoch by validation loss) and ``best_epoch``, ``epochs_run``,
        ``val_metrics``, ``resumed_from``, ``seconds``, ``n_train``, ``n_valid``.
    """
    from biodl.kinds.expression.training import fit_dgex

    tr, va = dgex_split(len(x), valid_fraction, config.seed)
    model = build_dgex(x[tr], y[tr], model_kwargs, config.seed)
    valid = standardize(model, x[va], y[va]) if len(va) else None
    tmp = None
    if out_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="biodl-dgex-")
        out_dir = tmp.name
    try:
        res = fit_dgex(model, standardize(model, x[tr], y[tr]), valid, out_dir, config, optimizer=optimizer)
    finally:
        if tmp is not None:
            tmp.cleanup()
    info = {
        "best_epoch": res.best_epoch,
        "epochs_run": res.epochs_run,
        "val_metrics": res.val_metrics,
        "resumed_from": res.resumed_from,
        "seconds": res.seconds,
        "n_train": len(tr),
        "n_valid": len(va),
    }
    return model.eval(), info


def dgex_predict(model: DGEX, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Target expression ``(n, n_targets)`` from landmarks ``(n, n_landmarks)``, original scale."""
    from torch.utils.data import TensorDataset

    from biodl.train.predict import predict

    return predict(
        model,
        TensorDataset(torch.from_numpy(np.ascontiguousarray(x, np.float32))),
        batch_size=batch_size,
        forward=model.infer,
        allow_empty=True,
    )[0]


def mae_per_target(pred: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Mean absolute error of every target over the samples, ``(n_targets,)``."""
    return np.abs(pred - y).mean(0)
