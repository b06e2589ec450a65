"""Training curves of a run directory as PNG files (matplotlib, imported only here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
        figure.savefig(path)
        plt.close(figure)
        written.append(path)
    return written


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_lr_find(
    lrs: list[float],
    losses: list[float],
    smoothed: list[float],
    suggested_lr: float,
    path: Path,
    title: str,
) -> Path:
    """The learning-rate range test: loss against rate on a log axis, the smoothed curve over
    the raw one, the suggested rate marked."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(6, 4), dpi=100)
    axes.plot(lrs, losses, color="0.7", linewidth=1, label="loss")
    axes.plot(lrs, smoothed, linewidth=2, label="smoothed loss")
    axes.axvline(
        suggested_lr, color="tab:red", linestyle="--", label=f"suggested {suggested_lr:.3g}"
    )
    axes.set_xscale("log")
    axes.set_xlabel("learning rate")
    axes.set_ylabel("training loss")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    axes.set_title(f"{title}: learning-rate range test")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def plot_health(history: list[dict[str, Any]], folder: Path, title: str) -> list[Path]:
    """``health.png``: each layer's gradient norm and update ratio against the epoch (log
    scale), from the ``health`` entries of ``history``; nothing when there are none."""
    rows = [row for row in history if isinstance(row.get("health"), dict)]
    if not rows:
        return []
    plt = _pyplot()
    folder.mkdir(exist_ok=True)
    layers = sorted({key for row in rows for key in row["health"]}, key=int)
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(7.5, 6), dpi=100, sharex=True)
    for key, axes in (("grad_norm", top), ("update_ratio", bottom)):
        for layer in layers:
            points = [
                (row["epoch"], row["health"][layer][key])
                for row in rows
                if layer in row["health"] and (row["health"][layer].get(key) or 0) > 0
            ]
            if points:
                epochs, values = zip(*points, strict=True)
                axes.plot(epochs, values, marker="o", markersize=3, label=f"layer {layer}")
        axes.set_yscale("log")
        axes.grid(True, which="both", alpha=0.3)
        if axes.get_lines():  # nothing to label when every value is 0 or null
            axes.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    top.set_ylabel("gradient norm ||dL/dW||")
    bottom.set_ylabel("update ratio ||dW|| / ||W||")
    bottom.axhline(1e-3, color="0.5", linestyle=":", linewidth=1)
    bottom.set_xlabel("epoch")
    top.set_title(f"{title}: gradient health per layer")
    figure.tight_layout()
    path = folder / "health.png"
    figure.savefig(path)
    plt.close(figure)
    return [path]


def plot_overlay(histories: dict[str, list[dict[str, Any]]], out: Path) -> list[Path]:
    """Several runs' curves overlaid, one figure per metric, each curve labelled by its run's
    name: ``out`` (a ``.png``) for the loss, and ``out``'s stem with ``-accuracy``, ``-mae``,
    ... beside it for the others. Solid lines are validation curves, dashed ones training
    curves (one run's colour for both)."""
    plt = _pyplot()
    written = []
    for metric in METRICS.values():
        keys = [f"{split}_{metric.name}" for split in ("train", "val")]
        present = [
            key for key in keys if any(rows and key in rows[0] for rows in histories.values())
        ]
        if not present:
            continue
        figure, axes = plt.subplots(figsize=(7, 4.5), dpi=100)
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        for i, (name, rows) in enumerate(histories.items()):
            for key in present:
                if not rows or key not in rows[0]:
                    continue
                axes.plot(
                    [row["epoch"] for row in rows],
                    [row.get(key) for row in rows],
                    color=colors[i % len(colors)],
                    linestyle="-" if key.startswith("val") or len(present) == 1 else "--",
                    label=f"{name} ({key.split('_')[0]})" if len(present) > 1 else name,
                )
        values = [row.get(k) for rows in histories.values() for row in rows for k in present]
        if metric.log_scale and all(v is not None and v > 0 for v in values):
            axes.set_yscale("log")
        axes.set_xlabel("epoch")
        axes.set_ylabel(metric.label)
        axes.grid(True, alpha=0.3)
        axes.legend(fontsize="small")
        title = " vs ".join(histories) if len(histories) <= 3 else f"{len(histories)} runs"
        axes.set_title(f"{title}: {metric.label}")
        figure.tight_layout()
        path = _overlay_path(out, metric.name)
        figure.savefig(path)
        plt.close(figure)
        written.append(path)
    return written


def _overlay_path(out: Path, metric: str) -> Path:
    return out if metric == "loss" else out.with_name(f"{out.stem}-{metric}.png")


def overlay_paths(out: Path) -> list[Path]:
    """Every file ``plot_overlay(..., out)`` may write (to refuse overwriting any of them)."""
    return [_overlay_path(out, metric) for metric in METRICS]
