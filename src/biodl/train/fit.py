"""The one training runner: :func:`fit` is the only caller of ``Trainer.fit`` in biodl.

It takes a training plan (:class:`~biodl.train.plans.TrainingPlan`), a DataModule
(:class:`~biodl.train.datamodule.DataModule`) and a :class:`TrainConfig`, and does what every
kind needs: seeding, checkpoints (``best.ckpt`` by the plan's monitored metric, ``last.ckpt``),
resume from ``last.ckpt`` with the check that it was written by the same model, early
stopping, the per-epoch ``history.csv``, and the choice of the best (or, without validation,
the final) epoch, whose weights are loaded back into the plan. Systems that train several
networks (CellCnn's restarts, ADAGE's greedy layers, a hyperparameter search) call it in a
loop; :func:`fit_model` is the one-call form for a plain supervised network.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint, RichProgressBar
from torch import nn
from torch.utils.data import Dataset

from biodl.errors import BiodlInputError
from biodl.train.checkpoint import (
    RunMeta,
    check_resumable,
    epochs_done,
    fewer_epochs_error,
    remove_checkpoints,
    save_model,
    write_run_json,
)
from biodl.train.datamodule import DataModule
from biodl.train.plans import TrainingPlan
from biodl.train.predict import accelerator_for, cpu_threads, torch_device


@dataclass
class TrainConfig:
    """Options of one training run (all plain values, so they go into ``run.json``).

    ``device`` is ``cpu``, ``cuda`` (alias ``gpu``) or ``auto``; ``devices``, ``strategy``
    and ``num_nodes`` are passed to Lightning unchanged (e.g. ``devices=4,
    strategy="ddp", num_nodes=2`` for multi-node DDP).

    ``checkpoint_every=N`` writes ``best.ckpt`` / ``last.ckpt`` every N epochs instead of
    every epoch (``last.ckpt`` also after the final epoch): for runs of many tiny epochs, where
    saving two checkpoints costs as much as the epoch itself. The best epoch is then chosen
    among epochs N, 2N, ... (see :func:`best_row`), and a killed run repeats at most N - 1
    epochs when it resumes.

    ``extend_epochs=N`` makes ``max_epochs`` a soft cap: training goes on past it, up to N more
    epochs, for as long as every epoch improves the monitored validation metric, so that a run
    still improving at the cap is stopped by validation rather than by the cap (the CLI grants
    2 x the recipe's cap when ``--epochs`` is not given). It does nothing without validation,
    without early stopping (``patience=0``: a fixed schedule) or with a learning-rate schedule
    tied to ``max_epochs`` (cosine decay).

    ``ensemble=K`` (used by :func:`biodl.pipeline.train`) trains K networks with seeds ``seed``
    ... ``seed + K - 1`` and keeps them as one model predicting their mean.

    ``calibrate=N`` (used by :func:`biodl.pipeline.train`) runs DeepBind's calibration protocol
    first (:mod:`biodl.train.calibrate`): N settings, each scored by ``calibrate_folds``-fold
    cross-validation on at most ``calibrate_subsample`` rows of the training split (0: all),
    ``calibrate_epochs`` epochs per fold (0: automatic); no new trial starts once
    ``calibrate_budget`` seconds are spent; the best setting (or the mean of the
    ``calibrate_top`` best) is then trained as usual.

    ``profiler="simple"`` (or ``"advanced"``, cProfile) writes Lightning's profile of the run,
    time per loop action (training step, backward, optimiser step, data fetch, hooks), to
    ``OUT/fit-profile.txt``.
    """

    max_epochs: int = 20
    min_epochs: int = 0
    patience: int = 3
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    seed: int = 0
    device: str = "auto"
    devices: int | str = "auto"
    strategy: str = "auto"
    num_nodes: int = 1
    precision: str | None = None
    num_workers: int = 0
    progress: bool = True
    resume: bool = True
    deterministic: bool = True
    checkpoint_every: int = 1
    profiler: str | None = None
    extend_epochs: int = 0
    ensemble: int = 1
    calibrate: int = 0
    calibrate_top: int = 1
    calibrate_folds: int = 3
    calibrate_subsample: int = 10_000
    calibrate_epochs: int = 0
    calibrate_budget: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def check(self) -> TrainConfig:
        """``self`` if every field makes sense, else one :class:`BiodlInputError` naming the flag
        (a zero batch size would otherwise fail deep inside the data loader)."""
        flags = {"max_epochs": "--epochs", "batch_size": "--batch-size", "lr": "--lr"}

        def bad(name: str, what: str) -> BiodlInputError:
            flag = flags.get(name, "--" + name.replace("_", "-"))
            return BiodlInputError(f"{flag} must be {what}, got {getattr(self, name)!r}")

        for name in ("max_epochs", "batch_size", "num_nodes", "checkpoint_every", "ensemble"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise bad(name, "an integer of at least 1")
        for name in (
            "min_epochs",
            "patience",
            "num_workers",
            "extend_epochs",
            "calibrate",
            "calibrate_subsample",
            "calibrate_epochs",
        ):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise bad(name, "a non-negative integer")
        # numpy's and Lightning's seeds are 32-bit; ensemble member j trains with seed + j - 1
        top = SEED_MAX - (self.ensemble - 1)
        v = self.seed
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= top:
            k = self.ensemble
            members = f" (--ensemble {k} trains its members with seeds SEED .. SEED+{k - 1})" if k > 1 else ""
            raise bad("seed", f"an integer from 0 to {top}{members}")
        problem = _devices_problem(self.devices, self.device)
        if problem:
            raise bad("devices", problem)
        problem = _strategy_problem(self.strategy, self.device)
        if problem:
            raise BiodlInputError(problem)
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise bad("lr", "a positive number")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise bad("weight_decay", "a non-negative number")
        for name in ("calibrate_top", "calibrate_folds"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < (2 if name == "calibrate_folds" else 1):
                raise bad(name, "an integer of at least " + ("2" if name == "calibrate_folds" else "1"))
        if self.calibrate and self.calibrate_top > self.calibrate:
            raise BiodlInputError(
                f"--calibrate-top ({self.calibrate_top}) is more than the trials of --calibrate "
                f"({self.calibrate})"
            )
        if self.calibrate_top > 1 and self.ensemble > 1:
            raise BiodlInputError(
                "--calibrate-top K and --ensemble K both make an averaged model: give one of them"
            )
        b = self.calibrate_budget
        if b is not None and not (
            isinstance(b, (int, float)) and not isinstance(b, bool) and math.isfinite(b) and b > 0
        ):
            raise bad("calibrate_budget", "a positive number of seconds")
        precisions = ("32-true", "16-mixed", "bf16-mixed", "16-true", "bf16-true", "64-true")
        if self.precision is not None and str(self.precision) not in (*precisions, "32", "16", "bf16", "64"):
            raise BiodlInputError(
                f"--precision must be one of {', '.join(precisions)} (Lightning's), got {self.precision!r}"
            )
        if self.profiler not in (None, "simple", "advanced"):
            raise BiodlInputError(f"--profiler must be simple or advanced, got {self.profiler!r}")
        if self.min_epochs > self.max_epochs:
            raise BiodlInputError(
                f"--min-epochs ({self.min_epochs}) is more than --epochs ({self.max_epochs})"
            )
        return self

    @classmethod
    def for_recipe(cls, defaults: dict[str, Any] | None = None, **overrides: Any) -> TrainConfig:
        """A config from a recipe's ``train_defaults`` with ``overrides`` (``None`` values
        are ignored, so unset CLI flags keep the recipe's value)."""
        kw = {k: v for k, v in (defaults or {}).items() if k in cls.__dataclass_fields__}
        kw.update({k: v for k, v in overrides.items() if v is not None})
        unknown = sorted(set(kw) - set(cls.__dataclass_fields__))
        if unknown:
            raise TypeError(f"unknown TrainConfig field(s): {unknown}")
        return cls(**kw)


#: The largest seed numpy and Lightning take (``2**32 - 1``).
SEED_MAX = 2**32 - 1


def check_seed(seed: Any, flag: str = "--seed") -> int:
    """``seed`` if it is an integer from 0 to :data:`SEED_MAX` (every command's range), else one
    clear error (numpy raised 'expected non-negative integer' from deep inside a worker)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= SEED_MAX:
        raise BiodlInputError(f"{flag} must be an integer from 0 to {SEED_MAX}, got {seed!r}")
    return int(seed)


def _accelerator(device: str) -> str:
    """The accelerator Lightning will train on for ``--device`` (``cpu``, ``cuda``, ``mps``; an
    unknown device or one this machine lacks is :func:`~biodl.train.predict.torch_device`'s error)."""
    if str(device).strip().lower() == "auto":  # as Lightning's own choice: CUDA, then MPS, then CPU
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        return "mps" if mps is not None and mps.is_available() else "cpu"
    return torch_device(device).type


def _device_list(devices: Any) -> list[int] | int | str | None:
    """``--devices`` as Lightning reads it: ``"auto"``, a count (``-1``: all), a list of device
    indices (``"0,1"``, ``[0, 1]``), or ``None`` when it is none of these."""
    if isinstance(devices, bool):
        return None
    if isinstance(devices, int):
        return devices if devices >= 1 or devices == -1 else None
    if isinstance(devices, (list, tuple)):
        ok = devices and all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in devices)
        return list(devices) if ok and len(set(devices)) == len(devices) else None
    if not isinstance(devices, str):
        return None
    s = devices.strip()
    if s.lower() == "auto":
        return "auto"
    if s == "-1":
        return -1
    if "," in s:  # Lightning's parsing: empty items are skipped ("0," is [0])
        items = [x.strip() for x in devices.split(",") if len(x) > 0]
        if not items or not all(x.isdigit() for x in items):
            return None
        ids = [int(x) for x in items]
        return ids if len(set(ids)) == len(ids) else None
    return int(s) if s.isdigit() and int(s) >= 1 else None


def _devices_problem(devices: Any, device: str) -> str | None:
    """What ``--devices`` must be, when it is not (for the ``--device`` it trains on), else
    ``None``: the checks Lightning's Trainer makes only when training starts, after the data
    are read."""
    d = _device_list(devices)
    if d is None:
        return "a positive number, -1 (all), or a list of device indices"
    if d == "auto":
        return None
    acc = _accelerator(device)
    if acc == "cuda" and torch_device(device).index is not None and d != 1:
        return (
            "1 (or left out) with --device cuda:N, which names one GPU; for several, give --device cuda "
            "and --devices as GPU indices (e.g. 0,2) or a count"
        )
    if acc == "cpu" and (d == -1 or isinstance(d, list)):
        return "a number of processes when training on the CPU (-1 and device indices such as 0,1 pick GPUs)"
    if acc == "cuda" and not torch.distributed.is_torchelastic_launched():  # torchrun: one GPU a process
        n = torch.cuda.device_count()
        if (isinstance(d, int) and d > n) or (isinstance(d, list) and max(d) >= n):
            return f"at most {n}, or device indices from 0 to {n - 1}: this machine has {n} CUDA GPU(s)"
    return None


def _strategy_problem(strategy: Any, device: str) -> str | None:
    """The error for ``--strategy``, or ``None``: a name Lightning knows (any case) or a
    ``Strategy`` object, that this machine can run (FSDP needs a CUDA GPU, DeepSpeed and XLA
    their packages)."""
    import importlib.util

    from lightning.pytorch.strategies import Strategy, StrategyRegistry

    if isinstance(strategy, Strategy):
        return None

    def forked(name: str) -> bool:  # trains in processes it starts itself (spawn / fork)
        return any(w in name for w in ("spawn", "fork", "notebook"))

    if isinstance(strategy, str) and strategy.lower() in StrategyRegistry and forked(strategy.lower()):
        return (
            f"--strategy {strategy} trains in processes it starts itself, whose results (the best "
            "epoch, the history) never reach this one: the model kept would be the last epoch's. Give "
            "--strategy ddp (the same training, a process per device)"
        )
    names = ["auto", *sorted(n for n in StrategyRegistry if not forked(n))]
    if not isinstance(strategy, str) or strategy.lower() not in names:
        return f"--strategy must be one of {', '.join(names)}, got {strategy!r}"
    s = strategy.lower()
    if s.startswith("fsdp") and _accelerator(device) != "cuda":
        return f"--strategy {strategy} needs a CUDA GPU (--device cuda); this run would train on the CPU"
    for needs, package in (("deepspeed", "deepspeed"), ("xla", "torch_xla"), ("tpu", "torch_xla")):
        if needs in s and importlib.util.find_spec(package) is None:
            return f"--strategy {strategy} needs the {package} package, which is not installed"
    return None


def _schedule_length(ckpt: Path) -> int:
    """The epochs the learning-rate schedule of checkpoint ``ckpt`` runs over (its cosine
    ``T_max``; 0 if it has none): fewer than a resume asks for make it an extension."""
    try:
        c = torch.load(ckpt, map_location="cpu", weights_only=True, mmap=True)
        return max((int(sc.get("T_max", 0)) for sc in c.get("lr_schedulers", [])), default=0)
    except Exception:  # noqa: BLE001 - only a note depends on it
        return 0


def seed_all(seed: int) -> None:
    """Seed python, numpy and torch (call before building a model for reproducible weights)."""
    pl.seed_everything(seed, workers=True, verbose=False)


class HistoryCallback(Callback):
    """Keeps one row of metrics per epoch in the checkpoint (so a resumed run keeps the
    rows of finished epochs) and writes ``history.csv`` atomically after each epoch."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: list[dict[str, float]] = []

    def on_validation_end(self, trainer, pl_module) -> None:
        # Runs after the module logged this epoch's validation metrics and before
        # ModelCheckpoint (Lightning runs checkpoint callbacks last), so the row is in the
        # checkpoint that a resumed run starts from.
        if trainer.sanity_checking:
            return
        self._record(trainer, pl_module)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if not trainer.val_dataloaders:
            self._record(trainer, pl_module)

    def _record(self, trainer, pl_module) -> None:
        row: dict[str, float] = {"epoch": trainer.current_epoch}
        acc = getattr(pl_module, "epoch_train_loss", None)
        if acc and acc[1]:
            row["train_loss"] = float(acc[0]) / acc[1]
        for k, v in trainer.callback_metrics.items():
            if k.startswith("val_"):
                row[k] = float(v)
        self.rows = [r for r in self.rows if r["epoch"] != row["epoch"]] + [row]
        if trainer.is_global_zero:
            self._write()

    def _write(self) -> None:
        from biodl.io._util import atomic_write_text

        keys = ["epoch"] + sorted({k for r in self.rows for k in r} - {"epoch"})
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
        w.writeheader()
        for r in self.rows:
            w.writerow({k: r.get(k, "") for k in keys})
        atomic_write_text(self.path, buf.getvalue())

    def state_dict(self) -> dict:
        return {"rows": json.dumps(self.rows)}

    def load_state_dict(self, state_dict: dict) -> None:
        self.rows = json.loads(state_dict.get("rows", "[]"))


class SoftEpochCap(Callback):
    """Past ``soft`` epochs, stop at the first epoch that does not improve ``monitor`` (the
    trainer's ``max_epochs`` is the hard cap). Decides from the history rows (:func:`best_row`),
    so a resumed run decides as an uninterrupted one."""

    def __init__(self, soft: int, monitor: str, mode: str, history: HistoryCallback) -> None:
        self.soft, self.monitor, self.mode, self.history = int(soft), monitor, mode, history

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        epoch = trainer.current_epoch
        if trainer.sanity_checking or epoch + 1 < self.soft:
            return
        best = best_row(self.history.rows, self.monitor, self.mode)
        if best is None or int(best["epoch"]) != epoch:
            trainer.should_stop = True


class TrainingDiverged(BiodlInputError):
    """The weights stopped being finite numbers during training (a learning rate too high for
    the data or model, or a precision too narrow): nothing trained from then on means anything."""


class _Diverged(Callback):
    """Checks, once per epoch before its validation and checkpoints (and at its end without
    validation), that every weight is still a finite number; raises :class:`TrainingDiverged`
    otherwise, so a NaN model is never validated, chosen, saved or scored."""

    def __init__(self, lr: float, precision: str | None) -> None:
        self.lr, self.precision = lr, precision

    def _check(self, trainer, pl_module) -> None:
        bad = [n for n, p in pl_module.named_parameters() if not bool(torch.isfinite(p).all())]
        if not bad:
            return
        epoch = trainer.current_epoch + 1
        acc = getattr(pl_module, "epoch_train_loss", None)
        loss = f" (training loss {float(acc[0]) / acc[1]:.4g})" if acc and acc[1] else ""
        prec = str(self.precision or "")
        narrow = ""
        if prec.split("-")[0] in ("16", "bf16"):
            narrow = (
                f"; --precision {prec} may be too narrow for it ("
                + ("32-true or a -mixed one keeps the weights in float32" if "true" in prec else "32-true")
                + ")"
            )
        raise TrainingDiverged(
            f"training diverged in epoch {epoch}{loss}: {len(bad)} weight tensor(s) are no longer finite "
            f"numbers (first: {bad[0]}), so nothing trained from then on can be used. A lower learning "
            f"rate (--lr, {self.lr:g} now) usually fixes this{narrow}; rerun with --no-resume (a resumed "
            "run keeps the optimiser's old learning rate)"
        )

    def on_validation_start(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self._check(trainer, pl_module)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if not trainer.val_dataloaders:
            self._check(trainer, pl_module)


class _UndefinedMonitor(Callback):
    """Says once, at the first validation whose monitored metric is undefined (NaN), that early
    stopping and the choice of the best epoch cannot use it (such an epoch is never an
    improvement), and why when the validation labels have one class only (AUROC is undefined
    then, at every epoch)."""

    def __init__(self, monitor: str, patience: int, quiet: bool = False) -> None:
        self.monitor, self.patience, self.quiet = monitor, int(patience or 0), quiet
        self.said = False
        self.one_class: str | None = None

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        # runs before the module's own hook, which turns the outputs it kept into the metrics
        if trainer.sanity_checking or self.said:
            return
        outs = getattr(pl_module, "_outputs", None)
        outs = outs.get("val") if isinstance(outs, dict) else None
        self.one_class = None
        if outs and getattr(pl_module, "task", None) in ("binary", "multilabel"):
            target = torch.cat([o[1] for o in outs]).reshape(sum(len(o[1]) for o in outs), -1)
            seen = [torch.unique(c[~torch.isnan(c)] > 0.5) for c in target.T]
            if all(len(c) <= 1 for c in seen):
                classes = sorted({int(v) for c in seen for v in c})
                if not classes:
                    self.one_class = f"none of the {len(target)} validation items has a label"
                else:
                    what = f"(all {classes[0]})" if len(classes) == 1 else "in every label"
                    self.one_class = f"the {len(target)} validation items have one class only {what}"

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or self.said or not trainer.is_global_zero:
            return
        v = trainer.callback_metrics.get(self.monitor)
        if v is None or math.isfinite(float(v)):
            return
        from biodl.kinds.base import log

        self.said = True
        epoch = trainer.current_epoch + 1
        if self.one_class:
            stop = (
                f"training stops after --patience {self.patience} epochs (--patience 0 trains every epoch)"
                if self.patience
                else "training runs every epoch"
            )
            log(
                f"[biodl] warning: the validation metric {self.monitor} is undefined (NaN): "
                f"{self.one_class}, so early stopping and the choice of the best epoch cannot use it: "
                "no epoch improves it, "
                f"{stop}, and the model kept is the last epoch's. A validation split with both classes "
                "fixes this",
                self.quiet,
            )
        else:
            log(
                f"[biodl] warning: the validation metric {self.monitor} is undefined (NaN) at epoch {epoch}: "
                "such an epoch is never chosen as the best nor counted as an improvement by early stopping"
                + (f" (--patience {self.patience})" if self.patience else ""),
                self.quiet,
            )


@dataclass
class FitResult:
    """What one call of :func:`fit` produced (the plan holds the chosen weights)."""

    out_dir: Path
    best_epoch: int | None
    epochs_run: int
    val_metrics: dict[str, float]
    resumed_from: str | None
    seconds: float = 0.0
    is_global_zero: bool = True
    model_path: Path | None = None
    threads: int | None = None
    diverged: bool = False
    epochs_resumed: int = 0  # the epochs its checkpoint held when it resumed (0: a fresh fit)

    @property
    def trained(self) -> bool:
        """Whether this call trained any epoch (a resumed run at its end trains none)."""
        return self.epochs_run > self.epochs_resumed


def _quiet_lightning() -> None:
    """Keep Lightning's informational chatter (tips, 'GPU available') out of the output."""
    import logging
    import warnings

    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\).*")
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    # Lightning's own DDP gather calls a deprecated torch function: nothing for the user to do
    warnings.filterwarnings("ignore", message=".*all_gather is deprecated.*")
    warnings.filterwarnings("ignore", message=".*Checkpoint directory .* exists and is not empty.*")
    # a resume with another --patience (allowed) adds or drops EarlyStopping: nothing to warn about
    warnings.filterwarnings("ignore", message=".*callbacks used to create the checkpoint need to be.*")


class _EpochProgress(RichProgressBar):
    """Lightning's rich progress bar counting epochs from 1 ("Epoch 3/3" for ``--epochs 3``;
    Lightning's own shows the 0-based index over ``max_epochs - 1``)."""

    def _get_train_description(self, current_epoch: int) -> str:  # Lightning's hook for the label
        label = f"Epoch {current_epoch + 1}"
        if self.trainer.max_epochs is not None and self.trainer.max_epochs > 0:
            label += f"/{self.trainer.max_epochs}"
        return f"{label:{len(self.validation_description)}}"


class _MovedRun:
    """A checkpoint callback that resumes the state of a run directory that was moved or copied
    (``cp -r run run2``, then extended in run2): Lightning drops the best score and the kept
    checkpoints when the checkpoint's directory differs ("The dirpath has changed"), so the first
    epoch after resuming became the best whatever its score; the paths are moved instead."""

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        old, new = state_dict.get("dirpath"), self.dirpath
        if old and new and old != new:

            def move(p: Any) -> Any:
                return new + p[len(old) :] if isinstance(p, str) and p.startswith(old) else p

            state_dict = {k: move(v) for k, v in state_dict.items()}
            if isinstance(state_dict.get("best_k_models"), dict):
                state_dict["best_k_models"] = {move(k): v for k, v in state_dict["best_k_models"].items()}
            state_dict["dirpath"] = new
        super().load_state_dict(state_dict)


#: Written beside the checkpoints when a fit ended because it was told to stop before its
#: epochs ran out (early stopping, the soft epoch cap); removed when a fit starts.
STOPPED_FILE = "stopped.json"


class _StopRecord(Callback):
    """Records why a fit ended early (``checkpoints/stopped.json``): Lightning restores the
    early-stopping counter on a resume but not its decision, so a rerun of a run that had
    stopped early trained on (one epoch, then more whenever one improved), changing a finished
    run's model. Removed when a fit starts, so a fit killed midway (also one past its early stop
    but short of ``--min-epochs``) has none and resumes; ``keep``: a rerun that trains nothing
    leaves the record as it is."""

    def __init__(self, path: Path, patience: int, soft_cap: int | None, keep: bool = False) -> None:
        self.path, self.patience, self.soft_cap, self.keep = path, int(patience or 0), soft_cap, keep

    def on_train_start(self, trainer, pl_module) -> None:
        if not self.keep and trainer.is_global_zero:
            self.path.unlink(missing_ok=True)

    def on_train_end(self, trainer, pl_module) -> None:
        if self.keep or not trainer.is_global_zero:
            return
        if not trainer.should_stop or trainer.current_epoch >= trainer.max_epochs:
            return
        es = [c for c in trainer.callbacks if isinstance(c, EarlyStopping)]
        by_patience = bool(es) and es[0].wait_count >= es[0].patience
        from biodl.train.checkpoint import atomic_json

        atomic_json(
            {
                "by": "patience" if by_patience else "epoch cap",
                "patience": self.patience,
                "soft_cap": self.soft_cap,
                "epochs": int(trainer.current_epoch),
            },
            self.path,
        )


def stage_config(config: TrainConfig, earlier_trained: bool) -> TrainConfig:
    """The config of one stage of a layer-by-layer fit: once an earlier stage has trained in this
    call (:attr:`FitResult.trained`), a later one starts over (it resumed from a checkpoint
    holding the whole network, the earlier layers' old weights with it: a longer rerun kept
    layer 1's old weights in the model while reporting its new best epoch)."""
    return replace(config, resume=False) if earlier_trained and config.resume else config


def _stopped_early(path: Path, config) -> dict | None:
    """The record of a fit that ended early (:class:`_StopRecord`) when this call asks for no
    more than it had (the same patience, no more epochs than the soft cap it stopped at): the
    run is finished, a rerun trains nothing. ``None``: resume (a larger --patience, or --epochs
    past the cap, goes on)."""
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(rec, dict):
        return None
    if int(config.min_epochs or 0) > int(rec.get("epochs") or 0):  # a larger --min-epochs goes on
        return None
    if rec.get("by") == "patience":
        return rec if int(config.patience or 0) <= int(rec.get("patience") or 0) else None
    cap = rec.get("soft_cap")
    return rec if cap is not None and int(config.max_epochs) <= int(cap) else None


class _AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints written as every biodl file is (:func:`biodl.train.checkpoint.atomic_torch_save`:
    a temporary file beside the target, then a rename). Lightning's own writer staged them in
    $TMPDIR and, where that is another file system than the run's (a cluster's scratch),
    *copied* them over the old file: a kill during the copy left an empty ``last.ckpt`` (the run
    could not resume) or ``best.ckpt``; a full disk was an unchecked error and a truncated file."""

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        if storage_options is not None:
            raise TypeError("storage_options are not supported by biodl's checkpoint writer")
        from biodl.train.checkpoint import atomic_torch_save

        Path(path).parent.mkdir(parents=True, exist_ok=True)
        atomic_torch_save(checkpoint, path)


class _LastCheckpoint(_MovedRun, ModelCheckpoint):
    """``last.ckpt`` every ``every_n_epochs`` epochs whether or not the monitored metric
    improved, and once more after the final epoch if that epoch was not saved (Lightning's
    ``save_last`` writes ``last.ckpt`` only on epochs where the top-k checkpoint was saved, so
    ``last.ckpt`` would lag behind after epochs without improvement)."""

    def __init__(self, dirpath: Path, every: int) -> None:
        super().__init__(
            dirpath=dirpath,
            filename="last",
            monitor=None,
            save_top_k=1,
            every_n_epochs=every,
            enable_version_counter=False,
        )

    def on_train_end(self, trainer, pl_module) -> None:
        super().on_train_end(trainer, pl_module)
        if not self._should_skip_saving_checkpoint(trainer):
            self._save_topk_checkpoint(trainer, self._monitor_candidates(trainer))


#: The metric that ranks epochs whose monitored metric is at its ceiling (accuracy or AUROC 1.0,
#: common on a small or easy validation set): the lower validation loss wins.
TIE_BREAK = "val_loss"
#: The ceiling of the monitored metrics that are maximised (accuracy, AUROC).
CEILING = 1.0


def _at_ceiling(value: float, mode: str) -> bool:
    return mode == "max" and value >= CEILING


class _BestCheckpoint(_MovedRun, ModelCheckpoint):
    """``best.ckpt`` by the monitored metric (Lightning's ``ModelCheckpoint``), except that once
    it is at its ceiling (accuracy or AUROC 1.0), where it can no longer tell epochs apart, an
    epoch that reaches it too replaces the best one when its ``tie_break`` metric (validation
    loss) is lower: without it, a run whose validation accuracy is 1.0 from the first epoch
    keeps the first epoch's weights and throws all later training away. Ties below the ceiling
    go to the earlier epoch, as in Lightning. :func:`best_row` picks by the same rule."""

    def __init__(self, *args, tie_break: str | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.tie_break = tie_break
        self.best_tie: float | None = None

    @property
    def state_key(self) -> str:
        # Lightning's own key, so checkpoints written before this class resume its state
        key = super().state_key
        return "ModelCheckpoint" + key[len(type(self).__qualname__) :]

    def check_monitor_top_k(self, trainer, current=None) -> bool:
        if current is None or self.tie_break is None or not self.best_k_models:
            return super().check_monitor_top_k(trainer, current)
        best = float(self.best_k_models[self.kth_best_model_path])
        if float(current) != best or not _at_ceiling(best, self.mode):
            return super().check_monitor_top_k(trainer, current)
        loss = trainer.callback_metrics.get(self.tie_break)
        lower = loss is not None and math.isfinite(float(loss)) and float(loss) < _or_inf(self.best_tie)
        return trainer.strategy.reduce_boolean_decision(bool(lower))

    def _update_best_and_save(self, current, trainer, monitor_candidates) -> None:
        super()._update_best_and_save(current, trainer, monitor_candidates)
        loss = monitor_candidates.get(self.tie_break) if self.tie_break else None
        self.best_tie = None if loss is None else float(loss)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "best_tie": self.best_tie}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.best_tie = state_dict.get("best_tie")


def _or_inf(v: float | None) -> float:
    return math.inf if v is None or not math.isfinite(v) else v


def is_checkpoint_epoch(epoch: int, every: int) -> bool:
    """Whether ``best.ckpt`` was considered at the end of (0-based) ``epoch``."""
    return (epoch + 1) % max(1, int(every)) == 0


def best_row(
    rows: list[dict[str, float]], monitor: str, mode: str, every: int = 1
) -> dict[str, float] | None:
    """The history row whose weights are in ``best.ckpt``: the best ``monitor`` value among
    the epochs where checkpoints were written (every ``every`` epochs), a tie going to the
    earlier epoch, except at the metric's ceiling (accuracy or AUROC 1.0), where it goes to the
    lower validation loss (:data:`TIE_BREAK`), then the earlier epoch; ``None`` if there is
    none (then ``best.ckpt`` does not exist either)."""
    ok = [
        r
        for r in rows
        if monitor in r and not math.isnan(r[monitor]) and is_checkpoint_epoch(int(r["epoch"]), every)
    ]
    if not ok:
        return None
    sign = -1.0 if mode == "max" else 1.0
    return min(
        ok,
        key=lambda r: (
            sign * r[monitor],
            _or_inf(r.get(TIE_BREAK)) if _at_ceiling(r[monitor], mode) else 0.0,
            int(r["epoch"]),
        ),
    )


def several_processes(config) -> bool:
    """Whether ``config`` trains in several DDP processes: ``--devices`` above 1, -1 or a list of
    several device indices, or several nodes."""
    if int(getattr(config, "num_nodes", 1) or 1) > 1:
        return True
    d = getattr(config, "devices", "auto")
    if isinstance(d, (list, tuple)):
        return len(d) > 1
    text = str(d).strip().strip("[]").strip()
    if text in ("auto", "", "None"):
        return False
    parts = [p for p in text.split(",") if p.strip()]
    if len(parts) > 1:
        return True
    if "," in str(d) or "[" in str(d):  # one device index
        return False
    return text.lstrip("-").isdigit() and (int(text) > 1 or int(text) == -1)  # a count; -1: all


def _has_unused_parameters(plan) -> bool:
    """Whether ``plan``'s network trains parameters its loss does not use in this stage: the
    decoders of a greedily pre-trained stack (PEDLA, the CpG SAE) once it is fine-tuned."""
    model = getattr(plan, "model", None)
    return getattr(model, "decoders", None) is not None and getattr(model, "stage", "") == "finetune"


def _say_dead_workers() -> None:
    """Have Lightning's DDP watcher say which worker ended before it stops the training. When a
    worker process exits non-zero (the out-of-memory killer, a crash), Lightning's
    ``_ChildProcessObserver`` SIGKILLs every process, this one included, which then cannot say
    anything: the run ended silently (``Killed``), ``run.json`` still "running". One line on
    standard error first names the rank, how it ended and that a rerun resumes."""
    try:
        from lightning.fabric.strategies.launchers import subprocess_script as ss
    except ImportError:
        return
    observer = getattr(ss, "_ChildProcessObserver", None)
    stop = getattr(observer, "_terminate_all", None)
    if stop is None or getattr(stop, "_biodl", False):
        return

    def _terminate_all(self) -> None:
        for rank, proc in enumerate(getattr(self, "_child_processes", []), start=1):
            code = proc.returncode
            if not code:
                continue
            how = (
                f"was killed by signal {-code}" + (" (out of memory?)" if code == -9 else "")
                if code < 0
                else f"exited with status {code}"
            )
            sys.stderr.write(
                f"error: the DDP worker process of rank {rank} {how}, so the training stops; rerun the "
                "same command to resume it from its last checkpoint\n"
            )
        sys.stderr.flush()
        stop(self)

    _terminate_all._biodl = True  # type: ignore[attr-defined]
    observer._terminate_all = _terminate_all


def make_trainer(
    out_dir: Path, config: TrainConfig, monitor: str, mode: str, callbacks=(), validate: bool = True
) -> pl.Trainer:
    """A Lightning Trainer with checkpoints (``best.ckpt`` by ``monitor`` and ``last.ckpt``,
    every ``config.checkpoint_every`` epochs; ``last.ckpt`` also after the final epoch), early
    stopping, progress bar and the device / strategy options passed through
    (``validate=False``: no validation loop, for runs without a validation set)."""
    _quiet_lightning()
    _say_dead_workers()
    ckpt_dir = out_dir / "checkpoints"
    every = int(config.checkpoint_every)
    if every < 1:
        raise BiodlInputError(f"checkpoint_every must be >= 1, not {config.checkpoint_every}")
    cbs = [
        *callbacks,
        # best first: last.ckpt then holds the best callback's updated state (best score).
        # best.ckpt is only read for its weights (resuming uses last.ckpt): no optimizer state,
        # which for Adam / Adagrad is one or two more copies of the model
        _BestCheckpoint(
            dirpath=ckpt_dir,
            filename="best",
            monitor=monitor,
            mode=mode,
            save_top_k=1,
            save_last=False,
            save_weights_only=True,
            every_n_epochs=every,
            enable_version_counter=False,
            tie_break=TIE_BREAK,  # used at a maximised metric's ceiling only (never for a loss)
        ),
        _LastCheckpoint(ckpt_dir, every),
    ]
    if config.progress:
        cbs.append(_EpochProgress())
    if config.patience and config.patience > 0:
        # check_finite=False: an undefined (NaN) metric, such as AUROC on a validation split of one
        # class, is never an improvement, rather than stopping training at once without a word
        # (_UndefinedMonitor says it)
        cbs.append(EarlyStopping(monitor=monitor, mode=mode, patience=config.patience, check_finite=False))
    kwargs: dict[str, Any] = dict(
        default_root_dir=str(out_dir),
        max_epochs=config.max_epochs,
        min_epochs=config.min_epochs or None,
        accelerator=accelerator_for(config.device),
        devices=_devices(config),
        strategy=config.strategy,
        num_nodes=config.num_nodes,
        callbacks=cbs,
        logger=False,
        enable_progress_bar=config.progress,
        enable_model_summary=False,
        deterministic=config.deterministic,
        num_sanity_val_steps=0,
    )
    kwargs["plugins"] = [_AtomicCheckpointIO()]
    if config.precision:
        kwargs["precision"] = config.precision
    if config.profiler:
        from lightning.pytorch.profilers import AdvancedProfiler, SimpleProfiler

        cls = SimpleProfiler if config.profiler == "simple" else AdvancedProfiler
        kwargs["profiler"] = cls(dirpath=str(out_dir), filename="profile")
    if not validate:
        kwargs["limit_val_batches"] = 0
    return pl.Trainer(**kwargs)


@contextlib.contextmanager
def caller_state_kept():
    """The caller's process-wide state put back after the block: the random generators (Python's,
    numpy's, torch's CPU and CUDA ones, which training seeds), the warnings filters and the
    Lightning loggers' levels (which training quiets). A notebook's bootstrap loop around
    ``biodl.api.train`` drew the same numbers after every training."""
    import logging
    import random
    import warnings

    py, npy, cpu = random.getstate(), np.random.get_state(), torch.random.get_rng_state()
    on_gpu = torch.cuda.is_available() and torch.cuda.is_initialized()
    cuda = torch.cuda.get_rng_state_all() if on_gpu else None
    names = ("lightning.pytorch", "lightning.fabric", "lightning")
    levels = {n: logging.getLogger(n).level for n in names}
    try:
        with warnings.catch_warnings():
            yield
    finally:
        random.setstate(py)
        np.random.set_state(npy)
        torch.random.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)
        for n, level in levels.items():
            logging.getLogger(n).setLevel(level)


def _keeps_torch_flags(f):
    """Run ``f`` with torch's global determinism and cuDNN flags put back afterwards: Lightning's
    ``deterministic=True`` turns deterministic algorithms on for the rest of the process, so a
    notebook that trained, then ran an op torch has no deterministic CUDA kernel for (a histogram,
    a gradient through another library's adaptive pooling), raised."""
    import functools

    @functools.wraps(f)
    def wrapped(*args, **kwargs):
        det = torch.are_deterministic_algorithms_enabled()
        warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
        cudnn = torch.backends.cudnn
        flags = (cudnn.benchmark, cudnn.deterministic)
        try:
            return f(*args, **kwargs)
        finally:
            torch.use_deterministic_algorithms(det, warn_only=warn_only)
            cudnn.benchmark, cudnn.deterministic = flags

    return wrapped


@_keeps_torch_flags
def fit(
    plan: TrainingPlan,
    datamodule: DataModule,
    out_dir: str | Path,
    config: TrainConfig,
    meta: RunMeta | None = None,
    *,
    threads: int | None = None,
    quiet: bool = False,
    epochs_option: str = "--epochs",
    inner: bool = False,
) -> FitResult:
    """Train ``plan`` on ``datamodule`` with Lightning, keeping checkpoints in ``out_dir/checkpoints``.

    If ``config.resume`` and ``out_dir/checkpoints/last.ckpt`` exists, training resumes from it
    (finished epochs are not repeated; the checkpoint is loaded with ``weights_only=True`` and
    must come from a model of the same shapes). Without a validation set there is no
    validation loop and the final epoch's weights are kept; otherwise the best epoch's by the
    plan's monitored metric (among checkpointed epochs, see :func:`best_row`). Per-epoch
    metrics go to ``out_dir/history.csv``; with ``meta``, ``out_dir/run.json`` is written with
    status ``running`` before training (the caller writes the finished one).

    Parameters
    ----------
    threads
        torch CPU threads while training on the CPU (see :func:`~biodl.train.predict.cpu_threads`).
    quiet
        No messages (resuming, still improving at the cap): a short fit inside a larger one
        (a calibration fold).
    epochs_option
        The option that sets this fit's epochs, named in the "still improving" hint
        (``--set pretrain_epochs`` for a pre-training stage).
    inner
        A short fit inside a larger one that scores it (a calibration fold, a CellCnn restart):
        when the training diverges (:class:`TrainingDiverged`) the result is its best epoch
        before, none if there was none (``val_metrics`` empty), with ``diverged`` set, instead
        of the error.
    """
    config.check()
    out = Path(out_dir)
    from biodl.io._util import output_dir

    output_dir(out)
    pl.seed_everything(config.seed, workers=True, verbose=False)
    validate = datamodule.has_validation
    key, mode = plan.monitor
    monitor = f"val_{key}" if validate else "train_loss"
    if not validate:
        mode = "min"
    history = HistoryCallback(out / "history.csv")
    callbacks: list[Callback] = [_Diverged(config.lr, config.precision), history]
    if validate:
        callbacks.append(_UndefinedMonitor(monitor, config.patience, quiet))
    extend = int(config.extend_epochs or 0)
    if extend and validate and config.patience and not getattr(plan, "lr_decay", False):
        callbacks.append(SoftEpochCap(config.max_epochs, monitor, mode, history))
        trainer_config = replace(config, max_epochs=config.max_epochs + extend)
    else:
        extend, trainer_config = 0, config
    strategy = str(trainer_config.strategy).lower()
    if (
        strategy == "ddp" or (strategy == "auto" and several_processes(trainer_config))
    ) and _has_unused_parameters(plan):
        # the decoders of a pre-trained stack get no gradient when it is fine-tuned (DDP refused
        # such parameters); they stay in the optimizer, so a checkpoint resumes as it was written
        trainer_config = replace(trainer_config, strategy="ddp_find_unused_parameters_true")
    last = out / "checkpoints" / "last.ckpt"
    record = out / "checkpoints" / STOPPED_FILE
    resumed = str(last) if (config.resume and last.exists()) else None
    stopped, done = None, 0
    if resumed:
        done = check_resumable(last, plan)
        stopped = _stopped_early(record, config)
        if stopped is not None:  # finished early: a rerun of it trains nothing
            trainer_config = replace(trainer_config, max_epochs=done)
    soft = config.max_epochs if extend else None
    callbacks.append(_StopRecord(record, config.patience, soft, keep=stopped is not None))
    trainer = make_trainer(out, trainer_config, monitor, mode, callbacks=callbacks, validate=validate)
    if resumed:
        from biodl.kinds.base import log

        if stopped is not None:
            why = (
                f"validation had not improved for {stopped['patience']} epochs; a larger --patience goes on"
                if stopped["by"] == "patience"
                else f"past the {stopped['soft_cap']}-epoch cap, validation stopped improving; a larger "
                "--epochs goes on"
            )
            log(
                f"[biodl] {out}: training stopped early after epoch {done} ({why}); nothing more to "
                "train (--no-resume starts over)",
                quiet,
            )
        elif done > trainer_config.max_epochs:  # Lightning would fail deep inside, after run.json changed
            raise fewer_epochs_error(done, config.max_epochs, last, epochs_option)
        decay = (
            "; the learning rate's cosine decay goes on from where it stands to the new end, so an "
            "extended run differs from a fresh one of this length"
            if getattr(plan, "lr_decay", False) and 0 < _schedule_length(last) < config.max_epochs
            else ""
        )
        if stopped is None:
            log(
                f"[biodl] resuming from {last} ({done} epoch{'s' if done != 1 else ''} done of "
                f"{config.max_epochs}){decay}; --no-resume starts over",
                quiet,
            )
        if hasattr(datamodule, "first_epoch"):  # its loaders start at the resumed epoch
            datamodule.first_epoch = int(done)
    if not config.resume and last.exists():
        remove_checkpoints(out)
    on_cpu = torch_device(config.device).type == "cpu"
    n_threads = int(threads) if (threads and on_cpu) else torch.get_num_threads()
    if meta is not None:
        write_run_json(out, meta.replace(status="running", training=asdict(config), torch_threads=n_threads))
    t0 = time.perf_counter()
    diverged = False
    with cpu_threads(threads if on_cpu else None):
        try:
            trainer.fit(
                plan, datamodule=datamodule, ckpt_path=resumed, weights_only=True if resumed else None
            )
        except TrainingDiverged:
            if not inner:
                raise
            # a short fit inside a larger one (a calibration fold, a restart, a search trial):
            # its result is its best epoch before the divergence, none when there was none
            diverged = True
        except ValueError as e:
            if "Expected more than 1 value per channel when training" not in str(e):
                raise
            # batch normalisation over a batch of one item (--batch-size 1; a last batch of one is
            # dropped by the loader): torch's message names no option
            raise BiodlInputError(
                f"--batch-size {config.batch_size}: a batch normalisation layer of this network needs at "
                "least 2 items per batch to train; give --batch-size 2 or more"
            ) from None
        except SystemExit as e:
            if trainer.interrupted:  # Ctrl-C: Lightning shut down gracefully and called sys.exit(1)
                _interrupted(last, config.max_epochs, 143 if e.code == 143 else 130)  # 143: SIGTERM
            raise
    seconds = round(time.perf_counter() - t0, 2)
    if str(trainer_config.precision) in ("16-true", "bf16-true", "64-true", "64"):
        # Lightning converted the weights to that type; the model is kept, and scored, in float32
        plan.float()
    if not trainer.is_global_zero:
        # other ranks of a multi-process (DDP) run: rank 0 exports and reports
        return FitResult(
            out, None, trainer.current_epoch, {}, resumed, seconds, is_global_zero=False, threads=n_threads
        )
    best = out / "checkpoints" / "best.ckpt"
    # with checkpoint_every > 1 the best is chosen among the checkpointed epochs only, so that
    # the epoch reported is the one whose weights are kept
    # (none when the monitored metric is undefined, NaN, at every checkpointed epoch: then the last
    # epoch is kept, as without validation)
    chosen = best_row(history.rows, monitor, mode, config.checkpoint_every) if validate else None
    pick = chosen
    src = best if (pick is not None and best.exists()) else last
    if src.exists():
        plan.load_state_dict(torch.load(src, map_location="cpu", weights_only=True)["state_dict"])
    if pick is None and history.rows and not diverged:
        pick = history.rows[-1]
    best_epoch = int(pick["epoch"]) if pick is not None else None
    val_metrics = {k: float(v) for k, v in (pick or {}).items() if k.startswith("val_")}
    epochs_run = trainer.current_epoch
    hard_cap = trainer_config.max_epochs
    if (
        not quiet
        and validate
        and chosen is not None  # a best epoch by the metric, not the last one for want of it
        and best_epoch is not None
        and best_epoch + 1 >= hard_cap
        and epochs_run >= hard_cap
    ):
        from biodl.kinds.base import log

        log(
            f"[biodl] validation was still improving at the last epoch ({hard_cap}"
            + (f", {extend} past the recipe's cap" if extend else "")
            + f"): more epochs ({epochs_option}{'=' if epochs_option.startswith('--set') else ' '}"
            + f"{hard_cap * 2}) may help"
        )
    return FitResult(
        out,
        best_epoch,
        epochs_run,
        val_metrics,
        resumed,
        seconds,
        threads=n_threads,
        diverged=diverged,
        epochs_resumed=done,
    )


def _interrupted(last: Path, max_epochs: int, code: int = 130) -> None:
    """After Ctrl-C (or SIGTERM): say how far training got and how to go on, and exit with
    status 130 (the shell's code for an interrupt; 143 for SIGTERM) instead of Lightning's
    silent 1."""
    import signal

    from biodl.kinds.base import log

    signal.signal(signal.SIGINT, signal.default_int_handler)  # Lightning ignored further Ctrl-C
    done = (epochs_done(last) or 0) if last.exists() else 0  # only said
    from biodl.io._util import said_interrupted

    said_interrupted()
    log(
        f"[biodl] interrupted after {done} of {max_epochs} epochs{_part_of(last)}; rerun the same command "
        f"to resume from {last}" + ("" if last.exists() else " (no epoch finished: it starts over)")
    )
    raise SystemExit(code)


def _part_of(last: Path) -> str:
    """Which part of a run a checkpoint is (`` of calibration trial 3, fold 2 (finished trials
    are kept)``, `` of ensemble member 2``), for the interrupt line; "" for a plain run."""
    import re

    fit_dir = last.parent.parent
    parts = fit_dir.parts
    if "calibration" in parts:  # RUN/calibration/trialT/foldF
        after = parts[len(parts) - parts[::-1].index("calibration") :]
        names = {m.group(1): m.group(2) for p in after if (m := re.fullmatch(r"(trial|fold)(\d+)", p))}
        if "trial" in names:
            fold = f", fold {names['fold']}" if "fold" in names else ""
            return f" of calibration trial {names['trial']}{fold} (finished trials are kept)"
    m = re.fullmatch(r"(member|top)(\d+)", fit_dir.name)
    if m and m.group(1) == "member":
        return f" of ensemble member {m.group(2)} (finished members are kept)"
    if m:
        return f" of top setting {m.group(2)}"
    return ""


def fit_model(
    model: nn.Module,
    task: str,
    train_ds: Dataset,
    valid_ds: Dataset | None,
    out_dir: str | Path,
    config: TrainConfig,
    meta: RunMeta | None = None,
    *,
    collate_fn=None,
    threads: int | None = None,
    **plan_options: Any,
) -> FitResult:
    """:func:`fit` for a plain supervised network: builds the :class:`TrainingPlan` (``lr``,
    ``weight_decay``, ``seed``, ``max_epochs`` from ``config``; ``plan_options`` such as
    ``pos_weight``, ``label_names``, ``optimizer``, ``lr_decay``, ``penalty``) and the
    :class:`DataModule`, trains, and with ``meta`` exports the chosen weights to
    ``out_dir/model.pt`` (:func:`~biodl.train.checkpoint.save_model`) and a finished ``run.json``."""
    plan = TrainingPlan(
        model,
        task,
        lr=config.lr,
        weight_decay=config.weight_decay,
        seed=config.seed,
        max_epochs=config.max_epochs,
        **plan_options,
    )
    dm = DataModule(
        train_ds,
        valid_ds,
        batch_size=config.batch_size,
        seed=config.seed,
        num_workers=config.num_workers,
        collate_fn=collate_fn,
    )
    res = fit(plan, dm, out_dir, config, meta, threads=threads)
    if meta is not None and res.is_global_zero:
        done = finished_meta(meta, res, config, label_names=plan.label_names)
        res.model_path = save_model(Path(out_dir) / "model.pt", plan.model, done)
        write_run_json(out_dir, done)
    return res


def finished_meta(
    meta: RunMeta, res: FitResult, config: TrainConfig | None = None, **changes: Any
) -> RunMeta:
    """``meta`` with the outcome of ``res`` (best epoch, epochs run, validation metrics; with
    ``config``, the training config too)."""
    metrics = dict(meta.metrics)
    metrics["val"] = dict(res.val_metrics)
    if config is not None:
        changes["training"] = asdict(config)
    if res.threads is not None:
        changes.setdefault("torch_threads", res.threads)
    return meta.replace(
        status="finished",
        best_epoch=res.best_epoch,
        epochs_run=res.epochs_run,
        resumed_from=res.resumed_from,
        metrics=metrics,
        **changes,
    )


def _launched_processes() -> bool:
    """Whether a launcher started one process per device (torchrun, SLURM tasks): Lightning then
    takes the devices from it, and ``devices`` stays ``auto``."""
    if torch.distributed.is_torchelastic_launched():
        return True
    try:  # a job step of several tasks (srun -n K): set by srun, not in the batch script itself
        return int(os.environ.get("SLURM_STEP_NUM_TASKS", "1")) > 1
    except ValueError:
        return False


def _devices(config: TrainConfig) -> int | str | list[int]:
    """Lightning's ``devices``: ``--device cuda:N`` trains on GPU N (``devices`` left at ``auto``
    or 1: Lightning's ``devices=1`` is GPU 0); on a GPU, ``auto`` is one GPU, one process (Lightning's
    ``auto`` is every visible GPU, a DDP run nobody asked for: several GPUs are ``--devices K``);
    otherwise ``config.devices`` as given."""
    index = torch_device(config.device).index
    devices = _device_list(config.devices)  # checked by TrainConfig.check: "AUTO" is "auto"
    if index is not None and devices in ("auto", 1):
        return [index]
    if devices == "auto" and _accelerator(config.device) == "cuda" and not _launched_processes():
        return 1
    return "auto" if devices == "auto" else config.devices
