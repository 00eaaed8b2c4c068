"""Interpretation: in-silico mutagenesis, gradient attributions, first-layer filters as PWMs
matched to JASPAR, and variant effect scoring (VCF in, table out)."""

from biodl.interpret.attributions import (
    attribute,
    deep_lift_shap,
    input_x_gradient,
    integrated_gradients,
    saliency,
)
from biodl.interpret.filters import filter_pwms, first_conv
from biodl.interpret.ism import ism_method, ism_scores, saturation_mutagenesis
from biodl.interpret.motifs import filter_motifs, load_jaspar, load_motif_db, match_motifs, write_meme
from biodl.interpret.variants import run_variants, score_variants, variant_windows

__all__ = [
    "attribute",
    "deep_lift_shap",
    "filter_motifs",
    "filter_pwms",
    "first_conv",
    "input_x_gradient",
    "integrated_gradients",
    "ism_method",
    "ism_scores",
    "load_jaspar",
    "load_motif_db",
    "match_motifs",
    "run_variants",
    "saliency",
    "saturation_mutagenesis",
    "score_variants",
    "variant_windows",
    "write_meme",
]
