"""The run report renders in headless Chromium: screenshot non-blank, every image embedded.

Chromium is required (``apt-get install -y chromium``): the test fails, not skips, without it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from biodl.interpret.variants import run_variants
from biodl.models import DeepBind
from biodl.pipeline import evaluate
from biodl.pipeline import report as write_run_report
from tests.conftest import save_legacy_model

torch.set_num_threads(1)
DATA = Path(__file__).parent / "data" / "interpret"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
        if path:
            return path
    pytest.fail(
        "chromium is not installed: apt-get install -y chromium (needed to check the HTML report renders)"
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory, rest_small) -> Path:
    run = tmp_path_factory.mktemp("browser_run")
    torch.manual_seed(0)
    kw = dict(
        n_outputs=1, num_motifs=6, motif_len=10, hidden=8, pool="max", dropout=0.5, reverse_complement=True
    )
    meta = {
        "recipe": "deepbind",
        "model_kwargs": kw,
        "seq_len": 101,
        "n_value": 0.25,
        "task": "binary",
        "label_names": ["Bound"],
        "best_epoch": 1,
        "n_train": 600,
        "n_valid": 60,
        "train_file": "rest_ac.seq",
    }
    save_legacy_model(run / "model.pt", DeepBind(**kw), meta)
    (run / "history.csv").write_text("epoch,train_loss,val_loss,val_auroc\n0,0.69,0.68,0.6\n1,0.6,0.62,0.7\n")
    evaluate(run / "model.pt", rest_small["test"], out_dir=run / "test", quiet=True)
    run_variants(run, DATA / "variants.vcf", DATA / "ecoli_4kb.fa", run / "variants.tsv")
    return write_run_report(run, title="browser test report")


def test_report_is_self_contained(report):
    html = report.read_text()
    for section in (
        "Held-out test set",
        "Learning curves",
        "JASPAR",
        "ISM and attributions",
        "Variant effects",
    ):
        assert section in html
    srcs = re.findall(r'<img[^>]*\ssrc="([^"]*)"', html)
    assert len(srcs) >= 7 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "REF mismatch" in html


def test_report_renders_in_headless_chromium(report, tmp_path):
    exe = _chromium()
    shot = tmp_path / "report.png"
    common = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    url = report.resolve().as_uri()
    subprocess.run(
        [*common, f"--screenshot={shot}", "--window-size=1280,2400", url],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert shot.exists() and shot.stat().st_size > 10_000
    from PIL import Image

    img = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert img.shape[:2] == (2400, 1280)
    assert img.std() > 10 and (img < 128).mean() > 0.005  # text and figures, not a blank page
    dom = subprocess.run(
        [*common, "--dump-dom", "--virtual-time-budget=5000", url],
        check=True,
        capture_output=True,
        timeout=120,
        text=True,
    ).stdout
    imgs = re.findall(r"<img\b[^>]*>", dom)
    assert len(imgs) >= 7, "the rendered DOM lost images"
    for tag in imgs:
        src = re.search(r'\ssrc="([^"]*)"', tag)
        assert src and src.group(1).startswith("data:image/png;base64,"), tag[:120]
    assert "Variant effects" in dom and "filter" in dom
