"""What the interpretation functions take, as a notebook holds it: the network (an ``nn.Module``,
or the :class:`biodl.api.Model` that :func:`biodl.load` returns) and one-hot sequences (a torch
tensor, or the numpy array :func:`biodl.encode.one_hot_batch` returns), checked with one clear
error instead of a failure inside torch, numpy or captum."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from biodl.errors import BiodlInputError


def as_module(model: Any) -> nn.Module:
    """The network: ``model`` itself, or the ``module`` of a loaded :class:`biodl.api.Model`."""
    if isinstance(model, nn.Module):
        return model
    inner = getattr(model, "module", None)
    if isinstance(inner, nn.Module):
        return inner
    raise BiodlInputError(
        f"expected a network (torch.nn.Module, or the model biodl.load returns), got {type(model).__name__}"
    )


def as_onehot(X: Any, what: str) -> torch.Tensor:
    """``X`` as a float tensor of one-hot sequences ``(n, 4, length)`` with ``n >= 1`` (a numpy
    array is taken as it is; the dtype of a tensor is kept); ``what`` names the calculation."""
    if isinstance(X, np.ndarray):
        if X.dtype.kind not in "biuf":
            raise BiodlInputError(f"{what} needs one-hot sequences (numbers), got an array of {X.dtype}")
        X = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
    elif not isinstance(X, torch.Tensor):
        raise BiodlInputError(
            f"{what} needs one-hot sequences (n, 4, length) as a torch tensor or numpy array "
            f"(biodl.encode.one_hot_batch makes one), got {type(X).__name__}"
        )
    if X.dim() != 3 or X.shape[1] != 4:
        raise BiodlInputError(f"{what} needs one-hot sequences of shape (n, 4, length), got {tuple(X.shape)}")
    if X.shape[0] == 0:
        raise BiodlInputError(f"{what} needs at least one sequence, got none (shape {tuple(X.shape)})")
    return X


def check_target(n_outputs: int, target: Any, what: str) -> None:
    """Refuse an output index the model does not have."""
    if isinstance(target, bool) or not isinstance(target, (int, np.integer)) or not 0 <= target < n_outputs:
        raise BiodlInputError(
            f"{what}: target {target!r} is not an output of this model (it has {n_outputs}: 0 to "
            f"{n_outputs - 1})"
        )
