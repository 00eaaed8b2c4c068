"""Calibration (`biodl train --calibrate N`): DeepBind's protocol of a seeded random search scored
by cross-validation on the training split only, resumable, recorded in run.json."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from biodl.cli import app
from biodl.errors import BiodlInputError
from biodl.pipeline import train
from biodl.registry import get_recipe
from biodl.train import TrainConfig, load_model
from biodl.train import calibrate as cal
from biodl.train.ensemble import Ensemble

torch.set_num_threads(1)
SMALL = {"num_motifs": 4}


def _cfg(**kw) -> TrainConfig:
    base = dict(
        max_epochs=1, patience=0, batch_size=64, lr=3e-3, seed=5, device="cpu", progress=False, calibrate=3
    )
    base.update(calibrate_epochs=1, **kw)
    return TrainConfig(**base)


# ------------------------------------------------------------------------------ pieces
def test_draws_are_seeded_first_is_the_runs_own_and_fixed_names_stay():
    space = cal.search_space(get_recipe("deepbind"))
    base = {"lr": 3e-3, "weight_decay": 1e-4, "dropout": 0.2, "hidden": 32, "motif_len": 24, "pool": "max"}
    a = cal.draw_settings(space, 6, 11, base)
    assert a == cal.draw_settings(space, 6, 11, base)  # same seed, same settings
    assert a != cal.draw_settings(space, 6, 12, base)
    assert a[0] == base and len(a) == 6
    for s in a[1:]:
        assert 5e-4 <= s["lr"] <= 1e-2 and 1e-10 <= s["weight_decay"] <= 1e-3
        assert s["hidden"] in (0, 32) and s["motif_len"] in (16, 24) and s["pool"] in ("max", "maxavg")
    fixed = cal.draw_settings(space, 6, 11, base, fixed=["lr"])
    assert all(s["lr"] == 3e-3 for s in fixed)
    # the other names get the same draws whatever the user fixed
    assert [s["hidden"] for s in fixed] == [s["hidden"] for s in a]


def test_generic_space_for_recipes_without_one():
    space = cal.search_space(get_recipe("danq"))
    assert set(space) >= {"lr", "weight_decay"}
    assert "motif_len" not in space


def test_folds_partition_a_stratified_subsample():
    y = np.r_[np.ones(300), np.zeros(600)][:, None].astype(np.float32)
    rows, folds = cal.calibration_folds(y, 900, 3, 450, seed=1)
    assert len(rows) == 450 and len(np.unique(rows)) == 450
    assert abs(y[rows, 0].mean() - 1 / 3) < 0.01  # the class balance is kept
    for tr, va in folds:
        assert np.array_equal(np.sort(np.r_[tr, va]), rows) and not set(tr) & set(va)
        assert abs(y[va, 0].mean() - 1 / 3) < 0.03
    assert np.array_equal(np.sort(np.concatenate([va for _, va in folds])), rows)
    again = cal.calibration_folds(y, 900, 3, 450, seed=1)
    assert np.array_equal(again[0], rows) and all(
        np.array_equal(a[1], b[1]) for a, b in zip(again[1], folds, strict=True)
    )
    assert len(cal.calibration_folds(None, 50, 3, 0, seed=0)[0]) == 50  # 0: every row


def test_trial_store_reuses_only_the_same_protocol(tmp_path):
    p = tmp_path / "calibration.jsonl"
    s = cal.TrialStore(p, {"folds": 3})
    s.add({"trial": 1, "setting": {"lr": 0.1}, "score": 0.7})
    assert cal.TrialStore(p, {"folds": 3}).done(1, {"lr": 0.1})["score"] == 0.7
    assert cal.TrialStore(p, {"folds": 3}).done(1, {"lr": 0.2}) is None  # another setting
    assert cal.TrialStore(p, {"folds": 4}).done(1, {"lr": 0.1}) is None  # another protocol
    # trials of another protocol (another --epochs) are kept in the file and said, not dropped
    other = cal.TrialStore(p, {"folds": 4, "options": {"a": 1}})
    assert other.protocol_changes() == ["folds 3 -> 4", 'options null -> {"a": 1}']
    other.add({"trial": 1, "setting": {"lr": 0.1}, "score": 0.5})
    assert len(p.read_text().splitlines()) == 2
    assert cal.TrialStore(p, {"folds": 3}).done(1, {"lr": 0.1})["score"] == 0.7  # back: reused
    opts = cal.TrialStore(p, {"folds": 4, "options": {"a": 2, "b": 0}})
    assert opts.protocol_changes()[-2:] == ["options.a 1 -> 2", "options.b null -> 0"]
    assert cal.choose(
        [{"trial": 1, "score": 0.6}, {"trial": 2, "score": 0.8}, {"trial": 3, "score": None}], "max", 2
    ) == [2, 1]
    with pytest.raises(BiodlInputError, match="no trial produced"):
        cal.choose([{"trial": 1, "score": None}], "max")


@pytest.mark.parametrize(
    "kw, message",
    [
        (dict(calibrate=-1), "--calibrate must be"),
        (dict(calibrate=2, calibrate_top=3), "--calibrate-top \\(3\\) is more than"),
        (dict(calibrate=2, calibrate_folds=1), "--calibrate-folds must be"),
        (dict(calibrate=2, calibrate_budget=0), "--calibrate-budget must be"),
        (dict(calibrate=4, calibrate_top=2, ensemble=2), "give one of them"),
    ],
)
def test_bad_values_are_refused(kw, message):
    with pytest.raises(BiodlInputError, match=message):
        TrainConfig(**kw).check()


def test_cli_refuses_bad_values_before_reading_data(tmp_path):
    r = CliRunner().invoke(
        app,
        ["train", "missing.seq", "--out", str(tmp_path / "x"), "--calibrate", "2", "--calibrate-top", "3"],
    )
    assert r.exit_code != 0 and "--calibrate-top (3) is more than" in r.output
    # under DDP rank 1 scored every trial NaN and the run failed: refused before any work
    r = CliRunner().invoke(
        app,
        ["train", "missing.seq", "--out", str(tmp_path / "x"), "--calibrate", "2", "--devices", "2"],
    )
    assert r.exit_code == 2 and "--calibrate trains its trials in one process" in r.output
    assert not (tmp_path / "x").exists()


def test_refused_for_kinds_without_calibration(tmp_path):
    with pytest.raises(BiodlInputError, match="--calibrate is not available"):
        train("adage", tmp_path / "a", options={"data": "unused.tsv"}, config=_cfg(), quiet=True)


# ------------------------------------------------------------------------------ protocol
def test_calibration_never_sees_the_test_or_validation_split(tmp_path, rest_small, monkeypatch):
    """Every item a calibration fold reads (training or scoring) is a row of the training split:
    none is a validation row (ids) or a test sequence."""
    from biodl.kinds.sequences.kind import SequencesKind

    seen: list[tuple[int, list[int]]] = []
    loaded = {}
    real_load, real_items = SequencesKind.load, cal.Rows.__getitems__

    def load(self, ctx):
        loaded["splits"] = real_load(self, ctx)
        return loaded["splits"]

    def items(self, idx):
        seen.append((id(self.dataset), [int(self.index[i]) for i in idx]))
        return real_items(self, idx)

    monkeypatch.setattr(SequencesKind, "load", load)
    monkeypatch.setattr(cal.Rows, "__getitems__", items)
    opts = {"data": rest_small["train"], "test_file": rest_small["test"]}
    s = train(
        "deepbind",
        tmp_path / "c",
        options=opts,
        config=_cfg(calibrate_top=2),
        model_options=SMALL,
        quiet=True,
    )
    splits = loaded["splits"]
    assert seen and {d for d, _ in seen} == {id(splits.train)}  # folds are drawn from splits.train only
    rows = sorted({r for _, rr in seen for r in rr})
    train_t = splits.extra["train_table"]
    seen_ids = {train_t.ids[r] for r in rows}
    seen_seqs = {train_t.seqs[r] for r in rows}
    valid_ids = set(splits.valid.table.ids)
    assert seen_ids and not seen_ids & valid_ids
    assert not seen_seqs & set(splits.test.seqs)
    assert len(rows) == len(train_t)  # 1,080 rows < the subsample: all of the training split
    # the 2 best settings are averaged as one model file (members may differ in architecture)
    model, meta = load_model(tmp_path / "c")
    assert isinstance(model, Ensemble) and meta.ensemble == 2 and len(meta.member_kwargs) == 2
    assert meta.calibration["chosen"] == s["calibration"]["chosen"] and len(meta.calibration["chosen"]) == 2
    assert "auroc" in s["test_metrics"]


def test_chosen_setting_in_run_json_and_resume_skips_trials(tmp_path, rest_small, monkeypatch):
    opts = {"data": rest_small["train"]}
    out = tmp_path / "r"
    train("deepbind", out, options=opts, config=_cfg(), model_options=SMALL, quiet=True)
    run = json.loads((out / "run.json").read_text())
    c = run["calibration"]
    assert [t["trial"] for t in c["trials"]] == [1, 2, 3] and c["folds"] == 3 and c["requested"] == 3
    assert c["metric"] == "auroc" and len(c["chosen"]) == 1
    best = {t["trial"]: t for t in c["trials"]}[c["chosen"][0]]["setting"]
    assert best["lr"] == run["training"]["lr"] == pytest.approx(best["lr"])
    assert best["weight_decay"] == run["training"]["weight_decay"]
    for k in ("dropout", "hidden", "motif_len", "pool"):
        assert run["model_kwargs"][k] == best[k], k
    assert run["model_kwargs"]["num_motifs"] == 4  # a model option the user set is not searched
    assert run["training"]["calibrate"] == 3
    lines = (out / "calibration.jsonl").read_text().splitlines()
    assert len(lines) == 3 and not (out / "calibration").exists()
    # a rerun reads the three trials back and trains no fold again (no fold row is read)
    calls = []
    real_items = cal.Rows.__getitems__
    monkeypatch.setattr(cal.Rows, "__getitems__", lambda self, idx: calls.append(1) or real_items(self, idx))
    train("deepbind", out, options=opts, config=_cfg(), model_options=SMALL, quiet=True)
    assert not calls
    again = json.loads((out / "run.json").read_text())["calibration"]
    assert all(t["resumed"] for t in again["trials"])
    assert [t["score"] for t in again["trials"]] == [t["score"] for t in c["trials"]]
    assert again["chosen"] == c["chosen"]


def test_a_rerun_choosing_another_setting_retrains_the_final_model(tmp_path, rest_small, monkeypatch, capsys):
    """A larger --calibrate N (or any rerun) whose winner differs from the setting the final model
    was trained with trains the winner from scratch, keeping the trials; the same winner resumes."""
    opts = {"data": rest_small["train"]}
    out = tmp_path / "r"
    winner = [1]
    monkeypatch.setattr(cal, "choose", lambda trials, mode, top=1: list(winner))
    train("deepbind", out, options=opts, config=_cfg(calibrate=2), model_options=SMALL, quiet=True)
    setting2 = {t["trial"]: t for t in json.loads((out / "run.json").read_text())["calibration"]["trials"]}[2]
    winner[:] = [2]
    capsys.readouterr()
    s = train("deepbind", out, options=opts, config=_cfg(calibrate=2), model_options=SMALL, quiet=False)
    assert "training it from scratch (the trials are kept)" in capsys.readouterr().err
    assert s["resumed_from"] is None
    run = json.loads((out / "run.json").read_text())
    for k in ("dropout", "hidden", "motif_len", "pool"):
        assert run["model_kwargs"][k] == setting2["setting"][k], k
    assert run["training"]["lr"] == pytest.approx(setting2["setting"]["lr"])
    _, meta = load_model(out / "model.pt")
    assert meta.model_kwargs == run["model_kwargs"]
    s = train("deepbind", out, options=opts, config=_cfg(calibrate=2), model_options=SMALL, quiet=True)
    assert s["resumed_from"]  # the same winner: its final fit resumes
