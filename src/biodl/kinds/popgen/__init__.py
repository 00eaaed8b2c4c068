"""Population genetics: inference of recombination, demography and selection from genotype
matrices -- Sheehan & Song (2016)'s summary-statistic network, Flagel et al. (2019)'s CNN over
the haplotype matrix and an exchangeable (permutation-invariant) network, with rejection ABC as
the baseline.

Modules: :mod:`~biodl.kinds.popgen.simulate` (msprime scenarios; sharded, resumable, seeded
datasets), :mod:`~.io` (datasets, VCF windows), :mod:`~.stats` (summary statistics with
scikit-allel), :mod:`~.data` (matrix encoding, targets), :mod:`~.abc` (rejection ABC),
:mod:`~.kind` (the :class:`~biodl.kinds.base.DataKind`), :mod:`~.report`, :mod:`~.recipes`,
:mod:`~.cli` (``biodl popgen simulate``). Importing this package imports no torch.
"""
