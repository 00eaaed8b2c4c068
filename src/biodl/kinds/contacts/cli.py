"""``biodl contacts ...``: contact maps from an alignment (any method), DEEPCON weight conversion."""

from __future__ import annotations

from pathlib import Path

import typer

from biodl.errors import BiodlError

contacts_app = typer.Typer(
    no_args_is_help=True, help="Protein contact maps from multiple sequence alignments."
)


def _fail(e: Exception) -> None:
    from biodl.cli import _fail as fail

    fail(e)


@contacts_app.command("predict")
def predict(
    msa: Path = typer.Argument(..., help="Alignment: aligned FASTA / A2M / A3M, PSICOV .aln or Stockholm."),
    method: str = typer.Option("plmdca", "--method", help="pconsc2, plmdca, psicov, mi or deepcon."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="CASP RR file to write (default: standard output)."
    ),
    query: str | None = typer.Option(
        None, "--query", help="Query sequence (found in the alignment by sequence)."
    ),
    pdb: Path | None = typer.Option(
        None, "--pdb", help="Native structure (PDB / mmCIF): print the precision."
    ),
    chain: str | None = typer.Option(
        None, "--chain", help="Chain of --pdb (default: the first protein chain)."
    ),
    model: Path | None = typer.Option(
        None, "--model", help="pconsc2: a run of `biodl train --system pconsc2`."
    ),
    weights: Path | None = typer.Option(
        None, "--weights", help="deepcon: the deepcon wheel, its HDF5 weights or a converted .pt."
    ),
    min_sep: int = typer.Option(6, "--min-sep", help="Write pairs with j - i >= this."),
    top: int | None = typer.Option(None, "--top", help="Write only the best N pairs."),
    plm_iter: int = typer.Option(50, "--plm-iter", help="plmDCA L-BFGS iterations."),
    psicov_iter: int = typer.Option(10, "--psicov-iter", help="PSICOV-like ADMM iterations."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or auto."),
) -> None:
    """Predict the contact map of an alignment's query and write it as CASP RR (best first);
    with --pdb, print top-L/5, L/2, L precision (long and medium range, CB < 8 A).

    Example: biodl contacts predict 1guuA.aln --method plmdca --out 1guu.rr --pdb 1guu.pdb
    """
    import sys

    from rich.console import Console
    from rich.table import Table

    from biodl.kinds.contacts.io import native_distances, read_msa, read_native, rr_text
    from biodl.kinds.contacts.predictors import predict_map
    from biodl.kinds.contacts.scoring import precision

    try:
        import torch

        torch.set_num_threads(max(1, min(torch.get_num_threads(), 8)))
        aln = read_msa(msa, query)
        native = read_native(pdb, chain) if pdb is not None else None
        dist = native_distances(aln.query, native) if native is not None else None
        scores = predict_map(
            aln,
            method,
            model=model,
            weights=weights,
            device=device,
            options={"plm_iter": plm_iter, "psicov_iter": psicov_iter},
        )
        text = rr_text(aln.query, scores, min_sep=min_sep, top=top)
        if out is not None:
            from biodl.io._util import atomic_write_text

            atomic_write_text(out, text)
        else:
            sys.stdout.write(text)
    except BiodlError as e:
        _fail(e)
    err = Console(stderr=True)
    err.print(
        f"{msa.name}: L={aln.L}, {aln.n_seqs} sequences, method {method}" + (f" -> {out}" if out else "")
    )
    if dist is not None:
        p = precision(scores, dist)
        t = Table(title=f"precision vs {pdb.name} (CB < 8 A)")
        for c in ("range", "top-L/5", "top-L/2", "top-L"):
            t.add_column(c)
        for r in ("long", "medium"):
            t.add_row(r, *(f"{p[f'{r}_{k}']:.3f}" for k in ("L/5", "L/2", "L")))
        err.print(t)


@contacts_app.command("convert-deepcon")
def convert_deepcon(
    source: Path = typer.Argument(
        ..., help="deepcon-0.4.0-py3-none-any.whl or its weights-rdd-covariance.hdf5."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="State dict to write (.pt, loads with weights_only)."),
) -> None:
    """Port DEEPCON's trained Keras weights to the PyTorch network (no TensorFlow needed).

    Example: biodl contacts convert-deepcon deepcon-0.4.0-py3-none-any.whl --out deepcon.pt
    """
    try:
        import io

        import torch

        from biodl.io._util import atomic_write_bytes
        from biodl.kinds.contacts.predictors import load_deepcon

        net = load_deepcon(source)
        buf = io.BytesIO()
        torch.save({k: v.cpu() for k, v in net.state_dict().items()}, buf)
        atomic_write_bytes(out, buf.getvalue())
    except BiodlError as e:
        _fail(e)
    typer.echo(f"wrote {out}")


def register(app: typer.Typer) -> None:
    """Add ``biodl contacts`` to the main app."""
    app.add_typer(contacts_app, name="contacts")
