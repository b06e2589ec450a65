"""``bpnn importance CHECKPOINT``: which raw input columns the model relies on."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bpnn.cli.app import CheckpointPath, Command, JsonOutput, app
from bpnn.cli.errors import reported_errors
from bpnn.cli.output import Output
from bpnn.cli.tables import Column, Table


@app.command(
    cls=Command,
    epilog="Example: bpnn importance runs/penguins-20261201-143353/checkpoints/best.npz "
    "--method gradient --plots importance.png",
)
def importance(
    checkpoint: CheckpointPath,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="Measure on this labelled file (as bpnn eval --data reads it) instead of the "
            "run's validation split.",
        ),
    ] = None,
    repeats: Annotated[
        int, typer.Option("--repeats", help="Shuffles of each column (at least 1).")
    ] = 5,
    method: Annotated[
        str,
        typer.Option(
            "--method",
            metavar="permutation|gradient",
            help="gradient: add the mean |gradient x input| of the predicted class's logit.",
        ),
    ] = "permutation",
    as_json: JsonOutput = False,
    plots: Annotated[
        Path | None,
        typer.Option(
            "--plots",
            metavar="OUT.png",
            help="Also draw the importances as a bar chart into this new PNG file.",
            dir_okay=False,
        ),
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Seed of the shuffles (default: the run's).")
    ] = None,
) -> None:
    """Permutation importance of each raw input column (a categorical column is one row): how
    much the score (accuracy, or R² for a regression) drops when the column is shuffled."""
    import bpnn

    output = Output()
    with reported_errors():
        report = bpnn.importance(
            checkpoint,
            data,
            repeats=repeats,
            method=method,
            seed=seed,
            plots=plots,
            log=output.log,
        )
    if as_json:
        output.json(report.as_json())
    else:
        gradient = report.method == "gradient"
        table = Table(
            [
                Column("column"),
                Column("importance", "imp.", justify="right"),
                Column("std", justify="right"),
                *([Column("|gradient x input|", "grad", justify="right")] if gradient else []),
            ],
            title=f"{checkpoint} on {report.described_data} ({report.samples} samples): drop in "
            f"{report.score} (from {report.baseline:.4f}) over {report.repeats} shuffles",
        )
        for row in report.columns:
            table.add_row(
                row.column,
                f"{row.importance:.4f}",
                f"{row.std:.4f}",
                *([f"{row.gradient:.4g}"] if gradient else []),
            )
        output.table(table)
