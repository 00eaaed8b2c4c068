"""Tests of biodl.io.gff and biodl.kinds.windows.data (DeepSEA-style genomic windows)."""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from biodl.encode import decode, reverse_complement
from biodl.errors import BiodlInputError
from biodl.io.gff import (
    derive_introns,
    gff_attribute,
    parse_attributes,
    read_annotation,
    read_bed_features,
    read_gff,
)
from biodl.kinds.windows.data import (
    GenomeWindowDataset,
    build_genome_window_datasets,
    covered_bp,
    label_counts,
    label_windows,
    make_windows,
    split_windows,
)

FIXTURE = Path(__file__).parent / "data" / "genome_windows"
ECOLI_FA = FIXTURE / "ecoli_k12_first100kb.fna.gz"
ECOLI_GFF = FIXTURE / "ecoli_k12_first100kb.gff.gz"


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    """Decompressed genomes and their .fai go to a per-test cache, never into the repo."""
    monkeypatch.setenv("BIODL_CACHE", str(tmp_path / "cache"))


# ------------------------------------------------------------------ tiny hand-made genome
def _random_seq(rng: np.random.Generator, n: int) -> str:
    return "".join(rng.choice(list("ACGT"), size=n))


@pytest.fixture
def tiny_genome(tmp_path) -> tuple[Path, dict[str, str]]:
    rng = np.random.default_rng(1)
    chr1 = list(_random_seq(rng, 2000))
    chr1[10:20] = "acgtacgtac"  # soft-masked
    chr1[30:35] = "NNNNN"
    seqs = {"chr1": "".join(chr1), "chr2": _random_seq(rng, 1200), "chrShort": _random_seq(rng, 300)}
    path = tmp_path / "tiny.fa"
    lines = []
    for name, s in seqs.items():
        lines.append(f">{name} test chromosome")
        lines.extend(s[i : i + 60] for i in range(0, len(s), 60))
    path.write_text("\n".join(lines) + "\n")
    return path, seqs


TINY_GFF = """\
##gff-version 3
# window=400 step=200 center=100: chr1 centres are [150,250), [350,450), [550,650), [750,850), ...
chr1\tt\tCDS\t151\t200\t.\t+\t0\tID=c1
chr1\tt\tCDS\t351\t399\t.\t+\t0\tID=c2
chr1\tt\tCDS\t351\t399\t.\t-\t0\tID=c2dup
chr1\tt\tCDS\t421\t421\t.\t+\t0\tID=c3
chr1\tt\ttRNA\t602\t650\t.\t+\t.\tID=t1
chr1\tt\ttRNA\t751\t850\t.\t-\t.\tID=t2
chr2\tt\ttRNA\t351\t450\t.\t+\t.\tID=t3
chrUn\tt\ttRNA\t1\t1000\t.\t+\t.\tID=elsewhere
##FASTA
>chr1
ACGT
"""


@pytest.fixture
def tiny_gff(tmp_path) -> Path:
    p = tmp_path / "tiny.gff3"
    p.write_text(TINY_GFF)
    return p


# ----------------------------------------------------------------------------- GFF parsing
def test_read_gff_converts_coordinates_and_stops_at_fasta(tiny_gff):
    df = read_gff(tiny_gff)
    assert list(df.columns) == ["seqid", "source", "type", "start0", "end", "strand", "attributes", "line"]
    assert len(df) == 8  # the ##FASTA section is not read
    first = df.iloc[0]
    assert (first.seqid, first.type, first.start0, first.end, first.line) == ("chr1", "CDS", 150, 200, 3)
    one_bp = df[df.attributes == "ID=c3"].iloc[0]
    assert (one_bp.start0, one_bp.end) == (420, 421)  # GFF 421..421 is one base
    assert set(read_gff(tiny_gff, feature_types=["tRNA"]).type) == {"tRNA"}
    assert read_gff(tiny_gff, sources=["other"]).empty


def test_read_gff_gzip_equals_plain(tiny_gff, tmp_path):
    gz = tmp_path / "tiny.gff3.gz"
    gz.write_bytes(gzip.compress(tiny_gff.read_bytes()))
    pd.testing.assert_frame_equal(read_gff(gz), read_gff(tiny_gff))


@pytest.mark.parametrize(
    ("bad_line", "problem"),
    [
        ("chr1\tt\tCDS\t10\t20\t.\t+\t0", "9 tab-separated fields"),
        ("chr1 t CDS 10 20 . + 0 ID=x", "space- instead of tab"),
        ("chr1\tt\tCDS\tten\t20\t.\t+\t0\tID=x", "must be integers"),
        ("chr1\tt\tCDS\t30\t20\t.\t+\t0\tID=x", "before start"),
        ("chr1\tt\tCDS\t0\t20\t.\t+\t0\tID=x", "start must be >= 1"),
        ("chr1\tt\tCDS\t10\t20\t.\tplus\t0\tID=x", "strand"),
    ],
)
def test_read_gff_errors_name_the_line(tmp_path, bad_line, problem):
    p = tmp_path / "bad.gff3"
    p.write_text("##gff-version 3\nchr1\tt\tgene\t1\t100\t.\t+\t.\tID=g\n" + bad_line + "\n")
    with pytest.raises(BiodlInputError) as info:
        read_gff(p)
    assert info.value.record == 3
    assert "line 3" in str(info.value) and str(p) in str(info.value)
    assert problem in str(info.value)


def test_attributes():
    assert parse_attributes("ID=a;Parent=tx1,tx2;Note=x%3By;flag") == {
        "ID": "a",
        "Parent": "tx1,tx2",
        "Note": "x;y",
        "flag": "",
    }
    df = pd.DataFrame({"attributes": ["ID=a;Parent=p1", "Parent=p2;ID=b", "ID=c"]})
    assert gff_attribute(df, "Parent").tolist()[:2] == ["p1", "p2"]
    assert pd.isna(gff_attribute(df, "Parent").iloc[2])
    assert gff_attribute(df, "ID").tolist() == ["a", "b", "c"]


def test_derive_introns(tmp_path):
    p = tmp_path / "tx.gff3"
    p.write_text(
        "c\tt\tmRNA\t1\t1000\t.\t+\t.\tID=tx1\n"
        "c\tt\texon\t1\t100\t.\t+\t.\tParent=tx1,tx2\n"
        "c\tt\texon\t301\t400\t.\t+\t.\tParent=tx1\n"
        "c\tt\texon\t351\t500\t.\t+\t.\tParent=tx1\n"  # overlaps the previous: merged, no intron
        "c\tt\texon\t901\t1000\t.\t+\t.\tParent=tx1\n"
        "c\tt\texon\t601\t700\t.\t-\t.\tParent=tx2\n"
        "c\tt\texon\t801\t850\t.\t+\t.\tID=orphan\n"
    )
    introns = derive_introns(read_gff(p))
    got = sorted(zip(introns.attributes, introns.start0, introns.end, strict=True))
    assert got == [("Parent=tx1", 100, 300), ("Parent=tx1", 500, 900), ("Parent=tx2", 100, 600)]
    assert set(introns.type) == {"intron"}


def test_bed_features_one_label_per_file_or_per_name(tmp_path):
    a = tmp_path / "CTCF_peaks.bed"
    a.write_text("chr1\t100\t200\n#comment\nchr1\t300\t400\n")
    b = tmp_path / "marks.bed.gz"
    b.write_bytes(gzip.compress(b"chr1\t0\t50\tH3K4me3\t0\t+\nchr2\t10\t20\tH3K27ac\t0\t-\n"))
    df = read_bed_features([a, b])
    assert df.type.tolist() == ["CTCF_peaks", "CTCF_peaks", "marks", "marks"]
    assert df.line.tolist() == [1, 3, 1, 2]
    assert read_bed_features(b, label_from="name").type.tolist() == ["H3K4me3", "H3K27ac"]
    assert read_bed_features(a, labels=["ctcf"]).type.unique().tolist() == ["ctcf"]
    assert read_annotation([a]).start0.tolist() == [100, 300]
    with pytest.raises(BiodlInputError, match="name column"):
        read_bed_features(a, label_from="name")
    bad = tmp_path / "bad.bed"
    bad.write_text("chr1\t100\t50\n")
    with pytest.raises(BiodlInputError, match="line 1"):
        read_bed_features(bad)


# ------------------------------------------------------------------------- windows/labels
def test_make_windows(tiny_genome):
    path, seqs = tiny_genome
    w = make_windows(path, window=400, step=200, center=100)
    assert w.chrom.value_counts().to_dict() == {"chr1": 9, "chr2": 5, "chrShort": 0}
    assert (w.end - w.start == 400).all() and (w.center_end - w.center_start == 100).all()
    assert (w.center_start - w.start == 150).all()
    assert w.groupby("chrom", observed=True).end.max().to_dict() == {"chr1": 2000, "chr2": 1200}
    assert (
        len(make_windows(path, window=400, center=100)) == (2000 - 400) // 100 + 1 + (1200 - 400) // 100 + 1
    )
    only2 = make_windows({"chr1": 2000, "chr2": 1200}, chroms=["chr2"], window=400, step=200, center=100)
    assert only2.chrom.unique().tolist() == ["chr2"]
    with pytest.raises(BiodlInputError, match="chrX"):
        make_windows(path, chroms=["chrX"])
    with pytest.raises(BiodlInputError, match="center"):
        make_windows(path, window=100, center=200)


def test_label_windows_known_answer(tiny_genome, tiny_gff):
    path, _ = tiny_genome
    w = make_windows(path, window=400, step=200, center=100)
    y = label_windows(w, read_gff(tiny_gff), ["CDS", "tRNA"], center=100, min_overlap=0.5)
    assert y.dtype == np.float32 and y.shape == (14, 2)
    expected = np.zeros((14, 2), np.float32)
    expected[0, 0] = 1  # CDS [150,200): exactly 50 of 100 bp
    expected[1, 0] = 1  # CDS [350,399) twice + [420,421): union 50 bp
    # chr1 window 2: tRNA [601,650) covers only 49 bp of the centre [550,650) -> negative
    expected[3, 1] = 1  # tRNA [750,850): the whole centre
    expected[9 + 1, 1] = 1  # chr2 tRNA [350,450)
    np.testing.assert_array_equal(y, expected)
    # stricter threshold; pooled labels through a mapping
    strict = label_windows(w, read_gff(tiny_gff), ["CDS"], center=100, min_overlap=0.51)
    assert strict[:, 0].sum() == 0
    pooled = label_windows(w, read_gff(tiny_gff), {"any": ["CDS", "tRNA"]}, center=100)
    np.testing.assert_array_equal(pooled[:, 0], expected.max(axis=1))
    counts = label_counts(y, ["CDS", "tRNA"])
    assert counts.positives.tolist() == [2, 2] and counts.windows.tolist() == [14, 14]


def test_label_windows_errors(tiny_genome, tiny_gff):
    path, _ = tiny_genome
    w = make_windows(path, window=400, step=200, center=100)
    feats = read_gff(tiny_gff)
    with pytest.raises(BiodlInputError, match="rRNA.*available types"):
        label_windows(w, feats, ["rRNA"], center=100)
    renamed = feats.assign(seqid="1")
    with pytest.raises(BiodlInputError, match="names match"):
        label_windows(w, renamed, ["CDS"], center=100)
    with pytest.raises(BiodlInputError, match="min_overlap"):
        label_windows(w, feats, ["CDS"], center=100, min_overlap=0)


def test_covered_bp_matches_brute_force():
    rng = np.random.default_rng(0)
    s = rng.integers(0, 5000, 300)
    e = s + rng.integers(1, 200, 300)
    a = rng.integers(0, 5200, 1000)
    b = a + rng.integers(1, 400, 1000)
    mask = np.zeros(6000, bool)
    for si, ei in zip(s, e, strict=True):
        mask[si:ei] = True
    pref = np.r_[0, np.cumsum(mask)]
    np.testing.assert_array_equal(covered_bp(s, e, a, b), pref[b] - pref[a])
    assert covered_bp(np.array([]), np.array([]), a, b).sum() == 0


# ---------------------------------------------------------------------------------- splits
def _assert_no_cross_split_overlap(w: pd.DataFrame, split: pd.Series) -> None:
    for c, sub in w.assign(split=split.to_numpy()).groupby("chrom", observed=True):
        sub = sub[sub.split != "dropped"].sort_values("start")
        for part in ("train", "valid", "test"):
            mine = sub[sub.split == part]
            other = sub[sub.split != part]
            if len(mine) and len(other):
                cov = covered_bp(mine.start.to_numpy(), mine.end.to_numpy(), other.start, other.end)
                assert cov.sum() == 0, f"{part} windows overlap other splits on {c}"


def test_split_by_fraction_single_chromosome():
    w = make_windows({"chrom": 100_000}, window=1000, step=200, center=200)
    split = split_windows(w, valid=0.1, test=0.1)
    assert split.index.equals(w.index)
    test_w, valid_w = w[split == "test"], w[split == "valid"]
    assert test_w.start.min() >= 90_000 and test_w.end.max() == 100_000
    assert valid_w.start.min() >= 80_000 and valid_w.end.max() <= 90_000
    assert w[split == "train"].end.max() <= 80_000
    dropped = w[split == "dropped"]
    assert len(dropped) == 2 * 4  # windows straddling 80 kb and 90 kb (4 each at step 200)
    assert (
        (dropped.start < 80_000) & (dropped.end > 80_000) | (dropped.start < 90_000) & (dropped.end > 90_000)
    ).all()
    _assert_no_cross_split_overlap(w, split)


def test_split_random_placement_is_seeded():
    w = make_windows({"chrom": 100_000}, window=1000, step=200, center=200)
    a = split_windows(w, valid=0.1, test=0.2, placement="random", seed=3)
    b = split_windows(w, valid=0.1, test=0.2, placement="random", seed=3)
    c = split_windows(w, valid=0.1, test=0.2, placement="random", seed=4)
    pd.testing.assert_series_equal(a, b)
    assert not a.equals(c)
    for s in (a, c):
        _assert_no_cross_split_overlap(w, s)
        n = s.value_counts()
        assert 1.5 < n["test"] / n["valid"] < 2.6


def test_split_by_chromosome_and_region(tiny_genome):
    path, _ = tiny_genome
    w = make_windows(path, window=400, step=200, center=100)
    s = split_windows(w, valid=None, test=["chr2"])
    assert (s[w.chrom == "chr2"] == "test").all() and (s[w.chrom == "chr1"] == "train").all()
    s = split_windows(w, valid="chr1:1-800", test=("chr1", 1200, 2000))
    assert w[s == "valid"].end.max() <= 800 and w[s == "test"].start.min() >= 1200
    assert (s[w.chrom == "chr2"] == "train").all()
    _assert_no_cross_split_overlap(w, s)
    s = split_windows(w, valid=0.2, test=0.4, scope="chromosome")  # chr2: test [720,1200)
    assert set(s[w.chrom == "chr2"]) >= {"train", "test"}
    _assert_no_cross_split_overlap(w, s)
    with pytest.raises(BiodlInputError, match="overlap"):
        split_windows(w, valid="chr1:1-1000", test="chr1:901-2000")
    with pytest.raises(BiodlInputError, match="chrX"):
        split_windows(w, test=["chrX"])
    with pytest.raises(BiodlInputError, match="< 1"):
        split_windows(w, valid=0.5, test=0.6)


# --------------------------------------------------------------------------------- dataset
def test_dataset_items_match_genome(tiny_genome, tiny_gff):
    path, seqs = tiny_genome
    w = make_windows(path, window=400, step=200, center=100)
    y = label_windows(w, read_gff(tiny_gff), ["CDS", "tRNA"], center=100)
    ds = GenomeWindowDataset(path, w, y, ["CDS", "tRNA"])
    assert len(ds) == 14 and ds.window == 400 and ds.n_labels == 2
    for i in (0, 5, 13, -1):
        x, yi = ds[i]
        assert x.dtype == torch.float32 and x.shape == (4, 400)
        assert yi.dtype == torch.float32 and yi.shape == (2,)
        row = w.iloc[i]
        ref = seqs[row.chrom][row.start : row.end]
        assert decode(x.numpy()) == ref.upper()
        np.testing.assert_array_equal(yi.numpy(), y[i])
    x0, _ = ds[0]
    assert x0[:, 10:20].sum(0).eq(1).all()  # soft-masked lowercase encoded like uppercase
    assert torch.allclose(x0[:, 30:35], torch.full((4, 5), 0.25))  # N -> 0.25
    with pytest.raises(IndexError):
        ds[14]
    assert ds.label_counts().positives.tolist() == [2, 2]


def test_dataset_streams_and_pickles(tiny_genome):
    path, seqs = tiny_genome
    w = make_windows(path, window=400, step=200, center=100)
    ds = GenomeWindowDataset(path, w)
    ds[0]
    assert ds._fasta is not None  # opened lazily on first access ...
    for value in vars(ds).values():  # ... but no attribute holds sequence text
        assert not (isinstance(value, str) and len(value) >= 400)
    blob = pickle.dumps(ds)
    assert seqs["chr1"][:200].encode() not in blob
    clone = pickle.loads(blob)
    assert clone._fasta is None
    assert torch.equal(clone[3][0], ds[3][0])
    assert clone[0][1].shape == (0,)  # unlabelled windows
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2)
    xb = torch.cat([b[0] for b in loader])
    assert xb.shape == (14, 4, 400)
    assert torch.equal(xb[7], ds[7][0])


def test_dataset_reverse_complement_augmentation(tiny_genome):
    path, seqs = tiny_genome
    w = make_windows(path, window=400, step=200, center=100)
    draws = []
    from biodl.kinds.sequences.augment import AugmentedDataset, Augmenter

    for _ in range(2):
        ds = AugmentedDataset(GenomeWindowDataset(path, w), Augmenter(rc=True, seed=7))
        flips = []
        for i in range(len(ds)):
            got = decode(ds[i][0].numpy())
            row = w.iloc[i]
            fwd = seqs[row.chrom][row.start : row.end].upper()
            assert got in (fwd, reverse_complement(fwd))
            flips.append(got != fwd)
        draws.append(flips)
    assert draws[0] == draws[1]  # seeded
    assert 0 < sum(draws[0]) < len(draws[0])


def test_dataset_rejects_windows_outside_genome(tiny_genome):
    path, _ = tiny_genome
    bad = pd.DataFrame({"chrom": ["chr2"], "start": [1000], "end": [1400]})
    with pytest.raises(BiodlInputError, match="past"):
        GenomeWindowDataset(path, bad)
    with pytest.raises(BiodlInputError, match="chrZ"):
        GenomeWindowDataset(path, bad.assign(chrom="chrZ", start=0, end=400))


def test_build_derives_introns(tmp_path, tiny_genome, capsys):
    path, _ = tiny_genome
    gff = tmp_path / "genes.gff3"
    gff.write_text(
        "chr1\tt\tmRNA\t101\t1900\t.\t+\t.\tID=tx\n"
        "chr1\tt\texon\t101\t300\t.\t+\t.\tParent=tx\n"
        "chr1\tt\tCDS\t201\t300\t.\t+\t0\tParent=tx\n"
        "chr1\tt\texon\t1001\t1900\t.\t+\t.\tParent=tx\n"
        "chr1\tevidence\tintron\t1\t2000\t.\t+\t.\tName=ignored\n"
    )
    tr, va, te, names = build_genome_window_datasets(
        path,
        gff,
        ["exon", "intron"],
        window=400,
        step=200,
        center=100,
        valid=None,
        test=["chr2"],
        exclude_sources=["evidence"],
    )
    assert names == ["exon", "intron"]
    out = capsys.readouterr().out
    assert "derived 1 introns" in out and "intron" in out
    # chr1 centres [150,250) ... [1750,1850); the derived intron is [300,1000)
    intron_pos = tr.windows.start[tr.labels[:, 1] == 1].tolist()
    assert intron_pos == [200, 400, 600, 800]  # centre [950,1050) gets exactly 50 bp
    assert len(va) == 0 and len(te) == 5
    assert te.label_counts().positives.sum() == 0


# ------------------------------------------------------------------ real E. coli slice
def test_real_ecoli_slice_thr_operon_is_cds():
    feats = read_gff(ECOLI_GFF)
    thrl = feats[(feats.type == "CDS") & feats.attributes.str.contains("gene=thrL;")].iloc[0]
    assert (thrl.seqid, thrl.start0, thrl.end, thrl.strand) == ("NC_000913.3", 189, 255, "+")
    # small windows so that centres reach thrL: centre i is [150 + 50 i, 250 + 50 i)
    w = make_windows(ECOLI_FA, window=400, step=50, center=100)
    y = label_windows(w, feats, ["CDS", "ncRNA"], center=100)
    # thrL [189,255) covers 61 and 55 bp of centres 0 and 1; centre 2 [250,350) gets 5 bp of thrL
    # and 14 of thrA [336,2799): the intergenic gap; centres 4.. lie inside thrA
    np.testing.assert_array_equal(y[:5, 0], [1, 1, 0, 1, 1])
    w = make_windows(ECOLI_FA, window=1000, step=200, center=200)
    assert len(w) == (100_000 - 1000) // 200 + 1
    y = label_windows(w, feats, ["CDS", "ncRNA"])
    assert y[:9, 0].all()  # centres [400,600) ... [2000,2200) lie inside thrA
    tr, va, te, names = build_genome_window_datasets(ECOLI_FA, ECOLI_GFF, verbose=False, max_windows=200)
    assert names == ["CDS", "gene", "ncRNA", "mobile_genetic_element"]  # the types present in 100 kb
    assert 0 < len(tr) + len(va) + len(te) <= 200
    assert len(te) and te.windows.start.min() >= 90_000
    x, yy = tr[0]
    assert x.shape == (4, 1000) and yy.shape == (4,)
    row = tr.windows.iloc[0]
    assert decode(x.numpy()) == tr.sequence(0).upper() and len(tr.sequence(0)) == row.end - row.start


def test_window_spec_is_the_one_definition_of_the_windows():
    """One WindowSpec makes the training splits and the windows evaluation scores: the same
    test windows, except that max_windows subsamples training only."""
    from biodl.kinds.windows.data import WindowSpec

    d = Path(__file__).parent / "data" / "genome_windows"
    genome, gff = d / "ecoli_k12_first100kb.fna.gz", d / "ecoli_k12_first100kb.gff.gz"
    spec = WindowSpec(window=300, step=300, center=200, valid=0.15, test=0.3, seed=3)
    tr, va, te, names = spec.datasets(genome, gff, ["CDS"], verbose=False)
    lengths = {"NC_000913.3": 100_000}
    test = spec.select(lengths, "test")
    assert test[["chrom", "start", "end"]].astype(str).equals(te.windows.astype(str))
    small = WindowSpec(**{**spec.__dict__, "max_windows": 100})
    tr2, va2, te2, _ = small.datasets(genome, gff, ["CDS"], verbose=False)
    assert len(tr2) + len(va2) + len(te2) == 100 and len(te2) < len(te)
    assert len(small.select(lengths, "test")) == len(te)  # evaluation: every test window
    assert set(te2.windows["start"]) <= set(te.windows["start"])


def test_bed_intervals_beyond_the_chromosome_are_refused(tmp_path, capfd):
    """An interval entirely past the chromosome end was scored on the chromosome's last
    window; now it is an error naming the line. One that overhangs the end is moved inside
    (as before, with a note saying so); a zero-length one is centred on its point."""
    from biodl.io.bed import read_bed
    from biodl.kinds.windows.kind import _resize_intervals

    bed = tmp_path / "r.bed"
    bed.write_text("track name=x\nc1\t500\t500\tins\nc1\t950\t1050\tover\nc1\t1000\t1000\tpoint_at_end\n")
    w = _resize_intervals(read_bed(bed), 200, {"c1": 1000}, bed)
    assert w[["start", "end"]].values.tolist() == [[400, 600], [800, 1000], [800, 1000]]
    err = " ".join(capfd.readouterr().err.split())
    assert (
        "2 of 3 interval(s) are centred within 100 bp of a chromosome end (1 of them run past the end)" in err
    )
    bed.write_text("track name=x\nc1\t10\t20\nc1\t2000\t2100\tbeyond\nc1\t1000\t1001\n")
    with pytest.raises(
        BiodlInputError,
        match=r"r\.bed, line 3: interval c1:2000-2100 lies beyond the end of c1 "
        r"\(length 1000 bp\) \(2 such intervals",
    ):
        _resize_intervals(read_bed(bed), 200, {"c1": 1000}, bed)


def test_a_bed_of_one_feature_type_is_its_own_default_label(tmp_path, capsys):
    """A ChIP-seq peaks BED needed --labels peaks although a BED gives one label per file."""
    from biodl.kinds.windows.data import WindowSpec

    bed = tmp_path / "peaks.bed"
    bed.write_text("chr1\t100\t300\tpeak1\t500\t.\t10.5\t-1\t5.2\t150\n")
    features, spec = WindowSpec(window=300, step=300, center=200).features(bed, None)
    assert spec == {"peaks": ["peaks"]} and len(features) == 1
    assert "labels: 'peaks', the annotation's one feature type" in " ".join(capsys.readouterr().err.split())
    dnase = tmp_path / "dnase.bed.gz"
    dnase.write_bytes(gzip.compress(b"chr1\t400\t600\n"))
    features, spec = WindowSpec(window=300, step=300, center=200).features([bed, dnase], None)
    assert spec == {"dnase": ["dnase"], "peaks": ["peaks"]} and len(features) == 2
    assert "labels: 'dnase', 'peaks', one per BED file" in " ".join(capsys.readouterr().err.split())


def test_two_bed_files_of_one_name_are_refused_not_merged(tmp_path):
    """e1/peaks.bed and e2/peaks.bed became one label 'peaks'."""
    for d in ("e1", "e2"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "peaks.bed").write_text("chr1\t100\t300\n")
    with pytest.raises(BiodlInputError, match=r"both give the label 'peaks'.*rename one"):
        read_annotation([tmp_path / "e1" / "peaks.bed", tmp_path / "e2" / "peaks.bed"])
