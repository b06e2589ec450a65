"""``bpnn init [NAME]``: a commented starter config from an example shipped with bpnn."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bpnn.cli.app import Command, app
from bpnn.cli.errors import reported_errors
from bpnn.cli.output import Output


def _example_help() -> str:
    """The examples shipped in the package, listed without importing anything heavy."""
    from bpnn.examples import example_names

    return ", ".join(example_names())


@app.command(
    cls=Command,
    epilog="Example: bpnn init --example digits --out digits.yaml && bpnn train digits.yaml",
)
def init(
    name: Annotated[
        str | None,
        typer.Argument(
            metavar="NAME",
            help="The experiment's name (it names the run folders). Default: the example's.",
        ),
    ] = None,
    example: Annotated[
        str,
        typer.Option(
            "--example",
            "-e",
            metavar="EXAMPLE",
            help=f"The shipped example to start from: {_example_help()}.",
        ),
    ] = "digits",
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            metavar="FILE",
            help="Write here ('-': stdout; never over an existing file). Default: NAME.yaml.",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Write a commented starter config from one of the example configs shipped with bpnn."""
    import bpnn
    from bpnn.outputs import write_new

    output = Output()
    default = Path(f"{name or example}.yaml")
    target = out if out is not None else default
    with reported_errors():
        text = bpnn.starter_config(example, name, default if str(target) == "-" else target)
        if str(target) == "-":
            output.text(text)
            return
        write_new(target, text, "--out")
    output.note(f"wrote {target}; train it with: bpnn train {target}")
