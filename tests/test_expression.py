"""Expression systems: readers and their error cases, ADAGE (tied weights, masking
corruption, published model from the CLI), D-GEX vs its linear baseline on a real slice."""

from __future__ import annotations

import gzip
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from biodl.cli import app
from biodl.errors import BiodlInputError
from biodl.kinds.expression.adage import (
    ANR_GENES,
    activities,
    enrichment,
    load_published,
    read_network,
    signature_sets,
    signatures,
    write_network,
)
from biodl.kinds.expression.dgex import (
    LinearBaseline,
    dgex_predict,
    mae_per_target,
    split_landmarks,
    train_dgex,
)
from biodl.kinds.expression.io import read_expression, read_gene_list, read_gene_sets
from biodl.kinds.expression.training import fit_adage
from biodl.models.adage import ADAGE, DenoisingAutoencoder, high_weight_genes
from biodl.train import TrainConfig, seed_all

DATA = Path(__file__).parent / "data" / "expression"
ANR = DATA / "Anr-gene.r4.pcl.gz"
BLADDER = DATA / "bladder_dgex_slice.csv.gz"
LANDMARKS = DATA / "landmarks100.txt"
PBMC = DATA / "pbmc_slice.h5ad"
runner = CliRunner()


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


# ----------------------------------------------------------------------------- readers
def test_read_pcl_gz_h5ad_gct(tmp_path):
    m = read_expression(ANR)
    assert m.shape == (6, 5549) and m.genes[0] == "PA0001" and m.samples[0].startswith("anr1")
    h = read_expression(PBMC)
    assert h.shape == (70, 120) and "bulk_labels" in h.obs
    gct = _write(
        tmp_path,
        "x.gct",
        "#1.3\n2\t3\t1\t1\nid\tsymbol\tS1\tS2\tS3\ncell\tna\tA375\tA375\tA375\n"
        "200814_at\tPSME1\t1\t2\t3\n222103_at\tATF1\t4\t5\t6\n",
    )
    g = read_expression(gct)
    assert g.genes == ["200814_at", "222103_at"] and g.values.shape == (3, 2) and g.values[2, 1] == 6
    assert g.obs.loc["S1", "cell"] == "A375"


def test_orientation_auto_and_explicit(tmp_path):
    csv = _write(tmp_path, "t.csv", "sample,PA0001,PA0002,PA0003\nGSM1.CEL,1,2,3\nGSM2.CEL,4,5,6\n")
    m = read_expression(csv)  # auto: columns look like genes
    assert m.genes == ["PA0001", "PA0002", "PA0003"] and m.samples == ["GSM1.CEL", "GSM2.CEL"]
    m2 = read_expression(csv, orientation="samples-x-genes")
    assert np.array_equal(m.values, m2.values)
    with pytest.raises(BiodlInputError, match="transposed"):
        read_expression(csv, orientation="genes-x-samples")
    with pytest.raises(BiodlInputError, match="orientation must be"):
        read_expression(csv, orientation="sideways")


@pytest.mark.parametrize(
    ("text", "match", "line"),
    [
        ("gene\tS1\tS2\nPA0001\t1\tabc\nPA0002\t3\t4\n", "column 3.*non-numeric value 'abc'", 2),
        ("gene\tS1\tS2\nPA0001\t1\t2\nPA0002\tNA\t4\n", "column 2.*missing value", 3),
        ("gene\tS1\tS2\nPA0001\t1\t2\nPA0002\t3\tinf\n", "infinite value", 3),
        ("gene\tS1\tS2\nPA0001\t1\t2\nPA0002\t3\t1e400\n", "column 3.*infinite value", 3),
        ("gene\tS1\tS2\nPA0001\t1\t2\nPA0002\t3\t1e39\n", "column 3.*1e\\+39 is beyond float32", 3),
        ("gene\tS1\tS2\nPA0001\t1\t2\nPA0002\tNA\t-1e39\n", "column 3.*-1e\\+39 is beyond float32", 3),
        ("gene\tS1\tS2\nPA0001\t1\t2\nPA0002\t3\nPA0003\t5\t6\n", "2 fields, expected 3", 3),
        ("gene\tS1\tS2\nPA0001\t1\t2\nPA0001\t3\t4\n", "duplicate gene identifier 'PA0001'", 3),
        ("gene\tS1\tS2\nPA0001\t1\t2\n\t3\t4\n", "empty gene identifier", 3),
        ("gene\tS1\tS2\nPA0001\t1\t2\nPA0002\t3\t4\t5\n", "4 fields, expected 3", 3),
        ("gene\tS1\tS2\nPA0001\t1\t2\n\nPA0002\t3\t4\n", "blank line", 3),
    ],
)
def test_reader_errors_name_file_line_column(tmp_path, text, match, line):
    p = _write(tmp_path, "bad.pcl", text)
    with pytest.raises(BiodlInputError, match=match) as e:
        read_expression(p)
    assert e.value.path == str(p) and e.value.record == line
    assert f"bad.pcl, line {line}:" in str(e.value)


def test_reader_missing_and_duplicate_options(tmp_path):
    p = _write(tmp_path, "m.tsv", "gene\tS1\tS2\nPA0001\t1\t\nPA0001\t3\t5\n")
    m = read_expression(p, orientation="genes-x-samples", missing="gene-mean", duplicates="mean")
    assert m.genes == ["PA0001"] and m.values[:, 0].tolist() == [2.0, 3.0]
    gz = tmp_path / "m.csv.gz"
    with gzip.open(gz, "wt") as fh:
        fh.write("id,S1\n1007_s_at,1.5\n")
    assert read_expression(gz, orientation="genes-x-samples").values.tolist() == [[1.5]]
    # a spreadsheet export named .csv but separated by tabs (or semicolons) is read as such
    for sep in ("\t", ";"):
        p = _write(tmp_path, "export.csv", f"id{sep}S1{sep}S2\n1007_s_at{sep}1.5{sep}2\n")
        m = read_expression(p, orientation="genes-x-samples")
        assert m.samples == ["S1", "S2"] and m.values.tolist() == [[1.5], [2.0]]


def test_gene_sets_formats(tmp_path):
    kegg = _write(tmp_path, "k.txt", "KEGG-Pathway-pae00072: Ketone bodies\t3\tPA2553;PA2000;PA2011\n")
    assert read_gene_sets(kegg) == {"KEGG-Pathway-pae00072: Ketone bodies": ["PA2553", "PA2000", "PA2011"]}
    op = _write(tmp_path, "op.txt", "PA0001\tPA0002\tPA0003\nPA0005\tPA0006\n")
    assert read_gene_sets(op) == {
        "operon_1": ["PA0001", "PA0002", "PA0003"],
        "operon_2": ["PA0005", "PA0006"],
    }
    gmt = _write(tmp_path, "s.gmt", "SET_A\tdesc\tCD3E\tCD8A\n")
    assert read_gene_sets(gmt) == {"SET_A": ["CD3E", "CD8A"]}
    # one gene per line: one gene list, named by the file (it was read as one-gene operons)
    glist = _write(tmp_path, "anr_genes.txt", "PA0001\nPA0002\n\nPA0003\n")
    assert read_gene_sets(glist) == {"anr_genes": ["PA0001", "PA0002", "PA0003"]}
    assert len(read_gene_list(LANDMARKS)) == 100


def test_gct_12_dimension_line_needs_two_numbers(tmp_path):
    p = _write(tmp_path, "one.gct", "#1.2\n2\nName\tDescription\tS1\nPA0001\tna\t1\nPA0002\tna\t2\n")
    with pytest.raises(BiodlInputError, match="GCT 1.2 dimension line needs 2 numbers.*found 1") as e:
        read_expression(p)
    assert e.value.path == str(p) and e.value.record == 2


def test_missing_value_error_advises_the_accepted_option(tmp_path):
    p = _write(tmp_path, "na.tsv", "gene\tS1\tS2\nPA0001\t1\t2\nPA0002\tNA\t4\n")
    with pytest.raises(BiodlInputError, match="use missing=gene-mean to impute") as e:
        read_expression(p)
    assert "row-mean" not in str(e.value)
    assert read_expression(p, missing="gene-mean").values[:, 1].tolist() == [4.0, 4.0]  # PA0002 mean
    with pytest.raises(BiodlInputError, match="missing must be 'error' or 'gene-mean', not 'row-mean'"):
        read_expression(p, missing="row-mean")


def _anndata(tmp_path: Path, var: list[str], obs: list[str]) -> Path:
    import anndata

    x = np.arange(len(obs) * len(var), dtype=np.float32).reshape(len(obs), len(var))
    p = tmp_path / "x.h5ad"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # anndata warns about the non-unique names
        anndata.AnnData(x, obs=pd.DataFrame(index=obs), var=pd.DataFrame(index=var)).write_h5ad(p)
    return p


def test_h5ad_duplicate_var_names_merge_or_name_the_var_index(tmp_path):
    p = _anndata(tmp_path, ["CD3E", "CD8A", "CD3E"], ["c1", "c2"])
    with pytest.raises(
        BiodlInputError, match="var index 2: duplicate gene.*'CD3E'.*first at var index 0"
    ) as e:
        read_expression(p)
    assert "line" not in str(e.value)
    m = read_expression(p, duplicates="mean")
    assert m.genes == ["CD3E", "CD8A"] and m.values.tolist() == [[1.0, 1.0], [4.0, 4.0]]
    first = read_expression(p, duplicates="first")
    assert first.genes == ["CD3E", "CD8A"] and first.values.tolist() == [[0.0, 1.0], [3.0, 4.0]]
    cells = _anndata(tmp_path, ["CD3E", "CD8A"], ["c1", "c1"])
    with pytest.raises(BiodlInputError, match="obs index 1: duplicate cell.*'c1'") as e:
        read_expression(cells, duplicates="mean")
    assert "duplicates=" not in str(e.value)


@pytest.mark.parametrize(
    ("name", "text", "orientation", "where"),
    [
        ("g.tsv", "gene\tGSM1\tGSM1\nPA0001\t1\t2\nPA0002\t3\t4\n", "genes-x-samples", "line 1: column 3"),
        ("s.tsv", "sample\tPA0001\tPA0002\nGSM1\t1\t2\nGSM1\t3\t4\n", "samples-x-genes", "line 3"),
        ("x.gct", "#1.2\n1\t2\nName\tDescription\tS1\tS1\nPA0001\tna\t1\t2\n", "auto", "line 3: column 4"),
    ],
)
def test_duplicate_sample_names_are_refused_in_both_orientations(tmp_path, name, text, orientation, where):
    p = _write(tmp_path, name, text)
    with pytest.raises(BiodlInputError, match="duplicate sample identifier") as e:
        read_expression(p, orientation=orientation, duplicates="mean")
    assert f"{name}, {where}:" in str(e.value) and "duplicates=" not in str(e.value)


# ----------------------------------------------------------------------------- ADAGE
def test_tied_weights_and_masking_corruption():
    torch.manual_seed(0)
    dae = DenoisingAutoencoder(40, 5, corruption=0.3)
    names = {n for n, _ in dae.named_parameters()}
    assert names == {"weight", "hidden_bias", "visible_bias"}  # no separate decoder matrix
    x = torch.rand(200, 40) + 0.1
    h = dae.encode(x)
    assert torch.allclose(dae.decode_logits(h), h @ dae.weight.t() + dae.visible_bias)
    xc = dae.corrupt(x, torch.Generator().manual_seed(1))
    zeroed = (xc == 0).float().mean().item()
    assert 0.25 < zeroed < 0.35  # masking noise: ~30 % set to 0, the rest unchanged
    assert torch.equal(xc[xc != 0], x[xc != 0])
    dae.eval()
    assert torch.equal(dae(x), dae(x))  # no corruption at inference
    # gradients of encoder and decoder land on the same matrix
    dae.train()
    loss = torch.nn.functional.binary_cross_entropy_with_logits(dae(x.clamp(0, 1)), x.clamp(0, 1))
    loss.backward()
    assert dae.weight.grad is not None and dae.weight.grad.abs().sum() > 0


def test_adage_scaling_stacked_and_training(tmp_path):
    m = read_expression(PBMC)
    x = torch.from_numpy(m.values)
    model = ADAGE(m.shape[1], nodes=[8, 4], corruption=0.1)
    model.fit_scaling(x)
    s = model.scale(x)
    assert (
        s.min() >= 0
        and s.max() <= 1
        and torch.allclose(s.max(0).values[s.max(0).values > 0], torch.tensor(1.0))
    )
    assert model.activities(x).shape == (70, 4) and model.gene_weights().shape == (120, 8)
    out = tmp_path / "run"
    r = runner.invoke(
        app,
        [
            "train",
            "--system",
            "adage",
            "--data",
            str(PBMC),
            "--out",
            str(out),
            "--set",
            "nodes=6",
            "--set",
            "corruption=0.1",
            "--epochs",
            "3",
            "--batch-size",
            "16",
            "--no-progress",
            "--device",
            "cpu",
        ],
    )
    assert r.exit_code == 0, r.output
    assert (out / "model.pt").exists() and (out / "signatures.tsv").exists()
    r = runner.invoke(app, ["adage", "activities", str(out), str(PBMC)])
    assert r.exit_code == 0, r.output
    act = pd.read_csv(pd.io.common.StringIO(r.stdout), sep="\t", index_col=0)
    assert act.shape == (70, 6) and ((act >= 0) & (act <= 1)).all().all()
    r = runner.invoke(app, ["adage", "signatures", str(out), "--sd", "1.5"])
    assert r.exit_code == 0 and "Node1" in r.stdout
    # `biodl report` on an ADAGE run writes the expression report (it once wrote the sequence one)
    r = runner.invoke(app, ["report", str(out)])
    assert r.exit_code == 0, r.output
    html = (out / "report.html").read_text()
    assert "Node signatures" in html and "expression matrices" in html and "Learning curves" in html
    assert "sequence length" not in html and "First-layer filters" not in html


def test_published_network_roundtrip(tmp_path):
    model, genes = load_published()
    assert model.gene_weights().shape == (5549, 50) and len(genes) == 5549 and genes[0] == "PA0001"
    p = write_network(model, tmp_path / "net.txt")
    again = read_network(p)
    assert np.allclose(again[0].weight, model.gene_weights().numpy(), atol=1e-7)
    bad = _write(tmp_path, "bad.txt", "layer 1 \nweight matrix \n0.1\t0.2\n0.3\tx\nhidden bias vector \n")
    with pytest.raises(BiodlInputError, match="line 4.*non-numeric value 'x'"):
        read_network(bad)


def test_published_model_anr_node():
    """The node whose signature holds the Anr regulon is lower in the anr mutants (paper)."""
    model, genes = load_published()
    sig = signatures(model.gene_weights(), genes, 2.5)
    enr = enrichment(signature_sets(sig), {"anr": read_gene_list(ANR_GENES)}, genes)
    assert enr.iloc[0]["signature"] == "Node42pos" and enr.iloc[0]["q"] < 1e-20
    act = activities(model, genes, read_expression(ANR), scale="global", raw=True)
    anr = act.index.str.startswith("anr")
    assert act.loc[anr, "Node42"].max() < act.loc[~anr, "Node42"].min()
    hw = high_weight_genes(model.gene_weights(), 2.5)
    assert len(hw) == 50 and all(len(p) + len(n) > 20 for p, n in hw)


def test_published_model_from_cli(tmp_path):
    out = tmp_path / "anr.tsv"
    r = runner.invoke(
        app, ["adage", "activities", "published", str(ANR), "--raw", "--groups", "anr,WT", "--out", str(out)]
    )
    assert r.exit_code == 0, r.output
    act = pd.read_csv(out, sep="\t", index_col=0)
    assert act.shape == (6, 50) and list(act.columns[:2]) == ["Node1", "Node2"]
    before = out.read_bytes()
    for groups, msg in (
        ("anr,anr", "--groups names 'anr' twice"),
        ("anr,xyz", "no sample name contains 'xyz'"),
    ):
        cmd = ["adage", "activities", "published", str(ANR), "--groups", groups, "--out", str(out)]
        r = runner.invoke(app, cmd)
        assert r.exit_code == 2 and msg in r.output, r.output
    assert out.read_bytes() == before  # refused before anything was written
    r = runner.invoke(app, ["adage", "signatures", "published", "--node", "Node42"])
    assert r.exit_code == 0 and "PA1557" in r.stdout  # ccoN2, an Anr-regulated cbb3 oxidase subunit
    run = tmp_path / "adage50"
    r = runner.invoke(app, ["adage", "load-published", "--out", str(run)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["predict", str(run), str(ANR), "--set", "scale=global", "--set", "raw=true"])
    assert r.exit_code == 0, r.output
    pred = pd.read_csv(pd.io.common.StringIO(r.stdout), sep="\t", index_col=0)
    assert np.allclose(pred.values, act.values, rtol=1e-4, atol=1e-3)
    r = runner.invoke(app, ["adage", "activities", "published", str(LANDMARKS)])
    assert r.exit_code == 2 and "error" in r.output


def test_activities_cli_missing_and_duplicates_options(tmp_path):
    lines = gzip.open(ANR, "rt").read().splitlines()
    cells = lines[3].split("\t")
    cells[-1] = "NA"
    lines[3] = "\t".join(cells)
    lines.insert(5, lines[4])  # a gene repeated
    p = _write(tmp_path, "anr_na_dup.pcl", "\n".join(lines) + "\n")
    r = runner.invoke(app, ["adage", "activities", "published", str(p)])
    assert r.exit_code == 2 and "missing value" in r.output and "gene-mean" in r.output
    r = runner.invoke(app, ["adage", "activities", "published", str(p), "--missing", "gene-mean"])
    assert r.exit_code == 2 and "duplicate gene" in r.output
    out = tmp_path / "act.tsv"
    args = ["--missing", "gene-mean", "--duplicates", "first", "--out", str(out)]
    r = runner.invoke(app, ["adage", "activities", "published", str(p), *args, "--reference", str(p)])
    assert r.exit_code == 0, r.output
    assert pd.read_csv(out, sep="\t", index_col=0).shape == (6, 50)
    r = runner.invoke(app, ["adage", "activities", "published", str(p), "--duplicates", "sum"])
    assert r.exit_code == 2 and "--duplicates must be one of error, mean, first" in r.output


def test_enrichment_without_overlap_warns_and_writes_an_empty_table(tmp_path):
    model, genes = load_published()
    sig = signature_sets(signatures(model.gene_weights(), genes, 2.5))
    enr = enrichment(sig, {"human": ["CD3E", "CD8A", "CD4"]}, genes)
    assert enr.empty and enr["significant"].dtype == bool and enr[enr["significant"]].empty
    gmt = _write(tmp_path, "human.gmt", "T_CELL\tdesc\tCD3E\tCD8A\tCD4\nB_CELL\tdesc\tCD19\tMS4A1\tCD79A\n")
    r = runner.invoke(app, ["adage", "enrichment", "published", str(gmt)])
    assert r.exit_code == 0, r.output
    assert "0 of 2 gene sets overlap the model's genes (at least 3)" in r.output
    assert "signature\tgene_set" in r.output


@pytest.mark.parametrize(
    "cmd",
    [["adage", "activities"], ["adage", "signatures"], ["adage", "enrichment"], ["adage", "load-published"]],
)
def test_adage_help_has_example(cmd):
    r = runner.invoke(app, [*cmd, "--help"])
    assert r.exit_code == 0 and "Example: biodl" in r.output


# ----------------------------------------------------------------------------- D-GEX
def test_dgex_vs_linear_on_real_slice(tmp_path):
    """D-GEX on 100 real landmark probes -> 60 target probes of the bladder arrays: it learns
    (much better than predicting the mean) and is in the range of least squares."""
    m = read_expression(BLADDER, orientation="genes-x-samples")
    x, y, lm, tg = split_landmarks(m, read_gene_list(LANDMARKS))
    assert x.shape == (57, 100) and y.shape == (57, 60)
    rng = np.random.default_rng(0)
    te = rng.permutation(57)[:12]
    tr = np.setdiff1d(np.arange(57), te)
    lr = mae_per_target(LinearBaseline(alpha=10.0).fit(x[tr], y[tr]).predict(x[te]), y[te]).mean()
    mean = np.abs(y[te] - y[tr].mean(0)).mean()
    cfg = TrainConfig(
        max_epochs=60, patience=0, batch_size=16, lr=1e-3, device="cpu", progress=False, resume=False
    )
    torch.set_num_threads(1)
    model, info = train_dgex(x[tr], y[tr], cfg, dict(hidden=128, layers=1, dropout=0.1), valid_fraction=0.1)
    dg = mae_per_target(dgex_predict(model, x[te]), y[te]).mean()
    print(f"MAE: D-GEX {dg:.4f}, ridge LR {lr:.4f}, mean {mean:.4f}")
    assert info["n_train"] + info["n_valid"] == 45 and dg < 0.8 * mean and dg < 1.5 * lr


def test_dgex_named_targets_missing_from_the_data_are_refused():
    m = read_expression(BLADDER, orientation="genes-x-samples")
    lm = read_gene_list(LANDMARKS)
    targets = [g for g in m.genes if g not in set(lm)][:5]
    _, y, _, tg = split_landmarks(m, lm, targets)
    assert tg == targets and y.shape == (57, 5)
    with pytest.raises(BiodlInputError, match=r"3 of 8 target genes are not in the data \(first: FAKE1_at"):
        split_landmarks(m, lm, [*targets, "FAKE1_at", "FAKE2_at", "FAKE3_at"])


def test_dgex_cli_train_predict(tmp_path):
    out = tmp_path / "dgex"
    r = runner.invoke(
        app,
        [
            "train",
            "--system",
            "dgex",
            "--data",
            str(BLADDER),
            "--out",
            str(out),
            "--set",
            f"landmarks={LANDMARKS}",
            "--set",
            "orientation=genes-x-samples",
            "-m",
            "hidden=64",
            "--epochs",
            "3",
            "--no-progress",
            "--device",
            "cpu",
        ],
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["predict", str(out), str(BLADDER), "--set", "orientation=genes-x-samples"])
    assert r.exit_code == 0, r.output
    pred = pd.read_csv(pd.io.common.StringIO(r.stdout), sep="\t", index_col=0)
    assert pred.shape == (57, 60)
    r = runner.invoke(app, ["evaluate", str(out), str(BLADDER), "--set", "orientation=genes-x-samples"])
    assert r.exit_code == 0 and '"mae"' in r.output
    r = runner.invoke(
        app, ["train", "--system", "dgex", "--data", str(BLADDER), "--out", str(out / "x"), "--no-progress"]
    )
    assert r.exit_code == 2 and "landmarks" in r.output


def test_fit_adage_checkpoint_every_and_final_epoch(tmp_path):
    """ADAGE with checkpoints every 2 epochs: with a validation set the weights kept are those
    of the checkpointed epoch of lowest val_loss (the epoch reported); without one, the final
    epoch's, even when an earlier epoch had a lower training loss."""
    x = torch.from_numpy(read_expression(PBMC).values)
    model = ADAGE(x.shape[1], nodes=6)
    model.fit_scaling(x)
    s = model.scale(x)
    cfg = TrainConfig(
        max_epochs=7, patience=0, batch_size=16, lr=0.05, device="cpu", progress=False, resume=False
    )
    cfg.checkpoint_every = 2
    (info,) = fit_adage(model, s[:56], s[56:], tmp_path / "v", cfg, optimizer="adam")
    hist = pd.read_csv(tmp_path / "v" / "history.csv")
    assert list(hist["epoch"]) == list(range(7))
    cand = hist[hist["epoch"].isin([1, 3, 5])]
    assert info.best_epoch == int(cand.loc[cand["val_loss"].idxmin(), "epoch"])
    best = torch.load(tmp_path / "v" / "checkpoints" / "best.ckpt", weights_only=True)
    assert best["global_step"] == (info.best_epoch + 1) * 4  # 56 samples, batch 16
    assert torch.equal(model.layers[0].weight, best["state_dict"]["model.layers.0.weight"])
    last = torch.load(tmp_path / "v" / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 7 * 4  # written after the final epoch, which is not a multiple of 2
    # best.ckpt is read for its weights only; the optimizer state (for resuming) is in last.ckpt
    assert "optimizer_states" not in best and last["optimizer_states"]

    # uniform noise and a large step: the training loss does not fall every epoch
    seed_all(0)
    noise = torch.rand(64, 30)
    model2 = ADAGE(30, nodes=4)
    cfg = TrainConfig(
        max_epochs=9, patience=0, batch_size=16, lr=0.5, device="cpu", progress=False, resume=False
    )
    cfg.checkpoint_every = 2
    (info,) = fit_adage(model2, noise, None, tmp_path / "t", cfg, optimizer="sgd")
    hist = pd.read_csv(tmp_path / "t" / "history.csv")
    assert hist["train_loss"].idxmin() != 8  # premise
    last = torch.load(tmp_path / "t" / "checkpoints" / "last.ckpt", weights_only=True)
    assert info.best_epoch == 8 and last["global_step"] == 9 * 4
    assert torch.equal(model2.layers[0].weight, last["state_dict"]["model.layers.0.weight"])


def _wide_arrays(n_samples: int = 40, n_genes: int = 3000, seed: int = 0) -> torch.Tensor:
    """Bladder-like wide microarray matrix (log2 scale): the 160 real probes of the bladder slice,
    each repeated with independent probe noise, plus a low-rank sample effect."""
    rng = np.random.default_rng(seed)
    real = pd.read_csv(BLADDER, index_col=0).to_numpy().T[:n_samples]  # (samples, 160 probes)
    reps = -(-n_genes // real.shape[1])
    x = np.tile(real, reps)[:, :n_genes] + rng.normal(0, 0.3, (n_samples, n_genes))
    x += rng.normal(0, 1, (n_samples, 3)) @ rng.normal(0, 0.3, (3, n_genes))
    return torch.from_numpy(x.astype(np.float32))


def test_adage_fan_in_keeps_wide_inputs_unsaturated(tmp_path):
    """On 3000 un-centred 0-1 inputs the published parametrization saturates every node after a
    few Adam epochs; the fan-in one (inputs centred on the *training* mean, scaled by
    g / sqrt(genes)) does not, the per-gene scaling and the centre come from the training samples
    only, and the network file written reproduces the activities."""
    x = _wide_arrays()
    train, valid = x[:32], x[32:]
    cfg = TrainConfig(
        max_epochs=4, patience=0, batch_size=8, lr=1e-2, device="cpu", progress=False, resume=False
    )
    cfg.checkpoint_every = 4
    saturated = {}
    for spec in ("adage", "fan-in"):
        seed_all(0)
        model = ADAGE(x.shape[1], nodes=10, parametrization=spec, fan_in_scale=0.1)
        model.fit_scaling(train)
        assert torch.equal(model.input_min, train.min(0).values)  # fitted on training samples only
        s_tr, s_va = model.scale(train), model.scale(valid)
        fit_adage(model, s_tr, s_va, tmp_path / spec, cfg, optimizer="adam")
        a = model.activities(train)
        saturated[spec] = float(((a < 0.01) | (a > 0.99)).float().mean())
        keys = set(model.state_dict())
        if spec == "adage":
            assert "layers.0.center" not in keys  # models saved before the option load unchanged
            continue
        # the centre is the training mean of the scaled inputs, never the validation samples'
        assert torch.allclose(model.layers[0].center, s_tr.mean(0))
        assert not torch.allclose(model.layers[0].center, torch.cat([s_tr, s_va]).mean(0))
        # the network file holds the equivalent published-form encoder
        write_network(model, tmp_path / "net.txt.gz")
        from biodl.kinds.expression.adage import model_from_network

        back = model_from_network(read_network(tmp_path / "net.txt.gz"))
        assert back.parametrization == "adage"
        assert torch.allclose(back.encode(s_va), model.encode(s_va), atol=1e-4)
    assert saturated["adage"] > 0.9, saturated
    assert saturated["fan-in"] < 0.2, saturated
    with pytest.raises(ValueError, match="parametrization"):
        ADAGE(10, 3, parametrization="centred")


def test_adage_refuses_too_few_samples_before_training(tmp_path):
    from biodl import pipeline

    lines = gzip.open(ANR, "rt").read().splitlines()
    one = _write(tmp_path, "anr_1s.pcl", "\n".join("\t".join(ln.split("\t")[:2]) for ln in lines) + "\n")
    cfg = TrainConfig(max_epochs=1, device="cpu", progress=False)
    with pytest.raises(BiodlInputError, match=r"anr_1s.pcl: too few samples to train: 1 training samples"):
        pipeline.train("adage", tmp_path / "run", options={"data": one}, config=cfg, quiet=True)
    assert not (tmp_path / "run" / "model.pt").exists()
    r = runner.invoke(app, ["train", "--system", "adage", "--data", str(one), "--out", str(tmp_path / "r2")])
    assert r.exit_code == 2 and "too few samples to train" in r.output, r.output


def test_adage_signature_cutoff_must_be_non_negative():
    w = torch.randn(20, 3)
    genes = [f"g{i}" for i in range(20)]
    assert len(signatures(w, genes, 0.0)) == 20 * 3  # every gene is on one side or the other
    for bad in (-1.0, float("nan")):
        with pytest.raises(BiodlInputError, match=r"--sd\) must be a number >= 0"):
            signatures(w, genes, bad)
    for cmd in (["signatures", "published"], ["enrichment", "published", str(ANR_GENES)]):
        r = runner.invoke(app, ["adage", *cmd, "--sd", "-1"])
        assert r.exit_code == 2 and "must be a number >= 0 of standard deviations, got -1" in r.output, (
            r.output
        )


def test_activities_say_how_many_model_genes_are_filled(tmp_path):
    lines = gzip.open(ANR, "rt").read().splitlines()
    two = _write(tmp_path, "two.pcl", "\n".join(lines[:3]) + "\n")
    r = runner.invoke(app, ["adage", "activities", "published", str(two), "--missing-genes", "0"])
    assert r.exit_code == 0, r.output
    err = " ".join(r.stderr.split())
    assert "two.pcl: 5547 of the model's 5549 genes are missing" in err and "set to 0" in err
    assert "mostly reflect the fill value" in err
    none = _write(tmp_path, "none.pcl", "\n".join([lines[0]] + ["X" + ln for ln in lines[1:3]]) + "\n")
    r = runner.invoke(app, ["adage", "activities", "published", str(none), "--missing-genes", "0"])
    assert r.exit_code == 2 and "none of the model's 5549 genes is in the data" in " ".join(r.output.split())
    r = runner.invoke(app, ["adage", "activities", "published", str(two), "--missing-genes", "nan"])
    assert r.exit_code == 2 and "must be a finite number" in r.output
    r = runner.invoke(app, ["adage", "activities", "published", str(two)])  # the default: an error
    assert r.exit_code == 2 and "5547 of 5549 model genes are not in the matrix" in " ".join(r.output.split())


def test_a_pipe_is_refused_clearly_not_seeked(tmp_path):
    import os

    r, w = os.pipe()
    try:
        os.write(w, b"gene\ts1\ts2\nPA0001\t1\t2\nPA0002\t3\t4\n")
        os.close(w)
        with pytest.raises(BiodlInputError, match="pipe") as e:
            read_expression(f"/dev/fd/{r}")
        assert f"/dev/fd/{r}" in str(e.value)
    finally:
        os.close(r)


def test_a_numeric_matrix_is_read_as_numbers_and_gives_the_text_readers_matrix(tmp_path):
    """Matrices were read as one Python string per cell (~80 bytes: a 235 MB PCL took 3.7 GiB in
    predict, 1.4 GiB now); a matrix of numbers is read as numbers, anything else (a missing value,
    text) still cell by cell with its line named, and both give the same matrix."""
    from biodl.kinds.expression import io as xio

    pcl = tmp_path / "m.pcl"
    pcl.write_text(
        "ID\tNAME\tGWEIGHT\ts1\ts2\ts3\nEWEIGHT\t\t\t1\t1\t1\n"
        'g1\tone\t1\t0.5\t-1.25\t3e-2\ng2\ttwo\t1\t2\t"4.5"\t-0.0\n'
    )
    r_csv = tmp_path / "r.csv"  # R's write.table: no label for the id column
    r_csv.write_text('"s1","s2"\n"g1",1.5,2\n"g2",3,4.25\n"g3",0,1\n')
    for f in (pcl, r_csv):
        fast = xio._read_numeric_matrix(f)
        assert fast is not None, f
        text = xio._read_text_matrix(f, "genes-x-samples", None, "error")
        assert fast[2] == text[2] and list(fast[3]) == list(text[4])  # ids, lines
        np.testing.assert_array_equal(fast[4].astype(np.float32), text[6])
        m = xio.read_table_matrix(f, orientation="genes-x-samples")
        np.testing.assert_array_equal(m.values.T, text[6])
    gap = tmp_path / "gap.csv"
    gap.write_text("id,s1,s2\ng1,1,NA\ng2,2,3\n")
    assert xio._read_numeric_matrix(gap) is None  # read by the text reader: its message names the cell
    with pytest.raises(BiodlInputError, match=r"gap.csv, line 2.*missing value"):
        xio.read_table_matrix(gap, orientation="genes-x-samples")


def test_gene_mean_has_no_mean_for_a_gene_without_values(tmp_path):
    """missing=gene-mean filled a gene with no value at all with zeros (and a numpy warning)."""
    (tmp_path / "m.csv").write_text("gene,s1,s2,s3\ng1,1,2,3\ng2,,,\ng3,4,,6\n")
    with pytest.raises(BiodlInputError, match="gene 'g2' has no value at all"):
        read_expression(tmp_path / "m.csv", orientation="genes-x-samples", missing="gene-mean")
    (tmp_path / "ok.csv").write_text("gene,s1,s2,s3\ng1,1,2,3\ng3,4,,6\n")
    m = read_expression(tmp_path / "ok.csv", orientation="genes-x-samples", missing="gene-mean")
    assert m.values[1, 1] == 5.0  # g3's gap: its mean


def test_write_table_honours_csv_and_gz(tmp_path):
    import gzip

    from biodl.kinds.expression.io import write_table

    df = pd.DataFrame({"a": [1.5, 2.0]}, index=pd.Index(["s1", "s2"]))
    write_table(df, tmp_path / "t.csv.gz")
    with gzip.open(tmp_path / "t.csv.gz", "rt") as fh:
        assert fh.read() == "sample,a\ns1,1.5\ns2,2\n"
    # a float32 value keeps every digit it has (6 significant digits wrote 1000002.75 as 1e+06)
    f32 = pd.DataFrame({"a": np.array([1000002.75, 0.123456789], dtype=np.float32)}, index=["s1", "s2"])
    back = pd.read_csv(write_table(f32, tmp_path / "f.tsv"), sep="\t", index_col=0)
    assert np.array_equal(back["a"].to_numpy(np.float32), f32["a"].to_numpy())


def test_a_separator_ending_each_data_line_is_no_sample(tmp_path):
    """Every data line ending with a tab the header lacks was read as R's write.table layout:
    the id column's name became the first sample and each sample took its neighbour's values
    (with missing=gene-mean, predictions under the wrong ids plus a phantom sample)."""
    from biodl.kinds.expression.io import read_expression

    src = tmp_path / "m.tsv"
    src.write_text("probe\ts1\ts2\ts3\ng1\t1\t2\t3\ng2\t4\t5\t6\n")
    trail = tmp_path / "t.tsv"
    trail.write_text("probe\ts1\ts2\ts3\ng1\t1\t2\t3\t\ng2\t4\t5\t6\t\n")
    g = "genes-x-samples"
    a, b = read_expression(src, g), read_expression(trail, g)
    assert list(b.samples) == list(a.samples) == ["s1", "s2", "s3"]
    np.testing.assert_array_equal(a.values, b.values)
    rlayout = tmp_path / "r.tsv"  # R's write.table: the header has no name for the id column
    rlayout.write_text("s1\ts2\ts3\ng1\t1\t2\t3\ng2\t4\t5\t6\n")
    assert list(read_expression(rlayout, g).samples) == ["s1", "s2", "s3"]


def test_dgex_gene_lists_are_checked():
    """Targets that are also landmarks were dropped without a word (and all-landmark targets
    said 'no target genes in the data'); a comma list kept a gene twice; one id without a comma
    was 'file not found'."""
    from biodl.kinds.expression.dgex import load_gene_list_option, split_landmarks
    from biodl.kinds.expression.io import ExpressionMatrix

    data = ExpressionMatrix(np.zeros((3, 4), np.float32), ["a", "b", "c", "d"], ["s1", "s2", "s3"])
    with pytest.raises(BiodlInputError, match=r"1 of the 2 target genes are also landmark genes \(b\)"):
        split_landmarks(data, ["a", "b"], ["b", "c"])
    assert split_landmarks(data, ["a", "b"], ["c"])[3] == ["c"]
    with pytest.raises(BiodlInputError, match=r"landmarks: 'a' is given twice"):
        load_gene_list_option("a,b,a", "landmarks")
    assert load_gene_list_option("c", "targets") == ["c"]
    with pytest.raises(BiodlInputError, match=r"file 'lm.txt' not found"):
        load_gene_list_option("lm.txt", "landmarks")


def test_an_h5ad_is_read_from_the_matrix_the_model_was_trained_on(tmp_path, capsys):
    """A model trained on --set layer=counts read .X at predict / evaluate (another scale) unless
    the layer was given again: the trained layer is the default for an AnnData input that has it;
    one without it is read from .X, with a warning (it was refused for a layer nobody asked for)."""
    from types import SimpleNamespace

    import anndata as ad

    from biodl.kinds.expression.kind import _trained_matrix

    a = ad.AnnData(X=np.zeros((2, 2), np.float32))
    a.layers["counts"] = np.ones((2, 2), np.float32)
    a.write_h5ad(tmp_path / "c.h5ad")
    ad.AnnData(X=np.zeros((2, 2), np.float32)).write_h5ad(tmp_path / "x.h5ad")
    meta = SimpleNamespace(options={"layer": "counts"})
    assert _trained_matrix(meta, tmp_path / "c.h5ad", {})["layer"] == "counts"
    assert "reading layer 'counts', as the model was trained" in capsys.readouterr().err
    assert _trained_matrix(meta, a, {})["layer"] == "counts"  # in memory too
    assert _trained_matrix(meta, tmp_path / "c.h5ad", {"layer": "X"})["layer"] == "X"  # asked: kept
    assert _trained_matrix(meta, tmp_path / "x.h5ad", {}) == {}
    assert "trained on layer 'counts', which this AnnData lacks: reading .X" in capsys.readouterr().err
    assert _trained_matrix(meta, "x.tsv", {}) == {}  # a text table has no layers


def test_gct_lines_after_a_blank_line_and_an_h5ad_without_x_are_named(tmp_path):
    """A blank line in a GCT made every later error name the line before; an AnnData without .X
    (only layers: legal) was an internal error."""
    import anndata as ad

    from biodl.kinds.expression.io import read_expression

    g = tmp_path / "b.gct"
    g.write_text("#1.2\n2\t2\nName\tDescription\ts1\ts2\ng1\td\t1\t2\n\ng2\td\t3\tabc\n")
    with pytest.raises(BiodlInputError, match=r"b.gct, line 6: .*'abc'"):
        read_expression(g)
    a = ad.AnnData(X=None, obs=pd.DataFrame(index=["c1", "c2"]), var=pd.DataFrame(index=["x", "y"]))
    a.layers["counts"] = np.ones((2, 2), np.float32)
    a.write_h5ad(tmp_path / "n.h5ad")
    with pytest.raises(BiodlInputError, match=r"n.h5ad: the AnnData has no .X: choose a layer .*counts"):
        read_expression(tmp_path / "n.h5ad")
    assert read_expression(tmp_path / "n.h5ad", layer="counts").values.shape == (2, 2)


def test_constant_genes_are_said_and_a_matrix_of_them_is_refused(tmp_path):
    """An autoencoder trained on genes of one value learned a constant, advising more epochs."""
    rng = np.random.default_rng(0)
    genes = [f"PA{i:04d}" for i in range(12)]
    x = rng.random((12, 30)).round(4)
    x[[2, 5]] = 1.0
    text = "gene\t" + "\t".join(f"S{j}" for j in range(30)) + "\n"
    text += "".join(
        g + "\t" + "\t".join(f"{v:g}" for v in row) + "\n" for g, row in zip(genes, x, strict=True)
    )
    some = _write(tmp_path, "some.pcl", text)
    args = ["train", "--system", "adage", "--epochs", "1", "-m", "nodes=2"]
    r = runner.invoke(app, [*args, "--data", str(some), "--out", str(tmp_path / "a")])
    assert r.exit_code == 0, r.output
    assert "2 of 12 genes have one value over the training samples (PA0002, PA0005)" in " ".join(
        r.output.split()
    )
    const = _write(tmp_path, "const.pcl", "gene\tS1\tS2\tS3\nPA0001\t1\t1\t1\nPA0002\t2\t2\t2\n")
    r = runner.invoke(app, [*args, "--data", str(const), "--out", str(tmp_path / "b")])
    assert r.exit_code == 2 and "every one of the 2 genes has one value" in " ".join(r.output.split()), (
        r.output
    )


def test_minmax_scaling_of_values_near_float32s_limit(tmp_path):
    """A gene spanning -3e38 .. 3e38 had an infinite float32 range: every input NaN, blamed on --lr."""
    from biodl.models.adage import ADAGE

    x = torch.tensor([[3e38, 0.5], [-3e38, 0.2], [0.0, 0.9]], dtype=torch.float32)
    m = ADAGE(n_genes=2, nodes=1)
    m.fit_scaling(x)
    assert torch.isfinite(m.scale(x)).all()


def _series_matrix(path, table: str, end: bool = True, begin: bool = True):
    """A GEO series matrix around ``table`` (its ID_REF line and rows), gzip by the name."""
    import gzip

    head = '!Series_title\t"A study"\n!Series_geo_accession\t"GSE1"\n\n!Sample_title\t"a"\t"b"\t"c"\n'
    text = head + ("!series_matrix_table_begin\n" if begin else "") + table
    text += "!series_matrix_table_end\n" if end else ""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wt") as fh:
        fh.write(text)
    return path


def test_a_geo_series_matrix_is_read_from_its_table(tmp_path):
    """GEO's GSE..._series_matrix.txt.gz (metadata lines, then the table between its markers) was
    refused with '58 fields, expected 2' at the !Sample_title line."""
    from biodl.kinds.expression.io import read_expression

    table = '"ID_REF"\t"GSM1"\t"GSM2"\t"GSM3"\n"1007_s_at"\t1.5\t2\t3\n"1053_at"\t4\t5\t6.25\n'
    m = read_expression(_series_matrix(tmp_path / "GSE1_series_matrix.txt.gz", table))
    assert m.samples == ["GSM1", "GSM2", "GSM3"] and m.genes == ["1007_s_at", "1053_at"]
    assert m.values.tolist() == [[1.5, 4.0], [2.0, 5.0], [3.0, 6.25]]
    # a problem in the table names its line in the file (the table starts on line 7)
    bad = table.replace("6.25", "high")
    with pytest.raises(BiodlInputError, match=r"line 8") as e:
        read_expression(_series_matrix(tmp_path / "bad_series_matrix.txt", bad))
    assert "high" in str(e.value)
    gap = table.replace("\t6.25", "\t")
    m = read_expression(_series_matrix(tmp_path / "gap_series_matrix.txt", gap), missing="gene-mean")
    assert m.values[2, 1] == 4.5
    with pytest.raises(BiodlInputError, match="table_end"):
        read_expression(_series_matrix(tmp_path / "cut_series_matrix.txt", table, end=False))
    with pytest.raises(BiodlInputError, match="table_begin"):
        read_expression(_series_matrix(tmp_path / "nobegin_series_matrix.txt", table, begin=False))


def test_auto_orientation_reads_the_id_columns_name_and_says_a_guess(tmp_path, capsys):
    """A cells x genes table of mouse symbols (Actb: no upper-case symbol) with more cells than
    genes was silently transposed: ADAGE trained on the cells as genes."""
    from biodl.kinds.expression.io import read_expression

    rng = np.random.default_rng(0)
    genes = ["Actb", "Hes4", "Cd74", "Lyz2"]
    df = pd.DataFrame(rng.random((6, 4)), index=[f"cell_{i}" for i in range(6)], columns=genes)
    df.to_csv(tmp_path / "cells.csv", index_label="cell")
    m = read_expression(tmp_path / "cells.csv")
    assert m.genes == genes and m.shape == (6, 4)
    df.T.to_csv(tmp_path / "genes.csv", index_label="gene_symbol")
    assert read_expression(tmp_path / "genes.csv").genes == genes
    capsys.readouterr()
    df.to_csv(tmp_path / "plain.csv", index_label="x")  # no evidence at all: the shape, said
    assert read_expression(tmp_path / "plain.csv").shape == (4, 6)
    assert "--set orientation=samples-x-genes" in capsys.readouterr().err


def test_missing_genes_that_differ_by_a_version_suffix_are_said():
    """Ensembl ids with and without '.N' versions: '150 of 150 model genes are not in the matrix;
    is the orientation right?' (for an .h5ad, which has no orientation)."""
    from biodl.kinds.expression.io import ExpressionMatrix

    m = ExpressionMatrix(
        np.zeros((2, 3), np.float32), ["ENSG01", "ENSG02", "ENSG03"], ["a", "b"], source="x.h5ad"
    )
    with pytest.raises(
        BiodlInputError, match=r"version suffix \(the model's 'ENSG01.4', the matrix's 'ENSG01'"
    ):
        m.align_to(["ENSG01.4", "ENSG02.1", "ENSG03.2"])
    with pytest.raises(BiodlInputError, match="same kind") as e:
        m.align_to(["TP53", "ENSG02"])
    assert "orientation" not in str(e.value)  # an AnnData has one orientation
    m.source = "x.tsv"
    with pytest.raises(BiodlInputError, match="orientation right"):
        m.align_to(["TP53", "ENSG02"])


def test_a_10x_matrix_folder_is_read(tmp_path):
    """Cell Ranger's matrix.mtx.gz (with features.tsv.gz, barcodes.tsv.gz) was read as a text
    table: 'line 1: no data columns (only identifiers)'; its folder: 'is a directory'."""
    import gzip

    import scipy.io
    import scipy.sparse as sp

    from biodl.kinds.expression.io import read_expression

    counts = np.array([[0, 3, 1], [2, 0, 0], [5, 1, 0], [0, 0, 4]], dtype=np.float32)  # genes x cells
    d = tmp_path / "filtered_feature_bc_matrix"
    d.mkdir()
    with gzip.open(d / "matrix.mtx.gz", "wb") as fh:
        scipy.io.mmwrite(fh, sp.coo_matrix(counts))
    with gzip.open(d / "features.tsv.gz", "wt") as fh:
        fh.writelines(f"ENSG0{i}\tG{i}\tGene Expression\n" for i in range(4))
    with gzip.open(d / "barcodes.tsv.gz", "wt") as fh:
        fh.writelines(f"AAAC{i}-1\n" for i in range(3))
    for p in (d, d / "matrix.mtx.gz"):
        m = read_expression(p)
        assert m.genes == ["ENSG00", "ENSG01", "ENSG02", "ENSG03"] and m.samples == [
            "AAAC0-1",
            "AAAC1-1",
            "AAAC2-1",
        ]
        assert np.array_equal(m.values, counts.T)
    (d / "barcodes.tsv.gz").unlink()
    with pytest.raises(BiodlInputError, match=r"needs its barcodes.tsv\[.gz\] beside it"):
        read_expression(d)
    # Cell Ranger 2 (plain files, genes.tsv), a dense (array) matrix, GEO's prefixed files
    for name, layout in (("v2", ""), ("geo", "GSM1_")):
        e = tmp_path / name
        e.mkdir()
        mat = counts if name == "v2" else sp.coo_matrix(counts)
        scipy.io.mmwrite(str(e / f"{layout}matrix.mtx"), mat)
        (e / f"{layout}genes.tsv").write_text("".join(f"ENSG0{i}\tG{i}\n" for i in range(4)))
        (e / f"{layout}barcodes.tsv").write_text("".join(f"AAAC{i}-1\n" for i in range(3)))
        assert np.array_equal(read_expression(e).values, counts.T), name
    # beside its gunzipped copy (gunzip -k), or an antibody matrix: the gene matrix is read
    scipy.io.mmwrite(str(tmp_path / "v2" / "adt_matrix.mtx"), sp.coo_matrix(counts[:2]))
    assert np.array_equal(read_expression(tmp_path / "v2").values, counts.T)
    scipy.io.mmwrite(str(tmp_path / "geo" / "GSM2_matrix.mtx"), sp.coo_matrix(counts))
    with pytest.raises(BiodlInputError, match="holds 2 matrices .*give one of them"):
        read_expression(tmp_path / "geo")
