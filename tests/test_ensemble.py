"""Ensembles (`biodl train --ensemble K`): K seeds, one model file, the mean of the members."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from biodl.cli import app
from biodl.errors import BiodlInputError
from biodl.models import DeepBind
from biodl.pipeline import train
from biodl.train import TrainConfig, load_model
from biodl.train.ensemble import Ensemble

torch.set_num_threads(1)
SMALL = {"num_motifs": 8, "motif_len": 12}


def _cfg(**kw) -> TrainConfig:
    base = dict(max_epochs=2, patience=0, batch_size=64, lr=3e-3, seed=3, device="cpu", progress=False)
    base.update(kw)
    return TrainConfig(**base)


def test_ensemble_module_is_the_mean_and_hides_member_layers():
    torch.manual_seed(0)
    a, b = DeepBind(1, num_motifs=4, motif_len=6), DeepBind(1, num_motifs=4, motif_len=6)
    e = Ensemble([a, b]).eval()
    x = torch.rand(3, 4, 30)
    with torch.no_grad():
        assert torch.allclose(e(x), (a.eval()(x) + b.eval()(x)) / 2, atol=1e-6)
    assert e.n_outputs == 1 and e.size == 2  # plain attributes come from the first member
    with pytest.raises(AttributeError, match="layer or tensor of each member"):
        _ = e.conv  # a member's layer is not the ensemble's (fast ISM paths must not use it)
    with pytest.raises(ValueError):
        Ensemble([])


def test_train_ensemble_one_model_file_members_and_prediction(tmp_path, rest_small):
    opts = {"data": rest_small["train"], "test_file": rest_small["test"]}
    s = train(
        "deepbind", tmp_path / "e", options=opts, config=_cfg(ensemble=2), model_options=SMALL, quiet=True
    )
    run = json.loads((tmp_path / "e" / "run.json").read_text())
    assert run["ensemble"] == 2 and run["training"]["ensemble"] == 2
    assert (tmp_path / "e" / "member1" / "history.csv").exists()
    assert (tmp_path / "e" / "member2" / "history.csv").exists()
    assert run["thresholds"]["chosen_on"] == "validation" and "auroc" in s["test_metrics"]
    assert "val_auroc" in run["metrics"]["val"]
    model, meta = load_model(tmp_path / "e")
    assert isinstance(model, Ensemble) and model.size == 2 and meta.ensemble == 2
    # member 1 is exactly the single network trained with the same seed
    train("deepbind", tmp_path / "one", options=opts, config=_cfg(), model_options=SMALL, quiet=True)
    single, _ = load_model(tmp_path / "one")
    for k, v in single.state_dict().items():
        assert torch.equal(v, model.members[0].state_dict()[k]), k
    assert any(
        not torch.equal(v, model.members[1].state_dict()[k]) for k, v in single.state_dict().items()
    )  # member 2 has another seed
    # predict through the CLI: the ensemble's probability is from the mean of the members' logits
    r = CliRunner().invoke(
        app, ["predict", str(tmp_path / "e"), str(rest_small["test"]), "-o", str(tmp_path / "p.tsv")]
    )
    assert r.exit_code == 0, r.output
    pred = pd.read_csv(tmp_path / "p.tsv", sep="\t")
    assert len(pred) == 200
    prob = pred.filter(like="prob_").iloc[:, 0].to_numpy()
    assert ((prob > 0) & (prob < 1)).all()
    # a member's folder is a part of the run, not a run: said so (it was "an unfinished run")
    r = CliRunner().invoke(app, ["evaluate", str(tmp_path / "e" / "member2"), str(rest_small["test"])])
    assert r.exit_code == 2
    msg = " ".join(r.output.split())
    assert f"is a part of the run {(tmp_path / 'e').resolve()} (an ensemble member" in msg
    assert "unfinished" not in msg


def test_ensemble_refused_where_not_supported(tmp_path):
    with pytest.raises(BiodlInputError, match="--ensemble is not available"):
        train(
            "adage",
            tmp_path / "a",
            options={"data": "unused.tsv"},
            config=_cfg(ensemble=2),
            quiet=True,
        )
    with pytest.raises(BiodlInputError, match="--ensemble must be"):
        _cfg(ensemble=0).check()
