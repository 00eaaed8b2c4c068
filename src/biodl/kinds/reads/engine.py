"""The networks behind ``biodl reads classify``: the same calibrated log-probabilities from numpy
(:class:`NumpyKmerBag`, no torch) or from the torch module (:class:`TorchNet`).

``read-classifier`` inference is a sum of k-mer rows, a mean, a LayerNorm, one hidden layer and
one linear head per rank, which numpy does as fast as torch on the CPU and in a fraction of its
memory (numpy ~28 MiB of RSS against torch's ~250 MiB). :class:`NumpyKmerBag` reads the model
file with :func:`biodl.kinds.reads.weights.read_model_file` (the k-mer table memory-mapped) and
takes the padded ``(n, W)`` index matrix of :func:`~biodl.kinds.reads.kmers.read_indices` as is:
row 0 of the table, the padding, is zero (code 0 in a quantised table), so a gather and a sum
over ``W`` give each read's bag without a segment sum. Quantised tables are summed on their
codes, several codes at a time in the lanes of 64-bit words (4-bit codes in 16-bit lanes, 8-bit
codes in 16- or 32-bit lanes, wide enough that the sums cannot carry into the next lane), then
scaled once per read. The heavy numpy calls (take, shifts, sums, matmuls) release the GIL, so
threads share one table (``--threads``).

:class:`TorchNet` runs the torch module (``--engine torch``; ``--device cuda``; ``read-bilstm``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from biodl.errors import BiodlInputError

#: nn.LayerNorm's default epsilon (the module is built with it)
LN_EPS = 1e-5


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    return z - np.log(np.exp(z).sum(1, keepdims=True))


class NumpyKmerBag:
    """``read-classifier`` inference in numpy (float32, or a table quantised to 8 / 4 bits).

    Parameters
    ----------
    meta
        The model's RunMeta as a dict.
    tensors
        Its state dict as numpy arrays (the table may be a memory map).
    chunk
        Reads per forward pass (bounds the working memory: ``chunk x W`` gathered rows).
    path
        The model file (for error messages).
    """

    def __init__(
        self, meta: dict, tensors: dict[str, np.ndarray], chunk: int = 1024, path: str | Path | None = None
    ) -> None:
        self.meta, self.path = meta, path
        if meta.get("recipe") != "read-classifier":
            raise BiodlInputError(
                f"the numpy engine runs read-classifier models; this is {meta.get('recipe')} "
                "(use --engine torch)",
                path=path,
            )
        kw = meta.get("model_kwargs", {})
        t = tensors
        self.k, self.bits = int(kw.get("k", 13)), int(kw.get("bucket_bits", 22))
        self.table_bits = int(kw.get("table_bits", 32))
        self.chunk = int(chunk)
        f32 = np.float32
        self.temperature = np.asarray(t["temperature"], f32)
        self.threshold = np.asarray(t["threshold"], np.float64)
        self.ln_w, self.ln_b = np.asarray(t["mlp.0.weight"], f32), np.asarray(t["mlp.0.bias"], f32)
        self.w1, self.b1 = (
            np.ascontiguousarray(np.asarray(t["mlp.1.weight"], f32).T),
            np.asarray(t["mlp.1.bias"], f32),
        )
        n_ranks = len(self.temperature)
        heads = [np.asarray(t[f"heads.{r}.weight"], f32) for r in range(n_ranks)]
        self.rank_sizes = [h.shape[0] for h in heads]
        self.wh = np.ascontiguousarray(np.concatenate(heads, 0).T)
        self.bh = np.concatenate([np.asarray(t[f"heads.{r}.bias"], f32) for r in range(n_ranks)])
        self.split_at = np.cumsum(self.rank_sizes)[:-1]
        if self.table_bits == 32:
            self.table = np.asarray(t["embed.weight"])  # an ndarray view of the mapping
            self.dim = self.table.shape[1]
            self.table_bytes = self.table.nbytes
            self._pad_nonzero = bool(np.any(self.table[0] != 0))  # never in a trained model
        else:
            codes = t["embed.codes"]
            self.lo, self.step = np.asarray(t["embed.lo"], f32), np.asarray(t["embed.step"], f32)
            self.dim = self.lo.shape[0]
            per_row = codes.shape[1]
            if per_row != -(-self.dim * self.table_bits // 64) * 8:
                raise BiodlInputError(
                    f"quantised table of {per_row} bytes a row does not match "
                    f"{self.dim} x {self.table_bits} bits",
                    path=path,
                )
            self.words = per_row // 8
            # the rows as little-endian 64-bit words (code j at bits b*j..), a view: no copy
            self.table = np.asarray(codes).view("<u8").reshape(codes.shape[0], self.words)
            self.table_bytes = codes.nbytes
        self.rows = self.table.shape[0]

    @classmethod
    def load(cls, path: str | Path, chunk: int = 1024) -> NumpyKmerBag:
        """From a model file or run directory (the k-mer table memory-mapped, read-only)."""
        from biodl.kinds.reads.weights import read_model_file

        mf = read_model_file(path)
        return cls(mf.meta, mf.tensors, chunk, mf.path)

    # ------------------------------------------------------------------------------ forward
    def bag_sums(self, x: np.ndarray) -> np.ndarray:
        """Sum of the table rows of every read's k-mers, ``(n, dim)`` float32 (``x`` ``(n, W)``,
        0 = padding)."""
        if self.table_bits == 32:
            g = self.table.take(x, axis=0)  # (n, W, dim)
            if self._pad_nonzero:
                g *= (x > 0)[..., None]
            return g.sum(1, dtype=np.float32)
        n, W = x.shape
        b = self.table_bits
        lane = 16 if (2**b - 1) * W < 2**16 else 32
        per_lane, lanes = lane // b, 64 // lane
        vmask = (1 << b) - 1
        mask = np.uint64(sum(vmask << (lane * j) for j in range(lanes)))
        g = self.table.take(x, axis=0)  # (n, W, words) uint64
        out = np.empty((n, self.words, lanes, per_lane), np.float32)
        lmask = np.uint64((1 << lane) - 1)
        for s in range(per_lane):
            if s:
                v = g >> np.uint64(b * s)
                v &= mask
            else:
                v = g & mask
            tot = v.sum(1)  # (n, words): lane j holds the sum of code (j * per_lane + s)
            for j in range(lanes):
                out[:, :, j, s] = (tot >> np.uint64(lane * j)) & lmask
        sums = out.reshape(n, self.words * lanes * per_lane)[:, : self.dim]
        counts = (x > 0).sum(1, dtype=np.int64).astype(np.float32)
        return sums * self.step + counts[:, None] * self.lo

    def logits(self, x: np.ndarray) -> np.ndarray:
        counts = np.maximum((x > 0).sum(1), 1).astype(np.float32)
        m = self.bag_sums(x) / counts[:, None]
        mu = m.mean(1, keepdims=True)
        d = m - mu
        var = (d * d).mean(1, keepdims=True)
        y = d / np.sqrt(var + np.float32(LN_EPS)) * self.ln_w + self.ln_b
        h = y @ self.w1
        h += self.b1
        np.maximum(h, 0, out=h)
        z = h @ self.wh
        z += self.bh
        return z

    def log_probs(self, x: np.ndarray) -> np.ndarray:
        """Calibrated log-probabilities ``(n, sum(rank_sizes))``, as the torch module's
        ``calibrated_log_probs(model(x))``."""
        out = np.empty((x.shape[0], int(sum(self.rank_sizes))), np.float32)
        for i in range(0, x.shape[0], self.chunk):
            z = self.logits(x[i : i + self.chunk])
            parts = np.split(z, self.split_at, axis=1)
            out[i : i + self.chunk] = np.concatenate(
                [_log_softmax(p / self.temperature[r]) for r, p in enumerate(parts)], axis=1
            )
        return out


class TorchNet:
    """The torch module of a read model (``--engine torch``, ``--device cuda``, ``read-bilstm``)."""

    def __init__(self, model, device: str = "cpu") -> None:
        import torch

        from biodl.train.predict import torch_device

        self._torch = torch
        self.dev = torch_device(device)
        self.model = model.to(self.dev).eval()
        self.k, self.bits = int(model.k), int(model.bucket_bits)
        self.threshold = model.threshold.detach().cpu().numpy().astype(np.float64)
        self.rank_sizes = list(model.rank_sizes)

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> TorchNet:
        from biodl.train import load_model

        model, _ = load_model(path, device="cpu")
        return cls(model, device)

    def log_probs(self, x: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            t = torch.from_numpy(x).to(self.dev, non_blocking=True)
            return self.model.calibrated_log_probs(self.model(t)).float().cpu().numpy()


def keep_freed_memory(trim_mib: int = 64, mmap_mib: int = 16) -> bool:
    """Ask glibc's malloc to keep up to ``trim_mib`` of freed heap and to serve blocks below
    ``mmap_mib`` from the heap, instead of returning every freed block of the per-batch numpy
    temporaries to the kernel and faulting it back in for the next batch (~1 million page faults
    and ~20% of the CPU time for 1,000,000 reads; the peak RSS does not change). For a process
    that classifies (the CLI); no-op where malloc is not glibc's. Returns whether it applied."""
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        return bool(
            libc.mallopt(m_mmap_threshold, mmap_mib << 20) and libc.mallopt(m_trim_threshold, trim_mib << 20)
        )
    except (OSError, AttributeError):
        return False


def pick_engine(engine: str, device: str, recipe: str | None) -> str:
    """``numpy`` or ``torch``: ``auto`` is numpy for a read-classifier on the CPU."""
    engine = engine.lower()
    if engine not in ("auto", "numpy", "torch"):
        raise BiodlInputError(f"--engine must be auto, numpy or torch, got {engine!r}")
    cpu = device.lower() == "cpu"
    if engine == "numpy" and not cpu:
        raise BiodlInputError(f"the numpy engine runs on the CPU; --device {device} needs --engine torch")
    if engine == "numpy" and recipe != "read-classifier":
        raise BiodlInputError(
            f"the numpy engine runs read-classifier models, not {recipe} (use --engine torch)"
        )
    if engine == "auto":
        return "numpy" if cpu and recipe == "read-classifier" else "torch"
    return engine


__all__ = ["LN_EPS", "NumpyKmerBag", "TorchNet", "keep_freed_memory", "pick_engine"]
