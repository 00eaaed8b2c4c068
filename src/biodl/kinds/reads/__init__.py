"""DNA reads: identify organisms from a stream of sequencing reads.

A reference (``biodl reads build-reference``) holds 2-bit encoded genomes with their taxonomy
(species -> genus -> family ...). The networks read hashed canonical k-mers of a read: a k-mer
EmbeddingBag + MLP built for throughput (``read-classifier``) and a DeepMicrobes-style k-mer
embedding + BiLSTM + attention (``read-bilstm``), both with one head per rank and a calibrated
confidence that reports a read at the deepest rank where the model is sure (unclassified
otherwise), as Kraken2 reports the LCA. Training reads are sampled on the fly from the
reference genomes (seeded, both strands, substitution errors).

Modules: :mod:`~biodl.kinds.reads.io` (streaming FASTA/FASTQ reader, taxonomy, reference),
:mod:`~.kmers` (vectorised 2-bit encoding and k-mer hashing), :mod:`~.data` (read sampling,
datasets), :mod:`~.classify` (streaming classification, worker threads or processes, Dask,
Kraken-style report), :mod:`~.engine` (the network in numpy, or torch), :mod:`~.weights`
(model files read without torch, the k-mer table quantised to 8 / 4 bits), :mod:`~.kind`,
:mod:`~.report`, :mod:`~.recipes`, :mod:`~.cli` (``biodl reads build-reference | sample |
classify | quantize``). Importing this package imports no torch, nor does classifying with the
numpy engine.
"""
