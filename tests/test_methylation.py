"""CpG methylation kind: readers, neighbour features, the SAE's pre-training, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from biodl.cli import app
from biodl.errors import BiodlInputError
from biodl.kinds.methylation.data import CpGDataset, neighbours, observed_sites, window_mean
from biodl.kinds.methylation.io import chrom_key, read_annotation, read_calls, read_profiles, read_sites

DATA = Path(__file__).parent / "data" / "methylation"
runner = CliRunner()


def _write(p: Path, text: str) -> Path:
    p.write_text(text)
    return p


# ------------------------------------------------------------------ readers
def test_reads_the_three_formats_alike(tmp_path):
    calls = _write(tmp_path / "a.tsv", "chr1\t10\t1\nchr1\t20\t0.25\nchr2\t5\t0\n")
    cov = _write(tmp_path / "a.cov", "chr1\t10\t10\t100\t3\t0\nchr1\t20\t20\t25\t1\t3\nchr2\t5\t5\t0\t0\t2\n")
    bg = _write(
        tmp_path / "a.bedGraph", "track type=bedGraph\nchr1\t9\t10\t100\nchr1\t19\t20\t25\nchr2\t4\t5\t0\n"
    )
    a, b = read_calls(calls), read_calls(cov)
    c = read_calls(bg, levels="percent")
    for p in (a, b, c):
        assert p.chroms == ["1", "2"] and p.spelling["1"] == "chr1"
        assert p.positions["1"].tolist() == [10, 20] and p.positions["2"].tolist() == [5]
        assert np.allclose(p.values["1"], [1.0, 0.25]) and np.allclose(p.values["2"], [0.0])
    real = read_calls(DATA / "BS9N_SER.tsv.gz")
    assert real.n_sites == 2101 + 2508 and real.chroms == ["18", "19"]


@pytest.mark.parametrize(
    "text,line,what",
    [
        ("1\t10\t0.5\n1\t20\n", 2, "needs 3 fields"),
        ("1\t10\t0.5\n1\tten\t0.5\n", 2, "must be an integer, got 'ten'"),
        ("1\t10\t0.5\n1\t20\t1.5\n", 2, "must be a number in [0, 1], got '1.5'"),
        ("1\t10\t0.5\n1\t20\t75\n", 2, "(percentages? give --set levels=percent)"),
        ("1\t10\t0.5\n1\t8\t0.5\n", 2, "positions are not sorted within 1 (8 after 10)"),
        ("1\t10\t0.5\n1\t10\t1\n", 2, "site 1:10 is given twice (also on line 1)"),
        ("1\t10\t0.5\n2\t10\t1\n1\t30\t1\n", 3, "chromosome '1' appears again after other chromosomes"),
    ],
)
def test_bad_calls_name_the_line(tmp_path, text, line, what):
    p = _write(tmp_path / "bad.tsv", text)
    with pytest.raises(BiodlInputError) as e:
        read_calls(p)
    assert str(e.value).startswith(f"{p}, line {line}: ") and what in str(e.value)


GOOD = "18\t3000023\t0\n18\t3000086\t1\n"


@pytest.mark.parametrize(
    "first,what",
    [
        ("18\t-5\t1\n", "positions are 1-based, got -5"),
        ("18\tabc\t0.5\n", "the position (column 2) must be an integer, got 'abc' (a header line must name"),
        ("chr18\tx1\t0.5\n", "must be an integer, got 'x1'"),
        ("18\t10\tabc\n", "the methylation value must be a number in [0, 1], got 'abc'"),
    ],
)
def test_a_bad_first_line_is_data_not_a_header(tmp_path, first, what):
    """A first line is dropped as a header only when it names the columns: a bad record there
    is refused with its line, as it would be on line 2."""
    p = _write(tmp_path / "c.tsv", first + GOOD)
    with pytest.raises(BiodlInputError) as e:
        read_calls(p)
    assert str(e.value).startswith(f"{p}, line 1: ") and what in str(e.value), str(e.value)
    q = _write(tmp_path / "c2.tsv", "18\t2999000\t0\n" + first + GOOD)
    with pytest.raises(BiodlInputError, match="line 2: "):
        read_calls(q)


@pytest.mark.parametrize(
    "header",
    ["chrom\tpos\tvalue\n", "chromo\tpos\tvalue\n", "#chr\tposition\tmet\n", "Chromosome Start Level\n"],
)
def test_a_header_naming_the_columns_is_skipped(tmp_path, header):
    prof = read_calls(_write(tmp_path / "h.tsv", header + GOOD))
    assert prof.positions["18"].tolist() == [3000023, 3000086] and np.allclose(prof.values["18"], [0, 1])
    with pytest.raises(BiodlInputError, match="the file has a header line but no CpG calls"):
        read_calls(_write(tmp_path / "only.tsv", "chrom\tpos\tvalue\n"))


def test_six_column_bedgraph_is_not_read_as_bismark_cov(tmp_path):
    """MethylDackel's bedGraph (0-based start, end = start + 1, counts in columns 5-6) and a
    Bismark .cov (1-based, end = start) give the same sites; end = start + 1 without a track
    line or a telling name is refused, not guessed."""
    cov = _write(tmp_path / "a.cov", "chr1\t10\t10\t80\t8\t2\nchr1\t20\t20\t25\t1\t3\n")
    md = "chr1\t9\t10\t80\t8\t2\nchr1\t19\t20\t25\t1\t3\n"
    for p in (
        _write(tmp_path / "md.txt", "track type=bedGraph\n" + md),
        _write(tmp_path / "md.bedGraph.gz".replace(".gz", ""), md),
        _write(tmp_path / "md_CpG.bg", md),
    ):
        q = read_calls(p, levels="percent")  # levels do not matter: the counts give the level
        assert q.positions["1"].tolist() == read_calls(cov).positions["1"].tolist() == [10, 20], p
        assert np.allclose(q.values["1"], [0.8, 0.25])
    merged = read_calls(_write(tmp_path / "merged.cov", md))  # coverage2cytosine --merge_CpG: 1-based
    assert merged.positions["1"].tolist() == [9, 19]
    with pytest.raises(
        BiodlInputError, match=r"amb.txt, line 1: cannot tell a Bismark .cov .* from a bedGraph"
    ):
        read_calls(_write(tmp_path / "amb.txt", md))
    with pytest.raises(BiodlInputError, match=r"line 2: the file has a bedGraph track line but end == start"):
        read_calls(_write(tmp_path / "t.cov", "track type=bedGraph\nchr1\t10\t10\t80\t8\t2\n"))
    with pytest.raises(BiodlInputError, match=r"mix.cov, line 2: start 19, end 20 do not fit .*Bismark .cov"):
        read_calls(_write(tmp_path / "mix.cov", "chr1\t10\t10\t80\t8\t2\nchr1\t19\t20\t25\t1\t3\n"))
    with pytest.raises(
        BiodlInputError, match=r"bad.bedGraph, line 3: start 20, end 20 do not fit .*bedGraph"
    ):
        read_calls(_write(tmp_path / "bad.bedGraph", "track\nchr1\t9\t10\t80\t8\t2\nchr1\t20\t20\t1\t1\t3\n"))


def test_five_fields_and_percent_ranges_are_named(tmp_path):
    five = _write(tmp_path / "five.bedGraph", "18\t3000022\t3000023\t75\t10\n")
    for levels in ("fraction", "percent"):
        with pytest.raises(BiodlInputError) as e:
            read_calls(five, levels=levels)
        msg = str(e.value)
        assert (
            msg.startswith(f"{five}, line 1: this line has 5 fields") and "6 fields (chrom start end" in msg
        )
        assert "4 fields (chrom start0 end value: bedGraph)" in msg and "3000023" not in msg
    bg = _write(tmp_path / "p.bedGraph", "track\n1\t9\t10\t75\n1\t19\t20\t150\n")
    with pytest.raises(
        BiodlInputError, match=r"line 3: the methylation value must be a number in \[0, 100\]"
    ):
        read_calls(bg, levels="percent")


def test_sites_files_give_positions_only(tmp_path):
    two = read_sites(_write(tmp_path / "s.tsv", "chrom\tpos\n18\t3000023\n18\t3000500\n"))
    assert two.positions["18"].tolist() == [3000023, 3000500] and np.isnan(two.values["18"]).all()
    pct = read_sites(_write(tmp_path / "s.bedGraph", "track\n18\t3000022\t3000023\t75\n"))
    assert pct.positions["18"].tolist() == [3000023]  # a percentage is no error: values are ignored
    # a BED of the Cs (1 bp) or of the CpG dinucleotides (2 bp): the site is start + 1 (the
    # dinucleotide was read as a call table at its 0-based start: every site 1 bp off)
    for n in (1, 2):
        bed = read_sites(
            _write(tmp_path / f"b{n}.bed", f"18\t3000022\t{3000022 + n}\n18\t3000499\t{3000499 + n}\n")
        )
        assert bed.positions["18"].tolist() == [3000023, 3000500]
    with pytest.raises(
        BiodlInputError, match=r"b.bed, line 2: a BED of CpG sites has intervals .* 3000499-3000600"
    ):
        read_sites(_write(tmp_path / "b.bed", "18\t3000022\t3000024\n18\t3000499\t3000600\n"))
    with pytest.raises(BiodlInputError, match=r"line 2: a call-table line needs 2 fields"):
        read_sites(_write(tmp_path / "one.tsv", "18\t5\n18\n"))


def test_truncated_and_empty_files(tmp_path):
    data = (DATA / "BS9N_SER.tsv.gz").read_bytes()
    t = tmp_path / "t.tsv.gz"
    t.write_bytes(data[: len(data) // 2])
    with pytest.raises(BiodlInputError, match="truncated or corrupt"):
        read_calls(t)
    with pytest.raises(BiodlInputError, match="the file is empty"):
        read_calls(_write(tmp_path / "e.tsv", "\n"))
    for text in ("", "\n"):  # as a training / evaluation input: the same message, not a StopIteration
        with pytest.raises(BiodlInputError, match="the file is empty: no CpG calls"):
            read_profiles(_write(tmp_path / "e2.tsv", text))


def test_sample_tables(tmp_path):
    profs = read_profiles(DATA / "cells.tsv")
    assert [p.name for p in profs] == ["BS27_4_SER", "BS28_2_SER", "BS9N_SER"]
    bad = _write(tmp_path / "s.tsv", "name\tfile\nx\tnothere.tsv\n")
    with pytest.raises(BiodlInputError, match=r"s.tsv, line 2: listed file 'nothere.tsv' not found"):
        read_profiles(bad)
    twice = _write(
        tmp_path / "t.tsv", f"name\tfile\nx\t{DATA / 'BS27_4_SER.tsv.gz'}\nx\t{DATA / 'BS28_2_SER.tsv.gz'}\n"
    )
    with pytest.raises(BiodlInputError, match="profile name.s. given twice: x") as e:
        read_profiles(twice)
    # the table has a name column: the message says to give each row its own name, not to add one
    assert "give each row its own name in column 'name'" in str(e.value)
    assert "add a name column" not in str(e.value)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for d in ("a", "b"):
        (tmp_path / d / "cell.tsv").write_text(GOOD)
    files_only = _write(tmp_path / "f.tsv", "file\na/cell.tsv\nb/cell.tsv\n")
    with pytest.raises(
        BiodlInputError, match=r"given twice: cell \(names come from the file names here: add a name"
    ):
        read_profiles(files_only)


def test_annotations_match_chromosomes_by_name(tmp_path):
    assert chrom_key("chr18") == chrom_key("18") == "18" and chrom_key("chrX") == "X"
    bed = _write(tmp_path / "a.bed", "chr1\t100\t200\nchr1\t150\t300\nchr1\t1000\t1010\n")
    a = read_annotation(bed)
    assert a.starts["1"].tolist() == [100, 1000] and a.ends["1"].tolist() == [300, 1010]  # merged
    f = a.features("1", np.array([101, 300, 301, 600, 2000]))  # 1-based sites
    assert f[:, 0].tolist() == [1, 1, 0, 0, 0]
    assert np.allclose(10 ** f[:, 1] - 1, [0, 0, 1, 300, 990], rtol=1e-4)
    assert np.allclose(a.features("2", np.array([5]))[:, 1], 9.0)  # no interval on the chromosome


# ------------------------------------------------------------------ neighbour features
def test_neighbours_exclude_the_target_and_pad_at_chromosome_ends():
    obs = np.array([10, 20, 30, 40, 50])
    val = np.array([1, 0, 1, 0, 1], dtype=np.float32)
    st, d = neighbours(obs, val, np.array([30, 11, 55]), k=2, max_dist=1000)
    # target 30 (observed): left 10, 20 (far to near), right 40, 50; 30 itself left out
    assert st[0].tolist() == [1, 0, 0, 1] and d[0].tolist() == [20, 10, 10, 20]
    # target 11: one neighbour on the left, the other missing (0.5 at max_dist)
    assert st[1].tolist() == [0.5, 1, 0, 1] and d[1].tolist() == [1000, 1, 9, 19]
    # target 55: beyond the last site, nothing on the right
    assert st[2].tolist() == [0, 1, 0.5, 0.5] and d[2].tolist() == [15, 5, 1000, 1000]
    st, d = neighbours(np.zeros(0, np.int64), np.zeros(0, np.float32), np.array([5]), k=1)
    assert st.tolist() == [[0.5, 0.5]]


def test_the_dataset_never_shows_a_site_its_own_state():
    prof = read_calls(DATA / "BS27_4_SER.tsv.gz")
    sites = observed_sites([prof], ["18"])
    ds = CpGDataset([prof], sites, k=3, threshold=0.5)
    x = ds.features(np.arange(len(sites)))
    dist = x[:, 0, 6:12]
    assert (dist > 0).all()  # no neighbour at distance 0: the target is excluded
    # window mean of the nearest neighbours is a (weak) predictor of the held-out state
    wm = window_mean(x, 3)
    y = ds.y[:, 0]
    assert np.corrcoef(wm, y)[0, 1] > 0.2


def test_per_epoch_subsets_are_seeded():
    prof = read_calls(DATA / "BS9N_SER.tsv.gz")
    sites = observed_sites([prof], ["18"])
    a = CpGDataset([prof], sites, k=2, per_epoch=100, seed=3)
    b = CpGDataset([prof], sites, k=2, per_epoch=100, seed=3)
    assert len(a) == 100
    a.set_epoch(2)
    b.set_epoch(2)
    assert np.array_equal(a._order, b._order)
    b.set_epoch(3)
    assert not np.array_equal(a._order, b._order)


def test_sae_pretraining_lowers_the_reconstruction_loss(tmp_path, capsys):
    from biodl.models.methylation import CpGSAE
    from biodl.train import TrainConfig
    from biodl.train.pretrain import pretrain_layers

    prof = read_calls(DATA / "BS9N_SER.tsv.gz")
    ds = CpGDataset([prof], observed_sites([prof], ["18"]), k=5)
    torch.manual_seed(0)
    model = CpGSAE(1, ds.n_features, hidden=[16, 8])
    x = torch.from_numpy(ds.features(np.arange(len(ds)))).flatten(1)
    model.scale.fit(x)

    def rec_loss(k: int) -> float:
        model.stage = f"pretrain:{k}"
        torch.manual_seed(1)
        with torch.no_grad():
            return float(model.loss((x, None))["loss"])

    before = [rec_loss(0), rec_loss(1)]
    cfg = TrainConfig(max_epochs=1, batch_size=64, lr=3e-3, progress=False, device="cpu")
    pretrain_layers(model, ds, ds, tmp_path, cfg, epochs=4)
    assert model.stage == "finetune"
    after = [rec_loss(0), rec_loss(1)]
    assert after[0] < 0.7 * before[0] and after[1] < before[1], (before, after)
    # still improving at the 4th epoch: the hint names the option that sets pre-training epochs
    err = capsys.readouterr().err
    assert "more epochs (--set pretrain_epochs=8) may help" in err and "--epochs" not in err


# ------------------------------------------------------------------ CLI
def test_cli_train_evaluate_predict(tmp_path):
    out = tmp_path / "run"
    r = runner.invoke(
        app,
        ["train", "--system", "deepcpg-cpg", str(DATA / "cells.tsv"), "--set", "input_only=BS9N_SER"]
        + ["--set", f"annotations={DATA / 'CGI.bed.gz'}", "--epochs", "2", "--no-progress", "--out", str(out)]
        + ["-m", "embed=16", "-m", "hidden=8"],
    )
    assert r.exit_code == 0, r.output
    s = json.loads((out / "summary.json").read_text())
    assert s["kind"] == "methylation" and s["task"] == "multilabel" and s["n_test"] > 1000
    assert 0.5 < s["test_metrics"]["auroc"] <= 1 and (out / "report.html").exists()
    html = (out / "report.html").read_text()
    assert "Per-profile performance" in html and "Calibration and distance" in html
    pred = pd.read_csv(out / "test" / "predictions.tsv", sep="\t")
    assert {"chrom", "pos", "prob_BS27_4_SER", "true_BS27_4_SER", "nearest_BS27_4_SER"} <= set(pred.columns)
    assert set(pred["chrom"].astype(str)) == {"19"}

    r = runner.invoke(app, ["evaluate", str(out), str(DATA / "cells.tsv"), "--set", "chroms=19"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["auroc"] == pytest.approx(s["test_metrics"]["auroc"], abs=1e-5)

    r = runner.invoke(
        app, ["predict", str(out), str(DATA / "cells.tsv"), "--out", str(tmp_path / "imputed.tsv")]
    )
    assert r.exit_code == 0, r.output
    imp = pd.read_csv(tmp_path / "imputed.tsv", sep="\t")
    assert list(imp.columns) == ["chrom", "pos", "BS27_4_SER", "BS28_2_SER"]
    assert ((imp["BS27_4_SER"] >= 0) & (imp["BS27_4_SER"] <= 1)).all()
    # a file without the model's profiles is refused, naming them
    r = runner.invoke(app, ["predict", str(out), str(DATA / "BS9N_2I.tsv.gz")])
    assert r.exit_code == 2 and "the model reads profiles BS27_4_SER, BS28_2_SER, BS9N_SER" in " ".join(
        r.output.split()
    )


def test_one_profile_models_write_the_input_format(tmp_path):
    out = tmp_path / "bulk"
    r = runner.invoke(
        app,
        ["train", "--system", "cpg-sae", str(DATA / "BS9N_SER.tsv.gz"), "--set", "pretrain_epochs=1"]
        + ["--set", "k=5", "--epochs", "1", "--no-progress", "--out", str(out), "-m", "hidden=[8]"],
    )
    assert r.exit_code == 0, r.output
    sites = tmp_path / "sites.tsv"
    sites.write_text("18\t3000500\t0\n18\t3000600\t0\n")
    r = runner.invoke(app, ["predict", str(out), str(DATA / "BS9N_2I.tsv.gz"), "--set", f"sites={sites}"])
    assert r.exit_code == 0, r.output
    rows = [x.split("\t") for x in r.stdout.strip().splitlines()]
    assert [x[:2] for x in rows] == [["18", "3000500"], ["18", "3000600"]]  # chrom pos value, no header
    assert all(0 <= float(x[2]) <= 1 for x in rows)
    # --set sites ignores the values: a chrom-pos table and a bedGraph of percentages are sites
    (tmp_path / "two.tsv").write_text("18\t3000500\n18\t3000600\n")
    (tmp_path / "pct.bedGraph").write_text(
        "track type=bedGraph\n18\t3000499\t3000500\t75\n18\t3000599\t3000600\t5\n"
    )
    for f in ("two.tsv", "pct.bedGraph"):
        r = runner.invoke(
            app, ["predict", str(out), str(DATA / "BS9N_2I.tsv.gz"), "--set", f"sites={tmp_path / f}"]
        )
        assert r.exit_code == 0, r.output
        assert [x.split("\t")[:2] for x in r.stdout.strip().splitlines()] == [x[:2] for x in rows]
    # sites on no chromosome of the calls: the sites file is named, not the calls
    (tmp_path / "x.bed").write_text("chrX\t99\t100\n")
    r = runner.invoke(
        app, ["predict", str(out), str(DATA / "BS9N_2I.tsv.gz"), "--set", f"sites={tmp_path / 'x.bed'}"]
    )
    msg = " ".join(r.output.split())
    assert r.exit_code == 2 and "x.bed: none of its sites is on a chromosome of the calls (18, 19" in msg
    r = runner.invoke(
        app,
        ["train", "--system", "deepcpg-cpg", str(DATA / "BS9N_SER.tsv.gz"), "--set", "test_chroms=7"]
        + ["--out", str(tmp_path / "x")],
    )
    assert r.exit_code == 2 and "unknown chromosome(s) 7: the calls have 18, 19" in r.output


def _genome(path: Path, names=("chr18", "chr19"), length=3_410_000) -> Path:
    """A random genome long enough for the bundled slice (no mm10 here: plumbing only)."""
    rng = np.random.default_rng(0)
    with open(path, "w") as f:
        for c in names:
            s = rng.choice(np.frombuffer(b"ACGT", dtype="S1"), length).tobytes().decode()
            f.write(f">{c}\n" + "\n".join(s[i : i + 80] for i in range(0, len(s), 80)) + "\n")
    return path


def test_dna_windows_are_centred_and_padded_at_chromosome_ends(tmp_path):
    from biodl.io.fasta import open_genome
    from biodl.kinds.methylation.data import DNAWindows

    fa = tmp_path / "g.fa"
    fa.write_text(">chr1\nACGTACGTAC\n")
    w = DNAWindows(open_genome(fa), fa, 5, ["1"])
    x = w.onehot(np.array(["1", "1", "1"], dtype=object), np.array([3, 1, 10]))
    assert x.shape == (3, 4, 5)
    # position 3 (G): window 1-5 = ACGTA
    assert x[0].argmax(0).tolist() == [0, 1, 2, 3, 0]
    # position 1: two N (0.25 everywhere) before A C G
    assert np.allclose(x[1][:, :2], 0.25) and x[1][:, 2:].argmax(0).tolist() == [0, 1, 2]
    # position 10 (the last C): T A C and two N after
    assert x[2][:, :3].argmax(0).tolist() == [3, 0, 1] and np.allclose(x[2][:, 3:], 0.25)
    with pytest.raises(BiodlInputError, match="chromosome.*2.*not in the genome"):
        DNAWindows(open_genome(fa), fa, 5, ["1", "2"])


def test_dna_module_plumbing_train_predict(tmp_path):
    """DeepCpG's DNA module end to end on a random genome: no accuracy claim, only that the
    pair input flows through train / evaluate / predict, and that the genome is required."""
    g = _genome(tmp_path / "g.fa")
    out = tmp_path / "run"
    r = runner.invoke(
        app,
        ["train", "--system", "deepcpg-cpg", str(DATA / "cells.tsv"), "--set", "input_only=BS9N_SER"]
        + ["--set", f"genome={g}", "--set", "dna_window=101", "--epochs", "1", "--no-progress"]
        + ["-m", "embed=16", "-m", "hidden=8", "-m", "dna_filters=[8,8]", "-m", "joint=16"]
        + ["--out", str(out)],
    )
    assert r.exit_code == 0, r.output
    meta = json.loads((out / "run.json").read_text())
    assert meta["model_kwargs"]["dna_window"] == 101 and meta["data"]["dna_window"] == 101
    r = runner.invoke(
        app,
        ["predict", str(out), str(DATA / "cells.tsv"), "--set", f"genome={g}"]
        + ["--out", str(tmp_path / "p.tsv")],
    )
    assert r.exit_code == 0, r.output
    p = pd.read_csv(tmp_path / "p.tsv", sep="\t")
    assert len(p) > 4000 and p["BS27_4_SER"].between(0, 1).all()
    g.unlink()  # the training genome is gone: a clear error, not a shape error
    r = runner.invoke(app, ["predict", str(out), str(DATA / "cells.tsv")])
    assert r.exit_code == 2 and "DNA module" in r.output and "--set genome" in r.output
    # a genome without the calls' chromosomes is refused naming them
    other = _genome(tmp_path / "other.fa", names=("chr1",), length=1000)
    r = runner.invoke(app, ["predict", str(out), str(DATA / "cells.tsv"), "--set", f"genome={other}"])
    assert r.exit_code == 2 and "18, 19" in r.output and "not in the genome" in r.output
    # the SAE has no DNA module
    r = runner.invoke(
        app,
        ["train", "--system", "cpg-sae", str(DATA / "BS9N_SER.tsv.gz"), "--set", f"genome={other}"]
        + ["--out", str(tmp_path / "sae")],
    )
    assert r.exit_code == 2 and "genome" in r.output


def test_an_annotation_on_no_chromosome_of_the_calls_is_said(capsys):
    """A BED of another naming or assembly only adds constant features: a warning names it."""
    from biodl.kinds.methylation.io import read_calls
    from biodl.kinds.methylation.kind import KIND

    calls = [read_calls(DATA / "BS9N_SER.tsv.gz")]
    bed = DATA / "CGI.bed.gz"
    assert len(KIND._annotations([bed], calls)) == 1
    assert "no interval on a chromosome" not in capsys.readouterr().err
    other = [read_calls(DATA / "BS9N_SER.tsv.gz")]
    other[0].positions = {"X": other[0].positions["18"]}
    KIND._annotations([bed], other)
    err = " ".join(capsys.readouterr().err.split())
    assert "CGI.bed.gz: no interval on a chromosome of the calls (calls: X;" in err


def test_a_huge_position_and_a_comma_separated_table_are_named(tmp_path):
    from biodl.kinds.methylation.io import read_calls

    (tmp_path / "big.tsv").write_text("1\t99999999999999999999\t0.5\n")
    with pytest.raises(BiodlInputError, match="must be an integer, got '99999999999999999999'"):
        read_calls(tmp_path / "big.tsv")
    (tmp_path / "c.csv").write_text("1,10,0.5\n1,20,0.5\n")
    with pytest.raises(BiodlInputError, match="this line uses ','"):
        read_calls(tmp_path / "c.csv")


def test_cov_percent_column_checked_against_the_counts(tmp_path, capsys):
    """Column 4 of a .cov agrees with the counts (rounded, or as a fraction): read silently;
    counts in the other order (column 4 = 100 minus their level on every line) are refused
    rather than read as 1 - level; another disagreement is a warning naming the line."""
    ok = read_calls(
        _write(
            tmp_path / "ok.cov", "chr1\t10\t10\t80\t8\t2\nchr1\t20\t20\t33\t1\t2\nchr1\t30\t30\t0.5\t1\t1\n"
        )
    )
    assert np.allclose(ok.values["1"], [0.8, 1 / 3, 0.5])
    assert "warning" not in capsys.readouterr().err
    with pytest.raises(
        BiodlInputError, match=r"sw.cov, line 1: the percentage in column 4 \('80'\).*counts look swapped"
    ):
        read_calls(_write(tmp_path / "sw.cov", "chr1\t10\t10\t80\t2\t8\nchr1\t20\t20\t25\t3\t1\n"))
    w = read_calls(_write(tmp_path / "w.cov", "chr1\t10\t10\t80\t8\t2\nchr1\t20\t20\t60\t3\t1\n"))
    assert np.allclose(w.values["1"], [0.8, 0.75])  # the counts are used
    err = capsys.readouterr().err
    assert "w.cov, line 2: the percentage in column 4 ('60') disagrees" in err and "1 of 2 line(s)" in err


def test_a_sample_table_with_a_separator_ending_each_line(tmp_path):
    """Each data line ending with a tab shifted the columns: 'listed file A not found'."""
    from biodl.kinds.methylation.io import read_profiles

    _write(tmp_path / "a.tsv", "chr1\t10\t1\nchr1\t20\t0\n")
    _write(tmp_path / "b.tsv", "chr1\t10\t0\nchr1\t20\t1\n")
    t = _write(tmp_path / "cells.tsv", "name\tfile\nA\ta.tsv\t\nB\tb.tsv\t\n")
    assert [p.name for p in read_profiles(t)] == ["A", "B"]


def test_bismark_cytosine_report_and_bedmethyl_merge_the_two_strands(tmp_path):
    """Bismark's CpG report (7 columns, strand in column 3) and ENCODE's bedMethyl (11 columns)
    were refused with errors about a 6-column layout they do not have; each CpG's two strands are
    one site at its + strand C, counts summed (coverage2cytosine --merge_CpG)."""
    report = _write(
        tmp_path / "CpG_report.txt",
        "chr18\t100\t+\t3\t1\tCG\tCGT\n"  # CpG at 100: + strand 3/4 ...
        "chr18\t101\t-\t1\t3\tCG\tCGA\n"  # ... - strand 1/4: 4/8
        "chr18\t102\t+\t5\t0\tCHG\tCAG\n"  # not a CpG
        "chr18\t200\t+\t0\t0\tCG\tCGA\n"  # no reads
        "chr18\t201\t-\t0\t0\tCG\tCGT\n"
        "chr18\t300\t+\t0\t0\tCG\tCGT\n"
        "chr18\t301\t-\t2\t0\tCG\tCGT\n",  # - strand only: the CpG at 300
    )
    prof = read_calls(report)
    assert prof.positions["18"].tolist() == [100, 300]
    assert prof.values["18"].tolist() == pytest.approx([0.5, 1.0])
    assert read_sites(report).positions["18"].tolist() == [100, 200, 300]  # every CpG listed
    bm = _write(
        tmp_path / "ENCFF.bed",
        "chr18\t99\t100\t.\t4\t+\t99\t100\t0,255,0\t4\t75\n"
        "chr18\t100\t101\t.\t4\t-\t100\t101\t0,255,0\t4\t25\n"
        "chr18\t299\t300\t.\t2\t+\t299\t300\t0,255,0\t2\t100\n",
    )
    prof = read_calls(bm)
    assert prof.positions["18"].tolist() == [100, 300]
    assert prof.values["18"].tolist() == pytest.approx([0.5, 1.0])
    # modkit's bedMethyl: 5mC (m) and 5hmC (h) rows of each site; the m rows are read
    modkit = _write(
        tmp_path / "modkit.bed",
        "chr18\t99\t100\tm\t4\t+\t99\t100\t255,0,0\t4\t75.00\t3\t1\t0\n"
        "chr18\t99\t100\th\t4\t+\t99\t100\t255,0,0\t4\t25.00\t1\t3\t0\n"
        "chr18\t100\t101\tm\t4\t-\t100\t101\t255,0,0\t4\t25.00\t1\t3\t0\n"
        "chr18\t100\t101\th\t4\t-\t100\t101\t255,0,0\t4\t0.00\t0\t4\t0\n",
    )
    prof = read_calls(modkit)
    assert prof.positions["18"].tolist() == [100] and prof.values["18"].tolist() == pytest.approx([0.5])
    with pytest.raises(BiodlInputError, match=r"CpG_bad.txt, line 2: the count_methylated \(column 4\)"):
        read_calls(
            _write(tmp_path / "CpG_bad.txt", "chr18\t100\t+\t3\t1\tCG\tCGT\nchr18\t101\t-\tx\t3\tCG\tCGA\n")
        )
    with pytest.raises(BiodlInputError, match=r"bad.bed, line 1: the percent methylated \(column 11\)"):
        read_calls(_write(tmp_path / "bad.bed", "chr18\t99\t100\t.\t4\t+\t99\t100\t0\t4\t175\n"))


def test_a_file_with_the_two_strands_on_separate_lines_is_said(tmp_path, capsys):
    """A .cov without --merge_CpG: each CpG's other strand was a neighbour 1 bp away (test AUROC
    0.81 -> 0.86 on the same calls) without a word."""
    lines = "".join(
        f"18\t{p}\t{p}\t100\t1\t0\n18\t{p + 1}\t{p + 1}\t100\t1\t0\n" for p in range(100, 2000, 50)
    )
    read_calls(_write(tmp_path / "both.cov", lines))
    err = " ".join(capsys.readouterr().err.split())
    assert "both.cov: 38 of 76 sites have a site 1 bp after them" in err and "--merge_CpG" in err
    merged = "".join(f"18\t{p}\t{p}\t100\t1\t0\n" for p in range(100, 2000, 50))
    read_calls(_write(tmp_path / "one.cov", merged))
    assert "1 bp after them" not in capsys.readouterr().err


def test_regression_call_tables_hold_levels_in_0_1(tmp_path):
    """The linear head's levels after a short training were all negative in the call table (a
    file the reader refuses as levels)."""
    out = tmp_path / "sae"
    args = ["train", "--system", "cpg-sae", "--data", str(DATA / "BS9N_SER.tsv.gz"), "--task", "regression"]
    args += ["--set", f"annotations={DATA / 'CGI.bed.gz'}"]  # (1 epoch: levels below 0, as reported)
    r = runner.invoke(app, [*args, "--epochs", "1", "--out", str(out)])
    assert r.exit_code == 0, r.output
    pred = tmp_path / "p.tsv"
    r = runner.invoke(app, ["predict", str(out), str(DATA / "BS9N_SER.tsv.gz"), "--out", str(pred)])
    assert r.exit_code == 0, r.output
    v = pd.read_csv(pred, sep="\t", header=None)[2]
    assert v.between(0, 1).all()
    raw = pd.read_csv(out / "test" / "predictions.tsv", sep="\t")
    assert not raw.filter(like="pred_").stack().between(0, 1).all()  # the raw outputs are not levels
    assert "levels outside [0, 1] are clipped" in " ".join(r.output.split())
    read_calls(pred)  # the call table reads back as levels
