"""D-GEX: inference of target-gene expression from landmark genes (Chen et al. 2016,
Bioinformatics 32:1832).

A fully connected network from the 943 L1000 landmark genes to the target genes: 1-3 wide
hidden layers (3000, 6000 or 9000 units), ``tanh`` activations, dropout (0 %, 10 % or 25 %)
after every hidden layer and a linear output layer, trained on the mean squared error. The
paper's best model is 3 x 9000 units with 10 % dropout (``D-GEX-10%-9000x3``); because of GPU
memory it trained two such networks, each on a random half of the 9,520 targets.

The ``dgex`` recipe's defaults are one of the paper's smaller grid points, 1 x 3000 units
(10 % dropout), trained with Adam (lr 1e-3, batch 200): sized for a CPU. The paper's code
(uci-cbcl/D-GEX) trained with SGD, momentum 0.5, lr 3e-4 (x 0.9 whenever the training MAE
rose), batch 200. ``-m hidden=9000 -m layers=3`` gives its best network.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class DGEX(nn.Module):
    """Wide multilayer perceptron from landmark to target expression.

    Parameters
    ----------
    n_landmarks
        Input genes (943 in the paper).
    n_targets
        Output genes (9,520 in the paper).
    hidden
        Units per hidden layer.
    layers
        Number of hidden layers (1-3 in the paper).
    dropout
        Dropout rate after each hidden layer.
    activation
        ``tanh`` (the paper) or ``sigmoid`` / ``relu``.

    Shapes: ``(batch, n_landmarks) -> (batch, n_targets)``, both on the (standardised)
    expression scale.
    """

    def __init__(
        self,
        n_landmarks: int,
        n_targets: int,
        hidden: int = 3000,
        layers: int = 1,
        dropout: float = 0.1,
        activation: str = "tanh",
    ) -> None:
        super().__init__()
        acts = {"tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "relu": nn.ReLU}
        if activation not in acts:
            raise ValueError(f"activation must be one of {', '.join(acts)}, not {activation!r}")
        if layers < 1:
            raise ValueError("layers must be >= 1")
        mods: list[nn.Module] = []
        d = n_landmarks
        for _ in range(layers):
            mods += [nn.Linear(d, hidden), acts[activation](), nn.Dropout(dropout)]
            d = hidden
        mods.append(nn.Linear(d, n_targets))
        self.net = nn.Sequential(*mods)
        self.n_landmarks, self.n_targets = n_landmarks, n_targets
        # per-gene standardisation of inputs and outputs (training means / sds)
        self.register_buffer("x_mean", torch.zeros(n_landmarks))
        self.register_buffer("x_std", torch.ones(n_landmarks))
        self.register_buffer("y_mean", torch.zeros(n_targets))
        self.register_buffer("y_std", torch.ones(n_targets))

    @torch.no_grad()
    def fit_scaling(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Set the standardisation from training landmarks ``(n, n_landmarks)`` and targets
        ``(n, n_targets)`` (sd 0 -> 1)."""
        for t, m, s in ((x, self.x_mean, self.x_std), (y, self.y_mean, self.y_std)):
            m.copy_(t.mean(0))
            sd = t.std(0, unbiased=False)
            s.copy_(torch.where(sd > 0, sd, torch.ones_like(sd)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Standardised landmarks -> standardised targets."""
        return self.net(x)

    def loss(self, batch) -> dict[str, torch.Tensor]:
        """Mean squared error on standardised targets for a batch ``(x, y)`` (both
        standardised), and the mean absolute error on the original scale (``mae``)."""
        x, y = batch
        pred = self(x)
        return {"loss": F.mse_loss(pred, y), "mae": ((pred - y).abs() * self.y_std).mean()}

    def infer(self, x: torch.Tensor) -> torch.Tensor:
        """Landmark expression ``(batch, n_landmarks)`` -> target expression ``(batch, n_targets)``
        on the original scale."""
        return self.net((x - self.x_mean) / self.x_std) * self.y_std + self.y_mean
