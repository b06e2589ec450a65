"""``bpnn train CONFIG``: train the network a config describes and write a run directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from bpnn.cli.app import ConfigPath, JsonSummary, Overrides, Quiet, RunCommand, app
from bpnn.cli.errors import reported_errors
from bpnn.cli.output import Output
from bpnn.cli.tables import fit_items


@app.command(
    cls=RunCommand, epilog="Example: bpnn train configs/digits.yaml --set optimizer.lr=0.003"
)
def train(
    config: ConfigPath,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            metavar="DIR",
            help="Run directory (must not exist or be empty). Default: runs/NAME-TIME.",
        ),
    ] = None,
    overrides: Overrides = None,
    quiet: Quiet = False,
    as_json: JsonSummary = False,
) -> None:
    """Train the network a config describes and write a run directory."""
    import bpnn
    from bpnn.training.progress import make_progress, showing

    output = Output()
    progress = make_progress(output.stderr, quiet)
    with reported_errors(config), showing(progress, "loading data"):
        cfg = bpnn.load_config(config, overrides or [])
        run_dir, summary = bpnn.train(cfg, out, progress=progress, log=output.log)
    print_summary(output, summary, run_dir, as_json)


def print_summary(output: Output, summary: dict[str, Any], run_dir: Path, as_json: bool) -> None:
    """A run's end (train, resume): its final metrics and how it stopped, on as many lines as
    the width needs, then its run directory; or with ``--json`` the summary as one object."""
    from bpnn.metrics import format_value, metric_names, short_name

    if as_json:
        output.json({**summary, "run_dir": str(run_dir)})
        return
    split = "test" if summary.get("test_samples") else "train"  # no test split: training
    keys = [
        key for key in metric_names(splits=(split,), headline=True) if summary.get(key) is not None
    ]
    when = (
        f"(best epoch {summary['best_epoch']} of {summary['epochs_run']}, "
        f"{summary['total_seconds']:.1f}s)"
    )
    width = output.width  # a terminal's or COLUMNS; in a pipe one line, whatever its length
    lines = ["  ".join([*(f"{key} {format_value(key, summary[key])}" for key in keys), when])]
    if width is not None and len(lines[0]) > width:  # short names, then more lines
        items = [f"{short_name(key)} {format_value(key, summary[key])}" for key in keys]
        lines = fit_items([*items, when], width)
    lines += fit_items(f"stopped: {summary['stop_reason']}".split(" "), width, separator=" ")
    for line in lines:
        output.result(line)
    output.result(f"run directory: {run_dir}")
