"""Training CellCnn as published: multi-cell inputs, random restarts, an ensemble of the best.

The training samples' cells are split per sample into a training part and a validation part
(80/20 by default, as in the reference implementation). From each part, multi-cell inputs of
``ncell`` random cells are drawn per sample (``nsubset`` per class, divided among the class's
samples); each input carries its sample's label. ``nrun`` networks are trained with random
configurations (filters from ``nfilter_choice``, pooling percentage cycling through
``pool_percents``, learning rate ``10**U(-3, -2)``), each with early stopping on the
validation loss, each trained by the one runner (:func:`biodl.train.fit`: a training plan with
CellCnn's L1/L2 weight penalty as its ``penalty`` hook, Adam, model selection on the validation
loss); the ``n_best`` networks with the best validation accuracy (regression: loss) form the
:class:`~biodl.models.cellcnn.CellCnnEnsemble`.

Outlier-biased multi-cell inputs (``sampling="outlier"``, the reference implementation's
``subset_selection="outlier"``, meant for very rare subsets): every cell of a non-control sample
gets an *outlierness*, its L1 distance (z-scored markers, each clipped to the 0.5-99.5 %
percentiles of the control cells) to the nearest of ``outlier_landmarks`` k-means++ landmarks of
the control cells; the ``outlier_keep`` most outlying fraction of a sample's cells forms its
outlier pool, and each multi-cell input of that sample takes ``outlier_fraction`` of its cells
from the pool (drawn with probability proportional to outlierness) and the rest uniformly at
random. Control samples (class 0) keep uniform inputs. See :func:`outlier_scores`.

Every restart keeps its own checkpoints under ``OUT/restarts/run_XX``; a finished restart is
not repeated when a killed run is started again.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from biodl.errors import BiodlInputError
from biodl.kinds.cells.io import MISSING_LABELS
from biodl.models.cellcnn import CellCnn, CellCnnEnsemble
from biodl.train.checkpoint import atomic_json, atomic_torch_save, remove_checkpoints
from biodl.train.datamodule import DataModule, split_indices
from biodl.train.fit import TrainConfig, fit
from biodl.train.plans import TrainingPlan
from biodl.train.predict import predict

__all__ = [
    "CellCnnConfig",
    "MultiCellDataset",
    "encode_labels",
    "load_restarts",
    "outlier_pools",
    "outlier_scores",
    "predict_samples",
    "split_cells",
    "train_cellcnn",
]

_CONTROL_NAMES = (
    "ref",
    "reference",
    "control",
    "ctrl",
    "healthy",
    "unstim",
    "unstimulated",
    "basal",
    "negative",
    "neg",
    "normal",
    "0",
    "no",
    "false",
)


SAMPLINGS = ("random", "outlier")


@dataclass
class CellCnnConfig:
    """CellCnn training options (defaults of the reference implementation unless noted).

    Attributes
    ----------
    ncell
        Cells per multi-cell input.
    nsubset
        Multi-cell inputs per class (per sample if ``per_sample``) for training.
    nsubset_valid
        Multi-cell inputs per class for validation (default ``nsubset // 4``; the reference
        implementation uses ``nsubset``).
    per_sample
        ``nsubset`` counts per sample rather than per class (always so for regression).
    nrun
        Restarts with random configurations (at least 3).
    n_best
        Networks kept in the ensemble.
    pool_percents
        Pooling percentages cycled through by the restarts.
    nfilter_choice
        Numbers of filters drawn from.
    hidden
        Units of a per-cell hidden layer before the filters (0: the published network, linear
        filters; see :class:`~biodl.models.cellcnn.CellCnn`).
    learning_rate
        Fixed Adam learning rate; ``None`` draws ``10**U(-3, -2)`` per restart.
    l1, l2
        Weight penalties on filter and output weights.
    dropout
        ``"auto"`` (dropout ``dropout_p`` when a network has more than 5 filters), or a
        probability.
    max_epochs, patience, batch_size
        Per restart.
    valid_fraction
        Fraction of each training sample's cells used for validation inputs.
    scale
        z-score each marker with the training cells' mean and standard deviation.
    sampling
        ``"random"`` (uniform multi-cell inputs, the reference default) or ``"outlier"``
        (inputs of non-control samples biased towards cells far from the control cells; the
        reference implementation's ``subset_selection="outlier"``, recommended there for
        subsets rarer than ~0.1 %). Needs classification with a control class 0.
    outlier_fraction
        Fraction of each biased input drawn from the outlier pool (reference: 0.5).
    outlier_keep
        Fraction of a sample's cells kept in its outlier pool, the most outlying first
        (reference: 0.1 of the mean sample size).
    outlier_landmarks
        k-means++ landmarks of the control cells the outlierness is measured against
        (reference: 100).
    outlier_controls
        Bias the control samples' inputs too, each sample's outlierness measured against the
        *other* control samples (not in the reference, whose control inputs stay uniform): then
        a share of outlying cells alone no longer tells the classes apart, only what the
        outlying cells are.
    """

    ncell: int = 200
    nsubset: int = 1000
    nsubset_valid: int | None = None
    per_sample: bool = False
    nrun: int = 15
    n_best: int = 3
    pool_percents: tuple[float, ...] = (0.01, 1.0, 5.0, 20.0, 100.0)
    nfilter_choice: tuple[int, ...] = tuple(range(3, 10))
    hidden: int = 0
    learning_rate: float | None = None
    l1: float = 0.0
    l2: float = 1e-4
    dropout: float | str = "auto"
    dropout_p: float = 0.5
    max_epochs: int = 20
    patience: int = 5
    batch_size: int = 200
    valid_fraction: float = 0.2
    scale: bool = True
    sampling: str = "random"
    outlier_fraction: float = 0.5
    outlier_keep: float = 0.1
    outlier_landmarks: int = 100
    outlier_controls: bool = False
    extra: dict = field(default_factory=dict)

    def check(self) -> None:
        if self.ncell < 1:
            raise BiodlInputError(f"ncell must be >= 1, got {self.ncell}")
        if self.hidden < 0:
            raise BiodlInputError(f"hidden must be >= 0, got {self.hidden}")
        if self.nsubset < 2:
            raise BiodlInputError(f"nsubset must be >= 2, got {self.nsubset}")
        if self.nrun < 1 or self.n_best < 1:
            raise BiodlInputError("nrun and n_best must be >= 1")
        if not 0 < self.valid_fraction < 1:
            raise BiodlInputError(f"valid_fraction must be in (0, 1), got {self.valid_fraction}")
        if self.sampling not in SAMPLINGS:
            raise BiodlInputError(f"sampling must be one of {', '.join(SAMPLINGS)}, got {self.sampling!r}")
        if not 0 < self.outlier_fraction <= 1:
            raise BiodlInputError(f"outlier_fraction must be in (0, 1], got {self.outlier_fraction}")
        if not 0 < self.outlier_keep <= 1:
            raise BiodlInputError(f"outlier_keep must be in (0, 1], got {self.outlier_keep}")
        if self.outlier_landmarks < 1:
            raise BiodlInputError(f"outlier_landmarks must be >= 1, got {self.outlier_landmarks}")
        for p in self.pool_percents:
            if not 0 < float(p) <= 100:
                raise BiodlInputError(f"pool percentages must be in (0, 100], got {p}")
        if not self.pool_percents:
            raise BiodlInputError("pool_percents must list at least one pooling percentage")
        if not self.nfilter_choice:
            raise BiodlInputError("nfilter_choice must list at least one number of filters")
        for n in self.nfilter_choice:
            if int(n) < 1:
                raise BiodlInputError(f"nfilter_choice: numbers of filters must be at least 1, got {n}")
        if self.nsubset_valid is not None and self.nsubset_valid < 1:
            raise BiodlInputError(f"nsubset_valid must be >= 1, got {self.nsubset_valid}")
        if self.learning_rate is not None and not (
            math.isfinite(self.learning_rate) and self.learning_rate > 0
        ):
            raise BiodlInputError(f"learning_rate must be positive (above 0), got {self.learning_rate}")
        if self.l1 < 0 or self.l2 < 0:
            raise BiodlInputError(f"l1 and l2 must be >= 0, got l1={self.l1}, l2={self.l2}")
        if not 0 <= self.dropout_p < 1:
            raise BiodlInputError(f"dropout_p must be a probability from 0 to below 1, got {self.dropout_p}")
        if self.dropout != "auto" and not (
            isinstance(self.dropout, (int, float)) and 0 <= float(self.dropout) < 1
        ):
            raise BiodlInputError(
                f"dropout must be auto or a probability from 0 to below 1, got {self.dropout!r}"
            )


def _one_spelling_per_label(labels: list[str], path, line) -> None:
    """Refuse two spellings of one label (``Ref`` / ``ref``, ``BCRXL`` / ``BCRXL ``): each would
    be a class of its own (four one-sample classes instead of two)."""
    first: dict[str, int] = {}
    for i, s in enumerate(labels):
        j = first.setdefault(str(s).strip().casefold(), i)
        if labels[j] != s:
            at = f" (line {line(j)})" if line(j) else ""
            raise BiodlInputError(
                f"labels {labels[j]!r}{at} and {s!r} differ only in case or spaces: they would be two "
                "classes. Spell each class one way (or give the classes with --set classes=... "
                "if they really are different)",
                path=path,
                record=line(i),
            )


def encode_labels(
    labels: list[str],
    classes: list[str] | None = None,
    task: str | None = None,
    *,
    path: str | Path | None = None,
    lines: list[int] | None = None,
) -> tuple[np.ndarray, list[str] | None, str]:
    """Sample labels -> targets.

    Parameters
    ----------
    labels
        One label per sample (strings as read from the table).
    classes
        Class order (class 0 first). Default: a control-like name (``Ref``, ``control``,
        ``healthy``, ``0``, ...) first, the rest sorted.
    task
        ``classification`` / ``regression``; default: regression when every label is a
        number and there are more than two distinct values.
    path, lines
        The sample table and the line of each label, named in the errors.

    Returns
    -------
    (targets, classes, task)
        float targets ``(n,)`` (class indices or values), class names (``None`` for
        regression), ``"binary"`` (two classes; the network still has a softmax over both),
        ``"multiclass"`` or ``"regression"``.

    Raises
    ------
    BiodlInputError
        A missing (empty, ``NA``, ``NaN``, ...) or infinite label, a label that is not a
        number for regression, a label that is not among ``classes``; naming the table and
        the line when given.
    """

    def line(i: int) -> int | None:
        return lines[i] if lines and i < len(lines) else None

    for i, s in enumerate(labels):
        s = str(s).strip()
        if s.lower() in MISSING_LABELS:
            raise BiodlInputError(
                f"a missing label ({s!r}); CellCnn learns from whole labelled samples: give the sample "
                "its label or leave it out of the table",
                path=path,
                record=line(i),
            )
        try:
            inf = math.isinf(float(s))
        except ValueError:
            inf = False
        if inf:
            raise BiodlInputError(f"infinite label value {s!r}", path=path, record=line(i))

    def _num(s: str) -> float | None:
        try:
            v = float(s)
        except ValueError:
            return None
        return v if math.isfinite(v) else None

    nums = [_num(s) for s in labels]
    numeric = all(v is not None for v in nums)
    if task in (None, "auto"):  # distinct numbers, not spellings: 1 and 1.0 are one value
        task = "regression" if numeric and len(set(nums)) > 2 else "classification"
    if task in ("regression",):
        if any(v is None for v in nums):
            i = [v is None for v in nums].index(True)
            raise BiodlInputError(
                f"regression needs numeric labels, got {labels[i]!r}", path=path, record=line(i)
            )
        return np.asarray(nums, dtype=np.float32), None, "regression"
    if task not in ("classification", "binary", "multiclass"):
        raise BiodlInputError(f"CellCnn tasks are classification or regression, not {task!r}")

    def canonical(s: str) -> str:  # a number's class name: 1 for 1, 1.0 and 1.00 (spreadsheets)
        v = _num(s)
        return s if v is None else str(int(v)) if v.is_integer() else repr(v)

    if numeric:
        labels = [canonical(s) for s in labels]
        if classes and all(_num(c) is not None for c in classes):
            classes = [canonical(c) for c in classes]
    if not classes:
        _one_spelling_per_label(labels, path, line)
    uniq = sorted(set(labels))
    if classes:
        bad = [i for i, s in enumerate(labels) if s not in classes]
        if bad:
            what = (
                f"label {labels[bad[0]]!r} is"
                if len(bad) == 1
                else "labels "
                + ", ".join(f"{labels[i]!r}" + (f" (line {line(i)})" if line(i) else "") for i in bad[:5])
                + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
                + " are"
            )
            raise BiodlInputError(
                f"{what} not among the classes {', '.join(classes)}", path=path, record=line(bad[0])
            )
        uniq = list(classes)
    else:
        ctrl = [c for c in uniq if c.strip().lower() in _CONTROL_NAMES]
        uniq = ctrl[:1] + [c for c in uniq if c not in ctrl[:1]]
    index = {c: i for i, c in enumerate(uniq)}
    task = "binary" if len(uniq) == 2 else "multiclass"  # two classes: a softmax over both, named binary
    return np.asarray([index[s] for s in labels], dtype=np.float32), uniq, task


class MultiCellDataset(Dataset):
    """Multi-cell inputs: item ``j`` is ``ncell`` cells drawn from one sample (always the same
    cells for the same ``j`` and seed) and the sample's target.

    Parameters
    ----------
    cells
        One ``(n_cells_i, n_markers)`` array per sample.
    targets
        ``(n_samples,)`` class index or value per sample.
    counts
        Multi-cell inputs per sample.
    ncell
        Cells per input (drawn without replacement when the sample has enough cells).
    seed
        Seed of the draws.
    pools
        Per sample, ``None`` (uniform inputs) or an outlier pool ``(indices, weights)`` from
        :func:`outlier_pools`: then ``round(outlier_fraction * ncell)`` cells of every input
        are drawn from the pool (with replacement, probability proportional to ``weights``)
        and the rest uniformly, as the reference implementation's biased subsets.
    outlier_fraction
        Fraction of a biased input taken from the pool.
    max_bytes
        The inputs are drawn once and kept as one array when they take at most this many bytes
        (every epoch then reads them instead of drawing them again: 1.4x faster epochs in
        ``bench/cellcnn_inputs.py``; the same cells either way); larger sets are drawn item by item.
    """

    MAX_BYTES = 1 << 30

    def __init__(
        self,
        cells: list[np.ndarray],
        targets: np.ndarray,
        counts: list[int],
        ncell: int,
        seed: int = 0,
        pools: list[tuple[np.ndarray, np.ndarray] | None] | None = None,
        outlier_fraction: float = 0.5,
        max_bytes: int | None = None,
    ) -> None:
        self.cells = [np.ascontiguousarray(c, dtype=np.float32) for c in cells]
        self.targets = np.asarray(targets, dtype=np.float32)
        self.owner = np.repeat(np.arange(len(cells)), counts)
        self.ncell = int(ncell)
        self.seed = int(seed)
        if pools is not None and len(pools) != len(cells):
            raise BiodlInputError(f"{len(pools)} outlier pools for {len(cells)} samples")
        self.pools = pools
        self.n_biased = int(round(outlier_fraction * self.ncell)) if pools is not None else 0
        self.inputs: torch.Tensor | None = None
        n_markers = self.cells[0].shape[1] if self.cells else 0
        cap = self.MAX_BYTES if max_bytes is None else int(max_bytes)
        if 0 < len(self.owner) * self.ncell * n_markers * 4 <= cap:
            x = np.empty((len(self.owner), self.ncell, n_markers), np.float32)
            for j in range(len(self.owner)):
                x[j] = self.cells[int(self.owner[j])][self.indices(j)]
            self.inputs = torch.from_numpy(x)

    def __len__(self) -> int:
        return len(self.owner)

    def indices(self, j: int) -> np.ndarray:
        """Row indices (into its sample's cells) of the cells of input ``j``, ``(ncell,)``."""
        s = int(self.owner[j])
        n = self.cells[s].shape[0]
        rng = np.random.default_rng([self.seed, int(j)])
        pool = self.pools[s] if self.pools is not None else None
        if pool is None or self.n_biased == 0:
            return rng.choice(n, self.ncell, replace=n < self.ncell)
        idx, p = pool
        biased = idx[rng.choice(len(idx), self.n_biased, replace=True, p=p)]
        m = self.ncell - self.n_biased
        return np.concatenate([biased, rng.choice(n, m, replace=n < m)])

    def __getitem__(self, j: int) -> tuple[torch.Tensor, torch.Tensor]:
        s = int(self.owner[j])
        x = self.inputs[j] if self.inputs is not None else torch.from_numpy(self.cells[s][self.indices(j)])
        return x, torch.tensor([self.targets[s]])


def outlier_scores(
    cells: list[np.ndarray],
    control: np.ndarray,
    *,
    n_landmarks: int = 100,
    clip: tuple[float, float] = (0.5, 99.5),
    max_control: int = 100_000,
    seed: int = 0,
) -> list[np.ndarray]:
    """Outlierness of every cell relative to control cells.

    As the reference implementation (``cellCnn/downsample.py``: ``knn_dist`` and
    ``outlier_subsample``; ``utils.normalize_outliers_to_control``, github.com/eiriniar/CellCnn):
    each marker is clipped to the ``clip`` percentiles of the control cells, ``n_landmarks``
    landmarks are placed on (at most ``max_control`` random) control cells by k-means++
    seeding, and a cell's outlierness is its L1 (Manhattan) distance to the nearest landmark
    (scikit-learn ``NearestNeighbors``). Written for biodl; no code copied.

    Parameters
    ----------
    cells
        Arrays ``(n_cells_i, n_markers)`` to score (z-scored like ``control``).
    control
        ``(n_control, n_markers)`` control cells.

    Returns
    -------
    list of numpy.ndarray
        One ``(n_cells_i,)`` float array of distances per input array.
    """
    from sklearn.cluster import kmeans_plusplus
    from sklearn.neighbors import NearestNeighbors

    control = np.asarray(control, dtype=np.float64)
    if control.ndim != 2 or len(control) == 0:
        raise BiodlInputError("outlier scores need control cells (a non-empty cells x markers array)")
    rng = np.random.default_rng([seed, 4242])
    lo, hi = np.percentile(control, clip[0], axis=0), np.percentile(control, clip[1], axis=0)
    ref = control if len(control) <= max_control else control[rng.choice(len(control), max_control, False)]
    ref = np.clip(ref, lo, hi)
    k = min(int(n_landmarks), len(ref))
    centers, _ = kmeans_plusplus(ref, n_clusters=k, random_state=int(rng.integers(2**31 - 1)))
    nn = NearestNeighbors(n_neighbors=1, metric="manhattan").fit(centers)
    out = []
    for c in cells:
        if len(c) == 0:
            out.append(np.zeros(0))
            continue
        d, _ = nn.kneighbors(np.clip(np.asarray(c, dtype=np.float64), lo, hi))
        out.append(d[:, 0])
    return out


def outlier_pools(
    cells: list[np.ndarray],
    targets: np.ndarray,
    *,
    keep: float = 0.1,
    n_landmarks: int = 100,
    control: np.ndarray | None = None,
    control_class: int = 0,
    controls: bool = False,
    seed: int = 0,
) -> list[tuple[np.ndarray, np.ndarray] | None]:
    """Per sample, the outlier pool of biased multi-cell inputs (``None`` for control samples).

    Parameters
    ----------
    cells
        One ``(n_cells_i, n_markers)`` (z-scored) array per sample.
    targets
        ``(n_samples,)`` class indices; samples of ``control_class`` are the control.
    keep
        Fraction of a sample's cells in its pool: its ``max(1, int(keep * n_cells_i))`` most
        outlying cells.
    control
        Control cells the outlierness is measured against (default: the cells of the
        control samples).
    controls
        Give the control samples pools too, each scored against the other control samples
        (against itself when it is the only one).

    Returns
    -------
    list
        ``(indices, probabilities)`` per non-control sample: row indices of the pooled cells
        (most outlying first) and draw probabilities proportional to their outlierness.
    """
    targets = np.asarray(targets)
    if not np.any(targets == control_class):
        raise BiodlInputError(
            "sampling=outlier needs control samples (class 0, e.g. a label Ref/control/healthy) "
            "among the training samples"
        )
    if control is None:
        control = np.concatenate([c for c, t in zip(cells, targets, strict=True) if t == control_class])
    biased = [i for i, t in enumerate(targets) if t != control_class]
    scores = outlier_scores([cells[i] for i in biased], control, n_landmarks=n_landmarks, seed=seed)
    pools: list[tuple[np.ndarray, np.ndarray] | None] = [None] * len(cells)
    if controls:
        ctrl_idx = [i for i, t in enumerate(targets) if t == control_class]
        for i in ctrl_idx:
            others = [cells[j] for j in ctrl_idx if j != i] or [cells[i]]
            (sc,) = outlier_scores([cells[i]], np.concatenate(others), n_landmarks=n_landmarks, seed=seed)
            biased.append(i)
            scores.append(sc)
    for i, sc in zip(biased, scores, strict=True):
        n_keep = max(1, int(keep * len(sc)))
        idx = np.argsort(-sc, kind="stable")[:n_keep]
        w = sc[idx]
        p = w / w.sum() if w.sum() > 0 else np.full(len(w), 1.0 / len(w))
        pools[i] = (idx, p)
    return pools


def _counts(targets: np.ndarray, regression: bool, cfg: CellCnnConfig, total: int) -> list[int]:
    if regression or cfg.per_sample:
        return [max(1, total)] * len(targets)
    out = []
    for t in targets:
        n_class = int((targets == t).sum())
        out.append(max(1, total // n_class))
    return out


def _evaluate(
    model: CellCnn, ds: MultiCellDataset, regression: bool, batch_size: int = 256
) -> tuple[float, float]:
    """(accuracy or -mse, loss without the weight penalty) of ``model`` on ``ds``."""
    out, y = predict(model, ds, batch_size=batch_size)
    out, y = torch.from_numpy(out), torch.from_numpy(y[:, 0])
    if regression:
        mse = float(((out[:, 0] - y) ** 2).mean())
        return -mse, mse
    loss = float(torch.nn.functional.cross_entropy(out, y.long()))
    return float((out.argmax(1) == y.long()).float().mean()), loss


def _penalty(l1: float, l2: float):
    def penalty(model: CellCnn) -> torch.Tensor:
        return model.penalty(l1, l2)

    return penalty


def split_cells(
    cells: np.ndarray, valid_fraction: float, rng: np.random.Generator, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of a sample's training and validation cells.

    A random ``valid_fraction`` of the cells is held out. When the sample holds exact copies
    of a cell (a sample resampled with replacement, as spike-in experiments build them), the
    part of a cell is decided by the cell itself (a keyed hash of its values with ``seed``),
    so every copy of it -- in this sample and in any other sample of the run -- lands in the
    same part. Otherwise a network could learn which copies one class's training part holds
    and be scored on the other copies, whose share in the validation parts moves the opposite
    way (validation accuracy below chance). Samples without copies are split by ``rng`` as
    before (the same draws).
    """
    n = cells.shape[0]
    rows = np.ascontiguousarray(cells.reshape(n, -1))
    uniq, inv = np.unique(rows, axis=0, return_inverse=True)
    if len(uniq) == n:
        return split_indices(n, valid_fraction, rng, at_least_one=True, min_items=2, sort=False)
    key = int(seed).to_bytes(8, "little", signed=True)
    u = np.array(
        [
            int.from_bytes(hashlib.blake2b(r.tobytes(), digest_size=8, key=key).digest(), "little") / 2.0**64
            for r in uniq
        ]
    )
    held = (u < valid_fraction)[np.asarray(inv).reshape(-1)]
    return np.flatnonzero(~held), np.flatnonzero(held)


def train_cellcnn(
    cells: list[np.ndarray],
    targets: np.ndarray,
    n_outputs: int,
    out_dir: str | Path,
    cfg: CellCnnConfig,
    *,
    regression: bool = False,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = False,
    resume: bool = True,
    log=None,
    names: Sequence[str] | None = None,
) -> tuple[CellCnnEnsemble, pd.DataFrame]:
    """Train the CellCnn ensemble on samples (``names``: theirs, for messages).

    Parameters
    ----------
    cells
        One ``(n_cells_i, n_markers)`` arcsinh-transformed array per training sample.
    targets
        ``(n_samples,)`` class indices (classification) or values (regression).
    n_outputs
        Number of classes, or 1 for regression.
    out_dir
        Directory for the restarts' checkpoints and ``restarts.tsv``.
    cfg
        Options; see :class:`CellCnnConfig`.
    regression
        Regression rather than classification.
    seed
        Seeds the cell split, the multi-cell inputs, the configurations and the weights.

    Returns
    -------
    (ensemble, restarts)
        The ensemble of the ``n_best`` networks (eval mode, on CPU) and one row per restart
        (configuration, best epoch, validation accuracy and loss, ``selected``).
    """
    cfg.check()
    targets = np.asarray(targets, dtype=np.float32)
    if len(cells) != len(targets):
        raise BiodlInputError(f"{len(cells)} samples but {len(targets)} labels")
    if not regression and len(np.unique(targets)) < 2:
        raise BiodlInputError("the training samples have a single class; CellCnn needs at least two")
    out = Path(out_dir)
    from biodl.io._util import output_dir

    output_dir(out)
    ident = _training_identity(cells, targets, cfg, seed, regression, n_outputs)
    _check_resume(out, ident, resume)
    # each restart records it too: one left over from an overwritten (--no-resume) run is retrained
    ident_key = hashlib.blake2b(json.dumps(ident, sort_keys=True).encode(), digest_size=8).hexdigest()
    n_markers = cells[0].shape[1]
    rng = np.random.default_rng([seed, 12345])
    tr_cells, va_cells, shared = [], [], []
    for i, c in enumerate(cells):
        tr, va = split_cells(c, cfg.valid_fraction, rng, seed=seed)
        if not len(tr) or not len(va):  # too few distinct cells to split: both parts are all of them
            shared.append(i)  # (an empty training part was an internal error)
            tr = va = np.arange(len(c))
        va_cells.append(c[va])
        tr_cells.append(c[tr])
    if shared and log:
        shown = [str(names[i]) if names is not None else f"#{i + 1}" for i in shared[:5]]
        log(
            f"warning: {len(shared)} sample(s) have too few distinct cells to hold some out for validation "
            f"({', '.join(shown)}{' ...' if len(shared) > 5 else ''}): their validation cells are their "
            "training cells"
        )
    pooled = np.concatenate(tr_cells)
    if len(pooled) and not np.ptp(pooled, axis=0).any():  # (per marker: no cells x markers copy)
        raise BiodlInputError(
            f"every one of the {n_markers} markers has one value over all {len(pooled)} training cells: "
            "nothing to learn (were the channels exported empty, or the arcsinh cofactor far off?)"
        )
    center = pooled.mean(0) if cfg.scale else np.zeros(n_markers, np.float32)
    scale = pooled.std(0) if cfg.scale else np.ones(n_markers, np.float32)
    scale = np.where(scale > 1e-6, scale, 1.0).astype(np.float32)
    n_valid = cfg.nsubset_valid if cfg.nsubset_valid is not None else max(2, cfg.nsubset // 4)
    tr_pools = va_pools = None
    if cfg.sampling == "outlier":
        if regression:
            raise BiodlInputError(
                "sampling=outlier needs classification with a control class, not regression"
            )

        def z(c: np.ndarray) -> np.ndarray:
            return (c - center) / scale

        ctrl_cells = [z(c) for c, t in zip(tr_cells, targets, strict=True) if t == 0]
        ctrl = np.concatenate(ctrl_cells) if ctrl_cells else None  # None: outlier_pools refuses
        kw = dict(
            keep=cfg.outlier_keep,
            n_landmarks=cfg.outlier_landmarks,
            control=ctrl,
            controls=cfg.outlier_controls,
            seed=seed,
        )
        tr_pools = outlier_pools([z(c) for c in tr_cells], targets, **kw)
        va_pools = outlier_pools([z(c) for c in va_cells], targets, **kw)
        if log:
            log(
                f"outlier-biased inputs: {cfg.outlier_fraction:.0%} of each input of a non-control sample "
                f"from its {cfg.outlier_keep:.0%} most outlying cells"
            )
    train_ds = MultiCellDataset(
        tr_cells,
        targets,
        _counts(targets, regression, cfg, cfg.nsubset),
        cfg.ncell,
        seed=seed * 2 + 1,
        pools=tr_pools,
        outlier_fraction=cfg.outlier_fraction,
    )
    valid_ds = MultiCellDataset(
        va_cells,
        targets,
        _counts(targets, regression, cfg, n_valid),
        cfg.ncell,
        seed=seed * 2 + 2,
        pools=va_pools,
        outlier_fraction=cfg.outlier_fraction,
    )
    task = "regression" if regression else "multiclass"
    rows = []
    nets: dict[int, CellCnn] = {}

    for irun in range(cfg.nrun):
        run_dir = out / "restarts" / f"run_{irun:02d}"
        r = np.random.default_rng([seed, 777, irun])
        lr = cfg.learning_rate if cfg.learning_rate is not None else float(10 ** r.uniform(-3, -2))
        n_filters = int(r.choice(np.asarray(cfg.nfilter_choice)))
        pool = float(cfg.pool_percents[irun % len(cfg.pool_percents)])
        if cfg.dropout == "auto":
            drop = cfg.dropout_p if n_filters > 5 else 0.0
        else:
            drop = float(cfg.dropout)
        conf = dict(run=irun, n_filters=n_filters, pool_percent=pool, lr=lr, dropout=drop)
        if cfg.hidden:
            conf["hidden"] = int(cfg.hidden)
        torch.manual_seed(seed * 1000 + irun)
        net = CellCnn(n_markers, n_outputs, n_filters, pool, dropout=drop, hidden=cfg.hidden)
        net.set_scaler(torch.from_numpy(center), torch.from_numpy(scale))
        done = run_dir / "result.json"
        res = json.loads(done.read_text()) if resume and done.exists() else None
        if res is not None and res.pop("identity", ident_key) == ident_key and (run_dir / "net.pt").exists():
            net.load_state_dict(torch.load(run_dir / "net.pt", map_location="cpu", weights_only=True))
            rows.append(res)
            nets[irun] = net.eval()
            continue
        if log:
            log(
                f"restart {irun + 1}/{cfg.nrun}: {n_filters} filters, "
                f"pooling {pool:g}% of {cfg.ncell} cells, "
                f"lr {lr:.4f}"
            )
        rseed = seed * 1000 + irun
        plan = TrainingPlan(
            net,
            task,
            lr=lr,
            optimizer="adam",
            seed=rseed,
            penalty=_penalty(cfg.l1, cfg.l2),
            monitor=("loss", "min"),
            max_epochs=cfg.max_epochs,
        )
        tcfg = TrainConfig(
            max_epochs=cfg.max_epochs,
            patience=cfg.patience,
            batch_size=cfg.batch_size,
            lr=lr,
            seed=rseed,
            device=device,
            devices=1,
            progress=progress,
            resume=resume,
        )
        dm = DataModule(train_ds, valid_ds, batch_size=cfg.batch_size, seed=rseed)
        # a short fit inside a larger one: no per-restart messages (resuming, "more epochs may
        # help", which also named --epochs to `cells crossval`, whose key is --set max_epochs)
        fres = fit(plan, dm, run_dir, tcfg, quiet=True, inner=True)
        net = plan.model.cpu().eval()
        finite = all(
            bool(torch.isfinite(v).all()) for v in net.state_dict().values() if v.is_floating_point()
        )
        if finite:
            metric, loss = _evaluate(net, valid_ds, regression)
        else:  # diverged before any kept epoch: never selected (a NaN network scored accuracy 0.5)
            metric, loss = float("nan"), float("nan")
        best_epoch = fres.best_epoch
        res = dict(
            conf,
            best_epoch=best_epoch,
            epochs_run=int(fres.epochs_run),
            valid_accuracy=None if regression else metric,
            valid_loss=loss,
            diverged=bool(fres.diverged),
        )
        if fres.diverged and log:
            log(f"restart {irun + 1}/{cfg.nrun}: training diverged (weights not finite) at lr {lr:.3g}")
        atomic_torch_save({k: v.detach().cpu() for k, v in net.state_dict().items()}, run_dir / "net.pt")
        atomic_json({**res, "identity": ident_key}, done)
        remove_checkpoints(run_dir)
        rows.append(res)
        nets[irun] = net
    df = pd.DataFrame(rows)
    usable = np.isfinite(df["valid_loss"].to_numpy(np.float64))
    if not usable.any():
        raise BiodlInputError(
            f"every one of the {len(df)} restarts diverged (weights not finite) or has no validation score: "
            "a lower learning rate (--set learning_rate) usually fixes a divergence"
        )
    key = df["valid_loss"].to_numpy() if regression else -df["valid_accuracy"].to_numpy()
    order = [i for i in np.lexsort((df["valid_loss"].to_numpy(), key)) if usable[i]]
    keep = [int(df["run"].iloc[i]) for i in order[: cfg.n_best]]
    if len(keep) < cfg.n_best and len(order) < len(df) and log:
        log(
            f"warning: only {len(order)} of the {len(df)} restarts have a validation score (the others "
            f"diverged): the ensemble holds {len(keep)} network(s), not n_best {cfg.n_best}"
        )
    df["selected"] = df["run"].isin(keep)
    # the network's place in the ensemble ("net N" of the report's filters); empty when not kept
    df["member"] = df["run"].map({r: slot for slot, r in enumerate(keep)}).astype("Int64")
    members = [member_spec(nets[i]) for i in keep]
    ens = CellCnnEnsemble(n_markers, n_outputs, members, regression=regression)
    for slot, i in enumerate(keep):
        state = {k: v for k, v in nets[i].state_dict().items()}
        ens.nets[slot].load_state_dict(state)
    ens.eval()
    from biodl.io._util import atomic_write_text

    atomic_write_text(out / "restarts.tsv", df.to_csv(sep="\t", index=False, float_format="%.6g"))
    return ens, df


# options that do not change how a restart is trained: a directory can be resumed with others
_RESUME_FREE = ("nrun", "n_best")
IDENTITY_FILE = "restarts.json"


def _training_identity(
    cells, targets, cfg: CellCnnConfig, seed: int, regression: bool, n_outputs: int
) -> dict:
    """What a directory's restarts were trained on: a digest of the training samples and
    labels, the seed and every option that changes a restart (JSON-normalised)."""
    h = hashlib.blake2b(digest_size=16)
    for c in cells:
        a = np.ascontiguousarray(c, dtype=np.float32)
        h.update(np.asarray(a.shape, np.int64).tobytes())
        h.update(a.tobytes())
    h.update(np.ascontiguousarray(targets, dtype=np.float32).tobytes())
    settings = {k: v for k, v in asdict(cfg).items() if k not in _RESUME_FREE}
    ident = {
        "data": h.hexdigest(),
        "seed": int(seed),
        "regression": bool(regression),
        "n_outputs": int(n_outputs),
        "settings": settings,
    }
    return json.loads(json.dumps(ident, default=str))


def _check_resume(out: Path, ident: dict, resume: bool) -> None:
    """Refuse to resume restarts trained on other samples or with other options (they would be
    reused as they are); then record ``ident`` in ``out``. Directories written before this
    record existed are resumed as before."""
    path = out / IDENTITY_FILE
    if resume and path.exists():
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise BiodlInputError(f"cannot read {path}: {e}; remove it to resume the restarts there") from e
        diff = []
        if old.get("data") != ident["data"]:
            diff.append("the training samples or their labels differ")
        diff += [
            f"{k} {old.get(k)!r} -> {ident[k]!r}"
            for k in ("seed", "regression", "n_outputs")
            if old.get(k) != ident[k]
        ]
        prev = old.get("settings", {})
        diff += [
            f"{k} {prev[k]!r} -> {v!r}" for k, v in ident["settings"].items() if k in prev and prev[k] != v
        ]
        if diff:
            raise BiodlInputError(
                f"{out} holds CellCnn restarts trained otherwise ({'; '.join(diff)}); they would be "
                "reused as they are: train into another directory (--out), or without resuming "
                "(--no-resume) to retrain them"
            )
    atomic_json(ident, path)


def member_spec(net: CellCnn) -> dict:
    """The ensemble's description of one network (``hidden`` only when it has one)."""
    m = {"n_filters": net.n_filters, "pool_percent": net.pool_percent}
    if net.hidden_units:
        m["hidden"] = net.hidden_units
    return m


def load_restarts(out_dir: str | Path, n_markers: int, n_outputs: int) -> tuple[list[CellCnn], pd.DataFrame]:
    """Every restart of a finished :func:`train_cellcnn` run in ``out_dir`` (not only the
    ensemble's): the networks (eval mode, order of ``restarts.tsv``) and ``restarts.tsv``.
    Used by the paper's filter selection (:func:`biodl.kinds.cells.interpret.consensus_filters`)."""
    out = Path(out_dir)
    if not (out / "restarts.tsv").exists():
        raise BiodlInputError(f"no restarts.tsv in {out}: not a CellCnn training directory")
    df = pd.read_csv(out / "restarts.tsv", sep="\t")
    nets = []
    for _, r in df.iterrows():
        h = r.get("hidden", 0)
        h = 0 if pd.isna(h) else int(h)
        net = CellCnn(
            n_markers, n_outputs, int(r["n_filters"]), float(r["pool_percent"]), dropout=0.0, hidden=h
        )
        f = out / "restarts" / f"run_{int(r['run']):02d}" / "net.pt"
        net.load_state_dict(torch.load(f, map_location="cpu", weights_only=True))
        nets.append(net.eval())
    return nets, df


class _WholeSamples(torch.utils.data.Dataset):
    """Each sample as one multi-cell input of all its cells (or ``max_cells`` random ones)."""

    def __init__(self, cells: list[np.ndarray], max_cells: int | None, seed: int) -> None:
        rng = np.random.default_rng([seed, 999])
        self.cells = []
        for c in cells:
            if max_cells and c.shape[0] > max_cells:
                c = c[rng.choice(c.shape[0], max_cells, replace=False)]
            self.cells.append(np.ascontiguousarray(c, dtype=np.float32))

    def __len__(self) -> int:
        return len(self.cells)

    def __getitem__(self, i: int):
        return (torch.from_numpy(self.cells[i]),)


def predict_samples(
    model: torch.nn.Module,
    cells: list[np.ndarray],
    *,
    max_cells: int | None = None,
    seed: int = 0,
    device: str = "cpu",
) -> np.ndarray:
    """Model outputs per sample, each sample being one multi-cell input of all its cells
    (or ``max_cells`` random ones). Pooling percentages scale with the number of cells.

    Returns
    -------
    numpy.ndarray
        ``(n_samples, n_outputs)`` (classification: log class probabilities).
    """
    # samples differ in their number of cells: one sample per batch
    out, _ = predict(
        model, _WholeSamples(cells, max_cells, seed), batch_size=1, device=device, allow_empty=True
    )
    return out


def config_from_options(options: dict) -> CellCnnConfig:
    """A :class:`CellCnnConfig` from ``--set KEY=VALUE`` options (unknown keys are ignored
    here; the caller checks them)."""
    cfg = CellCnnConfig()
    fields = asdict(cfg)
    for k, v in options.items():
        if k not in fields or v is None or k == "extra":
            continue
        if k in ("pool_percents", "nfilter_choice"):
            vals = v if isinstance(v, (list, tuple)) else str(v).split(",")
            conv = float if k == "pool_percents" else int
            try:
                v = tuple(conv(x) for x in vals)
            except ValueError:
                what = "numbers" if k == "pool_percents" else "whole numbers"
                given = ",".join(map(str, vals))
                raise BiodlInputError(
                    f"{k} must be a comma-separated list of {what}, got {given!r}"
                ) from None
        elif k == "dropout":
            if str(v).strip().lower() == "auto":
                v = "auto"
            else:
                try:
                    v = float(v)
                except (TypeError, ValueError):
                    raise BiodlInputError(
                        f"dropout must be auto or a probability from 0 to below 1, got {v!r}"
                    ) from None
        elif k in ("per_sample", "scale", "outlier_controls"):
            v = v if isinstance(v, bool) else str(v).lower() in ("1", "true", "yes")
        elif k == "sampling":
            v = str(v).strip().lower()
        elif k in (
            "learning_rate",
            "l1",
            "l2",
            "dropout_p",
            "valid_fraction",
            "outlier_fraction",
            "outlier_keep",
        ):
            try:
                v = float(v)
            except (TypeError, ValueError):
                raise BiodlInputError(f"{k} must be a number, got {v!r}") from None
        else:
            try:
                v = int(v)
            except (TypeError, ValueError):
                raise BiodlInputError(f"{k} must be an integer, got {v!r}") from None
        setattr(cfg, k, v)
    cfg.check()
    return cfg
