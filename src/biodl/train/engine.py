"""The training engine: a Lightning Trainer factory, fit with checkpoints and resume,
model export/import (``weights_only=True``) and batched prediction."""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader, Dataset

from biodl.errors import BiodlError, BiodlInputError
from biodl.train.metrics import MONITOR
from biodl.train.module import TaskModule

MODEL_FORMAT = "biodl-model-1"


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
    extra: dict[str, Any] = field(default_factory=dict)


@contextlib.contextmanager
def cpu_threads(n: int | None) -> Iterator[None]:
    """Temporarily set torch's intra-op CPU threads (restored afterwards); ``None`` leaves
    the setting alone. Models of many small operations (molecular graphs) can run several
    times faster on one thread than on several that spend their time synchronising."""
    if not n:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def seed_all(seed: int) -> None:
    """Seed python, numpy and torch (call before building a model for reproducible weights)."""
    pl.seed_everything(seed, workers=True, verbose=False)


def accelerator_for(device: str) -> str:
    d = device.lower()
    if d in ("cuda", "gpu"):
        if not torch.cuda.is_available():
            raise BiodlInputError("--device cuda was asked for, but no CUDA GPU is available here")
        return "gpu"
    if d in ("cpu", "auto", "mps"):
        return d
    raise BiodlInputError(f"unknown device {device!r} (use cpu, cuda or auto)")


def torch_device(device: str) -> torch.device:
    d = device.lower()
    if d == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if d in ("gpu", "cuda"):
        accelerator_for(d)
        return torch.device("cuda")
    return torch.device(d)


def _atomic_torch_save(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _atomic_json(obj, path: Path) -> None:
    from biodl.io._util import atomic_write_text

    atomic_write_text(path, json.dumps(obj, indent=2, default=str) + "\n")


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
            row["train_loss"] = acc[0] / acc[1]
        for k, v in trainer.callback_metrics.items():
            if k.startswith("val_"):
                row[k] = float(v)
        self.rows = [r for r in self.rows if r["epoch"] != row["epoch"]] + [row]
        if trainer.is_global_zero:
            self._write()

    def _write(self) -> None:
        keys = ["epoch"] + sorted({k for r in self.rows for k in r} - {"epoch"})
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".history.", suffix=".tmp")
        with os.fdopen(fd, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=keys)
            w.writeheader()
            for r in self.rows:
                w.writerow({k: r.get(k, "") for k in keys})
        os.replace(tmp, self.path)

    def state_dict(self) -> dict:
        return {"rows": json.dumps(self.rows)}

    def load_state_dict(self, state_dict: dict) -> None:
        self.rows = json.loads(state_dict.get("rows", "[]"))


@dataclass
class FitResult:
    """What a training run produced."""

    out_dir: Path
    model_path: Path
    best_epoch: int | None
    epochs_run: int
    val_metrics: dict[str, float]
    resumed_from: str | None
    is_global_zero: bool = True


def _quiet_lightning() -> None:
    """Keep Lightning's informational chatter (tips, 'GPU available') out of the output."""
    import logging
    import warnings

    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\).*")
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*Checkpoint directory .* exists and is not empty.*")


class _LastCheckpoint(ModelCheckpoint):
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


def is_checkpoint_epoch(epoch: int, every: int) -> bool:
    """Whether ``best.ckpt`` was considered at the end of (0-based) ``epoch``."""
    return (epoch + 1) % max(1, int(every)) == 0


def best_row(
    rows: list[dict[str, float]], monitor: str, mode: str, every: int = 1
) -> dict[str, float] | None:
    """The history row whose weights are in ``best.ckpt``: the best ``monitor`` value among
    the epochs where checkpoints were written (every ``every`` epochs); ``None`` if there is
    none (then ``best.ckpt`` does not exist either)."""
    ok = [
        r
        for r in rows
        if monitor in r and not math.isnan(r[monitor]) and is_checkpoint_epoch(int(r["epoch"]), every)
    ]
    if not ok:
        return None
    return (max if mode == "max" else min)(ok, key=lambda r: r[monitor])


def make_trainer(
    out_dir: Path, config: TrainConfig, monitor: str, mode: str, callbacks=(), validate: bool = True
) -> pl.Trainer:
    """A Lightning Trainer with checkpoints (``best.ckpt`` by ``monitor`` and ``last.ckpt``,
    every ``config.checkpoint_every`` epochs; ``last.ckpt`` also after the final epoch), early
    stopping, progress bar and the device / strategy options passed through
    (``validate=False``: no validation loop, for runs without a validation set)."""
    _quiet_lightning()
    ckpt_dir = out_dir / "checkpoints"
    every = int(config.checkpoint_every)
    if every < 1:
        raise BiodlInputError(f"checkpoint_every must be >= 1, not {config.checkpoint_every}")
    cbs = [
        *callbacks,
        # best first: last.ckpt then holds the best callback's updated state (best score)
        ModelCheckpoint(
            dirpath=ckpt_dir,
            filename="best",
            monitor=monitor,
            mode=mode,
            save_top_k=1,
            save_last=False,
            every_n_epochs=every,
            enable_version_counter=False,
        ),
        _LastCheckpoint(ckpt_dir, every),
    ]
    if config.patience and config.patience > 0:
        cbs.append(EarlyStopping(monitor=monitor, mode=mode, patience=config.patience))
    kwargs: dict[str, Any] = dict(
        default_root_dir=str(out_dir),
        max_epochs=config.max_epochs,
        min_epochs=config.min_epochs or None,
        accelerator=accelerator_for(config.device),
        devices=config.devices,
        strategy=config.strategy,
        num_nodes=config.num_nodes,
        callbacks=cbs,
        logger=False,
        enable_progress_bar=config.progress,
        enable_model_summary=False,
        deterministic=config.deterministic,
        num_sanity_val_steps=0,
    )
    if config.precision:
        kwargs["precision"] = config.precision
    if not validate:
        kwargs["limit_val_batches"] = 0
    return pl.Trainer(**kwargs)


def export_model(path: Path, model: nn.Module, meta: dict[str, Any]) -> Path:
    """Save weights and the plain-data description needed to rebuild the model.
    Loadable with ``torch.load(..., weights_only=True)``."""
    payload = {
        "format": MODEL_FORMAT,
        "meta": json.dumps(meta, default=str),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    _atomic_torch_save(payload, Path(path))
    return Path(path)


def _read_payload(path: str | Path) -> tuple[Path, dict]:
    p = Path(path)
    if p.is_dir():
        p = p / "model.pt"
    if not p.exists():
        raise BiodlInputError("model file not found (expected a run directory or its model.pt)", path=p)
    try:
        payload = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:
        raise BiodlInputError(f"not a biodl model file ({type(e).__name__}: {e})", path=p) from None
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise BiodlInputError(f"not a biodl model file (expected format {MODEL_FORMAT})", path=p)
    return p, payload


def read_model_meta(path: str | Path) -> dict[str, Any]:
    """The description stored with a model (recipe, task, model kwargs, ...), without
    building the model."""
    return json.loads(_read_payload(path)[1]["meta"])


def load_model(path: str | Path, device: str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a model saved by :func:`export_model` (never unpickles arbitrary objects).

    Returns
    -------
    (model, meta)
        The model in eval mode on ``device`` and its description (recipe, model kwargs,
        task, label names, sequence length, ...).
    """
    from biodl.recipes import get_recipe

    p, payload = _read_payload(path)
    meta = json.loads(payload["meta"])
    model = get_recipe(meta["recipe"]).build(**meta["model_kwargs"])
    model.load_state_dict(payload["state_dict"])
    model.eval().to(torch_device(device))
    return model, meta


def _check_resumable(ckpt: Path, module: nn.Module) -> None:
    """Refuse, with a clear error, to resume from a checkpoint of a different model (other
    options written to the same ``--out``) instead of failing deep inside ``load_state_dict``."""
    try:
        state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    except Exception as e:  # noqa: BLE001 - any unreadable checkpoint gets the same message
        raise BiodlInputError(
            f"cannot resume: the checkpoint is unreadable ({type(e).__name__}); rerun with --no-resume "
            "to start over",
            path=ckpt,
        ) from None
    own = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in state.items()}
    if own != theirs:
        diff = sorted(set(own) ^ set(theirs)) or [k for k in own if own[k] != theirs.get(k)]
        raise BiodlInputError(
            f"cannot resume: the checkpoint was written by a different model (first difference: "
            f"{diff[0]}); the run directory holds an earlier run with other options. Use another "
            "--out, or --no-resume to overwrite it",
            path=ckpt,
        )


def fit(
    model: nn.Module,
    task: str,
    train_ds: Dataset,
    valid_ds: Dataset | None,
    out_dir: str | Path,
    config: TrainConfig,
    meta: dict[str, Any],
    label_names: list[str] | None = None,
    pos_weight: torch.Tensor | None = None,
    collate_fn=None,
    module_cls: type[TaskModule] = TaskModule,
    module_kwargs: dict[str, Any] | None = None,
    threads: int | None = None,
) -> FitResult:
    """Train ``model`` with Lightning, keeping checkpoints in ``out_dir/checkpoints``.

    If ``config.resume`` and ``out_dir/checkpoints/last.ckpt`` exists, training resumes
    from it (epochs already finished are not repeated; the checkpoint is loaded with
    ``weights_only=True``). ``collate_fn`` batches items that are not plain tensors (e.g.
    molecular graphs); ``module_cls`` / ``module_kwargs`` swap in a :class:`TaskModule`
    subclass (e.g. one with a learning-rate schedule); ``threads`` sets torch's CPU threads
    while training (see :func:`cpu_threads`). The best weights (by the task's validation
    metric) are exported to ``out_dir/model.pt``; without a ``valid_ds`` there is no
    validation loop and the final epoch's weights are exported (e.g. a refit on train +
    validation for an epoch budget chosen earlier). Per-epoch metrics go to
    ``out_dir/history.csv``; options and results to ``out_dir/run.json``.
    """
    from biodl.data.sequences import SequenceDataModule

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pl.seed_everything(config.seed, workers=True, verbose=False)
    key, mode = MONITOR[task]
    monitor = f"val_{key}" if valid_ds is not None else "train_loss"
    if valid_ds is None:
        mode = "min"
    module = module_cls(
        model,
        task,
        lr=config.lr,
        weight_decay=config.weight_decay,
        pos_weight=pos_weight,
        label_names=label_names,
        seed=config.seed,
        **(module_kwargs or {}),
    )
    dm = SequenceDataModule(
        train_ds,
        valid_ds,
        batch_size=config.batch_size,
        seed=config.seed,
        num_workers=config.num_workers,
        collate_fn=collate_fn,
    )
    history = HistoryCallback(out / "history.csv")
    trainer = make_trainer(out, config, monitor, mode, callbacks=[history], validate=valid_ds is not None)
    last = out / "checkpoints" / "last.ckpt"
    resumed = str(last) if (config.resume and last.exists()) else None
    if resumed:
        _check_resumable(last, module)
    if not config.resume and last.exists():
        for f in (out / "checkpoints").glob("*.ckpt"):
            f.unlink()
    _atomic_json({"status": "running", "config": asdict(config), "meta": meta}, out / "run.json")
    try:
        with cpu_threads(threads if torch_device(config.device).type == "cpu" else None):
            trainer.fit(module, datamodule=dm, ckpt_path=resumed, weights_only=True if resumed else None)
    except (KeyboardInterrupt, SystemExit):
        raise
    if not trainer.is_global_zero:
        # other ranks of a multi-process (DDP) run: rank 0 exports and reports
        return FitResult(
            out, out / "model.pt", None, trainer.current_epoch, {}, resumed, is_global_zero=False
        )
    best = out / "checkpoints" / "best.ckpt"
    # without a validation set there is nothing to select on (the lowest training loss is
    # in-sample): the final epoch's weights are exported, e.g. a refit on train + valid
    # for an epoch count chosen on validation earlier
    # with checkpoint_every > 1 the best is chosen among the checkpointed epochs only, so that
    # the epoch reported is the one whose weights are exported
    pick = best_row(history.rows, monitor, mode, config.checkpoint_every) if valid_ds is not None else None
    src = best if (pick is not None and best.exists()) else last
    if src.exists():
        state = torch.load(src, map_location="cpu", weights_only=True)["state_dict"]
        module.load_state_dict(state)
    if pick is None and history.rows:
        pick = history.rows[-1]
    best_epoch = int(pick["epoch"]) if pick is not None else None
    val_metrics: dict[str, float] = {k: v for k, v in (pick or {}).items() if k.startswith("val_")}
    meta = dict(meta, task=task, label_names=label_names, best_epoch=best_epoch, val_metrics=val_metrics)
    model_path = export_model(out / "model.pt", module.model, meta)
    result = FitResult(out, model_path, best_epoch, trainer.current_epoch, val_metrics, resumed)
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
    return result


@torch.no_grad()
def predict_logits(
    model: nn.Module,
    dataset: Dataset,
    batch_size: int = 256,
    device: str = "cpu",
    progress: bool = False,
    rc_average: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Raw outputs of ``model`` over a dataset, in dataset order.

    With ``rc_average``, each output is the mean of the outputs for the sequence and its
    reverse complement (one-hot ``A, C, G, T`` flipped on both axes).

    Returns
    -------
    (logits, targets)
        ``(n, n_outputs)`` and ``(n, n_labels)`` float32 arrays.
    """
    dev = torch_device(device)
    model = model.to(dev).eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    outs, ys = [], []
    it = loader
    if progress:
        from rich.progress import track

        it = track(loader, description="predicting", total=len(loader))
    for x, y in it:
        x = x.to(dev)
        y_hat = model(x)
        if rc_average:
            y_hat = (y_hat + model(x.flip(dims=(-2, -1)))) / 2
        outs.append(y_hat.float().cpu())
        ys.append(y)
    if not outs:
        raise BiodlError("nothing to predict: the input is empty")
    return torch.cat(outs).numpy(), torch.cat(ys).numpy()
