"""``biodl cells ...``: cytometry helpers (FCS channels, CellCnn interpretation, leave-one-group-out)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from biodl.cli import DeviceOpt, SeedOpt
from biodl.errors import BiodlError, BiodlInputError, exit_with, stdout_console
from biodl.io._util import FLOAT_FORMAT

cells_app = typer.Typer(no_args_is_help=True, help="Cytometry (FCS) tools and CellCnn analyses.")


_fail = exit_with  # print the error, exit 2


def _opts(values: list[str] | None, known, command: str) -> dict:
    from biodl.options import parse_set_known

    return parse_set_known(values, known, command)


@cells_app.command("channels")
def channels(fcs: Path = typer.Argument(..., help="An FCS 2.0/3.0/3.1 file.")) -> None:
    """List the channels of an FCS file: $PnN, $PnS, whether it is used as a marker by default.

    Example: biodl cells channels PBMC8_30min_patient1_BCR-XL.fcs
    """
    from rich.table import Table

    from biodl.kinds.cells.io import _marker_channels, read_fcs

    try:
        f = read_fcs(fcs)
    except BiodlError as e:
        _fail(e)
    t = Table(
        title=f"{fcs.name}: FCS {f.version}, {f.events.shape[0]:,} events, {f.events.shape[1]} channels"
    )
    for c in ("#", "$PnN", "$PnS", "default marker"):
        t.add_column(c)
    used = set(_marker_channels(f))  # by index: two channels may share a display name
    for i, (c, s) in enumerate(zip(f.channels, f.markers, strict=True)):
        t.add_row(str(i + 1), c, s, "yes" if i in used else "")
    stdout_console().print(t)


@cells_app.command("interpret")
def interpret(
    model: Path = typer.Argument(
        ..., help="Run directory of `biodl train --system cellcnn` or its model.pt."
    ),
    samples: Path = typer.Argument(..., help="Labelled sample table (CSV: file,label[,patient])."),
    out: Path = typer.Option(..., "--out", "-o", help="Output directory (tables, PNGs, report.html)."),
    n_filters: int = typer.Option(2, help="Interpret this many of the best filters."),
    set_: list[str] | None = typer.Option(
        None, "--set", help="select_quantile=0.99, embedding=tsne|pca|none."
    ),
) -> None:
    """Which cells do a trained CellCnn's best filters select in these samples, and what is
    their marker profile? Writes OUT/report.html and tables.

    Example: biodl cells interpret runs/cellcnn samples.csv --out runs/cellcnn/interpret_test
    """
    from biodl.kinds.cells.io import load_samples, read_sample_table
    from biodl.kinds.cells.kind import OPTIONS, interpret_run
    from biodl.kinds.cells.restarts import encode_labels
    from biodl.report.html import write_html_report
    from biodl.train import load_model

    try:
        if n_filters < 1:
            raise BiodlInputError(f"--n-filters must be at least 1, got {n_filters}")
        opts = _opts(set_, ("select_quantile", "embedding"), "biodl cells interpret")
        declared = {o.name: o for o in OPTIONS}
        for k in ("select_quantile", "embedding"):  # checked (ranges, choices) before any work
            if k in opts:
                opts[k] = declared[k].convert(opts[k])
        ens, meta = load_model(model)
        ss = load_samples(
            read_sample_table(samples, training=False),
            markers=meta.data["markers"],
            cofactor=meta.data["cofactor"],
        )
        reg = meta.task == "regression"
        y, _, _ = encode_labels(
            ss.labels,
            meta.classes,
            "regression" if reg else "classification",
            path=ss.table,
            lines=ss.lines,
        )
        res = interpret_run(
            ens,
            ss,
            y,
            meta.classes,
            out,
            positive=int(meta.data.get("positive", 1)),
            regression=reg,
            quantile=float(opts.get("select_quantile", 0.99)),
            embedding=str(opts.get("embedding", "tsne")),
            n_filters=n_filters,
        )
        p = write_html_report(out / "report.html", "CellCnn: selected cells", res["sections"])
    except BiodlError as e:
        _fail(e)
    typer.echo(json.dumps(res["summary"], indent=1, default=str))
    typer.echo(f"report: {p}")


@cells_app.command("crossval")
def crossval(
    samples: Path = typer.Argument(..., help="Sample table with a patient/group column."),
    out: Path = typer.Option(..., "--out", "-o", help="Output directory (predictions.tsv, metrics.json)."),
    seed: int = SeedOpt,
    device: str = DeviceOpt,
    set_: list[str] | None = typer.Option(
        None, "--set", help="CellCnn options, e.g. ncell=500, nrun=5, markers=..., group_col=donor"
    ),
) -> None:
    """Leave-one-group-out CellCnn with the cluster-median + logistic-regression baseline beside it
    (binary labels): held-out predictions per sample, pooled AUC and accuracy.

    Example: biodl cells crossval sample_table.csv --out runs/lopo --set nrun=5 --set ncell=500
    """
    from biodl.io._util import atomic_write_text
    from biodl.kinds.cells.experiments import leave_one_group_out, summarize
    from biodl.kinds.cells.io import load_samples
    from biodl.kinds.cells.kind import _classes_opt
    from biodl.kinds.cells.restarts import config_from_options, encode_labels

    try:
        from dataclasses import asdict

        from biodl.kinds.cells.restarts import CellCnnConfig
        from biodl.train.fit import check_seed

        check_seed(seed)
        from biodl.train.predict import torch_device

        dev = str(torch_device(device))  # a device this machine lacks: refused before any work
        known = [k for k in asdict(CellCnnConfig()) if k != "extra"]
        columns = ["label_col", "group_col", "file_col"]  # as `biodl train --system cellcnn` reads them
        opts = _opts(
            set_,
            [*known, "markers", "cofactor", "max_cells", "classes", "positive", *columns],
            "biodl cells crossval",
        )
        from biodl.kinds.cells.kind import OPTIONS

        declared = {o.name: o for o in OPTIONS}
        for k in ("markers", "cofactor", "max_cells"):  # checked as `biodl train` checks them
            if k in opts:
                opts[k] = declared[k].convert(opts[k])
        from biodl.kinds.cells.io import read_sample_table

        table = read_sample_table(samples, **{c: opts[c] for c in columns if opts.get(c)})
        ss = load_samples(
            table,
            markers=opts.get("markers"),
            cofactor=float(opts.get("cofactor") or 5.0),
            max_cells=opts.get("max_cells"),
            seed=seed,
        )
        y, classes, task = encode_labels(
            ss.labels, _classes_opt(opts), "classification", path=ss.table, lines=ss.lines
        )
        if len(classes) != 2:
            raise BiodlError(f"crossval needs two classes, got {', '.join(classes)}")
        cfg = config_from_options(opts)
        res = leave_one_group_out(
            ss, y, cfg, seed=seed, work_dir=out / "folds", log=lambda m: typer.echo(m, err=True), device=dev
        )
        from biodl.io._util import output_dir

        output_dir(out)
        pred = res["predictions"]
        text = pred.to_csv(sep="\t", index=False, float_format=FLOAT_FORMAT)
        atomic_write_text(out / "predictions.tsv", text)
        metrics = summarize(pred)
        from biodl.io._util import json_safe
        from biodl.train.checkpoint import atomic_json

        metrics = json_safe(metrics)  # null, not NaN (a fold of one class has no AUC)
        atomic_json(metrics, out / "metrics.json")
    except BiodlError as e:
        _fail(e)
    typer.echo(json.dumps(metrics, indent=1))


def register(app: typer.Typer) -> None:
    """Add ``biodl cells`` to the main app."""
    app.add_typer(cells_app, name="cells")
