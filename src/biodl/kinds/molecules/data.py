"""Molecule datasets and the network inputs of each recipe (graphs or Morgan bits).

Training and scoring go through the shared engine (:func:`biodl.train.fit_model`,
:func:`biodl.train.predict`); the only molecule-specific piece is the DataLoader collate that
stacks molecular graphs into a :class:`~biodl.kinds.molecules.featurize.GraphBatch`
(``collate_fn=collate_molecules`` for :func:`~biodl.train.fit_model`; :func:`predict_molecules`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from biodl.kinds.molecules.featurize import MolGraph, collate_molecules, mols_to_graphs, morgan_fingerprints
from biodl.train.predict import predict

__all__ = ["MoleculeDataset", "featurize_for", "predict_molecules"]


class MoleculeDataset(Dataset):
    """``(x, y)`` pairs: ``x`` a :class:`MolGraph` or a fingerprint row, ``y`` ``(n_targets,)``.

    Parameters
    ----------
    inputs
        Featurised molecules: a list of :class:`MolGraph` or an ``(n, L)`` fingerprint array.
    targets
        ``(n, n_targets)`` float32 (NaN = missing) or ``None`` (unlabelled: ``y`` is empty).
    """

    def __init__(self, inputs: Sequence[MolGraph] | np.ndarray, targets: np.ndarray | None) -> None:
        self.inputs = inputs
        n = len(inputs)
        self.targets = (
            torch.from_numpy(np.asarray(targets, dtype=np.float32))
            if targets is not None
            else torch.zeros(n, 0)
        )
        self._fp = isinstance(inputs, np.ndarray)
        if self._fp:
            self._x = torch.from_numpy(np.asarray(inputs, dtype=np.float32))

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, i: int):
        x = self._x[i] if self._fp else self.inputs[i]
        return x, self.targets[i]


def featurize_for(
    model_kwargs: dict[str, Any], recipe: str, mols: Sequence
) -> Sequence[MolGraph] | np.ndarray:
    """The network input of ``mols`` for a recipe: graphs (``neural-fp``) or Morgan bits."""
    if recipe == "circular-fp":
        return morgan_fingerprints(mols, model_kwargs.get("radius", 2), model_kwargs.get("fp_length", 1024))
    # a model trained before implicit_h existed read the hydrogens as written
    return mols_to_graphs(mols, bool(model_kwargs.get("implicit_h", False)))


def predict_molecules(
    model: nn.Module, dataset: Dataset, batch_size: int = 256, device: str = "cpu", threads: int | None = 1
) -> np.ndarray:
    """Outputs of ``model`` over a molecule dataset in dataset order: ``(n, n_outputs)``
    (:func:`biodl.train.predict` with the graph collate)."""
    out, _ = predict(
        model,
        dataset,
        batch_size=batch_size,
        device=device,
        collate_fn=collate_molecules,
        threads=threads,
        allow_empty=True,
    )
    return out
