"""In-silico saturation mutagenesis (ISM): the effect of every single-base substitution.

:func:`saturation_mutagenesis` works for any ``y = model(X)`` module and chooses the
fastest exact strategy the model allows:

``"deepbind"``
    :class:`biodl.models.DeepBind` (global pooling, ``window_size`` 0): a substitution
    changes only the ``motif_len`` detector responses whose windows cover it, and the
    change of each is ``W[:, alt, k] - W[:, :, k] @ x[:, p]``. The pooled features are
    updated from cached prefix / suffix maxima (and sums), then only the small dense head
    runs. Both strands are handled.
``"trunk"``
    Models whose forward is a stack of *local* layers (``Conv1d``, ``MaxPool1d``,
    ``AvgPool1d``, eval-mode ``BatchNorm1d``/``Dropout``, element-wise activations)
    followed by any head: ``nn.Sequential`` models, and models with a ``features``
    ``nn.Sequential`` followed by ``classifier`` (after an optional ``resize``), such as
    DeepSEA and Basset. The reference activations are cached and, for each edit, every
    trunk layer is recomputed only over the positions the edit can reach (the fastISM idea,
    Nair et al. 2022); a leading ``Flatten`` + ``Linear`` of the head is updated by the
    change of the touched positions only. The rest of the head runs in full.
``"full"``
    Anything else: batched full forward passes over the edited sequences.

With ``method="auto"`` the fast paths are checked against ``model(X)`` on the reference
sequences first and ``"full"`` is used if they disagree. All three agree up to float
rounding (see ``bench/ism.py``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from biodl.errors import BiodlInputError

__all__ = ["ism_method", "ism_scores", "saturation_mutagenesis"]

_POINTWISE = (
    nn.ReLU,
    nn.LeakyReLU,
    nn.ELU,
    nn.GELU,
    nn.SiLU,
    nn.Sigmoid,
    nn.Tanh,
    nn.Softplus,
    nn.Identity,
    nn.Dropout,
)
_METHODS = ("auto", "deepbind", "trunk", "full")


# --------------------------------------------------------------------------------------------
# Edits
# --------------------------------------------------------------------------------------------
def _edits(X: torch.Tensor, start: int, end: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """All non-identity substitutions in ``[start, end)``: ``(seq, pos, alt)`` index vectors.

    A column that is a clean one-hot of base ``b`` has no edit to ``b``; an ``N`` column (all
    equal, or zero) gets all four.
    """
    sub = X[:, :, start:end]
    identity = (sub == 1) & (sub.sum(dim=1, keepdim=True) == 1)  # (n, 4, L')
    seq, alt, pos = torch.nonzero(~identity, as_tuple=True)
    order = torch.argsort(seq * (4 * (end - start)) + pos * 4 + alt)
    return seq[order], pos[order] + start, alt[order]


def _apply_edits(X: torch.Tensor, seq: torch.Tensor, pos: torch.Tensor, alt: torch.Tensor) -> torch.Tensor:
    Xe = X[seq].clone()
    rows = torch.arange(seq.shape[0], device=X.device)
    Xe[rows, :, pos] = 0
    Xe[rows, alt, pos] = 1
    return Xe


def _flat(y: torch.Tensor) -> torch.Tensor:
    if isinstance(y, (tuple, list)):
        raise BiodlInputError("saturation_mutagenesis needs a model that returns one tensor")
    return y.reshape(y.shape[0], -1)


# --------------------------------------------------------------------------------------------
# Full passes
# --------------------------------------------------------------------------------------------
def _full_runner(model: nn.Module, X: torch.Tensor) -> Callable:
    def run(seq: torch.Tensor, pos: torch.Tensor, alt: torch.Tensor) -> torch.Tensor:
        return _flat(model(_apply_edits(X, seq, pos, alt)))

    return run


# --------------------------------------------------------------------------------------------
# DeepBind: recompute only the detector windows covering the edit
# --------------------------------------------------------------------------------------------
class _DeepBindCache:
    def __init__(self, model: nn.Module, X: torch.Tensor) -> None:
        self.model = model
        m = model.motif_len
        self.m = m
        W = model.conv.weight  # (M, 4, m)
        self.Wf = W.flip(-1)  # kernel index m-1-t at offset t
        self.Wf_alt = self.Wf.permute(1, 0, 2).contiguous()  # (4, M, m)
        self.L = X.shape[-1]
        self.strands = [self._strand_cache(X)]
        if model.reverse_complement:
            self.strands.append(self._strand_cache(X.flip(dims=(-2, -1))))

    def _strand_cache(self, X: torch.Tensor) -> dict[str, torch.Tensor]:
        model, m = self.model, self.m
        P = model.conv(F.pad(X, (m - 1, m - 1), value=model.pad_value))  # (n, M, Lp) pre-activation
        R = torch.relu(P)
        n, M, Lp = R.shape
        zeros = R.new_zeros(n, M, 1)
        pref = torch.cat([zeros, torch.cummax(R, dim=-1).values], dim=-1)  # pref[j] = max R[:j]
        suf = torch.cat([torch.cummax(R.flip(-1), dim=-1).values.flip(-1), zeros], dim=-1)  # max R[j:]
        WX = torch.einsum("Mct,ncl->nlMt", self.Wf, X)  # (n, L, M, m): W[:, :, k] @ x[:, p]
        return {"P": P, "R": R, "pref": pref, "suf": suf, "sum": R.sum(-1), "WX": WX, "Lp": Lp}

    def _feats(self, mx: torch.Tensor, total: torch.Tensor, Lp: int) -> torch.Tensor:
        if self.model.pool == "max":
            return mx
        return torch.stack([mx, total / Lp], dim=-1).flatten(1)

    def _head(self, feats: torch.Tensor) -> torch.Tensor:
        model = self.model
        if model.hidden is not None:
            feats = torch.relu(model.hidden(feats))
        return model.out(feats)

    def reference(self) -> torch.Tensor:
        ys = [self._head(self._feats(c["R"].amax(-1), c["sum"], c["Lp"])) for c in self.strands]
        return torch.maximum(ys[0], ys[1]) if len(ys) == 2 else ys[0]

    def __call__(self, seq: torch.Tensor, pos: torch.Tensor, alt: torch.Tensor) -> torch.Tensor:
        ys = []
        for s, c in enumerate(self.strands):
            p, a = (pos, alt) if s == 0 else (self.L - 1 - pos, 3 - alt)
            delta = self.Wf_alt[a] - c["WX"][seq, p]  # (B, M, m)
            idx = p[:, None] + torch.arange(self.m, device=p.device)  # output positions p .. p+m-1
            Pw = c["P"][seq[:, None], :, idx].transpose(1, 2)  # (B, M, m)
            new = torch.relu(Pw + delta)
            outside = torch.maximum(c["pref"][seq, :, p], c["suf"][seq, :, p + self.m])
            mx = torch.maximum(outside, new.amax(-1))
            total = c["sum"][seq]
            if self.model.pool != "max":
                old = c["R"][seq[:, None], :, idx].transpose(1, 2)
                total = total - old.sum(-1) + new.sum(-1)
            ys.append(self._head(self._feats(mx, total, c["Lp"])))
        return torch.maximum(ys[0], ys[1]) if len(ys) == 2 else ys[0]


def _is_deepbind(model: nn.Module, length: int) -> bool:
    from biodl.models.sequence.deepbind import DeepBind

    return isinstance(model, DeepBind) and (model.window_size <= 0 or length <= model.window_size)


# --------------------------------------------------------------------------------------------
# Local trunks (fastISM)
# --------------------------------------------------------------------------------------------
@dataclass
class _Window:
    """A sliding-window layer: kernel span, stride, padding and how to apply it unpadded."""

    span: int
    stride: int
    padding: int
    pad_value: float
    apply: Callable[[torch.Tensor], torch.Tensor]


def _as_int(v) -> int:
    return int(v[0]) if isinstance(v, (tuple, list)) else int(v)


def _window_layer(layer: nn.Module) -> _Window | None:
    if isinstance(layer, nn.Conv1d):
        if layer.padding_mode != "zeros" or isinstance(layer.padding, str):
            if layer.padding not in ("valid",):
                return None
        k, s, d = layer.kernel_size[0], layer.stride[0], layer.dilation[0]
        pad = 0 if isinstance(layer.padding, str) else _as_int(layer.padding)
        w, b, g = layer.weight, layer.bias, layer.groups
        if d != 1 or g != 1:
            return _Window(d * (k - 1) + 1, s, pad, 0.0, lambda x: F.conv1d(x, w, b, s, 0, d, g))
        # im2col + one matmul: for the narrow windows of ISM this beats the convolution
        # primitives, which re-pack the weights on every call.
        wt = w.reshape(w.shape[0], -1).t().contiguous()  # (C_in * k, C_out)

        def conv(x: torch.Tensor) -> torch.Tensor:
            n, c, _ = x.shape
            cols = x.unfold(2, k, s).permute(0, 2, 1, 3).reshape(-1, c * k)  # (n * W_out, C_in * k)
            y = cols @ wt if b is None else torch.addmm(b, cols, wt)
            return y.view(n, -1, wt.shape[1]).transpose(1, 2)

        return _Window(k, s, pad, 0.0, conv)
    if isinstance(layer, nn.MaxPool1d):
        if layer.return_indices:
            return None
        k, s, d = _as_int(layer.kernel_size), _as_int(layer.stride), _as_int(layer.dilation)
        return _Window(
            d * (k - 1) + 1, s, _as_int(layer.padding), -math.inf, lambda x: F.max_pool1d(x, k, s, 0, d)
        )
    if isinstance(layer, nn.AvgPool1d):
        if layer.ceil_mode or _as_int(layer.padding) != 0:
            return None
        k, s = _as_int(layer.kernel_size), _as_int(layer.stride)
        return _Window(k, s, 0, 0.0, lambda x: F.avg_pool1d(x, k, s, 0))
    return None


def _pointwise(layer: nn.Module) -> bool:
    if isinstance(layer, _POINTWISE):
        return True
    return isinstance(layer, nn.BatchNorm1d) and not layer.training and layer.track_running_stats


def _local_prefix(layers: list[nn.Module]) -> int:
    k = 0
    for layer in layers:
        if _pointwise(layer) or _window_layer(layer) is not None:
            k += 1
        else:
            break
    return k


def _trunk_split(model: nn.Module) -> tuple[list[nn.Module], Callable[[torch.Tensor], torch.Tensor]] | None:
    """``(local layers, head)`` with ``head(trunk(x)) == model(x)``, or None."""
    split = getattr(model, "trunk_and_head", None)
    if callable(split):  # the sequence models' own split (biodl.models.sequence.base)
        got = split()
        if got is None:
            return None
        layers = list(got[0])
        k = _local_prefix(layers)
        if not k:
            return None
        rest = nn.Sequential(*layers[k:])
        return layers[:k], nn.Sequential(rest, got[1]) if len(rest) else got[1]
    if isinstance(model, nn.Sequential):
        layers = list(model)
        k = _local_prefix(layers)
        rest = nn.Sequential(*layers[k:])
        return (layers[:k], rest) if k else None
    feats, clf = getattr(model, "features", None), getattr(model, "classifier", None)
    if isinstance(feats, nn.Sequential) and isinstance(clf, nn.Module):
        layers = list(feats)
        k = _local_prefix(layers)
        if not k:
            return None
        rest = nn.Sequential(*layers[k:])
        resize = getattr(model, "resize", None) or nn.Identity()
        return layers[:k], nn.Sequential(rest, resize, clf) if len(rest) else nn.Sequential(resize, clf)
    return None


def _split_linear_head(head: nn.Module) -> tuple[nn.Linear, nn.Module] | None:
    """If ``head`` is (Identity...,) Flatten, Linear, rest: the Linear and the rest."""
    mods: list[nn.Module] = []

    def walk(m: nn.Module) -> None:
        if isinstance(m, nn.Sequential):
            for c in m:
                walk(c)
        else:
            mods.append(m)

    walk(head)
    i = 0
    while i < len(mods) and isinstance(mods[i], (nn.Identity, nn.Dropout)):
        i += 1
    if i + 1 < len(mods) and isinstance(mods[i], nn.Flatten) and isinstance(mods[i + 1], nn.Linear):
        fl = mods[i]
        if fl.start_dim == 1 and fl.end_dim == -1:
            return mods[i + 1], nn.Sequential(*mods[i + 2 :])
    return None


class _TrunkCache:
    def __init__(self, trunk: list[nn.Module], head: nn.Module, X: torch.Tensor) -> None:
        self.steps: list[tuple[str, object, torch.Tensor | None, int, int]] = []
        h = X
        for layer in trunk:
            win = _window_layer(layer)
            if win is None:
                self.steps.append(("point", layer, None, 0, 0))
                h = layer(h)
                continue
            out = layer(h)
            lout = out.shape[-1]
            need = (lout - 1) * win.stride + win.span  # padded length read by the last output
            right = max(need - win.padding - h.shape[-1], 0)
            hp = F.pad(h, (win.padding, right), value=win.pad_value)
            self.steps.append(("window", win, hp, lout, h.shape[-1]))
            h = out
        self.top = h  # (n, C, LT)
        split = _split_linear_head(head)
        self.head = head
        self.linear = None
        if split is not None:
            lin, rest = split
            C, LT = h.shape[1], h.shape[2]
            if lin.in_features == C * LT:
                self.linear, self.rest = lin, rest
                self.Wl = lin.weight.view(lin.out_features, C, LT).permute(2, 1, 0).contiguous()  # (LT, C, H)
                self.ref_lin = lin(h.flatten(1))  # (n, H)

    def reference(self) -> torch.Tensor:
        return self.head(self.top)

    def __call__(self, seq: torch.Tensor, pos: torch.Tensor, alt: torch.Tensor) -> torch.Tensor:
        B = seq.shape[0]
        dev = seq.device
        start = pos.clone()
        vals = torch.zeros(B, 4, 1, device=dev, dtype=self.top.dtype)
        vals[torch.arange(B, device=dev), alt, 0] = 1
        for kind, op, hp, lout, _lin in self.steps:
            if kind == "point":
                vals = op(vals)
                continue
            win: _Window = op  # type: ignore[assignment]
            s, span, pad = win.stride, win.span, win.padding
            width = vals.shape[-1]
            wout = min(lout, (width + span - 2) // s + 1)
            jlo = torch.clamp(torch.div(start + pad - span + 1 + s - 1, s, rounding_mode="floor"), min=0)
            jlo = torch.clamp(jlo, max=lout - wout)
            wneed = (wout - 1) * s + span
            idx = jlo[:, None] * s + torch.arange(wneed, device=dev)  # padded coordinates
            cur = hp[seq[:, None], :, idx]  # (B, wneed, C)
            rel = idx - (start + pad)[:, None]
            inside = (rel >= 0) & (rel < width)
            patch = vals.gather(2, rel.clamp(0, width - 1)[:, None, :].expand(-1, vals.shape[1], -1))
            x = torch.where(inside[:, None, :], patch, cur.transpose(1, 2))
            vals = win.apply(x)
            start = jlo
        C, width = vals.shape[1], vals.shape[2]
        idx = start[:, None] + torch.arange(width, device=dev)
        if self.linear is not None:
            old = self.top[seq[:, None], :, idx].transpose(1, 2)  # (B, C, W)
            diff = (vals - old).permute(0, 2, 1)  # (B, W, C)
            out = self.ref_lin[seq].clone()
            flat_pos = idx.reshape(-1)
            flat_diff = diff.reshape(-1, C)
            owner = torch.arange(B, device=dev).repeat_interleave(width)
            # one matmul per touched position of the top feature map
            for p in torch.unique(flat_pos).tolist():
                sel = flat_pos == p
                out.index_add_(0, owner[sel], flat_diff[sel] @ self.Wl[p])
            return _flat(self.rest(out))
        full = self.top[seq].clone()
        full.scatter_(2, idx[:, None, :].expand(-1, C, -1), vals)
        return _flat(self.head(full))


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------
def ism_method(model: nn.Module, length: int | None = None) -> str:
    """The strategy ``method="auto"`` tries first for ``model``: ``deepbind``, ``trunk`` or ``full``."""
    if _is_deepbind(model, length or 0):
        return "deepbind"
    return "trunk" if _trunk_split(model) is not None else "full"


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    scale = float(b.abs().max()) if b.numel() else 1.0
    return a.shape == b.shape and bool(((a - b).abs().max() <= 1e-4 * max(scale, 1.0)).item())


@torch.no_grad()
def saturation_mutagenesis(
    model: nn.Module,
    X: torch.Tensor,
    *,
    start: int = 0,
    end: int | None = None,
    batch_size: int = 256,
    method: str = "auto",
    group_size: int = 16,
    device: str | torch.device | None = None,
    return_reference: bool = False,
    progress: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Effects of every single-base substitution on a model's outputs.

    Parameters
    ----------
    model
        Any module with ``y = model(X)``, ``y`` of shape ``(n, outputs)`` (or ``(n,)``). Run
        in eval mode (its mode is restored afterwards).
    X
        ``(n, 4, L)`` one-hot sequences (``A, C, G, T``); ``N`` columns (all 0.25, or 0)
        get all four substitutions.
    start, end
        Only positions ``start <= p < end`` are mutated (default: all).
    batch_size
        Edited sequences per forward pass (or per fast-path step).
    method
        ``auto`` (fastest exact path the model allows, checked against ``model(X)``),
        ``deepbind``, ``trunk`` or ``full`` (see the module docstring).
    group_size
        Sequences whose reference activations are cached at a time (fast paths).
    device
        Where to compute (default: the model's device).
    return_reference
        Also return ``model(X)``.
    progress
        Show a progress bar.

    Returns
    -------
    torch.Tensor
        ``(n, end - start, 4, outputs)`` float32 on the CPU: output with the substitution
        minus output of the reference sequence. Identity edits (the base already there) are
        0 and not computed. With ``return_reference``, also ``(n, outputs)`` reference outputs.
    """
    if X.dim() != 3 or X.shape[1] != 4:
        raise BiodlInputError(f"ISM needs one-hot sequences of shape (n, 4, length), got {tuple(X.shape)}")
    if method not in _METHODS:
        raise BiodlInputError(f"unknown ISM method {method!r} (use one of {', '.join(_METHODS)})")
    n, _, L = X.shape
    end = L if end is None else (end if end >= 0 else L + end)
    if not 0 <= start < end <= L:
        raise BiodlInputError(f"ISM span must satisfy 0 <= start < end <= {L}; got start={start}, end={end}")
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        X = X.to(dev, torch.float32)
        chosen = ism_method(model, L) if method == "auto" else method
        out: torch.Tensor | None = None
        refs = []
        groups = range(0, n, group_size if chosen != "full" else n)
        it = groups
        if progress:
            from rich.progress import track

            it = track(groups, description=f"ISM ({chosen})")
        for g0 in it:
            Xg = X[g0 : g0 + (group_size if chosen != "full" else n)]
            y0 = _flat(model(Xg))
            runner = _runner(model, Xg, chosen, y0, strict=method != "auto")
            if runner is None:
                chosen = "full"
                runner = _full_runner(model, Xg)
            refs.append(y0.float().cpu())
            if out is None:
                out = torch.zeros(n, end - start, 4, y0.shape[1])
            seq, pos, alt = _edits(Xg, start, end)
            for b in range(0, seq.shape[0], batch_size):
                s, p, a = seq[b : b + batch_size], pos[b : b + batch_size], alt[b : b + batch_size]
                y = runner(s, p, a)
                out[(s + g0).cpu(), (p - start).cpu(), a.cpu()] = (y - y0[s]).float().cpu()
    finally:
        model.train(was_training)
    assert out is not None
    return (out, torch.cat(refs)) if return_reference else out


def _runner(model: nn.Module, Xg: torch.Tensor, chosen: str, y0: torch.Tensor, strict: bool):
    if chosen == "full":
        return _full_runner(model, Xg)
    if chosen == "deepbind":
        if not _is_deepbind(model, Xg.shape[-1]):
            raise BiodlInputError("method='deepbind' needs a biodl DeepBind model with window_size 0")
        runner = _DeepBindCache(model, Xg)
    else:
        split = _trunk_split(model)
        if split is None:
            raise BiodlInputError("method='trunk' needs a model with a local convolutional trunk")
        runner = _TrunkCache(split[0], split[1], Xg)
    if not _close(_flat(runner.reference()), y0):
        msg = f"ISM fast path {chosen!r} does not reproduce model(X) for this model; using full passes"
        if strict:
            raise BiodlInputError(msg)
        warnings.warn(msg, stacklevel=3)
        return None
    return runner


def ism_scores(effects: torch.Tensor, X: torch.Tensor | None = None, output: int = 0) -> torch.Tensor:
    """Per-base importance from ISM effects, for heat maps and logos.

    Parameters
    ----------
    effects
        ``(n, L, 4, outputs)`` from :func:`saturation_mutagenesis`.
    X
        ``(n, 4, L)`` one-hot; when given, the result is projected on the observed bases.
    output
        Which output.

    Returns
    -------
    torch.Tensor
        ``(n, 4, L)``: effects centred on the mean over the four bases at each position (as
        tangermeme does), times ``X`` when it is given.
    """
    e = effects[..., output].permute(0, 2, 1)  # (n, 4, L)
    e = e - e.mean(dim=1, keepdim=True)
    return e * X.to(e) if X is not None else e
