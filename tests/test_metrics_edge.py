"""Metrics when a label has one class only: the defined values are reported, the undefined
ones are NaN with a warning, and metrics.json holds null (valid JSON), not NaN."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from biodl.train import metrics as M


@pytest.fixture(autouse=True)
def _fresh_warnings():
    M._WARNED.clear()
    yield
    M._WARNED.clear()


def test_one_class_positive_labels(capsys):
    logits = np.array([2.0, 1.0, -1.0, -2.0, 3.0])[:, None]
    y = np.ones((5, 1))
    got = M.threshold_metrics(logits, y, [0.5])
    assert got["accuracy"] == pytest.approx(0.6) and got["sensitivity"] == pytest.approx(0.6)
    assert math.isnan(got["mcc"]) and math.isnan(got["specificity"]) and got["threshold"] == 0.5
    m = M.compute_metrics("binary", torch.from_numpy(logits), torch.from_numpy(y))
    assert math.isnan(m["auroc"]) and math.isnan(m["auprc"])
    err = capsys.readouterr().err
    assert "the labels have one class only (all 1): MCC and specificity are undefined" in err
    assert "the labels have one class only (all 1): AUROC and AUPRC are undefined" in err


def test_one_class_negative_labels(capsys):
    logits = np.array([2.0, -1.0, -1.0, -2.0])[:, None]
    got = M.threshold_metrics(logits, np.zeros((4, 1)), [0.5])
    assert got["accuracy"] == pytest.approx(0.75) and got["specificity"] == pytest.approx(0.75)
    assert math.isnan(got["mcc"]) and math.isnan(got["sensitivity"])
    assert "(all 0): MCC and sensitivity are undefined" in capsys.readouterr().err


def test_multilabel_means_keep_labels_with_both_classes(capsys):
    logits = np.array([[2.0, 2.0], [-2.0, -2.0], [2.0, 1.0], [-1.0, 1.0]])
    y = np.array([[1, 1], [0, 1], [1, 1], [0, 1]], dtype=float)
    got = M.threshold_metrics(logits, y, [0.5, 0.5], ["a", "b"])
    # label b has one class: left out of the means (as before), its MCC NaN rather than 0
    assert got["mcc"] == pytest.approx(1.0) and got["accuracy"] == pytest.approx(1.0)
    assert math.isnan(got["mcc/b"]) and got["accuracy/b"] == pytest.approx(0.75)
    err = capsys.readouterr().err
    assert "1 of 2 labels have one class only (b (all 1))" in err
    # the means drop the label for all four metrics, not only the undefined ones: said so
    assert "left out of the means of MCC, accuracy, sensitivity and specificity" in err
    both = M.threshold_metrics(logits, np.ones((4, 2)), [0.5, 0.5], ["a", "b"])
    assert both["accuracy"] == pytest.approx((0.5 + 0.75) / 2) and math.isnan(both["specificity"])


def test_metrics_json_writes_null_not_nan(tmp_path):
    from biodl.kinds.base import write_results

    res = {
        "metrics": {"auroc": float("nan"), "acc": np.float32(0.5), "x": np.float64("inf")},
        "n": np.int64(3),
    }
    write_results(tmp_path / "ev", res, pd.DataFrame({"id": ["a"], "p": [0.1]}))
    text = (tmp_path / "ev" / "metrics.json").read_text()

    def refuse(c):
        raise AssertionError(f"not JSON: {c}")

    d = json.loads(text, parse_constant=refuse)
    assert d["metrics"] == {"auroc": None, "acc": 0.5, "x": None} and d["n"] == 3


def test_report_tables_say_undefined_for_null_metrics():
    from biodl.report.run import _metric_cells

    cells = _metric_cells(
        {"auroc": None, "mcc": float("nan"), "accuracy": 0.4, "threshold": 0.5, "note": "x"}
    )
    assert cells == {"auroc": "undefined", "mcc": "undefined", "accuracy": 0.4, "threshold": 0.5}


def test_multiclass_auroc_over_the_classes_present(capsys, recwarn):
    """A class absent from the targets is left out of the macro AUROC (torchmetrics counted it
    as 0 and warned); one class only: NaN and one biodl warning."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    logits = torch.from_numpy(rng.normal(size=(30, 3)).astype(np.float32))
    t = torch.from_numpy(np.array([0, 1] * 15, np.float32)[:, None])  # class 2 absent
    m = M.compute_metrics("multiclass", logits, t)
    prob = logits.softmax(-1).numpy()
    want = np.mean([roc_auc_score(t.numpy()[:, 0] == c, prob[:, c]) for c in (0, 1)])
    assert m["auroc"] == pytest.approx(want, abs=1e-6)
    full = torch.from_numpy(np.array([0, 1, 2] * 10, np.float32)[:, None])  # all present: as before
    all3 = np.mean([roc_auc_score(full.numpy()[:, 0] == c, prob[:, c]) for c in range(3)])
    assert M.compute_metrics("multiclass", logits, full)["auroc"] == pytest.approx(all3, abs=1e-6)
    one = M.compute_metrics("multiclass", logits, torch.zeros(30, 1))
    assert math.isnan(one["auroc"]) and one["accuracy"] == pytest.approx(float((prob.argmax(1) == 0).mean()))
    assert "all of one class: AUROC is undefined (NaN)" in capsys.readouterr().err
    assert not [w for w in recwarn if "torchmetrics" in str(w.filename)]


def test_regression_of_one_item_has_a_squared_error():
    """One labelled item: MSE is defined (it was NaN), a correlation and R^2 are not."""
    m = M.compute_metrics("regression", torch.tensor([[1.5]]), torch.tensor([[0.5]]))
    assert m["mse"] == pytest.approx(1.0) and math.isnan(m["pearson"]) and math.isnan(m["r2"])


def test_a_label_without_positive_training_rows_is_not_said_to_be_left_out(capsys):
    """The training warning said such labels' metrics were NaN and left out of the means; a split
    with both classes scores them and averages them in (the means are the scored split's)."""
    from biodl.kinds.base import check_labels

    y = np.array([[1, 0], [0, 0], [1, 0]], dtype=float)
    check_labels(y, ["a", "rare"], "multilabel")
    err = capsys.readouterr().err
    assert "rare: all 0" in err and "the model cannot learn them" in err
    assert "left out of the means" not in err and "its means include them" in err
