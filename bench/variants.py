"""Variant scoring throughput: biodl's batched scorer vs a naive loop, same run, same numbers.

Makes N random SNVs on a real genome (the E. coli K-12 genome in ``--data-dir``/genomes_mcb185;
when ``--data-dir`` is left out and the default lacks it, the 4-kb test slice), and scores them
with a model (default: a random DeepBind of length 101; ``--model RUN_DIR`` for a trained one):

* biodl: :func:`biodl.interpret.variants.variant_windows` + ``score_variants`` (REF and ALT,
  both strands averaged, ``rc_average=True``, ``--batch-size`` variants per forward pass);
* naive: for each variant, fetch the window, one-hot it, and run two forward passes (REF and
  ALT, each with both strands).

Prints variants per second of each and the largest difference between their scores.

    nice -n 10 python bench/variants.py --n 2000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _rows import guarded, positive_int, require_data, row, writable_file, write_json  # noqa: E402

DEFAULT_DATA_DIR = "../shared/data"
GENOME = "genomes_mcb185/GCF_000005845.2_ASM584v2_genomic.fna.gz"
DATA_SOURCE = "bench/DATA.md (Sequences)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=positive_int, default=2000)
    ap.add_argument("--model", default=None, help="run directory (default: a random DeepBind, length 101)")
    ap.add_argument(
        "--data-dir",
        default=None,
        help=f"directory holding {GENOME} (default {DEFAULT_DATA_DIR}; the 4-kb test slice when the "
        "default lacks it; a --data-dir given must hold it)",
    )
    ap.add_argument("--batch-size", type=positive_int, default=256)
    ap.add_argument("--threads", type=positive_int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=positive_int, default=1, help="interleaved repeats of both scorers")
    ap.add_argument(
        "--json", type=writable_file, default=None, help="also write the rows here (for bench/headline.py)"
    )
    args = ap.parse_args()
    if args.model and not Path(args.model).expanduser().is_dir():
        ap.error(f"--model {args.model}: not a folder (give a run directory)")
    if args.data_dir is not None:  # given: the real genome or a clear stop, never the test slice
        require_data(
            "variants.py",
            Path(args.data_dir).expanduser().resolve(),
            [GENOME],
            DATA_SOURCE,
            hint="the E. coli K-12 genome; leave --data-dir out to use the 4-kb test slice instead",
        )
    torch.set_num_threads(args.threads)
    from biodl.encode import one_hot
    from biodl.interpret.variants import score_variants, variant_windows
    from biodl.io import open_genome
    from biodl.models import DeepBind
    from biodl.train import load_model

    here = Path(__file__).resolve().parent.parent
    genome = Path(args.data_dir or DEFAULT_DATA_DIR).expanduser() / GENOME
    if not genome.exists():
        print(f"{genome} not found; using the 4-kb test slice (the default --data-dir lacks the genome)")
        genome = here / "tests" / "data" / "interpret" / "ecoli_4kb.fa"
    if args.model:
        model, meta = load_model(args.model)
        length = int(meta["seq_len"])
    else:
        torch.manual_seed(args.seed)
        model, length = DeepBind(1).eval(), 101
    fa = open_genome(genome)
    chrom = list(fa.keys())[0]
    n_bases = len(fa[chrom])
    rng = np.random.default_rng(args.seed)
    pos = np.sort(rng.choice(np.arange(1, n_bases + 1), size=args.n, replace=False))
    with tempfile.TemporaryDirectory() as tmp:
        vcf = Path(tmp) / "random.vcf"
        lines = [
            "##fileformat=VCFv4.2",
            f"##contig=<ID={chrom},length={n_bases}>",
            "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO",
        ]
        for i, p in enumerate(pos):
            ref = str(fa[chrom][int(p) - 1]).upper()
            alt = "ACGT"[("ACGT".index(ref) + 1 + int(rng.integers(3))) % 4] if ref in "ACGT" else "A"
            lines.append(f"{chrom}\t{p}\tv{i}\t{ref}\t{alt}\t.\t.\t.")
        vcf.write_text("\n".join(lines) + "\n")

        t_ours, t_loop = [], []
        for rep in range(args.repeats + 1):  # the first is a warm-up (caches, allocator), not counted
            t0 = time.perf_counter()
            windows = variant_windows(vcf, genome, length)
            table = score_variants(
                model,
                windows,
                batch_size=args.batch_size,
                output_names=["out0"] if model.n_outputs == 1 else None,
                rc_average=True,  # both strands, as biodl predict scores a model trained on both
            )
            t_biodl = time.perf_counter() - t0

            t0 = time.perf_counter()
            naive = []
            half = length // 2
            with torch.no_grad():
                for p, w in zip(pos, windows, strict=True):
                    s, e = int(p) - 1 - half, int(p) - 1 - half + length
                    seq = (
                        "N" * max(0, -s)
                        + str(fa[chrom][max(s, 0) : min(e, n_bases)])
                        + "N" * max(0, e - n_bases)
                    )
                    seq = seq.upper()
                    alt = seq[:half] + w.alt + seq[half + 1 :]
                    out = []
                    for x in (seq, alt):
                        xt = torch.from_numpy(one_hot(x))[None]
                        y = model(torch.cat([xt, xt.flip(dims=(-2, -1))]))
                        out.append(torch.sigmoid(y.double().mean(0)))  # the strands' mean output
                    naive.append((out[1] - out[0]).numpy())
            t_naive = time.perf_counter() - t0
            if rep:
                t_ours.append(t_biodl)
                t_loop.append(t_naive)
    diff_cols = [c for c in table.columns if c.endswith("_diff") and "log_odds" not in c]
    ours = table[diff_cols].to_numpy()
    err = float(np.abs(ours - np.array(naive)).max())
    print(
        f"{args.n} SNVs on {genome.name} ({chrom}), window {length}, model {type(model).__name__}, "
        f"{args.threads} thread(s)"
    )
    t_biodl, t_naive = statistics.median(t_ours), statistics.median(t_loop)
    print(f"  biodl (batch {args.batch_size}): {t_biodl:7.2f} s  {args.n / t_biodl:8.0f} variants/s (median)")
    print(f"  naive loop (2 passes/variant): {t_naive:7.2f} s  {args.n / t_naive:8.0f} variants/s (median)")
    ratios = [b / a for a, b in zip(t_ours, t_loop, strict=True)]
    print(
        f"  speed-up {min(ratios):.1f} / {statistics.median(ratios):.1f} / {max(ratios):.1f}x "
        f"(min / median / max of {args.repeats}); max |score difference| {err:.2e}"
    )
    write_json(
        args.json,
        [
            row(
                "variant scoring: biodl / naive two-pass loop (speed-up)",
                ratios,
                note=f"{args.n / t_biodl:,.0f} vs {args.n / t_naive:,.0f} variants/s; max |diff| {err:.1e}",
            )
        ],
    )


if __name__ == "__main__":
    guarded(main)
