"""`biodl predict` on large sequence files: read and scored in pieces (the default,
`pipeline.PREDICT_ROWS` sequences at a time, appended to the output file) against the same
file read whole in one piece, each in its own process; peak resident memory, seconds and the
output files (which must be byte-identical). Then the same for `biodl variants`
(`variants.VARIANT_RECORDS` records a piece) on `--variants` random SNVs of the E. coli K-12
genome in `--data-dir` (checked first; `--variants 0` skips that part), and once more in pieces
with glibc's default malloc settings instead of those the `biodl` command sets.

    python bench/predict_stream.py --n 250000,1000000 --variants 400000

Writes seeded random FASTA files of `--n` sequences of `--length` bp (a test of memory and
speed, not of accuracy) and scores them with an untrained network of `--system` (DeepBind by
default: 101 bp, as the bundled ENCODE files) on the CPU, 1 torch thread. The peak memory of
the pieces should not grow with the file; that of the whole file does.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _rows import (  # noqa: E402
    DEFAULT_DATA_DIR,
    guarded,
    int_list,
    nonneg_int,
    positive_int,
    require_data,
    row,
    writable_file,
    write_json,
)

CHILD = """
import sys, torch
torch.set_num_threads(1)
from biodl.cli import _keep_freed_memory
_keep_freed_memory()  # as the biodl command does (BIODL_DEFAULT_MALLOC=1: glibc's defaults)
from biodl import pipeline
model, fa, out, rows = sys.argv[1:5]
pipeline.predict(model, fa, out=out, quiet=True, keep=False, rows=int(rows))
"""
CHILD_VARIANTS = """
import sys, torch
torch.set_num_threads(1)
from biodl.cli import _keep_freed_memory
_keep_freed_memory()
from biodl.interpret.variants import run_variants
model, vcf, genome, out, rows = sys.argv[1:6]
run_variants(model, vcf, genome, out, keep=False, records=int(rows))
"""
GENOME = "genomes_mcb185/GCF_000005845.2_ASM584v2_genomic.fna.gz"


def make_model(work: Path, system: str, length: int) -> Path:
    import torch

    from biodl.registry import get_recipe
    from biodl.train.checkpoint import RunMeta, save_model

    torch.manual_seed(0)
    recipe = get_recipe(system)
    kwargs = {"n_outputs": 1}
    net = recipe.build(**kwargs)
    meta = RunMeta(
        kind="sequences",
        recipe=system,
        task="binary",
        model_kwargs=kwargs,
        label_names=["bound"],
        data={"seq_len": length},
        status="finished",
    )
    save_model(work / "model.pt", net, meta)
    return work / "model.pt"


def make_fasta(path: Path, n: int, length: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    letters = np.frombuffer(b"ACGT", np.uint8)
    with open(path, "w") as fh:
        for a in range(0, n, 50_000):
            b = min(n, a + 50_000)
            codes = letters[rng.integers(0, 4, (b - a, length))]
            fh.write("".join(f">r{a + i}\n{s.tobytes().decode()}\n" for i, s in enumerate(codes)))


def make_vcf(path: Path, genome: Path, n: int, seed: int = 0) -> None:
    from biodl.io import open_genome

    fa = open_genome(genome)
    chrom = list(fa.keys())[0]
    seq = str(fa[chrom][:]).upper()
    rng = np.random.default_rng(seed)
    pos = np.sort(rng.choice(np.arange(1, len(seq) + 1), size=n, replace=False))
    with open(path, "w") as fh:
        fh.write(f"##fileformat=VCFv4.2\n##contig=<ID={chrom},length={len(seq)}>\n")
        fh.write("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
        for i, p in enumerate(pos.tolist()):
            ref = seq[p - 1]
            alt = "ACGT"[("ACGT".index(ref) + 1 + int(rng.integers(3))) % 4] if ref in "ACGT" else "A"
            fh.write(f"{chrom}\t{p}\tv{i}\t{ref}\t{alt}\t.\t.\t.\n")


def measure(
    model: Path,
    fa: Path,
    out: Path,
    rows: int,
    *extra: Path,
    child: str = CHILD,
    default_malloc: bool = False,
) -> tuple[float, float]:
    """(seconds, peak RSS GiB) of one `pipeline.predict` (or `run_variants`) in a fresh process,
    with the biodl command's malloc settings (or glibc's defaults)."""
    t = time.perf_counter()
    args = [str(model), str(fa), *map(str, extra), str(out), str(rows)]
    env = dict(os.environ, **({"BIODL_DEFAULT_MALLOC": "1"} if default_malloc else {}))
    p = subprocess.Popen([sys.executable, "-c", child, *args], env=env)
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode:
        sys.exit(f"error: predict failed (exit {p.returncode})")
    return time.perf_counter() - t, usage.ru_maxrss / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--n",
        type=int_list(0),
        default="250000,1000000",
        help="comma-separated numbers of sequences (0: none)",
    )
    ap.add_argument("--length", type=positive_int, default=101)
    ap.add_argument("--system", default="deepbind")
    ap.add_argument(
        "--variants",
        type=nonneg_int,
        default=400_000,
        help="SNVs to score with biodl variants (0: skip that part)",
    )
    ap.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR), help=f"folder holding {GENOME}")
    ap.add_argument("--work", type=Path, default=None, help="folder for the files (default: a temporary one)")
    ap.add_argument("--json", type=writable_file, default=None, help="also write the rows here")
    a = ap.parse_args()
    if not a.variants and not any(int(x) > 0 for x in a.n.split(",") if x.strip()):
        ap.error("nothing to run: every --n is 0 and --variants is 0")

    root = None
    if a.variants:  # checked before any work
        root = require_data("predict_stream.py", a.data_dir, [GENOME], "bench/DATA.md (Sequences)")
    from biodl.pipeline import PREDICT_ROWS

    work = a.work or Path(tempfile.mkdtemp(prefix="biodl-stream-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    model = make_model(work, a.system, a.length)
    rows = []
    print(f"{a.system}, {a.length} bp, pieces of {PREDICT_ROWS:,} vs the whole file; 1 torch thread, CPU")
    head = ("sequences", "FASTA MB", "pieces s", "GiB", "whole s", "GiB", "mem ratio")
    print(" ".join(f"{h:>{w}}" for h, w in zip(head, (10, 9, 9, 6, 8, 6, 9), strict=True)) + " same")
    for n in (int(x) for x in a.n.split(",") if int(x) > 0):  # --n 0: variants only
        fa = work / f"r{n}.fa"
        if not fa.exists():
            make_fasta(fa, n, a.length)
        s_p, m_p = measure(model, fa, work / f"p{n}.tsv", PREDICT_ROWS)
        s_w, m_w = measure(model, fa, work / f"w{n}.tsv", n)
        same = (work / f"p{n}.tsv").read_bytes() == (work / f"w{n}.tsv").read_bytes()
        mb = fa.stat().st_size / 1e6
        print(f"{n:>10,} {mb:>9.0f} {s_p:>9.1f} {m_p:>6.2f} {s_w:>8.1f} {m_w:>6.2f} {m_w / m_p:>9.2f} {same}")
        note = f"{n:,} x {a.length} bp, {a.system}; same output: {same}"
        rows += [
            row(f"pieces: peak RSS GiB ({n:,} sequences)", [m_p], unit=" GiB", note=note),
            row(f"whole file: peak RSS GiB ({n:,} sequences)", [m_w], unit=" GiB", note=note),
            row(f"whole file / pieces, peak RSS ({n:,} sequences)", [m_w / m_p], note=note),
            row(f"whole file / pieces, seconds ({n:,} sequences)", [s_w / s_p], note=note),
        ]
        for f in (work / f"p{n}.tsv", work / f"w{n}.tsv"):
            f.unlink()
    if a.variants:
        from biodl.interpret.variants import VARIANT_RECORDS

        genome, vcf, n = root / GENOME, work / f"snv{a.variants}.vcf", a.variants
        if not vcf.exists():
            make_vcf(vcf, genome, n)
        s_p, m_p = measure(model, vcf, work / "vp.tsv", VARIANT_RECORDS, genome, child=CHILD_VARIANTS)
        s_w, m_w = measure(model, vcf, work / "vw.tsv", n, genome, child=CHILD_VARIANTS)
        s_d, m_d = measure(
            model, vcf, work / "vd.tsv", VARIANT_RECORDS, genome, child=CHILD_VARIANTS, default_malloc=True
        )
        same = all((work / f).read_bytes() == (work / "vp.tsv").read_bytes() for f in ("vw.tsv", "vd.tsv"))
        print(
            f"variants: {n:,} SNVs, window {a.length} bp; pieces of {VARIANT_RECORDS:,} records: "
            f"{s_p:.1f} s, {m_p:.2f} GiB; whole VCF: {s_w:.1f} s, {m_w:.2f} GiB (memory ratio "
            f"{m_w / m_p:.2f}); pieces with glibc's default malloc settings: {s_d:.1f} s, {m_d:.2f} GiB "
            f"({s_d / s_p:.2f}x the time); same table: {same}"
        )
        note = (
            f"{n:,} SNVs, {a.length} bp, {a.system}; pieces {s_p:.1f} s, whole {s_w:.1f} s, default malloc "
            f"{s_d:.1f} s; same table: {same}"
        )
        rows += [
            row(f"variants, pieces: peak RSS GiB ({n:,} SNVs)", [m_p], unit=" GiB", note=note),
            row(f"variants, whole VCF: peak RSS GiB ({n:,} SNVs)", [m_w], unit=" GiB", note=note),
            row(f"variants, whole VCF / pieces, peak RSS ({n:,} SNVs)", [m_w / m_p], note=note),
            row(f"variants, glibc default malloc / biodl's, seconds ({n:,} SNVs)", [s_d / s_p], note=note),
        ]
    write_json(a.json, rows)


if __name__ == "__main__":
    guarded(main)
