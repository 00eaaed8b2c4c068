"""Registry entries of the expression systems (imported by :mod:`biodl.recipes`)."""

from __future__ import annotations

from biodl.models.adage import ADAGE
from biodl.models.dgex import DGEX
from biodl.recipes import Recipe, register

register(
    Recipe(
        name="adage",
        title="ADAGE",
        factory=ADAGE,
        data_kind="expression",
        tasks=("reconstruction",),
        citation="Tan J, Hammond JH, Hogan DA, Greene CS. ADAGE-based integration of publicly available "
        "Pseudomonas aeruginosa gene expression data with denoising autoencoders illuminates microbe-host "
        "interactions. mSystems 1:e00025-15 (2016); Tan J et al. PSB 2015.",
        status="ready",
        model_defaults=dict(nodes=50, corruption=0.1),
        train_defaults=dict(lr=0.01, batch_size=10, max_epochs=500, patience=0, weight_decay=0.0),
        reference="P. aeruginosa compendium (950 arrays, 5549 genes): 50 nodes, corruption 0.1, batch 10, "
        "500 epochs, SGD lr 0.01; high-weight genes at 2.5 sd; compared favourably with PCA/ICA "
        "on KEGG pathway and operon coverage.",
        plugin="biodl.expression.plugin",
    )
)

register(
    Recipe(
        name="dgex",
        title="D-GEX",
        factory=DGEX,
        data_kind="expression",
        tasks=("regression",),
        citation="Chen Y, Li Y, Narayan R, Subramanian A, Xie X. Gene expression inference with deep "
        "learning. Bioinformatics 32:1832-1839 (2016).",
        status="ready",
        model_defaults=dict(hidden=3000, layers=1, dropout=0.1, activation="tanh"),
        train_defaults=dict(lr=1e-3, batch_size=200, max_epochs=200, patience=10, weight_decay=0.0),
        reference="GEO (943 landmarks -> 9520 targets, 88,807 arrays) test MAE: LR 0.3784, KNN-GE 0.5866, "
        "D-GEX-10%-9000x3 0.3204 (D-GEX better than LR on 99.97% of targets); GTEx cross-platform: "
        "LR 0.4702, D-GEX 0.4393 (81.31% of targets).",
        plugin="biodl.expression.plugin",
    )
)
