"""Protein contact benchmark: every protein we hold with a structure, every method.

For 1ATZ, 1GUU, 5PTP, 16PK, 1A0T, 1ATG, 3e7u and T0866 (``--data-dir``/contacts: msas/,
pconsc2_supp/, dncon2_dryrun/): top-L/5, L/2 and L precision, long (|i-j| >= 24) and medium
(12-23) range, CB < 8 A, of our MI+APC, PSICOV-like and plmDCA, the staged CCMpred / PSICOV /
FreeContact / DNCON2 maps (3e7u, T0866) and DeepCov map (1GUU), the ported DEEPCON
(``--deepcon-weights``: the deepcon wheel) and our PconsC2 stack trained leave-one-protein-out
on the other seven. Prints plmDCA against CCMpred (Spearman, top-L agreement), times per
protein and method, peak memory, and the cost model for L = 1000.

    nice -n 10 .venv/bin/python bench/contacts.py --deepcon-weights deepcon-0.4.0-py3-none-any.whl

With ``--tf-python`` (a Python with TensorFlow + h5py) it also runs the original Keras DEEPCON
on 3e7u and compares our port's map with it. ``--layers``, ``--window``, ``--maps``,
``--map-scale`` and ``--train-min-sep`` run variants of the PconsC2 stack on the cached maps
(``--layers 1``: ~3 min). Heavy: ~53 min on 2 idle CPU cores (the maps are
cached for later runs).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path


def _tf_reference(aln: str, hdf5: str, out: str) -> None:  # pragma: no cover - runs under TensorFlow
    """The published DEEPCON network (Keras) and its cov21stats on ``aln`` -> ``out`` (npz)."""
    import numpy as np
    from keras.layers import (
        Activation,
        BatchNormalization,
        Conv2D,
        Dropout,
        Input,
        MaxPooling3D,
        Reshape,
        add,
    )
    from keras.models import Model

    aacvs = [999, 0, 3, 4, 3, 6, 13, 7, 8, 9, 21, 11, 10, 12, 2, 21, 14, 5, 1, 15, 16, 21, 19, 17, 21, 18, 6]
    rows = [ln.strip() for ln in open(aln) if ln.strip()]
    aln_i = np.array([[aacvs[ord(c) & 31] if c.isalpha() else 20 for c in r] for r in rows])
    nseq, L = aln_i.shape
    # cov21stats of deepcon 0.4.0 (DeepCov), loops vectorised with numpy, same arithmetic
    mism = (aln_i[:, None, :] != aln_i[None, :, :]).sum(2)
    nb = mism < int(0.38 * L)
    np.fill_diagonal(nb, False)
    weight = 1.0 / (1 + nb.sum(1))
    wtsum = weight.sum()
    oh = np.zeros((nseq, L, 21))
    for a in range(21):
        oh[:, :, a] = aln_i == a
    pa = (1 + np.einsum("n,nia->ia", weight, oh)) / (21 + wtsum)
    pab = (np.einsum("n,nia,njb->ijab", weight, oh, oh) + 1 / 21) / (21 + wtsum)
    X = (pab - pa[:, None, :, None] * pa[None, :, None, :]).reshape(1, L, L, 441)
    inp = Input(shape=(L, L, 441))
    x = Activation("relu")(BatchNormalization()(inp))
    x = Reshape((L, L, 128, 1))(Conv2D(128, 1, padding="same")(x))
    tower = Reshape((L, L, 64))(MaxPooling3D(pool_size=(1, 1, 2))(x))
    d = 1
    for _ in range(32):
        b = Conv2D(64, 3, padding="same")(Activation("relu")(BatchNormalization()(tower)))
        b = Conv2D(64, 3, dilation_rate=(d, d), padding="same")(Activation("relu")(Dropout(0.3)(b)))
        tower = add([b, tower])
        d = {1: 2, 2: 4, 4: 1}[d]
    t = Conv2D(1, 3, padding="same")(Activation("relu")(BatchNormalization()(tower)))
    model = Model(inp, Activation("sigmoid")(t))
    model.load_weights(hdf5)
    P = model.predict(X, verbose=0)[0, :, :, 0]
    np.savez(out, features=X[0], P=(P + P.T) / 2)


if len(sys.argv) > 1 and sys.argv[1] == "--tf-reference":  # pragma: no cover
    _tf_reference(*sys.argv[2:5])
    sys.exit(0)

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from _rows import guarded, nonneg_int, positive_int, writable_path  # noqa: E402

#: the committed results of the full run (README_contacts.md); a run writes there only when asked to
COMMITTED = REPO / "bench" / "results_contacts.json"
METHODS = ("MI+APC", "PSICOV-like", "plmDCA")
#: settings whose change makes a run a variant, not the benchmark (refused into COMMITTED)
VARIANT_KEYS = (
    "plm_iter", "psicov_iter", "layers", "trees", "max_pairs", "inner_folds", "window", "maps",
    "map_scale", "train_min_sep", "only", "methods", "no_lopo",
)  # fmt: skip


def fasta(path: Path) -> dict[str, str]:
    out, name = {}, None
    for line in path.read_text().splitlines():
        if line.startswith(">"):
            name = line[1:].strip()
            out[name] = ""
        elif name:
            out[name] += line.strip()
    return out


def proteins(data: Path) -> list[dict]:
    """The eight proteins: alignment, query, native, staged maps (``None`` where missing)."""
    c = data / "contacts"
    train = fasta(c / "pconsc2_supp" / "training.fa") if (c / "pconsc2_supp" / "training.fa").exists() else {}
    nat = c / "pconsc2_supp" / "native_contacts"
    dn = c / "dncon2_dryrun"
    out = []
    for pid, aln in (("1ATZ", "1atzA.aln"), ("1GUU", "1guuA.aln"), ("5PTP", "5ptpA.aln")):
        seq = train.get(f"{pid}:A")
        out.append(
            dict(id=pid, msa=c / "msas" / aln, query=seq, native=nat / f"{pid}_A_contacts.CB", chain=None,
                 native_sequence=seq, staged={})
        )  # fmt: skip
    for pid, aln, pdb, chain in (
        ("16PK", "16pkA0.aln", "16pkA.pdb", None),
        ("1A0T", "1a0tP0.aln", "1a0tP.pdb", None),
        ("1ATG", "1ATG_A.mfa", "1ATG_A.pdb", "A"),
    ):
        out.append(dict(id=pid, msa=c / "msas" / aln, query=None, native=c / "msas" / pdb, chain=chain,
                        native_sequence=None, staged={}))  # fmt: skip
    out[1]["staged"] = {"DeepCov (staged)": c / "msas" / "1guuA.deepcov_pred.con"}
    for pid, pdb in (("3e7u", "3E7U.pdb"), ("T0866", "T0866-D1.pdb")):
        staged = {
            f"{m} (staged)": dn / pid / f"{pid}.{m.lower()}.rr"
            for m in ("CCMpred", "PSICOV", "FreeContact", "DNCON2")
        }
        out.append(dict(id=pid, msa=dn / pid / f"{pid}.aln", query=None, native=dn / pid / pdb, chain=None,
                        native_sequence=None, staged=staged))  # fmt: skip
    return out


def rank_scale(s):
    """``-log(rank / L)`` of each pair's score among the pairs ``|i-j| >= 6`` (rank 1 the best;
    closer pairs get the worst rank): a protein-independent scale for a top-L ranking."""
    import numpy as np

    L = s.shape[0]
    iu = np.triu_indices(L, 6)
    r = np.empty(len(iu[0]))
    r[np.argsort(-s[iu], kind="stable")] = np.arange(1, len(r) + 1)
    out = np.full((L, L), float(max(len(r), 1)))
    out[iu] = r
    out.T[iu] = r
    return -np.log(out / L)


def rss_gib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--deepcon-weights", type=Path, default=None, help="deepcon wheel / HDF5 / converted .pt")
    ap.add_argument(
        "--tf-python", default=None, help="Python with TensorFlow: check the DEEPCON port on 3e7u"
    )
    ap.add_argument("--plm-iter", type=positive_int, default=50)
    ap.add_argument("--psicov-iter", type=positive_int, default=4)
    ap.add_argument("--layers", type=positive_int, default=5)
    ap.add_argument("--trees", type=positive_int, default=50)
    ap.add_argument("--max-pairs", type=positive_int, default=20000)
    ap.add_argument(
        "--inner-folds", type=nonneg_int, default=5,
        help="PconsC2's cross-fitting of the maps a later layer trains on (0: out-of-bag votes)",
    )  # fmt: skip
    ap.add_argument("--window", type=int, default=11, help="PconsC2's patch side (odd; the paper: 11)")
    ap.add_argument(
        "--maps", default="plmdca,psicov,mi",
        help="the coevolution maps PconsC2 sees (comma-separated, of plmdca, psicov, mi)",
    )  # fmt: skip
    ap.add_argument(
        "--map-scale", choices=("z", "rank"), default="z",
        help="PconsC2's maps standardised per protein (z, the default) or as -log(rank / L) among "
        "the pairs |i-j| >= 6 (rank: the same scale on every protein for a top-L ranking)",
    )  # fmt: skip
    ap.add_argument(
        "--train-min-sep", type=nonneg_int, default=6,
        help="PconsC2 trains on pairs |i-j| >= this (24: long-range pairs only)",
    )  # fmt: skip
    ap.add_argument("--threads", type=positive_int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--only", nargs="*", help="protein ids (default: all)")
    ap.add_argument(
        "--methods", nargs="*", default=None, choices=METHODS,
        help="coevolution methods to run (MI+APC, PSICOV-like, plmDCA; default: all): with --no-lopo, "
        "a timing run of one method (the PconsC2 stack needs all three)",
    )  # fmt: skip
    ap.add_argument("--no-lopo", action="store_true", help="skip the PconsC2 leave-one-protein-out stack")
    ap.add_argument(
        "--out", type=writable_path, default=REPO / "bench" / "out" / "contacts" / "results_contacts.json",
        help="the results (JSON; default bench/out/contacts/results_contacts.json); the committed "
        "bench/results_contacts.json is written only by a full run with the default settings",
    )  # fmt: skip
    ap.add_argument(
        "--cache", type=Path, default=REPO / "bench" / "out" / "contacts",
        help="per-protein maps and timings are kept here (one npz per protein, MSA file and settings) "
        "and reused by later runs; --no-cache recomputes",
    )  # fmt: skip
    ap.add_argument("--no-cache", action="store_true")
    a = ap.parse_args()
    maps_used = [m.strip().lower() for m in a.maps.split(",") if m.strip()]
    if not maps_used or set(maps_used) - {"plmdca", "psicov", "mi"} or len(set(maps_used)) < len(maps_used):
        ap.error(f"--maps: comma-separated, each once, of plmdca, psicov, mi (got {a.maps!r})")
    if a.window < 1 or a.window % 2 == 0:
        ap.error(f"--window must be odd and positive (got {a.window})")
    if a.methods and set(a.methods) != set(METHODS) and not a.no_lopo:
        ap.error("--methods: a subset of the methods needs --no-lopo (the PconsC2 stack uses all three maps)")
    if a.deepcon_weights is not None and not a.deepcon_weights.is_file():
        ap.error(f"--deepcon-weights {a.deepcon_weights}: no such file (the deepcon wheel, HDF5 or .pt)")
    variant = [k for k in VARIANT_KEYS if getattr(a, k) != ap.get_default(k)]
    if a.out.expanduser().resolve() == COMMITTED and variant:
        ap.error(
            f"--out {a.out} is the committed result of the full run: a run with "
            f"{', '.join('--' + k.replace('_', '-') for k in variant)} goes elsewhere (leave --out out: "
            "bench/out/contacts/results_contacts.json)"
        )

    import torch

    from biodl.kinds.contacts import coevolution as co
    from biodl.kinds.contacts.io import native_distances, read_msa, read_native, read_rr, rr_matrix
    from biodl.kinds.contacts.kind import MAP_NAMES, ProteinMaps, fit_pconsc2, stack_features
    from biodl.kinds.contacts.predictors import deepcon_map, load_deepcon
    from biodl.kinds.contacts.scoring import precision
    from biodl.models.contacts import PconsC2

    torch.set_num_threads(a.threads)
    where = "Where the data come from: bench/DATA.md (Cells, features, ...: contacts/)"
    if not (a.data_dir / "contacts").is_dir():
        sys.exit(
            f"error: bench/contacts.py: missing {a.data_dir / 'contacts'} (give --data-dir the folder "
            f"holding contacts/, the project's data folder ../shared/data). {where}"
        )
    known = [p["id"] for p in proteins(a.data_dir)]
    unknown = sorted(set(a.only or []) - set(known))
    if unknown:
        ap.error(f"--only: unknown protein(s) {', '.join(unknown)}; the bench has {', '.join(known)}")
    prots = [p for p in proteins(a.data_dir) if not a.only or p["id"] in a.only]
    missing = [str(p["msa"]) for p in prots if not p["msa"].exists()] + [
        str(p["native"]) for p in prots if not p["native"].exists()
    ]
    if missing:  # a protein left out changes every mean and the PconsC2 folds: not the benchmark
        have = [p["id"] for p in prots if p["msa"].exists() and p["native"].exists()]
        sys.exit(
            f"error: bench/contacts.py: {len(missing)} input file(s) missing under {a.data_dir}: "
            f"{', '.join(missing)}. "
            + (
                f"To run the proteins that have their files, select them: --only {' '.join(have)}. "
                if have
                else ""
            )
            + where
        )
    net = None
    if a.deepcon_weights is None:
        print("DEEPCON: no --deepcon-weights (pip download deepcon==0.4.0 --no-deps): left out")
    else:
        net = load_deepcon(a.deepcon_weights, a.device)

    rows, times, maps_of, pm = [], [], {}, []
    agree = []
    for p in prots:
        msa = read_msa(p["msa"], p["query"])
        dist = native_distances(msa.query, read_native(p["native"], p["chain"], p["native_sequence"]))
        L_obs = int((np.isfinite(dist).sum(1) > 1).sum())
        t = {"protein": p["id"], "L": msa.L, "L_native": L_obs, "N": msa.n_seqs}
        cached = None
        if not a.no_cache:
            a.cache.mkdir(parents=True, exist_ok=True)
            msa_id = hashlib.sha1(Path(p["msa"]).read_bytes()).hexdigest()[:10]  # another MSA, another file
            cached = a.cache / f"{p['id']}.{msa_id}.plm{a.plm_iter}.psicov{a.psicov_iter}.npz"
        m = {}
        if cached is not None and cached.exists():
            z = np.load(cached, allow_pickle=False)
            w = z["weights"]
            t.update(json.loads(str(z["times"])))
            m = {k[4:]: z[k] for k in z.files if k.startswith("map:")}
            t["cached"] = 1
        else:
            t0 = time.perf_counter()
            w = co.sequence_weights(msa, 0.8, a.device)
            t["weights_s"] = time.perf_counter() - t0
        t["Meff"] = float(w.sum())
        for name, fn, kw in (
            ("MI+APC", co.mutual_information, {}),
            ("PSICOV-like", co.psicov, {"max_iter": a.psicov_iter}),
            ("plmDCA", co.plmdca, {"max_iter": a.plm_iter}),
        ):
            if (a.methods and name not in a.methods) or name in m:
                continue
            t0 = time.perf_counter()
            m[name] = fn(msa, w, device=a.device, **kw)
            t[f"{name}_s"] = time.perf_counter() - t0
        if net is not None and "DEEPCON (ported)" not in m:
            t0 = time.perf_counter()
            m["DEEPCON (ported)"] = deepcon_map(msa, net)
            t["DEEPCON_s"] = time.perf_counter() - t0
        if cached is not None:
            keep = {k: v for k, v in t.items() if k.endswith("_s")}
            np.savez(cached, weights=np.asarray(w), times=json.dumps(keep),
                     **{f"map:{k}": np.asarray(v) for k, v in m.items()})  # fmt: skip
        for name, f in p["staged"].items():
            if f.exists():
                _, df = read_rr(f)  # DeepCov's .con is RR without the sequence line
                m[name] = rr_matrix(df, msa.L)
        t["peak_rss_GiB"] = rss_gib()
        times.append(t)
        maps_of[p["id"]] = m
        if not a.no_lopo:
            raw = {"plmdca": m["plmDCA"], "psicov": m["PSICOV-like"], "mi": m["MI+APC"]}
            x = stack_features(msa, raw, w)
            if a.map_scale == "rank":
                x[: len(MAP_NAMES)] = [rank_scale(raw[n]) for n in MAP_NAMES]
            x = x[[MAP_NAMES.index(n) for n in maps_used] + list(range(len(MAP_NAMES), len(x)))]
        else:
            x = np.zeros((0, msa.L, msa.L), np.float32)
        pm.append(ProteinMaps(p["id"], msa.query, x, dist, str(p["msa"]), float(w.sum())))
        if "CCMpred (staged)" in m and "plmDCA" in m:
            from scipy.stats import spearmanr

            ref, ours = m["CCMpred (staged)"], m["plmDCA"]
            iu = np.triu_indices(msa.L, 6)
            ok = np.isfinite(ref[iu])
            r = spearmanr(ours[iu][ok], ref[iu][ok])[0]
            top = {}
            for k, n in (("L/5", msa.L // 5), ("L", msa.L)):
                a_ = set(np.argsort(-ours[iu][ok], kind="stable")[:n])
                b_ = set(np.argsort(-ref[iu][ok], kind="stable")[:n])
                top[k] = len(a_ & b_) / n
            agree.append(
                {"protein": p["id"], "spearman": r, "topL/5_shared": top["L/5"], "topL_shared": top["L"]}
            )
        print(f"{p['id']}: L={msa.L} N={msa.n_seqs} Meff={w.sum():.0f} " + " ".join(
            f"{k}={v:.1f}" for k, v in t.items() if k.endswith("_s")), flush=True)  # fmt: skip

    # PconsC2, leave one protein out
    lopo_s = []
    if len(pm) > 1 and not a.no_lopo:
        for k, held in enumerate(pm):
            t0 = time.perf_counter()
            model = PconsC2(
                n_maps=len(maps_used), n_layers=a.layers, n_trees=a.trees, window=a.window,
                max_pairs=a.max_pairs, inner_folds=a.inner_folds,
            )  # fmt: skip
            train = [q for q in pm if q is not held]
            opts = {"min_sep": a.train_min_sep, "threshold": 8.0}
            model, _ = fit_pconsc2(model, train, opts, seed=k, log=lambda s: None)
            with torch.no_grad():
                layers = model.forward_maps(torch.from_numpy(held.x))
            maps_of[held.id]["PconsC2 (LOPO, layer 1)"] = layers[0].double().numpy()
            maps_of[held.id][f"PconsC2 (LOPO, {a.layers} layers)"] = layers[-1].double().numpy()
            lopo_s.append(time.perf_counter() - t0)
            print(f"PconsC2 LOPO {held.id}: {lopo_s[-1]:.0f} s", flush=True)

    for p, q in zip(prots, pm, strict=True):
        for name, s in maps_of[p["id"]].items():
            rows.append({"protein": p["id"], "method": name, **precision(s, q.distances)})
    res = pd.DataFrame(rows)
    cols = ["long_L/5", "long_L/2", "long_L", "medium_L/5", "medium_L/2", "medium_L"]
    pd.set_option("display.width", 200)
    print("\n== precision per protein (CB < 8 A) ==")
    print(res.pivot_table(index="method", columns="protein", values="long_L/5").round(3).to_string())
    print("\n== mean over the proteins each method has ==")
    mean = res.groupby("method")[cols].mean().round(3)
    mean["n_proteins"] = res.groupby("method").size()
    print(mean.sort_values("long_L/5", ascending=False).to_string())
    both = res[res["protein"].isin(["3e7u", "T0866"])]
    sub = both.pivot_table(index="protein", columns="method", values="long_L/5")
    if "CCMpred (staged)" in sub and "plmDCA" in sub:
        print("\n== plmDCA vs CCMpred on the same MSAs (long-range top-L/5) ==")
        print(sub[["plmDCA", "CCMpred (staged)"]].round(3).to_string())
        d = (sub["plmDCA"] - sub["CCMpred (staged)"]).mean()
        print(f"mean difference plmDCA - CCMpred: {d:+.3f} (goal: within 0.02)")
        print(pd.DataFrame(agree).round(3).to_string(index=False))
    lo = f"PconsC2 (LOPO, {a.layers} layers)"
    if lo in set(res["method"]) and "plmDCA" in mean.index:
        gain = mean.loc[lo, "long_L/5"] - mean.loc["plmDCA", "long_L/5"]
        print(
            f"\nPconsC2 - plmDCA, mean long-range top-L/5 over {len(pm)} proteins: {gain:+.3f} "
            "(goal: >= +0.10)"
        )
    tt = pd.DataFrame(times)
    print("\n== time (s) and memory per protein ==")
    print(tt.round(2).to_string(index=False))
    if lopo_s:
        print(f"PconsC2 LOPO (train on {len(pm) - 1} + predict 1): mean {np.mean(lopo_s):.0f} s per fold")
    for L, n in ((220, 5000), (1000, 5000)):
        print(f"plmDCA cost model L={L}, N={n}: {co.scale_note(L, n)}")

    if a.tf_python and a.deepcon_weights is not None:
        import subprocess
        import tempfile
        import zipfile

        with tempfile.TemporaryDirectory() as td:
            h5 = a.deepcon_weights
            if h5.suffix == ".whl":
                h5 = Path(zipfile.ZipFile(h5).extract("deepcon/weights-rdd-covariance.hdf5", td))
            aln = a.data_dir / "contacts" / "dncon2_dryrun" / "3e7u" / "3e7u.aln"
            ref = Path(td) / "ref.npz"
            subprocess.run([a.tf_python, __file__, "--tf-reference", str(aln), str(h5), str(ref)], check=True,
                           capture_output=True)  # fmt: skip
            r = np.load(ref)
            msa = read_msa(aln)
            feat = co.deepcov_features(msa).numpy().transpose(1, 2, 0)
            ours = deepcon_map(msa, net)
            fd, md = np.abs(feat - r["features"]).max(), np.abs(ours - r["P"]).max()
            print(
                f"\nDEEPCON port vs Keras original on 3e7u: features max |diff| {fd:.2e}, "
                f"map max |diff| {md:.2e}"
            )

    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps({"precision": rows, "times": times, "ccmpred_agreement": agree,
                                 "pconsc2_lopo_s": lopo_s, "args": {k: str(v) for k, v in vars(a).items()}},
                                indent=1, default=float))  # fmt: skip
    print(f"\nwrote {a.out}")


if __name__ == "__main__":
    guarded(main)
