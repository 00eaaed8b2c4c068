"""Training that diverges (weights no longer finite), precisions that convert the weights, and
metrics of scores or targets with nothing to rank or explain: said, never a NaN model saved nor a
number made up."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from biodl.cli import app
from biodl.models import DeepBind
from biodl.train import RunMeta, TrainConfig, fit_model, load_model
from biodl.train import metrics as M
from biodl.train.fit import TrainingDiverged

runner = CliRunner()
TINY = ["-m", "num_motifs=4", "-m", "motif_len=6", "-m", "hidden=0"]


@pytest.fixture(autouse=True)
def _fresh_warnings():
    M._WARNED.clear()
    yield
    M._WARNED.clear()


def _table(path, n=160, regression=False, seed=0, constant=None):
    rng = np.random.default_rng(seed)
    seqs = ["".join(rng.choice(list("ACGT"), 40)) for _ in range(n)]
    if regression:
        y = [constant if constant is not None else f"{v:.4f}" for v in rng.normal(size=n)]
        head = "label"
    else:
        y = [i % 2 for i in range(n)]
        head = "Bound"
    rows = "".join(f"s{i}\t{s}\t{v}\n" for i, (s, v) in enumerate(zip(seqs, y, strict=True)))
    path.write_text(f"id\tseq\t{head}\n" + rows)
    return path


def test_a_diverging_run_stops_with_the_reason_and_saves_no_model(tmp_path):
    data, out = _table(tmp_path / "d.tsv"), tmp_path / "run"
    r = runner.invoke(app, ["train", str(data), "--out", str(out), "--epochs", "3", "--lr", "1e30", *TINY])
    text = " ".join(r.output.split())
    assert r.exit_code != 0, text
    assert "training diverged in epoch" in text and "no longer finite numbers" in text, text
    assert "--lr, 1e+30 now" in text and "--no-resume" in text, text
    assert not (out / "model.pt").exists() and not (out / "summary.json").exists()
    # the run says what happened to it: not "interrupted", with "rerun the same command" advice
    assert json.loads((out / "run.json").read_text())["status"] == "diverged"
    r = runner.invoke(app, ["evaluate", str(out), str(data)])
    text = " ".join(r.output.split())
    assert r.exit_code == 2 and "its training diverged" in text and "lower --lr and --no-resume" in text, text
    r = runner.invoke(app, ["train", str(data), "--out", str(out), "--epochs", "1", "--no-resume", *TINY])
    assert r.exit_code == 0, r.output
    # no checkpoint holds a weight that is not finite
    for ckpt in (out / "checkpoints").glob("*.ckpt"):
        state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
        assert all(bool(torch.isfinite(v).all()) for v in state.values() if v.is_floating_point()), ckpt


def test_a_short_inner_fit_that_diverges_returns_no_score(tmp_path):
    """A calibration fold or a restart (quiet fits) that diverges is a failed trial, not the end
    of the whole run: its result has no validation metric to be chosen by."""
    from biodl.kinds.sequences.data import SequenceDataset
    from biodl.kinds.sequences.io import read_sequences

    table = read_sequences(_table(tmp_path / "d.tsv"))
    tr, va = SequenceDataset(table.subset(range(120))), SequenceDataset(table.subset(range(120, 160)))
    kw = dict(num_motifs=4, motif_len=6, hidden=0)
    meta = RunMeta(kind="sequences", recipe="deepbind", task="binary", model_kwargs=dict(n_outputs=1, **kw))
    cfg = TrainConfig(max_epochs=3, patience=0, batch_size=32, lr=1e30, device="cpu", progress=False)
    with pytest.raises(TrainingDiverged):
        fit_model(DeepBind(**kw), "binary", tr, va, tmp_path / "loud", cfg, meta=meta)
    from biodl.train import DataModule, TrainingPlan, fit

    plan = TrainingPlan(DeepBind(**kw), "binary", lr=1e30)
    res = fit(plan, DataModule(tr, va, batch_size=32), tmp_path / "inner", cfg, quiet=True, inner=True)
    assert res.diverged and not any(math.isfinite(v) for v in res.val_metrics.values())


def test_true_precisions_train_and_keep_a_float32_model(tmp_path):
    data, out = _table(tmp_path / "d.tsv"), tmp_path / "run"
    r = runner.invoke(
        app, ["train", str(data), "--out", str(out), "--epochs", "1", "--precision", "64-true", *TINY]
    )
    assert r.exit_code == 0, r.output
    model, _ = load_model(out / "model.pt")
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    pred = tmp_path / "pred.tsv"
    r = runner.invoke(app, ["predict", str(out), str(data), "--out", str(pred)])
    assert r.exit_code == 0, r.output
    assert pd.read_csv(pred, sep="\t")["prob_Bound"].between(0, 1).all()


def test_an_infinite_test_target_is_refused_before_training(tmp_path):
    data = _table(tmp_path / "d.tsv", regression=True)
    test = _table(tmp_path / "t.tsv", n=20, regression=True, seed=1)
    lines = test.read_text().splitlines()
    lines[3] = lines[3].rsplit("\t", 1)[0] + "\tinf"
    test.write_text("\n".join(lines) + "\n")
    out = tmp_path / "run"
    args = ["train", str(data), "--out", str(out), "--test", str(test), "--epochs", "1", *TINY]
    r = runner.invoke(app, args)
    text = " ".join(r.output.split())
    assert r.exit_code != 0 and "1 infinite label value(s) in the test" in text, text
    assert not (out / "history.csv").exists()  # nothing trained


def test_a_test_set_of_one_target_value_has_no_r2_nor_pearson(tmp_path, capsys):
    data = _table(tmp_path / "d.tsv", regression=True)
    test = _table(tmp_path / "t.tsv", n=30, regression=True, seed=1, constant="1.5")
    out = tmp_path / "run"
    args = ["train", str(data), "--out", str(out), "--test", str(test), "--epochs", "1", *TINY]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    test_metrics = json.loads((out / "summary.json").read_text())["test_metrics"]
    assert test_metrics["r2"] is None and test_metrics["pearson"] is None  # was R^2 0.0
    assert test_metrics["mse"] > 0
    assert "the 30 targets are all 1.5: Pearson's r and R^2 are undefined (NaN)" in " ".join(r.output.split())


def test_metrics_of_constant_targets_and_predictions(capsys):
    t = torch.full((10, 1), 1.5)
    m = M.compute_metrics("regression", torch.randn(10, 1), t)
    assert math.isnan(m["r2"]) and math.isnan(m["pearson"]) and m["mse"] > 0
    y = torch.randn(10, 1, generator=torch.Generator().manual_seed(0))
    m = M.compute_metrics("regression", torch.full((10, 1), 2.0), y)
    assert math.isnan(m["pearson"]) and math.isfinite(m["r2"])  # R^2 of a constant prediction is defined
    # several outputs: the undefined ones are left out of the means
    g = torch.Generator().manual_seed(1)
    y = torch.cat([torch.randn(10, 2, generator=g), torch.ones(10, 1)], 1)
    p = y + 0.1 * torch.randn(10, 3, generator=g)
    m = M.compute_metrics("regression", p, y)
    assert m["pearson"] > 0.9 and m["r2"] > 0.8
    err = " ".join(capsys.readouterr().err.split())
    assert "1 of 3 outputs have one target value (first: output 3, all 1)" in err
    assert "the model predicts one value (2) for all 10 items: Pearson's r is undefined" in err


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_metrics_of_scores_that_are_not_finite_are_undefined(task, capsys):
    """AUROC ranked NaN scores anyhow (a diverged model scored 0.59)."""
    y = torch.tensor([[0.0], [1.0], [2.0], [1.0]] * 5 if task == "multiclass" else [[0.0], [1.0]] * 10)
    k = 3 if task == "multiclass" else 1
    logits = torch.randn(20, k, generator=torch.Generator().manual_seed(0))
    logits[3] = math.nan
    m = M.compute_metrics(task, logits, y)
    assert m and all(math.isnan(v) for v in m.values()), m
    assert "1 of 20 predictions are not finite (NaN or infinite)" in " ".join(capsys.readouterr().err.split())


def test_regression_metrics_do_not_depend_on_a_shift_of_the_targets():
    """float32 sums of squares: targets near 1e4 gave R^2 0.99 for 0.84, near 1e6 R^2 0 (or 1.4e7)."""
    g = torch.Generator().manual_seed(0)
    y = torch.randn(500, 1, generator=g)
    p = y + 0.5 * torch.randn(500, 1, generator=g)
    base = M.compute_metrics("regression", p, y)
    for off in (1e4, 1e6):
        m = M.compute_metrics("regression", p + off, y + off)
        assert m["r2"] == pytest.approx(base["r2"], abs=2e-3) and m["pearson"] == pytest.approx(
            base["pearson"], abs=2e-3
        )


def test_batches_of_one_item_are_refused_for_batch_normalisation(tmp_path):
    """basset / neural-fp with --batch-size 1: 'unexpected ValueError ... Expected more than 1
    value per channel when training' after the data were read."""
    data, out = _table(tmp_path / "d.tsv", n=40), tmp_path / "run"
    small = ["-m", "n_filters=[4,4,4]", "-m", "hidden=[4,4]", "--pad", "121"]
    r = runner.invoke(
        app, ["train", str(data), "--system", "basset", "--out", str(out), "--batch-size", "1", *small]
    )
    text = " ".join(r.output.split())
    assert r.exit_code == 2 and "--batch-size 1: a batch normalisation layer of this network needs" in text, (
        text
    )
    # a network without it trains on batches of one
    r = runner.invoke(
        app, ["train", str(data), "--out", str(tmp_path / "db"), "--batch-size", "1", "--epochs", "1", *TINY]
    )
    assert r.exit_code == 0, r.output


def test_sequence_regression_targets_far_from_unit_scale_are_said(tmp_path):
    """+100 or x 1000 trained to useless models (R^2 -106 for 0.14) without a word."""
    data = _table(tmp_path / "d.tsv", n=60, regression=True)
    lines = data.read_text().splitlines()
    rows = [r.rsplit("\t", 1) for r in lines[1:]]
    far = tmp_path / "far.tsv"
    far.write_text("\n".join([lines[0]] + [f"{a}\t{float(b) + 100:.4f}" for a, b in rows]) + "\n")
    for path, said in ((far, True), (data, False)):
        args = ["train", str(path), "--out", str(tmp_path / path.stem), "--epochs", "1", *TINY]
        r = runner.invoke(app, args)
        assert r.exit_code == 0, r.output
        assert ("the regression targets have mean" in r.output) is said, r.output


def test_validation_under_a_mixed_precision_scores_the_float32_model(tmp_path):
    """bf16 autocast in validation: DeepBind's val AUROC 0.18-0.40 for the model's 0.76, and the
    best epoch chosen by that noise. The validation metric is now the kept model's."""
    data, valid = _table(tmp_path / "d.tsv"), _table(tmp_path / "v.tsv", n=60, seed=5)
    out = tmp_path / "run"
    args = ["train", str(data), "--valid", str(valid), "--out", str(out), "--epochs", "1", "--patience", "0"]
    r = runner.invoke(app, [*args, "--precision", "bf16-mixed", *TINY])
    assert r.exit_code == 0, r.output
    val_auroc = pd.read_csv(out / "history.csv")["val_auroc"].iloc[-1]
    r = runner.invoke(app, ["evaluate", str(out), str(valid), "--out", str(tmp_path / "ev")])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["metrics"]["auroc"] == pytest.approx(
        val_auroc, abs=1e-6
    )


def test_a_quiet_training_that_diverges_is_still_an_error(tmp_path):
    """quiet=True (the Python API's) turned the divergence check off with the messages."""
    from biodl import pipeline

    cfg = TrainConfig(max_epochs=2, patience=0, lr=1e30, device="cpu", progress=False)
    mopts = {"num_motifs": 4, "motif_len": 6, "hidden": 0}
    with pytest.raises(TrainingDiverged):
        pipeline.train(
            "deepbind", tmp_path / "r", options={"data": _table(tmp_path / "d.tsv")}, config=cfg, quiet=True,
            model_options=mopts,
        )  # fmt: skip
    assert not (tmp_path / "r" / "model.pt").exists()


def test_cellcnn_restarts_that_diverge_are_never_kept(tmp_path):
    """A NaN network scored accuracy 0.5 and was selected (then an internal 'Input contains NaN')."""
    from pathlib import Path

    samples = Path(__file__).parent / "data" / "cells" / "samples.csv"
    small = [
        "--set",
        "nrun=2",
        "--set",
        "n_best=1",
        "--set",
        "ncell=50",
        "--set",
        "nsubset=20",
        "--epochs",
        "2",
    ]
    args = ["train", "--system", "cellcnn", "--samples", str(samples), *small, "--out", str(tmp_path / "c")]
    r = runner.invoke(app, [*args, "--set", "learning_rate=1e30"])
    text = " ".join(r.output.split())
    assert r.exit_code == 2 and "every one of the 2 restarts diverged" in text, text
    assert "restart 1/2: training diverged" in text


def test_a_calibration_whose_trials_all_diverge_says_so(tmp_path):
    """It said 'too few training items per fold, or a fold with one class only'."""
    args = ["train", str(_table(tmp_path / "d.tsv")), "--calibrate", "2", "--lr", "1e30", "--epochs", "2"]
    r = runner.invoke(app, [*args, "--out", str(tmp_path / "c")])
    text = " ".join(r.output.split())
    assert r.exit_code == 2 and "the training of 2 of the 2 diverged" in text, text
    assert "calibration trial 1/2: auroc nan; 3 fold(s) diverged" in text


def test_cellcnn_regression_targets_far_from_unit_scale_are_said(tmp_path):
    """CellCnn fits its targets as given: labels 1000-1040 gave predictions of 0.1-0.9 unsaid."""
    from pathlib import Path

    cells = Path(__file__).parent / "data" / "cells"
    rows = (cells / "samples.csv").read_text().splitlines()[1:]
    table = tmp_path / "samples.csv"
    table.write_text(
        "file,label\n" + "".join(f"{cells / r.split(',')[0]},{1000 + 13 * i}\n" for i, r in enumerate(rows))
    )
    small = "--set nrun=1 --set n_best=1 --set ncell=50 --set nsubset=20 --epochs 1".split()
    small += "--set report=false --set max_cells=200".split()
    args = ["train", "--system", "cellcnn", "--samples", str(table), *small, "--out", str(tmp_path / "c")]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "the regression targets have mean 1020 and sd" in " ".join(r.output.split())
