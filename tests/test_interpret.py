"""ISM (fast paths vs full passes), attributions (completeness), motifs (JASPAR, MEME), CLI."""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from biodl.cli import app
from biodl.errors import BiodlInputError
from biodl.interpret import attributions as A
from biodl.interpret.ism import ism_method, ism_scores, saturation_mutagenesis
from biodl.interpret.motifs import (
    information_content,
    load_jaspar,
    match_motifs,
    read_meme_motifs,
    trim_pwm,
    write_meme,
)
from biodl.models import Basset, DeepBind, DeepSEA
from tests.conftest import save_legacy_model

torch.set_num_threads(1)
runner = CliRunner()


def _onehot(n: int, L: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    X = nn.functional.one_hot(torch.randint(0, 4, (n, L), generator=g), 4).permute(0, 2, 1).float()
    X[0, :, 3] = 0.25  # an N: all four substitutions are real edits
    return X.contiguous()


def _brute(model: nn.Module, X: torch.Tensor) -> torch.Tensor:
    """Reference ISM: one full forward pass per edited sequence."""
    with torch.no_grad():
        y0 = model(X).reshape(X.shape[0], -1)
        out = torch.zeros(X.shape[0], X.shape[2], 4, y0.shape[1])
        for i in range(X.shape[0]):
            for p in range(X.shape[2]):
                for a in range(4):
                    if X[i, a, p] == 1 and X[i, :, p].sum() == 1:
                        continue
                    x = X[i : i + 1].clone()
                    x[0, :, p] = 0
                    x[0, a, p] = 1
                    out[i, p, a] = model(x).reshape(1, -1)[0] - y0[i]
    return out


def _models():
    torch.manual_seed(0)
    seq = nn.Sequential(
        nn.Conv1d(4, 6, 5, padding=2),
        nn.BatchNorm1d(6),
        nn.ReLU(),
        nn.MaxPool1d(3, 3, ceil_mode=True),
        nn.Conv1d(6, 5, 3, stride=2, padding=1),
        nn.ELU(),
        nn.AvgPool1d(2),
        nn.Flatten(),
        nn.Linear(5 * 3, 2),
    )
    with torch.no_grad():
        seq[1].running_mean.uniform_(-0.5, 0.5)
        seq[1].running_var.uniform_(0.5, 2)
    return [
        ("deepbind", DeepBind(1, num_motifs=4, motif_len=6, hidden=8), 30, "deepbind"),
        ("deepbind-maxavg", DeepBind(3, num_motifs=3, motif_len=5, hidden=0, pool="maxavg"), 20, "deepbind"),
        ("sequential", seq, 40, "trunk"),
        ("deepsea", DeepSEA(5, 170, n_filters=(6, 6, 8), hidden=7), 170, "trunk"),
        ("basset", Basset(4, 130, n_filters=(6, 5, 4), hidden=(8, 8)), 130, "trunk"),
    ]


@pytest.mark.parametrize("name,model,L,method", _models(), ids=[m[0] for m in _models()])
def test_ism_fast_paths_equal_full_passes(name, model, L, method):
    model.eval()
    X = _onehot(2, L, seed=1)
    assert ism_method(model, L) == method
    fast, y0 = saturation_mutagenesis(model, X, batch_size=37, group_size=1, return_reference=True)
    full = saturation_mutagenesis(model, X, method="full", batch_size=50)
    assert fast.shape == (2, L, 4, model(X).reshape(2, -1).shape[1])
    torch.testing.assert_close(fast, full, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(y0, model(X).reshape(2, -1))
    # identity edits are zero; the N column has four real edits
    ref = X[1].argmax(0)
    assert torch.all(fast[1, torch.arange(L), ref] == 0)
    if name == "deepbind":
        torch.testing.assert_close(fast, _brute(model, X), atol=2e-5, rtol=1e-4)


def test_ism_span_and_scores():
    model = DeepBind(2, num_motifs=3, motif_len=4, hidden=0).eval()
    X = _onehot(3, 25)
    full = saturation_mutagenesis(model, X)
    part = saturation_mutagenesis(model, X, start=5, end=12)
    torch.testing.assert_close(part, full[:, 5:12])
    s = ism_scores(full, X, output=1)
    assert s.shape == (3, 4, 25)
    assert torch.all(s[X == 0] == 0)
    with pytest.raises(BiodlInputError):
        saturation_mutagenesis(model, X[:, :3])
    with pytest.raises(BiodlInputError):
        saturation_mutagenesis(model, X, start=10, end=5)


def test_ism_falls_back_when_split_is_wrong():
    class Odd(nn.Module):  # features + classifier, but forward does something else
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Conv1d(4, 3, 3), nn.ReLU())
            self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(3 * 18, 1))

        def forward(self, x):
            return self.classifier(self.features(x)) * 2

    model = Odd().eval()
    X = _onehot(1, 20)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = saturation_mutagenesis(model, X)
    assert any("full passes" in str(w.message) for w in caught)
    torch.testing.assert_close(got, _brute(model, X), atol=1e-5, rtol=1e-4)
    # several groups of sequences: the fallback's groups overlapped (48 reference rows for 40)
    X = _onehot(40, 20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got, ref = saturation_mutagenesis(model, X, return_reference=True, group_size=16)
    assert ref.shape[0] == 40
    torch.testing.assert_close(got, _brute(model, X), atol=1e-5, rtol=1e-4)


def test_ism_of_a_model_whose_outputs_are_not_finite_is_refused():
    model = nn.Sequential(nn.Conv1d(4, 2, 3), nn.Flatten(), nn.Linear(2 * 18, 1)).eval()
    with torch.no_grad():
        model[2].weight.fill_(float("nan"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(BiodlInputError, match="the model's outputs are not finite"):
            saturation_mutagenesis(model, _onehot(3, 20))


def _trunk_cache(model: nn.Module, X: torch.Tensor):
    from biodl.interpret.ism import _trunk_split, _TrunkCache, _TrunkPlan

    split = _trunk_split(model.eval())
    assert split is not None
    return _TrunkCache(_TrunkPlan(*split), X)


def test_ism_incremental_head_applies_only_to_flatten_linear():
    """y = y_ref + W[:, touched] @ change: used on a DeepSEA-shaped head, not where anything
    else (an activation, a pooling, a Linear subclass) comes before the Linear."""

    class Doubled(nn.Linear):
        def forward(self, x):
            return super().forward(x) * 2

    torch.manual_seed(5)
    conv = [nn.Conv1d(4, 6, 5), nn.ReLU(), nn.MaxPool1d(2, 2)]
    cases = [
        ("deepsea", DeepSEA(5, 170, n_filters=(6, 6, 8), hidden=7), 170, True),
        ("basset", Basset(4, 130, n_filters=(6, 5, 4), hidden=(8, 8)), 130, True),
        ("tanh-first", nn.Sequential(*conv, nn.Flatten(), nn.Tanh(), nn.Linear(6 * 13, 3)), 30, False),
        ("adaptive", DeepSEA(3, None, n_filters=(6, 6, 8), hidden=7, adaptive_positions=3), 200, False),
        ("subclass", nn.Sequential(*conv, nn.Flatten(), Doubled(6 * 13, 2)), 30, False),
    ]
    for name, model, L, incremental in cases:
        model.eval()
        X = _onehot(2, L, seed=7)
        cache = _trunk_cache(model, X)
        assert (cache.Wl is not None) == incremental, name
        fast = saturation_mutagenesis(model, X, method="trunk", batch_size=41)
        full = saturation_mutagenesis(model, X, method="full", batch_size=64)
        torch.testing.assert_close(fast, full, atol=2e-5, rtol=1e-4, msg=name)
    # the DeepSEA-shaped one against one forward pass per edit too
    model, L = cases[0][1], cases[0][2]
    X = _onehot(1, L, seed=8)
    torch.testing.assert_close(saturation_mutagenesis(model, X), _brute(model, X), atol=2e-5, rtol=1e-4)


def test_ism_delta_convolutions_padding_dilation_groups_edges():
    """Stride-1 convolutions run on the change of their input (with padding, dilation), the
    others (groups, stride) are recomputed over their window; every position, both ends."""
    torch.manual_seed(6)
    model = nn.Sequential(
        nn.Conv1d(4, 6, 3, padding=2, dilation=2),
        nn.BatchNorm1d(6),
        nn.GELU(),
        nn.MaxPool1d(3, 2, padding=1),
        nn.Conv1d(6, 4, 3, padding=1, groups=2),
        nn.ReLU(),
        nn.Conv1d(4, 5, 4),
        nn.AvgPool1d(2),
        nn.Conv1d(5, 3, 2, stride=2),
        nn.Flatten(),
        nn.Linear(3 * 3, 2),
    ).eval()
    with torch.no_grad():
        model[1].running_mean.uniform_(-0.5, 0.5)
        model[1].running_var.uniform_(0.5, 2)
    X = _onehot(2, 33, seed=9)
    X[1, :, 0] = 0  # an all-zero N at the first position
    assert ism_method(model, 33) == "trunk"
    for group_size in (1, 2):
        got = saturation_mutagenesis(model, X, batch_size=17, group_size=group_size)
        torch.testing.assert_close(got, _brute(model, X), atol=2e-5, rtol=1e-4)


def test_ism_edit_order_groups_equal_widths():
    model = DeepSEA(5, 170, n_filters=(6, 6, 8), hidden=7).eval()
    X = _onehot(2, 170, seed=3)
    from biodl.interpret.ism import _edits

    cache = _trunk_cache(model, X)
    seq, pos, alt = _edits(X, 0, 170)
    perm = cache.order(pos)
    assert torch.equal(torch.sort(perm).values, torch.arange(seq.shape[0]))
    # all edits of one position (both sequences, all alternatives) sit together
    runs = torch.unique_consecutive(pos[perm])
    assert runs.shape[0] == torch.unique(pos).shape[0] == 170


def test_ism_precision_bf16_close_to_float32(device):
    """bf16-mixed ISM on the CPU, and on CUDA where present (the cuda case skips without one)."""
    X = _onehot(2, 170, seed=2)
    model = DeepSEA(5, 170, n_filters=(6, 6, 8), hidden=7).eval()
    f32, y32 = saturation_mutagenesis(model, X, return_reference=True)
    bf16, y16 = saturation_mutagenesis(model, X, precision="bf16-mixed", return_reference=True, device=device)
    bf16, y16 = bf16.cpu(), y16.cpu()
    assert bf16.dtype == torch.float32 and bf16.shape == f32.shape
    scale = float(f32.abs().max())
    # the trunk path computes only the changes in bf16: a few parts in 1000 of the largest effect
    assert float((bf16 - f32).abs().max()) < 0.03 * scale
    torch.testing.assert_close(y16, y32, rtol=1e-4, atol=1e-4)  # references stay float32 (GPU: other kernels)
    full = saturation_mutagenesis(model, X, method="full", precision="bf16-mixed", device=device).cpu()
    assert float((full - f32).abs().max()) < 0.05 * float(y32.abs().max())
    db = DeepBind(2, num_motifs=3, motif_len=5, hidden=4).eval()  # deepbind path: float32 anyway
    Xd = _onehot(2, 30, seed=4)
    torch.testing.assert_close(
        saturation_mutagenesis(db, Xd, precision="bf16-mixed"), saturation_mutagenesis(db, Xd)
    )
    with pytest.raises(BiodlInputError, match="precision"):
        saturation_mutagenesis(model, X, precision="fp8")


def _relu_net() -> nn.Module:
    torch.manual_seed(3)
    return nn.Sequential(
        nn.Conv1d(4, 5, 5), nn.ReLU(), nn.Flatten(), nn.Linear(5 * 16, 3), nn.ReLU(), nn.Linear(3, 2)
    ).eval()


def test_attributions_shapes_and_completeness():
    model = _relu_net()
    X = _onehot(4, 20, seed=2)
    X[0, :, 3] = torch.tensor([1.0, 0, 0, 0])
    sal = A.saliency(model, X, target=1)
    x = X.clone().requires_grad_(True)
    model(x)[:, 1].sum().backward()
    torch.testing.assert_close(sal, x.grad)
    ixg = A.input_x_gradient(model, X, target=1)
    torch.testing.assert_close(ixg, x.grad * X)
    ig, delta = A.integrated_gradients(model, X, target=1, n_steps=200, return_delta=True, tolerance=1.0)
    assert ig.shape == (4, 4, 20) and delta.shape == (4,)
    with torch.no_grad():
        gap = model(X)[:, 1] - model(torch.full_like(X, 0.25))[:, 1]
    assert float(delta.abs().max()) < 0.02 * float(gap.abs().max())
    dl, d = A.deep_lift_shap(model, X, target=0, n_shuffles=3, return_delta=True)
    assert dl.shape == (4, 4, 20)
    assert (
        float(d.abs().max()) < 1e-4
    )  # summation-to-delta holds for nn.ReLU nets (not captum's MaxPool rule)
    assert A.attribute(model, X, "saliency", 1).shape == (4, 4, 20)
    with pytest.raises(BiodlInputError):
        A.attribute(model, X, "nope")


def test_deeplift_warns_when_the_check_fails():
    model = DeepBind(1, num_motifs=3, motif_len=5, hidden=4).eval()  # functional relu and global max
    X = _onehot(2, 30, seed=4)
    X[0, :, 3] = torch.tensor([0.0, 1, 0, 0])
    with pytest.warns(UserWarning, match="summation-to-delta"):
        A.deep_lift_shap(model, X, n_shuffles=2)


def test_shuffled_references_keep_composition():
    X = _onehot(2, 40, seed=5)
    X[0, :, 3] = torch.tensor([0.0, 0, 1, 0])
    refs = A.shuffled_references(X, 3, seed=1)
    assert refs.shape == (3, 2, 4, 40)
    torch.testing.assert_close(refs.sum(-1), X.sum(-1).expand(3, -1, -1))


def test_jaspar_offline_and_self_match(tmp_path):
    db = load_jaspar()
    assert len(db) > 500
    ids = {m.id.split(".")[0]: m for m in db}
    assert "MA0138" in ids and "MA0062" in ids and ids["MA0138"].name == "REST"
    rest = ids["MA0138"].ppm
    noisy = 0.8 * rest + 0.05
    t = match_motifs([noisy, ids["MA0062"].ppm[::-1, ::-1]], db, names=["rest", "gabpa_rc"], n_best=2)
    best = t[t["rank"] == 1].set_index("query")
    assert best.loc["rest", "match_id"].startswith("MA0138")
    assert best.loc["gabpa_rc", "match_name"].upper() in {"GABPA", "ELK1", "ELK4", "ETV6", "ELF1", "ETS1"}
    assert best.loc["rest", "p_value"] < 1e-6 and best.loc["rest", "q_value"] < 1e-3
    path = write_meme(tmp_path / "m.meme", [rest, ids["MA0062"].ppm], names=["MA0138.3 REST", "x"])
    back = read_meme_motifs(path)
    assert [m.id for m in back] == ["MA0138.3", "x"] and back[0].name == "REST"
    np.testing.assert_allclose(back[0].ppm, rest, atol=1e-6)
    # one strand (an RNA model's filters): the reverse complement of GABPA matches no ETS motif well
    one = match_motifs([ids["MA0062"].ppm[::-1, ::-1]], db, names=["gabpa_rc"], both_strands=False)
    assert one["strand"].tolist() == ["+"] and one["p_value"].iloc[0] > best.loc["gabpa_rc", "p_value"]
    # a filter of no site is left out (it was written as 'nsites= 1' with a uniform matrix); RNA: ACGU, +
    text = write_meme(
        tmp_path / "r.meme", [rest, np.full((5, 4), 0.25)], np.array([12, 0]), rna=True
    ).read_text()
    assert "MOTIF filter0" in text and "filter1" not in text and "nsites= 12" in text
    assert "ALPHABET= ACGU" in text and "strands: +\n" in text and "U 0.25" in text


def test_pwm_helpers_and_bad_meme(tmp_path):
    ppm = np.full((10, 4), 0.25)
    ppm[4:7] = [1, 0, 0, 0]
    assert information_content(ppm)[5] == pytest.approx(2.0)
    assert trim_pwm(ppm, 0.3, min_width=2) == (4, 7)
    bad = tmp_path / "bad.meme"
    bad.write_text("not a motif file\n")
    with pytest.raises(BiodlInputError, match="bad.meme"):
        read_meme_motifs(bad)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, rest_small):
    """A run directory with a random DeepBind (length 101) and a test file."""
    d = tmp_path_factory.mktemp("run")
    torch.manual_seed(0)
    kw = dict(
        n_outputs=1, num_motifs=4, motif_len=8, hidden=8, pool="max", dropout=0.5, reverse_complement=True
    )
    model = DeepBind(**kw)
    meta = {
        "recipe": "deepbind",
        "model_kwargs": kw,
        "seq_len": 101,
        "n_value": 0.25,
        "task": "binary",
        "label_names": ["REST"],
    }
    save_legacy_model(d / "model.pt", model, meta)
    (d / "test").mkdir()
    (d / "test" / "metrics.json").write_text(
        json.dumps({"data": str(rest_small["test"]), "n": 200, "metrics": {}})
    )
    fa = d / "seqs.fa"
    fa.write_text(">a\n" + "ACGT" * 25 + "A\n>b\n" + "GGCA" * 25 + "T\n")
    return d


def test_cli_interpret_commands(tiny_run, tmp_path):
    for cmd in ("variants", "motifs", "ism", "attribute"):
        r = runner.invoke(app, [cmd, "--help"])
        assert r.exit_code == 0 and "Example: biodl" in r.output
    r = runner.invoke(
        app, ["ism", str(tiny_run), str(tiny_run / "seqs.fa"), "--out", str(tmp_path / "i.tsv")]
    )
    assert r.exit_code == 0, r.output
    import pandas as pd

    df = pd.read_csv(tmp_path / "i.tsv", sep="\t")
    assert len(df) == 2 * 101 * 3 and set(df.columns) == {"id", "position", "ref", "alt", "effect_REST"}
    r = runner.invoke(
        app, ["ism", str(tiny_run), str(tiny_run / "seqs.fa"), "--out", str(tmp_path / "i.npz")]
    )
    assert np.load(tmp_path / "i.npz")["effects"].shape == (2, 4, 101, 1)
    r = runner.invoke(
        app,
        [
            "ism",
            str(tiny_run),
            str(tiny_run / "seqs.fa"),
            "--precision",
            "bf16-mixed",
            "-o",
            str(tmp_path / "b.npz"),
        ],
    )
    assert r.exit_code == 0, r.output
    np.testing.assert_allclose(
        np.load(tmp_path / "b.npz")["effects"], np.load(tmp_path / "i.npz")["effects"], atol=1e-5
    )
    r = runner.invoke(
        app, ["attribute", str(tiny_run), str(tiny_run / "seqs.fa"), "--out", str(tmp_path / "a.npz")]
    )
    assert r.exit_code == 0, r.output
    z = np.load(tmp_path / "a.npz")
    assert z["attributions"].shape == (2, 4, 101) and z["delta"].shape == (2,)
    r = runner.invoke(app, ["motifs", str(tiny_run)])
    assert r.exit_code == 0, r.output
    assert (
        "filter0" in r.output and (tiny_run / "motifs.tsv").exists() and (tiny_run / "filters.meme").exists()
    )
    r = runner.invoke(app, ["motifs", str(tiny_run), "--db", str(tmp_path / "missing.meme")])
    assert r.exit_code == 2 and "missing.meme" in r.output


def _mixed_fasta(path, lengths=(150, 60, 101), seed=3):
    rng = np.random.default_rng(seed)
    full = "".join(rng.choice(list("ACGT"), max(lengths)))
    seqs = {f"s{n}": full[:n] for n in lengths}
    path.write_text("".join(f">{k}\n{v}\n" for k, v in seqs.items()))
    return seqs


def test_ism_any_length_model_scores_native_lengths(tiny_run, tmp_path):
    """A model that takes any length (DeepBind) is mutated at each sequence's own length: the
    reference equals `predict`'s score and positions are the input's (a 150-bp record was
    cropped to the central 101 bp, position 1 was its base 25; a 60-bp one was padded and its
    base 1 reported as position 21 with ref-N padding rows)."""
    from biodl import pipeline

    fa = tmp_path / "mixed.fa"
    seqs = _mixed_fasta(fa)
    r = runner.invoke(app, ["ism", str(tiny_run), str(fa), "--out", str(tmp_path / "m.tsv.gz")])
    assert r.exit_code == 0, r.output
    with open(tmp_path / "m.tsv.gz", "rb") as fh:
        assert fh.read(2) == b"\x1f\x8b"  # a .gz name is gzip (it was plain text)
    import pandas as pd

    df = pd.read_csv(tmp_path / "m.tsv.gz", sep="\t")
    assert "N" not in set(df["ref"])
    for k, s in seqs.items():
        sub = df[df["id"] == k]
        assert len(sub) == 3 * len(s) and sub["position"].min() == 1 and sub["position"].max() == len(s)
        first = sub.drop_duplicates("position").sort_values("position")
        assert "".join(first["ref"]) == s
    r = runner.invoke(app, ["ism", str(tiny_run), str(fa), "--out", str(tmp_path / "m.npz")])
    assert r.exit_code == 0, r.output
    z = np.load(tmp_path / "m.npz")
    assert z["effects"].shape == (3, 4, 150, 1) and list(z["offset"]) == [0, 0, 0]
    assert list(z["length"]) == [150, 60, 101] and np.isnan(z["effects"][1, :, 60:]).all()
    pred = pipeline.predict(tiny_run, fa, quiet=True)
    np.testing.assert_allclose(z["reference"][:, 0], pred["logit_REST"].to_numpy(), atol=1e-5)
    r = runner.invoke(app, ["attribute", str(tiny_run), str(fa), "--out", str(tmp_path / "a.npz")])
    assert r.exit_code == 0, r.output
    a = np.load(tmp_path / "a.npz")
    assert a["attributions"].shape == (3, 4, 150) and np.isnan(a["attributions"][1, :, 60:]).all()
    assert np.isfinite(a["attributions"][1, :, :60]).all() and np.isfinite(a["delta"]).all()


def test_ism_fixed_length_model_reports_input_positions(tmp_path):
    """A fixed-length model reads sequences padded / cropped to its length: ISM rows and the
    npz `offset` are in input coordinates, padding is never reported, and cropping is said."""
    d = _deepsea_run(tmp_path / "run", seed=0)
    fa = tmp_path / "mixed.fa"
    seqs = _mixed_fasta(fa)
    r = runner.invoke(app, ["ism", str(d), str(fa), "--out", str(tmp_path / "f.tsv")])
    assert r.exit_code == 0, r.output
    assert "central 101 bp" in " ".join(r.output.split()) and "positions 25-125" in r.output
    import pandas as pd

    df = pd.read_csv(tmp_path / "f.tsv", sep="\t")
    assert "N" not in set(df["ref"])
    span = {k: (g["position"].min(), g["position"].max()) for k, g in df.groupby("id")}
    assert span == {"s150": (25, 125), "s60": (1, 60), "s101": (1, 101)}
    for k, g in df.groupby("id"):
        first = g.drop_duplicates("position").sort_values("position")
        lo, hi = span[k]
        assert "".join(first["ref"]) == seqs[k][lo - 1 : hi]
    r = runner.invoke(app, ["ism", str(d), str(fa), "--out", str(tmp_path / "f.npz"), "--start", "30"])
    assert r.exit_code == 0, r.output
    z = np.load(tmp_path / "f.npz")
    assert list(z["offset"]) == [30, 30, 30] and z["effects"].shape == (3, 4, 95, 1)
    assert np.isnan(z["effects"][1, :, 30:]).all() and np.isfinite(z["effects"][1, :, :30]).all()
    r = runner.invoke(app, ["attribute", str(d), str(fa), "--out", str(tmp_path / "a.npz")])
    assert r.exit_code == 0, r.output
    a = np.load(tmp_path / "a.npz")
    assert list(a["offset"]) == [24, 0, 0] and a["attributions"].shape == (3, 4, 101)
    assert np.isnan(a["attributions"][1, :, 60:]).all() and np.isfinite(a["attributions"][1, :, :60]).all()


def test_an_unknown_jaspar_release_is_one_clear_error():
    with pytest.raises(BiodlInputError, match=r"JASPAR release 'JASPAR1999' is not in .*JASPAR2024"):
        load_jaspar(release="JASPAR1999")


# ------------------------------------------------------------------ strands, as `biodl predict`
class _BothStrands(nn.Module):
    """The score `biodl predict` gives a model trained with --rc-augment: the mean of both strands."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.model(x) + self.model(x.flip(dims=(-2, -1)))) / 2


@pytest.mark.parametrize("name,model,L,method", _models()[:3], ids=[m[0] for m in _models()[:3]])
def test_ism_rc_average_is_the_ism_of_the_strand_mean(name, model, L, method):
    """ISM with rc_average (each strand through its fast path) = ISM of the strand-mean model."""
    model.eval()
    X = _onehot(2, L, seed=6)
    got, y0 = saturation_mutagenesis(model, X, start=2, end=L - 3, rc_average=True, return_reference=True)
    both = _BothStrands(model).eval()
    want = saturation_mutagenesis(both, X, start=2, end=L - 3, method="full")
    torch.testing.assert_close(got, want, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(y0, both(X).reshape(2, -1), atol=1e-5, rtol=1e-5)


def _deepsea_run(path, seed: int, **meta):
    """A run directory of a small untrained fixed-length DeepSEA (101 bp); ``meta``: more of its
    record (``rc_augment=True``: trained, as it says, on both strands)."""
    path.mkdir()
    torch.manual_seed(seed)
    kw = dict(n_outputs=1, seq_len=101, n_filters=[4, 4, 4], hidden=4, kernel_size=4, pool_size=2)
    record = {"recipe": "deepsea", "model_kwargs": kw, "seq_len": 101, "n_value": 0.25}
    record.update(task="binary", label_names=["y"], **meta)
    save_legacy_model(path / "model.pt", DeepSEA(**kw), record)
    return path


def _rc_run(path, rc_augment: bool = True):
    """A run of :func:`_deepsea_run` trained (as its meta says) with --rc-augment, or not:
    `biodl predict` averages both strands of the first."""
    return _deepsea_run(path, 5, rc_augment=rc_augment)


def test_ism_of_an_rc_averaged_model_equals_predict_of_the_mutants(tmp_path):
    """`biodl ism` scores as `biodl predict` does: for a model trained with --rc-augment the
    reference is predict's logit (both strands averaged) and each effect is predict(mutant) -
    predict(reference); --no-rc-average matches predict --no-rc-average."""
    import pandas as pd

    from biodl import pipeline

    run = _rc_run(tmp_path / "run")
    rng = np.random.default_rng(0)
    seqs = {f"s{i}": "".join(rng.choice(list("ACGT"), 101)) for i in range(2)}
    fa = tmp_path / "s.fa"
    fa.write_text("".join(f">{k}\n{v}\n" for k, v in seqs.items()))
    mut, keys = [], []
    for k, s in seqs.items():
        for j in range(0, 101, 7):
            for b in "ACGT":
                if b != s[j]:
                    mut.append(f">{k}|{j}|{b}\n{s[:j]}{b}{s[j + 1 :]}\n")
                    keys.append((k, j, b))
    mfa = tmp_path / "mut.fa"
    mfa.write_text("".join(mut))
    for flag, opts in (([], {}), (["--no-rc-average"], {"rc_average": False})):
        out = tmp_path / f"ism{len(flag)}.npz"
        r = runner.invoke(app, ["ism", str(run), str(fa), "--out", str(out), *flag])
        assert r.exit_code == 0, r.output
        assert ("given strand" if flag else "both strands averaged") in r.output
        z = np.load(out)
        ref = pipeline.predict(run, fa, options=opts, quiet=True)["logit_y"].to_numpy()
        np.testing.assert_allclose(z["reference"][:, 0], ref, atol=1e-5)
        pm = pipeline.predict(run, mfa, options=opts, quiet=True)["logit_y"].to_numpy()
        ids = list(z["ids"])
        got = [z["effects"][ids.index(k), "ACGT".index(b), j, 0] for k, j, b in keys]
        want = pm - pd.Series(ref, index=ids)[[k for k, _, _ in keys]].to_numpy()
        np.testing.assert_allclose(got, want, atol=2e-5)


def test_attribute_of_an_rc_averaged_model_is_of_the_strand_mean(tmp_path):
    """`biodl attribute` attributes predict's score: saliency of the mean of both strands for a
    model trained with --rc-augment (of the given strand with --no-rc-average)."""
    from biodl.train import load_model

    run = _rc_run(tmp_path / "run")
    rng = np.random.default_rng(1)
    seqs = ["".join(rng.choice(list("ACGT"), 101)) for _ in range(2)]
    fa = tmp_path / "s.fa"
    fa.write_text("".join(f">s{i}\n{s}\n" for i, s in enumerate(seqs)))
    model, _ = load_model(run)
    from biodl.encode import one_hot

    X = torch.from_numpy(np.stack([one_hot(s) for s in seqs])).float()
    for flag, fn in (([], _BothStrands(model)), (["--no-rc-average"], model)):
        out = tmp_path / f"a{len(flag)}.npz"
        r = runner.invoke(
            app, ["attribute", str(run), str(fa), "--method", "saliency", "--out", str(out), *flag]
        )
        assert r.exit_code == 0, r.output
        x = X.clone().requires_grad_(True)
        fn(x)[:, 0].sum().backward()
        np.testing.assert_allclose(np.load(out)["attributions"], x.grad.numpy(), atol=1e-6)
    # the library functions take the same switch; DeepLIFT runs each strand separately
    net = _relu_net()
    Xs = _onehot(3, 20, seed=8)
    refs = A.shuffled_references(Xs, 2, seed=0)
    dl, d = A.deep_lift_shap(net, Xs, 0, references=refs, rc_average=True, return_delta=True)
    f = A.deep_lift_shap(net, Xs, 0, references=refs)
    r_ = A.deep_lift_shap(net, Xs.flip(dims=(-2, -1)), 0, references=refs.flip(dims=(-2, -1)))
    torch.testing.assert_close(dl, (f + r_.flip(dims=(-2, -1))) / 2)
    assert float(d.abs().max()) < 1e-4  # completeness holds for the strand mean too


def test_ism_batch_size_below_one_is_refused(tiny_run, tmp_path):
    """A batch size under 1 evaluated no edit and wrote all-zero effects (or crashed on 0)."""
    for bs in ("-3", "0"):
        out = tmp_path / "x.tsv"
        r = runner.invoke(
            app, ["ism", str(tiny_run), str(tiny_run / "seqs.fa"), "--out", str(out), "--batch-size", bs]
        )
        assert r.exit_code == 2 and f"--batch-size must be at least 1, got {bs}" in r.output
        assert not out.exists()
    model = DeepBind(1, num_motifs=3, motif_len=4, hidden=0).eval()
    with pytest.raises(BiodlInputError, match="at least 1"):
        saturation_mutagenesis(model, _onehot(1, 20), batch_size=-1)


# ------------------------------------------------------------------ motif databases
def _meme_text(tmp_path) -> str:
    rng = np.random.default_rng(0)
    pwms = [rng.dirichlet(np.ones(4), size=w) for w in (6, 5)]
    return write_meme(tmp_path / "two.meme", pwms, names=["M1 one", "M2 two"]).read_text()


def test_a_motif_file_named_like_jaspar_is_a_file_and_bad_specs_are_refused(tmp_path, monkeypatch):
    from biodl.interpret.motifs import load_motif_db

    text = _meme_text(tmp_path)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "JASPAR2024_CORE_non-redundant_pfms_meme.txt").write_text(text)
    (tmp_path / "jaspar").mkdir()
    (tmp_path / "jaspar" / "my.meme").write_text(text)
    for name in ("JASPAR2024_CORE_non-redundant_pfms_meme.txt", "jaspar/my.meme"):
        motifs, desc = load_motif_db(name)
        assert [m.id for m in motifs] == ["M1", "M2"] and desc.startswith(name)
    for spec in ("jaspar2024", "jaspar:vertebrates:JASPAR2024:extra", "jasparx"):
        with pytest.raises(BiodlInputError, match="jaspar:TAX_GROUP:RELEASE"):
            load_motif_db(spec)


@pytest.mark.parametrize(
    "edit,match",
    [
        (lambda t: t.replace("MOTIF M1 one", "MOTIF"), r"line \d+: a MOTIF line without a motif name"),
        (lambda t: t.replace("w= 6", "w= 8"), r"line \d+: motif 'M1 one': w= 8 but its matrix has 6 row"),
        (lambda t: t.replace("w= 6", "w= 4"), r"motif 'M1 one': w= 4 but its matrix has more rows"),
        (lambda t: _row(t, 0, "0.25 0.25 0.5"), r"line 13: motif 'M1 one': a matrix row of 3 value"),
        (lambda t: _row(t, 1, "0.25 abc 0.25 0.5"), r"line 14: motif 'M1 one': 'abc' in its matrix is not"),
        (lambda t: _row(t, 2, "0 0 0 0"), r"line 15: motif 'M1 one': an all-zero matrix row"),
        (lambda t: t.replace("alength= 4 w= 5", "alength= 20 w= 5"), r"motif 'M2 two': alength= 20"),
        (lambda t: "\n".join(t.splitlines()[:-3]), r"motif 'M2 two': w= 5 but its matrix has 2 row.*cut"),
        (lambda t: t.replace("ALPHABET= ACGT", "ALPHABET= ACDEFGHIKLMNPQRSTVWY"), r"line 3: alphabet"),
    ],
    ids=[
        "noname",
        "w-too-big",
        "w-too-small",
        "short-row",
        "not-a-number",
        "zero-row",
        "alength",
        "cut",
        "alphabet",
    ],
)
def test_a_bad_meme_file_names_the_motif_and_line(tmp_path, edit, match):
    bad = tmp_path / "bad.meme"
    bad.write_text(edit(_meme_text(tmp_path)))
    where = r"bad\.meme, " if match.startswith("line") else r"bad\.meme, line \d+: "
    with pytest.raises(BiodlInputError, match=where + match):
        read_meme_motifs(bad)


def _row(text: str, k: int, new: str) -> str:
    """``text`` with row ``k`` of its first matrix replaced by ``new`` (rows start at line 13)."""
    lines = text.splitlines()
    lines[12 + k] = new
    return "\n".join(lines)


def test_motifs_out_equal_to_the_pwm_file_is_refused(tiny_run, tmp_path):
    (tmp_path / "db.meme").write_text(_meme_text(tmp_path))
    meme = tiny_run / "filters.meme"
    before = meme.read_bytes() if meme.exists() else None
    r = runner.invoke(app, ["motifs", str(tiny_run), "--db", str(tmp_path / "db.meme"), "--out", str(meme)])
    assert r.exit_code == 2 and "PWM file (filters.meme)" in r.output
    assert (meme.read_bytes() if meme.exists() else None) == before


# ------------------------------------------------------------------ unfinished runs
def _unfinished(path, with_model: bool = True):
    """A run directory whose run.json says 'running' (a training killed mid-way)."""
    from biodl.train.checkpoint import load_model, save_model, write_run_json

    run = _rc_run(path)
    model, meta = load_model(run)
    meta = meta.replace(status="running")
    write_run_json(run, meta)
    if with_model:
        save_model(run / "model.pt", model, meta.replace(status="finished"))
    else:
        (run / "model.pt").unlink()
    return run


def test_interpretation_of_an_unfinished_run_warns_or_refuses_as_predict(tmp_path):
    from pathlib import Path

    data = Path(__file__).parent / "data" / "interpret"
    VCF, GENOME = data / "variants.vcf", data / "ecoli_4kb.fa"
    run = _unfinished(tmp_path / "run")
    fa = tmp_path / "s.fa"
    fa.write_text(">a\n" + "ACGT" * 25 + "A\n")
    (tmp_path / "db.meme").write_text(_meme_text(tmp_path))
    cmds = {
        "ism": ["ism", str(run), str(fa), "--out", str(tmp_path / "i.tsv")],
        "attribute": ["attribute", str(run), str(fa), "--out", str(tmp_path / "a.npz")],
        "variants": [
            "variants",
            str(run),
            "--vcf",
            str(VCF),
            "--genome",
            str(GENOME),
            "--out",
            str(tmp_path / "v.tsv"),
        ],
        "motifs": ["motifs", str(run), "--db", str(tmp_path / "db.meme"), "--test", str(fa)],
    }
    for name, args in cmds.items():
        r = runner.invoke(app, args)
        text = " ".join(r.output.split())
        assert "an unfinished run" in text, (name, r.output)
        if name == "motifs":  # it writes into the run: refused, as `biodl report`
            assert r.exit_code == 2 and not (run / "filters.meme").exists()
        else:
            assert r.exit_code == 0 and "warning" in text, (name, r.output)
    gone = _unfinished(tmp_path / "gone", with_model=False)
    for name, args in cmds.items():
        r = runner.invoke(app, [str(gone) if a == str(run) else a for a in args])
        text = " ".join(r.output.split())
        assert r.exit_code == 2 and "interrupted before its first model was saved" in text, (name, r.output)


def test_a_run_being_trained_now_is_said_so_not_interrupted(tmp_path):
    """While `biodl train` holds the run's lock, the run is training, not interrupted: the
    advice to rerun the training (which the lock then refuses) is not given."""
    from biodl.io._util import directory_lock
    from biodl.pipeline import RUN_LOCK

    run = _unfinished(tmp_path / "run")
    gone = _unfinished(tmp_path / "gone", with_model=False)
    fa = tmp_path / "s.fa"
    fa.write_text(">a\n" + "ACGT" * 25 + "A\n")
    (tmp_path / "db.meme").write_text(_meme_text(tmp_path))
    with directory_lock(run, RUN_LOCK, "biodl train", "run directory"):
        r = runner.invoke(app, ["ism", str(run), str(fa), "--out", str(tmp_path / "i.tsv")])
        text = " ".join(r.output.split())
        assert r.exit_code == 0 and "`biodl train` is training this run now (process" in text, r.output
        assert "interrupted" not in text
        r = runner.invoke(app, ["motifs", str(run), "--db", str(tmp_path / "db.meme"), "--test", str(fa)])
        text = " ".join(r.output.split())
        assert r.exit_code == 2 and "`biodl motifs` it when the training has finished" in text, r.output
    with directory_lock(gone, RUN_LOCK, "biodl train", "run directory"):
        r = runner.invoke(app, ["ism", str(gone), str(fa), "--out", str(tmp_path / "j.tsv")])
        text = " ".join(r.output.split())
        assert r.exit_code == 2 and "its model is not saved yet" in text and "interrupted" not in text
    r = runner.invoke(app, ["ism", str(gone), str(fa), "--out", str(tmp_path / "j.tsv")])
    assert "interrupted before its first model was saved" in " ".join(r.output.split())  # lock released


def _modes(model: nn.Module) -> list[bool]:
    return [m.training for m in model.modules()]


def test_interpretation_returns_the_model_in_the_modes_it_came_in():
    """Every scoring helper runs the model in eval mode and hands it back as it came, submodule
    by submodule (a training model with a frozen batch norm stays so), also when it raises."""
    from biodl.interpret.filters import filter_pwms
    from biodl.interpret.variants import VariantWindow, score_variants
    from biodl.train.predict import predict

    model = Basset(2, seq_len=130)
    model.train()
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d)]
    bns[0].eval()  # frozen statistics, as a fine-tuning user keeps them
    before = _modes(model)
    assert True in before and False in before
    X = _onehot(3, 130, seed=7)
    seen = []
    hook = model.register_forward_pre_hook(lambda m, a: seen.append(m.training))
    calls = {
        "saliency": lambda: A.saliency(model, X),
        "input_x_gradient": lambda: A.input_x_gradient(model, X),
        "integrated_gradients": lambda: A.integrated_gradients(model, X, n_steps=4, tolerance=10),
        "deep_lift_shap": lambda: A.deep_lift_shap(model, X, n_shuffles=1, tolerance=10),
        "ism": lambda: saturation_mutagenesis(model, X, start=0, end=3),
        "filter_pwms": lambda: filter_pwms(model, X),
        "predict": lambda: predict(model, torch.utils.data.TensorDataset(X), batch_size=2),
        "variants": lambda: score_variants(
            model, [VariantWindow(1, "c", 20, ".", "A", "C", ref_seq="A" * 130, alt_seq="C" * 130)]
        ),
    }
    for name, call in calls.items():
        seen.clear()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            call()
        assert seen and not any(seen), name  # scored in eval mode
        assert _modes(model) == before, name
    hook.remove()
    with pytest.raises(BiodlInputError):
        A.integrated_gradients(model, X, baseline=torch.zeros(2, 4, 7))
    with pytest.raises(BiodlInputError):
        A.deep_lift_shap(model, X, references=torch.zeros(1, 2, 4, 130))
    assert _modes(model) == before


def test_interpretation_takes_numpy_one_hot_and_a_loaded_model_and_refuses_what_it_cannot_score(tiny_run):
    """biodl.encode.one_hot_batch returns numpy and biodl.load a Model: both failed inside torch;
    an empty batch or an output the model lacks failed inside captum / an assert."""
    import biodl
    from biodl.encode import one_hot_batch
    from biodl.interpret.filters import filter_pwms

    m = biodl.load(tiny_run)
    Xn = one_hot_batch(["ACGT" * 25, "TTGA" * 25])
    X = torch.from_numpy(Xn)
    torch.testing.assert_close(A.saliency(m, Xn), A.saliency(m.module, X))
    torch.testing.assert_close(saturation_mutagenesis(m, Xn), saturation_mutagenesis(m.module, X))
    assert ism_scores(saturation_mutagenesis(m, Xn), Xn).shape == (2, 4, 100)
    assert filter_pwms(m, Xn)[0].shape[0] == filter_pwms(m.module, X)[0].shape[0]
    for call, match in (
        (lambda: A.saliency(m, Xn[:0]), "at least one sequence"),
        (lambda: saturation_mutagenesis(m, X[:0]), "at least one sequence"),
        (lambda: A.attribute(m, X, "saliency", target=5), "target 5 is not an output"),
        (lambda: A.saliency("model", X), "expected a network"),
        (lambda: A.saliency(m, ["ACGT"]), "as a torch tensor or numpy array"),
    ):
        with pytest.raises(BiodlInputError, match=match):
            call()


def test_attribute_adds_up_the_completeness_check_over_length_groups(tiny_run, tmp_path, monkeypatch):
    """Sequences of several lengths are attributed per length: the completeness warning was
    said per group ("1 of 1 sequence(s)", once per text) and named none; now one line for the
    file, naming the sequences."""
    import warnings

    from biodl.interpret import attributions as attr

    def fake(model, X, method, target, rc_average=False, **kw):
        rows = np.array([0])
        msg = attr.completeness_message("integrated gradients", 1, len(X), 0.3, 0.05)
        warnings.warn(
            attr.CompletenessWarning(msg, rows, len(X), 0.3, "integrated gradients", 0.05), stacklevel=2
        )
        z = torch.zeros(X.shape)
        return z, torch.zeros(len(X))

    monkeypatch.setattr(attr, "attribute", fake)
    fa = tmp_path / "mixed.fa"
    _mixed_fasta(fa)
    r = runner.invoke(app, ["attribute", str(tiny_run), str(fa), "--out", str(tmp_path / "a.npz")])
    assert r.exit_code == 0, r.output
    out = " ".join(r.output.split())
    assert out.count("completeness check failed") == 1
    assert "completeness check failed for 3 of 3 sequence(s): 's150', 's60', 's101'" in out


def _sites_over_threshold(acts: list[torch.Tensor]) -> np.ndarray:
    """Windows per filter whose activation reaches half the filter's maximum, over ``acts``
    (each ``(n, F, P)``)."""
    a = torch.cat(acts)
    amax = a.amax(dim=(0, 2), keepdim=True)
    return ((a >= 0.5 * amax) & (a > 0)).sum(dim=(0, 2)).numpy()


def test_filter_pwms_use_every_strand_and_the_normalised_activation():
    """A DeepBind scoring both strands ran its convolution twice and the PWMs kept the reverse
    strand's windows only (about half the sites); Basset's filters were thresholded before the
    batch normalisation that follows them, on other windows than the network uses."""
    from biodl.interpret.filters import filter_pwms

    torch.manual_seed(0)
    x = _onehot(40, 60, seed=3)
    db = DeepBind(n_outputs=1, num_motifs=4, motif_len=8, hidden=0, reverse_complement=True).eval()
    _, n_sites = filter_pwms(db, x)
    conv = next(m for m in db.modules() if isinstance(m, nn.Conv1d))
    calls = []
    h = conv.register_forward_hook(lambda mod, i, o: calls.append(torch.relu(o.detach())))
    with torch.no_grad():
        db(x)
    h.remove()
    assert len(calls) == 2  # both strands
    assert n_sites.tolist() == _sites_over_threshold(calls).tolist()
    assert (n_sites > _sites_over_threshold(calls[1:])).any()  # more than the last strand's alone

    xb = _onehot(20, 130, seed=4)
    bs = Basset(2, seq_len=130).eval()
    with torch.no_grad():
        for m in bs.modules():  # a batch norm that is not the identity
            if isinstance(m, nn.BatchNorm1d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    _, n_bs = filter_pwms(bs, xb)
    conv = next(m for m in bs.modules() if isinstance(m, nn.Conv1d))
    bn = next(m for m in bs.modules() if isinstance(m, nn.BatchNorm1d))
    with torch.no_grad():
        expect = _sites_over_threshold([torch.relu(bn(conv(xb)))])
    assert n_bs.tolist() == expect.tolist()


def test_variants_read_a_genomes_iupac_codes_as_n(tiny_run, tmp_path):
    """An IUPAC code (R, Y, ...) in the genome near a variant stopped the whole run ('sequence 2:
    invalid character R', naming no record); genome windows and BED predictions read it as N."""
    from pathlib import Path

    data = Path(__file__).parent / "data" / "interpret"
    lines = (data / "ecoli_4kb.fa").read_text().splitlines()
    seq = "".join(lines[1:])
    seq = seq[:339] + "R" + seq[340:]
    g = tmp_path / "g.fa"
    g.write_text(lines[0] + "\n" + "\n".join(seq[i : i + 80] for i in range(0, len(seq), 80)) + "\n")
    args = ["variants", str(tiny_run), "--vcf", str(data / "variants.vcf"), "--genome", str(g)]
    r = runner.invoke(app, [*args, "--out", str(tmp_path / "v.tsv")])
    assert r.exit_code == 0, r.output
    assert "invalid character" not in r.output


def test_motif_matching_compiles_where_numba_cannot_write_its_cache(monkeypatch, tmp_path):
    """A read-only install and home: memelite's import raised numba's 'cannot cache function ...:
    no locator available' (an internal error; the report dropped its motif section). The cache
    goes to a folder under the temporary directory and the import is retried."""
    import builtins
    import sys

    import numba

    from biodl.interpret import motifs as Mo

    real_import, calls = builtins.__import__, []

    def failing_once(name, *args, **kwargs):
        if name == "memelite.tomtom" and not calls:
            calls.append(name)
            raise RuntimeError("cannot cache function 'logaddexp2': no locator available for file 'fimo.py'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", failing_once)
    monkeypatch.setattr(numba.config, "CACHE_DIR", numba.config.CACHE_DIR)  # put back afterwards
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    for name in [m for m in sys.modules if m.startswith("memelite")]:
        monkeypatch.delitem(sys.modules, name)
    tomtom = Mo._tomtom()
    assert calls and callable(tomtom)
    assert numba.config.CACHE_DIR == str(tmp_path / f"biodl-numba-{os.getuid()}")
