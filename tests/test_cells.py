"""Tests of biodl.kinds.cells (FCS input, transform, sample tables), the CellCnn model and the
``biodl train --system cellcnn`` command on real (subsampled) Bodenmiller 2012 FCS files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from biodl.errors import BiodlInputError
from biodl.kinds.cells.baseline import ClusterMedianBaseline
from biodl.kinds.cells.experiments import gate, leave_one_group_out, make_spike_in
from biodl.kinds.cells.io import (
    arcsinh_transform,
    default_markers,
    load_samples,
    read_fcs,
    read_sample_table,
    resolve_markers,
)
from biodl.kinds.cells.restarts import (
    CellCnnConfig,
    MultiCellDataset,
    config_from_options,
    encode_labels,
    outlier_pools,
    outlier_scores,
    split_cells,
    train_cellcnn,
)
from biodl.models.cellcnn import CellCnn, CellCnnEnsemble, pooled_k, top_k_pool

DATA = Path(__file__).parent / "data" / "cells"
FCS = DATA / "patient1_BCR-XL_500.fcs"
TABLE = DATA / "samples.csv"


# ------------------------------------------------------------------------------------ FCS input
def test_read_fcs_fixture():
    f = read_fcs(FCS)
    assert f.version == "3.1"
    assert f.events.shape == (500, 35) and f.events.dtype == np.float32
    assert f.channels[2] == "CD3(110:114)Dd" and f.markers[2] == "CD3"
    assert len(default_markers(f)) == 24  # no Time, Cell_length, DNA-1/2, BC1-7
    assert "pS6" in default_markers(f) and "BC3" not in default_markers(f)


def test_default_markers_leave_out_barcodes_and_dna_by_any_name():
    """The barcode and DNA channels of a file without $PnS names (BC1(La139)Dd) or with Helios
    names (139La_BC1, 191Ir_DNA1) were kept as markers: the debarcoded samples' condition leaked
    through the barcodes."""
    from biodl.kinds.cells.io import FcsData

    f = read_fcs(FCS)
    pnn_only = FcsData(f.path, f.events, list(f.channels), [""] * len(f.channels), f.version)
    assert default_markers(pnn_only) == [f.channels[f.names.index(m)] for m in default_markers(f)]
    helios = ["110Cd_CD3", "139La_BC1", "191Ir_DNA1", "195Pt_Cisplatin", "172Yb_pS6", "Time"]
    h = FcsData(
        f.path,
        f.events[:, :6],
        ["Cd110Di", "La139Di", "Ir191Di", "Pt195Di", "Yb172Di", "Time"],
        helios,
        "3.0",
    )
    assert default_markers(h) == ["110Cd_CD3", "172Yb_pS6"]


def test_marker_names_resolve_by_pns_pnn_and_stem():
    f = read_fcs(FCS)
    assert resolve_markers(f, ["CD3(110:114)Dd"]) == resolve_markers(f, ["CD3"]) == [2]
    idx = resolve_markers(f, ["cd20", "HLA-DR", "pS6(Yb172)Dd"])
    assert [f.markers[i] for i in idx] == ["CD20", "HLA-DR", "pS6"]
    with pytest.raises(BiodlInputError, match=r"unknown marker 'CD999'.*CD3"):
        resolve_markers(f, ["CD3", "CD999"])
    with pytest.raises(BiodlInputError, match="twice"):
        resolve_markers(f, ["CD3", "CD3(110:114)Dd"])


def test_truncated_fcs(tmp_path):
    data = FCS.read_bytes()
    bad = tmp_path / "truncated.fcs"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(BiodlInputError, match="truncated") as e:
        read_fcs(bad)
    assert str(bad) in str(e.value)


def test_corrupt_fcs_files(tmp_path):
    data = FCS.read_bytes()
    p = tmp_path / "notfcs.fcs"
    p.write_bytes(b"hello world, this is not a flow cytometry standard file at all" * 3)
    with pytest.raises(BiodlInputError, match="not an FCS file"):
        read_fcs(p)
    p = tmp_path / "short.fcs"
    p.write_bytes(data[:20])
    with pytest.raises(BiodlInputError, match="shorter than the 58-byte"):
        read_fcs(p)
    p = tmp_path / "version.fcs"
    p.write_bytes(b"FCS9.9" + data[6:])
    with pytest.raises(BiodlInputError, match="unsupported FCS version '9.9'"):
        read_fcs(p)
    # garbage in the HEADER offsets
    p = tmp_path / "header.fcs"
    p.write_bytes(data[:10] + b"    abcdef" + data[20:])
    with pytest.raises(BiodlInputError, match="corrupt or truncated"):
        read_fcs(p)
    # TEXT segment whose keywords are destroyed
    head = data[:58]
    text_start, text_end = int(data[10:18]), int(data[18:26])
    p = tmp_path / "text.fcs"
    p.write_bytes(head + data[58:text_start] + b"\x00" * (text_end - text_start + 1) + data[text_end + 1 :])
    with pytest.raises(BiodlInputError, match=str(p.name)):
        read_fcs(p)
    with pytest.raises(BiodlInputError, match="file not found"):
        read_fcs(tmp_path / "missing.fcs")


# ------------------------------------------------------------------------------------ transform
def test_arcsinh_transform():
    x = np.array([[-10.0, 0.0, 5.0, 500.0]])
    np.testing.assert_allclose(arcsinh_transform(x, 5), np.arcsinh(x / 5), rtol=1e-6)
    np.testing.assert_allclose(arcsinh_transform(x, 150), np.arcsinh(x / 150), rtol=1e-6)
    assert arcsinh_transform(x).dtype == np.float32
    with pytest.raises(BiodlInputError, match="cofactor"):
        arcsinh_transform(x, 0)


# ------------------------------------------------------------------------------------ sample tables
def _copy_fixture(tmp_path: Path) -> Path:
    d = tmp_path / "cyto"
    d.mkdir()
    for f in DATA.glob("*.fcs"):
        shutil.copy(f, d / f.name)
    return d


def test_sample_table_paths_relative_to_table(tmp_path):
    d = _copy_fixture(tmp_path)
    (d / "t.csv").write_text(
        "file_name,condition,patient\npatient1_Reference_500.fcs,Ref,1\npatient1_BCR-XL_500.fcs,BCRXL,1\n"
    )
    st = read_sample_table(d / "t.csv")
    assert st.files[0] == (d / "patient1_Reference_500.fcs").resolve()
    assert st.labels == ["Ref", "BCRXL"] and st.groups == ["1", "1"]
    ss = load_samples(d / "t.csv", markers="CD20,pS6", cofactor=5)
    assert ss.markers == ["CD20", "pS6"] and ss.cells[0].shape == (500, 2)
    raw = read_fcs(d / "patient1_Reference_500.fcs")
    np.testing.assert_allclose(ss.cells[0][:, 0], np.arcsinh(raw.events[:, 10] / 5), rtol=1e-5)


@pytest.mark.parametrize(
    "text,match",
    [
        (
            "file,label\nnope.fcs,Ref\npatient1_BCR-XL_500.fcs,BCRXL\n",
            r"line 2: sample file 'nope.fcs' does not exist",
        ),
        (
            "file,label\npatient1_Reference_500.fcs,\npatient1_BCR-XL_500.fcs,BCRXL\n",
            "line 2: sample .* has no label",
        ),
        (
            "file,label\npatient1_Reference_500.fcs,Ref\npatient1_Reference_500.fcs,BCRXL\n",
            "line 3: .*listed twice",
        ),
        ("file,label\npatient1_Reference_500.fcs,Ref\npatient1_BCR-XL_500.fcs,Ref\n", "same label"),
        ("sample,label\npatient1_Reference_500.fcs,Ref\n", "no file column"),
        ("file,patient\npatient1_Reference_500.fcs,1\n", "no label column"),
        # a field too many would shift the columns (pandas took the first as the index)
        (
            "file,label\npatient1_Reference_500.fcs,Ref,extra\npatient1_BCR-XL_500.fcs,BCRXL\n",
            r"line 2: 3 fields, the header has 2 \(file, label\)",
        ),
        (
            "file,label\npatient1_Reference_500.fcs,Ref\n\npatient1_BCR-XL_500.fcs\n",
            r"line 4: 1 field, the header has 2",  # blank lines still count
        ),
        (
            "file,label\npatient1_Reference_500.fcs,Ref\nsub,BCRXL\n",
            r"line 3: sample file 'sub' is a directory",
        ),
        # missing labels are refused like an empty one, not read as a class 'nan'
        (
            "file,label\npatient1_Reference_500.fcs,1.5\npatient1_BCR-XL_500.fcs,nan\n"
            "patient2_Reference_500.fcs,2\npatient2_BCR-XL_500.fcs,3\n",
            r"line 3: sample 'patient1_BCR-XL_500.fcs' has a missing label \('nan'\)",
        ),
        (
            "file,label\npatient1_Reference_500.fcs,NA\npatient1_BCR-XL_500.fcs,B\n",
            r"line 2: .*missing label \('NA'\)",
        ),
        (
            "file,label\npatient1_Reference_500.fcs,A\npatient1_BCR-XL_500.fcs,N/A\n",
            r"line 3: .*missing label",
        ),
        (
            "file,label\npatient1_Reference_500.fcs,1.5\npatient1_BCR-XL_500.fcs,inf\n"
            "patient2_Reference_500.fcs,2\n",
            r"line 3: .*infinite label value 'inf'",
        ),
        (
            "file,label\npatient1_Reference_500.fcs,-Infinity\npatient1_BCR-XL_500.fcs,2\n",
            "line 2: .*infinite",
        ),
    ],
)
def test_sample_table_errors(tmp_path, text, match):
    d = _copy_fixture(tmp_path)
    (d / "sub").mkdir()
    (d / "t.csv").write_text(text)
    with pytest.raises(BiodlInputError, match=match) as e:
        read_sample_table(d / "t.csv")
    assert "t.csv" in str(e.value)


def test_sample_table_byte_order_mark_crlf_and_tsv(tmp_path):
    d = _copy_fixture(tmp_path)
    rows = "patient1_Reference_500.fcs,Ref\r\npatient1_BCR-XL_500.fcs,BCRXL\r\n"
    (d / "bom.csv").write_bytes(b"\xef\xbb\xbf" + ("file,label\r\n" + rows).encode())
    st = read_sample_table(d / "bom.csv")
    assert st.labels == ["Ref", "BCRXL"] and st.lines == [2, 3]
    assert st.files[1] == (d / "patient1_BCR-XL_500.fcs").resolve()
    (d / "t.tsv").write_text(
        "file\tlabel\tpatient\npatient1_Reference_500.fcs\tRef\t1\n\npatient1_BCR-XL_500.fcs\t1.5\t1\n"
    )
    st = read_sample_table(d / "t.tsv")
    assert st.labels == ["Ref", "1.5"] and st.groups == ["1", "1"] and st.lines == [2, 4]
    # prediction: labels are not needed, a missing one is no error
    (d / "p.csv").write_text("file,label\npatient1_Reference_500.fcs,NA\n")
    assert read_sample_table(d / "p.csv", require_labels=False).labels == ["NA"]


def test_unknown_marker_names_file(tmp_path):
    with pytest.raises(BiodlInputError, match=r"patient1_Reference_500.fcs: unknown marker 'CD999'"):
        load_samples(TABLE, markers="CD3,CD999")


def test_encode_labels():
    y, classes, task = encode_labels(["BCRXL", "Ref", "BCRXL"])
    assert classes == ["Ref", "BCRXL"] and task == "binary" and y.tolist() == [1, 0, 1]
    y, classes, _ = encode_labels(["b", "a"], classes=["b", "a"])
    assert y.tolist() == [0, 1]
    y, classes, task = encode_labels(["1.5", "2", "7"])
    assert task == "regression" and classes is None
    with pytest.raises(BiodlInputError, match="label 'y' is not among the classes x, z"):
        encode_labels(["x", "y"], classes=["x", "z"])


def test_encode_labels_name_the_table_line():
    where = dict(path="s.csv", lines=[2, 3, 5])
    with pytest.raises(BiodlInputError, match=r"^s.csv, line 3: regression needs numeric labels, got 'x'"):
        encode_labels(["1", "x", "3"], task="regression", **where)
    with pytest.raises(BiodlInputError, match=r"^s.csv, line 5: infinite label value 'inf'"):
        encode_labels(["1", "2", "inf"], **where)
    with pytest.raises(BiodlInputError, match=r"^s.csv, line 3: a missing label \('NaN'\)"):
        encode_labels(["1", "NaN", "3"], **where)
    with pytest.raises(
        BiodlInputError, match=r"^s.csv, line 3: labels 'Other' \(line 3\), 'x' \(line 5\) are not among"
    ):
        encode_labels(["Ref", "Other", "x"], classes=["Ref", "BCRXL"], **where)
    # two spellings of one label would be two classes (Ref / ref: four one-sample classes)
    with pytest.raises(
        BiodlInputError, match=r"^s.csv, line 5: labels 'Ref' \(line 2\) and 'ref' differ only"
    ):
        encode_labels(["Ref", "BCRXL", "ref"], **where)
    with pytest.raises(BiodlInputError, match="differ only in case or spaces"):
        encode_labels(["BCRXL", "BCRXL ", "Ref"])
    # classes given: the user's word for it
    assert encode_labels(["a", "A"], classes=["a", "A"])[1] == ["a", "A"]
    # numeric labels with more than two values: regression, as before
    y, classes, task = encode_labels(["1.5", "2", "3"], **where)
    assert task == "regression" and classes is None and y.tolist() == [1.5, 2, 3]


@pytest.mark.parametrize(
    "setting,match",
    [
        ("cofactor=0", "--set cofactor must be positive"),
        ("cofactor=1e-38", "--set cofactor must be from 0.001 to 1e6"),
        ("cofactor=1e300", "--set cofactor must be from 0.001 to 1e6"),
        ("select_quantile=2", "--set select_quantile must be at most 1"),
        ("select_quantile=-0.1", "--set select_quantile must be at least 0"),
        ("nfilter_choice=0", "nfilter_choice: numbers of filters must be at least 1, got 0"),
        ("nfilter_choice=2.5", "nfilter_choice must be a comma-separated list of whole numbers"),
        ("learning_rate=0", "--set learning_rate must be positive"),
        ("dropout=abc", "dropout must be auto or a probability"),
        ("dropout=1", "dropout must be auto or a probability"),
        ("dropout_p=1", "dropout_p must be a probability"),
        ("valid_fraction=0", "--valid-fraction must be positive"),
        ("outlier_keep=0", "--set outlier_keep must be positive"),
    ],
)
def test_cli_refuses_bad_options_before_training(tmp_path, setting, match):
    from typer.testing import CliRunner

    from biodl.cli import app

    out = tmp_path / "run"
    args = ["train", "--system", "cellcnn", "--samples", str(TABLE), "--out", str(out), "--epochs", "1"]
    r = CliRunner().invoke(app, [*args, "--no-progress", "--set", "nrun=1", "--set", setting])
    assert r.exit_code == 2, r.output
    assert match in " ".join(r.output.split()) and "unexpected" not in r.output
    assert not out.exists()  # refused before anything was trained or written


def test_config_learning_rate_is_used_as_given(tmp_path):
    with pytest.raises(BiodlInputError, match="learning_rate must be positive"):
        config_from_options({"learning_rate": 0})
    rng = np.random.default_rng(1)
    cells = [rng.normal(size=(60, 3)).astype(np.float32) + (i % 2) for i in range(4)]
    cfg = config_from_options({"learning_rate": 0.0123, "ncell": 10, "nsubset": 4, "nrun": 1, "n_best": 1})
    cfg.max_epochs, cfg.batch_size = 1, 4
    _, df = train_cellcnn(cells, np.array([0, 1, 0, 1]), 2, tmp_path / "r", cfg, seed=0)
    assert df["lr"].tolist() == [0.0123]


# ------------------------------------------------------------------------------------ model
def test_top_k_pooling():
    r = torch.tensor([[[1.0, 0.0], [3.0, 2.0], [2.0, 4.0], [0.0, 1.0]]])  # (1, 4 cells, 2 filters)
    assert torch.allclose(top_k_pool(r, 1), torch.tensor([[3.0, 4.0]]))
    assert torch.allclose(top_k_pool(r, 2), torch.tensor([[2.5, 3.0]]))
    assert torch.allclose(top_k_pool(r, 4), r.mean(1))
    assert pooled_k(200, 0.01) == 1 and pooled_k(200, 5) == 10 and pooled_k(200, 100) == 200


def test_cellcnn_shapes_and_ensemble():
    torch.manual_seed(0)
    net = CellCnn(6, n_outputs=2, n_filters=4, pool_percent=10)
    x = torch.randn(3, 50, 6)
    assert net(x).shape == (3, 2) and net.responses(x).shape == (3, 50, 4)
    assert (net.responses(x) >= 0).all()
    # permuting the cells of an input does not change the output (a bag of cells)
    net.eval()
    assert torch.allclose(net(x), net(x[:, torch.randperm(50)]), atol=1e-6)
    assert float(net.penalty(l1=0.1).detach()) > 0 and float(net.penalty()) == 0
    ens = CellCnnEnsemble(6, 2, [{"n_filters": 3, "pool_percent": 1}, {"n_filters": 5, "pool_percent": 100}])
    out = ens(x)
    assert torch.allclose(out.exp().sum(1), torch.ones(3), atol=1e-5)
    assert CellCnnEnsemble(6, 1, [{"n_filters": 3, "pool_percent": 5}], regression=True)(x).shape == (3, 1)


def test_multicell_dataset_is_seeded():
    cells = [np.arange(40, dtype=np.float32).reshape(20, 2), np.ones((5, 2), np.float32)]
    ds = MultiCellDataset(cells, np.array([0, 1]), [3, 2], ncell=8, seed=1)
    assert len(ds) == 5
    x, y = ds[0]
    assert x.shape == (8, 2) and y.tolist() == [0.0]
    assert len(set(x[:, 0].tolist())) == 8  # without replacement when enough cells
    assert torch.equal(ds[0][0], MultiCellDataset(cells, np.array([0, 1]), [3, 2], 8, seed=1)[0][0])
    assert ds[4][0].shape == (8, 2) and ds[4][1].tolist() == [1.0]  # with replacement (5 cells)
    # inputs kept in memory (small sets) or drawn item by item (above max_bytes): the same cells
    assert ds.inputs is not None
    lazy = MultiCellDataset(cells, np.array([0, 1]), [3, 2], ncell=8, seed=1, max_bytes=0)
    assert lazy.inputs is None
    for j in range(len(ds)):
        assert torch.equal(ds[j][0], lazy[j][0]) and torch.equal(ds[j][1], lazy[j][1])
        assert torch.equal(ds[j][0], torch.from_numpy(cells[int(ds.owner[j])][ds.indices(j)]))


# ------------------------------------------------------------------------ outlier-biased inputs
def _blob_and_far_cells(seed: int = 0):
    """Control sample: a Gaussian blob; positive sample: the same blob plus 10 far cells (0.5 %)."""
    rng = np.random.default_rng(seed)
    ctrl = rng.normal(size=(2000, 4)).astype(np.float32)
    pos = rng.normal(size=(2000, 4)).astype(np.float32)
    far = np.arange(10)
    pos[far] += 6.0
    return [ctrl, pos], np.array([0, 1]), far


def test_outlier_scores_rank_far_cells_first():
    cells, _, far = _blob_and_far_cells()
    (sc,) = outlier_scores([cells[1]], cells[0], n_landmarks=50, seed=0)
    assert sc.shape == (2000,) and (sc >= 0).all()
    assert set(np.argsort(-sc)[:10]) == set(far)
    again = outlier_scores([cells[1]], cells[0], n_landmarks=50, seed=0)[0]
    assert np.array_equal(sc, again)


def test_outlier_biased_sampling_is_seeded_and_biased():
    cells, y, far = _blob_and_far_cells()
    pools = outlier_pools(cells, y, keep=0.05, n_landmarks=50, seed=0)
    assert pools[0] is None  # control samples keep uniform inputs (as the reference)
    both = outlier_pools(cells + [cells[0][::-1].copy()], np.array([0, 1, 0]), keep=0.05, controls=True)
    assert both[0] is not None and both[2] is not None  # ... unless asked to bias them too
    assert len(both[0][0]) == 100 and np.isclose(both[0][1].sum(), 1)
    idx, p = pools[1]
    assert len(idx) == 100 and np.isclose(p.sum(), 1) and set(idx[:10]) == set(far)

    def inputs(seed, pools=pools):
        ds = MultiCellDataset(cells, y, [40, 40], ncell=100, seed=seed, pools=pools, outlier_fraction=0.5)
        return ds, [ds.indices(j) for j in range(len(ds))]

    ds, a = inputs(3)
    _, b = inputs(3)
    _, c = inputs(4)
    assert all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))  # same seed, same inputs
    assert not all(np.array_equal(u, v) for u, v in zip(a, c, strict=True))
    assert torch.equal(ds[45][0], inputs(3)[0][45][0])
    # far cells are 0.5 % of the positive sample: a uniform input of 100 cells holds 0.5 of them
    pos_far = np.mean([np.isin(a[j], far).sum() for j in range(40, 80)])
    assert pos_far > 5, pos_far  # >10x their frequency
    _, r = inputs(3, pools=None)
    assert np.mean([np.isin(r[j], far).sum() for j in range(40, 80)]) < 2
    # the control sample's inputs stay uniform (no far cells there to find; all rows used)
    assert len(np.unique(np.concatenate(a[:40]))) > 1000


def test_outlier_sampling_options_and_errors(tmp_path):
    cfg = config_from_options(
        {"sampling": "outlier", "outlier_fraction": "0.3", "outlier_keep": "0.01", "outlier_controls": "true"}
    )
    assert (cfg.sampling, cfg.outlier_fraction, cfg.outlier_keep) == ("outlier", 0.3, 0.01)
    assert cfg.outlier_controls is True
    assert CellCnnConfig().sampling == "random"
    with pytest.raises(BiodlInputError, match="sampling must be one of random, outlier, got 'kmeans'"):
        config_from_options({"sampling": "kmeans"})
    with pytest.raises(BiodlInputError, match=r"outlier_fraction must be in \(0, 1\]"):
        config_from_options({"outlier_fraction": 0})
    with pytest.raises(BiodlInputError, match=r"outlier_keep must be in \(0, 1\]"):
        config_from_options({"outlier_keep": 1.5})
    with pytest.raises(BiodlInputError, match="outlier_landmarks must be >= 1"):
        config_from_options({"outlier_landmarks": 0})
    with pytest.raises(BiodlInputError, match="outlier_fraction must be a number"):
        config_from_options({"outlier_fraction": "half"})
    # the CLI's --set goes through the kind's declared options
    from biodl.kinds.cells.kind import OPTIONS
    from biodl.options import resolve

    got = resolve(OPTIONS, {"sampling": "outlier", "outlier_keep": "0.02"}, stage="train", owner="cellcnn")
    assert got["sampling"] == "outlier" and got["outlier_keep"] == 0.02
    with pytest.raises(BiodlInputError, match="sampling"):
        resolve(OPTIONS, {"sampling": "biased"}, stage="train", owner="cellcnn")
    with pytest.raises(BiodlInputError, match="outlier_fraction"):
        resolve(OPTIONS, {"outlier_fraction": "1.5"}, stage="train", owner="cellcnn")
    cells, _, _ = _blob_and_far_cells()
    with pytest.raises(BiodlInputError, match="needs control samples"):
        outlier_pools(cells, np.array([1, 2]))
    cfg = CellCnnConfig(ncell=20, nsubset=4, nrun=1, max_epochs=1, sampling="outlier")
    with pytest.raises(BiodlInputError, match="needs classification"):
        train_cellcnn(cells, np.array([0.5, 1.5]), 1, tmp_path / "r", cfg, regression=True)


def test_train_with_outlier_sampling_and_consensus_filters(tmp_path):
    from biodl.kinds.cells.interpret import cell_responses, consensus_filters, rank_filters
    from biodl.kinds.cells.restarts import load_restarts

    cells, y, far = _blob_and_far_cells()
    cells = cells + [c.copy() for c in _blob_and_far_cells(1)[0]]
    y = np.array([0, 1, 0, 1])
    cfg = CellCnnConfig(
        ncell=100,
        nsubset=32,
        nrun=3,
        n_best=2,
        max_epochs=2,
        patience=2,
        sampling="outlier",
        outlier_keep=0.05,
    )
    ens, df = train_cellcnn(cells, y, 2, tmp_path / "run", cfg, seed=0)
    assert len(df) == 3 and df["selected"].sum() == 2
    nets, rdf = load_restarts(tmp_path / "run", 4, 2)
    assert len(nets) == 3 and rdf["run"].tolist() == [0, 1, 2]

    # hand-set networks: filters along markers 0, 1, 2 learned again (with noise) by three
    # restarts, plus one filter only one restart found
    def net(k, extra):
        m = CellCnn(4, 2, n_filters=4 if extra else 3, pool_percent=5.0, dropout=0.0)
        g = torch.Generator().manual_seed(k)
        with torch.no_grad():
            w = torch.zeros(m.n_filters, 4)
            w[:3, :3] = torch.eye(3)
            if extra:
                w[3] = torch.tensor([0.0, 0.0, -1.0, 1.0])
            m.filters.weight.copy_(w + 0.02 * torch.randn(w.shape, generator=g))
            m.filters.bias.zero_()
        return m.eval()

    nets = [net(0, False), net(1, True), net(2, False), net(3, False)]
    model, table = consensus_filters(nets, [0.99, 0.98, 0.97, 0.5])  # the 0.5 restart is left out
    assert model is not None and len(table) == 3
    assert (table["size"] == 3).all() and (table["n_nets"] == 3).all()
    W = model.nets[0].filters.weight.detach().numpy()
    assert sorted(np.abs(W[:, :3]).argmax(1).tolist()) == [0, 1, 2]
    r = table.iloc[0]
    rep = nets[int(r["net"])].responses(torch.from_numpy(cells[1]))[:, int(r["filter"])].detach().numpy()
    assert np.allclose(cell_responses(model, cells[1])[:, 0], rep, atol=1e-6)
    assert len(rank_filters(model, cells, y)) == 3
    assert consensus_filters([nets[0]], [0.9])[0] is None  # nothing found twice
    with pytest.raises(ValueError, match="accuracies"):
        consensus_filters(nets, [0.9])


def test_hidden_layer_networks_train_save_and_load(tmp_path):
    """hidden > 0: a non-linear per-cell function before the filters; the restarts, the
    ensemble and its reload keep it, the filter table and the consensus filters know it."""
    from biodl.kinds.cells.interpret import cell_responses, consensus_filters, filter_table
    from biodl.kinds.cells.restarts import load_restarts

    net = CellCnn(4, 2, n_filters=3, pool_percent=10.0, hidden=5)
    x = torch.randn(2, 50, 4)
    assert net(x).shape == (2, 2) and net.responses(x).shape == (2, 50, 3)
    with torch.no_grad():
        bigger = float(net.penalty(l2=1.0)) - float(
            net.filters.weight.pow(2).sum() + net.output.weight.pow(2).sum()
        )
    assert bigger > 0  # the hidden weights are penalised too
    with pytest.raises(ValueError, match="hidden"):
        CellCnn(4, 2, hidden=-1)
    cells, y, _ = _blob_and_far_cells()
    cfg = CellCnnConfig(ncell=100, nsubset=32, nrun=3, n_best=2, max_epochs=2, patience=2, hidden=6)
    ens, df = train_cellcnn(cells, y, 2, tmp_path / "run", cfg, seed=0)
    assert (df["hidden"] == 6).all() and all(n.hidden_units == 6 for n in ens.nets)
    nets, _ = load_restarts(tmp_path / "run", 4, 2)
    assert all(n.hidden_units == 6 for n in nets)
    members = [{"n_filters": n.n_filters, "pool_percent": n.pool_percent, "hidden": 6} for n in ens.nets]
    again = CellCnnEnsemble(4, 2, members)
    again.load_state_dict(ens.state_dict())
    assert torch.allclose(again(torch.from_numpy(cells[0][None])), ens(torch.from_numpy(cells[0][None])))
    assert cell_responses(ens, cells[0]).shape[0] == len(cells[0])
    assert "m0" not in filter_table(ens, ["m0", "m1", "m2", "m3"], None).columns  # no marker weights
    assert consensus_filters(nets, [0.9, 0.9, 0.9])[0] is None
    with pytest.raises(BiodlInputError, match="hidden"):
        CellCnnConfig(hidden=-2).check()


def test_spike_in_and_baseline():
    rng = np.random.default_rng(0)
    ref = {str(g): rng.normal(size=(400, 3)).astype(np.float32) for g in range(3)}
    donors = {g: rng.normal(5, 0.1, size=(30, 3)).astype(np.float32) for g in ref}
    sp = make_spike_in(ref, donors, ["a", "b", "c"], 0.05, n_cells=200, seed=0)
    assert len(sp.samples) == 6 and sp.targets.tolist() == [0, 1] * 3
    assert [int(m.sum()) for m in sp.spiked] == [0, 10] * 3
    assert all(len(c) == 200 for c in sp.samples.cells)
    assert (sp.samples.cells[1][sp.spiked[1]] > 4).all()
    assert gate(sp.samples.cells[1], ["a", "b", "c"], {"a": (">", 4.0)}).sum() == 10
    bl = ClusterMedianBaseline(n_clusters=3, seed=0).fit(sp.samples.cells, sp.targets)
    assert bl.predict_proba(sp.samples.cells).shape == (6, 2)


def test_spike_in_shared_background():
    """The shared design: a patient's plain sample is the background of its spiked sample, the
    spiked cells are those of the disjoint design, and held-out samples can be scored on
    other cells than the ones trained on (leave_one_group_out's test_cells)."""
    rng = np.random.default_rng(1)
    ref = {str(g): rng.normal(size=(300, 3)).astype(np.float32) for g in range(3)}
    donors = {g: rng.normal(5, 0.1, size=(30, 3)).astype(np.float32) for g in ref}
    dis = make_spike_in(ref, donors, ["a", "b", "c"], 0.05, n_cells=200, seed=0)
    sh = make_spike_in(ref, donors, ["a", "b", "c"], 0.05, n_cells=200, seed=0, background="shared")
    assert [int(m.sum()) for m in sh.spiked] == [0, 10] * 3
    for i in (1, 3, 5):
        plain, spiked = sh.samples.cells[i - 1], sh.samples.cells[i]
        assert len(plain) == len(spiked) == 200
        bg = {tuple(v) for v in plain.tolist()}
        assert all(tuple(v) in bg for v in spiked[~sh.spiked[i]].tolist())  # same background
        assert not any(tuple(v) in bg for v in spiked[sh.spiked[i]].tolist())
        same = np.sort(spiked[sh.spiked[i]], 0), np.sort(dis.samples.cells[i][dis.spiked[i]], 0)
        assert np.array_equal(*same)
        # the disjoint design's plain sample shares no reference cell with its spiked sample
        other = {tuple(v) for v in dis.samples.cells[i - 1].tolist()}
        assert not any(tuple(v) in other for v in dis.samples.cells[i][~dis.spiked[i]].tolist())
    with pytest.raises(BiodlInputError, match="background"):
        make_spike_in(ref, donors, ["a", "b", "c"], 0.05, n_cells=200, background="halves")
    with pytest.raises(BiodlInputError, match="frequency"):
        make_spike_in(ref, donors, ["a", "b", "c"], 5.0, n_cells=200)


def test_split_cells_keeps_copies_together():
    rng = np.random.default_rng(3)
    cells = rng.normal(size=(100, 3)).astype(np.float32)
    tr, va = split_cells(cells, 0.2, np.random.default_rng(1))
    assert (len(tr), len(va)) == (80, 20) and not set(tr) & set(va)
    # without copies: the same draws as the plain split (earlier runs reproduce)
    from biodl.train.datamodule import split_indices

    ref = split_indices(100, 0.2, np.random.default_rng(1), at_least_one=True, min_items=2, sort=False)
    assert np.array_equal(tr, ref[0]) and np.array_equal(va, ref[1])
    # a resampled sample: every copy of a cell lands in one part
    copies = cells[rng.choice(100, 1000)]
    tr, va = split_cells(copies, 0.2, np.random.default_rng(1))
    assert len(tr) + len(va) == 1000 and 100 < len(va) < 300
    kept = {tuple(v) for v in copies[tr].tolist()}
    assert not any(tuple(v) in kept for v in copies[va].tolist())
    # ... and in any other sample holding copies of the same cells (spike-ins on one background)
    other = cells[rng.choice(100, 500)]
    tr2, va2 = split_cells(other, 0.2, np.random.default_rng(7))
    assert not any(tuple(v) in kept for v in other[va2].tolist())
    assert {tuple(v) for v in other[tr2].tolist()} <= kept


def test_leave_one_group_out_scores_the_test_cells(tmp_path):
    rng = np.random.default_rng(2)
    ref = {str(g): rng.normal(size=(300, 3)).astype(np.float32) for g in range(3)}
    donors = {g: rng.normal(4, 0.2, size=(40, 3)).astype(np.float32) for g in ref}
    sh = make_spike_in(ref, donors, ["a", "b", "c"], 0.05, n_cells=200, seed=0, background="shared")
    dis = make_spike_in(ref, donors, ["a", "b", "c"], 0.05, n_cells=200, seed=0)
    cfg = CellCnnConfig(ncell=50, nsubset=40, nrun=3, max_epochs=2, batch_size=20)
    res = leave_one_group_out(
        sh.samples,
        sh.targets,
        cfg,
        groups=["0"],
        spiked=None,
        test_cells=dis.samples.cells,
        test_spiked=dis.spiked,
        baseline=False,
        work_dir=tmp_path,
    )
    pred = res["predictions"]
    assert pred["sample"].tolist() == ["p0_plain", "p0_spiked"]
    assert pred["n_spiked"].iloc[1] == 10 and 0 <= pred["cell_auc"].iloc[1] <= 1
    # every held-out positive cell's responses to the ranked filters, rows as the scored cells
    assert list(res["responses"]) == ["p0_spiked"]
    resp = res["responses"]["p0_spiked"]
    assert resp.shape[0] == 200 and 1 <= resp.shape[1] <= 2
    top = np.argsort(-resp[:, 0], kind="stable")[:10]
    assert dis.spiked[1][top].mean() == pytest.approx(pred["recall_top_n"].iloc[1])
    with pytest.raises(BiodlInputError, match="test_cells"):
        leave_one_group_out(sh.samples, sh.targets, cfg, test_cells=dis.samples.cells[:2], work_dir=tmp_path)


# ------------------------------------------------------------------------------------ CLI
def test_cli_train_with_hidden_layer_reports_and_predicts(tmp_path):
    from typer.testing import CliRunner

    from biodl.cli import app

    runner = CliRunner()
    out = tmp_path / "run"
    sets = ["ncell=60", "nsubset=24", "nrun=3", "hidden=4", "embedding=pca"]
    args = ["train", "--system", "cellcnn", "--samples", str(TABLE), "--out", str(out), "--epochs", "1"]
    args += ["--no-progress", *[a for kv in sets for a in ("--set", kv)]]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert (out / "report.html").exists() and not (out / "interpret" / "filter_weights.png").exists()
    assert "through a hidden layer" in (out / "report.html").read_text()
    r = runner.invoke(app, ["predict", str(out), str(TABLE)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, args[:-2] + ["--set", "hidden=-1"])
    assert r.exit_code != 0 and "hidden" in r.output


def test_cli_train_evaluate_predict(tmp_path):
    from typer.testing import CliRunner

    from biodl.cli import app

    runner = CliRunner()
    out = tmp_path / "run"
    held = tmp_path / "held.csv"  # another table than --samples: it was ignored (the training
    held.write_text(  # samples were evaluated as the test set)
        f"file,label\n{DATA / 'patient2_Reference_500.fcs'},Ref\n{DATA / 'patient2_BCR-XL_500.fcs'},BCRXL\n"
    )
    args = [
        "train",
        "--system",
        "cellcnn",
        "--samples",
        str(TABLE),
        "--out",
        str(out),
        "--epochs",
        "2",
        "--no-progress",
        "--set",
        "ncell=60",
        "--set",
        "nsubset=24",
        "--set",
        "nrun=3",
        "--set",
        "embedding=pca",
        "--test",
        str(held),
    ]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    tested = pd.read_csv(out / "test" / "predictions.tsv", sep="\t")
    assert len(tested) == 2 and all("patient2" in str(v) for v in tested.iloc[:, 0]), tested
    for f in (
        "model.pt",
        "report.html",
        "restarts.tsv",
        "predictions_train.tsv",
        "test/predictions.tsv",
        "test/metrics.json",
        "test/roc.png",
        "interpret/profile_filter1.tsv",
        "interpret/filter1_hist.png",
        "interpret/filter1_pca.png",
    ):
        assert (out / f).exists(), f
    html = (out / "report.html").read_text()
    assert "Selected cells" in html and "data:image/png;base64" in html
    restarts = pd.read_csv(out / "restarts.tsv", sep="\t")
    assert len(restarts) == 3 and restarts["selected"].sum() == 3

    # `biodl report` rebuilds the CellCnn report (it was once replaced by the generic sequence one)
    (out / "report.html").unlink()
    r = runner.invoke(app, ["report", str(out), "--set", "embedding=none"])
    assert r.exit_code == 0, r.output
    again = (out / "report.html").read_text()
    assert "Selected cells" in again and "Restarts" in again and "sequence length" not in again

    r = runner.invoke(app, ["evaluate", str(out), str(TABLE), "--out", str(tmp_path / "ev")])
    assert r.exit_code == 0, r.output
    assert "accuracy" in r.output and (tmp_path / "ev" / "predictions.tsv").exists()

    r = runner.invoke(app, ["predict", str(out), str(FCS)])
    assert r.exit_code == 0, r.output
    assert "p_BCRXL" in r.output and "patient1_BCR-XL_500" in r.output

    # a class the model lacks: named with the table and its line, nothing written
    other = tmp_path / "other.csv"
    other.write_text(
        f"file,label\n{DATA / 'patient1_Reference_500.fcs'},Ref\n{DATA / 'patient1_BCR-XL_500.fcs'},Other\n"
    )
    r = runner.invoke(app, ["evaluate", str(out), str(other), "--out", str(tmp_path / "ev2")])
    msg = " ".join(r.output.split())
    assert r.exit_code == 2 and "other.csv, line 3: label 'Other' is not among the classes Ref, BCRXL" in msg
    assert not (tmp_path / "ev2").exists()

    r = runner.invoke(
        app,
        [
            "train",
            "--system",
            "cellcnn",
            "--samples",
            str(TABLE),
            "--out",
            str(tmp_path / "x"),
            "--set",
            "markers=CD3,CD999",
        ],
    )
    assert r.exit_code == 2 and "unknown marker 'CD999'" in " ".join(r.output.split())
    r = runner.invoke(
        app,
        [
            "train",
            "--system",
            "cellcnn",
            "--samples",
            str(TABLE),
            "--out",
            str(tmp_path / "x"),
            "--set",
            "ncel=5",
        ],
    )
    assert r.exit_code == 2 and "does not take --set ncel (did you mean ncell?)" in " ".join(r.output.split())


def test_restarts_resume_only_what_they_were_trained_on(tmp_path):
    """A directory's restarts are reused only for the same samples and options: other options or
    samples get a clear error (they would be reused as they are), more restarts are added, and
    --no-resume retrains."""
    from biodl.kinds.cells.restarts import IDENTITY_FILE

    rng = np.random.default_rng(4)
    cells = [rng.normal(size=(300, 3)).astype(np.float32) + (i % 2) for i in range(4)]
    y = np.array([0, 1, 0, 1])
    cfg = CellCnnConfig(ncell=50, nsubset=20, nrun=2, n_best=1, max_epochs=1, batch_size=10)
    out = tmp_path / "run"
    _, df = train_cellcnn(cells, y, 2, out, cfg, seed=0)
    assert (out / IDENTITY_FILE).exists()
    # the same again resumes (the same restarts), and one more restart is added to them
    more = CellCnnConfig(**{**cfg.__dict__, "nrun": 3})
    _, df2 = train_cellcnn(cells, y, 2, out, more, seed=0)
    assert len(df2) == 3 and df2.iloc[:2][["lr", "valid_loss"]].equals(df[["lr", "valid_loss"]])
    with pytest.raises(BiodlInputError, match="max_epochs 1 -> 3"):
        train_cellcnn(cells, y, 2, out, CellCnnConfig(**{**cfg.__dict__, "max_epochs": 3}), seed=0)
    with pytest.raises(BiodlInputError, match="training samples"):
        train_cellcnn([c + 0.5 for c in cells], y, 2, out, cfg, seed=0)
    with pytest.raises(BiodlInputError, match="seed 0 -> 1"):
        train_cellcnn(cells, y, 2, out, cfg, seed=1)
    # without resuming, the restarts are trained again and the record follows them
    three = CellCnnConfig(**{**cfg.__dict__, "max_epochs": 3})
    train_cellcnn(cells, y, 2, out, three, seed=0, resume=False)
    # ... and the third restart, left from the overwritten run, is trained again when it is asked for
    stale = json.loads((out / "restarts" / "run_02" / "result.json").read_text())
    _, df3 = train_cellcnn(cells, y, 2, out, CellCnnConfig(**{**three.__dict__, "nrun": 3}), seed=0)
    ident = [json.loads((out / "restarts" / f"run_{i:02d}" / "result.json").read_text()) for i in range(3)]
    assert len({r["identity"] for r in ident}) == 1 and ident[2]["identity"] != stale["identity"]
    assert "identity" not in df3.columns


def test_numeric_labels_are_classes_by_value_not_spelling():
    """'1' and '1.0' (a spreadsheet round-trip) made a 0/1 study a regression, or with
    classification three classes."""
    from biodl.kinds.cells.restarts import encode_labels

    y, classes, task = encode_labels(["0", "1", "0", "1.0"])
    assert task == "binary" and classes == ["0", "1"] and y.tolist() == [0, 1, 0, 1]
    y, classes, task = encode_labels(["0", "1.00"], classes=["0", "1"])
    assert y.tolist() == [0, 1]
    assert encode_labels(["0", "1", "2.5"])[2] == "regression"


def test_a_spillover_matrix_is_said_not_applied(tmp_path, capsys):
    """FCS $SPILLOVER was ignored without a word (flow data used uncompensated); the identity
    (nothing to compensate) is not warned about."""
    import flowio

    from biodl.kinds.cells.io import read_fcs

    x = (np.random.default_rng(0).random((50, 3)) * 100).astype(np.float32).flatten().tolist()
    for name, spill in (("s.fcs", "2,FL1-A,FL2-A,1,0.3,0.1,1"), ("i.fcs", "2,FL1-A,FL2-A,1,0,0,1")):
        with open(tmp_path / name, "wb") as fh:
            flowio.create_fcs(fh, x, ["FSC-A", "FL1-A", "FL2-A"], metadata_dict={"SPILLOVER": spill})
    from biodl.kinds.cells import io as cells_io

    cells_io._SPILL_SAID = False
    read_fcs(tmp_path / "i.fcs")
    assert "spillover" not in capsys.readouterr().err
    read_fcs(tmp_path / "s.fcs")
    err = " ".join(capsys.readouterr().err.split())
    assert (
        "s.fcs (and maybe other files) holds a spillover matrix ($SPILLOVER) that biodl does not apply" in err
    )
    read_fcs(tmp_path / "s.fcs")  # once per process: a panel has many files
    assert "spillover" not in capsys.readouterr().err


def test_samples_too_small_to_split_train_and_are_said(tmp_path):
    """A sample of copies of one cell sent every row to validation (an internal error from an
    empty training part); a 1-cell sample validated on its training cells without a word."""
    from biodl.kinds.cells.restarts import CellCnnConfig, train_cellcnn

    rng = np.random.default_rng(0)
    cells = [rng.normal(size=(200, 3)).astype(np.float32) for _ in range(3)]
    cells.append(np.repeat(rng.normal(size=(1, 3)).astype(np.float32), 20, axis=0))
    said = []
    cfg = CellCnnConfig(nrun=1, n_best=1, ncell=20, nsubset=8, max_epochs=1)
    train_cellcnn(cells, [0, 1, 0, 1], 2, tmp_path, cfg, log=said.append, names=["a", "b", "c", "copies"])
    assert any("too few distinct cells to hold some out for validation (copies)" in s for s in said), said


def test_sample_tables_ids_one_class_scoring_and_missing_groups(tmp_path):
    """A repeated sample_id replaced every given id by file names (silently); files of one name in
    two folders were two samples of one id; a table of one class could not be evaluated (the
    training's refusal); a missing patient became a group of its own in crossval."""
    import shutil

    from biodl.kinds.cells.experiments import leave_one_group_out
    from biodl.kinds.cells.io import load_samples, read_sample_table
    from biodl.kinds.cells.restarts import CellCnnConfig

    a, b = DATA / "patient1_Reference_500.fcs", DATA / "patient1_BCR-XL_500.fcs"
    (tmp_path / "d.csv").write_text(f"file,label,sample_id\n{a},Ref,S1\n{b},BCRXL,S1\n")
    with pytest.raises(
        BiodlInputError, match=r"d.csv, line 3: sample id 'S1' is given twice \(also on line 2\)"
    ):
        read_sample_table(tmp_path / "d.csv")
    for sub, src in (("x", a), ("y", b)):
        (tmp_path / sub).mkdir()
        shutil.copy(src, tmp_path / sub / "s.fcs")
    (tmp_path / "s.csv").write_text("file,label\nx/s.fcs,Ref\ny/s.fcs,BCRXL\n")
    assert read_sample_table(tmp_path / "s.csv").ids == ["x/s", "y/s"]
    (tmp_path / "one.csv").write_text(f"file,label\n{b},BCRXL\n")
    with pytest.raises(BiodlInputError, match="all samples have the same label"):
        read_sample_table(tmp_path / "one.csv")
    assert read_sample_table(tmp_path / "one.csv", training=False).labels == ["BCRXL"]
    (tmp_path / "g.csv").write_text(f"file,label,patient\n{a},Ref,1\n{b},BCRXL,NA\n")
    ss = load_samples(tmp_path / "g.csv")
    with pytest.raises(BiodlInputError, match=r"g.csv, line 3: sample 'patient1_BCR-XL_500' has no group"):
        leave_one_group_out(ss, np.array([0, 1]), CellCnnConfig(nrun=1))


@pytest.mark.parametrize(
    ("opt", "said"),
    [
        ("max_cells=-5", "--set max_cells must be at least 1, got -5"),
        ("max_cells=abc", "--set max_cells must be an integer, got 'abc'"),
        ("cofactor=abc", "--set cofactor must be a number, got 'abc'"),
    ],
)
def test_crossval_checks_its_reading_options(tmp_path, opt, said):
    """They were converted bare (internal errors; max_cells=0 silently meant every cell)."""
    from typer.testing import CliRunner

    from biodl.cli import app

    r = CliRunner().invoke(
        app, ["cells", "crossval", str(TABLE), "--out", str(tmp_path / "cv"), "--set", opt]
    )
    assert r.exit_code == 2 and said in " ".join(r.output.split()), r.output


def test_identical_cells_get_no_embedding_and_constant_markers_are_refused(tmp_path):
    """t-SNE of identical cells crashed the process (a segmentation fault in scikit-learn's
    Barnes-Hut code); every marker constant trained and reported without a word."""
    from biodl.kinds.cells.interpret import plot_embedding
    from biodl.kinds.cells.restarts import CellCnnConfig, train_cellcnn

    same = np.ones((600, 10), np.float32)
    assert plot_embedding(same, np.arange(600.0), tmp_path / "e.png") is None
    assert not (tmp_path / "e.png").exists()
    cells = [np.ones((100, 3), np.float32) for _ in range(4)]
    cfg = CellCnnConfig(nrun=1, n_best=1, ncell=20, nsubset=8, max_epochs=1)
    with pytest.raises(BiodlInputError, match="every one of the 3 markers has one value over all"):
        train_cellcnn(cells, np.array([0, 1, 0, 1]), 2, tmp_path / "r", cfg)


def test_per_group_auc_counts_a_tie_as_half():
    """Identical scores for a patient's two samples gave per-group AUC 0.0 (the worst)."""
    from biodl.kinds.cells.experiments import summarize

    d = pd.DataFrame(
        {
            "group": [1, 1, 2, 2],
            "target": [1, 0, 1, 0],
            "p_cellcnn": [0.5, 0.5, 0.9, 0.1],
            "p_baseline": [np.nan] * 4,
        }
    )
    assert summarize(d)["cellcnn_per_group_auc_mean"] == pytest.approx(0.75)


def test_crossval_reads_the_columns_train_reads_and_takes_a_device(tmp_path):
    """crossval could not read a table whose columns `train` reads (no group_col / label_col /
    file_col), did not name the group columns it looks for, and had no --device."""
    from typer.testing import CliRunner

    from biodl.cli import app

    d = TABLE.parent
    t = tmp_path / "cols.csv"
    rows = [("patient1_Reference_500.fcs", "Ref", 1), ("patient1_BCR-XL_500.fcs", "BCRXL", 1)]
    rows += [("patient2_Reference_500.fcs", "Ref", 2), ("patient2_BCR-XL_500.fcs", "BCRXL", 2)]
    t.write_text("fcs,condition,individual\n" + "".join(f"{d / f},{c},{g}\n" for f, c, g in rows))
    base = ["cells", "crossval", str(t), "--out", str(tmp_path / "cv")]
    r = CliRunner().invoke(app, [*base, "--set", "file_col=fcs", "--set", "label_col=condition"])
    assert r.exit_code == 2 and "--set group_col=NAME" in " ".join(r.output.split()), r.output
    r = CliRunner().invoke(app, [*base, "--device", "cuda:7", "--set", "file_col=fcs"])
    assert r.exit_code == 2 and "--device cuda:7" in r.output
    small = ["nrun=1", "ncell=20", "nsubset=8", "max_epochs=1", "file_col=fcs", "label_col=condition"]
    args = [*base, "--device", "cpu", *[x for s in [*small, "group_col=individual"] for x in ("--set", s)]]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert len(pd.read_csv(tmp_path / "cv" / "predictions.tsv", sep="\t")) == 4


def test_an_fcs_file_is_known_by_its_bytes(tmp_path):
    """A Beckman .lmd or a file without extension was read as a sample table (the error printed
    kilobytes of its binary data)."""
    import shutil

    from typer.testing import CliRunner

    from biodl.cli import app

    lmd = tmp_path / "sample01.lmd"
    shutil.copy(FCS, lmd)
    with pytest.raises(BiodlInputError, match="is an FCS file, not a sample table"):
        read_sample_table(lmd)
    run = tmp_path / "run"
    r = CliRunner().invoke(
        app,
        [
            "train",
            "--system",
            "cellcnn",
            "--samples",
            str(TABLE),
            "--out",
            str(run),
            "--epochs",
            "1",
            "--set",
            "nrun=1",
            "--set",
            "ncell=20",
            "--set",
            "nsubset=8",
            "--set",
            "report=false",
        ],
    )
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["predict", str(run), str(lmd), "--out", str(tmp_path / "p.tsv")])
    assert r.exit_code == 0, r.output
    assert len(pd.read_csv(tmp_path / "p.tsv", sep="\t")) == 1


def test_flow_channels_sharing_a_marker_name_and_files_with_other_panels(tmp_path):
    """FACSDiva's FITC-A and FITC-H both called CD3: the default markers refused their own pick
    ('CD3' is ambiguous) and a model trained on FITC-A stored 'CD3', unreadable on its own files.
    A marker missing from the first file only was dropped from every sample, silently."""
    import flowio

    from biodl.kinds.cells.io import load_samples

    rng = np.random.default_rng(0)
    pnn = ["FSC-A", "FITC-A", "FITC-H", "PE-A", "PE-H", "Time"]
    pns = ["", "CD3", "CD3", "CD4", "CD4", ""]
    rows = []
    for k, lab in enumerate(["ctrl", "stim"]):
        ev = np.abs(rng.normal(1000, 300, size=(60, len(pnn)))).astype(np.float32)
        with open(tmp_path / f"s{k}.fcs", "wb") as fh:
            flowio.create_fcs(fh, ev.ravel().tolist(), pnn, opt_channel_names=pns)
        rows.append(f"s{k}.fcs,{lab}")
    (tmp_path / "t.csv").write_text("file,label\n" + "\n".join(rows) + "\n")
    ss = load_samples(tmp_path / "t.csv", cofactor=150)
    assert ss.markers == ["FSC-A", "FITC-A", "FITC-H", "PE-A", "PE-H"]
    assert load_samples(tmp_path / "t.csv", markers=ss.markers, cofactor=150).markers == ss.markers
    # a panel the first file lacks: refused whichever file comes first
    ev = np.abs(rng.normal(1000, 300, size=(60, 4))).astype(np.float32)
    with open(tmp_path / "short.fcs", "wb") as fh:
        flowio.create_fcs(
            fh, ev.ravel().tolist(), ["FSC-A", "FITC-A", "FITC-H", "Time"], opt_channel_names=pns[:3] + [""]
        )
    (tmp_path / "a.csv").write_text(f"file,label\nshort.fcs,ctrl\n{rows[1]}\n")
    (tmp_path / "b.csv").write_text(f"file,label\n{rows[1]}\nshort.fcs,ctrl\n")
    with pytest.raises(
        BiodlInputError, match="has marker channels the first file \\(short.fcs\\) lacks: PE-A, PE-H"
    ):
        load_samples(tmp_path / "a.csv", cofactor=150)
    with pytest.raises(BiodlInputError, match="short.fcs: unknown marker"):
        load_samples(tmp_path / "b.csv", cofactor=150)
