"""Adaptive pooling with a backward pass that is deterministic on CUDA.

biodl trains with deterministic algorithms (the same seed gives the same numbers), and torch has
no deterministic CUDA backward for ``nn.AdaptiveMaxPool1d`` / ``nn.AdaptiveAvgPool1d`` (both run
through the 2-D kernels, whose backward adds into the input gradient with atomics): under
``torch.use_deterministic_algorithms(True)`` the first backward on a GPU raised
``adaptive_max_pool2d_backward_cuda does not have a deterministic implementation``. These
modules give the same outputs, and the same gradients, through operations that are
deterministic on every device: the max through a ``gather`` of the positions the forward
kernel picks, the mean as a product with a fixed (length, bins) averaging matrix. On the CPU,
whose kernels are deterministic, they call torch's own (so a CPU run's numbers are bit for bit
those of ``nn.AdaptiveMaxPool1d`` / ``nn.AdaptiveAvgPool1d``; the product's sums round
differently in the last bit); :data:`PORTABLE_ON_CPU` takes the GPU path there too (tests).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PORTABLE_ON_CPU", "AdaptiveAvgPool1d", "AdaptiveMaxPool1d", "adaptive_bins"]

#: Use the deterministic formulation on the CPU too (the tests that check it set this).
PORTABLE_ON_CPU = False


def _portable(x: torch.Tensor) -> bool:
    return PORTABLE_ON_CPU or x.device.type != "cpu"


def adaptive_bins(length: int, bins: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(start, end)`` of each of ``bins`` windows over ``length`` positions, as torch's adaptive
    pooling takes them: ``floor(i L / n)`` to ``ceil((i + 1) L / n)``."""
    i = torch.arange(bins, device=device)
    return (i * length) // bins, -((-(i + 1) * length) // bins)


class _AdaptivePool1d(nn.Module):
    def __init__(self, output_size: int) -> None:
        super().__init__()
        self.output_size = int(output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveMaxPool1d(_AdaptivePool1d):
    """``nn.AdaptiveMaxPool1d(output_size)`` on ``(..., length)`` with a deterministic backward."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not _portable(x):
            return F.adaptive_max_pool1d(x, self.output_size)
        with torch.no_grad():  # the positions of the maxima: the forward kernel's own choice
            _, idx = F.adaptive_max_pool1d(x, self.output_size, return_indices=True)
        return x.gather(-1, idx)  # gather's backward is deterministic on CUDA


class AdaptiveAvgPool1d(_AdaptivePool1d):
    """``nn.AdaptiveAvgPool1d(output_size)`` on ``(..., length)`` with a deterministic backward."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not _portable(x):
            return F.adaptive_avg_pool1d(x, self.output_size)
        length = x.shape[-1]
        start, end = adaptive_bins(length, self.output_size, x.device)
        pos = torch.arange(length, device=x.device)[:, None]
        inside = (pos >= start) & (pos < end)  # (length, bins)
        weights = inside.to(x.dtype) / (end - start).to(x.dtype)
        return x @ weights
