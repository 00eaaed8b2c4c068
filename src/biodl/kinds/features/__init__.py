"""Tables of genomic features with class labels (ENCODE signal per region): deep feature
selection (DFS), PEDLA and DEEP.

Modules: :mod:`~biodl.kinds.features.io` (feature tables, label and name files, validation),
:mod:`~.kind` (the :class:`~biodl.kinds.base.DataKind`), :mod:`~.selection` (randomized DFS:
stability selection), :mod:`~.report` (selected features, the penalty path, confusion matrix),
:mod:`~.recipes`. Importing this package imports no torch.
"""
