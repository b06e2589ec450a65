"""Specification of ``bpnn sweep``: the sweep file, the search, the trials as run directories,
the sweep folder's files, resuming after SIGKILL, and the Dask executor.

Every sweep trains a tiny iris network (hidden [8], a few epochs, batch 64) into a ``tmp_path``
folder. A sweep's workers are spawned processes, so each sweep costs a second or two of start-up.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import Result

from bpnn.config import load_config
from bpnn.errors import ConfigError
from bpnn.metrics import is_headline
from bpnn.sweep.runner import JOURNAL_FILE, open_study, read_records, run_sweep
from bpnn.sweep.spec import load_sweep, reported_metrics
from tests import support
from tests.support import REPO, invoke, run_in_process

TINY = support.TINY.replace("batch_size: 16", "batch_size: 64")

GRID = """\
base: tiny.yaml
metric: val_accuracy
method: grid
space:
  optimizer.lr: [0.01, 0.1]
  model.hidden: [[8], [8, 4]]
"""


def sweep_folder(folder: Path, sweep: str, base: str = TINY) -> Path:
    """Write the base config and the sweep file into ``folder``; returns the sweep file."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tiny.yaml").write_text(base, encoding="utf-8")
    path = folder / "sweep.yaml"
    path.write_text(sweep, encoding="utf-8")
    return path


def lines_of(sweep_dir: Path) -> list[dict[str, Any]]:
    text = (sweep_dir / "sweep.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def start_sweep(command: list[str], workers: int) -> subprocess.Popen:
    """``command`` (a ``bpnn sweep``) with ``workers`` local workers, in a session of its own
    (``os.killpg`` ends it with its workers), its output discarded; not waited for."""
    return subprocess.Popen(
        [*command, "--workers", str(workers)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def running_trials(sweep_dir: Path) -> list[int]:
    from optuna.trial import TrialState

    study = open_study(sweep_dir)
    return [t.number for t in study.get_trials(states=(TrialState.RUNNING,))]


TPE = GRID.replace("method: grid", "method: tpe\ntrials: 2")

# --- the sweep file: every problem found before a trial runs -----------------------------------


@pytest.mark.parametrize(
    ("sweep", "message"),
    [
        (GRID + "budget: 3\n", "budget: unknown key"),
        (GRID.replace("method: grid", "method: bayes"), "method:"),
        (GRID.replace("base: tiny.yaml", "base: missing.yaml"), "no such config file"),
        (GRID + "  optimizer.lrr: [0.1]\n", "optimizer.lrr: unknown option of optimizer 'adam'"),
        (GRID + "  model.widths: [1]\n", "model.widths: unknown key"),
        (GRID + "  model.dropout: [0.1, 1.5]\n", "space.model.dropout=1.5: model.dropout"),
        (GRID.replace("[0.01, 0.1]", "[-1]"), "space.optimizer.lr=-1: optimizer.lr"),
        (GRID + "  optimizer.lr: [-1]\n", "the key 'optimizer.lr' is written twice"),
        (GRID + "  model.dropout: {uniform: [0, 0.5]}\n", "space.model.dropout: a range needs"),
        (GRID.replace("grid", "random"), "trials: required for method 'random'"),
        (GRID.replace("val_accuracy", "val_r2"), "metric: 'val_r2' is not a metric"),
        (GRID + "  model.dropout: []\n", "space.model.dropout: an empty list"),
        (
            TPE.replace("[0.01, 0.1]", "{log_uniform: [0, 1]}"),
            "log_uniform: low must be positive",
        ),
        (
            TPE + "  train.epochs: {int: [1.5, 3]}\n",
            "int: expected [low, high], two integers",
        ),
        (
            TPE + "  train.epochs: {steps: [1, 3]}\n",
            "unknown range 'steps'",
        ),
        (
            TPE + "  train.epochs: {int: [0, 3]}\n",
            "space.train.epochs=0: train.epochs",
        ),
        (GRID + "  loss: [mse, msee]\n  data.one_hot: [true]\n", 'space.loss="msee": loss:'),
        (GRID + "  loss: [mse]\n  data.one_hot: [false]\n", 'space.loss="mse": loss:'),
        (
            GRID.replace("[[8], [8, 4]]", "[[8, 4]]") + "  model.dropout: [[0.1]]\n",
            "space: no point of it is valid, e.g. optimizer.lr=0.01, model.hidden=[8, 4], "
            "model.dropout=[0.1]: model.dropout: has 1 entries for 2 hidden layers",
        ),
        (
            TPE + "  loss: [mse]\n  data.one_hot: [false]\n",
            "space.loss=\"mse\": loss: 'mse' is a regression loss",
        ),
        (
            GRID.replace("method: grid", "method: grid\ntrials: 3"),
            "trials: a grid runs each combination of its lists once; leave trials out",
        ),
    ],
)
def test_sweep_file_errors_name_the_key_before_any_trial_runs(
    tmp_path: Path, sweep: str, message: str
) -> None:
    path = sweep_folder(tmp_path, sweep)
    with pytest.raises(ConfigError, match=None) as error:
        load_sweep(path)
    assert message in str(error.value), str(error.value)
    assert str(error.value).startswith(str(path))
    assert "\n" not in str(error.value)
    result = invoke("sweep", path, "--out", tmp_path / "out")
    assert result.exit_code == 2, result.stderr
    assert result.stderr.startswith("error: ") and len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("limit", "refused"), [(4, True), (3, False)])
def test_a_value_wrong_in_every_point_is_refused_when_the_search_checked_them_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: int, refused: bool
) -> None:
    """loss=mse stands in 4 points of this tpe space, all invalid: a search limit of 4 checks
    each and refuses the value; with 3 the search gives up, and the value is left to the
    trials."""
    import bpnn.sweep.spec as spec

    monkeypatch.setattr(spec, "SEARCH_LIMIT", limit)
    sweep = TPE + "  loss: [mse, cross_entropy]\n  data.one_hot: [false]\n"
    path = sweep_folder(tmp_path, sweep)
    if refused:
        with pytest.raises(ConfigError, match=re.escape('space.loss="mse": loss:')):
            load_sweep(path)
    else:
        load_sweep(path)


def test_base_is_relative_to_the_sweep_files_folder(tmp_path: Path) -> None:
    path = sweep_folder(tmp_path / "elsewhere", GRID)
    spec = load_sweep(path)
    assert spec.base == str((tmp_path / "elsewhere" / "tiny.yaml").resolve())
    assert spec.direction == "maximize"
    assert load_sweep(
        sweep_folder(tmp_path, GRID.replace("val_accuracy", "val_loss"))
    ).direction == ("minimize")


# --- a grid of four trials on two workers ------------------------------------------------------


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Result]:
    folder = tmp_path_factory.mktemp("grid")
    path = sweep_folder(folder, GRID)
    result = invoke("sweep", path, "--out", folder / "out", "--workers", "2")
    assert result.exit_code == 0, (result.stderr, result.exception)
    return folder / "out", result


def test_grid_runs_every_combination_once_as_a_run_directory(grid: tuple[Path, Result]) -> None:
    sweep_dir, result = grid
    lines = lines_of(sweep_dir)
    assert sorted(line["trial"] for line in lines) == [0, 1, 2, 3]
    tried = sorted(json.dumps(line["overrides"], sort_keys=True) for line in lines)
    expected = sorted(
        json.dumps({"optimizer.lr": lr, "model.hidden": hidden}, sort_keys=True)
        for lr, hidden in itertools.product([0.01, 0.1], [[8], [8, 4]])
    )
    assert tried == expected
    for line in lines:
        assert set(line) == {
            "trial",
            "overrides",
            "status",
            "metric",
            "seconds",
            "run_dir",
            "error",
        }
        assert line["status"] == "completed" and line["error"] is None
        run_dir = Path(line["run_dir"])
        assert run_dir.parent == sweep_dir / "trials"
        assert run_dir.name.startswith(f"{line['trial']:04d}-")
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
        assert config["optimizer"]["lr"] == line["overrides"]["optimizer.lr"]
        assert config["model"]["hidden"] == line["overrides"]["model.hidden"]
        assert config["seed"] == 0  # each trial keeps the base config's seed
        epochs = [json.loads(row)["val_accuracy"] for row in (run_dir / "metrics.jsonl").open()]
        assert line["metric"] == max(epochs)  # the metric at its best epoch
    assert result.stderr.count(" completed val_accuracy ") == 4
    assert "trial 4/4 completed" in result.stderr
    assert running_trials(sweep_dir) == []


def test_every_metric_a_sweep_accepts_is_one_a_run_reports(
    grid: tuple[Path, Result], tmp_path: Path
) -> None:
    sweep_dir, _ = grid
    run_dir = Path(lines_of(sweep_dir)[0]["run_dir"])
    reported = set(json.loads((run_dir / "metrics.jsonl").open().readline()))
    reported |= set(json.loads((run_dir / "summary.json").read_text()))
    config = load_config(run_dir / "config.yaml")
    # the scores beyond the headlines (val_f1_macro...) an epoch measures when asked for: a
    # trial ranked by one asks (tests/test_scores.py); here a run that asks for them all
    scores = [n for n in reported_metrics(config) if n.startswith("val_") and not is_headline(n)]
    assert set(reported_metrics(config)) - set(scores) <= reported
    assigned = "train.metrics=" + json.dumps(scores)
    result = run_in_process(
        "train",
        run_dir / "config.yaml",
        "--set",
        assigned,
        "--out",
        tmp_path / "scored",
        "-q",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert set(scores) <= set(json.loads((tmp_path / "scored" / "metrics.jsonl").open().readline()))


def test_grid_prints_the_trials_ranked_and_writes_best_yaml(grid: tuple[Path, Result]) -> None:
    sweep_dir, result = grid
    ranked = sorted(lines_of(sweep_dir), key=lambda line: (-line["metric"], line["trial"]))
    best = ranked[0]
    assert f"best: trial {best['trial']} val_accuracy {best['metric']:.4f}" in result.stdout
    assert "rank" in result.stdout and "status" in result.stdout
    best_config = load_config(sweep_dir / "best.yaml")
    assert best_config.optimizer.lr == best["overrides"]["optimizer.lr"]
    assert best_config.model.hidden == best["overrides"]["model.hidden"]


def test_json_lists_the_trials_best_first_and_a_rerun_repeats_nothing(
    grid: tuple[Path, Result],
) -> None:
    sweep_dir, _ = grid
    before = {
        line["run_dir"]: digest(Path(line["run_dir"]) / "metrics.jsonl")
        for line in lines_of(sweep_dir)
    }
    spec_file = sweep_dir.parent / "sweep.yaml"
    result = invoke("sweep", spec_file, "--out", sweep_dir, "--json")
    assert result.exit_code == 0, result.stderr
    ranked = json.loads(result.stdout)
    metrics = [r["metric"] for r in ranked]
    assert metrics == sorted(metrics, reverse=True) and len(ranked) == 4
    assert "all 4 trials are finished" in result.stderr
    assert len(lines_of(sweep_dir)) == 4
    after = {run_dir: digest(Path(run_dir) / "metrics.jsonl") for run_dir in before}
    assert after == before


def test_best_yaml_trains(grid: tuple[Path, Result], tmp_path: Path) -> None:
    sweep_dir, _ = grid
    result = invoke("train", sweep_dir / "best.yaml", "--out", tmp_path / "run", "--quiet")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "run" / "summary.json").is_file()


def test_plot_of_a_sweep_folder_draws_the_metric_against_each_key(
    grid: tuple[Path, Result],
) -> None:
    sweep_dir, _ = grid
    result = invoke("plot", sweep_dir)
    assert result.exit_code == 0, result.stderr
    written = {Path(line).name for line in result.stdout.splitlines()}
    assert written == {"optimizer.lr.png", "model.hidden.png"}
    assert (sweep_dir / "plots" / "model.hidden.png").stat().st_size > 0


def test_a_folder_of_another_sweep_is_refused(grid: tuple[Path, Result]) -> None:
    sweep_dir, _ = grid
    other = sweep_dir.parent / "other.yaml"  # the same base config, another space
    other.write_text(GRID.replace("[0.01, 0.1]", "[0.01, 0.2]"), encoding="utf-8")
    result = invoke("sweep", other, "--out", sweep_dir)
    assert result.exit_code == 2
    assert "holds a sweep whose 'space' differs" in result.stderr


def test_a_string_that_looks_like_a_number_is_saved_so_that_the_sweep_resumes(
    tmp_path: Path,
) -> None:
    """A choice "1e-3" (a string: here a run name) is saved quoted in the folder's sweep.yaml,
    which bpnn's reader would otherwise take for the number 0.001 and refuse the resume as
    another sweep."""
    sweep = GRID.split("space:")[0] + 'space:\n  name: ["1e-3"]\n'
    path = sweep_folder(tmp_path, sweep, TINY.replace("epochs: 3", "epochs: 1"))
    first = invoke("sweep", path, "--out", tmp_path / "out", "--workers", "1")
    assert first.exit_code == 0, first.stderr
    assert "'1e-3'" in (tmp_path / "out" / "sweep.yaml").read_text(encoding="utf-8")
    again = invoke("sweep", path, "--out", tmp_path / "out", "--workers", "1")
    assert again.exit_code == 0, again.stderr
    (record,) = lines_of(tmp_path / "out")
    assert record["overrides"] == {"name": "1e-3"} and record["status"] == "completed", record


# --- random and tpe ----------------------------------------------------------------------------

RANDOM = """\
base: tiny.yaml
metric: val_loss
method: random
trials: 3
seed: {seed}
space:
  optimizer.lr: {{log_uniform: [1.0e-3, 1.0e-1]}}
  model.hidden: [[4], [8], [8, 4]]
  train.epochs: {{int: [1, 3]}}
"""


def test_random_sweep_is_reproducible_from_its_seed(tmp_path: Path) -> None:
    def tried(seed: int, workers: int, name: str) -> dict[int, dict[str, Any]]:
        spec = load_sweep(sweep_folder(tmp_path, RANDOM.format(seed=seed)))
        outcome = run_sweep(spec, tmp_path / name, workers=workers)
        assert outcome.ran == 3
        return {r["trial"]: r["overrides"] for r in outcome.ranked}

    first = tried(seed=7, workers=1, name="a")
    assert tried(seed=7, workers=2, name="b") == first
    assert tried(seed=8, workers=2, name="c") != first
    for overrides in first.values():
        assert 1e-3 <= overrides["optimizer.lr"] <= 1e-1
        assert overrides["model.hidden"] in ([4], [8], [8, 4])
        assert isinstance(overrides["train.epochs"], int) and 1 <= overrides["train.epochs"] <= 3


def test_tpe_sweep_runs_and_minimises_a_loss(tmp_path: Path) -> None:
    sweep = RANDOM.format(seed=0).replace("random", "tpe").replace("trials: 3", "trials: 4")
    spec = load_sweep(sweep_folder(tmp_path, sweep))
    outcome = run_sweep(spec, tmp_path / "out", workers=2)
    assert [r["status"] for r in outcome.ranked] == ["completed"] * 4
    metrics = [r["metric"] for r in outcome.ranked]
    assert metrics == sorted(metrics)  # val_loss: lowest first
    assert running_trials(tmp_path / "out") == []


# --- failures and pruning ----------------------------------------------------------------------


def test_a_failing_trial_is_recorded_and_the_others_go_on(tmp_path: Path) -> None:
    # each value is valid alone; two hidden layers with one dropout rate are not
    sweep = GRID.replace("  optimizer.lr: [0.01, 0.1]\n", "  model.dropout: [[0.1]]\n")
    spec = load_sweep(sweep_folder(tmp_path, sweep))
    outcome = run_sweep(spec, tmp_path / "out", workers=2)
    by_hidden = {json.dumps(r["overrides"]["model.hidden"]): r for r in outcome.ranked}
    good, bad = by_hidden["[8]"], by_hidden["[8, 4]"]
    assert good["status"] == "completed" and good["metric"] is not None
    assert bad["status"] == "failed" and bad["metric"] is None
    assert "model.dropout: has 1 entries for 2 hidden layers" in bad["error"]
    assert outcome.ranked[0] is good
    assert load_config(tmp_path / "out" / "best.yaml").model.hidden == [8]
    assert running_trials(tmp_path / "out") == []


ONE_HOT_MSE = """\
base: tiny.yaml
metric: val_accuracy
method: {method}
space:
  loss: {losses}
  data.one_hot: {one_hot}
"""


def searched(method: str) -> str:
    """``method`` as a sweep file says it: random with 4 trials; a grid has one per point."""
    return method if method == "grid" else f"{method}\ntrials: 4"


@pytest.mark.parametrize("method", ["grid", "random"])
def test_values_valid_only_together_are_one_valid_point(tmp_path: Path, method: str) -> None:
    # mse alone needs one-hot targets on iris; one-hot targets alone need a regression loss
    sweep = ONE_HOT_MSE.format(method=searched(method), losses="[mse]", one_hot="[true]")
    spec = load_sweep(sweep_folder(tmp_path, sweep))
    outcome = run_sweep(spec, tmp_path / "out", workers=1)
    assert {r["status"] for r in outcome.ranked} == {"completed"}
    best = load_config(tmp_path / "out" / "best.yaml")
    assert best.loss.name == "mse" and best.data.one_hot is True


@pytest.mark.parametrize("method", ["grid", "random"])
def test_a_point_invalid_as_a_whole_is_a_failed_trial_that_never_runs(
    tmp_path: Path, method: str
) -> None:
    sweep = ONE_HOT_MSE.format(
        method=searched(method), losses="[mse, cross_entropy]", one_hot="[true, false]"
    )
    spec = load_sweep(sweep_folder(tmp_path, sweep))
    outcome = run_sweep(spec, tmp_path / "out", workers=2)
    assert outcome.ran == 4 and len(lines_of(tmp_path / "out")) == 4
    valid = [
        {"loss": "mse", "data.one_hot": True},
        {"loss": "cross_entropy", "data.one_hot": False},
    ]
    for record in outcome.ranked:
        point = record["overrides"]
        if point in valid:
            assert record["status"] == "completed", record
            continue
        assert record["status"] == "failed" and record["metric"] is None
        assert record["seconds"] == 0.0
        assert not Path(record["run_dir"]).exists()  # never sent to a worker
        key = "loss" if point["loss"] == "mse" else "data.one_hot"
        expected = f"invalid point (loss={json.dumps(point['loss'])}, data.one_hot="
        assert record["error"].startswith(expected), record["error"]
        assert f"): {key}: " in record["error"]
    if method == "grid":
        assert sorted(r["status"] for r in outcome.ranked) == ["completed"] * 2 + ["failed"] * 2
    assert running_trials(tmp_path / "out") == []


def test_pruning_stops_a_trial_below_the_median_of_earlier_ones(tmp_path: Path) -> None:
    sweep = """\
base: tiny.yaml
metric: val_accuracy
method: grid
prune: true
seed: 1
prune_startup_trials: 1
prune_warmup_epochs: 1
space:
  optimizer.lr: [0.05, 1.0e-6]
"""
    base = TINY.replace("epochs: 3", "epochs: 6")
    spec = load_sweep(sweep_folder(tmp_path, sweep, base))
    outcome = run_sweep(spec, tmp_path / "out", workers=1)
    order = [
        r["overrides"]["optimizer.lr"] for r in sorted(outcome.ranked, key=lambda r: r["trial"])
    ]
    assert order == [0.05, 1.0e-6], "the grid's order by seed 0 (the test needs the good one first)"
    good, bad = sorted(outcome.ranked, key=lambda r: r["trial"])
    assert good["status"] == "completed"
    assert bad["status"] == "pruned"
    epochs = (Path(bad["run_dir"]) / "metrics.jsonl").read_text().splitlines()
    assert len(epochs) < 6
    summary = json.loads((Path(bad["run_dir"]) / "summary.json").read_text())
    assert summary["stop_reason"].startswith("pruned")


# --- kill -9 and resume ------------------------------------------------------------------------


@pytest.mark.slow
def test_sweep_killed_with_sigkill_resumes_without_losing_or_repeating_a_trial(
    tmp_path: Path,
) -> None:
    sweep = GRID.replace("[0.01, 0.1]", "[0.003, 0.01, 0.03]")  # 6 grid points
    path = sweep_folder(tmp_path, sweep, TINY.replace("epochs: 3", "epochs: 15"))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "bpnn", "sweep", str(path), "--out", str(out)]
    process = start_sweep(command, workers=1)
    results = out / "sweep.jsonl"
    deadline = time.monotonic() + 120
    while not (results.is_file() and len(results.read_text().splitlines()) >= 2):
        assert process.poll() is None, "the sweep ended before it was killed"
        assert time.monotonic() < deadline, "no two trials finished in time"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    before = {line["trial"]: line for line in lines_of(out)}
    assert len(before) < 6
    digests = {n: digest(Path(line["run_dir"]) / "metrics.jsonl") for n, line in before.items()}

    resumed = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    lines = lines_of(out)
    assert sorted(line["trial"] for line in lines) == list(range(6))  # none lost, none twice
    assert all(line["status"] == "completed" for line in lines)
    tried = sorted(json.dumps(line["overrides"], sort_keys=True) for line in lines)
    assert len(set(tried)) == 6  # every grid point exactly once
    for number, line in before.items():  # finished trials were not touched
        assert digest(Path(line["run_dir"]) / "metrics.jsonl") == digests[number]
    for line in lines:  # every epoch once, in order, in every trial
        rows = (Path(line["run_dir"]) / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(row)["epoch"] for row in rows] == list(range(1, 16))
    assert running_trials(out) == []
    assert (out / JOURNAL_FILE).is_file() and (out / "best.yaml").is_file()
    assert len(read_records(out / "sweep.jsonl")) == 6


def test_a_second_sweep_on_a_running_sweeps_folder_is_refused_and_changes_nothing(
    tmp_path: Path,
) -> None:
    """The sweep folder is locked as a run directory is: a second ``bpnn sweep`` on it is one
    line naming the first one's process, and it neither adopts nor deletes the running trial."""
    path = sweep_folder(tmp_path, GRID, TINY.replace("epochs: 3", "epochs: 400"))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "bpnn", "sweep", str(path), "--out", str(out)]
    first = start_sweep(command, workers=1)
    try:
        deadline = time.monotonic() + 120
        while not list((out / "trials").glob("*/metrics.jsonl")):
            assert first.poll() is None, "the first sweep ended early"
            assert time.monotonic() < deadline, "no trial started in time"
            time.sleep(0.05)
        trials = sorted(p.name for p in (out / "trials").iterdir())
        second = subprocess.run(
            command,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            env=support.cli_environment(),
        )
        assert second.returncode == 2, second.stderr
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and f"pid {first.pid}" in lines[0], second.stderr
        assert "in use by another bpnn process" in lines[0]
        assert first.poll() is None  # still running, its trial untouched
        assert sorted(p.name for p in (out / "trials").iterdir()) == trials
        assert not (out / "sweep.jsonl").exists() or lines_of(out) == []
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()


def descendants(pid: int) -> set[int]:
    """Every process below ``pid``, from the parent ids in /proc/*/stat (Linux)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # it ended meanwhile
            continue
        ppid = int(text[text.rindex(")") + 2 :].split()[1])  # after "pid (name) state"
        children.setdefault(ppid, []).append(int(stat.parent.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def is_running(pid: int) -> bool:
    """The process exists and is not a zombie waiting to be reaped."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return text[text.rindex(")") + 2] != "Z"


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="finds the workers in /proc")
def test_sigkill_of_the_sweep_ends_its_workers_and_leaves_resumable_trials(
    tmp_path: Path,
) -> None:
    path = sweep_folder(tmp_path, GRID, TINY.replace("epochs: 3", "epochs: 100000"))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "bpnn", "sweep", str(path), "--out", str(out)]
    process = start_sweep(command, workers=2)
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 120
        while True:  # until both workers are training (an epoch written by each)
            metrics = [run / "metrics.jsonl" for run in out.glob("trials/*")]
            if sum(m.is_file() and m.stat().st_size > 0 for m in metrics) == 2:
                break
            assert process.poll() is None, "the sweep ended before it was killed"
            assert time.monotonic() < deadline, "the two workers did not start training in time"
            time.sleep(0.05)
        workers = descendants(process.pid)
        assert len(workers) >= 2  # the two workers (and multiprocessing's resource tracker)
        process.kill()  # the sweep process alone, not its process group
        process.wait()
        deadline = time.monotonic() + 40
        while running := {pid for pid in workers if is_running(pid)}:
            assert time.monotonic() < deadline, f"left running by the killed sweep: {running}"
            time.sleep(0.05)
    finally:
        for pid in workers:
            if is_running(pid):
                os.kill(pid, signal.SIGKILL)
    trials = sorted(out.glob("trials/*"))
    assert len(trials) == 2
    for run_dir in trials:  # each interrupted as bpnn train on SIGTERM: the lock released
        assert not (run_dir / ".lock").exists()
        assert not (run_dir / "summary.json").exists()
        done = len((run_dir / "metrics.jsonl").read_text().splitlines())
        resumed = invoke("resume", run_dir, "--epochs", done + 2, "--quiet")
        assert resumed.exit_code == 0, resumed.stderr
        rows = (run_dir / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(row)["epoch"] for row in rows] == list(range(1, done + 3))


# --- Dask --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_dask_executor_runs_the_trials_on_a_local_cluster(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    spec = load_sweep(sweep_folder(tmp_path, GRID))
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        outcome = run_sweep(spec, tmp_path / "out", dask_address=cluster.scheduler_address)
    assert outcome.ran == 4
    assert [r["status"] for r in outcome.ranked] == ["completed"] * 4
    for record in outcome.ranked:
        assert (Path(record["run_dir"]) / "summary.json").is_file()
    assert len(lines_of(tmp_path / "out")) == 4
    assert (tmp_path / "out" / "best.yaml").is_file()


def test_dask_address_that_does_not_answer_is_one_line_error(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    path = sweep_folder(tmp_path, GRID)
    result = invoke("sweep", path, "--out", tmp_path / "out", "--dask", "tcp://127.0.0.1:9")
    assert result.exit_code == 2, (result.stderr, result.exception)
    assert result.stderr.startswith("error: --dask tcp://127.0.0.1:9: cannot connect")


class _Marker:
    """Writes its file when the interpreter's teardown collects it (a module global)."""

    def __init__(self, path: str) -> None:
        self.path, self.open, self.write, self.close = path, os.open, os.write, os.close

    def __del__(self) -> None:
        descriptor = self.open(self.path, os.O_WRONLY | os.O_CREAT)
        self.write(descriptor, b"torn down")
        self.close(descriptor)


def _leave_markers(folder: str) -> None:
    """A task for a worker: an exit handler that writes a file, and a global that only the
    interpreter's teardown collects; and something printed without a newline."""
    import atexit

    atexit.register(Path(folder, "exit handler").write_text, "ran")
    globals()["_kept_until_teardown"] = _Marker(str(Path(folder, "teardown")))
    print("printed by the worker", end="")


def test_a_local_worker_runs_the_exit_handlers_but_skips_the_teardown(tmp_path, capfd):
    """Idle workers end without the interpreter's teardown at the end of a sweep (0.6 s with
    the libraries a trial loads), after every exit handler a trial registered has run and what
    they printed is flushed."""
    from bpnn.sweep.executors import LocalExecutor

    executor = LocalExecutor(1)
    executor.pool.submit(_leave_markers, str(tmp_path)).result()
    executor.close()
    assert (tmp_path / "exit handler").read_text() == "ran"
    assert not (tmp_path / "teardown").exists()
    assert "printed by the worker" in capfd.readouterr().out
