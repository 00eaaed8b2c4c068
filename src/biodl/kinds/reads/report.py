"""Plots and report sections of read classifiers: per-taxon abundance (called against true read
counts) and the confusion matrix at genus level, from an evaluation's predictions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from biodl.kinds.base import read_results
from biodl.kinds.popgen.report import plot_confusion  # one confusion-matrix plot for every kind
from biodl.report.plots import _new_figure, _save_figure, bounded_confusion


def _rank2(ranks: list[str]) -> str:
    """The genus rank (the second lowest), or the only rank."""
    return ranks[1] if len(ranks) > 1 else ranks[0]


def genus_confusion(df: pd.DataFrame, ranks: list[str]) -> pd.DataFrame | None:
    """Counts, rows the true genus and columns the called genus (``unclassified``: no call at or
    below the genus), from a prediction frame with ``true_<rank>`` and ``call_<rank>``."""
    g = _rank2(ranks)
    if f"true_{g}" not in df or f"call_{g}" not in df:
        return None
    true = df[f"true_{g}"].astype(str)
    ok = true != ""
    if not ok.any():
        return None
    call = df.loc[ok, f"call_{g}"].astype(str).replace("", "unclassified")
    classes = sorted(set(true[ok]))
    cols = classes + sorted(set(call) - set(classes) - {"unclassified"}) + ["unclassified"]
    cm = pd.crosstab(pd.Categorical(true[ok], classes), pd.Categorical(call, cols), dropna=False)
    cm.index.name, cm.columns.name = f"true {g}", f"called {g}"
    return cm


def abundance(df: pd.DataFrame, ranks: list[str]) -> pd.DataFrame:
    """Reads per species: called (at species level) and true, with the reads not called at
    species level as one row."""
    s = ranks[0]
    counts = {"called": df[f"call_{s}"].astype(str).replace("", f"not called at {s} level").value_counts()}
    if f"true_{s}" in df:
        counts["true"] = df[f"true_{s}"].astype(str).replace("", f"unknown {s}").value_counts()
    # every taxon called or true (a species never called keeps its true count)
    out = pd.concat(counts, axis=1).fillna(0).astype(int)
    out.index.name = s
    return out.sort_values(out.columns[-1], ascending=False)


def plot_abundance(ab: pd.DataFrame, path: str | Path, title: str = "") -> Path:
    """Horizontal bars: reads per taxon, called (and true when known)."""
    n = len(ab)
    fig = _new_figure(7.5, 0.42 * n + 1.4)
    ax = fig.subplots()
    y = np.arange(n)
    h = 0.8 / len(ab.columns)
    for j, c in enumerate(ab.columns):
        ax.barh(y + (j - (len(ab.columns) - 1) / 2) * h, ab[c].to_numpy(), height=h, label=c, color=f"C{j}")
    ax.set_yticks(y, [str(i).replace("_", " ") for i in ab.index], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("reads")
    ax.legend(fontsize=8, loc="lower right")
    if title:
        ax.set_title(title, fontsize=9)
    return _save_figure(fig, path)


def evaluation_plots(df: pd.DataFrame, ranks: list[str], od: Path) -> list[Path]:
    """``abundance.png`` and ``confusion_genus.png`` of an evaluation directory."""
    out = []
    if len(df):
        out.append(plot_abundance(abundance(df, ranks), od / "abundance.png", "reads per species"))
    cm = genus_confusion(df, ranks)
    if cm is not None:
        out.append(plot_confusion(cm, od / "confusion_genus.png", f"{_rank2(ranks)} level"))
    return out


def reads_sections(run: Path, model, meta) -> list:
    """Report sections: abundance and genus confusion on the held-out test reads, and the
    calibration of the confidence (temperature and threshold per rank)."""
    from biodl.report.html import Section

    ranks = meta.data["taxonomy"]["ranks"]
    out: list = []
    test = run / "test" / "predictions.tsv"
    if test.exists():
        df = pd.read_csv(test, sep="\t", keep_default_na=False, dtype=str)
        ab = abundance(df, ranks)
        img = plot_abundance(ab, run / "abundance.png", "held-out test reads per species")
        out.append(
            Section(
                "Per-taxon abundance (held-out test)",
                text=f"Reads called at {ranks[0]} level per {ranks[0]} beside the true counts; reads whose "
                f"confidence did not reach the {ranks[0]} threshold are counted as not called at that level.",
                table=ab,
                images=[img],
            )
        )
        cm = genus_confusion(df, ranks)
        if cm is not None:
            m = cm.to_numpy()
            diag = sum(int(cm.loc[i, i]) for i in cm.index if i in cm.columns)
            cm, cut = bounded_confusion(cm, keep=["unclassified"])
            img = plot_confusion(cm, run / "confusion_genus.png", f"{_rank2(ranks)} level, held-out test")
            out.append(
                Section(
                    f"Confusion matrix at {_rank2(ranks)} level (held-out test)",
                    text=f"Rows: true {_rank2(ranks)}; columns: the {_rank2(ranks)} of each read's call "
                    f"(unclassified: no call at or below it). Correct: {diag} of {int(m.sum())} reads.{cut}",
                    table=cm,
                    images=[img],
                )
            )
    temps = model.temperature.detach().cpu().numpy().tolist()
    thr = model.threshold.detach().cpu().numpy().tolist()
    table = pd.DataFrame({"rank": ranks, "temperature": temps, "confidence threshold": thr}).set_index("rank")
    out.append(
        Section(
            "Calibrated confidence",
            text="A read is reported at the deepest rank whose temperature-scaled probability reaches the "
            "threshold (unclassified when none does), as Kraken2 reports the lowest common ancestor. "
            "Temperatures were fitted on the validation reads.",
            table=table,
        )
    )
    result = read_results(run / "test")
    if result is not None:
        m = result["metrics"]
        rows = {r: {k: m.get(f"{k}/{r}") for k in ("accuracy", "sensitivity", "precision")} for r in ranks}
        out.append(
            Section(
                "Per-rank accuracy (held-out test)",
                text="accuracy: the head's most likely taxon; sensitivity: reads called correctly at or "
                "below "
                "the rank (over all reads); precision: correct calls over the reads called at or below it.",
                table=pd.DataFrame(rows).T.rename_axis("rank"),
            )
        )
    return out


__all__ = [
    "abundance",
    "evaluation_plots",
    "genus_confusion",
    "plot_abundance",
    "reads_sections",
]
