"""How the read classifier's decoys and calibrate-novel's folds were chosen (bench/README_reads.md,
"How the decoys and the folds were chosen"): on the *calibration* genomes only.

Both parts leave out the two strains that bench/reads.py part (b) scores (Blochmannia vafer BVAF,
Corynebacterium pseudotuberculosis CIP 52.97) and never classify a read of them.

* ``--part decoys``: shadow models trained without those two strains *and* without fold 2's
  species (B. floridanus, C. diphtheriae), one per ``--decoys`` share; each classifies 10,000
  sampled pairs of the held-out species (as ``biodl reads calibrate-novel`` does) and prints
  the genus PPV / sensitivity at a few thresholds, the threshold calibrate-novel would choose,
  the best sensitivity at PPV >= 0.95, the wrong calls at 0.99 and the species sensitivity on
  sampled pairs of the shadow's own genomes.
* ``--part folds``: one shadow model per fold (the three folds of ``calibrate-novel --folds all``
  on bench/reads.py's ``ref_excl``), the threshold each fold chooses, Kraken2 on each fold's ART
  pairs, and each fold's ART pairs classified at every fold's threshold.

Both train their shadow models with ``--diverged`` / ``--divergence`` (default 0.3 / 0.2, the
read models' defaults; ``--diverged 0``: none, as the decoy study was run).

Needs bench/reads.py's work directory (``ref_full``, its ART reads); e.g.

    nice -n 5 python bench/reads_calibration.py --part decoys --decoys 0,0.05,0.1,0.2,0.3,0.5 --diverged 0
    nice -n 5 python bench/reads_calibration.py --part folds --decoys 0.2 --diverged 0
    nice -n 5 python bench/reads_calibration.py --part decoys --decoys 0.2 --diverged 0.5 --divergence 0.2
    nice -n 5 python bench/reads_calibration.py --part folds --decoys 0.2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import reads as br  # noqa: E402
from _rows import float_list, guarded, nonneg_float, positive_int  # noqa: E402

TEST = list(br.EXCLUDED)
FOLDS = {
    "1": ["Blochmannia_endosymbiont_Polyrhachis_turneri_675", "Corynebacterium_glutamicum_ATCC13032"],
    "2": ["Blochmannia_floridanus", "GCF_001457455.1_NCTC11397_genomic"],
    "3": ["Blochmannia_pennsylvanicus_BPEN"],
}


def shadow(ref, names, hold, out: Path, decoys: float, args) -> Path:
    from biodl.kinds.reads.novel import subset_reference

    excl = [names.index(n) for n in TEST + hold]
    sub = subset_reference(ref, excl, out.parent / f"ref_{out.name}")
    opts = ["--set", f"reads_per_epoch={args.reads_per_epoch}", "--epochs", args.epochs]
    div = ["--set", f"diverged={args.diverged}", "--set", f"divergence={args.divergence}"]
    return br.train(
        sub, out, "read-classifier", args, [*opts, "--set", f"decoys={decoys}", *div, "--set", "report=false"]
    )


def curve_of(model_path: Path, ref, genomes: list[int], seed: int):
    """Genus PPV / sensitivity curve of a shadow model on 10,000 sampled pairs of ``genomes``, as
    ``biodl reads calibrate-novel`` scores them; the threshold it would choose and the best
    sensitivity at PPV >= 0.95."""
    from biodl.kinds.reads.novel import _threshold_grid, choose_threshold, score_sampled, threshold_curve
    from biodl.train.checkpoint import load_model

    model, meta = load_model(model_path, device="cpu")
    parts, targets = score_sampled(model, meta, ref, genomes, 10_000, seed, fragment=400)
    parents = meta.data["taxonomy"]["parent"]
    cur = threshold_curve(parts, targets, 1, _threshold_grid(), parents, model.threshold.double().numpy())
    thr, met = choose_threshold(cur, 0.95)
    ok = np.nan_to_num(cur["ppv"], nan=0) >= 0.95
    best = float(cur["sensitivity"][ok].max()) if ok.any() else 0.0
    return cur, thr, met, best, (parts, targets, meta, model)


def part_decoys(args, ref, names) -> None:
    from biodl.kinds import get_kind
    from biodl.kinds.reads.classify import decide
    from biodl.kinds.reads.data import sampled_table
    from biodl.kinds.reads.io import taxonomy_from_dict
    from biodl.kinds.reads.kind import _call_lineage

    hold = FOLDS["2"]
    for d in args.decoys:
        mp = shadow(ref, names, hold, args.work / f"decoys_{d:g}{args.tag}", d, args)
        held = [names.index(n) for n in hold]
        cur, thr, met, best, (parts, targets, meta, model) = curve_of(mp, ref, held, args.seed)
        j = int(np.flatnonzero(cur["threshold"] == thr)[0])
        print(
            f"decoys {d:g}: calibrate-novel would choose {thr:.6g} (PPV {cur['ppv'][j]:.4f}, sensitivity "
            f"{cur['sensitivity'][j]:.4f}); best sensitivity at PPV >= 0.95: {best:.4f}"
        )
        for t in (0.5, 0.9, 0.99, 0.999):
            k = int(np.argmin(abs(cur["threshold"] - t)))
            print(
                f"  threshold {cur['threshold'][k]:.4g}: PPV {cur['ppv'][k]:.4f} "
                f"sensitivity {cur['sensitivity'][k]:.4f}"
            )
        tax = meta.data["taxonomy"]
        gn = tax["names"][1]
        th = model.threshold.double().numpy().copy()
        th[1:] = 0.99
        rk, ix, _ = decide(parts, th, tax["parent"])
        lin = _call_lineage(taxonomy_from_dict(tax), rk, ix)[:, 1]  # genus of calls at genus or below
        called = lin >= 0
        for g in np.unique(targets[:, 1]).astype(int):
            m = targets[:, 1] == g
            wrong = called & m & (lin != g)
            to = dict(zip(*np.unique(lin[wrong], return_counts=True), strict=True))
            print(
                f"  at 0.99, true {gn[g]}: {int((called & m & (lin == g)).sum())} right, "
                f"{int(wrong.sum())} wrong ({', '.join(gn[k] + ' ' + str(v) for k, v in to.items())})"
            )
        keep = [i for i, n in enumerate(names) if n not in TEST + hold]
        own = sampled_table(
            ref,
            10_000,
            read_len=150,
            error_rate=0.01,
            seed=args.seed,
            stream=8,
            genomes=np.array(keep),
            fragment=400,
        )
        out, _ = get_kind("reads").score(model, meta, own, device="cpu", options={})
        m = get_kind("reads").metrics(meta, out, own.targets, own)
        print(f"  the shadow's own genomes (sampled pairs): species sensitivity {m['sensitivity']:.4f}")


def calls_by_name(tsv: Path, tax) -> dict[str, int]:
    """biodl's calls in ``tsv`` as taxids of the Kraken2 reference ``tax``, by taxon name: a
    shadow model's taxids are those of the subset of ``ref_full`` it was trained on, which number
    the species otherwise than the reference built for Kraken2 from the same genomes."""
    import pandas as pd

    ids = {name: t for t, name in tax[0].items()}
    df = pd.read_csv(tsv, sep="\t", usecols=["id", "taxon"], dtype=str)
    return {
        r.removesuffix("/1"): (0 if name == "unclassified" else ids[name])
        for r, name in zip(df["id"], df["taxon"], strict=True)
    }


def art_dir(work: Path) -> Path:
    """bench/reads.py's ART reads: those of its default run (1M pairs) when simulated, else the
    largest set there (``--n-throughput`` smaller)."""
    found = sorted(work.glob("art_*x2"), key=lambda p: int(p.name[4:-2]))
    if not found:
        sys.exit(f"error: no ART reads in {work}: run bench/reads.py first (its --work)")
    return found[-1]


def part_folds(args, ref, names, files) -> None:
    d = args.decoys[0]
    rows = {}
    for f, hold in FOLDS.items():
        mp = shadow(ref, names, hold, args.work / f"fold{f}_decoys_{d:g}{args.tag}", d, args)
        _, thr, _, best, _ = curve_of(mp, ref, [names.index(n) for n in hold], args.seed)
        kept = {g: p for g, p in files.items() if g not in TEST + hold}
        kref = br.biodl_reference(args.work, f"refk_fold{f}", kept)
        db = br.kraken_db(args.work, f"k2_fold{f}", kref, kept)
        art = art_dir(args.reads_work)
        sim = {g: (art / f"{g}1.fq", art / f"{g}2.fq") for g in hold}
        r1, r2, truth = br.head_pairs(sim, 5000, args.work / f"fold{f}_pairs")
        br.kraken_classify(db, r1, r2, args.work / f"fold{f}_k2.txt")
        k2 = br.score(br.kraken_calls(args.work / f"fold{f}_k2.txt"), truth, br.names_of(kref), "genus")
        print(
            f"fold {f} ({', '.join(hold)}): chooses {thr:.6g}, best sensitivity at PPV >= 0.95 {best:.4f} "
            f"(sampled pairs); Kraken2 on its ART pairs: sensitivity {k2['sensitivity']:.4f} "
            f"PPV {k2['ppv']:.4f}"
        )
        rows[f] = (thr, mp, r1, r2, truth, kref)
    for f, (_, mp, r1, r2, truth, kref) in rows.items():
        for g, (thr, *_rest) in rows.items():
            tsv = args.work / f"fold{f}_at_{g}.tsv"
            br.run(
                [
                    *br.BIODL,
                    "reads",
                    "classify",
                    mp,
                    r1,
                    "--mate2",
                    r2,
                    "--threads",
                    2,
                    "--no-progress",
                    "--output",
                    tsv,
                    "--confidence",
                    f"{thr:.8f}",
                ]
            )
            tax = br.names_of(kref)
            s = br.score(calls_by_name(tsv, tax), truth, tax, "genus")
            print(
                f"  fold {f} ART pairs at fold {g}'s threshold {thr:.6g}: "
                f"sensitivity {s['sensitivity']:.4f} PPV {s['ppv']:.4f}"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=("decoys", "folds"), required=True)
    ap.add_argument(
        "--decoys",
        type=float_list(0, strict=False),
        default="0.2",
        help="decoy shares (comma-separated; folds: the first)",
    )
    ap.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument(
        "--reads-work", type=Path, default=ROOT / "bench" / "out" / "reads", help="bench/reads.py's --work"
    )
    ap.add_argument("--work", type=Path, default=ROOT / "bench" / "out" / "reads_calibration")
    ap.add_argument("--reads-per-epoch", type=positive_int, default=150_000)
    ap.add_argument("--epochs", type=positive_int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--diverged",
        type=nonneg_float,
        default=0.3,
        help="share of diverged training reads (0: none, as before them)",
    )
    ap.add_argument("--divergence", type=nonneg_float, default=0.2, help="their largest substitution rate")
    args = ap.parse_args()
    args.tag = f"_div{args.diverged:g}_{args.divergence:g}" if args.diverged > 0 else ""
    args.decoys = [float(x) for x in args.decoys.split(",")]
    from biodl.kinds.reads.io import load_reference

    genomes = None
    if args.part == "folds":  # its data and tools, before anything else
        genomes = br.genome_files(args.data_dir)
        br.need_tools()
    if not (args.reads_work / "ref_full" / "reference.json").exists():
        sys.exit(f"error: missing {args.reads_work / 'ref_full'}: run bench/reads.py first (its --work)")
    args.work.mkdir(parents=True, exist_ok=True)
    ref = load_reference(args.reads_work / "ref_full")
    names = [g["name"] for g in ref.genomes]
    if args.part == "decoys":
        part_decoys(args, ref, names)
    else:
        part_folds(args, ref, names, genomes)


if __name__ == "__main__":
    guarded(main)
