"""Cytometry: FCS input, CellCnn training, evaluation and interpretation.

Modules: :mod:`~biodl.cells.io` (FCS files, arcsinh, sample tables), :mod:`~biodl.cells.fit`
(multi-cell inputs, restarts, ensemble), :mod:`~biodl.cells.plugin` (``biodl train --system
cellcnn``), :mod:`~biodl.cells.interpret` (filters, selected cells, marker profiles),
:mod:`~biodl.cells.baseline` (cluster-median + logistic-regression baseline),
:mod:`~biodl.cells.experiments` (leave-one-group-out and spike-in experiments).
"""

from biodl.cells.io import arcsinh_transform, load_samples, read_fcs, read_sample_table

__all__ = ["arcsinh_transform", "load_samples", "read_fcs", "read_sample_table"]
