"""Vectorised 2-bit encoding of reads and hashing of their canonical k-mers (numpy, no
per-k-mer Python loop: ``k`` whole-array shifts build every k-mer of a batch at once).

A read becomes a row of k-mer indices: ``0`` is padding (past the read's end, or a k-mer with an
N), ``1 .. 2**bits`` a k-mer bucket. The canonical k-mer (the smaller of the k-mer and its
reverse complement) makes a read and its reverse complement give the same set of indices.
When every canonical k-mer fits (``4**k <= 2**bits``) the index is the k-mer's code itself;
otherwise Knuth's multiplicative hash picks the bucket.
"""

from __future__ import annotations

import numpy as np

#: byte -> 2-bit code (A 0, C 1, G 2, T/U 3; anything else 4 = N)
CODE = np.full(256, 4, np.uint8)
for _c, _v in zip(b"ACGTUacgtu", (0, 1, 2, 3, 3, 0, 1, 2, 3, 3), strict=True):
    CODE[_c] = _v

_MULT32 = np.uint32(0x9E3779B1)
_MULT64 = np.uint64(0x9E3779B97F4A7C15)


def encode_reads(seqs: list[bytes], min_len: int = 1) -> np.ndarray:
    """Reads (bytes) as a ``(n, max_len)`` uint8 array of 2-bit codes, padded with 4 (N)."""
    n = len(seqs)
    lens = np.fromiter(map(len, seqs), np.int64, n)
    L = max(int(lens.max()) if n else 0, min_len)
    out = np.full((n, L), 4, np.uint8)
    if n == 0 or lens.sum() == 0:
        return out
    flat = CODE[np.frombuffer(b"".join(seqs), np.uint8)]
    if (lens == L).all():
        return flat.reshape(n, L)
    starts = np.cumsum(lens) - lens
    row = np.repeat(np.arange(n), lens)
    col = np.arange(len(flat)) - np.repeat(starts, lens)
    out[row, col] = flat
    return out


def _window_codes(codes: np.ndarray, k: int, dt) -> tuple[np.ndarray, np.ndarray]:
    """Forward and reverse-complement codes of every k-long window, ``(n, L - k + 1)`` each, by
    doubling: windows of 1, 2, 4, ... bases are joined (``log2 k`` + popcount(k) whole-array
    steps instead of ``k``). The reverse complement of A.B is rc(B).rc(A)."""
    n, L = codes.shape
    pf = (codes & 3).astype(dt)  # windows of plen bases
    pr = dt(3) - pf
    plen = 1
    rf = rr = None
    rlen = 0
    kk = k
    while kk:
        if kk & 1:
            if rf is None:
                rf, rr, rlen = pf, pr, plen
            else:
                m = L - rlen - plen + 1
                rf = (rf[:, :m] << dt(2 * plen)) | pf[:, rlen : rlen + m]
                rr = (pr[:, rlen : rlen + m] << dt(2 * rlen)) | rr[:, :m]
                rlen += plen
        kk >>= 1
        if kk:
            m = L - 2 * plen + 1
            pf, pr = (pf[:, :m] << dt(2 * plen)) | pf[:, plen:], (pr[:, plen:] << dt(2 * plen)) | pr[:, :m]
            plen *= 2
    W = L - k + 1
    return rf[:, :W], rr[:, :W]  # type: ignore[index]


def kmer_indices(codes: np.ndarray, k: int, bits: int) -> np.ndarray:
    """Bucket indices ``(n, L - k + 1)`` (int64; 0 = padding) of the canonical k-mers of the
    reads ``codes`` ``(n, L)`` (2-bit codes, 4 = N)."""
    if not 1 <= k <= 32:
        raise ValueError(f"k must be in 1..32, got {k}")
    n, L = codes.shape
    W = L - k + 1
    if W < 1:
        return np.zeros((n, 1), np.int64)
    wide = k > 16
    dt = np.uint64 if wide else np.uint32
    fwd, rev = _window_codes(codes, k, dt)
    can = np.minimum(fwd, rev)
    bad = np.zeros((n, L + 1), np.int32)
    np.cumsum(codes > 3, axis=1, out=bad[:, 1:])
    invalid = (bad[:, k:] - bad[:, :W]) > 0
    if k * 2 <= bits:
        idx = can.astype(np.int64) + 1
    elif wide:
        idx = ((can * _MULT64) >> np.uint64(64 - bits)).astype(np.int64) + 1
    else:
        idx = ((can * _MULT32) >> np.uint32(32 - bits)).astype(np.int64) + 1
    idx[invalid] = 0
    return idx


def read_indices(seqs: list[bytes], k: int, bits: int, seqs2: list[bytes] | None = None) -> np.ndarray:
    """:func:`kmer_indices` of reads given as bytes; with mates ``seqs2``, a pair's indices are
    its two reads' side by side (one bag of k-mers per pair)."""
    x = kmer_indices(encode_reads(seqs, k), k, bits)
    if seqs2 is not None:
        x = np.concatenate([x, kmer_indices(encode_reads(seqs2, k), k, bits)], axis=1)
    return x


__all__ = ["CODE", "encode_reads", "kmer_indices", "read_indices"]
