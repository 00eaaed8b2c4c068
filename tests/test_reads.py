"""DNA reads: the streaming FASTQ/FASTA reader and its errors, k-mer hashing, seeded read
sampling, references and their errors, and classification (CLI, standard input in constant
memory, worker processes, a Dask LocalCluster) with a tiny model trained on the shipped slices."""

from __future__ import annotations

import gzip
import io
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from biodl import pipeline
from biodl.cli import app
from biodl.errors import BiodlInputError
from biodl.kinds.reads.io import build_reference, iter_batches, iter_records, load_reference
from biodl.kinds.reads.kmers import encode_reads, kmer_indices, read_indices
from biodl.train import TrainConfig
from tests.conftest import TtyStream

DATA = Path(__file__).parent / "data" / "reads"
GENOMES = sorted((DATA / "genomes").glob("*.fna.gz"))
SAMPLE = DATA / "sample_reads.fq.gz"
runner = CliRunner()


def fastq(records) -> str:
    return "".join(f"@{i}\n{s}\n+\n{q}\n" for i, s, q in records)


def batches(path, **kw):
    return list(iter_batches(path, **kw))


# ------------------------------------------------------------------------------- reader
def test_reader_plain_gzip_fasta_and_crlf_agree(tmp_path) -> None:
    recs = [(f"r{i}", "ACGT" * (i + 1), "I" * 4 * (i + 1)) for i in range(7)]
    (tmp_path / "a.fq").write_text(fastq(recs))
    (tmp_path / "a.fq.gz").write_bytes(gzip.compress(fastq(recs).encode()))
    (tmp_path / "crlf.fq").write_bytes(fastq(recs).replace("\n", "\r\n").encode())
    fa = "".join(f">{i} some description\n{s[:5]}\n{s[5:]}\n" for i, s, _ in recs)
    (tmp_path / "a.fa").write_text(fa)
    want = ([r[0] for r in recs], [r[1].encode() for r in recs])
    for name in ("a.fq", "a.fq.gz", "crlf.fq", "a.fa"):
        got = batches(tmp_path / name, batch_size=3)
        assert [len(b) for b in got] == [3, 3, 1], name
        assert ([i for b in got for i in b.ids], [s for b in got for s in b.seqs]) == want, name
        assert [b.first for b in got] == [0, 3, 6]


def test_truncated_record_is_named(tmp_path) -> None:
    p = tmp_path / "t.fq"
    p.write_text(fastq([("a", "ACGT", "IIII"), ("b", "ACGT", "IIII")]) + "@c\nACGT\n")
    with pytest.raises(
        BiodlInputError, match=r"t\.fq, line 9: record 3: truncated record: .* after 2 of its 4"
    ):
        batches(p)


def test_quality_length_mismatch_is_named(tmp_path) -> None:
    p = tmp_path / "q.fq"
    p.write_text(fastq([("a", "ACGT", "IIII"), ("b", "ACGTA", "IIII")]))
    with pytest.raises(
        BiodlInputError, match=r"q\.fq, line 8: record 2: sequence and quality lengths differ \(5 and 4\)"
    ):
        batches(p)


def test_bad_header_and_not_fastq(tmp_path) -> None:
    p = tmp_path / "h.fq"
    p.write_text(fastq([("a", "ACGT", "IIII")]) + "xb\nACGT\n+\nIIII\n")
    with pytest.raises(BiodlInputError, match=r"line 5: record 2: bad header 'xb'"):
        batches(p)
    q = tmp_path / "x.txt"
    q.write_text("hello\n")
    with pytest.raises(BiodlInputError, match="is not FASTQ or FASTA"):
        batches(q)
    bom = tmp_path / "bom.fq"
    bom.write_bytes(b"\xef\xbb\xbf" + fastq([("a", "ACGT", "IIII")]).encode())
    with pytest.raises(BiodlInputError, match="starts with a UTF-8 byte-order mark"):
        batches(bom)


def test_gzip_corruption_is_named(tmp_path) -> None:
    recs = [(f"r{i}", "ACGTTGCA" * 20, "I" * 160) for i in range(20_000)]
    data = gzip.compress(fastq(recs).encode())
    cut = tmp_path / "cut.fq.gz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(
        BiodlInputError, match=r"cut\.fq\.gz: the gzip stream is truncated or corrupt after record \d+"
    ):
        batches(cut)
    # every record whole in the part that decompresses is read before the error
    part = zlib.decompressobj(31).decompress(data[: len(data) // 2])
    whole = part.count(b"\n") // 4
    got: list[str] = []
    with pytest.raises(BiodlInputError, match=f"after record {whole + 1} "):
        for ids, _, _, _ in iter_records(cut):
            got.extend(ids)
    assert got == [f"r{i}" for i in range(whole)] and whole > 5000
    crc = bytearray(data)
    crc[-8] ^= 0xFF  # the CRC-32 in the gzip trailer: found once the whole stream is read
    (tmp_path / "crc.fq.gz").write_bytes(bytes(crc))
    with pytest.raises(BiodlInputError, match=r"crc\.fq\.gz: the gzip stream is truncated or corrupt .*CRC"):
        batches(tmp_path / "crc.fq.gz")
    bad = bytearray(data)
    bad[len(bad) // 3 : len(bad) // 3 + 64] = np.random.default_rng(1).bytes(64)
    (tmp_path / "bad.fq.gz").write_bytes(bytes(bad))
    # garbage inside the deflate stream: a decompression error, or records that no longer parse
    with pytest.raises(
        BiodlInputError, match=r"bad\.fq\.gz(: the gzip stream is truncated or corrupt|, line \d+: record)"
    ):
        batches(tmp_path / "bad.fq.gz")


def test_mates_must_pair(tmp_path) -> None:
    (tmp_path / "1.fq").write_text(fastq([("a/1", "ACGT", "IIII"), ("b/1", "ACGT", "IIII")]))
    (tmp_path / "2.fq").write_text(fastq([("a/2", "TTTT", "IIII"), ("c/2", "ACGT", "IIII")]))
    with pytest.raises(BiodlInputError, match=r"record 2: mate names differ"):
        batches(tmp_path / "1.fq", mate2=tmp_path / "2.fq")
    (tmp_path / "3.fq").write_text(fastq([("a/2", "TTTT", "IIII")]))
    with pytest.raises(BiodlInputError, match="the mate file ends before record 2"):
        batches(tmp_path / "1.fq", mate2=tmp_path / "3.fq")


# ------------------------------------------------------------------------------- k-mers
def _naive(seq: str, k: int) -> list[int]:
    comp = {"A": "T", "C": "G", "G": "C", "T": "A"}
    code = {"A": 0, "C": 1, "G": 2, "T": 3}
    out = []
    for i in range(len(seq) - k + 1):
        w = seq[i : i + k]
        if any(c not in code for c in w):
            out.append(0)
            continue
        rc = "".join(comp[c] for c in reversed(w))
        f = min(
            sum(code[c] << 2 * (k - 1 - j) for j, c in enumerate(w)),
            sum(code[c] << 2 * (k - 1 - j) for j, c in enumerate(rc)),
        )
        out.append(f + 1)
    return out


def test_kmer_indices_are_canonical_and_skip_n() -> None:
    rng = np.random.default_rng(0)
    seq = "".join(rng.choice(list("ACGT"), 60))
    seq = seq[:20] + "N" + seq[21:]
    comp = str.maketrans("ACGTN", "TGCAN")
    rc = seq.translate(comp)[::-1]
    x = kmer_indices(encode_reads([seq.encode()]), 5, 10)[0]
    assert x.tolist() == _naive(seq, 5)  # 4**5 <= 2**10: exact codes
    assert sorted(x.tolist()) == sorted(kmer_indices(encode_reads([rc.encode()]), 5, 10)[0].tolist())
    h = read_indices([seq.encode(), rc.encode(), b"ACG"], 13, 12)  # hashed; short read -> all padding
    assert sorted(h[0].tolist()) == sorted(h[1].tolist()) and (h[0] <= 2**12).all()
    assert (h[2] == 0).all() and (h[0] == 0).sum() == 13  # the 13 k-mers covering the N


# ------------------------------------------------------------------------------ reference
@pytest.fixture(scope="module")
def ref(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reads") / "ref"
    build_reference(GENOMES, DATA / "taxonomy.tsv", out, quiet=True)
    return out


def test_the_reference_is_never_written_over(ref, tmp_path) -> None:
    """`reads sample REF --out REF/reference.json` replaced the reference with reads; a
    reference built into a training run's folder was mixed into it; an old one was replaced
    without a word."""
    import shutil

    r2 = tmp_path / "ref"
    shutil.copytree(ref, r2)
    before = {f: f.read_bytes() for f in r2.rglob("*") if f.is_file()}
    for name in ("reference.json", "sequence.npy", "taxonomy/names.dmp"):
        r = runner.invoke(app, ["reads", "sample", str(r2), "--n", "3", "--out", str(r2 / name)])
        assert r.exit_code == 2 and f"{r2 / name}: is an input of this command" in r.output, r.output
    assert {f: f.read_bytes() for f in r2.rglob("*") if f.is_file()} == before
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text("{}")
    build = ["reads", "build-reference", *map(str, GENOMES), "--taxonomy", str(DATA / "taxonomy.tsv")]
    r = runner.invoke(app, [*build, "--out", str(run)])
    assert r.exit_code == 2 and f"{run}: holds other files (run.json)" in r.output, r.output
    assert sorted(p.name for p in run.iterdir()) == ["run.json"]
    r = runner.invoke(app, [*build, "--out", str(r2)])
    assert r.exit_code == 0 and f"replacing the reference in {r2}" in r.output, r.output
    np.save(r2 / "sequence.npy", np.array([object()], dtype=object), allow_pickle=True)
    r = runner.invoke(app, ["reads", "sample", str(r2), "--n", "3", "--out", str(tmp_path / "s.fa")])
    assert r.exit_code == 2 and "sequence.npy is not the reference's sequence array" in r.output, r.output


def test_a_rebuild_is_whole_or_refused(ref, tmp_path, monkeypatch) -> None:
    """A build-reference killed between its files, or two at once into one folder, left one
    build's sequence.npy beside the other's reference.json: reads labelled with the wrong taxa."""
    import shutil

    from biodl.io._util import directory_lock
    from biodl.kinds.reads import io as rio

    r2 = tmp_path / "ref"
    shutil.copytree(ref, r2)
    build = ["reads", "build-reference", *map(str, GENOMES[::-1]), "--taxonomy", str(DATA / "taxonomy.tsv")]
    with directory_lock(r2, rio.REFERENCE_LOCK, "biodl reads build-reference", "reference"):
        r = runner.invoke(app, [*build, "--out", str(r2)])
    assert r.exit_code == 2 and "another `biodl reads build-reference` is writing this reference" in r.output

    def killed(*a, **k):
        raise KeyboardInterrupt  # between the new sequence.npy and the new reference.json

    monkeypatch.setattr(rio, "write_ncbi_dmp", killed)
    with pytest.raises(KeyboardInterrupt):
        build_reference(GENOMES[::-1], DATA / "taxonomy.tsv", r2, quiet=True)
    monkeypatch.undo()
    r = runner.invoke(app, ["reads", "sample", str(r2), "--n", "3", "--out", str(tmp_path / "s.fa")])
    assert r.exit_code == 2 and "its build-reference stopped before it finished" in r.output, r.output
    build_reference(GENOMES[::-1], DATA / "taxonomy.tsv", r2, quiet=True)  # built again: whole
    assert load_reference(r2).genomes[0]["name"] != load_reference(ref).genomes[0]["name"]


def test_genomes_shorter_than_a_read_are_refused(ref) -> None:
    from biodl.kinds.reads.data import check_read_length
    from biodl.kinds.reads.io import load_reference

    r = load_reference(ref)
    total = np.bincount(r.contigs[:, 0], weights=r.contigs[:, 2])
    check_read_length(r, int(total.min()))  # every genome holds a read of its own length
    n_short = int((total < total.min() + 1).sum())
    with pytest.raises(
        BiodlInputError, match=rf"{n_short} genome\(s\) of the reference are shorter than one read"
    ):
        check_read_length(r, int(total.min()) + 1)


def test_reference_holds_genomes_and_taxonomy(ref) -> None:
    r = load_reference(ref)
    assert len(r.genomes) == 7 and len(r.codes) == 7 * 20_000
    assert r.ranks == ["species", "genus", "family", "order", "class", "phylum"]
    assert r.rank_sizes[:2] == [7, 3]  # the two taxonomy rows without a genome are left out
    nodes = (ref / "taxonomy" / "nodes.dmp").read_text()
    assert "\tgenus\t" in nodes and (ref / "taxonomy" / "seqid2taxid.map").exists()


def test_build_reference_errors(tmp_path) -> None:
    tax = tmp_path / "t.tsv"
    tax.write_text("genome\tspecies\tgenus\nBlochmannia_floridanus\tB_flo\tBlochmannia\n")
    with pytest.raises(
        BiodlInputError, match=r"t\.tsv: genome\(s\) not in the taxonomy table: .*Caulobacter_crescentus_CB15"
    ):
        build_reference([DATA / "genomes" / "Blochmannia_floridanus.fna.gz", GENOMES[4]], tax, tmp_path / "r")
    tax.write_text("genome\tspecies\tgenus\na\tS1\tG1\nb\tS1\tG2\n")
    with pytest.raises(
        BiodlInputError, match=r"line 3: species 'S1' is in genus 'G2' here but in 'G1' on line 2"
    ):
        build_reference(GENOMES[:1], tax, tmp_path / "r")
    tax.write_text("species\tgenus\nS1\tG1\n")
    with pytest.raises(BiodlInputError, match="the header must be 'genome' then the ranks"):
        build_reference(GENOMES[:1], tax, tmp_path / "r")
    bad = tmp_path / "bad.fa"
    bad.write_text("not a fasta\n")
    tax.write_text("genome\tspecies\tgenus\nbad\tS1\tG1\n")
    with pytest.raises(BiodlInputError, match=r"bad\.fa, line 1: sequence text before the first '>'"):
        build_reference([bad], tax, tmp_path / "r")
    r = runner.invoke(
        app,
        ["reads", "build-reference", str(GENOMES[0]), "--taxonomy", str(tax), "--out", str(tmp_path / "r")],
    )
    assert r.exit_code == 2 and "not in the taxonomy table" in r.output


def test_inputs_users_bring(tmp_path) -> None:
    """Spreadsheet exports, NCBI-style names with spaces, clashing contig names, empty genomes."""
    from biodl.kinds.reads.io import write_reads

    g1 = tmp_path / "a.fa"
    g1.write_text(">chr1\n" + "ACGTTGCA" * 40 + "\n")
    g2 = tmp_path / "b.fa"
    g2.write_text(">chr1\n" + "TTGACCAG" * 40 + "\n")
    tax = tmp_path / "t.tsv"
    # a byte-order mark and trailing tabs (spreadsheet exports) are fine
    tax.write_text("\ufeffgenome\tspecies\tgenus\t\na\tAus one\tAus\t\nb\tAus two\tAus\t\n", "utf-8")
    out = tmp_path / "r"
    with pytest.raises(
        BiodlInputError, match=r"b\.fa: contig 'chr1' is also in .*a\.fa: contig names must be unique"
    ):
        build_reference([g1, g2], tax, out, quiet=True)
    assert not out.exists()  # a failed build leaves no directory behind
    g2.write_text(">chr2\n" + "TTGACCAG" * 40 + "\n")
    r = build_reference([g1, g2], tax, out, quiet=True)
    assert r.ranks == ["species", "genus"] and r.taxonomy.names[0] == ["Aus one", "Aus two"]
    g2.write_text(">chr2\n" + "N" * 300 + "\n")
    with pytest.raises(BiodlInputError, match=r"b\.fa: has no A, C, G or T base"):
        build_reference([g1, g2], tax, tmp_path / "r2", quiet=True)
    tax.write_text("genome\tspecies\tfamily\tgenus\na\tS\tF\tG\n")
    with pytest.raises(BiodlInputError, match=r"t\.tsv, line 1: the ranks must go from the lowest"):
        build_reference([g1], tax, tmp_path / "r3", quiet=True)
    # taxon=NAME with spaces is read whole (as write_reads writes it), up to the next key=value
    reads = write_reads(tmp_path / "s.fq", ["x", "y"], ["ACGTACGTACGTACGT"] * 2, labels=["Aus one", "Aus"])
    assert batches(reads, with_labels=True)[0].labels == ["Aus one", "Aus"]
    (tmp_path / "k.fq").write_text("@z taxon=Aus two len=16\nACGTACGTACGTACGT\n+\nIIIIIIIIIIIIIIII\n")
    assert batches(tmp_path / "k.fq", with_labels=True)[0].labels == ["Aus two"]


def test_truth_tables(ref, tmp_path) -> None:
    from biodl.kinds.reads.data import read_table

    tax = load_reference(ref).taxonomy
    (tmp_path / "1.fq").write_text(fastq([("p/1", "ACGTACGTACGTAC", "I" * 14), ("q/1", "ACGTAC", "I" * 6)]))
    (tmp_path / "2.fq").write_text(fastq([("p/2", "TTGACCAGTTGACC", "I" * 14), ("q/2", "ACGTAC", "I" * 6)]))
    truth = tmp_path / "truth.tsv"
    truth.write_text("# pair\ttaxon\np\tBlochmannia\nq\tCaulobacter_crescentus\n")  # keyed by pair name
    t = read_table(tmp_path / "1.fq", tax, labelled=True, mate2=tmp_path / "2.fq", truth=truth)
    assert t.targets[0, 1] == tax.names[1].index("Blochmannia") and np.isnan(t.targets[0, 0])
    assert t.targets[1, 0] == tax.names[0].index("Caulobacter_crescentus")
    truth.write_text("p\tBlochmannia\nq\t\n")
    with pytest.raises(BiodlInputError, match=r"truth\.tsv, line 2: expected two non-empty"):
        read_table(tmp_path / "1.fq", tax, labelled=True, truth=truth)
    truth.write_text("p/1\tBlochmannia\nq/1\tCaulobacter crescentus\n")
    with pytest.raises(
        BiodlInputError, match=r"read 2 \('q/1'\): the truth file's 'Caulobacter crescentus' is not"
    ):
        read_table(tmp_path / "1.fq", tax, labelled=True, truth=truth)
    with pytest.raises(BiodlInputError, match=r"nope\.tsv: file not found"):
        read_table(tmp_path / "1.fq", tax, labelled=True, truth=tmp_path / "nope.tsv")


def test_gzip_on_stdin_that_trickles(monkeypatch) -> None:
    """A pipe may hand over one byte at a time: the gzip magic is still recognised."""
    from biodl.kinds.reads.io import open_binary

    class OneByte(io.RawIOBase):
        def __init__(self, data: bytes):
            self.data = data

        def readable(self) -> bool:
            return True

        def readinto(self, b) -> int:
            if not self.data:
                return 0
            b[:1], self.data = self.data[:1], self.data[1:]
            return 1

    data = gzip.compress(fastq([("r1", "ACGTACGTAC", "IIIIIIIIII")]).encode())
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(OneByte(data))))
    fh, name = open_binary("-")
    assert name == "<stdin>" and fh.read().startswith(b"@r1\nACGTACGTAC")


def test_sampling_is_deterministic(ref) -> None:
    from biodl.kinds.reads.data import sample_reads

    r = load_reference(ref)
    a, la, ga = sample_reads(r, np.arange(500), seed=4, error_rate=0.02)
    b, lb, _ = sample_reads(r, np.arange(500), seed=4, error_rate=0.02)
    c, _, _ = sample_reads(r, np.arange(500), seed=5, error_rate=0.02)
    assert np.array_equal(a, b) and np.array_equal(la, lb) and not np.array_equal(a, c)
    part, _, _ = sample_reads(r, np.arange(250, 500), seed=4, error_rate=0.02)
    assert np.array_equal(part, a[250:])  # read i depends on (seed, i) only
    clean, _, _ = sample_reads(r, np.arange(500), seed=4, error_rate=0.0)
    err = (clean != a).mean()
    assert 0.01 < err < 0.03 and set(np.unique(la)) == set(range(7))
    # both strands: some reads are a slice of the genome, others of its reverse complement
    seq = bytes(np.asarray(r.codes)).translate(bytes.maketrans(bytes(range(5)), b"ACGTN"))
    dec = ["".join("ACGTN"[v] for v in row) for row in clean[:60]]
    fwd = sum(s in seq.decode() for s in dec)
    assert 0 < fwd < 60
    res = runner.invoke(
        app, ["reads", "sample", str(ref), "--n", "20", "--seed", "3", "--out", str(ref.parent / "s.fq")]
    )
    assert res.exit_code == 0, res.output
    first = (ref.parent / "s.fq").read_text()
    runner.invoke(
        app, ["reads", "sample", str(ref), "--n", "20", "--seed", "3", "--out", str(ref.parent / "s.fq")]
    )
    assert (ref.parent / "s.fq").read_text() == first and first.count("taxon=") == 20


def test_decoys_are_reversed_reads_trained_toward_uniform(ref) -> None:
    import torch

    from biodl.kinds.reads.data import DECOY, SampledReads, sample_reads
    from biodl.models.reads import KmerBagClassifier

    r = load_reference(ref)
    kw = dict(k=13, bits=14, read_len=100, error_rate=0.0, seed=3, stream=1, per_epoch=True)
    plain = SampledReads(ref, 4000, **kw)
    with_dec = SampledReads(ref, 4000, decoys=0.25, **kw)
    ix = np.arange(4000)
    (xp, yp), (xd, yd) = plain.__getitems__(ix), with_dec.__getitems__(ix)
    dec = (yd == DECOY).all(1).numpy()
    assert 0.2 < dec.mean() < 0.3 and not (yp == DECOY).any()  # the share asked for, no decoy without
    assert torch.equal(xd[~dec], xp[~dec]) and torch.equal(yd[~dec], yp[~dec])  # the others untouched
    codes, _, _ = sample_reads(r, ix, read_len=100, error_rate=0.0, seed=3, stream=1)
    back = kmer_indices(np.ascontiguousarray(codes[dec][:, ::-1]), 13, 14)
    assert np.array_equal(xd[dec].numpy(), back)  # a decoy is its read written backwards
    assert not np.array_equal(back, xp[dec].numpy())  # ... whose k-mers differ (canonical k-mers)
    with_dec.set_epoch(1)
    assert not np.array_equal((with_dec.__getitems__(ix)[1] == DECOY).all(1).numpy(), dec)
    with pytest.raises(ValueError, match="decoys must be in"):
        SampledReads(ref, 10, decoys=1.0, **kw)
    # the loss pulls a decoy's distribution toward uniform at every rank: a network first made
    # sure of these reads' taxa, then shown them as decoys
    torch.manual_seed(0)
    m = KmerBagClassifier(r.rank_sizes, k=13, bucket_bits=14, dim=8, hidden=16)
    x = xd[:64]
    opt = torch.optim.Adagrad(m.parameters(), lr=0.1)

    def steps(y: torch.Tensor) -> list[float]:
        for _ in range(40):
            opt.zero_grad()
            m.loss((x, y))["loss"].backward()
            opt.step()
        with torch.no_grad():
            return [p.softmax(1).max(1).values.mean().item() for p in m.split(m(x))]

    sure = steps(yp[:64])
    assert min(sure) > 0.9
    unsure = steps(torch.full((64, len(r.rank_sizes)), DECOY))
    assert all(p < 1.4 / n for p, n in zip(unsure, r.rank_sizes, strict=True))  # near 1 / n


# -------------------------------------------------------------------------------- models
@pytest.fixture(scope="module")
def model(ref, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reads_run") / "run"
    cfg = TrainConfig.for_recipe(
        {}, max_epochs=6, patience=0, batch_size=128, lr=0.05, device="cpu", progress=False
    )
    pipeline.train(
        "read-classifier",
        out,
        options={"data": ref, "reads_per_epoch": 2500, "valid_reads": 300, "test_reads": 300},
        model_options={"bucket_bits": 14, "dim": 16, "hidden": 32},
        config=cfg,
        quiet=True,
    )
    return out


def test_diverged_reads_get_substitutions_and_lose_their_species_target(ref) -> None:
    from biodl.kinds.reads.data import DECOY, SampledReads, diverge, sample_reads

    r = load_reference(ref)
    kw = dict(k=13, bits=14, read_len=100, error_rate=0.0, seed=3, stream=1, per_epoch=True)
    plain = SampledReads(ref, 4000, decoys=0.2, **kw)
    div = SampledReads(ref, 4000, decoys=0.2, diverged=0.5, divergence=0.3, **kw)
    ix = np.arange(4000)
    (xp, yp), (xd, yd) = plain.__getitems__(ix), div.__getitems__(ix)
    yp, yd = yp.numpy(), yd.numpy()
    dec = (yd == DECOY).all(1)
    assert np.array_equal(dec, (yp == DECOY).all(1))  # the same decoys, never diverged
    lost = np.isnan(yd[:, 0]) & ~dec
    assert 0.35 < lost.mean() < 0.45  # half of the 80% that are not decoys
    assert np.array_equal(yd[lost, 1:], yp[lost, 1:])  # genus and above kept
    assert np.array_equal(yd[~lost], yp[~lost], equal_nan=True) and np.array_equal(xd[~lost], xp[~lost])
    codes, _, _ = sample_reads(r, ix, read_len=100, error_rate=0.0, seed=3, stream=1)
    changed = (xd[lost] != xp[lost]).any(1).float().mean()
    assert changed > 0.9  # their k-mers differ from the plain read's
    # the substitution rate is drawn per read up to the largest asked for, deterministically
    out = diverge(codes, ix, 0.3, key=11)
    rate = (out != codes).mean(1)
    assert 0.12 < rate.mean() < 0.18 and rate.max() < 0.45 and rate.min() < 0.02
    assert np.array_equal(out, diverge(codes, ix, 0.3, key=11))
    assert not np.array_equal(out, diverge(codes, ix, 0.3, key=12))
    assert np.array_equal(diverge(codes, ix, 0.0, key=11), codes)
    with pytest.raises(ValueError, match="diverged must be in"):
        SampledReads(ref, 10, diverged=1.0, **kw)
    with pytest.raises(ValueError, match="divergence must be in"):
        SampledReads(ref, 10, diverged=0.1, divergence=0.8, **kw)


def test_train_evaluate_and_report(model) -> None:
    s = pd.read_json(model / "summary.json", typ="series")
    assert s["test_metrics"]["accuracy"] > 0.9 and s["test_metrics"]["accuracy/genus"] > 0.95
    ev = pipeline.evaluate(model, SAMPLE, out_dir=model / "ev", quiet=True)
    assert ev["n"] == 300 and ev["metrics"]["genus_sensitivity"] > 0.9
    assert (model / "ev" / "abundance.png").exists() and (model / "ev" / "confusion_genus.png").exists()
    html = (model / "report.html").read_text()
    assert "Per-taxon abundance" in html and "Confusion matrix at genus level" in html


def test_cli_classify_real_sample(model, tmp_path) -> None:
    r = runner.invoke(
        app,
        [
            "reads",
            "classify",
            str(model),
            str(SAMPLE),
            "--report",
            str(tmp_path / "rep.txt"),
            "--no-progress",
        ],
    )
    assert r.exit_code == 0, r.output
    df = pd.read_csv(io.StringIO(r.stdout), sep="\t")
    assert list(df.columns) == ["id", "taxon", "taxid", "rank", "confidence"] and len(df) == 300
    truth = [line.split("taxon=")[1].strip() for line in gzip.open(SAMPLE, "rt") if line.startswith("@")]
    species = df["rank"] == "species"
    assert (df.loc[species, "taxon"] == np.array(truth)[species.to_numpy()]).mean() > 0.9
    rep = (tmp_path / "rep.txt").read_text().splitlines()
    u, root = rep[0].split("\t"), rep[1].split("\t")
    assert u[3] == "U" and root[5] == "root" and int(u[1]) + int(root[1]) == 300
    assert any(line.split("\t")[3] == "G" and line.split("\t")[5].strip() == "Blochmannia" for line in rep)
    # the same calls from worker processes, from a Dask cluster (below), to a file
    r2 = runner.invoke(
        app,
        [
            "reads",
            "classify",
            str(model),
            str(SAMPLE),
            "-o",
            str(tmp_path / "c.tsv"),
            "--threads",
            "2",
            "--batch-size",
            "64",
            "--no-progress",
        ],
    )
    assert r2.exit_code == 0, r2.output
    assert (tmp_path / "c.tsv").read_text() == r.stdout


def test_dask_local_cluster(model, tmp_path) -> None:
    from distributed import LocalCluster

    from biodl.kinds.reads.classify import classify

    out = io.StringIO()
    classify(model, [SAMPLE], stdout=out, progress=False, batch_size=100)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        r = classify(
            model,
            [SAMPLE, SAMPLE],
            output=tmp_path / "dask.tsv",
            report=tmp_path / "dask_report.txt",
            scheduler=cluster.scheduler_address,
            batch_size=100,
            progress=False,
        )
    assert r["n"] == 600
    body = out.getvalue().split("\n", 1)[1]
    assert (tmp_path / "dask.tsv").read_text() == out.getvalue() + body


def _stream(n: int, fh) -> None:
    """Write ``n`` FASTQ records of 32 bp (a block of 10,000 random reads, repeated) to ``fh``."""
    rng = np.random.default_rng(0)
    seqs = ("".join(rng.choice(list("ACGT"), 32)) for _ in range(10_000))
    block = "".join(f"@r{i}\n{s}\n+\n{'I' * 32}\n" for i, s in enumerate(seqs)).encode()
    try:
        for _ in range(n // 10_000):
            fh.write(block)
    finally:
        fh.close()


def _peak_mib(pid: int) -> int:
    """The process's resident high-water mark so far (VmHWM, MiB); 0 once it has exited."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:")) // 1024
    except (OSError, StopIteration):
        return 0


def _classify_stdin(model: Path, n: int, report: Path) -> int:
    """Peak RSS (MiB) of ``biodl reads classify MODEL -`` fed ``n`` reads by a generator: the
    child's own VmHWM, read until it exits (``ru_maxrss`` of a child started by vfork + exec
    would include the parent's, this test process's, resident memory)."""
    import time

    exe = Path(sys.executable).parent / "biodl"
    p = subprocess.Popen(
        [
            str(exe),
            "reads",
            "classify",
            str(model),
            "-",
            "--no-progress",
            "--batch-size",
            "8192",
            "--report",
            str(report),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    t = threading.Thread(target=_stream, args=(n, p.stdin))
    t.start()
    peak = 0
    while p.poll() is None:
        peak = max(peak, _peak_mib(p.pid))
        time.sleep(0.02)
    t.join()
    assert p.returncode == 0, p.stderr.read().decode()
    return peak


def test_stdin_stream_in_constant_memory(model, tmp_path) -> None:
    small = _classify_stdin(model, 20_000, tmp_path / "small.txt")
    big = _classify_stdin(model, 1_000_000, tmp_path / "big.txt")
    lines = (tmp_path / "big.txt").read_text().splitlines()
    assert int(lines[0].split("\t")[1]) + int(lines[1].split("\t")[1]) == 1_000_000
    print(f"peak RSS: {small} MiB for 20,000 reads, {big} MiB for 1,000,000 reads (78 MB of FASTQ)")
    assert 0 < small and big - small < 30, (small, big)
    assert big < 200, big  # the numpy engine: no torch (~250 MiB on its own)


# ------------------------------------------------------------- lean classify: numpy, quantised
def test_numpy_engine_equals_torch(model) -> None:
    from biodl.kinds.reads.engine import NumpyKmerBag, TorchNet

    seqs = [s for b in iter_batches(SAMPLE, batch_size=1000) for s in b.seqs]
    net, ref = NumpyKmerBag.load(model), TorchNet.load(model)
    x = read_indices(seqs, net.k, net.bits)
    x2 = read_indices(seqs[:50], net.k, net.bits, seqs[50:100])  # pairs: one bag of both mates
    for xx in (x, x2, np.zeros((3, 40), np.int64)):  # and reads without a valid k-mer
        np.testing.assert_allclose(net.log_probs(xx), ref.log_probs(xx), rtol=0, atol=1e-4)
    assert isinstance(net.table, np.ndarray) and net.table.base is not None  # a view of the mapped file


def _calls(r) -> pd.DataFrame:
    assert r.exit_code == 0, r.output
    return pd.read_csv(io.StringIO(r.stdout), sep="\t")


@pytest.mark.parametrize("bits", [8, 4])
def test_quantized_table_keeps_the_calls(model, tmp_path, bits) -> None:
    from biodl.kinds.reads.engine import NumpyKmerBag, TorchNet

    q = tmp_path / f"model.q{bits}.pt"
    r = runner.invoke(app, ["reads", "quantize", str(model), "--bits", str(bits), "--out", str(q)])
    assert r.exit_code == 0, r.output
    net = NumpyKmerBag.load(q)
    rows, dim = 2**14 + 1, 16  # the fixture's bucket_bits and dim
    assert net.table_bytes == rows * dim * bits // 8 and net.table.dtype == np.uint64
    assert q.stat().st_size < rows * dim * bits // 8 + 64_000  # the file: the codes and a small rest
    args = ["reads", "classify", str(SAMPLE), "--no-progress"]
    full = _calls(runner.invoke(app, [*args[:2], str(model), *args[2:]]))
    small = _calls(runner.invoke(app, [*args[:2], str(q), *args[2:]]))
    # the tiny fixture model is undertrained (and trained with decoys, which keep its confidences
    # nearer the thresholds) and every rank of a call's lineage must pass its threshold, so a 4-bit
    # table moves a few borderline reads (the bench's model: 99.8% the same)
    assert (full["taxon"] == small["taxon"]).mean() >= (0.98 if bits == 8 else 0.95)
    assert (full["confidence"] - small["confidence"]).abs().median() < 0.02
    # the torch module reads the same file and agrees with numpy (--engine torch, --device cuda)
    x = read_indices([s for b in iter_batches(SAMPLE) for s in b.seqs], net.k, net.bits)
    np.testing.assert_allclose(net.log_probs(x), TorchNet.load(q).log_probs(x), rtol=0, atol=1e-4)
    viat = _calls(runner.invoke(app, [*args[:2], str(q), *args[2:], "--engine", "torch"]))
    assert (viat["taxon"] == small["taxon"]).mean() >= 0.99
    again = runner.invoke(app, ["reads", "quantize", str(q), "--bits", "4", "--out", str(tmp_path / "x.pt")])
    assert again.exit_code == 2 and "already quantised" in again.output


def test_classify_imports_neither_torch_nor_lightning(model, tmp_path) -> None:
    code = (
        "import sys\n"
        "from biodl.cli import main\n"
        f"sys.argv = ['biodl', 'reads', 'classify', {str(model)!r}, {str(SAMPLE)!r}, '--no-progress',"
        f" '--threads', '2', '-o', {str(tmp_path / 'c.tsv')!r}]\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "heavy = ('torch', 'lightning', 'torchmetrics', 'pytorch_lightning')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[]"
    assert len((tmp_path / "c.tsv").read_text().splitlines()) == 301


@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize("dim", [3, 16, 20])
def test_quantized_bag_sums_codes_exactly(bits, dim) -> None:
    """numpy and torch sum a quantised table's codes in lanes of 64-bit words: the same sums as
    the dequantised rows, any width (rows padded to whole words), and reads long enough to need
    32-bit lanes (15 x 5,000 k-mers > 2^16)."""
    import torch

    from biodl.kinds.reads.engine import NumpyKmerBag
    from biodl.kinds.reads.weights import dequantize, quantize_table
    from biodl.models.reads import QuantizedBag

    rng = np.random.default_rng(dim)
    w = rng.normal(0, 0.1, (1001, dim)).astype(np.float32)
    w[0] = 0
    q = quantize_table(w, bits)
    assert q["codes"].shape == (1001, -(-dim * bits // 64) * 8) and not q["codes"][0].any()
    deq = dequantize(q["codes"], q["lo"], q["step"], bits)
    deq[0] = 0
    rms = np.sqrt(((deq[1:] - w[1:]) ** 2).mean())
    assert rms < (0.002 if bits == 8 else 0.015), rms
    bag = QuantizedBag(1001, dim, bits)
    bag.load_state_dict({k: torch.from_numpy(v) for k, v in q.items()})
    net = NumpyKmerBag.__new__(NumpyKmerBag)  # only the table: bag_sums
    net.table_bits, net.dim, net.lo, net.step = bits, dim, q["lo"], q["step"]
    net.words = q["codes"].shape[1] // 8
    net.table = q["codes"].view("<u8")
    for x in (rng.integers(0, 1001, (7, 30)), rng.integers(1, 1001, (2, 5000))):
        x[0, 10:] = 0
        want = deq[x].sum(1, dtype=np.float64)
        np.testing.assert_allclose(net.bag_sums(x), want, rtol=1e-5, atol=1e-3)
        np.testing.assert_allclose(bag(torch.from_numpy(x)).numpy(), want, rtol=1e-5, atol=1e-3)


# ------------------------------------------------------------- thresholds for absent species
def test_lineage_must_be_sure_for_a_call() -> None:
    from biodl.kinds.reads.classify import decide

    # 2 species in genus 0, 1 species in genus 1; genus head unsure for read 1
    parents = [[0, 0, 1]]
    sp = np.log(np.array([[0.95, 0.03, 0.02], [0.95, 0.03, 0.02], [0.2, 0.2, 0.6]]))
    ge = np.log(np.array([[0.99, 0.01], [0.6, 0.4], [0.5, 0.5]]))
    rank, index, _ = decide([sp, ge], np.array([0.9, 0.9]))
    assert rank.tolist() == [0, 0, -1]  # without the lineage: read 1 is a species call
    rank, index, conf = decide([sp, ge], np.array([0.9, 0.9]), parents)
    assert rank.tolist() == [0, -1, -1] and index[0] == 0 and conf[0] == pytest.approx(0.95)
    rank, _, _ = decide([sp, ge], np.array([0.9, 0.5]), parents)
    assert rank.tolist() == [0, 0, 1]  # genus 0.6 >= 0.5: the species call stands; read 2 at genus


def test_holdouts_and_subset_reference(ref, tmp_path) -> None:
    from biodl.kinds.reads.data import layout, sample_reads
    from biodl.kinds.reads.novel import holdout_folds, holdout_indices, pick_holdouts, subset_reference

    r = load_reference(ref)
    a, b = pick_holdouts(r, 1), pick_holdouts(r, 1)
    assert a == b
    genus = np.asarray(r.taxonomy.parent[0])
    leaf = r.genome_leaf()
    # one species of each genus with two or more species (Blochmannia, Corynebacterium here)
    assert sorted(r.taxonomy.names[1][genus[leaf[i]]] for i in a) == ["Blochmannia", "Corynebacterium"]
    assert {len({leaf[i] for i in pick_holdouts(r, s)}) for s in range(5)} == {2}
    sub = load_reference(subset_reference(r, a, tmp_path / "sub"))
    assert sub.taxonomy.names == r.taxonomy.names  # same classes: outputs line up with the model's
    assert len(sub.genomes) == len(r.genomes) - len(a)
    _, got, _ = sample_reads(sub, np.arange(3000), seed=2, lay=layout(sub))
    assert not set(got.tolist()) & {int(leaf[i]) for i in a}  # never a read of a held-out genome
    gnames = [g["name"] for g in r.genomes]
    assert holdout_indices(r, ["Caulobacter_crescentus"]) == [gnames.index("Caulobacter_crescentus_CB15")]
    with pytest.raises(BiodlInputError, match="'Nope' is neither a genome nor a species"):
        holdout_indices(r, ["Nope"])
    with pytest.raises(BiodlInputError, match="names every genome"):
        holdout_indices(r, [g["name"] for g in r.genomes])
    # folds: every species with a sister species held out once, one species per genus per fold
    folds = holdout_folds(r, 1, None)
    assert len(folds) == 4 and folds[0] == a  # Blochmannia has 4 species here; fold 1 is the default
    flat = [i for f in folds for i in f]
    assert sorted(flat) == sorted(i for i in range(len(gnames)) if not gnames[i].startswith("Caulobacter"))
    assert all(len({genus[leaf[i]] for i in f}) == len(f) for f in folds)  # one species of a genus each
    assert [len(f) for f in folds] == [2, 2, 1, 1]  # Corynebacterium has 2 species: folds 3-4 without
    with pytest.raises(BiodlInputError, match="1 to 4 folds"):
        holdout_folds(r, 1, 5)


def test_choose_threshold_needs_the_whole_tail() -> None:
    from biodl.kinds.reads.novel import choose_threshold

    grid = np.array([0.5, 0.7, 0.9, 0.99, 0.999])
    curve = {
        "threshold": grid,
        "ppv": np.array([0.8, 0.96, 0.9, 0.97, np.nan]),
        "called": np.array([90, 80, 60, 40, 0]),
    }
    assert choose_threshold(curve, 0.95) == (0.99, True)  # 0.7 passes but 0.9 above it does not
    assert choose_threshold(curve, 0.99) == (0.999, False)


def test_calibrate_novel_trains_without_the_holdouts(model, tmp_path) -> None:
    import json
    import shutil

    import torch

    run = tmp_path / "run"
    shutil.copytree(model, run)
    res = runner.invoke(
        app, ["reads", "calibrate-novel", str(run), "--n", "400", "--fragment", "300", "--target-ppv", "0.5"]
    )
    assert res.exit_code == 0, res.output
    cal = json.loads((run / "novel-calibration" / "calibration.json").read_text())
    shadow = json.loads((run / "novel-calibration" / "shadow" / "run.json").read_text())
    sub = json.loads((run / "novel-calibration" / "reference" / "reference.json").read_text())
    assert sub["excluded_genomes"] == cal["held_out"] and len(cal["held_out"]) == 2
    assert {g["name"] for g in sub["genomes"]}.isdisjoint(cal["held_out"])
    assert shadow["options"]["test_reads"] == 0 and shadow["training"]["max_epochs"] == 6
    # a finished shadow keeps its model.pt only (its checkpoints are twice the model each)
    assert (run / "novel-calibration" / "shadow" / "model.pt").is_file()
    assert not (run / "novel-calibration" / "shadow" / "checkpoints").exists()
    assert "removed the shadow's checkpoints" in res.output
    assert cal["met"] and cal["ppv"] >= 0.5 and cal["called"] >= 20
    sd = torch.load(run / "model.pt", weights_only=True)
    thr = sd["state_dict"]["threshold"].tolist()
    assert thr[0] == pytest.approx(0.9) and thr[1:] == pytest.approx([cal["threshold"]] * 5)
    assert json.loads(sd["meta"])["thresholds"]["values"] == pytest.approx(thr)
    assert json.loads((run / "run.json").read_text())["thresholds"]["criterion"].startswith("smallest")
    again = runner.invoke(app, ["reads", "calibrate-novel", str(run), "--n", "400", "--fragment", "300"])
    assert "reusing the shadow model" in again.output or again.exit_code == 0
    bad = runner.invoke(app, ["reads", "calibrate-novel", str(run), "--rank", "species"])
    assert bad.exit_code == 2 and "--rank must be one of genus" in bad.output
    # another hold-out never reuses the shadow trained for the first (nor rewrites its reference)
    other = next(g["name"] for g in sub["genomes"])
    ref_json = (run / "novel-calibration" / "reference" / "reference.json").read_text()
    bad = runner.invoke(app, ["reads", "calibrate-novel", str(run), "--n", "400", "--holdout", other])
    assert (
        bad.exit_code == 2
        and f"trained holding out {', '.join(sorted(cal['held_out']))}, not {other}" in bad.output
    )
    assert (run / "novel-calibration" / "reference" / "reference.json").read_text() == ref_json
    # two folds: the first shadow is reused, a second one holds out other species; reads pooled
    two = ["reads", "calibrate-novel", str(run), "--n", "400", "--fragment", "300", "--target-ppv", "0.5"]
    res = runner.invoke(app, [*two, "--folds", "2", "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "reusing the shadow model" in res.output and "2 folds pooled" in res.output
    cal2 = json.loads((run / "novel-calibration" / "calibration.json").read_text())
    assert cal2["folds"][0] == cal["held_out"] and not set(cal2["folds"][1]) & set(cal["held_out"])
    assert cal2["n"] == 800 and len(cal2["shadow"]) == 2
    assert (run / "novel-calibration" / "shadow-2" / "model.pt").is_file()
    kept = torch.load(run / "model.pt", weights_only=True)["state_dict"]["threshold"].tolist()
    assert kept == thr  # a dry run stores nothing
    for arg, msg in (("x", "--folds takes a number or 'all'"), ("9", "1 to 4 folds")):
        bad = runner.invoke(app, [*two, "--folds", arg])
        assert bad.exit_code == 2 and msg in bad.output, bad.output


def test_outputs_never_replace_the_model_or_each_other(model, ref, tmp_path) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(model, run, ignore=shutil.ignore_patterns("novel-calibration", "ev"))
    before = (run / "model.pt").read_bytes()
    r = runner.invoke(app, ["reads", "quantize", str(run), "--bits", "4", "--out", str(run / "model.pt")])
    assert r.exit_code == 2 and "is an input of this command" in r.output
    r = runner.invoke(
        app, ["reads", "classify", str(run / "model.pt"), str(SAMPLE), "-o", str(run / "model.pt")]
    )
    assert r.exit_code == 2 and "is an input of this command" in r.output
    assert (run / "model.pt").read_bytes() == before
    # nor the run's record: its run.json, its held-out test results
    rj = (run / "run.json").read_bytes()
    r = runner.invoke(app, ["reads", "quantize", str(run), "--bits", "4", "--out", str(run / "run.json")])
    assert r.exit_code == 2 and "is the run.json of the run in" in r.output, r.output
    r = runner.invoke(app, ["evaluate", str(run), str(SAMPLE), "--out", str(run / "test")])
    assert r.exit_code == 2 and "is the test/ folder of the run in" in r.output, r.output
    assert (run / "run.json").read_bytes() == rj
    empty = tmp_path / "empty.fq"
    empty.write_text("")
    r = runner.invoke(app, ["reads", "classify", str(run), str(empty)])
    assert r.exit_code == 0 and "no reads in" in r.output and "nothing was classified" in r.output
    short = tmp_path / "short.fq"
    short.write_text(
        "@a\nACGTACGT\n+\nIIIIIIII\n@b\n"
        + "ACGT" * 30
        + "\n+\n"
        + "I" * 120
        + "\n@n\n"
        + "N" * 150
        + "\n+\n"
        + "I" * 150
        + "\n"
    )
    r = runner.invoke(app, ["reads", "classify", str(run), str(short), "--no-progress"])
    text = " ".join(r.output.split())
    assert r.exit_code == 0 and "2 of 3 reads hold no k-mer (shorter than the model's k, 13" in text, text
    r = runner.invoke(app, ["predict", str(run), str(short), "--out", str(tmp_path / "p.tsv")])
    assert r.exit_code == 0 and "2 of 3 reads of" in " ".join(r.output.split()), r.output
    for args, msg in (
        (["--n", "0"], "--n must be at least 1"),
        (["--fragment", "50"], "--fragment must be at least the model's read length"),
    ):
        r = runner.invoke(app, ["reads", "calibrate-novel", str(run), "--dry-run", *args])
        assert r.exit_code == 2 and msg in r.output, r.output
        assert not (run / "novel-calibration").exists()  # refused before any shadow is trained
    same = str(tmp_path / "same.tsv")
    r = runner.invoke(app, ["reads", "classify", str(run), str(SAMPLE), "-o", same, "--report", same])
    assert r.exit_code == 2 and "--report and --output name the same file" in r.output
    r = runner.invoke(app, ["reads", "classify", str(run), str(SAMPLE), "--scheduler", "notanaddress"])
    assert r.exit_code == 2 and "is not a scheduler address" in r.output and "unexpected" not in r.output
    r = runner.invoke(
        app, ["reads", "classify", str(run), str(SAMPLE), "--scheduler", "local", "--device", "cuda"]
    )
    assert r.exit_code == 2 and "no CUDA GPU is available here" in r.output  # (this machine has none)
    for args, msg in (
        (["--error-rate", "1.5"], "--error-rate must be between 0 and 1"),
        (["--length", "30000"], "longer than every contig"),
    ):
        r = runner.invoke(app, ["reads", "sample", str(ref), "--n", "5", "--out", same, *args])
        assert r.exit_code == 2 and msg in r.output, r.output


def test_a_gpu_device_is_a_gpu_in_any_spelling(model, monkeypatch) -> None:
    """`--device cuda:1 --threads 4` classified on CPU worker processes (only the strings cuda and
    gpu were taken for a GPU), and `--device gpu --scheduler` was not refused."""
    import torch

    from biodl.kinds.reads.classify import _on_gpu, classify

    assert not _on_gpu("cpu") and not _on_gpu(" CPU ")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert not _on_gpu("auto")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert all(_on_gpu(d) for d in ("cuda", "cuda:1", "gpu", "auto"))
    with pytest.raises(BiodlInputError, match="with --scheduler: the Dask workers classify on their CPUs"):
        classify(model / "model.pt", [SAMPLE], scheduler="local", device="gpu")


def test_reads_before_a_bad_record_are_written_whatever_the_threads(model, tmp_path) -> None:
    from biodl.kinds.reads.classify import classify

    with gzip.open(SAMPLE, "rt") as fh:
        good = fh.read()
    bad = tmp_path / "trunc.fq"
    bad.write_text(good + "@cut\nACGT\n")  # a record cut short after the 300 good ones
    lines = []
    for threads in (1, 2):
        buf = io.StringIO()
        with pytest.raises(BiodlInputError, match="truncated record"):
            classify(model, [bad], stdout=buf, threads=threads, batch_size=16, progress=False)
        lines.append(buf.getvalue().count("\n"))
    # the header and the good reads up to the batch of the bad record, the same for 1 and 2 threads
    # (before, what was still in flight was dropped: fewer lines the more threads)
    assert lines[0] == lines[1] and 1 + 300 - 16 <= lines[0] <= 301


def test_a_stopped_stream_never_replaces_the_report(model, tmp_path) -> None:
    """The report of a stream that stops part-way (here a bad record; Ctrl-C the same) is not
    written over an earlier report: the counts so far are in REPORT.partial, which a finished
    run removes."""
    from biodl.kinds.reads.classify import classify

    with gzip.open(SAMPLE, "rt") as fh:
        good = fh.read()
    bad = tmp_path / "trunc.fq"
    bad.write_text(good + "@cut\nACGT\n")
    report = tmp_path / "report.txt"
    classify(model, [SAMPLE], stdout=io.StringIO(), report=report, batch_size=16, progress=False)
    whole = report.read_text()

    def n_reads(text: str) -> int:  # unclassified + root: every read of the report
        return sum(int(x.split("\t")[1]) for x in text.splitlines() if x.split("\t")[3] in ("U", "R"))

    assert n_reads(whole) == 300
    with pytest.raises(BiodlInputError, match="truncated record"):
        classify(
            model, [bad], stdout=io.StringIO(), report=report, batch_size=16, progress=False, report_every=0
        )
    assert report.read_text() == whole  # the earlier, whole report
    partial = tmp_path / "report.txt.partial"
    assert partial.exists() and 0 < n_reads(partial.read_text()) < 300  # how far the stopped run got
    classify(
        model, [SAMPLE], stdout=io.StringIO(), report=report, batch_size=16, progress=False, report_every=0
    )
    assert report.read_text() == whole and not partial.exists()


def test_sigterm_leaves_no_temporary_file(model, tmp_path) -> None:
    import os
    import signal
    import time

    out = tmp_path / "o" / "calls.tsv"
    p = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "biodl.cli",
            "reads",
            "classify",
            str(model),
            "-",
            "-o",
            str(out),
            "--no-progress",
        ],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    with gzip.open(SAMPLE, "rb") as fh:
        p.stdin.write(fh.read())  # the stream stays open: the command waits for more reads
    p.stdin.flush()
    t0 = time.time()
    while not list(out.parent.glob(".*.tmp")) and time.time() - t0 < 120:
        time.sleep(0.2)
    assert list(out.parent.glob(".*.tmp")), "the command never started writing"
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=60) == 128 + signal.SIGTERM
    p.stdin.close()
    assert os.listdir(out.parent) == []  # no half-written output, no temporary file


class _Clock:
    """A clock the test moves by hand (no timed assertion)."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_progress_rewrites_in_place_on_a_terminal_only() -> None:
    from biodl.kinds.reads.classify import _Progress

    for tty in (False, True):
        clock, stream = _Clock(), TtyStream(tty)
        prog = _Progress(True, stream, plain_every=30.0, clock=clock)
        for _ in range(100):  # 100 batches of 10 reads, one every 0.5 s: 50 s in all
            clock.t += 0.5
            prog.add(10)
        assert prog.finish() == 50.0
        text = stream.getvalue()
        assert text.endswith("[biodl] 1,000 reads classified in 50.0 s, 20 reads/s\n"), repr(text)
        if tty:  # rewritten in place about every second, one newline at the end
            assert text.count("\r") == 51 and text.count("\n") == 1
        else:  # whole lines: one at 30 s and the final one, no carriage return
            assert "\r" not in text
            assert text.splitlines() == [
                "[biodl] 600 reads classified, 20 reads/s",
                "[biodl] 1,000 reads classified in 50.0 s, 20 reads/s",
            ]
    stream = TtyStream(True)
    prog = _Progress(True, stream, clock=(clock := _Clock()))
    clock.t = 2.0
    prog.add(5)
    prog.end_line()  # an error stops the stream: the open line is ended before the message
    assert stream.getvalue().endswith("reads/s\n")


def test_classify_summary_rate_is_that_of_the_progress_line(model, tmp_path) -> None:
    import json

    r = runner.invoke(app, ["reads", "classify", str(model), str(SAMPLE), "-o", str(tmp_path / "c.tsv")])
    assert r.exit_code == 0, r.output
    assert "\r" not in r.stderr  # not a terminal: plain lines
    lines = r.stderr.splitlines()
    final = next(line for line in lines if "reads classified in" in line)
    summary = json.loads(next(line for line in lines if line.startswith("[biodl] {")).split(" ", 1)[1])
    # one clock for both: the classification itself; the whole call (start-up included) apart
    assert final.endswith(f", {summary['reads_per_s']:,.0f} reads/s")
    assert summary["seconds"] == pytest.approx(summary["n"] / summary["reads_per_s"], abs=1e-4)  # rounded
    assert summary["wall_seconds"] >= summary["seconds"]


def test_a_local_dask_cluster_leaves_ctrl_c_to_biodl(model) -> None:
    """Ctrl-C on `classify --scheduler local` printed a KeyboardInterrupt traceback from every
    Dask worker (the terminal signals the whole process group): the cluster's processes start
    with SIGINT ignored, and the caller's handler is kept."""
    import contextlib
    import signal

    from distributed import default_client

    from biodl.kinds.reads.classify import _dask_executor

    before = signal.getsignal(signal.SIGINT)
    with contextlib.ExitStack() as stack:
        _dask_executor(stack, model, 1, "local", 0.0, "numpy")
        ignored = default_client().run(lambda: signal.getsignal(signal.SIGINT) == signal.SIG_IGN)
    assert ignored and all(ignored.values())
    assert signal.getsignal(signal.SIGINT) is before


def test_quantize_never_writes_over_a_file_of_the_reference(model, ref) -> None:
    """`reads quantize --out REF/reference.json` replaced the reference every later command reads."""
    ref_dir = Path(ref)
    before = (ref_dir / "reference.json").read_bytes()
    for target in (ref_dir / "reference.json", ref_dir / "sequence.npy"):
        r = runner.invoke(app, ["reads", "quantize", str(model), "--bits", "4", "--out", str(target)])
        assert r.exit_code == 2 and "is a file of the reference" in " ".join(r.output.split())
    assert (ref_dir / "reference.json").read_bytes() == before


def test_a_taxonomy_table_without_rows_is_said(tmp_path) -> None:
    from biodl.kinds.reads.io import build_reference

    tax = tmp_path / "tax.tsv"
    tax.write_text((DATA / "taxonomy.tsv").read_text().splitlines()[0] + "\n")
    with pytest.raises(BiodlInputError, match="the taxonomy table has no rows"):
        build_reference(GENOMES[:1], tax, tmp_path / "ref", quiet=True)


def test_classify_writes_gzip_for_a_gz_name(model, tmp_path) -> None:
    """`-o calls.tsv.gz -r rep.txt.gz` wrote plain text under .gz names (zcat failed on them)."""
    import gzip

    plain = ["reads", "classify", str(model), str(SAMPLE), "--no-progress"]
    r = runner.invoke(app, [*plain, "-o", str(tmp_path / "c.tsv"), "-r", str(tmp_path / "r.txt")])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, [*plain, "-o", str(tmp_path / "c.tsv.gz"), "-r", str(tmp_path / "r.txt.gz")])
    assert r.exit_code == 0, r.output
    for name in ("c.tsv", "r.txt"):
        with gzip.open(tmp_path / f"{name}.gz", "rt") as fh:
            assert fh.read() == (tmp_path / name).read_text()


def test_truth_and_taxonomy_tables_in_utf16_are_read(tmp_path):
    """They were opened as UTF-8 only: a UTF-16 export was an internal UnicodeDecodeError."""
    from biodl.kinds.reads.data import read_truth
    from biodl.kinds.reads.io import read_taxonomy_table

    (tmp_path / "t.tsv").write_bytes("read1\tEscherichia coli\n".encode("utf-16"))
    assert read_truth(tmp_path / "t.tsv") == {"read1": "Escherichia coli"}
    (tmp_path / "x.tsv").write_bytes(
        "genome\tspecies\tgenus\ng1.fna\tE. coli\tEscherichia\n".encode("utf-16")
    )
    ranks, rows = read_taxonomy_table(tmp_path / "x.tsv")
    assert ranks == ["species", "genus"] and rows[0][1] == ["E. coli", "Escherichia"]


def test_genome_files_match_their_rows_whatever_their_fasta_extension(tmp_path) -> None:
    """NC_001802.fsa and NC_005816.FNA were 'not in the taxonomy table' that listed them; a
    GenBank file given by mistake matches by its stem and is then refused for what it is."""
    import gzip

    from biodl.kinds.reads.io import build_reference, load_reference

    with gzip.open(GENOMES[0], "rt") as fh:
        text = fh.read()
    a, b = tmp_path / "NC_001802.fsa", tmp_path / "NC_005816.FNA"
    a.write_text(text)
    b.write_text(text.replace(">", ">b_"))
    tax = tmp_path / "t.tsv"
    tax.write_text("genome\tspecies\tgenus\nNC_005816\tYpestis\tYersinia\nNC_001802\tHIV1\tLentivirus\n")
    build_reference([a, b], tax, tmp_path / "r", quiet=True)
    assert len(load_reference(tmp_path / "r").genomes) == 2
    # a dotted name is a name: NC_001802.v2 is not NC_001802's row
    v2 = tmp_path / "NC_001802.v2.fna"
    v2.write_text(text.replace(">", ">v2_"))
    with pytest.raises(BiodlInputError, match=r"not in the taxonomy table: .*NC_001802\.v2\.fna"):
        build_reference([v2], tax, tmp_path / "r3", quiet=True)
    gbk = tmp_path / "NC_001802.gbk"
    gbk.write_text("LOCUS       NC_001802\n")
    with pytest.raises(BiodlInputError, match=r"NC_001802\.gbk, line 1: sequence text before the first '>'"):
        build_reference([gbk], tax, tmp_path / "r2", quiet=True)


def test_a_bilstm_read_scores_the_same_whatever_reads_share_its_batch() -> None:
    """The LSTM ran over the padding of a batch's shorter reads: a read's confidence depended on
    its neighbours and on --batch-size (0.596 alone, 0.632 batched)."""
    import torch

    from biodl.models.reads import ReadBiLSTM

    torch.manual_seed(0)
    m = ReadBiLSTM([5, 3], k=4, bucket_bits=8).eval()
    short, long = torch.randint(1, 256, (1, 30)), torch.randint(1, 256, (1, 60))
    x = torch.zeros(2, 60, dtype=torch.long)
    x[0, :30], x[1] = short, long
    with torch.no_grad():
        torch.testing.assert_close(m(x)[:1], m(short), atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(m(x)[1:], m(long), atol=1e-6, rtol=1e-5)
        assert torch.isfinite(m(torch.zeros(1, 10, dtype=torch.long))).all()  # a read without a k-mer


def test_a_build_on_a_full_disk_says_so_and_leaves_no_folder(tmp_path, monkeypatch) -> None:
    """numpy's short write has no errno: 'cannot write: 140000 requested and 61312 written', and
    the folder the build made was left behind, empty."""
    from biodl.kinds.reads import io as rio

    def short(fh, arr):
        raise OSError("140000 requested and 61312 written")

    monkeypatch.setattr(rio.np, "save", short)
    with pytest.raises(BiodlInputError, match="the disk is full or a file-size limit was reached"):
        build_reference(GENOMES[:2], DATA / "taxonomy.tsv", tmp_path / "ref", quiet=True)
    assert not (tmp_path / "ref").exists()
