"""ADAGE: denoising autoencoders of gene expression (Tan et al. 2016, mSystems 1:e00025).

One hidden layer of sigmoid units with **tied weights** (the decoder is the transpose of the
encoder), trained to reconstruct each per-gene 0-1 scaled expression profile from a copy in
which a fraction ``corruption`` of the genes was set to 0 (masking noise), with the
cross-entropy reconstruction loss. The stacked variant (SdA) trains layers greedily, each on
the previous layer's activities. The 50-node *P. aeruginosa* model of the paper is
``corruption=0.1``, batch size 10, 500 epochs, learning rate 0.01 (plain SGD).

The per-gene scaling is part of the model: ``input_min`` and ``input_range`` buffers hold the
training minimum and range of each gene, and new samples are scaled with them and clipped to
[0, 1], as the paper does for test sets.

Wide inputs (``parametrization="fan-in"``). With tied weights the decoder needs weights of
order one to reconstruct a gene, and the encoder then sums thousands of such weights: on 22,283
microarray probes every sigmoid node saturates (activities within 0.01 of 0 or 1; the published
model is 93 % saturated on its own 950-array compendium), and Adam's first steps move every
node's input sum by about ``lr x sum of the inputs``. The fan-in parametrization keeps the
network an ADAGE (tied weights, sigmoid nodes, masking noise, cross-entropy) but centres each
input on its training mean and scales it by ``s = g / sqrt(n_inputs)`` before the encoder
(``h = sigmoid(s (x - c) W + b)``, reconstruction ``sigmoid(h W^T + b')``), i.e. a fixed
decoder gain of ``1 / s``. Activities are still ``sigmoid(x W' + b'')`` with
``W' = s W`` and ``b'' = b - s c W``, which is what :func:`write_network` writes; node
signatures (2.5 sd of a node's weights) do not depend on ``s``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class DenoisingAutoencoder(nn.Module):
    """One tied-weight denoising autoencoder layer.

    Parameters
    ----------
    n_visible
        Input size (genes for the first layer).
    n_hidden
        Number of hidden nodes.
    corruption
        Fraction of inputs zeroed in training (masking noise), ``0 <= corruption < 1``.
    fan_in
        ``None``: ADAGE as published. A number ``g > 0``: centre the inputs on ``center`` (a
        buffer, set by :meth:`fit_center` from the training inputs; zeros until then) and scale
        them by ``s = g / sqrt(n_visible)`` before the encoder; masked inputs are set to the
        centre instead of 0.

    Shapes: ``encode``: ``(batch, n_visible) -> (batch, n_hidden)``; ``forward``:
    ``(batch, n_visible) -> (batch, n_visible)`` reconstruction *logits* (apply a sigmoid for
    the reconstruction in [0, 1]).
    """

    def __init__(
        self, n_visible: int, n_hidden: int, corruption: float = 0.1, fan_in: float | None = None
    ) -> None:
        super().__init__()
        if not 0 <= corruption < 1:
            raise ValueError(f"corruption must be in [0, 1), not {corruption}")
        self.n_visible, self.n_hidden, self.corruption = n_visible, n_hidden, corruption
        bound = 4 * math.sqrt(6.0 / (n_visible + n_hidden))  # Theano dA tutorial / ADAGE init
        self.weight = nn.Parameter(torch.empty(n_visible, n_hidden).uniform_(-bound, bound))
        self.hidden_bias = nn.Parameter(torch.zeros(n_hidden))
        self.visible_bias = nn.Parameter(torch.zeros(n_visible))
        if fan_in is not None and not fan_in > 0:
            raise ValueError(f"fan_in must be None or positive, not {fan_in}")
        self.fan_in = fan_in
        self.input_scale = float(fan_in) / math.sqrt(n_visible) if fan_in is not None else 1.0
        if fan_in is not None:  # only then a buffer: models saved before this option load unchanged
            self.register_buffer("center", torch.zeros(n_visible))
        else:
            self.center = None

    @torch.no_grad()
    def fit_center(self, x: torch.Tensor) -> None:
        """Set the input centre to the mean of the training inputs ``x (n, n_visible)``
        (no-op for the published parametrization)."""
        if self.center is not None:
            self.center.copy_(x.mean(0).to(self.center.dtype))

    def corrupt(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Masking noise: each entry kept with probability ``1 - corruption``, else set to 0
        (``fan_in``: to the input's centre)."""
        if self.corruption == 0:
            return x
        keep = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) >= self.corruption
        if self.center is None:
            return x * keep
        return torch.where(keep, x, self.center.to(x.dtype))

    def raw_activity(self, x: torch.Tensor) -> torch.Tensor:
        """``x @ W`` without bias (ADAGE's "raw activity"); with ``fan_in``,
        ``s (x - c) @ W``."""
        if self.center is None:
            return x @ self.weight
        return (self.input_scale * (x - self.center)) @ self.weight

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Node activities ``sigmoid(x W + b)`` (``fan_in``: ``sigmoid(s (x - c) W + b)``)."""
        return torch.sigmoid(self.raw_activity(x) + self.hidden_bias)

    @torch.no_grad()
    def folded(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder weight and hidden bias of the equivalent published-form layer, with which
        ``sigmoid(x W' + b'')`` equals :meth:`encode` (``(W, b)`` itself without ``fan_in``)."""
        if self.center is None:
            return self.weight.detach().clone(), self.hidden_bias.detach().clone()
        w = self.input_scale * self.weight.detach()
        return w, self.hidden_bias.detach() - self.center @ w

    def decode_logits(self, h: torch.Tensor) -> torch.Tensor:
        """Reconstruction logits ``h W^T + b'`` (tied weights)."""
        return h @ self.weight.t() + self.visible_bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.corrupt(x) if self.training else x
        return self.decode_logits(self.encode(x))


PARAMETRIZATIONS = ("adage", "fan-in")


class ADAGE(nn.Module):
    """ADAGE model: per-gene 0-1 scaling followed by one or more tied-weight denoising
    autoencoder layers.

    Parameters
    ----------
    n_genes
        Number of input genes.
    nodes
        Hidden nodes per layer: an int (one layer, the paper's ADAGE) or a list (stacked
        denoising autoencoder, trained greedily layer by layer).
    corruption
        Masking-noise fraction of every layer (the paper: 0.1).
    parametrization
        ``"adage"``: the published network (the default, and that of every saved model);
        ``"fan-in"``: every layer's input centred on its training mean and scaled by
        ``fan_in_scale / sqrt(inputs)`` before the encoder (see the module notes): for wide
        inputs such as microarrays (22,283 probes), whose nodes otherwise all saturate. Train it
        with Adam (with plain SGD the encoder's gradient is that much smaller than with
        ``"adage"``).
    fan_in_scale
        ``g`` in ``g / sqrt(inputs)`` (``"fan-in"`` only): smaller is closer to the sigmoid's
        linear range. 0.1 reconstructed held-out bladder arrays best among 1, 0.3, 0.1 and 0.03
        (0.03 trains too slowly; bench/README_expression.md, section 3).

    Notes
    -----
    ``forward`` takes *scaled* input (see :meth:`scale`) and returns the reconstruction logits
    of the layer being trained (``self.active_layer``, default the last); the training loss is
    the binary cross-entropy between ``sigmoid(logits)`` and the uncorrupted input of that
    layer. :meth:`activities` takes unscaled expression and returns the last layer's node
    activities, ``(batch, nodes[-1])``.
    """

    def __init__(
        self,
        n_genes: int,
        nodes: int | list[int] | tuple[int, ...] = 50,
        corruption: float = 0.1,
        parametrization: str = "adage",
        fan_in_scale: float = 0.1,
    ) -> None:
        super().__init__()
        sizes = [int(nodes)] if isinstance(nodes, int | float) else [int(n) for n in nodes]
        if not sizes or min(sizes) < 1:
            raise ValueError(f"nodes must be positive, got {nodes!r}")
        if parametrization not in PARAMETRIZATIONS:
            raise ValueError(
                f"parametrization must be one of {', '.join(PARAMETRIZATIONS)}, not {parametrization!r}"
            )
        self.n_genes, self.nodes, self.corruption = n_genes, sizes, corruption
        self.parametrization, self.fan_in_scale = parametrization, fan_in_scale
        fan_in = float(fan_in_scale) if parametrization == "fan-in" else None
        dims = [n_genes, *sizes]
        self.layers = nn.ModuleList(
            DenoisingAutoencoder(dims[i], dims[i + 1], corruption, fan_in=fan_in) for i in range(len(sizes))
        )
        self.register_buffer("input_min", torch.zeros(n_genes))
        self.register_buffer("input_range", torch.ones(n_genes))
        self.active_layer = len(sizes) - 1

    @torch.no_grad()
    def fit_scaling(self, x: torch.Tensor) -> None:
        """Set the per-gene minimum and range from unscaled training data ``(n, n_genes)``.
        Constant genes get range 1 (they scale to 0)."""
        lo, hi = torch.aminmax(x, dim=0)  # exact in the matrix's type; the range in float64:
        rng = hi.double() - lo.double()  # -3e38 .. 3e38 overflowed float32
        self.input_min.copy_(lo.to(self.input_min.dtype))
        rng = torch.where(rng > 0, rng, torch.ones_like(rng)).clamp(max=3.4e38)
        self.input_range.copy_(rng.to(self.input_range.dtype))

    def scale(self, x: torch.Tensor) -> torch.Tensor:
        """Per-gene 0-1 scaling with the training minimum and range, clipped to [0, 1]."""
        return ((x - self.input_min) / self.input_range).clamp(0.0, 1.0)

    def layer_input(self, x_scaled: torch.Tensor, layer: int) -> torch.Tensor:
        """Input of ``layer``: the activities of the layers below it (scaled genes for 0)."""
        h = x_scaled
        for dae in self.layers[:layer]:
            h = dae.encode(h)
        return h

    def forward(self, x_scaled: torch.Tensor) -> torch.Tensor:
        """Reconstruction logits of the active layer's input, ``(batch, layer input size)``."""
        h = self.layer_input(x_scaled, self.active_layer)
        return self.layers[self.active_layer](h)

    def loss(self, batch) -> dict[str, torch.Tensor]:
        """Training loss of the active layer on a batch ``(x_scaled,)``: binary cross-entropy
        between the reconstruction of a masked copy and the clean input of the layer, summed
        over its inputs and averaged over the batch (as the original Theano code)."""
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        target = self.layer_input(x, self.active_layer).detach()
        per = F.binary_cross_entropy_with_logits(self(x), target, reduction="none").sum(1)
        return {"loss": per.mean()}

    def encode(self, x_scaled: torch.Tensor, layer: int | None = None) -> torch.Tensor:
        """Activities of ``layer`` (default: last) from scaled input."""
        last = len(self.layers) - 1 if layer is None else layer
        return self.layers[last].encode(self.layer_input(x_scaled, last))

    def activities(self, x: torch.Tensor, raw: bool = False) -> torch.Tensor:
        """Node activities of the last layer from *unscaled* expression ``(batch, n_genes)``.
        ``raw=True`` gives ``h W`` without bias and sigmoid (ADAGE's raw activity)."""
        last = len(self.layers) - 1
        h = self.layer_input(self.scale(x), last)
        return self.layers[last].raw_activity(h) if raw else self.layers[last].encode(h)

    def gene_weights(self) -> torch.Tensor:
        """First-layer weight matrix ``(n_genes, nodes[0])``: the basis of node signatures."""
        return self.layers[0].weight.detach()


def high_weight_genes(weights: torch.Tensor, n_sd: float = 2.5) -> list[tuple[list[int], list[int]]]:
    """Each node's high-weight genes: weight above ``mean + n_sd * sd`` (positive side) or
    below ``mean - n_sd * sd`` (negative side) of that node's weights (Tan et al. 2016).

    Parameters
    ----------
    weights
        ``(n_genes, n_nodes)``.

    Returns
    -------
    list
        Per node, ``(positive gene indices, negative gene indices)``, each sorted by |weight|
        descending.
    """
    w = weights.detach().double().cpu()
    mu, sd = w.mean(0), w.std(0, unbiased=False)  # numpy.std, as ADAGE's high_weight_gene.py
    out = []
    for j in range(w.shape[1]):
        col = w[:, j]
        pos = torch.nonzero(col >= mu[j] + n_sd * sd[j]).flatten()
        neg = torch.nonzero(col <= mu[j] - n_sd * sd[j]).flatten()
        pos = pos[torch.argsort(col[pos], descending=True)].tolist()
        neg = neg[torch.argsort(col[neg])].tolist()
        out.append((pos, neg))
    return out
