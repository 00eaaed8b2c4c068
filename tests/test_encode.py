import re

import numpy as np
import pytest
import torch

from biodl.encode import decode, one_hot, one_hot_batch, reverse_complement, reverse_complement_onehot
from biodl.errors import BiodlInputError


def test_one_hot_layout_and_case():
    x = one_hot("ACGTacgt")
    assert x.shape == (4, 8) and x.dtype == np.float32
    np.testing.assert_array_equal(x[:, :4], np.eye(4))
    np.testing.assert_array_equal(x[:, 4:], np.eye(4))


def test_u_is_t_and_n_values():
    np.testing.assert_array_equal(one_hot("U"), one_hot("T"))
    np.testing.assert_allclose(one_hot("N")[:, 0], [0.25] * 4)
    np.testing.assert_allclose(one_hot("n", n_value=0)[:, 0], [0] * 4)


def test_invalid_character_names_position():
    with pytest.raises(BiodlInputError, match=r"'X' at position 3"):
        one_hot("ACXT")
    with pytest.raises(BiodlInputError, match=r"sequence 2: invalid character 'Z' at position 1"):
        one_hot_batch(["ACGT", "ZCGT"])


def test_iupac_option():
    with pytest.raises(BiodlInputError):
        one_hot("ACRT")
    np.testing.assert_allclose(one_hot("ACRT", iupac_as_n=True)[:, 2], [0.25] * 4)


def test_batch_matches_single_and_checks_lengths():
    rng = np.random.default_rng(0)
    seqs = ["".join(rng.choice(list("ACGTN"), 50)) for _ in range(20)]
    b = one_hot_batch(seqs)
    assert b.shape == (20, 4, 50)
    for i, s in enumerate(seqs):
        np.testing.assert_array_equal(b[i], one_hot(s))
    with pytest.raises(BiodlInputError, match="same length"):
        one_hot_batch(["ACGT", "ACG"])


def test_reverse_complement_string_and_onehot():
    assert reverse_complement("AACGTN") == "NACGTT"
    assert reverse_complement("acgU") == "Acgt"
    s = "ACGGTTNACG"
    np.testing.assert_array_equal(reverse_complement_onehot(one_hot(s)), one_hot(reverse_complement(s)))
    t = torch.from_numpy(one_hot_batch([s, s]))
    assert torch.equal(reverse_complement_onehot(t)[0], torch.from_numpy(one_hot(reverse_complement(s))))


def test_decode_roundtrip():
    s = "ACGTNNACGT"
    assert decode(one_hot(s)) == s


def test_kmer_frequencies_canonical_and_skip_n():
    from biodl.encode import kmer_frequencies, kmer_names

    x, names = kmer_frequencies(["ACGTAC", "GTACGT", "NNACG", "A"], ks=(1, 2, 3))
    assert len(names) == 2 + 10 + 32 and names[:3] == ["k1:A", "k1:C", "k2:AA"]
    assert np.allclose(x[0], x[1])  # a sequence and its reverse complement: the same features
    assert np.allclose(x[:3, :2].sum(1), 1) and np.allclose(x[:3, 2:12].sum(1), 1)
    # NNACG: 3 valid bases, 2 dinucleotides (AC, CG), 1 trinucleotide (ACG)
    row = dict(zip(names, x[2], strict=True))
    assert row["k2:AC"] == 0.5 and row["k2:CG"] == 0.5 and row["k3:ACG"] == 1.0
    assert x[3, 2:].sum() == 0  # too short for 2-mers
    full, fnames = kmer_frequencies(["ACGT"], ks=(2,), canonical=False)
    assert fnames == [f"k2:{s}" for s in kmer_names(2)] and full.shape == (1, 16)


# --- one_hot's kernels against a plain reference ---------------------------------------------

_REF_COLUMN = {"A": 0, "C": 1, "G": 2, "T": 3, "U": 3}


def _one_hot_reference(seq: str, n_value: float, dtype, iupac_as_n: bool) -> np.ndarray:
    """One character at a time: what one_hot must return (or the position it must name)."""
    out = np.zeros((4, len(seq)))
    for i, ch in enumerate(seq):
        c = ch.upper() if ch.isascii() else "?"
        if c in _REF_COLUMN:
            out[_REF_COLUMN[c], i] = 1
        elif c == "N" or (iupac_as_n and c in "RYSWKMBDHV"):
            out[:, i] = n_value
        else:
            raise BiodlInputError(f"invalid character {c!r} at position {i + 1}")
    return out.astype(dtype)


def _random_sequence(rng, length: int, letters: str) -> str:
    return "".join(rng.choice(list(letters), length))


# lengths around the kernels' 64-byte alignment, 256-byte and 8 kb blocks, and over the length
# from which a str is read in place (encode._STR_KERNEL_MIN)
_LENGTHS = (0, 1, 63, 64, 65, 257, 8191, 8192, 8193, 70_001)
_DTYPES = (np.float32, np.int8, np.float64, np.bool_, np.float16)  # float16: the numpy path


@pytest.mark.parametrize("length", _LENGTHS)
def test_one_hot_matches_reference_mixed_case_n_and_u(length):
    rng = np.random.default_rng(length)
    seq = _random_sequence(rng, length, "ACGTNacgtnUu")
    for n_value in (0.25, 0):
        ref = _one_hot_reference(seq, n_value, np.float64, False)
        for dtype in _DTYPES:
            for iupac in (False, True):
                x = one_hot(seq, n_value=n_value, dtype=dtype, iupac_as_n=iupac)
                assert x.dtype == np.dtype(dtype) and x.shape == (4, length) and x.flags.c_contiguous
                np.testing.assert_array_equal(x, ref.astype(dtype))
    np.testing.assert_array_equal(one_hot(seq.encode()), one_hot(seq))  # bytes in: the same


@pytest.mark.parametrize("length", (300, 20_000, 70_001))
def test_one_hot_iupac_as_n_matches_reference(length):
    rng = np.random.default_rng(length)
    seq = list(_random_sequence(rng, length, "ACGTacgt"))
    for pos in rng.choice(length, 12, replace=False):  # sparse ambiguity codes, several blocks
        seq[pos] = rng.choice(list("RYSWKMBDHVNryswkmbdhvn"))
    seq = "".join(seq)
    for dtype in (np.float32, np.int8, np.float16):
        for n_value in (0.25, 0):
            x = one_hot(seq, n_value=n_value, dtype=dtype, iupac_as_n=True)
            np.testing.assert_array_equal(x, _one_hot_reference(seq, n_value, dtype, True))
    with pytest.raises(BiodlInputError, match=r"invalid character '[RYSWKMBDHVryswkmbdhv]' at position"):
        one_hot(seq)


@pytest.mark.parametrize("length", (10, 8193, 70_001))
def test_one_hot_names_first_invalid_character(length):
    rng = np.random.default_rng(1)
    base = _random_sequence(rng, length, "ACGTNacgtn")
    for pos, ch in ((0, "X"), (length // 2, "-"), (length - 1, "*"), (length // 3, "é")):
        seq = base[:pos] + ch + base[pos + 1 :]
        shown = ch  # named as given, a non-ASCII character too
        for iupac in (False, True):
            with pytest.raises(
                BiodlInputError, match=re.escape(f"invalid character {shown!r} at position {pos + 1} ")
            ):
                one_hot(seq, iupac_as_n=iupac, dtype=np.int8)
    # an ambiguity code after an invalid character: the invalid one is named
    seq = base[:5] + "R" + base[6 : length - 1] + "Z"
    with pytest.raises(BiodlInputError, match=rf"'Z' at position {length}"):
        one_hot(seq, iupac_as_n=True)


def test_one_hot_numpy_path_matches_kernels(monkeypatch):
    import biodl.encode as encode

    rng = np.random.default_rng(7)
    seqs = [_random_sequence(rng, n, "ACGTNacgtnUuRy") for n in (0, 5, 100, 9000, 70_001)]
    fast = {
        (i, np.dtype(d).name, nv): one_hot(s, n_value=nv, dtype=d, iupac_as_n=True)
        for i, s in enumerate(seqs)
        for d in (np.float32, np.int8)
        for nv in (0, 0.25)
    }
    monkeypatch.setattr(encode, "_kernels", lambda: None)  # as without numba
    for (i, dtype, nv), x in fast.items():
        np.testing.assert_array_equal(one_hot(seqs[i], n_value=nv, dtype=dtype, iupac_as_n=True), x)
    with pytest.raises(BiodlInputError, match=r"'X' at position 3"):
        one_hot("ACXT")
    b = one_hot_batch(["ACGTN", "acgtn"], dtype=np.int8)
    np.testing.assert_array_equal(b, np.stack([one_hot("ACGTN", dtype=np.int8)] * 2))


@pytest.mark.parametrize("length", (7, 40_000))  # 2 x 40 kb joined: the str kernel
def test_one_hot_batch_matches_single(length):
    rng = np.random.default_rng(length)
    seqs = [_random_sequence(rng, length, "ACGTNacgtnUu") for _ in range(3)]
    for dtype in (np.float32, np.int8):
        b = one_hot_batch(seqs, n_value=0.25, dtype=dtype)
        assert b.shape == (3, 4, length) and b.dtype == np.dtype(dtype) and b.flags.c_contiguous
        for i, s in enumerate(seqs):
            np.testing.assert_array_equal(b[i], _one_hot_reference(s, 0.25, dtype, False))
    bad = seqs[1][: length - 1] + "é"
    with pytest.raises(BiodlInputError, match=rf"sequence 2: invalid character '\?' at position {length} "):
        one_hot_batch([seqs[0], bad, seqs[2]])
    amb = seqs[2][:3] + "K" + seqs[2][4:]
    with pytest.raises(BiodlInputError, match=r"sequence 3: invalid character 'K' at position 4 "):
        one_hot_batch([seqs[0], seqs[1], amb])
    np.testing.assert_array_equal(
        one_hot_batch([seqs[0], amb], iupac_as_n=True)[1], _one_hot_reference(amb, 0.25, np.float32, True)
    )


def test_invalid_non_ascii_character_is_named_as_given():
    from biodl.encode import one_hot

    for seq in ("ACGT" * 5 + "é" + "ACGT", "ACGT" * 20000 + "é"):
        with pytest.raises(BiodlInputError, match=f"'é' at position {len(seq.split('é')[0]) + 1} "):
            one_hot(seq)
