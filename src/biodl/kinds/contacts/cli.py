"""``biodl contacts ...``: contact maps from an alignment (any method), DEEPCON weight conversion."""

from __future__ import annotations

from pathlib import Path

import typer

from biodl.errors import BiodlError, BiodlInputError, exit_with

contacts_app = typer.Typer(
    no_args_is_help=True, help="Protein contact maps from multiple sequence alignments."
)


_fail = exit_with  # print the error, exit 2


@contacts_app.command("predict")
def predict(
    msa: Path = typer.Argument(..., help="Alignment: aligned FASTA / A2M / A3M, PSICOV .aln or Stockholm."),
    method: str | None = typer.Option(
        None,
        "--method",
        help="pconsc2, plmdca, psicov, mi or deepcon (default: pconsc2 with --model, deepcon with "
        "--weights, else plmdca).",
    ),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="CASP RR file to write (default: standard output)."
    ),
    query: str | None = typer.Option(
        None,
        "--query",
        help="Query sequence (found in the alignment by sequence; when the alignment covers a stretch "
        "of it, the RR is numbered on the full query).",
    ),
    pdb: Path | None = typer.Option(
        None, "--pdb", help="Native structure (PDB / mmCIF) or .CB distance list: print the precision."
    ),
    chain: str | None = typer.Option(
        None, "--chain", help="Chain of --pdb (default: the protein chain that best matches the query)."
    ),
    native_sequence: str | None = typer.Option(
        None,
        "--native-sequence",
        help="Sequence a .CB distance list is numbered on (default: --query, else the alignment's query).",
    ),
    model: Path | None = typer.Option(
        None, "--model", help="pconsc2: a run of `biodl train --system pconsc2`."
    ),
    weights: Path | None = typer.Option(
        None, "--weights", help="deepcon: the deepcon wheel, its HDF5 weights or a converted .pt."
    ),
    min_sep: int = typer.Option(6, "--min-sep", min=1, help="Write pairs with j - i >= this."),
    top: int | None = typer.Option(None, "--top", min=1, help="Write only the best N pairs (default: all)."),
    plm_iter: int = typer.Option(50, "--plm-iter", min=1, help="plmDCA L-BFGS iterations."),
    psicov_iter: int = typer.Option(
        10, "--psicov-iter", min=0, help="PSICOV-like ADMM iterations (0: the shrunk inverse covariance)."
    ),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:N, mps or auto."),
) -> None:
    """Predict the contact map of an alignment's query and write it as CASP RR (best first);
    with --pdb, print top-L/5, L/2, L precision (long and medium range, CB < 8 A).

    Example: biodl contacts predict 1guuA.aln --method plmdca --out 1guu.rr --pdb 1guu.pdb
    """
    import sys

    import numpy as np
    from rich.console import Console
    from rich.table import Table

    from biodl.kinds.contacts.io import (
        check_query,
        native_distances,
        normalise_query,
        read_msa,
        read_native,
        rr_text,
    )
    from biodl.kinds.contacts.predictors import predict_map, resolve_method
    from biodl.kinds.contacts.scoring import precision

    err = Console(stderr=True, soft_wrap=True, emoji=False, markup=False, highlight=False)
    try:
        import torch

        torch.set_num_threads(max(1, min(torch.get_num_threads(), 8)))
        method = resolve_method(method, model, weights)
        # the query as given (letters only, else an error naming the others): the RR's sequence;
        # it is matched to the alignment with B / Z read as D / E, as the alignment is
        q = check_query(query, "--query") if query is not None else ""
        if native_sequence is not None:
            native_sequence = check_query(native_sequence, "--native-sequence")
        aln = read_msa(msa, query)
        full, offset, remarks = aln.query_as_written, 0, []
        qn = normalise_query(q)
        if q and qn == aln.query:
            full = q
        elif q:
            k = qn.find(aln.query)
            if k >= 0 and qn.find(aln.query, k + 1) < 0:
                full, offset = q, k
                remarks.append(
                    f"the alignment covers residues {k + 1}-{k + aln.L} of the query ({len(q)} residues); "
                    "residues are numbered on the full query"
                )
            else:
                remarks.append(
                    f"the alignment's query (record {aln.query_row + 1}, {aln.L} residues) is not a stretch "
                    f"of --query ({len(q)} residues); residues are numbered on the alignment's query"
                )
        for r in remarks:
            err.print(f"{msa.name}: {r}")
        dist = native = None
        if pdb is not None:
            native = read_native(
                pdb,
                chain,
                normalise_query(native_sequence or full),
                query=aln.query,
                sequence_how="--native-sequence SEQ",
            )
            if native_sequence and native.chain is not None:
                raise BiodlInputError(
                    "--native-sequence goes with a .CB distance list; a structure has its own", path=pdb
                )
            dist = native_distances(aln.query, native)
        from biodl.kinds.contacts.kind import progress_line

        status, progress = progress_line(True, f"{msa.name} (L={aln.L}, {aln.n_seqs} sequences)")
        try:
            scores = predict_map(
                aln,
                method,
                model=model,
                weights=weights,
                device=device,
                options={"plm_iter": plm_iter, "psicov_iter": psicov_iter},
                progress=progress,
            )
        finally:
            status.clear()  # the line gives way to the summary or the error
        text = rr_text(full, scores, min_sep=min_sep, top=top, offset=offset, remarks=remarks)
        if out is not None:
            from biodl.io._util import atomic_write_text_by_suffix

            atomic_write_text_by_suffix(out, text)  # (x.rr.gz: compressed)
        else:
            sys.stdout.write(text)
    except BiodlError as e:
        _fail(e)
    err.print(
        f"{msa.name}: L={aln.L}, {aln.n_seqs} sequences, method {method}" + (f" -> {out}" if out else "")
    )
    if dist is not None:
        covered = int(np.isfinite(np.diag(dist)).sum())
        what = (
            "distance list"
            if native.chain is None
            else f"chain {native.chain}"
            + (" (the chain that best matches the query)" if chain is None else "")
        )
        err.print(
            f"native: {pdb.name}, {what}, {len(native.sequence)} residues; "
            f"covers {covered}/{aln.L} query residues"
        )
        if covered < aln.L / 2:
            err.print(
                f"[biodl] warning: the native covers under half of the query ({covered}/{aln.L}); "
                "precision counts only the pairs it covers (check --chain)"
            )
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
