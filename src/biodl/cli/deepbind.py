"""``biodl deepbind ...``: the original released DeepBind models (927 models, v0.11 database)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from biodl.errors import BiodlError, exit_with

deepbind_app = typer.Typer(
    no_args_is_help=True, help="The original released DeepBind models (927 models, DeepBind v0.11 database)."
)


_fail = exit_with  # print the error, exit 2


@deepbind_app.command("score")
def deepbind_score(
    model_id: str = typer.Argument(..., help="Released model ID (e.g. D00328.018) or a params .txt file."),
    fasta: Path = typer.Argument(..., help="FASTA of sequences to score (plain or gzip)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Output TSV (default: standard output)."),
) -> None:
    """Score sequences with an original released DeepBind model, as the deepbind tool would.

    Example: biodl deepbind score D00328.018 seqs.fa
    """
    from biodl.models.sequence.deepbind_released import score_fasta

    try:
        from biodl.io._util import text_table_sep

        sep = text_table_sep(out, "biodl deepbind score --out") if out is not None else "\t"
        if not model_id.strip():
            raise BiodlError("give a released model ID (e.g. D00328.018; see `biodl deepbind list`)")
        df = score_fasta(model_id, fasta)
    except BiodlError as e:
        _fail(e)
    if out is None:
        df.to_csv(sys.stdout, sep="\t", index=False, float_format="%.6f")
    else:
        from biodl.io._util import atomic_write_text_by_suffix

        atomic_write_text_by_suffix(out, df.to_csv(sep=sep, index=False, float_format="%.6f"))
        typer.echo(f"wrote {len(df)} scores to {out}", err=True)


@deepbind_app.command("list")
def deepbind_list(
    protein: str | None = typer.Option(None, help="Only models of this protein (case-insensitive)."),
    experiment: str | None = typer.Option(None, help="Only this experiment type (ChIP-seq, SELEX, ...)."),
    all_models: bool = typer.Option(
        False,
        "--all",
        help="The whole v0.11 index (2,622 models, a 'bundled' column): only 927 were released with "
        "their parameters and can be scored.",
    ),
) -> None:
    """List the released DeepBind models that `biodl deepbind score` can use (ID, protein, type,
    species, experiment).

    Example: biodl deepbind list --protein CTCF
    """
    from biodl.models.sequence.deepbind_released import bundled_ids, read_db

    try:
        db = read_db(only_bundled=not all_models)
        if all_models:  # the index read once; which of its models are bundled, from the bundle
            db = db.assign(bundled=db["ID"].isin(bundled_ids()).map({True: "yes", False: "no"}))
    except BiodlError as e:
        _fail(e)
    if protein:
        db = db[db["Protein"].str.upper() == protein.upper()]
    if experiment:
        db = db[db["Experiment"].str.lower() == experiment.lower()]
    cols = [
        c
        for c in ("ID", "Protein", "Type", "Species", "Experiment", "Experiment Details", "bundled")
        if c in db.columns
    ]
    db[cols].to_csv(sys.stdout, sep="\t", index=False)


def register(app: typer.Typer) -> None:
    """Add ``biodl deepbind ...`` to the main app."""
    app.add_typer(deepbind_app, name="deepbind")
