"""Run metadata (RunMeta): one versioned schema for model.pt and run.json; files of the older
biodl-model-1 format still load; models are rebuilt through the registry, weights only."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
import torch

from biodl.errors import BiodlInputError
from biodl.models import DeepBind
from biodl.train import RunMeta, load_model, read_model_meta, read_run_json, save_model, write_run_json
from biodl.train.checkpoint import RUN_SCHEMA, data_as
from tests.conftest import save_legacy_model

KW = dict(n_outputs=1, num_motifs=4, motif_len=8, hidden=0)


def test_round_trip_model_and_run_json(tmp_path) -> None:
    meta = RunMeta(
        kind="sequences",
        recipe="deepbind",
        task="binary",
        model_kwargs=KW,
        label_names=["Bound"],
        data={"seq_len": 101, "n_value": 0.25},
        metrics={"val": {"val_auroc": 0.9}},
        status="finished",
    )
    model = DeepBind(**KW)
    save_model(tmp_path / "model.pt", model, meta)
    write_run_json(tmp_path, meta)
    back, m2 = load_model(tmp_path)
    assert m2 == meta == read_run_json(tmp_path) == read_model_meta(tmp_path / "model.pt")
    assert m2.schema == RUN_SCHEMA and m2.versions["biodl"] and m2.val_metrics == {"val_auroc": 0.9}
    for k, v in model.state_dict().items():
        assert torch.equal(v, back.state_dict()[k])
    payload = torch.load(tmp_path / "model.pt", weights_only=True)  # plain data only
    assert payload["format"] == "biodl-model-2" and json.loads(payload["meta"])["kind"] == "sequences"


@pytest.mark.parametrize(
    "plugin,kind",
    [
        (None, "sequences"),
        ("biodl.windows", "windows"),
        ("biodl.molecules.plugin", "molecules"),
        ("biodl.expression.plugin", "expression"),
        ("biodl.cells.plugin", "cells"),
    ],
)
def test_biodl_model_1_files_still_load(tmp_path, plugin, kind) -> None:
    old = {
        "recipe": "deepbind",
        "model_kwargs": KW,
        "task": "binary",
        "seq_len": 101,
        "n_value": 0.25,
        "label_names": ["REST"],
        "best_epoch": 3,
        "val_metrics": {"val_auroc": 0.8},
        "n_train": 10,
    }
    if plugin:
        old["plugin"] = plugin
    save_legacy_model(tmp_path / "model.pt", DeepBind(**KW), old)
    model, meta = load_model(tmp_path / "model.pt")
    assert isinstance(model, DeepBind) and meta.kind == kind and meta.recipe == "deepbind"
    assert meta.data["seq_len"] == 101 and meta.label_names == ["REST"] and meta.best_epoch == 3
    assert meta.splits == {"n_train": 10} and meta.val_metrics == {"val_auroc": 0.8}


def test_typed_data_sections_fill_defaults_and_ignore_unknown_keys() -> None:
    @dataclass
    class Data:
        seq_len: int | None = None
        n_value: float = 0.25

    d = data_as(Data, {"seq_len": 50, "from_a_newer_biodl": 1})
    assert d == Data(seq_len=50, n_value=0.25)


def test_not_a_model_file_is_a_clear_error(tmp_path) -> None:
    (tmp_path / "model.pt").write_bytes(b"not a torch file")
    with pytest.raises(BiodlInputError, match="not a biodl model file"):
        load_model(tmp_path)
    torch.save({"format": "something-else"}, tmp_path / "other.pt")
    with pytest.raises(BiodlInputError, match="expected format biodl-model-2"):
        load_model(tmp_path / "other.pt")
    with pytest.raises(BiodlInputError, match="no run.json here"):
        read_run_json(tmp_path)


def test_a_saved_model_does_not_carry_the_writers_name(tmp_path):
    """model.pt's zip archive was named after the temporary file (process id, host name): two
    saves of one model differed in bytes."""
    import zipfile

    from biodl.train.checkpoint import atomic_torch_save

    obj = {"w": torch.arange(4.0)}
    a, b = atomic_torch_save(obj, tmp_path / "a.pt"), atomic_torch_save(obj, tmp_path / "b.pt")
    assert a.read_bytes() == b.read_bytes()
    assert all(n.startswith("archive/") for n in zipfile.ZipFile(a).namelist())
