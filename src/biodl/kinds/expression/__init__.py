"""Gene expression matrices: ADAGE (denoising autoencoders of gene expression) and D-GEX
(landmark -> target expression inference), their readers, baselines and evaluations.

Modules: :mod:`~biodl.kinds.expression.io` (h5ad / PCL / TSV / CSV / GCT readers, gene sets),
:mod:`~.training` (ADAGE's greedy layers and D-GEX through the one runner), :mod:`~.adage`
(published ADAGE model, activities, signatures, gene-set coverage, PCA/ICA baselines),
:mod:`~.dgex` (landmark/target split, LR / KNN-GE baselines), :mod:`~.kind` (the
:class:`~biodl.kinds.base.DataKind`), :mod:`~.cli` (``biodl adage ...``), :mod:`~.recipes`.
Importing this package imports no torch.
"""
