"""Tables that fit the terminal (``bpnn.cli.tables``, printed by ``bpnn.cli.output.Output``):
the renderer's steps (headers abbreviated, then the lowest-priority columns hidden and named,
wrapping between words only as a last resort, no limit in a pipe), and every command's table
at 60, 80 and 120 columns and in a pipe, where no value that ``--json`` reports is ever cut.
(tests/data/test_tables.py is about data tables.)
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from rich.cells import cell_len
from typer.testing import CliRunner

from bpnn.cli import app
from bpnn.cli.output import Output
from bpnn.cli.tables import Column, Table, fit_items, layout, output_width
from bpnn.config import validate
from bpnn.metrics import METRICS, format_value
from bpnn.run import run_training
from tests.support import REPO

WIDTHS = [60, 80, 120, None]  # None: a pipe (no COLUMNS, stdout not a terminal)
WIDTH_IDS = ["60", "80", "120", "pipe"]


def invoke(args: list[Any], width: int | None) -> str:
    env = {"COLUMNS": str(width) if width is not None else None}
    result = CliRunner(env=env).invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result.stdout


def hidden_columns(text: str) -> list[str]:
    """The columns a table's note says it hid (the note may wrap over lines)."""
    found = re.search(
        r"\(hidden: (.*?); widen the terminal or use --json\)", " ".join(text.split())
    )
    return found.group(1).split(", ") if found else []


def assert_fits(text: str, width: int | None) -> None:
    assert "…" not in text, "a value was ellipsized"
    if width is not None:
        for line in text.splitlines():
            assert cell_len(line.rstrip()) <= width, line


def draw(table: Table, width: int | None, capsys: pytest.CaptureFixture[str]) -> str:
    Output(width).table(table)
    return capsys.readouterr().out


# --- the renderer ------------------------------------------------------------------------------


def people() -> Table:
    table = Table(
        [
            Column("name"),
            Column("department", "dept", priority=2),
            Column("telephone extension", "ext", priority=1, justify="right"),
            Column("remarks", priority=3, wrap=True),
        ],
        title="staff",
    )
    table.add_row("Ada Lovelace", "analytical engines", "1815", "wrote the first program")
    table.add_row("Charles Babbage", "difference engines", "1791", "-")
    return table


def test_a_table_that_fits_is_drawn_whole_with_its_full_headers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = draw(people(), 200, capsys)
    assert "telephone extension" in text and "department" in text and "wrote the first" in text
    assert hidden_columns(text) == [] and "(hidden" not in text


def test_headers_are_abbreviated_before_any_column_is_hidden(
    capsys: pytest.CaptureFixture[str],
) -> None:
    plan = layout(people(), 200)
    narrower = plan.width - 1  # one column less than the table needs with its full headers
    text = draw(people(), narrower, capsys)
    assert_fits(text, narrower)
    assert "(hidden" not in text
    assert " ext " in text and "telephone extension" not in text  # the long header went first
    assert "department" in text  # abbreviated only as far as needed


def test_the_lowest_priority_columns_are_hidden_and_named(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = draw(people(), 40, capsys)
    assert_fits(text, 40)
    assert hidden_columns(text) == ["department", "remarks"]
    for value in ("Ada Lovelace", "Charles Babbage", "1815", "1791"):
        assert value in text


def test_a_hidden_column_leaves_room_for_a_narrower_one_of_lower_priority() -> None:
    table = Table([Column("name"), Column("path", priority=1), Column("size", priority=2)])
    table.add_row("Ada Lovelace", "/home/ada/notes/on-the-analytical-engine.txt", "12")
    plan = layout(table, 40)
    assert plan.shown == [0, 2] and plan.hidden == ["path"]


def test_full_headers_come_back_where_there_is_room() -> None:
    plan = layout(people(), 45)
    assert [people().columns[i].header for i in plan.shown] == ["name", "telephone extension"]
    assert plan.headers[2] == "telephone extension"


def test_only_as_a_last_resort_a_column_breaks_between_its_words(
    capsys: pytest.CaptureFixture[str],
) -> None:
    table = Table([Column("name"), Column("test", wrap=True)])
    table.add_row("regression-20261201-143353", ("loss 0.9645", "mae 60.1049", "r2 0.1471"))
    text = draw(table, 50, capsys)
    assert_fits(text, 50)
    for item in ("loss 0.9645", "mae 60.1049", "r2 0.1471"):  # each item whole, on its line
        assert any(item in line for line in text.splitlines())
    assert "regression-20261201-143353" in text and "(hidden" not in text


def test_a_table_whose_values_cannot_fit_is_drawn_wider_rather_than_cut(
    capsys: pytest.CaptureFixture[str],
) -> None:
    table = Table([Column("a"), Column("b")])
    table.add_row("x" * 40, "y" * 40)
    text = draw(table, 60, capsys)
    assert "x" * 40 in text and "y" * 40 in text


def test_in_a_pipe_there_is_no_width_limit(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    assert output_width() is None  # stdout is captured: not a terminal
    monkeypatch.setenv("COLUMNS", "72")
    assert output_width() == 72
    table = Table([Column("name"), Column("remarks", priority=1, wrap=True)])
    table.add_row("Ada", "a remark " * 30)
    text = draw(table, None, capsys)
    row = [line for line in text.splitlines() if "Ada" in line]
    assert len(row) == 1 and ("a remark " * 30).strip() in row[0]


def test_a_title_is_one_line_and_breaks_only_after_a_slash_or_space_past_the_width(
    capsys: pytest.CaptureFixture[str],
) -> None:
    table = Table(
        [Column("metric"), Column("value")], title="runs/digits-20261201/checkpoints/best.npz"
    )
    table.add_row("test_loss", "0.1")
    assert draw(table, 80, capsys).splitlines()[0] == "runs/digits-20261201/checkpoints/best.npz"
    assert draw(table, 30, capsys).splitlines()[:2] == [
        "runs/digits-20261201/",
        "checkpoints/best.npz",
    ]


def test_cells_and_headers_are_never_read_as_markup(capsys: pytest.CaptureFixture[str]) -> None:
    table = Table([Column("[b]name[/b]"), Column("value")])
    table.add_row("run-[red]x[/red]", "[8, 4]")
    text = draw(table, None, capsys)
    assert "[b]name[/b]" in text and "run-[red]x[/red]" in text and "[8, 4]" in text


def test_fit_items_never_breaks_an_item() -> None:
    items = ["test_loss 1.0926", "test_mae 63.9562", "test_r2 0.0339", "(best epoch 2 of 2, 1.2s)"]
    assert fit_items(items, None) == ["  ".join(items)]
    lines = fit_items(items, 41)
    assert lines == [
        "test_loss 1.0926  test_mae 63.9562",
        "test_r2 0.0339  (best epoch 2 of 2, 1.2s)",
    ]
    assert fit_items(["a" * 50], 40) == ["a" * 50]


# --- bpnn runs ---------------------------------------------------------------------------------


def tiny(**changes: Any) -> Any:
    raw: dict[str, Any] = {
        "name": "tiny",
        "seed": 0,
        "data": {"source": "iris"},
        "model": {"hidden": [8]},
        "optimizer": {"name": "adam", "lr": 0.01},
        "train": {"epochs": 3, "batch_size": 16},
    }
    for section, values in changes.items():
        raw[section] = {**raw.get(section, {}), **values}
    return validate(raw)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A completed classifier, an early-stopped one (a long stop reason) and a regression (four
    test metrics), with names as long as the default run folders'."""
    root = tmp_path_factory.mktemp("runs")
    run_training(tiny(), root / "iris-20261201-143353")
    early = {"epochs": 20, "early_stopping": {"patience": 1, "min_delta": 10.0}}
    run_training(tiny(train=early), root / "early-20261201-150102")
    raw = {
        "name": "regression",
        "seed": 0,
        "data": {"source": "diabetes", "scale": "standard"},
        "model": {"hidden": [8]},
        "loss": "mse",
        "optimizer": {"name": "adam", "lr": 0.001},
        "train": {"epochs": 2, "batch_size": 32},
    }
    run_training(validate(raw), root / "diabetes-20261201-160000")
    return root


def runs_values(record: dict[str, Any]) -> dict[str, list[str]]:
    """Each column's text for one run, in the pieces that must appear whole."""
    optimizer = f"{record['optimizer']} {record['lr']:g}"
    best = f"{record['best_metric']} {format_value(record['best_metric'], record['best_value'])}"
    tests = [  # the headline metrics: the table's test column shows them (--json has all)
        f"{METRICS[key[len('test_') :]].short} {format_value(key, value)}"
        for key, value in record["test_metrics"].items()
        if METRICS[key[len("test_") :]].headline
    ]
    return {
        "name": [record["name"]],
        "status": [record["status"]],
        "data": [record["data"]],
        "architecture": [record["architecture"]],
        "optimizer": [optimizer],
        "epochs": [record["epochs"]],
        "best": [best],
        "test": tests,
        "stop reason": record["stop_reason"].split(" "),
        "seconds": [f"{record['seconds']:.1f}"],
    }


@pytest.mark.parametrize("width", WIDTHS, ids=WIDTH_IDS)
def test_runs_table_cuts_no_value_and_names_the_columns_it_hides(
    runs: Path, width: int | None
) -> None:
    records = json.loads(invoke(["runs", runs, "--json"], width))
    assert {r["status"] for r in records} == {"completed", "early-stopped"}
    text = invoke(["runs", runs], width)
    assert_fits(text, width)
    hidden = hidden_columns(text)
    assert {"name", "status", "test"}.isdisjoint(hidden)
    for record in records:
        for column, pieces in runs_values(record).items():
            if column not in hidden:
                for piece in pieces:
                    assert piece in text, (column, piece)
    if width == 60:
        assert "stop reason" in hidden and "started" in hidden
    if width is None:  # a pipe: everything, one line per run
        assert hidden == []
        for record in records:
            rows = [line for line in text.splitlines() if record["name"] in line]
            assert len(rows) == 1
            assert record["stop_reason"] in rows[0] and record["status"] in rows[0]
            assert all(piece in rows[0] for piece in runs_values(record)["test"])


# --- bpnn sweep --------------------------------------------------------------------------------

SWEEP = """\
base: tiny.yaml
metric: val_accuracy
method: grid
space:
  optimizer.lr: [0.001, 0.0003]
  model.hidden: [[16, 8]]
  train.batch_size: [64]
"""
SWEEP_BASE = """\
name: tiny
seed: 0
data: {source: iris}
model: {hidden: [8]}
optimizer: {name: adam, lr: 0.01}
train: {epochs: 2, batch_size: 64}
"""


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("sweep")
    (folder / "tiny.yaml").write_text(SWEEP_BASE, encoding="utf-8")
    (folder / "sweep.yaml").write_text(SWEEP, encoding="utf-8")
    out = folder / "sweeps" / "iris-sweep-20261201-143353"
    invoke(["sweep", folder / "sweep.yaml", "--out", out, "--workers", "1", "-q"], None)
    return folder / "sweep.yaml", out


@pytest.mark.parametrize("width", WIDTHS, ids=WIDTH_IDS)
def test_sweep_table_shows_every_searched_value_whole(
    finished_sweep: tuple[Path, Path], width: int | None
) -> None:
    from bpnn.cli.sweep import searched

    sweep_file, out = finished_sweep  # finished: running it again only prints the table
    ranked = json.loads(invoke(["sweep", sweep_file, "--out", out, "--json"], width))
    text = invoke(["sweep", sweep_file, "--out", out], width)
    table = text.split("best: trial")[0]
    assert_fits(table, width)
    hidden = hidden_columns(table)
    assert set(hidden) <= {"rank", "seconds"}
    for record in ranked:
        assert record["status"] in table and f"{record['metric']:.4f}" in table
        for value in record["overrides"].values():
            assert f" {searched(value)} " in table, value


# --- bpnn gradcheck, eval, diagnose ------------------------------------------------------------


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("digits") / "digits-20261201-143353"
    config = REPO / "configs" / "digits.yaml"
    invoke(["train", config, "--out", out, "-q", "--set", "train.epochs=4"], None)
    return out


@pytest.mark.parametrize("width", WIDTHS, ids=WIDTH_IDS)
def test_gradcheck_table_shows_every_tensor_and_error_whole(
    tmp_path: Path, width: int | None
) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text(SWEEP_BASE.replace("{hidden: [8]}", "{hidden: [8, 4]}"), encoding="utf-8")
    report = json.loads(invoke(["gradcheck", config, "--json"], width))
    text = invoke(["gradcheck", config], width)
    table = text.split("passed:")[0]
    assert_fits(table, width)
    assert set(hidden_columns(table)) <= {"shape", "checked", "skipped (kinks)"}
    for tensor in report["tensors"]:
        assert f" {tensor['tensor']} " in table
        assert f" {tensor['max_relative_error']:.2e} " in table
    assert table.count(" ok ") == len(report["tensors"])


@pytest.mark.parametrize("width", WIDTHS, ids=WIDTH_IDS)
def test_eval_tables_show_every_score_and_count_whole(digits_run: Path, width: int | None) -> None:
    checkpoint = digits_run / "checkpoints" / "best.npz"
    report = json.loads(invoke(["eval", checkpoint, "--json"], width))
    text = invoke(["eval", checkpoint], width)
    assert_fits(text, width)
    hidden = hidden_columns(text)
    assert set(hidden) <= {"support"}
    lines = text.splitlines()
    for name, row in report["per_class"].items():
        (line,) = [line for line in lines if re.match(rf"│ {name} +│ +[01]\.\d{{4}} ", line)]
        for key in ("precision", "recall", "f1"):
            assert f" {row[key]:.4f} " in line
    matrix = [line for line in lines if re.match(r"│ \d +│( +\d+ │)+$", line)]
    assert [[int(n) for n in re.findall(r"\d+", line)[1:]] for line in matrix] == report[
        "confusion_matrix"
    ]


@pytest.mark.parametrize("width", WIDTHS, ids=WIDTH_IDS)
def test_diagnose_table_shows_every_number_whole(digits_run: Path, width: int | None) -> None:
    health = json.loads(invoke(["diagnose", digits_run, "--json"], width))["health"]
    text = invoke(["diagnose", digits_run], width)
    table = text.split("└")[0]
    assert_fits(table, width)
    assert set(hidden_columns(text)) <= {"dead", "saturated"}
    for epoch in health:
        for values in epoch["layers"].values():
            assert f" {values['grad_norm']:.2e} " in table
            assert f" {values['update_ratio']:.2e} " in table
