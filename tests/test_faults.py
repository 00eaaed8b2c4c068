"""Faults a user can cause, one test per class (issue 17): outputs never damage inputs or
other files, every bad input is one clear line naming the file / record / problem, and
dubious input is warned about. docs/errors.md lists the same classes."""

from __future__ import annotations

import errno
import gzip
import json
import os
import re
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from biodl.cli import app
from biodl.errors import BiodlInputError

runner = CliRunner()
DATA = Path(__file__).parent / "data"
TINY = ["-m", "num_motifs=8", "-m", "motif_len=12"]
WINDOW_TINY = ["-m", "n_filters=[8,8,8]", "-m", "hidden=8"]
GENOME = DATA / "genome_windows" / "ecoli_k12_first100kb.fna.gz"
GFF = DATA / "genome_windows" / "ecoli_k12_first100kb.gff.gz"
VCF = DATA / "interpret" / "variants.vcf"
SMALL_GENOME = DATA / "interpret" / "ecoli_4kb.fa"


def _ok(r) -> None:
    assert r.exit_code == 0, r.output


def _refused(r, *parts: str) -> str:
    """The command failed with exit 2 and one ``error:`` line holding every part, no traceback."""
    assert r.exit_code == 2, r.output
    msg = " ".join(r.output.split())
    assert "Traceback" not in r.output and "error:" in msg
    for p in parts:
        assert p in msg, msg
    return msg


@pytest.fixture(scope="module")
def seq_run(tmp_path_factory, rest_small) -> Path:
    out = tmp_path_factory.mktemp("faults") / "seqrun"
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
            "1",
        ]
        + ["--no-progress", *TINY],
    )
    _ok(r)
    return out


@pytest.fixture(scope="module")
def dgex_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("faults") / "dgex"
    r = runner.invoke(
        app,
        ["train", "--system", "dgex", "--data", str(DATA / "expression" / "bladder_dgex_slice.csv.gz")]
        + ["--set", f"landmarks={DATA / 'expression' / 'landmarks100.txt'}", "--epochs", "1"]
        + ["--no-progress", "--out", str(out)],
    )
    _ok(r)
    return out


@pytest.fixture()
def fasta(tmp_path) -> Path:
    p = tmp_path / "in.fa"
    p.write_text(">a\n" + "ACGT" * 25 + "A\n>b\n" + "GGCA" * 25 + "T\n")
    return p


# ------------------------------------------------------------------ data loss and damage
def test_an_evaluation_folder_holds_one_evaluation(seq_run, rest_small, tmp_path, monkeypatch):
    """`evaluate --out DIR` into a folder of an earlier evaluation: an evaluation stopped while
    writing (Ctrl-C, an error) leaves the earlier one whole; a finished one replaces it whole,
    removing the earlier plots it has none of (one class: no ROC), and says so."""
    from biodl.kinds.sequences.kind import SequencesKind

    ev = tmp_path / "ev"
    _ok(runner.invoke(app, ["evaluate", str(seq_run), str(rest_small["test"]), "--out", str(ev)]))
    before = {p.name: p.read_bytes() for p in ev.iterdir()}
    assert {"metrics.json", "predictions.tsv", "roc.png", "pr.png"} <= set(before)

    lines = rest_small["test"].read_text().splitlines()
    # negatives only: no ROC (positives only get shuffled negatives, as this model was trained)
    positives = tmp_path / "neg.seq"
    positives.write_text("\n".join([lines[0], *(x for x in lines[1:] if x.endswith("\t0"))]) + "\n")
    real = SequencesKind.write_evaluation

    def interrupted(self, out_dir, *a, **k):
        real(self, out_dir, *a, **k)  # every file written, then Ctrl-C before the command ends
        raise KeyboardInterrupt

    monkeypatch.setattr(SequencesKind, "write_evaluation", interrupted)
    r = runner.invoke(app, ["evaluate", str(seq_run), str(positives), "--out", str(ev)])
    assert r.exit_code != 0
    assert {p.name: p.read_bytes() for p in ev.iterdir()} == before  # the earlier evaluation, whole
    monkeypatch.setattr(SequencesKind, "write_evaluation", real)

    r = runner.invoke(app, ["evaluate", str(seq_run), str(positives), "--out", str(ev)])
    _ok(r)
    assert sorted(p.name for p in ev.iterdir()) == [
        ".biodl-evaluation.json",
        "metrics.json",
        "predictions.tsv",
    ]
    assert "removed pr.png, roc.png of the evaluation written there before" in " ".join(r.stderr.split())
    assert json.loads((ev / "metrics.json").read_text())["out_dir"] == str(ev)
    assert "wrote metrics.json, predictions.tsv in" in r.stderr  # the hidden record is not named


def test_no_output_replaces_an_input(seq_run, fasta, tmp_path):
    before = fasta.read_bytes()
    r = runner.invoke(app, ["predict", str(seq_run), str(fasta), "--out", str(fasta)])
    _refused(r, f"{fasta}: is an input of this command; refusing to write over it")
    assert fasta.read_bytes() == before
    vcf = tmp_path / "v.vcf"
    vcf.write_bytes(VCF.read_bytes())
    r = runner.invoke(
        app,
        ["variants", str(seq_run), "--vcf", str(vcf), "--genome", str(SMALL_GENOME)]
        + ["--out", str(tmp_path / "e.tsv"), "--out-vcf", str(vcf)],
    )
    _refused(r, "is an input of this command")
    assert vcf.read_bytes() == VCF.read_bytes()
    genome = tmp_path / "g.fa"
    genome.write_bytes(SMALL_GENOME.read_bytes())
    base = ["variants", str(seq_run), "--vcf", str(vcf), "--genome", str(genome)]
    fai = tmp_path / "g.fa.fai"
    fai.write_bytes((SMALL_GENOME.parent / "ecoli_4kb.fa.fai").read_bytes())
    for outs, named in (
        (["--out", str(vcf)], vcf),  # the table over the VCF, the genome, or the VCF over the genome
        (["--out", str(genome)], genome),
        (["--out", str(fai)], fai),  # nor the genome's index
        (["--out", str(tmp_path / "e.tsv"), "--out-vcf", str(genome)], genome),
    ):
        _refused(runner.invoke(app, base + outs), f"{named}: is an input of this command")
    assert vcf.read_bytes() == VCF.read_bytes() and genome.read_bytes() == SMALL_GENOME.read_bytes()


def test_non_regular_targets_are_refused_and_left_alone(seq_run, fasta, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    r = runner.invoke(app, ["predict", str(seq_run), str(fasta), "--out", str(fifo)])
    _refused(r, "exists and is not a regular file (a device, pipe or socket); refusing to write over it")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    from biodl.io._util import check_output_path

    if Path("/dev/full").exists():  # the device node of the report: refused before any write
        mode = os.stat("/dev/full").st_mode
        with pytest.raises(BiodlInputError, match="not a regular file"):
            check_output_path("/dev/full")
        assert stat.S_ISCHR(os.stat("/dev/full").st_mode) and os.stat("/dev/full").st_mode == mode


def test_a_failed_write_is_one_error_and_keeps_the_old_file(tmp_path, monkeypatch):
    from biodl.io import _util

    target = tmp_path / "scores.tsv"
    target.write_text("old\n")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_util.os, "fsync", full)
    with pytest.raises(BiodlInputError, match="no space left on the device; nothing was replaced"):
        _util.atomic_write_text(target, "new\n")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["scores.tsv"]  # no temporary file left


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_outputs_follow_the_umask(seq_run, fasta, tmp_path, mask):
    from biodl.train import load_model, save_model

    old = os.umask(mask)
    try:
        out = tmp_path / "p.tsv"
        _ok(runner.invoke(app, ["predict", str(seq_run), str(fasta), "--out", str(out)]))
        model, meta = load_model(seq_run)
        save_model(tmp_path / "model.pt", model, meta)
    finally:
        os.umask(old)
    for p in (out, tmp_path / "model.pt"):
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o666 & ~mask


def test_a_run_directory_describes_one_run(rest_small, dgex_run, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for f in dgex_run.iterdir():  # a finished D-GEX run, report and test split included
        if f.is_file():
            (run / f.name).write_bytes(f.read_bytes())
    (run / "test").mkdir()
    (run / "test" / "metrics.json").write_text("{}")
    args = ["train", str(rest_small["train"]), "--out", str(run), "--epochs", "1", "--no-progress", *TINY]
    r = runner.invoke(app, args)
    _refused(r, "holds a run of dgex (expression, finished)", "--no-resume to replace that run")
    assert json.loads((run / "run.json").read_text())["recipe"] == "dgex"
    # the user's own files beside the run, named like (but not as) what biodl writes, are kept
    mine = [
        "top10_peaks.bed",
        "pretrained_notes.txt",
        "my_figure.png",
        "layer2.txt",
        "member5_notes.txt",
        "folds",
    ]
    for name in mine:
        (run / name).write_text("mine\n")
    r = runner.invoke(app, [*args, "--no-resume"])
    _ok(r)
    assert "removed the previous run" in r.output and "run.json" in r.output  # the names are listed
    assert json.loads((run / "run.json").read_text())["recipe"] == "deepbind"
    assert not (run / "test").exists() and not (run / "report.html").exists()
    assert all((run / name).read_text() == "mine\n" for name in mine), r.output
    # an input inside the directory is never removed
    inside = run / "train.seq"
    inside.write_bytes(rest_small["train"].read_bytes())
    r = runner.invoke(app, ["train", "--system", "danq", str(inside), "--out", str(run), "--no-resume"])
    _refused(r, "--no-resume would clear this run directory, but it holds an input of this command")
    assert inside.exists()


def test_outputs_never_replace_the_record_of_the_run_they_use(seq_run, rest_small, fasta, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for f in seq_run.rglob("*"):
        if f.is_file() and "checkpoints" not in f.parts:
            (run / f.relative_to(seq_run)).parent.mkdir(parents=True, exist_ok=True)
            (run / f.relative_to(seq_run)).write_bytes(f.read_bytes())
    before = {f: f.read_bytes() for f in run.rglob("*") if f.is_file()}
    test = str(rest_small["test"])
    r = runner.invoke(app, ["evaluate", str(run), test, "--out", str(run / "test")])
    _refused(r, "is the test/ folder of the run in", "held-out test results")
    r = runner.invoke(app, ["evaluate", str(run / "model.pt"), test, "--out", str(run)])
    _refused(r, "is the run directory", "itself, whose model this command uses")
    for name in ("history.csv", "run.json", "summary.json"):
        r = runner.invoke(app, ["predict", str(run), str(fasta), "--out", str(run / name)])
        _refused(r, f"is the {name} of the run in", "refusing to write over the run's record")
    r = runner.invoke(app, ["predict", str(run), str(fasta), "--out", str(run / "test" / "p.tsv")])
    _refused(r, "inside the test/ folder of the run")
    assert {f: f.read_bytes() for f in run.rglob("*") if f.is_file()} == before
    # a new folder or file inside the run is fine
    _ok(runner.invoke(app, ["evaluate", str(run), test, "--out", str(run / "eval_test")]))
    _ok(runner.invoke(app, ["predict", str(run), str(fasta), "--out", str(run / "new.tsv")]))
    assert (run / "eval_test" / "metrics.json").exists() and (run / "new.tsv").exists()


def test_training_never_overwrites_a_folder_that_is_not_a_run(rest_small, tmp_path):
    out = tmp_path / "mine"
    (out / "test").mkdir(parents=True)
    (out / "model.pt").write_text("my old model")
    (out / "notes.txt").write_text("mine")
    args = ["train", str(rest_small["train"]), "--out", str(out), "--epochs", "1", "--no-progress", *TINY]
    for extra in ([], ["--no-resume"]):
        r = runner.invoke(app, [*args, *extra])
        _refused(r, "is not a biodl run directory (no run.json) but holds model.pt, test")
        assert (out / "model.pt").read_text() == "my old model" and (out / "notes.txt").exists()
    (out / "model.pt").unlink()
    (out / "test").rmdir()
    _ok(runner.invoke(app, args))  # other files are no obstacle
    assert (out / "notes.txt").read_text() == "mine" and (out / "run.json").exists()


def test_out_paths_that_cannot_be_written(seq_run, fasta, rest_small, tmp_path):
    r = runner.invoke(app, ["predict", str(seq_run), str(fasta), "--out", str(tmp_path)])
    _refused(r, "is a directory; give a file name to write")
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    r = runner.invoke(app, ["predict", str(seq_run), str(fasta), "--out", str(blocker / "p.tsv")])
    _refused(r, f"cannot write here: {blocker} is a file, not a directory")
    r = runner.invoke(
        app, ["predict", str(seq_run), str(fasta), "--out", str(tmp_path / "new" / "deep" / "p.tsv")]
    )
    _ok(r)
    assert f"created directory {tmp_path / 'new'} (and 1 below it)" in r.output
    r = runner.invoke(app, ["train", str(fasta), "--out", str(blocker)])
    _refused(r, "--out names the run directory, and this is a file")
    r = runner.invoke(app, ["evaluate", str(seq_run), str(rest_small["test"]), "--out", str(blocker)])
    _refused(r, f"{blocker}: is a file; a directory is expected here")


# ------------------------------------------------------------------ errors that said nothing
def _truncated(src: Path, dst: Path, text: bytes | None = None) -> Path:
    data = gzip.compress(text) if text is not None else src.read_bytes()
    dst.write_bytes(data[: len(data) // 2])
    return dst


def test_truncated_gzip_inputs_are_named(seq_run, dgex_run, rest_small, tmp_path):
    seq = _truncated(None, tmp_path / "a.seq.gz", rest_small["train"].read_bytes())
    r = runner.invoke(app, ["train", str(seq), "--out", str(tmp_path / "r"), "--epochs", "1"])
    _refused(r, f"{seq}: the file is truncated or corrupt")
    fa = _truncated(None, tmp_path / "q.fa.gz", (">a\n" + "ACGT" * 2000 + "\n").encode() * 20)
    r = runner.invoke(app, ["predict", str(seq_run), str(fa)])
    _refused(r, f"{fa}: the file is truncated or corrupt")
    mol = _truncated(None, tmp_path / "m.csv.gz", (DATA / "molecules" / "delaney_150.csv").read_bytes())
    r = runner.invoke(
        app, ["train", "--system", "neural-fp", str(mol), "--target", "y", "--out", str(tmp_path / "m")]
    )
    _refused(r, f"{mol}: the file is truncated or corrupt")
    ex = _truncated(DATA / "expression" / "bladder_dgex_slice.csv.gz", tmp_path / "e.csv.gz")
    r = runner.invoke(app, ["predict", str(dgex_run), str(ex)])
    _refused(r, f"{ex}: the file is truncated or corrupt")
    g = _truncated(GENOME, tmp_path / "g.fna.gz")
    r = runner.invoke(
        app,
        ["train", "--system", "deepsea", "--genome", str(g), "--annotation", str(GFF), "--labels", "CDS"]
        + ["--out", str(tmp_path / "w")],
    )
    _refused(r, f"{g}: the file is truncated or corrupt")
    # corrupt, not cut: the error comes from inside the reader (here htslib's or gzip's), and
    # the one compressed input of the command is named
    data = bytearray(gzip.compress(VCF.read_bytes(), mtime=0))
    data[60:80] = bytes(20)  # zlib: "invalid distance too far back" (other places give a bad record)
    vcf = tmp_path / "v.vcf.gz"
    vcf.write_bytes(bytes(data))
    r = runner.invoke(
        app,
        [
            "variants",
            str(seq_run),
            "--vcf",
            str(vcf),
            "--genome",
            str(SMALL_GENOME),
            "--out",
            str(tmp_path / "v.tsv"),
        ],
    )
    assert r.exit_code == 2 and str(vcf) in r.output and "corrupt" in r.output, r.output
    assert "Traceback" not in r.output


def test_bad_vcf_records_name_the_line(seq_run, tmp_path):
    lines = VCF.read_text().splitlines()
    bad = tmp_path / "badpos.vcf"
    rec = next(i for i, x in enumerate(lines) if not x.startswith("#"))
    f = lines[rec].split("\t")
    f[1] = "abc"
    bad.write_text("\n".join(lines[:rec] + ["\t".join(f)] + lines[rec + 1 :]) + "\n")
    args = ["--genome", str(SMALL_GENOME), "--out", str(tmp_path / "e.tsv")]
    r = runner.invoke(app, ["variants", str(seq_run), "--vcf", str(bad), *args])
    _refused(r, f"{bad}, line {rec + 1}: POS must be a positive integer, got 'abc'")
    nohead = tmp_path / "nohead.vcf"
    nohead.write_text("\n".join(x for x in lines if not x.startswith("#")) + "\n")
    r = runner.invoke(app, ["variants", str(seq_run), "--vcf", str(nohead), *args])
    _refused(r, f"{nohead}, line 1: a VCF record before the '#CHROM", "header")
    assert not (tmp_path / "e.tsv").exists()


def test_a_model_of_the_wrong_kind_says_what_it_reads(dgex_run, seq_run, fasta, tmp_path):
    what = "this model is dgex of kind 'expression', which reads expression matrices"
    for cmd in ("ism", "attribute"):
        r = runner.invoke(app, [cmd, str(dgex_run), str(fasta), "--out", str(tmp_path / "x.npz")])
        _refused(r, f"biodl {cmd} needs a DNA-sequence model", what)
    r = runner.invoke(
        app,
        [
            "variants",
            str(dgex_run),
            "--vcf",
            str(VCF),
            "--genome",
            str(SMALL_GENOME),
            "--out",
            str(tmp_path / "e"),
        ],
    )
    _refused(r, "biodl variants needs a DNA-sequence model", what)
    r = runner.invoke(app, ["motifs", str(dgex_run)])
    _refused(r, "biodl motifs needs a DNA-sequence model", what)
    r = runner.invoke(app, ["predict", str(dgex_run), str(fasta)])
    _refused(
        r, f"{fasta}: is a FASTA file, but this model (dgex, kind 'expression') reads expression matrices"
    )
    r = runner.invoke(app, ["predict", str(seq_run), str(DATA / "expression" / "pbmc_slice.h5ad")])
    _refused(r, "is an HDF5 file, but this model (deepbind, kind 'sequences') reads DNA sequences")


def test_an_unexpected_error_is_one_line(seq_run, fasta, monkeypatch):
    import biodl.pipeline

    def boom(*a, **k):
        raise ValueError("some deep numpy complaint")

    monkeypatch.setattr(biodl.pipeline, "predict", boom)
    r = runner.invoke(app, ["predict", str(seq_run), str(fasta)])
    _refused(
        r,
        "unexpected ValueError at biodl/cli/__init__.py:",
        "(raised in test_faults.py:",
        "some deep numpy complaint",
        "BIODL_TRACEBACK=1",
    )
    # out of memory is no unchecked input (it said 'please report it')
    for e in (
        MemoryError("Unable to allocate output buffer."),
        RuntimeError("DefaultCPUAllocator: not enough memory"),
    ):

        def short(*a, e=e, **k):
            raise e

        monkeypatch.setattr(biodl.pipeline, "predict", short)
        r = runner.invoke(app, ["predict", str(seq_run), str(fasta)])
        _refused(r, "out of memory (", "nothing was replaced", "--batch-size")
        assert "please report" not in r.output


# ------------------------------------------------------------------ dubious input
def _seq_table(path: Path, labels: list, seqs: list[str] | None = None, ids: list[str] | None = None) -> Path:
    rng = np.random.default_rng(0)
    seqs = seqs or ["".join(rng.choice(list("ACGT"), 60)) for _ in labels]
    ids = ids or [f"s{i}" for i in range(len(labels))]
    pd.DataFrame({"id": ids, "seq": seqs, "y": labels}).to_csv(path, sep="\t", index=False)
    return path


def test_labels_all_zero_are_refused_and_missing_ones_counted(tmp_path):
    zero = _seq_table(tmp_path / "zero.tsv", [0] * 60)
    r = runner.invoke(app, ["train", str(zero), "--out", str(tmp_path / "r0"), "--epochs", "1", *TINY])
    _refused(r, "the training labels have one value only (y: all 0): there is nothing to learn")
    assert not (tmp_path / "r0" / "model.pt").exists()
    some = _seq_table(tmp_path / "nan.tsv", [0, 1, "", 1, 0, 1, "NaN", 0, "N/A", 1] * 6)
    r = runner.invoke(
        app, ["train", str(some), "--out", str(tmp_path / "r1"), "--epochs", "1", "--no-progress", *TINY]
    )
    _ok(r)
    msg = " ".join(r.output.split())
    assert "missing (NaN) label value(s) in the training set (y: " in msg
    assert "masked out of the loss and the metrics" in msg


def test_label_values_no_loss_can_use_are_refused(seq_run, tmp_path):
    args = ["--epochs", "1", "--no-progress", *TINY]
    inf = _seq_table(tmp_path / "inf.tsv", [0, 1, "inf", 1, 0, 1] * 10)
    r = runner.invoke(app, ["train", str(inf), "--out", str(tmp_path / "ri"), *args])
    _refused(r, "infinite label value(s) in the training data (first: y = inf)")
    two = _seq_table(tmp_path / "two.tsv", [0, 1, 2, 1, 0, 1] * 10)
    r = runner.invoke(app, ["train", str(two), "--task", "binary", "--out", str(tmp_path / "rb"), *args])
    _refused(r, "a binary task needs labels 0 or 1, but", "training label value(s) are not (label y: 2)")
    r = runner.invoke(app, ["train", str(two), "--task", "multiclass", "--out", str(tmp_path / "rm"), *args])
    _refused(r, "deepbind does not do multiclass tasks (it does: binary, regression, multilabel)")
    assert "[biodl] training" not in r.output and "Warning" not in r.output  # before any data is read
    assert not any((tmp_path / d).exists() for d in ("ri", "rb", "rm"))  # refused before the run dir
    gaps = _seq_table(tmp_path / "gaps.tsv", [0, 1, "", 1, 0, 1])
    r = runner.invoke(app, ["evaluate", str(seq_run), str(gaps)])
    _ok(r)
    assert "scored 5 labelled of 6 items of" in " ".join(r.output.split())
    half = _seq_table(tmp_path / "half.tsv", [0, 1, 0.5, 1, 0, 1])
    r = runner.invoke(app, ["evaluate", str(seq_run), str(half)])
    _refused(r, "a binary task needs labels 0 or 1, but 1 evaluation (", "half.tsv) label value(s) are not")


def test_label_words_of_a_binary_task_have_a_stated_positive(seq_run, tmp_path):
    """A label column of two words trained as a binary task: the positive word of a known pair,
    or --set positive, is label 1, said, and kept with the model: a test file of positives only
    is all 1 (it was read as all 0: each file's words were coded by their alphabetical order), and
    bound / unbound trained 'unbound' as the positive class. Unknown words, a numbers model given
    words, and words for regression are refused."""
    args = ["--epochs", "1", "--no-progress", *TINY]
    tf = _seq_table(tmp_path / "tf.tsv", ["True", "False"] * 30)
    pos = _seq_table(tmp_path / "pos.tsv", ["True"] * 6)
    r = runner.invoke(
        app, ["train", str(tf), "--task", "binary", "--test", str(pos), "--out", str(tmp_path / "tf")] + args
    )
    _ok(r)
    assert "label column 'y': 'True' is the positive class (1), 'False' the negative (0)" in " ".join(
        r.output.split()
    )
    test = pd.read_csv(tmp_path / "tf" / "test" / "predictions.tsv", sep="\t")
    assert test["true_y"].tolist() == [1] * 6
    bu = _seq_table(tmp_path / "bu.tsv", ["unbound", "bound"] * 30)
    r = runner.invoke(app, ["train", str(bu), "--task", "binary", "--out", str(tmp_path / "bu")] + args)
    _ok(r)
    assert "'bound' is the positive class (1)" in r.output
    r = runner.invoke(app, ["evaluate", str(tmp_path / "bu"), str(bu), "--out", str(tmp_path / "ev")])
    _ok(r)
    ev = pd.read_csv(tmp_path / "ev" / "predictions.tsv", sep="\t")
    assert ev["true_y"].tolist() == [0, 1] * 30
    rj = tmp_path / "bu" / "run.json"  # a run of an earlier biodl (words coded alphabetically)
    rj.write_text(rj.read_text().replace('"unbound",\n    "bound"', '"bound",\n    "unbound"'))
    r = runner.invoke(app, ["train", str(bu), "--task", "binary", "--out", str(tmp_path / "bu")] + args)
    _refused(r, "holds a run that coded the labels as 'bound' = 0, 'unbound' = 1", "--no-resume")
    fb = _seq_table(tmp_path / "fb.tsv", ["foo", "bar"] * 30)
    r = runner.invoke(app, ["train", str(fb), "--task", "binary", "--out", str(tmp_path / "fb")] + args)
    _refused(r, "fb.tsv: the labels are words ('bar', 'foo')", "give --set positive=WORD")
    r = runner.invoke(app, ["train", str(fb), "--set", "positive=foo", "--out", str(tmp_path / "fb")] + args)
    _ok(r)
    r = runner.invoke(app, ["evaluate", str(tmp_path / "fb"), str(bu)])
    _refused(
        r, "bu.tsv: label(s) 'bound', 'unbound' are neither of the model's classes ('bar' = 0, 'foo' = 1)"
    )
    r = runner.invoke(app, ["evaluate", str(seq_run), str(bu), "--label-col", "y"])
    _refused(
        r, "label column 'y' holds words ('bound', 'unbound'), but this binary model was trained on numbers"
    )
    r = runner.invoke(app, ["train", str(bu), "--task", "regression", "--out", str(tmp_path / "rg")] + args)
    _refused(r, "label column 'y' holds words ('bound', 'unbound'): a regression task needs numbers")
    three = _seq_table(tmp_path / "three.tsv", ["bound", "unbound", "weak"] * 20)
    r = runner.invoke(app, ["train", str(three), "--task", "binary", "--out", str(tmp_path / "r3")] + args)
    _refused(r, "a binary task needs two label words, label column 'y' has 3")  # (it asked for positive=)
    r = runner.invoke(
        app,
        ["train", str(bu), "--system", "splicing-cnn", "--task", "multiclass", "--set", "positive=bound"]
        + ["--out", str(tmp_path / "rm"), "--epochs", "1", "--no-progress"],
    )
    _refused(r, "--set positive makes the labels a binary task")
    na = _seq_table(tmp_path / "na.tsv", ["bound", "unbound", "NA"] * 20)
    r = runner.invoke(app, ["train", str(na), "--task", "binary", "--out", str(tmp_path / "rn")] + args)
    _refused(r, "na.tsv, line 4: missing class label ('NA') in column 'y'")  # it was a class


def test_no_resume_clears_only_what_a_run_writes(rest_small, tmp_path):
    args = ["train", str(rest_small["train"]), "--epochs", "1", "--no-progress", *TINY]
    run = tmp_path / "run"
    _ok(runner.invoke(app, [*args, "--out", str(run)]))
    (run / "notes.txt").write_text("mine")
    (run / "figs").mkdir()
    (run / "figs" / "f.png").write_text("mine")
    r = runner.invoke(app, [*args, "--out", str(run), "--no-resume", "--seed", "3"])
    _ok(r)
    assert "kept 2 entries biodl does not write: figs, notes.txt" in " ".join(r.output.split())
    assert (run / "notes.txt").read_text() == "mine" and (run / "figs" / "f.png").exists()
    assert json.loads((run / "run.json").read_text())["training"]["seed"] == 3
    # a folder with somebody else's run.json is not a run: never cleared
    proj = tmp_path / "proj"
    (proj / "src").mkdir(parents=True)
    (proj / "run.json").write_text('{"my": "config"}')
    (proj / "src" / "a.py").write_text("x")
    for extra in ([], ["--no-resume"]):
        r = runner.invoke(app, [*args, "--out", str(proj), *extra])
        _refused(r, "holds a run.json that biodl did not write")
        assert (proj / "run.json").read_text() == '{"my": "config"}' and (proj / "src" / "a.py").exists()


def test_a_run_resumes_only_on_the_data_it_started_with(rest_small, tmp_path):
    data = tmp_path / "train.seq"
    data.write_bytes(rest_small["train"].read_bytes())
    run = tmp_path / "run"
    args = ["train", str(data), "--out", str(run), "--no-progress", *TINY]
    _ok(runner.invoke(app, [*args, "--epochs", "1"]))
    r = runner.invoke(app, [*args, "--epochs", "2"])  # the same file: resumed
    _ok(r)
    assert "resuming from" in r.output
    lines = data.read_text().splitlines(keepends=True)
    data.write_text("".join(lines[:1] + lines[1:][::-1][: len(lines) - 10]))  # other rows, same path
    r = runner.invoke(app, [*args, "--epochs", "3"])
    _refused(r, f"the training file (DATA) {data}: its content changed since this run started")
    assert json.loads((run / "run.json").read_text())["status"] == "finished"


def test_no_output_replaces_the_model_or_asks_two_things_of_one_file(seq_run, fasta, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.pt").write_bytes((seq_run / "model.pt").read_bytes())
    before = (run / "model.pt").read_bytes()
    for cmd in (
        [
            "variants",
            str(run),
            "--vcf",
            str(VCF),
            "--genome",
            str(SMALL_GENOME),
            "--out",
            str(run / "model.pt"),
        ],
        ["predict", str(run / "model.pt"), str(fasta), "--out", str(run / "model.pt"), "--format", "tsv"],
    ):
        _refused(runner.invoke(app, cmd), "model.pt: is an input of this command")
    assert (run / "model.pt").read_bytes() == before
    r = runner.invoke(
        app,
        ["variants", str(seq_run), "--vcf", str(VCF), "--genome", str(SMALL_GENOME)]
        + ["--out", str(tmp_path / "same.tsv"), "--out-vcf", str(tmp_path / "same.tsv")],
    )
    _refused(r, "--out and --out-vcf name the same file")
    r = runner.invoke(app, ["attribute", str(seq_run), str(fasta), "--out", str(tmp_path / "a.tsv")])
    _refused(r, "biodl attribute writes .npz; give --out a name ending so")
    r = runner.invoke(app, ["ism", str(seq_run), str(fasta), "--out", str(tmp_path / "a.csv")])
    _refused(r, "biodl ism writes .npz or .tsv or .tsv.gz")
    r = runner.invoke(app, ["train", str(fasta), "--out", str(tmp_path / "p"), "--precision", "banana"])
    _refused(r, "--precision must be one of 32-true, 16-mixed, bf16-mixed")
    assert not (tmp_path / "p").exists()


def test_duplicate_ids_are_warned(seq_run, tmp_path):
    fa = tmp_path / "dup.fa"
    fa.write_text(">x\n" + "ACGT" * 25 + "A\n>x\n" + "GGCA" * 25 + "T\n>y\n" + "TTGA" * 25 + "C\n")
    r = runner.invoke(app, ["predict", str(seq_run), str(fa)])
    _ok(r)
    assert "1 record id(s) occur more than once ('x' x2); all rows are kept in input order" in " ".join(
        r.output.split()
    )


def test_short_sequences_are_warned(seq_run, tmp_path):
    fa = tmp_path / "short.fa"
    fa.write_text(">tiny\nACGTACGTACGTACGTACGTACGTA\n>full\n" + "GGCA" * 25 + "T\n")
    r = runner.invoke(app, ["predict", str(seq_run), str(fa)])
    _ok(r)
    msg = " ".join(r.output.split())
    assert "1 of 2 sequence(s) are under half the 101-bp training length (shortest 25 bp)" in msg


@pytest.fixture(scope="module")
def window_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("faults") / "win"
    r = runner.invoke(
        app,
        ["train", "--system", "deepsea", "--genome", str(GENOME), "--annotation", str(GFF), "--labels", "CDS"]
        + ["--epochs", "1", "--no-progress", "--out", str(out), "--set", "window=300", "--set", "step=300"]
        + ["--set", "center=200", *WINDOW_TINY],
    )
    _ok(r)
    return out


def test_genome_windows_say_what_they_drop_or_move(window_run, tmp_path):
    window = json.loads((window_run / "run.json").read_text())["data"]["window"]
    fa = tmp_path / "mixed.fa"
    fa.write_text(">short\nACGTACGT\n>long\n" + "ACGT" * (window // 2) + "\n")
    r = runner.invoke(app, ["predict", str(window_run), str(fa)])
    _ok(r)
    assert f"1 record(s) shorter than the model's {window}-bp window give no window" in " ".join(
        r.output.split()
    )
    bed = tmp_path / "peaks.bed"
    bed.write_text("NC_000913.3\t10\t60\tedge\nNC_000913.3\t50000\t50100\tmiddle\n")
    r = runner.invoke(app, ["predict", str(window_run), str(bed), "--set", f"genome={GENOME}"])
    _ok(r)
    assert "1 of 2 interval(s) are centred within" in " ".join(r.output.split())


def test_unknown_types_list_every_type(tmp_path):
    r = runner.invoke(
        app,
        [
            "train",
            "--system",
            "deepsea",
            "--genome",
            str(GENOME),
            "--annotation",
            str(GFF),
            "--labels",
            "tRNA",
        ]
        + ["--out", str(tmp_path / "w")],
    )
    _refused(
        r,
        "no features of type ['tRNA']",
        "gene (94), CDS (90), exon (4), ncRNA (4), mobile_genetic_element (2)",
    )


# ------------------------------------------------------------------ first-time friction
def test_evaluation_predictions_carry_the_truth(seq_run, rest_small, tmp_path):
    r = runner.invoke(app, ["evaluate", str(seq_run), str(rest_small["test"]), "--out", str(tmp_path / "ev")])
    _ok(r)
    assert "scored 200 items of" in " ".join(r.output.split())
    for pred in (tmp_path / "ev" / "predictions.tsv", seq_run / "test" / "predictions.tsv"):
        df = pd.read_csv(pred, sep="\t")
        assert {"prob_Bound", "true_Bound"} <= set(df.columns)
        assert set(df["true_Bound"]) == {0, 1}
    r = runner.invoke(app, ["evaluate", str(seq_run), str(rest_small["test"])])
    _ok(r)
    assert "scored 200 items of" in r.output and "(--out DIR keeps them)" in r.output


def test_progress_counts_epochs_from_one_and_resume_says_so(rest_small, tmp_path):
    from biodl.train.fit import _EpochProgress

    class _T:
        max_epochs = 3

    bar = _EpochProgress()
    bar._trainer = _T()
    assert bar._get_train_description(2).strip() == "Epoch 3/3"
    out = tmp_path / "run"
    args = ["train", str(rest_small["train"]), "--out", str(out), "--no-progress", *TINY]
    _ok(runner.invoke(app, [*args, "--epochs", "1"]))
    r = runner.invoke(app, [*args, "--epochs", "2"])
    _ok(r)
    assert f"resuming from {out / 'checkpoints' / 'last.ckpt'} (1 epoch done of 2)" in " ".join(
        r.output.split()
    )


def test_dgex_runs_have_a_test_split_and_a_report(dgex_run):
    s = json.loads((dgex_run / "summary.json").read_text())
    assert s["n_test"] >= 1 and "mae" in s["test_metrics"]
    assert (dgex_run / "report.html").exists() and (dgex_run / "test" / "per_target_mae.tsv").exists()


def test_cellcnn_two_classes_are_binary():
    from biodl.kinds.cells.restarts import encode_labels

    assert encode_labels(["Ref", "BCRXL", "Ref"])[2] == "binary"
    assert encode_labels(["a", "b", "c"])[2] == "multiclass"


def test_report_note_explains_the_numbers(seq_run):
    from biodl.pipeline import report

    p = report(seq_run, note="Validation and test sets differ.", quiet=True)
    html = p.read_text()
    assert "About these numbers" in html and "Validation and test sets differ." in html


def test_no_validation_split_monitors_the_training_loss(tmp_path, rest_small):
    """--valid-fraction 0 used to crash deep in Lightning (early stopping on a val_ metric that
    never came); an empty validation set is now no validation set."""
    from biodl.cli import app

    data = rest_small["test"]
    out = tmp_path / "run"
    r = runner.invoke(
        app,
        ["train", str(data), "--system", "deepbind", "--valid-fraction", "0", "--epochs", "1"]
        + ["-m", "num_motifs=4", "-m", "hidden=4", "--no-progress", "--out", str(out)],
    )
    assert r.exit_code == 0, r.output
    hist = (out / "history.csv").read_text().splitlines()
    assert hist[0] == "epoch,train_loss" and len(hist) == 2


def test_leftovers_of_a_killed_write_are_removed_by_the_next_one(tmp_path, capfd):
    """A biodl process killed with SIGKILL (or by the out-of-memory killer) cannot remove its
    hidden temporary output; the next write of the same output removes it, and only it: never
    a running process's, another machine's (shared file systems), another output's or a file
    biodl did not name."""
    import signal
    import subprocess
    import sys

    from biodl.io._util import _writer_tag, atomic_write_text, staged_outputs

    out = tmp_path / "calls.tsv"
    script = (
        "import os, signal, sys\n"
        "from biodl.io._util import atomic_output\n"
        "with atomic_output(sys.argv[1]) as tmp:\n"
        "    open(tmp, 'w').write('half')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    killed = subprocess.run([sys.executable, "-c", script, str(out)], check=False)
    assert killed.returncode == -signal.SIGKILL
    [left] = tmp_path.glob(".calls.tsv.*.tmp")
    assert left.read_text() == "half" and not out.exists()

    host = _writer_tag().split("@", 1)[1]
    dead = int(left.name.split(".biodl-")[1].split("@")[0])
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        keep = [
            tmp_path / f".calls.tsv.biodl-{alive.pid}@{host}.x1.tmp",  # still writing
            tmp_path / f".calls.tsv.biodl-{dead}@elsewhere.x2.tmp",  # another machine's
            tmp_path / f".other.tsv.biodl-{dead}@{host}.x3.tmp",  # another output's
            tmp_path / ".calls.tsv.x4.tmp",  # not a name biodl tags
        ]
        for k in keep:
            k.write_text("keep")
        atomic_write_text(out, "done\n")
        assert out.read_text() == "done\n" and not left.exists()
        assert all(k.read_text() == "keep" for k in keep)
        assert f"removed {left}, left by an interrupted biodl run (process {dead} " in capfd.readouterr().err

        ev = tmp_path / "eval"
        stale = ev / f".biodl-partial.biodl-{dead}@{host}.abc"
        stale.mkdir(parents=True)
        (stale / "predictions.tsv").write_text("half")
        with staged_outputs(ev) as staging:
            (staging / "metrics.json").write_text("{}")
        assert sorted(p.name for p in ev.iterdir()) == [".biodl-evaluation.json", "metrics.json"]
    finally:
        alive.kill()
        alive.wait()


def test_a_decompression_error_names_the_compressed_input(tmp_path):
    """The last resort for a corrupt compressed input whose reader did not say which file it
    was: the command's one compressed input, registered or named on the command line."""
    from biodl.cli import _compressed_inputs

    gz, plain = tmp_path / "a.vcf.gz", tmp_path / "b.txt"
    gz.write_bytes(gzip.compress(b"x"))
    plain.write_text("x")
    assert _compressed_inputs(set(), ["predict", str(plain), str(gz)]) == f"{gz}: the file is"
    assert _compressed_inputs({str(gz)}, []) == f"{gz}: the file is"
    assert _compressed_inputs(set(), [f"--vcf={gz}", "--out", str(plain)]) == f"{gz}: the file is"
    other = tmp_path / "c.fa.gz"
    other.write_bytes(gzip.compress(b"y"))
    assert _compressed_inputs({str(other)}, [str(gz)]).startswith("one of the compressed inputs (")
    assert _compressed_inputs(set(), [str(plain), "nope"]) == "an input file is"


def test_a_pipe_as_input_is_refused_clearly(seq_run, tmp_path):
    """<(...) and /dev/stdin are read once only: the second read (after the format sniff) found
    them empty ('the file is empty'); they are refused, naming the pipe, before anything opens it."""
    fifo = tmp_path / "in.fa"
    os.mkfifo(fifo)
    r = runner.invoke(app, ["predict", str(seq_run), str(fifo)])
    _refused(r, f"{fifo}: is a pipe or a device (such as <(...) or /dev/stdin), not a file")


def test_evaluate_without_any_label_value_is_refused(seq_run, rest_small, tmp_path):
    """Every Bound missing: all metrics would be undefined; it exited 0 with null metrics."""
    lines = rest_small["test"].read_text().splitlines()
    head = lines[0].split("\t")
    j = head.index("Bound")
    rows = [ln.split("\t") for ln in lines[1:]]
    for f in rows:
        f[j] = "NaN"
    nolab = tmp_path / "nolab.seq"
    nolab.write_text("\n".join(["\t".join(head)] + ["\t".join(f) for f in rows]) + "\n")
    ev = tmp_path / "ev"
    r = runner.invoke(app, ["evaluate", str(seq_run), str(nolab), "--out", str(ev)])
    _refused(r, f"none of the {len(rows)} rows has a label value (all missing)")
    assert not ev.exists()
    empty = tmp_path / "empty.seq"
    empty.write_text(lines[0] + "\n")  # a header, no rows: named (it was "the input is empty")
    r = runner.invoke(app, ["evaluate", str(seq_run), str(empty)])
    _refused(r, "empty.seq: nothing to evaluate: the input has no records")


def test_a_second_training_into_a_run_being_written_is_refused(rest_small, tmp_path):
    """Two `biodl train` into one --out at once: the second resumed from, or with --no-resume
    deleted, the run the first was writing; both exited 0 and one run was lost."""
    import fcntl

    run = tmp_path / "run"
    run.mkdir()
    lock = run / ".biodl-train.lock"
    lock.write_text("process 4242 on somewhere, since then")
    fd = os.open(lock, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a training in progress holds it
    try:
        args = ["train", str(rest_small["train"]), "--out", str(run), "--epochs", "1", "--no-progress", *TINY]
        for extra in ([], ["--no-resume"]):
            r = runner.invoke(app, [*args, *extra])
            _refused(r, "another `biodl train` is writing this run directory now (process 4242 on somewhere")
        assert sorted(p.name for p in run.iterdir()) == [".biodl-train.lock"]
    finally:
        os.close(fd)
    _ok(runner.invoke(app, args))  # the lock released: trains, and leaves no lock file behind
    assert not lock.exists() and (run / "model.pt").exists()


def test_training_into_a_part_of_another_run_is_refused(seq_run, rest_small, tmp_path):
    run = tmp_path / "ens"
    (run / "member2").mkdir(parents=True)
    (run / "run.json").write_bytes((seq_run / "run.json").read_bytes())
    r = runner.invoke(
        app, ["train", str(rest_small["train"]), "--out", str(run / "member2"), "--no-resume", *TINY]
    )
    _refused(r, "member2: is a part of the run", "Give another --out")
    assert not any((run / "member2").iterdir())


def test_refusals_after_the_data_are_read_leave_the_run_as_it_was(rest_small, tmp_path):
    """A test label no metric can use was refused after all epochs had trained (the run left
    `running`); --epochs fewer than an ensemble's members had rewrote run.json as `running`."""
    bad = tmp_path / "bad_test.tsv"
    lines = rest_small["test"].read_text().splitlines()
    f = lines[1].split("\t")
    f[-1] = "2"
    bad.write_text("\n".join([lines[0], "\t".join(f), *lines[2:]]) + "\n")
    args = ["train", str(rest_small["train"]), "--epochs", "2", "--no-progress", *TINY]
    r = runner.invoke(app, [*args, "--test", str(bad), "--out", str(tmp_path / "bt")])
    _refused(r, "a binary task needs labels 0 or 1, but 1 test (", "label Bound: 2")
    assert "epoch" not in r.output.lower() and not (tmp_path / "bt").exists()
    ens = tmp_path / "ens"
    _ok(runner.invoke(app, [*args, "--ensemble", "2", "--out", str(ens)]))
    before = (ens / "run.json").read_bytes()
    r = runner.invoke(
        app, [*args[:2], "--epochs", "1", "--no-progress", *TINY, "--ensemble", "2", "--out", str(ens)]
    )
    _refused(r, "member1/checkpoints/last.ckpt: cannot resume: the checkpoint has 2 epochs done")
    assert (ens / "run.json").read_bytes() == before  # still the finished run


def test_a_retrained_model_takes_the_earlier_models_outputs_away(rest_small, tmp_path):
    """Extending a run without --test kept the earlier model's test/ (the report showed its
    numbers as the new model's) and its report, filters and plots."""
    run = tmp_path / "run"
    args = ["train", str(rest_small["train"]), "--no-progress", "--out", str(run), *TINY]
    _ok(runner.invoke(app, [*args, "--epochs", "1", "--test", str(rest_small["test"])]))
    (run / "report.html").write_text("the 1-epoch model's report")
    (run / "motifs.tsv").write_text("its motifs")
    (run / "pred_vs_true.png").write_bytes(b"a plot of the old model")  # any report plot (of any kind)
    (run / "interpret").mkdir()
    (run / "my_notes.txt").write_text("mine")
    (run / "pred_vs_true_mine.png").write_bytes(b"mine too")
    r = runner.invoke(app, [*args, "--epochs", "1"])  # a rerun that trains nothing: all kept
    _ok(r)
    assert (run / "report.html").exists() and (run / "test" / "metrics.json").exists()
    r = runner.invoke(app, [*args, "--epochs", "2"])  # extended without --test: a new model
    _ok(r)
    assert "of the model this training replaced" in r.output and "test/" in r.output  # a folder, said so
    for name in ("report.html", "motifs.tsv", "test", "pred_vs_true.png", "interpret"):
        assert not (run / name).exists(), name
    assert (run / "my_notes.txt").read_text() == "mine" and (run / "pred_vs_true_mine.png").exists()
    assert "test" not in json.loads((run / "run.json").read_text()).get("metrics", {})


def test_an_empty_validation_split_is_said(rest_small, tmp_path):
    tiny = tmp_path / "tiny.seq"
    tiny.write_text("".join(rest_small["train"].read_text().splitlines(True)[:3]))  # header + 2 peaks
    r = runner.invoke(
        app, ["train", str(tiny), "--out", str(tmp_path / "r"), "--epochs", "1", "--no-progress", *TINY]
    )
    _ok(r)
    assert "validating on 0" in r.output and "the validation split is empty" in r.output


def test_pad_says_how_many_sequences_it_padded_or_cropped(rest_small, tmp_path):
    args = ["train", str(rest_small["train"]), "--out", str(tmp_path / "r"), "--epochs", "1", "--no-progress"]
    r = runner.invoke(app, [*args, *TINY, "--pad", "80", "--test", str(rest_small["test"])])
    _ok(r)
    assert re.search(
        r"--pad 80: of the \d+ training sequences, 0 shorter were padded .* and \d+ longer cropped", r.output
    )
    assert "of the 200 test sequences" in r.output


def test_a_rerun_of_a_run_without_checkpoints_keeps_its_report(tmp_path):
    """CellCnn keeps no Lightning checkpoints: every rerun of a finished run (nothing trained)
    was taken for a new model and its report and interpret/ removed (an interrupted rerun then
    left no report)."""
    d = Path(__file__).parent / "data" / "cells"
    args = [
        "train",
        "--system",
        "cellcnn",
        "--samples",
        str(d / "samples.csv"),
        "--out",
        str(tmp_path / "cc"),
    ]
    args += ["--set", "nrun=2", "--set", "n_best=1", "--set", "ncell=50", "--set", "nsubset=20"]
    _ok(runner.invoke(app, [*args, "--epochs", "2", "--no-progress"]))
    assert (tmp_path / "cc" / "report.html").exists()
    r = runner.invoke(app, [*args, "--epochs", "2", "--no-progress"])
    _ok(r)
    assert (
        "of the model this training replaced" not in r.output and (tmp_path / "cc" / "report.html").exists()
    )


def test_a_genome_evaluation_writes_the_columns_of_the_training_test(window_run, tmp_path):
    """`biodl evaluate RUN GENOME` wrote centre columns the training's test/predictions.tsv
    lacks: a script reading one broke on the other (column 4)."""
    r = runner.invoke(app, ["evaluate", str(window_run), str(GENOME), "--out", str(tmp_path / "ev")])
    _ok(r)
    ev = pd.read_csv(tmp_path / "ev" / "predictions.tsv", sep="\t")
    test = pd.read_csv(window_run / "test" / "predictions.tsv", sep="\t")
    assert list(ev.columns) == list(test.columns)
    pd.testing.assert_frame_equal(ev, test, atol=1e-5)
    r = runner.invoke(app, ["predict", str(window_run), str(GENOME), "--out", str(tmp_path / "p.tsv")])
    _ok(r)  # predictions keep the centre the labels refer to
    assert {"center_start", "center_end"} <= set(pd.read_csv(tmp_path / "p.tsv", sep="\t", nrows=2).columns)


def test_long_names_are_written_or_refused_in_one_line(seq_run, fasta, tmp_path):
    """A 230-byte output name (legal) could not be written: its temporary name passed 255 bytes;
    a name over 255 bytes or a path over 4096 was an 'unexpected OSError ... please report it'."""
    from biodl.io._util import atomic_write_text

    legal = tmp_path / ("a" * 230 + ".tsv")
    atomic_write_text(legal, "x\n")
    atomic_write_text(legal, "y\n")  # a second write (its leftovers' pattern is the short name's)
    assert legal.read_text() == "y\n" and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    r = runner.invoke(
        app, ["predict", str(seq_run), str(fasta), "--out", str(tmp_path / ("b" * 300 + ".tsv"))]
    )
    _refused(r, "is 304 bytes long; file systems take names of at most 255")
    deep = tmp_path.joinpath(*["c" * 250] * 20, "p.tsv")
    r = runner.invoke(app, ["predict", str(seq_run), str(fasta), "--out", str(deep)])
    _refused(r, "the path is longer than 4096 bytes")
    r = runner.invoke(app, ["train", str(fasta), "--out", str(tmp_path / ("d" * 300))])
    _refused(r, "file systems take names of at most 255")


def test_checkpoints_are_written_by_the_one_safe_writer(tmp_path, monkeypatch):
    """Lightning's writer staged checkpoints in $TMPDIR and copied them over the old file where
    that is another file system: a kill left an empty last.ckpt (no resume), a full disk an
    unchecked error and a truncated best.ckpt."""
    import torch

    from biodl.train.fit import TrainConfig, _AtomicCheckpointIO, make_trainer

    io = _AtomicCheckpointIO()
    target = tmp_path / "checkpoints" / "last.ckpt"
    io.save_checkpoint({"epoch": 1}, target)
    assert torch.load(target)["epoch"] == 1

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(BiodlInputError, match="no space left on the device; nothing was replaced"):
        io.save_checkpoint({"epoch": 2}, target)
    monkeypatch.undo()
    assert torch.load(target)["epoch"] == 1 and [p.name for p in target.parent.iterdir()] == ["last.ckpt"]
    det, cudnn = torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic
    try:  # (a Trainer made outside fit turns torch's determinism on for the process)
        trainer = make_trainer(tmp_path, TrainConfig(max_epochs=1, progress=False), "val_loss", "min")
        assert isinstance(trainer.strategy.checkpoint_io, _AtomicCheckpointIO)
    finally:
        torch.use_deterministic_algorithms(det)
        torch.backends.cudnn.deterministic = cudnn


def _small_deepbind(run: Path, options: dict, **config):
    """A 4-motif DeepBind trained on the CPU into ``run`` through ``biodl.pipeline.train``."""
    from biodl.pipeline import train
    from biodl.train.fit import TrainConfig

    cfg = TrainConfig(device="cpu", progress=False, **config)
    return train(
        "deepbind", run, options=options, model_options={"num_motifs": 4, "motif_len": 8}, config=cfg
    )


def test_a_retraining_stopped_before_its_test_evaluation_shows_no_old_test_results(
    rest_small, tmp_path, monkeypatch
):
    """Killed (or failing) after the new model was saved, before its test evaluation finished, a
    retraining left test/ and summary.json of the OLD model; `biodl report` showed them as the new
    model's held-out results."""
    import biodl.pipeline as pipeline

    run = tmp_path / "run"

    def fit(epochs):
        opts = {"data": rest_small["train"], "test_file": rest_small["test"]}
        return _small_deepbind(run, opts, max_epochs=epochs, patience=0)

    fit(1)
    assert (run / "test" / "metrics.json").exists() and (run / "summary.json").exists()

    def killed(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "evaluate_table", killed)
    with pytest.raises(KeyboardInterrupt):
        fit(2)
    assert not (run / "test").exists() and not (run / "summary.json").exists()
    monkeypatch.undo()
    fit(2)  # the rerun finishes it: the new model's test results
    assert (run / "test" / "metrics.json").exists() and (run / "summary.json").exists()


def test_an_evaluation_killed_while_moving_its_files_in_is_said_and_finished(tmp_path, capfd):
    """Killed between two of its moves into place, an evaluation left new predictions beside the
    old metrics.json, and nothing told a reader of the folder."""
    import signal
    import subprocess
    import sys

    from biodl.io._util import half_replaced, staged_outputs
    from biodl.kinds.base import read_results

    out = tmp_path / "ev"
    with staged_outputs(out) as st:
        (st / "predictions.tsv").write_text("old\n")
        (st / "roc.png").write_text("old plot")  # the killed evaluation has none
        (st / "metrics.json").write_text(json.dumps({"metrics": {"auroc": 0.5}}))
    script = (
        "import os, signal, sys\n"
        "from biodl.io import _util\n"
        "real, calls = os.replace, []\n"
        "def once(a, b):\n"
        "    real(a, b)\n"
        "    calls.append(b)\n"
        "    if len(calls) == 2:  # the manifest, then the first file moved in\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "with _util.staged_outputs(sys.argv[1]) as st:\n"
        "    (st / 'predictions.tsv').write_text('new\\n')\n"
        "    (st / 'metrics.json').write_text('{\"metrics\": {\"auroc\": 0.9}}')\n"
        "    _util.os.replace = once\n"
    )
    killed = subprocess.run([sys.executable, "-c", script, str(out)], check=False)
    assert killed.returncode == -signal.SIGKILL
    assert (out / "predictions.tsv").read_text() == "new\n"  # moved in before the kill ...
    assert json.loads((out / "metrics.json").read_text())["metrics"]["auroc"] == 0.5  # ... the old
    assert half_replaced(out) and read_results(out) is None  # refused, said
    assert "may hold two evaluations' files" in capfd.readouterr().err
    with staged_outputs(out) as st:  # the next one finishes the killed one's moves first
        assert json.loads((out / "metrics.json").read_text())["metrics"]["auroc"] == 0.9
        assert not (out / "roc.png").exists()  # the earlier evaluation's, which it has none of
        (st / "predictions.tsv").write_text("third\n")
        (st / "metrics.json").write_text(json.dumps({"metrics": {"auroc": 0.7}}))
    assert not half_replaced(out) and read_results(out)["metrics"]["auroc"] == 0.7
    assert sorted(p.name for p in out.iterdir()) == [
        ".biodl-evaluation.json",
        "metrics.json",
        "predictions.tsv",
    ]


def test_a_rerun_of_a_run_that_stopped_early_trains_nothing(rest_small, tmp_path, capsys):
    """Lightning restores the early-stopping counter but not its decision: each identical rerun
    of a run that had stopped early trained on (6 -> 8 -> 9 -> 12 epochs), replacing the model."""
    run = tmp_path / "es"

    def fit(patience):
        return _small_deepbind(run, {"data": rest_small["train"]}, max_epochs=30, patience=patience, lr=0.05)

    from biodl.train import load_model

    def weights():
        return {k: v.clone() for k, v in load_model(run)[0].state_dict().items()}

    first = fit(1)
    assert first["epochs_run"] < 30  # stopped early
    before = weights()
    capsys.readouterr()
    again = fit(1)
    assert again["epochs_run"] == first["epochs_run"]
    assert all(torch.equal(v, weights()[k]) for k, v in before.items())
    assert "nothing more to train" in " ".join(capsys.readouterr().err.split())
    more = fit(4)  # a larger patience goes on
    assert more["epochs_run"] > first["epochs_run"]


def test_a_report_into_a_run_folder_it_cannot_write_is_one_line(seq_run, tmp_path, monkeypatch):
    """A read-only run folder (another user's, a read-only mount): 'unexpected PermissionError
    ... please report it' from the report's backup folder."""
    import shutil
    import tempfile

    run = tmp_path / "run"
    shutil.copytree(seq_run, run)
    real = tempfile.mkdtemp

    def denied(*a, **k):
        if str(k.get("prefix", "")).startswith(".report-backup"):
            raise PermissionError(errno.EACCES, "Permission denied")
        return real(*a, **k)

    monkeypatch.setattr(tempfile, "mkdtemp", denied)
    r = runner.invoke(app, ["report", str(run)])
    _refused(r, "cannot write the report here: Permission denied (the run directory is not writable")


def test_a_run_stopped_at_its_soft_cap_goes_on_with_more_epochs(rest_small, tmp_path, capsys):
    """The record of an early stop took the soft epoch cap's stop for patience's: a larger
    --epochs trained nothing ('stopped improving for 20 epochs' after one)."""
    import json as _json

    run = tmp_path / "cap"

    def fit(**kw):
        return _small_deepbind(run, {"data": rest_small["train"]}, lr=0.05, patience=20, **kw)

    first = fit(max_epochs=2, extend_epochs=6)  # soft cap 2, hard 8: stops at the first epoch not improving
    rec = _json.loads((run / "checkpoints" / "stopped.json").read_text())
    assert rec["by"] == "epoch cap" and rec["soft_cap"] == 2 and rec["epochs"] == first["epochs_run"] < 8
    capsys.readouterr()
    assert fit(max_epochs=2, extend_epochs=6)["epochs_run"] == first["epochs_run"]  # the same call: nothing
    assert "past the 2-epoch cap, validation stopped improving" in " ".join(capsys.readouterr().err.split())
    more = fit(max_epochs=first["epochs_run"] + 2)  # more epochs asked: goes on to them
    assert more["epochs_run"] == first["epochs_run"] + 2
    assert not (run / "checkpoints" / "stopped.json").exists()  # ran to its epochs: no early stop


def test_the_early_stop_record_is_gone_while_a_fit_runs(tmp_path):
    """A fit killed past its early stop but short of --min-epochs must resume: the record of an
    early stop is removed when a fit starts and written only when it ends."""
    from types import SimpleNamespace

    from biodl.train.fit import _StopRecord

    rec = tmp_path / "stopped.json"
    rec.write_text('{"by": "patience", "patience": 1}')
    trainer = SimpleNamespace(
        is_global_zero=True, should_stop=True, current_epoch=7, max_epochs=30, callbacks=[]
    )
    _StopRecord(rec, 1, None, keep=True).on_train_start(trainer, None)
    assert rec.exists()  # a rerun that trains nothing keeps it
    _StopRecord(rec, 1, None).on_train_start(trainer, None)
    assert not rec.exists()  # killed from here on: no record, the rerun resumes


def test_a_larger_min_epochs_goes_on_after_an_early_stop(tmp_path):
    """A rerun with --min-epochs above the epochs an early-stopped run had trained nothing, and
    run.json recorded the new minimum."""
    from biodl.train.fit import TrainConfig, _stopped_early

    rec = tmp_path / "stopped.json"
    rec.write_text('{"by": "patience", "patience": 1, "soft_cap": null, "epochs": 9}')
    assert _stopped_early(rec, TrainConfig(max_epochs=15, patience=1)) is not None
    assert _stopped_early(rec, TrainConfig(max_epochs=15, patience=1, min_epochs=12)) is None
