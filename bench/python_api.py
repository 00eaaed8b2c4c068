"""Scoring from Python: a model loaded once (`biodl.load(RUN).predict(list)`) against the
per-call function (`biodl.api.predict(RUN, FILE)`, which loads the model and reads a file each
call, as the CLI does), on the same small batches of sequences, interleaved.

    python bench/python_api.py --calls 40 --batch 50

Trains a small DeepBind on the bundled REST ChIP-seq fold B (2 epochs, into a temporary
folder) unless `--run` names a run, then scores `--calls` batches of `--batch` held-out
sequences both ways and prints min / median seconds per call and the ratio. Both give the
same probabilities (checked).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _rows import (  # noqa: E402
    add_unused_data_dir,
    fmt,
    guarded,
    positive_int,
    row,
    writable_file,
    write_json,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, default=None, help="a sequence run (default: train a small one)")
    ap.add_argument("--calls", type=positive_int, default=40)
    ap.add_argument("--batch", type=positive_int, default=50)
    ap.add_argument("--json", type=writable_file, default=None, help="also write the rows here")
    add_unused_data_dir(ap, "the bundled REST data")
    a = ap.parse_args()
    if a.run is not None and not a.run.is_dir():
        ap.error(f"--run {a.run}: not a folder (give a run directory of a sequence model)")

    import torch

    import biodl
    from biodl.api import RESOURCES, predict, train
    from biodl.train import TrainConfig

    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="biodl-api-bench-"))
    test = RESOURCES / "encode" / "REST_GM12878_NRSF_HudsonAlpha_B.seq.gz"
    run = a.run
    if run is None:
        run = work / "rest"
        train(
            "deepbind",
            run,
            options={"data": test},
            config=TrainConfig(max_epochs=2, progress=False),
            quiet=True,
        )
    seqs = pd.read_csv(test, sep="\t")["seq"].tolist()
    batches = [seqs[(i * a.batch) % len(seqs) :][: a.batch] for i in range(a.calls)]
    files = []
    for i, b in enumerate(batches):
        f = work / f"b{i}.fa"
        f.write_text("".join(f">seq{j + 1}\n{s}\n" for j, s in enumerate(b)))
        files.append(f)

    t = time.perf_counter()
    model = biodl.load(run)
    load_s = time.perf_counter() - t
    once, per_call = [], []
    for b, f in zip(batches, files, strict=True):  # interleaved: load on the machine hits both alike
        t = time.perf_counter()
        p1 = model.predict(b)
        once.append(time.perf_counter() - t)
        t = time.perf_counter()
        p2 = predict(run, f, quiet=True)
        per_call.append(time.perf_counter() - t)
        np.testing.assert_allclose(p1["prob_Bound"].to_numpy(), p2["prob_Bound"].to_numpy(), rtol=1e-6)
    ratios = [c / o for c, o in zip(per_call, once, strict=True)]
    rows = [
        row("biodl.load(RUN).predict(list) seconds per call", once, unit=" s"),
        row("biodl.api.predict(RUN, FILE) seconds per call", per_call, unit=" s"),
        row("per-call function / loaded model", ratios, note=f"{a.batch} sequences a call"),
    ]
    print(f"{a.calls} calls of {a.batch} sequences, 1 torch thread; biodl.load itself: {load_s:.3f} s")
    for r in rows:
        print(f"{r['measure']:50s} {fmt(r)}")
    write_json(a.json, rows)


if __name__ == "__main__":
    guarded(main)
