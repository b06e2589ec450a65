"""A reader that goes away changes no run (``bpnn.streams``).

``bpnn train ... | head -1``: the pipe is closed after one line, and every later write to it
fails. Training must go on, write every checkpoint, ``summary.json`` and the plots, and exit
with the run's code; a command whose only job is its output (``predict``) ends quietly with
141. Each case is a real pipeline: ``python -m bpnn`` in a subprocess whose stdout (or
stderr, or both) is a pipe the test closes, after reading a line or before reading anything.
Standard input as ``predict``'s file (``-``) and messages printed as written are here too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support import REPO

EPOCHS = 3

#: a run of a second: 200 XOR points, a 2 -> 8 -> 2 network
TINY = f"""\
name: tiny
seed: 0
data: {{source: xor, options: {{n_samples: 200}}, test_fraction: 0.2, val_fraction: 0.1}}
model: {{hidden: [8], activation: tanh}}
train: {{epochs: {EPOCHS}, batch_size: 32}}
"""

#: what stderr must never show, whatever happened to the streams
CRASH_SIGNS = ("Traceback", "Exception ignored", "BrokenPipeError", "error:")


def start(*args: Any, cwd: Path, stdout: Any, stderr: Any, stdin: Any = None) -> subprocess.Popen:
    """``python -m bpnn ARGS`` in ``cwd`` with the worktree's bpnn, not waited for."""
    env = {k: v for k, v in os.environ.items() if k != "BPNN_DEBUG"}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.Popen(
        [sys.executable, "-m", "bpnn", *map(str, args)],
        cwd=cwd,
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        env=env,
    )


def finish(process: subprocess.Popen, close: Any, read_a_line: bool) -> int:
    """Read one line of ``close`` (or nothing), close it as ``head -1`` does, wait for bpnn."""
    if read_a_line:
        assert close.readline()
    close.close()
    return process.wait(timeout=120)


def assert_complete_run(run: Path) -> dict[str, Any]:
    """Every file of a finished run is there; returns its summary."""
    summary = json.loads((run / "summary.json").read_text())
    assert summary["stop_reason"] == "completed", summary
    assert summary["epochs_run"] == EPOCHS
    rows = (run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(row)["epoch"] for row in rows] == list(range(1, EPOCHS + 1))
    assert (run / "config.yaml").is_file()
    assert (run / "checkpoints" / "best.npz").is_file()
    assert (run / "checkpoints" / "last.npz").is_file()
    assert sorted(p.name for p in (run / "plots").glob("*.png"))
    assert not (run / ".lock").exists() and not list(run.rglob(".*.tmp"))
    return summary


@pytest.fixture()
def config(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


# --- training goes on ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "merged", "read_a_line"),
    [
        ([], True, True),  # bpnn train CONFIG 2>&1 | head -1
        (["--quiet"], True, True),  # bpnn train CONFIG --quiet 2>&1 | head -1
        ([], False, False),  # bpnn train CONFIG | true
        (["--json"], False, False),  # bpnn train CONFIG --json | true
    ],
    ids=["2>&1 | head -1", "--quiet 2>&1 | head -1", "| true", "--json | true"],
)
def test_a_closed_pipe_never_changes_a_run(
    tmp_path: Path, config: Path, flags: list[str], merged: bool, read_a_line: bool
) -> None:
    run = tmp_path / "run"
    errors = (tmp_path / "stderr.txt").open("w+b")
    process = start(
        "train",
        config,
        "--out",
        run,
        *flags,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merged else errors,
    )
    code = finish(process, process.stdout, read_a_line)
    errors.seek(0)
    stderr = errors.read().decode()
    assert code == 0, stderr
    assert_complete_run(run)
    assert not any(sign in stderr for sign in CRASH_SIGNS), stderr
    if not merged:
        assert "epoch 1/3" in stderr or "--quiet" in flags  # progress goes on where it can


def test_a_closed_stderr_keeps_the_summary_on_stdout(tmp_path: Path, config: Path) -> None:
    run = tmp_path / "run"
    process = start(
        "train", config, "--out", run, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    process.stderr.close()  # bpnn train CONFIG 2>&- style: nobody reads the progress
    stdout = process.stdout.read().decode()
    assert process.wait(timeout=120) == 0, stdout
    summary = assert_complete_run(run)
    assert "stopped: completed" in stdout and f"run directory: {run}" in stdout
    assert f"test_accuracy {summary['test_accuracy']:.4f}" in stdout


def test_a_closed_pipe_never_changes_a_resumed_run(tmp_path: Path, config: Path) -> None:
    run = tmp_path / "run"
    first = start(
        "train",
        config,
        "--out",
        run,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    assert first.wait(timeout=120) == 0
    (run / "summary.json").unlink()  # as if killed after its last epoch: resume finishes it
    errors = (tmp_path / "stderr.txt").open("w+b")
    process = start("resume", run, cwd=tmp_path, stdout=subprocess.PIPE, stderr=errors)
    code = finish(process, process.stdout, read_a_line=False)
    errors.seek(0)
    stderr = errors.read().decode()
    assert code == 0, stderr
    assert_complete_run(run)
    assert not any(sign in stderr for sign in CRASH_SIGNS), stderr


def test_a_terminal_that_closes_under_nohup_never_changes_a_run(tmp_path: Path) -> None:
    import pty
    import select
    import signal

    config = tmp_path / "long.yaml"
    config.write_text(TINY.replace(f"epochs: {EPOCHS}", "epochs: 60"))
    run = tmp_path / "run"
    terminal, screen = pty.openpty()  # a terminal: bpnn draws its live rich progress on it
    env = {**os.environ, "PYTHONPATH": str(REPO), "TERM": "xterm", "COLUMNS": "120"}
    env.pop("BPNN_DEBUG", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "bpnn", "train", str(config), "--out", str(run)],
        cwd=tmp_path,
        stdin=screen,
        stdout=screen,
        stderr=screen,
        env=env,
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN),  # as nohup does
    )
    os.close(screen)
    shown = b""
    while b"epoch 2/60" not in shown:  # training has begun: the terminal window is closed
        assert select.select([terminal], [], [], 120)[0], shown
        shown += os.read(terminal, 65536)
    os.close(terminal)  # every later write to the terminal fails with EIO
    assert process.wait(timeout=300) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["stop_reason"] == "completed" and summary["epochs_run"] == 60


# --- a command that only prints ends quietly -------------------------------------------------


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained tiny XOR model (in this process: a second)."""
    from bpnn.config import load_config
    from bpnn.run import run_training

    folder = tmp_path_factory.mktemp("model")
    (folder / "tiny.yaml").write_text(TINY)
    run, _ = run_training(load_config(folder / "tiny.yaml"), folder / "run")
    return run / "checkpoints" / "best.npz"


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """5,000 XOR points and an extra column: predictions of about 130 KB, twice what a pipe
    holds, so a reader that stops after one line is still gone when bpnn writes the rest."""
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("samples") / "points.csv"
    rows = "".join(
        f"{a:.6f},{b:.6f},{i}\n" for i, (a, b) in enumerate(rng.uniform(-1, 1, (5000, 2)))
    )
    path.write_text("x0,x1,point\n" + rows)
    return path


def test_a_closed_stdout_ends_predict_quietly_with_141(
    tmp_path: Path, checkpoint: Path, samples: Path
) -> None:
    process = start(
        "predict",
        checkpoint,
        samples,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    code = finish(process, process.stdout, read_a_line=True)  # bpnn predict ... | head -1
    stderr = process.stderr.read().decode()
    assert code == 141, stderr
    assert not any(sign in stderr for sign in CRASH_SIGNS), stderr


def test_predict_out_is_whole_when_the_messages_pipe_is_closed(
    tmp_path: Path, checkpoint: Path, samples: Path
) -> None:
    out = tmp_path / "predictions.csv"
    process = start(
        "predict",
        checkpoint,
        samples,
        "--out",
        out,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    # bpnn predict ... --out FILE 2>&1 | true: the first message (the unused column) finds
    # nobody to read it; the predictions go to FILE, whole, and nothing is wrong
    code = finish(process, process.stdout, read_a_line=False)
    assert code == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "label,p_0,p_1" and len(lines) == 5001


# --- standard input as predict's file --------------------------------------------------------


def run_bpnn(*args: Any, cwd: Path, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    process = start(
        *args, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    stdout, stderr = process.communicate(stdin, timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def test_predict_reads_csv_rows_from_standard_input(
    tmp_path: Path, checkpoint: Path, samples: Path
) -> None:
    rows = samples.read_bytes()
    for fmt in ("csv", "jsonl"):
        expected = run_bpnn(
            "predict", checkpoint, samples, "--id", "point", "--format", fmt, cwd=tmp_path
        )
        piped = run_bpnn(
            "predict", checkpoint, "-", "--id", "point", "--format", fmt, cwd=tmp_path, stdin=rows
        )
        assert piped.returncode == 0, piped.stderr
        assert piped.stdout == expected.stdout and len(piped.stdout.splitlines()) >= 5000
        assert piped.stderr == b""
    without_id = run_bpnn("predict", checkpoint, "-", cwd=tmp_path, stdin=rows)
    assert without_id.returncode == 0, without_id.stderr
    assert without_id.stderr.decode() == (
        "<stdin>: ignoring column(s) the model does not use: point\n"
    )


def test_a_bad_standard_input_is_one_line_naming_stdin(tmp_path: Path, checkpoint: Path) -> None:
    result = run_bpnn("predict", checkpoint, "-", cwd=tmp_path, stdin=b"x0,y\n0.5,1\n")
    stderr = result.stderr.decode()
    assert result.returncode == 2, stderr
    assert stderr.startswith("error: <stdin>: missing column(s)") and "x1" in stderr, stderr
    assert len(stderr.splitlines()) == 1 and "bpnn-stdin" not in stderr


@pytest.mark.parametrize("problem", ["existing --out", "unknown --format"])
def test_predict_refuses_a_bad_request_before_it_reads_standard_input(
    tmp_path: Path, checkpoint: Path, problem: str
) -> None:
    """Standard input is left unread (here: a pipe that never ends, which bpnn would wait on
    for ever) when the table could not be written anyway."""
    out = tmp_path / "kept.csv"
    out.write_text("the user's file\n", encoding="utf-8")
    args = ["--out", out] if problem == "existing --out" else ["--format", "xml"]
    process = start(
        "predict",
        checkpoint,
        "-",
        *args,
        cwd=tmp_path,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        process.wait(timeout=60)  # its stdin stays open: never at its end
    finally:
        process.kill()
        assert process.stdin is not None and process.stderr is not None
        process.stdin.close()
    message = process.stderr.read().decode()
    assert process.returncode == 2, message
    assert len(message.splitlines()) == 1 and message.startswith("error: "), message
    assert ("already exists" in message) if problem == "existing --out" else ("xml" in message)
    assert out.read_text(encoding="utf-8") == "the user's file\n"


# --- messages are printed as written ---------------------------------------------------------


def test_a_message_with_brackets_is_printed_as_written(
    tmp_path: Path, checkpoint: Path, samples: Path
) -> None:
    table = tmp_path / "notes.csv"
    table.write_text(samples.read_text().replace(",point\n", ",[notes]\n", 1))
    result = run_bpnn("predict", checkpoint, table, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "ignoring column(s) the model does not use: [notes]" in result.stderr.decode()


def test_lr_find_install_advice_keeps_its_brackets(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bpnn.cli.lr_find import draw_lr_curve
    from bpnn.cli.output import Output

    monkeypatch.setitem(sys.modules, "plotext", None)  # the extra is not installed
    draw_lr_curve(Output(), object())
    assert "pip install 'bpnn[plot]'" in capsys.readouterr().err


# --- the guard itself ------------------------------------------------------------------------


def test_a_full_disk_is_still_an_error_not_a_lost_reader() -> None:
    from bpnn.streams import GuardedStream

    with open("/dev/full", "w") as full:  # every write: ENOSPC
        stream = GuardedStream(full)
        with pytest.raises(OSError, match="No space left"):
            stream.write("x" * 10_000)
            stream.flush()
        assert not stream.lost


def test_a_lost_stream_sends_its_descriptor_to_devnull() -> None:
    from bpnn.streams import GuardedStream

    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first write
    with open(write_end, "w") as pipe:
        stream = GuardedStream(pipe)
        assert stream.write("line\n" * 5000) == 25_000
        stream.flush()
        assert stream.lost
        assert os.path.samestat(os.fstat(write_end), os.stat(os.devnull))
        os.write(write_end, b"anyone may write now")  # no EPIPE any more


@pytest.mark.parametrize("encoding", ["utf-8", "ascii", "latin-1"])
def test_a_character_the_stream_cannot_encode_is_written_as_its_escape(
    tmp_path: Path, encoding: str
) -> None:
    """A lone surrogate (a ``\\ud800`` escape in a JSON file bpnn read) or a character a
    narrow terminal charset lacks is shown as its escape, not a ``UnicodeEncodeError``."""
    from bpnn.streams import GuardedStream

    path = tmp_path / "out.txt"
    with open(path, "w", encoding=encoding) as handle:
        stream = GuardedStream(handle)
        assert stream.write("stop: \ud800 \u00e9 \u2713\n") == 12
        stream.flush()
    expected = "stop: \ud800 \u00e9 \u2713\n".encode(encoding, "backslashreplace")
    assert path.read_bytes() == expected  # only what cannot be written is escaped
    assert expected.startswith(b"stop: \\ud800 ")


def test_an_os_error_while_standard_input_is_read_names_stdin_not_its_copy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import errno
    import io

    from bpnn.streams import STDIN_NAME, stdin_copy

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"a,b\n1,2\n")))
    with pytest.raises(OSError) as raised, stdin_copy("stdin.csv") as copy:
        assert copy.path.read_bytes() == b"a,b\n1,2\n"
        raise OSError(errno.EACCES, "Permission denied", str(copy.path))
    assert raised.value.filename == STDIN_NAME
