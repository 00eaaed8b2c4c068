"""Expression systems: ADAGE (denoising autoencoders of gene expression) and D-GEX
(landmark -> target expression inference), their readers, baselines and evaluations.

Modules: :mod:`~biodl.expression.io` (h5ad / PCL / TSV / CSV / GCT readers, gene sets),
:mod:`~biodl.expression.training` (Lightning training plans), :mod:`~biodl.expression.adage`
(published ADAGE model, activities, signatures, gene-set coverage, PCA/ICA baselines),
:mod:`~biodl.expression.dgex` (landmark/target split, LR / KNN-GE baselines, cross-validation),
:mod:`~biodl.expression.plugin` (``biodl train/evaluate/predict``),
:mod:`~biodl.expression.recipes` (registry entries).
"""

from biodl.expression.io import ExpressionMatrix, read_expression, read_gene_sets

__all__ = ["ExpressionMatrix", "read_expression", "read_gene_sets"]
