"""A small splicing-code CNN for splice-site windows.

For short windows centred on a candidate exon/intron boundary: the UCI "primate splice
junction" data (60 nt, classes EI = donor, IE = acceptor, N = neither) or donor/acceptor
windows cut from a genome around annotated ``GT``/``AG`` dinucleotides.

What it is modelled on
----------------------
* The small CNN splice-site classifiers (SpliceRover, Zuallaert et al., Bioinformatics 2018;
  SpliceFinder, Wang et al., BMC Bioinformatics 2019; DeepSplice, Zhang et al., IEEE BIBM
  2016): a first convolution of motif detectors about one splice-signal long (width 9, the
  span of the ``MAG|GURAGU`` donor consensus), a position-aware dense layer over the window,
  dropout, and a softmax (here: logits) over the classes.
* SpliceAI (Jaganathan et al., Cell 2019) for the middle: residual units of
  ``BN - ReLU - dilated conv - BN - ReLU - dilated conv`` plus the identity, with "same"
  padding, in a single small unit by default (64 channels, width 7, dilation 2). It widens
  what each position sees to ``9 + 2 * 2 * (7 - 1) = 33`` nt, enough for a branch point /
  polypyrimidine tract upstream of an acceptor ``AG`` or the exonic side of a donor, for
  ~58k parameters (the whole default network has ~65k, or ~130k with ``seq_len=60``).

Input length
------------
* ``seq_len=None`` (default): global max pooling over positions (position-invariant "is there
  a donor/acceptor signal here" features), so any length >= ``kernel_size`` is accepted.
* ``seq_len=L``: max pooling of width ``pool_size`` and a dense layer over all pooled
  positions (position-aware, for windows centred on the candidate boundary, as in the
  UCI data); inputs of any other length are rejected.
"""

from __future__ import annotations

import torch
from torch import nn

from biodl.models.pooling import AdaptiveMaxPool1d
from biodl.models.sequence.base import SequenceModel


class _ResidualUnit(nn.Module):
    """SpliceAI residual unit: two pre-activated dilated "same" convolutions plus the identity.

    Shapes: ``(batch, channels, length)`` in and out.
    """

    def __init__(self, channels: int, kernel_size: int, dilation: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm1d(channels),
            nn.ReLU(),
            nn.Conv1d(channels, channels, kernel_size, dilation=dilation, padding="same"),
            nn.BatchNorm1d(channels),
            nn.ReLU(),
            nn.Conv1d(channels, channels, kernel_size, dilation=dilation, padding="same"),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SplicingCNN(SequenceModel):
    """A small CNN for classifying splice-site windows.

    Parameters
    ----------
    n_outputs
        Number of outputs (3 for EI / IE / N; 1 for a binary true/decoy site).
    seq_len
        Window length for the position-aware head, or ``None`` for global max pooling (see
        the module docstring).
    n_filters
        Channels of the first convolution and of the residual units.
    kernel_size
        Width of the first (motif) convolution, unpadded.
    n_res_blocks
        Number of SpliceAI-style residual units (0 for a plain one-convolution network).
    res_kernel_size
        Width of the residual units' convolutions (odd).
    dilation
        Dilation of the residual units' convolutions.
    pool_size
        Width and stride of the max pooling before the position-aware head (``seq_len`` set).
    hidden
        Units of the fully connected hidden layer.
    dropout
        Dropout before the hidden and the output layer.

    Attributes
    ----------
    min_len
        Shortest accepted input: ``kernel_size`` (global pooling) or
        ``kernel_size + pool_size - 1`` (position-aware head).
    n_positions
        Positions entering the dense layer (1 with global pooling).

    Shapes
    ------
    Input ``(batch, 4, length)`` one-hot (``A, C, G, T``), ``length == seq_len``, or any
    ``length >= min_len`` when ``seq_len`` is ``None``.
    Output ``(batch, n_outputs)`` logits (softmax / cross-entropy for the 3 classes).
    """

    unit = "nt"

    def __init__(
        self,
        n_outputs: int = 3,
        seq_len: int | None = None,
        n_filters: int = 64,
        kernel_size: int = 9,
        n_res_blocks: int = 1,
        res_kernel_size: int = 7,
        dilation: int = 2,
        pool_size: int = 3,
        hidden: int = 64,
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        if res_kernel_size % 2 != 1:
            raise ValueError(f"res_kernel_size must be odd, not {res_kernel_size}")
        self.n_outputs = n_outputs
        self.kernel_size = kernel_size
        self.pool_size = pool_size
        self.seq_len = seq_len  # feature_len depends on it
        self._set_length(seq_len, 1, min_len=kernel_size if seq_len is None else kernel_size + pool_size - 1)
        self.features = nn.Sequential(
            nn.Conv1d(4, n_filters, kernel_size),
            nn.ReLU(),
            *[_ResidualUnit(n_filters, res_kernel_size, dilation) for _ in range(n_res_blocks)],
            nn.BatchNorm1d(n_filters),
            nn.ReLU(),
        )
        self.pool = AdaptiveMaxPool1d(1) if seq_len is None else nn.MaxPool1d(pool_size, pool_size)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(n_filters * self.n_positions, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, n_outputs),
        )

    def feature_len(self, length: int) -> int:
        """Positions entering the dense layer for an input of ``length`` (<= 0: too short)."""
        n = length - self.kernel_size + 1
        if self.seq_len is None:
            return 1 if n >= 1 else 0
        return n // self.pool_size if n >= self.pool_size else 0

    def length_rule(self) -> str:
        return f"kernel {self.kernel_size}" + ("" if self.seq_len is None else f", pool {self.pool_size}")

    def body(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)))

    def trunk_and_head(self) -> tuple[nn.Sequential, nn.Module]:
        return self.features, nn.Sequential(self.pool, self.classifier)
