"""Protein residue contacts from multiple sequence alignments: PconsC2 (layered random forests
over coevolution maps), with plmDCA, PSICOV-like, MI+APC and the ported DEEPCON network as
predictors.

Modules: :mod:`~biodl.kinds.contacts.io` (alignments, structures, RR files, protein tables),
:mod:`~.coevolution` (MI+APC, PSICOV-like, plmDCA, DeepCov features; torch), :mod:`~.scoring`
(top-L precision), :mod:`~.kind` (the :class:`~biodl.kinds.base.DataKind`), :mod:`~.predictors`
(one call per method), :mod:`~.report`, :mod:`~.recipes`, :mod:`~.cli`. Importing this package
imports no torch.
"""
