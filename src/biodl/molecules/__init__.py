"""Molecules: neural graph fingerprints (Duvenaud et al. 2015) and circular-fingerprint baselines.

Modules
-------
io          read SMILES tables / SDF with targets; invalid molecules reported by line
featurize   the paper's atom and bond features, batched graphs, RDKit Morgan fingerprints
data        datasets, the graph collate and the training loop (shared engine pieces)
plugin      ``train`` / ``evaluate`` / ``predict`` behind ``biodl train --system neural-fp``
interpret   substructures that most activate fingerprint bits, drawn with RDKit
recipes     registers ``neural-fp`` and ``circular-fp``

This package imports nothing heavy on import; import the submodules you need.
"""
