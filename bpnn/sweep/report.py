"""The ranked table of a sweep's trials, and its JSON form."""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text

from bpnn.cli_output import Column, Table
from bpnn.metrics import short_name
from bpnn.sweep.runner import SweepOutcome


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | dict):
        return json.dumps(value)
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
            *(format_value(record["overrides"].get(key)) for key in keys),
            f"{record['seconds']:.1f}",
        )
    return table


def ranking_json(outcome: SweepOutcome) -> Any:
    """The ranking as JSON data (the CLI prints it strict)."""
    return outcome.ranked
