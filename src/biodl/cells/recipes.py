"""Registers the ``cellcnn`` recipe (imported by :mod:`biodl.recipes`)."""

from __future__ import annotations

from biodl.models.cellcnn import CellCnnEnsemble
from biodl.recipes import Recipe, register

register(
    Recipe(
        name="cellcnn",
        title="CellCnn",
        factory=CellCnnEnsemble,
        data_kind="cells",
        tasks=("multiclass", "binary", "regression"),
        citation="Arvaniti E, Claassen M. Sensitive detection of rare disease-associated cell "
        "subsets via representation learning. Nat Commun 8:14825 (2017).",
        status="ready",
        model_defaults={},
        train_defaults=dict(batch_size=200, max_epochs=20, patience=5),
        reference="Bodenmiller 2012 PBMC BCR-XL vs reference: stimulated samples separated, the responding "
        "subset is B cells with pS6, pPlcg2, pBtk, pErk among the responding markers (paper Fig. 2); rare "
        "subsets detected down to ~0.01% frequency in spike-in experiments.",
        plugin="biodl.cells.plugin",
    )
)
