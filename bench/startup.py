"""Start-up time of the CLI: `biodl systems` and `biodl --help` against `import torch` (the
floor of any command that trains or scores), run interleaved in fresh processes.

    python bench/startup.py --reps 7

Prints min / median / max seconds of each and the ratios to `import torch`. `biodl systems` and
`biodl --help` import neither torch nor Lightning (tests/test_cli.py checks that), so they
should take a fraction of `import torch`.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _rows import add_unused_data_dir, positive_int, row, writable_file, write_json  # noqa: E402

COMMANDS = {
    "import torch": [sys.executable, "-c", "import torch"],
    "biodl systems": [sys.executable, "-m", "biodl.cli", "systems"],
    "biodl --help": [sys.executable, "-m", "biodl.cli", "--help"],
    "import biodl.pipeline": [sys.executable, "-c", "import biodl.pipeline"],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=positive_int, default=7)
    ap.add_argument(
        "--json", type=writable_file, default=None, help="also write the rows here (for bench/headline.py)"
    )
    add_unused_data_dir(ap, "no data (it times commands)")
    a = ap.parse_args()
    times: dict[str, list[float]] = {k: [] for k in COMMANDS}
    for _ in range(a.reps):  # interleaved: machine load affects every command alike
        for name, cmd in COMMANDS.items():
            t = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times[name].append(time.perf_counter() - t)
    base = statistics.median(times["import torch"])
    print(f"{'command':24s} {'min':>7s} {'median':>7s} {'max':>7s}  median / import torch")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:24s} {min(ts):7.3f} {med:7.3f} {max(ts):7.3f}  {med / base:.2f}x")
    write_json(
        a.json,
        [
            row(
                "`biodl systems` wall seconds", times["biodl systems"], goal="6", target="< 0.5 s", unit=" s"
            ),
            row("`biodl --help` wall seconds", times["biodl --help"], goal="6", target="< 0.5 s", unit=" s"),
            row(
                "`import torch` wall seconds (the floor of any command that runs a model)",
                times["import torch"],
                unit=" s",
            ),
        ],
    )


if __name__ == "__main__":
    main()
