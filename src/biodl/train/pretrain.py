"""Greedy layer-wise pre-training of stacked denoising autoencoders (PEDLA; Wang et al.'s CpG
SAE): every hidden layer in turn is trained to reconstruct its clean input from a corrupted
copy, through the one training runner (:func:`biodl.train.fit`), before the network is
fine-tuned with its supervised head."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from torch import nn


def pretrain_layers(
    model: nn.Module,
    train_ds,
    valid_ds,
    out_dir: str | Path,
    config,
    epochs: int,
    *,
    log: Callable[[str], None] | None = None,
) -> list:
    """Pre-train each of ``model.encoders`` in turn for ``epochs`` epochs (Adam, no early
    stopping), the other layers and the head frozen; ``model.stage`` is ``pretrain:k`` while
    layer ``k`` trains (the model's ``loss`` then returns its reconstruction loss) and
    ``finetune`` afterwards. Checkpoints go to ``out_dir/pretrain<k+1>/`` (a killed run
    resumes there). Returns the :class:`~biodl.train.fit.FitResult` of each layer.

    ``model`` needs ``encoders``, ``decoders`` (module lists), ``head``, ``n_layers`` and a
    ``stage`` attribute read by its ``loss(batch)`` (see :class:`biodl.models.features.PEDLA`).
    """
    from biodl.train import DataModule, TrainingPlan, fit
    from biodl.train.fit import stage_config

    results = []
    if not epochs:
        return results
    c = replace(config, max_epochs=int(epochs), patience=0)
    trained = False
    for k in range(model.n_layers):
        model.stage = f"pretrain:{k}"
        for i, enc in enumerate(model.encoders):
            enc.requires_grad_(i == k)
            model.decoders[i].requires_grad_(i == k)
        model.head.requires_grad_(False)
        plan = TrainingPlan(model, "reconstruction", lr=c.lr, seed=c.seed, optimizer="adam")
        if log:
            log(f"pre-training layer {k + 1}/{model.n_layers} ({epochs} epochs)")
        ck = stage_config(c, trained)  # after a stage that trained, the later ones start over
        res = fit(
            plan,
            DataModule(train_ds, valid_ds, batch_size=ck.batch_size, seed=ck.seed),
            Path(out_dir) / f"pretrain{k + 1}",
            ck,
            epochs_option="--set pretrain_epochs",
        )
        trained = trained or res.trained
        results.append(res)
    model.stage = "finetune"
    model.requires_grad_(True)
    return results
