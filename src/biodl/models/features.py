"""Networks over tables of heterogeneous genomic features (histone marks, DNase, TF ChIP, ...).

* :class:`DFS`: deep feature selection (Li, Chen & Wasserman, RECOMB 2015 / J Comput Biol 2016):
  a one-to-one weighted input layer (one weight per feature) with an elastic-net penalty, in
  front of an MLP. The L1 part is applied as a proximal (soft-thresholding) step after every
  optimiser step, so unneeded features get weight exactly 0 and the model names the features it
  keeps; the L2 parts (input weights, MLP weights) are an ordinary penalty. With ``l1=0`` it is
  a plain MLP.
* :class:`PEDLA`: PEDLA-style deep network (Liu et al., Sci Rep 2016): fully connected sigmoid
  layers pre-trained greedily as denoising autoencoders, then fine-tuned with a classifier on
  top (class imbalance: class-weighted loss).
* :class:`SVMEnsemble`: DEEP's ensemble of RBF support vector machines, each trained on a
  class-balanced subsample (Kleftogiannis et al., NAR 2015); fitted with scikit-learn, stored as
  support vectors and dual coefficients, and evaluated here in torch.

Every network standardises its input itself (:class:`FeatureScaler`: optional ``log1p`` of
the columns non-negative in the training rows, then the training mean / sd), so a saved model
scores raw tables and cross-validation folds never see another fold's statistics.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

_ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "sigmoid": nn.Sigmoid}


class FeatureScaler(nn.Module):
    """``(log1p(x) if logged else x) - mean) / sd`` with the training statistics (buffers).

    With ``log1p`` (the default), :meth:`fit` takes ``log1p`` of the columns that are non-negative
    in every training row (read densities, counts: heavy tails of values up to 10^5 next to typical
    values of 1-10 would otherwise dominate) and leaves the others as they are: a column with
    negative values (z-scores, conservation scores, log ratios) is not a density, and clamping it
    at 0 would throw its negative half away. Which columns are logged is the ``logged`` buffer,
    saved with the model, so prediction transforms exactly as training did. A logged column's
    negative values at prediction time are clamped to 0. Models saved before ``logged`` existed
    load with every column logged, as they were trained.
    """

    def __init__(self, n_features: int, log1p: bool = True) -> None:
        super().__init__()
        self.log1p = bool(log1p)
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))
        self.register_buffer("logged", torch.full((n_features,), self.log1p, dtype=torch.bool))

    def _pre(self, x: torch.Tensor) -> torch.Tensor:
        if not self.log1p:
            return x
        return torch.where(self.logged, torch.log1p(x.clamp_min(0)), x)

    @torch.no_grad()
    def fit(self, x: torch.Tensor) -> FeatureScaler:
        """Set the statistics, and with ``log1p`` the columns to log (those without a negative
        value), from training rows ``(n, n_features)`` (sd 0 -> 1)."""
        x = x.float()
        self.logged.copy_((x >= 0).all(0) if self.log1p else torch.zeros_like(self.logged))
        z = self._pre(x).double()  # float64: the sums of values near float32's limit (2e38) overflowed
        mean, sd = z.mean(0), z.std(0, unbiased=False)
        # one value in every row (its float sd may not be exactly 0): scaled by 1
        const = (z == z[:1]).all(0) if len(z) else torch.ones_like(sd, dtype=torch.bool)
        self.mean.copy_(mean.float())
        self.std.copy_(torch.where((sd > 0) & ~const, sd, torch.ones_like(sd)).float())
        return self

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # a model saved before per-column log1p: every column was logged (when log1p was on)
        state_dict.setdefault(prefix + "logged", torch.full_like(self.logged, self.log1p))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self._pre(x) - self.mean) / self.std


def _mlp(n_in: int, hidden: Sequence[int], n_out: int, activation: str, dropout: float) -> nn.Sequential:
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(_ACTIVATIONS)}, not {activation!r}")
    layers: list[nn.Module] = []
    d = n_in
    for h in hidden:
        layers += [nn.Linear(d, int(h)), _ACTIVATIONS[activation]()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        d = int(h)
    layers.append(nn.Linear(d, n_out))
    return nn.Sequential(*layers)


def _as_sizes(hidden) -> list[int]:
    return [int(hidden)] if isinstance(hidden, (int, float)) else [int(h) for h in hidden]


class DFS(nn.Module):
    """Deep feature selection: one-to-one input weights with an elastic-net penalty, then an MLP.

    Parameters
    ----------
    n_features, n_outputs
        Input features; outputs (classes, or 1 for a binary task).
    hidden
        Hidden layer sizes of the MLP (the paper: 128, 64).
    activation
        ``tanh`` (the paper), ``relu`` or ``sigmoid``.
    dropout
        Dropout after each hidden layer.
    l1
        Strength ``lambda`` of the penalty on the input weights ``w``:
        ``lambda * (l1_ratio * |w|_1 + (1 - l1_ratio) / 2 * |w|_2^2)``; 0 makes a plain MLP.
    l1_ratio
        Elastic-net mixing of the input-layer penalty (1: lasso).
    l2
        L2 penalty on the MLP's weight matrices (biases excluded); keeps the MLP from undoing
        the shrinkage of ``w`` by growing its own weights.
    log1p
        ``log1p`` the features before standardising (see :class:`FeatureScaler`).

    Shapes: ``(batch, n_features)`` raw features -> ``(batch, n_outputs)`` logits.
    """

    def __init__(
        self,
        n_features: int,
        n_outputs: int = 1,
        hidden: Sequence[int] | int = (128, 64),
        activation: str = "tanh",
        dropout: float = 0.0,
        l1: float = 0.01,
        l1_ratio: float = 1.0,
        l2: float = 1e-4,
        log1p: bool = True,
    ) -> None:
        super().__init__()
        if l1 < 0 or l2 < 0 or not 0 <= l1_ratio <= 1:
            raise ValueError("l1 and l2 must be >= 0 and l1_ratio in [0, 1]")
        self.n_features, self.n_outputs = n_features, n_outputs
        self.l1, self.l1_ratio, self.l2 = float(l1), float(l1_ratio), float(l2)
        self.scale = FeatureScaler(n_features, log1p)
        self.w = nn.Parameter(torch.ones(n_features))
        # 1 for the features in use; a refit on selected features fixes the others at 0
        self.register_buffer("mask", torch.ones(n_features))
        # per-feature multiplier of the L1 penalty (randomized DFS draws it, 1 otherwise)
        self.register_buffer("l1_scale", torch.ones(n_features))
        self.mlp = _mlp(n_features, _as_sizes(hidden), n_outputs, activation, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.scale(x) * (self.w * self.mask))

    @torch.no_grad()
    def keep_only(self, keep: torch.Tensor) -> None:
        """Use only the features ``keep`` (boolean ``(n_features,)``): the others are masked
        to 0 for good (a refit on the selected features, without their shrinkage)."""
        self.mask.copy_(keep.to(self.mask.dtype))

    def penalty(self, model: nn.Module | None = None) -> torch.Tensor:
        """The smooth (L2) part of the penalty; the L1 part is :meth:`proximal_step`."""
        pen = self.l1 * (1 - self.l1_ratio) / 2 * (self.w**2).sum()
        if self.l2:
            pen = pen + self.l2 * sum((m.weight**2).sum() for m in self.mlp if isinstance(m, nn.Linear))
        return pen

    @torch.no_grad()
    def proximal_step(self, lr: float) -> None:
        """Soft-threshold the input weights by ``lr * l1 * l1_ratio`` (times ``l1_scale`` per
        feature; the proximal operator of the L1 penalty after a gradient step of size ``lr``):
        small weights become exactly 0."""
        t = lr * self.l1 * self.l1_ratio
        if t > 0:
            self.w.copy_(torch.sign(self.w) * (self.w.abs() - t * self.l1_scale).clamp_min(0))

    def selected(self) -> torch.Tensor:
        """Boolean mask ``(n_features,)`` of the features in use (non-zero weight, not masked)."""
        return (self.w.detach() != 0) & (self.mask != 0)

    def importance(self) -> torch.Tensor:
        """``|w|`` of the features in use (features are standardised, so comparable)."""
        return (self.w.detach() * self.mask).abs()


class PEDLA(nn.Module):
    """Fully connected sigmoid network pre-trained layer by layer as denoising autoencoders.

    ``stage`` chooses what :meth:`loss` trains: ``"pretrain:k"`` reconstructs the (clean) input
    of hidden layer ``k`` from a masked copy through that layer and its own decoder;
    ``"finetune"`` (the default, and prediction) leaves the loss to the training plan (the
    task's cross-entropy, class-weighted for PEDLA's imbalance).

    Parameters
    ----------
    n_features, n_outputs
        Input features; outputs.
    hidden
        Hidden layer sizes.
    corruption
        Fraction of inputs set to 0 in pre-training (masking noise).
    dropout
        Dropout between layers in fine-tuning.
    log1p
        See :class:`FeatureScaler`.
    """

    def __init__(
        self,
        n_features: int,
        n_outputs: int = 1,
        hidden: Sequence[int] | int = (100, 50),
        corruption: float = 0.2,
        dropout: float = 0.2,
        log1p: bool = True,
    ) -> None:
        super().__init__()
        sizes = [n_features, *_as_sizes(hidden)]
        self.n_features, self.n_outputs, self.corruption = n_features, n_outputs, float(corruption)
        self.scale = FeatureScaler(n_features, log1p)
        self.encoders = nn.ModuleList(nn.Linear(sizes[i], sizes[i + 1]) for i in range(len(sizes) - 1))
        self.decoders = nn.ModuleList(nn.Linear(sizes[i + 1], sizes[i]) for i in range(len(sizes) - 1))
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(sizes[-1], n_outputs)
        self.stage = "finetune"

    @property
    def n_layers(self) -> int:
        return len(self.encoders)

    def encode(self, x: torch.Tensor, upto: int | None = None) -> torch.Tensor:
        """Activities of the first ``upto`` hidden layers (default all) from raw features."""
        h = self.scale(x)
        for enc in self.encoders[: self.n_layers if upto is None else upto]:
            h = self.dropout(torch.sigmoid(enc(h))) if self.stage == "finetune" else torch.sigmoid(enc(h))
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encode(x))

    def loss(self, batch) -> dict[str, torch.Tensor] | None:
        if not self.stage.startswith("pretrain"):
            return None  # fine-tuning: the training plan's task loss
        k = int(self.stage.split(":")[1])
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        with torch.no_grad():
            clean = self.encode(x, upto=k)
        mask = (torch.rand_like(clean) >= self.corruption).to(clean.dtype)
        rec = self.decoders[k](torch.sigmoid(self.encoders[k](clean * mask)))
        return {"loss": F.mse_loss(rec, clean)}


class SVMEnsemble(nn.Module):
    """Mean decision value of RBF support vector machines (DEEP's ensemble) on standardised
    features: ``d_m(z) = sum_i coef_mi * exp(-gamma * |z - sv_mi|^2) + b_m``.

    Parameters
    ----------
    n_features
        Input features.
    members
        Number of support vectors of each member (the shapes to rebuild a fitted ensemble).
    gamma
        RBF kernel width on the standardised features.
    log1p
        See :class:`FeatureScaler`.

    Shapes: ``(batch, n_features)`` -> ``(batch, 1)`` (the mean decision value, > 0 positive).
    """

    def __init__(
        self, n_features: int, members: Sequence[int] = (1,), gamma: float = 0.1, log1p: bool = True
    ):
        super().__init__()
        self.n_features, self.n_outputs, self.gamma = n_features, 1, float(gamma)
        self.members = [int(m) for m in members]
        self.scale = FeatureScaler(n_features, log1p)
        for i, m in enumerate(self.members):
            self.register_buffer(f"sv{i}", torch.zeros(m, n_features))
            self.register_buffer(f"coef{i}", torch.zeros(m))
            self.register_buffer(f"intercept{i}", torch.zeros(()))

    @torch.no_grad()
    def set_member(self, i: int, support_vectors, dual_coef, intercept: float) -> None:
        """Store member ``i`` (``support_vectors (m, n_features)``, ``dual_coef (m,)``)."""
        getattr(self, f"sv{i}").copy_(torch.as_tensor(support_vectors, dtype=torch.float32))
        getattr(self, f"coef{i}").copy_(torch.as_tensor(dual_coef, dtype=torch.float32).reshape(-1))
        getattr(self, f"intercept{i}").fill_(float(intercept))

    def decision(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, n_members)`` decision values."""
        z = self.scale(x)
        out = []
        for i in range(len(self.members)):
            sv = getattr(self, f"sv{i}")
            k = torch.exp(-self.gamma * torch.cdist(z, sv).pow(2))
            out.append(k @ getattr(self, f"coef{i}") + getattr(self, f"intercept{i}"))
        return torch.stack(out, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decision(x).mean(dim=1, keepdim=True)
