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

Every restart keeps its own checkpoints under ``OUT/restarts/run_XX``; a finished restart is
not repeated when a killed run is started again.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from biodl.errors import BiodlInputError
from biodl.models.cellcnn import CellCnn, CellCnnEnsemble
from biodl.train.checkpoint import atomic_json, atomic_torch_save
from biodl.train.datamodule import DataModule, split_indices
from biodl.train.fit import TrainConfig, fit
from biodl.train.plans import TrainingPlan
from biodl.train.predict import predict

__all__ = [
    "CellCnnConfig",
    "MultiCellDataset",
    "encode_labels",
    "predict_samples",
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
    """

    ncell: int = 200
    nsubset: int = 1000
    nsubset_valid: int | None = None
    per_sample: bool = False
    nrun: int = 15
    n_best: int = 3
    pool_percents: tuple[float, ...] = (0.01, 1.0, 5.0, 20.0, 100.0)
    nfilter_choice: tuple[int, ...] = tuple(range(3, 10))
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
    extra: dict = field(default_factory=dict)

    def check(self) -> None:
        if self.ncell < 1:
            raise BiodlInputError(f"ncell must be >= 1, got {self.ncell}")
        if self.nsubset < 2:
            raise BiodlInputError(f"nsubset must be >= 2, got {self.nsubset}")
        if self.nrun < 1 or self.n_best < 1:
            raise BiodlInputError("nrun and n_best must be >= 1")
        if not 0 < self.valid_fraction < 1:
            raise BiodlInputError(f"valid_fraction must be in (0, 1), got {self.valid_fraction}")
        for p in self.pool_percents:
            if not 0 < float(p) <= 100:
                raise BiodlInputError(f"pool percentages must be in (0, 100], got {p}")


def encode_labels(
    labels: list[str], classes: list[str] | None = None, task: str | None = None
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

    Returns
    -------
    (targets, classes, task)
        float targets ``(n,)`` (class indices or values), class names (``None`` for
        regression), ``"binary"`` (two classes; the network still has a softmax over both),
        ``"multiclass"`` or ``"regression"``.
    """

    def _num(s: str) -> float | None:
        try:
            v = float(s)
        except ValueError:
            return None
        return v if math.isfinite(v) else None

    nums = [_num(s) for s in labels]
    if task in (None, "auto"):
        task = "regression" if all(v is not None for v in nums) and len(set(labels)) > 2 else "classification"
    if task in ("regression",):
        if any(v is None for v in nums):
            bad = labels[[v is None for v in nums].index(True)]
            raise BiodlInputError(f"regression needs numeric labels, got {bad!r}")
        return np.asarray(nums, dtype=np.float32), None, "regression"
    if task not in ("classification", "binary", "multiclass"):
        raise BiodlInputError(f"CellCnn tasks are classification or regression, not {task!r}")
    uniq = sorted(set(labels))
    if classes:
        missing = sorted(set(labels) - set(classes))
        if missing:
            raise BiodlInputError(f"labels {', '.join(missing)} are not among classes={','.join(classes)}")
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
    """

    def __init__(
        self, cells: list[np.ndarray], targets: np.ndarray, counts: list[int], ncell: int, seed: int = 0
    ) -> None:
        self.cells = [np.ascontiguousarray(c, dtype=np.float32) for c in cells]
        self.targets = np.asarray(targets, dtype=np.float32)
        self.owner = np.repeat(np.arange(len(cells)), counts)
        self.ncell = int(ncell)
        self.seed = int(seed)

    def __len__(self) -> int:
        return len(self.owner)

    def __getitem__(self, j: int) -> tuple[torch.Tensor, torch.Tensor]:
        s = int(self.owner[j])
        c = self.cells[s]
        rng = np.random.default_rng([self.seed, int(j)])
        n = c.shape[0]
        idx = rng.choice(n, self.ncell, replace=n < self.ncell)
        return torch.from_numpy(c[idx]), torch.tensor([self.targets[s]])


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
) -> tuple[CellCnnEnsemble, pd.DataFrame]:
    """Train the CellCnn ensemble on samples.

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
    n_markers = cells[0].shape[1]
    rng = np.random.default_rng([seed, 12345])
    tr_cells, va_cells = [], []
    for c in cells:
        tr, va = split_indices(
            c.shape[0], cfg.valid_fraction, rng, at_least_one=True, min_items=2, sort=False
        )
        va_cells.append(c[va] if len(va) else c)
        tr_cells.append(c[tr])
    pooled = np.concatenate(tr_cells)
    center = pooled.mean(0) if cfg.scale else np.zeros(n_markers, np.float32)
    scale = pooled.std(0) if cfg.scale else np.ones(n_markers, np.float32)
    scale = np.where(scale > 1e-6, scale, 1.0).astype(np.float32)
    n_valid = cfg.nsubset_valid if cfg.nsubset_valid is not None else max(2, cfg.nsubset // 4)
    train_ds = MultiCellDataset(
        tr_cells, targets, _counts(targets, regression, cfg, cfg.nsubset), cfg.ncell, seed=seed * 2 + 1
    )
    valid_ds = MultiCellDataset(
        va_cells, targets, _counts(targets, regression, cfg, n_valid), cfg.ncell, seed=seed * 2 + 2
    )
    task = "regression" if regression else "multiclass"
    rows = []
    nets: dict[int, CellCnn] = {}

    for irun in range(cfg.nrun):
        run_dir = out / "restarts" / f"run_{irun:02d}"
        r = np.random.default_rng([seed, 777, irun])
        lr = cfg.learning_rate if cfg.learning_rate else float(10 ** r.uniform(-3, -2))
        n_filters = int(r.choice(np.asarray(cfg.nfilter_choice)))
        pool = float(cfg.pool_percents[irun % len(cfg.pool_percents)])
        if cfg.dropout == "auto":
            drop = cfg.dropout_p if n_filters > 5 else 0.0
        else:
            drop = float(cfg.dropout)
        conf = dict(run=irun, n_filters=n_filters, pool_percent=pool, lr=lr, dropout=drop)
        torch.manual_seed(seed * 1000 + irun)
        net = CellCnn(n_markers, n_outputs, n_filters, pool, dropout=drop)
        net.set_scaler(torch.from_numpy(center), torch.from_numpy(scale))
        done = run_dir / "result.json"
        if resume and done.exists() and (run_dir / "net.pt").exists():
            res = json.loads(done.read_text())
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
        fres = fit(plan, dm, run_dir, tcfg)
        net = plan.model.cpu().eval()
        metric, loss = _evaluate(net, valid_ds, regression)
        best_epoch = fres.best_epoch
        res = dict(
            conf,
            best_epoch=best_epoch,
            epochs_run=int(fres.epochs_run),
            valid_accuracy=None if regression else metric,
            valid_loss=loss,
        )
        atomic_torch_save({k: v.detach().cpu() for k, v in net.state_dict().items()}, run_dir / "net.pt")
        atomic_json(res, done)
        for f in (run_dir / "checkpoints").glob("*.ckpt"):
            f.unlink()
        rows.append(res)
        nets[irun] = net
    df = pd.DataFrame(rows)
    key = df["valid_loss"].to_numpy() if regression else -df["valid_accuracy"].to_numpy()
    order = np.lexsort((df["valid_loss"].to_numpy(), key))
    keep = [int(df["run"].iloc[i]) for i in order[: cfg.n_best]]
    df["selected"] = df["run"].isin(keep)
    members = [{"n_filters": nets[i].n_filters, "pool_percent": nets[i].pool_percent} for i in keep]
    ens = CellCnnEnsemble(n_markers, n_outputs, members, regression=regression)
    for slot, i in enumerate(keep):
        state = {k: v for k, v in nets[i].state_dict().items()}
        ens.nets[slot].load_state_dict(state)
    ens.eval()
    from biodl.io._util import atomic_write_text

    atomic_write_text(out / "restarts.tsv", df.to_csv(sep="\t", index=False, float_format="%.6g"))
    return ens, df


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
                raise BiodlInputError(f"{k} must be a comma-separated list of numbers, got {v!r}") from None
        elif k == "dropout":
            v = v if v == "auto" else float(v)
        elif k in ("per_sample", "scale"):
            v = v if isinstance(v, bool) else str(v).lower() in ("1", "true", "yes")
        elif k in ("learning_rate", "l1", "l2", "dropout_p", "valid_fraction"):
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
