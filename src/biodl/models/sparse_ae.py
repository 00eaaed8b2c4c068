"""Stacked sparse autoencoder of expression profiles (Chen, Cai, Chen & Lu 2016, BMC
Bioinformatics 17 Suppl 1:S9: "Learning a hierarchical representation of the yeast
transcriptomic machinery using an autoencoder model").

Chen et al. stacked four layers of sigmoid latent variables over yeast microarrays, trained as
sparse autoencoders, and read the first layer as transcription-factor-like units and the higher
layers as more abstract programmes. The network here is the classic sparse autoencoder
(Ng's UFLDL notes): per layer, an encoder ``h = sigmoid(x W + b)``, an *untied* decoder
``x' = sigmoid(h V + c)``, and the loss

    reconstruction error (summed over inputs, mean over the batch)
    + sparsity_weight * sum_j KL(sparsity || rho_j)

with the reconstruction error ``0.5 * sum_i (x'_i - x_i)^2`` (``reconstruction="mse"``, UFLDL's)
or the cross-entropy ``-sum_i x_i log x'_i + (1 - x_i) log(1 - x'_i)`` (``"bce"``, the recipe's
default: with squared error the upper layers of the yeast model collapsed to the target activation)

where ``rho_j`` is unit ``j``'s mean activation over the batch and ``KL(p || q) = p log(p / q) +
(1 - p) log((1 - p) / (1 - q))`` pulls it toward the target ``sparsity``; the L2 weight penalty
is the training engine's ``weight_decay``. Layers are trained greedily, each on the activities
of the one below it (``active_layer``); ``active_layer = -1`` fine-tunes the whole stack, the
input reconstructed through every encoder and then every decoder.

The input scaling is part of the model (buffers ``input_mean``, ``input_sd`` fitted on the
training data): ``scaling="ufldl"`` (default) standardises each input, truncates at +-3 sd and
maps [-3 sd, 3 sd] to [0.1, 0.9] (UFLDL's preprocessing for sigmoid decoders); ``"minmax"``
maps each input's training range to [0, 1] (ADAGE's), clipped.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

SCALINGS = ("ufldl", "minmax")
RECONSTRUCTIONS = ("mse", "bce")


def kl_sparsity(rho_hat: torch.Tensor, rho: float, eps: float = 1e-6) -> torch.Tensor:
    """``sum_j KL(rho || rho_hat_j)`` of Bernoulli variables; ``rho_hat`` is ``(n_units,)``."""
    q = rho_hat.clamp(eps, 1 - eps)
    return (rho * torch.log(rho / q) + (1 - rho) * torch.log((1 - rho) / (1 - q))).sum()


class SparseAELayer(nn.Module):
    """One sparse autoencoder layer: sigmoid encoder, untied sigmoid decoder.

    Parameters
    ----------
    n_visible, n_hidden
        Input and hidden sizes.

    Shapes: ``encode``: ``(batch, n_visible) -> (batch, n_hidden)`` activities in (0, 1);
    ``forward``: ``(batch, n_visible) -> (batch, n_visible)`` reconstruction *logits*.
    ``weight`` is the encoder matrix ``(n_visible, n_hidden)`` (as ADAGE's, so the expression
    kind's signature code reads it unchanged).
    """

    def __init__(self, n_visible: int, n_hidden: int) -> None:
        super().__init__()
        self.n_visible, self.n_hidden = n_visible, n_hidden
        bound = math.sqrt(6.0 / (n_visible + n_hidden + 1))  # UFLDL's initialisation
        self.weight = nn.Parameter(torch.empty(n_visible, n_hidden).uniform_(-bound, bound))
        self.hidden_bias = nn.Parameter(torch.zeros(n_hidden))
        self.decoder_weight = nn.Parameter(torch.empty(n_hidden, n_visible).uniform_(-bound, bound))
        self.visible_bias = nn.Parameter(torch.zeros(n_visible))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Activities ``sigmoid(x W + b)``, ``(batch, n_hidden)``."""
        return torch.sigmoid(x @ self.weight + self.hidden_bias)

    def decode_logits(self, h: torch.Tensor) -> torch.Tensor:
        """Reconstruction logits ``h V + c``, ``(batch, n_visible)``."""
        return h @ self.decoder_weight + self.visible_bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode_logits(self.encode(x))


class StackedSparseAE(nn.Module):
    """Input scaling and a stack of sparse autoencoder layers (4 in Chen et al. 2016).

    Parameters
    ----------
    n_genes
        Number of inputs (the columns of the expression matrix: genes, or arrays when the
        rows are genes as in the yeast bench).
    nodes
        Hidden units per layer, bottom first (a comma-separated string is accepted).
    sparsity
        Target mean activation ``rho`` of every hidden unit, ``0 < sparsity < 1``.
    sparsity_weight
        Weight ``beta`` of the KL sparsity penalty (0: a plain autoencoder).
    scaling
        Input scaling: ``ufldl`` or ``minmax`` (see the module notes).
    reconstruction
        Reconstruction error: ``mse`` (half squared error) or ``bce`` (cross-entropy).

    Notes
    -----
    ``forward`` takes *scaled* input (:meth:`scale`) and returns the reconstruction logits of
    the active layer's input (fine-tuning, ``active_layer = -1``: of the scaled input through
    the whole stack). :meth:`loss` is the training loss of the active layer; :meth:`encode`
    gives any layer's activities, :meth:`activities` every layer's from unscaled data.
    """

    def __init__(
        self,
        n_genes: int,
        nodes: int | list[int] | tuple[int, ...] | str = (64, 32, 16, 8),
        sparsity: float = 0.1,
        sparsity_weight: float = 1.0,
        scaling: str = "ufldl",
        reconstruction: str = "bce",
    ) -> None:
        super().__init__()
        if isinstance(nodes, str):
            nodes = [int(v) for v in nodes.split(",") if v.strip()]
        sizes = [int(nodes)] if isinstance(nodes, int | float) else [int(n) for n in nodes]
        if not sizes or min(sizes) < 1:
            raise ValueError(f"nodes must be positive, got {nodes!r}")
        if not 0 < sparsity < 1:
            raise ValueError(f"sparsity must be in (0, 1), not {sparsity}")
        if sparsity_weight < 0:
            raise ValueError(f"sparsity_weight must be >= 0, not {sparsity_weight}")
        if scaling not in SCALINGS:
            raise ValueError(f"scaling must be one of {SCALINGS}, not {scaling!r}")
        if reconstruction not in RECONSTRUCTIONS:
            raise ValueError(f"reconstruction must be one of {RECONSTRUCTIONS}, not {reconstruction!r}")
        self.reconstruction = reconstruction
        self.n_genes, self.nodes = int(n_genes), sizes
        self.sparsity, self.sparsity_weight, self.scaling = float(sparsity), float(sparsity_weight), scaling
        dims = [self.n_genes, *sizes]
        self.layers = nn.ModuleList(SparseAELayer(dims[i], dims[i + 1]) for i in range(len(sizes)))
        self.register_buffer("input_mean", torch.zeros(self.n_genes))
        self.register_buffer("input_sd", torch.ones(self.n_genes))
        self.active_layer = len(sizes) - 1

    # ------------------------------------------------------------------ scaling
    @torch.no_grad()
    def fit_scaling(self, x: torch.Tensor) -> None:
        """Fit the input scaling on unscaled training data ``(n, n_genes)``: ``ufldl``: each
        input's mean and sd; ``minmax``: its minimum (``input_mean``) and range (``input_sd``).
        Constant inputs get a spread of 1."""
        x = torch.as_tensor(x)
        if self.scaling == "ufldl":  # float64 sums a block of rows at a time (no float64 copy)
            n = max(len(x), 1)
            centre = (
                sum((b.double().sum(0) for b in x.split(4096)), torch.zeros(x.shape[1], dtype=torch.float64))
                / n
            )
            sq = sum(
                (((b.double() - centre) ** 2).sum(0) for b in x.split(4096)),
                torch.zeros(x.shape[1], dtype=torch.float64),
            )
            spread = (sq / n).sqrt()
        else:  # min and max exact in the matrix's type, the range in float64 (-3e38..3e38 overflowed)
            lo, hi = torch.aminmax(x, dim=0)
            centre, spread = lo.double(), hi.double() - lo.double()
        self.input_mean.copy_(centre.to(self.input_mean.dtype))
        spread = torch.where(spread > 0, spread, torch.ones_like(spread)).clamp(max=3.4e38)
        self.input_sd.copy_(spread.to(self.input_sd.dtype))

    def scale(self, x: torch.Tensor) -> torch.Tensor:
        """Scaled input in [0.1, 0.9] (``ufldl``) or [0, 1] (``minmax``), ``(batch, n_genes)``."""
        if self.scaling == "ufldl":
            z = ((x - self.input_mean) / (3 * self.input_sd)).clamp(-1.0, 1.0)
            return 0.5 + 0.4 * z
        return ((x - self.input_mean) / self.input_sd).clamp(0.0, 1.0)

    # ------------------------------------------------------------------ network
    def layer_input(self, x_scaled: torch.Tensor, layer: int) -> torch.Tensor:
        """Input of ``layer``: the activities of the layers below it (scaled input for 0)."""
        h = x_scaled
        for ae in self.layers[:layer]:
            h = ae.encode(h)
        return h

    def encode(self, x_scaled: torch.Tensor, layer: int | None = None) -> torch.Tensor:
        """Activities of ``layer`` (0-based; default the last) from scaled input."""
        last = len(self.layers) - 1 if layer is None else layer
        return self.layers[last].encode(self.layer_input(x_scaled, last))

    def encode_all(self, x_scaled: torch.Tensor) -> list[torch.Tensor]:
        """Activities of every layer, bottom first: ``[(batch, nodes[0]), ...]``."""
        out, h = [], x_scaled
        for ae in self.layers:
            h = ae.encode(h)
            out.append(h)
        return out

    def reconstruct(self, x_scaled: torch.Tensor) -> torch.Tensor:
        """Logits of the scaled input reconstructed through every encoder and then every decoder
        (the fine-tuned network), ``(batch, n_genes)``."""
        h = self.encode_all(x_scaled)[-1]
        for ae in reversed(self.layers[1:]):
            h = torch.sigmoid(ae.decode_logits(h))
        return self.layers[0].decode_logits(h)

    def forward(self, x_scaled: torch.Tensor) -> torch.Tensor:
        """Reconstruction logits of the active layer's input (``-1``: of the scaled input)."""
        if self.active_layer < 0:
            return self.reconstruct(x_scaled)
        h = self.layer_input(x_scaled, self.active_layer)
        return self.layers[self.active_layer](h)

    def loss(self, batch) -> dict[str, torch.Tensor]:
        """Loss of the active layer on a batch ``(x_scaled,)``: the reconstruction error summed
        over inputs, mean over the batch, plus ``sparsity_weight`` x the KL sparsity penalty
        (of the active layer; fine-tuning: of every layer). Also returns both terms."""
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        if self.active_layer < 0:
            acts = self.encode_all(x)
            target, hs = x, acts
            h = acts[-1]
            for ae in reversed(self.layers[1:]):
                h = torch.sigmoid(ae.decode_logits(h))
            logits = self.layers[0].decode_logits(h)
        else:
            target = self.layer_input(x, self.active_layer).detach()
            ae = self.layers[self.active_layer]
            h = ae.encode(target)
            hs = [h]
            logits = ae.decode_logits(h)
        if self.reconstruction == "bce":
            rec = F.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(1).mean()
        else:
            rec = 0.5 * ((torch.sigmoid(logits) - target) ** 2).sum(1).mean()
        kl = sum(kl_sparsity(a.mean(0), self.sparsity) for a in hs)
        return {
            "loss": rec + self.sparsity_weight * kl,
            "reconstruction": rec.detach(),
            "sparsity": kl.detach(),
        }

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def activities(self, x: torch.Tensor, layer: int | None = None) -> torch.Tensor:
        """Activities of ``layer`` (default: last) from *unscaled* input ``(batch, n_genes)``."""
        return self.encode(self.scale(x), layer)

    def gene_weights(self) -> torch.Tensor:
        """First-layer encoder weights ``(n_genes, nodes[0])``: each unit's input signature."""
        return self.layers[0].weight.detach()

    def reconstruction_error(self, x_scaled: torch.Tensor) -> torch.Tensor:
        """Per-sample squared error of the whole-stack reconstruction, ``(batch,)``."""
        return F.mse_loss(torch.sigmoid(self.reconstruct(x_scaled)), x_scaled, reduction="none").sum(1)
