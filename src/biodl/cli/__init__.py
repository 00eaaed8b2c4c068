"""The ``biodl`` command line: a thin typer app over :mod:`biodl.pipeline`.

``train``, ``evaluate``, ``predict`` and ``report`` work for every recipe and data kind: the
flags and ``--set KEY=VALUE`` options given are checked against the chosen kind's declared
options before any work starts (``biodl train --system NAME --help-options`` lists them).
Kind-specific commands (``biodl adage``, ``biodl molecules``, ``biodl cells``) come from the
kinds' ``cli`` modules; ``biodl systems`` and ``biodl --help`` import neither torch nor Lightning.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from biodl.errors import BiodlError, exit_with, print_error, stdout_console


class _Commands(TyperGroup):
    """The top-level command group: every command runs inside
    :func:`biodl.io._util.command_inputs` (no output may replace one of the command's inputs),
    and an error that escapes a command ends it with one line, never a traceback: a
    :class:`BiodlError` with its message, a truncated or corrupt compressed input as such, and
    anything unexpected as an internal error that says where it came from (set
    ``BIODL_TRACEBACK=1`` for the full traceback)."""

    def invoke(self, ctx):  # noqa: ANN001, ANN201 - click's signature
        from biodl.io._util import DECOMPRESSION_ERRORS, command_inputs

        # the command line's words, to name a corrupt input that its reader did not register
        words = [*getattr(ctx, "_protected_args", ()), *ctx.args]
        with command_inputs() as inputs:
            try:
                return super().invoke(ctx)
            except BiodlError as e:
                _fail(e)
            except BrokenPipeError:
                # the reader of standard output went away (`biodl ... | head`): stop quietly, as
                # command-line tools do; stdout is pointed at /dev/null so Python's exit flush is quiet
                with contextlib.suppress(OSError, ValueError):
                    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                raise typer.Exit(0) from None
            except DECOMPRESSION_ERRORS as e:
                _fail(
                    BiodlError(
                        f"{_compressed_inputs(inputs, words)} truncated or corrupt ({type(e).__name__}: {e})"
                    )
                )
            except Exception as e:
                if type(e).__module__.split(".")[0] in ("click", "typer") or os.environ.get(
                    "BIODL_TRACEBACK"
                ):
                    raise
                rank = os.environ.get("LOCAL_RANK", "0")
                if rank != "0" and _peer_gone(e):  # a DDP worker whose primary process stopped
                    err.print(f"[biodl] DDP worker (rank {rank}) stops: the primary process ended")
                    raise typer.Exit(143) from None
                if _out_of_memory(e):  # not an unchecked input
                    _fail(BiodlError(_no_memory(e)))
                _fail(BiodlError(_internal(e)))


def _out_of_memory(e: BaseException) -> bool:
    """Whether ``e`` says the process ran out of memory (Python's MemoryError, torch's and
    numpy's allocators' errors)."""
    text = str(e)
    return isinstance(e, MemoryError) or (
        isinstance(e, RuntimeError)
        and any(s in text for s in ("not enough memory", "CUDA out of memory", "Unable to allocate"))
    )


def _no_memory(e: BaseException) -> str:
    """One line for a process out of memory: what ran out, and what to change."""
    gpu = "CUDA" in str(e)
    return (
        f"out of {'GPU ' if gpu else ''}memory ({type(e).__name__}: {str(e)[:200]}); nothing was "
        "replaced. Give the process more memory (its ulimit -v / the job's memory limit), or use less: "
        "a smaller --batch-size, fewer rows at a time, "
        + ("or --device cpu" if gpu else "or a machine with more memory")
    )


def _peer_gone(e: BaseException) -> bool:
    """Whether ``e`` is torch.distributed's error for a peer process that went away (the primary
    of a DDP run stopped by SIGTERM or Ctrl-C, or killed)."""
    text = str(e)
    return any(s in text for s in ("Connection closed by peer", "Connection reset by peer", "Broken pipe"))


def _compressed_inputs(inputs: set[str], words: list[str]) -> str:
    """Which input a decompression error came from, as far as can be told: the command's one
    compressed input (``X is``), its compressed inputs (``one of X, Y is``), else ``an input
    file is``. The inputs are those its readers registered and the files its command line names."""
    from biodl.io._util import is_gzip

    named = {str(Path(w.split("=", 1)[-1]).resolve()) for w in words if not w.startswith("-") or "=" in w}
    inputs = {*inputs, *named}

    def compressed(p: str) -> bool:
        try:
            return Path(p).is_file() and is_gzip(Path(p))
        except OSError:
            return False

    gz = sorted(p for p in inputs if compressed(p))
    if len(gz) == 1:
        return f"{gz[0]}: the file is"
    if gz:
        return f"one of the compressed inputs ({', '.join(gz)}) is"
    return "an input file is"


def _internal(e: BaseException) -> str:
    """One line for an unexpected exception: its type, message and the innermost biodl frame."""
    import traceback

    root = Path(__file__).resolve().parents[1]  # the biodl package

    def at(f) -> str:
        p = Path(f.filename).resolve()
        return f"{'biodl/' + str(p.relative_to(root)) if p.is_relative_to(root) else p.name}:{f.lineno}"

    frames = traceback.extract_tb(e.__traceback__)
    ours = [f for f in frames if Path(f.filename).resolve().is_relative_to(root)]
    where = f" at {at(ours[-1])}" if ours else ""
    if frames and (not ours or frames[-1] is not ours[-1]):
        where += f" (raised in {at(frames[-1])})"
    return (
        f"unexpected {type(e).__name__}{where}: {e} -- this input or flag is not checked yet; "
        "please report it (BIODL_TRACEBACK=1 shows the traceback)"
    )


app = typer.Typer(
    cls=_Commands,
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    help="biodl: the classic deep-learning systems of computational biology on one PyTorch "
    "code base.\n\nStart with `biodl demo`, then `biodl systems`.",
)
console = stdout_console()


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        from biodl import __version__

        parts = [f"biodl {__version__}"]
        for dist in ("torch", "lightning"):  # as run.json records them; not imported
            try:
                parts.append(f"{dist} {version(dist)}")
            except PackageNotFoundError:
                pass
        typer.echo(", ".join(parts))
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(
        False,
        "--version",
        help="Print biodl's version (and torch's, Lightning's) and exit.",
        callback=_print_version,
        is_eager=True,
    ),
) -> None:
    """biodl: the classic deep-learning systems of computational biology on one PyTorch code base.

    Start with `biodl demo`, then `biodl systems`."""


err = Console(stderr=True, soft_wrap=True, emoji=False, markup=False, highlight=False)

#: How the CLI spells the kind options it has flags for (the rest are ``--set KEY``).
FLAGS = {
    "data": "DATA",
    "valid_file": "--valid",
    "test_file": "--test",
    "target": "--target",
    "samples": "--samples",
    "genome": "--genome",
    "annotation": "--annotation",
    "labels": "--labels",
    "task": "--task",
    "valid_fraction": "--valid-fraction",
    "shuffle_negatives": "--shuffle-negatives",
    "resample_negatives": "--resample-negatives",
    "seq_col": "--seq-col",
    "label_col": "--label-col",
    "pad": "--pad",
    "rc_augment": "--rc-augment",
    "shift": "--shift",
    "class_weight": "--class-weight",
    "iupac_as_n": "--iupac-as-n",
    "uppercase": "--uppercase",
    "skip_invalid": "--skip-invalid",
    "rc_average": "--rc-average",
    "alphabet": "--alphabet",
    "negatives": "--negatives",
}


_fail = exit_with  # print the error, exit 2


def _given(flags: dict, set_: list[str] | None) -> tuple[dict, dict]:
    """The kind options given (flags that were set, then ``--set``) and how each was spelled;
    a key given both ways is an error."""
    from biodl.options import parse_set

    given = {k: v for k, v in flags.items() if v is not None and v != []}
    spellings = {k: FLAGS.get(k, f"--{k.replace('_', '-')}") for k in given}
    for k, v in parse_set(set_).items():
        if k in given:
            raise BiodlError(f"{spellings[k]} and --set {k} both given; give it once")
        given[k], spellings[k] = v, f"--set {k}"
    for k, v in list(given.items()):
        if isinstance(v, Path):
            given[k] = str(v)
        elif isinstance(v, list):
            given[k] = [str(x) for x in v]
    return given, spellings


DeviceOpt = typer.Option("auto", "--device", help="cpu, cuda, cuda:N, mps or auto.")
#: ``--seed`` of the commands that draw random numbers (and check its range).
SeedOpt = typer.Option(
    0, help="Random seed (0 to 4294967295): the same seed gives the same numbers at a fixed thread count."
)
#: ``--batch-size`` of the scoring commands.
ScoreBatchOpt = typer.Option(256, help="Items per forward pass (memory, not results).")
#: ``--device`` of the scoring commands (predict, evaluate, ism, attribute, variants, motifs).
ScoreDeviceOpt = typer.Option(
    "auto", "--device", help="cpu, cuda, cuda:N, mps or auto (a CUDA GPU when there is one, as training)."
)
SetOpt = typer.Option(
    None,
    "--set",
    help="Option KEY=VALUE of the data kind (repeatable); the options of every stage: "
    "biodl train --system NAME --help-options.",
)
RcAverageOpt = typer.Option(
    None, "--rc-average/--no-rc-average", help="Average both strands (default: if trained with --rc-augment)."
)
NegativesOpt = typer.Option(
    None,
    "--negatives",
    help="Negatives FASTA of a GraphProt-style pair: DATA is then the positives FASTA (label 1), "
    "this file label 0.",
)
LabelsOpt = typer.Option(
    None,
    "--labels",
    help="Feature tables: the label file, one label per row (as at training; predict shows them beside).",
)
SeqColOpt = typer.Option(
    None, "--seq-col", help="Sequence tables: the sequence column (default: seq / sequence)."
)
LabelColOpt = typer.Option(
    None,
    "--label-col",
    help="Sequence tables: the label column(s), comma-separated or a glob ('f*') (default: the "
    "model's label columns when the file has them, else Bound / label / class).",
)
SkipInvalidOpt = typer.Option(
    None,
    "--skip-invalid",
    help="Molecules: drop rows RDKit cannot parse (each reported, with the count) instead of "
    "stopping at the first; predict keeps them with an empty score and the reason.",
)


@app.command()
def systems(as_json: bool = typer.Option(False, "--json", help="Print the registry as JSON.")) -> None:
    """List the classic systems in the registry with their status, data kinds and citation.

    Example: biodl systems
    """
    from biodl.registry import list_recipes

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
                        "kinds": list(r.kinds),
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
        t.add_row(r.name, r.title, r.status, ", ".join(r.kinds), ", ".join(r.tasks), r.short_citation)
    console.print(t)


def _help_options(system: str) -> None:
    """Print the options of every data kind a recipe trains on, its model options and the
    training options (plain text, one option a line)."""
    import dataclasses
    import inspect
    import textwrap

    from biodl.kinds import get_kind
    from biodl.options import describe
    from biodl.registry import TRAIN_FLAGS, get_recipe
    from biodl.train.fit import TrainConfig

    recipe = get_recipe(system)
    if not recipe.ready:
        raise BiodlError(f"system {recipe.name!r} is not implemented yet (status: {recipe.status})")

    def block(title: str, rows: list[tuple[str, str]]) -> None:
        typer.echo(f"{title}:")
        width = max((len(a) for a, _ in rows), default=0) + 2
        for a, b in rows:
            lines = textwrap.wrap(b, 100 - width - 2) or [""]
            typer.echo(f"  {a.ljust(width)}{lines[0]}")
            for more in lines[1:]:
                typer.echo(" " * (width + 2) + more)
        typer.echo("")

    for name in recipe.kinds:
        kind = get_kind(name)
        rows = []
        for row in describe(kind.options, recipe=recipe.name):
            default = recipe.option_defaults.get(row["name"])
            default = json.dumps(default) if default is not None else row["default"]
            what = f"{row['type']}" + (f", default {default}" if default else "") + f" [{row['stages']}]"
            rows.append((row["option"], f"{row['help']} ({what})"))
        block(f"{recipe.name} on {kind.title}: data options", rows)
    params = inspect.signature(recipe.factory).parameters
    rows = []
    for p in recipe.model_params():
        d = recipe.model_defaults.get(p, params[p].default)
        rows.append((p, "" if d is inspect.Parameter.empty else f"default {json.dumps(d, default=str)}"))
    block(f"{recipe.name}: model options (-m KEY=VALUE or --set KEY=VALUE)", rows)
    td = recipe.train_defaults
    unused = set(recipe.unused_training)
    shown = [n for n in ("max_epochs", "patience", "batch_size", "lr", "weight_decay") if n not in unused]
    fdefault = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    kinds = [get_kind(n) for n in recipe.kinds]
    also = ["--seed", "--device"]
    also += [
        TRAIN_FLAGS[f]
        for f in ("devices", "strategy", "num_nodes", "min_epochs", "precision", "profiler", "num_workers")
        if f not in unused
    ]
    if any(kd.supports_ensemble for kd in kinds):
        also.append("--ensemble")
    if any(kd.supports_calibration for kd in kinds):
        also.append(
            "--calibrate (--calibrate-top, --calibrate-budget, --calibrate-subsample, --calibrate-folds, "
            "--calibrate-epochs)"
        )
    also.append("--resume")
    rows = [(TRAIN_FLAGS[n], str(td.get(n, fdefault[n]))) for n in shown]
    if unused:
        rows.append(
            ("not used", f"{', '.join(TRAIN_FLAGS[f] for f in recipe.unused_training)}: {recipe.unused_why}")
        )
    # one flag per row: a row naming them all would squeeze the description column to nothing
    block("training options (this recipe's defaults)", [*rows, ("also", ", ".join(also))])


@app.command()
def train(
    data: Path | None = typer.Argument(
        None,
        help="Training file: TSV/CSV with sequence + label columns (DeepBind .seq "
        "files too) or FASTA with class:1 in the headers; for other systems, their data file.",
    ),
    data_opt: Path | None = typer.Option(None, "--data", help="Same as the DATA argument."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Run directory (model.pt, checkpoints, history, report)."
    ),
    system: str = typer.Option("deepbind", "--system", "-s", help="Recipe name; see `biodl systems`."),
    kind: str | None = typer.Option(
        None, "--kind", help="Data kind (default: from the options; see --help-options)."
    ),
    help_options: bool = typer.Option(
        False, "--help-options", help="List the system's data, model and training options."
    ),
    target: str | None = typer.Option(None, help="Target column(s), comma-separated (molecules)."),
    samples: Path | None = typer.Option(None, help="Sample table (CellCnn: CSV of file, label[, group])."),
    genome: Path | None = typer.Option(None, help="Genome FASTA: train on windows labelled by --annotation."),
    annotation: list[Path] | None = typer.Option(
        None, help="GFF/BED annotation(s) labelling genome windows."
    ),
    labels: str | None = typer.Option(
        None,
        help="Genome windows: the feature types used as labels, comma-separated (e.g. CDS,tRNA); "
        "feature tables (dfs, pedla, deep-enhancer): the file of the rows' classes.",
    ),
    set_: list[str] | None = SetOpt,
    valid: Path | None = typer.Option(None, help="Validation file (default: hold out --valid-fraction)."),
    test: Path | None = typer.Option(None, help="Held-out test file, evaluated after training."),
    task: str | None = typer.Option(
        None, help="binary, multilabel, multiclass or regression (default: guessed from the labels)."
    ),
    valid_fraction: float | None = typer.Option(
        None,
        help="Fraction of the training data held out for validation (default: the recipe's, 0.1 for "
        "most; CellCnn holds out 0.2 of each sample's cells; --help-options).",
    ),
    shuffle_negatives: str | None = typer.Option(
        None,
        help="auto (default): add dinucleotide-shuffled negatives when all labels are 1 (DeepBind's "
        "protocol); yes; no.",
    ),
    resample_negatives: bool | None = typer.Option(
        None, "--resample-negatives", help="Re-shuffle the added negatives every epoch (DeepBind's protocol)."
    ),
    seq_col: str | None = typer.Option(None, help="Sequence column (default: seq/sequence)."),
    label_col: str | None = typer.Option(
        None, help="Label column(s), comma-separated (default: Bound/label/class)."
    ),
    length: int | None = typer.Option(None, "--pad", help="Pad with N / crop every sequence to this length."),
    rc_augment: bool | None = typer.Option(None, "--rc-augment", help="Reverse-complement augmentation."),
    shift: int | None = typer.Option(None, help="Random shift augmentation of up to this many bases."),
    class_weight: bool | None = typer.Option(
        None,
        "--class-weight/--no-class-weight",
        help="Weight the loss by inverse class frequency (default: the recipe's: on for dfs and pedla, "
        "off otherwise; --help-options).",
        show_default=False,
    ),
    iupac_as_n: bool | None = typer.Option(
        None, "--iupac-as-n", help="Read IUPAC ambiguity codes (R, Y, ...) as N."
    ),
    uppercase: bool | None = typer.Option(
        None, "--uppercase", help="Upper-case sequences on reading (soft-masked input)."
    ),
    alphabet: str | None = typer.Option(
        None, help="auto (default), dna or rna: RNA (U and no T under auto) is scanned on one strand."
    ),
    negatives: Path | None = NegativesOpt,
    epochs: int | None = typer.Option(
        None,
        help="Maximum epochs (default: the recipe's, as a soft cap: training goes on past it while every "
        "epoch still improves validation, up to 3x).",
    ),
    patience: int | None = typer.Option(None, help="Early-stopping patience in epochs (0 = off)."),
    min_epochs: int = typer.Option(0, help="Train at least this many epochs before early stopping may stop."),
    batch_size: int | None = typer.Option(None, help="Batch size."),
    lr: float | None = typer.Option(None, help="Learning rate."),
    weight_decay: float | None = typer.Option(None, help="Weight decay."),
    seed: int = typer.Option(
        0, help="Seed: the same seed gives the same numbers on CPU at a fixed thread count."
    ),
    device: str = DeviceOpt,
    devices: str = typer.Option(
        "auto",
        help="Lightning devices: auto (one GPU, or one CPU process; --device cuda:N is GPU N), a count "
        "(4: DDP over 4 GPUs or CPU processes) or GPU indices (0,2).",
    ),
    strategy: str = typer.Option("auto", help="Lightning strategy (e.g. ddp)."),
    num_nodes: int = typer.Option(1, help="Lightning num_nodes for multi-node training."),
    precision: str | None = typer.Option(None, help="Lightning precision (e.g. 16-mixed, bf16-mixed)."),
    profiler: str | None = typer.Option(
        None,
        help="simple or advanced: Lightning's profile of the fit (time per loop action) in "
        "OUT/fit-profile.txt.",
    ),
    num_workers: int = typer.Option(0, help="DataLoader workers."),
    ensemble: int = typer.Option(
        1,
        help="Train K networks (seeds SEED .. SEED+K-1, each in OUT/memberJ) and keep them as one model "
        "predicting their mean (DNA-sequence kinds and molecules).",
    ),
    calibrate: int = typer.Option(
        0,
        help="DeepBind's calibration protocol: N settings (the run's own, then random draws from the "
        "recipe's ranges) scored by 3-fold cross-validation on the training split, the best trained "
        "as usual (DNA-sequence kinds). Finished trials are kept in OUT/calibration.jsonl.",
        metavar="N",
    ),
    calibrate_top: int = typer.Option(
        1, help="With --calibrate: keep the K best settings as one model predicting their mean.", metavar="K"
    ),
    calibrate_budget: float | None = typer.Option(
        None, help="With --calibrate: start no new trial once this many seconds are spent.", metavar="SECONDS"
    ),
    calibrate_subsample: int = typer.Option(
        10_000,
        help="With --calibrate: cross-validate on at most this many training items (0: all).",
        metavar="M",
    ),
    calibrate_folds: int = typer.Option(3, help="With --calibrate: cross-validation folds."),
    calibrate_epochs: int = typer.Option(
        0, help="With --calibrate: epochs per fold (0: enough for ~20,000 examples, 3 to --epochs)."
    ),
    resume: bool = typer.Option(True, help="Resume from OUT/checkpoints/last.ckpt when it exists."),
    model_option: list[str] | None = typer.Option(
        None, "--model-option", "-m", help="Model option KEY=VALUE (repeatable), e.g. -m num_motifs=32."
    ),
    progress: bool = typer.Option(True, help="Show a progress bar."),
    skip_invalid: bool | None = SkipInvalidOpt,
    rc_average: bool | None = RcAverageOpt,
) -> None:
    """Train a system on its kind of data; evaluates the held-out test set and writes the run.

    Example: biodl train REST_AC.seq.gz --test REST_B.seq.gz --system deepbind --out runs/rest

    Calibrated (12 settings, 3-fold cross-validation on the training data):
    biodl train REST_AC.seq.gz --test REST_B.seq.gz --calibrate 12 --out runs/rest-cal
    """
    from biodl.options import parse_set

    try:
        if help_options:
            _help_options(system)
            return
        from biodl.pipeline import train as run_train
        from biodl.registry import get_recipe
        from biodl.train.fit import TrainConfig

        if data is not None and data_opt is not None and data != data_opt:
            raise BiodlError("give the training file once (DATA or --data)")
        if out is None:
            raise BiodlError("give the run directory with --out DIR")
        recipe = get_recipe(system)
        flags = dict(
            data=data or data_opt,
            valid_file=valid,
            test_file=test,
            target=target,
            samples=samples,
            genome=genome,
            annotation=annotation,
            labels=labels,
            task=task,
            valid_fraction=valid_fraction,
            shuffle_negatives=shuffle_negatives,
            resample_negatives=resample_negatives,
            seq_col=seq_col,
            label_col=label_col,
            pad=length,
            rc_augment=rc_augment,
            shift=shift,
            class_weight=class_weight,
            iupac_as_n=iupac_as_n,
            uppercase=uppercase,
            alphabet=alphabet,
            negatives=negatives,
            skip_invalid=skip_invalid,
            rc_average=rc_average,
        )
        given, spellings = _given(flags, set_)
        cal_options = dict(
            calibrate_top=calibrate_top,
            calibrate_budget=calibrate_budget,
            calibrate_subsample=calibrate_subsample,
            calibrate_folds=calibrate_folds,
            calibrate_epochs=calibrate_epochs,
        )
        if not calibrate:  # options of --calibrate given without it would be ignored
            unused = [
                "--" + name.replace("_", "-")
                for name, value in cal_options.items()
                if value != TrainConfig.__dataclass_fields__[name].default
            ]
            if unused:
                raise BiodlError(
                    f"{', '.join(unused)} {'go' if len(unused) > 1 else 'goes'} with --calibrate N "
                    "(the number of settings to try); give it, or leave them out"
                )
        chosen = dict(
            max_epochs=epochs, patience=patience, batch_size=batch_size, lr=lr, weight_decay=weight_decay
        )
        cfg = TrainConfig.for_recipe(
            recipe.train_defaults,
            **chosen,
            seed=seed,
            device=device,
            devices=int(devices) if devices.isdigit() else devices,
            strategy=strategy,
            num_nodes=num_nodes,
            precision=precision,
            profiler=profiler,
            # without --epochs the recipe's cap is soft: a run still improving there goes on
            # (up to 3x the cap) until an epoch does not improve, so validation, not the cap, stops it
            extend_epochs=0
            if epochs is not None
            else 2 * int(recipe.train_defaults.get("max_epochs", TrainConfig.max_epochs)),
            num_workers=num_workers,
            ensemble=ensemble,
            calibrate=calibrate,
            **cal_options,
            resume=resume,
            progress=progress,
            min_epochs=min_epochs,
        )
        s = run_train(
            recipe.name,
            out,
            options=given,
            model_options=parse_set(model_option, "--model-option"),
            config=cfg,
            kind=kind,
            spellings=spellings,
            config_given=tuple(k for k, v in chosen.items() if v is not None),
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
        if s.get(k) is None:
            continue
        if k == "best_epoch":  # counted from 1, as the log's epochs and epochs_run are (summary.json: from 0)
            t.add_row("best epoch", f"{int(s[k]) + 1} of {s.get('epochs_run', '?')}")
        elif k != "epochs_run" or s.get("best_epoch") is None:
            t.add_row(k, str(s[k]))
    for k, v in (s.get("val_metrics") or {}).items():
        t.add_row(k, f"{v:.4f}")
    for k, v in (s.get("test_metrics") or {}).items():
        if "/" not in k and isinstance(v, (int, float)):
            t.add_row(f"test_{k}", f"{v:.4f}")
    console.print(t)
    console.print(f"model: {s['model']}")


def _written(folder: Path, since: float) -> str:
    """What a command wrote into ``folder`` (files changed since ``since``): the names, or for
    many files their count per type (``metrics.json, predictions.tsv, 2 .png, 8 .rr``)."""
    from collections import Counter

    files = sorted(
        p
        for p in Path(folder).rglob("*")
        if p.is_file() and not p.name.startswith(".") and p.stat().st_mtime >= since - 1
    )
    single = [p.name for p in files if p.suffix in (".json", ".tsv")]
    per_type = Counter(p.suffix or "(no suffix)" for p in files if p.name not in single)
    return ", ".join(single + [f"{n} {s}" for s, n in sorted(per_type.items())]) or "nothing"


@app.command()
def evaluate(
    model: Path = typer.Argument(..., help="Run directory or its model.pt."),
    data: Path = typer.Argument(..., help="Labelled data of the model's kind (same formats as train)."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Directory for metrics.json, predictions.tsv and plots."
    ),
    device: str = ScoreDeviceOpt,
    batch_size: int = ScoreBatchOpt,
    rc_average: bool | None = RcAverageOpt,
    set_: list[str] | None = SetOpt,
    skip_invalid: bool | None = SkipInvalidOpt,
    negatives: Path | None = NegativesOpt,
    labels: str | None = LabelsOpt,
    seq_col: str | None = SeqColOpt,
    label_col: str | None = LabelColOpt,
) -> None:
    """Evaluate a trained model on labelled data (AUROC/AUPRC, accuracy, correlation, MAE, ...;
    binary and multi-label sequence and genome-window models: MCC, accuracy, sensitivity and
    specificity at the decision threshold chosen on the validation split at training; DFS and CpG
    models: accuracy and MCC at probability 0.5, shown as threshold 0.5; molecules: AUROC/AUPRC).

    Example: biodl evaluate runs/rest REST_B.seq.gz --out runs/rest/eval
    """
    import time

    started = time.time()
    try:
        from biodl.pipeline import evaluate as run_evaluate
        from biodl.pipeline import items_phrase

        given, spellings = _given(
            {
                "rc_average": rc_average,
                "skip_invalid": skip_invalid,
                "negatives": negatives,
                "labels": labels,
                "seq_col": seq_col,
                "label_col": label_col,
            },
            set_,
        )
        r = run_evaluate(
            model,
            data,
            out_dir=out,
            device=device,
            options=given,
            batch_size=batch_size,
            spellings=spellings,
            quiet=True,
        )
    except BiodlError as e:
        _fail(e)
    err.print(
        f"[biodl] scored {items_phrase(r)} of {r['data']}"
        + (f"; wrote {_written(out, started)} in {out}" if out is not None else " (--out DIR keeps them)"),
        highlight=False,
        markup=False,
    )
    from biodl.io._util import json_safe

    console.print_json(json.dumps(json_safe(r["metrics"])))  # null, not NaN: the output is JSON


@app.command()
def predict(
    model: Path = typer.Argument(..., help="Run directory or its model.pt."),
    data: Path = typer.Argument(..., help="Inputs of the model's kind (labels not needed)."),
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        help="Output file; its suffix picks the format: .tsv / .csv (text, optionally .gz), .npz, "
        ".h5 / .hdf5, .parquet (default: TSV on standard output).",
    ),
    format_: str | None = typer.Option(
        None,
        "--format",
        help="tsv, csv, npz, h5 or parquet, whatever the --out suffix (npz / h5: ids, a float32 "
        "predictions matrix and column names, for many-output models).",
    ),
    device: str = ScoreDeviceOpt,
    batch_size: int = ScoreBatchOpt,
    rc_average: bool | None = RcAverageOpt,
    set_: list[str] | None = SetOpt,
    skip_invalid: bool | None = SkipInvalidOpt,
    labels: str | None = LabelsOpt,
    seq_col: str | None = SeqColOpt,
) -> None:
    """Score new inputs with a trained model; output keeps input order and identifiers.

    Example: biodl predict runs/rest/model.pt seqs.fa --out scores.tsv

    (--out scores.npz, .h5 or .parquet: binary formats; .tsv.gz / .csv: text.)
    """
    try:
        from biodl.pipeline import predict as run_predict

        given, spellings = _given(
            {"rc_average": rc_average, "skip_invalid": skip_invalid, "labels": labels, "seq_col": seq_col},
            set_,
        )
        df = run_predict(
            model,
            data,
            out=out,
            device=device,
            options=given,
            batch_size=batch_size,
            spellings=spellings,
            quiet=out is None,
            format=format_,
            keep=out is None,  # a file takes the rows piece by piece: memory stays one piece's
        )
    except BiodlError as e:
        _fail(e)
    if out is None:
        from biodl.kinds import get_kind

        sep = "," if df.attrs.get("biodl_format") == "csv" else "\t"
        sys.stdout.write(get_kind(df.attrs.get("biodl_kind", "sequences")).predictions_text(df, sep=sep))


@app.command()
def report(
    run_dir: Path = typer.Argument(..., help="A run directory written by `biodl train` or `biodl demo`."),
    test: Path | None = typer.Option(
        None, help="Sequence runs: sequences for filter logos (default: the run's test file)."
    ),
    data: Path | None = typer.Option(
        None,
        help="Inputs interpreted: molecules searched for substructures, samples for CellCnn, a genome for "
        "window runs (default: the run's own).",
    ),
    set_: list[str] | None = SetOpt,
) -> None:
    """Write RUN_DIR/report.html for any run: metrics, test set and learning curves, then the
    kind's own sections (filter logos and ISM, substructures, node signatures, selected cells).

    Example: biodl report runs/rest
    """
    try:
        from biodl.pipeline import report as run_report

        if test is not None and data is not None:
            raise BiodlError("give the inputs once (--test or --data)")
        given, spellings = _given({}, set_)
        p = run_report(run_dir, data=test or data, options=given, spellings=spellings, quiet=True)
    except BiodlError as e:
        _fail(e)
    console.print(f"report: {p}")


@app.command()
def demo(
    out: Path = typer.Option(Path("biodl-demo"), "--out", "-o", help="Run directory."),
    experiment: str = typer.Option("REST", help="Bundled ENCODE experiment: REST or GABPA."),
    epochs: int = typer.Option(15, help="Maximum epochs."),
    seed: int = SeedOpt,
    device: str = DeviceOpt,
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Train DeepBind on a bundled real ENCODE ChIP-seq experiment, test on its held-out
    fold and write a report (test AUC, ROC curve, filter logos).

    Example: biodl demo --out biodl-demo
    """
    try:
        from biodl.demo import run_demo

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


def _load_cli_modules() -> None:
    """Commands of the interpretation layer, the released DeepBind models and every kind with a
    ``cli`` module (each has ``register(app)``)."""
    import importlib
    import importlib.util

    from biodl.kinds import KINDS

    mods = ["biodl.cli.interpret", "biodl.cli.deepbind", *(f"{pkg}.cli" for pkg in KINDS.values())]
    for mod in mods:
        if importlib.util.find_spec(mod) is not None:
            importlib.import_module(mod).register(app)


_load_cli_modules()


_MAIN_PID: list[int] = []


def _terminate(signum, frame) -> None:  # noqa: ARG001 - signal handler signature
    """SIGTERM (a job scheduler stopping the job) unwinds like Ctrl-C: ``finally`` blocks run, so
    half-written temporary outputs are removed and the user's files are left as they were.
    Forked worker processes inherit the handler; they exit at once, as by default."""
    if os.getpid() not in _MAIN_PID:
        os._exit(128 + signum)
    _stop_ddp_workers(signum)
    raise SystemExit(128 + signum)


def _ddp_workers() -> list[int]:
    """The process ids of this process's DDP worker processes (children Lightning started with
    ``LOCAL_RANK`` 1, 2, ...); none in a worker, or where ``/proc`` is not there."""
    import glob

    if os.environ.get("LOCAL_RANK", "0") != "0":
        return []
    found = []
    for f in glob.glob(f"/proc/{os.getpid()}/task/*/children"):
        try:
            kids = open(f).read().split()
        except OSError:
            continue
        for pid in kids:
            try:
                env = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
            except OSError:
                continue
            rank = next((e.split(b"=", 1)[1] for e in env if e.startswith(b"LOCAL_RANK=")), None)
            if rank not in (None, b"0"):
                found.append(int(pid))
    return found


#: Seconds a DDP run stopped by SIGTERM may take to unwind before it is ended outright.
DDP_STOP_GRACE = 20.0


def _watch_sigterm() -> None:
    """A SIGTERM reaches Python's handler only when the main thread is back in the interpreter:
    a DDP primary blocked inside a collective (gloo) whose worker waits in another never gets
    there. The C-level handler also writes the signal to a wake-up pipe; a thread reading it
    gives such a run :data:`DDP_STOP_GRACE` seconds, then ends its workers and itself (exit 143;
    temporary outputs left behind are removed by the next run)."""
    import signal
    import threading
    import time

    try:
        r, w = os.pipe()
        os.set_blocking(w, False)
        signal.set_wakeup_fd(w)
    except (OSError, ValueError):  # not the main thread, or no pipes: as before
        return

    def watch() -> None:
        while True:
            try:
                got = os.read(r, 64)
            except OSError:
                return
            if signal.SIGTERM in got and _ddp_workers():
                time.sleep(DDP_STOP_GRACE)
                for pid in _ddp_workers():
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
                with contextlib.suppress(OSError):
                    os.write(2, b"[biodl] stopped (SIGTERM): the DDP processes were ended after waiting "
                             b"for each other; rerun the same command to resume\n")  # fmt: skip
                os._exit(143)

    threading.Thread(target=watch, daemon=True, name="biodl-sigterm-watch").start()


def _stop_ddp_workers(signum: int) -> None:
    """Pass a SIGTERM on to this process's DDP worker processes (Lightning started them, with
    ``LOCAL_RANK`` 1, 2, ...): stopped alone, the primary could leave them, and itself, waiting
    in a collective for each other for ever. Linux only (``/proc``); elsewhere a no-op."""
    for pid in _ddp_workers():
        with contextlib.suppress(OSError):
            os.kill(pid, signum)


def _keep_freed_memory() -> None:
    """Fix glibc's malloc thresholds for this process, as ``MALLOC_MMAP_THRESHOLD_=32 MiB`` and
    ``MALLOC_TRIM_THRESHOLD_=128 MiB`` in the environment would (unless the user set either, or
    ``BIODL_DEFAULT_MALLOC``). By default glibc maps blocks over ~128 KiB anew and returns freed
    memory to the system eagerly (its thresholds adapt, but batches of tensors of a few MiB in
    mixed sizes keep resetting them), so a command that scores batch after batch spends much of
    its time faulting fresh pages in: `biodl variants` ran 1.5-2x slower (bench/README.md).
    Peak memory is unchanged (freed blocks are reused, not returned); other C libraries: no-op."""
    keys = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "BIODL_DEFAULT_MALLOC")
    if not sys.platform.startswith("linux") or any(k in os.environ for k in keys):
        return
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3  # malloc.h
        libc.mallopt(m_mmap_threshold, 32 * 2**20)  # glibc's largest on 64-bit
        libc.mallopt(m_trim_threshold, 128 * 2**20)
    except (OSError, AttributeError):  # not glibc
        pass


def _writable_config_dirs() -> None:
    """matplotlib (loaded by Lightning's torchmetrics, by every command that trains or scores)
    warns in two lines on every run when it cannot write its config folder (a read-only home);
    it then uses a temporary one anyway: so does biodl, quietly."""
    if "MPLCONFIGDIR" in os.environ:
        return
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    try:
        (base / "matplotlib").mkdir(parents=True, exist_ok=True)
        if os.access(base / "matplotlib", os.W_OK):
            return
    except OSError:
        pass
    import tempfile

    uid = os.getuid() if hasattr(os, "getuid") else "user"
    folder = Path(tempfile.gettempdir()) / f"biodl-matplotlib-{uid}"
    with contextlib.suppress(OSError):
        folder.mkdir(parents=True, exist_ok=True)
        os.environ["MPLCONFIGDIR"] = str(folder)


def main() -> None:
    import signal

    _writable_config_dirs()
    _keep_freed_memory()
    _MAIN_PID.append(os.getpid())
    signal.signal(signal.SIGTERM, _terminate)
    _watch_sigterm()
    try:
        app()
    except BiodlError as e:  # pragma: no cover - safety net
        print_error(e)
        sys.exit(2)
    except SystemExit as e:  # Ctrl-C (130) or SIGTERM (143): one line, unless the command said more
        from biodl.io._util import interrupt_said, note

        primary = os.environ.get("LOCAL_RANK", "0") == "0"  # a DDP worker: its primary says it
        if e.code in (130, 143) and not interrupt_said() and primary:
            how = "interrupted" if e.code == 130 else "stopped (SIGTERM)"
            note(
                f"[biodl] {how}; no output was left half-written (biodl replaces a file only when it "
                "is complete)"
            )
        raise


if __name__ == "__main__":
    main()
