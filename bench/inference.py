"""`biodl predict` with a DeepSEA-size model: inference against the CPU's GEMM peak, and the
cost of the prediction output (issue 18, goal 2).

A DeepSEA network of the paper's size (919 outputs, 1000-bp input, ~1.1 GFLOP a sequence;
random weights) is saved as a multi-label run with decision thresholds, and ``n`` random
sequences are written as FASTA. Each repeat then measures, on one torch thread by default:

* the matmul peak: a 2048 x 2048 float32 ``torch.mm``, best of 3 (FLOP/s);
* the forward alone on one pre-encoded batch, per ``--batch-sizes``: FLOP/s (FLOPs from
  ``torch.utils.flop_counter.FlopCounterMode``) and the fraction of the peak of that repeat;
* the predict path's model loop (the kind's ``score``: one-hot encoding, batching, the
  forward; batch 256, ``biodl predict``'s default) the same way;
* the prediction table built from the outputs (``frame``) and each output format written
  (``--formats``), as a fraction of the model loop's time (goal: <= 0.10).

Times are CPU seconds of the process by default (``--clock cpu``): on a shared machine a
descheduled process does not count, so the peak and the model are measured alike; ``--clock
wall`` uses the wall clock. Each measure is printed as min / median / max over ``--repeats``.

    nice -n 10 python bench/inference.py                          # 2,000 sequences, 3 repeats
    nice -n 10 python bench/inference.py --n 500 --repeats 2 --formats tsv,npz
    nice -n 10 python bench/inference.py --pandas                 # also pandas' to_csv (before)

``run()`` returns the rows for ``bench/headline.py``; importing this module is cheap (torch and
biodl are imported when it runs). Parquet is skipped when pyarrow is not installed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _rows import (  # noqa: E402
    add_unused_data_dir,
    guarded,
    int_list,
    names_of,
    positive_int,
    row,
    writable_file,
    write_json,
)

GOAL = "2"
OUTPUTS, LENGTH = 919, 1000
SUFFIX = {"tsv": "tsv", "csv": "csv", "npz": "npz", "h5": "h5", "parquet": "parquet", "tsv.gz": "tsv.gz"}


def _clock(kind: str):
    return time.process_time if kind == "cpu" else time.perf_counter


def _peak(clock, size: int = 2048, reps: int = 3) -> float:
    """FLOP/s of the best of ``reps`` float32 ``size`` x ``size`` matmuls."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(reps):
        t0 = clock()
        torch.mm(a, b)
        best = min(best, clock() - t0)
    return 2 * size**3 / best


def _setup(tmp: Path, n: int, seed: int):
    """A saved DeepSEA-size multi-label run and ``n`` random sequences: (model, meta, kind,
    table, options)."""
    import numpy as np
    import torch

    from biodl.kinds import get_kind
    from biodl.pipeline import kind_options
    from biodl.registry import get_recipe
    from biodl.train.checkpoint import RunMeta, load_model, save_model

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    kwargs = dict(n_outputs=OUTPUTS, seq_len=LENGTH)
    meta = RunMeta(
        kind="sequences",
        recipe="deepsea",
        task="multilabel",
        model_kwargs=kwargs,
        label_names=[f"feature{j:03d}" for j in range(OUTPUTS)],
        data={"seq_len": LENGTH},
        thresholds={"values": rng.uniform(0.05, 0.95, OUTPUTS).round(4).tolist()},
        status="finished",
    )
    save_model(tmp / "model.pt", get_recipe("deepsea").build(**kwargs), meta)
    codes = np.frombuffer(b"ACGT", np.uint8)[rng.integers(0, 4, (n, LENGTH))]
    (tmp / "seqs.fa").write_bytes(b"".join(b">seq%d\n%s\n" % (i, r.tobytes()) for i, r in enumerate(codes)))
    model, meta = load_model(tmp / "model.pt")
    k = get_kind(meta.kind)
    recipe = get_recipe(meta.recipe)
    opts, _ = kind_options(recipe, k, {}, "predict")
    table = k.read(meta, tmp / "seqs.fa", opts, labelled=False, quiet=True)
    return model, meta, k, table, opts


def _flops_per_sequence(model) -> int:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.zeros(1, 4, LENGTH)
    x[:, 0] = 1
    with torch.inference_mode(), FlopCounterMode(display=False) as fc:
        model(x)
    return int(fc.get_total_flops())


def run(
    n: int = 2000,
    repeats: int = 3,
    threads: int = 1,
    *,
    batch_sizes: tuple[int, ...] = (64, 256),
    predict_batch: int = 256,
    formats: tuple[str, ...] = ("tsv", "csv", "npz", "h5", "parquet"),
    clock: str = "cpu",
    seed: int = 0,
    pandas: bool = False,
    verbose: bool = False,
) -> list[dict]:
    """The measures as ``bench/_rows.py`` rows (``measure``, ``min`` / ``median`` / ``max``
    over the repeats, ``unit``, ``goal``, ``target``, ``note``)."""
    import importlib.util
    import warnings

    import torch

    from biodl.io.predictions import FLOAT_FORMAT, write_predictions

    if "parquet" in formats and importlib.util.find_spec("pyarrow") is None:
        formats = tuple(f for f in formats if f != "parquet")
        if verbose:
            print("[bench] pyarrow is not installed: parquet skipped")
    tick = _clock(clock)
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    m: dict[str, list[float]] = {}

    def add(key: str, v: float) -> None:
        m.setdefault(key, []).append(v)

    try:
        with tempfile.TemporaryDirectory(prefix="biodl-inference-") as d:
            tmp = Path(d)
            model, meta, k, table, opts = _setup(tmp, n, seed)
            flops = _flops_per_sequence(model)
            from biodl.kinds.sequences.kind import sequence_dataset

            ds = sequence_dataset(meta, table)
            for r in range(repeats):
                peak = _peak(tick)
                add("peak", peak)
                with torch.inference_mode():
                    for bs in batch_sizes:
                        x = ds.__getitems__(list(range(min(bs, n))))[0]
                        model(x)  # warm
                        k_reps = max(1, 256 // len(x))
                        t0 = tick()
                        for _ in range(k_reps):
                            model(x)
                        f = flops * len(x) * k_reps / (tick() - t0)
                        add(f"fwd{bs}", f)
                        add(f"fwd{bs}_frac", f / peak)
                t0 = tick()
                outputs, _ = k.score(model, meta, table, device="cpu", options=opts, batch_size=predict_batch)
                t_model = tick() - t0
                add("model_s", t_model)
                add("model_frac", flops * n / t_model / peak)
                add("model_ms", t_model / n * 1e3)
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    t0 = tick()
                    df = k.frame(meta, table, outputs)
                    t_frame = tick() - t0
                add("frame", t_frame / t_model)
                add("frame_warnings", len(caught))
                for fmt in formats:
                    t0 = tick()
                    write_predictions(df, tmp / f"p.{SUFFIX[fmt]}", header=k.predictions_header(df))
                    t_w = tick() - t0
                    add(f"out_{fmt}", (t_frame + t_w) / t_model)
                    add(f"out_{fmt}_s", t_w)
                if pandas:
                    t0 = tick()
                    df.to_csv(sep="\t", index=False, float_format=FLOAT_FORMAT)
                    add("pandas", (t_frame + tick() - t0) / t_model)
                if verbose:
                    outs = ", ".join(f"{f} {m[f'out_{f}'][-1]:.3f}" for f in formats)
                    print(
                        f"[bench] repeat {r + 1}: peak {peak / 1e9:.1f} GFLOP/s, model loop "
                        f"{t_model:.1f} s ({m['model_frac'][-1]:.2f} of peak), frame {m['frame'][-1]:.3f}, "
                        f"output / model time: {outs}",
                        flush=True,
                    )
    finally:
        torch.set_num_threads(old_threads)

    g = [v / 1e9 for v in m["peak"]]
    note = f"{threads} thread(s), {clock} clock"
    rows = [
        row("matmul peak (2048^2 float32 torch.mm)", g, unit=" GFLOP/s", note=note),
        row("DeepSEA-size FLOPs per sequence (FlopCounterMode)", [flops / 1e9], unit=" GFLOP"),
    ]
    for bs in batch_sizes:
        rows.append(row(f"forward alone, batch {bs}", [v / 1e9 for v in m[f"fwd{bs}"]], unit=" GFLOP/s"))
        rows.append(row(f"forward alone, batch {bs}: fraction of matmul peak", m[f"fwd{bs}_frac"], unit=""))
    rows += [
        row(f"predict model loop, batch {predict_batch}", m["model_ms"], unit=" ms/seq", note=f"n={n}"),
        row(
            f"predict model loop (encode + forward), batch {predict_batch}: fraction of matmul peak",
            m["model_frac"],
            goal=GOAL,
            target=">= 0.70",
            unit="",
        ),
        row(
            "prediction frame / model time",
            m["frame"],
            goal=GOAL,
            target="<= 0.10",
            unit="",
            note=f"{OUTPUTS * 3 + 1} columns, {int(max(m['frame_warnings']))} pandas warnings",
        ),
    ]
    for fmt in formats:
        rows.append(
            row(
                f"output {fmt} (frame + write) / model time",
                m[f"out_{fmt}"],
                goal=GOAL,
                target="<= 0.10",
                unit="",
                note=f"write {sorted(m[f'out_{fmt}_s'])[len(m[f'out_{fmt}_s']) // 2]:.2f} s",
            )
        )
    if pandas:
        rows.append(row("output tsv through pandas to_csv (before) / model time", m["pandas"], unit=""))
    return rows


def table(rows: list[dict]) -> str:
    def f(x: float) -> str:
        a = abs(x)
        return f"{x:,.0f}" if a >= 1000 else f"{x:.2f}" if a >= 0.1 else f"{x:.3g}"

    lines = ["| measure | min | median | max | unit | target |", "|---|---|---|---|---|---|"]
    for r in rows:
        note = f" ({r['note']})" if r.get("note") else ""
        lines.append(
            f"| {r['measure']}{note} | {f(r['min'])} | {f(r['median'])} | {f(r['max'])} | "
            f"{r['unit'].strip()} | {r.get('target', '')} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=positive_int, default=2000, help="random 1000-bp sequences")
    ap.add_argument("--repeats", type=positive_int, default=3)
    ap.add_argument("--threads", type=positive_int, default=1, help="torch CPU threads")
    ap.add_argument(
        "--batch-sizes", type=int_list(1), default="64,256", help="batch sizes of the forward alone"
    )
    ap.add_argument("--predict-batch", type=positive_int, default=256, help="batch size of the predict path")
    ap.add_argument(
        "--formats",
        type=names_of(SUFFIX, "format"),
        default="tsv,csv,npz,h5,parquet",
        help="outputs to write (also tsv.gz)",
    )
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    ap.add_argument("--pandas", action="store_true", help="also time pandas' to_csv (the writer before)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--json", type=writable_file, default=None, help="also write the rows here (for bench/headline.py)"
    )
    add_unused_data_dir(ap, "random sequences and a random model")
    args = ap.parse_args(argv)
    import torch

    print(
        f"torch {torch.__version__}, {args.threads} thread(s), {args.n} sequences of {LENGTH} bp, "
        f"{OUTPUTS} outputs, {args.repeats} repeats, {args.clock} clock, load average "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}",
        flush=True,
    )
    rows = run(
        args.n,
        args.repeats,
        args.threads,
        batch_sizes=tuple(int(b) for b in args.batch_sizes.split(",")),
        predict_batch=args.predict_batch,
        formats=tuple(args.formats.split(",")),
        clock=args.clock,
        seed=args.seed,
        pandas=args.pandas,
        verbose=True,
    )
    print(table(rows))
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    write_json(args.json, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(guarded(main))
