"""Pure ``nn.Module`` implementations of the classic systems (no I/O, no training loop)."""

from biodl.models.basset import Basset
from biodl.models.danq import DanQ
from biodl.models.deepbind import DeepBind
from biodl.models.deepsea import DeepSEA
from biodl.models.splicing import SplicingCNN

__all__ = ["Basset", "DanQ", "DeepBind", "DeepSEA", "SplicingCNN"]
