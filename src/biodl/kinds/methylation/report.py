"""Report sections of methylation models, from the held-out test predictions
(``RUN/test/predictions.tsv``): AUC, accuracy and MCC per profile; calibration (observed
methylated share against predicted probability); accuracy against the distance to the nearest
observed CpG of the same profile."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from biodl.report.plots import _new_figure, _save_figure

#: Distance bins (bp) of the accuracy-by-distance curve.
DISTANCE_BINS = (0, 100, 250, 500, 1000, 2500, 5000, 10_000, 10**12)


def per_profile(pred: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """AUC, accuracy, MCC and the number of sites per profile (probability columns ``prob_<n>``,
    truth ``true_<n>``)."""
    from sklearn.metrics import matthews_corrcoef, roc_auc_score

    rows = []
    for n in names:
        if f"true_{n}" not in pred or f"prob_{n}" not in pred:
            continue
        ok = pred[f"true_{n}"].notna()
        y, p = pred.loc[ok, f"true_{n}"].astype(int).to_numpy(), pred.loc[ok, f"prob_{n}"].to_numpy()
        if not len(y):
            continue
        auc = float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan")
        yhat = (p >= 0.5).astype(int)
        rows.append(
            {
                "profile": n,
                "sites": int(len(y)),
                "methylated": round(float(y.mean()), 4),
                "auc": round(auc, 4),
                "accuracy": round(float((y == yhat).mean()), 4),
                "mcc": round(float(matthews_corrcoef(y, yhat)), 4),
            }
        )
    return pd.DataFrame(rows)


def _bin_label(i: int) -> str:
    """``"lo-hi"`` of distance bin ``i`` (``"lo-"`` for the last, open one)."""
    hi = DISTANCE_BINS[i + 1]
    return f"{DISTANCE_BINS[i]}-{hi if hi < 10**12 else ''}"


def by_distance(pred: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Accuracy (and sites) per bin of the distance to the nearest observed CpG, per profile."""
    rows = []
    for n in names:
        if f"nearest_{n}" not in pred:
            continue
        ok = pred[f"true_{n}"].notna() & (pred[f"nearest_{n}"] >= 0)
        d = pred.loc[ok, f"nearest_{n}"].to_numpy()
        hit = (pred.loc[ok, f"prob_{n}"].to_numpy() >= 0.5) == (pred.loc[ok, f"true_{n}"].to_numpy() >= 0.5)
        b = np.digitize(d, DISTANCE_BINS[1:-1])
        for i in range(len(DISTANCE_BINS) - 1):
            m = b == i
            if m.any():
                rows.append(
                    {
                        "profile": n,
                        "distance": _bin_label(i),
                        "sites": int(m.sum()),
                        "accuracy": round(float(hit[m].mean()), 4),
                    }
                )
    return pd.DataFrame(rows)


def methylation_sections(run: Path, meta) -> list:
    from biodl.report.html import Section

    p = run / "test" / "predictions.tsv"
    if not p.exists() or meta.task == "regression":
        return []
    pred = pd.read_csv(p, sep="\t")
    names = [str(n) for n in meta.label_names]
    table = per_profile(pred, names)
    dist = by_distance(pred, names)
    labels = [_bin_label(i) for i in range(len(DISTANCE_BINS) - 1)]
    fig = _new_figure(9.0, 3.6)
    ax1, ax2 = fig.subplots(1, 2)
    for n in names:
        if f"true_{n}" not in pred:
            continue
        ok = pred[f"true_{n}"].notna()
        pr, y = pred.loc[ok, f"prob_{n}"].to_numpy(), pred.loc[ok, f"true_{n}"].to_numpy()
        bins = np.clip((pr * 10).astype(int), 0, 9)
        xs = [pr[bins == i].mean() for i in range(10) if (bins == i).sum() >= 5]
        ys = [y[bins == i].mean() for i in range(10) if (bins == i).sum() >= 5]
        ax1.plot(xs, ys, "o-", label=n, ms=3)
        sub = dist[dist["profile"] == n] if len(dist) else dist
        # each bin at its own place on the axis (a profile without sites in a bin skips it)
        ax2.plot(
            [labels.index(d) for d in sub.get("distance", [])], sub.get("accuracy", []), "o-", label=n, ms=3
        )
    used = sorted({labels.index(d) for d in dist["distance"]}) if len(dist) else []
    ax2.set_xticks(used, [labels[i] for i in used], rotation=45, fontsize=7)
    ax1.plot([0, 1], [0, 1], ":", color="0.5")
    ax1.set(xlabel="predicted probability", ylabel="observed methylated share", title="Calibration (test)")
    ax2.set(
        xlabel="distance to the nearest observed CpG (bp)", ylabel="accuracy", title="Accuracy by distance"
    )
    if len(names) > 1:
        ax1.legend(fontsize=7)
    img = _save_figure(fig, run / "methylation_test.png")
    return [
        Section(
            "Per-profile performance (held-out chromosomes)",
            text="AUC, accuracy and MCC (at probability 0.5) of every predicted profile on the test "
            "chromosomes' observed sites, each predicted from its neighbours only (the site itself left "
            "out in every profile).",
            table=table,
        ),
        Section(
            "Calibration and distance",
            text="Left: the share of methylated sites among test sites binned by predicted probability "
            "(on the diagonal when calibrated). Right: accuracy against the distance to the nearest "
            "other observed CpG of the same profile: sparse profiles (single cells) are harder where "
            "their neighbours are far.",
            table=dist,
            images=[img],
        ),
    ]
