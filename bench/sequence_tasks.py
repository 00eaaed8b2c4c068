"""Benchmark biodl's sequence systems (DeepBind, DeepSEA, Basset, DanQ, splicing CNN) on real
sequence datasets against the published numbers.

One row per (system, dataset task): our metric on held-out data, the published metric, the
difference and the CPU minutes the row took. Published numbers are copied below with their
source (``/work/shared/data/SOURCES-sequence.md``). Every protocol (split, CV, metric) is
stated in :data:`PROTOCOLS` and printed with the table.

Usage (from the repository root)::

    nice -n 10 python bench/sequence_tasks.py                         # best-suited system everywhere
    python bench/sequence_tasks.py --datasets enhancer,splice --systems deepsea,basset,danq
    python bench/sequence_tasks.py --datasets cnnprom --ablation     # rc on/off / shift / class weight
    python bench/sequence_tasks.py --max-minutes 30                   # stop starting rows after 30 min
    python bench/sequence_tasks.py --render-only                      # table of all cached v2 rows
    python bench/sequence_tasks.py --datasets gue_prom --systems danq --ensemble 5    # 5 seeds averaged
    python bench/sequence_tasks.py --datasets gue_prom --systems danq --calibrate 8   # DeepBind calibration
    python bench/sequence_tasks.py --datasets gue_prom --systems danq --calibrate 8 --calibrate-top 3

Protocol "v2": thresholds for acc / MCC / Sn / Sp chosen on the validation split (never on
test), per-system learning rates (SYSTEM_LR), patience 6, weight decay 1e-4, reverse-complement
augmentation + rc-averaged test outputs on strand-symmetric rows only (``Row.strand_symmetric``).

``--calibrate N`` chooses each CNN's setting as ``biodl train --calibrate N`` does
(:func:`_calibrate_split`): cross-validation on a subsample of each split's training part only,
never its validation part (thresholds, early stopping) and never its test part.

``--data-dir`` (default ``../shared/data``) must hold every file of the requested datasets (and
``--tasks``): they are checked before any training, and a missing one stops the run with the
list of what is missing (bench/DATA.md says where the data come from). A row that fails makes
the exit status non-zero (the table of the others is still printed).

Finished rows are cached in ``--out`` (``rows.jsonl``); a rerun skips them (``--no-cache``
recomputes). The table is also written to ``OUT/table.md`` and ``OUT/table.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from biodl.errors import BiodlInputError
from biodl.io.fasta import read_fasta
from biodl.kinds.sequences.augment import AugmentedDataset, Augmenter
from biodl.kinds.sequences.data import SequenceDataset, add_shuffled_negatives
from biodl.kinds.sequences.io import SequenceTable, read_sequences
from biodl.registry import get_recipe
from biodl.train import RunMeta, TrainConfig, fit_model, predict, seed_all
from biodl.train.calibrate import split_setting

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
from _rows import guarded, nonneg_int, positive_float, positive_int, require_data  # noqa: E402

#: Where the datasets come from (said when files are missing).
DATA_SOURCE = "bench/DATA.md (Sequences)"
#: DFS penalty path of the k-mer rows (each penalty's features refitted; best on validation)
KMER_LAMBDAS = ["0.1", "0.3", "1"]

# ------------------------------------------------------------------ published numbers
#: All numbers copied from /work/shared/data/SOURCES-sequence.md (V = verified there).
PUBLISHED: dict[str, dict[str, Any]] = {
    # GUE (Zhou et al., DNABERT-2, ICLR 2024), test MCC (x100 in the paper), DNABERT-2 117M [V]
    **{
        f"gue_tf/{k}": {
            "metric": "mcc",
            "value": v,
            "source": "DNABERT-2 (Zhou et al. ICLR 2024), GUE test MCC",
        }
        for k, v in {"0": 0.7199, "1": 0.7606, "2": 0.6652, "3": 0.5854, "4": 0.7743}.items()
    },
    **{
        f"gue_prom/{k}": {
            "metric": "mcc",
            "value": v,
            "source": "DNABERT-2 (Zhou et al. ICLR 2024), GUE test MCC",
        }
        for k, v in {
            "prom_core_all": 0.6937,
            "prom_core_notata": 0.6804,
            "prom_core_tata": 0.7417,
            "prom_300_tata": 0.7159,
        }.items()
    },
    # CNNProm (Umarov & Solovyev 2017, PLOS ONE 12:e0171410) Sn / Sp / CC [V]
    **{
        f"cnnprom/{k}": {
            "metric": "cc",
            "value": cc,
            "sn": sn,
            "sp": sp,
            "source": "CNNProm (Umarov & Solovyev 2017) Sn/Sp/CC",
        }
        for k, (sn, sp, cc) in {
            "ecoli": (0.90, 0.96, 0.84),
            "bsubtilis": (0.91, 0.95, 0.86),
            "arabidopsis_tata": (0.95, 0.97, 0.91),
            "arabidopsis_nontata": (0.94, 0.94, 0.86),
            "mouse_tata": (0.97, 0.97, 0.93),
        }.items()
    },
    # iEnhancer-2L benchmark, independent test set (PMC10339552 Table 4) [V]; best published
    # deep model per layer: iEnhancer-EBLSTM (layer 1), iEnhancer-ECNN (layer 2)
    "enhancer/layer1": {
        "metric": "acc",
        "value": 0.772,
        "mcc": 0.534,
        "auc": 0.835,
        "source": "iEnhancer-EBLSTM, iEnhancer-2L independent test, layer 1 (iEnhancer-2L itself: acc 0.730)",
    },
    "enhancer/layer2": {
        "metric": "acc",
        "value": 0.678,
        "mcc": 0.368,
        "auc": 0.748,
        "source": "iEnhancer-ECNN, iEnhancer-2L independent test, layer 2 (iEnhancer-2L itself: acc 0.605)",
    },
    # UCI primate splice junctions (Towell et al.; splice.arff header) error % Neither/EI/IE [V]
    "splice/uci": {
        "metric": "mean_error",
        "value": (4.62 + 7.56 + 8.47) / 3 / 100,
        "errors": {"N": 4.62, "EI": 7.56, "IE": 8.47},
        "backprop": {"N": 5.29, "EI": 5.74, "IE": 10.75},
        "source": "KBANN (Towell et al.), 10-fold CV on 1000 random examples; error % N/EI/IE",
    },
}
#: Released DeepBind model AUC on the ENCODE fold-B test sets (deepbind_released_model_auc_on_B.tsv,
#: computed at staging from the original v0.11 models).
ENCODE_EXPERIMENTS = (
    "MYC_H1-hESC_c-Myc_Stanford",
    "SRF_H1-hESC_SRF_HudsonAlpha",
    "ELK1_GM12878_ELK1_(1277-1)_Stanford",
    "GABPA_GM12878_GABP_HudsonAlpha",
    "SUZ12_H1-hESC_SUZ12_USC",
)
CLIP_DEFAULT = (
    "1_PARCLIP_AGO1234_hg19",
    "11_CLIPSEQ_ELAVL1_hg19",
    "16_ICLIP_hnRNPC",
    "19_ICLIP_hnRNPL",
    "30_ICLIP_U2AF65",
)

PROTOCOLS = {
    "gue_tf": "GUE official train / dev (early stopping + threshold) / test CSVs (tf 3, 4 not staged); "
    "MCC on test; "
    "rc augmentation + rc-averaged test outputs",
    "gue_prom": "GUE official train / dev (early stopping + threshold) / test CSVs; MCC on test; no rc",
    "cnnprom": "seeded stratified 80/20 train/test split (seed 0) of promoter + non-promoter FASTA; "
    "10% of train for early stopping + threshold (max MCC); Sn, Sp, CC (=MCC) on the 20% test; no rc "
    "(promoters are oriented)",
    "enhancer": "official iEnhancer-2L train (10% for early stopping + threshold) / independent test (400); "
    "train sequences that also occur in the test set (all 100 test strong enhancers are verbatim in "
    "train_strong in the staged copy) are dropped from train (+dedup); "
    "upper-cased; layer 1 = strong+weak vs non, layer 2 = strong vs weak; acc/MCC at the threshold "
    "maximising validation accuracy, AUC; rc augmentation + rc-averaged test outputs",
    "splice": "stratified 10-fold CV (seed 0; 10% of each training fold for early stopping) over all 3190 "
    "UCI sequences (task uci) or over a seeded random 1000-example subset (task uci1000, the published "
    "protocol: 10-fold CV on 1000 random examples); 3-class argmax; per-class error % pooled over the "
    "folds, headline = mean of the 3; IUPAC codes read as N; no rc (oriented)",
    "clip": "deepRAM RBP-31 split: training.fa (30,000; 10% for early stopping) / test.fa (10,000); AUC; "
    "RNA, oriented: no rc; 5 RBPs (CLIP_DEFAULT); no verified per-RBP published AUC staged",
    "janggu": "janggu Oct4 (sample.fa, positives) vs Mafk (sample2.fa) peaks, 10% early stopping; "
    "test = sample_test.fa vs sample2_test.fa (100+100); AUC; no published number; rc augmentation",
    "encode": "DeepBind protocol: train on fold A+C positives + dinucleotide-shuffled negatives, "
    "test on fold B (500 bound + 500 shuffled); AUC vs the released DeepBind model on B; "
    "rc augmentation (DeepBind also scans both strands itself)",
}

#: Best-suited system per dataset (the default when --systems is not given).
BEST = {
    "gue_tf": "deepbind",
    "gue_prom": "basset",
    "cnnprom": "basset",
    "enhancer": "basset",
    "splice": "splicing-cnn",
    "clip": "deepbind",
    "janggu": "deepbind",
    "encode": "deepbind",
}


# --------------------------------------------------------------------------- models
def model_options(system: str, seq_len: int, strand_symmetric: bool = True) -> dict[str, Any]:
    """CPU-sized model options per system (shrunk from the papers' sizes, which were built
    for GPUs and 1000-bp inputs) for inputs of ``seq_len`` bp. DeepBind scans both strands
    only on strand-symmetric (genomic, unoriented) data, as the original did for ChIP-seq;
    oriented data (RNA / CLIP, promoters, splice sites) are scanned on the given strand."""
    long = seq_len >= 180
    if system == "deepbind":
        return dict(
            num_motifs=64,
            motif_len=15 if seq_len < 150 else 19,
            hidden=32,
            dropout=0.5,
            reverse_complement=strand_symmetric,
        )
    if system == "deepsea":
        return dict(n_filters=(64, 96, 128), kernel_size=8, pool_size=4 if long else 2, hidden=128)
    if system == "basset":
        p = (3, 3, 2) if long else (2, 2, 2)
        return dict(n_filters=(64, 64, 64), kernel_sizes=(11, 7, 5), pool_sizes=p, hidden=(128, 128))
    if system == "danq":
        return dict(n_filters=64, kernel_size=15, pool_size=8 if long else 4, lstm_hidden=32, hidden=64)
    if system == "splicing-cnn":
        return dict(n_filters=64, kernel_size=9, n_res_blocks=1, hidden=64)
    raise BiodlInputError(f"no bench preset for system {system!r}")


# ----------------------------------------------------------------------------- data
@dataclass
class Split:
    train: SequenceTable
    test: SequenceTable
    valid: SequenceTable | None = None


@dataclass
class Row:
    """One benchmark task."""

    dataset: str
    key: str
    task: str
    splits: Callable[[], list[Split]]
    metric: Callable[[np.ndarray, np.ndarray, SequenceTable], dict[str, float]]
    primary: str
    published: dict[str, Any] | None = None
    higher_is_better: bool = True
    shuffle_negatives: bool = False
    epochs: int = 30
    #: genomic double-stranded data without a fixed orientation (ChIP-seq peaks, enhancers):
    #: trained with reverse-complement augmentation and tested on rc-averaged outputs by default.
    #: Promoters, splice sites and CLIP (RNA) sequences are oriented: no rc augmentation.
    strand_symmetric: bool = False
    #: appended to the variant tag (a protocol change that must not reuse cached rows)
    tag: str = ""
    notes: list[str] = field(default_factory=list)


def _table(seqs: list[str], labels, ids=None, classes=None, source=None) -> SequenceTable:
    y = np.asarray(labels, np.float32).reshape(len(seqs), -1)
    return SequenceTable(
        ids=list(ids) if ids is not None else [f"s{i}" for i in range(len(seqs))],
        seqs=[s.upper() for s in seqs],
        labels=y,
        label_names=["label"],
        classes=classes,
        source=source,
    )


def _concat(a: SequenceTable, b: SequenceTable) -> SequenceTable:
    return SequenceTable(
        ids=a.ids + b.ids,
        seqs=a.seqs + b.seqs,
        labels=np.concatenate([a.labels, b.labels]),
        label_names=a.label_names,
        classes=a.classes,
        source=a.source,
    )


def _fasta_seqs(path: Path) -> list[str]:
    return [r.sequence.upper().replace("U", "T") for r in read_fasta(path, validate=False)]


def _strat_split(y: np.ndarray, frac: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified split: (rest, held) index arrays, ``frac`` of every class held."""
    rng = np.random.default_rng(seed)
    held = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        held.append(idx[: int(round(frac * len(idx)))])
    h = np.sort(np.concatenate(held))
    return np.setdiff1d(np.arange(len(y)), h), h


def _holdout_valid(t: SequenceTable, seed: int = 0, frac: float = 0.1) -> tuple[SequenceTable, SequenceTable]:
    tr, va = _strat_split(t.labels[:, 0], frac, seed)
    return t.subset(tr), t.subset(va)


# ---------------------------------------------------------------------------- metrics
def _binary_counts(y: np.ndarray, p: np.ndarray) -> tuple[int, int, int, int]:
    pred = p >= 0.5
    t = y.astype(bool)
    return int((pred & t).sum()), int((~pred & ~t).sum()), int((pred & ~t).sum()), int((~pred & t).sum())


def _mcc(tp, tn, fp, fn) -> float:
    d = math.sqrt(float((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)))
    return (tp * tn - fp * fn) / d if d else 0.0


def choose_threshold(logits: np.ndarray, y: np.ndarray, criterion: str) -> float:
    """Decision threshold (on the logit scale) maximising ``criterion`` (``mcc`` or ``acc``)
    on a *validation* split; ties go to the threshold nearest logit 0 (p = 0.5)."""
    s = logits[:, 0].astype(np.float64)
    yy = y[:, 0].astype(bool)
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted = s[order], yy[order]
    # predicting positive for the top k (k = 0..n): counts for every distinct cut
    tp = np.concatenate([[0], np.cumsum(y_sorted)])
    fp = np.concatenate([[0], np.cumsum(~y_sorted)])
    P, N = int(yy.sum()), int((~yy).sum())
    fn, tn = P - tp, N - fp
    last_of_tie = np.concatenate([s_sorted[1:] != s_sorted[:-1], [True]])
    ks = np.concatenate([[0], np.flatnonzero(last_of_tie) + 1])
    tp, fp, fn, tn = (a[ks].astype(np.float64) for a in (tp, fp, fn, tn))
    if criterion == "acc":
        score = (tp + tn) / len(s)
    else:
        d = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
        score = np.where(d > 0, (tp * tn - fp * fn) / np.where(d > 0, d, 1), 0.0)
    # threshold between the k-th and (k+1)-th highest score
    hi = np.concatenate([[np.inf], s_sorted])[ks]
    lo = np.concatenate([s_sorted, [-np.inf]])[ks]
    thr = np.where(np.isinf(hi), lo + 1.0, np.where(np.isinf(lo), hi - 1.0, (hi + lo) / 2))
    best = np.flatnonzero(score >= score.max() - 1e-12)
    return float(thr[best[np.argmin(np.abs(thr[best]))]])


def _auc(y: np.ndarray, s: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, s))


def binary_metrics(logits: np.ndarray, y: np.ndarray, _t=None) -> dict[str, float]:
    """acc, MCC (= CNNProm's CC), Sn, Sp at logit 0 and AUC; ``logits`` ``(n, 1)``, already
    shifted by the validation-chosen threshold in :func:`run_row`."""
    yy = y[:, 0]
    p = 1 / (1 + np.exp(-logits[:, 0].astype(np.float64)))
    tp, tn, fp, fn = _binary_counts(yy, p)
    return {
        "acc": (tp + tn) / len(yy),
        "mcc": _mcc(tp, tn, fp, fn),
        "cc": _mcc(tp, tn, fp, fn),
        "sn": tp / max(tp + fn, 1),
        "sp": tn / max(tn + fp, 1),
        "auc": _auc(yy, p),
    }


def splice_metrics(logits: np.ndarray, y: np.ndarray, t: SequenceTable) -> dict[str, float]:
    """Per-class error rate (fraction of that class misclassified) and their mean."""
    pred = logits.argmax(1)
    yy = y[:, 0].astype(int)
    out = {}
    for k, c in enumerate(t.classes):
        m = yy == k
        out[f"err_{c}"] = float((pred[m] != k).mean())
    out["mean_error"] = float(np.mean([out[f"err_{c}"] for c in t.classes]))
    out["acc"] = float((pred == yy).mean())
    return out


# ----------------------------------------------------------------------- datasets
#: GUE tasks; tf 3 and 4 are not staged (run only when present, or asked for with --tasks).
GUE_TF = ("0", "1", "2", "3", "4")
GUE_TF_STAGED = ("0", "1", "2")
GUE_PROM = ("prom_core_all", "prom_core_notata", "prom_core_tata", "prom_300_tata")
GUE_FILES = ("train.csv", "dev.csv", "test.csv")


def gue_rows(data: Path, group: str, names) -> list[Row]:
    rows = []
    for name in names:
        d = data / "gue_subset" / group / name
        if not all((d / name_).exists() for name_ in GUE_FILES):
            continue

        def splits(d=d) -> list[Split]:
            rd = lambda f: read_sequences(d / f, seq_col="sequence", label_cols="label", uppercase=True)  # noqa: E731
            return [Split(train=rd("train.csv"), valid=rd("dev.csv"), test=rd("test.csv"))]

        ds = "gue_tf" if group == "tf" else "gue_prom"
        rows.append(
            Row(
                ds,
                name,
                "binary",
                splits,
                binary_metrics,
                "mcc",
                PUBLISHED.get(f"{ds}/{name}"),
                epochs=8,
                strand_symmetric=group == "tf",  # TF ChIP-seq peaks; promoters are oriented
            )
        )
    return rows


CNNPROM_FILES = {
    "ecoli": (["Ecoli_prom.fa"], ["Ecoli_non_prom.fa"]),
    "bsubtilis": (["Bacillus_prom.fa"], ["Bacillus_non_prom.fa"]),
    "arabidopsis_tata": (["Arabidopsis_tata.fa"], ["Arabidopsis_non_prom.fa"]),
    "arabidopsis_nontata": (["Arabidopsis_non_tata.fa"], ["Arabidopsis_non_prom.fa"]),
    "mouse_tata": (["Mouse_tata.fa"], ["Mouse_nonprom.fa"]),
}


def cnnprom_rows(data: Path) -> list[Row]:
    rows = []
    d = data / "promoter_cnnprom"
    for key, (pos, neg) in CNNPROM_FILES.items():
        if not all((d / f).exists() for f in pos + neg):
            continue

        def splits(pos=pos, neg=neg) -> list[Split]:
            P = [s for f in pos for s in _fasta_seqs(d / f)]
            N = [s for f in neg for s in _fasta_seqs(d / f)]
            L = max(len(s) for s in P + N)
            P = [s for s in P if len(s) == L]
            N = [s for s in N if len(s) == L]
            t = _table(P + N, [1] * len(P) + [0] * len(N))
            tr, te = _strat_split(t.labels[:, 0], 0.2, 0)
            tr_t, va_t = _holdout_valid(t.subset(tr))
            return [Split(train=tr_t, valid=va_t, test=t.subset(te))]

        rows.append(Row("cnnprom", key, "binary", splits, binary_metrics, "cc", PUBLISHED[f"cnnprom/{key}"]))
    return rows


ENHANCER_FILES = [
    f"enhancer_iEnhancer2L/{part}_{k}_enhancers.fa"
    for part in ("train", "test")
    for k in ("strong", "weak", "non")
]


def enhancer_rows(data: Path) -> list[Row]:
    d = data / "enhancer_iEnhancer2L"
    if not all((data / f).exists() for f in ENHANCER_FILES):
        return []

    def load(part: str) -> dict[str, list[str]]:
        return {k: _fasta_seqs(d / f"{part}_{k}_enhancers.fa") for k in ("strong", "weak", "non")}

    _rc = str.maketrans("ACGTN", "TGCAN")

    def layer(which: int) -> list[Split]:
        out = {}
        test_seqs = {x for v in load("test").values() for x in v}
        test_seqs |= {x.translate(_rc)[::-1] for x in test_seqs}
        for part in ("train", "test"):
            s = load(part)
            if part == "train":
                # the staged test_strong file (all 100) also occurs verbatim in train_strong:
                # drop every training sequence that is in the test set (either strand)
                s = {k: [x for x in v if x not in test_seqs] for k, v in s.items()}
            if which == 1:
                out[part] = _table(
                    s["strong"] + s["weak"] + s["non"],
                    [1] * len(s["strong"] + s["weak"]) + [0] * len(s["non"]),
                )
            else:
                out[part] = _table(s["strong"] + s["weak"], [1] * len(s["strong"]) + [0] * len(s["weak"]))
        tr, va = _holdout_valid(out["train"])
        return [Split(train=tr, valid=va, test=out["test"])]

    return [
        Row(
            "enhancer",
            "layer1",
            "binary",
            lambda: layer(1),
            binary_metrics,
            "acc",
            PUBLISHED["enhancer/layer1"],
            strand_symmetric=True,
            tag="+dedup",
        ),
        Row(
            "enhancer",
            "layer2",
            "binary",
            lambda: layer(2),
            binary_metrics,
            "acc",
            PUBLISHED["enhancer/layer2"],
            strand_symmetric=True,
            tag="+dedup",
        ),
    ]


def splice_rows(data: Path, folds: int = 10) -> list[Row]:
    """``uci``: 10-fold CV over all 3190 sequences; ``uci1000``: 10-fold CV over a seeded random
    1000-example subset, as in the published (KBANN / backprop) protocol."""
    f = data / "splice_uci_primate" / "splice_uci.csv"
    if not f.exists():
        return []

    def splits(n_sub: int | None = None) -> list[Split]:
        import pandas as pd

        df = pd.read_csv(f)
        if n_sub is not None:
            df = df.iloc[np.sort(np.random.default_rng(0).choice(len(df), n_sub, replace=False))]
            df = df.reset_index(drop=True)
        classes = ["N", "EI", "IE"]
        y = df["class"].map({c: i for i, c in enumerate(classes)}).to_numpy()
        seqs = [s.strip().upper() for s in df["sequence"]]
        t = _table(seqs, y, ids=df["id"], classes=classes, source=str(f))
        rng = np.random.default_rng(0)
        fold = np.zeros(len(y), int)
        for c in range(3):
            idx = np.flatnonzero(y == c)
            rng.shuffle(idx)
            fold[idx] = np.arange(len(idx)) % folds
        out = []
        for k in range(folds):
            tr = np.flatnonzero(fold != k)
            tr_t, va_t = _holdout_valid(t.subset(tr), seed=k)
            out.append(Split(train=tr_t, valid=va_t, test=t.subset(np.flatnonzero(fold == k))))
        return out

    return [
        Row(
            "splice",
            key,
            "multiclass",
            (lambda n=n: splits(n)),
            splice_metrics,
            "mean_error",
            PUBLISHED["splice/uci"],
            higher_is_better=False,
            epochs=20,
        )
        for key, n in (("uci", None), ("uci1000", 1000))
    ]


CLIP_FILES = ("training.fa.gz", "test.fa.gz")


def _clip_key(name: str) -> str:
    """The task name of an RBP-31 experiment folder (``1_PARCLIP_AGO1234_hg19`` -> ``1_AGO1234``)."""
    parts = name.split("_")
    return parts[0] + "_" + (parts[2] if len(parts) > 2 else parts[-1])


def clip_rows(data: Path, which) -> list[Row]:
    d = data / "deepram_clip31"
    if not d.exists():
        return []
    dirs = sorted(p for p in d.iterdir() if p.is_dir())
    pick = [p for p in dirs if any(p.name.startswith(w) for w in which)] if which else dirs
    rows = []
    for p in pick:
        if not all((p / name_).exists() for name_ in CLIP_FILES):
            continue

        def splits(p=p) -> list[Split]:
            rd = lambda f: read_sequences(p / f, uppercase=True)  # noqa: E731
            tr, va = _holdout_valid(rd("training.fa.gz"))
            te = rd("test.fa.gz")
            return [Split(train=tr, valid=va, test=te)]

        rows.append(
            Row(
                "clip",
                _clip_key(p.name),
                "binary",
                splits,
                binary_metrics,
                "auc",
                None,
                epochs=8,
            )
        )
    return rows


JANGGU_FILES = [
    f"janggu_oct4_mafk/{f}" for f in ("sample.fa", "sample2.fa", "sample_test.fa", "sample2_test.fa")
]


def janggu_rows(data: Path) -> list[Row]:
    d = data / "janggu_oct4_mafk"
    if not all((data / f).exists() for f in JANGGU_FILES):
        return []

    def splits() -> list[Split]:
        a, b = _fasta_seqs(d / "sample.fa"), _fasta_seqs(d / "sample2.fa")
        t = _table(a + b, [1] * len(a) + [0] * len(b))
        ta, tb = _fasta_seqs(d / "sample_test.fa"), _fasta_seqs(d / "sample2_test.fa")
        tr, va = _holdout_valid(t)
        return [Split(train=tr, valid=va, test=_table(ta + tb, [1] * len(ta) + [0] * len(tb)))]

    return [
        Row(
            "janggu",
            "oct4_vs_mafk",
            "binary",
            splits,
            binary_metrics,
            "auc",
            None,
            epochs=20,
            strand_symmetric=True,
        )
    ]


def encode_rows(data: Path) -> list[Row]:
    d = data / "deepbind_encode_chipseq"
    aucf = d / "deepbind_released_model_auc_on_B.tsv"
    if not aucf.exists():
        return []
    import pandas as pd

    ref = pd.read_csv(aucf, sep="\t").set_index("experiment")["auc_on_B"].to_dict()
    rows = []
    for exp in ENCODE_EXPERIMENTS:
        if not all((d / f"{exp}_{fold}.seq.gz").exists() for fold in ("AC", "B")):
            continue

        def splits(exp=exp) -> list[Split]:
            ac = read_sequences(d / f"{exp}_AC.seq.gz", uppercase=True)
            ac = add_shuffled_negatives(ac, seed=0)
            tr, va = _holdout_valid(ac)
            return [Split(train=tr, valid=va, test=read_sequences(d / f"{exp}_B.seq.gz", uppercase=True))]

        pub = (
            {"metric": "auc", "value": float(ref[exp]), "source": "released DeepBind model on fold B"}
            if exp in ref
            else None
        )
        rows.append(
            Row(
                "encode",
                exp.split("_")[0],
                "binary",
                splits,
                binary_metrics,
                "auc",
                pub,
                epochs=10,
                strand_symmetric=True,
            )
        )
    return rows


#: In the default running order: quick datasets first.
DATASETS = ("enhancer", "cnnprom", "splice", "janggu", "encode", "clip", "gue_prom", "gue_tf")


def dataset_files(data: Path, dataset: str, clip_subset) -> tuple[dict[str, list[str]], set[str]]:
    """The files each task of ``dataset`` reads (paths relative to the data directory), and the
    tasks run only when present or asked for with ``--tasks`` (GUE tf 3 and 4, not staged).
    CLIP folders are found by name prefix (``--clip``): a prefix no folder has stands for
    ``deepram_clip31/<prefix>*/``."""
    if dataset in ("gue_tf", "gue_prom"):
        group, names = ("tf", GUE_TF) if dataset == "gue_tf" else ("prom", GUE_PROM)
        files = {n: [f"gue_subset/{group}/{n}/{f}" for f in GUE_FILES] for n in names}
        return files, (set(GUE_TF) - set(GUE_TF_STAGED) if dataset == "gue_tf" else set())
    if dataset == "cnnprom":
        return {
            k: [f"promoter_cnnprom/{f}" for f in pos + neg] for k, (pos, neg) in CNNPROM_FILES.items()
        }, set()
    if dataset == "enhancer":
        return {"layer1": ENHANCER_FILES, "layer2": ENHANCER_FILES}, set()
    if dataset == "splice":
        f = ["splice_uci_primate/splice_uci.csv"]
        return {"uci": f, "uci1000": f}, set()
    if dataset == "janggu":
        return {"oct4_vs_mafk": JANGGU_FILES}, set()
    if dataset == "encode":
        tsv = "deepbind_encode_chipseq/deepbind_released_model_auc_on_B.tsv"
        return {
            e.split("_")[0]: [tsv, *(f"deepbind_encode_chipseq/{e}_{fold}.seq.gz" for fold in ("AC", "B"))]
            for e in ENCODE_EXPERIMENTS
        }, set()
    # clip
    d = data / "deepram_clip31"
    dirs = sorted(p.name for p in d.iterdir() if p.is_dir()) if d.is_dir() else []
    files: dict[str, list[str]] = {}
    for w in clip_subset if clip_subset else [""]:
        found = [n for n in dirs if n.startswith(w)]
        for n in found:
            files[_clip_key(n)] = [f"deepram_clip31/{n}/{f}" for f in CLIP_FILES]
        if not found:
            files[w or "*"] = [f"deepram_clip31/{w}*/{f}" for f in CLIP_FILES]
    return files, set()


def required_files(data: Path, wanted: list[str], tasks: set[str] | None, clip_subset) -> list[str]:
    """Every file the requested datasets (and, with ``--tasks``, tasks) read; exits with the
    known task names when ``--tasks`` names none of theirs."""
    needed: list[str] = []
    known: set[str] = set()
    for ds in wanted:
        files, optional = dataset_files(data, ds, clip_subset)
        known |= set(files)
        for task, fs in files.items():
            if (task in tasks) if tasks else task not in optional:
                needed += fs
    if tasks and not tasks & known:
        raise SystemExit(
            f"error: sequence_tasks.py: --tasks {','.join(sorted(tasks))} names no task of --datasets "
            f"{','.join(wanted)}; their tasks: {', '.join(sorted(known))}"
        )
    return needed


def all_rows(data: Path, clip_subset, wanted) -> list[Row]:
    """The rows of the datasets in ``wanted`` whose files are all present."""
    rows: list[Row] = []
    builders = {
        "gue_tf": lambda: gue_rows(data, "tf", GUE_TF),
        "gue_prom": lambda: gue_rows(data, "prom", GUE_PROM),
        "cnnprom": lambda: cnnprom_rows(data),
        "enhancer": lambda: enhancer_rows(data),
        "splice": lambda: splice_rows(data),
        "clip": lambda: clip_rows(data, clip_subset),
        "janggu": lambda: janggu_rows(data),
        "encode": lambda: encode_rows(data),
    }
    for name, b in builders.items():
        if name in wanted:
            rows += b()
    return rows


# --------------------------------------------------------------------------- running
def _logits(model, ds: SequenceDataset, rc_average: bool, batch_size: int = 512) -> np.ndarray:
    """``(n, n_outputs)`` outputs, optionally averaged with those of the reverse complements."""
    return predict(model, ds, batch_size=batch_size, rc_average=rc_average)[0]


#: Per-system optimiser defaults (``--lr`` overrides). Basset / DeepSEA / DanQ peaked at
#: epoch 0 with lr 3e-3 in the first run, so they train at 1e-3 with more patience.
SYSTEM_LR = {"deepbind": 3e-3, "basset": 1e-3, "deepsea": 1e-3, "danq": 1e-3, "splicing-cnn": 1e-3}
PATIENCE = 6
WEIGHT_DECAY = 1e-4


def _cnn_split(
    row: Row, system: str, sp: Split, k: int, out: Path, opts: dict[str, Any], rc_aug: bool, lr: float
):
    """Train ``system`` on split ``k``: ``{"test": {rc: logits}, "valid": {rc: logits} | None,
    "best_epoch": e}`` (``rc``: outputs averaged with the reverse complements' or not)."""
    iupac = True  # IUPAC ambiguity codes (UCI splice has D, R, S; some FASTA have N) read as N
    seq_len = len(sp.train.seqs[0])
    train_ds = SequenceDataset(sp.train, iupac_as_n=iupac, seed=k)
    if rc_aug or opts["shift"]:
        train_ds = AugmentedDataset(train_ds, Augmenter(rc=rc_aug, shift=opts["shift"], seed=k))
    valid_ds = SequenceDataset(sp.valid, length=seq_len, iupac_as_n=iupac) if sp.valid is not None else None
    test_ds = SequenceDataset(sp.test, length=seq_len, iupac_as_n=iupac)
    recipe = get_recipe(system)
    n_out = len(sp.train.classes) if row.task == "multiclass" else 1
    preset = model_options(system, seq_len, row.strand_symmetric)
    mk = recipe.model_kwargs(n_out, seq_len=seq_len, **preset)
    pos_weight = None
    if opts["class_weight"]:
        y = sp.train.labels[:, 0]
        if row.task == "multiclass":
            cnt = np.bincount(y.astype(int), minlength=n_out)
            pos_weight = torch.tensor(len(y) / (n_out * np.maximum(cnt, 1)), dtype=torch.float32)
        else:
            pos_weight = torch.tensor([(y == 0).sum() / max((y == 1).sum(), 1)], dtype=torch.float32)
    members, best_epochs = [], []
    settings, calibration = [{}], None
    if opts.get("calibrate"):  # --calibrate N: settings chosen by CV on sp.train only
        plain_ds = SequenceDataset(sp.train, iupac_as_n=iupac, seed=k)  # held-out folds: no augmentation
        settings, calibration = _calibrate_split(
            row, recipe, mk, preset, train_ds, plain_ds, sp.train.labels, k, out, opts, lr, pos_weight
        )
    n_members = len(settings) if len(settings) > 1 else int(opts.get("ensemble") or 1)
    for j in range(n_members):
        # --ensemble K: seeds seed + k + 1000 j, the mean of their logits;
        # --calibrate-top K: the K best calibrated settings, each with seed + k, averaged
        seed = opts["seed"] + k + (1000 * j if len(settings) == 1 else 0)
        model_set, train_set = split_setting(settings[j if len(settings) > 1 else 0])
        mk_j = {**mk, **model_set}
        seed_all(seed)
        model = recipe.build(**mk_j)
        cfg = _config(
            opts["epochs"] or row.epochs,
            train_set.get("lr", lr),
            train_set.get("weight_decay", WEIGHT_DECAY),
            seed,
        )
        run = out / f"fold{k}" / (f"member{j + 1}" if n_members > 1 else "")
        res = fit_model(
            model,
            row.task,
            train_ds,
            valid_ds,
            run,
            cfg,
            RunMeta(kind="sequences", recipe=system, task=row.task, model_kwargs=mk_j),
            pos_weight=pos_weight,
        )
        members.append(fit_model_best(run))
        best_epochs.append(res.best_epoch)
    if n_members > 1:
        from biodl.train.ensemble import Ensemble

        model = Ensemble(members).eval()
    else:
        model = members[0]
    return {
        "test": {rc: _logits(model, test_ds, rc) for rc in (False, True)},
        "valid": {rc: _logits(model, valid_ds, rc) for rc in (False, True)} if valid_ds is not None else None,
        "best_epoch": best_epochs[0] if n_members == 1 else best_epochs,
        "calibration": calibration,
    }


def _config(epochs: int, lr: float, weight_decay: float, seed: int) -> TrainConfig:
    """The bench's training settings (CPU, batch 128, patience PATIENCE, no resume)."""
    return TrainConfig(
        max_epochs=epochs,
        patience=PATIENCE,
        batch_size=128,
        lr=lr,
        weight_decay=weight_decay,
        seed=seed,
        device="cpu",
        progress=False,
        resume=False,
    )


def _calibrate_split(
    row: Row,
    recipe,
    mk: dict[str, Any],
    preset: dict[str, Any],
    train_ds,
    plain_ds,
    labels: np.ndarray,
    k: int,
    out: Path,
    opts: dict[str, Any],
    lr: float,
    pos_weight,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``--calibrate N`` on split ``k``: DeepBind's calibration protocol as ``biodl train
    --calibrate N`` runs it (:mod:`biodl.train.calibrate`), on this bench's training path.

    Trial 1 is the bench's own setting (``SYSTEM_LR``, ``WEIGHT_DECAY``, the recipe's network
    defaults); trials 2..N are drawn from the recipe's search space with seed ``seed + k``. The
    bench's CPU presets (``model_options``) and ``--lr``, when given, are fixed, as options given
    to ``biodl train`` are. Each setting is trained on 2 of 3 folds of a stratified subsample (at
    most 10,000) of ``sp.train`` and scored (the task's monitor: val AUROC, or accuracy) on the
    third; the validation split (threshold choice) and the test split are never used. Returns
    the chosen settings (the best, or the ``--calibrate-top`` best, best first) and a record."""
    import inspect
    import shutil

    from biodl.train import MONITOR
    from biodl.train.calibrate import (
        TRAIN_KEYS,
        Rows,
        TrialStore,
        calibration_folds,
        choose,
        draw_settings,
        fold_epochs,
        search_space,
    )

    space = search_space(recipe)
    sig = inspect.signature(recipe.factory).parameters
    base = {  # the bench's own value of every searched name
        n: (lr if n == "lr" else WEIGHT_DECAY) if n in TRAIN_KEYS else mk.get(n, sig[n].default)
        for n in space
    }
    fixed = [n for n in space if n in preset or (n == "lr" and opts["lr"])]
    seed = opts["seed"] + k
    n_trials, n_folds, top = int(opts["calibrate"]), 3, int(opts.get("calibrate_top") or 1)
    settings = draw_settings(space, n_trials, seed, base, fixed)
    rows, folds = calibration_folds(labels, len(plain_ds), n_folds, 10_000, seed)
    epochs = fold_epochs(len(folds[0][0]), opts["epochs"] or row.epochs)
    key, mode = MONITOR[row.task]
    cdir = out / f"fold{k}"
    protocol = {"recipe": recipe.name, "folds": n_folds, "epochs": epochs, "n_rows": len(rows), "seed": seed}
    store = TrialStore(cdir / "calibration.jsonl", protocol)
    trials = []
    for t, setting in enumerate(settings, 1):
        done = store.done(t, setting)
        if done is not None:
            trials.append({x: v for x, v in done.items() if x != "protocol"})
            continue
        model_set, train_set = split_setting(setting)

        def fit_fold(tr, va, fdir, model_set=model_set, train_set=train_set):
            seed_all(seed)
            cfg = _config(epochs, train_set.get("lr", lr), train_set.get("weight_decay", WEIGHT_DECAY), seed)
            net = recipe.build(**{**mk, **model_set})
            return fit_model(
                net, row.task, Rows(train_ds, tr), Rows(plain_ds, va), fdir, cfg, pos_weight=pos_weight
            )

        trial = store.run_trial(t, setting, folds, fit_fold, key, cdir / "calibration")
        trials.append(trial)
        print(
            f"[bench]   split {k} calibration trial {t}/{n_trials}: {key} "
            f"{'nan' if trial['score'] is None else format(trial['score'], '.4f')} "
            + ", ".join(f"{n}={v:.3g}" if isinstance(v, float) else f"{n}={v}" for n, v in setting.items()),
            file=sys.stderr,
            flush=True,
        )
    shutil.rmtree(cdir / "calibration", ignore_errors=True)
    chosen = choose(trials, mode, top)
    by = {t["trial"]: t for t in trials}
    record = {
        "metric": key,
        "folds": n_folds,
        "epochs": epochs,
        "n_rows": len(rows),
        "n_train": len(plain_ds),
        "fixed": fixed,
        "chosen": chosen,
        "trials": [{x: t[x] for x in ("trial", "setting", "score")} for t in trials],
    }
    return [dict(by[t]["setting"]) for t in chosen], record


def _kmer_split(row: Row, sp: Split, k: int, out: Path, opts: dict[str, Any]):
    """DFS on canonical 1-4-mer frequencies of split ``k`` (the features kind, through the library):
    logits of the validation and test sequences (strand-invariant features: the same with rc)."""
    from biodl import pipeline
    from biodl.encode import kmer_frequencies

    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for part, t in (("train", sp.train), ("valid", sp.valid), ("test", sp.test)):
        if t is None:
            continue
        x, names = kmer_frequencies(t.seqs)
        pd.DataFrame(x, columns=names).to_csv(out / f"{part}.tsv", sep="\t", index=False, float_format="%.6g")
        (out / f"{part}.cls").write_text("\n".join(str(int(v)) for v in t.labels[:, 0]) + "\n")
        files[part] = out / f"{part}.tsv"
    opts_k = {
        "data": str(files["train"]),
        "labels": str(out / "train.cls"),
        "test_fraction": 0,
        "report": False,
        "lambdas": KMER_LAMBDAS,
        "classes": ["0", "1"],
        "positive": ["1"],
    }
    if "valid" in files:
        opts_k.update(valid_file=str(files["valid"]), valid_labels=str(out / "valid.cls"))
    cfg = TrainConfig(
        max_epochs=opts["epochs"] or 40,
        patience=PATIENCE,
        batch_size=64,
        lr=0.03,
        seed=opts["seed"] + k,
        device="cpu",
        progress=False,
        resume=False,
    )
    with contextlib.redirect_stderr(io.StringIO()):
        s = pipeline.train(
            "dfs", out / "run", options=opts_k, model_options={"hidden": [64, 32]}, config=cfg, quiet=True
        )

    def logits(part: str) -> np.ndarray:
        p = pipeline.predict(out / "run", files[part], quiet=True)["prob_1"].to_numpy(np.float64)
        p = np.clip(p, 1e-7, 1 - 1e-7)
        return np.log(p / (1 - p)).astype(np.float32)[:, None]

    lt = logits("test")
    lv = logits("valid") if "valid" in files else None
    return {
        "test": {False: lt, True: lt},
        "valid": {False: lv, True: lv} if lv is not None else None,
        "best_epoch": None,
        "selected": s.get("selected"),
    }


def _average(a: dict, b: dict) -> dict:
    """Ensemble of two split results: the mean of the probabilities, as logits."""

    def mean(x, y):
        p = (1 / (1 + np.exp(-x.astype(np.float64))) + 1 / (1 + np.exp(-y.astype(np.float64)))) / 2
        p = np.clip(p, 1e-7, 1 - 1e-7)
        return np.log(p / (1 - p)).astype(np.float32)

    out = {
        "test": {rc: mean(a["test"][rc], b["test"][rc]) for rc in (False, True)},
        "best_epoch": b["best_epoch"],
        "calibration": b.get("calibration"),
    }
    out["valid"] = (
        {rc: mean(a["valid"][rc], b["valid"][rc]) for rc in (False, True)} if a["valid"] is not None else None
    )
    return out


def run_row(row: Row, system: str, out: Path, opts: dict[str, Any]) -> dict[str, Any]:
    """Train and test ``system`` on every split of ``row``; metrics pooled over CV folds.

    ``system`` is a sequence recipe, ``kmer-dfs`` (deep feature selection on canonical
    1-4-mer frequencies, the features kind) or ``kmer-dfs+<recipe>`` (the mean of both models'
    probabilities). Binary rows: the decision threshold of the thresholded metrics (acc, MCC/CC,
    Sn, Sp) is chosen on the validation split (maximising MCC, or accuracy when accuracy is the
    row's metric) and then applied to the test split; test logits are shifted by it so the
    pooled metrics are computed at logit 0. AUC does not depend on it.
    """
    t0 = time.process_time()
    w0 = time.time()
    splits = row.splits()
    kmer = system.startswith("kmer-dfs")
    cnn = system.split("+", 1)[1] if "+" in system else (None if kmer else system)
    if kmer and row.task != "binary":
        raise ValueError("kmer-dfs rows are binary only")
    rc_aug = row.strand_symmetric if opts["rc_augment"] is None else bool(opts["rc_augment"])
    # rc averaging at test time only for models trained with rc augmentation
    rc_avg = rc_aug if opts["rc_average"] is None else bool(opts["rc_average"])
    lr = opts["lr"] or SYSTEM_LR.get(cnn or "", 1e-3)
    crit = "acc" if row.primary == "acc" else "mcc"
    all_logits: dict[bool, list[np.ndarray]] = {False: [], True: []}
    ys, tests, thresholds, best_epochs, selected = [], [], {False: [], True: []}, [], []
    calibrations: list[dict[str, Any]] = []
    for k, sp in enumerate(splits):
        parts = []
        if kmer:
            parts.append(_kmer_split(row, sp, k, out / f"kmer{k}", opts))
            selected.append(parts[-1]["selected"])
        if cnn:
            parts.append(_cnn_split(row, cnn, sp, k, out, opts, rc_aug, lr))
        r = parts[0] if len(parts) == 1 else _average(parts[0], parts[1])
        best_epochs.append(r["best_epoch"])
        if r.get("calibration"):
            calibrations.append(r["calibration"])
        for rc in (False, True):
            lg = r["test"][rc]
            if row.task == "binary":
                thr = 0.0
                if r["valid"] is not None:
                    thr = choose_threshold(r["valid"][rc], sp.valid.labels, crit)
                thresholds[rc].append(thr)
                lg = lg - thr
            all_logits[rc].append(lg)
        ys.append(sp.test.labels)
        tests.append(sp.test)
    y = np.concatenate(ys)
    t = tests[0]
    metrics = {
        "plain": row.metric(np.concatenate(all_logits[False]), y, t),
        "rc_average": row.metric(np.concatenate(all_logits[True]), y, t),
    }
    if row.task == "binary":
        for rc, name in ((False, "plain"), (True, "rc_average")):
            metrics[name]["thr_p"] = float(np.mean([1 / (1 + math.exp(-x)) for x in thresholds[rc]]))
    chosen = metrics["rc_average" if rc_avg else "plain"]
    out_row = {
        "dataset": row.dataset,
        "task": row.key,
        "system": system,
        "variant": opts["variant"],
        "rc_augment": rc_aug,
        "rc_average": rc_avg,
        "lr": lr,
        "metric": row.primary,
        "ours": chosen[row.primary],
        "metrics": metrics,
        "best_epochs": [e for e in best_epochs if e is not None],
        "model_kwargs": model_options(cnn, len(splits[0].train.seqs[0]), row.strand_symmetric) if cnn else {},
        "n_train": int(sum(len(s.train) for s in splits)),
        "n_test": int(len(y)),
        "folds": len(splits),
        "cpu_minutes": round((time.process_time() - t0) / 60, 2),
        "wall_minutes": round((time.time() - w0) / 60, 2),
    }
    if selected:
        out_row["kmer_features_selected"] = selected
    if calibrations:
        out_row["calibration"] = calibrations
    return out_row


def fit_model_best(run: Path):
    from biodl.train import load_model

    model, _ = load_model(run / "model.pt")
    return model


def _fmt(v, pct=False) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{100 * v:.2f}%" if pct else f"{v:.4f}"


def render(results: list[dict[str, Any]], rows_by_key: dict[str, Row]) -> str:
    lines = [
        "| dataset | task | system | variant | metric | ours | published | diff | verdict | CPU min "
        "| other metrics |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        row = rows_by_key[f"{r['dataset']}/{r['task']}"]
        pub = row.published
        pv = pub["value"] if pub else None
        ours = r["ours"]
        hib = row.higher_is_better
        if pv is None:
            diff, verdict = None, "no published number"
        else:
            diff = ours - pv
            ok = diff >= 0 if hib else diff <= 0
            verdict = "at/above published" if ok else "SHORT of published"
        rc = r.get("rc_average", "+rc_avg" in r["variant"])
        m = r["metrics"]["rc_average" if rc else "plain"]
        alt = r["metrics"]["plain" if rc else "rc_average"][r["metric"]]
        other = ", ".join(
            f"{k} {v:.3f}" for k, v in m.items() if k not in (r["metric"], "cc") and not math.isnan(v)
        )
        if row.strand_symmetric or r.get("rc_augment"):
            other += f"; {r['metric']} {'without' if rc else 'with'} rc-average {alt:.4f}"
        if r.get("best_epochs"):
            other += f"; best epoch(s) {','.join(str(e) for e in r['best_epochs'])}"
        pct = row.dataset == "splice"
        lines.append(
            f"| {r['dataset']} | {r['task']} | {r['system']} | {r['variant']} | {r['metric']} "
            f"| {_fmt(ours, pct)} | {_fmt(pv, pct)} | {'n/a' if diff is None else f'{diff:+.4f}'} "
            f"| {verdict} | {r['cpu_minutes']:.2f} | {other} |"
        )
    # best row per (dataset, task) against the published number
    best: dict[str, tuple[float, bool]] = {}
    for r in results:
        row = rows_by_key[f"{r['dataset']}/{r['task']}"]
        if not row.published:
            continue
        k = f"{r['dataset']}/{r['task']}"
        better = (lambda a, b: a > b) if row.higher_is_better else (lambda a, b: a < b)
        if k not in best or better(r["ours"], best[k][0]):
            pv = row.published["value"]
            best[k] = (r["ours"], r["ours"] >= pv if row.higher_is_better else r["ours"] <= pv)
    n_ok = sum(ok for _, ok in best.values())
    lines += [
        "",
        "Best system per row:",
        "",
        "| dataset/task | best system (variant) | metric | ours | published | diff |",
        "|---|---|---|---|---|---|",
    ]
    seen: dict[str, dict] = {}
    for r in results:
        k = f"{r['dataset']}/{r['task']}"
        hib = rows_by_key[k].higher_is_better
        if k not in seen or (r["ours"] > seen[k]["ours"] if hib else r["ours"] < seen[k]["ours"]):
            seen[k] = r
    for k, r in seen.items():
        pub = rows_by_key[k].published
        pv = pub["value"] if pub else None
        pct = r["dataset"] == "splice"
        lines.append(
            f"| {k} | {r['system']} ({r['variant']}) | {r['metric']} | {_fmt(r['ours'], pct)} | "
            f"{_fmt(pv, pct)} | "
            f"{'n/a' if pv is None else format(r['ours'] - pv, '+.4f')} |"
        )
    no_pub = len({f"{r['dataset']}/{r['task']}" for r in results} - set(best))
    lines.append("")
    lines.append(
        f"Best system at/above the published number on {n_ok} of {len(best)} rows with a published "
        f"number ({no_pub} rows have none). Total CPU minutes of these rows: "
        f"{sum(r['cpu_minutes'] for r in results):.1f}."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--data-dir", type=Path, default=None, help="default ../shared/data, fallback /work/shared/data"
    )
    ap.add_argument(
        "--datasets", default=",".join(DATASETS), help=f"comma-separated subset of {', '.join(DATASETS)}"
    )
    ap.add_argument("--tasks", default=None, help="only these tasks (comma-separated, e.g. 0,layer1,ecoli)")
    ap.add_argument(
        "--systems", default="best", help="comma-separated systems, or 'best' (per-dataset choice)"
    )
    ap.add_argument(
        "--max-minutes",
        type=positive_float,
        default=None,
        help="do not start a new row after this many wall minutes",
    )
    ap.add_argument(
        "--epochs", type=positive_int, default=None, help="override the per-dataset maximum epochs"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--lr", type=positive_float, default=None, help="AdamW learning rate (default: SYSTEM_LR)"
    )
    ap.add_argument(
        "--rc-augment",
        choices=("auto", "on", "off"),
        default="auto",
        help="reverse-complement augmentation in training (auto: only strand-symmetric data)",
    )
    ap.add_argument("--shift", type=nonneg_int, default=0, help="shift augmentation (bases)")
    ap.add_argument(
        "--ensemble",
        type=positive_int,
        default=1,
        help="train each CNN as an ensemble of this many seeds, the mean of their logits (variant +ensK)",
    )
    ap.add_argument(
        "--calibrate",
        type=int,
        default=0,
        help="choose each CNN's setting by DeepBind's calibration protocol (biodl train --calibrate N): "
        "N settings from the recipe's search space, each scored by 3-fold CV on a subsample of the "
        "training split only, the best retrained (variant +calN)",
    )
    ap.add_argument(
        "--calibrate-top",
        type=int,
        default=1,
        help="with --calibrate: train the K best settings and average them (variant +calNtopK)",
    )
    ap.add_argument("--class-weight", action="store_true", help="inverse-frequency class weights")
    ap.add_argument(
        "--rc-average",
        choices=("auto", "on", "off"),
        default="auto",
        help="headline = rc-averaged test outputs (auto: iff trained with rc augmentation)",
    )
    ap.add_argument(
        "--ablation", action="store_true", help="run plain, +rc_augment, +shift 5, +class_weight per row"
    )
    ap.add_argument("--clip", default=",".join(CLIP_DEFAULT), help="RBP-31 experiments (prefixes), or 'all'")
    ap.add_argument("--out", type=Path, default=HERE / "out" / "sequence_tasks")
    ap.add_argument("--no-cache", action="store_true", help="recompute rows already in OUT/rows.jsonl")
    ap.add_argument(
        "--threads", type=positive_int, default=1, help="torch threads (keep 1 on shared machines)"
    )
    ap.add_argument(
        "--render-only",
        action="store_true",
        help="train nothing: print the table of every cached row in OUT/rows.jsonl (of the selected "
        "datasets / tasks) whose variant starts with --variant-prefix",
    )
    ap.add_argument("--variant-prefix", default="v2", help="with --render-only: variants to show")
    a = ap.parse_args(argv)
    if a.calibrate < 0 or a.calibrate_top < 1 or (a.calibrate and a.calibrate_top > a.calibrate):
        ap.error("--calibrate N needs N >= 0 and 1 <= --calibrate-top <= N")
    if a.calibrate_top > 1 and (a.ensemble > 1 or not a.calibrate):
        ap.error("--calibrate-top K needs --calibrate and no --ensemble (both make an averaged model)")

    torch.set_num_threads(a.threads)
    from biodl.train.fit import _quiet_lightning

    _quiet_lightning()
    import warnings

    warnings.filterwarnings("ignore")
    data = a.data_dir
    if data is None:
        data = next(
            (c for c in (Path("../shared/data"), Path("/work/shared/data")) if c.is_dir()),
            Path("../shared/data"),
        )
    data = data.expanduser().resolve()
    wanted = [d.strip() for d in a.datasets.split(",") if d.strip()]
    bad = [d for d in wanted if d not in DATASETS]
    if bad:
        print(f"unknown dataset(s) {bad}; known: {', '.join(DATASETS)}", file=sys.stderr)
        return 2
    clip_subset = None if a.clip == "all" else [c.strip() for c in a.clip.split(",") if c.strip()]
    keep = {t.strip() for t in a.tasks.split(",") if t.strip()} if a.tasks else None
    # every file of the requested datasets / tasks, checked before any training
    require_data(
        "sequence_tasks.py",
        data,
        required_files(data, wanted, keep, clip_subset),
        DATA_SOURCE,
        hint=f"read by --datasets {','.join(wanted)}" + (f" --tasks {a.tasks}" if keep else ""),
    )
    rows = all_rows(data, clip_subset, wanted)
    rows = sorted(rows, key=lambda r: wanted.index(r.dataset))
    if keep:
        rows = [r for r in rows if r.key in keep]
    rows_by_key = {f"{r.dataset}/{r.key}": r for r in rows}
    a.out.mkdir(parents=True, exist_ok=True)
    cache_f = a.out / "rows.jsonl"
    cache: dict[str, dict] = {}
    if cache_f.exists() and not a.no_cache:
        for line in cache_f.read_text().splitlines():
            r = json.loads(line)
            cache[f"{r['dataset']}/{r['task']}/{r['system']}/{r['variant']}"] = r
    # what else changes the trained model is in every row's name, so that a cached row is only
    # ever reused for the same settings (ablation rows at --epochs 1 were cached as plain "v2")
    settings = [
        n
        for n, on in (
            (f"lr{a.lr:g}" if a.lr else "", a.lr),
            (f"epochs{a.epochs}" if a.epochs else "", a.epochs),
            (f"ens{a.ensemble}", a.ensemble > 1),
            (f"cal{a.calibrate}" + (f"top{a.calibrate_top}" if a.calibrate_top > 1 else ""), a.calibrate),
        )
        if on
    ]
    if a.ablation:
        variants = [
            ("+".join([v, *settings]), kw)
            for v, kw in (
                ("v2", dict(rc_augment=None, shift=0, class_weight=False)),
                ("v2+no_rc", dict(rc_augment=False, shift=0, class_weight=False)),
                ("v2+rc_augment", dict(rc_augment=True, shift=0, class_weight=False)),
                ("v2+shift5", dict(rc_augment=None, shift=5, class_weight=False)),
                ("v2+class_weight", dict(rc_augment=None, shift=0, class_weight=True)),
            )
        ]
    else:
        # "v2" = validation-chosen thresholds, per-system lr, patience 6, rc augmentation on
        # strand-symmetric data (the first run's rows, cached as "plain" etc., used p = 0.5)
        rc_opt = {"auto": None, "on": True, "off": False}[a.rc_augment]
        name = "+".join(
            ["v2"]
            + [
                n
                for n, on in (
                    ("rc_augment" if rc_opt else "no_rc", rc_opt is not None),
                    (f"shift{a.shift}", a.shift),
                    ("class_weight", a.class_weight),
                )
                if on
            ]
            + settings
        )
        variants = [(name, dict(rc_augment=rc_opt, shift=a.shift, class_weight=a.class_weight))]
    t_start = time.time()
    results = []
    failed: list[str] = []
    if a.render_only:
        order = {k: i for i, k in enumerate(rows_by_key)}
        results = sorted(
            (
                r
                for r in cache.values()
                if f"{r['dataset']}/{r['task']}" in rows_by_key
                and r["variant"].startswith(a.variant_prefix)
                and rows_by_key[f"{r['dataset']}/{r['task']}"].tag in r["variant"]  # superseded protocol
            ),
            key=lambda r: (order[f"{r['dataset']}/{r['task']}"], r["system"], r["variant"]),
        )
        rows = []
    for row in rows:
        systems = [BEST[row.dataset]] if a.systems == "best" else [s.strip() for s in a.systems.split(",")]
        for system in systems:
            for vname, v in variants:
                tag = vname + {"auto": "", "on": "+rc_avg", "off": "+no_rc_avg"}[a.rc_average]
                tag += row.tag
                if system == "deepbind" and not row.strand_symmetric:
                    tag += "+1strand"  # single-strand scanning on oriented data (see model_options)
                key = f"{row.dataset}/{row.key}/{system}/{tag}"
                if key in cache:
                    results.append(cache[key])
                    continue
                if a.max_minutes is not None and (time.time() - t_start) / 60 > a.max_minutes:
                    print(f"[bench] time budget reached; not running {key}", file=sys.stderr)
                    continue
                print(f"[bench] running {key} ...", file=sys.stderr, flush=True)
                rc_avg = {"auto": None, "on": True, "off": False}[a.rc_average]
                opts = dict(
                    v,
                    seed=a.seed,
                    epochs=a.epochs,
                    lr=a.lr,
                    rc_average=rc_avg,
                    variant=tag,
                    ensemble=a.ensemble,
                    calibrate=a.calibrate,
                    calibrate_top=a.calibrate_top,
                )
                try:
                    r = run_row(row, system, a.out / "runs" / key.replace("/", "__"), opts)
                except (BiodlInputError, ValueError) as e:
                    print(f"[bench] {key} failed: {e}", file=sys.stderr)
                    failed.append(key)
                    continue
                results.append(r)
                with open(cache_f, "a") as fh:
                    fh.write(json.dumps(r) + "\n")
                print(
                    f"[bench] {key}: {r['metric']} {r['ours']:.4f} ({r['cpu_minutes']:.2f} CPU min)",
                    file=sys.stderr,
                    flush=True,
                )
    table = render(results, rows_by_key)
    proto = "\n".join(f"* {k}: {v}" for k, v in PROTOCOLS.items() if k in wanted)
    text = f"{table}\n\nProtocols:\n{proto}\n"
    print(text)
    tmp = a.out / ".table.md.tmp"
    tmp.write_text(text)
    os.replace(tmp, a.out / "table.md")
    tmp = a.out / ".table.json.tmp"
    tmp.write_text(json.dumps(results, indent=1))
    os.replace(tmp, a.out / "table.json")
    if failed:
        print(
            f"[bench] error: {len(failed)} requested row(s) failed (messages above): {', '.join(failed)}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(guarded(main))
