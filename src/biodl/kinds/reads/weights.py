"""Read a biodl ``model.pt`` without torch, and quantise a read model's k-mer table.

``model.pt`` is what ``torch.save`` writes: a zip archive (entries stored, not compressed) with
the pickled payload in ``data.pkl`` and every tensor's bytes in ``data/<key>``. :func:`read_model_file`
unpickles ``data.pkl`` with a whitelist (the two functions and the storage types a state dict
needs; anything else is refused, as ``torch.load(weights_only=True)`` refuses it) and gives every
tensor as a numpy array: small ones read into memory, large ones (the k-mer table) as a read-only
``np.memmap`` of the file, so the table is paged in as reads touch it and is shared by every
thread and process that maps the same file. numpy alone is imported.

Quantisation (:func:`quantize_table`) is post-training and per column (the embedding dimension):
each column's values are mapped to ``2**bits`` evenly spaced levels between a low and a high
clip, chosen per column to minimise the squared error (a grid of clips between the 99th
percentile of ``|w - median|`` and the extreme values). ``bits=8``: one byte per value (64 MiB
for 2^22 x 16); ``bits=4``: two values per byte, column ``2j`` in the low nibble of byte ``j``
and ``2j+1`` in its high nibble (32 MiB). Rows are padded with zero codes to whole 64-bit words
(no padding for 16 columns), which the engines read as such. Row 0 (the padding row) is all
code 0. A value is ``lo[c] + code * step[c]``, so a bag's sum is ``sum(codes) * step + n * lo``:
the table is never dequantised, not even the gathered rows.
"""

from __future__ import annotations

import json
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from biodl.errors import BiodlInputError

#: tensors of at least this many bytes are memory-mapped, smaller ones read
MMAP_BYTES = 1 << 20

_STORAGE_DTYPES = {
    "FloatStorage": "f4",
    "DoubleStorage": "f8",
    "HalfStorage": "f2",
    "LongStorage": "i8",
    "IntStorage": "i4",
    "ShortStorage": "i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}


@dataclass
class _Storage:
    key: str
    dtype: str
    numel: int


@dataclass
class _TensorRef:
    """A tensor of the archive, not read yet."""

    storage: _Storage
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, hooks=None, metadata=None):
    return _TensorRef(storage, int(storage_offset), tuple(size), tuple(stride))


def _ordered_dict():
    return dict


class _Unpickler(pickle.Unpickler):
    """Only what a saved state dict needs; anything else is refused."""

    def find_class(self, module: str, name: str):
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if (module, name) == ("collections", "OrderedDict"):
            import collections

            return collections.OrderedDict
        if module == "torch" and name in _STORAGE_DTYPES:
            return name
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a biodl model file")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        _, kind, key, _location, numel = pid
        if kind not in _STORAGE_DTYPES:
            raise pickle.UnpicklingError(f"storage type {kind!r} is not supported")
        return _Storage(str(key), _STORAGE_DTYPES[kind], int(numel))


@dataclass
class ModelFile:
    """A biodl model file read without torch: ``meta`` (the RunMeta as a dict) and the state
    dict as numpy arrays (large ones memory-mapped, read-only)."""

    path: Path
    format: str
    meta: dict[str, Any]
    tensors: dict[str, np.ndarray] = field(default_factory=dict)


def _resolve(path: str | Path) -> Path:
    p = Path(path)
    if p.is_dir():
        p = p / "model.pt"
    if not p.exists():
        raise BiodlInputError("model file not found (expected a run directory or its model.pt)", path=p)
    from biodl.io._util import note_model

    note_model(p)  # an input of the running command: no output may replace it, nor its run's record
    return p


def read_model_file(path: str | Path, tensors: bool = True, mmap_bytes: int = MMAP_BYTES) -> ModelFile:
    """Read ``model.pt`` (a run directory or the file) without torch.

    Parameters
    ----------
    tensors
        ``False``: the metadata only (no tensor bytes are read).
    mmap_bytes
        Tensors of at least this size are ``np.memmap`` views of the file (read-only).
    """
    p = _resolve(path)
    try:
        with zipfile.ZipFile(p) as z:
            infos = {i.filename.split("/", 1)[-1]: i for i in z.infolist()}
            if "data.pkl" not in infos:
                raise BiodlInputError("not a biodl model file (no data.pkl in the archive)", path=p)
            payload = _Unpickler(z.open(infos["data.pkl"])).load()
            order = z.read(infos["byteorder"]).decode().strip() if "byteorder" in infos else "little"
            offsets = {}
            if tensors:
                with open(p, "rb") as fh:
                    for name, info in infos.items():
                        if not name.startswith("data/"):
                            continue
                        if info.compress_type != zipfile.ZIP_STORED:
                            raise BiodlInputError(f"tensor {name} is compressed in the archive", path=p)
                        fh.seek(info.header_offset)
                        head = fh.read(30)
                        n, m = int.from_bytes(head[26:28], "little"), int.from_bytes(head[28:30], "little")
                        offsets[name[5:]] = (info.header_offset + 30 + n + m, info.file_size)
    except (zipfile.BadZipFile, pickle.UnpicklingError, EOFError, KeyError, ValueError) as e:
        raise BiodlInputError(f"not a biodl model file ({type(e).__name__}: {e})", path=p) from None
    if not isinstance(payload, dict) or not str(payload.get("format", "")).startswith("biodl-model-"):
        raise BiodlInputError("not a biodl model file (no biodl format tag)", path=p)
    try:
        meta = json.loads(payload["meta"])
    except (KeyError, TypeError, ValueError) as e:
        raise BiodlInputError(
            f"the model's description is unreadable ({type(e).__name__}: {e})", path=p
        ) from None
    out = ModelFile(p, str(payload["format"]), meta)
    if not tensors:
        return out
    end = "<" if order == "little" else ">"
    for name, ref in dict(payload.get("state_dict") or {}).items():
        if not isinstance(ref, _TensorRef):
            raise BiodlInputError(f"state dict entry {name!r} is not a tensor", path=p)
        out.tensors[name] = _array(p, ref, offsets, end, mmap_bytes)
    return out


def _array(p: Path, ref: _TensorRef, offsets: dict, end: str, mmap_bytes: int) -> np.ndarray:
    st = ref.storage
    dt = np.dtype(st.dtype if st.dtype in ("?", "u1", "i1") else end + st.dtype)
    start, size = offsets[st.key]
    if size != st.numel * dt.itemsize:
        raise BiodlInputError(
            f"tensor storage {st.key} has {size} bytes, expected {st.numel * dt.itemsize}", path=p
        )
    numel = int(np.prod(ref.shape)) if ref.shape else 1
    contiguous = tuple(int(np.prod(ref.shape[i + 1 :])) for i in range(len(ref.shape))) == ref.stride
    if contiguous and numel * dt.itemsize >= mmap_bytes:
        return np.memmap(p, dt, "r", offset=start + ref.offset * dt.itemsize, shape=ref.shape)
    with open(p, "rb") as fh:
        fh.seek(start)
        base = np.frombuffer(fh.read(size), dt)
    if contiguous:
        return base[ref.offset : ref.offset + numel].reshape(ref.shape).copy()
    strides = tuple(s * dt.itemsize for s in ref.stride)
    return np.lib.stride_tricks.as_strided(base[ref.offset :], ref.shape, strides).copy()


# ---------------------------------------------------------------------------- quantisation
def quantize_table(w: np.ndarray, bits: int, chunk: int = 1 << 20) -> dict[str, np.ndarray]:
    """Per-column affine quantisation of a k-mer table ``w`` ``(rows, dim)`` (row 0 = padding).

    Returns
    -------
    dict
        ``codes`` ``(rows, bytes)`` uint8 (``bits=8``: a code a byte; ``bits=4``: two, the low
        nibble first; ``bytes`` rounded up to whole 64-bit words), ``lo`` and ``step`` ``(dim,)``
        float32: value = ``lo + code * step``.
    """
    if bits not in (4, 8):
        raise BiodlInputError(f"--bits must be 4 or 8, got {bits}")
    rows, dim = w.shape
    levels = 2**bits - 1
    lo = np.zeros(dim, np.float32)
    step = np.zeros(dim, np.float32)
    rng = np.random.default_rng(0)
    sample_rows = rng.choice(np.arange(1, rows), min(rows - 1, 1 << 18), replace=False)
    for c in range(dim):
        col = np.asarray(w[1:, c], np.float32)
        v = np.asarray(w[sample_rows, c], np.float64)
        med = float(np.median(v))
        a_min, a_max = float(col.min()) - med, float(col.max()) - med
        q99 = float(np.quantile(np.abs(v - med), 0.99))
        best = (np.inf, 0.0, 0.0)
        for f in np.linspace(0.0, 1.0, 21):
            l0 = med - (q99 + f * (-a_min - q99)) if -a_min > q99 else med + a_min
            h0 = med + (q99 + f * (a_max - q99)) if a_max > q99 else med + a_max
            s = (h0 - l0) / levels if h0 > l0 else 1.0
            q = np.clip(np.rint((v - l0) / s), 0, levels)
            err = float(((l0 + q * s - v) ** 2).mean())
            if err < best[0]:
                best = (err, l0, s)
        lo[c], step[c] = best[1], best[2]
    width = -(-dim * bits // 64) * 8  # whole 64-bit words a row, read as such when summing
    codes = np.zeros((rows, width), np.uint8)
    used = -(-dim * bits // 8)
    for i in range(0, rows, chunk):
        blk = np.asarray(w[i : i + chunk], np.float32)
        q = np.clip(np.rint((blk - lo) / step), 0, levels).astype(np.uint8)
        if i == 0:
            q[0] = 0
        if bits == 4 and dim % 2:
            q = np.pad(q, ((0, 0), (0, 1)))
        codes[i : i + chunk, :used] = q if bits == 8 else (q[:, 0::2] | (q[:, 1::2] << 4))
    return {"codes": codes, "lo": lo, "step": step}


def unpack_codes(codes: np.ndarray, bits: int) -> np.ndarray:
    """Codes ``(..., 8 * bytes / bits)`` uint8 of packed rows (``bits=4``: two a byte, the low
    nibble first); the codes past the table's width (row padding) are 0."""
    if bits == 8:
        return codes
    out = np.empty((*codes.shape[:-1], codes.shape[-1] * 2), np.uint8)
    out[..., 0::2] = codes & 15
    out[..., 1::2] = codes >> 4
    return out


def dequantize(codes: np.ndarray, lo: np.ndarray, step: np.ndarray, bits: int) -> np.ndarray:
    """Float32 values ``(..., dim)`` of (gathered) rows of codes."""
    return (lo + unpack_codes(codes, bits)[..., : lo.shape[0]] * step).astype(np.float32)


def quantize_model(model_path: str | Path, out: str | Path, bits: int) -> dict[str, Any]:
    """Write a copy of a ``read-classifier`` model whose k-mer table is quantised to ``bits``
    (the rest of the network unchanged, float32). The copy is a model file like any other
    (``biodl reads classify``, ``biodl evaluate``); training continues from float32 models only.

    Returns
    -------
    dict
        ``bits``, ``table_bytes`` (the codes), ``file_bytes``, ``rms_error`` of the table
        (over a sample of rows) and the output path.
    """
    import torch

    from biodl.io._util import check_output_path
    from biodl.train.checkpoint import MODEL_FORMAT, atomic_torch_save

    mf = read_model_file(model_path)  # first: it registers the model as an input, never overwritten
    check_output_path(out)
    from biodl.kinds.reads.io import REFERENCE_FILES

    o = Path(out)
    ref = o.parent.parent if o.parent.name == "taxonomy" else o.parent
    if (ref / "reference.json").is_file() and (o.name in REFERENCE_FILES or ref != o.parent):
        raise BiodlInputError(
            f"is a file of the reference in {ref} (biodl reads build-reference wrote it; training, "
            "sampling and calibration read it); give the model another name or folder",
            path=o,
        )
    if mf.meta.get("kind") != "reads" or mf.meta.get("recipe") != "read-classifier":
        raise BiodlInputError(
            f"is a {mf.meta.get('recipe')} model; biodl reads quantize takes a read-classifier model",
            path=mf.path,
        )
    if int(mf.meta.get("model_kwargs", {}).get("table_bits", 32)) != 32:
        raise BiodlInputError(
            "this model's table is already quantised; quantise the float32 model", path=mf.path
        )
    w = mf.tensors["embed.weight"]
    q = quantize_table(w, bits)
    rows = np.random.default_rng(1).choice(
        np.arange(1, w.shape[0]), min(w.shape[0] - 1, 1 << 16), replace=False
    )
    rows.sort()
    err = dequantize(q["codes"][rows], q["lo"], q["step"], bits) - w[rows]
    state = {k: torch.from_numpy(np.array(v)) for k, v in mf.tensors.items() if k != "embed.weight"}
    state.update({f"embed.{k}": torch.from_numpy(v) for k, v in q.items()})
    meta = dict(mf.meta)
    meta["model_kwargs"] = {**meta.get("model_kwargs", {}), "table_bits": int(bits)}
    meta["data"] = {
        **meta.get("data", {}),
        "table_quantization": {
            "bits": int(bits),
            "from": str(mf.path),
            "table_rms_error": float(np.sqrt((err**2).mean())),
        },
    }
    payload = {"format": MODEL_FORMAT, "meta": json.dumps(meta, default=str), "state_dict": state}
    atomic_torch_save(payload, out)
    return {
        "bits": int(bits),
        "table_bytes": int(q["codes"].nbytes),
        "file_bytes": Path(out).stat().st_size,
        "rms_error": float(np.sqrt((err**2).mean())),
        "table_std": float(np.asarray(w[rows]).std()),
        "out": str(out),
    }


__all__ = ["ModelFile", "dequantize", "quantize_model", "quantize_table", "read_model_file", "unpack_codes"]
