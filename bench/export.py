"""Prediction throughput of a bpnn model and its exported copies on MNIST's 10,000 test images.

Run from the repository root::

    python bench/export.py                          # trains 784-256-128-10 relu for 1 epoch
    python bench/export.py --checkpoint runs/mnist/checkpoints/best.npz
    python bench/export.py --mnist ../shared/data/mnist --repeats 5
    python bench/export.py --penguins               # a table: raw rows, strings and blanks

Side by side, each given the same raw float32 pixels (every copy holds the input scaling):
bpnn (``Model.predict``), onnxruntime (the ``--format onnx`` file), PyTorch (the ``Sequential``
that ``--format torch`` prints, eager mode, under ``torch.no_grad``) and scikit-learn (the
``--format sklearn`` pipeline's ``predict_proba``). Each runtime keeps its default thread count.
Batch 1 is 10,000 calls of one image; batch 1000 is 10 calls. The table shows predictions per
second (best of ``--repeats`` passes over the test set) and the largest difference from bpnn's
probabilities. A runtime that is not installed is left out. Nothing here asserts on speed.

``--penguins`` measures the table encoding instead: a model trained on examples/penguins.yaml
(60 epochs), given examples/penguins.csv's raw rows (strings, NA cells) as each copy takes
them (batch 1: the 344 rows, a call each; batch 1000: the rows 30 times over, 10,320): bpnn
``Model.predict`` and scikit-learn's pipeline the ``DataFrame``, onnxruntime one array per raw
column (text, or float32 with NaN), torch ``model(encode(frame))`` (the encoding in plain
Python).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the bpnn of this checkout, not an installed one

import bpnn  # noqa: E402
from bpnn.export import export_checkpoint  # noqa: E402

DEFAULT_MNIST = ROOT.parent / "shared" / "data" / "mnist"
PENGUINS = ROOT / "examples" / "penguins.yaml"
BATCHES = (1, 1000)

Predict = Callable[[Any], np.ndarray]


def train_mnist(mnist: Path, folder: Path) -> Path:
    """A 784-256-128-10 ReLU network trained for one epoch through ``bpnn train``."""
    command = [
        sys.executable,
        "-m",
        "bpnn",
        "train",
        str(ROOT / "configs" / "mnist.yaml"),
        "--out",
        str(folder / "run"),
        "--quiet",
        "--set",
        f"data.path={mnist}",
        "--set",
        "train.epochs=1",
        "--set",
        "model.dropout=0.0",
    ]
    subprocess.run(command, cwd=ROOT, check=True, stdout=sys.stderr)
    return folder / "run" / "checkpoints" / "best.npz"


def train_penguins(folder: Path) -> Path:
    """examples/penguins.yaml as shipped (16 relu units, 60 epochs) through ``bpnn train``."""
    command = [sys.executable, "-m", "bpnn", "train", str(PENGUINS), "--out", str(folder / "p")]
    subprocess.run([*command, "--quiet"], cwd=ROOT, check=True, stdout=sys.stderr)
    return folder / "p" / "checkpoints" / "best.npz"


def read_penguins(times: int = 30) -> Any:
    """examples/penguins.csv's 344 raw rows ``times`` over, as pandas reads them."""
    import pandas as pd

    frame = pd.read_csv(ROOT / "examples" / "penguins.csv")
    return pd.concat([frame] * times, ignore_index=True)


def onnx_columns(session: Any) -> Callable[[Any], dict[str, np.ndarray]]:
    """A DataFrame as the feeds of a table model's graph: one ``(n, 1)`` array per column."""

    def feeds(frame: Any) -> dict[str, np.ndarray]:
        return {
            i.name: frame[i.name].fillna("").to_numpy(object).reshape(-1, 1)
            if i.type == "tensor(string)"
            else frame[i.name].to_numpy(np.float32).reshape(-1, 1)
            for i in session.get_inputs()
        }

    return feeds


def read_test_images(mnist: Path) -> np.ndarray:
    """The 10,000 t10k images as raw float32 pixels in [0, 255], shape (10000, 784)."""
    with gzip.open(mnist / "t10k-images-idx3-ubyte.gz") as handle:
        pixels = np.frombuffer(handle.read(), dtype=np.uint8, offset=16)
    return pixels.reshape(-1, 784).astype(np.float32)


def runtimes(checkpoint: Path, folder: Path, threads: int | None) -> dict[str, Predict]:
    """``predict(X_raw)`` of bpnn and of every exported copy whose runtime is installed, each
    limited to ``threads`` threads (None: the runtime's default)."""
    model = bpnn.load_checkpoint(checkpoint)
    found: dict[str, Predict] = {"bpnn": model.predict}
    try:
        import onnxruntime

        path = folder / "model.onnx"
        export_checkpoint(checkpoint, "onnx", path)
        options = onnxruntime.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = threads
        session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
        if model.encoding is None:
            found["onnxruntime"] = lambda X: session.run(None, {"input": X})[0]
        else:
            feeds = onnx_columns(session)
            found["onnxruntime"] = lambda frame: session.run(None, feeds(frame))[0]
    except ImportError as error:
        print(f"onnxruntime left out: {error}", file=sys.stderr)
    try:
        import torch

        if threads is not None:
            torch.set_num_threads(threads)
        result = export_checkpoint(checkpoint, "torch", folder / "model.safetensors")
        namespace: dict[str, Any] = {}
        exec(result.source or "", namespace)
        sequential = namespace["model"]
        encode = namespace.get("encode", torch.from_numpy)  # a table model: its encode(rows)

        def torch_predict(X: Any) -> np.ndarray:
            with torch.no_grad():
                return sequential(encode(X)).numpy()

        found["torch"] = torch_predict
    except ImportError as error:
        print(f"torch left out: {error}", file=sys.stderr)
    try:
        import skops.io

        path = folder / "model.skops"
        export_checkpoint(checkpoint, "sklearn", path)
        found["sklearn"] = skops.io.load(path).predict_proba
    except ImportError as error:
        print(f"sklearn left out: {error}", file=sys.stderr)
    return found


def throughput(predict: Predict, X: Any, batch: int, repeats: int) -> float:
    """Predictions per second over all of ``X`` in batches of ``batch``, best of ``repeats``."""
    chunks = [X[i : i + batch] for i in range(0, len(X), batch)]
    predict(chunks[0])  # warm-up: lazy initialization is not throughput
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for chunk in chunks:
            predict(chunk)
        best = min(best, time.perf_counter() - start)
    return len(X) / best


def versions() -> str:
    import sklearn

    names = {"numpy": np.__version__, "scikit-learn": sklearn.__version__}
    for module in ("onnxruntime", "torch", "skops"):
        with contextlib.suppress(ImportError):
            names[module] = __import__(module).__version__
    return ", ".join(f"{name} {version}" for name, version in names.items())


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, help="a trained MNIST checkpoint to use")
    parser.add_argument("--mnist", type=Path, default=DEFAULT_MNIST, help="the IDX .gz folder")
    parser.add_argument("--repeats", type=int, default=3, help="passes per cell; best is kept")
    parser.add_argument(
        "--penguins", action="store_true", help="a table model on raw rows instead of MNIST"
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="limit every runtime (NumPy's BLAS too, via threadpoolctl) to this many threads",
    )
    args = parser.parse_args()
    if args.threads is not None:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=args.threads)

    X = read_penguins() if args.penguins else read_test_images(args.mnist)
    data = "penguins.csv's raw rows x 30" if args.penguins else "MNIST's 10,000 test images"
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        train = train_penguins if args.penguins else lambda f: train_mnist(args.mnist, f)
        checkpoint = args.checkpoint or train(folder)
        description = repr(bpnn.load_checkpoint(checkpoint))
        found = runtimes(checkpoint, folder, args.threads)
        reference = found["bpnn"](X)
        rows = []
        for name, predict in found.items():
            print(f"timing {name} ...", file=sys.stderr)
            rates = [
                throughput(
                    predict, X[:344] if args.penguins and batch == 1 else X, batch, args.repeats
                )
                for batch in BATCHES
            ]
            difference = float(np.abs(predict(X) - reference).max())
            rows.append((name, *rates, difference))

    threads = "default threads" if args.threads is None else f"{args.threads} thread(s) each"
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"{datetime.now():%Y-%m-%d %H:%M}, {cpu_name()}, {os.cpu_count()} cores, {threads}")
    print(f"load average at the end (1, 5, 15 min): {load}")
    print(f"Python {platform.python_version()}, {versions()}")
    print(f"{description}, {data} ({len(X):,} rows)")
    print()
    print(
        "| runtime | batch 1 (predictions/s) | batch 1000 (predictions/s) | max diff. from bpnn |"
    )
    print("|---|---:|---:|---:|")
    for name, rate_1, rate_1000, difference in rows:
        print(f"| {name} | {rate_1:,.0f} | {rate_1000:,.0f} | {difference:.1e} |")


if __name__ == "__main__":
    main()
