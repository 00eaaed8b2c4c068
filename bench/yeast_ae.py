"""Benchmark of the yeast hierarchical autoencoder (issue 19 item 6; Chen, Cai, Chen & Lu 2016).

A stacked sparse autoencoder (recipe ``sparse-ae``, 4 hidden layers) is trained on the Eisen et
al. 1998 yeast compendium, 2,467 genes x 79 arrays: the genes are the examples, the 79 arrays
their inputs. Each layer's activities of Brown et al.'s (2000) 186 labelled genes (cytoplasmic
ribosome 121, proteasome 35, respiration 30) are classified with the same cross-validated SVM
as the raw profiles and PCA of the same sizes, and each hidden unit's response to each class
is printed (the paper's hierarchy reading).

Protocol
    Outer: stratified 5-fold CV of the 186 labelled genes (``--repeats`` times, reshuffled).
    Unsupervised models (the autoencoder, PCA, the input scaling) are fitted *per outer fold*
    on the 2,467 compendium genes minus that fold's test genes (``--ae-fit per-fold``, the
    default: the test genes' profiles are never seen before they are classified); the training
    genes' labels are never used by them. ``--ae-fit all`` fits them once on all 2,467 genes
    (transductive but unsupervised: the test genes' profiles, never their labels).
    Classifier for every feature set: standardise, then an SVM whose kernel (linear / RBF) and C
    (0.1 .. 100) are chosen by inner stratified 3-fold CV of the training genes on macro-F1.
    Reported: macro-F1 and accuracy, mean +- sd over folds x repeats.

The Eisen matrix as converted has no missing values (the R package shipped it complete); the
Brown file marks 214 of its 14,694 values "?" and scales each gene to unit length: the labelled
genes' profiles are therefore taken from the Eisen matrix (all 186 are in it), the Brown file
only gives the labels. A gene-mean (per-array) imputation is available in the recipe for
files with gaps (``--set missing=gene-mean``).

Run (from the repository root, one thread):

    nice -n 10 python bench/yeast_ae.py --data-dir ../shared/data
    nice -n 10 python bench/yeast_ae.py --quick          # 3 folds, fewer epochs
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _rows import guarded, int_at_least, int_list, nonneg_float, nonneg_int, positive_int, writable_path  # noqa: E402

DATASET = "expression/yeast_eisen1998"
EISEN = "eisen1998_yeast_2467genes_x_79arrays.csv.gz"
BROWN = "brown2000_selected_186genes.tab"


def _parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default="../shared/data", help="folder holding expression/yeast_eisen1998")
    ap.add_argument("--folds", type=int_at_least(2), default=5)
    ap.add_argument("--repeats", type=positive_int, default=1, help="outer CV repeats (reshuffled)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ae-fit", choices=("per-fold", "all"), default="per-fold")
    ap.add_argument(
        "--nodes",
        type=lambda t: int_list(1)(t.strip("()[]")) and t,
        default=None,
        help="hidden units per layer (default: the recipe's)",
    )
    ap.add_argument("--sparsity", type=nonneg_float, default=None)
    ap.add_argument("--sparsity-weight", type=nonneg_float, default=None)
    ap.add_argument("--reconstruction", choices=("mse", "bce"), default=None)
    ap.add_argument(
        "--epochs", type=positive_int, default=None, help="epochs per layer (default: the recipe's)"
    )
    ap.add_argument("--finetune", type=nonneg_int, default=0, help="fine-tuning epochs of the whole stack")
    ap.add_argument("--top", type=positive_int, default=2, help="units shown per layer and class")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument(
        "--json", type=writable_path, default=None, help="write the table and unit responses here"
    )
    return ap.parse_args()


def load(data_dir: Path):
    """Eisen profiles (genes x arrays, through the expression reader) and the Brown labels."""
    from biodl.kinds.expression.kind import read_data
    from biodl.kinds.expression.sparse_ae import read_class_labels

    d = data_dir / DATASET
    missing = [f for f in (EISEN, BROWN) if not (d / f).exists()]
    if missing:
        sys.exit(
            f"error: bench/yeast_ae.py: missing {', '.join(missing)} in {d}: the yeast compendium "
            "(Eisen et al. 1998) and Brown et al.'s labels are expected there; pass --data-dir. Where the "
            "data come from: bench/DATA.md (Expression)"
        )
    # the genes are the examples: read genes x arrays, encode the genes (rows = genes)
    m = read_data(d / EISEN, {"orientation": "genes-x-samples", "encode": "genes"})
    labels = read_class_labels(d / BROWN)
    known = set(m.samples)
    absent = [g for g in labels.index if g not in known]
    if absent:
        sys.exit(f"error: {len(absent)} labelled genes are not in {EISEN}: {absent[:5]}")
    return m, labels


def svm():
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    grid = {"svc__kernel": ["linear", "rbf"], "svc__C": [0.1, 1.0, 10.0, 100.0]}
    inner = StratifiedKFold(3, shuffle=True, random_state=0)
    return GridSearchCV(make_pipeline(StandardScaler(), SVC()), grid, cv=inner, scoring="f1_macro")


def fit_ae(x_unlab: np.ndarray, args, seed: int, out: Path):
    """The recipe's network and training (the shared engine), on the unlabelled profiles."""
    from biodl.kinds.expression.sparse_ae import fit_sparse_ae
    from biodl.registry import get_recipe
    from biodl.train import TrainConfig, seed_all

    r = get_recipe("sparse-ae")
    kw = dict(r.model_defaults)
    for k in ("nodes", "sparsity", "sparsity_weight", "reconstruction"):
        if getattr(args, k) is not None:
            kw[k] = getattr(args, k)
    epochs = args.epochs or (30 if args.quick else r.train_defaults["max_epochs"])
    cfg = TrainConfig.for_recipe(
        r.train_defaults, max_epochs=epochs, seed=seed, device="cpu", progress=False, patience=0
    )
    seed_all(seed)
    model = r.build(n_genes=x_unlab.shape[1], **kw)
    x = torch.from_numpy(np.ascontiguousarray(x_unlab, np.float32))
    model.fit_scaling(x)
    fit_sparse_ae(model, model.scale(x), None, out, cfg, optimizer="adam", finetune_epochs=args.finetune)
    return model.eval()


def features(model, x: np.ndarray) -> list[np.ndarray]:
    with torch.no_grad():
        xs = model.scale(torch.from_numpy(np.ascontiguousarray(x, np.float32)))
        return [a.numpy() for a in model.encode_all(xs)]


def main() -> None:
    args = _parse()
    torch.set_num_threads(1)
    import logging

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    from sklearn.decomposition import PCA
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.model_selection import StratifiedKFold

    from biodl.kinds.expression.sparse_ae import top_units, unit_class_response
    from biodl.registry import get_recipe

    t0 = time.time()
    m, labels = load(Path(args.data_dir))
    genes = list(m.samples)
    pos = {g: i for i, g in enumerate(genes)}
    lab_idx = np.array([pos[g] for g in labels.index])
    y = labels.to_numpy()
    x_all = m.values.astype(np.float32)
    nodes = get_recipe("sparse-ae").model_defaults["nodes"] if args.nodes is None else args.nodes
    sizes = [int(v) for v in str(nodes).strip("()[]").split(",") if v.strip()]
    args.nodes = sizes if args.nodes is not None else None
    folds = 3 if args.quick else args.folds
    print(
        f"{len(genes)} genes x {x_all.shape[1]} arrays; {len(y)} labelled "
        f"({', '.join(f'{c} {n}' for c, n in labels.value_counts().items())}); "
        f"{folds}-fold x {args.repeats}, unsupervised models fitted {args.ae_fit}, layers {sizes}"
        + (f", fine-tuned {args.finetune} epochs" if args.finetune else ""),
        flush=True,
    )

    scores: dict[str, list[tuple[float, float]]] = {}
    oof: dict[str, dict[int, np.ndarray]] = {}

    def record(name: str, f_tr, f_te, tr, te, rep):
        clf = svm().fit(f_tr, y[tr])
        p = clf.predict(f_te)
        scores.setdefault(name, []).append((f1_score(y[te], p, average="macro"), accuracy_score(y[te], p)))
        oof.setdefault(name, {}).setdefault(rep, np.empty(len(y), dtype=object))[te] = p

    shared = None
    with tempfile.TemporaryDirectory() as tmp:
        if args.ae_fit == "all":
            shared = fit_ae(x_all, args, args.seed, Path(tmp) / "all")
        for rep in range(args.repeats):
            skf = StratifiedKFold(folds, shuffle=True, random_state=args.seed + rep)
            for k, (tr, te) in enumerate(skf.split(np.zeros(len(y)), y)):
                unlab = (
                    np.setdiff1d(np.arange(len(genes)), lab_idx[te]) if args.ae_fit == "per-fold" else None
                )
                x_lab = x_all[lab_idx]
                record("SVM, raw profiles", x_lab[tr], x_lab[te], tr, te, rep)
                unit = x_lab / np.linalg.norm(x_lab, axis=1, keepdims=True)
                record("SVM, unit-length profiles (Brown 2000)", unit[tr], unit[te], tr, te, rep)
                ref = x_all if unlab is None else x_all[unlab]
                for n in sizes:
                    pca = PCA(n, random_state=0).fit(ref)
                    f = pca.transform(x_lab)
                    record(f"PCA {n} + SVM", f[tr], f[te], tr, te, rep)
                model = shared or fit_ae(ref, args, args.seed + 100 * rep + k, Path(tmp) / f"r{rep}f{k}")
                acts = features(model, x_lab)
                for i, a in enumerate(acts):
                    record(f"AE layer {i + 1} ({a.shape[1]} units) + SVM", a[tr], a[te], tr, te, rep)
                cat = np.concatenate(acts, 1)
                record(f"AE layers 1-{len(acts)} ({cat.shape[1]} units) + SVM", cat[tr], cat[te], tr, te, rep)
                print(f"  repeat {rep + 1} fold {k + 1}/{folds} done ({time.time() - t0:.0f} s)", flush=True)

        # the hierarchy: one autoencoder on all 2,467 unlabelled profiles (labels only read it)
        model = shared or fit_ae(x_all, args, args.seed, Path(tmp) / "hierarchy")

    rows = []
    for name, v in scores.items():
        a = np.array(v)
        per_class = {}
        for c in sorted(set(y)):
            per_class[c] = float(
                np.mean(
                    [f1_score(y == c, p == c) for p in oof[name].values() if not any(q is None for q in p)]
                )
            )
        rows.append(
            {
                "features": name,
                "macro_f1": float(a[:, 0].mean()),
                "macro_f1_sd": float(a[:, 0].std(ddof=1)) if len(a) > 1 else 0.0,
                "accuracy": float(a[:, 1].mean()),
                "accuracy_sd": float(a[:, 1].std(ddof=1)) if len(a) > 1 else 0.0,
                **{f"f1_{c}": per_class[c] for c in per_class},
            }
        )
    table = pd.DataFrame(rows)
    classes = sorted(set(y))
    print("\n| features | macro-F1 | accuracy | " + " | ".join(f"F1 {c}" for c in classes) + " |")
    print("|---|---|---|" + "---|" * len(classes))
    for r in rows:
        print(
            f"| {r['features']} | {r['macro_f1']:.3f} +- {r['macro_f1_sd']:.3f} | "
            f"{r['accuracy']:.3f} +- {r['accuracy_sd']:.3f} | "
            + " | ".join(f"{r[f'f1_{c}']:.3f}" for c in classes)
            + " |"
        )
    raw = table.loc[table.features == "SVM, raw profiles", "macro_f1"].iloc[0]
    ae = table[table.features.str.startswith("AE")]
    best = ae.loc[ae.macro_f1.idxmax()]
    verdict = "met" if best.macro_f1 >= raw else "not met"
    print(
        f"\ngoal (macro-F1 of an AE layer >= the raw-profile SVM's): best {best.features} "
        f"{best.macro_f1:.3f} vs raw SVM {raw:.3f}: {verdict}"
    )

    wrong = {}
    for name in ("SVM, raw profiles", best.features):
        miss = {}
        for p in oof[name].values():
            for i in np.flatnonzero(p != y):
                key = f"{labels.index[i]} ({y[i]} -> {p[i]})"
                miss[key] = miss.get(key, 0) + 1
        wrong[name] = miss
        print(
            f"misclassified by {name} (times over {args.repeats} repeat(s)): "
            + (", ".join(f"{k} x{v}" for k, v in sorted(miss.items())) or "none")
        )

    from biodl.kinds.expression.sparse_ae import layer_activities, unit_parents

    acts = layer_activities(model, x_all[lab_idx], list(labels.index))
    resp = unit_class_response(acts, y)
    top = top_units(resp, args.top)
    print("\nHidden units responding most to each class (autoencoder fitted on all 2,467 genes; AUROC of the")
    print("unit's activation for the class against the other labelled genes; on = higher in the class):\n")
    print("| layer | class | unit | AUROC | mean in class | mean elsewhere | direction |")
    print("|---|---|---|---|---|---|---|")
    for _, r in top.iterrows():
        print(
            f"| {r['layer']} | {r['class']} | {r['unit']} | {r['auroc']:.3f} | {r['mean_in']:.3f} | "
            f"{r['mean_out']:.3f} | {r['direction']} |"
        )
    print(
        "\nUnits per layer with AUROC >= 0.9 (on) or <= 0.1 (off) for a class, and how many of them respond"
    )
    print("so to more than one class:\n")
    print("| layer | units | " + " | ".join(classes) + " | more than one class |")
    print("|---|---|" + "---|" * (len(classes) + 1))
    strong = resp.assign(s=(resp.auroc - 0.5).abs() >= 0.4)
    for layer, g in strong.groupby("layer"):
        n_units = g.unit.nunique()
        per = [int(g[(g["class"] == c) & g.s].shape[0]) for c in classes]
        multi = int((g[g.s].groupby("unit").size() > 1).sum())
        print(f"| {layer} | {n_units} | " + " | ".join(str(v) for v in per) + f" | {multi} |")
    print("\nThe chain of the strongest unit per class, top layer down (the 2 units below with the largest")
    print("encoder weight into it, and their own AUROC for the class):\n")
    for c in classes:
        chain = []
        last = len(sizes)
        cur = top[(top["class"] == c) & (top.layer == last)].iloc[0]["unit"]
        for _layer in range(last, 1, -1):
            parents = unit_parents(model, cur, 2)
            auc = {u: float(resp[(resp.unit == u) & (resp["class"] == c)].auroc.iloc[0]) for u, _ in parents}
            chain.append(
                f"{cur} <- " + ", ".join(f"{u} (w {w:+.2f}, AUROC {auc[u]:.2f})" for u, w in parents)
            )
            cur = parents[0][0]
        print(f"- {c}: " + "; ".join(chain))
    print(f"\n{time.time() - t0:.0f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "table": rows,
                    "top_units": top.to_dict("records"),
                    "args": vars(args) | {"json": str(args.json)},
                },
                indent=1,
                default=str,
            )
        )


if __name__ == "__main__":
    guarded(main)
