import gzip
import os
from pathlib import Path

import numpy as np
import pytest

from biodl.errors import BiodlInputError
from biodl.io import cut_intervals, open_genome, read_bed, read_fasta
from biodl.kinds.sequences.io import read_sequence_table, read_sequences
from tests.conftest import REST_B


def test_fasta_plain_gzip_multiline(tmp_path):
    text = ">a desc\nACGT\nacgt\n>b\nNNNU\n"
    (tmp_path / "x.fa").write_text(text)
    with gzip.open(tmp_path / "x.fa.gz", "wt") as fh:
        fh.write(text)
    for name in ("x.fa", "x.fa.gz"):
        recs = read_fasta(tmp_path / name)
        assert [(r.name, r.sequence, r.line) for r in recs] == [("a", "ACGTacgt", 1), ("b", "NNNU", 4)]


@pytest.mark.parametrize(
    "text, match, line",
    [
        (">a\nACGT\n>b\nACXT\n", r"record 'b'.*'X' at position 3", 3),
        (">a\nACGT\n>b\n>c\nAC\n", r"record 'b': empty sequence", 3),
        ("ACGT\n>a\nAC\n", "before the first '>' header", 1),
    ],
)
def test_fasta_errors_name_file_record_and_line(tmp_path, text, match, line):
    p = tmp_path / "bad.fa"
    p.write_text(text)
    with pytest.raises(BiodlInputError, match=match) as e:
        read_fasta(p)
    assert str(p) in str(e.value) and f"line {line}" in str(e.value)


def test_missing_file():
    with pytest.raises(BiodlInputError, match="file not found"):
        read_fasta("/nonexistent/x.fa")


def test_deepbind_seq_file():
    t = read_sequence_table(REST_B)
    assert len(t) == 1000 and t.labels.shape == (1000, 1)
    assert t.label_names == ["Bound"] and t.ids[0] == "seq_00002_peak"
    assert t.fixed_length() == 101 and t.task_hint == "binary"
    assert set(np.unique(t.labels)) == {0.0, 1.0}


def test_table_errors(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("sequence,label\nACGT,1\nACGT,x\n")
    with pytest.raises(BiodlInputError, match=r"line 3.*non-numeric label 'x'"):
        read_sequence_table(p)
    p.write_text("sequence,score\nACGT,1\n")
    with pytest.raises(BiodlInputError, match=r"no label column found.*columns are: sequence, score"):
        read_sequence_table(p)
    with pytest.raises(BiodlInputError, match=r"label column\(s\) 'nope' not found"):
        read_sequence_table(p, label_cols="nope")
    p.write_text("sequence,label\nACGT,1\nAC-T,0\n")
    with pytest.raises(BiodlInputError, match=r"line 3.*'-' at position 3"):
        read_sequence_table(p)
    p.write_text("sequence,label\nACGT,1\n,0\n")
    with pytest.raises(BiodlInputError, match=r"line 3.*empty sequence"):
        read_sequence_table(p)


def test_default_columns_in_any_case(tmp_path):
    p = tmp_path / "t.tsv"
    p.write_text("ID\tSEQUENCE\tbound\nr1\tACGT\t1\nr2\tAAAA\t0\n")
    t = read_sequence_table(p)
    assert t.ids == ["r1", "r2"] and t.seqs == ["ACGT", "AAAA"] and t.label_names == ["bound"]
    assert t.labels.ravel().tolist() == [1.0, 0.0]
    p.write_text("seq\tLABEL\tlabel\nACGT\t1\t0\n")  # an exact name wins over a case match
    assert read_sequence_table(p).label_names == ["label"]
    for sep in ("\t", ";"):  # spreadsheet exports named .csv, as errors.md says
        c = tmp_path / "t.csv"
        c.write_text(f"sequence{sep}label\nACGT{sep}1\nAAAA{sep}0\n")
        assert read_sequence_table(c).seqs == ["ACGT", "AAAA"]
    with pytest.raises(BiodlInputError, match=r"include the sequence column 'sequence'"):
        read_sequence_table(tmp_path / "t.csv", label_cols="sequence")
    p.write_text("seq\tBOUND\tbound\nACGT\t1\t0\n")  # two case matches: none is guessed
    with pytest.raises(BiodlInputError, match=r"no label column found.*in any case"):
        read_sequence_table(p)


def test_ragged_sequences_error_when_fixed_length_needed(tmp_path):
    p = tmp_path / "t.tsv"
    p.write_text("id\tsequence\tlabel\ns1\tACGT\t1\ns2\tACG\t0\n")
    t = read_sequence_table(p)
    with pytest.raises(BiodlInputError, match=r"same length.*'s2' has 3 bases"):
        t.fixed_length()


def test_multilabel_missing_and_multiclass(tmp_path):
    p = tmp_path / "m.csv"
    p.write_text("sequence,a,b\nACGT,1,\nACGT,0,1\n")
    t = read_sequence_table(p, label_cols="a,b")
    assert np.isnan(t.labels[0, 1]) and t.task_hint == "multilabel"
    p.write_text("sequence,class\nACGT,EI\nACGT,N\nACGT,IE\n")
    t = read_sequence_table(p)
    assert t.classes == ["EI", "IE", "N"] and t.labels[:, 0].tolist() == [0, 2, 1]


def test_labelled_fasta(tmp_path):
    p = tmp_path / "l.fa"
    p.write_text(">s1; class:1\nACGT\n>s2; class:0\nACGA\n")
    t = read_sequences(p)
    assert t.ids == ["s1;", "s2;"] or t.ids == ["s1", "s2"] or t.ids[0].startswith("s1")
    assert t.labels[:, 0].tolist() == [1.0, 0.0]
    p.write_text(">s1; class:1\nACGT\n>s2\nACGA\n")
    with pytest.raises(BiodlInputError, match=r"line 3.*no label"):
        read_sequences(p)


def test_bed_cut_and_errors(tmp_path):
    g = tmp_path / "g.fa"
    g.write_text(">chr1\nAAAACCCCGGGGTTTT\n>chr2\nACGTACGT\n")
    bed = tmp_path / "r.bed"
    bed.write_text("chr1\t4\t8\tx\t0\t+\nchr1\t4\t8\ty\t0\t-\n")
    genome = open_genome(g)
    assert cut_intervals(read_bed(bed), genome, bed) == ["CCCC", "GGGG"]
    bed.write_text("chr1\t0\t4\nchr2\t4\t12\n")
    with pytest.raises(BiodlInputError, match=r"line 2.*past the end of chr2 \(length 8\)"):
        cut_intervals(read_bed(bed), genome, bed)
    bed.write_text("chr1\t0\t4\nchrX\t0\t4\n")
    with pytest.raises(BiodlInputError, match=r"line 2.*chromosome 'chrX' is not in the genome"):
        cut_intervals(read_bed(bed), genome, bed)
    bed.write_text("chr1\t5\t4\n")
    with pytest.raises(BiodlInputError, match=r"line 1.*bad interval"):
        read_bed(bed)
    bed.write_text("chr1\tfive\t9\n")
    with pytest.raises(BiodlInputError, match=r"line 1.*integers"):
        read_bed(bed)


def test_gzip_genome_is_indexed_via_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BIODL_CACHE", str(tmp_path / "cache"))
    with gzip.open(tmp_path / "g.fa.gz", "wt") as fh:
        fh.write(">c\nACGTACGTAC\n")
    genome = open_genome(tmp_path / "g.fa.gz")
    assert str(genome["c"][2:6]) == "GTAC"


def test_a_genome_in_a_folder_biodl_cannot_write_is_indexed_in_the_cache(tmp_path, monkeypatch):
    """A shared reference in a read-only folder without its .fai: pyfaidx's own error told the
    user to call its Python API."""
    import biodl.io.fasta as F

    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "g.fa").write_text(">c\nACGTACGTAC\n")
    monkeypatch.setenv("BIODL_CACHE", str(tmp_path / "cache"))
    real = os.access
    monkeypatch.setattr(
        F.os, "access", lambda path, mode: False if Path(path) == shared else real(path, mode)
    )
    genome = open_genome(shared / "g.fa")
    assert str(genome["c"][2:6]) == "GTAC"
    assert not (shared / "g.fa.fai").exists() and list((tmp_path / "cache" / "genomes").glob("g.fa.*.fai"))


def test_a_genome_cache_that_cannot_be_written_is_a_clear_error(tmp_path, monkeypatch):
    """A gzip genome with a read-only home: 'unexpected OSError ... please report it'."""
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("BIODL_CACHE", str(tmp_path / "file" / "cache"))  # under a file: no folder
    with gzip.open(tmp_path / "g.fa.gz", "wt") as fh:
        fh.write(">c\nACGTACGTAC\n")
    with pytest.raises(BiodlInputError, match=r"g.fa.gz: cannot write the genome cache .*set BIODL_CACHE"):
        open_genome(tmp_path / "g.fa.gz")


def test_a_file_that_is_not_fasta_is_refused_as_genome_before_any_copy(tmp_path, monkeypatch):
    """A GFF (plain or gzip) given as the genome: one clear error naming the user's file and
    its first line; nothing is decompressed into the cache; a gzip FASTA that pyfaidx cannot
    index is named by the user's path (not the cached copy), and its copy is removed."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("BIODL_CACHE", str(cache))
    with gzip.open(tmp_path / "a.gff.gz", "wt") as fh:
        fh.write("##gff-version 3\nc\t.\tgene\t1\t9\t.\t+\t.\tID=g\n")
    with pytest.raises(
        BiodlInputError, match=r"a\.gff\.gz: is not a genome FASTA: it starts with '##gff-version 3'"
    ):
        open_genome(tmp_path / "a.gff.gz")
    assert not cache.exists() or not any(cache.rglob("*"))
    with gzip.open(tmp_path / "r.fa.gz", "wt") as fh:  # lines of unequal width inside a record
        fh.write(">c\nACGTACGTAC\nACG\nACGTACGTAC\n")
    with pytest.raises(BiodlInputError) as e:
        open_genome(tmp_path / "r.fa.gz")
    assert "cannot index genome FASTA" in str(e.value) and str(cache) not in str(e.value)
    assert not [f for f in cache.rglob("*") if f.is_file()]


# --------------------------------------------------------------- GraphProt-style FASTA pairs
def _pair(tmp_path):
    pos = tmp_path / "x.positives.fa"
    neg = tmp_path / "x.negatives.fa"
    pos.write_text(">p1 chr1,+,10,40; class:0\nacguACGUUGca\n>p2\nuuGGAu\n")
    neg.write_text(">n1\naaaCCCaaa\n")
    return pos, neg


def test_fasta_pair_labels_by_file_and_folds_case(tmp_path):
    from biodl.kinds.sequences.io import fold_case, read_fasta_pair

    pos, neg = _pair(tmp_path)
    t = read_fasta_pair(pos, neg)
    assert t.ids == ["p1", "p2", "n1"] and t.labels[:, 0].tolist() == [1, 1, 0]  # header labels ignored
    assert t.seqs[0] == "acguACGUUGca"  # case kept until folded
    assert fold_case(read_fasta_pair(pos, neg), False).seqs == ["ACGUACGUUGCA", "UUGGAU", "AAACCCAAA"]
    assert fold_case(read_fasta_pair(pos, neg), True).seqs == ["ACGUUG", "GGA", "CCC"]


def test_viewpoint_spans_first_to_last_uppercase_base():
    from biodl.kinds.sequences.io import viewpoint

    assert viewpoint("aaCCgGTtt") == "CCGGT"
    with pytest.raises(BiodlInputError, match=r"x.fa, record 's3': no uppercase viewpoint"):
        viewpoint("acgu", "x.fa", "s3")


@pytest.mark.parametrize(
    "neg_text, match",
    [
        ("", r"negatives.fa: the file is empty \(the negatives file \(--negatives\) must be FASTA\)"),
        ("seq\tBound\nACGT\t1\n", r"negatives.fa, line 1: the negatives file \(--negatives\) must be FASTA"),
        (">n1\nACXT\n", r"negatives.fa, line 1: record 'n1'.*'X' at position 3"),
    ],
)
def test_fasta_pair_errors_name_the_file_and_record(tmp_path, neg_text, match):
    from biodl.kinds.sequences.io import read_fasta_pair

    pos, neg = _pair(tmp_path)
    neg.write_text(neg_text)
    with pytest.raises(BiodlInputError, match=match) as e:
        read_fasta_pair(pos, neg)
    assert len(str(e.value).splitlines()) == 1


def test_load_table_viewpoint_mode_refuses_a_record_without_uppercase(tmp_path):
    from biodl.kinds.sequences.kind import load_table

    pos, neg = _pair(tmp_path)
    neg.write_text(">n1\naaaCCCaaa\n>n2\nacguacgu\n")
    with pytest.raises(BiodlInputError, match=r"x.negatives.fa, record 'n2': no uppercase viewpoint"):
        load_table(pos, negatives=neg, viewpoint=True)
    assert load_table(pos, negatives=neg).seqs[-1] == "ACGUACGU"  # whole sequences by default


def test_label_columns_by_glob_and_all(tmp_path):
    """Many label columns (a DeepSEA-style table) are taken with a glob or 'all'; an error lists
    a few column names and the count, not all of them."""
    n_lab = 40
    header = "id\tsequence\t" + "\t".join(f"f{k}" for k in range(n_lab)) + "\tnote_x\n"
    rows = [
        f"s{i}\tACGTACGT\t" + "\t".join(str((i + k) % 2) for k in range(n_lab)) + "\tq\n" for i in range(3)
    ]
    p = tmp_path / "many.tsv"
    p.write_text(header + "".join(rows))
    t = read_sequence_table(p, label_cols="f*")
    assert t.label_names == [f"f{k}" for k in range(n_lab)]
    assert t.labels.shape == (3, n_lab) and t.labels[1, 0] == 1.0
    with pytest.raises(BiodlInputError) as e:
        read_sequence_table(p, label_cols="all")  # note_x is not numeric: one label column expected
    assert "note_x" in str(e.value) or "numeric" in str(e.value)
    with pytest.raises(BiodlInputError) as e:
        read_sequence_table(p)
    msg = str(e.value)
    assert "--label-col" in msg and f"({n_lab + 3} columns)" in msg and "f39" not in msg
    with pytest.raises(BiodlInputError, match="'g\\*' not found"):
        read_sequence_table(p, label_cols="g*")


def test_bed_zero_length_interval_is_valid(tmp_path):
    """start == end (an insertion point) is valid BED; the line named in errors is the file's."""
    bed = tmp_path / "z.bed"
    bed.write_text("track name=x\n#chrom\tstart\tend\nchr1\t5\t5\tins\nchr1\t9\t8\tbad\n")
    with pytest.raises(BiodlInputError, match=r"z\.bed, line 4: bad interval chr1:9-8"):
        read_bed(bed)
    bed.write_text("track name=x\n#chrom\tstart\tend\nchr1\t5\t5\tins\n")
    df = read_bed(bed)
    assert df[["start", "end", "line"]].values.tolist() == [[5, 5, 3]]


def test_stale_fai_is_not_trusted(tmp_path, monkeypatch, capfd):
    """A .fai newer than the FASTA but describing another file (pyfaidx compares times only)
    gave wrong bases; it is detected, left alone, and a fresh index is used."""
    import os

    monkeypatch.setenv("BIODL_CACHE", str(tmp_path / "cache"))
    g = tmp_path / "g.fa"
    g.write_text(">chr1 desc\n" + "ACGTTGCA" * 10 + "\n" + "GGGG" * 5 + "\n>chr2\n" + "T" * 30 + "\n")
    fai = tmp_path / "g.fa.fai"
    good = open_genome(g)
    assert str(good["chr1"][0:8]) == "ACGTTGCA" and len(good["chr1"]) == 100
    good.close()
    ok = fai.read_text()
    stale = "chr1\t100\t6\t80\t81\nchr2\t30\t120\t80\t81\n"
    fai.write_text(stale)
    st = g.stat()
    os.utime(fai, (st.st_atime + 10, st.st_mtime + 10))
    fa = open_genome(g)
    assert str(fa["chr1"][0:8]) == "ACGTTGCA" and str(fa["chr2"][0:3]) == "TTT"
    fa.close()
    assert "g.fa.fai: this index does not match" in " ".join(capfd.readouterr().err.split())
    assert fai.read_text() == stale  # the user's file is left alone
    fai.write_text(ok)
    os.utime(fai, (st.st_atime + 10, st.st_mtime + 10))
    open_genome(g).close()
    assert "does not match" not in capfd.readouterr().err


def test_a_good_fai_of_a_fasta_without_a_final_newline_is_trusted(tmp_path):
    import pyfaidx

    from biodl.io.fasta import _fai_problem

    f = tmp_path / "g.fa"
    f.write_text(">a\nACGTACGT\nACGTACGT")  # 16 bases in lines of 8, no newline at the end
    pyfaidx.Faidx(str(f))
    assert _fai_problem(f, tmp_path / "g.fa.fai") is None


def test_a_separator_ending_each_data_line_keeps_the_columns(tmp_path):
    """A tab (or comma) at the end of each data line gave one field more than the header, and
    pandas read the first as row names: every column shifted (the error blamed a valid sequence;
    a molecule table's SMILES column held the target). Read in place; row names in an unnamed
    first column (R's write.table) are refused, not dropped."""
    from biodl.kinds.molecules.io import read_molecules

    p = tmp_path / "t.seq"
    p.write_text("id\tseq\tBound\na\tACGTACGT\t1\t\nb\tGGGGCCCC\t0\t\n")
    t = read_sequence_table(p)
    assert t.ids == ["a", "b"] and t.seqs == ["ACGTACGT", "GGGGCCCC"] and t.labels[:, 0].tolist() == [1, 0]
    r = tmp_path / "r.seq"
    r.write_text("seq\tBound\nx1\tACGTACGT\t1\nx2\tGGGGCCCC\t0\n")
    with pytest.raises(
        BiodlInputError, match=r"r.seq, line 2: the data lines have 3 fields but the header names 2"
    ):
        read_sequence_table(r)
    m = tmp_path / "m.csv"
    m.write_text("id,smiles,y\na,CCO,1.0,\nb,CCCO,2.0,\n")
    mt = read_molecules(m, target="y")
    assert list(mt.smiles) == ["CCO", "CCCO"] and mt.targets[:, 0].tolist() == [1.0, 2.0]


def test_molecule_tables_are_gzip_by_their_bytes_not_their_name(tmp_path):
    """As every other reader: a gzip file named .csv and a plain file named .csv.gz are read (the
    first was a decode error, the second 'truncated or corrupt ... re-download it')."""
    from biodl.kinds.molecules.io import read_molecules

    text = "smiles,y\nCCO,1\nCCN,2\n"
    (tmp_path / "z.csv").write_bytes(gzip.compress(text.encode()))
    (tmp_path / "p.csv.gz").write_text(text)
    for name in ("z.csv", "p.csv.gz"):
        mt = read_molecules(tmp_path / name, target="y")
        assert list(mt.smiles) == ["CCO", "CCN"], name


def test_sdf_targets_are_the_properties_of_every_record(tmp_path):
    """A target property absent from the first record (a compound without a measurement) is a
    missing value there, not absent from the file; --target all takes the numeric properties
    (not NAME, nor an ID), as for tables."""
    from biodl.kinds.molecules.io import read_molecules

    src = (Path(__file__).parent / "data" / "molecules" / "solubility_test_20.sdf").read_text()
    first, rest = src.split("$$$$\n", 1)
    lines = first.split("\n")
    k = lines.index("> <SOL>")
    (tmp_path / "m.sdf").write_text("\n".join(lines[:k] + lines[k + 3 :]) + "$$$$\n" + rest)
    mt = read_molecules(tmp_path / "m.sdf", target="SOL")
    assert np.isnan(mt.targets[0, 0]) and np.isfinite(mt.targets[1:, 0]).all()
    allt = read_molecules(tmp_path / "m.sdf", target="all")
    assert allt.target_names == ["SOL"]


def test_an_iupac_code_says_how_to_read_it():
    from biodl.io.fasta import validate_sequence

    with pytest.raises(
        BiodlInputError,
        match=r"invalid character 'R' at position 4 .*IUPAC ambiguity code; train with --iupac-as-n",
    ):
        validate_sequence("ACGRT", "x.fa", "a")
    with pytest.raises(BiodlInputError) as e:
        validate_sequence("ACGXT", "x.fa", "a")
    assert "IUPAC" not in str(e.value)


def test_utf16_text_files_are_read_by_their_byte_order_mark(tmp_path):
    """Excel's 'Unicode Text' export (UTF-16 with a byte-order mark) was read as UTF-8: garbage, a
    matrix of 0 samples and errors blaming the content."""
    from biodl.io._util import open_text

    text = "id\tseq\tBound\na\tACGT\t1\n"
    for enc in ("utf-16", "utf-32", "utf-8-sig"):
        (tmp_path / "t.seq").write_bytes(text.encode(enc))
        with open_text(tmp_path / "t.seq") as fh:
            assert fh.read() == text, enc
        (tmp_path / "t.seq.gz").write_bytes(gzip.compress(text.encode(enc)))
        with open_text(tmp_path / "t.seq.gz") as fh:
            assert fh.read() == text, enc


def test_table_line_numbers_count_blank_lines(tmp_path):
    """A bad sequence or label after a blank line was named one line too high."""
    from biodl.kinds.sequences.io import iter_sequences

    p = tmp_path / "t.tsv"
    p.write_text("seq\tlabel\nACGT\t1\n\nACGT\t0\n\nACXT\t1\n")
    with pytest.raises(BiodlInputError, match=r"t.tsv, line 6"):
        read_sequence_table(p)
    with pytest.raises(BiodlInputError, match=r"t.tsv, line 6"):
        list(iter_sequences(p, rows=1))
    p.write_text("seq\tlabel\nACGT\t1\n\nACGT\t0\n\nACGT\tx\n")
    with pytest.raises(BiodlInputError, match=r"t.tsv, line 6: non-numeric label 'x'"):
        read_sequence_table(p)
