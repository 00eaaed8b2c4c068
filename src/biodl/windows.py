"""DeepSEA-style multi-label genome windows as a biodl plugin.

``biodl train --system deepsea --genome G.fa --annotation G.gff --labels CDS,tRNA --out run``
lands here (see :mod:`biodl.plugins`): the genome is tiled into ``window``-bp windows every
``step`` bp, each window is labelled per feature type from the coverage of its central
``center`` bp, whole genomic regions (or chromosomes) are held out for validation and test
(:func:`biodl.data.genome_windows.build_genome_window_datasets`), any sequence recipe
(``deepsea``, ``basset``, ``danq``, ...) is trained with the shared engine, and the test
windows are scored per label (AUROC / AUPRC, ROC and PR curves, predictions).

Data options (``--set KEY=VALUE``)
-----------------------------------
``window`` (1000), ``step`` (200), ``center`` (200), ``min_overlap`` (0.5): DeepSEA's tiling
and labelling rule. ``valid`` / ``test`` (0.1 / 0.1): fractions of the genome, or chromosome
names / regions (``chr8,chr9`` or ``NC_000913.3:4000001-4641652``). ``placement`` (``end``)
and ``scope`` (``genome``): how fractions are laid out. ``max_windows``: a seeded random
subset of the windows (quick runs). ``rc_average`` (false): at evaluation / prediction,
average the model's outputs on each window and on its reverse complement.

The plugin needs nothing from the recipe registry at import time (``biodl.recipes``
imports this module while loading), so it imports the registry lazily.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from biodl.errors import BiodlInputError

PLUGIN = "biodl.windows"
#: Data options understood by :func:`train` (besides the CLI's own keys).
DATA_OPTIONS = (
    "window",
    "step",
    "center",
    "min_overlap",
    "valid",
    "test",
    "placement",
    "scope",
    "max_windows",
    "chroms",
    "rc_average",
    "split",
)
_FASTA_SUFFIXES = (".fa", ".fasta", ".fna", ".fas", ".ffn")


def _log(msg: str, quiet: bool = False) -> None:
    if not quiet:
        from rich.console import Console

        Console(stderr=True).print(msg, highlight=False)


# ----------------------------------------------------------------------------- options
def _int_option(options: dict[str, Any], key: str, default: int | None) -> int | None:
    v = options.get(key, default)
    if v is None:
        return None
    try:
        iv = int(v)
    except (TypeError, ValueError):
        raise BiodlInputError(f"--set {key} must be an integer, got {v!r}") from None
    if iv != float(v) or iv <= 0:
        raise BiodlInputError(f"--set {key} must be a positive integer, got {v!r}")
    return iv


def _float_option(options: dict[str, Any], key: str, default: float) -> float:
    v = options.get(key, default)
    try:
        return float(v)
    except (TypeError, ValueError):
        raise BiodlInputError(f"--set {key} must be a number, got {v!r}") from None


def _bool_option(options: dict[str, Any], key: str, default: bool = False) -> bool:
    v = options.get(key, default)
    if isinstance(v, bool) or v is None:
        return bool(v)
    if isinstance(v, (int, float)) and v in (0, 1):
        return bool(v)
    if isinstance(v, str) and v.lower() in ("true", "yes", "1", "false", "no", "0"):
        return v.lower() in ("true", "yes", "1")
    raise BiodlInputError(f"--set {key} must be true or false, got {v!r}")


def _holdout(value: Any, key: str) -> Any:
    """A hold-out spec from the command line: a fraction, or chromosome names / regions
    (a comma-separated string or a JSON list)."""
    if value is None or isinstance(value, bool):
        if isinstance(value, bool):
            raise BiodlInputError(f"--set {key} must be a fraction or chromosome names, got {value!r}")
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return [s.strip() for s in value.split(",") if s.strip()]
    if isinstance(value, list):
        return [str(v) for v in value]
    raise BiodlInputError(f"--set {key}: cannot read {value!r} as a fraction or chromosome names")


def _label_spec(labels: Any) -> list[str] | None:
    """``CDS,tRNA`` -> ``["CDS", "tRNA"]``; ``None`` keeps the automatic choice."""
    if labels is None or labels == "":
        return None
    if isinstance(labels, str):
        out = [s.strip() for s in labels.split(",") if s.strip()]
    else:
        out = [str(s).strip() for s in labels]
    if not out:
        raise BiodlInputError(f"--labels gives no feature type: {labels!r}")
    dup = sorted({s for s in out if out.count(s) > 1})
    if dup:
        raise BiodlInputError(f"--labels names {dup} more than once")
    return out


def _annotation_list(annotation: Any) -> list[str]:
    if annotation is None or annotation == []:
        return []
    if isinstance(annotation, (str, Path)):
        return [str(annotation)]
    return [str(a) for a in annotation]


def _check_unknown(options: dict[str, Any]) -> None:
    from biodl.plugins import CLI_OPTION_KEYS

    unknown = [k for k in options if k not in DATA_OPTIONS and k not in CLI_OPTION_KEYS]
    if unknown:
        raise BiodlInputError(f"unknown genome-window option(s) {unknown} (known: {', '.join(DATA_OPTIONS)})")


def _is_fasta(path: Path) -> bool:
    name = path.name.lower().removesuffix(".gz").removesuffix(".bgz")
    if name.endswith(_FASTA_SUFFIXES):
        return True
    try:
        import gzip

        opener = gzip.open if path.read_bytes()[:2] == b"\x1f\x8b" else open
        with opener(path, "rt") as fh:
            for line in fh:
                if line.strip():
                    return line.startswith(">")
    except (OSError, UnicodeDecodeError):
        return False
    return False


# ----------------------------------------------------------------------------- datasets
class ShiftedDataset(Dataset):
    """Random shift augmentation of a window dataset: ``x`` is moved by up to ``shift``
    bases left or right and the uncovered end is filled with ``n_value`` (labels kept).

    Parameters
    ----------
    dataset
        Dataset of ``(x, y)`` with ``x`` float32 ``(4, length)``.
    shift
        Maximum shift, bases.
    seed
        Seed; each item's shift depends on ``(seed, epoch, index)``, so a resumed run draws
        the same shifts.
    n_value
        Fill value of the uncovered positions (the one-hot value of N).
    """

    def __init__(self, dataset: Dataset, shift: int, seed: int = 0, n_value: float = 0.25) -> None:
        self.dataset, self.shift, self.seed, self.n_value = dataset, int(shift), int(seed), float(n_value)
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.dataset)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.dataset[i]
        g = torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch * 7_919 + int(i)) & 0x7FFFFFFF)
        s = int(torch.randint(-self.shift, self.shift + 1, (1,), generator=g))
        if s == 0:
            return x, y
        out = torch.full_like(x, self.n_value)
        if s > 0:
            out[:, s:] = x[:, :-s]
        else:
            out[:, :s] = x[:, -s:]
        return out, y


def _window_kwargs(options: dict[str, Any]) -> dict[str, Any]:
    window = _int_option(options, "window", 1000)
    center = _int_option(options, "center", 200)
    step = _int_option(options, "step", center)
    chroms = options.get("chroms")
    if isinstance(chroms, str):
        chroms = [c.strip() for c in chroms.split(",") if c.strip()]
    return dict(
        window=window,
        step=step,
        center=center,
        min_overlap=_float_option(options, "min_overlap", 0.5),
        valid=_holdout(options.get("valid", options.get("valid_fraction") or 0.1), "valid"),
        test=_holdout(options.get("test", 0.1), "test"),
        placement=str(options.get("placement", "end")),
        scope=str(options.get("scope", "genome")),
        chroms=chroms,
    )


def _pos_weight(labels: np.ndarray) -> torch.Tensor:
    """Positives weighted by negatives / positives per label, ``(n_labels,)``."""
    pos = labels.sum(axis=0)
    neg = labels.shape[0] - pos
    return torch.tensor(neg / np.maximum(pos, 1), dtype=torch.float32)


def _check_splits(datasets, names: list[str], label_names: list[str], quiet: bool = False) -> None:
    for ds, part in zip(datasets, names, strict=True):
        if len(ds) == 0:
            raise BiodlInputError(
                f"the {part} split has no windows: the genome is too short for the window size, or the "
                f"--set {part}=... hold-out is empty (use a fraction, e.g. --set {part}=0.1)"
            )
    pos = datasets[0].labels.sum(axis=0)
    empty = [n for n, p in zip(label_names, pos, strict=True) if p == 0]
    if len(empty) == len(label_names):
        raise BiodlInputError(
            f"no training window is positive for any label ({', '.join(label_names)}); choose other --labels"
        )
    if empty:
        _log(
            f"[biodl] warning: label(s) {empty} have no positive training window (too rare, or all in the "
            "held-out parts); the model cannot learn them",
            quiet,
        )


# ----------------------------------------------------------------------------- train
def train(
    system: str,
    out_dir: str | Path,
    config,
    *,
    data: str | Path | None = None,
    valid: str | Path | None = None,
    test: str | Path | None = None,
    options: dict[str, Any] | None = None,
    model_options: dict[str, Any] | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """Train a sequence recipe on DeepSEA-style windows of a genome labelled by an annotation.

    Parameters
    ----------
    system
        Sequence recipe name (``deepsea``, ``basset``, ``danq``, ...).
    out_dir
        Run directory (``model.pt``, checkpoints, ``history.csv``, ``summary.json``,
        ``test/`` with metrics, predictions and ROC/PR plots).
    config
        :class:`biodl.train.engine.TrainConfig`.
    data, valid, test
        Not used: the windows come from ``options["genome"]``; hold-outs are given as
        ``--set valid=...`` / ``--set test=...`` (fractions or chromosome names).
    options
        ``genome`` (FASTA path), ``annotation`` (GFF3/BED path or list), ``labels`` (feature
        types, comma-separated; default: chosen from the annotation), ``task``
        (``multilabel``), ``rc_augment``, ``shift``, ``class_weight`` and the data options
        of this module's docstring.
    model_options
        Overrides of the recipe's model defaults.
    quiet
        No progress messages.

    Returns
    -------
    dict
        Summary: ``system``, ``task``, ``model``, sizes, label names and per-split positive
        counts, best epoch, validation metrics and ``test_metrics`` (``auroc``, ``auprc`` and
        ``auroc/<label>``, ``auprc/<label>``), ``minutes``.
    """
    from biodl.data.genome_windows import build_genome_window_datasets
    from biodl.recipes import get_recipe
    from biodl.train.engine import TrainConfig, fit, seed_all

    t0 = time.time()
    options = dict(options or {})
    _check_unknown(options)
    recipe = get_recipe(system)
    if recipe.data_kind != "sequence":
        raise BiodlInputError(f"system {recipe.name!r} does not take DNA sequence windows")
    for what, v in (("DATA", data), ("--valid", valid), ("--test", test)):
        if v is not None:
            raise BiodlInputError(
                f"{what} is not used with --genome: the windows come from the genome; hold out regions "
                "or chromosomes with --set valid=... / --set test=... (fractions or names)"
            )
    genome = options.get("genome")
    if not genome:
        raise BiodlInputError("genome-window training needs --genome FASTA")
    annotation = _annotation_list(options.get("annotation"))
    if not annotation:
        raise BiodlInputError("genome-window training needs --annotation (GFF3 or BED file(s))")
    task = options.get("task") or "multilabel"
    if task not in ("multilabel", "binary"):
        raise BiodlInputError(f"genome windows are a multilabel (or binary) task, not {task!r}")
    config = config or TrainConfig(
        **{k: v for k, v in recipe.train_defaults.items() if k in TrainConfig.__dataclass_fields__}
    )
    wk = _window_kwargs(options)
    max_windows = _int_option(options, "max_windows", None)
    shift = int(options.get("shift") or 0)
    if shift < 0:
        raise BiodlInputError(f"--shift must be >= 0, got {shift}")
    rc_augment = _bool_option(options, "rc_augment")
    label_spec = _label_spec(options.get("labels"))
    out = Path(out_dir)
    train_ds, valid_ds, test_ds, names = build_genome_window_datasets(
        genome,
        annotation,
        label_types=label_spec,
        max_windows=max_windows,
        seed=config.seed,
        reverse_complement=rc_augment,
        verbose=not quiet,
        **wk,
    )
    if task == "binary" and len(names) != 1:
        raise BiodlInputError(f"--task binary needs exactly one label, got {len(names)}: {names}")
    _check_splits((train_ds, valid_ds, test_ds), ["train", "valid", "test"], names, quiet)
    fit_train: Dataset = train_ds
    if shift:
        fit_train = ShiftedDataset(train_ds, shift, seed=config.seed, n_value=train_ds.n_value)
    mk = recipe.model_kwargs(len(names), seq_len=wk["window"], **(model_options or {}))
    seed_all(config.seed)
    try:
        model = recipe.build(**mk)
    except ValueError as e:
        raise BiodlInputError(f"cannot build {recipe.name} for {wk['window']}-bp windows: {e}") from None
    meta = {
        "recipe": recipe.name,
        "plugin": PLUGIN,
        "model_kwargs": mk,
        "seq_len": wk["window"],
        "n_value": train_ds.n_value,
        "genome": str(Path(genome).resolve()),
        "annotation": [str(Path(a).resolve()) for a in annotation],
        "labels": names,
        "window": wk["window"],
        "step": wk["step"],
        "center": wk["center"],
        "min_overlap": wk["min_overlap"],
        "holdout": {"valid": wk["valid"], "test": wk["test"]},
        "placement": wk["placement"],
        "scope": wk["scope"],
        "chroms": wk["chroms"],
        "seed": config.seed,
        "max_windows": max_windows,
        "rc_augment": rc_augment,
        "shift": shift,
        "class_weight": bool(options.get("class_weight")),
        "n_train": len(train_ds),
        "n_valid": len(valid_ds),
        "n_test": len(test_ds),
    }
    _log(
        f"[biodl] training {recipe.title} ({task}, {len(names)} label(s): {', '.join(names)}) on "
        f"{len(train_ds)} genome windows of {wk['window']} bp, validating on {len(valid_ds)}, "
        f"testing on {len(test_ds)}; output in {out}",
        quiet,
    )
    res = fit(
        model,
        task,
        fit_train,
        valid_ds,
        out,
        config,
        meta,
        label_names=names,
        pos_weight=_pos_weight(train_ds.labels) if options.get("class_weight") else None,
    )
    counts = {
        part: {n: int(c) for n, c in zip(names, ds.labels.sum(axis=0), strict=True)}
        for part, ds in (("train", train_ds), ("valid", valid_ds), ("test", test_ds))
    }
    ev = _evaluate_dataset(
        res.model_path,
        test_ds,
        out_dir=out / "test",
        device=config.device,
        rc_average=_bool_option(options, "rc_average"),
        data_desc=f"{genome} (test split)",
        quiet=quiet,
    )
    summary: dict[str, Any] = {
        "system": recipe.name,
        "task": task,
        "plugin": PLUGIN,
        "out_dir": str(out),
        "model": str(res.model_path),
        "genome": str(genome),
        "labels": names,
        "positives": counts,
        "n_train": len(train_ds),
        "n_valid": len(valid_ds),
        "n_test": len(test_ds),
        "window": wk["window"],
        "best_epoch": res.best_epoch,
        "epochs_run": res.epochs_run,
        "resumed_from": res.resumed_from,
        "val_metrics": res.val_metrics,
        "test_metrics": ev["metrics"],
        "config": asdict(config),
    }
    summary["minutes"] = round((time.time() - t0) / 60, 3)
    from biodl.io._util import atomic_write_text

    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2, default=str) + "\n")
    return summary


# ------------------------------------------------------------------------ scoring
def window_logits(
    model: torch.nn.Module,
    dataset: Dataset,
    *,
    batch_size: int = 256,
    device: str = "cpu",
    rc_average: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Model outputs over a window dataset, optionally averaged over both strands.

    Parameters
    ----------
    model
        Maps ``(batch, 4, length)`` to ``(batch, n_outputs)`` logits.
    dataset
        Yields ``(x, y)``: ``x`` ``(4, length)``, ``y`` ``(n_labels,)``.
    rc_average
        Average the logits of each window and of its reverse complement (flip of both the
        channel axis, A<->T / C<->G, and the position axis).

    Returns
    -------
    (logits, targets)
        ``(n, n_outputs)`` and ``(n, n_labels)`` float32 arrays in dataset order.
    """
    from biodl.train.engine import predict_logits

    if len(dataset) == 0:
        raise BiodlInputError("nothing to score: no windows")
    return predict_logits(model, dataset, batch_size=batch_size, device=device, rc_average=rc_average)


def _prediction_frame(windows: pd.DataFrame, logits: np.ndarray, names: list[str]) -> pd.DataFrame:
    df = windows.reset_index(drop=True).copy()
    df["chrom"] = df["chrom"].astype(str)
    prob = 1 / (1 + np.exp(-logits.astype(np.float64)))
    for j, n in enumerate(names):
        df[f"prob_{n}"] = prob[:, j]
    return df


def _evaluate_dataset(
    model_path,
    ds,
    *,
    out_dir,
    device: str,
    rc_average: bool,
    data_desc: str,
    quiet: bool,
    batch_size: int = 256,
) -> dict[str, Any]:
    from biodl.io._util import atomic_write_text
    from biodl.train.engine import load_model
    from biodl.train.metrics import compute_metrics

    model, meta = load_model(model_path, device=device)
    names = meta.get("label_names") or meta.get("labels")
    logits, y = window_logits(model, ds, batch_size=batch_size, device=device, rc_average=rc_average)
    task = meta.get("task", "multilabel")
    metrics = compute_metrics(task, torch.from_numpy(logits), torch.from_numpy(y), names)
    if len(names) == 1:  # compute_metrics names per-label values only for several labels
        metrics[f"auroc/{names[0]}"] = metrics["auroc"]
        metrics[f"auprc/{names[0]}"] = metrics["auprc"]
    pos = y.sum(axis=0)
    result: dict[str, Any] = {
        "metrics": metrics,
        "n": len(ds),
        "task": task,
        "data": data_desc,
        "positives": {n: int(p) for n, p in zip(names, pos, strict=True)},
        "rc_average": rc_average,
    }
    if out_dir is not None:
        from biodl.report.plots import plot_pr, plot_roc

        od = Path(out_dir)
        od.mkdir(parents=True, exist_ok=True)
        atomic_write_text(od / "metrics.json", json.dumps(result, indent=2) + "\n")
        pred = _prediction_frame(ds.windows, logits, names)
        for j, n in enumerate(names):
            pred[f"label_{n}"] = y[:, j].astype(int)
        atomic_write_text(od / "predictions.tsv", pred.to_csv(sep="\t", index=False, float_format="%.6g"))
        usable = [j for j in range(y.shape[1]) if 0 < pos[j] < len(y)]
        if usable:
            plot_roc(y[:, usable], logits[:, usable], od / "roc.png", label_names=[names[j] for j in usable])
            plot_pr(y[:, usable], logits[:, usable], od / "pr.png", label_names=[names[j] for j in usable])
        result["out_dir"] = str(od)
    per = ", ".join(
        f"{n} {metrics.get(f'auroc/{n}', float('nan')):.3f}/{metrics.get(f'auprc/{n}', float('nan')):.3f}"
        for n in names
    )
    _log(
        f"[biodl] {len(ds)} windows of {data_desc}: mean AUROC {metrics['auroc']:.4f}, "
        f"AUPRC {metrics['auprc']:.4f}; per label AUROC/AUPRC: {per}",
        quiet,
    )
    return result


def _resize_intervals(bed: pd.DataFrame, window: int, lengths: dict[str, int], path) -> pd.DataFrame:
    """Centre a ``window``-bp window on every BED interval, moved inside the chromosome."""
    missing = sorted(set(bed["chrom"]) - set(lengths))
    if missing:
        line = int(bed.loc[bed["chrom"] == missing[0], "line"].iloc[0])
        raise BiodlInputError(
            f"chromosome {missing[0]!r} is not in the genome (it has: {', '.join(list(lengths)[:5])})",
            path=path,
            record=line,
        )
    clen = bed["chrom"].map(lengths).to_numpy(np.int64)
    short = np.flatnonzero(clen < window)
    if len(short):
        i = int(short[0])
        raise BiodlInputError(
            f"chromosome {bed['chrom'].iloc[i]!r} ({clen[i]} bp) is shorter than the model's "
            f"{window}-bp window",
            path=path,
            record=int(bed["line"].iloc[i]),
        )
    mid = (bed["start"].to_numpy(np.int64) + bed["end"].to_numpy(np.int64)) // 2
    start = np.clip(mid - window // 2, 0, clen - window)
    return pd.DataFrame(
        {
            "chrom": bed["chrom"].astype(str).to_numpy(),
            "start": start,
            "end": start + window,
        }
    )


def _genome_lengths(genome) -> dict[str, int]:
    from biodl.io.fasta import open_genome

    fa = open_genome(genome)
    try:
        return {k: len(fa[k]) for k in fa.keys()}
    finally:
        fa.close()


def _model_genome(meta: dict[str, Any], options: dict[str, Any]) -> str:
    genome = options.get("genome") or meta.get("genome")
    if not genome or not Path(genome).exists():
        raise BiodlInputError(
            f"the genome FASTA {genome!r} is not found; give it with --set genome=PATH"
            if genome
            else "no genome FASTA: give it with --set genome=PATH"
        )
    return str(genome)


def _annotation_for(meta: dict[str, Any], options: dict[str, Any], same_genome: bool) -> list[str]:
    ann = _annotation_list(options.get("annotation"))
    if ann:
        return ann
    if same_genome and meta.get("annotation"):
        missing = [a for a in meta["annotation"] if not Path(a).exists()]
        if not missing:
            return list(meta["annotation"])
    raise BiodlInputError(
        "evaluation needs the annotation that labels the windows: give it with --set annotation=PATH"
    )


def _features(annotation: list[str], labels: list[str]) -> pd.DataFrame:
    from biodl.data.genome_windows import EVIDENCE_SOURCES
    from biodl.io.gff import derive_introns, read_annotation

    feats = read_annotation(annotation)
    feats = feats[~feats["source"].isin(list(EVIDENCE_SOURCES))].reset_index(drop=True)
    if "intron" in labels and not (feats["type"] == "intron").any():
        feats = pd.concat([feats, derive_introns(feats)], ignore_index=True)
    return feats[feats["type"].isin(labels)]


def _window_labels(
    meta: dict[str, Any], options: dict[str, Any], windows: pd.DataFrame, same: bool, names: list[str]
) -> np.ndarray:
    """Labels of ``windows`` from the annotation (the training one for the training genome),
    with the model's centre and minimum overlap."""
    from biodl.data.genome_windows import label_windows

    feats = _features(_annotation_for(meta, options, same), names)
    return label_windows(
        windows, feats, names, center=int(meta["center"]), min_overlap=float(meta.get("min_overlap", 0.5))
    )


def _fasta_windows(
    meta: dict[str, Any], p: Path, options: dict[str, Any], same: bool
) -> tuple[pd.DataFrame, str]:
    """The model's windows tiling genome ``p``: for the training genome its ``--set split``
    (default ``test``), for another genome every window (``split=all``)."""
    from biodl.data.genome_windows import make_windows, split_windows

    window, center = int(meta["window"]), int(meta["center"])
    lengths = _genome_lengths(str(p))
    chroms = meta.get("chroms") if same else None
    windows = make_windows(lengths, chroms=chroms, window=window, step=int(meta["step"]), center=center)
    split = str(options.get("split", "test" if same else "all"))
    if split not in ("train", "valid", "test", "all"):
        raise BiodlInputError(f"--set split must be train, valid, test or all, got {split!r}")
    if split != "all":
        if not same:
            raise BiodlInputError(
                f"--set split={split} only applies to the training genome {meta['genome']}; use split=all"
            )
        hold = meta.get("holdout", {})
        parts = split_windows(
            windows,
            valid=_holdout(hold.get("valid"), "valid"),
            test=_holdout(hold.get("test"), "test"),
            placement=meta.get("placement", "end"),
            scope=meta.get("scope", "genome"),
            seed=int(meta.get("seed", 0)),
            chrom_lengths=lengths,
        ).to_numpy()
        windows = windows[parts == split].reset_index(drop=True)
    return windows, f"{p} ({split} windows)"


def evaluate(
    model_path: str | Path,
    data: str | Path,
    *,
    out_dir: str | Path | None = None,
    device: str = "cpu",
    options: dict[str, Any] | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """Per-label AUROC / AUPRC of a genome-window model.

    Parameters
    ----------
    model_path
        Run directory or ``model.pt`` trained by :func:`train`.
    data
        Either a genome FASTA, which is tiled with the model's window / step / centre
        (for the training genome, only its held-out ``test`` split is scored by default;
        ``--set split=valid|train|all`` changes that; for another genome, every window),
        or a BED file of intervals (a model-sized window is centred on each) cut from
        ``--set genome=PATH`` (default: the training genome).
    options
        ``annotation`` (default: the training annotation, for the training genome),
        ``genome`` (for BED input), ``split``, ``rc_average``.
    out_dir
        Where ``metrics.json``, ``predictions.tsv``, ``roc.png`` and ``pr.png`` go.

    Returns
    -------
    dict
        ``metrics`` (``auroc``, ``auprc``, ``auroc/<label>``, ``auprc/<label>``), ``n``
        (windows), ``task``, ``data``, ``positives`` per label.
    """
    from biodl.data.genome_windows import GenomeWindowDataset
    from biodl.io.bed import read_bed
    from biodl.train.engine import read_model_meta

    options = dict(options or {})
    meta = read_model_meta(model_path)
    names = list(meta.get("label_names") or meta["labels"])
    p = Path(data)
    if not p.exists():
        raise BiodlInputError("file not found", path=p)
    rc_average = _bool_option(options, "rc_average")
    window = int(meta["window"])
    train_genome = Path(meta["genome"])
    if _is_fasta(p):
        genome = str(p)
        same = p.resolve() == train_genome.resolve()
        windows, desc = _fasta_windows(meta, p, options, same)
    else:
        genome = _model_genome(meta, options)
        same = Path(genome).resolve() == train_genome.resolve()
        bed = read_bed(p)
        windows = _resize_intervals(bed, window, _genome_lengths(genome), p)
        desc = f"{p} (windows of {genome})"
    if len(windows) == 0:
        raise BiodlInputError("no windows to evaluate (genome shorter than the window?)", path=p)
    y = _window_labels(meta, options, windows, same, names)
    ds = GenomeWindowDataset(genome, windows, y, names, n_value=float(meta.get("n_value", 0.25)))
    return _evaluate_dataset(
        model_path, ds, out_dir=out_dir, device=device, rc_average=rc_average, data_desc=desc, quiet=quiet
    )


def predict(
    model_path: str | Path,
    data: str | Path,
    *,
    out: str | Path | None = None,
    device: str = "cpu",
    options: dict[str, Any] | None = None,
    quiet: bool = False,
) -> pd.DataFrame:
    """Per-label probabilities for genomic intervals.

    Parameters
    ----------
    model_path
        Run directory or ``model.pt`` trained by :func:`train`.
    data
        BED file of intervals (a model-sized window is centred on each, moved inside the
        chromosome if it would run past an end), cut from ``--set genome=PATH`` (default:
        the training genome); or a genome FASTA, tiled with the model's window and step.
    options
        ``genome``, ``rc_average`` (average both strands).
    out
        Output TSV (written atomically).

    Returns
    -------
    pandas.DataFrame
        One row per interval, in input order: ``chrom, start, end, name`` (BED input),
        ``window_start, window_end`` (the scored window) and ``prob_<label>`` per label;
        for FASTA input ``chrom, start, end, center_start, center_end, prob_<label>``.
    """
    from biodl.data.genome_windows import GenomeWindowDataset, make_windows
    from biodl.io._util import atomic_write_text
    from biodl.io.bed import read_bed
    from biodl.train.engine import load_model

    options = dict(options or {})
    model, meta = load_model(model_path, device=device)
    names = list(meta.get("label_names") or meta["labels"])
    window = int(meta["window"])
    p = Path(data)
    if not p.exists():
        raise BiodlInputError("file not found", path=p)
    if _is_fasta(p):
        genome = str(p)
        windows = make_windows(
            _genome_lengths(genome), window=window, step=int(meta["step"]), center=int(meta["center"])
        )
        if len(windows) == 0:
            raise BiodlInputError(f"no {window}-bp window fits in the genome", path=p)
        base = windows.copy()
    else:
        genome = _model_genome(meta, options)
        bed = read_bed(p)
        windows = _resize_intervals(bed, window, _genome_lengths(genome), p)
        base = pd.DataFrame(
            {
                "chrom": bed["chrom"].astype(str).to_numpy(),
                "start": bed["start"].to_numpy(),
                "end": bed["end"].to_numpy(),
                "name": bed["name"].to_numpy(),
                "window_start": windows["start"].to_numpy(),
                "window_end": windows["end"].to_numpy(),
            }
        )
    ds = GenomeWindowDataset(genome, windows, None, n_value=float(meta.get("n_value", 0.25)))
    logits, _ = window_logits(model, ds, device=device, rc_average=_bool_option(options, "rc_average"))
    df = _prediction_frame(base, logits, names)
    if out is not None:
        atomic_write_text(out, df.to_csv(sep="\t", index=False, float_format="%.6g"))
        _log(f"[biodl] wrote {len(df)} window predictions to {out}", quiet)
    return df


def report(
    run_dir: str | Path,
    data: str | Path | None = None,
    *,
    options: dict[str, Any] | None = None,
    max_windows: int = 500,
    quiet: bool = False,
) -> Path:
    """``RUN_DIR/report.html`` of a genome-window run: the run, held-out metrics and ROC/PR,
    learning curves, and filter logos / JASPAR matches / ISM on windows of the held-out
    ``test`` split that are positive for some label (at most ``max_windows``, evenly spaced;
    ``data`` = another genome FASTA, or ``--set split=...``, chooses other windows)."""
    from biodl.data.genome_windows import GenomeWindowDataset
    from biodl.report.run import write_run_report
    from biodl.train.engine import read_model_meta

    run = Path(run_dir)
    run = run if run.is_dir() else run.parent
    meta = read_model_meta(run / "model.pt")
    options = dict(options or {})
    names = list(meta.get("label_names") or meta["labels"])
    genome = Path(data or meta["genome"])
    if not genome.exists():
        raise BiodlInputError("genome not found (give it: biodl report RUN --data GENOME)", path=genome)
    same = genome.resolve() == Path(meta["genome"]).resolve()
    windows, desc = _fasta_windows(meta, genome, options, same)
    y = _window_labels(meta, options, windows, same, names)
    pos = np.flatnonzero(np.nansum(y, axis=1) > 0)
    if len(pos) == 0:
        pos = np.arange(len(windows))
    pick = pos[np.unique(np.linspace(0, len(pos) - 1, min(max_windows, len(pos))).astype(int))]
    ds = GenomeWindowDataset(
        str(genome), windows.iloc[pick].reset_index(drop=True), y[pick], names,
        n_value=float(meta.get("n_value", 0.25)),
    )  # fmt: skip
    X = torch.stack([ds[i][0] for i in range(len(ds))]) if len(ds) else None
    path = write_run_report(
        run, sequences=(X, f"{len(ds)} labelled windows of {desc}") if X is not None else None
    )
    _log(f"[biodl] report: {path}", quiet)
    return path
