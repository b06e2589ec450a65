"""``bpnn.outputs``: a new file never replaces anything and leaves nothing when it fails; a
replaced file is the old one or the new one, never half of either."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bpnn.errors import OutputError
from bpnn.outputs import atomic_file, new_file, refuse_existing, strict_json, write_new


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
