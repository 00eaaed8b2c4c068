"""Every headline comparison of biodl, reduced, in one command (issue 18, goal 7).

Runs each benchmark script below in its own process with small settings, collects the rows they
write (``--json``), and prints one table: each measure as min / median / max over its repeats,
the issue goal it answers, the target and whether the median meets it, and the CPU minutes each
part took. The full-size runs and their discussion are in the linked bench READMEs.

    nice -n 10 python bench/headline.py                      # everything (~20 CPU min)
    python bench/headline.py --only startup,encode,ism       # some parts
    python bench/headline.py --list

Parts that need data from ``--data-dir`` (default ``../shared/data``: ENCODE ChIP-seq, the
Delaney solubility set, real genomes) say what is missing and are reported as not run; the
others use data bundled in the repository or random inputs (``encode`` and ``variants`` use
their bundled stand-ins when the default lacks the genomes; a ``--data-dir`` given is passed on
to them, and they stop if it lacks them). A ``--data-dir`` given is checked before any part
runs: the inputs of every chosen part, or an error naming what is missing. A part asked for
with ``--only`` that does not run makes the exit status non-zero (the table is still printed).
Logs of every part go to ``--out`` (default ``bench/out/headline``), with ``headline.md`` and
``headline.json`` (left as they were when no part gave rows).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
from _rows import fmt, row  # noqa: E402
from encode_genomes import GENOME_FILES, GENOME_SUBDIR  # noqa: E402

DEEPBIND_EXPERIMENTS = "ELK1,GABPA,SRF"


def _parts(data_dir: Path, explicit: bool = True) -> dict[str, dict]:
    """name -> {args: script and arguments (``--json`` is added), needs: data paths, reader}.
    ``explicit``: ``--data-dir`` was given, and is passed on to ``encode`` and ``variants`` too
    (left out, they look for their default and fall back to bundled stand-ins)."""
    given = ["--data-dir", str(data_dir)] if explicit else []
    genomes = [data_dir / GENOME_SUBDIR / f for f in GENOME_FILES] if explicit else []
    encode_dir = data_dir / "deepbind_encode_chipseq"
    return {
        "startup": {"args": ["startup.py", "--reps", "5"]},
        "encode": {"args": ["encode_genomes.py", "--repeats", "3", *given], "needs": genomes},
        "ism": {"args": ["ism.py", "--n", "2", "--repeats", "3"]},
        "variants": {"args": ["variants.py", "--n", "1000", "--repeats", "3", *given], "needs": genomes[:1]},
        "train-deepbind": {"args": ["train_overhead.py", "--repeats", "3", "--epochs", "3"]},
        "fit-profile": {"args": ["profile_fit.py", "--epochs", "3"]},
        "train-deepsea": {
            "args": [
                "train_overhead.py",
                "--model",
                "deepsea",
                "--n",
                "384",
                "--repeats",
                "1",
                "--epochs",
                "2",
            ]
        },
        "inference": {"args": ["inference.py", "--repeats", "3"]},
        "deepbind-score": {
            "args": ["deepbind_score.py", "--n", "2000", "--repeats", "2", "--sizes", "1000000,32768"]
        },
        "deepbind-encode": {
            "args": [
                "deepbind_encode.py",
                "--experiments",
                DEEPBIND_EXPERIMENTS,
                "--data-dir",
                str(data_dir),
            ],
            "needs": [
                *(
                    encode_dir / f"{e}_*_{half}.seq.gz"
                    for e in DEEPBIND_EXPERIMENTS.split(",")
                    for half in ("AC", "B")
                ),
                encode_dir / "deepbind_released_model_auc_on_B.tsv",
                encode_dir / "deepbind_model_map.tsv",
            ],
            "out_arg": "--out",
            "reader": _read_deepbind,
        },
        "neural-fp": {
            "args": [
                "neural_fp.py",
                "--tasks",
                "delaney",
                "--folds",
                "0",
                "--models",
                "neural+NN" + (",chemprop" if _has_chemprop() else ""),
                "--data-dir",
                str(data_dir / "neural_fingerprints" / "hips"),
            ],
            "needs": [data_dir / "neural_fingerprints" / "hips" / "delaney-processed.csv"],
            "out_arg": "--out",
            "reader": _read_neural_fp,
        },
    }


def _has_chemprop() -> bool:
    import importlib.util

    return importlib.util.find_spec("chemprop") is not None


def _read_deepbind(out: Path) -> list[dict]:
    import pandas as pd

    df = pd.read_csv(out / "results.tsv", sep="\t")
    rows = []
    for _, r in df.iterrows():
        name = str(r["experiment"]).split("_")[0]
        rows.append(
            row(
                f"DeepBind ENCODE {name}: held-out AUC, biodl - released",
                [float(r["diff"])],
                unit="",
                target=">= -0.02",
                note=f"biodl {r['auc']:.4f}, released {r['released_auc_tsv']:.4f}, "
                f"{r['cpu_min']:.2f} CPU min",
            )
        )
    rows.append(
        row(
            f"DeepBind ENCODE ({len(df)} experiments): mean AUC biodl - released",
            [float(df["diff"].mean())],
            unit="",
            target=">= 0",
        )
    )
    return rows


def _read_neural_fp(out: Path) -> list[dict]:
    import pandas as pd

    df = pd.read_csv(out / "results.tsv", sep="\t")
    rows = []
    ours = df[df.model == "neural+NN"].iloc[0]
    rows.append(
        row(
            "neural FP + NN, Delaney fold 0: paper MSE / biodl MSE",
            [0.52 / float(ours["test_mse"])],
            target="",  # one fold against the paper's mean over five: a comparison, not a goal
            note=f"biodl MSE {ours['test_mse']:.3f} in {ours['seconds']:.0f} s (paper 0.52 over 5 folds)",
        )
    )
    cp = df[df.model == "chemprop"]
    if len(cp):
        c = cp.iloc[0]
        rows.append(
            row(
                "neural FP + NN vs chemprop, Delaney fold 0: chemprop MSE / biodl MSE",
                [float(c["test_mse"]) / float(ours["test_mse"])],
                target=">= 1",
                note=f"chemprop MSE {c['test_mse']:.3f} in {c['seconds']:.0f} s",
            )
        )
        rows.append(
            row(
                "neural FP + NN vs chemprop, Delaney fold 0: training time chemprop / biodl",
                [float(c["seconds"]) / max(float(ours["seconds"]), 1e-9)],
                target="",
            )
        )
    return rows


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _meets(target: str, value: float) -> str:
    m = re.match(r"\s*(<=|>=|<|>)\s*(-?[\d.]+)", target or "")
    if not m or value is None or math.isnan(value):
        return ""
    op, x = m.group(1), float(m.group(2))
    ok = {"<=": value <= x, ">=": value >= x, "<": value < x, ">": value > x}[op]
    return "yes" if ok else "**no**"


def _missing(spec: dict) -> list[str]:
    """The inputs of a part (``needs``: paths, or patterns with ``*`` that must match a file) it lacks."""
    return [
        str(p)
        for p in spec.get("needs", [])
        if not (any(Path(p).parent.glob(Path(p).name)) if "*" in Path(p).name else Path(p).exists())
    ]


def run_part(name: str, spec: dict, out_dir: Path) -> tuple[list[dict], float, float, str]:
    """Run one part; returns (rows, CPU seconds, wall seconds, status)."""
    missing = _missing(spec)
    if missing:
        return [], 0.0, 0.0, f"not run: missing {', '.join(missing)}"
    script = HERE / spec["args"][0]
    if not script.exists():
        return [], 0.0, 0.0, f"not run: {script.name} not found"
    log = out_dir / f"{name}.log"
    cmd = [sys.executable, str(script), *spec["args"][1:]]
    part_out = out_dir / name
    if "out_arg" in spec:
        import shutil

        shutil.rmtree(part_out, ignore_errors=True)  # a fresh run, not the reuse of an old one
        cmd += [spec["out_arg"], str(part_out)]
    else:
        js = out_dir / f"{name}.json"
        js.unlink(missing_ok=True)
        cmd += ["--json", str(js)]
    c0, t0 = _children_cpu(), time.perf_counter()
    with open(log, "w") as fh:
        fh.write("$ " + " ".join(cmd) + "\n")
        fh.flush()
        p = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=REPO)
    cpu, wall = _children_cpu() - c0, time.perf_counter() - t0
    if p.returncode != 0:
        return [], cpu, wall, f"failed (exit {p.returncode}): see {log}"
    try:
        rows = spec["reader"](part_out) if "reader" in spec else json.loads(js.read_text())
    except Exception as e:  # noqa: BLE001 - reported in the table, the other parts still run
        return [], cpu, wall, f"no rows ({type(e).__name__}: {e}); see {log}"
    return rows, cpu, wall, "ok"


def render(results: list[tuple[str, list[dict], float, float, str]], header: str) -> str:
    lines = [
        header,
        "",
        "| part | measure | min / median / max | goal | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for name, rows, _cpu, _wall, status in results:
        if not rows:
            lines.append(f"| {name} | {status} | | | | |")
        for r in rows:
            note = f" ({r['note']})" if r.get("note") else ""
            lines.append(
                f"| {name} | {r['measure']}{note} | {fmt(r)} | {r.get('goal', '')} | {r.get('target', '')} | "
                f"{_meets(r.get('target', ''), r['median'])} |"
            )
    lines += ["", "| part | CPU min | wall min | status |", "|---|---|---|---|"]
    for name, _rows, cpu, wall, status in results:
        lines.append(f"| {name} | {cpu / 60:.2f} | {wall / 60:.2f} | {status} |")
    total = sum(r[2] for r in results)
    lines.append(f"| all | {total / 60:.2f} | {sum(r[3] for r in results) / 60:.2f} | |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="the data folder (default ../shared/data); given, it is passed on to every part that reads "
        "data, which then stop if it lacks their files",
    )
    ap.add_argument("--only", default=None, help="comma-separated parts (see --list)")
    ap.add_argument("--skip", default=None, help="comma-separated parts to leave out")
    ap.add_argument(
        "--out",
        type=Path,
        default=REPO / "bench" / "out" / "headline",
        help="logs, headline.md and headline.json (default bench/out/headline)",
    )
    ap.add_argument("--list", action="store_true", help="list the parts and their commands, then stop")
    a = ap.parse_args(argv)
    explicit = a.data_dir is not None
    data_dir = a.data_dir if explicit else Path("../shared/data")
    parts = _parts(data_dir.resolve() if data_dir.exists() else data_dir, explicit)
    if a.list:
        for name, spec in parts.items():
            print(f"{name:16s} python bench/{' '.join(spec['args'])}")
        return 0
    chosen = list(parts)
    if a.only is not None:
        chosen = [p.strip() for p in a.only.split(",") if p.strip()]
    skip = [s.strip() for s in (a.skip or "").split(",") if s.strip()]
    unknown = [p for p in chosen + skip if p not in parts]
    if unknown:
        ap.error(f"unknown part(s) {', '.join(unknown)}; known: {', '.join(parts)}")
    chosen = [p for p in chosen if p not in skip]
    if not chosen:
        ap.error(f"no part left to run (--only {a.only!r}, --skip {a.skip!r}); known: {', '.join(parts)}")
    if explicit and any("needs" in parts[n] for n in chosen) and not a.data_dir.is_dir():
        print(
            f"error: headline.py: the data directory {a.data_dir} does not exist (--data-dir: the "
            "folder that holds genomes_mcb185/, deepbind_encode_chipseq/, ...). Where the data come "
            "from: bench/DATA.md.",
            file=sys.stderr,
        )
        return 1
    if explicit:  # a --data-dir given: every chosen part's inputs, before any part runs
        lacking = {n: m for n in chosen if (m := _missing(parts[n]))}
        if lacking:
            print(
                f"error: headline.py: --data-dir {a.data_dir} lacks the inputs of "
                f"{len(lacking)} part(s): "
                + "; ".join(f"{n}: {', '.join(m)}" for n, m in lacking.items())
                + f". Leave those parts out (--skip {','.join(lacking)}) or give the folder that holds them. "
                "Where the data come from: bench/DATA.md.",
                file=sys.stderr,
            )
            return 1
    a.out.mkdir(parents=True, exist_ok=True)
    import torch

    header = (
        f"biodl headline benchmarks, {dt.date.today().isoformat()}: python {platform.python_version()}, "
        f"torch {torch.__version__}, {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
        f"load average at start {os.getloadavg()[0]:.1f}"
    )
    print(header, flush=True)
    results = []
    for name in chosen:
        print(f"[headline] {name}: python bench/{' '.join(parts[name]['args'])}", flush=True)
        rows, cpu, wall, status = run_part(name, parts[name], a.out)
        print(f"[headline] {name}: {status}, {cpu / 60:.2f} CPU min, {wall / 60:.2f} wall min", flush=True)
        for r in rows:
            print(f"    {r['measure']}: {fmt(r)} {r.get('target', '')}", flush=True)
        results.append((name, rows, cpu, wall, status))
    text = render(results, header + f", load average at end {os.getloadavg()[0]:.1f}")
    print()
    print(text)
    if not any(r[1] for r in results):  # an empty table never replaces the last one
        print(
            f"error: headline.py: no part gave rows; {a.out / 'headline.md'} and headline.json were left "
            "as they were",
            file=sys.stderr,
        )
        return 1
    (a.out / "headline.md").write_text(text)
    (a.out / "headline.json").write_text(
        json.dumps(
            [{"part": n, "rows": r, "cpu_s": c, "wall_s": w, "status": s} for n, r, c, w, s in results],
            indent=1,
        )
        + "\n"
    )
    print(f"wrote {a.out / 'headline.md'} and {a.out / 'headline.json'}")
    # a part asked for by name (--only) must run; in the full run a part without data is left out
    not_run = [(n, s) for n, _r, _c, _w, s in results if a.only and s.startswith("not run")]
    if not_run:
        print(
            f"error: headline.py: {len(not_run)} part(s) asked for with --only did not run: "
            + "; ".join(f"{n} ({s})" for n, s in not_run)
            + ". Where the data come from: bench/DATA.md.",
            file=sys.stderr,
        )
        return 1
    return 0 if all(r[4] == "ok" or r[4].startswith("not run") for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
