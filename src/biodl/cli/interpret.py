"""CLI commands of the interpretation layer: ``variants``, ``motifs``, ``ism``, ``attribute``.

:func:`register` adds them to the ``biodl`` typer app (called by :mod:`biodl.cli`).
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from biodl.errors import BiodlError, BiodlInputError, print_error
from biodl.io._util import atomic_output

console = Console(emoji=False)
err = Console(stderr=True, soft_wrap=True, emoji=False)


def _fail(e: Exception) -> None:
    print_error(e)
    raise typer.Exit(2)


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


#: The models the sequence interpretation commands work on.
DNA_KINDS = ("sequences", "windows")
DNA_MODEL = "a DNA-sequence model (kind sequences or windows: DeepBind, DeepSEA, Basset, DanQ, ...)"


def _load_sequences(model_path: Path, seqs: Path, device: str, command: str):
    """The model, its meta, the sequence ids and their one-hot ``(n, 4, L)``; a model of
    another kind, or an input that is not DNA, is refused naming both."""
    from biodl.kinds.base import kind_of, require_kind
    from biodl.kinds.sequences.kind import sequence_inputs
    from biodl.train import load_model

    model, meta = load_model(model_path, device=device)
    require_kind(meta, DNA_KINDS, f"biodl {command}", DNA_MODEL)
    kind_of(meta).check_format(meta.recipe, seqs)
    ids, X = sequence_inputs(meta, seqs)
    return model, meta, ids, X


def _output_index(meta, output: str | None, n_outputs: int) -> int:
    names = [str(n) for n in (meta.label_names or [])]
    listed = ", ".join(names) if names else f"by index, 0 to {n_outputs - 1}"
    if output is None:
        return 0
    if output in names:
        return names.index(output)
    if output.isdigit() and int(output) < n_outputs:
        return int(output)
    raise BiodlInputError(f"unknown output {output!r} (the model's outputs: {listed})")


def register(app: typer.Typer) -> None:
    """Add the interpretation commands to ``app``."""

    @app.command()
    def variants(
        model: Path = typer.Argument(..., help="Run directory or its model.pt."),
        vcf: Path = typer.Option(..., "--vcf", help="VCF of variants (plain or bgzip)."),
        genome: Path = typer.Option(..., "--genome", help="Genome FASTA (plain, bgzip or gzip)."),
        out: Path = typer.Option(..., "--out", "-o", help="Output table (TSV)."),
        out_vcf: Path | None = typer.Option(
            None, "--out-vcf", help="Also write the VCF with BIODL_* INFO fields."
        ),
        batch_size: int = typer.Option(128, help="Variants per forward pass."),
        device: str = typer.Option("cpu", "--device", help="cpu, cuda or auto."),
        window: int | None = typer.Option(
            None,
            "--window",
            help="Bases around each variant (default: the model's input length; needed for a model "
            "trained at variable lengths).",
        ),
    ) -> None:
        """Score VCF variants: REF vs ALT windows centred on each variant, both strands
        averaged; REF alleles that do not match the genome are reported, never scored.

        Example: biodl variants runs/rest --vcf v.vcf --genome hg19.fa --out v.tsv --out-vcf scored.vcf
        """
        from biodl.interpret.variants import run_variants

        try:
            table = run_variants(
                model, vcf, genome, out, out_vcf=out_vcf, batch_size=batch_size, device=device, window=window
            )
        except BiodlError as e:
            _fail(e)
        ok = table["status"] == "ok"
        for r in table[~ok].itertuples(index=False):
            err.print(
                f"{vcf}: {r.chrom}:{r.pos} {r.id} {r.ref}>{r.alt}: not scored: {r.status}", highlight=False
            )
        err.print(
            f"scored {int(ok.sum())} of {len(table)} variant allele(s); table: {out}"
            + (f", VCF: {out_vcf}" if out_vcf else "")
        )

    @app.command()
    def motifs(
        run_dir: Path = typer.Argument(..., help="A run directory written by `biodl train` or `biodl demo`."),
        db: str | None = typer.Option(
            None,
            "--db",
            help="MEME motif file, or jaspar[:TAX_GROUP[:RELEASE]] (default: jaspar:vertebrates, the JASPAR "
            "CORE vertebrates of the newest release pyjaspar bundles: JASPAR2026 with pyjaspar 4).",
        ),
        test: Path | None = typer.Option(
            None, help="Sequences for the filter PWMs (default: the run's test file)."
        ),
        out: Path | None = typer.Option(None, "--out", "-o", help="Output TSV (default RUN_DIR/motifs.tsv)."),
        device: str = typer.Option("cpu", "--device", help="cpu, cuda or auto."),
    ) -> None:
        """First-layer filters as PWMs (RUN_DIR/filters.meme), each matched to a motif
        database with Tomtom; prints the table and writes motifs.tsv.

        Example: biodl motifs biodl-demo --db jaspar:vertebrates:JASPAR2024
        """
        from biodl.interpret.motifs import load_motif_db
        from biodl.kinds.sequences.report import run_motifs

        try:
            _, desc = load_motif_db(db)
            table = run_motifs(run_dir, test_file=test, db=db, out=out, device=device)
        except BiodlError as e:
            _fail(e)
        cols = [
            "filter",
            "n_sites",
            "ic_bits",
            "consensus",
            "match_id",
            "match_name",
            "p_value",
            "q_value",
            "strand",
        ]
        shown = table[cols].copy()
        for c in ("p_value", "q_value"):
            shown[c] = [_fmt(v) for v in shown[c]]
        print(f"first-layer filters of {run_dir} vs {desc}")
        print(shown.to_string(index=False))
        console.print(
            f"motifs: {out or Path(run_dir) / 'motifs.tsv'}; PWMs: {Path(run_dir) / 'filters.meme'}"
        )

    @app.command()
    def ism(
        model: Path = typer.Argument(..., help="Run directory or its model.pt."),
        seqs: Path = typer.Argument(..., help="FASTA or table of sequences."),
        out: Path = typer.Option(
            ...,
            "--out",
            "-o",
            help="Output: .npz (effects (n, 4, L, outputs), reference (n, outputs), ids, outputs, start) "
            "or .tsv (one row per substitution: id, position (1-based), ref, alt, effect_<output>).",
        ),
        output: str | None = typer.Option(None, help="Output (name or index) for the .tsv (default: all)."),
        start: int = typer.Option(0, help="First position to mutate (0-based)."),
        end: int | None = typer.Option(None, help="Position after the last to mutate (default: the end)."),
        method: str = typer.Option("auto", help="auto, deepbind, trunk or full."),
        batch_size: int = typer.Option(256),
        device: str = typer.Option("cpu", "--device", help="cpu, cuda or auto."),
        precision: str = typer.Option(
            "32-true", help="32-true (float32), or bf16-mixed / 16-mixed (autocast; faster on GPUs)."
        ),
    ) -> None:
        """In-silico saturation mutagenesis: the change of every output for every
        single-base substitution (alt minus reference).

        Example: biodl ism runs/rest seqs.fa --out ism.tsv
        """
        import numpy as np

        from biodl.encode import decode
        from biodl.interpret.ism import saturation_mutagenesis
        from biodl.io._util import atomic_write_text

        try:
            m, meta, ids, X = _load_sequences(model, seqs, device, "ism")
            eff, y0 = saturation_mutagenesis(
                m,
                X,
                start=start,
                end=end,
                method=method,
                batch_size=batch_size,
                precision=precision,
                return_reference=True,
            )
            names = [str(n) for n in (meta.label_names or range(eff.shape[-1]))]
            if out.suffix == ".npz":
                with atomic_output(out) as tmp, open(tmp, "wb") as fh:
                    np.savez_compressed(
                        fh,
                        # (n, 4, L, outputs): the layout of the one-hot input and of
                        # `biodl attribute`, outputs last
                        effects=eff.permute(0, 2, 1, 3).numpy(),
                        reference=y0.numpy(),
                        ids=np.array(ids),
                        outputs=np.array(names),
                        start=start,
                        layout=np.array("n,4,L,outputs"),
                    )
            else:
                import pandas as pd

                js = (
                    [_output_index(meta, output, eff.shape[-1])]
                    if output is not None
                    else list(range(eff.shape[-1]))
                )
                n, L = eff.shape[:2]
                seqs_s = [decode(x.numpy()) for x in X]
                ii, pp, aa = np.meshgrid(np.arange(n), np.arange(L), np.arange(4), indexing="ij")
                ref = np.array([[s[start + p] for p in range(L)] for s in seqs_s])[ii, pp]
                df = pd.DataFrame(
                    {
                        "id": np.array(ids)[ii.ravel()],
                        "position": (pp + start + 1).ravel(),
                        "ref": ref.ravel(),
                        "alt": np.array(list("ACGT"))[aa.ravel()],
                    }
                )
                for j in js:
                    df[f"effect_{names[j]}"] = eff[..., j].numpy().ravel()
                df = df[df["ref"] != df["alt"]]
                atomic_write_text(out, df.to_csv(sep="\t", index=False, float_format="%.6g"))
        except BiodlError as e:
            _fail(e)
        err.print(f"ISM of {X.shape[0]} sequence(s) x {eff.shape[1]} positions x 3 substitutions: {out}")

    @app.command()
    def attribute(
        model: Path = typer.Argument(..., help="Run directory or its model.pt."),
        seqs: Path = typer.Argument(..., help="FASTA or table of sequences."),
        out: Path = typer.Option(
            ...,
            "--out",
            "-o",
            help="Output .npz (attributions (n, 4, L) for --output, ids; delta for IG / DeepLIFT).",
        ),
        method: str = typer.Option(
            "integrated_gradients", help="saliency, input_x_gradient, integrated_gradients or deep_lift_shap."
        ),
        output: str | None = typer.Option(None, help="Output (name or index); default the first."),
        device: str = typer.Option("cpu", "--device", help="cpu, cuda or auto."),
    ) -> None:
        """Gradient attributions of each sequence (captum), with the completeness check of
        integrated gradients and DeepLIFT reported.

        Example: biodl attribute runs/rest seqs.fa --method deep_lift_shap --out attr.npz
        """
        import warnings

        import numpy as np

        from biodl.interpret.attributions import attribute as attr_fn

        try:
            m, meta, ids, X = _load_sequences(model, seqs, device, "attribute")
            target = _output_index(meta, output, int(getattr(m, "n_outputs", 1)))
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                kw = (
                    {"return_delta": True}
                    if method.replace("-", "_") in ("integrated_gradients", "deep_lift_shap")
                    else {}
                )
                res = attr_fn(m, X, method, target, **kw)
            a, delta = res if isinstance(res, tuple) else (res, None)
            for w in caught:
                err.print(f"warning: {w.message}", highlight=False)
            extra = {} if delta is None else {"delta": delta.numpy()}
            with atomic_output(out) as tmp, open(tmp, "wb") as fh:
                np.savez_compressed(
                    fh, attributions=a.numpy(), ids=np.array(ids), layout=np.array("n,4,L"), **extra
                )
        except BiodlError as e:
            _fail(e)
        msg = f"{method} attributions of {a.shape[0]} sequence(s): {out}"
        if delta is not None:
            msg += f" (max |convergence delta| {float(delta.abs().max()):.3g})"
        err.print(msg)
