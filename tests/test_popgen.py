"""Population genetics: simulations (determinism, resume, scenarios), the VCF reader's errors,
summary statistics against hand computations and scikit-allel, the matrix encoding, the
networks' contracts, rejection ABC, and train / evaluate / predict / report from the CLI."""

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
from biodl.kinds.popgen.io import read_dataset, read_vcf, vcf_windows
from biodl.kinds.popgen.simulate import ZAMBIA, get_scenario, simulate_dataset, simulate_one

DATA = Path(__file__).parent / "data" / "popgen"
runner = CliRunner()
torch.set_num_threads(1)

HEAD = (
    "##fileformat=VCFv4.2\n##contig=<ID=1>\n"
    '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
    "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\ta\tb\n"
)


def _vcf(tmp_path: Path, body: str, name: str = "x.vcf") -> Path:
    p = tmp_path / name
    p.write_text(HEAD + body)
    return p


# ---------------------------------------------------------------------- simulation
def test_same_seed_same_matrices_whatever_the_workers_and_chunks(tmp_path):
    a = simulate_dataset(
        "flagel-rho", 7, 3, tmp_path / "a", chunk=7, workers=1, n_haplotypes=6, progress=False
    )
    simulate_dataset("flagel-rho", 7, 3, tmp_path / "b", chunk=3, workers=2, n_haplotypes=6, progress=False)
    simulate_dataset("flagel-rho", 7, 4, tmp_path / "c", chunk=7, workers=1, n_haplotypes=6, progress=False)
    ga, gb, gc = (read_dataset(tmp_path / k) for k in "abc")
    assert a["simulated"] == 7 and len(ga) == len(gb) == 7
    assert np.array_equal(ga.gt, gb.gt) and np.array_equal(ga.pos, gb.pos)
    assert np.array_equal(ga.offsets, gb.offsets) and np.array_equal(ga.params, gb.params)
    assert np.allclose(ga.stats, gb.stats)
    assert not np.array_equal(ga.params, gc.params)  # another seed, other simulations
    # the parameters follow Flagel et al.'s prior: theta = 4 Ne mu L, rho = 4 Ne r (L - 1)
    ne, r = ga.param("ne"), ga.param("r")
    assert np.allclose(ga.param("theta"), 4 * ne * 1.5e-8 * 20001)
    assert np.allclose(ga.param("rho"), 4 * ne * r * 20000)
    assert set(ne) <= {1000, 2000, 5000, 10000, 15000, 20000, 50000} and ((r >= 1e-8) & (r <= 1e-6)).all()


def test_simulation_resumes_and_refuses_another_dataset(tmp_path):
    out = tmp_path / "d"
    simulate_dataset("flagel-rho", 6, 1, out, chunk=2, workers=1, n_haplotypes=4, progress=False)
    before = read_dataset(out)
    (out / "shard-00001.npz").unlink()
    with pytest.raises(BiodlInputError, match="shard-00001.npz is missing"):
        read_dataset(out)
    r = simulate_dataset("flagel-rho", 6, 1, out, chunk=2, workers=1, n_haplotypes=4, progress=False)
    assert r["simulated"] == 2 and r["skipped"] == 2
    after = read_dataset(out)
    assert np.array_equal(before.gt, after.gt) and np.array_equal(before.params, after.params)
    with pytest.raises(BiodlInputError, match="holds another dataset .*seed 1 here, 2 asked"):
        simulate_dataset("flagel-rho", 6, 2, out, chunk=2, workers=1, n_haplotypes=4, progress=False)
    with pytest.raises(BiodlInputError, match="cannot fix theta"):
        simulate_dataset("flagel-rho", 2, 1, tmp_path / "e", fixed={"theta": 6}, progress=False)


def test_a_smaller_n_never_deletes_finished_shards(tmp_path):
    out = tmp_path / "d"
    simulate_dataset("flagel-rho", 6, 1, out, chunk=2, workers=1, n_haplotypes=4, progress=False)
    files = sorted(q.name for q in out.glob("shard-*.npz"))
    with pytest.raises(
        BiodlInputError, match=r"is a dataset of 6 simulations; --n 2 would drop 4 of them: give --n 6"
    ):
        simulate_dataset("flagel-rho", 2, 1, out, chunk=2, workers=1, n_haplotypes=4, progress=False)
    assert sorted(q.name for q in out.glob("shard-*.npz")) == files
    assert json.loads((out / "dataset.json").read_text())["n"] == 6
    # a larger --n adds simulations, keeping the finished ones
    r = simulate_dataset("flagel-rho", 8, 1, out, chunk=2, workers=1, n_haplotypes=4, progress=False)
    assert r["skipped"] == 3 and r["simulated"] == 2 and len(read_dataset(out)) == 8


@pytest.mark.parametrize(
    "scenario,fixed,match",
    [
        ("flagel-rho", {"ne": "abc"}, r"--fix ne=abc: the value must be a number"),
        ("flagel-rho", {"ne": -5}, r"--fix ne=-5: ne must be > 0"),
        ("flagel-rho", {"r": 0}, r"--fix r=0: r must be > 0"),
        ("flagel-rho", {"ne": float("nan")}, r"must be a finite number"),
        ("selection", {"class": 1.5}, r"class must be 0 \(neutral\), 1 \(hard\) or 2 \(soft\)"),
        ("selection", {"tau": -1}, r"--fix tau=-1: tau must be >= 0"),
        ("sheehan-song-3epoch", {"T1": 5e5, "T2": 1e5}, r"T2=100000 must be older than T1"),
        ("sheehan-song-3epoch", {"T2": 1e5}, r"T2=100000 may be younger than the T1 drawn"),
    ],
)
def test_bad_fixed_values_are_refused_before_anything_is_written(tmp_path, scenario, fixed, match):
    out = tmp_path / "d"
    with pytest.raises(BiodlInputError, match=match):
        simulate_dataset(scenario, 2, 1, out, workers=1, n_haplotypes=4, fixed=fixed, progress=False)
    assert not out.exists()


def test_samples_zero_is_refused_not_the_default(tmp_path):
    with pytest.raises(BiodlInputError, match="--samples must be at least 4 haplotypes, got 0"):
        simulate_dataset("flagel-rho", 2, 1, tmp_path / "d", n_haplotypes=0, progress=False)
    r = runner.invoke(
        app,
        ["popgen", "simulate", "--scenario", "flagel-rho", "--n", "2", "--fix", "ne=abc", "--out",
         str(tmp_path / "c"), "--no-progress"],
    )  # fmt: skip
    assert r.exit_code == 2 and "--fix ne=abc: the value must be a number" in r.output


def test_dataset_json_is_written_after_the_first_shard(tmp_path, monkeypatch):
    import biodl.kinds.popgen.simulate as sim

    out = tmp_path / "d"
    real = sim._run_shard

    def boom(task):
        raise RuntimeError("msprime failed")

    monkeypatch.setattr(sim, "_run_shard", boom)
    with pytest.raises(RuntimeError):
        simulate_dataset("flagel-rho", 4, 1, out, chunk=2, workers=1, n_haplotypes=4, progress=False)
    assert not (out / "dataset.json").exists()
    monkeypatch.setattr(sim, "_run_shard", real)
    # the corrected rerun into the same --out (another seed) is not refused
    simulate_dataset("flagel-rho", 4, 2, out, chunk=2, workers=1, n_haplotypes=4, progress=False)
    assert json.loads((out / "dataset.json").read_text())["seed"] == 2 and not (out / sim.PENDING).exists()
    ref = read_dataset(out)
    # killed after the first shard but before dataset.json: the rerun resumes with the same shards
    (out / "dataset.json").rename(out / sim.PENDING)
    (out / "shard-00001.npz").unlink()
    r = simulate_dataset("flagel-rho", 4, 2, out, chunk=2, workers=1, n_haplotypes=4, progress=False)
    assert r["skipped"] == 1 and r["simulated"] == 2
    assert np.array_equal(read_dataset(out).gt, ref.gt)
    (out / "dataset.json").unlink()
    with pytest.raises(BiodlInputError, match="holds 2 simulation shard\\(s\\) but no dataset.json"):
        simulate_dataset("flagel-rho", 4, 2, out, chunk=2, workers=1, n_haplotypes=4, progress=False)


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_ctrl_c_stops_the_simulation_workers_at_once(tmp_path, sig):
    """Ctrl-C (SIGINT to the whole job, as a terminal sends it) or SIGTERM stops a parallel
    simulation at once: one line saying how far it got, no traceback, no worker left running;
    the same command then simulates the rest, and the dataset equals an uninterrupted one."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "sims"
    cmd = [sys.executable, "-m", "biodl.cli", "popgen", "simulate", "--scenario", "flagel-rho", "--n", "600",
           "--chunk", "20", "--seed", "3", "--out", str(out), "--workers", "2"]  # fmt: skip
    # as from a terminal: a test run started in the background by a non-interactive shell (`.ci/run
    # &`) has Ctrl-C ignored, a disposition every child inherits (and Python then keeps)
    p = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while not list(out.glob("shard-*.npz")) and time.monotonic() < deadline and p.poll() is None:
        time.sleep(0.2)
    assert p.poll() is None, "the simulation ended before it could be interrupted"
    os.killpg(p.pid, getattr(signal, sig))
    try:
        text, _ = p.communicate(timeout=60)  # a hang guard, not a timing: it stops in well under 1 s
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        pytest.fail("the interrupted simulation did not stop")
    assert p.returncode in ((130, -2) if sig == "SIGINT" else (143,)), text
    assert "Traceback" not in text and "[biodl] interrupted: " in text and "rerun the same command" in text
    time.sleep(1.5)  # a worker left behind would notice its parent is gone within a second
    left = subprocess.run(["pgrep", "-f", str(out)], capture_output=True, text=True).stdout.split()
    assert not left, f"processes still running: {left}"
    finished = len(list(out.glob("shard-*.npz")))
    assert 0 < finished < 30 and not list(out.glob(".*tmp*"))
    if sig == "SIGTERM":
        return  # the rerun is the same after either
    r = runner.invoke(app, cmd[3:])
    assert r.exit_code == 0, r.output
    assert f"{finished} of 30 shard(s) already finished, kept" in r.output
    whole = simulate_dataset("flagel-rho", 600, 3, tmp_path / "whole", chunk=20, workers=1, quiet=True)
    assert whole["simulated"] == 600
    a, b = read_dataset(out), read_dataset(tmp_path / "whole")
    np.testing.assert_array_equal(a.params, b.params)
    np.testing.assert_array_equal(a.gt, b.gt)


def test_fixed_ne_gives_flagels_test_theta(tmp_path):
    simulate_dataset(
        "flagel-rho", 3, 0, tmp_path / "t6", workers=1, n_haplotypes=4, fixed={"ne": 5000}, progress=False
    )
    gs = read_dataset(tmp_path / "t6")
    assert np.allclose(gs.param("theta"), 6.0003) and gs.info["fixed"] == {"ne": 5000.0}


def test_zambia_values_are_stdpopsims():
    stdpopsim = pytest.importorskip("stdpopsim")
    m = stdpopsim.get_species("DroMel").get_demographic_model("African3Epoch_1S16")
    sizes = [e.populations[0].start_size for e in m.model.debug().epochs]
    times = [e.start_time for e in m.model.debug().epochs][1:]
    assert sizes == [ZAMBIA["N1"], ZAMBIA["N2"], ZAMBIA["N3"]]
    assert times == [ZAMBIA["T1"], ZAMBIA["T2"]] and m.mutation_rate == 8.4e-9


def test_three_epoch_prior_and_sweeps_reduce_central_diversity():
    sc = get_scenario("sheehan-song-3epoch")
    p, g, pos = simulate_one(sc, 0, 0, 8)
    assert set(p) == {"N1", "N2", "N3", "T1", "T2"} and p["T2"] > p["T1"]
    for k in ("N1", "N2", "N3"):
        assert ZAMBIA[k] / 4 <= p[k] <= ZAMBIA[k] * 4
    assert g.shape[1] == 8 and ((pos >= 0) & (pos < sc.length)).all()
    sel = get_scenario("selection")
    from biodl.kinds.popgen.stats import compute_stats, stat_names

    i_pi = stat_names(20).index("w3_pi")  # the central window
    central = {}
    for c in (0, 1):
        central[c] = np.mean(
            [
                compute_stats(*simulate_one(sel, 5, i, 20, {"class": c, "s": 0.1, "tau": 0})[1:], sel.length)[
                    i_pi
                ]
                for i in range(4)
            ]
        )
    assert central[1] < 0.5 * central[0], central  # a hard sweep removes diversity at its site
    p, *_ = simulate_one(sel, 5, 0, 20, {"class": 2})
    assert p["class"] == 2 and p["start_frequency"] >= 0.02


# ---------------------------------------------------------------------- VCF
def test_vcf_diploid_haploid_and_missing(tmp_path):
    v = read_vcf(
        _vcf(tmp_path, "1\t10\t.\tA\tT\t.\tPASS\t.\tGT\t0|1\t1|.\n1\t20\t.\tA\tG\t.\tPASS\t.\tGT\t0|0\t1|1\n")
    )
    g, pos = v["chroms"]["1"]
    assert v["ploidy"] == 2 and v["n_haplotypes"] == 4 and pos.tolist() == [10, 20]
    assert g.tolist() == [[0, 1, 1, -1], [0, 0, 1, 1]]
    # too much missing data: the site is dropped; multi-allelic and monomorphic sites are skipped
    body = (
        "1\t10\t.\tA\tT\t.\tPASS\t.\tGT\t.|.\t1|.\n1\t20\t.\tA\tG,C\t.\tPASS\t.\tGT\t0|2\t1|1\n"
        "1\t30\t.\tA\tG\t.\tPASS\t.\tGT\t0|0\t0|0\n1\t40\t.\tA\tG\t.\tPASS\t.\tGT\t0|0\t0|1\n"
    )
    v = read_vcf(_vcf(tmp_path, body, "m.vcf"), max_missing=0.5)
    assert v["chroms"]["1"][1].tolist() == [40]
    assert v["skipped"] == {"not a biallelic SNP": 1, "too much missing data": 1, "monomorphic": 1}
    h = read_vcf(_vcf(tmp_path, "1\t5\t.\tA\tT\t.\tPASS\t.\tGT\t1\t0\n", "h.vcf"))
    assert h["ploidy"] == 1 and h["chroms"]["1"][0].tolist() == [[1, 0]]


def test_vcf_errors_name_file_record_and_problem(tmp_path):
    bad_pos = _vcf(
        tmp_path, "1\t10\t.\tA\tT\t.\tPASS\t.\tGT\t0|1\t1|1\n1\tabc\t.\tA\tT\t.\tPASS\t.\tGT\t0|1\t1|1\n"
    )
    with pytest.raises(
        BiodlInputError, match=r"x\.vcf, line 6: malformed VCF record \(1:abc\): POS 'abc'"
    ) as e:
        read_vcf(bad_pos)
    assert e.value.record == 6 and e.value.path.endswith("x.vcf")
    cols = _vcf(tmp_path, "1\t10\t.\tA\tT\t.\tPASS\t.\tGT\t0|1\n", "c.vcf")
    with pytest.raises(
        BiodlInputError, match=r"line 5: malformed .*1 sample column\(s\), the header names 2"
    ):
        read_vcf(cols)
    within = _vcf(tmp_path, "1\t10\t.\tA\tT\t.\tPASS\t.\tGT\t0|1\t1\n", "p.vcf")
    with pytest.raises(BiodlInputError, match=r"line 5: record 1:10: ploidy mismatch: sample b has 1 allele"):
        read_vcf(within)
    across = _vcf(
        tmp_path, "1\t10\t.\tA\tT\t.\tPASS\t.\tGT\t0|1\t1|0\n1\t20\t.\tA\tT\t.\tPASS\t.\tGT\t0\t1\n", "q.vcf"
    )
    with pytest.raises(
        BiodlInputError, match=r"line 6: record 1:20: ploidy mismatch: 1 allele.*first record has 2"
    ):
        read_vcf(across)
    unsorted = _vcf(
        tmp_path,
        "1\t20\t.\tA\tT\t.\tPASS\t.\tGT\t0|1\t1|0\n1\t10\t.\tA\tT\t.\tPASS\t.\tGT\t0|1\t1|0\n",
        "u.vcf",
    )
    with pytest.raises(BiodlInputError, match="not sorted"):
        read_vcf(unsorted)
    gap = _vcf(
        tmp_path,
        "1\t10\t.\tA\tT\t.\tPASS\t.\tGT\t0|1\t1|0\n1\t350\t.\tA\tT\t.\tPASS\t.\tGT\t0|1\t0|0\n",
        "g.vcf",
    )
    with pytest.raises(BiodlInputError, match=r"g\.vcf: window 1:100-200 has no variant"):
        vcf_windows(gap, 100)
    w = vcf_windows(gap, 100, empty="skip")
    assert (
        w.ids == ["1:0-100", "1:300-400"] and w.pos.tolist() == [9.0, 49.0] and w.info["empty_windows"] == 2
    )
    with pytest.raises(
        BiodlInputError, match=r"sample-count mismatch: the model reads 10 haplotypes, the VCF gives 4"
    ):
        vcf_windows(gap, 100, n_haplotypes=10)
    with pytest.raises(BiodlInputError, match="sample.*not in the VCF: zz"):
        read_vcf(gap, samples=["zz"])
    assert read_vcf(gap, samples=["b"])["n_haplotypes"] == 2


def test_vcf_samples_in_the_order_asked_chromosomes_and_truncation(tmp_path):
    import gzip

    body = "1\t10\t.\tA\tT\t.\tPASS\t.\tGT\t0|0\t1|1\n1\t20\t.\tA\tG\t.\tPASS\t.\tGT\t0|1\t1|0\n"
    v = _vcf(tmp_path, body)
    # the haplotypes follow the samples as asked, not the file's order
    assert read_vcf(v, samples=["b", "a"])["chroms"]["1"][0].tolist() == [[1, 1, 0, 0], [1, 0, 0, 1]]
    assert read_vcf(v, samples=["b", "a"])["samples"] == ["b", "a"]
    with pytest.raises(BiodlInputError, match=r"sample\(s\) given twice in --set samples: a"):
        read_vcf(v, samples=["a", "a", "b"])
    with pytest.raises(
        BiodlInputError, match=r"no variant records on 3R \(--set chroms\); the VCF has records on 1"
    ):
        read_vcf(v, chroms=["3R"])
    bom = tmp_path / "bom.vcf"
    bom.write_bytes(b"\xef\xbb\xbf" + v.read_bytes())
    with pytest.raises(BiodlInputError, match="starts with a UTF-8 byte-order mark"):
        read_vcf(bom)
    # a .vcf.gz cut short is named as truncated, not as a bad record or header
    rows = "".join(f"1\t{10 * i}\t.\tA\tT\t.\tPASS\t.\tGT\t0|1\t1|0\n" for i in range(1, 4000))
    whole = gzip.compress((HEAD + rows).encode())
    for cut in (len(whole) // 2, 300):
        t = tmp_path / f"t{cut}.vcf.gz"
        t.write_bytes(whole[:cut])
        with pytest.raises(BiodlInputError, match="truncated or corrupt.*re-download"):
            read_vcf(t)


# ---------------------------------------------------------------------- statistics
def test_summary_statistics_against_hand_and_scikit_allel():
    import allel

    from biodl.kinds.popgen.stats import N_WINDOWS, compute_stats, sfs_bin_edges, stat_names

    rng = np.random.default_rng(0)
    n, S, L = 12, 30, 10_000.0
    gt = (rng.random((S, n)) < rng.uniform(0.05, 0.6, (S, 1))).astype(np.int8)
    gt[0] = 0  # a monomorphic site is not segregating
    gt[1, 2] = -1  # a missing call
    pos = np.sort(rng.uniform(0, L, S))
    v = dict(zip(stat_names(n), compute_stats(gt, pos, L), strict=True))
    seg = [i for i in range(S) if len(set(gt[i][gt[i] >= 0])) == 2]
    assert v["S"] == len(seg)
    # pi: mean pairwise differences summed over sites, by hand (missing calls left out)
    pi = 0.0
    for i in seg:
        c = gt[i][gt[i] >= 0]
        k, m = c.sum(), len(c)
        pi += 2 * k * (m - k) / (m * (m - 1))
    assert v["pi"] == pytest.approx(pi)
    a1 = np.sum(1 / np.arange(1, n))
    assert v["theta_w"] == pytest.approx(len(seg) / a1)
    ac = allel.HaplotypeArray(gt).count_alleles(max_allele=1)
    assert v["tajima_d"] == pytest.approx(allel.tajima_d(ac[seg]))
    # Garud's H12 by hand on the segregating sites where every haplotype is called (scikit-allel
    # took the missing call for an allele of its own: one more distinct haplotype)
    called = [i for i in seg if (gt[i] >= 0).all()]
    assert len(called) == len(seg) - 1
    hap = ["".join(map(str, gt[called, j])) for j in range(n)]
    f = np.sort(np.unique(hap, return_counts=True)[1] / n)[::-1]
    assert v["H1"] == pytest.approx((f**2).sum())
    assert v["H12"] == pytest.approx((f[0] + f[1]) ** 2 + (f[2:] ** 2).sum())
    assert v["hap_frac"] == pytest.approx(len(f) / n)
    # folded SFS: shares of segregating sites per minor-allele-count bin
    minor = [min(gt[i][gt[i] >= 0].sum(), (gt[i] >= 0).sum() - gt[i][gt[i] >= 0].sum()) for i in seg]
    for lo, hi in sfs_bin_edges(n):
        assert v[f"sfs_{lo}-{hi}"] == pytest.approx(np.mean([lo <= m <= hi for m in minor]))
    assert sum(v[f"sfs_{lo}-{hi}"] for lo, hi in sfs_bin_edges(n)) == pytest.approx(1.0)
    # LD: mean r^2 of the pairs 0.1-0.25 of the region apart, against numpy's correlation
    full = [i for i in seg if (gt[i] >= 0).all()]
    r2, d = [], []
    for a in range(len(seg)):
        for b in range(a + 1, len(seg)):
            i, j = seg[a], seg[b]
            if i in full and j in full:
                r2.append(np.corrcoef(gt[i], gt[j])[0, 1] ** 2)
                d.append(abs(pos[j] - pos[i]) / L)
    r2, d = np.array(r2), np.array(d)
    m = (d >= 0.1) & (d < 0.25)
    assert m.sum() > 3
    # the pairs with the missing call differ slightly (Rogers-Huff leaves it out): compare loosely
    assert v["r2_0.1-0.25"] == pytest.approx(r2[m].mean(), abs=0.02)
    # windowed statistics add up to the global ones
    assert sum(v[f"w{w + 1}_S"] for w in range(N_WINDOWS)) == v["S"]
    assert sum(v[f"w{w + 1}_pi"] for w in range(N_WINDOWS)) == pytest.approx(v["pi"])
    assert np.isfinite(compute_stats(np.zeros((0, n), np.int8), np.zeros(0), L)).all()


def test_a_missing_call_does_not_make_a_haplotype_of_its_own():
    """One ./. in 22 sites moved w2_hap_frac 0.4 -> 0.6 and w2_H12 0.54 -> 0.32 (predictions
    +17 %): the haplotype statistics are those of the matrix without the site."""
    import msprime

    from biodl.kinds.popgen.stats import compute_stats, stat_names

    ts = msprime.sim_mutations(
        msprime.sim_ancestry(
            5, population_size=10_000, recombination_rate=1e-7, sequence_length=20_001, random_seed=7
        ),
        rate=1.5e-8,
        random_seed=7,
    )
    gt, pos, L = ts.genotype_matrix().astype(np.int8), ts.tables.sites.position, 20_001.0
    holed = gt.copy()
    holed[5, 2] = holed[5, 3] = -1  # one diploid sample's call at one site
    names = stat_names(10)
    with_hole = dict(zip(names, compute_stats(holed, pos, L), strict=True))
    without_site = dict(zip(names, compute_stats(np.delete(gt, 5, 0), np.delete(pos, 5), L), strict=True))
    kinds = ("hap_frac", "hap_div", "H1", "H12", "H123", "H2_H1")
    hap = [k for k in names if k in kinds or (k[0] == "w" and k.split("_", 1)[1] in kinds)]
    assert len(hap) == 6 + 2 * 5
    assert {k: with_hole[k] for k in hap} == pytest.approx({k: without_site[k] for k in hap})
    assert with_hole["S"] == without_site["S"] + 1  # the site still counts where alleles are counted


# ---------------------------------------------------------------------- encoding and networks
def test_matrix_encoding_pads_crops_and_sorts_rows():
    from biodl.kinds.popgen.data import encode_matrix, sort_rows

    gt = np.array([[0, 1, 0, 1], [1, 0, 1, -1], [0, 0, 0, 0]], np.int8)
    x = encode_matrix(gt, np.array([10.0, 30.0, 70.0]), 100.0, 5, row_sort=False)
    assert x.shape == (5, 5)
    assert np.allclose(x[0], [0.1, 0.2, 0.4, 0, 0])
    assert x[1:, :3].T.tolist() == [[-1, 1, -1, 1], [1, -1, 1, 0], [-1, -1, -1, -1]]
    assert (x[:, 3:] == 0).all()
    crop = encode_matrix(gt, np.array([10.0, 30.0, 70.0]), 100.0, 1, row_sort=False)
    assert np.allclose(crop[0], [0.2])  # the central site kept
    h = np.array([[1, 1, 1], [-1, -1, -1], [1, 1, -1], [-1, -1, 1]])
    order = sort_rows(h)
    assert (
        sorted(order.tolist()) == [0, 1, 2, 3] and abs(order.tolist().index(0) - order.tolist().index(2)) == 1
    )


def test_networks_shapes_and_exchangeability():
    from biodl.models.popgen import ExchangeableNet, FlagelCNN, SummaryMLP

    torch.manual_seed(0)
    x = torch.randn(3, 1 + 10, 40)
    cnn = FlagelCNN(10, 40, 2, channels=8, pos_hidden=4, hidden=8).eval()
    assert cnn(x).shape == (3, 2)
    ex = ExchangeableNet(3, channels=4, pool_bins=4, hidden=8).eval()
    perm = torch.cat([torch.zeros(1, dtype=torch.long), 1 + torch.randperm(10)])
    assert torch.allclose(ex(x), ex(x[:, perm]), atol=1e-5)
    assert ex(x[:, :6]).shape == (3, 3)  # any number of haplotypes
    assert not torch.allclose(cnn(x), cnn(x[:, perm]))  # the CNN is not invariant (why rows are sorted)
    mlp = SummaryMLP(7, 1, hidden=[5])
    mlp.scale.fit(torch.rand(20, 7) * 100)
    assert mlp(torch.rand(4, 7)).shape == (4, 1)


def test_rejection_abc_recovers_parameters_and_classes():
    from biodl.kinds.popgen.abc import RejectionABC

    rng = np.random.default_rng(1)
    theta = rng.uniform(0, 2, (2000, 1))
    stats = np.hstack([theta + rng.normal(0, 0.05, theta.shape), rng.normal(size=(2000, 2)) * 0.01])
    q = np.array([[0.5, 0, 0], [1.5, 0, 0]])
    est = RejectionABC(stats, theta, 0.01).predict(q)
    assert np.allclose(est[:, 0], [0.5, 1.5], atol=0.1)
    adj = RejectionABC(stats, theta, 0.05, adjust=True).predict(q)
    assert np.allclose(adj[:, 0], [0.5, 1.5], atol=0.1)
    cls = (theta[:, 0] > 1).astype(int)
    p = RejectionABC(stats, cls, 0.01, n_classes=2).predict(q)
    assert p.argmax(1).tolist() == [0, 1] and np.allclose(p.sum(1), 1)


# ---------------------------------------------------------------------- CLI
def test_cli_simulate_train_evaluate_predict(tmp_path):
    sims = tmp_path / "sims"
    r = runner.invoke(
        app,
        ["popgen", "simulate", "--scenario", "flagel-rho", "--n", "30", "--seed", "2", "--samples", "10",
         "--out", str(sims), "--workers", "1", "--no-progress"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert json.loads((sims / "dataset.json").read_text())["n"] == 30
    run = tmp_path / "run"
    r = runner.invoke(
        app,
        ["train", "--system", "popgen-cnn", "--data", str(sims), "--target", "rho", "--out", str(run),
         "--epochs", "2", "--no-progress", "--device", "cpu", "-m", "channels=8", "-m", "hidden=8",
         "-m", "pos_hidden=4"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    meta = json.loads((run / "run.json").read_text())
    assert meta["task"] == "regression" and meta["label_names"] == ["rho"]
    assert (run / "abc" / "metrics.json").exists() and (run / "report.html").exists()
    html = (run / "report.html").read_text()
    assert "Example genotype matrix" in html and "Network against rejection ABC" in html
    r = runner.invoke(app, ["evaluate", str(run), str(DATA / "flagel_tiny"), "--out", str(tmp_path / "ev")])
    assert r.exit_code == 0, r.output
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert m["n"] == 48 and {"r2", "rmse", "rel_error"} <= set(m["metrics"])
    df = pd.read_csv(tmp_path / "ev" / "predictions.tsv", sep="\t")
    assert (df["pred_rho"] > 0).all() and np.allclose(
        df["true_rho"], read_dataset(DATA / "flagel_tiny").param("rho")
    )
    out = tmp_path / "vcf.tsv"
    r = runner.invoke(app, ["predict", str(run), str(DATA / "diploid_5x60kb.vcf"), "--out", str(out)])
    assert r.exit_code == 0, r.output
    p = pd.read_csv(out, sep="\t")
    assert (
        p["id"].tolist() == ["2L:0-20001", "2L:20001-40002", "2L:40002-60003"] and (p["pred_rho"] > 0).all()
    )
    r = runner.invoke(
        app,
        ["predict", str(run), str(DATA / "diploid_5x60kb.vcf"), "--set", "window=60000", "--out", str(out)],
    )
    assert r.exit_code == 0 and "--set window=60000 differs from the training windows (20001 bp)" in " ".join(
        r.output.split()
    )
    r = runner.invoke(app, ["evaluate", str(run), str(DATA / "diploid_5x60kb.vcf")])
    assert r.exit_code != 0 and "true parameters" in r.output
    r = runner.invoke(
        app,
        ["predict", str(run), str(DATA / "diploid_5x60kb.vcf"), "--set", "samples=s0,s1", "--out", str(out)],
    )
    assert (
        r.exit_code != 0
        and "sample-count mismatch: the model reads 10 haplotypes, the VCF gives 4" in r.output
    )
    r = runner.invoke(app, ["popgen", "simulate", "--help"])
    assert r.exit_code == 0 and "Example: biodl popgen simulate" in r.output


def test_selection_classifier_confusion_matrix(tmp_path):
    from biodl import pipeline
    from biodl.train import TrainConfig

    sims = tmp_path / "sel"
    simulate_dataset("selection", 36, 0, sims, workers=1, n_haplotypes=8, progress=False)
    cfg = TrainConfig(max_epochs=3, patience=0, device="cpu", progress=False, seed=0, batch_size=16)
    s = pipeline.train(
        "popgen-mlp", tmp_path / "run", options={"data": sims, "target": "class", "test_fraction": 0.3},
        model_options={"hidden": [8]}, config=cfg, quiet=True,
    )  # fmt: skip
    assert s["task"] == "multiclass"
    tm = s["test_metrics"]
    assert tm["misclassification"] == pytest.approx(1 - tm["accuracy"])
    assert 0 <= s["abc_test_metrics"]["misclassification"] <= 1
    # ABC's AUROC ranks its exact class fractions (they tie often: k of n accepted simulations); a
    # float32 round trip through log-probabilities broke the ties at random (0.8183 for 0.8248)
    from sklearn.metrics import roc_auc_score

    abc = pd.read_csv(tmp_path / "run" / "abc" / "predictions.tsv", sep="\t")
    present = sorted(set(abc["true"]))
    want = np.mean([roc_auc_score(abc["true"] == c, abc[f"prob_{c}"]) for c in present])
    assert s["abc_test_metrics"]["auroc"] == pytest.approx(want, abs=1e-6)  # (float32 AUROC)
    ev = json.loads((tmp_path / "run" / "test" / "metrics.json").read_text())
    cm = ev["confusion"]
    assert set(cm) == {"neutral", "hard", "soft"} and sum(sum(r.values()) for r in cm.values()) == ev["n"]
    html = (tmp_path / "run" / "report.html").read_text()
    assert "Confusion matrix (held-out test)" in html


def test_scenarios_table_comes_out_whole_when_piped(monkeypatch) -> None:
    """Printed to a pipe or a file (not a terminal), the table is not cut to 80 columns: rich
    would shorten names to 'flagel-…' and the descriptions to a few letters."""
    from biodl.kinds.popgen.simulate import SCENARIOS

    monkeypatch.delenv("COLUMNS", raising=False)
    res = runner.invoke(app, ["popgen", "scenarios"])
    assert res.exit_code == 0, res.output
    for name, sc in SCENARIOS.items():
        assert name in res.output
        assert sc.title in res.output
    assert "…" not in res.output


def test_vcf_windows_stop_at_the_chromosome_length_the_header_gives(tmp_path, capsys):
    """With ##contig lengths, a window running past its chromosome's end holds less sequence than
    the training windows: it is left out and counted (it used to be scored as a full window);
    without a length the windows run to the last variant as before."""
    from biodl.kinds.popgen.io import contig_lengths

    gt = "\tGT\t0|1\t1|0\n"
    body = "".join(f"1\t{p}\t.\tA\tT\t.\tPASS\t." + gt for p in (10, 150, 320))
    body += "".join(f"X\t{p}\t.\tA\tT\t.\tPASS\t." + gt for p in (20, 90))
    plain = _vcf(tmp_path, body, "plain.vcf")
    assert vcf_windows(plain, 100, empty="skip").ids == ["1:0-100", "1:100-200", "1:300-400", "X:0-100"]
    sized = tmp_path / "sized.vcf"
    sized.write_text(
        HEAD.replace(
            "##contig=<ID=1>", '##contig=<ID=1,length=350,assembly="x,y">\n##contig=<ID=X,length=100>'
        )
        + body
    )
    assert contig_lengths(sized.read_text()) == {"1": 350, "X": 100}
    w = vcf_windows(sized, 100, empty="skip", quiet=False)
    assert w.ids == ["1:0-100", "1:100-200", "X:0-100"] and w.info["partial_windows"] == 1
    assert "1 window(s) running past their chromosome's end" in capsys.readouterr().err
    with pytest.raises(
        BiodlInputError, match=r"no window of 1,000 bp fits inside a chromosome .*1 350, X 100"
    ):
        vcf_windows(sized, 1000)
    # a header length the records contradict (another assembly?) is named and not used
    short = tmp_path / "short_header.vcf"
    short.write_text(HEAD.replace("##contig=<ID=1>", "##contig=<ID=1,length=200>") + body)
    w = vcf_windows(short, 100, empty="skip", quiet=False)
    assert w.ids == ["1:0-100", "1:100-200", "1:300-400", "X:0-100"] and w.info["partial_windows"] == 0
    assert "chromosome 1 has variants up to position 320, past its length in the ##contig header (200)" in (
        capsys.readouterr().err
    )


def test_scenarios_show_each_parameters_prior_as_simulated() -> None:
    """`biodl popgen scenarios` gives every parameter's prior (was: the names only), and the
    ranges it gives are those of the values the simulator draws."""
    from biodl.kinds.popgen.simulate import SCENARIOS, sim_seeds

    res = runner.invoke(app, ["popgen", "scenarios"])
    assert res.exit_code == 0, res.output
    for want in ("10^U(-8, -6)", "1e-08 to 1e-06", "within x4 of 544,200", "136,050 to 2,176,800",
                 "= T1 + log-uniform(500,000, 8,000,000)", "U(0, 0.02) x 4N", "0 to 800"):  # fmt: skip
        assert want in res.output, want
    res = runner.invoke(app, ["popgen", "scenarios", "--json"])
    assert res.exit_code == 0, res.output
    listed = {s["name"]: s for s in json.loads(res.stdout)}
    assert set(listed) == set(SCENARIOS)
    assert listed["flagel-rho"]["parameters"]["r"] == {
        "distribution": "log-uniform", "low": 1e-8, "high": 1e-6, "unit": "per bp per generation",
        "rule": "10^U(-8, -6)",
    }  # fmt: skip
    assert listed["flagel-rho"]["parameters"]["rho"]["high"] == 4000.0
    for name, sc in SCENARIOS.items():
        prm = listed[name]["parameters"]
        assert list(prm) == list(sc.params)
        draws = [sc.draw(sim_seeds(0, i)[0], {}) for i in range(400)]
        for k, pr in prm.items():
            vals = np.array([d[k] for d in draws if name != "selection" or k == "class" or d["class"] > 0])
            assert (vals >= pr["low"] * (1 - 1e-9)).all() and (vals <= pr["high"] * (1 + 1e-9)).all(), k
            if pr["distribution"] == "choice":
                assert set(vals) == set(pr["values"]), k  # every value drawn, none other
            if pr["distribution"] in ("uniform", "log-uniform"):  # the draws fill the range: not too wide
                f = np.log if pr["distribution"] == "log-uniform" else (lambda v: v)
                lo, hi = f(pr["low"]), f(pr["high"])
                assert f(vals.min()) < lo + 0.05 * (hi - lo) and f(vals.max()) > hi - 0.05 * (hi - lo), k


def test_simulate_progress_is_whole_lines_unless_on_a_terminal(tmp_path, capsys):
    from biodl.kinds.popgen.simulate import ShardProgress
    from tests.conftest import TtyStream

    for tty in (False, True):
        clock = iter(np.arange(0.0, 401.0, 10.0)).__next__  # started at 0, a shard every 10 s
        stream = TtyStream(tty)
        bar = ShardProgress("flagel-rho", 40, 10_000, True, stream, plain_every=30.0, clock=clock)
        for _ in range(40):
            bar.shard_done(250)
        text = stream.getvalue()
        if tty:  # rewritten in place per shard, cleared at the end (the summary line follows)
            assert text.count("\r") == 39 + 2 and "\n" not in text
            want = "39 of 40 shard(s) done (9,750 of 10,000 simulations), 6 min, about 10 s left"
            assert f"\r[biodl] flagel-rho: {want}" in text
        else:  # a whole line at most every 30 s
            lines = text.splitlines(keepends=True)
            assert "\r" not in text and all(line.endswith("\n") for line in lines) and len(lines) == 13
            want = "3 of 40 shard(s) done (750 of 10,000 simulations), 30 s, about 6 min left\n"
            assert lines[0] == f"[biodl] flagel-rho: {want}"
    # the command: a first line at once saying what, how many and where
    simulate_dataset("flagel-rho", 6, 1, tmp_path / "d", chunk=2, workers=1, n_haplotypes=4)
    err = capsys.readouterr().err
    want = "simulating 6 flagel-rho simulation(s) in 3 shard(s) of up to 2 with 1 process(es) into"
    assert f"[biodl] {want} {tmp_path / 'd'}" in " ".join(err.split())
    assert "\r" not in err


# ---------------------------------------------------------------- damaged inputs, missing calls, metrics
def test_a_corrupt_shard_is_named_and_a_rerun_of_simulate_rewrites_it(tmp_path):
    out = tmp_path / "d"
    simulate_dataset("flagel-rho", 4, 1, out, chunk=2, workers=1, n_haplotypes=4, progress=False)
    good = read_dataset(out)
    shard = out / "shard-00000.npz"
    whole = shard.read_bytes()
    shard.write_bytes(whole[:300])  # cut short (head -c)
    with pytest.raises(
        BiodlInputError, match=r"shard-00000\.npz: simulation shard corrupt or truncated"
    ) as e:
        read_dataset(out)
    assert "rerun the same `biodl popgen simulate`" in str(e.value) and e.value.path.endswith(
        "shard-00000.npz"
    )
    res = runner.invoke(app, ["train", str(out), "--system", "popgen-mlp", "--out", str(tmp_path / "run")])
    assert res.exit_code != 0 and "corrupt or truncated" in res.output and "unexpected" not in res.output
    flipped = bytearray(whole)  # damaged inside a member: a bad CRC
    flipped[len(whole) // 3 : len(whole) // 3 + 64] = bytes(64)
    shard.write_bytes(bytes(flipped))
    with pytest.raises(BiodlInputError, match="corrupt or truncated"):
        read_dataset(out)
    r = simulate_dataset("flagel-rho", 4, 1, out, chunk=2, workers=1, n_haplotypes=4, progress=False)
    assert r["simulated"] == 2  # the damaged shard, simulated again; the other kept
    again = read_dataset(out)
    assert np.array_equal(again.gt, good.gt) and np.array_equal(again.params, good.params)


def test_a_vcf_without_gt_is_refused_naming_the_record(tmp_path):
    dp = _vcf(tmp_path, "1\t10\t.\tA\tT\t.\tPASS\t.\tDP\t3\t4\n", "dp.vcf")
    with pytest.raises(
        BiodlInputError, match=r"dp\.vcf, line 5: record 1:10 has no GT \(genotype\) field \(FORMAT DP\)"
    ):
        read_vcf(dp)
    later = _vcf(
        tmp_path,
        "1\t10\t.\tA\tT\t.\tPASS\t.\tGT\t0|1\t1|0\n1\t20\t.\tA\tT\t.\tPASS\t.\tDP:GQ\t3:9\t4:9\n",
        "l.vcf",
    )
    with pytest.raises(BiodlInputError, match=r"line 6: record 1:20 has no GT .*FORMAT DP:GQ"):
        read_vcf(later)
    bundled = tmp_path / "nogt.vcf"  # the tester's: sed 's/\tGT\t/\tDP\t/' on the bundled VCF
    bundled.write_text((DATA / "diploid_5x60kb.vcf").read_text().replace("\tGT\t", "\tDP\t"))
    with pytest.raises(BiodlInputError, match=r"nogt\.vcf, line 5: record 2L:1411 has no GT"):
        vcf_windows(bundled, 20001, n_haplotypes=10)
    # htslib's own line about the undeclared DP ("[W::vcf_parse_format_dict2] FORMAT 'DP' ... is
    # not defined in the header") no longer comes before that message (it writes to fd 2)
    import subprocess
    import sys

    code = (
        "from biodl.kinds.popgen.io import read_vcf\n"
        f"try:\n    read_vcf({str(bundled)!r})\nexcept Exception as e:\n    print(type(e).__name__)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.stdout.strip() == "BiodlInputError" and "[W::" not in r.stderr, r.stderr


def test_a_bare_dot_is_a_missing_call_of_any_ploidy(tmp_path):
    body = (
        "1\t10\t.\tA\tT\t.\tPASS\t.\tGT\t0|1\t.\n"
        "1\t20\t.\tA\tT\t.\tPASS\t.\tGT\t.\t.\n"  # every call missing: skipped
        "1\t30\t.\tA\tT\t.\tPASS\t.\tGT\t./.\t1|0\n"
        "1\t40\t.\tA\tT\t.\tPASS\t.\tGT\t0|1\t1|1\n"
    )
    v = read_vcf(_vcf(tmp_path, body, "dot.vcf"))
    g, pos = v["chroms"]["1"]
    assert v["ploidy"] == 2 and v["n_haplotypes"] == 4 and pos.tolist() == [10, 30, 40]
    assert g.tolist() == [[0, 1, -1, -1], [-1, -1, 1, 0], [0, 1, 1, 1]]
    assert v["skipped"] == {"too much missing data": 1}
    # a haploid call that is not missing is still a ploidy mismatch
    with pytest.raises(BiodlInputError, match=r"ploidy mismatch: sample b has 1 allele"):
        read_vcf(_vcf(tmp_path, "1\t10\t.\tA\tT\t.\tPASS\t.\tGT\t0|1\t1\n", "h.vcf"))
    # haploid files keep their '.' as before
    hap = read_vcf(
        _vcf(
            tmp_path, "1\t10\t.\tA\tT\t.\tPASS\t.\tGT\t1\t.\n1\t20\t.\tA\tT\t.\tPASS\t.\tGT\t0\t1\n", "p.vcf"
        )
    )
    assert hap["ploidy"] == 1 and hap["chroms"]["1"][0].tolist() == [[1, -1], [0, 1]]


def test_multiclass_auroc_is_nan_with_one_class_and_skips_absent_ones(capsys, monkeypatch):
    import warnings

    from biodl.kinds.popgen.kind import multiclass_metrics
    from biodl.train import metrics as shared_metrics

    monkeypatch.setattr(shared_metrics, "_WARNED", set())  # the warning is printed once per process
    from biodl.train.metrics import compute_metrics

    rng = np.random.default_rng(0)
    out = rng.normal(size=(30, 3)).astype(np.float32)
    y = rng.integers(0, 3, 30).astype(np.float64)[:, None]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no torchmetrics UserWarning
        every = multiclass_metrics(out, y, ["neutral", "hard", "soft"])
        ref = compute_metrics("multiclass", torch.from_numpy(out), torch.from_numpy(y.astype(np.float32)))
        assert every["auroc"] == pytest.approx(ref["auroc"]) and every["accuracy"] == pytest.approx(
            ref["accuracy"]
        )
        one = multiclass_metrics(out[:1], np.array([[2.0]]), ["neutral", "hard", "soft"])
        two = multiclass_metrics(out, np.where(y == 2, 1, y), ["neutral", "hard", "soft"])
    assert np.isnan(one["auroc"]) and one["accuracy"] in (0.0, 1.0)
    assert one["misclassification"] == pytest.approx(1 - one["accuracy"])
    assert "all of class soft: AUROC is undefined (NaN)" in capsys.readouterr().err
    # class 2 absent: the macro mean is over classes 0 and 1 (not a 0 for class 2)
    from sklearn.metrics import roc_auc_score

    p = torch.from_numpy(out).softmax(-1).numpy()
    t = np.where(y == 2, 1, y)[:, 0]
    want = np.mean([roc_auc_score(t == c, p[:, c]) for c in (0, 1)])
    assert two["auroc"] == pytest.approx(want, abs=1e-5)


def test_a_second_simulation_into_a_dataset_being_written_is_refused(tmp_path):
    """Two simulations with other seeds into one --out both finished and left mixed shards."""
    import fcntl
    import os

    from biodl.kinds.popgen.simulate import SIMULATE_LOCK

    out = tmp_path / "sims"
    out.mkdir()
    fd = os.open(out / SIMULATE_LOCK, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running simulation holds it
    try:
        with pytest.raises(
            BiodlInputError, match="another `biodl popgen simulate` is writing this dataset now"
        ):
            simulate_dataset("flagel-rho", 4, 1, out, chunk=2, workers=1, n_haplotypes=4, progress=False)
        assert not list(out.glob("shard-*"))
    finally:
        os.close(fd)
    simulate_dataset("flagel-rho", 4, 1, out, chunk=2, workers=1, n_haplotypes=4, progress=False)
    assert len(list(out.glob("shard-*.npz"))) == 2 and not (out / SIMULATE_LOCK).exists()


def _shard_or_die(task):
    """A stand-in for a shard's work in a spawned worker: ``"die"`` is a worker killed (as by
    the out-of-memory killer)."""
    import os
    import signal
    import time

    if task == "die":
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.2)
    return 1, 0.0


def test_a_killed_simulation_worker_stops_the_run_with_a_clear_error():
    """A worker killed mid-shard left the main process waiting for ever (the Pool replaced the
    worker but never gave its shard back), and SIGTERM could not stop it."""
    import multiprocessing as mp
    import time

    from biodl.kinds.popgen.simulate import _abandon, _pool_results, _WorkerDied

    pool = mp.get_context("spawn").Pool(2)
    t0 = time.perf_counter()
    got = []
    with pytest.raises(_WorkerDied):
        for r in _pool_results(pool, ["ok", "die", "ok", "ok", "ok", "ok"], every=0.5, fn=_shard_or_die):
            got.append(r)
    _abandon(pool)
    assert time.perf_counter() - t0 < 60 and len(got) < 6


def test_a_missing_dataset_or_vcf_is_not_found_not_a_call_to_simulate(tmp_path):
    from biodl.kinds.popgen.simulate import dataset_config

    with pytest.raises(BiodlInputError, match=r"nope\.vcf: not found \(a dataset directory"):
        dataset_config(tmp_path / "nope.vcf")
    (tmp_path / "d").mkdir()
    with pytest.raises(BiodlInputError, match="not a simulated dataset"):
        dataset_config(tmp_path / "d")


def test_vcf_positions_beyond_32_bits_lower_case_bases_repeats_and_pos_0(tmp_path):
    """cyvcf2's POS is 32-bit (4295026296 was read as 59000); lower-case REF / ALT are bases (they
    were skipped as not SNPs); a repeated record was counted as a second site; POS 0 was said to
    be unsorted."""
    body = (
        "1\t10\t.\ta\tt\t.\tPASS\t.\tGT\t0|1\t1|0\n"
        "1\t10\t.\tA\tT\t.\tPASS\t.\tGT\t0|1\t1|0\n"
        "1\t4295026296\t.\tA\tG\t.\tPASS\t.\tGT\t0|0\t1|1\n"
    )
    v = read_vcf(_vcf(tmp_path, body))
    assert v["chroms"]["1"][1].tolist() == [10, 4295026296]
    assert v["skipped"] == {"a second SNP at the same position": 1}
    with pytest.raises(BiodlInputError, match="POS 0 is not a 1-based position"):
        read_vcf(
            _vcf(
                tmp_path, "1\t5\t.\tA\tT\t.\tPASS\t.\tGT\t0|1\t1|0\n1\t0\t.\tA\tT\t.\tPASS\t.\tGT\t0|1\t1|0\n"
            )
        )


def test_a_damaged_dataset_is_named_and_its_files_are_inputs(tmp_path):
    """dataset.json without a key or with a bad value, a non-shard npz and non-finite parameters
    are clear errors (they were ZeroDivisionError, KeyError, ... or '37 infinite labels' counted
    after the log); predict --out cannot write over the dataset it reads."""
    import json
    import shutil

    from biodl.io._util import check_output_path, command_inputs
    from biodl.kinds.popgen.data import raw_targets

    ds = tmp_path / "ds"
    shutil.copytree(DATA / "flagel_tiny", ds)
    cfg = json.loads((ds / "dataset.json").read_text())
    for key, value, msg in (("chunk", 0, "chunk must be a shard size >= 1"), ("n", None, "has no 'n'")):
        bad = dict(cfg)
        if value is None:
            del bad[key]
        else:
            bad[key] = value
        (ds / "dataset.json").write_text(json.dumps(bad))
        with pytest.raises(BiodlInputError, match=msg):
            read_dataset(ds)
    (ds / "dataset.json").write_text("[1, 2]")
    with pytest.raises(BiodlInputError, match="not a dataset description"):
        read_dataset(ds)
    (ds / "dataset.json").write_text(json.dumps(cfg))
    with command_inputs():
        gs = read_dataset(ds)
        for f in ("dataset.json", "shard-00000.npz"):
            with pytest.raises(BiodlInputError, match="is an input of this command"):
                check_output_path(ds / f)
    rho = gs.param("rho")
    rho[:3] = np.inf
    with pytest.raises(BiodlInputError, match=r"3 simulation\(s\) have a rho that is not a finite number"):
        raw_targets(gs, ["rho"], "regression")
    np.savez(ds / "shard-00000.npz", x=np.zeros(2))
    with pytest.raises(BiodlInputError, match="has no index, offsets, gt, pos, params, stats array"):
        read_dataset(ds)


def test_a_negative_seed_is_refused_first_and_simulations_without_sites_do_not_train(tmp_path):
    from biodl import pipeline
    from biodl.train import TrainConfig

    with pytest.raises(BiodlInputError, match="--seed must be an integer from 0"):
        simulate_dataset("flagel-rho", 2, -1, tmp_path / "neg", workers=1, progress=False)
    assert not (tmp_path / "neg").exists()  # nothing left behind
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("the user's")
    with pytest.raises(BiodlInputError, match=r"holds other files \(notes\.txt\)"):
        simulate_dataset("flagel-rho", 2, 0, tmp_path / "mine", workers=1, progress=False)
    simulate_dataset(
        "flagel-rho", 8, 0, tmp_path / "empty", workers=1, n_haplotypes=4, fixed={"ne": 1}, progress=False
    )
    assert (read_dataset(tmp_path / "empty").n_sites() == 0).all()
    with pytest.raises(BiodlInputError, match="has a segregating site"):
        pipeline.train(
            "popgen-mlp",
            tmp_path / "run",
            options={"data": tmp_path / "empty", "target": ["rho"]},
            config=TrainConfig(max_epochs=1, device="cpu", progress=False),
            quiet=True,
        )


def test_the_sorted_matrix_does_not_depend_on_the_sample_order():
    """Ties in the row sort (the rule with few sites) were broken by input order: reordering a
    VCF's samples changed the CNN's estimates. Any permutation of the haplotypes now gives the
    same matrix."""
    from biodl.kinds.popgen.data import encode_matrix

    rng = np.random.default_rng(0)
    for _ in range(100):
        s = int(rng.integers(1, 8))
        gt = rng.integers(-1, 2, (s, 10))
        pos = np.sort(rng.integers(0, 1000, s))
        perm = rng.permutation(10)
        np.testing.assert_array_equal(
            encode_matrix(gt, pos, 1000.0, 8), encode_matrix(gt[:, perm], pos, 1000.0, 8)
        )


def test_r2_of_estimates_that_are_one_value_is_undefined(capsys):
    """A collapsed model (every estimate 0) scored r2 0.0 and r2_log10 0.0."""
    from biodl.kinds.popgen.kind import regression_metrics

    true = np.array([[100.0], [200.0], [300.0]])
    m = regression_metrics(np.zeros((3, 1)), true, ["rho"])
    assert np.isnan(m["r2"]) and np.isnan(m["r2_log10"]) and m["rmse"] > 0
    assert "r2 is undefined (NaN): the estimates are one value" in capsys.readouterr().err
    # two parameters, one undefined: the mean is the other's (it was NaN, hiding a 0.99)
    est = np.stack([np.zeros(3), [1.0, 2.1, 2.9]], 1)
    m = regression_metrics(est, np.stack([true[:, 0], [1.0, 2.0, 3.0]], 1), ["rho", "theta"])
    assert np.isnan(m["r2/rho"]) and m["r2"] == pytest.approx(m["r2/theta"]) and m["r2"] > 0.95


def test_haplotype_statistics_hold_under_scattered_missing_calls():
    """Keeping only fully called sites read 10 % missing calls as a sweep (H12 0.27 -> 1.0);
    haplotypes that agree wherever both are called are one haplotype."""
    from biodl.kinds.popgen.stats import compute_stats, stat_names

    rng = np.random.default_rng(0)
    n, S, L = 20, 100, 100_000.0
    founders = (rng.random((S, 8)) < 0.4).astype(np.int8)
    gt = founders[:, rng.integers(0, 8, n)]
    pos = np.sort(rng.choice(100_000, S, replace=False)).astype(float)
    names = stat_names(n)
    full = dict(zip(names, compute_stats(gt, pos, L), strict=True))
    holed = gt.copy()
    holed[rng.random(holed.shape) < 0.1] = -1
    assert (holed >= 0).all(axis=1).mean() < 0.2  # few sites fully called
    got = dict(zip(names, compute_stats(holed, pos, L), strict=True))
    for k in ("hap_frac", "H1", "H12", "H123", "w1_hap_frac", "w1_H12", "w3_H12"):
        assert got[k] == pytest.approx(full[k], abs=0.05), k
