"""Experiments with CellCnn on real cytometry: leave-one-group-out evaluation with held-out
interpretation, and rare-subset spike-in detection, each with the cluster-median baseline.

Leave-one-group-out: for each group (patient), CellCnn (and the baseline) are trained on the
other groups' samples and predict the held-out group's samples. The best filter is chosen on
the training samples only (:func:`biodl.kinds.cells.interpret.rank_filters`), its threshold is the
0.99 quantile of the responses of the training control cells, and the cells it selects in
the *held-out* samples give the held-out subset profile.

Spike-in: cells of a real subset (e.g. BCR-XL stimulated B cells of a patient) are added to
reference cells of the same patient at a given frequency; each patient contributes one
sample without and one with the spike-in (built from disjoint halves of the patient's
reference cells, resampled to ``n_cells`` cells). Samples are labelled by spike presence and
evaluated leave-one-patient-out; besides AUC, the recall of the spiked cells among the
top-ranked cells of the held-out spiked sample (by the training-chosen filter) is reported.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from biodl.errors import BiodlInputError
from biodl.kinds.cells.baseline import ClusterMedianBaseline
from biodl.kinds.cells.interpret import cell_responses, consensus_filters, rank_filters, select_cells
from biodl.kinds.cells.io import MISSING_LABELS, SampleSet
from biodl.kinds.cells.restarts import CellCnnConfig, load_restarts, predict_samples, train_cellcnn

__all__ = ["SpikeIn", "gate", "leave_one_group_out", "make_spike_in"]


def gate(cells: np.ndarray, markers: Sequence[str], rules: dict[str, tuple[str, float]]) -> np.ndarray:
    """Boolean mask of cells passing every rule ``{marker: (">" or "<", value)}`` (arcsinh units)."""
    m = np.ones(len(cells), bool)
    for name, (op, v) in rules.items():
        if name not in markers:
            raise BiodlInputError(f"gate marker {name!r} is not in the panel ({', '.join(markers)})")
        x = cells[:, list(markers).index(name)]
        m &= (x > v) if op == ">" else (x < v)
    return m


def _auc(y: np.ndarray, s: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, s)) if len(np.unique(y)) == 2 else float("nan")


def leave_one_group_out(
    ss: SampleSet,
    targets: np.ndarray,
    cfg: CellCnnConfig,
    *,
    positive: int = 1,
    seed: int = 0,
    groups: Sequence[str] | None = None,
    baseline: bool = True,
    baseline_clusters: int = 10,
    quantile: float = 0.99,
    spiked: Sequence[np.ndarray | None] | None = None,
    work_dir: str | Path | None = None,
    device: str = "cpu",
    n_filters: int = 2,
    filter_selection: str = "ensemble",
    profile_cells: Sequence[np.ndarray] | None = None,
    test_cells: Sequence[np.ndarray] | None = None,
    test_spiked: Sequence[np.ndarray | None] | None = None,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Leave-one-group-out CellCnn (+ baseline) on binary-labelled samples.

    Parameters
    ----------
    ss
        Samples with ``groups`` (or give ``groups``).
    targets
        ``(n_samples,)`` class indices 0/1.
    cfg
        CellCnn options for every fold.
    groups
        The groups to hold out, in order (default: all, sorted).
    spiked
        Per sample, a boolean mask of spiked cells (or ``None``) for the recall metric.
    work_dir
        Where restarts are checkpointed (default: a temporary directory).
    filter_selection
        Which filters are ranked and select cells: ``"ensemble"`` (every filter of the
        ensemble's networks) or ``"consensus"`` (the paper's consensus filters clustered over
        all restarts, :func:`~biodl.kinds.cells.interpret.consensus_filters`; the ensemble's
        filters when no cluster forms). Predictions always come from the ensemble.
    profile_cells
        Per sample, the cells (same rows as ``ss.cells``) returned in ``selected`` -- e.g. all
        markers when the networks were trained on a panel subset (default: ``ss.cells``).
    test_cells, test_spiked
        Per sample, the cells (and spiked-cell masks) a *held-out* sample is scored on, when
        they differ from what the same sample is trained on in the other folds -- e.g. a
        spike-in built with ``background="shared"`` for training and ``"disjoint"`` for
        testing (:func:`make_spike_in`). Default: ``ss.cells`` and ``spiked``.

    Returns
    -------
    dict
        ``predictions`` (one row per held-out sample: group, sample, label, p_cellcnn,
        p_baseline, percent_selected, recall columns and ``cell_auc``, the AUC of the best
        filter's response for spiked vs other cells of a spiked sample),
        ``selected`` (``{rank: cells}``: cells selected in the held-out positive samples by
        each fold's best (rank 1), second best (rank 2), ... filter), ``filters`` (the
        ``n_filters`` best filters per fold), ``responses`` (``{sample id: (n_cells,
        n_filters)}``: every cell's response to those filters, in rank order, for the held-out
        positive samples, rows as their cells: to read the cells a filter ranks highest).
    """
    if filter_selection not in ("ensemble", "consensus"):
        raise BiodlInputError(f"filter_selection must be ensemble or consensus, got {filter_selection!r}")
    if ss.groups is None:
        raise BiodlInputError(
            "leave-one-group-out needs a group (patient) column in the sample table (looked for "
            "patient, patient_id, group, donor, subject; name yours with --set group_col=NAME)",
            path=ss.table,
        )
    gone = [i for i, g in enumerate(ss.groups) if str(g).strip().lower() in MISSING_LABELS]
    if gone:  # a missing group was a group of its own: a patient's samples could sit in two folds
        i = gone[0]
        raise BiodlInputError(
            f"sample {ss.ids[i]!r} has no group (patient) value ({ss.groups[i]!r}); every sample of "
            "leave-one-group-out needs its group",
            path=getattr(ss, "table", None),
            record=ss.lines[i] if getattr(ss, "lines", None) else None,
        )
    all_groups = sorted(set(ss.groups), key=lambda g: (len(g), g))
    hold = list(groups) if groups is not None else all_groups
    targets = np.asarray(targets)
    if test_cells is not None and len(test_cells) != len(ss.cells):
        raise BiodlInputError(f"test_cells has {len(test_cells)} samples, the sample set {len(ss.cells)}")
    if test_cells is not None and profile_cells is not None:
        raise BiodlInputError("give profile_cells or test_cells, not both (profiles are of the scored cells)")
    held_cells = list(test_cells) if test_cells is not None else ss.cells
    if test_spiked is not None:
        spiked = test_spiked
    rows, filters = [], []
    selected: dict[int, list[np.ndarray]] = {k + 1: [] for k in range(n_filters)}
    responses: dict[str, np.ndarray] = {}
    tmp = tempfile.TemporaryDirectory() if work_dir is None else None
    base = Path(work_dir) if work_dir is not None else Path(tmp.name)
    try:
        for g in hold:
            tr = [i for i, x in enumerate(ss.groups) if x != g]
            te = [i for i, x in enumerate(ss.groups) if x == g]
            if not te:
                raise BiodlInputError(f"no samples in group {g!r}")
            if log:
                log(f"fold {g}: train on {len(tr)} samples, test on {len(te)}")
            ens, _ = train_cellcnn(
                [ss.cells[i] for i in tr],
                targets[tr],
                2,
                base / f"fold_{g}",
                cfg,
                seed=seed,
                resume=True,
                device=device,
            )
            p = np.exp(predict_samples(ens, [held_cells[i] for i in te], device=device))[:, positive]
            imodel, source = ens, "ensemble"
            if filter_selection == "consensus":
                nets, rdf = load_restarts(base / f"fold_{g}", len(ss.markers), 2)
                cons, _ = consensus_filters(nets, rdf["valid_accuracy"].to_numpy())
                if cons is not None:
                    imodel, source = cons, "consensus"
                elif log:
                    log(f"fold {g}: no consensus filter cluster; ranking the ensemble's filters")
            rank = rank_filters(imodel, [ss.cells[i] for i in tr], targets[tr], positive=positive)
            cols, thrs = [], []
            for k in range(min(n_filters, len(rank))):
                col = int(rank["column"].iloc[k])
                thr, _ = select_cells(imodel, col, [ss.cells[i] for i in tr], targets[tr], positive, quantile)
                cols.append(col)
                thrs.append(thr)
                filters.append(
                    dict(
                        group=g,
                        rank=k + 1,
                        source=source,
                        member=int(rank["member"].iloc[k]),
                        filter=int(rank["filter"].iloc[k]),
                        score=float(rank["score"].iloc[k]),
                        agrees=bool(rank["agrees"].iloc[k]),
                        threshold=thr,
                    )
                )
            pb = np.full(len(te), np.nan)
            if baseline:
                bl = ClusterMedianBaseline(baseline_clusters, seed=seed).fit(
                    [ss.cells[i] for i in tr], targets[tr]
                )
                pb = bl.predict_proba([held_cells[i] for i in te])[:, positive]
            for j, i in enumerate(te):
                R = cell_responses(imodel, held_cells[i])
                if targets[i] == positive:
                    responses[str(ss.ids[i])] = R[:, cols].copy()
                    for k, (c, t) in enumerate(zip(cols, thrs, strict=True)):
                        selected[k + 1].append((profile_cells or held_cells)[i][R[:, c] > t])
                resp, thr = R[:, cols[0]], thrs[0]
                sel = resp > thr
                r = dict(
                    group=g,
                    sample=ss.ids[i],
                    label=ss.labels[i] if ss.labels else targets[i],
                    target=int(targets[i]),
                    p_cellcnn=float(p[j]),
                    p_baseline=float(pb[j]),
                    percent_selected=100.0 * float(sel.mean()),
                )
                if spiked is not None and spiked[i] is not None and spiked[i].any():
                    n_sp = int(spiked[i].sum())
                    order = np.argsort(-resp, kind="stable")
                    r["n_spiked"] = n_sp
                    r["recall_top_n"] = float(spiked[i][order[:n_sp]].mean())
                    r["recall_top_10n"] = float(spiked[i][order[: 10 * n_sp]].sum() / n_sp)
                    r["recall_selected"] = float(spiked[i][sel].sum() / n_sp)
                    r["cell_auc"] = _auc(spiked[i].astype(int), resp)
                rows.append(r)
    finally:
        if tmp is not None:
            tmp.cleanup()
    return {
        "predictions": pd.DataFrame(rows),
        "selected": {
            k: np.concatenate(v) if v else np.zeros((0, (profile_cells or ss.cells)[0].shape[1]), np.float32)
            for k, v in selected.items()
        },
        "filters": pd.DataFrame(filters),
        "responses": responses,
    }


def summarize(pred: pd.DataFrame) -> dict[str, float]:
    """Pooled held-out AUC and accuracy (threshold 0.5) of CellCnn and the baseline, and the
    per-group AUC (the share of a group's positive-negative pairs ordered right, ties half), averaged."""
    out = {}
    y = pred["target"].to_numpy()
    for name in ("cellcnn", "baseline"):
        s = pred[f"p_{name}"].to_numpy()
        if np.isnan(s).all():
            continue
        out[f"{name}_auc"] = _auc(y, s)
        out[f"{name}_accuracy"] = float(((s > 0.5) == (y == 1)).mean())
        wins = []
        for _, d in pred.groupby("group"):
            pos, neg = d[d["target"] == 1][f"p_{name}"], d[d["target"] == 0][f"p_{name}"]
            if len(pos) and len(neg):
                a, b = pos.to_numpy()[:, None], neg.to_numpy()[None]
                wins.append(float(((a > b) + 0.5 * (a == b)).mean()))  # a tie is half a win, as in an AUC
        out[f"{name}_per_group_auc_mean"] = float(np.mean(wins)) if wins else float("nan")
    return out


@dataclass
class SpikeIn:
    """A spike-in sample set: the samples, their 0/1 labels and, per sample, the mask of
    spiked cells."""

    samples: SampleSet
    targets: np.ndarray
    spiked: list[np.ndarray]


def make_spike_in(
    reference: dict[str, np.ndarray],
    donors: dict[str, np.ndarray],
    markers: Sequence[str],
    frequency: float,
    n_cells: int = 20000,
    seed: int = 0,
    background: str = "disjoint",
) -> SpikeIn:
    """Build spike-in samples.

    Parameters
    ----------
    reference
        Per group (patient), its reference cells ``(n, n_markers)``.
    donors
        Per group, the cells of the subset to spike in (e.g. stimulated B cells).
    frequency
        Fraction of spiked cells in a positive sample (0.01 = 1 %); at least one cell.
    n_cells
        Cells per sample. The reference cells of a group are split into two disjoint halves
        (negative / positive sample) and each half is resampled to size (with replacement
        when it is smaller); spiked cells are drawn from the group's donor cells (with
        replacement when there are fewer).
    background
        ``"disjoint"`` (above: the two samples of a group have no reference cell in common) or
        ``"shared"``: one background of ``n_cells`` reference cells per group (resampled with
        replacement when there are fewer), the plain sample being that background and the
        spiked sample the same background with ``frequency * n_cells`` of its cells replaced
        by spiked cells. With ``"disjoint"`` and resampling, every copy of a reference cell is
        in one class only, so a network can learn which copies belong to which class (and a
        per-sample split of cells into training and validation parts cannot hold them out);
        with ``"shared"`` the spiked cells are the only difference between the classes. The
        same ``seed`` and ``frequency`` give the same spiked cells in both designs.
    """
    if background not in ("disjoint", "shared"):
        raise BiodlInputError(f"background must be disjoint or shared, got {background!r}")
    if not 0 < frequency < 1:
        raise BiodlInputError(f"spike-in frequency must be in (0, 1), got {frequency}")
    rng = np.random.default_rng([seed, int(round(frequency * 1e6))])
    cells, ids, labels, groups, spiked, targets = [], [], [], [], [], []
    for g in sorted(reference, key=lambda s: (len(s), s)):
        ref = reference[g]
        perm = rng.permutation(len(ref))
        halves = (ref[perm[: len(ref) // 2]], ref[perm[len(ref) // 2 :]])
        n_sp = max(1, int(round(frequency * n_cells)))
        d = donors[g]
        if len(d) == 0:
            raise BiodlInputError(f"group {g!r} has no donor cells to spike in")
        shared = None
        if background == "shared":  # its own stream: the main one (and so the spiked cells) as for disjoint
            srng = np.random.default_rng([seed, int(round(frequency * 1e6)), 1, len(cells)])
            shared = ref[srng.choice(len(ref), n_cells, replace=len(ref) < n_cells)]
        for t, half in enumerate(halves):
            n_bg = n_cells - (n_sp if t else 0)
            bg = half[rng.choice(len(half), n_bg, replace=len(half) < n_bg)]
            if t:
                sp = d[rng.choice(len(d), n_sp, replace=len(d) < n_sp)]
                if shared is not None:
                    bg = shared[srng.permutation(n_cells)[:n_bg]]
                x = np.concatenate([bg, sp])
                mask = np.r_[np.zeros(n_bg, bool), np.ones(n_sp, bool)]
                order = rng.permutation(len(x))
                x, mask = x[order], mask[order]
            else:
                x, mask = (bg if shared is None else shared), np.zeros(n_cells, bool)
            cells.append(x.astype(np.float32))
            spiked.append(mask)
            ids.append(f"p{g}_{'spiked' if t else 'plain'}")
            labels.append("spiked" if t else "plain")
            groups.append(g)
            targets.append(t)
    ss = SampleSet(cells, list(markers), ids, labels, groups)
    return SpikeIn(ss, np.asarray(targets, np.float32), spiked)
