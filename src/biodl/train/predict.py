"""The one inference loop (batching, devices, both-strand averaging) and device helpers.

Every kind scores through :func:`predict` (datasets) or :func:`predict_tensor` (tensors already
in memory, e.g. the one-hot sequences of a report); nothing else loops over batches.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from biodl.errors import BiodlError, BiodlInputError


def accelerator_for(device: str) -> str:
    """Lightning's accelerator name for ``--device`` (``cpu``, ``cuda``/``gpu``, ``auto``, ``mps``);
    a device this machine does not have is refused (:func:`torch_device`)."""
    d = torch_device(device)
    if device.lower() == "auto":
        return "auto"
    return "gpu" if d.type == "cuda" else d.type


def torch_device(device: str) -> torch.device:
    """The ``torch.device`` for ``--device`` (``cpu``, ``cuda``/``gpu``, ``cuda:N``, ``mps``;
    ``auto``: CUDA when available). A device this machine does not have, or any other name, is
    one clear :class:`BiodlInputError`, so a command refuses it before doing any work."""
    d = str(device).strip().lower()
    if d == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if d == "gpu":
        d = "cuda"
    try:
        dev = torch.device(d)
    except RuntimeError:
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda", "mps"):
        raise BiodlInputError(f"unknown device {device!r} (use cpu, cuda, cuda:N, mps or auto)")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise BiodlInputError(f"--device {device} was asked for, but no CUDA GPU is available here")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise BiodlInputError(
                f"--device {device}: this machine has {torch.cuda.device_count()} CUDA GPU(s), "
                f"numbered 0-{torch.cuda.device_count() - 1}"
            )
    if dev.type == "mps" and not (torch.backends.mps.is_built() and torch.backends.mps.is_available()):
        raise BiodlInputError(f"--device {device} was asked for, but no Apple MPS GPU is available here")
    if dev.type == "cpu" and dev.index not in (None, 0):
        raise BiodlInputError(f"unknown device {device!r} (use cpu, cuda, cuda:N, mps or auto)")
    return dev


@contextlib.contextmanager
def cpu_threads(n: int | None) -> Iterator[None]:
    """Temporarily set torch's intra-op CPU threads (restored afterwards); ``None`` leaves
    the setting alone. Models of many small operations (molecular graphs) can run several
    times faster on one thread than on several that spend their time synchronising."""
    if not n:
        yield
        return
    # the setting is the process's: calls overlapping in threads (a web service, joblib) share
    # one saved value, put back when the last of them ends (each restoring its own left the
    # process on 1 thread when they ended out of order); a call nested in one thread gives the
    # outer call's value back
    stack = _THREADS_HERE.__dict__.setdefault("stack", [])
    with _THREADS_LOCK:
        if not stack:
            if _THREADS["users"] == 0:
                _THREADS["saved"] = torch.get_num_threads()
            _THREADS["users"] += 1
        stack.append(int(n))
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        with _THREADS_LOCK:
            stack.pop()
            if stack:
                torch.set_num_threads(stack[-1])
            else:
                _THREADS["users"] -= 1
                if _THREADS["users"] == 0:
                    torch.set_num_threads(_THREADS["saved"])


_THREADS_LOCK = threading.Lock()
_THREADS = {"users": 0, "saved": 0}
_THREADS_HERE = threading.local()


_SCORED: contextvars.ContextVar[Callable[[int], None] | None] = contextvars.ContextVar(
    "biodl_scored", default=None
)


@contextlib.contextmanager
def scoring_progress(callback: Callable[[int], None]) -> Iterator[None]:
    """Within the block, :func:`predict` calls ``callback(k)`` after each batch of ``k``
    items: a command shows progress over scoring done deep inside a kind (``evaluate``)."""
    token = _SCORED.set(callback)
    try:
        yield
    finally:
        _SCORED.reset(token)


def _n_outputs(model: nn.Module) -> int:
    return int(getattr(model, "n_outputs", 0) or 0)


@torch.inference_mode()  # no autograd bookkeeping at all (no_grad still counts versions and views)
def predict(
    model: nn.Module,
    dataset: Dataset,
    *,
    batch_size: int = 256,
    device: str = "cpu",
    collate_fn=None,
    rc_average: bool = False,
    forward: Callable | None = None,
    threads: int | None = None,
    progress: bool = False,
    allow_empty: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Outputs of ``model`` over a dataset, in dataset order.

    Parameters
    ----------
    model
        The network (in eval mode on ``device`` while scoring; returned where and as it came).
    dataset
        Items ``(x, y)`` (or ``(x,)``); ``x`` anything ``collate_fn`` batches into something
        with ``.to(device)``.
    rc_average
        Average each output with the output for the reverse complement (one-hot ``A, C, G, T``
        flipped on both the channel and the position axis).
    forward
        Called instead of ``model(x)`` (e.g. ``model.infer`` to undo a target scaling).
    threads
        torch CPU threads while predicting on the CPU (see :func:`cpu_threads`).
    allow_empty
        An empty dataset gives ``(0, n_outputs)`` outputs instead of an error.

    Returns
    -------
    (outputs, targets)
        ``(n, n_outputs)`` and ``(n, n_labels)`` float32 arrays (``(n, 0)`` without targets).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise BiodlInputError(f"--batch-size must be an integer of at least 1, got {batch_size!r}")
    dev = torch_device(device)
    fn = forward or model
    from biodl.train.batches import BatchCollate

    # its own generator: a DataLoader draws a seed from torch's global one otherwise
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        collate_fn=BatchCollate(collate_fn),
        generator=torch.Generator(),
    )
    it = loader
    if progress:
        from rich.progress import track

        it = track(loader, description="predicting", total=len(loader))
    # The outputs (and targets) go into arrays allocated once for the whole set: a list of
    # small per-batch tensors kept alive between the large, freed batch inputs can leave glibc's
    # heap unable to reuse or return that memory (resident memory grew by up to 16 bytes per
    # input base over 200,000 sequences of 1 kb in some runs, not in others).
    out, y = Rows(), Rows()
    total = len(dataset) if hasattr(dataset, "__len__") else 0
    scored = _SCORED.get()
    # a model the caller holds on the CPU is not left on the GPU (its .numpy() would fail)
    # ... and is returned in the mode it came in (eval for the scoring)
    with cpu_threads(threads if dev.type == "cpu" else None), moved_to(model, dev), eval_mode(model):
        for batch in it:
            x = batch[0] if isinstance(batch, (list, tuple)) else batch
            # a tuple input (e.g. CpG neighbours + DNA) moves part by part
            x = type(x)(v.to(dev) for v in x) if isinstance(x, (list, tuple)) else x.to(dev)
            y_hat = fn(x)
            if rc_average:
                y_hat = (y_hat + fn(x.flip(dims=(-2, -1)))) / 2
            n = out.add(y_hat.float().cpu(), total)
            if scored is not None:
                scored(n)
            if isinstance(batch, (list, tuple)) and len(batch) > 1 and torch.is_tensor(batch[1]):
                t = batch[1].float()
                y.add(t.reshape(t.shape[0], -1), total)
    if not out.n:
        if allow_empty:
            return np.zeros((0, _n_outputs(model)), np.float32), np.zeros((0, 0), np.float32)
        raise BiodlError("nothing to predict: the input is empty")
    outs = out.array()
    return outs, (y.array() if y.n else np.zeros((len(outs), 0), np.float32))


@contextlib.contextmanager
def eval_mode(model: nn.Module):
    """``model`` in eval mode for the block, then every submodule back in the mode it was in
    (a training model, or one with a frozen batch norm inside, is returned as it came)."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, training in modes:
            m.training = training


@contextlib.contextmanager
def moved_to(model: nn.Module, dev: torch.device):
    """``model`` on ``dev`` for the block, then back on the device it was on (a caller's CPU
    model scored on a GPU stays a CPU model)."""
    p = next(model.parameters(), None)
    home = p.device if p is not None else dev
    model.to(dev)
    try:
        yield model
    finally:
        if home != dev:
            model.to(home)


class Rows:
    """Batches ``(k, ...)`` copied, in order, into one float32 array of ``total`` rows allocated
    at the first batch (grown if more rows come than ``total`` said)."""

    def __init__(self) -> None:
        self.buf: np.ndarray | None = None
        self.n = 0

    def add(self, t: torch.Tensor, total: int) -> int:
        """Append the batch ``t`` (``(k, ...)``, float32 on the CPU); returns ``k``."""
        a = t.numpy()
        k = len(a)
        if self.buf is None:
            self.buf = np.empty((max(total, k), *a.shape[1:]), np.float32)
        elif self.n + k > len(self.buf):
            more = max(self.n + k, 2 * len(self.buf)) - len(self.buf)
            self.buf = np.concatenate([self.buf, np.empty((more, *a.shape[1:]), np.float32)])
        self.buf[self.n : self.n + k] = a
        self.n += k
        return k

    def array(self) -> np.ndarray:
        assert self.buf is not None
        return self.buf if self.n == len(self.buf) else self.buf[: self.n].copy()


def predict_tensor(
    model: nn.Module,
    X: torch.Tensor,
    *,
    batch_size: int = 256,
    device: str | None = None,
    rc_average: bool = False,
) -> torch.Tensor:
    """:func:`predict` over a tensor ``X (n, ...)`` already in memory; returns ``(n, n_outputs)``
    on the CPU (``device``: default the model's)."""
    if device is None:
        p = next(model.parameters(), None)
        device = str(p.device) if p is not None else "cpu"
    out, _ = predict(
        model, TensorDataset(X), batch_size=batch_size, device=device, rc_average=rc_average, allow_empty=True
    )
    return torch.from_numpy(out)
