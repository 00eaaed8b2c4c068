"""Metrics per task (torchmetrics functional), with missing labels masked out."""

from __future__ import annotations

import math

import torch
from torchmetrics.functional.classification import (
    binary_auroc,
    binary_average_precision,
    multiclass_accuracy,
    multiclass_auroc,
)
from torchmetrics.functional.regression import mean_squared_error, pearson_corrcoef, r2_score


def compute_metrics(
    task: str, logits: torch.Tensor, target: torch.Tensor, label_names: list[str] | None = None
) -> dict[str, float]:
    """Metrics of predictions against targets.

    Parameters
    ----------
    task
        ``binary``, ``multilabel``, ``multiclass`` or ``regression``.
    logits
        ``(n, n_outputs)`` raw model outputs.
    target
        ``(n, n_labels)``; NaN marks a missing label.

    Returns
    -------
    dict
        binary/multilabel: ``auroc`` and ``auprc`` (means over labels with both classes
        present) plus ``auroc/<label>``, ``auprc/<label>`` when there are several labels;
        multiclass: ``accuracy``, ``auroc`` (macro); regression: ``mse``, ``pearson``, ``r2``
        (means over outputs).
    """
    logits = logits.float().cpu()
    target = target.float().cpu()
    out: dict[str, float] = {}
    if task in ("binary", "multilabel"):
        aurocs, auprcs = [], []
        names = label_names or [str(i) for i in range(target.shape[1])]
        for j in range(target.shape[1]):
            m = ~torch.isnan(target[:, j])
            t = target[m, j].long()
            if t.numel() == 0 or t.min() == t.max():
                a = p = math.nan
            else:
                a = float(binary_auroc(logits[m, j].sigmoid(), t))
                p = float(binary_average_precision(logits[m, j].sigmoid(), t))
            aurocs.append(a)
            auprcs.append(p)
            if target.shape[1] > 1:
                out[f"auroc/{names[j]}"] = a
                out[f"auprc/{names[j]}"] = p
        ok = [a for a in aurocs if not math.isnan(a)]
        okp = [p for p in auprcs if not math.isnan(p)]
        out["auroc"] = sum(ok) / len(ok) if ok else math.nan
        out["auprc"] = sum(okp) / len(okp) if okp else math.nan
    elif task == "multiclass":
        t = target[:, 0]
        m = ~torch.isnan(t)
        t = t[m].long()
        lg = logits[m]
        k = lg.shape[1]
        out["accuracy"] = float(multiclass_accuracy(lg, t, num_classes=k, average="micro"))
        out["auroc"] = float(multiclass_auroc(lg.softmax(-1), t, num_classes=k, average="macro"))
    elif task == "regression":
        mses, rs, r2s = [], [], []
        for j in range(target.shape[1]):
            m = ~torch.isnan(target[:, j])
            p, t = logits[m, j], target[m, j]
            if t.numel() < 2:
                continue
            mses.append(float(mean_squared_error(p, t)))
            rs.append(float(pearson_corrcoef(p, t)))
            r2s.append(float(r2_score(p, t)))
        out["mse"] = sum(mses) / len(mses) if mses else math.nan
        out["pearson"] = sum(rs) / len(rs) if rs else math.nan
        out["r2"] = sum(r2s) / len(r2s) if r2s else math.nan
    else:
        raise ValueError(f"unknown task {task!r}")
    return out


MONITOR = {
    "binary": ("auroc", "max"),
    "multilabel": ("auroc", "max"),
    "multiclass": ("accuracy", "max"),
    "regression": ("loss", "min"),
    "reconstruction": ("loss", "min"),
}
