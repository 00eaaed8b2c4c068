"""Readers and writers of the shared genomic formats (FASTA, genomes, BED, GFF). Validation
lives here: bad input raises :class:`biodl.errors.BiodlInputError` naming the file, the line or
record, and the problem. Formats of one data kind live in that kind's package (labelled
sequence tables: :mod:`biodl.kinds.sequences.io`, molecules, expression, FCS, ...)."""

from biodl.io.bed import cut_intervals, read_bed
from biodl.io.fasta import FastaRecord, open_genome, read_fasta, write_fasta

__all__ = ["FastaRecord", "cut_intervals", "open_genome", "read_bed", "read_fasta", "write_fasta"]
