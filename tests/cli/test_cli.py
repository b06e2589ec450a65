"""Specification of the ``bpnn`` command line, driven through Typer's ``CliRunner``.

Errors are one line ``error: ...`` on stderr with exit code 2 (bad input) or 1 (a run that
failed), never a traceback. Every run goes to a ``tmp_path`` folder, never into the repo's runs/.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner, Result

import bpnn
from bpnn.cli import app
from bpnn.config import load_config, validate
from tests.support import REPO, TINY

METRIC_KEYS = {
    "epoch",
    "train_loss",
    "val_loss",
    "lr",
    "epoch_seconds",
    "train_accuracy",
    "val_accuracy",
    "health",  # train.health, on by default
}


def bpnn_cli(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def write(folder: Path, text: str, name: str = "tiny.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    lines = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def without_timings(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k != "epoch_seconds"} for row in rows]


def assert_one_line_error(result: Result, code: int = 2) -> str:
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), repr(result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Result]:
    """One tiny iris run through the CLI, shared by the tests that only read it."""
    folder = tmp_path_factory.mktemp("cli")
    config = write(folder, TINY)
    result = bpnn_cli("train", config, "--out", folder / "run")
    assert result.exit_code == 0, result.stderr
    return folder / "run", result


@pytest.fixture(scope="module")
def regression_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Result]:
    folder = tmp_path_factory.mktemp("cli-regression")
    config = write(folder, TINY.replace("source: iris", "source: diabetes") + "loss: mse\n")
    result = bpnn_cli("train", config, "--out", folder / "run", "--quiet")
    assert result.exit_code == 0, result.stderr
    return folder / "run", result


# --- train ------------------------------------------------------------------------------------


def test_train_writes_the_run_directory(run: tuple[Path, Result]) -> None:
    run_dir, _ = run
    assert validate(yaml.safe_load((run_dir / "config.yaml").read_text())).name == "tiny"
    rows = read_metrics(run_dir)
    assert [row["epoch"] for row in rows] == [1, 2, 3]
    assert all(set(row) == METRIC_KEYS for row in rows)
    assert (run_dir / "checkpoints" / "last.npz").is_file()
    assert (run_dir / "checkpoints" / "best.npz").is_file()
    assert (run_dir / "plots" / "loss.png").is_file()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert {"test_loss", "test_accuracy", "epochs_run", "total_seconds"} <= set(summary)
    assert summary["epochs_run"] == 3


def test_saved_config_is_the_resolved_config_and_revalidates(
    run: tuple[Path, Result], tmp_path: Path
) -> None:
    run_dir, _ = run
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved == load_config(write(tmp_path, TINY)).resolved()
    assert validate(saved).resolved() == saved


def test_train_prints_the_summary_on_stdout_and_progress_on_stderr(
    run: tuple[Path, Result],
) -> None:
    run_dir, result = run
    assert "test_accuracy " in result.stdout
    assert "stopped: completed" in result.stdout
    assert f"run directory: {run_dir}" in result.stdout
    epoch_lines = [line for line in result.stderr.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in epoch_lines] == ["1/3", "2/3", "3/3"]


def test_train_quiet_prints_no_progress(tmp_path: Path) -> None:
    result = bpnn_cli("train", write(tmp_path, TINY), "--out", tmp_path / "run", "--quiet")
    assert result.exit_code == 0, result.stderr
    assert not [line for line in result.stderr.splitlines() if line.startswith("epoch ")]
    assert "test_accuracy" in result.stdout


def test_training_from_a_saved_config_repeats_the_run(
    run: tuple[Path, Result], tmp_path: Path
) -> None:
    run_dir, _ = run
    result = bpnn_cli("train", run_dir / "config.yaml", "--out", tmp_path / "again", "-q")
    assert result.exit_code == 0, result.stderr
    assert without_timings(read_metrics(tmp_path / "again")) == without_timings(
        read_metrics(run_dir)
    )
    first = json.loads((run_dir / "summary.json").read_text())
    second = json.loads((tmp_path / "again" / "summary.json").read_text())
    first.pop("total_seconds"), second.pop("total_seconds")
    assert first == second


def test_train_applies_set_overrides(tmp_path: Path) -> None:
    result = bpnn_cli(
        "train",
        write(tmp_path, TINY),
        "--out",
        tmp_path / "run",
        "-q",
        "--set",
        "train.epochs=2",
        "--set",
        "optimizer.lr=1e-3",
        "-s",
        "name=renamed",
    )
    assert result.exit_code == 0, result.stderr
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert (saved["name"], saved["train"]["epochs"], saved["optimizer"]["lr"]) == (
        "renamed",
        2,
        0.001,
    )
    assert len(read_metrics(tmp_path / "run")) == 2


def test_train_with_per_layer_activations_completes(tmp_path: Path) -> None:
    config = TINY.replace(
        "model: {hidden: [8]}", "model: {hidden: [4, 3], activations: [tanh, relu]}"
    )
    result = bpnn_cli("train", write(tmp_path, config), "--out", tmp_path / "run", "-q")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "run" / "summary.json").is_file()


def test_train_without_out_creates_a_folder_under_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write(tmp_path / "cfg", TINY)
    monkeypatch.chdir(tmp_path)
    result = bpnn_cli("train", config, "-q", "--set", "train.epochs=1")
    assert result.exit_code == 0, result.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert run_dir.name.startswith("tiny-")
    assert (run_dir / "summary.json").is_file()


def test_train_refuses_an_existing_non_empty_out_dir_without_touching_it(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("keep me\n")
    result = bpnn_cli("train", write(tmp_path, TINY), "--out", out)
    assert result.exit_code != 0
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and str(out) in errors[0]
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert (out / "notes.txt").read_text() == "keep me\n"


def test_train_accepts_an_existing_empty_out_dir(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    result = bpnn_cli("train", write(tmp_path, TINY), "--out", tmp_path / "run", "-q")
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize(
    ("text", "overrides", "expected"),
    [
        (TINY.replace("hidden: [8]", "hiden: [8]"), [], "model.hiden: unknown key"),
        (TINY.replace("hidden: [8]", "hidden: [8, 0]"), [], "model.hidden[1]: must be a positive"),
        ("model:\n  hidden: [1, 2\n", [], "invalid YAML (line"),
        ("- a\n", [], "expected a mapping"),
        (TINY, ["optimizer.lr"], "expected KEY=VALUE"),
        (TINY, ["optimizer.lrr=0.1"], "optimizer.lrr"),
        (TINY, ["optimizer.name=adamm"], "unknown optimizer 'adamm'"),
        (TINY, ["data.source=csv", "data.path=/nonexistent/table.csv"], "table.csv"),
    ],
)
def test_train_with_bad_input_exits_2_with_one_error_line(
    tmp_path: Path, text: str, overrides: list[str], expected: str
) -> None:
    args: list[str | Path] = ["train", write(tmp_path, text), "--out", tmp_path / "run", "-q"]
    for override in overrides:
        args += ["--set", override]
    result = bpnn_cli(*args)
    assert result.exit_code == 2, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and expected in errors[0], result.stderr
    lines = [line for line in result.stderr.splitlines() if not line.startswith("run directory")]
    assert lines == errors


def test_config_error_is_the_only_line_on_stderr(tmp_path: Path) -> None:
    config = write(tmp_path, TINY.replace("lr: 0.01", "lr: 0"))
    line = assert_one_line_error(bpnn_cli("train", config, "--out", tmp_path / "run"))
    assert line == f"error: {config}: optimizer.lr: must be greater than 0, got 0"
    assert not (tmp_path / "run").exists()


def test_train_of_a_missing_config_file_exits_2_without_traceback(tmp_path: Path) -> None:
    result = bpnn_cli("train", tmp_path / "absent.yaml", "--out", tmp_path / "run")
    assert result.exit_code == 2
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_diverging_training_exits_1_with_one_error_line(tmp_path: Path) -> None:
    result = bpnn_cli(
        "train",
        write(tmp_path, TINY),
        "--out",
        tmp_path / "run",
        "-q",
        "--set",
        "optimizer.name=sgd",
        "--set",
        "optimizer.lr=1e6",
    )
    assert result.exit_code == 1, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "training loss became" in errors[0]


def test_regression_run_reports_test_mae_and_r2(regression_run: tuple[Path, Result]) -> None:
    run_dir, result = regression_run
    summary = json.loads((run_dir / "summary.json").read_text())
    assert {"test_loss", "test_mae", "test_r2"} <= set(summary)
    assert "test_accuracy" not in summary
    assert "test_mae" in result.stdout and "test_r2" in result.stdout


# --- eval -------------------------------------------------------------------------------------


def test_eval_json_prints_one_object_equal_to_the_summary(run: tuple[Path, Result]) -> None:
    run_dir, _ = run
    result = bpnn_cli("eval", run_dir / "checkpoints" / "best.npz", "--json")
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.strip().splitlines()) == 1
    metrics = json.loads(result.stdout)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert metrics["test_loss"] == summary["test_loss"]
    assert metrics["test_accuracy"] == summary["test_accuracy"]
    assert metrics["test_samples"] == summary["test_samples"]
    assert metrics["epoch"] == summary["best_epoch"]


def test_eval_json_of_a_regression_run_equals_its_summary(
    regression_run: tuple[Path, Result],
) -> None:
    run_dir, _ = regression_run
    result = bpnn_cli("eval", run_dir / "checkpoints" / "best.npz", "--json")
    assert result.exit_code == 0, result.stderr
    metrics = json.loads(result.stdout)
    summary = json.loads((run_dir / "summary.json").read_text())
    for key in ("test_loss", "test_mae", "test_r2"):
        assert metrics[key] == summary[key], key


def test_eval_prints_a_table_of_the_metrics(run: tuple[Path, Result]) -> None:
    run_dir, _ = run
    result = bpnn_cli("eval", run_dir / "checkpoints" / "last.npz")
    assert result.exit_code == 0, result.stderr
    assert "test_accuracy" in result.stdout and "test_loss" in result.stdout


def test_eval_of_a_file_that_is_not_a_checkpoint_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "junk.npz"
    path.write_bytes(b"not a checkpoint")
    line = assert_one_line_error(bpnn_cli("eval", path, "--json"))
    assert str(path) in line


# --- predict ----------------------------------------------------------------------------------


def iris_inputs(folder: Path, rows: int = 5) -> Path:
    from sklearn.datasets import load_iris

    X = load_iris().data[:: 150 // rows][:rows]
    path = folder / "inputs.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([f"x{i}" for i in range(4)])
        writer.writerows(X.tolist())
    return path


def test_predict_writes_a_csv_row_per_sample_to_stdout(
    run: tuple[Path, Result], tmp_path: Path
) -> None:
    run_dir, _ = run
    result = bpnn_cli("predict", run_dir / "checkpoints" / "best.npz", iris_inputs(tmp_path))
    assert result.exit_code == 0, result.stderr
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["label", "p_0", "p_1", "p_2"]
    assert len(rows) == 1 + 5
    for row in rows[1:]:
        probabilities = [float(p) for p in row[1:]]
        assert sum(probabilities) == pytest.approx(1.0, abs=1e-4)
        assert row[0] == str(max(range(3), key=lambda i: probabilities[i]))


def test_predict_out_writes_the_same_csv_to_a_file(
    run: tuple[Path, Result], tmp_path: Path
) -> None:
    run_dir, _ = run
    inputs = iris_inputs(tmp_path)
    to_stdout = bpnn_cli("predict", run_dir / "checkpoints" / "best.npz", inputs)
    out = tmp_path / "predictions.csv"
    result = bpnn_cli("predict", run_dir / "checkpoints" / "best.npz", inputs, "--out", out)
    assert result.exit_code == 0, result.stderr
    assert out.read_text() == to_stdout.stdout
    assert result.stdout == ""


def test_predict_refuses_an_existing_out_file(run: tuple[Path, Result], tmp_path: Path) -> None:
    run_dir, _ = run
    out = tmp_path / "predictions.csv"
    out.write_text("precious\n")
    result = bpnn_cli(
        "predict", run_dir / "checkpoints" / "best.npz", iris_inputs(tmp_path), "--out", out
    )
    line = assert_one_line_error(result)
    assert str(out) in line
    assert out.read_text() == "precious\n"


def test_predict_of_inputs_with_wrong_columns_exits_2(
    run: tuple[Path, Result], tmp_path: Path
) -> None:
    run_dir, _ = run
    inputs = tmp_path / "bad.csv"
    inputs.write_text("a,b\n1,2\n")
    line = assert_one_line_error(bpnn_cli("predict", run_dir / "checkpoints" / "best.npz", inputs))
    assert str(inputs) in line


def test_predict_of_a_regression_model_writes_values(
    regression_run: tuple[Path, Result], tmp_path: Path
) -> None:
    from sklearn.datasets import load_diabetes

    run_dir, _ = regression_run
    X, y = load_diabetes(return_X_y=True)
    inputs = tmp_path / "inputs.csv"
    inputs.write_text(
        ",".join(f"x{i}" for i in range(10))
        + "\n"
        + "\n".join(",".join(str(float(v)) for v in row) for row in X[:4])
        + "\n"
    )
    result = bpnn_cli("predict", run_dir / "checkpoints" / "best.npz", inputs)
    assert result.exit_code == 0, result.stderr
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["value"]
    values = [float(row[0]) for row in rows[1:]]
    assert len(values) == 4
    assert all(abs(v - y.mean()) < 3 * y.std() for v in values)  # in the targets' units


def test_csv_run_predicts_the_original_class_names(tmp_path: Path) -> None:
    shutil.copy(REPO / "examples" / "iris.csv", tmp_path / "iris.csv")
    config = (REPO / "examples" / "iris.yaml").read_text()
    path = write(tmp_path, config, "iris.yaml")
    result = bpnn_cli("train", path, "--out", tmp_path / "run", "-q", "--set", "train.epochs=2")
    assert result.exit_code == 0, result.stderr
    result = bpnn_cli(
        "predict", tmp_path / "run" / "checkpoints" / "best.npz", tmp_path / "iris.csv"
    )
    assert result.exit_code == 0, result.stderr
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["label", "p_setosa", "p_versicolor", "p_virginica"]
    assert len(rows) == 151
    assert {row[0] for row in rows[1:]} <= {"setosa", "versicolor", "virginica"}


# --- gradcheck --------------------------------------------------------------------------------


def test_gradcheck_without_arguments_checks_every_pairing_and_passes() -> None:
    wide = {"COLUMNS": "250"}  # one table row per line
    result = CliRunner(env=wide).invoke(app, ["gradcheck"])
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "every activation x loss pairing" in result.stdout
    assert "max relative error" in result.stdout
    for pairing in ("relu x cross_entropy", "sigmoid x binary_cross_entropy", "tanh x mse"):
        assert pairing in result.stdout
    assert "FAIL" not in result.stdout
    assert result.stdout.strip().splitlines()[-1].startswith("passed: worst ")


def test_gradcheck_of_a_config_passes(tmp_path: Path) -> None:
    config = write(tmp_path, TINY.replace("{hidden: [8]}", "{hidden: [5], activation: tanh}"))
    result = bpnn_cli("gradcheck", config)
    assert result.exit_code == 0, result.stdout + result.stderr
    for name in ("0.weight", "0.bias", "1.weight", "1.bias"):
        assert name in result.stdout
    assert "passed" in result.stdout


def test_gradcheck_json_reports_every_tensor(tmp_path: Path) -> None:
    result = bpnn_cli("gradcheck", write(tmp_path, TINY), "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["passed"] is True
    assert [t["tensor"] for t in report["tensors"]] == ["0.weight", "0.bias", "1.weight", "1.bias"]
    assert all(t["max_relative_error"] <= report["tolerance"] for t in report["tensors"])


def test_gradcheck_with_zero_tolerance_fails_naming_the_worst_tensor(tmp_path: Path) -> None:
    config = write(tmp_path, TINY)
    result = bpnn_cli("gradcheck", config, "--tol", "0", "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["passed"] is False
    worst = max(report["tensors"], key=lambda t: t["max_relative_error"])
    assert worst["max_relative_error"] > 0
    failure = result.stderr.strip().splitlines()[-1]
    assert failure.startswith(f"FAILED: worst {worst['tensor']} ")
    assert "Traceback" not in result.stderr


def test_gradcheck_table_marks_failures(tmp_path: Path) -> None:
    result = bpnn_cli("gradcheck", write(tmp_path, TINY), "--tol", "0")
    assert result.exit_code == 1
    assert "FAIL" in result.stdout
    assert "FAILED: worst" in result.stderr


def test_gradcheck_of_a_bad_config_exits_2(tmp_path: Path) -> None:
    config = write(tmp_path, TINY.replace("hidden: [8]", "hiden: [8]"))
    assert "model.hiden" in assert_one_line_error(bpnn_cli("gradcheck", config))


# --- config, plot, version, help --------------------------------------------------------------


def test_config_show_prints_the_resolved_config(tmp_path: Path) -> None:
    path = write(tmp_path, TINY)
    result = bpnn_cli("config", "show", path, "--set", "train.epochs=7")
    assert result.exit_code == 0, result.stderr
    shown = yaml.safe_load(result.stdout)
    assert shown == load_config(path, ["train.epochs=7"]).resolved()
    assert shown["train"]["epochs"] == 7
    assert shown["optimizer"]["beta1"] == 0.9  # defaults filled in


def test_config_show_of_a_bad_config_exits_2(tmp_path: Path) -> None:
    path = write(tmp_path, "optimizer: {name: adam, beta1: 1.5}\n")
    line = assert_one_line_error(bpnn_cli("config", "show", path))
    assert "optimizer.beta1" in line


def test_config_check_says_ok_or_names_the_problem(tmp_path: Path) -> None:
    good = write(tmp_path, TINY)
    result = bpnn_cli("config", "check", good)
    assert result.exit_code == 0
    assert result.stdout.strip() == f"{good}: ok"
    bad = write(tmp_path, "schedule: {name: step, gama: 0.5}\n", "bad.yaml")
    line = assert_one_line_error(bpnn_cli("config", "check", bad))
    assert "schedule.gama" in line and "did you mean 'gamma'" in line


def test_plot_redraws_the_curves_of_a_run(run: tuple[Path, Result], tmp_path: Path) -> None:
    run_dir, _ = run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    shutil.rmtree(copy / "plots")
    result = bpnn_cli("plot", copy)
    assert result.exit_code == 0, result.stderr
    assert (copy / "plots" / "loss.png").stat().st_size > 0
    assert str(copy / "plots" / "loss.png") in result.stdout


def test_plot_of_a_folder_that_is_not_a_run_exits_2(tmp_path: Path) -> None:
    assert "metrics.jsonl" in assert_one_line_error(bpnn_cli("plot", tmp_path))


def test_version_prints_the_package_version() -> None:
    result = bpnn_cli("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"bpnn {bpnn.__version__}"


def test_help_lists_the_commands() -> None:
    result = bpnn_cli("--help")
    assert result.exit_code == 0
    for command in ("train", "eval", "predict", "gradcheck", "config", "plot"):
        assert command in result.stdout


def test_config_help_lists_show_and_check() -> None:
    result = bpnn_cli("config", "--help")
    assert result.exit_code == 0
    assert "show" in result.stdout and "check" in result.stdout


def console_script() -> Path:
    return Path(sys.executable).parent / "bpnn"


@pytest.mark.skipif(not console_script().exists(), reason="bpnn console script not installed")
def test_console_script_help_exits_0_and_lists_the_commands() -> None:
    env = {**os.environ, "COLUMNS": "100"}
    done = subprocess.run(
        [console_script(), "--help"], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0, done.stderr
    assert "train" in done.stdout and "gradcheck" in done.stdout


def test_python_dash_m_bpnn_is_the_same_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bpnn", "--version"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"bpnn {bpnn.__version__}"


HELP_IMPORTS = """
import sys
from bpnn.cli import app
try:
    app(["--help"], prog_name="bpnn")
except SystemExit as done:
    assert done.code in (0, None), done.code
heavy = sorted(m for m in ("numpy", "sklearn", "matplotlib", "pydantic") if m in sys.modules)
print("HEAVY:" + ",".join(heavy))
"""


def test_help_does_not_import_numpy_sklearn_or_matplotlib() -> None:
    done = subprocess.run(
        [sys.executable, "-c", HELP_IMPORTS], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    heavy = done.stdout.strip().splitlines()[-1]
    assert heavy.startswith("HEAVY:")
    imported = set(filter(None, heavy.removeprefix("HEAVY:").split(",")))
    assert not imported & {"numpy", "sklearn", "matplotlib"}, imported


# --- end to end -------------------------------------------------------------------------------


@pytest.mark.slow
def test_digits_config_of_the_repo_trains_to_95_percent(tmp_path: Path) -> None:
    config = REPO / "configs" / "digits.yaml"
    out = tmp_path / "digits"
    result = bpnn_cli("train", config, "--out", out, "--quiet")
    assert result.exit_code == 0, result.stderr

    resolved = yaml.safe_load((out / "config.yaml").read_text())
    assert resolved["model"]["hidden"] == [16]
    assert resolved["model"]["activation"] == "sigmoid"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["test_accuracy"] >= 0.95
    assert summary["test_samples"] == 360
    rows = read_metrics(out)
    assert len(rows) == summary["epochs_run"] == resolved["train"]["epochs"]
    assert all(set(row) == METRIC_KEYS for row in rows)
    assert {p.name for p in out.iterdir()} == {
        "config.yaml",
        "metrics.jsonl",
        "checkpoints",
        "summary.json",
        "plots",
    }
    assert {p.name for p in (out / "checkpoints").iterdir()} == {"best.npz", "last.npz"}
    assert (out / "plots" / "loss.png").is_file()
    model = bpnn.load_checkpoint(out / "checkpoints" / "best.npz")
    assert model.network.sizes == [64, 16, 10]
    evaluated = json.loads(bpnn_cli("eval", out / "checkpoints" / "best.npz", "--json").stdout)
    assert evaluated["test_accuracy"] == summary["test_accuracy"]
