"""MNIST benchmark: bpnn against scikit-learn's MLPClassifier, PyTorch (CPU, eager) and a
hand-fused NumPy loop (the yardstick for what the NumPy calls of a training step cost alone).

Run from the repository root::

    python bench/mnist.py              # full run, plain-text tables (1.5 minutes on 2 cores)
    python bench/mnist.py --quick      # smoke run: 1 epoch each, a small batch-size sweep
    python bench/mnist.py --markdown   # Markdown tables with a header (date, CPU, versions, BLAS)

Every framework trains the same set-up: MNIST 60,000 train / 10,000 test images loaded once
through ``bpnn.data.load_dataset`` (float32 pixels scaled to [0, 1], no validation split), a
784-256-128-10 ReLU network, softmax cross-entropy, Adam (lr 1e-3, betas 0.9/0.999, eps 1e-8,
constant rate), batch 128, shuffled each epoch, float32, no dropout. The frameworks take
turns epoch by epoch, so a background load that comes and goes slows them alike; medians and
best-of-N do the rest. The report, on stdout:

- the float32 matrix-product ceiling: NumPy GEMM GFLOP/s of square products and of the products
  of one training step of this MLP at batch 512 (best of N, measured before and after
  training); the best of them all is the "ceiling";
- table 1, batch 128: median seconds per epoch, time ratio to bpnn, test accuracy after the
  epochs, GFLOP/s and % of the ceiling;
- table 2, a batch-size sweep (32, 128, 512) of bpnn, torch and the numpy loop (sklearn with
  --sweep-sklearn);
- table 3, prediction throughput on the 10,000 test images (best of N);
- peak memory of ``bpnn train configs/mnist.yaml`` for one epoch against the size of the float32
  training data plus the model, and the RSS of a bare ``python -c "import numpy, sklearn"``;
- table 4, the cost of ``train.health``: whole epochs with and without ``bpnn.training.health``'s
  monitor, in turns (wall and CPU time), and the monitor's own hooks as a share of the same
  epoch (``--health-only`` measures just this table).

FLOPs of a training step are counted the standard way, 6 * batch * sum(fan_in * fan_out):
2 per weight and sample forward, 4 backward. Progress goes to stderr, the report to stdout.
Timings are informative only; nothing here asserts on them.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "mnist.yaml"

SEED = 0
HIDDEN = (256, 128)
LR, BETA1, BETA2, EPS = 1e-3, 0.9, 0.999, 1e-8
BATCH = 128
SWEEP_BATCHES = (32, 128, 512)

#: the set-up, spelled out so that edits to configs/mnist.yaml do not change the benchmark
OVERRIDES = (
    "data.val_fraction=0.0",
    "data.scale=pixels",
    "model.hidden=[256, 128]",
    "model.activation=relu",
    "model.init=he_normal",
    "model.batch_norm=false",
    "model.dropout=0.0",  # configs/mnist.yaml has 0.2; the peers train without dropout
    "loss=cross_entropy",
    f"optimizer={{name: adam, lr: {LR}, beta1: {BETA1}, beta2: {BETA2}, eps: {EPS}}}",
    "optimizer.weight_decay=0.0",
    "schedule=constant",
    "train.shuffle=true",
    "train.grad_clip=null",
    "train.dtype=float32",
    f"seed={SEED}",
)


def log(message: str) -> None:
    """Progress for the person waiting; stderr, so stdout holds only the report."""
    print(message, file=sys.stderr, flush=True)


# --- the set-up -------------------------------------------------------------------------------


def bpnn_config(batch_size: int, epochs: int) -> Any:
    from bpnn.config import load_config

    sizes = (f"train.batch_size={batch_size}", f"train.epochs={epochs}")
    return load_config(CONFIG, [*OVERRIDES, *sizes])


def load_mnist() -> Any:
    """The bpnn ``Dataset``: X float32 in [0, 1], y int64 class indices, no validation split."""
    from bpnn.data import load_dataset

    config = bpnn_config(BATCH, 1)
    return load_dataset(config.data, task=config.task, seed=config.seed, dtype=np.float32, log=log)


def layer_sizes(data: Any) -> list[int]:
    return [data.n_features, *HIDDEN, len(data.classes)]


def weight_count(sizes: Sequence[int]) -> int:
    """sum(fan_in * fan_out): the multiply-adds per sample of one forward pass (biases aside)."""
    return sum(a * b for a, b in itertools.pairwise(sizes))


def train_gflops(sizes: Sequence[int], n_samples: int, seconds: float) -> float:
    """GFLOP/s of an epoch: 6 * batch * sum(fan_in * fan_out) per step, over all the steps
    (6 * n_samples * ..., so a partial last batch counts for what it holds)."""
    return 6 * n_samples * weight_count(sizes) / seconds / 1e9


# --- the three frameworks, behind one small interface -----------------------------------------


class BpnnRunner:
    """bpnn built as ``bpnn train`` builds it; an epoch is ``Trainer.train_epoch`` (no validation,
    no callbacks)."""

    name = "bpnn"

    def __init__(self, data: Any, batch_size: int) -> None:
        from bpnn.model import make_seeds
        from bpnn.run import build_model, make_trainer

        self.data, self.config = data, bpnn_config(batch_size, 1)
        init_rng, shuffle_rng = make_seeds(self.config.seed)
        self.model = build_model(self.config, data, init_rng)
        self.trainer = make_trainer(self.config, self.model, data, shuffle_rng, callbacks=[])
        self.epoch = 0
        # import numba and compile the fused Adam loop now, once per process, as the peers'
        # imports are done before their timing starts (about 0.55 s; see bpnn/nn/kernels.py)
        from bpnn.nn.kernels import adam_kernel

        params = self.model.network.params
        adam_kernel(params, params, params, params)

    def train_epoch(self) -> float:
        self.epoch += 1
        return self.trainer.train_epoch(self.epoch, self.config.optimizer.lr)["train_loss"]

    def predict_proba(self, X: np.ndarray) -> Any:
        return self.model.network.predict(X)

    def accuracy(self) -> float:
        from bpnn.evaluation import evaluate

        return evaluate(self.model, self.data.X_test, self.data.y_test)["accuracy"]


class SklearnRunner:
    """MLPClassifier; an epoch is one ``partial_fit`` call (one pass over the data).

    ``random_state`` is a ``RandomState`` rather than the int 0: every ``partial_fit`` call
    re-seeds from an int, which would shuffle every epoch in the same order.
    """

    name = "scikit-learn"

    def __init__(self, data: Any, batch_size: int) -> None:
        from sklearn.neural_network import MLPClassifier

        self.data = data
        self.classes = np.arange(len(data.classes))
        self.model = MLPClassifier(
            hidden_layer_sizes=HIDDEN,
            activation="relu",
            solver="adam",
            batch_size=batch_size,
            learning_rate_init=LR,
            beta_1=BETA1,
            beta_2=BETA2,
            epsilon=EPS,
            alpha=0.0,
            max_iter=1,
            warm_start=True,
            shuffle=True,
            tol=0,
            n_iter_no_change=10**9,
            random_state=np.random.RandomState(SEED),
        )

    def train_epoch(self) -> float:
        from sklearn.exceptions import ConvergenceWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.model.partial_fit(self.data.X_train, self.data.y_train, classes=self.classes)
        return float(self.model.loss_)

    def predict_proba(self, X: np.ndarray) -> Any:
        return self.model.predict_proba(X)

    def accuracy(self) -> float:
        return float(self.model.score(self.data.X_test, self.data.y_test))


def import_torch() -> Any | None:
    try:
        import torch
    except ImportError:
        return None
    return torch


class TorchRunner:
    """nn.Sequential in eager mode; an epoch is a hand-written loop over a fresh randperm."""

    name = "torch"

    def __init__(self, data: Any, batch_size: int) -> None:
        import torch

        self.torch, self.data, self.batch_size = torch, data, batch_size
        nn = torch.nn
        torch.manual_seed(SEED)
        sizes = layer_sizes(data)
        self.model = nn.Sequential(
            nn.Linear(sizes[0], sizes[1]),
            nn.ReLU(),
            nn.Linear(sizes[1], sizes[2]),
            nn.ReLU(),
            nn.Linear(sizes[2], sizes[3]),
        )
        self.loss_fn = nn.CrossEntropyLoss()
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=LR, betas=(BETA1, BETA2), eps=EPS
        )
        self.X = torch.from_numpy(data.X_train)
        self.y = torch.from_numpy(data.y_train.astype(np.int64))

    def train_epoch(self) -> float:
        n, total = len(self.X), 0.0
        order = self.torch.randperm(n)
        for start in range(0, n, self.batch_size):
            index = order[start : start + self.batch_size]
            X_batch, y_batch = self.X[index], self.y[index]
            self.optimizer.zero_grad(set_to_none=True)
            loss = self.loss_fn(self.model(X_batch), y_batch)
            loss.backward()
            self.optimizer.step()
            total += loss.item() * len(index)
        return total / n

    def predict_proba(self, X: np.ndarray) -> Any:
        with self.torch.no_grad():
            return self.torch.softmax(self.model(self.torch.from_numpy(X)), dim=1)

    def accuracy(self) -> float:
        predicted = self.predict_proba(self.data.X_test).argmax(dim=1).numpy()
        return float(np.mean(predicted == self.data.y_test))


class NumpyLoopRunner:
    """A yardstick, not a framework: the same MLP as one hand-fused NumPy loop.

    The 784-256-128-10 ReLU network, softmax cross-entropy and Adam written out step by step
    for this one architecture: He-normal weights, every activation and gradient buffer
    allocated once, every operation in place (``out=``), Adam as the twelve in-place passes over
    one flat buffer of bpnn's NumPy reference (``Adam.update_step``). What it costs per epoch is
    about the least that NumPy calls alone can do here. bpnn runs the same layers through its
    objects and training loop, and Adam as one compiled pass (``bpnn.nn.kernels``).
    """

    name = "numpy loop"

    def __init__(self, data: Any, batch_size: int) -> None:
        self.data, self.batch_size = data, batch_size
        self.rng = np.random.default_rng(SEED)
        self.step = 0
        pairs = list(itertools.pairwise(layer_sizes(data)))
        total = sum(fan_in * fan_out + fan_out for fan_in, fan_out in pairs)
        self.params, self.grads = np.zeros(total, np.float32), np.zeros(total, np.float32)
        self.m, self.v = np.zeros(total, np.float32), np.zeros(total, np.float32)
        self.scratch = np.zeros(total, np.float32)
        self.W, self.b, self.dW, self.db = [], [], [], []
        offset = 0
        for fan_in, fan_out in pairs:
            for params, grads, shape in (
                (self.W, self.dW, (fan_in, fan_out)),
                (self.b, self.db, (fan_out,)),
            ):
                size = math.prod(shape)
                params.append(self.params[offset : offset + size].reshape(shape))
                grads.append(self.grads[offset : offset + size].reshape(shape))
                offset += size
            scale = np.float32(math.sqrt(2 / fan_in))
            self.W[-1][...] = self.rng.standard_normal((fan_in, fan_out), np.float32) * scale
        # per layer: its output (hidden activations, then the class probabilities) and delta
        self.out = [np.empty((batch_size, fan_out), np.float32) for _, fan_out in pairs]
        self.delta = [np.empty((batch_size, fan_out), np.float32) for _, fan_out in pairs]

    def train_epoch(self) -> float:
        X, y = self.data.X_train, self.data.y_train
        order = self.rng.permutation(len(X))
        total, correct = 0.0, 0
        for start in range(0, len(X), self.batch_size):
            index = order[start : start + self.batch_size]
            loss, hits = self.train_step(X[index], y[index])
            total += loss * len(index)
            correct += hits  # the running training accuracy, as bpnn's epoch counts it
        self.train_accuracy = correct / len(X)
        return total / len(X)

    def train_step(self, x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
        n, rows = len(x), np.arange(len(x))
        W, b, dW, db = self.W, self.b, self.dW, self.db
        h1, h2, p = (out[:n] for out in self.out)
        d1, d2 = (delta[:n] for delta in self.delta[:2])
        np.matmul(x, W[0], out=h1)
        h1 += b[0]
        np.maximum(h1, 0, out=h1)
        np.matmul(h1, W[1], out=h2)
        h2 += b[1]
        np.maximum(h2, 0, out=h2)
        z = np.matmul(h2, W[2], out=p)
        z += b[2]
        z -= z.max(axis=1, keepdims=True)
        picked = z[rows, y]  # a copy: z becomes the probabilities next
        sums = np.exp(z, out=p).sum(axis=1)
        loss = float(np.mean(np.log(sums) - picked))
        p /= sums[:, None]
        hits = int(np.count_nonzero(p.argmax(axis=1) == y))
        p[rows, y] -= 1  # p is now dL/dz * n
        p /= n
        np.matmul(h2.T, p, out=dW[2])
        np.sum(p, axis=0, out=db[2])
        np.matmul(p, W[2].T, out=d2)
        d2 *= h2 > 0
        np.matmul(h1.T, d2, out=dW[1])
        np.sum(d2, axis=0, out=db[1])
        np.matmul(d2, W[1].T, out=d1)
        d1 *= h1 > 0
        np.matmul(x.T, d1, out=dW[0])
        np.sum(d1, axis=0, out=db[0])
        self.adam()
        return loss, hits

    def adam(self) -> None:
        self.step += 1
        m, v, g, step = self.m, self.v, self.grads, self.scratch
        m *= BETA1
        np.multiply(g, 1 - BETA1, out=step)
        m += step
        v *= BETA2
        np.square(g, out=step)
        step *= 1 - BETA2
        v += step
        root_c2 = math.sqrt(1 - BETA2**self.step)
        np.sqrt(v, out=step)
        step += EPS * root_c2
        np.divide(m, step, out=step)
        step *= LR * root_c2 / (1 - BETA1**self.step)
        self.params -= step

    def predict_proba(self, X: np.ndarray) -> Any:
        a = X
        for i in range(3):
            a = a @ self.W[i] + self.b[i]
            if i < 2:
                np.maximum(a, 0, out=a)
        a -= a.max(axis=1, keepdims=True)
        np.exp(a, out=a)
        a /= a.sum(axis=1, keepdims=True)
        return a

    def accuracy(self) -> float:
        predicted = self.predict_proba(self.data.X_test).argmax(axis=1)
        return float(np.mean(predicted == self.data.y_test))


RUNNERS = {
    runner.name: runner for runner in (BpnnRunner, SklearnRunner, TorchRunner, NumpyLoopRunner)
}


@dataclass
class Run:
    """Seconds of each training epoch of one framework at one batch size, and the test accuracy."""

    framework: str
    batch_size: int
    epoch_seconds: list[float] = field(default_factory=list)
    accuracy: float | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.epoch_seconds)


class CoreCheck:
    """How much faster NumPy's BLAS runs the training step's largest product (128x784 @ 784x256)
    on all its threads than on one, checked after every round of epochs.

    About 1.8 on two idle cores here. On a virtual machine the host at times takes the second
    core away for seconds to minutes, which nothing inside the machine shows (no steal time, no
    load): then the product runs no faster on two threads than on one, and every framework's
    matrix products slow down, bpnn's most, since they are most of its step. A table taken at
    a speed-up near 1 measured the host, not the frameworks.
    """

    def __init__(self) -> None:
        rng = np.random.default_rng(SEED)
        self.a = rng.random((BATCH, 784), dtype=np.float32)
        self.W = rng.random((784, 256), dtype=np.float32)
        self.speedups: list[float] = []

    def measure(self) -> None:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # comes with scikit-learn; without it, no check
            return
        all_threads = best_seconds(lambda: self.a @ self.W, repeats=5, min_seconds=0.004)
        with threadpool_limits(limits=1, user_api="blas"):
            one_thread = best_seconds(lambda: self.a @ self.W, repeats=5, min_seconds=0.004)
        self.speedups.append(one_thread / all_threads)

    def summary(self) -> str:
        """``"multi-thread BLAS speed-up 1.79x (worst 1.03x)"``, or empty if nothing was
        measured."""
        if not self.speedups:
            return ""
        median, worst = statistics.median(self.speedups), min(self.speedups)
        return f"multi-thread BLAS speed-up {median:.2f}x (worst {worst:.2f}x)"


def train_in_turns(
    frameworks: Sequence[str],
    data: Any,
    batch_size: int,
    epochs: int,
    check: CoreCheck | None = None,
) -> tuple[list[Run], dict[str, Any]]:
    """Train each framework for ``epochs`` epochs, one epoch of each in turn, timing each epoch
    (and measuring ``check`` after each round). Returns the runs and the trained runners."""
    runners = {name: RUNNERS[name](data, batch_size) for name in frameworks}
    runs = {name: Run(name, batch_size) for name in frameworks}
    for epoch in range(1, epochs + 1):
        for name, runner in runners.items():
            started = time.perf_counter()
            loss = runner.train_epoch()
            runs[name].epoch_seconds.append(time.perf_counter() - started)
            log(
                f"  batch {batch_size:4d} epoch {epoch}  {name:12s} "
                f"{runs[name].epoch_seconds[-1]:6.2f} s  train loss {loss:.4f}"
            )
        if check is not None:
            check.measure()
            if check.speedups:
                log(f"  multi-thread BLAS speed-up now {check.speedups[-1]:.2f}x")
    for name, runner in runners.items():
        runs[name].accuracy = runner.accuracy()
    return list(runs.values()), runners


# --- the cost of gradient health (train.health) ------------------------------------------------


def health_overhead(data: Any, epochs: int, label: str) -> list[str]:
    """Median seconds of a whole epoch (``Trainer.fit`` for one epoch: training, validation,
    callbacks) without and with ``bpnn.training.health.HealthMonitor``, in turns, and their ratio,
    in
    wall time and in this process's CPU time (all its threads; less disturbed by other
    processes on a shared machine). Both trainers start from the same weights and see the same
    batches."""
    from bpnn.model import make_seeds
    from bpnn.run import build_model, make_trainer
    from bpnn.training.health import HealthMonitor

    class TimedHealthMonitor(HealthMonitor):
        """The health monitor, timing its own hooks (wall and CPU) within each epoch: their
        share of the same epoch's time holds up on a machine whose load comes and goes."""

        wall = cpu = 0.0

        def _timed(self, hook: Callable[..., None], *args: Any) -> None:
            wall, cpu = time.perf_counter(), time.process_time()
            hook(*args)
            self.wall += time.perf_counter() - wall
            self.cpu += time.process_time() - cpu

        def on_epoch_begin(self, *args: Any) -> None:
            self._timed(super().on_epoch_begin, *args)

        def on_batch_end(self, *args: Any) -> None:
            self._timed(super().on_batch_end, *args)

        def on_epoch_end(self, *args: Any) -> None:
            self._timed(super().on_epoch_end, *args)

    config = bpnn_config(BATCH, epochs)
    monitor = TimedHealthMonitor()
    trainers = {}
    for name, callbacks in (("off", []), ("on", [monitor])):
        init_rng, shuffle_rng = make_seeds(config.seed)
        model = build_model(config, data, init_rng)
        trainers[name] = make_trainer(config, model, data, shuffle_rng, callbacks)
    seconds: dict[str, list[float]] = {"off": [], "on": []}
    cpu: dict[str, list[float]] = {"off": [], "on": []}
    shares: list[tuple[float, float]] = []
    for epoch in range(1, epochs + 1):
        for name, trainer in trainers.items():
            trainer.start_epoch, trainer.epochs = epoch - 1, epoch
            started, cpu_started = time.perf_counter(), time.process_time()
            trainer.fit()
            seconds[name].append(time.perf_counter() - started)
            cpu[name].append(time.process_time() - cpu_started)
            log(
                f"  health {name:3s} epoch {epoch}  {seconds[name][-1]:6.2f} s wall  "
                f"{cpu[name][-1]:6.2f} s cpu"
            )
        shares.append((monitor.wall / seconds["on"][-1], monitor.cpu / cpu["on"][-1]))
        monitor.wall = monitor.cpu = 0.0
    off, on = statistics.median(seconds["off"]), statistics.median(seconds["on"])
    cpu_off, cpu_on = statistics.median(cpu["off"]), statistics.median(cpu["on"])
    return [
        label,
        f"{off:.2f}",
        f"{on:.2f}",
        f"{100 * (on / off - 1):+.1f} %",
        f"{cpu_off:.2f}",
        f"{cpu_on:.2f}",
        f"{100 * (cpu_on / cpu_off - 1):+.1f} %",
        f"{100 * statistics.median(s[0] for s in shares):.2f} %",
        f"{100 * statistics.median(s[1] for s in shares):.2f} %",
    ]


HEALTH_HEADERS = [
    "set-up",
    "off: wall s",
    "on: wall s",
    "overhead (wall)",
    "off: cpu s",
    "on: cpu s",
    "overhead (cpu)",
    "health hooks (wall)",
    "health hooks (cpu)",
]


def health_rows(data: Any, epochs: int) -> list[list[str]]:
    """The overhead without a validation split (health sample: 1,024 training rows) and with
    configs/mnist.yaml's 6,000-image validation split (the health sample)."""
    from bpnn.data import load_dataset

    rows = [health_overhead(data, epochs, f"no validation ({len(data.X_train)} train)")]
    config = load_config_with_validation()
    with_val = load_dataset(
        config.data, task=config.task, seed=config.seed, dtype=np.float32, log=log
    )
    label = f"validation {len(with_val.X_val)} ({len(with_val.X_train)} train)"
    rows.append(health_overhead(with_val, epochs, label))
    return rows


def load_config_with_validation() -> Any:
    from bpnn.config import load_config

    overrides = [o for o in OVERRIDES if not o.startswith("data.val_fraction")]
    return load_config(CONFIG, [*overrides, "data.val_fraction=0.1"])


# --- timing helpers and the matrix-product ceiling --------------------------------------------


def best_seconds(fn: Callable[[], Any], repeats: int, min_seconds: float = 0.0) -> float:
    """The best of ``repeats`` timings of ``fn``; each timing loops ``fn`` long enough to last
    ``min_seconds`` and reports the time of one call."""
    started = time.perf_counter()
    fn()
    once = time.perf_counter() - started
    loops = max(1, math.ceil(min_seconds / max(once, 1e-9)))
    best = math.inf
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(loops):
            fn()
        best = min(best, (time.perf_counter() - started) / loops)
    return best


@dataclass
class Product:
    """One float32 matrix product ``a @ b`` to time; ``in_step``: part of an MLP training step."""

    name: str
    a: np.ndarray
    b: np.ndarray
    in_step: bool
    best: float = math.inf  # seconds, the best over every measurement

    @property
    def flops(self) -> int:
        return 2 * self.a.shape[0] * self.a.shape[1] * self.b.shape[1]

    @property
    def gflops(self) -> float:
        return self.flops / self.best / 1e9

    def measure(self, repeats: int) -> None:
        out = np.empty((self.a.shape[0], self.b.shape[1]), dtype=np.float32)
        seconds = best_seconds(lambda: np.matmul(self.a, self.b, out=out), repeats, 0.1)
        self.best = min(self.best, seconds)


def gemm_products(sizes: Sequence[int], batch: int = 512) -> list[Product]:
    """Square products, and the products of one training step as bpnn does them: forward
    ``a @ W``, weight gradients ``a^T @ delta``, input gradients ``delta @ W^T`` (not for the
    first layer: nobody needs dL/dX)."""
    rng = np.random.default_rng(SEED)

    def rand(*shape: int) -> np.ndarray:
        return rng.random(shape, dtype=np.float32)

    products = [Product("512x784 @ 784x256", rand(512, 784), rand(784, 256), in_step=False)]
    products += [Product(f"square {n}", rand(n, n), rand(n, n), False) for n in (1024, 2048)]
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        a, W, delta = rand(batch, fan_in), rand(fan_in, fan_out), rand(batch, fan_out)
        products.append(Product(f"a @ W: {batch}x{fan_in} @ {fan_in}x{fan_out}", a, W, True))
        products.append(
            Product(f"a^T @ delta: {fan_in}x{batch} @ {batch}x{fan_out}", a.T, delta, True)
        )
        if i > 0:
            products.append(
                Product(f"delta @ W^T: {batch}x{fan_out} @ {fan_out}x{fan_in}", delta, W.T, True)
            )
    return products


def gemm_rows(products: Sequence[Product]) -> tuple[list[list[str]], float]:
    """Rows of the GEMM table and the ceiling (the best GFLOP/s of every product measured)."""
    rows = [[("MLP step, " if p.in_step else "") + p.name, f"{p.gflops:.1f}"] for p in products]
    step = [p for p in products if p.in_step]
    step_rate = sum(p.flops for p in step) / sum(p.best for p in step) / 1e9
    rows.append(["MLP step, all its products at batch 512 together", f"{step_rate:.1f}"])
    return rows, max(p.gflops for p in products)


def prediction_seconds(runners: dict[str, Any], X: np.ndarray, repeats: int) -> dict[str, float]:
    """Best seconds to get the class probabilities of all of ``X``, per framework; the
    frameworks take turns, one call each per round, after one warm-up call each."""
    best = {}
    for name, runner in runners.items():
        runner.predict_proba(X)
        best[name] = math.inf
    for _ in range(repeats):
        for name, runner in runners.items():
            started = time.perf_counter()
            runner.predict_proba(X)
            best[name] = min(best[name], time.perf_counter() - started)
    return best


# --- memory -----------------------------------------------------------------------------------

#: Runs argv[1:] and prints its peak RSS. Linux counts the RSS a child had before exec into its
#: ru_maxrss, and a child of this benchmark starts as a copy of it (hundreds of MiB), so the
#: command is started from this small interpreter instead.
RSS_PROBE = """\
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
if done.returncode:
    sys.exit(done.stderr)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def peak_rss_mib(command: Sequence[str]) -> tuple[float, float]:
    """(peak RSS in MiB, wall seconds) of ``command`` run to completion from the repo root."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", RSS_PROBE, *command], cwd=ROOT, capture_output=True, text=True
    )
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr}")
    return int(done.stdout) / 1024, time.perf_counter() - started  # ru_maxrss is in KiB


def bpnn_command() -> list[str]:
    """The ``bpnn`` script of this interpreter's environment (or ``python -m bpnn``)."""
    script = Path(sys.executable).parent / "bpnn"
    if script.exists():
        return [str(script)]
    found = shutil.which("bpnn")
    return [found] if found else [sys.executable, "-m", "bpnn"]


def memory_rows(model_bytes: int, n_train: int, n_features: int) -> list[list[str]]:
    log("memory: python -c 'import numpy, sklearn' ...")
    base, _ = peak_rss_mib([sys.executable, "-c", "import numpy, sklearn"])
    with tempfile.TemporaryDirectory() as folder:
        command = [*bpnn_command(), "train", str(CONFIG.relative_to(ROOT))]
        command += ["--out", str(Path(folder) / "run"), "--quiet", "--set", "train.epochs=1"]
        log(f"memory: bpnn train {CONFIG.relative_to(ROOT)} --set train.epochs=1 ...")
        peak, seconds = peak_rss_mib(command)
    data_mib = n_train * n_features * 4 / 2**20
    model_mib = model_bytes / 2**20
    useful = data_mib + model_mib
    return [
        ["python -c 'import numpy, sklearn': peak RSS", f"{base:.0f} MiB"],
        [f"bpnn train configs/mnist.yaml, 1 epoch ({seconds:.0f} s): peak RSS", f"{peak:.0f} MiB"],
        [f"float32 training data ({n_train} x {n_features} x 4 B)", f"{data_mib:.1f} MiB"],
        ["model (float32 parameters)", f"{model_mib:.2f} MiB"],
        ["peak RSS / (float32 training data + model)", f"{peak / useful:.2f}"],
        ["(peak RSS - bare interpreter) / (data + model)", f"{(peak - base) / useful:.2f}"],
    ]


# --- the machine ------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.machine()
    for entry in text.splitlines():
        if entry.startswith("model name"):
            return entry.split(":", 1)[1].strip()
    return platform.machine()


def numpy_blas() -> str:
    """The BLAS library numpy calls, with its version and thread count (threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas['name']} {blas.get('version', '')}".strip()
    for pool in threadpool_info():
        if pool["user_api"] == "blas" and "numpy" in pool["filepath"]:
            arch = f" ({pool['architecture']})" if pool.get("architecture") else ""
            return f"{pool['internal_api']} {pool['version']}{arch}, {pool['num_threads']} threads"
    return "unknown"


def bpnn_revision() -> str:
    """bpnn's version and git commit, flagged when bpnn/ has uncommitted changes (read-only git:
    ``--no-optional-locks`` keeps ``status`` from refreshing the index)."""
    import bpnn

    def git(*arguments: str) -> str:
        command = ["git", "--no-optional-locks", *arguments]
        return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True).stdout

    try:
        commit = git("rev-parse", "--short", "HEAD").strip()
        dirty = git("status", "--porcelain", "--", "bpnn").strip()
    except (OSError, subprocess.CalledProcessError):
        return f"bpnn {bpnn.__version__}"
    return f"bpnn {bpnn.__version__}, git {commit}" + (
        " + uncommitted changes in bpnn/" if dirty else ""
    )


def environment(torch: Any | None) -> list[str]:
    """The header: date, machine, versions, BLAS libraries (taken when the run starts)."""
    import sklearn

    cores = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    if torch is None:
        torch_line = "torch: not used"
    else:
        blas = re.search(r"BLAS_INFO=(\w+)", torch.__config__.show())
        torch_line = (
            f"torch {torch.__version__}, {torch.get_num_threads()} threads (default), "
            f"BLAS {blas.group(1) if blas else 'unknown'}"
        )
    return [
        f"date: {datetime.now().strftime('%Y-%m-%d %H:%M')}, {bpnn_revision()}",
        f"CPU: {cpu_model()}, {cores} cores ({usable} usable by this process)",
        f"Python {platform.python_version()}, numpy {np.__version__}, "
        f"scikit-learn {sklearn.__version__}",
        f"numpy BLAS: {numpy_blas()}",
        torch_line,
    ]


@dataclass(frozen=True)
class CpuClock:
    """A snapshot of CPU time, to tell how much of the machine other processes took meanwhile:
    the machine's busy seconds since boot (/proc/stat, None elsewhere), this process's own (and
    its finished children's) CPU seconds, and the wall clock."""

    busy: float | None
    own: float
    wall: float

    @classmethod
    def now(cls) -> CpuClock:
        usage = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
        own = sum(u.ru_utime + u.ru_stime for u in usage)
        try:
            ticks = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        except (OSError, ValueError):
            return cls(None, own, time.perf_counter())
        busy = sum(ticks) - ticks[3] - ticks[4]  # all but idle and iowait (steal counts as busy)
        return cls(busy / os.sysconf("SC_CLK_TCK"), own, time.perf_counter())

    def others_since(self, start: CpuClock) -> str:
        """``"others used 0.25 cores"`` on average since ``start`` (empty without /proc/stat)."""
        if self.busy is None or start.busy is None:
            return ""
        others = (self.busy - start.busy) - (self.own - start.own)
        return f"others used {max(others, 0.0) / (self.wall - start.wall):.2f} cores"


# --- output -----------------------------------------------------------------------------------


def joined(*notes: str) -> str:
    """The non-empty notes, joined by "; "."""
    return "; ".join(note for note in notes if note)


GEMM_HEADERS = ["product", "GFLOP/s"]
TRAIN_HEADERS = [
    "framework",
    "batch",
    "s/epoch",
    "time / bpnn",
    "test accuracy",
    "GFLOP/s",
    "% ceiling",
]
PREDICT_HEADERS = ["framework", "seconds", "samples/s", "time / bpnn", "GFLOP/s"]


def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]], markdown: bool) -> str:
    """Aligned plain text, or a Markdown table (first column left, the rest right-aligned)."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        padded = [
            str(c).ljust(w) if i == 0 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |" if markdown else "  ".join(padded)

    if markdown:
        rule = "|" + "|".join("-" * (w + 1) + (":" if i else "-") for i, w in enumerate(widths))
        return "\n".join([f"#### {title}", "", line(headers), rule + "|", *map(line, rows), ""])
    rule = "  ".join("-" * w for w in widths)
    return "\n".join([title, "", line(headers), rule, *map(line, rows), ""])


def training_rows(
    runs: Sequence[Run], sizes: Sequence[int], n: int, ceiling: float, accuracy: bool
) -> list[list[str]]:
    bpnn_median = {r.batch_size: r.median for r in runs if r.framework == "bpnn"}
    rows = []
    for run in runs:
        rate = train_gflops(sizes, n, run.median)
        ratio = run.median / bpnn_median[run.batch_size] if run.batch_size in bpnn_median else None
        row = [run.framework, str(run.batch_size), f"{run.median:.2f}"]
        row.append("-" if ratio is None else f"{ratio:.2f}")
        if accuracy:
            row.append("-" if run.accuracy is None else f"{100 * run.accuracy:.2f} %")
        rows.append([*row, f"{rate:.1f}", f"{100 * rate / ceiling:.1f} %"])
    return rows


# --- the command ------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark bpnn against scikit-learn and PyTorch on MNIST, same set-up. "
        "Tables go to stdout, progress to stderr. Run from the repository root.",
    )
    add = parser.add_argument
    add(
        "--epochs",
        type=int,
        default=5,
        help="training epochs per framework at batch 128, table 1 (default 5); "
        "the median epoch time is reported",
    )
    add(
        "--sweep-epochs",
        type=int,
        default=2,
        help="epochs per framework and batch size in the sweep, table 2 (default 2)",
    )
    add(
        "--sweep-batches",
        default=",".join(map(str, SWEEP_BATCHES)),
        help="batch sizes of the sweep, comma-separated (default 32,128,512; "
        "batch 128 reuses table 1)",
    )
    add(
        "--sweep-sklearn",
        action="store_true",
        help="include scikit-learn in the sweep (slow at batch 32)",
    )
    add(
        "--repeats",
        type=int,
        default=7,
        help="best of how many timings for matrix products and prediction (default 7)",
    )
    add(
        "--quick",
        action="store_true",
        help="smoke run: 1 epoch each, sweep of batch 128 and 512 only, 3 repeats",
    )
    add("--no-torch", action="store_true", help="leave PyTorch out")
    add("--no-sklearn", action="store_true", help="leave scikit-learn out")
    add(
        "--no-numpy-loop",
        action="store_true",
        help="leave out the hand-fused NumPy loop (the yardstick for what NumPy can do)",
    )
    add(
        "--no-memory",
        action="store_true",
        help="skip the peak-memory measurement (it runs bpnn train for one epoch)",
    )
    add(
        "--health-epochs",
        type=int,
        default=3,
        help="epochs with and without train.health, table 4 (default 3; 0 skips it)",
    )
    add(
        "--health-only",
        action="store_true",
        help="measure only table 4, the cost of train.health",
    )
    add(
        "--markdown",
        action="store_true",
        help="print Markdown tables under a header (date, CPU, cores, versions, BLAS)",
    )
    args = parser.parse_args(argv)
    args.sweep_batches = [int(b) for b in args.sweep_batches.split(",") if b.strip()]
    if args.quick:
        args.epochs, args.sweep_epochs, args.repeats = 1, 1, 3
        if tuple(args.sweep_batches) == SWEEP_BATCHES:
            args.sweep_batches = [128, 512]
    return args


@dataclass
class Results:
    """Everything one run measured, for the report."""

    sizes: list[int]
    n_train: int
    n_test: int
    products: list[Product]
    main_runs: list[Run]
    sweep_runs: list[Run]
    predict_seconds: dict[str, float]
    memory: list[list[str]]
    load: dict[str, str]
    health: list[list[str]] = field(
        default_factory=list
    )  # what other processes took during each phase ("others used ...")


def measure(args: argparse.Namespace, frameworks: Sequence[str]) -> Results:
    """Run every measurement in order, logging progress to stderr."""
    load, begin = {}, CpuClock.now()
    log("loading MNIST through bpnn.data.load_dataset ...")
    data = load_mnist()
    sizes, n_test = layer_sizes(data), len(data.X_test)

    log(f"float32 matrix products, best of {args.repeats} ...")
    products = gemm_products(sizes)
    for product in products:
        product.measure(args.repeats)

    log(f"table 1: batch {BATCH}, {args.epochs} epochs, frameworks in turn ...")
    start, check = CpuClock.now(), CoreCheck()
    main_runs, runners = train_in_turns(frameworks, data, BATCH, args.epochs, check)
    load["table 1"] = joined(CpuClock.now().others_since(start), check.summary())

    log(f"table 2: batch sizes {args.sweep_batches}, {args.sweep_epochs} epochs ...")
    start, check = CpuClock.now(), CoreCheck()
    swept = [f for f in frameworks if f != "scikit-learn" or args.sweep_sklearn]
    sweep_runs = []
    for batch_size in args.sweep_batches:
        if batch_size == BATCH:
            sweep_runs += [r for r in main_runs if r.framework in swept]
        else:
            sweep_runs += train_in_turns(swept, data, batch_size, args.sweep_epochs, check)[0]
    load["table 2"] = joined(CpuClock.now().others_since(start), check.summary())

    log(f"table 3: predicting {n_test} test images, best of {args.repeats} ...")
    start = CpuClock.now()
    predict = prediction_seconds(runners, data.X_test, args.repeats)
    load["table 3"] = CpuClock.now().others_since(start)

    log("float32 matrix products again (the ceiling is the best of both rounds) ...")
    for product in products:
        product.measure(args.repeats)
    load["run"] = CpuClock.now().others_since(begin)

    health = []
    if args.health_epochs > 0:
        log(f"table 4: train.health off and on, {args.health_epochs} epochs in turns ...")
        start = CpuClock.now()
        health = health_rows(data, args.health_epochs)
        load["table 4"] = CpuClock.now().others_since(start)

    model_bytes = runners["bpnn"].model.network.params.nbytes
    memory = [] if args.no_memory else memory_rows(model_bytes, len(data.X_train), sizes[0])
    return Results(
        sizes,
        len(data.X_train),
        n_test,
        products,
        main_runs,
        sweep_runs,
        predict,
        memory,
        load,
        health,
    )


def report(results: Results, args: argparse.Namespace, header: Sequence[str]) -> str:
    """The tables, under ``header`` (from ``environment``), as plain text or Markdown."""
    md, r = args.markdown, results
    sizes, n, n_test = r.sizes, r.n_train, r.n_test
    lines = list(header)
    if r.load["run"]:
        lines.append(f"while this ran, {r.load['run']} on average (of {os.cpu_count()})")
    setup = (
        f"Set-up: MNIST {n} train / {n_test} test, {'-'.join(map(str, sizes))} relu, softmax "
        f"cross-entropy, Adam lr {LR:g}, float32, shuffled each epoch; the frameworks take "
        "turns epoch by epoch. Training FLOPs: 6 * batch * sum(fan_in * fan_out) per step "
        f"= {6 * weight_count(sizes) / 1e6:.2f} MFLOP per sample."
    )
    if md:
        out = ["## MNIST benchmark", "", *(f"- {line}" for line in lines)]
    else:
        out = ["MNIST benchmark", *lines]
    out += ["", setup, ""]

    def load(phase: str) -> str:
        return f"; {r.load[phase]}" if r.load[phase] else ""

    gemms, ceiling = gemm_rows(r.products)
    title = f"Float32 matrix products (NumPy), best of 2 rounds x {args.repeats}"
    out.append(table(f"{title}: ceiling {ceiling:.1f} GFLOP/s", GEMM_HEADERS, gemms, md))
    title = f"Table 1: training at batch {BATCH}, median of {args.epochs} epochs{load('table 1')}"
    rows = training_rows(r.main_runs, sizes, n, ceiling, accuracy=True)
    out.append(table(title, TRAIN_HEADERS, rows, md))
    title = (
        f"Table 2: batch-size sweep, median of {args.sweep_epochs} epochs (batch {BATCH}: "
        f"table 1){load('table 2')}"
    )
    rows = training_rows(r.sweep_runs, sizes, n, ceiling, accuracy=False)
    out.append(table(title, [h for h in TRAIN_HEADERS if h != "test accuracy"], rows, md))
    forward_flops = 2 * n_test * weight_count(sizes)
    rows = [
        [
            name,
            f"{s:.4f}",
            f"{n_test / s:,.0f}",
            f"{s / r.predict_seconds['bpnn']:.2f}",
            f"{forward_flops / s / 1e9:.1f}",
        ]
        for name, s in r.predict_seconds.items()
    ]
    title = (
        f"Table 3: class probabilities of the {n_test} test images in one call, best of "
        f"{args.repeats}{load('table 3')}"
    )
    out.append(table(title, PREDICT_HEADERS, rows, md))
    if r.memory:
        out.append(table("Peak memory", ["measure", "value"], r.memory, md))
    if r.health:
        out.append(health_table(r.health, args, load("table 4")))
    return "\n".join(out)


def health_table(rows: list[list[str]], args: argparse.Namespace, load: str = "") -> str:
    title = (
        f"Table 4: cost of train.health (bpnn.training.health.HealthMonitor), a whole epoch "
        f"(training, validation, callbacks) at batch {BATCH}, median of {args.health_epochs}; "
        f"the last two columns: the monitor's hooks timed inside the same epochs{load}"
    )
    return table(title, HEALTH_HEADERS, rows, args.markdown)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.health_only:
        log("loading MNIST through bpnn.data.load_dataset ...")
        print("\n".join(environment(None)))
        print(health_table(health_rows(load_mnist(), args.health_epochs), args))
        return
    torch = None if args.no_torch else import_torch()
    frameworks = ["bpnn"]
    frameworks += [] if args.no_sklearn else ["scikit-learn"]
    frameworks += [] if torch is None else ["torch"]
    frameworks += [] if args.no_numpy_loop else ["numpy loop"]
    header = environment(torch)
    print(report(measure(args, frameworks), args, header))


if __name__ == "__main__":
    main()
