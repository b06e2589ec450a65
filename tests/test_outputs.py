"""``bpnn.outputs``: a new file never replaces anything and leaves nothing when it fails; a
replaced file is the old one or the new one, never half of either."""

from __future__ import annotations

import errno
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bpnn.errors import OutputError
from bpnn.outputs import atomic_file, new_file, output_set, refuse_existing, strict_json, write_new


def test_a_new_file_refuses_an_existing_file_and_a_dangling_symlink(tmp_path: Path) -> None:
    existing = tmp_path / "kept.csv"
    existing.write_text("the user's", encoding="utf-8")
    link = tmp_path / "link.csv"
    link.symlink_to(tmp_path / "nowhere.csv")
    for path, refusal in (
        (existing, "already exists; choose another --out"),
        (link, "is a symbolic link"),
    ):
        with pytest.raises(OutputError, match=refusal):
            write_new(path, "new", "--out")
        with pytest.raises(OutputError, match=refusal):
            refuse_existing([path], "--out")
    assert existing.read_text(encoding="utf-8") == "the user's"
    assert not (tmp_path / "nowhere.csv").exists()


def test_a_new_file_that_fails_half_way_is_removed(tmp_path: Path) -> None:
    path = tmp_path / "predictions.csv"
    with pytest.raises(RuntimeError), new_file(path, "--out") as handle:
        handle.write("half")
        raise RuntimeError("disk full")
    assert not path.exists()


def test_a_new_file_in_a_missing_folder_is_the_os_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "out.csv"
    with pytest.raises(FileNotFoundError) as error:
        write_new(path, "x", "--out")
    assert error.value.filename == str(path)


@pytest.mark.parametrize("unique", [False, True])
def test_a_failed_replacement_keeps_the_old_file_and_no_temporary(
    tmp_path: Path, unique: bool
) -> None:
    path = tmp_path / "summary.json"
    path.write_text("old", encoding="utf-8")
    with pytest.raises(RuntimeError), atomic_file(path, unique=unique) as handle:
        handle.write("new, half")
        raise RuntimeError("killed")
    assert path.read_text(encoding="utf-8") == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]
    with atomic_file(path, unique=unique, binary=True) as handle:
        handle.write(b"new")
    assert path.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]


def test_a_replaced_file_follows_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "best.npz"
    with atomic_file(path, unique=True, binary=True) as handle:
        handle.write(b"x")
    ordinary = tmp_path / "ordinary"
    ordinary.write_bytes(b"x")
    assert path.stat().st_mode == ordinary.stat().st_mode


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values)
def test_strict_json_has_no_non_finite_number_and_keeps_the_rest(value: object) -> None:
    import json

    cleaned = strict_json(value)
    text = json.dumps(cleaned, allow_nan=False)  # raises on NaN or Infinity

    def same(a: object, b: object) -> bool:
        if isinstance(a, float) and not math.isfinite(a):
            return b is None
        if isinstance(a, dict):
            return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
        if isinstance(a, list):
            return isinstance(b, list) and len(a) == len(b) and all(map(same, a, b))
        return a == b

    assert same(value, json.loads(text))


# --- a set of new files (issue 27: a full disk half-way leaves nothing) -------------------------


def test_a_failed_output_set_removes_its_files_and_the_folders_it_made(tmp_path: Path) -> None:
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "mine.txt").write_text("the user's")
    folder = tmp_path / "kept" / "a" / "b"
    with pytest.raises(OSError, match="No space left"), output_set(folder, "--out") as written:
        write_new(folder / "first.csv", "step,lr\n", "--out")
        written.append(folder / "first.csv")
        with new_file(folder / "second.png", "--out") as handle:
            handle.write("half a figure")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["kept", "mine.txt"]


def test_an_output_set_that_succeeds_keeps_everything(tmp_path: Path) -> None:
    with output_set(tmp_path / "new", "--out") as written:
        write_new(tmp_path / "new" / "a.txt", "a", "--out")
        written.append(tmp_path / "new" / "a.txt")
    assert (tmp_path / "new" / "a.txt").read_text() == "a"


def test_lr_find_leaves_no_csv_when_its_figure_cannot_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bpnn.plots
    from bpnn.tools.lr_find import LrFindResult, write_outputs

    def disk_full(*args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(bpnn.plots, "plot_lr_find", disk_full)
    result = LrFindResult(
        lrs=[1e-3, 1e-2],
        losses=[1.0, 0.5],
        smoothed=[1.0, 0.7],
        suggested_lr=1e-3,
        steepest_lr=1e-3,
        min_loss_lr=1e-2,
        valley_lr=1e-3,
        stop_reason="end",
        start=1e-3,
        end=1e-2,
        steps=2,
    )
    with pytest.raises(OSError):
        write_outputs(result, tmp_path / "out", "tiny")
    assert list(tmp_path.iterdir()) == []
