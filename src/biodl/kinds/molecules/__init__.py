"""Molecules: neural graph fingerprints (Duvenaud et al. 2015) and circular-fingerprint baselines.

Modules
-------
io          read SMILES tables / SDF with targets; invalid molecules reported by line
featurize   the paper's atom and bond features, batched graphs, RDKit Morgan fingerprints
data        datasets and the graph collate for the shared engine
kind        the DataKind behind ``biodl train --system neural-fp`` (search + refit included)
search      the random hyperparameter search space
interpret   substructures that most activate fingerprint bits, drawn with RDKit
cli         ``biodl molecules ...``
recipes     registers ``neural-fp`` and ``circular-fp``

Importing this package imports no torch.
"""
