"""Benchmark of the expression systems (issue 6): ADAGE vs PCA / ICA, D-GEX vs LR / KNN-GE.

Prints four tables:

1. the published 50-node ADAGE model on the P. aeruginosa Anr test sets (node separating
   anr mutant from wild type; enrichment of the paper's curated Anr gene set);
2. KEGG / operon coverage of the published ADAGE node signatures (2.5 sd) vs the same weights
   with genes shuffled (PCA / ICA baselines need the compendium, which is not available);
3. ADAGE vs PCA vs ICA of equal size on pbmc68k_reduced and the bladder arrays: held-out
   accuracy (5-fold CV, logistic regression on node activities, every model fitted on the
   training folds only; ADAGE's parametrization (published or fan-in, see
   biodl.models.adage), Adam learning rate and number of epochs chosen on the reconstruction
   loss of 20 % of the training samples held out, then refitted on all of them) and
   marker-gene-set coverage where gene sets apply;
4. D-GEX vs LR / ridge / KNN-GE on the bladder arrays (943 landmarks -> 5765 targets,
   5-fold CV), and the memory / time of one wide D-GEX (3 x 9000) training run on CPU.

Run (from the repository root; uses both cores for the D-GEX timing):

    nice -n 10 python bench/expression.py --data-dir ../shared/data
    nice -n 10 python bench/expression.py --quick        # fewer epochs / folds
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from biodl.kinds.expression.adage import (
    ANR_GENES,
    activities,
    coverage,
    enrichment,
    load_published,
    pca_ica,
    separation,
    signature_sets,
    signatures,
)
from biodl.kinds.expression.dgex import (
    KNNBaseline,
    LinearBaseline,
    choose_knn_k,
    choose_ridge_alpha,
    dgex_predict,
    mae_per_target,
    split_landmarks,
    train_dgex,
)
from biodl.kinds.expression.io import read_expression, read_gene_list, read_gene_sets
from biodl.kinds.expression.training import fit_adage
from biodl.models.adage import ADAGE
from biodl.train import TrainConfig, seed_all

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _rows import float_list, guarded, int_at_least, positive_int, require_data  # noqa: E402

BLADDER = "debian_bladderbatch/bladderbatch_hgu133a_exprs_22283x57.csv.gz"
# the files (under <data-dir>/expression/) each part of the bench reads
NEEDS = {
    "published": [
        "adage/Anr-gene.pcl",
        "adage/Anr_RNAseq_PAO1_gene.pcl",
        "adage/Anr_RNAseq_J215_gene.pcl",
        "adage/pseudomonas_KEGG_terms.txt",
        "adage/operon_all.txt",
    ],
    "features": ["scanpy/10x_pbmc68k_reduced.h5ad", BLADDER, "debian_bladderbatch/bladderbatch_pheno.csv"],
    "dgex": [BLADDER, "dgex_maps/map_lm.txt", "dgex_maps/map_tg.txt"],
    "wide": [BLADDER, "dgex_maps/map_lm.txt", "dgex_maps/map_tg.txt"],
}


def table(rows: list[dict], title: str) -> None:
    print(f"\n## {title}\n")
    df = pd.DataFrame(rows)
    try:
        print(df.to_markdown(index=False, floatfmt=".4g"))
    except ImportError:  # tabulate (bench extras) is not installed
        print(df.to_string(index=False))
    sys.stdout.flush()


def rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


# ----------------------------------------------------------------------------- published ADAGE
def published_anr(ddir: Path) -> list[dict]:
    model, genes = load_published()
    anr = read_gene_list(ANR_GENES)
    sig = signatures(model.gene_weights(), genes, 2.5)
    enr = enrichment(signature_sets(sig), {"anr": anr}, genes)
    top_sig = enr.iloc[0]
    anr_node = top_sig["signature"].removesuffix("pos").removesuffix("neg")
    rows = []
    for f in ("Anr-gene.pcl", "Anr_RNAseq_PAO1_gene.pcl", "Anr_RNAseq_J215_gene.pcl"):
        d = read_expression(ddir / "expression/adage" / f)
        grp = ["anr" if "anr" in s.lower() else "WT" for s in d.samples]
        act = activities(model, genes, d, scale="global", raw=True)
        sep = separation(act, grp, "anr", "WT")
        rows.append(
            {
                "test set": f,
                "n anr/WT": f"{grp.count('anr')}/{grp.count('WT')}",
                "top node (|t|)": f"{sep.index[0]} (t={sep['t'].iloc[0]:.1f})",
                f"{anr_node} t": round(float(sep.loc[anr_node, "t"]), 2),
                f"{anr_node} rank /50": list(sep.index).index(anr_node) + 1,
                f"{anr_node} separates": bool(sep.loc[anr_node, "perfectly_separated"]),
                "nodes separating perfectly": int(sep["perfectly_separated"].sum()),
            }
        )
    print(
        f"\nCurated Anr gene set ({len(anr)} genes) is most enriched in {top_sig['signature']} "
        f"(overlap {top_sig['overlap']}/{top_sig['sig_size']}, p={top_sig['p']:.2g}, q={top_sig['q']:.2g})"
    )
    return rows


def published_coverage(ddir: Path, n_perm: int) -> list[dict]:
    model, genes = load_published()
    w = model.gene_weights()
    rows = []
    for name, f in (("KEGG", "pseudomonas_KEGG_terms.txt"), ("operons (>=3 genes)", "operon_all.txt")):
        sets = read_gene_sets(ddir / "expression/adage" / f)
        cov = coverage(enrichment(signature_sets(signatures(w, genes, 2.5)), sets, genes), sets, genes)
        rng = np.random.default_rng(0)
        null = []
        for _ in range(n_perm):
            wp = w[torch.from_numpy(rng.permutation(w.shape[0]))]
            null.append(
                coverage(enrichment(signature_sets(signatures(wp, genes, 2.5)), sets, genes), sets, genes)[
                    "coverage"
                ]
            )
        rows.append(
            {
                "gene sets": name,
                "n sets": cov["gene_sets"],
                "ADAGE50 coverage": round(cov["coverage"], 3),
                "signatures with a hit": f"{cov['signatures_with_hit']}/100",
                f"gene-shuffled weights ({n_perm}x)": f"{np.mean(null):.3f} +- {np.std(null):.3f}",
            }
        )
    return rows


# ----------------------------------------------------------------------------- ADAGE vs PCA/ICA
ADAGE_LRS = (1e-3, 1e-2)  # Adam learning rates tried; one is chosen per fold on held-out training samples
# parametrizations tried ("adage": published; "fan-in:G": inputs centred and scaled by G / sqrt(genes))
ADAGE_PARAMS = ("adage", "fan-in:0.1")
ADAGE_VALID = 0.2  # fraction of the training samples held out to choose the settings and epochs
ADAGE_CHOICES: list[dict] = []  # what was chosen in each fit (printed after the table)


def _param_kwargs(spec: str) -> dict:
    """``"adage"`` or ``"fan-in:G"`` -> ADAGE keyword arguments."""
    if spec == "adage":
        return {"parametrization": "adage"}
    name, _, g = spec.partition(":")
    if name != "fan-in":
        raise ValueError(f"unknown ADAGE parametrization {spec!r} (adage or fan-in:G)")
    return {"parametrization": "fan-in", **({"fan_in_scale": float(g)} if g else {})}


def _fit_adage(
    x_tr: np.ndarray, x_va: np.ndarray | None, k: int, cfg: TrainConfig, spec: str = "adage"
) -> tuple[ADAGE, dict]:
    import tempfile

    seed_all(cfg.seed)
    m = ADAGE(x_tr.shape[1], k, 0.1, **_param_kwargs(spec))
    valid = torch.from_numpy(x_va) if x_va is not None else None
    with tempfile.TemporaryDirectory() as tmp:
        (res,) = fit_adage(m, torch.from_numpy(x_tr), valid, tmp, cfg, optimizer="adam")
    return m, {"val_metrics": res.val_metrics, "best_epoch": res.best_epoch}


def adage_features(
    x_tr: np.ndarray, x_te: np.ndarray, k: int, epochs: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train ADAGE on x_tr (already 0-1 scaled) and return train / test activities and weights.

    The parametrization (``ADAGE_PARAMS``), the learning rate (``ADAGE_LRS``) and the number
    of epochs (early stopping, at most ``epochs``) are chosen on the reconstruction loss of
    ``ADAGE_VALID`` of the training samples held out; ADAGE is then refitted on all training
    samples with those settings (the fan-in centre is the mean of the samples it is fitted
    on). ``x_te`` is not used for any choice."""
    perm = np.random.default_rng(seed).permutation(len(x_tr))
    n_va = max(1, int(round(ADAGE_VALID * len(x_tr))))
    inner, held = x_tr[perm[n_va:]], x_tr[perm[:n_va]]
    batches = max(1, -(-len(inner) // 32))
    base = dict(
        batch_size=32,
        device="cpu",
        progress=False,
        resume=False,
        seed=seed,
        # tiny epochs (1-2 batches on the bladder arrays): checkpoints every 5 epochs
        checkpoint_every=5 if batches < 5 else 1,
    )
    tried = {}
    for spec in ADAGE_PARAMS:
        for lr in ADAGE_LRS:
            cfg = TrainConfig(max_epochs=epochs, patience=max(10, epochs // 10), lr=lr, **base)
            _, info = _fit_adage(inner, held, k, cfg, spec)
            tried[spec, lr] = (info["val_metrics"]["val_loss"], info["best_epoch"] + 1)
    spec, lr = min(tried, key=lambda v: tried[v][0])
    n_epochs = tried[spec, lr][1]
    m, _ = _fit_adage(x_tr, None, k, TrainConfig(max_epochs=n_epochs, patience=0, lr=lr, **base), spec)
    t_tr, t_te = torch.from_numpy(x_tr), torch.from_numpy(x_te)
    with torch.no_grad():
        a_tr, a_te = m.encode(t_tr).numpy(), m.encode(t_te).numpy()
    ADAGE_CHOICES.append(
        {
            "n_train": len(x_tr),
            "parametrization": spec,
            "lr": lr,
            "epochs": n_epochs,
            "saturated (train)": round(float(((a_tr < 0.01) | (a_tr > 0.99)).mean()), 3),
            **{f"val_loss {s} lr={v:g}": round(t[0], 1) for (s, v), t in tried.items()},
        }
    )
    return a_tr, a_te, m.gene_weights().numpy()


def zero_one(x_tr: np.ndarray, x_te: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = x_tr.min(0), x_tr.max(0)
    rng = np.where(hi > lo, hi - lo, 1.0)
    return ((x_tr - lo) / rng).astype(np.float32), np.clip((x_te - lo) / rng, 0, 1).astype(np.float32)


def compare_features(
    x: np.ndarray, labels: pd.Series, k: int, epochs: int, folds: int, dataset: str, label_name: str
) -> list[dict]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.preprocessing import StandardScaler

    y = labels.astype(str).to_numpy()
    keep = pd.Series(y).map(pd.Series(y).value_counts()) >= folds
    x, y = x[keep.to_numpy()], y[keep.to_numpy()]
    acc: dict[str, list[float]] = {"ADAGE": [], "PCA": [], "ICA": [], "all genes": []}
    for f, (tr, te) in enumerate(StratifiedKFold(folds, shuffle=True, random_state=0).split(x, y)):
        a, b = zero_one(x[tr], x[te])
        feats = {}
        feats["ADAGE"] = adage_features(a, b, k, epochs, seed=f)[:2]
        for name, (mdl, _) in pca_ica(a, k, seed=f).items():
            feats[name] = (mdl.transform(a), mdl.transform(b))
        feats["all genes"] = (a, b)
        for name, (ftr, fte) in feats.items():
            sc = StandardScaler().fit(ftr)
            clf = LogisticRegression(max_iter=3000).fit(sc.transform(ftr), y[tr])
            acc[name].append(float((clf.predict(sc.transform(fte)) == y[te]).mean()))
    majority = pd.Series(y).value_counts().iloc[0] / len(y)
    row = {"dataset": dataset, "labels": f"{label_name} ({len(set(y))} classes, n={len(y)})", "k": k}
    for name, v in acc.items():
        row[name] = f"{np.mean(v):.3f} +- {np.std(v):.3f}"
    row["majority class"] = round(float(majority), 3)
    return [row]


def marker_coverage(
    x: np.ndarray, genes: list[str], marker_sets: dict[str, list[str]], k: int, epochs: int
) -> dict:
    a, _ = zero_one(x, x[:1])
    out = {}
    _, _, w = adage_features(a, a[:1], k, epochs, seed=0)
    ws = {"ADAGE": w, **{n: wt for n, (_, wt) in pca_ica(a, k).items()}}
    for name, wt in ws.items():
        enr = enrichment(
            signature_sets(signatures(torch.from_numpy(np.ascontiguousarray(wt)), genes, 2.5)),
            marker_sets,
            genes,
        )
        c = coverage(enr, marker_sets, genes)
        out[name] = f"{c['covered']}/{c['gene_sets']}"
    return out


def pbmc_and_bladder(ddir: Path, epochs: int, folds: int) -> list[dict]:
    import anndata

    rows = []
    h5 = ddir / "expression/scanpy/10x_pbmc68k_reduced.h5ad"
    pb = read_expression(h5, use_raw=True)  # log-normalised counts
    t0 = time.time()
    rows += compare_features(
        pb.values, pb.obs["bulk_labels"], 50, epochs, folds, "pbmc68k_reduced (765 genes)", "bulk_labels"
    )
    # marker gene sets: scanpy's rank_genes_groups (top 25 per cell type) stored in the file
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ad = anndata.read_h5ad(h5)
    names = ad.uns["rank_genes_groups"]["names"]
    markers = {g: [str(v) for v in names[g][:25]] for g in names.dtype.names}
    cov = marker_coverage(pb.values, pb.genes, markers, 50, epochs)
    rows[-1].update({f"marker-set coverage {k}": v for k, v in cov.items()})
    print(f"pbmc done in {time.time() - t0:.0f} s", file=sys.stderr)

    bl = read_expression(
        ddir / "expression" / BLADDER,
        orientation="genes-x-samples",
    )
    ph = pd.read_csv(ddir / "expression/debian_bladderbatch/bladderbatch_pheno.csv", index_col=0).loc[
        bl.samples
    ]
    for lab in ("outcome", "batch"):
        # 38-46 training arrays = 1-2 batches per epoch: more epochs for a comparable number of steps
        rows += compare_features(
            bl.values, ph[lab], 10, 3 * epochs, folds, "bladderbatch (22283 probes)", lab
        )
        rows[-1].update({f"marker-set coverage {k}": "n/a (no gene sets)" for k in ("ADAGE", "PCA", "ICA")})
    return rows


# ----------------------------------------------------------------------------- D-GEX
def _targets_on_the_array(bl, ddir: Path) -> list[str]:
    """The D-GEX map's targets measured on the bladder arrays (HG-U133A): 5765 of its 9520 (the
    others are probes of other platforms, or several probes joined by commas). biodl's D-GEX
    refuses a named target the data lack, so the bench names the ones it has and says so."""
    tg = read_gene_list(ddir / "expression/dgex_maps/map_tg.txt")
    have = set(bl.genes)
    kept = [g for g in tg if g in have]
    print(
        f"dgex: {len(kept)} of the map's {len(tg)} targets are on the arrays; the rest left out",
        file=sys.stderr,
    )
    return kept


def dgex_cv(ddir: Path, epochs: int, folds: int, hidden: int, layers: int) -> tuple[list[dict], dict]:
    from sklearn.model_selection import KFold

    bl = read_expression(
        ddir / "expression" / BLADDER,
        orientation="genes-x-samples",
    )
    lm = read_gene_list(ddir / "expression/dgex_maps/map_lm.txt")
    x, y, lm, tg = split_landmarks(bl, lm, _targets_on_the_array(bl, ddir))
    preds = {k: np.zeros_like(y) for k in ("LR", "ridge", "KNN-GE", "D-GEX")}
    chosen = {"ridge alpha": [], "knn k": []}
    torch.set_num_threads(2)
    for f, (tr, te) in enumerate(KFold(folds, shuffle=True, random_state=0).split(x)):
        preds["LR"][te] = LinearBaseline().fit(x[tr], y[tr]).predict(x[te])
        a = choose_ridge_alpha(x[tr], y[tr])
        preds["ridge"][te] = LinearBaseline(a).fit(x[tr], y[tr]).predict(x[te])
        k = choose_knn_k(x[tr], y[tr])
        preds["KNN-GE"][te] = KNNBaseline(k).fit(x[tr], y[tr]).predict(x[te])
        chosen["ridge alpha"].append(a)
        chosen["knn k"].append(k)
        cfg = TrainConfig(
            max_epochs=epochs,
            patience=15,
            batch_size=64,
            lr=3e-4,
            weight_decay=0.0,
            device="cpu",
            progress=False,
            resume=False,
            seed=f,
        )
        model, _ = train_dgex(
            x[tr], y[tr], cfg, dict(hidden=hidden, layers=layers, dropout=0.1), valid_fraction=0.12
        )
        preds["D-GEX"][te] = dgex_predict(model, x[te])
        print(f"dgex fold {f + 1}/{folds} done", file=sys.stderr)
    per = {k: mae_per_target(v, y) for k, v in preds.items()}
    rows = []
    for k, v in per.items():
        rows.append(
            {
                "method": k if k != "D-GEX" else f"D-GEX-10%-{hidden}x{layers}",
                "MAE (log2, mean over targets)": round(float(v.mean()), 4),
                "D-GEX better on % of targets": round(100 * float((per["D-GEX"] < v).mean()), 2)
                if k != "D-GEX"
                else "",
            }
        )
    rows.append(
        {
            "method": "target mean over all arrays (in-sample)",
            "MAE (log2, mean over targets)": round(float(np.abs(y - y.mean(0)).mean()), 4),
            "D-GEX better on % of targets": "",
        }
    )
    info = {
        "n": len(x),
        "landmarks": len(lm),
        "targets": len(tg),
        **{k: sorted(set(v)) for k, v in chosen.items()},
    }
    return rows, info


def dgex_wide_cost(ddir: Path, steps: int) -> dict:
    """Memory and time of training the paper's widest D-GEX (3 x 9000, 10 % dropout) on CPU."""
    from biodl.models.dgex import DGEX

    torch.set_num_threads(2)
    bl = read_expression(
        ddir / "expression" / BLADDER,
        orientation="genes-x-samples",
    )
    x, y, lm, tg = split_landmarks(
        bl, read_gene_list(ddir / "expression/dgex_maps/map_lm.txt"), _targets_on_the_array(bl, ddir)
    )
    rss0 = rss_gib()
    out = {}
    for n_targets, label in ((y.shape[1], "bladder targets"), (9520, "paper size (9520 targets)")):
        torch.manual_seed(0)
        m = DGEX(943, n_targets, hidden=9000, layers=3, dropout=0.1)
        opt = torch.optim.SGD(m.parameters(), lr=5e-4, momentum=0.9)
        xb = torch.from_numpy(x)
        xb = xb.repeat(4, 1)[:200]  # the paper's batch size, 200 (real arrays, repeated)
        yb = torch.from_numpy(np.resize(y, (200, n_targets)).astype(np.float32))
        t0 = time.perf_counter()
        for _ in range(steps):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(m(xb), yb)
            loss.backward()
            opt.step()
        dt = (time.perf_counter() - t0) / steps
        n_par = sum(p.numel() for p in m.parameters())
        out[label] = {
            "parameters (M)": round(n_par / 1e6, 1),
            "s / step (batch 200, 2 threads)": round(dt, 2),
            "peak RSS (GiB)": round(rss_gib(), 2),
        }
        del m, opt
    out["rss before (GiB)"] = round(rss0, 2)
    return out


def main() -> None:
    global ADAGE_LRS, ADAGE_PARAMS
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    ap.add_argument("--quick", action="store_true", help="fewer epochs and folds")
    ap.add_argument("--only", default="all", help="comma-separated: published,features,dgex,wide")
    ap.add_argument("--dgex-epochs", type=positive_int, default=None, help="maximum D-GEX epochs per fold")
    ap.add_argument("--folds", type=int_at_least(2), default=None, help="cross-validation folds")
    ap.add_argument(
        "--epochs",
        type=positive_int,
        default=None,
        help="maximum ADAGE epochs (pbmc; x3 for the bladder arrays)",
    )
    ap.add_argument(
        "--adage-lrs",
        type=float_list(0),
        default="1e-3,1e-2",
        help="ADAGE Adam learning rates to choose from (on held-out training samples)",
    )
    ap.add_argument(
        "--adage-params",
        default=",".join(ADAGE_PARAMS),
        help="ADAGE parametrizations to choose from (on held-out training samples): adage (published) "
        "and/or fan-in:G (inputs centred, scaled by G / sqrt(genes))",
    )
    args = ap.parse_args()
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = sorted(only - {"all", *NEEDS})
    if unknown or not only:
        ap.error(
            f"--only takes {', '.join(NEEDS)} or all (comma-separated), not {', '.join(unknown) or '(empty)'}"
        )
    run = lambda k: "all" in only or k in only  # noqa: E731
    ddir = require_data(
        "bench/expression.py",
        args.data_dir,
        [f"expression/{f}" for part in NEEDS if run(part) for f in NEEDS[part]],
        "bench/DATA.md (Expression)",
        "the project's data folder, ../shared/data",
    )
    epochs = args.epochs or (200 if args.quick else 500)
    ADAGE_LRS = tuple(float(v) for v in args.adage_lrs.split(","))
    ADAGE_PARAMS = tuple(args.adage_params.split(","))
    for spec in ADAGE_PARAMS:
        try:
            _param_kwargs(spec)  # fail early on a typo
        except ValueError as e:
            ap.error(f"--adage-params: {e}")
    folds = args.folds or (3 if args.quick else 5)
    torch.set_num_threads(2)
    if run("published"):
        table(published_anr(ddir), "Published ADAGE50 on the Anr test sets (raw activity, global scaling)")
        table(
            published_coverage(ddir, 5 if args.quick else 20),
            "Published ADAGE50 signature coverage (2.5 sd, BH FDR 0.05)",
        )
    if run("features"):
        torch.set_num_threads(1)
        table(
            pbmc_and_bladder(ddir, epochs, folds),
            f"ADAGE vs PCA vs ICA ({folds}-fold CV accuracy, logistic regression)",
        )
        table(ADAGE_CHOICES, "ADAGE settings chosen on held-out training samples (per fit)")
        torch.set_num_threads(2)
    if run("dgex"):
        rows, info = dgex_cv(ddir, args.dgex_epochs or (100 if args.quick else 300), folds, 3000, 1)
        table(rows, f"D-GEX vs baselines on bladderbatch ({folds}-fold CV; {info})")
    if run("wide"):
        cost = dgex_wide_cost(ddir, 2 if args.quick else 3)
        table(
            [{"setting": k, **v} for k, v in cost.items() if isinstance(v, dict)],
            "Wide D-GEX 3x9000 training cost on CPU (2 threads)",
        )
        print(f"peak RSS of the whole bench process: {rss_gib():.2f} GiB")


if __name__ == "__main__":
    guarded(main)
