"""Confidence thresholds for reads of organisms that are *not* in the reference
(``biodl reads calibrate-novel``).

A read classifier's temperatures are fitted on reads of its own reference genomes, which it
classifies almost perfectly; they say nothing about how sure it is, wrongly, on a read of a
species it has never seen. The Kraken2 paper measured this with *strain exclusion*: remove some
genomes from the reference, classify their reads, score the calls at genus level. This module
does the same to *choose* the threshold instead of only measuring it, without touching any read
the user will score:

1. hold out genomes of the model's reference (``auto``: one species of every genus that has two
   or more, chosen with the run's seed, so each held-out read still has its genus in the
   reference; ``folds`` > 1: as many shadow models, each holding out another species of each
   such genus, their held-out reads pooled);
2. train a *shadow* model on the rest, with the run's own recipe, options and training settings
   (same taxonomy, so its outputs line up with the model's), under ``RUN/novel-calibration/``;
   resumable: an existing shadow run is reused;
3. sample reads (or read pairs) of the held-out genomes with the model's read length and error
   rate from a stream of their own, classify them with the shadow model at a grid of thresholds
   and take the smallest threshold at which the precision (PPV) of the calls at ``rank``
   (default genus) reaches ``target_ppv``, and stays there at every higher threshold;
4. store it as the model's threshold (every rank; the ``threshold`` buffer read by
   ``biodl reads classify`` and ``biodl evaluate``) and in ``run.json``'s ``thresholds``, with
   how it was chosen; quantised copies (``model.q*.pt``) in the run directory get it too.

The shadow model stands for the model as a genome stands for a novel strain: it has one species
fewer per genus and is trained the same way, so its confidence on the held-out species is the
model's confidence on species that are missing from *its* reference.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from biodl.errors import BiodlInputError
from biodl.kinds.reads.io import Reference, load_reference

CALIB_DIR = "novel-calibration"


def holdout_folds(ref: Reference, seed: int, folds: int | None = 1) -> list[list[int]]:
    """Genome indices to hold out, per fold: fold ``j`` holds out every genome of the ``j``-th
    species (in an order shuffled with ``seed``) of each genus with two or more species that have
    genomes, so every held-out species keeps its genus in the shadow reference. ``folds=None``:
    as many folds as the largest such genus has species (every one of them held out once)."""
    leaf = ref.genome_leaf()
    if len(ref.ranks) < 2:
        raise BiodlInputError(
            "the reference has one rank only: nothing above species to calibrate", path=ref.path
        )
    genus_of = np.asarray(ref.taxonomy.parent[0], np.int64)
    rng = np.random.default_rng(int(seed))
    orders = []
    for g in np.unique(genus_of[np.unique(leaf)]):
        species = np.array([s for s in np.unique(leaf) if genus_of[s] == g])
        if len(species) >= 2:
            orders.append(rng.permutation(species))
    if not orders:
        raise BiodlInputError(
            "no genus of the reference has two or more species with genomes, so no species can be held "
            "out with its genus still present; name genomes with --holdout",
            path=ref.path,
        )
    most = max(len(o) for o in orders)
    n = most if folds is None else int(folds)
    if not 1 <= n <= most:
        raise BiodlInputError(
            f"--folds {n}: the reference's largest genus with genomes has {most} species, so 1 to {most} "
            "folds (each holds out one species of each genus)",
            path=ref.path,
        )
    out = []
    for j in range(n):
        held = [int(o[j]) for o in orders if j < len(o)]
        out.append(sorted(np.flatnonzero(np.isin(leaf, held)).tolist()))
    return out


def pick_holdouts(ref: Reference, seed: int) -> list[int]:
    """Genome indices to hold out: every genome of one species (chosen with ``seed``) of each genus
    with two or more species that have genomes (the first of :func:`holdout_folds`)."""
    return holdout_folds(ref, seed, 1)[0]


def holdout_indices(ref: Reference, names: list[str]) -> list[int]:
    """Genome indices of genome names (as in the reference) or species names (all their genomes)."""
    gnames = [g["name"] for g in ref.genomes]
    leaf = ref.genome_leaf()
    out: set[int] = set()
    for nm in names:
        if nm in gnames:
            out.add(gnames.index(nm))
            continue
        hit = ref.taxonomy.find(nm)
        if hit is None or hit[0] != 0:
            raise BiodlInputError(
                f"--holdout {nm!r} is neither a genome nor a species of the reference (genomes: "
                + ", ".join(gnames[:8])
                + (", ..." if len(gnames) > 8 else "")
                + ")",
                path=ref.path,
            )
        out.update(np.flatnonzero(leaf == hit[1]).tolist())
    if len(out) >= len(gnames):
        raise BiodlInputError(
            "--holdout names every genome of the reference; keep some to train on", path=ref.path
        )
    return sorted(out)


def subset_reference(ref: Reference, exclude: list[int], out: str | Path) -> Path:
    """A reference directory with the genomes of ``ref`` except ``exclude`` and the *same*
    taxonomy (taxa without genomes stay, as classes no read is drawn from). ``sequence.npy`` is
    linked, not copied (the contigs keep their offsets)."""
    from biodl.io._util import atomic_write_text

    od = Path(out)
    od.mkdir(parents=True, exist_ok=True)
    meta = json.loads((ref.path / "reference.json").read_text())
    keep = [i for i in range(len(ref.genomes)) if i not in set(exclude)]
    new_index = {old: new for new, old in enumerate(keep)}
    meta["genomes"] = [meta["genomes"][i] for i in keep]
    meta["contigs"] = [[new_index[c[0]], *c[1:]] for c in meta["contigs"] if c[0] in new_index]
    meta["excluded_genomes"] = [ref.genomes[i]["name"] for i in exclude]
    seq = od / "sequence.npy"
    if not seq.exists():
        src = (ref.path / "sequence.npy").resolve()
        try:
            os.symlink(src, seq)
        except OSError:
            import shutil

            shutil.copyfile(src, seq)
    atomic_write_text(od / "reference.json", json.dumps(meta, indent=1) + "\n")
    return od


def threshold_curve(
    parts: list[np.ndarray],
    targets: np.ndarray,
    rank: int,
    grid: np.ndarray,
    parents: list[list[int]],
    base: np.ndarray,
) -> dict[str, np.ndarray]:
    """PPV, sensitivity and calls at ``rank`` for every threshold of ``grid``, given to ``rank``
    and the ranks above it (``base``: the thresholds of the ranks below, kept)."""
    from biodl.kinds.reads.classify import decide

    t = targets[:, rank].astype(np.int64)
    ppv, sens, called_n = [], [], []
    for thr in grid:
        th = np.asarray(base, np.float64).copy()
        th[rank:] = float(thr)
        rk, ix, _ = decide(parts, th, parents)
        lin = ix.copy()
        for r in range(rank):  # lift calls below `rank` to their ancestor at `rank`
            up = rk <= r
            lin[up] = np.asarray(parents[r], np.int64)[lin[up]]
        called = (rk >= 0) & (rk <= rank)
        right = called & (lin == t)
        called_n.append(int(called.sum()))
        ppv.append(right.sum() / called.sum() if called.any() else np.nan)
        sens.append(right.mean())
    return {
        "threshold": grid,
        "ppv": np.array(ppv),
        "sensitivity": np.array(sens),
        "called": np.array(called_n),
    }


def choose_threshold(curve: dict[str, np.ndarray], target: float, min_calls: int = 20) -> tuple[float, bool]:
    """The smallest threshold whose PPV reaches ``target`` at it and at every higher threshold
    (thresholds with fewer than ``min_calls`` calls count as reaching it); ``(threshold, met)``,
    the highest threshold and ``False`` when none does."""
    thr, ppv, n = curve["threshold"], curve["ppv"], curve["called"]
    ok = (n < min_calls) | (np.nan_to_num(ppv, nan=1.0) >= target)
    tail_ok = np.flip(np.logical_and.accumulate(np.flip(ok)))
    idx = np.flatnonzero(tail_ok & (n >= min_calls))
    if len(idx):
        return float(thr[idx[0]]), True
    return float(thr[-1]), False


def _threshold_grid() -> np.ndarray:
    return np.unique(np.round(np.concatenate([np.linspace(0.5, 0.9, 41), 1 - np.logspace(-1, -5, 81)]), 8))


def _stored_threshold(path: Path) -> np.ndarray:
    import torch

    sd = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    return sd["threshold"].double().numpy()


def _rewrite_model(path: Path, values: list[float], info: dict[str, Any]) -> None:
    import torch

    from biodl.train.checkpoint import atomic_torch_save

    payload = torch.load(path, map_location="cpu", weights_only=True)
    sd = payload["state_dict"]
    if "threshold" not in sd:
        raise BiodlInputError("is not a read classifier with a stored threshold", path=path)
    sd["threshold"] = torch.tensor(values, dtype=sd["threshold"].dtype)
    meta = json.loads(payload["meta"])
    meta["thresholds"] = info
    payload["meta"] = json.dumps(meta, default=str)
    atomic_torch_save(payload, path)


def _drop_checkpoints(shadow: Path, say) -> None:
    """Remove a finished shadow run's checkpoints (``last.ckpt`` holds the optimizer state too:
    about twice ``model.pt``); kept if the run is not marked finished."""
    from biodl.train.checkpoint import remove_checkpoints

    rj = shadow / "run.json"
    if not (rj.is_file() and (shadow / "model.pt").is_file()):
        return
    if json.loads(rj.read_text()).get("status") != "finished":
        return
    freed = remove_checkpoints(shadow)
    if freed:
        say(f"[biodl] removed the shadow's checkpoints ({freed / 2**20:,.0f} MiB; its model.pt is kept)")


def score_sampled(
    model,
    meta,
    ref: Reference,
    genomes: list[int],
    n: int,
    seed: int,
    fragment: int | None,
    device: str = "cpu",
    stream: int = 7,
) -> tuple[list[np.ndarray], np.ndarray]:
    """Calibrated log-probabilities per rank (lowest first) and targets of ``n`` reads (pairs with
    ``fragment``) of ``genomes`` of ``ref``, sampled with the model's read length and error rate
    from ``stream`` (7: a stream of its own, not the training, validation or test reads)."""
    from biodl.kinds import get_kind
    from biodl.kinds.reads.data import sampled_table

    table = sampled_table(
        ref,
        int(n),
        read_len=int(meta.data.get("read_len", 150)),
        error_rate=float(meta.data.get("error_rate", 0.01)),
        seed=seed,
        stream=stream,
        genomes=np.asarray(genomes, np.int64),
        fragment=fragment,
        prefix="heldout",
    )
    out, _ = get_kind("reads").score(model, meta, table, device=device, options={})
    sizes = [len(names) for names in meta.data["taxonomy"]["names"]]
    return np.split(out.astype(np.float64), np.cumsum(sizes)[:-1], axis=1), table.targets


def calibrate_novel(
    run: str | Path,
    *,
    holdout: list[str] | None = None,
    folds: int | None = 1,
    rank: str = "genus",
    target_ppv: float = 0.95,
    n_reads: int = 10_000,
    fragment: int | None = None,
    device: str = "cpu",
    apply: bool = True,
    quiet: bool = False,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Choose the model's confidence threshold for reads of absent organisms (module docstring).

    Parameters
    ----------
    run
        Run directory of a trained read model (``biodl train --system read-classifier ...``).
    holdout
        Genome or species names to hold out; ``None``: one species of each genus with two or more.
    folds
        Without ``holdout``: shadow models, each holding out a different species of each such genus
        (:func:`holdout_folds`); their held-out reads are pooled to choose one threshold. ``None``:
        as many as the largest genus has species. More folds cost a training run each and make
        the choice depend less on which species happened to be held out.
    rank
        Rank whose calls must reach ``target_ppv`` (a rank of the model's taxonomy above species).
    n_reads
        Reads (or pairs) of the held-out genomes to score, per fold.
    fragment
        Score read pairs, both ends of a fragment of this length (bp), as paired-end data are
        classified (``--mate2``); ``None``: single reads.
    apply
        Write the threshold into the model files and ``run.json`` (else only report it).

    Returns
    -------
    dict
        ``threshold``, ``met``, ``ppv`` / ``sensitivity`` / ``called`` at it, the held-out genomes,
        the curve and where the shadow run is; also ``RUN/novel-calibration/calibration.json``.
    """
    from biodl.io._util import atomic_write_text
    from biodl.kinds import get_kind
    from biodl.kinds.base import log as base_log
    from biodl.options import with_before
    from biodl.pipeline import train
    from biodl.train.checkpoint import load_model, read_model_meta
    from biodl.train.fit import TrainConfig

    say = log or (lambda m: base_log(m, quiet))
    rd = Path(run).resolve()
    if rd.is_file():
        rd = rd.parent
    if not (rd / "model.pt").is_file():
        raise BiodlInputError("is not a run directory with a model.pt (biodl train --out)", path=rd)
    meta = read_model_meta(rd / "model.pt")
    if meta.kind != "reads":
        raise BiodlInputError(f"is a {meta.kind} model; calibrate-novel takes a read classifier", path=rd)
    if int(meta.model_kwargs.get("table_bits", 32)) != 32:
        raise BiodlInputError("give the float32 run (quantised copies in it are updated too)", path=rd)
    if not 0 < target_ppv < 1:
        raise BiodlInputError(f"--target-ppv must be in (0, 1), got {target_ppv}")
    if int(n_reads) < 1:
        raise BiodlInputError(f"--n must be at least 1 (reads or pairs to score), got {n_reads}")
    read_len = int(meta.data.get("read_len", 150))
    if fragment is not None and int(fragment) != 0 and int(fragment) < read_len:
        raise BiodlInputError(
            f"--fragment must be at least the model's read length ({read_len} bp): both reads of a pair "
            f"lie inside the fragment; got {fragment}"
        )
    ranks = list(meta.data["taxonomy"]["ranks"])
    if rank not in ranks[1:]:
        raise BiodlInputError(f"--rank must be one of {', '.join(ranks[1:])} (above species), got {rank!r}")
    r_i = ranks.index(rank)
    ref = load_reference(meta.data["reference"])
    seed = int(meta.training.get("seed", 0))
    if holdout:
        if folds not in (None, 1):
            raise BiodlInputError("give --holdout or --folds, not both")
        fold_list = [holdout_indices(ref, holdout)]
    else:
        fold_list = holdout_folds(ref, seed, folds)
    cdir = rd / CALIB_DIR
    sizes = [len(n) for n in meta.data["taxonomy"]["names"]]
    parts_all: list[list[np.ndarray]] = []
    targets_all: list[np.ndarray] = []
    fold_names: list[list[str]] = []
    shadows: list[str] = []
    for j, held in enumerate(fold_list):
        held_names = [ref.genomes[i]["name"] for i in held]
        fold_names.append(held_names)
        tag = "" if j == 0 else f"-{j + 1}"
        say(
            f"[biodl] fold {j + 1}/{len(fold_list)}: holding out {len(held)} genome(s): "
            + ", ".join(held_names)
        )
        shadow = cdir / f"shadow{tag}"
        shadows.append(str(shadow))
        # a shadow left by an earlier call is reused only if it was trained on exactly the genomes
        # this fold keeps (checked in the model itself, before anything here is rewritten)
        kept = [g["name"] for i, g in enumerate(ref.genomes) if i not in held]
        prev = json.loads((shadow / "run.json").read_text()) if (shadow / "run.json").is_file() else None
        if prev is not None and prev.get("status") == "finished" and (shadow / "model.pt").is_file():
            trained_on = read_model_meta(shadow / "model.pt").data.get("genomes")
            if trained_on != kept:
                was = sorted({g["name"] for g in ref.genomes} - set(trained_on or []))
                raise BiodlInputError(
                    f"the shadow model here was trained holding out {', '.join(was) or 'nothing'}, not "
                    f"{', '.join(held_names)}; remove {cdir} (or move it away) to calibrate on another "
                    "hold-out",
                    path=shadow,
                )
            say(f"[biodl] reusing the shadow model {shadow / 'model.pt'}")
        else:
            old_ref = cdir / f"reference{tag}" / "reference.json"
            if prev is not None and old_ref.is_file():  # an unfinished shadow resumes only its own hold-out
                was = json.loads(old_ref.read_text()).get("excluded_genomes")
                if was != held_names:
                    raise BiodlInputError(
                        f"the unfinished shadow model here holds out {', '.join(was or [])}, not "
                        f"{', '.join(held_names)}; remove {cdir} (or move it away) to calibrate on another "
                        "hold-out",
                        path=shadow,
                    )
            sub = subset_reference(ref, held, cdir / f"reference{tag}")
            fields = set(TrainConfig.__dataclass_fields__)
            cfg = TrainConfig(**{k: v for k, v in meta.training.items() if k in fields})
            cfg.device, cfg.resume = device, True
            # a model trained before decoys / diverged reads existed had none: the shadow neither
            opts = with_before(get_kind(meta.kind).options, meta.options)
            opts = {k: v for k, v in opts.items() if v is not None}
            opts.update(data=str(sub), test_reads=0, report=False)
            opts.pop("test_file", None)
            say(f"[biodl] training the shadow model without them -> {shadow}")
            mk = {k: v for k, v in meta.model_kwargs.items() if k != "rank_sizes"}
            train(meta.recipe, shadow, options=opts, model_options=mk, config=cfg, quiet=quiet)
            # a finished shadow is only read again through its model.pt (and never trained further):
            # its checkpoints (weights, and optimizer state in last.ckpt) only took disk
            _drop_checkpoints(shadow, say)
        model, smeta = load_model(shadow / "model.pt", device=device)
        parts, targets = score_sampled(model, smeta, ref, held, int(n_reads), seed, fragment, device)
        parts_all.append(parts)
        targets_all.append(targets)
    parts = [np.concatenate([p[r] for p in parts_all]) for r in range(len(sizes))]
    targets = np.concatenate(targets_all)
    held_names = [n for f in fold_names for n in f]
    n_total = int(n_reads) * len(fold_list)
    base = _stored_threshold(rd / "model.pt")
    curve = threshold_curve(parts, targets, r_i, _threshold_grid(), meta.data["taxonomy"]["parent"], base)
    thr, met = choose_threshold(curve, target_ppv)
    j = int(np.flatnonzero(curve["threshold"] == thr)[0])
    res = {
        "threshold": thr,
        "met": bool(met),
        "rank": rank,
        "target_ppv": float(target_ppv),
        "ppv": None if np.isnan(curve["ppv"][j]) else float(curve["ppv"][j]),
        "sensitivity": float(curve["sensitivity"][j]),
        "called": int(curve["called"][j]),
        "n": n_total,
        "pairs": bool(fragment),
        "fragment": int(fragment) if fragment else None,
        "held_out": held_names,
        "folds": fold_names,
        "shadow": shadows[0] if len(shadows) == 1 else shadows,
        "curve": {k: [None if np.isnan(x) else float(x) for x in v] for k, v in curve.items()},
    }
    atomic_write_text(cdir / "calibration.json", json.dumps(res, indent=1) + "\n")
    say(
        f"[biodl] threshold {thr:g}: {rank} PPV "
        + ("n/a (no call)" if res["ppv"] is None else f"{res['ppv']:.4f}")
        + f" (target {target_ppv:g}), sensitivity "
        f"{res['sensitivity']:.4f} on {n_total:,} {'pairs' if fragment else 'reads'} of the held-out genomes"
        + (f" ({len(fold_list)} folds pooled)" if len(fold_list) > 1 else "")
        + ("" if met else "; the target was NOT reached at any threshold, so nothing is stored")
    )
    values = [float(v) for v in base[:r_i]] + [thr] * (len(ranks) - r_i)
    res["values"] = values
    if apply and met:
        info = {
            "values": values,
            "chosen_on": f"{n_total} {'pairs' if fragment else 'reads'} of held-out genomes "
            f"({'; '.join(', '.join(f) for f in fold_names)}) classified by "
            + (
                f"a model trained without them ({shadows[0]})"
                if len(shadows) == 1
                else f"{len(shadows)} models, each trained without its fold ({cdir})"
            ),
            "criterion": f"smallest threshold of {rank} and the ranks above with {rank} PPV >= "
            f"{target_ppv:g}; ranks below keep the model's",
            "n": n_total,
            "folds": len(fold_list),
            "ppv": res["ppv"],
            "sensitivity": res["sensitivity"],
            "met": bool(met),
        }
        files = [rd / "model.pt", *sorted(p for p in rd.glob("model.q*.pt") if p.is_file())]
        for p in files:
            _rewrite_model(p, values, info)
        rj = rd / "run.json"
        if rj.is_file():
            d = json.loads(rj.read_text())
            d["thresholds"] = info
            atomic_write_text(rj, json.dumps(d, indent=1, default=str) + "\n")
        res["updated"] = [str(p) for p in files]
        say("[biodl] stored in " + ", ".join(p.name for p in files) + " and run.json")
    return res


__all__ = [
    "calibrate_novel",
    "choose_threshold",
    "holdout_folds",
    "holdout_indices",
    "pick_holdouts",
    "score_sampled",
    "subset_reference",
    "threshold_curve",
]
