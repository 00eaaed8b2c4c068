"""Variant effect scoring: VCF in, table (and annotated VCF) out.

For each VCF record and each ALT allele, a window of the model's input length is cut from
the genome (pyfaidx, :func:`biodl.io.open_genome`) with the variant's first base at index
``L // 2``; positions beyond the chromosome ends are ``N``. The REF allele is checked
against the genome first: a mismatch is reported (status column, log) and never scored.
The REF and ALT windows are scored as ``biodl predict`` scores sequences: for a model trained
with ``--rc-augment`` (or with ``rc_average``) the outputs (logits) of both strands are averaged,
else the given (genome + ) strand alone. Indels
are scored by substituting the allele and re-filling the window from the right flank (the
window stays anchored at the variant's first base); symbolic, missing (``*``/``.``) and
breakend alleles are refused with a status message. Multi-allelic records give one row per
ALT.

Scores: for binary / multi-label models ``ref`` and ``alt`` are the probabilities ``biodl
predict`` gives the windows (the sigmoid of the output, or of the strands' mean output),
``diff = alt - ref`` and ``log_odds_diff = logit(alt) - logit(ref)`` (DeepSEA's "log fold
change of odds"); for regression models they are the raw outputs and ``log_odds_diff`` is
left empty.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import Dataset

from biodl.encode import one_hot_batch
from biodl.errors import BiodlInputError
from biodl.io._util import FLOAT_FORMAT, atomic_output, check_file, open_text

__all__ = [
    "ScoredVcfWriter",
    "VariantWindow",
    "iter_vcf_variants",
    "read_vcf_variants",
    "score_variants",
    "variant_window_pieces",
    "variant_windows",
    "write_scored_vcf",
]

log = logging.getLogger("biodl.variants")
#: VCF records scored at a time by :func:`run_variants` (their REF and ALT windows in memory).
VARIANT_RECORDS = 10_000
_DNA = set("ACGTN")


@dataclass
class VariantWindow:
    """One (record, ALT) pair: VCF fields, 1-based ``record`` number, the ``status``
    (``ok`` or why it is not scored) and, when ok, the REF and ALT windows."""

    record: int
    chrom: str
    pos: int
    id: str
    ref: str
    alt: str
    status: str = "ok"
    ref_seq: str = ""
    alt_seq: str = ""


def check_vcf(path: str | Path) -> Path:
    """``path`` if it reads as VCF text (plain, gzip or bgzip) with a ``#CHROM`` header line and
    records of at least 8 tab-separated fields with an integer POS and a REF; else one
    :class:`BiodlInputError` naming the file, line and problem (htslib would print a C-level
    message and raise a bare exception, or say only "not valid bcf or vcf")."""
    p = check_file(path)
    if _is_bcf(p):
        return p  # binary BCF: left to htslib
    header = False
    with open_text(p) as fh:
        for lineno, line in enumerate(fh, start=1):
            if lineno == 1 and line.startswith("#") and not line.startswith("##fileformat="):
                raise BiodlInputError(
                    "the first line of a VCF must be '##fileformat=VCFv4.x' (htslib reads no VCF "
                    f"without it), found {line.rstrip()[:60]!r}",
                    path=p,
                    record=1,
                )
            if line.startswith("##"):
                continue
            if line.startswith("#CHROM"):
                header = True
                continue
            if not line.strip():
                continue
            if not header:
                raise BiodlInputError(
                    "a VCF record before the '#CHROM POS ID REF ALT ...' header line (is the header "
                    "missing? VCF needs '##fileformat=VCFv4.x' and '#CHROM' lines)",
                    path=p,
                    record=lineno,
                )
            f = line.rstrip("\r\n").split("\t")
            if len(f) < 8:
                raise BiodlInputError(
                    f"a VCF record needs at least 8 tab-separated fields (CHROM POS ID REF ALT QUAL "
                    f"FILTER INFO), found {len(f)}",
                    path=p,
                    record=lineno,
                )
            if not f[1].isdigit() or int(f[1]) == 0:  # POS 0 is a telomere in VCF 4.3, not a base
                raise BiodlInputError(f"POS must be a positive integer, got {f[1]!r}", path=p, record=lineno)
            if not f[3] or f[3] == ".":
                raise BiodlInputError("empty REF allele", path=p, record=lineno)
    if not header:
        raise BiodlInputError("no '#CHROM' header line: not a VCF file", path=p)
    return p


def _is_bcf(path: Path) -> bool:
    """Whether ``path`` is binary BCF: its magic ``BCF\\2`` read raw, or (as bcftools and htslib
    always write it, even uncompressed: ``-Ou``) after BGZF decompression."""
    import gzip
    import zlib

    with open(path, "rb") as fh:
        head = fh.read(4)
    if head == b"BCF\x02":
        return True
    if head[:2] != b"\x1f\x8b":
        return False
    try:
        with gzip.open(path, "rb") as fh:
            return fh.read(4) == b"BCF\x02"
    except (OSError, EOFError, zlib.error):  # a corrupt gzip file: the text reader says so
        return False


def read_vcf_variants(path: str | Path) -> list[tuple[int, str, int, str, str, list[str]]]:
    """``(record, chrom, pos, id, ref, alts)`` of every VCF record (cyvcf2; plain or bgzip),
    after :func:`check_vcf`."""
    return list(iter_vcf_variants(path))


def iter_vcf_variants(path: str | Path) -> Iterator[tuple[int, str, int, str, str, list[str]]]:
    """:func:`read_vcf_variants` one record at a time (a VCF of any size in constant memory)."""
    from cyvcf2 import VCF

    p = check_vcf(path)
    try:
        vcf = VCF(str(p), lazy=True, threads=1)
    except (OSError, Exception) as e:  # cyvcf2 raises bare Exceptions for unreadable files
        raise BiodlInputError(f"cannot read as VCF ({e})", path=p) from None
    n = 0
    try:
        for v in vcf:
            rec = (n + 1, v.CHROM, int(v.POS), v.ID or ".", v.REF, list(v.ALT))
            n += 1
            yield rec  # (an error of the consumer's is not raised here)
    except Exception as e:  # noqa: BLE001 - htslib's parse errors are bare Exceptions
        raise BiodlInputError(f"cannot parse VCF record {n + 1} ({e})", path=p) from None
    finally:
        vcf.close()


def _fetch(genome, chrom: str, start: int, end: int) -> str:
    """Bases ``[start, end)`` (0-based) of ``chrom``, ``N`` outside the chromosome."""
    n = len(genome[chrom])
    left = "N" * max(0, -start)
    right = "N" * max(0, end - n)
    s, e = max(start, 0), min(end, n)
    mid = str(genome[chrom][s:e]) if e > s else ""
    return left + mid + right


def _chrom_hint(chrom: str, genome) -> str:
    """``", which has 'chr1'..."`` when the genome names ``chrom`` with(out) a ``chr`` prefix."""
    if chrom.lower().startswith("chr"):
        other = [chrom[3:]]
    else:
        other = ["chr" + chrom, "Chr" + chrom]
    if chrom in ("MT", "chrMT", "M", "chrM"):
        other += ["chrM", "MT"]
    for o in other:
        if o != chrom and o in genome:
            return (
                f", which has {o!r}: the VCF and the genome name chromosomes differently; rename the "
                "VCF's (bcftools annotate --rename-chrs) or use a genome with the VCF's names"
            )
    return ""


@contextlib.contextmanager
def _quiet_htslib():
    """Silence htslib's own messages (written to file descriptor 2) in the block: a VCF read a
    second time (to copy it with the scores) would repeat every ``[W::vcf_parse]`` line the
    first read printed."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no usable stderr: nothing to silence
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def variant_windows(vcf: str | Path, genome: str | Path, length: int) -> list[VariantWindow]:
    """Check every VCF record against the genome and cut its REF/ALT windows.

    Parameters
    ----------
    vcf, genome
        VCF file and genome FASTA (plain, bgzip or gzip).
    length
        Window length (the model's input length).

    Returns
    -------
    list of VariantWindow
        One per (record, ALT); ``status`` says why a row is not scored (REF mismatch,
        unknown chromosome, unsupported allele).
    """
    return [w for piece in variant_window_pieces(vcf, genome, length) for w in piece]


def variant_window_pieces(
    vcf: str | Path, genome: str | Path, length: int, records: int | None = None
) -> Iterator[list[VariantWindow]]:
    """:func:`variant_windows` in pieces of the windows of at most ``records`` VCF records
    (all of a record's ALTs in one piece; ``None``: one piece), read as they are needed."""
    from biodl.io.fasta import open_genome

    if length < 1:
        raise BiodlInputError(f"window length must be >= 1, got {length}")
    fa = open_genome(genome)
    half = length // 2
    out: list[VariantWindow] = []
    n_rec = 0
    for rec, chrom, pos, vid, ref, alts in iter_vcf_variants(vcf):
        if records is not None and n_rec == records:
            yield out
            out, n_rec = [], 0
        n_rec += 1
        if not alts:
            alts = ["."]
        for alt in alts:
            w = VariantWindow(rec, chrom, pos, vid, ref, alt)
            out.append(w)
            ref_u, alt_u = ref.upper(), alt.upper()
            if chrom not in fa:
                w.status = f"unknown chromosome {chrom!r} (not in the genome{_chrom_hint(chrom, fa)})"
            elif alt in (".", "*") or alt.startswith("<") or "[" in alt or "]" in alt:
                w.status = f"unsupported ALT {alt!r} (symbolic, missing or breakend alleles are not scored)"
            elif not set(ref_u) <= _DNA or not set(alt_u) <= _DNA:
                w.status = f"unsupported allele characters in REF {ref!r} / ALT {alt!r}"
            elif pos < 1 or pos - 1 + len(ref) > len(fa[chrom]):
                w.status = (
                    f"position {pos} + REF length {len(ref)} is outside {chrom} (length {len(fa[chrom])})"
                )
            else:
                p0 = pos - 1
                genomic = str(fa[chrom][p0 : p0 + len(ref)]).upper()
                if genomic != ref_u:
                    w.status = f"REF mismatch: VCF REF {ref!r} but the genome has {genomic!r}"
                    log.warning(
                        "%s, record %d (%s:%d): VCF REF %r does not match the genome (%r); not scored",
                        vcf,
                        rec,
                        chrom,
                        pos,
                        ref,
                        genomic,
                    )
                    continue
                left = _fetch(fa, chrom, p0 - half, p0)
                right_len = max(length - half - min(len(ref), len(alt)), 0) + abs(len(ref) - len(alt))
                right = _fetch(fa, chrom, p0 + len(ref), p0 + len(ref) + right_len)
                w.ref_seq = (left + ref_u + right)[:length].upper()
                w.alt_seq = (left + alt_u + right)[:length].upper()
                if len(w.ref_seq) != length or len(w.alt_seq) != length:  # pragma: no cover - defensive
                    w.status = "internal error: window of the wrong length"
    yield out


class _AlleleWindows(Dataset):
    """REF and ALT windows of the scorable variants, one-hot per batch: item ``(2, 4, L)``."""

    def __init__(self, ref: list[str], alt: list[str], n_value: float) -> None:
        self.ref, self.alt, self.n_value = ref, alt, n_value

    def __len__(self) -> int:
        return len(self.ref)

    def __getitem__(self, i: int):
        return self.__getitems__([i])[0]

    def __getitems__(self, idx: list[int]):
        # windows of a reference genome: its IUPAC codes (R, Y, ...) are read as N, as genome
        # windows and BED predictions read them (they failed the whole run, naming no record)
        xr = one_hot_batch([self.ref[i] for i in idx], n_value=self.n_value, iupac_as_n=True)
        xa = one_hot_batch([self.alt[i] for i in idx], n_value=self.n_value, iupac_as_n=True)
        x = torch.from_numpy(np.stack([xr, xa], axis=1))
        return [(x[k],) for k in range(len(idx))]


def _both_alleles(model: nn.Module, rc_average: bool):
    """``forward`` for :func:`biodl.train.predict`: ``(k, 2, 4, L)`` REF/ALT windows ->
    ``(k, 2 alleles, outputs)`` raw outputs, all in one pass of the model; with ``rc_average``
    each the mean of the outputs of both strands, as :func:`biodl.train.predict.predict`
    averages them (the raw outputs, before any sigmoid)."""

    def forward(x: torch.Tensor) -> torch.Tensor:
        k = x.shape[0]
        flat = torch.cat([x[:, 0], x[:, 1]])  # refs then alts
        if rc_average:
            y = model(torch.cat([flat, flat.flip(dims=(-2, -1))])).reshape(2, 2 * k, -1)
            y = (y[0] + y[1]) / 2
        else:
            y = model(flat).reshape(2 * k, -1)
        return y.reshape(2, k, -1).permute(1, 0, 2)  # (k, allele, T)

    return forward


def _summarise(y_ref: np.ndarray, y_alt: np.ndarray, probabilities: bool) -> dict[str, np.ndarray]:
    """Scores from ``(n, T)`` raw outputs (logits of a binary / multi-label model)."""
    if probabilities:
        pr = 1 / (1 + np.exp(-y_ref.astype(np.float64)))
        pa = 1 / (1 + np.exp(-y_alt.astype(np.float64)))
        eps = 1e-7
        lo = lambda p: np.log(np.clip(p, eps, 1 - eps)) - np.log1p(-np.clip(p, eps, 1 - eps))  # noqa: E731
        return {"ref": pr, "alt": pa, "diff": pa - pr, "log_odds_diff": lo(pa) - lo(pr)}
    r, a = y_ref.astype(np.float64), y_alt.astype(np.float64)
    return {"ref": r, "alt": a, "diff": a - r, "log_odds_diff": np.full_like(r, np.nan)}


def score_variants(
    model: nn.Module,
    windows: list[VariantWindow],
    *,
    output_names: list[str] | None = None,
    probabilities: bool = True,
    batch_size: int = 128,
    n_value: float = 0.25,
    device: str | torch.device | None = None,
    rc_average: bool = False,
) -> pd.DataFrame:
    """Score REF and ALT windows as ``biodl predict`` would score them.

    Parameters
    ----------
    model
        ``(n, 4, L) -> (n, outputs)``.
    windows
        From :func:`variant_windows`.
    output_names
        Names of the outputs (default ``out0``, ...).
    probabilities
        Outputs are logits of a binary / multi-label model (sigmoid, log-odds difference);
        False for regression outputs.
    batch_size
        Variants per forward pass (each pass holds ``2 * batch_size`` windows, ``4 *
        batch_size`` with ``rc_average``).
    rc_average
        Average the outputs of both strands of each window (before the sigmoid), as
        ``biodl predict`` does for a model trained with ``--rc-augment``
        (:func:`biodl.kinds.sequences.kind.rc_average_for`); else the given strand only.

    Returns
    -------
    pandas.DataFrame
        ``chrom, pos, id, ref, alt, status`` and per output ``<name>_ref, <name>_alt,
        <name>_diff, <name>_log_odds_diff`` (NaN for rows not scored), in VCF order.
    """
    from biodl.train.predict import predict, torch_device

    dev = torch_device(device) if device is not None else next(model.parameters()).device
    ok = [i for i, w in enumerate(windows) if w.status == "ok"]
    stats: dict[str, np.ndarray] | None = None
    if ok:
        ds = _AlleleWindows([windows[i].ref_seq for i in ok], [windows[i].alt_seq for i in ok], n_value)
        # in eval mode, returned as it came (predict)
        y, _ = predict(
            model, ds, batch_size=batch_size, device=str(dev), forward=_both_alleles(model, rc_average)
        )
        stats = _summarise(y[:, 0], y[:, 1], probabilities)  # (n, allele, T)
    n_out = stats["ref"].shape[1] if stats is not None else len(output_names or [])
    if stats is None and not n_out:
        n_out = int(getattr(model, "n_outputs", 1))
    names = output_names or [f"out{j}" for j in range(n_out)]
    if len(names) != n_out:
        raise BiodlInputError(f"{len(names)} output names for a model with {n_out} outputs")
    df = pd.DataFrame(
        {
            "chrom": [w.chrom for w in windows],
            "pos": [w.pos for w in windows],
            "id": [w.id for w in windows],
            "ref": [w.ref for w in windows],
            "alt": [w.alt for w in windows],
            "status": [w.status for w in windows],
        }
    )
    cols = {}
    for key in ("ref", "alt", "diff", "log_odds_diff"):
        full = np.full((len(windows), n_out), np.nan)
        if stats is not None:
            full[ok] = stats[key]
        for j, name in enumerate(names):
            cols[f"{name}_{key}"] = full[:, j]
    ordered = {
        f"{name}_{key}": cols[f"{name}_{key}"]
        for name in names
        for key in ("ref", "alt", "diff", "log_odds_diff")
    }
    return pd.concat([df, pd.DataFrame(ordered)], axis=1)


def _status_code(status: str) -> str:
    """Short VCF-safe code of a status message."""
    for prefix, code in (
        ("ok", "ok"),
        ("REF mismatch", "ref_mismatch"),
        ("unknown chromosome", "unknown_chrom"),
        ("unsupported", "unsupported_allele"),
        ("position", "outside_chrom"),
    ):
        if status.startswith(prefix):
            return code
    return "not_scored"


def write_scored_vcf(
    vcf: str | Path,
    table: pd.DataFrame,
    out: str | Path,
    output_names: list[str],
    strands: str = "both strands averaged",
) -> Path:
    """Copy ``vcf`` to ``out`` with INFO fields from :func:`score_variants`'s table.

    ``BIODL_STATUS`` (per ALT: ``ok`` or the reason, spaces as ``_``), and per ALT and
    output (ALT-major, outputs in ``BIODL_OUTPUTS`` order) ``BIODL_REF``, ``BIODL_ALT``,
    ``BIODL_DIFF``, ``BIODL_LOGODDS``. Written to a temporary file, then renamed; a ``.gz`` / ``.bgz`` name
    is BGZF-compressed (readable by bcftools and tabix), a ``.bcf`` name binary BCF. ``strands``
    says in the header how the scores were made (:func:`~biodl.kinds.sequences.kind.strand_phrase`).
    """
    with ScoredVcfWriter(vcf, out, output_names, strands) as w:
        w.write(table)
    return Path(out)


class ScoredVcfWriter:
    """:func:`write_scored_vcf` a piece of the table at a time: each :meth:`write` copies the
    next VCF records, those the piece's rows belong to (a piece holds whole records, as
    :func:`variant_window_pieces` cuts them). The file takes its name when the ``with`` block
    ends without an error."""

    def __init__(
        self,
        vcf: str | Path,
        out: str | Path,
        output_names: list[str],
        strands: str = "both strands averaged",
    ) -> None:
        self.src, self.out, self.names = check_file(vcf), Path(out), list(output_names)
        self.strands = strands
        _check_vcf_suffix(self.out)

    def __enter__(self) -> ScoredVcfWriter:
        from cyvcf2 import VCF

        stack = contextlib.ExitStack()
        try:
            with _quiet_htslib():  # its warnings were shown on the first read
                self.reader = VCF(str(self.src), threads=1)
        except Exception as e:  # noqa: BLE001 - cyvcf2 raises bare Exceptions for unreadable files
            raise BiodlInputError(f"cannot read as VCF ({e})", path=self.src) from None
        stack.callback(self.reader.close)
        try:
            self._open(stack)
        except BaseException:
            stack.close()
            raise
        self._stack = stack
        return self

    def _open(self, stack: contextlib.ExitStack) -> None:
        from cyvcf2 import Writer

        names = ",".join(self.names)
        self.reader.add_info_to_header(
            {
                "ID": "BIODL_STATUS",
                "Number": "A",
                "Type": "String",
                "Description": "biodl: ok, or why not scored "
                "(ref_mismatch, unknown_chrom, unsupported_allele, outside_chrom)",
            }
        )
        for key, what in (
            ("REF", "REF score"),
            ("ALT", "ALT score"),
            ("DIFF", "ALT - REF"),
            ("LOGODDS", "log-odds ALT - REF"),
        ):
            self.reader.add_info_to_header(
                {
                    "ID": f"BIODL_{key}",
                    "Number": ".",
                    "Type": "Float",
                    "Description": f"biodl {what}, {self.strands}, per ALT then per output ({names})",
                }
            )
        tmp = stack.enter_context(atomic_output(self.out))
        # the temporary name has no suffix to infer the format from: BGZF (bcftools / tabix read it)
        # for a .gz / .bgz name, binary BCF for a .bcf name, else plain VCF text
        # A BCF is written as VCF text first, then converted: cyvcf2 stores an INFO value set as
        # text ("0.1,0.2") as text in a BCF, whatever the header's Type=Float says
        self._bcf = tmp if _bcf_name(self.out) else None
        if self._bcf is not None:
            tmp = Path(f"{tmp}.vcf")
            stack.callback(tmp.unlink, missing_ok=True)
        mode = "wz" if _compressed_name(self.out) else "w"
        with _quiet_htslib():
            self.writer = Writer(str(tmp), self.reader, mode=mode)
        self._text = tmp
        self.records = iter(self.reader)

    def write(self, table: pd.DataFrame) -> None:
        """Copy the records of ``table``'s rows (one row per ALT, in VCF order) with their scores."""
        rows = list(table.itertuples(index=False))
        i = 0
        with _quiet_htslib():
            while i < len(rows):
                v = next(self.records)
                sub = [r._asdict() for r in rows[i : i + len(v.ALT or ["."])]]
                i += len(sub)
                self._annotate(v, sub)
                try:
                    self.writer.write_record(v)
                except Exception as e:  # noqa: BLE001 - cyvcf2 raises a bare Exception with htslib's code
                    raise BiodlInputError(
                        f"record {v.CHROM}:{v.POS}: cannot be copied to the scored VCF "
                        f"({_htslib_problem(str(e))}); the TSV of effects does not need it: leave out "
                        "--out-vcf, or declare it in the VCF header",
                        path=self.src,
                    ) from None

    def _annotate(self, v, sub: list[dict]) -> None:
        v.INFO["BIODL_STATUS"] = ",".join(_status_code(str(r["status"])) for r in sub)
        for key, col in (("REF", "ref"), ("ALT", "alt"), ("DIFF", "diff"), ("LOGODDS", "log_odds_diff")):
            vals = []
            for r in sub:
                for n in self.names:
                    x = r.get(f"{n}_{col}")
                    vals.append("." if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.6g}")
            if any(s != "." for s in vals):
                v.INFO[f"BIODL_{key}"] = ",".join(vals)

    def __exit__(self, exc_type, exc, tb) -> bool:
        with _quiet_htslib():
            self.writer.close()  # before the file is renamed (or removed)
            if exc_type is None and self._bcf is not None:
                self._to_bcf()
        return bool(self._stack.__exit__(exc_type, exc, tb))

    def _to_bcf(self) -> None:
        """The VCF text written, as binary BCF with typed values (read back from the text, each
        INFO value takes its header's type)."""
        from cyvcf2 import VCF, Writer

        text = VCF(str(self._text))
        try:
            out = Writer(str(self._bcf), text, mode="wb")
            try:
                for v in text:
                    out.write_record(v)
            finally:
                out.close()
        finally:
            text.close()


def _compressed_name(path: str | Path) -> bool:
    return Path(path).name.lower().endswith((".gz", ".bgz"))


def _bcf_name(path: str | Path) -> bool:
    return Path(path).name.lower().endswith(".bcf")


def _check_vcf_suffix(path: Path) -> None:
    """Refuse a scored-VCF name whose suffix promises a format biodl does not write there."""
    name = path.name.lower()
    if name.endswith((".bcf.gz", ".bcf.bgz")):
        raise BiodlInputError(
            "a .bcf file is BGZF-compressed already: name it .bcf (binary BCF), or .vcf / .vcf.gz "
            "for VCF text",
            path=path,
        )


#: htslib's bcf1_t.errcode bits (vcf.h).
_BCF_ERR = {
    1: "its contig is not declared in the header (##contig)",
    2: "an INFO or FORMAT key it uses is not declared in the header (##INFO / ##FORMAT)",
    4: "it has the wrong number of columns",
    8: "a value exceeds htslib's limits",
    16: "it has an invalid character",
    32: "its contig name is invalid",
    64: "an INFO or FORMAT key is invalid",
}


def _htslib_problem(msg: str) -> str:
    import re

    m = re.search(r"errorcode:?\s*(\d+)", msg)
    if not m:
        return msg
    code = int(m.group(1))
    what = [t for bit, t in _BCF_ERR.items() if code & bit]
    return "; ".join(what) or f"htslib error code {code}"


def run_variants(
    model_path: str | Path,
    vcf: str | Path,
    genome: str | Path,
    out: str | Path,
    *,
    out_vcf: str | Path | None = None,
    batch_size: int = 128,
    device: str = "cpu",
    window: int | None = None,
    keep: bool = True,
    records: int | None = None,
    progress: bool = False,
    rc_average: bool | None = None,
) -> pd.DataFrame:
    """``biodl variants``: score a VCF with a trained model; writes the TSV (and VCF).

    The windows are scored as ``biodl predict`` scores sequences: both strands averaged for a
    model trained with ``--rc-augment``, else the given strand; ``rc_average`` True / False
    (``--rc-average`` / ``--no-rc-average``) decides instead.

    The VCF is read, scored and written in pieces of ``records`` records (default
    :data:`VARIANT_RECORDS`), so memory stays that of one piece whatever the size of the VCF;
    both files take their names only when all is written. Returns the table (``attrs["alleles"]``:
    its number of rows), or with ``keep=False`` only its rows not scored (what keeps memory so).
    ``progress``: a progress line on standard error.

    ``window``: the length of the REF / ALT windows; by default the model's input length.
    Required for a model trained at variable lengths (e.g. DeepBind on native-length RNA),
    which scores any length; refused when it differs from a fixed-length model's input."""
    from biodl.io._util import check_file, note_input, note_model
    from biodl.kinds.sequences.kind import rc_average_for
    from biodl.pipeline import _run_state
    from biodl.train import load_model

    for what, v in (("--batch-size", batch_size), ("records", records)):
        if v is None and what == "records":
            continue
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise BiodlInputError(f"{what} must be an integer of at least 1, got {v!r}")
    _run_state(model_path, "variants")  # an unfinished run: said (or refused) as predict does
    note_model(model_path)  # no output may replace the model
    # the VCF and the genome are read piece by piece after the outputs are opened: name them as
    # inputs first, so that neither --out nor --out-vcf may write over them
    check_file(vcf)
    check_file(genome)
    for index in (f"{genome}.fai", f"{genome}.gzi", f"{vcf}.tbi", f"{vcf}.csi"):
        if Path(index).is_file():  # the inputs' indexes are inputs too
            note_input(index)
    from biodl.io._util import check_output_path, text_table_sep

    check_output_path(out)  # an input, the model: said as such before its suffix
    sep = text_table_sep(out, "biodl variants --out")
    if out_vcf is not None and Path(out_vcf).resolve() == Path(out).resolve():
        raise BiodlInputError(
            "--out and --out-vcf name the same file; the VCF would replace the table: give two names",
            path=out,
        )
    if out_vcf is not None:
        _check_vcf_suffix(Path(out_vcf))
    model, meta = load_model(model_path, device=device)
    from biodl.kinds.base import require_kind

    require_kind(
        meta, ("sequences", "windows"), "biodl variants", "a DNA-sequence model (kind sequences or windows)"
    )
    length = meta.data.get("seq_len")
    fixed = meta.model_kwargs.get("seq_len") is not None
    if window is not None:
        if int(window) < 1:
            raise BiodlInputError(f"--window must be a positive number of bases, got {window}")
        if fixed and length and int(window) != int(length):
            raise BiodlInputError(
                f"the model takes {length}-bp inputs; --window must be {length} (or left out)",
                path=model_path,
            )
        if length and not 0.5 <= int(window) / int(length) <= 2:
            from biodl.io._util import note

            note(
                f"[biodl] note: --window {window} is far from the length of the model's training "
                f"sequences ({length} bp); a model of {length}-bp sequences may not see one base's "
                "change in a much longer window (max pooling over it), nor score a much shorter one "
                "as it was trained"
            )
        length = int(window)
    if not length:
        raise BiodlInputError(
            "the model was trained at variable lengths and scores any length: give the window "
            "around each variant with --window N (e.g. the length of its training sequences)",
            path=model_path,
        )
    task = meta.task
    if task == "multiclass":
        raise BiodlInputError(
            "variant scoring supports binary, multi-label and regression models, not multiclass"
        )
    names = [
        str(n) for n in meta.label_names or [f"out{j}" for j in range(int(getattr(model, "n_outputs", 1)))]
    ]
    both = rc_average_for(meta, {"rc_average": rc_average})
    kw: dict[str, Any] = dict(
        output_names=names,
        probabilities=task in ("binary", "multilabel"),
        batch_size=batch_size,
        n_value=meta.data.get("n_value", 0.25),
        device=device,
        rc_average=both,
    )
    from biodl.io._util import StatusLine, atomic_output_stream

    kept: list[pd.DataFrame] = []
    n, status = 0, StatusLine(show=progress)
    pieces = variant_window_pieces(vcf, genome, int(length), records=int(records or VARIANT_RECORDS))
    # the first piece before any output is opened: the checks of the VCF (check_vcf) and of the
    # genome are said as problems of those inputs, not as a failed write of an output
    first = next(pieces)
    from biodl.kinds.sequences.kind import strand_phrase

    strands = strand_phrase(meta, both)
    with contextlib.ExitStack() as stack:  # both files take their names when every piece is written
        tsv = stack.enter_context(atomic_output_stream(out))
        scored_vcf = None
        if out_vcf is not None:
            scored_vcf = stack.enter_context(ScoredVcfWriter(vcf, out_vcf, names, strands))
        for windows in itertools.chain([first], pieces):
            table = score_variants(model, windows, **kw)
            text = table.to_csv(sep=sep, index=False, float_format=FLOAT_FORMAT, na_rep="NA", header=not n)
            tsv.write(text.encode("utf-8"))
            if scored_vcf is not None:
                scored_vcf.write(table)
            kept.append(table if keep else table.loc[table["status"] != "ok", list(table.columns[:6])])
            n += len(table)
            status.count("variants", n, "allele(s) scored")
        status.clear()
    out_table = kept[0] if len(kept) == 1 else pd.concat(kept, ignore_index=True)
    out_table.attrs["alleles"] = n
    out_table.attrs["rc_average"] = bool(both)
    out_table.attrs["reverse_complement"] = bool(meta.model_kwargs.get("reverse_complement"))
    return out_table
