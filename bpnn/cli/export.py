"""``bpnn export CHECKPOINT --format F --out FILE``: ONNX, PyTorch or scikit-learn."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bpnn.cli.app import CheckpointPath, Command, app
from bpnn.cli.errors import reported_errors
from bpnn.cli.output import Output


@app.command(
    cls=Command,
    epilog="Example: bpnn export runs/digits-20261201-143353/checkpoints/best.npz "
    "--format onnx --out digits.onnx",
)
def export(
    checkpoint: CheckpointPath,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            metavar="FORMAT",
            help="onnx, torch (safetensors and the Python that loads them) or sklearn (skops).",
        ),
    ],
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="The file to write (must not exist).", dir_okay=False),
    ],
) -> None:
    """Export a checkpoint to ONNX, PyTorch or scikit-learn; it takes the raw inputs of predict."""
    import bpnn

    output = Output()
    with reported_errors():
        result = bpnn.export_checkpoint(checkpoint, fmt, out)
    if result.source is not None:
        output.text(result.source)
    for path in result.written:
        output.note(f"wrote {path}")
