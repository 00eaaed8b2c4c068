"""CpG methylation from neighbouring CpGs: DeepCpG's CpG module and Wang et al.'s stacked
autoencoder beside a random forest and the window mean, on DeepCpG's test data (mouse chr18 and
chr19: two bulk-like profiles of ~1M CpGs, two single cells of 10,000 calls).

Protocol: train on one chromosome, test on the other (both directions); validation is a seeded
10% of the training chromosome's sites. Every site is predicted from the k=25 nearest observed
CpGs on each side in every input profile, the site itself left out everywhere, plus CGI /
exon overlap and distance. Tasks:

* ``bulk``: each bulk profile alone (``BS9N_2I``, ``BS9N_SER``), and both jointly (the CpG
  module's GRU across profiles); binarised at 0.5: AUC, accuracy, MCC.
* ``level``: each bulk profile's level as a regression target (Pearson r, RMSE; models
  ``--level-models``).
* ``cells``: the two single cells jointly, with and without the serum bulk profile as an
  input-only helper; per-cell AUC (epoch cap ``--cell-epochs``, early stopping on validation).

Models: ``deepcpg-cpg`` and ``cpg-sae`` (biodl, trained by ``pipeline.train``), ``rf`` (scikit-
learn RandomForest on the same flattened features, Zhang et al. 2015's approach; trained on a
seeded subsample of at most ``--rf-sites`` sites) and ``window-mean`` (mean state of the
nearest 5 observed neighbours each side in the predicted profile itself).

Run: ``nice -n 10 python bench/methylation.py [--data-dir ../shared/data] [--quick]``.
Prints the table; writes ``OUT/rows.tsv`` and ``OUT/summary.md``; every finished (task, setting,
direction) is kept in ``OUT/units/``, so a killed run resumes there (``--fresh`` recomputes).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _rows import guarded, names_of, nonneg_int, positive_int  # noqa: E402

METHYLATION_MODELS = ("deepcpg-cpg", "cpg-sae", "rf", "window-mean")

SUB = "methylation/deepcpg_testdata"
BULK = {"BS9N_2I": "cpg_files__BS9N_2I.bed.gz", "BS9N_SER": "cpg_files__BS9N_SER.bed.gz"}
CELLS = {"BS27_4_SER": "cpg_profiles__BS27_4_SER.bed.gz", "BS28_2_SER": "cpg_profiles__BS28_2_SER.bed.gz"}
ANNOTATIONS = ("annos__CGI.bed.gz", "annos__exons.bed.gz")
PUBLISHED = {
    "bulk": "Zhang et al. 2015 (RF, 450K, 4 neighbours): accuracy 90.7%, AUC 0.94; Wang et al. 2016 (SAE, "
    "GM12878 / K562 with neighbour states): accuracy 89.7% / 88.6%",
    "cells": "DeepCpG (Angermueller et al. 2017), CpG module on 2i / serum mESC scBS-seq: per-cell AUC "
    "0.83-0.89 (the joint model ~0.83-0.91)",
}


def _data(arg: str) -> Path:
    d = Path(arg) / SUB
    missing = [f for f in [*BULK.values(), *CELLS.values(), *ANNOTATIONS] if not (d / f).exists()]
    if missing:
        sys.exit(
            f"error: bench/methylation.py: missing under {d}: {', '.join(missing)}. "
            "Where the data come from: bench/DATA.md (Cells, features, ...)"
        )
    return d


def _table(d: Path, names: list[str], out: Path) -> Path:
    files = {**BULK, **CELLS}
    t = out / f"profiles_{'_'.join(names)}.tsv"
    pd.DataFrame({"name": names, "file": [str((d / files[n]).resolve()) for n in names]}).to_csv(
        t, sep="\t", index=False
    )
    return t


def _scores(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import matthews_corrcoef, roc_auc_score

    ok = ~np.isnan(y)
    y, p = y[ok].astype(int), p[ok]
    yhat = (p >= 0.5).astype(int)
    return {
        "sites": int(len(y)),
        "auc": float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan"),
        "accuracy": float((y == yhat).mean()),
        "mcc": float(matthews_corrcoef(y, yhat)),
    }


def _level_scores(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    from scipy.stats import pearsonr

    ok = ~np.isnan(y)
    y, p = y[ok], p[ok]
    return {
        "sites": int(len(y)),
        "pearson": float(pearsonr(y, p)[0]),
        "rmse": float(np.sqrt(np.mean((y - p) ** 2))),
    }


def _biodl(
    system, table, inputs_only, train_chrom, test_chrom, out, args, *, epochs=None, regression=False
) -> tuple[dict, float]:
    """Train a biodl recipe; per-profile test probabilities (``{name: (y, p)}``) and CPU seconds."""
    from biodl import pipeline
    from biodl.registry import get_recipe
    from biodl.train import TrainConfig

    d = _data(args.data_dir)
    opts = {
        "data": str(table),
        "chroms": [train_chrom, test_chrom],
        "test_chroms": [test_chrom],
        "annotations": [str(d / a) for a in ANNOTATIONS],
        "max_sites": args.max_sites,
        "report": False,
    }
    if inputs_only:
        opts["input_only"] = inputs_only
    if regression:
        opts["task"] = "regression"
    if system == "cpg-sae":
        opts["pretrain_epochs"] = args.pretrain_epochs
    cfg = TrainConfig.for_recipe(
        get_recipe(system).train_defaults,
        max_epochs=epochs or args.epochs,
        device="cpu",
        progress=False,
        seed=args.seed,
        resume=False,
    )
    t0 = time.process_time()
    pipeline.train(system, out, options=opts, config=cfg, quiet=True)
    cpu = time.process_time() - t0
    pred = pd.read_csv(out / "test" / "predictions.tsv", sep="\t")
    res = {}
    for c in pred.columns:
        if c.startswith(("prob_", "pred_")):
            n = c[5:]
            res[n] = (pred[f"true_{n}"].to_numpy(np.float64), pred[c].to_numpy(np.float64))
    return res, cpu


def _features(profiles, outputs, chrom, annots, k, max_sites=None, seed=0, threshold=0.5):
    from biodl.kinds.methylation.data import CpGDataset, observed_sites

    sites = observed_sites(outputs, [chrom])
    if max_sites and len(sites) > max_sites:
        rows = np.sort(np.random.default_rng(seed).choice(len(sites), max_sites, replace=False))
        sites = sites.subset(rows)
    ds = CpGDataset(profiles, sites, k=k, annotations=annots, threshold=threshold)
    x = np.concatenate(
        [ds.features(np.arange(i, min(i + 50_000, len(ds)))) for i in range(0, len(ds), 50_000)]
    )
    return x, ds.y


def _classic(table, inputs_only, train_chrom, test_chrom, args, regression=False) -> tuple[dict, dict, float]:
    """Random forest and window mean on the same features: ``({name: (y, p)}`` for each, and
    the forest's CPU seconds (a regressor on the levels with ``regression``)."""
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    from biodl.kinds.methylation.data import window_mean
    from biodl.kinds.methylation.io import read_annotation, read_profiles

    d = _data(args.data_dir)
    profiles = read_profiles(table)
    outputs = [p for p in profiles if p.name not in (inputs_only or [])]
    annots = [read_annotation(d / a) for a in ANNOTATIONS]
    k = 25
    thr = None if regression else 0.5
    xtr, ytr = _features(profiles, outputs, train_chrom, annots, k, args.rf_sites, args.seed, thr)
    xte, yte = _features(profiles, outputs, test_chrom, annots, k, threshold=thr)
    rf, wm = {}, {}
    t0 = time.process_time()
    for j, o in enumerate(outputs):
        ok = ~np.isnan(ytr[:, j])
        forest = RandomForestRegressor if regression else RandomForestClassifier
        m = forest(n_estimators=args.rf_trees, min_samples_leaf=5, n_jobs=1, random_state=args.seed)
        yt = ytr[ok, j] if regression else ytr[ok, j].astype(int)
        m.fit(xtr[ok].reshape(ok.sum(), -1), yt)
        xt = xte.reshape(len(xte), -1)
        rf[o.name] = (yte[:, j], m.predict(xt) if regression else m.predict_proba(xt)[:, 1])
        wm[o.name] = (yte[:, j], window_mean(xte, k, profile=profiles.index(o), n=5))
    return rf, wm, time.process_time() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default="../shared/data")
    ap.add_argument(
        "--tasks",
        type=names_of(("bulk", "level", "cells"), "task"),
        default="bulk,level,cells",
        help="bulk (binarised), level (regression), cells",
    )
    ap.add_argument(
        "--models", type=names_of(METHYLATION_MODELS, "model"), default="deepcpg-cpg,cpg-sae,rf,window-mean"
    )
    ap.add_argument("--directions", type=names_of(("18>19", "19>18"), "direction"), default="18>19,19>18")
    ap.add_argument(
        "--level-models",
        type=names_of(METHYLATION_MODELS, "model"),
        default="deepcpg-cpg,rf,window-mean",
        help="models of the level (regression) task",
    )
    ap.add_argument("--epochs", type=positive_int, default=5)
    ap.add_argument(
        "--cell-epochs",
        type=positive_int,
        default=30,
        help="epoch cap for the single cells (~4,500 training sites: an epoch is a few dozen steps)",
    )
    ap.add_argument("--pretrain-epochs", type=nonneg_int, default=2)
    ap.add_argument(
        "--max-sites", type=positive_int, default=50_000, help="training sites per epoch (biodl models)"
    )
    ap.add_argument("--rf-sites", type=positive_int, default=50_000)
    ap.add_argument("--rf-trees", type=positive_int, default=100)
    ap.add_argument("--quick", action="store_true", help="2 epochs, 20k sites, 30 trees, one direction")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--out",
        default=str(Path(__file__).resolve().parent / "out" / "methylation"),
        help="results folder (default bench/out/methylation in the repository)",
    )
    ap.add_argument("--fresh", action="store_true", help="recompute units kept in OUT/units/")
    args = ap.parse_args()
    if args.quick:
        args.epochs, args.max_sites, args.rf_sites, args.rf_trees = 2, 20_000, 20_000, 30
        args.cell_epochs = 10
        args.directions = args.directions.split(",")[0]
    d = _data(args.data_dir)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    models = args.models.split(",")
    settings = []
    if "bulk" in args.tasks:
        settings += [("bulk", [n], None) for n in BULK] + [("bulk", list(BULK), None)]
    if "level" in args.tasks:
        settings += [("level", [n], None) for n in BULK]
    if "cells" in args.tasks:
        settings += [("cells", list(CELLS), None), ("cells", [*CELLS, "BS9N_SER"], ["BS9N_SER"])]
    rows = []
    t_all = time.time()
    for task, names, only in settings:
        reg = task == "level"
        table = _table(d, names, out)
        setting = "+".join(names) + (f" ({'+'.join(only)} input only)" if only else "")
        for direction in args.directions.split(","):
            a, b = direction.split(">")
            # each finished (task, setting, direction) is kept in OUT/units/: a rerun resumes there
            unit = out / "units" / f"{task}_{'_'.join(names)}{'_only' if only else ''}_{a}to{b}.json"
            if unit.exists() and not args.fresh:
                rows += json.loads(unit.read_text())
                print(f"[bench] {unit.name}: kept from an earlier run", file=sys.stderr)
                continue
            unit_rows = []
            task_models = args.level_models.split(",") if reg else models
            got: dict[str, tuple[dict, float]] = {}
            for m in task_models:
                if m in ("deepcpg-cpg", "cpg-sae"):
                    run = out / "runs" / f"{m}_{'_'.join(names)}_{a}to{b}"
                    run = run.with_name(run.name + ("_level" if reg else ""))
                    eps = args.cell_epochs if task == "cells" else args.epochs
                    got[m] = _biodl(m, table, only, a, b, run, args, epochs=eps, regression=reg)
            if "rf" in task_models or "window-mean" in task_models:
                rf, wm, cpu = _classic(table, only, a, b, args, regression=reg)
                got["rf"], got["window-mean"] = (rf, cpu), (wm, 0.0)
            for m in task_models:
                res, cpu = got[m]
                for prof, (y, p) in res.items():
                    r = {
                        "task": task,
                        "setting": setting,
                        "train>test": direction,
                        "model": m,
                        "profile": prof,
                    }
                    r.update(_level_scores(y, p) if reg else _scores(y, p))
                    r["cpu_s"] = round(cpu, 1)
                    unit_rows.append(r)
                    got_s = (
                        f"r {r['pearson']:.4f} RMSE {r['rmse']:.4f}"
                        if reg
                        else f"AUC {r['auc']:.4f} acc {r['accuracy']:.4f} MCC {r['mcc']:.3f}"
                    )
                    print(
                        f"[bench] {task} {setting} {direction} {m:12s} {prof:11s} {got_s} "
                        f"({r['sites']} sites, {cpu:.0f} CPU s)",
                        file=sys.stderr,
                        flush=True,
                    )
            unit.parent.mkdir(exist_ok=True)
            unit.with_suffix(".tmp").write_text(json.dumps(unit_rows))
            unit.with_suffix(".tmp").replace(unit)
            rows += unit_rows
    df = pd.DataFrame(rows)
    df.to_csv(out / "rows.tsv", sep="\t", index=False)
    text = summarise(df, args, time.time() - t_all)
    (out / "summary.md").write_text(text)
    print(text)


def summarise(df: pd.DataFrame, args, seconds: float) -> str:
    level = df[df["task"] == "level"]
    df = df[df["task"] != "level"]
    models = list(df["model"].unique())
    lines = ["| task | setting | train>test | profile | " + " | ".join(f"{m} AUC" for m in models) + " |"]
    lines.append("|" + "---|" * (4 + len(models)))
    for (task, setting, dr, prof), g in df.groupby(["task", "setting", "train>test", "profile"], sort=False):
        a = g.set_index("model")["auc"]
        lines.append(
            f"| {task} | {setting} | {dr} | {prof} | "
            + " | ".join(f"{a.get(m, float('nan')):.4f}" for m in models)
            + " |"
        )
    mean = df.groupby(["task", "model"])[["auc", "accuracy", "mcc", "cpu_s"]].mean().round(4)
    lines += ["", "Means over settings, directions and profiles:", "", mean.to_markdown(), ""]
    if len(level):
        lm = list(level["model"].unique())
        lines += [
            "Levels (regression of the bulk methylation level; Pearson r / RMSE):",
            "",
            "| profile | train>test | " + " | ".join(lm) + " |",
            "|" + "---|" * (2 + len(lm)),
        ]
        for (prof, dr), g in level.groupby(["profile", "train>test"], sort=False):
            r = g.set_index("model")
            lines.append(
                f"| {prof} | {dr} | "
                + " | ".join(
                    f"{r.loc[m, 'pearson']:.4f} / {r.loc[m, 'rmse']:.4f}" if m in r.index else "-" for m in lm
                )
                + " |"
            )
        lines.append("")
    goals = []
    bulk = df[df["task"] == "bulk"].pivot_table(
        index=["setting", "train>test", "profile"], columns="model", values="auc"
    )
    if {"deepcpg-cpg", "rf"} <= set(bulk.columns):
        diff = bulk["deepcpg-cpg"] - bulk["rf"]
        goals.append(
            f"bulk: CpG module - RF AUC: mean {diff.mean():+.4f}, min {diff.min():+.4f} (goal >= +0.02)"
        )
    if {"cpg-sae", "rf"} <= set(bulk.columns):
        diff = bulk["cpg-sae"] - bulk["rf"]
        goals.append(f"bulk: SAE - RF AUC: mean {diff.mean():+.4f}, min {diff.min():+.4f} (goal >= 0)")
    cells = df[df["task"] == "cells"].pivot_table(
        index=["setting", "train>test", "profile"], columns="model", values="auc"
    )
    if {"deepcpg-cpg", "window-mean"} <= set(cells.columns):
        best = cells["deepcpg-cpg"]
        goals.append(
            f"cells: CpG module per-cell AUC min {best.min():.4f} (goal >= 0.85); minus window mean: min "
            f"{(best - cells['window-mean']).min():+.4f} (goal >= +0.05)"
        )
    lines += ["Goals:", *[f"* {g}" for g in goals], "", "Published (different data and protocols):"]
    lines += [f"* {k}: {v}" for k, v in PUBLISHED.items()]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines += [
        "",
        f"Settings: {json.dumps({k: v for k, v in vars(args).items() if k != 'data_dir'})}",
        f"Wall time {seconds / 60:.1f} min; peak RSS {peak:.0f} MB.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    guarded(main)
