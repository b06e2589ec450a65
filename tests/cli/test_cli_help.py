"""Help screens: flags shown as flags, arguments by their names, an example in every command's
help, and Typer's shell completion switched on."""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import pytest
from typer.testing import CliRunner

from bpnn.cli import app
from tests import support

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


def every_command() -> list[list[str]]:
    """Every command and group of the ``bpnn`` program, found by walking it (none forgotten)."""
    import typer

    found: list[list[str]] = []

    def walk(command: Any, path: list[str]) -> None:
        found.append(path)
        for name, subcommand in getattr(command, "commands", {}).items():
            walk(subcommand, [*path, name])

    walk(typer.main.get_command(app), [])
    return found


def wide_help_of(command: list[str]) -> str:
    """The help of ``command`` on a terminal wide enough that no line wraps."""
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "400"}, color=False)
    assert result.exit_code == 0, result.output
    return result.output


def help_texts(command: list[str]) -> list[str]:
    """The help texts written in the code for ``command``: its docstring, epilog and the help of
    each parameter, before anything renders them."""
    import typer

    node = typer.main.get_command(app)
    for name in command:
        node = node.commands[name]
    texts = [node.help, node.short_help, node.epilog, *(p.help for p in node.params)]
    texts += [sub.help for sub in getattr(node, "commands", {}).values()]
    return [" ".join(text.split()) for text in texts if text]


@pytest.mark.parametrize("command", every_command(), ids=lambda c: " ".join(c) or "bpnn")
def test_every_usage_line_is_balanced_and_names_arguments_in_capitals(command: list[str]) -> None:
    usage = next(line for line in wide_help_of(command).splitlines() if "Usage:" in line)
    pieces = usage.split("Usage: ", 1)[1].split()
    assert pieces[: len(command) + 1] == ["bpnn", *command], usage
    depth = 0
    for character in usage:
        depth += {"[": 1, "]": -1}.get(character, 0)
        assert depth >= 0, usage
    assert depth == 0 and "{" not in usage and "}" not in usage, usage
    for piece in pieces[len(command) + 1 :]:
        assert re.fullmatch(r"\[?[A-Z][A-Z_]*(\.\.\.)?\]?(\.\.\.)?", piece), (piece, usage)


#: a command whose help advises installing an extra (the test below must see one)
ADVICE = (["sweep"], "'bpnn[dask]');")


@pytest.mark.parametrize("command", every_command(), ids=lambda c: " ".join(c) or "bpnn")
def test_every_bracket_of_a_help_text_is_shown_as_written(command: list[str]) -> None:
    shown = " ".join(re.sub(r"[│╭╮╰╯─]", " ", wide_help_of(command)).split())
    written = [
        fragment for text in help_texts(command) for fragment in re.findall(r"\S*\[.*?\]\S*", text)
    ]
    if command == ADVICE[0]:
        assert ADVICE[1] in written
    for fragment in written:
        assert fragment in shown, (fragment, shown)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["trian"], "'trian'"),
        (["train"], "'CONFIG'"),
        (["train", "."], "'CONFIG'"),
        (["train", "--bogus", "x.yaml"], "--bogus"),
        (["gradcheck", "--tol", "-1"], "--tol"),
        (["eval", "x.npz", "--json", "true"], "true"),
        (["resume", "run", "--epochs", "0"], "--epochs"),
        (["sweep", "s.yaml", "--workers", "0"], "--workers"),
        (["config", "frobnicate"], "'frobnicate'"),
    ],
    ids=" ".join,
)
def test_a_refused_command_line_is_one_line_naming_the_argument(
    tmp_path, run_cli, args: list[str], named: str
) -> None:
    """Click's own checks (missing or unknown arguments, values out of range, a folder as
    CONFIG) answer as bpnn's do: one line, exit 2, the argument and the command's --help."""
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert named in lines[0] and "--help" in lines[0], lines[0]
    assert result.stdout == ""


def test_a_bug_is_reported_with_its_own_traceback(tmp_path) -> None:
    """An exception bpnn does not expect (a bug) reaches the user as its own traceback, not as
    an error of the group's handler (Typer 0.29 has no ``Abort`` in its copy of Click)."""
    bug = (
        "import bpnn\n"
        "from bpnn.cli import app\n"
        "def bug():\n"
        "    raise RuntimeError('a bug')\n"
        "bpnn.config_schema = bug\n"
        "app(['config', 'schema'])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", bug],
        cwd=tmp_path,
        env=support.cli_environment(COLUMNS="200"),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1, result.stderr
    assert "RuntimeError: a bug" in result.stderr
    assert "AttributeError" not in result.stderr, result.stderr
