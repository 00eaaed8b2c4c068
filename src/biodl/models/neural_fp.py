"""Neural graph fingerprints (Duvenaud et al. 2015) and circular-fingerprint baselines.

:class:`NeuralFingerprint` is Algorithm 2 of the paper: ``radius`` rounds of message passing
in which every atom sums its neighbours' features and the features of its bonds, multiplies
the sum by a weight matrix chosen by the atom's degree (plus a self term), normalises and
applies a ReLU; after every round (and before the first) each atom writes a softmax over the
``fp_length`` fingerprint bits, and these smooth "bit assignments" are summed over atoms and
rounds into the fixed-length fingerprint. :class:`NeuralFPNet` puts a linear layer or a
one-hidden-layer network on top; :class:`CircularFPNet` does the same on RDKit Morgan
fingerprints (the paper's baseline). Pure ``nn.Module``\\ s: no I/O, no training loop.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from biodl.kinds.molecules.featurize import ATOM_FDIM, BOND_FDIM, MAX_DEGREE, GraphBatch

__all__ = ["CircularFPNet", "NeuralFPNet", "NeuralFingerprint", "PredictionHead"]


class NeuralFingerprint(nn.Module):
    """The differentiable fingerprint of a batch of molecular graphs.

    Parameters
    ----------
    fp_length
        Number of fingerprint bits ``L``.
    radius
        Number of message-passing rounds ``R`` (the fingerprint sees neighbourhoods up to
        ``R`` bonds away).
    hidden
        Width of the atom feature vectors after each round.
    atom_dim, bond_dim
        Input feature sizes (62 and 6 with :mod:`biodl.kinds.molecules.featurize`).
    normalize
        Batch-normalise the atom activations of every round (the paper trained with batch
        normalisation).

    Shapes
    ------
    ``GraphBatch`` with ``N`` atoms of ``B`` molecules -> ``(B, fp_length)``.
    """

    def __init__(
        self,
        fp_length: int = 50,
        radius: int = 4,
        hidden: int = 20,
        atom_dim: int = ATOM_FDIM,
        bond_dim: int = BOND_FDIM,
        normalize: bool = True,
    ) -> None:
        super().__init__()
        self.fp_length, self.radius, self.hidden = fp_length, radius, hidden
        self.n_degrees = MAX_DEGREE + 1
        dims = [atom_dim] + [hidden] * radius
        # one weight matrix per degree and round: (n_degrees, in + bond_dim, hidden)
        self.neighbour = nn.ParameterList()
        self.self_lin = nn.ModuleList()
        self.norms = nn.ModuleList()
        for r in range(radius):
            w = torch.empty(self.n_degrees, dims[r] + bond_dim, hidden)
            for d in range(self.n_degrees):
                nn.init.kaiming_uniform_(w[d].T, a=5**0.5)
            self.neighbour.append(nn.Parameter(w))
            self.self_lin.append(nn.Linear(dims[r], hidden))
            self.norms.append(nn.BatchNorm1d(hidden) if normalize else nn.Identity())
        self.readout = nn.ModuleList([nn.Linear(dims[r], fp_length) for r in range(radius + 1)])

    def atom_layers(self, g: GraphBatch) -> list[torch.Tensor]:
        """Atom feature matrices of every round: ``radius + 1`` tensors ``(N, d_r)``."""
        n = g.atoms.shape[0]
        src, dst = g.edge_index[0], g.edge_index[1]
        both_src = torch.cat([src, dst])
        both_dst = torch.cat([dst, src])
        bond_sum = g.atoms.new_zeros(n, g.bonds.shape[1]).index_add_(
            0, both_dst, torch.cat([g.bonds, g.bonds])
        )
        # atoms are sorted by degree: the atoms of degree d are one contiguous slice
        bounds, start = [], 0
        for d, c in enumerate(g.degree_counts):
            if c:
                bounds.append((d, start, start + c))
            start += c
        h = g.atoms
        layers = [h]
        for r in range(self.radius):
            nei = h.new_zeros(n, h.shape[1]).index_add_(0, both_dst, h[both_src])
            z = torch.cat([nei, bond_sum], dim=1)
            w = self.neighbour[r]
            msg = torch.cat([z[a:b] @ w[d] for d, a, b in bounds]) if bounds else h.new_zeros(0, self.hidden)
            h = torch.relu(self.norms[r](self.self_lin[r](h) + msg))
            layers.append(h)
        return layers

    def atom_activations(self, g: GraphBatch) -> list[torch.Tensor]:
        """Per-atom softmax bit assignments of every round: ``radius + 1`` tensors ``(N, L)``.

        The activation of round ``r`` for atom ``a`` describes the neighbourhood of ``a`` of
        radius ``r`` (used to find the substructures that switch on a bit).
        """
        return [
            torch.softmax(lin(h), dim=1) for lin, h in zip(self.readout, self.atom_layers(g), strict=True)
        ]

    def forward(self, g: GraphBatch) -> torch.Tensor:
        acts = self.atom_activations(g)
        total = torch.stack(acts).sum(0)
        return total.new_zeros(g.n_mols, self.fp_length).index_add_(0, g.atom_mol, total)


class PredictionHead(nn.Module):
    """Linear layer or one-hidden-layer ReLU network from a fingerprint to the outputs.

    Parameters
    ----------
    in_dim
        Fingerprint length.
    n_outputs
        Number of outputs.
    head
        ``linear`` or ``mlp``.
    hidden
        Hidden units of the ``mlp`` head.
    dropout
        Dropout before each linear layer of the ``mlp`` head.
    """

    def __init__(
        self, in_dim: int, n_outputs: int, head: str = "mlp", hidden: int = 100, dropout: float = 0.0
    ):
        super().__init__()
        if head not in ("linear", "mlp"):
            raise ValueError(f"head must be 'linear' or 'mlp', not {head!r}")
        self.kind = head
        if head == "linear":
            self.net = nn.Linear(in_dim, n_outputs)
        else:
            self.net = nn.Sequential(
                nn.Dropout(dropout),
                nn.Linear(in_dim, hidden),
                nn.BatchNorm1d(hidden),
                nn.ReLU(),
                nn.Dropout(dropout),
                nn.Linear(hidden, n_outputs),
            )

    def forward(self, fp: torch.Tensor) -> torch.Tensor:
        return self.net(fp)

    @property
    def linear_weight(self) -> torch.Tensor | None:
        """``(n_outputs, in_dim)`` weights of a linear head (``None`` for an MLP)."""
        return self.net.weight if self.kind == "linear" else None


class _TargetScale(nn.Module):
    """Outputs ``y * std + mean`` so the network works on standardised targets."""

    def __init__(self, n_outputs: int, mean: Sequence[float] | None, std: Sequence[float] | None):
        super().__init__()
        m = torch.zeros(n_outputs) if mean is None else torch.tensor(list(mean), dtype=torch.float32)
        s = torch.ones(n_outputs) if std is None else torch.tensor(list(std), dtype=torch.float32)
        if m.numel() != n_outputs or s.numel() != n_outputs:
            raise ValueError("target_mean/target_std need one value per output")
        self.register_buffer("mean", m)
        self.register_buffer("std", s)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return y * self.std + self.mean


class NeuralFPNet(nn.Module):
    """Neural graph fingerprint + prediction head (Duvenaud et al. 2015).

    Parameters
    ----------
    n_outputs
        Number of targets (regression values or logits).
    fp_length, radius, conv_width
        Fingerprint length ``L``, number of rounds ``R`` and atom feature width of the
        fingerprint network (:class:`NeuralFingerprint`).
    head
        ``mlp`` (one hidden layer, the paper's "neural net") or ``linear``.
    hidden
        Hidden units of the ``mlp`` head.
    dropout
        Dropout in the ``mlp`` head.
    normalize
        Batch normalisation in the fingerprint network.
    target_mean, target_std
        Per-output scaling of the outputs (regression targets standardised on the
        training set; ``None`` = identity). Stored with the model.
    implicit_h
        How molecules are featurised for this network: hydrogens written in brackets made
        implicit first (``True``, the recipe's default since 2026-12-07: ``CC[C@@H](C)CO`` and
        ``CCC(C)CO`` are one input), or as written (``False``: the paper's code, and the models
        trained before). See :func:`biodl.kinds.molecules.featurize.hydrogens_implicit`.

    Shapes
    ------
    :class:`~biodl.kinds.molecules.featurize.GraphBatch` of ``B`` molecules -> ``(B, n_outputs)``.
    """

    input_kind = "graph"

    def __init__(
        self,
        n_outputs: int = 1,
        fp_length: int = 50,
        radius: int = 4,
        conv_width: int = 20,
        head: str = "mlp",
        hidden: int = 100,
        dropout: float = 0.0,
        normalize: bool = True,
        target_mean: Sequence[float] | None = None,
        target_std: Sequence[float] | None = None,
        implicit_h: bool = False,
    ) -> None:
        super().__init__()
        self.n_outputs = n_outputs
        self.implicit_h = bool(implicit_h)
        self.fingerprint = NeuralFingerprint(fp_length, radius, conv_width, normalize=normalize)
        self.head = PredictionHead(fp_length, n_outputs, head, hidden, dropout)
        self.scale = _TargetScale(n_outputs, target_mean, target_std)

    def forward(self, g: GraphBatch) -> torch.Tensor:
        return self.scale(self.head(self.fingerprint(g)))


class CircularFPNet(nn.Module):
    """Circular (RDKit Morgan) fingerprint + prediction head: the paper's baseline.

    The fingerprint is computed by RDKit before the network (``radius`` and ``fp_length``
    are stored here so that prediction featurises new molecules the same way); only the head
    is trained.

    Parameters
    ----------
    n_outputs
        Number of targets.
    fp_length
        Fingerprint bits.
    radius
        Morgan radius.
    head, hidden, dropout
        As in :class:`NeuralFPNet`.
    target_mean, target_std
        Output scaling (see :class:`NeuralFPNet`).

    Shapes
    ------
    ``(B, fp_length)`` float fingerprints -> ``(B, n_outputs)``.
    """

    input_kind = "morgan"

    def __init__(
        self,
        n_outputs: int = 1,
        fp_length: int = 1024,
        radius: int = 2,
        head: str = "mlp",
        hidden: int = 100,
        dropout: float = 0.0,
        target_mean: Sequence[float] | None = None,
        target_std: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        self.n_outputs, self.fp_length, self.radius = n_outputs, fp_length, radius
        self.head = PredictionHead(fp_length, n_outputs, head, hidden, dropout)
        self.scale = _TargetScale(n_outputs, target_mean, target_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale(self.head(x.float()))
