"""Shared fixtures: small slices of the bundled real ENCODE ChIP-seq data."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pytest

from biodl.demo import ENCODE_DIR

REST_AC = ENCODE_DIR / "REST_GM12878_NRSF_HudsonAlpha_AC.seq.gz"
REST_B = ENCODE_DIR / "REST_GM12878_NRSF_HudsonAlpha_B.seq.gz"


def _head(src: Path, dst: Path, n: int, step: int = 1) -> Path:
    with gzip.open(src, "rt") as fh:
        lines = fh.read().splitlines()
    body = lines[1::step][:n]
    dst.write_text("\n".join([lines[0], *body]) + "\n")
    return dst


@pytest.fixture(scope="session")
def rest_small(tmp_path_factory) -> dict[str, Path]:
    """600 REST training positives and 200 held-out B sequences (both classes)."""
    d = tmp_path_factory.mktemp("rest")
    return {
        "train": _head(REST_AC, d / "rest_ac.seq", 600),
        "test": _head(REST_B, d / "rest_b.seq", 200, step=5),
    }


def save_legacy_model(path: Path, model, meta: dict) -> Path:
    """A model file as biodl wrote it before RunMeta (format ``biodl-model-1``: a flat meta
    dict), to check that such files still load."""
    import json

    import torch

    payload = {
        "format": "biodl-model-1",
        "meta": json.dumps(meta),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    torch.save(payload, path)
    return path


@pytest.fixture(params=["cpu", "cuda"])
def device(request) -> str:
    """Each device a test runs on: ``cpu`` always, ``cuda`` where a CUDA GPU is present (the
    cuda cases are skipped, with the reason, on machines without one)."""
    import torch

    if request.param == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA GPU on this machine")
    return request.param


class TtyStream(io.StringIO):
    """A text stream that says whether it is a terminal (for progress lines: in place or whole)."""

    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


#: Backward nodes torch has no deterministic CUDA kernel for: under
#: ``torch.use_deterministic_algorithms(True)`` (biodl's training) they raise on a GPU, never on
#: the CPU (the list of ``torch.use_deterministic_algorithms``; cross-entropy on 2-D logits and
#: a sum-mode EmbeddingBag are deterministic).
CUDA_NONDETERMINISTIC = (
    r"AvgPool3D|AdaptiveAvgPool[23]D|AdaptiveMaxPool[23]D|FractionalMaxPool|MaxUnpool|ReflectionPad"
    r"|Upsample(Linear|Bilinear|Bicubic|Trilinear)|NllLoss2D|CtcLoss|GridSampler|Cumsum|ScatterReduce"
)


def cuda_nondeterministic_nodes(t) -> set[str]:
    """The backward nodes of tensor ``t``'s graph that would raise on a GPU in deterministic mode."""
    import re

    seen, found, todo = set(), set(), [t.grad_fn]
    while todo:
        fn = todo.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        name = type(fn).__name__
        if re.search(CUDA_NONDETERMINISTIC, name):
            found.add(name)
        todo.extend(f for f, _ in fn.next_functions)
    return found


@pytest.fixture
def backward_nodes(monkeypatch):
    """Every backward node name that would raise on a GPU in deterministic mode, collected from
    each ``backward`` run while the test runs (Lightning's included), with biodl's pooling on
    the path it takes on a GPU."""
    import torch

    from biodl.models import pooling

    monkeypatch.setattr(pooling, "PORTABLE_ON_CPU", True)  # the path a GPU takes
    found: set[str] = set()
    original = torch.autograd.backward

    def backward(tensors, *args, **kwargs):
        for t in tensors if isinstance(tensors, (list, tuple)) else [tensors]:
            if getattr(t, "grad_fn", None) is not None:
                found.update(cuda_nondeterministic_nodes(t))
        return original(tensors, *args, **kwargs)

    monkeypatch.setattr(torch.autograd, "backward", backward)
    return found
