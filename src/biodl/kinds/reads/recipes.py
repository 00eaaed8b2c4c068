"""The read classifiers (imported by :mod:`biodl.registry`; imports no torch)."""

from __future__ import annotations

from biodl.registry import Recipe, register

KINDS = ("reads",)
_DERIVED = ("rank_sizes",)

register(
    Recipe(
        name="read-classifier",
        title="Streaming read classifier (k-mer EmbeddingBag + MLP)",
        model="biodl.models.reads:KmerBagClassifier",
        kinds=KINDS,
        tasks=("multiclass",),
        citation="Wood DE, Lu J, Langmead B. Improved metagenomic analysis with Kraken 2. Genome Biol 20:257 (2019) (the anchor); Joulin A, Grave E, Bojanowski P, Mikolov T. Bag of tricks for efficient text classification. EACL (2017) (the bag-of-k-mers network).",
        status="ready",
        model_defaults=dict(k=13, bucket_bits=22, dim=16, hidden=256, dropout=0.1, min_confidence=0.9),
        train_defaults=dict(lr=0.05, batch_size=512, max_epochs=6, patience=2),
        derived=_DERIVED,
        toy={
            "model": {"bucket_bits": 12, "dim": 8, "hidden": 16},
            "options": {
                "reads_per_epoch": 512,
                "valid_reads": 64,
                "test_reads": 64,
                "read_len": 80,
                "report": False,
            },
        },
        reference="Kraken 2 on the same reference genomes and ART reads, side by side in bench/reads.py "
        "(species / genus accuracy, strain exclusion, reads/s, memory).",
    )
)

register(
    Recipe(
        name="read-bilstm",
        title="DeepMicrobes-style read classifier (k-mer embedding + BiLSTM + attention)",
        model="biodl.models.reads:ReadBiLSTM",
        kinds=KINDS,
        tasks=("multiclass",),
        citation="Liang Q, Bible PW, Liu Y, Zou B, Wei L. DeepMicrobes: taxonomic classification for metagenomics with deep learning. NAR Genom Bioinform 2:lqaa009 (2020).",
        status="ready",
        model_defaults=dict(
            k=8, bucket_bits=16, dim=32, lstm=48, attention=32, hidden=64, dropout=0.1, min_confidence=0.9
        ),
        train_defaults=dict(lr=2e-3, batch_size=128, max_epochs=6, patience=2),
        derived=_DERIVED,
        toy={
            "model": {"k": 4, "bucket_bits": 8, "dim": 4, "lstm": 4, "attention": 4, "hidden": 8},
            "options": {
                "reads_per_epoch": 128,
                "valid_reads": 32,
                "test_reads": 32,
                "read_len": 60,
                "report": False,
            },
        },
        reference="DeepMicrobes (k = 12, 100-d embedding, 300-unit BiLSTM) reported species-level precision above "
        "Kraken's on simulated gut reads; a smaller version here, compared in bench/reads.py.",
    )
)
