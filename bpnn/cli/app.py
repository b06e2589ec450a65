"""The ``bpnn`` program: the Typer app every command registers on, the command classes (plain
help, flags shown as flags, a usage line naming ``CONFIG``), and the arguments and options
several commands share. A command module imports ``app`` and decorates its function; the
registration is the import line in ``bpnn/cli/__init__.py``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup


def _as_flags(params: list[Any]) -> list[Any]:
    """Typer shows a flag with the type of a value (``--json <bool>``); a flag takes none, so its
    type column is left empty."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


def _plain_help(command: Any) -> None:
    """Make the help texts of ``command`` (and of its subcommands) plain text, once: Typer
    renders them as rich markup, where the ``[dask]`` of ``pip install 'bpnn[dask]'`` is a style
    tag and vanishes. Every bracket bpnn writes in a help text is meant literally."""
    if getattr(command, "_plain_help", False):
        return
    from rich.markup import escape

    for attribute in ("help", "short_help", "epilog"):
        if getattr(command, attribute, None):
            setattr(command, attribute, escape(getattr(command, attribute)))
    for param in command.params:
        if getattr(param, "help", None):
            param.help = escape(param.help)
    command._plain_help = True
    for subcommand in getattr(command, "commands", {}).values():
        _plain_help(subcommand)


def _usage_name(argument: Any) -> str:
    """An argument as the usage line shows it: ``CONFIG``, ``[NAME]`` when it may be left out,
    ``RUN_DIR...`` when it takes several, ``[DIR...]`` none or several (Typer writes a required
    one as ``{config}``, and ``{RUN_DIR...}...``)."""
    name = (argument.metavar or argument.name).upper().removesuffix("...")
    if argument.nargs != 1:
        name += "..."
    return name if argument.required else f"[{name}]"


class Command(TyperCommand):
    """A command whose help shows flags as flags, is plain text (``_plain_help``) and whose usage
    line names its arguments as ``CONFIG`` (``_usage_name``).

    ``stdout_is_the_result``: the command's job is what it prints (predict, eval, runs, ...);
    when stdout is closed before it has all been written (``bpnn predict ... | head``), the
    command ends quietly with exit ``STDOUT_CLOSED`` (141, as ``cat`` would). A run command
    (``RunCommand``) keeps its run's exit code."""

    stdout_is_the_result = True

    def get_params(self, ctx: Any) -> list[Any]:
        return _as_flags(super().get_params(ctx))

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                pieces.append(_usage_name(param))
            else:
                pieces.extend(param.get_usage_pieces(ctx))
        return pieces

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _plain_help(self)
        super().format_help(ctx, formatter)

    def invoke(self, ctx: Any) -> Any:
        result = super().invoke(ctx)
        if self.stdout_is_the_result:
            from bpnn import streams

            if streams.lost("stdout"):
                raise typer.Exit(streams.STDOUT_CLOSED)
        return result


class RunCommand(Command):
    """A command that trains (train, resume, sweep): its job is the run directory, so a closed
    stdout or stderr changes nothing; training goes on and the exit code is the run's."""

    stdout_is_the_result = False


class Group(TyperGroup):
    """A command group whose help shows flags as flags (``--help``, ``--version``) and is plain
    text (``_plain_help``)."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _as_flags(super().get_params(ctx))

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _plain_help(self)
        super().format_help(ctx, formatter)

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        """Run the program; a refusal of the command line itself (a missing argument, an
        unknown command or option, a value out of range, a CONFIG that is not a file) is one
        line, ``error: ...`` naming the argument and ``bpnn COMMAND --help``, with exit 2, as
        bpnn's own refusals are, instead of Click's usage box."""
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        import sys

        try:  # Typer 0.29 and later carry their own copy of Click, and their own Abort
            from typer._click import exceptions as click
            from typer.exceptions import Abort
        except ImportError:
            from click import exceptions as click  # type: ignore[no-redef]
            from click.exceptions import Abort  # type: ignore[assignment]

        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except click.UsageError as error:
            command = error.ctx.command_path if error.ctx is not None else "bpnn"
            message = " ".join(error.format_message().split()).rstrip(".")
            print(f"error: {message} (see {command} --help)", file=sys.stderr)
            sys.exit(error.exit_code)
        except click.ClickException as error:
            print(f"error: {' '.join(error.format_message().split())}", file=sys.stderr)
            sys.exit(error.exit_code)
        except Abort:
            print("interrupted", file=sys.stderr)
            sys.exit(130)
        sys.exit(code if isinstance(code, int) else 0)


class App(typer.Typer):
    """The ``bpnn`` program: before anything is parsed or printed, its standard streams are
    guarded (``bpnn.streams``): a closed pipe or terminal never changes what bpnn does."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from bpnn.streams import guard_standard_streams

        guard_standard_streams()
        return super().__call__(*args, **kwargs)


app = App(
    name="bpnn",
    help="Train multilayer perceptrons with backpropagation written from scratch in NumPy.",
    cls=Group,
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Example: bpnn init --example digits --out digits.yaml && bpnn train digits.yaml",
)

ConfigPath = Annotated[
    Path,
    typer.Argument(metavar="CONFIG", help="The experiment config (YAML).", dir_okay=False),
]
CheckpointPath = Annotated[
    Path,
    typer.Argument(
        metavar="CHECKPOINT",
        help="A checkpoint, e.g. runs/NAME/checkpoints/best.npz.",
        dir_okay=False,
    ),
]
Overrides = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        "-s",
        metavar="KEY=VALUE",
        help="Override a config key, e.g. --set optimizer.lr=0.01 (repeatable; values are YAML).",
    ),
]

Quiet = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress output; only the final summary.")
]
JsonSummary = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Print only the final summary, as one JSON object on stdout (the keys of "
        "summary.json and run_dir); progress still goes to stderr.",
    ),
]

JsonOutput = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]


def _version(value: bool) -> None:
    if value:
        from bpnn import __version__

        print(f"bpnn {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
    debug: Annotated[
        bool,
        typer.Option("--debug", help="Show the traceback of an error (or set BPNN_DEBUG=1)."),
    ] = False,
) -> None:
    """Train multilayer perceptrons with backpropagation written from scratch in NumPy."""
    if debug:
        os.environ["BPNN_DEBUG"] = "1"
