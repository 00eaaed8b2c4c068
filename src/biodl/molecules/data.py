"""Molecule datasets, a DataModule with the graph collate, and the training loop.

Training reuses the shared engine pieces (:class:`~biodl.train.module.TaskModule`,
:func:`~biodl.train.engine.make_trainer`, the history callback, :func:`export_model`), so
checkpoints, ``--resume``, early stopping and seeding behave as for every other recipe. The
only difference to :func:`biodl.train.engine.fit` is the DataLoader ``collate_fn`` that
stacks molecular graphs into a :class:`~biodl.molecules.featurize.GraphBatch`.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from biodl.data.sequences import SequenceDataModule, _EpochAware
from biodl.molecules.featurize import MolGraph, collate_molecules, mols_to_graphs, morgan_fingerprints
from biodl.train.engine import (
    FitResult,
    HistoryCallback,
    TrainConfig,
    _atomic_json,
    export_model,
    make_trainer,
    torch_device,
)
from biodl.train.metrics import MONITOR
from biodl.train.module import TaskModule

__all__ = ["MoleculeDataModule", "MoleculeDataset", "featurize_for", "fit_molecules", "predict_molecules"]


@contextlib.contextmanager
def cpu_threads(n: int | None) -> Iterator[None]:
    """Temporarily set torch's intra-op CPU threads (restored afterwards).

    Molecular graphs of a minibatch are small (a few thousand atoms); with several threads the
    many small gathers and matrix products spend more time synchronising than computing,
    and on a shared machine they can be many times slower than one thread. ``None`` leaves
    the setting alone.
    """
    if not n:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


class MoleculeDataset(Dataset):
    """``(x, y)`` pairs: ``x`` a :class:`MolGraph` or a fingerprint row, ``y`` ``(n_targets,)``.

    Parameters
    ----------
    inputs
        Featurised molecules: a list of :class:`MolGraph` or an ``(n, L)`` fingerprint array.
    targets
        ``(n, n_targets)`` float32 (NaN = missing) or ``None`` (unlabelled: ``y`` is empty).
    """

    def __init__(self, inputs: Sequence[MolGraph] | np.ndarray, targets: np.ndarray | None) -> None:
        self.inputs = inputs
        n = len(inputs)
        self.targets = (
            torch.from_numpy(np.asarray(targets, dtype=np.float32))
            if targets is not None
            else torch.zeros(n, 0)
        )
        self._fp = isinstance(inputs, np.ndarray)
        if self._fp:
            self._x = torch.from_numpy(np.asarray(inputs, dtype=np.float32))

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, i: int):
        x = self._x[i] if self._fp else self.inputs[i]
        return x, self.targets[i]


def featurize_for(
    model_kwargs: dict[str, Any], recipe: str, mols: Sequence
) -> Sequence[MolGraph] | np.ndarray:
    """The network input of ``mols`` for a recipe: graphs (``neural-fp``) or Morgan bits."""
    if recipe == "circular-fp":
        return morgan_fingerprints(mols, model_kwargs.get("radius", 2), model_kwargs.get("fp_length", 1024))
    return mols_to_graphs(mols)


class MoleculeDataModule(SequenceDataModule):
    """:class:`~biodl.data.sequences.SequenceDataModule` with the molecule collate (and no
    single-molecule last training batch, which batch normalisation cannot take)."""

    def _loader(self, ds: Dataset, shuffle: bool) -> DataLoader:
        return DataLoader(
            ds,
            batch_size=self.batch_size,
            sampler=_EpochAware(ds, self.seed, shuffle),
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            collate_fn=collate_molecules,
            # a last training batch of one molecule cannot be batch-normalised: drop it
            drop_last=shuffle and len(ds) % self.batch_size == 1,
        )


class MoleculeTaskModule(TaskModule):
    """:class:`TaskModule` with an optional cosine learning-rate decay over ``max_epochs``
    (``lr_decay=True``); the loss, metrics and seeding are the shared ones."""

    def __init__(self, *args, lr_decay: bool = False, max_epochs: int = 1, **kw) -> None:
        super().__init__(*args, **kw)
        self.lr_decay, self.max_epochs = lr_decay, max(1, max_epochs)

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        if not self.lr_decay:
            return opt
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=self.max_epochs, eta_min=self.lr * 0.02)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}


def fit_molecules(
    model: nn.Module,
    task: str,
    train_ds: Dataset,
    valid_ds: Dataset | None,
    out_dir: str | Path,
    config: TrainConfig,
    meta: dict[str, Any],
    label_names: list[str] | None = None,
    pos_weight: torch.Tensor | None = None,
    lr_decay: bool = False,
    threads: int | None = 1,
) -> FitResult:
    """Train a molecule model; same contract as :func:`biodl.train.engine.fit`.

    Checkpoints go to ``out_dir/checkpoints`` (``last.ckpt`` resumes a killed run when
    ``config.resume``), the best weights by the task's validation metric to
    ``out_dir/model.pt``, per-epoch metrics to ``history.csv``, options to ``run.json``.
    ``threads`` sets torch's CPU threads during training (see :func:`cpu_threads`).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pl.seed_everything(config.seed, workers=True, verbose=False)
    key, mode = MONITOR[task]
    monitor = f"val_{key}" if valid_ds is not None else "train_loss"
    if valid_ds is None:
        mode = "min"
    module = MoleculeTaskModule(
        model,
        task,
        lr=config.lr,
        weight_decay=config.weight_decay,
        pos_weight=pos_weight,
        label_names=label_names,
        seed=config.seed,
        lr_decay=lr_decay,
        max_epochs=config.max_epochs,
    )
    dm = MoleculeDataModule(
        train_ds, valid_ds, batch_size=config.batch_size, seed=config.seed, num_workers=config.num_workers
    )
    history = HistoryCallback(out / "history.csv")
    trainer = make_trainer(out, config, monitor, mode, callbacks=[history])
    last = out / "checkpoints" / "last.ckpt"
    resumed = str(last) if (config.resume and last.exists()) else None
    if not config.resume and last.exists():
        for f in (out / "checkpoints").glob("*.ckpt"):
            f.unlink()
    _atomic_json({"status": "running", "config": asdict(config), "meta": meta}, out / "run.json")
    with cpu_threads(threads if config.device in ("cpu", "auto") and not torch.cuda.is_available() else None):
        trainer.fit(module, datamodule=dm, ckpt_path=resumed, weights_only=True if resumed else None)
    best = out / "checkpoints" / "best.ckpt"
    src = best if best.exists() else last
    if src.exists():
        module.load_state_dict(torch.load(src, map_location="cpu", weights_only=True)["state_dict"])
    best_epoch = None
    val_metrics: dict[str, float] = {}
    rows = [r for r in history.rows if monitor in r and not math.isnan(r[monitor])]
    if rows:
        pick = (max if mode == "max" else min)(rows, key=lambda r: r[monitor])
        best_epoch = int(pick["epoch"])
        val_metrics = {k: v for k, v in pick.items() if k.startswith("val_")}
    meta = dict(meta, task=task, label_names=label_names, best_epoch=best_epoch, val_metrics=val_metrics)
    model_path = export_model(out / "model.pt", module.model, meta)
    _atomic_json(
        {
            "status": "finished",
            "config": asdict(config),
            "meta": meta,
            "best_epoch": best_epoch,
            "epochs_run": trainer.current_epoch,
            "resumed_from": resumed,
            "val_metrics": val_metrics,
        },
        out / "run.json",
    )
    return FitResult(out, model_path, best_epoch, trainer.current_epoch, val_metrics, resumed)


@torch.no_grad()
def predict_molecules(
    model: nn.Module, dataset: Dataset, batch_size: int = 256, device: str = "cpu", threads: int | None = 1
) -> np.ndarray:
    """Outputs of ``model`` over a molecule dataset in dataset order: ``(n, n_outputs)``."""
    dev = torch_device(device)
    model = model.to(dev).eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_molecules)
    with cpu_threads(threads if dev.type == "cpu" else None):
        outs = [model(x.to(dev)).float().cpu() for x, _ in loader]
    if not outs:
        return np.zeros((0, getattr(model, "n_outputs", 1)), np.float32)
    return torch.cat(outs).numpy()
