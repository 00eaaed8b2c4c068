"""Read classifiers over hashed canonical k-mers, with one output head per taxonomic rank.

Both networks read a batch of k-mer bucket indices ``x`` ``(batch, n_kmers)`` (int64; 0 =
padding, see :mod:`biodl.kinds.reads.kmers`) and return the logits of every rank side by side,
``(batch, sum(rank_sizes))``, lowest rank (species) first. They carry, as buffers saved with the
weights, a temperature per rank (fitted on validation reads after training) and the minimum
calibrated confidence at which a read is called at that rank:

* :class:`KmerBagClassifier` -- built for throughput: a mean-pooled k-mer ``EmbeddingBag`` and a
  small MLP (a fastText-style bag of k-mers); its table can be quantised after training to 8 or 4
  bits a value (:class:`QuantizedBag`, ``biodl reads quantize``) for classifying in less memory;
* :class:`ReadBiLSTM` -- DeepMicrobes' design (Liang et al. 2020), smaller: a k-mer embedding, a
  bidirectional LSTM and additive attention pooling, then the same heads.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class _RankHeads(nn.Module):
    """Shared by the read classifiers: heads per rank, the hierarchical loss and calibration."""

    n_outputs: int

    def _init_heads(self, rank_sizes: list[int], width: int, min_confidence: float) -> None:
        if not rank_sizes or any(int(n) < 1 for n in rank_sizes):
            raise ValueError(f"rank_sizes must be positive, got {rank_sizes}")
        self.rank_sizes = [int(n) for n in rank_sizes]
        self.n_outputs = sum(self.rank_sizes)
        self.heads = nn.ModuleList(nn.Linear(width, n) for n in self.rank_sizes)
        self.register_buffer("temperature", torch.ones(len(self.rank_sizes)))
        self.register_buffer("threshold", torch.full((len(self.rank_sizes),), float(min_confidence)))

    def split(self, logits: torch.Tensor) -> list[torch.Tensor]:
        """Logits ``(batch, n_outputs)`` as one tensor per rank."""
        return list(torch.split(logits, self.rank_sizes, dim=1))

    def calibrated_log_probs(self, logits: torch.Tensor) -> torch.Tensor:
        """Log-probabilities per rank after temperature scaling, ``(batch, n_outputs)``."""
        parts = self.split(logits)
        return torch.cat([F.log_softmax(p / self.temperature[r], dim=1) for r, p in enumerate(parts)], dim=1)

    #: weight of the decoys' term in the loss (Hendrycks et al. 2019 used 0.5)
    decoy_weight = 0.5

    def loss(self, batch) -> dict[str, torch.Tensor]:
        """Cross-entropy summed over ranks (targets ``(batch, n_ranks)`` class indices, -1 or NaN
        where unknown) and the lowest rank's accuracy. Rows whose targets are -2 (decoys,
        :data:`biodl.kinds.reads.data.DECOY`) add, with weight :attr:`decoy_weight`, the
        cross-entropy of their distribution at each rank to the uniform one."""
        x, y = batch[0], batch[1]
        y = torch.nan_to_num(y.float(), nan=-1.0).long()
        parts = self.split(self(x))
        total = parts[0].new_zeros(())
        dec = y[:, 0] == -2
        has_decoys = bool(dec.any())
        for r, p in enumerate(parts):
            m = y[:, r] >= 0
            if m.any():
                total = total + F.cross_entropy(p[m], y[m, r])
            if has_decoys and p.shape[1] > 1:
                total = total - self.decoy_weight * F.log_softmax(p[dec], dim=1).mean()
        m0 = y[:, 0] >= 0
        acc = (parts[0].argmax(1)[m0] == y[m0, 0]).float().mean() if m0.any() else total.new_zeros(())
        return {"loss": total, "accuracy": acc}


class QuantizedBag(nn.Module):
    """A k-mer table quantised per column (:func:`biodl.kinds.reads.weights.quantize_table`):
    buffers ``codes`` (uint8; two 4-bit codes a byte when ``bits=4``; rows padded to whole 64-bit
    words), ``lo`` and ``step``
    (value = ``lo + code * step``). Inference only. The sum over a bag is taken on the codes and
    scaled once (``sum(codes) * step + n * lo``): the table is never dequantised as a whole.
    """

    def __init__(self, rows: int, dim: int, bits: int) -> None:
        super().__init__()
        if bits not in (4, 8):
            raise ValueError(f"table_bits must be 32, 8 or 4, got {bits}")
        self.bits, self.dim = int(bits), int(dim)
        width = -(-dim * bits // 64) * 8  # whole 64-bit words a row (unused codes are 0)
        self.register_buffer("codes", torch.zeros(rows, width, dtype=torch.uint8))
        self.register_buffer("lo", torch.zeros(dim))
        self.register_buffer("step", torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Sums ``(n, dim)`` of the rows of the padded indices ``x`` ``(n, W)`` (0 = padding: code
        0, left out of the count). A row is read as 64-bit words and its codes summed several at
        a time in 16- or 32-bit lanes of the words (as :class:`biodl.kinds.reads.engine.NumpyKmerBag`
        does), wide enough that no lane's sum carries into the next."""
        n, W = x.shape
        b = self.bits
        words = self.codes.view(torch.int64)  # (rows, bytes // 8)
        g = words[x]  # (n, W, words)
        lane = 16 if (2**b - 1) * W < 2**16 else 32
        per_lane, lanes = lane // b, 64 // lane
        mask = sum(((1 << b) - 1) << (lane * j) for j in range(lanes))
        out = g.new_empty(n, words.shape[1], lanes, per_lane)
        for s in range(per_lane):
            tot = ((g >> (b * s)) & mask).sum(1)  # lane j of a word: the sum of its code j * per_lane + s
            for j in range(lanes):
                out[:, :, j, s] = (tot >> (lane * j)) & ((1 << lane) - 1)
        sums = out.reshape(n, words.shape[1] * lanes * per_lane)[:, : self.dim].to(self.step.dtype)
        counts = (x > 0).sum(1, keepdim=True).to(sums.dtype)
        return sums * self.step + counts * self.lo


class KmerBagClassifier(_RankHeads):
    """Bag of hashed canonical k-mers -> MLP -> one head per rank.

    Parameters
    ----------
    rank_sizes
        Number of taxa of each rank, lowest first (from the reference).
    k
        k-mer length (the reads are hashed with it; stored with the model).
    bucket_bits
        ``2**bucket_bits`` embedding rows (k-mer buckets) plus the padding row.
    dim
        Embedding width.
    hidden
        Width of the hidden layer.
    dropout
        Dropout before the heads.
    min_confidence
        Calibrated confidence needed to call a read at a rank (stored; overridable when classifying).
    sparse
        Sparse embedding gradients: a step touches only the rows of the batch's k-mers (trained
        with Adagrad, which takes sparse gradients, as fastText trains with SGD).
    table_bits
        32: a float32 table (trained); 8 or 4: a quantised table (:class:`QuantizedBag`, written
        by ``biodl reads quantize`` from a trained model; inference only).
    """

    def __init__(
        self,
        rank_sizes: list[int],
        k: int = 13,
        bucket_bits: int = 22,
        dim: int = 16,
        hidden: int = 256,
        dropout: float = 0.1,
        min_confidence: float = 0.9,
        sparse: bool = True,
        table_bits: int = 32,
    ) -> None:
        super().__init__()
        self.k, self.bucket_bits, self.table_bits = int(k), int(bucket_bits), int(table_bits)
        self.embed: nn.Module
        if self.table_bits == 32:
            # mode "sum" divided by the count below, not "mean" with a padding_idx: that path of
            # embedding_bag is ~10x slower on the CPU (row 0, the padding index, is never looked up)
            self.embed = nn.EmbeddingBag(2**self.bucket_bits + 1, dim, mode="sum", sparse=sparse)
            nn.init.normal_(self.embed.weight, std=0.1)
            with torch.no_grad():
                self.embed.weight[0].zero_()
        else:
            self.embed = QuantizedBag(2**self.bucket_bits + 1, dim, self.table_bits)
        # the mean of ~140 k-mer vectors is small: a LayerNorm rescales it before the MLP
        self.mlp = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout))
        self._init_heads(rank_sizes, hidden, min_confidence)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # the valid k-mers as one flat list with per-read offsets: EmbeddingBag's fast path
        # (3x faster than a padded 2-D input); a read without a valid k-mer gets zeros
        valid = x > 0
        counts = valid.sum(1)
        if self.table_bits == 32:
            bag = self.embed(x[valid], torch.cumsum(counts, 0) - counts)
        else:  # the padded matrix as it is: code 0 of row 0 adds nothing
            bag = self.embed(x)
        h = self.mlp(bag / counts.clamp_min(1).unsqueeze(1).to(bag.dtype))
        return torch.cat([head(h) for head in self.heads], dim=1)


class ReadBiLSTM(_RankHeads):
    """DeepMicrobes-style: k-mer embedding -> BiLSTM -> additive attention -> MLP -> heads.

    Parameters
    ----------
    rank_sizes
        Number of taxa of each rank, lowest first.
    k, bucket_bits
        k-mer length and ``2**bucket_bits`` embedding rows (exact k-mer codes when ``4**k`` fits).
    dim
        Embedding width.
    lstm
        LSTM units per direction.
    attention
        Width of the attention layer.
    hidden
        Width of the dense layer before the heads.
    dropout, min_confidence
        As :class:`KmerBagClassifier`.
    """

    def __init__(
        self,
        rank_sizes: list[int],
        k: int = 8,
        bucket_bits: int = 16,
        dim: int = 32,
        lstm: int = 48,
        attention: int = 32,
        hidden: int = 64,
        dropout: float = 0.1,
        min_confidence: float = 0.9,
    ) -> None:
        super().__init__()
        self.k, self.bucket_bits = int(k), int(bucket_bits)
        self.embed = nn.Embedding(2**self.bucket_bits + 1, dim, padding_idx=0)
        self.lstm = nn.LSTM(dim, lstm, batch_first=True, bidirectional=True)
        self.att = nn.Sequential(nn.Linear(2 * lstm, attention), nn.Tanh(), nn.Linear(attention, 1))
        self.mlp = nn.Sequential(nn.Linear(2 * lstm, hidden), nn.ReLU(), nn.Dropout(dropout))
        self._init_heads(rank_sizes, hidden, min_confidence)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # the LSTM runs over each read's own k-mers only (packed): over the padding of a batch's
        # shorter reads, a read's output depended on the reads beside it (and on --batch-size)
        valid = x != 0
        pos = torch.arange(1, x.shape[1] + 1, device=x.device)
        lengths = (valid * pos).amax(dim=1).clamp(min=1)  # up to the last valid k-mer
        if bool((lengths == x.shape[1]).all()):  # reads of one length (training's): nothing to pack
            h, _ = self.lstm(self.embed(x))
        else:
            packed = nn.utils.rnn.pack_padded_sequence(
                self.embed(x), lengths.cpu(), batch_first=True, enforce_sorted=False
            )
            h, _ = nn.utils.rnn.pad_packed_sequence(
                self.lstm(packed)[0], batch_first=True, total_length=x.shape[1]
            )
        score = self.att(h).squeeze(-1).masked_fill(x == 0, -1e4)
        a = torch.softmax(score, dim=1).unsqueeze(-1)
        pooled = (a * h).sum(1)
        z = self.mlp(pooled)
        return torch.cat([head(z) for head in self.heads], dim=1)


__all__ = ["KmerBagClassifier", "QuantizedBag", "ReadBiLSTM"]
