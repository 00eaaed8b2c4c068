"""``biodl molecules ...``: commands of the molecule recipes (loaded by :mod:`biodl.cli`)."""

from __future__ import annotations

from pathlib import Path

import typer

molecules_app = typer.Typer(
    no_args_is_help=True,
    help="Neural graph fingerprints (Duvenaud 2015): interpretation and fingerprints.",
)


@molecules_app.command("substructures")
def substructures(
    run_dir: Path = typer.Argument(..., help="Run directory (or model.pt) of a neural-fp model."),
    data: Path | None = typer.Argument(None, help="Molecules to search (default: the run's training file)."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Output directory (default: RUN_DIR/substructures)."
    ),
    bits: str | None = typer.Option(
        None,
        help="Fingerprint bits to show, comma-separated (default: chosen); pictures of other bits "
        "left in the output directory by an earlier call are removed.",
    ),
    n_bits: int = typer.Option(2, help="How many bits to choose (half positive, half negative)."),
    top: int = typer.Option(6, help="Fragments per bit."),
    max_molecules: int = typer.Option(2000, help="Search at most this many molecules (file order)."),
    skip_invalid: bool = typer.Option(
        False,
        "--skip-invalid",
        help="Leave out molecules RDKit cannot read (default: the first is an error).",
    ),
    set_: list[str] | None = typer.Option(
        None, "--set", help="Data option KEY=VALUE (repeatable): smiles_col, id_col, skip_invalid."
    ),
) -> None:
    """Draw the substructures (atom neighbourhoods) that most activate fingerprint bits of a
    trained neural-fp model; writes bit<k>.png, substructures.tsv and substructures.html.

    Example: biodl molecules substructures runs/solubility
    """
    from biodl.cli import _fail, console
    from biodl.errors import BiodlError, BiodlInputError
    from biodl.kinds.molecules.kind import OPTIONS
    from biodl.options import parse_set_known

    try:
        for flag, value in (("--n-bits", n_bits), ("--top", top), ("--max-molecules", max_molecules)):
            if value < 1:
                raise BiodlInputError(f"{flag} must be at least 1, got {value}")
        from biodl.kinds.molecules.interpret import substructure_section
        from biodl.kinds.molecules.kind import read_table
        from biodl.report.html import Section, write_html_report
        from biodl.train import load_model

        model, meta = load_model(run_dir)
        if meta.recipe != "neural-fp":
            raise BiodlError(f"substructures need a neural-fp model, this is {meta.recipe!r}")
        src = data or meta.data.get("train_file")
        if not src:
            raise BiodlError("give the molecules to search (DATA)")
        opts = {
            "smiles_col": meta.data.get("smiles_col"),
            "id_col": meta.data.get("id_col"),
            **parse_set_known(
                set_, [o.name for o in OPTIONS if "predict" in o.stages], "biodl molecules substructures"
            ),
        }
        if skip_invalid:
            opts["skip_invalid"] = True
        table = read_table(src, opts, None, False, True)
        table = table.subset(range(min(max_molecules, len(table))))
        od = out or (Path(run_dir) if Path(run_dir).is_dir() else Path(run_dir).parent) / "substructures"
        chosen = _parse_bits(bits) if bits else None
        sec, df = substructure_section(
            model, table.mols, od, bits=chosen, n_bits=n_bits, per_bit=top, smiles=table.smiles
        )
        intro = Section("Model", text=f"{meta.recipe} model {run_dir}; {len(table)} molecules of {src}.")
        html = write_html_report(od / "substructures.html", "Neural fingerprint substructures", [intro, sec])
    except BiodlError as e:
        _fail(e)
    console.print(
        f"{len(df)} fragments of {df['bit'].nunique()} bits: {od / 'substructures.tsv'}; report: {html}"
    )


def _parse_bits(text: str) -> list[int]:
    from biodl.errors import BiodlInputError

    parts = [b.strip() for b in text.split(",") if b.strip()]
    bad = [b for b in parts if not b.isdigit()]
    if bad or not parts:
        raise BiodlInputError(
            f"--bits takes bit numbers separated by commas (e.g. --bits 3,17), got {text!r}"
        )
    return [int(b) for b in parts]


def register(app: typer.Typer) -> None:
    """Add ``biodl molecules ...`` to the main app."""
    app.add_typer(molecules_app, name="molecules")
