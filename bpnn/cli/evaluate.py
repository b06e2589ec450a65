"""``bpnn eval CHECKPOINT``: a checkpoint's metrics, per-class report and confusion matrix."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from bpnn.cli.app import CheckpointPath, Command, app
from bpnn.cli.errors import reported_errors
from bpnn.cli.output import Output
from bpnn.cli.tables import Column, Table


@app.command(
    "eval",
    cls=Command,
    epilog="Example: bpnn eval runs/digits-20261201-143353/checkpoints/best.npz --plots report/",
)
def evaluate(
    checkpoint: CheckpointPath,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="Evaluate on this labelled file (CSV or Parquet with the target column, or NPZ "
            "with X, y; for source images a folder of class folders) "
            "instead of the test split of the training data.",
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print one JSON object on stdout (classification adds per_class and "
            "confusion_matrix).",
        ),
    ] = False,
    plots: Annotated[
        Path | None,
        typer.Option(
            "--plots",
            metavar="DIR",
            help="Also draw the confusion matrix (classification) or predicted against true "
            "values (regression) as PNG into this folder.",
            file_okay=False,
        ),
    ] = None,
) -> None:
    """Evaluate a checkpoint: metrics, per-class report and confusion matrix.

    On the test split of the data it was trained on (or on --data): the metrics, and for a
    classifier precision, recall, F1 and support per class and the confusion matrix."""
    import bpnn

    output = Output()
    with reported_errors():
        if data is None:
            metrics = bpnn.evaluate(checkpoint, log=output.log, plots=plots)
        else:
            metrics = bpnn.evaluate_file(checkpoint, data, log=output.log, plots=plots)
    if as_json:
        output.json(metrics)
    else:
        print_report(output, metrics, str(checkpoint))


SCORES = (("precision", "prec"), ("recall", "rec"), ("f1", None))


def print_report(output: Output, metrics: dict[str, Any], title: str) -> None:
    """The metrics table, then for a classifier the per-class table and the confusion matrix
    (for a multi-label model the per-label table)."""
    table = Table([Column("metric"), Column("value", justify="right")], title=title)
    for key, value in metrics.items():
        if not isinstance(value, list | dict):
            table.add_row(key, f"{value:.6g}" if isinstance(value, float) else str(value))
    output.table(table)
    if "per_label" in metrics:  # multi-label: each label a yes/no of its own
        per_label = Table(
            [
                Column("label"),
                *(Column(name, short, justify="right") for name, short in SCORES),
                Column("support", "n", priority=1, justify="right"),
                *(Column(name, priority=2, justify="right") for name in ("TN", "FP", "FN", "TP")),
            ],
            title="per label (predicted: p > 0.5)",
        )
        for (name, row), counts in zip(
            metrics["per_label"].items(), metrics["label_confusion"], strict=True
        ):
            per_label.add_row(
                name,
                *(f"{row[key]:.4f}" for key, _ in SCORES),
                str(row["support"]),
                *(str(count) for pair in counts for count in pair),
            )
        output.table(per_label)
    if "per_class" not in metrics:
        return
    per_class = Table(
        [
            Column("class"),
            *(Column(name, short, justify="right") for name, short in SCORES),
            Column("support", "n", priority=1, justify="right"),
        ],
        title="per class",
    )
    for name, row in metrics["per_class"].items():
        per_class.add_row(name, *(f"{row[key]:.4f}" for key, _ in SCORES), str(row["support"]))
    output.table(per_class)
    matrix = Table(
        [
            Column("true \\ predicted", "true"),
            *(Column(name, priority=1, justify="right") for name in metrics["classes"]),
        ],
        title="confusion matrix (rows: true class, columns: predicted)",
    )
    for name, row in zip(metrics["classes"], metrics["confusion_matrix"], strict=True):
        matrix.add_row(name, *(str(count) for count in row))
    output.table(matrix)
