"""CLI commands of the interpretation layer: ``variants``, ``motifs``, ``ism``, ``attribute``.

:func:`register` adds them to the ``biodl`` typer app (called by :mod:`biodl.cli`).
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from biodl.cli import ScoreBatchOpt, ScoreDeviceOpt
from biodl.errors import BiodlError, BiodlInputError, exit_with, stdout_console
from biodl.io._util import FLOAT_FORMAT, atomic_output

console = stdout_console()
err = Console(stderr=True, soft_wrap=True, emoji=False, markup=False, highlight=False)


_fail = exit_with  # print the error, exit 2


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


#: ``--rc-average`` as ``biodl predict`` takes it: the strands are scored as predict scores them.
RcAverageOpt = typer.Option(
    None,
    "--rc-average/--no-rc-average",
    help="Average both strands, as biodl predict does (default: if trained with --rc-augment).",
)


def _positive(value: int, flag: str) -> None:
    """Refuse a count option under 1 (a batch of no items would evaluate nothing)."""
    if value < 1:
        raise BiodlInputError(f"{flag} must be at least 1, got {value}")


def _strand_phrase(meta, both: bool) -> str:
    from biodl.kinds.sequences.kind import strand_phrase

    return strand_phrase(meta, both)


def _strands(meta, rc_average: bool | None) -> bool:
    """Whether the outputs are the mean of both strands, by the rule of ``biodl predict``."""
    from biodl.kinds.sequences.kind import rc_average_for

    return rc_average_for(meta, {"rc_average": rc_average})


#: The models the sequence interpretation commands work on.
DNA_KINDS = ("sequences", "windows")
DNA_MODEL = "a DNA-sequence model (kind sequences or windows: DeepBind, DeepSEA, Basset, DanQ, ...)"


def _load_sequences(model_path: Path, seqs: Path, device: str, command: str):
    """The model, its meta and the sequences as it reads them
    (:class:`~biodl.kinds.sequences.kind.ModelInputs`); a model of another kind, or an input
    that is not DNA, is refused naming both."""
    from biodl.io._util import note_model
    from biodl.kinds.base import kind_of, require_kind
    from biodl.kinds.sequences.kind import model_inputs
    from biodl.pipeline import _run_state
    from biodl.train import load_model

    _run_state(model_path, command)  # an unfinished run: said (or refused) as predict does
    note_model(model_path)  # no output may replace the model
    model, meta = load_model(model_path, device=device)
    require_kind(meta, DNA_KINDS, f"biodl {command}", DNA_MODEL)
    kind_of(meta).check_format(meta.recipe, seqs)
    return model, meta, model_inputs(meta, seqs)


def _check_suffix(out: Path, suffixes: tuple[str, ...], command: str) -> None:
    """Refuse an ``--out`` whose name promises another format than the command writes."""
    if not str(out).lower().endswith(suffixes):
        raise BiodlInputError(
            f"biodl {command} writes {' or '.join(suffixes)}; give --out a name ending so "
            "(the file's format follows its name)",
            path=out,
        )


def _cropped_note(inputs, command: str) -> None:
    """Say which sequences the model reads only in part (cropped to its input length), and
    where in them the output lies."""
    from biodl.io._util import note

    cropped = [(idx, X.shape[-1], off) for idx, X, off in inputs.groups if off > 0]
    if not cropped:
        return
    n = sum(len(idx) for idx, _, _ in cropped)
    idx, W, off = cropped[0]
    i = int(idx[0])
    note(
        f"[biodl] warning: {inputs.source}: {n} sequence(s) are longer than the model's {W} bp: "
        f"{command} covers only their central {W} bp (e.g. {inputs.ids[i]!r}, {int(inputs.lengths[i])} bp: "
        f"positions {off + 1}-{off + W}); positions in the output are those of the input sequences"
    )


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
        vcf: Path = typer.Option(..., "--vcf", help="VCF of variants (plain, gzip or bgzip; or BCF)."),
        genome: Path = typer.Option(..., "--genome", help="Genome FASTA (plain, bgzip or gzip)."),
        out: Path = typer.Option(..., "--out", "-o", help="Output table (TSV)."),
        out_vcf: Path | None = typer.Option(
            None, "--out-vcf", help="Also write the VCF with BIODL_* INFO fields."
        ),
        batch_size: int = typer.Option(128, help="Variants per forward pass."),
        device: str = ScoreDeviceOpt,
        window: int | None = typer.Option(
            None,
            "--window",
            help="Bases around each variant (default: the model's input length; needed for a model "
            "trained at variable lengths).",
        ),
        rc_average: bool | None = RcAverageOpt,
    ) -> None:
        """Score VCF variants: REF vs ALT windows centred on each variant, scored as biodl
        predict scores them (both strands averaged for a model trained with --rc-augment, else
        the given strand); REF alleles that do not match the genome are reported, never scored.

        Example: biodl variants runs/rest --vcf v.vcf --genome hg19.fa --out v.tsv --out-vcf scored.vcf
        """
        import logging

        from biodl.interpret.variants import run_variants

        # every allele not scored is listed below, with its reason: the library's own warning
        # (for API users) would say a REF mismatch twice
        vlog = logging.getLogger("biodl.variants")
        level = vlog.level
        vlog.setLevel(logging.ERROR)
        try:
            skipped = run_variants(  # keep=False: only the rows not scored come back (memory)
                model,
                vcf,
                genome,
                out,
                out_vcf=out_vcf,
                batch_size=batch_size,
                device=device,
                window=window,
                keep=False,
                progress=True,
                rc_average=rc_average,
            )
        except BiodlError as e:
            _fail(e)
        finally:
            vlog.setLevel(level)
        for r in skipped.itertuples(index=False):
            err.print(
                f"{vcf}: {r.chrom}:{r.pos} {r.id} {r.ref}>{r.alt}: not scored: {r.status}", highlight=False
            )
        n = skipped.attrs["alleles"]
        how = _strand_phrase(
            {"reverse_complement": skipped.attrs.get("reverse_complement")}, skipped.attrs.get("rc_average")
        )
        err.print(
            f"scored {n - len(skipped)} of {n} variant allele(s) ({how}); table: {out}"
            + (f", VCF: {out_vcf}" if out_vcf else "")
        )
        if n and len(skipped) == n:  # nothing scored: a pipeline must not take the table as results
            import collections

            reasons = collections.Counter(str(s).split(":")[0].split(" (")[0] for s in skipped["status"])
            top, k = reasons.most_common(1)[0]
            _fail(
                BiodlInputError(
                    f"no variant allele could be scored ({k} of {n}: {top}; every reason is listed above)"
                    + (
                        ": does the genome use the VCF's chromosome names (chr1 vs 1) and build?"
                        if top.startswith(("unknown chromosome", "REF mismatch"))
                        else ""
                    ),
                    path=vcf,
                )
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
        device: str = ScoreDeviceOpt,
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
            help="Output: .npz (effects (n, 4, L, outputs), reference (n, outputs), ids, outputs, offset: "
            "column j of sequence i is its input position offset[i] + j, length) or .tsv / .tsv.gz (one "
            "row per substitution: id, position (1-based, in the input), ref, alt, effect_<output>).",
        ),
        output: str | None = typer.Option(None, help="Output (name or index) for the .tsv (default: all)."),
        start: int = typer.Option(0, help="First position to mutate (0-based, in the input sequence)."),
        end: int | None = typer.Option(None, help="Position after the last to mutate (default: the end)."),
        method: str = typer.Option("auto", help="auto, deepbind, trunk or full."),
        batch_size: int = ScoreBatchOpt,
        device: str = ScoreDeviceOpt,
        precision: str = typer.Option(
            "32-true", help="32-true (float32), or bf16-mixed / 16-mixed (autocast; faster on GPUs)."
        ),
        rc_average: bool | None = RcAverageOpt,
    ) -> None:
        """In-silico saturation mutagenesis: the change of every output for every
        single-base substitution (alt minus reference), of the score biodl predict gives
        (both strands averaged for a model trained with --rc-augment).

        Example: biodl ism runs/rest seqs.fa --out ism.tsv
        """
        import numpy as np

        from biodl.interpret.ism import saturation_mutagenesis

        try:
            _check_suffix(out, (".npz", ".tsv", ".tsv.gz"), "ism")
            _positive(batch_size, "--batch-size")
            m, meta, inputs = _load_sequences(model, seqs, device, "ism")
            both = _strands(meta, rc_average)
            if start < 0:
                raise BiodlInputError(f"--start must be 0 or more, got {start}")
            _cropped_note(inputs, "ISM")
            parts = []  # (input rows, effects (k, w, 4, T), reference (k, T), input offset, bases)
            for idx, Xg, off in inputs.groups:
                n_in = int(inputs.lengths[idx[0]])
                a, b = inputs.real_columns(int(idx[0]), off, Xg.shape[-1])
                stop = n_in if end is None else (end if end >= 0 else n_in + end)
                s_w, e_w = max(a, start - off), min(b, stop - off)
                if e_w <= s_w:
                    parts.append((idx, None, None, 0, None))
                    continue
                eff_g, y0_g = saturation_mutagenesis(
                    m,
                    Xg,
                    start=s_w,
                    end=e_w,
                    method=method,
                    batch_size=batch_size,
                    precision=precision,
                    return_reference=True,
                    rc_average=both,
                )
                parts.append((idx, eff_g, y0_g, off + s_w, Xg[:, :, s_w:e_w]))
            done = [p for p in parts if p[1] is not None]
            if not done:
                raise BiodlInputError(
                    f"--start {start} / --end {'(sequence end)' if end is None else end} select no "
                    f"position of any sequence of {seqs} "
                    f"({int(inputs.lengths.min())}-{int(inputs.lengths.max())} bp)"
                )
            n, T = len(inputs.ids), done[0][1].shape[-1]
            width = max(p[1].shape[1] for p in done)
            # (n, width, 4, T): column j of sequence i is its 0-based input position offset[i] + j;
            # NaN where it has none (a shorter sequence, or outside --start / --end)
            eff = np.full((n, width, 4, T), np.nan, dtype=np.float32)
            y0 = np.full((n, T), np.nan, dtype=np.float32)
            offset = np.zeros(n, dtype=np.int64)
            for idx, e, r, o, _ in parts:
                offset[idx] = o
                if e is not None:
                    eff[idx, : e.shape[1]] = e.numpy()
                    y0[idx] = r.numpy()
            skipped = [inputs.ids[int(i)] for idx, e, *_ in parts if e is None for i in idx]
            if skipped:
                eg = ", ".join(map(repr, skipped[:5])) + (", ..." if len(skipped) > 5 else "")
                err.print(
                    f"[biodl] warning: {len(skipped)} sequence(s) have no position in --start {start} / "
                    f"--end {'(sequence end)' if end is None else end} and no ISM rows ({eg})",
                    highlight=False,
                )
            names = [str(n) for n in (meta.label_names or range(T))]
            if out.suffix == ".npz":
                with atomic_output(out) as tmp, open(tmp, "wb") as fh:
                    np.savez_compressed(
                        fh,
                        # (n, 4, L, outputs): the layout of the one-hot input and of
                        # `biodl attribute`, outputs last
                        effects=eff.transpose(0, 2, 1, 3),
                        reference=y0,
                        ids=np.array(inputs.ids),
                        outputs=np.array(names),
                        start=start,
                        offset=offset,
                        length=inputs.lengths,
                        layout=np.array("n,4,L,outputs"),
                    )
            else:
                import pandas as pd

                from biodl.io._util import atomic_write_text_by_suffix

                js = [_output_index(meta, output, T)] if output is not None else list(range(T))
                frames = []
                for idx, e, _, o, Xs in done:
                    k, w = e.shape[:2]
                    ii, pp, aa = np.meshgrid(np.arange(k), np.arange(w), np.arange(4), indexing="ij")
                    bases = np.array(list("ACGTN"))[
                        np.where(Xs.max(dim=1).values.numpy() > 0.5, Xs.argmax(dim=1).numpy(), 4)
                    ]
                    df = pd.DataFrame(
                        {
                            "id": np.array(inputs.ids, dtype=object)[idx][ii.ravel()],
                            "position": (pp + o + 1).ravel(),
                            "ref": bases[ii, pp].ravel(),
                            "alt": np.array(list("ACGT"))[aa.ravel()],
                            "_row": idx[ii.ravel()],
                        }
                    )
                    for j in js:
                        df[f"effect_{names[j]}"] = e[..., j].numpy().ravel()
                    frames.append(df[df["ref"] != df["alt"]])
                df = pd.concat(frames, ignore_index=True)
                df = df.sort_values("_row", kind="stable").drop(columns="_row")
                atomic_write_text_by_suffix(out, df.to_csv(sep="\t", index=False, float_format=FLOAT_FORMAT))
        except BiodlError as e:
            _fail(e)
        n_pos = sum(p[1].shape[0] * p[1].shape[1] for p in done)
        how = _strand_phrase(meta, both)
        err.print(f"ISM of {n} sequence(s), {n_pos} positions x 3 substitutions ({how}): {out}")

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
        device: str = ScoreDeviceOpt,
        rc_average: bool | None = RcAverageOpt,
    ) -> None:
        """Gradient attributions of each sequence (captum), with the completeness check of
        integrated gradients and DeepLIFT reported; of the score biodl predict gives (both
        strands averaged for a model trained with --rc-augment).

        Example: biodl attribute runs/rest seqs.fa --method integrated_gradients --out attr.npz
        """
        import warnings

        import numpy as np

        from biodl.interpret.attributions import CompletenessWarning, completeness_message
        from biodl.interpret.attributions import attribute as attr_fn

        try:
            _check_suffix(out, (".npz",), "attribute")
            m, meta, inputs = _load_sequences(model, seqs, device, "attribute")
            both = _strands(meta, rc_average)
            target = _output_index(meta, output, int(getattr(m, "n_outputs", 1)))
            _cropped_note(inputs, "the attribution")
            kw = (
                {"return_delta": True}
                if method.replace("-", "_") in ("integrated_gradients", "deep_lift_shap")
                else {}
            )
            n = len(inputs.ids)
            width = max(
                int(np.diff(inputs.real_columns(int(idx[0]), off, X.shape[-1]))[0])
                for idx, X, off in inputs.groups
            )
            # (n, 4, width): column j of sequence i is its 0-based input position offset[i] + j
            # (N padding the model read is left out; NaN past a shorter sequence's end)
            a = np.full((n, 4, width), np.nan, dtype=np.float32)
            delta = None
            offset = np.zeros(n, dtype=np.int64)
            # integrated gradients' completeness check, added up over the length groups
            failed: list[str] = []
            check: CompletenessWarning | None = None
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                for idx, X, off in inputs.groups:
                    k0 = len(caught)
                    res = attr_fn(m, X, method, target, rc_average=both, **kw)
                    for w in caught[k0:]:
                        if isinstance(w.message, CompletenessWarning):
                            failed += [inputs.ids[int(idx[r])] for r in w.message.rows]
                            if check is None or w.message.worst > check.worst:
                                check = w.message
                    ag, dg = res if isinstance(res, tuple) else (res, None)
                    c0, c1 = inputs.real_columns(int(idx[0]), off, X.shape[-1])
                    a[idx, :, : c1 - c0] = ag[:, :, c0:c1].numpy()
                    offset[idx] = off + c0
                    if dg is not None:
                        if delta is None:
                            delta = np.full(n, np.nan, dtype=np.float32)
                        delta[idx] = dg.numpy()
            for w in {
                str(w.message): w for w in caught if not isinstance(w.message, CompletenessWarning)
            }.values():
                err.print(f"[biodl] warning: {w.message}", highlight=False)
            if check is not None:
                shown = ", ".join(map(repr, failed[:5])) + (
                    f" and {len(failed) - 5} more" if len(failed) > 5 else ""
                )
                msg = completeness_message(
                    check.method, len(failed), n, check.worst, check.tolerance, f": {shown}"
                )
                err.print(f"[biodl] warning: {msg}", highlight=False)
            extra = {} if delta is None else {"delta": delta}
            with atomic_output(out) as tmp, open(tmp, "wb") as fh:
                np.savez_compressed(
                    fh,
                    attributions=a,
                    ids=np.array(inputs.ids),
                    offset=offset,
                    length=inputs.lengths,
                    layout=np.array("n,4,L"),
                    **extra,
                )
        except BiodlError as e:
            _fail(e)
        how = _strand_phrase(meta, both)
        msg = f"{method} attributions of {a.shape[0]} sequence(s) ({how}): {out}"
        if delta is not None:
            msg += f" (max |convergence delta| {float(np.nanmax(np.abs(delta))):.3g})"
        err.print(msg)
