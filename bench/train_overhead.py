"""Training-engine overhead: ``biodl train`` per epoch against a minimal hand-written PyTorch
loop on the same model, data size, batch, optimiser and threads (issue 18, goal 1).

Data: the bundled ENCODE REST (NRSF) GM12878 peaks of the demo (folds A+C, 6,406 positives plus
as many dinucleotide-shuffled negatives, 101 bp), DeepBind with the recipe's defaults (batch 64,
AdamW lr 3e-3, weight decay 1e-4), 10% validation scored every epoch by both.

biodl's epoch time is ``(T(E) - T(1)) / (E - 1)`` for two ``biodl.pipeline.train`` runs of 1 and
``E`` epochs (start-up, negatives, test scoring and the report cancel out; early stopping cannot
trigger). The hand loop is ``DataLoader(TensorDataset)`` + forward + BCE + backward + AdamW step,
and a validation forward with an AUROC each epoch, timed per epoch. Runs are interleaved and
repeated; the ratio biodl / hand prints as min / median / max over the repeats.

    nice -n 10 python bench/train_overhead.py --repeats 3 --epochs 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from biodl.demo import ENCODE_DIR

REST = ENCODE_DIR / "REST_GM12878_NRSF_HudsonAlpha_AC.seq.gz"


def _biodl_run(epochs: int, out: Path, seed: int) -> float:
    from biodl import pipeline
    from biodl.registry import get_recipe
    from biodl.train import TrainConfig

    cfg = TrainConfig.for_recipe(
        get_recipe("deepbind").train_defaults,
        max_epochs=epochs,
        patience=100,
        device="cpu",
        progress=False,
        seed=seed,
        resume=False,
    )
    t0 = time.perf_counter()
    pipeline.train("deepbind", out, options={"data": str(REST)}, config=cfg, quiet=True)
    return time.perf_counter() - t0


def _hand_data(seed: int):
    from biodl.encode import one_hot_batch
    from biodl.kinds.sequences.io import read_sequences
    from biodl.shuffle import shuffle_negatives

    t = read_sequences(REST, require_labels=False)
    pos = [s.upper() for s in t.seqs]
    neg = shuffle_negatives(pos, seed)
    x = torch.from_numpy(one_hot_batch(pos + neg))
    y = torch.cat([torch.ones(len(pos)), torch.zeros(len(neg))])[:, None]
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    nv = len(x) // 10
    return (x[idx[nv:]], y[idx[nv:]]), (x[idx[:nv]], y[idx[:nv]])


def _hand_epochs(epochs: int, seed: int, data) -> list[float]:
    from sklearn.metrics import roc_auc_score
    from torch.utils.data import DataLoader, TensorDataset

    from biodl.registry import get_recipe

    r = get_recipe("deepbind")
    torch.manual_seed(seed)
    model = r.build(**r.model_defaults)
    d = r.train_defaults
    opt = torch.optim.AdamW(model.parameters(), lr=d["lr"], weight_decay=d["weight_decay"])
    (xt, yt), (xv, yv) = data
    loader = DataLoader(TensorDataset(xt, yt), batch_size=d["batch_size"], shuffle=True)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        model.train()
        for xb, yb in loader:
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            pv = torch.cat([model(xv[i : i + 512]) for i in range(0, len(xv), 512)])
        roc_auc_score(yv.numpy().ravel(), pv.numpy().ravel())
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=3, help="epochs of the longer biodl run (>= 2)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.epochs < 2:
        sys.exit("--epochs must be at least 2")
    torch.set_num_threads(1)
    data = _hand_data(args.seed)
    steps = -(-len(data[0][0]) // 64)
    print(f"[bench] {len(data[0][0])} training / {len(data[1][0])} validation sequences, {steps} steps/epoch")
    ratios, ours, hand = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):
            t1 = _biodl_run(1, Path(tmp) / f"a{rep}", args.seed)
            te = _biodl_run(args.epochs, Path(tmp) / f"b{rep}", args.seed)
            b = (te - t1) / (args.epochs - 1)
            h = statistics.median(_hand_epochs(args.epochs, args.seed, data))
            ours.append(b)
            hand.append(h)
            ratios.append(b / h)
            print(
                f"[bench] repeat {rep + 1}: biodl {b:.2f} s/epoch, hand loop {h:.2f} s/epoch, "
                f"ratio {b / h:.2f}x"
            )
    print(
        "\n| measure | min | median | max |\n|---|---|---|---|\n"
        f"| biodl s/epoch | {min(ours):.2f} | {statistics.median(ours):.2f} | {max(ours):.2f} |\n"
        f"| hand loop s/epoch | {min(hand):.2f} | {statistics.median(hand):.2f} | {max(hand):.2f} |\n"
        f"| ratio biodl / hand (goal <= 1.10) | {min(ratios):.2f} | {statistics.median(ratios):.2f} | "
        f"{max(ratios):.2f} |"
    )
    print(f"\ntorch {torch.__version__}, 1 thread, {args.repeats} repeats, seed {args.seed}")


if __name__ == "__main__":
    main()
