"""Report sections of feature models: DFS's selected features and their weights, accuracy
against the number of features along a penalty path, and the test set's confusion matrix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from biodl.report.plots import _new_figure, _save_figure


def weights_section(run: Path, model, meta) -> list:
    from biodl.report.html import Section

    if not hasattr(model, "w"):
        return []
    w = (model.w * model.mask).detach().cpu().numpy()
    names = meta.data["features"]
    order = np.argsort(-np.abs(w), kind="stable")
    fig = _new_figure(7.0, 0.25 * len(w) + 1.2)
    ax = fig.subplots()
    ax.barh(
        np.arange(len(w)), np.abs(w[order])[::-1], color=["C0" if v != 0 else "0.8" for v in w[order][::-1]]
    )
    ax.set_yticks(np.arange(len(w)), [names[i] for i in order][::-1], fontsize=8)
    ax.set_xlabel("|input weight| (features standardised)")
    sel = int((w != 0).sum())
    ax.set_title(f"{sel} of {len(w)} features kept (l1 = {meta.model_kwargs.get('l1')})", fontsize=9)
    img = _save_figure(fig, run / "feature_weights.png")
    table = pd.DataFrame({"feature": [names[i] for i in order], "weight": w[order], "kept": w[order] != 0})
    return [
        Section(
            "Selected features",
            text="Deep feature selection (Li, Chen & Wasserman 2016): one weight per input feature with an "
            "L1 penalty applied as a proximal step, so the features the network does not need get weight "
            "exactly 0. Weights are on standardised features, so their sizes compare. Table: "
            "feature_weights.tsv.",
            table=table,
            images=[img],
        )
    ]


def path_section(run: Path, meta) -> list:
    from biodl.report.html import Section

    p = run / "path.tsv"
    if not p.exists():
        return []
    path = pd.read_csv(p, sep="\t")
    col = next(c for c in path.columns if c.startswith("val_") and c != "val_loss")
    metric = col.removeprefix("val_").upper() if col in ("val_auroc", "val_auprc", "val_mcc") else col[4:]
    fig = _new_figure(5.5, 3.5)
    ax = fig.subplots()
    ax.plot(path["n_features"], path[col], "o-", label="penalty path", zorder=2)
    # penalties that end at the same point share one label (they were drawn over each other)
    for (n, v), grp in path.groupby(["n_features", col], sort=False, dropna=False):
        ax.annotate(
            ", ".join(f"{lam:g}" for lam in grp["lambda"]),
            (n, v),
            fontsize=7,
            xytext=(3, 3),
            textcoords="offset points",
        )
    ch = path[path["chosen"]]
    ax.plot(ch["n_features"], ch[col], "r*", ms=12, mfc="none", label="kept", zorder=3)
    ax.set_xlabel("features kept")
    ax.set_ylabel(f"validation {metric}")
    ax.legend(fontsize=8)
    img = _save_figure(fig, run / "path.png")
    cap = (meta.options or {}).get("max_features")
    rule = f"with at most {cap} features (max_features)" if cap else "(any number of features above 0)"
    return [
        Section(
            f"Validation {metric} against the number of features",
            text="Each point is one penalty of the path (labels: lambda), warm-started from the previous "
            f"one; the model kept is the best by validation {metric} {rule} (red star).",
            table=path,
            images=[img],
        )
    ]


def confusion_section(run: Path, meta) -> list:
    from biodl.report.html import Section

    p = run / "test" / "predictions.tsv"
    if not p.exists():
        return []
    pred = pd.read_csv(p, sep="\t", keep_default_na=False)
    if "label" not in pred or "predicted" not in pred:
        return []
    truth = pred["label"].astype(str)
    if meta.task == "binary":
        pos = set(meta.data["positive"])
        truth = truth.map(lambda v: meta.label_names[0] if v in pos else "other")
    cm = pd.crosstab(truth.rename("true"), pred["predicted"].astype(str).rename("predicted"))
    # square, in the model's class order: a class never predicted (or absent from the test set)
    # still gets its column (row) of zeros
    classes = [meta.label_names[0], "other"] if meta.task == "binary" else list(meta.label_names)
    order = classes + [c for c in (*cm.index, *cm.columns) if c not in classes]
    order = list(dict.fromkeys(order))
    cm = cm.reindex(index=order, columns=order, fill_value=0)
    from biodl.report.plots import bounded_confusion

    cm, cut = bounded_confusion(cm)
    return [
        Section(
            "Confusion matrix (held-out test)", text="Rows: true class; columns: predicted." + cut, table=cm
        )
    ]


def stability_section(run: Path) -> list:
    from biodl.report.html import Section

    p = run / "stability.tsv"
    if not p.exists():
        return []
    st = pd.read_csv(p, sep="\t")
    return [
        Section(
            "Stability of the selection (randomized DFS)",
            text=f"Fraction of {int(st['runs'].iloc[0])} DFS fits, each on a random half of the training "
            "rows with every feature's L1 penalty multiplied by 1 / U(0.5, 1), that kept each feature.",
            table=st[["feature", "frequency"]],
        )
    ]
