"""Cytometry: FCS input, CellCnn training, evaluation and interpretation.

Modules: :mod:`~biodl.kinds.cells.io` (FCS files, arcsinh, sample tables), :mod:`~.restarts`
(multi-cell inputs, restarts over the one runner, ensemble), :mod:`~.kind` (the
:class:`~biodl.kinds.base.DataKind`), :mod:`~.interpret` (filters, selected cells, marker
profiles), :mod:`~.baseline` (cluster-median + logistic-regression baseline),
:mod:`~.experiments` (leave-one-group-out and spike-in experiments), :mod:`~.cli`
(``biodl cells ...``), :mod:`~.recipes`. Importing this package imports no torch.
"""
