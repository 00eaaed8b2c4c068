"""Molecules as a data kind: neural graph fingerprints and circular-fingerprint baselines.

Input: a CSV/TSV table with a SMILES column (or an SDF) and target column(s), validated by
RDKit. Without ``--test`` a seeded ``test_fraction`` is held out; without ``--valid`` a seeded
``valid_fraction`` of the rest. ``--set search_trials=N`` runs the paper's protocol: a random
search scored on validation (:mod:`biodl.kinds.molecules.search`, each trial trained by the one
runner), then the chosen configuration refitted on train + validation for the same epoch
budget and its final weights exported.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from biodl.errors import BiodlInputError
from biodl.kinds.base import DataKind, Splits, TrainContext, prediction_frame, write_table
from biodl.kinds.molecules.featurize import collate_molecules
from biodl.options import Option
from biodl.train.checkpoint import RunMeta, data_as

MOLECULE_TASKS = ("regression", "binary", "multilabel")
_IO = ("train", "evaluate", "predict")

OPTIONS = (
    Option("data", "path", None, "Training table (CSV/TSV with SMILES) or SDF.", flag="DATA"),
    Option("valid_file", "path", None, "Validation file (default: hold out valid_fraction).", flag="--valid"),
    Option("test_file", "path", None, "Held-out test file (default: hold out test_fraction).", flag="--test"),
    Option(
        "target",
        "strs",
        None,
        "Target column(s), comma-separated, or all (default: every numeric column).",
        flag="--target",
        stages=("train", "evaluate"),
    ),
    Option(
        "task",
        "choice",
        None,
        "regression, binary or multilabel (default: from the target values).",
        flag="--task",
        choices=MOLECULE_TASKS,
    ),
    Option(
        "skip_invalid",
        "bool",
        False,
        "Drop molecules RDKit rejects (each reported); predict keeps them with "
        "an empty score and the reason.",
        flag="--skip-invalid",
        stages=_IO,
    ),
    Option("smiles_col", "str", None, "SMILES column (default: smiles-like name).", stages=_IO),
    Option("id_col", "str", None, "Identifier column (default: id-like name).", stages=_IO),
    Option(
        "valid_fraction",
        "float",
        0.1,
        "Seeded validation hold-out without --valid.",
        flag="--valid-fraction",
        minimum=0,
    ),
    Option("test_fraction", "float", 0.1, "Seeded test hold-out without --test (0: none).", minimum=0),
    Option("lr_decay", "bool", False, "Cosine learning-rate decay over the epochs."),
    Option(
        "threads", "int", 1, "torch CPU threads while training (small graphs are fastest on one).", minimum=1
    ),
    Option("report", "bool", True, "Write OUT/report.html after training."),
    Option(
        "search_trials",
        "int",
        0,
        "The paper's protocol: random search of N configurations, refit on train + validation.",
        minimum=0,
    ),
    Option("search_seed", "int", None, "Seed of the search draws (default: --seed)."),
)


@dataclass
class MoleculeData:
    """``RunMeta.data`` of a molecule model."""

    smiles_col: str | None = None
    id_col: str | None = None
    train_file: str | None = None
    n_invalid: int = 0


def guess_task(targets: np.ndarray) -> str:
    """``binary`` / ``multilabel`` when every known value is 0 or 1, else ``regression``."""
    vals = targets[~np.isnan(targets)]
    if vals.size and np.isin(vals, (0.0, 1.0)).all():
        return "binary" if targets.shape[1] == 1 else "multilabel"
    return "regression"


def read_table(
    path, options: dict[str, Any], target, require_targets: bool, quiet: bool, keep_invalid: bool = False
):
    """Read a molecule file with the kind's options (invalid molecules dropped and reported
    with ``skip_invalid``, else the first one is an error)."""
    from biodl.kinds.base import log
    from biodl.kinds.molecules.io import read_molecules

    skip = bool(options.get("skip_invalid"))
    table = read_molecules(
        path,
        target=target,
        smiles_col=options.get("smiles_col"),
        id_col=options.get("id_col"),
        require_targets=require_targets,
        skip_invalid=skip,
        keep_invalid=keep_invalid and skip,
    )
    if table.invalid and not keep_invalid:
        first = table.invalid[0]
        log(
            f"[biodl] {path}: dropped {len(table.invalid)} invalid molecule(s) of "
            f"{len(table) + len(table.invalid)} (first: {first.where}: {first.reason})",
            quiet,
        )
    elif table.invalid:  # predict: kept in place, unscored, the reason in 'problem' (predict_frame)
        n = len(table.invalid)
        log(_unscored_note(path, table.invalid[:2], n, len(table) + n), quiet)
    return table


def _unscored_note(path, first: list, n_bad: int, n: int) -> str:
    """The note on the ``n_bad`` of ``n`` molecules predict leaves unscored (``first``: the
    first two of them, their places and reasons shown)."""
    shown = "; ".join(f"{b.where}: {b.reason}" for b in first) + ("; ..." if n_bad > 2 else "")
    return (
        f"[biodl] note: {n_bad} of {n} molecule(s) in {path} could not be read and are left "
        f"unscored (empty prediction; the reason is in the output's 'problem' column): {shown}"
    )


def _target(value):
    if value is None:
        return None
    return value[0] if len(value) == 1 else value


def dataset_for(meta: RunMeta, table):
    """The network input of ``table`` (graphs or Morgan bits, per the recipe) as a dataset."""
    from biodl.kinds.molecules.data import MoleculeDataset, featurize_for

    return MoleculeDataset(featurize_for(meta.model_kwargs, meta.recipe, table.mols), table.targets)


def _concat(datasets: list):
    from torch.utils.data import ConcatDataset

    return datasets[0] if len(datasets) == 1 else ConcatDataset(datasets)


def _trial_record(search: dict[str, Any], mopts: dict[str, Any]) -> dict[str, Any]:
    import json

    return json.loads(
        json.dumps({"trial": search["trial"], "model": mopts, "train": search["train_options"]}, default=str)
    )


def _refit_afresh_if_another_trial(ctx: TrainContext, search, mopts) -> None:
    """Before the search's final refit (in ``OUT`` itself): when ``OUT/checkpoints`` holds the
    refit of another trial (a search extended with more ``--epochs`` may choose anew), remove
    it, so that the refit starts from scratch. Resumed, the old winner's weights went on training
    under the new winner's settings (or, of other shapes, the run could not resume at all)."""
    import json
    import shutil

    from biodl.kinds.base import primary_process
    from biodl.train.checkpoint import atomic_json

    # (every DDP rank decides alike and removes alike: none may resume what another removes)
    ck = ctx.out / "checkpoints"
    now = _trial_record(search, mopts)
    try:
        before = json.loads((ck / "refit_trial.json").read_text())
    except (OSError, ValueError):
        before = None
    if ck.exists() and before != now:  # (a refit killed midway resumes: its record is written first)
        shutil.rmtree(ck, ignore_errors=True)
        (ctx.out / "history.csv").unlink(missing_ok=True)
        if primary_process():
            ctx.log(
                f"the search chose trial {search['trial'] + 1}"  # counted from 1, as the search's lines
                + (
                    f" (the final model was trained with trial {int(before['trial']) + 1})"
                    if before
                    else " (the refit of an earlier biodl has no record of its trial)"
                )
                + ": its refit starts from scratch"
            )
    ck.mkdir(parents=True, exist_ok=True)
    atomic_json(now, ck / "refit_trial.json")


class MoleculesKind(DataKind):
    """SMILES tables and SDF files."""

    name = "molecules"
    title = "molecules"
    report_data = "molecules searched for the substructures of fingerprint bits (neural-fp)"
    reads = "molecules as SMILES tables (CSV/TSV/.smi) or SDF"
    formats = frozenset(())
    options = OPTIONS
    collate_fn = staticmethod(collate_molecules)
    report_on_train = True
    supports_ensemble = True

    # ------------------------------------------------------------------ training
    def load(self, ctx: TrainContext) -> Splits:
        from biodl.train.datamodule import split_indices

        o, seed = ctx.options, ctx.config.seed
        if o["data"] is None:
            raise BiodlInputError("no training file given (DATA or --data)")
        table = read_table(o["data"], o, _target(o["target"]), True, ctx.quiet)
        task = o["task"] or guess_task(table.targets)
        if task == "binary" and table.targets.shape[1] > 1:
            task = "multilabel"
        names, n_invalid = table.target_names, len(table.invalid)
        test_t, test_source = None, None
        if o["test_file"] is not None:
            test_t, test_source = read_table(o["test_file"], o, names, True, ctx.quiet), str(o["test_file"])
        elif o["test_fraction"] > 0:
            tr, te = split_indices(len(table), o["test_fraction"], seed)
            table, test_t = table.subset(tr), table.subset(te)
            test_source = f"held out from {o['data']} (seed {seed})"
        if o["valid_file"] is not None:
            train_t, valid_t = table, read_table(o["valid_file"], o, names, True, ctx.quiet)
        else:
            tr, va = split_indices(len(table), o["valid_fraction"], seed + 1)
            train_t, valid_t = table.subset(tr), table.subset(va)
        if len(train_t) < 2 or len(valid_t) < 1:
            raise BiodlInputError(
                f"too few molecules to train ({len(train_t)} train, {len(valid_t)} validation)",
                path=o["data"],
            )
        return Splits(
            train=train_t,
            valid=valid_t,
            test=test_t if test_t is not None and len(test_t) else None,
            info={
                "n_train": len(train_t),
                "n_valid": len(valid_t),
                "n_invalid": n_invalid,
                "test": test_source,
            },
            extra={"task": task, "names": names},
        )

    def _build(self, ctx: TrainContext, task: str, names: list[str], model_options: dict, tables: list):
        """The recipe's network with ``model_options``; regression outputs scaled by the mean /
        sd of the targets of ``tables`` (the molecules it is fitted on)."""
        from biodl.train.fit import seed_all

        mk = ctx.recipe.model_kwargs(len(names), **model_options)
        if task == "regression":
            y = np.concatenate([t.targets for t in tables])
            with np.errstate(invalid="ignore", over="ignore"):  # infinite targets: refused after this
                mean, std = np.nanmean(y, axis=0), np.nanstd(y, axis=0)
            mk["target_mean"] = [float(v) for v in np.nan_to_num(mean)]
            mk["target_std"] = [float(v) if v > 0 else 1.0 for v in np.nan_to_num(std, nan=1.0)]
        seed_all(ctx.config.seed)
        return mk, ctx.recipe.build(**mk)

    def training_labels(self, meta, splits):
        return splits.train.targets

    def build(self, ctx: TrainContext, splits: Splits):
        task, names = splits.extra["task"], splits.extra["names"]
        mk, model = self._build(ctx, task, names, ctx.model_options, [splits.train])
        o = ctx.options
        data = MoleculeData(o["smiles_col"], o["id_col"], str(o["data"]), splits.info["n_invalid"])
        meta = RunMeta(
            kind=self.name,
            recipe=ctx.recipe.name,
            task=task,
            model_kwargs=mk,
            label_names=names,
            data=asdict(data),
        )
        ctx.log(
            f"featurising {len(splits.train) + len(splits.valid)} molecules for {ctx.recipe.title} ({task}, "
            f"targets: {', '.join(names)})"
        )
        return model, meta

    def threads(self, ctx):
        return ctx.options["threads"]

    def plan(self, ctx, model, meta, splits):
        plan = super().plan(ctx, model, meta, splits)
        plan.lr_decay = bool(ctx.options["lr_decay"])
        return plan

    def fit(self, ctx, model, meta, splits):
        if ctx.options["search_trials"] <= 0:
            ctx.log(
                f"training on {len(splits.train)} molecules, validating on {len(splits.valid)}"
                + (f", testing on {len(splits.test)}" if splits.test is not None else "")
                + f"; output in {ctx.out}"
            )
            return super().fit(ctx, model, meta, splits)
        search = self._search(ctx, meta, splits)
        mopts = {**ctx.model_options, **search["model_options"]}
        config = replace(ctx.config, patience=0, **search["train_options"])
        # the paper's protocol: the chosen configuration refitted on train + validation for the same
        # epoch budget; the final epoch's weights are exported (nothing left to select on)
        mk, model = self._build(ctx, meta.task, meta.label_names, mopts, [splits.train, splits.valid])
        meta = meta.replace(model_kwargs=mk, training=asdict(config))
        meta.splits.update(search=search, n_fit=len(splits.train) + len(splits.valid))
        ctx.log(
            f"training on {meta.splits['n_fit']} molecules (train + validation: refit); output in {ctx.out}"
        )
        refit = replace(splits, train=[splits.train, splits.valid], valid=None)
        _refit_afresh_if_another_trial(ctx, search, mopts)
        model, res, meta = super().fit(replace(ctx, config=config, model_options=mopts), model, meta, refit)
        res.val_metrics = {"val_" + search["metric"]: search["score"]}
        return model, res, meta

    def _search(self, ctx: TrainContext, meta: RunMeta, splits: Splits) -> dict[str, Any]:
        """``search_trials`` random configurations, each trained for the full epoch budget on the
        training molecules and scored by its final-epoch validation metric; writes
        ``OUT/search.tsv`` and returns the best (``model_options``, ``train_options``, ``trial``,
        ``metric``, ``score``, ``trials``)."""
        from biodl.kinds.molecules.search import sample_config
        from biodl.train.fit import TrainingDiverged
        from biodl.train.metrics import MONITOR

        o = ctx.options
        n = o["search_trials"]
        key, mode = MONITOR[meta.task]
        fixed = dict(ctx.model_options)  # options the user set are not searched
        fixed.update({k: getattr(ctx.config, k) for k in ("lr", "weight_decay") if k in ctx.config_given})
        head = str(ctx.model_options.get("head", ctx.recipe.model_defaults.get("head", "mlp")))
        rng = np.random.default_rng(o["search_seed"] if o["search_seed"] is not None else ctx.config.seed)
        rows = []
        for t in range(n):
            mopts, topts = sample_config(ctx.recipe.name, head, rng, fixed=fixed)
            mk, model = self._build(
                ctx, meta.task, meta.label_names, {**ctx.model_options, **mopts}, [splits.train]
            )
            tmeta = meta.replace(model_kwargs=mk)
            cfg = replace(ctx.config, patience=0, progress=False, **topts)
            tdir = ctx.out / "search" / f"trial{t}"
            try:
                _, res, _ = super().fit(replace(ctx, config=cfg, out=tdir), model, tmeta, splits)
            except TrainingDiverged:  # a sampled learning rate too high: the trial has no score
                rows.append({"trial": t, f"final val_{key}": float("nan"), **mopts, **topts, "epochs": None})
                ctx.log(f"search trial {t + 1}/{n}: diverged (weights not finite), left out {mopts} {topts}")
                continue
            hist = pd.read_csv(tdir / "history.csv")
            col = f"val_{key}"
            score = (
                float(hist[col].dropna().iloc[-1])
                if col in hist and hist[col].notna().any()
                else float("nan")
            )
            rows.append({"trial": t, f"final val_{key}": score, **mopts, **topts, "epochs": res.epochs_run})
            ctx.log(f"search trial {t + 1}/{n}: val_{key} {score:.4g} {mopts} {topts}")
        table = pd.DataFrame(rows)
        col = f"final val_{key}"
        ok = table[table[col].notna()]
        if ok.empty:
            raise BiodlInputError("every search trial failed to produce a validation score")
        best = ok.loc[ok[col].idxmax() if mode == "max" else ok[col].idxmin()]
        table["chosen"] = table["trial"] == best["trial"]
        write_table(table, ctx.out / "search.tsv")
        chosen = rows[int(best["trial"])]
        mopts = {k: chosen[k] for k in chosen if k not in ("trial", col, "epochs", "lr", "weight_decay")}
        topts = {k: chosen[k] for k in ("lr", "weight_decay") if k in chosen}
        ctx.log(
            f"search: trial {int(best['trial']) + 1} chosen ({col} {best[col]:.4g}); "
            "refitting on train + validation"
        )
        return {
            "model_options": mopts,
            "train_options": topts,
            "trial": int(best["trial"]),
            "metric": key,
            "score": float(best[col]),
            "trials": n,
        }

    def datasets(self, ctx, meta, splits):
        """The network inputs of the training molecules (a list of tables: their union, the
        refit on train + validation) and of the validation molecules."""
        tables = splits.train if isinstance(splits.train, list) else [splits.train]
        valid = dataset_for(meta, splits.valid) if splits.valid is not None else None
        return _concat([dataset_for(meta, t) for t in tables]), valid

    def validation_outputs(self, ctx, model, meta, valid):
        """``(outputs, targets)`` of ``model`` on the validation molecules (an ensemble's scores)."""
        return self.score(model, meta, valid, device=ctx.config.device, options=ctx.options)

    def after_fit(self, ctx, model, meta, splits):
        out = {"targets": meta.label_names, "n_invalid": splits.info["n_invalid"]}
        if "search" in meta.splits:
            out["search"] = meta.splits["search"]
            out["n_fit"] = meta.splits["n_fit"]
        if splits.test is not None:
            out["test_source"] = splits.info["test"]
        return out

    # ------------------------------------------------------------------ inference
    def _opts(self, meta: RunMeta, options: dict[str, Any]) -> dict[str, Any]:
        d = data_as(MoleculeData, meta.data)
        return {
            **options,
            "smiles_col": options.get("smiles_col") or d.smiles_col,
            "id_col": options.get("id_col") or d.id_col,
        }

    def read(self, meta, path, options, *, labelled, quiet=True):
        if path is None:
            raise BiodlInputError("no molecule file given")
        opts = self._opts(meta, options)
        if labelled:
            return read_table(path, opts, _target(options.get("target")) or meta.label_names, True, quiet)
        return read_table(path, opts, None, False, quiet, keep_invalid=True)

    #: ``biodl predict`` reads a table of SMILES in pieces of this many molecules (RDKit keeps
    #: about 17 KB a molecule: 210,000 read whole took 5 GiB); ``--rows`` sets another size
    predict_rows: ClassVar[int] = 20_000

    def read_chunks(self, meta, path, options, rows):
        from biodl.kinds.molecules.io import is_sdf_path, iter_molecules

        if path is None or is_sdf_path(path):
            return None  # an SDF is parsed by RDKit's supplier as a whole
        opts = self._opts(meta, options)
        skip = bool(opts.get("skip_invalid"))
        pieces = iter_molecules(
            path, rows, smiles_col=opts.get("smiles_col"), id_col=opts.get("id_col"),
            skip_invalid=skip, keep_invalid=skip,
        )  # fmt: skip
        return self._noting_invalid(pieces, path)

    @staticmethod
    def _noting_invalid(pieces, path):
        """The pieces, then read_table's note on the molecules left unscored, over the file."""
        first, n_bad, n = [], 0, 0
        for t in pieces:
            n_bad += len(t.invalid)
            n += len(t) + len(t.invalid)
            first += t.invalid[: 2 - len(first)]
            yield t
        if n_bad:
            from biodl.io._util import note

            note(_unscored_note(path, first, n_bad, n))

    memory_inputs = (
        "a list of SMILES, a dict or pandas Series of id -> SMILES, or a DataFrame with a smiles "
        "column (ids from an id/name column, else the index)"
    )

    def from_memory(self, meta, data, options, *, labelled, labels=None):
        from biodl.io import memory
        from biodl.kinds.molecules.io import molecules_from_memory

        d = data_as(MoleculeData, meta.data)
        skip = bool(options.get("skip_invalid"))
        table = molecules_from_memory(
            data,
            smiles_col=options.get("smiles_col"),
            id_col=options.get("id_col"),
            also=[c for c in (d.smiles_col,) if c],
            skip_invalid=skip,
            keep_invalid=skip and not labelled,  # predict: unscored rows stay in place, with the reason
        )
        if labelled:
            every = len(table) + len(table.invalid)
            ids = [None] * every  # every item's id, in input order (valid and skipped)
            for i, rid in zip(table.lines, table.ids, strict=True):
                ids[i - 1] = rid
            for b in table.invalid:
                ids[b.line - 1] = b.id
            y = memory.labels(data, labels, every, table.path, meta.label_names, ids=ids)
            table.targets = y[np.asarray(table.lines, dtype=np.int64) - 1]  # the valid molecules' rows
            table.target_names = list(meta.label_names)  # skipped molecules stay counted (n_invalid)
        return table

    def score(self, model, meta, table, *, device, options, batch_size=256):
        from biodl.kinds.molecules.data import predict_molecules

        outputs = (
            predict_molecules(model, dataset_for(meta, table), batch_size=batch_size, device=device)
            if len(table)
            else np.zeros((0, model.n_outputs), np.float32)
        )
        y = table.targets if table.targets is not None else np.zeros((len(table), 0), np.float32)
        return outputs, np.asarray(y, np.float32)

    def metrics(self, meta, outputs, targets, table):
        m = super().metrics(meta, outputs, targets, table)
        if meta.task == "regression":
            # the mean of each target's RMSE (as chemprop averages a multi-task metric over the
            # tasks), and each target's RMSE, MSE and R^2 when there are several: the means alone
            # are dominated by the target of the largest scale
            names = list(meta.label_names or [f"out{j}" for j in range(outputs.shape[1])])
            rmses = []
            for j, name in enumerate(names[: targets.shape[1]]):
                ok = ~np.isnan(targets[:, j])
                if not ok.any():
                    continue
                err = outputs[ok, j].astype(np.float64) - targets[ok, j]
                mse = float(np.mean(err**2))
                rmses.append(np.sqrt(mse))
                if len(names) > 1:
                    m[f"rmse/{name}"], m[f"mse/{name}"] = float(np.sqrt(mse)), mse
                    if ok.sum() > 1 and np.var(targets[ok, j]) > 0:
                        t = targets[ok, j].astype(np.float64)
                        m[f"r2/{name}"] = float(1 - np.sum(err**2) / np.sum((t - t.mean()) ** 2))
            m["rmse"] = float(np.mean(rmses)) if rmses else float("nan")
        return m

    def result_extras(self, meta, table, outputs, targets):
        return {"n_invalid": len(table.invalid)}

    def source(self, table):
        return table.path

    def frame(self, meta, table, outputs, targets=None) -> pd.DataFrame:
        df = prediction_frame(meta.task, list(table.ids), outputs, meta.label_names, meta.classes, targets)
        df.insert(1, "smiles", list(table.smiles))
        return df

    def predict_frame(self, model, meta, table, *, device, options, batch_size=256):
        """Predictions in input order; with ``skip_invalid``, rows RDKit rejects stay in the
        output with empty predictions and the reason in ``problem`` (a column every piece of a
        file read in pieces has, whether it holds such a row or not)."""
        df = super().predict_frame(model, meta, table, device=device, options=options, batch_size=batch_size)
        if options.get("skip_invalid") and not table.invalid:
            df["problem"] = ""
        if table.invalid:
            df["problem"] = ""
            df["_line"] = table.lines
            bad = pd.DataFrame(
                {
                    "id": [b.id for b in table.invalid],
                    "smiles": [b.smiles for b in table.invalid],
                    "problem": [b.reason for b in table.invalid],
                    "_line": [b.line for b in table.invalid],
                }
            )
            df = pd.concat([df, bad], ignore_index=True).sort_values("_line", kind="stable")
            df = df.drop(columns="_line").reset_index(drop=True)
        return df

    # ------------------------------------------------------------------ report
    def describe_data(self, meta):
        d = data_as(MoleculeData, meta.data)
        return {
            "targets": ", ".join(meta.label_names or []),
            "training file": d.train_file,
            "invalid molecules": d.n_invalid,
        }

    def report_sections(
        self, run, model, meta, data, options, n_bits: int = 2, per_bit: int = 6, max_molecules: int = 2000
    ):
        """The hyperparameter search (when run) and, for ``neural-fp``, the substructures that
        most activate selected fingerprint bits (Duvenaud et al. 2015, Fig. 4), searched in
        ``data`` (default: the run's training file, its first ``max_molecules`` molecules)."""
        from biodl.kinds.molecules.interpret import substructure_section
        from biodl.report.html import Section

        secs = []
        if (run / "search.tsv").exists():
            st = pd.read_csv(run / "search.tsv", sep="\t")
            secs.append(
                Section(
                    "Hyperparameter search",
                    text=f"{len(st)} random configurations, each trained on the training molecules for the "
                    "full epoch budget and scored by its final-epoch validation metric; the chosen one was "
                    "refitted "
                    "on training + validation molecules and its final weights exported (the protocol of "
                    "Duvenaud et al. 2015). The learning curves above are the refit's.",
                    table=st,
                )
            )
        if meta.recipe == "neural-fp":
            src = data or meta.data.get("train_file")
            if src and Path(src).exists():
                opts = {**self._opts(meta, options), "skip_invalid": True}
                table = read_table(src, opts, None, False, True)
                table = table.subset(range(min(max_molecules, len(table))))
                sec, _ = substructure_section(
                    model,
                    table.mols,
                    run / "substructures",
                    n_bits=n_bits,
                    per_bit=per_bit,
                    smiles=table.smiles,
                )
                secs.append(sec)
            else:
                secs.append(
                    Section(
                        "Substructures",
                        text=f"not drawn: the run's training file {src} is not there any more "
                        "(give the molecules to search: biodl report RUN --data FILE)",
                    )
                )
        return secs


KIND = MoleculesKind()
