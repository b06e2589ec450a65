"""Specification of the checkpoint file (bpnn.checkpoint): one ``.npz`` that loads without pickle,
written atomically, every field round-tripping, and one-line errors that name the file."""

from __future__ import annotations

import json
import os
import signal
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bpnn import checkpoint
from bpnn.checkpoint import FORMAT_VERSION, CheckpointContents
from bpnn.config import validate
from bpnn.errors import CheckpointError, Terminated


def full_contents() -> CheckpointContents:
    """Contents with every field set to something distinctive."""
    rng = np.random.default_rng(0)
    return CheckpointContents(
        config=validate({"model": {"hidden": [3]}, "data": {"source": "iris"}}).resolved(),
        epoch=7,
        task="multiclass",
        params={
            "0.weight": rng.normal(size=(4, 3)).astype(np.float32),
            "0.bias": rng.normal(size=3).astype(np.float32),
            "1.weight": rng.normal(size=(3, 3)).astype(np.float32),
            "1.bias": rng.normal(size=3).astype(np.float32),
        },
        buffers={"0.running_mean": np.arange(3.0), "0.running_var": np.ones(3)},
        input_offset=rng.normal(size=4),
        input_factor=rng.uniform(0.5, 2.0, size=4),
        target_offset=np.array([150.0]),
        target_factor=np.array([0.013]),
        classes=np.array(["setosa", "versicolor", "virginica"]),
        feature_names=["sepal_length", "sepal_width", "petal_length", "petal_width"],
        metrics={"epoch": 7, "train_loss": 0.25, "val_accuracy": 0.75, "lr": 0.001},
        optimizer={"m": rng.normal(size=24), "v": rng.uniform(size=24), "iterations": np.array(70)},
        schedule={"best": np.array(0.5), "wait": np.array(2)},
        trainer={"shuffle_rng": np.random.default_rng(1).bit_generator.state, "callbacks": {}},
    )


def assert_same_arrays(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert set(a) == set(b)
    for key in a:
        assert a[key].dtype == b[key].dtype, key
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def one_line_error(path: Path) -> str:
    with pytest.raises(CheckpointError) as caught:
        checkpoint.load(path)
    message = str(caught.value)
    assert "\n" not in message, f"not one line: {message!r}"
    assert message.startswith(f"{path}: "), message
    return message


def write_npz(path: Path, **arrays: Any) -> Path:
    with path.open("wb") as handle:
        np.savez(handle, **arrays)
    return path


# --- round trip -------------------------------------------------------------------------------


def test_save_then_load_returns_every_field(tmp_path: Path) -> None:
    original = full_contents()
    path = tmp_path / "ckpt.npz"
    checkpoint.save(path, original)
    loaded = checkpoint.load(path)

    assert loaded.config == original.config
    assert loaded.epoch == 7
    assert loaded.task == "multiclass"
    assert loaded.feature_names == original.feature_names
    assert loaded.metrics == original.metrics
    assert loaded.trainer == json.loads(json.dumps(original.trainer))
    assert_same_arrays(loaded.params, original.params)
    assert_same_arrays(loaded.buffers, original.buffers)
    assert_same_arrays(loaded.optimizer, original.optimizer)
    assert_same_arrays(loaded.schedule, original.schedule)
    for key in ("input_offset", "input_factor", "target_offset", "target_factor", "classes"):
        np.testing.assert_array_equal(getattr(loaded, key), getattr(original, key), err_msg=key)


def test_optional_fields_stay_absent(tmp_path: Path) -> None:
    contents = CheckpointContents(
        config={}, epoch=0, task="regression", params={"0.weight": np.zeros((2, 1))}
    )
    path = tmp_path / "ckpt.npz"
    checkpoint.save(path, contents)
    loaded = checkpoint.load(path)
    assert loaded.classes is None
    assert loaded.input_offset is None and loaded.target_factor is None
    assert loaded.buffers == {} and loaded.optimizer == {} and loaded.schedule == {}


def test_rng_state_in_the_checkpoint_restores_the_same_stream(tmp_path: Path) -> None:
    rng = np.random.default_rng(123)
    rng.random(5)
    contents = full_contents()
    contents.trainer = {"shuffle_rng": rng.bit_generator.state}
    path = tmp_path / "ckpt.npz"
    checkpoint.save(path, contents)
    restored = np.random.default_rng()
    restored.bit_generator.state = checkpoint.load(path).trainer["shuffle_rng"]
    np.testing.assert_array_equal(restored.permutation(50), rng.permutation(50))


def test_file_loads_with_numpy_without_pickle(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.npz"
    checkpoint.save(path, full_contents())
    with np.load(path, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    assert str(arrays["format"]) == "bpnn-checkpoint"
    meta = json.loads(str(arrays["meta"]))
    assert meta["format_version"] == FORMAT_VERSION
    assert meta["epoch"] == 7
    assert {"param/0.weight", "param/1.bias", "buffer/0.running_mean", "classes"} <= set(arrays)
    assert all(a.dtype != object for a in arrays.values())


def test_object_array_classes_are_stored_as_text(tmp_path: Path) -> None:
    contents = full_contents()
    contents.classes = np.array(["a", "b", "c"], dtype=object)
    path = tmp_path / "ckpt.npz"
    checkpoint.save(path, contents)
    assert list(checkpoint.load(path).classes) == ["a", "b", "c"]


def test_save_creates_missing_folders(tmp_path: Path) -> None:
    path = tmp_path / "run" / "checkpoints" / "best.npz"
    checkpoint.save(path, full_contents())
    assert checkpoint.load(path).epoch == 7


# --- atomic write -----------------------------------------------------------------------------


def test_failed_write_leaves_the_old_file_and_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "last.npz"
    checkpoint.save(path, full_contents())
    before = path.read_bytes()

    def half_written(file: Any, *args: Any, **kwargs: Any) -> None:
        file.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", half_written)
    newer = full_contents()
    newer.epoch = 8
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save(path, newer)

    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.npz"]
    monkeypatch.undo()
    assert checkpoint.load(path).epoch == 7


def test_interrupted_first_write_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(file: Any, *args: Any, **kwargs: Any) -> None:
        file.write(b"PK")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(tmp_path / "best.npz", full_contents())
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="signals cannot be held")
def test_a_sigterm_while_saving_is_acted_on_once_the_checkpoint_is_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stop signal in the middle of the archive's writing (where one inside ``zipfile``'s
    closing left a half-closed archive whose garbage collection printed a traceback) waits
    until the checkpoint is in place, then stops the program as usual."""
    real_savez = np.savez

    def signalled(file: Any, *args: Any, **kwargs: Any) -> None:
        os.kill(os.getpid(), signal.SIGTERM)  # held: its handler has not run yet
        real_savez(file, *args, **kwargs)

    def terminate(signum: int, frame: Any) -> None:
        raise Terminated

    monkeypatch.setattr(np, "savez", signalled)
    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        with pytest.raises(Terminated):
            checkpoint.save(tmp_path / "last.npz", full_contents())
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.npz"]
    assert checkpoint.load(tmp_path / "last.npz").epoch == 7


def test_save_replaces_an_existing_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "last.npz"
    checkpoint.save(path, full_contents())
    newer = full_contents()
    newer.epoch = 9
    checkpoint.save(path, newer)
    assert checkpoint.load(path).epoch == 9
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.npz"]


# --- errors -----------------------------------------------------------------------------------


def test_missing_file_is_a_checkpoint_error(tmp_path: Path) -> None:
    path = tmp_path / "absent.npz"
    assert one_line_error(path) == f"{path}: no such checkpoint file"


def test_folder_is_not_a_checkpoint(tmp_path: Path) -> None:
    one_line_error(tmp_path)


def test_file_that_is_not_a_zip_is_a_checkpoint_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.npz"
    path.write_bytes(b"this is not a checkpoint\n" * 10)
    assert "not a readable checkpoint" in one_line_error(path)


def test_truncated_checkpoint_is_a_checkpoint_error(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.npz"
    checkpoint.save(path, full_contents())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    one_line_error(path)


def test_empty_file_is_a_checkpoint_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.npz"
    path.write_bytes(b"")
    one_line_error(path)


def test_corrupt_member_inside_the_zip_is_a_checkpoint_error(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("format.npy", b"garbage, not an npy header")
        archive.writestr("meta.npy", b"garbage")
    one_line_error(path)


def test_npz_of_other_arrays_is_not_a_bpnn_checkpoint(tmp_path: Path) -> None:
    path = write_npz(tmp_path / "other.npz", X=np.zeros((3, 2)), y=np.arange(3))
    assert one_line_error(path) == f"{path}: not a bpnn checkpoint"


def test_npz_with_a_wrong_format_marker_is_not_a_bpnn_checkpoint(tmp_path: Path) -> None:
    path = write_npz(tmp_path / "other.npz", format=np.array("something-else"), meta=np.array("{}"))
    assert one_line_error(path) == f"{path}: not a bpnn checkpoint"


def test_pickled_object_arrays_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "pickled.npz"
    with path.open("wb") as handle:
        np.savez(
            handle,
            format=np.array("bpnn-checkpoint"),
            meta=np.array("{}"),
            evil=np.array([{"a": 1}], dtype=object),
        )
    one_line_error(path)


@pytest.mark.parametrize("version", [0, 2, 99, None, "1"])
def test_unsupported_format_version_names_the_version(tmp_path: Path, version: Any) -> None:
    path = tmp_path / "ckpt.npz"
    checkpoint.save(path, full_contents())
    with np.load(path, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    meta = json.loads(str(arrays["meta"]))
    meta["format_version"] = version
    arrays["meta"] = np.array(json.dumps(meta))
    write_npz(path, **arrays)
    message = one_line_error(path)
    assert f"format version {version} is not supported" in message


def test_corrupt_metadata_is_a_checkpoint_error(tmp_path: Path) -> None:
    path = write_npz(
        tmp_path / "ckpt.npz", format=np.array("bpnn-checkpoint"), meta=np.array("{not json")
    )
    assert "corrupt metadata" in one_line_error(path)


def test_metadata_that_is_not_an_object_is_a_checkpoint_error(tmp_path: Path) -> None:
    path = write_npz(
        tmp_path / "ckpt.npz", format=np.array("bpnn-checkpoint"), meta=np.array("[1, 2]")
    )
    one_line_error(path)


def test_metadata_without_required_fields_is_a_checkpoint_error(tmp_path: Path) -> None:
    meta = {"format_version": FORMAT_VERSION, "epoch": 1}  # no task, no config
    path = write_npz(
        tmp_path / "ckpt.npz", format=np.array("bpnn-checkpoint"), meta=np.array(json.dumps(meta))
    )
    assert "incomplete checkpoint" in one_line_error(path)
