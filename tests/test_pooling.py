"""Adaptive pooling with a deterministic CUDA backward (biodl.models.pooling): the same outputs and
gradients as torch's adaptive pooling, and no network of a recipe that trains at variable
lengths keeps a backward op that deterministic training refuses on a GPU (it raised there in the
first backward; on the CPU torch never says so)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from biodl.models.pooling import AdaptiveAvgPool1d, AdaptiveMaxPool1d
from tests.conftest import cuda_nondeterministic_nodes


@pytest.fixture(autouse=True)
def gpu_path(monkeypatch):
    """The formulation a GPU runs (the CPU runs torch's own kernels, deterministic there)."""
    from biodl.models import pooling

    monkeypatch.setattr(pooling, "PORTABLE_ON_CPU", True)


def test_the_cpu_runs_torchs_own_kernels(monkeypatch):
    from biodl.models import pooling

    monkeypatch.setattr(pooling, "PORTABLE_ON_CPU", False)
    x = torch.randn(2, 3, 101, requires_grad=True)
    for ours, theirs in (
        (AdaptiveMaxPool1d(7), nn.AdaptiveMaxPool1d(7)),
        (AdaptiveAvgPool1d(7), nn.AdaptiveAvgPool1d(7)),
    ):
        a, b = ours(x), theirs(x)
        assert torch.equal(a, b) and type(a.grad_fn) is type(b.grad_fn)


@pytest.mark.parametrize("length", [1, 5, 7, 53, 101, 997])
@pytest.mark.parametrize("bins", [1, 3, 8, 53])
def test_same_outputs_and_gradients_as_torch(length, bins):
    torch.manual_seed(length * 100 + bins)
    x = torch.randn(3, 4, length, requires_grad=True)
    g = torch.randn(3, 4, bins)
    for ours, theirs in ((AdaptiveMaxPool1d(bins), nn.AdaptiveMaxPool1d(bins)),
                         (AdaptiveAvgPool1d(bins), nn.AdaptiveAvgPool1d(bins))):  # fmt: skip
        a, b = ours(x), theirs(x)
        torch.testing.assert_close(a, b)
        (ga,) = torch.autograd.grad((a * g).sum(), x)
        (gb,) = torch.autograd.grad((b * g).sum(), x)
        torch.testing.assert_close(ga, gb)
        assert not cuda_nondeterministic_nodes(a)
        if bins > 1:  # (torch reduces to one bin without its adaptive kernel)
            assert cuda_nondeterministic_nodes(b)  # the check sees torch's own


def _variable_length_models():
    from biodl.models.methylation import CpGModule
    from biodl.models.popgen import ExchangeableNet
    from biodl.models.sequence.basset import Basset
    from biodl.models.sequence.danq import DanQ
    from biodl.models.sequence.deepsea import DeepSEA
    from biodl.models.sequence.splicing import SplicingCNN

    dna = torch.rand(2, 4, 300)
    yield "basset", Basset(n_outputs=2, seq_len=None), dna
    yield "deepsea", DeepSEA(n_outputs=2, seq_len=None), dna
    yield "danq", DanQ(n_outputs=2, seq_len=None), dna
    yield "splicing", SplicingCNN(n_outputs=3), dna
    yield "cpg+dna", CpGModule(2, 3, dna_window=201), (torch.rand(2, 2, 3), torch.rand(2, 4, 201))
    yield "popgen-exchangeable", ExchangeableNet(2, channels=8, pool_bins=4), torch.rand(2, 6, 40)


MODELS = list(_variable_length_models())


@pytest.mark.parametrize("name,model,x", MODELS, ids=[m[0] for m in MODELS])
def test_no_network_keeps_a_backward_that_deterministic_cuda_refuses(name, model, x):
    out = model(x)
    assert not cuda_nondeterministic_nodes(out.sum()), name
