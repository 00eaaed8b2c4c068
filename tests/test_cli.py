"""Every CLI command: --help with an example, and a real run on small real data."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from biodl.cli import app

runner = CliRunner()
COMMANDS = [
    ["systems"],
    ["train"],
    ["evaluate"],
    ["predict"],
    ["report"],
    ["demo"],
    ["deepbind", "score"],
    ["deepbind", "list"],
    ["reads", "build-reference"],
    ["reads", "sample"],
    ["reads", "classify"],
    ["reads", "quantize"],
    ["variants"],
    ["ism"],
]
TINY = ["-m", "num_motifs=8", "-m", "motif_len=12"]


@pytest.mark.parametrize("cmd", COMMANDS, ids=" ".join)
def test_help_has_example(cmd):
    r = runner.invoke(app, [*cmd, "--help"])
    assert r.exit_code == 0, r.output
    assert "Example: biodl" in r.output


def test_systems_lists_registry():
    r = runner.invoke(app, ["systems", "--json"])
    assert r.exit_code == 0
    rows = {d["name"]: d for d in json.loads(r.stdout)}
    for name in ("deepbind", "deepsea", "basset", "danq", "splicing-cnn"):
        assert rows[name]["status"] == "ready" and rows[name]["citation"]
    assert rows["read-classifier"]["status"] == "ready" and rows["read-classifier"]["data"] == "reads"
    assert not [n for n, d in rows.items() if d["status"] == "planned"]  # every planned system is built


@pytest.fixture(scope="module")
def trained(tmp_path_factory, rest_small):
    out = tmp_path_factory.mktemp("cli") / "run"
    r = runner.invoke(
        app,
        [
            "train",
            str(rest_small["train"]),
            "--out",
            str(out),
            "--test",
            str(rest_small["test"]),
            "--epochs",
            "2",
            "--no-progress",
            "--device",
            "cpu",
            *TINY,
        ],
    )
    assert r.exit_code == 0, r.output
    return out


def test_train_writes_run(trained):
    s = json.loads((trained / "summary.json").read_text())
    assert s["system"] == "deepbind" and s["epochs_run"] == 2 and "auroc" in s["test_metrics"]
    assert (trained / "model.pt").exists() and (trained / "history.csv").exists()


def test_evaluate(trained, rest_small, tmp_path):
    r = runner.invoke(app, ["evaluate", str(trained), str(rest_small["test"]), "--out", str(tmp_path / "ev")])
    assert r.exit_code == 0, r.output
    m = json.loads(r.stdout)
    s = json.loads((trained / "summary.json").read_text())
    assert m["auroc"] == pytest.approx(s["test_metrics"]["auroc"], abs=1e-6)
    assert (tmp_path / "ev" / "roc.png").exists()
    # what it says it wrote is what is there
    pngs = len(list((tmp_path / "ev").glob("*.png")))
    assert f"wrote metrics.json, predictions.tsv, {pngs} .png in" in " ".join(r.stderr.split()), r.stderr


def test_predict_keeps_order_and_ids(trained, tmp_path):
    fa = tmp_path / "q.fa"
    fa.write_text(">zeta\n" + "ACGT" * 25 + "A\n>alpha\n" + "GGCC" * 25 + "G\n")
    out = tmp_path / "p.tsv"
    r = runner.invoke(app, ["predict", str(trained), str(fa), "--out", str(out)])
    assert r.exit_code == 0, r.output
    df = pd.read_csv(out, sep="\t")
    assert df["id"].tolist() == ["zeta", "alpha"] and df["prob_Bound"].between(0, 1).all()


def test_report(trained):
    r = runner.invoke(app, ["report", str(trained)])
    assert r.exit_code == 0, r.output
    html = (trained / "report.html").read_text()
    assert "data:image/png;base64," in html and "First-layer filters" in html


def test_bad_input_is_one_clear_line(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("seq\tBound\nACGT\t1\nACQT\t0\n")
    r = runner.invoke(app, ["train", str(bad), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2
    assert "error:" in r.output and "line 3" in r.output and "'Q'" in r.output
    assert "Traceback" not in r.output
    r = runner.invoke(app, ["train", str(bad), "--out", str(tmp_path / "o"), "--system", "nope"])
    assert r.exit_code == 2 and "unknown system 'nope'" in r.output


def test_deepbind_score_and_list(tmp_path):
    fa = tmp_path / "s.fa"
    fa.write_text(">ctcf_site\nTACCACTAGGGGGCGCCACC\n>gata\nGAGGTTACGCGGCAAGATAA\n")
    r = runner.invoke(app, ["deepbind", "score", "D00328.003", str(fa)])
    assert r.exit_code == 0, r.output
    lines = r.output.strip().splitlines()
    assert lines[1].split("\t")[0] == "ctcf_site"
    assert float(lines[1].split("\t")[1]) == pytest.approx(17.682623, abs=1e-5)
    r = runner.invoke(app, ["deepbind", "list", "--protein", "CTCF"])
    assert r.exit_code == 0 and "D00328.003" in r.output


def test_demo_runs(tmp_path):
    r = runner.invoke(
        app, ["demo", "--out", str(tmp_path / "demo"), "--epochs", "1", "--no-progress", "--device", "cpu"]
    )
    assert r.exit_code == 0, r.output
    assert "held-out test AUC" in r.output and (tmp_path / "demo" / "report.html").exists()


def test_systems_and_help_import_neither_torch_nor_lightning():
    """`biodl systems` and `biodl --help` start without torch, Lightning, torchmetrics, pandas or
    numpy (a kind's CLI module importing biodl.io once pulled pandas in: 0.25 s)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from biodl.cli import app\n"
        "for args in (['systems'], ['--help'], ['train', '--help']):\n"
        "    try:\n"
        "        app(args, standalone_mode=False)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "bad = [m for m in ('torch', 'lightning', 'torchmetrics', 'pandas', 'numpy') if m in sys.modules]\n"
        "print('IMPORTED', bad)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "IMPORTED []" in r.stdout, r.stdout[-500:]


@pytest.mark.parametrize(
    "args,refused",
    [
        (
            [
                "--set",
                "no_such_option=1",
                "--labels",
                "XYZ",
                "--samples",
                "/nonexistent.csv",
                "--target",
                "x",
            ],
            ["--set no_such_option", "--labels (an option of genome windows)", "--samples", "--target"],
        ),
        (
            ["--system", "neural-fp", "--pad", "100", "--iupac-as-n", "--set", "no_such_option=3"],
            ["--pad", "--iupac-as-n", "--set no_such_option"],
        ),
        (
            ["--system", "adage", "--set", "optimiser=adam", "--set", "window=100"],
            ["--set optimiser (did you mean optimizer?)", "--set window"],
        ),
    ],
)
def test_option_typos_are_refused_before_any_work(args, refused, rest_small, tmp_path):
    """Options a kind does not declare (typos, other kinds' flags) are one clear error that names
    them and lists what the kind accepts; nothing is trained or written."""
    out = tmp_path / "run"
    r = runner.invoke(app, ["train", str(rest_small["train"]), "--out", str(out), *args])
    msg = " ".join(r.output.split())
    assert r.exit_code == 2, msg
    for name in refused:
        assert name in msg, (name, msg)
    assert "It accepts:" in msg and not out.exists()


def test_help_options_lists_the_kinds_options():
    r = runner.invoke(app, ["train", "--system", "deepsea", "--help-options"])
    out = " ".join(r.output.split())
    assert r.exit_code == 0, r.output
    for s in (
        "deepsea on sequence files: data options",
        "deepsea on genome windows: data options",
        "--rc-augment",
        "--set max_windows",
        "model options",
        "n_filters",
        "training options",
    ):
        assert s in out, s
    r = runner.invoke(app, ["train", "--system", "adage", "--help-options"])
    assert r.exit_code == 0 and "optimizer" in r.output and "landmarks" not in r.output


def test_errors_print_file_names_verbatim(tmp_path) -> None:
    """Rich must not read user text in an error as markup or emoji codes (``x.pdb:A:`` -> a symbol)."""
    run = str(tmp_path / "run:A:[bold]x")
    r = runner.invoke(app, ["report", run])
    assert r.exit_code == 2 and f"error: {run}: not found" in r.output
    r = runner.invoke(app, ["reads", "classify", run, str(tmp_path / "r:X:.fq")])
    assert r.exit_code == 2 and ":X:.fq: file not found" in r.output and "\u274c" not in r.output


def test_calibration_options_without_calibrate_are_refused(tmp_path) -> None:
    """--calibrate-top / --calibrate-folds / ... without --calibrate N used to be accepted and
    ignored (a plain run, no word); now refused before anything is read or written."""
    out = tmp_path / "run"
    r = runner.invoke(
        app,
        ["train", "x.seq", "--system", "deepbind", "--calibrate-top", "3", "--calibrate-folds", "5"]
        + ["--out", str(out)],
    )
    assert r.exit_code == 2
    assert "--calibrate-top, --calibrate-folds go with --calibrate N" in " ".join(r.output.split())
    assert not out.exists()


def test_cli_audit_refusals(tmp_path):
    """Unknown --set keys of cells crossval / interpret were ignored (15 default restarts ran);
    a negative --seed failed inside numpy; --fdr 2 and --n-filters 0 ran; a .parquet name got
    a tab-separated table."""
    cells = Path(__file__).parent / "data" / "cells" / "samples.csv"
    cases = [
        (
            ["cells", "crossval", str(cells), "--out", str(tmp_path / "cv"), "--set", "nrn=1"],
            "did you mean nrun?",
        ),
        (
            ["cells", "crossval", str(cells), "--out", str(tmp_path / "cv"), "--seed", "-1"],
            "--seed must be an integer from 0",
        ),
        (
            [
                "cells",
                "interpret",
                str(tmp_path),
                str(cells),
                "--out",
                str(tmp_path / "ci"),
                "--n-filters",
                "0",
            ],
            "--n-filters must be at least 1",
        ),
        (
            ["reads", "sample", str(tmp_path), "--n", "5", "--seed", "-1", "--out", str(tmp_path / "s.fq")],
            "--seed must be an integer from 0",
        ),
        (
            ["adage", "enrichment", "published", str(cells), "--fdr", "2"],
            "--fdr must be a rate above 0 and at most 1",
        ),
        (
            ["deepbind", "score", "D00328.018", str(cells), "-o", str(tmp_path / "x.parquet")],
            "writes a text table: name it .tsv or .csv",
        ),
    ]
    for args, msg in cases:
        r = runner.invoke(app, args)
        assert r.exit_code == 2 and msg in " ".join(r.output.split()), (args, r.output)
    assert not (tmp_path / "cv").exists()


def test_a_read_only_home_gets_matplotlib_a_temporary_config_folder(tmp_path, monkeypatch):
    """matplotlib warned in two lines on every command when it could not write ~/.config."""
    from biodl.cli import _writable_config_dirs

    (tmp_path / "file").write_text("")
    monkeypatch.delenv("MPLCONFIGDIR", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "file" / "config"))  # cannot be made
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    _writable_config_dirs()
    assert os.environ["MPLCONFIGDIR"].startswith(str(tmp_path / "tmp" / "biodl-matplotlib-"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "ok"))
    monkeypatch.delenv("MPLCONFIGDIR")
    _writable_config_dirs()
    assert "MPLCONFIGDIR" not in os.environ and (tmp_path / "ok" / "matplotlib").is_dir()


def test_training_flags_a_recipe_does_not_use_are_refused(tmp_path):
    """pconsc2 (random forests), deep-enhancer (SVMs) and cellcnn (--precision, --profiler, ...)
    took these flags without a word and recorded them in run.json as the run's settings."""
    r = runner.invoke(
        app, ["train", "x.aln", "--system", "pconsc2", "--lr", "77", "--out", str(tmp_path / "a")]
    )
    assert r.exit_code == 2 and "pconsc2 does not use --lr: it trains random forests" in r.output, r.output
    r = runner.invoke(
        app,
        ["train", "x.csv", "--system", "cellcnn", "--precision", "bf16-mixed", "--out", str(tmp_path / "b")],
    )
    assert r.exit_code == 2 and "cellcnn does not use --precision" in r.output, r.output
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    r = runner.invoke(app, ["train", "--system", "deep-enhancer", "--help-options"])
    assert "not used" in r.output and "--ensemble" not in r.output and "--calibrate" not in r.output
    r = runner.invoke(app, ["train", "--system", "deepbind", "--help-options"])
    assert "not used" not in r.output and "--calibrate" in r.output and "--ensemble" in r.output


def test_a_model_option_given_twice_is_refused_and_version_is_said(tmp_path):
    r = runner.invoke(
        app, ["train", "x.fa", "--set", "num_motifs=8", "-m", "num_motifs=9", "--out", str(tmp_path / "r")]
    )
    assert r.exit_code == 2 and "-m num_motifs=9 and --set num_motifs=8 both given" in r.output, r.output
    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and r.output.startswith("biodl 0.") and "torch" in r.output


def test_class_weight_can_be_turned_off_where_it_is_the_default(tmp_path):
    """dfs and pedla weight classes by default, and there was no --no-class-weight."""
    d = Path(__file__).parent / "data" / "features"
    out = tmp_path / "dfs"
    args = [
        "train",
        str(d / "HUVEC_200bp_slice_Data.txt.gz"),
        "--labels",
        str(d / "HUVEC_200bp_slice_Classes.txt"),
    ]
    args += ["--system", "dfs", "--set", "positive=A-E", "--epochs", "1", "--no-progress", "--out", str(out)]
    r = runner.invoke(app, [*args, "--no-class-weight", "--set", "report=false", "--set", "lambdas=1"])
    assert r.exit_code == 0, r.output
    assert json.loads((out / "run.json").read_text())["options"]["class_weight"] is False
