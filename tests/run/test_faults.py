"""The bad-input battery of issue #15: every fault a hostile but fair user can cause is answered by
one line on stderr and an exit code of ``bpnn.errors.EXIT_CODES``, never a traceback, and loses
nothing the user had.

Each case drives the real command line in a subprocess (``python -m bpnn``; the many config
cases also in this process, ``run_in_process``), so exit codes,
stderr, resource limits and signals are the real ones. The subprocesses run in a temporary
working directory with the worktree on ``PYTHONPATH``, so that no run ever lands in the repo.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import json
import os
import re
import resource
import shutil
import signal
import socketserver
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bpnn.errors import (
    EXIT_CODES,
    CheckpointError,
    ConfigError,
    DataError,
    MemoryLimitError,
    OutputError,
    ResumeError,
    TrainingError,
)
from bpnn.streams import STDOUT_CLOSED
from tests.support import REPO, cli_environment, run_cli, run_in_process

#: a small digits run: a 64 -> 16 -> 10 network, a few seconds
SMALL = """\
name: small
seed: 0
data: {source: digits}
model: {hidden: [16]}
train: {epochs: 2, batch_size: 64}
"""
#: the same with hidden [128]: checkpoints of about 120 KB
WIDE = SMALL.replace("[16]", "[128]").replace("name: small", "name: wide")


def bpnn(
    *args: Any,
    cwd: Path,
    timeout: float = 180,
    preexec_fn: Callable[[], None] | None = None,
    **env: str,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m bpnn ARGS`` in ``cwd`` and wait for it."""
    return subprocess.run(
        [sys.executable, "-m", "bpnn", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=preexec_fn,
        env=cli_environment(BPNN_DATA_DIR=str(cwd / "bpnn-data"), **env),
    )


def start_bpnn(*args: Any, cwd: Path) -> subprocess.Popen[str]:
    """Start ``python -m bpnn ARGS`` in ``cwd`` without waiting."""
    return subprocess.Popen(
        [sys.executable, "-m", "bpnn", *map(str, args)],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_environment(BPNN_DATA_DIR=str(cwd / "bpnn-data")),
    )


#: what bpnn says on stderr while it works, even with --quiet: where the run goes, downloads
PROGRESS = ("run directory: ", "resuming ", "MNIST: ", "downloading ", "http://", "saved ")
PROGRESS += ("train split: ", "val split: ", "test split: ")  # a new run's class counts


def assert_one_line_error(
    result: subprocess.CompletedProcess[str], code: int, *fragments: str, start: str = "error:"
) -> str:
    """Exit ``code``; stderr has exactly one line about the failure, its last, starting with
    ``start`` and holding every fragment; any line before it is progress (``PROGRESS``); no
    traceback, no warning."""
    output = f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert "Traceback" not in result.stderr + result.stdout, output
    assert result.returncode == code, output
    lines = result.stderr.splitlines()
    assert lines and lines[-1].startswith(start) and lines[-1].strip() != "error:", output
    assert all(line.startswith(PROGRESS) for line in lines[:-1]), output
    for fragment in fragments:
        assert fragment.lower() in lines[-1].lower(), (fragment, output)
    return lines[-1]


def tree_hash(path: Path) -> dict[str, str]:
    """Every file under ``path`` (names included) with the SHA-256 of its bytes."""
    if not path.exists():
        return {}
    if path.is_file():
        return {path.name: hashlib.sha256(path.read_bytes()).hexdigest()}
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "/"
        for p in sorted(path.rglob("*"))
    }


def write(folder: Path, text: str, name: str = "config.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def file_limit(limit: int) -> Callable[[], None]:
    """A ``preexec_fn`` that limits every file the child writes to ``limit`` bytes (EFBIG)."""

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished small digits run, to evaluate and predict with (never modified)."""
    folder = tmp_path_factory.mktemp("trained")
    config = write(folder, SMALL)
    result = bpnn("train", config, "--out", folder / "run", "-q", cwd=folder)
    assert result.returncode == 0, result.stderr
    return folder / "run"


def npz_config(folder: Path, X: np.ndarray, y: np.ndarray, extra: str = "") -> Path:
    np.savez(folder / "data.npz", X=X, y=y)
    return write(
        folder,
        f"name: npz\ndata: {{source: npz, path: data.npz}}\nmodel: {{hidden: [4]}}\n"
        f"train: {{epochs: 1}}\n{extra}",
    )


# --- the operating system refuses a write: exit 3 --------------------------------------------


@pytest.mark.slow
def test_a_checkpoint_beyond_the_file_size_limit_exits_3_and_the_run_resumes(
    tmp_path: Path,
) -> None:
    """Epoch 1 trains without a limit; resumed under RLIMIT_FSIZE = 64 KB, the checkpoint of
    epoch 2 (about 120 KB) fails: one line, exit 3; the run directory keeps epoch 1 intact and a
    resume without the limit finishes it."""
    config = write(tmp_path, WIDE.replace("epochs: 2", "epochs: 1"))
    run = tmp_path / "run"
    assert bpnn("train", config, "--out", run, "-q", cwd=tmp_path).returncode == 0
    kept = {k: v for k, v in tree_hash(run).items() if k.startswith("checkpoints")}

    limited = bpnn(
        "resume", run, "--epochs", 3, "-q", cwd=tmp_path, preexec_fn=file_limit(64 << 10)
    )
    assert_one_line_error(limited, 3, "file too large", str(run / "checkpoints"))
    after = tree_hash(run)
    assert {k: v for k, v in after.items() if k.startswith("checkpoints")} == kept
    assert not [name for name in after if name.endswith(".tmp")]

    resumed = bpnn("resume", run, "--epochs", 3, "-q", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    epochs = [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").open()]
    assert epochs == [1, 2, 3]


@pytest.mark.slow
def test_a_first_checkpoint_beyond_the_file_size_limit_exits_3_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    config = write(tmp_path, WIDE)
    run = tmp_path / "run"
    result = bpnn(
        "train", config, "--out", run, "-q", cwd=tmp_path, preexec_fn=file_limit(64 << 10)
    )
    assert_one_line_error(result, 3, "file too large", ".npz")
    assert not run.exists()
    again = bpnn("resume", run, cwd=tmp_path)
    assert_one_line_error(again, 2, "no such run directory")


@pytest.mark.slow
def test_plots_beyond_the_file_size_limit_exit_3_and_the_run_is_kept(tmp_path: Path) -> None:
    """A 64 -> 8 -> 10 network's checkpoints (about 16 KB) fit under a 20 KB limit, its plots
    (about 27 KB) do not: the training and its summary are kept, ``bpnn plot`` draws them later."""
    config = write(tmp_path, SMALL.replace("[16]", "[8]"))
    run = tmp_path / "run"
    result = bpnn(
        "train", config, "--out", run, "-q", cwd=tmp_path, preexec_fn=file_limit(20 << 10)
    )
    assert_one_line_error(result, 3, "file too large", str(run / "plots"))
    assert (run / "checkpoints" / "best.npz").stat().st_size < 20 << 10
    summary = json.loads((run / "summary.json").read_text())
    assert summary["stop_reason"] == "completed"
    redrawn = bpnn("plot", run, cwd=tmp_path)
    assert redrawn.returncode == 0, redrawn.stderr
    assert {"accuracy.png", "loss.png"} <= {p.name for p in (run / "plots").glob("*.png")}


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 200 KB tmpfs (root only): a real disk that fills up."""
    yield from _tmpfs(tmp_path, "200k")


@pytest.fixture
def roomy_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs: room for a run once its ballast is gone."""
    yield from _tmpfs(tmp_path, "2m")


def _tmpfs(tmp_path: Path, size: str) -> Iterator[Path]:
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_a_full_disk_exits_3_naming_the_file_and_leaves_nothing(
    tmp_path: Path, small_tmpfs: Path
) -> None:
    config = write(tmp_path, WIDE.replace("[128]", "[256]"))  # a 240 KB checkpoint
    (small_tmpfs / "keep.txt").write_text("the user's file\n")
    before = tree_hash(small_tmpfs)
    result = bpnn("train", config, "--out", small_tmpfs / "run", "-q", cwd=tmp_path)
    assert_one_line_error(
        result, 3, "no space left on device", str(small_tmpfs / "run" / "checkpoints")
    )
    assert tree_hash(small_tmpfs) == before


@pytest.mark.slow
def test_a_disk_that_fills_during_resume_exits_3_and_the_run_resumes_elsewhere(
    tmp_path: Path, roomy_tmpfs: Path
) -> None:
    """One epoch of the small network is on the disk; a file then fills it so that the next
    checkpoint does not fit: exit 3, epoch 1 kept, and once there is room the run resumes."""
    small_tmpfs = roomy_tmpfs
    config = write(tmp_path, SMALL.replace("epochs: 2", "epochs: 1"))
    run = small_tmpfs / "run"
    assert bpnn("train", config, "--out", run, "-q", cwd=tmp_path).returncode == 0
    free = os.statvfs(small_tmpfs).f_bavail * os.statvfs(small_tmpfs).f_frsize
    size = (run / "checkpoints" / "last.npz").stat().st_size
    (small_tmpfs / "ballast").write_bytes(b"\0" * max(free - size // 2, 0))
    kept = tree_hash(run / "checkpoints")

    full = bpnn("resume", run, "--epochs", 2, "-q", cwd=tmp_path)
    assert_one_line_error(full, 3, "no space left on device")
    assert tree_hash(run / "checkpoints") == kept

    (small_tmpfs / "ballast").unlink()
    resumed = bpnn("resume", run, "--epochs", 2, "-q", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr


def _out_under_a_file(tmp: Path) -> tuple[Path, str]:
    (tmp / "a-file").write_text("x")
    return tmp / "a-file" / "run", "not a directory"


def _out_through_a_dangling_symlink(tmp: Path) -> tuple[Path, str]:
    (tmp / "link").symlink_to(tmp / "nowhere" / "at-all")
    return tmp / "link", "link"


def _out_in_proc(tmp: Path) -> tuple[Path, str]:
    return Path("/proc/bpnn-battery/run"), "/proc/bpnn-battery"


def _out_part_too_long(tmp: Path) -> tuple[Path, str]:
    return tmp / ("x" * 300) / "run", "file name too long"


@pytest.mark.parametrize(
    "make_out",
    [_out_under_a_file, _out_through_a_dangling_symlink, _out_in_proc, _out_part_too_long],
    ids=["under-a-file", "dangling-symlink", "in-proc", "part-over-255-bytes"],
)
def test_an_impossible_out_is_one_line(
    tmp_path: Path, make_out: Callable[[Path], tuple[Path, str]]
) -> None:
    config = write(tmp_path, SMALL)
    out, fragment = make_out(tmp_path)
    before = tree_hash(tmp_path)
    result = bpnn("train", config, "--out", out, "-q", cwd=tmp_path)
    line = assert_one_line_error(result, result.returncode, fragment)
    assert result.returncode in (2, 3), line
    assert tree_hash(tmp_path) == before


def test_a_name_over_255_bytes_is_refused(tmp_path: Path) -> None:
    config = write(tmp_path, SMALL.replace("name: small", "name: " + "n" * 300))
    check = bpnn("config", "check", config, cwd=tmp_path)
    train = bpnn("train", config, "-q", cwd=tmp_path)
    assert_one_line_error(check, 2, "name")
    assert_one_line_error(train, 2, "name")
    assert not (tmp_path / "runs").exists()


def test_predict_out_into_a_missing_folder_exits_3(trained: Path, tmp_path: Path) -> None:
    np.savez(tmp_path / "inputs.npz", X=np.zeros((3, 64)))
    out = tmp_path / "missing" / "predictions.csv"
    result = bpnn(
        "predict",
        trained / "checkpoints" / "best.npz",
        tmp_path / "inputs.npz",
        "--out",
        out,
        cwd=tmp_path,
    )
    assert_one_line_error(result, 3, "no such file or directory", str(out))


@pytest.mark.parametrize(
    ("command", "target"),
    [
        (("predict", "{best}", "{inputs}", "--out", "{out}/predictions.csv"), "predictions.csv"),
        (("explain", "{config}", "--markdown", "{out}/explain.md"), "explain.md"),
        (("export", "{best}", "--format", "sklearn", "--out", "{out}/model.skops"), "model.skops"),
        (("eval", "{best}", "--plots", "{out}/plots"), "confusion_matrix.png"),
    ],
    ids=["predict", "explain", "export", "eval"],
)
def test_every_new_file_beyond_the_file_size_limit_exits_3_and_is_removed(
    trained: Path, tmp_path: Path, command: tuple[str, ...], target: str
) -> None:
    """Every file a user names is written one way (``bpnn.outputs.new_file``): a write the
    operating system refuses (here a 200-byte file-size limit, as a full disk would) is exit 3
    naming the file, and the half-written file is gone."""
    if "export" in command:
        pytest.importorskip("skops")
    np.savez(tmp_path / "inputs.npz", X=np.zeros((50, 64)))
    out = tmp_path / "out"
    out.mkdir()
    fields = {
        "best": trained / "checkpoints" / "best.npz",
        "config": trained / "config.yaml",
        "inputs": tmp_path / "inputs.npz",
    }
    arguments = [part.format(out=out, **fields) for part in command]
    result = bpnn(*arguments, cwd=tmp_path, preexec_fn=file_limit(200))
    assert_one_line_error(result, 3, "file too large", target)
    assert [p.name for p in out.rglob("*") if p.is_file()] == []


# --- not enough memory: exit 4 ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "fragment"),
    [
        ("model: {hidden: [100000, 100000]}", "model.hidden"),
        ("model: {hidden: [100000000000000000000]}", "model.hidden"),
        ("data: {source: xor, options: {n_samples: 10000000000}}", "data 'xor'"),
        ("train: {max_memory: 1KiB}", "train.max_memory"),
    ],
    ids=["hidden-37GiB", "hidden-1e20", "n_samples-1e10", "max_memory"],
)
def test_a_run_too_large_for_memory_is_refused_before_allocating(
    tmp_path: Path, setting: str, fragment: str
) -> None:
    config = write(tmp_path, f"name: big\n{setting}\n")
    for command in (["config", "check", config], ["train", config, "-q"]):
        started = time.monotonic()
        result = bpnn(*command, cwd=tmp_path)
        line = assert_one_line_error(result, 4, fragment, "needs about")
        assert time.monotonic() - started < 60
        assert re.search(r"\d (KiB|MiB|GiB|TiB|B)\b", line), line
    assert not (tmp_path / "runs").exists()


def test_a_batch_size_beyond_the_data_is_not_refused_for_memory(tmp_path: Path) -> None:
    """A batch of 10^8 samples would need 18 GiB, but the batch is never larger than the data:
    the memory estimate counts the batch there is."""
    config = write(tmp_path, SMALL.replace("batch_size: 64", "batch_size: 100000000"))
    result = bpnn("train", config, "--out", tmp_path / "run", "-q", cwd=tmp_path)
    assert result.returncode == 0, result.stderr


def test_initial_weights_beyond_float32_are_one_line(tmp_path: Path) -> None:
    config = write(tmp_path, SMALL + "model: {hidden: [8], init: {name: normal, std: 1.0e+300}}\n")
    config.write_text(config.read_text().replace("model: {hidden: [16]}\n", ""))
    result = bpnn("train", config, "--out", tmp_path / "run", "-q", cwd=tmp_path)
    assert_one_line_error(result, 2, "model.init", "float32")
    assert not (tmp_path / "run").exists()


def test_a_gzip_bomb_as_predict_input_is_one_line(trained: Path, tmp_path: Path) -> None:
    """An IDX header announcing 10 images of 8x8, followed by 200 MB of zeros, gzipped."""
    bomb = tmp_path / "bomb-idx3-ubyte.gz"
    with gzip.open(bomb, "wb", compresslevel=9) as handle:
        handle.write(struct.pack(">BBBB3I", 0, 0, 0x08, 3, 10, 8, 8))
        handle.write(bytes(640))
        for _ in range(200):
            handle.write(bytes(1 << 20))
    assert bomb.stat().st_size < 1 << 20
    result = bpnn("predict", trained / "checkpoints" / "best.npz", bomb, cwd=tmp_path)
    assert_one_line_error(result, 2, str(bomb))


# --- degenerate data: exit 2, nothing lost ---------------------------------------------------


def _idx(path: Path, array: np.ndarray) -> None:
    codes = {np.dtype(np.uint8): 0x08}
    header = struct.pack(">BBBB", 0, 0, codes[array.dtype], array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.tobytes())


def _npz_zero_rows(tmp: Path) -> tuple[Path, str]:
    return npz_config(tmp, np.zeros((0, 4)), np.zeros(0, dtype=int)), "no samples"


def _npz_zero_columns(tmp: Path) -> tuple[Path, str]:
    return npz_config(tmp, np.zeros((20, 0)), np.arange(20) % 2), "no feature columns"


def _idx_zero_rows(tmp: Path) -> tuple[Path, str]:
    _idx(tmp / "images.idx", np.zeros((0, 8, 8), dtype=np.uint8))
    _idx(tmp / "labels.idx", np.zeros(0, dtype=np.uint8))
    config = write(
        tmp,
        "name: idx\ndata: {source: idx, path: images.idx, labels_path: labels.idx}\n"
        "train: {epochs: 1}\n",
    )
    return config, "no samples"


def _class_weights_wrong_length(tmp: Path) -> tuple[Path, str]:
    return (
        write(tmp, SMALL + "loss: {name: cross_entropy, class_weights: [1.0, 2.0]}\n"),
        "class_weights",
    )


def _feature_beyond_float32(tmp: Path) -> tuple[Path, str]:
    X = np.random.default_rng(0).normal(size=(40, 3))
    X[5, 1] = 1e300
    return npz_config(tmp, X, np.arange(40) % 2), "float32"


@pytest.mark.parametrize(
    "make",
    [
        _npz_zero_rows,
        _npz_zero_columns,
        _idx_zero_rows,
        _class_weights_wrong_length,
        _feature_beyond_float32,
    ],
    ids=["npz-zero-rows", "npz-zero-columns", "idx-zero-rows", "class-weights", "1e300"],
)
def test_degenerate_data_is_one_line_and_changes_nothing(
    tmp_path: Path, make: Callable[[Path], tuple[Path, str]]
) -> None:
    config, fragment = make(tmp_path)
    before = tree_hash(tmp_path)
    result = bpnn("train", config, "-q", cwd=tmp_path)
    assert_one_line_error(result, 2, fragment)
    assert tree_hash(tmp_path) == before


def test_a_float64_run_on_huge_features_writes_strict_json(tmp_path: Path) -> None:
    """In float64 1e300 is a number: the run either refuses it in one line or writes a
    summary.json and metrics.jsonl that strict JSON parsers read (null, never NaN)."""
    X = np.random.default_rng(0).normal(size=(40, 3))
    X[5, 1] = 1e300
    config = npz_config(tmp_path, X, np.arange(40) % 2, "seed: 0\n")
    config.write_text(config.read_text().replace("epochs: 1", "epochs: 1, dtype: float64"))
    result = bpnn("train", config, "--out", tmp_path / "run", "-q", cwd=tmp_path)
    if result.returncode != 0:
        assert_one_line_error(result, result.returncode)
        assert result.returncode in (1, 2)
        return

    def strict(text: str) -> Any:
        return json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in JSON"))

    strict((tmp_path / "run" / "summary.json").read_text())
    for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines():
        strict(line)


def test_predict_of_features_beyond_float32_is_one_line(trained: Path, tmp_path: Path) -> None:
    X = np.zeros((3, 64))
    X[1, 7] = 1e300
    np.savez(tmp_path / "huge.npz", X=X)
    result = bpnn(
        "predict", trained / "checkpoints" / "best.npz", tmp_path / "huge.npz", cwd=tmp_path
    )
    assert_one_line_error(result, 2, "huge.npz", "float32")
    assert "nan" not in result.stdout.lower()


@pytest.mark.parametrize(
    ("X", "fragment"),
    [(np.zeros((0, 64)), "no samples"), (np.zeros((3, 0)), "features")],
    ids=["zero-rows", "zero-columns"],
)
def test_predict_of_empty_inputs_is_one_line(
    trained: Path, tmp_path: Path, X: np.ndarray, fragment: str
) -> None:
    np.savez(tmp_path / "inputs.npz", X=X)
    result = bpnn(
        "predict", trained / "checkpoints" / "best.npz", tmp_path / "inputs.npz", cwd=tmp_path
    )
    assert_one_line_error(result, 2, fragment)


def _tamper(source: Path, target: Path, key: str, value: np.ndarray) -> None:
    with np.load(source, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    arrays[key] = value
    np.savez(target, **arrays)


@pytest.mark.parametrize(
    "value",
    [np.zeros(3), np.full(64, np.nan), np.zeros(64), np.full(64, np.inf)],
    ids=["wrong-shape", "nan", "zero-factor", "inf"],
)
def test_a_tampered_scaling_in_a_checkpoint_is_one_line(
    trained: Path, tmp_path: Path, value: np.ndarray
) -> None:
    tampered = tmp_path / "tampered.npz"
    source = trained / "checkpoints" / "best.npz"
    _tamper(source, tampered, "scaling/input_factor", value)
    np.savez(tmp_path / "inputs.npz", X=np.ones((3, 64)))
    for command in (["eval", tampered], ["predict", tampered, tmp_path / "inputs.npz"]):
        assert_one_line_error(bpnn(*command, cwd=tmp_path), 2, str(tampered))


def _write_entries(path: Path, entries: dict[str, bytes]) -> None:
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)


def _header_of_text(text: bytes) -> bytes:
    """An ``.npy`` file (format 1.0) whose header is ``text``, which is no Python literal."""
    header = text + b" " * (63 - (10 + len(text)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header


@pytest.mark.parametrize("damage", ["no-classes", "header-not-a-literal"])
def test_a_checkpoint_whose_arrays_make_no_network_is_one_line(
    trained: Path, tmp_path: Path, damage: str
) -> None:
    """Found by the fuzz tests of issue 27 (``tests/test_fuzz_files.py``): a list of no classes
    (no outputs), and an entry header that numpy's tokenizer cannot read, were tracebacks."""
    tampered = tmp_path / "tampered.npz"
    source = trained / "checkpoints" / "best.npz"
    if damage == "no-classes":
        with np.load(source, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
        arrays["classes"] = np.zeros(0, np.int64)  # no classes: a network of no outputs
        np.savez(tampered, **arrays)
    else:
        import zipfile

        with zipfile.ZipFile(source) as archive:
            entries = {name: archive.read(name) for name in archive.namelist()}
        entries["classes.npy"] = _header_of_text(b")")
        _write_entries(tampered, entries)
    np.savez(tmp_path / "inputs.npz", X=np.ones((3, 64)))
    for command in (["eval", tampered], ["predict", tampered, tmp_path / "inputs.npz"]):
        assert_one_line_error(bpnn(*command, cwd=tmp_path), 2, str(tampered))


@pytest.mark.parametrize(
    ("damage", "fragment"),
    [
        ("optimizer-state", "training state"),
        ("random-stream", "training state"),
        ("callback-state", "the checkpointer state: 'best_epoch' is 'two'"),
    ],
)
def test_a_resume_of_a_tampered_training_state_is_one_line_and_changes_nothing(
    trained: Path, tmp_path: Path, damage: str, fragment: str
) -> None:
    """Found by ``tests/test_fuzz.py``: the optimizer's state, the random streams and the
    callbacks' states in ``last.npz`` were restored after the run directory had been written,
    and a tampered one was a traceback there."""
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    last = run / "checkpoints" / "last.npz"
    with np.load(last, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    if damage == "optimizer-state":
        arrays["optimizer/iterations"] = np.array(3.5)  # a count that is not a whole number
    else:
        meta = json.loads(str(arrays["meta"]))
        if damage == "random-stream":
            meta["trainer"]["shuffle_rng"] = {"bit_generator": "PCG64", "state": "tampered"}
        else:
            meta["trainer"]["callbacks"]["checkpointer"]["best_epoch"] = "two"
        arrays["meta"] = np.array(json.dumps(meta))
    np.savez(last, **arrays)
    before = tree_hash(run)
    result = bpnn("resume", run, "--epochs", 4, "-q", cwd=tmp_path)
    assert_one_line_error(result, 2, str(last), fragment)
    assert tree_hash(run) == before


@pytest.mark.parametrize(
    "row",
    [
        '{"epoch": 1, "train_loss": "x"}',
        '{"train_loss": 1}',
        '{"epoch": "two", "train_loss": 1}',
        '{"epoch": 1, "val_loss": [1]}',
        "[1, 2]",
    ],
)
def test_an_edited_metrics_file_is_one_line_for_plot_and_resume(
    trained: Path, tmp_path: Path, row: str
) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    metrics = run / "metrics.jsonl"
    metrics.write_text(row + "\n" + metrics.read_text())
    before = tree_hash(run)
    assert_one_line_error(bpnn("plot", run, cwd=tmp_path), 2, "metrics.jsonl", "line 1")
    assert_one_line_error(
        bpnn("resume", run, "--epochs", 4, cwd=tmp_path), 2, "metrics.jsonl", "line 1"
    )
    assert tree_hash(run) == before


# --- configs: exit 2, the same answer from `config check` and `train` -------------------------


@pytest.mark.parametrize(
    ("setting", "fragment"),
    [
        ("optimizer: {lr: .inf}", "optimizer.lr"),
        ("optimizer: {lr: .nan}", "optimizer.lr"),
        ('optimizer: {lr: "0.01"}', "optimizer.lr"),
        ('train: {epochs: "3"}', "train.epochs"),
        ("train: {batch_size: 0}", "train.batch_size"),
        ("data: {source: moons, options: {n_sample: 10}}", "data.options.n_sample"),
        ("data: {source: moons, options: {noise: .inf}}", "noise"),
        ("data: {source: moons, options: {n_samples: -5}}", "n_samples"),
        ("model: {hidden: [8, 0]}", "model.hidden[1]"),
        ("model: {dropout: 1.5}", "model.dropout"),
        ("train: {grad_clip: -1}", "train.grad_clip"),
        ("seed: 1.5", "seed"),
        ("train: {max_memory: lots}", "train.max_memory"),
        (f"train: {{max_memory: '{'9' * 400} GiB'}}", "train.max_memory"),
    ],
)
def test_config_check_refuses_what_train_refuses_with_the_same_line(
    tmp_path: Path, setting: str, fragment: str
) -> None:
    """In this process (``run_in_process``: 14 cases of two commands); the first case also
    through the real command line, where the line and the exit code must be the same."""
    config = write(tmp_path, f"name: bad\n{setting}\n")
    check = run_in_process("config", "check", config, cwd=tmp_path)
    train = run_in_process("train", config, "-q", cwd=tmp_path)
    line = assert_one_line_error(check, 2, fragment)
    assert assert_one_line_error(train, 2, fragment) == line
    if setting == "optimizer: {lr: .inf}":
        assert assert_one_line_error(bpnn("train", config, "-q", cwd=tmp_path), 2) == line
    assert not (tmp_path / "runs").exists()


def _alias_bomb(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + f"\nname: *a{levels - 1}\n"


@pytest.mark.parametrize("command", [["config", "check"], ["config", "show"], ["train"]])
def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path: Path, command: list[str]) -> None:
    config = write(tmp_path, _alias_bomb())
    started = time.monotonic()
    result = bpnn(*command, config, cwd=tmp_path, timeout=60)
    assert_one_line_error(result, 2, "aliases")
    assert time.monotonic() - started < 20
    assert len(result.stderr) < 400


def test_a_yaml_document_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    config = write(tmp_path, "name: big\n# " + "x" * (2 << 20) + "\n")
    result = bpnn("config", "check", config, cwd=tmp_path)
    assert_one_line_error(result, 2, "at most")
    assert len(result.stderr) < 400


def test_an_unbounded_value_is_truncated_in_the_message(tmp_path: Path) -> None:
    config = write(tmp_path, "name: x\ntrain: {epochs: '" + "9" * 100_000 + "'}\n")
    result = bpnn("config", "check", config, cwd=tmp_path)
    assert_one_line_error(result, 2, "train.epochs")
    assert len(result.stderr) < 400


# --- downloads: a deadline, a minimum rate, no temporary left ------------------------------------


class _TrickleHandler(http.server.BaseHTTPRequestHandler):
    """Serves a gzip header, then one byte every ``interval`` seconds, forever."""

    interval = 2.0

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        try:
            self.wfile.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03")
            self.wfile.flush()
            while not self.server.stopping:  # type: ignore[attr-defined]
                time.sleep(self.interval)
                self.wfile.write(b"\x00")
                self.wfile.flush()
        except OSError:
            pass

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def trickle_mirror() -> Iterator[str]:
    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        stopping = False

    server = Server(("127.0.0.1", 0), _TrickleHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.stopping = True
        server.shutdown()
        server.server_close()


def _mnist_config(tmp: Path, mirror: str, timeout: float) -> Path:
    return write(
        tmp,
        "name: mnist\n"
        f"data: {{source: mnist, path: mnist-data, mirrors: ['{mirror}'], "
        f"download_timeout: {timeout}}}\n",
    )


def test_a_trickling_download_mirror_is_given_up_at_the_deadline(
    tmp_path: Path, trickle_mirror: str
) -> None:
    config = _mnist_config(tmp_path, trickle_mirror, 3)
    started = time.monotonic()
    result = bpnn("train", config, "-q", cwd=tmp_path, timeout=60)
    elapsed = time.monotonic() - started
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "Traceback" not in result.stderr
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and "download_timeout" in lines[0], result.stderr
    assert elapsed < 30, elapsed
    assert not list((tmp_path / "mnist-data").glob(".*.tmp"))
    assert not (tmp_path / "runs").exists()


def test_sigterm_during_a_download_removes_the_temporary(
    tmp_path: Path, trickle_mirror: str
) -> None:
    config = _mnist_config(tmp_path, trickle_mirror, 60)
    process = start_bpnn("train", config, "-q", cwd=tmp_path)
    folder = tmp_path / "mnist-data"
    deadline = time.monotonic() + 60
    while not list(folder.glob(".*.tmp")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert list(folder.glob(".*.tmp")), "the download never started"
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=60)
    result = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    assert_one_line_error(result, 143, start="terminated")
    assert list(folder.iterdir()) == []


# --- signals: the run is kept and resumes ---------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("signum", "code", "word"),
    [
        (signal.SIGTERM, 143, "terminated"),
        (signal.SIGINT, 130, "interrupted"),
        (signal.SIGHUP, 129, "hung up"),
    ],
    ids=["SIGTERM", "SIGINT", "SIGHUP"],
)
def test_a_signal_during_training_keeps_the_run_resumable(
    tmp_path: Path, signum: int, code: int, word: str
) -> None:
    config = write(tmp_path, SMALL.replace("[16]", "[64]").replace("epochs: 2", "epochs: 200"))
    run = tmp_path / "run"
    process = start_bpnn("train", config, "--out", run, "-q", cwd=tmp_path)
    metrics = run / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if metrics.is_file() and metrics.read_text().count("\n") >= 2:
            break
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=60)
    result = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    line = assert_one_line_error(result, code, "bpnn resume", str(run), start=word)
    assert (run / "checkpoints" / "last.npz").is_file()
    done = int(re.search(r"epoch (\d+)", line).group(1))  # type: ignore[union-attr]
    assert done >= 2

    resumed = bpnn("resume", run, "--epochs", done + 2, "-q", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    epochs = [json.loads(row)["epoch"] for row in metrics.read_text().splitlines()]
    assert epochs == list(range(1, done + 3))


# --- exit codes: each one tested, the docs' table is the code's table ------------------------


def test_a_diverging_run_exits_1(tmp_path: Path) -> None:
    config = write(
        tmp_path,
        "name: diverge\ndata: {source: digits, scale: none}\nmodel: {hidden: [16]}\n"
        "optimizer: {name: sgd, lr: 1.0e+30}\ntrain: {epochs: 2}\n",
    )
    result = bpnn("train", config, "--out", tmp_path / "run", "-q", cwd=tmp_path)
    assert_one_line_error(result, 1, "nan")


def test_a_failed_gradient_check_exits_1(tmp_path: Path) -> None:
    config = write(tmp_path, SMALL)
    result = bpnn("gradcheck", config, "--tol", 0, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "FAILED" in result.stderr


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    config = write(tmp_path, "name: x\noptimizer: {lr: .inf}\n")
    for args, env in ((["--debug"], {}), ([], {"BPNN_DEBUG": "1"})):
        result = bpnn(*args, "config", "check", config, cwd=tmp_path, **env)
        assert result.returncode != 0
        assert "Traceback" in result.stderr


#: the test that shows each exit code
EXIT_CODE_TESTS = {
    0: "test_a_batch_size_beyond_the_data_is_not_refused_for_memory",
    1: "test_a_diverging_run_exits_1, test_a_failed_gradient_check_exits_1",
    2: "test_degenerate_data_is_one_line_and_changes_nothing",
    3: "test_a_checkpoint_beyond_the_file_size_limit_exits_3_and_the_run_resumes",
    4: "test_a_run_too_large_for_memory_is_refused_before_allocating",
    129: "test_a_signal_during_training_keeps_the_run_resumable[SIGHUP]",
    130: "test_a_signal_during_training_keeps_the_run_resumable[SIGINT]",
    141: "cli/test_pipes.py::test_a_closed_stdout_ends_predict_quietly_with_141",
    143: "test_a_signal_during_training_keeps_the_run_resumable[SIGTERM]",
}


def test_every_exit_code_has_a_test() -> None:
    assert set(EXIT_CODE_TESTS) == set(EXIT_CODES)
    names = {name for name in globals() if name.startswith("test_")}
    for code, tests in EXIT_CODE_TESTS.items():
        for module, test in re.findall(r"(?:((?:\w+/)?test_\w+\.py)::)?(test_\w+)", tests):
            if module:  # a test of another module
                text = (REPO / "tests" / module).read_text(encoding="utf-8")
                assert re.search(rf"^def {test}\(", text, flags=re.M), (code, module, test)
            else:
                assert test in names, (code, test)


def test_the_docs_exit_code_table_is_exit_codes() -> None:
    text = (REPO / "docs" / "commands.md").read_text(encoding="utf-8")
    section = text.split("## Exit codes and errors", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (\d+) \| (.+) \|$", section, flags=re.M)
    assert [int(code) for code, _ in rows] == list(EXIT_CODES)
    for (_, meaning), expected in zip(rows, EXIT_CODES.values(), strict=True):
        assert meaning.replace("`", "") == expected.replace("`", "")


#: words of a command's "Exit codes:" sentence in docs/commands.md, and the code each must have
EXIT_CODE_WORDS = {
    r"\bnan\b": TrainingError.exit_code,
    r"resume refuses": ResumeError.exit_code,
    r"\b(locked|taken|exists|existing)\b": OutputError.exit_code,
    r"\bconfig\b": ConfigError.exit_code,
    r"\bdata\b": DataError.exit_code,
    r"\bcheckpoint\b": CheckpointError.exit_code,
    r"\bmemory\b": MemoryLimitError.exit_code,
    r"system refuses|disk full": 3,  # an OSError (reported_errors)
    r"\bsighup\b": 129,
    r"\bctrl-c\b": 130,
    r"stdout is closed": STDOUT_CLOSED,
    r"\bsigterm\b": 143,
}


def documented_exit_codes(text: str) -> list[tuple[int, str]]:
    """``(code, what)`` of every clause of every "Exit codes: 0; 1 when ...; 2 for ..." sentence:
    a clause starts with its code, after a semicolon, a comma or "and"."""
    clauses: list[tuple[int, str]] = []
    for found in re.finditer(r"Exit codes: (.*?)(?:\n\n|$)", text, flags=re.S):
        sentence = re.split(r"(?<=[.)])\s+(?=[A-Z])", " ".join(found.group(1).split()))[0]
        for part in re.split(r";\s*|,\s*(?=\d+ )|\s+and\s+(?=\d+ )", sentence):
            code = re.match(r"(\d+)\b", part)
            if code:
                clauses.append((int(code.group(1)), part))
            else:  # a semicolon inside a parenthesis
                clauses[-1] = (clauses[-1][0], f"{clauses[-1][1]}; {part}")
    return clauses


def test_each_commands_exit_codes_are_the_codes_of_their_errors() -> None:
    text = (REPO / "docs" / "commands.md").read_text(encoding="utf-8")
    clauses = documented_exit_codes(text)
    assert len(clauses) > 20
    for code, clause in clauses:
        assert code in EXIT_CODES, clause
        for words, expected in EXIT_CODE_WORDS.items():
            if re.search(words, clause.lower()):
                assert code == expected, (clause, words, expected)


def test_the_readme_names_every_exit_code() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    line = text.split("Exit codes:", 1)[1].split("\n\n", 1)[0]
    assert [int(code) for code in re.findall(r"\b(\d+) [a-z]", line)] == list(EXIT_CODES)


def test_a_surrogate_in_a_run_file_is_shown_escaped_by_runs(trained_run: Path) -> None:
    """``summary.json`` may hold ``"\\ud800"`` (valid JSON, no text): ``bpnn runs`` shows it as
    its escape, exit 0, where printing it raised ``UnicodeEncodeError``."""
    summary = trained_run / "summary.json"
    record = json.loads(summary.read_text(encoding="utf-8"))
    record["stop_reason"] = "\ud800"
    summary.write_text(json.dumps(record), encoding="utf-8")  # json escapes it as \ud800
    result = run_cli("runs", trained_run.parent, cwd=trained_run.parent)  # real stdout
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr


def test_a_sweep_file_with_an_escaped_surrogate_is_one_line(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text('name: "\\ud800"\nbase: tiny.yaml\n', encoding="utf-8")
    result = run_in_process("sweep", sweep, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "escaped surrogate" in line and str(sweep) in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep.yaml"]
