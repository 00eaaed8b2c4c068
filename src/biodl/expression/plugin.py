"""``biodl train / evaluate / predict`` for the expression recipes ``adage`` and ``dgex``
(contract in :mod:`biodl.plugins`).

Data options (``--set KEY=VALUE``): ``orientation`` (``auto``, ``genes-x-samples``,
``samples-x-genes``), ``missing`` (``error`` / ``gene-mean``), ``duplicates`` (``error`` /
``mean`` / ``first``), ``layer`` and ``use_raw`` (h5ad), ``valid_fraction``, ``optimizer``
(``sgd`` / ``momentum`` / ``adam``). Model options may be given with ``--set`` too (``nodes``,
``corruption`` for ADAGE; ``hidden``, ``layers``, ``dropout``, ``activation`` for D-GEX).
D-GEX needs ``landmarks=FILE`` (one id per line or the D-GEX ``map_lm.txt``) and takes
``targets=FILE`` (default: every other gene).
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from biodl.errors import BiodlInputError
from biodl.expression.io import ExpressionMatrix, read_expression, write_table
from biodl.recipes import get_recipe
from biodl.train.engine import TrainConfig, export_model, load_model, read_model_meta, seed_all

PLUGIN = "biodl.expression.plugin"
DATA_KEYS = ("orientation", "missing", "duplicates", "layer", "use_raw")


def _log(msg: str, quiet: bool) -> None:
    if not quiet:
        from rich.console import Console

        Console(stderr=True).print(msg, highlight=False)


def read_data(path: Any, options: dict[str, Any], known_genes: list[str] | None = None) -> ExpressionMatrix:
    """Read an expression file with the data options in ``options``."""
    if path is None:
        raise BiodlInputError("no expression file given (DATA or --data)")
    kw = {k: options[k] for k in DATA_KEYS if options.get(k) not in (None, "")}
    return read_expression(path, known_genes=known_genes, **kw)


def _model_options(system: str, options: dict[str, Any], model_options: dict[str, Any]) -> dict[str, Any]:
    recipe = get_recipe(system)
    params = inspect.signature(recipe.factory).parameters
    kw = dict(recipe.model_defaults)
    for k, v in options.items():
        if k in params and v is not None and k not in ("n_genes", "n_landmarks", "n_targets"):
            kw[k] = v
    unknown = [k for k in model_options if k not in params]
    if unknown:
        raise BiodlInputError(
            f"unknown option(s) for {system}: {', '.join(unknown)} (known: "
            f"{', '.join(p for p in params if not p.startswith('n_'))})"
        )
    kw.update(model_options)
    return kw


def _valid_fraction(options: dict[str, Any]) -> float:
    v = options.get("valid_fraction")
    return 0.1 if v is None else float(v)


def _split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    n_val = int(round(fraction * n)) if fraction > 0 and n >= 10 else 0
    return perm[n_val:], perm[:n_val]


def train(
    system: str,
    out_dir,
    config: TrainConfig,
    *,
    data,
    valid=None,
    test=None,
    options: dict[str, Any] | None = None,
    model_options: dict[str, Any] | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """Train ADAGE or D-GEX on an expression file; writes ``OUT/model.pt`` and ``run.json``
    (ADAGE also ``network.txt.gz`` in the original format and ``signatures.tsv``)."""
    options = dict(options or {})
    model_options = dict(model_options or {})
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = get_recipe(system).name
    if name == "adage":
        return _train_adage(out, config, data, valid, test, options, model_options, quiet)
    if name == "dgex":
        return _train_dgex(out, config, data, valid, test, options, model_options, quiet)
    raise BiodlInputError(f"the expression plugin does not handle system {system!r}")


def _train_adage(out, config, data, valid, test, options, model_options, quiet) -> dict[str, Any]:
    from biodl.expression.adage import signatures, write_network
    from biodl.expression.training import fit_expression, write_run_json
    from biodl.models.adage import ADAGE

    kw = _model_options("adage", options, model_options)
    if isinstance(kw.get("nodes"), str):
        kw["nodes"] = [int(v) for v in str(kw["nodes"]).split(",")]
    m = read_data(data, options)
    _log(f"read {m.shape[0]} samples x {m.shape[1]} genes from {data}", quiet)
    x = torch.from_numpy(m.values)
    if valid is not None:
        v = read_data(valid, options).align_to(m.genes)
        tr_x, va_x = x, torch.from_numpy(v.values)
    else:
        tr, va = _split(len(x), _valid_fraction(options), config.seed)
        tr_x, va_x = x[tr], (x[va] if len(va) else None)
    seed_all(config.seed)
    model = ADAGE(m.shape[1], **kw)
    model.fit_scaling(tr_x)
    opt = options.get("optimizer") or "sgd"
    infos = []
    for layer in range(len(model.layers)):
        sub = out if len(model.layers) == 1 else out / f"layer{layer + 1}"
        infos.append(
            fit_expression(
                model,
                "adage",
                (model.scale(tr_x),),
                (model.scale(va_x),) if va_x is not None else None,
                sub,
                config,
                optimizer=opt,
                layer=layer,
            )
        )
    meta = {
        "recipe": "adage",
        "plugin": PLUGIN,
        "model_kwargs": {"n_genes": m.shape[1], **kw},
        "genes": m.genes,
        "task": "reconstruction",
        "data": str(data),
        "optimizer": opt,
        "n_train": int(len(tr_x)),
        "n_valid": int(len(va_x)) if va_x is not None else 0,
    }
    model_path = export_model(out / "model.pt", model, meta)
    write_network(model, out / "network.txt.gz")
    sig = signatures(model.gene_weights(), m.genes, float(options.get("n_sd") or 2.5))
    write_table(sig.set_index("node"), out / "signatures.tsv", index_label="node")
    summary = {
        "system": "adage",
        "task": "reconstruction",
        "model": str(model_path),
        "n_train": meta["n_train"],
        "n_valid": meta["n_valid"],
        "best_epoch": infos[-1]["best_epoch"],
        "epochs_run": infos[-1]["epochs_run"],
        "minutes": round(sum(i["seconds"] for i in infos) / 60, 2),
        "val_metrics": infos[-1]["val_metrics"],
    }
    if test is not None:
        summary["test_metrics"] = evaluate(model_path, test, options=options, quiet=True)["metrics"]
        summary["n_test"] = summary["test_metrics"].pop("n", None)
    write_run_json(out, config, meta, "finished", layers=infos, summary=summary)
    return summary


def _train_dgex(out, config, data, valid, test, options, model_options, quiet) -> dict[str, Any]:
    from biodl.expression.dgex import load_gene_list_option, split_landmarks, train_dgex
    from biodl.expression.training import write_run_json

    kw = _model_options("dgex", options, model_options)
    landmarks = load_gene_list_option(options.get("landmarks"), "landmarks")
    if not landmarks:
        raise BiodlInputError(
            "D-GEX needs --set landmarks=FILE (landmark gene ids, e.g. the D-GEX map_lm.txt)"
        )
    targets = load_gene_list_option(options.get("targets"), "targets")
    m = read_data(data, options, known_genes=landmarks)
    x, y, landmarks, targets = split_landmarks(m, landmarks, targets)
    _log(f"{m.shape[0]} samples: {len(landmarks)} landmarks -> {len(targets)} targets", quiet)
    if valid is not None:
        vx, vy, _, _ = split_landmarks(read_data(valid, options, known_genes=landmarks), landmarks, targets)
        x, y = np.concatenate([x, vx]), np.concatenate([y, vy])
        vf = len(vx) / len(x)
    else:
        vf = _valid_fraction(options)
    model, info = train_dgex(
        x, y, config, kw, valid_fraction=vf, out_dir=out, optimizer=options.get("optimizer") or "adam"
    )
    meta = {
        "recipe": "dgex",
        "plugin": PLUGIN,
        "model_kwargs": {"n_landmarks": len(landmarks), "n_targets": len(targets), **kw},
        "landmarks": landmarks,
        "targets": targets,
        "task": "regression",
        "data": str(data),
    }
    model_path = export_model(out / "model.pt", model, meta)
    summary = {
        "system": "dgex",
        "task": "regression",
        "model": str(model_path),
        "n_train": info["n_train"],
        "n_valid": info["n_valid"],
        "best_epoch": info["best_epoch"],
        "epochs_run": info["epochs_run"],
        "minutes": round(info["seconds"] / 60, 2),
        "val_metrics": info["val_metrics"],
    }
    if test is not None:
        r = evaluate(model_path, test, options=options, quiet=True)["metrics"]
        summary["n_test"] = r.pop("n", None)
        summary["test_metrics"] = r
    write_run_json(out, config, meta, "finished", summary=summary)
    return summary


def _load(model_path, device: str = "cpu"):
    meta = read_model_meta(model_path)
    if meta.get("recipe") not in ("adage", "dgex"):
        raise BiodlInputError(f"not an ADAGE / D-GEX model (recipe {meta.get('recipe')!r})", path=model_path)
    return load_model(model_path, device)


def evaluate(
    model_path, data, *, out_dir=None, device: str = "cpu", options=None, quiet: bool = False
) -> dict:
    """ADAGE: reconstruction cross-entropy (per sample, summed over genes) and MSE of the 0-1
    scaled input; D-GEX: MAE over targets (original scale), MSE and the per-target MAEs
    (``OUT/per_target_mae.tsv``)."""
    options = dict(options or {})
    model, meta = _load(model_path, device)
    if meta["recipe"] == "adage":
        m = read_data(data, options, known_genes=meta["genes"]).align_to(meta["genes"])
        with torch.no_grad():
            xs = model.scale(torch.from_numpy(m.values))
            logits = (
                model.layers[0](xs)
                if len(model.layers) == 1
                else model.layers[0].decode_logits(model.layers[0].encode(xs))
            )
            ce = torch.nn.functional.binary_cross_entropy_with_logits(logits, xs, reduction="none").sum(1)
            mse = ((torch.sigmoid(logits) - xs) ** 2).mean()
        metrics = {"reconstruction_ce": float(ce.mean()), "mse": float(mse), "n": m.shape[0]}
    else:
        from biodl.expression.dgex import dgex_predict, mae_per_target, split_landmarks

        m = read_data(data, options, known_genes=meta["landmarks"])
        x, y, _, targets = split_landmarks(m, meta["landmarks"], meta["targets"])
        if len(targets) != len(meta["targets"]):
            raise BiodlInputError(
                f"{len(meta['targets']) - len(targets)} of the model's target genes are missing "
                "from the data",
                path=data,
            )
        pred = dgex_predict(model, x)
        per = mae_per_target(pred, y)
        metrics = {"mae": float(per.mean()), "mse": float(((pred - y) ** 2).mean()), "n": m.shape[0]}
        if out_dir is not None:
            write_table(
                pd.DataFrame({"mae": per}, index=targets), Path(out_dir) / "per_target_mae.tsv", "gene"
            )
    if out_dir is not None:
        from biodl.io._util import atomic_write_text

        atomic_write_text(Path(out_dir) / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    return {"metrics": metrics, "n": metrics["n"]}


def predict(
    model_path, data, *, out=None, device: str = "cpu", options=None, quiet: bool = False
) -> pd.DataFrame:
    """ADAGE: node activities (``--set raw=true`` for raw activities); D-GEX: inferred target
    expression from the landmarks. One row per sample, input order kept."""
    options = dict(options or {})
    model, meta = _load(model_path, device)
    if meta["recipe"] == "adage":
        from biodl.expression.adage import activities

        m = read_data(data, options, known_genes=meta["genes"])
        df = activities(
            model, meta["genes"], m, scale=options.get("scale") or "model", raw=bool(options.get("raw"))
        )
    else:
        from biodl.expression.dgex import dgex_predict

        m = read_data(data, options, known_genes=meta["landmarks"])
        x = m.subset_genes(meta["landmarks"], what="landmark genes").values
        df = pd.DataFrame(dgex_predict(model, x), index=m.samples, columns=meta["targets"])
    df.index.name = "sample"
    if out is not None:
        write_table(df, out)
        _log(f"wrote {len(df)} rows to {out}", quiet)
    return df.reset_index()


__all__ = ["train", "evaluate", "predict", "read_data"]
