"""CellCnn (Arvaniti & Claassen, Nat Commun 8:14825, 2017).

A sample is a bag of cells. CellCnn reads *multi-cell inputs* -- random sets of ``ncell``
cells drawn from one sample -- and applies

1. ``n_filters`` filters of width one cell (a 1x1 convolution over the markers, i.e. the
   same linear map of the marker vector for every cell) followed by ReLU: a filter
   response per cell;
2. pooling over cells per filter: the mean of the top ``pool_percent`` % responses
   (``pool_percent=100`` is mean pooling; a small percentage detects rare cells);
3. dropout and a linear output layer (softmax classes or one regression value).

Training draws many multi-cell inputs per class, trains several networks with random
configurations (number of filters, pooling percentage, learning rate) and keeps the best
three by validation accuracy; their averaged predictions are the ensemble
(:class:`CellCnnEnsemble`). Inputs are z-scored with the training cells' mean and standard
deviation, which the modules hold as buffers so a saved model is self-contained.

Shapes: inputs ``(batch, n_cells, n_markers)`` (arcsinh-transformed marker intensities),
filter responses ``(batch, n_cells, n_filters)``, outputs ``(batch, n_outputs)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["CellCnn", "CellCnnEnsemble", "pooled_k", "top_k_pool"]


def pooled_k(n_cells: int, pool_percent: float) -> int:
    """Number of cells pooled per filter: ``max(1, int(pool_percent / 100 * n_cells))``."""
    return max(1, min(n_cells, int(pool_percent / 100.0 * n_cells)))


def top_k_pool(responses: torch.Tensor, k: int) -> torch.Tensor:
    """Mean of the ``k`` largest values over the cell axis.

    Parameters
    ----------
    responses
        ``(batch, n_cells, n_filters)``.
    k
        Cells pooled per filter (``k = n_cells`` is mean pooling, ``k = 1`` max pooling).

    Returns
    -------
    torch.Tensor
        ``(batch, n_filters)``.
    """
    n = responses.shape[1]
    if k >= n:
        return responses.mean(dim=1)
    return responses.topk(k, dim=1).values.mean(dim=1)


class CellCnn(nn.Module):
    """One CellCnn network.

    Parameters
    ----------
    n_markers
        Markers per cell.
    n_outputs
        Classes (softmax logits) or 1 for regression.
    n_filters
        Filters (the paper draws 3-9 per run).
    pool_percent
        Percentage of cells pooled per filter (the paper tries 0.01, 1, 5, 20, 100).
    dropout
        Dropout probability on the pooled filter responses (0 = none).
    hidden
        Units of an optional per-cell hidden layer (linear + ReLU) before the filters; 0 (the
        default) is the published network, whose filters are linear maps of the markers. With
        a hidden layer a filter is a non-linear function of one cell, still applied to every
        cell alike; its marker weights are then not directly readable (the consensus filters
        of the paper need ``hidden=0``).
    """

    def __init__(
        self,
        n_markers: int,
        n_outputs: int = 2,
        n_filters: int = 8,
        pool_percent: float = 5.0,
        dropout: float = 0.5,
        hidden: int = 0,
    ) -> None:
        super().__init__()
        if n_markers < 1 or n_filters < 1 or n_outputs < 1:
            raise ValueError("n_markers, n_filters and n_outputs must be positive")
        if not 0 < pool_percent <= 100:
            raise ValueError(f"pool_percent must be in (0, 100], got {pool_percent}")
        if hidden < 0:
            raise ValueError(f"hidden must be >= 0, got {hidden}")
        self.n_markers = n_markers
        self.n_filters = n_filters
        self.pool_percent = float(pool_percent)
        self.hidden_units = int(hidden)
        self.hidden = nn.Sequential(nn.Linear(n_markers, hidden), nn.ReLU()) if hidden else None
        self.filters = nn.Linear(hidden or n_markers, n_filters)  # 1x1 convolution over the markers
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.output = nn.Linear(n_filters, n_outputs)
        self.register_buffer("center", torch.zeros(n_markers))
        self.register_buffer("scale", torch.ones(n_markers))

    def set_scaler(self, center: torch.Tensor, scale: torch.Tensor) -> None:
        """Set the z-scoring applied to inputs (``(x - center) / scale`` per marker)."""
        self.center.copy_(torch.as_tensor(center, dtype=self.center.dtype))
        self.scale.copy_(torch.as_tensor(scale, dtype=self.scale.dtype).clamp_min(1e-6))

    def responses(self, x: torch.Tensor) -> torch.Tensor:
        """Filter responses ``(batch, n_cells, n_filters)`` (after ReLU) of cells ``x``
        ``(batch, n_cells, n_markers)`` -- or ``(n_cells, n_markers)`` -> ``(n_cells, n_filters)``."""
        z = (x - self.center) / self.scale
        if self.hidden is not None:
            z = self.hidden(z)
        return torch.relu(self.filters(z))

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled filter responses ``(batch, n_filters)``."""
        return top_k_pool(self.responses(x), pooled_k(x.shape[1], self.pool_percent))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (classification) or values (regression), ``(batch, n_outputs)``."""
        return self.output(self.dropout(self.pooled(x)))

    def penalty(self, l1: float = 0.0, l2: float = 0.0) -> torch.Tensor:
        """``l1 * sum|W| + l2 * sum W^2`` over the filter and output weights (not biases)."""
        ws = (self.filters.weight, self.output.weight)
        if self.hidden is not None:
            ws = (self.hidden[0].weight, *ws)
        out = self.filters.weight.new_zeros(())
        if l1:
            out = out + l1 * sum(w.abs().sum() for w in ws)
        if l2:
            out = out + l2 * sum((w * w).sum() for w in ws)
        return out


class CellCnnEnsemble(nn.Module):
    """The published CellCnn predictor: the average of the best networks of several restarts.

    Parameters
    ----------
    n_markers
        Markers per cell.
    n_outputs
        Classes, or 1 for regression.
    members
        One ``{"n_filters": int, "pool_percent": float}`` (and optionally ``"hidden": int``)
        per network.
    regression
        Regression (average the outputs) rather than classification (average the class
        probabilities; :meth:`forward` returns their log, usable as softmax logits).
    """

    def __init__(
        self,
        n_markers: int,
        n_outputs: int = 2,
        members: Sequence[dict] = ({"n_filters": 8, "pool_percent": 5.0},),
        regression: bool = False,
    ) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.regression = regression
        self.nets = nn.ModuleList(
            CellCnn(
                n_markers,
                n_outputs,
                int(m["n_filters"]),
                float(m["pool_percent"]),
                dropout=0.0,
                hidden=int(m.get("hidden", 0)),
            )
            for m in members
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, n_outputs)``: log of the mean class probabilities, or the mean value."""
        outs = torch.stack([net(x) for net in self.nets])
        if self.regression:
            return outs.mean(0)
        return outs.softmax(-1).mean(0).clamp_min(1e-12).log()
