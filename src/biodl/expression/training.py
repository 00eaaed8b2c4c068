"""Lightning training plans for the expression systems, on the shared engine
(:func:`biodl.train.engine.make_trainer`: checkpoints every ``checkpoint_every`` epochs, resume
from ``last.ckpt``, early stopping, device / DDP options; :func:`~biodl.train.engine.export_model`).

* ADAGE: binary cross-entropy between the reconstruction of a masked copy and the clean,
  0-1 scaled input, summed over genes and averaged over the batch (as the original Theano
  code); stacked models are trained greedily, layer by layer.
* D-GEX: mean squared error on standardised targets; the validation metric also reports the
  mean absolute error on the original scale.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from biodl.io._util import atomic_write_text
from biodl.train.engine import HistoryCallback, TrainConfig, best_row, make_trainer
from biodl.train.module import SeededTraining


class ExpressionModule(SeededTraining, pl.LightningModule):
    """Training plan of an ADAGE (``kind="adage"``) or D-GEX (``kind="dgex"``) model.

    Parameters
    ----------
    model
        :class:`~biodl.models.adage.ADAGE` or :class:`~biodl.models.dgex.DGEX`.
    kind
        ``adage`` or ``dgex``.
    lr, weight_decay
        Learning rate and weight decay.
    optimizer
        ``sgd`` (ADAGE's plain SGD), ``momentum`` (SGD, momentum 0.9, D-GEX's choice) or ``adam``.
    seed
        Corruption masks and dropout are reseeded per (seed, epoch, batch): a resumed run
        draws the same noise as an uninterrupted one.
    """

    def __init__(
        self,
        model: nn.Module,
        kind: str,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        optimizer: str = "adam",
        seed: int = 0,
    ) -> None:
        super().__init__()
        if kind not in ("adage", "dgex"):
            raise ValueError(f"kind must be adage or dgex, not {kind!r}")
        if optimizer not in ("sgd", "momentum", "adam"):
            raise ValueError(f"optimizer must be sgd, momentum or adam, not {optimizer!r}")
        self.model, self.kind = model, kind
        self.lr, self.weight_decay, self.optimizer_name, self.seed = lr, weight_decay, optimizer, seed
        self.epoch_train_loss = [0.0, 0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def _loss(self, batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if self.kind == "adage":
            (x,) = batch
            target = self.model.layer_input(x, self.model.active_layer).detach()
            logits = self.model(x)
            per = F.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(1)
            return per.mean(), {}
        x, y = batch
        pred = self.model(x)
        loss = F.mse_loss(pred, y)
        mae = ((pred - y).abs() * self.model.y_std).mean()
        return loss, {"mae": mae}

    def training_step(self, batch, batch_idx):
        loss, _ = self._loss(batch)
        n = batch[0].shape[0]
        self.add_train_loss(loss, n)
        self.log(
            "train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=n, sync_dist=True
        )
        return loss

    def validation_step(self, batch, batch_idx):
        loss, extra = self._loss(batch)
        n = batch[0].shape[0]
        self.log("val_loss", loss, on_epoch=True, prog_bar=True, batch_size=n, sync_dist=True)
        for k, v in extra.items():
            self.log(f"val_{k}", v, on_epoch=True, prog_bar=True, batch_size=n, sync_dist=True)
        return loss

    def configure_optimizers(self):
        params = [p for p in self.model.parameters() if p.requires_grad]
        if self.optimizer_name == "adam":
            return torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)
        momentum = 0.9 if self.optimizer_name == "momentum" else 0.0
        return torch.optim.SGD(params, lr=self.lr, momentum=momentum, weight_decay=self.weight_decay)


def _loader(tensors: tuple[torch.Tensor, ...], batch_size: int, shuffle: bool, seed: int) -> DataLoader:
    g = torch.Generator().manual_seed(seed)
    return DataLoader(TensorDataset(*tensors), batch_size=batch_size, shuffle=shuffle, generator=g)


def fit_expression(
    model: nn.Module,
    kind: str,
    train: tuple[torch.Tensor, ...],
    valid: tuple[torch.Tensor, ...] | None,
    out_dir: str | Path,
    config: TrainConfig,
    optimizer: str = "adam",
    layer: int | None = None,
) -> dict[str, Any]:
    """Train ``model`` with Lightning; checkpoints go to ``out_dir/checkpoints`` (resumable).

    For ADAGE, ``layer`` selects the layer trained (the others are frozen). With a
    validation set the weights of the epoch of lowest ``val_loss`` are loaded back into
    ``model`` (among epochs ``checkpoint_every``, 2 x ``checkpoint_every``, ...); without one,
    the final epoch's (the lowest training loss is in-sample: nothing to select on).

    Returns
    -------
    dict
        ``best_epoch``, ``epochs_run``, ``val_metrics``, ``resumed_from``, ``seconds``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pl.seed_everything(config.seed, workers=True, verbose=False)
    if kind == "adage":
        model.active_layer = len(model.layers) - 1 if layer is None else layer
        for i, dae in enumerate(model.layers):
            dae.requires_grad_(i == model.active_layer)
    module = ExpressionModule(
        model, kind, lr=config.lr, weight_decay=config.weight_decay, optimizer=optimizer, seed=config.seed
    )
    monitor = "val_loss" if valid is not None else "train_loss"
    history = HistoryCallback(out / "history.csv")
    trainer = make_trainer(out, config, monitor, "min", callbacks=[history])
    last = out / "checkpoints" / "last.ckpt"
    resumed = str(last) if (config.resume and last.exists()) else None
    if not config.resume and last.exists():
        for f in (out / "checkpoints").glob("*.ckpt"):
            f.unlink()
    t0 = time.perf_counter()
    trainer.fit(
        module,
        train_dataloaders=_loader(train, config.batch_size, True, config.seed),
        val_dataloaders=_loader(valid, max(config.batch_size, 256), False, 0) if valid is not None else None,
        ckpt_path=resumed,
        weights_only=True if resumed else None,
    )
    seconds = time.perf_counter() - t0
    best = out / "checkpoints" / "best.ckpt"
    # with config.checkpoint_every = N, best.ckpt is the best of epochs N, 2N, ...: the epoch
    # reported is chosen among the same epochs
    pick = best_row(history.rows, monitor, "min", config.checkpoint_every) if valid is not None else None
    src = best if (pick is not None and best.exists()) else last
    if src.exists():
        module.load_state_dict(torch.load(src, map_location="cpu", weights_only=True)["state_dict"])
    if pick is None and history.rows:
        pick = history.rows[-1]
    best_epoch = int(pick["epoch"]) if pick is not None else None
    val_metrics = {k: float(v) for k, v in (pick or {}).items() if k.startswith("val_")}
    if kind == "adage":
        model.requires_grad_(True)
        model.active_layer = len(model.layers) - 1
    return {
        "best_epoch": best_epoch,
        "epochs_run": trainer.current_epoch,
        "val_metrics": val_metrics,
        "resumed_from": resumed,
        "seconds": round(seconds, 2),
    }


def write_run_json(
    out_dir: Path, config: TrainConfig, meta: dict[str, Any], status: str, **extra: Any
) -> None:
    """``out_dir/run.json`` (atomic)."""
    meta = {k: v for k, v in meta.items() if k not in ("genes", "landmarks", "targets")}
    atomic_write_text(
        Path(out_dir) / "run.json",
        json.dumps({"status": status, "config": asdict(config), "meta": meta, **extra}, indent=2, default=str)
        + "\n",
    )
