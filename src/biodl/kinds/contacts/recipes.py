"""The protein contact systems (imported by :mod:`biodl.registry`; imports no torch): PconsC2."""

from __future__ import annotations

from biodl.registry import NO_GRADIENT_TRAINING, Recipe, register

KINDS = ("contacts",)

register(
    Recipe(
        name="pconsc2",
        title="PconsC2 (layered random forests on coevolution)",
        model="biodl.models.contacts:PconsC2",
        kinds=KINDS,
        tasks=("binary",),
        citation="Skwark MJ, Raimondi D, Michel M, Elofsson A. Improved contact predictions using the recognition of protein like contact patterns. PLoS Comput Biol 10:e1003889 (2014).",
        status="ready",
        model_defaults=dict(
            n_layers=5, n_trees=100, window=11, min_samples_leaf=10, max_pairs=40000, max_features="sqrt"
        ),
        derived=("n_maps", "n_pair", "shapes"),
        unused_training=NO_GRADIENT_TRAINING,
        unused_why="it trains random forests, not a network (its settings: -m n_trees=..., --help-options)",
        toy={
            "model": {"n_layers": 2, "n_trees": 5, "window": 5, "max_pairs": 2000},
            "options": {"plm_iter": 10, "psicov_iter": 2},
        },
        reference="PconsC2 stacks 5 forests over plmDCA and PSICOV maps of 4 alignments each plus secondary "
        "structure, and reports better precision than either alone on the 150-protein PSICOV set (its figures "
        "were not re-checked here). Ours: one alignment per protein, no secondary structure, trained leave-one-"
        "protein-out on the 8 proteins we hold: bench/contacts.py, bench/README_contacts.md.",
    )
)
