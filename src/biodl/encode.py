"""Pure, vectorised sequence encoders (no training code).

One-hot layout follows the field's convention (Basset, DeepSEA, tangermeme): channels are
``A, C, G, T`` in that order and the array is ``(4, length)`` for one sequence or
``(n, 4, length)`` for a batch. With that order the complement of a channel is the channel
mirrored (A<->T, C<->G), so the reverse complement of a one-hot array is a flip of both
axes.
"""

from __future__ import annotations

import threading
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


def _codes(buf: np.ndarray, iupac_as_n: bool, text: str | None = None) -> np.ndarray:
    codes = _LUT[bool(iupac_as_n)][buf]
    if codes.max(initial=0) == _INVALID:
        pos = int(np.argmax(codes == _INVALID))
        # the character as given (a non-ASCII one is a '?' in the ASCII bytes)
        char = text[pos] if text is not None and pos < len(text) else chr(buf.flat[pos])
        raise BiodlInputError(
            f"invalid character {char!r} at position {pos + 1} (allowed: A, C, G, T, U, N in either case)"
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


# --- One-hot kernels --------------------------------------------------------------------------
#
# The _k_* functions are plain Python until _kernels() hands them to numba, on the first one_hot
# call (numba is imported then, not with biodl; it is a dependency already, through memelite).
# They write the (4, length) layout directly, one loop per channel over the bytes:
#     row[i] = 1 if byte | 0x20 in (code, code2) else (n_value if byte | 0x20 == "n" else 0)
# which LLVM vectorises for any output dtype: no lookup-table gather, no boolean temporary, no
# transposed copy, stores aligned to cache lines. One vectorised pass per 8 kb block checks the
# characters first. With iupac_as_n, the blocks that hold an ambiguity code other than N are
# looked at again, 256 bytes at a time, to write n_value there. A long str is read in place
# (numba's view of its buffer) instead of being encoded to bytes first.
# A refused character is named by Python (_codes); without numba, or for a dtype the kernels
# do not write (float16, complex...), _one_hot_numpy gives the same arrays with numpy passes.


def _k_invalid(b):
    """1 if a byte of ``b`` is outside ACGTUN (either case), else 0 (a vectorised max-reduction)."""
    acc = np.uint8(0)
    for i in range(b.shape[0]):
        f = b[i] | np.uint8(0x20)
        ok = (f == 0x61) | (f == 0x63) | (f == 0x67) | (f == 0x74) | (f == 0x75) | (f == 0x6E)
        acc = max(acc, np.uint8(0) if ok else np.uint8(1))
    return acc


def _k_row_body(b, o, code, code2, one, zero, nv):
    for i in range(b.shape[0]):
        f = b[i] | np.uint8(0x20)
        o[i] = one if (f == code) | (f == code2) else (nv if f == 0x6E else zero)


def _k_row(b, o, code, code2, one, zero, nv):
    """Channel row ``o``: ``one`` where the byte is ``code`` or ``code2``, ``nv`` at N, else ``zero``.

    The first elements, up to a 64-byte boundary of ``o``, are written apart, so that the
    vectorised loop stores whole cache lines (about 20 % faster in float32).
    """
    head = min(((64 - o.ctypes.data % 64) % 64) // o.itemsize, b.shape[0])
    _k_row_body(b[:head], o[:head], code, code2, one, zero, nv)
    _k_row_body(b[head:], o[head:], code, code2, one, zero, nv)


def _k_fill_ambiguous(b, o, start, nv):
    """Write ``nv`` in the four rows of ``o`` at the IUPAC ambiguity codes of ``b`` (other than N,
    written already), where ``b[0]`` is column ``start`` of ``o``; False at a character outside
    the IUPAC alphabet. Only the 256-byte pieces that hold such a character are read one byte at
    a time."""
    for p in range(0, b.shape[0], 256):
        piece = b[p : p + 256]
        if not _k_invalid(piece):
            continue
        for i in range(piece.shape[0]):
            f = piece[i] | np.uint8(0x20)
            if (f == 0x61) | (f == 0x63) | (f == 0x67) | (f == 0x74) | (f == 0x75) | (f == 0x6E):
                continue
            if not (
                (f == 0x72)  # r
                | (f == 0x79)  # y
                | (f == 0x73)  # s
                | (f == 0x77)  # w
                | (f == 0x6B)  # k
                | (f == 0x6D)  # m
                | (f == 0x62)  # b
                | (f == 0x64)  # d
                | (f == 0x68)  # h
                | (f == 0x76)  # v
            ):
                return False
            j = start + p + i
            o[0, j] = nv
            o[1, j] = nv
            o[2, j] = nv
            o[3, j] = nv
    return True


def _k_encode_one(b, o, vals, iupac):
    """Encode bytes ``b`` (length,) into ``o`` (4, length); False if a character is refused.

    Validity is checked per 8 kb block first (one vectorised pass); with ``iupac`` the blocks
    that hold other characters than ACGTUN are looked at again after the rows are written.
    """
    n_blocks = (b.shape[0] + 8191) // 8192
    flagged = np.zeros(0, dtype=np.uint8)
    for k in range(n_blocks):
        if _k_invalid(b[k * 8192 : (k + 1) * 8192]):
            if not iupac:
                return False
            if flagged.shape[0] == 0:
                flagged = np.zeros(n_blocks, dtype=np.uint8)
            flagged[k] = 1
    one, zero, nv = vals[0], vals[1], vals[2]
    _k_row(b, o[0], np.uint8(0x61), np.uint8(0x61), one, zero, nv)
    _k_row(b, o[1], np.uint8(0x63), np.uint8(0x63), one, zero, nv)
    _k_row(b, o[2], np.uint8(0x67), np.uint8(0x67), one, zero, nv)
    _k_row(b, o[3], np.uint8(0x74), np.uint8(0x75), one, zero, nv)  # U is read as T
    for k in range(flagged.shape[0]):
        if flagged[k] and not _k_fill_ambiguous(b[k * 8192 : (k + 1) * 8192], o, k * 8192, nv):
            return False
    return True


def _k_encode_batch(buf, out, vals, iupac):
    """Encode ``buf`` (n, length) into ``out`` (n, 4, length); -1, or the first refused sequence."""
    for s in range(buf.shape[0]):
        if not _k_encode_one(buf[s], out[s], vals, iupac):
            return s
    return -1


_k_u8ptr = _k_carray = None  # numba's void* -> uint8* cast and numba.carray, set by _kernels()


def _k_str_bytes(s):
    """The bytes of an ASCII ``str`` as a uint8 array, without a copy (numba's own view of the
    string: ``_kind`` 1 is one byte per character); an empty array for another string."""
    if s._kind != 1 or not s._is_ascii:
        return _k_carray(_k_u8ptr(s._data), (0,))
    return _k_carray(_k_u8ptr(s._data), (s._length,))


def _k_encode_str(s, o, vals, iupac):
    """``_k_encode_one`` on the characters of ``s``: 1 if encoded, 0 if a character is refused,
    -1 if ``s`` is not ASCII (the caller encodes it to bytes instead)."""
    b = _k_str_bytes(s)
    if b.shape[0] != s._length:
        return -1
    return 1 if _k_encode_one(b, o, vals, iupac) else 0


def _k_encode_batch_str(s, out, vals, iupac):
    """``_k_encode_batch`` on ``s``, the concatenation of the sequences; -2 if not ASCII."""
    b = _k_str_bytes(s)
    if b.shape[0] != s._length:
        return -2
    return _k_encode_batch(b.reshape((out.shape[0], out.shape[2])), out, vals, iupac)


_KERNEL_FUNCS = (
    "_k_invalid",
    "_k_row_body",
    "_k_row",
    "_k_fill_ambiguous",
    "_k_encode_one",
    "_k_encode_batch",
)
_STR_KERNEL_FUNCS = ("_k_str_bytes", "_k_encode_str", "_k_encode_batch_str")
# From this many characters on, a str is read in place by the kernels rather than encoded to
# bytes first: numba's dispatch of a str argument costs about 3 us, the copy ~0.03-0.08 ns/byte.
_STR_KERNEL_MIN = 1 << 16
_NUMBA_DTYPES = frozenset(
    np.dtype(t)
    for t in (
        np.bool_,
        np.int8,
        np.uint8,
        np.int16,
        np.uint16,
        np.int32,
        np.uint32,
        np.int64,
        np.uint64,
        np.float32,
        np.float64,
    )
)
_kernel_state: dict[str, object] = {}
_kernel_lock = threading.Lock()
_fill_cache: dict[tuple, np.ndarray] = {}


def _jit(numba, names: tuple[str, ...]) -> None:
    g = globals()
    for name in names:
        try:
            g[name] = numba.njit(nogil=True, boundscheck=False, cache=True)(g[name])
        except Exception:  # no writable cache directory: compile in memory only
            g[name] = numba.njit(nogil=True, boundscheck=False)(g[name])


def _kernels() -> dict | None:
    """The compiled kernels (``one``, ``batch``, and ``str``/``batch_str`` where numba reads a
    str in place), or ``None`` without numba.

    Compiled on the first call of each output dtype (numba caches the machine code next to this
    file, or in its user cache directory; a later process loads it, with numba, in about 1 s).
    """
    if "kernels" in _kernel_state:
        return _kernel_state["kernels"]
    with _kernel_lock:
        if "kernels" in _kernel_state:
            return _kernel_state["kernels"]
        try:
            import numba

            _jit(numba, _KERNEL_FUNCS)
            kernels = {"one": _k_encode_one, "batch": _k_encode_batch, "str": None, "batch_str": None}
        except Exception as exc:  # numba missing or broken: the numpy path is exact, only slower
            _kernel_state.update(kernels=None, error=exc)
            return None
        try:  # numba internals (a str's data pointer); without them a str is encoded to bytes
            from numba.core import types
            from numba.extending import intrinsic

            @intrinsic
            def u8ptr(typingctx, ptr):
                def codegen(context, builder, sig, args):
                    return builder.bitcast(args[0], context.get_value_type(types.CPointer(types.uint8)))

                return types.CPointer(types.uint8)(types.voidptr), codegen

            globals().update(_k_u8ptr=u8ptr, _k_carray=numba.carray)
            _jit(numba, _STR_KERNEL_FUNCS)
            kernels.update(str=_k_encode_str, batch_str=_k_encode_batch_str)
        except Exception as exc:
            _kernel_state["str_error"] = exc
        _kernel_state["kernels"] = kernels
    return _kernel_state["kernels"]


def _str_kernel(kernels: dict, name: str, *args) -> int | None:
    """Call a str kernel; ``None`` if it cannot be compiled here (it is then not tried again)."""
    try:
        return kernels[name](*args)
    except Exception as exc:  # a typing error of numba's internals: read the str via bytes
        kernels["str"] = kernels["batch_str"] = None
        _kernel_state["str_error"] = exc
        return None


def _fill_values(dtype: np.dtype, n_value: float) -> np.ndarray | None:
    """``[1, 0, n_value]`` in ``dtype`` (converted as numpy assigns ``n_value``), or ``None``
    when the kernels cannot write ``dtype``."""
    key = (dtype, n_value)
    try:
        return _fill_cache[key]
    except KeyError:
        pass
    except TypeError:  # unhashable n_value
        key = None
    if dtype not in _NUMBA_DTYPES:
        return None
    vals = np.zeros(3, dtype=dtype)
    vals[0] = 1
    if n_value != 0:
        try:
            vals[2] = n_value
        except (OverflowError, ValueError, TypeError):
            return None  # the numpy path raises this only when the sequence has an N
    if key is not None:
        if len(_fill_cache) > 64:
            _fill_cache.clear()
        _fill_cache[key] = vals
    return vals


def _as_bytes(seq: str | bytes) -> bytes:
    return seq.encode("ascii", errors="replace") if isinstance(seq, str) else bytes(seq)


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
        ``(4, length)`` C-contiguous array, channels ``A, C, G, T``.

    Raises
    ------
    BiodlInputError
        On a character outside the alphabet (its position is named).
    """
    dtype = np.dtype(dtype)
    kernels = _kernels()
    vals = None if kernels is None else _fill_values(dtype, n_value)
    if vals is None:
        return _one_hot_numpy(np.frombuffer(_as_bytes(seq), dtype=np.uint8), n_value, dtype, iupac_as_n)
    iupac = bool(iupac_as_n)
    if type(seq) is str and len(seq) >= _STR_KERNEL_MIN and kernels["str"] is not None:
        out = np.empty((4, len(seq)), dtype=dtype)
        if _str_kernel(kernels, "str", seq, out, vals, iupac) == 1:
            return out
        # not ASCII, or a character refused: the bytes path below encodes it or names it
    buf = np.frombuffer(_as_bytes(seq), dtype=np.uint8)
    out = np.empty((4, buf.shape[0]), dtype=dtype)
    if not kernels["one"](buf, out, vals, iupac):
        # raises, naming the first invalid character (as given) and its position
        _codes(buf, iupac_as_n, seq if type(seq) is str else None)
        raise AssertionError("unreachable: one_hot's kernel and its lookup table disagree")
    return out


def _one_hot_numpy(buf: np.ndarray, n_value: float, dtype: np.dtype, iupac_as_n: bool) -> np.ndarray:
    """``one_hot`` with numpy only (used without numba, and for dtypes the kernels do not write)."""
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
        ``(n, 4, length)`` C-contiguous.

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
    dtype = np.dtype(dtype)
    kernels = _kernels()
    vals = None if kernels is None else _fill_values(dtype, n_value)
    if vals is not None:
        iupac = bool(iupac_as_n)
        out = np.empty((n, 4, length), dtype=dtype)
        refused = None
        if len(joined) >= _STR_KERNEL_MIN and kernels["batch_str"] is not None:
            refused = _str_kernel(kernels, "batch_str", joined, out, vals, iupac)
        if refused is None or refused == -2:  # no str kernel, or not ASCII: encode to bytes
            buf = np.frombuffer(_as_bytes(joined), dtype=np.uint8).reshape(n, length)
            refused = kernels["batch"](buf, out, vals, iupac)
        if refused < 0:
            return out
    else:
        try:
            flat = one_hot(joined, n_value=n_value, dtype=dtype, iupac_as_n=iupac_as_n)  # (4, n * length)
            return np.ascontiguousarray(flat.reshape(4, n, length).transpose(1, 0, 2))
        except BiodlInputError:
            pass
    buf = np.frombuffer(joined.encode("ascii", errors="replace"), dtype=np.uint8).reshape(n, length)
    bad_mask = _LUT[bool(iupac_as_n)][buf] == _INVALID
    row = int(np.argmax(bad_mask.any(axis=1)))
    col = int(np.argmax(bad_mask[row]))
    raise BiodlInputError(
        f"sequence {row + 1}: invalid character {chr(buf[row, col])!r} at position {col + 1} "
        "(allowed: A, C, G, T, U, N in either case)"
    )


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
