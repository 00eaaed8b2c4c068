"""``train`` / ``evaluate`` / ``predict`` for molecule recipes (``neural-fp``, ``circular-fp``).

The contract is the one of :mod:`biodl.plugins`. Options (``--set KEY=VALUE`` on the CLI):

``target``
    Target column(s), comma-separated, or ``all`` (``--target`` on the CLI).
``task``
    ``regression``, ``binary`` or ``multilabel`` (default: binary/multilabel when every
    target value is 0 or 1, else regression).
``skip_invalid``
    Drop molecules RDKit rejects (train/evaluate) or keep them with an empty prediction and
    the reason (predict), instead of stopping at the first one.
``smiles_col``, ``id_col``
    Column names when they are not ``smiles`` / ``id``-like.
``valid_fraction``, ``test_fraction``
    Seeded random hold-outs used when no ``--valid`` / ``--test`` file is given
    (defaults 0.1 and 0.1).
``lr_decay``
    Cosine learning-rate decay over ``--epochs`` (default: the recipe's).
``threads``
    torch CPU threads while training (default 1: small graphs are fastest single-threaded).
``report``
    Write ``OUT/report.html`` after training (default true; see :func:`report`).
``search_trials``
    The paper's protocol: a random search of this many configurations
    (:mod:`biodl.molecules.search`; options given with ``-m`` or ``--lr`` stay fixed), each
    trained for ``--epochs`` and scored on the validation molecules; the best is refitted on
    train + validation and its final weights exported (``OUT/search.tsv``, trials in
    ``OUT/search/``). ``search_seed`` seeds the draws (default ``--seed``).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import ConcatDataset

from biodl.api import prediction_frame, write_evaluation
from biodl.errors import BiodlInputError
from biodl.io._util import atomic_write_text
from biodl.molecules.data import MoleculeDataset, featurize_for, fit_molecules, predict_molecules
from biodl.molecules.io import MoleculeTable, read_molecules
from biodl.recipes import get_recipe
from biodl.train.engine import TrainConfig, load_model, seed_all
from biodl.train.metrics import compute_metrics

PLUGIN = "biodl.molecules.plugin"


def _log(msg: str, quiet: bool) -> None:
    if not quiet:
        from rich.console import Console

        Console(stderr=True).print(msg, highlight=False)


def _truthy(v: Any) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in ("1", "true", "yes", "y", "on")
    return bool(v)


def _read(path, options: dict, target, require_targets: bool, quiet: bool, keep_invalid: bool = False):
    skip = _truthy(options.get("skip_invalid", False))
    table = read_molecules(
        path,
        target=target,
        smiles_col=options.get("smiles_col"),
        id_col=options.get("id_col"),
        require_targets=require_targets,
        skip_invalid=skip,
        keep_invalid=keep_invalid and skip,
    )
    if table.invalid and not keep_invalid:
        first = table.invalid[0]
        _log(
            f"[biodl] {path}: dropped {len(table.invalid)} invalid molecule(s) of "
            f"{len(table) + len(table.invalid)} (first: line {first.line}: {first.reason})",
            quiet,
        )
    return table


def _opt_float(options: dict, key: str, default: float) -> float:
    v = options.get(key)
    if v is None or v == "":
        return default
    try:
        return float(v)
    except (TypeError, ValueError):
        raise BiodlInputError(f"option {key} must be a number, not {v!r}") from None


def guess_task(targets: np.ndarray) -> str:
    """``binary`` / ``multilabel`` when every known value is 0 or 1, else ``regression``."""
    vals = targets[~np.isnan(targets)]
    if vals.size and np.isin(vals, (0.0, 1.0)).all():
        return "binary" if targets.shape[1] == 1 else "multilabel"
    return "regression"


def _split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    k = int(round(n * fraction))
    return np.sort(perm[k:]), np.sort(perm[:k])


def _dataset(meta: dict, table: MoleculeTable) -> MoleculeDataset:
    return MoleculeDataset(featurize_for(meta["model_kwargs"], meta["recipe"], table.mols), table.targets)


def _concat(datasets: list[MoleculeDataset]):
    return datasets[0] if len(datasets) == 1 else ConcatDataset(datasets)


def _build_model(recipe, task: str, names: list[str], model_options: dict, tables: list, seed: int):
    """(meta, model): the recipe's model with ``model_options``; regression outputs scaled by
    the mean / sd of the targets of ``tables`` (the molecules it is fitted on)."""
    mk = recipe.model_kwargs(len(names), **model_options)
    if task == "regression":
        y = np.concatenate([t.targets for t in tables])
        mean = np.nanmean(y, axis=0)
        std = np.nanstd(y, axis=0)
        mk["target_mean"] = [float(v) for v in np.nan_to_num(mean)]
        mk["target_std"] = [float(v) if v > 0 else 1.0 for v in np.nan_to_num(std, nan=1.0)]
    seed_all(seed)
    model = recipe.build(**mk)
    return {"recipe": recipe.name, "plugin": PLUGIN, "model_kwargs": mk, "target_names": names}, model


def _search(
    recipe, task, names, model_options, train_t, valid_t, out: Path, config, options, lr_decay, threads, quiet
) -> dict[str, Any]:
    """``search_trials`` random configurations (:mod:`biodl.molecules.search`), each trained for
    the full epoch budget on the training molecules and scored by its final-epoch validation
    metric; writes ``OUT/search.tsv`` and returns the best (``model_options``,
    ``train_options``, ``trial``, ``metric``, ``score``)."""
    from biodl.molecules.search import sample_config
    from biodl.train.engine import MONITOR

    n = int(_opt_float(options, "search_trials", 0))
    key, mode = MONITOR[task]
    fixed = dict(model_options)
    fixed.update({k: options[k] for k in ("lr", "weight_decay") if options.get(k) is not None})
    head = str(model_options.get("head", recipe.model_defaults.get("head", "mlp")))
    rng = np.random.default_rng(int(_opt_float(options, "search_seed", config.seed)))
    rows = []
    for t in range(n):
        mopts, topts = sample_config(recipe.name, head, rng, fixed=fixed)
        meta, model = _build_model(recipe, task, names, {**model_options, **mopts}, [train_t], config.seed)
        cfg = replace(config, patience=0, progress=False, **topts)
        tdir = out / "search" / f"trial{t}"
        res = fit_molecules(
            model, task, _dataset(meta, train_t), _dataset(meta, valid_t), tdir, cfg, meta,
            label_names=names, lr_decay=lr_decay, threads=threads,
        )  # fmt: skip
        hist = pd.read_csv(tdir / "history.csv")
        col = f"val_{key}"
        score = (
            float(hist[col].dropna().iloc[-1]) if col in hist and hist[col].notna().any() else float("nan")
        )
        rows.append({"trial": t, f"final val_{key}": score, **mopts, **topts, "epochs": res.epochs_run})
        _log(f"[biodl] search trial {t + 1}/{n}: val_{key} {score:.4g} {mopts} {topts}", quiet)
    table = pd.DataFrame(rows)
    col = f"final val_{key}"
    ok = table[table[col].notna()]
    if ok.empty:
        raise BiodlInputError("every search trial failed to produce a validation score")
    best = ok.loc[ok[col].idxmax() if mode == "max" else ok[col].idxmin()]
    table["chosen"] = table["trial"] == best["trial"]
    atomic_write_text(out / "search.tsv", table.to_csv(sep="\t", index=False, float_format="%.6g"))
    chosen = rows[int(best["trial"])]
    mopts = {k: chosen[k] for k in chosen if k not in ("trial", col, "epochs", "lr", "weight_decay")}
    topts = {k: chosen[k] for k in ("lr", "weight_decay") if k in chosen}
    _log(
        f"[biodl] search: trial {int(best['trial']) + 1} chosen ({col} {best[col]:.4g}); refitting on "
        "train + validation",
        quiet,
    )
    return {
        "model_options": mopts,
        "train_options": topts,
        "trial": int(best["trial"]),
        "metric": key,
        "score": float(best[col]),
        "trials": n,
    }


def train(
    system: str,
    out_dir: str | Path,
    config: TrainConfig,
    *,
    data: str | Path | None,
    valid: str | Path | None = None,
    test: str | Path | None = None,
    options: dict | None = None,
    model_options: dict | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """Train a molecule recipe on a table/SDF with targets; evaluate on a test set.

    Without ``test``, a seeded ``test_fraction`` (default 0.1) of the training file is held
    out and reported; without ``valid``, a seeded ``valid_fraction`` of the rest is used
    for early stopping and model selection.

    Returns
    -------
    dict
        Summary (also in ``OUT/summary.json``): ``system``, ``task``, ``model``, sizes,
        ``best_epoch``, ``val_metrics``, ``test_metrics``, ``n_invalid``, ``minutes``.
    """
    t0 = time.time()
    options = dict(options or {})
    recipe = get_recipe(system)
    if data is None:
        raise BiodlInputError("no training file given (DATA or --data)")
    out = Path(out_dir)
    target = options.get("target")
    table = _read(data, options, target, True, quiet)
    task = options.get("task") or guess_task(table.targets)
    if task not in ("regression", "binary", "multilabel"):
        raise BiodlInputError(
            f"task {task!r} is not supported for molecules (regression, binary, multilabel)"
        )
    if task == "binary" and table.targets.shape[1] > 1:
        task = "multilabel"
    names = table.target_names
    n_invalid = len(table.invalid)
    test_t = None
    if test is not None:
        test_t = _read(test, options, names, True, quiet)
    else:
        frac = _opt_float(options, "test_fraction", 0.1)
        if frac > 0:
            tr, te = _split(len(table), frac, config.seed)
            table, test_t = table.subset(tr), table.subset(te)
    if valid is not None:
        train_t, valid_t = table, _read(valid, options, names, True, quiet)
    else:
        tr, va = _split(len(table), _opt_float(options, "valid_fraction", 0.1), config.seed + 1)
        train_t, valid_t = table.subset(tr), table.subset(va)
    if len(train_t) < 2 or len(valid_t) < 1:
        raise BiodlInputError(
            f"too few molecules to train ({len(train_t)} train, {len(valid_t)} validation)", path=data
        )
    lr_decay = _truthy(options.get("lr_decay", recipe.train_defaults.get("lr_decay", False)))
    threads = int(_opt_float(options, "threads", 1))
    model_options = dict(model_options or {})
    n_trials = int(_opt_float(options, "search_trials", 0))
    search = None
    fit_tables, fit_valid = [train_t], valid_t
    if n_trials > 0:
        search = _search(
            recipe,
            task,
            names,
            model_options,
            train_t,
            valid_t,
            out,
            config,
            options,
            lr_decay,
            threads,
            quiet,
        )
        model_options.update(search["model_options"])
        config = replace(config, patience=0, **search["train_options"])
        # the paper's protocol: the chosen configuration refitted on train + validation for the
        # same epoch budget; the final epoch's weights are exported (nothing left to select on)
        fit_tables, fit_valid = [train_t, valid_t], None
    meta, model = _build_model(recipe, task, names, model_options, fit_tables, config.seed)
    meta.update(
        {
            "smiles_col": options.get("smiles_col"),
            "id_col": options.get("id_col"),
            "train_file": str(data),
            "n_train": len(train_t),
            "n_valid": len(valid_t),
            "n_invalid": n_invalid,
        }
    )
    _log(
        f"[biodl] featurising {len(train_t) + len(valid_t)} molecules for {recipe.title} ({task}, "
        f"targets: {', '.join(names)})",
        quiet,
    )
    train_ds = _concat([_dataset(meta, t) for t in fit_tables])
    valid_ds = _dataset(meta, fit_valid) if fit_valid is not None else None
    _log(
        f"[biodl] training on {len(train_ds)} molecules"
        + (f", validating on {len(valid_t)}" if valid_ds is not None else " (train + validation: refit)")
        + (f", testing on {len(test_t)}" if test_t is not None else "")
        + f"; output in {out}",
        quiet,
    )
    res = fit_molecules(
        model,
        task,
        train_ds,
        valid_ds,
        out,
        config,
        meta,
        label_names=names,
        lr_decay=lr_decay,
        threads=threads,
    )
    summary: dict[str, Any] = {
        "system": recipe.name,
        "task": task,
        "out_dir": str(out),
        "model": str(res.model_path),
        "targets": names,
        "n_train": len(train_t),
        "n_valid": len(valid_t),
        "n_invalid": n_invalid,
        "best_epoch": res.best_epoch,
        "epochs_run": res.epochs_run,
        "resumed_from": res.resumed_from,
        "val_metrics": res.val_metrics if search is None else {"val_" + search["metric"]: search["score"]},
        "config": asdict(config),
    }
    if search is not None:
        summary["search"] = dict(search)
        summary["n_fit"] = len(train_ds)  # the refit saw train + validation
    if test_t is not None and len(test_t):
        model, meta2 = load_model(res.model_path, device="cpu")
        ev = _evaluate_table(model, meta2, test_t, out / "test", device="cpu")
        summary["test_metrics"] = ev["metrics"]
        summary["n_test"] = ev["n"]
        summary["test_source"] = (
            str(test) if test is not None else f"held out from {data} (seed {config.seed})"
        )
    summary["minutes"] = round((time.time() - t0) / 60, 3)
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2, default=str) + "\n")
    if _truthy(options.get("report", True)):
        summary["report"] = str(report(out, options=options, quiet=quiet))
        atomic_write_text(out / "summary.json", json.dumps(summary, indent=2, default=str) + "\n")
    return summary


def _prediction_frame(meta: dict, ids, smiles, outputs: np.ndarray) -> pd.DataFrame:
    names = meta.get("target_names") or meta.get("label_names")
    df = prediction_frame(meta["task"], list(ids), outputs, names, meta.get("classes"))
    df.insert(1, "smiles", list(smiles))
    return df


def _evaluate_table(model, meta: dict, table: MoleculeTable, out_dir, device: str) -> dict[str, Any]:
    outputs = predict_molecules(model, _dataset(meta, table), device=device)
    y = table.targets
    if y.shape[1] != outputs.shape[1]:
        raise BiodlInputError(
            f"the file has {y.shape[1]} target column(s), the model {outputs.shape[1]} output(s)",
            path=table.path,
        )
    task = meta["task"]
    metrics = compute_metrics(task, torch.from_numpy(outputs), torch.from_numpy(y), meta.get("label_names"))
    if task == "regression":
        metrics["rmse"] = float(np.sqrt(metrics["mse"]))
    result = {
        "metrics": metrics,
        "n": len(table),
        "task": task,
        "data": table.path,
        "n_invalid": len(table.invalid),
    }
    if out_dir is not None:
        pred = _prediction_frame(meta, table.ids, table.smiles, outputs)
        for j, n in enumerate(table.target_names):
            pred[f"true_{n}"] = y[:, j]
        write_evaluation(out_dir, result, pred, y, outputs, meta.get("label_names"))
    return result


def evaluate(
    model_path: str | Path,
    data: str | Path,
    *,
    out_dir: str | Path | None = None,
    device: str = "cpu",
    options: dict | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """Metrics of a trained molecule model on a file with the model's target column(s).

    Regression: ``mse``, ``rmse``, ``pearson``, ``r2``; classification: ``auroc``,
    ``auprc``. With ``out_dir``: ``metrics.json``, ``predictions.tsv`` (and ROC/PR PNGs).
    """
    options = dict(options or {})
    model, meta = load_model(model_path, device=device)
    opts = {"smiles_col": meta.get("smiles_col"), "id_col": meta.get("id_col"), **options}
    target = options.get("target") or meta["target_names"]
    table = _read(data, opts, target, True, quiet)
    r = _evaluate_table(model, meta, table, out_dir, device)
    _log(
        "[biodl] "
        + ", ".join(f"{k} {v:.4f}" for k, v in r["metrics"].items() if "/" not in k)
        + f" on {len(table)} molecules of {data}",
        quiet,
    )
    return r


def predict(
    model_path: str | Path,
    data: str | Path,
    *,
    out: str | Path | None = None,
    device: str = "cpu",
    options: dict | None = None,
    quiet: bool = False,
) -> pd.DataFrame:
    """Predict every molecule of a table/SDF (targets not needed).

    The output keeps the input order and identifiers. With ``skip_invalid``, rows RDKit
    rejects stay in the output with empty predictions and the reason in ``problem``.
    """
    options = dict(options or {})
    model, meta = load_model(model_path, device=device)
    opts = {"smiles_col": meta.get("smiles_col"), "id_col": meta.get("id_col"), **options}
    table = _read(data, opts, None, False, quiet, keep_invalid=True)
    outputs = (
        predict_molecules(model, _dataset(meta, table), device=device)
        if len(table)
        else np.zeros((0, model.n_outputs), np.float32)
    )
    df = _prediction_frame(meta, table.ids, table.smiles, outputs)
    if table.invalid:
        df["problem"] = ""
        df["_line"] = table.lines
        bad = pd.DataFrame(
            {
                "id": [b.id for b in table.invalid],
                "smiles": [b.smiles for b in table.invalid],
                "problem": [b.reason for b in table.invalid],
                "_line": [b.line for b in table.invalid],
            }
        )
        df = pd.concat([df, bad], ignore_index=True).sort_values("_line", kind="stable")
        df = df.drop(columns="_line").reset_index(drop=True)
        _log(f"[biodl] {len(table.invalid)} invalid molecule(s) kept with empty predictions", quiet)
    if out is not None:
        atomic_write_text(out, df.to_csv(sep="\t", index=False, float_format="%.6g"))
        _log(f"[biodl] wrote {len(df)} predictions to {out}", quiet)
    return df


def report(
    run_dir: str | Path,
    data: str | Path | None = None,
    *,
    options: dict | None = None,
    n_bits: int = 2,
    per_bit: int = 6,
    max_molecules: int = 2000,
    quiet: bool = False,
) -> Path:
    """Write ``RUN_DIR/report.html`` for a molecule training run.

    Sections: the run (sizes, dropped molecules, best epoch, validation and test metrics),
    learning curves, the test set (predicted against observed for regression, ROC/PR for
    classification) and, for ``neural-fp``, the substructures that most activate selected
    fingerprint bits (Duvenaud et al. 2015, Fig. 4), searched in ``data`` (default: the
    run's training file, its first ``max_molecules`` molecules). Figures are written next
    to the report and embedded in it.
    """
    from biodl.molecules.interpret import substructure_section
    from biodl.report.html import Section, write_html_report
    from biodl.report.run import learning_curves_section

    run = Path(run_dir)
    if not run.is_dir():
        run = run.parent
    model, meta = load_model(run / "model.pt")
    summary_path = run / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    recipe = get_recipe(meta["recipe"])
    facts: dict[str, Any] = {
        "system": f"{recipe.title} ({recipe.name})",
        "task": meta.get("task"),
        "targets": ", ".join(meta.get("target_names") or []),
        "training file": meta.get("train_file"),
    }
    for k in ("n_train", "n_valid", "n_test", "n_invalid", "best_epoch", "epochs_run", "minutes"):
        if summary.get(k) is not None:
            facts[k.replace("_", " ")] = summary[k]
    model_opts = {k: v for k, v in meta.get("model_kwargs", {}).items() if not k.startswith("target_")}
    secs = [
        Section(
            "Run",
            text=f"Model options: {json.dumps(model_opts)}. Molecules RDKit rejects are counted in "
            "'n invalid' (dropped only with --skip-invalid).",
            table=facts,
        )
    ]
    metrics = {}
    for split in ("val", "test"):
        for k, v in (summary.get(f"{split}_metrics") or meta.get(f"{split}_metrics") or {}).items():
            name = k if k.startswith(f"{split}_") else f"{split}_{k}"
            if "/" not in name and isinstance(v, int | float):
                metrics[name] = v
    if metrics:
        secs.append(
            Section(
                "Metrics", text="Validation: the best epoch; test: the held-out molecules.", table=metrics
            )
        )
    if (run / "search.tsv").exists():
        st = pd.read_csv(run / "search.tsv", sep="\t")
        secs.append(
            Section(
                "Hyperparameter search",
                text=f"{len(st)} random configurations, each trained on the training molecules for the "
                "full epoch budget and scored by its final-epoch validation metric; the chosen one was "
                "refitted on training + validation molecules and its final weights exported (the "
                "protocol of Duvenaud et al. 2015). The learning curves below are the refit's.",
                table=st,
            )
        )
    secs += learning_curves_section(run)
    test_imgs = [
        run / "test" / f for f in ("scatter.png", "roc.png", "pr.png") if (run / "test" / f).exists()
    ]
    if test_imgs:
        secs.append(Section("Test set", text=str(summary.get("test_source", "")), images=test_imgs))
    if meta["recipe"] == "neural-fp":
        src = data or meta.get("train_file")
        if src and Path(src).exists():
            opts = {
                "smiles_col": meta.get("smiles_col"),
                "id_col": meta.get("id_col"),
                "skip_invalid": True,
                **(options or {}),
            }
            table = _read(src, opts, None, False, True)
            table = table.subset(range(min(max_molecules, len(table))))
            sec, _ = substructure_section(
                model, table.mols, run / "substructures", n_bits=n_bits, per_bit=per_bit, smiles=table.smiles
            )
            secs.append(sec)
        else:
            secs.append(
                Section(
                    "Substructures",
                    text=f"not drawn: the training file {src} is not there "
                    "(give the molecules to search: biodl report RUN --data FILE)",
                )
            )
    path = write_html_report(
        run / "report.html",
        f"{recipe.title}: {run.name}",
        secs,
        subtitle=recipe.short_citation,
    )
    _log(f"[biodl] report: {path}", quiet)
    return path
