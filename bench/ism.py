"""In-silico saturation mutagenesis: biodl vs tangermeme, same models, same sequences.

Runs :func:`biodl.interpret.saturation_mutagenesis` and tangermeme's
``saturation_mutagenesis(..., raw_outputs=True)`` (default ``fast=True``, i.e. its own
fastISM through ``torch.export``) on randomly initialised DeepSEA (919 outputs, 1000 bp) and
Basset (164 outputs, 600 bp) models in eval mode, on the same random one-hot sequences, on
the CPU with one thread, batch size 128 for both. The two tools run interleaved
(``repeats`` rounds, alternating which goes first) and the speed ratio (tangermeme time /
biodl time) is printed as min / median / max over the rounds, with the largest absolute
difference of the effects (alt minus reference).

    nice -n 10 python bench/ism.py                    # DeepSEA and Basset, 2 sequences, 3 rounds
    nice -n 10 python bench/ism.py --n 4 --repeats 5 --models basset
    nice -n 10 python bench/ism.py --precision bf16-mixed   # biodl in bf16 (not the goal's setting)

``run()`` returns the rows for ``bench/headline.py``; importing this module is cheap (torch,
biodl and tangermeme are imported when it runs).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _rows import add_unused_data_dir, guarded, names_of, positive_int, writable_file  # noqa: E402

GOAL = 4.0  # issue 18: >= 4x tangermeme on DeepSEA-size models, identical outputs
MODELS = {"deepsea": (919, 1000), "basset": (164, 600)}


def _model(name: str):
    from biodl.models import Basset, DeepSEA

    outputs, length = MODELS[name]
    return (DeepSEA if name == "deepsea" else Basset)(outputs, length).eval()


def _sequences(n: int, length: int, seed: int):
    import torch

    g = torch.Generator().manual_seed(seed)
    X = torch.nn.functional.one_hot(torch.randint(0, 4, (n, length), generator=g), 4)
    return X.permute(0, 2, 1).float().contiguous()


def _tangermeme(model, X, batch_size: int, fast: bool):
    from tangermeme.saturation_mutagenesis import saturation_mutagenesis as tm_ism

    y0, y_hat = tm_ism(model, X, raw_outputs=True, batch_size=batch_size, device="cpu", fast=fast)
    # y_hat (n, 4, L, outputs) -> effects (n, L, 4, outputs)
    return (y_hat - y0[:, None, None, :]).permute(0, 2, 1, 3)


def run(
    n: int = 2,
    repeats: int = 3,
    models: tuple[str, ...] = ("deepsea", "basset"),
    *,
    batch_size: int = 128,
    threads: int = 1,
    seed: int = 0,
    tangermeme_fast: bool = True,
    precision: str = "32-true",
    verbose: bool = False,
) -> list[dict]:
    """Time biodl and tangermeme ISM, interleaved; one row per model.

    Each row: ``name``, ``model``, ``method`` (biodl's ISM path), ``n``, ``length``,
    ``edits``, ``biodl_s`` / ``tangermeme_s`` (median wall-clock seconds), ``ratio_min`` /
    ``ratio_median`` / ``ratio_max`` (tangermeme / biodl wall-clock time per round),
    ``cpu_ratio_median`` (the same with process CPU time, which a loaded machine disturbs
    less), ``goal`` (the ratio wanted, 4.0), ``max_abs_diff`` (largest |effect difference|
    over all rounds) and ``max_abs_effect``.
    """
    import torch

    from biodl.interpret.ism import ism_method, saturation_mutagenesis

    torch.set_num_threads(threads)
    rows = []
    for name in models:
        torch.manual_seed(seed)
        model = _model(name)
        length = MODELS[name][1]
        X = _sequences(n, length, seed + 1)
        t_ours, t_tm, c_ours, c_tm, diff, scale = [], [], [], [], 0.0, 0.0
        for r in range(repeats):
            got = {}
            order = ("biodl", "tangermeme") if r % 2 == 0 else ("tangermeme", "biodl")
            for who in order:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    t0, c0 = time.perf_counter(), time.process_time()
                    if who == "biodl":
                        got[who] = saturation_mutagenesis(
                            model, X, batch_size=batch_size, precision=precision
                        )
                    else:
                        got[who] = _tangermeme(model, X, batch_size, tangermeme_fast)
                    (t_ours if who == "biodl" else t_tm).append(time.perf_counter() - t0)
                    (c_ours if who == "biodl" else c_tm).append(time.process_time() - c0)
            diff = max(diff, float((got["biodl"] - got["tangermeme"]).abs().max()))
            scale = max(scale, float(got["tangermeme"].abs().max()))
            if verbose:
                print(
                    f"  {name} round {r + 1}: biodl {t_ours[-1]:.2f} s (CPU {c_ours[-1]:.2f} s), "
                    f"tangermeme {t_tm[-1]:.2f} s (CPU {c_tm[-1]:.2f} s)"
                )
        ratios = [b / a for a, b in zip(t_ours, t_tm, strict=True)]
        rows.append(
            {
                "name": f"ISM {'DeepSEA' if name == 'deepsea' else 'Basset'} vs tangermeme",
                "model": name,
                "method": ism_method(model, length),
                "n": n,
                "length": length,
                "edits": n * length * 3,
                "biodl_s": statistics.median(t_ours),
                "tangermeme_s": statistics.median(t_tm),
                "ratio_min": min(ratios),
                "ratio_median": statistics.median(ratios),
                "ratio_max": max(ratios),
                "cpu_ratio_median": statistics.median(b / a for a, b in zip(c_ours, c_tm, strict=True)),
                "goal": GOAL,
                "max_abs_diff": diff,
                "max_abs_effect": scale,
            }
        )
    return rows


def table(rows: list[dict]) -> str:
    lines = [
        f"{'model':8s} {'path':6s} {'edits':>6s} {'biodl s':>8s} {'tangermeme s':>12s} "
        f"{'ratio min/median/max':>21s} {'CPU ratio':>9s} {'goal':>5s} "
        f"{'max |diff|':>10s} {'max |effect|':>12s}"
    ]
    for r in rows:
        ratio = f"{r['ratio_min']:.1f} / {r['ratio_median']:.1f} / {r['ratio_max']:.1f}"
        lines.append(
            f"{r['model']:8s} {r['method']:6s} {r['edits']:6d} {r['biodl_s']:8.2f} {r['tangermeme_s']:12.2f} "
            f"{ratio:>21s} {r['cpu_ratio_median']:9.1f} {r['goal']:4.0f}x {r['max_abs_diff']:10.2e} "
            f"{r['max_abs_effect']:12.2e}"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=positive_int, default=2, help="sequences per model")
    ap.add_argument("--repeats", type=positive_int, default=3, help="interleaved rounds")
    ap.add_argument("--models", type=names_of(MODELS, "model"), default="deepsea,basset")
    ap.add_argument("--batch-size", type=positive_int, default=128)
    ap.add_argument("--threads", type=positive_int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--precision", default="32-true", help="biodl's precision (32-true, bf16-mixed)")
    ap.add_argument(
        "--tangermeme-fast", choices=["true", "false"], default="true", help="tangermeme's fast= option"
    )
    ap.add_argument(
        "--json", type=writable_file, default=None, help="also write the rows here (for bench/headline.py)"
    )
    add_unused_data_dir(ap, "random sequences and random models")
    args = ap.parse_args()
    import os

    import torch
    from _rows import require_peer

    require_peer("tangermeme")
    print(
        f"torch {torch.__version__}, {args.threads} thread(s), {args.n} sequence(s) per model, "
        f"batch size {args.batch_size}, {args.repeats} interleaved rounds, biodl precision "
        f"{args.precision}, tangermeme fast={args.tangermeme_fast}, load average "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    rows = run(
        args.n,
        args.repeats,
        tuple(m.strip() for m in args.models.split(",") if m.strip()),
        batch_size=args.batch_size,
        threads=args.threads,
        seed=args.seed,
        tangermeme_fast=args.tangermeme_fast == "true",
        precision=args.precision,
        verbose=True,
    )
    print(table(rows))
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    if args.json:
        from _rows import summary_row, write_json

        write_json(
            args.json,
            [
                summary_row(
                    f"ISM {r['model']} ({r['edits']:,} edits): tangermeme time / biodl time",
                    r["ratio_min"],
                    r["ratio_median"],
                    r["ratio_max"],
                    args.repeats,
                    goal="5",
                    target=f">= {r['goal']:g}x" if r["model"] == "deepsea" else "",
                    note=f"max |diff| {r['max_abs_diff']:.1e}, CPU-time ratio {r['cpu_ratio_median']:.1f}x",
                )
                for r in rows
            ],
        )


if __name__ == "__main__":
    guarded(main)
