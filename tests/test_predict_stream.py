"""`biodl predict` of sequence files in pieces (``DataKind.read_chunks``): a file of any size is
scored in the memory of one piece and gives the file the whole-file path gives, byte for byte;
errors, notes and warnings are those of the whole file."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from typer.testing import CliRunner

from biodl import pipeline
from biodl.cli import app
from biodl.errors import BiodlInputError
from biodl.io.predictions import read_predictions
from biodl.kinds.sequences.kind import KIND

runner = CliRunner()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A fixed-length (100 bp) multi-label toy DeepSEA with stored thresholds, and inputs."""
    import torch

    from biodl.registry import get_recipe
    from biodl.train.checkpoint import RunMeta, save_model

    d = tmp_path_factory.mktemp("predstream")
    torch.manual_seed(0)
    kwargs = dict(n_outputs=2, seq_len=100, n_filters=[8, 8, 8], kernel_size=5, pool_size=2, hidden=16)
    meta = RunMeta(
        kind="sequences",
        recipe="deepsea",
        task="multilabel",
        model_kwargs=kwargs,
        label_names=["a", "b"],
        data={"seq_len": 100},
        thresholds={"values": [0.4, 0.6]},
        status="finished",
    )
    save_model(d / "model.pt", get_recipe("deepsea").build(**kwargs), meta)
    rng = np.random.default_rng(3)
    seqs = ["".join(rng.choice(list("ACGTN"), n)) for n in rng.integers(60, 130, 53)]
    fa = d / "q.fa"
    fa.write_text("".join(f">s{i} desc\n{s[:50]}\n{s[50:]}\n" for i, s in enumerate(seqs)))
    tsv = d / "q.tsv.gz"
    with gzip.open(tsv, "wt") as fh:
        fh.write("sequence\tother\n" + "".join(f"{s}\tx{i}\n" for i, s in enumerate(seqs)))
    return d / "model.pt", fa, tsv, seqs


@pytest.mark.parametrize("name", ["p.tsv", "p.csv.gz", "p.npz", "p.h5", "p.parquet"])
def test_pieces_give_the_whole_file_output(run, tmp_path, name):
    model, fa, tsv, _ = run
    if name.endswith(".parquet"):
        pytest.importorskip("pyarrow")
    for src in (fa, tsv):
        whole, pieces = tmp_path / f"w_{name}", tmp_path / f"p_{name}"
        df = pipeline.predict(model, src, out=whole, quiet=True, batch_size=4, rows=10_000)
        got = pipeline.predict(model, src, out=pieces, quiet=True, batch_size=4, rows=7, keep=False)
        assert got is None  # keep=False: the table is only in the file
        a, b = read_predictions(whole), read_predictions(pieces)
        assert len(a) == len(df) == 53 and a.equals(b)
        if name.endswith(".tsv"):
            assert whole.read_bytes() == pieces.read_bytes()
        if src == tsv:  # default ids count rows over the whole file, not within a piece
            assert a["id"].tolist()[:2] == ["seq1", "seq2"] and a["id"].iloc[-1] == "seq53"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"w_{name}", f"p_{name}"]
    )  # no temporary file left


def test_pieces_returned_table_and_api_equal_whole(run):
    import biodl

    model, fa, _, seqs = run
    whole = pipeline.predict(model, fa, quiet=True, batch_size=4)
    parts = pipeline.predict(model, fa, quiet=True, batch_size=4, rows=3)  # 3: one batch a piece
    assert parts.equals(whole) and parts.attrs["biodl_kind"] == "sequences"
    m = biodl.load(model)
    mem = m.predict({f"s{i}": s for i, s in enumerate(seqs)})
    assert np.allclose(mem.drop(columns="id").to_numpy(), whole.drop(columns="id").to_numpy())


def test_a_bad_record_in_a_later_piece_names_its_line_and_keeps_the_output(run, tmp_path):
    model, fa, _, _ = run
    bad = tmp_path / "bad.fa"
    lines = fa.read_text().splitlines()
    lines[3 * 40 + 1] = lines[3 * 40 + 1][:5] + "X" + lines[3 * 40 + 1][6:]  # record s40
    bad.write_text("\n".join(lines) + "\n")
    out = tmp_path / "scores.tsv"
    out.write_text("earlier results\n")
    with pytest.raises(BiodlInputError) as e:
        pipeline.predict(model, bad, out=out, quiet=True, rows=8, keep=False)
    assert "'s40'" in str(e.value) and "invalid character 'X'" in str(e.value)
    assert e.value.record == 3 * 40 + 1 and str(bad) in str(e.value)
    with pytest.raises(BiodlInputError) as whole:  # the whole-file reader says the same
        from biodl.kinds.sequences.io import read_sequences

        read_sequences(bad, require_labels=False)
    assert whole.value.problem == e.value.problem and whole.value.record == e.value.record
    assert out.read_text() == "earlier results\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.fa", "scores.tsv"]


def test_table_errors_carry_the_file_line(run, tmp_path):
    model, _, _, seqs = run
    t = tmp_path / "t.csv"
    rows = [f"r{i},{s}" for i, s in enumerate(seqs)]
    rows[30] = "r30,ACGT!ACGT"
    t.write_text("name,seq\n" + "\n".join(rows) + "\n")
    with pytest.raises(BiodlInputError) as e:
        pipeline.predict(model, t, quiet=True, rows=6)
    assert e.value.record == 32 and "invalid character '!'" in str(e.value)  # header is line 1


def test_notes_and_duplicate_ids_are_said_once_for_the_whole_file(run, tmp_path, capfd):
    model, _, _, seqs = run
    fa = tmp_path / "dup.fa"
    ids = [f"s{i}" for i in range(len(seqs))]
    ids[45] = "s3"  # repeats an id of another piece
    ids[46] = ids[47] = "twice"
    fa.write_text("".join(f">{n}\n{s}\n" for n, s in zip(ids, seqs, strict=True)))
    pipeline.predict(model, fa, out=tmp_path / "o.tsv", quiet=True, rows=5, keep=False)
    err = capfd.readouterr().err
    assert err.count("occur more than once") == 1 and "'s3' x2" in err and "'twice' x2" in err
    lens = np.array([len(s) for s in seqs])
    assert err.count("shorter than the model's") == 1
    assert f"{int((lens < 100).sum())} of {len(seqs)} sequence(s) shorter" in err
    assert f"{int((lens > 100).sum())} of {len(seqs)} sequence(s) longer" in err
    assert f"(shortest {lens.min()} bp)" in err


def test_pieces_hold_at_most_rows_sequences(run, monkeypatch):
    from biodl.kinds.sequences import kind as seqkind

    sizes = []
    real = seqkind.score_sequences

    def spy(model, meta, table, **kw):
        sizes.append(len(table))
        return real(model, meta, table, **kw)

    monkeypatch.setattr(seqkind, "score_sequences", spy)
    pipeline.predict(run[0], run[1], quiet=True, rows=9, batch_size=3, keep=False)
    assert max(sizes) == 9 and sum(sizes) == 53 and len(sizes) == 6
    sizes.clear()
    pipeline.predict(run[0], run[1], quiet=True, rows=9, batch_size=4, keep=False)  # whole batches: 12
    assert sizes == [12, 12, 12, 12, 5]


def test_iter_sequences_reads_what_read_sequences_reads(run, tmp_path):
    from biodl.kinds.sequences.io import iter_sequences, read_sequences

    _, fa, tsv, _ = run
    for src in (fa, tsv):
        whole = read_sequences(src, require_labels=False)
        pieces = list(iter_sequences(src, rows=10))
        assert [len(p) for p in pieces] == [10] * 5 + [3]
        assert sum((p.ids for p in pieces), []) == whole.ids
        assert sum((p.seqs for p in pieces), []) == whole.seqs
    empty = tmp_path / "empty.tsv"
    empty.write_text("seq\tlabel\n")
    assert [len(p) for p in iter_sequences(empty)] == [0]
    noseq = tmp_path / "noseq.tsv"
    noseq.write_text("id\tdna\nx\tACGT\n")
    with pytest.raises(BiodlInputError, match="no sequence column"):
        list(iter_sequences(noseq))
    assert [p.seqs for p in iter_sequences(noseq, seq_col="dna")] == [["ACGT"]]
    plain = tmp_path / "plain.fa"  # one sequence per line, no header and no '>': said as such
    plain.write_text("ACGTACGTAAACCCGGG\nTTTTACGTAAACCCGGG\n")
    with pytest.raises(BiodlInputError, match=r"line 1: the first line looks like a sequence .*'>' line"):
        list(iter_sequences(plain))


def test_duplicate_ids_tracker():
    from biodl.io._util import DuplicateIds

    d = DuplicateIds()
    for piece in (["a", "b", "a"], ["c", "a", "d"], ["d", "e"], [], ["f"]):
        d.add(piece)
    assert d.repeated == {"a": 3, "d": 2}
    assert d.seen.dtype == np.int64 and len(d.seen) == 9 and (d.seen[1:] >= d.seen[:-1]).all()  # sorted


def test_sequence_codes_take_one_byte_per_base():
    import torch

    from biodl.kinds.sequences.data import SequenceDataset
    from biodl.kinds.sequences.io import SequenceTable

    t = SequenceTable(ids=["a", "b"], seqs=["ACGTN", "TTNAC"])
    cached, plain = SequenceDataset(t), SequenceDataset(t, cache=False)
    assert plain.codes.dtype == torch.uint8 and plain._onehot is None and cached._onehot is not None
    a, b = cached.__getitems__([1, 0]), plain.__getitems__([1, 0])
    assert torch.equal(a[0], b[0]) and b[0][0, :, 2].tolist() == [0.25] * 4


def test_cli_predict_streams_to_the_out_file(run, tmp_path):
    model, fa, _, _ = run
    out = tmp_path / "s.tsv"
    r = runner.invoke(app, ["predict", str(model), str(fa), "--out", str(out)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["predict", str(model), str(fa)])  # standard output: the same text
    assert r.exit_code == 0 and r.stdout == out.read_text()
    assert out.read_text() == KIND.predictions_text(pipeline.predict(model, fa, quiet=True))


def test_the_cli_sets_malloc_thresholds_unless_told_not_to(monkeypatch):
    import ctypes

    from biodl.cli import _keep_freed_memory

    calls = []

    class Libc:
        def mallopt(self, param, value):
            calls.append((param, value))
            return 1

    monkeypatch.setattr(ctypes, "CDLL", lambda name: Libc())
    for key in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "BIODL_DEFAULT_MALLOC"):
        monkeypatch.delenv(key, raising=False)
    _keep_freed_memory()
    assert calls == [(-3, 32 * 2**20), (-1, 128 * 2**20)]  # M_MMAP_THRESHOLD, M_TRIM_THRESHOLD
    for key in ("MALLOC_TRIM_THRESHOLD_", "BIODL_DEFAULT_MALLOC"):  # the user's settings win
        calls.clear()
        monkeypatch.setenv(key, "1")
        _keep_freed_memory()
        assert calls == []
        monkeypatch.delenv(key)


def test_small_inputs_odd_but_valid_or_empty(run, tmp_path):
    model = run[0]
    fa = tmp_path / "c.fa"
    fa.write_text(";a comment line first\n>a\n" + "ACGT" * 25 + "\n")
    assert pipeline.predict(model, fa, quiet=True)["id"].tolist() == ["a"]  # read as FASTA
    empty = tmp_path / "h.tsv"
    empty.write_text("id\tseq\n")
    with pytest.raises(BiodlInputError, match="no sequences to score") as e:
        pipeline.predict(model, empty, quiet=True)
    assert str(empty) in str(e.value)
    ragged = tmp_path / "r.tsv"
    ragged.write_text("id\tseq\n" + "".join(f"s{i}\t{'ACGT' * 25}\n" for i in range(30)) + "x\tACGT\textra\n")
    with pytest.raises(BiodlInputError, match="malformed table") as e:
        pipeline.predict(model, ragged, quiet=True, rows=8, batch_size=8)
    assert e.value.record == 32 and not str(e.value).endswith("\n")


def test_scoring_shows_progress_batch_by_batch(run, tmp_path, monkeypatch, capsys):
    """predict and evaluate say how many inputs the network has scored, batch by batch (here
    every update is shown, as on a terminal); quiet runs say nothing; numbers unchanged."""
    from biodl.io import _util

    model, fa, _, seqs = run

    class EveryUpdate(_util.StatusLine):
        def __init__(self, show=True, stream=None, **_):
            super().__init__(show, stream, every=0.0, plain_every=0.0)

    monkeypatch.setattr(_util, "StatusLine", EveryUpdate)
    capsys.readouterr()
    shown = pipeline.predict(model, fa, quiet=False, batch_size=8, rows=24)
    err = capsys.readouterr().err
    counts = [int(s.split("predicting: ")[1].split()[0]) for s in err.splitlines() if "predicting: " in s]
    assert counts[:3] == [8, 16, 24] and counts[-1] == 53 and counts == sorted(counts), err
    quiet = pipeline.predict(model, fa, quiet=True, batch_size=8, rows=24)
    assert "predicting" not in capsys.readouterr().err and shown.equals(quiet)

    table = tmp_path / "labelled.tsv"
    rng = np.random.default_rng(0)
    table.write_text(
        "sequence\ta\tb\n" + "".join(f"{s}\t{rng.integers(2)}\t{rng.integers(2)}\n" for s in seqs)
    )
    res = pipeline.evaluate(model, table, quiet=False, batch_size=16)
    err = capsys.readouterr().err
    counts = [int(s.split("evaluating: ")[1].split()[0]) for s in err.splitlines() if "evaluating: " in s]
    assert counts and counts == sorted(counts) and counts[-1] == 53, err
    assert pipeline.evaluate(model, table, quiet=True, batch_size=16)["metrics"] == res["metrics"]
    assert "evaluating" not in capsys.readouterr().err
