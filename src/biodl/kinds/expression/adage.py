"""ADAGE tools: the published 50-node *P. aeruginosa* model, node activities, node signatures
(high-weight genes), gene-set enrichment / pathway coverage, and PCA / ICA baselines of the
same size.

The paper's evaluation (Tan et al. 2016): a node's *signature* is its genes with weight more
than 2.5 standard deviations above (positive side) or below (negative side) the node's mean
weight; a gene set (KEGG pathway, operon) is *covered* when it is significantly enriched in at
least one signature (here: one-sided hypergeometric test, Benjamini-Hochberg FDR over all
signature x gene-set tests). The same is done for PCA loadings and ICA mixing vectors of
equal size.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from biodl.errors import BiodlInputError
from biodl.io._util import check_file, open_text
from biodl.kinds.expression.io import ExpressionMatrix
from biodl.models.adage import ADAGE, high_weight_genes

RESOURCES = Path(__file__).parent / "resources" / "adage50"
PUBLISHED_NETWORK = RESOURCES / "ADAGE50_network_SdA.txt.gz"
PUBLISHED_GENES = RESOURCES / "genes.txt"
ANR_GENES = RESOURCES / "anr_regulated_cooperonic_genes.txt"


@dataclass
class NetworkLayer:
    """One layer of an ADAGE network file: ``weight (n_in, n_out)``, ``hidden_bias (n_out,)``,
    ``visible_bias (n_in,)``."""

    weight: np.ndarray
    hidden_bias: np.ndarray
    visible_bias: np.ndarray


def read_network(path: str | Path = PUBLISHED_NETWORK) -> list[NetworkLayer]:
    """Read an ADAGE ``*_network_SdA.txt`` file (plain or gzip).

    Per layer: a ``layer N`` line, ``weight matrix``, one tab-separated row of node weights
    per input (gene), ``hidden bias vector`` and one value per node, ``visible bias vector``
    and one value per input.
    """
    p = check_file(path)
    with open_text(p) as fh:
        lines = [ln.strip() for ln in fh]
    layers: list[NetworkLayer] = []
    i, n = 0, len(lines)

    def expect(label: str) -> None:
        nonlocal i
        while i < n and not lines[i]:
            i += 1
        if i >= n or lines[i].lower() != label:
            got = lines[i][:40] if i < n else "end of file"
            raise BiodlInputError(f"expected {label!r}, found {got!r}", path=p, record=i + 1)
        i += 1

    def numbers(stop: str | None, width: int | None) -> np.ndarray:
        nonlocal i
        rows = []
        start = i
        while (
            i < n
            and lines[i]
            and (stop is None or lines[i].lower() != stop)
            and not lines[i].lower().startswith("layer")
        ):
            f = lines[i].split("\t")
            if width is not None and len(f) != width:
                raise BiodlInputError(f"{len(f)} values, expected {width}", path=p, record=i + 1)
            try:
                rows.append([float(x) for x in f])
            except ValueError:
                bad = next(x for x in f if not _is_float(x))
                raise BiodlInputError(f"non-numeric value {bad!r}", path=p, record=i + 1) from None
            if width is None:
                width = len(f)
            i += 1
        if not rows:
            raise BiodlInputError("no values", path=p, record=start + 1)
        arr = np.asarray(rows, dtype=np.float64)
        if not np.isfinite(arr).all():
            r = int(np.argwhere(~np.isfinite(arr))[0][0])
            raise BiodlInputError("non-finite value", path=p, record=start + r + 1)
        return arr

    while i < n:
        if not lines[i]:
            i += 1
            continue
        if not lines[i].lower().startswith("layer"):
            raise BiodlInputError(f"expected 'layer N', found {lines[i][:40]!r}", path=p, record=i + 1)
        i += 1
        expect("weight matrix")
        w = numbers("hidden bias vector", None)
        expect("hidden bias vector")
        hb = numbers("visible bias vector", 1)[:, 0]
        expect("visible bias vector")
        vb = numbers(None, 1)[:, 0]
        if hb.size != w.shape[1] or vb.size != w.shape[0]:
            raise BiodlInputError(
                f"layer {len(layers) + 1}: weight matrix {w.shape[0]}x{w.shape[1]} but {hb.size} hidden and "
                f"{vb.size} visible biases",
                path=p,
            )
        if layers and w.shape[0] != layers[-1].weight.shape[1]:
            raise BiodlInputError(f"layer {len(layers) + 1} does not fit on the layer below", path=p)
        layers.append(NetworkLayer(w, hb, vb))
    if not layers:
        raise BiodlInputError("no layers in the network file", path=p)
    return layers


def _is_float(x: str) -> bool:
    try:
        float(x)
        return True
    except ValueError:
        return False


def write_network(model: ADAGE, path: str | Path) -> Path:
    """Write ``model`` in ADAGE's network-file format (gzip when the name ends with .gz).

    With the fan-in parametrization the file holds the equivalent published-form encoder
    (``W' = s W``, ``b'' = b - s c W``, :meth:`~biodl.models.adage.DenoisingAutoencoder.folded`):
    activities, raw-activity differences and node signatures read from the file are those of
    the model; its reconstructions are not (they use ``W``, the tied decoder)."""
    parts = []
    for k, dae in enumerate(model.layers, 1):
        parts.append(f"layer {k} \nweight matrix \n")
        w_t, hb_t = dae.folded()
        w = w_t.double().cpu().numpy()
        parts.append("\n".join("\t".join(f"{v:.8f}" for v in row) for row in w) + "\n")
        parts.append("hidden bias vector \n" + "\n".join(f"{v:.8f}" for v in hb_t.tolist()) + "\n")
        parts.append(
            "visible bias vector \n" + "\n".join(f"{v:.8f}" for v in dae.visible_bias.tolist()) + "\n"
        )
    text = "".join(parts)
    from biodl.io._util import atomic_output

    p = Path(path)
    with atomic_output(p) as tmp:
        if p.name.endswith(".gz"):
            with gzip.open(tmp, "wt") as fh:
                fh.write(text)
        else:
            tmp.write_text(text)
    return p


def model_from_network(layers: list[NetworkLayer], corruption: float = 0.1) -> ADAGE:
    """An :class:`ADAGE` with the weights of a network file (scaling left at identity)."""
    model = ADAGE(layers[0].weight.shape[0], [ly.weight.shape[1] for ly in layers], corruption)
    with torch.no_grad():
        for dae, ly in zip(model.layers, layers, strict=True):
            dae.weight.copy_(torch.from_numpy(ly.weight))
            dae.hidden_bias.copy_(torch.from_numpy(ly.hidden_bias))
            dae.visible_bias.copy_(torch.from_numpy(ly.visible_bias))
    return model.eval()


def load_published(
    network: str | Path | None = None, genes: str | Path | list[str] | None = None
) -> tuple[ADAGE, list[str]]:
    """The published 50-node ADAGE model of the *P. aeruginosa* compendium and its 5549 genes.

    Returns
    -------
    (model, genes)
        ``model.input_min`` / ``input_range`` are 0 / 1: the compendium's per-gene ranges are not
        published, so scale inputs before (``scale="self"`` or a reference compendium in
        :func:`activities`).
    """
    layers = read_network(network or PUBLISHED_NETWORK)
    if genes is None:
        genes = PUBLISHED_GENES
    if not isinstance(genes, list):
        from biodl.kinds.expression.io import read_gene_list

        genes = read_gene_list(genes)
    if len(genes) != layers[0].weight.shape[0]:
        raise BiodlInputError(
            f"the network has {layers[0].weight.shape[0]} input rows but the gene list has {len(genes)} genes"
        )
    return model_from_network(layers), list(genes)


def set_reference_scaling(model: ADAGE, genes: list[str], reference: ExpressionMatrix) -> None:
    """Scale new data as the paper scales test sets: with each gene's minimum and range in a
    reference compendium (``reference`` must hold every model gene)."""
    ref = reference.align_to(genes, what="model genes (in the reference)")
    model.fit_scaling(torch.from_numpy(ref.values))


def activities(
    model: ADAGE,
    genes: list[str],
    data: ExpressionMatrix,
    scale: str = "model",
    raw: bool = False,
    missing_fill: float | None = None,
) -> pd.DataFrame:
    """Node activities of every sample.

    Parameters
    ----------
    model, genes
        The model and its input genes (in order).
    data
        Expression matrix (its genes are matched by identifier, any order).
    scale
        ``model``: the per-gene minimum / range stored with the model (its training data);
        ``self``: per-gene 0-1 scaling over the samples of ``data`` (needs >= 2 samples);
        ``global``: one minimum / range over the whole matrix (keeps each gene's differences
        between samples in the same units; the default for the published model, whose
        compendium per-gene ranges are not available).
    raw
        Raw activities (``x W``, no bias, no sigmoid) instead of activities.

    Returns
    -------
    DataFrame
        ``(n_samples, n_nodes)``, index = sample ids, columns ``Node1`` ... (1-based, as ADAGE).
    """
    _check_missing_genes(genes, data, missing_fill)
    x = data.align_to(genes, fill=missing_fill)
    t = torch.from_numpy(x.values).float()
    if scale == "self":
        if t.shape[0] < 2:
            raise BiodlInputError("scale=self needs at least 2 samples", path=data.source or None)
        lo = t.min(0).values
        rng = t.max(0).values - lo
        t = (t - lo) / torch.where(rng > 0, rng, torch.ones_like(rng))
        scaled_model = _identity_scaling(model)
    elif scale == "global":
        lo, hi = t.min(), t.max()
        t = (t - lo) / (hi - lo if hi > lo else 1.0)
        scaled_model = _identity_scaling(model)
    elif scale == "model":
        scaled_model = model
    else:
        raise BiodlInputError(f"scale must be 'model', 'self' or 'global', not {scale!r}")
    with torch.no_grad():
        a = scaled_model.activities(t.to(next(model.parameters()).dtype), raw=raw).double().numpy()
    cols = [f"Node{j + 1}" for j in range(a.shape[1])]
    return pd.DataFrame(a, index=data.samples, columns=cols)


def _check_missing_genes(genes: list[str], data: ExpressionMatrix, fill: float | None) -> None:
    """With a ``fill`` for the model genes absent from ``data``: refuse a non-finite fill and data
    holding none of the model's genes (every activity would come from the fill alone), and say
    how many genes were filled. Without one, :meth:`ExpressionMatrix.align_to` refuses them."""
    if fill is None:
        return
    src = data.source or None
    if not np.isfinite(fill):
        raise BiodlInputError(f"the value for missing model genes must be a finite number, got {fill!r}")
    have = set(data.genes)
    missing = [g for g in genes if g not in have]
    if not missing:
        return
    if len(missing) == len(genes):
        raise BiodlInputError(
            f"none of the model's {len(genes)} genes is in the data (the data's genes: "
            f"{', '.join(data.genes[:3])}{', ...' if len(data.genes) > 3 else ''}): every activity would "
            "come from the fill value alone; is it the right organism and id type, and the orientation "
            "right?",
            path=src,
        )
    from biodl.io._util import note

    note(
        f"[biodl] warning: {src or 'the data'}: {len(missing)} of the model's {len(genes)} genes are "
        f"missing (first: {', '.join(missing[:5])}) and were set to {fill:g}"
        + (
            "; with most genes filled, the activities mostly reflect the fill value"
            if 2 * len(missing) > len(genes)
            else ""
        )
    )


def _identity_scaling(model: ADAGE) -> ADAGE:
    import copy

    m = copy.deepcopy(model)
    m.input_min.zero_()
    m.input_range.fill_(1.0)
    return m


def signatures(weights: torch.Tensor | np.ndarray, genes: list[str], n_sd: float = 2.5) -> pd.DataFrame:
    """High-weight genes of every node (``|weight - mean| >= n_sd * sd``), one row per gene.

    Returns
    -------
    DataFrame
        Columns ``node`` (``Node1`` ...), ``side`` (``pos`` / ``neg``), ``gene``, ``weight``,
        ``rank`` (1 = largest |weight| on that side).
    """
    if not np.isfinite(n_sd) or n_sd < 0:
        raise BiodlInputError(
            f"the signature cut-off (--sd) must be a number >= 0 of standard deviations, got {n_sd:g}"
        )
    w = torch.as_tensor(np.asarray(weights)) if not isinstance(weights, torch.Tensor) else weights
    rows = []
    for j, (pos, neg) in enumerate(high_weight_genes(w, n_sd)):
        for side, idx in (("pos", pos), ("neg", neg)):
            for r, g in enumerate(idx, 1):
                rows.append((f"Node{j + 1}", side, genes[g], float(w[g, j]), r))
    return pd.DataFrame(rows, columns=["node", "side", "gene", "weight", "rank"])


def signature_sets(sig: pd.DataFrame) -> dict[str, list[str]]:
    """``{"Node1pos": [...], "Node1neg": [...], ...}`` from :func:`signatures`."""
    return {f"{n}{s}": g.tolist() for (n, s), g in sig.groupby(["node", "side"], sort=False)["gene"]}


def _bh(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values."""
    p = np.asarray(p, dtype=float)
    n = p.size
    if n == 0:
        return p
    order = np.argsort(p)
    ranked = p[order] * n / (np.arange(n) + 1)
    q = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(n)
    out[order] = np.minimum(q, 1.0)
    return out


def enrichment(
    sig_sets: dict[str, list[str]],
    gene_sets: dict[str, list[str]],
    universe: list[str],
    min_size: int = 3,
    fdr: float = 0.05,
) -> pd.DataFrame:
    """One-sided hypergeometric enrichment of every gene set in every signature.

    Gene sets are restricted to ``universe`` (the model's genes) and kept when they have at
    least ``min_size`` genes there. Returns one row per (signature, gene set) with overlap > 0:
    ``signature``, ``gene_set``, ``overlap``, ``sig_size``, ``set_size``, ``p``, ``q`` (BH over
    all signature x gene-set tests, zero overlaps included in the count), ``significant``.
    """
    from scipy.stats import hypergeom

    uni = set(universe)
    n_uni = len(uni)
    sets = {k: sorted(set(v) & uni) for k, v in gene_sets.items()}
    sets = {k: v for k, v in sets.items() if len(v) >= min_size}
    rows = []
    n_tests = 0
    for sname, sgenes in sig_sets.items():
        sg = set(sgenes) & uni
        if not sg:
            continue
        for gname, ggenes in sets.items():
            n_tests += 1
            k = len(sg.intersection(ggenes))
            if k == 0:
                continue
            p = float(hypergeom.sf(k - 1, n_uni, len(ggenes), len(sg)))
            rows.append((sname, gname, k, len(sg), len(ggenes), p))
    if not rows:  # typed columns, so that ``df[df["significant"]]`` still works
        return pd.DataFrame(
            {
                "signature": pd.Series(dtype=object),
                "gene_set": pd.Series(dtype=object),
                "overlap": pd.Series(dtype=np.int64),
                "sig_size": pd.Series(dtype=np.int64),
                "set_size": pd.Series(dtype=np.int64),
                "p": pd.Series(dtype=np.float64),
                "q": pd.Series(dtype=np.float64),
                "significant": pd.Series(dtype=bool),
            }
        )
    df = pd.DataFrame(rows, columns=["signature", "gene_set", "overlap", "sig_size", "set_size", "p"])
    # BH over all tests (untested zero-overlap pairs have p = 1)
    p_all = np.concatenate([df["p"].to_numpy(), np.ones(max(n_tests - len(df), 0))])
    df["q"] = _bh(p_all)[: len(df)]
    df["significant"] = df["q"] < fdr
    return df.sort_values("p").reset_index(drop=True)


def coverage(
    enr: pd.DataFrame, gene_sets: dict[str, list[str]], universe: list[str], min_size: int = 3
) -> dict:
    """Fraction of gene sets (with >= ``min_size`` genes in the universe) significantly enriched
    in at least one signature, and the number of signatures with at least one such set."""
    uni = set(universe)
    testable = [k for k, v in gene_sets.items() if len(set(v) & uni) >= min_size]
    sig = enr[enr["significant"]] if len(enr) else enr
    covered = set(sig["gene_set"]) if len(sig) else set()
    return {
        "gene_sets": len(testable),
        "covered": len(covered),
        "coverage": len(covered) / len(testable) if testable else float("nan"),
        "signatures_with_hit": int(sig["signature"].nunique()) if len(sig) else 0,
    }


def pca_ica(x_train: np.ndarray, k: int, seed: int = 0):
    """PCA and FastICA (scikit-learn) with ``k`` components fitted on ``x_train`` ``(n, genes)``.

    Returns
    -------
    dict
        ``{"PCA": (model, gene_weights (genes, k)), "ICA": (model, gene_weights)}``; gene
        weights are PCA loadings and ICA mixing vectors (what ADAGE's weight matrix is
        compared with); ``model.transform`` gives sample activities.
    """
    import warnings

    from sklearn.decomposition import PCA, FastICA

    pca = PCA(n_components=k, random_state=seed).fit(x_train)
    ica = FastICA(n_components=k, random_state=seed, max_iter=1000, whiten="unit-variance")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings on small data
        ica.fit(x_train)
    return {"PCA": (pca, pca.components_.T.copy()), "ICA": (ica, ica.mixing_.copy())}


def separation(act: pd.DataFrame, groups: pd.Series | list[str], a: str, b: str) -> pd.DataFrame:
    """Per node, Welch t statistic and difference of means of activity between groups ``a`` and
    ``b``; sorted by |t| (nodes with no variance within groups get |t| = inf if means differ)."""
    g = pd.Series(list(groups), index=act.index)
    xa, xb = act[g == a], act[g == b]
    if len(xa) < 2 or len(xb) < 2:
        raise BiodlInputError(f"need >= 2 samples in each group ({a}: {len(xa)}, {b}: {len(xb)})")
    ma, mb = xa.mean(), xb.mean()
    se = np.sqrt(xa.var(ddof=1) / len(xa) + xb.var(ddof=1) / len(xb))
    t = (ma - mb) / se.replace(0, np.nan)
    sep = (np.minimum(xa.min(), xa.max()) > xb.max()) | (xa.max() < xb.min())
    df = pd.DataFrame({f"mean_{a}": ma, f"mean_{b}": mb, "diff": ma - mb, "t": t, "perfectly_separated": sep})
    return df.reindex(df["t"].abs().sort_values(ascending=False).index)
