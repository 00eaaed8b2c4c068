"""The contract every recipe and data kind keeps, checked by walking the registry.

For every ready recipe and every data kind it accepts: train -> evaluate -> predict -> report
on small real fixtures (the recipe's own ``toy`` model and options), an unknown option refused
before any work, one ``run.json`` schema equal to the model file's, and a run killed right
after a checkpoint resuming to the same weights as an uninterrupted one. A new recipe is covered
without editing this file; a new kind needs one entry in :data:`FIXTURES` (a test fails until
it has one).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

import lightning.pytorch as pl
import numpy as np
import pandas as pd
import pytest
import torch

from biodl import pipeline
from biodl.errors import BiodlInputError
from biodl.kinds import KINDS, get_kind
from biodl.registry import ready_recipes
from biodl.train import TrainConfig, load_model, read_run_json

DATA = Path(__file__).parent / "data"


@dataclass
class Case:
    """Inputs of one kind: training options (those a recipe does not take are left out),
    a labelled file to evaluate, a file to predict and its number of rows."""

    train: dict
    evaluate: Path
    predict: Path
    n_predict: int
    options: dict = field(default_factory=dict)  # evaluate / predict options


def _sequences(tmp: Path, rest_small) -> Case:
    return Case(
        {"data": rest_small["train"], "test_file": rest_small["test"]},
        rest_small["test"],
        rest_small["test"],
        200,
    )


def _windows(tmp: Path, rest_small) -> Case:
    d = DATA / "genome_windows"
    bed = tmp / "q.bed"
    bed.write_text(
        "NC_000913.3\t1000\t1200\tthrA\nNC_000913.3\t0\t50\tstart\nNC_000913.3\t99900\t100000\tend\n"
    )
    train = {
        "genome": d / "ecoli_k12_first100kb.fna.gz",
        "annotation": [d / "ecoli_k12_first100kb.gff.gz"],
        "labels": ["CDS", "ncRNA", "mobile_genetic_element"],
        "window": 300,
        "step": 300,
        "valid": 0.15,
        "test": 0.3,
    }
    return Case(train, d / "ecoli_k12_first100kb.fna.gz", bed, 3)


def _molecules(tmp: Path, rest_small) -> Case:
    d = DATA / "molecules"
    train = {
        "data": d / "delaney_150.csv",
        "target": "measured log solubility in mols per litre",
        "report": False,
    }
    return Case(train, d / "delaney_150.csv", d / "solubility_test_20.sdf", 20)


def _expression(tmp: Path, rest_small) -> Case:
    d = DATA / "expression"
    data = d / "bladder_dgex_slice.csv.gz"
    train = {
        "data": data,
        "orientation": "genes-x-samples",
        "landmarks": d / "landmarks100.txt",
        "test_file": data,
    }
    return Case(train, data, data, 57, {"orientation": "genes-x-samples"})


def _cells(tmp: Path, rest_small) -> Case:
    d = DATA / "cells"
    train = {"samples": d / "samples.csv", "test_file": d / "samples.csv", "report": False}
    return Case(train, d / "samples.csv", d / "patient1_BCR-XL_500.fcs", 1)


def _features(tmp: Path, rest_small) -> Case:
    d = DATA / "features"
    data = d / "HUVEC_200bp_slice_Data.txt.gz"
    common = {"feature_names": d / "HUVEC_Features.txt"}
    train = {
        "data": data,
        "labels": d / "HUVEC_200bp_slice_Classes.txt",
        "positive": ["A-E"],
        "report": False,
        **common,
    }
    return Case(train, data, data, 700, {**common, "labels": d / "HUVEC_200bp_slice_Classes.txt"})


def _methylation(tmp: Path, rest_small) -> Case:
    from biodl.kinds.methylation.data import observed_sites
    from biodl.kinds.methylation.io import read_profiles

    d = DATA / "methylation"
    train = {
        "data": d / "cells.tsv",
        "input_only": ["BS9N_SER"],
        "annotations": [d / "CGI.bed.gz"],
        "report": False,
    }
    n = len(observed_sites(read_profiles(d / "cells.tsv"), ["18", "19"]))
    return Case(train, d / "cells.tsv", d / "cells.tsv", n)


def _popgen(tmp: Path, rest_small) -> Case:
    d = DATA / "popgen"
    train = {"data": d / "flagel_tiny", "target": ["rho"], "report": False}
    return Case(train, d / "flagel_tiny", d / "diploid_5x60kb.vcf", 3)


def _contacts(tmp: Path, rest_small) -> Case:
    d = DATA / "contacts"
    train = {"data": d / "proteins.tsv", "test_file": d / "proteins.tsv", "report": False}
    return Case(train, d / "proteins.tsv", d / "3e7u.aln", 595)  # 3e7u: L=40, pairs j - i >= 6


def _reads(tmp: Path, rest_small) -> Case:
    from biodl.kinds.reads.io import build_reference

    d = DATA / "reads"
    ref = tmp / "reads_ref"
    if not (ref / "reference.json").exists():
        build_reference(sorted((d / "genomes").glob("*.fna.gz")), d / "taxonomy.tsv", ref, quiet=True)
    sample = d / "sample_reads.fq.gz"  # 300 labelled reads sampled from the 7 genome slices
    return Case({"data": ref, "report": False}, sample, sample, 300)


#: One small real fixture per data kind.
FIXTURES = {
    "sequences": _sequences,
    "windows": _windows,
    "molecules": _molecules,
    "expression": _expression,
    "cells": _cells,
    "features": _features,
    "methylation": _methylation,
    "popgen": _popgen,
    "contacts": _contacts,
    "reads": _reads,
}
CASES = [(r.name, k) for r in ready_recipes() for k in r.kinds]


def test_every_kind_has_a_fixture_and_every_recipe_a_kind() -> None:
    assert set(FIXTURES) == set(KINDS), "add a fixture for each new data kind"
    for r in ready_recipes():
        assert r.kinds and all(k in KINDS for k in r.kinds), r.name
        assert set(r.toy) <= {"model", "options"}, r.name
    assert len(CASES) >= 20  # 10 sequence, 2 molecule, 2 expression, 1 cells, 3 features, 2 CpG


def test_every_recipe_is_cited_with_its_publication_year() -> None:
    """`biodl systems` and the reports name each system's paper: authors and the year in the
    citation ('(2016)', 'NeurIPS 2015'; a page number such as 'Sci Rep 6:19598' is not a year)."""
    import re

    for r in ready_recipes():
        year = re.search(r"[( ]((?:19|20)\d\d)\b", r.citation)
        assert year, f"{r.name}: the citation has no year"
        assert r.short_citation.endswith(" " + year.group(1)), (r.name, r.short_citation)
        assert r.short_citation.split()[0] in r.citation.split(",")[0], r.name
    names = {r.name: r.short_citation for r in ready_recipes()}
    assert names["cpg-sae"] == "Wang et al. 2016" and names["popgen-mlp"] == "Sheehan & Song 2016"


def _train_options(system: str, kind: str, case: Case) -> dict:
    from biodl.registry import get_recipe

    recipe = get_recipe(system)
    k = get_kind(kind)
    ok = {o.name for o in k.options if o.applies("train", system)}
    opts = {key: v for key, v in case.train.items() if key in ok}
    opts.update(recipe.toy.get("options", {}))
    return opts


def _config(system: str, device: str, **kw) -> TrainConfig:
    from biodl.registry import get_recipe

    base = dict(max_epochs=2, patience=0, device=device, progress=False, seed=0)
    base.update(kw)
    return TrainConfig.for_recipe(get_recipe(system).train_defaults, **base)


def _train(system, kind, case, out, device="cpu", **cfg):
    from biodl.registry import get_recipe

    return pipeline.train(
        system,
        out,
        options=_train_options(system, kind, case),
        model_options=get_recipe(system).toy.get("model", {}),
        config=_config(system, device, **cfg),
        kind=kind,
        quiet=True,
    )


@pytest.mark.parametrize("system,kind", CASES, ids=[f"{s}-{k}" for s, k in CASES])
def test_train_evaluate_predict_report(system, kind, device, tmp_path, rest_small, backward_nodes) -> None:
    case = FIXTURES[kind](tmp_path, rest_small)
    out = tmp_path / "run"
    s = _train(system, kind, case, out, device)
    # no backward op without a deterministic CUDA kernel (training is deterministic: it would raise)
    assert not backward_nodes, backward_nodes
    assert s["system"] == system and s["kind"] == kind and (out / "model.pt").exists()
    meta = read_run_json(out)
    _, stored = load_model(out)
    assert meta.kind == stored.kind == kind and meta.recipe == stored.recipe == system
    assert meta.status == stored.status == "finished" and meta.schema == 2
    assert meta.model_kwargs == stored.model_kwargs and meta.data == stored.data
    assert meta.versions["torch"] == torch.__version__.split("+")[0]
    if (out / "test" / "metrics.json").exists():
        assert meta.test_metrics == json.loads((out / "test" / "metrics.json").read_text())["metrics"]

    ev = pipeline.evaluate(
        out, case.evaluate, out_dir=tmp_path / "ev", device=device, options=case.options, quiet=True
    )
    numbers = [v for k, v in ev["metrics"].items() if "/" not in k]
    assert numbers and all(np.isfinite(v) for v in numbers), ev["metrics"]
    assert (tmp_path / "ev" / "metrics.json").exists() and (tmp_path / "ev" / "predictions.tsv").exists()

    df = pipeline.predict(
        out, case.predict, out=tmp_path / "p.tsv", device=device, options=case.options, quiet=True
    )
    assert len(df) == case.n_predict and len(pd.read_csv(tmp_path / "p.tsv", sep="\t")) == case.n_predict

    html = pipeline.report(out, quiet=True).read_text()
    assert get_kind(kind).title in html and "Run" in html
    assert (kind in ("sequences", "windows")) == ("sequence length" in html or "window / step" in html)
    # every entry the run and its report wrote is one --no-resume knows to remove (and no other)
    unknown = [e.name for e in out.iterdir() if not pipeline.is_run_output(e.name, e.is_dir())]
    assert not unknown, unknown


@pytest.mark.parametrize("system,kind", CASES, ids=[f"{s}-{k}" for s, k in CASES])
def test_unknown_option_is_refused_before_any_work(system, kind, tmp_path, rest_small) -> None:
    case = FIXTURES[kind](tmp_path, rest_small)
    opts = dict(_train_options(system, kind, case), no_such_option=1)
    with pytest.raises(BiodlInputError, match=r"does not take --set no_such_option\. It accepts: "):
        pipeline.train(
            system, tmp_path / "x", options=opts, config=_config(system, "cpu"), kind=kind, quiet=True
        )
    assert not (tmp_path / "x").exists()


class _Killed(Exception):
    """Stands for a kill -9 right after a checkpoint was written."""


@pytest.mark.parametrize("system,kind", CASES, ids=[f"{s}-{k}" for s, k in CASES])
def test_resumes_after_a_kill(system, kind, tmp_path, rest_small) -> None:
    case = FIXTURES[kind](tmp_path, rest_small)
    _train(system, kind, case, tmp_path / "straight")
    save = pl.Trainer.save_checkpoint
    written: list[str] = []

    def save_then_die(self, filepath, *args, **kwargs):
        save(self, filepath, *args, **kwargs)
        written.append(str(filepath))
        if str(filepath).endswith("last.ckpt") and self.current_epoch == 0:
            raise _Killed(filepath)

    out = tmp_path / "killed"
    killed = False
    with mock.patch.object(pl.Trainer, "save_checkpoint", save_then_die):
        try:
            _train(system, kind, case, out)
        except _Killed:
            killed = True
    if killed:
        assert not (out / "model.pt").exists()
        if (out / "run.json").exists():
            assert json.loads((out / "run.json").read_text())["status"] == "running"
        fit = pl.Trainer.fit
        resumed: list[str] = []

        def recording_fit(self, *args, **kwargs):
            if kwargs.get("ckpt_path"):
                resumed.append(str(kwargs["ckpt_path"]))
            return fit(self, *args, **kwargs)

        with mock.patch.object(pl.Trainer, "fit", recording_fit):
            _train(system, kind, case, out)
        # the killed fit restarted from its checkpoint (kinds that train several networks in turn,
        # CellCnn's restarts or a DFS penalty path, resume the one that was killed)
        assert resumed and resumed[0] == written[-1], (resumed, written)
    else:  # fitted without checkpoints (DEEP's scikit-learn SVMs): a rerun gives the same model
        assert not written and (out / "model.pt").exists()
    a, _ = load_model(tmp_path / "straight")
    b, meta = load_model(out)
    assert meta.status == "finished"
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.allclose(sa[k].float(), sb[k].float(), atol=1e-5), k
