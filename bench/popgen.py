"""Population-genetic inference: Flagel et al. (2019)'s recombination task, Sheehan & Song
(2016)'s 3-epoch demography and a neutral / hard / soft sweep classifier, each with our msprime
simulations, the networks of biodl (``popgen-cnn``, ``popgen-mlp``, ``popgen-exchangeable``)
and rejection ABC on the same summary statistics; the published CNN and LDhat estimates (read
from ``DATA_DIR/popgen_flagel2019``) as reference rows.

Parts (``--parts a,b,c``):

* ``a`` recombination: train on ``--rho-sizes`` simulations of Flagel's prior (the learning
  curve: each size is the first N of one dataset), test on fresh simulations at theta 6 / 12 /
  18 / 24 / 60 (``--rho-test`` each, Ne fixed at 5,000 ... 50,000, r from the prior); R^2 (squared
  Pearson r) and RMSE in rho units, overall and per theta, beside the published CNN and LDhat.
* ``b`` demography: ``--demo-n`` simulations of the 3-epoch prior (10% held out as the test
  set); relative error |N_est - N_true| / N_true per epoch size (Sheehan & Song's Table 1) for
  each model and ABC, and the estimates for ``--zambia-n`` fresh simulations at the published
  Zambian values.
* ``c`` selection: ``--sel-n`` simulations (10% test); the 3-class confusion matrix and the
  misclassification rate (Sheehan & Song: 6.2%).

It prints simulation and training times and peak memory, and writes ``OUT/results.json`` and
``OUT/tables.md``. Simulations and finished runs are kept in ``OUT`` (a rerun resumes;
``--fresh`` removes the runs, not the simulations).

Run: ``nice -n 10 python bench/popgen.py [--data-dir ../shared/data] [--quick]``. Without
``--data-dir``, a default data folder without the published file is said at the start and at
the end (part a runs without the reference rows); a ``--data-dir`` given that lacks it stops
the run before any simulation.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "bench") not in sys.path:
    sys.path.insert(0, str(ROOT / "bench"))
from _rows import DEFAULT_DATA_DIR, guarded, int_list, positive_float, positive_int, require_data  # noqa: E402

THETAS = {6: 5000, 12: 10000, 18: 15000, 24: 20000, 60: 50000}
PUBLISHED_SUB = "popgen_flagel2019/rho_test_true_ldhat_cnn.tsv"
PUBLISHED_SOURCE = "bench/DATA.md (Cells, features, methylation, population genetics, contacts)"


def peak_mb() -> tuple[float, float]:
    """Peak resident memory (MiB) of this process and of its finished children (simulation workers)."""
    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return me, kids


def r2_rmse(t: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    t, p = np.asarray(t, float), np.asarray(p, float)
    r = np.corrcoef(t, p)[0, 1] if len(t) > 2 and t.std() > 0 and p.std() > 0 else 0.0
    return float(r**2), float(np.sqrt(np.mean((t - p) ** 2)))


def published(data_dir: Path) -> pd.DataFrame | None:
    """The published test-set estimates (theta, rho_true, rho_ldhat, rho_cnn), or None when missing
    (:func:`main` has said so before the run)."""
    p = data_dir / PUBLISHED_SUB
    if not p.exists():
        return None
    return pd.read_csv(p, sep="\t")


def simulate(scenario: str, n: int, seed: int, out: Path, workers: int, **kw) -> dict:
    from biodl.kinds.popgen.simulate import simulate_dataset

    r = simulate_dataset(scenario, n, seed, out, workers=workers, progress=False, **kw)
    print(
        f"[bench] {scenario} n={n} seed={seed} {kw.get('fixed') or ''}: {r['simulated']} simulated in "
        f"{r['seconds']:.1f} s wall ({r['cpu_seconds']:.1f} CPU-s), {r['skipped']} shard(s) kept",
        file=sys.stderr,
    )
    return r


def train(system: str, out: Path, options: dict, model: dict, epochs: int, batch: int, fresh: bool) -> dict:
    """Train (or reuse a finished run of) ``system``; returns the summary plus ``seconds``."""
    from biodl import pipeline
    from biodl.registry import get_recipe
    from biodl.train import TrainConfig

    s_path = out / "summary.json"
    if fresh and out.exists():
        shutil.rmtree(out)
    if s_path.exists() and (out / "model.pt").exists():
        s = json.loads(s_path.read_text())
        if "bench_seconds" in s:
            print(f"[bench] reusing {out}", file=sys.stderr)
            return s
    cfg = TrainConfig.for_recipe(
        get_recipe(system).train_defaults,
        max_epochs=epochs,
        batch_size=batch,
        device="cpu",
        progress=False,
        seed=0,
    )
    t0 = time.perf_counter()
    s = pipeline.train(system, out, options=options, model_options=model, config=cfg, quiet=True)
    s["bench_seconds"] = time.perf_counter() - t0
    s_path.write_text(json.dumps(s, indent=2, default=str))
    print(
        f"[bench] trained {system} on {s['n_train']} sims in {s['bench_seconds']:.0f} s "
        f"({s['epochs_run']} epochs)",
        file=sys.stderr,
    )
    return s


def score(run: Path, data: Path) -> pd.DataFrame:
    """Predictions of a run on a simulated dataset (``true_*`` and ``pred_*`` / ``predicted``)."""
    from biodl.kinds import get_kind
    from biodl.train import load_model

    model, meta = load_model(run / "model.pt")
    kind = get_kind("popgen")
    table = kind.read(meta, data, {}, labelled=True)
    out, y = kind.score(model, meta, table, device="cpu", options={})
    return kind.frame(meta, table, out, y)


def abc_frame(run: Path, reference: Path, limit: int | None, data: Path, fraction: float) -> pd.DataFrame:
    """Rejection-ABC predictions on ``data`` with the first ``limit`` sims of ``reference``."""
    from biodl.kinds import get_kind
    from biodl.kinds.popgen.data import raw_targets
    from biodl.kinds.popgen.io import read_dataset
    from biodl.train import read_run_json

    meta = read_run_json(run)
    kind = get_kind("popgen")
    ref = read_dataset(reference, limit=limit)
    q = kind.read(meta, data, {}, labelled=True)
    est = kind.abc_estimates(meta, ref, q, fraction, False)
    return kind.frame(meta, q, est, raw_targets(q, meta.data["targets"], meta.task))


def _md(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    rows = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    for _, r in df.iterrows():
        rows.append("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in r) + " |")
    return "\n".join(rows)


# ---------------------------------------------------------------------- (a) recombination
def part_a(args, out: Path, res: dict, md: list[str]) -> None:
    sims = Path(args.sims) if args.sims else out / "sims"
    sizes = [int(s) for s in args.rho_sizes.split(",")]
    t = simulate("flagel-rho", max(sizes), 1, sims / "rho_train", args.workers)
    res["a_sim_train"] = {k: t[k] for k in ("n", "seconds", "cpu_seconds", "simulated")}
    tests = {}
    for theta, ne in THETAS.items():
        r = simulate("flagel-rho", args.rho_test, 100 + theta, sims / f"rho_test_theta{theta}", args.workers,
                     fixed={"ne": ne})  # fmt: skip
        tests[theta] = sims / f"rho_test_theta{theta}"
        res[f"a_sim_test_{theta}"] = {k: r[k] for k in ("n", "seconds", "cpu_seconds")}
    pub = published(Path(args.data_dir))
    rows = []
    if pub is not None:
        for who, col in (("published LDhat", "rho_ldhat"), ("published CNN (Flagel 2019)", "rho_cnn")):
            row = {"model": who, "train sims": 210000 if "CNN" in who else "-"}
            row["R2 all"], row["RMSE all"] = r2_rmse(pub["rho_true"], pub[col])
            for theta in THETAS:
                m = np.isclose(pub["theta"], theta, atol=0.01)
                row[f"R2 th{theta}"], row[f"RMSE th{theta}"] = r2_rmse(
                    pub.loc[m, "rho_true"], pub.loc[m, col]
                )
            rows.append(row)
    models = [m for m in args.rho_models.split(",") if m]
    for size in sizes:
        for system in models:
            run = out / "runs" / f"a_{system}_{size}"
            opts = {"data": sims / "rho_train", "target": ["rho"], "max_sims": size, "test_fraction": 0.0,
                    "abc": False, "report": False}  # fmt: skip
            s = train(
                system,
                run,
                opts,
                MODEL[system][args.rho_model_key],
                args.rho_epochs,
                args.rho_batch,
                args.fresh,
            )
            res[f"a_train_{system}_{size}"] = {"seconds": s["bench_seconds"], "epochs": s["epochs_run"]}
            frames = {th: score(run, d) for th, d in tests.items()}
            rows.append(_rho_row(system, size, frames, s["bench_seconds"]))
        if "abc" in args.rho_models_abc:
            t0 = time.perf_counter()
            ref_run = out / "runs" / f"a_{models[0]}_{size}"
            frames = {
                th: abc_frame(ref_run, sims / "rho_train", size, d, args.abc_fraction)
                for th, d in tests.items()
            }
            rows.append(_rho_row("rejection ABC", size, frames, time.perf_counter() - t0))
    table = pd.DataFrame(rows)
    res["a_table"] = table.to_dict(orient="records")
    md += ["## (a) Recombination rate (rho), Flagel et al. 2019's prior", "", _md(table), ""]
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


def _rho_row(name: str, size: int, frames: dict, seconds: float) -> dict:
    allf = pd.concat(frames.values())
    row = {"model": name, "train sims": size}
    row["R2 all"], row["RMSE all"] = r2_rmse(allf["true_rho"], allf["pred_rho"])
    for th, f in frames.items():
        row[f"R2 th{th}"], row[f"RMSE th{th}"] = r2_rmse(f["true_rho"], f["pred_rho"])
    row["fit s"] = round(seconds, 1)
    return row


# ---------------------------------------------------------------------- (b) demography
def part_b(args, out: Path, res: dict, md: list[str]) -> None:
    from biodl.kinds.popgen.simulate import ZAMBIA

    sims = Path(args.sims) if args.sims else out / "sims"
    t = simulate("sheehan-song-3epoch", args.demo_n, 2, sims / "demo", args.workers)
    res["b_sim"] = {k: t[k] for k in ("n", "seconds", "cpu_seconds")}
    z = simulate(
        "sheehan-song-3epoch", args.zambia_n, 3, sims / "demo_zambia", args.workers, fixed=dict(ZAMBIA)
    )
    res["b_sim_zambia"] = {k: z[k] for k in ("n", "seconds", "cpu_seconds")}
    rows, zrows = [], []
    targets = ["N1", "N2", "N3"]
    first, abc_m = None, None
    for system in [m for m in args.demo_models.split(",") if m]:
        run = out / "runs" / f"b_{system}"
        opts = {"data": sims / "demo", "target": targets, "test_fraction": 0.1, "abc": first is None,
                "report": True}  # fmt: skip
        if system != "popgen-mlp":
            opts["n_sites"] = args.demo_sites
        s = train(system, run, opts, MODEL[system]["b"], args.epochs, args.batch, args.fresh)
        first = first or run
        rows.append(_demo_row(system, s["test_metrics"], s["bench_seconds"]))
        zf = score(run, sims / "demo_zambia")
        zrows.append(_zambia_row(system, zf))
        abc_m = abc_m or s.get("abc_test_metrics")
    if first is not None:
        # the prior's median (no data): the prior is log-uniform around the published values
        from biodl.kinds.popgen.io import read_dataset

        test = pd.read_csv(first / "test" / "predictions.tsv", sep="\t")
        med = {k: float(np.median(read_dataset(sims / "demo").param(k))) for k in targets}
        rel = {
            f"rel_error/{k}": float(np.mean(np.abs(med[k] - test[f"true_{k}"]) / test[f"true_{k}"]))
            for k in targets
        }
        rel["rel_error"] = float(np.mean(list(rel.values())))
        rel["rmse_log10"] = float(
            np.mean(
                [np.sqrt(np.mean((np.log10(med[k]) - np.log10(test[f"true_{k}"])) ** 2)) for k in targets]
            )
        )
        rows.append(_demo_row("prior median (no data)", rel, float("nan")))
    if first is not None and abc_m:
        rows.append(_demo_row("rejection ABC", abc_m, float("nan")))
        zf = abc_frame(first, sims / "demo", None, sims / "demo_zambia", args.abc_fraction)
        zrows.append(_zambia_row("rejection ABC", zf))
    table, ztable = pd.DataFrame(rows), pd.DataFrame(zrows)
    truth = {"model": "true (published Zambia, Sheehan & Song 2016)", **{k: ZAMBIA[k] for k in targets}}
    ztable = pd.concat([pd.DataFrame([truth]), ztable], ignore_index=True)
    res["b_table"], res["b_zambia"] = table.to_dict(orient="records"), ztable.to_dict(orient="records")
    md += [
        "## (b) Demography: 3-epoch sizes (relative error |N_est - N_true| / N_true, held-out sims)",
        "",
        _md(table),
        "",
        f"Estimates for {args.zambia_n} fresh simulations at the published Zambian values (median of the "
        "per-simulation estimates; in brackets the 10-90% range):",
        "",
        _md(ztable),
        "",
    ]
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(ztable.to_string(index=False))


def _demo_row(name: str, m: dict, seconds: float) -> dict:
    row = {"model": name}
    for k in ("N1", "N2", "N3"):
        row[f"rel.err {k}"] = m[f"rel_error/{k}"]
    row["rel.err mean"] = m["rel_error"]
    row["rmse log10 mean"] = m["rmse_log10"]
    row["fit s"] = round(seconds, 1) if seconds == seconds else "-"
    return row


def _zambia_row(name: str, f: pd.DataFrame) -> dict:
    row = {"model": name}
    for k in ("N1", "N2", "N3"):
        v = f[f"pred_{k}"].to_numpy(float)
        row[k] = f"{np.median(v):,.0f} [{np.quantile(v, 0.1):,.0f}-{np.quantile(v, 0.9):,.0f}]"
    return row


# ---------------------------------------------------------------------- (c) selection
def part_c(args, out: Path, res: dict, md: list[str]) -> None:
    sims = Path(args.sims) if args.sims else out / "sims"
    t = simulate("selection", args.sel_n, 4, sims / "selection", args.workers)
    res["c_sim"] = {k: t[k] for k in ("n", "seconds", "cpu_seconds")}
    rows, cms = [], []
    abc_m = None
    for system in [m for m in args.sel_models.split(",") if m]:
        run = out / "runs" / f"c_{system}"
        opts = {"data": sims / "selection", "target": ["class"], "test_fraction": 0.1, "abc": abc_m is None,
                "report": True}  # fmt: skip
        s = train(system, run, opts, MODEL[system]["c"], args.epochs, args.batch, args.fresh)
        ev = json.loads((run / "test" / "metrics.json").read_text())
        tm = s["test_metrics"]
        rows.append(
            {
                "model": system,
                "misclassification": tm["misclassification"],
                "accuracy": tm["accuracy"],
                "n test": ev["n"],
                "fit s": round(s["bench_seconds"], 1),
            }
        )
        cms.append((system, pd.DataFrame(ev["confusion"]).T))
        abc_m = abc_m or (s.get("abc_test_metrics"), run)
    if abc_m and abc_m[0]:
        m, run = abc_m
        ev = json.loads((run / "abc" / "metrics.json").read_text())
        rows.append({"model": "rejection ABC", "misclassification": m["misclassification"],
                     "accuracy": m["accuracy"], "n test": ev["n"], "fit s": "-"})  # fmt: skip
        cms.append(("rejection ABC", pd.DataFrame(ev["confusion"]).T))
    rows.append({"model": "published (Sheehan & Song 2016, their simulations)", "misclassification": 0.062,
                 "accuracy": 0.938, "n test": "-", "fit s": "-"})  # fmt: skip
    table = pd.DataFrame(rows)
    res["c_table"] = table.to_dict(orient="records")
    res["c_confusion"] = {k: v.to_dict() for k, v in cms}
    md += ["## (c) Selection: neutral / hard sweep / soft sweep (held-out sims)", "", _md(table), ""]
    for name, cm in cms:
        cm = cm.reset_index().rename(columns={"index": "true \\ predicted"})
        md += [f"Confusion matrix, {name}:", "", _md(cm), ""]
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for name, cm in cms:
        print(name)
        print(cm.to_string())


#: Model options per part (the CPU budget of this bench: narrower than the papers' networks).
MODEL = {
    "popgen-cnn": {
        "a": {"channels": 32, "hidden": 64},
        "a_wide": {"channels": 64, "hidden": 128},
        "b": {"channels": 64, "hidden": 128},
        "c": {"channels": 64, "hidden": 128},
    },
    "popgen-mlp": {"a": {}, "b": {}, "c": {}},
    "popgen-exchangeable": {
        "a": {"channels": 16, "kernel": 3},
        "b": {"channels": 16, "kernel": 3},
        "c": {"channels": 16, "kernel": 3},
    },
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--data-dir",
        default=None,
        help=f"folder holding {PUBLISHED_SUB} (part a's published CNN / LDhat rows). Default "
        "../shared/data from the repository root, where a missing file only leaves those rows out; "
        "a --data-dir given must hold it",
    )
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "popgen"))
    ap.add_argument("--parts", default="a,b,c")
    ap.add_argument(
        "--sims", default=None, help="simulation directory (default OUT/sims; shared between runs)"
    )
    ap.add_argument("--workers", type=positive_int, default=2)
    ap.add_argument("--rho-sizes", type=int_list(1), default="1000,10000,60000")
    ap.add_argument("--rho-test", type=positive_int, default=200)
    ap.add_argument("--rho-models", default="popgen-cnn,popgen-mlp")
    ap.add_argument("--rho-models-abc", default="abc")
    ap.add_argument("--demo-n", type=positive_int, default=3000)
    ap.add_argument("--demo-sites", type=positive_int, default=512)
    ap.add_argument("--zambia-n", type=positive_int, default=50)
    ap.add_argument("--demo-models", default="popgen-mlp,popgen-cnn,popgen-exchangeable")
    ap.add_argument("--sel-n", type=positive_int, default=3000)
    ap.add_argument("--sel-models", default="popgen-mlp,popgen-cnn,popgen-exchangeable")
    ap.add_argument("--epochs", type=positive_int, default=12, help="epochs of parts b and c")
    ap.add_argument("--rho-epochs", type=positive_int, default=8)
    ap.add_argument("--rho-batch", type=positive_int, default=128)
    ap.add_argument("--rho-model-key", default="a", help="model options of part a (MODEL[...]): a or a_wide")
    ap.add_argument("--batch", type=positive_int, default=64)
    ap.add_argument("--abc-fraction", type=positive_float, default=0.01)
    ap.add_argument("--threads", type=positive_int, default=2)
    ap.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run of the whole bench")
    ap.add_argument("--fresh", action="store_true", help="retrain (simulations are kept)")
    args = ap.parse_args(argv)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    if not parts or any(p not in ("a", "b", "c") for p in parts):
        ap.error(f"--parts must be a comma-separated subset of a,b,c, got {args.parts!r}")
    # part a's published rows: a --data-dir given must hold them; the default may lack them
    missing_note = None
    if args.data_dir is not None:
        args.data_dir = str(Path(args.data_dir).expanduser().resolve())
        if "a" in parts:
            require_data(
                "popgen.py",
                args.data_dir,
                [PUBLISHED_SUB],
                PUBLISHED_SOURCE,
                hint="the published CNN / LDhat rows of part a; leave --data-dir out to run without them",
            )
    else:
        args.data_dir = str(DEFAULT_DATA_DIR)
        if "a" in parts and not (DEFAULT_DATA_DIR / PUBLISHED_SUB).exists():
            missing_note = (
                f"note: popgen.py: {DEFAULT_DATA_DIR / PUBLISHED_SUB} (the default --data-dir) is missing, "
                "so part a's published CNN / LDhat reference rows are left out of its table. "
                f"Where the data come from: {PUBLISHED_SOURCE}."
            )
            print(missing_note, file=sys.stderr, flush=True)
    if args.quick:
        quick_keys = ("rho_sizes", "rho_test", "demo_n", "zambia_n", "sel_n", "epochs")
        overridden = [k for k in quick_keys if getattr(args, k) != ap.get_default(k)]
        if overridden:
            print(
                "note: popgen.py: --quick sets its own "
                + ", ".join("--" + k.replace("_", "-") for k in overridden)
                + " (the values given are not used)",
                file=sys.stderr,
                flush=True,
            )
        args.rho_sizes, args.rho_test, args.demo_n, args.zambia_n, args.sel_n, args.epochs = (
            "200",
            20,
            200,
            5,
            200,
            2,
        )
        args.out = str(Path(args.out) / "quick")
    import torch

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res: dict = {"argv": sys.argv, "args": vars(args)}
    md: list[str] = []
    t0 = time.perf_counter()
    for part, fn in (("a", part_a), ("b", part_b), ("c", part_c)):
        if part in parts:
            tp = time.perf_counter()
            fn(args, out, res, md)
            res[f"{part}_seconds"] = time.perf_counter() - tp
    me, kids = peak_mb()
    res["total_seconds"] = time.perf_counter() - t0
    res["peak_rss_mb"] = {"bench process": me, "largest simulation worker": kids}
    md += [f"Total {res['total_seconds'] / 60:.1f} min; peak memory {me:.0f} MiB (bench process), "
           f"{kids:.0f} MiB (largest simulation worker)."]  # fmt: skip
    for k, v in res.items():
        if k.startswith(("a_sim", "b_sim", "c_sim")):
            md.append(f"- simulation {k}: {v}")
    tail = md[-8:]
    if missing_note:
        res["missing"] = missing_note
        md.append(missing_note)
    (out / "results.json").write_text(json.dumps(res, indent=2, default=str))
    (out / "tables.md").write_text("\n".join(md) + "\n")
    print("\n".join(tail))
    if missing_note:  # said at the start too; repeated where the run's output ends
        print(missing_note, file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(guarded(main))
