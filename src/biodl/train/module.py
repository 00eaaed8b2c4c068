"""The Lightning training plan shared by every sequence-to-label recipe."""

from __future__ import annotations

import random

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from biodl.train.metrics import compute_metrics

TASKS = ("binary", "multilabel", "multiclass", "regression")


def masked_loss(
    task: str, logits: torch.Tensor, target: torch.Tensor, pos_weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Loss with missing (NaN) labels masked out.

    binary/multilabel: binary cross-entropy on logits (``pos_weight`` per label weights
    positives); multiclass: cross-entropy (targets are class indices in column 0);
    regression: mean squared error.
    """
    if task == "multiclass":
        t = target[:, 0]
        m = ~torch.isnan(t)
        return F.cross_entropy(logits[m], t[m].long(), weight=pos_weight)
    mask = ~torch.isnan(target)
    t = torch.where(mask, target, torch.zeros_like(target))
    if task == "regression":
        per = (logits - t) ** 2
    else:
        per = F.binary_cross_entropy_with_logits(logits, t, pos_weight=pos_weight, reduction="none")
    mask = mask.to(per.dtype)
    return (per * mask).sum() / mask.sum().clamp_min(1.0)


class SeededTraining:
    """Mixin for a ``LightningModule`` with a ``seed`` attribute.

    Every training epoch reseeds torch/numpy/random from ``(seed, epoch)`` and every batch
    reseeds torch from ``(seed, epoch, batch)``: dropout and corruption noise then depend
    only on those, so a run resumed from a checkpoint is identical to an uninterrupted one
    whatever else consumed random numbers. It also keeps the epoch's running training loss
    (``epoch_train_loss = [sum, count]``, read by :class:`~biodl.train.engine.HistoryCallback`).
    """

    seed: int
    current_epoch: int

    def on_train_epoch_start(self) -> None:
        s = (self.seed * 7919 + self.current_epoch) & 0x7FFFFFFF
        torch.manual_seed(s)
        np.random.seed(s)
        random.seed(s)
        self.epoch_train_loss = [0.0, 0]

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        torch.manual_seed((self.seed * 7919 + self.current_epoch) * 1000003 + batch_idx & 0x7FFFFFFFFFFF)

    def add_train_loss(self, loss: torch.Tensor, n: int) -> None:
        """Add a batch's mean ``loss`` over ``n`` items to the epoch's running sum."""
        acc = getattr(self, "epoch_train_loss", None)
        if acc is not None:
            acc[0] += float(loss.detach()) * n
            acc[1] += n


class TaskModule(SeededTraining, pl.LightningModule):
    """Wraps any ``nn.Module`` mapping ``(batch, channels, length)`` to ``(batch, n_outputs)``
    with a task's loss, optimiser and metrics.

    Parameters
    ----------
    model
        The network (pure ``nn.Module``).
    task
        One of ``binary``, ``multilabel``, ``multiclass``, ``regression``.
    lr, weight_decay
        Adam(W) learning rate and decoupled weight decay.
    pos_weight
        Per-label positive weight (binary/multilabel) or per-class weight (multiclass);
        ``None`` for unweighted.
    label_names
        Names of the outputs, used in per-label metrics.
    seed
        Every epoch reseeds torch/numpy/random from ``(seed, epoch)``, so dropout and
        augmentation are the same in a resumed run as in an uninterrupted one.
    """

    def __init__(
        self,
        model: nn.Module,
        task: str,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        pos_weight: torch.Tensor | None = None,
        label_names: list[str] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, not {task!r}")
        self.model = model
        self.task = task
        self.lr = lr
        self.weight_decay = weight_decay
        self.label_names = label_names
        self.seed = seed
        self.register_buffer(
            "pos_weight", pos_weight if pos_weight is not None else torch.zeros(0), persistent=False
        )
        self._outputs: dict[str, list] = {"val": [], "test": []}
        self.history: list[dict[str, float]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def _loss(self, logits, y):
        pw = self.pos_weight if self.pos_weight.numel() else None
        return masked_loss(self.task, logits, y, pw)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = self._loss(self(x), y)
        self.add_train_loss(loss, y.shape[0])
        self.log(
            "train_loss",
            loss,
            on_step=False,
            on_epoch=True,
            prog_bar=True,
            batch_size=y.shape[0],
            sync_dist=True,
        )
        return loss

    def _eval_step(self, stage: str, batch):
        x, y = batch
        logits = self(x)
        loss = self._loss(logits, y)
        self.log(
            f"{stage}_loss",
            loss,
            on_step=False,
            on_epoch=True,
            prog_bar=stage == "val",
            batch_size=y.shape[0],
            sync_dist=True,
        )
        self._outputs[stage].append((logits.detach().float().cpu(), y.detach().float().cpu()))
        return loss

    def validation_step(self, batch, batch_idx):
        return self._eval_step("val", batch)

    def test_step(self, batch, batch_idx):
        return self._eval_step("test", batch)

    def _eval_epoch_end(self, stage: str) -> None:
        outs = self._outputs[stage]
        self._outputs[stage] = []
        if not outs or self.trainer.sanity_checking:
            return
        logits = torch.cat([o[0] for o in outs])
        target = torch.cat([o[1] for o in outs])
        if self.trainer.world_size > 1:
            # every rank holds one shard of the predictions: gather them (the distributed
            # sampler pads shards to equal size, so shapes agree across ranks)
            logits = self.all_gather(logits.to(self.device)).flatten(0, 1).cpu()
            target = self.all_gather(target.to(self.device)).flatten(0, 1).cpu()
        metrics = compute_metrics(self.task, logits, target, self.label_names)
        for k, v in metrics.items():
            if "/" not in k:
                self.log(
                    f"{stage}_{k}",
                    v,
                    prog_bar=stage == "val" and k in ("auroc", "accuracy", "pearson"),
                    sync_dist=True,
                )

    def on_validation_epoch_end(self) -> None:
        self._eval_epoch_end("val")

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test")

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
