"""The enhancer / promoter systems on feature tables (imported by :mod:`biodl.registry`; imports
no torch): DFS, PEDLA and DEEP."""

from __future__ import annotations

from biodl.registry import NO_GRADIENT_TRAINING, Recipe, register

KINDS = ("features",)

register(
    Recipe(
        name="dfs",
        title="Deep feature selection",
        model="biodl.models.features:DFS",
        kinds=KINDS,
        tasks=("binary", "multiclass"),
        citation="Li Y, Chen CY, Wasserman WW. Deep feature selection: theory and application to identify enhancers and promoters. J Comput Biol 23:322-336 (2016); RECOMB 2015.",
        status="ready",
        model_defaults=dict(hidden=[128, 64], activation="tanh", dropout=0.0, l1=0.01, l1_ratio=1.0, l2=1e-4),
        # SGD with momentum (the proximal L1 step needs an SGD step), tuned on a HUVEC split
        train_defaults=dict(lr=0.03, batch_size=250, max_epochs=30, patience=8),
        option_defaults=dict(optimizer="momentum", class_weight=True),
        derived=("n_features", "n_outputs"),
        toy={"model": {"hidden": [16]}, "options": {"lambdas": [0.001, 0.05]}},
        reference="The paper selects a few marks (H3K4me1 / H3K27ac for enhancers, H3K4me3 for promoters) on ENCODE "
        "cell lines; no accuracy for the released HUVEC / HMEC tables was verified: bench/regulatory_features.py "
        "compares it with baselines under one protocol.",
    )
)

register(
    Recipe(
        name="pedla",
        title="PEDLA (enhancer prediction)",
        model="biodl.models.features:PEDLA",
        kinds=KINDS,
        tasks=("binary", "multiclass"),
        citation="Liu F, Li H, Ren C, Bo X, Shu W. PEDLA: predicting enhancers with a deep learning-based algorithmic framework. Sci Rep 6:28517 (2016).",
        status="ready",
        model_defaults=dict(hidden=[100, 50], corruption=0.2, dropout=0.2),
        train_defaults=dict(lr=1e-3, batch_size=100, max_epochs=60, patience=8),
        option_defaults=dict(class_weight=True, optimizer="adamw"),
        derived=("n_features", "n_outputs"),
        toy={"model": {"hidden": [16, 8]}, "options": {"pretrain_epochs": 1}},
        reference="PEDLA (1,114 features, 22 cell types): GM 0.9197 on H1 enhancers; here on the ENCODE "
        "HUVEC / HMEC tables (bench/regulatory_features.py).",
    )
)

register(
    Recipe(
        name="deep-enhancer",
        title="DEEP (enhancer ensemble)",
        model="biodl.models.features:SVMEnsemble",
        kinds=KINDS,
        tasks=("binary",),
        citation="Kleftogiannis D, Kalnis P, Bajic VB. DEEP: a general computational framework for predicting enhancers. Nucleic Acids Res 43:e6 (2015).",
        status="ready",
        derived=("n_features", "members", "gamma"),
        unused_training=NO_GRADIENT_TRAINING,
        unused_why="it trains an ensemble of SVMs, not a network (its settings: --set n_svms=..., --help-options)",
        toy={"options": {"n_svms": 2}},
        reference="DEEP reports GM 0.90 on FANTOM5 enhancers; here on the ENCODE HUVEC / HMEC tables "
        "(bench/regulatory_features.py).",
    )
)
