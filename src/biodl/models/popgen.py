"""Networks for population-genetic inference from simulated genotype matrices.

* :class:`SummaryMLP`: Sheehan & Song (PLoS Comput Biol 2016): a fully connected network on
  summary statistics of the data (site-frequency spectrum, LD by distance, haplotype statistics;
  :mod:`biodl.kinds.popgen.stats`), standardised inside the network with training statistics.
* :class:`FlagelCNN`: Flagel, Brandvain & Schrider (Mol Biol Evol 2019): a 1-D CNN over the
  row-sorted haplotype matrix (sites along the convolution, haplotypes as channels: two
  convolutions, average pooling, a third, pooling, dropout), merged with a dense branch on the
  inter-site distances, then a dense layer and the output.
* :class:`ExchangeableNet`: a permutation-invariant network over haplotypes (after Chan et al.,
  NeurIPS 2018): the same convolution is applied to every haplotype (with the distances as a
  second channel), the haplotype features are averaged (so the output does not depend on the
  order of the haplotypes, or on their number), then convolved along sites and pooled.

Matrix inputs are ``(batch, 1 + n_haplotypes, n_sites)``: row 0 the distance of each site to the
previous one (fraction of the window), rows 1.. alleles -1 / +1 (0: missing or padding). Outputs
are ``(batch, n_outputs)``: standardised log-scale parameters (regression) or class logits.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from biodl.models.pooling import AdaptiveAvgPool1d


class StatScaler(nn.Module):
    """``(slog(x) - mean) / sd`` with training statistics (buffers); ``slog(x) = sign(x) log1p(|x|)``
    tames statistics that grow with theta (segregating sites, pi)."""

    def __init__(self, n_stats: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_stats))
        self.register_buffer("std", torch.ones(n_stats))

    @staticmethod
    def _pre(x: torch.Tensor) -> torch.Tensor:
        return torch.sign(x) * torch.log1p(x.abs())

    @torch.no_grad()
    def fit(self, x: torch.Tensor) -> StatScaler:
        """Set the statistics from training rows ``(n, n_stats)`` (sd 0 -> 1)."""
        z = self._pre(x.float())
        self.mean.copy_(z.mean(0))
        sd = z.std(0, unbiased=False)
        self.std.copy_(torch.where(sd > 0, sd, torch.ones_like(sd)))
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self._pre(x) - self.mean) / self.std


class SummaryMLP(nn.Module):
    """Sheehan & Song's network on summary statistics.

    Parameters
    ----------
    n_stats
        Number of statistics (input width).
    n_outputs
        Parameters (regression) or classes.
    hidden
        Hidden layer widths.
    dropout
        Dropout after each hidden layer.

    Input ``(batch, n_stats)`` raw statistics; output ``(batch, n_outputs)``.
    """

    input = "stats"

    def __init__(
        self, n_stats: int, n_outputs: int, hidden: Sequence[int] = (64, 64), dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.n_outputs = int(n_outputs)
        self.scale = StatScaler(n_stats)
        layers: list[nn.Module] = []
        d = n_stats
        for h in hidden:
            layers += [nn.Linear(d, int(h)), nn.ReLU(), nn.Dropout(dropout)]
            d = int(h)
        layers.append(nn.Linear(d, n_outputs))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.scale(x))


class FlagelCNN(nn.Module):
    """Flagel et al.'s CNN over the haplotype matrix with a positions branch.

    Departures from the released recombination network (flag0010/pop_gen_cnn,
    ``train.phased.mergenet``): every convolution has ``channels`` filters (the paper's first
    has 1,250, then 256 and 256); dropout follows the merged dense layer too (the paper has none
    there); no L2 penalty on each layer (the paper: 1e-4; ``--weight-decay`` is the nearest).
    At 50 haplotypes x 418 sites the defaults have 7.08 M parameters, the paper's 7.69 M.

    Parameters
    ----------
    n_haplotypes
        Haplotypes (convolution input channels).
    n_sites
        Sites (columns) of the matrix.
    n_outputs
        Parameters (regression) or classes.
    channels
        Filters of each convolution (the paper: 1,250 in the first, 256 in the others).
    kernel
        Kernel width along sites (the paper: 2).
    pos_hidden
        Width of the dense layer on the distances (the paper: 64).
    hidden
        Width of the merged dense layer (the paper: 256).
    dropout
        Dropout after the pooled convolutions and the merged layer (the paper: 0.25 after the
        pooled convolutions, none after the merged layer; 0.1 on the positions branch).

    Input ``(batch, 1 + n_haplotypes, n_sites)``; output ``(batch, n_outputs)``.
    """

    input = "matrix"

    def __init__(
        self,
        n_haplotypes: int,
        n_sites: int,
        n_outputs: int,
        channels: int = 256,
        kernel: int = 2,
        pos_hidden: int = 64,
        hidden: int = 256,
        dropout: float = 0.25,
    ) -> None:
        super().__init__()
        self.n_outputs = int(n_outputs)
        k = int(kernel)
        self.conv = nn.Sequential(
            nn.Conv1d(n_haplotypes, channels, k),
            nn.ReLU(),
            nn.Conv1d(channels, channels, k),
            nn.ReLU(),
            nn.AvgPool1d(2),
            nn.Dropout(dropout),
            nn.Conv1d(channels, channels, k),
            nn.ReLU(),
            nn.AvgPool1d(2),
            nn.Dropout(dropout),
            nn.Flatten(),
        )
        with torch.no_grad():
            n_flat = self.conv(torch.zeros(1, n_haplotypes, n_sites)).shape[1]
        self.pos = nn.Sequential(nn.Linear(n_sites, pos_hidden), nn.ReLU(), nn.Dropout(0.1))
        self.head = nn.Sequential(
            nn.Linear(n_flat + pos_hidden, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, n_outputs),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dist, hap = x[:, 0], x[:, 1:]
        return self.head(torch.cat([self.conv(hap), self.pos(dist * 100.0)], dim=1))


class ExchangeableNet(nn.Module):
    """A permutation-invariant network over haplotypes.

    Parameters
    ----------
    n_outputs
        Parameters (regression) or classes.
    channels
        Filters of the per-haplotype and the pooled convolutions.
    kernel
        Kernel width along sites.
    pool_bins
        Sites are average-pooled to this many bins before the dense layers.
    hidden
        Width of the dense layer.
    dropout
        Dropout before the output.

    Input ``(batch, 1 + n_haplotypes, n_sites)`` (any number of haplotypes and sites); output
    ``(batch, n_outputs)``, unchanged by any permutation of the haplotype rows.
    """

    input = "matrix"

    def __init__(
        self,
        n_outputs: int,
        channels: int = 64,
        kernel: int = 5,
        pool_bins: int = 32,
        hidden: int = 128,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.n_outputs = int(n_outputs)
        k = int(kernel)
        self.per_hap = nn.Sequential(
            nn.Conv2d(2, channels, (1, k), padding=(0, k // 2)),
            nn.ReLU(),
            nn.Conv2d(channels, channels, (1, k), padding=(0, k // 2)),
            nn.ReLU(),
        )
        self.joint = nn.Sequential(
            nn.Conv1d(2 * channels, channels, k, padding=k // 2),
            nn.ReLU(),
            AdaptiveAvgPool1d(pool_bins),
            nn.Flatten(),
            nn.Linear(channels * pool_bins, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, n_outputs),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dist, hap = x[:, :1], x[:, 1:]  # (B, 1, S), (B, H, S)
        d = (dist * 100.0).unsqueeze(2).expand(-1, 1, hap.shape[1], -1)  # (B, 1, H, S)
        z = self.per_hap(torch.cat([hap.unsqueeze(1), d], dim=1))  # (B, C, H, S)
        pooled = torch.cat([z.mean(2), z.amax(2)], dim=1)  # symmetric in the haplotypes: (B, 2C, S)
        return self.joint(pooled)


__all__ = ["ExchangeableNet", "FlagelCNN", "StatScaler", "SummaryMLP"]
