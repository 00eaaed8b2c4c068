"""Protein contacts as a data kind: from a multiple sequence alignment to a residue contact map.

An input is one alignment (aligned FASTA / A2M / A3M, PSICOV ``.aln``, Stockholm) or a protein
table (TSV: ``id msa [query] [native] [chain] [native_sequence]``). Each protein becomes a
stack of maps ``(C, L, L)``: plmDCA, PSICOV-like and MI+APC scores (each standardised) and pair
features (separation, column entropies, alignment depth); a native structure gives the truth
(CB-CB < ``threshold`` angstrom, structure aligned to the query by sequence).

PconsC2 fits its layered random forests with scikit-learn (no epochs, no checkpoints: a rerun
with the same seed gives the same forests) and stores them as tensors in the model file.
Evaluation and prediction score residue pairs ``j - i >= min_sep``; metrics are the mean over
proteins of top-L/5, L/2 and L precision for long- and medium-range pairs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from biodl.errors import BiodlInputError
from biodl.kinds.base import DataKind, Splits, TrainContext
from biodl.options import Option
from biodl.train.checkpoint import RunMeta, data_as

_IO = ("train", "evaluate", "predict")
_REP = ("train", "evaluate", "predict", "report")

OPTIONS = (
    Option(
        "data",
        "path",
        None,
        "A protein table (TSV: id, msa[, query, native, chain, native_sequence]) or one alignment.",
        flag="DATA",
        stages=_IO,
    ),
    Option(
        "query",
        "str",
        None,
        "Query sequence of a single alignment (found by sequence in .aln files).",
        stages=_IO,
    ),
    Option(
        "native",
        "path",
        None,
        "Native structure of a single alignment (PDB / mmCIF), to score.",
        stages=_IO,
    ),
    Option(
        "chain",
        "str",
        None,
        "Chain of the native structure (default: the protein chain that best matches the query).",
        stages=_IO,
    ),
    Option("native_sequence", "str", None, "Sequence of a .CB distance-list native.", stages=_IO),
    Option("test_file", "path", None, "Held-out test proteins (a protein table).", flag="--test"),
    Option("test_fraction", "float", 0.0, "Proteins held out for testing without --test.", minimum=0),
    Option(
        "min_sep",
        "int",
        6,
        "Smallest sequence separation of the pairs scored and written.",
        minimum=1,
        stages=_IO,
    ),
    Option(
        "threshold", "float", 8.0, "Contact: CB-CB distance below this (angstrom).", minimum=0, stages=_REP
    ),
    Option(
        "identity",
        "float",
        0.8,
        "Sequence weighting: neighbours share at least this identity.",
        minimum=0,
        maximum=1,
        stages=_IO,
    ),
    Option("plm_iter", "int", 50, "plmDCA: L-BFGS iterations.", minimum=1, stages=_IO),
    Option(
        "psicov_iter",
        "int",
        10,
        "PSICOV-like: ADMM iterations of the graphical lasso.",
        minimum=0,
        stages=_IO,
    ),
    Option(
        "max_seqs",
        "int",
        None,
        "Use at most this many sequences of each alignment (the first ones).",
        minimum=2,
        stages=_IO,
    ),
    Option("report", "bool", True, "Write OUT/report.html after training."),
)

N_MAPS = 3  # plmDCA, PSICOV-like, MI
N_PAIR = 5  # separation, entropy i, entropy j, log Meff, log L
MAP_NAMES = ("plmdca", "psicov", "mi")


@dataclass
class ContactData:
    """``RunMeta.data`` of a contact model: how its input maps were made."""

    maps: list[str] = field(default_factory=lambda: list(MAP_NAMES))
    min_sep: int = 6
    threshold: float = 8.0
    identity: float = 0.8
    plm_iter: int = 50
    psicov_iter: int = 10
    train_proteins: list[str] = field(default_factory=list)


@dataclass
class ProteinMaps:
    """One protein ready for a model: ``x (C, L, L)`` float32 maps, the native distances
    ``(L, L)`` (NaN unknown; ``None`` without a structure), the query and where it came from."""

    id: str
    query: str
    x: np.ndarray
    distances: np.ndarray | None
    source: str
    meff: float
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def L(self) -> int:  # noqa: N802
        return len(self.query)


@dataclass
class ProteinSet:
    """The proteins of one input (a table or a single alignment)."""

    proteins: list[ProteinMaps]
    source: str | None = None

    def __len__(self) -> int:
        return len(self.proteins)


# ----------------------------------------------------------------------------------- features
def coevolution_maps(
    msa,
    identity: float = 0.8,
    plm_iter: int = 50,
    psicov_iter: int = 10,
    device: str = "cpu",
    progress=None,
) -> tuple[dict[str, np.ndarray], np.ndarray, dict[str, float]]:
    """plmDCA, PSICOV-like and MI+APC maps of an alignment, its sequence weights and the
    seconds each took; ``progress`` (a callable) is told each step and the fits' iterations."""
    import time

    from biodl.kinds.contacts import coevolution as co

    say = progress or (lambda _: None)
    t = time.perf_counter()
    say("sequence weights")
    w = co.sequence_weights(msa, identity, device)
    sec = {"weights": time.perf_counter() - t}
    maps = {}
    for name, fn in (
        ("plmdca", lambda: co.plmdca(msa, w, max_iter=plm_iter, device=device, progress=progress)),
        ("psicov", lambda: co.psicov(msa, w, max_iter=psicov_iter, device=device, progress=progress)),
        ("mi", lambda: co.mutual_information(msa, w, device=device)),
    ):
        t = time.perf_counter()
        say({"plmdca": "plmDCA", "psicov": "PSICOV-like", "mi": "MI+APC"}[name])
        maps[name] = fn()
        sec[name] = time.perf_counter() - t
    return maps, w, sec


def progress_line(show: bool, what: str):
    """``(status, callback)``: a :class:`~biodl.io._util.StatusLine` on standard error and a
    callable that shows ``[biodl] WHAT: step (N s)`` on it (rewritten in place on a terminal,
    a line every 30 s in a log)."""
    from biodl.io._util import StatusLine

    status = StatusLine(show=show)

    def callback(step: str) -> None:
        now = status.clock()
        status.update(f"{what}: {step} ({now - status.t0:.0f} s)", now)

    return status, callback


def stack_features(msa, maps: dict[str, np.ndarray], weights: np.ndarray, min_sep: int = 6) -> np.ndarray:
    """The model input ``(N_MAPS + N_PAIR, L, L)``: the standardised maps, then log separation,
    the two column entropies, log Meff and log L (constant maps)."""
    from biodl.kinds.contacts.coevolution import entropy, zscore

    L = msa.L
    ent = entropy(msa, weights)
    idx = np.arange(L)
    sep = np.log1p(np.abs(idx[:, None] - idx[None, :]))
    chans = [zscore(maps[n], min_sep) for n in MAP_NAMES]
    chans += [sep, np.repeat(ent[:, None], L, 1), np.repeat(ent[None, :], L, 0)]
    chans += [np.full((L, L), np.log(max(float(weights.sum()), 1.0))), np.full((L, L), np.log(L))]
    return np.stack(chans).astype(np.float32)


def targets_of(p: ProteinMaps, min_sep: int, threshold: float) -> np.ndarray:
    """``(n_pairs,)`` 1 / 0 contact (NaN unknown) of the pairs ``j - i >= min_sep``."""
    from biodl.kinds.contacts.scoring import pair_index

    i, j = pair_index(p.L, min_sep)
    if p.distances is None:
        return np.full(len(i), np.nan)
    d = p.distances[i, j]
    return np.where(np.isfinite(d), (d < threshold).astype(float), np.nan)


def read_proteins(path, options: dict[str, Any], *, labelled: bool, device: str = "cpu", quiet: bool = True):
    """A :class:`ProteinSet` of a protein table or one alignment, with its maps computed."""
    from biodl.kinds.base import log
    from biodl.kinds.contacts.io import (
        Protein,
        check_query,
        is_manifest,
        native_distances,
        read_manifest,
        read_msa,
        read_native,
    )

    if path is None:
        raise BiodlInputError("no input given (an alignment or a protein table)")
    if is_manifest(path):
        entries = read_manifest(path)
        if options.get("native") is not None:
            raise BiodlInputError("--pdb goes with a single alignment; a protein table names its natives")
    else:
        entries = [
            Protein(
                id=Path(path).name.split(".")[0],
                msa=str(path),
                query=None if options.get("query") is None else check_query(options["query"], "--set query"),
                native=None if options.get("native") is None else str(options["native"]),
                chain=options.get("chain"),
                native_sequence=None
                if options.get("native_sequence") is None
                else check_query(options["native_sequence"], "--set native_sequence"),
            )
        ]
    out = []
    for k, e in enumerate(entries):
        msa = read_msa(e.msa, e.query)
        if options.get("max_seqs"):
            msa = msa.subset(np.arange(min(msa.n_seqs, int(options["max_seqs"]))))
        from biodl.kinds.contacts.predictors import check_variation

        check_variation(msa, e.msa)
        dist = None
        if e.native is not None:
            native = read_native(e.native, e.chain, e.native_sequence, query=msa.query)
            dist = native_distances(msa.query, native)
        elif labelled:
            raise BiodlInputError(
                f"protein {e.id!r} has no native structure to score against (column native, or --pdb)",
                path=path,
            )
        what = f"{e.id} ({k + 1}/{len(entries)}, L={msa.L}, {msa.n_seqs} sequences)"
        status, progress = progress_line(not quiet, what)
        try:
            maps, w, sec = coevolution_maps(
                msa,
                options.get("identity", 0.8),
                options.get("plm_iter", 50),
                options.get("psicov_iter", 10),
                device,
                progress,
            )
        finally:
            status.clear()  # the line gives way to the summary or the error
        x = stack_features(msa, maps, w, options.get("min_sep", 6))
        log(f"[biodl] {e.id}: L={msa.L}, {msa.n_seqs} sequences, Meff {w.sum():.0f}", quiet)
        out.append(ProteinMaps(e.id, msa.query_as_written, x, dist, e.msa, float(w.sum()), sec))
    return ProteinSet(out, str(path))


# ---------------------------------------------------------------------------------- the kind
class ContactsKind(DataKind):
    """Multiple sequence alignments -> residue contact maps."""

    name = "contacts"
    title = "protein contact maps"
    reads = (
        "multiple sequence alignments (aligned FASTA / A2M / A3M, PSICOV .aln, Stockholm) or a protein table"
    )
    formats = frozenset(("FASTA",))
    options = OPTIONS
    report_on_train = True

    def _opts(self, meta: RunMeta, options: dict[str, Any]) -> dict[str, Any]:
        d = data_as(ContactData, meta.data)
        o = dict(options)
        for k in ("min_sep", "identity", "plm_iter", "psicov_iter"):
            o[k] = getattr(d, k)  # the maps are made as they were for training
        o["threshold"] = options.get("threshold") or d.threshold
        return o

    # ------------------------------------------------------------------ training
    def load(self, ctx: TrainContext) -> Splits:
        o = ctx.options
        if o["data"] is None:
            raise BiodlInputError("no training proteins given (DATA: a protein table with natives)")
        dev = ctx.config.device if ctx.config.device not in (None, "auto") else "cpu"
        data = read_proteins(o["data"], o, labelled=True, device=dev, quiet=ctx.quiet)
        test = None
        if o["test_file"] is not None:
            test = read_proteins(o["test_file"], o, labelled=True, device=dev, quiet=ctx.quiet)
        elif o["test_fraction"] > 0 and len(data) > 1:
            rng = np.random.default_rng(ctx.config.seed)
            n_test = max(1, int(round(o["test_fraction"] * len(data))))
            pick = set(rng.permutation(len(data))[:n_test].tolist())
            test = ProteinSet([p for k, p in enumerate(data.proteins) if k in pick], data.source)
            data = ProteinSet([p for k, p in enumerate(data.proteins) if k not in pick], data.source)
        ctx.log(
            f"{len(data)} training protein(s) ({', '.join(p.id for p in data.proteins)}), "
            f"{len(test) if test else 0} test"
        )
        return Splits(
            train=data,
            test=test,
            info={"n_train": len(data), "proteins": [p.id for p in data.proteins]},
        )

    def build(self, ctx: TrainContext, splits: Splits):
        from biodl.train.fit import seed_all

        kw = dict(ctx.recipe.model_defaults)
        kw.update(ctx.model_options)
        kw.update(n_maps=N_MAPS, n_pair=N_PAIR)
        seed_all(ctx.config.seed)
        model = ctx.recipe.build(**kw)
        o = ctx.options
        data = ContactData(
            min_sep=o["min_sep"],
            threshold=o["threshold"],
            identity=o["identity"],
            plm_iter=o["plm_iter"],
            psicov_iter=o["psicov_iter"],
            train_proteins=[p.id for p in splits.train.proteins],
        )
        meta = RunMeta(
            kind=self.name,
            recipe=ctx.recipe.name,
            task="binary",
            model_kwargs=kw,
            label_names=["contact"],
            data=asdict(data),
        )
        return model, meta

    def fit(self, ctx, model, meta, splits):
        from biodl.train.fit import FitResult

        model, shapes = fit_pconsc2(model, splits.train.proteins, ctx.options, ctx.config.seed, ctx.log)
        meta = meta.replace(model_kwargs={**meta.model_kwargs, "shapes": shapes})
        return model, FitResult(ctx.out, None, 0, {}, None), meta

    def after_fit(self, ctx, model, meta, splits):
        return {"proteins": [p.id for p in splits.train.proteins]}

    # ------------------------------------------------------------------ inference
    def read(self, meta, path, options, *, labelled, quiet=True):
        return read_proteins(path, self._opts(meta, options), labelled=labelled, quiet=quiet)

    def size(self, table) -> int:
        return len(table.proteins)

    def protein_maps(self, model, meta, table, device: str = "cpu") -> list[np.ndarray]:
        """The predicted probability map ``(L, L)`` of each protein."""
        import torch

        from biodl.train.predict import torch_device

        dev = torch_device(device)
        model = model.to(dev).eval()
        out = []
        with torch.no_grad():
            for p in table.proteins:
                z = model(torch.from_numpy(p.x)[None].to(dev))[0]
                out.append(torch.sigmoid(z).double().cpu().numpy())
        return out

    def score(self, model, meta, table, *, device, options, batch_size=256):
        from biodl.kinds.contacts.scoring import pair_index

        d = data_as(ContactData, meta.data)
        thr = options.get("threshold") or d.threshold
        outs, ys = [], []
        for p, m in zip(table.proteins, self.protein_maps(model, meta, table, device), strict=True):
            i, j = pair_index(p.L, d.min_sep)
            pr = np.clip(m[i, j], 1e-7, 1 - 1e-7)
            outs.append(np.log(pr) - np.log1p(-pr))
            ys.append(targets_of(p, d.min_sep, thr))
        out = np.concatenate(outs)[:, None].astype(np.float32)
        y = np.concatenate(ys)[:, None].astype(np.float32)
        if np.isnan(y).all():
            y = np.zeros((len(out), 0), np.float32)
        return out, y

    def _split(self, meta, table, values: np.ndarray) -> list[np.ndarray]:
        from biodl.kinds.contacts.scoring import pair_index

        d = data_as(ContactData, meta.data)
        maps, k = [], 0
        for p in table.proteins:
            i, j = pair_index(p.L, d.min_sep)
            m = np.full((p.L, p.L), np.nan)
            m[i, j] = m[j, i] = values[k : k + len(i)]
            k += len(i)
            maps.append(m)
        return maps

    def metrics(self, meta, outputs, targets, table):
        from sklearn.metrics import roc_auc_score

        from biodl.kinds.contacts.scoring import precision

        d = data_as(ContactData, meta.data)
        rows = []
        for p, m in zip(table.proteins, self._split(meta, table, outputs[:, 0]), strict=True):
            if p.distances is None:
                continue
            rows.append(precision(m, p.distances, d.threshold))
        out = {k: float(np.nanmean([r[k] for r in rows])) for k in rows[0]} if rows else {}
        if targets.size:
            y, s = targets[:, 0], outputs[:, 0]
            ok = ~np.isnan(y)
            if len(np.unique(y[ok])) == 2:
                out["auroc"] = float(roc_auc_score(y[ok], s[ok]))
        return {k: v for k, v in out.items() if np.isfinite(v)}

    def result_extras(self, meta, table, outputs, targets):
        from biodl.kinds.contacts.scoring import precision

        d = data_as(ContactData, meta.data)
        per = {}
        for p, m in zip(table.proteins, self._split(meta, table, outputs[:, 0]), strict=True):
            if p.distances is not None:
                per[p.id] = {"L": p.L, "meff": round(p.meff, 1), **precision(m, p.distances, d.threshold)}
        return {"per_protein": per}

    def frame(self, meta, table, outputs, targets=None) -> pd.DataFrame:
        from biodl.kinds.contacts.scoring import pair_index

        d = data_as(ContactData, meta.data)
        parts = []
        for p in table.proteins:
            i, j = pair_index(p.L, d.min_sep)
            df = pd.DataFrame({"id": p.id, "i": i + 1, "j": j + 1})
            if p.distances is not None:
                df["distance"] = p.distances[i, j]
            parts.append(df)
        df = pd.concat(parts, ignore_index=True)
        df.insert(3, "prob_contact", 1 / (1 + np.exp(-outputs[:, 0].astype(np.float64))))
        if targets is not None and targets.size:
            df["true_contact"] = targets[:, 0]
        return df

    def write_evaluation(self, out_dir, result, meta, table, outputs, targets):
        from biodl.kinds.base import write_results
        from biodl.kinds.contacts.io import write_rr

        od = write_results(out_dir, result, self.frame(meta, table, outputs, targets))
        for p, m in zip(table.proteins, self._split(meta, table, outputs[:, 0]), strict=True):
            prob = 1 / (1 + np.exp(-np.nan_to_num(m, nan=-50.0)))
            write_rr(Path(od) / f"{p.id}.rr", p.query, prob, min_sep=data_as(ContactData, meta.data).min_sep)
            if p.distances is not None:
                np.save(Path(od) / f"{p.id}.native.npy", p.distances.astype(np.float32))

    def evaluation_sections(self, meta):
        return []

    # ------------------------------------------------------------------ report
    def describe_data(self, meta):
        d = data_as(ContactData, meta.data)
        return {
            "training proteins": ", ".join(d.train_proteins),
            "input maps": ", ".join(d.maps),
            "contact": f"CB-CB < {d.threshold:g} A, pairs |i-j| >= {d.min_sep}",
        }

    def report_sections(self, run, model, meta, data, options):
        from biodl.kinds.contacts.report import contact_sections

        return contact_sections(run, meta)


def fit_pconsc2(model, proteins: list[ProteinMaps], options: dict[str, Any], seed: int, log=print):
    """Fit PconsC2's forests layer by layer (scikit-learn ``RandomForestClassifier``).

    Each layer trains on at most ``model.max_pairs`` pairs of the training proteins (all
    contacts up to half of them, the rest non-contacts drawn at random; pairs ``j - i >=
    min_sep`` with a known native distance). The map of layer ``k`` that layer ``k + 1`` sees
    on a training protein is cross-fitted (``model.inner_folds`` >= 2): the training proteins
    are split into that many groups and a group's maps come from a forest fitted on the other
    groups, so a training protein's map is as noisy as a new protein's. Without it, the
    layer's own forest gives them (out-of-bag votes for its training pairs), maps cleaner than
    any new protein will get. Returns the model (forests copied in) and the layer shapes for
    its ``model_kwargs``.
    """
    import warnings

    import torch
    from sklearn.ensemble import RandomForestClassifier

    from biodl.kinds.contacts.scoring import pair_index
    from biodl.models.contacts import TreeForest

    min_sep, thr = options["min_sep"], options["threshold"]
    rng = np.random.default_rng(seed)
    picks = []  # per protein: the flat indices (i L + j) of its training pairs and their labels
    for p in proteins:
        i, j = pair_index(p.L, min_sep)
        y = targets_of(p, min_sep, thr)
        ok = ~np.isnan(y)
        picks.append((i[ok] * p.L + j[ok], y[ok]))
    n_all = sum(len(f) for f, _ in picks)
    if n_all == 0:
        raise BiodlInputError("no residue pair of the training proteins has a known native distance")
    pos = [np.flatnonzero(y == 1) for _, y in picks]
    neg = [np.flatnonzero(y == 0) for _, y in picks]
    n_pos, n_neg = sum(map(len, pos)), sum(map(len, neg))
    if n_pos == 0 or n_neg == 0:
        raise BiodlInputError("the training proteins need both contacts and non-contacts")
    cap = int(model.max_pairs)
    take_pos = min(n_pos, cap // 2)
    take_neg = min(n_neg, cap - take_pos)
    chosen = []
    for k in range(len(picks)):
        a = rng.permutation(pos[k])[: int(round(take_pos * len(pos[k]) / n_pos))]
        b = rng.permutation(neg[k])[: int(round(take_neg * len(neg[k]) / n_neg))]
        chosen.append(np.sort(np.concatenate([a, b])))
    log(
        f"PconsC2: {model.n_layers} layers x {model.n_trees} trees on "
        f"{sum(map(len, chosen))} pairs ({n_all} known, {n_pos} contacts) of {len(proteins)} protein(s)"
    )
    xs = [torch.from_numpy(p.x) for p in proteins]
    prev: list[torch.Tensor | None] = [None] * len(proteins)
    shapes = []
    mf = model.max_features
    mf = float(mf) if isinstance(mf, str) and mf.replace(".", "", 1).isdigit() else mf
    n_groups = min(int(getattr(model, "inner_folds", 0)), len(proteins))
    group = rng.permutation(len(proteins)) % n_groups if n_groups >= 2 else None
    owner = np.concatenate([np.full(len(c), k) for k, c in enumerate(chosen)])

    def forest_fit(X, Y, oob: bool, state: int):
        rf = RandomForestClassifier(
            n_estimators=model.n_trees,
            min_samples_leaf=model.min_samples_leaf,
            max_features=mf,
            oob_score=oob and model.n_trees >= 2,
            n_jobs=max(1, torch.get_num_threads()),  # trees are seeded per tree: any n_jobs, one forest
            random_state=state,
        )
        with warnings.catch_warnings():  # a few pairs without out-of-bag votes keep their plain prediction
            warnings.simplefilter("ignore", UserWarning)
            rf.fit(X, Y)
        return rf

    def upper_rules(m: torch.Tensor, L: int) -> torch.Tensor:
        m = m.reshape(L, L)
        iu = torch.triu_indices(L, L, 1)
        m[iu[1], iu[0]] = m[iu[0], iu[1]]  # the upper triangle (training pairs i < j) rules
        return m.float()

    for layer in range(model.n_layers):
        feats = [model.layer_features(x, pv) for x, pv in zip(xs, prev, strict=True)]
        X = np.concatenate([f.numpy()[picks[k][0][chosen[k]]] for k, f in enumerate(feats)]).astype(
            np.float32
        )
        Y = np.concatenate([picks[k][1][chosen[k]] for k in range(len(proteins))]).astype(int)
        last = layer == model.n_layers - 1
        rf = forest_fit(X, Y, group is None and not last, seed * 1000 + layer)
        shape = list(TreeForest.shape_of(rf))
        forest = TreeForest(*shape)
        forest.set_forest(rf)
        model.layers[layer] = forest
        shapes.append(shape)
        if last:
            pass  # no layer after it: its maps of the training proteins are not needed
        elif group is not None:
            for g in range(n_groups):
                inside = np.isin(owner, np.flatnonzero(group == g))
                if len(np.unique(Y[~inside])) < 2:  # the other groups lack a class: use the full forest
                    sub = rf
                else:
                    sub = forest_fit(X[~inside], Y[~inside], False, seed * 1000 + layer + 100 * (g + 1))
                for k in np.flatnonzero(group == g):
                    m = sub.predict_proba(feats[k].numpy())[:, list(sub.classes_).index(1)]
                    prev[k] = upper_rules(torch.from_numpy(m), proteins[k].L)
        else:
            oob = getattr(rf, "oob_decision_function_", None)
            start = 0
            for k, p in enumerate(proteins):
                with torch.no_grad():
                    m = forest(feats[k]).double()
                n_k = len(chosen[k])
                if oob is not None:
                    o = oob[start : start + n_k, list(rf.classes_).index(1)]
                    rows = torch.from_numpy(picks[k][0][chosen[k]])
                    good = torch.from_numpy(np.isfinite(o))
                    m[rows[good]] = torch.from_numpy(o[np.isfinite(o)])
                start += n_k
                prev[k] = upper_rules(m, p.L)
        log(f"PconsC2 layer {layer + 1}/{model.n_layers}: {shape[0]} trees, up to {shape[1]} nodes")
    model.shapes = shapes
    return model, shapes


KIND = ContactsKind()
