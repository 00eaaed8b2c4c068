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
