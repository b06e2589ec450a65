"""Help screens: flags shown as flags, arguments by their names, an example in every command's
help, and Typer's shell completion switched on."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from bpnn.cli import app

runner = CliRunner()
COMMANDS = [
    ["train"],
    ["resume"],
    ["eval"],
    ["predict"],
    ["gradcheck"],
    ["plot"],
    ["init"],
    ["config", "show"],
    ["config", "check"],
    ["config", "schema"],
]


def help_of(command: list[str]) -> str:
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "100"}, color=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_help_has_an_example_and_no_bool_types(command: list[str]) -> None:
    text = help_of(command)
    assert f"Example: bpnn {' '.join(command)}" in text
    assert "<bool>" not in text
    assert "{" not in text.splitlines()[1] + text.splitlines()[2]  # no {config} in the usage


@pytest.mark.parametrize(
    ("command", "usage"),
    [
        (["train"], "Usage: bpnn train [OPTIONS] CONFIG"),
        (["eval"], "Usage: bpnn eval [OPTIONS] CHECKPOINT"),
        (["predict"], "Usage: bpnn predict [OPTIONS] CHECKPOINT INPUT"),
        (["resume"], "Usage: bpnn resume [OPTIONS] RUN_DIR"),
        (["init"], "Usage: bpnn init [OPTIONS] [NAME]"),
    ],
)
def test_usage_names_the_arguments(command: list[str], usage: str) -> None:
    assert usage in help_of(command)


def test_json_is_a_flag_and_takes_no_value(tmp_path) -> None:
    result = runner.invoke(app, ["eval", str(tmp_path / "x.npz"), "--json", "true"])
    assert result.exit_code == 2  # 'true' is an unexpected extra argument, as for any flag
    assert "unexpected extra argument" in " ".join(result.output.split())
    assert "--json" in help_of(["eval"])


def test_shell_completion_is_on() -> None:
    text = help_of([])
    assert "--install-completion" in text and "--show-completion" in text
    assert "<bool>" not in text
