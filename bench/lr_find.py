"""Does ``bpnn lr-find`` suggest a good learning rate? Train at its suggestion and at every rate
of a grid, and compare test accuracies.

Run from the repository root::

    python bench/lr_find.py                 # digits and MNIST, Adam and SGD with momentum
    python bench/lr_find.py --only digits   # one data set
    python bench/lr_find.py --markdown      # the table as Markdown

For each data set (``configs/digits.yaml``, 20 epochs; ``configs/mnist.yaml``, 3 epochs,
without dropout) and optimizer (``adam``; ``momentum`` 0.9), with a constant schedule: run the
range test with its defaults (100 steps, 1e-7 to 10), then train the same config (same seed,
so the same initial weights and batches) at the suggested rate and at each rate of the grid
1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, and report the test accuracies: the suggestion's,
the grid's best, and the gap in percentage points (the target: within 1). A rate that makes
the loss diverge counts as accuracy 0. Timings are not the point; nothing here asserts.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bpnn.config import load_config  # noqa: E402
from bpnn.errors import TrainingError  # noqa: E402
from bpnn.evaluation import evaluate  # noqa: E402
from bpnn.model import make_seeds  # noqa: E402
from bpnn.run import build_model, load_data, make_trainer  # noqa: E402
from bpnn.tools.lr_find import lr_find  # noqa: E402

GRID = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
SETUPS = {
    "digits": ("configs/digits.yaml", 20, ()),
    "mnist": ("configs/mnist.yaml", 3, ("model.dropout=0.0",)),
}
OPTIMIZERS = {"adam": ("optimizer.name=adam",), "momentum": ("optimizer.name=momentum",)}


def test_accuracy(config, data, lr: float) -> float:
    """Train ``config`` at ``lr`` (its own seed, no run directory) and return the test accuracy."""
    config = config.model_copy(update={"optimizer": config.optimizer.model_copy(update={"lr": lr})})
    init_rng, shuffle_rng = make_seeds(config.seed)
    model = build_model(config, data, init_rng)
    trainer = make_trainer(config, model, data, shuffle_rng, [])
    try:
        trainer.fit()
    except TrainingError:
        return 0.0
    return evaluate(model, data.X_test, data.y_test, prefix="test_")["test_accuracy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=sorted(SETUPS), action="append")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument(
        "--mnist-epochs", type=int, default=3, help="epochs of each MNIST training (default 3)"
    )
    args = parser.parse_args()
    rows = []
    for name in args.only or list(SETUPS):
        path, epochs, extra = SETUPS[name]
        if name == "mnist":
            epochs = args.mnist_epochs
        for optimizer, options in OPTIMIZERS.items():
            overrides = [*extra, *options, "schedule=constant", f"train.epochs={epochs}"]
            config = load_config(ROOT / path, overrides)
            started = time.perf_counter()
            found = lr_find(config)
            find_seconds = time.perf_counter() - started
            data = load_data(config)
            grid = {lr: test_accuracy(config, data, lr) for lr in GRID}
            rules = {  # the suggestion and the three other opinions lr-find prints
                "suggested": found.suggested_lr,
                "steepest": found.steepest_lr,
                "min/10": found.min_loss_lr,
                "valley": found.valley_lr,
            }
            accuracies = {rule: test_accuracy(config, data, lr) for rule, lr in rules.items()}
            best_lr = max(grid, key=grid.__getitem__)
            rows.append((name, optimizer, epochs, rules, accuracies, best_lr, grid, find_seconds))
            print(f"{name} {optimizer}: done", file=sys.stderr)
    header = ["data", "optimizer", "epochs"]
    for rule in ("suggested", "steepest", "min/10", "valley"):
        header += [f"{rule} lr", "test acc"]
    header += ["grid best lr", "grid best acc"]
    header += [f"gap {rule} (pp)" for rule in ("suggested", "steepest", "min/10", "valley")]
    header += ["lr-find s"]
    lines = []
    for name, optimizer, epochs, rules, accuracies, best_lr, grid, seconds in rows:
        line = [name, optimizer, str(epochs)]
        for rule, lr in rules.items():
            line += [f"{lr:.3g}", f"{accuracies[rule]:.4f}"]
        line += [f"{best_lr:g}", f"{grid[best_lr]:.4f}"]
        line += [f"{100 * (grid[best_lr] - accuracy):+.2f}" for accuracy in accuracies.values()]
        lines.append((*line, f"{seconds:.1f}"))
    grid_header = ("data", "optimizer", *(f"{lr:g}" for lr in GRID))
    grid_lines = [(r[0], r[1], *(f"{r[6][lr]:.4f}" for lr in GRID)) for r in rows]
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(
        f"lr-find benchmark, {stamp}, {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}"
    )
    for head, body in ((header, lines), (grid_header, grid_lines)):
        if args.markdown:
            print("| " + " | ".join(head) + " |")
            print("|" + "---|" * len(head))
            for line in body:
                print("| " + " | ".join(line) + " |")
        else:
            widths = [max(len(x) for x in col) for col in zip(head, *body, strict=True)]
            for line in (head, *body):
                print("  ".join(x.rjust(w) for x, w in zip(line, widths, strict=True)))
        print()


if __name__ == "__main__":
    main()
