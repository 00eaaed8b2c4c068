"""Where the time of ``biodl train`` goes (issue 18): Lightning's SimpleProfiler over a DeepBind
fit on the demo's REST data, 1 torch thread, summarised per loop action as a share of the fit.

    nice -n 10 python bench/profile_fit.py --epochs 3

The same profile comes from any training run with ``biodl train ... --profiler simple``
(``OUT/fit-profile.txt``). Shares are of the profiled fit (training epochs with their
validation). The training step is biodl's own (Lightning's manual optimisation: zero_grad,
forward + loss, backward, the optimiser's step), profiled in those parts.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _rows import add_unused_data_dir, guarded, positive_int, row, writable_file, write_json  # noqa: E402

SHORT = {
    "run_training_epoch": "fit (training epochs with their validation)",
    "backward": "backward",
    "forward + loss": "forward + loss",
    "optimizer_step": "optimiser step (AdamW update)",
    "[_TrainingEpochLoop].train_dataloader_next": "next training batch (a row gather of the cached one-hot)",
    "[Strategy]SingleDeviceStrategy.validation_step": "validation forward",
    "[_EvaluationLoop].val_next": "next validation batch",
    "save_checkpoint": "checkpoints (best + last)",
}


def parse_profile(text: str) -> dict[str, tuple[int, float]]:
    """action -> (calls, total seconds) from a SimpleProfiler report."""
    out = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("\t|")]
        if len(cells) >= 4 and re.fullmatch(r"[\d.e-]+", cells[3] or "x"):
            try:
                out[cells[0]] = (int(cells[2]), float(cells[3]))
            except ValueError:
                continue
    return out


def run(epochs: int = 3, seed: int = 0, log=print) -> list[dict]:
    import torch
    from train_overhead import REST, _biodl_run

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        _biodl_run("deepbind", {"data": str(REST)}, epochs, Path(tmp), seed, profiler="simple")
        prof = parse_profile((Path(tmp) / "fit-profile.txt").read_text())
    fit = prof["run_training_epoch"][1]
    shares = {}
    for key, name in SHORT.items():
        if key in prof and key != "run_training_epoch":
            shares[name] = prof[key][1] / fit
    step = prof.get("[Strategy]SingleDeviceStrategy.training_step", (0, 0.0))[1]
    inside = sum(prof.get(k, (0, 0.0))[1] for k in ("forward + loss", "backward", "optimizer_step"))
    shares["rest of the training step (zero_grad, the loss's running sum, Lightning's call)"] = (
        step - inside
    ) / fit
    shares["everything else in the epoch (epoch hooks, logging, metrics, sampler)"] = 1.0 - sum(
        shares.values()
    )
    log(f"DeepBind on REST, {epochs} epochs, 1 thread: fit {fit:.2f} s ({fit / epochs:.2f} s/epoch)")
    log("\n| where | share of the fit |\n|---|---|")
    for name, v in sorted(shares.items(), key=lambda kv: -kv[1]):
        log(f"| {name} | {v:.1%} |")
    return [row(f"fit profile: {name}", [100 * v], unit="%") for name, v in shares.items()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=positive_int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--json", type=writable_file, default=None, help="also write the rows here (for bench/headline.py)"
    )
    add_unused_data_dir(ap, "the bundled REST data")
    a = ap.parse_args()
    write_json(a.json, run(a.epochs, a.seed))


if __name__ == "__main__":
    guarded(main)
