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
    normalised per position. The activation is the filter's output as the network uses it:
    rectified after the batch normalisation that follows the convolution (Basset), and on
    every strand the network scans (both for a DeepBind scoring the reverse complement too).

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
    mods = list(model.modules())
    nxt = next((mods[k + 1] for k, m in enumerate(mods[:-1]) if m is conv), None)
    norm = nxt if isinstance(nxt, nn.BatchNorm1d) and nxt.num_features == conv.out_channels else None
    # every call of the convolution in one forward (a DeepBind scans both strands: two calls)
    ins: list[torch.Tensor] = []
    outs: list[torch.Tensor] = []

    def on_conv(mod, inputs, output):
        ins.append(inputs[0].detach())
        if norm is None:
            outs.append(output.detach())

    def on_norm(mod, inputs, output):
        outs.append(output.detach())

    handles = [conv.register_forward_hook(on_conv)]
    if norm is not None:
        handles.append(norm.register_forward_hook(on_norm))
    device = next(model.parameters()).device
    acts, windows = [], []
    try:
        with eval_mode(model):
            for i in range(0, x.shape[0], batch_size):
                ins.clear()
                outs.clear()
                model(x[i : i + batch_size].to(device))
                for inp, out in zip(ins, outs, strict=True):  # the conv input is what the filter saw
                    acts.append(torch.relu(out).cpu())
                    windows.append(inp[:, :4].cpu())
    finally:
        for h in handles:
            h.remove()
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
