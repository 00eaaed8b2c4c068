"""The methylation data kind: CpG call profiles (cells or samples) -> methylation of CpG sites
from the neighbouring observed CpGs (DeepCpG's CpG module, Wang et al.'s stacked autoencoder).

Training targets are the sites observed in the predicted profiles; the held-out test set is
whole chromosomes (DeepCpG's protocol: ``--set test_chroms=19``; default the last chromosome
when there are several), validation a seeded random share of the training chromosomes' sites.
Profiles named in ``input_only`` (bulk samples helping single cells, say) are inputs only.
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

_IO = ("train", "evaluate", "predict", "report")

OPTIONS = (
    Option(
        "data",
        "path",
        None,
        "Call file (DeepCpG table, Bismark .cov, bedGraph) or a sample table.",
        flag="DATA",
    ),
    Option(
        "levels",
        "choice",
        "fraction",
        "Values of call tables / bedGraph: fraction (0-1) or percent.",
        choices=("fraction", "percent"),
        stages=_IO,
    ),
    Option(
        "annotations", "paths", None, "BED files of annotations (CGI, exons): inside / distance features."
    ),
    Option("k", "int", 25, "Observed neighbours per side of each site (DeepCpG: 25).", minimum=1),
    Option(
        "max_dist",
        "int",
        100_000,
        "Distance given to missing neighbours, and the cap of distances (bp).",
        minimum=1,
    ),
    Option(
        "task",
        "choice",
        None,
        "binary (calls binarised at --set threshold, the default) or regression (levels).",
        flag="--task",
        choices=("binary", "regression"),
    ),
    Option("threshold", "float", 0.5, "Level at or above which a site counts as methylated.", minimum=0),
    Option(
        "input_only", "strs", None, "Profiles used as inputs only (e.g. bulk samples helping single cells)."
    ),
    Option(
        "test_chroms",
        "strs",
        None,
        "Held-out test chromosomes (default: the last one when there are several; 'none' for no test set).",
    ),
    Option("chroms", "strs", None, "Use only these chromosomes.", stages=_IO),
    Option(
        "valid_fraction",
        "float",
        0.1,
        "Seeded validation share of the training sites.",
        flag="--valid-fraction",
        minimum=0,
    ),
    Option(
        "max_sites", "int", 200_000, "Training sites per epoch (a fresh seeded subset each epoch).", minimum=1
    ),
    Option(
        "pretrain_epochs",
        "int",
        3,
        "SAE: pre-training epochs per layer (0: none).",
        minimum=0,
        recipes=("cpg-sae",),
    ),
    Option(
        "sites",
        "path",
        None,
        "predict: impute at the sites of this call file (values ignored; default: "
        "every site observed in any input profile).",
        stages=("predict",),
    ),
    Option(
        "genome",
        "path",
        None,
        "Genome FASTA (plain, bgzip or gzip; chromosome names with or without chr): adds DeepCpG's "
        "DNA module (deepcpg-cpg only). A model trained with one needs it to evaluate / predict.",
        stages=_IO,
        recipes=("deepcpg-cpg",),
    ),
    Option(
        "dna_window",
        "int",
        1001,
        "Length of the DNA window centred on each CpG, with --set genome (DeepCpG: 1001).",
        minimum=11,
        recipes=("deepcpg-cpg",),
    ),
    Option("report", "bool", True, "Write OUT/report.html after training."),
)


@dataclass
class MethylationData:
    """``RunMeta.data`` of a methylation model: the input profiles (in order), the predicted
    ones, the feature geometry and the annotations."""

    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    k: int = 25
    max_dist: int = 100_000
    annotations: list[str] = field(default_factory=list)
    annotation_names: list[str] = field(default_factory=list)
    threshold: float | None = 0.5
    levels: str = "fraction"
    train_file: str | None = None
    test_chroms: list[str] = field(default_factory=list)
    genome: str | None = None
    dna_window: int = 0


@dataclass
class CpGTable:
    """Input profiles and target sites to score (``sites.y`` the truth, NaN = not observed)."""

    profiles: list
    sites: Any
    source: str
    spelling: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.sites)


def _natural(c: str):
    return (0, int(c), "") if c.isdigit() else (1, 0, c)


def _chroms(profiles, wanted, path) -> list[str]:
    have = sorted({c for p in profiles for c in p.chroms}, key=_natural)
    if not wanted:
        return have
    from biodl.kinds.methylation.io import chrom_key

    keys = [chrom_key(c) for c in wanted]
    missing = [w for w, k in zip(wanted, keys, strict=True) if k not in have]
    if missing:
        raise BiodlInputError(
            f"unknown chromosome(s) {', '.join(missing)}: the calls have {', '.join(have)}", path=path
        )
    return keys


class MethylationKind(DataKind):
    """CpG call profiles."""

    name = "methylation"
    title = "CpG methylation profiles"
    reads = (
        "CpG calls: DeepCpG tables (chrom pos value), Bismark .cov, bedGraph, or a sample table listing them"
    )
    formats = frozenset(())
    options = OPTIONS
    report_on_train = True

    # ------------------------------------------------------------------ reading
    def _profiles(self, path, options):
        from biodl.kinds.methylation.io import read_profiles

        if path is None:
            raise BiodlInputError("no CpG call file given (DATA or --data)")
        return read_profiles(path, levels=options.get("levels") or "fraction")

    def _dna(self, path, width, profiles):
        """DNA windows from a genome FASTA covering every chromosome of ``profiles`` (or None)."""
        if not path:
            return None
        from biodl.io.fasta import open_genome
        from biodl.kinds.methylation.data import DNAWindows

        chroms = sorted({c for p in profiles for c in p.chroms}, key=_natural)
        return DNAWindows(open_genome(path), path, width, chroms)

    def _annotations(self, paths, profiles, quiet: bool = False):
        """The annotation BED files; one that shares no chromosome with the calls (another
        naming, another assembly) only adds constant features: said in a warning."""
        from biodl.kinds.base import log
        from biodl.kinds.methylation.io import read_annotation

        out = [read_annotation(p) for p in (paths or [])]
        calls = {c for p in profiles for c in p.chroms}
        for path, a in zip(paths or [], out, strict=True):
            if calls and not calls & set(a.starts):
                log(
                    f"[biodl] warning: {path}: no interval on a chromosome of the calls (calls: "
                    f"{', '.join(sorted(calls, key=_natural)[:6])}; annotation: "
                    f"{', '.join(sorted(a.starts, key=_natural)[:6]) or 'none'}; 'chr' is ignored): "
                    "its features are the same for every site",
                    quiet,
                )
        return out

    # ------------------------------------------------------------------ training
    def load(self, ctx: TrainContext) -> Splits:
        from biodl.kinds.methylation.data import CpGDataset, observed_sites
        from biodl.train.datamodule import split_indices

        o, seed = ctx.options, ctx.config.seed
        profiles = self._profiles(o["data"], o)
        names = [p.name for p in profiles]
        only = list(o["input_only"] or [])
        unknown = [n for n in only if n not in names]
        if unknown:
            raise BiodlInputError(
                f"--set input_only names unknown profile(s) {', '.join(unknown)} "
                f"(profiles: {', '.join(names)})"
            )
        outputs = [p for p in profiles if p.name not in only]
        if not outputs:
            raise BiodlInputError("every profile is input_only: nothing is left to predict")
        chroms = _chroms(profiles, o["chroms"], o["data"])
        if o["test_chroms"] and [c.lower() for c in o["test_chroms"]] == ["none"]:
            test_chroms = []
        elif o["test_chroms"]:
            test_chroms = _chroms(profiles, o["test_chroms"], o["data"])
        else:
            test_chroms = chroms[-1:] if len(chroms) > 1 else []
        train_chroms = [c for c in chroms if c not in test_chroms]
        if not train_chroms:
            raise BiodlInputError(
                f"no training chromosome left (test_chroms: {', '.join(test_chroms)}); hold out fewer"
            )
        task = o["task"] or "binary"
        thr = float(o["threshold"]) if task == "binary" else None
        annots = self._annotations(o["annotations"], profiles, ctx.quiet)
        sites = observed_sites(outputs, train_chroms)
        tr, va = split_indices(len(sites), o["valid_fraction"], seed, at_least_one=True, min_items=20)
        dna = self._dna(o.get("genome"), o.get("dna_window") or 1001, profiles)
        kw = dict(k=o["k"], annotations=annots, threshold=thr, max_dist=o["max_dist"], dna=dna)
        train = CpGDataset(profiles, sites.subset(tr), per_epoch=o["max_sites"], seed=seed, **kw)
        valid = CpGDataset(profiles, sites.subset(va), **kw) if len(va) else None
        test = None
        if test_chroms:
            test = CpGTable(
                profiles,
                observed_sites(outputs, test_chroms),
                f"{o['data']} (chromosome(s) {', '.join(test_chroms)})",
            )
        ctx.log(
            f"{len(profiles)} profile(s) ({', '.join(names)}), predicting {len(outputs)}; "
            f"{len(tr)} training / {len(va)} validation sites on {', '.join(train_chroms)}"
            + (f", test on {', '.join(test_chroms)} ({len(test)} sites)" if test else ", no test set")
            + (f"; {train.per_epoch} training sites per epoch" if train.per_epoch else "")
        )
        return Splits(
            train=train,
            valid=valid,
            test=test,
            info={
                "n_train": int(len(tr)),
                "n_valid": int(len(va)),
                "train_chroms": train_chroms,
                "test_chroms": test_chroms,
                "sites_per_epoch": len(train),
            },
            extra={
                "outputs": [p.name for p in outputs],
                "inputs": names,
                "task": task,
                "annotations": annots,
            },
        )

    def training_labels(self, meta, splits):
        return splits.train.y

    def build(self, ctx: TrainContext, splits: Splits):
        import torch

        from biodl.train.fit import seed_all

        e, r, o = splits.extra, ctx.recipe, ctx.options
        mk = r.check_model_options({**r.model_defaults, **ctx.model_options})
        mk.update(
            n_profiles=len(e["inputs"]), n_features=splits.train.n_features, n_outputs=len(e["outputs"])
        )
        dna = splits.train.dna
        if dna is not None:
            mk["dna_window"] = dna.width
        seed_all(ctx.config.seed)
        model = r.build(**mk)
        if hasattr(model, "scale"):  # the SAE standardises its inputs with training statistics
            n = min(len(splits.train.sites), 20_000)
            rows = np.random.default_rng(ctx.config.seed).choice(len(splits.train.sites), n, replace=False)
            model.scale.fit(torch.from_numpy(splits.train.features(np.sort(rows))).flatten(1))
        task = (
            "regression"
            if e["task"] == "regression"
            else ("binary" if len(e["outputs"]) == 1 else "multilabel")
        )
        data = MethylationData(
            inputs=e["inputs"],
            outputs=e["outputs"],
            k=int(o["k"]),
            max_dist=int(o["max_dist"]),
            annotations=[str(p) for p in (o["annotations"] or [])],
            annotation_names=[a.name for a in e["annotations"]],
            threshold=splits.train.threshold,
            levels=o["levels"],
            train_file=str(o["data"]),
            test_chroms=list(splits.info["test_chroms"]),
            genome=str(Path(o["genome"]).resolve()) if dna is not None else None,
            dna_window=dna.width if dna is not None else 0,
        )
        return model, RunMeta(
            kind=self.name,
            recipe=r.name,
            task=task,
            model_kwargs=mk,
            label_names=list(e["outputs"]),
            data=asdict(data),
        )

    def fit(self, ctx, model, meta, splits):
        if ctx.recipe.name == "cpg-sae":
            from biodl.train.pretrain import pretrain_layers

            pretrain_layers(
                model,
                splits.train,
                splits.valid,
                ctx.out,
                ctx.config,
                ctx.options["pretrain_epochs"],
                log=ctx.log,
            )
        return super().fit(ctx, model, meta, splits)

    def threads(self, ctx):
        return None

    # ------------------------------------------------------------------ inference
    def _match(self, meta, profiles, path):
        d = data_as(MethylationData, meta.data)
        by = {p.name: p for p in profiles}
        if len(d.inputs) == 1 and len(profiles) == 1:
            return profiles  # a one-profile model reads any one profile
        missing = [n for n in d.inputs if n not in by]
        if missing:
            raise BiodlInputError(
                f"the model reads profiles {', '.join(d.inputs)}; the file has {', '.join(by) or 'none'} "
                f"(missing {', '.join(missing)}; a sample table's name column sets the names)",
                path=path,
            )
        return [by[n] for n in d.inputs]

    def read(self, meta, path, options, *, labelled, quiet=True):
        from biodl.kinds.methylation.data import Sites, observed_sites

        d = data_as(MethylationData, meta.data)
        profiles = self._match(
            meta, self._profiles(path, {**options, "levels": options.get("levels") or d.levels}), path
        )
        chroms = _chroms(profiles, options.get("chroms"), path)
        outputs = (
            profiles[: len(profiles)] if len(d.inputs) == 1 else [p for p in profiles if p.name in d.outputs]
        )
        spelling = {c: s for p in profiles for c, s in p.spelling.items()}
        if labelled:
            return CpGTable(profiles, observed_sites(outputs, chroms), str(path), spelling)
        if options.get("sites"):
            from biodl.kinds.methylation.io import read_sites

            q = read_sites(options["sites"])  # positions only: the values are ignored
            cs = [c for c in q.chroms if c in set(chroms)]
            if not cs:  # the sites file is at fault, not the calls
                raise BiodlInputError(
                    f"none of its sites is on a chromosome of the calls ({', '.join(chroms[:6])}"
                    f"{', ...' if len(chroms) > 6 else ''}; its chromosomes: {', '.join(q.chroms[:6])}; "
                    "'chr' is ignored)",
                    path=options["sites"],
                )
            sites = Sites(
                np.concatenate([np.full(len(q.positions[c]), c, dtype=object) for c in cs])
                if cs
                else np.zeros(0, object),
                np.concatenate([q.positions[c] for c in cs]) if cs else np.zeros(0, np.int64),
                np.full((sum(len(q.positions[c]) for c in cs), len(d.outputs)), np.nan, np.float32),
            )
            spelling.update(q.spelling)
            return CpGTable(profiles, sites, str(path), spelling)
        s = observed_sites(profiles, chroms)
        return CpGTable(
            profiles,
            Sites(s.chrom, s.pos, np.full((len(s), len(d.outputs)), np.nan, np.float32)),
            str(path),
            spelling,
        )

    def _dataset(self, meta, table, options=None):
        from biodl.kinds.methylation.data import CpGDataset

        d = data_as(MethylationData, meta.data)
        dna = None
        if d.dna_window:
            genome = (options or {}).get("genome") or d.genome
            if not genome or not Path(genome).exists():
                raise BiodlInputError(
                    f"this model has DeepCpG's DNA module: give the genome FASTA with --set genome=FASTA "
                    f"(trained with {d.genome})"
                )
            dna = self._dna(genome, d.dna_window, table.profiles)
        return CpGDataset(
            table.profiles,
            table.sites,
            k=d.k,
            annotations=self._annotations(d.annotations, table.profiles),
            threshold=d.threshold,
            max_dist=d.max_dist,
            dna=dna,
        )

    def score(self, model, meta, table, *, device, options, batch_size=256):
        from biodl.train.predict import predict

        if len(table) == 0:
            raise BiodlInputError("no CpG site to score", path=table.source)
        return predict(model, self._dataset(meta, table, options), batch_size=batch_size, device=device)

    def metrics(self, meta, outputs, targets, table):
        m = super().metrics(meta, outputs, targets, table)
        if meta.task == "regression":
            return m
        from sklearn.metrics import matthews_corrcoef

        accs, mccs = [], []
        for j, n in enumerate(meta.label_names):
            ok = ~np.isnan(targets[:, j])
            if not ok.any():
                continue
            y, pred = targets[ok, j].astype(int), (outputs[ok, j] >= 0).astype(int)
            acc, mcc = float((y == pred).mean()), float(matthews_corrcoef(y, pred))
            accs.append(acc)
            mccs.append(mcc)
            if len(meta.label_names) > 1:
                m[f"accuracy/{n}"], m[f"mcc/{n}"] = acc, mcc
        m["accuracy"] = float(np.mean(accs)) if accs else float("nan")
        m["mcc"] = float(np.mean(mccs)) if mccs else float("nan")
        m["threshold"] = 0.5  # calls at probability 0.5 (none is chosen on validation): said with them
        return m

    def frame(self, meta, table, outputs, targets=None) -> pd.DataFrame:
        from biodl.kinds.methylation.data import nearest_observed

        d = data_as(MethylationData, meta.data)
        s = table.sites
        df = pd.DataFrame({"chrom": [table.spelling.get(c, c) for c in s.chrom], "pos": s.pos})
        reg = meta.task == "regression"
        out_profiles = {p.name: p for p in table.profiles}
        for j, n in enumerate(meta.label_names):
            v = outputs[:, j].astype(np.float64)
            df[f"pred_{n}" if reg else f"prob_{n}"] = v if reg else 1 / (1 + np.exp(-v))
            if targets is not None and targets.size:
                df[f"true_{n}"] = targets[:, j]
                prof = out_profiles.get(n) or (table.profiles[0] if len(d.inputs) == 1 else None)
                if prof is not None:
                    df[f"nearest_{n}"] = nearest_observed(prof, s.chrom, s.pos)
        return df

    def predict_frame(self, model, meta, table, *, device, options, batch_size=256):
        """Imputed calls in DeepCpG's table format: ``chrom pos value`` for a one-output model,
        else ``chrom pos`` and one column per predicted profile (probabilities, or levels)."""
        outputs, _ = self.score(model, meta, table, device=device, options=options, batch_size=batch_size)
        s = table.sites
        v = outputs.astype(np.float64)
        if meta.task == "regression":
            # levels are fractions; the regression head is linear: the call table (read again as
            # levels, which refuses values outside [0, 1]) holds levels, clipped and said
            out_of_range = int(((v < 0) | (v > 1)).sum())
            if out_of_range:
                from biodl.train.metrics import note_once

                note_once(
                    "[biodl] warning: predicted methylation levels outside [0, 1] are clipped to it in the "
                    "call table (the regression head is linear; the evaluation's predictions.tsv keeps them)"
                )
                v = np.clip(v, 0.0, 1.0)
        else:
            v = 1 / (1 + np.exp(-v))
        names = ["value"] if len(meta.label_names) == 1 else list(meta.label_names)
        cols = {"chrom": [table.spelling.get(c, c) for c in s.chrom], "pos": s.pos}
        cols.update({n: v[:, j] for j, n in enumerate(names)})
        return pd.DataFrame(cols)

    def predictions_header(self, df: pd.DataFrame) -> bool:
        """DeepCpG's call-table format: no header for one value column (``chrom pos value``),
        a header naming the profiles otherwise."""
        return len([c for c in df.columns if c not in ("chrom", "pos")]) > 1

    # ------------------------------------------------------------------ report
    def describe_data(self, meta):
        d = data_as(MethylationData, meta.data)
        rows: dict[str, Any] = {
            "training file": d.train_file,
            "input profiles": ", ".join(d.inputs),
            "predicted profiles": ", ".join(d.outputs),
            "neighbours per side": d.k,
            "test chromosomes": ", ".join(d.test_chroms) or "none",
        }
        if d.annotation_names:
            rows["annotations"] = ", ".join(d.annotation_names)
        return rows

    def report_sections(self, run, model, meta, data, options):
        from biodl.kinds.methylation.report import methylation_sections

        return methylation_sections(run, meta)


KIND = MethylationKind()
__all__ = ["KIND", "MethylationData", "MethylationKind"]
