"""CpG methylation profiles (bulk samples or single cells): the methylation of a CpG site from
the states of the observed CpGs around it -- DeepCpG's CpG module and Wang et al.'s stacked
denoising autoencoder.

Modules: :mod:`~biodl.kinds.methylation.io` (DeepCpG call tables, Bismark ``.cov``, bedGraph,
sample tables, annotation BED files), :mod:`~.data` (neighbour features computed per batch),
:mod:`~.kind` (the :class:`~biodl.kinds.base.DataKind`), :mod:`~.report`, :mod:`~.recipes`.
Importing this package imports no torch.
"""
