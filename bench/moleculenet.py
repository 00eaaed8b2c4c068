"""biodl's neural fingerprints with the CLI's defaults beside chemprop's defaults on the
MoleculeNet sets we hold (issue 19, item 2): accuracy and training time, both run as a user
would run them.

Data: ``{delaney,freesolv,tox21}.csv`` (chemprop's 2018 ``data/`` copies of the MoleculeNet
sets, staged in ``../shared/data/neural_fingerprints/moleculenet_chemprop``; see
bench/DATA.md). ``--data-dir`` is that folder or a data folder holding
``neural_fingerprints/moleculenet_chemprop/`` (default ``../shared/data`` from the repository
root); the files of every requested task are checked before anything runs. Molecules RDKit
cannot parse are dropped for both tools (counted in the output).

Split: chemprop's default, random 80 / 10 / 10 (train / validation / test), drawn with
``numpy.random.default_rng(seed)`` per replicate (seeds 0..N-1); both tools get the same three
files. Each tool is one subprocess with one thread (``OMP_NUM_THREADS=1``; biodl
``--set threads=1``), timed from launch to exit (start-up, featurisation, training, test
predictions):

* biodl: ``biodl train TRAIN --valid VALID --test TEST --system neural-fp --target all``
  plus the variant's extra arguments (``--variant NAME=ARGS``; ``default`` = none);
* chemprop 2.2.4: ``chemprop train --data-path TRAIN VALID TEST --task-type T`` with its
  defaults (D-MPNN, 50 epochs, best validation epoch); ``--pytorch-seed SEED``.

Both tools' test predictions are scored here: RMSE for regression, mean AUROC over the tasks
(missing labels skipped) for Tox21. Rows go to ``OUT/results.tsv``; a rerun skips finished
rows. chemprop's install line is in bench/README.md.

Usage::

    nice -n 10 python bench/moleculenet.py --tasks freesolv,delaney,tox21 --seeds 5
    nice -n 10 python bench/moleculenet.py --tasks freesolv --seeds 5 --tools biodl \\
        --variant 'ens3=--ensemble 3'
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _rows import chosen, guarded, names_of, nonneg_int, positive_int, require_leaf_data, require_peer  # noqa: E402

TASKS = {"freesolv": "regression", "delaney": "regression", "tox21": "classification"}
LEAF = "neural_fingerprints/moleculenet_chemprop"
DATA_SOURCE = "bench/DATA.md (Molecules)"


def load(task: str, data_dir: Path) -> pd.DataFrame:
    """The task's table with RDKit-unparsable SMILES dropped (said on stdout)."""
    from rdkit import Chem, RDLogger

    path = data_dir / f"{task}.csv"  # checked by require_leaf_data before anything runs
    df = pd.read_csv(path)
    RDLogger.DisableLog("rdApp.*")
    ok = np.array([Chem.MolFromSmiles(s) is not None for s in df.smiles])
    if not ok.all():
        print(
            f"[{task}] {int((~ok).sum())} of {len(df)} molecules RDKit cannot parse: dropped for both tools"
        )
    return df[ok].reset_index(drop=True)


def split_files(df: pd.DataFrame, seed: int, d: Path) -> tuple[Path, Path, Path]:
    """Random 80/10/10 split of ``df`` with ``seed``, written as three CSV files in ``d``."""
    n = len(df)
    perm = np.random.default_rng(seed).permutation(n)
    a, b = int(0.8 * n), int(0.9 * n)
    d.mkdir(parents=True, exist_ok=True)
    paths = tuple(d / f"{name}.csv" for name in ("train", "valid", "test"))
    for p, idx in zip(paths, (perm[:a], perm[a:b], perm[b:]), strict=True):
        df.iloc[idx].to_csv(p, index=False)
    return paths  # type: ignore[return-value]


def _targets(truth: pd.DataFrame) -> list[str]:
    """The target columns of a split file (every column but ``smiles``)."""
    return [c for c in truth.columns if c != "smiles"]


def score(kind: str, truth: pd.DataFrame, pred: np.ndarray) -> float:
    """RMSE over every target (regression) or mean AUROC over the tasks (classification)."""
    y = truth[_targets(truth)].to_numpy(dtype=float)
    if kind == "regression":
        return float(np.sqrt(np.nanmean((pred - y) ** 2)))
    from sklearn.metrics import roc_auc_score

    aucs = []
    for j in range(y.shape[1]):
        m = ~np.isnan(y[:, j])
        if len(np.unique(y[m, j])) == 2:
            aucs.append(roc_auc_score(y[m, j], pred[m, j]))
    return float(np.mean(aucs))


def _run(cmd: list[str], log: Path) -> float:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        p = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)
    secs = time.perf_counter() - t0
    if p.returncode != 0:
        tail = log.read_text()[-2000:]
        raise RuntimeError(f"{cmd[0]} failed (exit {p.returncode}), log {log}:\n{tail}")
    return secs


def _test_outputs(p: pd.DataFrame, truth: pd.DataFrame, cols: list[str], where: Path) -> np.ndarray:
    """``cols`` of a tool's test predictions ``p``, checked to be in the test file's order."""
    if [str(s) for s in p.smiles] != [str(s) for s in truth.smiles]:
        raise RuntimeError(f"the test predictions in {where} are not in the test file's order")
    return p[cols].to_numpy(dtype=float)


def run_biodl(task, seed, files, truth, d: Path, extra: list[str], device: str) -> tuple[float, np.ndarray]:
    tr, va, te = files
    if d.exists():
        shutil.rmtree(d)
    biodl = str(Path(sys.executable).with_name("biodl"))
    cmd = [biodl, "train", str(tr), "--valid", str(va), "--test", str(te), "--system", "neural-fp"]
    cmd += ["--target", "all", "--out", str(d), "--seed", str(seed), "--no-progress"]
    cmd += ["--device", device, "--set", "threads=1", "--set", "report=false", *extra]
    d.parent.mkdir(parents=True, exist_ok=True)
    secs = _run(cmd, d.parent / f"{d.name}.log")
    col = "pred_{}" if TASKS[task] == "regression" else "prob_{}"
    pred_file = d / "test" / "predictions.tsv"
    cols = [col.format(n) for n in _targets(truth)]
    return secs, _test_outputs(pd.read_csv(pred_file, sep="\t"), truth, cols, pred_file)


def run_chemprop(task, seed, files, truth, d: Path) -> tuple[float, np.ndarray]:
    tr, va, te = files
    if d.exists():
        shutil.rmtree(d)
    names = _targets(truth)
    cmd = [str(Path(sys.executable).with_name("chemprop")), "train", "--data-path", str(tr), str(va), str(te)]
    cmd += ["-s", "smiles", "--target-columns", *names, "--task-type", TASKS[task]]
    cmd += ["--output-dir", str(d), "--num-workers", "0", "--accelerator", "cpu", "--devices", "1"]
    cmd += ["--pytorch-seed", str(seed), "--data-seed", str(seed)]
    d.parent.mkdir(parents=True, exist_ok=True)
    secs = _run(cmd, d.parent / f"{d.name}.log")
    preds = sorted(d.rglob("test_predictions.csv"))
    if not preds:
        raise RuntimeError(f"no test_predictions.csv under {d}")
    return secs, _test_outputs(pd.read_csv(preds[-1]), truth, names, preds[-1])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help=f"the folder of the CSV files, or a data folder holding {LEAF}/ "
        "(default ../shared/data from the repository root)",
    )
    ap.add_argument("--tasks", default="freesolv,delaney,tox21")
    ap.add_argument(
        "--seeds", type=positive_int, default=5, help="Replicates: random splits with seeds 0..N-1."
    )
    ap.add_argument("--first-seed", type=nonneg_int, default=0)
    ap.add_argument("--tools", type=names_of(("biodl", "chemprop"), "tool"), default="biodl,chemprop")
    ap.add_argument(
        "--variant",
        action="append",
        default=[],
        help="biodl variant NAME=ARGS (extra `biodl train` arguments; repeatable). Default: 'default='.",
    )
    ap.add_argument("--device", default="cpu", help="biodl's --device (chemprop runs on the CPU).")
    ap.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent / "out" / "moleculenet",
        help="results folder (default bench/out/moleculenet in the repository)",
    )
    args = ap.parse_args(argv)

    bad = [v for v in args.variant if "=" not in v or not v.split("=", 1)[0].strip()]
    if bad:
        ap.error(f"--variant takes NAME=ARGS, not {', '.join(repr(v) for v in bad)}")
    variants = dict(v.split("=", 1) for v in (args.variant or ["default="]))
    tools = args.tools.split(",")
    tasks = chosen("moleculenet.py", args.tasks, TASKS)
    # every requested task's file, before the peer check and before any training
    data_dir = require_leaf_data(
        "moleculenet.py",
        args.data_dir,
        LEAF,
        [f"{t}.csv" for t in tasks],
        [f"{t}.csv" for t in TASKS],
        DATA_SOURCE,
    )
    if "chemprop" in tools:
        require_peer(
            "chemprop", "chemprop 2.2.4, the peer here", "Install it with the line in bench/README.md"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    res_path = args.out / "results.tsv"
    done = pd.read_csv(res_path, sep="\t") if res_path.exists() else pd.DataFrame()
    finished = (
        set(zip(*(done[k] for k in ("task", "seed", "tool", "variant")), strict=True)) if len(done) else set()
    )
    for task in tasks:
        df = load(task, data_dir)
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            files = split_files(df, seed, args.out / task / f"seed{seed}" / "split")
            truth = pd.read_csv(files[2])
            n_train = int(0.8 * len(df))  # split_files' training part
            runs = [("chemprop", "defaults", None)] if "chemprop" in tools else []
            runs += (
                [("biodl", name, shlex.split(a)) for name, a in variants.items()] if "biodl" in tools else []
            )
            for tool, variant, extra in runs:
                if (task, seed, tool, variant) in finished:
                    continue
                d = args.out / task / f"seed{seed}" / f"{tool}-{variant}"
                if tool == "chemprop":
                    secs, pred = run_chemprop(task, seed, files, truth, d)
                else:
                    secs, pred = run_biodl(task, seed, files, truth, d, extra, args.device)
                row = {
                    "task": task,
                    "seed": seed,
                    "tool": tool,
                    "variant": variant,
                    "args": " ".join(extra or []),
                    "metric": "RMSE" if TASKS[task] == "regression" else "AUROC",
                    "score": round(score(TASKS[task], truth, pred), 5),
                    "seconds": round(secs, 1),
                    "n_train": n_train,
                    "n_test": len(truth),
                }
                print("\t".join(str(v) for v in row.values()), flush=True)
                done = pd.concat([done, pd.DataFrame([row])], ignore_index=True)
                done.to_csv(res_path, sep="\t", index=False)
    if len(done):
        summary = (
            done.groupby(["task", "tool", "variant"])
            .agg(
                metric=("metric", "first"),
                score=("score", "mean"),
                sd=("score", "std"),
                seconds=("seconds", "mean"),
                seeds=("seed", "count"),
            )
            .reset_index()
        )
        print(summary.to_string(index=False, float_format=lambda v: f"{v:.4g}"))


if __name__ == "__main__":
    guarded(main)
