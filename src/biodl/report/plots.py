"""Static figures for reports: ROC / precision-recall curves, learning curves, sequence logos.

Every plotting function renders with the Agg backend on a stand-alone
:class:`matplotlib.figure.Figure` (never registered with :mod:`matplotlib.pyplot`, so nothing
is left open and the process-wide backend is not touched), writes a PNG at ``dpi`` (100 by
default) atomically -- to a temporary file in the destination directory, then
:func:`os.replace` -- and returns the destination path. A reader therefore never sees a
half-written PNG, and an error leaves neither a partial file nor a stray temporary file.

Conventions
-----------
* Labels ``y_true`` are binary (0/1 or bool) and may contain NaN for "unknown"; scores
  ``y_score`` are any real numbers (probabilities or logits). Both are ``(n,)`` for one task
  or ``(n, t)`` for ``t`` tasks (multi-label, e.g. DeepSEA's 919 chromatin profiles).
* Position probability matrices (PPMs / "PWMs") are ``(width, 4)`` with columns ``A, C, G,
  T`` and rows summing to 1, the transpose of the ``(4, length)`` one-hot layout of
  :mod:`biodl.encode`.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from biodl.errors import BiodlInputError

__all__ = [
    "DEFAULT_DPI",
    "MAX_CURVES",
    "plot_learning_curves",
    "plot_logos",
    "plot_pr",
    "plot_roc",
    "plot_scatter",
    "pwm_information_content",
    "write_bytes_atomic",
]

DEFAULT_DPI = 100
"""Resolution of the PNGs written by this module."""

MAX_CURVES = 12
"""Default maximum number of per-label curves drawn on one ROC / PR plot."""

_ALPHABET = ("A", "C", "G", "T")
# Columns of the learning-curve history that are bookkeeping, not losses or metrics.
_NOT_METRICS = {"epoch", "step", "global_step", "lr", "learning_rate", "time", "wall_time", "seconds"}


# --------------------------------------------------------------------------------------------
# Atomic output
# --------------------------------------------------------------------------------------------
def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically.

    The bytes go to a uniquely named hidden temporary file in the destination directory
    (created if missing), are flushed and fsync'ed, and the file is then renamed over
    ``path`` with :func:`os.replace`, which is atomic on POSIX and Windows when both names
    are on the same file system. On any error the temporary file is removed and an existing
    ``path`` is left untouched. The new file gets the usual ``0o666 & ~umask`` permissions.

    Parameters
    ----------
    path
        Destination file.
    data
        The complete file content.

    Returns
    -------
    Path
        ``path`` as a :class:`pathlib.Path`.
    """
    from biodl.io._util import atomic_write_bytes

    return atomic_write_bytes(path, data)


#: Classes a confusion table of a report shows at most (the most frequent; the rest pooled).
CONFUSION_CLASSES = 20


def bounded_confusion(
    cm: pd.DataFrame, k: int = CONFUSION_CLASSES, keep: Sequence[str] = ()
) -> tuple[pd.DataFrame, str]:
    """``cm`` (rows true, columns predicted) cut to its ``k`` most frequent classes (true plus
    predicted counts; ``keep`` always, e.g. ``unclassified``), the others pooled into one
    ``other classes`` row and column, in the original order; and a sentence saying so (empty
    when nothing was cut). A 1,000-class table was a 22 MB report page."""
    labels = list(dict.fromkeys([*map(str, cm.index), *map(str, cm.columns)]))
    if len(labels) <= k + 1:
        return cm, ""
    m = cm.copy()
    m.index, m.columns = [str(c) for c in m.index], [str(c) for c in m.columns]
    score = m.sum(axis=1).reindex(labels, fill_value=0) + m.sum(axis=0).reindex(labels, fill_value=0)
    chosen = set(score.sort_values(ascending=False, kind="stable").index[:k]) | {str(c) for c in keep}
    other = "other classes"
    rows = [c if c in chosen else other for c in m.index]
    cols = [c if c in chosen else other for c in m.columns]
    # (keys as arrays: a list of names would be read as column names)
    out = m.groupby(np.asarray(rows), sort=False).sum().T.groupby(np.asarray(cols), sort=False).sum().T
    order_r = [c for c in dict.fromkeys(rows) if c != other] + ([other] if other in rows else [])
    order_c = [c for c in dict.fromkeys(cols) if c != other] + ([other] if other in cols else [])
    out = out.reindex(index=order_r, columns=order_c, fill_value=0)
    out.index.name, out.columns.name = cm.index.name, cm.columns.name
    n_other = len(labels) - len([c for c in labels if c in chosen])
    note = (
        f" The {len(labels) - n_other} most frequent of {len(labels)} classes are shown; the other {n_other} "
        f"are pooled as '{other}' (every item is in test/predictions.tsv)."
    )
    return out, note


def _new_figure(width: float, height: float) -> Figure:
    """A stand-alone figure with an Agg canvas (not tracked by pyplot)."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _literal_text(fig: Figure) -> None:
    """Draw the figure's texts as written: a label, class or run name with ``$`` signs (``Bound
    $a^b$``) is not matplotlib mathtext (rendered as formulas, or a parse error that stopped
    training). Tick labels a formatter makes (``$\\mathdefault{10^{3}}$``) keep their maths."""
    from matplotlib.text import Text

    for t in fig.findobj(Text):
        s = t.get_text()
        if "$" in s and "\\mathdefault" not in s:
            t.set_parse_math(False)


def _save_figure(fig: Figure, path: str | os.PathLike, dpi: int = DEFAULT_DPI) -> Path:
    """Render ``fig`` to PNG bytes, write them atomically to ``path`` and release the figure.
    Characters the plot font lacks (CJK, emoji in label names) are one note per process, not a
    matplotlib warning per glyph per figure."""
    import warnings

    try:
        _literal_text(fig)
        buf = io.BytesIO()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fig.savefig(buf, format="png", dpi=dpi, facecolor="white", bbox_inches="tight", pad_inches=0.08)
    finally:
        fig.clear()  # drop artists now rather than whenever the figure is garbage collected
    for w in caught:
        if "missing from font" in str(w.message):
            from biodl.train.metrics import note_once

            note_once(
                "[biodl] warning: some names hold characters the plot font lacks; the figures draw them "
                "as boxes (the report's tables show them)"
            )
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return write_bytes_atomic(path, buf.getvalue())


def _short_names(names: Sequence[str], width: int = 36) -> list[str]:
    """Legend names of ``names`` (:func:`_short`), told apart: when shortening makes two alike
    (ENCODE names sharing a long prefix), the prefix all share is dropped first, and any still
    alike get their number."""
    names = [str(n) for n in names]
    out = [_short(n, width) for n in names]
    if len(set(out)) < len(out) and len(names) > 1:
        k = len(os.path.commonprefix(names))
        out = [_short(("…" + n[k:]) if k > 3 and len(n) > k else n, width) for n in names]
    from collections import Counter

    many, seen = Counter(out), Counter()
    for j, n in enumerate(out):
        if many[n] > 1:
            seen[n] += 1
            out[j] = f"{n} ({seen[n]})"
    return out


def _short(name: str, width: int = 36) -> str:
    """``name`` for a legend: at most ``width`` characters, its middle replaced by an ellipsis
    (ENCODE-style names differ at both ends; the tables show them whole)."""
    name = str(name)
    if len(name) <= width:
        return name
    head = (width - 1) // 2
    return name[:head] + "…" + name[len(name) - (width - 1 - head) :]


# --------------------------------------------------------------------------------------------
# ROC / precision-recall
# --------------------------------------------------------------------------------------------
def _as_label_matrices(
    y_true: np.ndarray | Sequence, y_score: np.ndarray | Sequence, label_names: Sequence[str] | None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Validate labels and scores, return both as float ``(n, t)`` and ``t`` label names."""
    yt = np.asarray(y_true, dtype=float)
    ys = np.asarray(y_score, dtype=float)
    if yt.shape != ys.shape:
        raise BiodlInputError(f"y_true has shape {yt.shape} but y_score has shape {ys.shape}")
    if yt.ndim == 1:
        yt, ys = yt[:, None], ys[:, None]
    elif yt.ndim != 2:
        raise BiodlInputError(f"y_true and y_score must be (n,) or (n, t), got shape {yt.shape}")
    known = yt[~np.isnan(yt)]
    if known.size and not np.all((known == 0) | (known == 1)):
        bad = known[(known != 0) & (known != 1)][0]
        raise BiodlInputError(f"y_true must be binary (0/1, NaN for unknown), found value {bad:g}")
    t = yt.shape[1]
    if label_names is None:
        names = [""] if t == 1 else [f"label {j}" for j in range(t)]
    else:
        names = [str(s) for s in label_names]
        if len(names) != t:
            raise BiodlInputError(f"{len(names)} label_names given for {t} label column(s)")
    return yt, ys, names


def _usable_columns(yt: np.ndarray, ys: np.ndarray) -> tuple[list[tuple[int, np.ndarray, np.ndarray]], int]:
    """Per label: the rows with a known label and finite score; skip labels with one class.

    Returns
    -------
    columns
        ``(j, y_true_j, y_score_j)`` for every label ``j`` with both classes present.
    n_skipped
        Number of labels skipped because they have no positives or no negatives.
    """
    columns = []
    skipped = 0
    for j in range(yt.shape[1]):
        keep = ~np.isnan(yt[:, j]) & np.isfinite(ys[:, j])
        y, s = yt[keep, j], ys[keep, j]
        if y.size == 0 or y.min() == y.max():
            skipped += 1
            continue
        columns.append((j, y, s))
    return columns, skipped


def _colors(k: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]  # (tab20's neighbours are two shades of one hue)
    return [cmap(i % cmap.N) for i in range(k)]


#: Line styles cycled with the colours: curves are told apart without colour too (colour-vision
#: deficiency, grey print); (colour, style) pairs repeat only after 20 curves.
_LINE_STYLES = ("-", "--", "-.", ":")


def _styles(k: int) -> list[tuple]:
    """``(colour, line style)`` of ``k`` curves."""
    return [(c, _LINE_STYLES[i % len(_LINE_STYLES)]) for i, c in enumerate(_colors(k))]


def _curve_title(
    kind: str, title: str | None, n_total: int, n_drawn: int, n_skipped: int, mean: float
) -> str:
    if title is not None:
        return title
    if n_total == 1:
        return kind
    parts = [
        f"{kind}: mean {'AUC' if kind == 'ROC' else 'AUPRC'} = {mean:.3f} over {n_total - n_skipped} labels"
    ]
    extras = []
    if n_drawn < n_total - n_skipped:
        extras.append(f"{n_drawn} drawn")
    if n_skipped:
        extras.append(f"{n_skipped} skipped: one class only")
    if extras:
        parts.append("(" + "; ".join(extras) + ")")
    return "\n".join(parts)


def _finish_curve_axes(ax: Axes, fig: Figure, n_curves: int) -> None:
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    ax.grid(True, alpha=0.3)
    if n_curves > 4:
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize="small", frameon=False)
        fig.set_size_inches(8.6, 5.2)  # room for legend names of up to 36 characters (_short)
    else:
        ax.legend(loc="best", fontsize="small")  # a PR curve can run along the bottom right


def plot_roc(
    y_true: np.ndarray | Sequence,
    y_score: np.ndarray | Sequence,
    path: str | os.PathLike,
    label_names: Sequence[str] | None = None,
    *,
    title: str | None = None,
    max_curves: int = MAX_CURVES,
    dpi: int = DEFAULT_DPI,
) -> Path:
    """Plot receiver operating characteristic curve(s) with the AUC of each in the legend.

    Parameters
    ----------
    y_true
        Binary labels, shape ``(n,)`` or ``(n, t)``; NaN marks an unknown label, and such
        entries (and entries with a non-finite score) are ignored for that label only.
    y_score
        Scores, same shape as ``y_true``; higher means more likely positive.
    path
        Output PNG file.
    label_names
        ``t`` names for the legend; default ``"label 0"``, ``"label 1"``, ...
    title
        Figure title; default ``"ROC"`` or, for several labels, the mean AUC over all
        usable labels and how many curves were drawn or skipped.
    max_curves
        Draw at most this many curves (the first usable labels in column order). The mean
        AUC in the default title is over all usable labels.
    dpi
        PNG resolution.

    Returns
    -------
    Path
        The written PNG.

    Notes
    -----
    Labels whose known entries are all of one class have no ROC curve and are skipped. The
    AUC is the trapezoidal area under :func:`sklearn.metrics.roc_curve`, i.e. equal to
    :func:`sklearn.metrics.roc_auc_score`. The legend reads ``"<name> (AUC = 0.873)"``.
    """
    from sklearn.metrics import auc, roc_curve

    yt, ys, names = _as_label_matrices(y_true, y_score, label_names)
    columns, skipped = _usable_columns(yt, ys)
    if not columns:
        raise BiodlInputError("no label has both positive and negative examples; cannot draw a ROC curve")
    aucs = []
    curves = []
    for j, y, s in columns:
        fpr, tpr, _ = roc_curve(y, s)
        aucs.append(float(auc(fpr, tpr)))
        curves.append((j, fpr, tpr))

    fig = _new_figure(5.2, 5.2)
    ax = fig.add_subplot()
    drawn = curves[: max(int(max_curves), 1)]
    short = _short_names(names)
    for (color, ls), (j, fpr, tpr), a in zip(_styles(len(drawn)), drawn, aucs, strict=False):
        label = f"{short[j]} (AUC = {a:.3f})" if names[j] else f"AUC = {a:.3f}"
        ax.plot(fpr, tpr, color=color, ls=ls, lw=1.6, label=label)
    ax.plot([0, 1], [0, 1], ls=(0, (1, 3)), color="0.6", lw=1, label="chance (AUC = 0.5)")
    ax.set_xlabel("False positive rate")
    ax.set_ylabel("True positive rate")
    ax.set_title(_curve_title("ROC", title, yt.shape[1], len(drawn), skipped, float(np.mean(aucs))))
    _finish_curve_axes(ax, fig, len(drawn) + 1)
    return _save_figure(fig, path, dpi)


def plot_pr(
    y_true: np.ndarray | Sequence,
    y_score: np.ndarray | Sequence,
    path: str | os.PathLike,
    label_names: Sequence[str] | None = None,
    *,
    title: str | None = None,
    max_curves: int = MAX_CURVES,
    dpi: int = DEFAULT_DPI,
) -> Path:
    """Plot precision-recall curve(s) with the AUPRC of each in the legend.

    Parameters
    ----------
    y_true
        Binary labels, shape ``(n,)`` or ``(n, t)``; NaN marks an unknown label, and such
        entries (and entries with a non-finite score) are ignored for that label only.
    y_score
        Scores, same shape as ``y_true``.
    path
        Output PNG file.
    label_names
        ``t`` names for the legend; default ``"label 0"``, ``"label 1"``, ...
    title
        Figure title; default ``"PR"`` or, for several labels, the mean AUPRC.
    max_curves
        Draw at most this many curves (the first usable labels in column order).
    dpi
        PNG resolution.

    Returns
    -------
    Path
        The written PNG.

    Notes
    -----
    AUPRC is the average precision, :func:`sklearn.metrics.average_precision_score` (the
    step-wise area, without the optimistic linear interpolation of the trapezoidal rule).
    Curves are drawn as steps to match. The chance level of a label is its positive rate;
    for a single label it is drawn as a dashed line.
    """
    from sklearn.metrics import average_precision_score, precision_recall_curve

    yt, ys, names = _as_label_matrices(y_true, y_score, label_names)
    columns, skipped = _usable_columns(yt, ys)
    if not columns:
        raise BiodlInputError("no label has both positive and negative examples; cannot draw a PR curve")
    aps = []
    curves = []
    for j, y, s in columns:
        precision, recall, _ = precision_recall_curve(y, s)
        aps.append(float(average_precision_score(y, s)))
        curves.append((j, recall, precision, float(y.mean())))

    fig = _new_figure(5.2, 5.2)
    ax = fig.add_subplot()
    drawn = curves[: max(int(max_curves), 1)]
    short = _short_names(names)
    for (color, ls), (j, recall, precision, _), ap in zip(_styles(len(drawn)), drawn, aps, strict=False):
        label = f"{short[j]} (AUPRC = {ap:.3f})" if names[j] else f"AUPRC = {ap:.3f}"
        ax.step(recall, precision, where="post", color=color, ls=ls, lw=1.6, label=label)
    n_legend = len(drawn)
    if len(drawn) == 1:
        prevalence = drawn[0][3]
        ax.axhline(
            prevalence, ls=(0, (1, 3)), color="0.6", lw=1, label=f"chance (positive rate = {prevalence:.3f})"
        )
        n_legend += 1
    ax.set_xlabel("Recall")
    ax.set_ylabel("Precision")
    ax.set_title(_curve_title("PR", title, yt.shape[1], len(drawn), skipped, float(np.mean(aps))))
    _finish_curve_axes(ax, fig, n_legend)
    return _save_figure(fig, path, dpi)


# --------------------------------------------------------------------------------------------
# Learning curves
# --------------------------------------------------------------------------------------------
def plot_scatter(
    y_true: np.ndarray | Sequence,
    y_pred: np.ndarray | Sequence,
    path: str | os.PathLike,
    *,
    label_names: Sequence[str] | None = None,
    title: str | None = None,
    dpi: int = DEFAULT_DPI,
) -> Path:
    """Predicted against observed values of a regression, one panel per target (at most
    :data:`MAX_CURVES`), with the identity line and MSE / Pearson r in each panel title.

    ``y_true`` and ``y_pred`` are ``(n,)`` or ``(n, n_targets)``; NaN targets are skipped.
    Raises ``ValueError`` when the shapes differ or no target has two observed values.
    """
    yt = np.asarray(y_true, dtype=float)
    yp = np.asarray(y_pred, dtype=float)
    yt = yt[:, None] if yt.ndim == 1 else yt
    yp = yp[:, None] if yp.ndim == 1 else yp
    if yt.shape != yp.shape:
        raise ValueError(f"y_true {yt.shape} and y_pred {yp.shape} differ in shape")
    cols = [j for j in range(yt.shape[1]) if (~np.isnan(yt[:, j])).sum() >= 2][:MAX_CURVES]
    if not cols:
        raise ValueError("no target has two observed values to plot")
    names = list(label_names) if label_names is not None else [f"target {j}" for j in range(yt.shape[1])]
    k = len(cols)
    fig = _new_figure(3.6 * k, 3.6)
    axes = fig.subplots(1, k, squeeze=False)[0]
    for ax, j in zip(axes, cols, strict=True):
        m = ~np.isnan(yt[:, j]) & ~np.isnan(yp[:, j])
        t, q = yt[m, j], yp[m, j]
        ax.scatter(t, q, s=10, alpha=0.6, linewidths=0)
        lo, hi = float(min(t.min(), q.min())), float(max(t.max(), q.max()))
        ax.plot([lo, hi], [lo, hi], color="0.4", lw=1, ls="--")
        mse = float(np.mean((t - q) ** 2))
        r = float(np.corrcoef(t, q)[0, 1]) if len(t) > 2 and t.std() > 0 and q.std() > 0 else float("nan")
        ax.set_title(f"{_short(names[j])}\nMSE {mse:.3g}, r {r:.3f}, n {len(t)}", fontsize=9)
        ax.set_xlabel("observed")
        ax.set_ylabel("predicted")
    if title:
        fig.suptitle(title)
    return _save_figure(fig, path, dpi)


def _spans_decades(values: pd.DataFrame, ratio: float = 20.0) -> bool:
    """Whether curves of positive values lie ``ratio`` times or more apart (their medians), so
    that on a linear axis the smaller ones would be flat lines at zero."""
    med = values.median().dropna()
    v = values.to_numpy(dtype=float)
    v = v[np.isfinite(v)]
    return len(med) > 1 and v.size > 0 and bool((v > 0).all()) and float(med.max() / med.min()) >= ratio


def plot_learning_curves(
    history: pd.DataFrame,
    path: str | os.PathLike,
    *,
    title: str | None = None,
    dpi: int = DEFAULT_DPI,
    kept_epoch: int | None = None,
) -> Path:
    """Plot losses and validation metrics per epoch, in two side-by-side panels.

    Parameters
    ----------
    history
        One row per epoch (or several rows per epoch, as Lightning's ``CSVLogger`` writes,
        which are averaged per epoch ignoring NaN). Must have an ``epoch`` column. Numeric
        columns whose name ends in ``loss`` (``train_loss``, ``val_loss``, ...) go to the
        left panel; all other numeric columns (``val_auroc``, ``val_auprc``, ...) to the right
        one, except bookkeeping columns (``step``, ``lr``, ``time``, ...). NaN entries are
        skipped, so a column logged only every few epochs is drawn through the epochs it has.
    path
        Output PNG file.
    title
        Figure title, optional.
    dpi
        PNG resolution.

    Returns
    -------
    Path
        The written PNG.

    Notes
    -----
    The epoch with the lowest ``val_loss`` (if that column exists) is marked with a dotted
    vertical line on both panels. An empty panel says that nothing was recorded for it.
    """
    if not isinstance(history, pd.DataFrame):
        raise BiodlInputError(f"history must be a pandas DataFrame, got {type(history).__name__}")
    if "epoch" not in history.columns:
        raise BiodlInputError(
            f"history has no 'epoch' column (columns: {', '.join(map(str, history.columns))})"
        )
    numeric = history.select_dtypes(include="number").copy()
    numeric["epoch"] = pd.to_numeric(history["epoch"], errors="coerce")
    numeric = numeric.dropna(subset=["epoch"])
    per_epoch = numeric.groupby("epoch", sort=True).mean()  # mean skips NaN
    columns = [c for c in per_epoch.columns if per_epoch[c].notna().any()]
    losses = [c for c in columns if str(c).lower().endswith("loss")]
    metrics = [c for c in columns if c not in losses and str(c).lower() not in _NOT_METRICS]
    undefined = [  # recorded, NaN at every epoch (AUROC of a one-class validation split)
        str(c)
        for c in per_epoch.columns
        if c not in columns and str(c).lower() not in _NOT_METRICS and str(c) not in ("epoch",)
    ]

    fig = _new_figure(10.0, 4.0)
    ax_loss, ax_metric = fig.subplots(1, 2)
    best_epoch, best_label = None, ""
    if kept_epoch is not None:  # the epoch whose weights the run kept, by whatever it was chosen
        best_epoch, best_label = kept_epoch, f"kept (epoch {kept_epoch + 1:g})"
    elif "val_loss" in losses:
        best_epoch = per_epoch["val_loss"].idxmin()
        best_label = f"best val_loss (epoch {best_epoch + 1:g})"
    for ax, cols, ylabel in ((ax_loss, losses, "Loss"), (ax_metric, metrics, "Metric")):
        for (color, ls), c in zip(_styles(len(cols)), cols, strict=False):
            series = per_epoch[c].dropna()
            # epochs counted from 1, as the log and the report's tables count them (files: from 0)
            ax.plot(
                series.index + 1,
                series.to_numpy(),
                marker="o",
                ms=3,
                lw=1.5,
                color=color,
                ls=ls,
                label=str(c),
            )
        if best_epoch is not None:
            ax.axvline(best_epoch + 1, ls=":", color="0.4", lw=1, label=best_label)
        if _spans_decades(per_epoch[cols]):  # e.g. a reconstruction error beside a sparsity penalty
            ax.set_yscale("log")
            ylabel += " (log scale)"
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("Epoch")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        if cols:
            ax.legend(fontsize="small")
        else:
            nan_cols = [c for c in undefined if (c.lower().endswith("loss")) == (ax is ax_loss)]
            ax.text(
                0.5,
                0.5,
                f"{', '.join(nan_cols)}: undefined (NaN) at every epoch"
                if nan_cols
                else f"no {ylabel.lower()} recorded",
                ha="center",
                va="center",
                transform=ax.transAxes,
                color="0.5",
            )
    ax_loss.set_title("Losses")
    ax_metric.set_title("Metrics")
    if title:
        fig.suptitle(title)
    return _save_figure(fig, path, dpi)


# --------------------------------------------------------------------------------------------
# Sequence logos
# --------------------------------------------------------------------------------------------
def _as_ppm(pwm: np.ndarray | Sequence) -> np.ndarray:
    """Validate a ``(width, 4)`` probability matrix; renormalise rows, empty rows -> uniform."""
    m = np.array(pwm, dtype=float)
    if m.ndim != 2 or m.shape[1] != 4:
        hint = " (it looks like (4, width); transpose it)" if m.ndim == 2 and m.shape[0] == 4 else ""
        raise BiodlInputError(
            f"a PWM must have shape (width, 4) with columns A, C, G, T, got {m.shape}{hint}"
        )
    if m.shape[0] == 0:
        raise BiodlInputError("a PWM must have at least one position")
    if np.any(m < 0):
        raise BiodlInputError("a PWM must not contain negative values (expected probabilities)")
    bad = ~np.isfinite(m).all(axis=1) | (m.sum(axis=1) <= 0)
    m[bad] = 0.25
    return m / m.sum(axis=1, keepdims=True)


def _information_matrix(ppm: np.ndarray) -> np.ndarray:
    """Letter heights in bits, ``(width, 4)``: probability times the position's information."""
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(ppm > 0, ppm * np.log2(ppm), 0.0)
    ic = np.clip(2.0 + plogp.sum(axis=1), 0.0, 2.0)
    return ppm * ic[:, None]


def pwm_information_content(pwm: np.ndarray | Sequence) -> float:
    """Total information content of a position probability matrix, in bits.

    Parameters
    ----------
    pwm
        Probabilities, shape ``(width, 4)``, columns ``A, C, G, T``, rows summing to 1
        (rows are renormalised; all-zero or non-finite rows count as uniform).

    Returns
    -------
    float
        ``sum_i (2 + sum_b p_ib log2 p_ib)`` against a uniform background, between 0 and
        ``2 * width`` (no small-sample correction).
    """
    return float(_information_matrix(_as_ppm(pwm)).sum())


def plot_logos(
    pwms: np.ndarray | Sequence,
    path: str | os.PathLike,
    names: Sequence[str] | None = None,
    ncols: int = 4,
    titles: Sequence[str] | None = None,
    *,
    dpi: int = DEFAULT_DPI,
) -> Path:
    """Draw a grid of information-content sequence logos (bits) with logomaker.

    Parameters
    ----------
    pwms
        Position probability matrices, a ``(k, width, 4)`` array or a list of ``k`` arrays
        ``(width_i, 4)`` (widths may differ), columns ``A, C, G, T``, rows summing to 1.
        Rows are renormalised; all-zero or non-finite rows are drawn as uniform (0 bits).
    path
        Output PNG file.
    names
        ``k`` names, the first title line of each logo; default ``"filter 0"``, ...
    ncols
        Logos per row of the grid.
    titles
        ``k`` optional second title lines (e.g. ``"n = 512 seqs"``); default: the total
        information content, ``"7.9 bits"``.
    dpi
        PNG resolution.

    Returns
    -------
    Path
        The written PNG.

    Notes
    -----
    Each letter's height is its probability times the position's information content
    ``2 + sum_b p_b log2 p_b`` (uniform background). All logos share the 0-2 bit y axis and
    the x extent of the widest matrix (so letter sizes are comparable); positions are 1-based.
    Colours are logomaker's ``classic`` scheme (A green, C blue, G orange, T red).
    """
    import logomaker

    if isinstance(pwms, np.ndarray) and pwms.ndim == 2:
        raise BiodlInputError(
            "pwms must be a list of (width, 4) matrices or a (k, width, 4) array; got one matrix"
        )
    ppms = [_as_ppm(p) for p in pwms]
    k = len(ppms)
    if k == 0:
        raise BiodlInputError("no PWMs to draw")
    names = [f"filter {i}" for i in range(k)] if names is None else [str(s) for s in names]
    if len(names) != k:
        raise BiodlInputError(f"{len(names)} names given for {k} PWMs")
    if titles is not None:
        titles = [str(s) for s in titles]
        if len(titles) != k:
            raise BiodlInputError(f"{len(titles)} titles given for {k} PWMs")
    ncols = max(1, min(int(ncols), k))
    nrows = -(-k // ncols)
    max_width = max(p.shape[0] for p in ppms)
    panel_w = max(2.4, 0.22 * max_width + 0.8)
    fig = _new_figure(panel_w * ncols, 2.3 * nrows)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for i, (ax, ppm) in enumerate(zip(axes, ppms, strict=False)):
        heights = _information_matrix(ppm)
        df = pd.DataFrame(heights, columns=list(_ALPHABET))
        df.index = np.arange(1, len(df) + 1)
        logo = logomaker.Logo(df, ax=ax, color_scheme="classic", font_name="DejaVu Sans", vpad=0.02)
        logo.style_spines(visible=False)
        logo.style_spines(spines=["left", "bottom"], visible=True)
        ax.set_ylim(0, 2)
        ax.set_xlim(0.5, max_width + 0.5)
        ax.set_yticks([0, 1, 2])
        step = 1 if max_width <= 12 else (2 if max_width <= 30 else 5)
        ax.set_xticks(np.arange(1, ppm.shape[0] + 1, step))
        ax.tick_params(labelsize=7)
        sub = titles[i] if titles is not None else f"{heights.sum():.1f} bits"
        ax.set_title(f"{names[i]}\n{sub}" if sub else names[i], fontsize=9)
        if i % ncols == 0:
            ax.set_ylabel("bits", fontsize=8)
    for ax in axes[k:]:
        ax.set_visible(False)
    return _save_figure(fig, path, dpi)
