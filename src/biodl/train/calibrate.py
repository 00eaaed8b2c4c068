"""Calibration: DeepBind's hyperparameter protocol for any recipe (``biodl train --calibrate N``).

Alipanahi et al. (2015; Supplementary Notes, "calibration", and the ``nbtcode`` release:
``deepbind_util.calibrate`` / ``train`` with ``cfg/classification/*.cfg`` and
``cfg/trainers/default.cfg``) chose the hyperparameters of every DeepBind model per experiment:
a random search over published ranges (learning rate, momentum, weight decay, dropout, hidden
units; motif length and pooling per data type), each setting scored by 3-fold cross-validation
on the *training* data only, then the best setting retrained on all training data. This module
holds the pieces that do not depend on a data kind; :func:`biodl.pipeline.train` runs the protocol:

1. the settings: trial 1 is the run's own setting (recipe defaults plus what the user gave), trials
   2..N are drawn from the recipe's :attr:`~biodl.registry.Recipe.search_space` (or
   :data:`GENERIC_SPACE`) with the run's seed (:func:`draw_settings`); options the user set are
   not searched;
2. the folds: a seeded, class-stratified subsample of at most ``calibrate_subsample`` rows of the
   training split (never the validation split, never the test set), cut into ``calibrate_folds``
   folds (:func:`calibration_folds`);
3. each setting trained on all folds but one for a few epochs and scored on the one left out
   (its best epoch by the task's metric, as ``nbtcode`` kept the best of its checkpoints), the
   mean over folds being its score; one line per finished trial in ``OUT/calibration.jsonl``
   (:class:`TrialStore`): a rerun skips them;
4. the best setting (or the ``calibrate_top`` best, averaged as one model) retrained through the
   normal path on the training split, validated on the validation split.

Deviations from the paper, stated: biodl trains with AdamW (its beta1 = 0.9 in place of the
paper's momentum 0.95-0.99, which is therefore not searched) and with the recipe's early stopping
instead of a fixed 20,000 steps; folds are trained for ``calibrate_epochs`` epochs (default:
enough for ~20,000 examples, 3 to the recipe's cap) on a subsample, so that a large experiment
calibrates in minutes on a CPU.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from biodl.errors import BiodlInputError

__all__ = [
    "GENERIC_SPACE",
    "TRAIN_KEYS",
    "Calibration",
    "Rows",
    "TrialStore",
    "calibration_folds",
    "choose",
    "draw_settings",
    "fold_epochs",
    "search_space",
    "split_setting",
]

TRAIN_KEYS = ("lr", "weight_decay")
"""Searched names that are training options (:class:`~biodl.train.fit.TrainConfig` fields); the
others are network parameters."""

GENERIC_SPACE: dict[str, Any] = {
    "lr": ("log", 3e-4, 1e-2),
    "weight_decay": ("log", 1e-10, 1e-3),
    "dropout": [0.0, 0.1, 0.2, 0.3, 0.5],
}
"""The space of recipes that declare none: learning rate and weight decay (log-uniform), and
dropout where the network has a ``dropout`` parameter."""

#: Examples a fold trains on, in all, when ``calibrate_epochs`` is automatic.
FOLD_EXAMPLES = 20_000


def search_space(recipe) -> dict[str, Any]:
    """The ranges ``--calibrate`` searches for ``recipe`` (a :class:`~biodl.registry.Recipe`): its
    declared :attr:`~biodl.registry.Recipe.search_space`, else :data:`GENERIC_SPACE` less the
    network parameters the recipe's network does not have. Every range is checked."""
    params = set(recipe.model_params())
    space = dict(recipe.search_space) or {
        k: v for k, v in GENERIC_SPACE.items() if k in TRAIN_KEYS or k in params
    }
    for name, rng in space.items():
        if name not in TRAIN_KEYS and name not in params:
            raise ValueError(f"{recipe.name}: search_space names {name!r}, not a parameter of its network")
        if isinstance(rng, tuple):
            ok = len(rng) == 3 and rng[0] in ("log", "uniform") and rng[1] < rng[2]
            ok = ok and (rng[0] != "log" or rng[1] > 0)
            if not ok:
                raise ValueError(f"{recipe.name}: bad range for {name!r}: {rng!r}")
        elif not isinstance(rng, list) or not rng:
            raise ValueError(f"{recipe.name}: {name!r} needs a (kind, lo, hi) range or a list of values")
    return space


def _draw(rng: np.random.Generator, spec) -> Any:
    if isinstance(spec, tuple):
        kind, lo, hi = spec
        if kind == "log":
            return float(10 ** rng.uniform(math.log10(lo), math.log10(hi)))
        return float(rng.uniform(lo, hi))
    v = spec[int(rng.integers(len(spec)))]
    return v.item() if isinstance(v, np.generic) else v


def draw_settings(
    space: dict[str, Any], n: int, seed: int, base: dict[str, Any], fixed: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """``n`` settings: the first is ``base`` (the run's own values of every searched name), the
    others ``base`` with every name not in ``fixed`` drawn from ``space`` (log-uniform, uniform or
    uniform choice) by ``numpy.random.default_rng(seed)``. Draws are made for fixed names too, so
    a seed gives the same values of the other names whatever the user fixed."""
    rng = np.random.default_rng(seed)
    out = [dict(base)]
    for _ in range(n - 1):
        s = dict(base)
        for name, spec in space.items():
            v = _draw(rng, spec)
            if name not in fixed:
                s[name] = v
        out.append(s)
    return out


def split_setting(setting: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(network options, training options)`` of a setting."""
    model = {k: v for k, v in setting.items() if k not in TRAIN_KEYS}
    train = {k: v for k, v in setting.items() if k in TRAIN_KEYS}
    return model, train


def calibration_folds(
    labels: np.ndarray | None, n: int, folds: int, subsample: int, seed: int
) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """The rows of a training split that calibration uses and its cross-validation folds.

    Parameters
    ----------
    labels
        ``(n, n_labels)`` training targets (NaN = missing) or ``None``; the first column
        stratifies both the subsample and the folds when it has few distinct values
        (classification), so every fold holds every class in proportion.
    n
        Rows of the training split.
    folds
        Number of folds (>= 2).
    subsample
        Use at most this many rows (0: all), drawn at random (seeded, stratified).
    seed
        Seed of the subsample and of the folds.

    Returns
    -------
    (rows, [(train_rows, held_out_rows), ...])
        Indices into the training split: ``rows`` sorted, each fold's pair a partition of ``rows``.
    """
    rng = np.random.default_rng([int(seed), 0xCA11B])
    strata = np.zeros(n, dtype=np.int64)
    if labels is not None and len(labels) == n and np.asarray(labels).size:
        first = np.asarray(labels, dtype=np.float64).reshape(n, -1)[:, 0]
        vals = np.unique(first[~np.isnan(first)])
        if len(vals) <= 20:  # classes: stratify (NaN rows form their own stratum)
            cls = np.searchsorted(vals, np.nan_to_num(first))
            strata = np.where(np.isnan(first), -1, cls).astype(np.int64)
    take = n if subsample <= 0 or subsample >= n else int(subsample)
    chosen, fold_of = [], []
    for c in np.unique(strata):
        idx = rng.permutation(np.flatnonzero(strata == c))
        k = int(round(len(idx) * take / n)) if take < n else len(idx)
        idx = idx[:k]
        chosen.append(idx)
        # round-robin from a random offset, so that every fold gets its share of every class
        fold_of.append((np.arange(len(idx)) + int(rng.integers(folds))) % folds)
    rows = np.concatenate(chosen) if chosen else np.zeros(0, np.int64)
    which = np.concatenate(fold_of) if fold_of else np.zeros(0, np.int64)
    order = np.argsort(rows, kind="stable")
    rows, which = rows[order], which[order]
    pairs = [(rows[which != f], rows[which == f]) for f in range(folds)]
    return rows, pairs


def fold_epochs(n_fold_train: int, cap: int, given: int = 0) -> int:
    """Epochs of one fold's training: ``given`` when > 0, else enough for ~20,000 examples,
    at least 3 and at most the run's cap."""
    if given > 0:
        return int(given)
    return int(max(1, min(cap, max(3, math.ceil(FOLD_EXAMPLES / max(1, n_fold_train))))))


class Rows(Dataset):
    """Rows ``index`` of ``dataset`` (a fold of the training split): items, batches
    (``__getitems__``), ``set_epoch`` and plain attributes (``n_value``, ``length``) pass through."""

    def __init__(self, dataset: Dataset, index: Sequence[int]) -> None:
        self.dataset = dataset
        self.index = np.asarray(index, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.index)

    def __getattr__(self, name: str):
        if name in ("dataset", "index") or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def __getitem__(self, i: int):
        return self.dataset[int(self.index[i])]

    def __getitems__(self, idx: list[int]):
        rows = [int(self.index[i]) for i in idx]
        inner = getattr(self.dataset, "__getitems__", None)
        return inner(rows) if inner is not None else [self.dataset[r] for r in rows]


@dataclass
class Calibration:
    """``RunMeta.calibration``: what ``--calibrate N`` tried and chose.

    Attributes
    ----------
    metric, mode
        The task's model-selection metric (``auroc``, ``max``; ``loss``, ``min``) and its direction.
    folds, epochs, n_rows, n_train, subsample, seed
        The protocol: folds, epochs per fold, training rows used (of ``n_train``; at most
        ``subsample``), seed of the draws and folds.
    space
        The ranges searched (``recipe`` or ``generic``, and their values).
    fixed
        Searched names the user set (not searched).
    trials
        One row per finished trial: ``trial`` (1-based), ``setting``, ``score`` (mean over
        folds), ``fold_scores``, ``best_epochs`` (per fold), ``seconds``, ``resumed``.
    chosen
        The trials refitted (1-based; one, or ``calibrate_top``), best first.
    requested, stopped
        Trials asked for, and why fewer ran (the ``--calibrate-budget``), if they did.
    seconds
        Seconds calibrating in this process (trials read back from ``calibration.jsonl``: 0).
    """

    metric: str
    mode: str
    folds: int
    epochs: int
    n_rows: int
    n_train: int
    subsample: int
    seed: int
    space: dict[str, Any]
    fixed: list[str] = field(default_factory=list)
    trials: list[dict[str, Any]] = field(default_factory=list)
    chosen: list[int] = field(default_factory=list)
    requested: int = 0
    stopped: str | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self), default=str))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibration:
        names = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in names})

    @property
    def best(self) -> dict[str, Any]:
        """The setting of the best trial."""
        by = {t["trial"]: t for t in self.trials}
        return dict(by[self.chosen[0]]["setting"])


def choose(trials: list[dict[str, Any]], mode: str, top: int = 1) -> list[int]:
    """The ``top`` best trials (1-based numbers, best first) by ``score`` (``max`` or ``min``);
    trials without a finite score are never chosen, ties go to the earlier trial."""
    ok = [t for t in trials if t.get("score") is not None and math.isfinite(float(t["score"]))]
    if not ok:
        diverged = sum(1 for t in trials if t.get("diverged"))
        if diverged:
            raise BiodlInputError(
                f"calibration: no trial produced a cross-validation score; the training of {diverged} of "
                f"the {len(trials)} diverged (weights not finite): a lower learning rate (--lr) usually "
                "fixes this"
            )
        raise BiodlInputError(
            "calibration: no trial produced a cross-validation score (too few training items per fold, "
            "or a fold with one class only); train without --calibrate or give more data"
        )
    sign = -1.0 if mode == "max" else 1.0
    ok.sort(key=lambda t: (sign * float(t["score"]), int(t["trial"])))
    return [int(t["trial"]) for t in ok[: max(1, int(top))]]


class TrialStore:
    """``OUT/calibration.jsonl``: one JSON line per finished trial, with the protocol it ran
    under. A rerun reuses a line when its trial number, setting and protocol are the run's own
    (anything else is trained again); lines of another protocol (other ``--epochs``, ``--patience``,
    ...) are kept in the file, and reused if that protocol comes back. The file is rewritten
    atomically after every trial."""

    def __init__(self, path: str | Path, protocol: dict[str, Any]) -> None:
        self.path = Path(path)
        self.protocol = json.loads(json.dumps(protocol, default=str))
        self.rows: dict[int, dict[str, Any]] = {}
        self.others: list[dict[str, Any]] = []  # trials of another protocol, kept
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                try:
                    row = json.loads(line)
                except ValueError:
                    continue  # a torn line of a killed write: that trial runs again
                if not (isinstance(row, dict) and "trial" in row):
                    continue
                if row.get("protocol") == self.protocol:
                    self.rows[int(row["trial"])] = row
                else:
                    self.others.append(row)

    def protocol_changes(self) -> list[str]:
        """``name old -> new`` for each protocol entry in which the kept trials of another
        protocol (the latest one) differ from this run's (empty when there are none)."""
        if not self.others:
            return []
        old = self.others[-1].get("protocol") or {}
        out = []
        for n, v in self.protocol.items():
            was = old.get(n)
            if was == v:
                continue
            if isinstance(was, dict) and isinstance(v, dict):  # the options: the ones that differ
                out += [f"{n}.{k} {json.dumps(was.get(k))} -> {json.dumps(v.get(k))}"
                        for k in sorted(set(was) | set(v)) if was.get(k) != v.get(k)]  # fmt: skip
            else:
                out.append(f"{n} {json.dumps(was)} -> {json.dumps(v)}")
        return out

    def done(self, trial: int, setting: dict[str, Any]) -> dict[str, Any] | None:
        """The stored row of ``trial`` if it ran with ``setting``, else ``None``."""
        row = self.rows.get(int(trial))
        if row is None or row.get("setting") != json.loads(json.dumps(setting, default=str)):
            return None
        return row

    def add(self, row: dict[str, Any]) -> None:
        from biodl.io._util import atomic_write_text

        row = json.loads(json.dumps({**row, "protocol": self.protocol}, default=str))
        self.rows[int(row["trial"])] = row
        kept = [*self.others, *(self.rows[t] for t in sorted(self.rows))]
        atomic_write_text(self.path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in kept))

    def run_trial(
        self,
        trial: int,
        setting: dict[str, Any],
        folds: list[tuple[np.ndarray, np.ndarray]],
        fit_fold: Callable[[np.ndarray, np.ndarray, Path], Any],
        metric: str,
        work: Path,
    ) -> dict[str, Any]:
        """Train and score one setting: ``fit_fold(train_rows, held_out_rows, directory)`` returns
        the :class:`~biodl.train.fit.FitResult` of one fold (its ``val_<metric>`` at the best
        epoch is the fold's score); the trial's row (mean over the finite fold scores) is added
        here and the fold runs under ``work/trialT`` are removed (their weights are not needed)."""
        import shutil
        import time

        t0 = time.perf_counter()
        scores, best_epochs, diverged = [], [], 0
        for f, (tr, va) in enumerate(folds, 1):
            res = fit_fold(tr, va, Path(work) / f"trial{trial}" / f"fold{f}")
            scores.append(float(res.val_metrics.get(f"val_{metric}", math.nan)))
            best_epochs.append(res.best_epoch)
            diverged += int(bool(getattr(res, "diverged", False)))
        finite = [v for v in scores if math.isfinite(v)]
        row = {
            "trial": trial,
            "setting": setting,
            "score": sum(finite) / len(finite) if finite else None,
            "fold_scores": scores,
            "best_epochs": best_epochs,
            "seconds": round(time.perf_counter() - t0, 2),
        }
        if diverged:  # folds whose training diverged (weights not finite): scored by the epochs before
            row["diverged"] = diverged
        self.add(row)
        shutil.rmtree(Path(work) / f"trial{trial}", ignore_errors=True)
        return row
