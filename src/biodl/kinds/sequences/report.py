"""Report sections of the sequence kinds (labelled sequence files and genome windows):
first-layer filters as logos matched to JASPAR, ISM and integrated gradients of the
top-scoring sequences, and the variant table of ``biodl variants``; plus ``biodl motifs``.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from biodl.errors import BiodlError, BiodlInputError
from biodl.interpret.motifs import write_meme as _write_meme
from biodl.kinds.base import read_results
from biodl.report.run import plot_ism
from biodl.train.checkpoint import RunMeta
from biodl.train.predict import predict_tensor

log = logging.getLogger("biodl.report")
_VARIANT_ROWS = 50


def _is_rna(meta: RunMeta) -> bool:
    """An RNA model (its filters read one strand, in ACGU)."""
    return str((meta.data or {}).get("alphabet", "dna")).startswith("rna")


def _filters_section(run: Path, model, X: torch.Tensor, n_logos: int, db, rna: bool = False) -> list:
    from biodl.interpret.filters import filter_pwms
    from biodl.interpret.motifs import filter_motifs, information_content
    from biodl.report import Section, plot_logos

    text = [
        "Position probability matrices from the windows of the positive test sequences that activate each "
        "filter to at least half of its maximum (Kelley et al. 2016), ordered by information content. Every "
        "filter with a site is written in MEME format "
        f"({'ACGU, one strand' if rna else 'ACGT'}) to filters.meme."
    ]
    table = None
    try:
        motifs, desc = db
        table, pwms, n_sites = filter_motifs(model, X, motifs, both_strands=not rna)
        from biodl.io._util import atomic_write_text

        atomic_write_text(run / "motifs.tsv", table.to_csv(sep="\t", index=False, float_format="%.4g"))
        strands = "the given strand: an RNA model" if rna else "both strands"
        text.append(
            f"Each filter (flanks under 0.3 bits trimmed) was compared with {desc} by Tomtom (memelite, "
            f"{strands}); the best match, its p-value and its Benjamini-Hochberg q-value over the "
            "database are shown (filters with fewer than 10 sites are not matched). Table: motifs.tsv."
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
    # two columns: at the report's page width, four made the titles (JASPAR match, q) unreadable
    plot_logos([pwms[i] for i in order], run / "filters.png", names=names, titles=subs, ncols=2)
    _write_meme(run / "filters.meme", pwms, n_sites, rna=rna)
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


def _ism_section(run: Path, model, meta: RunMeta, X: torch.Tensor, ids: list[str], n_seqs: int = 3) -> list:
    from biodl.interpret.attributions import _Target, integrated_gradients
    from biodl.interpret.ism import ism_method, saturation_mutagenesis
    from biodl.kinds.sequences.kind import rc_average_for
    from biodl.report import Section

    both = rc_average_for(meta, {})  # scored as `biodl predict` scores them
    y = predict_tensor(model, X, rc_average=both).reshape(X.shape[0], -1)
    best_out = y.argmax(1)
    top = torch.argsort(y.max(1).values, descending=True)[:n_seqs]
    L = X.shape[-1]
    start, end = (0, L) if L <= 300 else (L // 2 - 150, L // 2 + 150)
    names = [str(n) for n in (meta.label_names or range(y.shape[1]))]
    images, rows = [], []
    for rank, i in enumerate(top.tolist(), start=1):
        j = int(best_out[i])
        x = X[i : i + 1]
        eff = saturation_mutagenesis(model, x, start=start, end=end, rc_average=both)[0, :, :, j].numpy()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            attr, delta = integrated_gradients(model, x, target=j, return_delta=True, rc_average=both)
        with torch.no_grad():
            gap = float(y[i, j]) - float(_Target(model, both)(torch.full_like(x, 0.25))[0, j])
        attr = (attr[0] * x[0].cpu())[:, start:end].numpy()
        p = plot_ism(
            eff,
            x[0, :, start:end].cpu().numpy(),
            run / f"ism_{rank}.png",
            attributions=attr,
            attribution_name="integrated gradients x input (baseline: all N)",
            title=f"{ids[i]}: {names[j]} output {float(y[i, j]):.3f}"
            + (f" (positions {start + 1}-{end})" if (start, end) != (0, L) else ""),
        )
        images.append((p, f"Top-scoring test sequence {rank}"))
        rows.append(
            {
                "sequence": ids[i],
                "output": names[j],
                "score (logit)": float(y[i, j]),
                "largest |ISM effect|": float(np.abs(eff).max()),
                "IG convergence delta": float(delta[0]),
                "f(x) - f(all N)": gap,
                "IG check": "ok" if not caught else "see warning",
            }
        )
    from biodl.kinds.sequences.kind import strand_phrase

    strands = "the mean of both strands, as trained with --rc-augment" if both else strand_phrase(meta, False)
    text = (
        f"In-silico saturation mutagenesis (method: {ism_method(model, L)}) of the {len(top)} "
        f"highest-scoring positive test sequences, scored as biodl predict scores them ({strands}): "
        "the heat map shows the output change (logit) for each "
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


def _variants_section(run: Path, meta: RunMeta) -> list:
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
    from biodl.kinds.sequences.kind import rc_average_for, strand_phrase

    how = strand_phrase(meta, rc_average_for(meta, {}))
    text = (
        f"{int(ok.sum())} of {len(df)} variant alleles scored from {path.name} (windows centred on each "
        f"variant, scored as biodl predict scores them: by default {how}); rows not scored give the "
        "reason (e.g. REF mismatch). Shown: the "
        f"{min(_VARIANT_ROWS, len(df))} largest effects."
    )
    return [
        Section("Variant effects", text=text, table=shown[keep].head(_VARIANT_ROWS).reset_index(drop=True))
    ]


def positive_test_sequences(
    run_dir: str | Path, meta: RunMeta, test_file: str | Path | None = None
) -> tuple[torch.Tensor, str, list[str]] | None:
    """One-hot ``(n, 4, L)`` positive sequences of a run's test file (all sequences when the
    file has no labels), the file name and the sequences' ids; ``None`` when the run has no
    test file."""
    from biodl.kinds.sequences.data import SequenceDataset
    from biodl.kinds.sequences.kind import read_like_model

    run = Path(run_dir)
    src = test_file
    tm = read_results(run / "test") if src is None else None
    if tm is not None:
        src = tm.get("data")
        if src is not None and not Path(src).exists():
            from biodl.kinds.base import log

            log(
                f"[biodl] warning: the run's test file {src} is not there any more (moved, deleted, or "
                "a relative path of an older run read from another directory); the sections that "
                "need its sequences (filter logos, ISM) are left out: give the file with --test to "
                "include them",
                False,
            )
            return None
    if src is None:
        return None
    d = meta.data
    # labels optional (a file of positives only is all interpreted), read from the model's label
    # columns when the file has them (a run trained with --label-col NAME)
    table = read_like_model(meta, src, labelled=False, model_labels=True)
    if table.labels is not None and meta.task in ("binary", "multilabel"):
        pos = np.nansum(table.labels, axis=1) > 0
        if pos.any():
            table = table.subset(np.flatnonzero(pos))
    # a model of any length (seq_len None) is interpreted on the sequences padded with N to the longest
    length = d.get("seq_len") or (max(len(q) for q in table.seqs) if table.seqs else None)
    ds = SequenceDataset(
        table, length=length, n_value=d.get("n_value", 0.25), iupac_as_n=d.get("iupac_as_n", False)
    )
    return torch.stack([ds[i][0] for i in range(len(ds))]), str(src), [str(i) for i in table.ids]


def interpretation_sections(
    run: Path, model, meta: RunMeta, sequences: tuple[torch.Tensor, str, list[str]] | None, n_logos: int = 16
) -> list:
    """Filters (logos, JASPAR matches), ISM / attributions on ``sequences`` (``(X, description,
    ids)``), and the variant table when the run directory holds one."""
    from biodl.interpret.motifs import load_motif_db
    from biodl.report import Section

    sections = []
    if sequences is not None and len(sequences[0]):
        X, src, ids = sequences
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
        sections += _filters_section(run, model, X, n_logos, db if db[0] else (None, db[1]), _is_rna(meta))
        if meta.task in ("binary", "multilabel", "regression"):
            sections += _ism_section(run, model, meta, X, ids)
    return sections + _variants_section(run, meta)


#: Windows of a genome-window run's test split (positive for some label) that ``biodl motifs``
#: reads its filters' sites from.
MOTIF_WINDOWS = 5000


def run_motifs(
    run_dir: str | Path,
    *,
    test_file: str | Path | None = None,
    db: str | Path | None = None,
    out: str | Path | None = None,
    device: str = "cpu",
) -> pd.DataFrame:
    """``biodl motifs``: the filters of a trained run matched to a database.

    Writes ``filters.meme`` and ``motifs.tsv`` (or ``out``) into the run directory and
    returns the table (see :func:`biodl.interpret.motifs.filter_motifs`; ``db`` as in
    :func:`~biodl.interpret.motifs.load_motif_db`).
    """
    from biodl.interpret.motifs import filter_motifs, load_motif_db
    from biodl.io._util import atomic_write_text, check_output_path, note_model
    from biodl.kinds.base import require_kind
    from biodl.pipeline import _run_state
    from biodl.report.run import check_run_outputs
    from biodl.train.checkpoint import load_model

    run = Path(run_dir)
    # an unfinished run: refused, as by `biodl report` (filters.meme is written into the run)
    _run_state(run, "motifs", refuse=True)
    note_model(run)  # --out may not replace the model or the run's record
    model, meta = load_model(run, device=device)
    require_kind(
        meta,
        ("sequences", "windows"),
        "biodl motifs",
        "a DNA-sequence model with first-layer convolution filters (kind sequences or windows)",
    )
    run = run if run.is_dir() else run.parent
    meme = run / "filters.meme"
    table_out = Path(out) if out is not None else run / "motifs.tsv"
    if table_out.resolve() == meme.resolve():
        raise BiodlInputError(
            "is the PWM file (filters.meme) this command writes into the run directory, so the table "
            "given to --out would be lost: give --out another name (e.g. motifs.tsv)",
            path=table_out,
        )
    check_run_outputs(
        run,
        meta,
        [r"filters\.meme", table_out],
        "motifs",
        "move it out of the run directory first (or give --out another name)",
    )
    if meta.kind == "windows" and test_file is None:  # the test split of the training genome
        from biodl.kinds.windows.kind import KIND as WINDOWS

        got = WINDOWS.positive_windows(meta, None, {}, max_windows=MOTIF_WINDOWS)
    else:
        got = positive_test_sequences(run, meta, test_file)
    if got is None:
        raise BiodlInputError("the run has no test file; give sequences with --test", path=run)
    X = got[0]
    motifs, _desc = load_motif_db(db)
    for target in (meme, table_out):  # neither output may replace an input read (test file, --db)
        check_output_path(target)
    table, pwms, n_sites = filter_motifs(model, X, motifs, both_strands=not _is_rna(meta))
    _write_meme(meme, pwms, n_sites, rna=_is_rna(meta))
    atomic_write_text(table_out, table.to_csv(sep="\t", index=False, float_format="%.4g"))
    return table
