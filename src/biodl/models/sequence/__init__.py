"""The sequence networks (one-hot DNA in, logits out) on one forward contract
(:class:`~biodl.models.sequence.base.SequenceModel`)."""

from biodl.models.sequence.base import SequenceModel

__all__ = ["SequenceModel"]
