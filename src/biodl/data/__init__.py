"""torch Datasets and Lightning DataModules per modality."""

from biodl.data.sequences import EpochSampler, SequenceDataModule, SequenceDataset, add_shuffled_negatives

__all__ = ["EpochSampler", "SequenceDataModule", "SequenceDataset", "add_shuffled_negatives"]
