"""Genome windows (DeepSEA-style): a genome FASTA tiled into windows labelled by a GFF/BED
annotation; any sequence recipe trains on them.

Modules: :mod:`~biodl.kinds.windows.data` (tiling, labelling, region hold-outs, the streaming
dataset, :class:`~biodl.kinds.windows.data.WindowSpec`), :mod:`~.kind` (the
:class:`~biodl.kinds.base.DataKind`). The recipes are the sequence kind's. Importing this
package imports no torch.
"""
