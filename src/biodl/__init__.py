"""biodl: the classic deep-learning systems of computational biology on one PyTorch code base.

``biodl.load(RUN)`` gives a trained model to score inputs from Python (:mod:`biodl.api`)."""

from __future__ import annotations

from typing import Any

from biodl.errors import BiodlError, BiodlInputError

__version__ = "0.1.0"

__all__ = ["BiodlError", "BiodlInputError", "Model", "__version__", "load"]


def __getattr__(name: str) -> Any:  # ``biodl.load`` without importing torch at ``import biodl``
    if name in ("load", "Model"):
        import biodl.api

        return getattr(biodl.api, name)
    raise AttributeError(f"module 'biodl' has no attribute {name!r}")


def __dir__() -> list[str]:  # tab completion sees the lazy names too
    return sorted({*globals(), *__all__})
