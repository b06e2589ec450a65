"""The metric against each searched key, one PNG per key (matplotlib, imported only here)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def is_sweep_dir(folder: Path) -> bool:
    """A folder ``bpnn sweep`` made: it holds the sweep's spec."""
    from bpnn.sweep.folder import SPEC_FILE

    return (folder / SPEC_FILE).is_file()


def plot_sweep(sweep_dir: Path) -> list[Path]:
    """Write ``plots/<key>.png`` for every searched key: the metric of each completed or
    pruned trial against the value it tried (log x for a log_uniform range; choices that are
    not numbers, such as layer lists, as categories). Returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bpnn.outputs import own_folder
    from bpnn.plots import save_figure
    from bpnn.sweep.folder import RESULTS_FILE, SPEC_FILE, read_records, read_saved_spec
    from bpnn.sweep.spec import Choices

    spec = read_saved_spec(sweep_dir / SPEC_FILE)
    records = [
        r
        for r in read_records(sweep_dir / RESULTS_FILE, spec.space).values()
        if r["metric"] is not None
    ]
    if not records:
        return []
    folder = sweep_dir / "plots"
    own_folder(folder)
    written = []
    for key, dimension in spec.space.items():
        values = [r["overrides"][key] for r in records]
        metrics = [r["metric"] for r in records]
        colors = ["tab:blue" if r["status"] == "completed" else "tab:gray" for r in records]
        figure, axes = plt.subplots(figsize=(6, 4), dpi=100)
        if all(_is_number(v) for v in values):
            axes.scatter(values, metrics, c=colors)
            if not isinstance(dimension, Choices) and dimension.kind == "log_uniform":
                axes.set_xscale("log")
        else:
            choices = dimension.values if isinstance(dimension, Choices) else []
            labels = _categories(choices, values)
            positions = [labels.index(json.dumps(v)) for v in values]
            axes.scatter(positions, metrics, c=colors)
            axes.set_xticks(range(len(labels)), labels)
        axes.set_xlabel(key)
        axes.set_ylabel(spec.metric)
        axes.grid(True, alpha=0.3)
        axes.set_title(f"{sweep_dir.name}: {spec.metric} by {key} (gray: pruned)")
        figure.tight_layout()
        path = folder / f"{key}.png"
        save_figure(figure, path)
        written.append(path)
    return written


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _categories(choices: list[Any], values: list[Any]) -> list[str]:
    """The choices in the sweep file's order (those never tried included), as JSON labels."""
    labels = [json.dumps(c) for c in choices]
    return labels + sorted({json.dumps(v) for v in values} - set(labels))
