"""DeepBind on every ENCODE ChIP-seq experiment of the DeepBind benchmark, against the released models.

For each experiment ``<exp>`` of ``<data-dir>/deepbind_encode_chipseq/`` this trains biodl's DeepBind
on ``<exp>_AC.seq.gz`` (training positives; :func:`biodl.pipeline.train` adds one dinucleotide-shuffled
negative per positive and holds out a seeded 10 % validation split) and tests it on the held-out
``<exp>_B.seq.gz`` (500 bound + 500 shuffled sequences) as DeepBind's ``nbtcode`` did: every B sequence
is scored on both strands (the larger score is kept) and the ROC AUC of the scores against ``Bound`` is
reported. The released DeepBind model of the experiment is scored on the same B file with biodl's loader
of the v0.11 parameters, next to the AUC listed in ``deepbind_released_model_auc_on_B.tsv``.

The default column's two-stage choice (``--two-stage``, the default; ``--calibrate/--no-calibrate``
before issue 19) is a small version of DeepBind's calibration: a few candidate settings are trained
for a few epochs each, the one with the best AUC on the validation split of AC (never on B) is kept
and its training is resumed from its checkpoint until the per-experiment CPU budget
(``--max-minutes-per-experiment``) or early stopping ends it. ``--no-two-stage`` trains the recipe's
defaults only, under the same budget. The budget is CPU time of this process (``time.process_time``),
so it does not depend on how busy the machine is; the number of epochs that fits is measured, per
experiment, from the first training epochs.

``--calibrate N`` adds the ``cal_*`` columns: ``biodl train --calibrate N`` (DeepBind's own protocol,
:mod:`biodl.train.calibrate`: N settings scored by 3-fold cross-validation on the training split,
the best trained with the recipe's epoch cap and early stopping), tested on B the same way.
``--ensemble K`` adds the ``ens_*`` columns. ``--default-from RESULTS_TSV`` takes the default and
ensemble columns from an earlier run (same seed) instead of training them again; ``--merge
A/run.json,B/run.json`` renders one table from earlier runs.

Run from the repository root::

    nice -n 10 python bench/deepbind_encode.py                       # all experiments, two-stage
    python bench/deepbind_encode.py --experiments REST,MYC --no-two-stage
    nice -n 10 python bench/deepbind_encode.py --calibrate 8 \\
        --default-from bench/out/deepbind_encode_ens5/results.tsv --out bench/out/deepbind_encode_cal8

Outputs (``--out``, default ``bench/out/deepbind_encode``): ``results.tsv``, ``results.md``,
``calibration.tsv`` (validation AUC of every candidate), ``run.json`` and one run directory per
experiment and candidate.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import math
import platform
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from _rows import guarded, nonneg_int, positive_float, positive_int  # noqa: E402

SUBDIR = "deepbind_encode_chipseq"
AUC_TSV = "deepbind_released_model_auc_on_B.tsv"
MAP_TSV = "deepbind_model_map.tsv"

#: Candidate settings of the calibration: model options and training options overriding the recipe's.
CANDIDATES: dict[str, dict[str, dict[str, Any]]] = {
    "recipe": {"model": {}, "train": {}},
    "lr3e-3": {"model": {}, "train": {"lr": 3e-3}},
    "lr3e-3-do0.2": {"model": {"dropout": 0.2}, "train": {"lr": 3e-3}},
    "lr3e-3-h0": {"model": {"hidden": 0}, "train": {"lr": 3e-3}},
    "lr3e-3-maxavg": {"model": {"pool": "maxavg", "dropout": 0.2}, "train": {"lr": 3e-3}},
    "lr3e-3-m16": {"model": {"motif_len": 16, "dropout": 0.2}, "train": {"lr": 3e-3}},
}
DEFAULT_CANDIDATES = "recipe,lr3e-3,lr3e-3-do0.2,lr3e-3-h0"


@dataclass
class Candidate:
    """One calibration candidate of one experiment and what its short training gave."""

    name: str
    model: dict[str, Any]
    train: dict[str, Any]
    out_dir: Path
    epochs: int = 0
    val_auc: float = math.nan
    cpu_s: float = 0.0
    history: list[float] = field(default_factory=list)


# ----------------------------------------------------------------------------- data


def find_data_dir(arg: str) -> tuple[Path | None, list[Path]]:
    """The data directory: ``arg`` relative to the working directory, then relative to the repository.

    Returns
    -------
    (path or None, tried)
        The first candidate that holds ``deepbind_encode_chipseq/``, and every path tried.
    """
    p = Path(arg)
    tried = [p] if p.is_absolute() else [Path.cwd() / p, REPO / p]
    for t in tried:
        if (t / SUBDIR).is_dir():
            return t.resolve(), tried
    return None, tried


def list_experiments(enc_dir: Path) -> list[str]:
    """Experiments with both an ``_AC`` and a ``_B`` file, sorted (a file without its pair is named)."""
    acs = {f.name[: -len("_AC.seq.gz")] for f in enc_dir.glob("*_AC.seq.gz")}
    bs = {f.name[: -len("_B.seq.gz")] for f in enc_dir.glob("*_B.seq.gz")}
    for e in sorted(acs ^ bs):
        have, lack = ("_AC", "_B") if e in acs else ("_B", "_AC")
        print(f"warning: {e}{have}.seq.gz has no {e}{lack}.seq.gz in {enc_dir}; skipped", file=sys.stderr)
    return sorted(acs & bs)


def unpaired(enc_dir: Path) -> list[str]:
    """The missing half (``<exp>_B.seq.gz`` or ``<exp>_AC.seq.gz``) of every experiment with one file."""
    acs = {f.name[: -len("_AC.seq.gz")] for f in enc_dir.glob("*_AC.seq.gz")}
    bs = {f.name[: -len("_B.seq.gz")] for f in enc_dir.glob("*_B.seq.gz")}
    return [f"{e}{'_B' if e in acs else '_AC'}.seq.gz" for e in sorted(acs ^ bs)]


def select(experiments: list[str], spec: str | None) -> list[str]:
    """Experiments whose name starts with (or equals) one of the comma-separated ``spec`` items."""
    if not spec:
        return experiments
    keys = [s.strip() for s in spec.split(",") if s.strip()]
    chosen = [e for e in experiments if any(e == k or e.startswith(k + "_") or e.startswith(k) for k in keys)]
    unknown = [k for k in keys if not any(e.startswith(k) for e in experiments)]
    if unknown:
        raise SystemExit(
            f"error: no experiment matches {', '.join(unknown)} (known: {', '.join(experiments)})"
        )
    return chosen


def read_released_tables(enc_dir: Path) -> tuple[dict[str, tuple[str, float]], dict[str, tuple[str, str]]]:
    """Released AUCs (``experiment -> (model, auc)``) and the model map (``experiment -> (ids, labels)``)."""
    aucs: dict[str, tuple[str, float]] = {}
    mapping: dict[str, tuple[str, str]] = {}
    if (enc_dir / AUC_TSV).is_file():
        df = pd.read_csv(enc_dir / AUC_TSV, sep="\t", dtype=str, keep_default_na=False)
        for r in df.itertuples():
            aucs[r.experiment] = (r.model, float(r.auc_on_B))
    if (enc_dir / MAP_TSV).is_file():
        df = pd.read_csv(enc_dir / MAP_TSV, sep="\t", dtype=str, keep_default_na=False)
        for r in df.itertuples():
            mapping[r.experiment] = (r.deepbind_model_ids, r.labels)
    return aucs, mapping


def count_rows(path: Path) -> int:
    """Number of data rows of a DeepBind ``.seq.gz`` table."""
    return len(pd.read_csv(path, sep="\t", usecols=["seq"]))


# ----------------------------------------------------------------------------- training


def _quiet() -> None:
    warnings.filterwarnings("ignore")
    for name in ("lightning.pytorch", "lightning.fabric", "lightning", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)


def train_stage(
    ac: Path,
    cand: Candidate,
    max_epochs: int,
    seed: int,
    resume: bool,
    test: Path | None = None,
    resample_negatives: bool = False,
) -> dict[str, Any]:
    """Train (or resume) one candidate up to ``max_epochs`` epochs with :func:`biodl.pipeline.train`.

    Returns
    -------
    dict
        The summary of :func:`biodl.pipeline.train`; ``cand`` is updated with its epochs, validation AUC
        (best so far), per-epoch validation AUCs and CPU seconds.
    """
    from biodl import pipeline
    from biodl.registry import get_recipe
    from biodl.train import TrainConfig

    recipe = get_recipe("deepbind")
    tcfg = {k: v for k, v in recipe.train_defaults.items() if k in TrainConfig.__dataclass_fields__}
    tcfg.update(cand.train)
    tcfg.update(max_epochs=max_epochs, seed=seed, device="cpu", progress=False, resume=resume)
    c0 = time.process_time()
    with contextlib.redirect_stdout(io.StringIO()):
        options = {"data": str(ac), "test_file": str(test) if test else None}
        if resample_negatives:
            options["resample_negatives"] = True
        summary = pipeline.train(
            "deepbind",
            cand.out_dir,
            options=options,
            config=TrainConfig(**tcfg),
            model_options=cand.model or None,
            quiet=True,
        )
    cand.cpu_s += time.process_time() - c0
    hist_path = cand.out_dir / "history.csv"
    if not hist_path.exists():  # an ensemble: member 1's history (the network --seed trains)
        hist_path = cand.out_dir / "member1" / "history.csv"
    hist = pd.read_csv(hist_path)
    cand.history = [float(v) for v in hist["val_auroc"]] if "val_auroc" in hist else []
    cand.epochs = len(cand.history)
    cand.val_auc = float(summary["val_metrics"].get("val_auroc", math.nan))
    return summary


def auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC (ties count one half), as ``nbtcode``'s ``calc_auc``."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y.astype(int), score.astype(np.float64)))


def test_auc(model_path: Path, b_file: Path) -> float:
    """AUC on B from the model's raw logits (both strands, larger kept, inside the model)."""
    from biodl import pipeline

    pred = pipeline.predict(model_path, b_file, quiet=True)
    logit_col = [c for c in pred.columns if c.startswith("logit_")][0]
    y = pd.read_csv(b_file, sep="\t", usecols=["Bound"])["Bound"].to_numpy()
    return auc(y, pred[logit_col].to_numpy())


def run_experiment(exp: str, enc_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Calibrate (optionally), train within the budget and test one experiment."""
    ac, b = enc_dir / f"{exp}_AC.seq.gz", enc_dir / f"{exp}_B.seq.gz"
    n_pos = count_rows(ac)
    n_train = int(round(2 * n_pos * 0.9))  # one shuffled negative per positive, 10 % held out
    budget = args.max_minutes_per_experiment * 60.0
    names = [c.strip() for c in args.candidates.split(",") if c.strip()] if args.two_stage else ["recipe"]
    base = Path(args.out) / "runs" / exp
    cands = [
        Candidate(n, dict(CANDIDATES[n]["model"]), dict(CANDIDATES[n]["train"]), base / n) for n in names
    ]
    from biodl.registry import get_recipe

    max_epochs = int(args.max_epochs or get_recipe("deepbind").train_defaults.get("max_epochs", 15))
    # Short first stage: at least ~20k training examples (2-5 epochs) per candidate.
    e_cal = max(2, min(5, math.ceil(20000 / max(n_train, 1))))
    e_cal = min(e_cal, max_epochs)
    cpu0 = time.process_time()
    wall0 = time.time()
    for c in cands:
        train_stage(ac, c, e_cal, args.seed, resume=False, resample_negatives=args.resample_negatives)
    if len(cands) > 1:
        ok = [c for c in cands if not math.isnan(c.val_auc)]
        best = max(ok, key=lambda c: c.val_auc) if ok else cands[0]
    else:
        best = cands[0]
    # Second stage: resume the winner for as many epochs as the remaining CPU budget allows.
    used = time.process_time() - cpu0
    per_epoch = best.cpu_s / max(best.epochs, 1)
    reserve = 0.05 * budget  # reading B, predicting, exporting
    extra = int((budget - used - reserve) // per_epoch) if per_epoch > 0 else 0
    final_epochs = max(best.epochs, min(max_epochs, best.epochs + max(extra, 0)))
    summary = train_stage(
        ac, best, final_epochs, args.seed, resume=True, test=b, resample_negatives=args.resample_negatives
    )
    ours = test_auc(Path(summary["model"]), b)
    cpu_min = (time.process_time() - cpu0) / 60
    wall_min = (time.time() - wall0) / 60
    ens: dict[str, Any] = {}
    if args.ensemble > 1:
        # the winning setting again as an ensemble of K seeds, each trained to the same epoch cap
        k = int(args.ensemble)
        e = Candidate(
            f"{best.name}+ens{k}",
            dict(best.model),
            dict(best.train, ensemble=k),
            base / f"{best.name}_ens{k}",
        )
        c1 = time.process_time()
        s_e = train_stage(
            ac, e, final_epochs, args.seed, resume=True, test=b, resample_negatives=args.resample_negatives
        )
        ens = {"auc_ens": test_auc(Path(s_e["model"]), b), "cpu_min_ens": (time.process_time() - c1) / 60}
    return {
        **ens,
        "experiment": exp,
        "n_pos": n_pos,
        "n_train": summary["n_train"],
        "setting": best.name,
        "epochs": best.epochs,
        "epoch_cap": final_epochs,
        "best_epoch": summary["best_epoch"],
        "val_auc": best.val_auc,
        "auc": ours,
        "auc_torchmetrics": float(summary["test_metrics"]["auroc"]),
        "cpu_min": cpu_min,
        "wall_min": wall_min,
        "candidates": [
            {"name": c.name, "epochs_stage1": min(e_cal, len(c.history)), "val_auc_stage1": _stage1(c, e_cal)}
            for c in cands
        ],
        "final_history": best.history,
    }


def run_calibrated(exp: str, enc_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """``biodl train --calibrate N`` on one experiment (recipe defaults otherwise: the recipe's
    epoch cap and early stopping, no CPU budget for the final training), tested on B."""
    from biodl import pipeline
    from biodl.registry import get_recipe
    from biodl.train import TrainConfig

    ac, b = enc_dir / f"{exp}_AC.seq.gz", enc_dir / f"{exp}_B.seq.gz"
    out = Path(args.out) / "runs" / exp / f"calibrated{args.calibrate}"
    if args.calibrate_top > 1:
        out = out.with_name(f"{out.name}-top{args.calibrate_top}")
    if args.trials_from:
        # the finished trials of an earlier run (its calibration.jsonl) are read back, not trained again
        done = Path(args.trials_from) / "runs" / exp / f"calibrated{args.calibrate}" / "calibration.jsonl"
        if done.exists() and not (out / "calibration.jsonl").exists():
            out.mkdir(parents=True, exist_ok=True)
            (out / "calibration.jsonl").write_text(done.read_text())
    cfg = TrainConfig.for_recipe(
        get_recipe("deepbind").train_defaults,
        max_epochs=args.max_epochs,
        seed=args.seed,
        device="cpu",
        progress=False,
        calibrate=args.calibrate,
        calibrate_subsample=args.calibrate_subsample,
        calibrate_epochs=args.calibrate_epochs,
        calibrate_top=args.calibrate_top,
        calibrate_budget=args.calibrate_budget,
    )
    options = {"data": str(ac), "test_file": str(b)}
    if args.resample_negatives:
        options["resample_negatives"] = True
    c0, w0 = time.process_time(), time.time()
    with contextlib.redirect_stdout(io.StringIO()):
        summary = pipeline.train("deepbind", out, options=options, config=cfg, quiet=True)
    cpu = (time.process_time() - c0) / 60
    meta = json.loads((out / "run.json").read_text())
    cal = meta["calibration"]
    by = {t["trial"]: t for t in cal["trials"]}
    best = by[cal["chosen"][0]]
    return {
        "auc_cal": test_auc(Path(summary["model"]), b),
        "cpu_min_cal": cpu,
        "cal_search_wall_min": sum(t["seconds"] for t in cal["trials"]) / 60,
        "wall_min_cal": (time.time() - w0) / 60,
        "cal_trial": best["trial"],
        "cal_cv_auc": best["score"],
        "cal_cv_auc_trial1": by.get(1, {}).get("score", math.nan),
        "cal_setting": _setting_label(best["setting"]),
        "cal_epochs": meta["epochs_run"],
        "cal_trials": len(cal["trials"]),
    }


def _setting_label(s: dict[str, Any]) -> str:
    return (
        f"lr {s['lr']:.2g} wd {s['weight_decay']:.1g} do {s['dropout']:g} h{s['hidden']} "
        f"m{s['motif_len']} {s['pool']}"
    )


def _stage1(c: Candidate, e_cal: int) -> float:
    h = c.history[:e_cal]
    return max(h) if h else math.nan


def released_auc(model_field: str, b: Path) -> tuple[str, float, str]:
    """The released model's AUC on B computed with biodl's loader.

    Returns
    -------
    (model id, auc, note)
        ``auc`` is NaN with a note when there is no model or its parameters are not bundled.
    """
    from biodl.models.sequence.deepbind_released import bundled_ids, released_auc_on_file

    ids = [s.strip() for s in model_field.replace(";", ",").split(",") if s.strip()]
    if not ids:
        return "-", math.nan, "no released model"
    mid = ids[0]
    if mid not in set(bundled_ids()):
        return mid, math.nan, "parameters not bundled"
    return mid, released_auc_on_file(mid, b), ""


# ----------------------------------------------------------------------------- report


def fmt(v: float, nd: int = 4) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{nd}f}"


def short(exp: str) -> str:
    return exp.split("_")[0] + "_" + exp.split("_")[1] if "_" in exp else exp


COLUMNS = [
    ("experiment", "experiment"),
    ("n_pos", "n_pos"),
    ("setting", "setting"),
    ("epochs", "ep"),
    ("auc", "our_AUC"),
    ("released_id", "released_id"),
    ("released_auc_tsv", "rel_AUC_tsv"),
    ("released_auc_ours", "rel_AUC_ours"),
    ("diff", "diff"),
    ("cpu_min", "cpu_min"),
    ("wall_min", "wall_min"),
]


ENS_COLUMNS = [("auc_ens", "ens_AUC"), ("diff_ens", "ens_diff"), ("cpu_min_ens", "ens_cpu_min")]


CAL_COLUMNS = [
    ("auc_cal", "cal_AUC"),
    ("diff_cal", "cal_diff"),
    ("cal_setting", "cal_setting"),
    ("cal_cv_auc", "cal_cv_AUC"),
    ("cpu_min_cal", "cal_cpu_min"),
]


def _columns(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return (
        COLUMNS
        + (ENS_COLUMNS if any("auc_ens" in r for r in rows) else [])
        + (CAL_COLUMNS if any("auc_cal" in r for r in rows) else [])
    )


def row_cells(r: dict[str, Any], columns: list[tuple[str, str]] | None = None) -> list[str]:
    cells = []
    for key, _ in columns or COLUMNS:
        v = r.get(key)
        if key == "experiment":
            cells.append(short(v))
        elif key in ("cpu_min", "wall_min", "cpu_min_ens", "cpu_min_cal"):
            cells.append(fmt(v, 2))
        elif key in ("diff", "diff_ens", "diff_cal"):
            cells.append("-" if v is None or math.isnan(v) else f"{v:+.4f}")
        elif isinstance(v, float):
            cells.append(fmt(v))
        else:
            cells.append(str(v))
    return cells


def means(rows: list[dict[str, Any]]) -> list[tuple[str, int, float, float, float]]:
    """(label, n, our mean, released mean from the TSV, released mean by our loader)."""
    out = []
    with_tsv = [r for r in rows if not math.isnan(r["released_auc_tsv"])]
    if with_tsv:
        out.append(
            (
                "experiments with a released AUC (TSV)",
                len(with_tsv),
                float(np.mean([r["auc"] for r in with_tsv])),
                float(np.mean([r["released_auc_tsv"] for r in with_tsv])),
                float(np.nanmean([r["released_auc_ours"] for r in with_tsv])),
            )
        )
    with_model = [r for r in rows if not math.isnan(r["released_auc_ours"])]
    if with_model and [r["experiment"] for r in with_model] != [r["experiment"] for r in with_tsv]:
        out.append(
            (
                "experiments with a bundled released model",
                len(with_model),
                float(np.mean([r["auc"] for r in with_model])),
                math.nan,
                float(np.mean([r["released_auc_ours"] for r in with_model])),
            )
        )
    out.append(("all experiments", len(rows), float(np.mean([r["auc"] for r in rows])), math.nan, math.nan))
    return out


def render(rows: list[dict[str, Any]], markdown: bool) -> str:
    cols = _columns(rows)
    heads = [h for _, h in cols]
    body = [row_cells(r, cols) for r in rows]
    lines = []
    if markdown:
        lines.append("| " + " | ".join(heads) + " |")
        lines.append("|" + "|".join("---" for _ in heads) + "|")
        lines += ["| " + " | ".join(c) + " |" for c in body]
    else:
        widths = [max(len(h), *(len(c[i]) for c in body)) for i, h in enumerate(heads)]
        lines.append("  ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True)))
        lines.append("-" * len(lines[0]))
        lines += ["  ".join(x.ljust(w) for x, w in zip(c, widths, strict=True)) for c in body]
    lines.append("")
    for label, n, ours, tsv, loader in means(rows):
        lines.append(
            f"mean over {label} (n={n}): ours {ours:.4f}"
            + (f", released (TSV) {tsv:.4f}" if not math.isnan(tsv) else "")
            + (f", released (our loader) {loader:.4f}" if not math.isnan(loader) else "")
            + (f", difference {ours - tsv:+.4f}" if not math.isnan(tsv) else "")
            + (f", difference {ours - loader:+.4f}" if math.isnan(tsv) and not math.isnan(loader) else "")
        )
    ens = [r for r in rows if "auc_ens" in r and not math.isnan(r.get("diff_ens", math.nan))]
    if ens:
        lines.append(
            f"ensembles, mean over the {len(ens)} experiments with a released AUC: ensemble "
            f"{np.mean([r['auc_ens'] for r in ens]):.4f} vs single {np.mean([r['auc'] for r in ens]):.4f} vs "
            f"released {np.mean([r['auc_ens'] - r['diff_ens'] for r in ens]):.4f}; worst ensemble - released "
            f"{min(r['diff_ens'] for r in ens):+.4f}; ensemble CPU minutes "
            f"{sum(r['cpu_min_ens'] for r in ens):.2f}"
        )
    cal = [r for r in rows if "auc_cal" in r and not math.isnan(r.get("diff_cal", math.nan))]
    if cal:
        m_cal = np.mean([r["auc_cal"] for r in cal])
        m_def = np.mean([r["auc"] for r in cal])
        m_rel = np.mean([r["auc_cal"] - r["diff_cal"] for r in cal])
        lines.append(
            f"calibrated, mean over the {len(cal)} experiments with a released AUC: calibrated {m_cal:.4f} "
            f"vs default {m_def:.4f} vs released {m_rel:.4f}; worst calibrated - released "
            f"{min(r['diff_cal'] for r in cal):+.4f}"
        )
    if any("auc_cal" in r for r in rows):
        cr = [r for r in rows if "auc_cal" in r]
        lines.append(
            f"calibrated, all {len(cr)} experiments: mean {np.mean([r['auc_cal'] for r in cr]):.4f} (default "
            f"{np.mean([r['auc'] for r in cr]):.4f}); CPU minutes {sum(r['cpu_min_cal'] for r in cr):.2f} "
            f"(search wall minutes {sum(r['cal_search_wall_min'] for r in cr):.2f}), per experiment max "
            f"{max(r['cpu_min_cal'] for r in cr):.2f}"
        )
    tot_cpu = sum(r["cpu_min"] for r in rows)
    tot_wall = sum(r["wall_min"] for r in rows)
    lines.append(
        f"training CPU minutes: total {tot_cpu:.2f}, per experiment {tot_cpu / len(rows):.2f} (max "
        f"{max(r['cpu_min'] for r in rows):.2f}); per-experiment wall minutes summed {tot_wall:.2f} "
        "(parallel jobs overlap)"
    )
    if markdown:
        lines = [s if s.startswith("|") or not s else s + "  " for s in lines]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    ap.add_argument("--data-dir", default="../shared/data", help="data root (default ../shared/data)")
    ap.add_argument("--experiments", default=None, help="comma-separated name prefixes (default: all)")
    ap.add_argument(
        "--max-minutes-per-experiment", type=positive_float, default=2.0, help="CPU-minute budget (default 2)"
    )
    ap.add_argument("--max-epochs", type=positive_int, default=None, help="epoch cap (default: the recipe's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--two-stage",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the default column's candidate choice (stage 1 on the validation split, stage 2 within the "
        "budget); --no-two-stage trains the recipe's defaults only (was --calibrate/--no-calibrate)",
    )
    ap.add_argument(
        "--calibrate",
        type=nonneg_int,
        default=0,
        metavar="N",
        help="also train `biodl train --calibrate N` (DeepBind's protocol: N settings scored by 3-fold "
        "cross-validation on the training split, the best retrained) and report its test AUC in the "
        "cal_* columns (default 0: not run)",
    )
    ap.add_argument(
        "--calibrate-subsample", type=positive_int, default=10_000, help="--calibrate-subsample M"
    )
    ap.add_argument(
        "--calibrate-epochs", type=nonneg_int, default=0, help="--calibrate-epochs E (0: automatic)"
    )
    ap.add_argument("--calibrate-top", type=positive_int, default=1, help="--calibrate-top K")
    ap.add_argument(
        "--calibrate-budget", type=positive_float, default=None, help="--calibrate-budget SECONDS"
    )
    ap.add_argument(
        "--trials-from",
        default=None,
        metavar="OUT",
        help="with --calibrate: start from the calibration trials of an earlier run's --out (its "
        "runs/<exp>/calibrated<N>/calibration.jsonl; resumed, not trained again), e.g. to add "
        "--calibrate-top K to a finished --calibrate N run",
    )
    ap.add_argument(
        "--default-from",
        default=None,
        metavar="RESULTS_TSV",
        help="take the default (and ensemble) columns from this earlier results.tsv of the same seed "
        "instead of training them again (with --calibrate: only the calibrated model is trained)",
    )
    ap.add_argument(
        "--resample-negatives",
        action="store_true",
        help="fresh dinucleotide shuffles of the training negatives every epoch (as nbtcode did)",
    )
    ap.add_argument(
        "--candidates",
        default=DEFAULT_CANDIDATES,
        help=f"calibration candidates (default {DEFAULT_CANDIDATES}; known: {', '.join(CANDIDATES)})",
    )
    ap.add_argument(
        "--ensemble",
        type=positive_int,
        default=1,
        help="also train the chosen setting as an ensemble of this many seeds (biodl train --ensemble) "
        "and report its test AUC beside the single model's (default 1: no ensemble)",
    )
    ap.add_argument(
        "--merge",
        default=None,
        metavar="RUN_JSON,...",
        help="train nothing: render one table from the rows of these run.json files of earlier runs "
        "(e.g. two halves of the experiments) into --out",
    )
    ap.add_argument(
        "--out",
        default=str(REPO / "bench" / "out" / "deepbind_encode"),
        help="results folder (default bench/out/deepbind_encode); a run into a folder of an earlier run "
        "resumes its checkpoints (runs/<exp>/...), whatever its settings: give a new or empty folder "
        "for a fresh measurement",
    )
    ap.add_argument("--threads", type=positive_int, default=1, help="torch threads per worker (default 1)")
    ap.add_argument(
        "--jobs", type=positive_int, default=1, help="experiments trained in parallel processes (default 1)"
    )
    args = ap.parse_args(argv)
    bad = [c for c in args.candidates.split(",") if c.strip() and c.strip() not in CANDIDATES]
    if bad:
        ap.error(f"unknown candidate(s) {', '.join(bad)}; known: {', '.join(CANDIDATES)}")
    for opt, value in (("--merge", args.merge), ("--default-from", args.default_from)):
        gone = [p for p in (value or "").split(",") if p and not Path(p).is_file()]
        if gone:
            ap.error(f"{opt}: no such file {', '.join(gone)}")
    if args.trials_from and not Path(args.trials_from).is_dir():
        ap.error(f"--trials-from {args.trials_from}: no such folder (an earlier run's --out)")
    return args


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    _quiet()


def _experiment_row(job: tuple) -> dict[str, Any]:
    """Train and test one experiment, then score its released model (not counted in the CPU minutes)."""
    exp, enc_s, args, aucs, mapping = job
    enc = Path(enc_s)
    if args.default_from:
        prev = pd.read_csv(args.default_from, sep="\t", keep_default_na=False, na_values=[""])
        got = prev[prev["experiment"] == exp]
        if got.empty:
            raise SystemExit(f"error: {exp} is not in {args.default_from}")
        r = {k: (v.item() if hasattr(v, "item") else v) for k, v in got.iloc[0].items()}
        r.update(candidates=[], final_history=[])
        r = {k: v for k, v in r.items() if k not in ("diff", "diff_ens", "diff_cal")}
    else:
        r = run_experiment(exp, enc, args)
    if args.calibrate:
        r.update(run_calibrated(exp, enc, args))
    mid = aucs.get(exp, (None, math.nan))[0] or mapping.get(exp, ("", ""))[0]
    r["released_auc_tsv"] = aucs.get(exp, (None, math.nan))[1]
    r["released_id"], r["released_auc_ours"], note = released_auc(mid or "", enc / f"{exp}_B.seq.gz")
    label = mapping.get(exp, ("", ""))[1]
    if label and r["released_id"] != "-":
        r["released_id"] += f" ({label})"
    r["released_note"] = note
    ref = r["released_auc_tsv"] if not math.isnan(r["released_auc_tsv"]) else r["released_auc_ours"]
    r["diff"] = r["auc"] - ref if not math.isnan(ref) else math.nan
    for key in ("ens", "cal"):
        if f"auc_{key}" in r:
            r[f"diff_{key}"] = r[f"auc_{key}"] - ref if not math.isnan(ref) else math.nan
    return r


def _print_progress(i: int, n: int, r: dict[str, Any]) -> None:
    cal = ", ".join(f"{c['name']} {fmt(c['val_auc_stage1'])}" for c in r["candidates"])
    print(
        f"[{i}/{n}] {short(r['experiment'])}: {r['setting']} (val AUC after stage 1: {cal}); "
        f"{r['epochs']} epochs (cap {r['epoch_cap']}), test AUC {r['auc']:.4f}, released "
        f"{fmt(r['released_auc_ours'])}; {r['cpu_min']:.2f} CPU min, {r['wall_min']:.2f} wall min"
        + (
            f"; calibrated: trial {r['cal_trial']}/{r['cal_trials']} ({r['cal_setting']}, 3-fold AUC "
            f"{r['cal_cv_auc']:.4f}), test AUC {r['auc_cal']:.4f}, {r['cpu_min_cal']:.2f} CPU min"
            if "auc_cal" in r
            else ""
        ),
        flush=True,
    )


def _save_partial(out: Path, r: dict[str, Any]) -> None:
    """Append a finished experiment's row to ``out/partial.jsonl`` (a run cut short keeps it)."""
    with open(out / "partial.jsonl", "a") as fh:
        fh.write(json.dumps(r, default=str) + "\n")


def merge(paths: list[str], out: Path) -> int:
    """One table (printed, ``results.md``, ``results.tsv``) of the rows of earlier ``run.json`` files."""
    rows: dict[str, dict[str, Any]] = {}
    for p in paths:
        for r in json.loads(Path(p).read_text())["rows"]:
            if "cal_cpu_min_search" in r:  # the name of the first calibrated runs (it was wall time)
                r["cal_search_wall_min"] = r.pop("cal_cpu_min_search")
            rows[r["experiment"]] = r
    ordered = [rows[e] for e in sorted(rows)]
    out.mkdir(parents=True, exist_ok=True)
    print(render(ordered, markdown=False))
    flat = [{k: v for k, v in r.items() if k not in ("candidates", "final_history")} for r in ordered]
    pd.DataFrame(flat).to_csv(out / "results.tsv", sep="\t", index=False, float_format="%.6g")
    (out / "results.md").write_text(render(ordered, markdown=True))
    n = f"{len(ordered)} experiments from {len(paths)} runs"
    print(f"wrote {out / 'results.tsv'}, {out / 'results.md'} ({n})")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.merge:
        return merge([p for p in args.merge.split(",") if p], Path(args.out))
    data_dir, tried = find_data_dir(args.data_dir)
    if data_dir is None:
        print(f"error: {SUBDIR}/ not found; tried:", file=sys.stderr)
        for t in tried:
            print(f"  {t / SUBDIR}", file=sys.stderr)
        print(
            "pass --data-dir DIR with DIR/deepbind_encode_chipseq/<exp>_AC.seq.gz, <exp>_B.seq.gz. "
            "Where the data come from: bench/DATA.md (Sequences)",
            file=sys.stderr,
        )
        return 1
    enc = data_dir / SUBDIR
    if not args.experiments:  # the default, every experiment: all of their files or a clear stop
        lacking = unpaired(enc) + [p for p in (AUC_TSV, MAP_TSV) if not (enc / p).is_file()]
        if lacking:
            shown = ", ".join(lacking[:8]) + (f" and {len(lacking) - 8} more" if len(lacking) > 8 else "")
            print(
                f"error: {len(lacking)} file(s) missing in {enc}: {shown}. The default runs every "
                "experiment with its released model's AUC; to run a subset of the experiments that "
                "have both files, name them with --experiments. Where the data come from: bench/DATA.md "
                "(Sequences)",
                file=sys.stderr,
            )
            return 1
    experiments = list_experiments(enc)
    if not experiments:
        print(f"error: no <exp>_AC.seq.gz with a matching <exp>_B.seq.gz in {enc}", file=sys.stderr)
        return 1
    missing = [p for p in (AUC_TSV, MAP_TSV) if not (enc / p).is_file()]
    if missing:
        print(
            f"warning: missing {', '.join(missing)} in {enc}: released columns will be empty", file=sys.stderr
        )
    experiments = select(experiments, args.experiments)

    import torch

    torch.set_num_threads(args.threads)
    _quiet()
    import biodl

    aucs, mapping = read_released_tables(enc)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"data: {enc} ({len(experiments)} experiments)")
    print(
        f"python {platform.python_version()}, torch {torch.__version__}, "
        f"biodl {getattr(biodl, '__version__', '?')}, threads {args.threads} x {args.jobs} job(s); "
        f"budget {args.max_minutes_per_experiment:g} CPU min/experiment; seed {args.seed}; "
        + (f"two-stage choice over {args.candidates}" if args.two_stage else "recipe defaults only")
        + (
            f"; calibrated: --calibrate {args.calibrate} --calibrate-subsample {args.calibrate_subsample} "
            f"--calibrate-epochs {args.calibrate_epochs} --calibrate-top {args.calibrate_top}"
            + (f" --calibrate-budget {args.calibrate_budget:g}" if args.calibrate_budget else "")
            if args.calibrate
            else ""
        )
        + (f"; default columns from {args.default_from}" if args.default_from else "")
    )
    t_start = time.time()
    # Parallel jobs: largest experiments first, so that the workers finish at about the same time;
    # one job: smallest first, so that a run cut short has the most experiments.
    sign = -1 if args.jobs > 1 else 1
    order = sorted(experiments, key=lambda e: sign * (enc / f"{e}_AC.seq.gz").stat().st_size)
    jobs = [(exp, str(enc), args, aucs, mapping) for exp in order]
    done: dict[str, dict[str, Any]] = {}
    if args.jobs > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(
            args.jobs, mp_context=ctx, initializer=_init_worker, initargs=(args.threads,)
        ) as ex:
            from concurrent.futures import as_completed

            for fut in as_completed([ex.submit(_experiment_row, job) for job in jobs]):
                r = fut.result()
                done[r["experiment"]] = r
                _print_progress(len(done), len(jobs), r)
                _save_partial(out, r)
    else:
        for job in jobs:
            r = _experiment_row(job)
            done[r["experiment"]] = r
            _print_progress(len(done), len(jobs), r)
            _save_partial(out, r)
    rows = [done[e] for e in experiments]
    print()
    print(render(rows, markdown=False))
    total_wall = (time.time() - t_start) / 60
    print(f"total wall time {total_wall:.1f} min (including scoring the released models)")

    flat = [{k: v for k, v in r.items() if k not in ("candidates", "final_history")} for r in rows]
    pd.DataFrame(flat).to_csv(out / "results.tsv", sep="\t", index=False, float_format="%.6g")
    (out / "results.md").write_text(render(rows, markdown=True))
    cal_rows = [
        {
            "experiment": r["experiment"],
            "candidate": c["name"],
            "epochs": c["epochs_stage1"],
            "val_auc": c["val_auc_stage1"],
            "chosen": c["name"] == r["setting"],
        }
        for r in rows
        for c in r["candidates"]
    ]
    pd.DataFrame(cal_rows).to_csv(out / "calibration.tsv", sep="\t", index=False, float_format="%.6g")
    (out / "run.json").write_text(
        json.dumps({"args": vars(args), "total_wall_min": total_wall, "rows": rows}, indent=2, default=str)
        + "\n"
    )
    print(f"wrote {out / 'results.tsv'}, {out / 'results.md'}, {out / 'calibration.tsv'}, {out / 'run.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(guarded(main))
