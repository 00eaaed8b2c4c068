"""CellCnn training time with the multi-cell inputs kept in memory vs drawn item by item.

``MultiCellDataset`` draws every multi-cell input from a seed of its own, so the inputs are the
same in every epoch. Kept in memory (the default when they take at most
``MultiCellDataset.MAX_BYTES``), they are drawn once; drawn item by item (``max_bytes=0``, the
path for larger sets) each epoch gathers them again. Both paths train the same restarts on the
Bodenmiller 2012 BCR-XL samples here and print the time per epoch, the ratio and whether the
restarts' validation losses are identical.

    python bench/cellcnn_inputs.py [--data-dir ../shared/data] [--ncell 2000] [--epochs 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from biodl.kinds.cells.restarts import CellCnnConfig, MultiCellDataset, train_cellcnn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _rows import positive_int  # noqa: E402
from cellcnn import bodenmiller, quiet  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--ncell", type=int, default=2000)
    ap.add_argument("--nsubset", type=int, default=1000)
    ap.add_argument("--nrun", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--threads", type=positive_int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    quiet()
    data = bodenmiller(args.data_dir)
    if data is None:
        return 1
    ss, y, _ = data
    cfg = CellCnnConfig(
        ncell=args.ncell,
        nsubset=args.nsubset,
        nrun=args.nrun,
        max_epochs=args.epochs,
        patience=args.epochs,
        batch_size=args.batch,
    )
    n_inputs = 2 * args.nsubset
    print(
        f"# {len(ss)} samples, {sum(map(len, ss.cells)):,} cells, {len(ss.markers)} markers; "
        f"ncell {args.ncell}, "
        f"{n_inputs} training inputs, {args.nrun} restarts x {args.epochs} epochs, batch {args.batch}, "
        f"{args.threads} thread(s); kept in memory the inputs take "
        f"{1.25 * n_inputs * args.ncell * len(ss.markers) * 4 / 2**20:.0f} MiB (training + validation)"
    )
    res = {}
    default_cap = MultiCellDataset.MAX_BYTES
    for name, cap in (("drawn item by item", 0), ("kept in memory", default_cap)):
        MultiCellDataset.MAX_BYTES = cap
        with tempfile.TemporaryDirectory() as d:
            t = time.perf_counter()
            _, df = train_cellcnn(ss.cells, y, 2, d, cfg, seed=0)
            sec = time.perf_counter() - t
        epochs = int(df["epochs_run"].sum())
        res[name] = (sec, epochs, df["valid_loss"].to_numpy())
        print(
            f"{name:>20}: {sec:6.1f} s for {epochs} epochs = {sec / epochs:.2f} s per epoch (set-up included)"
        )
    (a, ea, la), (b, eb, lb) = res["drawn item by item"], res["kept in memory"]
    same = bool(np.array_equal(la, lb))
    print(f"speed-up (per epoch): {(a / ea) / (b / eb):.2f}x; identical restarts: {same}")
    return 0


if __name__ == "__main__":
    from biodl.errors import BiodlInputError

    try:
        sys.exit(main())
    except BiodlInputError as e:  # a sample file the table names is missing or malformed
        sys.exit(f"error: {e}")
