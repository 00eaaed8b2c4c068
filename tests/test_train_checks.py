"""Training options refused before any work (seed range, Lightning's --devices / --strategy,
-m typos) and a validation metric that is undefined (NaN) at every epoch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from biodl.cli import app
from biodl.errors import BiodlInputError
from biodl.kinds.sequences.data import SequenceDataset
from biodl.kinds.sequences.io import SequenceTable
from biodl.models import DeepBind
from biodl.registry import get_recipe
from biodl.train import RunMeta, TrainConfig, fit_model
from biodl.train.fit import _devices

runner = CliRunner()
TINY = {"num_motifs": 4, "motif_len": 6, "hidden": 0}
DEVICES = "--devices must be a positive number, -1 (all), or a list of device indices"


def _cfg(**kw) -> TrainConfig:
    base = dict(max_epochs=2, patience=0, batch_size=32, lr=1e-2, seed=0, device="cpu", progress=False)
    base.update(kw)
    return TrainConfig(**base)


def _refused(cfg: TrainConfig) -> str:
    with pytest.raises(BiodlInputError) as e:
        cfg.check()
    return str(e.value)


def _unreadable(tmp_path):
    """A training file that fails as soon as it is read: an error about an option proves the
    option was checked before any data were read."""
    bad = tmp_path / "bad.tsv"
    bad.write_text("seq\tBound\nACGT\t1\nACQT\t0\n")
    return bad


# --seed: numpy's and Lightning's 32-bit range, less the ensemble members' seeds


@pytest.mark.parametrize(
    "seed, ensemble, msg",
    [
        (2**32, 1, "--seed must be an integer from 0 to 4294967295, got 4294967296"),
        (10**20, 1, "--seed must be an integer from 0 to 4294967295, got 100000000000000000000"),
        (-5, 1, "--seed must be an integer from 0 to 4294967295, got -5"),
        (2**32 - 1, 2, "--seed must be an integer from 0 to 4294967294 (--ensemble 2 trains"),
        (2**32 - 3, 4, "--seed must be an integer from 0 to 4294967292 (--ensemble 4 trains"),
    ],
)
def test_seed_out_of_range_is_refused(seed, ensemble, msg):
    assert msg in _refused(_cfg(seed=seed, ensemble=ensemble))


def test_seed_at_the_bound_is_accepted():
    _cfg(seed=2**32 - 1).check()
    _cfg(seed=2**32 - 2, ensemble=2).check()


def test_seed_is_checked_before_any_data_is_read(tmp_path):
    out = tmp_path / "run"
    r = runner.invoke(app, ["train", str(_unreadable(tmp_path)), "--out", str(out), "--seed", "4294967296"])
    msg = " ".join(r.output.split())
    assert r.exit_code == 2 and "--seed must be an integer from 0 to 4294967295, got 4294967296" in msg, msg
    assert "Traceback" not in msg and "unexpected" not in msg and not out.exists()


# --devices / --strategy: Lightning's own checks, made before the data are read


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    if getattr(torch.backends, "mps", None) is not None:
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


@pytest.fixture
def one_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)


@pytest.mark.parametrize("devices", [0, "0", "abc", "", "0,0", "1,x", ",", [], [0, 0], [-1], True, 2.0, -2])
def test_bad_devices_are_refused(devices, no_gpu):
    msg = _refused(_cfg(devices=devices, device="auto"))
    assert msg == f"{DEVICES}, got {devices!r}"


@pytest.mark.parametrize("devices", ["auto", "AUTO", 1, 2, "2", " 3"])
def test_process_counts_are_accepted_on_the_cpu(devices, no_gpu):
    _cfg(devices=devices, device="auto").check()


@pytest.mark.parametrize("devices", [-1, "-1", "0,1", "0,", [0]])
def test_gpu_indices_are_refused_on_the_cpu(devices, no_gpu):
    assert "--devices must be a number of processes when training on the CPU" in _refused(
        _cfg(devices=devices, device="auto")
    )


def test_devices_beyond_the_gpus_are_refused(one_gpu):
    for ok in ("auto", 1, "1", "0,", [0], -1, "-1"):
        _cfg(devices=ok, device="auto").check()
    for bad in (2, "2", "0,1", [1]):
        assert "this machine has 1 CUDA GPU(s)" in _refused(_cfg(devices=bad, device="auto")), bad


def test_devices_auto_in_any_case_is_lightnings_auto(no_gpu):
    assert _devices(_cfg(devices="AUTO")) == "auto"
    assert _devices(_cfg(devices=2)) == 2


@pytest.fixture
def two_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.delenv("TORCHELASTIC_RUN_ID", raising=False)
    monkeypatch.delenv("SLURM_STEP_NUM_TASKS", raising=False)


def test_the_gpu_named_is_the_gpu_lightning_trains_on(two_gpus, monkeypatch):
    """--device cuda:1 with --devices 1 (CellCnn's restarts always) trained on GPU 0 (Lightning's
    devices=1); on a GPU, --devices auto was every visible GPU: a DDP run nobody asked for."""
    assert _devices(_cfg(device="cuda:1", devices=1)) == [1]
    assert _devices(_cfg(device="cuda:1", devices="auto")) == [1]
    assert _devices(_cfg(device="cuda", devices="auto")) == 1
    assert _devices(_cfg(device="auto", devices="auto")) == 1
    assert (
        _devices(_cfg(device="cuda", devices="0,1")) == "0,1"
        and _devices(_cfg(device="cuda", devices=2)) == 2
    )
    for several in (2, "0,1", -1):
        assert "with --device cuda:N, which names one GPU" in _refused(_cfg(device="cuda:1", devices=several))
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "x")  # torchrun: Lightning takes the devices from it
    assert _devices(_cfg(device="cuda", devices="auto")) == "auto"


@pytest.mark.parametrize("strategy", ["nonsense", "", "dp", None, 3])
def test_unknown_strategies_are_refused(strategy):
    msg = _refused(_cfg(strategy=strategy))
    assert msg.startswith("--strategy must be one of auto, ddp, ") and msg.endswith(f", got {strategy!r}")
    assert "ddp_spawn" not in msg and "fsdp" in msg


@pytest.mark.parametrize("strategy", ["auto", "ddp", "DDP", "single_device"])
def test_lightnings_strategies_are_accepted(strategy, no_gpu):
    _cfg(strategy=strategy, devices=2).check()


@pytest.mark.parametrize("strategy", ["ddp_spawn", "ddp_fork", "ddp_notebook"])
def test_strategies_that_train_in_their_own_processes_are_refused(strategy, no_gpu):
    """Under ddp_spawn the history and the best epoch stayed in the spawned processes: the last
    epoch's weights were kept, best_epoch null, epochs_run 0, without a word."""
    msg = _refused(_cfg(strategy=strategy, devices=2))
    assert msg.startswith(f"--strategy {strategy} trains in processes it starts itself") and "ddp" in msg


def test_strategies_this_machine_cannot_run_are_refused(no_gpu):
    assert "--strategy fsdp needs a CUDA GPU" in _refused(_cfg(strategy="fsdp"))
    import importlib.util

    if importlib.util.find_spec("deepspeed") is None:
        assert "needs the deepspeed package" in _refused(_cfg(strategy="deepspeed"))
    if importlib.util.find_spec("torch_xla") is None:
        assert "needs the torch_xla package" in _refused(_cfg(strategy="xla"))


@pytest.mark.parametrize(
    "args, msg",
    [
        (["--devices", "0"], f"{DEVICES}, got 0"),
        (["--devices", "abc"], f"{DEVICES}, got 'abc'"),
        (["--strategy", "nonsense"], "--strategy must be one of auto, ddp,"),
    ],
)
def test_devices_and_strategy_are_checked_before_any_data_is_read(args, msg, tmp_path):
    out = tmp_path / "run"
    r = runner.invoke(app, ["train", str(_unreadable(tmp_path)), "--out", str(out), "--device", "cpu", *args])
    text = " ".join(r.output.split())
    assert r.exit_code == 2 and msg in text, text
    assert "unexpected" not in text and not out.exists()


# -m typos: the same "did you mean" as --set


def test_model_option_typos_get_a_suggestion():
    with pytest.raises(BiodlInputError) as e:
        get_recipe("deepbind").check_model_options({"num_motif": 8, "motif_length": 3, "zzz": 1})
    msg = str(e.value)
    assert msg.startswith(
        "unknown model option(s) for deepbind: num_motif (did you mean num_motifs?), "
        "motif_length (did you mean motif_len?), zzz (known: num_motifs, motif_len,"
    ), msg


def test_model_option_typo_on_the_command_line(tmp_path):
    out = tmp_path / "run"
    r = runner.invoke(app, ["train", str(_unreadable(tmp_path)), "--out", str(out), "-m", "num_motif=8"])
    text = " ".join(r.output.split())
    assert r.exit_code == 2 and "num_motif (did you mean num_motifs?)" in text, text
    assert not out.exists()


# a validation metric undefined (NaN) at every epoch: AUROC on a validation split of one class


def _one_class_validation(n_train=96, n_valid=24, length=30):
    rng = np.random.default_rng(0)
    n = n_train + n_valid
    seqs = ["".join(rng.choice(list("ACGT"), length)) for _ in range(n)]
    labels = np.zeros((n, 1), dtype=np.float32)
    labels[: n_train // 2] = 1.0  # both classes in training, negatives only in validation
    table = SequenceTable(ids=[f"s{i}" for i in range(n)], seqs=seqs, labels=labels, label_names=["y"])
    return SequenceDataset(table.subset(range(n_train))), SequenceDataset(table.subset(range(n_train, n)))


def _fit_one_class(tmp_path, **cfg):
    tr, va = _one_class_validation()
    torch.manual_seed(0)
    meta = RunMeta(kind="sequences", recipe="deepbind", task="binary", model_kwargs=dict(n_outputs=1, **TINY))
    return fit_model(DeepBind(**TINY), "binary", tr, va, tmp_path, _cfg(**cfg), meta=meta)


def test_undefined_validation_metric_does_not_stop_training_at_once(tmp_path, capsys):
    """Lightning's EarlyStopping stopped at the first NaN (check_finite), silently, after one
    epoch: now a NaN is never an improvement, so training runs until --patience runs out, and
    it is said once why the metric cannot choose."""
    res = _fit_one_class(tmp_path, max_epochs=6, patience=3)
    hist = pd.read_csv(tmp_path / "history.csv")
    assert list(hist["epoch"]) == [0, 1, 2] and hist["val_auroc"].isna().all()
    assert res.epochs_run == 3 and res.best_epoch == 2  # the last epoch, for want of a metric
    err = " ".join(capsys.readouterr().err.split())
    said = (
        "the validation metric val_auroc is undefined (NaN): "
        "the 24 validation items have one class only (all 0)"
    )
    assert err.count(said) == 1, err
    assert "training stops after --patience 3 epochs" in err and "the model kept is the last epoch's" in err
    # the weights kept are the last epoch's (best.ckpt holds epoch 1's: Lightning saves a NaN as -inf)
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    kept = DeepBind(**TINY)
    kept.load_state_dict(
        {k[len("model.") :]: v for k, v in last["state_dict"].items() if k.startswith("model.")}
    )
    from biodl.train import load_model

    model, _ = load_model(tmp_path / "model.pt")
    for (k, a), b in zip(model.state_dict().items(), kept.state_dict().values(), strict=True):
        assert torch.equal(a, b), k


def test_undefined_validation_metric_is_never_still_improving(tmp_path, capsys):
    """Without early stopping every asked epoch runs; the last one is kept, and no "validation
    was still improving" hint is given for a metric that was never defined."""
    res = _fit_one_class(tmp_path, max_epochs=3, patience=0)
    assert res.epochs_run == 3 and res.best_epoch == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "training runs every epoch" in err
    assert "still improving" not in err, err


def test_a_metric_undefined_at_some_epochs_is_said_with_its_epoch(capsys):
    """A NaN that is not a one-class validation split (training diverged): said once, naming
    the epoch; such epochs never count as the best."""
    from types import SimpleNamespace

    from biodl.train.fit import _UndefinedMonitor, best_row

    cb = _UndefinedMonitor("val_loss", patience=2)
    for epoch, v in ((0, 0.5), (1, float("nan")), (2, float("nan"))):
        trainer = SimpleNamespace(
            sanity_checking=False,
            is_global_zero=True,
            current_epoch=epoch,
            callback_metrics={"val_loss": torch.tensor(v)},
        )
        cb.on_validation_end(trainer, None)
    err = " ".join(capsys.readouterr().err.split())
    assert err.count("the validation metric val_loss is undefined (NaN) at epoch 2:") == 1, err
    assert "never chosen as the best nor counted as an improvement by early stopping (--patience 2)" in err
    rows = [{"epoch": 0, "val_loss": 0.5}, {"epoch": 1, "val_loss": float("nan")}]
    assert best_row(rows, "val_loss", "min")["epoch"] == 0


def test_a_moved_run_resumes_its_best_checkpoint_state(tmp_path):
    """A run directory copied or moved, then extended: Lightning dropped the best score ("The
    dirpath has changed"), so the first epoch after resuming became the best whatever its score."""
    import warnings

    import torch

    from biodl.train.fit import _BestCheckpoint

    a, b = (tmp_path / "a").resolve(), (tmp_path / "b").resolve()
    cb = _BestCheckpoint(dirpath=b, filename="best", monitor="val_auroc", mode="max")
    score = torch.tensor(0.9)
    state = {
        "monitor": "val_auroc",
        "dirpath": str(a),
        "best_model_score": score,
        "best_model_path": str(a / "best.ckpt"),
        "kth_best_model_path": str(a / "best.ckpt"),
        "kth_value": score,
        "best_k_models": {str(a / "best.ckpt"): score},
        "last_model_path": "",
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "dirpath has changed"
        cb.load_state_dict(state)
    assert float(cb.best_model_score) == pytest.approx(0.9)
    assert cb.best_model_path == str(b / "best.ckpt") and list(cb.best_k_models) == [str(b / "best.ckpt")]


def test_an_extended_run_decays_its_learning_rate_to_the_new_end(tmp_path):
    """neural-fp's cosine schedule resumed with the T_max of the first --epochs: past it the
    learning rate climbed back up. It now decays to the new end, and the resume says so."""
    import torch
    from typer.testing import CliRunner

    from biodl.cli import app

    data = Path(__file__).parent / "data" / "molecules" / "delaney_150.csv"
    args = ["train", "--system", "neural-fp", "--data", str(data), "--target",
            "measured log solubility in mols per litre", "--out", str(tmp_path / "r"), "--no-progress",
            "-m", "fp_length=16", "-m", "conv_width=8", "-m", "radius=2"]  # fmt: skip
    runner = CliRunner()
    assert runner.invoke(app, [*args, "--epochs", "2"]).exit_code == 0
    r = runner.invoke(app, [*args, "--epochs", "4"])
    assert r.exit_code == 0, r.output
    assert "cosine decay goes on from where it stands to the new end" in r.output
    ck = torch.load(tmp_path / "r" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    (sched,) = ck["lr_schedulers"]
    assert sched["T_max"] == 4 and sched["_last_lr"][0] == pytest.approx(sched["eta_min"], rel=1e-6)


def test_a_ddp_worker_whose_primary_stopped_says_so_quietly(monkeypatch, tmp_path):
    """`kill PID` of a DDP training: rank 1 saw its peer go and printed 'unexpected RuntimeError
    ... please report it' after the correct 'interrupted' line."""
    from biodl import pipeline
    from biodl.cli import app

    def gone(*a, **k):
        raise RuntimeError("[gloo/transport/tcp/pair.cc:553] Connection closed by peer [127.0.0.1]:5")

    monkeypatch.setattr(pipeline, "train", gone)
    monkeypatch.setenv("LOCAL_RANK", "1")
    r = CliRunner().invoke(app, ["train", "x.seq", "--out", str(tmp_path / "r")])
    assert r.exit_code == 143 and "DDP worker (rank 1) stops: the primary process ended" in r.output
    assert "unexpected" not in r.output
    monkeypatch.setenv("LOCAL_RANK", "0")  # the primary: the same error is an internal one, reported
    r = CliRunner().invoke(app, ["train", "x.seq", "--out", str(tmp_path / "r")])
    assert r.exit_code == 2 and "unexpected RuntimeError" in r.output


def test_the_ddp_workers_of_a_stopped_primary_are_found(monkeypatch):
    """SIGTERM to a DDP primary alone could leave it and its worker waiting in a collective for
    ever: the primary passes the signal on to the processes it started with LOCAL_RANK >= 1 (and
    a watcher ends them after a grace period); other children are left alone."""
    import os
    import subprocess
    import sys

    from biodl.cli import _ddp_workers

    monkeypatch.delenv("LOCAL_RANK", raising=False)
    sleep = [sys.executable, "-c", "import time; time.sleep(60)"]
    worker = subprocess.Popen(sleep, env={**os.environ, "LOCAL_RANK": "1"})
    other = subprocess.Popen(sleep, env={k: v for k, v in os.environ.items() if k != "LOCAL_RANK"})
    try:
        found = _ddp_workers()
        assert worker.pid in found and other.pid not in found
        monkeypatch.setenv("LOCAL_RANK", "1")  # a worker has none of its own
        assert _ddp_workers() == []
    finally:
        worker.kill()
        other.kill()
        worker.wait()
        other.wait()


def test_a_stray_value_in_a_0_1_label_column_is_refused_not_a_silent_regression():
    """One '2' among 0 / 1 labels made the guessed task regression and trained without a word."""
    from types import SimpleNamespace

    import numpy as np

    from biodl.kinds.sequences.kind import _refuse_stray_labels

    def table(values):
        y = np.asarray(values, np.float32).reshape(-1, 1)
        return SimpleNamespace(labels=y, label_names=["Bound"], ids=[f"s{i}" for i in range(len(y))])

    with pytest.raises(BiodlInputError, match=r"label Bound is 0 / 1 but for 1 value\(s\) \(2; first: s3\)"):
        _refuse_stray_labels(table([0, 1] + [1, 2] + [0, 1] * 20), "a.seq")
    _refuse_stray_labels(table(np.linspace(0, 5, 60)), "a.seq")  # real regression targets
    _refuse_stray_labels(table([0, 1] * 10 + [2, 3, 2]), "a.seq")  # more than a stray value or two
    _refuse_stray_labels(table([0] * 50 + [3]), "a.seq")  # zeros and a count: no 0 / 1 labels


def test_a_ddp_worker_that_dies_is_named_before_the_training_stops(monkeypatch, capfd):
    """Lightning's watcher SIGKILLs every process when a worker dies (the out-of-memory killer):
    the run ended silently. It now says which rank ended, how, and that a rerun resumes."""
    from lightning.fabric.strategies.launchers import subprocess_script as ss

    from biodl.train.fit import _say_dead_workers

    _say_dead_workers()
    _say_dead_workers()  # once is enough: not wrapped twice
    killed = []

    class Proc:
        def __init__(self, code):
            self.returncode, self.pid = code, 0

        def poll(self):
            return self.returncode

        def send_signal(self, sig):
            killed.append(sig)

    monkeypatch.setattr(ss.os, "kill", lambda pid, sig: killed.append(("main", sig)))
    obs = ss._ChildProcessObserver(main_pid=12345, child_processes=[Proc(-9)], sleep_period=0)
    assert obs._run() is True
    err = capfd.readouterr().err
    assert err.count("error: the DDP worker process of rank 1 was killed by signal 9 (out of memory?)") == 1
    assert "rerun the same command to resume it" in err and ("main", ss.signal.SIGKILL) in killed
