"""Reads in, references and taxonomies: the streaming FASTA/FASTQ reader, the taxonomy table
(or NCBI ``nodes.dmp`` / ``names.dmp``), and the reference directory that
``biodl reads build-reference`` writes.

The reader streams: it reads blocks of a file (plain or gzip, or standard input), validates
every record (a header that starts with ``@``, a ``+`` line, a quality string as long as the
sequence, no record cut short) and yields batches of reads, so memory does not grow with the
input. Every problem is one :class:`~biodl.errors.BiodlInputError` naming the file, the record
number and its line, and what is wrong.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from biodl.errors import BiodlInputError
from biodl.io._util import (
    DECOMPRESSION_ERRORS,
    UTF8_BOM,
    atomic_output,
    atomic_write_text,
    byte_order_mark_error,
    check_file,
    directory_lock,
    open_text,
    output_dir,
)

BLOCK = 1 << 20
REFERENCE_FORMAT = "biodl-reads-reference-1"
#: NCBI ranks kept from nodes.dmp, lowest first.
NCBI_RANKS = ("species", "genus", "family", "order", "class", "phylum", "superkingdom", "domain")
#: Ranks this module knows, lowest first: a taxonomy table's known ranks must come in this order.
RANK_ORDER = (
    "strain",
    "subspecies",
    "species",
    "subgenus",
    "genus",
    "subfamily",
    "family",
    "suborder",
    "order",
    "subclass",
    "class",
    "subphylum",
    "phylum",
    "kingdom",
    "superkingdom",
    "domain",
)
#: Kraken-style rank codes.
RANK_CODE = {
    "species": "S",
    "genus": "G",
    "family": "F",
    "order": "O",
    "class": "C",
    "phylum": "P",
    "superkingdom": "D",
    "domain": "D",
    "kingdom": "K",
}


# ---------------------------------------------------------------------------------- reads
@dataclass
class ReadBatch:
    """A batch of reads: ``ids``, ``seqs`` (bytes) and, for pairs, ``seqs2`` (the mates);
    ``first`` is the 0-based number of its first record in the input."""

    ids: list[str]
    seqs: list[bytes]
    seqs2: list[bytes] | None = None
    first: int = 0
    labels: list[str | None] | None = None

    def __len__(self) -> int:
        return len(self.ids)


class _Prefixed(io.RawIOBase):
    """``head`` then the rest of ``rest``: a stream whose first bytes were already read."""

    def __init__(self, head: bytes, rest: BinaryIO):
        self._head, self._rest = head, rest

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[override]
        if self._head:
            n = min(len(b), len(self._head))
            b[:n], self._head = self._head[:n], self._head[n:]
            return n
        data = self._rest.read1(len(b)) if hasattr(self._rest, "read1") else self._rest.read(len(b))
        b[: len(data)] = data
        return len(data)


def open_binary(path: str | Path) -> tuple[BinaryIO, str]:
    """A binary stream of ``path`` (``-``: standard input), gzip decompressed when it starts
    with the gzip magic; returns ``(stream, name for messages)``."""
    if str(path) == "-":
        name = "<stdin>"
        # a pipe may deliver its first bytes one at a time: read the two magic bytes for sure
        # (read(2) waits for both or the end), then put them back in front of the stream
        raw = sys.stdin.buffer
        head = raw.read(2)
        stream = io.BufferedReader(_Prefixed(head, raw), buffer_size=BLOCK)
        if head == b"\x1f\x8b":
            return gzip.GzipFile(fileobj=stream, mode="rb"), name
        return stream, name
    p = check_file(path)
    fh = open(p, "rb", buffering=BLOCK)
    if fh.peek(2)[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=fh, mode="rb"), str(p)
    return fh, str(p)


def _blocks(fh: BinaryIO, name: str, where) -> Iterator[list[bytes]]:
    """Lists of complete lines (``\\r\\n`` or ``\\n`` stripped) read block by block; ``where()``
    says how far the reader got, for the error of a corrupt gzip stream."""
    rest = b""
    # read1: at most one read of the underlying stream per call, so a truncated gzip stream's
    # error comes on a call of its own and every byte decompressed before it is kept (read()
    # would gather several and drop them all with the error)
    read = getattr(fh, "read1", fh.read)
    while True:
        try:
            chunk = read(BLOCK)
        except DECOMPRESSION_ERRORS as e:
            raise BiodlInputError(
                f"the gzip stream is truncated or corrupt after {where()} ({type(e).__name__}: {e})",
                path=name,
            ) from None
        except OSError as e:
            raise BiodlInputError(f"cannot read: {e}", path=name) from None
        if not chunk:
            break
        buf = rest + chunk
        lines = buf.split(b"\n")
        rest = lines.pop()
        if b"\r" in buf:
            lines = [ln.rstrip(b"\r") for ln in lines]
        yield lines
    if rest:
        yield [rest.rstrip(b"\r")]


def _fastq_records(fh: BinaryIO, name: str) -> Iterator[tuple[list[bytes], list[bytes], int]]:
    """Blocks of FASTQ records: ``(headers, sequences, first record number)``, validated."""
    done = 0
    pending: list[bytes] = []

    def where() -> str:
        return f"record {done + 1} (line {4 * done + 1})"

    for block in _blocks(fh, name, where):
        lines = pending + block if pending else block
        n = len(lines) // 4 * 4
        pending = lines[n:]
        if not n:
            continue
        h, s, p, q = lines[0:n:4], lines[1:n:4], lines[2:n:4], lines[3:n:4]
        ok = [x[:1] == b"@" for x in h]
        if not all(ok):
            i = ok.index(False)
            got = h[i][:30].decode("utf-8", "replace")
            raise BiodlInputError(
                f"record {done + i + 1}: bad header {got!r}: a FASTQ record starts with '@' "
                "(multi-line or blank-line-separated FASTQ is not supported)",
                path=name,
                record=4 * (done + i) + 1,
            )
        ok = [x[:1] == b"+" for x in p]
        if not all(ok):
            i = ok.index(False)
            raise BiodlInputError(
                f"record {done + i + 1}: the third line of a FASTQ record must start with '+'",
                path=name,
                record=4 * (done + i) + 3,
            )
        ls, lq = list(map(len, s)), list(map(len, q))
        if ls != lq:
            i = next(j for j in range(len(ls)) if ls[j] != lq[j])
            raise BiodlInputError(
                f"record {done + i + 1}: sequence and quality lengths differ ({ls[i]} and {lq[i]})",
                path=name,
                record=4 * (done + i) + 4,
            )
        yield h, s, done
        done += len(h)
    while pending and not pending[-1].strip():
        pending.pop()
    if pending:
        raise BiodlInputError(
            f"record {done + 1}: truncated record: the input ends after {len(pending)} of its 4 lines",
            path=name,
            record=4 * done + 1,
        )


def _fasta_records(fh: BinaryIO, name: str) -> Iterator[tuple[list[bytes], list[bytes], int]]:
    """Blocks of FASTA records (multi-line sequences joined)."""
    done = 0
    header: bytes | None = None
    chunks: list[bytes] = []
    hs: list[bytes] = []
    ss: list[bytes] = []
    line_no = 0

    def where() -> str:
        return f"record {done + len(hs) + 1} (about line {line_no})"

    for block in _blocks(fh, name, where):
        for ln in block:
            line_no += 1
            if ln[:1] == b">":
                if header is not None:
                    hs.append(header)
                    ss.append(b"".join(chunks))
                header, chunks = ln, []
            elif ln and ln[:1] != b";":
                if header is None:
                    raise BiodlInputError(
                        "sequence text before the first '>' header", path=name, record=line_no
                    )
                chunks.append(ln.strip())
        if hs:
            yield hs, ss, done
            done += len(hs)
            hs, ss = [], []
    if header is not None:
        yield [header], [b"".join(chunks)], done


def _ids(headers: list[bytes], name: str, first: int) -> list[str]:
    out = []
    for i, h in enumerate(headers):
        parts = h[1:].split(None, 1)
        if not parts:
            raise BiodlInputError(f"record {first + i + 1}: bad header: no read name", path=name)
        out.append(parts[0].decode("utf-8", "replace"))
    return out


_NEXT_KEY = re.compile(rb"\s+[A-Za-z_][\w.]*=")


def _labels(headers: list[bytes]) -> list[str | None]:
    """``taxon=NAME`` in a header (the labelled read sets of :func:`write_reads`). NAME runs to
    the end of the header or to the next ``key=`` field, so names with spaces (NCBI's
    scientific names) are read whole."""
    out: list[str | None] = []
    for h in headers:
        i = h.find(b"taxon=")
        if i < 0:
            out.append(None)
            continue
        v = h[i + 6 :].rstrip(b"\r\n")
        m = _NEXT_KEY.search(v)
        out.append((v[: m.start()] if m else v).strip().decode("utf-8", "replace") or None)
    return out


def sniff_reads(fh: BinaryIO, name: str) -> str:
    """``fastq`` or ``fasta`` by the first byte of the (decompressed) stream."""
    try:
        head = fh.peek(1)[:1] if hasattr(fh, "peek") else b""
    except DECOMPRESSION_ERRORS as e:
        raise BiodlInputError(
            f"the gzip stream is truncated or corrupt at its start ({type(e).__name__}: {e})", path=name
        ) from None
    if head == b"@":
        return "fastq"
    if head == b">":
        return "fasta"
    if head == b"":
        return "empty"
    if head == UTF8_BOM[:1] and fh.peek(3)[:3] == UTF8_BOM:
        raise byte_order_mark_error(name, "'@' (FASTQ) or '>' (FASTA)")
    raise BiodlInputError(
        f"is not FASTQ or FASTA (starts with {head!r}; a FASTQ record starts with '@', FASTA with '>')",
        path=name,
    )


def iter_records(
    path: str | Path, *, with_labels: bool = False
) -> Iterator[tuple[list[str], list[bytes], int, list[str | None] | None]]:
    """Blocks ``(ids, sequences, first record number, labels)`` of a FASTQ or FASTA file (plain
    or gzip; ``-`` for standard input), validated as they are read."""
    fh, name = open_binary(path)
    if not hasattr(fh, "peek"):
        fh = io.BufferedReader(fh, BLOCK)  # type: ignore[arg-type]
    try:
        fmt = sniff_reads(fh, name)
        if fmt == "empty":
            return
        gen = _fastq_records(fh, name) if fmt == "fastq" else _fasta_records(fh, name)
        for hs, ss, first in gen:
            yield _ids(hs, name, first), ss, first, (_labels(hs) if with_labels else None)
    finally:
        if fh is not getattr(sys.stdin, "buffer", None):
            fh.close()


def iter_batches(
    path: str | Path, batch_size: int = 4096, mate2: str | Path | None = None, *, with_labels: bool = False
) -> Iterator[ReadBatch]:
    """Batches of at most ``batch_size`` reads (pairs with ``mate2``), streamed."""
    if batch_size < 1:
        raise BiodlInputError(f"--batch-size must be at least 1, got {batch_size}")

    def flat(p):
        for ids, seqs, first, labels in iter_records(p, with_labels=with_labels):
            for j in range(len(ids)):
                yield ids[j], seqs[j], first + j, (labels[j] if labels else None)

    def rebatch(blocks):
        ids: list[str] = []
        seqs: list[bytes] = []
        labels: list[str | None] = []
        first = 0
        for b_ids, b_seqs, b_first, b_labels in blocks:
            k = 0
            while k < len(b_ids):
                if not ids:
                    first = b_first + k
                take = min(batch_size - len(ids), len(b_ids) - k)
                ids.extend(b_ids[k : k + take])
                seqs.extend(b_seqs[k : k + take])
                if b_labels is not None:
                    labels.extend(b_labels[k : k + take])
                k += take
                if len(ids) == batch_size:
                    yield ReadBatch(ids, seqs, None, first, labels if with_labels else None)
                    ids, seqs, labels = [], [], []
        if ids:
            yield ReadBatch(ids, seqs, None, first, labels if with_labels else None)

    if mate2 is None:
        yield from rebatch(iter_records(path, with_labels=with_labels))
        return
    a, b = flat(path), flat(mate2)
    batch = ReadBatch([], [], [], 0, [] if with_labels else None)
    name2 = str(mate2)
    for x in a:
        y = next(b, None)
        if y is None:
            raise BiodlInputError(f"the mate file ends before record {x[2] + 1} of {path}", path=name2)
        if _mate_name(x[0]) != _mate_name(y[0]):
            raise BiodlInputError(
                f"record {x[2] + 1}: mate names differ ({x[0]!r} in {path}, {y[0]!r} here)", path=name2
            )
        if not batch.ids:
            batch.first = x[2]
        batch.ids.append(x[0])
        batch.seqs.append(x[1])
        batch.seqs2.append(y[1])  # type: ignore[union-attr]
        if batch.labels is not None:
            batch.labels.append(x[3])
        if len(batch) == batch_size:
            yield batch
            batch = ReadBatch([], [], [], 0, [] if with_labels else None)
    if next(b, None) is not None:
        raise BiodlInputError(f"the mate file has more records than {path}", path=name2)
    if batch.ids:
        yield batch


def _mate_name(s: str) -> str:
    return s[:-2] if s.endswith(("/1", "/2")) else s


def write_reads(
    path: str | Path, ids: list[str], seqs: list[str], labels: list[str] | None = None, fastq: bool = True
) -> Path:
    """Reads as FASTQ (quality ``I`` throughout) or FASTA, gzip when ``path`` ends in ``.gz``,
    with ``taxon=NAME`` in the header when ``labels`` are given; written atomically."""
    out = []
    for i, (rid, s) in enumerate(zip(ids, seqs, strict=True)):
        h = rid + (f" taxon={labels[i]}" if labels is not None else "")
        out.append(f"@{h}\n{s}\n+\n{'I' * len(s)}\n" if fastq else f">{h}\n{s}\n")
    data = "".join(out).encode()
    if str(path).endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    with atomic_output(path) as tmp:
        Path(tmp).write_bytes(data)
    return Path(path)


# ------------------------------------------------------------------------------ taxonomy
@dataclass
class Taxonomy:
    """Taxa by rank, lowest rank first: ``names[r]`` the taxa of rank ``ranks[r]``,
    ``parent[r][i]`` the index at rank ``r + 1`` of taxon ``i`` of rank ``r`` (the top rank has
    none), ``taxids[r][i]`` their taxonomy ids, ``genome[g] -> leaf index``."""

    ranks: list[str]
    names: list[list[str]]
    parent: list[list[int]]
    taxids: list[list[int]]
    genomes: dict[str, int] = field(default_factory=dict)

    def lineage(self, leaf: int) -> list[int]:
        """Indices at every rank of leaf taxon ``leaf``."""
        out = [leaf]
        for r in range(len(self.ranks) - 1):
            out.append(self.parent[r][out[-1]])
        return out

    def find(self, name: str) -> tuple[int, int] | None:
        """``(rank, index)`` of a taxon name (lowest rank first), or ``None``."""
        for r, names in enumerate(self.names):
            if name in names:
                return r, names.index(name)
        return None


_NOT_FASTA = (".gbk", ".gb", ".gbff", ".genbank", ".embl", ".fastq", ".fq", ".gff", ".gff3", ".gtf")


def _row_key(key: str, listed: list[str]) -> str:
    """The taxonomy row a genome file's ``key`` matches: itself, or for a GenBank / EMBL / FASTQ /
    GFF name given by mistake its stem (reading the file then says what it is)."""
    stem, suffix = Path(key).stem, Path(key).suffix.lower()
    return stem if key not in listed and suffix in _NOT_FASTA and stem in listed else key


_FASTA_SUFFIXES = (".fna", ".fasta", ".fa", ".fas", ".ffn", ".fsa", ".fsa_nt", ".mfa", ".seq", ".fn")


def _key(name: str) -> str:
    """A genome's matching key: its file name less the gzip and FASTA extensions, in any case
    (``NC_005816.FNA``, ``NC_001802.fsa``, ``x.fasta.gz`` are ``NC_005816``, ``NC_001802``, ``x``)."""
    n = Path(name).name
    for group in ((".gz", ".bgz"), _FASTA_SUFFIXES):
        low = n.lower()
        for suf in group:
            if low.endswith(suf) and len(n) > len(suf):
                n = n[: -len(suf)]
                break
    return n


def _trim(cells: list[str]) -> list[str]:
    while cells and not cells[-1]:
        cells = cells[:-1]
    return cells


def read_taxonomy_table(path: str | Path) -> tuple[list[str], list[tuple[str, list[str], int]]]:
    """A taxonomy TSV: a header ``genome<TAB>species<TAB>genus[<TAB>family ...]`` (lowest rank
    first) and one row per genome file (its name, with or without extensions). Returns the
    ranks and ``(genome, names per rank, line)`` rows."""
    p = check_file(path)
    with open_text(p) as fh:  # a spreadsheet's byte-order mark (UTF-8 or UTF-16), gzip
        rows = [r for r in csv.reader(fh, delimiter="\t")]
    lines = [
        (i + 1, r) for i, r in enumerate(rows) if r and any(c.strip() for c in r) and not r[0].startswith("#")
    ]
    if not lines:
        raise BiodlInputError("empty taxonomy table", path=p)
    head = _trim([c.strip() for c in lines[0][1]])  # trailing tabs (spreadsheet exports) are dropped
    if len(head) < 2 or head[0].lower() not in ("genome", "file", "assembly"):
        raise BiodlInputError(
            "the header must be 'genome' then the ranks, lowest first (e.g. genome, species, genus, family)",
            path=p,
            record=lines[0][0],
        )
    ranks = [h.lower() for h in head[1:]]
    if not all(ranks):
        raise BiodlInputError(
            f"the header has an empty rank name (a stray tab?): {head}", path=p, record=lines[0][0]
        )
    if len(set(ranks)) != len(ranks):
        raise BiodlInputError(f"a rank is named twice in the header: {', '.join(ranks)}", path=p, record=1)
    known = [RANK_ORDER.index(r) for r in ranks if r in RANK_ORDER]
    if known != sorted(known):
        raise BiodlInputError(
            f"the ranks must go from the lowest to the highest ({', '.join(ranks)} is out of order; "
            f"the known ranks go {', '.join(RANK_ORDER)})",
            path=p,
            record=lines[0][0],
        )
    out = []
    for ln, r in lines[1:]:
        r = _trim([c.strip() for c in r])
        if len(r) != len(head) or not all(r):
            raise BiodlInputError(
                f"expected {len(head)} non-empty tab-separated fields ({', '.join(head)}), got {r}",
                path=p,
                record=ln,
            )
        out.append((r[0], r[1:], ln))
    return ranks, out


def read_ncbi_taxonomy(
    table: str | Path, nodes: str | Path, names: str | Path
) -> tuple[list[str], list[tuple[str, list[str], int]], dict[str, int]]:
    """A ``genome<TAB>taxid`` table with NCBI ``nodes.dmp`` / ``names.dmp``: the ranks of
    :data:`NCBI_RANKS` that every genome's lineage has, and rows as :func:`read_taxonomy_table`."""
    tp = check_file(table)
    parent: dict[int, int] = {}
    rank: dict[int, str] = {}
    with open_text(nodes) as fh:
        for i, line in enumerate(fh, 1):
            f = [x.strip() for x in line.split("|")]
            if len(f) < 3 or not f[0].isdigit() or not f[1].isdigit():
                raise BiodlInputError("expected 'taxid | parent | rank | ...'", path=nodes, record=i)
            parent[int(f[0])], rank[int(f[0])] = int(f[1]), f[2]
    sci: dict[int, str] = {}
    with open_text(names) as fh:
        for i, line in enumerate(fh, 1):
            f = [x.strip() for x in line.split("|")]
            if len(f) < 4 or not f[0].isdigit():
                raise BiodlInputError("expected 'taxid | name | unique name | class |'", path=names, record=i)
            if f[3] == "scientific name":
                sci[int(f[0])] = f[1]
    rows = []
    with open_text(tp) as fh:
        for i, line in enumerate(fh, 1):
            f = [x.strip() for x in line.rstrip("\n").split("\t")]
            if not f[0] or f[0].startswith("#") or (i == 1 and f[0].lower() in ("genome", "file")):
                continue
            if len(f) < 2 or not f[1].isdigit():
                raise BiodlInputError("expected 'genome<TAB>taxid'", path=tp, record=i)
            t = int(f[1])
            if t not in parent:
                raise BiodlInputError(f"taxid {t} is not in {nodes}", path=tp, record=i)
            lin: dict[str, int] = {}
            seen = set()
            while t not in seen:
                seen.add(t)
                if rank.get(t) in NCBI_RANKS:
                    lin.setdefault(rank[t], t)
                if parent[t] == t:
                    break
                t = parent[t]
            rows.append((f[0], lin, i))
    if not rows:
        raise BiodlInputError("no genome rows", path=tp)
    ranks = [r for r in NCBI_RANKS if all(r in lin for _, lin, _ in rows)]
    if not ranks:
        raise BiodlInputError("the genomes share no rank of " + ", ".join(NCBI_RANKS), path=tp)
    taxid_of = {}
    out = []
    for g, lin, ln in rows:
        names_r = []
        for r in ranks:
            nm = sci.get(lin[r], str(lin[r]))
            taxid_of[f"{r}:{nm}"] = lin[r]
            names_r.append(nm)
        out.append((g, names_r, ln))
    return ranks, out, taxid_of


def build_taxonomy(
    ranks: list[str],
    rows: list[tuple[str, list[str], int]],
    path: str | Path,
    taxids: dict[str, int] | None = None,
) -> Taxonomy:
    """Check a taxonomy is a tree (each taxon has one parent) and index it; taxonomy ids are
    those of ``taxids`` (``"rank:name" -> id``) or assigned from 2 upwards (1 is the root),
    top rank first."""
    R = len(ranks)
    names: list[list[str]] = [[] for _ in ranks]
    index: list[dict[str, int]] = [{} for _ in ranks]
    parent_name: list[dict[str, tuple[str, int]]] = [{} for _ in ranks]
    genomes: dict[str, int] = {}
    for g, lin, ln in rows:
        key = _key(g)
        if key in genomes:
            raise BiodlInputError(f"genome {g!r} is listed twice", path=path, record=ln)
        for r in range(R):
            nm = lin[r]
            if nm not in index[r]:
                index[r][nm] = len(names[r])
                names[r].append(nm)
            if r + 1 < R:
                up = lin[r + 1]
                prev = parent_name[r].get(nm)
                if prev is not None and prev[0] != up:
                    raise BiodlInputError(
                        f"{ranks[r]} {nm!r} is in {ranks[r + 1]} {up!r} here but in {prev[0]!r} on line "
                        f"{prev[1]}: a taxon has one parent",
                        path=path,
                        record=ln,
                    )
                parent_name[r][nm] = (up, ln)
        genomes[key] = index[0][lin[0]]
    parent = [[index[r + 1][parent_name[r][nm][0]] for nm in names[r]] for r in range(R - 1)]
    ids: list[list[int]] = [[0] * len(n) for n in names]
    nxt = 2
    for r in reversed(range(R)):
        for i, nm in enumerate(names[r]):
            t = (taxids or {}).get(f"{ranks[r]}:{nm}")
            if t is None:
                t, nxt = nxt, nxt + 1
            ids[r][i] = int(t)
    return Taxonomy(list(ranks), names, parent, ids, genomes)


def write_ncbi_dmp(tax: Taxonomy, directory: str | Path) -> Path:
    """``nodes.dmp`` and ``names.dmp`` of ``tax`` in NCBI's format (root taxid 1), so Kraken2
    (``kraken2-build``) can use the same taxonomy."""
    d = output_dir(directory)
    nodes = ["1\t|\t1\t|\tno rank\t|\t-\t|\n"]
    names = ["1\t|\troot\t|\t-\t|\tscientific name\t|\n"]
    R = len(tax.ranks)
    for r in reversed(range(R)):
        for i, nm in enumerate(tax.names[r]):
            up = tax.taxids[r + 1][tax.parent[r][i]] if r + 1 < R else 1
            nodes.append(f"{tax.taxids[r][i]}\t|\t{up}\t|\t{tax.ranks[r]}\t|\t-\t|\n")
            names.append(f"{tax.taxids[r][i]}\t|\t{nm}\t|\t-\t|\tscientific name\t|\n")
    atomic_write_text(d / "nodes.dmp", "".join(nodes))
    atomic_write_text(d / "names.dmp", "".join(names))
    return d


# ----------------------------------------------------------------------------- reference
_CODE = np.full(256, 4, np.uint8)
for _c, _v in zip(b"ACGTUacgtu", (0, 1, 2, 3, 3, 0, 1, 2, 3, 3), strict=True):
    _CODE[_c] = _v


@dataclass
class Reference:
    """A reference directory: 2-bit codes of every genome (``sequence.npy``, memory-mapped;
    0-3 = A, C, G, T, 4 = N or other), the contigs and the taxonomy."""

    path: Path
    taxonomy: Taxonomy
    genomes: list[dict[str, Any]]
    contigs: np.ndarray  # (n_contigs, 3): genome index, start in sequence.npy, length
    contig_names: list[str]
    codes: np.ndarray

    @property
    def ranks(self) -> list[str]:
        return self.taxonomy.ranks

    @property
    def rank_sizes(self) -> list[int]:
        return [len(n) for n in self.taxonomy.names]

    def genome_leaf(self) -> np.ndarray:
        return np.array([g["leaf"] for g in self.genomes], np.int64)


def build_reference(
    genomes: list[str | Path],
    taxonomy: str | Path,
    out: str | Path,
    *,
    nodes: str | Path | None = None,
    names: str | Path | None = None,
    quiet: bool = False,
) -> Reference:
    """Write a reference directory ``out``: ``reference.json`` (genomes, contigs, taxonomy),
    ``sequence.npy`` (2-bit codes, N = 4) and ``taxonomy/nodes.dmp`` + ``names.dmp`` (for
    Kraken2) with ``taxonomy/seqid2taxid.map``. Every genome must be in the taxonomy."""
    from biodl.io.fasta import read_fasta
    from biodl.kinds.base import log

    if not genomes:
        raise BiodlInputError("give one or more genome FASTA files")
    replacing = _check_reference_out(Path(out))
    if (nodes is None) != (names is None):
        raise BiodlInputError("give both --nodes and --names (NCBI taxonomy), or neither")
    if nodes is not None:
        ranks, rows, taxids = read_ncbi_taxonomy(taxonomy, nodes, names)  # type: ignore[arg-type]
    else:
        ranks, rows = read_taxonomy_table(taxonomy)
        taxids = None
    build_taxonomy(ranks, rows, taxonomy, taxids)  # the whole table is checked (one parent per taxon)
    listed = sorted({_key(g) for g, _, _ in rows})
    # a GenBank / EMBL / FASTQ file given by mistake matches its row by the stem, and reading it
    # then says what it is (any other dotted name is a name: strainA.v2 is not strainA)
    keys = [_row_key(k, listed) for k in map(_key, map(str, genomes))]
    missing = [str(g) for g, k in zip(genomes, keys, strict=True) if k not in listed]
    if missing and not listed:
        raise BiodlInputError("the taxonomy table has no rows (a header only?)", path=taxonomy)
    if missing:
        known = ", ".join(listed[:10])
        raise BiodlInputError(
            f"genome(s) not in the taxonomy table: {', '.join(missing)} (rows name genomes by file name, "
            f"extensions optional; the table has: {known}{', ...' if len(listed) > 10 else ''})",
            path=taxonomy,
        )
    if len(set(keys)) != len(keys):
        raise BiodlInputError(
            "a genome file is given twice: " + ", ".join(k for k in keys if keys.count(k) > 1)
        )
    unused = [g for g, _, _ in rows if _key(g) not in keys]
    tax = build_taxonomy(ranks, [r for r in rows if _key(r[0]) in keys], taxonomy, taxids)
    chunks: list[np.ndarray] = []
    contigs: list[tuple[int, int, int]] = []
    cnames: list[str] = []
    owner: dict[str, str] = {}  # contig name -> genome file: names must be unique across genomes
    gmeta: list[dict[str, Any]] = []
    pos = 0
    for gi, (g, key) in enumerate(zip(genomes, keys, strict=True)):
        try:
            recs = read_fasta(g, validate=True, iupac_as_n=True)
        except UnicodeDecodeError:
            raise BiodlInputError("is not a readable FASTA file", path=g) from None
        length = acgt = 0
        for rec in recs:
            if rec.name in owner:
                raise BiodlInputError(
                    f"contig {rec.name!r} is also in {owner[rec.name]}: contig names must be unique across "
                    "the genomes (reads are labelled by contig, and Kraken2's seqid2taxid.map keys on "
                    "them); rename them, e.g. with the genome's name in front",
                    path=g,
                )
            owner[rec.name] = str(g)
            c = _CODE[np.frombuffer(rec.sequence.encode("ascii"), np.uint8)]
            acgt += int(np.count_nonzero(c < 4))
            chunks.append(c)
            contigs.append((gi, pos, len(c)))
            cnames.append(rec.name)
            pos += len(c)
            length += len(c)
        if acgt == 0:
            raise BiodlInputError("has no A, C, G or T base (only N or empty records)", path=g)
        leaf = tax.genomes[key]
        gmeta.append(
            {
                "name": key,
                "file": str(Path(g).resolve()),
                "leaf": leaf,
                "length": length,
                "contigs": len(recs),
            }
        )
        log(f"[biodl] {key}: {len(recs)} contig(s), {length:,} bp -> {tax.names[0][leaf]}", quiet)
    codes = np.concatenate(chunks)
    made = not Path(out).exists()
    od = output_dir(out)  # only now: a genome that fails above leaves no directory behind
    try:
        with directory_lock(od, REFERENCE_LOCK, "biodl reads build-reference", "reference"):
            _write_reference(od, codes, tax, gmeta, contigs, cnames, taxonomy, replacing, quiet)
    except BaseException:
        if made:  # nor does a write that fails (a full disk): the folder this build made goes
            import shutil

            shutil.rmtree(od, ignore_errors=True)
        raise
    if unused:
        log(
            f"[biodl] note: {len(unused)} taxonomy row(s) without a genome here, left out: "
            f"{', '.join(unused)}",
            quiet,
        )
    return load_reference(od)


#: The lock of a reference folder while a build writes it: a second build into it is refused.
REFERENCE_LOCK = ".biodl-reference.lock"


def _write_reference(od: Path, codes, tax, gmeta, contigs, cnames, taxonomy, replacing: bool, quiet: bool):
    """Write a reference's files. Its reference.json says ``building`` first, so a build killed
    between its files (an earlier reference's sequence.npy beside this one's reference.json, or
    the reverse: reads labelled with the wrong taxa) leaves a reference that is refused, not used."""
    from biodl.kinds.base import log

    if replacing:
        log(f"[biodl] replacing the reference in {od}", quiet)
        building = {"format": REFERENCE_FORMAT, "building": True}
        atomic_write_text(od / "reference.json", json.dumps(building) + "\n")
    with atomic_output(od / "sequence.npy") as tmp, open(tmp, "wb") as fh:
        np.save(fh, codes)
    meta = {
        "format": REFERENCE_FORMAT,
        "taxonomy_file": str(Path(taxonomy).resolve()),
        "ranks": tax.ranks,
        "names": tax.names,
        "parent": tax.parent,
        "taxids": tax.taxids,
        "genomes": gmeta,
        "contigs": [[*c, n] for c, n in zip(contigs, cnames, strict=True)],
    }
    tdir = write_ncbi_dmp(tax, od / "taxonomy")
    seqmap = "".join(
        f"{n}\t{tax.taxids[0][gmeta[c[0]]['leaf']]}\n" for c, n in zip(contigs, cnames, strict=True)
    )
    atomic_write_text(tdir / "seqid2taxid.map", seqmap)
    atomic_write_text(od / "reference.json", json.dumps(meta, indent=1) + "\n")


#: What a reference directory holds (:func:`build_reference`).
REFERENCE_FILES = ("reference.json", "sequence.npy", "taxonomy")


def _check_reference_out(out: Path) -> bool:
    """Whether ``out`` holds a reference that :func:`build_reference` would replace; a folder
    that holds anything else (a training run, other files) is refused before any work, so a
    reference is never mixed into it."""
    if not out.is_dir():
        return False
    other = sorted(
        e.name for e in out.iterdir() if e.name not in REFERENCE_FILES and not e.name.startswith(".")
    )
    if other:
        shown = ", ".join(other[:5]) + (", ..." if len(other) > 5 else "")
        raise BiodlInputError(
            f"holds other files ({shown}); a reference is written into a new or empty folder, or over "
            "an earlier reference: give another --out",
            path=out,
        )
    return (out / "reference.json").exists()


def load_reference(path: str | Path) -> Reference:
    """Open a reference directory written by :func:`build_reference` (sequence memory-mapped)."""
    p = Path(path)
    if p.is_file() and p.name == "reference.json":
        p = p.parent
    if not (p / "reference.json").is_file():
        raise BiodlInputError(
            "is not a reference directory (no reference.json; make one with biodl reads build-reference)",
            path=p,
        )
    from biodl.io._util import note_input

    for f in (p / "reference.json", p / "sequence.npy", *sorted((p / "taxonomy").glob("*"))):
        note_input(f)  # no output of the command may replace a file of the reference
    try:
        meta = json.loads((p / "reference.json").read_text())
    except ValueError as e:
        raise BiodlInputError(f"reference.json is not valid JSON: {e}", path=p) from None
    if meta.get("format") != REFERENCE_FORMAT:
        raise BiodlInputError(f"unknown reference format {meta.get('format')!r}", path=p)
    if meta.get("building"):
        raise BiodlInputError(
            "its build-reference stopped before it finished (its files may be of two builds); run "
            "biodl reads build-reference into it again",
            path=p,
        )
    if not (p / "sequence.npy").is_file():
        raise BiodlInputError("sequence.npy is missing from the reference directory", path=p)
    tax = Taxonomy(meta["ranks"], meta["names"], meta["parent"], meta["taxids"])
    tax.genomes = {g["name"]: g["leaf"] for g in meta["genomes"]}
    cont = meta["contigs"]
    try:
        seq = np.load(p / "sequence.npy", mmap_mode="r")
    except (ValueError, OSError, EOFError) as e:
        raise BiodlInputError(
            f"sequence.npy is not the reference's sequence array ({e}); rebuild it with biodl reads "
            "build-reference",
            path=p,
        ) from None
    return Reference(
        p,
        tax,
        meta["genomes"],
        np.array([c[:3] for c in cont], np.int64).reshape(-1, 3),
        [c[3] for c in cont],
        seq,
    )


def taxonomy_dict(tax: Taxonomy) -> dict[str, Any]:
    """The taxonomy as plain JSON data (stored with a model)."""
    return {"ranks": tax.ranks, "names": tax.names, "parent": tax.parent, "taxids": tax.taxids}


def taxonomy_from_dict(d: dict[str, Any]) -> Taxonomy:
    return Taxonomy(d["ranks"], d["names"], d["parent"], d["taxids"])


__all__ = [
    "RANK_CODE",
    "ReadBatch",
    "Reference",
    "Taxonomy",
    "build_reference",
    "build_taxonomy",
    "iter_batches",
    "iter_records",
    "load_reference",
    "read_ncbi_taxonomy",
    "read_taxonomy_table",
    "write_ncbi_dmp",
    "write_reads",
]
