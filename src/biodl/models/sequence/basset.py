"""Basset (Kelley, Snoek & Rinn, Genome Res 2016).

Three valid (unpadded) convolutions of 300, 200 and 200 filters of widths 19, 11 and 7, each
followed by batch normalisation, ReLU and max pooling of width (and stride) 3, 4 and 4; two
1000-unit fully connected layers, each with batch normalisation, ReLU and dropout 0.3; and a
linear output of 164 DNase-seq accessibility profiles (ENCODE and Roadmap cell types). The
pooling rounds up (``ceil_mode=True``) like the released Torch7 model; at 600 bp every
pooling divides evenly, the last convolution has 10 positions and the first dense layer sees
``200 * 10 = 2000`` features. The original ends in a sigmoid; here the output is logits.

Input length
------------
* ``seq_len=L`` (default 600, the paper's window): the dense layer is sized for length ``L``
  exactly; inputs of any other length are rejected.
* ``seq_len=None``: the last feature map is resized to ``adaptive_positions`` positions
  (default 10, the paper's geometry at 600 bp, where the resizing is the identity) by
  adaptive max pooling, so any length >= :attr:`Basset.min_len` is accepted.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from biodl.models.pooling import AdaptiveMaxPool1d
from biodl.models.sequence.base import SequenceModel


def _conv_len(length: int, kernel: int) -> int:
    return length - kernel + 1


def _ceil_pool_len(length: int, kernel: int, stride: int) -> int:
    """Output length of ``MaxPool1d(kernel, stride, ceil_mode=True)`` (PyTorch's rule)."""
    if length < 1:
        return 0
    out = (length - kernel + stride - 1) // stride + 1
    if (out - 1) * stride >= length:
        out -= 1
    return out


class Basset(SequenceModel):
    """The Basset network.

    Parameters
    ----------
    n_outputs
        Number of outputs (164 cell types in the paper).
    seq_len
        Input length the dense layers are built for (600 in the paper), or ``None`` for
        variable-length input through adaptive max pooling (see the module docstring).
    n_filters
        Filters of the three convolutions.
    kernel_sizes
        Widths of the three convolutions.
    pool_sizes
        Width (and stride) of the max pooling after each convolution.
    hidden
        Units of each fully connected hidden layer (two layers of 1000 in the paper).
    dropout
        Dropout after each hidden layer.
    adaptive_positions
        Number of positions the last feature map is pooled to when ``seq_len`` is ``None``.

    Attributes
    ----------
    min_len
        Shortest accepted input (121 bp with the paper's widths).
    n_positions
        Positions of the last feature map entering the dense layers.

    Shapes
    ------
    Input ``(batch, 4, length)`` one-hot (``A, C, G, T``), ``length == seq_len``, or any
    ``length >= min_len`` when ``seq_len`` is ``None``.
    Output ``(batch, n_outputs)`` logits.

    Notes
    -----
    Batch normalisation in the dense layers follows the released model (Kipoi ``Basset``).
    In training mode the batch must hold more than one sequence.
    """

    def __init__(
        self,
        n_outputs: int = 164,
        seq_len: int | None = 600,
        n_filters: Sequence[int] = (300, 200, 200),
        kernel_sizes: Sequence[int] = (19, 11, 7),
        pool_sizes: Sequence[int] = (3, 4, 4),
        hidden: Sequence[int] = (1000, 1000),
        dropout: float = 0.3,
        adaptive_positions: int = 10,
    ) -> None:
        super().__init__()
        n_filters = tuple(int(n) for n in n_filters)
        kernel_sizes = tuple(int(k) for k in kernel_sizes)
        pool_sizes = tuple(int(p) for p in pool_sizes)
        if not len(n_filters) == len(kernel_sizes) == len(pool_sizes) >= 1:
            raise ValueError(
                "n_filters, kernel_sizes and pool_sizes must have the same (non-zero) length, got "
                f"{len(n_filters)}, {len(kernel_sizes)}, {len(pool_sizes)}"
            )
        self.n_outputs = n_outputs
        self.kernel_sizes = kernel_sizes
        self.pool_sizes = pool_sizes
        self._set_length(seq_len, adaptive_positions)

        layers: list[nn.Module] = []
        c_in = 4
        for c_out, k, p in zip(n_filters, kernel_sizes, pool_sizes, strict=True):
            layers += [
                nn.Conv1d(c_in, c_out, k),
                nn.BatchNorm1d(c_out),
                nn.ReLU(),
                nn.MaxPool1d(p, p, ceil_mode=True),
            ]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.resize = AdaptiveMaxPool1d(self.n_positions) if seq_len is None else nn.Identity()
        dense: list[nn.Module] = [nn.Flatten()]
        n_in = c_in * self.n_positions
        for n_hidden in hidden:
            dense += [nn.Linear(n_in, n_hidden), nn.BatchNorm1d(n_hidden), nn.ReLU(), nn.Dropout(dropout)]
            n_in = n_hidden
        dense.append(nn.Linear(n_in, n_outputs))
        self.classifier = nn.Sequential(*dense)

    def feature_len(self, length: int) -> int:
        """Positions of the last pooled feature map for an input of ``length`` (<= 0: too short)."""
        n = length
        for k, p in zip(self.kernel_sizes, self.pool_sizes, strict=True):
            n = _conv_len(n, k)
            if n < 1:
                return 0
            n = _ceil_pool_len(n, p, p)
        return n

    def length_rule(self) -> str:
        return f"kernels {self.kernel_sizes}, pools {self.pool_sizes}"

    def body(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.resize(self.features(x)))

    def trunk_and_head(self) -> tuple[nn.Sequential, nn.Module]:
        return self.features, nn.Sequential(self.resize, self.classifier)
