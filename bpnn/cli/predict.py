"""``bpnn predict CHECKPOINT INPUT``: a row of predictions per sample of a file (or stdin)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from bpnn.cli.app import CheckpointPath, Command, app
from bpnn.cli.errors import reported_errors
from bpnn.cli.output import Output


@app.command(
    cls=Command,
    epilog="Example: bpnn predict runs/iris-20261201-143353/checkpoints/best.npz examples/iris.csv",
)
def predict(
    checkpoint: CheckpointPath,
    input_file: Annotated[
        Path,
        typer.Argument(
            metavar="INPUT",
            help="CSV, Parquet, NPZ or IDX file of samples (for source images: an image or a "
            "folder of them); '-': CSV rows on standard input.",
            allow_dash=True,
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Write the table here instead of stdout (must not exist)."
        ),
    ] = None,
    id_column: Annotated[
        str | None,
        typer.Option("--id", metavar="COLUMN", help="Copy this column of INPUT through, first."),
    ] = None,
    fmt: Annotated[
        str,
        typer.Option("--format", help="csv, or jsonl (one JSON object per row).", metavar="FORMAT"),
    ] = "csv",
) -> None:
    """Predict a file of samples: a row per sample (label and probabilities, or values)."""
    import bpnn

    output = Output()

    def answer(samples: Path, log: Callable[[str], None]) -> None:
        if out is None:
            output.text(bpnn.predict(checkpoint, samples, id_column=id_column, fmt=fmt, log=log))
        else:
            rows = bpnn.write_predictions(
                checkpoint, samples, out, id_column=id_column, fmt=fmt, log=log
            )
            output.note(f"wrote {rows} predictions to {out}")

    with reported_errors():
        bpnn.check_prediction_request(fmt, out)  # before reading a sample, stdin above all
        if str(input_file) != "-":
            answer(input_file, output.log)
            return
        from bpnn.streams import stdin_copy

        with stdin_copy("stdin.csv") as stdin:
            answer(stdin.path, lambda message: output.log(stdin.named(message)))
