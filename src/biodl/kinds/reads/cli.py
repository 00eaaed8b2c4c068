"""``biodl reads ...``: build a reference, sample labelled reads, classify a stream of reads,
quantise a model's k-mer table.
Loaded by :mod:`biodl.cli` through ``register(app)``; imports no torch."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from biodl.errors import BiodlError, BiodlInputError, exit_with, stdout_console

reads_app = typer.Typer(
    no_args_is_help=True,
    help="DNA reads: build a reference with its taxonomy, classify reads as they stream in.",
)
err = Console(stderr=True, soft_wrap=True, emoji=False, markup=False, highlight=False)


_fail = exit_with  # print the error, exit 2


@reads_app.command("build-reference")
def build_reference_cmd(
    genomes: list[Path] = typer.Argument(..., help="Genome FASTA files (plain or gzip)."),
    taxonomy: Path = typer.Option(
        ...,
        "--taxonomy",
        help="TSV: header 'genome<TAB>species<TAB>genus[<TAB>family ...]', one row per genome file "
        "(name with or without extensions); with --nodes/--names: 'genome<TAB>taxid'.",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Reference directory to write."),
    nodes: Path | None = typer.Option(None, "--nodes", help="NCBI nodes.dmp (with --names)."),
    names: Path | None = typer.Option(None, "--names", help="NCBI names.dmp (with --nodes)."),
) -> None:
    """Index genomes with their taxonomy into a reference directory to train on (2-bit sequence,
    contigs, taxonomy; also nodes.dmp / names.dmp / seqid2taxid.map for Kraken2).

    Example: biodl reads build-reference genomes/*.fna.gz --taxonomy taxa.tsv --out ref
    """
    from biodl.kinds.reads.io import build_reference

    try:
        ref = build_reference(genomes, taxonomy, out, nodes=nodes, names=names)
    except BiodlError as e:
        _fail(e)
    sizes = ", ".join(f"{len(n)} {r}" for r, n in zip(ref.ranks, ref.taxonomy.names, strict=True))
    stdout_console().print(f"reference {out}: {len(ref.genomes)} genomes, {len(ref.codes):,} bp; {sizes}")


@reads_app.command("sample")
def sample_cmd(
    reference: Path = typer.Argument(..., help="Reference directory."),
    n: int = typer.Option(..., "--n", help="Number of reads."),
    out: Path = typer.Option(..., "--out", "-o", help="FASTQ (or .fa / .fasta: FASTA), .gz to compress."),
    seed: int = typer.Option(0, help="Seed: read i depends only on (seed, i)."),
    length: int = typer.Option(150, "--length", help="Read length (bp)."),
    error_rate: float = typer.Option(0.01, help="Substitution rate per base."),
    genomes: str | None = typer.Option(None, help="Only these genomes (comma-separated names)."),
) -> None:
    """Sample labelled reads from a reference (uniform species, both strands, substitution errors;
    'taxon=SPECIES' in each header) -- the seeded sampler training uses; for Illumina-like reads use
    a simulator such as ART.

    Example: biodl reads sample ref --n 1000 --seed 1 --out reads.fq.gz
    """
    import numpy as np

    from biodl.errors import BiodlInputError
    from biodl.kinds.reads.data import check_read_length, decode, sample_reads
    from biodl.kinds.reads.io import load_reference, write_reads

    try:
        from biodl.train.fit import check_seed

        check_seed(seed)
        if n < 1 or length < 16:
            raise BiodlInputError("--n must be at least 1 and --length at least 16")
        ref = load_reference(reference)
        sel = None
        if genomes:
            want = [g.strip() for g in genomes.split(",") if g.strip()]
            names = [g["name"] for g in ref.genomes]
            bad = [g for g in want if g not in names]
            if bad:
                raise BiodlInputError(f"not in the reference: {', '.join(bad)} (it has {', '.join(names)})")
            sel = np.array([names.index(g) for g in want])
        if not 0 <= error_rate <= 1:
            raise BiodlInputError(f"--error-rate must be between 0 and 1, got {error_rate:g}")
        gs = np.arange(len(ref.genomes)) if sel is None else sel
        longest = int(ref.contigs[np.isin(ref.contigs[:, 0], gs), 2].max())
        if length > longest:
            raise BiodlInputError(
                f"--length {length} is longer than every contig of the genomes sampled (the longest has "
                f"{longest:,} bp)"
            )
        check_read_length(ref, length, gs, "--length")
        codes, leaf, _ = sample_reads(
            ref, np.arange(n), read_len=length, error_rate=error_rate, seed=seed, stream=7, genomes=sel
        )
        species = ref.taxonomy.names[0]
        low = str(out).lower().removesuffix(".gz")
        write_reads(
            out,
            [f"read{i + 1}" for i in range(n)],
            decode(codes),
            [species[i] for i in leaf],
            fastq=not low.endswith((".fa", ".fasta", ".fna")),
        )
    except BiodlError as e:
        _fail(e)
    stdout_console().print(f"{n} reads in {out}")


@reads_app.command("classify")
def classify_cmd(
    model: Path = typer.Argument(..., help="Read model: run directory or its model.pt."),
    inputs: list[str] = typer.Argument(..., help="FASTQ / FASTA files, plain or gzip; - for standard input."),
    output: Path | None = typer.Option(
        None,
        "--output",
        "--out",
        "-o",
        help="Per-read TSV, .gz to compress (default: standard output, as it goes).",
    ),
    report: Path | None = typer.Option(
        None, "--report", "-r", help="Kraken-style report (counts per taxon)."
    ),
    mate2: list[str] | None = typer.Option(None, "--mate2", help="Second reads of pairs (one per input)."),
    batch_size: int = typer.Option(4096, help="Reads per batch."),
    threads: int = typer.Option(
        1,
        "--threads",
        "-t",
        help="Workers hashing and scoring: threads sharing one model (numpy engine) or processes "
        "with a model each (torch engine).",
    ),
    device: str = typer.Option(
        "cpu", "--device", help="cpu, cuda, cuda:N, mps or auto (the network on the GPU; torch engine)."
    ),
    engine: str = typer.Option(
        "auto",
        "--engine",
        help="numpy (no torch; memory-mapped table; read-classifier on the CPU), torch, or auto: "
        "numpy where it can run.",
    ),
    scheduler: str | None = typer.Option(
        None, "--scheduler", help="Dask scheduler address (tcp://host:8786), or 'local' for a LocalCluster."
    ),
    confidence: float | None = typer.Option(
        None, "--confidence", help="Calibrated confidence needed at a rank (default: the model's)."
    ),
    progress: bool = typer.Option(
        True,
        help="Progress line with reads/s on standard error (rewritten in place on a terminal, else a "
        "plain line at most every 30 s), then a JSON summary.",
    ),
) -> None:
    """Classify reads as they stream in: one line per read (id, taxon, taxid, rank, confidence),
    written batch by batch, and a Kraken-style report; memory stays flat whatever the input size.

    Example: biodl reads classify runs/reads reads.fq.gz --report report.txt > calls.tsv
    """
    from biodl.kinds.reads.classify import classify
    from biodl.kinds.reads.engine import keep_freed_memory

    keep_freed_memory()
    try:
        if confidence is not None and not 0 <= confidence <= 1:
            raise BiodlError(f"--confidence must be between 0 and 1, got {confidence}")
        r = classify(
            model,
            inputs,
            output=output,
            report=report,
            mate2=mate2 or None,
            batch_size=batch_size,
            threads=threads,
            device=device,
            scheduler=scheduler,
            min_confidence=confidence,
            progress=progress,
            engine=engine,
        )
    except BiodlError as e:
        _fail(e)
    except BrokenPipeError:  # the reader of standard output stopped (| head): stop quietly, as cat does
        import os
        import sys

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(0) from None
    if r["n"] == 0:
        err.print(f"[biodl] note: no reads in {', '.join(inputs)}: nothing was classified")
    elif r["shorter_than_k"]:
        err.print(
            f"[biodl] note: {r['shorter_than_k']:,} of {r['n']:,} reads hold no k-mer (shorter than the "
            f"model's k, {r['k']}, or without {r['k']} A/C/G/T in a row): they are reported unclassified"
        )
    if progress:
        summary = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items() if k != "counts"}
        err.print(f"[biodl] {json.dumps(summary)}", highlight=False, markup=False)


@reads_app.command("quantize")
def quantize_cmd(
    model: Path = typer.Argument(..., help="A trained read-classifier: run directory or its model.pt."),
    out: Path = typer.Option(..., "--out", "-o", help="Model file to write (e.g. run/model.q4.pt)."),
    bits: int = typer.Option(4, "--bits", help="8 (1 byte a value) or 4 (two values a byte)."),
) -> None:
    """Quantise a read-classifier's k-mer table to 8 or 4 bits a value (per-column scale and
    offset; the rest of the network unchanged): 2^22 x 16 goes from 256 MiB to 64 MiB (8 bits) or
    32 MiB (4 bits). The new file classifies like any model (biodl reads classify, biodl evaluate);
    the table is never expanded back to float32.

    Example: biodl reads quantize runs/reads --bits 4 --out runs/reads/model.q4.pt
    """
    from biodl.kinds.reads.weights import quantize_model

    try:
        r = quantize_model(model, out, bits)
    except BiodlError as e:
        _fail(e)
    stdout_console().print(
        f"{out}: k-mer table {bits}-bit, {r['table_bytes'] / 2**20:.1f} MiB "
        f"(file {r['file_bytes'] / 2**20:.1f} MiB); rms error {r['rms_error']:.4f} "
        f"(values' sd {r['table_std']:.4f})",
        highlight=False,
    )


@reads_app.command("calibrate-novel")
def calibrate_novel_cmd(
    run: Path = typer.Argument(..., help="Run directory of a trained read model (biodl train --out)."),
    holdout: list[str] = typer.Option(
        None,
        "--holdout",
        help="Genome or species of the reference to hold out (repeat; default: one species of each genus "
        "with two or more, chosen with the run's seed).",
    ),
    folds: str = typer.Option(
        "1",
        "--folds",
        help="Shadow models, each holding out another species of each genus with two or more; their "
        "reads are pooled ('all': every such species held out once). One training run each.",
    ),
    rank: str = typer.Option("genus", "--rank", help="Rank whose calls must reach --target-ppv."),
    target_ppv: float = typer.Option(
        0.95, "--target-ppv", help="Precision wanted at --rank on absent species."
    ),
    n: int = typer.Option(10_000, "--n", help="Reads (or pairs) of the held-out genomes to score."),
    fragment: int = typer.Option(
        0, "--fragment", help="Score read pairs, the ends of fragments of this length (bp; 0: single reads)."
    ),
    device: str = typer.Option(
        "cpu", "--device", help="cpu, cuda, cuda:N, mps or auto (training and scoring)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Report the threshold; do not store it."),
) -> None:
    """Choose the confidence threshold for reads of organisms absent from the reference: hold out
    species, train a shadow model without them (same recipe and settings, under
    RUN/novel-calibration/, resumable), classify their reads and keep the smallest threshold whose
    precision at --rank reaches --target-ppv; stored in model.pt, model.q*.pt and run.json.

    Example: biodl reads calibrate-novel runs/reads --fragment 400
    """
    from biodl.kinds.reads.novel import calibrate_novel

    try:
        if folds != "all" and not folds.isdigit():
            raise BiodlInputError(f"--folds takes a number or 'all', got {folds!r}")
        r = calibrate_novel(
            run,
            holdout=list(holdout or []) or None,
            folds=None if folds == "all" else int(folds),
            rank=rank,
            target_ppv=target_ppv,
            n_reads=n,
            fragment=fragment or None,
            device=device,
            apply=not dry_run,
        )
    except BiodlError as e:
        _fail(e)
    ppv = "n/a (no read called)" if r["ppv"] is None else f"{r['ppv']:.4f}"
    stdout_console().print(
        f"threshold {r['threshold']:g}: {rank} PPV {ppv}, sensitivity {r['sensitivity']:.4f} "
        f"({'met' if r['met'] else 'target not reached'}; {run}/novel-calibration/calibration.json)",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Add the ``reads`` sub-app to the main ``biodl`` app."""
    app.add_typer(reads_app, name="reads")
