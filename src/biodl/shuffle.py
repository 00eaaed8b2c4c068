"""Dinucleotide-preserving sequence shuffles (negatives for DeepBind-style training).

:func:`dinucleotide_shuffle` draws, uniformly at random, one of the sequences that have
exactly the same 2-mer counts and the same first and last letters as the input. It is the
Altschul & Erickson (1985) algorithm in its Eulerian-path form (Kandel et al. 1996; Jiang et
al. 2008, uShuffle; ``fasta-shuffle-letters -kmer 2`` of MEME):

1. Read the sequence as a walk through a directed multigraph whose vertices are the
   letters and whose edges are the ``length - 1`` dinucleotides. Every sequence with the
   same dinucleotide counts, first and last letters is an Eulerian path of this graph from
   the first letter to the last letter ``z``, and vice versa.
2. Draw, for every vertex other than ``z`` that has outgoing edges, the edge it leaves by
   the last time: these "last exits" must form a spanning arborescence directed towards
   ``z``. A uniformly random one (over edges counted with multiplicity) is drawn with
   Wilson's loop-erased random walk.
3. Put the other outgoing edges of every vertex in uniformly random order before its last
   exit, and walk from the first letter, always leaving a vertex by its next unused edge.

Step 3 always completes an Eulerian path (the BEST theorem's bijection), and, counting
parallel edges as distinct, every Eulerian path arises from exactly one arborescence and
one set of orders, all equally likely; every distinct sequence corresponds to the same
number of such labelled paths (the product of the factorials of the dinucleotide counts),
so the output is uniform over the distinct sequences. Unlike the shuffle of DeepLIFT /
tangermeme, which keeps each letter's original last exit, nothing but the counts and the
end letters is kept.

Letters are plain symbols: ``N``, IUPAC codes and lower case are kept as they are, and
``a`` and ``A`` are different letters (so soft-masked runs keep their case).
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral

import numpy as np

from biodl.errors import BiodlInputError

__all__ = ["dinucleotide_shuffle", "shuffle_negatives"]

# Uniform draws fetched from the generator at a time for the arborescence walks (beyond the
# first block, drawn together with the sort keys, few sequences need any).
_DRAW_BLOCK = 32


def _as_generator(rng: np.random.Generator | int, name: str = "rng") -> np.random.Generator:
    """A numpy Generator from a Generator or a non-negative integer seed."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, Integral) and not isinstance(rng, bool):
        if int(rng) < 0:
            raise BiodlInputError(f"{name} must be a non-negative integer seed, got {int(rng)}")
        return np.random.default_rng(int(rng))
    raise BiodlInputError(
        f"{name} must be a numpy.random.Generator or an integer seed, got {type(rng).__name__}"
    )


def _symbol_codes(seq: str) -> tuple[np.ndarray, int, list[str] | None]:
    """Small integer codes of the letters of ``seq``.

    Returns
    -------
    tuple
        ``(codes, n_symbols, symbols)``: ``codes`` is ``(length,)`` with values below
        ``n_symbols``; ``symbols`` maps a code back to its letter, or is ``None`` when the
        sequence is ASCII and the codes are the byte values themselves.
    """
    try:
        return np.frombuffer(seq.encode("ascii"), dtype=np.uint8), 256, None
    except UnicodeEncodeError:
        points = np.frombuffer(seq.encode("utf-32-le"), dtype=np.uint32)
        uniq, inverse = np.unique(points, return_inverse=True)
        return inverse.astype(np.intp), len(uniq), [chr(int(p)) for p in uniq]


def _shuffle_codes(codes: np.ndarray, n_symbols: int, rng: np.random.Generator) -> list[int]:
    """One uniform dinucleotide shuffle of an integer sequence of length >= 2.

    Parameters
    ----------
    codes
        ``(length,)`` integer codes, all below ``n_symbols``.
    n_symbols
        Size of the code space.
    rng
        Source of randomness.

    Returns
    -------
    list[int]
        The shuffled codes, ``length`` of them.
    """
    src = codes[:-1]
    n_edges = src.shape[0]
    last = int(codes[-1])
    uniform = rng.random(n_edges + _DRAW_BLOCK)
    # The edges grouped by source letter, in uniformly random order within each group: sort
    # on letter + uniform key in [0, 0.5) (0.5 keeps letter + key below the next letter).
    order = np.argsort(src + 0.5 * uniform[:n_edges])
    succ = codes[1:][order].tolist()  # succ[starts[v]:starts[v] + counts[v]]: v's out-edges
    counts_all = np.bincount(src, minlength=n_symbols)
    vertices = np.flatnonzero(counts_all).tolist()
    starts = [0] * n_symbols
    counts = [0] * n_symbols
    acc = 0
    for v, c in zip(vertices, counts_all[vertices].tolist(), strict=True):
        starts[v] = acc
        counts[v] = c
        acc += c

    # Wilson's algorithm: a uniformly random arborescence towards `last`, each vertex
    # leaving along a uniformly random one of its out-edges (so parallel edges weigh more).
    draws = uniform[n_edges:].tolist()
    k = 0
    in_tree = [False] * n_symbols
    in_tree[last] = True
    exit_slot = [0] * n_symbols  # position in `succ` of each vertex's last exit
    for v in vertices:
        u = v
        while not in_tree[u]:
            if k == len(draws):
                draws = rng.random(_DRAW_BLOCK).tolist()
                k = 0
            slot = starts[u] + min(int(draws[k] * counts[u]), counts[u] - 1)
            k += 1
            exit_slot[u] = slot
            u = succ[slot]
        u = v
        while not in_tree[u]:
            in_tree[u] = True
            u = succ[exit_slot[u]]

    # Move each last exit to the end of its group. Swapping an independently drawn slot
    # with the last one leaves the other edges in uniformly random order.
    for v in vertices:
        if v != last:
            a, b = exit_slot[v], starts[v] + counts[v] - 1
            succ[a], succ[b] = succ[b], succ[a]

    # Walk from the first letter, leaving each vertex by its next unused edge.
    nxt = starts
    cur = int(codes[0])
    out = [cur]
    append = out.append
    for _ in range(n_edges):
        p = nxt[cur]
        nxt[cur] = p + 1
        cur = succ[p]
        append(cur)
    return out


def dinucleotide_shuffle(seq: str, rng: np.random.Generator | int) -> str:
    """Uniform random shuffle of a sequence that keeps its dinucleotide counts.

    The result is drawn uniformly from all strings with the same count of every 2-mer and
    the same first and last letters as ``seq`` (Altschul-Erickson / Eulerian-path
    algorithm, see the module docstring). Letters are opaque symbols: ``N`` and lower case
    are shuffled as letters of their own and keep their case.

    Parameters
    ----------
    seq
        The sequence, length ``L``. For ``L <= 3`` the only such string is ``seq`` itself.
    rng
        A ``numpy.random.Generator`` (advanced in place) or a non-negative integer seed.

    Returns
    -------
    str
        The shuffled sequence, length ``L``.

    Raises
    ------
    BiodlInputError
        If ``seq`` is not a string or ``rng`` is neither a Generator nor a seed.

    Examples
    --------
    >>> s = dinucleotide_shuffle("ACGTTGCAACGT", rng=0)
    >>> len(s), s[0], s[-1]
    (12, 'A', 'T')
    """
    if not isinstance(seq, str):
        raise BiodlInputError(f"seq must be a str, got {type(seq).__name__}")
    gen = _as_generator(rng)
    if len(seq) <= 3:
        return seq
    codes, n_symbols, symbols = _symbol_codes(seq)
    out = _shuffle_codes(codes, n_symbols, gen)
    if symbols is None:
        return bytes(out).decode("ascii")
    return "".join([symbols[c] for c in out])


def shuffle_negatives(seqs: Sequence[str], seed: int, n_per_seq: int = 1) -> list[str]:
    """Dinucleotide-shuffled negatives, reproducible from one seed.

    Parameters
    ----------
    seqs
        ``n`` sequences (any lengths).
    seed
        Non-negative integer seed; the same seed and input give the same output.
    n_per_seq
        Shuffles drawn per sequence.

    Returns
    -------
    list[str]
        ``n * n_per_seq`` sequences: the ``n_per_seq`` shuffles of ``seqs[0]``, then those
        of ``seqs[1]``, and so on. The draws come from one generator in that order, so a
        sequence's shuffles depend on the sequences before it.

    Raises
    ------
    BiodlInputError
        If ``seqs`` is a single string or holds a non-string (its index is named), or if
        ``seed`` or ``n_per_seq`` is invalid.
    """
    if isinstance(seqs, (str, bytes)):
        raise BiodlInputError("seqs must be a sequence of strings, not a single string")
    if isinstance(seed, bool) or not isinstance(seed, Integral):
        raise BiodlInputError(f"seed must be an integer, got {type(seed).__name__}")
    if isinstance(n_per_seq, bool) or not isinstance(n_per_seq, Integral) or n_per_seq < 1:
        raise BiodlInputError(f"n_per_seq must be a positive integer, got {n_per_seq!r}")
    gen = _as_generator(seed, "seed")
    out: list[str] = []
    for i, seq in enumerate(seqs):
        if not isinstance(seq, str):
            raise BiodlInputError(f"sequence {i + 1} is a {type(seq).__name__}, not a str")
        for _ in range(n_per_seq):
            out.append(dinucleotide_shuffle(seq, gen))
    return out
