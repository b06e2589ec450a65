"""``bpnn diagnose RUN_DIR``: per-layer gradient and activation health, and the diagnoses."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from bpnn.cli.app import Command, JsonOutput, app
from bpnn.cli.errors import reported_errors
from bpnn.cli.output import Output
from bpnn.cli.tables import Column, Table


@app.command(cls=Command, epilog="Example: bpnn diagnose runs/vanishing-20261201-150000")
def diagnose(
    run_dir: Annotated[
        Path, typer.Argument(metavar="RUN_DIR", help="A run directory.", file_okay=False)
    ],
    every: Annotated[
        bool, typer.Option("--all", help="Every epoch (default: at most 4, evenly spread).")
    ] = False,
    as_json: JsonOutput = False,
) -> None:
    """Per-layer gradient and activation health of a run, and its diagnoses."""
    import bpnn

    output = Output()
    with reported_errors():
        report = bpnn.health_report(run_dir)
    if as_json:
        output.json(report.as_json())
        return
    table = Table(
        [
            Column("epoch", justify="right"),
            Column("layer", justify="right"),
            Column("grad norm", "grad", justify="right"),
            Column("update ratio", "update", justify="right"),
            Column("dead", priority=1, justify="right"),
            Column("saturated", "sat.", priority=1, justify="right"),
        ],
        title=f"gradient health: {run_dir}",
    )
    for row in report.epochs(every):
        layers = report.layers(row)
        for number, (layer, values) in enumerate(layers):
            table.add_row(
                str(row["epoch"]) if number == 0 else "",
                layer,
                _cell(values.get("grad_norm")),
                _cell(values.get("update_ratio")),
                _cell(values.get("dead_fraction"), percent=True),
                _cell(values.get("saturated_fraction"), percent=True),
                end_section=number == len(layers) - 1,
            )
    output.table(table)
    if not report.diagnoses:
        output.result("no diagnoses: the gradients and activations look healthy")
    for item in report.diagnoses:
        output.result(f"epoch {item['epoch']}, {item['kind']}: {item['message']}")


def _cell(value: Any, percent: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:.0%}" if percent else f"{value:.2e}"
