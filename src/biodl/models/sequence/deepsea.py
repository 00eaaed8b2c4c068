"""DeepSEA (Zhou & Troyanskaya, Nat Methods 2015).

Three valid (unpadded) convolutions of 320, 480 and 960 filters of width 8, each rectified;
max pooling (width 4, stride 4) after the first two; dropout 0.2, 0.2 and 0.5 after the
three convolution blocks; a 925-unit rectified fully connected layer and a linear output
layer of 919 chromatin features (690 TF binding, 125 DNase, 104 histone-mark profiles). The
original Torch7 model ends in a sigmoid; here the output is logits and the sigmoid belongs
to the loss (``BCEWithLogitsLoss``). The original ``Threshold(0, 1e-6)`` units are plain
ReLUs here.

Training (the ``deepsea`` recipe) departs from the paper too: AdamW (lr 1e-3, batch 64, no
weight decay by default) where the paper used SGD with momentum, an L2 penalty of 5e-7 on the
weights, an L1 penalty of 1e-8 on the output of the 925-unit layer and a max-norm of 0.9 on
each unit's weights; none of the last two is applied here (``--weight-decay`` gives an L2).

Input length
------------
The paper used 1000 bp windows, for which the last convolution has 53 positions and the
dense layer sees ``960 * 53 = 50880`` features. Two ways to use other lengths:

* ``seq_len=L`` (default 1000): the dense layer is sized for length ``L`` exactly, as in the
  paper; inputs of any other length are rejected.
* ``seq_len=None``: the last feature map is resized to ``adaptive_positions`` positions by
  adaptive max pooling, so any length >= :attr:`DeepSEA.min_len` is accepted. The default
  ``adaptive_positions=53`` makes the model the same shape as the paper's at 1000 bp (where
  the adaptive pooling is the identity, so weights are interchangeable between the two
  modes); longer inputs are max-pooled into the 53 positions, shorter ones have positions
  repeated.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from biodl.models.pooling import AdaptiveMaxPool1d
from biodl.models.sequence.base import SequenceModel


def _conv_len(length: int, kernel: int) -> int:
    return length - kernel + 1


def _pool_len(length: int, kernel: int, stride: int) -> int:
    return (length - kernel) // stride + 1 if length >= kernel else 0


class DeepSEA(SequenceModel):
    """The DeepSEA network.

    Parameters
    ----------
    n_outputs
        Number of outputs (919 chromatin features in the paper).
    seq_len
        Input length the dense layer is built for (1000 in the paper), or ``None`` for
        variable-length input through adaptive max pooling (see the module docstring).
    n_filters
        Filters of the three convolutions.
    kernel_size
        Width of every convolution.
    pool_size
        Width and stride of the max pooling after the first two convolutions.
    hidden
        Units of the fully connected layer.
    conv_dropout
        Dropout after the first two convolution blocks.
    dropout
        Dropout after the third convolution (before the fully connected layer).
    adaptive_positions
        Number of positions the last feature map is pooled to when ``seq_len`` is ``None``.

    Attributes
    ----------
    min_len
        Shortest accepted input (the length at which the last convolution has one position;
        163 bp with the paper's widths).
    n_positions
        Positions of the last feature map entering the dense layer.

    Shapes
    ------
    Input ``(batch, 4, length)`` one-hot (``A, C, G, T``), ``length == seq_len``, or any
    ``length >= min_len`` when ``seq_len`` is ``None``.
    Output ``(batch, n_outputs)`` logits.
    """

    def __init__(
        self,
        n_outputs: int = 919,
        seq_len: int | None = 1000,
        n_filters: Sequence[int] = (320, 480, 960),
        kernel_size: int = 8,
        pool_size: int = 4,
        hidden: int = 925,
        conv_dropout: float = 0.2,
        dropout: float = 0.5,
        adaptive_positions: int = 53,
    ) -> None:
        super().__init__()
        n_filters = tuple(int(n) for n in n_filters)
        if len(n_filters) != 3:
            raise ValueError(f"n_filters must give 3 widths, not {len(n_filters)}")
        self.n_outputs = n_outputs
        self.kernel_size = kernel_size
        self.pool_size = pool_size
        self._set_length(seq_len, adaptive_positions)
        c1, c2, c3 = n_filters
        self.features = nn.Sequential(
            nn.Conv1d(4, c1, kernel_size),
            nn.ReLU(),
            nn.MaxPool1d(pool_size, pool_size),
            nn.Dropout(conv_dropout),
            nn.Conv1d(c1, c2, kernel_size),
            nn.ReLU(),
            nn.MaxPool1d(pool_size, pool_size),
            nn.Dropout(conv_dropout),
            nn.Conv1d(c2, c3, kernel_size),
            nn.ReLU(),
            nn.Dropout(dropout),
        )
        self.resize = AdaptiveMaxPool1d(self.n_positions) if seq_len is None else nn.Identity()
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c3 * self.n_positions, hidden),
            nn.ReLU(),
            nn.Linear(hidden, n_outputs),
        )

    def feature_len(self, length: int) -> int:
        """Positions of the last convolution's output for an input of ``length`` (<= 0: too short)."""
        k, p = self.kernel_size, self.pool_size
        n = _conv_len(length, k)
        n = _pool_len(n, p, p) if n > 0 else 0
        n = _conv_len(n, k) if n > 0 else 0
        n = _pool_len(n, p, p) if n > 0 else 0
        return _conv_len(n, k) if n > 0 else 0

    def length_rule(self) -> str:
        return f"kernel {self.kernel_size}, pool {self.pool_size}"

    def body(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.resize(self.features(x)))

    def trunk_and_head(self) -> tuple[nn.Sequential, nn.Module]:
        return self.features, nn.Sequential(self.resize, self.classifier)
