"""``bpnn config show|check|schema``: inspect and check experiment configs."""

from __future__ import annotations

import typer

from bpnn.cli.app import Command, ConfigPath, Group, Overrides, app
from bpnn.cli.errors import reported_errors
from bpnn.cli.output import Output

config_app = typer.Typer(
    help="Inspect and check experiment configs.",
    cls=Group,
    no_args_is_help=True,
    epilog="Example: bpnn config check configs/digits.yaml --set optimizer.lr=0.1",
)
app.add_typer(config_app, name="config")


@config_app.command("show", cls=Command, epilog="Example: bpnn config show configs/digits.yaml")
def config_show(config: ConfigPath, overrides: Overrides = None) -> None:
    """Print the resolved config: every key with its value or default (and, for a table, its
    target and features after encoding, as YAML comments)."""
    import bpnn

    output = Output()
    with reported_errors(config):
        cfg = bpnn.load_config(config, overrides or [])
        data_lines = bpnn.describe_data(cfg)
    output.text(cfg.to_yaml())
    output.text("".join(f"# {line}\n" for line in data_lines))


@config_app.command(
    "check",
    cls=Command,
    epilog="Example: bpnn config check configs/digits.yaml --set train.epochs=5",
)
def config_check(config: ConfigPath, overrides: Overrides = None) -> None:
    """Validate a config and its data as train does, without training; exit on the first problem."""
    import bpnn

    output = Output()
    with reported_errors(config):
        bpnn.check_config(bpnn.load_config(config, overrides or []), log=output.log)
    output.result(f"{config}: ok")


@config_app.command(
    "schema",
    cls=Command,
    epilog="Example: bpnn config schema > bpnn-config.schema.json",
)
def config_schema() -> None:
    """Print the JSON Schema of a config file (for an editor's YAML language server)."""
    import bpnn

    Output().json(bpnn.config_schema(), indent=2)
