"""Plots and report sections of population-genetic models: predicted against true parameters
(log-log, the network and rejection ABC), the confusion matrix of a classifier, and an example
(row-sorted) genotype matrix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from biodl.kinds.base import read_results
from biodl.report.plots import _new_figure, _save_figure, bounded_confusion


def _r2(t: np.ndarray, q: np.ndarray) -> float:
    """Squared Pearson r; NaN (drawn as "undefined") where it is (too few points, one value)."""
    if len(t) < 3 or t.std() == 0 or q.std() == 0:
        return float("nan")
    return float(np.corrcoef(t, q)[0, 1] ** 2)


def plot_pred_true(
    truth: pd.DataFrame, preds: dict[str, pd.DataFrame], targets: list[str], path: str | Path
) -> Path:
    """Predicted against true values, one panel per target, log-log axes.

    Parameters
    ----------
    truth
        Frame with ``true_<target>`` columns.
    preds
        ``{label: frame with pred_<target> columns}`` (same rows as ``truth``).
    """
    k = len(targets)
    fig = _new_figure(3.8 * k, 3.8)
    axes = fig.subplots(1, k, squeeze=False)[0]
    for ax, t in zip(axes, targets, strict=True):
        y = truth[f"true_{t}"].to_numpy(float)
        lo, hi = np.inf, -np.inf
        lines = []
        for c, (label, df) in enumerate(preds.items()):
            p = df[f"pred_{t}"].to_numpy(float)
            ax.scatter(y, p, s=8, alpha=0.5, linewidths=0, color=f"C{c}", label=label)
            lo, hi = min(lo, y.min(), p.min()), max(hi, y.max(), p.max())
            r2 = _r2(y, p)
            shown = "undefined" if np.isnan(r2) else f"{r2:.3f}"
            lines.append(f"{label}: R2 {shown}, RMSE {np.sqrt(np.mean((y - p) ** 2)):.3g}")
        ax.plot([lo, hi], [lo, hi], color="0.4", lw=1, ls="--")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(f"true {t}")
        ax.set_ylabel(f"estimated {t}")
        ax.set_title("\n".join(lines), fontsize=8)
        if len(preds) > 1:
            ax.legend(fontsize=7, loc="upper left")
    return _save_figure(fig, path)


def confusion(true: list[str], pred: list[str], classes: list[str]) -> pd.DataFrame:
    """Counts: rows true class, columns predicted class (all classes shown)."""
    cm = pd.crosstab(pd.Categorical(true, classes), pd.Categorical(pred, classes), dropna=False)
    cm.index.name, cm.columns.name = "true", "predicted"
    return cm


def plot_confusion(cm: pd.DataFrame, path: str | Path, title: str = "") -> Path:
    """The confusion matrix as row-normalised shades with the counts written in."""
    m = cm.to_numpy(float)
    frac = m / np.maximum(m.sum(1, keepdims=True), 1)
    longest = max((len(str(c)) for c in cm.columns), default=0)
    fig = _new_figure(max(1.2 * len(cm.columns), 0.3 * longest) + 1.8, 1.0 * len(cm) + 1.5 + 0.06 * longest)
    ax = fig.subplots()
    ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(
                j,
                i,
                f"{int(m[i, j])}",
                ha="center",
                va="center",
                color="white" if frac[i, j] > 0.5 else "black",
            )
    # names longer than a few letters (species, genera) are turned so that they do not run together
    rot = {"rotation": 40, "ha": "right", "rotation_mode": "anchor"} if longest > 6 else {}
    ax.set_xticks(range(len(cm.columns)), [str(c) for c in cm.columns], **rot)
    ax.set_yticks(range(len(cm.index)), [str(c) for c in cm.index])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title, fontsize=9)
    return _save_figure(fig, path)


def plot_matrix(x: np.ndarray, path: str | Path, title: str = "") -> Path:
    """An encoded window ``(1 + n_haplotypes, n_sites)``: haplotypes (derived dark, ancestral light,
    missing / padding white) with the site distances above."""
    fig = _new_figure(8.0, 4.2)
    top, bottom = fig.subplots(2, 1, height_ratios=[1, 5], sharex=True)
    used = np.abs(x[1:]).sum(0) > 0
    n_used, width = int(used.sum()), x.shape[1]
    # the padding after the last used site is left out (it was most of the picture)
    x = x[:, : int(np.flatnonzero(used)[-1]) + 1] if used.any() else x
    top.bar(np.arange(x.shape[1]), x[0], width=1.0, color="0.3")
    top.set_ylabel("distance", fontsize=7)
    top.tick_params(labelsize=6)
    shade = np.where(x[1:] > 0, 1.0, np.where(x[1:] < 0, 0.25, 0.0))
    bottom.imshow(shade, aspect="auto", cmap="Greys", vmin=0, vmax=1, interpolation="nearest")
    pad = f"; the padding to {width} not shown" if x.shape[1] < width else f", padded to {width}"
    bottom.set_xlabel(f"site ({n_used} used{pad})")
    bottom.set_ylabel("haplotype (row-sorted)")
    if title:
        top.set_title(title, fontsize=9)
    return _save_figure(fig, path)


def popgen_sections(run: Path, meta) -> list:
    """Report sections: network vs ABC on the test set, predicted against true, confusion matrices,
    an example genotype matrix."""
    from biodl.report.html import Section

    out: list = []
    test = run / "test" / "predictions.tsv"
    abc = run / "abc" / "predictions.tsv"
    d = meta.data
    net, abc_r = read_results(run / "test"), read_results(run / "abc")
    if net is not None and abc_r is not None:
        net_m, abc_m = net["metrics"], abc_r["metrics"]
        keys = [k for k in net_m if k in abc_m and isinstance(net_m[k], (int, float))]
        table = {meta.recipe: {k: net_m[k] for k in keys}, "rejection ABC": {k: abc_m[k] for k in keys}}
        out.append(
            Section(
                "Network against rejection ABC (held-out test)",
                text="Rejection ABC on the same summary statistics, the training simulations as the "
                "reference "
                f"table (accepting the closest {d.get('abc_fraction', 0.01):g} of them).",
                table=table,
            )
        )
    if test.exists():
        df = pd.read_csv(test, sep="\t", keep_default_na=False)
        if meta.task == "regression":
            preds = {meta.recipe: df}
            if abc.exists():
                preds["rejection ABC"] = pd.read_csv(abc, sep="\t")
            targets = [t for t in d["targets"] if f"true_{t}" in df]
            if targets and len(df) >= 2:
                img = plot_pred_true(df, preds, targets, run / "pred_vs_true.png")
                out.append(
                    Section(
                        "Predicted against true parameters (held-out test)",
                        text="Log-log axes; R2 is the squared Pearson correlation and RMSE is in parameter "
                        "units (Flagel et al.'s measures). The dashed line is the identity.",
                        images=[img],
                    )
                )
        elif "true" in df and "predicted" in df:
            classes = list(d["classes"])
            cm = confusion(df["true"].astype(str).tolist(), df["predicted"].astype(str).tolist(), classes)
            text = (
                f"Rows: true class; columns: predicted. Misclassification "
                f"{1 - np.trace(cm.to_numpy()) / max(cm.to_numpy().sum(), 1):.3f}."
            )
            shown, cut = bounded_confusion(cm)
            imgs = [plot_confusion(shown, run / "confusion.png", f"{meta.recipe}")]
            if abc.exists():
                a = pd.read_csv(abc, sep="\t", keep_default_na=False)
                cma = confusion(df["true"].astype(str).tolist(), a["predicted"].astype(str).tolist(), classes)
                imgs.append(
                    plot_confusion(bounded_confusion(cma)[0], run / "confusion_abc.png", "rejection ABC")
                )
                text += f" Rejection ABC: {1 - np.trace(cma.to_numpy()) / max(cma.to_numpy().sum(), 1):.3f}."
            out.append(Section("Confusion matrix (held-out test)", text=text + cut, table=shown, images=imgs))
    ex = run / "example_matrix.npz"
    if ex.exists():
        with np.load(ex) as z:
            x, name, desc = z["x"], str(z["id"]), str(z["params"])
        img = plot_matrix(x, run / "example_matrix.png", f"{name}: {desc}")
        out.append(
            Section(
                "Example genotype matrix",
                text="One held-out simulation as the networks read it: haplotypes (rows, "
                + ("row-sorted by similarity" if d.get("row_sort", True) else "as sampled")
                + ") by segregating sites (columns; derived alleles dark), the distances between sites "
                "above.",
                images=[img],
            )
        )
    return out


__all__ = ["confusion", "plot_confusion", "plot_matrix", "plot_pred_true", "popgen_sections"]
