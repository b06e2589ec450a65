"""A run directory's files edited by hand or by harm (issue 27): every command that reads them back
(``resume``, ``plot``, ``diagnose``, ``runs``) answers with one line naming the file and line, or
for the derived ``summary.json`` treats a damaged one as none, and never shows a traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bpnn.run import RunDirectory
from bpnn.tools.runs import read_run
from tests.support import assert_answered, files_of, invoke

#: a row's health as bpnn writes it, to damage
HEALTH = {"0": {"grad_norm": 0.5, "update_ratio": 0.01, "dead_fraction": None}}


def second_row(run: Path, change: Any) -> Path:
    """The run with its second metrics row replaced by ``change(row)`` (text, or a row)."""
    path = run / "metrics.jsonl"
    lines = path.read_text().splitlines()
    row = json.loads(lines[1])
    new = change(row)
    lines[1] = new if isinstance(new, str) else json.dumps(new)
    path.write_text("\n".join(lines) + "\n")
    return path


DAMAGED_ROWS = {
    "deep": ("[" * 100_000 + "]" * 100_000, "line 2: nested too deeply"),
    "health-number": (lambda row: {**row, "health": 5}, "line 2: 'health' is 5, not a mapping"),
    "health-layer-number": (
        lambda row: {**row, "health": {"0": 5}},
        "line 2: 'health' has '0': 5, not a layer's measures",
    ),
    "health-layer-name": (
        lambda row: {**row, "health": {"first": HEALTH["0"]}},
        "line 2: 'health' has 'first': {",
    ),
    "health-measure": (
        lambda row: {**row, "health": {"0": {"grad_norm": [1, 2]}}},
        "line 2: health.'0'.'grad_norm' is [1, 2], not a number",
    ),
    "nested-elsewhere": (
        lambda row: {**row, "train_loss": {"a": 1}},
        "line 2: 'train_loss' is {'a': 1}, not a number",
    ),
    "not-utf8": (b'{"epoch": 2, "lr": "\xff"}'.decode("latin-1"), "line 2: not UTF-8 text"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGED_ROWS))
def test_a_damaged_metrics_row_is_one_line_in_every_command(
    trained_run: Path, run_cli: Any, damage: str
) -> None:
    change, expected = DAMAGED_ROWS[damage]
    if damage == "not-utf8":
        path = trained_run / "metrics.jsonl"
        lines = path.read_bytes().split(b"\n")
        lines[1] = b'{"epoch": 2, "lr": "\xff"}'
        path.write_bytes(b"\n".join(lines))
    else:
        path = second_row(trained_run, change if callable(change) else lambda _row: change)
    before = files_of(trained_run)
    for command in (
        ["resume", trained_run, "--epochs", 6],
        ["plot", trained_run],
        ["diagnose", trained_run],
    ):
        result = invoke(*command)
        assert_answered(result)
        assert result.exit_code == 2, (command, result.stderr)
        assert result.stderr.startswith(f"error: {path}: {expected}"), (command, result.stderr)
        assert result.stderr.count("\n") == 1, result.stderr
        if damage == "deep" and command[0] == "resume":  # once through the command line
            real = run_cli(*command)
            assert (real.returncode, real.stderr) == (2, result.stderr)
    assert files_of(trained_run) == before  # the refusals changed nothing


@pytest.mark.parametrize(
    "summary",
    [
        "[1, 2]",
        '{"epochs_run": "four"}',
        '{"stop_reason": 5}',
        '{"best_epoch": {"a": 1}}',
        '{"diagnoses": "none"}',
        '{"test_accuracy": true}',
        "[" * 100_000,
        "\xff not json",
    ],
)
def test_a_damaged_summary_is_read_as_none(trained_run: Path, run_cli: Any, summary: str) -> None:
    (trained_run / "summary.json").write_text(summary, encoding="latin-1")
    assert RunDirectory(trained_run).read_summary() is None
    record = read_run(RunDirectory(trained_run))
    assert record["status"] == "interrupted" and record["test_metrics"] == {}
    if summary.startswith("[["):  # one through the command line
        result = run_cli("runs", trained_run.parent, "--json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)[0]["status"] == "interrupted"


@pytest.mark.parametrize(
    "config",
    [
        "model: 5\n",
        "model: {hidden: five}\n",
        "model: {hidden: [8], activations: [{size: 1}]}\n",
        "model: {hidden: [8], dropout: high}\n",
        "data: {source: iris, path: 7}\n",
        "optimizer: [adam]\ntrain: 3\n",
        "data: 1\nmodel: {}\noptimizer: {lr: {a: 1}}\n",
    ],
)
def test_runs_lists_a_run_whose_config_is_not_valid(
    trained_run: Path, run_cli: Any, config: str
) -> None:
    (trained_run / "config.yaml").write_text(config)
    result = invoke("runs", trained_run.parent, "--json")
    assert_answered(result)
    assert result.exit_code == 0, result.stderr
    (record,) = json.loads(result.stdout)
    assert record["name"] == "run" and record["status"] == "completed"
    assert record["architecture"] is None and record["optimizer"] is None
    if config.startswith("model: 5"):  # the table too, once, through the command line
        table = run_cli("runs", trained_run.parent)
        assert table.returncode == 0 and "Traceback" not in table.stderr
