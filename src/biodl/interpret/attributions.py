"""Gradient attributions of one-hot sequences through captum: saliency, input x gradient,
integrated gradients and DeepLIFT/SHAP (DeepLIFT averaged over dinucleotide-shuffled
references, as in Lundberg & Lee 2017 / tangermeme's ``deep_lift_shap``).

Every function returns ``(n, 4, L)`` attributions. Methods with a completeness property
are checked: integrated gradients and DeepLIFT should satisfy
``attr.sum() == f(x) - f(baseline)``; the per-sequence gap (captum's convergence delta) is
returned with ``return_delta=True`` and a warning names how many sequences miss it by more
than ``tolerance`` of ``|f(x) - f(baseline)|`` (for DeepLIFT this typically means the model
uses functional non-linearities or pooling captum cannot see, e.g. ``torch.relu`` in
:class:`biodl.models.DeepBind`; then prefer integrated gradients or ISM).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import nn

from biodl.errors import BiodlInputError
from biodl.interpret._inputs import as_module, as_onehot, check_target
from biodl.train.predict import eval_mode

__all__ = [
    "ATTRIBUTION_METHODS",
    "attribute",
    "deep_lift_shap",
    "input_x_gradient",
    "integrated_gradients",
    "saliency",
    "shuffled_references",
]

ATTRIBUTION_METHODS = ("saliency", "input_x_gradient", "integrated_gradients", "deep_lift_shap")


class _Target(nn.Module):
    """Wraps a model so that its output is ``(n, outputs)``; captum then selects ``target``.
    With ``rc_average`` the output is the mean of the model's outputs for the sequence and its
    reverse complement, as ``biodl predict`` scores a model trained with ``--rc-augment``."""

    def __init__(self, model: nn.Module, rc_average: bool = False) -> None:
        super().__init__()
        self.model = model
        self.rc_average = rc_average

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.model(x)
        y = y.reshape(y.shape[0], -1)
        if self.rc_average:
            r = self.model(x.flip(dims=(-2, -1)))
            y = (y + r.reshape(r.shape[0], -1)) / 2
        return y


def _baseline(X: torch.Tensor, baseline: str | float | torch.Tensor) -> torch.Tensor:
    if isinstance(baseline, torch.Tensor):
        b = baseline.to(X)
        n, c, L = X.shape
        if b.shape not in ((c, L), (1, c, L), (n, c, L)):
            raise BiodlInputError(
                f"the baseline must be ({c}, {L}) or ({n}, {c}, {L}) for these sequences, "
                f"got {tuple(b.shape)}"
            )
        return b.expand_as(X) if b.dim() < 3 or b.shape[0] == 1 else b
    if baseline == "uniform":
        return torch.full_like(X, 0.25)
    if baseline == "zeros":
        return torch.zeros_like(X)
    if isinstance(baseline, (int, float)):
        return torch.full_like(X, float(baseline))
    raise BiodlInputError(f"unknown baseline {baseline!r} (use 'uniform', 'zeros', a number or a tensor)")


def shuffled_references(X: torch.Tensor, n_shuffles: int = 20, seed: int = 0) -> torch.Tensor:
    """Dinucleotide-shuffled copies of each sequence (DeepLIFT/SHAP references).

    Parameters
    ----------
    X
        ``(n, 4, L)`` one-hot.
    n_shuffles
        Shuffles per sequence.
    seed
        Seed of the shuffles.

    Returns
    -------
    torch.Tensor
        ``(n_shuffles, n, 4, L)``; ``N`` positions of the input stay ``N``-valued (0.25).
    """
    from biodl.encode import decode, one_hot
    from biodl.shuffle import dinucleotide_shuffle

    X = as_onehot(X, "shuffled references")
    rng = np.random.default_rng(seed)
    Xn = X.detach().cpu().numpy()
    out = np.empty((n_shuffles,) + Xn.shape, dtype=np.float32)
    for i in range(Xn.shape[0]):
        s = decode(Xn[i])
        for j in range(n_shuffles):
            out[j, i] = one_hot(dinucleotide_shuffle(s, rng))
    return torch.from_numpy(out).to(X)


class CompletenessWarning(UserWarning):
    """Integrated gradients' completeness check failed for some sequences of a batch:
    ``rows`` (their indices in the batch), ``n`` (the batch size), ``worst`` (the largest
    relative error), ``method`` and ``tolerance``, for callers that add batches up."""

    def __init__(self, message: str, rows: np.ndarray, n: int, worst: float, method: str, tolerance: float):
        super().__init__(message)
        self.rows, self.n, self.worst, self.method, self.tolerance = rows, n, worst, method, tolerance


def completeness_message(
    method: str, bad: int, n: int, worst: float, tolerance: float, names: str = ""
) -> str:
    """The completeness warning's text (``names``: the failing sequences, when known)."""
    return (
        f"{method}: completeness check failed for {bad} of {n} sequence(s){names} "
        f"(|sum(attr) - (f(x) - f(baseline))| up to {worst:.2g} x |f(x) - f(baseline)|, "
        f"tolerance {tolerance:g})"
    )


def _report(delta: torch.Tensor, gap: torch.Tensor, method: str, tolerance: float) -> None:
    rel = delta.abs() / gap.abs().clamp_min(1e-6)
    rows = np.flatnonzero((rel > tolerance).reshape(-1).numpy())
    if len(rows):
        worst = float(rel.max())
        msg = completeness_message(method, len(rows), delta.numel(), worst, tolerance)
        warnings.warn(
            CompletenessWarning(msg, rows, delta.numel(), worst, method, tolerance),
            stacklevel=3,
        )


def _prep(
    model: nn.Module, X: torch.Tensor, rc_average: bool = False, target: int = 0
) -> tuple[_Target, torch.Tensor]:
    """The model (both strands with ``rc_average``) and ``X`` on the model's device, ``target``
    checked against its outputs; ``X`` is :func:`as_onehot`'s; call it inside ``eval_mode(model)``."""
    dev = next(model.parameters()).device
    wrapped, X = _Target(model, rc_average).eval(), X.to(dev, torch.float32)
    with torch.no_grad():
        check_target(wrapped(X[:1]).shape[1], target, "attributions")
    return wrapped, X


def _grad_batch(X: torch.Tensor, i: int, batch_size: int) -> torch.Tensor:
    """Rows ``i .. i + batch_size`` of ``X`` as a leaf that requires gradients (captum would set
    it, with a UserWarning the user can do nothing about)."""
    return X[i : i + batch_size].detach().requires_grad_()


def saliency(
    model: nn.Module,
    X: torch.Tensor,
    target: int = 0,
    *,
    absolute: bool = False,
    batch_size: int = 128,
    rc_average: bool = False,
) -> torch.Tensor:
    """Gradient of output ``target`` with respect to the input (Simonyan et al. 2014).

    ``rc_average`` (all methods): attribute the mean output of both strands, the score
    ``biodl predict`` gives a model trained with ``--rc-augment``.

    Returns
    -------
    torch.Tensor
        ``(n, 4, L)`` gradients (their absolute values with ``absolute=True``).
    """
    from captum.attr import Saliency

    model, X = as_module(model), as_onehot(X, "saliency")
    with eval_mode(model):
        wrapped, X = _prep(model, X, rc_average, target)
        outs = [
            Saliency(wrapped).attribute(_grad_batch(X, i, batch_size), target=target, abs=absolute).detach()
            for i in range(0, X.shape[0], batch_size)
        ]
    return torch.cat(outs).cpu()


def input_x_gradient(
    model: nn.Module, X: torch.Tensor, target: int = 0, *, batch_size: int = 128, rc_average: bool = False
) -> torch.Tensor:
    """Input times gradient of output ``target``: ``(n, 4, L)``, non-zero only at observed bases."""
    from captum.attr import InputXGradient

    model, X = as_module(model), as_onehot(X, "input x gradient")
    with eval_mode(model):
        wrapped, X = _prep(model, X, rc_average, target)
        outs = [
            InputXGradient(wrapped).attribute(_grad_batch(X, i, batch_size), target=target).detach()
            for i in range(0, X.shape[0], batch_size)
        ]
    return torch.cat(outs).cpu()


def integrated_gradients(
    model: nn.Module,
    X: torch.Tensor,
    target: int = 0,
    *,
    baseline: str | float | torch.Tensor = "uniform",
    n_steps: int = 50,
    batch_size: int = 16,
    tolerance: float = 0.05,
    return_delta: bool = False,
    rc_average: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Integrated gradients (Sundararajan et al. 2017) from a baseline to each sequence.

    Parameters
    ----------
    baseline
        ``"uniform"`` (every base 0.25, an all-``N`` sequence; default), ``"zeros"``, a
        number, or a tensor ``(4, L)`` / ``(n, 4, L)``.
    n_steps
        Steps of the Gauss-Legendre path integral.
    tolerance
        Warn when ``|sum(attr) - (f(x) - f(baseline))|`` exceeds this fraction of
        ``|f(x) - f(baseline)|`` (raise ``n_steps`` then).

    Returns
    -------
    torch.Tensor
        ``(n, 4, L)`` attributions; with ``return_delta`` also ``(n,)`` convergence deltas.
    """
    from captum.attr import IntegratedGradients

    attrs, deltas = [], []
    model, X = as_module(model), as_onehot(X, "integrated gradients")
    with eval_mode(model):
        wrapped, X = _prep(model, X, rc_average, target)
        base = _baseline(X, baseline)
        ig = IntegratedGradients(wrapped)
        for i in range(0, X.shape[0], batch_size):
            a, d = ig.attribute(
                X[i : i + batch_size],
                baselines=base[i : i + batch_size],
                target=target,
                n_steps=n_steps,
                return_convergence_delta=True,
            )
            attrs.append(a.detach())
            deltas.append(d.detach())
        with torch.no_grad():
            gap = wrapped(X)[:, target] - wrapped(base)[:, target]
    attr, delta = torch.cat(attrs).cpu(), torch.cat(deltas).cpu()
    _report(delta, gap.cpu(), "integrated gradients", tolerance)
    return (attr, delta) if return_delta else attr


def deep_lift_shap(
    model: nn.Module,
    X: torch.Tensor,
    target: int = 0,
    *,
    n_shuffles: int = 20,
    references: torch.Tensor | None = None,
    seed: int = 0,
    batch_size: int = 64,
    tolerance: float = 0.05,
    return_delta: bool = False,
    rc_average: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """DeepLIFT (rescale rule, captum) averaged over dinucleotide-shuffled references.

    Parameters
    ----------
    n_shuffles
        References per sequence (ignored when ``references`` is given).
    references
        ``(k, n, 4, L)`` references (default :func:`shuffled_references`).
    tolerance
        Warn when DeepLIFT's summation-to-delta misses by more than this fraction.
    rc_average
        Attribute the mean output of both strands: DeepLIFT of each strand (the reverse one
        against the reverse complements of the references, mapped back), averaged. (captum
        keeps one set of activations per layer, so the model is not run on both strands
        inside one attribution.)

    Returns
    -------
    torch.Tensor
        ``(n, 4, L)`` attributions (mean over references); with ``return_delta`` also
        ``(n,)``: the largest summation-to-delta gap over the references of each sequence.
    """
    from captum.attr import DeepLift

    model, X = as_module(model), as_onehot(X, "DeepLIFT")
    refs = shuffled_references(X, n_shuffles, seed) if references is None else references.to(X)
    if refs.dim() != 4 or refs.shape[1:] != X.shape:
        raise BiodlInputError(
            f"references must be (k, {', '.join(map(str, X.shape))}), got {tuple(refs.shape)}"
        )
    with eval_mode(model):
        wrapped, X = _prep(model, X, False, target)
        refs = refs.to(X)
        both = _Target(model, rc_average).eval()
        total = torch.zeros_like(X)
        worst = torch.zeros(X.shape[0], device=X.device)
        worst_rel = torch.zeros(X.shape[0], device=X.device)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*Setting forward, backward hooks.*")
            # captum sets requires_grad on the one-hot input itself: nothing for the user to do
            warnings.filterwarnings("ignore", message=".*did not already require gradients.*")
            dl = DeepLift(wrapped)
            for ref in refs:
                for i in range(0, X.shape[0], batch_size):
                    sl = slice(i, i + batch_size)
                    a, d = dl.attribute(
                        X[sl], baselines=ref[sl], target=target, return_convergence_delta=True
                    )
                    if rc_average:  # the reverse strand's, mapped back to the forward positions
                        ar, dr = dl.attribute(
                            X[sl].flip(dims=(-2, -1)),
                            baselines=ref[sl].flip(dims=(-2, -1)),
                            target=target,
                            return_convergence_delta=True,
                        )
                        a, d = (a + ar.flip(dims=(-2, -1))) / 2, (d + dr) / 2
                    total[sl] += a.detach()
                    with torch.no_grad():
                        gap = (both(X[sl])[:, target] - both(ref[sl])[:, target]).abs().clamp_min(1e-6)
                    rel = d.detach().abs() / gap
                    upd = rel > worst_rel[sl]
                    worst_rel[sl] = torch.where(upd, rel, worst_rel[sl])
                    worst[sl] = torch.where(upd, d.detach(), worst[sl])
    attr = (total / refs.shape[0]).cpu()
    if float(worst_rel.max()) > tolerance:
        bad = int((worst_rel > tolerance).sum())
        warnings.warn(
            f"DeepLIFT: summation-to-delta fails for {bad} of {X.shape[0]} sequence(s) (gap up to "
            f"{float(worst_rel.max()):.2g} x |f(x) - f(ref)|): the model likely uses non-linearities "
            "captum cannot see (functional relu, global max); prefer integrated gradients or ISM",
            stacklevel=2,
        )
    return (attr, worst.cpu()) if return_delta else attr


def attribute(
    model: nn.Module, X: torch.Tensor, method: str = "integrated_gradients", target: int = 0, **kwargs
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Dispatch to one of :data:`ATTRIBUTION_METHODS` (keyword options passed through).

    Returns
    -------
    torch.Tensor
        ``(n, 4, L)`` attributions (and deltas, for the methods that take ``return_delta``).
    """
    fns = {
        "saliency": saliency,
        "input_x_gradient": input_x_gradient,
        "integrated_gradients": integrated_gradients,
        "deep_lift_shap": deep_lift_shap,
    }
    key = method.replace("-", "_").lower()
    if key not in fns:
        raise BiodlInputError(f"unknown attribution method {method!r} (use one of {', '.join(fns)})")
    return fns[key](model, X, target, **kwargs)
