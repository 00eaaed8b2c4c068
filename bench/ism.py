"""In-silico saturation mutagenesis: biodl vs tangermeme, same models, same sequences.

Runs :func:`biodl.interpret.saturation_mutagenesis` and tangermeme's
``saturation_mutagenesis(..., raw_outputs=True)`` (``tangermeme.saturation_mutagenesis``,
default ``fast=True``, i.e. its own fastISM through ``torch.export``) on randomly
initialised DeepSEA (919 outputs, 1000 bp) and Basset (164 outputs, 600 bp) models in eval
mode, on the same random one-hot sequences, on the CPU with one thread. Prints the largest
absolute difference of the effects (alt minus reference) and the speed ratio.

    nice -n 10 python bench/ism.py                    # DeepSEA and Basset, 2 sequences each
    nice -n 10 python bench/ism.py --n 4 --models basset --tangermeme-fast both
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch


def _tangermeme(model, X, batch_size, fast):
    from tangermeme.saturation_mutagenesis import saturation_mutagenesis as tm_ism

    y0, y_hat = tm_ism(model, X, raw_outputs=True, batch_size=batch_size, device="cpu", fast=fast)
    # y_hat (n, 4, L, outputs) -> effects (n, L, 4, outputs)
    return (y_hat - y0[:, None, None, :]).permute(0, 2, 1, 3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2, help="sequences per model")
    ap.add_argument("--models", default="deepsea,basset")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--tangermeme-fast",
        choices=["true", "false", "both"],
        default="true",
        help="tangermeme's fast= option (its default is true)",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    from biodl.interpret.ism import ism_method, saturation_mutagenesis
    from biodl.models import Basset, DeepSEA

    builders = {"deepsea": lambda: DeepSEA(919, 1000), "basset": lambda: Basset(164, 600)}
    lengths = {"deepsea": 1000, "basset": 600}
    print(
        f"torch {torch.__version__}, {args.threads} thread(s), {args.n} sequence(s) per model, "
        f"batch size {args.batch_size}"
    )
    for name in args.models.split(","):
        torch.manual_seed(args.seed)
        model = builders[name]().eval()
        g = torch.Generator().manual_seed(args.seed + 1)
        X = torch.nn.functional.one_hot(torch.randint(0, 4, (args.n, lengths[name]), generator=g), 4)
        X = X.permute(0, 2, 1).float().contiguous()
        t0 = time.perf_counter()
        ours = saturation_mutagenesis(model, X, batch_size=args.batch_size)
        t_ours = time.perf_counter() - t0
        print(
            f"\n{name}: {args.n} x {lengths[name]} bp, {ours.shape[-1]} outputs, "
            f"{args.n * lengths[name] * 3} edits"
        )
        print(f"  biodl ({ism_method(model, lengths[name])}): {t_ours:8.2f} s")
        fasts = [True, False] if args.tangermeme_fast == "both" else [args.tangermeme_fast == "true"]
        for fast in fasts:
            t0 = time.perf_counter()
            theirs = _tangermeme(model, X, args.batch_size, fast)
            t_tm = time.perf_counter() - t0
            diff = float((ours - theirs).abs().max())
            scale = float(theirs.abs().max())
            print(
                f"  tangermeme (fast={fast}): {t_tm:8.2f} s   speed ratio {t_tm / t_ours:5.1f}x   "
                f"max |diff| {diff:.2e} (max |effect| {scale:.2e})"
            )


if __name__ == "__main__":
    main()
