"""Sweep throughput: 16 trials of a small digits network on 1 and 2 local workers, and on a
Dask LocalCluster of 2 single-threaded worker processes; trials per minute and what each
executor adds to a trial.

    python bench/sweep.py               # the table (Markdown), progress on stderr
    python bench/sweep.py --epochs 20   # longer trials: the fixed costs weigh less
    python bench/sweep.py --no-dask     # local workers only
    python bench/sweep.py --repeat 5    # each executor 5 times, round robin (default 3)

Run it from the repository root. Wall time includes starting the workers. "in-trial" is the
sum of the trials' own seconds (loading data, training, evaluating, plots), as sweep.jsonl has
them; "overhead per trial" is (wall x workers - in-trial) / trials: what a worker spends per
trial outside the trial itself (start-up, dispatch, the study's bookkeeping, waiting at the
end for the last trials).

Each executor runs ``--repeat`` times, the executors taking turns (1 worker, 2 workers, Dask,
1 worker, ...) so that a slow spell of a shared machine hits them alike; the table shows each
one's fastest run (as ``timeit`` reports the best of its repeats) and the walls of all its
runs, so the spread is in plain sight.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bpnn.sweep.runner import read_records, run_sweep
from bpnn.sweep.spec import load_sweep

BASE = """\
name: bench-digits
seed: 0
data: {{source: digits}}
model: {{hidden: [32], activation: relu}}
optimizer: {{name: adam, lr: 0.01}}
train: {{epochs: {epochs}, batch_size: 64}}
"""
SWEEP = """\
base: base.yaml
metric: val_accuracy
method: grid
space:
  optimizer.lr: [0.001, 0.003, 0.01, 0.03]
  model.hidden: [[16], [32], [64], [32, 16]]
"""


def measure(folder: Path, name: str, **executor: object) -> dict[str, float]:
    spec = load_sweep(folder / "sweep.yaml")
    if (folder / name).exists():  # an earlier repeat's sweep: start afresh
        shutil.rmtree(folder / name)
    started = time.perf_counter()
    outcome = run_sweep(spec, folder / name, **executor)  # type: ignore[arg-type]
    wall = time.perf_counter() - started
    records = list(read_records(folder / name / "sweep.jsonl").values())
    assert all(r["status"] == "completed" for r in records), records
    in_trial = sum(r["seconds"] for r in records)
    workers = int(executor.get("workers") or 2)
    n = len(records)
    print(f"{name}: {n} trials in {wall:.1f}s", file=sys.stderr)
    return {
        "trials": n,
        "wall": wall,
        "per_minute": 60 * n / wall,
        "in_trial": in_trial,
        "overhead": (wall * workers - in_trial) / n,
        "ran": outcome.ran,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10, help="epochs per trial (default 10)")
    parser.add_argument("--no-dask", action="store_true", help="skip the Dask LocalCluster")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of each executor, round robin (default 3)"
    )
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    labels = {"local-1": "local, 1 worker", "local-2": "local, 2 workers"}
    if not args.no_dask:
        labels["dask-2"] = "dask LocalCluster, 2 workers"
    runs: dict[str, list[dict[str, float]]] = {label: [] for label in labels.values()}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "base.yaml").write_text(BASE.format(epochs=args.epochs), encoding="utf-8")
        (folder / "sweep.yaml").write_text(SWEEP, encoding="utf-8")
        for _ in range(args.repeat):
            runs[labels["local-1"]].append(measure(folder, "local-1", workers=1))
            runs[labels["local-2"]].append(measure(folder, "local-2", workers=2))
            if args.no_dask:
                continue
            from distributed import LocalCluster

            # started for its run only: its idle processes would share the cores with the others
            with LocalCluster(
                n_workers=2,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
            ) as cluster:
                dask = measure(folder, "dask-2", dask_address=cluster.scheduler_address)
            runs[labels["dask-2"]].append(dask)
    rows = [(label, min(done, key=lambda r: r["wall"])) for label, done in runs.items()]
    one = rows[0][1]["per_minute"]
    print(
        f"{date.today()}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}; "
        f"16 trials of digits 64-h-10 (grid lr x hidden), {args.epochs} epochs, batch 64; "
        f"best of {args.repeat} runs each\n"
    )
    print(
        "| executor | wall (s) | trials/min | vs 1 worker | in-trial (s) | overhead/trial (s) "
        "| walls of all runs (s) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for label, row in rows:
        walls = ", ".join(f"{r['wall']:.1f}" for r in runs[label])
        print(
            f"| {label} | {row['wall']:.1f} | {row['per_minute']:.1f} | "
            f"{row['per_minute'] / one:.2f}x | {row['in_trial']:.1f} | {row['overhead']:.2f} "
            f"| {walls} |"
        )


if __name__ == "__main__":
    main()
