"""Report sections of contact models: the predicted top-L contacts against the native map of
each held-out test protein (an image) and the precision table (top-L/5, L/2, L for long- and
medium-range pairs). Reads ``RUN/test/`` (``metrics.json``, ``<id>.rr``, ``<id>.native.npy``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from biodl.kinds.base import read_results
from biodl.report.plots import _new_figure, _save_figure


def plot_contact_map(
    scores: np.ndarray,
    distances: np.ndarray | None,
    path: str | Path,
    title: str = "",
    min_sep: int = 6,
    threshold: float = 8.0,
    top: int | None = None,
) -> Path:
    """Native contacts (grey, lower-left triangle and under the predictions) and the ``top``
    (default ``L``) highest-scoring pairs ``|i - j| >= min_sep`` (upper-right; green: a native
    contact, red: not, blue: unknown) of a ``(L, L)`` score matrix, as a PNG."""
    from biodl.kinds.contacts.scoring import top_pairs

    L = scores.shape[0]
    fig = _new_figure(5.2, 5.0)
    ax = fig.add_subplot(1, 1, 1)
    if distances is not None:
        ci, cj = np.nonzero(np.isfinite(distances) & (distances < threshold))
        sel = np.abs(ci - cj) >= min_sep
        ax.scatter(ci[sel], cj[sel], s=6, c="#c8c8c8", marker="s", linewidths=0, label="native contact")
    i, j = top_pairs(scores, top or L, min_sep)
    if distances is not None:
        d = distances[i, j]
        col = np.where(~np.isfinite(d), "#1f77b4", np.where(d < threshold, "#2ca02c", "#d62728"))
    else:
        col = np.full(len(i), "#1f77b4")
    ax.scatter(j, i, s=9, c=list(col), marker="o", linewidths=0)
    ax.set_xlim(-0.5, L - 0.5)
    ax.set_ylim(L - 0.5, -0.5)
    ax.set_aspect("equal")
    ax.set_xlabel("residue j")
    ax.set_ylabel("residue i")
    ax.set_title(title or f"top-{len(i)} predicted (upper) vs native (lower), L={L}", fontsize=9)
    # one entry per colour drawn, under the map (inside, it sat on the native contacts)
    from matplotlib.lines import Line2D

    handles = ax.get_legend_handles_labels()[0]
    kinds = (("#2ca02c", "a native contact"), ("#d62728", "not a contact"), ("#1f77b4", "no structure"))
    for colour, what in kinds:
        if (col == colour).any():
            handles.append(
                Line2D([], [], ls="", marker="o", ms=4, color=colour, label=f"top-{len(i)} predicted: {what}")
            )
    fig.legend(handles=handles, loc="outside lower center", ncols=2, fontsize=7, frameon=False)
    return _save_figure(fig, path)


def precision_table(per_protein: dict[str, dict]) -> pd.DataFrame:
    """One row per protein (L, Meff, precisions), then their mean."""
    df = pd.DataFrame.from_dict(per_protein, orient="index")
    df.index.name = "protein"
    df = df.reset_index()
    num = [c for c in df.columns if c not in ("protein",)]
    mean = {"protein": "mean", **{c: df[c].mean() for c in num}}
    out = pd.concat([df, pd.DataFrame([mean])], ignore_index=True).round(3)
    for c in ("L", "meff", "n_seqs"):  # counts read as counts (the mean row rounded too)
        if c in out:
            out[c] = out[c].round().astype("Int64")
    return out


def contact_sections(run: Path, meta, max_maps: int = 4) -> list:
    """The contact-map images and the precision table of ``RUN/test`` (a note when the run
    has no test proteins)."""
    from biodl.kinds.contacts.io import read_rr, rr_matrix
    from biodl.report.html import Section

    test = Path(run) / "test"
    result = read_results(test)
    if result is None:
        return [
            Section(
                "Contact maps",
                text="No held-out test proteins in this run (train with --test TABLE or --set "
                "test_fraction=...); score one with "
                "`biodl contacts predict MSA --method pconsc2 --model RUN --pdb PDB`.",
            )
        ]
    per = result.get("per_protein", {})
    images = []
    thr = float(meta.data.get("threshold", 8.0))
    sep = int(meta.data.get("min_sep", 6))
    for pid in list(per)[:max_maps]:
        rr, nat = test / f"{pid}.rr", test / f"{pid}.native.npy"
        if not rr.exists():
            continue
        seq, df = read_rr(rr)
        L = len(seq) if seq else int(df[["i", "j"]].max().max())
        dist = np.load(nat) if nat.exists() else None
        png = plot_contact_map(
            rr_matrix(df, L, rr),
            dist,
            test / f"{pid}.map.png",
            title=f"{pid}: top-L vs native",
            min_sep=sep,
            threshold=thr,
        )
        images.append(
            (
                png,
                f"{pid} (L={L}): top-L predicted pairs (upper right; green = native contact) "
                "over the native map (grey)",
            )
        )
    sections = [
        Section(
            "Contact precision (test proteins)",
            text=f"Top-L/k precision, CB-CB < {thr:g} A; long range |i-j| >= 24, medium 12-23.",
            table=precision_table(per) if per else None,
        )
    ]
    if images:
        sections.append(Section("Contact maps", images=images))
    return sections
