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
    DeepSEA and Basset. The reference activations are cached and, for each edit, only the
    positions the edit can reach are carried through the trunk (the fastISM idea, Nair et
    al. 2022). Stride-1 convolutions go further and run on the *change* of their input:
    ``conv(x + dx) = conv(x) + W * dx`` with ``dx`` non-zero at the few positions the
    pooling before them lets through, so a convolution costs ``width_in`` rather than
    ``width_in + k - 1`` columns; pooling is recomputed over its window. A leading
    ``Flatten`` + ``Linear`` of the head is updated the same way, by the change of the
    touched positions only; the rest of the head runs in full. Edits are ordered so that a
    batch holds edits whose windows have the same widths (no batch carries more positions
    than its edits change).
``"full"``
    Anything else: batched full forward passes over the edited sequences.

With ``method="auto"`` the fast paths are checked against ``model(X)`` on the reference
sequences first and ``"full"`` is used if they disagree. All three agree up to float
rounding (see ``bench/ism.py``).
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
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
    """A sliding-window layer: kernel span, stride, padding and how to apply it unpadded.

    ``apply`` takes and returns *channels-last* tensors ``(batch, width, channels)``.
    ``delta`` is set for convolutions of stride 1 without groups: ``(k, C_in, C_out)``
    weights with the taps in reverse order, so that the change of the output caused by a
    change of the input is one matmul per tap of the (few) changed input positions, added
    at shifted positions (see :meth:`_TrunkCache._delta_conv`).
    """

    span: int
    stride: int
    padding: int
    pad_value: float
    apply: Callable[[torch.Tensor], torch.Tensor]
    delta: torch.Tensor | None = None
    dilation: int = 1


def _as_int(v) -> int:
    return int(v[0]) if isinstance(v, (tuple, list)) else int(v)


def _cl(f: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
    """``f`` on ``(batch, channels, width)`` as a function of channels-last tensors."""
    return lambda x: f(x.transpose(1, 2)).transpose(1, 2)


def _slide(op: Callable, k: int, s: int, d: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """Unpadded pooling of channels-last ``(batch, width, C)`` by ``op`` over ``k`` taps: one
    element-wise op per tap on whole (contiguous) channel rows, no layout change."""

    def pool(x: torch.Tensor) -> torch.Tensor:
        wout = (x.shape[1] - d * (k - 1) - 1) // s + 1
        last = s * (wout - 1) + 1
        y = x[:, 0:last:s]
        for t in range(1, k):
            y = op(y, x[:, t * d : t * d + last : s])
        return y

    return pool


def _window_layer(layer: nn.Module, build: bool = True) -> _Window | None:
    """The :class:`_Window` of a sliding-window layer, or None. ``build=False`` only checks
    (no weights are rearranged)."""
    if isinstance(layer, nn.Conv1d):
        if layer.padding_mode != "zeros" or isinstance(layer.padding, str):
            if layer.padding not in ("valid",):
                return None
        k, s, d = layer.kernel_size[0], layer.stride[0], layer.dilation[0]
        pad = 0 if isinstance(layer.padding, str) else _as_int(layer.padding)
        w, b, g = layer.weight, layer.bias, layer.groups
        span = d * (k - 1) + 1
        if not build:
            return _Window(span, s, pad, 0.0, lambda x: x)
        if d != 1 or g != 1:
            conv = _cl(lambda x: F.conv1d(x, w, b, s, 0, d, g))
        else:
            # im2col + one matmul: for the narrow windows of ISM this beats the convolution
            # primitives, which re-pack the weights on every call.
            wt = w.detach().reshape(w.shape[0], -1).t().contiguous()  # (C_in * k, C_out)

            def conv(x: torch.Tensor) -> torch.Tensor:
                n, _, c = x.shape
                cols = x.unfold(1, k, s).reshape(-1, c * k)  # (n * W_out, C_in * k)
                y = cols @ wt if b is None else torch.addmm(b, cols, wt)
                return y.view(n, -1, wt.shape[1])

        delta = None
        if s == 1 and g == 1:
            # delta[t, c, o] = w[o, c, k - 1 - t]
            delta = w.detach().permute(2, 1, 0).flip(0).contiguous()
        return _Window(span, s, pad, 0.0, conv, delta, d)
    if isinstance(layer, nn.MaxPool1d):
        if layer.return_indices:
            return None
        k, s, d = _as_int(layer.kernel_size), _as_int(layer.stride), _as_int(layer.dilation)
        return _Window(d * (k - 1) + 1, s, _as_int(layer.padding), -math.inf, _slide(torch.maximum, k, s, d))
    if isinstance(layer, nn.AvgPool1d):
        if layer.ceil_mode or _as_int(layer.padding) != 0:
            return None
        k, s = _as_int(layer.kernel_size), _as_int(layer.stride)
        mean = _slide(torch.add, k, s, 1)
        return _Window(k, s, 0, 0.0, lambda x: mean(x) / k)
    return None


def _pointwise(layer: nn.Module) -> bool:
    if isinstance(layer, _POINTWISE):
        return True
    return isinstance(layer, nn.BatchNorm1d) and not layer.training and layer.track_running_stats


def _local_prefix(layers: list[nn.Module]) -> int:
    k = 0
    for layer in layers:
        if _pointwise(layer) or _window_layer(layer, build=False) is not None:
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
    """If ``head`` is (Identity | eval Dropout ...,) Flatten, Linear, rest: the Linear and the rest.

    Anything else before the ``Linear`` (an activation, a pooling, a reshape) rules the
    incremental update out and the head runs in full.
    """
    mods: list[nn.Module] = []

    def walk(m: nn.Module) -> None:
        if isinstance(m, nn.Sequential):
            for c in m:
                walk(c)
        else:
            mods.append(m)

    walk(head)
    i = 0
    while i < len(mods) and (
        type(mods[i]) is nn.Identity or (type(mods[i]) is nn.Dropout and not mods[i].training)
    ):
        i += 1
    if i + 1 < len(mods) and type(mods[i]) is nn.Flatten and type(mods[i + 1]) is nn.Linear:
        fl = mods[i]
        if fl.start_dim == 1 and fl.end_dim == -1:
            return mods[i + 1], nn.Sequential(*mods[i + 2 :])
    return None


def _runs(v: torch.Tensor) -> list[tuple[int, int, int]]:
    """``(value, offset, count)`` of the runs of equal consecutive values of a 1-d tensor."""
    vals, counts = torch.unique_consecutive(v, return_counts=True)
    out, o = [], 0
    for x, c in zip(vals.tolist(), counts.tolist(), strict=True):
        out.append((x, o, c))
        o += c
    return out


def _reach(win: _Window, start: torch.Tensor, width: int | torch.Tensor, lout: int):
    """Output positions ``[lo, hi]`` of a window layer that read input positions
    ``[start, start + width)`` (clamped to the ``lout`` outputs; ``lo > hi`` when none does)."""
    q0 = start + win.padding
    lo = torch.div(q0 - win.span + win.stride, win.stride, rounding_mode="floor").clamp(min=0)
    hi = torch.div(q0 + width - 1, win.stride, rounding_mode="floor").clamp(max=lout - 1)
    return lo, hi


class _TrunkPlan:
    """A local trunk's and its head's weights, arranged once per call for :class:`_TrunkCache`."""

    def __init__(self, trunk: list[nn.Module], head: nn.Module) -> None:
        self.layers = [(layer, _window_layer(layer)) for layer in trunk]
        self.head = head
        self.split = _split_linear_head(head)
        self._Wl: torch.Tensor | None = None

    def head_weight(self, C: int, LT: int) -> torch.Tensor | None:
        """``(LT, C, H)`` weight of the head's first Linear (``[p, c]``: the column of channel
        ``c`` at position ``p``); None if the head does not start with Flatten + Linear."""
        if self.split is None or self.split[0].in_features != C * LT:
            return None
        if self._Wl is None:
            w3 = self.split[0].weight.detach().view(-1, C, LT)
            Wl = w3.new_empty(LT, C, w3.shape[0])
            for c in range(0, C, 8):  # blocked: ~3x faster than one permuted copy
                Wl[:, c : c + 8].copy_(w3[:, c : c + 8].permute(2, 1, 0))
            self._Wl = Wl
        return self._Wl


def _channels_last_op(layer: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """A point-wise layer as a function of channels-last tensors: element-wise modules as
    they are, eval-mode batch norm as its per-channel affine map."""
    if isinstance(layer, nn.BatchNorm1d):
        scale = 1 / torch.sqrt(layer.running_var + layer.eps)  # as the batch-norm kernel
        if layer.weight is not None:
            scale = scale * layer.weight
        shift = -layer.running_mean * scale
        if layer.bias is not None:
            shift = shift + layer.bias
        scale, shift = scale.detach().float(), shift.detach().float()
        return lambda x: torch.addcmul(shift, x, scale)
    return layer


@dataclass
class _Step:
    kind: str  # "point" or "window"
    op: object  # the layer (point) or its _Window
    hp: torch.Tensor | None = None  # (n, padded length, C): padded reference input, channels-last
    ref_out: torch.Tensor | None = None  # (n, L_out, C_out): reference output (delta convolutions)
    lout: int = 0


class _TrunkCache:
    """fastISM over a local trunk, on the *changes* of the activations.

    Every activation is kept channels-last ``(batch, positions, channels)``, and for a batch of
    edits only a window of positions of each layer is carried: for each edit, the positions
    it can change, and the batch is as wide as its widest edit (:meth:`order` sorts the edits
    so that a batch holds edits of the same widths). A stride-1 convolution gets the change
    of its input, which is non-zero at a few positions only (the outputs of the pooling
    before it that the edit reaches), and adds ``W * change`` to its cached reference output;
    this costs ``width_in`` instead of ``width_in + k - 1`` columns of the convolution.
    Pooling and other window layers are recomputed over their window from the new values
    spliced into the cached reference. A head that starts with ``Flatten`` + ``Linear`` is
    updated the same way: ``y = y_ref + W[:, touched] @ change[touched]``; the rest of the
    head runs in full. The results equal full forward passes up to float rounding.
    """

    def __init__(self, plan: _TrunkPlan, X: torch.Tensor) -> None:
        self.steps: list[_Step] = []
        h = X
        for layer, win in plan.layers:
            if win is None:
                self.steps.append(_Step("point", _channels_last_op(layer)))
                h = layer(h)
                continue
            out = layer(h)
            lout = out.shape[-1]
            need = (lout - 1) * win.stride + win.span  # padded length read by the last output
            right = max(need - win.padding - h.shape[-1], 0)
            hp = F.pad(h.float(), (win.padding, right), value=win.pad_value).transpose(1, 2).contiguous()
            ref_out = out.float().transpose(1, 2).contiguous() if win.delta is not None else None
            self.steps.append(_Step("window", win, hp, ref_out, lout))
            h = out
        self.top = h  # (n, C, LT), as the head gets it
        self.top_cl = h.float().transpose(1, 2).contiguous()
        self.head = plan.head
        self.Wl = plan.head_weight(h.shape[1], h.shape[2])
        if self.Wl is not None:
            assert plan.split is not None
            lin, self.rest = plan.split
            self.ref_lin = lin(h.flatten(1)).float()  # (n, H)

    def reference(self) -> torch.Tensor:
        return self.head(self.top)

    def order(self, pos: torch.Tensor) -> torch.Tensor:
        """A stable permutation of edits at ``pos`` that groups those with the same window
        widths through the trunk, so that batches carry no position they do not change."""
        start, width, widths = pos, torch.ones_like(pos), []
        for step in self.steps:
            if step.kind == "window":
                lo, hi = _reach(step.op, start, width, step.lout)  # type: ignore[arg-type]
                width = (hi - lo + 1).clamp(min=1)
                start = torch.minimum(lo, step.lout - width)
                widths.append(width)
        if not widths:
            return torch.arange(pos.shape[0], device=pos.device)
        _, cls = torch.unique(torch.stack(widths, 1), dim=0, return_inverse=True)
        # by class, then position (edits of the same position in several sequences together)
        return torch.argsort(cls * (int(pos.max()) + 1) + pos, stable=True)

    @staticmethod
    def _span(step: _Step, start: torch.Tensor, width: int) -> tuple[torch.Tensor, int]:
        lo, hi = _reach(step.op, start, width, step.lout)  # type: ignore[arg-type]
        wout = max(int((hi - lo).max()) + 1, 1)
        return torch.minimum(lo, torch.full_like(lo, step.lout - wout)), wout

    def _delta_conv(
        self, step: _Step, seq: torch.Tensor, start: torch.Tensor, vals: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        win: _Window = step.op  # type: ignore[assignment]
        assert win.delta is not None and step.hp is not None and step.ref_out is not None
        B, width, cin = vals.shape
        dev = vals.device
        d, span = win.dilation, win.span
        k, _, cout = win.delta.shape
        q0 = start + win.padding  # padded coordinate of vals[:, 0]
        ref = step.hp[seq[:, None], q0[:, None] + torch.arange(width, device=dev)]  # (B, width, C_in)
        change = (vals - ref).reshape(B * width, cin)
        # output j reads padded inputs j + t * d: D[:, r] is the change of output q0 - span + 1 + r
        wfull = width + span - 1
        D = torch.zeros(B * wfull, cout, device=dev, dtype=torch.float32)
        # row (b, i) of the change lands in row (b, i + t * d) of D for tap t (reversed); rows
        # that did not change (the pooling kept its maximum) are left out of the matmuls
        dst = (torch.arange(B, device=dev)[:, None] * wfull + torch.arange(width, device=dev)).reshape(-1)
        moved = change.ne(0).any(1)
        if not bool(moved.all()):
            change, dst = change[moved], dst[moved]
        for t in range(k):
            D.index_add_(0, dst + t * d, (change @ win.delta[t]).float())
        D = D.view(B, wfull, cout)
        jlo, wout = self._span(step, start, width)
        new = step.ref_out[seq[:, None], jlo[:, None] + torch.arange(wout, device=dev)]  # (B, wout, C_out)
        shift = jlo - (q0 - span + 1)
        if wout == wfull and not bool(shift.any()):
            return jlo, new + D
        rel = shift[:, None] + torch.arange(wout, device=dev)
        inside = (rel >= 0) & (rel < wfull)
        Dg = D.gather(1, rel.clamp(0, wfull - 1)[:, :, None].expand(-1, -1, cout))
        return jlo, new + Dg * inside[:, :, None]

    def _window(
        self, step: _Step, seq: torch.Tensor, start: torch.Tensor, vals: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        win: _Window = step.op  # type: ignore[assignment]
        assert step.hp is not None
        dev = vals.device
        B, width, C = vals.shape
        jlo, wout = self._span(step, start, width)
        idx = jlo[:, None] * win.stride + torch.arange((wout - 1) * win.stride + win.span, device=dev)
        x = step.hp[seq[:, None], idx]  # (B, wneed, C): reference, padded coordinates (a copy)
        wneed = x.shape[1]
        r = (start + win.padding - jlo * win.stride)[:, None] + torch.arange(width, device=dev)
        dst = (torch.arange(B, device=dev)[:, None] * wneed + r).reshape(-1)
        src = vals.reshape(B * width, C).to(x.dtype)
        ok = ((r >= 0) & (r < wneed)).reshape(-1)
        if not bool(ok.all()):  # a window clamped at an end of the sequence
            dst, src = dst[ok], src[ok]
        x.view(B * wneed, C).index_copy_(0, dst, src)  # the new values spliced in
        return jlo, win.apply(x)

    def _linear_head(self, seq: torch.Tensor, start: torch.Tensor, vals: torch.Tensor) -> torch.Tensor:
        """``rest(y_lin_ref + sum over touched positions P of change[P] @ W[P])``."""
        assert self.Wl is not None
        B, width, C = vals.shape
        dev = vals.device
        old = self.top_cl[seq[:, None], start[:, None] + torch.arange(width, device=dev)]
        diff = (vals - old).reshape(B * width, C)
        # one matmul per touched position P of the top feature map, over the edits whose
        # window holds P: each (C, H) block of the weight is read once per batch
        P = (start[:, None] + torch.arange(width, device=dev)).reshape(-1)
        owner = torch.arange(B, device=dev).repeat_interleave(width)
        moved = diff.ne(0).any(1)  # positions whose features did not change add nothing
        if not bool(moved.all()):
            diff, P, owner = diff[moved], P[moved], owner[moved]
        by_pos = torch.argsort(P)
        rows, P, owner = diff[by_pos], P[by_pos], owner[by_pos]
        parts = [rows[o : o + c] @ self.Wl[p] for p, o, c in _runs(P)]
        out = self.ref_lin[seq]
        if parts:
            out.index_add_(0, owner, torch.cat(parts).float())
        with torch.autocast(dev.type, enabled=False):  # small next to the trunk: float32
            return _flat(self.rest(out))

    def __call__(self, seq: torch.Tensor, pos: torch.Tensor, alt: torch.Tensor) -> torch.Tensor:
        B = seq.shape[0]
        dev = seq.device
        start = pos
        vals = torch.zeros(B, 1, 4, device=dev, dtype=torch.float32)  # channels-last
        vals[torch.arange(B, device=dev), 0, alt] = 1
        for step in self.steps:
            if step.kind == "point":
                vals = step.op(vals)  # type: ignore[operator]
            elif step.op.delta is not None:  # type: ignore[union-attr]
                start, vals = self._delta_conv(step, seq, start, vals)
            else:
                start, vals = self._window(step, seq, start, vals)
        width, C = vals.shape[1], vals.shape[2]
        if self.Wl is not None:
            return self._linear_head(seq, start, vals)
        full = self.top[seq]  # a copy
        idx = start[:, None] + torch.arange(width, device=dev)
        full.scatter_(2, idx[:, None, :].expand(-1, C, -1), vals.transpose(1, 2).to(full.dtype))
        with torch.autocast(dev.type, enabled=False):
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


_PRECISIONS = {"32-true": None, "32": None, "bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}


def _autocast(precision: str, dev: torch.device):
    if precision not in _PRECISIONS:
        raise BiodlInputError(f"unknown ISM precision {precision!r} (use one of {', '.join(_PRECISIONS)})")
    dtype = _PRECISIONS[precision]
    return contextlib.nullcontext() if dtype is None else torch.autocast(dev.type, dtype=dtype)


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
    precision: str = "32-true",
    return_reference: bool = False,
    progress: bool = False,
    rc_average: bool = False,
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
    precision
        ``"32-true"`` (default: float32 throughout), or ``"bf16-mixed"`` / ``"16-mixed"``:
        matmuls and convolutions under :func:`torch.autocast` in bfloat16 / float16 on
        ``device`` (faster on GPUs and on CPUs with bf16 instructions). The ``trunk`` path
        keeps the reference activations and the head after its first Linear in float32 and
        computes only the per-edit *changes* of the trunk (and of the first Linear) in low
        precision, so effects keep 2-3 significant digits; ``method="full"`` subtracts two
        low-precision outputs and loses more on small effects; the ``deepbind`` path has no
        large matmul and stays in float32.
    return_reference
        Also return ``model(X)``.
    progress
        Show a progress bar.
    rc_average
        Score each sequence as the mean output of its two strands, as ``biodl predict`` does
        for a model trained with ``--rc-augment`` (:func:`biodl.train.predict.predict`'s
        ``rc_average``): the effects and the reference are those of that mean. Computed as
        the mean of the ISM of each strand (the substitution at ``p`` to ``b`` is the one at
        ``L - 1 - p`` to the complement of ``b`` on the reverse strand), so the fast paths
        still apply.

    Returns
    -------
    torch.Tensor
        ``(n, end - start, 4, outputs)`` float32 on the CPU: output with the substitution
        minus output of the reference sequence. Identity edits (the base already there) are
        0 and not computed. With ``return_reference``, also ``(n, outputs)`` reference outputs.
    """
    from biodl.interpret._inputs import as_module, as_onehot

    model, X = as_module(model), as_onehot(X, "ISM")
    if method not in _METHODS:
        raise BiodlInputError(f"unknown ISM method {method!r} (use one of {', '.join(_METHODS)})")
    for what, v in (("--batch-size", batch_size), ("group_size", group_size)):
        # a batch size under 1 would evaluate no edit at all and return all-zero effects
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise BiodlInputError(f"{what} must be an integer of at least 1, got {v!r}")
    n, _, L = X.shape
    end = L if end is None else (end if end >= 0 else L + end)
    if not 0 <= start < end <= L:
        raise BiodlInputError(f"ISM span must satisfy 0 <= start < end <= {L}; got start={start}, end={end}")
    if rc_average:
        kw = dict(
            batch_size=batch_size,
            method=method,
            group_size=group_size,
            device=device,
            precision=precision,
            return_reference=True,
            progress=progress,
        )
        fwd, y_fwd = saturation_mutagenesis(model, X, start=start, end=end, **kw)
        # the reverse strand: position p is L - 1 - p there, base b its complement 3 - b
        rev, y_rev = saturation_mutagenesis(model, X.flip(dims=(-2, -1)), start=L - end, end=L - start, **kw)
        eff = (fwd + rev.flip(dims=(1, 2))) / 2
        ref = (y_fwd + y_rev) / 2
        return (eff, ref) if return_reference else eff
    from biodl.train.predict import eval_mode, moved_to, torch_device

    dev = torch_device(device) if device is not None else next(model.parameters()).device
    autocast = _autocast(precision, dev)
    # computed where asked, in eval mode; put back where and as the caller keeps it
    with moved_to(model, dev), eval_mode(model):
        X = X.to(dev, torch.float32)
        chosen = ism_method(model, L) if method == "auto" else method
        plan = None
        if chosen == "trunk":
            split = _trunk_split(model)
            if split is None:
                raise BiodlInputError("method='trunk' needs a model with a local convolutional trunk")
            plan = _TrunkPlan(*split)
        out: torch.Tensor | None = None
        refs = []
        step = group_size if chosen != "full" else n  # kept when a group falls back to full passes
        groups = range(0, n, step)
        it = groups
        if progress:
            from rich.progress import track

            it = track(groups, description=f"ISM ({chosen})")
        for g0 in it:
            Xg = X[g0 : g0 + step]
            # fast paths: reference activations in float32, only the per-edit changes under
            # autocast (see `precision`); full passes: everything under autocast
            with autocast if chosen == "full" else contextlib.nullcontext():
                y0 = _flat(model(Xg))
                runner = _runner(model, Xg, chosen, y0, method != "auto", plan)
            if runner is None:
                chosen = "full"
                runner = _full_runner(model, Xg)
                with autocast:
                    y0 = _flat(model(Xg))
            y0 = y0.float()
            if not bool(torch.isfinite(y0).all()):
                raise BiodlInputError(
                    "the model's outputs are not finite (NaN or infinite) for "
                    f"{int((~torch.isfinite(y0)).any(dim=1).sum())} of these {len(Xg)} sequences: its "
                    "weights are (a training that diverged?); no mutation effect can be computed"
                )
            refs.append(y0.cpu())
            if out is None:
                out = torch.zeros(n, end - start, 4, y0.shape[1])
            seq, pos, alt = _edits(Xg, start, end)
            if isinstance(runner, _TrunkCache):
                perm = runner.order(pos)
                seq, pos, alt = seq[perm], pos[perm], alt[perm]
            for b in range(0, seq.shape[0], batch_size):
                s, p, a = seq[b : b + batch_size], pos[b : b + batch_size], alt[b : b + batch_size]
                with autocast if chosen != "deepbind" else contextlib.nullcontext():
                    y = runner(s, p, a)
                out[(s + g0).cpu(), (p - start).cpu(), a.cpu()] = (y.float() - y0[s]).cpu()
    assert out is not None
    return (out, torch.cat(refs)) if return_reference else out


def _runner(
    model: nn.Module,
    Xg: torch.Tensor,
    chosen: str,
    y0: torch.Tensor,
    strict: bool,
    plan: _TrunkPlan | None = None,
):
    if chosen == "full":
        return _full_runner(model, Xg)
    if chosen == "deepbind":
        if not _is_deepbind(model, Xg.shape[-1]):
            raise BiodlInputError("method='deepbind' needs a biodl DeepBind model with window_size 0")
        runner = _DeepBindCache(model, Xg)
    else:
        assert plan is not None
        runner = _TrunkCache(plan, Xg)
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
    from biodl.interpret._inputs import as_onehot, check_target

    if isinstance(effects, np.ndarray):
        effects = torch.from_numpy(effects)
    if not isinstance(effects, torch.Tensor) or effects.dim() != 4 or effects.shape[2] != 4:
        shape = tuple(effects.shape) if hasattr(effects, "shape") else type(effects).__name__
        raise BiodlInputError(
            f"ISM effects must be (n, length, 4, outputs), as saturation_mutagenesis gives; got {shape}"
        )
    check_target(effects.shape[3], output, "ism_scores")
    e = effects[..., output].permute(0, 2, 1)  # (n, 4, L)
    e = e - e.mean(dim=1, keepdim=True)
    if X is None:
        return e
    X = as_onehot(X, "ism_scores")
    if X.shape != e.shape:
        raise BiodlInputError(
            f"the sequences are {tuple(X.shape)}, the effects of {tuple(e.shape)} sequences"
        )
    return e * X.to(e)
