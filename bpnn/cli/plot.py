"""``bpnn plot RUN_DIR...``: a run's training curves, several runs overlaid, or a sweep."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bpnn.cli.app import Command, app
from bpnn.cli.errors import reported_errors
from bpnn.cli.output import Output


@app.command(cls=Command, epilog="Example: bpnn plot runs/digits-20261201-143353")
def plot(
    run_dirs: Annotated[
        list[Path],
        typer.Argument(
            metavar="RUN_DIR...",
            help="One or more run directories, or a sweep folder.",
            file_okay=False,
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Overlay the runs' curves: the loss in this PNG, other metrics beside it as "
            "STEM-accuracy.png, ... (default with several runs: comparison.png; never "
            "overwritten).",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Draw a run's training curves; overlay several runs; plot a sweep.

    One run: its curves into RUN/plots/. Several runs (or --out): their curves overlaid, one
    figure per metric, labelled by run name. A sweep folder: the metric against each searched
    key."""
    import bpnn

    output = Output()
    with reported_errors():
        written = bpnn.plot(run_dirs, out)
    for path in written:
        output.result(str(path))
