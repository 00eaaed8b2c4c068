"""Training engine: tasks, masked labels, determinism, checkpoints and resume after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from unittest import mock

import lightning.pytorch as pl
import numpy as np
import pandas as pd
import pytest
import torch

from biodl.errors import BiodlInputError
from biodl.kinds.sequences.augment import AugmentedDataset, Augmenter
from biodl.kinds.sequences.data import SequenceDataset
from biodl.kinds.sequences.io import SequenceTable
from biodl.models import DeepBind
from biodl.pipeline import train
from biodl.train import RunMeta, TrainConfig, compute_metrics, fit_model, load_model, masked_loss, seed_all

TINY = {"num_motifs": 8, "motif_len": 12, "hidden": 0}


def _meta(n_out: int = 1, task: str = "binary") -> RunMeta:
    return RunMeta(kind="sequences", recipe="deepbind", task=task, model_kwargs=dict(n_outputs=n_out, **TINY))


def _cfg(**kw) -> TrainConfig:
    base = dict(max_epochs=2, patience=0, batch_size=64, lr=3e-3, seed=0, device="cpu", progress=False)
    base.update(kw)
    return TrainConfig(**base)


def _planted(n=256, length=40, seed=0, n_labels=1):
    rng = np.random.default_rng(seed)
    seqs, labels = [], []
    motifs = ["GGAATTCC", "TTTACGTA", "CACGTGCA"][:n_labels]
    for _ in range(n):
        s = list(rng.choice(list("ACGT"), length))
        y = rng.random(n_labels) < 0.5
        for j, m in enumerate(motifs):
            if y[j]:
                p = rng.integers(0, length - len(m))
                s[p : p + len(m)] = m
        seqs.append("".join(s))
        labels.append(y.astype(np.float32))
    return SequenceTable(
        ids=[f"s{i}" for i in range(n)],
        seqs=seqs,
        labels=np.array(labels),
        label_names=[f"l{j}" for j in range(n_labels)],
    )


def test_masked_loss_ignores_missing_labels():
    logits = torch.tensor([[2.0, -1.0], [0.5, 3.0]])
    y = torch.tensor([[1.0, float("nan")], [0.0, 1.0]])
    full = masked_loss("multilabel", logits, torch.nan_to_num(y, nan=1.0))
    masked = masked_loss("multilabel", logits, y)
    expect = torch.nn.functional.binary_cross_entropy_with_logits(
        torch.tensor([2.0, 0.5, 3.0]), torch.tensor([1.0, 0.0, 1.0])
    )
    assert torch.isclose(masked, expect) and not torch.isclose(full, masked)


def test_metrics_match_sklearn():
    from sklearn.metrics import average_precision_score, roc_auc_score

    rng = np.random.default_rng(1)
    y = (rng.random((300, 2)) < 0.4).astype(np.float32)
    s = (y + rng.normal(0, 1, y.shape)).astype(np.float32)
    y[:10, 1] = np.nan
    m = compute_metrics("multilabel", torch.from_numpy(s), torch.from_numpy(y), ["a", "b"])
    ok = ~np.isnan(y[:, 1])
    assert m["auroc/a"] == pytest.approx(roc_auc_score(y[:, 0], s[:, 0]), abs=1e-5)
    assert m["auroc/b"] == pytest.approx(roc_auc_score(y[ok, 1], s[ok, 1]), abs=1e-5)
    assert m["auprc/a"] == pytest.approx(average_precision_score(y[:, 0], s[:, 0]), abs=1e-4)


@pytest.mark.parametrize("task", ["binary", "multilabel", "regression", "multiclass"])
def test_each_task_learns_planted_motifs(tmp_path, task):
    n_labels = 3 if task == "multilabel" else 1
    table = _planted(400, n_labels=n_labels, seed=2)
    n_out = n_labels
    if task == "regression":
        table.labels = table.labels * 2.0 + 0.1
    if task == "multiclass":
        table.labels = table.labels.copy()
        table.classes, n_out = ["no", "yes"], 2
    if task == "multilabel":
        table.labels[::7, 1] = np.nan  # missing labels are masked
    tr, va = table.subset(range(300)), table.subset(range(300, 400))
    torch.manual_seed(0)  # the initial weights must not depend on what earlier tests drew
    model = DeepBind(n_outputs=n_out, **TINY)
    res = fit_model(
        model,
        task,
        SequenceDataset(tr),
        SequenceDataset(va),
        tmp_path,
        _cfg(max_epochs=8, batch_size=32, lr=1e-2),
        meta=_meta(n_out, task),
        label_names=table.label_names,
    )
    hist = pd.read_csv(tmp_path / "history.csv")
    assert list(hist["epoch"]) == list(range(8))
    assert hist["train_loss"].iloc[-1] < hist["train_loss"].iloc[0]
    key = {
        "binary": "val_auroc",
        "multilabel": "val_auroc",
        "multiclass": "val_accuracy",
        "regression": "val_loss",
    }[task]
    if task == "regression":
        assert hist[key].iloc[-1] < hist[key].iloc[0]
    else:
        assert res.val_metrics[key] > 0.8, res.val_metrics
    model2, meta = load_model(tmp_path / "model.pt")
    assert meta.task == task and isinstance(model2, DeepBind)


def test_same_seed_same_numbers(tmp_path):
    table = _planted(200, seed=3)
    states = []
    for run in ("a", "b"):
        seed_all(0)
        model = DeepBind(**TINY)
        fit_model(
            model,
            "binary",
            AugmentedDataset(SequenceDataset(table.subset(range(150))), Augmenter(rc=True, shift=3)),
            SequenceDataset(table.subset(range(150, 200))),
            tmp_path / run,
            _cfg(max_epochs=2),
            meta=_meta(),
        )
        states.append(
            torch.load(tmp_path / run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
        )
    for k in states[0]:
        assert torch.equal(states[0][k], states[1][k]), k


def test_plain_step_equals_lightnings_step(tmp_path, monkeypatch):
    """On one device in full precision the step is plain PyTorch (no per-step hook dispatch):
    the weights equal those of Lightning's manual_backward / optimizer.step path to the bit,
    and the step counter still advances (a checkpoint every epoch, global_step = steps)."""
    from biodl.train.plans import TrainingPlan

    table = _planted(200, seed=5)
    states, steps = [], []
    for run, plain in (("plain", True), ("lightning", False)):
        if not plain:
            orig = TrainingPlan.on_train_start

            def lightning_path(self, _orig=orig):
                _orig(self)
                self._plain_step = False

            monkeypatch.setattr(TrainingPlan, "on_train_start", lightning_path)
        seed_all(0)
        fit_model(
            DeepBind(**TINY),
            "binary",
            SequenceDataset(table.subset(range(150))),
            SequenceDataset(table.subset(range(150, 200))),
            tmp_path / run,
            _cfg(max_epochs=3, batch_size=32),
            meta=_meta(),
        )
        ck = torch.load(tmp_path / run / "checkpoints" / "last.ckpt", weights_only=True)
        states.append(ck["state_dict"])
        steps.append(ck["global_step"])
    assert steps == [15, 15]  # 3 epochs x ceil(150 / 32)
    for k in states[0]:
        assert torch.equal(states[0][k], states[1][k]), k


def test_resume_matches_uninterrupted_run(tmp_path):
    """Stop after 2 epochs, resume to 4: the weights equal a straight 4-epoch run."""
    table = _planted(200, seed=4)
    tr, va = table.subset(range(150)), table.subset(range(150, 200))
    meta = _meta()

    def run(out, epochs):
        torch.manual_seed(0)  # same initial weights in both runs
        return fit_model(
            DeepBind(**TINY),
            "binary",
            AugmentedDataset(SequenceDataset(tr), Augmenter(rc=True)),
            SequenceDataset(va),
            out,
            _cfg(max_epochs=epochs),
            meta=meta,
        )

    run(tmp_path / "straight", 4)
    run(tmp_path / "split", 2)
    res = run(tmp_path / "split", 4)
    assert res.resumed_from is not None and res.resumed_from.endswith("last.ckpt")
    a = torch.load(tmp_path / "straight" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "split" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6), k
    hist = pd.read_csv(tmp_path / "split" / "history.csv")
    assert list(hist["epoch"]) == [0, 1, 2, 3]  # rows of finished epochs kept across the resume


def test_kill_and_resume_from_cli(tmp_path, rest_small):
    """A training process killed with SIGKILL resumes from its last checkpoint and finishes."""
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "biodl.cli",
        "train",
        str(rest_small["train"]),
        "--out",
        str(out),
        "--epochs",
        "6",
        "--patience",
        "0",
        "--no-progress",
        "--device",
        "cpu",
        "-m",
        "num_motifs=8",
        "-m",
        "motif_len=12",
    ]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True
    )
    last = out / "checkpoints" / "last.ckpt"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if (out / "history.csv").exists() and len(pd.read_csv(out / "history.csv")) >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "training finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert last.exists()
    done_before = len(pd.read_csv(out / "history.csv"))
    assert json.loads((out / "run.json").read_text())["status"] == "running"
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "finished" and run["resumed_from"].endswith("last.ckpt")
    hist = pd.read_csv(out / "history.csv")
    assert list(hist["epoch"]) == list(range(6)) and done_before >= 2


def test_train_api_with_shuffled_negatives_and_test(tmp_path, rest_small):
    s = train(
        "deepbind",
        tmp_path / "r",
        options={"data": rest_small["train"], "test_file": rest_small["test"]},
        config=_cfg(max_epochs=3),
        model_options={"num_motifs": 8, "motif_len": 12},
        quiet=True,
    )
    assert s["n_train"] + s["n_valid"] == 1200  # 600 positives + 600 shuffles
    assert 0.0 <= s["test_metrics"]["auroc"] <= 1.0
    assert (tmp_path / "r" / "test" / "roc.png").stat().st_size > 1000
    pred = pd.read_csv(tmp_path / "r" / "test" / "predictions.tsv", sep="\t")
    assert len(pred) == 200 and pred["id"].iloc[0] == "seq_00002_peak"


def test_fit_without_validation_exports_the_final_epoch(tmp_path):
    """No validation set (a refit on train + valid): model.pt holds the last epoch's weights,
    not the epoch of lowest (in-sample) training loss."""
    table = _planted(120, seed=6)
    seed_all(0)
    res = fit_model(
        DeepBind(**TINY),
        "binary",
        SequenceDataset(table),
        None,
        tmp_path,
        _cfg(max_epochs=8, lr=0.3, batch_size=16),  # a large step: the loss does not fall every epoch
        meta=_meta(),
    )
    hist = pd.read_csv(tmp_path / "history.csv")
    assert hist["train_loss"].idxmin() != 7  # premise: the lowest training loss is not the last epoch
    assert res.best_epoch == 7 and res.epochs_run == 8
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 8 * 8  # last.ckpt is the final epoch's, not the lowest-loss epoch's
    last = ckpt["state_dict"]
    exported, meta = load_model(res.model_path)
    for k, v in exported.state_dict().items():
        assert torch.equal(v, last[f"model.{k}"]), k
    assert meta.best_epoch == 7


def test_checkpoint_every_n_epochs_resume_and_best_epoch(tmp_path):
    """checkpoint_every=3 over 7 epochs: checkpoints after epochs 3 and 6 (1-based) and
    last.ckpt after the final epoch; the best epoch is picked among the checkpointed epochs
    and its weights are the ones exported; a run stopped after 4 epochs and resumed to 7
    equals the straight run, which equals a run checkpointing every epoch."""
    table = _planted(200, seed=7)
    tr, va = table.subset(range(150)), table.subset(range(150, 200))
    meta = _meta()
    saves: list[int] = []
    save = pl.Trainer.save_checkpoint

    def counting_save(self, *args, **kwargs):  # global step of every checkpoint written
        saves.append(self.global_step)
        return save(self, *args, **kwargs)

    def run(out, epochs, every, count=False):
        torch.manual_seed(0)
        with mock.patch.object(pl.Trainer, "save_checkpoint", counting_save if count else save):
            return fit_model(
                DeepBind(**TINY),
                "binary",
                SequenceDataset(tr),
                SequenceDataset(va),
                out,
                _cfg(max_epochs=epochs, checkpoint_every=every),
                meta=meta,
            )

    every1 = run(tmp_path / "every1", 7, 1)
    res = run(tmp_path / "every3", 7, 3, count=True)
    steps = 3  # 150 training sequences, batch 64
    # best (when improved) and last at epochs 3 and 6, last once more after epoch 7
    assert set(saves) == {3 * steps, 6 * steps, 7 * steps} and saves.count(7 * steps) == 1
    hist = pd.read_csv(tmp_path / "every3" / "history.csv")
    assert list(hist["epoch"]) == list(range(7))
    cand = hist[hist["epoch"].isin([2, 5])]
    assert res.best_epoch == int(cand.loc[cand["val_loss"].idxmin(), "epoch"])
    best = torch.load(tmp_path / "every3" / "checkpoints" / "best.ckpt", weights_only=True)
    assert best["global_step"] == (res.best_epoch + 1) * steps
    exported, _ = load_model(res.model_path)
    for k, v in exported.state_dict().items():
        assert torch.equal(v, best["state_dict"][f"model.{k}"]), k
    run(tmp_path / "split", 4, 3)
    resumed = run(tmp_path / "split", 7, 3)
    assert resumed.resumed_from is not None
    lasts = [
        torch.load(tmp_path / d / "checkpoints" / "last.ckpt", weights_only=True)
        for d in ("every1", "every3", "split")
    ]
    assert all(c["global_step"] == 7 * steps for c in lasts)
    for k in lasts[0]["state_dict"]:
        assert torch.allclose(lasts[0]["state_dict"][k], lasts[1]["state_dict"][k], atol=1e-6), k
        assert torch.allclose(lasts[1]["state_dict"][k], lasts[2]["state_dict"][k], atol=1e-6), k
    assert list(pd.read_csv(tmp_path / "split" / "history.csv")["epoch"]) == list(range(7))
    assert every1.epochs_run == res.epochs_run == 7
    with pytest.raises(BiodlInputError):
        run(tmp_path / "bad", 2, 0)


def test_checkpoint_loads_weights_only(tmp_path):
    table = _planted(100, seed=5)
    fit_model(
        DeepBind(**TINY),
        "binary",
        SequenceDataset(table.subset(range(80))),
        SequenceDataset(table.subset(range(80, 100))),
        tmp_path,
        _cfg(max_epochs=1),
        meta=_meta(),
    )
    for f in ("model.pt", "checkpoints/last.ckpt", "checkpoints/best.ckpt"):
        torch.load(tmp_path / f, weights_only=True)


@pytest.mark.parametrize("ensemble", [1, 2], ids=["one-network", "ensemble-2"])
def test_ddp_strategy_passes_through_to_lightning(tmp_path, rest_small, ensemble):
    """Lightning's DDP runs two CPU processes; rank 0 alone exports, reports and logs. With
    --ensemble 2 both ranks train every member (rank 1 left after member 1, and rank 0's
    member 2 failed with gloo's 'Connection closed by peer')."""
    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "biodl.cli",
        "train",
        str(rest_small["train"]),
        "--out",
        str(out),
        "--epochs",
        "2",
        "--device",
        "cpu",
        "--devices",
        "2",
        "--strategy",
        "ddp",
        "--no-progress",
        "-m",
        "num_motifs=8",
        "-m",
        "motif_len=12",
        "--ensemble",
        str(ensemble),
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.count("model: ") == 1
    # the worker runs the same command: its progress lines are not said twice
    assert r.stderr.count("[biodl] training DeepBind") == ensemble and r.stderr.count("positives only;") == 1
    run = json.loads((out / "run.json").read_text())
    assert (
        run["status"] == "finished"
        and run["training"]["strategy"] == "ddp"
        and run["training"]["devices"] == 2
    )
    for d in [out] if ensemble == 1 else [out / "member1", out / "member2"]:
        assert list(pd.read_csv(d / "history.csv")["epoch"]) == [0, 1]
    load_model(out / "model.pt")


def test_ddp_validation_metrics_count_each_item_once(tmp_path, rest_small):
    """The distributed sampler pads each process's share to equal size with repeated items: the
    validation metrics (best epoch, early stopping, history) were those of a set with
    duplicates (31 items gave an AUROC over 32). They now equal `biodl evaluate` on the
    validation file."""
    lines = rest_small["test"].read_text().splitlines()
    valid = tmp_path / "valid.seq"
    half = len(lines) // 2  # 31 items of both classes (positives first, then negatives): odd
    valid.write_text("\n".join([lines[0], *lines[half - 15 : half + 16]]) + "\n")
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "biodl.cli", "train", str(rest_small["train"]), "--valid", str(valid)]
    cmd += ["--out", str(out), "--epochs", "1", "--device", "cpu", "--devices", "2", "--strategy", "ddp"]
    cmd += ["--no-progress", "-m", "num_motifs=8", "-m", "motif_len=12"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    hist = pd.read_csv(out / "history.csv")
    ev = subprocess.run(
        [sys.executable, "-m", "biodl.cli", "evaluate", str(out), str(valid), "--device", "cpu"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ev.returncode == 0, ev.stderr[-2000:]
    auroc = json.loads(ev.stdout[ev.stdout.index("{") :])["auroc"]
    assert hist["val_auroc"].iloc[0] == pytest.approx(auroc, abs=1e-5)


def test_training_leaves_torchs_determinism_flags_as_it_found_them(tmp_path):
    """Lightning's deterministic=True stayed on for the rest of the process: ops without a
    deterministic CUDA kernel then raised in the user's own code after a training."""
    table = _planted(40, seed=3)
    data = (SequenceDataset(table.subset(range(30))), SequenceDataset(table.subset(range(30, 40))))
    assert not torch.are_deterministic_algorithms_enabled()
    fit_model(DeepBind(**TINY), "binary", *data, tmp_path, _cfg(max_epochs=1), meta=_meta())
    assert not torch.are_deterministic_algorithms_enabled() and not torch.backends.cudnn.deterministic


def test_resume_from_a_different_model_is_a_clear_error(tmp_path):
    from biodl.errors import BiodlInputError

    table = _planted(60, seed=7)
    meta = _meta()
    args = (SequenceDataset(table.subset(range(40))), SequenceDataset(table.subset(range(40, 60))))
    fit_model(DeepBind(**TINY), "binary", *args, tmp_path, _cfg(max_epochs=1), meta=meta)
    other = dict(TINY, num_motifs=6)
    with pytest.raises(BiodlInputError, match="written by a different model.*--no-resume"):
        fit_model(DeepBind(**other), "binary", *args, tmp_path, _cfg(max_epochs=2), meta=meta)
    res = fit_model(DeepBind(**other), "binary", *args, tmp_path, _cfg(max_epochs=1, resume=False), meta=meta)
    assert res.resumed_from is None and res.epochs_run == 1


# ------------------------------------------------ decision threshold chosen on validation
def test_mcc_threshold_is_the_midpoint_of_the_best_cut():
    from biodl.train.metrics import mcc_threshold, threshold_metrics

    prob = np.array([0.9, 0.8, 0.7, 0.35, 0.3, 0.1])
    y = np.array([1, 1, 0, 1, 0, 0])
    t, m = mcc_threshold(prob, y)
    # cuts after 0.8 (tp2 fp0 fn1 tn3: at 0.75) and after 0.35 (tp3 fp1 fn0 tn2: at 0.325) tie on
    # MCC 0.707; the one nearer 0.5 wins
    assert t == pytest.approx(0.325) and m == pytest.approx(np.sqrt(0.5))
    assert mcc_threshold(prob, np.ones(6)) == (0.5, pytest.approx(float("nan"), nan_ok=True))
    logits = np.log(prob / (1 - prob))[:, None]
    got = threshold_metrics(logits, y[:, None].astype(float), [t])
    assert got == pytest.approx(
        {"mcc": np.sqrt(0.5), "accuracy": 5 / 6, "sensitivity": 1.0, "specificity": 2 / 3, "threshold": 0.325}
    )


def _write_table(table: SequenceTable, path):
    pd.DataFrame({"seq": table.seqs, "Bound": table.labels[:, 0]}).to_csv(path, sep="\t", index=False)
    return path


def test_threshold_is_chosen_on_validation_stored_and_reused(tmp_path, monkeypatch, capsys):
    """The decision threshold comes from the validation predictions (never the test set), is
    stored in model.pt and run.json, and evaluate / predict use it; a model file without one
    falls back to 0.5 and says so. run.json records the torch thread count."""
    import biodl.train.metrics as metrics_mod
    from biodl.pipeline import evaluate, predict
    from biodl.train import read_model_meta, save_model
    from biodl.train.predict import predict as predict_ds

    tr = _write_table(_planted(200, seed=1), tmp_path / "train.tsv")
    va_table = _planted(90, seed=2)
    va = _write_table(va_table, tmp_path / "valid.tsv")
    te = _write_table(_planted(70, seed=3), tmp_path / "test.tsv")
    seen = []
    real = metrics_mod.mcc_threshold

    def spy(prob, target):
        seen.append(np.asarray(target).ravel().copy())
        return real(prob, target)

    monkeypatch.setattr(metrics_mod, "mcc_threshold", spy)
    s = train(
        "deepbind",
        tmp_path / "r",
        options={"data": tr, "valid_file": va, "test_file": te},
        config=_cfg(max_epochs=2),
        model_options=TINY,
        quiet=True,
    )
    assert len(seen) == 1 and np.array_equal(seen[0], va_table.labels[:, 0])  # validation labels only
    meta = read_model_meta(tmp_path / "r" / "model.pt")
    th = meta.thresholds
    assert th["chosen_on"] == "validation" and th["n"] == 90 and len(th["values"]) == 1
    assert json.loads((tmp_path / "r" / "run.json").read_text())["thresholds"] == th
    # the stored value is the best cut of the validation predictions
    model, meta = load_model(tmp_path / "r")
    out, y = predict_ds(model, SequenceDataset(va_table), rc_average=False)
    assert th["values"][0] == pytest.approx(real(1 / (1 + np.exp(-out[:, 0])), y[:, 0])[0])
    assert s["test_metrics"]["threshold"] == pytest.approx(th["values"][0])
    ev = evaluate(tmp_path / "r", te, quiet=True)["metrics"]
    assert ev["threshold"] == pytest.approx(th["values"][0]) and -1 <= ev["mcc"] <= 1
    df = predict(tmp_path / "r", te, quiet=True)
    assert ((df["prob_Bound"] >= th["values"][0]).astype(int) == df["called_Bound"]).all()
    run = json.loads((tmp_path / "r" / "run.json").read_text())
    assert isinstance(run["torch_threads"], int) and run["torch_threads"] >= 1
    # an older model file, without a threshold: 0.5, and a note saying so
    save_model(tmp_path / "old.pt", model, meta.replace(thresholds={}))
    capsys.readouterr()
    ev = evaluate(tmp_path / "old.pt", te, quiet=True)["metrics"]
    assert ev["threshold"] == 0.5 and "stores no decision threshold" in capsys.readouterr().err


def test_soft_epoch_cap_goes_on_while_validation_improves(tmp_path, capsys):
    """extend_epochs: past max_epochs, training continues while every epoch improves the
    validation metric, and stops at the first that does not (or at the hard cap, with a note)."""
    table, valid = _planted(256, seed=11), _planted(128, seed=12)

    def run(out, **cfg):
        seed_all(0)
        return fit_model(
            DeepBind(**TINY),
            "binary",
            SequenceDataset(table),
            SequenceDataset(valid),
            tmp_path / out,
            _cfg(max_epochs=2, patience=3, lr=1e-3, batch_size=32, **cfg),
            meta=_meta(),
        )

    res = run("soft", extend_epochs=6)
    auc = pd.read_csv(tmp_path / "soft" / "history.csv")["val_auroc"].tolist()
    n = len(auc)
    assert n == res.epochs_run and n > 2, auc  # premise: still improving at the soft cap, so it went on
    running_best = [a == max(auc[: e + 1]) and a > max(auc[:e], default=-1) for e, a in enumerate(auc)]
    assert all(running_best[1 : n - 1]), auc  # every epoch from the soft cap on improved ...
    assert (not running_best[n - 1]) or n == 8, auc  # ... until one did not, or the hard cap (2 + 6)
    out = capsys.readouterr()
    assert ("still improving" in out.out + out.err) == (n == 8 and running_best[-1])
    # the same run with a hard cap stops at 2 and says validation was still improving
    hard = run("hard")
    assert hard.epochs_run == 2
    out = capsys.readouterr()
    assert "still improving at the last epoch (2)" in out.out + out.err


def test_extend_epochs_must_be_a_non_negative_integer():
    with pytest.raises(BiodlInputError, match="--extend-epochs"):
        _cfg(extend_epochs=-1).check()


def test_bf16_mixed_precision_training(tmp_path, device):
    """`--precision bf16-mixed` trains on the CPU (autocast bf16) and on CUDA where present; the
    exported weights are float32 and the model scores like any other."""
    table, valid = _planted(128, seed=21), _planted(64, seed=22)
    seed_all(0)
    res = fit_model(
        DeepBind(**TINY),
        "binary",
        SequenceDataset(table),
        SequenceDataset(valid),
        tmp_path,
        _cfg(max_epochs=2, precision="bf16-mixed", device=device),
        meta=_meta(),
    )
    model, meta = load_model(res.model_path, device=device)
    assert meta.training["precision"] == "bf16-mixed"
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert 0.0 <= res.val_metrics["val_auroc"] <= 1.0


# ---------------------------------------------------------------- reruns into the same --out
def _rerun(tmp_path, rest_small, out="r", **kw):
    cfg = {k: kw.pop(k) for k in list(kw) if k in TrainConfig.__dataclass_fields__}
    return train(
        "deepbind",
        tmp_path / out,
        options={"data": kw.pop("data", rest_small["train"])},
        config=_cfg(max_epochs=cfg.pop("max_epochs", 1), **cfg),
        model_options={"num_motifs": 4, "motif_len": 8, "hidden": 0, **kw},
        quiet=True,
    )


def test_rerun_with_other_settings_is_refused_naming_them(tmp_path, rest_small):
    """A rerun asking for another run (data, seed, model option, lr, batch size) is refused before
    any data is read, naming each difference; --epochs only extends it and resumes."""
    _rerun(tmp_path, rest_small)
    other = tmp_path / "other.seq"
    other.write_text(rest_small["train"].read_text())
    with pytest.raises(BiodlInputError) as e:
        _rerun(tmp_path, rest_small, data=other, seed=7, dropout=0.5)
    msg = str(e.value)
    assert "--seed 0 here, 7 asked" in msg and "-m dropout" in msg and "other.seq asked" in msg
    assert "--no-resume" in msg
    with pytest.raises(BiodlInputError, match=r"--lr 0.003 here, 0.05 asked; --batch-size 64 here, 16"):
        _rerun(tmp_path, rest_small, lr=0.05, batch_size=16)
    run = json.loads((tmp_path / "r" / "run.json").read_text())
    assert run["training"]["seed"] == 0 and run["status"] == "finished"  # untouched
    s = _rerun(tmp_path, rest_small, max_epochs=2, patience=1)  # extends: resumes
    assert s["resumed_from"] and s["epochs_run"] == 2
    s = _rerun(tmp_path, rest_small, lr=0.05, resume=False)  # --no-resume starts over
    assert s["resumed_from"] is None


def test_rerun_checks_a_run_json_written_before_the_request(tmp_path, rest_small):
    _rerun(tmp_path, rest_small)
    p = tmp_path / "r" / "run.json"
    run = json.loads(p.read_text())
    del run["request"]
    run["options"]["data"] = rest_small["train"].name  # older runs stored the path as given
    p.write_text(json.dumps(run))
    with pytest.raises(BiodlInputError, match="--seed 0 here, 3 asked"):
        _rerun(tmp_path, rest_small, seed=3)
    assert _rerun(tmp_path, rest_small, max_epochs=2)["resumed_from"]


def test_rerun_changing_the_ensemble_layout_is_refused(tmp_path, rest_small):
    _rerun(tmp_path, rest_small)
    with pytest.raises(BiodlInputError, match="--ensemble: one network here, an ensemble"):
        _rerun(tmp_path, rest_small, ensemble=2)
    s = _rerun(tmp_path, rest_small, ensemble=2, resume=False)
    assert not (tmp_path / "r" / "history.csv").exists() and (tmp_path / "r" / "member2").is_dir()
    assert s["epochs_run"] == 2


def test_input_paths_are_stored_absolute(tmp_path, rest_small, monkeypatch):
    monkeypatch.chdir(rest_small["train"].parent)
    train(
        "deepbind",
        tmp_path / "r",
        options={"data": rest_small["train"].name, "test_file": rest_small["test"].name},
        config=_cfg(max_epochs=1),
        model_options={"num_motifs": 4, "motif_len": 8, "hidden": 0},
        quiet=True,
    )
    run = json.loads((tmp_path / "r" / "run.json").read_text())
    assert run["options"]["data"] == str(rest_small["train"])
    assert json.loads((tmp_path / "r" / "test" / "metrics.json").read_text())["data"] == str(
        rest_small["test"]
    )


def test_train_checks_device_and_out_before_reading_data(tmp_path):
    f = tmp_path / "afile"
    f.write_text("x")
    missing = tmp_path / "no_such.seq"  # never read: the checks come first
    with pytest.raises(BiodlInputError, match="parent .*afile is a file"):
        train("deepbind", f / "sub", options={"data": missing}, config=_cfg(), quiet=True)
    with pytest.raises(BiodlInputError, match="unknown device 'tpu'"):
        train("deepbind", tmp_path / "r", options={"data": missing}, config=_cfg(device="tpu"), quiet=True)
    if not torch.cuda.is_available():
        with pytest.raises(BiodlInputError, match="no CUDA GPU"):
            train(
                "deepbind", tmp_path / "r", options={"data": missing}, config=_cfg(device="cuda"), quiet=True
            )
    if not torch.backends.mps.is_available():  # it was accepted here, then failed inside Lightning
        with pytest.raises(BiodlInputError, match="--device mps was asked for, but no Apple MPS GPU"):
            train(
                "deepbind", tmp_path / "r", options={"data": missing}, config=_cfg(device="mps"), quiet=True
            )
    assert not (tmp_path / "r").exists()


def test_device_names():
    from biodl.train.predict import accelerator_for, torch_device

    assert torch_device("CPU") == torch.device("cpu") and accelerator_for("cpu") == "cpu"
    assert accelerator_for("auto") == "auto"
    for bad in ("tpu", "cpu:3", "xpu", "meta", "cuda:x"):
        with pytest.raises(BiodlInputError, match="unknown device"):
            torch_device(bad)
    n = torch.cuda.device_count()
    if n:
        assert torch_device("gpu") == torch.device("cuda") and accelerator_for("cuda:0") == "gpu"
        with pytest.raises(BiodlInputError, match=f"this machine has {n} CUDA GPU"):
            torch_device(f"cuda:{n}")
    else:
        with pytest.raises(BiodlInputError, match="--device cuda:1 was asked for, but no CUDA GPU"):
            torch_device("cuda:1")


class _Interrupting(DeepBind):
    """Raises KeyboardInterrupt (Ctrl-C) in the second epoch."""

    calls = 0

    def forward(self, x):
        type(self).calls += 1
        if self.training and type(self).calls > 3:
            raise KeyboardInterrupt
        return super().forward(x)


def test_ctrl_c_says_how_far_training_got_and_exits_130(tmp_path, capsys):
    table = _planted(48, seed=2)
    _Interrupting.calls = 0
    with pytest.raises(SystemExit) as e:
        fit_model(
            _Interrupting(**TINY),
            "binary",
            SequenceDataset(table),
            None,
            tmp_path,
            _cfg(max_epochs=5, batch_size=16),
        )
    assert e.value.code == 130
    err = capsys.readouterr().err
    assert "interrupted after 1 of 5 epochs; rerun the same command to resume" in err


@pytest.mark.parametrize("code, line", [(130, "interrupted"), (143, "stopped (SIGTERM)")])
def test_an_interrupted_command_says_so_once(monkeypatch, capsys, code, line):
    """Ctrl-C (130) or SIGTERM (143) outside training: one line, not silence; a command that
    said how far it got (training, simulations) is not followed by the general line."""
    import biodl.cli as cli
    import biodl.io._util as util

    def stopped():
        raise SystemExit(code)

    import signal

    monkeypatch.setattr(cli, "app", stopped)
    monkeypatch.setattr(util, "_INTERRUPT_SAID", [])
    monkeypatch.setattr(cli, "_MAIN_PID", [])
    handler = signal.getsignal(signal.SIGTERM)  # main() installs the CLI's: put the test's back
    try:
        with pytest.raises(SystemExit) as e:
            cli.main()
        assert e.value.code == code
        err = " ".join(capsys.readouterr().err.split())
        assert f"[biodl] {line}; no output was left half-written" in err
        util.said_interrupted()
        with pytest.raises(SystemExit):
            cli.main()
        assert capsys.readouterr().err == ""
    finally:
        signal.signal(signal.SIGTERM, handler)


def test_an_unfinished_run_is_said_by_evaluate_and_predict_and_refused_by_report(
    tmp_path, rest_small, capsys
):
    """A killed resume leaves run.json 'running' beside the model.pt of the earlier training."""
    from biodl.pipeline import evaluate, predict, report

    _rerun(tmp_path, rest_small)
    run = tmp_path / "r"
    meta = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**meta, "status": "running"}))
    capsys.readouterr()
    evaluate(run, rest_small["test"], quiet=True)
    err = capsys.readouterr().err
    assert "warning" in err and "unfinished run" in err
    predict(run / "model.pt", rest_small["test"], quiet=True)
    err = capsys.readouterr().err
    assert "unfinished run" in err and "earlier finished training" in err and "rerun the same" in err
    with pytest.raises(BiodlInputError, match="unfinished run.*rerun the same `biodl train`"):
        report(run, quiet=True)
    (run / "model.pt").unlink()  # a first training killed before it finished
    with pytest.raises(
        BiodlInputError, match="unfinished run: training was interrupted before its first model"
    ):
        evaluate(run, rest_small["test"], quiet=True)


def test_a_tie_at_the_metrics_ceiling_goes_to_the_lower_validation_loss(tmp_path):
    """Validation AUROC is 1.0 from the second epoch on while the validation loss keeps falling:
    the epoch kept is the one at 1.0 with the lowest loss (it used to be the first at 1.0, and
    all later training was thrown away); best.ckpt, the reported best epoch and the exported
    weights agree."""
    from biodl.train.fit import _BestCheckpoint, best_row

    table = _planted(240, seed=3)
    tr, va = table.subset(range(200)), table.subset(range(200, 240))
    torch.manual_seed(0)
    res = fit_model(
        DeepBind(**TINY),
        "binary",
        SequenceDataset(tr),
        SequenceDataset(va),
        tmp_path,
        _cfg(max_epochs=8, lr=0.02, batch_size=32),
        meta=_meta(),
        monitor=("auroc", "max"),
    )
    hist = pd.read_csv(tmp_path / "history.csv")
    tied = hist[hist["val_auroc"] == hist["val_auroc"].max()]
    assert len(tied) >= 3  # premise: several epochs tie at the best AUROC
    want = int(tied.loc[tied["val_loss"].idxmin(), "epoch"])
    assert want != int(tied["epoch"].min()) and res.best_epoch == want
    best = torch.load(tmp_path / "checkpoints" / "best.ckpt", weights_only=True)
    assert best["epoch"] == want
    exported, _ = load_model(res.model_path)
    for k, v in exported.state_dict().items():
        assert torch.equal(v, best["state_dict"][f"model.{k}"]), k
    # the rule itself: the best value; at the ceiling the lower loss, then the earlier epoch;
    # below it the earlier epoch (as Lightning, so results of runs without such ties stay as they were)
    rows = [
        {"epoch": 0, "val_accuracy": 0.9, "val_loss": 0.1},
        {"epoch": 1, "val_accuracy": 1.0, "val_loss": 0.5},
        {"epoch": 2, "val_accuracy": 1.0, "val_loss": 0.3},
        {"epoch": 3, "val_accuracy": 1.0, "val_loss": 0.3},
        {"epoch": 4, "val_accuracy": 1.0, "val_loss": float("nan")},
    ]
    assert best_row(rows, "val_accuracy", "max")["epoch"] == 2
    assert best_row(rows, "val_loss", "min")["epoch"] == 0
    below = [{**r, "val_accuracy": min(r["val_accuracy"], 0.95)} for r in rows]
    assert best_row(below, "val_accuracy", "max")["epoch"] == 1
    # checkpoints written before the tie-break resume its state: Lightning's own state key
    cb = _BestCheckpoint(
        dirpath=tmp_path, filename="best", monitor="val_auroc", mode="max", tie_break="val_loss"
    )
    assert (
        cb.state_key
        == pl.callbacks.ModelCheckpoint(
            dirpath=tmp_path, filename="best", monitor="val_auroc", mode="max"
        ).state_key
    )


def test_resuming_with_another_patience_is_quiet(tmp_path):
    """--patience may change on a resume (it adds or drops EarlyStopping): no Lightning warning
    about callbacks missing from the checkpoint reaches the user."""
    import warnings

    table = _planted(120, seed=2)
    tr, va = table.subset(range(90)), table.subset(range(90, 120))

    def run(epochs, patience):
        torch.manual_seed(0)
        return fit_model(
            DeepBind(**TINY),
            "binary",
            SequenceDataset(tr),
            SequenceDataset(va),
            tmp_path,
            _cfg(max_epochs=epochs, patience=patience),
            meta=_meta(),
        )

    run(1, 3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = run(2, 0)
    assert res.resumed_from is not None and res.epochs_run == 2
    assert not [w for w in caught if "callbacks used to create the checkpoint" in str(w.message)]


def test_fewer_epochs_than_the_checkpoint_is_refused_before_the_run_changes(tmp_path, rest_small):
    """`--epochs 1` on a finished 2-epoch run: one clear refusal (Lightning cannot go back to an
    earlier epoch and failed deep inside), and run.json untouched, so the run still reports."""
    from typer.testing import CliRunner

    from biodl.cli import app

    out = tmp_path / "run"
    args = ["train", str(rest_small["train"]), "--out", str(out), "--no-progress", "-m", "num_motifs=4"]
    r = CliRunner().invoke(app, [*args, "--epochs", "2"])
    assert r.exit_code == 0, r.output
    before = (out / "run.json").read_bytes()
    r = CliRunner().invoke(app, [*args, "--epochs", "1"])
    assert r.exit_code == 2
    assert (
        "cannot resume: the checkpoint has 2 epochs done, more than the 1 asked for; give --epochs 2"
        in r.output
    )
    assert "unexpected" not in r.output
    assert (out / "run.json").read_bytes() == before
    assert CliRunner().invoke(app, ["report", str(out)]).exit_code == 0


def test_the_interrupt_line_names_the_part_of_the_run():
    """Ctrl-C during --calibrate or --ensemble says which trial / fold / member was stopped
    (the checkpoint path alone left users guessing how much was kept); a user's own folder
    named like one (``trial1``) is not taken for it."""
    from pathlib import Path

    from biodl.train.fit import _part_of

    ck = "checkpoints/last.ckpt"
    assert _part_of(Path(f"runs/c/calibration/trial3/fold2/{ck}")) == (
        " of calibration trial 3, fold 2 (finished trials are kept)"
    )
    assert _part_of(Path(f"runs/e/member2/{ck}")) == " of ensemble member 2 (finished members are kept)"
    assert _part_of(Path(f"runs/t/top1/{ck}")) == " of top setting 1"
    assert _part_of(Path(f"/data/trial1/run/{ck}")) == "" == _part_of(Path(f"runs/r/{ck}"))


class _EpochItems(torch.utils.data.Dataset):
    """Items that are the epoch the dataset was told (module level: worker processes pickle it)."""

    def __init__(self) -> None:
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return 8

    def __getitem__(self, i):
        return torch.tensor([float(self.epoch), float(i)])


def test_loader_workers_see_each_epoch_of_an_epoch_dependent_dataset():
    """With --num-workers N, the workers' copies of a dataset that changes with the epoch kept
    epoch 0 (augmentation draws, resampled negatives, fresh reads were epoch 0's every epoch);
    and Lightning starts a resumed run's first workers before it sets the epoch, so that epoch
    had epoch 0's order and data. Items carry their epoch; a resumed loader starts at its epoch."""
    from biodl.train.datamodule import DataModule, EpochSampler

    def items(dl):
        return [
            (int(e), int(i))
            for b in dl
            for e, i in (b[0] if isinstance(b, (list, tuple)) else b).reshape(-1, 2).tolist()
        ]

    dm = DataModule(_EpochItems(), None, batch_size=4, seed=0, num_workers=2)
    dl = dm.train_dataloader()
    for epoch in range(3):
        dl.sampler.set_epoch(epoch)
        assert {e for e, _ in items(dl)} == {epoch}
    dm.first_epoch = 2  # a run resumed after 2 epochs: its first loader, as Lightning uses it
    order = [i for e, i in items(dm.train_dataloader())]
    ref = EpochSampler(8, seed=0)
    ref.set_epoch(2)
    assert order == list(ref) and {e for e, _ in items(dm.train_dataloader())} == {2}


def test_variable_length_sequences_train_with_loader_workers(tmp_path):
    """Items carrying their epoch were read one at a time in the workers: batches of sequences of
    several lengths could not be stacked (the dataset pads a batch to its longest)."""
    rng = np.random.default_rng(0)
    lines = ["id\tseq\tBound"] + [
        f"s{i}\t{''.join(rng.choice(list('ACGT'), int(rng.integers(20, 41))))}\t{i % 2}" for i in range(80)
    ]
    (tmp_path / "var.tsv").write_text("\n".join(lines) + "\n")
    cfg = TrainConfig(max_epochs=1, patience=0, device="cpu", progress=False, num_workers=2)
    train(
        "deepbind",
        tmp_path / "run",
        options={"data": tmp_path / "var.tsv"},
        model_options={"num_motifs": 4, "motif_len": 8, "hidden": 0},
        config=cfg,
        quiet=True,
    )
    assert (tmp_path / "run" / "model.pt").exists()
