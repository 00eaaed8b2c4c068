"""Interpretation: first-layer filters as PWMs (more in later releases: ISM, attributions,
JASPAR matching, variant effects)."""

from biodl.interpret.filters import filter_pwms, first_conv

__all__ = ["filter_pwms", "first_conv"]
