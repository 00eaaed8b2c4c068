"""``train``, ``evaluate``, ``predict`` and ``report`` for every recipe and data kind.

One path for all kinds: the recipe names the kinds it accepts, the chosen kind
(:class:`~biodl.kinds.base.DataKind`) checks the options against its declared list, reads the
data and builds the network; training goes through the one runner (:func:`biodl.train.fit`),
scoring through the one inference loop (:func:`biodl.train.predict`), and the run is described
by one :class:`~biodl.train.checkpoint.RunMeta` in ``model.pt`` and ``run.json``. Evaluate,
predict and report dispatch on ``RunMeta.kind``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from biodl.errors import BiodlInputError
from biodl.io._util import as_command, check_path_arg
from biodl.kinds import get_kind
from biodl.kinds.base import DataKind, TrainContext, check_label_values, check_labels, log, primary_process
from biodl.options import resolve
from biodl.registry import Recipe, get_recipe, list_recipes

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


def _options_dict(options: Any, what: str = "options") -> dict[str, Any]:
    """``options`` (a mapping of option name to value, or ``None``) as a dict; anything else is
    one clear error (``dict()`` of a list said 'dictionary update sequence element ...')."""
    from collections.abc import Mapping

    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise BiodlInputError(
            f"{what} must be a dict of option name -> value (e.g. {{'data': 'train.tsv'}}), got a "
            f"{type(options).__name__}"
        )
    return dict(options)


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
                if k in mopts:  # as a data option given twice is refused
                    raise BiodlInputError(
                        f"-m {k}={mopts[k]} and --set {k}={given[k]} both given; give it once"
                    )
                mopts[k] = given.pop(k)
        mopts = recipe.check_model_options(mopts)
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
def _check_multiclass(recipe: Recipe, k: DataKind) -> None:
    if "multiclass" not in recipe.tasks:
        doing = [r.name for r in list_recipes() if k.name in r.kinds and "multiclass" in r.tasks]
        raise BiodlInputError(
            f"{recipe.name} does not do multiclass tasks (it does: {', '.join(recipe.tasks)}); give "
            "--task for one of those" + (f", or a system that does ({', '.join(doing)})" if doing else "")
        )


@as_command  # from Python too: no output may replace an input or a used run's record
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
        :class:`~biodl.train.fit.TrainConfig`, or a dict of its fields laid over the recipe's
        ``train_defaults`` (default: those defaults).
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
    t0 = time.time()
    check_path_arg(out_dir, "the run directory (out_dir)")
    recipe = get_recipe(system)
    options, model_options = _options_dict(options), _options_dict(model_options, "model_options")
    k = choose_kind(recipe, options, kind)
    opts, mopts = kind_options(recipe, k, options, "train", spellings, model_options)
    config = _train_config(config, recipe).check()
    if quiet and config.progress:  # quiet means no progress bar either
        import dataclasses

        config = dataclasses.replace(config, progress=False)
    _refuse_unused_training(recipe, config, config_given)
    if config.ensemble > 1 and not k.supports_ensemble:
        raise BiodlInputError(f"--ensemble is not available for {k.title} models (train one network)")
    if config.calibrate and not k.supports_calibration:
        raise BiodlInputError(
            f"--calibrate is not available for {k.title} models (it calibrates the DNA-sequence recipes)"
        )
    if config.calibrate and _several_processes(config):
        raise BiodlInputError(
            "--calibrate trains its trials in one process: give --devices 1 (and no multi-node "
            "--num-nodes) with it; a calibrated setting can then be trained with DDP on its own "
            "(its -m / --lr values, from run.json, in a new run)"
        )
    out = Path(out_dir)
    check_train_call(config, out)
    from biodl.train.fit import caller_state_kept

    # one training at a time writes a run directory; the caller's random generators, warnings
    # filters and logger levels are theirs again afterwards
    with _run_lock(out), caller_state_kept():
        return _train_into(out, t0, recipe, k, opts, mopts, config, options, config_given, quiet)


def _train_into(
    out: Path, t0: float, recipe: Recipe, k: DataKind, opts, mopts, config, options, config_given, quiet
):
    """:func:`train`'s work, once it holds the run directory's lock."""
    from biodl.train import save_model, write_run_json
    from biodl.train.fit import TrainingDiverged, finished_meta

    opts = _absolute_paths(k, opts)  # run.json, metrics.json: the inputs wherever the user runs from
    for key in ("data", "samples", "valid_file", "test_file"):
        k.check_format(recipe.name, opts.get(key), "training")
    given = frozenset(k for k, v in (options or {}).items() if v is not None and k in opts)
    ctx = TrainContext(recipe, opts, mopts, config, out, quiet, frozenset(config_given), given)
    request = run_request(recipe, k, opts, mopts, config)
    _check_rerun(out, recipe.name, k, request, config.resume)  # before any data is read
    if opts.get("task") == "multiclass":  # asked for: refused before any data is read
        _check_multiclass(recipe, k)
    splits = k.load(ctx)
    model, meta = _build(k, ctx, splits)
    if meta.task == "multiclass":  # inferred from the labels
        _check_multiclass(recipe, k)
    labels = k.training_labels(meta, splits)
    if labels is not None:
        check_labels(labels, meta.label_names, meta.task, quiet, source=opts.get("data"))
    try:
        no_valid = splits.valid is not None and len(splits.valid) == 0
    except TypeError:
        no_valid = False
    if no_valid:
        log(
            "[biodl] warning: the validation split is empty (too few training items for the validation "
            "fraction): no early stopping, no choice of the best epoch or of a decision threshold; the "
            "last epoch's model is kept. More data, or a validation file, gives one",
            quiet,
        )
    # a validation / test label no loss or metric can use (2 in a binary task, an infinite
    # target): refused now, not after training
    for name in ("valid", "test"):
        part = getattr(splits, name, None)
        y = _split_labels(part, meta)
        if y is not None:
            what = "validation" if name == "valid" else name
            check_label_values(y, meta.label_names, meta.task, f"{what} ({k.source(part)})")
    _prepare_run_dir(out, recipe.name, k.name, config.resume, quiet)
    _check_fewer_epochs(out, config)
    old_weights = _stored_weights_digest(out) if primary_process() else None  # the model it may replace
    # a run was here before (its model, or its record when the model is unreadable): only then
    # are outputs of an earlier model in the folder (in a new one, such names are the user's files)
    earlier_run = (out / "model.pt").is_file() or (out / "run.json").is_file()
    meta = meta.replace(
        options=_jsonable(opts),
        training=asdict(config),
        splits=dict(splits.info, **meta.splits),
        request=request,
    )
    before = None  # the run.json of the run this training continues, put back if it is refused
    if primary_process():  # the run is unfinished from now on, whatever the layout (members, trials)
        with contextlib.suppress(OSError):  # (the folder is there: _run_lock made it)
            before = (out / "run.json").read_bytes()
        write_run_json(out, meta.replace(status="running"))
    try:
        ctx, model, res, meta = _fit_layout(k, ctx, model, meta, splits)
    except TrainingDiverged:
        if primary_process():  # not an interrupted run: resuming it would diverge again
            write_run_json(out, meta.replace(status="diverged"))
        raise
    except BiodlInputError as e:
        if getattr(e, "run_unchanged", False) and before is not None and primary_process():
            from biodl.io._util import atomic_write_bytes

            atomic_write_bytes(out / "run.json", before)  # refused before any file changed: as it was
        raise
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
    # the model is trained and saved: a finished run from here on, also if its test evaluation,
    # after_fit or report fails (biodl evaluate / report can then be run on it)
    write_run_json(out, meta)
    if earlier_run and (old_weights is None or _weights_digest(model.state_dict()) != old_weights):
        # a new model: what the earlier one's outputs were is removed (a rerun keeps them), never
        # a file this training read
        _drop_stale_outputs(out, t0, config, quiet, _input_paths(opts))
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
    if meta.calibration:
        from biodl.train.calibrate import Calibration

        cal = Calibration.from_dict(meta.calibration)
        by = {t["trial"]: t for t in cal.trials}
        summary["calibration"] = {
            "trials": len(cal.trials),
            "chosen": cal.chosen,
            f"cv_{cal.metric}": [by[t]["score"] for t in cal.chosen],
            "setting": cal.best,
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


def _split_labels(table, meta):
    """The labels ``(n, n_labels)`` of a labelled ``table`` (a split) as its kind keeps them
    (``labels`` or ``targets``, floats), or ``None``."""
    import numpy as np

    if table is None or meta.task not in ("binary", "multilabel", "regression"):
        return None
    for name in ("labels", "targets"):
        y = getattr(table, name, None)
        if isinstance(y, np.ndarray) and y.dtype.kind == "f" and len(y):
            y = y.reshape(len(y), -1)
            return y if y.shape[1] == len(meta.label_names or []) else None
    return None


def _fit_layout(k: DataKind, ctx: TrainContext, model, meta, splits):
    """Fit the run's layout: calibration's trials and final fit(s), its top settings, an
    ensemble's members, or one network. ``(ctx, model, res, meta)``."""
    out, config = ctx.out, ctx.config
    chosen: list[dict[str, Any]] = []
    if config.calibrate:
        ctx, model, meta, chosen = _calibrate(k, ctx, meta, splits)
        if len(chosen) > 1:
            finals = [(out / f"top{j}", st) for j, st in enumerate(chosen, 1)]
        elif config.ensemble > 1:
            finals = [(out / f"member{j}", chosen[0]) for j in range(1, config.ensemble + 1)]
        else:
            finals = [(out, chosen[0])]
        for d, st in finals:
            _final_fit_of(d, st, ctx)
    if len(chosen) > 1:
        model, res, meta = _fit_top(k, ctx, meta, splits, chosen)
    elif config.ensemble > 1:
        model, res, meta = _fit_ensemble(k, ctx, model, meta, splits)
    else:
        model, res, meta = k.fit(ctx, model, meta, splits)
    return ctx, model, res, meta


def _several_processes(config) -> bool:
    """Whether the training runs as several processes (Lightning DDP over ``--devices`` or
    ``--num-nodes``)."""
    from biodl.train.fit import _device_list, _launched_processes

    d = _device_list(config.devices)
    many = d == -1 or (isinstance(d, int) and d > 1) or (isinstance(d, list) and len(d) > 1)
    return many or int(config.num_nodes or 1) > 1 or _launched_processes()  # (torchrun, srun -n K)


def _train_config(config, recipe: Recipe):
    """``config`` as a :class:`~biodl.train.fit.TrainConfig`: ``None`` is the recipe's defaults, a
    dict of TrainConfig fields (``{"max_epochs": 5}``) is laid over them."""
    import dataclasses

    from biodl.train import TrainConfig

    if config is None or isinstance(config, dict):
        base = TrainConfig.for_recipe(recipe.train_defaults)
        fields = {f.name for f in dataclasses.fields(TrainConfig)}
        unknown = sorted(set(config or {}) - fields)
        if unknown:
            raise BiodlInputError(
                f"config: unknown TrainConfig field(s) {', '.join(unknown)} "
                f"(fields: {', '.join(sorted(fields))})"
            )
        return dataclasses.replace(base, **(config or {}))
    if not isinstance(config, TrainConfig):
        raise BiodlInputError(
            f"config must be a biodl.train.TrainConfig or a dict of its fields, got a {type(config).__name__}"
        )
    return config


#: The lock file a training holds in its run directory (never removed by ``--no-resume``).
RUN_LOCK = ".biodl-train.lock"


def _run_lock(out: Path):
    """Hold ``OUT/.biodl-train.lock`` while training into ``out`` (:func:`biodl.io._util.directory_lock`):
    a second ``biodl train`` into the same directory is refused, naming the process that holds
    it, instead of resuming from, or with ``--no-resume`` deleting, a run that is being written.
    DDP workers take none: the primary process holds it."""
    from biodl.io._util import directory_lock

    if not primary_process():
        return contextlib.nullcontext()
    return directory_lock(out, RUN_LOCK, "biodl train", "run directory")


#: What the interpretation commands write at the top of a run besides the report's outputs
#: (:data:`biodl.report.run.REPORT_OUTPUTS`): ``biodl cells interpret RUN ... --out RUN``.
INTERPRET_OUTPUTS = (r"filters\.tsv", r"filter_ranking\.tsv")


def _derived_output(name: str) -> bool:
    """Whether an entry ``name`` at the top of a run is derived from its model by ``biodl report``
    or an interpretation command (stale once a new model replaces it): the report's own list, so
    a retraining also removes the old model's plots of every kind; a folder the report writes
    into (``interpret/``) by its name."""
    import re

    from biodl.report.run import REPORT_OUTPUTS

    pats = [p.removesuffix("/.+") for p in REPORT_OUTPUTS] + list(INTERPRET_OUTPUTS)
    return any(re.fullmatch(p, name) for p in pats)


#: The folder of a part of a run: an ensemble member, one of calibration's top settings.
RUN_PART = r"(member|top)\d+"


def _model_parts(out: Path) -> list[Path]:
    """The folders whose checkpoints make the run's model: ``out`` itself, an ensemble's members,
    calibration's top settings."""
    import re

    return [out] + sorted(d for d in out.iterdir() if d.is_dir() and re.fullmatch(RUN_PART, d.name))


def _weights_digest(state: dict | None) -> str | None:
    """A digest of a model's weights (``state_dict``: names, types, shapes and values), to tell
    whether a training changed the model; ``None`` for none."""
    import hashlib

    import torch

    if not state:
        return None
    h = hashlib.sha1()
    for k in sorted(state):
        v = state[k]
        h.update(k.encode())
        if torch.is_tensor(v):
            t = v.detach().cpu().contiguous()
            h.update(f"{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        else:
            h.update(repr(v).encode())
    return h.hexdigest()


def _stored_weights_digest(out: Path) -> str | None:
    """:func:`_weights_digest` of ``out/model.pt`` (``None`` if there is none, or unreadable)."""
    from biodl.train.checkpoint import _read_payload

    if not (out / "model.pt").is_file():
        return None
    try:
        return _weights_digest(_read_payload(out / "model.pt")[1].get("state_dict"))
    except BiodlInputError:
        return None


def _input_paths(opts: dict[str, Any]) -> list[Path]:
    """The resolved paths of the files and folders named in a training's options (its inputs)."""
    out = []
    for value in opts.values():
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(v, (str, os.PathLike)) and str(v):
                with contextlib.suppress(OSError, ValueError):
                    p = Path(v)
                    if p.exists():
                        out.append(p.resolve())
    return out


def _refuse_unused_training(recipe: Recipe, config, config_given) -> None:
    """Refuse training flags the recipe does not use (they were recorded in run.json as if they
    had shaped a random forest's or an SVM ensemble's model)."""
    from biodl.registry import TRAIN_FLAGS
    from biodl.train.fit import TrainConfig

    given = set(config_given)
    given |= {f for f in ("precision", "profiler") if getattr(config, f, None)}
    plain = TrainConfig()  # the flags' values when not given
    for f in ("num_workers", "min_epochs", "devices", "strategy", "num_nodes"):
        if getattr(config, f, None) not in (getattr(plain, f), None, "auto", 1, "1"):
            given.add(f)
    unused = [TRAIN_FLAGS[f] for f in recipe.unused_training if f in given]
    if unused:
        raise BiodlInputError(
            f"{recipe.name} does not use {', '.join(unused)}: {recipe.unused_why}; leave "
            f"{'them' if len(unused) > 1 else 'it'} out"
        )


def _drop_stale_outputs(out: Path, since: float, config, quiet: bool, inputs: list[Path] = ()) -> None:
    """Remove what was derived from the model this training replaced (written before ``since``):
    the report and interpretation outputs, the held-out ``test/`` results and ``summary.json``
    (also when this training has a test set: its evaluation writes them anew, and a training
    killed before it finished left the old model's test results under the new model), the
    members of a larger ensemble; say what went. An entry that is, or holds, one of ``inputs``
    (the training's own files) is kept."""
    import re

    gone = []
    for e in sorted(out.iterdir()):
        try:
            old = e.stat().st_mtime < since
            here = e.resolve()
        except OSError:
            continue
        if any(p == here or here in p.parents for p in inputs):
            continue
        stale = old and (_derived_output(e.name) or e.name in ("test", "summary.json"))
        m = re.fullmatch(r"member(\d+)", e.name)
        if m and e.is_dir() and int(m.group(1)) > max(int(config.ensemble), 1):
            stale = True
        if not stale:
            continue
        folder = e.is_dir() and not e.is_symlink()
        if folder:
            shutil.rmtree(e, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                e.unlink()
        gone.append(e.name + ("/" if folder else ""))  # (asked before it went: after, never a folder)
    if gone:
        log(
            f"[biodl] removed {', '.join(gone[:8])}{', ...' if len(gone) > 8 else ''} of the model this "
            f"training replaced in {out} (`biodl report` / `biodl evaluate` make them for the new one)",
            quiet,
        )


def _check_fewer_epochs(out: Path, config) -> None:
    """Refuse to resume a run whose checkpoint is past the epochs asked for (``--epochs 3`` on
    a run of 5) before run.json is touched: Lightning cannot go back, and the finished run's
    record would be lost to a failed call. (Within a soft epoch cap, :func:`biodl.train.fit`
    checks the exact bound.)"""
    if not config.resume or not out.is_dir():
        return
    from biodl.train.checkpoint import epochs_done, fewer_epochs_error

    for d in _model_parts(out):  # the network's, an ensemble's members', calibration's top settings
        last = d / "checkpoints" / "last.ckpt"
        if not last.exists():
            continue
        done = epochs_done(last)  # None: unreadable, refused with its own message when resumed
        if done is not None and done > config.max_epochs + int(config.extend_epochs or 0):
            raise fewer_epochs_error(done, config.max_epochs, last)


def _fit_ensemble(k: DataKind, ctx: TrainContext, model, meta, splits):
    """``--ensemble K``: members 1..K built and trained with seeds ``seed .. seed + K - 1``, each
    in ``OUT/memberJ`` (its own checkpoints and history: a rerun resumes each member), then
    kept as one :class:`~biodl.train.ensemble.Ensemble` with the kind's validation metrics and
    thresholds of the ensemble."""
    from dataclasses import replace

    n = int(ctx.config.ensemble)  # train() has checked that the kind supports ensembles
    members, results = [], []
    for j in range(n):
        cfg = replace(ctx.config, seed=ctx.config.seed + j, ensemble=1)
        cj = replace(ctx, config=cfg, out=ctx.out / f"member{j + 1}")
        mj = model if j == 0 else k.build(cj, splits)[0]  # member 1 is the network built with --seed
        ctx.log(f"ensemble member {j + 1}/{n} (seed {cfg.seed}) in {cj.out}")
        mj, rj, _ = k.fit(cj, mj, meta, splits)
        if not rj.is_global_zero:  # another rank of a DDP run: it trains every member with rank 0
            worker = (mj, rj)  # (it left after member 1, and rank 0's member 2 waited for it in vain)
            continue
        members.append(mj.cpu())
        results.append(rj)
    if not members:  # rank 0 assembles the ensemble
        return worker[0], worker[1], meta
    return _ensemble_result(k, ctx, meta.replace(ensemble=n), splits, members, results)


def _ensemble_result(k: DataKind, ctx: TrainContext, meta, splits, members: list, results: list):
    """The trained ``members`` as one :class:`~biodl.train.ensemble.Ensemble` (``meta.ensemble``
    already says how many), its validation metrics and thresholds, and one FitResult."""
    from biodl.train import FitResult
    from biodl.train.ensemble import Ensemble

    n = len(members)
    ens = Ensemble(members).eval()
    meta, val = k.finish_ensemble(ctx, ens, meta, splits)
    shown = ", ".join(f"{m} {v:.4f}" for m, v in val.items())
    ctx.log(
        f"ensemble of {n}: best epochs "  # counted from 1, as every printed epoch
        + ", ".join("-" if r.best_epoch is None else str(r.best_epoch + 1) for r in results)
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


def _setting_context(ctx: TrainContext, setting: dict[str, Any], **changes: Any) -> TrainContext:
    """``ctx`` training with a calibration ``setting`` (its network and training options)."""
    from dataclasses import replace

    from biodl.train.calibrate import split_setting

    mopts, topts = split_setting(setting)
    return replace(
        ctx,
        config=replace(ctx.config, **topts, **changes.pop("config", {})),
        model_options={**ctx.model_options, **mopts},
        **changes,
    )


def _calibrate(k: DataKind, ctx: TrainContext, meta, splits):
    """``--calibrate N``: DeepBind's calibration protocol (:mod:`biodl.train.calibrate`) on the
    training split only. Each of N settings is trained on all folds but one of a subsample of
    ``splits.train`` and scored on the fold left out; finished trials are kept in
    ``OUT/calibration.jsonl`` (a rerun skips them) and fold runs in ``OUT/calibration/trialT/foldF``.

    Returns ``(ctx, model, meta, chosen)``: the context of the best setting, its network built
    and its meta (with ``calibration``) for the normal training path, and the chosen settings
    (the best, or the ``calibrate_top`` best, best first).
    """
    import inspect
    from dataclasses import asdict, replace

    from biodl.train import MONITOR
    from biodl.train import fit as run_fit
    from biodl.train.calibrate import (
        TRAIN_KEYS,
        Calibration,
        Rows,
        TrialStore,
        calibration_folds,
        choose,
        draw_settings,
        fold_epochs,
        search_space,
    )

    c, recipe = ctx.config, ctx.recipe
    space = search_space(recipe)
    sig = inspect.signature(recipe.factory).parameters
    base: dict[str, Any] = {}  # the run's own value of every searched name
    for name in space:
        if name in TRAIN_KEYS:
            base[name] = getattr(c, name)
        else:
            base[name] = ctx.model_options.get(name, recipe.model_defaults.get(name, sig[name].default))
    fixed = [n for n in space if n in ctx.model_options or (n in TRAIN_KEYS and n in ctx.config_given)]
    settings = draw_settings(space, c.calibrate, c.seed, base, fixed)
    n_train = len(splits.train)
    rows, folds = calibration_folds(
        k.training_labels(meta, splits), n_train, c.calibrate_folds, c.calibrate_subsample, c.seed
    )
    if min((len(va) for _, va in folds), default=0) < 2:
        raise BiodlInputError(
            f"--calibrate: {n_train} training items are too few for {c.calibrate_folds}-fold "
            "cross-validation; train without --calibrate"
        )
    epochs = fold_epochs(len(folds[0][0]), c.max_epochs, c.calibrate_epochs)
    key, mode = MONITOR[meta.task]
    cal = Calibration(
        metric=key,
        mode=mode,
        folds=c.calibrate_folds,
        epochs=epochs,
        n_rows=len(rows),
        n_train=n_train,
        subsample=c.calibrate_subsample,
        seed=c.seed,
        space={"source": "recipe" if recipe.search_space else "generic", "ranges": space},
        fixed=fixed,
        requested=c.calibrate,
    )
    protocol = {
        "recipe": recipe.name,
        "folds": cal.folds,
        "epochs": epochs,
        "n_rows": cal.n_rows,
        "n_train": n_train,
        "seed": c.seed,
        "batch_size": c.batch_size,
        "patience": c.patience,
        # the options that shape the training rows (not --test, which calibration never reads)
        "options": {k_: v for k_, v in meta.options.items() if k_ not in ("test_file", "test_negatives")},
    }
    store = TrialStore(ctx.out / "calibration.jsonl", protocol)
    changes = store.protocol_changes() if c.resume and not store.rows else []
    if changes:  # say why the trials train again (--epochs sets the epochs per fold, --patience theirs)
        ctx.log(
            f"calibration: the {len(store.others)} earlier trial(s) in {store.path} ran under another "
            f"protocol ({'; '.join(changes)}): training the trials again (the earlier rows are kept, and "
            "reused if that protocol comes back)"
        )
    ctx.log(
        f"calibration: {c.calibrate} settings ({cal.space['source']} space: {', '.join(space)}), each "
        f"scored by {cal.folds}-fold cross-validation ({key}) on {cal.n_rows} of the {n_train} "
        f"training items, {epochs} epochs per fold; trials in {store.path}"
    )
    quiet = replace(ctx, quiet=True)
    cfg = dict(  # each fold: a few epochs, one network, no calibration inside, every epoch checkpointed
        max_epochs=epochs,
        min_epochs=min(c.min_epochs, epochs),
        extend_epochs=0,
        progress=False,
        ensemble=1,
        calibrate=0,
        checkpoint_every=1,
        profiler=None,
    )
    spent, ran = 0.0, 0
    for t, setting in enumerate(settings, 1):
        shown = ", ".join(f"{n}={_short(v)}" for n, v in setting.items())
        row = store.done(t, setting) if c.resume else None
        if row is not None:
            cal.trials.append({**{k_: v for k_, v in row.items() if k_ != "protocol"}, "resumed": True})
            ctx.log(f"calibration trial {t}/{c.calibrate}: {key} {row['score']:.4f} (done earlier) {shown}")
            continue
        if c.calibrate_budget and ran and spent + spent / ran > c.calibrate_budget:
            cal.stopped = f"--calibrate-budget {c.calibrate_budget:g} s: {ran} new trial(s) in {spent:.0f} s"
            ctx.log(f"calibration: stopped before trial {t} ({cal.stopped})")
            break

        def fit_fold(tr, va, fdir, setting=setting):
            fsplits = replace(splits, train=Rows(splits.train, tr), valid=Rows(splits.train, va), test=None)
            fctx = _setting_context(quiet, setting, config=cfg, out=fdir)
            model, fmeta = k.build(fctx, fsplits)
            plan = k.plan(fctx, model, fmeta, fsplits)
            dm = k.datamodule(fctx, fmeta, fsplits)
            return run_fit(plan, dm, fdir, fctx.config, threads=k.threads(fctx), quiet=True, inner=True)

        row = store.run_trial(t, setting, folds, fit_fold, key, ctx.out / "calibration")
        cal.trials.append({**row, "resumed": False})
        spent += row["seconds"]
        ran += 1
        score = "nan" if row["score"] is None else f"{row['score']:.4f}"
        undefined = sum(1 for v in row["fold_scores"] if not math.isfinite(v))
        if undefined and row["score"] is not None:  # the mean is over the folds where it is defined
            score += f" (mean of the {len(row['fold_scores']) - undefined} folds where {key} is defined)"
        if row.get("diverged"):
            score += f"; {row['diverged']} fold(s) diverged (weights not finite)"
        ctx.log(
            f"calibration trial {t}/{c.calibrate}: {key} {score} (folds "
            f"{', '.join(f'{v:.4f}' for v in row['fold_scores'])}; {row['seconds']:.0f} s) {shown}"
        )
    try:
        (ctx.out / "calibration").rmdir()  # every trial recorded: nothing left in it
    except OSError:
        pass
    cal.seconds = round(spent, 2)
    cal.chosen = choose(cal.trials, mode, c.calibrate_top)
    by = {r["trial"]: r for r in cal.trials}
    best = by[cal.chosen[0]]
    own = by.get(1, {}).get("score")
    ctx.log(
        f"calibration: trial {best['trial']} chosen ({cal.folds}-fold {key} {best['score']:.4f}"
        + (f"; trial 1, the run's own setting: {own:.4f}" if best["trial"] != 1 and own is not None else "")
        + (f"; averaging trials {cal.chosen}" if len(cal.chosen) > 1 else "")
        + "); training "
        + ("them" if len(cal.chosen) > 1 else "it")
        + " on the training split"
    )
    chosen = [dict(by[t]["setting"]) for t in cal.chosen]
    rctx = _setting_context(ctx, chosen[0])
    model, rmeta = k.build(replace(rctx, quiet=True), splits)  # the run's lines were logged once
    rmeta = rmeta.replace(
        options=meta.options,
        training=asdict(rctx.config),
        splits=dict(meta.splits),
        calibration=cal.to_dict(),
        request=meta.request,
    )
    return rctx, model, rmeta, chosen


def _final_fit_of(d: Path, setting: dict[str, Any], ctx: TrainContext) -> None:
    """Make the final fit in ``d`` train ``setting``, the one calibration chose: its checkpoints
    resume only when they were written by that setting (``d/checkpoints/setting.json``); a rerun
    whose larger ``--calibrate N`` chose another setting trains it from scratch (and says so),
    keeping the trials. The setting is recorded before training."""
    from biodl.io._util import output_dir
    from biodl.train import read_model_meta, read_run_json
    from biodl.train.checkpoint import atomic_json

    want = _jsonable(setting)
    rec = d / "checkpoints" / "setting.json"
    ckpts = list((d / "checkpoints").glob("*.ckpt")) if (d / "checkpoints").is_dir() else []
    if ctx.config.resume and ckpts:
        if rec.exists():
            try:
                had = json.loads(rec.read_text())
            except ValueError:
                had = None
        else:  # written before the setting was recorded: the finished model's own
            try:
                m = read_model_meta(d / "model.pt") if (d / "model.pt").exists() else read_run_json(d)
                had = {
                    n: (m.training.get(n) if n in ("lr", "weight_decay") else m.model_kwargs.get(n))
                    for n in want
                }
                had = _jsonable(had)
            except BiodlInputError:
                had = None
        if had != want:
            for f in ckpts:
                f.unlink()
            if (d / "history.csv").exists():
                (d / "history.csv").unlink()
            ctx.log(
                f"calibration chose another setting than the one the final model in {d} was trained "
                f"with ({', '.join(f'{n}={_short(v)}' for n, v in setting.items())}); training it from "
                "scratch (the trials are kept)"
            )
    output_dir(d / "checkpoints")
    atomic_json(want, rec)


def _short(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _fit_top(k: DataKind, ctx: TrainContext, meta, splits, settings: list[dict[str, Any]]):
    """``--calibrate N --calibrate-top K``: the K best settings, each trained in ``OUT/topJ``
    with the run's seed, kept as one :class:`~biodl.train.ensemble.Ensemble` predicting their
    mean (``RunMeta.member_kwargs``: each member's network)."""
    from dataclasses import asdict

    members, results, kwargs = [], [], []
    for j, setting in enumerate(settings, 1):
        cj = _setting_context(ctx, setting, out=ctx.out / f"top{j}")
        mj, mmeta = k.build(cj, splits)
        ctx.log(f"calibrated member {j}/{len(settings)} in {cj.out}")
        mj, rj, _ = k.fit(cj, mj, mmeta.replace(options=meta.options, training=asdict(cj.config)), splits)
        if not rj.is_global_zero:  # another rank of a DDP run: it trains every member with rank 0
            worker = (mj, rj)
            continue
        members.append(mj.cpu())
        results.append(rj)
        kwargs.append(dict(mmeta.model_kwargs))
    if not members:
        return worker[0], worker[1], meta
    meta = meta.replace(ensemble=len(members), member_kwargs=kwargs)
    return _ensemble_result(k, ctx, meta, splits, members, results)


#: Kind options that do not change what is trained: read after training (the test set, the
#: report) or at scoring time, or a thread count. Every other kind option defines the run.
NOT_DEFINING_OPTIONS = ("test_file", "test_negatives", "test_labels", "rc_average", "report", "threads")
#: :class:`~biodl.train.fit.TrainConfig` fields that define the run. The others only extend or
#: stop training (``max_epochs``, ``min_epochs``, ``patience``, ``extend_epochs``,
#: ``calibrate`` N, ``calibrate_budget``), say where and how it runs (``device``, ``devices``,
#: ``strategy``, ``num_nodes``, ``precision``, ``num_workers``, ``progress``, ``profiler``,
#: ``checkpoint_every``) or are checked elsewhere (the calibration protocol: ``calibrate_folds``,
#: ``calibrate_subsample``, ``calibrate_epochs`` retrain the trials they change).
DEFINING_TRAINING = ("seed", "lr", "weight_decay", "batch_size")
_TRAIN_FLAGS = {
    "seed": "--seed",
    "lr": "--lr",
    "weight_decay": "--weight-decay",
    "batch_size": "--batch-size",
    "ensemble": "--ensemble",
    "calibrate": "--calibrate",
    "calibrate_top": "--calibrate-top",
}


def check_train_call(config, out: Path) -> None:
    """The checks of a training call that need no data: ``--out`` can be a run directory and
    ``--device`` names a device this machine has."""
    from biodl.io._util import check_path_length
    from biodl.train.predict import accelerator_for, torch_device

    check_path_length(out / "checkpoints" / "last.ckpt")  # the longest name a run writes
    for p in (out, *out.parents):
        if p.exists():
            if not p.is_dir():
                raise BiodlInputError(
                    "--out names the run directory, and this is a file"
                    if p == out
                    else f"--out {out}: its parent {p} is a file, not a directory",
                    path=p if p == out else None,
                )
            break
    whole = _whole_run(out)
    if whole is not None:
        raise BiodlInputError(
            f"is a part of the run {whole} (an ensemble member, one of its top settings or a calibration "
            f"trial), which that run's own `biodl train` writes; training here would change that run. "
            "Give another --out",
            path=out,
        )
    accelerator_for(config.device)
    torch_device(config.device)  # an unknown device or CUDA without a GPU: refused now


def _absolute_paths(kind: DataKind, opts: dict[str, Any]) -> dict[str, Any]:
    """``opts`` with the kind's file options (``path`` / ``paths``) as absolute paths."""
    types = {o.name: o.type for o in kind.options}
    out = dict(opts)
    for name, v in opts.items():
        if v is None or types.get(name) not in ("path", "paths"):
            continue
        out[name] = [os.path.abspath(x) for x in v] if types[name] == "paths" else os.path.abspath(v)
    return out


def run_request(recipe: Recipe, kind: DataKind, opts: dict[str, Any], mopts: dict[str, Any], config) -> dict:
    """What defines a training run (``RunMeta.request``): the kind options that shape the
    training data (all but :data:`NOT_DEFINING_OPTIONS`; ``opts`` as :func:`train` made them,
    with the file options already absolute paths), every model
    option (given, else the recipe's default), the :data:`DEFINING_TRAINING` fields and the
    layout (one network or an ensemble, calibrated or not, one or several calibrated members).
    A rerun into the same ``--out`` resumes only when its request is the stored one."""
    import inspect

    sig = inspect.signature(recipe.factory).parameters
    model = {}
    for p in recipe.model_params():
        default = recipe.model_defaults.get(p, sig[p].default)
        if p in mopts or default is not inspect.Parameter.empty:
            model[p] = mopts.get(p, default)
    defining = {k_: v for k_, v in opts.items() if k_ not in NOT_DEFINING_OPTIONS}
    return _jsonable(
        {
            "kind": kind.name,
            "options": defining,
            "inputs": input_fingerprints(kind, defining),
            "model": model,
            "training": {f: getattr(config, f) for f in DEFINING_TRAINING},
            "layout": {
                "ensemble": int(config.ensemble) > 1,
                "calibrate": int(config.calibrate) > 0,
                "calibrate_top": int(config.calibrate) > 0 and int(config.calibrate_top) > 1,
            },
        }
    )


def _fingerprint(path: Path) -> str:
    """``SIZE:DIGEST`` of a file: its size and the SHA-1 of its first and last MiB (cheap for a
    file of any size; an edit, a truncation or another file at the same path changes it)."""
    import hashlib

    size = path.stat().st_size
    h = hashlib.sha1()
    with open(path, "rb") as fh:
        h.update(fh.read(1 << 20))
        if size > 2 << 20:
            fh.seek(size - (1 << 20))
        h.update(fh.read(1 << 20))
    return f"{size}:{h.hexdigest()[:16]}"


def input_fingerprints(kind: DataKind, options: dict[str, Any]) -> dict[str, Any]:
    """The content of the input files among ``options`` (file options of the kind): a resumed
    run must train on the files it started with, not on others written to the same paths."""
    types = {o.name: o.type for o in kind.options}
    out: dict[str, Any] = {}
    for name, v in options.items():
        if types.get(name) not in ("path", "paths") or v in (None, "", []):
            continue
        files = [Path(x) for x in (v if isinstance(v, (list, tuple)) else [v])]
        try:
            prints = [_fingerprint(f) if f.is_file() else None for f in files]
        except OSError:
            continue
        if any(x is not None for x in prints):
            out[name] = prints if isinstance(v, (list, tuple)) else prints[0]
    return out


def _legacy_request(prev) -> dict[str, Any]:
    """The request of a run written before ``RunMeta.request``, from what its run.json has."""
    t = prev.training or {}
    cal = bool(prev.calibration) or int(t.get("calibrate") or 0) > 0
    training = {f: t[f] for f in DEFINING_TRAINING if f in t}
    if cal:  # a calibrated run stores the chosen setting, not the one asked for
        training = {f: v for f, v in training.items() if f not in ("lr", "weight_decay")}
    return _jsonable(
        {
            "options": {k_: v for k_, v in (prev.options or {}).items() if k_ not in NOT_DEFINING_OPTIONS},
            "model": {} if cal else dict(prev.model_kwargs),  # compared where the call has the name
            "training": training,
            "layout": {
                "ensemble": int(t.get("ensemble") or prev.ensemble or 1) > 1,
                "calibrate": cal,
                "calibrate_top": cal and int(t.get("calibrate_top") or 1) > 1,
            },
        }
    )


def _same_value(old: Any, new: Any, path_like: bool) -> bool:
    if old == new:
        return True
    if path_like and old is not None and new is not None:
        olds = old if isinstance(old, list) else [old]
        news = new if isinstance(new, list) else [new]
        if len(olds) != len(news):
            return False
        # a relative path in an older run.json: relative to a directory no longer known
        return all(
            os.path.abspath(o) == n or (not os.path.isabs(o) and Path(o).name == Path(n).name)
            for o, n in zip(olds, news, strict=True)
        )
    if isinstance(old, (int, float)) and isinstance(new, (int, float)) and not isinstance(old, bool):
        return float(old) == float(new)
    return False


def _short_value(v: Any) -> str:
    if isinstance(v, list):
        return ",".join(map(str, v)) or "[]"
    return "unset" if v is None else str(v)


def request_differences(prev: dict[str, Any], new: dict[str, Any], kind: DataKind | None = None) -> list[str]:
    """``'NAME OLD here, NEW asked'`` for every entry of the run-defining ``prev`` request that
    ``new`` changes. Keys absent from ``prev`` (an older run.json) are not compared, except kind
    options with a :attr:`~biodl.options.Option.before` value: the value such a run had."""
    spelled = {o.name: o.spelling for o in kind.options} if kind is not None else {}
    if "data" in spelled:
        spelled["data"] = "the training file (DATA)"
    types = {o.name: o.type for o in kind.options} if kind is not None else {}
    diffs = []
    prev_options = prev.get("options") or {}
    if prev_options and kind is not None:  # a run made before an option that changes training existed
        from biodl.options import with_before

        prev_options = with_before(kind.options, prev_options)
    for name, old in prev_options.items():
        if name in (new.get("options") or {}):
            v = new["options"][name]
            if not _same_value(old, v, types.get(name) in ("path", "paths")):
                diffs.append(
                    f"{spelled.get(name, '--set ' + name)} {_short_value(old)} here, {_short_value(v)} asked"
                )
    for name, old in (prev.get("inputs") or {}).items():
        now = (new.get("inputs") or {}).get(name)
        same_path = _same_value(prev_options.get(name), (new.get("options") or {}).get(name), True)
        if name in (new.get("inputs") or {}) and now != old and same_path:
            diffs.append(
                f"{spelled.get(name, '--set ' + name)} {_short_value(prev_options.get(name))}: its content "
                "changed since this run started (size / checksum)"
            )
    for name, old in (prev.get("model") or {}).items():
        if name in (new.get("model") or {}) and not _same_value(old, new["model"][name], False):
            diffs.append(f"-m {name} {_short_value(old)} here, {_short_value(new['model'][name])} asked")
    for name, old in (prev.get("training") or {}).items():
        if name in (new.get("training") or {}) and not _same_value(old, new["training"][name], False):
            diffs.append(f"{_TRAIN_FLAGS.get(name, name)} {old} here, {new['training'][name]} asked")
    layout_words = {
        "ensemble": ("an ensemble (--ensemble K)", "one network"),
        "calibrate": ("a calibrated run (--calibrate N)", "an uncalibrated run"),
        "calibrate_top": ("several calibrated members (--calibrate-top K)", "one calibrated model"),
    }
    for name, old in (prev.get("layout") or {}).items():
        if name in (new.get("layout") or {}) and bool(old) != bool(new["layout"][name]):
            yes, no = layout_words.get(name, (name, "not " + name))
            was, asked = (yes if old else no), (yes if new["layout"][name] else no)
            diffs.append(f"{_TRAIN_FLAGS.get(name, name)}: {was} here, {asked} asked")
    return diffs


def _build(k: DataKind, ctx: TrainContext, splits):
    """``k.build``, with a network the user's ``-m`` options leave unbuildable or without
    weights refused by name (before the run directory is touched)."""
    import warnings

    from biodl.registry import check_network

    try:
        with warnings.catch_warnings():  # a layer of size 0 is refused below, with its option
            warnings.filterwarnings("ignore", message="Initializing zero-element tensors is a no-op")
            model, meta = k.build(ctx, splits)
    except (ValueError, RuntimeError, TypeError) as e:
        if not ctx.model_options:
            raise
        given = " ".join(f"-m {key}={v}" for key, v in ctx.model_options.items())
        raise BiodlInputError(f"the {ctx.recipe.name} network cannot be built with {given}: {e}") from None
    check_network(model, ctx.recipe.name, ctx.model_options)
    return model, meta


def _check_rerun(out: Path, system: str, kind: DataKind, request: dict[str, Any], resume: bool) -> None:
    """A rerun into a run directory (``--resume``, the default) continues that run only when it
    asks for the same run: the same system and kind, and the same :func:`run_request` (data,
    model options, seed, learning rate, ...). Anything else is refused, naming each difference:
    resuming would train on with other settings and record them as if the run had used them
    throughout. Options that extend or stop training (``--epochs``, ``--patience``,
    ``--calibrate N``, ``--ensemble K`` of an ensemble) may change."""
    from biodl.train import read_run_json

    if not primary_process():
        return
    _check_foreign_dir(out, _input_paths(request.get("options", {})))
    if not resume or not (out / "run.json").exists():
        return
    try:
        prev = read_run_json(out)
    except BiodlInputError:
        return  # _prepare_run_dir refuses it (after the data are read)
    if (prev.recipe, prev.kind) != (system, kind.name):
        return  # _prepare_run_dir names the other run
    diffs = request_differences(prev.request or _legacy_request(prev), request, kind)
    if diffs:
        raise BiodlInputError(
            f"holds a {prev.status} run of {system} asked with other settings, so this call cannot "
            f"resume it: {'; '.join(diffs)}. Give the run's own settings to resume it, --no-resume to "
            "start over (its files are removed), or another --out",
            path=out,
        )


def _check_foreign_dir(out: Path, inputs: list[Path] = ()) -> None:
    """Refuse an ``--out`` that is not a run directory (no ``run.json``) but holds files a run
    writes (``model.pt``, ``history.csv``, ``test/``, ..., and the report's: ``report.html``,
    ``motifs.tsv``, ``filters.png``, ...): training and its report would replace them without a
    word, and ``--no-resume`` only ever clears a biodl run. ``inputs`` (this training's own
    files) are no clash: the report refuses to write over a run's input."""
    from biodl.io._util import RUN_RECORD_DIRS, RUN_RECORD_FILES
    from biodl.report.run import report_files

    if not out.is_dir() or (out / "run.json").exists():
        return
    clash = sorted(n for n in (*RUN_RECORD_FILES, *RUN_RECORD_DIRS) if (out / n).exists())
    keep = {Path(q).resolve() for q in inputs}
    clash += [q.relative_to(out).as_posix() for q in report_files(out) if q.resolve() not in keep]
    clash = clash[:6]
    if clash:
        raise BiodlInputError(
            f"is not a biodl run directory (no run.json) but holds {', '.join(clash)}, which training "
            "would replace; give a new or empty --out (or move those files)",
            path=out,
        )


def _prepare_run_dir(out: Path, system: str, kind: str, resume: bool, quiet: bool) -> None:
    """Make sure ``out`` will describe one run. A directory holding another system's run is
    refused (training there would mix two runs) unless ``--no-resume``; with ``--no-resume``
    the previous run's files are removed first (refused if an input of this command lies in
    it), so no report, test metrics or plots of the old run stay beside the new model."""
    from biodl.io._util import command_inputs_under
    from biodl.train import read_run_json

    if not (out / "run.json").exists() or not primary_process():
        return
    try:
        prev = read_run_json(out)
        what, same = f"{prev.recipe} ({prev.kind}, {prev.status})", (prev.recipe, prev.kind) == (system, kind)
    except BiodlInputError:
        what, same = "an earlier biodl version or an unreadable run.json", False
        if not _looks_like_a_run_json(out / "run.json"):
            raise BiodlInputError(
                "holds a run.json that biodl did not write (no system named in it); this is not a run "
                "directory, so neither training nor --no-resume will touch it: give another --out",
                path=out,
            ) from None
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
    listing = [e for e in out.iterdir() if e.name != RUN_LOCK]  # the lock this call holds
    ours = {e.name: is_run_output(e.name, e.is_dir() and not e.is_symlink()) for e in listing}
    entries = [e for e in listing if ours[e.name]]
    kept = sorted(e.name for e in listing if not ours[e.name])
    for e in entries:
        if e.is_dir() and not e.is_symlink():
            shutil.rmtree(e)
        else:
            e.unlink()
    names = sorted(e.name for e in entries)
    log(
        f"[biodl] --no-resume: removed the previous run in {out} ({what}; {len(entries)} entries: "
        + ", ".join(names[:8])
        + (", ..." if len(names) > 8 else "")
        + ")"
        + (
            f"; kept {len(kept)} entr{'y' if len(kept) == 1 else 'ies'} biodl does not write: "
            + ", ".join(kept[:8])
            + (", ..." if len(kept) > 8 else "")
            if kept
            else ""
        ),
        quiet,
    )


#: What a run writes at the top of its directory (regular expressions of whole names; those in
#: :data:`RUN_OUTPUT_DIRS` match folders only): ``--no-resume`` removes these and keeps anything
#: else (a user's notes, figures or data put beside the run: ``top10_peaks.bed``, ``my_plot.png``).
RUN_OUTPUTS = (
    r"run\.json", r"summary\.json", r"history\.csv", r"report\.html", r"model\.pt", r"model\.q\d+\.pt",
    r"(learning_curves(_[a-z]+\d*)?|ism_\d+|filters|path|feature_weights|gene_weights|filter_weights"
    r"|abundance|confusion(_[a-z]+)?|pred_vs_true|example_matrix|methylation_test|roc|pr|scatter)\.png",
    r"calibration\.jsonl", r"search\.tsv", r"path\.tsv", r"stability\.tsv", r"feature_weights\.tsv",
    r"restarts\.tsv", r"restarts\.json", r"predictions_train\.tsv", r"profile_[^/]+\.tsv",
    r"subset_frequency_[^/]+\.tsv", r"network\.txt\.gz", r"signatures\.tsv", r"example_matrix\.npz",
    r"filters\.meme", r"filters\.tsv", r"filter_ranking\.tsv", r"motifs\.tsv", r"metrics\.json",
    r"predictions\.tsv", r"\..+\.biodl-.+",  # a temporary file or folder of a biodl writer
)  # fmt: skip
RUN_OUTPUT_DIRS = (
    r"test", r"checkpoints", r"calibration", r"member\d+", r"top\d+", r"layer\d+", r"pretrain\d+",
    r"finetune", r"search", r"refit", r"folds", r"select", r"path", r"stability", r"restarts", r"abc",
    r"substructures", r"interpret", r"novel-calibration",
)  # fmt: skip


def is_run_output(name: str, is_dir: bool | None = None) -> bool:
    """Whether an entry ``name`` at the top of a run directory is one biodl writes there
    (``is_dir``: whether it is a folder; ``None``: either)."""
    import re

    files = any(re.fullmatch(pat, name) for pat in RUN_OUTPUTS)
    if files or is_dir is False:
        return files
    return any(re.fullmatch(pat, name) for pat in RUN_OUTPUT_DIRS)


def _looks_like_a_run_json(path: Path) -> bool:
    """A ``run.json`` of some biodl version (a JSON object naming a system), readable or not
    by this one."""
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(d, dict) and bool(d.get("recipe") or d.get("system"))


def _write_summary(out: Path, summary: dict[str, Any]) -> None:
    from biodl.train.checkpoint import atomic_json

    atomic_json(summary, out / "summary.json")


# --------------------------------------------------------------------- evaluate / predict
def _whole_run(d: Path) -> Path | None:
    """The run directory ``d`` is a part of (``RUN/member2``, ``RUN/top1``, a fold of a trial
    in ``RUN/calibration/``), or ``None``."""
    import re

    d = d.resolve()
    if re.fullmatch(RUN_PART, d.name) and (d.parent / "run.json").is_file():
        return d.parent
    for up in d.parents:
        if up.name == "calibration" and (up.parent / "run.json").is_file():
            return up.parent
    return None


def _run_state(model_path: str | Path, command: str, refuse: bool = False) -> None:
    """Say (or, ``refuse``, refuse) when ``model_path`` is the model of a run whose ``run.json``
    says it is unfinished: a training started (or resumed) there was killed, so ``model.pt``, if
    any, is the model of an earlier finished training, not of the run ``run.json`` describes."""
    from biodl.train import read_run_json

    p = Path(model_path)
    run = p if p.is_dir() else p.parent
    if p.is_file() and p.name != "model.pt":
        return  # a model file of its own (model.q90.pt, a copy): no run.json describes it
    if not (run / "run.json").is_file():
        return
    try:
        meta = read_run_json(run)
    except BiodlInputError:
        return
    if meta.status == "finished":
        return
    whole = _whole_run(run)
    if whole is not None and not (run / "model.pt").exists():
        raise BiodlInputError(
            f"is a part of the run {whole} (an ensemble member, one of its top settings or a "
            f"calibration trial), kept so that training can resume, not a model of its own: give "
            f"{whole} to `biodl {command}`",
            path=run,
        )
    from biodl.io._util import lock_holder

    holder = lock_holder(run, RUN_LOCK)
    if holder is not None:  # not interrupted: a `biodl train` is writing the run now
        now = f"`biodl train` is training this run now ({holder})"
        if not (run / "model.pt").exists() or refuse:
            raise BiodlInputError(
                f"{now}; its model is not saved yet: `biodl {command}` it when the training has finished"
                if not (run / "model.pt").exists()
                else f"{now}, so its run.json, history and checkpoints describe a training that model.pt "
                f"does not hold yet: `biodl {command}` it when the training has finished",
                path=run,
            )
        log(
            f"[biodl] warning: {run}: {now}; model.pt is the model of an earlier finished training, "
            "not of the one under way",
            False,
        )
        return
    if meta.status == "diverged":  # resuming would diverge again: a new training, not more of it
        stopped = "its training diverged (weights no longer finite numbers)"
        how = "retrain it with a lower --lr and --no-resume"
    else:
        stopped = "training was interrupted"
        how = "rerun the same `biodl train` command to finish it (it resumes from its last checkpoint)"
    if not (run / "model.pt").exists():
        raise BiodlInputError(
            f"an unfinished run: {stopped} before its first model was saved (run.json "
            f"status {meta.status!r}, no model.pt yet); {how}",
            path=run,
        )
    if refuse:
        raise BiodlInputError(
            f"an unfinished run: {stopped} (run.json status {meta.status!r}), so its "
            f"run.json, history and checkpoints describe a training that model.pt does not hold; "
            f"{how}, then `biodl {command}` it",
            path=run,
        )
    log(
        f"[biodl] warning: {run}: an unfinished run (run.json status {meta.status!r}: {stopped}); "
        f"model.pt is the model of an earlier finished training, not of the settings in "
        f"run.json. To use the new training, {how}",
        False,
    )


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
    import numpy as np

    from biodl.io._util import StatusLine
    from biodl.train.predict import scoring_progress

    if kind.size(table) == 0:  # named, as predict names it (scoring said "the input is empty")
        raise BiodlInputError("nothing to evaluate: the input has no records", path=kind.source(table))
    status, n_scored = StatusLine(show=not quiet), 0

    def scored(k: int) -> None:
        nonlocal n_scored
        n_scored += k
        status.count("evaluating", n_scored)

    try:
        with scoring_progress(scored):
            outputs, y = kind.score(model, meta, table, device=device, options=options, batch_size=batch_size)
    finally:
        status.clear()  # the line gives way to the metrics or the error
    labels = y.reshape(len(y), -1) if isinstance(y, np.ndarray) and y.dtype.kind == "f" and len(y) else None
    if labels is not None:
        if labels.size and np.isnan(labels).all():  # every metric would be undefined
            raise BiodlInputError(
                f"none of the {len(labels)} rows has a label value (all missing), so there is nothing to "
                "evaluate; `biodl predict` scores unlabelled data",
                path=kind.source(table),
            )
        check_label_values(labels, meta.label_names, meta.task, f"evaluation ({kind.source(table)})")
    metrics = kind.metrics(meta, outputs, y, table)
    result: dict[str, Any] = {
        "metrics": metrics,
        "n": kind.size(table),
        "task": meta.task,
        "data": kind.source(table),
    }
    if labels is not None and len(labels) == result["n"]:
        labelled = int((~np.isnan(labels)).any(axis=1).sum())
        if labelled < len(labels):  # rows without any label are left out of the metrics: say so
            result["n_labelled"] = labelled
    result.update(kind.result_extras(meta, table, outputs, y))
    if out_dir is not None:  # written as a whole: never mixed with an earlier evaluation's files
        from biodl.io._util import staged_outputs

        result["out_dir"] = str(out_dir)
        with staged_outputs(out_dir) as staging:
            kind.write_evaluation(staging, result, meta, table, outputs, y)
    shown = ", ".join(
        f"{k} {v:.4f}" for k, v in metrics.items() if "/" not in k and isinstance(v, (int, float))
    )
    log(f"[biodl] {shown} on {items_phrase(result)} of {result['data']}", quiet)
    return result


def items_phrase(result: dict[str, Any]) -> str:
    """``N items``, or ``K labelled of N items`` when rows without a label were left out."""
    k = result.get("n_labelled")
    return f"{result['n']} items" if k is None else f"{k} labelled of {result['n']} items"


@as_command  # from Python too: no output may replace an input or a used run's record
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
    from biodl.io._util import check_output_dir, note_model

    check_path_arg(model_path, "the model (a run directory or its model.pt)")
    check_path_arg(out_dir, "out_dir", none_ok=True)
    _run_state(model_path, "evaluate")
    note_model(model_path)  # no output may replace the model or its run's record
    if out_dir is not None:  # never over the run's own held-out results or plots
        check_output_dir(out_dir)
    model, meta, k, recipe = _load(model_path, device)
    opts, _ = kind_options(recipe, k, _options_dict(options), "evaluate", spellings)
    table = read_inputs(k, meta, data, opts, labelled=True, quiet=quiet)
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


#: Inputs scored at a time when ``predict`` reads a file in pieces (:meth:`DataKind.read_chunks`).
PREDICT_ROWS = 100_000


@as_command  # from Python too: no output may replace an input or a used run's record
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
    keep: bool = True,
    rows: int | None = None,
):
    """Predictions of a trained model for new inputs of its kind (labels not needed); the
    table keeps the input order and identifiers and is written atomically to ``out``, in the
    format its suffix names (``.tsv``/``.csv``, optionally ``.gz``; ``.npz``; ``.h5``;
    ``.parquet``) or ``format`` (see :mod:`biodl.io.predictions`).

    Kinds that read files in pieces (sequences) score ``rows`` inputs at a time (default
    :data:`PREDICT_ROWS`, rounded up to whole batches) and append each piece's rows to
    ``out``, so memory stays that of one piece whatever the file's size; with ``keep=False``
    the table is not also returned (``None``), which is what keeps it so."""
    from biodl.io._util import note_model
    from biodl.io.predictions import output_format

    check_path_arg(model_path, "the model (a run directory or its model.pt)")
    check_path_arg(out, "out", none_ok=True)
    if rows is not None and (isinstance(rows, bool) or not isinstance(rows, int) or rows < 1):
        raise BiodlInputError(f"rows (inputs scored at a time) must be a positive integer, got {rows!r}")
    if out is None:  # standard output: text only (a bad format fails before the model is loaded)
        output_format(out, format)
    _run_state(model_path, "predict")
    note_model(model_path)  # no output may replace the model or its run's record
    model, meta, k, recipe = _load(model_path, device)
    opts, _ = kind_options(recipe, k, _options_dict(options), "predict", spellings)
    return predict_loaded(
        model,
        meta,
        k,
        data,
        opts,
        out=out,
        format=format,
        device=device,
        batch_size=batch_size,
        quiet=quiet,
        keep=keep,
        rows=rows,
    )


def is_path(data: Any) -> bool:
    """Whether ``data`` names a file (``str`` or a path) rather than holding in-memory inputs."""
    return data is None or isinstance(data, (str, os.PathLike))


def read_inputs(
    k: DataKind, meta, data: Any, opts: dict[str, Any], *, labelled: bool, quiet: bool, labels: Any = None
):
    """The kind's table of ``data``: a file read as the model's training data was
    (:meth:`DataKind.read`), or Python objects (:meth:`DataKind.from_memory`)."""
    if is_path(data):
        if labels is not None:
            raise BiodlInputError("labels= is for in-memory inputs: a file carries its own labels")
        k.check_format(meta.recipe, data)
        return k.read(meta, data, opts, labelled=labelled, quiet=quiet)
    table = k.from_memory(meta, data, opts, labelled=labelled, labels=labels)
    if not k.size(table) and not getattr(table, "invalid", None):  # an AnnData of 0 cells, ...
        raise BiodlInputError("nothing to score: the input is empty", path=k.source(table))
    return table


def predict_loaded(
    model,
    meta,
    k: DataKind,
    data: Any,
    opts: dict[str, Any],
    *,
    out: str | Path | None = None,
    format: str | None = None,
    device: str = "cpu",
    batch_size: int = 256,
    quiet: bool = False,
    keep: bool = True,
    rows: int | None = None,
):
    """:func:`predict` with the model loaded and the options checked (``biodl.load``)."""
    import pandas as pd

    from biodl.io._util import StatusLine
    from biodl.io.predictions import PredictionWriter, check_writer, output_format
    from biodl.train.predict import scoring_progress

    fmt = output_format(out, format) if out is None else None
    if data is not None and is_path(data):
        k.check_format(meta.recipe, data)
        # whole batches per piece: every batch holds what it holds when the file is read whole
        # (a batch's numbers can differ in the last float bit with its size)
        per = batch_size if isinstance(batch_size, int) and not isinstance(batch_size, bool) else 1
        n_rows = int(rows or k.predict_rows or PREDICT_ROWS)
        n_rows = -(-n_rows // max(per, 1)) * max(per, 1)  # a bad size: predict says so
        pieces = k.read_chunks(meta, data, opts, n_rows)
        if pieces is None:  # read whole (and checked) before the output is looked at
            pieces = iter([k.read(meta, data, opts, labelled=False, quiet=quiet)])
        else:  # the first piece read (the input checked and known) before --out is
            import itertools

            pieces = iter(pieces)
            first = next(pieces, None)
            pieces = itertools.chain([] if first is None else [first], pieces)
    else:  # in-memory inputs (or none: the kind's read says what is missing)
        pieces = iter([read_inputs(k, meta, data, opts, labelled=False, quiet=quiet)])
    if out is not None:  # a bad --out fails before the model runs
        from biodl.io._util import check_output_path

        check_output_path(out)
        fmt = output_format(out, format)
        check_writer(fmt, out)
    frames = k.predict_frames(model, meta, pieces, device=device, options=opts, batch_size=batch_size)
    kept: list[pd.DataFrame] = []
    status, n = StatusLine(show=not quiet), 0
    batches = 0  # items through the network so far (a piece is scored batch by batch)

    def show(items: int) -> None:
        nonlocal batches
        batches += items
        status.count("predicting", batches)

    with contextlib.ExitStack() as stack:  # the file takes its name when every piece is written
        stack.callback(status.end_line)  # a line left open by an error is ended
        stack.enter_context(scoring_progress(show))
        w = None
        for df in frames:
            if out is not None:
                if w is None:
                    w = stack.enter_context(PredictionWriter(out, fmt, header=k.predictions_header(df)))
                w.write(df)
            if keep:
                kept.append(df)
            n += len(df)
            batches = max(batches, n)  # kinds that score without the shared loop count by piece
            show(0)
        status.clear()
    if out is not None:
        log(f"[biodl] wrote {n} predictions to {out} ({fmt})", quiet)
    if not keep:
        return None
    df = kept[0] if len(kept) == 1 else pd.concat(kept, ignore_index=True)
    df.attrs["biodl_kind"] = k.name  # the CLI writes standard output in the kind's format
    df.attrs["biodl_format"] = fmt
    return df


# ---------------------------------------------------------------------------- report
@as_command  # from Python too: no output may replace an input or a used run's record
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

    check_path_arg(run_dir, "the run directory")
    check_path_arg(data, "data", none_ok=True)
    run = Path(run_dir)
    if not run.exists():
        raise BiodlInputError("not found (give a run directory of `biodl train`)", path=run)
    if run.is_file() and run.name != "model.pt":
        raise BiodlInputError(
            "is a file, not a run: give the directory `biodl train` wrote (--out)", path=run
        )
    run = run if run.is_dir() else run.parent
    _run_state(run, "report", refuse=True)
    if not (run / "model.pt").exists():
        raise BiodlInputError("no model.pt here; is this a run directory of `biodl train`?", path=run)
    page = run / "report.html"
    if page.exists() and not page.is_file():  # before any work (it failed last, after rewriting the rest)
        raise BiodlInputError(
            "is not a file (a folder?): `biodl report` writes the report there; move it away first", path=page
        )
    model, meta, k, recipe = _load(run / "model.pt", "cpu")
    opts, _ = kind_options(recipe, k, _options_dict(options), "report", spellings)
    if data is not None:
        if not k.report_data:
            raise BiodlInputError(
                f"the report of a {recipe.name} run ({k.title}) reads no inputs: leave out --test / --data"
            )
        if not Path(data).exists():
            raise BiodlInputError(f"not found (--test / --data: {k.report_data})", path=data)
    with _report_files_together(run):
        sections = run_sections(run, meta, recipe, k) + k.report_sections(run, model, meta, data, opts)
        if note:
            from biodl.report.html import Section

            sections.insert(1, Section("About these numbers", text=note))
        path = write_html_report(
            run / "report.html",
            title or f"{recipe.title}: {run.resolve().name}",
            sections,
            subtitle=recipe.short_citation,
        )
    log(f"[biodl] report: {path}", quiet)
    return path


@contextlib.contextmanager
def _report_files_together(run: Path):
    """The report's files (``report.html`` and the figures and tables it names: motifs.tsv,
    filters.meme, ...) change together: a report that fails or is stopped midway puts back the
    files the earlier report had and removes the ones it wrote (the page kept describing the old
    files while they held the new report's). The earlier files are kept as hard links (copies
    where the file system has none) until the new report is written."""
    import shutil
    import tempfile

    from biodl.io._util import _writer_tag, remove_leftovers
    from biodl.report.run import report_files

    remove_leftovers(run, ".report-backup.biodl-*")  # of a report killed outright (its process gone)
    try:
        backup = Path(tempfile.mkdtemp(prefix=f".report-backup.{_writer_tag()}.", dir=run))
    except OSError as e:  # a run folder of another user's, a read-only file system
        raise BiodlInputError(
            f"cannot write the report here: {e.strerror or e} (the run directory is not writable; "
            "copy the run somewhere writable, e.g. cp -r, and report the copy)",
            path=run,
        ) from None
    kept: dict[Path, Path] = {}
    for q in report_files(run):
        b = backup / q.relative_to(run)
        b.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(q, b)
        except OSError:
            shutil.copy2(q, b)
        kept[q] = b
    try:
        yield
    except BaseException:
        for q in report_files(run):
            if q not in kept:
                q.unlink(missing_ok=True)  # written by the failed report
        for q, b in kept.items():
            os.replace(b, q)  # the earlier report's file, as it was
        raise
    finally:
        shutil.rmtree(backup, ignore_errors=True)
