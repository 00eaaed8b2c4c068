"""Tests of biodl.shuffle: the exact, uniform dinucleotide shuffle (Altschul-Erickson)."""

from __future__ import annotations

import gzip
import time
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from biodl.errors import BiodlInputError
from biodl.shuffle import dinucleotide_shuffle, shuffle_negatives

GENOME = Path(__file__).resolve().parent / "data" / "genome_windows" / "ecoli_k12_first100kb.fna.gz"


def dinucs(seq: str) -> Counter:
    return Counter(seq[i : i + 2] for i in range(len(seq) - 1))


def assert_valid_shuffle(orig: str, shuf: str) -> None:
    assert isinstance(shuf, str)
    assert len(shuf) == len(orig)
    assert Counter(shuf) == Counter(orig)
    assert dinucs(shuf) == dinucs(orig)
    assert shuf[:1] == orig[:1]
    assert shuf[-1:] == orig[-1:]


def eulerian_strings(seq: str) -> list[str]:
    """Every string with the dinucleotide counts and end letters of ``seq`` (brute force)."""
    edges = Counter(zip(seq[:-1], seq[1:], strict=True))
    out: set[str] = set()

    def walk(path: list[str]) -> None:
        if len(path) == len(seq):
            out.add("".join(path))
            return
        for (a, b), c in list(edges.items()):
            if a == path[-1] and c > 0:
                edges[(a, b)] -= 1
                path.append(b)
                walk(path)
                path.pop()
                edges[(a, b)] += 1

    walk([seq[0]])
    return sorted(out)


def real_looking(rng: np.random.Generator, length: int) -> str:
    """A genome-like string: CpG-depleted AT-rich Markov chain, homopolymer runs, an N gap
    and a soft-masked (lower-case) stretch."""
    bases = "ACGT"
    trans = np.array(
        [
            [0.35, 0.17, 0.23, 0.25],  # from A
            [0.35, 0.25, 0.05, 0.35],  # from C (CpG depleted)
            [0.28, 0.22, 0.25, 0.25],  # from G
            [0.22, 0.20, 0.25, 0.33],  # from T
        ]
    )
    out = [int(rng.integers(4))]
    while len(out) < length:
        if rng.random() < 0.02:  # homopolymer run
            out.extend([out[-1]] * int(rng.integers(3, 9)))
        out.append(int(rng.choice(4, p=trans[out[-1]])))
    chars = [bases[i] for i in out[:length]]
    if length > 40:
        start = int(rng.integers(0, length - 10))
        for i in range(start, start + int(rng.integers(1, 10))):
            chars[i] = "N"
        lo = int(rng.integers(0, length // 2))
        hi = lo + int(rng.integers(5, length // 2))
        chars[lo:hi] = [c.lower() for c in chars[lo:hi]]
    return "".join(chars)


def genome_windows(n: int, width: int) -> list[str]:
    """Windows of the bundled real E. coli K-12 slice (first 100 kb of NC_000913.3)."""
    path = GENOME
    chunks: list[str] = []
    total = 0
    with gzip.open(path, "rt") as fh:
        next(fh)
        for line in fh:
            if line.startswith(">") or total >= n * width:
                break
            chunks.append(line.strip())
            total += len(chunks[-1])
    seq = "".join(chunks)
    return [seq[i * width : (i + 1) * width] for i in range(len(seq) // width)][:n]


# --- counts and end letters ---------------------------------------------------------


@pytest.mark.parametrize(
    "alphabet",
    ["ACGT", "ACGTN", "ACGTacgtNn", "ACGTRYKMSWN", "AT", "GC", "ACGTU"],
)
def test_preserves_dinucleotides_random(alphabet: str) -> None:
    rng = np.random.default_rng(zlib.crc32(alphabet.encode()))
    letters = list(alphabet)
    for _ in range(300):
        length = int(rng.integers(0, 160))
        p = rng.dirichlet(np.ones(len(letters)) * 0.7)
        seq = "".join(rng.choice(letters, size=length, p=p)) if length else ""
        assert_valid_shuffle(seq, dinucleotide_shuffle(seq, rng))


def test_preserves_dinucleotides_real_looking() -> None:
    rng = np.random.default_rng(7)
    for _ in range(200):
        seq = real_looking(rng, int(rng.integers(50, 1200)))
        shuf = dinucleotide_shuffle(seq, rng)
        assert_valid_shuffle(seq, shuf)
        # case is kept: soft-masked letters stay lower case, as many as before
        assert sum(c.islower() for c in shuf) == sum(c.islower() for c in seq)


def test_preserves_dinucleotides_genome_windows() -> None:
    seqs = genome_windows(300, 101) + genome_windows(10, 5000)
    out = shuffle_negatives(seqs, seed=11)
    for seq, shuf in zip(seqs, out, strict=True):
        assert_valid_shuffle(seq, shuf)


def test_non_ascii_symbols_are_letters() -> None:
    seq = "ACGTÄÖACGTÖÄACß"
    for seed in range(20):
        assert_valid_shuffle(seq, dinucleotide_shuffle(seq, seed))


# --- reproducibility -----------------------------------------------------------------


def test_same_seed_same_output() -> None:
    seq = real_looking(np.random.default_rng(1), 101)
    assert dinucleotide_shuffle(seq, 42) == dinucleotide_shuffle(seq, 42)
    a = [dinucleotide_shuffle(seq, np.random.default_rng(5)) for _ in range(3)]
    assert a[0] == a[1] == a[2]
    seqs = [real_looking(np.random.default_rng(i), 101) for i in range(50)]
    assert shuffle_negatives(seqs, seed=3, n_per_seq=2) == shuffle_negatives(seqs, seed=3, n_per_seq=2)


def test_different_seed_different_output() -> None:
    seq = real_looking(np.random.default_rng(2), 101)
    outs = {dinucleotide_shuffle(seq, s) for s in range(20)}
    assert len(outs) == 20
    seqs = [real_looking(np.random.default_rng(i), 101) for i in range(50)]
    a, b = shuffle_negatives(seqs, seed=1), shuffle_negatives(seqs, seed=2)
    assert sum(x != y for x, y in zip(a, b, strict=True)) >= 49


def test_generator_is_advanced() -> None:
    seq = real_looking(np.random.default_rng(3), 101)
    gen = np.random.default_rng(0)
    first, second = dinucleotide_shuffle(seq, gen), dinucleotide_shuffle(seq, gen)
    assert first != second


def test_output_differs_from_input() -> None:
    rng = np.random.default_rng(9)
    seqs = ["".join(rng.choice(list("ACGT"), size=101)) for _ in range(200)]
    seqs += [real_looking(rng, 101) for _ in range(200)]
    out = shuffle_negatives(seqs, seed=0)
    assert all(s != o for s, o in zip(seqs, out, strict=True))


def test_shuffle_negatives_layout() -> None:
    seqs = [real_looking(np.random.default_rng(i), 101) for i in range(10)] + ["", "A", "ACGT"]
    out = shuffle_negatives(seqs, seed=4, n_per_seq=3)
    assert len(out) == 3 * len(seqs)
    for i, seq in enumerate(seqs):
        group = out[3 * i : 3 * i + 3]
        for shuf in group:
            assert_valid_shuffle(seq, shuf)
        if len(seq) == 101:
            assert len(set(group)) == 3
    assert shuffle_negatives([], seed=0) == []
    assert shuffle_negatives(("ACGTTGCA",), seed=0)[0][0] == "A"


# --- uniformity ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "seq, n_expected",
    [("ACAGTACGTCA", 15), ("AANCAAGNCCA", 24), ("ACAGATCACAGT", 24), ("aCAGTacGTCa", None)],
)
def test_uniform_over_all_eulerian_shufflings(seq: str, n_expected: int | None) -> None:
    from scipy.stats import chisquare

    support = eulerian_strings(seq)
    if n_expected is not None:
        assert len(support) == n_expected
    per_outcome = 400
    gen = np.random.default_rng(2024)
    counts = Counter(dinucleotide_shuffle(seq, gen) for _ in range(per_outcome * len(support)))
    # Every draw is a valid shuffle, every valid shuffle is drawn, frequencies are flat.
    assert set(counts) == set(support)
    observed = np.array([counts[s] for s in support])
    assert chisquare(observed).pvalue > 1e-4
    assert np.abs(observed / per_outcome - 1).max() < 0.25


# --- edge cases ----------------------------------------------------------------------


@pytest.mark.parametrize("seq", ["", "A", "N", "a", "AC", "ACG", "AAA", "AAAAAAAAAA", "nnnnnn", "ATATATAT"])
def test_edge_cases_unchanged(seq: str) -> None:
    # Each has a single string with its dinucleotide counts and end letters.
    for seed in range(5):
        assert dinucleotide_shuffle(seq, seed) == seq


def test_two_letter_cases() -> None:
    assert eulerian_strings("AACAA") == ["AAACA", "AACAA", "ACAAA"]
    seen = {dinucleotide_shuffle("AACAA", s) for s in range(200)}
    assert seen == {"AACAA", "ACAAA", "AAACA"}


# --- errors --------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [b"ACGT", None, 5, ["A", "C"]])
def test_bad_sequence(bad) -> None:
    with pytest.raises(BiodlInputError, match="seq must be a str"):
        dinucleotide_shuffle(bad, 0)


@pytest.mark.parametrize("bad", [None, 1.5, "0", True, np.random.RandomState(0), -1])
def test_bad_rng(bad) -> None:
    with pytest.raises(BiodlInputError, match="rng"):
        dinucleotide_shuffle("ACGTACGT", bad)


def test_numpy_integer_seed() -> None:
    assert dinucleotide_shuffle("ACGTTGCAACGT", np.int64(3)) == dinucleotide_shuffle("ACGTTGCAACGT", 3)


def test_shuffle_negatives_bad_input() -> None:
    with pytest.raises(BiodlInputError, match="not a single string"):
        shuffle_negatives("ACGTACGT", seed=0)
    with pytest.raises(BiodlInputError, match="sequence 2 is a bytes"):
        shuffle_negatives(["ACGT", b"ACGT"], seed=0)
    with pytest.raises(BiodlInputError, match="n_per_seq"):
        shuffle_negatives(["ACGT"], seed=0, n_per_seq=0)
    with pytest.raises(BiodlInputError, match="n_per_seq"):
        shuffle_negatives(["ACGT"], seed=0, n_per_seq=1.0)
    with pytest.raises(BiodlInputError, match="seed"):
        shuffle_negatives(["ACGT"], seed=1.5)
    with pytest.raises(BiodlInputError, match="seed"):
        shuffle_negatives(["ACGT"], seed=-3)
    with pytest.raises(BiodlInputError, match="seed"):
        shuffle_negatives(["ACGT"], seed=True)


# --- speed ---------------------------------------------------------------------------


def test_speed_101bp() -> None:
    rng = np.random.default_rng(0)
    seqs = ["".join(rng.choice(list("ACGT"), size=101)) for _ in range(4000)]
    t0 = time.perf_counter()
    shuffle_negatives(seqs, seed=0)
    elapsed = time.perf_counter() - t0
    # ~0.1 s on one core (40k sequences take ~0.9 s); the bound only catches gross slowdowns.
    assert elapsed < 4.0, f"4000 shuffles of 101 bp took {elapsed:.2f} s"


def test_dataset_resamples_negatives_per_epoch_and_reproducibly():
    from collections import Counter

    import torch

    from biodl.kinds.sequences.data import SequenceDataset, add_shuffled_negatives
    from biodl.kinds.sequences.io import SequenceTable

    rng = np.random.default_rng(0)
    pos = ["".join(rng.choice(list("ACGT"), 30)) for _ in range(20)]
    table = add_shuffled_negatives(SequenceTable(ids=[f"p{i}" for i in range(20)], seqs=pos), seed=0)
    ds = SequenceDataset(table, seed=3)
    rows = np.arange(20, 40)
    ds.resample_negatives(rows, pos)
    epoch0 = ds.codes.clone()
    ds.set_epoch(1)
    epoch1 = ds.codes.clone()
    assert torch.equal(epoch1[:20], epoch0[:20])  # positives untouched
    assert not torch.equal(epoch1[20:], epoch0[20:])  # negatives redrawn
    for k in range(20):  # each new negative is a dinucleotide shuffle of its source
        s = "".join("ACGT"[c] for c in epoch1[20 + k].tolist())
        assert Counter(zip(s, s[1:], strict=False)) == Counter(zip(pos[k], pos[k][1:], strict=False))
    ds.set_epoch(2)
    assert not torch.equal(ds.codes[20:], epoch1[20:])
    ds.set_epoch(1)  # a resumed run at epoch 1 sees the same negatives
    assert torch.equal(ds.codes, epoch1)
    ds.set_epoch(0)
    assert torch.equal(ds.codes, epoch0)
    assert torch.equal(ds.labels[20:], torch.zeros(20, 1))


def test_train_resample_negatives_needs_added_negatives(tmp_path, rest_small):
    from biodl.errors import BiodlInputError
    from biodl.train import TrainConfig

    cfg = TrainConfig(max_epochs=2, patience=0, batch_size=64, device="cpu", progress=False)
    from biodl.pipeline import train

    s = train(
        "deepbind",
        tmp_path / "r",
        options={"data": rest_small["train"], "resample_negatives": True},
        config=cfg,
        quiet=True,
        model_options={"num_motifs": 4, "motif_len": 8, "hidden": 0},
    )
    assert s["epochs_run"] == 2
    with pytest.raises(BiodlInputError, match="--resample-negatives needs shuffled negatives"):
        train(
            "deepbind",
            tmp_path / "r2",
            options={"data": rest_small["test"], "resample_negatives": True},
            config=cfg,
            quiet=True,
        )


def test_cached_one_hot_batches_equal_per_batch_encoding(monkeypatch):
    """A set small enough is one-hot encoded once; its batches equal the per-batch lookup's
    (fixed and mixed lengths), follow redrawn negatives, and never hand out the cache itself."""
    import torch

    from biodl.kinds.sequences import data as sd
    from biodl.kinds.sequences.io import SequenceTable

    rng = np.random.default_rng(1)
    pos = ["".join(rng.choice(list("ACGTN"), 30)) for _ in range(12)]
    mixed = SequenceTable(ids=[f"m{i}" for i in range(12)], seqs=[s[: 10 + i] for i, s in enumerate(pos)])
    fixed = sd.add_shuffled_negatives(SequenceTable(ids=[f"p{i}" for i in range(12)], seqs=pos), seed=0)
    idx = [3, 0, 17, 11, 20]
    for table, kw in ((fixed, {}), (mixed, {"variable": True})):
        cached = sd.SequenceDataset(table, seed=3, **kw)
        monkeypatch.setattr(sd, "ONEHOT_CACHE_BYTES", 0)
        plain = sd.SequenceDataset(table, seed=3, **kw)
        monkeypatch.undo()
        assert cached._onehot is not None and plain._onehot is None
        pick = [i for i in idx if i < len(table.seqs)]
        a, b = cached.__getitems__(pick), plain.__getitems__(pick)
        assert torch.equal(a[0].nan_to_num(-1), b[0].nan_to_num(-1)) and torch.equal(a[1], b[1])
        a[0].zero_()  # a batch is a copy
        assert torch.equal(cached.__getitems__(pick)[0].nan_to_num(-1), b[0].nan_to_num(-1))
    cached = sd.SequenceDataset(fixed, seed=3)
    monkeypatch.setattr(sd, "ONEHOT_CACHE_BYTES", 0)
    plain = sd.SequenceDataset(fixed, seed=3)
    monkeypatch.undo()
    for ds in (cached, plain):
        ds.resample_negatives(np.arange(12, 24), pos)
        ds.set_epoch(2)
    assert torch.equal(cached.__getitems__(idx)[0], plain.__getitems__(idx)[0])
    fresh = sd.SequenceDataset(fixed, seed=3)  # negatives as first drawn: the redrawn rows differ
    assert not torch.equal(cached.__getitems__([17])[0], fresh.__getitems__([17])[0])


def test_peak_fasta_files_without_labels_train_against_shuffled_negatives(tmp_path):
    """bedtools getfasta output (no class:1 in the headers) was refused even with
    --shuffle-negatives yes; a positives-only --test file got no negatives (test AUROC NaN)."""
    import gzip
    import json

    from typer.testing import CliRunner

    from biodl.cli import app
    from tests.conftest import REST_AC, REST_B

    def fasta(src, path, n):
        with gzip.open(src, "rt") as fh:
            rows = [r.split("\t") for r in fh.read().splitlines()[1:]]
        rows = [r for r in rows if r[3] == "1"][:n]
        path.write_text("".join(f">chr1:{1000 * i}-{1000 * i + 101}\n{r[2]}\n" for i, r in enumerate(rows)))
        return path

    train, test = fasta(REST_AC, tmp_path / "peaks.fa", 200), fasta(REST_B, tmp_path / "held_out.fa", 50)
    out = tmp_path / "run"
    args = ["train", str(train), "--test", str(test), "--out", str(out), "--epochs", "1"]
    r = CliRunner().invoke(app, [*args, "-m", "num_motifs=4", "-m", "hidden=0"])
    text = " ".join(r.output.split())
    assert r.exit_code == 0, text
    assert "peaks.fa: no labels in the FASTA headers: its 200 sequences are taken as positives" in text
    assert "held_out.fa: 50 positives only; added 50 dinucleotide-shuffled negatives" in text
    s = json.loads((out / "summary.json").read_text())
    assert s["n_train"] + s["n_valid"] == 400 and s["n_test"] == 100
    assert s["test_metrics"]["auroc"] is not None
    # evaluate reads the held-out peaks as train --test did
    r = CliRunner().invoke(app, ["evaluate", str(out), str(test), "--out", str(tmp_path / "ev")])
    assert r.exit_code == 0, r.output
    assert "held_out.fa: 50 positives only (the model was trained against shuffled negatives)" in " ".join(
        r.output.split()
    )
    ev = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert ev["n"] == 100 and ev["metrics"]["auroc"] == pytest.approx(s["test_metrics"]["auroc"], abs=1e-6)
    # so does a table of the same positives (it was scored without negatives: AUROC NaN)
    seqs = [x for x in test.read_text().splitlines() if not x.startswith(">")]
    table = tmp_path / "held_out.tsv"
    table.write_text("seq\tlabel\n" + "".join(f"{x}\t1\n" for x in seqs))
    r = CliRunner().invoke(app, ["evaluate", str(out), str(table), "--out", str(tmp_path / "ev2")])
    assert r.exit_code == 0, r.output
    ev2 = json.loads((tmp_path / "ev2" / "metrics.json").read_text())
    assert ev2["n"] == 100 and ev2["metrics"]["auroc"] == pytest.approx(ev["metrics"]["auroc"], abs=1e-6)
    r = CliRunner().invoke(app, [*args, "--shuffle-negatives", "no", "--no-resume"])
    assert r.exit_code == 2 and "label the headers or give a table" in " ".join(r.output.split())
