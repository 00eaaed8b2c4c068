"""``biodl adage ...``: node activities, node signatures, gene-set enrichment and the published
50-node *P. aeruginosa* ADAGE model. Loaded by :mod:`biodl.cli` through ``register(app)``."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console

from biodl.errors import BiodlError, BiodlInputError, exit_with
from biodl.io._util import FLOAT_FORMAT

adage_app = typer.Typer(
    no_args_is_help=True,
    help="ADAGE denoising autoencoders: activities, signatures, enrichment, the published model.",
)
err = Console(stderr=True, soft_wrap=True, emoji=False, markup=False, highlight=False)

ModelArg = typer.Argument(
    ..., help="A run directory / model.pt from `biodl train --system adage`, or `published` (ADAGE50)."
)


_fail = exit_with  # print the error, exit 2


def _model(model: str, with_meta: bool = False):
    """(model, genes, is_published), and the run's metadata (``None`` for the published model)
    with ``with_meta``."""
    from biodl.kinds.expression.adage import load_published
    from biodl.train import load_model

    if model.lower() in ("published", "adage50"):
        m, genes = load_published()
        return (m, genes, True, None) if with_meta else (m, genes, True)
    m, meta = load_model(model)
    if meta.recipe != "adage":
        raise BiodlError(f"{model}: not an ADAGE model (recipe {meta.recipe!r})")
    return (m, meta.data["genes"], False, meta) if with_meta else (m, meta.data["genes"], False)


def _write(df, out: Path | None, index_label: str) -> None:
    if out is None:
        df.to_csv(sys.stdout, sep="\t", index_label=index_label, float_format=FLOAT_FORMAT)
    else:
        from biodl.kinds.expression.io import write_table

        write_table(df, out, index_label=index_label)
        err.print(f"wrote {len(df)} rows to {out}")


@adage_app.command("activities")
def activities_cmd(
    model: str = ModelArg,
    data: Path = typer.Argument(..., help="Expression file: PCL/TSV/CSV(.gz), GCT or .h5ad."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Output TSV (default: standard output)."),
    orientation: str = typer.Option(
        "auto", help="auto, genes-x-samples or samples-x-genes (PCL default: genes-x-samples)."
    ),
    scale: str | None = typer.Option(
        None,
        help="model: the per-gene ranges stored with the model (default for trained models); global: one "
        "range over the input matrix (default for `published`); self: per-gene 0-1 over the input.",
    ),
    reference: Path | None = typer.Option(
        None,
        help="Compendium whose per-gene min/range scale the input, as in the paper (sets --scale model).",
    ),
    raw: bool = typer.Option(False, help="Raw activities (x W, before bias and sigmoid)."),
    missing_genes: float | None = typer.Option(
        None,
        help="Value for model genes absent from DATA (default: error, naming them). How many are filled "
        "is said; DATA with none of the model's genes is refused.",
    ),
    missing: str = typer.Option(
        "error",
        help="Missing (NA/empty) cells in DATA and --reference: error, or gene-mean (impute with the "
        "gene's mean).",
    ),
    duplicates: str = typer.Option(
        "error", help="Repeated gene ids in DATA and --reference: error, mean or first (merge them)."
    ),
    groups: str | None = typer.Option(
        None,
        help="Two sample-name substrings, e.g. 'anr,WT': also print the nodes that separate the two "
        "groups best (Welch t).",
    ),
) -> None:
    """Node activities (samples x nodes) of an ADAGE model on an expression file.

    Example: biodl adage activities published Anr-gene.pcl --groups anr,WT --out anr_activities.tsv
    """
    from biodl.kinds.expression.adage import activities, separation, set_reference_scaling
    from biodl.kinds.expression.io import read_expression

    try:
        for name, value, choices in (
            ("--missing", missing, ("error", "gene-mean")),
            ("--duplicates", duplicates, ("error", "mean", "first")),
        ):
            if value not in choices:
                raise BiodlInputError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
        m, genes, published, meta = _model(model, with_meta=True)
        read_kw = {"known_genes": genes, "missing": missing, "duplicates": duplicates}

        def matrix(path) -> dict:  # the AnnData layer (or .raw) the model was trained on
            if meta is None:
                return {}
            from biodl.kinds.expression.kind import _trained_matrix

            return {k: v for k, v in _trained_matrix(meta, path, {}).items() if k in ("layer", "use_raw")}

        data_m = read_expression(data, orientation=orientation, **read_kw, **matrix(data))
        if reference is not None:  # its ranges scale DATA: read from the same matrix
            set_reference_scaling(m, genes, read_expression(reference, **read_kw, **matrix(reference)))
            scale = "model"
        if scale is None:
            scale = "global" if published else "model"
        act = activities(m, genes, data_m, scale=scale, raw=raw, missing_fill=missing_genes)
        if groups:  # checked before anything is written
            parts = [g.strip() for g in groups.split(",")]
            if len(parts) != 2 or not all(parts):
                raise BiodlError("--groups expects two comma-separated substrings, e.g. anr,WT")
            if parts[0].lower() == parts[1].lower():
                raise BiodlError(
                    f"--groups names {parts[0]!r} twice; give two different substrings, e.g. anr,WT"
                )
            lab = []
            for s in act.index:
                hit = [p for p in parts if p.lower() in s.lower()]
                lab.append(hit[0] if len(hit) == 1 else "other")
            empty = [p for p in parts if lab.count(p) < 1]
            if empty:
                shown = ", ".join(map(str, act.index[:6])) + (", ..." if len(act.index) > 6 else "")
                raise BiodlError(
                    f"--groups: no sample name contains {' or '.join(map(repr, empty))} alone "
                    f"(any case; samples: {shown})"
                )
        _write(act, out, "sample")
        if groups:
            sep = separation(act, lab, parts[0], parts[1])
            err.print(f"nodes separating {parts[0]} from {parts[1]} (Welch t; scale={scale}):")
            err.print(sep.head(10).to_string(float_format=lambda v: f"{v:.3f}"), highlight=False)
    except BiodlError as e:
        _fail(e)


@adage_app.command("signatures")
def signatures_cmd(
    model: str = ModelArg,
    n_sd: float = typer.Option(
        2.5, "--sd", help="High-weight cut-off in standard deviations of the node's weights."
    ),
    node: str | None = typer.Option(None, help="Only this node (e.g. Node42)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Output TSV (default: standard output)."),
) -> None:
    """Each node's high-weight genes (weight beyond mean +- SD x sd, positive and negative sides).

    Example: biodl adage signatures published --node Node42
    """
    from biodl.kinds.expression.adage import signatures

    try:
        m, genes, _ = _model(model)
        sig = signatures(m.gene_weights(), genes, n_sd)
        if node:
            sig = sig[sig["node"].str.lower() == node.lower()]
            if sig.empty:
                raise BiodlError(f"no node {node!r} (nodes are Node1 ... Node{m.gene_weights().shape[1]})")
        _write(sig.set_index("node"), out, "node")
    except BiodlError as e:
        _fail(e)


@adage_app.command("enrichment")
def enrichment_cmd(
    model: str = ModelArg,
    gene_sets: Path = typer.Argument(..., help="Gene sets: GMT, Tribe/ADAGE term file, or operon file."),
    n_sd: float = typer.Option(2.5, "--sd", help="High-weight cut-off (standard deviations)."),
    fdr: float = typer.Option(0.05, help="Benjamini-Hochberg FDR threshold."),
    min_size: int = typer.Option(3, help="Ignore gene sets with fewer genes in the model."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Output TSV (default: standard output)."),
) -> None:
    """Hypergeometric enrichment of gene sets in node signatures, and the coverage (fraction of
    gene sets enriched in at least one signature), as in the ADAGE paper.

    Example: biodl adage enrichment published pseudomonas_KEGG_terms.txt
    """
    from biodl.kinds.expression.adage import coverage, enrichment, signature_sets, signatures
    from biodl.kinds.expression.io import read_gene_sets

    try:
        if not 0 < fdr <= 1:
            raise BiodlInputError(f"--fdr must be a rate above 0 and at most 1, got {fdr:g}")
        m, genes, _ = _model(model)
        sets = read_gene_sets(gene_sets)
        enr = enrichment(
            signature_sets(signatures(m.gene_weights(), genes, n_sd)), sets, genes, min_size, fdr
        )
        cov = coverage(enr, sets, genes, min_size)
        if cov["gene_sets"] == 0:
            err.print(
                f"[biodl] warning: 0 of {len(sets)} gene sets overlap the model's genes (at least "
                f"{min_size}); wrong organism or id type? (a set needs --min-size genes)",
                highlight=False,
            )
        sig = enr[enr["significant"]]
        _write(sig.set_index("signature"), out, "signature")
        share = f"{cov['coverage']:.1%}" if cov["gene_sets"] else "none testable"
        err.print(
            f"coverage: {cov['covered']}/{cov['gene_sets']} gene sets ({share}) enriched in "
            f"{cov['signatures_with_hit']} signatures at FDR {fdr}"
        )
    except BiodlError as e:
        _fail(e)


@adage_app.command("load-published")
def load_published_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="Run directory to write (model.pt, network.txt.gz)."),
    reference: Path | None = typer.Option(
        None, help="Compendium PCL whose per-gene min/range are stored with the model (as in the paper)."
    ),
    network: Path | None = typer.Option(None, help="Another ADAGE network file (default: bundled ADAGE50)."),
    genes: Path | None = typer.Option(
        None, help="Gene ids of the network's rows (default: bundled 5549 PA ids)."
    ),
) -> None:
    """Convert the published ADAGE network (or another ADAGE network file) into a biodl model
    usable with `biodl predict` and `biodl adage ...`.

    Example: biodl adage load-published --out runs/adage50
    """
    from biodl.kinds.expression.adage import load_published, set_reference_scaling, write_network
    from biodl.kinds.expression.io import read_expression
    from biodl.train import RunMeta, save_model, write_run_json

    try:
        m, g = load_published(network, genes)
        if reference is not None:
            set_reference_scaling(m, g, read_expression(reference, known_genes=g))
        meta = RunMeta(
            kind="expression",
            recipe="adage",
            task="reconstruction",
            model_kwargs={"n_genes": len(g), "nodes": m.nodes, "corruption": m.corruption},
            data={
                "genes": g,
                "data": str(network or "published ADAGE50 (Tan et al. 2016)"),
                "scaling": "reference"
                if reference
                else "identity (scale input first, or use --set scale=global)",
            },
            status="finished",
        )
        p = save_model(out / "model.pt", m, meta)
        write_run_json(out, meta)
        write_network(m, out / "network.txt.gz")
        err.print(f"model: {p}")
    except BiodlError as e:
        _fail(e)


def register(app: typer.Typer) -> None:
    """Add the ``adage`` sub-app to the main ``biodl`` app."""
    app.add_typer(adage_app, name="adage")
