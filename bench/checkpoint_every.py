"""How much of a long run of a tiny network goes to checkpoints: wall time of `run_training` of
1,000 epochs of a 2-4-2 tanh network on 6 XOR points (`n_samples: 8`, 2 held out for testing,
no validation split, so best.npz follows the training loss, which improves nearly every epoch)
for several `train.checkpoint_every`, against the epochs' own computing time.

    python bench/checkpoint_every.py [--epochs 1000] [--repeat 2]

Prints a Markdown table; never asserts. The peer is `checkpoint_every: 1`, each run's ratio is
its wall time over that one's. Imports, numba compilation and the first run are warmed up first.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

TOY = {
    "name": "toy",
    "data": {
        "source": "xor",
        "options": {"n_samples": 8},
        "test_fraction": 0.25,
        "val_fraction": 0.0,
    },
    "model": {"hidden": [4], "activation": "tanh"},
    "optimizer": {"name": "adam", "lr": 0.01},
}


def run(every: int, epochs: int, folder: Path) -> tuple[float, float]:
    """Wall seconds of one run and the sum of its epochs' `epoch_seconds`."""
    from bpnn.config import validate
    from bpnn.run import run_training

    config = validate(
        {**TOY, "train": {"epochs": epochs, "batch_size": 4, "checkpoint_every": every}}
    )
    started = time.perf_counter()
    run_dir, _ = run_training(config, folder)
    wall = time.perf_counter() - started
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    shutil.rmtree(run_dir)
    return wall, sum(row["epoch_seconds"] for row in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--every", type=int, nargs="+", default=[1, 10, 100, 1000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run(1, 5, Path(tmp) / "warm-up")
        results = {}
        for every in args.every:
            runs = [
                run(every, args.epochs, Path(tmp) / f"run-{every}-{i}") for i in range(args.repeat)
            ]
            results[every] = (
                statistics.median(w for w, _ in runs),
                statistics.median(c for _, c in runs),
            )
    machine = platform.processor() or platform.machine()
    print(
        f"{date.today()}, {machine}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{args.epochs} epochs, median of {args.repeat}"
    )
    print()
    print("| checkpoint_every | wall s | epochs' computing s | wall / checkpoint_every 1 |")
    print("|---|---|---|---|")
    peer = results[args.every[0]][0]
    for every, (wall, compute) in results.items():
        print(f"| {every} | {wall:.2f} | {compute:.2f} | {wall / peer:.2f} |")


if __name__ == "__main__":
    main()
