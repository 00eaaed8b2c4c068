"""Labelled sequence files (TSV/CSV tables, DeepBind ``.seq`` files, labelled FASTA): DeepBind,
DeepSEA, Basset, DanQ and the splicing CNN.

Modules: :mod:`~biodl.kinds.sequences.io` (reading and validation), :mod:`~.data` (datasets,
shuffled negatives), :mod:`~.augment` (reverse complement and shifts, shared with genome
windows), :mod:`~.kind` (the :class:`~biodl.kinds.base.DataKind`), :mod:`~.report` (filter logos,
ISM, variants), :mod:`~.recipes`. Importing this package imports no torch.
"""
