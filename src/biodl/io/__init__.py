"""Readers and writers for the field's formats. Validation lives here: bad input raises
:class:`biodl.errors.BiodlInputError` naming the file, the line or record, and the problem."""

from biodl.io.bed import cut_intervals, read_bed
from biodl.io.fasta import FastaRecord, open_genome, read_fasta, write_fasta
from biodl.io.tables import SequenceTable, read_labelled_fasta, read_sequence_table, read_sequences

__all__ = [
    "FastaRecord",
    "SequenceTable",
    "cut_intervals",
    "open_genome",
    "read_bed",
    "read_fasta",
    "read_labelled_fasta",
    "read_sequence_table",
    "read_sequences",
    "write_fasta",
]
