"""``bpnn runs [DIR...]``: a table of the runs found, every value whole."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from bpnn.cli.app import Command, app
from bpnn.cli.errors import reported_errors
from bpnn.cli.output import Output
from bpnn.cli.tables import Column, Table


@app.command("runs", cls=Command, epilog="Example: bpnn runs runs/ --sort test_accuracy")
def list_runs(
    folders: Annotated[
        list[Path] | None,
        typer.Argument(
            metavar="DIR...",
            help="Run directories, or folders of them (default: runs/).",
            file_okay=False,
        ),
    ] = None,
    sort: Annotated[
        str | None,
        typer.Option(help="Sort by a column (e.g. seconds, test_accuracy; -KEY: descending)."),
    ] = None,
    filters: Annotated[
        list[str] | None,
        typer.Option(
            "--filter",
            metavar="KEY=VALUE",
            help="Keep runs whose column equals VALUE (repeatable).",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON list of objects on stdout.")
    ] = False,
) -> None:
    """A table of the runs found: data, architecture, optimizer, results, how each ended."""
    import bpnn

    output = Output()
    with reported_errors():
        records = bpnn.list_runs(folders or [Path("runs")], filters or [], sort)
    if as_json:
        output.json(records)
    else:
        output.table(runs_table(records))


#: the columns of the table, most important (priority 0, never hidden) to least; the test
#: metrics and the stop reason may break between their words when nothing else is left to hide
TABLE_COLUMNS = (
    Column("name"),
    Column("status"),
    Column("started", priority=7),
    Column("data", priority=5),
    Column("architecture", "arch", priority=3),
    Column("optimizer", "opt", priority=4),
    Column("epochs", "ep", priority=2, justify="right"),
    Column("best", priority=1),
    Column("test", wrap=True),
    Column("stop reason", "stop", priority=8, wrap=True),
    Column("seconds", "s", priority=6, justify="right"),
)


def runs_table(records: Sequence[dict[str, Any]]) -> Table:
    """The table ``bpnn runs`` prints: one row per record, every value whole."""
    from bpnn.metrics import METRICS, format_value

    table = Table(list(TABLE_COLUMNS), title=f"{len(records)} runs")
    for r in records:
        best = "-"
        if r["best_value"] is not None:
            best = f"{r['best_metric']} {format_value(r['best_metric'], r['best_value'])}"
        tests = [  # the headline metrics; --json and --sort have every one
            f"{METRICS[k[len('test_') :]].short} {format_value(k, v)}"
            for k, v in r["test_metrics"].items()
            if METRICS[k[len("test_") :]].headline
        ]
        optimizer = r["optimizer"] or "-"
        if isinstance(r["lr"], float | int):
            optimizer += f" {r['lr']:g}"
        table.add_row(
            r["name"],
            r["status"],
            (r["started"] or "-")[:16],  # to the minute; --json has the seconds
            r["data"] or "?",
            r["architecture"] or "?",
            optimizer,
            r["epochs"],
            best,
            tests or "-",
            r["stop_reason"] or "-",
            f"{r['seconds']:.1f}" if r["seconds"] is not None else "-",
        )
    return table
