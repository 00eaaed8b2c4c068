"""``train``, ``evaluate``, ``predict`` and ``report`` for every recipe and data kind.

One path for all kinds: the recipe names the kinds it accepts, the chosen kind
(:class:`~biodl.kinds.base.DataKind`) checks the options against its declared list, reads the
data and builds the network; training goes through the one runner (:func:`biodl.train.fit`),
scoring through the one inference loop (:func:`biodl.train.predict`), and the run is described
by one :class:`~biodl.train.checkpoint.RunMeta` in ``model.pt`` and ``run.json``. Evaluate,
predict and report dispatch on ``RunMeta.kind``.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from biodl.errors import BiodlInputError
from biodl.kinds import get_kind
from biodl.kinds.base import DataKind, TrainContext, check_labels, log
from biodl.options import resolve
from biodl.registry import Recipe, get_recipe

__all__ = ["choose_kind", "evaluate", "kind_options", "predict", "report", "train"]


def choose_kind(recipe: Recipe, given: dict[str, Any] | None = None, kind: str | None = None) -> DataKind:
    """The data kind a run of ``recipe`` uses: ``kind`` when named, else the first of the
    recipe's kinds whose trigger options were given (``--genome`` -> windows), else its default."""
    if not recipe.ready:
        raise BiodlInputError(f"system {recipe.name!r} is not implemented yet (status: {recipe.status})")
    if kind is not None:
        if kind not in recipe.kinds:
            raise BiodlInputError(
                f"{recipe.name} does not train on {kind} data (it takes: {', '.join(recipe.kinds)})"
            )
        return get_kind(kind)
    given = {k: v for k, v in (given or {}).items() if v is not None}
    for name in recipe.kinds[1:]:
        k = get_kind(name)
        if k.claims(given):
            return k
    return get_kind(recipe.kinds[0])


def _owner(recipe: Recipe, kind: DataKind) -> str:
    return f"{recipe.name} on {kind.title}"


def kind_options(
    recipe: Recipe,
    kind: DataKind,
    given: dict[str, Any],
    stage: str,
    spellings: dict[str, str] | None = None,
    model_options: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Check ``given`` against the kind's options for ``stage``: ``(options, model_options)``.

    At training, a ``--set`` key that is not a kind option but a parameter of the recipe's
    network is a model option (``--set num_motifs=32`` = ``-m num_motifs=32``). The recipe's
    ``option_defaults`` replace the kind's defaults of options not given.
    """
    given = {k: v for k, v in given.items() if v is not None}
    mopts = dict(model_options or {})
    declared = {o.name for o in kind.options}
    params: list[str] = []
    if stage == "train":
        params = recipe.model_params()
        for k in list(given):
            if k not in declared and k in params:
                mopts[k] = given.pop(k)
        recipe.check_model_options(mopts)
    hints = dict(kind.hints)
    spelled: dict[str, str] = {o.name: o.spelling for o in kind.options}
    if any(k not in declared and k not in params for k in given):  # say which kind takes them
        from biodl.kinds import KINDS

        others = [n for n in recipe.kinds if n != kind.name] + [n for n in KINDS if n not in recipe.kinds]
        for other in others:
            ok = get_kind(other)
            for o in ok.options:
                hints.setdefault(o.name, f"an option of {ok.title}")
                spelled.setdefault(o.name, o.spelling)
    spellings = {**spelled, **(spellings or {})}
    opts = resolve(
        kind.options,
        given,
        stage=stage,
        owner=_owner(recipe, kind),
        recipe=recipe.name,
        spellings=spellings,
        also_known=params,
        hints=hints,
    )
    by_name = {o.name: o for o in kind.options}
    for k, v in recipe.option_defaults.items():
        if k in opts and given.get(k) is None:
            opts[k] = by_name[k].convert(v)
    return opts, mopts


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(d, default=str))


# ------------------------------------------------------------------------------ train
def train(
    system: str,
    out_dir: str | Path,
    *,
    options: dict[str, Any] | None = None,
    model_options: dict[str, Any] | None = None,
    config=None,
    kind: str | None = None,
    spellings: dict[str, str] | None = None,
    config_given: tuple[str, ...] | frozenset[str] = (),
    quiet: bool = False,
) -> dict[str, Any]:
    """Train a recipe on its kind of data, evaluate it on the held-out test set, write the run.

    Parameters
    ----------
    system
        Recipe name (``biodl systems`` lists them).
    out_dir
        Run directory: ``model.pt``, ``run.json``, ``summary.json``, ``history.csv``,
        ``checkpoints/``, ``test/`` (metrics, predictions, plots), kind-specific outputs.
    options
        Kind options (``data``, ``test_file``, ``genome``, ``target``, ... and any ``--set``
        key); checked against the kind's declared options before any work starts.
    model_options
        Overrides of the recipe's model defaults (``-m KEY=VALUE``).
    config
        :class:`~biodl.train.fit.TrainConfig` (default: the recipe's ``train_defaults``).
    kind
        Force a data kind (default: chosen from the options, see :func:`choose_kind`).
    spellings
        How the user spelled each option (for error messages).
    config_given
        The :class:`~biodl.train.fit.TrainConfig` fields the user set (a search leaves them fixed).

    Returns
    -------
    dict
        Summary (also ``OUT/summary.json``): system, kind, task, model path, sizes, best epoch,
        validation and test metrics, minutes, and the kind's extras.
    """
    from biodl.train import TrainConfig, save_model, write_run_json
    from biodl.train.fit import finished_meta

    t0 = time.time()
    recipe = get_recipe(system)
    k = choose_kind(recipe, options, kind)
    opts, mopts = kind_options(recipe, k, dict(options or {}), "train", spellings, model_options)
    config = (config or TrainConfig.for_recipe(recipe.train_defaults)).check()
    if config.ensemble > 1 and not k.supports_ensemble:
        raise BiodlInputError(f"--ensemble is not available for {k.title} models (train one network)")
    out = Path(out_dir)
    for key in ("data", "samples", "valid_file", "test_file"):
        k.check_format(recipe.name, opts.get(key), "training")
    given = frozenset(k for k, v in (options or {}).items() if v is not None and k in opts)
    ctx = TrainContext(recipe, opts, mopts, config, out, quiet, frozenset(config_given), given)
    if out.exists() and not out.is_dir():
        raise BiodlInputError("--out names the run directory, and this is a file", path=out)
    splits = k.load(ctx)
    model, meta = k.build(ctx, splits)
    labels = k.training_labels(meta, splits)
    if labels is not None:
        check_labels(labels, meta.label_names, meta.task, quiet)
    _prepare_run_dir(out, recipe.name, k.name, config.resume, quiet)
    meta = meta.replace(
        options=_jsonable(opts), training=asdict(config), splits=dict(splits.info, **meta.splits)
    )
    if config.ensemble > 1:
        model, res, meta = _fit_ensemble(k, ctx, model, meta, splits)
    else:
        model, res, meta = k.fit(ctx, model, meta, splits)
    if not res.is_global_zero:
        return {
            "system": recipe.name,
            "kind": k.name,
            "task": meta.task,
            "rank": "non-zero",
            "model": str(out / "model.pt"),
        }
    meta = finished_meta(meta, res)
    model_path = save_model(out / "model.pt", model, meta)
    summary: dict[str, Any] = {
        "system": recipe.name,
        "kind": k.name,
        "task": meta.task,
        "out_dir": str(out),
        "model": str(model_path),
        **{k_: v for k_, v in meta.splits.items() if k_.startswith("n_")},
        "best_epoch": res.best_epoch,
        "epochs_run": res.epochs_run,
        "resumed_from": res.resumed_from,
        "val_metrics": meta.val_metrics,
        "config": dict(meta.training),
    }
    if splits.test is not None:
        ev = evaluate_table(
            k, model, meta, splits.test, out_dir=out / "test", device=config.device, options=opts, quiet=quiet
        )
        meta.metrics["test"] = ev["metrics"]
        meta.splits["n_test"] = ev["n"]
        summary["test_metrics"] = ev["metrics"]
        summary["n_test"] = ev["n"]
    summary.update(k.after_fit(ctx, model, meta, splits))
    summary["minutes"] = round((time.time() - t0) / 60, 3)
    write_run_json(out, meta)
    _write_summary(out, summary)
    if k.report_on_train and opts.get("report", True):
        summary["report"] = str(report(out, quiet=quiet))
        _write_summary(out, summary)
    return summary


def _fit_ensemble(k: DataKind, ctx: TrainContext, model, meta, splits):
    """``--ensemble K``: members 1..K built and trained with seeds ``seed .. seed + K - 1``, each
    in ``OUT/memberJ`` (its own checkpoints and history: a rerun resumes each member), then
    kept as one :class:`~biodl.train.ensemble.Ensemble` with the kind's validation metrics and
    thresholds of the ensemble."""
    from dataclasses import replace

    from biodl.train import FitResult
    from biodl.train.ensemble import Ensemble

    n = int(ctx.config.ensemble)  # train() has checked that the kind supports ensembles
    members, results = [], []
    for j in range(n):
        cfg = replace(ctx.config, seed=ctx.config.seed + j, ensemble=1)
        cj = replace(ctx, config=cfg, out=ctx.out / f"member{j + 1}")
        mj = model if j == 0 else k.build(cj, splits)[0]  # member 1 is the network built with --seed
        ctx.log(f"ensemble member {j + 1}/{n} (seed {cfg.seed}) in {cj.out}")
        mj, rj, _ = k.fit(cj, mj, meta, splits)
        if not rj.is_global_zero:  # another rank of a DDP run: rank 0 assembles the ensemble
            return mj, rj, meta
        members.append(mj.cpu())
        results.append(rj)
    ens = Ensemble(members).eval()
    meta = meta.replace(ensemble=n)
    meta, val = k.finish_ensemble(ctx, ens, meta, splits)
    shown = ", ".join(f"{m} {v:.4f}" for m, v in val.items())
    ctx.log(
        f"ensemble of {n}: best epochs {[r.best_epoch for r in results]}"
        + (f"; validation {shown}" if shown else "")
    )
    res = FitResult(
        ctx.out,
        None,
        sum(r.epochs_run for r in results),
        val,
        results[0].resumed_from,
        round(sum(r.seconds for r in results), 2),
        threads=results[0].threads,
    )
    return ens, res, meta


def _primary_process() -> bool:
    """False in the worker processes of a multi-process (DDP / SLURM) run."""
    return all(os.environ.get(v, "0") == "0" for v in ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID"))


def _prepare_run_dir(out: Path, system: str, kind: str, resume: bool, quiet: bool) -> None:
    """Make sure ``out`` will describe one run. A directory holding another system's run is
    refused (training there would mix two runs) unless ``--no-resume``; with ``--no-resume``
    the previous run's files are removed first (refused if an input of this command lies in
    it), so no report, test metrics or plots of the old run stay beside the new model."""
    from biodl.io._util import command_inputs_under
    from biodl.train import read_run_json

    if not (out / "run.json").exists() or not _primary_process():
        return
    try:
        prev = read_run_json(out)
        what, same = f"{prev.recipe} ({prev.kind}, {prev.status})", (prev.recipe, prev.kind) == (system, kind)
    except BiodlInputError:
        what, same = "an earlier biodl version or an unreadable run.json", False
    if resume and same:
        return
    if resume:
        raise BiodlInputError(
            f"holds a run of {what}; training {system} here would mix two runs in one directory. "
            "Give another --out, or --no-resume to replace that run (its files are removed)",
            path=out,
        )
    inside = command_inputs_under(out)
    if inside:
        raise BiodlInputError(
            f"--no-resume would clear this run directory, but it holds an input of this command "
            f"({inside[0]}); move the input or give another --out",
            path=out,
        )
    entries = list(out.iterdir())
    for e in entries:
        if e.is_dir() and not e.is_symlink():
            shutil.rmtree(e)
        else:
            e.unlink()
    log(f"[biodl] --no-resume: removed the previous run in {out} ({what}; {len(entries)} entries)", quiet)


def _write_summary(out: Path, summary: dict[str, Any]) -> None:
    from biodl.io._util import atomic_write_text

    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2, default=str) + "\n")


# --------------------------------------------------------------------- evaluate / predict
def _load(model_path: str | Path, device: str):
    from biodl.train import load_model

    model, meta = load_model(model_path, device=device)
    return model, meta, get_kind(meta.kind), get_recipe(meta.recipe)


def evaluate_table(
    kind: DataKind,
    model,
    meta,
    table,
    *,
    out_dir=None,
    device: str = "cpu",
    options=None,
    batch_size: int = 256,
    quiet: bool = True,
) -> dict[str, Any]:
    """Metrics of ``model`` on an already read labelled ``table``; with ``out_dir`` also
    ``metrics.json``, ``predictions.tsv`` and plots."""
    options = options or {}
    outputs, y = kind.score(model, meta, table, device=device, options=options, batch_size=batch_size)
    metrics = kind.metrics(meta, outputs, y, table)
    result: dict[str, Any] = {
        "metrics": metrics,
        "n": kind.size(table),
        "task": meta.task,
        "data": kind.source(table),
    }
    result.update(kind.result_extras(meta, table, outputs, y))
    if out_dir is not None:
        kind.write_evaluation(out_dir, result, meta, table, outputs, y)
    shown = ", ".join(
        f"{k} {v:.4f}" for k, v in metrics.items() if "/" not in k and isinstance(v, (int, float))
    )
    log(f"[biodl] {shown} on {result['n']} items of {result['data']}", quiet)
    return result


def evaluate(
    model_path: str | Path,
    data: str | Path | None,
    *,
    out_dir: str | Path | None = None,
    device: str = "cpu",
    options: dict[str, Any] | None = None,
    batch_size: int = 256,
    spellings: dict[str, str] | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """Metrics of a trained model on labelled data of its kind; with ``out_dir``, also
    ``metrics.json``, ``predictions.tsv`` and ROC/PR (classification) or scatter (regression) plots.

    Returns ``{"metrics": ..., "n": ..., "task": ..., "data": ...}``.
    """
    model, meta, k, recipe = _load(model_path, device)
    opts, _ = kind_options(recipe, k, dict(options or {}), "evaluate", spellings)
    k.check_format(meta.recipe, data)
    table = k.read(meta, data, opts, labelled=True, quiet=quiet)
    return evaluate_table(
        k,
        model,
        meta,
        table,
        out_dir=out_dir,
        device=device,
        options=opts,
        batch_size=batch_size,
        quiet=quiet,
    )


def predict(
    model_path: str | Path,
    data: str | Path | None,
    *,
    out: str | Path | None = None,
    device: str = "cpu",
    options: dict[str, Any] | None = None,
    batch_size: int = 256,
    spellings: dict[str, str] | None = None,
    quiet: bool = False,
    format: str | None = None,
):
    """Predictions of a trained model for new inputs of its kind (labels not needed); the
    table keeps the input order and identifiers and is written atomically to ``out``, in the
    format its suffix names (``.tsv``/``.csv``, optionally ``.gz``; ``.npz``; ``.h5``;
    ``.parquet``) or ``format`` (see :mod:`biodl.io.predictions`)."""
    from biodl.io.predictions import check_writer, output_format

    fmt = output_format(out, format) if out is None else None  # standard output: text only
    model, meta, k, recipe = _load(model_path, device)
    opts, _ = kind_options(recipe, k, dict(options or {}), "predict", spellings)
    k.check_format(meta.recipe, data)
    table = k.read(meta, data, opts, labelled=False, quiet=quiet)
    if out is not None:  # a bad --out fails before the model runs (and after the inputs are known)
        from biodl.io._util import check_output_path

        check_output_path(out)
        fmt = output_format(out, format)
        check_writer(fmt, out)
    df = k.predict_frame(model, meta, table, device=device, options=opts, batch_size=batch_size)
    df.attrs["biodl_kind"] = k.name  # the CLI writes standard output in the kind's format
    df.attrs["biodl_format"] = fmt
    if out is not None:
        from biodl.io.predictions import write_predictions

        write_predictions(df, out, fmt, header=k.predictions_header(df))
        log(f"[biodl] wrote {len(df)} predictions to {out} ({fmt})", quiet)
    return df


# ---------------------------------------------------------------------------- report
def report(
    run_dir: str | Path,
    data: str | Path | None = None,
    *,
    options: dict[str, Any] | None = None,
    title: str | None = None,
    spellings: dict[str, str] | None = None,
    quiet: bool = False,
    note: str | None = None,
) -> Path:
    """Write ``RUN_DIR/report.html`` (self-contained) for any run: the run table, held-out
    test metrics and plots, learning curves, then the kind's own sections (filter logos and
    ISM for sequence models, substructures for molecules, signatures for ADAGE, selected
    cells for CellCnn, ...)."""
    from biodl.report.html import write_html_report
    from biodl.report.run import run_sections

    run = Path(run_dir)
    if not run.exists():
        raise BiodlInputError("not found (give a run directory of `biodl train`)", path=run)
    run = run if run.is_dir() else run.parent
    if not (run / "model.pt").exists():
        raise BiodlInputError("no model.pt here; is this a run directory of `biodl train`?", path=run)
    model, meta, k, recipe = _load(run / "model.pt", "cpu")
    opts, _ = kind_options(recipe, k, dict(options or {}), "report", spellings)
    sections = run_sections(run, meta, recipe, k) + k.report_sections(run, model, meta, data, opts)
    if note:
        from biodl.report.html import Section

        sections.insert(1, Section("About these numbers", text=note))
    path = write_html_report(
        run / "report.html", title or f"{recipe.title}: {run.name}", sections, subtitle=recipe.short_citation
    )
    log(f"[biodl] report: {path}", quiet)
    return path
