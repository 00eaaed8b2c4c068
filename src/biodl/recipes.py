"""The recipe registry: one entry per classic system.

A recipe names a model factory, the data kind it eats, the tasks it supports, sensible
defaults, the paper's reference numbers and its citation. ``biodl systems`` lists it;
``biodl train --system NAME`` uses it. Switching DeepBind for DanQ is a change of name.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from biodl.errors import BiodlInputError


@dataclass(frozen=True)
class Recipe:
    """One classic system.

    Attributes
    ----------
    name
        Registry key (``deepbind``, ``danq``, ...).
    title
        Human name.
    factory
        Callable building the ``nn.Module``; or ``None`` while the system is planned.
    data_kind
        ``sequence``, ``genome-windows``, ``expression``, ``molecule``, ``cells``, ...
    tasks
        Tasks the recipe supports.
    model_defaults
        Default keyword arguments of the factory (besides ``n_outputs``/``seq_len``).
    train_defaults
        Default training options (``lr``, ``batch_size``, ``max_epochs``, ``patience``, ...).
    reference
        The paper's headline numbers, as text.
    citation
        Paper reference.
    status
        ``ready``, ``in progress`` or ``planned``.
    plugin
        For data kinds other than labelled sequence files: the module implementing
        ``train``, ``evaluate`` and ``predict`` for this recipe (see :mod:`biodl.plugins`).
        ``None`` means the sequence API (:mod:`biodl.api`).
    """

    name: str
    title: str
    factory: Callable[..., nn.Module] | None
    data_kind: str
    tasks: tuple[str, ...]
    citation: str
    status: str
    model_defaults: dict[str, Any] = field(default_factory=dict)
    train_defaults: dict[str, Any] = field(default_factory=dict)
    reference: str = ""
    plugin: str | None = None

    @property
    def short_citation(self) -> str:
        """First author and year, e.g. ``Alipanahi et al. 2015``."""
        import re

        first = self.citation.split(",")[0].split(".")[0].strip()
        surname = first.split()[0] if first else self.title
        years = re.findall(r"(?:19|20)\d\d", self.citation)
        return f"{surname} et al. {years[0]}" if years else "-"

    def model_kwargs(self, n_outputs: int, seq_len: int | None = None, **overrides: Any) -> dict[str, Any]:
        """The full keyword arguments for :meth:`build` (stored with the trained model)."""
        if self.factory is None:
            raise BiodlInputError(f"system {self.name!r} is not implemented yet (status: {self.status})")
        params = inspect.signature(self.factory).parameters
        kw = dict(self.model_defaults)
        unknown = [k for k in overrides if k not in params]
        if unknown:
            raise BiodlInputError(
                f"unknown option(s) for {self.name}: {', '.join(unknown)} "
                f"(known: {', '.join(p for p in params if p not in ('n_outputs', 'seq_len'))})"
            )
        kw.update(overrides)
        kw["n_outputs"] = n_outputs
        if "seq_len" in params:
            kw["seq_len"] = seq_len
        return kw

    def build(self, **kwargs: Any) -> nn.Module:
        if self.factory is None:
            raise BiodlInputError(f"system {self.name!r} is not implemented yet (status: {self.status})")
        return self.factory(**kwargs)


_REGISTRY: dict[str, Recipe] = {}


def register(recipe: Recipe) -> Recipe:
    _REGISTRY[recipe.name] = recipe
    return recipe


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name`` (case-insensitive; ``_`` and ``-`` are the same)."""
    key = name.lower().replace("_", "-")
    if key not in _REGISTRY:
        raise BiodlInputError(f"unknown system {name!r}; known systems: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[key]


def list_recipes() -> list[Recipe]:
    return list(_REGISTRY.values())


from biodl.models.deepbind import DeepBind as _DeepBind  # noqa: E402


def _lazy(module: str, cls: str):
    def factory(**kw):
        import importlib

        return getattr(importlib.import_module(module), cls)(**kw)

    # expose the real signature so model_kwargs can check options
    try:
        import importlib

        factory.__signature__ = inspect.signature(getattr(importlib.import_module(module), cls))
    except (ImportError, AttributeError):
        return None
    return factory


register(
    Recipe(
        name="deepbind",
        title="DeepBind",
        factory=_DeepBind,
        data_kind="sequence",
        tasks=("binary", "regression", "multilabel"),
        citation="Alipanahi B, Delong A, Weirauch MT, Frey BJ. Predicting the sequence specificities of DNA- and "
        "RNA-binding proteins by deep learning. Nat Biotechnol 33:831-838 (2015).",
        status="ready",
        model_defaults=dict(
            num_motifs=16, motif_len=24, pool="max", hidden=32, dropout=0.2, reverse_complement=True
        ),
        # lr 3e-3 / dropout 0.2 won the validation calibration on 15 of 16 ENCODE experiments
        # (bench/deepbind_encode.py, bench/README_deepbind.md)
        train_defaults=dict(lr=3e-3, batch_size=64, max_epochs=15, patience=3, weight_decay=1e-4),
        reference="ENCODE ChIP-seq held-out B sets, 10 experiments with a released model: released mean AUC "
        "0.9391, biodl 0.9448 (bench/deepbind_encode.py).",
    )
)

_PLANNED = [
    (
        "deepsea",
        "DeepSEA",
        "sequence",
        "Zhou J, Troyanskaya OG. Predicting effects of noncoding variants with deep "
        "learning-based sequence model. Nat Methods 12:931-934 (2015).",
        ("multilabel", "binary"),
        "biodl.models.deepsea",
        "DeepSEA",
    ),
    (
        "basset",
        "Basset",
        "sequence",
        "Kelley DR, Snoek J, Rinn JL. Basset: learning the regulatory code of the "
        "accessible genome with deep convolutional neural networks. Genome Res 26:990-999 (2016).",
        ("multilabel", "binary"),
        "biodl.models.basset",
        "Basset",
    ),
    (
        "danq",
        "DanQ",
        "sequence",
        "Quang D, Xie X. DanQ: a hybrid convolutional and recurrent deep neural network "
        "for quantifying the function of DNA sequences. Nucleic Acids Res 44:e107 (2016).",
        ("multilabel", "binary"),
        "biodl.models.danq",
        "DanQ",
    ),
    (
        "splicing-cnn",
        "Splicing-code CNN",
        "sequence",
        "Zuallaert J et al. SpliceRover: interpretable convolutional "
        "neural networks for improved splice site prediction. Bioinformatics 34:4180 (2018); residual unit after "
        "Jaganathan K et al. SpliceAI, Cell 176:535 (2019).",
        ("multiclass", "binary"),
        "biodl.models.splicing",
        "SplicingCNN",
    ),
]
for _name, _title, _kind, _cite, _tasks, _mod, _cls in _PLANNED:
    _f = _lazy(_mod, _cls)
    register(
        Recipe(
            name=_name,
            title=_title,
            factory=_f,
            data_kind=_kind,
            tasks=_tasks,
            citation=_cite,
            status="ready" if _f else "planned",
            train_defaults=dict(lr=1e-3, batch_size=64, max_epochs=20, patience=3),
        )
    )

for _name, _title, _kind, _cite in [
    (
        "pedla",
        "PEDLA (enhancer prediction)",
        "features",
        "Liu F et al. PEDLA: predicting enhancers with a deep "
        "learning-based algorithmic framework. Sci Rep 6:28517 (2016).",
    ),
    (
        "deep-enhancer",
        "DEEP (enhancer ensemble)",
        "features",
        "Kleftogiannis D et al. DEEP: a general "
        "computational framework for predicting enhancers. Nucleic Acids Res 43:e6 (2015).",
    ),
    (
        "dfs",
        "Deep feature selection",
        "features",
        "Li Y, Chen CY, Wasserman WW. Deep feature selection: theory "
        "and application to identify enhancers and promoters. J Comput Biol 23:322 (2016).",
    ),
    (
        "cpg-methylation",
        "CpG methylation stacked autoencoder",
        "features",
        "Wang Y et al. Predicting DNA "
        "methylation state of CpG dinucleotide using genome topological features and deep networks. Sci Rep (2016).",
    ),
    (
        "adage",
        "ADAGE",
        "expression",
        "Tan J et al. Unsupervised feature construction and knowledge extraction "
        "from genome-wide assays of breast cancer with denoising autoencoders. PSB 2015; mSystems 1:e00025 (2016).",
    ),
    (
        "dgex",
        "D-GEX",
        "expression",
        "Chen Y et al. Gene expression inference with deep learning. Bioinformatics 32:1832 (2016).",
    ),
    (
        "neural-fp",
        "Neural graph fingerprints",
        "molecule",
        "Duvenaud D et al. Convolutional networks on graphs "
        "for learning molecular fingerprints. NeurIPS 2015.",
    ),
    (
        "cellcnn",
        "CellCnn",
        "cells",
        "Arvaniti E, Claassen M. Sensitive detection of rare disease-associated cell "
        "subsets via representation learning. Nat Commun 8:14825 (2017).",
    ),
    (
        "popgen",
        "Population-genetic deep net",
        "alignment",
        "Sheehan S, Song YS. Deep learning for population "
        "genetic inference. PLoS Comput Biol 12:e1004845 (2016).",
    ),
    (
        "pcons2",
        "Pcons2 contact layers",
        "msa",
        "Skwark MJ et al. Improved contact predictions using the "
        "recognition of protein like contact patterns. PLoS Comput Biol 10:e1003889 (2014).",
    ),
    (
        "read-classifier",
        "Streaming read classifier",
        "reads",
        "Identification of organisms from a stream of DNA reads (streaming, scalable classifier).",
    ),
]:
    register(
        Recipe(
            name=_name,
            title=_title,
            factory=None,
            data_kind=_kind,
            tasks=(),
            citation=_cite,
            status="planned",
        )
    )


# Recipes of other data kinds register themselves from their own packages (replacing the
# "planned" placeholders above). A package that is not there yet keeps its placeholder; one
# that is there but fails to import is an error, never silently skipped.
_RECIPE_MODULES = (
    "biodl.windows",
    "biodl.molecules.recipes",
    "biodl.expression.recipes",
    "biodl.cells.recipes",
)


def _load_recipe_modules() -> None:
    import importlib
    import importlib.util

    for mod in _RECIPE_MODULES:
        try:
            found = importlib.util.find_spec(mod) is not None
        except ModuleNotFoundError:
            found = False
        if found:
            importlib.import_module(mod)


_load_recipe_modules()
