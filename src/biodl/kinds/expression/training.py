"""Training the expression networks through the one runner (:func:`biodl.train.fit`).

* ADAGE: the network's own loss (:meth:`biodl.models.adage.ADAGE.loss`: masked-input
  reconstruction cross-entropy); a stacked model is trained greedily, one :func:`fit` per
  layer with the other layers frozen (:func:`fit_adage`).
* D-GEX: the network's own loss (:meth:`biodl.models.dgex.DGEX.loss`: MSE on standardised
  targets, plus the MAE on the original scale, logged as ``val_mae``) (:func:`fit_dgex`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.utils.data import TensorDataset

from biodl.train.checkpoint import RunMeta
from biodl.train.datamodule import DataModule
from biodl.train.fit import FitResult, TrainConfig, fit
from biodl.train.plans import TrainingPlan


def _datamodule(train: tuple[torch.Tensor, ...], valid: tuple[torch.Tensor, ...] | None, config: TrainConfig):
    return DataModule(
        TensorDataset(*train),
        TensorDataset(*valid) if valid is not None else None,
        batch_size=config.batch_size,
        seed=config.seed,
        num_workers=config.num_workers,
    )


def _plan(model: nn.Module, task: str, config: TrainConfig, optimizer: str) -> TrainingPlan:
    return TrainingPlan(
        model,
        task,
        lr=config.lr,
        weight_decay=config.weight_decay,
        optimizer=optimizer,
        seed=config.seed,
        max_epochs=config.max_epochs,
    )


def fit_adage(
    model: nn.Module,
    x_train: torch.Tensor,
    x_valid: torch.Tensor | None,
    out_dir: str | Path,
    config: TrainConfig,
    optimizer: str = "sgd",
    meta: RunMeta | None = None,
    layers: list[int] | None = None,
) -> list[FitResult]:
    """Train an ADAGE model on *scaled* expression, layer by layer.

    Layer ``i`` is trained with the others frozen; a single-layer model trains in ``out_dir``,
    a stacked one in ``out_dir/layer<i+1>`` (each with its checkpoints, resumable). With a
    validation set each layer keeps its epoch of lowest ``val_loss``, without one its final epoch.
    With the fan-in parametrization each layer's input centre is first set to the mean of its
    inputs over ``x_train`` (never ``x_valid``).

    Returns
    -------
    list of FitResult
        One per trained layer.
    """
    out = Path(out_dir)
    results = []
    n = len(model.layers)
    for layer in layers if layers is not None else range(n):
        model.active_layer = layer
        with torch.no_grad():  # fan-in parametrization: centre the layer's inputs (training samples only)
            model.layers[layer].fit_center(model.layer_input(x_train, layer))
        for i, dae in enumerate(model.layers):
            dae.requires_grad_(i == layer)
        sub = out if n == 1 else out / f"layer{layer + 1}"
        plan = _plan(model, "reconstruction", config, optimizer)
        results.append(
            fit(
                plan,
                _datamodule((x_train,), (x_valid,) if x_valid is not None else None, config),
                sub,
                config,
                meta if n == 1 else None,
            )
        )
    model.requires_grad_(True)
    model.active_layer = n - 1
    return results


def fit_dgex(
    model: nn.Module,
    train: tuple[torch.Tensor, torch.Tensor],
    valid: tuple[torch.Tensor, torch.Tensor] | None,
    out_dir: str | Path,
    config: TrainConfig,
    optimizer: str = "adam",
    meta: RunMeta | None = None,
) -> FitResult:
    """Train a D-GEX network on *standardised* ``(landmarks, targets)``; the epoch of lowest
    ``val_loss`` is kept (without validation, the final epoch)."""
    return fit(
        _plan(model, "regression", config, optimizer),
        _datamodule(train, valid, config),
        out_dir,
        config,
        meta,
    )
