"""Table loading benchmark: bpnn's CSV source against ``pandas.read_csv`` of the same files.

Run from the repository root::

    python bench/data.py               # the three files below (writes ~700 MB under --dir)
    python bench/data.py --quick       # 30,000 rows only, no 3,000,000-row file
    python bench/data.py --markdown    # Markdown tables with date, CPU and versions on top

Files, written once into ``--dir`` (default: a folder in the system's temporary directory) with
a fixed seed: 300,000 and 3,000,000 rows of 20 numeric features (6 decimals) plus an integer
label, and 300,000 rows of 15 numeric and 5 categorical (string) columns plus a label.

Every measurement runs in a fresh child process that imports pandas, scikit-learn and bpnn
first, then reports the wall time of the reading alone and its peak resident memory
(``ru_maxrss``, libraries included), so nothing one measurement left behind weighs on the next:

- ``pandas.read_csv(path)``: the peer, with its defaults;
- ``bpnn load``: ``bpnn.data.load_dataset`` of a ``source: csv`` config: read, encode (one-hot,
  imputation), split, scale, float32: everything before the first epoch;
- ``bpnn read``: only the reading and encoding (the CSV source's ``load`` and the encoding of
  every row), the part that competes with ``pandas.read_csv``;
- peak memory of ``bpnn train`` (one epoch, 20-64-1 network) on the 300,000-row file, measured
  as the issue asks: ``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` of a parent that ran it,
  against the same for a bare ``python -c pass`` and for ``python -c "import bpnn.run"`` (the
  libraries a run imports), compared with 3x (float32 training data + the model).

Timings are the best of ``--repeat`` runs (5; the 3,000,000-row file: 1), the readers taking
turns; informative only, nothing here asserts on them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
N_NUMERIC = 20
CATEGORIES = {  # the categorical columns of the mixed file and their values
    "colour": ["red", "green", "blue", "yellow"],
    "size": ["S", "M", "L", "XL"],
    "shape": ["circle", "square", "triangle"],
    "city": [f"city{i}" for i in range(12)],
    "grade": ["A", "B", "C", "D", "E"],
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- the files ---------------------------------------------------------------------------------


def write_numeric(path: Path, rows: int, seed: int = 0) -> None:
    """``rows`` rows of 20 normal features (6 decimals) and a 0/1 label from a linear rule."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    chunk = 500_000
    with path.open("w") as file:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            X = rng.standard_normal((n, N_NUMERIC))
            label = (X[:, :5].sum(axis=1) > 0).astype(int)
            frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(N_NUMERIC)])
            frame["label"] = label
            frame.to_csv(file, index=False, header=start == 0, float_format="%.6f")


def write_mixed(path: Path, rows: int, seed: int = 1) -> None:
    """15 numeric and 5 string columns (``CATEGORIES``) and a 0/1 label."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.standard_normal((rows, 15)), columns=[f"x{i}" for i in range(15)])
    for name, values in CATEGORIES.items():
        frame[name] = np.array(values)[rng.integers(0, len(values), rows)]
    frame["label"] = ((frame["x0"] > 0) ^ (frame["colour"] == "red")).astype(int)
    frame.to_csv(path, index=False, float_format="%.6f")


# --- measurements in child processes -----------------------------------------------------------

CHILD = """
import json, resource, sys, time
import pandas, sklearn.impute, sklearn.model_selection, sklearn.preprocessing
from bpnn.config import validate
from bpnn.data import SOURCES, load_dataset
from bpnn.data.table import TableEncoding
start = time.perf_counter()
{body}
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"seconds": seconds, "maxrss_kb": peak}}))
"""

BODIES = {
    "pandas.read_csv": "import pandas\nframe = pandas.read_csv({path!r})",
    "bpnn read": textwrap.dedent(
        """
        config = validate({{"data": {{"source": "csv", "path": {path!r}}}}}).data
        raw = SOURCES["csv"].load(config, seed=0, log=lambda m: None)
        p = raw.plan
        encoding = TableEncoding.fit(raw.table, p.kinds, missing=p.missing)
        X, _ = encoding.transform(raw.table, raw.name)
        """
    ),
    "bpnn load": textwrap.dedent(
        """
        config = validate({{"data": {{"source": "csv", "path": {path!r}}}}}).data
        data = load_dataset(config, task="binary", seed=0)
        """
    ),
}


def child(body: str) -> dict[str, float]:
    """Run ``body`` in a fresh interpreter that has imported pandas, scikit-learn and bpnn
    already: the time is the reading alone; the peak memory includes the libraries."""
    code = CHILD.format(body=body)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise RuntimeError(done.stderr.strip().splitlines()[-1])
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure_round_robin(path: Path, repeat: int) -> dict[str, dict[str, float]]:
    """Each reader's best time (and that run's peak memory) over ``repeat`` runs, the readers
    taking turns (pandas, read, load, pandas, ...) so that a slow spell of a shared machine
    hits them alike."""
    runs: dict[str, list[dict[str, float]]] = {what: [] for what in BODIES}
    for _ in range(repeat):
        for what, body in BODIES.items():
            runs[what].append(child(body.format(path=str(path))))
    return {what: min(done, key=lambda r: r["seconds"]) for what, done in runs.items()}


def peak_of_command(argv: list[str]) -> float:
    """Peak RSS (MB) of ``argv`` as ``getrusage(RUSAGE_CHILDREN)`` of a parent that ran it."""
    wrapper = (
        "import resource, subprocess, sys\n"
        f"subprocess.run({argv!r}, check=True, stdout=subprocess.DEVNULL)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    done = subprocess.run(
        [sys.executable, "-c", wrapper], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return int(done.stdout.strip()) / 1024


def train_memory(path: Path, workdir: Path) -> dict[str, float]:
    """Peak memory of ``bpnn train`` for one epoch on ``path``, and the two baselines."""
    config = workdir / "bench-train.yaml"
    config.write_text(
        f"name: bench\ndata:\n  source: csv\n  path: {path}\n  target: label\n"
        "model:\n  hidden: [64]\nloss: binary_cross_entropy\n"
        "train:\n  epochs: 1\n  batch_size: 256\n"
    )
    out = Path(tempfile.mkdtemp(dir=workdir, prefix="run-"))
    train = peak_of_command(
        [sys.executable, "-m", "bpnn", "train", str(config), "--out", str(out), "--quiet"]
    )
    bare = peak_of_command([sys.executable, "-c", "pass"])
    imports = peak_of_command([sys.executable, "-c", "import bpnn.run, pandas, sklearn"])
    rows = sum(1 for _ in path.open()) - 1
    n_train = round(rows * 0.8) - round(round(rows * 0.8) * 0.1)
    data_mb = (rows * N_NUMERIC * 4 + rows * 8) / 2**20  # float32 features of every split
    model_mb = (N_NUMERIC * 64 + 64 + 64 + 1) * 4 / 2**20
    return {
        "train": train,
        "bare": bare,
        "imports": imports,
        "data_mb": data_mb,
        "model_mb": model_mb,
        "n_train": n_train,
    }


# --- the report --------------------------------------------------------------------------------


def table(rows: list[list[str]], header: list[str], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(fmt.format(*r) for r in [header, *rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "bpnn-bench")
    parser.add_argument("--quick", action="store_true", help="30,000 rows, no 3M-row file")
    parser.add_argument(
        "--repeat", type=int, default=5, help="runs per measurement, round robin (best)"
    )
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)

    small = 30_000 if args.quick else 300_000
    files = [(f"numeric_{small}.csv", small, write_numeric)]
    if not args.quick:
        files.append(("numeric_3000000.csv", 3_000_000, write_numeric))
    files.append((f"categorical_{small}.csv", small, write_mixed))
    for name, rows, write in files:
        path = args.dir / name
        if not path.exists():
            log(f"writing {path} ({rows:,} rows)")
            write(path, rows)

    results = []
    for name, rows, _ in files:
        path = args.dir / name
        log(f"measuring {name}")
        repeat = 1 if rows > 1_000_000 else args.repeat
        runs = measure_round_robin(path, repeat)
        results.append((name, rows, path.stat().st_size, runs))

    log("measuring the peak memory of bpnn train")
    memory = train_memory(args.dir / files[0][0], args.dir)

    if args.markdown:
        import pandas
        import sklearn

        cpu = platform.processor() or platform.machine()
        print(
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {cpu}, "
            f"{os.cpu_count()} cores, Python {platform.python_version()}, NumPy "
            f"{np.__version__}, pandas {pandas.__version__}, scikit-learn {sklearn.__version__}\n"
        )
    rows_out = []
    for name, rows, size, runs in results:
        peer = runs["pandas.read_csv"]
        for what, run in runs.items():
            rows_out.append(
                [
                    name if what == "pandas.read_csv" else "",
                    f"{rows:,}" if what == "pandas.read_csv" else "",
                    f"{size / 2**20:.0f} MB" if what == "pandas.read_csv" else "",
                    what,
                    f"{run['seconds']:.2f}",
                    f"{run['seconds'] / peer['seconds']:.2f}x",
                    f"{run['maxrss_kb'] / 1024:.0f}",
                ]
            )
    print(
        table(
            rows_out,
            ["file", "rows", "size", "reader", "seconds", "vs pandas", "peak MB"],
            args.markdown,
        )
    )
    budget = 3 * (memory["data_mb"] + memory["model_mb"])
    print()
    print(
        table(
            [
                ["bpnn train, 1 epoch", f"{memory['train']:.0f}", ""],
                ["bare interpreter (python -c pass)", f"{memory['bare']:.0f}", ""],
                ["imports only (bpnn.run, pandas, sklearn)", f"{memory['imports']:.0f}", ""],
                [
                    "train - bare",
                    f"{memory['train'] - memory['bare']:.0f}",
                    f"{(memory['train'] - memory['bare']) / budget:.2f} of the budget",
                ],
                [
                    "train - imports",
                    f"{memory['train'] - memory['imports']:.0f}",
                    f"{(memory['train'] - memory['imports']) / budget:.2f} of the budget",
                ],
                [
                    "budget: 3 x (float32 data + model)",
                    f"{budget:.0f}",
                    f"data {memory['data_mb']:.1f} MB, model {memory['model_mb']:.2f} MB",
                ],
            ],
            [f"peak memory, {files[0][0]}", "MB", "note"],
            args.markdown,
        )
    )


if __name__ == "__main__":
    main()
