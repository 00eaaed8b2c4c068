"""Released DeepBind models: parsing, weight layout and the original tool's scores.

The golden test reproduces the ORIGINAL ``deepbind`` v0.11 table (README.TXT of the tool,
section EXAMPLE, first value 7.451420: ``deepbind example.ids < example.seq``) to 1e-5.
The kundajelab/DeepBindToKeras variant table (top of that README, first value 7.059108) is
checked separately with ``window_context=True``.
"""

from __future__ import annotations

import hashlib
import zipfile

import numpy as np
import pytest
import torch

from biodl.errors import BiodlInputError
from biodl.models.sequence.deepbind import DeepBind
from biodl.models.sequence.deepbind_released import (
    ReleasedParams,
    bundled_ids,
    bundled_params,
    load_released,
    model_from_params,
    parse_params,
    read_db,
    score,
    score_fasta,
)

# example.ids / example.seq of the deepbind v0.11 distribution.
EXAMPLE_IDS = ["D00210.001", "D00120.001", "D00410.003", "D00328.003"]  # RBFOX1, MBNL1, GATA3, CTCF
EXAMPLE_SEQS = [
    "AGGUAAUAAUUUGCAUGAAAUAACUUGGAGAGGAUAGC",
    "AGACAGAGCUUCCAUCAGCGCUAGCAGCAGAGACCAUU",
    "GAGGTTACGCGGCAAGATAA",
    "TACCACTAGGGGGCGCCACC",
]
# Rows: sequences; columns: EXAMPLE_IDS.
ORIGINAL_V011 = np.array(
    [
        [7.451420, -0.166146, -0.408751, -0.026180],
        [-0.155398, 4.113817, 0.516956, -0.248167],
        [-0.140683, 0.181295, 5.885349, -0.026180],
        [-0.174985, -0.152521, -0.379695, 17.682623],
    ]
)
KUNDAJELAB_VARIANT = np.array(
    [
        [7.059108, -0.187212, -0.649447, -0.026180],
        [-0.172609, 4.295672, 0.666795, -0.910773],
        [-0.140683, 0.181295, 5.885349, -0.026180],
        [-0.174985, -0.152521, -0.379695, 17.682623],
    ]
)


def test_golden_original_v011_table():
    """The ORIGINAL v0.11 table (first value 7.451420), default options, to 1e-5."""
    np.testing.assert_allclose(score(EXAMPLE_IDS, EXAMPLE_SEQS), ORIGINAL_V011, rtol=0, atol=1e-5)


def test_kundajelab_variant_table():
    """The modified tool's table (first value 7.059108): windows padded with real context."""
    got = score(EXAMPLE_IDS, EXAMPLE_SEQS, window_context=True)
    np.testing.assert_allclose(got, KUNDAJELAB_VARIANT, rtol=0, atol=1e-5)


def test_golden_via_loaded_module_and_params_dir(tmp_path):
    # The same numbers from the nn.Module itself, with the models read from text files.
    for model_id in EXAMPLE_IDS:
        (tmp_path / f"{model_id}.txt").write_text(bundled_params(model_id).to_text(), newline="")
    for j, model_id in enumerate(EXAMPLE_IDS):
        model = load_released(model_id, params_dir=tmp_path)
        assert isinstance(model, DeepBind) and not model.training
        for i, seq in enumerate(EXAMPLE_SEQS):
            x = torch.from_numpy(_one_hot(seq))[None]
            assert abs(model(x).item() - ORIGINAL_V011[i, j]) < 1e-5


def test_bundle_is_lossless():
    ids = bundled_ids()
    assert len(ids) == 927 and set(EXAMPLE_IDS) <= set(ids)
    from importlib import resources

    path = resources.files("biodl").joinpath("resources").joinpath("deepbind").joinpath("params.zip")
    with zipfile.ZipFile(path) as zf:
        sums = dict(line.split()[::-1] for line in zf.read("SHA256SUMS").decode().splitlines())
    for model_id in EXAMPLE_IDS:
        text = bundled_params(model_id).to_text().encode("ascii")
        assert hashlib.sha256(text).hexdigest() == sums[f"{model_id}.txt"]


def test_read_db():
    db = read_db()
    assert len(db) == 2622 and db["ID"].is_unique and set(bundled_ids()) <= set(db["ID"])
    assert len(read_db(only_bundled=True)) == 927
    row = db.set_index("ID").loc["D00328.003"]
    assert (row["Protein"], row["Type"], row["Experiment"]) == ("CTCF", "TF", "SELEX")


# ----------------------------------------------------------------------------- semantics


def _one_hot(seq: str) -> np.ndarray:
    table = {"A": 0, "C": 1, "G": 2, "T": 3, "U": 3}
    x = np.full((4, len(seq)), 0.25, dtype=np.float32)
    for i, c in enumerate(seq.upper()):
        if c in table:
            x[:, i] = 0
            x[table[c], i] = 1
    return x


def _reference_score(p: ReleasedParams, seq: str, window: int, context: bool) -> float:
    """A direct, loop-for-loop transcription of the tool's scoring in numpy (float64)."""
    d, m = p.num_detectors, p.detector_len
    det = p.detectors.astype(np.float64)
    full = _one_hot(seq).astype(np.float64)

    def apply(offset: int, n: int) -> float:
        fmap = np.zeros((d, n + m - 1))
        for k in range(d):
            for i in range(n + m - 1):
                acc = 0.0
                for j in range(m):
                    pos = offset + i - m + 1 + j
                    inside = 0 <= pos < len(seq) if context else offset <= pos < offset + n
                    col = full[:, pos] if inside else np.full(4, 0.25)
                    acc += sum(col[b] * det[k + d * (b + 4 * j)] for b in range(4))
                fmap[k, i] = max(acc + p.thresholds[k], 0.0)
        feats = np.stack([fmap.max(1), fmap.mean(1)], 1).ravel() if p.has_avg_pooling else fmap.max(1)
        h = p.biases1 + feats @ p.weights1.reshape(p.n_pooled, p.n_out1)
        if not p.num_hidden:
            return float(h[0])
        return float(p.biases2[0] + np.maximum(h, 0) @ p.weights2)

    if len(seq) <= window:
        return apply(0, len(seq))
    return max(apply(i, window) for i in range(len(seq) - window + 1))


def _random_params(rc: bool, avg: bool, hidden: int, d: int = 3, m: int = 4, seed: int = 0) -> ReleasedParams:
    rng = np.random.default_rng(seed)
    n_pooled, n_out1 = d * (2 if avg else 1), hidden or 1

    def r(n: int) -> np.ndarray:
        return rng.normal(size=n).astype(np.float32)

    return ReleasedParams(
        None,
        rc,
        d,
        m,
        avg,
        hidden,
        r(d * m * 4),
        r(d) * 0.5,
        r(n_pooled * n_out1),
        r(n_out1),
        r(hidden),
        r(1 if hidden else 0),
    )


@pytest.mark.parametrize("avg,hidden", [(False, 0), (True, 0), (False, 5), (True, 5)])
@pytest.mark.parametrize("context", [False, True])
def test_layout_and_windows_match_reference(avg, hidden, context):
    params = _random_params(rc=False, avg=avg, hidden=hidden, seed=hidden + 2 * avg)
    window = int(params.detector_len * 1.5)  # 6
    seqs = ["ACGTTGCA", "GGNACGTACGTTT", "TTAC", "ACGTAC"]  # longer than, shorter than, equal to the window
    got = score(model_from_params(params, window_context=context), seqs)[:, 0]
    want = [_reference_score(params, s, window, context) for s in seqs]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_reverse_complement_is_max_over_strands():
    seqs = ["GAGGTTACGCGGCAAGATAA", "TACCACTAGGGGGCGCCACC", "ACGTNACGGATTACAGGATCCAGATTACA"]
    rc = [s.translate(str.maketrans("ACGTN", "TGCAN"))[::-1] for s in seqs]
    both = load_released("D00328.003")  # a DNA model: reverse_complement = 1
    assert both.reverse_complement
    single = load_released("D00328.003")
    single.reverse_complement = False
    np.testing.assert_allclose(score(both, seqs), score(both, rc), atol=1e-6)
    np.testing.assert_allclose(
        score(both, seqs), np.maximum(score(single, seqs), score(single, rc)), atol=1e-6
    )
    # An RNA model scores one strand only, so a sequence and its reverse complement differ.
    rna = load_released("D00210.001")
    assert not rna.reverse_complement
    assert abs(score(rna, EXAMPLE_SEQS[0])[0, 0] - score(rna, rc[0])[0, 0]) > 1e-3


def test_score_fasta(tmp_path):
    fa = tmp_path / "seqs.fa"
    fa.write_text("".join(f">s{i} example\n{s[:20]}\n{s[20:]}\n" for i, s in enumerate(EXAMPLE_SEQS)))
    df = score_fasta("D00328.003", fa)
    assert list(df.columns) == ["id", "score"] and list(df["id"]) == ["s0", "s1", "s2", "s3"]
    np.testing.assert_allclose(df["score"], ORIGINAL_V011[:, 3], atol=1e-5)


def test_windowed_deepbind_trains():
    # The window option of the torch class is differentiable and backwards compatible.
    torch.manual_seed(0)
    x = torch.rand(3, 4, 30)
    plain = DeepBind(num_motifs=4, motif_len=5, hidden=0, dropout=0.0)
    windowed = DeepBind(num_motifs=4, motif_len=5, hidden=0, dropout=0.0, window_size=30)
    windowed.load_state_dict(plain.state_dict())
    torch.testing.assert_close(plain(x), windowed(x))  # length <= window: one window
    for context in (False, True):
        model = DeepBind(
            num_motifs=4,
            motif_len=5,
            pool="maxavg",
            hidden=0,
            dropout=0.0,
            window_size=8,
            window_context=context,
        )
        model(x).sum().backward()
        assert model.conv.weight.grad is not None and model.conv.weight.grad.abs().sum() > 0


# ----------------------------------------------------------------------------- errors


@pytest.fixture
def good_lines() -> list[str]:
    return bundled_params("D00328.003").to_text(newline="\n").splitlines()


def _write(tmp_path, lines: list[str]):
    p = tmp_path / "D00328.003.txt"
    p.write_text("\n".join(lines) + "\n")
    return p


def _parse_error(path) -> BiodlInputError:
    with pytest.raises(BiodlInputError) as info:
        parse_params(path)
    assert str(path) in str(info.value)
    return info.value


def test_parse_roundtrip(tmp_path, good_lines):
    p = parse_params(_write(tmp_path, good_lines))
    ref = bundled_params("D00328.003")
    assert p.model_id == "D00328.003" and p.detector_len == 20 and p.reverse_complement
    assert np.array_equal(p.detectors, ref.detectors) and np.array_equal(p.weights1, ref.weights1)


def test_parse_error_missing_key(tmp_path, good_lines):
    e = _parse_error(_write(tmp_path, good_lines[:7] + good_lines[8:]))  # drop 'thresholds' (line 8)
    assert e.record == 8 and "thresholds" in str(e) and "line 8" in str(e)


def test_parse_error_wrong_count(tmp_path, good_lines):
    lines = list(good_lines)
    lines[6] = lines[6].rsplit(",", 1)[0]  # one detector coefficient short
    e = _parse_error(_write(tmp_path, lines))
    assert e.record == 7 and "1279" in str(e) and "1280" in str(e)


def test_parse_error_non_numeric(tmp_path, good_lines):
    lines = list(good_lines)
    lines[7] = lines[7].replace(",", ",abc,", 1).rsplit(",", 1)[0]  # keep the count, break number 2
    e = _parse_error(_write(tmp_path, lines))
    assert e.record == 8 and "'abc'" in str(e) and "number 2" in str(e)


def test_parse_error_header_and_int(tmp_path, good_lines):
    assert _parse_error(_write(tmp_path, ["# deepbind 0.2"] + good_lines[1:])).record == 1
    assert _parse_error(_write(tmp_path, ["hello"] + good_lines[1:])).record == 1
    bad = good_lines[:3] + ["detector_len = twenty"] + good_lines[4:]
    assert _parse_error(_write(tmp_path, bad)).record == 4
    assert _parse_error(_write(tmp_path, good_lines + ["extra = 1"])).record == len(good_lines) + 1
    assert _parse_error(_write(tmp_path, good_lines[:-1])).record == len(good_lines)  # no biases2


def test_unknown_and_malformed_ids(tmp_path):
    with pytest.raises(BiodlInputError, match="unknown DeepBind model"):
        load_released("D99999.001")
    with pytest.raises(BiodlInputError, match="D#####.###"):
        load_released("CTCF")
    with pytest.raises(BiodlInputError, match="not found"):
        parse_params(tmp_path / "nope.txt")
    with pytest.raises(BiodlInputError, match="no parameter file"):
        load_released("D00328.003", params_dir=tmp_path)
    with pytest.raises(BiodlInputError, match="invalid character 'X'"):
        score("D00328.003", ["ACGTX"])
    with pytest.raises(BiodlInputError, match="empty sequence"):
        score("D00328.003", ["ACGT", ""])
    fa = tmp_path / "bad.fa"
    fa.write_text(">ok\nACGT\n>bad\nACZT\n")
    with pytest.raises(BiodlInputError, match="bad") as info:
        score_fasta("D00328.003", fa)
    assert info.value.path == str(fa) and info.value.record == 3
    # an IUPAC code: a released model cannot be trained with --iupac-as-n (the hint said so)
    fa.write_text(">ok\nACGT\n>amb\nACRT\n")
    with pytest.raises(BiodlInputError, match="released models read A, C, G, T") as info:
        score_fasta("D00328.003", fa)
    assert "--iupac-as-n" not in str(info.value) and info.value.record == 3


def test_cli_list_scores_only_what_it_lists_and_gz_output(tmp_path):
    import gzip
    import subprocess
    import sys

    from typer.testing import CliRunner

    from biodl.cli import app

    runner = CliRunner()
    r = runner.invoke(app, ["deepbind", "list"])
    assert r.exit_code == 0 and r.output.count("\nD") == 927  # the scorable ones only
    r = runner.invoke(app, ["deepbind", "list", "--all"])
    assert r.output.count("\nD") == 2622 and r.output.count("\tyes\n") == 927
    fa = tmp_path / "seqs.fa"
    fa.write_text("".join(f">s{i}\n{s}\n" for i, s in enumerate(EXAMPLE_SEQS)))
    r = runner.invoke(app, ["deepbind", "score", "D00328.003", str(fa), "--out", str(tmp_path / "o.tsv.gz")])
    assert r.exit_code == 0 and gzip.decompress((tmp_path / "o.tsv.gz").read_bytes()).startswith(b"id\tscore")
    r = runner.invoke(app, ["deepbind", "score", "", str(fa)])
    assert r.exit_code == 2 and "give a released model ID" in r.output
    # a reader that stops early (| head): no BrokenPipeError report
    p = subprocess.run(
        f"'{sys.executable}' -m biodl.cli deepbind list | head -1", shell=True, capture_output=True, text=True
    )
    assert p.stdout.startswith("ID\t") and "Error" not in p.stderr, p.stderr
