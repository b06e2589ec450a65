"""``bpnn lr-find CONFIG``: the learning-rate range test, and the rate it suggests."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from bpnn.cli.app import Command, ConfigPath, JsonOutput, Overrides, app
from bpnn.cli.errors import reported_errors
from bpnn.cli.output import Output


@app.command("lr-find", cls=Command, epilog="Example: bpnn lr-find configs/digits.yaml --out lr")
def lr_find(
    config: ConfigPath,
    overrides: Overrides = None,
    start: Annotated[float, typer.Option(min=0, help="The first learning rate.")] = 1e-7,
    end: Annotated[float, typer.Option(min=0, help="The last learning rate.")] = 10.0,
    steps: Annotated[int, typer.Option(min=2, help="Batches to train at most.")] = 100,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Write lr_find.png and lr_find.csv into this folder (never overwritten).",
            file_okay=False,
        ),
    ] = None,
    as_json: JsonOutput = False,
) -> None:
    """Learning-rate range test: train a few batches at geometrically growing rates and
    suggest a rate (nothing is written without --out)."""
    import bpnn

    output = Output()
    with reported_errors(config):
        cfg = bpnn.load_config(config, overrides or [])
        result = bpnn.lr_find(cfg, start=start, end=end, steps=steps, log=output.log)
        written = bpnn.write_lr_find(result, out, cfg.name) if out is not None else []
    if as_json:
        output.json(result.as_json())
    else:
        if output.is_terminal:
            draw_lr_curve(output, result)
        output.result(
            f"range test: {len(result.lrs)} of {result.steps} steps from {result.start:g} to "
            f"{result.end:g}; stopped: {result.stop_reason}"
        )
        output.result(
            f"suggested lr {result.suggested_lr:.3g} (start of the descent: 1/4 of the way down)"
        )
        output.result(f"steepest descent: {result.steepest_lr:.3g} (second opinion)")
        output.result(f"minimum's lr / 10: {result.min_loss_lr:.3g} (third opinion)")
        output.result(f"valley: {result.valley_lr:.3g} (fourth opinion, fastai's rule)")
        output.result(f"--set optimizer.lr={result.suggested_lr:.3g}")
    for message in result.warnings:
        output.log(f"warning: {message}")
    for path in written:
        output.log(f"wrote {path}")


def draw_lr_curve(output: Output, result: Any) -> None:
    """The range test's curve in the terminal (plotext, the optional extra ``plot``)."""
    import math

    try:
        import plotext as plt
    except ImportError:
        output.log("(pip install 'bpnn[plot]' to see the curve here; --out DIR writes a PNG)")
        return
    plt.clear_figure()
    plt.plot(result.lrs, result.smoothed, label="smoothed loss")
    plt.vline(result.suggested_lr)
    plt.xscale("log")
    decades = [
        10.0**k
        for k in range(math.floor(math.log10(result.start)), math.ceil(math.log10(result.end)) + 1)
    ]
    plt.xticks(decades, [f"{d:.0e}" for d in decades])
    plt.theme("clear")
    plt.title(f"learning-rate range test (suggested {result.suggested_lr:.3g})")
    plt.xlabel("learning rate")
    plt.plotsize(min(plt.terminal_width() or 80, 100), 20)
    plt.show()
