"""Tests of the report layer: figures (ROC/PR, learning curves, logos) and the HTML report."""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from biodl.errors import BiodlInputError
from biodl.report import (
    Section,
    plot_learning_curves,
    plot_logos,
    plot_pr,
    plot_roc,
    pwm_information_content,
    write_bytes_atomic,
    write_html_report,
)
from biodl.report import plots as plots_mod

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _toy_labels(n: int = 300, t: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random((n, t)) < 0.3).astype(float)
    s = y * rng.normal(1.0, 1.0, (n, t)) + rng.normal(0.0, 1.0, (n, t))
    y[rng.random((n, t)) < 0.1] = np.nan  # unknown labels
    return y, s


def _assert_png(path: Path, min_px: int = 200) -> np.ndarray:
    data = path.read_bytes()
    assert len(data) > 0
    assert data[:8] == PNG_MAGIC
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[2] in (3, 4)
    assert img.shape[0] >= min_px and img.shape[1] >= min_px
    return img


@pytest.fixture
def legends(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Capture the legend texts of every figure saved by biodl.report.plots."""
    captured: list[list[str]] = []
    original = plots_mod._save_figure

    def spy(fig, path, dpi=plots_mod.DEFAULT_DPI):
        texts = []
        for ax in fig.axes:
            leg = ax.get_legend()
            if leg is not None:
                texts += [t.get_text() for t in leg.get_texts()]
        captured.append(texts)
        return original(fig, path, dpi)

    monkeypatch.setattr(plots_mod, "_save_figure", spy)
    return captured


def _values(texts: list[str], key: str) -> list[float]:
    return [float(m.group(1)) for t in texts if (m := re.search(rf"\b{key} = ([0-9.]+)\)?$", t))]


def test_roc_auc_in_legend_matches_sklearn(tmp_path: Path, legends: list[list[str]]) -> None:
    y, s = _toy_labels()
    out = plot_roc(y[:, 0], s[:, 0], tmp_path / "roc.png")
    assert out == tmp_path / "roc.png"
    keep = ~np.isnan(y[:, 0])
    expected = roc_auc_score(y[keep, 0], s[keep, 0])
    (auc,) = [v for v in _values(legends[0], "AUC") if v != 0.5]
    assert auc == pytest.approx(expected, abs=5e-4)
    _assert_png(out)

    plot_roc(y, s, tmp_path / "roc_multi.png", label_names=["CTCF", "GATA1", "SPI1"])
    texts = [t for t in legends[1] if not t.startswith("chance")]
    assert [t.split(" (")[0] for t in texts] == ["CTCF", "GATA1", "SPI1"]
    for j, v in enumerate(_values(texts, "AUC")):
        keep = ~np.isnan(y[:, j])
        assert v == pytest.approx(roc_auc_score(y[keep, j], s[keep, j]), abs=5e-4)
    _assert_png(tmp_path / "roc_multi.png")


def test_pr_auprc_in_legend_matches_sklearn(tmp_path: Path, legends: list[list[str]]) -> None:
    y, s = _toy_labels(seed=1)
    plot_pr(y, s, tmp_path / "pr.png")
    for j, v in enumerate(_values(legends[0], "AUPRC")):
        keep = ~np.isnan(y[:, j])
        assert v == pytest.approx(average_precision_score(y[keep, j], s[keep, j]), abs=5e-4)
    _assert_png(tmp_path / "pr.png")


def test_curves_cap_and_skip_one_class_labels(tmp_path: Path, legends: list[list[str]]) -> None:
    y, s = _toy_labels(n=120, t=20, seed=2)
    y[:, 0] = 0.0  # one class only: no ROC curve
    plot_roc(y, s, tmp_path / "many.png", max_curves=12)
    curves = [t for t in legends[0] if not t.startswith("chance")]
    assert len(curves) == 12
    assert not any(t.startswith("label 0 ") for t in curves)


def test_curve_input_errors(tmp_path: Path) -> None:
    with pytest.raises(BiodlInputError, match="shape"):
        plot_roc(np.zeros(5), np.zeros(6), tmp_path / "x.png")
    with pytest.raises(BiodlInputError, match="binary"):
        plot_roc(np.array([0, 0.5, 1]), np.zeros(3), tmp_path / "x.png")
    with pytest.raises(BiodlInputError, match="both positive and negative"):
        plot_pr(np.ones(4), np.arange(4.0), tmp_path / "x.png")
    with pytest.raises(BiodlInputError, match="label_names"):
        plot_roc(np.eye(4)[:, :2], np.ones((4, 2)), tmp_path / "x.png", label_names=["a"])
    assert not list(tmp_path.iterdir())


def test_learning_curves_with_nans(tmp_path: Path, legends: list[list[str]]) -> None:
    # Lightning CSVLogger style: train and val metrics on separate rows of the same epoch.
    history = pd.DataFrame(
        {
            "epoch": [0, 0, 1, 1, 2, 2, 3],
            "step": [10, 10, 20, 20, 30, 30, 40],
            "train_loss": [0.9, np.nan, 0.7, np.nan, 0.5, np.nan, 0.4],
            "val_loss": [np.nan, 0.8, np.nan, 0.6, np.nan, 0.65, np.nan],
            "val_auroc": [np.nan, 0.70, np.nan, 0.78, np.nan, 0.77, np.nan],
            "val_auprc": np.nan,
        }
    )
    out = plot_learning_curves(history, tmp_path / "lc.png", title="toy")
    img = _assert_png(out)
    assert img.shape[1] > img.shape[0]  # two panels side by side
    texts = legends[0]
    assert {"train_loss", "val_loss", "val_auroc"} <= set(texts)
    assert "val_auprc" not in texts and "step" not in texts
    assert any("epoch 2" in t for t in texts)  # best val_loss marker: the second epoch, counted from 1

    # Only losses, no metrics: still two panels, no error.
    plot_learning_curves(pd.DataFrame({"epoch": [0, 1], "train_loss": [1.0, np.nan]}), tmp_path / "lc2.png")
    _assert_png(tmp_path / "lc2.png")
    with pytest.raises(BiodlInputError, match="epoch"):
        plot_learning_curves(pd.DataFrame({"train_loss": [1.0]}), tmp_path / "lc3.png")


def test_information_content() -> None:
    assert pwm_information_content(np.full((5, 4), 0.25)) == pytest.approx(0.0)
    assert pwm_information_content(np.eye(4)) == pytest.approx(8.0)
    assert pwm_information_content([[0.5, 0.5, 0, 0]]) == pytest.approx(1.0)
    assert pwm_information_content([[0, 0, 0, 0], [0, 0, 0, 2]]) == pytest.approx(2.0)  # empty row -> uniform
    with pytest.raises(BiodlInputError, match="transpose"):
        pwm_information_content(np.full((4, 7), 0.25))
    with pytest.raises(BiodlInputError, match="negative"):
        pwm_information_content([[-0.1, 0.5, 0.3, 0.3]])


def test_logos_two_filters(tmp_path: Path) -> None:
    ctcf_like = np.array(
        [[0.05, 0.85, 0.05, 0.05], [0.1, 0.1, 0.7, 0.1], [0.97, 0.01, 0.01, 0.01], [0.25, 0.25, 0.25, 0.25]]
    )
    rng = np.random.default_rng(3)
    other = rng.dirichlet(np.full(4, 0.5), size=7)
    out = plot_logos([ctcf_like, other], tmp_path / "logos.png", names=["filter 0", "filter 1"], ncols=4)
    img = _assert_png(out, min_px=150)
    assert img.shape[1] > img.shape[0]  # one row of two logos
    out2 = plot_logos(
        np.stack([ctcf_like, ctcf_like]), tmp_path / "logos2.png", titles=["n = 10", "n = 20"], ncols=1
    )
    img2 = _assert_png(out2, min_px=150)
    assert img2.shape[0] > 300  # two rows
    with pytest.raises(BiodlInputError, match="names"):
        plot_logos([ctcf_like], tmp_path / "x.png", names=["a", "b"])
    with pytest.raises(BiodlInputError, match="no PWMs"):
        plot_logos([], tmp_path / "x.png")


def test_no_pyplot_figures_left_open(tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    before = set(plt.get_fignums())
    y, s = _toy_labels(n=50, t=1)
    plot_roc(y, s, tmp_path / "a.png")
    plot_pr(y, s, tmp_path / "b.png")
    plot_logos([np.eye(4)], tmp_path / "c.png")
    assert set(plt.get_fignums()) == before


def test_atomic_writer_leaves_no_temp_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    y, s = _toy_labels(n=60, t=1)
    plot_roc(y, s, tmp_path / "out" / "roc.png")  # creates the directory
    plot_roc(y, s, tmp_path / "out" / "roc.png")  # overwrites
    write_bytes_atomic(tmp_path / "out" / "x.bin", b"abc")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["roc.png", "x.bin"]

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    from biodl.errors import BiodlInputError

    with pytest.raises(BiodlInputError, match="x.bin: cannot write: disk full; nothing was replaced"):
        write_bytes_atomic(tmp_path / "out" / "x.bin", b"new content")
    with pytest.raises(BiodlInputError, match="pr.png: cannot write: disk full; nothing was replaced"):
        plot_pr(y, s, tmp_path / "out" / "pr.png")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["roc.png", "x.bin"]
    assert (tmp_path / "out" / "x.bin").read_bytes() == b"abc"


def test_html_report_embeds_images_and_metrics(tmp_path: Path) -> None:
    y, s = _toy_labels(n=80, t=1)
    roc = plot_roc(y, s, tmp_path / "roc.png")
    pr = plot_pr(y, s, tmp_path / "pr.png")
    models = pd.DataFrame({"auroc": [0.91234, 0.8], "auprc": [0.5, np.nan]}, index=["DeepBind", "DeepSEA"])
    sections = [
        Section(
            "Test metrics", text="Held-out <chr8>.\n\nSecond paragraph.", table={"auroc": 0.8765, "n": 12}
        ),
        Section("Models", table=models),
        Section("Curves", images=[roc, (pr, "Precision-recall")]),
    ]
    out = write_html_report(tmp_path / "site" / "report.html", "CTCF & friends", sections, timestamp=False)
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("data:image/png;base64,") == 2
    uris = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert base64.b64decode(uris[0]) == roc.read_bytes()
    assert base64.b64decode(uris[1]) == pr.read_bytes()
    for value in ("0.8765", ">12<", "0.9123", "0.8000", "0.5000", "DeepBind", "Precision-recall"):
        assert value in page
    assert "CTCF &amp; friends" in page and "Held-out &lt;chr8&gt;." in page  # escaped
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert "<style>" in page
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]
    # Moving the page keeps it working: nothing refers to the image files.
    assert str(tmp_path) not in page


def test_html_report_missing_image(tmp_path: Path) -> None:
    with pytest.raises(BiodlInputError, match="missing.png"):
        write_html_report(tmp_path / "r.html", "x", [Section("a", images=[tmp_path / "missing.png"])])
    with pytest.raises(BiodlInputError, match="not a valid"):
        (tmp_path / "fake.png").write_text("not a png")
        write_html_report(tmp_path / "r.html", "x", [Section("a", images=[tmp_path / "fake.png"])])
    assert not (tmp_path / "r.html").exists()


def test_plot_scatter(tmp_path):
    from biodl.report.plots import plot_scatter

    rng = np.random.default_rng(0)
    y = rng.normal(size=(50, 2))
    y[3, 1] = np.nan  # a missing target is skipped
    out = plot_scatter(y, y + rng.normal(scale=0.1, size=y.shape), tmp_path / "s.png", label_names=["a", "b"])
    assert out.stat().st_size > 1000
    with pytest.raises(ValueError, match="differ in shape"):
        plot_scatter(y, y[:, :1], tmp_path / "t.png")
    with pytest.raises(ValueError, match="two observed values"):
        plot_scatter(np.full((5, 1), np.nan), np.zeros((5, 1)), tmp_path / "u.png")


def test_report_of_a_run_whose_test_file_is_gone_warns_and_leaves_its_sections_out(
    tmp_path, rest_small, capsys, monkeypatch
) -> None:
    """The run stores its inputs as absolute paths (report works from any directory); a test file
    moved away since leaves out the sections that need it, with a warning, not a failed report."""
    import shutil

    from biodl.pipeline import report, train
    from biodl.train import TrainConfig

    test = tmp_path / "t.seq"
    shutil.copy(rest_small["test"], test)
    run = tmp_path / "run"
    cfg = TrainConfig(max_epochs=1, patience=0, device="cpu", progress=False)
    train(
        "deepbind",
        run,
        options={"data": rest_small["train"], "test_file": test},
        model_options={"num_motifs": 4, "motif_len": 8, "hidden": 0},
        config=cfg,
        quiet=True,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert report(Path("..") / "run", quiet=True).exists()  # the test file is found from anywhere
    test.unlink()
    capsys.readouterr()
    assert report(run, quiet=True).exists()
    err = capsys.readouterr().err
    assert "warning" in err and str(test) in err and "left out" in err


def test_an_empty_history_leaves_out_the_learning_curves_with_a_warning(tmp_path, capsys) -> None:
    """An empty history.csv (a truncated copy) was 'unexpected EmptyDataError'."""
    from biodl.report.run import _learning_curve_sections, learning_curves_section

    (tmp_path / "history.csv").write_text("")
    (tmp_path / "layer1").mkdir()
    (tmp_path / "layer1" / "history.csv").write_text("")
    assert learning_curves_section(tmp_path) == []
    assert _learning_curve_sections(tmp_path) == []
    err = " ".join(capsys.readouterr().err.split())
    assert f"{tmp_path / 'history.csv'}: empty file; the learning curves are left out" in err
    assert not list(tmp_path.glob("*.png"))


def _run_with_inputs_inside(tmp_path, rest_small) -> Path:
    """A finished run whose recorded training file is RUN/motifs.tsv and test file
    RUN/filters.meme: names `biodl report` and `biodl motifs` write."""
    import json
    import shutil

    import torch

    from biodl.models import DeepBind
    from biodl.train.checkpoint import load_model, save_model, write_run_json
    from tests.conftest import save_legacy_model

    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(rest_small["train"], run / "motifs.tsv")
    shutil.copy(rest_small["test"], run / "filters.meme")
    torch.manual_seed(0)
    kw = dict(n_outputs=1, num_motifs=4, motif_len=8, hidden=0, reverse_complement=True)
    meta = {"recipe": "deepbind", "model_kwargs": kw, "seq_len": 101, "n_value": 0.25, "task": "binary"}
    save_legacy_model(run / "model.pt", DeepBind(**kw), meta)
    model, m = load_model(run)
    m = m.replace(options={"data": str(run / "motifs.tsv"), "test_file": str(run / "filters.meme")})
    save_model(run / "model.pt", model, m)
    write_run_json(run, m)
    (run / "history.csv").write_text("epoch,train_loss,val_loss\n0,0.7,0.69\n1,0.6,0.65\n")
    (run / "test").mkdir()
    (run / "test" / "metrics.json").write_text(
        json.dumps({"data": str(run / "filters.meme"), "n": 200, "metrics": {}})
    )
    return run


def test_report_and_motifs_refuse_to_write_over_the_runs_own_inputs(tmp_path, rest_small) -> None:
    """`biodl report` replaced a training file kept in the run as RUN/motifs.tsv (and refused the
    test file RUN/filters.meme only after writing other files); `biodl motifs` likewise."""
    from biodl.kinds.sequences.report import run_motifs
    from biodl.pipeline import report

    run = _run_with_inputs_inside(tmp_path, rest_small)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    with pytest.raises(
        BiodlInputError, match=r"motifs\.tsv: is an input of this run \(its training file\)"
    ) as e:
        report(run, quiet=True)
    assert "move it out of the run directory" in str(e.value) and "give another --out" not in str(e.value)
    db = tmp_path / "db.meme"
    from biodl.interpret.motifs import write_meme

    write_meme(db, [np.full((5, 4), 0.25) + np.eye(4)[[0, 1, 2, 3, 0]]], names=["m"])
    with pytest.raises(BiodlInputError, match=r"is an input of this run"):
        run_motifs(run, db=str(db))
    with pytest.raises(BiodlInputError, match=r"filters\.meme: is an input of this run \(its test file\)"):
        run_motifs(run, db=str(db), out=tmp_path / "m.tsv")
    after = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    assert after == before  # nothing written, nothing replaced
    assert not (tmp_path / "m.tsv").exists()


def test_a_table_with_a_list_value_is_one_row_per_metric() -> None:
    """A run table with a list among its values (sparse-ae's layer sizes) became a 2-row wide
    table repeating every value; ``{column: [values]}`` tables stay columns."""
    from biodl.report.html import _to_dataframe

    df = _to_dataframe({"system": "sparse-ae", "nodes": [6, 4], "val_loss": 0.5})
    assert list(df["metric"]) == ["system", "nodes", "val_loss"]
    assert list(df["value"]) == ["sparse-ae", "6, 4", 0.5]
    cols = _to_dataframe({"a": [1, 2], "b": [3, 4]})
    assert list(cols.columns) == ["a", "b"] and len(cols) == 2


def test_read_abundance_keeps_the_true_count_of_a_species_never_called() -> None:
    from biodl.kinds.reads.report import abundance

    df = pd.DataFrame({"call_species": ["", "", "a", "a"], "true_species": ["a", "b", "a", "c"]})
    ab = abundance(df, ["species", "genus"])
    assert ab["true"].to_dict() == {"a": 2, "b": 1, "c": 1, "not called at species level": 0}
    assert ab["called"].to_dict() == {"a": 2, "b": 0, "c": 0, "not called at species level": 2}


def test_methylation_accuracy_by_distance_puts_each_bin_at_its_place(tmp_path, monkeypatch) -> None:
    """A profile without sites in a middle distance bin was drawn shifted onto the wrong bins,
    and the ticks named the last profile's bins only."""
    from types import SimpleNamespace

    from biodl.kinds.methylation import report as mr

    rng = np.random.default_rng(0)
    near_a = np.repeat([50, 150, 300, 700], 10)  # bins 0-3
    near_b = np.repeat([50, 300, 20_000], 10)  # bins 0, 2 and the open last one
    pred = pd.DataFrame({"true_a": rng.integers(0, 2, 40), "prob_a": rng.random(40), "nearest_a": near_a})
    pred_b = pd.DataFrame({"true_b": rng.integers(0, 2, 30), "prob_b": rng.random(30), "nearest_b": near_b})
    (tmp_path / "test").mkdir()
    pd.concat([pred, pred_b], axis=1).to_csv(tmp_path / "test" / "predictions.tsv", sep="\t", index=False)
    figs = []
    monkeypatch.setattr(mr, "_save_figure", lambda fig, path: figs.append(fig) or Path(path))
    mr.methylation_sections(tmp_path, SimpleNamespace(task="binary", label_names=["a", "b"]))
    ax = figs[0].axes[1]
    xs = {ln.get_label(): list(ln.get_xdata()) for ln in ax.get_lines()}
    last = len(mr.DISTANCE_BINS) - 2
    assert xs == {"a": [0, 1, 2, 3], "b": [0, 2, last]}
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks == ["0-100", "100-250", "250-500", "500-1000", "10000-"]


def test_label_names_with_dollar_signs_and_a_renamed_label_column(tmp_path, rest_small, capsys) -> None:
    """A label named 'Bound $a^^b$' was parsed as mathtext: training failed at the test plot
    and left the run 'running'; the report of a run trained with --label-col NAME interpreted
    every test sequence, negatives too, as positives; a cut-short test/metrics.json failed the
    report with an internal error."""
    import json

    from biodl.kinds.sequences.report import positive_test_sequences
    from biodl.pipeline import report, train
    from biodl.train import TrainConfig
    from biodl.train.checkpoint import load_model, read_run_json

    name = "Bound $a^^b$"
    files = {}
    for part in ("train", "test"):
        lines = Path(rest_small[part]).read_text().splitlines()
        assert lines[0].split("\t")[-1] == "Bound"
        files[part] = tmp_path / f"{part}.seq"
        files[part].write_text("\n".join([lines[0].replace("Bound", name), *lines[1:]]) + "\n")
    run = tmp_path / "run"
    cfg = TrainConfig(max_epochs=1, patience=0, device="cpu", progress=False)
    train(
        "deepbind",
        run,
        options={"data": files["train"], "test_file": files["test"], "label_col": name},
        model_options={"num_motifs": 4, "motif_len": 8, "hidden": 0},
        config=cfg,
        quiet=True,
    )
    assert read_run_json(run).status == "finished"
    html = report(run, quiet=True).read_text()
    assert name in html
    # the ISM rows and figures name the sequences by their ids, not by a place among the positives
    ism_ids = re.findall(r"<tr><td>(seq_\d+_\w+)</td><td>", html)
    assert len(ism_ids) == 3 and all(i.endswith("_peak") for i in ism_ids)
    model, meta = load_model(run)
    X = positive_test_sequences(run, meta)[0]
    labels = pd.read_csv(files["test"], sep="\t")[name]
    assert 0 < len(X) == int((labels == 1).sum()) < len(labels)
    assert re.search(r"<td>test items</td><td[^>]*>200</td>", report(run, quiet=True).read_text())
    with pytest.raises(BiodlInputError, match="not found"):
        report(run, data=tmp_path / "missing.seq", quiet=True)
    from biodl.kinds.sequences.kind import SequencesKind

    with pytest.MonkeyPatch.context() as mp:  # a kind whose report reads no inputs refuses them
        mp.setattr(SequencesKind, "report_data", "")
        with pytest.raises(BiodlInputError, match="reads no inputs"):
            report(run, data=files["test"], quiet=True)
    (run / "test" / "metrics.json").write_text('{"metrics": {"auroc": 0.9')
    capsys.readouterr()
    html = report(run, quiet=True).read_text()
    err = " ".join(capsys.readouterr().err.split())
    assert "metrics.json: unreadable" in err and "left out" in err
    assert "Held-out test set</h2>\n<p>Not shown: " in html and "cannot be read" in html
    (run / "test" / "metrics.json").write_text(json.dumps({"n": 3}))
    assert report(run, quiet=True).exists()


def test_a_run_whose_test_evaluation_fails_is_finished(tmp_path, rest_small, monkeypatch) -> None:
    """The model is trained and saved before the test set is scored: a failure there leaves a
    finished run (biodl evaluate / report work on it), not one marked as still running."""
    from biodl import pipeline
    from biodl.train import TrainConfig
    from biodl.train.checkpoint import read_run_json

    def broken(*a, **k):
        raise RuntimeError("scoring failed")

    monkeypatch.setattr(pipeline, "evaluate_table", broken)
    run = tmp_path / "run"
    cfg = TrainConfig(max_epochs=1, patience=0, device="cpu", progress=False)
    with pytest.raises(RuntimeError, match="scoring failed"):
        pipeline.train(
            "deepbind",
            run,
            options={"data": rest_small["train"], "test_file": rest_small["test"]},
            model_options={"num_motifs": 4, "motif_len": 8, "hidden": 0},
            config=cfg,
            quiet=True,
        )
    assert read_run_json(run).status == "finished" and (run / "model.pt").exists()
    monkeypatch.chdir(run)  # "biodl report ." is titled by the folder's name
    html = pipeline.report(Path("."), quiet=True).read_text()
    assert "<h1>DeepBind: run</h1>" in html
    # said, not a silently short page, nor "none in this run" (it has a test file): how to get them
    assert "Held-out test set</h2>\n<p>This run&#x27;s test file is " in html
    assert "is missing (its evaluation failed, or the folder was removed)" in html
    assert "--out DIR scores that file again" in html


def test_learning_curves_count_epochs_from_one_and_log_scale_curves_decades_apart(
    tmp_path, monkeypatch
) -> None:
    """The plot counted epochs from 0 while the report's table counts from 1 (with ticks at
    0.2 epochs); a sparsity penalty of ~1 beside a reconstruction error of ~100 was a flat line."""
    seen = []
    original = plots_mod._save_figure

    def spy(fig, path, dpi=100):
        for ax in fig.axes:
            seen.append((list(ax.get_lines()[0].get_xdata()), list(ax.get_xticks()), ax.get_yscale()))
        return original(fig, path, dpi)

    monkeypatch.setattr(plots_mod, "_save_figure", spy)
    h = pd.DataFrame(
        {
            "epoch": [0, 1],
            "val_loss": [0.7, 0.6],
            "val_reconstruction": [110.0, 100.0],
            "val_sparsity": [1.4, 1.2],
        }
    )
    plot_learning_curves(h, tmp_path / "lc.png")
    (x_loss, ticks, scale_loss), (_, _, scale_metric) = seen
    assert x_loss == [1, 2] and all(float(t).is_integer() for t in ticks)
    assert scale_metric == "log" and scale_loss == "linear"


def test_a_tables_leftover_row_positions_are_not_shown_its_named_index_is() -> None:
    from biodl.report.html import _table_html

    df = pd.DataFrame({"gene": ["a", "b", "c"], "mae": [0.1, 0.3, 0.2]}).sort_values("mae", ascending=False)
    assert '<th scope="col"></th>' not in _table_html(df.head(2))  # row positions 1, 2: no stray column
    assert '<th scope="col">rank</th>' in _table_html(df.set_index("gene").rename_axis("rank"))
    assert '<th scope="row">a</th>' in _table_html(df.set_index("gene"))  # a label index is shown


def test_training_never_removes_its_own_input_named_like_a_report_output(tmp_path, rest_small, capsys):
    """`biodl train RUN/motifs.tsv --out RUN` deleted its own training file after training (as an
    output of 'the model this training replaced', in a folder that held no model): an input is
    kept, on a retraining too. A fresh folder holding a file the report writes (the user's own
    filters.png) is refused before training: the report replaced it without a word."""
    import shutil

    from biodl.pipeline import train
    from biodl.train import TrainConfig

    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(rest_small["train"], run / "motifs.tsv")
    (run / "filters.png").write_bytes(b"the user's own picture")

    def fit(epochs):
        cfg = TrainConfig(max_epochs=epochs, patience=0, device="cpu", progress=False)
        train(
            "deepbind",
            run,
            options={"data": run / "motifs.tsv"},
            model_options={"num_motifs": 4, "motif_len": 8, "hidden": 0},
            config=cfg,
            quiet=False,
        )

    with pytest.raises(
        BiodlInputError, match=r"is not a biodl run directory \(no run.json\) but holds filters.png"
    ):
        fit(1)
    assert (run / "filters.png").read_bytes() == b"the user's own picture" and not (run / "run.json").exists()
    (run / "filters.png").unlink()
    fit(1)  # the training file named like a report output is an input: no clash
    assert (run / "motifs.tsv").read_bytes() == Path(rest_small["train"]).read_bytes()
    assert "removed" not in capsys.readouterr().err
    (run / "filters.png").write_bytes(b"a report's picture")
    fit(2)  # a longer training of the same run (new weights)
    err = " ".join(capsys.readouterr().err.split())
    # as an earlier model's outputs
    assert "removed filters.png, summary.json of the model this training replaced" in err
    assert (run / "motifs.tsv").read_bytes() == Path(rest_small["train"]).read_bytes()


def test_per_label_metrics_are_a_label_by_metric_table() -> None:
    """A 40-label run's test table was one list of 287 metric/value rows."""
    from biodl.report.run import _metric_cells, _per_label

    cells = _metric_cells(
        {"auroc": 0.8, "n": 10, "auroc/A": 0.7, "auroc/B": None, "mcc/A": 0.5, "mcc/B": 0.6}
    )
    means, table = _per_label(cells, ["A", "B"])
    assert means == {"auroc": 0.8, "n": 10}
    assert table.index.name == "label" and list(table.columns) == ["auroc", "mcc"]
    assert (
        table.loc["A", "auroc"] == 0.7
        and table.loc["B", "auroc"] == "undefined"
        and table.loc["B", "mcc"] == 0.6
    )
    assert _per_label(cells, ["A"]) == (cells, None)  # one label: as it was


def test_figures_and_tables_are_described_to_a_screen_reader_and_print_whole(tmp_path):
    """A figure without a caption had its file stem as alt text ("roc"); tables had no caption or
    scope; printing (or saving as PDF) cut every table at its on-screen scroll box."""
    from biodl.report.html import Section, render_html_report
    from biodl.report.plots import plot_roc

    roc = plot_roc(np.array([0, 1, 0, 1]), np.array([0.1, 0.9, 0.4, 0.6]), tmp_path / "roc.png")
    page = render_html_report(
        "t", [Section("Test metrics", table={"auroc": 0.75}, images=[roc, tmp_path / "roc.png"])]
    )
    assert 'alt="ROC curves of the held-out test set"' in page and 'alt="roc"' not in page
    assert '<caption class="sr">Test metrics</caption>' in page and '<th scope="col">metric</th>' in page
    assert "@media print" in page and "max-height: none" in page


def _tiny_run(run: Path, options: dict) -> Path:
    """A 1-epoch DeepBind (4 motifs) trained into ``run``."""
    from biodl import pipeline
    from biodl.train import TrainConfig

    cfg = TrainConfig(max_epochs=1, patience=0, device="cpu", progress=False)
    model = {"num_motifs": 4, "motif_len": 8, "hidden": 0}
    pipeline.train("deepbind", run, options=options, model_options=model, config=cfg, quiet=True)
    return run


def test_a_report_path_that_is_a_folder_is_refused_before_any_work(tmp_path, rest_small) -> None:
    from biodl import pipeline

    run = _tiny_run(tmp_path / "run", {"data": rest_small["train"]})
    for f in ("report.html", "learning_curves.png"):
        (run / f).unlink(missing_ok=True)
    (run / "report.html").mkdir()
    with pytest.raises(BiodlInputError, match=r"report.html: is not a file \(a folder\?\)"):
        pipeline.report(run, quiet=True)
    assert not (run / "learning_curves.png").exists()  # nothing written first


def test_long_and_foreign_label_names_keep_the_figures_readable(tmp_path, capfd) -> None:
    """ENCODE-style names (50-60 characters) pushed the legend over the axes or out of the figure;
    a CJK name was a matplotlib warning per glyph per figure. Legend names are shortened in the
    middle (both ends kept), figures are cut to what they draw, and the missing glyphs are one note."""
    from biodl.report.plots import _short, plot_roc

    long = "wgEncodeAwgTfbsHaibGm12878Pol2Pcr2xUniPk|GM12878|Pol2"
    assert len(_short(long)) == 36 and _short(long).startswith("wgEncode") and _short(long).endswith("|Pol2")
    assert _short("CTCF") == "CTCF"
    rng = np.random.default_rng(0)
    y = (rng.random((60, 2)) < 0.5).astype(float)
    for k in range(2):
        plot_roc(y, y + rng.normal(size=y.shape), tmp_path / f"r{k}.png", label_names=["结合位点", long])
    err = capfd.readouterr().err
    assert "Glyph" not in err and err.count("the plot font lacks") <= 1


def test_a_report_that_fails_midway_leaves_the_earlier_reports_files(
    tmp_path, rest_small, monkeypatch
) -> None:
    """The page and the files it names change together: a report stopped after writing its
    figures kept the old report.html beside the new figures and tables."""
    from biodl import pipeline
    from biodl.report import html as report_html

    run = _tiny_run(tmp_path / "run", {"data": rest_small["train"], "test_file": rest_small["test"]})
    pipeline.report(run, quiet=True)
    before = {f: (run / f).read_bytes() for f in ("report.html", "learning_curves.png", "motifs.tsv")}
    (run / "learning_curves.png").write_bytes(b"an earlier report's picture")
    before["learning_curves.png"] = b"an earlier report's picture"

    def stopped(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(report_html, "render_html_report", stopped)
    with pytest.raises(KeyboardInterrupt):
        pipeline.report(run, quiet=True)
    assert {f: (run / f).read_bytes() for f in before} == before
    assert not list(run.glob(".report-backup*"))


def test_shortened_legend_names_stay_apart() -> None:
    """ENCODE names sharing a long prefix became alike when cut in the middle."""
    from biodl.report.plots import _short_names

    a = "ENCFF001_H3K27ac_GM12878_fold_change_over_control"
    b = "ENCFF001_H3K27ac_K562_fold_change_over_control"
    short = _short_names([a, b])
    assert len(set(short)) == 2 and "GM12878" in short[0] and "K562" in short[1]
    assert len(set(_short_names(["x" * 50, "x" * 50]))) == 2
    assert _short_names(["CTCF", "REST"]) == ["CTCF", "REST"]


def test_learning_curves_mark_the_epoch_kept_and_say_undefined_metrics(tmp_path, monkeypatch):
    """The dotted line marked the lowest val_loss whatever the run kept (chosen by val_auroc), and
    metrics NaN at every epoch were 'no metric recorded'."""
    import biodl.report.plots as P

    figs = []
    monkeypatch.setattr(P, "_save_figure", lambda fig, path, dpi: figs.append(fig) or Path(path))
    hist = pd.DataFrame(
        {
            "epoch": [0, 1, 2],
            "train_loss": [0.7, 0.6, 0.5],
            "val_loss": [0.69, 0.65, 0.66],
            "val_auroc": [np.nan] * 3,
        }
    )
    P.plot_learning_curves(hist, tmp_path / "lc.png", kept_epoch=2)
    ax_loss, ax_metric = figs[0].axes
    assert "kept (epoch 3)" in [t.get_text() for t in ax_loss.get_legend().get_texts()]
    assert "val_auroc: undefined (NaN) at every epoch" in [t.get_text() for t in ax_metric.texts]
