"""The sections every run report starts with (``biodl report RUN_DIR``, see
:func:`biodl.pipeline.report`): the run table from its :class:`~biodl.train.checkpoint.RunMeta`,
the held-out test metrics and plots, and the learning curves; plus :func:`plot_ism`, the ISM
figure of the sequence kinds. The kinds add their own sections after these.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from biodl.errors import BiodlInputError
from biodl.kinds.base import read_results
from biodl.train.checkpoint import read_run_json

__all__ = ["REPORT_OUTPUTS", "check_run_outputs", "learning_curves_section", "plot_ism", "run_sections"]

#: What ``biodl report`` may write into a run directory: regular expressions of whole paths
#: relative to it (exact names: a retraining removes what they match, see
#: :func:`biodl.pipeline._drop_stale_outputs`, so a user's ``my_plot.png`` must not match).
REPORT_OUTPUTS = (
    r"report\.html",
    r"learning_curves(_[a-z]+\d*)?\.png",
    # sequence kinds (and `biodl motifs`)
    r"motifs\.tsv",
    r"filters\.meme",
    r"filters\.png",
    r"ism_\d+\.png",
    # the other kinds' sections
    r"pred_vs_true\.png",
    r"confusion(_[a-z]+)?\.png",
    r"example_matrix\.png",
    r"feature_weights\.png",
    r"path\.png",
    r"gene_weights\.png",
    r"abundance\.png",
    r"methylation_test\.png",
    r"substructures/.+",
    r"interpret/.+",
)


def report_files(run: Path) -> list[Path]:
    """The files in ``run`` named as ``biodl report`` names its outputs (:data:`REPORT_OUTPUTS`):
    the folder's own entries and the files of the report's folders, never a whole user tree."""
    import re

    found = [q for q in run.iterdir() if q.is_file()]
    found += [q for d in ("substructures", "interpret") for q in (run / d).rglob("*") if q.is_file()]
    named = [(q, q.relative_to(run).as_posix()) for q in sorted(found)]
    return [q for q, rel in named if any(re.fullmatch(p, rel) for p in REPORT_OUTPUTS)]


#: How a report names the run's recorded input options.
_INPUT_NAMES = {
    "data": "training file",
    "train_file": "training file",
    "test_file": "test file",
    "valid_file": "validation file",
    "negatives": "negatives file",
}


def _recorded_inputs(run: Path, meta) -> list[tuple[str, Path]]:
    """``(option, resolved path)`` of every existing file a run records as its input (the
    training, validation and test files, ...: its options, in run.json and in the model's meta)."""
    from biodl.train import read_run_json

    metas = [meta]
    if (run / "run.json").is_file():
        try:
            metas.append(read_run_json(run))
        except BiodlInputError:
            pass
    found: dict[Path, str] = {}
    for m in metas:
        items = list((getattr(m, "options", None) or {}).items())
        items += [(k, v) for k, v in (getattr(m, "data", None) or {}).items() if k.endswith("_file")]
        for key, value in items:
            for v in value if isinstance(value, (list, tuple)) else [value]:
                if not isinstance(v, (str, os.PathLike)) or not str(v):
                    continue
                try:
                    q = Path(v).resolve()
                    if q.is_file():
                        found.setdefault(q, key)
                except (OSError, ValueError):
                    continue
    return [(k, q) for q, k in found.items()]


def check_run_outputs(run: Path, meta, outputs: Iterable[str | Path], command: str, hint: str) -> None:
    """Refuse, before anything is written, when a file ``biodl <command>`` writes is one of the
    run's recorded input files (a training or test file kept inside the run directory under a
    name a report writes). ``outputs``: regular expressions of whole paths relative to ``run``,
    or paths. ``hint``: what to do instead."""
    import re

    root = Path(run).resolve()
    pats, paths = [], set()
    for o in outputs:
        if isinstance(o, Path):
            paths.add(o.resolve())
        else:
            pats.append(o)
    for key, q in _recorded_inputs(Path(run), meta):
        rel = q.relative_to(root).as_posix() if q.is_relative_to(root) else None
        if q in paths or (rel is not None and any(re.fullmatch(pat, rel) for pat in pats)):
            what = _INPUT_NAMES.get(key, f"{key} file")
            raise BiodlInputError(
                f"is an input of this run (its {what}), and `biodl {command}` writes a file of this name; "
                f"refusing to write over it: {hint}",
                path=q,
            )


def _logo_frame(values: np.ndarray) -> pd.DataFrame:
    df = pd.DataFrame(np.asarray(values, dtype=float).T, columns=list("ACGT"))
    df.index = np.arange(1, len(df) + 1)
    return df


def plot_ism(
    effects: np.ndarray,
    X: np.ndarray,
    path: str | Path,
    *,
    attributions: np.ndarray | None = None,
    attribution_name: str = "integrated gradients",
    title: str = "",
    dpi: int = 100,
) -> Path:
    """ISM heat map of one sequence, with ISM and attribution logos underneath.

    Parameters
    ----------
    effects
        ``(L, 4)`` output change of each substitution (alt minus reference; 0 at the
        reference base).
    X
        ``(4, L)`` one-hot of the sequence.
    path
        Output PNG.
    attributions
        ``(4, L)`` attributions drawn as a third panel (e.g. integrated gradients x input).
    title
        Figure title.

    Returns
    -------
    Path
        The PNG written (atomically).
    """

    import logomaker
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from biodl.report.plots import _save_figure

    E = np.asarray(effects, dtype=float).T  # (4, L)
    L = E.shape[1]
    rows = 3 if attributions is not None else 2
    fig = Figure(figsize=(min(max(8.0, L * 0.09), 18.0), 1.6 + 1.5 * rows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 1, sharex=True, height_ratios=[1.2] + [1.0] * (rows - 1))
    lim = float(np.abs(E).max()) or 1.0
    im = axes[0].imshow(
        E,
        aspect="auto",
        cmap="RdBu_r",
        vmin=-lim,
        vmax=lim,
        extent=(0.5, L + 0.5, 3.5, -0.5),
        interpolation="nearest",
    )
    ref = np.asarray(X).argmax(0)
    known = np.asarray(X).max(0) == 1
    axes[0].scatter(np.arange(1, L + 1)[known], ref[known], s=3, c="k", marker=".", linewidths=0)
    axes[0].set_yticks(range(4), list("ACGT"))
    axes[0].set_ylabel("substitution")
    axes[0].set_title("ISM: output change per substitution (dots: reference base)", fontsize=9)
    fig.colorbar(im, ax=axes[0], fraction=0.02, pad=0.01)
    centred = E - E.mean(0, keepdims=True)
    panels = [(axes[1], centred * np.asarray(X), "ISM (mean-centred, observed base)")]
    if attributions is not None:
        panels.append((axes[2], np.asarray(attributions, dtype=float), attribution_name))
    for ax, vals, name in panels:
        logomaker.Logo(_logo_frame(vals), ax=ax, color_scheme="classic", font_name="DejaVu Sans")
        ax.axhline(0, color="0.6", lw=0.5)
        ax.set_ylabel(name.split(" (")[0], fontsize=8)
        ax.set_title(name, fontsize=9)
    axes[-1].set_xlabel("position")
    if title:
        fig.suptitle(title, fontsize=10)
    return _save_figure(fig, path, dpi)


def learning_curves_section(run: Path, kept_epoch: int | None = None) -> list:
    """``[Section]`` with ``run/learning_curves.png`` drawn from ``run/history.csv``, or ``[]``
    when the run has no per-epoch history; ``kept_epoch`` (0-based, the run's ``best_epoch``)
    is marked on the curves."""
    from biodl.report import Section, plot_learning_curves

    path = run / "history.csv"
    if not path.exists():
        return []
    hist = _read_history(path)
    if hist is None or not len(hist) or "epoch" not in hist:
        return []
    image = plot_learning_curves(hist, run / "learning_curves.png", kept_epoch=kept_epoch)
    return [Section("Learning curves", images=[image])]


def _read_history(path: Path) -> pd.DataFrame | None:
    """A run's ``history.csv``, or ``None`` (with a warning) when it is empty or unreadable as
    CSV (a truncated copy, a full disk): the learning curves are then left out of the report."""
    from biodl.io._util import note

    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        problem = "empty file"
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        problem = f"not readable as CSV ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
    note(f"[biodl] warning: {path}: {problem}; the learning curves are left out of the report")
    return None


def _learning_curve_sections(run: Path, kept_epoch: int | None = None) -> list:
    """Learning curves of the run (``history.csv``; ``kept_epoch`` marked), or of each stage a
    run trained in turn (``layer1/history.csv``, ... for stacked ADAGE)."""
    secs = learning_curves_section(run, kept_epoch)
    if secs:
        return secs
    from biodl.report import Section, plot_learning_curves

    images = []
    for sub in sorted(p for p in run.iterdir() if p.is_dir() and (p / "history.csv").exists()):
        hist = _read_history(sub / "history.csv")
        if hist is not None and len(hist) and "epoch" in hist:
            images.append((plot_learning_curves(hist, run / f"learning_curves_{sub.name}.png"), sub.name))
    return [Section("Learning curves", images=images)] if images else []


def _metric_cells(metrics: dict) -> dict:
    """The numeric metrics of a metrics dict for a report table; an undefined one (``null`` in
    the JSON, NaN: a test set of one class has no AUROC) is shown as 'undefined', not left out."""
    out = {}
    for k, v in metrics.items():
        if v is None or (isinstance(v, float) and v != v):
            out[k] = "undefined"
        elif isinstance(v, (int, float)):
            out[k] = v
    return out


def _per_label(cells: dict, label_names) -> tuple[dict, pd.DataFrame | None]:
    """``(means, per-label table)``: the ``metric/<label>`` cells of a model with several labels
    as a label x metric table (40 labels x 7 metrics made a list of 287 rows), the rest as they
    are; ``(cells, None)`` when there are none."""
    labels = [str(n) for n in (label_names or [])]
    per = {k: v for k, v in cells.items() if "/" in k and k.split("/", 1)[1] in labels}
    if len(labels) < 2 or not per:
        return cells, None
    metrics = list(dict.fromkeys(k.split("/", 1)[0] for k in per))
    table = pd.DataFrame({m: {lab: per.get(f"{m}/{lab}") for lab in labels} for m in metrics})
    return {k: v for k, v in cells.items() if k not in per}, table.rename_axis("label")


def run_sections(run: Path, meta, recipe, kind) -> list:
    """The run table, the held-out test set (metrics and plots of ``run/test``) and the
    learning curves. First (before the report writes anything) a run whose recorded inputs
    lie in the run directory under a name the report writes is refused
    (:func:`check_run_outputs`)."""
    from biodl.report import Section

    check_run_outputs(
        run,
        meta,
        REPORT_OUTPUTS,
        "report",
        "move it out of the run directory first (biodl report has no --out; give a moved test file "
        "with --test)",
    )

    overview: dict = {
        "system": f"{recipe.title} ({recipe.name})",
        "data kind": kind.title,
        "task": meta.task,
    }
    overview.update(kind.describe_data(meta))
    splits = dict(meta.splits)
    if splits.get("n_test") is None:  # counted after the model was saved: in run.json only
        with contextlib.suppress(BiodlInputError):
            splits["n_test"] = read_run_json(run).splits.get("n_test")
    for k in ("n_train", "n_valid", "n_test"):
        if splits.get(k) is not None:
            overview[k.replace("n_", "") + " items"] = splits[k]
    if meta.best_epoch is not None:  # counted from 1, as the log's epochs (run.json: from 0)
        overview["best epoch"] = f"{int(meta.best_epoch) + 1} of {meta.epochs_run}"
    else:
        overview["epochs run"] = meta.epochs_run
    overview.update(_metric_cells(meta.val_metrics))
    model_opts = {
        k: v for k, v in meta.model_kwargs.items() if k not in recipe.derived and not k.startswith("target_")
    }
    sections = [
        Section(
            "Run",
            text=[f"Run directory: {run}", f"Model options: {json.dumps(model_opts, default=str)}"],
            table=overview,
        )
    ]
    test_dir = run / "test"
    tm = read_results(test_dir)
    if tm is not None:
        imgs = [test_dir / f for f in kind.evaluation_sections(meta) if (test_dir / f).exists()]
        cells, per_label = _per_label(_metric_cells(tm["metrics"]), meta.label_names)
        sections.append(
            Section(
                "Held-out test set",
                text=f"{tm.get('n', '?')} items from {tm.get('data')}."
                + (
                    " Per label: the next table; above, the means over the labels."
                    if per_label is not None
                    else ""
                ),
                table=cells,
                images=imgs,
            )
        )
        if per_label is not None:
            sections.append(Section("Held-out test set, per label", table=per_label))
    else:  # said, so that a short page is not taken for a broken one
        tested = (meta.options or {}).get("test_file") or splits.get("n_test")
        if (test_dir / "metrics.json").exists():
            text = f"Not shown: {test_dir / 'metrics.json'} cannot be read (cut short or edited)."
        elif tested:  # the run was tested, and its test/ folder is gone
            given = (meta.options or {}).get("test_file")
            what = f"test file is {given}" if given else f"test split has {splits.get('n_test')} items"
            text = (
                f"This run's {what} (run.json), but {test_dir} is missing (its evaluation failed, or the "
                "folder was removed), so no test metrics here (nor the sections drawn from test items)."
                + (
                    f" biodl evaluate {run} {given} --out DIR scores that file again."
                    if given
                    else " (The held-out split is not kept as a file.)"
                )
            )
        else:
            text = (
                "None in this run, so no test metrics here (nor the sections drawn from test items)."
                " Training with --test FILE makes them part of the run and of this page; "
                f"biodl evaluate {run} FILE --out DIR scores a labelled file on its own."
            )
        sections.append(Section("Held-out test set", text=text))
    kept = None if meta.best_epoch is None else int(meta.best_epoch)  # the epoch whose weights were kept
    sections += _learning_curve_sections(run, kept)
    return sections
