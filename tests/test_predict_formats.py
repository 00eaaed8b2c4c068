"""`biodl predict` output: the prediction table built in one step, a fast text writer that
writes what pandas' ``to_csv`` writes, and the array formats (npz, HDF5, Parquet) chosen by
the ``--out`` suffix or ``--format``, each holding the numbers of the TSV."""

from __future__ import annotations

import importlib.util
import io
import warnings

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from biodl.cli import app
from biodl.errors import BiodlInputError
from biodl.io.predictions import (
    FLOAT_FORMAT,
    format_table,
    output_format,
    read_predictions,
    split_frame,
    write_predictions,
)

runner = CliRunner()
LABELS = ["CTCF", "DNase,K562", 'H3K4me3 "x"']  # a comma and a quote in names: quoted in CSV
HAS_PYARROW = importlib.util.find_spec("pyarrow") is not None


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A multi-label DeepSEA (toy widths, random weights, stored thresholds) and a FASTA."""
    import torch

    from biodl.registry import get_recipe
    from biodl.train.checkpoint import RunMeta, save_model

    d = tmp_path_factory.mktemp("predfmt")
    torch.manual_seed(0)
    kwargs = dict(n_outputs=3, seq_len=100, n_filters=[8, 8, 8], kernel_size=5, pool_size=2, hidden=16)
    model = get_recipe("deepsea").build(**kwargs)
    meta = RunMeta(
        kind="sequences",
        recipe="deepsea",
        task="multilabel",
        model_kwargs=kwargs,
        label_names=LABELS,
        data={"seq_len": 100},
        thresholds={"values": [0.3, 0.5, 0.7]},
        status="finished",
    )
    save_model(d / "model.pt", model, meta)
    rng = np.random.default_rng(1)
    fa = d / "q.fa"
    fa.write_text("".join(f">s{i} x\n{''.join(rng.choice(list('ACGT'), 100))}\n" for i in range(37)))
    return d / "model.pt", fa


def _predict(run, out, *extra):
    model, fa = run
    r = runner.invoke(app, ["predict", str(model), str(fa), "--out", str(out), *extra])
    assert r.exit_code == 0, r.output
    return r


def test_text_is_what_pandas_writes_and_frame_is_one_step(run, tmp_path):
    from biodl.kinds.sequences.kind import KIND
    from biodl.pipeline import predict

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no PerformanceWarning: the frame is not built column by column
        df = predict(run[0], run[1], quiet=True)
    cols = ["id"] + [f"{p}_{n}" for n in LABELS for p in ("logit", "prob", "called")]
    assert list(df.columns) == cols
    assert (df[f"called_{LABELS[2]}"] == (df[f"prob_{LABELS[2]}"] >= 0.7)).all()
    text = KIND.predictions_text(df)
    assert text == df.to_csv(sep="\t", index=False, float_format=FLOAT_FORMAT)
    _predict(run, tmp_path / "p.tsv")
    assert (tmp_path / "p.tsv").read_text() == text
    _predict(run, tmp_path / "p.csv")
    assert (tmp_path / "p.csv").read_text() == df.to_csv(index=False, float_format=FLOAT_FORMAT)
    r = runner.invoke(app, ["predict", str(run[0]), str(run[1]), "--format", "csv"])
    assert r.exit_code == 0 and r.stdout == (tmp_path / "p.csv").read_text()


@pytest.mark.parametrize("name", ["p.npz", "p.h5", "p.hdf5", "p.parquet", "p.tsv.gz", "p.csv"])
def test_each_format_round_trips_the_tsv_numbers(run, tmp_path, name):
    _predict(run, tmp_path / "p.tsv")
    tsv = pd.read_csv(tmp_path / "p.tsv", sep="\t")
    out = tmp_path / name
    if name.endswith(".parquet") and not HAS_PYARROW:
        model, fa = run
        r = runner.invoke(app, ["predict", str(model), str(fa), "--out", str(out)])
        assert r.exit_code == 2 and "needs the pyarrow package" in r.output and ".npz" in r.output
        assert not out.exists()
        return
    _predict(run, out)
    got = read_predictions(out)
    assert sorted(got.columns) == sorted(tsv.columns)
    assert got["id"].astype(str).tolist() == tsv["id"].tolist() == [f"s{i}" for i in range(37)]
    num = [c for c in tsv.columns if c != "id"]
    np.testing.assert_allclose(
        got[num].to_numpy(np.float64), tsv[num].to_numpy(np.float64), rtol=5e-6, atol=1e-12
    )
    # called_ columns come back as integers, as from the text file (and the frame predict gives)
    assert {c: got[c].dtype.kind for c in num} == {c: "i" if c.startswith("called_") else "f" for c in num}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


def test_array_layout(run, tmp_path):
    import h5py

    _predict(run, tmp_path / "p.npz")
    with np.load(tmp_path / "p.npz", allow_pickle=False) as z:
        assert z["predictions"].dtype == np.float32 and z["predictions"].shape == (37, 9)
        assert z["ids"].tolist()[:2] == ["s0", "s1"] and z["columns"].tolist()[:2] == [
            "logit_CTCF",
            "prob_CTCF",
        ]
        npz = z["predictions"]
        assert [np.dtype(t).kind for t in z["column_dtypes"].tolist()[:3]] == ["f", "f", "i"]
    _predict(run, tmp_path / "p.h5")
    with h5py.File(tmp_path / "p.h5", "r") as h:
        assert set(h) == {"ids", "predictions", "columns", "column_dtypes", "fields"}
        assert np.dtype(h["column_dtypes"].asstr()[()].tolist()[-1]).kind == "i"
        np.testing.assert_array_equal(h["predictions"][()], npz)
        assert h["ids"].asstr()[()].tolist()[:2] == ["s0", "s1"]
        assert h["columns"].asstr()[()].tolist()[-1] == f"called_{LABELS[2]}"


def test_format_option_overrides_the_suffix(run, tmp_path):
    _predict(run, tmp_path / "scores.out", "--format", "npz")
    with np.load(tmp_path / "scores.out", allow_pickle=False) as z:
        assert z["predictions"].shape == (37, 9)


def test_unknown_suffix_or_format_is_one_clear_error(run, tmp_path):
    model, fa = run
    r = runner.invoke(app, ["predict", str(model), str(fa), "--out", str(tmp_path / "p.xlsx")])
    assert r.exit_code == 2 and "cannot tell the output format" in r.output and ".npz" in r.output
    assert "Traceback" not in r.output and not (tmp_path / "p.xlsx").exists()
    r = runner.invoke(
        app, ["predict", str(model), str(fa), "--out", str(tmp_path / "p.tsv"), "--format", "xls"]
    )
    assert r.exit_code == 2 and "unknown output format 'xls'" in r.output
    r = runner.invoke(app, ["predict", str(model), str(fa), "--format", "h5"])
    assert r.exit_code == 2 and "writes a file: give it with --out" in r.output


def test_missing_writer_package_names_it_and_the_alternatives(monkeypatch):
    from biodl.io import predictions

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "pyarrow" else real(n, *a))
    with pytest.raises(BiodlInputError, match=r"needs the pyarrow package.*\.tsv, \.csv, \.npz, \.h5"):
        predictions.check_writer("parquet", "x.parquet")


def test_output_format_by_suffix():
    assert output_format("a.TSV") == "tsv" and output_format("a.csv.gz") == "csv"
    assert output_format("a.hdf5") == "h5" and output_format("a.pq") == "parquet"
    assert output_format(None) == "tsv" and output_format("a.bin", "HDF5") == "h5"
    with pytest.raises(BiodlInputError, match="cannot tell"):
        output_format("a.npz.gz")


def test_format_table_matches_to_csv_on_awkward_columns():
    df = pd.DataFrame(
        {
            "chrom": ["chr1", 'a"b', "x\ty", None, "z,w"],
            "start": np.array([1, -2, 3, 2**40, 0]),
            "name": ["n", "", "m\nn", "q", "r"],
            "v": [np.nan, 1.5, -0.0, np.inf, 1e-300],
            "w": np.float32([1e-7, 123456789, 0.1, -2.5, np.nan]),
            "b": [True, False, True, False, True],
            "u8": np.array([0, 1, 255, 7, 9], np.uint8),
            "p": ["A", "B", "C", "D", "E"],
        }
    )
    for sep in ("\t", ","):
        for header in (True, False):
            want = df.to_csv(sep=sep, index=False, header=header, float_format=FLOAT_FORMAT)
            assert format_table(df, sep=sep, header=header) == want
    assert format_table(df.iloc[:0]) == df.iloc[:0].to_csv(sep="\t", index=False, float_format=FLOAT_FORMAT)
    big = pd.DataFrame({"x": np.array([2**60], np.int64), "y": [0.5]})  # beyond float64's integers
    assert format_table(big) == big.to_csv(sep="\t", index=False, float_format=FLOAT_FORMAT)
    cat = pd.DataFrame({"c": pd.Categorical(["a", "b"]), "y": [0.5, 1.0]})
    assert format_table(cat) == cat.to_csv(sep="\t", index=False, float_format=FLOAT_FORMAT)


def test_split_frame_keys():
    win = pd.DataFrame(
        {"chrom": ["c1", "c2"], "start": [5, 9], "end": [10, 20], "name": ["a", "b"], "prob_x": [0.1, 0.2]}
    )
    ids, pred, cols, fields = split_frame(win)
    assert ids == ["c1:5-10", "c2:9-20"] and cols == ["prob_x"] and pred.dtype == np.float32
    assert list(fields) == ["chrom", "start", "end", "name"] and fields["start"].tolist() == [5, 9]
    mc = pd.DataFrame({"id": ["a", "b"], "prob_u": [0.4, 0.9], "prob_v": [0.6, 0.1], "predicted": ["v", "u"]})
    ids, pred, cols, fields = split_frame(mc)
    assert ids == ["a", "b"] and cols == ["prob_u", "prob_v"] and fields["predicted"].tolist() == ["v", "u"]


@pytest.mark.parametrize("suffix", [".npz", ".h5"])
def test_key_columns_read_back_in_the_tables_order(tmp_path, suffix):
    """HDF5 listed the key columns by name (chrom, end, name, start, window_end, ...)."""
    from biodl.io.predictions import write_predictions

    win = pd.DataFrame(
        {
            "chrom": ["c1", "c2"],
            "start": [5, 9],
            "end": [10, 20],
            "name": ["a", "b"],
            "window_start": [0, 4],
            "window_end": [15, 25],
            "prob_x": [0.1, 0.2],
        }
    )
    write_predictions(win, tmp_path / f"w{suffix}")
    back = read_predictions(tmp_path / f"w{suffix}")
    assert list(back.columns) == list(win.columns)
    assert back["start"].tolist() == [5, 9] and back["name"].tolist() == ["a", "b"]


def test_text_predictions_hold_float32_values_exactly():
    """6 significant digits wrote a target of 1000002.75 as 1e+06 (a TSV and a Parquet of one run
    disagreed)."""
    df = pd.DataFrame({"id": ["a", "b"], "truth": np.array([1000002.75, 0.1], np.float32)})
    back = pd.read_csv(io.StringIO(format_table(df)), sep="\t")
    assert (back["truth"].to_numpy(np.float32) == df["truth"].to_numpy()).all()
    assert "1000002.75" in format_table(df)


def test_read_predictions_gives_the_same_table_from_every_format(tmp_path):
    """Text read back changed ids (007 -> 7, NA -> NaN) and groups ('1' -> 1); HDF5 raised on a
    non-ASCII id; a one-output methylation TSV (no header) lost its first site to the header."""
    df = pd.DataFrame(
        {
            "id": ["007", "NA", "1e5", "café"],
            "group": ["1", "2", "1", "2"],
            "score": np.array([0.5, np.nan, 1.0, 0.25], np.float32),
            "called": np.array([1, 0, 1, 0], np.int8),
        }
    )
    for ext in ("tsv", "csv", "tsv.gz", "parquet", "npz", "h5"):
        write_predictions(df, tmp_path / f"p.{ext}")
        back = read_predictions(tmp_path / f"p.{ext}")
        assert back["id"].tolist() == df["id"].tolist(), ext
        assert back["group"].tolist() == ["1", "2", "1", "2"], ext
        np.testing.assert_array_equal(back["score"].to_numpy(np.float32), df["score"].to_numpy())
        assert back["called"].tolist() == [1, 0, 1, 0]
    calls = pd.DataFrame({"chrom": ["18", "X"], "pos": [3000023, 12], "value": np.float32([0.25, 1.0])})
    write_predictions(calls, tmp_path / "c.tsv", header=False)
    back = read_predictions(tmp_path / "c.tsv")
    assert list(back.columns) == ["chrom", "pos", "value"] and back["chrom"].tolist() == ["18", "X"]
    # a header of numeric names (D-GEX's predictions of Entrez-id genes) is a header
    genes = pd.DataFrame({"sample": ["s1"], "7157": np.float32([3.5]), "672": np.float32([0.25])})
    write_predictions(genes, tmp_path / "g.tsv")
    assert list(read_predictions(tmp_path / "g.tsv").columns) == ["sample", "7157", "672"]
    assert back["pos"].tolist() == [3000023, 12] and back["value"].tolist() == [0.25, 1.0]
