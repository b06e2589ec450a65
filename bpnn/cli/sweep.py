"""``bpnn sweep SWEEP_FILE``: many configs searched at once, each trial a run directory."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bpnn.cli.app import Quiet, RunCommand, app
from bpnn.cli.errors import reported_errors
from bpnn.cli.output import Output
from bpnn.cli.tables import Column, Table
from bpnn.outputs import json_text

if TYPE_CHECKING:
    from bpnn import SweepOutcome


@app.command(cls=RunCommand, epilog="Example: bpnn sweep examples/digits-sweep.yaml --workers 2")
def sweep(
    sweep_file: Annotated[
        Path,
        typer.Argument(
            metavar="SWEEP_FILE",
            help="The sweep file (YAML): base config, metric, method, space.",
            dir_okay=False,
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Sweep folder; an existing one is resumed (only missing trials run). "
            "Default: sweeps/NAME-TIME.",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1, help="Local worker processes, one BLAS thread each. Default: the cores."
        ),
    ] = None,
    dask: Annotated[
        str | None,
        typer.Option(
            "--dask",
            metavar="tcp://HOST:PORT",
            help="Run the trials on this Dask cluster (pip install 'bpnn[dask]'); the sweep "
            "folder must be on a filesystem its workers share.",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the ranked trials as JSON on stdout.")
    ] = False,
    quiet: Quiet = False,
) -> None:
    """Search many configs at once (grid, random or TPE, with Optuna).

    Each trial is a run directory under SWEEP_DIR/trials/; the best config goes to
    SWEEP_DIR/best.yaml. Running it again on the same --out runs only what is missing."""
    import bpnn

    output = Output()
    with reported_errors():
        outcome = bpnn.run_sweep_file(
            sweep_file,
            out,
            workers=workers,
            dask_address=dask,
            log=(lambda message: None) if quiet else output.log,
        )
    if as_json:
        output.json(outcome.ranked)
        return
    output.table(ranking_table(outcome))
    best = outcome.best
    if best is not None:
        output.result(f"best: trial {best['trial']} {outcome.spec.metric} {best['metric']:.4f}")
        output.result(f"best config: {outcome.sweep_dir / 'best.yaml'}")
    output.result(f"sweep folder: {outcome.sweep_dir}")


def searched(value: Any) -> str:
    """A searched value as the table shows it: a float to 4 significant digits, a list or a
    mapping as JSON."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | dict):
        return json_text(value)
    return str(value)


def short_key(key: str, keys: list[str]) -> str | None:
    """A searched key's short header: its last part (``optimizer.lr`` -> ``lr``) when no other
    searched key ends the same way."""
    last = key.rsplit(".", 1)[-1]
    if last == key or sum(k.rsplit(".", 1)[-1] == last for k in keys) > 1:
        return None
    return last


def ranking_table(outcome: SweepOutcome, limit: int | None = None) -> Table:
    """One row per trial, best first: rank, trial, status, metric, each searched key, time. The
    trial, its status, the metric and the searched values are never hidden."""
    from rich.text import Text

    from bpnn.metrics import short_name

    spec = outcome.spec
    arrow = "max" if spec.direction == "maximize" else "min"
    keys = list(spec.space)
    metric_short = short_name(spec.metric)
    columns = [
        Column("rank", "#", priority=1, justify="right"),
        Column("trial", justify="right"),
        Column("status"),
        Column(spec.metric, metric_short if metric_short != spec.metric else None, justify="right"),
        *(Column(key, short_key(key, keys), justify="right") for key in keys),
        Column("seconds", "s", priority=2, justify="right"),
    ]
    table = Table(
        columns, title=f"{outcome.sweep_dir}: {spec.method} search, {spec.metric} ({arrow})"
    )
    for rank, record in enumerate(outcome.ranked[:limit], start=1):
        metric = record["metric"]
        status = record["status"]
        table.add_row(
            str(rank),
            str(record["trial"]),
            Text(status, style="red") if status == "failed" else status,
            f"{metric:.4f}" if metric is not None else "-",
            *(searched(record["overrides"].get(key)) for key in keys),
            f"{record['seconds']:.1f}",
        )
    return table
