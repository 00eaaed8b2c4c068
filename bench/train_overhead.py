"""Training-engine overhead: ``biodl train`` per epoch against a minimal hand-written PyTorch
loop on the same model, data size, batch, optimiser and threads (issue 18, goal 1).

Two models:

* ``--model deepbind`` (default): the bundled ENCODE REST (NRSF) GM12878 peaks of the demo (folds
  A+C, 6,406 positives plus as many dinucleotide-shuffled negatives, 101 bp), DeepBind with the
  recipe's defaults (batch 64, AdamW lr 3e-3, weight decay 1e-4), 10% validation;
* ``--model deepsea``: a DeepSEA-size network (the ``deepsea`` recipe, 919 outputs, 1000 bp;
  about 52M parameters) on ``--n`` random sequences with random sparse labels (the content does
  not matter for speed), 10% validation.

biodl's epoch time is ``(T(E) - T(1)) / (E - 1)`` for two ``biodl.pipeline.train`` runs of 1 and
``E`` epochs (start-up, negatives, test scoring and the report cancel out; early stopping cannot
trigger); it includes everything biodl does per epoch (validation with its metrics, two
checkpoints with the optimiser state for exact resume, history.csv). The hand loop is
``DataLoader(TensorDataset)`` + forward + BCE + backward + AdamW step, and a validation forward
with an AUROC each epoch, on the same model (built from the run's ``run.json``) and the same
numbers of training and validation sequences. Times are CPU seconds of this process (1 torch
thread: less sensitive to other jobs than wall time). Runs are interleaved and repeated; the
ratio biodl / hand prints as min / median / max over the repeats.

    nice -n 10 python bench/train_overhead.py --repeats 3 --epochs 4
    nice -n 10 python bench/train_overhead.py --model deepsea --n 1280 --repeats 2 --epochs 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _rows import add_unused_data_dir, guarded, int_at_least, positive_int, row, writable_file, write_json  # noqa: E402

from biodl.demo import ENCODE_DIR  # noqa: E402

REST = ENCODE_DIR / "REST_GM12878_NRSF_HudsonAlpha_AC.seq.gz"
DEEPSEA_OUTPUTS, DEEPSEA_LEN = 919, 1000


def _write_deepsea_table(path: Path, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    bases = np.frombuffer(b"ACGT", dtype="S1")
    with open(path, "w") as f:
        f.write("id\tsequence\t" + "\t".join(f"f{k}" for k in range(DEEPSEA_OUTPUTS)) + "\n")
        for i in range(n):
            seq = rng.choice(bases, DEEPSEA_LEN).tobytes().decode()
            lab = (rng.random(DEEPSEA_OUTPUTS) < 0.05).astype(np.int8)
            f.write(f"s{i}\t{seq}\t" + "\t".join(map(str, lab)) + "\n")


def _biodl_run(system: str, data: dict, epochs: int, out: Path, seed: int, **config) -> float:
    """CPU seconds of one ``biodl.pipeline.train`` (``config``: other TrainConfig fields)."""
    from biodl import pipeline
    from biodl.registry import get_recipe
    from biodl.train import TrainConfig

    cfg = TrainConfig.for_recipe(
        get_recipe(system).train_defaults,
        max_epochs=epochs,
        patience=100,
        device="cpu",
        progress=False,
        seed=seed,
        resume=False,
        **config,
    )
    t0 = time.process_time()
    pipeline.train(system, out, options=data, config=cfg, quiet=True)
    return time.process_time() - t0


def _hand_data(system: str, data: dict, run_json: dict, seed: int):
    """Training and validation tensors of the sizes biodl used."""
    from biodl.encode import one_hot_batch
    from biodl.kinds.sequences.io import read_sequences

    n_train, n_valid = run_json["splits"]["n_train"], run_json["splits"]["n_valid"]
    if system == "deepbind":
        from biodl.shuffle import shuffle_negatives

        t = read_sequences(data["data"], require_labels=False)
        pos = [s.upper() for s in t.seqs]
        seqs = pos + shuffle_negatives(pos, seed)
        y = torch.cat([torch.ones(len(pos)), torch.zeros(len(seqs) - len(pos))])[:, None]
    else:
        t = read_sequences(data["data"], label_cols=data["label_col"])
        seqs, y = t.seqs, torch.from_numpy(np.asarray(t.labels, np.float32))
    x = torch.from_numpy(one_hot_batch(seqs))
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    tr, va = idx[:n_train], idx[n_train : n_train + n_valid]
    return (x[tr], y[tr]), (x[va], y[va])


def _hand_epochs(system: str, run_json: dict, epochs: int, seed: int, data) -> list[float]:
    from sklearn.metrics import roc_auc_score
    from torch.utils.data import DataLoader, TensorDataset

    from biodl.registry import get_recipe

    r = get_recipe(system)
    torch.manual_seed(seed)
    model = r.build(**run_json["model_kwargs"])
    d = run_json["training"]
    opt = torch.optim.AdamW(model.parameters(), lr=d["lr"], weight_decay=d["weight_decay"])
    (xt, yt), (xv, yv) = data
    loader = DataLoader(TensorDataset(xt, yt), batch_size=d["batch_size"], shuffle=True)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    times = []
    for _ in range(epochs):
        t0 = time.process_time()
        model.train()
        for xb, yb in loader:
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            pv = torch.cat([model(xv[i : i + 256]) for i in range(0, len(xv), 256)])
        yv_np, pv_np = yv.numpy(), pv.numpy()
        for k in range(yv_np.shape[1]):
            if 0 < yv_np[:, k].sum() < len(yv_np):
                roc_auc_score(yv_np[:, k], pv_np[:, k])
        times.append(time.process_time() - t0)
    return times


def run(
    system: str = "deepbind", repeats: int = 3, epochs: int = 4, seed: int = 0, n: int = 1280, log=print
) -> list[dict]:
    """Interleaved biodl / hand-loop epochs; returns the rows (per-epoch CPU seconds, ratio)."""
    if epochs < 2:
        raise ValueError("epochs must be at least 2")
    torch.set_num_threads(1)
    ratios, ours, hand = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        if system == "deepbind":
            data = {"data": str(REST)}
        elif system == "deepsea":
            table = Path(tmp) / "deepsea_random.tsv"
            _write_deepsea_table(table, n, seed)
            data = {"data": str(table), "label_col": "f*"}
        else:
            raise ValueError(f"unknown model {system!r} (deepbind, deepsea)")
        hand_data = None
        for rep in range(repeats):
            t1 = _biodl_run(system, data, 1, Path(tmp) / f"a{rep}", seed)
            te = _biodl_run(system, data, epochs, Path(tmp) / f"b{rep}", seed)
            run_json = json.loads((Path(tmp) / f"b{rep}" / "run.json").read_text())
            if hand_data is None:
                hand_data = _hand_data(system, data, run_json, seed)
                steps = -(-len(hand_data[0][0]) // run_json["training"]["batch_size"])
                log(
                    f"[bench] {system}: {len(hand_data[0][0])} training / {len(hand_data[1][0])} "
                    f"validation sequences, {steps} steps/epoch"
                )
            b = (te - t1) / (epochs - 1)
            h = statistics.median(_hand_epochs(system, run_json, epochs, seed, hand_data))
            ours.append(b)
            hand.append(h)
            ratios.append(b / h)
            log(
                f"[bench] repeat {rep + 1}: biodl {b:.2f} CPU-s/epoch, hand loop {h:.2f} CPU-s/epoch, "
                f"ratio {b / h:.2f}x"
            )
    name = "DeepBind" if system == "deepbind" else "DeepSEA-size"
    return [
        row(f"{name}: biodl train CPU-s/epoch", ours, unit=" s"),
        row(f"{name}: hand loop CPU-s/epoch", hand, unit=" s"),
        row(f"training overhead, {name} (biodl / hand loop)", ratios, goal="1", target="<= 1.10x"),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="deepbind", choices=("deepbind", "deepsea"))
    ap.add_argument("--repeats", type=positive_int, default=3)
    ap.add_argument("--epochs", type=int_at_least(2), default=3, help="epochs of the longer biodl run (>= 2)")
    ap.add_argument("--n", type=positive_int, default=1280, help="random sequences for --model deepsea")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--json", type=writable_file, default=None, help="also write the rows here (for bench/headline.py)"
    )
    add_unused_data_dir(ap, "the bundled REST data or random sequences")
    args = ap.parse_args()
    if args.epochs < 2:
        sys.exit("error: --epochs must be at least 2")
    rows = run(args.model, args.repeats, args.epochs, args.seed, args.n)
    print("\n| measure | min | median | max |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['measure']} | {r['min']:.2f} | {r['median']:.2f} | {r['max']:.2f} |")
    print(f"\ntorch {torch.__version__}, 1 thread, {args.repeats} repeats, seed {args.seed}")
    write_json(args.json, rows)


if __name__ == "__main__":
    guarded(main)
