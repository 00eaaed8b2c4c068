"""DanQ (Quang & Xie, Nucleic Acids Res 2016).

A hybrid convolutional / recurrent network: one valid convolution of 320 filters of width 26
(the motif scanner), ReLU, max pooling of width and stride 13, dropout 0.2; a bidirectional
LSTM of 320 units per direction over the pooled positions (the motif "grammar"), dropout
0.5; the LSTM outputs of all positions flattened into a 925-unit rectified dense layer, and
a linear output of the 919 DeepSEA chromatin features. The original Keras model ends in a
sigmoid; here the output is logits. Keras' LSTM used a hard sigmoid on its gates and one
bias vector per gate; :class:`torch.nn.LSTM` uses the logistic sigmoid and two bias vectors
(so each direction has 1280 more parameters than the Keras layer).

Input length
------------
At the paper's 1000 bp the convolution has 975 positions, the pooling 75, and the dense layer
sees ``75 * 640 = 48000`` features, flattened position by position as Keras did.

* ``seq_len=L`` (default 1000): the dense layer is sized for length ``L`` exactly; inputs of
  any other length are rejected.
* ``seq_len=None``: the LSTM runs over however many positions there are and its output is
  resized to ``adaptive_positions`` positions (default 75, the paper's geometry at 1000 bp,
  where the resizing is the identity) by adaptive max pooling, so any length >=
  :attr:`DanQ.min_len` is accepted.
"""

from __future__ import annotations

import torch
from torch import nn

from biodl.models.pooling import AdaptiveMaxPool1d
from biodl.models.sequence.base import SequenceModel


class DanQ(SequenceModel):
    """The DanQ network.

    Parameters
    ----------
    n_outputs
        Number of outputs (919 chromatin features in the paper).
    seq_len
        Input length the dense layer is built for (1000 in the paper), or ``None`` for
        variable-length input through adaptive max pooling (see the module docstring).
    n_filters
        Filters of the convolution.
    kernel_size
        Width of the convolution.
    pool_size
        Width and stride of the max pooling.
    lstm_hidden
        LSTM units per direction.
    hidden
        Units of the fully connected layer.
    conv_dropout
        Dropout after the pooling (before the LSTM).
    dropout
        Dropout after the LSTM.
    adaptive_positions
        Number of positions the LSTM output is pooled to when ``seq_len`` is ``None``.

    Attributes
    ----------
    min_len
        Shortest accepted input, ``kernel_size + pool_size - 1`` (38 bp with the paper's
        widths).
    n_positions
        Positions of the LSTM output entering the dense layer.

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
        n_filters: int = 320,
        kernel_size: int = 26,
        pool_size: int = 13,
        lstm_hidden: int = 320,
        hidden: int = 925,
        conv_dropout: float = 0.2,
        dropout: float = 0.5,
        adaptive_positions: int = 75,
    ) -> None:
        super().__init__()
        self.n_outputs = n_outputs
        self.kernel_size = kernel_size
        self.pool_size = pool_size
        self._set_length(seq_len, adaptive_positions, min_len=kernel_size + pool_size - 1)
        self.conv = nn.Conv1d(4, n_filters, kernel_size)
        self.pool = nn.MaxPool1d(pool_size, pool_size)
        self.conv_dropout = nn.Dropout(conv_dropout)
        self.lstm = nn.LSTM(n_filters, lstm_hidden, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(dropout)
        self.resize = AdaptiveMaxPool1d(self.n_positions) if seq_len is None else nn.Identity()
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(2 * lstm_hidden * self.n_positions, hidden),
            nn.ReLU(),
            nn.Linear(hidden, n_outputs),
        )

    def feature_len(self, length: int) -> int:
        """Pooled positions (= LSTM steps) for an input of ``length`` (<= 0: too short)."""
        n = length - self.kernel_size + 1
        return (n - self.pool_size) // self.pool_size + 1 if n >= self.pool_size else 0

    def length_rule(self) -> str:
        return f"kernel {self.kernel_size}, pool {self.pool_size}"

    def body(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_dropout(self.pool(torch.relu(self.conv(x))))  # (batch, n_filters, steps)
        h, _ = self.lstm(h.transpose(1, 2))  # (batch, steps, 2 * lstm_hidden)
        h = self.resize(self.dropout(h).transpose(1, 2))  # (batch, 2 * lstm_hidden, n_positions)
        # flatten position-major, as Keras' Flatten did on the (steps, features) LSTM output
        return self.classifier(h.transpose(1, 2))
