"""The hardened readers of issue 27 (``bpnn/readers.py``): an ``.npz`` archive's sizes are checked
from its headers before anything is inflated (compression bombs, headers that claim 10^12
values, archives larger than memory), JSON is refused past a depth instead of raising
``RecursionError``, and a checkpoint's metadata is checked field by field. Peak memory is
measured with ``tracemalloc`` (numpy reports its allocations to it)."""

from __future__ import annotations

import io
import json
import os
import tracemalloc
import zipfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bpnn import checkpoint, readers
from bpnn.errors import CheckpointError, DataError, MemoryLimitError
from bpnn.readers import MAX_JSON_DEPTH, json_depth, parse_json, read_npz
from tests.support import run_in_process

MiB = 1 << 20


def npy_header(shape: tuple[int, ...], dtype: str = "<f4") -> bytes:
    """The bytes numpy writes before an array of ``shape`` (format 1.0)."""
    buffer = io.BytesIO()
    header = {"descr": dtype, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue()


def write_entries(path: Path, entries: dict[str, bytes], *, deflate: bool = False) -> Path:
    method = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", compression=method) as archive:
        for name, data in entries.items():
            archive.writestr(f"{name}.npy", data)
    return path


def array_bytes(value: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, value, allow_pickle=False)
    return buffer.getvalue()


def checkpoint_entries(meta: dict[str, Any] | str) -> dict[str, bytes]:
    text = meta if isinstance(meta, str) else json.dumps(meta)
    return {
        "format": array_bytes(np.array("bpnn-checkpoint")),
        "meta": array_bytes(np.array(text)),
    }


@pytest.fixture(scope="module")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint of 0.3 MiB whose parameter inflates to 256 MiB of zeros."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.npz"
    count = 64 * MiB  # float32 values: 256 MiB
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, data in checkpoint_entries({"format_version": 1}).items():
            zf.writestr(f"{name}.npy", data)
        with zf.open("param/0.weight.npy", "w", force_zip64=True) as member:
            member.write(npy_header((count,)))
            zeros = bytes(MiB)
            for _ in range(count * 4 // MiB):
                member.write(zeros)
    assert path.stat().st_size < MiB
    return path


def peak_of(action: Callable[[], Any]) -> int:
    """The peak memory (bytes) Python and numpy allocate while ``action`` runs."""
    tracemalloc.start()
    try:
        action()
    except (CheckpointError, DataError, MemoryLimitError):
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_a_compression_bomb_is_refused_before_it_inflates(bomb: Path) -> None:
    with pytest.raises(CheckpointError) as caught:
        checkpoint.load(bomb)
    message = str(caught.value)
    assert message.startswith(f"{bomb}: entry 'param/0.weight' inflates from ")
    assert "256.0 MiB" in message and "refused unread" in message
    assert peak_of(lambda: checkpoint.load(bomb)) < 16 * MiB


def test_the_compression_bomb_through_the_command_line(
    bomb: Path, run_cli: Any, tmp_path: Path
) -> None:
    config = tmp_path / "iris.yaml"
    config.write_text("data: {source: iris}\nmodel: {hidden: [3]}\n")
    commands = [["eval", bomb], ["predict", bomb, "-"], ["explain", config, "--checkpoint", bomb]]
    for command in commands:  # the first through the real command line, the others in-process
        run = run_cli if command[0] == "eval" else partial(run_in_process, cwd=tmp_path)
        result = run(*command, input="1,2,3,4\n")
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1 and "inflates from" in result.stderr
        assert "Traceback" not in result.stderr


def test_an_uncompressed_checkpoint_is_read_whatever_its_size(tmp_path: Path) -> None:
    # stored entries never trip the inflation limit: bpnn's own checkpoints are stored
    path = tmp_path / "big.npz"
    with path.open("wb") as handle:
        np.savez(handle, format=np.array("bpnn-checkpoint"), meta=np.array("{}"), x=np.zeros(MiB))
    with pytest.raises(CheckpointError, match="format version None is not supported"):
        checkpoint.load(path)


@pytest.mark.parametrize("deflate", [False, True])
def test_a_header_that_claims_a_trillion_values_is_a_corrupt_file(
    tmp_path: Path, deflate: bool
) -> None:
    path = write_entries(
        tmp_path / "claims.npz",
        {"X": npy_header((10**12,)) + bytes(100), "y": array_bytes(np.arange(3))},
        deflate=deflate,
    )
    peak = peak_of(lambda: read_npz(path))
    with pytest.raises(DataError) as caught:
        read_npz(path)
    assert str(caught.value) == (
        f"{path}: entry 'X': its header declares 1000000000000 values of float32 (3.6 TiB), "
        "the entry holds 228 B (a corrupt file)"
    )
    assert peak < MiB


def test_the_claim_of_a_trillion_values_through_train_and_eval(
    tmp_path: Path, run_cli: Any
) -> None:
    data = write_entries(
        tmp_path / "claims.npz",
        {"X": npy_header((10**6, 10**6)) + bytes(64), "y": array_bytes(np.arange(3))},
    )
    config = tmp_path / "npz.yaml"
    config.write_text(f"data: {{source: npz, path: {data}}}\nmodel: {{hidden: [4]}}\n")
    result = run_cli("train", config, "--out", tmp_path / "run")
    assert result.returncode == 2, result.stderr
    assert result.stderr == (
        f"error: {data}: entry 'X': its header declares 1000000000000 values of float32 "
        "(3.6 TiB), the entry holds 192 B (a corrupt file)\n"
    )
    assert not (tmp_path / "run").exists()


def test_a_single_npy_file_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "single.npz"
    path.write_bytes(npy_header((10**12,)))
    peak = peak_of(lambda: read_npz(path))
    with pytest.raises(DataError, match=r"a single \.npy array, not an \.npz archive"):
        read_npz(path)
    assert peak < MiB


def test_sizes_that_disagree_in_a_stored_entry_are_a_corrupt_archive(tmp_path: Path) -> None:
    path = write_entries(tmp_path / "a.npz", {"X": array_bytes(np.zeros(10))})
    data = bytearray(path.read_bytes())
    # the central directory's uncompressed size of the entry (offset 24 of its record)
    record = data.rfind(b"PK\x01\x02")
    data[record + 24 : record + 28] = (1 << 30).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match="entry 'X': its sizes disagree"):
        read_npz(path)


def test_arrays_larger_than_half_the_memory_are_refused_with_exit_4(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "large.npz"
    with path.open("wb") as handle:
        np.savez_compressed(handle, X=np.zeros((1024, 1024)), y=np.zeros(1024))
    monkeypatch.setattr(readers, "available_bytes", lambda: 4 * MiB)
    with pytest.raises(MemoryLimitError) as caught:
        read_npz(path)
    assert str(caught.value) == (
        f"{path}: its arrays need 8.0 MiB, more than half the memory available (4.0 MiB)"
    )
    assert MemoryLimitError.exit_code == 4


def test_object_arrays_and_entries_that_are_not_arrays_are_refused(tmp_path: Path) -> None:
    objects = npy_header((1,), "|O") + b"\x80\x04N."  # a pickle, never loaded
    path = write_entries(tmp_path / "objects.npz", {"X": objects})
    with pytest.raises(DataError, match="entry 'X' holds pickled objects"):
        read_npz(path)
    other = tmp_path / "other.npz"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("notes.txt", "hello")
    with pytest.raises(DataError, match=r"entry 'notes\.txt' is not an array"):
        read_npz(other)


# --- JSON ------------------------------------------------------------------------------------


def test_json_nested_past_the_limit_is_refused_not_a_recursion_error() -> None:
    for depth in (MAX_JSON_DEPTH + 1, 100_000):
        with pytest.raises(DataError, match=r"^x.json: nested too deeply \(more than 64"):
            parse_json("[" * depth + "]" * depth, "x.json")
    assert parse_json("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH, "x.json") is not None
    assert json_depth({"a": [1, {"b": []}]}) == 4 and json_depth(5) == 0


def test_json_that_is_not_utf8_or_not_json_is_one_line() -> None:
    with pytest.raises(DataError, match=r"^f: not UTF-8 text$"):
        parse_json(b'{"a": "\xff"}', "f")
    with pytest.raises(DataError, match=r"^f: not valid JSON \(Expecting value\)$"):
        parse_json("nope", "f")


# --- a checkpoint's metadata ------------------------------------------------------------------

GOOD_META = {
    "format_version": 1,
    "epoch": 3,
    "task": "multiclass",
    "config": {},
    "feature_names": ["a"],
    "target_name": "y",
    "metrics": {},
    "trainer": {},
}


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        ("epoch", float("inf"), "inf"),
        ("epoch", "3", "'3'"),
        ("epoch", True, "True"),
        ("epoch", -1, "-1"),
        ("config", [1, 2], "[1, 2]"),
        ("task", 7, "7"),
        ("feature_names", "abc", "'abc'"),
        ("feature_names", [1, 2], "[1, 2]"),
        ("target_name", {"a": 1}, "{'a': 1}"),
        ("metrics", "x" * 1000, "'" + "x" * 56 + "..."),
        ("trainer", None, "None"),
        ("table", [], "[]"),
    ],
)
def test_a_metadata_field_of_the_wrong_kind_is_named(
    tmp_path: Path, field: str, value: Any, shown: str
) -> None:
    meta = {**GOOD_META, field: value}
    path = write_entries(tmp_path / "ckpt.npz", checkpoint_entries(meta))
    with pytest.raises(CheckpointError) as caught:
        checkpoint.load(path)
    assert str(caught.value).startswith(f"{path}: corrupt metadata: '{field}' is {shown}")


def test_metadata_nested_too_deeply_is_refused(tmp_path: Path) -> None:
    deep = '{"format_version": 1, "config": ' + "[" * 50_000 + "]" * 50_000 + "}"
    path = write_entries(tmp_path / "ckpt.npz", checkpoint_entries(deep))
    with pytest.raises(CheckpointError, match="corrupt metadata: nested too deeply"):
        checkpoint.load(path)


# --- a config that is not a text file ---------------------------------------------------------


def test_a_config_that_is_a_fifo_an_archive_or_binary_is_one_line(
    tmp_path: Path, run_cli: Any
) -> None:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    archive = write_entries(tmp_path / "ckpt.npz", {"X": array_bytes(np.zeros(3))})
    binary = tmp_path / "latin1.yaml"
    binary.write_bytes(b"name: caf\xe9\n")
    expected = {
        fifo: f"error: {fifo}: not a regular file",
        archive: f"error: {archive}: an .npz archive (a checkpoint?), not a YAML config file",
        binary: f"error: {binary}: not UTF-8 text (byte 9), not a YAML config file",
    }
    for path, line in expected.items():  # a FIFO through the real command line (a timeout)
        if path == fifo:
            result = run_cli("config", "check", path, timeout=30)
        else:
            result = run_in_process("config", "check", path, cwd=tmp_path)
        assert (result.returncode, result.stderr) == (2, line + "\n")


def test_an_error_about_a_config_key_names_the_file_and_is_cut(
    tmp_path: Path, run_cli: Any
) -> None:
    config = tmp_path / "moons.yaml"
    config.write_text(
        f"data: {{source: moons, options: {{noise: {'a' * 500_000}}}}}\nmodel: {{hidden: [4]}}\n"
    )
    for command in (["train", config, "--out", tmp_path / "run"], ["config", "check", config]):
        run = run_cli if command[0] == "train" else partial(run_in_process, cwd=tmp_path)
        result = run(*command)
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith(f"error: {config}: data.options: 'moons' refused them")
        assert result.stderr.endswith("...\n") and len(result.stderr) <= 1010
