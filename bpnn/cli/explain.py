"""``bpnn explain CONFIG``: one forward and backward pass, every number with its formula."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bpnn.cli.app import Command, ConfigPath, JsonOutput, Overrides, app
from bpnn.cli.errors import reported_errors
from bpnn.cli.output import Output


@app.command(cls=Command, epilog="Example: bpnn explain configs/worked-example.yaml --step")
def explain(
    config: ConfigPath,
    overrides: Overrides = None,
    sample: Annotated[
        int, typer.Option(min=0, help="The sample of the training split to explain.")
    ] = 0,
    batch: Annotated[
        int | None,
        typer.Option(min=1, help="Explain the first N samples of the training split at once."),
    ] = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            help="Use this checkpoint's weights instead of the initial ones.", dir_okay=False
        ),
    ] = None,
    step: Annotated[
        bool, typer.Option("--step", help="Also show the optimizer's update of every parameter.")
    ] = False,
    full: Annotated[
        bool, typer.Option("--full", help="Show every entry of large tensors too.")
    ] = False,
    as_json: JsonOutput = False,
    markdown: Annotated[
        Path | None,
        typer.Option(
            "--markdown",
            help="Also write the step as a Markdown document (LaTeX formulas; must not exist).",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """One forward and backward pass (and --step: one update), every number with its formula."""
    import bpnn
    from bpnn.outputs import refuse_existing, write_new

    if batch is not None and sample != 0:
        raise typer.BadParameter("give --sample or --batch, not both", param_hint="--batch")
    output = Output()
    with reported_errors(config):
        if markdown is not None:
            refuse_existing([markdown], "--markdown")
        cfg = bpnn.load_config(config, overrides or [])
        result = bpnn.explain(
            cfg,
            sample=sample,
            batch=batch,
            checkpoint=checkpoint,
            step=step,
            source=str(config),
            log=output.log,
        )
        if markdown is not None:
            write_new(markdown, bpnn.explanation_markdown(result, full), "--markdown")
    if as_json:
        output.json(bpnn.explanation_json(result))
    else:
        output.text(bpnn.explanation_text(result, full))
