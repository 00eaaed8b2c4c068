"""The report of a training run: ``biodl report RUN_DIR``.

One self-contained HTML page (images embedded as data URIs) plus its PNGs in the run
directory: run overview, held-out test metrics with ROC / PR curves, learning curves,
first-layer filter logos with their best JASPAR (Tomtom) matches, an ISM heat map with
ISM and integrated-gradients logos for the top-scoring test sequences, and the variant
table when the run directory holds one (``variants.tsv``, as written by ``biodl variants``).
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from biodl.errors import BiodlError, BiodlInputError
from biodl.interpret.motifs import write_meme as _write_meme
from biodl.train.engine import load_model

__all__ = ["plot_ism", "write_meme", "write_run_report"]

log = logging.getLogger("biodl.report")
_VARIANT_ROWS = 50


def write_meme(path: Path, pwms: np.ndarray, n_sites: np.ndarray) -> None:
    """Write filter PWMs in MEME format (kept for callers of the old location)."""
    _write_meme(path, pwms, n_sites)


def _logo_frame(values: np.ndarray) -> pd.DataFrame:
    df = pd.DataFrame(np.asarray(values, dtype=float).T, columns=list("ACGT"))
    df.index = np.arange(1, len(df) + 1)
    return df


def plot_ism(
    effects: np.ndarray,
    X: np.ndarray,
    path: str | Path,
    *,
    attributions: np.ndarray | None = None,
    attribution_name: str = "integrated gradients",
    title: str = "",
    dpi: int = 100,
) -> Path:
    """ISM heat map of one sequence, with ISM and attribution logos underneath.

    Parameters
    ----------
    effects
        ``(L, 4)`` output change of each substitution (alt minus reference; 0 at the
        reference base).
    X
        ``(4, L)`` one-hot of the sequence.
    path
        Output PNG.
    attributions
        ``(4, L)`` attributions drawn as a third panel (e.g. integrated gradients x input).
    title
        Figure title.

    Returns
    -------
    Path
        The PNG written (atomically).
    """
    import io

    import logomaker
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from biodl.report.plots import write_bytes_atomic

    E = np.asarray(effects, dtype=float).T  # (4, L)
    L = E.shape[1]
    rows = 3 if attributions is not None else 2
    fig = Figure(figsize=(min(max(8.0, L * 0.09), 18.0), 1.6 + 1.5 * rows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 1, sharex=True, height_ratios=[1.2] + [1.0] * (rows - 1))
    lim = float(np.abs(E).max()) or 1.0
    im = axes[0].imshow(
        E,
        aspect="auto",
        cmap="RdBu_r",
        vmin=-lim,
        vmax=lim,
        extent=(0.5, L + 0.5, 3.5, -0.5),
        interpolation="nearest",
    )
    ref = np.asarray(X).argmax(0)
    known = np.asarray(X).max(0) == 1
    axes[0].scatter(np.arange(1, L + 1)[known], ref[known], s=3, c="k", marker=".", linewidths=0)
    axes[0].set_yticks(range(4), list("ACGT"))
    axes[0].set_ylabel("substitution")
    axes[0].set_title("ISM: output change per substitution (dots: reference base)", fontsize=9)
    fig.colorbar(im, ax=axes[0], fraction=0.02, pad=0.01)
    centred = E - E.mean(0, keepdims=True)
    panels = [(axes[1], centred * np.asarray(X), "ISM (mean-centred, observed base)")]
    if attributions is not None:
        panels.append((axes[2], np.asarray(attributions, dtype=float), attribution_name))
    for ax, vals, name in panels:
        logomaker.Logo(_logo_frame(vals), ax=ax, color_scheme="classic", font_name="DejaVu Sans")
        ax.axhline(0, color="0.6", lw=0.5)
        ax.set_ylabel(name.split(" (")[0], fontsize=8)
        ax.set_title(name, fontsize=9)
    axes[-1].set_xlabel("position")
    if title:
        fig.suptitle(title, fontsize=10)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    fig.clear()
    return write_bytes_atomic(path, buf.getvalue())


def _filters_section(run: Path, model, X: torch.Tensor, n_logos: int, db) -> list:
    from biodl.interpret.filters import filter_pwms
    from biodl.interpret.motifs import filter_motifs, information_content
    from biodl.report import Section, plot_logos

    text = [
        "Position probability matrices from the windows of the positive test sequences that activate each "
        "filter to at least half of its maximum (Kelley et al. 2016), ordered by information content. All "
        "filters are written in MEME format to filters.meme."
    ]
    table = None
    try:
        motifs, desc = db
        table, pwms, n_sites = filter_motifs(model, X, motifs)
        from biodl.io._util import atomic_write_text

        atomic_write_text(run / "motifs.tsv", table.to_csv(sep="\t", index=False, float_format="%.4g"))
        text.append(
            f"Each filter (flanks under 0.3 bits trimmed) was compared with {desc} by Tomtom (memelite, both "
            "strands); the best match, its p-value and its Benjamini-Hochberg q-value over the database are "
            "shown (filters with fewer than 10 sites are not matched). Table: motifs.tsv."
        )
    except (BiodlError, ImportError, OSError, RuntimeError) as e:  # matching is optional
        log.warning("motif matching skipped: %s", e)
        text.append(f"Motif matching was skipped: {e}")
        pwms, n_sites = filter_pwms(model, X)
    ic = np.array([information_content(p).sum() for p in pwms])
    order = np.argsort(-ic, kind="stable")[:n_logos]
    names, subs = [], []
    for i in order:
        names.append(f"filter {int(i)} ({int(n_sites[i])} sites)")
        sub = f"{ic[i]:.1f} bits"
        if table is not None:
            row = table.set_index("filter").loc[f"filter{int(i)}"]
            if isinstance(row["match_id"], str) and row["q_value"] is not None:
                sub += f"; {row['match_name']} {row['match_id']} q={float(row['q_value']):.1e}"
        subs.append(sub)
    plot_logos([pwms[i] for i in order], run / "filters.png", names=names, titles=subs)
    _write_meme(run / "filters.meme", pwms, n_sites)
    shown = None
    if table is not None:
        shown = table.copy()
        for c in ("p_value", "e_value", "q_value"):
            shown[c] = [f"{v:.2e}" if isinstance(v, float) else "\u2014" for v in shown[c]]
    return [
        Section(
            "First-layer filters and JASPAR matches", text=text, table=shown, images=[run / "filters.png"]
        )
    ]


def _ism_section(run: Path, model, meta: dict, X: torch.Tensor, n_seqs: int = 3) -> list:
    from biodl.interpret.attributions import integrated_gradients
    from biodl.interpret.ism import ism_method, saturation_mutagenesis
    from biodl.report import Section

    with torch.no_grad():
        y = torch.cat(
            [model(X[i : i + 256]).reshape(min(256, X.shape[0] - i), -1) for i in range(0, X.shape[0], 256)]
        )
    best_out = y.argmax(1)
    top = torch.argsort(y.max(1).values, descending=True)[:n_seqs]
    L = X.shape[-1]
    start, end = (0, L) if L <= 300 else (L // 2 - 150, L // 2 + 150)
    names = [str(n) for n in (meta.get("label_names") or range(y.shape[1]))]
    images, rows = [], []
    for rank, i in enumerate(top.tolist(), start=1):
        j = int(best_out[i])
        x = X[i : i + 1]
        eff = saturation_mutagenesis(model, x, start=start, end=end)[0, :, :, j].numpy()  # (L', 4)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            attr, delta = integrated_gradients(model, x, target=j, return_delta=True)
        with torch.no_grad():
            gap = float(y[i, j]) - float(model(torch.full_like(x, 0.25)).reshape(1, -1)[0, j])
        attr = (attr[0] * x[0].cpu())[:, start:end].numpy()
        p = plot_ism(
            eff,
            x[0, :, start:end].cpu().numpy(),
            run / f"ism_{rank}.png",
            attributions=attr,
            attribution_name="integrated gradients x input (baseline: all N)",
            title=f"test sequence #{int(i) + 1}: {names[j]} output {float(y[i, j]):.3f}"
            + (f" (positions {start + 1}-{end})" if (start, end) != (0, L) else ""),
        )
        images.append((p, f"Top-scoring test sequence {rank}"))
        rows.append(
            {
                "sequence": int(i) + 1,
                "output": names[j],
                "score (logit)": float(y[i, j]),
                "largest |ISM effect|": float(np.abs(eff).max()),
                "IG convergence delta": float(delta[0]),
                "f(x) - f(all N)": gap,
                "IG check": "ok" if not caught else "see warning",
            }
        )
    text = (
        f"In-silico saturation mutagenesis (method: {ism_method(model, L)}) of the {len(top)} "
        "highest-scoring positive test sequences: the heat map shows the output change (logit) for each "
        "substitution; the "
        "logos show the ISM effects mean-centred over the four bases at the observed base, and integrated "
        "gradients (50 steps, all-N baseline) times the input. The table gives the IG completeness check: "
        "the convergence delta is sum(attributions) - (f(x) - f(baseline))."
    )
    return [
        Section(
            "ISM and attributions of top-scoring sequences",
            text=text,
            table=pd.DataFrame(rows),
            images=images,
        )
    ]


def _variants_section(run: Path) -> list:
    from biodl.report import Section

    path = run / "variants.tsv"
    if not path.exists():
        return []
    df = pd.read_csv(path, sep="\t")
    ok = df["status"] == "ok" if "status" in df else pd.Series(True, index=df.index)
    diff_cols = [c for c in df.columns if c.endswith("_diff") and not c.endswith("log_odds_diff")]
    shown = df.copy()
    if diff_cols:
        key = shown[diff_cols].abs().max(axis=1).fillna(-1)
        shown = shown.iloc[np.argsort(-key.to_numpy(), kind="stable")]
    keep = ["chrom", "pos", "id", "ref", "alt", "status"] + [
        c for c in df.columns if c.endswith(("_ref", "_alt", "_diff"))
    ][:12]
    text = (
        f"{int(ok.sum())} of {len(df)} variant alleles scored from {path.name} (windows centred on each "
        f"variant, both strands averaged); rows not scored give the reason (e.g. REF mismatch). Shown: the "
        f"{min(_VARIANT_ROWS, len(df))} largest effects."
    )
    return [
        Section("Variant effects", text=text, table=shown[keep].head(_VARIANT_ROWS).reset_index(drop=True))
    ]


def learning_curves_section(run: Path) -> list:
    """``[Section]`` with ``run/learning_curves.png`` drawn from ``run/history.csv``, or ``[]``
    when the run has no per-epoch history."""
    from biodl.report import Section, plot_learning_curves

    path = run / "history.csv"
    if not path.exists():
        return []
    hist = pd.read_csv(path)
    if not len(hist) or "epoch" not in hist:
        return []
    return [Section("Learning curves", images=[plot_learning_curves(hist, run / "learning_curves.png")])]


def write_run_report(
    run_dir: str | Path,
    test_file: str | Path | None = None,
    title: str | None = None,
    n_logos: int = 16,
    sequences: tuple[torch.Tensor, str] | None = None,
) -> Path:
    """Write ``report.html`` (self-contained) and its PNGs for a trained run directory.

    Parameters
    ----------
    run_dir
        Directory written by ``biodl train`` / ``biodl demo`` (``model.pt``, ``history.csv``,
        ``test/metrics.json`` ...).
    test_file
        Sequences for the filter PWMs, ISM and attributions (default: the run's test file;
        its positive sequences when it has labels).
    title
        Page title.
    n_logos
        Filter logos drawn (the most informative filters).
    sequences
        ``(X, description)``: one-hot ``(n, 4, L)`` sequences to use instead of reading
        ``test_file`` (e.g. genome windows cut by :func:`biodl.windows.report`).

    Returns
    -------
    Path
        ``run_dir/report.html``.
    """
    from biodl.interpret.motifs import load_motif_db, positive_test_sequences
    from biodl.report import Section, write_html_report

    run = Path(run_dir)
    if not (run / "model.pt").exists():
        raise BiodlInputError("no model.pt here; is this a run directory of `biodl train`?", path=run)
    model, meta = load_model(run / "model.pt")
    sections = []
    overview = {
        "system": meta["recipe"],
        "task": meta["task"],
        "training file": meta.get("train_file"),
        "training sequences": meta.get("n_train"),
        "validation sequences": meta.get("n_valid"),
        "sequence length": meta.get("seq_len"),
        "best epoch": meta.get("best_epoch"),
    }
    overview.update(dict(meta.get("val_metrics") or {}))
    sections.append(Section("Run", text=f"Model directory: {run}", table=overview))
    test_dir = run / "test"
    if (test_dir / "metrics.json").exists():
        tm = json.loads((test_dir / "metrics.json").read_text())
        imgs = [p for p in (test_dir / "roc.png", test_dir / "pr.png") if p.exists()]
        sections.append(
            Section(
                "Held-out test set",
                text=f"{tm['n']} sequences from {tm['data']}.",
                table=dict(tm["metrics"].items()),
                images=imgs,
            )
        )
    sections += learning_curves_section(run)
    got = sequences if sequences is not None else positive_test_sequences(run, meta, test_file)
    if got is not None:
        X, src = got
        sections.append(
            Section(
                "Sequences interpreted",
                text=f"Filters, ISM and attributions below use {len(X)} sequences: {src}.",
            )
        )
        try:
            db = load_motif_db(None)
        except (BiodlError, ImportError, OSError) as e:
            log.warning("JASPAR unavailable: %s", e)
            db = ([], f"no database ({e})")
        sections += _filters_section(run, model, X, n_logos, db if db[0] else (None, db[1]))
        if meta["task"] in ("binary", "multilabel", "regression"):
            sections += _ism_section(run, model, meta, X)
    sections += _variants_section(run)
    return write_html_report(run / "report.html", title or f"biodl {meta['recipe']} report", sections)
