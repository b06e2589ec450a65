"""``bpnn gradcheck [CONFIG]``: the hand-written gradients against finite differences."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bpnn.cli.app import Command, JsonOutput, Overrides, app
from bpnn.cli.errors import reported_errors
from bpnn.cli.output import Output
from bpnn.cli.tables import Column, Table


@app.command(cls=Command, epilog="Example: bpnn gradcheck configs/digits.yaml --samples 16")
def gradcheck(
    config: Annotated[
        Path | None,
        typer.Argument(
            metavar="CONFIG",
            help="A config; without one, check every activation x loss pairing.",
            dir_okay=False,
        ),
    ] = None,
    overrides: Overrides = None,
    samples: Annotated[
        int, typer.Option(min=1, metavar="N", help="Samples of the training split to check on.")
    ] = 8,
    tol: Annotated[
        float, typer.Option(min=0, metavar="X", help="Largest relative error that passes.")
    ] = 1e-6,
    max_entries: Annotated[
        int,
        typer.Option(
            min=1, metavar="N", help="Check at most this many random entries of each tensor."
        ),
    ] = 500,
    as_json: JsonOutput = False,
) -> None:
    """Compare the hand-written gradients with finite differences (float64); exit 1 on failure."""
    import bpnn

    output = Output()
    with reported_errors(config):
        cfg = None if config is None else bpnn.load_config(config, overrides or [])
        report = bpnn.gradient_check(
            cfg, samples=samples, max_entries=max_entries, tolerance=tol, log=output.log
        )
    if as_json:
        output.json(report.as_json())
    else:
        from rich.text import Text

        title = "every activation x loss pairing" if config is None else str(config)
        columns = [
            *([Column("network", wrap=True)] if report.labelled else []),
            Column("tensor"),
            Column("shape", priority=2),
            Column("checked", priority=1, justify="right"),
            Column("skipped (kinks)", "kinks", priority=3, justify="right"),
            Column("max relative error", "rel. error", justify="right"),
            Column(""),
        ]
        table = Table(columns, title=f"gradient check: {title}")
        for label, t in report.checked:
            ok = t.passed(tol)
            table.add_row(
                *([label] if report.labelled else []),
                t.name,
                "x".join(map(str, t.shape)),
                str(t.checked),
                str(t.skipped_at_kinks),
                f"{t.max_relative_error:.2e}",
                Text("ok", style="green") if ok else Text("FAIL", style="red"),
            )
        output.table(table)
    if not report.passed:
        output.note(report.summary())
        raise typer.Exit(1)
    if as_json:
        output.note(report.summary())
    else:
        output.result(report.summary())
