"""The Python API: ``biodl.load(RUN)`` scores in-memory inputs exactly as ``biodl predict`` /
``biodl evaluate`` score the same inputs from a file, with errors that name the item; and the
walk-through in docs/python.md runs as written."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import biodl
from biodl.cli import app
from biodl.errors import BiodlInputError
from biodl.kinds import get_kind
from biodl.pipeline import predict

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data" / "molecules"
EXPR = Path(__file__).parent / "data" / "expression"
FEAT = Path(__file__).parent / "data" / "features"
BLADDER = EXPR / "bladder_dgex_slice.csv.gz"  # 160 probes (100 landmarks, 60 targets) x 57 arrays
DELANEY = DATA / "delaney_150.csv"
INVALID = DATA / "delaney_invalid.csv"
TARGET = "measured log solubility in mols per litre"
runner = CliRunner()


@pytest.fixture(scope="module")
def seq_run(tmp_path_factory, rest_small) -> Path:
    """A DeepBind run trained for one epoch on 600 REST peaks (+ shuffled negatives)."""
    run = tmp_path_factory.mktemp("api") / "rest"
    args = ["train", str(rest_small["train"]), "--test", str(rest_small["test"]), "--system", "deepbind"]
    r = runner.invoke(app, [*args, "--epochs", "1", "--no-progress", "--out", str(run)])
    assert r.exit_code == 0, r.output
    return run


@pytest.fixture(scope="module")
def mol_run(tmp_path_factory) -> Path:
    """A small neural-fp run on the bundled Delaney slice (2 epochs)."""
    run = tmp_path_factory.mktemp("api") / "sol"
    tiny = ["--epochs", "2", "--no-progress", "-m", "fp_length=16", "-m", "conv_width=8", "-m", "radius=2"]
    args = ["train", "--system", "neural-fp", "--data", str(DELANEY), "--target", TARGET, "--out", str(run)]
    r = runner.invoke(app, args + tiny)
    assert r.exit_code == 0, r.output
    return run


def _test_table(rest_small) -> pd.DataFrame:
    return pd.read_csv(rest_small["test"], sep="\t")


def test_in_memory_sequences_score_as_the_file_does(seq_run, rest_small):
    m = biodl.load(seq_run)
    assert m.system == "deepbind" and m.task == "binary" and m.label_names == ["Bound"]
    assert "deepbind" in repr(m) and "list of sequences" in m.memory_inputs
    t = _test_table(rest_small)
    from_file = predict(seq_run, rest_small["test"], quiet=True)
    ids = t["EventID"].astype(str).tolist()
    as_list = m.predict(t["seq"].tolist())
    as_dict = m.predict(dict(zip(ids, t["seq"], strict=True)))
    as_frame = m.predict(t)  # its seq and EventID columns
    as_series = m.predict(pd.Series(t["seq"].to_numpy(), index=ids))
    col = "prob_Bound"
    for df in (as_list, as_dict, as_frame, as_series):
        np.testing.assert_allclose(df[col].to_numpy(), from_file[col].to_numpy(), rtol=1e-6)
    assert as_list["id"].tolist()[:2] == ["seq1", "seq2"]  # the item numbers
    assert as_dict["id"].tolist() == ids == as_frame["id"].tolist() == as_series["id"].tolist()
    assert from_file["id"].astype(str).tolist() == ids

    # evaluate: labels given, or the DataFrame's label column, equal the file's metrics
    ref = m.evaluate(rest_small["test"])["metrics"]
    got = m.evaluate(t["seq"].tolist(), labels=t["Bound"].to_numpy())["metrics"]
    assert got["auroc"] == pytest.approx(ref["auroc"]) and got["mcc"] == pytest.approx(ref["mcc"])
    assert m.evaluate(t)["metrics"]["auroc"] == pytest.approx(ref["auroc"])
    renamed = t.rename(columns={"Bound": "y_true"})
    assert m.evaluate(renamed, labels="y_true")["metrics"]["auroc"] == pytest.approx(ref["auroc"])
    # out_dir: the files `biodl evaluate --out` writes, never over the run's own held-out results
    with pytest.raises(BiodlInputError, match="is the test/ folder of the run"):
        m.evaluate(t, out_dir=seq_run / "test")
    r = m.evaluate(t, out_dir=seq_run / "eval_py")
    assert json.loads((seq_run / "eval_py" / "metrics.json").read_text())["metrics"] == pytest.approx(
        r["metrics"]
    )


def test_in_memory_errors_name_the_item(seq_run):
    m = biodl.load(seq_run)
    cases = [
        ("ACGTACGT", "a str is read as a file path (in-memory inputs go in a list"),
        (["ACGT", "ACXT"], "record 'seq2': invalid character 'X' at position 3"),
        ({"a": "ACGT", "b": None}, "record 'b': item 2 is a missing value"),
        ([], "no sequences (the input is empty)"),
        (
            pd.DataFrame({"dna": ["ACGT"]}),
            "no sequence column (looked for seq, sequence, sequences; columns "
            "are: dna); name it with seq_col=NAME",
        ),
        (np.zeros((2, 3)), "a 2-D array"),
        (42, "cannot read a int as sequences"),
    ]
    for data, msg in cases:
        with pytest.raises(BiodlInputError) as e:
            m.predict(data)
        assert msg in str(e.value), (data, str(e.value))
    with pytest.raises(BiodlInputError, match="2 labels for 3 items"):
        m.evaluate(["ACGT"] * 3, labels=[1, 0])
    with pytest.raises(BiodlInputError, match="evaluation needs labels"):
        m.evaluate(["ACGT"] * 3)
    with pytest.raises(BiodlInputError, match=r"label 'yes' \(item 1\) is not a number"):
        m.evaluate(["ACGT"] * 2, labels=["yes", 1])
    with pytest.raises(BiodlInputError, match=r"1 infinite label value\(s\) in the evaluation \(input list"):
        m.evaluate(["ACGT"] * 2, labels=[1, float("inf")])  # the shared label check, as for a file
    with pytest.raises(BiodlInputError, match="a file carries its own labels"):
        m.evaluate(str(seq_run / "run.json"), labels=[1])
    with pytest.raises(BiodlInputError, match="not found"):
        biodl.load(seq_run / "nowhere")


def test_python_calls_guard_their_outputs_as_the_cli_does(seq_run, rest_small, tmp_path):
    """``biodl.api.predict`` / ``evaluate`` called from Python wrote over their own input and
    over the run's history and held-out results (the guards were only set up by the CLI)."""
    from biodl import api

    data = tmp_path / "in.tsv"
    data.write_bytes(rest_small["test"].read_bytes())
    before = {p: p.read_bytes() for p in (data, seq_run / "history.csv", seq_run / "test" / "metrics.json")}
    with pytest.raises(BiodlInputError, match="is an input of this command"):
        api.predict(seq_run, data, out=data, quiet=True)
    with pytest.raises(BiodlInputError, match="history.csv"):
        api.predict(seq_run, data, out=seq_run / "history.csv", quiet=True)
    with pytest.raises(BiodlInputError, match="test/ folder of the run"):
        api.evaluate(seq_run, data, out_dir=seq_run / "test", quiet=True)
    with pytest.raises(BiodlInputError, match="the run directory .* itself"):
        api.evaluate(seq_run, data, out_dir=seq_run, quiet=True)
    assert {p: p.read_bytes() for p in before} == before
    assert (seq_run / "test" / "roc.png").exists() and (seq_run / "test" / "pr.png").exists()
    # and what works still works: an output elsewhere
    assert len(api.predict(seq_run, data, out=tmp_path / "p.tsv", quiet=True)) == 200
    # arguments of the wrong type: one clear error, not a traceback from pathlib or the loader
    cases = [
        (lambda: biodl.load(None), r"must be a path \(a str or pathlib.Path\), got None"),
        (lambda: biodl.load(3), "got a int"),
        (lambda: api.report(seq_run, ["ACGT"]), "data must be a path"),
        (lambda: api.report(None), "the run directory must be a path"),
        (lambda: api.predict(seq_run, data, rows=-5), "rows .* must be a positive integer"),
        (lambda: api.predict(seq_run, data, rows=0), "rows .* must be a positive integer"),
        (
            lambda: api.train("deepbind", tmp_path / "r", options={"data": pd.DataFrame()}),
            "must be a file path",
        ),
        (
            lambda: api.train("deepbind", tmp_path / "r", config={"epochs": 1}),
            "unknown TrainConfig field.*epochs",
        ),
        (
            lambda: api.train("deepbind", tmp_path / "r", config=[1]),
            "config must be a biodl.train.TrainConfig",
        ),
    ]
    for call, msg in cases:
        with pytest.raises(BiodlInputError, match=msg):
            call()
    assert not (tmp_path / "r").exists()


def test_labels_series_are_matched_by_id_not_position(seq_run):
    """A Series of labels indexed by the items' ids was taken by position: wrong metrics."""
    m = biodl.load(seq_run)
    pos, neg = "TTCAGCACCATGGACAGCGCC" * 5, "ACGTTGCA" * 13
    seqs = pd.Series([pos, neg, neg + "A", neg + "C"], index=["p", "n1", "n2", "n3"])
    in_order = m.evaluate(seqs, labels=[1, 0, 0, 0])["metrics"]["auroc"]
    shuffled = pd.Series([0, 0, 0, 1], index=["n1", "n2", "n3", "p"])
    assert m.evaluate(seqs, labels=shuffled)["metrics"]["auroc"] == in_order
    df = pd.DataFrame({"id": seqs.index, "seq": seqs.values, "y": [1, 0, 0, 0]}).iloc[[3, 2, 1, 0]]
    assert m.evaluate(df, labels=df["y"])["metrics"]["auroc"] == in_order  # its own column: as it is
    assert m.evaluate(list(seqs), labels=shuffled.set_axis([7, 8, 9, 10]))["metrics"]["auroc"] == 1 - in_order
    with pytest.raises(BiodlInputError, match="labels' index has no label for item 'p'"):
        m.evaluate(seqs, labels=pd.Series([0, 0, 0, 1], index=["n1", "n2", "n3", "x"]))
    with pytest.raises(BiodlInputError, match="labels' index repeats 'n1'"):
        m.evaluate(seqs, labels=pd.Series([0, 0, 0, 1], index=["n1", "n1", "n3", "p"]))
    with pytest.raises(BiodlInputError, match="has 2 columns named 'seq'"):
        m.predict(pd.DataFrame([[pos, neg]], columns=["seq", "seq"]))


def test_multiclass_dataframe_evaluation_finds_the_class_column(tmp_path):
    """A multi-class model's DataFrame was searched for columns named after its classes."""
    rng = np.random.default_rng(0)
    classes = np.array(["EI", "IE", "N"])
    seqs = ["".join(rng.choice(list("ACGT"), 60)) for _ in range(150)]
    table = pd.DataFrame(
        {"id": [f"s{i}" for i in range(150)], "sequence": seqs, "class": classes[np.arange(150) % 3]}
    )
    table.to_csv(tmp_path / "mc.csv", index=False)
    run = tmp_path / "mc"
    args = [
        "train",
        str(tmp_path / "mc.csv"),
        "--system",
        "splicing-cnn",
        "--epochs",
        "1",
    ]
    r = runner.invoke(app, [*args, "--no-progress", "--out", str(run)])
    assert r.exit_code == 0, r.output
    m = biodl.load(run)
    assert m.task == "multiclass"
    by_file = m.evaluate(tmp_path / "mc.csv")["metrics"]
    assert m.evaluate(table)["metrics"] == pytest.approx(by_file)
    assert m.evaluate(table.rename(columns={"class": "Label"}))["metrics"] == pytest.approx(by_file)
    assert m.evaluate(table[["id", "sequence"]], labels=list(table["class"]))["metrics"] == pytest.approx(
        by_file
    )
    with pytest.raises(BiodlInputError, match="no label column .looked for label"):
        m.evaluate(table[["id", "sequence"]])
    codes = np.arange(150) % 3  # class codes, as ints or as floats (a NumPy array, a CSV column)
    for given in (codes, codes.astype(float)):
        assert m.evaluate(table[["id", "sequence"]], labels=given)["metrics"] == pytest.approx(by_file)
    with pytest.raises(BiodlInputError, match="label True of item 1 is not one of the model's classes"):
        m.evaluate(table[["id", "sequence"]], labels=[True] * 150)


def test_empty_in_memory_inputs_are_refused_by_every_kind(dgex_run):
    import anndata

    m = biodl.load(dgex_run)
    genes = pd.read_csv(BLADDER, index_col=0).index
    empty = anndata.AnnData(np.zeros((0, len(genes)), np.float32), var=pd.DataFrame(index=genes))
    for call in (m.predict, m.evaluate):
        with pytest.raises(BiodlInputError, match="empty"):
            call(empty)


def test_every_kind_takes_memory_inputs_or_says_it_reads_files():
    """Over the registry: a kind that declares in-memory inputs implements them; any other
    refuses them in one line naming what it reads."""
    from biodl.kinds import KINDS
    from biodl.kinds.base import DataKind

    takes = set()
    for name in KINDS:
        k = get_kind(name)
        own = type(k).from_memory is not DataKind.from_memory
        assert own == bool(k.memory_inputs), name
        if own:
            takes.add(name)
            continue
        with pytest.raises(BiodlInputError) as e:
            k.from_memory(None, ["x"], {}, labelled=False)
        assert f"{k.title} models read their inputs from files: give a path to {k.reads}" in str(e.value)
    assert takes == {"sequences", "molecules", "expression", "features"}


def test_in_memory_molecules(mol_run):
    run = mol_run
    m = biodl.load(run)
    src = pd.read_csv(INVALID)
    from_file = predict(run, INVALID, options={"skip_invalid": True}, quiet=True)
    got = m.predict(dict(zip(src["Compound ID"], src["smiles"], strict=True)), skip_invalid=True)
    col = "pred_" + TARGET
    assert got["id"].tolist() == from_file["id"].tolist() == src["Compound ID"].tolist()
    np.testing.assert_allclose(got[col].to_numpy(), from_file[col].to_numpy(), rtol=1e-6)  # NaN where invalid
    assert got[col].isna().tolist() == [i in (2, 7) for i in range(12)]
    assert "valence" in got.loc[7, "problem"].lower()
    with pytest.raises(BiodlInputError) as e:  # without skip_invalid: the first bad item, by its id
        m.predict(src["smiles"].tolist())
    assert "record '3': invalid SMILES" in str(e.value) and "skip_invalid=True" in str(e.value)
    # evaluate: the DataFrame's target column (the model's name), as the file
    d = pd.read_csv(DELANEY)
    ref = m.evaluate(DELANEY)["metrics"]
    assert m.evaluate(d)["metrics"]["rmse"] == pytest.approx(ref["rmse"], rel=1e-5)
    assert m.evaluate(d["smiles"].tolist(), labels=d[TARGET])["metrics"]["rmse"] == pytest.approx(
        ref["rmse"], rel=1e-5
    )
    # invalid molecules skipped in an evaluation drop their labels with them
    s = pd.read_csv(INVALID)
    r = m.evaluate(s["smiles"].tolist(), labels=s[TARGET], skip_invalid=True)
    assert r["n"] == 10 and r["n_invalid"] == 2  # as the file's evaluation says (it said 0)
    assert m.evaluate(INVALID, skip_invalid=True)["n_invalid"] == 2
    # a missing SMILES in a DataFrame is an invalid molecule like a file's empty cell, not an error
    gap = s.copy()
    gap.loc[1, "smiles"] = np.nan
    got = m.predict(gap, skip_invalid=True)
    assert len(got) == 12 and got.loc[1, "problem"] == "empty SMILES" and np.isnan(got.loc[1, col])
    with pytest.raises(BiodlInputError, match=r"item 2 is a missing value"):
        m.predict(gap)  # without skip_invalid: refused, naming the item


@pytest.fixture(scope="module")
def dgex_run(tmp_path_factory) -> Path:
    """D-GEX (3 epochs, 64 hidden units) on the bundled bladder slice."""
    run = tmp_path_factory.mktemp("api") / "dgex"
    r = runner.invoke(
        app,
        [
            "train",
            "--system",
            "dgex",
            "--data",
            str(BLADDER),
            "--out",
            str(run),
            "--set",
            f"landmarks={EXPR / 'landmarks100.txt'}",
            "--set",
            "orientation=genes-x-samples",
            "-m",
            "hidden=64",
            "--epochs",
            "3",
            "--no-progress",
        ],
    )
    assert r.exit_code == 0, r.output
    return run


def test_in_memory_expression(dgex_run, tmp_path):
    """A DataFrame either way round, or an AnnData, scores as the file; ADAGE's published model
    too (its node activities)."""
    import anndata

    m = biodl.load(dgex_run)
    opts = {"orientation": "genes-x-samples"}
    ref = predict(dgex_run, BLADDER, options=opts, quiet=True)
    genes_x_samples = pd.read_csv(BLADDER, index_col=0)
    for data in (genes_x_samples, genes_x_samples.T, anndata.AnnData(genes_x_samples.T)):
        got = m.predict(data)
        assert got.iloc[:, 0].tolist() == ref.iloc[:, 0].tolist()  # the samples, in order
        np.testing.assert_allclose(
            got.iloc[:, 1:].to_numpy(float), ref.iloc[:, 1:].to_numpy(float), rtol=1e-6
        )
    assert m.evaluate(genes_x_samples)["metrics"] == pytest.approx(m.evaluate(BLADDER, **opts)["metrics"])
    bad = genes_x_samples.T.astype(object)
    bad.iloc[3, 7] = "n/a?"
    with pytest.raises(BiodlInputError) as e:
        m.predict(bad)
    assert str(e.value).startswith("input DataFrame (57 rows x 160 columns): non-numeric value 'n/a?' at row")
    gap = genes_x_samples.T.copy()
    gap.iloc[2, 5] = np.nan
    with pytest.raises(BiodlInputError, match="missing=gene-mean fills a gap"):
        m.predict(gap)
    assert len(m.predict(gap, missing="gene-mean")) == 57
    with pytest.raises(BiodlInputError, match="95 of 100 landmark genes are not in the matrix"):
        m.predict(genes_x_samples.T.iloc[:, :5])
    with pytest.raises(BiodlInputError, match="take no labels="):
        m.evaluate(genes_x_samples, labels=[1] * 57)

    adage = tmp_path / "adage50"
    assert runner.invoke(app, ["adage", "load-published", "--out", str(adage)]).exit_code == 0
    pcl = EXPR / "Anr-gene.r4.pcl.gz"
    ref = predict(adage, pcl, quiet=True)
    got = biodl.load(adage).predict(pd.read_csv(pcl, sep="\t", index_col=0))  # genes x samples
    assert got.columns.tolist() == ref.columns.tolist() and got.shape == (6, 51)
    np.testing.assert_allclose(got.iloc[:, 1:].to_numpy(float), ref.iloc[:, 1:].to_numpy(float), rtol=1e-6)


def test_in_memory_feature_tables(tmp_path, capsys):
    """A DataFrame of features (any column order) scores as the file; classes as labels= or a
    column, equal to the file's label file."""
    table = FEAT / "HUVEC_200bp_slice_Data.txt.gz"
    classes, names = FEAT / "HUVEC_200bp_slice_Classes.txt", FEAT / "HUVEC_Features.txt"
    run = tmp_path / "dfs"
    r = runner.invoke(
        app,
        ["train", "--system", "dfs", "--data", str(table), "--labels", str(classes), "--set",
         f"feature_names={names}", "--out", str(run), "--epochs", "4", "--no-progress", "--set",
         "classes=A-E,A-P", "--set", "positive=A-E", "--set", "lambdas=0.5,2", "--set", "randomized=0"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    cols = [line.strip() for line in names.read_text().splitlines() if line.strip()]
    x = pd.read_csv(table, sep=r"\s+", header=None, names=cols)
    y = [line.strip() for line in classes.read_text().splitlines() if line.strip()]
    m = biodl.load(run)
    ref = predict(run, table, options={"feature_names": str(names)}, quiet=True)
    got = m.predict(x[x.columns[::-1]])
    assert got["id"].tolist() == ref["id"].tolist()
    np.testing.assert_allclose(got["prob_A-E"].to_numpy(), ref["prob_A-E"].to_numpy(), rtol=1e-6)
    want = m.evaluate(table, labels=classes, classes=["A-E", "A-P"], feature_names=str(names))["metrics"]
    keep = [i for i, c in enumerate(y) if c in ("A-E", "A-P")]
    assert m.evaluate(x.iloc[keep], labels=[y[i] for i in keep])["metrics"] == pytest.approx(want)
    assert m.evaluate(x.assign(cls=y), labels="cls", classes=["A-E", "A-P"])["metrics"] == pytest.approx(want)
    with pytest.raises(BiodlInputError, match="2 of the model's 25 features are not in the table"):
        m.predict(x.drop(columns=cols[:2]))
    with pytest.raises(BiodlInputError, match=r"record 'row1': feature 'C-FOS\(FOS\)': 'x' is not a finite"):
        m.predict(x.astype(object).assign(**{cols[0]: "x"}))
    with pytest.raises(
        BiodlInputError, match="class 'I-E' \\(row row101\\) is not among the model's classes"
    ):
        m.evaluate(x, labels=y)
    with pytest.raises(BiodlInputError, match=r"1e\+300 is not a finite number in float32"):
        m.predict(x.assign(**{cols[0]: 1e300}))
    # negative values of a feature that was never negative in training: scored as 0, and said
    neg = x.head(3).assign(**{cols[0]: -5.0})
    zero = m.predict(x.head(3).assign(**{cols[0]: 0.0}))
    capsys.readouterr()
    np.testing.assert_allclose(m.predict(neg)["prob_A-E"], zero["prob_A-E"])
    assert f"3 negative value(s) in feature(s) {cols[0]}" in capsys.readouterr().err
    # labels as a Series indexed by row name: matched by name
    sub = x.iloc[keep].set_axis([f"r{i}" for i in keep])
    by_name = pd.Series([y[i] for i in keep], index=sub.index)[::-1]
    assert m.evaluate(sub, labels=by_name)["metrics"] == pytest.approx(want)


def test_cli_evaluate_finds_the_models_label_columns(tmp_path, rest_small):
    """A multi-label model trained with --label-col 'f*' is evaluated on a table with those
    columns without naming them again; --seq-col (and --label-col) work at evaluate / predict,
    as the errors there say."""
    t = _test_table(rest_small).head(120)
    rng = np.random.default_rng(0)
    tab = pd.DataFrame(
        {"id": t["EventID"], "dna": t["seq"], "f1": t["Bound"], "f2": rng.integers(0, 2, len(t))}
    )
    tab.to_csv(tmp_path / "ml.tsv", sep="\t", index=False)
    tab.rename(columns={"dna": "seq"}).to_csv(tmp_path / "ml_seq.tsv", sep="\t", index=False)
    run = tmp_path / "ml"
    r = runner.invoke(
        app,
        [
            "train",
            str(tmp_path / "ml_seq.tsv"),
            "--system",
            "deepbind",
            "--label-col",
            "f*",
            "--epochs",
            "1",
            "--no-progress",
            "--out",
            str(run),
        ],
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["evaluate", str(run), str(tmp_path / "ml_seq.tsv")])
    assert r.exit_code == 0, r.output
    assert {"auroc/f1", "auroc/f2"} <= set(json.loads(r.stdout))
    r = runner.invoke(app, ["evaluate", str(run), str(tmp_path / "ml.tsv")])
    assert r.exit_code == 2 and "name it with --seq-col" in r.output
    r = runner.invoke(app, ["evaluate", str(run), str(tmp_path / "ml.tsv"), "--seq-col", "dna"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(
        app, ["evaluate", str(run), str(tmp_path / "ml.tsv"), "--seq-col", "dna", "--label-col", "f1"]
    )
    assert r.exit_code == 2 and "the data has 1 label column(s), the model 2 output(s)" in r.output
    r = runner.invoke(app, ["predict", str(run), str(tmp_path / "ml.tsv"), "--seq-col", "dna"])
    assert r.exit_code == 0, r.output
    head = r.stdout.splitlines()[0].split("\t")
    assert head[0] == "id" and {"prob_f1", "prob_f2"} <= set(head)


def test_docs_python_walkthrough_runs(seq_run, mol_run, tmp_path, monkeypatch):
    """Every Python block of docs/python.md, in order, on small trained runs (the page uses the
    demo's run directory, biodl-demo, and docs/molecules.md's runs/sol)."""
    text = (ROOT / "docs" / "python.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 3
    monkeypatch.chdir(tmp_path)
    (tmp_path / "biodl-demo").symlink_to(seq_run)
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "sol").symlink_to(mol_run)
    (tmp_path / "tests").symlink_to(ROOT / "tests")  # the page runs from a checkout
    r = runner.invoke(app, ["adage", "load-published", "--out", str(tmp_path / "adage50")])
    assert r.exit_code == 0, r.output
    scope: dict = {}
    for code in blocks:
        exec(compile(code, "docs/python.md", "exec"), scope)


def test_training_leaves_the_callers_random_numbers_warnings_and_loggers_alone(tmp_path, rest_small):
    """api.train reseeded Python's, numpy's and torch's generators (a bootstrap loop around it
    drew the same numbers every time) and left 5 warnings filters and Lightning's logger levels."""
    import logging
    import random
    import warnings

    import torch

    from biodl import api

    random.seed(11)
    np.random.seed(11)
    torch.manual_seed(11)
    filters = list(warnings.filters)
    level = logging.getLogger("lightning.pytorch").level
    expected = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    random.seed(11)
    np.random.seed(11)
    torch.manual_seed(11)
    api.train(
        "deepbind",
        tmp_path / "run",
        options={"data": rest_small["train"]},
        model_options={"num_motifs": 4, "motif_len": 8, "hidden": 0},
        config={"max_epochs": 1, "device": "cpu", "progress": False},
        quiet=True,
    )
    m = biodl.load(tmp_path / "run")  # loading draws no number either
    m.predict(["ACGT" * 25])
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == expected
    assert warnings.filters == filters and logging.getLogger("lightning.pytorch").level == level


def test_pandas_ids_labels_by_name_any_case_and_rdkit_molecules(seq_run, rest_small, mol_run):
    """A row's id no longer depends on the slice it is in; label columns given as a DataFrame are
    taken by name; a DataFrame's label column is found in any case, as a file's; RDKit molecules
    are read; an options argument that is no mapping is one clear error."""
    from rdkit import Chem

    m = biodl.load(seq_run)
    t = _test_table(rest_small)[["seq", "Bound"]]
    whole = m.predict(t[["seq"]])
    assert (
        m.predict(t[["seq"]].iloc[5:8])["id"].tolist()
        == whole["id"][5:8].tolist()
        == ["seq6", "seq7", "seq8"]
    )
    assert m.predict(t.loc[[5, 6, 7], ["seq"]])["id"].tolist() == ["5", "6", "7"]  # an index as written
    # a boolean-filtered frame's labels (their index is the frame's) still go with their rows
    sub = t[t.index % 3 == 0]
    a = m.evaluate(sub["seq"], labels=sub["Bound"])["metrics"]["auroc"]
    assert a == m.evaluate(sub["seq"].tolist(), labels=sub["Bound"].tolist())["metrics"]["auroc"]
    low = t.rename(columns={"Bound": "bound"})
    assert m.evaluate(low)["metrics"]["auroc"] == m.evaluate(t)["metrics"]["auroc"]
    mol = biodl.load(mol_run)
    smiles = ["CCO", "c1ccccc1O"]
    np.testing.assert_allclose(
        mol.predict([Chem.MolFromSmiles(s) for s in smiles]).iloc[:, -1], mol.predict(smiles).iloc[:, -1]
    )
    with pytest.raises(BiodlInputError, match="options must be a dict"):
        predict(seq_run, ["ACGT" * 25], options=["x"])
    assert "Model" in dir(biodl) and biodl.Model is type(m) and m.device == "cpu"
    assert repr(m.kind) == "<biodl data kind 'sequences': sequence files>"


def test_multilabel_labels_frame_is_taken_by_column_name(tmp_path, rest_small):
    t = _test_table(rest_small)
    t["A"], t["B"] = t["Bound"], 1 - t["Bound"]
    train = tmp_path / "ml.tsv"
    t[["seq", "A", "B"]].to_csv(train, sep="\t", index=False)
    r = runner.invoke(
        app,
        ["train", str(train), "--label-col", "A,B", "--system", "deepbind", "--epochs", "1", "--no-progress"]
        + ["--out", str(tmp_path / "ml")],
    )
    assert r.exit_code == 0, r.output
    m = biodl.load(tmp_path / "ml")
    seqs = t["seq"].tolist()
    right = m.evaluate(seqs, labels=t[["A", "B"]])["metrics"]
    swapped = m.evaluate(seqs, labels=t[["B", "A"]])["metrics"]
    assert right == swapped  # taken by name: the same metrics whatever the column order
    assert m.evaluate(str(train), label_col=["A", "B"])["metrics"]["auroc"] == right["auroc"]


def test_dgex_names_its_outputs(dgex_run):
    m = biodl.load(dgex_run)
    assert len(m.label_names) == 60 and "60 output(s)" in repr(m)
