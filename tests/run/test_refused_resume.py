"""A refused resume leaves the run directory as it found it, byte for byte (issue 27): every
check (the config, the checkpoint's weights, every history row, the data) comes before the first
write. And the history is read one way by the check and by the repair: a row that cannot be read
is an error naming its line, never a torn tail to cut off with the rows after it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def non_finite_weights(run: Path) -> None:
    path = run / "checkpoints" / "last.npz"
    with np.load(path, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    weights = next(key for key in arrays if key.startswith("param/"))
    arrays[weights] = np.full_like(arrays[weights], np.nan)
    np.savez(path, **arrays)


def garbage_row(run: Path) -> None:
    metrics = run / "metrics.jsonl"
    lines = metrics.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[1] = '{"epoch": 2, "loss": \n'
    metrics.write_text("".join(lines), encoding="utf-8")


def non_utf8_row(run: Path) -> None:
    metrics = run / "metrics.jsonl"
    lines = metrics.read_bytes().splitlines(keepends=True)
    lines[0] = lines[0].replace(b"{", b'{"note\xff": 1, ', 1)  # else a valid row
    metrics.write_bytes(b"".join(lines))


def wrong_health_shape(run: Path) -> None:
    metrics = run / "metrics.jsonl"
    lines = metrics.read_text(encoding="utf-8").splitlines(keepends=True)
    row = json.loads(lines[0])
    row["health"] = [1, 2, "three"]
    lines[0] = json.dumps(row) + "\n"
    metrics.write_text("".join(lines), encoding="utf-8")


DAMAGE = {
    "non-finite weights in last.npz": (non_finite_weights, "last.npz"),
    "a garbage row": (garbage_row, "line 2"),
    "a row that is not UTF-8": (non_utf8_row, "line 1"),
    "health of the wrong shape": (wrong_health_shape, "line 1"),
}


@pytest.mark.parametrize("damage", DAMAGE, ids=DAMAGE)
def test_a_refused_resume_changes_no_byte(trained_run: Path, run_cli, damage: str) -> None:
    """``--epochs 6`` would rewrite config.yaml: refused, it has not, so the next resume is
    refused for the same reason, not for an edited config."""
    harm, named = DAMAGE[damage]
    harm(trained_run)
    before = snapshot(trained_run)
    result = run_cli("resume", trained_run, "--epochs", 6, "-q")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and named in lines[0], lines
    assert snapshot(trained_run) == before
    again = run_cli("resume", trained_run, "--epochs", 6, "-q")
    assert again.stderr == result.stderr


def test_a_last_row_without_its_newline_is_kept(trained_run: Path, run_cli) -> None:
    metrics = trained_run / "metrics.jsonl"
    data = metrics.read_bytes()
    assert data.endswith(b"\n")
    metrics.write_bytes(data[:-1])  # every row whole, the last one's newline never written
    result = run_cli("resume", trained_run, "--epochs", 6, "-q")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in metrics.read_text(encoding="utf-8").splitlines()]
    assert [row["epoch"] for row in rows] == [1, 2, 3, 4, 5, 6]
