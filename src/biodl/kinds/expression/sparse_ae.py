"""The stacked sparse autoencoder recipe (``sparse-ae``, Chen, Cai, Chen & Lu 2016) in the
expression kind: greedy layer-wise training through the one runner (:func:`biodl.train.fit`),
optional fine-tuning of the whole stack, every layer's activities, and which hidden units
respond to which class of samples (the paper's hierarchy reading).

The network is :class:`biodl.models.sparse_ae.StackedSparseAE`. Rows of the expression matrix
are what the autoencoder encodes: for the yeast bench (``bench/yeast_ae.py``) the rows are the
2,467 genes and the 79 arrays are the inputs (``--set orientation=samples-x-genes``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from biodl.train.checkpoint import RunMeta
from biodl.train.fit import FitResult, TrainConfig, fit, stage_config

RECIPE = "sparse-ae"


def fit_sparse_ae(
    model,
    x_train: torch.Tensor,
    x_valid: torch.Tensor | None,
    out_dir: str | Path,
    config: TrainConfig,
    optimizer: str = "adam",
    finetune_epochs: int = 0,
    meta: RunMeta | None = None,
) -> list[FitResult]:
    """Train a :class:`~biodl.models.sparse_ae.StackedSparseAE` on *scaled* input.

    Layer ``i`` is trained greedily on the activities of the (frozen) layers below it, in
    ``out_dir/layer<i+1>``; with ``finetune_epochs > 0`` the whole stack is then trained for that
    many epochs on the reconstruction of the input (``out_dir/finetune``). Every stage has its
    own checkpoints (a killed run resumes the stage it was in). With a validation set each stage
    keeps its epoch of lowest ``val_loss``, without one its final epoch.

    Returns
    -------
    list of FitResult
        One per layer, then the fine-tuning one.
    """
    from dataclasses import replace

    from biodl.kinds.expression.training import _datamodule, _plan

    out = Path(out_dir)
    valid = (x_valid,) if x_valid is not None else None
    stages = [(i, out / f"layer{i + 1}", config) for i in range(len(model.layers))]
    if finetune_epochs > 0:
        stages.append((-1, out / "finetune", replace(config, max_epochs=int(finetune_epochs))))
    results = []
    trained = False
    for layer, sub, cfg in stages:
        model.active_layer = layer
        for i, ae in enumerate(model.layers):
            ae.requires_grad_(layer < 0 or i == layer)
        cfg = stage_config(cfg, trained)  # after a stage that trained, the later ones start over
        plan = _plan(model, "reconstruction", cfg, optimizer)
        flag = "--set finetune_epochs" if layer < 0 else "--epochs"
        res = fit(plan, _datamodule((x_train,), valid, cfg), sub, cfg, None, epochs_option=flag)
        trained = trained or res.trained
        results.append(res)
    model.requires_grad_(True)
    model.active_layer = len(model.layers) - 1
    return results


def row_label(meta) -> str:
    """The name of the id column of a sparse-ae model's outputs: ``gene`` when it encodes genes
    (``--set encode=genes``: each row is a gene), else ``sample``."""
    return "gene" if (meta.options or {}).get("encode") == "genes" else "sample"


@torch.no_grad()
def layer_activities(model, x: np.ndarray | torch.Tensor, samples: list[str] | None = None) -> pd.DataFrame:
    """Activities of every hidden unit of every layer from *unscaled* input ``(n, n_genes)``.

    Returns
    -------
    DataFrame
        ``(n, sum(nodes))``, columns ``L1U1`` ... (layer, unit; 1-based), index ``samples``.
    """
    model = model.cpu().eval()
    t = torch.as_tensor(np.asarray(x, np.float32))
    acts = model.encode_all(model.scale(t.to(model.input_mean.dtype)))
    cols = [f"L{k + 1}U{j + 1}" for k, a in enumerate(acts) for j in range(a.shape[1])]
    return pd.DataFrame(torch.cat(acts, 1).double().numpy(), index=samples, columns=cols)


def unit_class_response(acts: pd.DataFrame, labels: pd.Series | np.ndarray | list) -> pd.DataFrame:
    """How each hidden unit responds to each class: one row per (unit, class) with the mean
    activation in the class and outside it, their difference, and the AUROC of the activation
    separating the class from the rest (0.5: no response; 1: on in the class, off elsewhere;
    0: the reverse).

    Parameters
    ----------
    acts
        ``(n_samples, n_units)`` activities (columns ``L<k>U<j>``, see :func:`layer_activities`).
    labels
        Class of every sample.
    """
    from sklearn.metrics import roc_auc_score

    y = np.asarray(labels)
    rows = []
    for unit in acts.columns:
        a = acts[unit].to_numpy()
        layer = int(unit[1 : unit.index("U")]) if unit.startswith("L") and "U" in unit else 1
        for c in pd.unique(y):
            inside = y == c
            auc = roc_auc_score(inside, a) if 0 < inside.sum() < len(y) else float("nan")
            rows.append(
                {
                    "layer": layer,
                    "unit": unit,
                    "class": c,
                    "mean_in": float(a[inside].mean()),
                    "mean_out": float(a[~inside].mean()),
                    "difference": float(a[inside].mean() - a[~inside].mean()),
                    "auroc": float(auc),
                }
            )
    return pd.DataFrame(rows)


def top_units(response: pd.DataFrame, k: int = 3) -> pd.DataFrame:
    """Per layer and class, the ``k`` units that respond most (AUROC furthest from 0.5,
    ties by |difference|), with the sign of the response (``on`` / ``off``)."""
    r = response.assign(
        strength=(response["auroc"] - 0.5).abs(),
        direction=np.where(response["auroc"] >= 0.5, "on", "off"),
    )
    r = r.sort_values(["layer", "class", "strength"], ascending=[True, True, False])
    return r.groupby(["layer", "class"], sort=False).head(k).drop(columns="strength").reset_index(drop=True)


def unit_parents(model, unit: str, k: int = 2) -> list[tuple[str, float]]:
    """The ``k`` units of the layer below ``unit`` (``L<layer>U<j>``, layer >= 2) with the largest
    |encoder weight| into it, as ``(unit, weight)``."""
    layer, j = (int(v) for v in unit[1:].split("U"))
    if layer < 2:
        raise ValueError(f"{unit} is in the first layer: its inputs are the data's columns")
    w = model.layers[layer - 1].weight.detach()[:, j - 1]
    order = torch.argsort(w.abs(), descending=True)[:k].tolist()
    return [(f"L{layer - 1}U{i + 1}", float(w[i])) for i in order]


def read_class_labels(path: str | Path) -> pd.Series:
    """Class labels of samples (genes, in the yeast bench), indexed by identifier.

    Reads Orange's ``.tab`` format (three header lines: names, types, roles; the column of role
    ``class`` is the label, the first ``meta`` column the identifier; "?" is missing), or a TSV /
    CSV with columns ``id`` (or ``gene`` / ``sample``) and ``class`` (or ``label``). Rows without a
    class are dropped; an empty or duplicated identifier, a file without those columns or
    without labelled rows raises :class:`~biodl.errors.BiodlInputError` naming the file (and line).
    """
    import csv

    from biodl.errors import BiodlInputError
    from biodl.io._util import check_file, guess_separator, open_text

    p = check_file(path)
    with open_text(p) as fh:
        text = fh.read().splitlines()
    if not text:
        raise BiodlInputError("empty file, expected class labels", path=p)
    sep = guess_separator(p, text[0]) or "\t"
    rows = list(csv.reader(text, delimiter=sep))
    names = [c.strip() for c in rows[0]]
    if len(rows) >= 3 and any(c.strip() == "class" for c in rows[2]):  # Orange .tab
        roles = [c.strip() for c in rows[2]] + [""] * len(names)
        label_col = roles.index("class")
        metas = [i for i, r in enumerate(roles[: len(names)]) if r == "meta"]
        if not metas:
            raise BiodlInputError("Orange .tab file without a meta (identifier) column", path=p, record=3)
        id_col, first = metas[0], 3
    else:
        low = [n.lower() for n in names]
        id_col = next((low.index(n) for n in ("id", "gene", "sample") if n in low), None)
        label_col = next((low.index(n) for n in ("class", "label") if n in low), None)
        if id_col is None or label_col is None:
            raise BiodlInputError(
                f"expected columns id (or gene / sample) and class (or label), found {', '.join(names)}",
                path=p,
                record=1,
            )
        first = 1
    ids, labels, seen = [], [], {}
    for line, row in enumerate(rows[first:], first + 1):
        if not row or not any(c.strip() for c in row):
            continue
        if max(id_col, label_col) >= len(row):
            raise BiodlInputError(
                f"{len(row)} fields, expected at least {max(id_col, label_col) + 1}", p, line
            )
        gid, lab = row[id_col].strip(), row[label_col].strip()
        if not gid:
            raise BiodlInputError("empty identifier", path=p, record=line)
        if gid in seen:
            raise BiodlInputError(f"identifier {gid!r} repeated (first on line {seen[gid]})", p, line)
        seen[gid] = line
        if lab in ("", "?", "NA", "nan"):
            continue
        ids.append(gid)
        labels.append(lab)
    if not ids:
        raise BiodlInputError("no labelled rows", path=p)
    return pd.Series(labels, index=pd.Index(ids, name="id"), name="class")


def fit_run(ctx, model, meta: RunMeta, splits):
    """:meth:`ExpressionKind.fit` of ``sparse-ae``: greedy layer-wise training (then the optional
    fine-tuning, ``--set finetune_epochs=N``) on the scaled training profiles; per-stage outcomes
    go to ``run.json`` (``splits.layers``)."""
    va = model.scale(splits.valid) if splits.valid is not None else None
    results = fit_sparse_ae(
        model,
        model.scale(splits.train),
        va,
        ctx.out,
        ctx.config,
        optimizer=meta.data["optimizer"],
        finetune_epochs=int(ctx.options.get("finetune_epochs") or 0),
    )
    res = results[-1]
    res.seconds = round(sum(r.seconds for r in results), 2)
    meta.splits["layers"] = [
        {"best_epoch": r.best_epoch, "epochs_run": r.epochs_run, "val_metrics": r.val_metrics}
        for r in results
    ]
    return model.eval(), res, meta


def after_fit(ctx, model, meta: RunMeta) -> dict[str, Any]:
    """``signatures.tsv``: each first-layer unit's high-weight inputs (``n_sd`` sd from the unit's
    mean weight, as ADAGE's signatures)."""
    from biodl.kinds.expression.adage import signatures
    from biodl.kinds.expression.io import write_table

    sig = signatures(model.gene_weights(), meta.data["genes"], float(ctx.options.get("n_sd") or 2.5))
    if (meta.options or {}).get("encode") == "genes":  # the inputs are the arrays, not genes
        sig = sig.rename(columns={"gene": "array"})
    write_table(sig.set_index("node"), ctx.out / "signatures.tsv", index_label="node")
    return {"layers": meta.splits.get("layers")}


def report_sections(run: Path, model, meta: RunMeta) -> list:
    """The layers (units, sparsity target) and the first layer's input signatures."""
    from biodl.kinds.expression.adage import signatures
    from biodl.report.html import Section

    layers = pd.DataFrame(
        {
            "layer": range(1, len(model.nodes) + 1),
            "units": model.nodes,
            "inputs": [model.n_genes, *model.nodes[:-1]],
            "sparsity target": model.sparsity,
        }
    )
    n_sd = float(meta.options.get("n_sd") or 2.5)
    sig = signatures(model.gene_weights(), meta.data["genes"], n_sd)
    sizes = sig.groupby(["node", "side"], sort=False).agg(inputs=("gene", "size"), top=("gene", "first"))
    return [
        Section(
            "Hidden layers",
            text="Stacked sparse autoencoder (Chen et al. 2016): sigmoid units trained greedily, layer by "
            f"layer, toward a mean activation of {model.sparsity} "
            f"(KL penalty weight {model.sparsity_weight}). "
            "`biodl predict` writes every unit's activity (columns L<layer>U<unit>).",
            table=layers,
        ),
        Section(
            "First-layer signatures",
            text=f"Inputs with encoder weight more than {n_sd:g} sd from the unit's mean weight, positive "
            f"and negative side: inputs per signature and the strongest one. {len(sizes)} signatures; all in "
            "signatures.tsv.",
            table=sizes.reset_index().head(60),
        ),
    ]


def describe(meta: RunMeta) -> dict[str, Any]:
    """Rows of the report's data table for a sparse-ae run."""
    mk = meta.model_kwargs
    return {
        "training file": meta.data.get("data"),
        "optimizer": meta.data.get("optimizer"),
        "inputs": len(meta.data.get("genes", [])),
        "nodes": mk.get("nodes"),
        "sparsity target / weight": f"{mk.get('sparsity')} / {mk.get('sparsity_weight')}",
        "scaling": mk.get("scaling"),
    }
