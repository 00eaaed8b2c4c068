"""The released DeepBind models (DeepBind v0.11 database) in biodl's torch :class:`DeepBind`.

The original ``deepbind`` executable (Alipanahi et al., Nat Biotech 2015; v0.11, BSD-3) reads
one text file of parameters per model. This module parses those files, copies the weights
into :class:`biodl.models.sequence.deepbind.DeepBind` with the right memory layout and reproduces the
tool's scores, including its way of scanning long sequences:

* ``detectors`` is stored position-major, then base, then detector (the detector index is
  fastest): coefficient ``(detector k, position j, base b)`` is at ``k + D * (b + 4 * j)``.
  ``thresholds`` are added to the convolution (a bias) before the rectification.
* Each scored sequence is padded with ``detector_len - 1`` ``N`` on both sides (an ``N``
  contributes 0.25 of each base's coefficient) and every detector is max-pooled (and, with
  ``has_avg_pooling``, average-pooled over all ``len + detector_len - 1`` positions; features
  interleaved ``max_1, avg_1, max_2, ...``).
* ``weights1`` is ``(n_pooled, n_hidden)`` row-major. Without hidden units (``num_hidden =
  0``) it is the linear output layer; with them the hidden layer is rectified and followed by
  ``weights2``/``biases2``.
* A sequence longer than the window size (``--window-size``, default ``int(1.5 *
  detector_len)``) is scored as every window of that length, each padded with ``N`` on its
  own, and the best window kept. Models with ``reverse_complement = 1`` also score the
  reverse complement and keep the larger score.

The kundajelab/DeepBindToKeras variant pads each window with the neighbouring sequence
instead of ``N`` (``window_context=True`` here); it changes the scores of sequences longer
than the window only. Not reproduced: the tool's ``--average`` flag and its limit of 1,000
bases per sequence (any length is scored here).

The 927 parameter files are bundled in ``biodl/resources/deepbind/params.zip`` as byte-
shuffled float32 (lossless: every number in the files is the ``%.9e`` rendering of a float32,
which is also what the tool computes with, and :meth:`ReleasedParams.to_text` regenerates the
original files byte for byte; their SHA-256 sums are in the archive).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import struct
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from biodl.encode import one_hot_batch
from biodl.errors import BiodlInputError
from biodl.models.sequence.deepbind import DeepBind

__all__ = [
    "ReleasedParams",
    "build_bundle",
    "bundled_ids",
    "bundled_params",
    "load_released",
    "model_from_params",
    "parse_params",
    "read_db",
    "released_auc_on_file",
    "score",
    "score_fasta",
]

_ID_RE = re.compile(r"D\d{5}\.\d{3}")
_HEADER_RE = re.compile(r"#\s*deepbind\s+(\d+)\.(\d+)\s*")
_INT_KEYS = ("reverse_complement", "num_detectors", "detector_len", "has_avg_pooling", "num_hidden")
_ARRAY_KEYS = ("detectors", "thresholds", "weights1", "biases1", "weights2", "biases2")
_BUNDLE_MAGIC = b"DBF1"
_BUNDLE_HEADER = struct.Struct("<4s5H")


@dataclass(frozen=True, eq=False)
class ReleasedParams:
    """The parameters of one released DeepBind model, as stored in its file.

    Attributes
    ----------
    model_id
        ``D#####.###`` if known (from the file name or the bundle), else ``None``.
    reverse_complement, num_detectors, detector_len, has_avg_pooling, num_hidden
        The header fields of the file.
    detectors
        ``(num_detectors * detector_len * 4,)`` float32 in file order: index
        ``k + num_detectors * (base + 4 * position)``. See :meth:`conv_weight`.
    thresholds
        ``(num_detectors,)`` float32, added to each detector's response.
    weights1
        ``(n_pooled * n_out1,)`` float32, row-major ``(n_pooled, n_out1)`` where ``n_pooled``
        is ``num_detectors`` (x 2 with average pooling) and ``n_out1`` is ``num_hidden or 1``.
    biases1
        ``(n_out1,)`` float32.
    weights2
        ``(num_hidden,)`` float32 (empty without hidden units).
    biases2
        ``(1,)`` float32 (empty without hidden units).
    source
        Where the parameters were read from.
    """

    model_id: str | None
    reverse_complement: bool
    num_detectors: int
    detector_len: int
    has_avg_pooling: bool
    num_hidden: int
    detectors: np.ndarray
    thresholds: np.ndarray
    weights1: np.ndarray
    biases1: np.ndarray
    weights2: np.ndarray
    biases2: np.ndarray
    source: str = ""

    @property
    def n_pooled(self) -> int:
        """Number of pooled features (inputs of the first fully connected layer)."""
        return self.num_detectors * (2 if self.has_avg_pooling else 1)

    @property
    def n_out1(self) -> int:
        """Outputs of the first fully connected layer (``num_hidden``, or 1 without hidden units)."""
        return self.num_hidden if self.num_hidden else 1

    def conv_weight(self) -> np.ndarray:
        """Detectors as a ``Conv1d`` weight.

        Returns
        -------
        np.ndarray
            ``(num_detectors, 4, detector_len)`` float32, channels ``A, C, G, T``.
        """
        d, m = self.num_detectors, self.detector_len
        return np.ascontiguousarray(self.detectors.reshape(m, 4, d).transpose(2, 1, 0))

    def to_text(self, newline: str = "\r\n") -> str:
        """Render the parameters in the original file format.

        The released files use CRLF line ends and ``%.9e`` numbers; with the default
        ``newline`` the output is byte-identical to them.
        """
        lines = ["# deepbind 0.1"]
        lines += [f"{k} = {int(getattr(self, k))}" for k in _INT_KEYS]
        for k in _ARRAY_KEYS:
            values = getattr(self, k).astype(np.float64)
            lines.append(f"{k} = " + ",".join(f"{v:.9e}" for v in values))
        return newline.join(lines) + newline

    def _array(self) -> np.ndarray:
        return np.concatenate([getattr(self, k) for k in _ARRAY_KEYS]).astype("<f4")


def _expected_counts(num_detectors: int, detector_len: int, has_avg: bool, num_hidden: int) -> dict[str, int]:
    n_pooled = num_detectors * (2 if has_avg else 1)
    n_out1 = num_hidden if num_hidden else 1
    return {
        "detectors": num_detectors * detector_len * 4,
        "thresholds": num_detectors,
        "weights1": n_pooled * n_out1,
        "biases1": n_out1,
        "weights2": num_hidden,
        "biases2": 1 if num_hidden else 0,
    }


def _count_note(key: str, ints: dict[str, int]) -> str:
    d, m, h = ints["num_detectors"], ints["detector_len"], ints["num_hidden"]
    pooled = f"num_detectors {d}" + (" x 2 (average pooling)" if ints["has_avg_pooling"] else "")
    return {
        "detectors": f"num_detectors {d} x detector_len {m} x 4",
        "thresholds": f"num_detectors {d}",
        "weights1": f"{pooled} x " + (f"num_hidden {h}" if h else "1 output"),
        "biases1": f"num_hidden {h}" if h else "1 output, no hidden layer",
        "weights2": f"num_hidden {h}",
        "biases2": "1 output" if h else "none without a hidden layer",
    }[key]


def _parse_numbers(value: str, key: str, path: str, lineno: int) -> np.ndarray:
    value = value.strip()
    if not value:
        return np.zeros(0, dtype=np.float32)
    tokens = value.split(",")
    try:
        arr = np.asarray(tokens, dtype=np.float64)
    except ValueError:
        for i, tok in enumerate(tokens):
            try:
                float(tok)
            except ValueError:
                raise BiodlInputError(
                    f"{key}: number {i + 1} is not a number: {tok.strip()!r}", path=path, record=lineno
                ) from None
        raise
    if not np.isfinite(arr).all():
        i = int(np.argmax(~np.isfinite(arr)))
        raise BiodlInputError(
            f"{key}: number {i + 1} is not finite: {tokens[i].strip()!r}", path=path, record=lineno
        )
    return arr.astype(np.float32)


def _parse_lines(lines: list[str], path: str, model_id: str | None) -> ReleasedParams:
    # (line number, text) of the non-blank lines.
    content = [(i, s.strip()) for i, s in enumerate(lines, start=1) if s.strip()]
    if not content:
        raise BiodlInputError("empty parameter file", path=path)
    lineno, first = content[0]
    m = _HEADER_RE.fullmatch(first)
    if not m:
        raise BiodlInputError(
            f"expected the first line to be '# deepbind 0.1', found {first[:60]!r}", path=path, record=lineno
        )
    if (int(m.group(1)), int(m.group(2))) != (0, 1):
        raise BiodlInputError(
            f"parameter file is for deepbind {m.group(1)}.{m.group(2)}, not 0.1", path=path, record=lineno
        )
    keys = _INT_KEYS + _ARRAY_KEYS
    ints: dict[str, int] = {}
    arrays: dict[str, np.ndarray] = {}
    pos = 1
    for key in keys:
        if pos >= len(content):
            last = content[-1][0]
            raise BiodlInputError(
                f"missing '{key} = ...' (the file ends after line {last})", path=path, record=last + 1
            )
        lineno, text = content[pos]
        pos += 1
        name, eq, value = text.partition("=")
        name = name.strip()
        if not eq:
            raise BiodlInputError(f"expected '{key} = ...', found {text[:60]!r}", path=path, record=lineno)
        if name != key:
            what = "missing" if name in keys else "expected"
            raise BiodlInputError(
                f"{what} '{key} = ...' here, found '{name} = ...'"
                + (" (keys must come in the order of the original format)" if name in keys else ""),
                path=path,
                record=lineno,
            )
        if key in _INT_KEYS:
            try:
                v = int(value.strip())
            except ValueError:
                raise BiodlInputError(
                    f"{key} must be an integer, found {value.strip()!r}", path=path, record=lineno
                ) from None
            if key in ("reverse_complement", "has_avg_pooling") and v not in (0, 1):
                raise BiodlInputError(f"{key} must be 0 or 1, found {v}", path=path, record=lineno)
            if key in ("num_detectors", "detector_len") and v < 1:
                raise BiodlInputError(f"{key} must be >= 1, found {v}", path=path, record=lineno)
            if key == "num_hidden" and v < 0:
                raise BiodlInputError(f"{key} must be >= 0, found {v}", path=path, record=lineno)
            ints[key] = v
        else:
            counts = _expected_counts(
                ints["num_detectors"], ints["detector_len"], bool(ints["has_avg_pooling"]), ints["num_hidden"]
            )
            arr = _parse_numbers(value, key, path, lineno)
            if arr.size != counts[key]:
                raise BiodlInputError(
                    f"{key} has {arr.size} numbers, expected {counts[key]} ({_count_note(key, ints)})",
                    path=path,
                    record=lineno,
                )
            arrays[key] = arr
    if pos < len(content):
        lineno, text = content[pos]
        raise BiodlInputError(f"unexpected text after biases2: {text[:60]!r}", path=path, record=lineno)
    return ReleasedParams(
        model_id=model_id,
        reverse_complement=bool(ints["reverse_complement"]),
        num_detectors=ints["num_detectors"],
        detector_len=ints["detector_len"],
        has_avg_pooling=bool(ints["has_avg_pooling"]),
        num_hidden=ints["num_hidden"],
        source=path,
        **arrays,
    )


def parse_params(path: str | Path) -> ReleasedParams:
    """Read a DeepBind v0.11 parameter file (``deepbind_db/params/<ID>.txt``).

    The format is the one the original ``deepbind`` executable reads: a ``# deepbind 0.1``
    line, then ``reverse_complement``, ``num_detectors``, ``detector_len``,
    ``has_avg_pooling``, ``num_hidden`` (integers) and ``detectors``, ``thresholds``,
    ``weights1``, ``biases1``, ``weights2``, ``biases2`` (comma-separated numbers), each as
    ``key = value`` on its own line in this order. Blank lines and CRLF line ends are
    accepted.

    Parameters
    ----------
    path
        The parameter file. Its name gives the model ID when it is ``D#####.###.txt``.

    Returns
    -------
    ReleasedParams
        Arrays as float32 (the precision the original tool computes in).

    Raises
    ------
    BiodlInputError
        Missing file; a missing, misplaced or malformed key; a count of numbers that does not
        match the header; a non-numeric or non-finite number. The file and line are named.
    """
    p = Path(path)
    if not p.is_file():
        raise BiodlInputError("parameter file not found" if not p.exists() else "not a file", path=p)
    try:
        text = p.read_bytes().decode("ascii")
    except UnicodeDecodeError as e:
        line = p.read_bytes()[: e.start].count(b"\n") + 1
        raise BiodlInputError("non-ASCII byte in parameter file", path=p, record=line) from None
    stem = p.name[:-4] if p.name.endswith(".txt") else p.stem
    return _parse_lines(text.splitlines(), str(p), stem if _ID_RE.fullmatch(stem) else None)


# ----------------------------------------------------------------------------- bundle


def _resource(name: str):
    return resources.files("biodl").joinpath("resources").joinpath("deepbind").joinpath(name)


def _open_bundle() -> zipfile.ZipFile:
    """Open the bundled archive (only its directory is read; members are read on demand)."""
    res = _resource("params.zip")
    if not res.is_file():
        raise BiodlInputError(
            "the bundled DeepBind parameters are missing from the installation", path=str(res)
        )
    if isinstance(res, Path):
        return zipfile.ZipFile(res)
    return zipfile.ZipFile(io.BytesIO(res.read_bytes()))  # e.g. installed inside a zip


@lru_cache(maxsize=1)
def _bundled_names() -> frozenset[str]:
    with _open_bundle() as zf:
        return frozenset(n[:-4] for n in zf.namelist() if n.endswith(".f32"))


def bundled_ids() -> list[str]:
    """IDs of the 927 released models bundled with biodl, sorted."""
    return sorted(_bundled_names())


def _decode_member(data: bytes, model_id: str, source: str) -> ReleasedParams:
    magic, rc, nd, dl, avg, nh = _BUNDLE_HEADER.unpack_from(data)
    if magic != _BUNDLE_MAGIC:
        raise BiodlInputError("not a DeepBind bundle member", path=source, record=model_id)
    body = np.frombuffer(data, dtype=np.uint8, offset=_BUNDLE_HEADER.size)
    counts = _expected_counts(nd, dl, bool(avg), nh)
    n = sum(counts.values())
    if body.size != 4 * n:
        raise BiodlInputError(
            f"corrupt bundle member ({body.size} bytes, expected {4 * n})", path=source, record=model_id
        )
    values = np.ascontiguousarray(body.reshape(4, n).T).view("<f4").ravel().astype(np.float32)
    arrays, start = {}, 0
    for k in _ARRAY_KEYS:
        arrays[k] = values[start : start + counts[k]].copy()
        start += counts[k]
    return ReleasedParams(model_id, bool(rc), nd, dl, bool(avg), nh, source=source, **arrays)


def _encode_member(params: ReleasedParams) -> bytes:
    header = _BUNDLE_HEADER.pack(
        _BUNDLE_MAGIC,
        int(params.reverse_complement),
        params.num_detectors,
        params.detector_len,
        int(params.has_avg_pooling),
        params.num_hidden,
    )
    # Byte planes (all first bytes, all second bytes, ...) compress better than interleaved floats.
    return header + params._array().view(np.uint8).reshape(-1, 4).T.tobytes()


def bundled_params(model_id: str) -> ReleasedParams:
    """Parameters of a bundled released model.

    Raises
    ------
    BiodlInputError
        If ``model_id`` is malformed or not one of the 927 bundled models.
    """
    model_id = _check_id(model_id)
    if model_id not in _bundled_names():
        raise BiodlInputError(
            f"unknown DeepBind model {model_id!r}: not among the {len(_bundled_names())} bundled v0.11 "
            "models (`biodl deepbind list` shows them)"
        )
    with _open_bundle() as zf:
        data = zf.read(f"{model_id}.f32")
    return _decode_member(data, model_id, f"biodl:resources/deepbind/params.zip:{model_id}")


def _check_id(model_id: str) -> str:
    model_id = str(model_id).strip()
    if not _ID_RE.fullmatch(model_id):
        raise BiodlInputError(f"invalid DeepBind model ID {model_id!r}: should be of the form D#####.###")
    return model_id


def build_bundle(params_dir: str | Path, db_tsv: str | Path, out_dir: str | Path) -> dict[str, int]:
    """Pack released parameter files and the index into biodl's bundled form.

    Writes ``params.zip`` (one LZMA-compressed member ``<ID>.f32`` per model: a small
    header and the float32 parameters as byte planes, plus ``SHA256SUMS`` of the original
    text files) and ``db.tsv.gz``. Every model is checked to regenerate its original file
    byte for byte before it is packed.

    Returns
    -------
    dict
        Sizes in bytes of the written files.
    """
    params_dir, out_dir = Path(params_dir), Path(out_dir)
    files = sorted(params_dir.glob("D*.txt"))
    if not files:
        raise BiodlInputError("no D#####.###.txt parameter files", path=params_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sums = []
    with zipfile.ZipFile(out_dir / "params.zip", "w") as zf:
        for f in files:
            params = parse_params(f)
            raw = f.read_bytes()
            if params.to_text().encode("ascii") != raw:
                raise BiodlInputError("does not round-trip through float32 exactly; not packed", path=f)
            info = zipfile.ZipInfo(f"{params.model_id}.f32", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_LZMA
            zf.writestr(info, _encode_member(params))
            sums.append(f"{hashlib.sha256(raw).hexdigest()}  {f.name}\n")
        info = zipfile.ZipInfo("SHA256SUMS", date_time=(1980, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        zf.writestr(info, "".join(sums))
    with (
        open(out_dir / "db.tsv.gz", "wb") as fh,
        gzip.GzipFile(filename="db.tsv", mode="wb", fileobj=fh, compresslevel=9, mtime=0) as gz,
    ):
        gz.write(Path(db_tsv).read_bytes())
    return {name: (out_dir / name).stat().st_size for name in ("params.zip", "db.tsv.gz")}


def read_db(db_tsv: str | Path | None = None, only_bundled: bool = False) -> pd.DataFrame:
    """The index of released models (``db.tsv`` of the DeepBind v0.11 database).

    The index lists 2,622 models; parameters were released (and are bundled) for 927 of them.

    Parameters
    ----------
    db_tsv
        An index file (plain or gzip); default: the bundled copy.
    only_bundled
        Keep only the models whose parameters are bundled with biodl.

    Returns
    -------
    pandas.DataFrame
        One row per model; columns ``ID, Protein, Type, Species, Family, Class, Experiment,
        Experiment Details, Model, Cite, Labels, Path, Comment`` as strings (empty fields are
        ``""``).
    """
    if db_tsv is None:
        raw = gzip.decompress(_resource("db.tsv.gz").read_bytes())
        source = "biodl:resources/deepbind/db.tsv.gz"
    else:
        p = Path(db_tsv)
        if not p.is_file():
            raise BiodlInputError("index file not found", path=p)
        raw = p.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        source = str(p)
    lines = raw.decode("utf-8", errors="replace").splitlines()
    body = [s for s in lines if not s.startswith("#") and s.strip()]
    if not body or not body[0].startswith("ID\t"):
        raise BiodlInputError(
            "expected a header line starting with 'ID<tab>' after the comments", path=source
        )
    df = pd.read_csv(io.StringIO("\n".join(body)), sep="\t", dtype=str, keep_default_na=False, quoting=3)
    if only_bundled:
        df = df[df["ID"].isin(_bundled_names())].reset_index(drop=True)
    return df


# ----------------------------------------------------------------------------- models


def model_from_params(
    params: ReleasedParams, window_size: int | None = None, window_context: bool = False
) -> DeepBind:
    """Build an eval-mode :class:`DeepBind` holding ``params``.

    Parameters
    ----------
    params
        Parsed parameters.
    window_size
        ``None``: the original tool's default, ``int(1.5 * detector_len)``; ``0``: score
        whole sequences at once; ``n``: as ``deepbind --window-size n``.
    window_context
        Pad windows with the neighbouring sequence (the kundajelab/DeepBindToKeras variant)
        instead of ``N``.

    Returns
    -------
    DeepBind
        float32, ``dropout=0``, in eval mode; its ``released_id`` attribute is the model ID.
    """
    if window_size is None:
        window_size = int(params.detector_len * 1.5)
    if window_size < 0:
        raise BiodlInputError(f"window_size must be >= 0, not {window_size}")
    model = DeepBind(
        n_outputs=1,
        num_motifs=params.num_detectors,
        motif_len=params.detector_len,
        pool="maxavg" if params.has_avg_pooling else "max",
        hidden=params.num_hidden,
        dropout=0.0,
        reverse_complement=params.reverse_complement,
        pad_value=0.25,
        window_size=window_size,
        window_context=window_context,
    )
    w1 = params.weights1.reshape(params.n_pooled, params.n_out1).T  # (out, in)
    with torch.no_grad():
        model.conv.weight.copy_(torch.from_numpy(params.conv_weight()))
        model.conv.bias.copy_(torch.from_numpy(params.thresholds))
        first = model.hidden if model.hidden is not None else model.out
        first.weight.copy_(torch.from_numpy(np.ascontiguousarray(w1)))
        first.bias.copy_(torch.from_numpy(params.biases1))
        if model.hidden is not None:
            model.out.weight.copy_(torch.from_numpy(params.weights2.reshape(1, -1)))
            model.out.bias.copy_(torch.from_numpy(params.biases2))
    model.released_id = params.model_id
    return model.eval()


def _load_params(model_id_or_path: str | Path, params_dir: str | Path | None) -> ReleasedParams:
    s = str(model_id_or_path)
    if (
        isinstance(model_id_or_path, Path)
        or s.endswith(".txt")
        or (not _ID_RE.fullmatch(s.strip()) and Path(s).exists())
    ):
        return parse_params(model_id_or_path)
    model_id = _check_id(s)
    if params_dir is not None:
        p = Path(params_dir) / f"{model_id}.txt"
        if not p.is_file():
            raise BiodlInputError(f"no parameter file for model {model_id}", path=p)
        return parse_params(p)
    return bundled_params(model_id)


def load_released(
    model_id_or_path: str | Path,
    params_dir: str | Path | None = None,
    window_size: int | None = None,
    window_context: bool = False,
) -> DeepBind:
    """Load a released DeepBind model into torch.

    Parameters
    ----------
    model_id_or_path
        A model ID (``D00328.003``) or the path of a parameter file.
    params_dir
        Directory of ``<ID>.txt`` parameter files to read IDs from instead of the bundled
        copy of the v0.11 database.
    window_size, window_context
        See :func:`model_from_params`; the defaults reproduce ``deepbind`` v0.11.

    Returns
    -------
    DeepBind
        In eval mode. Input ``(batch, 4, length)`` one-hot ``A, C, G, T`` (``N`` = 0.25),
        output ``(batch, 1)`` scores on the tool's scale.
    """
    return model_from_params(_load_params(model_id_or_path, params_dir), window_size, window_context)


def _check_sequences(seqs: Sequence[str], names: Sequence[str | int] | None, path: str | None) -> None:
    valid = np.zeros(256, dtype=bool)
    valid[np.frombuffer(b"ACGTUNacgtun", dtype=np.uint8)] = True
    for i, s in enumerate(seqs):
        name = names[i] if names is not None else None
        where = {"path": path, "record": name} if name is not None else {"path": path}
        prefix = "" if name is not None else f"sequence {i + 1}: "
        if not s:
            raise BiodlInputError(prefix + "empty sequence", **where)
        buf = np.frombuffer(s.encode("ascii", errors="replace"), dtype=np.uint8)
        ok = valid[buf]
        if not ok.all():
            pos = int(np.argmax(~ok))
            raise BiodlInputError(
                prefix + f"invalid character {s[pos]!r} at position {pos + 1} "
                "(allowed: A, C, G, T, U, N in either case)",
                **where,
            )


def _score_model(model: DeepBind, seqs: Sequence[str], max_positions: int = 32_768) -> np.ndarray:
    # chunks of ~32k positions stay in cache; a million positions (a 64-100 MB input per
    # chunk) spent most of the CPU in page faults (bench/deepbind_score.py: 2.5x sequences per
    # CPU-second); scores change only by float32 rounding of the GEMM blocking (< 1e-6)
    out = np.empty(len(seqs), dtype=np.float64)
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    m, w = model.motif_len, model.window_size
    with torch.inference_mode():
        for length in np.unique(lengths):
            idx = np.flatnonzero(lengths == length)
            if w > 0 and length > w:
                cost = (length - w + 1) * (w + m - 1)
            else:
                cost = length + m - 1
            rows = max(1, max_positions // int(cost))
            for start in range(0, idx.size, rows):
                chunk = idx[start : start + rows]
                x = torch.from_numpy(one_hot_batch([seqs[i] for i in chunk], n_value=0.25))
                out[chunk] = model(x)[:, 0].double().numpy()
    return out


def score(
    model_ids: str | Path | DeepBind | Iterable[str | Path | DeepBind],
    sequences: str | Sequence[str],
    params_dir: str | Path | None = None,
    window_size: int | None = None,
    window_context: bool = False,
) -> np.ndarray:
    """Score sequences with released models, as ``deepbind <ids> < <sequences>`` does.

    Parameters
    ----------
    model_ids
        One or more model IDs, parameter-file paths or loaded :class:`DeepBind` models.
    sequences
        One or more DNA/RNA sequences (``ACGTUN``, any case, any lengths).
    params_dir, window_size, window_context
        See :func:`load_released`.

    Returns
    -------
    np.ndarray
        ``(n_sequences, n_models)`` float64 scores (rows are sequences, columns models, the
        layout of the tool's output).

    Raises
    ------
    BiodlInputError
        Unknown model, malformed parameter file, or an empty/invalid sequence.
    """
    if isinstance(model_ids, str | Path | DeepBind):
        model_ids = [model_ids]
    if isinstance(sequences, str):
        sequences = [sequences]
    sequences = list(sequences)
    _check_sequences(sequences, None, None)
    models = [
        m if isinstance(m, DeepBind) else load_released(m, params_dir, window_size, window_context)
        for m in model_ids
    ]
    result = np.empty((len(sequences), len(models)), dtype=np.float64)
    for j, model in enumerate(models):
        result[:, j] = _score_model(model, sequences)
    return result


def score_fasta(
    model_id: str | Path,
    fasta_path: str | Path,
    params_dir: str | Path | None = None,
    window_size: int | None = None,
    window_context: bool = False,
) -> pd.DataFrame:
    """Score every record of a FASTA file (plain or gzip) with one released model.

    Returns
    -------
    pandas.DataFrame
        Columns ``id`` (first word of each header) and ``score``, in file order.

    Raises
    ------
    BiodlInputError
        Unknown model, missing/malformed FASTA, or an invalid sequence (record named).
    """
    from biodl.errors import BiodlInputError
    from biodl.io.fasta import IUPAC_HINT, read_fasta

    try:
        records = read_fasta(fasta_path)
    except BiodlInputError as e:  # a released model cannot be trained again: say what works here
        if IUPAC_HINT not in e.problem:
            raise
        problem = e.problem.replace(
            IUPAC_HINT,
            ": an IUPAC ambiguity code; the released models read A, C, G, T (U) and N: write it as N "
            "(e.g. sed '/^>/!s/[RYSWKMBDHVryswkmbdhv]/N/g')",
        )
        raise BiodlInputError(problem, e.path, e.record) from None
    model = load_released(model_id, params_dir, window_size, window_context)
    seqs = [r.sequence for r in records]
    return pd.DataFrame({"id": [r.name for r in records], "score": _score_model(model, seqs)})


def released_auc_on_file(
    model_id: str | Path,
    seq_file: str | Path,
    params_dir: str | Path | None = None,
    window_size: int | None = None,
    window_context: bool = False,
) -> float:
    """ROC AUC of a released model on a labelled DeepBind ENCODE sequence file.

    Parameters
    ----------
    model_id
        Model ID or parameter file.
    seq_file
        Tab-separated (plain or gzip) with a header including ``seq`` and ``Bound`` (0/1),
        e.g. the ``*_B.seq.gz`` held-out files of the DeepBind ChIP-seq benchmark.

    Returns
    -------
    float
        Area under the ROC curve of the model's scores for ``Bound``.
    """
    from sklearn.metrics import roc_auc_score

    p = Path(seq_file)
    if not p.is_file():
        raise BiodlInputError("sequence file not found", path=p)
    from biodl.io._util import input_errors, open_text, unshift_columns

    try:  # plain or gzip by the file's bytes, as every reader
        with input_errors(p), open_text(p) as fh:
            df = unshift_columns(pd.read_csv(fh, sep="\t", dtype={"seq": str}), p)
    except (ValueError, OSError, pd.errors.ParserError) as e:
        raise BiodlInputError(f"cannot read as a tab-separated table: {e}", path=p) from None
    for col in ("seq", "Bound"):
        if col not in df.columns:
            raise BiodlInputError(f"no {col!r} column (columns: {', '.join(map(str, df.columns))})", path=p)
    labels = pd.to_numeric(df["Bound"], errors="coerce")
    if labels.isna().any() or not labels.isin([0, 1]).all():
        bad = int(np.argmax(labels.isna().to_numpy() | ~labels.isin([0, 1]).to_numpy()))
        raise BiodlInputError(
            f"Bound must be 0 or 1, found {df['Bound'].iloc[bad]!r}", path=p, record=bad + 2
        )
    if labels.nunique() < 2:
        raise BiodlInputError("need both bound (1) and unbound (0) sequences for an AUC", path=p)
    seqs = df["seq"].fillna("").astype(str).tolist()
    _check_sequences(seqs, list(range(2, len(seqs) + 2)), str(p))
    model = load_released(model_id, params_dir, window_size, window_context)
    return float(roc_auc_score(labels.to_numpy().astype(int), _score_model(model, seqs)))
