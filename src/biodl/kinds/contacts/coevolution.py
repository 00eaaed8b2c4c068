"""Coevolution scores of an alignment, vectorised in torch (CPU or GPU through ``device``).

* :func:`sequence_weights`: 1 / the number of sequences at least ``identity`` identical
  (gaps count as a state; CCMpred / PSICOV style), Meff = their sum;
* :func:`mutual_information`: MI of the weighted pair frequencies, APC-corrected (Dunn 2008);
* :func:`psicov`: a PSICOV-like sparse inverse covariance: our own graphical lasso by ADMM
  (Boyd et al. 2011, sec. 6.5; one symmetric eigendecomposition per iteration, run in torch) on
  the shrunk 21-state correlation matrix, off-diagonal blocks L1-penalised; score = the L1
  norm of each 20 x 20 block of the precision matrix, APC-corrected (Jones et al. 2012);
* :func:`plmdca`: pseudo-likelihood Potts model (21 states), L2-regularised as CCMpred does
  (fields 0.01, couplings 0.2 (L - 1)), fitted with L-BFGS in torch; score = the Frobenius norm
  of each 20 x 20 coupling block (gaps left out), APC-corrected (Ekeberg 2013, Seemayer 2014);
* :func:`deepcov_features`: DeepCov's 441-channel pair covariance (DEEPCON's input).

Every function takes an :class:`~biodl.kinds.contacts.io.MSA` and returns a symmetric
``(L, L)`` float64 numpy score matrix (diagonal 0) unless said otherwise.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from biodl.kinds.contacts.io import GAP, MSA, Q

AA = 20  # amino-acid states (the 21st is the gap)


def _device(device: str | torch.device | None) -> torch.device:
    from biodl.train.predict import torch_device

    return torch_device(device or "cpu") if not isinstance(device, torch.device) else device


def onehot(codes: np.ndarray, device="cpu", dtype=torch.float32, states: int = Q) -> torch.Tensor:
    """``(n, L)`` codes -> ``(n, L, states)`` one-hot; unknown residues (code 21) become gaps
    (``states=21``) or all-zero rows (``states=22`` keeps them as their own state, sliced away)."""
    c = torch.as_tensor(np.asarray(codes, dtype=np.int64), device=_device(device))
    if states == Q:
        c = c.clamp_max(GAP)
    return torch.nn.functional.one_hot(c, max(states, 22))[..., :states].to(dtype)


def sequence_weights(
    msa: MSA, identity: float | None = 0.8, device="cpu", min_matches: int | None = None
) -> np.ndarray:
    """Sequence weights ``(n_seqs,)``: 1 / (1 + the number of other sequences sharing at least
    ``identity`` of the ``L`` columns, gaps included); ``identity=None`` gives all weights 1.
    ``min_matches`` sets the neighbour threshold in columns directly (overrides ``identity``).
    Chunked matrix products of the one-hot alignment, ``O(n_seqs^2 L)``."""
    n, L = msa.codes.shape
    if identity is None and min_matches is None:
        return np.ones(n)
    thr = min_matches if min_matches is not None else identity * L
    x = onehot(msa.codes, device, torch.float32, states=22).reshape(n, -1)
    counts = torch.zeros(n, dtype=torch.float64, device=x.device)
    step = max(1, int(2**26 // max(n, 1)))
    from biodl.io._util import StatusLine

    # a deep alignment takes a while (66,000 sequences of 40 columns: ~40 s on 2 cores): say so
    status = StatusLine(show=n > 20_000)
    for s in range(0, n, step):
        ids = x[s : s + step] @ x.T  # matching columns
        counts[s : s + step] = (ids >= thr - 1e-6).sum(1).double()
        status.count("sequence weights", min(s + step, n), f"of {n:,} sequences compared")
    status.clear()
    return (1.0 / counts).cpu().numpy()


def meff(weights: np.ndarray) -> float:
    """Effective number of sequences: the sum of the weights."""
    return float(np.sum(weights))


def _pair_frequencies(
    msa: MSA, weights: np.ndarray, pseudocount: float, device, dtype=torch.float64
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted single ``(L, 21)`` and pair ``(L*21, L*21)`` frequencies, mixed with the
    uniform distribution by ``pseudocount`` (fraction, 0-1)."""
    dev = _device(device)
    n, L = msa.codes.shape
    x = onehot(msa.codes, dev, dtype).reshape(n, L * Q)
    w = torch.as_tensor(weights, dtype=dtype, device=dev)
    w = w / w.sum()
    fi = (w[:, None] * x).sum(0).reshape(L, Q)
    fij = (x * w[:, None]).T @ x
    lam = float(pseudocount)
    fi = (1 - lam) * fi + lam / Q
    fij = (1 - lam) * fij + lam / (Q * Q)
    # the diagonal blocks are exact single frequencies (a residue pairs with itself only)
    eye = torch.eye(Q, dtype=dtype, device=dev)
    for i in range(L):
        fij[i * Q : (i + 1) * Q, i * Q : (i + 1) * Q] = torch.diag(fi[i]) * eye
    return fi, fij


def apc(s: np.ndarray | torch.Tensor) -> np.ndarray:
    """Average product correction: ``s_ij - s_i. s_.j / s_..`` with the means over ``j != i``
    (Dunn et al. 2008); ``(L, L)`` -> ``(L, L)``, diagonal 0."""
    s = np.array(s.detach().cpu().numpy() if isinstance(s, torch.Tensor) else s, dtype=np.float64)
    L = s.shape[0]
    off = ~np.eye(L, dtype=bool)
    s = np.where(off, s, 0.0)
    row = s.sum(1) / max(L - 1, 1)
    total = s[off].mean() if L > 1 else 0.0
    out = s - (np.outer(row, row) / total if total != 0 else 0.0)
    np.fill_diagonal(out, 0.0)
    return out


def _symmetric(s: torch.Tensor) -> np.ndarray:
    s = s.detach().double().cpu().numpy()
    s = 0.5 * (s + s.T)
    np.fill_diagonal(s, 0.0)
    return s


def mutual_information(
    msa: MSA,
    weights: np.ndarray | None = None,
    identity: float | None = 0.8,
    pseudocount: float = 0.0,
    correct: bool = True,
    device="cpu",
) -> np.ndarray:
    """Mutual information (nats) of each column pair over the 21 states, of the weighted
    frequencies (``weights``, else :func:`sequence_weights` at ``identity``), APC-corrected
    unless ``correct=False``. Terms with a zero pair frequency contribute 0."""
    w = sequence_weights(msa, identity, device) if weights is None else np.asarray(weights, float)
    L = msa.L
    fi, fij = _pair_frequencies(msa, w, pseudocount, device)
    pij = fij.reshape(L, Q, L, Q).permute(0, 2, 1, 3)
    outer = fi[:, None, :, None] * fi[None, :, None, :]
    ok = pij > 0
    term = torch.where(ok, pij * (torch.log(pij.clamp_min(1e-300)) - torch.log(outer.clamp_min(1e-300))), 0.0)
    mi = _symmetric(term.sum((2, 3)))
    return apc(mi) if correct else mi


def psicov(
    msa: MSA,
    weights: np.ndarray | None = None,
    identity: float | None = 0.8,
    rho: float = 0.02,
    pseudocount: float = 0.1,
    shrink: float = 0.1,
    max_iter: int = 15,
    admm_rho: float = 1.0,
    tol: float = 1e-3,
    correct: bool = True,
    device="cpu",
    progress: Callable[[str], None] | None = None,
) -> np.ndarray:
    """PSICOV-like contact scores: sparse inverse covariance by a graphical lasso.

    Our own ADMM graphical lasso (no scikit-learn: ``GraphicalLasso`` does not finish on
    ``21 L`` = 4,000+ variables in reasonable time) on the pseudocounted 21-state covariance,
    scaled to a correlation matrix and shrunk towards the identity by ``shrink`` (keeps it
    positive definite, as PSICOV's shrinkage does). Entries of the off-diagonal ``(i, j)``
    blocks are L1-penalised by ``rho``; the ADMM starts from the shrunk inverse and runs at most
    ``max_iter`` iterations (each one eigendecomposition, ``O((21 L)^3)``) or until the primal
    residual is below ``tol``. Score: the sum of ``|Theta_ij(a, b)|`` over the 20 amino acids,
    APC-corrected. ``progress``, if given, is called with a line after each iteration.

    Returns
    -------
    numpy.ndarray
        ``(L, L)`` scores.
    """
    dev = _device(device)
    w = sequence_weights(msa, identity, dev) if weights is None else np.asarray(weights, float)
    L = msa.L
    # the precision follows the size only, so a family scores the same on the CPU and a GPU
    dt = torch.float64 if L * Q <= 2500 else torch.float32
    fi, fij = _pair_frequencies(msa, w, pseudocount, dev, torch.float64)
    c = fij - fi.reshape(-1, 1) * fi.reshape(1, -1)
    d = torch.sqrt(torch.diagonal(c).clamp_min(1e-12))
    s = (c / d[:, None] / d[None, :]).to(dt)
    s = (1 - shrink) * s + shrink * torch.eye(L * Q, dtype=dt, device=dev)
    del c, fij
    pen = torch.full((L, L), float(rho), dtype=dt, device=dev)
    pen.fill_diagonal_(0.0)
    pen = pen.repeat_interleave(Q, 0).repeat_interleave(Q, 1)
    z = torch.linalg.inv(s)
    u = torch.zeros_like(z)
    mu = float(admm_rho)
    for it in range(max(int(max_iter), 0)):
        evals, evecs = torch.linalg.eigh(mu * (z - u) - s)
        theta_d = (evals + torch.sqrt(evals * evals + 4 * mu)) / (2 * mu)
        theta = (evecs * theta_d) @ evecs.T
        a = theta + u
        z_new = torch.sign(a) * torch.clamp(a.abs() - pen / mu, min=0.0)
        u = u + theta - z_new
        r = torch.linalg.norm(theta - z_new) / max(torch.linalg.norm(z_new).item(), 1e-12)
        z = z_new
        if progress is not None:
            progress(f"PSICOV-like: ADMM iteration {it + 1} of at most {max_iter}, residual {r.item():.2g}")
        if r.item() < tol:
            break
    blocks = z.reshape(L, Q, L, Q)[:, :AA, :, :AA].abs().sum((1, 3))
    out = _symmetric(blocks)
    return apc(out) if correct else out


def plmdca(
    msa: MSA,
    weights: np.ndarray | None = None,
    identity: float | None = 0.8,
    lambda_h: float = 0.01,
    lambda_j: float = 0.2,
    max_iter: int = 50,
    correct: bool = True,
    device="cpu",
    dtype: torch.dtype = torch.float32,
    chunk_elements: int = 2**25,
    return_model: bool = False,
    progress: Callable[[str], None] | None = None,
):
    """plmDCA: a 21-state Potts model fitted by (symmetric) pseudo-likelihood with L-BFGS.

    Objective (as CCMpred): ``-sum_n w_n sum_i log P(x_ni | x_n,-i) + lambda_h |h|^2 +
    lambda_j (L - 1) sum_{i<j} |J_ij|^2`` with ``P(x_i = a | rest) ∝ exp(h_i(a) + sum_{j != i}
    J_ij(a, x_j))``; the weights are :func:`sequence_weights` (identical sequences merged, their
    weights summed: the same objective, fewer rows). ``J`` is kept symmetric by construction
    (``J = (P + P^T) / 2`` with zero diagonal blocks). The conditional logits of a sequence are
    a sum of ``L`` rows of ``J`` (the rows of its residues), so each evaluation gathers them
    with ``embedding_bag`` (and scatters the gradient back) instead of multiplying the one-hot
    alignment by ``J``: ``~4 n L (21 L)`` operations rather than ``~4 n (21 L)^2``, 21 times
    fewer, chunked over sequences (``chunk_elements`` logits at a time). Memory is dominated
    by the couplings and the L-BFGS history, ``~ (2 * 5 + 4) (21 L)^2`` values.

    Parameters
    ----------
    max_iter
        L-BFGS iterations (strong Wolfe line search; CCMpred's default is also 50).
    device, dtype
        Where and in what precision to fit (``cuda`` fits an L = 500 family in seconds).
    return_model
        Also return ``(h (L, 21), J (L, 21, L, 21))`` as numpy arrays.
    progress
        Called with a line after each evaluation of the objective (an L-BFGS iteration takes
        one or a few): the iteration, the evaluations so far and the objective.

    Returns
    -------
    numpy.ndarray or (numpy.ndarray, numpy.ndarray, numpy.ndarray)
        ``(L, L)`` scores (Frobenius norm of the 20 x 20 blocks, APC unless ``correct=False``).
    """
    dev = _device(device)
    w = sequence_weights(msa, identity, dev) if weights is None else np.asarray(weights, float)
    codes = np.minimum(msa.codes, GAP)
    uniq, inv = np.unique(codes, axis=0, return_inverse=True)
    wu = np.bincount(inv.reshape(-1), weights=w, minlength=len(uniq))
    n, L = uniq.shape
    D = L * Q
    # row of J of residue x_i at column i: i * Q + x_i
    idx = torch.as_tensor(uniq.astype(np.int64) + np.arange(L, dtype=np.int64) * Q, device=dev)
    wt = torch.as_tensor(wu, dtype=dtype, device=dev)
    # fields start at the log frequencies (pseudocount 0.1), couplings at 0
    f = (
        torch.zeros(D, dtype=dtype, device=dev)
        .index_add_(0, idx.reshape(-1), wt[:, None].expand(n, L).reshape(-1))
        .reshape(L, Q)
        / wt.sum()
    )
    f = 0.9 * f + 0.1 / Q
    h = torch.log(f)
    h = (h - h.mean(1, keepdim=True)).clone().requires_grad_(True)
    p = torch.zeros(D, D, dtype=dtype, device=dev, requires_grad=True)
    mask = 1.0 - torch.block_diag(*[torch.ones(Q, Q, dtype=dtype, device=dev)] * L)
    lam_j = float(lambda_j) * (L - 1)
    step = max(1, int(chunk_elements // D))
    opt = torch.optim.LBFGS(
        [h, p],
        lr=1.0,
        max_iter=int(max_iter),
        history_size=5,
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-7,
        tolerance_change=1e-10,
    )

    evaluations, max_eval = 0, opt.param_groups[0]["max_eval"]

    def closure():
        nonlocal evaluations
        opt.zero_grad()
        j = 0.5 * (p + p.T) * mask
        total = lambda_h * (h * h).sum() + 0.5 * lam_j * (j * j).sum()
        total.backward(retain_graph=True)
        value = float(total.detach())
        for s in range(0, n, step):
            ic = idx[s : s + step]
            # logits[b] = sum_k J[ic[b, k]] (J is symmetric, so rows = columns)
            logits = torch.nn.functional.embedding_bag(ic, j, mode="sum").reshape(-1, L, Q) + h
            ll = logits.reshape(-1, D).gather(1, ic).sum(1) - torch.logsumexp(logits, 2).sum(1)
            nll = -(wt[s : s + step] * ll).sum()
            nll.backward(retain_graph=True)
            value += float(nll.detach())
        evaluations += 1
        if progress is not None:
            it = max(opt.state[h].get("n_iter", 0), 1)  # 0: the evaluation before the first iteration
            progress(
                f"plmDCA: L-BFGS iteration {it}, evaluation {evaluations} (stops by {max_iter} "
                f"iterations or {max_eval} evaluations), objective {value:.6g}"
            )
        return torch.tensor(value, dtype=dtype, device=dev)

    opt.step(closure)
    with torch.no_grad():
        j = (0.5 * (p + p.T) * mask).reshape(L, Q, L, Q)
        fro = torch.sqrt((j[:, :AA, :, :AA] ** 2).sum((1, 3)))
    scores = _symmetric(fro)
    scores = apc(scores) if correct else scores
    if return_model:
        return scores, h.detach().double().cpu().numpy(), j.double().cpu().numpy()
    return scores


def deepcov_features(msa: MSA, device="cpu", dtype=torch.float32) -> torch.Tensor:
    """DeepCov's pair covariance features, ``(441, L, L)`` (channel ``21 a + b``): weights from
    neighbours with fewer than ``int(0.38 L)`` mismatching columns, single and pair frequencies
    with a pseudocount of 1 (unknown residues not counted), ``p_ij(a, b) - p_i(a) p_j(b)``. The
    same numbers as DEEPCON's ``cov21stats``, vectorised."""
    dev = _device(device)
    n, L = msa.codes.shape
    w = sequence_weights(msa, None, dev, min_matches=L - int(0.38 * L) + 1)
    w = torch.as_tensor(w, dtype=torch.float64, device=dev)
    wsum = w.sum()
    x = onehot(msa.codes, dev, torch.float64, states=22)[..., :Q].reshape(n, L * Q)  # unknown: no state
    pa = (1.0 + (w[:, None] * x).sum(0)) / (Q + wsum)
    pab = ((x * w[:, None]).T @ x + 1.0 / Q) / (Q + wsum)
    cov = pab - pa[:, None] * pa[None, :]
    return cov.reshape(L, Q, L, Q).permute(1, 3, 0, 2).reshape(Q * Q, L, L).to(dtype)


def zscore(s: np.ndarray, min_sep: int = 1) -> np.ndarray:
    """``s`` standardised over the pairs ``|i - j| >= min_sep`` (so maps of different
    proteins and methods share a scale); diagonal 0."""
    L = s.shape[0]
    iu = np.triu_indices(L, k=max(min_sep, 1))
    v = s[iu]
    if v.size < 2:
        return np.zeros_like(s)
    sd = v.std()
    out = (s - v.mean()) / (sd if sd > 0 else 1.0)
    np.fill_diagonal(out, 0.0)
    return out


def entropy(msa: MSA, weights: np.ndarray) -> np.ndarray:
    """Weighted Shannon entropy (nats) of each column over the 21 states, ``(L,)``."""
    x = onehot(msa.codes, "cpu", torch.float64)
    w = torch.as_tensor(weights, dtype=torch.float64)
    f = (w[:, None, None] * x).sum(0) / w.sum()
    return (-(f * torch.log(f.clamp_min(1e-300))).sum(1)).numpy()


def scale_note(L: int, n: int) -> str:
    """Rough cost of :func:`plmdca` for a family of length ``L`` and ``n`` sequences."""
    D = L * Q
    return f"{4 * n * L * D / 1e9:.0f} GFLOP per evaluation, {14 * D * D * 4 / 2**30:.1f} GiB (float32)"


__all__ = [
    "apc",
    "deepcov_features",
    "entropy",
    "meff",
    "mutual_information",
    "onehot",
    "plmdca",
    "psicov",
    "sequence_weights",
    "zscore",
    "scale_note",
]
