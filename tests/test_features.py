"""The features kind: feature-table readers, DFS's sparse input layer on a planted problem,
scaling fitted on training rows only, DEEP's SVMs in torch, and the CLI on a real HUVEC slice."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from biodl import pipeline
from biodl.cli import app
from biodl.errors import BiodlInputError
from biodl.kinds.features.io import norm_name, read_features
from biodl.models.features import DFS, PEDLA, FeatureScaler, SVMEnsemble
from biodl.train import DataModule, TrainConfig, TrainingPlan, fit, load_model, read_run_json

D = Path(__file__).parent / "data" / "features"
DATA, LABELS, NAMES = (
    D / "HUVEC_200bp_slice_Data.txt.gz",
    D / "HUVEC_200bp_slice_Classes.txt",
    D / "HUVEC_Features.txt",
)
runner = CliRunner()


def _w(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_reads_decres_tables_and_headers(tmp_path) -> None:
    t = read_features(DATA, labels=LABELS, feature_names=NAMES)
    assert t.x.shape == (700, 25) and t.x.dtype == np.float32 and t.feature_names[0] == "C-FOS(FOS)"
    assert sorted(set(t.labels)) == ["A-E", "A-P", "A-X", "I-E", "I-P", "I-X", "UK"] and t.ids[0] == "row1"
    with gzip.open(DATA, "rt") as fh:
        first = fh.readline().split("\t")
    assert t.x[0, 0] == pytest.approx(float(first[0]))
    csv = _w(tmp_path, "t.csv", "id,H3K4me1,H2A.Z,class\nr1,1.5,2,enh\nr2,0,3.25,prom\n")
    c = read_features(csv)
    assert c.feature_names == ["H3K4me1", "H2A.Z"] and c.labels == ["enh", "prom"] and c.ids == ["r1", "r2"]
    assert c.select_features(["H2AZ", "h3k4me1"]).x.tolist() == [[2.0, 1.5], [3.25, 0.0]]
    assert norm_name("POL2(POLR2A)") == "POL2POLR2A"


@pytest.mark.parametrize(
    "text,kw,match",
    [
        ("1\t2\n3\n", {}, r"line 2: 1 fields, expected 2"),
        ("a\tb\n1\tx\n", {}, r"line 2: b: not a number: 'x'"),
        ("1\tnan\n", {}, r"line 1: column 2: nan is not allowed \(NaN / inf\)"),
        ("1\tinf\n", {}, r"line 1: column 2: inf is not allowed"),
        ("a\ta\n1\t2\n", {}, r"duplicated column name\(s\): a"),
        ("1\t2\n", {"labels": "one_label"}, r"1 labels for the 1 rows|labels"),
        ("1\t2\n3\t4\n", {"labels": "one_label"}, r"1 labels for the 2 rows"),
        ("1\t2\n", {"feature_names": "three_names"}, r"3 feature names for 2 feature columns"),
        ("1\t2\n", {}, r"no labels: give a label file"),
        ("a\tb\n1\t2\n", {"label_col": "y"}, r"no label column 'y'"),
    ],
)
def test_bad_tables_are_one_clear_error(tmp_path, text, kw, match) -> None:
    p = _w(tmp_path, "t.tsv", text)
    kw = dict(kw)
    if kw.get("labels") == "one_label":
        kw["labels"] = _w(tmp_path, "l.txt", "A-E\n")
    if kw.get("feature_names") == "three_names":
        kw["feature_names"] = _w(tmp_path, "n.txt", "a\nb\nc\n")
    if match.startswith("1 labels for the 1 rows"):  # same count: no error
        assert read_features(p, **kw).labels == ["A-E"]
        return
    with pytest.raises(BiodlInputError, match=match) as e:
        read_features(p, **kw)
    assert "t.tsv" in str(e.value) or "l.txt" in str(e.value) or "n.txt" in str(e.value)


def _planted(n: int = 800, p: int = 10, seed: int = 0):
    """Two informative features (0, 1) in a non-linear rule, the others pure noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, p)).astype(np.float32)
    y = ((x[:, 0] + 0.8 * x[:, 1] + 0.7 * x[:, 0] * x[:, 1]) > 0).astype(np.float32)[:, None]
    return torch.from_numpy(x), torch.from_numpy(y)


def _fit_dfs(tmp_path, x, y, l1: float, epochs: int = 30):
    from torch.utils.data import TensorDataset

    torch.manual_seed(0)
    m = DFS(x.shape[1], 1, hidden=[32], l1=l1, log1p=False)
    m.scale.fit(x[:600])
    cfg = TrainConfig(max_epochs=epochs, patience=0, batch_size=64, lr=0.05, device="cpu", progress=False)
    plan = TrainingPlan(m, "binary", lr=0.05, optimizer="momentum", penalty=m.penalty, seed=0)
    dm = DataModule(TensorDataset(x[:600], y[:600]), TensorDataset(x[600:], y[600:]), batch_size=64)
    fit(plan, dm, tmp_path / f"l1_{l1}", cfg)
    return m


def test_dfs_drives_irrelevant_features_to_exactly_zero(tmp_path) -> None:
    x, y = _planted()
    sparse = _fit_dfs(tmp_path, x, y, l1=1.0)
    w = sparse.w.detach()
    assert (w[2:] == 0).all(), w  # the noise features are switched off exactly
    assert (w[:2] != 0).all(), w  # the informative ones are kept
    assert sparse.selected().tolist() == [True, True] + [False] * 8
    dense = _fit_dfs(tmp_path, x, y, l1=0.0, epochs=5)
    assert (dense.w.detach() != 0).all()  # no penalty: a plain MLP
    with torch.no_grad():  # the kept model still solves the problem
        acc = ((sparse(x[600:]) > 0).float() == y[600:]).float().mean()
    assert acc > 0.85


def test_scaling_statistics_come_from_training_rows_only(tmp_path) -> None:
    """The standardisation is part of the model and fitted on the training rows: test rows with
    huge values do not move it."""
    t = read_features(DATA, labels=LABELS, feature_names=NAMES)
    train_rows = np.flatnonzero(np.isin(t.labels, ["A-E", "A-P"]))[:150]
    tr = t.subset(train_rows)
    data = tmp_path / "train.tsv"
    np.savetxt(data, tr.x, fmt="%.6g", delimiter="\t")
    (tmp_path / "train.cls").write_text("\n".join(tr.labels) + "\n")
    test = tmp_path / "test.tsv"
    np.savetxt(test, np.full((20, 25), 1e6), fmt="%.6g", delimiter="\t")
    (tmp_path / "test.cls").write_text("A-E\nA-P\n" * 10)
    opts = {
        "data": data,
        "labels": tmp_path / "train.cls",
        "feature_names": NAMES,
        "test_file": test,
        "test_labels": tmp_path / "test.cls",
        "valid_fraction": 0.0,
        "positive": ["A-E"],
        "report": False,
    }
    cfg = TrainConfig(max_epochs=1, patience=0, device="cpu", progress=False)
    pipeline.train(
        "dfs", tmp_path / "run", options=opts, model_options={"hidden": [8]}, config=cfg, quiet=True
    )
    model, _ = load_model(tmp_path / "run")
    ref = FeatureScaler(25).fit(torch.from_numpy(tr.x))
    assert torch.allclose(model.scale.mean, ref.mean) and torch.allclose(model.scale.std, ref.std)
    splits = read_run_json(tmp_path / "run").splits
    assert splits["n_train"] == 150 and splits["n_test"] == 20


def test_svm_ensemble_equals_scikit_learn() -> None:
    from sklearn.svm import SVC

    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 5)).astype(np.float32)
    y = (x[:, 0] ** 2 + x[:, 1] > 1).astype(int)
    ens = SVMEnsemble(5, members=[0], gamma=0.3, log1p=False)  # rebuilt below with the fitted sizes
    svc = SVC(gamma=0.3, C=2.0).fit(x, y)
    ens = SVMEnsemble(5, members=[len(svc.support_)], gamma=0.3, log1p=False)
    ens.set_member(0, svc.support_vectors_, svc.dual_coef_[0], svc.intercept_[0])
    got = ens(torch.from_numpy(x))[:, 0].detach().numpy()
    assert np.allclose(got, svc.decision_function(x), atol=1e-4)


def test_pedla_pretraining_then_finetuning(tmp_path) -> None:
    from torch.utils.data import TensorDataset

    x, y = _planted(300, 6)
    m = PEDLA(6, 1, hidden=[8, 4], log1p=False)
    m.scale.fit(x)
    before = m.encoders[0].weight.detach().clone()
    m.stage = "pretrain:0"
    assert set(m.loss((x[:10],))) == {"loss"}
    cfg = TrainConfig(max_epochs=2, patience=0, batch_size=50, device="cpu", progress=False)
    fit(
        TrainingPlan(m, "reconstruction", lr=1e-2, optimizer="adam"),
        DataModule(TensorDataset(x), None, 50),
        tmp_path / "p",
        cfg,
    )
    assert not torch.equal(before, m.encoders[0].weight)
    m.stage = "finetune"
    assert m.loss((x[:10], y[:10])) is None and m(x[:10]).shape == (10, 1)


def test_cli_train_evaluate_predict_report(tmp_path) -> None:
    out = tmp_path / "dfs"
    common = ["--set", f"feature_names={NAMES}"]
    args = [
        "train",
        "--system",
        "dfs",
        "--data",
        str(DATA),
        "--labels",
        str(LABELS),
        "--out",
        str(out),
        "--epochs",
        "8",
        "--batch-size",
        "32",
        "--no-progress",
        "--device",
        "cpu",
        "--set",
        "lambdas=0.5,2,8",
        "--set",
        "max_features=8",
        "--set",
        "randomized=2",
        "--set",
        "classes=A-E,A-P",
        "--set",
        "positive=A-E",
        "-m",
        "hidden=[16]",
        *common,
    ]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    s = json.loads((out / "summary.json").read_text())
    assert s["kind"] == "features" and s["positive"] == ["A-E"] and 1 <= len(s["selected"]) <= 8
    assert {"accuracy", "gm", "mcc", "auroc"} <= set(s["test_metrics"])
    path = pd.read_csv(out / "path.tsv", sep="\t")
    assert list(path["lambda"]) == [0.5, 2, 8] and path["chosen"].sum() == 1
    assert (out / "path" / "lambda0" / "model.pt").exists() and (out / "stability.tsv").exists()
    html = (out / "report.html").read_text()
    for sec in (
        "Selected features",
        "Validation AUROC against the number of features",
        "Stability of the selection",
        "Confusion matrix",
    ):
        assert sec in html, sec
    # the table has 7 classes, the model 2: the other rows are refused unless --set classes keeps
    # only the model's
    r = runner.invoke(app, ["evaluate", str(out), str(DATA), "--set", f"labels={LABELS}", *common])
    assert r.exit_code == 2 and "is not among the model's classes (A-E, A-P)" in " ".join(r.output.split())
    assert f"{LABELS}, line 101: class 'I-E' (row row101)" in " ".join(r.output.split())
    r = runner.invoke(
        app,
        ["evaluate", str(out), str(DATA), "--set", f"labels={LABELS}", "--set", "classes=A-E,A-P", *common],
    )
    assert r.exit_code == 0, r.output
    assert {"gm", "accuracy"} <= set(json.loads(r.stdout))
    # --labels as at training (the same as --set labels=)
    r2 = runner.invoke(
        app, ["evaluate", str(out), str(DATA), "--labels", str(LABELS), "--set", "classes=A-E,A-P", *common]
    )
    assert r2.exit_code == 0 and json.loads(r2.stdout) == json.loads(r.stdout), r2.output
    r = runner.invoke(app, ["predict", str(out), str(DATA), *common])
    assert r.exit_code == 0, r.output
    pred = pd.read_csv(pd.io.common.StringIO(r.stdout), sep="\t")
    assert len(pred) == 700 and "prob_A-E" in pred.columns

    # the 7-class task with PEDLA, and DEEP refusing it
    r = runner.invoke(
        app,
        [
            "train",
            "--system",
            "pedla",
            "--data",
            str(DATA),
            "--labels",
            str(LABELS),
            "--out",
            str(tmp_path / "pedla"),
            "--epochs",
            "2",
            "--no-progress",
            "--set",
            "pretrain_epochs=1",
            "-m",
            "hidden=[16,8]",
            "--set",
            "report=false",
            *common,
        ],
    )
    assert r.exit_code == 0, r.output
    s = json.loads((tmp_path / "pedla" / "summary.json").read_text())
    assert s["task"] == "multiclass" and len(s["classes"]) == 7 and "mcc" in s["test_metrics"]
    r = runner.invoke(
        app,
        [
            "train",
            "--system",
            "deep-enhancer",
            "--data",
            str(DATA),
            "--labels",
            str(LABELS),
            "--out",
            str(tmp_path / "deep"),
            *common,
        ],
    )
    assert r.exit_code == 2 and "deep-enhancer does not do multiclass tasks" in " ".join(r.output.split())


def test_a_value_beyond_float32_is_refused_by_line(tmp_path) -> None:
    """1e39 passed the NaN / inf check and became inf in the float32 table: an all-NaN model."""
    lines = (
        gzip.open(DATA, "rt").read().splitlines()
        if str(DATA).endswith(".gz")
        else DATA.read_text().splitlines()
    )
    f = lines[4].split("\t")
    f[2] = "1e39"
    lines[4] = "\t".join(f)
    bad = tmp_path / "big.txt"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(BiodlInputError, match=r"big.txt, line 5: .*1e39 is beyond float32's range"):
        read_features(bad, labels=LABELS, feature_names=NAMES)


def test_training_refuses_dubious_tables(tmp_path) -> None:
    t = read_features(DATA, labels=LABELS, feature_names=NAMES)
    x = t.x.copy()
    x[:, 3] = 7.3  # CPGISLANDS constant (its float32 sd is 9.5e-7, not 0: it was missed)
    data = tmp_path / "c.tsv"
    np.savetxt(data, x, fmt="%.6g", delimiter="\t")
    opts = {"data": data, "labels": LABELS, "feature_names": NAMES, "positive": ["A-E"], "report": False}
    cfg = TrainConfig(max_epochs=1, patience=0, device="cpu", progress=False)
    with pytest.raises(BiodlInputError, match=r"constant over the training rows: CPGISLANDS.*constant=drop"):
        pipeline.train("dfs", tmp_path / "r1", options=opts, config=cfg, quiet=True)
    s = pipeline.train(
        "dfs",
        tmp_path / "r2",
        options={**opts, "constant": "drop"},
        config=cfg,
        quiet=True,
        model_options={"hidden": [8]},
    )
    allc = tmp_path / "allc.tsv"
    np.savetxt(allc, np.ones_like(x) * 3.3, fmt="%.6g", delimiter="\t")
    with pytest.raises(BiodlInputError, match="every one of the 25 features is constant"):
        pipeline.train(
            "dfs", tmp_path / "r4", options={**opts, "data": allc, "constant": "drop"}, config=cfg, quiet=True
        )
    _, meta = load_model(tmp_path / "r2")
    assert "CPGISLANDS" not in meta.data["features"] and len(meta.data["features"]) == 24 and s["n_train"] > 0
    with pytest.raises(BiodlInputError, match=r"positive class\(es\) X-Y are not among the classes kept"):
        pipeline.train("dfs", tmp_path / "r3", options={**opts, "positive": ["X-Y"]}, config=cfg, quiet=True)


def _table(path: Path, x: np.ndarray, labels, names=None) -> Path:
    names = names or [f"f{j}" for j in range(x.shape[1])]
    df = pd.DataFrame(x, columns=names)
    df["label"] = labels
    df.to_csv(path, index=False)
    return path


def test_log1p_only_on_columns_non_negative_in_training() -> None:
    """A column with negative values (z-scores, conservation) is standardised, not clamped at 0
    and logged; which columns are logged is saved; models saved before that load as trained."""
    x = torch.tensor([[0.0, -2.0], [3.0, 1.0], [8.0, -0.5]])
    sc = FeatureScaler(2).fit(x)
    assert sc.logged.tolist() == [True, False]
    z = torch.stack([torch.log1p(x[:, 0]), x[:, 1]], 1)
    assert torch.allclose(sc(x), (z - z.mean(0)) / z.std(0, unbiased=False))
    assert len(torch.unique(sc(x)[:, 1])) == 3  # the negative values are told apart
    fresh = FeatureScaler(2)
    fresh.load_state_dict(sc.state_dict())
    assert fresh.logged.tolist() == [True, False] and torch.equal(fresh(x), sc(x))
    # a state saved before per-column log1p (no 'logged'): every column logged, as trained then
    old = {k: v for k, v in sc.state_dict().items() if k != "logged"}
    legacy = FeatureScaler(2)
    legacy.load_state_dict(old)
    assert legacy.logged.all()
    want = (torch.log1p(x.clamp_min(0)) - sc.mean) / sc.std
    assert torch.allclose(legacy(x), want)
    m = DFS(2, 1, hidden=[4])
    state = {k: v for k, v in m.state_dict().items() if k != "scale.logged"}
    DFS(2, 1, hidden=[4]).load_state_dict(state)  # strict loading of an old DFS checkpoint
    assert not FeatureScaler(2, log1p=False).fit(x).logged.any()


def test_negative_features_are_not_clamped_by_the_default_log1p(tmp_path) -> None:
    """z-scored features: the default (log1p on) trains exactly as log1p=false, instead of
    clamping the negative half of every column to 0."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3)).astype(np.float32)
    y = np.where(x[:, 0] < -0.5, "B", "A")  # only the negative half of column 0 tells the class
    data = _table(tmp_path / "z.csv", x, y)
    cfg = TrainConfig(max_epochs=3, patience=0, device="cpu", progress=False, seed=0)
    runs = {}
    for name, mo in (("default", {}), ("nolog", {"log1p": False})):
        runs[name] = pipeline.train(
            "dfs",
            tmp_path / name,
            options={"data": data, "report": False, "positive": ["B"]},
            model_options={"hidden": [8], "l1": 0.0, **mo},
            config=cfg,
            quiet=True,
        )["test_metrics"]
    assert runs["default"] == pytest.approx(runs["nolog"])
    model, _ = load_model(tmp_path / "default")
    assert model.scale.log1p and not model.scale.logged.any()


def test_class_checks_come_before_training(tmp_path, capsys) -> None:
    rng = np.random.default_rng(1)
    cfg = TrainConfig(max_epochs=1, patience=0, device="cpu", progress=False)
    one = _table(tmp_path / "one.csv", rng.random((40, 3)), ["A-E"] * 40)
    with pytest.raises(
        BiodlInputError, match=r"one.csv: only one class \(A-E\) in the label column; a classifier"
    ):
        pipeline.train("dfs", tmp_path / "r1", options={"data": one}, config=cfg, quiet=True)
    assert not (tmp_path / "r1" / "model.pt").exists()
    tiny = _table(tmp_path / "tiny.csv", rng.random((8, 3)), ["A-E", "A-P"] * 4)
    with pytest.raises(BiodlInputError, match=r"test_fraction 0.1 of 8 rows \(A-E: 4, A-P: 4\) holds no row"):
        pipeline.train("dfs", tmp_path / "r2", options={"data": tiny}, config=cfg, quiet=True)
    opts = {"data": tiny, "test_fraction": 0.0, "report": False}
    with pytest.raises(
        BiodlInputError, match=r"DFS's path \(--set lambdas\) chooses its model by validation"
    ):
        pipeline.train("dfs", tmp_path / "r3", options={**opts, "lambdas": ["1"]}, config=cfg, quiet=True)
    capsys.readouterr()
    s = pipeline.train("dfs", tmp_path / "r4", options=opts, model_options={"hidden": [4]}, config=cfg)
    assert s["n_train"] == 8 and "holds no row: no validation" in capsys.readouterr().err
    # a validation part without some class is warned about
    few = _table(tmp_path / "few.csv", rng.random((40, 3)), ["A-E"] * 36 + ["A-P"] * 4)
    pipeline.train(
        "dfs", tmp_path / "r5", options={**opts, "data": few}, model_options={"hidden": [4]}, config=cfg
    )
    assert "the validation part (4 rows) has no row of class(es) A-P" in capsys.readouterr().err


def test_path_log_prints_missing_metrics_as_na() -> None:
    from biodl.kinds.features.kind import _fmt

    assert _fmt(None) == "n/a" and _fmt(float("nan")) == "n/a" and _fmt(0.5) == "0.5000"


def test_evaluate_refuses_unknown_classes(tmp_path) -> None:
    rng = np.random.default_rng(2)
    x = rng.random((60, 3))
    data = _table(tmp_path / "t.csv", x, ["A", "B"] * 30)
    cfg = TrainConfig(max_epochs=1, patience=0, device="cpu", progress=False)
    pipeline.train("dfs", tmp_path / "m", options={"data": data, "report": False}, config=cfg, quiet=True,
                   model_options={"hidden": [4]})  # fmt: skip
    new = _table(tmp_path / "n.csv", x[:6], ["A", "B", "C", "A", "C", "B"])
    want = r"n.csv, line 4: class 'C' \(row row3\) is not among the model's classes \(A, B\); 2 row\(s\)"
    with pytest.raises(BiodlInputError, match=want):
        pipeline.evaluate(tmp_path / "m", new, quiet=True)
    m = pipeline.evaluate(tmp_path / "m", new, options={"classes": ["A", "B"]}, quiet=True)
    assert m["n"] == 4, m
    with pytest.raises(BiodlInputError, match=r"--set classes: C not among the model's classes"):
        pipeline.evaluate(tmp_path / "m", new, options={"classes": ["C"]}, quiet=True)


def test_confusion_matrix_is_square_when_a_class_is_never_predicted(tmp_path) -> None:
    from types import SimpleNamespace

    from biodl.kinds.features.report import confusion_section

    (tmp_path / "test").mkdir()
    pd.DataFrame({"label": ["A", "B", "C", "C"], "predicted": ["A", "A", "B", "A"]}).to_csv(
        tmp_path / "test" / "predictions.tsv", sep="\t", index=False
    )
    meta = SimpleNamespace(task="multiclass", label_names=["A", "B", "C"], data={})
    cm = confusion_section(tmp_path, meta)[0].table
    assert list(cm.index) == list(cm.columns) == ["A", "B", "C"]  # C was never predicted: a column of 0
    assert cm.loc["C", "C"] == 0 and cm.loc["C", "A"] == 1 and cm.values.sum() == 4


@pytest.mark.parametrize("lam", ["-1", "nan", "inf", "x"])
def test_dfs_lambdas_are_checked_before_training(tmp_path, lam) -> None:
    rng = np.random.default_rng(3)
    data = _table(tmp_path / "t.csv", rng.random((60, 3)), ["A", "B"] * 30)
    cfg = TrainConfig(max_epochs=1, patience=0, device="cpu", progress=False)
    with pytest.raises(BiodlInputError, match=r"--set lambdas") as e:
        pipeline.train(
            "dfs",
            tmp_path / "r",
            options={"data": data, "lambdas": ["0.5", lam], "report": False},
            config=cfg,
        )
    assert repr(lam) in str(e.value) and ">= 0" in str(e.value)
    assert not (tmp_path / "r" / "path").exists() and not (tmp_path / "r" / "model.pt").exists()


def test_metrics_undefined_by_the_labels_are_nan(tmp_path) -> None:
    from biodl.kinds.features.kind import binary_metrics

    p = np.array([0.9, 0.2, 0.7, 0.6])
    pos = binary_metrics(np.ones(4), p)  # no negative row: specificity, GM, MCC undefined
    assert pos["sensitivity"] == 0.75 and pos["accuracy"] == 0.75
    assert np.isnan(pos["specificity"]) and np.isnan(pos["gm"]) and np.isnan(pos["mcc"])
    neg = binary_metrics(np.zeros(4), p)
    assert np.isnan(neg["sensitivity"]) and neg["specificity"] == 0.25 and np.isnan(neg["gm"])
    both = binary_metrics(np.array([1, 0, 1, 0]), p)
    assert both["specificity"] == 0.5 and both["sensitivity"] == 1.0 and np.isfinite(both["mcc"])
    # evaluating a binary model on rows of one class: specificity is NaN (as AUROC), not 0.0
    rng = np.random.default_rng(4)
    x = rng.random((60, 3))
    data = _table(tmp_path / "t.csv", x, ["A", "B"] * 30)
    cfg = TrainConfig(max_epochs=1, patience=0, device="cpu", progress=False)
    pipeline.train("dfs", tmp_path / "m", options={"data": data, "positive": ["B"], "report": False},
                   config=cfg, quiet=True, model_options={"hidden": [4]})  # fmt: skip
    only_b = _table(tmp_path / "b.csv", x[:10], ["B"] * 10)
    m = pipeline.evaluate(tmp_path / "m", only_b, quiet=True)["metrics"]
    assert m["specificity"] is None or np.isnan(m["specificity"]), m
    assert m["sensitivity"] is not None and 0 <= m["sensitivity"] <= 1, m


def test_missing_features_of_a_table_without_header_and_labels_of_no_model_class():
    """A table without a header (names f1..fN) is told to give --set feature_names; a labels file
    of which no row is a model class is not told to keep only the model's classes (none left)."""
    from types import SimpleNamespace

    from biodl.kinds.features.io import feature_positions
    from biodl.kinds.features.kind import _refuse_unknown

    with pytest.raises(BiodlInputError, match="no header line: give the file of its feature names with"):
        feature_positions(["f1", "f2"], ["H3K27ac", "DNase"])
    with pytest.raises(BiodlInputError) as e:
        feature_positions(["H3K4me1", "CTCF"], ["H3K27ac"])
    assert "no header line" not in str(e.value)
    table = SimpleNamespace(labels=["Q", "Q"], ids=["r1", "r2"], source=None, lines=[2, 3])
    with pytest.raises(BiodlInputError, match="No row has one of them") as e:
        _refuse_unknown(table, ["A-E", "I-E"])
    assert "--set classes" not in str(e.value)
    table.labels = ["Q", "A-E"]
    with pytest.raises(BiodlInputError, match="give --set classes=A-E,I-E"):
        _refuse_unknown(table, ["A-E", "I-E"])


def test_confusion_matrix_of_many_classes_is_bounded(tmp_path) -> None:
    """A 1,000-class run's report was 22 MB (a 1000 x 1000 table, nearly all zeros): the table
    keeps the most frequent classes and pools the rest, saying so; the counts add up."""
    from types import SimpleNamespace

    from biodl.kinds.features.report import confusion_section
    from biodl.report.plots import CONFUSION_CLASSES

    rng = np.random.default_rng(0)
    names = [f"class_{i}" for i in range(300)]
    true = [names[min(int(rng.exponential(40)), 299)] for _ in range(1000)]
    pred = [t if rng.random() < 0.6 else names[int(rng.integers(300))] for t in true]
    (tmp_path / "test").mkdir()
    pd.DataFrame({"label": true, "predicted": pred}).to_csv(
        tmp_path / "test" / "predictions.tsv", sep="\t", index=False
    )
    meta = SimpleNamespace(task="multiclass", label_names=names, data={})
    sec = confusion_section(tmp_path, meta)[0]
    cm = sec.table
    assert cm.shape == (CONFUSION_CLASSES + 1, CONFUSION_CLASSES + 1) and cm.index[-1] == "other classes"
    assert int(cm.to_numpy().sum()) == 1000
    top = pd.Series(true).value_counts()
    assert top.index[0] in cm.index  # the most frequent class is shown
    assert "The 20 most frequent of 300 classes are shown; the other 280 are pooled" in sec.text


def test_an_extended_dfs_path_refits_a_changed_selection_afresh(tmp_path):
    """A path rerun with more --epochs selects anew; each penalty's refit resumed the old
    checkpoint, whose feature mask replaced the new one: the model used the old features while
    path.tsv listed the new. The model now uses what path.tsv lists."""
    import biodl

    out = tmp_path / "dfs"
    args = ["train", "--system", "dfs", "--data", str(DATA), "--labels", str(LABELS), "--out", str(out)]
    args += ["--set", f"feature_names={NAMES}", "--set", "positive=A-E", "--set", "lambdas=0.5,2"]
    args += [
        "--set",
        "max_features=8",
        "--batch-size",
        "32",
        "--seed",
        "1",
        "--no-progress",
        "-m",
        "hidden=[8]",
    ]
    for epochs in ("3", "5"):
        r = runner.invoke(app, [*args, "--epochs", epochs])
        assert r.exit_code == 0, r.output
        m = biodl.load(out)
        used = [f for f, s in zip(m.meta.data["features"], m.module.selected().numpy(), strict=True) if s]
        path = pd.read_csv(out / "path.tsv", sep="\t")
        assert path.loc[path["chosen"], "features"].iloc[0].split(",") == used, (epochs, r.output)


def _train_in_two_processes(system: str, out, *args: str):
    """``biodl train --system SYSTEM`` on the HUVEC slice with ``--devices 2`` (DDP on the CPU),
    in a process of its own; it must succeed."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "biodl.cli", "train", "--system", system, "--data", str(DATA)]
    cmd += ["--labels", str(LABELS), "--set", f"feature_names={NAMES}", *args]
    cmd += ["--no-progress", "--devices", "2", "--out", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return r


def test_pedla_fine_tunes_under_ddp(tmp_path):
    """The decoders of the pre-trained stack get no gradient in fine-tuning: DDP refused them
    ('parameters that were not used in producing the loss'), an internal error once per process.
    They stay in the optimizer (a checkpoint of an earlier version resumes)."""
    out = tmp_path / "pedla"
    # (no --strategy: Lightning's auto is DDP with 2 devices)
    _train_in_two_processes("pedla", out, "--set", "pretrain_epochs=1", "--epochs", "1")
    assert json.loads((out / "run.json").read_text())["status"] == "finished"


def test_stability_selection_under_ddp_is_refused_before_training(tmp_path):
    """--set randomized ran its fits after training in the first process alone: under DDP the
    other had left, and gloo failed with 'Connection closed by peer' (run.json said finished)."""
    from biodl.train import TrainConfig
    from biodl.train.fit import several_processes

    assert several_processes(TrainConfig(devices=2)) and several_processes(TrainConfig(devices="0,1"))
    assert not several_processes(TrainConfig()) and not several_processes(TrainConfig(devices=1))
    r = runner.invoke(
        app,
        ["train", "--system", "dfs", "--data", str(DATA), "--labels", str(LABELS), "--set", "positive=A-E"]
        + ["--set", "randomized=2", "--devices", "2", "--out", str(tmp_path / "r"), "--no-progress"],
    )
    assert (
        r.exit_code == 2
        and "--set randomized (stability selection) runs its fits after training"
        in " ".join(r.output.split())
    )


def test_several_processes_counts_devices_and_nodes():
    from types import SimpleNamespace

    from biodl.train.fit import several_processes

    def several(devices, nodes=1):
        return several_processes(SimpleNamespace(devices=devices, num_nodes=nodes))

    assert [several(d) for d in (2, "0,1", -1, [0, 1])] == [True] * 4
    assert [several(d) for d in (1, "1", "auto", "[0]", "0,", [0])] == [False] * 6  # one device
    assert several(1, nodes=2)


def test_a_dfs_path_trains_under_ddp(tmp_path):
    """The path's second process chose among fits it had no validation metric of: a false
    'error: no model on the path has a validation auroc', and its own models saved over the first's."""
    out = tmp_path / "dfs"
    r = _train_in_two_processes(
        "dfs",
        out,
        *["--set", "positive=A-E", "--set", "lambdas=1,2", "--set", "max_features=8", "--batch-size", "32"],
        *["--epochs", "2", "--strategy", "ddp"],
    )
    assert "error:" not in r.stderr and r.stderr.count("lambda 2:") == 1, r.stderr[-2000:]
    path = pd.read_csv(out / "path.tsv", sep="\t")
    assert path["chosen"].sum() == 1 and path["val_auroc"].notna().all()


def test_values_near_float32s_limit_are_scaled_in_float64() -> None:
    """Columns of +-2e38 (inside float32's range) overflowed the scaler's float32 sums: NaN
    weights, blamed on --lr."""
    from biodl.models.features import FeatureScaler

    rng = np.random.default_rng(0)
    x = np.stack([rng.uniform(1e38, 3e38, 50) * np.sign(rng.normal(size=50)), np.full(50, 7.3)], 1)
    s = FeatureScaler(2, log1p=False).fit(torch.from_numpy(x.astype(np.float32)))
    z = s(torch.from_numpy(x.astype(np.float32)))
    assert torch.isfinite(z).all() and float(z[:, 0].std(unbiased=False)) == pytest.approx(1.0, abs=1e-3)
    assert float(s.std[1]) == 1.0  # a constant column is scaled by 1
