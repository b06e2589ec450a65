"""Specification of ``bpnn sweep`` on hostile but fair input (issue 27): a sweep folder whose
files were edited, cut or replaced, a ``--dask`` address that is not one, a space too large to
list. Every refusal is one line, ``error: ...`` naming the file and line (or the option and
its value), exit code 2, and the sweep folder is left exactly as it was; a last line torn by a
crash is still repaired in silence.

One real sweep of two 1-epoch trials (``pristine``) is copied for each tampering.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import resource
import shutil
import socket
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import Result

from bpnn.errors import ConfigError
from bpnn.sweep.runner import read_records
from bpnn.sweep.spec import load_sweep
from tests import support
from tests.support import invoke

TINY = support.TINY.replace("epochs: 3", "epochs: 1").replace("batch_size: 16", "batch_size: 64")

GRID = support.TWO_TRIAL_GRID


def write_sweep(folder: Path, sweep: str = GRID) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tiny.yaml").write_text(TINY, encoding="utf-8")
    path = folder / "sweep.yaml"
    path.write_text(sweep, encoding="utf-8")
    return path


def contents(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (its relative path) and the SHA-256 of its bytes."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def one_line_error(result: Result | Any, starts: str) -> str:
    """The refusal's one line; it has exit code 2 and starts with ``error: STARTS``."""
    stderr = result.stderr
    code = result.exit_code if isinstance(result, Result) else result.returncode
    assert code == 2, (code, stderr, getattr(result, "exception", None))
    assert len(stderr.splitlines()) == 1, stderr
    assert stderr.startswith(f"error: {starts}"), stderr
    return stderr


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``(sweep file, sweep folder)`` of a finished grid of two trials."""
    folder = tmp_path_factory.mktemp("pristine")
    path = write_sweep(folder)
    result = invoke("sweep", path, "--out", folder / "out", "--workers", "1")
    assert result.exit_code == 0, (result.stderr, result.exception)
    return path, folder / "out"


@pytest.fixture
def copy(pristine: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    """``(sweep file, a copy of the finished sweep folder)`` to tamper with."""
    path, sweep_dir = pristine
    shutil.copytree(sweep_dir, tmp_path / "out")
    return path, tmp_path / "out"


def replace_line(path: Path, number: int, line: bytes) -> None:
    lines = path.read_bytes().split(b"\n")
    lines[number - 1] = line
    path.write_bytes(b"\n".join(lines))


def edited_record(**changes: Any) -> Callable[[bytes], bytes]:
    """A tampering of a record: ``changes`` set (``None`` deletes the field)."""

    def edit(line: bytes) -> bytes:
        record = json.loads(line)
        for key, value in changes.items():
            if value is None:
                del record[key]
            else:
                record[key] = value
        return json.dumps(record).encode()

    return edit


def _null_metric(line: bytes) -> bytes:
    return json.dumps({**json.loads(line), "metric": None}).encode()


# --- sweep.jsonl -------------------------------------------------------------------------------

#: (how line 1 is tampered with, what the one line says after "sweep.jsonl: line 1")
TAMPERED_RECORDS = [
    pytest.param(lambda line: b"garbage", " is not JSON", id="not-json"),
    pytest.param(lambda line: b"\xff\xfe" + line, " is not UTF-8 text", id="not-utf8"),
    pytest.param(lambda line: b"[1, 2]", " is [1, 2], not a JSON object", id="array"),
    pytest.param(lambda line: b"3.5", " is 3.5, not a JSON object", id="number"),
    pytest.param(lambda line: b"[" * 100_000, " is not JSON", id="deeply-nested"),
    pytest.param(edited_record(trial=None), ": not a trial's record: no 'trial'", id="no-trial"),
    pytest.param(edited_record(trial=True), ": trial: True is not a trial number", id="bool"),
    pytest.param(edited_record(trial=-1), ": trial: -1 is not a trial number", id="negative"),
    pytest.param(edited_record(trial="0"), ": trial: '0' is not a trial number", id="string"),
    pytest.param(edited_record(trial=1.0), ": trial: 1.0 is not a trial number", id="float"),
    pytest.param(
        edited_record(trial=math.inf), ": trial: inf is not a trial number", id="infinity"
    ),
    pytest.param(edited_record(status="great"), ": status: 'great' is not one of", id="status"),
    pytest.param(edited_record(metric="high"), ": metric: 'high' is not a finite", id="metric"),
    pytest.param(edited_record(metric=math.nan), ": metric: nan is not a finite", id="nan"),
    pytest.param(_null_metric, ": metric: null, but the trial completed", id="no-metric"),
    pytest.param(edited_record(overrides=5), ": overrides: 5 is not a mapping", id="overrides"),
    pytest.param(
        edited_record(overrides={"model.hidden": [8]}),
        ": overrides: the keys ['model.hidden'] are not the searched keys",
        id="other-key",
    ),
    pytest.param(
        edited_record(overrides={"optimizer.lr": 0.3}),
        ": overrides: optimizer.lr=0.3 is not a value the sweep searches",
        id="other-value",
    ),
    pytest.param(edited_record(seconds="x"), ": seconds: 'x' is not a number", id="seconds"),
    pytest.param(edited_record(run_dir=5), ": run_dir: 5 is not a path", id="run-dir"),
    pytest.param(edited_record(error=[1]), ": error: [1] is not a message", id="error"),
    pytest.param(edited_record(epoch=3), ": not a trial's record: unknown field", id="extra"),
]


@pytest.mark.parametrize(("tamper", "message"), TAMPERED_RECORDS)
def test_a_tampered_record_before_the_last_is_one_line_naming_it(
    copy: tuple[Path, Path], tamper: Callable[[bytes], bytes], message: str
) -> None:
    path, sweep_dir = copy
    results = sweep_dir / "sweep.jsonl"
    replace_line(results, 1, tamper(results.read_bytes().split(b"\n")[0]))
    before = contents(sweep_dir)
    result = invoke("sweep", path, "--out", sweep_dir)
    one_line_error(result, f"{results}: line 1{message}")
    assert contents(sweep_dir) == before  # nothing written, nothing cut


def test_a_tampered_record_is_refused_by_the_real_cli_and_by_plot(
    copy: tuple[Path, Path], run_cli: Callable[..., Any]
) -> None:
    path, sweep_dir = copy
    results = sweep_dir / "sweep.jsonl"
    replace_line(results, 1, b'{"trial": 0')  # torn, but not the last line
    before = contents(sweep_dir)
    one_line_error(run_cli("sweep", path, "--out", sweep_dir), f"{results}: line 1 is not JSON")
    one_line_error(invoke("plot", sweep_dir), f"{results}: line 1 is not JSON")
    assert contents(sweep_dir) == before


@pytest.mark.parametrize("kind", ["fifo", "link"])
def test_a_records_file_that_is_a_fifo_or_a_link_is_one_line_never_waited_on(
    copy: tuple[Path, Path], kind: str
) -> None:
    path, sweep_dir = copy
    results = sweep_dir / "sweep.jsonl"
    results.rename(sweep_dir / "elsewhere.jsonl")
    if kind == "fifo":
        os.mkfifo(results)
    else:
        results.symlink_to(sweep_dir / "elsewhere.jsonl")
    message = "not a regular file" if kind == "fifo" else "is a symbolic link"
    one_line_error(invoke("sweep", path, "--out", sweep_dir), f"{results}: {message}")


def test_a_torn_last_record_is_cut_off_in_silence(copy: tuple[Path, Path]) -> None:
    """A crash in the middle of the last append: the sweep goes on as if it had never begun."""
    path, sweep_dir = copy
    results = sweep_dir / "sweep.jsonl"
    whole = results.read_bytes()
    results.write_bytes(whole + b'{"trial": 2, "overr')
    result = invoke("sweep", path, "--out", sweep_dir, "--json")
    assert result.exit_code == 0, result.stderr
    assert results.read_bytes() == whole
    assert sorted(read_records(results)) == [0, 1]


def test_a_torn_last_record_is_kept_when_an_earlier_line_is_refused(
    copy: tuple[Path, Path],
) -> None:
    path, sweep_dir = copy
    results = sweep_dir / "sweep.jsonl"
    replace_line(results, 1, b"garbage")
    results.write_bytes(results.read_bytes() + b'{"trial": 2, "overr')
    before = contents(sweep_dir)
    one_line_error(invoke("sweep", path, "--out", sweep_dir), f"{results}: line 1 is not JSON")
    assert contents(sweep_dir) == before


# --- sweep.yaml, the saved spec ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("saved", "message"),
    [
        ("[[[\n", "invalid YAML (line 2, column 1)"),
        ("[1, 2]\n", "not the saved spec of a sweep (a mapping)"),
        ("{1: 2, a: 3}\n", "not the saved spec of a sweep: base: required"),
        ("base: /x.yaml\nspace: 3\n", "not the saved spec of a sweep: space: "),
        ("base: /x.yaml\nspace: {lr: []}\n", "not the saved spec of a sweep: space.lr: an empty"),
        ("base: /x.yaml\nmetric: [1]\nspace: {lr: [1]}\n", "not the saved spec of a sweep: metric"),
    ],
)
def test_a_garbage_saved_spec_is_one_line_naming_it(
    copy: tuple[Path, Path], saved: str, message: str
) -> None:
    path, sweep_dir = copy
    (sweep_dir / "sweep.yaml").write_text(saved, encoding="utf-8")
    before = contents(sweep_dir)
    result = invoke("sweep", path, "--out", sweep_dir)
    one_line_error(result, f"{sweep_dir / 'sweep.yaml'}: {message}")
    one_line_error(invoke("plot", sweep_dir), f"{sweep_dir / 'sweep.yaml'}: {message}")
    assert contents(sweep_dir) == before


# --- optuna.journal ----------------------------------------------------------------------------


def _journal_line(number: int, line: bytes) -> Callable[[Path], None]:
    return lambda sweep_dir: replace_line(sweep_dir / "optuna.journal", number, line)


def _cut_records(sweep_dir: Path) -> None:
    results = sweep_dir / "sweep.jsonl"
    results.write_bytes(results.read_bytes().split(b"\n", 1)[0] + b"\n")


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (_journal_line(3, b"garbage"), "optuna.journal: line 3 is not JSON"),
        (_journal_line(3, b"\xff"), "optuna.journal: line 3 is not UTF-8 text"),
        (_journal_line(3, b"[" * 100_000), "optuna.journal: line 3 is not JSON"),
        (_journal_line(3, b"[3]"), "optuna.journal: line 3 is [3], not a JSON object"),
        (_journal_line(3, b"{}"), "optuna.journal: not an Optuna journal that can be replayed"),
        (_journal_line(3, b'{"op_code": 99}'), "optuna.journal: not an Optuna journal that"),
        (
            lambda sweep_dir: (sweep_dir / "optuna.journal").write_bytes(b""),
            "sweep.jsonl: trial 0 is recorded, but",
        ),
        (lambda sweep_dir: (sweep_dir / "optuna.journal").unlink(), "sweep.jsonl: holds trials"),
        (_cut_records, "optuna.journal: trial 1 is finished, but"),
    ],
)
def test_a_garbage_or_replaced_journal_is_one_line_naming_it(
    copy: tuple[Path, Path], tamper: Callable[[Path], None], message: str
) -> None:
    """Optuna's replay of a bad journal raises whatever it runs into (a KeyError, an
    AssertionError, a JSONDecodeError); a journal that lost the recorded trials would have them
    run again, over their run directories."""
    path, sweep_dir = copy
    tamper(sweep_dir)
    before = contents(sweep_dir)
    result = invoke("sweep", path, "--out", sweep_dir)
    one_line_error(result, f"{sweep_dir}/{message}")
    assert contents(sweep_dir) == before


# --- a trial's own files, read when an interrupted trial is adopted ----------------------------


def interrupted_after_training(sweep_dir: Path, number: int) -> None:
    """Make the folder that of a sweep killed after trial ``number`` trained and before its
    record was written: the record gone, the trial RUNNING again in the journal (its state
    line removed)."""
    results = sweep_dir / "sweep.jsonl"
    records = [line for line in results.read_text().splitlines() if line.strip()]
    kept = [line for line in records if json.loads(line)["trial"] != number]
    results.write_text("".join(f"{line}\n" for line in kept))
    journal = sweep_dir / "optuna.journal"
    lines = journal.read_text().splitlines()
    told = [
        line
        for line in lines
        if json.loads(line)["op_code"] == 6 and json.loads(line)["trial_id"] == number
    ]
    assert len(told) == 1
    journal.write_text("".join(f"{line}\n" for line in lines if line not in told))


@pytest.mark.parametrize(
    ("file", "text", "message"),
    [
        ("summary.json", b"[1, 2]", "summary.json: not the summary of a run: not a JSON object"),
        ("summary.json", b"{oops", "summary.json: not the summary of a run: not valid JSON"),
        ("summary.json", b"[" * 100_000, "summary.json: not the summary of a run: nested too"),
        (
            "summary.json",
            b'{"val_accuracy": "high"}',
            "summary.json: not the summary of a run: 'val_accuracy' is 'high'",
        ),
        ("metrics.jsonl", b"garbage\n", "metrics.jsonl: line 1: not valid JSON"),
    ],
)
def test_an_adopted_trial_with_a_garbage_run_file_fails_naming_it_and_keeps_its_run(
    copy: tuple[Path, Path], file: str, text: bytes, message: str
) -> None:
    path, sweep_dir = copy
    interrupted_after_training(sweep_dir, 1)
    (run_dir,) = sweep_dir.glob("trials/0001-*")
    target = run_dir / file
    target.write_bytes(text + target.read_bytes() if file == "metrics.jsonl" else text)
    kept = contents(run_dir)
    result = invoke("sweep", path, "--out", sweep_dir, "--workers", "1")
    assert result.exit_code == 0, (result.stderr, result.exception)
    record = read_records(sweep_dir / "sweep.jsonl")[1]
    assert record["status"] == "failed"
    assert record["error"].startswith(str(target)) and message in record["error"], record
    assert contents(run_dir) == kept  # the trial's run is never removed for a garbage file


# --- --dask ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    ["not a url", "tcp://", "tcp://host:notaport", ":::", "tcp://127.0.0.1:99999", "tcp://h:0"],
)
def test_a_malformed_dask_address_is_one_line_before_anything_is_done(
    tmp_path: Path, address: str
) -> None:
    path = write_sweep(tmp_path)
    result = invoke("sweep", path, "--out", tmp_path / "out", "--dask", address)
    one_line_error(result, f"--dask {address!r}: not the address of a Dask scheduler")
    assert not (tmp_path / "out").exists()


@pytest.fixture
def not_a_scheduler() -> Iterator[str]:
    """The address of a server on this machine that answers like a web server."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            with connection:
                connection.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n" * 4)
                time.sleep(0.2)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"tcp://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    server.close()


def test_a_server_that_is_not_a_dask_scheduler_is_one_line(
    tmp_path: Path, not_a_scheduler: str, run_cli: Callable[..., Any]
) -> None:
    """distributed reads a frame length out of the HTTP reply and fails to allocate it: the
    MemoryError is not this machine's memory (exit 4), but a wrong address."""
    pytest.importorskip("distributed")
    path = write_sweep(tmp_path)
    result = run_cli("sweep", path, "--out", tmp_path / "out", "--dask", not_a_scheduler)
    one_line_error(result, f"--dask {not_a_scheduler}: cannot connect: what answered is not")


# --- a space too large to list -----------------------------------------------------------------

#: 10 keys of 10 values and one of 2: a grid of 2 x 10^10 points
HUGE_SPACE = """\
space:
  optimizer.lr: [0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.007, 0.008, 0.009, 0.01]
  optimizer.weight_decay: [0.0, 0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.007, 0.008, 0.009]
  optimizer.beta1: [0.8, 0.81, 0.82, 0.83, 0.84, 0.85, 0.86, 0.87, 0.88, 0.89]
  optimizer.beta2: [0.99, 0.991, 0.992, 0.993, 0.994, 0.995, 0.996, 0.997, 0.998, 0.999]
  optimizer.eps: [1.0e-8, 2.0e-8, 3.0e-8, 4.0e-8, 5.0e-8, 6.0e-8, 7.0e-8, 8.0e-8, 9.0e-8, 1.0e-7]
  model.dropout: [0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09]
  loss.label_smoothing: [0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09]
  train.epochs: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
  train.batch_size: [16, 17, 18, 19, 20, 21, 22, 23, 24, 25]
  seed: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
  data.val_fraction: [0.1, 0.2]
"""
HUGE_GRID = "base: tiny.yaml\nmetric: val_accuracy\nmethod: grid\n" + HUGE_SPACE
HUGE_RANDOM = "base: tiny.yaml\nmetric: val_accuracy\nmethod: random\ntrials: 3\n" + HUGE_SPACE


def bounded(work: Callable[[], Any]) -> tuple[Any, float, float]:
    """``work()``'s result (or the ``ConfigError`` it raised), its peak memory in MB (Python's
    allocations) and its seconds."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        result = work()
    except ConfigError as error:
        result = error
    finally:
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1] / 1e6
        tracemalloc.stop()
    return result, peak, seconds


def test_a_grid_too_large_to_run_is_refused_from_its_counts(tmp_path: Path) -> None:
    path = write_sweep(tmp_path, HUGE_GRID)
    error, peak, seconds = bounded(lambda: load_sweep(path))
    assert isinstance(error, ConfigError)
    assert str(error).startswith(f"{path}: space: a grid of 20,000,000,000 points (10 x 10 x")
    assert "method random or tpe" in str(error)
    assert peak < 50 and seconds < 10, (peak, seconds)


def test_a_grid_too_large_to_run_is_one_line_through_the_cli(
    tmp_path: Path, run_cli: Callable[..., Any]
) -> None:
    """(The old code listed the grid before its first trial: the address space limit turns that
    into a quick MemoryError instead of the machine's memory.)"""
    path = write_sweep(tmp_path, HUGE_GRID)
    limit = 4 << 30

    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    started = time.monotonic()
    result = run_cli("sweep", path, "--out", tmp_path / "out", timeout=120, preexec_fn=limit_memory)
    one_line_error(result, f"{path}: space: a grid of 20,000,000,000 points")
    assert time.monotonic() - started < 60
    assert not (tmp_path / "out").exists()


def test_a_random_search_of_a_huge_space_is_checked_in_bounded_memory_and_time(
    tmp_path: Path,
) -> None:
    from bpnn.sweep.samplers import distributions, make_sampler

    path = write_sweep(tmp_path, HUGE_RANDOM)

    def first_trial_ready() -> Any:
        spec = load_sweep(path)
        return spec, distributions(spec), make_sampler(spec, 0)

    (spec, space, _), peak, seconds = bounded(first_trial_ready)
    assert spec.total_trials() == 3 and spec.grid_size() == 2 * 10**10 and len(space) == 11
    assert peak < 50 and seconds < 30, (peak, seconds)


def points_checked(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The points the checks before a sweep judge (``SweepSpec.point_error``), as they go."""
    import bpnn.sweep.spec as spec_module

    checked: list[dict[str, Any]] = []
    point_error = spec_module.SweepSpec.point_error

    def counted(self: Any, point: dict[str, Any]) -> str | None:
        checked.append(point)
        return point_error(self, point)

    monkeypatch.setattr(spec_module.SweepSpec, "point_error", counted)
    return checked


@pytest.mark.parametrize("method", ["grid", "tpe"])
def test_the_checks_before_a_sweep_stop_after_search_limit_points_per_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    """loss=mse stands in 20 points, all invalid (iris has class labels): with a search limit of
    5 the search gives up on it after 5, for a grid as for tpe, and leaves it to the trials."""
    import bpnn.sweep.spec as spec_module

    monkeypatch.setattr(spec_module, "SEARCH_LIMIT", 5)
    checked = points_checked(monkeypatch)
    trials = "" if method == "grid" else "\ntrials: 2"
    sweep = GRID.replace("method: grid", f"method: {method}{trials}") + (
        "  loss: [cross_entropy, mse]\n"
        "  data.one_hot: [false]\n"
        "  model.dropout: [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]\n"
    )
    load_sweep(write_sweep(tmp_path, sweep))
    assert sum(point.get("loss") == "mse" for point in checked) <= 5


def test_the_checks_before_a_sweep_stop_after_check_limit_points_in_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bpnn.sweep.spec as spec_module

    monkeypatch.setattr(spec_module, "CHECK_LIMIT", 4)
    checked = points_checked(monkeypatch)
    values = ", ".join(str(n / 100) for n in range(1, 60))  # 59 values, each checked once
    load_sweep(write_sweep(tmp_path, f"{GRID}  model.dropout: [{values}]\n"))
    assert len(checked) <= 4
