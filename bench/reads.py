"""Read classification beside Kraken2: same reference genomes, same taxonomy, same ART reads.

Parts (``--parts a,b,c``):

* ``a`` reads of genomes in the reference: ART 2x150 bp pairs (HiSeq 2500 profile, seeded) from
  each of the 9 genomes; species and genus accuracy of ``read-classifier`` (and ``read-bilstm``
  unless ``--no-bilstm``) and of Kraken2 on the same pairs.
* ``b`` strain exclusion (Kraken2 paper, in miniature): the reference and Kraken2's database
  without Blochmannia vafer and Corynebacterium pseudotuberculosis; their reads classified;
  genus-level sensitivity (correct genus calls / reads) and PPV (correct / reads called at genus
  level or below), for the model at several confidence thresholds and Kraken2 at its default and
  ``--confidence`` values.
* ``c`` throughput on ``--n-throughput`` single ART reads (default 1,000,000) on 1 and 2 cores:
  reads/s (wall clock, start-up included) and peak resident memory of the process tree (sampled
  every 50 ms) for both tools, and the size of Kraken2's hash table and of the model file.

``--bits 32,8,4`` runs the model with its float32 k-mer table and with copies quantised to 8 and
4 bits (``biodl reads quantize``, written beside the model as ``model.q8.pt`` / ``model.q4.pt``
once); ``--engines auto,torch`` adds to (c) the rows of ``biodl reads classify --engine torch``
with the float32 model (the path before the numpy engine, the CPU default). Models are trained
only when their ``model.pt`` is missing.

Needs the Debian packages ``kraken2`` and ``art-nextgen-simulation-tools`` (``art_illumina``):
``apt-get install kraken2 art-nextgen-simulation-tools``. Genomes from ``--data-dir`` (default
``../shared/data``): ``reads_genomes/`` (7 genomes), ``genomes_small/`` (C. diphtheriae) and
``genomes_mcb185/`` (E. coli K-12); the taxonomy is ``tests/data/reads/taxonomy.tsv``.
Everything is kept in ``--work`` (a rerun reuses simulations, databases and models).

Run: ``nice -n 10 python bench/reads.py [--data-dir ../shared/data] [--quick]``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shlex
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _rows import guarded, positive_int  # noqa: E402
from _rows import names_of as name_list  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TAXONOMY = ROOT / "tests" / "data" / "reads" / "taxonomy.tsv"
BIODL = [str(Path(sys.executable).parent / "biodl")]
GENOMES = {
    "reads_genomes": [
        "Blochmannia_endosymbiont_Polyrhachis_turneri_675",
        "Blochmannia_floridanus",
        "Blochmannia_pennsylvanicus_BPEN",
        "Blochmannia_vafer_BVAF",
        "Caulobacter_crescentus_CB15",
        "Corynebacterium_glutamicum_ATCC13032",
        "Corynebacterium_pseudotuberculosis_CIP5297",
    ],
    "genomes_small": ["GCF_001457455.1_NCTC11397_genomic"],
    "genomes_mcb185": ["GCF_000005845.2_ASM584v2_genomic"],
}
EXCLUDED = ["Blochmannia_vafer_BVAF", "Corynebacterium_pseudotuberculosis_CIP5297"]
LOG: list[str] = []


def say(msg: str = "") -> None:
    print(msg, flush=True)
    LOG.append(msg)


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    say(f"$ {shlex.join(str(c) for c in cmd)}")
    r = subprocess.run([str(c) for c in cmd], text=True, capture_output=True, **kw)
    if r.returncode != 0:
        sys.exit(f"failed ({r.returncode}): {r.stderr[-2000:]}")
    return r


def measured(cmd: list[str], stdout=None) -> tuple[float, float]:
    """Wall seconds and peak resident memory (MiB, summed over the process tree, 50 ms samples)."""
    import psutil

    say(f"$ {shlex.join(str(c) for c in cmd)}")
    t0 = time.time()
    p = subprocess.Popen([str(c) for c in cmd], stdout=stdout or subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = [0]
    pp = psutil.Process(p.pid)

    def watch():
        while p.poll() is None:
            try:
                rss = pp.memory_info().rss + sum(c.memory_info().rss for c in pp.children(recursive=True))
                peak[0] = max(peak[0], rss)
            except psutil.Error:
                pass
            time.sleep(0.05)

    th = threading.Thread(target=watch, daemon=True)
    th.start()
    _, err = p.communicate()
    th.join()
    if p.returncode != 0:
        sys.exit(f"error: failed ({p.returncode}): {err.decode()[-2000:]}")
    return time.time() - t0, peak[0] / 2**20


def need_tools() -> None:
    missing = [t for t in ("kraken2", "kraken2-build", "art_illumina") if shutil.which(t) is None]
    if missing:
        sys.exit(
            f"error: bench/reads.py: missing {', '.join(missing)}: install the Debian packages (as root) "
            "with\n"
            "  apt-get install kraken2 art-nextgen-simulation-tools"
        )


def genome_files(data_dir: Path) -> dict[str, Path]:
    out, missing = {}, []
    for sub, names in GENOMES.items():
        for n in names:
            p = data_dir / sub / f"{n}.fna.gz"
            (out.__setitem__(n, p) if p.exists() else missing.append(str(p)))
    if missing:
        sys.exit(
            "error: missing genomes (give --data-dir the project's data folder, ../shared/data; where they "
            "come from: bench/DATA.md, Sequences):\n  " + "\n  ".join(missing)
        )
    return out


# ------------------------------------------------------------------------------ set-up
def biodl_reference(work: Path, name: str, genomes: dict[str, Path]) -> Path:
    ref = work / name
    if not (ref / "reference.json").exists():
        run([*BIODL, "reads", "build-reference", *genomes.values(), "--taxonomy", TAXONOMY, "--out", ref])
    return ref


def kraken_db(work: Path, name: str, ref: Path, genomes: dict[str, Path], threads: int = 2) -> Path:
    """kraken2-build on a custom library: the genomes with kraken:taxid headers (taxids of the
    biodl reference), its nodes.dmp / names.dmp."""
    db = work / name
    if (db / "hash.k2d").exists():
        return db
    if db.exists():
        shutil.rmtree(db)
    (db / "taxonomy").mkdir(parents=True)
    for f in ("nodes.dmp", "names.dmp"):
        shutil.copy(ref / "taxonomy" / f, db / "taxonomy" / f)
    seqmap = dict(
        line.split("\t") for line in (ref / "taxonomy" / "seqid2taxid.map").read_text().splitlines()
    )
    lib = work / f"{name}_fasta"
    lib.mkdir(exist_ok=True)
    for g, path in genomes.items():
        out = lib / f"{g}.fa"
        with gzip.open(path, "rt") as src, open(out, "w") as dst:
            for line in src:
                if line.startswith(">"):
                    sid = line[1:].split()[0]
                    line = f">{sid}|kraken:taxid|{seqmap[sid]}\n"
                dst.write(line)
        run(["kraken2-build", "--add-to-library", out, "--db", db, "--no-masking"])
    t0 = time.time()
    run(["kraken2-build", "--build", "--db", db, "--threads", threads])
    say(f"kraken2-build --build: {time.time() - t0:.0f} s")
    return db


def art(
    work: Path, genomes: dict[str, Path], pairs: int, seed: int, tag: str
) -> dict[str, tuple[Path, Path]]:
    """ART 2x150 bp pairs (HS25, mean fragment 400, sd 50), ``pairs`` per genome, seeded."""
    out = {}
    d = work / f"art_{tag}"
    d.mkdir(exist_ok=True)
    for i, (g, path) in enumerate(genomes.items()):
        prefix = d / g
        r1, r2 = Path(f"{prefix}1.fq"), Path(f"{prefix}2.fq")
        if not r2.exists():
            fa = d / f"{g}.fa"
            with gzip.open(path, "rb") as src, open(fa, "wb") as dst:
                shutil.copyfileobj(src, dst)
            total = sum(len(line.strip()) for line in open(fa) if not line.startswith(">"))
            fold = pairs * 300 / total * 1.02
            run(
                [
                    "art_illumina",
                    "-ss",
                    "HS25",
                    "-i",
                    fa,
                    "-p",
                    "-l",
                    "150",
                    "-f",
                    f"{fold:.6f}",
                    "-m",
                    "400",
                    "-s",
                    "50",
                    "-rs",
                    seed + i,
                    "-na",
                    "-o",
                    prefix,
                ]
            )
            fa.unlink()
        out[g] = (r1, r2)
    return out


def head_pairs(files: dict[str, tuple[Path, Path]], n: int, out: Path) -> tuple[Path, Path, dict[str, str]]:
    """The first ``n`` pairs of each genome, concatenated; truth: read id -> genome."""
    truth = {}
    o1, o2 = Path(f"{out}_1.fq"), Path(f"{out}_2.fq")
    with open(o1, "w") as a, open(o2, "w") as b:
        for g, (r1, r2) in files.items():
            for src, dst in ((r1, a), (r2, b)):
                with open(src) as fh:
                    for i, line in enumerate(fh):
                        if i >= 4 * n:
                            break
                        if i % 4 == 0 and src == r1:
                            truth[line[1:].split()[0].removesuffix("/1")] = g
                        dst.write(line)
    return o1, o2, truth


# ------------------------------------------------------------------------------- scoring
def lineage_table() -> pd.DataFrame:
    return pd.read_csv(TAXONOMY, sep="\t").set_index("genome")


def names_of(ref: Path) -> tuple[dict[int, str], dict[int, str], dict[int, int]]:
    names, ranks, parent = {}, {}, {}
    for line in (ref / "taxonomy" / "names.dmp").read_text().splitlines():
        f = [x.strip() for x in line.split("|")]
        names[int(f[0])] = f[1]
    for line in (ref / "taxonomy" / "nodes.dmp").read_text().splitlines():
        f = [x.strip() for x in line.split("|")]
        parent[int(f[0])], ranks[int(f[0])] = int(f[1]), f[2]
    return names, ranks, parent


def call_at(taxid: int, rank: str, tax) -> str:
    """The name at ``rank`` of a call (``""`` when the call is above that rank or unclassified)."""
    names, ranks, parent = tax
    order = ["species", "genus", "family", "order", "class", "phylum"]
    t = taxid
    while t in ranks and t != 1:
        if ranks[t] == rank:
            return names[t]
        if ranks[t] in order and order.index(ranks[t]) > order.index(rank):
            return ""
        t = parent[t]
    return ""


def score(calls: dict[str, int], truth: dict[str, str], tax, rank: str) -> dict[str, float]:
    """Sensitivity (correct at ``rank`` / reads) and PPV (correct / called at ``rank`` or below)."""
    lin = lineage_table()
    correct = called = 0
    for rid, g in truth.items():
        got = call_at(calls.get(rid, 0), rank, tax)
        if got:
            called += 1
            correct += got == lin.loc[g, rank]
    n = len(truth)
    return {"sensitivity": correct / n, "ppv": correct / called if called else float("nan"), "n": n}


def kraken_calls(path: Path) -> dict[str, int]:
    out = {}
    with open(path) as fh:
        for line in fh:
            f = line.split("\t", 4)
            out[f[1].removesuffix("/1")] = int(f[2])
    return out


def biodl_calls(path: Path) -> dict[str, int]:
    df = pd.read_csv(path, sep="\t", usecols=["id", "taxid"], dtype={"id": str})
    return dict(zip(df["id"].str.removesuffix("/1"), df["taxid"].astype(int), strict=True))


def kraken_classify(db: Path, r1: Path, r2: Path | None, out: Path, threads: int = 2, conf: float = 0.0):
    cmd = ["kraken2", "--db", db, "--threads", threads, "--output", out, "--confidence", conf]
    cmd += ["--paired", r1, r2] if r2 is not None else [r1]
    return measured(cmd)


def biodl_classify(
    model: Path, r1: Path, r2: Path | None, out: Path, threads: int = 2, conf=None, engine: str = "auto"
):
    cmd = [*BIODL, "reads", "classify", model, r1, "--output", out, "--threads", threads, "--no-progress"]
    cmd += ["--mate2", r2] if r2 is not None else []
    cmd += ["--confidence", conf] if conf is not None else []
    cmd += ["--engine", engine] if engine != "auto" else []
    return measured(cmd)


def quantized(model: Path, bits: int) -> Path:
    """``model`` itself (``bits`` 32) or its copy with a ``bits``-bit k-mer table (made once)."""
    if bits == 32:
        return model
    q = model.parent / f"model.q{bits}.pt"
    if not q.exists():
        run([*BIODL, "reads", "quantize", model, "--bits", bits, "--out", q])
    return q


def table_label(bits: int) -> str:
    return {32: "float32", 8: "8-bit", 4: "4-bit"}[bits]


def train(ref: Path, out: Path, system: str, args, extra: list[str]) -> Path:
    if not (out / "model.pt").exists():
        t0 = time.time()
        run(
            [
                *BIODL,
                "train",
                "--system",
                system,
                "--data",
                ref,
                "--out",
                out,
                "--no-progress",
                "--seed",
                args.seed,
                "--device",
                "cpu",
                *extra,
            ]
        )
        say(f"trained {system} in {(time.time() - t0) / 60:.1f} min")
    return out / "model.pt"


# --------------------------------------------------------------------------------- parts
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--work", type=Path, default=ROOT / "bench" / "out" / "reads")
    ap.add_argument("--parts", type=name_list("abc", "part"), default="a,b,c")
    ap.add_argument("--pairs", type=positive_int, default=5000, help="ART pairs per genome for (a) and (b)")
    ap.add_argument("--n-throughput", type=positive_int, default=1_000_000)
    ap.add_argument("--reads-per-epoch", type=positive_int, default=200_000)
    ap.add_argument("--epochs", type=positive_int, default=6)
    ap.add_argument("--bilstm-reads", type=positive_int, default=40_000)
    ap.add_argument("--no-bilstm", action="store_true")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--bits",
        type=name_list(("32", "8", "4"), "k-mer table"),
        default="32",
        help="k-mer tables to run: 32 (float32), 8, 4 (comma-separated)",
    )
    ap.add_argument(
        "--engines",
        type=name_list(("auto", "numpy", "torch"), "engine"),
        default="auto",
        help="biodl engines for (c): auto (numpy), torch",
    )
    ap.add_argument("--quick", action="store_true", help="small sizes: a plumbing check, not the figures")
    args = ap.parse_args()
    if args.quick:
        args.pairs, args.n_throughput, args.reads_per_epoch, args.epochs, args.bilstm_reads = (
            300,
            20000,
            20000,
            2,
            4000,
        )
    files = genome_files(args.data_dir)  # the data, then the tools: both before any work
    need_tools()
    parts = set(args.parts.split(","))
    bits_list = [int(b) for b in args.bits.split(",")]
    engines = args.engines.split(",")
    if any(b not in (32, 8, 4) for b in bits_list):
        sys.exit(f"--bits takes 32, 8 and 4, got {args.bits}")
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    results: dict = {"args": {k: str(v) for k, v in vars(args).items()}}
    ref_full = biodl_reference(work, "ref_full", files)
    db_full = kraken_db(work, "k2_full", ref_full, files)
    tax_full = names_of(ref_full)
    per_genome = max(args.pairs, args.n_throughput // len(files) + 1)
    sim = art(work, files, per_genome, args.seed, f"{per_genome}x2")
    opts = ["--set", f"reads_per_epoch={args.reads_per_epoch}", "--epochs", args.epochs]
    model = train(ref_full, work / "run_full", "read-classifier", args, opts) if parts & {"a", "c"} else None

    if "a" in parts:
        say("\n## (a) reads of genomes in the reference")
        r1, r2, truth = head_pairs(sim, args.pairs, work / "a_pairs")
        say(f"{len(truth):,} ART pairs ({args.pairs:,} per genome, 9 genomes)")
        rows = {}
        secs, mem = kraken_classify(db_full, r1, r2, work / "a_kraken.txt")
        kc = kraken_calls(work / "a_kraken.txt")
        rows["Kraken2 2.1.2"] = {r: score(kc, truth, tax_full, r) for r in ("species", "genus")}
        for bits in bits_list:
            tag = "" if bits == 32 else f"_q{bits}"
            biodl_classify(quantized(model, bits), r1, r2, work / f"a_biodl{tag}.tsv")
            bc = biodl_calls(work / f"a_biodl{tag}.tsv")
            rows[f"read-classifier, {table_label(bits)} table"] = {
                r: score(bc, truth, tax_full, r) for r in ("species", "genus")
            }
        if not args.no_bilstm:
            bl = train(
                ref_full,
                work / "run_bilstm",
                "read-bilstm",
                args,
                ["--set", f"reads_per_epoch={args.bilstm_reads}", "--epochs", max(2, args.epochs // 2)],
            )
            biodl_classify(bl, r1, r2, work / "a_bilstm.tsv")
            rows["read-bilstm"] = {
                r: score(biodl_calls(work / "a_bilstm.tsv"), truth, tax_full, r) for r in ("species", "genus")
            }
        say("| tool | species accuracy | genus accuracy | species PPV | genus PPV |")
        say("|---|---|---|---|---|")
        for k, v in rows.items():
            s, g = v["species"], v["genus"]
            say(
                f"| {k} | {s['sensitivity']:.4f} | {g['sensitivity']:.4f} | {s['ppv']:.4f} | {g['ppv']:.4f} |"
            )
        results["a"] = rows

    if "b" in parts:
        say("\n## (b) strain exclusion: " + ", ".join(EXCLUDED) + " removed from the reference")
        kept = {g: p for g, p in files.items() if g not in EXCLUDED}
        ref_ex = biodl_reference(work, "ref_excl", kept)
        db_ex = kraken_db(work, "k2_excl", ref_ex, kept)
        tax_ex = names_of(ref_ex)
        model_ex = train(ref_ex, work / "run_excl", "read-classifier", args, opts)
        # the model's own threshold for absent organisms: shadow models, each trained without one species
        # of each genus that has two (never the excluded strains scored below), every such species held
        # out once (--folds all), as biodl users would
        cal = run(
            [*BIODL, "reads", "calibrate-novel", work / "run_excl", "--fragment", "400", "--folds", "all"]
        )
        say(cal.stdout.strip().replace("\n", " "))
        results["b_calibration"] = json.loads(
            (work / "run_excl" / "novel-calibration" / "calibration.json").read_text()
        )
        results["b_calibration"].pop("curve", None)
        r1, r2, truth = head_pairs({g: sim[g] for g in EXCLUDED}, args.pairs, work / "b_pairs")
        say(f"{len(truth):,} ART pairs of the excluded genomes")
        rows = {}
        for conf in (0.0, 0.05, 0.1):
            kraken_classify(db_ex, r1, r2, work / f"b_kraken_{conf}.txt", conf=conf)
            rows[f"Kraken2 --confidence {conf}"] = score(
                kraken_calls(work / f"b_kraken_{conf}.txt"), truth, tax_ex, "genus"
            )
        for bits in bits_list:
            for conf in (None, 0.5, 0.7, 0.95, 0.99):
                tag = "model's (calibrate-novel)" if conf is None else conf
                q = "" if bits == 32 else f"_q{bits}"
                f = work / f"b_biodl{q}_{'model' if conf is None else conf}.tsv"
                biodl_classify(quantized(model_ex, bits), r1, r2, f, conf=conf)
                rows[f"read-classifier ({table_label(bits)}) confidence {tag}"] = score(
                    biodl_calls(f), truth, tax_ex, "genus"
                )
        say("| tool | genus sensitivity | genus PPV | reads |")
        say("|---|---|---|---|")
        for k, v in rows.items():
            say(f"| {k} | {v['sensitivity']:.4f} | {v['ppv']:.4f} | {v['n']:,} |")
        results["b"] = rows

    if "c" in parts:
        say(f"\n## (c) throughput: {args.n_throughput:,} single 150 bp ART reads")
        big = work / "c_reads.fq"
        if not big.exists():
            per = args.n_throughput // len(files) + 1
            n = 0
            with open(big, "w") as out:
                for _g, (r1, _) in sim.items():
                    with open(r1) as fh:
                        for i, line in enumerate(fh):
                            if i >= 4 * per or n >= 4 * args.n_throughput:
                                break
                            out.write(line)
                            n += 1
        n_reads = sum(1 for _ in open(big)) // 4
        say(f"{n_reads:,} reads in {big}")
        k2_size = sum(f.stat().st_size for f in db_full.glob("*.k2d")) / 2**20
        models = {bits: quantized(model, bits) for bits in bits_list}
        model_size = {table_label(b): p.stat().st_size / 2**20 for b, p in models.items()}
        rows = {}
        for threads in (1, 2):
            s, m = kraken_classify(db_full, big, None, work / "c_kraken.txt", threads=threads)
            rows[f"Kraken2, {threads} thread(s)"] = {"reads/s": n_reads / s, "seconds": s, "peak MiB": m}
            for engine in engines:
                for bits, path in models.items():
                    if engine == "torch" and bits != 32:
                        continue  # the torch engine: the row of the float32 model as before
                    s, m = biodl_classify(
                        path, big, None, work / "c_biodl.tsv", threads=threads, engine=engine
                    )
                    eng = "numpy" if engine == "auto" else engine
                    rows[f"read-classifier {table_label(bits)}, {eng}, {threads} worker(s)"] = {
                        "reads/s": n_reads / s,
                        "seconds": s,
                        "peak MiB": m,
                    }
        say("| tool | reads/s | seconds | peak RSS (MiB) |")
        say("|---|---|---|---|")
        for k, v in rows.items():
            say(f"| {k} | {v['reads/s']:,.0f} | {v['seconds']:.1f} | {v['peak MiB']:.0f} |")
        sizes = ", ".join(f"{k} {v:.1f} MiB" for k, v in model_size.items())
        say(f"Kraken2 database (hash.k2d + opts + taxo): {k2_size:.1f} MiB; biodl model files: {sizes}")
        results["c"] = {"rows": rows, "kraken_db_mib": k2_size, "model_mib": model_size, "n": n_reads}
    (work / "results.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    (work / "log.md").write_text("\n".join(LOG) + "\n")
    say(f"\nresults: {work / 'results.json'}; log with every command: {work / 'log.md'}")


if __name__ == "__main__":
    guarded(main)
