"""Molecules: featurisation, atom-order invariance, invalid SMILES, CLI train/evaluate/predict,
substructures (neural graph fingerprints, Duvenaud et al. 2015)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from rdkit import Chem
from typer.testing import CliRunner

from biodl.cli import app
from biodl.errors import BiodlInputError
from biodl.kinds.molecules.featurize import (
    ATOM_FDIM,
    BOND_FDIM,
    GraphBatch,
    collate_molecules,
    mol_to_graph,
    morgan_fingerprints,
)
from biodl.kinds.molecules.io import parse_smiles, read_molecules
from biodl.models.neural_fp import CircularFPNet, NeuralFPNet
from biodl.train import load_model

DATA = Path(__file__).parent / "data" / "molecules"
DELANEY = DATA / "delaney_150.csv"
INVALID = DATA / "delaney_invalid.csv"
SDF = DATA / "solubility_test_20.sdf"
TARGET = "measured log solubility in mols per litre"
runner = CliRunner()


def test_featurisation_shapes():
    mol = Chem.MolFromSmiles("c1ccccc1O")  # phenol: 7 heavy atoms, 7 bonds
    g = mol_to_graph(mol)
    assert g.atoms.shape == (7, ATOM_FDIM) and ATOM_FDIM == 62
    assert g.bonds.shape == (7, BOND_FDIM) and g.edges.shape == (7, 2)
    assert g.degree.tolist() == [a.GetDegree() for a in mol.GetAtoms()]
    # every atom has exactly one element, one degree, one H count, one valence slot
    assert (g.atoms[:, :44].sum(1) == 1).all() and (g.atoms[:, 44:50].sum(1) == 1).all()
    assert g.atoms[:6, -1].tolist() == [1] * 6 and g.atoms[6, -1] == 0  # aromatic ring, OH not
    assert g.bonds[:, 3].sum() == 6 and g.bonds[:, 5].sum() == 6 and g.bonds[:, 0].sum() == 1  # ring + C-O
    batch, y = collate_molecules(
        [(g, torch.zeros(1)), (mol_to_graph(Chem.MolFromSmiles("CCO")), torch.ones(1))]
    )
    assert isinstance(batch, GraphBatch) and batch.n_mols == 2 and batch.atoms.shape == (10, 62)
    assert batch.edge_index.shape == (2, 9) and y.shape == (2, 1)
    assert (batch.degree[1:] >= batch.degree[:-1]).all()  # sorted by degree
    out = NeuralFPNet(1, fp_length=16, conv_width=8, hidden=8, radius=2).eval()(batch)
    assert out.shape == (2, 1)
    fp = morgan_fingerprints([mol], radius=2, n_bits=64)
    assert fp.shape == (1, 64) and set(np.unique(fp)) <= {0, 1}
    assert CircularFPNet(3, fp_length=64).eval()(torch.from_numpy(fp).float()).shape == (1, 3)


def _fingerprint(net: NeuralFPNet, mols) -> torch.Tensor:
    batch = GraphBatch.from_graphs([mol_to_graph(m) for m in mols])
    with torch.no_grad():
        return net.fingerprint(batch)


@pytest.mark.parametrize(
    "smiles", ["CC(=O)Oc1ccccc1C(=O)O", "OCC3OC(OCC2OC(OC(C#N)c1ccccc1)C(O)C(O)C2O)C(O)C(O)C3O"]
)
def test_fingerprint_invariant_to_atom_order(smiles):
    torch.manual_seed(0)
    net = NeuralFPNet(1, fp_length=32, conv_width=16, radius=3)
    # give the batch norms non-trivial running statistics, then evaluate
    net.train()
    _fingerprint(net, [Chem.MolFromSmiles(s) for s in ("CCO", "c1ccncc1", smiles)])
    net.eval()
    mol = Chem.MolFromSmiles(smiles)
    rng = np.random.default_rng(1)
    renumbered = Chem.RenumberAtoms(mol, [int(i) for i in rng.permutation(mol.GetNumAtoms())])
    random_smiles = Chem.MolFromSmiles(Chem.MolToSmiles(mol, doRandom=True, canonical=False))
    ref = _fingerprint(net, [mol])
    for other in (renumbered, random_smiles):
        assert torch.allclose(_fingerprint(net, [other]), ref, atol=1e-5)
    # and the fingerprint of a molecule does not depend on the others in the batch
    both = _fingerprint(net, [Chem.MolFromSmiles("CCN"), renumbered])
    assert torch.allclose(both[1:], ref, atol=1e-5)


def test_invalid_smiles_reported_with_line_and_reason():
    mol, reason = parse_smiles("CC(C")
    assert mol is None and "parenthes" in reason
    mol, reason = parse_smiles("N(C)(C)(C)(C)C")
    assert mol is None and "valence" in reason.lower()
    with pytest.raises(BiodlInputError) as e:
        read_molecules(INVALID, target=TARGET)
    msg = str(e.value)
    assert "delaney_invalid.csv, line 4" in msg and "2 invalid" in msg and "skip_invalid" in msg
    t = read_molecules(INVALID, target=TARGET, skip_invalid=True)
    assert len(t) == 10 and [b.line for b in t.invalid] == [4, 9]
    with pytest.raises(BiodlInputError, match="no target column 'nope'"):
        read_molecules(DELANEY, target="nope")


def test_sdf_reading():
    t = read_molecules(SDF, target="SOL")
    assert len(t) == 20 and t.targets.shape == (20, 1) and not np.isnan(t.targets).any()
    assert t.ids[0] == "3-methylpentane"


def test_header_less_smiles_files(tmp_path):
    """Header-less .smi / .smiles files (one 'SMILES' or 'SMILES name' per line, as RDKit's
    SmilesMolSupplier reads them) keep every molecule; headed .smi files still work."""
    import gzip

    bare = tmp_path / "bare.smi"
    bare.write_text("CCO\nc1ccccc1\nCC(=O)O\n")
    t = read_molecules(bare, require_targets=False)
    assert t.smiles == ["CCO", "c1ccccc1", "CC(=O)O"] and t.ids == ["1", "2", "3"] and t.lines == [1, 2, 3]
    named = tmp_path / "named.smiles"
    named.write_text(
        "OCC3OC(OCC2OC(OC(C#N)c1ccccc1)C(O)C(O)C2O)C(O)C(O)C3O  Amigdalin\n\nCCO ethyl alcohol\n"
    )
    t = read_molecules(named, require_targets=False)
    assert t.ids == ["Amigdalin", "ethyl alcohol"] and t.lines == [1, 3] and len(t) == 2
    tabbed = tmp_path / "tabbed.smi.gz"
    with gzip.open(tabbed, "wt") as fh:
        fh.write("CCO\tethanol\nc1ccccc1\tbenzene\n")
    t = read_molecules(tabbed, require_targets=False)
    assert t.smiles == ["CCO", "c1ccccc1"] and t.ids == ["ethanol", "benzene"]
    headed = tmp_path / "headed.smi"
    headed.write_text("smiles name\nCCO ethanol\nc1ccccc1 benzene\n")
    t = read_molecules(headed, require_targets=False)
    assert t.smiles == ["CCO", "c1ccccc1"] and t.ids == ["ethanol", "benzene"] and t.lines == [2, 3]
    bad = tmp_path / "bad.smi"
    bad.write_text("CCO a\nCC(C b\n")
    with pytest.raises(BiodlInputError, match=r"bad.smi, line 2: invalid SMILES 'CC\(C'"):
        read_molecules(bad, require_targets=False)
    with pytest.raises(BiodlInputError, match="no header line"):
        read_molecules(bare, target="SOL")


def test_sdf_errors_name_the_record_and_its_line(tmp_path, capsys):
    from biodl.kinds.molecules.kind import read_table

    lines = SDF.read_text().splitlines(keepends=True)
    sol = [i for i, s in enumerate(lines) if s.startswith("> <SOL>")][5]  # record 6's SOL header
    lines[sol + 1] = "insoluble\n"
    broken = tmp_path / "broken.sdf"
    broken.write_text("".join(lines))
    with pytest.raises(BiodlInputError) as e:
        read_molecules(broken, target="SOL")
    msg = str(e.value)
    want = "record 6 ('cycloheptatriene', line 160): target 'SOL' is not a number: 'insoluble'"
    assert f"{want} (on line {sol + 2})" in msg
    assert "line 6:" not in msg and e.value.record == 6
    lines = SDF.read_text().splitlines(keepends=True)
    lines[69] = "  X  Y  0  0\n"  # record 3's counts line: RDKit cannot read the record
    broken2 = tmp_path / "broken2.sdf"
    broken2.write_text("".join(lines).replace("\n", "\r\n"))
    with pytest.raises(
        BiodlInputError, match=r"broken2.sdf: record 3 \('1-pentene', line 67\): invalid molecule"
    ):
        read_molecules(broken2, target="SOL")
    t = read_table(broken2, {"skip_invalid": True}, "SOL", True, quiet=False)
    assert len(t) == 19 and t.invalid[0].line == 3
    assert (
        "(first: record 3 ('1-pentene', line 67): RDKit cannot parse its mol block" in capsys.readouterr().err
    )
    # a record that parses but breaks chemistry: RDKit's own reason (C4 with a triple and a double bond)
    lines = SDF.read_text().splitlines(keepends=True)
    assert lines[77] == "  3  4  1  0\n"
    lines[77] = "  3  4  3  0\n"
    broken3 = tmp_path / "broken3.sdf"
    broken3.write_text("".join(lines))
    with pytest.raises(BiodlInputError) as e:
        read_molecules(broken3, target="SOL")
    assert "record 3 ('1-pentene', line 67)" in str(e.value)
    assert "Explicit valence for atom # 3 C, 5, is greater than permitted" in str(e.value)


def test_cli_train_evaluate_predict(tmp_path):
    run = tmp_path / "run"
    args = ["train", "--system", "neural-fp", "--data", str(DELANEY), "--target", TARGET, "--out", str(run)]
    tiny = ["--epochs", "2", "--no-progress", "-m", "fp_length=16", "-m", "conv_width=8", "-m", "radius=2"]
    r = runner.invoke(app, args + tiny)
    assert r.exit_code == 0, r.output
    summary = json.loads((run / "summary.json").read_text())
    assert summary["n_test"] == 15 and summary["n_train"] + summary["n_valid"] == 135
    assert np.isfinite(summary["test_metrics"]["mse"])
    assert (run / "checkpoints" / "last.ckpt").exists() and (run / "history.csv").exists()
    # the run report: metrics, learning curves, predicted vs observed, substructure pictures
    assert (run / "test" / "scatter.png").stat().st_size > 1000
    html = (run / "report.html").read_text()
    assert "Substructures that activate fingerprint bits" in html and "Learning curves" in html
    assert html.count("data:image/png;base64,") >= 4  # curves, scatter, 2 bit pictures
    assert summary["report"] == str(run / "report.html")
    (run / "report.html").unlink()
    r = runner.invoke(app, ["report", str(run)])  # dispatches to the molecule report
    assert r.exit_code == 0, r.output
    assert "Substructures" in (run / "report.html").read_text()

    r = runner.invoke(app, ["evaluate", str(run), str(DELANEY), "--out", str(tmp_path / "ev")])
    assert r.exit_code == 0, r.output
    assert {"mse", "rmse", "pearson", "r2"} <= set(json.loads(r.stdout))

    out = tmp_path / "p.tsv"
    r = runner.invoke(app, ["predict", str(run), str(INVALID), "--out", str(out), "--skip-invalid"])
    assert r.exit_code == 0, r.output
    p = pd.read_csv(out, sep="\t")
    src = pd.read_csv(INVALID)
    assert p["id"].tolist() == src["Compound ID"].tolist()  # input order and identifiers kept
    assert p["pred_" + TARGET].isna().tolist() == [i in (2, 7) for i in range(12)]
    assert "valence" in p.loc[7, "problem"].lower()
    # ... and says so on standard error: how many, the first reasons, where the reasons are
    err = " ".join(r.stderr.split())
    assert "[biodl] note: 2 of 12 molecule(s) in" in err and "could not be read and are left unscored" in err
    assert "'problem' column): line 4: SMILES parse error" in err and "; line 9: Explicit valence" in err

    r = runner.invoke(app, ["predict", str(run), str(INVALID)])
    assert r.exit_code == 2 and "line 4" in r.output

    r = runner.invoke(app, ["molecules", "substructures", str(run), str(DELANEY), "--top", "3"])
    assert r.exit_code == 0, r.output
    sub = run / "substructures"
    assert (sub / "substructures.html").exists() and len(list(sub.glob("bit*.png"))) == 2
    (sub / "bit12.png").write_bytes(b"earlier")  # as an earlier --bits 12 left it
    first = {p.name for p in sub.glob("bit*.png")}
    (sub / "bitmap.png").write_bytes(b"mine")  # not a name biodl writes: left alone
    (sub / "bit4.png.txt").write_text("mine")
    r = runner.invoke(
        app, ["molecules", "substructures", str(run), str(DELANEY), "--top", "3", "--bits", "3,5"]
    )
    assert r.exit_code == 0, r.output
    # one call's pictures only: those of the earlier bits are removed (and named), other files kept
    assert {p.name for p in sub.glob("bit*.png")} == {"bit3.png", "bit5.png", "bitmap.png"}
    assert (sub / "bit4.png.txt").exists()
    gone = sorted(first - {"bit3.png", "bit5.png"}, key=lambda n: int(n[3:-4]))
    assert f"[biodl] note: removed {len(gone)} picture(s)" in r.stderr and ", ".join(gone) in r.stderr
    tsv = pd.read_csv(sub / "substructures.tsv", sep="\t")
    assert set(tsv["bit"]) == {3, 5} and tsv["score"].notna().all()  # chosen bits are scored too
    from biodl.kinds.molecules.interpret import bit_scores
    from biodl.kinds.molecules.io import read_molecules as read

    model, _ = load_model(run)
    want = bit_scores(model, read(DELANEY, target=TARGET).mols)[[3, 5]]
    got = tsv.groupby("bit")["score"].first().to_numpy()
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)
    r = runner.invoke(app, ["molecules", "substructures", str(run), str(DELANEY), "--bits", "3,16"])
    assert r.exit_code == 2 and "bit(s) 16 out of range: the fingerprint has 16 bits (0 to 15)" in r.output
    assert (sub / "bit3.png").exists() and (sub / "bit5.png").exists()  # refused before any change
    r = runner.invoke(app, ["molecules", "substructures", str(run), "--bits", "3,x"])
    assert r.exit_code == 2 and "--bits takes bit numbers separated by commas" in r.output


def test_remove_stale_pictures_touches_only_bit_pictures(tmp_path, capsys):
    from biodl.kinds.molecules.interpret import remove_stale_pictures

    for name in (
        "bit1.png",
        "bit4.png",
        "bit99.png",
        "bitx.png",
        "bit4.jpg",
        "mybit4.png",
        "substructures.tsv",
    ):
        (tmp_path / name).write_text("x")
    (tmp_path / "bit7.png").mkdir()
    assert remove_stale_pictures(tmp_path, [1]) == ["bit4.png", "bit99.png"]
    left = {"bit1.png", "bitx.png", "bit4.jpg", "mybit4.png", "substructures.tsv", "bit7.png"}
    assert {p.name for p in tmp_path.iterdir()} == left
    assert "removed 2 picture(s) of bits an earlier call drew from" in capsys.readouterr().err


def test_cli_circular_baseline_and_skip_invalid(tmp_path):
    run = tmp_path / "circ"
    args = ["train", "--system", "circular-fp", "--data", str(INVALID), "--target", TARGET, "--out", str(run)]
    r = runner.invoke(app, args + ["--epochs", "2", "--no-progress", "-m", "fp_length=64"])
    assert r.exit_code == 2 and "line 4" in r.output and "--skip-invalid" in r.output
    r = runner.invoke(app, args + ["--epochs", "2", "--no-progress", "-m", "fp_length=64", "--skip-invalid"])
    assert r.exit_code == 0, r.output
    assert "dropped 2 invalid molecule(s) of 12" in " ".join(r.output.split())
    summary = json.loads((run / "summary.json").read_text())
    assert summary["n_invalid"] == 2 and summary["n_train"] + summary["n_valid"] + summary["n_test"] == 10
    # the Python-style option still works, and evaluation skips the same rows
    r = runner.invoke(app, ["evaluate", str(run), str(INVALID), "--set", "skip_invalid=true"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["evaluate", str(run), str(INVALID)])
    assert r.exit_code == 2 and "line 4" in r.output


def test_skip_invalid_is_refused_for_sequence_files(tmp_path):
    f = tmp_path / "s.tsv"
    f.write_text("seq\tlabel\nACGTACGTAC\t1\nTTTTACGTAA\t0\n")
    r = runner.invoke(app, ["train", str(f), "--out", str(tmp_path / "r"), "--skip-invalid"])
    assert r.exit_code == 2 and "does not take --skip-invalid (molecule data only" in " ".join(
        r.output.split()
    )


def test_help_examples():
    for cmd in (["molecules", "substructures"], ["molecules"]):
        r = runner.invoke(app, [*cmd, "--help"])
        assert r.exit_code == 0
    r = runner.invoke(app, ["molecules", "substructures", "--help"])
    assert "Example: biodl molecules substructures" in r.output


def test_no_single_molecule_training_batch():
    from biodl.kinds.molecules.data import MoleculeDataset
    from biodl.kinds.molecules.featurize import collate_molecules

    ds = MoleculeDataset(np.zeros((11, 8), np.float32), np.zeros((11, 1), np.float32))
    from biodl.train import DataModule

    dm = DataModule(ds, ds, batch_size=10, collate_fn=collate_molecules)
    assert [len(y) for _, y in dm.train_dataloader()] == [10]
    # evaluation keeps every item (no batch dropped), in batches of 4 x the training batch
    assert [len(y) for _, y in dm.val_dataloader()] == [11]
    dm = DataModule(ds, ds, batch_size=2, collate_fn=collate_molecules)
    assert [len(y) for _, y in dm.val_dataloader()] == [8, 3]


def test_cli_search_then_refit_on_train_and_validation(tmp_path):
    """--set search_trials=N: N configurations scored on validation, the best refitted on
    train + validation; -m options stay fixed; the search is in search.tsv and the report."""
    run = tmp_path / "s"
    args = ["train", "--system", "neural-fp", "--data", str(DELANEY), "--target", TARGET, "--out", str(run)]
    r = runner.invoke(
        app, args + ["--epochs", "2", "--no-progress", "--set", "search_trials=3", "-m", "radius=2"]
    )
    assert r.exit_code == 0, r.output
    table = pd.read_csv(run / "search.tsv", sep="\t")
    assert len(table) == 3 and table["chosen"].sum() == 1 and "radius" not in table
    best = table.loc[table["final val_loss"].idxmin()]
    assert bool(best["chosen"])
    s = json.loads((run / "summary.json").read_text())
    assert s["search"]["trial"] == int(best["trial"]) and s["n_fit"] == s["n_train"] + s["n_valid"]
    _, meta = load_model(run / "model.pt")
    mk = meta.model_kwargs
    assert (
        mk["radius"] == 2
        and mk["fp_length"] == int(best["fp_length"])
        and mk["hidden"] == int(best["hidden"])
    )
    assert np.isfinite(s["test_metrics"]["mse"])
    assert "Hyperparameter search" in (run / "report.html").read_text()
    for t in range(3):
        assert (run / "search" / f"trial{t}" / "history.csv").exists()


def test_cli_ensemble_of_molecule_networks(tmp_path):
    """`--ensemble 2` on molecules: one model file whose prediction is the members' mean; the
    report draws member 1's fingerprint bits and says so."""
    from biodl.kinds.molecules.data import MoleculeDataset, predict_molecules
    from biodl.kinds.molecules.featurize import mols_to_graphs
    from biodl.train.ensemble import Ensemble

    run = tmp_path / "ens"
    args = ["train", "--system", "neural-fp", "--data", str(DELANEY), "--target", TARGET, "--out", str(run)]
    tiny = ["--epochs", "2", "--no-progress", "-m", "fp_length=16", "-m", "conv_width=8", "-m", "radius=2"]
    r = runner.invoke(app, [*args, *tiny, "--ensemble", "2"])
    assert r.exit_code == 0, r.output
    assert (run / "member1" / "history.csv").exists() and (run / "member2" / "history.csv").exists()
    meta_json = json.loads((run / "run.json").read_text())
    assert meta_json["ensemble"] == 2 and "val_mse" in meta_json["metrics"]["val"]
    model, meta = load_model(run)
    assert isinstance(model, Ensemble) and model.size == 2
    table = read_molecules(DELANEY, target=TARGET)
    ds = MoleculeDataset(mols_to_graphs(table.mols[:20]), table.targets[:20])
    both = [predict_molecules(m.eval(), ds) for m in model.members]
    assert not np.allclose(both[0], both[1])  # two seeds, two networks
    np.testing.assert_allclose(predict_molecules(model, ds), (both[0] + both[1]) / 2, rtol=1e-5, atol=1e-5)
    html = (run / "report.html").read_text()
    assert "Substructures that activate fingerprint bits" in html and "ensemble of 2" in html
    out = tmp_path / "p.tsv"
    r = runner.invoke(app, ["predict", str(run), str(DELANEY), "--out", str(out)])
    assert r.exit_code == 0, r.output
    p = pd.read_csv(out, sep="\t")
    full = MoleculeDataset(mols_to_graphs(table.mols), table.targets)
    expected = predict_molecules(model, full)[:, 0]
    np.testing.assert_allclose(p["pred_" + TARGET], expected, rtol=1e-4, atol=1e-4)


def test_truncated_sdf_and_gzip_are_refused(tmp_path):
    import gzip

    text = SDF.read_bytes()
    half = tmp_path / "half.sdf.gz"
    half.write_bytes(gzip.compress(text)[:1500])  # the gzip stream cut short
    with pytest.raises(BiodlInputError, match=r"half.sdf.gz: the file is truncated or corrupt"):
        read_molecules(half, target="SOL")
    # an SDF cut inside its 6th record's data items: refused, not scored with a cut property
    for name, data in (("cut.sdf", text[:3000]), ("cut.sdf.gz", gzip.compress(text[:3000]))):
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(BiodlInputError) as e:
            read_molecules(p, target="SOL")
        assert str(e.value).startswith(
            f"{p}: record 6 ('cycloheptatriene', line 160): the last record has no"
        )
        assert "truncated" in str(e.value) and e.value.record == 6
    # a complete SDF (trailing blank lines too) and a single mol file (no $$$$) read as before
    full = tmp_path / "full.sdf"
    full.write_bytes(text + b"\n\n")
    assert len(read_molecules(full, target="SOL")) == 20
    first = text[: text.index(b"M  END") + len(b"M  END\n")]
    mol = tmp_path / "one.mol"
    mol.write_bytes(first)
    t = read_molecules(mol, require_targets=False)
    assert len(t) == 1 and t.ids == ["3-methylpentane"]


def test_substructures_refuse_counts_below_one(tmp_path, monkeypatch):
    for flag in ("--n-bits", "--top", "--max-molecules"):
        r = runner.invoke(app, ["molecules", "substructures", str(tmp_path), flag, "0"])
        assert r.exit_code == 2 and f"{flag} must be at least 1, got 0" in r.output, r.output
    from biodl.kinds.molecules import interpret

    monkeypatch.setattr(
        interpret, "bit_scores", lambda model, mols, output=0: np.array([0.5, -1.0, 2.0, 0.1])
    )
    bits = [b for b, _ in interpret.select_bits(None, [], 10)]  # more bits than the fingerprint has
    assert sorted(bits) == [0, 1, 2, 3]
    assert [b for b, _ in interpret.select_bits(None, [], 2)] == [2, 1]


def test_semicolon_csv_and_decimal_commas(tmp_path):
    want = read_molecules(DELANEY, target=TARGET)
    semi = tmp_path / "semi.csv"
    pd.read_csv(DELANEY, dtype=str, keep_default_na=False).to_csv(semi, sep=";", index=False)
    got = read_molecules(semi, target=TARGET)
    assert got.ids == want.ids and got.smiles == want.smiles
    np.testing.assert_array_equal(got.targets, want.targets)
    comma = tmp_path / "comma.csv"
    comma.write_text("id;smiles;logS\na;CCO;-0,5\n")
    with pytest.raises(
        BiodlInputError, match=r"comma.csv, line 2: target 'logS' is not a number: '-0,5' \(a decimal comma"
    ):
        read_molecules(comma, target="logS")


def test_multi_target_regression_rmse_is_the_mean_of_the_targets_rmse():
    """rmse was sqrt(mean of the targets' MSE) -- neither the targets' mean RMSE (chemprop's) nor a
    pooled one -- and no target's own number was given (the means follow the largest scale)."""
    from types import SimpleNamespace

    from sklearn.metrics import mean_squared_error, r2_score

    from biodl.kinds import get_kind

    rng = np.random.default_rng(0)
    t = np.stack([rng.normal(0, 1, 50), rng.normal(100, 30, 50)], 1).astype(np.float32)
    out = (t + rng.normal(0, [0.5, 10.0], (50, 2))).astype(np.float32)
    t[:3, 1] = np.nan  # a missing label is left out of its target's numbers
    meta = SimpleNamespace(task="regression", label_names=["logS", "mw"], classes=None)
    m = get_kind("molecules").metrics(meta, out, t, None)
    ok = ~np.isnan(t[:, 1])
    rm = [mean_squared_error(t[:, 0], out[:, 0]) ** 0.5, mean_squared_error(t[ok, 1], out[ok, 1]) ** 0.5]
    assert m["rmse"] == pytest.approx(np.mean(rm), rel=1e-5)
    assert m["rmse/logS"] == pytest.approx(rm[0], rel=1e-5) and m["rmse/mw"] == pytest.approx(rm[1], rel=1e-5)
    assert m["r2/mw"] == pytest.approx(r2_score(t[ok, 1], out[ok, 1]), rel=1e-5)


def test_predict_reads_a_smiles_table_in_pieces(tmp_path, capfd):
    """A table of SMILES was read whole: RDKit keeps ~17 KB a molecule (210,000 took 5 GiB).
    Pieces of valid molecules give the whole file's predictions (invalid rows in place), one note
    on the unreadable rows and one warning on repeated ids over the file, and refuse an invalid
    SMILES without --skip-invalid with the file's count."""
    from biodl import pipeline

    run = tmp_path / "run"
    r = runner.invoke(
        app,
        ["train", "--system", "neural-fp", "--data", str(DELANEY), "--target", TARGET, "--out", str(run),
         "--epochs", "1", "--no-progress", "-m", "fp_length=16", "-m", "conv_width=8", "-m", "radius=2"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    src = pd.read_csv(INVALID)
    src.loc[10, "Compound ID"] = src.loc[0, "Compound ID"]  # a repeated id, pieces apart
    data = tmp_path / "mols.csv"
    src.to_csv(data, index=False)
    capfd.readouterr()
    opts = {"skip_invalid": True}
    kw = dict(options=opts, batch_size=1, quiet=True)  # (pieces are whole batches: of 1 here)
    whole = pipeline.predict(run, data, out=tmp_path / "w.tsv", rows=1000, **kw)
    err_whole = capfd.readouterr().err
    pieces = pipeline.predict(run, data, out=tmp_path / "p.tsv", rows=3, **kw)
    err = " ".join(capfd.readouterr().err.split())
    pd.testing.assert_frame_equal(whole, pieces)
    assert (tmp_path / "w.tsv").read_bytes() == (tmp_path / "p.tsv").read_bytes()
    assert pieces["problem"].fillna("").ne("").tolist() == [i in (2, 7) for i in range(12)]
    assert err.count("[biodl] note: 2 of 12 molecule(s)") == 1 and "line 4: SMILES parse error" in err
    assert err.count("occur more than once") == 1 and err.count("occur more than once") == " ".join(
        err_whole.split()
    ).count("occur more than once")
    with pytest.raises(BiodlInputError, match=r"line 4.*\(2 invalid molecules in total\)"):
        pipeline.predict(run, data, out=tmp_path / "x.tsv", rows=2, batch_size=1, quiet=True)
    assert not (tmp_path / "x.tsv").exists()


def test_a_search_that_chooses_anew_refits_from_scratch(tmp_path):
    """A search extended with more --epochs may choose another trial; the refit resumed the old
    winner's checkpoint (its weights trained on under the new winner's settings, or of other
    shapes the run could not resume). A refit of the same trial (killed midway) resumes."""
    from types import SimpleNamespace

    from biodl.kinds.molecules.kind import _refit_afresh_if_another_trial

    said = []
    ctx = SimpleNamespace(out=tmp_path, log=said.append)
    first = {"trial": 0, "train_options": {"lr": 1e-3}}
    _refit_afresh_if_another_trial(ctx, first, {"hidden": 64})
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"weights of trial 1")
    _refit_afresh_if_another_trial(ctx, first, {"hidden": 64})  # the same: resumed
    assert (tmp_path / "checkpoints" / "last.ckpt").exists() and not said
    _refit_afresh_if_another_trial(ctx, {"trial": 2, "train_options": {"lr": 1e-2}}, {"hidden": 128})
    assert not (tmp_path / "checkpoints" / "last.ckpt").exists()
    assert said == [
        "the search chose trial 3 (the final model was trained with trial 1): its refit starts from scratch"
    ]


def test_line_numbers_count_blank_lines(tmp_path):
    """Every line named after a blank line was the line above the culprit (pandas skips blank
    lines; the line was the row number + 2): --skip-invalid named a valid molecule."""
    p = tmp_path / "salts.csv"
    p.write_text(
        "Name,SMILES,logS\nbenzene,c1ccccc1,-1.6\n\ntoluene,Cc1ccccc1,-2.2\nbroken,C1CC(,-1\n\nethanol,CCO,x\n"
    )
    with pytest.raises(BiodlInputError, match=r"salts.csv, line 7: .*'x'"):
        read_molecules(p, target="logS")
    p.write_text(p.read_text().replace(",x\n", ",1.1\n"))
    t = read_molecules(p, target="logS", skip_invalid=True)
    assert [b.line for b in t.invalid] == [5] and len(t) == 3


def test_chembl_tdc_and_pubchem_columns_are_found(tmp_path, capsys):
    """ChEMBL's molecule_chembl_id, TDC's Drug_ID / Drug and PubChem's CID / CanonicalSMILES were
    not found: predictions numbered the rows and the user's ids were gone, without a word."""
    p = tmp_path / "chembl.csv"
    p.write_text("molecule_chembl_id,canonical_smiles,pIC50\nCHEMBL25,CCO,5.1\nCHEMBL26,c1ccccc1,6.0\n")
    assert read_molecules(p, require_targets=False).ids == ["CHEMBL25", "CHEMBL26"]
    (tmp_path / "tdc.csv").write_text("Drug_ID,Drug,Y\nD1,CCO,1.0\nD2,c1ccccc1,2.0\n")
    assert read_molecules(tmp_path / "tdc.csv", require_targets=False).ids == ["D1", "D2"]
    (tmp_path / "pc.csv").write_text("CID,CanonicalSMILES\n702,CCO\n241,c1ccccc1\n")
    assert read_molecules(tmp_path / "pc.csv", require_targets=False).ids == ["702", "241"]
    # ids that are not found are said, with the option that names them
    (tmp_path / "other.csv").write_text("smiles,vendor_code,y\nCCO,V-1,1\nCCC,V-2,2\n")
    capsys.readouterr()
    assert read_molecules(tmp_path / "other.csv", target="y").ids == ["1", "2"]
    assert "--set id_col=NAME (e.g. 'vendor_code')" in capsys.readouterr().err


def test_a_molecule_scores_the_same_however_its_hydrogens_are_written(tmp_path):
    """CC[C@@H](C)CO, CC[CH](C)CO and CCC(C)CO got three predictions (the implicit-valence feature
    was 0 for a bracket H, 1 for an implicit one): the same compound scored by its source's notation.
    A model trained before (no implicit_h in its kwargs) reads them as it was trained."""
    from biodl.kinds.molecules.featurize import hydrogens_implicit, mol_to_graph

    same = ["CCC(C)CO", "CC[C@@H](C)CO", "CC[C@H](C)CO", "CC[CH](C)CO"]
    graphs = [mol_to_graph(Chem.MolFromSmiles(s)).atoms for s in same]
    assert all(np.array_equal(graphs[0], g) for g in graphs[1:])
    old = [mol_to_graph(Chem.MolFromSmiles(s), implicit_h=False).atoms for s in same]
    assert not np.array_equal(old[0], old[1])  # as written: what older models were trained on
    # a hydrogen only a bracket gives (pyrrole's [nH]) is kept, charged atoms keep their count
    for smi in ("c1cc[nH]c1", "[NH4+]", "C[N+](C)(C)C", "CC(=O)[O-]"):
        m = Chem.MolFromSmiles(smi)
        made = hydrogens_implicit(m)
        assert [a.GetTotalNumHs() for a in m.GetAtoms()] == [a.GetTotalNumHs() for a in made.GetAtoms()]
    run = tmp_path / "nfp"
    args = ["train", "--system", "neural-fp", "--data", str(DELANEY), "--target", TARGET, "--out", str(run)]
    r = runner.invoke(app, [*args, "--epochs", "1", "--no-progress", "-m", "fp_length=16"])
    assert r.exit_code == 0, r.output
    assert json.loads((run / "run.json").read_text())["model_kwargs"]["implicit_h"] is True
    (tmp_path / "s.csv").write_text("id,smiles\n" + "".join(f"m{i},{s}\n" for i, s in enumerate(same)))
    r = runner.invoke(app, ["predict", str(run), str(tmp_path / "s.csv"), "--out", str(tmp_path / "p.tsv")])
    assert r.exit_code == 0, r.output
    p = pd.read_csv(tmp_path / "p.tsv", sep="\t").iloc[:, -1].to_numpy()
    assert np.ptp(p) == 0, p


def test_an_infinite_target_is_refused_by_its_line(tmp_path):
    """inf and 1e39 (inf once float32) were refused after featurising, without file, line or
    molecule; 1e39 was called inf after a numpy overflow warning."""
    p = tmp_path / "t.csv"
    for v, said in (("inf", "is infinite"), ("1e39", "is beyond float32's range")):
        p.write_text(f"smiles,y\nCCO,1.0\nCCC,{v}\n")
        with pytest.raises(BiodlInputError, match=rf"t.csv, line 3: target 'y': {v} {said}"):
            read_molecules(p, target="y")
