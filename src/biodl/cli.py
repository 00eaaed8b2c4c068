"""The ``biodl`` command line: a thin typer app over :mod:`biodl.api`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from biodl.errors import BiodlError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    help="biodl: the classic deep-learning systems of computational biology on one PyTorch "
    "code base.\n\nStart with `biodl demo`, then `biodl systems`.",
)
deepbind_app = typer.Typer(
    no_args_is_help=True, help="The original released DeepBind models (927 models, DeepBind v0.11 database)."
)
app.add_typer(deepbind_app, name="deepbind")
console = Console()
err = Console(stderr=True)


def _fail(e: Exception) -> None:
    err.print(f"[bold red]error:[/bold red] {e}", highlight=False)
    raise typer.Exit(2)


def _parse_options(options: list[str] | None) -> dict:
    out = {}
    for o in options or []:
        if "=" not in o:
            raise BiodlError(f"--model-option expects KEY=VALUE, got {o!r}")
        k, v = o.split("=", 1)
        try:
            out[k.strip()] = json.loads(v)
        except json.JSONDecodeError:
            out[k.strip()] = v
    return out


def _eval_options(set_: list[str] | None, rc_average: bool | None, skip_invalid: bool = False) -> dict:
    opts = _parse_options(set_)
    if rc_average is not None:
        opts["rc_average"] = rc_average
    if skip_invalid:
        opts["skip_invalid"] = True
    return opts


def _no_skip_invalid(options: dict) -> None:
    """``--skip-invalid`` is for molecule data; sequence files stop at the first bad record."""
    if options.get("skip_invalid"):
        raise BiodlError(
            "--skip-invalid applies to molecule data (neural-fp, circular-fp); sequence files must be "
            "valid (the error names the bad record)"
        )


SkipInvalidOpt = typer.Option(
    False,
    "--skip-invalid",
    help="Molecules: drop rows RDKit cannot parse (each reported, with the count) instead of "
    "stopping at the first; predict keeps them with an empty score and the reason.",
)


DeviceOpt = typer.Option("auto", "--device", help="cpu, cuda or auto.")


@app.command()
def systems(as_json: bool = typer.Option(False, "--json", help="Print the registry as JSON.")) -> None:
    """List the classic systems in the registry with their status and citation.

    Example: biodl systems
    """
    from biodl.recipes import list_recipes

    recipes = list_recipes()
    if as_json:
        console.print_json(
            json.dumps(
                [
                    {
                        "name": r.name,
                        "title": r.title,
                        "status": r.status,
                        "data": r.data_kind,
                        "tasks": list(r.tasks),
                        "citation": r.citation,
                        "reference": r.reference,
                    }
                    for r in recipes
                ]
            )
        )
        return
    t = Table(title="biodl systems (biodl systems --json for full citations)", show_lines=False)
    for c in ("name", "system", "status", "data", "tasks", "reference"):
        t.add_column(c, overflow="fold")
    for r in recipes:
        t.add_row(r.name, r.title, r.status, r.data_kind, ", ".join(r.tasks), r.short_citation)
    console.print(t)


@app.command()
def train(
    data: Path | None = typer.Argument(
        None,
        help="Training file: TSV/CSV with sequence + label columns (DeepBind .seq "
        "files too) or FASTA with class:1 in the headers; for other systems, their data file.",
    ),
    data_opt: Path | None = typer.Option(None, "--data", help="Same as the DATA argument."),
    target: str | None = typer.Option(None, help="Target column(s), comma-separated (molecules, tables)."),
    samples: Path | None = typer.Option(None, help="Sample table (CellCnn: CSV of file, label[, group])."),
    genome: Path | None = typer.Option(None, help="Genome FASTA: train on windows labelled by --annotation."),
    annotation: list[Path] | None = typer.Option(
        None, help="GFF/BED annotation(s) labelling genome windows."
    ),
    labels: str | None = typer.Option(
        None, help="Feature types used as labels, comma-separated (e.g. CDS,tRNA)."
    ),
    set_: list[str] | None = typer.Option(None, "--set", help="Data/task option KEY=VALUE (repeatable)."),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Run directory (model.pt, checkpoints, history, report)."
    ),
    system: str = typer.Option("deepbind", "--system", "-s", help="Recipe name; see `biodl systems`."),
    valid: Path | None = typer.Option(None, help="Validation file (default: hold out --valid-fraction)."),
    test: Path | None = typer.Option(None, help="Held-out test file, evaluated after training."),
    task: str | None = typer.Option(
        None, help="binary, multilabel, multiclass or regression (default: guessed from the labels)."
    ),
    valid_fraction: float | None = typer.Option(
        None, help="Fraction of the training data held out for validation (default: 0.1; per system)."
    ),
    shuffle_negatives: str = typer.Option(
        "auto",
        help="auto: add dinucleotide-shuffled negatives when all "
        "labels are 1 (DeepBind's protocol); yes; no.",
    ),
    resample_negatives: bool = typer.Option(
        False, help="Re-shuffle the added negatives every epoch (DeepBind's protocol) instead of once."
    ),
    seq_col: str | None = typer.Option(None, help="Sequence column (default: seq/sequence)."),
    label_col: str | None = typer.Option(
        None, help="Label column(s), comma-separated (default: Bound/label/class)."
    ),
    length: int | None = typer.Option(None, "--pad", help="Pad with N / crop every sequence to this length."),
    rc_augment: bool = typer.Option(False, help="Reverse-complement augmentation."),
    shift: int = typer.Option(0, help="Random shift augmentation of up to this many bases."),
    class_weight: bool = typer.Option(False, help="Weight the loss by inverse class frequency."),
    iupac_as_n: bool = typer.Option(False, help="Read IUPAC ambiguity codes (R, Y, ...) as N."),
    uppercase: bool = typer.Option(False, help="Upper-case sequences on reading (soft-masked input)."),
    epochs: int | None = typer.Option(None, help="Maximum epochs (default: the recipe's)."),
    patience: int | None = typer.Option(None, help="Early-stopping patience in epochs (0 = off)."),
    min_epochs: int = typer.Option(0, help="Train at least this many epochs before early stopping may stop."),
    batch_size: int | None = typer.Option(None, help="Batch size."),
    lr: float | None = typer.Option(None, help="Learning rate."),
    weight_decay: float | None = typer.Option(None, help="AdamW weight decay."),
    seed: int = typer.Option(0, help="Seed: the same seed gives the same numbers on CPU."),
    device: str = DeviceOpt,
    devices: str = typer.Option("auto", help="Lightning devices (e.g. 4, or 0,1)."),
    strategy: str = typer.Option("auto", help="Lightning strategy (e.g. ddp)."),
    num_nodes: int = typer.Option(1, help="Lightning num_nodes for multi-node training."),
    precision: str | None = typer.Option(None, help="Lightning precision (e.g. 16-mixed, bf16-mixed)."),
    num_workers: int = typer.Option(0, help="DataLoader workers."),
    resume: bool = typer.Option(True, help="Resume from OUT/checkpoints/last.ckpt when it exists."),
    model_option: list[str] | None = typer.Option(
        None, "--model-option", "-m", help="Model option KEY=VALUE (repeatable), e.g. -m num_motifs=32."
    ),
    progress: bool = typer.Option(True, help="Show a progress bar."),
    skip_invalid: bool = SkipInvalidOpt,
) -> None:
    """Train a system on a labelled sequence file (or its own kind of data).

    Example: biodl train REST_AC.seq.gz --test REST_B.seq.gz --system deepbind --out runs/rest
    """
    from biodl.api import train as api_train
    from biodl.plugins import plugin_for
    from biodl.recipes import get_recipe
    from biodl.train.engine import TrainConfig

    try:
        if data is not None and data_opt is not None and data != data_opt:
            raise BiodlError("give the training file once (DATA or --data)")
        data = data or data_opt
        recipe = get_recipe(system)
        defaults = dict(recipe.train_defaults)
        overrides = dict(
            max_epochs=epochs, patience=patience, batch_size=batch_size, lr=lr, weight_decay=weight_decay
        )
        defaults.update({k: v for k, v in overrides.items() if v is not None})
        dev = int(devices) if devices.isdigit() else devices
        cfg = TrainConfig(
            **{k: v for k, v in defaults.items() if k in TrainConfig.__dataclass_fields__},
            seed=seed,
            device=device,
            devices=dev,
            strategy=strategy,
            num_nodes=num_nodes,
            precision=precision,
            num_workers=num_workers,
            resume=resume,
            progress=progress,
            min_epochs=min_epochs,
        )
        options = {
            "target": target,
            "samples": samples,
            "genome": genome,
            "annotation": annotation,
            "labels": labels,
            "task": task,
            "valid_fraction": valid_fraction,
            "lr": lr,
            "epochs": epochs,
            "batch_size": batch_size,
            "rc_augment": rc_augment,
            "shift": shift,
            "class_weight": class_weight,
        }
        options.update(_parse_options(set_))
        if skip_invalid:
            options["skip_invalid"] = True
        plugin = plugin_for(recipe, options)
        if plugin is not None:
            s = plugin.train(
                recipe.name,
                out,
                cfg,
                data=data,
                valid=valid,
                test=test,
                options=options,
                model_options=_parse_options(model_option),
                quiet=False,
            )
            _print_summary(s)
            return
        if data is None:
            raise BiodlError("no training file given (DATA or --data)")
        _no_skip_invalid(options)
        s = api_train(
            system,
            data,
            out,
            valid=valid,
            test=test,
            task=task,
            valid_fraction=0.1 if valid_fraction is None else valid_fraction,
            shuffle_negatives=shuffle_negatives,
            resample_negatives=resample_negatives,
            seq_col=seq_col,
            label_cols=label_col,
            length=length,
            rc_augment=rc_augment,
            shift=shift,
            class_weight=class_weight,
            iupac_as_n=iupac_as_n,
            uppercase=uppercase,
            config=cfg,
            model_options=_parse_options(model_option),
        )
    except BiodlError as e:
        _fail(e)
    _print_summary(s)


def _print_summary(s: dict) -> None:
    if s.get("rank") == "non-zero":  # a DDP worker process: rank 0 reports
        return
    t = Table(title=f"{s['system']} ({s['task']})")
    t.add_column("what")
    t.add_column("value", justify="right")
    for k in ("n_train", "n_valid", "n_test", "best_epoch", "epochs_run", "minutes"):
        if s.get(k) is not None:
            t.add_row(k, str(s[k]))
    for k, v in (s.get("val_metrics") or {}).items():
        t.add_row(k, f"{v:.4f}")
    for k, v in (s.get("test_metrics") or {}).items():
        if "/" not in k:
            t.add_row(f"test_{k}", f"{v:.4f}")
    console.print(t)
    console.print(f"model: {s['model']}")


@app.command()
def evaluate(
    model: Path = typer.Argument(..., help="Run directory or its model.pt."),
    data: Path = typer.Argument(..., help="Labelled file (same formats as train)."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Directory for metrics.json, predictions.tsv, roc.png, pr.png."
    ),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or auto."),
    batch_size: int = typer.Option(256),
    rc_average: bool | None = typer.Option(
        None,
        "--rc-average/--no-rc-average",
        help="Average both strands (default: if trained with --rc-augment).",
    ),
    set_: list[str] | None = typer.Option(None, "--set", help="Data option KEY=VALUE (repeatable)."),
    skip_invalid: bool = SkipInvalidOpt,
) -> None:
    """Evaluate a trained model on a labelled file (AUROC/AUPRC, accuracy or correlation).

    Example: biodl evaluate runs/rest REST_B.seq.gz --out runs/rest/eval
    """
    from biodl.api import evaluate as api_evaluate
    from biodl.plugins import plugin_for_model

    try:
        plugin = plugin_for_model(model)
        if plugin is not None:
            r = plugin.evaluate(
                model,
                data,
                out_dir=out,
                device=device,
                options=_eval_options(set_, rc_average, skip_invalid),
                quiet=True,
            )
        else:
            _no_skip_invalid({"skip_invalid": skip_invalid})
            r = api_evaluate(
                model,
                data,
                out_dir=out,
                device=device,
                batch_size=batch_size,
                quiet=True,
                rc_average=rc_average,
            )
    except BiodlError as e:
        _fail(e)
    console.print_json(json.dumps(r["metrics"]))


@app.command()
def predict(
    model: Path = typer.Argument(..., help="Run directory or its model.pt."),
    data: Path = typer.Argument(..., help="FASTA or table of sequences (labels not needed)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Output TSV (default: standard output)."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or auto."),
    batch_size: int = typer.Option(256),
    rc_average: bool | None = typer.Option(
        None,
        "--rc-average/--no-rc-average",
        help="Average both strands (default: if trained with --rc-augment).",
    ),
    set_: list[str] | None = typer.Option(None, "--set", help="Data option KEY=VALUE (repeatable)."),
    skip_invalid: bool = SkipInvalidOpt,
) -> None:
    """Score sequences with a trained model; output keeps input order and identifiers.

    Example: biodl predict runs/rest/model.pt seqs.fa --out scores.tsv
    """
    from biodl.api import predict as api_predict
    from biodl.plugins import plugin_for_model

    try:
        plugin = plugin_for_model(model)
        if plugin is not None:
            df = plugin.predict(
                model,
                data,
                out=out,
                device=device,
                options=_eval_options(set_, rc_average, skip_invalid),
                quiet=out is None,
            )
        else:
            _no_skip_invalid({"skip_invalid": skip_invalid})
            df = api_predict(
                model,
                data,
                out=out,
                device=device,
                batch_size=batch_size,
                quiet=out is None,
                rc_average=rc_average,
            )
    except BiodlError as e:
        _fail(e)
    if out is None:
        df.to_csv(sys.stdout, sep="\t", index=False, float_format="%.6g")


@app.command()
def report(
    run_dir: Path = typer.Argument(..., help="A run directory written by `biodl train` or `biodl demo`."),
    test: Path | None = typer.Option(None, help="Sequences for filter logos (default: the run's test file)."),
    data: Path | None = typer.Option(
        None, help="Molecule runs: molecules searched for substructures (default: the training file)."
    ),
) -> None:
    """Write RUN_DIR/report.html: metrics, ROC/PR and learning curves, filter logos (sequence
    runs) or fingerprint substructures (molecule runs).

    Example: biodl report runs/rest
    """
    from biodl.plugins import plugin_for_model
    from biodl.report.run import write_run_report

    try:
        plugin = plugin_for_model(run_dir) if (Path(run_dir) / "model.pt").exists() else None
        if plugin is not None and hasattr(plugin, "report"):
            p = plugin.report(run_dir, data=data, quiet=True)
        else:
            p = write_run_report(run_dir, test_file=test)
    except BiodlError as e:
        _fail(e)
    console.print(f"report: {p}")


@app.command()
def demo(
    out: Path = typer.Option(Path("biodl-demo"), "--out", "-o", help="Run directory."),
    experiment: str = typer.Option("REST", help="Bundled ENCODE experiment: REST or GABPA."),
    epochs: int = typer.Option(15, help="Maximum epochs."),
    seed: int = typer.Option(0),
    device: str = DeviceOpt,
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Train DeepBind on a bundled real ENCODE ChIP-seq experiment, test on its held-out
    fold and write a report (test AUC, ROC curve, filter logos).

    Example: biodl demo --out biodl-demo
    """
    from biodl.demo import run_demo

    try:
        s = run_demo(
            out, experiment=experiment, device=device, max_epochs=epochs, seed=seed, progress=progress
        )
    except BiodlError as e:
        _fail(e)
    _print_summary(s)
    auc = s["test_metrics"]["auroc"]
    console.print(
        f"held-out test AUC: {auc:.4f}  (released DeepBind model {s['released_model']}: "
        f"{s['released_model_auc']:.4f})"
    )
    console.print(f"report: {s['report']}")


@deepbind_app.command("score")
def deepbind_score(
    model_id: str = typer.Argument(..., help="Released model ID (e.g. D00328.018) or a params .txt file."),
    fasta: Path = typer.Argument(..., help="FASTA (or table) of sequences to score."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Output TSV (default: standard output)."),
) -> None:
    """Score sequences with an original released DeepBind model, as the deepbind tool would.

    Example: biodl deepbind score D00328.018 seqs.fa
    """
    from biodl.models.deepbind_released import score_fasta

    try:
        df = score_fasta(model_id, fasta)
    except BiodlError as e:
        _fail(e)
    if out is None:
        df.to_csv(sys.stdout, sep="\t", index=False, float_format="%.6f")
    else:
        from biodl.io._util import atomic_write_text

        atomic_write_text(out, df.to_csv(sep="\t", index=False, float_format="%.6f"))
        err.print(f"wrote {len(df)} scores to {out}")


@deepbind_app.command("list")
def deepbind_list(
    protein: str | None = typer.Option(None, help="Only models of this protein (case-insensitive)."),
    experiment: str | None = typer.Option(None, help="Only this experiment type (ChIP-seq, SELEX, ...)."),
) -> None:
    """List the released DeepBind models (ID, protein, type, species, experiment).

    Example: biodl deepbind list --protein CTCF
    """
    from biodl.models.deepbind_released import read_db

    try:
        db = read_db()
    except BiodlError as e:
        _fail(e)
    if protein:
        db = db[db["Protein"].str.upper() == protein.upper()]
    if experiment:
        db = db[db["Experiment"].str.lower() == experiment.lower()]
    cols = [
        c for c in ("ID", "Protein", "Type", "Species", "Experiment", "Experiment Details") if c in db.columns
    ]
    db[cols].to_csv(sys.stdout, sep="\t", index=False)


# Commands of other data kinds and of the interpretation layer live in their own modules,
# each with ``register(app)``.
_CLI_MODULES = ("biodl.cli_interpret", "biodl.cli_molecules", "biodl.cli_expression", "biodl.cli_cells")


def _load_cli_modules() -> None:
    import importlib
    import importlib.util

    for mod in _CLI_MODULES:
        if importlib.util.find_spec(mod) is not None:
            importlib.import_module(mod).register(app)


_load_cli_modules()


def main() -> None:
    try:
        app()
    except BiodlError as e:  # pragma: no cover - safety net
        err.print(f"error: {e}")
        sys.exit(2)


if __name__ == "__main__":
    main()
