"""The genome-window kind (biodl.kinds.windows) from the CLI, on the bundled 100-kb E. coli slice."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from biodl.cli import app
from biodl.errors import BiodlInputError

DATA = Path(__file__).parent / "data" / "genome_windows"
GENOME = DATA / "ecoli_k12_first100kb.fna.gz"
GFF = DATA / "ecoli_k12_first100kb.gff.gz"
LABELS = ["CDS", "ncRNA", "mobile_genetic_element"]
TINY = ["-m", "n_filters=[8,8,8]", "-m", "hidden=8"]
runner = CliRunner()


def _train_args(out: Path, labels: str = ",".join(LABELS), system: str = "deepsea") -> list[str]:
    return [
        "train",
        "--system",
        system,
        "--genome",
        str(GENOME),
        "--annotation",
        str(GFF),
        "--labels",
        labels,
        "--out",
        str(out),
        "--epochs",
        "1",
        "--device",
        "cpu",
        "--no-progress",
        "--set",
        "window=300",
        "--set",
        "step=300",
        "--set",
        "center=200",
        "--set",
        "valid=0.15",
        "--set",
        "test=0.3",
        *TINY,
    ]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("windows") / "run"
    r = runner.invoke(app, _train_args(out))
    assert r.exit_code == 0, r.output
    return out


def test_train_reports_per_label_metrics(run_dir: Path) -> None:
    s = json.loads((run_dir / "summary.json").read_text())
    assert s["kind"] == "windows" and s["labels"] == LABELS
    # 100 kb / 300-bp steps = 333 windows; 30 % test, 15 % valid, straddlers dropped
    assert s["n_train"] + s["n_valid"] + s["n_test"] <= 333
    assert 90 <= s["n_test"] <= 100 and s["n_train"] > 150
    m = s["test_metrics"]
    for lab in LABELS:
        assert f"auroc/{lab}" in m and f"auprc/{lab}" in m
    assert 0.0 <= m["auroc/CDS"] <= 1.0
    assert s["positives"]["train"]["CDS"] > 0
    for f in ("metrics.json", "predictions.tsv", "roc.png", "pr.png"):
        assert (run_dir / "test" / f).stat().st_size > 0
    pred = pd.read_csv(run_dir / "test" / "predictions.tsv", sep="\t")
    assert len(pred) == s["n_test"] and {"prob_CDS", "true_CDS"} <= set(pred.columns)
    payload = torch.load(run_dir / "model.pt", map_location="cpu", weights_only=True)
    meta = json.loads(payload["meta"])
    assert meta["kind"] == "windows" and meta["data"]["window"] == 300 and meta["data"]["labels"] == LABELS
    assert json.loads((run_dir / "run.json").read_text())["data"] == meta["data"]  # one schema


def test_evaluate_genome_matches_training_test_split(run_dir: Path, tmp_path: Path) -> None:
    r = runner.invoke(app, ["evaluate", str(run_dir), str(GENOME), "--out", str(tmp_path / "ev")])
    assert r.exit_code == 0, r.output
    got = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    s = json.loads((run_dir / "summary.json").read_text())
    assert got["n"] == s["n_test"]
    assert got["metrics"]["auroc/CDS"] == pytest.approx(s["test_metrics"]["auroc/CDS"], abs=1e-6)
    # both strands averaged: still a valid metric, generally a different number
    r = runner.invoke(app, ["evaluate", str(run_dir), str(GENOME), "--set", "rc_average=true"])
    assert r.exit_code == 0, r.output
    assert 0.0 <= json.loads(r.stdout)["auroc/CDS"] <= 1.0


def test_evaluate_and_predict_bed(run_dir: Path, tmp_path: Path) -> None:
    bed = tmp_path / "q.bed"
    # thrA CDS (337..2799, 1-based), an interval at the chromosome start (window moved
    # inside), and one near the end
    bed.write_text(
        "NC_000913.3\t1000\t1200\tthrA\nNC_000913.3\t0\t50\tstart\nNC_000913.3\t99900\t100000\tend\n"
    )
    r = runner.invoke(app, ["predict", str(run_dir), str(bed), "--out", str(tmp_path / "p.tsv")])
    assert r.exit_code == 0, r.output
    df = pd.read_csv(tmp_path / "p.tsv", sep="\t")
    assert list(df["name"]) == ["thrA", "start", "end"]
    assert (df["window_end"] - df["window_start"] == 300).all()
    assert df["window_start"].iloc[1] == 0 and df["window_end"].iloc[2] == 100_000
    probs = df[[f"prob_{n}" for n in LABELS]].to_numpy()
    assert np.isfinite(probs).all() and ((probs >= 0) & (probs <= 1)).all()
    # evaluate on the same BED (labels from the training annotation)
    r = runner.invoke(app, ["evaluate", str(run_dir), str(bed)])
    assert r.exit_code == 0, r.output
    assert "auroc" in json.loads(r.stdout)
    # predict on a whole genome FASTA tiles it
    r = runner.invoke(app, ["predict", str(run_dir), str(GENOME)])
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[0].startswith("chrom\tstart\tend")
    assert len(r.stdout.strip().splitlines()) == 1 + 333


def test_report_uses_labelled_test_windows(run_dir: Path) -> None:
    """`biodl report` on a genome-window run cuts held-out windows from the genome for the
    filter logos and ISM (it used to look for a sequence file named after the test split)."""
    r = runner.invoke(app, ["report", str(run_dir)])
    assert r.exit_code == 0, r.output
    html = (run_dir / "report.html").read_text()
    assert "First-layer filters" in html and "labelled windows of" in html
    assert (run_dir / "filters.meme").exists() and (run_dir / "learning_curves.png").exists()


def test_motifs_reads_the_test_split_of_the_genome(run_dir: Path, tmp_path: Path) -> None:
    """`biodl motifs` on a genome-window run: the filters' sites come from the held-out windows
    (it took the split's description for a file name: 'the test file ... is not there any more')."""
    out = tmp_path / "motifs.tsv"
    r = runner.invoke(app, ["motifs", str(run_dir), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "not there any more" not in r.output
    table = pd.read_csv(out, sep="\t")
    assert len(table) > 0 and table["n_sites"].sum() > 0


def test_bad_label_type_is_a_clear_error(tmp_path: Path) -> None:
    r = runner.invoke(app, _train_args(tmp_path / "bad", labels="CDS,tRNA"))
    assert r.exit_code == 2
    msg = " ".join((r.output or "").split())
    assert (
        "tRNA" in msg
        and "available types (count)" in msg
        and "gene (94)" in msg
        and "mobile_genetic_element (2)" in msg
    )


def test_bad_inputs(run_dir: Path, tmp_path: Path) -> None:
    from biodl import pipeline

    def train(**options):
        pipeline.train("deepsea", tmp_path / "x", options={"genome": GENOME, **options}, quiet=True)

    with pytest.raises(BiodlInputError, match=r"does not take --set windw \(did you mean window\?\)"):
        train(annotation=[GFF], windw=1)
    with pytest.raises(BiodlInputError, match="--set window must be at least 1"):
        train(annotation=[GFF], window=-5)
    with pytest.raises(BiodlInputError, match="needs --annotation"):
        train()
    with pytest.raises(BiodlInputError, match="does not take DATA .the windows come from --genome"):
        train(annotation=[GFF], data="x.tsv")
    bed = tmp_path / "bad.bed"
    bed.write_text("NC_000913.3\t10\t20\nchrZ\t10\t20\n")
    with pytest.raises(BiodlInputError, match=r"bad\.bed, line 2: chromosome 'chrZ' is not in the genome"):
        pipeline.predict(run_dir, bed, quiet=True)


def test_a_bad_hold_out_region_is_echoed_as_given() -> None:
    from biodl.kinds.windows.data import _parse_holdout

    lengths = {"NC_1": 10_000}
    assert _parse_holdout("NC_1:1-1000", lengths, "test") == [("NC_1", 0, 1000)]
    with pytest.raises(
        BiodlInputError, match=r"test: bad region NC_1:5000-1000: the start must be at least 1"
    ):
        _parse_holdout("NC_1:5000-1000", lengths, "test")
