"""VCF round trip on a real E. coli slice: REF check, strands as predict, N padding, indels, VCF out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from biodl.cli import app
from biodl.encode import one_hot
from biodl.errors import BiodlInputError
from biodl.interpret.variants import run_variants, score_variants, variant_windows
from biodl.models import DeepBind
from tests.conftest import save_legacy_model

torch.set_num_threads(1)
DATA = Path(__file__).parent / "data" / "interpret"
VCF = DATA / "variants.vcf"
GENOME = DATA / "ecoli_4kb.fa"
L = 101


def _deepbind_run(d: Path, seed: int, **meta) -> Path:
    """A run directory of an untrained two-label DeepBind of length ``L`` (``meta``: more of its
    record, e.g. ``rc_augment=True``)."""
    torch.manual_seed(seed)
    kw = dict(
        n_outputs=2, num_motifs=4, motif_len=8, hidden=8, pool="max", dropout=0.5, reverse_complement=False
    )
    record = {"recipe": "deepbind", "model_kwargs": kw, "seq_len": L, "n_value": 0.25}
    record.update(task="multilabel", label_names=["tf1", "tf2"], **meta)
    save_legacy_model(d / "model.pt", DeepBind(**kw), record)
    return d


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return _deepbind_run(tmp_path_factory.mktemp("vmodel"), 1)


def test_windows_check_ref_and_pad(tmp_path):
    ws = variant_windows(VCF, GENOME, L)
    by_id = {}
    for w in ws:
        by_id.setdefault(w.id, []).append(w)
    assert len(ws) == 10  # 9 records, one with two ALTs
    genome = "".join(GENOME.read_text().splitlines()[1:])
    start = by_id["snv_start"][0]
    assert start.status == "ok" and start.ref_seq.startswith("N" * 48) and start.ref_seq[50] == genome[2]
    assert start.alt_seq[50] == "G" and start.ref_seq[51:] == start.alt_seq[51:] == genome[3:53]
    end = by_id["snv_end"][0]
    assert end.ref_seq.endswith("N" * 48) and end.ref_seq[50] == genome[3997]
    mid = by_id["snv_mid"][0]
    assert mid.ref_seq == genome[336 - 50 : 336 + 51]
    assert [w.alt for w in by_id["multi"]] == ["A", "C"] and all(w.status == "ok" for w in by_id["multi"])
    mm = by_id["mismatch"][0]
    assert mm.status.startswith("REF mismatch") and mm.ref_seq == "" and "'C'" in mm.status
    assert by_id["sym"][0].status.startswith("unsupported ALT")
    assert by_id["unknown_chrom"][0].status.startswith("unknown chromosome")
    dele, ins = by_id["del"][0], by_id["ins"][0]
    assert len(dele.alt_seq) == len(ins.alt_seq) == L
    assert dele.alt_seq[:51] == dele.ref_seq[:51] and dele.alt_seq[51:] == genome[2503 : 2503 + 50]
    assert ins.alt_seq[50:54] == "AGGC"


def test_round_trip_table_and_vcf(model_dir, tmp_path, caplog):
    out, out_vcf = tmp_path / "v.tsv", tmp_path / "v.vcf"
    with caplog.at_level("WARNING", logger="biodl.variants"):
        table = run_variants(model_dir, VCF, GENOME, out, out_vcf=out_vcf)
    assert "record 4" in caplog.text and "does not match the genome" in caplog.text
    disk = pd.read_csv(out, sep="\t")
    assert list(disk.columns[:6]) == ["chrom", "pos", "id", "ref", "alt", "status"]
    assert {"tf1_ref", "tf1_alt", "tf1_diff", "tf1_log_odds_diff", "tf2_diff"} <= set(disk.columns)
    ok = disk["status"] == "ok"
    assert (
        ok.sum() == 7
        and disk.loc[~ok, "tf1_diff"].isna().all()
        and np.isfinite(disk.loc[ok, "tf1_diff"]).all()
    )
    assert disk.loc[disk["id"] == "mismatch", "status"].item().startswith("REF mismatch")
    np.testing.assert_allclose(disk["tf1_diff"], disk["tf1_alt"] - disk["tf1_ref"], atol=1e-5)
    # recomputed by hand for one SNV: a model not trained with --rc-augment scores the given
    # strand, as `biodl predict` does (test_scores_equal_predict_of_the_windows)
    from biodl.train import load_model

    model, _ = load_model(model_dir)
    w = [x for x in variant_windows(VCF, GENOME, L) if x.id == "snv_mid"][0]
    with torch.no_grad():

        def score(s):
            x = torch.from_numpy(one_hot(s))[None]
            return torch.sigmoid(model(x))[0].numpy()

        ref, alt = score(w.ref_seq), score(w.alt_seq)
    row = table[table["id"] == "snv_mid"].iloc[0]
    np.testing.assert_allclose([row["tf1_ref"], row["tf2_alt"]], [ref[0], alt[1]], rtol=1e-5)
    lo = np.log(alt[0] / (1 - alt[0])) - np.log(ref[0] / (1 - ref[0]))
    assert row["tf1_log_odds_diff"] == pytest.approx(lo, abs=2e-5)
    # the VCF: same records, INFO fields per ALT and output
    from cyvcf2 import VCF as Reader

    recs = list(Reader(str(out_vcf)))
    assert [r.ID for r in recs] == [r.ID for r in Reader(str(VCF))]
    multi = [r for r in recs if r.ID == "multi"][0]
    assert multi.INFO["BIODL_STATUS"] in ("ok,ok", ("ok", "ok"))
    diffs = np.array(multi.INFO["BIODL_DIFF"], dtype=float).reshape(2, 2)  # ALT-major, then outputs
    m = table[table["id"] == "multi"]
    np.testing.assert_allclose(diffs, m[["tf1_diff", "tf2_diff"]].to_numpy(), rtol=1e-4, atol=1e-6)
    mm = [r for r in recs if r.ID == "mismatch"][0]
    assert mm.INFO["BIODL_STATUS"] == "ref_mismatch" and mm.INFO.get("BIODL_DIFF") is None


def test_batched_equals_one_at_a_time(model_dir):
    from biodl.train import load_model

    model, _ = load_model(model_dir)
    ws = variant_windows(VCF, GENOME, L)
    a = score_variants(model, ws, batch_size=3)
    b = score_variants(model, ws, batch_size=1)
    pd.testing.assert_frame_equal(a, b, atol=1e-6)


def test_bad_inputs(model_dir, tmp_path):
    bad = tmp_path / "bad.vcf"
    bad.write_text("this is not a vcf\n")
    with pytest.raises(BiodlInputError, match="bad.vcf"):
        variant_windows(bad, GENOME, L)
    with pytest.raises(BiodlInputError, match="nope.fa"):
        variant_windows(VCF, tmp_path / "nope.fa", L)


def test_cli_variants(model_dir, tmp_path, capfd, caplog):
    r = CliRunner().invoke(
        app,
        [
            "variants",
            str(model_dir),
            "--vcf",
            str(VCF),
            "--genome",
            str(GENOME),
            "--out",
            str(tmp_path / "t.tsv"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "REF mismatch" in r.output and "scored 7 of 10 variant allele(s) (given strand)" in r.output
    # each allele not scored is said once (the library's own warning is for API users)
    assert "does not match the genome" not in r.output + capfd.readouterr().err + caplog.text


def test_cli_variants_none_scored_fails(model_dir, tmp_path):
    """A VCF none of whose alleles can be scored (chromosome names of another naming) is not a
    success: the table is written, every allele is listed, and the exit status says it failed."""
    renamed = tmp_path / "chr.vcf"
    renamed.write_text(VCF.read_text().replace("NC_000913.3", "chrX"))
    out = tmp_path / "t.tsv"
    r = CliRunner().invoke(
        app, ["variants", str(model_dir), "--vcf", str(renamed), "--genome", str(GENOME), "--out", str(out)]
    )
    assert r.exit_code == 2, r.output
    assert "scored 0 of 10 variant allele(s)" in r.output
    assert "no variant allele could be scored (" in r.output and "unknown chromosome" in r.output
    assert "chr1 vs 1" in r.output and "chr.vcf" in r.output
    assert len(pd.read_csv(out, sep="\t")) == 10  # the table, with why each was not scored


def test_variable_length_model_scores_with_a_window(tmp_path):
    """A model trained at variable lengths (no seq_len) needs --window; with it, variants are
    scored in windows of that length; a bad window is a clear error."""
    torch.manual_seed(2)
    kw = dict(n_outputs=1, num_motifs=4, motif_len=8, hidden=0, reverse_complement=False)
    meta = {"recipe": "deepbind", "model_kwargs": kw, "n_value": 0.25, "task": "binary", "label_names": ["b"]}
    path = save_legacy_model(tmp_path / "model.pt", DeepBind(**kw), meta)
    with pytest.raises(BiodlInputError, match="variable lengths.*--window"):
        run_variants(path, VCF, GENOME, tmp_path / "a.tsv")
    with pytest.raises(BiodlInputError, match="--window must be a positive"):
        run_variants(path, VCF, GENOME, tmp_path / "a.tsv", window=0)
    table = run_variants(path, VCF, GENOME, tmp_path / "a.tsv", window=61)
    assert (table["status"] == "ok").sum() == 7
    ok = next(w for w in variant_windows(VCF, GENOME, 61) if w.status == "ok")
    assert len(ok.ref_seq) == 61
    r = CliRunner().invoke(
        app,
        [
            "variants",
            str(path),
            "--vcf",
            str(VCF),
            "--genome",
            str(GENOME),
            "--out",
            str(tmp_path / "c.tsv"),
            "--window",
            "61",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "scored 7 of 10" in r.output
    assert "is far from the length" not in r.output  # the training length is unknown here


def test_a_window_far_from_the_training_length_is_noted(tmp_path, capsys):
    torch.manual_seed(2)
    kw = dict(n_outputs=1, num_motifs=4, motif_len=8, hidden=0, reverse_complement=False)
    meta = {"recipe": "deepbind", "model_kwargs": kw, "n_value": 0.25, "task": "binary", "label_names": ["b"]}
    meta["seq_len"] = 30  # a flat (legacy) meta: its data
    path = save_legacy_model(tmp_path / "model.pt", DeepBind(**kw), meta)
    run_variants(path, VCF, GENOME, tmp_path / "a.tsv", window=41)
    assert "far from the length" not in capsys.readouterr().err
    run_variants(path, VCF, GENOME, tmp_path / "b.tsv", window=301)
    err = " ".join(capsys.readouterr().err.split())
    assert "--window 301 is far from the length of the model's training sequences (30 bp)" in err


def test_gz_outputs_are_compressed(model_dir, tmp_path):
    """`--out x.tsv.gz` is gzip and `--out-vcf x.vcf.gz` BGZF (both were plain text)."""
    import gzip

    plain = run_variants(model_dir, VCF, GENOME, tmp_path / "t.tsv", out_vcf=tmp_path / "o.vcf")
    run_variants(model_dir, VCF, GENOME, tmp_path / "t.tsv.gz", out_vcf=tmp_path / "o.vcf.gz")
    for name in ("t.tsv.gz", "o.vcf.gz"):
        head = (tmp_path / name).read_bytes()[:18]
        assert head[:2] == b"\x1f\x8b", name
    assert (tmp_path / "o.vcf.gz").read_bytes()[12:14] == b"BC"  # a BGZF block: tabix / bcftools read it
    assert gzip.decompress((tmp_path / "t.tsv.gz").read_bytes()) == (tmp_path / "t.tsv").read_bytes()
    assert gzip.decompress((tmp_path / "o.vcf.gz").read_bytes()) == (tmp_path / "o.vcf").read_bytes()
    assert len(pd.read_csv(tmp_path / "t.tsv.gz", sep="\t")) == len(plain)


def test_unknown_chromosome_names_the_prefixed_twin(tmp_path):
    g = tmp_path / "g.fa"
    g.write_text(">chr1\n" + "ACGT" * 50 + "\n")
    vcf = tmp_path / "v.vcf"
    vcf.write_text(
        "##fileformat=VCFv4.2\n##contig=<ID=1>\n##contig=<ID=chr9>\n"
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n1\t10\ta\tC\tG\t.\t.\t.\nchr9\t10\tb\tC\tG\t.\t.\t.\n"
    )
    w = variant_windows(vcf, g, 21)
    assert "which has 'chr1'" in w[0].status and w[0].status.startswith("unknown chromosome '1'")
    assert w[1].status == "unknown chromosome 'chr9' (not in the genome)"


def test_htslib_warnings_printed_once(model_dir, tmp_path, capfd):
    """The VCF is read twice with --out-vcf: htslib's '[W::vcf_parse]' lines came out twice."""
    vcf = tmp_path / "nohdr.vcf"
    vcf.write_text(
        "##fileformat=VCFv4.2\n"
        + "".join(x for x in VCF.read_text().splitlines(True) if x.startswith("##INFO"))
        + "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
        + (VCF.read_text().split("#CHROM")[1].split("\n", 1)[1])
    )
    run_variants(model_dir, vcf, GENOME, tmp_path / "t.tsv", out_vcf=tmp_path / "o.vcf")
    err = capfd.readouterr().err
    assert err.count("Contig 'NC_000913.3' is not defined") == 1


def test_an_undeclared_info_key_is_named_not_an_htslib_code(model_dir, tmp_path):
    """cyvcf2 raised a bare 'variant to be written has errorcode: 3' for --out-vcf."""
    body = VCF.read_text().split("#CHROM")[1].split("\n", 1)[1]
    first = body.splitlines()[0].split("\t")
    first[7] = "FOO=1"
    vcf = tmp_path / "undeclared.vcf"
    vcf.write_text(
        "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n" + "\t".join(first) + "\n"
    )
    run_variants(model_dir, vcf, GENOME, tmp_path / "ok.tsv")  # the TSV alone does not need the header
    with pytest.raises(
        BiodlInputError,
        match=r"undeclared\.vcf: record .*an INFO or FORMAT key it uses is not declared in the header",
    ):
        run_variants(model_dir, vcf, GENOME, tmp_path / "t.tsv", out_vcf=tmp_path / "o.vcf")
    assert not (tmp_path / "o.vcf").exists()


def assert_same_text(got: str, want: str) -> None:
    """``got`` is ``want`` token by token (split at tabs, ``;``, ``=``, ``,`` and ``|``), numbers
    equal within float32 rounding of a model's output (relative 1e-4, absolute 1e-6)."""
    import re

    a, b = got.splitlines(), want.splitlines()
    assert len(a) == len(b), (len(a), len(b))
    for la, lb in zip(a, b, strict=True):
        ta, tb = re.split(r"([\t;=,|])", la), re.split(r"([\t;=,|])", lb)
        assert len(ta) == len(tb), (la, lb)
        for x, y in zip(ta, tb, strict=True):
            if x == y:
                continue
            try:
                fx, fy = float(x), float(y)
            except ValueError:
                raise AssertionError(f"{x!r} != {y!r} in\n{la}\n{lb}") from None
            assert fx == pytest.approx(fy, rel=1e-4, abs=1e-6), (la, lb)


def test_pieces_give_the_whole_vcf_outputs(model_dir, tmp_path):
    """A VCF is read, scored and written in pieces of whole records (memory of one piece): the
    table and the scored VCF are those of one piece, a multi-ALT record is never split, and
    with keep=False only the rows not scored come back."""
    import gzip

    whole = run_variants(model_dir, VCF, GENOME, tmp_path / "w.tsv", out_vcf=tmp_path / "w.vcf")
    for records in (1, 2, 4):
        t = run_variants(
            model_dir,
            VCF,
            GENOME,
            tmp_path / f"p{records}.tsv.gz",
            out_vcf=tmp_path / f"p{records}.vcf",
            records=records,
            keep=False,
        )
        # the same rows and text; scores equal to float32 rounding (a CPU's convolution kernels
        # may round differently for a batch of 3 windows than for one of 256)
        assert_same_text(
            gzip.decompress((tmp_path / f"p{records}.tsv.gz").read_bytes()).decode(),
            (tmp_path / "w.tsv").read_text(),
        )
        assert_same_text((tmp_path / f"p{records}.vcf").read_text(), (tmp_path / "w.vcf").read_text())
        assert t.attrs["alleles"] == len(whole) == 10
        assert t.equals(whole.loc[whole["status"] != "ok", list(whole.columns[:6])].reset_index(drop=True))
    from biodl.interpret.variants import variant_window_pieces

    sizes = [[w.record for w in p] for p in variant_window_pieces(VCF, GENOME, L, records=2)]
    assert all(len(set(p)) <= 2 for p in sizes) and sum(map(len, sizes)) == 10
    multi = next(p for p in sizes if len(p) != len(set(p)))  # the two-ALT record's rows stay together
    assert len(multi) == 3


def test_a_bad_record_later_in_the_vcf_leaves_no_output(model_dir, tmp_path):
    lines = VCF.read_text().splitlines(True)
    body = [i for i, x in enumerate(lines) if not x.startswith("#")]
    bad_line = body[6]
    f = lines[bad_line].split("\t")
    f[1] = "12x"
    lines[bad_line] = "\t".join(f)
    vcf = tmp_path / "bad.vcf"
    vcf.write_text("".join(lines))
    (tmp_path / "t.tsv").write_text("earlier\n")
    with pytest.raises(BiodlInputError, match="POS must be a positive integer") as e:
        run_variants(model_dir, vcf, GENOME, tmp_path / "t.tsv", out_vcf=tmp_path / "o.vcf", records=2)
    assert e.value.record == bad_line + 1
    assert (tmp_path / "t.tsv").read_text() == "earlier\n" and not (tmp_path / "o.vcf").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.vcf", "t.tsv"]  # no temporary file left


def _rc_model_dir(path: Path) -> Path:
    """A run of a DeepBind trained (as its meta says) with --rc-augment: predict averages both
    strands' logits."""
    path.mkdir()
    return _deepbind_run(path, 3, rc_augment=True)


@pytest.mark.parametrize("rc", [False, True], ids=["given-strand", "rc-averaged"])
def test_scores_equal_predict_of_the_windows(model_dir, tmp_path, rc):
    """REF / ALT scores are `biodl predict`'s for the same windows: the given strand for a model
    not trained with --rc-augment (variants averaged both strands for every model), the mean
    of both strands' logits for one trained with it (variants averaged the probabilities)."""
    from biodl import pipeline

    run = _rc_model_dir(tmp_path / "rc") if rc else model_dir
    table = run_variants(run, VCF, GENOME, tmp_path / "v.tsv")
    ok = [w for w in variant_windows(VCF, GENOME, L) if w.status == "ok"]
    fa = tmp_path / "w.fa"
    fa.write_text("".join(f">r{i}\n{w.ref_seq}\n>a{i}\n{w.alt_seq}\n" for i, w in enumerate(ok)))
    pred = pipeline.predict(run, fa, quiet=True).set_index("id")
    got = table[table["status"] == "ok"].reset_index(drop=True)
    for name in ("tf1", "tf2"):
        want_ref = pred.loc[[f"r{i}" for i in range(len(ok))], f"prob_{name}"].to_numpy()
        want_alt = pred.loc[[f"a{i}" for i in range(len(ok))], f"prob_{name}"].to_numpy()
        np.testing.assert_allclose(got[f"{name}_ref"], want_ref, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(got[f"{name}_alt"], want_alt, rtol=1e-5, atol=1e-6)
    # --no-rc-average / --rc-average decide as for predict
    flip = run_variants(run, VCF, GENOME, tmp_path / "f.tsv", rc_average=not rc)
    fp = pipeline.predict(run, fa, options={"rc_average": not rc}, quiet=True).set_index("id")
    np.testing.assert_allclose(
        flip.loc[flip["status"] == "ok", "tf1_ref"],
        fp.loc[[f"r{i}" for i in range(len(ok))], "prob_tf1"].to_numpy(),
        rtol=1e-5,
        atol=1e-6,
    )
    assert not np.allclose(flip.loc[flip["status"] == "ok", "tf1_ref"], got["tf1_ref"])


def _bcf(src: Path, dest: Path, mode: str) -> Path:
    from cyvcf2 import VCF as Reader
    from cyvcf2 import Writer

    r = Reader(str(src))
    w = Writer(str(dest), r, mode=mode)
    for v in r:
        w.write_record(v)
    w.close()
    r.close()
    return dest


def _vcf_out(model_dir, tmp_path) -> Path:
    run_variants(model_dir, VCF, GENOME, tmp_path / "t.tsv", out_vcf=tmp_path / "t.vcf")
    return tmp_path / "t.vcf"


def test_bcf_input_and_output(model_dir, tmp_path):
    """A BCF as bcftools writes it (BGZF, -Ob; also -Ou) is scored as its VCF (it was refused:
    'a VCF record before the header'); --out-vcf x.bcf writes BCF (it wrote VCF text)."""
    from cyvcf2 import VCF as Reader

    want = run_variants(model_dir, VCF, GENOME, tmp_path / "v.tsv")
    for mode in ("wb", "wbu"):
        bcf = _bcf(VCF, tmp_path / f"in_{mode}.bcf", mode)
        assert bcf.read_bytes()[:2] == b"\x1f\x8b"  # BGZF: the magic BCF\2 is inside
        got = run_variants(model_dir, bcf, GENOME, tmp_path / f"{mode}.tsv")
        pd.testing.assert_frame_equal(got, want)
    run_variants(model_dir, VCF, GENOME, tmp_path / "o.tsv", out_vcf=tmp_path / "o.bcf")
    import gzip

    assert gzip.decompress((tmp_path / "o.bcf").read_bytes())[:4] == b"BCF\x02"
    recs = list(Reader(str(tmp_path / "o.bcf")))
    assert [r.ID for r in recs] == [r.ID for r in Reader(str(VCF))]
    assert recs[0].INFO["BIODL_STATUS"] == "ok" and recs[0].INFO.get("BIODL_DIFF") is not None
    # typed as the header says (they were stored as text: bcftools' -i 'INFO/BIODL_DIFF>0' clashed)
    text = {r.ID: r for r in Reader(str(_vcf_out(model_dir, tmp_path)))}
    for r in recs:
        for key in ("BIODL_REF", "BIODL_DIFF"):
            got, want = r.INFO.get(key), text[r.ID].INFO.get(key)
            assert not isinstance(got, str) and got == want, (r.ID, key, got, want)
    assert not list(tmp_path.glob("*.vcf.*")) and not list(tmp_path.glob(".*"))  # no leftovers
    with pytest.raises(BiodlInputError, match=r"o\.bcf\.gz: a \.bcf file is BGZF-compressed already"):
        run_variants(model_dir, VCF, GENOME, tmp_path / "x.tsv", out_vcf=tmp_path / "o.bcf.gz")
    assert not (tmp_path / "x.tsv").exists()


def test_an_unreadable_vcf_is_an_input_error_with_out_vcf(model_dir, tmp_path):
    """With --out-vcf a VCF htslib cannot open was said as a failed write of the table."""
    empty = tmp_path / "empty.vcf"
    empty.write_text("")
    nofmt = tmp_path / "nofmt.vcf"
    nofmt.write_text("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\nNC_000913.3\t337\tx\tA\tC\t.\t.\t.\n")
    for vcf, match in (
        (empty, r"empty\.vcf: no '#CHROM' header line"),
        (nofmt, r"nofmt\.vcf, line 1: the first line of a VCF must be '##fileformat=VCFv4\.x'"),
    ):
        with pytest.raises(BiodlInputError, match=match):
            run_variants(model_dir, vcf, GENOME, tmp_path / "e.tsv", out_vcf=tmp_path / "e.vcf")
        assert not (tmp_path / "e.tsv").exists() and not (tmp_path / "e.vcf").exists()


def test_a_batch_size_below_one_is_refused(model_dir, tmp_path):
    for bs in (0, -3):
        with pytest.raises(BiodlInputError, match=f"--batch-size must be an integer of at least 1, got {bs}"):
            run_variants(model_dir, VCF, GENOME, tmp_path / "b.tsv", batch_size=bs)
    assert not (tmp_path / "b.tsv").exists()


def test_the_scored_vcf_says_the_strands_as_the_command_does(tmp_path):
    """A DeepBind scanning both strands in the network: the command said so, the VCF header's
    INFO descriptions said 'given strand'."""
    torch.manual_seed(3)
    kw = dict(n_outputs=1, num_motifs=4, motif_len=8, hidden=0, reverse_complement=True)
    meta = {"recipe": "deepbind", "model_kwargs": kw, "n_value": 0.25, "task": "binary", "label_names": ["b"]}
    meta["seq_len"] = L
    path = save_legacy_model(tmp_path / "model.pt", DeepBind(**kw), meta)
    out_vcf = tmp_path / "s.vcf"
    run_variants(path, VCF, GENOME, tmp_path / "a.tsv", out_vcf=out_vcf)
    header = [x for x in out_vcf.read_text().splitlines() if x.startswith("##INFO=<ID=BIODL_DIFF")]
    assert header and "both strands, in the network (reverse_complement)" in header[0], header
