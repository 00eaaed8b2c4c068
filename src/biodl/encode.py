"""Pure, vectorised sequence encoders (no training code).

One-hot layout follows the field's convention (Basset, DeepSEA, tangermeme): channels are
``A, C, G, T`` in that order and the array is ``(4, length)`` for one sequence or
``(n, 4, length)`` for a batch. With that order the complement of a channel is the channel
mirrored (A<->T, C<->G), so the reverse complement of a one-hot array is a flip of both
axes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from biodl.errors import BiodlInputError

ALPHABET = "ACGT"
IUPAC_AMBIGUOUS = "RYSWKMBDHVN"
_INVALID = 255
_N = 4


def _build_lut(iupac_as_n: bool) -> np.ndarray:
    lut = np.full(256, _INVALID, dtype=np.uint8)
    for i, base in enumerate("ACGT"):
        lut[ord(base)] = i
        lut[ord(base.lower())] = i
    lut[ord("U")] = lut[ord("u")] = 3  # RNA: U is read as T
    lut[ord("N")] = lut[ord("n")] = _N
    if iupac_as_n:
        for c in IUPAC_AMBIGUOUS:
            lut[ord(c)] = lut[ord(c.lower())] = _N
    return lut


_LUT = {False: _build_lut(False), True: _build_lut(True)}
_COMPLEMENT_STR = str.maketrans("ACGTUNacgtunRYSWKMBDHVryswkmbdhv", "TGCAANtgcaanYRSWMKVHDByrswmkvhdb")
# one_hot compares bytes case-folded with ``| 0x20`` (x | 0x20 == ord("a") only for "A" and "a").
_ACGT_LOWER = np.frombuffer(b"acgt", dtype=np.uint8)[:, None]


def _value_table(n_value: float, dtype) -> np.ndarray:
    table = np.zeros((256, 4), dtype=dtype)
    table[np.arange(4), np.arange(4)] = 1
    table[_N] = n_value
    return table


def _codes(buf: np.ndarray, iupac_as_n: bool) -> np.ndarray:
    codes = _LUT[bool(iupac_as_n)][buf]
    if codes.max(initial=0) == _INVALID:
        pos = int(np.argmax(codes == _INVALID))
        raise BiodlInputError(
            f"invalid character {chr(buf.flat[pos])!r} at position {pos + 1} "
            "(allowed: A, C, G, T, U, N in either case)"
        )
    return codes


def sequence_codes(seq: str | bytes, iupac_as_n: bool = False) -> np.ndarray:
    """Integer codes of a sequence: A=0, C=1, G=2, T/U=3, N=4.

    Returns
    -------
    np.ndarray
        ``(length,)`` uint8.
    """
    raw = seq.encode("ascii", errors="replace") if isinstance(seq, str) else bytes(seq)
    return _codes(np.frombuffer(raw, dtype=np.uint8), iupac_as_n)


def one_hot(
    seq: str | bytes,
    n_value: float = 0.25,
    dtype: np.dtype | type = np.float32,
    iupac_as_n: bool = False,
) -> np.ndarray:
    """One-hot encode a DNA or RNA sequence.

    Parameters
    ----------
    seq
        Sequence of ``ACGTUN`` in any case; ``U`` is read as ``T``.
    n_value
        Value put in all four channels for ``N`` (0.25 = uniform, 0 = zero).
    dtype
        Output dtype.
    iupac_as_n
        Read other IUPAC ambiguity codes (R, Y, S, ...) as ``N`` instead of refusing them.

    Returns
    -------
    np.ndarray
        ``(4, length)`` array, channels ``A, C, G, T``.

    Raises
    ------
    BiodlInputError
        On a character outside the alphabet (its position is named).
    """
    raw = seq.encode("ascii", errors="replace") if isinstance(seq, str) else bytes(seq)
    buf = np.frombuffer(raw, dtype=np.uint8)
    length = buf.shape[0]
    # Boolean rows written in place: one vectorised comparison per channel, no gather and no
    # transposed copy. The rows and the N/U masks are disjoint, so every character is valid
    # iff their counts add up to the length; the rarer N, U and IUPAC passes run only when
    # the A/C/G/T rows leave positions uncovered.
    folded = buf | np.uint8(0x20)
    mask = np.empty((4, length), dtype=np.bool_)
    np.equal(folded, _ACGT_LOWER, out=mask)
    n_mask = None
    missing = length - np.count_nonzero(mask)
    if missing:
        n_mask = folded == ord("n")
        missing -= np.count_nonzero(n_mask)
    if missing:
        u_mask = folded == ord("u")  # RNA: U is read as T
        n_u = np.count_nonzero(u_mask)
        if n_u:
            mask[3] |= u_mask
            missing -= n_u
    if missing and iupac_as_n:
        n_mask = ~mask.any(axis=0)
        if (_LUT[True][buf[n_mask]] == _N).all():
            missing = 0
    if missing:
        _codes(buf, iupac_as_n)  # raises, naming the first invalid character and its position
        raise AssertionError("unreachable: one_hot's fast path and its lookup table disagree")
    dtype = np.dtype(dtype)
    out = mask.view(dtype) if dtype.itemsize == 1 and dtype.kind in "biu" else mask.astype(dtype)
    if n_value != 0 and n_mask is not None and n_mask.any():
        out[:, n_mask] = n_value
    return out


def one_hot_batch(
    seqs: Sequence[str],
    n_value: float = 0.25,
    dtype: np.dtype | type = np.float32,
    iupac_as_n: bool = False,
) -> np.ndarray:
    """One-hot encode equal-length sequences in one vectorised pass.

    Returns
    -------
    np.ndarray
        ``(n, 4, length)``.

    Raises
    ------
    BiodlInputError
        If lengths differ (the first offending index is named) or a character is invalid
        (sequence index and position are named).
    """
    n = len(seqs)
    if n == 0:
        return np.zeros((0, 4, 0), dtype=dtype)
    length = len(seqs[0])
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=n)
    if (lengths != length).any():
        bad = int(np.argmax(lengths != length))
        raise BiodlInputError(
            f"sequences must all have the same length: sequence {bad + 1} has length "
            f"{lengths[bad]}, the first has {length}"
        )
    joined = "".join(seqs)
    try:
        flat = one_hot(joined, n_value=n_value, dtype=dtype, iupac_as_n=iupac_as_n)  # (4, n * length)
    except BiodlInputError:
        buf = np.frombuffer(joined.encode("ascii", errors="replace"), dtype=np.uint8).reshape(n, length)
        bad_mask = _LUT[bool(iupac_as_n)][buf] == _INVALID
        row = int(np.argmax(bad_mask.any(axis=1)))
        col = int(np.argmax(bad_mask[row]))
        raise BiodlInputError(
            f"sequence {row + 1}: invalid character {chr(buf[row, col])!r} at position {col + 1} "
            "(allowed: A, C, G, T, U, N in either case)"
        ) from None
    return np.ascontiguousarray(flat.reshape(4, n, length).transpose(1, 0, 2))


def reverse_complement(seq: str) -> str:
    """Reverse complement of a DNA/RNA string (case kept; U is complemented to A)."""
    return seq.translate(_COMPLEMENT_STR)[::-1]


def reverse_complement_onehot(x):
    """Reverse complement of one-hot array(s) in ``A, C, G, T`` order.

    Works on numpy arrays and torch tensors of shape ``(..., 4, length)``.
    """
    if isinstance(x, np.ndarray):
        return x[..., ::-1, ::-1].copy()
    return x.flip(dims=(-2, -1))


def decode(x: np.ndarray, n_threshold: float = 0.5) -> str:
    """Turn a ``(4, length)`` one-hot array back into a string (``N`` where no channel
    exceeds ``n_threshold``)."""
    x = np.asarray(x)
    idx = x.argmax(axis=0)
    out = np.array(list(ALPHABET))[idx]
    out[x.max(axis=0) <= n_threshold] = "N"
    return "".join(out.tolist())


def kmer_names(k: int, canonical: bool = False) -> list[str]:
    """The ``4**k`` k-mers in lexicographic order (``canonical``: one of each reverse-complement
    pair, the lexicographically smaller)."""
    import itertools

    names = ["".join(p) for p in itertools.product(ALPHABET, repeat=k)]
    if canonical:
        names = [s for s in names if s <= reverse_complement(s)]
    return names


def kmer_frequencies(
    seqs: Sequence[str], ks: Sequence[int] = (1, 2, 3, 4), canonical: bool = True, iupac_as_n: bool = True
) -> tuple[np.ndarray, list[str]]:
    """k-mer frequencies of every sequence: counts of each k-mer over the sequence's k-mers
    without an N, divided by their number (vectorised per length of k).

    Parameters
    ----------
    seqs
        DNA sequences (any lengths).
    ks
        k-mer lengths, concatenated in this order.
    canonical
        Count a k-mer and its reverse complement together (strand-symmetric features).
    iupac_as_n
        Read ambiguity codes as N (their k-mers are skipped).

    Returns
    -------
    (x, names)
        ``(n, n_features)`` float32 frequencies and the feature names (``k3:ACG``, ...).
    """
    blocks, names = [], []
    codes = [sequence_codes(s, iupac_as_n=iupac_as_n).astype(np.int64) for s in seqs]
    for k in ks:
        all_names = kmer_names(k)
        if canonical:
            index = {s: i for i, s in enumerate(kmer_names(k, canonical=True))}
            col = np.array([index[min(s, reverse_complement(s))] for s in all_names])
            n_out = len(index)
        else:
            col, n_out = np.arange(4**k), 4**k
        out = np.zeros((len(seqs), n_out), np.float32)
        powers = 4 ** np.arange(k - 1, -1, -1)
        for i, c in enumerate(codes):
            if len(c) < k:
                continue
            win = np.lib.stride_tricks.sliding_window_view(c, k)
            ok = (win < 4).all(axis=1)
            if not ok.any():
                continue
            ids = col[(win[ok] * powers).sum(axis=1)]
            out[i] = np.bincount(ids, minlength=n_out) / ok.sum()
        blocks.append(out)
        names += [f"k{k}:{s}" for s in (kmer_names(k, canonical=True) if canonical else all_names)]
    return np.concatenate(blocks, axis=1), names
