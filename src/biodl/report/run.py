"""The report of a training run: ``biodl report RUN_DIR``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from biodl.api import load_table
from biodl.data.sequences import SequenceDataset
from biodl.interpret.filters import filter_pwms
from biodl.io._util import atomic_write_text
from biodl.train.engine import load_model


def write_run_report(
    run_dir: str | Path, test_file: str | Path | None = None, title: str | None = None, n_logos: int = 16
) -> Path:
    """Write ``report.html`` (self-contained) and its PNGs for a trained run directory:
    test metrics, ROC and PR curves, learning curves and first-layer filter logos."""
    from biodl.report import (
        Section,
        plot_learning_curves,
        plot_logos,
        pwm_information_content,
        write_html_report,
    )

    run = Path(run_dir)
    model, meta = load_model(run / "model.pt")
    summary = json.loads((run / "summary.json").read_text()) if (run / "summary.json").exists() else {}
    sections = []
    overview = {
        "system": meta["recipe"],
        "task": meta["task"],
        "training file": meta.get("train_file"),
        "training sequences": meta.get("n_train"),
        "validation sequences": meta.get("n_valid"),
        "sequence length": meta.get("seq_len"),
        "best epoch": meta.get("best_epoch"),
    }
    overview.update({k: v for k, v in (meta.get("val_metrics") or {}).items()})
    sections.append(Section("Run", text=f"Model directory: {run}", table=overview))
    test_dir = run / "test"
    if (test_dir / "metrics.json").exists():
        tm = json.loads((test_dir / "metrics.json").read_text())
        imgs = [p for p in (test_dir / "roc.png", test_dir / "pr.png") if p.exists()]
        sections.append(
            Section(
                "Held-out test set",
                text=f"{tm['n']} sequences from {tm['data']}.",
                table={k: v for k, v in tm["metrics"].items()},
                images=imgs,
            )
        )
    if (run / "history.csv").exists():
        hist = pd.read_csv(run / "history.csv")
        if len(hist):
            plot_learning_curves(hist, run / "learning_curves.png")
            sections.append(Section("Learning curves", images=[run / "learning_curves.png"]))
    src = test_file or (summary.get("test_file"))
    if src is None and (test_dir / "metrics.json").exists():
        src = json.loads((test_dir / "metrics.json").read_text())["data"]
    if src is not None:
        table = load_table(src, require_labels=False, iupac_as_n=meta.get("iupac_as_n", False))
        if table.labels is not None and meta["task"] in ("binary", "multilabel"):
            pos = np.nansum(table.labels, axis=1) > 0
            if pos.any():
                table = table.subset(np.flatnonzero(pos))
        ds = SequenceDataset(table, length=meta.get("seq_len"), n_value=meta.get("n_value", 0.25))
        x = torch.stack([ds[i][0] for i in range(len(ds))])
        pwms, n_sites = filter_pwms(model, x)
        ic = np.array([pwm_information_content(p) for p in pwms])
        order = np.argsort(-ic)[:n_logos]
        names = [f"filter {int(i)} ({int(n_sites[i])} sites)" for i in order]
        plot_logos([pwms[i] for i in order], run / "filters.png", names=names)
        write_meme(run / "filters.meme", pwms, n_sites)
        sections.append(
            Section(
                "First-layer filters",
                text="Position probability matrices from the windows of the positive test sequences that "
                "activate "
                "each filter to at least half of its maximum (Kelley et al. 2016), ordered by information "
                "content. All filters are written in MEME format to filters.meme.",
                images=[run / "filters.png"],
            )
        )
    out = write_html_report(run / "report.html", title or f"biodl {meta['recipe']} report", sections)
    return out


def write_meme(path: Path, pwms: np.ndarray, n_sites: np.ndarray) -> None:
    lines = [
        "MEME version 4",
        "",
        "ALPHABET= ACGT",
        "",
        "strands: + -",
        "",
        "Background letter frequencies",
        "A 0.25 C 0.25 G 0.25 T 0.25",
        "",
    ]
    for i, (p, n) in enumerate(zip(pwms, n_sites, strict=True)):
        lines += [
            f"MOTIF filter{i}",
            "",
            f"letter-probability matrix: alength= 4 w= {p.shape[0]} nsites= {max(int(n), 1)} E= 0",
        ]
        lines += [" ".join(f"{v:.6f}" for v in row) for row in p]
        lines.append("")
    atomic_write_text(path, "\n".join(lines))
