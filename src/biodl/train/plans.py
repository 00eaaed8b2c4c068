"""Training plans: the one LightningModule that wraps a pure network with its task's loss,
metrics and optimiser.

A system changes how it learns through hooks, never by copying the loop:

* a network with a ``loss(batch) -> {"loss": tensor, <extra>: tensor, ...}`` method computes its
  own loss (ADAGE's reconstruction cross-entropy, D-GEX's standardised MSE with the MAE on the
  original scale as an extra, PEDLA's layer-wise pre-training); when it returns ``None``, or
  the network has no such method, the task's masked loss (:func:`masked_loss`) is used on
  ``(x, y)`` batches;
* a network with ``proximal_step(lr)`` has it called after every optimiser step (DFS's
  soft-thresholding of its L1-penalised input weights);
* ``penalty(model) -> tensor`` is added to the loss (CellCnn's L1/L2 weight penalty);
* ``optimizer`` (``adamw``, ``adam``, ``sgd``, ``momentum``) and ``lr_decay`` (cosine) choose the
  optimiser; ``monitor`` overrides the task's model-selection metric.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from biodl.train.metrics import MONITOR, compute_metrics

#: Tasks with labels: outputs are scored by :func:`~biodl.train.metrics.compute_metrics`.
SUPERVISED_TASKS = ("binary", "multilabel", "multiclass", "regression")
TASKS = (*SUPERVISED_TASKS, "reconstruction")
OPTIMIZERS = ("adamw", "adam", "sgd", "momentum")


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
    (``epoch_train_loss = [sum, count]``, read by :class:`~biodl.train.fit.HistoryCallback`).
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
        s = (self.seed * 7919 + self.current_epoch) * 1000003 + batch_idx & 0x7FFFFFFFFFFF
        # the CPU generator directly: torch.manual_seed also walks every accelerator backend
        # (~75 us against ~1 us per batch); the same CPU stream, so results are unchanged
        torch.default_generator.manual_seed(s)
        dev = getattr(self, "device", None)
        if dev is not None and dev.type == "cuda":
            torch.cuda.manual_seed(s)

    def add_train_loss(self, loss: torch.Tensor, n: int) -> None:
        """Add a batch's mean ``loss`` over ``n`` items to the epoch's running sum (kept as a
        tensor on the loss's device: no host synchronisation per step)."""
        acc = getattr(self, "epoch_train_loss", None)
        if acc is not None:
            acc[0] = acc[0] + loss.detach().double() * n
            acc[1] += n

    def epoch_mean_train_loss(self) -> float | None:
        acc = getattr(self, "epoch_train_loss", None)
        return float(acc[0]) / acc[1] if acc and acc[1] else None


def _batch_size(batch) -> int:
    x = batch[0] if isinstance(batch, (list, tuple)) else batch
    n = getattr(x, "n_graphs", None)  # molecular graph batches
    if n is not None:
        return int(n)
    while isinstance(x, (list, tuple)):  # a tuple input (CpG neighbours + DNA): its first part
        x = x[0]
    return int(x.shape[0])


class TrainingPlan(SeededTraining, pl.LightningModule):
    """Wraps any ``nn.Module`` with a task's loss, optimiser and metrics.

    Parameters
    ----------
    model
        The network (pure ``nn.Module``). Batches are ``(x, y)`` (``y`` ``(batch, n_labels)``,
        NaN = missing) unless the network defines ``loss(batch)``.
    task
        ``binary``, ``multilabel``, ``multiclass``, ``regression`` or ``reconstruction``.
    lr, weight_decay
        Learning rate and weight decay (decoupled for ``adamw``).
    optimizer
        ``adamw`` (default), ``adam``, ``sgd`` (plain, ADAGE's) or ``momentum`` (SGD, 0.9).
    lr_decay
        Cosine learning-rate decay over ``max_epochs`` down to 2% of ``lr``.
    max_epochs
        Length of the cosine schedule.
    pos_weight
        Per-label positive weight (binary/multilabel) or per-class weight (multiclass).
    label_names
        Names of the outputs, used in per-label metrics.
    seed
        See :class:`SeededTraining`.
    penalty
        ``penalty(model) -> scalar tensor`` added to the loss (training and validation).
    monitor
        ``(metric, "max" | "min")`` used to select the best epoch (default: the task's, from
        :data:`~biodl.train.metrics.MONITOR`); the metric is logged as ``val_<metric>``.
    """

    def __init__(
        self,
        model: nn.Module,
        task: str,
        *,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        optimizer: str = "adamw",
        lr_decay: bool = False,
        max_epochs: int = 1,
        pos_weight: torch.Tensor | None = None,
        label_names: list[str] | None = None,
        seed: int = 0,
        penalty: Callable[[nn.Module], torch.Tensor] | None = None,
        monitor: tuple[str, str] | None = None,
    ) -> None:
        super().__init__()
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, not {task!r}")
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, not {optimizer!r}")
        self.model = model
        self.task = task
        self.lr = lr
        self.weight_decay = weight_decay
        self.optimizer_name = optimizer
        self.lr_decay = lr_decay
        self.max_epochs = max(1, int(max_epochs))
        self.label_names = label_names
        self.seed = seed
        self.penalty = penalty
        self.monitor = monitor or MONITOR[task]
        self.register_buffer(
            "pos_weight", pos_weight if pos_weight is not None else torch.zeros(0), persistent=False
        )
        self._outputs: dict[str, list] = {"val": [], "test": []}
        self.automatic_optimization = False  # see training_step
        self._plain_step = False  # set in on_train_start

    def forward(self, x):
        return self.model(x)

    def compute_loss(self, batch) -> dict[str, Any]:
        """``{"loss", "n"}`` plus ``logits`` / ``target`` (for metrics) or the network's extras."""
        own = getattr(self.model, "loss", None)
        got = own(batch) if callable(own) else None  # None: the network leaves it to the task
        if got is not None:
            out = dict(got)
            out["n"] = _batch_size(batch)
        else:
            x, y = batch
            logits = self(x)
            pw = self.pos_weight if self.pos_weight.numel() else None
            out = {
                "loss": masked_loss(self.task, logits, y, pw),
                "n": y.shape[0],
                "logits": logits,
                "target": y,
            }
        if self.penalty is not None:
            out["loss"] = out["loss"] + self.penalty(self.model)
        return out

    def on_train_start(self) -> None:
        from lightning.pytorch.plugins.precision import Precision
        from lightning.pytorch.strategies import SingleDeviceStrategy

        t = self.trainer
        # a run extended to more --epochs resumes its cosine schedule with the T_max it was made
        # with, after which the learning rate would climb back up: it decays to the new end
        # instead (from where it is: an extension goes on at the schedule's low end)
        for cfg in t.lr_scheduler_configs:
            sched = cfg.scheduler
            cosine = isinstance(sched, torch.optim.lr_scheduler.CosineAnnealingLR)
            if cosine and sched.T_max < self.max_epochs:
                sched.T_max = self.max_epochs
        # one device, full precision: backward and the optimiser step are plain PyTorch calls
        # (the callbacks biodl installs use none of the per-step hooks that Lightning's
        # manual_backward / LightningOptimizer.step would dispatch, ~0.4 ms a step); anything
        # else (DDP, mixed precision with its scaler) goes through Lightning
        self._plain_step = type(t.strategy) is SingleDeviceStrategy and type(t.precision_plugin) is Precision

    def training_step(self, batch, batch_idx):
        # one optimiser step written out (Lightning's manual optimisation): the same zero_grad /
        # forward / backward / step as automatic optimisation, without its closure and per-step
        # hook dispatch; see on_train_start for the plain path
        opt = self.optimizers()
        prof = self.trainer.profiler
        opt.zero_grad(set_to_none=True)
        with prof.profile("forward + loss"):
            out = self.compute_loss(batch)
        with prof.profile("backward"):
            if self._plain_step:
                out["loss"].backward()
            else:
                self.manual_backward(out["loss"])
        if self._plain_step:
            opt._on_before_step()  # the loop's step counter (trainer.global_step) and profiler mark
            opt.optimizer.step()
            opt._on_after_step()
        else:
            opt.step()
        step = getattr(self.model, "proximal_step", None)
        if callable(step):  # after the step: e.g. DFS's soft-thresholding of its L1-penalised weights
            step(float(opt.param_groups[0]["lr"]))
        self.add_train_loss(out["loss"], out["n"])
        return out["loss"]

    def on_train_epoch_end(self) -> None:
        # logged once per epoch from the accumulated loss (a self.log with sync_dist every step
        # cost ~8% of a DeepBind epoch); monitoring callbacks (early stopping, checkpoints on
        # train_loss when there is no validation set) run after this hook
        mean = self.epoch_mean_train_loss()
        if mean is not None:
            self.log("train_loss", mean, prog_bar=True, sync_dist=True)
        sched = self.lr_schedulers()  # manual optimisation: the epoch-interval schedule is ours to step
        if sched is not None:
            sched.step()

    def _eval_step(self, stage: str, batch):
        out = self.compute_loss(batch)
        n = out["n"]
        self.log(
            f"{stage}_loss", out["loss"], on_epoch=True, prog_bar=stage == "val", batch_size=n, sync_dist=True
        )
        for k, v in out.items():
            if k not in ("loss", "n", "logits", "target"):
                self.log(
                    f"{stage}_{k}", v, on_epoch=True, prog_bar=stage == "val", batch_size=n, sync_dist=True
                )
        if "logits" in out and self.task in SUPERVISED_TASKS:
            self._outputs[stage].append(
                (out["logits"].detach().float().cpu(), out["target"].detach().float().cpu())
            )
        return out["loss"]

    def validation_step(self, batch, batch_idx):
        with self._in_float32():
            return self._eval_step("val", batch)

    def test_step(self, batch, batch_idx):
        with self._in_float32():
            return self._eval_step("test", batch)

    def _in_float32(self):
        """Validation scores the model as it is kept and used, in float32: under a ``-mixed``
        precision's autocast (bf16 on the CPU) DeepBind's small logits lost their ranking (val
        AUROC 0.18-0.40 for 0.76), and the best epoch followed that noise."""
        import contextlib

        trainer = getattr(self, "_trainer", None)
        if trainer is None or "mixed" not in str(getattr(trainer, "precision", "")):
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, enabled=False)

    def _n_items(self, stage: str) -> int | None:
        """The number of items of the ``stage`` (``val`` / ``test``) dataset, if known."""
        dl = self.trainer.val_dataloaders if stage == "val" else self.trainer.test_dataloaders
        if isinstance(dl, (list, tuple)):
            dl = dl[0] if dl else None
        try:
            return len(dl.dataset)
        except (AttributeError, TypeError):
            return None

    def _eval_epoch_end(self, stage: str) -> None:
        outs = self._outputs[stage]
        self._outputs[stage] = []
        if not outs or self.trainer.sanity_checking:
            return
        logits = torch.cat([o[0] for o in outs])
        target = torch.cat([o[1] for o in outs])
        if self.trainer.world_size > 1:
            # every rank holds one shard of the predictions: gather them. The distributed sampler
            # gives rank r the items r, r + W, r + 2W, ... of the list padded to a multiple of W
            # with its first items: interleaved back into item order and cut to the items, each
            # is counted once (the padding made the metrics those of a set with duplicates)
            n = self._n_items(stage)
            logits = self.all_gather(logits.to(self.device)).transpose(0, 1).flatten(0, 1).cpu()
            target = self.all_gather(target.to(self.device)).transpose(0, 1).flatten(0, 1).cpu()
            if n is not None and n <= len(logits):
                logits, target = logits[:n], target[:n]
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
        params = [p for p in self.parameters() if p.requires_grad]
        name, lr, wd = self.optimizer_name, self.lr, self.weight_decay
        if name == "adamw":
            opt = torch.optim.AdamW(params, lr=lr, weight_decay=wd)
        elif name == "adam":
            opt = torch.optim.Adam(params, lr=lr, weight_decay=wd)
        else:
            opt = torch.optim.SGD(params, lr=lr, momentum=0.9 if name == "momentum" else 0.0, weight_decay=wd)
        if not self.lr_decay:
            return opt
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=self.max_epochs, eta_min=lr * 0.02)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}
