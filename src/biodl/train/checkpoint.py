"""Run metadata (:class:`RunMeta`), model files and atomic writes.

Every kind writes the same two things: ``model.pt`` (weights plus the :class:`RunMeta` as JSON,
loadable with ``torch.load(..., weights_only=True)``; the network is rebuilt through the
registry, never unpickled) and ``run.json`` (the same :class:`RunMeta`, one schema for every
kind). Model files written before this schema (``biodl-model-1``, a flat dict) still load:
:meth:`RunMeta.from_dict` maps them.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from biodl.errors import BiodlInputError

MODEL_FORMAT = "biodl-model-2"
LEGACY_MODEL_FORMATS = ("biodl-model-1",)
RUN_SCHEMA = 2

# plugin module of a biodl-model-1 file -> kind
_LEGACY_KINDS = {
    "biodl.windows": "windows",
    "biodl.molecules.plugin": "molecules",
    "biodl.expression.plugin": "expression",
    "biodl.cells.plugin": "cells",
}
_LEGACY_COMMON = {
    "recipe",
    "plugin",
    "model_kwargs",
    "task",
    "label_names",
    "classes",
    "best_epoch",
    "val_metrics",
}
_LEGACY_SPLITS = {"n_train", "n_valid", "n_test"}


def _versions() -> dict[str, str]:
    from biodl import __version__

    return {
        "biodl": __version__,
        "torch": torch.__version__.split("+")[0],
        "python": platform.python_version(),
    }


@dataclass
class RunMeta:
    """What a training run was and produced: one versioned schema for every data kind.

    Attributes
    ----------
    kind
        Data kind (``sequences``, ``windows``, ``molecules``, ``expression``, ``cells``, ...):
        evaluate / predict / report dispatch on it.
    recipe
        Registry name of the system.
    task
        ``binary``, ``multilabel``, ``multiclass``, ``regression`` or ``reconstruction``.
    model_kwargs
        Keyword arguments that rebuild the network through the registry.
    label_names, classes
        Output names; class names of a multiclass model.
    data
        What the kind needs to read new inputs like the training data (sequence length,
        N value, genome and window geometry, genes, markers, ...): see the kind's ``Data``
        dataclass.
    options
        The kind options of the training run, as resolved (defaults filled in).
    splits
        Sizes of the training / validation / test sets and how they were made.
    training
        The :class:`~biodl.train.fit.TrainConfig` of the run.
    metrics
        ``{"val": {...}, "test": {...}}`` (validation at the best epoch, held-out test).
    best_epoch, epochs_run, resumed_from
        Training outcome.
    thresholds
        Decision thresholds of a binary / multi-label model, chosen on the validation split
        after training: ``{"values": [one probability per output], "chosen_on": "validation",
        "criterion": "max MCC", "n": validation items, "mcc": [validation MCC per output]}``;
        empty when none was chosen (no validation split, another task, an older file).
    torch_threads
        torch's CPU (intra-op) threads while training: the same seed gives the same numbers
        at the same thread count.
    ensemble
        Members of the model (``biodl train --ensemble K``): K networks built from
        ``model_kwargs`` with seeds ``seed .. seed + K - 1``, predicting the mean of their
        outputs (:class:`~biodl.train.ensemble.Ensemble`); 1 for a single network.
    member_kwargs
        Keyword arguments of each member when they differ (``--calibrate N --calibrate-top K``:
        the K best settings averaged); empty when every member is built from ``model_kwargs``.
    request
        What defines the run, as asked by the ``biodl train`` call that started it (see
        :func:`biodl.pipeline.run_request`): the kind options that shape the training data (input
        files as absolute paths, and their content as ``inputs``: size and a checksum), every
        model option, the seed, learning rate, weight decay and batch size, and the layout
        (``--ensemble``, ``--calibrate``, ``--calibrate-top``). A rerun into the same ``--out``
        resumes only when these are the same; empty in older files.
    calibration
        What ``biodl train --calibrate N`` tried and chose
        (:class:`~biodl.train.calibrate.Calibration` as a dict: protocol, one row per trial with
        its setting and cross-validation score, the chosen trials); empty without calibration.
    status
        ``running`` or ``finished``.
    versions
        biodl, torch and Python versions that wrote the run.
    schema
        Version of this schema.
    """

    kind: str
    recipe: str
    task: str
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    label_names: list[str] | None = None
    classes: list[str] | None = None
    data: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    splits: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    best_epoch: int | None = None
    epochs_run: int | None = None
    resumed_from: str | None = None
    status: str = "running"
    thresholds: dict[str, Any] = field(default_factory=dict)
    torch_threads: int | None = None
    ensemble: int = 1
    member_kwargs: list[dict[str, Any]] = field(default_factory=list)
    calibration: dict[str, Any] = field(default_factory=dict)
    request: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=_versions)
    schema: int = RUN_SCHEMA

    @property
    def val_metrics(self) -> dict[str, Any]:
        return dict(self.metrics.get("val") or {})

    @property
    def test_metrics(self) -> dict[str, Any]:
        return dict(self.metrics.get("test") or {})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        from biodl.io._util import json_safe  # undefined metrics (NaN) as null: strict JSON

        return json.dumps(json_safe(self.to_dict()), indent=2, default=str)

    def replace(self, **changes: Any) -> RunMeta:
        """A copy with ``changes``; the dict and list fields not changed are copied too, so the
        copy can be changed without changing this one."""
        import copy

        keep = {
            f.name: copy.deepcopy(getattr(self, f.name))
            for f in dataclasses.fields(self)
            if f.name not in changes
        }
        return RunMeta(**{**keep, **changes})

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunMeta:
        """A :class:`RunMeta` from its dict (missing fields get their defaults), or from the
        flat dict of a ``biodl-model-1`` file."""
        if "schema" not in d or "kind" not in d:
            return cls._from_legacy(d)
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @classmethod
    def _from_legacy(cls, d: dict[str, Any]) -> RunMeta:
        kind = _LEGACY_KINDS.get(d.get("plugin") or "", "sequences")
        data = {k: v for k, v in d.items() if k not in _LEGACY_COMMON | _LEGACY_SPLITS}
        labels = d.get("label_names") or d.get("target_names")
        return cls(
            kind=kind,
            recipe=d["recipe"],
            task=d.get("task") or ("reconstruction" if d["recipe"] == "adage" else "binary"),
            model_kwargs=dict(d.get("model_kwargs") or {}),
            label_names=list(labels) if labels is not None else None,
            classes=d.get("classes"),
            data=data,
            splits={k: d[k] for k in _LEGACY_SPLITS if k in d},
            metrics={"val": dict(d.get("val_metrics") or {})},
            best_epoch=d.get("best_epoch"),
            status="finished",
            versions={"biodl": "< 0.2 (biodl-model-1)"},
        )


def data_as(cls, data: dict[str, Any]):
    """The kind's typed ``Data`` dataclass from ``RunMeta.data`` (missing keys: defaults;
    keys the dataclass does not know are ignored, so older and newer files both load)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


# ----------------------------------------------------------------------------- writing
def atomic_torch_save(obj, path: str | Path) -> Path:
    """``torch.save`` through biodl's one safe writer (:func:`biodl.io._util.atomic_output`)."""
    from biodl.io._util import atomic_output

    with atomic_output(path) as tmp, open(tmp, "wb") as fh:
        # to a file object, torch names the archive inside "archive", not after the temporary
        # file (which carried the writer's process id and host): the same model, the same bytes
        torch.save(obj, fh)
    return Path(path)


def atomic_json(obj, path: str | Path) -> Path:
    """JSON (indented, non-JSON values as strings, NaN / inf as null) written atomically."""
    from biodl.io._util import atomic_write_text, json_safe

    return atomic_write_text(path, json.dumps(json_safe(obj), indent=2, default=str) + "\n")


def remove_checkpoints(run_dir: str | Path) -> int:
    """Delete a run's ``checkpoints/*.ckpt`` (and the folder once empty); the bytes freed."""
    ck = Path(run_dir) / "checkpoints"
    freed = 0
    for f in [*ck.glob("*.ckpt"), *ck.glob("stopped.json")]:  # (stopped.json: fit's record of an early stop)
        freed += f.stat().st_size
        f.unlink()
    if ck.is_dir() and not any(ck.iterdir()):
        ck.rmdir()
    return freed


def write_run_json(out_dir: str | Path, meta: RunMeta) -> Path:
    """``out_dir/run.json``: the run's :class:`RunMeta`."""
    return atomic_json(meta.to_dict(), Path(out_dir) / "run.json")


def read_run_json(out_dir: str | Path) -> RunMeta:
    """The :class:`RunMeta` in ``out_dir/run.json``."""
    p = Path(out_dir) / "run.json"
    try:
        return RunMeta.from_dict(json.loads(p.read_text()))
    except FileNotFoundError:
        raise BiodlInputError(
            "no run.json here; is this a run directory of `biodl train`?", path=p.parent
        ) from None
    except (ValueError, KeyError, TypeError) as e:
        raise BiodlInputError(f"not a biodl run.json ({type(e).__name__}: {e})", path=p) from None


def save_model(path: str | Path, model: nn.Module, meta: RunMeta) -> Path:
    """Save weights and the :class:`RunMeta` needed to rebuild the model (atomic;
    loadable with ``torch.load(..., weights_only=True)``)."""
    payload = {
        "format": MODEL_FORMAT,
        "meta": json.dumps(meta.to_dict(), default=str),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    return atomic_torch_save(payload, path)


def _read_payload(path: str | Path) -> tuple[Path, dict]:
    p = Path(path)
    if p.is_dir():
        p = p / "model.pt"
    if not p.exists():
        raise BiodlInputError("model file not found (expected a run directory or its model.pt)", path=p)
    try:
        payload = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        if "Weights only load failed" in first or isinstance(e, pickle.UnpicklingError):
            first = "not a file torch.load can read safely (weights_only): corrupt, or not a model"
        elif "PytorchStreamReader" in first:  # a zip archive cut short: an interrupted copy or download
            first = "the file is incomplete or corrupt (its zip archive cannot be read); copy it again"
        elif len(first) > 200:  # torch's messages run on: cut at a sentence end
            cut = first[:200]
            first = cut[: cut.rfind(". ") + 1] if cut.rfind(". ") > 40 else cut.rstrip() + " ..."
        raise BiodlInputError(f"not a biodl model file ({type(e).__name__}: {first})", path=p) from None
    if not isinstance(payload, dict) or payload.get("format") not in (MODEL_FORMAT, *LEGACY_MODEL_FORMATS):
        raise BiodlInputError(f"not a biodl model file (expected format {MODEL_FORMAT})", path=p)
    return p, payload


def read_model_meta(path: str | Path) -> RunMeta:
    """The :class:`RunMeta` stored with a model, without building the model."""
    p, payload = _read_payload(path)
    try:
        return RunMeta.from_dict(json.loads(payload["meta"]))
    except (ValueError, KeyError, TypeError) as e:
        raise BiodlInputError(
            f"the model's description is unreadable ({type(e).__name__}: {e})", path=p
        ) from None


def load_model(path: str | Path, device: str = "cpu") -> tuple[nn.Module, RunMeta]:
    """Rebuild a model saved by :func:`save_model` (never unpickles arbitrary objects).

    Returns
    -------
    (model, meta)
        The network in eval mode on ``device`` and its :class:`RunMeta`.
    """
    from biodl.registry import get_recipe
    from biodl.train.predict import torch_device

    p, payload = _read_payload(path)
    meta = read_model_meta(p)
    recipe = get_recipe(meta.recipe)
    # the weights drawn when the network is built are replaced by the file's: drawn from a
    # forked generator, so loading a model leaves the caller's random numbers as they were
    with torch.random.fork_rng(devices=[]):
        if int(meta.ensemble or 1) > 1:
            from biodl.train.ensemble import Ensemble

            kws = meta.member_kwargs or [meta.model_kwargs] * int(meta.ensemble)
            model = Ensemble([recipe.build(**kw) for kw in kws])
        else:
            model = recipe.build(**meta.model_kwargs)
    model.load_state_dict(payload["state_dict"])
    model.eval().to(torch_device(device))
    return model, meta


def epochs_done(ckpt: Path) -> int | None:
    """The number of epochs a Lightning checkpoint has finished (``None`` if it cannot be read)."""
    try:
        return int(torch.load(ckpt, map_location="cpu", weights_only=True).get("epoch", -1)) + 1
    except Exception:  # noqa: BLE001 - an unreadable checkpoint: the caller says or refuses
        return None


def fewer_epochs_error(done: int, asked: int, ckpt: Path, option: str = "--epochs") -> BiodlInputError:
    """The refusal to resume a checkpoint of ``done`` epochs for a training of ``asked`` (fewer)."""
    sep = "=" if option.startswith("--set") else " "
    err = BiodlInputError(
        f"cannot resume: the checkpoint has {done} epochs done, more than the {asked} asked for; give "
        f"{option}{sep}{done} or more to go on with this training, or --no-resume to train anew for "
        f"{asked} (the run's files are unchanged)",
        path=ckpt,
    )
    err.run_unchanged = True  # raised before anything was written: train() puts run.json back
    return err


def check_resumable(ckpt: Path, module: nn.Module) -> int:
    """The number of epochs a checkpoint has finished; refuses, with a clear error, to resume
    from a checkpoint of a different model (other options written to the same ``--out``)
    instead of failing deep inside ``load_state_dict``."""
    try:
        payload = torch.load(ckpt, map_location="cpu", weights_only=True)
        state = payload["state_dict"]
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
    return int(payload.get("epoch", -1)) + 1
