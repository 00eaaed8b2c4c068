"""Pure ``nn.Module`` implementations of the classic systems (no I/O, no training loop)."""

from biodl.models.sequence.basset import Basset
from biodl.models.sequence.danq import DanQ
from biodl.models.sequence.deepbind import DeepBind
from biodl.models.sequence.deepsea import DeepSEA
from biodl.models.sequence.splicing import SplicingCNN

__all__ = ["Basset", "DanQ", "DeepBind", "DeepSEA", "SplicingCNN"]
