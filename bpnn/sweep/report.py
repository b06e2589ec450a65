"""The ranked table of a sweep's trials (rich), and its JSON form."""

from __future__ import annotations

import json
from typing import Any

from rich.table import Table

from bpnn.sweep.runner import SweepOutcome


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def ranking_table(outcome: SweepOutcome, limit: int | None = None) -> Table:
    """One row per trial, best first: rank, trial, status, metric, each searched key, time."""
    spec = outcome.spec
    arrow = "max" if spec.direction == "maximize" else "min"
    table = Table(title=f"{outcome.sweep_dir}: {spec.method} search, {spec.metric} ({arrow})")
    for column in ("rank", "trial", "status", spec.metric, *spec.space, "seconds"):
        table.add_column(column, justify="left" if column == "status" else "right")
    for rank, record in enumerate(outcome.ranked[:limit], start=1):
        metric = record["metric"]
        table.add_row(
            str(rank),
            str(record["trial"]),
            record["status"] if record["status"] != "failed" else "[red]failed[/]",
            f"{metric:.4f}" if metric is not None else "-",
            *(format_value(record["overrides"].get(key)) for key in spec.space),
            f"{record['seconds']:.1f}",
        )
    return table


def ranking_json(outcome: SweepOutcome) -> str:
    return json.dumps(outcome.ranked)
