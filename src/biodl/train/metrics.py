"""Metrics per task (torchmetrics functional), with missing labels masked out."""

from __future__ import annotations

import math

import numpy as np
import torch
from torchmetrics.functional.classification import (
    binary_auroc,
    binary_average_precision,
    multiclass_accuracy,
    multiclass_auroc,
)
from torchmetrics.functional.regression import mean_squared_error, pearson_corrcoef, r2_score

#: Warnings already printed by this process (each is printed once: training scores the
#: validation set every epoch).
_WARNED: set[str] = set()


def note_once(msg: str) -> None:
    """Print ``msg`` (a note or warning about the user's data) once per process."""
    if msg not in _WARNED:
        _WARNED.add(msg)
        from biodl.io._util import note

        note(msg)


def _one_class_labels(target: np.ndarray, names: list[str]) -> list[str]:
    """``'NAME (all 0)'`` for each column of ``target`` (``(n, n_labels)``, NaN = missing)
    whose known labels are of one class only."""
    out = []
    for j in range(target.shape[1]):
        t = target[~np.isnan(target[:, j]), j] > 0.5
        if t.size and (t.all() or not t.any()):
            out.append(f"{names[j]} (all {int(t[0])})")
    return out


def warn_one_class(
    target, label_names: list[str] | None, undefined: str, left_out: str | None = None
) -> None:
    """Print (once per process and message) a warning that labels of ``target`` have one class
    only, so the metrics named in ``undefined`` (e.g. ``"AUROC and AUPRC"``) are undefined:
    NaN for one label; over several, those labels are left out of the means of ``left_out``
    (default: the undefined ones)."""
    target = np.asarray(target, dtype=np.float64).reshape(len(target), -1)
    names = label_names or [str(j) for j in range(target.shape[1])]
    one = _one_class_labels(target, names)
    if not one:
        return
    if target.shape[1] == 1:
        cls = one[0].rsplit("(", 1)[1].rstrip(")")
        msg = f"the labels have one class only ({cls}): {undefined} are undefined (NaN)"
    elif len(one) == target.shape[1]:
        msg = f"every label has one class only: {undefined} are undefined (NaN)"
    else:
        shown = ", ".join(one[:5]) + (f" and {len(one) - 5} more" if len(one) > 5 else "")
        msg = f"{len(one)} of {target.shape[1]} labels have one class only ({shown}): their {undefined} " + (
            "are undefined and left out of the means"
            if left_out is None
            else f"are undefined, and they are left out of the means of {left_out}"
        )
    note_once(f"[biodl] warning: {msg}")


def _say_one_value(found: list, n_out: int, one, several, undefined: str) -> None:
    """Say once that a regression metric is undefined where the targets (or predictions) of an
    output are one value: ``found`` holds ``(output, value, n)`` of each such output; ``one(v, n)``
    says it of a single output, ``several(k, j, v)`` of ``k`` of several (first: output ``j``)."""
    if not found:
        return
    j, v, n = found[0]
    what = one(v, n) if n_out == 1 else several(len(found), j, v)
    note_once(
        f"[biodl] warning: {what}: {undefined} undefined (NaN)"
        + ("" if n_out == 1 else " there and left out of the means")
    )


def compute_metrics(
    task: str,
    logits: torch.Tensor,
    target: torch.Tensor,
    label_names: list[str] | None = None,
    class_names: list[str] | None = None,
    probabilities: torch.Tensor | None = None,
) -> dict[str, float]:
    """Metrics of predictions against targets (multiclass: ``probabilities``, when given, are the
    class probabilities AUROC ranks instead of the softmax of ``logits``: exact fractions such as
    rejection ABC's, whose ties a float32 round trip through logits would break at random).

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
        present; NaN, with a warning, when a label has one class only) plus ``auroc/<label>``,
        ``auprc/<label>`` when there are several labels;
        multiclass: ``accuracy``, ``auroc`` (macro one-vs-rest over the classes present; NaN,
        with a warning naming the class, from ``class_names``, when one class is);
        regression: ``mse``, ``pearson``, ``r2`` (means over outputs; an output whose targets
        are one value has no Pearson's r nor R^2, one predicted as one value no Pearson's r: NaN
        with a warning, left out of the means).
        Every metric is NaN, with a warning, when a labelled item's prediction is not finite.
    """
    logits = logits.float().cpu()
    target = target.float().cpu()
    out: dict[str, float] = {}
    labelled = (
        ~torch.isnan(target).all(dim=1) if target.ndim == 2 else torch.ones(len(target), dtype=torch.bool)
    )
    bad = int((~torch.isfinite(logits[labelled].reshape(int(labelled.sum()), -1))).any(dim=1).sum())
    if bad:  # a diverged model: no metric of such scores means anything (AUROC would rank NaNs anyhow)
        note_once(
            f"[biodl] warning: {bad} of {int(labelled.sum())} predictions are not finite (NaN or infinite): "
            "the metrics are undefined (NaN)"
        )
        logits = torch.full_like(logits, math.nan)
    if task in ("binary", "multilabel"):
        aurocs, auprcs = [], []
        names = label_names or [str(i) for i in range(target.shape[1])]
        for j in range(target.shape[1]):
            m = ~torch.isnan(target[:, j])
            t = target[m, j].long()
            if t.numel() == 0 or t.min() == t.max() or bad:
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
        warn_one_class(target.numpy(), names, "AUROC and AUPRC")
    elif task == "multiclass":
        t = target[:, 0]
        m = ~torch.isnan(t)
        t = t[m].long()
        lg = logits[m]
        k = lg.shape[1]
        prob = lg.softmax(-1) if probabilities is None else probabilities.double().cpu()[m]
        present = torch.unique(t)
        out["accuracy"] = (
            float(multiclass_accuracy(lg, t, num_classes=k, average="micro"))
            if t.numel() and not bad
            else math.nan
        )
        if bad:
            out["auroc"] = math.nan
        elif len(present) == k:
            out["auroc"] = float(multiclass_auroc(prob, t, num_classes=k, average="macro"))
        elif len(present) < 2:  # one class (a small validation or test set): undefined
            out["auroc"] = math.nan
            if not len(present):
                note_once("[biodl] warning: no labelled item: accuracy and AUROC are undefined (NaN)")
            else:
                c = int(present[0])
                which = f"class {class_names[c]}" if class_names and c < len(class_names) else "one class"
                note_once(
                    f"[biodl] warning: the {t.numel()} labelled item(s) are all of {which}: "
                    "AUROC is undefined (NaN)"
                )
        else:  # macro one-vs-rest over the classes present (torchmetrics counts an absent one as 0)
            out["auroc"] = float(
                sum(float(binary_auroc(prob[:, c], (t == c).long())) for c in present.tolist()) / len(present)
            )
    elif task == "regression":
        mses, rs, r2s = [], [], []
        flat_truth, flat_pred = [], []  # outputs whose targets / predictions are one value
        for j in range(target.shape[1]):
            m = ~torch.isnan(target[:, j])
            # float64: sums of squares about the mean cancel in float32 (targets near 1e4: R^2 0.99
            # for 0.84; near 1e6: R^2 0, or 1.4e7)
            p, t = logits[m, j].double(), target[m, j].double()
            if not t.numel():
                continue
            mses.append(float(mean_squared_error(p, t)))
            if t.numel() < 2 or bad:  # a correlation and R^2 need two (finite) values; the MSE does not
                continue
            if bool((t == t[0]).all()):  # no variance to explain: both undefined (torchmetrics says R^2 0)
                flat_truth.append((j, float(t[0]), t.numel()))
                continue
            r2s.append(float(r2_score(p, t)))
            if bool((p == p[0]).all()):  # a constant prediction correlates with nothing
                flat_pred.append((j, float(p[0]), p.numel()))
                continue
            rs.append(float(pearson_corrcoef(p, t)))
        n_out = target.shape[1]
        _say_one_value(
            flat_truth,
            n_out,
            lambda v, n: f"the {n} targets are all {v:g}",
            lambda k, j, v: (
                f"{k} of {n_out} outputs have one target value (first: output {j + 1}, all {v:g})"
            ),
            "Pearson's r and R^2 are",
        )
        if not bad:
            _say_one_value(
                flat_pred,
                n_out,
                lambda v, n: f"the model predicts one value ({v:g}) for all {n} items",
                lambda k, j, v: (
                    f"the model predicts one value for every item in {k} of {n_out} outputs "
                    f"(first: output {j + 1}, {v:g})"
                ),
                "Pearson's r is",
            )
        out["mse"] = sum(mses) / len(mses) if mses else math.nan
        out["pearson"] = sum(rs) / len(rs) if rs and not bad else math.nan
        out["r2"] = sum(r2s) / len(r2s) if r2s and not bad else math.nan
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


def _counts(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float, float, float]:
    tp = float(np.sum(pred & truth))
    fp = float(np.sum(pred & ~truth))
    tn = float(np.sum(~pred & ~truth))
    fn = float(np.sum(~pred & truth))
    return tp, fp, tn, fn


def _mcc(tp, fp, tn, fn):
    """Matthews correlation (arrays or floats); 0 where it is undefined (a row or column of
    the confusion matrix empty), as scikit-learn."""
    den = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, (tp * tn - fp * fn) / np.where(den > 0, den, 1.0), 0.0)


def mcc_threshold(prob: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """The probability threshold (call positive when ``prob >= threshold``) of largest Matthews
    correlation on ``(prob, target)``, and that MCC.

    Every cut between two neighbouring distinct scores is tried; the threshold is the midpoint
    of the cut (so it is not tied to one item's score), the cut of largest MCC wins (ties: the
    one nearest 0.5). Missing (NaN) targets are left out; with one class only, ``(0.5, nan)``.

    Parameters
    ----------
    prob, target
        ``(n,)`` probabilities and 0/1 targets.
    """
    prob = np.asarray(prob, dtype=np.float64).ravel()
    target = np.asarray(target, dtype=np.float64).ravel()
    m = ~np.isnan(target)
    prob, truth = prob[m], target[m] > 0.5
    if truth.all() or not truth.any():
        return 0.5, math.nan
    order = np.argsort(-prob, kind="stable")
    p, t = prob[order], truth[order]
    # a cut after each distinct score: the items up to it are called positive
    last = np.r_[p[1:] != p[:-1], True]
    tp = np.cumsum(t)[last]
    fp = np.cumsum(~t)[last]
    pos, neg = t.sum(), (~t).sum()
    fn, tn = pos - tp, neg - fp
    mcc = _mcc(tp, fp, tn, fn)
    lo = p[last]  # the lowest score called positive at each cut
    hi = np.r_[p[last][1:], -np.inf]  # the highest score called negative
    cut = np.where(np.isfinite(hi), (lo + hi) / 2, lo)
    best = np.flatnonzero(mcc >= mcc.max() - 1e-12)
    k = best[np.argmin(np.abs(cut[best] - 0.5))]
    return float(cut[k]), float(mcc[k])


def threshold_metrics(
    logits: np.ndarray, target: np.ndarray, thresholds, label_names: list[str] | None = None
) -> dict[str, float]:
    """MCC, accuracy, sensitivity and specificity of binary / multi-label outputs called
    positive at ``sigmoid(logit) >= threshold`` (one threshold per output).

    Returns
    -------
    dict
        ``mcc``, ``accuracy``, ``sensitivity``, ``specificity`` (means over the outputs whose
        labels have both classes; ``threshold`` too for one output), and per output
        ``<metric>/<label>`` and ``threshold/<label>`` when there are several. When no output
        has both classes, each metric is the mean over the outputs where it is defined:
        accuracy always, sensitivity with positives, specificity with negatives; MCC is NaN
        for a label of one class (a warning names them).
    """
    logits = np.asarray(logits, dtype=np.float64).reshape(len(logits), -1)
    target = np.asarray(target, dtype=np.float64).reshape(len(target), -1)
    prob = 1 / (1 + np.exp(-logits))
    names = label_names or [str(j) for j in range(target.shape[1])]
    per: dict[str, list[float]] = {"mcc": [], "accuracy": [], "sensitivity": [], "specificity": []}
    fallback: dict[str, list[float]] = {k: [] for k in per}
    out: dict[str, float] = {}
    for j in range(target.shape[1]):
        m = ~np.isnan(target[:, j])
        truth = target[m, j] > 0.5
        pred = prob[m, j] >= float(thresholds[j])
        tp, fp, tn, fn = _counts(pred, truth)
        vals = {
            "mcc": float(_mcc(tp, fp, tn, fn)),
            "accuracy": (tp + tn) / max(tp + fp + tn + fn, 1),
            "sensitivity": tp / (tp + fn) if tp + fn else math.nan,
            "specificity": tn / (tn + fp) if tn + fp else math.nan,
        }
        both = tp + fn > 0 and tn + fp > 0
        if not both:
            vals["mcc"] = math.nan  # undefined, not 0, with one class only
            if not tp + fp + tn + fn:
                vals["accuracy"] = math.nan
        for k, v in vals.items():
            if both:
                per[k].append(v)
            else:
                fallback[k].append(v)
            if target.shape[1] > 1:
                out[f"{k}/{names[j]}"] = v
        if target.shape[1] > 1:
            out[f"threshold/{names[j]}"] = float(thresholds[j])
    any_both = bool(per["accuracy"])
    for k, vs in per.items():
        if not any_both:  # no output has both classes: the values that are defined
            vs = [v for v in fallback[k] if not math.isnan(v)]
        out[k] = sum(vs) / len(vs) if vs else math.nan
    classes = {c[-2] for c in _one_class_labels(target, names)}  # '1' / '0' of 'NAME (all 1)'
    undefined = {
        frozenset("1"): "MCC and specificity",
        frozenset("0"): "MCC and sensitivity",
    }.get(frozenset(classes), "MCC and specificity (all 1) or sensitivity (all 0)")
    warn_one_class(target, names, undefined, left_out="MCC, accuracy, sensitivity and specificity")
    if target.shape[1] == 1:
        out["threshold"] = float(thresholds[0])
    return out
