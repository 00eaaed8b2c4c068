"""Networks that predict CpG methylation from neighbouring CpG states (see
:mod:`biodl.kinds.methylation.data` for the input layout ``(batch, n_profiles, n_features)``).

* :class:`CpGModule`: DeepCpG's CpG module (Angermueller et al., Genome Biol 2017): every
  profile's neighbourhood (states and distances of the nearest observed CpGs) is embedded by
  one shared dense layer, a bidirectional GRU runs *across the profiles* (cells), and one
  output per predicted profile reads the joint representation -- so a cell's missing site is
  imputed from its own neighbourhood and from the other cells' at the same place.
* :class:`CpGSAE`: Wang et al.'s stacked denoising autoencoder with a supervised output layer
  (Sci Rep 2016): sigmoid layers pre-trained greedily as denoising autoencoders on the
  flattened features, then fine-tuned with the output layer (the network of
  :class:`biodl.models.features.PEDLA`, which is the same construction).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from biodl.models.features import PEDLA
from biodl.models.pooling import AdaptiveMaxPool1d


class CpGModule(nn.Module):
    """DeepCpG's CpG module.

    Parameters
    ----------
    n_profiles
        Profiles (cells, samples) whose neighbourhoods are inputs.
    n_features
        Features per profile (``4k`` neighbour states and distances, plus annotations).
    n_outputs
        Predicted profiles.
    embed
        Units of the per-profile dense embedding (DeepCpG: 256).
    hidden
        GRU units per direction (DeepCpG: 256).
    dropout
        Dropout on the embedding and on the joint representation.
    dna_window
        With a window length, DeepCpG's DNA module is added: two convolution + max-pool
        layers over the one-hot sequence centred on the site, a dense layer, and a joint dense
        layer over the DNA and CpG representations (DeepCpG's joint module) before the
        outputs. 0 (default): the CpG module alone.
    dna_filters, joint
        DNA module convolution widths (DeepCpG: 128, 256) and joint layer units (DeepCpG: 512).

    Shapes: ``(batch, n_profiles, n_features)`` -> ``(batch, n_outputs)`` logits (or levels,
    for regression, through the same linear head); with ``dna_window``, the input is the pair
    ``(neighbours, dna)`` with ``dna`` ``(batch, 4, dna_window)``.
    """

    def __init__(
        self,
        n_profiles: int,
        n_features: int,
        n_outputs: int = 1,
        embed: int = 128,
        hidden: int = 64,
        dropout: float = 0.2,
        dna_window: int = 0,
        dna_filters: Sequence[int] = (64, 128),
        joint: int = 128,
    ) -> None:
        super().__init__()
        self.n_profiles, self.n_features, self.n_outputs = int(n_profiles), int(n_features), int(n_outputs)
        self.dna_window = int(dna_window)
        self.embed = nn.Sequential(nn.Linear(n_features, embed), nn.ReLU(), nn.Dropout(dropout))
        self.gru = nn.GRU(embed, hidden, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(dropout)
        width = 2 * hidden
        self.dna = None
        if self.dna_window:
            f1, f2 = (int(v) for v in dna_filters)
            self.dna = nn.Sequential(
                nn.Conv1d(4, f1, 11, padding=5),
                nn.ReLU(),
                nn.MaxPool1d(4, ceil_mode=True),
                nn.Conv1d(f1, f2, 3, padding=1),
                nn.ReLU(),
                nn.MaxPool1d(2, ceil_mode=True),
                AdaptiveMaxPool1d(8),
                nn.Flatten(),
                nn.Dropout(dropout),
                nn.Linear(8 * f2, 128),
                nn.ReLU(),
            )
            self.joint = nn.Sequential(nn.Linear(width + 128, joint), nn.ReLU(), nn.Dropout(dropout))
            width = int(joint)
        self.head = nn.Linear(width, n_outputs)

    def forward(self, x) -> torch.Tensor:
        dna = None
        if isinstance(x, (tuple, list)):
            x, dna = x
        if (dna is None) != (self.dna is None):
            raise ValueError(
                "this CpG model has a DNA module: give (neighbours, dna)"
                if self.dna is not None
                else "this CpG model has no DNA module: give the neighbour features only"
            )
        if x.dim() != 3 or x.shape[1:] != (self.n_profiles, self.n_features):
            raise ValueError(
                f"CpGModule expects (batch, {self.n_profiles}, {self.n_features}), got {tuple(x.shape)}"
            )
        _, h = self.gru(self.embed(x))  # h: (2, batch, hidden)
        z = self.dropout(torch.cat([h[0], h[1]], dim=1))
        if self.dna is not None:
            if dna.dim() != 3 or dna.shape[1:] != (4, self.dna_window):
                raise ValueError(
                    f"the DNA module expects (batch, 4, {self.dna_window}), got {tuple(dna.shape)}"
                )
            z = self.joint(torch.cat([z, self.dna(dna)], dim=1))
        return self.head(z)


class CpGSAE(PEDLA):
    """Wang et al.'s stacked denoising autoencoder over the flattened neighbour features.

    Parameters
    ----------
    n_profiles, n_features
        Input layout (flattened to ``n_profiles * n_features`` inputs).
    n_outputs
        Predicted profiles.
    hidden, corruption, dropout
        See :class:`~biodl.models.features.PEDLA` (inputs are standardised with the
        training statistics, no ``log1p``: states and scaled distances are already in [0, 1]).
    """

    def __init__(
        self,
        n_profiles: int,
        n_features: int,
        n_outputs: int = 1,
        hidden: Sequence[int] | int = (100, 50),
        corruption: float = 0.2,
        dropout: float = 0.1,
    ) -> None:
        super().__init__(n_profiles * n_features, n_outputs, hidden, corruption, dropout, log1p=False)
        self.n_profiles, self.site_features = int(n_profiles), int(n_features)

    def encode(self, x: torch.Tensor, upto: int | None = None) -> torch.Tensor:
        return super().encode(x.flatten(1) if x.dim() == 3 else x, upto)
