"""First-layer convolution filters as position probability matrices, built from the
sequence windows that activate each filter most (the DeepBind and Basset papers' method)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from biodl.train.predict import eval_mode


def first_conv(model: nn.Module) -> nn.Conv1d:
    """The first ``Conv1d`` of a model (``model.first_layer`` if the model names it)."""
    layer = getattr(model, "first_layer", None)
    if isinstance(layer, nn.Conv1d):
        return layer
    for m in model.modules():
        if isinstance(m, nn.Conv1d):
            return m
    raise ValueError("the model has no Conv1d layer")


@torch.no_grad()
def filter_pwms(
    model: nn.Module,
    x: torch.Tensor,
    threshold: float = 0.5,
    batch_size: int = 256,
    pseudocount: float = 0.01,
) -> tuple[np.ndarray, np.ndarray]:
    """PWMs of the first-layer filters.

    For each filter, every window of the (padded) input whose activation exceeds
    ``threshold`` x the filter's maximum activation over all sequences is collected
    (Kelley et al. 2016), and the base counts of those windows, plus a pseudocount, are
    normalised per position.

    Parameters
    ----------
    model
        Any model whose first ``Conv1d`` reads the one-hot input.
    x
        ``(n, 4, length)`` one-hot sequences (typically positive test sequences).
    threshold
        Fraction of the maximum activation a window must reach.

    Returns
    -------
    (pwms, n_sites)
        ``(n_filters, width, 4)`` probabilities (rows sum to 1; channels A, C, G, T) and
        ``(n_filters,)`` the number of windows behind each PWM.
    """
    from biodl.interpret._inputs import as_module, as_onehot

    model, x = as_module(model), as_onehot(x, "filter PWMs")
    conv = first_conv(model)
    seen: dict[str, torch.Tensor] = {}

    def hook(mod, inputs, output):
        seen["in"] = inputs[0].detach()
        seen["out"] = output.detach()

    handle = conv.register_forward_hook(hook)
    device = next(model.parameters()).device
    acts, windows = [], []
    try:
        with eval_mode(model):
            for i in range(0, x.shape[0], batch_size):
                seen.clear()
                model(x[i : i + batch_size].to(device))
                inp, out = seen["in"][:, :4], torch.relu(seen["out"])  # conv input is what the filter saw
                acts.append(out.cpu())
                windows.append(inp.cpu())
    finally:
        handle.remove()
    w = conv.kernel_size[0]
    n_filters = conv.out_channels
    act = torch.cat(acts)  # (n, F, P)
    inp = torch.cat(windows)  # (n, 4, L)
    counts = np.zeros((n_filters, w, 4))
    n_sites = np.zeros(n_filters, dtype=np.int64)
    pad = conv.padding[0] if isinstance(conv.padding, tuple) else 0
    if pad:
        inp = torch.nn.functional.pad(inp, (pad, pad), value=0.0)
    unfolded = inp.unfold(2, w, conv.stride[0])  # (n, 4, P, w)
    for f in range(n_filters):
        a = act[:, f, : unfolded.shape[2]]
        amax = float(a.max())
        if amax <= 0:
            continue
        idx = (a > threshold * amax).nonzero()
        if idx.numel() == 0:
            continue
        win = unfolded[idx[:, 0], :, idx[:, 1], :]  # (k, 4, w)
        counts[f] = win.sum(0).T.numpy()
        n_sites[f] = idx.shape[0]
    counts += pseudocount
    pwms = counts / counts.sum(axis=2, keepdims=True)
    return pwms.astype(np.float32), n_sites
