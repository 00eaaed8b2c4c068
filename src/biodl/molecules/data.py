"""Molecule datasets, a DataModule with the graph collate, and the training loop.

Training reuses the shared engine pieces (:class:`~biodl.train.module.TaskModule`,
:func:`~biodl.train.engine.make_trainer`, the history callback, :func:`export_model`), so
checkpoints, ``--resume``, early stopping and seeding behave as for every other recipe. The
only difference to :func:`biodl.train.engine.fit` is the DataLoader ``collate_fn`` that
stacks molecular graphs into a :class:`~biodl.molecules.featurize.GraphBatch`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from biodl.molecules.featurize import MolGraph, collate_molecules, mols_to_graphs, morgan_fingerprints
from biodl.train.engine import FitResult, TrainConfig, cpu_threads, fit, torch_device
from biodl.train.module import TaskModule

__all__ = ["MoleculeDataset", "featurize_for", "fit_molecules", "predict_molecules"]


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
    return fit(
        model,
        task,
        train_ds,
        valid_ds,
        out_dir,
        config,
        meta,
        label_names=label_names,
        pos_weight=pos_weight,
        collate_fn=collate_molecules,
        module_cls=MoleculeTaskModule,
        module_kwargs={"lr_decay": lr_decay, "max_epochs": config.max_epochs},
        threads=threads,
    )


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
