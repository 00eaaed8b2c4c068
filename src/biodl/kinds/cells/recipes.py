"""Registers the ``cellcnn`` recipe (imported by :mod:`biodl.registry`; imports no torch)."""

from __future__ import annotations

from biodl.registry import Recipe, register

register(
    Recipe(
        name="cellcnn",
        title="CellCnn",
        model="biodl.models.cellcnn:CellCnnEnsemble",
        kinds=("cells",),
        tasks=("multiclass", "binary", "regression"),
        citation="Arvaniti E, Claassen M. Sensitive detection of rare disease-associated cell "
        "subsets via representation learning. Nat Commun 8:14825 (2017).",
        status="ready",
        train_defaults=dict(batch_size=200, max_epochs=20, patience=5),
        derived=("n_markers", "n_outputs", "members", "regression"),
        unused_training=(
            "weight_decay",
            "precision",
            "profiler",
            "num_workers",
            "min_epochs",
            "devices",
            "strategy",
            "num_nodes",
        ),
        unused_why="its restarts train one after another in float32 in this process (one device), "
        "without Lightning's profiler, data workers or a minimum of epochs; its weight penalty is --set l2",
        toy={"options": {"ncell": 50, "nsubset": 16, "nrun": 2, "n_best": 2, "embedding": "pca"}},
        reference="Bodenmiller 2012 PBMC BCR-XL vs reference: stimulated samples separated, the responding "
        "subset is B cells with pS6, pPlcg2, pBtk, pErk among the responding markers (paper Fig. 2); rare "
        "subsets detected down to ~0.01% frequency in spike-in experiments.",
    )
)
