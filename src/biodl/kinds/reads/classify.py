"""Streaming classification of reads: ``biodl reads classify``.

Reads are parsed in the main process and sent, a batch at a time, to an executor that hashes
their k-mers, runs the network and turns the calibrated probabilities into calls (the deepest
rank whose confidence reaches the model's threshold; unclassified when none does). Results
come back in input order and are written as they arrive (one line per read, flushed per
batch); only a bounded number of batches is in flight, so memory does not grow with the
input. The network runs in numpy (the default on the CPU for ``read-classifier``: no torch is
imported, the k-mer table is memory-mapped, quantised tables are read as they are) or in torch
(``engine="torch"``, a GPU, ``read-bilstm``); :mod:`biodl.kinds.reads.engine`. Executors:

* in-process (``threads=1``, or ``--device cuda``: the GPU runs the network, hashing stays here);
* worker threads (``threads=N`` with the numpy engine, :class:`concurrent.futures.ThreadPoolExecutor`)
  sharing one model, one BLAS thread each;
* worker processes (``threads=N`` with the torch engine, :class:`concurrent.futures.ProcessPoolExecutor`),
  each with its own copy of the model and one torch thread;
* a Dask cluster (``scheduler``: an address, or ``local`` for a :class:`distributed.LocalCluster`):
  the model's weights (numpy arrays) are scattered to every worker once, each batch is a task.

The per-taxon counts give a Kraken-style report (percent, clade reads, direct reads, rank code,
taxid, indented name), written atomically at the end (and refreshed while a long stream runs).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from biodl.errors import BiodlError, BiodlInputError
from biodl.kinds.reads.io import RANK_CODE, ReadBatch, Taxonomy, iter_batches, taxonomy_from_dict

HEADER = "id\ttaxon\ttaxid\trank\tconfidence\n"


# --------------------------------------------------------------------------------- calls


def _on_gpu(device: str) -> bool:
    """Whether ``--device`` (``cpu``, ``cuda``, ``cuda:N``, ``gpu``, ``auto``, ...) classifies on a
    GPU (torch is imported only for a device other than the CPU)."""
    if str(device).strip().lower() == "cpu":
        return False
    from biodl.train.predict import torch_device

    return torch_device(device).type != "cpu"


def decide(
    lp_parts: list[np.ndarray], threshold: np.ndarray, parents: list[list[int]] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Calls from calibrated log-probabilities per rank (lowest first): ``(rank, index,
    confidence)`` per read, rank -1 = unclassified (confidence: that of the top rank).

    A read is called at the lowest rank whose most likely taxon reaches that rank's threshold;
    with ``parents`` (the taxonomy's ``parent`` lists), every ancestor of that taxon must also
    reach the threshold of its rank in its own head (a species call needs its genus to be sure
    too), so a call is never made under a lineage the model doubts."""
    R = len(lp_parts)
    n = lp_parts[0].shape[0]
    rows = np.arange(n)
    rank = np.full(n, -1, np.int64)
    index = np.zeros(n, np.int64)
    conf = np.zeros(n, np.float64)
    logt = np.log(np.maximum(np.asarray(threshold, np.float64), 1e-300))
    for r in reversed(range(R)):
        a = lp_parts[r].argmax(1)
        lp = lp_parts[r][rows, a]
        p = np.exp(lp)
        if r == R - 1:
            conf[:] = p
        sure = lp >= logt[r]
        if parents is not None:
            anc = a
            for up in range(r + 1, R):
                anc = np.asarray(parents[up - 1], np.int64)[anc]
                sure &= lp_parts[up][rows, anc] >= logt[up]
        rank[sure], index[sure], conf[sure] = r, a[sure], p[sure]
    return rank, index, conf


@dataclass
class Labels:
    """Output text of every call: ``flat[offset[r] + i]`` for taxon ``i`` of rank ``r``, the last
    entry for unclassified."""

    flat: list[str]
    offset: np.ndarray

    @classmethod
    def of(cls, tax: Taxonomy) -> Labels:
        flat = []
        for r, names in enumerate(tax.names):
            flat += [f"{nm}\t{tax.taxids[r][i]}\t{tax.ranks[r]}" for i, nm in enumerate(names)]
        flat.append("unclassified\t0\tunclassified")
        sizes = [len(n) for n in tax.names]
        return cls(flat, np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64))

    def flat_index(self, rank: np.ndarray, index: np.ndarray) -> np.ndarray:
        return np.where(rank >= 0, self.offset[np.maximum(rank, 0)] + index, len(self.flat) - 1)


class Classifier:
    """A loaded read model: k-mer hashing, the network and the calls, for one batch at a time.

    Parameters
    ----------
    net
        :class:`~biodl.kinds.reads.engine.NumpyKmerBag` or :class:`~biodl.kinds.reads.engine.TorchNet`
        (``k``, ``bits``, ``threshold`` and ``log_probs(x)``).
    taxonomy
        The model's taxonomy (``meta["data"]["taxonomy"]``).
    min_confidence
        Override of the model's thresholds (every rank).
    chunk
        Reads hashed and scored at a time (bounds the working memory whatever the batch size);
        ``None``: the whole batch at once (the GPU).
    """

    def __init__(
        self, net, taxonomy: dict, min_confidence: float | None = None, chunk: int | None = 1024
    ) -> None:
        self.net = net
        self.tax = taxonomy_from_dict(taxonomy)
        self.labels = Labels.of(self.tax)
        thr = np.asarray(net.threshold, np.float64)
        if min_confidence is not None:
            thr = np.full_like(thr, float(min_confidence))
        self.threshold = thr
        self.k, self.bits = int(net.k), int(net.bits)
        self.n_counts = int(self.labels.offset[-1]) + 1
        self.chunk = chunk

    @classmethod
    def load(
        cls,
        path: str | Path,
        device: str = "cpu",
        min_confidence: float | None = None,
        engine: str = "auto",
    ) -> Classifier:
        """Load a read model for ``engine`` (``auto``: numpy for a read-classifier on the CPU,
        torch otherwise; see :func:`biodl.kinds.reads.engine.pick_engine`)."""
        from biodl.kinds.reads.engine import NumpyKmerBag, TorchNet, pick_engine
        from biodl.kinds.reads.weights import read_model_file

        meta = read_model_file(path, tensors=False).meta
        if meta.get("kind") != "reads":
            raise BiodlInputError(
                f"is a {meta.get('recipe')} model of kind {meta.get('kind')!r}; biodl reads classify needs a "
                "read classifier (biodl train --system read-classifier)",
                path=path,
            )
        if pick_engine(engine, device, meta.get("recipe")) == "numpy":
            return cls(NumpyKmerBag.load(path), meta["data"]["taxonomy"], min_confidence)
        gpu = _on_gpu(device)
        return cls(
            TorchNet.load(path, device), meta["data"]["taxonomy"], min_confidence, None if gpu else 1024
        )

    def indices(self, batch: ReadBatch) -> np.ndarray:
        from biodl.kinds.reads.kmers import read_indices

        return read_indices(batch.seqs, self.k, self.bits, batch.seqs2)

    def log_probs(self, x: np.ndarray) -> np.ndarray:
        return self.net.log_probs(x)

    def batch_log_probs(self, batch: ReadBatch) -> np.ndarray:
        """Hash and score a batch, ``chunk`` reads at a time."""
        from biodl.kinds.reads.kmers import read_indices

        n = len(batch.seqs)
        step = self.chunk or max(n, 1)
        if n <= step:
            return self.log_probs(self.indices(batch))
        parts = []
        for i in range(0, n, step):
            s2 = batch.seqs2[i : i + step] if batch.seqs2 is not None else None
            parts.append(self.log_probs(read_indices(batch.seqs[i : i + step], self.k, self.bits, s2)))
        return np.concatenate(parts)

    def calls(self, lp: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        parts = np.split(lp, self.labels.offset[1:-1], axis=1)
        return decide(parts, self.threshold, self.tax.parent)

    def run(self, batch: ReadBatch, x: np.ndarray | None = None) -> tuple[str, np.ndarray]:
        """Output lines and direct counts (``(n_taxa + 1,)``, unclassified last) of a batch."""
        lp = self.batch_log_probs(batch) if x is None else self.log_probs(x)
        rank, index, conf = self.calls(lp)
        flat = self.labels.flat_index(rank, index)
        lab = self.labels.flat
        labs = [lab[j] for j in flat.tolist()]
        confs = list(map("{:.4f}".format, conf.tolist()))
        text = "\n".join(map("\t".join, zip(batch.ids, labs, confs, strict=True))) + "\n"
        return text, np.bincount(flat, minlength=self.n_counts)


# ------------------------------------------------------------------------------ executors
_WORKER: dict[str, Any] = {}


def _init_worker(path: str, device: str, min_confidence: float | None, engine: str = "torch") -> None:
    import torch

    torch.set_num_threads(1)
    _WORKER["clf"] = Classifier.load(path, device, min_confidence, engine)


def _work(batch: ReadBatch) -> tuple[str, np.ndarray]:
    return _WORKER["clf"].run(batch)


def _dask_work(model_payload, min_confidence: float | None, batch: ReadBatch) -> tuple[str, np.ndarray]:
    """A Dask task: classify a batch with the scattered model (built once per worker)."""
    key, engine, meta_json, state = model_payload
    clf = _WORKER.get(key)
    if clf is None:
        meta = json.loads(meta_json)
        if engine == "numpy":
            from biodl.kinds.reads.engine import NumpyKmerBag

            net = NumpyKmerBag(meta, state)
        else:
            import torch

            from biodl.kinds.reads.engine import TorchNet
            from biodl.registry import get_recipe

            model = get_recipe(meta["recipe"]).build(**meta["model_kwargs"])
            model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()})
            if os.environ.get("BIODL_DASK_THREADS"):
                torch.set_num_threads(int(os.environ["BIODL_DASK_THREADS"]))
            net = TorchNet(model, "cpu")
        clf = _WORKER[key] = Classifier(net, meta["data"]["taxonomy"], min_confidence)
    return clf.run(batch)


class _Done:
    """A finished result in the shape of a future."""

    def __init__(self, value) -> None:
        self.value = value

    def result(self):
        return self.value


# --------------------------------------------------------------------------------- report
def kraken_report(counts: np.ndarray, tax: Taxonomy) -> str:
    """A Kraken-style report of direct ``counts`` (``(n_taxa + 1,)``: every rank's taxa, lowest
    rank first, then unclassified): percent of all reads, reads in the clade, reads called at
    the taxon itself, rank code, taxid, name indented by depth."""
    sizes = [len(n) for n in tax.names]
    off = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    R = len(sizes)
    direct = [np.asarray(counts[off[r] : off[r + 1]], np.int64) for r in range(R)]
    clade = [d.copy() for d in direct]
    for r in range(R - 1):
        np.add.at(clade[r + 1], np.asarray(tax.parent[r], np.int64), clade[r])
    unclassified = int(counts[-1])
    total = unclassified + int(clade[R - 1].sum())
    pct = (lambda c: 100.0 * c / total) if total else (lambda c: 0.0)
    lines = [f"{pct(unclassified):6.2f}\t{unclassified}\t{unclassified}\tU\t0\tunclassified"]
    rooted = int(clade[R - 1].sum())
    lines.append(f"{pct(rooted):6.2f}\t{rooted}\t0\tR\t1\troot")
    children: list[dict[int, list[int]]] = [{} for _ in range(R)]
    for r in range(R - 1):
        for i, p in enumerate(tax.parent[r]):
            children[r + 1].setdefault(p, []).append(i)

    def walk(r: int, i: int, depth: int) -> None:
        c = int(clade[r][i])
        if c == 0:
            return
        code = RANK_CODE.get(tax.ranks[r], "-")
        lines.append(
            f"{pct(c):6.2f}\t{c}\t{int(direct[r][i])}\t{code}\t{tax.taxids[r][i]}\t"
            f"{'  ' * depth}{tax.names[r][i]}"
        )
        if r > 0:
            for j in sorted(children[r].get(i, []), key=lambda j: -int(clade[r - 1][j])):
                walk(r - 1, j, depth + 1)

    for i in sorted(range(sizes[R - 1]), key=lambda i: -int(clade[R - 1][i])):
        walk(R - 1, i, 1)
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------- streaming
class _Progress:
    """Reads classified so far and their rate, on standard error (:class:`~biodl.io._util.StatusLine`:
    in place about once a second on a terminal, a whole line at most every ``plain_every``
    seconds elsewhere). :meth:`finish` writes the final line and returns the seconds spent
    classifying, which the summary reports: the clock starts when the executor is ready (a Dask
    cluster started, the model loaded), so start-up and shut-down are not in the rate."""

    def __init__(
        self, show: bool, stream: TextIO | None = None, plain_every: float = 30.0, clock=None
    ) -> None:
        from biodl.io._util import StatusLine

        self.line = StatusLine(show, stream, 1.0, plain_every, clock)
        self.n = 0

    def add(self, n: int) -> None:
        self.n += n
        if self.line.show:
            now = self.line.clock()
            rate = self.n / max(now - self.line.t0, 1e-9)
            self.line.update(f"{self.n:,} reads classified, {rate:,.0f} reads/s", now)

    def finish(self) -> float:
        """Write the final line; the seconds from the start to now."""
        seconds = self.line.clock() - self.line.t0
        took = f"{seconds:,.1f}" if seconds >= 1 else f"{seconds:.2f}"
        self.line.final(
            f"{self.n:,} reads classified in {took} s, {self.n / max(seconds, 1e-9):,.0f} reads/s"
        )
        return seconds

    def end_line(self) -> None:
        """End a line left open on the terminal (an error stops the stream before the final line)."""
        self.line.end_line()


def _all_batches(inputs: list[str], mate2: list[str] | None, batch_size: int) -> Iterator[ReadBatch]:
    if mate2 is not None and len(mate2) != len(inputs):
        raise BiodlInputError(f"{len(inputs)} read file(s) but {len(mate2)} mate file(s)")
    for i, p in enumerate(inputs):
        yield from iter_batches(p, batch_size, mate2[i] if mate2 else None)


def classify(
    model_path: str | Path,
    inputs: Iterable[str | Path],
    *,
    output: str | Path | None = None,
    report: str | Path | None = None,
    mate2: Iterable[str | Path] | None = None,
    batch_size: int = 4096,
    threads: int = 1,
    device: str = "cpu",
    scheduler: str | None = None,
    min_confidence: float | None = None,
    progress: bool = True,
    report_every: float = 60.0,
    stdout: TextIO | None = None,
    engine: str = "auto",
) -> dict[str, Any]:
    """Classify reads as they stream in (see the module docstring).

    Parameters
    ----------
    model_path
        A read model (run directory or ``model.pt``).
    inputs
        FASTQ / FASTA files, plain or gzip; ``-`` is standard input.
    output
        Per-read TSV (``id, taxon, taxid, rank, confidence``), written through a temporary file
        renamed at the end; ``None``: standard output, flushed after every batch.
    report
        Kraken-style report path, written (atomically) when the stream ends; while it runs, the
        counts so far go to ``REPORT.partial`` every ``report_every`` seconds (removed at the end).
    mate2
        Second reads of pairs, one file per input.
    threads
        Workers (1: in-process): threads sharing one model with the numpy engine, processes with
        a model each with the torch engine. With ``scheduler``: workers of a ``local`` cluster.
    scheduler
        Dask scheduler address, or ``local``.
    min_confidence
        Override the model's calibrated confidence threshold (every rank).
    engine
        ``numpy`` (no torch: a read-classifier on the CPU), ``torch``, or ``auto`` (numpy where
        it can run); see :mod:`biodl.kinds.reads.engine`. Dask workers run the CPU engine chosen.

    Returns
    -------
    dict
        ``n`` reads; ``seconds``: the classification itself (from the executor ready to the last
        result written; the progress line's clock) and ``reads_per_s`` over it; ``wall_seconds``:
        the whole call (model loading, a Dask cluster's start and shut-down, the report
        included); ``classified`` (fraction), ``shorter_than_k``, ``k``, ``counts`` array.
    """
    from biodl.io._util import atomic_text_stream, atomic_write_text_by_suffix, check_output_path
    from biodl.kinds.reads.engine import pick_engine
    from biodl.kinds.reads.weights import read_model_file

    wall0 = time.perf_counter()
    inputs = [str(p) for p in inputs]
    m2 = [str(p) for p in mate2] if mate2 else None
    if not inputs:
        raise BiodlInputError("give one or more read files (or - for standard input)")
    if threads < 1:
        raise BiodlInputError(f"--threads must be at least 1, got {threads}")
    if inputs.count("-") > 1 or (m2 and "-" in m2 and "-" in inputs):
        raise BiodlInputError("standard input (-) can be read once only")
    for p in [*inputs, *(m2 or [])]:
        if p != "-":
            from biodl.io._util import check_file

            check_file(p)
    meta = read_model_file(model_path, tensors=False).meta
    if meta.get("kind") != "reads":
        raise BiodlInputError(
            f"is a {meta.get('recipe')} model of kind {meta.get('kind')!r}; biodl reads classify needs a "
            "read classifier",
            path=model_path,
        )
    if scheduler is not None and _on_gpu(device):
        raise BiodlInputError(
            f"--device {device} with --scheduler: the Dask workers classify on their CPUs; "
            "leave out one of them"
        )
    eng = pick_engine(engine, "cpu" if scheduler is not None else device, meta.get("recipe"))
    tax = taxonomy_from_dict(meta["data"]["taxonomy"])
    k = int(meta["data"]["k"])
    if report is not None:
        check_output_path(report)
        if output is not None and Path(report).resolve() == Path(output).resolve():
            raise BiodlInputError("--report and --output name the same file; give two names", path=report)
    with contextlib.ExitStack() as stack:
        if output is not None:  # (gzip-compressed for a .gz name)
            out: TextIO = stack.enter_context(atomic_text_stream(output))
        else:
            out = stdout or sys.stdout
        submit, close = _executor(stack, model_path, device, threads, scheduler, min_confidence, eng)
        prog = _Progress(progress)
        counts = np.zeros(int(sum(len(n) for n in tax.names)) + 1, np.int64)
        window: deque = deque()
        depth = 2 * max(threads, 1) if scheduler is None else 4 * max(threads, 2)
        last_report = time.time()
        # while the stream runs, the report so far goes to REPORT.partial: REPORT itself (an
        # earlier run's, say) is replaced only by the report of the whole stream
        partial = None if report is None else Path(report).with_name(Path(report).name + ".partial")
        too_short = 0
        out.write(HEADER)

        def drain(one: bool) -> None:
            nonlocal last_report
            while window and (not one or len(window) >= depth):
                text, c = window.popleft().result()
                out.write(text)
                out.flush()
                counts[: len(c)] += c
                prog.add(int(c.sum()))
                if report is not None and time.time() - last_report > report_every:
                    atomic_write_text_by_suffix(partial, kraken_report(counts, tax))
                    last_report = time.time()
                if one:
                    break

        try:
            try:
                for batch in _all_batches(inputs, m2, batch_size):
                    too_short += _n_shorter(batch, k)
                    window.append(submit(batch))
                    drain(True)
            except BiodlInputError:
                # a bad record later in the input: the reads before it are written (to standard
                # output; an --output file is not kept) whatever --threads is, then the error
                drain(False)
                raise
            drain(False)
            close()
            seconds = prog.finish()
        except BrokenProcessPool as e:
            raise BiodlError(
                f"a worker process died ({e}); rerun with --threads 1 to see its error"
            ) from None
        finally:
            prog.end_line()
    if report is not None:
        atomic_write_text_by_suffix(report, kraken_report(counts, tax))
        partial.unlink(missing_ok=True)
    n = int(counts.sum())
    return {
        "n": n,
        "seconds": seconds,
        "reads_per_s": n / max(seconds, 1e-9),
        "wall_seconds": time.perf_counter() - wall0,
        "classified": (n - int(counts[-1])) / n if n else 0.0,
        "shorter_than_k": too_short,
        "k": k,
        "counts": counts,
    }


def _n_shorter(batch: ReadBatch, k: int) -> int:
    """Reads (pairs: both mates) without a k-mer: shorter than ``k``, or without ``k`` A/C/G/T in
    a row (all N, IUPAC codes): never classified."""
    return n_without_kmer(batch.seqs, batch.seqs2, k)


def n_without_kmer(seqs, seqs2, k: int) -> int:
    """How many reads (pairs: neither mate) hold no k-mer: no run of ``k`` A/C/G/T."""
    import re

    run = re.compile(rb"[ACGTacgt]{%d}" % int(k))

    def none(s) -> bool:
        return len(s) < k or run.search(s if isinstance(s, bytes) else str(s).encode()) is None

    empty = [none(s) for s in seqs]
    if seqs2 is not None:
        empty = [a and none(s) for a, s in zip(empty, seqs2, strict=True)]
    return sum(empty)


def _executor(
    stack: contextlib.ExitStack,
    model_path,
    device: str,
    threads: int,
    scheduler,
    min_conf,
    engine: str = "torch",
):
    """``(submit(batch) -> future, close())`` for the chosen executor."""
    if scheduler is not None:
        return _dask_executor(stack, model_path, threads, scheduler, min_conf, engine)
    if engine == "numpy":
        # one model, memory-mapped; threads share it (numpy releases the GIL in its heavy calls)
        with contextlib.suppress(ImportError):
            from threadpoolctl import threadpool_limits

            stack.enter_context(threadpool_limits(1))  # BLAS: one thread per worker
        clf = Classifier.load(model_path, device, min_conf, "numpy")
        if threads <= 1:
            return (lambda b: _Done(clf.run(b))), (lambda: None)
        from concurrent.futures import ThreadPoolExecutor

        tpool = stack.enter_context(ThreadPoolExecutor(threads, thread_name_prefix="biodl-classify"))
        return (lambda b: tpool.submit(clf.run, b)), (lambda: None)
    if threads <= 1 or _on_gpu(device):  # one process drives the GPU (cuda:1 too)
        clf = Classifier.load(model_path, device, min_conf, "torch")
        if threads <= 1:
            import torch

            old = torch.get_num_threads()
            torch.set_num_threads(1)
            stack.callback(torch.set_num_threads, old)
            return (lambda b: _Done(clf.run(b))), (lambda: None)
        # GPU: hashing in worker processes, the network here
        from concurrent.futures import ProcessPoolExecutor

        pool = stack.enter_context(ProcessPoolExecutor(threads, mp_context=_mp_context()))

        class _Gpu:
            def __init__(self, b):
                self.b, self.f = b, pool.submit(_hash_only, b, clf.k, clf.bits)

            def result(self):
                return clf.run(self.b, self.f.result())

        return _Gpu, (lambda: None)
    from concurrent.futures import ProcessPoolExecutor

    pool = stack.enter_context(
        ProcessPoolExecutor(
            threads,
            mp_context=_mp_context(),
            initializer=_init_worker,
            initargs=(str(model_path), "cpu", min_conf, "torch"),
        )
    )
    return (lambda b: pool.submit(_work, b)), (lambda: None)


def _hash_only(batch: ReadBatch, k: int, bits: int) -> np.ndarray:
    from biodl.kinds.reads.kmers import read_indices

    return read_indices(batch.seqs, k, bits, batch.seqs2)


def _mp_context():
    import multiprocessing as mp

    return mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")


def _dask_executor(
    stack: contextlib.ExitStack, model_path, threads: int, scheduler: str, min_conf, engine: str
):
    try:
        from distributed import Client, LocalCluster
    except ImportError:  # pragma: no cover - a dependency
        raise BiodlInputError(
            "--scheduler needs dask.distributed (pip install 'dask[distributed]')"
        ) from None
    import hashlib

    from biodl.kinds.reads.weights import read_model_file

    if scheduler == "local":
        import signal

        # the cluster's processes start with Ctrl-C ignored (a disposition kept across exec, and
        # Python then installs no KeyboardInterrupt handler): a Ctrl-C, which the terminal sends
        # to every process of the group, stops biodl once, not with a traceback from each worker
        try:
            was = signal.signal(signal.SIGINT, signal.SIG_IGN)
        except ValueError:  # not the main thread: as it is
            was = None
        try:
            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=max(threads, 1),
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=":0",  # any free port: no warning when 8787 is taken
                    silence_logs=logging.ERROR,
                    env={"BIODL_DASK_THREADS": "1"},
                )
            )
        finally:
            if was is not None:
                signal.signal(signal.SIGINT, was)
        client = stack.enter_context(Client(cluster))
    else:
        try:
            client = stack.enter_context(Client(scheduler, timeout="20s"))
        except (OSError, TimeoutError) as e:
            raise BiodlInputError(f"cannot reach the Dask scheduler at {scheduler!r}: {e}") from None
        except ValueError as e:
            raise BiodlInputError(
                f"--scheduler {scheduler!r} is not a scheduler address ({e}); give tcp://HOST:PORT or 'local'"
            ) from None
    mf = read_model_file(model_path)
    state = {k: np.array(v) for k, v in mf.tensors.items()}  # plain arrays (not memory maps) to ship
    h = hashlib.sha1()
    with open(mf.path, "rb") as fh:
        for blk in iter(lambda: fh.read(1 << 20), b""):
            h.update(blk)
    key = f"{h.hexdigest()}-{engine}"
    model_future = client.scatter([(key, engine, json.dumps(mf.meta), state)], broadcast=True)[0]
    return (
        lambda b: client.submit(_dask_work, model_future, min_conf, b, pure=False),
        lambda: None,
    )


__all__ = ["Classifier", "HEADER", "classify", "decide", "kraken_report"]
