"""Training curves of a run directory as PNG files (matplotlib, imported only here)."""

from __future__ import annotations

import json
from pathlib import Path


def read_metrics(run_dir: Path) -> list[dict[str, float]]:
    """The epochs of ``metrics.jsonl`` in order."""
    path = run_dir / "metrics.jsonl"
    return [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]


def plot_run(run_dir: Path) -> list[Path]:
    """Write ``plots/loss.png`` (train and validation loss per epoch) and ``plots/accuracy.png``
    (classification) or ``plots/mae.png`` (regression); returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    history = read_metrics(run_dir)
    if not history:
        return []
    folder = run_dir / "plots"
    folder.mkdir(exist_ok=True)
    epochs = [row["epoch"] for row in history]
    written = []
    for metric, ylabel in (
        ("loss", "loss"),
        ("accuracy", "accuracy"),
        ("mae", "mean absolute error"),
    ):
        keys = [
            f"{split}_{metric}" for split in ("train", "val") if f"{split}_{metric}" in history[0]
        ]
        if not keys:
            continue
        figure, axes = plt.subplots(figsize=(6, 4), dpi=100)
        for key in keys:
            axes.plot(epochs, [row[key] for row in history], marker="o", markersize=3, label=key)
        axes.set_xlabel("epoch")
        axes.set_ylabel(ylabel)
        if metric == "loss" and all(row[k] > 0 for row in history for k in keys):
            axes.set_yscale("log")
        axes.grid(True, alpha=0.3)
        axes.legend()
        axes.set_title(f"{run_dir.name}: {ylabel}")
        figure.tight_layout()
        path = folder / f"{metric}.png"
        figure.savefig(path)
        plt.close(figure)
        written.append(path)
    return written
