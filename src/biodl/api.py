"""The Python API behind the CLI: train, evaluate, predict and the demo."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from biodl.data.sequences import SequenceDataset, add_shuffled_negatives, split_indices
from biodl.errors import BiodlInputError
from biodl.io._util import atomic_write_text
from biodl.io.tables import SequenceTable, read_sequences
from biodl.recipes import get_recipe
from biodl.train.engine import TrainConfig, fit, load_model, predict_logits, seed_all
from biodl.train.metrics import compute_metrics

RESOURCES = Path(__file__).parent / "resources"


def _log(msg: str, quiet: bool = False) -> None:
    if not quiet:
        from rich.console import Console

        Console(stderr=True).print(msg, highlight=False)


def load_table(
    path: str | Path,
    require_labels: bool = True,
    seq_col: str | None = None,
    label_cols: str | list[str] | None = None,
    iupac_as_n: bool = False,
    uppercase: bool = False,
) -> SequenceTable:
    """Read a labelled sequence file (FASTA with labels in headers, or TSV/CSV)."""
    kw: dict[str, Any] = dict(iupac_as_n=iupac_as_n, uppercase=uppercase)
    if seq_col:
        kw["seq_col"] = seq_col
    if label_cols:
        kw["label_cols"] = label_cols
    return read_sequences(path, require_labels=require_labels, **kw)


def _is_positive_only(table: SequenceTable) -> bool:
    if table.labels is None or table.classes is not None:
        return False
    vals = table.labels[~np.isnan(table.labels)]
    return table.labels.shape[1] == 1 and vals.size > 0 and bool((vals == 1).all())


def _n_outputs(table: SequenceTable, task: str) -> int:
    if task == "multiclass":
        return len(table.classes or [])
    return table.labels.shape[1]


def _pos_weight(table: SequenceTable, task: str) -> torch.Tensor:
    """Inverse-frequency class weights: positives weighted by neg/pos per label (binary,
    multilabel), classes by n / (k * count) (multiclass)."""
    y = table.labels
    if task == "multiclass":
        counts = np.bincount(y[:, 0].astype(int), minlength=len(table.classes))
        return torch.tensor(len(y) / (len(counts) * np.maximum(counts, 1)), dtype=torch.float32)
    pos = np.nansum(y, axis=0)
    neg = np.sum(~np.isnan(y), axis=0) - pos
    return torch.tensor(neg / np.maximum(pos, 1), dtype=torch.float32)


def train(
    system: str,
    data: str | Path,
    out_dir: str | Path,
    *,
    valid: str | Path | None = None,
    test: str | Path | None = None,
    task: str | None = None,
    valid_fraction: float = 0.1,
    shuffle_negatives: str = "auto",
    resample_negatives: bool = False,
    seq_col: str | None = None,
    label_cols: str | list[str] | None = None,
    length: int | None = None,
    rc_augment: bool = False,
    shift: int = 0,
    class_weight: bool = False,
    iupac_as_n: bool = False,
    uppercase: bool = False,
    config: TrainConfig | None = None,
    model_options: dict[str, Any] | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """Train a sequence recipe on a labelled file, optionally evaluating on a test file.

    Parameters
    ----------
    system
        Recipe name (``biodl systems`` lists them).
    data
        Training file: TSV/CSV with sequence and label columns (DeepBind ``.seq`` files
        included) or FASTA with ``class:1`` labels in the headers.
    valid, test
        Optional validation and held-out test files. Without ``valid``, a seeded
        ``valid_fraction`` of the training file is held out.
    shuffle_negatives
        ``auto`` (add dinucleotide-shuffled negatives when every training label is 1, as
        DeepBind did), ``yes`` or ``no``.
    resample_negatives
        Draw fresh shuffles of the training negatives every epoch (DeepBind's ``nbtcode``
        did) instead of one fixed set; validation negatives stay fixed. Needs added negatives.
    length
        Pad/crop every sequence to this length (default: all must share one length).
    rc_augment, shift
        Reverse-complement and shift augmentation of training sequences.
    class_weight
        Weight classes by inverse frequency in the loss.
    config
        Training options (epochs, batch size, device, seed, resume, ...); the recipe's
        defaults fill in what is not given.
    model_options
        Overrides of the recipe's model defaults (e.g. ``{"num_motifs": 32}``).

    Returns
    -------
    dict
        Summary: paths, task, sizes, best epoch, validation and test metrics, minutes.
    """
    t0 = time.time()
    recipe = get_recipe(system)
    if recipe.data_kind != "sequence":
        raise BiodlInputError(
            f"system {recipe.name!r} does not train on sequence files (it takes {recipe.data_kind} data)"
        )
    config = config or TrainConfig(
        **{k: v for k, v in recipe.train_defaults.items() if k in TrainConfig.__dataclass_fields__}
    )
    out = Path(out_dir)
    read = dict(seq_col=seq_col, label_cols=label_cols, iupac_as_n=iupac_as_n, uppercase=uppercase)
    table = load_table(data, **read)
    if shuffle_negatives not in ("auto", "yes", "no"):
        raise BiodlInputError(f"--shuffle-negatives must be auto, yes or no, not {shuffle_negatives!r}")
    n0 = None  # rows from n0 on are shuffled negatives (when added)
    if shuffle_negatives == "yes" or (shuffle_negatives == "auto" and _is_positive_only(table)):
        n0 = len(table)
        table = add_shuffled_negatives(table, seed=config.seed)
        _log(
            f"[biodl] {data}: {n0} positives only; added {len(table) - n0} dinucleotide-shuffled negatives "
            f"(seed {config.seed})",
            quiet,
        )
    task = task or table.task_hint
    if valid is not None:
        train_t, valid_t = table, load_table(valid, **read)
    else:
        tr, va = split_indices(len(table), valid_fraction, config.seed)
        train_t, valid_t = table.subset(tr), table.subset(va)
    ds_kw = dict(length=length, iupac_as_n=iupac_as_n)
    train_ds = SequenceDataset(train_t, rc_augment=rc_augment, shift=shift, seed=config.seed, **ds_kw)
    if resample_negatives:
        if n0 is None:
            raise BiodlInputError(
                "--resample-negatives needs shuffled negatives (a positive-only file, or "
                "--shuffle-negatives yes)",
                path=data,
            )
        if valid is not None:
            tr = np.arange(len(table))
        rows = np.flatnonzero(tr >= n0)
        train_ds.resample_negatives(rows, [table.seqs[tr[r] - n0] for r in rows])
        _log(f"[biodl] {len(rows)} training negatives are re-shuffled every epoch", quiet)
    seq_len = train_ds.length
    valid_ds = SequenceDataset(valid_t, length=seq_len, iupac_as_n=iupac_as_n)
    n_out = _n_outputs(table, task)
    mk = recipe.model_kwargs(n_out, seq_len=seq_len, **(model_options or {}))
    seed_all(config.seed)
    model = recipe.build(**mk)
    label_names = table.classes if task == "multiclass" else table.label_names
    meta = {
        "recipe": recipe.name,
        "model_kwargs": mk,
        "seq_len": seq_len,
        "n_value": train_ds.n_value,
        "classes": table.classes,
        "iupac_as_n": iupac_as_n,
        "rc_augment": rc_augment,
        "resample_negatives": resample_negatives,
        "uppercase": uppercase,
        "train_file": str(data),
        "n_train": len(train_t),
        "n_valid": len(valid_t),
    }
    _log(
        f"[biodl] training {recipe.title} ({task}, {n_out} output(s), length {seq_len}) on {len(train_t)} "
        f"sequences, validating on {len(valid_t)}; output in {out}",
        quiet,
    )
    res = fit(
        model,
        task,
        train_ds,
        valid_ds,
        out,
        config,
        meta,
        label_names=label_names,
        pos_weight=_pos_weight(train_t, task) if class_weight else None,
    )
    if not res.is_global_zero:
        return {"system": recipe.name, "task": task, "rank": "non-zero", "model": str(res.model_path)}
    summary: dict[str, Any] = {
        "system": recipe.name,
        "task": task,
        "out_dir": str(out),
        "model": str(res.model_path),
        "n_train": len(train_t),
        "n_valid": len(valid_t),
        "seq_len": seq_len,
        "best_epoch": res.best_epoch,
        "epochs_run": res.epochs_run,
        "resumed_from": res.resumed_from,
        "val_metrics": res.val_metrics,
        "config": asdict(config),
    }
    if test is not None:
        ev = evaluate(res.model_path, test, out_dir=out / "test", quiet=quiet, device=config.device)
        summary["test_metrics"] = ev["metrics"]
        summary["n_test"] = ev["n"]
    summary["minutes"] = round((time.time() - t0) / 60, 3)
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2, default=str) + "\n")
    return summary


def _dataset_for(meta: dict[str, Any], table: SequenceTable) -> SequenceDataset | None:
    """The dataset to score ``table`` with, or ``None`` when the sequences should be scored
    at their own lengths: they differ from the training length and the model was not built
    for a fixed length (no ``seq_len`` in its kwargs, e.g. DeepBind's global pooling)."""
    seq_len = meta.get("seq_len")
    lengths = {len(s) for s in table.seqs}
    if seq_len and lengths != {seq_len} and meta["model_kwargs"].get("seq_len") is None:
        return None
    return SequenceDataset(
        table, length=seq_len, n_value=meta.get("n_value", 0.25), iupac_as_n=meta.get("iupac_as_n", False)
    )


def _scores(
    model, meta, table: SequenceTable, device: str, batch_size: int = 256, rc_average: bool | None = None
) -> tuple[np.ndarray, np.ndarray]:
    if rc_average is None:  # default: average strands when the model was trained on both
        rc_average = bool(meta.get("rc_augment", False))
    ds = _dataset_for(meta, table)
    if ds is not None:
        return predict_logits(model, ds, batch_size=batch_size, device=device, rc_average=rc_average)
    # variable lengths with a length-agnostic model: group by length
    outs = np.zeros((len(table), model.n_outputs), dtype=np.float32)
    by_len: dict[int, list[int]] = {}
    for i, s in enumerate(table.seqs):
        by_len.setdefault(len(s), []).append(i)
    for _, idx in by_len.items():
        sub = table.subset(idx)
        lg, _ = predict_logits(
            model,
            SequenceDataset(sub, n_value=meta.get("n_value", 0.25), iupac_as_n=meta.get("iupac_as_n", False)),
            batch_size=batch_size,
            device=device,
            rc_average=rc_average,
        )
        outs[idx] = lg
    y = table.labels if table.labels is not None else np.zeros((len(table), 0), np.float32)
    return outs, y


def prediction_frame(
    task: str,
    ids: list[str],
    logits: np.ndarray,
    names: list[str] | None = None,
    classes: list[str] | None = None,
) -> pd.DataFrame:
    """Predictions as a table in input order: ``id`` then, per task, ``prob_<class>`` and
    ``predicted`` (multiclass), ``pred_<name>`` (regression) or ``logit_<name>`` and
    ``prob_<name>`` (binary / multi-label). ``logits`` is ``(n, n_outputs)``."""
    names = names or [f"out{j}" for j in range(logits.shape[1])]
    df = pd.DataFrame({"id": list(ids)})
    if task == "multiclass":
        prob = torch.from_numpy(logits).softmax(-1).numpy()
        classes = classes or names
        for j, c in enumerate(classes):
            df[f"prob_{c}"] = prob[:, j]
        df["predicted"] = [classes[k] for k in prob.argmax(1)]
    elif task == "regression":
        for j, n in enumerate(names):
            df[f"pred_{n}"] = logits[:, j]
    else:
        prob = 1 / (1 + np.exp(-logits.astype(np.float64)))
        for j, n in enumerate(names):
            df[f"logit_{n}"] = logits[:, j]
            df[f"prob_{n}"] = prob[:, j]
    return df


def _prediction_frame(meta: dict[str, Any], table: SequenceTable, logits: np.ndarray) -> pd.DataFrame:
    return prediction_frame(meta["task"], table.ids, logits, meta.get("label_names"), meta.get("classes"))


def predict(
    model_path: str | Path,
    data: str | Path,
    out: str | Path | None = None,
    device: str = "cpu",
    batch_size: int = 256,
    quiet: bool = False,
    rc_average: bool | None = None,
) -> pd.DataFrame:
    """Score every sequence of a FASTA/table file with a trained model; the output keeps
    the input order and identifiers (TSV written atomically when ``out`` is given).
    ``rc_average`` averages both strands (default: when the model was trained with
    reverse-complement augmentation)."""
    model, meta = load_model(model_path, device=device)
    table = load_table(
        data,
        require_labels=False,
        iupac_as_n=meta.get("iupac_as_n", False),
        uppercase=meta.get("uppercase", False),
    )
    logits, _ = _scores(model, meta, table, device, batch_size, rc_average)
    df = _prediction_frame(meta, table, logits)
    if out is not None:
        atomic_write_text(out, df.to_csv(sep="\t", index=False, float_format="%.6g"))
        _log(f"[biodl] wrote {len(df)} predictions to {out}", quiet)
    return df


def write_evaluation(
    out_dir: str | Path,
    result: dict[str, Any],
    predictions: pd.DataFrame,
    y: np.ndarray,
    scores: np.ndarray,
    label_names: list[str] | None = None,
) -> None:
    """Write an evaluation to ``out_dir``: ``metrics.json`` (``result``), ``predictions.tsv``
    and, for binary / multi-label tasks, ``roc.png`` and ``pr.png`` of ``scores`` against
    ``y`` (both ``(n, n_labels)``); for regression, ``scatter.png`` (predicted against observed).
    Sets ``result["out_dir"]``."""
    od = Path(out_dir)
    od.mkdir(parents=True, exist_ok=True)
    atomic_write_text(od / "metrics.json", json.dumps(result, indent=2) + "\n")
    atomic_write_text(od / "predictions.tsv", predictions.to_csv(sep="\t", index=False, float_format="%.6g"))
    if result["task"] in ("binary", "multilabel"):
        from biodl.report.plots import plot_pr, plot_roc

        plot_roc(y, scores, od / "roc.png", label_names=label_names)
        plot_pr(y, scores, od / "pr.png", label_names=label_names)
    elif result["task"] == "regression" and len(y) >= 2:
        from biodl.report.plots import plot_scatter

        try:
            plot_scatter(y, scores, od / "scatter.png", label_names=label_names)
        except ValueError:  # no target with two observed values: nothing to draw
            pass
    result["out_dir"] = str(od)


def evaluate(
    model_path: str | Path,
    data: str | Path,
    out_dir: str | Path | None = None,
    device: str = "cpu",
    batch_size: int = 256,
    quiet: bool = False,
    rc_average: bool | None = None,
) -> dict[str, Any]:
    """Metrics of a trained model on a labelled file; with ``out_dir``, also writes
    ``metrics.json``, ``predictions.tsv`` and (binary / multi-label) ``roc.png``, ``pr.png``."""
    model, meta = load_model(model_path, device=device)
    table = load_table(data, iupac_as_n=meta.get("iupac_as_n", False), uppercase=meta.get("uppercase", False))
    task = meta["task"]
    if task == "multiclass" and table.classes != meta.get("classes"):
        if not set(table.classes or []) <= set(meta.get("classes") or []):
            raise BiodlInputError(
                f"classes {table.classes} do not match the model's {meta.get('classes')}", path=data
            )
        remap = {i: meta["classes"].index(c) for i, c in enumerate(table.classes)}
        table.labels = np.vectorize(remap.get)(table.labels).astype(np.float32)
    logits, y = _scores(model, meta, table, device, batch_size, rc_average)
    if task != "multiclass" and y.shape[1] != logits.shape[1]:
        raise BiodlInputError(
            f"the file has {y.shape[1]} label column(s), the model {logits.shape[1]} output(s)", path=data
        )
    metrics = compute_metrics(task, torch.from_numpy(logits), torch.from_numpy(y), meta.get("label_names"))
    result = {"metrics": metrics, "n": len(table), "task": task, "data": str(data)}
    if out_dir is not None:
        write_evaluation(
            out_dir, result, _prediction_frame(meta, table, logits), y, logits, meta.get("label_names")
        )
    _log(
        "[biodl] "
        + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if "/" not in k)
        + f" on {len(table)} sequences of {data}",
        quiet,
    )
    return result
