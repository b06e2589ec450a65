"""What ``bpnn plot`` draws: one run's curves into its ``plots/``, several runs overlaid, or a
sweep's metric against each searched key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bpnn.errors import OutputError
from bpnn.outputs import refuse_existing
from bpnn.run import RunDirectory

#: where several runs are overlaid when no file is named
DEFAULT_OVERLAY = Path("comparison.png")


def plot_runs(run_dirs: list[Path], out: Path | None = None) -> list[Path]:
    """Draw ``run_dirs`` and return the files written. One sweep folder (and no ``out``): its
    plots. One run (and no ``out``): its curves into ``RUN/plots/``. Otherwise the runs'
    curves overlaid into ``out`` (default ``comparison.png``) and files beside it, one figure
    per metric, each run labelled by its folder's name (a second run of the same name gets a
    ``'``); nothing is overwritten."""
    from bpnn.sweep.plots import is_sweep_dir, plot_sweep

    if len(run_dirs) == 1 and out is None and is_sweep_dir(run_dirs[0]):
        return plot_sweep(run_dirs[0])
    runs = [RunDirectory(run_dir) for run_dir in run_dirs]
    for run in runs:
        run.require_metrics()
    if len(runs) == 1 and out is None:
        return runs[0].plot()
    from bpnn.plots import overlay_paths, plot_overlay  # start-up: matplotlib only to draw

    target = out if out is not None else DEFAULT_OVERLAY
    if target.suffix.lower() != ".png":
        raise OutputError(f"{target}: --out must be a .png file")
    refuse_existing(overlay_paths(target), "--out")
    histories: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        name = run.path.resolve().name
        while name in histories:  # two runs of the same folder name
            name += "'"
        histories[name] = run.read_metrics()
    return plot_overlay(histories, target, "--out")
