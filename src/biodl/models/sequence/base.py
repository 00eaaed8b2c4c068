"""The forward contract of the sequence networks.

Every sequence model maps one-hot DNA ``(batch, 4, length)`` (channels ``A, C, G, T``) to
``(batch, n_outputs)`` logits. :class:`SequenceModel` owns what they all check and compute:
the input's shape, the shortest accepted length (from the subclass's :meth:`feature_len`),
the length a fixed-size dense layer was built for (``seq_len``; ``None`` = any length through
adaptive pooling), and the first convolution (the motif detectors, read by the filter and
motif interpretation). Subclasses implement :meth:`feature_len` and :meth:`body`.

Batches of mixed lengths: the positions past the end of a shorter sequence are NaN in all
four channels (the training and scoring datasets put every sequence at the start of its row;
a reverse complement moves the padding to the start). A network whose output does not depend
on the length it was built for (DeepBind's global pooling) sets ``padded_batches = True`` and
masks those positions (:func:`padding_mask`), so that a sequence scores the same in any batch
as alone; the others only ever see batches of one length.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from biodl.errors import BiodlInputError


def padding_mask(x: torch.Tensor, fill: float) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(x, valid)``: ``x`` with its padding (NaN columns, see the module docstring) set to
    ``fill`` and ``valid (batch, length)`` marking the sequence's positions, or ``(x, None)``
    when the batch has no padding."""
    pad = torch.isnan(x[:, 0, :])
    if not bool(pad.any()):
        return x, None
    valid = ~pad
    return torch.where(valid[:, None, :], x, torch.full_like(x, fill)), valid


class SequenceModel(nn.Module):
    """Base class of the sequence networks.

    Subclasses set ``n_outputs`` and call :meth:`_set_length` in ``__init__`` once the
    attributes :meth:`feature_len` uses exist, implement :meth:`feature_len` (positions of
    the last length-dependent feature map, <= 0 when the input is too short) and :meth:`body`
    (the network on a checked input), and describe their length rule in :meth:`length_rule`.

    Attributes
    ----------
    seq_len
        Length the network was built for, or ``None`` (any length >= :attr:`min_len`).
    min_len
        Shortest accepted input.
    n_positions
        Positions entering the dense layer (``feature_len(seq_len)``, or the adaptive size).
    """

    unit: ClassVar[str] = "bp"
    #: Scores NaN-padded batches of mixed lengths exactly as each sequence alone.
    padded_batches: ClassVar[bool] = False
    n_outputs: int
    seq_len: int | None = None
    min_len: int = 1
    n_positions: int = 1

    @property
    def model_name(self) -> str:
        return type(self).__name__

    def _set_length(
        self, seq_len: int | None, adaptive_positions: int | None = None, min_len: int | None = None
    ) -> None:
        """Set ``seq_len``, ``min_len`` and ``n_positions`` (the adaptive size when ``seq_len``
        is ``None``; ``adaptive_positions=None`` leaves it to the subclass)."""
        self.seq_len = seq_len
        self.min_len = self._shortest() if min_len is None else int(min_len)
        if seq_len is not None:
            self.check_length(seq_len, "seq_len")
            self.n_positions = self.feature_len(seq_len)
        elif adaptive_positions is not None:
            if adaptive_positions < 1:
                raise ValueError(f"adaptive_positions must be >= 1, not {adaptive_positions}")
            self.n_positions = adaptive_positions

    def feature_len(self, length: int) -> int:
        """Positions of the last length-dependent feature map for an input of ``length``."""
        return length

    def length_rule(self) -> str:
        """What sets the shortest length (for the error message)."""
        return ""

    def _shortest(self, limit: int = 1_000_000) -> int:
        length = 1
        while self.feature_len(length) < 1:
            length += 1
            if length > limit:  # pragma: no cover - defensive
                raise ValueError(f"{self.model_name} accepts no input up to {limit} {self.unit}")
        return length

    @property
    def first_layer(self) -> nn.Conv1d:
        """The first convolution (the motif detectors), weight ``(n_filters, 4, kernel)``."""
        for m in self.modules():
            if isinstance(m, nn.Conv1d):
                return m
        raise AttributeError(f"{self.model_name} has no Conv1d layer")

    def check_length(self, length: int, what: str = "input length") -> None:
        if length < self.min_len:
            rule = self.length_rule()
            raise BiodlInputError(
                f"{self.model_name} needs sequences of at least {self.min_len} {self.unit}"
                + (f" ({rule})" if rule else "")
                + f"; {what} is {length}"
                + (f" (training: --pad {self.min_len} pads shorter ones with N)" if what == "seq_len" else "")
            )

    def check_input(self, x: torch.Tensor) -> None:
        """Shape ``(batch, 4, length)``, at least :attr:`min_len` long, and ``seq_len`` long when
        the network was built for one length."""
        if x.dim() != 3 or x.shape[1] != 4:
            raise BiodlInputError(
                f"{self.model_name} expects one-hot input (batch, 4, length), got {tuple(x.shape)}"
            )
        length = x.shape[-1]
        self.check_length(length)
        if self.seq_len is not None and length != self.seq_len:
            raise BiodlInputError(
                f"this {self.model_name} was built for seq_len={self.seq_len} (its dense layer depends on "
                f"the length); got length {length}. Build it with seq_len={length}, or seq_len=None for "
                "variable lengths"
            )

    def body(self, x: torch.Tensor) -> torch.Tensor:
        """The network on a checked input."""
        raise NotImplementedError

    def trunk_and_head(self) -> tuple[nn.Sequential, nn.Module] | None:
        """``(trunk, head)`` with ``head(trunk(x)) == body(x)``, where ``trunk`` is a sequence of
        layers starting with the convolutions (the fast ISM recomputes only the positions a
        substitution changes in its local layers); ``None`` when the network has no such split."""
        return None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return self.body(x)
