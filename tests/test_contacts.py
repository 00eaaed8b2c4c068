"""The protein contacts kind: readers and their errors, coevolution scores with known answers,
plmDCA on a planted coupling and against CCMpred on a real alignment, RR files, precision, the
forests-as-tensors, the DEEPCON port's layout and ``biodl contacts predict``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from biodl.errors import BiodlInputError
from biodl.kinds.contacts import coevolution as co
from biodl.kinds.contacts.io import (
    ALPHABET,
    MSA,
    Native,
    native_distances,
    read_manifest,
    read_msa,
    read_rr,
    read_structure,
    rr_matrix,
    write_rr,
)
from biodl.kinds.contacts.scoring import precision

D = Path(__file__).parent / "data" / "contacts"
Q3E7U = "GFGCNGPWDEDDMQCHNHCKSIKGYKGGYCAKGGFVCKCY"


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _msa(rows: list[str]) -> MSA:
    codes = np.array([[ALPHABET.index(c) for c in r] for r in rows], dtype=np.uint8)
    return MSA(codes, [f"s{k}" for k in range(len(rows))], rows[0].replace("-", "X"))


# ------------------------------------------------------------------------------------ readers
def test_a3m_inserts_are_dropped_and_query_columns_kept(tmp_path) -> None:
    f = tmp_path / "x.a3m"
    f.write_text(">q\nAC-DE\n>s1\nAaCcGDE\n>s2\nW.C.GDE\n")
    m = read_msa(f)
    assert m.query == "ACDE" and m.L == 4 and m.n_seqs == 3  # the query's gap column dropped
    assert "".join(ALPHABET[c] for c in m.codes[1]) == "ACDE"
    assert "".join(ALPHABET[c] for c in m.codes[2]) == "WCDE"


@pytest.mark.parametrize(
    "text,match",
    [
        (">a\nACDE\n>b\nACD\n", r"ragged alignment: sequence 'b' has 3 columns, the first has 4"),
        (">a\nACDE\n>b\nAC1E\n", r"unknown character '1' in sequence 'b' at column 3"),
        ("\n\n", r"empty alignment"),
        (">a\n>b\n", r"empty alignment"),
    ],
)
def test_bad_alignments_get_clear_errors(tmp_path, text, match) -> None:
    f = tmp_path / "bad.fasta"
    f.write_text(text)
    with pytest.raises(BiodlInputError, match=match) as e:
        read_msa(f)
    assert str(f) in str(e.value)


def test_query_is_found_by_sequence_in_a_psicov_aln(tmp_path) -> None:
    f = tmp_path / "x.aln"
    f.write_text("ACDEFGHIKLMN\nACDEFGHIKL--\n-CDEFGHIKLMW\nWCDEFGHIKLMN\n")
    m = read_msa(f, query="WCDEFGHIKLMN")  # the 4th row, not the first
    assert m.query_row == 3 and m.query == "WCDEFGHIKLMN" and m.n_seqs == 4
    # a query longer than the alignment (it covers one domain of it) is found too
    m2 = read_msa(f, query="MMMM" + "WCDEFGHIKLMN" + "PPPP")
    assert m2.query_row == 3
    with pytest.raises(BiodlInputError, match="query not found"):
        read_msa(f, query="PPPPPPPPPPPPPPPPRRRRRRRR")


def test_shipped_aln_stockholm_and_weights(tmp_path) -> None:
    m = read_msa(D / "3e7u.aln")
    assert m.query == Q3E7U and m.n_seqs == 221
    st = tmp_path / "x.sto"
    st.write_text("# STOCKHOLM 1.0\nq  AC-DE\ns1 ACGDE\ns2 WC-DE\n//\n")
    s = read_msa(st)
    assert s.query == "ACDE" and s.n_seqs == 3
    w = co.sequence_weights(_msa(["ACDEF", "ACDEF", "WWWWW"]), 0.8)
    np.testing.assert_allclose(w, [0.5, 0.5, 1.0])
    assert co.meff(w) == pytest.approx(2.0)


def test_structure_reader_chain_errors_and_alignment_to_the_query() -> None:
    n = read_structure(D / "3e7u_cacb.pdb")
    assert n.sequence == Q3E7U and n.distances.shape == (40, 40)
    with pytest.raises(BiodlInputError, match=r"chain 'B' not in the structure \(chains: 'X'\)"):
        read_structure(D / "3e7u_cacb.pdb", chain="B")
    # the query is longer than the structure: residues are matched by alignment, not by index
    query = "MKTAYIAKQR" + Q3E7U
    d = native_distances(query, n)
    assert np.isnan(d[:10]).all() and np.allclose(d[10:, 10:], n.distances)
    with pytest.raises(BiodlInputError, match="does not match the query"):
        native_distances("W" * 40, n)


def test_gly_uses_ca(tmp_path) -> None:
    pdb = tmp_path / "g.pdb"
    lines = [
        ("CA", "GLY", 1, (0, 0, 0)),
        ("CA", "ALA", 2, (10, 0, 0)),
        ("CB", "ALA", 2, (13, 4, 0)),
    ]
    pdb.write_text(
        "".join(
            f"ATOM  {k + 1:5d}  {a:<3s} {r} A{n:4d}    {x:8.3f}{y:8.3f}{z:8.3f}  1.00  0.00           C\n"
            for k, (a, r, n, (x, y, z)) in enumerate(lines)
        )
        + "END\n"
    )
    n = read_structure(pdb)
    assert n.sequence == "GA" and n.distances[0, 1] == pytest.approx(np.hypot(13, 4))


def test_a_structure_without_cb_atoms_is_said_to_be_scored_on_ca(tmp_path, capsys) -> None:
    nocb = tmp_path / "nocb.pdb"
    nocb.write_text("".join(ln for ln in (D / "3e7u_cacb.pdb").open() if " CB " not in ln))
    n = read_structure(nocb, query=Q3E7U)
    err = " ".join(capsys.readouterr().err.split())
    assert f"{nocb}:{n.chain}: 32 of 32 non-glycine residues have no CB atom (a CA-only model?)" in err
    assert "scored on CA distances" in err and "\u274c" not in err  # not rich's :X: emoji
    read_structure(D / "3e7u_cacb.pdb", query=Q3E7U)
    assert "no CB atom" not in capsys.readouterr().err


def test_protein_tables_without_ids_and_with_repeated_ids(tmp_path) -> None:
    from biodl.kinds.contacts.io import is_manifest, read_manifest

    t = tmp_path / "noid.tsv"
    t.write_text(f"msa\tnative\n{D / '3e7u.aln'}\t{D / '3e7u_cacb.pdb'}\n")
    assert is_manifest(t)
    assert [p.id for p in read_manifest(t)] == ["3e7u"]
    dup = tmp_path / "dup.tsv"
    dup.write_text(f"id\tmsa\nA\t{D / '3e7u.aln'}\nB\t{D / '3e7u.aln'}\nA\t{D / '3e7u.aln'}\n")
    with pytest.raises(
        BiodlInputError, match=r"dup\.tsv, line 4: protein id 'A' is listed twice \(lines 2 and 4\)"
    ):
        read_manifest(dup)


def test_a_byte_order_mark_is_not_part_of_the_alignment(tmp_path) -> None:
    plain = read_msa(D / "3e7u.aln")
    bom = tmp_path / "bom.aln"
    bom.write_bytes(b"\xef\xbb\xbf" + (D / "3e7u.aln").read_bytes())
    assert np.array_equal(read_msa(bom).codes, plain.codes)
    fa = tmp_path / "bom.fa"
    fa.write_bytes(b"\xef\xbb\xbf>q\nACDEFGHIKL\n>s\nACDEFGHIKV\n")
    assert read_msa(fa).query == "ACDEFGHIKL"


# ------------------------------------------------------------------------------- coevolution
def test_mi_and_apc_on_a_hand_made_alignment() -> None:
    # col 0 and col 1 covary perfectly (ln 2), col 2 is constant, col 3 is independent of col 0
    m = _msa(["ADGA", "ADGC", "CEGA", "CEGC"])
    mi = co.mutual_information(m, identity=None, correct=False)
    assert mi[0, 1] == pytest.approx(np.log(2)) and mi[1, 0] == pytest.approx(np.log(2))
    assert abs(mi[0, 2]) < 1e-12 and abs(mi[0, 3]) < 1e-12 and abs(mi[1, 3]) < 1e-12
    s = np.array([[0, 1, 2], [1, 0, 3], [2, 3, 0]], float)
    # row means over j != i: 1.5, 2, 2.5; overall mean 2
    want = s - np.outer([1.5, 2, 2.5], [1.5, 2, 2.5]) / 2.0
    np.fill_diagonal(want, 0)
    np.testing.assert_allclose(co.apc(s), want)


def _gibbs_potts(n: int, L: int, coupled: tuple[int, int], strength: float, seed: int) -> MSA:
    """Samples of a Potts model over 4 amino acids with one planted coupling (identical states
    of the two columns favoured), by Gibbs sampling."""
    rng = np.random.default_rng(seed)
    q = 4
    h = rng.normal(0, 0.3, size=(L, q))
    J = np.zeros((L, L, q, q))
    a, b = coupled
    J[a, b] = J[b, a] = strength * np.eye(q)
    x = rng.integers(0, q, size=(n, L))
    for _ in range(40):
        for i in range(L):
            e = h[i][None, :] + sum(J[i, j][:, x[:, j]].T for j in range(L) if j != i)
            p = np.exp(e - e.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            x[:, i] = (rng.random((n, 1)) > p.cumsum(1)).sum(1)
    codes = x.astype(np.uint8)  # states 0..3 = A R N D
    return MSA(codes, [f"s{k}" for k in range(n)], "".join(ALPHABET[c] for c in codes[0]))


def test_plmdca_recovers_a_planted_coupling() -> None:
    m = _gibbs_potts(600, 8, (1, 5), 1.5, seed=0)
    s = co.plmdca(m, identity=None, max_iter=30)
    iu = np.triu_indices(8, 1)
    best = np.argmax(s[iu])
    assert (iu[0][best], iu[1][best]) == (1, 5)
    _, h, J = co.plmdca(m, identity=None, max_iter=30, correct=False, return_model=True)
    blk = J[1, :4, 5, :4]
    assert np.diag(blk).mean() > blk[~np.eye(4, dtype=bool)].mean() + 0.5  # identical states favoured
    assert J.shape == (8, 21, 8, 21) and np.allclose(J, J.transpose(2, 3, 0, 1))


def test_plmdca_and_psicov_follow_ccmpred_on_a_real_alignment() -> None:
    from scipy.stats import spearmanr

    m = read_msa(D / "3e7u.aln")
    seq, df = read_rr(D / "3e7u.ccmpred.rr")
    assert seq == Q3E7U
    ref = rr_matrix(df, m.L)
    w = co.sequence_weights(m)
    iu = np.triu_indices(m.L, 1)
    iu = tuple(k[np.isfinite(ref[iu])] for k in iu)  # the pairs CCMpred's file lists
    assert len(iu[0]) == 595  # j - i >= 6
    plm = co.plmdca(m, w, max_iter=50)
    assert spearmanr(plm[iu], ref[iu])[0] > 0.8
    mi = co.mutual_information(m, w)
    assert spearmanr(plm[iu], ref[iu])[0] > spearmanr(mi[iu], ref[iu])[0]
    ps = co.psicov(m, w, max_iter=3)
    assert ps.shape == (40, 40) and np.allclose(ps, ps.T) and spearmanr(ps[iu], ref[iu])[0] > 0.5


def _cov21stats(codes: np.ndarray) -> np.ndarray:
    """DEEPCON's cov21stats (loops, as published) on integer codes."""
    nseq, L = codes.shape
    weight = np.ones(nseq)
    for i in range(nseq):
        for j in range(i + 1, nseq):
            nthresh = int(0.38 * L)
            for k in range(L):
                if nthresh > 0 and codes[i, k] != codes[j, k]:
                    nthresh -= 1
            if nthresh > 0:
                weight[i] += 1
                weight[j] += 1
    weight = 1 / weight
    wtsum = weight.sum()
    pa = np.ones((L, 21))
    for i in range(L):
        for k in range(nseq):
            if codes[k, i] < 21:
                pa[i, codes[k, i]] += weight[k]
    pa /= 21.0 + wtsum
    pab = np.full((L, L, 21, 21), 1.0 / 21.0)
    for i in range(L):
        for j in range(L):
            for k in range(nseq):
                a, b = codes[k, i], codes[k, j]
                if a < 21 and b < 21:
                    pab[i, j, a, b] += weight[k]
    pab /= 21.0 + wtsum
    return pab - pa[:, None, :, None] * pa[None, :, None, :]


def test_deepcov_features_equal_deepcons_loops() -> None:
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 22, size=(12, 7)).astype(np.uint8)
    codes[3] = codes[2]  # a neighbour
    m = MSA(codes, [str(k) for k in range(12)], "A" * 7)
    want = _cov21stats(codes).reshape(7, 7, 441).transpose(2, 0, 1)
    np.testing.assert_allclose(co.deepcov_features(m, dtype=torch.float64).numpy(), want, atol=1e-12)


# ---------------------------------------------------------------------------- RR and scoring
def test_rr_round_trip(tmp_path) -> None:
    rng = np.random.default_rng(0)
    s = rng.random((60, 60))
    s = (s + s.T) / 2
    seq = "ACDEFGHIKL" * 6
    write_rr(tmp_path / "m.rr", seq, s, min_sep=6)
    seq2, df = read_rr(tmp_path / "m.rr")
    assert seq2 == seq and len(df) == sum(60 - d for d in range(6, 60))
    assert (np.diff(df["p"].to_numpy()) <= 0).all()  # best first
    m = rr_matrix(df, 60)
    iu = np.triu_indices(60, 6)
    np.testing.assert_allclose(m[iu], s[iu], rtol=1e-5)
    assert np.isnan(m[0, 3])
    (tmp_path / "bad.rr").write_text("ACDE\n1 2 0 8\n")
    with pytest.raises(BiodlInputError, match="5 fields"):
        read_rr(tmp_path / "bad.rr")


def test_precision_counts_the_right_pairs() -> None:
    L = 50
    dist = np.full((L, L), 20.0)
    contacts = [(0, 30), (2, 40), (5, 45), (10, 22)]  # three long-range, one medium (12)
    for i, j in contacts:
        dist[i, j] = dist[j, i] = 5.0
    s = np.zeros((L, L))
    # scores: two true long-range pairs on top, then a false one, then the rest
    for (i, j), v in zip([(0, 30), (2, 40), (1, 35), (5, 45)], [0.9, 0.8, 0.7, 0.6], strict=True):
        s[i, j] = s[j, i] = v
    p = precision(s, dist)
    assert p["long_L/5"] == pytest.approx(3 / 10)  # L/5 = 10 best: three contacts among them
    s2 = np.zeros((L, L))
    s2[0, 30] = s2[30, 0] = s2[2, 40] = s2[40, 2] = 1.0
    p2 = precision(s2, dist, tops={"two": 25.0})  # L/25 = 2 pairs
    assert p2["long_two"] == 1.0 and p2["medium_two"] == 0.0
    # a residue without a coordinate is not ranked and shrinks L
    dist[49, :] = dist[:, 49] = np.nan
    s3 = s.copy()
    s3[10, 49] = s3[49, 10] = 5.0
    assert precision(s3, dist)["long_L/5"] == pytest.approx(3 / 9)


# -------------------------------------------------------------------------- models and CLI
def test_forest_tensors_match_scikit_learn() -> None:
    from sklearn.ensemble import RandomForestClassifier

    from biodl.models.contacts import TreeForest

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 6)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] ** 2 + rng.normal(0, 0.3, 400) > 0.5).astype(int)
    rf = RandomForestClassifier(n_estimators=7, min_samples_leaf=3, random_state=0).fit(x, y)
    f = TreeForest(*TreeForest.shape_of(rf))
    f.set_forest(rf)
    np.testing.assert_allclose(f(torch.from_numpy(x)).numpy(), rf.predict_proba(x)[:, 1], atol=1e-6)


def test_pconsc2_cross_fits_the_maps_its_next_layer_trains_on(monkeypatch) -> None:
    """With inner_folds, a training protein's map for the next layer comes from a forest that
    never saw that protein: every inner forest leaves a group out, the groups cover all proteins."""
    import sklearn.ensemble

    from biodl.kinds.contacts.kind import ProteinMaps, fit_pconsc2
    from biodl.models.contacts import PconsC2

    seen: list[set] = []  # per forest fitted: the proteins (told apart by their log-L channel) in X

    class Recording(sklearn.ensemble.RandomForestClassifier):
        def fit(self, X, y, sample_weight=None):
            seen.append(set(np.round(np.exp(X[:, 3 * 9 + 4]), 3)))  # after 3 maps x 3x3 windows: log L
            return super().fit(X, y, sample_weight)

    monkeypatch.setattr(sklearn.ensemble, "RandomForestClassifier", Recording)
    rng = np.random.default_rng(0)
    prots = []
    for k, L in enumerate((20, 22, 24, 26)):
        idx = np.arange(L)
        d = np.abs(idx[:, None] - idx[None, :]) + rng.normal(0, 3, (L, L))
        d = (d + d.T) / 2 + 4.0
        x = np.concatenate([rng.normal(size=(3, L, L)), np.zeros((4, L, L)), np.full((1, L, L), np.log(L))])
        x[0] -= d / 5
        prots.append(ProteinMaps(f"p{k}", "A" * L, x.astype(np.float32), d, "synthetic", 10.0))
    model = PconsC2(n_maps=3, n_pair=5, n_layers=3, n_trees=4, window=3, max_pairs=2000, inner_folds=2)
    model, shapes = fit_pconsc2(model, prots, {"min_sep": 3, "threshold": 8.0}, seed=0, log=lambda s: None)
    assert len(shapes) == 3
    everyone = {20.0, 22.0, 24.0, 26.0}
    # per layer: the layer's forest on everyone, then (all but the last layer) one forest per group
    assert [len(s) for s in seen] == [4, 2, 2, 4, 2, 2, 4]
    for a in (1, 4):
        left_out = [everyone - seen[a], everyone - seen[a + 1]]
        assert all(left_out) and not (left_out[0] & left_out[1]) and left_out[0] | left_out[1] == everyone
    with torch.no_grad():
        m = model.forward_maps(torch.from_numpy(prots[0].x))[-1]
    assert m.shape == (20, 20) and torch.isfinite(m).all()


def test_deepcon_converter_maps_keras_layout(tmp_path) -> None:
    import h5py

    from biodl.models.contacts import DeepCovFCN, deepcon_state_dict

    torch.manual_seed(0)
    a = DeepCovFCN(n_channels=10, width=4, n_blocks=3).eval()
    for bn in [a.bn_in, *a.bn1, a.bn_out]:
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2)
    convs = [a.conv_in] + [m for p in zip(a.conv1, a.conv2, strict=True) for m in p] + [a.conv_out]
    bns = [a.bn_in, *a.bn1, a.bn_out]
    with h5py.File(tmp_path / "w.hdf5", "w") as f:
        g = f.create_group("model_weights")
        for k, c in enumerate(convs, start=1):
            gg = g.create_group(f"conv2d_{k}/conv2d_{k}")
            gg["kernel:0"] = c.weight.detach().permute(2, 3, 1, 0).numpy()
            gg["bias:0"] = c.bias.detach().numpy()
        for k, b in enumerate(bns, start=1):
            gg = g.create_group(f"batch_normalization_{k}/batch_normalization_{k}")
            for name, t in (("gamma", b.weight), ("beta", b.bias), ("moving_mean", b.running_mean)):
                gg[f"{name}:0"] = t.detach().numpy()
            gg["moving_variance:0"] = b.running_var.numpy()
    b = DeepCovFCN(n_channels=10, width=4, n_blocks=3).eval()
    b.load_state_dict(deepcon_state_dict(tmp_path / "w.hdf5", b))
    x = torch.randn(1, 10, 12, 12)
    with torch.no_grad():
        assert torch.allclose(a(x), b(x), atol=1e-6)
        assert torch.allclose(b(x)[0], b(x)[0].T, atol=1e-6)  # symmetric map
    with pytest.raises(ValueError, match="convolutions"):
        deepcon_state_dict(tmp_path / "w.hdf5", DeepCovFCN(n_channels=10, width=4, n_blocks=4))


def test_deepcon_loads_a_converted_state_dict_and_refuses_other_files(tmp_path) -> None:
    """A `convert-deepcon` file is a torch zip archive too: it must not be taken for the wheel."""
    from biodl.kinds.contacts.predictors import load_deepcon
    from biodl.models.contacts import DeepCovFCN

    torch.manual_seed(1)
    net = DeepCovFCN().eval()
    torch.save({k: v for k, v in net.state_dict().items()}, tmp_path / "deepcon.pt")
    back = load_deepcon(tmp_path / "deepcon.pt")
    for k, v in net.state_dict().items():
        assert torch.equal(back.state_dict()[k], v), k
    (tmp_path / "bad.pt").write_bytes(b"not weights at all")
    with pytest.raises(BiodlInputError, match="not DEEPCON weights"):
        load_deepcon(tmp_path / "bad.pt")
    (tmp_path / "torn.pt").write_bytes(b"PK\x03\x04 a torn archive")
    with pytest.raises(BiodlInputError, match="not DEEPCON weights"):
        load_deepcon(tmp_path / "torn.pt")
    import zipfile

    with zipfile.ZipFile(tmp_path / "other-1.0-py3-none-any.whl", "w") as z:
        z.writestr("other-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\n")
    with pytest.raises(BiodlInputError, match="weights-rdd-covariance.hdf5"):
        load_deepcon(tmp_path / "other-1.0-py3-none-any.whl")


def test_cli_predict_on_the_shipped_alignment(tmp_path) -> None:
    from biodl.cli import app

    out = tmp_path / "3e7u.rr"
    r = CliRunner().invoke(
        app,
        [
            "contacts", "predict", str(D / "3e7u.aln"), "--method", "plmdca", "--plm-iter", "20",
            "--out", str(out), "--pdb", str(D / "3e7u_cacb.pdb"), "--top", "40",
        ],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    seq, df = read_rr(out)
    assert seq == Q3E7U and len(df) == 40 and (df["j"] - df["i"] >= 6).all()
    assert "precision vs 3e7u_cacb.pdb" in r.output and "long" in r.output
    bad = CliRunner().invoke(app, ["contacts", "predict", str(D / "3e7u.aln"), "--method", "pconsc2"])
    assert bad.exit_code != 0 and "needs --model" in bad.output
    bad = CliRunner().invoke(
        app, ["contacts", "predict", str(D / "3e7u.aln"), "--pdb", str(D / "3e7u_cacb.pdb"), "--chain", "Q"]
    )
    assert bad.exit_code != 0 and "chain 'Q' not in the structure" in bad.output


def test_native_from_a_distance_list_is_aligned() -> None:
    from biodl.kinds.contacts.io import read_native

    seq = "KTRWTREEDEKLKKLVEQNGTDDWKVIANYLPNRTDVQCQHRWQKVLNPE"
    n = read_native(D / "1GUU_A.CB", sequence=seq)
    assert isinstance(n, Native) and n.distances.shape == (50, 50) and np.isfinite(n.distances).all()
    m = read_msa(D / "1guuA_300.aln", query=seq)
    d = native_distances(m.query, n)
    assert m.query == seq and np.allclose(d, n.distances)
    with pytest.raises(BiodlInputError, match="needs the structure's sequence"):
        read_native(D / "1GUU_A.CB")


# ---------------------------------------------------------------------- found by probing the CLI
def _predict(*args: str):
    from biodl.cli import app

    return CliRunner().invoke(app, ["contacts", "predict", *map(str, args)])


@pytest.mark.parametrize("header", ["#40\t1", "#A3M#"])
def test_a3m_with_a_leading_hash_line_is_read_as_a3m(tmp_path, header) -> None:
    """ColabFold / HH-suite write a '#' line first: it is not a PSICOV .aln ('ragged')."""
    import gzip

    text = f"{header}\n>q desc\nAC-DE\n>s1\nAaCcGDE\n>s2\nW.C.GDE\n"
    for f in (tmp_path / "x.a3m", tmp_path / "y.a3m.gz"):
        if f.suffix == ".gz":
            f.write_bytes(gzip.compress(text.encode()))
        else:
            f.write_text(text)
        m = read_msa(f)
        assert m.query == "ACDE" and m.n_seqs == 3 and m.names[0] == "q"
        assert "".join(ALPHABET[c] for c in m.codes[1]) == "ACDE"  # inserts dropped: read as A3M
    # the .a2m / .a3m suffix is trusted: rows of equal raw length still lose their inserts
    f = tmp_path / "z.a2m"
    f.write_text("#comment\n\n>q\nACDEy\n>s\nAyCDE\n")
    m = read_msa(f)
    assert m.n_seqs == 2 and m.query == "ACDE"


def test_cli_predict_scores_against_a_distance_list(tmp_path) -> None:
    """A .CB distance list is numbered on the query (or --native-sequence); the error of a
    reader without a sequence names the option of each entry point."""
    from biodl.kinds.contacts.io import read_native

    aln, cb = D / "1guuA_300.aln", D / "1GUU_A.CB"
    r = _predict(aln, "--method", "mi", "--pdb", cb, "--out", tmp_path / "a.rr")
    assert r.exit_code == 0, r.output
    assert "precision vs 1GUU_A.CB" in r.output and "distance list" in r.output and "50/50" in r.output
    r = _predict(aln, "--method", "mi", "--pdb", cb, "--native-sequence", "KTRWT", "--out", tmp_path / "b.rr")
    assert r.exit_code != 0 and "outside 1..5" in r.output and "1GUU_A.CB" in r.output
    r = _predict(aln, "--method", "mi", "--pdb", D / "3e7u_cacb.pdb", "--native-sequence", "KTRWT")
    assert r.exit_code != 0 and "--native-sequence goes with a .CB distance list" in r.output
    with pytest.raises(BiodlInputError, match="native_sequence") as e:
        read_native(cb)
    assert "--set sequence" not in str(e.value)


def test_a_single_sequence_is_refused_by_every_method(tmp_path) -> None:
    from biodl.kinds.contacts.predictors import predict_map

    m = _msa(["ACDEFGHIKL"])
    for method in ("mi", "psicov", "plmdca"):
        with pytest.raises(BiodlInputError, match="one sequence only"):
            predict_map(m, method)
    f = tmp_path / "one.aln"
    f.write_text("ACDEFGHIKL\n")
    r = _predict(f, "--method", "mi")
    assert r.exit_code != 0 and "one sequence only" in r.output and "one.aln" in r.output
    # ten copies of one sequence: a full map of floating-point noise was written as contacts
    same = _msa(["ACDEFGHIKL"] * 10)
    for method in ("mi", "psicov", "plmdca"):
        with pytest.raises(BiodlInputError, match="10 sequences are all the same"):
            predict_map(same, method)
    with pytest.raises(BiodlInputError, match="differ in one column only"):
        predict_map(_msa(["ACDEFGHIKL"] * 9 + ["ACDEFGHIKA"]), "mi")
    f = tmp_path / "same.aln"
    f.write_text("ACDEFGHIKL\n" * 10)
    r = _predict(f, "--method", "psicov")
    assert r.exit_code != 0 and "all the same (no column varies)" in " ".join(r.output.split())


@pytest.mark.parametrize(
    "flag,value",
    [("--plm-iter", "0"), ("--top", "-3"), ("--top", "0"), ("--psicov-iter", "-1"), ("--min-sep", "0")],
)
def test_cli_predict_refuses_out_of_range_numbers(flag, value) -> None:
    r = _predict(D / "3e7u.aln", "--method", "mi", flag, value)
    assert r.exit_code == 2 and flag in r.output and "0 8" not in r.output


def test_model_and_weights_choose_the_method(tmp_path) -> None:
    from biodl.kinds.contacts.predictors import resolve_method
    from biodl.kinds.contacts.report import contact_sections

    assert resolve_method(None) == "plmdca" and resolve_method("MI") == "mi"
    assert resolve_method(None, model="run") == "pconsc2"
    assert resolve_method(None, weights="w.pt") == "deepcon"
    with pytest.raises(BiodlInputError, match="--method pconsc2 only, not mi"):
        resolve_method("mi", model="run")
    with pytest.raises(BiodlInputError, match="--method deepcon only, not plmdca"):
        resolve_method("plmdca", weights="w.pt")
    with pytest.raises(BiodlInputError, match="not both"):
        resolve_method(None, model="run", weights="w.pt")
    r = _predict(D / "3e7u.aln", "--method", "mi", "--model", tmp_path)
    assert r.exit_code != 0 and "pconsc2 only" in r.output
    # --weights alone runs deepcon (here: an empty file, refused naming it)
    (tmp_path / "empty.pt").write_bytes(b"")
    r = _predict(D / "3e7u.aln", "--weights", tmp_path / "empty.pt")
    assert r.exit_code != 0 and "empty.pt: empty file" in r.output
    # the report's advice is a command that runs
    (text,) = [s.text for s in contact_sections(tmp_path, None)]
    assert "--method pconsc2 --model RUN" in text


def test_a_domain_alignment_is_numbered_on_the_full_query(tmp_path) -> None:
    head, tail = "MSTNPKPQRKTKRNTNRRPQDVKFPGG", "GSLEHHHHHH"
    full = head + Q3E7U + tail
    out = tmp_path / "full.rr"
    r = _predict(
        D / "3e7u.aln", "--method", "mi", "--query", full, "--out", out, "--pdb", D / "3e7u_cacb.pdb"
    )
    assert r.exit_code == 0, r.output
    assert "residues 28-67 of the query (77 residues)" in r.output
    assert out.read_text().startswith("REMARK the alignment covers residues 28-67")
    seq, df = read_rr(out)
    assert seq == full and df["i"].min() >= 28 and df["j"].max() <= 67 and (df["j"] - df["i"] >= 6).all()
    # same scores as the alignment-numbered run, shifted by 27
    r = _predict(D / "3e7u.aln", "--method", "mi", "--out", tmp_path / "aln.rr")
    _, base = read_rr(tmp_path / "aln.rr")
    np.testing.assert_array_equal(df["i"].to_numpy() - 27, base["i"].to_numpy())
    np.testing.assert_allclose(df["p"].to_numpy(), base["p"].to_numpy())
    # a query the alignment only approximately matches keeps the alignment's numbering, and says so
    mut = head + Q3E7U[:20] + "W" + Q3E7U[21:] + tail
    r = _predict(D / "3e7u.aln", "--method", "mi", "--query", mut, "--out", tmp_path / "mut.rr")
    assert r.exit_code == 0 and "not a stretch of --query" in r.output
    assert read_rr(tmp_path / "mut.rr")[0] == Q3E7U


def test_empty_deepcon_weights_name_the_file(tmp_path) -> None:
    from biodl.kinds.contacts.predictors import load_deepcon

    (tmp_path / "w.pt").write_bytes(b"")
    with pytest.raises(BiodlInputError, match="empty file") as e:
        load_deepcon(tmp_path / "w.pt")
    assert str(tmp_path / "w.pt") in str(e.value)


def test_gzip_stockholm_pdb_and_mmcif(tmp_path) -> None:
    import gzip

    from Bio.PDB import PDBParser
    from Bio.PDB.mmcifio import MMCIFIO

    sto = tmp_path / "x.sto.gz"
    sto.write_bytes(gzip.compress(b"# STOCKHOLM 1.0\nq  AC-DE\ns1 ACGDE\ns2 WC-DE\n//\n"))
    s = read_msa(sto)
    assert s.query == "ACDE" and s.n_seqs == 3
    pdb = tmp_path / "x.pdb.gz"
    pdb.write_bytes(gzip.compress((D / "3e7u_cacb.pdb").read_bytes()))
    want = read_structure(D / "3e7u_cacb.pdb")
    n = read_structure(pdb)
    assert n.sequence == Q3E7U and np.allclose(n.distances, want.distances)
    io = MMCIFIO()
    io.set_structure(PDBParser(QUIET=True).get_structure("x", str(D / "3e7u_cacb.pdb")))
    io.save(str(tmp_path / "x.cif"))
    cif = tmp_path / "x.cif.gz"
    cif.write_bytes(gzip.compress((tmp_path / "x.cif").read_bytes()))
    c = read_structure(cif)
    assert c.sequence == Q3E7U and c.chain == "X" and np.allclose(c.distances, want.distances, atol=1e-3)


def test_rr_seqres_comments_models_and_range_errors(tmp_path) -> None:
    f = tmp_path / "seqres.rr"
    f.write_text("PFRMAT RR\nTARGET T0999\nSEQRES GFGCN GPWDE\nMODEL 1\n1 5 0 8 0.54\n3 9 0 8 0.5\nEND\n")
    seq, df = read_rr(f)
    assert seq == "GFGCNGPWDE" and df[["i", "j"]].values.tolist() == [[1, 5], [3, 9]]
    f = tmp_path / "metapsicov.rr"
    f.write_text("# MetaPSICOV\n27 40 0 8 0.54\n# more\n31 38 0 8 0.52\n")
    seq, df = read_rr(f)
    assert seq is None and len(df) == 2
    f = tmp_path / "two.rr"
    f.write_text("PFRMAT RR\nMODEL  1\nGFGCN\n1 5 0 8 0.5\nEND\nMODEL  2\nGFGCN\n1 4 0 8 0.9\nEND\n")
    seq, df = read_rr(f)
    assert seq == "GFGCN" and df[["i", "j"]].values.tolist() == [[1, 5]]  # the first model only
    f = tmp_path / "out.rr"
    f.write_text("GFGCN\n1 6 0 8 0.5\n")
    seq, df = read_rr(f)
    with pytest.raises(BiodlInputError, match=r"outside 1\.\.5 .*pair 1 6") as e:
        rr_matrix(df, len(seq), f)
    assert str(f) in str(e.value)
    f.write_text("GFGCN\n0 4 0 8 0.5\n")
    with pytest.raises(BiodlInputError, match="start at 1") as e:
        read_rr(f)
    assert "line 2" in str(e.value)


def test_the_chain_that_matches_the_query_is_the_default(tmp_path) -> None:
    """A 5-residue peptide as chain A must not be taken for the protein (chain X)."""
    lines = (D / "3e7u_cacb.pdb").read_text().splitlines()
    atoms = [ln for ln in lines if ln.startswith("ATOM")]
    peptide = [ln[:21] + "A" + ln[22:] for ln in atoms if int(ln[22:26]) <= 5]
    f = tmp_path / "twochains.pdb"
    f.write_text("\n".join([*peptide, "TER", *atoms, "END"]) + "\n")
    assert read_structure(f).chain == "A"  # no query: the first protein chain
    n = read_structure(f, query=Q3E7U)
    assert n.chain == "X" and n.sequence == Q3E7U
    r = _predict(D / "3e7u.aln", "--method", "mi", "--pdb", f, "--out", tmp_path / "o.rr")
    assert r.exit_code == 0, r.output
    assert "chain X (the chain that best matches the query)" in r.output and "40/40" in r.output
    assert "nan" not in r.output
    r = _predict(D / "3e7u.aln", "--method", "mi", "--pdb", f, "--chain", "A", "--out", tmp_path / "o.rr")
    assert r.exit_code == 0 and "5/40" in r.output and "under half of the query" in r.output


@pytest.mark.parametrize("name", ["hdr.CB", "hdr.txt"])
def test_distance_list_with_a_comment_header(tmp_path, name) -> None:
    from biodl.kinds.contacts.io import read_native

    seq = "KTRWTREEDEKLKKLVEQNGTDDWKVIANYLPNRTDVQCQHRWQKVLNPE"
    f = tmp_path / name
    f.write_text("# i j dist\n\n" + (D / "1GUU_A.CB").read_text())
    n = read_native(f, sequence=seq)
    want = read_native(D / "1GUU_A.CB", sequence=seq)
    assert n.chain is None and np.allclose(n.distances, want.distances)


def test_long_fits_report_progress_without_changing_the_map(tmp_path, monkeypatch, capsys) -> None:
    """plmDCA and PSICOV-like say each evaluation / iteration; `contacts predict` and the kind's
    reader show them on a status line (here every update, as on a terminal), maps unchanged."""
    from biodl.cli import app
    from biodl.io import _util
    from biodl.kinds.contacts.kind import read_proteins

    msa = read_msa(D / "3e7u.aln")
    lines: list[str] = []
    with_progress = co.plmdca(msa, max_iter=4, progress=lines.append)
    assert np.array_equal(with_progress, co.plmdca(msa, max_iter=4))
    assert lines[0].startswith(
        "plmDCA: L-BFGS iteration 1, evaluation 1 (stops by 4 iterations or 5 evaluations), objective "
    )
    its = [int(s.split()[3].rstrip(",")) for s in lines]
    assert its == sorted(its) and its[-1] <= 4 and f"evaluation {len(lines)} (" in lines[-1]
    lines.clear()
    assert np.array_equal(co.psicov(msa, max_iter=2, progress=lines.append), co.psicov(msa, max_iter=2))
    assert [s.split(",")[0] for s in lines] == [
        "PSICOV-like: ADMM iteration 1 of at most 2",
        "PSICOV-like: ADMM iteration 2 of at most 2",
    ]

    class EveryUpdate(_util.StatusLine):
        def __init__(self, show=True, stream=None, **_):
            super().__init__(show, stream, every=0.0, plain_every=0.0)

    monkeypatch.setattr(_util, "StatusLine", EveryUpdate)
    args = ["contacts", "predict", str(D / "3e7u.aln"), "--method", "plmdca", "--plm-iter", "3"]
    r = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "a.rr")])
    assert r.exit_code == 0, r.output
    assert "[biodl] 3e7u.aln (L=40, 221 sequences): sequence weights (" in r.stderr
    assert "[biodl] 3e7u.aln (L=40, 221 sequences): plmDCA: L-BFGS iteration 1, evaluation 2 (" in r.stderr
    monkeypatch.undo()
    quiet = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "b.rr")])
    assert "L-BFGS" not in quiet.stderr  # under 30 s, a log gets no status line
    assert (tmp_path / "a.rr").read_text() == (tmp_path / "b.rr").read_text()

    monkeypatch.setattr(_util, "StatusLine", EveryUpdate)
    capsys.readouterr()
    read_proteins(D / "3e7u.aln", {"plm_iter": 2, "psicov_iter": 1}, labelled=False, quiet=False)
    err = capsys.readouterr().err
    for step in (
        "sequence weights",
        "plmDCA: L-BFGS iteration 1, evaluation 1 (stops by 2",
        "PSICOV-like: ADMM iteration 1",
        "MI+APC",
    ):
        assert f"[biodl] 3e7u (1/1, L=40, 221 sequences): {step}" in err, err
    read_proteins(D / "3e7u.aln", {"plm_iter": 2, "psicov_iter": 1}, labelled=False, quiet=True)
    assert "plmDCA" not in capsys.readouterr().err


# ---------------------------------------------------------------------- tables, distance lists, --query
def test_protein_tables_are_told_from_alignments_and_checked_row_by_row(tmp_path) -> None:
    """A row with a stray field is refused (it used to shift the columns: 'c/EXTRA: file not
    found'); a table without an msa column is not read as a PSICOV alignment; CSV tables are read."""
    from biodl.kinds.contacts.io import is_manifest, read_manifest
    from biodl.kinds.contacts.kind import read_proteins

    aln = D / "3e7u.aln"
    extra = tmp_path / "extra.tsv"
    extra.write_text(f"id\tmsa\na\t{aln}\tEXTRA\n")
    with pytest.raises(
        BiodlInputError, match=r"extra\.tsv, line 2: 3 field\(s\), the header has 2 \(id, msa\)"
    ):
        read_manifest(extra)
    nomsa = tmp_path / "nomsa.txt"  # no table suffix: told by its header
    nomsa.write_text(f"# proteins\nid\tfile\na\t{aln}\n")
    assert is_manifest(nomsa)
    with pytest.raises(BiodlInputError, match=r"nomsa\.txt, line 2: no msa column .*'id', 'file'"):
        read_proteins(nomsa, {}, labelled=False)
    for name, text in (("t.csv", f"id,msa,query\na,{aln},{Q3E7U}\n"), ("t.list", f"ID,MSA\na,{aln}\n")):
        t = tmp_path / name
        t.write_text(text)
        assert is_manifest(t)
        (p,) = read_manifest(t)
        assert p.id == "a" and p.msa == str(aln)
    short = tmp_path / "short.csv"
    short.write_text(f"id,msa,native\na,{aln}\n")
    with pytest.raises(BiodlInputError, match=r"line 2: 2 field\(s\), the header has 3"):
        read_manifest(short)
    badq = tmp_path / "badq.tsv"
    badq.write_text(f"id\tmsa\tquery\na\t{aln}\tGFGC1NG\n")
    with pytest.raises(BiodlInputError, match=r"badq\.tsv, line 2: the query column .*'1' at position 5"):
        read_manifest(badq)
    # alignments stay alignments
    fa = tmp_path / "x.fa"
    fa.write_text(">id,msa\nACDE\n>s\nACDE\n")
    sto = tmp_path / "x.sto"
    sto.write_text("# STOCKHOLM 1.0\nq ACDE\ns ACDE\n//\n")
    assert not any(is_manifest(f) for f in (aln, D / "1guuA_300.aln", fa, sto))
    assert is_manifest(D / "proteins.tsv") and len(read_manifest(D / "proteins.tsv")) == 2


@pytest.mark.parametrize(
    "text,match",
    [
        ("", r"empty\.CB: no distances"),
        ("# only a comment\n\n", r"empty\.CB: no distances"),
        ("1 5 7.0\n2 x 3\n", r"empty\.CB, line 2: residue numbers must be positive integers, got '2' 'x'"),
        ("1 5 7.0\n2 9 nan\n", r"empty\.CB, line 2: distance 'nan' of residues 2 9 is not a number >= 0"),
        ("1 5 7.0\n\n2 9 -3\n", r"empty\.CB, line 3: distance '-3' of residues 2 9 is not a number >= 0"),
        ("1 5 7.0\n2 9 inf\n", r"line 2: distance 'inf'"),
        ("1 5\n", r"line 1: a distance list line is 'i j distance', got 2 field"),
        ("# c\n1 5 7.0\n2 99 3\n", r"empty\.CB, line 3: residue pair 2 99 outside 1\.\.40"),
    ],
)
def test_bad_distance_lists_are_refused_naming_the_line(tmp_path, text, match) -> None:
    from biodl.kinds.contacts.io import read_distance_list

    cb = tmp_path / "empty.CB"
    cb.write_text(text)
    with pytest.raises(BiodlInputError, match=match):
        read_distance_list(cb, Q3E7U)


def test_cli_refuses_an_empty_distance_list_instead_of_a_nan_precision(tmp_path) -> None:
    cb = tmp_path / "empty.CB"
    cb.write_text("")
    r = _predict(D / "3e7u.aln", "--method", "mi", "--pdb", cb, "--out", tmp_path / "a.rr")
    assert r.exit_code != 0 and "no distances" in r.output and "nan" not in r.output
    assert not (tmp_path / "a.rr").exists()


def test_query_characters_are_checked_and_written_as_given(tmp_path) -> None:
    from biodl.kinds.contacts.io import check_query

    assert check_query("gfgc ngpw\nBZ") == "GFGCNGPWBZ"
    with pytest.raises(
        BiodlInputError, match=r"--query holds 2 character\(s\) .*'1' at position 9, '-' at position 11"
    ):
        check_query("GFGCNGPW1D-D")
    with pytest.raises(BiodlInputError, match="empty"):
        check_query("  ")
    digit = Q3E7U[:8] + "1" + Q3E7U[8:]
    r = _predict(D / "3e7u.aln", "--method", "mi", "--query", digit, "--out", tmp_path / "d.rr")
    assert r.exit_code != 0 and "'1' at position 9" in r.output and not (tmp_path / "d.rr").exists()
    # B and Z (read as D and E to find the query and score) are written to the RR as given
    bz = Q3E7U.replace("PWDE", "PWBZ")
    assert bz != Q3E7U
    r = _predict(D / "3e7u.aln", "--method", "mi", "--query", bz, "--out", tmp_path / "bz.rr")
    assert r.exit_code == 0, r.output
    assert read_rr(tmp_path / "bz.rr")[0] == bz and "not a stretch" not in r.output
    r = _predict(D / "3e7u.aln", "--method", "mi", "--query", "MK" + bz, "--out", tmp_path / "long.rr")
    seq, df = read_rr(tmp_path / "long.rr")
    assert r.exit_code == 0 and seq == "MK" + bz and df["i"].min() >= 3
    # an alignment's own query is written as the file writes it
    fa = tmp_path / "bz.fa"
    fa.write_text(">q\nGFGCNGPWBZDDMQCHNHCK\n>s\nGFGCNGPWDEDDMQCHNHAA\n")
    m = read_msa(fa)
    assert m.query == "GFGCNGPWDEDDMQCHNHCK" and m.query_as_written == "GFGCNGPWBZDDMQCHNHCK"
    r = _predict(fa, "--method", "mi", "--out", tmp_path / "fa.rr")
    assert r.exit_code == 0 and read_rr(tmp_path / "fa.rr")[0] == "GFGCNGPWBZDDMQCHNHCK"


def test_non_finite_coordinates_a_lower_case_query_and_a_table_of_missing_files(tmp_path):
    """A PDB atom at 'nan' was taken as a position (precision 1.000 instead of 0.250); an A3M
    query in lower case was a 'ragged alignment' of 0 columns; a protein table naming a missing
    alignment did not say which protein (line)."""
    pdb = (D / "3e7u_cacb.pdb").read_text().splitlines()
    i = next(k for k, ln in enumerate(pdb) if ln.startswith("ATOM") and ln[12:16].strip() == "CB")
    ln = pdb[i]
    pdb[i] = ln[:30] + f"{'nan':>8}" + ln[38:]
    (tmp_path / "nan.pdb").write_text("\n".join(pdb) + "\n")
    with pytest.raises(BiodlInputError, match=r"atom CB: coordinates are not finite numbers \(nan"):
        read_structure(tmp_path / "nan.pdb")
    (tmp_path / "q.a3m").write_text(">q\nacdefghiklmn\n>a\nACDEFGHIKLMN\n")
    with pytest.raises(BiodlInputError, match="the query\\) is all lower case"):
        read_msa(tmp_path / "q.a3m")
    (tmp_path / "p.tsv").write_text("id\tmsa\nx\tnothere.aln\n")
    with pytest.raises(
        BiodlInputError, match=r"p\.tsv, line 2: protein 'x': its msa file .*nothere\.aln is not there"
    ):
        read_manifest(tmp_path / "p.tsv")
