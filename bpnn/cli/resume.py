"""``bpnn resume RUN_DIR``: continue a run from its last checkpoint, bit for bit."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bpnn.cli.app import JsonSummary, Quiet, RunCommand, app
from bpnn.cli.errors import reported_errors
from bpnn.cli.output import Output
from bpnn.cli.train import print_summary


@app.command(cls=RunCommand, epilog="Example: bpnn resume runs/digits-20261201-143353 --epochs 60")
def resume(
    run_dir: Annotated[
        Path,
        typer.Argument(metavar="RUN_DIR", help="A run directory to continue.", file_okay=False),
    ],
    epochs: Annotated[
        int | None,
        typer.Option(
            min=1, metavar="N", help="Train until this many epochs in all (extends the run)."
        ),
    ] = None,
    quiet: Quiet = False,
    as_json: JsonSummary = False,
) -> None:
    """Continue a run from its last checkpoint, exactly where it stopped (metrics are appended)."""
    import bpnn
    from bpnn.training.progress import make_progress, showing

    output = Output()
    progress = make_progress(output.stderr, quiet)
    with reported_errors(), showing(progress, "loading data"):
        summary = bpnn.resume(run_dir, epochs=epochs, progress=progress, log=output.log)
    print_summary(output, summary, run_dir, as_json)
