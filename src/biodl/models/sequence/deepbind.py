"""DeepBind (Alipanahi et al., Nat Biotech 2015).

A single motif-detector convolution over the one-hot sequence, rectification with a learned
threshold, max (or max and average) pooling over positions, an optional hidden layer,
dropout, and a linear output. The same network is run on both strands and the larger score
kept, as the original ``deepbind`` tool does when ``reverse_complement = 1``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from biodl.models.sequence.base import SequenceModel, padding_mask


class DeepBind(SequenceModel):
    """The DeepBind network.

    Parameters
    ----------
    n_outputs
        Number of outputs (1 for one TF/RBP).
    num_motifs
        Number of motif detectors (convolution filters). The paper used 16.
    motif_len
        Width of each detector in bases (the paper used 24; released models vary).
    pool
        ``"max"`` or ``"maxavg"`` (max and average pooling, concatenated per detector as
        ``[max_1, avg_1, max_2, avg_2, ...]``).
    hidden
        Units of the hidden layer; 0 for none (a linear output on the pooled features).
    dropout
        Dropout probability before the output layer(s).
    reverse_complement
        Score both strands and keep the larger output.
    pad_value
        Value of the ``motif_len - 1`` positions of padding added on each side (0.25 is the
        original tool's ``N``), so motifs hanging over either end are still scored.
    window_size
        0 (default): score the whole sequence at once. ``w > 0``: as the original ``deepbind``
        tool (``--window-size``; it defaults to ``int(1.5 * motif_len)``), a sequence longer
        than ``w`` is scored as every length-``w`` window, each padded on its own, and the
        largest window score is kept (per strand, before the strands are combined).
    window_context
        With ``window_size > 0``: pad each window with the neighbouring bases of the sequence
        where there are any (the kundajelab/DeepBindToKeras variant of the tool) instead of
        with ``pad_value``.

    Shapes
    ------
    Input ``(batch, 4, length)`` one-hot (``A, C, G, T``), any length >= 1; in a batch of
    mixed lengths, NaN columns past a sequence's end (see :mod:`biodl.models.sequence.base`).
    Output ``(batch, n_outputs)`` logits (or raw scores for regression).

    Padding of a mixed-length batch is filled with ``pad_value`` (the same value as the
    ``motif_len - 1`` positions added on each side) and the detector positions that would not
    exist for the sequence alone are left out of the pooling: a sequence gets the same score
    in any batch as alone, and padding can create no motif hit.
    """

    padded_batches = True

    def __init__(
        self,
        n_outputs: int = 1,
        num_motifs: int = 16,
        motif_len: int = 24,
        pool: str = "max",
        hidden: int = 32,
        dropout: float = 0.5,
        reverse_complement: bool = True,
        pad_value: float = 0.25,
        window_size: int = 0,
        window_context: bool = False,
    ) -> None:
        super().__init__()
        if pool not in ("max", "maxavg"):
            raise ValueError(f"pool must be 'max' or 'maxavg', not {pool!r}")
        if window_size < 0:
            raise ValueError(f"window_size must be >= 0, not {window_size}")
        self.n_outputs = n_outputs
        self.num_motifs = num_motifs
        self.motif_len = motif_len
        self.pool = pool
        self.reverse_complement = reverse_complement
        self.pad_value = pad_value
        self.window_size = window_size
        self.window_context = window_context
        self.conv = nn.Conv1d(4, num_motifs, motif_len)
        n_features = num_motifs * (2 if pool == "maxavg" else 1)
        self.dropout = nn.Dropout(dropout)
        if hidden > 0:
            self.hidden = nn.Linear(n_features, hidden)
            self.out = nn.Linear(hidden, n_outputs)
        else:
            self.hidden = None
            self.out = nn.Linear(n_features, n_outputs)

    def motif_scan(self, x: torch.Tensor) -> torch.Tensor:
        """Rectified detector responses, ``(batch, num_motifs, length + motif_len - 1)``."""
        pad = self.motif_len - 1
        if pad > 0:
            x = F.pad(x, (pad, pad), value=self.pad_value)
        return torch.relu(self.conv(x))

    def _pool_and_head(self, h: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """Pooled features of detector responses ``(n, num_motifs, positions)`` -> ``(n, n_outputs)``
        (``keep (n, positions)``: only those positions are pooled)."""
        if keep is None:
            top, avg = h.amax(dim=-1), (h.mean(dim=-1) if self.pool == "maxavg" else None)
        else:
            k = keep[:, None, :].to(h.dtype)
            h = h * k  # responses are >= 0 (rectified), so a 0 never wins the max
            top = h.amax(dim=-1)
            avg = h.sum(dim=-1) / k.sum(dim=-1) if self.pool == "maxavg" else None
        feats = top if avg is None else torch.stack([top, avg], dim=-1).flatten(1)
        if self.hidden is not None:
            feats = torch.relu(self.hidden(self.dropout(feats)))
        return self.out(self.dropout(feats))

    def _strand(self, x: torch.Tensor) -> torch.Tensor:
        filled, valid = padding_mask(x, self.pad_value)
        if valid is not None:
            # each sequence occupies positions [a, b) of its row; detector position p covers the
            # inputs p - motif_len + 1 .. p, so it exists for the sequence alone iff
            # a <= p < b + motif_len - 1
            length = x.shape[-1]
            a = valid.to(torch.int64).argmax(dim=1)
            b = length - valid.flip(dims=(1,)).to(torch.int64).argmax(dim=1)
            if self.window_size > 0:  # windows of each sequence alone
                rows = [x[i : i + 1, :, int(a[i]) : int(b[i])] for i in range(len(x))]
                return torch.cat([self._strand(r) for r in rows])
            pos = torch.arange(length + self.motif_len - 1, device=x.device)[None, :]
            keep = (pos >= a[:, None]) & (pos < b[:, None] + self.motif_len - 1)
            return self._pool_and_head(self.motif_scan(filled), keep)
        w = self.window_size
        length = x.shape[-1]
        if w <= 0 or length <= w:
            return self._pool_and_head(self.motif_scan(x))
        batch = x.shape[0]
        if self.window_context:
            # Windows of the responses to the whole (once-padded) sequence.
            h = self.motif_scan(x).unfold(-1, w + self.motif_len - 1, 1)  # (batch, motifs, windows, pos)
            h = h.permute(0, 2, 1, 3).reshape(-1, h.shape[1], h.shape[3])
        else:
            # Every window padded on its own.
            xw = x.unfold(-1, w, 1).permute(0, 2, 1, 3)  # (batch, windows, 4, w)
            h = self.motif_scan(xw.reshape(-1, x.shape[1], w))
        y = self._pool_and_head(h)
        return y.view(batch, -1, y.shape[-1]).amax(dim=1)

    def body(self, x: torch.Tensor) -> torch.Tensor:
        y = self._strand(x)
        if self.reverse_complement:
            y = torch.maximum(y, self._strand(x.flip(dims=(-2, -1))))
        return y
