"""Enhancers and promoters from ENCODE feature tables: deep feature selection (DFS), PEDLA, DEEP
and baselines side by side, on the authors' own HUVEC / HMEC tables (Li, Chen & Wasserman).

    nice -n 10 python bench/regulatory_features.py --jobs 2                      # 10-fold CV, both cells
    nice -n 10 python bench/regulatory_features.py --cells HUVEC --folds 3 --quick   # a quick look

Protocol: stratified k-fold CV (seed 0) per cell line and task; in every fold each model is
trained on the other folds only (its standardisation, its stratified 10 % validation split for
early stopping / the DFS penalty path, its class weights) and scored once on the held-out fold.
biodl's models go through the library as a user would (``biodl.pipeline.train`` on the fold's
table, ``--test`` = the held-out fold); the baselines are scikit-learn on log1p + standardised
features fitted on the training folds.

Tasks: (a) the 7 classes; (b) active enhancer (A-E) vs every other region; (c) active enhancer vs
active promoter (A-P). Metrics on the held-out folds: accuracy, MCC, GM = sqrt(sensitivity x
specificity) at probability 0.5 (PEDLA's and DEEP's measure; binary tasks), AUC (multiclass:
macro one-vs-rest). DFS: the penalty path (``--lambdas``), each penalty's features refitted
without it, the kept model = the best by validation with at most ``--max-features`` features;
every path model is also scored on the held-out fold (accuracy against the number of features).
Transfer: models trained on all HUVEC rows of task (b), restricted to the features HMEC has,
scored on all HMEC rows.

Outputs (``--out``, default bench/out/regulatory): ``folds.tsv`` (one row per cell, task, model,
fold), ``path.tsv`` (DFS path models on the held-out folds), ``summary.md`` (the tables).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _rows import float_list, guarded, int_at_least, int_list, names_of, nonneg_int, positive_int  # noqa: E402

TASKS = {
    "a": {"title": "7 classes", "classes": None, "positive": None},
    "b": {"title": "active enhancer vs rest", "classes": None, "positive": ["A-E"]},
    "c": {"title": "active enhancer vs active promoter", "classes": ["A-E", "A-P"], "positive": ["A-E"]},
}
BIODL = {"dfs": "dfs", "mlp": "dfs", "pedla": "pedla", "deep": "deep-enhancer"}
MODELS = ("dfs", "mlp", "pedla", "deep", "lr-en", "rf")
ENHANCER_MARKS = {"H3K4ME1", "H3K27AC"}
PROMOTER_MARKS = {"H3K4ME3"}


def _data_dir(arg: str, cells: list[str] = (), window: str = "200bp") -> Path:
    """``<data-dir>/enhancer_dfs_decres`` (``--data-dir`` relative to the working directory, or
    else to the repository), after checking that the tables of ``cells`` are there."""
    from _rows import require_data

    base = Path(arg)
    if not base.is_dir() and (Path(__file__).resolve().parents[1] / arg).is_dir():
        base = Path(__file__).resolve().parents[1] / arg
    files = ("Features.txt", f"{window}_Data.txt.gz", f"{window}_Classes.txt.gz")
    needed = [f"enhancer_dfs_decres/{c}_{f}" for c in dict.fromkeys(cells) for f in files]
    root = require_data(
        "bench/regulatory_features.py",
        base,
        needed or ["enhancer_dfs_decres"],
        "bench/DATA.md (Cells, features, ...)",
        "the project's data folder, ../shared/data",
    )
    return root / "enhancer_dfs_decres"


def load(d: Path, cell: str, window: str):
    from biodl.kinds.features.io import read_features

    t = read_features(
        d / f"{cell}_{window}_Data.txt.gz",
        labels=d / f"{cell}_{window}_Classes.txt.gz",
        feature_names=d / f"{cell}_Features.txt",
        header="no",
    )
    return t


def _write(table, rows, tmp: Path, name: str) -> tuple[Path, Path]:
    x, y = table.x[rows], [table.labels[i] for i in rows]
    data, labels = tmp / f"{name}.tsv", tmp / f"{name}.classes"
    np.savetxt(data, x, fmt="%.6g", delimiter="\t")
    labels.write_text("\n".join(y) + "\n")
    return data, labels


def metrics(task: dict, labels: list[str], pred: pd.DataFrame, classes: list[str]) -> dict[str, float]:
    """Held-out metrics from a prediction table (probabilities in ``prob_*`` columns)."""
    from sklearn.metrics import matthews_corrcoef, roc_auc_score

    if task["positive"] is not None:
        y = np.isin(labels, task["positive"]).astype(int)
        p = pred[[c for c in pred.columns if c.startswith("prob_")][0]].to_numpy(float)
        hat = (p >= 0.5).astype(int)
        sens = float(((hat == 1) & (y == 1)).sum() / max((y == 1).sum(), 1))
        spec = float(((hat == 0) & (y == 0)).sum() / max((y == 0).sum(), 1))
        return {
            "accuracy": float((hat == y).mean()),
            "mcc": float(matthews_corrcoef(y, hat)),
            "gm": float(np.sqrt(sens * spec)),
            "auc": float(roc_auc_score(y, p)),
            "sensitivity": sens,
            "specificity": spec,
        }
    idx = {c: i for i, c in enumerate(classes)}
    y = np.array([idx[v] for v in labels])
    prob = pred[[f"prob_{c}" for c in classes]].to_numpy(float)
    hat = prob.argmax(1)
    return {
        "accuracy": float((hat == y).mean()),
        "mcc": float(matthews_corrcoef(y, hat)),
        "auc": float(roc_auc_score(y, prob, multi_class="ovr", average="macro")),
    }


def _sk_predict(name: str, task: dict, xtr, ytr, xte, classes, seed: int) -> pd.DataFrame:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    binary = task["positive"] is not None
    target = (
        np.isin(ytr, task["positive"]).astype(int) if binary else np.array([classes.index(v) for v in ytr])
    )
    sc = StandardScaler().fit(np.log1p(np.clip(xtr, 0, None)))
    ztr, zte = sc.transform(np.log1p(np.clip(xtr, 0, None))), sc.transform(np.log1p(np.clip(xte, 0, None)))
    if name == "lr-en":
        m = LogisticRegression(
            solver="saga",
            l1_ratio=0.5,
            C=1.0,
            max_iter=3000,
            class_weight="balanced",
            random_state=seed,
        )
    else:
        m = RandomForestClassifier(n_estimators=300, class_weight="balanced", n_jobs=1, random_state=seed)
    prob = m.fit(ztr, target).predict_proba(zte)
    if binary:
        return pd.DataFrame({"prob_pos": prob[:, 1]})
    return pd.DataFrame({f"prob_{c}": prob[:, j] for j, c in enumerate(classes)})


def _biodl(
    model: str, recipe: str, data, labels, test, test_labels, names, task, out: Path, args, extra=None
):
    from biodl import pipeline
    from biodl.registry import get_recipe
    from biodl.train import TrainConfig

    opts = {
        "data": str(data),
        "labels": str(labels),
        "feature_names": str(names),
        "header": "no",
        "test_file": str(test),
        "test_labels": str(test_labels),
        "test_fraction": 0,
        "report": False,
    }
    if task["classes"]:
        opts["classes"] = task["classes"]
    if task["positive"]:
        opts["positive"] = task["positive"]
    mopts = {}
    if model == "dfs":
        opts.update(lambdas=args.lambdas.split(","), max_features=args.max_features)
    elif model == "mlp":
        mopts["l1"] = 0.0
    elif model == "pedla":
        opts["pretrain_epochs"] = args.pretrain_epochs
    opts.update(extra or {})
    r = get_recipe(recipe)
    cfg = TrainConfig.for_recipe(
        r.train_defaults, max_epochs=args.epochs, device="cpu", progress=False, seed=args.seed, resume=False
    )
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        s = pipeline.train(recipe, out, options=opts, model_options=mopts, config=cfg, quiet=True)
    pred = pd.read_csv(out / "test" / "predictions.tsv", sep="\t", keep_default_na=False)
    return s, pred


def run_unit(unit: tuple) -> tuple[list[dict], list[dict]]:
    """One cell x task x fold: every model trained on the other folds, scored on this one."""
    import torch
    from sklearn.model_selection import StratifiedKFold

    cell, task_key, fold, args = unit
    torch.set_num_threads(1)
    d = _data_dir(args.data_dir)
    table = load(d, cell, args.window)
    task = TASKS[task_key]
    rows = np.arange(len(table))
    labels = np.asarray(table.labels, dtype=object)
    if task["classes"]:
        rows = rows[np.isin(labels, task["classes"])]
    classes = task["classes"] or sorted(set(table.labels))
    strat = labels[rows]
    tr, te = list(StratifiedKFold(args.folds, shuffle=True, random_state=args.seed).split(rows, strat))[fold]
    tr, te = rows[tr], rows[te]
    out_rows, path_rows = [], []
    with tempfile.TemporaryDirectory(prefix="biodl-reg-") as tmp:
        tmp = Path(tmp)
        dtr, ltr = _write(table, tr, tmp, "train")
        dte, lte = _write(table, te, tmp, "test")
        test_labels = [table.labels[i] for i in te]
        for model in args.models:
            if model == "deep" and task["positive"] is None:
                continue  # DEEP is a binary classifier
            t0 = time.time()
            info: dict = {}
            if model in BIODL:
                s, pred = _biodl(
                    model,
                    BIODL[model],
                    dtr,
                    ltr,
                    dte,
                    lte,
                    d / f"{cell}_Features.txt",
                    task,
                    tmp / model,
                    args,
                )
                if model == "dfs":
                    info["selected"] = ",".join(s.get("selected") or [])
                    info["n_features"] = len(s.get("selected") or [])
                    path_rows += _score_path(
                        tmp / model,
                        dte,
                        d / f"{cell}_Features.txt",
                        task,
                        test_labels,
                        classes,
                        cell,
                        task_key,
                        fold,
                    )
            else:
                pred = _sk_predict(
                    model, task, table.x[tr], [table.labels[i] for i in tr], table.x[te], classes, args.seed
                )
            m = metrics(task, test_labels, pred, classes)
            out_rows.append(
                {
                    "cell": cell,
                    "task": task_key,
                    "model": model,
                    "fold": fold,
                    **m,
                    **info,
                    "seconds": round(time.time() - t0, 1),
                }
            )
            print(
                f"[{cell} {task_key} fold {fold}] {model}: "
                + ", ".join(f"{k} {v:.3f}" for k, v in m.items())
                + (f"; {info['n_features']} features: {info['selected']}" if "selected" in info else "")
                + f" ({out_rows[-1]['seconds']} s)",
                flush=True,
            )
    return out_rows, path_rows


def _score_path(run: Path, test, names, task, labels, classes, cell, task_key, fold) -> list[dict]:
    from biodl import pipeline

    path = pd.read_csv(run / "path.tsv", sep="\t")
    rows = []
    for k, r in path.iterrows():
        pred = pipeline.predict(
            run / "path" / f"lambda{k}" / "model.pt",
            test,
            quiet=True,
            options={"header": "no", "feature_names": str(names)},
        )
        m = metrics(task, labels, pred, classes)
        rows.append(
            {
                "cell": cell,
                "task": task_key,
                "fold": fold,
                "lambda": r["lambda"],
                "n_features": int(r["n_features"]),
                "features": r["features"],
                **m,
            }
        )
    return rows


def transfer(args) -> list[dict]:
    """Task (b) trained on all HUVEC rows on the features HMEC has, scored on all HMEC rows."""
    from biodl.kinds.features.io import norm_name

    d = _data_dir(args.data_dir)
    huvec, hmec = load(d, "HUVEC", args.window), load(d, "HMEC", args.window)
    shared = [n for n in huvec.feature_names if norm_name(n) in {norm_name(m) for m in hmec.feature_names}]
    task = TASKS["b"]
    out = []
    with tempfile.TemporaryDirectory(prefix="biodl-transfer-") as tmp:
        tmp = Path(tmp)
        h = huvec.select_features(shared)
        dtr, ltr = _write(h, np.arange(len(h)), tmp, "huvec")
        m = hmec.select_features(shared)
        dte, lte = _write(m, np.arange(len(m)), tmp, "hmec")
        names = tmp / "shared.txt"
        names.write_text("\n".join(shared) + "\n")
        for model in args.models:
            t0 = time.time()
            if model in BIODL:
                s, pred = _biodl(model, BIODL[model], dtr, ltr, dte, lte, names, task, tmp / model, args)
                sel = ",".join(s.get("selected") or []) if model == "dfs" else ""
            else:
                pred = _sk_predict(model, task, h.x, h.labels, m.x, [], args.seed)
                sel = ""
            met = metrics(task, m.labels, pred, [])
            out.append(
                {
                    "model": model,
                    "n_shared": len(shared),
                    **met,
                    "selected": sel,
                    "seconds": round(time.time() - t0, 1),
                }
            )
            print(
                f"[transfer HUVEC -> HMEC] {model}: "
                + ", ".join(f"{k} {v:.3f}" for k, v in met.items() if k != "selected"),
                flush=True,
            )
    return out


def _mean_sd(s: pd.Series) -> str:
    return f"{s.mean():.3f} ± {s.std(ddof=1):.3f}" if len(s) > 1 else f"{s.mean():.3f}"


def summarise(folds: pd.DataFrame, path: pd.DataFrame, trans: list[dict], args) -> str:
    lines = [
        f"# Regulatory feature tables ({args.window} windows, {args.folds}-fold CV, seed {args.seed})",
        "",
    ]
    for (cell, task), g in folds.groupby(["cell", "task"], sort=False):
        t = TASKS[task]
        lines += [f"## {cell}, task ({task}): {t['title']}", ""]
        cols = ["accuracy", "mcc", "gm", "auc"] if t["positive"] else ["accuracy", "mcc", "auc"]
        lines.append("| model | " + " | ".join(cols) + " | features | s / fold |")
        lines.append("|---|" + "---|" * (len(cols) + 2))
        for model, gm in g.groupby("model", sort=False):
            feats = (
                f"{gm['n_features'].mean():.1f}"
                if "n_features" in gm and gm["n_features"].notna().any()
                else "all"
            )
            lines.append(
                f"| {model} | " + " | ".join(_mean_sd(gm[c]) for c in cols) + f" | {feats} | "
                f"{gm['seconds'].mean():.0f} |"
            )
        dfs = g[g["model"] == "dfs"]
        if len(dfs) and "selected" in dfs:
            counts = pd.Series(
                [f for s in dfs["selected"].dropna() for f in str(s).split(",") if f]
            ).value_counts()
            lines += ["", "DFS features kept (folds): " + ", ".join(f"{k} ({v})" for k, v in counts.items())]
        lines.append("")
        p = path[(path["cell"] == cell) & (path["task"] == task)] if len(path) else path
        if len(p):
            key = "gm" if t["positive"] else "accuracy"
            curve = p.groupby("lambda").agg(
                n_features=("n_features", "mean"),
                acc=("accuracy", "mean"),
                auc=("auc", "mean"),
                **({key: (key, "mean")} if key == "gm" else {}),
            )
            lines += [
                "DFS path on the held-out folds (mean over folds):",
                "",
                "| lambda | features | accuracy | auc |" + (" gm |" if key == "gm" else ""),
                "|---|---|---|---|" + ("---|" if key == "gm" else ""),
            ]
            for lam, r in curve.iterrows():
                lines.append(
                    f"| {lam:g} | {r['n_features']:.1f} | {r['acc']:.3f} | {r['auc']:.3f} |"
                    + (f" {r['gm']:.3f} |" if key == "gm" else "")
                )
            lines.append("")
    if trans:
        lines += [
            "## Transfer: trained on HUVEC (task b, shared features), scored on HMEC",
            "",
            "| model | accuracy | mcc | gm | auc | features kept |",
            "|---|---|---|---|---|---|",
        ]
        for r in trans:
            lines.append(
                f"| {r['model']} | {r['accuracy']:.3f} | {r['mcc']:.3f} | {r['gm']:.3f} | {r['auc']:.3f} | "
                f"{r['selected'] or ('all ' + str(r['n_shared']))} |"
            )
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default="../shared/data")
    ap.add_argument("--cells", default="HUVEC,HMEC")
    ap.add_argument("--window", default="200bp", choices=("200bp", "1000bp"))
    ap.add_argument("--tasks", type=names_of(TASKS, "task"), default="a,b,c")
    ap.add_argument("--models", type=names_of(MODELS, "model"), default=",".join(MODELS))
    ap.add_argument("--folds", type=int_at_least(2), default=10)
    ap.add_argument(
        "--only-folds", type=int_list(0), default=None, help="run only these folds (comma-separated)"
    )
    ap.add_argument("--epochs", type=positive_int, default=15)
    ap.add_argument("--pretrain-epochs", type=nonneg_int, default=5)
    ap.add_argument("--lambdas", type=float_list(0), default="0.25,0.5,1,2,4,8")
    ap.add_argument("--max-features", type=positive_int, default=8)
    ap.add_argument("--no-transfer", action="store_true")
    ap.add_argument("--quick", action="store_true", help="10 epochs, 3 penalties")
    ap.add_argument("--jobs", type=positive_int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--out",
        default=str(Path(__file__).resolve().parent / "out" / "regulatory"),
        help="results folder (default bench/out/regulatory in the repository)",
    )
    ap.add_argument("--fresh", action="store_true", help="recompute units already kept in OUT/units/")
    ap.add_argument(
        "--render-only",
        action="store_true",
        help="train nothing: tabulate every unit kept in OUT/units/ (and OUT/transfer.json)",
    )
    args = ap.parse_args()
    if args.only_folds and any(int(f) >= args.folds for f in args.only_folds.split(",")):
        ap.error(f"--only-folds {args.only_folds}: folds are 0 to {args.folds - 1} (--folds {args.folds})")
    if args.quick:
        args.epochs, args.lambdas = 10, "1,2,8"
    args.models = [m for m in args.models.split(",") if m]
    if not args.render_only:  # every table it will read, before any training
        _data_dir(
            args.data_dir,
            [*args.cells.split(","), *([] if args.no_transfer else ["HUVEC", "HMEC"])],
            args.window,
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    folds = [int(f) for f in args.only_folds.split(",")] if args.only_folds else list(range(args.folds))
    units = [(c, t, f, args) for c in args.cells.split(",") for t in args.tasks.split(",") for f in folds]
    t0 = time.time()
    # every finished unit is kept in OUT/units/: a killed run resumes where it stopped
    udir = out / "units"
    udir.mkdir(exist_ok=True)
    if args.render_only:
        units = []
        order = args.cells.split(",")
        for p in udir.glob("*.json"):
            c, t, f = p.stem.rsplit("_", 2)
            units.append((c, t, int(f), args))
        units.sort(key=lambda u: (order.index(u[0]) if u[0] in order else len(order), u[0], u[1], u[2]))
        if not units:
            raise SystemExit(f"--render-only: no finished units in {udir}")

    def done(u) -> Path:
        return udir / f"{u[0]}_{u[1]}_{u[2]}.json"

    todo = [u for u in units if args.fresh or not done(u).exists()]
    if len(todo) < len(units):
        print(
            f"[bench] {len(units) - len(todo)} of {len(units)} units already done in {udir}", file=sys.stderr
        )

    def keep(u, r, p) -> None:
        tmp = done(u).with_suffix(".tmp")
        tmp.write_text(json.dumps({"rows": r, "path": p}, default=float))
        os.replace(tmp, done(u))

    if args.jobs > 1:
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        with ProcessPoolExecutor(args.jobs) as ex:
            for u, (r, p) in zip(todo, ex.map(run_unit, todo), strict=True):
                keep(u, r, p)
    else:
        for u in todo:
            keep(u, *run_unit(u))
    results, paths = [], []
    for u in units:
        got = json.loads(done(u).read_text())
        results += got["rows"]
        paths += got["path"]
    if args.render_only:
        tj = out / "transfer.json"
        trans = json.loads(tj.read_text()) if tj.exists() else []
    else:
        trans = [] if args.no_transfer else transfer(args)
    folds_df, path_df = pd.DataFrame(results), pd.DataFrame(paths)
    folds_df.to_csv(out / "folds.tsv", sep="\t", index=False)
    path_df.to_csv(out / "path.tsv", sep="\t", index=False)
    if not (args.render_only or args.no_transfer):
        (out / "transfer.json").write_text(json.dumps(trans, indent=1))
    text = summarise(folds_df, path_df, trans, args)
    if not args.render_only:
        text += f"\nTotal wall time {(time.time() - t0) / 60:.1f} min ({args.jobs} job(s)).\n"
    (out / "summary.md").write_text(text)
    print(text)


if __name__ == "__main__":
    guarded(main)
