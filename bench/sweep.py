"""Sweep throughput: 16 trials of a small digits network on 1 and 2 local workers, and on a
Dask LocalCluster of 2 single-threaded worker processes; trials per minute and what each
executor adds to a trial.

    python bench/sweep.py               # the table (Markdown), progress on stderr
    python bench/sweep.py --epochs 20   # longer trials: the fixed costs weigh less
    python bench/sweep.py --no-dask     # local workers only

Run it from the repository root. Wall time includes starting the workers. "in-trial" is the
sum of the trials' own seconds (loading data, training, evaluating, plots), as sweep.jsonl has
them; "overhead per trial" is (wall x workers - in-trial) / trials: what a worker spends per
trial outside the trial itself (start-up, dispatch, the study's bookkeeping, waiting at the
end for the last trials).
"""

from __future__ import annotations

import argparse
import os
import platform
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
    args = parser.parse_args()
    rows: list[tuple[str, dict[str, float]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "base.yaml").write_text(BASE.format(epochs=args.epochs), encoding="utf-8")
        (folder / "sweep.yaml").write_text(SWEEP, encoding="utf-8")
        rows.append(("local, 1 worker", measure(folder, "local-1", workers=1)))
        rows.append(("local, 2 workers", measure(folder, "local-2", workers=2)))
        if not args.no_dask:
            from distributed import LocalCluster

            with LocalCluster(
                n_workers=2,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
            ) as cluster:
                rows.append(
                    (
                        "dask LocalCluster, 2 workers",
                        measure(folder, "dask-2", dask_address=cluster.scheduler_address),
                    )
                )
    one = rows[0][1]["per_minute"]
    print(
        f"{date.today()}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}; "
        f"16 trials of digits 64-h-10 (grid lr x hidden), {args.epochs} epochs, batch 64\n"
    )
    print("| executor | wall (s) | trials/min | vs 1 worker | in-trial (s) | overhead/trial (s) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for label, row in rows:
        print(
            f"| {label} | {row['wall']:.1f} | {row['per_minute']:.1f} | "
            f"{row['per_minute'] / one:.2f}x | {row['in_trial']:.1f} | {row['overhead']:.2f} |"
        )


if __name__ == "__main__":
    main()
