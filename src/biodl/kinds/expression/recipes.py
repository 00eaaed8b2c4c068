"""Registry entries of the expression systems (imported by :mod:`biodl.registry`; imports no torch)."""

from __future__ import annotations

from biodl.registry import Recipe, register

register(
    Recipe(
        name="adage",
        title="ADAGE",
        model="biodl.models.adage:ADAGE",
        kinds=("expression",),
        tasks=("reconstruction",),
        citation="Tan J, Hammond JH, Hogan DA, Greene CS. ADAGE-based integration of publicly available "
        "Pseudomonas aeruginosa gene expression data with denoising autoencoders illuminates microbe-host "
        "interactions. mSystems 1:e00025-15 (2016); Tan J et al. PSB 2015.",
        status="ready",
        model_defaults=dict(nodes=50, corruption=0.1),
        train_defaults=dict(lr=0.01, batch_size=10, max_epochs=500, patience=0, weight_decay=0.0),
        option_defaults=dict(optimizer="sgd"),
        derived=("n_genes",),
        toy={"model": {"nodes": 6}},
        reference="P. aeruginosa compendium (950 arrays, 5549 genes): 50 nodes, corruption 0.1, batch 10, "
        "500 epochs, SGD lr 0.01; high-weight genes at 2.5 sd; compared favourably with PCA/ICA "
        "on KEGG pathway and operon coverage.",
    )
)

register(
    Recipe(
        name="dgex",
        title="D-GEX",
        model="biodl.models.dgex:DGEX",
        kinds=("expression",),
        tasks=("regression",),
        citation="Chen Y, Li Y, Narayan R, Subramanian A, Xie X. Gene expression inference with deep "
        "learning. Bioinformatics 32:1832-1839 (2016).",
        status="ready",
        model_defaults=dict(hidden=3000, layers=1, dropout=0.1, activation="tanh"),
        train_defaults=dict(lr=1e-3, batch_size=200, max_epochs=200, patience=10, weight_decay=0.0),
        option_defaults=dict(optimizer="adam"),
        derived=("n_landmarks", "n_targets"),
        toy={"model": {"hidden": 32}},
        reference="GEO (943 landmarks -> 9520 targets, 88,807 arrays) test MAE: LR 0.3784, KNN-GE 0.5866, "
        "D-GEX-10%-9000x3 0.3204 (D-GEX better than LR on 99.97% of targets); GTEx cross-platform: "
        "LR 0.4702, D-GEX 0.4393 (81.31% of targets).",
    )
)

register(
    Recipe(
        name="sparse-ae",
        title="Stacked sparse autoencoder",
        model="biodl.models.sparse_ae:StackedSparseAE",
        kinds=("expression",),
        tasks=("reconstruction",),
        citation="Chen L, Cai C, Chen V, Lu X. Learning a hierarchical representation of the yeast "
        "transcriptomic machinery using an autoencoder model. BMC Bioinformatics 17 Suppl 1:S9 (2016).",
        status="ready",
        model_defaults=dict(
            nodes=[64, 32, 16, 8], sparsity=0.1, sparsity_weight=1.0, scaling="ufldl", reconstruction="bce"
        ),
        train_defaults=dict(lr=0.01, batch_size=128, max_epochs=100, patience=0, weight_decay=1e-4),
        option_defaults=dict(optimizer="adam"),
        derived=("n_genes",),
        toy={"model": {"nodes": [6, 4]}},
        reference="Yeast compendium (>1,000 arrays): 4 hidden layers of sigmoid units; first-layer units "
        "map close to one-to-one onto transcription factors, higher layers onto shared biological processes. "
        "Ours (bench/README_yeast.md): Eisen 1998, 2,467 genes x 79 arrays, layer features of Brown et al.'s "
        "186 labelled genes vs an SVM on the raw profiles.",
    )
)
