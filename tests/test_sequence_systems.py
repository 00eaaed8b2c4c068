"""DeepSEA, Basset, DanQ and the splicing CNN train and evaluate from the CLI.

Small real data: 300 REST ChIP-seq peaks of the bundled ENCODE experiment (plus as many
dinucleotide-shuffled negatives, added by ``biodl train``) and 200 held-out fold-B sequences;
shrunk models (``-m``) so that each system trains in seconds on a CPU.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from biodl.cli import app
from tests.conftest import REST_AC, REST_B

runner = CliRunner()

#: Shrunk model options per system (101-bp inputs).
SMALL = {
    "deepsea": ["n_filters=[8,8,8]", "kernel_size=5", "pool_size=2", "hidden=16"],
    "basset": ["n_filters=[8,8,8]", "kernel_sizes=[9,5,3]", "pool_sizes=[2,2,2]", "hidden=[16,16]"],
    "danq": ["n_filters=8", "kernel_size=11", "pool_size=5", "lstm_hidden=8", "hidden=16"],
    "splicing-cnn": ["n_filters=8", "hidden=8", "n_res_blocks=1"],
}


def _m(system: str) -> list[str]:
    return [a for o in SMALL[system] for a in ("-m", o)]


@pytest.fixture(scope="module")
def rest_files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("seqsys")
    with gzip.open(REST_AC, "rt") as fh:
        ac = fh.read().splitlines()
    with gzip.open(REST_B, "rt") as fh:
        b = fh.read().splitlines()
    train = d / "train.seq"
    train.write_text("\n".join([ac[0], *ac[1:301]]) + "\n")
    test = d / "test.seq"
    test.write_text("\n".join([b[0], *b[1::5][:200]]) + "\n")
    # the same test set as FASTA with class labels in the headers
    hdr = b[0].split("\t")
    si, bi = hdr.index("seq"), hdr.index("Bound")
    fa = d / "test.fa"
    fa.write_text(
        "".join(
            f">s{i} class:{f[bi]}\n{f[si]}\n"
            for i, f in enumerate(line.split("\t") for line in b[1::5][:200])
        )
    )
    return {"train": train, "test": test, "test_fa": fa}


def test_systems_json_lists_the_sequence_systems() -> None:
    r = runner.invoke(app, ["systems", "--json"])
    assert r.exit_code == 0, r.output
    reg = {x["name"]: x for x in json.loads(r.stdout)}
    for name in ("deepsea", "basset", "danq", "splicing-cnn"):
        assert reg[name]["status"] == "ready" and reg[name]["data"] == "sequences"
        assert reg[name]["kinds"] == ["sequences", "windows"]
        assert "binary" in reg[name]["tasks"]


@pytest.mark.parametrize("system", ["deepsea", "basset", "danq", "splicing-cnn"])
def test_train_then_evaluate_from_cli(system: str, rest_files, tmp_path: Path) -> None:
    out = tmp_path / system
    extra = ["--rc-augment", "--shift", "2"] if system == "danq" else []
    extra += ["--class-weight"] if system == "basset" else []
    r = runner.invoke(
        app,
        [
            "train",
            str(rest_files["train"]),
            "--test",
            str(rest_files["test"]),
            "--system",
            system,
            "--out",
            str(out),
            "--epochs",
            "2",
            "--patience",
            "0",
            "--device",
            "cpu",
            "--no-progress",
            *extra,
            *_m(system),
        ],
    )
    assert r.exit_code == 0, r.output
    s = json.loads((out / "summary.json").read_text())
    assert s["system"] == system and s["task"] == "binary"
    assert s["n_train"] + s["n_valid"] == 600  # 300 peaks + 300 shuffled negatives
    assert s["epochs_run"] == 2 and 0.0 <= s["test_metrics"]["auroc"] <= 1.0
    r = runner.invoke(app, ["evaluate", str(out), str(rest_files["test_fa"]), "--out", str(tmp_path / "ev")])
    assert r.exit_code == 0, r.output
    m = json.loads(r.stdout)
    # the FASTA holds the same 200 sequences as the table: the same AUROC
    assert m["auroc"] == pytest.approx(s["test_metrics"]["auroc"], abs=1e-6)
    for f in ("metrics.json", "predictions.tsv", "roc.png", "pr.png"):
        assert (tmp_path / "ev" / f).exists()


def test_bad_model_option_is_a_clear_error(rest_files, tmp_path: Path) -> None:
    r = runner.invoke(
        app,
        [
            "train",
            str(rest_files["train"]),
            "--system",
            "danq",
            "--out",
            str(tmp_path / "x"),
            "-m",
            "filters=8",
        ],
    )
    assert r.exit_code == 2
    assert "unknown model option(s) for danq: filters" in " ".join(r.output.split())


# ------------------------------------------------- RNA, GraphProt pairs, variable lengths
TOY_DB = ["-m", "num_motifs=4", "-m", "motif_len=6", "-m", "hidden=0"]


def _graphprot(d: Path, name: str, n: int, seed: int, rna: bool = True) -> tuple[Path, Path]:
    """GraphProt-style pair: lowercase flanks, an uppercase viewpoint of 20-45 bases; the
    positives' viewpoints hold UGCAUGU (the RBFOX motif)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    abc = list("ACGU" if rna else "ACGT")
    files = []
    for kind, motif in (("positives", "UGCAUGU"), ("negatives", None)):
        recs = []
        for i in range(n):
            v = "".join(rng.choice(abc, int(rng.integers(20, 46))))
            if motif:
                p = int(rng.integers(0, len(v) - 7))
                v = v[:p] + motif + v[p + 7 :]
            flank = "".join(rng.choice(abc, 8)).lower()
            s = flank + v + flank[::-1]
            recs.append(f">{name}_{kind}{i}\n{s if rna else s.replace('U', 'T').replace('u', 't')}\n")
        files.append(d / f"{name}.{kind}.fa")
        files[-1].write_text("".join(recs))
    return files[0], files[1]


def _train(args: list[str], out: Path):
    r = runner.invoke(
        app,
        ["train", *args, "--system", "deepbind", "--out", str(out), "--epochs", "1", "--patience", "0"]
        + ["--device", "cpu", "--no-progress", *TOY_DB],
    )
    assert r.exit_code == 0, r.output
    return json.loads((out / "run.json").read_text()), " ".join(r.output.split())


def test_rna_scans_one_strand_by_default_and_dna_both(tmp_path: Path) -> None:
    pos, neg = _graphprot(tmp_path, "rna", 40, seed=1)
    run, log = _train([str(pos), "--negatives", str(neg)], tmp_path / "rna")
    assert run["data"]["alphabet"] == "rna" and run["model_kwargs"]["reverse_complement"] is False
    assert not run["data"]["rc_augment"]
    assert "strand mode: the given strand only; RNA input: the training sequences have U and no T" in log
    # asked for explicitly: both strands
    run, log = _train([str(pos), "--negatives", str(neg), "-m", "reverse_complement=true"], tmp_path / "rc")
    assert run["model_kwargs"]["reverse_complement"] is True and "both strands" in log
    # declared, not sniffed: --alphabet rna on T-sequences; --alphabet dna on U-sequences
    dpos, dneg = _graphprot(tmp_path, "dna", 40, seed=1, rna=False)
    run, log = _train([str(dpos), "--negatives", str(dneg)], tmp_path / "dna")
    assert run["data"]["alphabet"] == "dna" and run["model_kwargs"]["reverse_complement"] is True
    assert "strand mode: both strands" in log
    run, _ = _train([str(dpos), "--negatives", str(dneg), "--alphabet", "rna"], tmp_path / "dna_as_rna")
    assert run["data"]["alphabet"] == "rna" and run["model_kwargs"]["reverse_complement"] is False
    run, _ = _train([str(pos), "--negatives", str(neg), "--set", "alphabet=dna"], tmp_path / "rna_as_dna")
    assert run["data"]["alphabet"] == "dna" and run["model_kwargs"]["reverse_complement"] is True


def test_graphprot_pairs_at_native_lengths_train_evaluate_predict(tmp_path: Path) -> None:
    """Positives + negatives FASTA, viewpoint only, variable lengths without --pad; predictions
    of a sequence are the same scored alone as in a batch of longer ones, and the called
    column follows the threshold stored at training."""
    import numpy as np
    import pandas as pd

    pos, neg = _graphprot(tmp_path, "train", 60, seed=2)
    tpos, tneg = _graphprot(tmp_path, "test", 20, seed=3)
    out = tmp_path / "run"
    run, log = _train(
        [str(pos), "--negatives", str(neg), "--test", str(tpos), "--set", f"test_negatives={tneg}"]
        + ["--set", "viewpoint=true"],
        out,
    )
    assert run["data"]["viewpoint"] is True and run["data"]["seq_len"] is None
    assert "scores each at its own length" in log and run["splits"]["n_test"] == 40
    th = run["thresholds"]["values"][0]
    r = runner.invoke(app, ["evaluate", str(out), str(tpos), "--negatives", str(tneg)])
    assert r.exit_code == 0, r.output
    m = json.loads(r.stdout)
    assert m["threshold"] == pytest.approx(th) and m["auroc"] == pytest.approx(
        run["metrics"]["test"]["auroc"]
    )
    assert {"mcc", "accuracy", "sensitivity", "specificity"} <= set(m)
    r = runner.invoke(app, ["predict", str(out), str(tpos), "--out", str(tmp_path / "p.tsv")])
    assert r.exit_code == 0, r.output
    df = pd.read_csv(tmp_path / "p.tsv", sep="\t")
    assert list(df.columns) == ["id", "logit_label", "prob_label", "called_label"]
    assert (df["called_label"] == (df["prob_label"] >= th).astype(int)).all()
    # the shortest viewpoint alone (its file holds only it) scores as in the batch
    seqs = [line for line in tpos.read_text().splitlines() if not line.startswith(">")]
    k = int(np.argmin([sum(c.isupper() for c in s) for s in seqs]))
    (tmp_path / "one.fa").write_text(f">one\n{seqs[k]}\n")
    r = runner.invoke(
        app, ["predict", str(out), str(tmp_path / "one.fa"), "--out", str(tmp_path / "one.tsv")]
    )
    assert r.exit_code == 0, r.output
    alone = pd.read_csv(tmp_path / "one.tsv", sep="\t")["logit_label"].iloc[0]
    assert alone == pytest.approx(df["logit_label"].iloc[k], abs=1e-4)


def test_fixed_length_recipes_keep_their_clear_error(tmp_path: Path) -> None:
    pos, neg = _graphprot(tmp_path, "x", 20, seed=4)
    r = runner.invoke(
        app, ["train", str(pos), "--negatives", str(neg), "--system", "danq", "--out", str(tmp_path / "d")]
    )
    assert r.exit_code == 2 and "use --pad" in " ".join(r.output.split())
