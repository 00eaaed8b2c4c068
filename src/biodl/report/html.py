"""Self-contained HTML reports: one file, inline CSS, images embedded as base64 data URIs.

A report is a title and a list of :class:`Section` objects; each section has a heading and,
in this order, optional paragraphs, an optional metric table and optional images. The page
needs no JavaScript and no external assets, so it keeps working when moved, mailed or
opened offline.

Examples
--------
>>> from biodl.report import Section, write_html_report
>>> write_html_report(
...     "report.html",
...     "DeepBind on CTCF",
...     [
...         Section("Test metrics", text="Held-out chromosome 8.", table={"auroc": 0.93, "auprc": 0.71}),
...         Section("Curves", images=["roc.png", ("pr.png", "Precision-recall")]),
...     ],
... )  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import math
import numbers
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from biodl.errors import BiodlInputError
from biodl.report.plots import write_bytes_atomic

__all__ = ["ImageSpec", "Section", "TableLike", "format_value", "render_html_report", "write_html_report"]

TableLike = pd.DataFrame | Mapping[str, Any]
"""A table: a DataFrame, ``{metric: value}``, ``{row: {column: value}}`` or ``{column: [values]}``."""

ImageSpec = str | os.PathLike | tuple[str | os.PathLike, str]
"""An image: a path, or ``(path, caption)``."""


@dataclass
class Section:
    """One section of an HTML report.

    Parameters
    ----------
    title
        Section heading.
    text
        Paragraphs: a string (blank lines separate paragraphs) or a list of strings. Plain
        text; it is HTML-escaped.
    table
        A metric table: a :class:`pandas.DataFrame`, a flat ``{metric: value}`` dict (shown
        as two columns ``metric``, ``value``), a ``{row: {column: value}}`` dict (one row
        per key, e.g. one per model), or a ``{column: [values]}`` dict.
    images
        Image files (PNG, JPEG, GIF or SVG), each a path or a ``(path, caption)`` pair;
        they are read when the report is written and embedded as data URIs.
    """

    title: str
    text: str | Sequence[str] | None = None
    table: TableLike | None = None
    images: Sequence[ImageSpec] = field(default_factory=list)


_CSS = """
:root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --head: #f6f8fa; --accent: #0969da; }
* { box-sizing: border-box; }
body { margin: 0; padding: 2rem 1rem 3rem; color: var(--fg); background: #fff;
       font: 15px/1.5 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; }
main { max-width: 1100px; margin: 0 auto; }
h1 { font-size: 1.7rem; margin: 0 0 .2rem; overflow-wrap: anywhere; }
h2 { font-size: 1.25rem; margin: 2.2rem 0 .6rem; padding-bottom: .3rem;
     border-bottom: 1px solid var(--line); }
p { margin: .5rem 0; max-width: 80ch; overflow-wrap: anywhere; }
.meta { color: var(--muted); font-size: .85rem; margin-bottom: 1rem; }
nav ol { margin: .3rem 0 0; padding-left: 1.4rem; columns: 2; }
nav a { color: var(--accent); text-decoration: none; }
nav a:hover { text-decoration: underline; }
.table-wrap { overflow: auto; max-height: 34rem; margin: .8rem 0; border: 1px solid var(--line);
              border-radius: 6px; display: inline-block; max-width: 100%; }
table { border-collapse: collapse; font-size: .9rem; }
th, td { padding: .35rem .8rem; border-bottom: 1px solid var(--line); text-align: left; white-space: nowrap; }
td.long { white-space: normal; overflow-wrap: anywhere; min-width: 20ch; max-width: 60ch; }
thead th { position: sticky; top: 0; background: var(--head); }
tbody tr:nth-child(even) { background: #fbfcfd; }
tbody tr:last-child td, tbody tr:last-child th { border-bottom: none; }
td.num { text-align: right; font-variant-numeric: tabular-nums; font-family: ui-monospace, Menlo, monospace; }
.figures { display: flex; flex-wrap: wrap; gap: 1rem; margin: .8rem 0; }
figure { margin: 0; max-width: 100%; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 4px; }
figcaption { color: var(--muted); font-size: .85rem; margin-top: .2rem; }
footer { margin-top: 3rem; color: var(--muted); font-size: .8rem; }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0);
      white-space: nowrap; }
@media print {
  body { padding: 0; }
  nav { display: none; }
  .table-wrap { max-height: none; overflow: visible; display: block; border: none; }
  thead th { position: static; }
  th, td { white-space: normal; }
  figure, tr { break-inside: avoid; }
  h2 { break-after: avoid; }
}
""".strip()

_MIME_BY_SUFFIX = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".svg": "image/svg+xml",
}


def format_value(value: Any) -> str:
    """Format one table cell as text.

    Floats get 4 decimals (``0.9123``), or scientific notation with 3 when very large or
    small (``1.235e+06``, ``2.000e-05``); integers and booleans are shown as they are;
    ``None`` and NaN become an em dash.

    Parameters
    ----------
    value
        Any scalar.

    Returns
    -------
    str
        Plain (not yet HTML-escaped) text.
    """
    if value is None or value is pd.NA:
        return "\u2014"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        x = float(value)
        if math.isnan(x):
            return "\u2014"
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        if x != 0 and (abs(x) >= 1e6 or abs(x) < 1e-3):
            return f"{x:.3e}"
        return f"{x:.4f}"
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Number) and not isinstance(value, (bool, np.bool_))


def _to_dataframe(table: TableLike) -> pd.DataFrame:
    """Normalise a :data:`TableLike` to a DataFrame whose index is shown iff it is meaningful."""
    if isinstance(table, pd.DataFrame):
        return table
    if isinstance(table, pd.Series):
        return table.rename("value").rename_axis("metric").to_frame()
    if not isinstance(table, Mapping):
        raise BiodlInputError(f"a section table must be a DataFrame or a dict, got {type(table).__name__}")
    values = list(table.values())
    if values and all(isinstance(v, Mapping) for v in values):
        return pd.DataFrame.from_dict(dict(table), orient="index")
    if values and all(np.ndim(v) >= 1 for v in values):
        return pd.DataFrame(dict(table))  # {column: [values]}
    # {metric: value}; a list among the values (layer sizes, say) is one cell, its items joined
    # (object dtype keeps integers as integers next to floats)
    cells = [", ".join(format_value(x) for x in np.ravel(v)) if np.ndim(v) else v for v in values]
    return pd.DataFrame({"metric": [str(k) for k in table], "value": pd.Series(cells, dtype=object)})


def _table_html(table: TableLike, caption: str = "") -> str:
    df = _to_dataframe(table)
    # an index is shown when it names the rows; an unnamed integer one is row positions left over
    # from a sort or a head() (shown as a stray column without a header)
    show_index = df.index.name is not None or not pd.api.types.is_integer_dtype(df.index)
    esc = html.escape
    head = []
    if show_index:
        head.append(f'<th scope="col">{esc(str(df.index.name or ""))}</th>')
    head += [f'<th scope="col">{esc(str(c))}</th>' for c in df.columns]
    rows = []
    for idx, row in zip(df.index, df.itertuples(index=False, name=None), strict=True):
        cells = [f'<th scope="row">{esc(format_value(idx))}</th>'] if show_index else []
        for v in row:
            # a long text (40 thresholds joined, a path) wraps instead of pushing the numbers out of view
            cls = ' class="num"' if _is_number(v) else (' class="long"' if len(format_value(v)) > 60 else "")
            cells.append(f"<td{cls}>{esc(format_value(v))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    # the caption (the section's title, shown above as its heading) names the table to a screen reader
    cap = f'<caption class="sr">{esc(caption)}</caption>' if caption else ""
    return (
        f'<div class="table-wrap"><table>{cap}\n<thead><tr>'
        + "".join(head)
        + "</tr></thead>\n<tbody>\n"
        + "\n".join(rows)
        + "\n</tbody></table></div>"
    )


def _image_mime(path: Path, data: bytes) -> str:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    head = data[:512].lstrip().lower()
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in data[:4096].lower()):
        return "image/svg+xml"
    if path.suffix.lower() in _MIME_BY_SUFFIX:
        raise BiodlInputError(f"file content is not a valid {path.suffix} image", path=path)
    raise BiodlInputError("unsupported image type (use PNG, JPEG, GIF or SVG)", path=path)


#: What the report's figures without a caption show, by file stem (their alt text: a screen
#: reader said "roc", "learning_curves").
_FIGURES = {
    "roc": "ROC curves of the held-out test set",
    "pr": "Precision-recall curves of the held-out test set",
    "scatter": "Predicted against true values of the held-out test set",
    "pred_vs_true": "Predicted against true values of the held-out test set",
    "learning_curves": "Learning curves: loss and metrics per epoch",
    "filters": "First-layer filters as sequence logos",
    "feature_weights": "Weights of the input features",
    "path": "Validation metric against the number of features along the penalty path",
    "abundance": "Reads per taxon: called and true counts",
    "example_matrix": "An encoded window: site distances and haplotypes",
    "gene_weights": "Distribution of the gene weights per node",
    "methylation_test": "Accuracy of the held-out test set by distance",
}


def _described(stem: str) -> str:
    """The alt text of a figure file without a caption."""
    if stem in _FIGURES:
        return _FIGURES[stem]
    if stem.startswith("confusion"):
        return "Confusion matrix (" + (stem.removeprefix("confusion").strip("_") or "held-out test") + ")"
    if stem.startswith("learning_curves"):
        return "Learning curves (" + stem.removeprefix("learning_curves").strip("_") + ")"
    return stem.replace("_", " ")


def _figure_html(spec: ImageSpec) -> str:
    if isinstance(spec, tuple):
        if len(spec) != 2:
            raise BiodlInputError(
                f"an image must be a path or a (path, caption) pair, got a {len(spec)}-tuple"
            )
        path, caption = Path(spec[0]), str(spec[1])
    else:
        path, caption = Path(spec), None
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BiodlInputError(f"cannot read image: {exc.strerror or exc}", path=path) from exc
    uri = f"data:{_image_mime(path, data)};base64," + base64.b64encode(data).decode("ascii")
    alt = html.escape(caption if caption else _described(path.stem), quote=True)
    cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="{uri}" alt="{alt}">{cap}</figure>'


def _paragraphs(text: str | Sequence[str]) -> list[str]:
    chunks = re.split(r"\n\s*\n", text) if isinstance(text, str) else [str(t) for t in text]
    return [f"<p>{html.escape(c.strip())}</p>" for c in chunks if c.strip()]


def _slug(title: str, i: int) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return f"s{i + 1}-{base}" if base else f"s{i + 1}"


def render_html_report(
    title: str, sections: Sequence[Section], *, subtitle: str | None = None, timestamp: bool = True
) -> str:
    """Render a report to an HTML string (see :func:`write_html_report`)."""
    for s in sections:
        if not isinstance(s, Section):
            raise BiodlInputError(f"report sections must be Section objects, got {type(s).__name__}")
    from biodl import __version__

    esc = html.escape
    meta = f"Generated by biodl {__version__}"
    if timestamp:
        meta += " on " + _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z").strip()
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta name="generator" content="biodl {esc(__version__)}">',
        f"<title>{esc(title)}</title>",
        f"<style>\n{_CSS}\n</style>",
        "</head>",
        "<body>",
        "<main>",
        f"<h1>{esc(title)}</h1>",
    ]
    if subtitle:
        parts.append(f"<p>{esc(subtitle)}</p>")
    parts.append(f'<div class="meta">{esc(meta)}</div>')
    slugs = [_slug(s.title, i) for i, s in enumerate(sections)]
    if len(sections) > 2:
        items = "".join(
            f'<li><a href="#{sl}">{esc(s.title)}</a></li>' for sl, s in zip(slugs, sections, strict=True)
        )
        parts.append(f"<nav><strong>Contents</strong><ol>{items}</ol></nav>")
    for sl, s in zip(slugs, sections, strict=True):
        parts.append(f'<section id="{sl}">')
        parts.append(f"<h2>{esc(s.title)}</h2>")
        if s.text is not None:
            parts.extend(_paragraphs(s.text))
        if s.table is not None and len(_to_dataframe(s.table)):  # no header row without rows
            parts.append(_table_html(s.table, s.title))
        if s.images:
            images = [s.images] if isinstance(s.images, (str, os.PathLike, tuple)) else list(s.images)
            parts.append('<div class="figures">' + "".join(_figure_html(im) for im in images) + "</div>")
        parts.append("</section>")
    parts += [f"<footer>{esc(meta)}</footer>", "</main>", "</body>", "</html>", ""]
    return "\n".join(parts)


def write_html_report(
    path: str | os.PathLike,
    title: str,
    sections: Sequence[Section],
    *,
    subtitle: str | None = None,
    timestamp: bool = True,
) -> Path:
    """Write a self-contained HTML report.

    Parameters
    ----------
    path
        Output ``.html`` file; written atomically (temporary file + :func:`os.replace`),
        parent directories are created.
    title
        Page title and top heading.
    sections
        The report body, in order; see :class:`Section`. With more than two sections a
        table of contents is added.
    subtitle
        An optional line under the title (e.g. the command that produced the report).
    timestamp
        Include the generation date and time (turn off for byte-reproducible output).

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    BiodlInputError
        If an image cannot be read or is not a PNG/JPEG/GIF/SVG, or a table is malformed.
    """
    page = render_html_report(title, sections, subtitle=subtitle, timestamp=timestamp)
    return write_bytes_atomic(path, page.encode("utf-8"))
