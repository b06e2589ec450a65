"""No file is written through a symbolic link (issue 27): a link planted where bpnn creates,
appends to or replaces a file, dangling or pointing at a user's file, or where it puts a folder
of its own, is a one-line refusal, and the file it points at is never touched. A FIFO or device
where a file should be is refused too, without hanging. The mechanism is ``bpnn.outputs``
(``refuse_link``, ``open_regular``, ``appended``, ``own_folder``, ``atomic_file``,
``new_file``); the end-to-end cases go through the real CLI."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bpnn.errors import OutputError
from bpnn.outputs import appended, atomic_file, new_file, open_regular, own_folder

PRECIOUS = "the user's own file\n"


@pytest.fixture
def precious(tmp_path: Path) -> Iterator[Path]:
    """A user's file outside the folders bpnn writes to; unchanged after every test."""
    path = tmp_path / "elsewhere" / "precious.txt"
    path.parent.mkdir()
    path.write_text(PRECIOUS, encoding="utf-8")
    yield path
    assert path.read_text(encoding="utf-8") == PRECIOUS


def link(at: Path, to: Path) -> Path:
    at.parent.mkdir(parents=True, exist_ok=True)
    at.symlink_to(to)
    return at


def write_new(path: Path) -> None:
    with new_file(path, "--out") as handle:
        handle.write("new\n")


def write_atomic(path: Path) -> None:
    with atomic_file(path) as handle:
        handle.write("new\n")


def write_atomic_unique(path: Path) -> None:
    with atomic_file(path, binary=True, unique=True) as handle:
        handle.write(b"new\n")


def append(path: Path) -> None:
    with appended(path) as handle:
        handle.write("new\n")


WRITERS: dict[str, Callable[[Path], None]] = {
    "new_file": write_new,
    "atomic_file": write_atomic,
    "atomic_file(unique)": write_atomic_unique,
    "appended": append,
}


@pytest.mark.parametrize("writer", WRITERS.values(), ids=WRITERS.keys())
@pytest.mark.parametrize("dangling", [False, True], ids=["to a file", "dangling"])
def test_no_writer_goes_through_a_link(
    tmp_path: Path, precious: Path, writer: Callable[[Path], None], dangling: bool
) -> None:
    target = tmp_path / "elsewhere" / "not-yet.txt" if dangling else precious
    planted = link(tmp_path / "run" / "metrics.jsonl", target)
    with pytest.raises(OutputError, match="symbolic link") as error:
        writer(planted)
    assert str(planted) in str(error.value) and "\n" not in str(error.value)
    assert planted.is_symlink() and not (tmp_path / "elsewhere" / "not-yet.txt").exists()


def test_a_planted_temporary_is_not_written_through(tmp_path: Path, precious: Path) -> None:
    """``atomic_file``'s fixed temporary name (``.NAME.tmp``) may be planted too: it is removed
    (the link, not what it points at) and made afresh."""
    target = tmp_path / "run" / "config.yaml"
    link(tmp_path / "run" / ".config.yaml.tmp", precious)
    write_atomic(target)
    assert target.read_text(encoding="utf-8") == "new\n" and not target.is_symlink()
    assert not (tmp_path / "run" / ".config.yaml.tmp").exists()


def test_a_folder_of_bpnns_own_may_not_be_a_link(tmp_path: Path, precious: Path) -> None:
    planted = link(tmp_path / "run" / "plots", precious.parent)
    with pytest.raises(OutputError, match="symbolic link"):
        own_folder(planted)
    assert sorted(p.name for p in precious.parent.iterdir()) == ["precious.txt"]
    assert own_folder(tmp_path / "run" / "checkpoints").is_dir()


def test_a_fifo_where_a_file_should_be_is_refused_without_hanging(tmp_path: Path) -> None:
    fifo = tmp_path / "metrics.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(OutputError, match="not a regular file"):
        append(fifo)
    with pytest.raises(OutputError, match="not a regular file"):
        os.close(open_regular(fifo, os.O_RDONLY))
    assert fifo.exists()


# --- through the CLI ------------------------------------------------------------------------


def one_line(result, code: int = 2) -> str:
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_resume_refuses_a_lock_that_is_a_link(trained_run: Path, precious: Path, run_cli) -> None:
    link(trained_run / ".lock", precious)
    before = {p.name: p.read_bytes() for p in trained_run.iterdir() if p.is_file()}
    line = one_line(run_cli("resume", trained_run, "--epochs", 6, "-q"))
    assert ".lock" in line and "symbolic link" in line
    after = {p.name: p.read_bytes() for p in trained_run.iterdir() if p.is_file()}
    assert after == before


def test_a_fifo_lock_neither_hangs_runs_nor_is_removed_by_resume(
    trained_run: Path, run_cli
) -> None:
    os.mkfifo(trained_run / ".lock")
    listed = run_cli("runs", trained_run.parent, "--json", timeout=60)
    assert listed.returncode == 0, listed.stderr
    line = one_line(run_cli("resume", trained_run, "--epochs", 6, "-q", timeout=60))
    assert "not a regular file" in line
    assert (trained_run / ".lock").exists()


def test_resume_refuses_a_metrics_file_that_is_a_link(
    trained_run: Path, precious: Path, run_cli
) -> None:
    metrics = trained_run / "metrics.jsonl"
    metrics.unlink()
    link(metrics, precious)
    result = run_cli("resume", trained_run, "--epochs", 6, "-q")
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    assert "metrics.jsonl" in result.stderr
    assert metrics.is_symlink()


@pytest.mark.parametrize("dangling", [False, True], ids=["to a file", "dangling"])
def test_new_output_files_are_never_written_through_a_link(
    tmp_path: Path, trained_run: Path, precious: Path, run_cli, dangling: bool
) -> None:
    target = tmp_path / "elsewhere" / "not-yet" if dangling else precious
    checkpoint = trained_run / "checkpoints" / "best.npz"
    cases = {
        "plot": ("plot", trained_run, "--out"),
        "lr-find": ("lr-find", trained_run / "config.yaml", "--out"),
        "predict": ("predict", checkpoint, trained_run / "config.yaml", "--out"),
    }
    for name, args in cases.items():
        out = link(tmp_path / f"{name}.out", target)
        if name == "predict":
            samples = tmp_path / "samples.csv"
            samples.write_text("a,b,c,d\n1,2,3,4\n", encoding="utf-8")
            args = ("predict", checkpoint, samples, "--out")
        result = run_cli(*args, out)
        assert result.returncode == 2, (name, result.stderr)
        assert "Traceback" not in result.stderr, result.stderr
        assert out.is_symlink(), name
    assert not (tmp_path / "elsewhere" / "not-yet").exists()


@pytest.mark.parametrize("dangling", [False, True], ids=["to a file", "dangling"])
def test_eval_plots_are_never_written_through_a_link(
    tmp_path: Path, trained_run: Path, precious: Path, run_cli, dangling: bool
) -> None:
    target = tmp_path / "elsewhere" / "not-yet.png" if dangling else precious
    planted = link(tmp_path / "plots" / "confusion_matrix.png", target)
    checkpoint = trained_run / "checkpoints" / "best.npz"
    line = one_line(run_cli("eval", checkpoint, "--plots", tmp_path / "plots"))
    assert "confusion_matrix.png" in line
    assert planted.is_symlink() and not (tmp_path / "elsewhere" / "not-yet.png").exists()


def test_a_run_folder_that_is_a_link_is_refused(trained_run: Path, precious: Path, run_cli) -> None:
    """A leftover ``plots/`` that is a link: resume refuses to draw into it."""
    plots = trained_run / "plots"
    for picture in plots.iterdir():
        picture.unlink()
    plots.rmdir()
    link(plots, precious.parent)
    result = run_cli("resume", trained_run, "--epochs", 6, "-q")
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    assert "symbolic link" in result.stderr
    assert sorted(p.name for p in precious.parent.iterdir()) == ["precious.txt"]
