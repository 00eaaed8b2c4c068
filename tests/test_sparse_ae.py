"""The stacked sparse autoencoder (``sparse-ae``, Chen et al. 2016) on a real yeast slice:
training through the engine, the sparsity penalty, seeding, unit responses, and clear errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from biodl import pipeline
from biodl.errors import BiodlInputError
from biodl.kinds.expression.kind import read_data
from biodl.kinds.expression.sparse_ae import (
    fit_sparse_ae,
    layer_activities,
    read_class_labels,
    top_units,
    unit_class_response,
    unit_parents,
)
from biodl.models.sparse_ae import StackedSparseAE, kl_sparsity
from biodl.train import TrainConfig, seed_all

DATA = Path(__file__).parent / "data" / "expression" / "yeast"
EISEN = DATA / "eisen1998_slice_200genes.csv.gz"
BROWN = DATA / "brown2000_slice_40genes.tab"
GENES = {"orientation": "genes-x-samples", "encode": "genes"}


@pytest.fixture(scope="module")
def yeast() -> torch.Tensor:
    m = read_data(EISEN, GENES)
    assert m.shape == (200, 79) and m.samples[0].startswith("Y") and m.genes[0] == "alpha_0"
    return torch.from_numpy(m.values)


def _config(seed: int = 0, epochs: int = 4) -> TrainConfig:
    return TrainConfig(
        max_epochs=epochs,
        patience=0,
        batch_size=50,
        lr=0.01,
        weight_decay=1e-4,
        seed=seed,
        device="cpu",
        progress=False,
    )


def _untrained(x: torch.Tensor, seed: int = 0, **kw) -> StackedSparseAE:
    seed_all(seed)
    model = StackedSparseAE(x.shape[1], **{"nodes": [12, 6], "reconstruction": "bce", **kw})
    model.fit_scaling(x)
    return model


def _train(x: torch.Tensor, out: Path, seed: int = 0, finetune: int = 0, **kw) -> StackedSparseAE:
    model = _untrained(x, seed, **kw)
    fit_sparse_ae(model, model.scale(x), None, out, _config(seed), finetune_epochs=finetune)
    return model.eval()


def test_trains_on_a_real_slice_layer_by_layer(yeast, tmp_path) -> None:
    model = _train(yeast, tmp_path / "run", finetune=3)
    for stage in ("layer1", "layer2", "finetune"):
        hist = pd.read_csv(tmp_path / "run" / stage / "history.csv")
        assert hist["train_loss"].iloc[-1] < hist["train_loss"].iloc[0], stage
    xs = model.scale(yeast)
    assert float(xs.min()) >= 0.1 - 1e-6 and float(xs.max()) <= 0.9 + 1e-6  # UFLDL scaling
    with torch.no_grad():
        err = model.reconstruction_error(xs).mean()
        before = _untrained(yeast).reconstruction_error(xs).mean()
    assert err < 0.9 * before  # the trained stack reconstructs the profiles
    acts = layer_activities(model, yeast.numpy(), [f"g{i}" for i in range(len(yeast))])
    assert (
        acts.shape == (200, 18) and list(acts.columns[:2]) == ["L1U1", "L1U2"] and acts.columns[-1] == "L2U6"
    )
    assert ((acts.to_numpy() > 0) & (acts.to_numpy() < 1)).all()
    assert [u for u, _ in unit_parents(model, "L2U1", 3)] and unit_parents(model, "L2U1", 1)[0][0].startswith(
        "L1U"
    )


def test_sparsity_penalty_moves_mean_activation_toward_target(yeast) -> None:
    def mean_activation(weight: float) -> float:
        torch.manual_seed(0)
        m = StackedSparseAE(79, [16], sparsity=0.05, sparsity_weight=weight)
        m.fit_scaling(yeast)
        xs = m.scale(yeast)
        m.active_layer = 0
        opt = torch.optim.Adam(m.parameters(), lr=0.02)
        for _ in range(100):
            loss = m.loss((xs,))["loss"]
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            return float(m.encode(xs, 0).mean())

    free, sparse = mean_activation(0.0), mean_activation(3.0)
    assert abs(sparse - 0.05) < 0.02 and abs(sparse - 0.05) < abs(free - 0.05) / 3, (free, sparse)
    assert float(kl_sparsity(torch.full((4,), 0.05), 0.05)) == pytest.approx(0.0, abs=1e-6)
    assert float(kl_sparsity(torch.full((4,), 0.5), 0.05)) > 1.0


def test_same_seed_same_weights(yeast, tmp_path) -> None:
    x = yeast[:100]
    a = _train(x, tmp_path / "a", seed=3, nodes=[6])
    b = _train(x, tmp_path / "b", seed=3, nodes=[6])
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k
    seed_all(4)
    assert not torch.equal(a.layers[0].weight, StackedSparseAE(79, [6]).layers[0].weight)


def test_unit_class_response_finds_the_class_unit() -> None:
    y = np.array(["Ribo"] * 5 + ["Resp"] * 5)
    acts = pd.DataFrame(
        {"L1U1": (y == "Ribo") * 0.9 + 0.05, "L1U2": np.linspace(0, 1, 10), "L2U1": (y == "Resp") * 1.0}
    )
    resp = unit_class_response(acts, y)
    ribo = resp[(resp["class"] == "Ribo") & (resp.unit == "L1U1")].iloc[0]
    assert ribo.auroc == 1.0 and ribo.difference == pytest.approx(0.9) and ribo.layer == 1
    top = top_units(resp, 1)
    assert set(top.layer) == {1, 2}
    assert top[(top.layer == 1) & (top["class"] == "Ribo")].unit.iloc[0] == "L1U1"
    assert top[(top.layer == 2) & (top["class"] == "Ribo")].direction.iloc[0] == "off"


def test_reads_the_orange_labels() -> None:
    lab = read_class_labels(BROWN)
    assert len(lab) == 40 and lab.value_counts().to_dict() == {"Ribo": 14, "Proteas": 13, "Resp": 13}
    m = read_data(EISEN, GENES)
    assert set(lab.index) <= set(m.samples)


def test_malformed_inputs_name_the_file(tmp_path) -> None:
    bad = tmp_path / "labels.tsv"
    bad.write_text("gene\tfunction\nYAL001C\tRibo\n")
    with pytest.raises(BiodlInputError, match=r"labels\.tsv.*expected columns id"):
        read_class_labels(bad)
    dup = tmp_path / "dup.tsv"
    dup.write_text("gene\tclass\nYAL001C\tRibo\nYAL001C\tResp\n")
    with pytest.raises(BiodlInputError, match=r"dup\.tsv, line 3: identifier 'YAL001C' repeated"):
        read_class_labels(dup)
    lines = gzip.open(EISEN, "rt").read().splitlines()
    lines[5] = lines[5].replace(",", ",oops,", 1).rsplit(",", 1)[0]  # a non-numeric cell
    broken = tmp_path / "eisen_broken.csv"
    broken.write_text("\n".join(lines) + "\n")
    with pytest.raises(BiodlInputError, match=r"eisen_broken\.csv.*line 6"):
        read_data(broken, GENES)
    gap = gzip.open(EISEN, "rt").read().splitlines()
    cells = gap[5].split(",")
    cells[3] = ""  # one missing value of gene 5, array 3
    gap[5] = ",".join(cells)
    holed = tmp_path / "eisen_gap.csv"
    holed.write_text("\n".join(gap) + "\n")
    with pytest.raises(BiodlInputError, match=r"eisen_gap\.csv"):
        read_data(holed, GENES)
    m = read_data(holed, {**GENES, "missing": "gene-mean"})  # the gene's mean over the arrays
    row = np.array([float(v) for v in cells[1:] if v], np.float32)
    assert m.values[4, 2] == pytest.approx(row.mean(), abs=1e-5)


def test_pipeline_encodes_genes_and_predicts_every_layer(tmp_path) -> None:
    out = tmp_path / "run"
    cfg = TrainConfig(max_epochs=2, patience=0, seed=0, device="cpu", progress=False)
    opts = {"data": EISEN, **GENES, "valid_fraction": 0.0}
    pipeline.train("sparse-ae", out, options=opts, model_options={"nodes": [8, 4]}, config=cfg, quiet=True)
    assert (out / "layer2" / "history.csv").exists() and (out / "signatures.tsv").exists()
    assert "Hidden layers" in (out / "report.html").read_text()
    df = pipeline.predict(out, EISEN, out=tmp_path / "acts.tsv", options=GENES, quiet=True)
    # the rows are genes: so is the id column's name (was 'sample')
    assert len(df) == 200 and df.columns[0] == "gene" and list(df.columns[-2:]) == ["L2U3", "L2U4"]
    acts = pd.read_csv(tmp_path / "acts.tsv", sep="\t", index_col="gene")  # as docs/sparse_ae.md reads it
    assert acts.index[0].startswith("Y") and acts.shape == (200, 12)
    # encode=genes is the model's own setting: not repeated at predict / evaluate
    orient = {"orientation": "genes-x-samples"}
    again = pipeline.predict(out, EISEN, options=orient, quiet=True)
    pd.testing.assert_frame_equal(again, df)
    assert pipeline.evaluate(out, EISEN, options=orient, out_dir=tmp_path / "ev", quiet=True)["n"] == 200
    assert pd.read_csv(tmp_path / "ev" / "predictions.tsv", sep="\t").columns[0] == "gene"
    with pytest.raises(
        BiodlInputError, match="trained with encode=genes.*cannot read the data with encode=samples"
    ):
        pipeline.predict(out, EISEN, options={**orient, "encode": "samples"}, quiet=True)
    # a model of samples (the arrays here) keeps 'sample'
    out2 = tmp_path / "run_samples"
    pipeline.train(
        "sparse-ae",
        out2,
        options={**opts, "encode": None},
        model_options={"nodes": [4]},
        config=cfg,
        quiet=True,
    )
    df2 = pipeline.predict(out2, EISEN, options=orient, quiet=True)
    assert df2.columns[0] == "sample" and len(df2) == 79 and df2["sample"].iloc[0] == "alpha_0"
    with pytest.raises(BiodlInputError, match="does not take --set corruption"):
        pipeline.train(
            "sparse-ae", tmp_path / "x", options={**opts, "corruption": 0.1}, config=cfg, quiet=True
        )


def test_a_longer_rerun_retrains_the_later_layers_on_the_new_first(yeast, tmp_path) -> None:
    """Layer 2 resumed from its checkpoint, which holds the whole network: the longer rerun's
    model kept layer 1's old weights while reporting layer 1's new best epoch."""
    from dataclasses import replace

    out = tmp_path / "run"
    model = _untrained(yeast)
    fit_sparse_ae(model, model.scale(yeast), None, out, _config(epochs=2))
    model = _untrained(yeast)
    res = fit_sparse_ae(model, model.scale(yeast), None, out, replace(_config(epochs=2), max_epochs=4))
    assert res[0].resumed_from is not None and res[1].resumed_from is None  # layer 2 started over
    first = torch.load(out / "layer1" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    mine = {f"model.{k}": v for k, v in model.state_dict().items()}
    layer1 = [k for k in first if ".layers.0." in k]
    assert layer1 and all(torch.equal(first[k], mine[k]) for k in layer1)
