"""Training curves of a run directory as PNG files (matplotlib, imported only here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bpnn.errors import naming
from bpnn.metrics import METRICS


def plot_history(history: list[dict[str, Any]], folder: Path, title: str) -> list[Path]:
    """Write one figure per metric of the epochs in ``history`` (train and validation curves):
    ``loss.png``, and ``accuracy.png`` (classification) or ``mae.png`` and ``r2.png``
    (regression) into ``folder``; returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not history:
        return []
    folder.mkdir(exist_ok=True)
    epochs = [row["epoch"] for row in history]
    written = []
    for metric in METRICS.values():
        ylabel = metric.label
        keys = [
            f"{split}_{metric.name}"
            for split in ("train", "val")
            if f"{split}_{metric.name}" in history[0]
        ]
        if not keys:
            continue
        figure, axes = plt.subplots(figsize=(6, 4), dpi=100)
        for key in keys:
            values = [row.get(key) for row in history]
            axes.plot(epochs, values, marker="o", markersize=3, label=key)
        axes.set_xlabel("epoch")
        axes.set_ylabel(ylabel)
        if metric.log_scale and all(
            row.get(k) is not None and row[k] > 0 for row in history for k in keys
        ):
            axes.set_yscale("log")
        axes.grid(True, alpha=0.3)
        axes.legend()
        axes.set_title(f"{title}: {ylabel}")
        figure.tight_layout()
        path = folder / f"{metric.name}.png"
        try:
            with naming(path):
                figure.savefig(path)
        finally:
            plt.close(figure)
        written.append(path)
    return written
