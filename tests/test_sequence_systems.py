"""DeepSEA, Basset, DanQ and the splicing CNN train and evaluate from the CLI.

Small real data: 300 REST ChIP-seq peaks of the bundled ENCODE experiment (plus as many
dinucleotide-shuffled negatives, added by ``biodl train``) and 200 held-out fold-B sequences;
shrunk models (``-m``) so that each system trains in seconds on a CPU.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from biodl.cli import app
from tests.conftest import REST_AC, REST_B

runner = CliRunner()

#: Shrunk model options per system (101-bp inputs).
SMALL = {
    "deepsea": ["n_filters=[8,8,8]", "kernel_size=5", "pool_size=2", "hidden=16"],
    "basset": ["n_filters=[8,8,8]", "kernel_sizes=[9,5,3]", "pool_sizes=[2,2,2]", "hidden=[16,16]"],
    "danq": ["n_filters=8", "kernel_size=11", "pool_size=5", "lstm_hidden=8", "hidden=16"],
    "splicing-cnn": ["n_filters=8", "hidden=8", "n_res_blocks=1"],
}


def _m(system: str) -> list[str]:
    return [a for o in SMALL[system] for a in ("-m", o)]


@pytest.fixture(scope="module")
def rest_files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("seqsys")
    with gzip.open(REST_AC, "rt") as fh:
        ac = fh.read().splitlines()
    with gzip.open(REST_B, "rt") as fh:
        b = fh.read().splitlines()
    train = d / "train.seq"
    train.write_text("\n".join([ac[0], *ac[1:301]]) + "\n")
    test = d / "test.seq"
    test.write_text("\n".join([b[0], *b[1::5][:200]]) + "\n")
    # the same test set as FASTA with class labels in the headers
    hdr = b[0].split("\t")
    si, bi = hdr.index("seq"), hdr.index("Bound")
    fa = d / "test.fa"
    fa.write_text(
        "".join(
            f">s{i} class:{f[bi]}\n{f[si]}\n"
            for i, f in enumerate(line.split("\t") for line in b[1::5][:200])
        )
    )
    return {"train": train, "test": test, "test_fa": fa}


def test_systems_json_lists_the_sequence_systems() -> None:
    r = runner.invoke(app, ["systems", "--json"])
    assert r.exit_code == 0, r.output
    reg = {x["name"]: x for x in json.loads(r.stdout)}
    for name in ("deepsea", "basset", "danq", "splicing-cnn"):
        assert reg[name]["status"] == "ready" and reg[name]["data"] == "sequences"
        assert reg[name]["kinds"] == ["sequences", "windows"]
        assert "binary" in reg[name]["tasks"]


@pytest.mark.parametrize("system", ["deepsea", "basset", "danq", "splicing-cnn"])
def test_train_then_evaluate_from_cli(system: str, rest_files, tmp_path: Path) -> None:
    out = tmp_path / system
    extra = ["--rc-augment", "--shift", "2"] if system == "danq" else []
    extra += ["--class-weight"] if system == "basset" else []
    r = runner.invoke(
        app,
        [
            "train",
            str(rest_files["train"]),
            "--test",
            str(rest_files["test"]),
            "--system",
            system,
            "--out",
            str(out),
            "--epochs",
            "2",
            "--patience",
            "0",
            "--device",
            "cpu",
            "--no-progress",
            *extra,
            *_m(system),
        ],
    )
    assert r.exit_code == 0, r.output
    s = json.loads((out / "summary.json").read_text())
    assert s["system"] == system and s["task"] == "binary"
    assert s["n_train"] + s["n_valid"] == 600  # 300 peaks + 300 shuffled negatives
    assert s["epochs_run"] == 2 and 0.0 <= s["test_metrics"]["auroc"] <= 1.0
    r = runner.invoke(app, ["evaluate", str(out), str(rest_files["test_fa"]), "--out", str(tmp_path / "ev")])
    assert r.exit_code == 0, r.output
    m = json.loads(r.stdout)
    # the FASTA holds the same 200 sequences as the table: the same AUROC
    assert m["auroc"] == pytest.approx(s["test_metrics"]["auroc"], abs=1e-6)
    for f in ("metrics.json", "predictions.tsv", "roc.png", "pr.png"):
        assert (tmp_path / "ev" / f).exists()


def test_bad_model_option_is_a_clear_error(rest_files, tmp_path: Path) -> None:
    r = runner.invoke(
        app,
        [
            "train",
            str(rest_files["train"]),
            "--system",
            "danq",
            "--out",
            str(tmp_path / "x"),
            "-m",
            "filters=8",
        ],
    )
    assert r.exit_code == 2
    assert "unknown model option(s) for danq: filters" in " ".join(r.output.split())
