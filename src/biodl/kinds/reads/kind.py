"""DNA reads as a data kind: training on reads sampled from a reference directory, evaluation and
prediction on read files (FASTQ / FASTA, plain or gzip), report sections.

Training reads (``--set reads_per_epoch``, fresh every epoch), the validation reads and, without
``--test``, the test reads are sampled on the fly from the reference genomes
(:func:`~biodl.kinds.reads.data.sample_reads`: seeded, both strands, substitution errors), each
set from its own seeded stream. After fitting, a temperature per rank is fitted on the
validation reads (Guo et al. 2017), so the confidences that decide the rank of a call are
calibrated; the temperatures and thresholds are saved with the weights.
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

_IN = ("evaluate", "predict")

OPTIONS = (
    Option(
        "data",
        "path",
        None,
        "Reference directory (biodl reads build-reference).",
        flag="DATA",
        stages=("train",),
    ),
    Option(
        "reads_per_epoch", "int", 200_000, "Training reads sampled per epoch (fresh each epoch).", minimum=16
    ),
    Option(
        "valid_reads", "int", 10_000, "Validation reads (fixed; they also fit the temperatures).", minimum=0
    ),
    Option("test_reads", "int", 10_000, "Held-out test reads sampled without --test (0: none).", minimum=0),
    Option("test_file", "path", None, "Labelled read file as the held-out test set.", flag="--test"),
    Option("read_len", "int", 150, "Length of the sampled reads (bp).", minimum=16),
    Option(
        "decoys",
        "float",
        0.2,
        "Share of the training reads that are decoys: reference reads written backwards (their "
        "composition, none of their k-mers), trained toward equal probabilities at every rank, so "
        "reads of organisms unlike any reference genome get low confidence (0: none).",
        minimum=0,
        maximum=0.9,
        before=0.0,  # runs made before the option trained without them
    ),
    Option(
        "diverged",
        "float",
        0.3,
        "Share of the training reads (decoys aside) given extra substitutions, at a rate drawn per "
        "read up to `divergence`, and trained on their genus and higher ranks only: reads as a "
        "species absent from the reference would have them, so the model calls such reads at "
        "their genus (0: none).",
        minimum=0,
        maximum=0.9,
        before=0.0,  # runs made before the option trained without them
    ),
    Option(
        "divergence",
        "float",
        0.2,
        "Largest substitution rate of the diverged reads (each read's drawn uniformly up to it).",
        minimum=0,
        maximum=0.75,
    ),
    Option("error_rate", "float", 0.01, "Substitution rate of the sampled reads.", minimum=0, maximum=0.5),
    Option("report", "bool", True, "Write OUT/report.html after training."),
    Option("mate2", "path", None, "Second reads of pairs (one bag of k-mers per pair).", stages=_IN),
    Option(
        "truth",
        "path",
        None,
        "TSV of read id and taxon (default: taxon=NAME in the headers, or ART read ids).",
        stages=("evaluate",),
    ),
    Option(
        "confidence",
        "float",
        None,
        "Calibrated confidence needed to call a rank (default: the model's min_confidence).",
        stages=_IN,
        minimum=0,
        maximum=1,
    ),
)


@dataclass
class ReadsData:
    """``RunMeta.data`` of a read model."""

    reference: str = ""
    taxonomy: dict[str, Any] = field(default_factory=dict)
    contigs: dict[str, int] = field(default_factory=dict)  # contig name -> leaf taxon
    genomes: list[str] = field(default_factory=list)
    read_len: int = 150
    error_rate: float = 0.01
    k: int = 13
    bucket_bits: int = 19


class ReadsKind(DataKind):
    """Reads from a reference (training) and read files (evaluate / predict)."""

    name = "reads"
    title = "DNA reads"
    reads = "DNA reads: FASTQ or FASTA, plain or gzip (train on a `biodl reads build-reference` directory)"
    formats = frozenset(("FASTA", "FASTQ"))
    options = OPTIONS
    report_on_train = True

    # ------------------------------------------------------------------ training
    def load(self, ctx: TrainContext) -> Splits:
        from biodl.kinds.reads.data import check_read_length
        from biodl.kinds.reads.io import load_reference

        o = ctx.options
        if o["data"] is None:
            raise BiodlInputError(
                "give the reference directory (DATA; make it with biodl reads build-reference)"
            )
        ref = load_reference(o["data"])
        check_read_length(ref, int(o["read_len"]))
        ctx.log(
            f"reference {ref.path}: {len(ref.genomes)} genomes, "
            + ", ".join(f"{len(n)} {r}" for r, n in zip(ref.ranks, ref.taxonomy.names, strict=True))
            + f"; {o['reads_per_epoch']:,} reads of {o['read_len']} bp per epoch "
            f"(error rate {o['error_rate']:g}; decoys {o['decoys']:g}; diverged {o['diverged']:g} of the "
            f"rest, up to {o['divergence']:g} substitutions)"
        )
        return Splits(
            train=None,
            info={"n_train": o["reads_per_epoch"], "n_valid": o["valid_reads"], "reference": str(ref.path)},
            extra={"ref": ref},
        )

    def build(self, ctx: TrainContext, splits: Splits):
        from biodl.kinds.reads.io import taxonomy_dict
        from biodl.train.fit import seed_all

        ref = splits.extra["ref"]
        r = ctx.recipe
        mk = r.check_model_options({**r.model_defaults, **ctx.model_options})
        mk["rank_sizes"] = ref.rank_sizes
        seed_all(ctx.config.seed)
        model = r.build(**mk)
        leaf = ref.genome_leaf()
        data = ReadsData(
            reference=str(ref.path),
            taxonomy=taxonomy_dict(ref.taxonomy),
            contigs={n: int(leaf[g]) for n, g in zip(ref.contig_names, ref.contigs[:, 0], strict=True)},
            genomes=[g["name"] for g in ref.genomes],
            read_len=int(ctx.options["read_len"]),
            error_rate=float(ctx.options["error_rate"]),
            k=int(model.k),
            bucket_bits=int(model.bucket_bits),
        )
        meta = RunMeta(
            kind=self.name,
            recipe=r.name,
            task="multiclass",
            model_kwargs=mk,
            label_names=list(ref.taxonomy.names[0]),
            classes=list(ref.taxonomy.names[0]),
            data=asdict(data),
        )
        o = ctx.options
        if o["test_file"] is not None:
            splits.test = self.read(meta, o["test_file"], {}, labelled=True)
        elif o["test_reads"] > 0:
            splits.test = self._sampled_table(ref, data, o["test_reads"], ctx.config.seed, stream=3)
            splits.info["test"] = f"{o['test_reads']} reads sampled from the reference (own seeded stream)"
        return model, meta

    def _sampled(self, meta: RunMeta, n: int, seed: int, stream: int, per_epoch: bool, **augment):
        """Reads sampled from the run's reference; ``augment``: SampledReads' decoys, diverged,
        divergence (none by default: the validation reads)."""
        from biodl.kinds.reads.data import SampledReads

        d = data_as(ReadsData, meta.data)
        return SampledReads(
            d.reference,
            n,
            k=d.k,
            bits=d.bucket_bits,
            read_len=d.read_len,
            error_rate=d.error_rate,
            seed=seed,
            stream=stream,
            per_epoch=per_epoch,
            **augment,
        )

    def _sampled_table(self, ref, d: ReadsData, n: int, seed: int, stream: int):
        from biodl.kinds.reads.data import sampled_table

        return sampled_table(ref, n, read_len=d.read_len, error_rate=d.error_rate, seed=seed, stream=stream)

    def plan(self, ctx, model, meta, splits):
        """The task's plan; Adagrad when the embedding has sparse gradients (AdamW cannot take
        them, and a dense step over millions of k-mer rows would cost more than the batch)."""
        plan = super().plan(ctx, model, meta, splits)
        if getattr(getattr(model, "embed", None), "sparse", False):
            return _AdagradPlan(
                model,
                meta.task,
                lr=ctx.config.lr,
                seed=ctx.config.seed,
                max_epochs=ctx.config.max_epochs,
                label_names=meta.label_names,
            )
        return plan

    def datasets(self, ctx, meta, splits):
        o, seed = ctx.options, ctx.config.seed
        train = self._sampled(
            meta,
            o["reads_per_epoch"],
            seed,
            1,
            True,
            decoys=o["decoys"],
            diverged=o["diverged"],
            divergence=o["divergence"],
        )
        valid = self._sampled(meta, o["valid_reads"], seed, 2, False) if o["valid_reads"] else None
        return train, valid

    def fit(self, ctx, model, meta, splits):
        model, res, meta = super().fit(ctx, model, meta, splits)
        if ctx.options["valid_reads"] >= 32:
            temps = self.calibrate(
                model, meta, ctx.options["valid_reads"], ctx.config.seed, ctx.config.device
            )
            ctx.log("temperatures fitted on the validation reads: " + ", ".join(f"{t:.3g}" for t in temps))
        else:
            ctx.log(
                f"warning: {ctx.options['valid_reads']} validation reads, too few to fit the temperatures "
                "(32 needed): the confidences are left uncalibrated (--set valid_reads 32 or more fits them)"
            )
        return model, res, meta

    def calibrate(self, model, meta, n: int, seed: int, device: str) -> list[float]:
        """Fit one temperature per rank on the validation reads (grid search of the NLL over
        T in [1, 20]: reads of the reference genomes are nearly all classified correctly, and a
        temperature below 1 fitted on them would make reads of absent organisms look surer)."""
        import torch

        from biodl.train.predict import predict

        out, y = predict(model, self._sampled(meta, n, seed, 2, False), batch_size=1024, device=device)
        parts = np.split(out.astype(np.float64), np.cumsum(model.rank_sizes)[:-1], axis=1)
        grid = np.exp(np.linspace(0.0, np.log(20), 91))  # T >= 1: soften, never sharpen past the raw softmax
        temps = []
        for r, z in enumerate(parts):
            t = y[:, r].astype(np.int64)
            best, best_nll = 1.0, np.inf
            for T in grid:
                s = z / T
                s = s - s.max(1, keepdims=True)
                nll = float(np.mean(np.log(np.exp(s).sum(1)) - s[np.arange(len(t)), t]))
                if nll < best_nll:
                    best, best_nll = float(T), nll
            temps.append(best)
        with torch.no_grad():
            model.temperature.copy_(torch.tensor(temps, dtype=model.temperature.dtype))
        return temps

    # ------------------------------------------------------------------ inference
    def read(self, meta, path, options, *, labelled, quiet=True):
        from biodl.kinds.reads.data import read_table
        from biodl.kinds.reads.io import taxonomy_from_dict

        if path is None:
            raise BiodlInputError("give a read file (FASTQ or FASTA, plain or gzip)")
        if Path(path).is_dir():
            raise BiodlInputError("is a directory; give a read file (FASTQ or FASTA)", path=path)
        d = data_as(ReadsData, meta.data)
        t = read_table(
            path,
            taxonomy_from_dict(d.taxonomy),
            labelled=labelled,
            mate2=options.get("mate2"),
            truth=options.get("truth"),
            contigs=d.contigs,
        )
        t.min_confidence = options.get("confidence")  # type: ignore[attr-defined]
        return t

    def score(self, model, meta, table, *, device, options, batch_size=256):
        from biodl.kinds.reads.data import EncodedReads
        from biodl.train.predict import predict

        d = data_as(ReadsData, meta.data)
        from biodl.kinds.reads.classify import n_without_kmer

        empty = n_without_kmer(table.seqs, getattr(table, "seqs2", None), d.k)
        if empty:
            from biodl.io._util import note

            note(
                f"[biodl] note: {empty:,} of {len(table):,} reads of {table.source} hold no k-mer (shorter "
                f"than the model's k, {d.k}, or without {d.k} A/C/G/T in a row): their scores are the "
                "network's prior, not evidence"
            )
        out, _ = predict(
            model,
            EncodedReads(table, d.k, d.bucket_bits),
            batch_size=max(batch_size, 1024),
            device=device,
            forward=lambda x: model.calibrated_log_probs(model(x)),
        )
        thr = getattr(table, "min_confidence", None)
        thr = options.get("confidence") if thr is None else thr
        table.threshold = (  # type: ignore[attr-defined]
            np.full(len(model.rank_sizes), float(thr))
            if thr is not None
            else model.threshold.detach().cpu().numpy()
        )
        return out, table.targets

    def _calls(self, meta, table, outputs):
        from biodl.kinds.reads.classify import decide

        sizes = [len(n) for n in meta.data["taxonomy"]["names"]]
        parts = np.split(outputs.astype(np.float64), np.cumsum(sizes)[:-1], axis=1)
        thr = getattr(table, "threshold", None)
        if thr is None:
            thr = np.full(len(sizes), float(meta.model_kwargs.get("min_confidence", 0.9)))
        return parts, decide(parts, np.asarray(thr, np.float64), meta.data["taxonomy"]["parent"])

    def metrics(self, meta, outputs, targets, table):
        from biodl.kinds.reads.io import taxonomy_from_dict

        tax = taxonomy_from_dict(meta.data["taxonomy"])
        parts, (rank, index, _) = self._calls(meta, table, outputs)
        R = len(parts)
        lin = _call_lineage(tax, rank, index)
        out: dict[str, float] = {}
        for r, name in enumerate(tax.ranks):
            m = ~np.isnan(targets[:, r])
            if not m.any():
                continue
            t = targets[m, r].astype(np.int64)
            called = (rank[m] >= 0) & (rank[m] <= r)
            right = called & (lin[m, r] == t)
            out[f"accuracy/{name}"] = float((parts[r][m].argmax(1) == t).mean())
            out[f"sensitivity/{name}"] = float(right.mean())
            out[f"precision/{name}"] = float(right.sum() / called.sum()) if called.any() else float("nan")
        leaf = tax.ranks[0]
        if f"accuracy/{leaf}" in out:
            out["accuracy"] = out[f"accuracy/{leaf}"]
            out["sensitivity"] = out[f"sensitivity/{leaf}"]
        if R > 1 and f"sensitivity/{tax.ranks[1]}" in out:
            out[f"{tax.ranks[1]}_sensitivity"] = out[f"sensitivity/{tax.ranks[1]}"]
        out["classified"] = float((rank >= 0).mean()) if len(rank) else 0.0
        return out

    def result_extras(self, meta, table, outputs, targets):
        if not targets.size or np.isnan(targets).all():
            return {}
        from biodl.kinds.reads.report import genus_confusion

        df = self.frame(meta, table, outputs, targets)
        cm = genus_confusion(df, meta.data["taxonomy"]["ranks"])
        if cm is None:
            return {}
        return {"confusion": {str(i): {str(c): int(v) for c, v in row.items()} for i, row in cm.iterrows()}}

    def frame(self, meta, table, outputs, targets=None) -> pd.DataFrame:
        from biodl.kinds.reads.classify import Labels
        from biodl.kinds.reads.io import taxonomy_from_dict

        tax = taxonomy_from_dict(meta.data["taxonomy"])
        parts, (rank, index, conf) = self._calls(meta, table, outputs)
        labels = Labels.of(tax)
        flat = labels.flat_index(rank, index)
        cols = [labels.flat[j].split("\t") for j in flat.tolist()]
        df = pd.DataFrame(
            {
                "id": list(table.ids),
                "taxon": [c[0] for c in cols],
                "taxid": [int(c[1]) for c in cols],
                "rank": [c[2] for c in cols],
                "confidence": conf,
            }
        )
        lin = _call_lineage(tax, rank, index)
        for r, name in enumerate(tax.ranks):
            df[f"call_{name}"] = [tax.names[r][i] if i >= 0 else "" for i in lin[:, r].tolist()]
        for r, name in enumerate(tax.ranks):
            a = parts[r].argmax(1)
            df[f"predicted_{name}"] = [tax.names[r][i] for i in a]
            df[f"prob_{name}"] = np.exp(parts[r][np.arange(len(a)), a])
        if targets is not None and np.asarray(targets).size:
            for r, name in enumerate(tax.ranks):
                df[f"true_{name}"] = [tax.names[r][int(v)] if not np.isnan(v) else "" for v in targets[:, r]]
        return df

    def write_evaluation(self, out_dir, result, meta, table, outputs, targets) -> None:
        from biodl.kinds.base import write_results
        from biodl.kinds.reads.report import evaluation_plots

        df = self.frame(meta, table, outputs, targets)
        od = write_results(out_dir, result, df)
        evaluation_plots(df, meta.data["taxonomy"]["ranks"], od)

    def evaluation_sections(self, meta):
        # the report's own sections draw these from the same predictions (with their tables)
        return []

    # ------------------------------------------------------------------ report
    def describe_data(self, meta):
        d = data_as(ReadsData, meta.data)
        tax = d.taxonomy
        return {
            "reference": d.reference,
            "genomes": len(d.genomes),
            "taxa": ", ".join(f"{len(n)} {r}" for r, n in zip(tax["ranks"], tax["names"], strict=True)),
            "k-mers": f"canonical {d.k}-mers in 2^{d.bucket_bits} buckets",
            "training reads": f"{d.read_len} bp sampled from the reference, substitution rate "
            f"{d.error_rate:g}",
        }

    def report_sections(self, run, model, meta, data, options):
        from biodl.kinds.reads.report import reads_sections

        return reads_sections(Path(run), model, meta)


def _call_lineage(tax, rank: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``(n, n_ranks)`` index of every read's call at each rank at or above its call (-1 below
    the call or for unclassified reads)."""
    R = len(tax.ranks)
    out = np.full((len(rank), R), -1, np.int64)
    for r in range(R):
        at = rank == r
        out[at, r] = index[at]
        if r > 0:
            up = (rank >= 0) & (rank < r)
            par = np.asarray(tax.parent[r - 1], np.int64)
            out[up, r] = par[out[up, r - 1]]
    return out


def _adagrad_plan():
    from biodl.train.plans import TrainingPlan

    class AdagradPlan(TrainingPlan):
        """A :class:`~biodl.train.plans.TrainingPlan` whose optimiser is Adagrad (sparse gradients)."""

        def configure_optimizers(self):
            import warnings

            import torch

            warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")
            return torch.optim.Adagrad([p for p in self.parameters() if p.requires_grad], lr=self.lr)

    return AdagradPlan


def _AdagradPlan(*args, **kwargs):  # noqa: N802 - a class made on first use (imports Lightning)
    return _adagrad_plan()(*args, **kwargs)


KIND = ReadsKind()
__all__ = ["KIND", "ReadsData", "ReadsKind"]
