"""Gene expression matrices as a data kind: ADAGE (denoising autoencoders) and D-GEX (landmark
-> target inference).

Input: h5ad, PCL, TSV/CSV (plain or gzip) or GCT; the orientation is detected (or given).
ADAGE is trained greedily, layer by layer, on the per-gene 0-1 scaled profiles and writes the
network in ADAGE's text format and the node signatures; D-GEX is trained on standardised
landmarks and targets. Without ``--valid``, a seeded ``valid_fraction`` of the samples is held
out for early stopping. The stacked sparse autoencoder (``sparse-ae``, Chen et al. 2016) lives in
:mod:`biodl.kinds.expression.sparse_ae`; with ``--set encode=genes`` it encodes the genes.
"""

from __future__ import annotations

import os
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
DATA_KEYS = ("orientation", "missing", "duplicates", "layer", "use_raw")
_AUTOENCODERS = ("adage", "sparse-ae")  # read whole profiles, reconstruct them

OPTIONS = (
    Option("data", "path", None, "Expression file: h5ad, PCL, TSV/CSV(.gz) or GCT.", flag="DATA"),
    Option(
        "valid_file",
        "path",
        None,
        "Validation expression file (default: hold out valid_fraction).",
        flag="--valid",
    ),
    Option(
        "test_file", "path", None, "Held-out test expression file, evaluated after training.", flag="--test"
    ),
    Option(
        "orientation",
        "choice",
        None,
        "Rows are genes or samples (default: detected).",
        stages=_IO,
        choices=("auto", "genes-x-samples", "samples-x-genes"),
    ),
    Option(
        "missing",
        "choice",
        None,
        "Missing values: error, or gene-mean imputation.",
        stages=_IO,
        choices=("error", "gene-mean"),
    ),
    Option(
        "duplicates",
        "choice",
        None,
        "Duplicated gene ids: error, mean or first.",
        stages=_IO,
        choices=("error", "mean", "first"),
    ),
    Option(
        "layer",
        "str",
        None,
        "h5ad layer to read (default X; at evaluate / predict the layer the model was trained on, "
        "where the input has it; X reads .X).",
        stages=_IO,
    ),
    Option(
        "encode",
        "choice",
        None,
        "sparse-ae: what the autoencoder encodes, the samples (columns are its inputs; the default) or "
        "the genes (each gene's profile over the samples, as in the yeast bench). Evaluate / predict: "
        "the model's own setting (a different value is refused).",
        stages=_IO,
        choices=("samples", "genes"),
        recipes=("sparse-ae",),
    ),
    Option("use_raw", "bool", None, "h5ad: read .raw.", stages=_IO),
    Option(
        "valid_fraction",
        "float",
        0.1,
        "Seeded validation hold-out of samples without --valid.",
        flag="--valid-fraction",
        minimum=0,
    ),
    Option(
        "optimizer",
        "choice",
        None,
        "sgd (ADAGE's), momentum (SGD, momentum 0.9) or adam (the dgex default; the D-GEX paper's code used "
        "SGD with momentum 0.5, lr 3e-4, batch 200).",
        choices=("sgd", "momentum", "adam"),
    ),
    Option(
        "n_sd",
        "float",
        2.5,
        "ADAGE / sparse-ae signatures: inputs (genes; arrays with encode=genes) beyond this many sd of a "
        "unit's weights.",
        minimum=0,
        recipes=("adage", "sparse-ae"),
    ),
    Option(
        "finetune_epochs",
        "int",
        0,
        "sparse-ae: epochs of fine-tuning the whole stack after greedy layer-wise training.",
        minimum=0,
        recipes=("sparse-ae",),
    ),
    Option(
        "landmarks",
        "str",
        None,
        "D-GEX landmark genes: a file (one id per line, or map_lm.txt) or ids comma-separated.",
        recipes=("dgex",),
    ),
    Option("targets", "str", None, "D-GEX target genes (default: every other gene).", recipes=("dgex",)),
    Option(
        "test_fraction",
        "float",
        0.1,
        "D-GEX without --test: seeded test hold-out of samples (at least 1; 0: none), evaluated "
        "after training as in Chen et al.'s train / validation / test split.",
        minimum=0,
        recipes=("dgex",),
    ),
    Option(
        "raw",
        "bool",
        False,
        "ADAGE predict: raw node activities (x W, no sigmoid).",
        stages=("predict",),
        recipes=("adage",),
    ),
    Option(
        "scale",
        "choice",
        "model",
        "ADAGE predict: per-gene scaling of the model, of the data (self) or global.",
        stages=("predict",),
        choices=("model", "self", "global"),
        recipes=("adage",),
    ),
)


def _say_constant_inputs(ctx: TrainContext, train, names: list[str], rows: str, cols: str) -> None:
    """Inputs (``cols``: genes, or arrays with ``encode=genes``) of one value over the training
    ``rows`` carry nothing: all of them so is refused (an autoencoder trained on it learned a
    constant, advising more epochs); some are said. From per-column min and max (no copy)."""
    import torch

    x = torch.as_tensor(train)
    if not len(x):
        return
    lo, hi = torch.aminmax(x, dim=0)
    const = torch.nonzero(lo == hi).flatten().tolist()
    if len(const) == x.shape[1]:
        raise BiodlInputError(
            f"every one of the {x.shape[1]} {cols} has one value over the {len(x)} training {rows}: nothing "
            "to learn",
            path=ctx.options.get("data"),
        )
    if const:
        shown = ", ".join(str(names[j]) for j in const[:5]) + (" ..." if len(const) > 5 else "")
        ctx.log(
            f"note: {len(const)} of {x.shape[1]} {cols} have one value over the training {rows} ({shown}): "
            "they carry no signal"
        )


@dataclass
class ExpressionData:
    """``RunMeta.data`` of an expression model: its genes (ADAGE) or landmarks and targets
    (D-GEX), the optimiser, the training file."""

    genes: list[str] = field(default_factory=list)
    landmarks: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    optimizer: str = "sgd"
    data: str | None = None


@dataclass
class ExpressionTable:
    """Samples of an expression file as the model reads them: ``x`` (ADAGE: genes in the
    model's order; D-GEX: landmarks) and, for D-GEX with labels, ``y`` (targets)."""

    samples: list[str]
    x: np.ndarray
    y: np.ndarray | None
    source: str
    matrix: Any = None
    targets: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.samples)


def read_data(path: Any, options: dict[str, Any], known_genes: list[str] | None = None):
    """Read an expression file (or an in-memory AnnData / DataFrame) with the data options in
    ``options``."""
    from biodl.kinds.expression.io import read_expression

    if path is None:
        raise BiodlInputError("no expression file given (DATA or --data)")
    kw = {k: options[k] for k in DATA_KEYS if options.get(k) not in (None, "")}
    if not isinstance(path, (str, os.PathLike)):  # an AnnData or DataFrame (biodl.load(RUN).predict)
        from biodl.kinds.expression.io import matrix_from_memory as read_expression
    if options.get("encode") == "genes":  # genes are the examples, samples their inputs
        from biodl.kinds.expression.io import ExpressionMatrix

        m = read_expression(path, **kw)
        return ExpressionMatrix(
            np.ascontiguousarray(m.values.T), list(m.samples), list(m.genes), None, m.source
        )
    return read_expression(path, known_genes=known_genes, **kw)


def model_encode(meta: RunMeta, given: str | None) -> str:
    """What a sparse-ae model encodes (``samples`` or ``genes``), as it was trained: the
    default at evaluate / predict. A different explicit ``given`` value is refused, since the
    model's inputs are then the wrong axis of the matrix."""
    trained = (meta.options or {}).get("encode") or "samples"
    if given not in (None, "", trained):
        raise BiodlInputError(
            f"the model was trained with encode={trained} (its inputs are the "
            f"{'samples' if trained == 'genes' else 'genes'}), so it cannot read the data with "
            f"encode={given}; drop --set encode (the model's setting is used)"
        )
    return trained


def _anndata_parts(path: Any) -> tuple[set[str], bool] | None:
    """``(layer names, has .raw)`` of an AnnData input (an ``.h5ad`` file or an in-memory
    AnnData), or ``None`` for anything else (or an unreadable file, which its reader names)."""
    if type(path).__name__ == "AnnData":
        return set(path.layers), path.raw is not None
    if not str(path).lower().endswith(".h5ad"):
        return None
    try:
        import h5py

        with h5py.File(path, "r") as f:
            return (set(f["layers"]) if "layers" in f else set()), "raw" in f
    except (OSError, ValueError):
        return None


def _trained_matrix(meta: RunMeta, path: Any, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with the AnnData matrix the model was trained on (``layer``, ``use_raw``) as
    the default for an AnnData input that has it: a model trained on ``--set layer=counts`` read
    ``.X``, another scale, unless the layer was given again. An input without that matrix is
    read from ``.X``, with a warning. ``--set layer=X`` reads ``.X``."""
    from biodl.io._util import note

    trained = meta.options or {}
    parts = _anndata_parts(path)
    if parts is None or options.get("layer") not in (None, "") or options.get("use_raw"):
        return options
    layers, has_raw = parts
    if trained.get("use_raw"):
        if has_raw:
            note("[biodl] reading .raw, as the model was trained (--set layer=X reads .X)")
            return {**options, "use_raw": True}
        note("[biodl] warning: the model was trained on .raw, which this AnnData lacks: reading .X")
    elif trained.get("layer") not in (None, "", "X"):
        if trained["layer"] in layers:
            name = trained["layer"]
            note(f"[biodl] reading layer {name!r}, as the model was trained (--set layer=X reads .X)")
            return {**options, "layer": trained["layer"]}
        lacks = f"the model was trained on layer {trained['layer']!r}, which this AnnData lacks"
        note(f"[biodl] warning: {lacks}: reading .X")
    return options


def _nodes(kw: dict[str, Any]) -> dict[str, Any]:
    if isinstance(kw.get("nodes"), str):
        kw["nodes"] = [int(v) for v in str(kw["nodes"]).split(",")]
    return kw


class ExpressionKind(DataKind):
    """Expression matrices (samples x genes)."""

    name = "expression"
    title = "expression matrices"
    reads = "expression matrices (PCL, TSV/CSV, GCT, or AnnData .h5ad)"
    formats = frozenset(("HDF5",))
    options = OPTIONS
    report_on_train = True

    # ------------------------------------------------------------------ training
    def load(self, ctx: TrainContext) -> Splits:
        import torch

        from biodl.kinds.expression.dgex import dgex_split, load_gene_list_option, split_landmarks
        from biodl.train.datamodule import split_indices

        o, seed = ctx.options, ctx.config.seed
        if ctx.recipe.name in _AUTOENCODERS:
            m = read_data(o["data"], o)
            # with encode=genes the matrix was turned: its rows are genes, its columns arrays
            rows, cols = ("genes", "arrays") if o.get("encode") == "genes" else ("samples", "genes")
            ctx.log(f"read {m.shape[0]} {rows} x {m.shape[1]} {cols} from {o['data']}")
            x = torch.from_numpy(m.values)
            if o["valid_file"] is not None:
                tr_x, va_x = x, torch.from_numpy(read_data(o["valid_file"], o).align_to(m.genes).values)
            else:
                tr, va = split_indices(len(x), o["valid_fraction"], seed, min_items=10, sort=False)
                tr_x, va_x = x[tr], (x[va] if len(va) else None)
            if len(tr_x) < 2:
                raise BiodlInputError(
                    f"too few {rows} to train: {len(tr_x)} training {rows} (read {m.shape[0]} {rows} x "
                    f"{m.shape[1]} {cols}); an autoencoder needs at least 2",
                    path=o["data"],
                )
            _say_constant_inputs(ctx, tr_x, m.genes, rows, cols)
            test = self.read_adage(m.genes, o["test_file"], o) if o["test_file"] else None
            return Splits(
                train=tr_x,
                valid=va_x,
                test=test,
                info={"n_train": int(len(tr_x)), "n_valid": int(len(va_x)) if va_x is not None else 0},
                extra={"genes": m.genes},
            )
        landmarks = load_gene_list_option(o["landmarks"], "landmarks")
        if not landmarks:
            raise BiodlInputError(
                "D-GEX needs --set landmarks=FILE (landmark gene ids, e.g. the D-GEX map_lm.txt)"
            )
        targets = load_gene_list_option(o["targets"], "targets")
        m = read_data(o["data"], o, known_genes=landmarks)
        x, y, landmarks, targets = split_landmarks(m, landmarks, targets)
        ctx.log(f"{m.shape[0]} samples: {len(landmarks)} landmarks -> {len(targets)} targets")
        test = None
        if o["test_file"]:
            test = self.read_dgex(
                ExpressionData(landmarks=landmarks, targets=targets), o["test_file"], o, True
            )
        elif o["test_fraction"] > 0:
            rest, te = split_indices(len(x), o["test_fraction"], seed + 7, at_least_one=True, min_items=5)
            if len(te):
                samples = list(m.samples)
                test = ExpressionTable(
                    [samples[i] for i in te], x[te], y[te], f"{o['data']} (test hold-out)", targets=targets
                )
                x, y = x[rest], y[rest]
        if o["valid_file"] is not None:
            vx, vy, _, _ = split_landmarks(
                read_data(o["valid_file"], o, known_genes=landmarks), landmarks, targets
            )
            train, valid = (x, y), (vx, vy)
        else:
            tr, va = dgex_split(len(x), o["valid_fraction"], seed)
            train, valid = (x[tr], y[tr]), ((x[va], y[va]) if len(va) else None)
        if len(train[0]) < 2:
            raise BiodlInputError(
                f"too few samples to train: {len(train[0])} training sample(s) of {m.shape[0]} (D-GEX "
                "needs at least 2; is the orientation right?)",
                path=o["data"],
            )
        return Splits(
            train=train,
            valid=valid,
            test=test,
            info={"n_train": len(train[0]), "n_valid": len(valid[0]) if valid is not None else 0},
            extra={"landmarks": landmarks, "targets": targets},
        )

    def build(self, ctx: TrainContext, splits: Splits):
        from biodl.train.fit import seed_all

        r = ctx.recipe
        kw = _nodes(r.check_model_options({**r.model_defaults, **ctx.model_options}))
        opt = ctx.options["optimizer"] or ("sgd" if r.name == "adage" else "adam")
        seed_all(ctx.config.seed)
        if r.name in _AUTOENCODERS:
            mk = {"n_genes": len(splits.extra["genes"]), **kw}
            model = r.build(**mk)
            if getattr(model, "parametrization", None) == "fan-in":  # stored, not left to a default
                mk["fan_in_scale"] = float(model.fan_in_scale)
            model.fit_scaling(splits.train)
            data = ExpressionData(genes=splits.extra["genes"], optimizer=opt, data=str(ctx.options["data"]))
            return model, RunMeta(
                kind=self.name, recipe=r.name, task="reconstruction", model_kwargs=mk, data=asdict(data)
            )
        from biodl.kinds.expression.dgex import build_dgex

        lm, tg = splits.extra["landmarks"], splits.extra["targets"]
        mk = {"n_landmarks": len(lm), "n_targets": len(tg), **kw}
        model = build_dgex(*splits.train, kw, ctx.config.seed)
        data = ExpressionData(landmarks=lm, targets=tg, optimizer=opt, data=str(ctx.options["data"]))
        return model, RunMeta(
            kind=self.name, recipe=r.name, task="regression", model_kwargs=mk, data=asdict(data)
        )

    def fit(self, ctx, model, meta, splits):
        from biodl.kinds.expression.dgex import standardize
        from biodl.kinds.expression.training import fit_adage, fit_dgex

        if meta.recipe == "sparse-ae":
            from biodl.kinds.expression.sparse_ae import fit_run

            return fit_run(ctx, model, meta, splits)
        opt = meta.data["optimizer"]
        if meta.recipe == "adage":
            va = model.scale(splits.valid) if splits.valid is not None else None
            results = fit_adage(
                model, model.scale(splits.train), va, ctx.out, ctx.config, optimizer=opt, meta=meta
            )
            res = results[-1]
            res.seconds = round(sum(r.seconds for r in results), 2)
            meta.splits["layers"] = [
                {"best_epoch": r.best_epoch, "epochs_run": r.epochs_run, "val_metrics": r.val_metrics}
                for r in results
            ]
            return model, res, meta
        valid = standardize(model, *splits.valid) if splits.valid is not None else None
        res = fit_dgex(
            model, standardize(model, *splits.train), valid, ctx.out, ctx.config, optimizer=opt, meta=meta
        )
        return model.eval(), res, meta

    def after_fit(self, ctx, model, meta, splits):
        if meta.recipe == "sparse-ae":
            from biodl.kinds.expression.sparse_ae import after_fit

            return after_fit(ctx, model, meta)
        if meta.recipe != "adage":
            return {}
        from biodl.kinds.expression.adage import signatures, write_network
        from biodl.kinds.expression.io import write_table

        genes = meta.data["genes"]
        write_network(model, ctx.out / "network.txt.gz")
        sig = signatures(model.gene_weights(), genes, float(ctx.options["n_sd"]))
        write_table(sig.set_index("node"), ctx.out / "signatures.tsv", index_label="node")
        return {"layers": meta.splits.get("layers")}

    # ------------------------------------------------------------------ inference
    def read_adage(self, genes: list[str], path, options) -> ExpressionTable:
        m = read_data(path, options, known_genes=genes).align_to(genes)
        return ExpressionTable(list(m.samples), m.values, None, m.source, matrix=m)

    def read_dgex(self, d: ExpressionData, path, options, labelled: bool) -> ExpressionTable:
        from biodl.kinds.expression.dgex import split_landmarks

        m = read_data(path, options, known_genes=d.landmarks)
        if not labelled:
            x = m.subset_genes(d.landmarks, what="landmark genes").values
            return ExpressionTable(list(m.samples), x, None, m.source, targets=d.targets)
        x, y, _, targets = split_landmarks(m, d.landmarks, d.targets)
        if len(targets) != len(d.targets):
            raise BiodlInputError(
                f"{len(d.targets) - len(targets)} of the model's target genes are missing from the data",
                path=m.source,
            )
        return ExpressionTable(list(m.samples), x, y, m.source, targets=targets)

    def read(self, meta, path, options, *, labelled, quiet=True):
        d = data_as(ExpressionData, meta.data)
        options = _trained_matrix(meta, path, options)
        if meta.recipe == "sparse-ae":
            options = {**options, "encode": model_encode(meta, options.get("encode"))}
        if meta.recipe in _AUTOENCODERS:
            if not labelled:  # activities: genes matched by id, any order
                m = read_data(path, options, known_genes=d.genes)
                return ExpressionTable(list(m.samples), m.values, None, m.source, matrix=m)
            return self.read_adage(d.genes, path, options)
        return self.read_dgex(d, path, options, labelled)

    memory_inputs = (
        "an AnnData (cells x genes), or a pandas DataFrame of samples x genes or genes x samples "
        "(told apart by the model's genes)"
    )

    def from_memory(self, meta, data, options, *, labelled, labels=None):
        if labels is not None:
            raise BiodlInputError(
                "expression models take no labels=: an autoencoder is scored on reconstructing its "
                "input, and D-GEX on the data's own target genes"
            )
        return self.read(meta, data, options, labelled=labelled)

    def score(self, model, meta, table, *, device, options, batch_size=256):
        import torch
        from torch.utils.data import TensorDataset

        from biodl.train.predict import predict

        x = torch.from_numpy(np.ascontiguousarray(table.x, np.float32))
        if meta.recipe == "sparse-ae":  # the scaled input reconstructed through the whole stack
            model = model.cpu()
            xs = model.scale(x)
            out, _ = predict(
                model, TensorDataset(xs), batch_size=batch_size, device=device, forward=model.reconstruct
            )
            return out, xs.numpy()
        if meta.recipe == "adage":  # reconstruction logits of the last layer's input, and that input
            model = model.cpu()
            xs = model.scale(x)
            target = model.layer_input(xs, len(model.layers) - 1).detach()
            out, _ = predict(model, TensorDataset(xs), batch_size=batch_size, device=device)
            return out, target.numpy()
        out, _ = predict(model, TensorDataset(x), batch_size=batch_size, device=device, forward=model.infer)
        return out, (table.y if table.y is not None else np.zeros((len(x), 0), np.float32))

    def metrics(self, meta, outputs, targets, table):
        """ADAGE: reconstruction cross-entropy (per sample, summed over inputs) and MSE of the 0-1
        scaled input; D-GEX: MAE over targets (original scale) and MSE."""
        import torch

        if meta.recipe in _AUTOENCODERS:
            lg, t = torch.from_numpy(outputs), torch.from_numpy(targets)
            ce = torch.nn.functional.binary_cross_entropy_with_logits(lg, t, reduction="none").sum(1)
            return {
                "reconstruction_ce": float(ce.mean()),
                "mse": float(((torch.sigmoid(lg) - t) ** 2).mean()),
            }
        from biodl.kinds.expression.dgex import mae_per_target

        return {
            "mae": float(mae_per_target(outputs, targets).mean()),
            "mse": float(((outputs - targets) ** 2).mean()),
        }

    def frame(self, meta, table, outputs, targets=None) -> pd.DataFrame:
        if meta.recipe in _AUTOENCODERS:
            import torch

            ce = torch.nn.functional.binary_cross_entropy_with_logits(
                torch.from_numpy(outputs), torch.from_numpy(targets), reduction="none"
            ).sum(1)
            from biodl.kinds.expression.sparse_ae import row_label  # gene: sparse-ae with encode=genes

            return pd.DataFrame({row_label(meta): table.samples, "reconstruction_ce": ce.numpy()})
        df = pd.DataFrame(outputs, columns=meta.data["targets"])
        df.insert(0, "sample", table.samples)
        return df

    def write_evaluation(self, out_dir, result, meta, table, outputs, targets) -> None:
        """``metrics.json``, ``predictions.tsv``; D-GEX also ``per_target_mae.tsv``."""
        from biodl.kinds.base import write_results
        from biodl.kinds.expression.dgex import mae_per_target

        write_results(out_dir, result, self.frame(meta, table, outputs, targets))
        if meta.recipe == "dgex":
            from biodl.kinds.expression.io import write_table

            per = pd.DataFrame({"mae": mae_per_target(outputs, targets)}, index=table.targets)
            write_table(per, Path(out_dir) / "per_target_mae.tsv", "gene")

    def predict_frame(self, model, meta, table, *, device, options, batch_size=256):
        """ADAGE: node activities (``--set raw=true``: raw activities); D-GEX: inferred target
        expression; sparse-ae: every layer's unit activities. One row per sample (sparse-ae with
        encode=genes: per gene, the id column named ``gene``), input order kept."""
        if meta.recipe == "sparse-ae":
            from biodl.kinds.expression.sparse_ae import layer_activities, row_label

            inputs = (
                "model arrays (encode=genes)"
                if (meta.options or {}).get("encode") == "genes"
                else "model genes"
            )
            x = (
                table.matrix.align_to(meta.data["genes"], what=inputs).values
                if table.matrix is not None
                else table.x
            )
            df = layer_activities(model, x, table.samples)
            df.index.name = row_label(meta)
            return df.reset_index()
        if meta.recipe == "adage":
            from biodl.kinds.expression.adage import activities

            df = activities(
                model.cpu(),
                meta.data["genes"],
                table.matrix,
                scale=options.get("scale") or "model",
                raw=bool(options.get("raw")),
            )
            df.index.name = "sample"
            return df.reset_index()
        outputs, _ = self.score(model, meta, table, device=device, options=options, batch_size=batch_size)
        return self.frame(meta, table, outputs)

    # ------------------------------------------------------------------ report
    def output_names(self, meta):
        if meta.recipe == "dgex":  # the inferred target genes
            return [str(g) for g in (meta.data.get("targets") or [])]
        return super().output_names(meta)

    def describe_data(self, meta):
        d = data_as(ExpressionData, meta.data)
        if meta.recipe == "sparse-ae":
            from biodl.kinds.expression.sparse_ae import describe

            return describe(meta)
        rows: dict[str, Any] = {"training file": d.data, "optimizer": d.optimizer}
        if meta.recipe == "adage":
            rows.update(
                genes=len(d.genes),
                nodes=meta.model_kwargs.get("nodes"),
                corruption=meta.model_kwargs.get("corruption"),
            )
        else:
            rows.update(landmarks=len(d.landmarks), targets=len(d.targets))
        return rows

    def report_sections(self, run, model, meta, data, options):
        """ADAGE: node signatures (high-weight genes per node) and the distribution of gene
        weights; D-GEX: the per-target MAE of the test set."""
        from biodl.report.html import Section

        secs = []
        if meta.recipe == "sparse-ae":
            from biodl.kinds.expression.sparse_ae import report_sections

            return report_sections(run, model, meta)
        if meta.recipe == "adage":
            from biodl.kinds.expression.adage import signatures

            n_sd = float(meta.options.get("n_sd") or 2.5)
            sig = signatures(model.gene_weights(), meta.data["genes"], n_sd)
            sizes = sig.groupby(["node", "side"], sort=False).agg(
                genes=("gene", "size"), top=("gene", "first")
            )
            secs.append(
                Section(
                    "Node signatures",
                    text=f"High-weight genes of every node: weight more than {n_sd:g} standard deviations "
                    "from the node's mean weight, on the positive and the negative side (Tan et al. 2016): "
                    "genes per signature and "
                    f"the highest-weight gene. {len(sizes)} signatures; "
                    "all genes in signatures.tsv.",
                    table=sizes.reset_index().head(60),
                    images=[
                        (self._weight_plot(model, run / "gene_weights.png"), "Gene weights of every node")
                    ],
                )
            )
        elif (run / "test" / "per_target_mae.tsv").exists():
            per = pd.read_csv(run / "test" / "per_target_mae.tsv", sep="\t")
            secs.append(
                Section(
                    "Per-target error (held-out test)",
                    text="Mean absolute error of each target gene over the test samples (original scale), "
                    f"the metric of Chen et al. 2016: the {min(20, len(per))} worst-inferred of {len(per)} "
                    "targets (all in test/per_target_mae.tsv).",
                    table=per.sort_values("mae", ascending=False).head(20).reset_index(drop=True),
                )
            )
        return secs

    @staticmethod
    def _weight_plot(model, path: Path) -> Path:
        from biodl.report.plots import _new_figure, _save_figure

        w = model.gene_weights().detach().cpu().numpy()
        fig = _new_figure(6.0, 3.2)
        ax = fig.subplots()
        ax.hist(w.ravel(), bins=80, color="0.35")
        ax.set_xlabel("gene weight")
        ax.set_ylabel("genes x nodes")
        ax.set_title(f"{w.shape[0]} genes x {w.shape[1]} nodes", fontsize=9)
        return _save_figure(fig, path)


KIND = ExpressionKind()
