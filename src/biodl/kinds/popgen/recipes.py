"""The population-genetic systems (imported by :mod:`biodl.registry`; imports no torch)."""

from __future__ import annotations

from biodl.registry import Recipe, register

KINDS = ("popgen",)
_DERIVED = ("n_haplotypes", "n_sites", "n_stats", "n_outputs")

register(
    Recipe(
        name="popgen-mlp",
        title="Summary-statistic network (Sheehan & Song)",
        model="biodl.models.popgen:SummaryMLP",
        kinds=KINDS,
        tasks=("regression", "multiclass"),
        citation="Sheehan S, Song YS. Deep learning for population genetic inference. PLoS Comput Biol 12:e1004845 (2016).",
        status="ready",
        model_defaults=dict(hidden=[64, 64], dropout=0.1),
        train_defaults=dict(lr=1e-3, batch_size=64, max_epochs=60, patience=8, weight_decay=1e-4),
        derived=_DERIVED,
        toy={"model": {"hidden": [8]}},
        reference="Sheehan & Song: 3-epoch sizes of D. melanogaster (Zambia) N = 544,200 / 145,300 / 652,700 and 6.2% "
        "selection misclassification on simulated test data; here bench/popgen.py (b) and (c).",
    )
)

register(
    Recipe(
        name="popgen-cnn",
        title="Haplotype-matrix CNN (Flagel et al.)",
        model="biodl.models.popgen:FlagelCNN",
        kinds=KINDS,
        tasks=("regression", "multiclass"),
        citation="Flagel L, Brandvain Y, Schrider DR. The unreasonable effectiveness of convolutional neural networks in population genetic inference. Mol Biol Evol 36:220-238 (2019).",
        status="ready",
        model_defaults=dict(channels=256, kernel=2, pos_hidden=64, hidden=256, dropout=0.25),
        train_defaults=dict(lr=1e-3, batch_size=64, max_epochs=30, patience=5),
        derived=_DERIVED,
        toy={"model": {"channels": 8, "pos_hidden": 4, "hidden": 8}, "options": {"abc": False}},
        reference="Flagel et al.'s recombination CNN: R^2 0.863, RMSE 218 (rho) on 6,044 test sims, LDhat 0.768 / 321; "
        "here bench/popgen.py (a).",
    )
)

register(
    Recipe(
        name="popgen-exchangeable",
        title="Exchangeable haplotype network",
        model="biodl.models.popgen:ExchangeableNet",
        kinds=KINDS,
        tasks=("regression", "multiclass"),
        citation="Chan J, Perrone V, Spence JP, Jenkins PA, Mathieson S, Song YS. A likelihood-free inference framework for population genetic data using exchangeable neural networks. NeurIPS 31 (2018).",
        status="ready",
        model_defaults=dict(channels=64, kernel=5, pool_bins=32, hidden=128, dropout=0.1),
        train_defaults=dict(lr=1e-3, batch_size=64, max_epochs=30, patience=5),
        derived=_DERIVED,
        toy={"model": {"channels": 4, "pool_bins": 4, "hidden": 8}, "options": {"abc": False}},
        reference="A permutation-invariant network over haplotypes (Chan et al. 2018); compared with the CNN and "
        "the summary-statistic network in bench/popgen.py.",
    )
)
