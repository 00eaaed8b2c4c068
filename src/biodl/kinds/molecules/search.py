"""Random hyperparameter search for the molecule recipes (the protocol of Duvenaud et al. 2015).

The paper tuned every model with a random search scored on a validation set and then
retrained the chosen configuration on training + validation data. ``biodl train --system
neural-fp --set search_trials=12`` does the same (see :func:`biodl.kinds.molecules.kind.train`);
``bench/neural_fp.py --trials 12`` uses the same space, and on Delaney solubility it takes
neural FP + NN from 0.54 (fixed defaults) to 0.435 test MSE (bench/README_neural_fp.md).

Lists are sampled uniformly, ``(lo, hi)`` tuples log-uniformly. The ranges were set before any
run (the paper does not list its own).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["SEARCH", "TRAIN_KEYS", "sample_config"]

SEARCH: dict[str, dict[str, Any]] = {
    "neural-fp": {
        "fp_length": [64, 128, 256],
        "radius": [2, 3, 4, 5],
        "conv_width": [32, 64, 128],
        "hidden": [64, 128, 256],
        "dropout": [0.0, 0.1, 0.2, 0.3],
        "lr": (3e-4, 5e-3),
        "weight_decay": (1e-5, 3e-1),
    },
    "circular-fp": {
        "fp_length": [512, 1024, 2048],
        "radius": [1, 2, 3],
        "hidden": [64, 128, 256, 512],
        "dropout": [0.0, 0.1, 0.2, 0.3, 0.5],
        "lr": (3e-4, 5e-3),
        "weight_decay": (1e-5, 3e-1),
    },
}
TRAIN_KEYS = ("lr", "weight_decay")
"""Keys of :data:`SEARCH` that are training options (the others are model options)."""


def sample_config(
    recipe: str, head: str, rng: np.random.Generator, fixed: dict[str, Any] | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One random configuration: ``(model options, training options)``.

    ``head`` is ``mlp`` or ``linear`` (a linear head has no ``hidden`` / ``dropout``). Keys in
    ``fixed`` (options the user set) are not searched, but the random draws are made in
    the same order either way, so a seed gives the same draws for the other keys.
    """
    if recipe not in SEARCH:
        raise ValueError(f"no search space for recipe {recipe!r} (known: {', '.join(SEARCH)})")
    fixed = fixed or {}
    model, train = {}, {}
    for key, space in SEARCH[recipe].items():
        if isinstance(space, tuple):
            value: Any = float(10 ** rng.uniform(np.log10(space[0]), np.log10(space[1])))
        else:
            value = space[int(rng.integers(len(space)))]
        if key in fixed or (head == "linear" and key in ("hidden", "dropout")):
            continue
        (train if key in TRAIN_KEYS else model)[key] = value
    model["head"] = head
    return model, train
