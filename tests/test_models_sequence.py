"""Tests of the sequence models DeepSEA, Basset, DanQ and SplicingCNN (shapes, lengths, sizes, training)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from biodl.errors import BiodlInputError
from biodl.models.sequence.basset import Basset
from biodl.models.sequence.danq import DanQ
from biodl.models.sequence.deepsea import DeepSEA
from biodl.models.sequence.splicing import SplicingCNN

MODELS: dict[str, type[nn.Module]] = {
    "deepsea": DeepSEA,
    "basset": Basset,
    "danq": DanQ,
    "splicing": SplicingCNN,
}
# Shrunk widths (same geometry: kernels, pools) so the tests run in well under a second each.
SMALL_KWARGS: dict[str, dict] = {
    "deepsea": {"n_filters": (8, 8, 8), "hidden": 16},
    "basset": {"n_filters": (8, 8, 8), "hidden": (16, 16)},
    "danq": {"n_filters": 8, "lstm_hidden": 8, "hidden": 16},
    "splicing": {"n_filters": 8, "hidden": 16},
}


def small(name: str, n_outputs: int, seq_len: int | None, **kwargs) -> nn.Module:
    return MODELS[name](n_outputs, seq_len, **{**SMALL_KWARGS[name], **kwargs})


# Two lengths per model, both above its minimum (DeepSEA 163, Basset 121, DanQ 38, SplicingCNN 9).
LENGTHS = {"deepsea": (200, 1000), "basset": (150, 600), "danq": (60, 1000), "splicing": (60, 140)}


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _one_hot(n: int, length: int, generator: torch.Generator) -> torch.Tensor:
    idx = torch.randint(0, 4, (n, length), generator=generator)
    return nn.functional.one_hot(idx, 4).transpose(1, 2).float()


def _positions(name: str, model: nn.Module, x: torch.Tensor) -> int:
    """Positions actually produced by the part of the network whose length ``feature_len`` predicts."""
    if name == "danq":
        return model.pool(model.conv(x)).shape[-1]
    if name == "splicing":
        return model.pool(model.features(x)).shape[-1]
    return model.features(x).shape[-1]


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("n_outputs", [1, 7])
def test_output_shape_variable_length(name: str, n_outputs: int) -> None:
    torch.manual_seed(0)
    model = small(name, n_outputs, None).eval()
    for length in LENGTHS[name]:
        y = model(torch.rand(3, 4, length))
        assert y.shape == (3, n_outputs)
        assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", list(MODELS))
def test_output_shape_fixed_length(name: str) -> None:
    torch.manual_seed(0)
    for length in LENGTHS[name]:
        model = small(name, 5, length).eval()
        assert model(torch.rand(2, 4, length)).shape == (2, 5)
        with pytest.raises(BiodlInputError, match=f"seq_len={length}"):
            model(torch.rand(2, 4, length + 1))


@pytest.mark.parametrize("name", list(MODELS))
def test_feature_len_and_min_len_match_torch(name: str) -> None:
    model = small(name, 1, None).eval()
    lo = model.min_len
    assert model.feature_len(lo) >= 1
    assert model.feature_len(lo - 1) < 1
    with torch.no_grad():
        for length in [lo, lo + 1, lo + 5, lo + 13, lo + 100, 601, 1000]:
            assert _positions(name, model, torch.zeros(1, 4, length)) == model.feature_len(length), length


def test_min_len_values() -> None:
    with torch.device("meta"):
        assert DeepSEA().min_len == 163
        assert Basset().min_len == 121
        assert DanQ().min_len == 38
        assert SplicingCNN().min_len == 9
        assert SplicingCNN(seq_len=60).min_len == 11


@pytest.mark.parametrize("name", list(MODELS))
def test_too_short_raises_clear_error(name: str) -> None:
    model = small(name, 2, None).eval()
    lo = model.min_len
    assert model(torch.rand(1, 4, lo)).shape == (1, 2)
    with pytest.raises(ValueError, match=f"at least {lo} "):
        model(torch.rand(1, 4, lo - 1))
    fixed_lo = small(name, 2, 1000).min_len
    with pytest.raises(ValueError, match=f"at least {fixed_lo} "):
        small(name, 2, fixed_lo - 1)
    with pytest.raises(ValueError, match="one-hot"):
        model(torch.rand(1, 5, 200))


@pytest.mark.parametrize(
    ("name", "length", "positions"), [("deepsea", 1000, 53), ("basset", 600, 10), ("danq", 1000, 75)]
)
def test_adaptive_mode_matches_paper_geometry(name: str, length: int, positions: int) -> None:
    """At the paper's length the adaptive resize is the identity: same weights, same outputs."""
    torch.manual_seed(0)
    fixed = small(name, 3, length).eval()
    adaptive = small(name, 3, None).eval()
    assert fixed.n_positions == adaptive.n_positions == positions
    adaptive.load_state_dict(fixed.state_dict())
    x = torch.rand(2, 4, length)
    torch.testing.assert_close(fixed(x), adaptive(x))


@pytest.mark.parametrize("name", list(MODELS))
def test_first_layer_is_first_conv(name: str) -> None:
    model = small(name, 1, None)
    first = next(m for m in model.modules() if isinstance(m, nn.Conv1d))
    assert model.first_layer is first
    assert isinstance(first, nn.Conv1d) and first.in_channels == 4


def test_paper_parameter_counts() -> None:
    """Full-size models (built on the meta device: no memory, no init) against the papers' sizes."""
    with torch.device("meta"):
        deepsea = DeepSEA(919, 1000)
        basset = Basset(164, 600)
        danq = DanQ(919, 1000)
    # DeepSEA ~52.8M (the 50880 -> 925 dense layer alone is 47.1M)
    assert _n_params(deepsea) == 52_843_119
    assert deepsea.n_positions == 53
    # Basset ~4.1M (2000 -> 1000 -> 1000 -> 164 dense with batch norm)
    assert _n_params(basset) == 4_135_064
    assert basset.n_positions == 10
    # DanQ ~46.9M (PyTorch's LSTM has 2 x 1280 more bias parameters than Keras')
    assert _n_params(danq) == 46_929_039
    assert danq.n_positions == 75


def test_full_size_basset_forward() -> None:
    model = Basset(164, 600).eval()
    assert model(torch.rand(2, 4, 600)).shape == (2, 164)


def _planted_motif_data(
    n: int, length: int, motifs: list[str], generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random one-hot sequences; class ``i < len(motifs)`` has ``motifs[i]`` planted at a random spot,
    class ``len(motifs)`` has nothing planted."""
    x = _one_hot(n, length, generator)
    y = torch.randint(0, len(motifs) + 1, (n,), generator=generator)
    for i in range(n):
        if y[i] < len(motifs):
            motif = motifs[int(y[i])]
            start = int(torch.randint(0, length - len(motif) + 1, (1,), generator=generator))
            x[i, :, start : start + len(motif)] = 0
            for j, base in enumerate(motif):
                x[i, "ACGT".index(base), start + j] = 1
    return x, y


@pytest.mark.parametrize("name", list(MODELS))
def test_trains_on_planted_motif(name: str) -> None:
    """A few full-batch Adam steps on a toy task where a planted motif decides the label."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    length = LENGTHS[name][0]
    if name == "splicing":  # 3 classes like EI / IE / N: donor-like, acceptor-like, neither
        motifs = ["CAGGTAAGT", "TTTTCAGG"]
        model = small(name, 3, None, n_filters=16, dropout=0.0)
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = nn.CrossEntropyLoss()
    else:  # one binary output: is the motif there (class 0) or not (class 1)?
        motifs = ["TGACTCAG"]
        drop = {"dropout": 0.0} if name == "basset" else {"dropout": 0.0, "conv_dropout": 0.0}
        model = small(name, 1, length, n_filters=16 if name == "danq" else (16, 16, 16), **drop)
        bce = nn.BCEWithLogitsLoss()

        def loss_fn(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return bce(logits[:, 0], (y == 0).float())

    x, y = _planted_motif_data(96, length, motifs, gen)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()  # dropout is 0, so train-mode losses are deterministic (batch norm uses batch stats)

    def full_loss() -> float:
        with torch.no_grad():
            return float(loss_fn(model(x), y))

    before = full_loss()
    for _ in range(40):
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
    after = full_loss()
    assert after < 0.5 * before, (before, after)

    if name == "splicing":  # global max pooling finds the motif anywhere: it generalises, too
        x_new, y_new = _planted_motif_data(200, length, motifs, gen)
        with torch.no_grad():
            accuracy = float((model.eval()(x_new).argmax(1) == y_new).float().mean())
        assert accuracy > 0.6, accuracy


# ------------------------------------------------------------ DeepBind on mixed-length batches
def test_deepbind_scores_a_padded_batch_as_each_sequence_alone() -> None:
    """A batch of mixed lengths (NaN past each sequence's end, as SequenceDataset(variable=True)
    builds it) gives every sequence its score alone, on either strand, for every pooling and
    windowed scoring; padding with N instead would not (it creates motif hits)."""
    from biodl.kinds.sequences.data import SequenceDataset
    from biodl.kinds.sequences.io import SequenceTable
    from biodl.models import DeepBind
    from biodl.train.predict import predict

    seqs = ["AAAAAA", "ACGTACGTTGCATGCAAGT", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "CGTNA"]
    table = SequenceTable(ids=[f"s{i}" for i in range(len(seqs))], seqs=seqs)
    for kw in ({}, {"pool": "maxavg"}, {"reverse_complement": False}, {"window_size": 10}):
        torch.manual_seed(0)
        m = DeepBind(num_motifs=3, motif_len=6, hidden=0, **kw).eval()
        with torch.no_grad():  # a detector that A and T never excite and N (0.25 each) does
            m.conv.weight[0] = torch.tensor([-1.0, 3.0, 3.0, -1.0])[:, None]
            m.conv.bias[0] = 0.0
            m.out.weight[0] = torch.tensor([1.0, 0.0, 0.0] + [0.0, 0.0, 0.0] * ("pool" in kw))
        batched, _ = predict(m, SequenceDataset(table, variable=True), batch_size=4)
        rc, _ = predict(m, SequenceDataset(table, variable=True), batch_size=4, rc_average=True)
        for i in range(len(seqs)):
            alone = SequenceDataset(table.subset([i]))
            assert batched[i] == pytest.approx(predict(m, alone)[0][0], abs=1e-5), (kw, i)
            assert rc[i] == pytest.approx(predict(m, alone, rc_average=True)[0][0], abs=1e-5), (kw, i)
        if not kw:  # poly-A padded with N to the longest instead: a spurious hit
            n_padded, _ = predict(m, SequenceDataset(table, length=41), batch_size=4)
            assert n_padded[0, 0] > batched[0, 0] + 0.1
