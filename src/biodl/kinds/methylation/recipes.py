"""The CpG methylation systems (imported by :mod:`biodl.registry`; imports no torch)."""

from __future__ import annotations

from biodl.registry import Recipe, register

KINDS = ("methylation",)

register(
    Recipe(
        name="deepcpg-cpg",
        title="DeepCpG CpG module",
        model="biodl.models.methylation:CpGModule",
        kinds=KINDS,
        tasks=("binary", "multilabel", "regression"),
        citation="Angermueller C, Lee HJ, Reik W, Stegle O. DeepCpG: accurate prediction of single-cell DNA "
        "methylation states using deep learning. Genome Biol 18:67 (2017).",
        status="ready",
        model_defaults=dict(embed=128, hidden=64, dropout=0.2),
        train_defaults=dict(lr=1e-3, batch_size=256, max_epochs=10, patience=3, weight_decay=1e-5),
        derived=("n_profiles", "n_features", "n_outputs"),
        toy={"model": {"embed": 8, "hidden": 4}, "options": {"k": 3, "max_sites": 200}},
        reference="DeepCpG reports per-cell AUC 0.83-0.89 for its CpG module on mouse ESC scBS-seq; here "
        "on its test data (bench/methylation.py).",
    )
)

register(
    Recipe(
        name="cpg-sae",
        title="CpG stacked autoencoder",
        model="biodl.models.methylation:CpGSAE",
        kinds=KINDS,
        tasks=("binary", "multilabel", "regression"),
        citation="Wang Y, Liu T, Xu D, Shi H, Zhang C, Mo YY, Wang Z. Predicting DNA methylation state of CpG "
        "dinucleotide using genome topological features and deep networks. Sci Rep 6:19598 (2016).",
        status="ready",
        model_defaults=dict(hidden=[100, 50], corruption=0.2, dropout=0.1),
        train_defaults=dict(lr=1e-3, batch_size=256, max_epochs=10, patience=3),
        derived=("n_profiles", "n_features", "n_outputs"),
        toy={"model": {"hidden": [8, 4]}, "options": {"k": 3, "max_sites": 200, "pretrain_epochs": 1}},
        reference="Wang et al. report 89.7% / 88.6% accuracy in GM12878 / K562 with neighbour states (450K "
        "arrays); here on DeepCpG's mouse test data (bench/methylation.py).",
    )
)
