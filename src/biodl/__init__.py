"""biodl: the classic deep-learning systems of computational biology on one PyTorch code base."""

from biodl.errors import BiodlError, BiodlInputError

__version__ = "0.1.0"

__all__ = ["BiodlError", "BiodlInputError", "__version__"]
