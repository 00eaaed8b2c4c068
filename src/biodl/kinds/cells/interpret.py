"""What a CellCnn ensemble learned: filters, the cells they select and their marker profile.

Follows the paper's interpretation: each filter is a linear function of a cell's markers; a
filter whose pooled response is higher in one class than in the other points at a cell
subset associated with that class. For the best filters we report

* the filter weights (in z-scored marker units) and output weights;
* per-sample pooled responses and the class difference that ranks the filters;
* the *selected cells*: cells whose response exceeds the ``quantile`` (0.99) of the
  responses of control-class cells, i.e. cells that respond more than 99 % of control cells;
* the selected subset's marker profile (median, difference to all cells, Kolmogorov-Smirnov
  statistic per marker) and its frequency per sample;
* plots: response histograms per class, a 2-D embedding (PCA and t-SNE of a cell subsample)
  coloured by filter response, the marker profile and the filter weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from biodl.models.cellcnn import CellCnn, CellCnnEnsemble, pooled_k, top_k_pool

__all__ = [
    "cell_responses",
    "consensus_filters",
    "filter_table",
    "marker_profile",
    "plot_embedding",
    "plot_filter_weights",
    "plot_marker_profile",
    "plot_response_histograms",
    "pooled_responses",
    "rank_filters",
    "select_cells",
]


def _device(model) -> torch.device:
    """Where the model's weights are (its inputs go there; a GPU model's outputs come back)."""
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


@torch.no_grad()
def cell_responses(model: CellCnnEnsemble, cells: np.ndarray) -> np.ndarray:
    """Responses of every filter of every member to each cell.

    Parameters
    ----------
    cells
        ``(n_cells, n_markers)`` arcsinh-transformed.

    Returns
    -------
    numpy.ndarray
        ``(n_cells, total_filters)``, members' filters concatenated in order.
    """
    x = torch.from_numpy(np.ascontiguousarray(cells, dtype=np.float32)).to(_device(model))
    return torch.cat([net.responses(x) for net in model.nets], dim=1).cpu().numpy()


@torch.no_grad()
def pooled_responses(model: CellCnnEnsemble, samples: Sequence[np.ndarray]) -> np.ndarray:
    """Pooled response per sample and filter (each member's pooling percentage over all the
    sample's cells), ``(n_samples, total_filters)``."""
    rows = []
    for c in samples:
        x = torch.from_numpy(np.ascontiguousarray(c, dtype=np.float32))[None].to(_device(model))
        rows.append(
            torch.cat(
                [top_k_pool(net.responses(x), pooled_k(x.shape[1], net.pool_percent)) for net in model.nets],
                dim=1,
            )[0]
            .cpu()
            .numpy()
        )
    return np.stack(rows)


def filter_table(
    model: CellCnnEnsemble, markers: Sequence[str], classes: Sequence[str] | None
) -> pd.DataFrame:
    """One row per filter: member, filter index, pooling percentage, weight per marker
    (z-scored units), bias, and output weights (per class, or ``out``)."""
    rows = []
    for m, net in enumerate(model.nets):
        w = net.filters.weight.detach().cpu().numpy()
        b = net.filters.bias.detach().cpu().numpy()
        wo = net.output.weight.detach().cpu().numpy()
        for f in range(net.n_filters):
            r = {"member": m, "filter": f, "pool_percent": net.pool_percent}
            if not net.hidden_units:  # marker weights exist only without a hidden layer
                r.update({mk: float(w[f, j]) for j, mk in enumerate(markers)})
            r["bias"] = float(b[f])
            names = list(classes) if classes else ["out"]
            r.update({f"w_out[{c}]": float(wo[k, f]) for k, c in enumerate(names)})
            rows.append(r)
    return pd.DataFrame(rows)


def rank_filters(
    model: CellCnnEnsemble,
    samples: Sequence[np.ndarray],
    targets: np.ndarray,
    positive: int = 1,
    regression: bool = False,
) -> pd.DataFrame:
    """Rank all filters of the ensemble by how well their pooled response separates the
    classes (or follows the regression target).

    Parameters
    ----------
    samples
        Per-sample cells.
    targets
        ``(n_samples,)`` class index or value.
    positive
        The class whose subset is wanted (binary: 1); other classes are the control.

    Returns
    -------
    pandas.DataFrame
        ``member, filter, column, pooled_pos, pooled_neg, score, w_out_diff``, best first.
        ``score`` is the difference of class means of the pooled response divided by the
        pooled response's standard deviation (regression: Spearman correlation), and
        ``w_out_diff`` the output-weight difference positive - control (a filter pushes
        towards the positive class when it is > 0).
    """
    from scipy.stats import spearmanr

    P = pooled_responses(model, samples)
    targets = np.asarray(targets)
    rows, col = [], 0
    for m, net in enumerate(model.nets):
        wo = net.output.weight.detach().cpu().numpy()
        for f in range(net.n_filters):
            v = P[:, col]
            sd = float(v.std()) or 1.0
            if regression:
                score = float(spearmanr(v, targets).statistic) if v.std() > 0 else 0.0
                r = dict(pooled_pos=float("nan"), pooled_neg=float("nan"), w_out_diff=float(wo[0, f]))
            else:
                pos, neg = v[targets == positive], v[targets != positive]
                score = (float(pos.mean()) - float(neg.mean())) / sd if len(pos) and len(neg) else 0.0
                others = [k for k in range(wo.shape[0]) if k != positive]
                r = dict(
                    pooled_pos=float(pos.mean()) if len(pos) else float("nan"),
                    pooled_neg=float(neg.mean()) if len(neg) else float("nan"),
                    w_out_diff=float(wo[positive, f] - wo[others, f].mean()),
                )
            rows.append(dict(member=m, filter=f, column=col, pool_percent=net.pool_percent, score=score, **r))
            col += 1
    df = pd.DataFrame(rows)
    # filters that both respond more in the positive class and push the output towards it first
    df["agrees"] = (df["score"] > 0) & (df["w_out_diff"] > 0)
    return df.sort_values(["agrees", "score"], ascending=[False, False]).reset_index(drop=True)


def consensus_filters(
    nets: Sequence[CellCnn],
    accuracies: Sequence[float],
    *,
    accur_thres: float = 0.95,
    cutoff: float = 0.4,
    min_nets: int = 3,
) -> tuple[CellCnnEnsemble | None, pd.DataFrame]:
    """The paper's filter selection: consensus filters over restarts.

    The filters of every restart reaching validation accuracy ``accur_thres`` (or of the
    ``min_nets`` best restarts when fewer reach it) are clustered hierarchically (average
    linkage, cosine distance of the filter weights + bias, cut at ``cutoff``); every cluster
    with more than one filter is kept, and its
    representative is the member with the largest summed cosine similarity to the others --
    as ``cluster_profiles`` in the reference implementation (``cellCnn/utils.py``,
    github.com/eiriniar/CellCnn; written for biodl, no code copied). A filter found again and
    again across random restarts is a consistently learned one.

    Parameters
    ----------
    nets
        Every restart's network (:func:`biodl.kinds.cells.restarts.load_restarts`); they must
        share one input scaler (one :func:`~biodl.kinds.cells.restarts.train_cellcnn` run).
    accuracies
        Validation accuracy per network.

    Returns
    -------
    (model, table)
        ``model``: a one-member :class:`CellCnnEnsemble` whose filters are the consensus
        filters (their representatives' weights, bias and output weights; pooling percentage of
        the best network, as the reference ranks consensus filters with it), usable with
        :func:`rank_filters`, :func:`select_cells` and :func:`cell_responses`; ``None`` when no
        cluster has two filters. ``table``: one row per consensus filter -- ``cluster``,
        ``size`` (filters), ``n_nets`` (distinct restarts in the cluster), ``net`` and
        ``filter`` of the representative.
    """
    from scipy.cluster.hierarchy import fcluster, linkage

    acc = np.asarray(accuracies, dtype=float)
    if len(nets) != len(acc) or not len(nets):
        raise ValueError(f"{len(nets)} networks but {len(acc)} accuracies")
    if any(n.hidden_units for n in nets):
        # filters over a hidden layer live in each restart's own hidden space: not comparable
        return None, pd.DataFrame(columns=["cluster", "size", "n_nets", "net", "filter"])
    thres = min(accur_thres, float(np.sort(acc)[-min(min_nets, len(acc))]))
    keep = [i for i in range(len(nets)) if acc[i] >= thres]
    rows, owner = [], []
    for i in keep:
        net = nets[i]
        w = net.filters.weight.detach().cpu().numpy()
        b = net.filters.bias.detach().cpu().numpy()
        wo = net.output.weight.detach().cpu().numpy()
        for f in range(net.n_filters):
            rows.append(np.r_[w[f], b[f], wo[:, f]])
            owner.append((i, f))
    W = np.asarray(rows, dtype=np.float64)
    n_markers = nets[0].n_markers
    table_cols = ["cluster", "size", "n_nets", "net", "filter"]
    if len(W) < 2:
        return None, pd.DataFrame(columns=table_cols)
    V = W[:, : n_markers + 1]
    V = np.where(np.linalg.norm(V, axis=1, keepdims=True) > 0, V, 1e-12)
    labels = fcluster(linkage(V, "average", metric="cosine"), cutoff, criterion="distance")
    unit = V / np.linalg.norm(V, axis=1, keepdims=True)
    reps, info = [], []
    for c in sorted(set(labels), key=lambda c: (-int((labels == c).sum()), c)):
        members = np.flatnonzero(labels == c)
        if len(members) < 2:
            continue
        sim = unit[members] @ unit[members].T
        r = int(members[np.argmax(sim.sum(1))])
        reps.append(r)
        info.append(
            dict(
                cluster=len(info),
                size=len(members),
                n_nets=len({owner[m][0] for m in members}),
                net=owner[r][0],
                filter=owner[r][1],
            )
        )
    table = pd.DataFrame(info, columns=table_cols)
    if not reps:
        return None, table
    best = int(np.argmax(acc))
    ref = nets[best]
    n_out = ref.output.weight.shape[0]
    model = CellCnnEnsemble(
        n_markers, n_out, [{"n_filters": len(reps), "pool_percent": ref.pool_percent}], regression=n_out == 1
    )
    m = model.nets[0]
    with torch.no_grad():
        m.filters.weight.copy_(torch.from_numpy(W[reps, :n_markers]).float())
        m.filters.bias.copy_(torch.from_numpy(W[reps, n_markers]).float())
        m.output.weight.copy_(torch.from_numpy(W[reps, n_markers + 1 :].T).float())
        m.output.bias.zero_()
    m.set_scaler(ref.center, ref.scale)
    return model.eval(), table


def select_cells(
    model: CellCnnEnsemble,
    column: int,
    samples: Sequence[np.ndarray],
    targets: np.ndarray | None,
    positive: int = 1,
    quantile: float = 0.99,
) -> tuple[float, list[np.ndarray]]:
    """Cells selected by one filter.

    The threshold is the ``quantile`` of the filter's responses over the cells of the
    control samples (targets != ``positive``); with no targets, over all cells.

    Returns
    -------
    (threshold, masks)
        The response threshold and one boolean mask ``(n_cells_i,)`` per sample.
    """
    resp = [cell_responses(model, c)[:, column] for c in samples]
    if targets is not None and np.any(np.asarray(targets) != positive):
        ref = np.concatenate([r for r, t in zip(resp, targets, strict=True) if t != positive])
    else:
        ref = np.concatenate(resp)
    thr = float(np.quantile(ref, quantile))
    thr = max(thr, 1e-6)  # a response of 0 (ReLU) never selects a cell
    return thr, [r > thr for r in resp]


def marker_profile(selected: np.ndarray, background: np.ndarray, markers: Sequence[str]) -> pd.DataFrame:
    """Marker profile of selected cells against a background.

    Parameters
    ----------
    selected, background
        ``(n, n_markers)`` arcsinh-transformed cells.

    Returns
    -------
    pandas.DataFrame
        ``marker, median_selected, median_all, difference, ks`` sorted by ``difference``
        (largest first); ``ks`` is the two-sample Kolmogorov-Smirnov statistic, signed by the
        direction of the median difference.
    """
    from scipy.stats import ks_2samp

    rows = []
    for j, m in enumerate(markers):
        a, b = selected[:, j], background[:, j]
        ms, mb = (float(np.median(a)) if len(a) else float("nan")), float(np.median(b))
        ks = float(ks_2samp(a, b).statistic) if len(a) else float("nan")
        rows.append(
            dict(marker=m, median_selected=ms, median_all=mb, difference=ms - mb, ks=ks if ms >= mb else -ks)
        )
    return pd.DataFrame(rows).sort_values("difference", ascending=False).reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# plots
# --------------------------------------------------------------------------------------------
def _fig(w: float, h: float):
    from biodl.report.plots import _new_figure

    return _new_figure(w, h)


def _save(fig, path) -> Path:
    from biodl.report.plots import _save_figure

    return _save_figure(fig, path)


def plot_response_histograms(
    responses_by_class: dict[str, np.ndarray], threshold: float, path: str | Path, title: str = ""
) -> Path:
    """Histogram (density, log y) of one filter's cell responses per class, with the selection
    threshold."""
    fig = _fig(5.5, 3.6)
    ax = fig.add_subplot()
    allv = np.concatenate([v for v in responses_by_class.values() if len(v)])
    hi = float(np.quantile(allv, 0.9999)) if len(allv) else 1.0
    bins = np.linspace(0, max(hi, threshold * 1.2, 1e-3), 60)
    for name, v in responses_by_class.items():
        ax.hist(
            np.clip(v, 0, bins[-1]),
            bins=bins,
            density=True,
            histtype="step",
            lw=1.6,
            label=f"{name} ({len(v):,} cells)",
        )
    ax.axvline(threshold, color="k", ls="--", lw=1, label=f"threshold {threshold:.2f}")
    ax.set_yscale("log")
    ax.set_xlabel("filter response")
    ax.set_ylabel("density")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_pooled(pooled: np.ndarray, labels: Sequence[str], path: str | Path, title: str = "") -> Path:
    """Strip plot of the per-sample pooled response of one filter by class."""
    fig = _fig(4.0, 3.4)
    ax = fig.add_subplot()
    names = list(dict.fromkeys(labels))
    for i, n in enumerate(names):
        v = pooled[[lab == n for lab in labels]]
        ax.scatter(np.full(len(v), i) + np.linspace(-0.08, 0.08, len(v)), v, s=28, alpha=0.8)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel("pooled filter response per sample")
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


def plot_embedding(
    cells: np.ndarray,
    response: np.ndarray,
    path: str | Path,
    *,
    method: str = "tsne",
    max_cells: int = 3000,
    seed: int = 0,
    title: str = "",
) -> Path | None:
    """2-D embedding (``pca`` or ``tsne``, scikit-learn) of a random cell subsample, coloured by
    a filter's response (cells drawn on top in order of response); ``None`` (no figure) with
    fewer than 2 markers or 10 cells, which have no 2-D embedding (it was an internal error), or
    fewer than 3 distinct cells."""
    from sklearn.decomposition import PCA

    if cells.ndim != 2 or cells.shape[1] < 2 or len(cells) < 10:
        return None
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(cells), min(max_cells, len(cells)), replace=False)
    x, r = cells[idx], response[idx]
    if np.unique(x, axis=0).shape[0] < 3 or not np.isfinite(x).all():
        # (nearly) identical cells: no embedding, and scikit-learn's Barnes-Hut t-SNE crashed the
        # process (a segmentation fault) on identical points
        return None
    if method == "pca":
        emb = PCA(n_components=2, random_state=seed).fit_transform(x)
        lab = ("PC1", "PC2")
    else:
        from sklearn.manifold import TSNE

        init = PCA(n_components=min(10, x.shape[1], len(x)), random_state=seed).fit_transform(x)
        emb = TSNE(
            n_components=2,
            init="pca",
            perplexity=min(30, max(5, len(x) // 10)),
            random_state=seed,
            max_iter=500,
        ).fit_transform(init)
        lab = ("t-SNE 1", "t-SNE 2")
    order = np.argsort(r)
    fig = _fig(5.2, 4.4)
    ax = fig.add_subplot()
    sc = ax.scatter(emb[order, 0], emb[order, 1], c=r[order], s=4, cmap="viridis", rasterized=True)
    fig.colorbar(sc, ax=ax, label="filter response")
    ax.set_xlabel(lab[0])
    ax.set_ylabel(lab[1])
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


def plot_marker_profile(profile: pd.DataFrame, path: str | Path, title: str = "") -> Path:
    """Horizontal bars: median arcsinh intensity of selected cells minus that of all cells."""
    p = profile.sort_values("difference")
    fig = _fig(5.0, 0.22 * len(p) + 1.2)
    ax = fig.add_subplot()
    colors = ["#cf222e" if d > 0 else "#0969da" for d in p["difference"]]
    ax.barh(p["marker"], p["difference"], color=colors)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlabel("median(selected) - median(all cells), arcsinh units")
    ax.tick_params(axis="y", labelsize=8)
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


def plot_filter_weights(table: pd.DataFrame, markers: Sequence[str], path: str | Path) -> Path:
    """Heat map of all filters' marker weights (rows: member/filter)."""
    w = table[list(markers)].to_numpy()
    fig = _fig(0.28 * len(markers) + 2.0, 0.28 * len(w) + 1.6)
    ax = fig.add_subplot()
    lim = float(np.abs(w).max()) or 1.0
    im = ax.imshow(w, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_xticks(range(len(markers)), markers, rotation=90, fontsize=8)
    ax.set_yticks(
        range(len(w)),
        [f"net {m} / f{f}" for m, f in zip(table["member"], table["filter"], strict=True)],
        fontsize=8,
    )
    fig.colorbar(im, ax=ax, label="weight (z-scored marker)")
    return _save(fig, path)
