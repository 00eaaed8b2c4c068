"""Released DeepBind scoring: chunk size against throughput (issue 18, goal 3).

``biodl deepbind score`` feeds each model chunks of at most ``max_positions`` one-hot
positions (times the filter width). A million positions made a 64-100 MB input per chunk:
most of the CPU went to page faults (system time). This script scores the same sequences with
the released REST / CTCF models at several chunk sizes in one process, checks the scores agree
(to float32 rounding), and prints sequences per CPU-second (user + system) and the system share.

    python bench/deepbind_score.py --n 6000 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _rows import (  # noqa: E402
    add_unused_data_dir,
    guarded,
    int_list,
    positive_int,
    row,
    writable_file,
    write_json,
)

from biodl.models.sequence import deepbind_released as dr  # noqa: E402


def _cpu() -> tuple[float, float]:
    t = os.times()
    return t.user, t.system


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=positive_int, default=6_000, help="sequences (half 101 bp, half 500 bp)")
    ap.add_argument("--models", default="D00799.001,D00328.018", help="released model ids")
    ap.add_argument(
        "--sizes", type=int_list(1), default="1000000,300000,100000,32768,10000", help="max_positions to try"
    )
    ap.add_argument("--repeats", type=positive_int, default=3)
    ap.add_argument(
        "--json", type=writable_file, default=None, help="also write the rows here (for bench/headline.py)"
    )
    add_unused_data_dir(ap, "random sequences and the bundled released models")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    alphabet = np.frombuffer(b"ACGT", dtype="S1")
    seqs = [rng.choice(alphabet, 101 if i % 2 else 500).tobytes().decode() for i in range(args.n)]
    models = [dr.load_released(m) for m in args.models.split(",")]
    sizes = [int(s) for s in args.sizes.split(",")]
    ref = {}
    rows = []
    all_rates: dict[int, list[float]] = {}
    maxdiff = 0.0
    for size in sizes:
        rates, sys_share = [], []
        for _ in range(args.repeats):
            u0, s0 = _cpu()
            got = [dr._score_model(m, seqs, max_positions=size) for m in models]
            u1, s1 = _cpu()
            cpu = (u1 - u0) + (s1 - s0)
            rates.append(len(seqs) * len(models) / cpu)
            all_rates.setdefault(size, []).append(rates[-1])
            sys_share.append((s1 - s0) / cpu)
            for k, g in enumerate(got):
                if k not in ref:
                    ref[k] = g
                    continue
                # chunking changes only the GEMM blocking: float32 rounding, nothing more
                d = float(np.max(np.abs(ref[k] - g) / np.maximum(1.0, np.abs(ref[k]))))
                maxdiff = max(maxdiff, d)
                if d > 1e-5:
                    raise SystemExit(f"max_positions={size}: scores differ from the first size by {d:.2e}")
        rows.append((size, min(rates), statistics.median(rates), max(rates), statistics.median(sys_share)))
    default = dr._score_model.__defaults__[0]
    print(
        f"{args.n} sequences (101 and 500 bp) x {len(models)} released models, 1 thread; "
        f"default max_positions {default}"
    )
    print("\n| max_positions | seq x model / CPU-s (min / median / max) | system share | vs 1,000,000 |")
    print("|---|---|---|---|")
    base = rows[0][2]
    for size, lo, med, hi, sysf in rows:
        print(f"| {size:,} | {lo:,.0f} / {med:,.0f} / {hi:,.0f} | {sysf:.0%} | {med / base:.2f}x |")
    print(f"\nscores equal at every size to {maxdiff:.1e} (relative; float32 rounding of the GEMM blocking)")
    out = [
        row(
            "released DeepBind scoring: sequences x models per CPU-second, default chunks",
            all_rates.get(default, []),
            goal="3",
            unit="/s",
        )
    ]
    if sizes[0] != default and default in all_rates:
        out.append(
            row(
                f"released DeepBind scoring: default chunks ({default:,} positions) / {sizes[0]:,}",
                [a / b for a, b in zip(all_rates[default], all_rates[sizes[0]], strict=True)],
                goal="3",
                target=">= 1",
                note=f"system share {dict((r[0], r[4]) for r in rows)[default]:.0%}",
            )
        )
    write_json(args.json, out)


if __name__ == "__main__":
    guarded(main)
