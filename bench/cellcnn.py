"""CellCnn on real mass cytometry (Bodenmiller et al. 2012, PBMC, BCR-XL vs reference).

Prints
1. leave-one-patient-out held-out performance (CellCnn ensemble vs the cluster-median +
   logistic-regression baseline), per patient and pooled;
2. the marker profile of the cells selected in the held-out BCR-XL samples by each fold's
   best filter (the ensemble's filters, or the paper's consensus filters clustered over all
   restarts; chosen on the training patients only), and how many of them are B cells;
3. the rare-subset spike-in table: BCR-XL B cells of a patient spiked into that patient's
   reference cells at 1 %, 0.1 %, 0.01 %; per multi-cell input scheme (uniform, or
   outlier-biased as the reference's ``subset_selection="outlier"``) the held-out AUC, the
   spiked cells' rank among the cells (cell AUC, recall among the top-ranked cells), and the
   baseline's AUC beside it.

Usage (see bench/README_cellcnn.md for the runs and their output):

    nice -n 10 python bench/cellcnn.py --skip-spike --markers signalling \
        --filter-selection consensus --nrun 15 --ncell 200 --nsubset 1000   # parts 1-2 as published
    nice -n 10 python bench/cellcnn.py --skip-lopo --spike-patients 1,2,3,4 --spike-nsubset 1000 \
        --spike-batch 50 --spike-sampling random,outlier+controls           # part 3
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _rows import float_list, nonneg_float, positive_int  # noqa: E402

from biodl.kinds.cells.experiments import gate, leave_one_group_out, make_spike_in, summarize
from biodl.kinds.cells.interpret import marker_profile
from biodl.kinds.cells.io import load_samples
from biodl.kinds.cells.restarts import CellCnnConfig, encode_labels

B_CELL_GATE = {
    "CD20": (">", 2.0),
    "CD3": ("<", 2.0),
    "CD33": ("<", 2.0),
    "CD14": ("<", 2.0),
    "HLA-DR": (">", 2.5),
}
RESPONDING = ("pS6", "pPlcg2", "pBtk", "pErk")
SURFACE = ("CD3", "CD45", "CD4", "CD20", "CD33", "CD123", "CD14", "IgM", "HLA-DR", "CD7")


def quiet() -> None:
    """No warnings and no Lightning banners in the bench's output."""
    warnings.filterwarnings("ignore")
    for n in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(n).setLevel(logging.ERROR)


def bodenmiller(data_dir: Path, **load_kw):
    """The Bodenmiller 2012 PBMC samples (arcsinh cofactor 5; ``load_kw`` to :func:`load_samples`),
    their labels (Ref 0, BCRXL 1) and classes; ``None`` after saying what is missing."""
    table = data_dir / "cellcnn" / "bodenmiller2012_pbmc8_bcrxl_fcs" / "sample_table_bodenmiller_2012.csv"
    if not table.exists():
        print(
            f"error: missing data: {table}. Where the data come from: bench/DATA.md (Cells, features, ...)",
            file=sys.stderr,
        )
        return None
    ss = load_samples(table, cofactor=5.0, **load_kw)
    y, classes, _ = encode_labels(ss.labels, ["Ref", "BCRXL"])
    return ss, y, classes


def _panel(ss, spec: str):
    """The training panel: ``all``, ``signalling`` (the 14 intracellular markers, as the paper's
    PBMC analysis: surface markers only to read the selected cells) or a comma list."""
    from biodl.kinds.cells.io import SampleSet

    if spec == "all":
        return ss
    names = [m for m in ss.markers if m not in SURFACE] if spec == "signalling" else spec.split(",")
    missing = [m for m in names if m not in ss.markers]
    if missing:
        raise SystemExit(f"unknown markers: {', '.join(missing)} (panel: {', '.join(ss.markers)})")
    cols = [ss.markers.index(m) for m in names]
    return SampleSet([c[:, cols] for c in ss.cells], names, ss.ids, ss.labels, ss.groups)


def _lopo(ss, y, cfg, args) -> None:
    pats = None if args.patients == "all" else args.patients.split(",")
    tr = _panel(ss, args.markers)
    print(
        f"# parts 1-2: trained on {len(tr.markers)} markers ({args.markers}); "
        f"filters: {args.filter_selection}; selected cells profiled on all {len(ss.markers)} markers"
    )
    res = leave_one_group_out(
        tr,
        y,
        cfg,
        seed=args.seed,
        groups=pats,
        filter_selection=args.filter_selection,
        profile_cells=ss.cells,
        log=lambda m: print(f"  {m}", file=sys.stderr, flush=True),
    )
    pred = res["predictions"]
    print("\n## 1. Leave-one-patient-out (held-out patient's 2 samples; p = P(BCR-XL))")
    rows = []
    for g, d in pred.groupby("group", sort=False):
        r = {"patient": g}
        for name in ("cellcnn", "baseline"):
            ps = d.set_index("label")[f"p_{name}"]
            r[f"{name}: p(BCRXL sample)"] = ps.get("BCRXL", np.nan)
            r[f"{name}: p(Ref sample)"] = ps.get("Ref", np.nan)
            acc = float(((d[f"p_{name}"] > 0.5) == (d["target"] == 1)).mean())
            r[f"{name}: acc"] = acc
            r[f"{name}: AUC"] = float(ps.get("BCRXL", np.nan) > ps.get("Ref", np.nan))
        rows.append(r)
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    s = summarize(pred)
    print("pooled over held-out samples: " + ", ".join(f"{k}={v:.3f}" for k, v in s.items()))
    print("\n## 2. Cells selected in the held-out BCR-XL samples by each fold's best filter")
    print(res["filters"].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    all_cells = np.concatenate(ss.cells)
    b_all = gate(all_cells, ss.markers, B_CELL_GATE).mean()
    held = (
        pred[pred["target"] == 1]["percent_selected"].mean(),
        pred[pred["target"] == 0]["percent_selected"].mean(),
    )
    print(
        f"best filter: mean % of held-out cells selected: BCR-XL samples {held[0]:.2f}%, "
        f"Ref samples {held[1]:.2f}%"
    )
    for k, sel in res["selected"].items():
        prof = marker_profile(sel, all_cells, ss.markers)
        b_sel = gate(sel, ss.markers, B_CELL_GATE).mean() if len(sel) else float("nan")
        print(
            f"\n### filter rank {k} (per fold, ranked on the training patients): {len(sel):,} "
            "selected cells in "
            f"held-out BCR-XL samples; B cells {100 * b_sel:.1f}% of them vs {100 * b_all:.1f}% of all cells"
        )
        print(prof.T.to_string(header=False, float_format=lambda v: f"{v:.2f}"))
        top = list(prof["marker"].head(10))
        print(
            "responding markers among the 10 most increased: "
            + ", ".join(f"{m}: {'yes' if m in top else 'no'}" for m in RESPONDING)
        )
    print(f"B-cell gate: {B_CELL_GATE} (arcsinh units)")
    print(
        "\n### B cells among the cells a ranking puts first in each held-out BCR-XL sample (pooled over "
        "samples; the ceiling: cell classifiers trained on the B-cell gate labels of the other patients' "
        f"BCR-XL cells, on the same {len(tr.markers)} training markers, which CellCnn never sees)"
    )
    print(_subset_ceiling(ss, tr, res).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"# part 1-2 time: {(time.time() - args.t0) / 60:.1f} min")


def _subset_ceiling(ss, tr, res, fracs=(0.005, 0.02, 0.05)) -> pd.DataFrame:
    """B-cell purity of the top ``fracs`` of each held-out BCR-XL sample's cells, ranked by the
    rank-1 and rank-2 filters, by pS6 alone, and by a supervised ceiling (logistic regression and
    gradient boosting trained on the B-cell gate labels of the other patients' BCR-XL cells over
    the training panel): how B-cell pure can a ranking of cells by these markers be?"""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    idx = {str(v): i for i, v in enumerate(ss.ids)}
    held = [idx[s] for s in res["responses"]]
    is_b = [gate(ss.cells[i], ss.markers, B_CELL_GATE) for i in range(len(ss.cells))]
    scores: dict[str, list[np.ndarray]] = {}
    for s, i in zip(res["responses"], held, strict=True):
        R = res["responses"][s]
        for k in range(R.shape[1]):
            scores.setdefault(f"CellCnn rank-{k + 1} filter", []).append(R[:, k])
        if "pS6" in tr.markers:
            scores.setdefault("pS6 alone", []).append(tr.cells[i][:, tr.markers.index("pS6")])
        train = [
            j for j in range(len(ss.cells)) if ss.groups[j] != ss.groups[i] and ss.labels[j] == ss.labels[i]
        ]
        x = np.concatenate([tr.cells[j] for j in train])
        yb = np.concatenate([is_b[j] for j in train]).astype(int)
        for name, clf in (
            (
                "ceiling: logistic regression (B-cell labels)",
                make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
            ),
            ("ceiling: gradient boosting (B-cell labels)", HistGradientBoostingClassifier(random_state=0)),
        ):
            scores.setdefault(name, []).append(clf.fit(x, yb).predict_proba(tr.cells[i])[:, 1])
    rows = []
    for name, per in scores.items():
        r = {"ranking": name}
        for q in fracs:
            hits = tot = 0
            for sc, i in zip(per, held, strict=True):
                top = np.argsort(-sc, kind="stable")[: max(1, int(round(q * len(sc))))]
                hits += int(is_b[i][top].sum())
                tot += len(top)
            r[f"B cells in top {100 * q:g}%"] = hits / tot
        rows.append(r)
    base = np.concatenate([is_b[i] for i in held]).mean()
    rows.append(
        {"ranking": "all cells (no ranking)", **{f"B cells in top {100 * q:g}%": base for q in fracs}}
    )
    return pd.DataFrame(rows)


def _oracle(sp, ref, donors, patients) -> list[dict]:
    """Supervised ceiling of part 3: classifiers trained on *cell* labels (the training
    patients' reference cells vs their donor cells), which CellCnn never sees, score the held-out
    samples' cells; a sample's score is the mean of its top-n cell scores (n = spiked cells)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    models = {
        "linear (logistic regression)": lambda: make_pipeline(
            StandardScaler(), LogisticRegression(max_iter=2000, class_weight="balanced")
        ),
        "nonlinear (gradient boosting)": lambda: HistGradientBoostingClassifier(
            max_iter=300, class_weight="balanced", random_state=0
        ),
    }
    n_sp = int(max(m.sum() for m in sp.spiked))
    rows = []
    for name, make in models.items():
        ys, scores, cauc, rec, rec10 = [], [], [], [], []
        for g in patients:
            tr = [h for h in ref if h != g]
            x = np.concatenate([ref[h] for h in tr] + [donors[h] for h in tr])
            y = np.r_[np.zeros(sum(len(ref[h]) for h in tr)), np.ones(sum(len(donors[h]) for h in tr))]
            clf = make().fit(x, y)
            for i, h in enumerate(sp.samples.groups):
                if h != g:
                    continue
                s = clf.decision_function(sp.samples.cells[i])
                ys.append(sp.targets[i])
                scores.append(np.sort(s)[::-1][:n_sp].mean())
                if sp.targets[i] == 1:
                    m, order = sp.spiked[i], np.argsort(-s, kind="stable")
                    cauc.append(roc_auc_score(m, s))
                    rec.append(m[order[:n_sp]].mean())
                    rec10.append(m[order[: 10 * n_sp]].sum() / n_sp)
        rows.append(
            {
                "cell classifier": name,
                "sample AUC (top-n mean)": roc_auc_score(ys, scores),
                "cell AUC": np.mean(cauc),
                "recall@top-n": np.mean(rec),
                "recall@top-10n": np.mean(rec10),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--patients", default="all", help="patients held out (comma-separated) or all")
    ap.add_argument("--max-cells", type=int, default=0, help="cells kept per sample on reading (0 = all)")
    ap.add_argument("--ncell", type=int, default=500)
    ap.add_argument("--nsubset", type=int, default=500)
    ap.add_argument("--nrun", type=int, default=5)
    ap.add_argument("--epochs", type=positive_int, default=10)
    ap.add_argument("--patience", type=int, default=3)
    ap.add_argument(
        "--markers",
        default="all",
        help="training panel of parts 1-2: all, signalling (paper) or a comma list",
    )
    ap.add_argument("--filter-selection", default="ensemble", choices=("ensemble", "consensus"))
    ap.add_argument(
        "--hidden",
        type=int,
        default=0,
        help="parts 1-2: units of a per-cell hidden layer before the filters (0: the published network; "
        "its networks have no consensus filters, so the ensemble's filters are ranked)",
    )
    ap.add_argument(
        "--spike-sampling",
        default="random,outlier",
        help="multi-cell inputs of part 3, comma-separated (none: no CellCnn row): random, outlier "
        "(as the reference: control inputs uniform), outlier+controls (control inputs biased too)",
    )
    ap.add_argument("--outlier-keep", type=float, default=0.1)
    ap.add_argument("--outlier-fraction", type=float, default=0.5)
    ap.add_argument(
        "--spike-pool",
        type=lambda t: float_list(0)(t) if t.strip() else t,
        default="",
        help="pooling percentages of part 3 (default: the recipe's)",
    )
    ap.add_argument("--skip-spike", action="store_true")
    ap.add_argument(
        "--spike-oracle",
        action="store_true",
        help="part 3: also the supervised ceiling (cell classifiers trained on the spiked cells' labels)",
    )
    ap.add_argument("--skip-lopo", action="store_true", help="only the spike-in part")
    ap.add_argument("--spike-freqs", type=float_list(0), default="0.01,0.001,0.0001")
    ap.add_argument(
        "--spike-train-freq",
        type=nonneg_float,
        default=0.0,
        help="part 3: train on samples spiked at this frequency and test on held-out samples at each of "
        "--spike-freqs (is a subset learned where it is seen detected in new samples where it is rarer?); "
        "default: train at the test frequency",
    )
    ap.add_argument("--spike-cells", type=positive_int, default=20000, help="cells per spike-in sample")
    ap.add_argument(
        "--spike-ncell", type=positive_int, default=1000, help="cells per multi-cell input (spike-in)"
    )
    ap.add_argument("--spike-nrun", type=positive_int, default=3)
    ap.add_argument(
        "--spike-hidden",
        type=int,
        default=0,
        help="part 3: units of a per-cell hidden layer before the filters (0: the published network)",
    )
    ap.add_argument(
        "--spike-nsubset", type=int, default=0, help="multi-cell inputs per class (default --nsubset)"
    )
    ap.add_argument(
        "--spike-batch", type=positive_int, default=200, help="batch size of part 3 (reference: 200)"
    )
    ap.add_argument("--spike-patients", default="all")
    ap.add_argument(
        "--spike-train-background",
        default="disjoint",
        choices=("disjoint", "shared"),
        help="spike-in samples the networks are trained on: disjoint (a patient's plain and spiked "
        "samples from disjoint halves of its reference cells, as the test samples) or shared (the "
        "same background in both, so the spiked cells are the only difference); held-out samples "
        "are always disjoint",
    )
    ap.add_argument(
        "--work",
        type=Path,
        default=None,
        help="keep the part-3 restarts here (per frequency, inputs and fold; a rerun with the same samples "
        "and options resumes them, with others it stops with an error); default: a temporary directory",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=positive_int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    quiet()
    t0 = args.t0 = time.time()
    data = bodenmiller(args.data_dir, max_cells=args.max_cells or None, seed=args.seed)
    if data is None:
        return 1
    ss, y, classes = data
    print(
        f"# Bodenmiller 2012 PBMC: {len(ss)} samples, {sum(map(len, ss.cells)):,} cells, "
        f"{len(ss.markers)} markers, arcsinh cofactor 5; classes {classes}"
    )
    print(f"# markers: {', '.join(ss.markers)}")
    cfg = CellCnnConfig(
        ncell=args.ncell,
        nsubset=args.nsubset,
        nrun=args.nrun,
        max_epochs=args.epochs,
        patience=args.patience,
        hidden=args.hidden,
    )
    print(
        f"# CellCnn: ncell={cfg.ncell} nsubset={cfg.nsubset}/class nrun={cfg.nrun} (best {cfg.n_best} "
        f"ensembled) epochs<={cfg.max_epochs} patience={cfg.patience} l2={cfg.l2} hidden={cfg.hidden}; "
        "baseline: KMeans(10) per-cluster marker medians -> logistic regression"
    )
    if not args.skip_lopo:
        _lopo(ss, y, cfg, args)
    if args.skip_spike:
        return 0

    print("\n## 3. Spike-in: BCR-XL B cells of a patient spiked into that patient's reference cells")
    ref = {g: c for g, c, lab in zip(ss.groups, ss.cells, ss.labels, strict=True) if lab == "Ref"}
    donors = {
        g: c[gate(c, ss.markers, B_CELL_GATE)]
        for g, c, lab in zip(ss.groups, ss.cells, ss.labels, strict=True)
        if lab == "BCRXL"
    }
    print(
        "donor (gated BCR-XL B) cells per patient: " + ", ".join(f"{g}: {len(d)}" for g, d in donors.items())
    )
    print(
        f"each patient: one plain and one spiked sample of {args.spike_cells:,} cells "
        "(disjoint halves of its "
        f"reference cells, resampled with replacement); CellCnn ncell={args.spike_ncell} "
        f"nsubset={args.spike_nsubset or args.nsubset}/class nrun={args.spike_nrun} "
        f"hidden={args.spike_hidden} "
        f"batch {args.spike_batch}; inputs {args.spike_sampling} (outlier: "
        f"{args.outlier_fraction:g} of each input from the {args.outlier_keep:g} most outlying cells); "
        f"training samples: {args.spike_train_background} backgrounds, held-out samples: disjoint"
    )
    spats = None if args.spike_patients == "all" else args.spike_patients.split(",")
    samplings = [s for s in args.spike_sampling.split(",") if s and s != "none"]
    table_rows = []
    for f in [float(x) for x in args.spike_freqs.split(",")]:
        sp = make_spike_in(ref, donors, ss.markers, f, n_cells=args.spike_cells, seed=args.seed)
        if args.spike_oracle:
            held = spats or sorted(ref, key=lambda g: (len(g), g))
            orc = pd.DataFrame(_oracle(sp, ref, donors, held))
            print(f"\n### supervised ceiling at {100 * f:g}% (held out: {', '.join(held)})")
            print(orc.to_string(index=False, float_format=lambda v: f"{v:.3f}"), flush=True)
        f_train = args.spike_train_freq or f
        sp_train = sp
        if args.spike_train_background == "shared" or f_train != f:
            sp_train = make_spike_in(
                ref,
                donors,
                ss.markers,
                f_train,
                n_cells=args.spike_cells,
                seed=args.seed,
                background=args.spike_train_background,
            )
        base = None
        for si, sampling in enumerate(samplings):
            t1 = time.time()
            scfg = CellCnnConfig(
                ncell=args.spike_ncell,
                nsubset=args.spike_nsubset or args.nsubset,
                nrun=args.spike_nrun,
                batch_size=args.spike_batch,
                max_epochs=args.epochs,
                patience=args.patience,
                sampling=sampling.split("+")[0],
                outlier_controls=sampling == "outlier+controls",
                outlier_keep=args.outlier_keep,
                outlier_fraction=args.outlier_fraction,
                hidden=args.spike_hidden,
            )
            if args.spike_pool:
                scfg.pool_percents = tuple(float(x) for x in args.spike_pool.split(","))
            r = leave_one_group_out(
                sp_train.samples,
                sp_train.targets,
                scfg,
                seed=args.seed,
                groups=spats,
                spiked=sp.spiked,
                test_cells=sp.samples.cells,
                work_dir=None
                if args.work is None
                # named by the training samples: a test at another frequency reuses the restarts
                else args.work
                / f"spike_{f_train:g}_{sampling}_{args.spike_train_background}_h{args.spike_hidden}",
                baseline=si == 0,
                filter_selection=args.filter_selection,
                log=lambda m, f=f, s=sampling: print(f"  [{f:g} {s}] {m}", file=sys.stderr, flush=True),
            )
            p = r["predictions"]
            sm = summarize(p)
            if si == 0:
                base = (sm.get("baseline_auc"), sm.get("baseline_accuracy"))
            pos = p[p["target"] == 1]
            table_rows.append(
                {
                    "frequency": f"{100 * f:g}%",
                    "trained at": f"{100 * f_train:g}%",
                    "spiked cells/sample": int(pos["n_spiked"].iloc[0]),
                    "inputs": sampling,
                    "training samples": args.spike_train_background,
                    "CellCnn AUC": sm.get("cellcnn_auc"),
                    "CellCnn acc": sm.get("cellcnn_accuracy"),
                    "cell AUC": pos["cell_auc"].mean(),
                    "recall@top-n": pos["recall_top_n"].mean(),
                    "recall@top-10n": pos["recall_top_10n"].mean(),
                    "recall(selected)": pos["recall_selected"].mean(),
                    "baseline AUC": base[0],
                    "baseline acc": base[1],
                    "min": (time.time() - t1) / 60,
                }
            )
            print(
                pd.DataFrame(table_rows[-1:]).to_string(index=False, float_format=lambda v: f"{v:.3f}"),
                flush=True,
            )
    print(
        "\nspike-in summary (held-out, leave-one-patient-out; n = spiked cells per sample; cell AUC = "
        "best filter's response, spiked vs other cells of the held-out spiked samples)"
    )
    print(pd.DataFrame(table_rows).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"# total time: {(time.time() - t0) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    from biodl.errors import BiodlInputError

    try:
        sys.exit(main())
    except BiodlInputError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
