"""``biodl demo``: DeepBind trained end to end on a bundled real ENCODE ChIP-seq experiment."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from biodl.io._util import atomic_write_text

RESOURCES = Path(__file__).parent / "resources"
ENCODE_DIR = RESOURCES / "encode"
EXPERIMENTS = {
    "REST": "REST_GM12878_NRSF_HudsonAlpha",
    "GABPA": "GABPA_GM12878_GABP_HudsonAlpha",
}
RELEASED_AUC = {"REST": ("D00799.001", 0.9995), "GABPA": ("D00409.004", 0.9761)}


def run_demo(
    out_dir: str | Path = "biodl-demo",
    experiment: str = "REST",
    device: str = "auto",
    max_epochs: int = 15,
    seed: int = 0,
    progress: bool = True,
    quiet: bool = False,
) -> dict[str, Any]:
    """Train DeepBind on a bundled ENCODE experiment's training peaks (with shuffled
    negatives), test on its held-out B fold and write the report. Returns the summary."""
    key = experiment.upper()
    if key not in EXPERIMENTS:
        from biodl.errors import BiodlInputError

        raise BiodlInputError(f"unknown demo experiment {experiment!r}; bundled: {', '.join(EXPERIMENTS)}")
    stem = EXPERIMENTS[key]
    t0 = time.time()
    from biodl.pipeline import report as write_report
    from biodl.pipeline import train
    from biodl.registry import get_recipe
    from biodl.train import TrainConfig

    cfg = TrainConfig.for_recipe(
        get_recipe("deepbind").train_defaults,
        max_epochs=max_epochs,
        seed=seed,
        device=device,
        progress=progress,
    )
    summary = train(
        "deepbind",
        out_dir,
        options={
            "data": str(ENCODE_DIR / f"{stem}_AC.seq.gz"),
            "test_file": str(ENCODE_DIR / f"{stem}_B.seq.gz"),
        },
        config=cfg,
        quiet=quiet,
    )
    val, test = summary["val_metrics"].get("val_auroc"), summary["test_metrics"]["auroc"]
    note = (
        f"The validation AUC ({val:.3f}) and the held-out test AUC ({test:.3f}) measure different "
        "things: the validation set is a random tenth of the training set, peaks of folds A and C "
        "(weak ones included) and dinucleotide-shuffled copies of them, while the "
        "test set is DeepBind's own: the top 500 peaks of fold B, the strongest and easiest to "
        "recognise, against 500 shuffled sequences. The test AUC is the one to compare with the "
        "released DeepBind model's."
    )
    report = write_report(
        out_dir, title=f"biodl demo: DeepBind on ENCODE {key} ChIP-seq ({stem})", quiet=quiet, note=note
    )
    summary["report"] = str(report)
    summary["released_model"], summary["released_model_auc"] = RELEASED_AUC[key]
    summary["minutes"] = round((time.time() - t0) / 60, 3)
    atomic_write_text(Path(out_dir) / "summary.json", json.dumps(summary, indent=2, default=str) + "\n")
    return summary
