"""What many test modules share, importable when a module is collected (a parametrize list, a
module-level skip, a constant): where the repository and the shared MNIST copy are, the tiny iris
config most tests train, and the real command line run in a subprocess (``run_cli``) or in
this process (``invoke``, ``assert_answered``, ``run_in_process``).

The fixtures in ``tests/conftest.py`` hand the same to a test function (``shared_mnist``,
``tiny_config_file``, ``run_cli``); import from here what is needed before a test runs.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from bpnn.config import Config, validate
from bpnn.data import MNIST_FILES

#: the repository (the worktree) the tests run in
REPO = Path(__file__).resolve().parents[1]
#: the package's source folder, bpnn/
PACKAGE = REPO / "bpnn"

#: the MNIST files, read-only, beside the repository (never copied into it)
SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist"
HAVE_SHARED_MNIST = all((SHARED_MNIST / name).is_file() for name in MNIST_FILES)
#: a test or a module (``pytestmark``) that reads the shared MNIST files
needs_shared_mnist = pytest.mark.skipif(
    not HAVE_SHARED_MNIST, reason=f"shared MNIST files not found in {SHARED_MNIST}"
)

#: the tiny iris run: 108 training samples, a 4 -> 8 -> 3 network, 3 epochs of 7 batches
TINY = """\
name: tiny
seed: 0
data: {source: iris}
model: {hidden: [8]}
optimizer: {name: adam, lr: 0.01}
train: {epochs: 3, batch_size: 16}
"""


#: a sweep file of two trials of ``tiny.yaml`` beside it (a grid of two learning rates)
TWO_TRIAL_GRID = """\
base: tiny.yaml
metric: val_accuracy
method: grid
space:
  optimizer.lr: [0.01, 0.1]
"""


def tiny_raw(**sections: Any) -> dict[str, Any]:
    """``TINY`` as a mapping with ``sections`` merged in one level deep: a mapping updates the
    section of its name (``train={"epochs": 5}`` keeps ``batch_size``), anything else replaces
    it (``loss="mse"``)."""
    raw: dict[str, Any] = yaml.safe_load(TINY)
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    return raw


def tiny_config(**sections: Any) -> Config:
    """The validated tiny iris config, ``sections`` merged in as ``tiny_raw`` does."""
    return validate(tiny_raw(**sections))


def tiny_yaml(**sections: Any) -> str:
    """The tiny iris config file's text, ``sections`` merged in as ``tiny_raw`` does."""
    if not sections:
        return TINY
    return yaml.safe_dump(tiny_raw(**sections), sort_keys=False)


#: ``python -m bpnn`` with the interpreter running the tests
BPNN_COMMAND = (sys.executable, "-m", "bpnn")


def cli_environment(**extra: str) -> dict[str, str]:
    """The environment of a ``python -m bpnn`` subprocess: the tests' own, with this worktree's
    bpnn first on the path whatever the working directory (not the installed one), without
    ``BPNN_DEBUG`` (whose tracebacks would break the one-line errors the tests read), and
    ``extra`` on top."""
    env = {name: value for name, value in os.environ.items() if name != "BPNN_DEBUG"}
    env["PYTHONPATH"] = str(REPO)
    env.update(extra)
    return env


def run_cli(
    *args: object,
    cwd: Path,
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
    **options: Any,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m bpnn ARGS`` in ``cwd`` (its environment: ``cli_environment(**env)``) and
    wait for it; its exit code, stdout and stderr as text. ``options`` go to
    ``subprocess.run``."""
    return subprocess.run(
        [*BPNN_COMMAND, *map(str, args)],
        cwd=cwd,
        env=cli_environment(**(env or {})),
        capture_output=True,
        text=True,
        timeout=timeout,
        **options,
    )


def invoke(*args: object, input: str | None = None) -> Any:
    """``bpnn ARGS`` in this process, through Typer's ``CliRunner``: a ``Result`` with
    ``exit_code``, ``stdout``, ``stderr`` and the ``exception`` that escaped bpnn's error funnel,
    if any. For the many cases a subprocess each would make slow (fuzz, sweep folders); the
    signals, pipes and exit codes of a real process are ``run_cli``'s."""
    from typer.testing import CliRunner

    from bpnn.cli import app

    return CliRunner().invoke(app, [str(a) for a in args], input=input, catch_exceptions=True)


def assert_answered(result: Any) -> None:
    """An ``invoke`` result was answered: exit 0 or a code of ``EXIT_CODES``, exactly one
    ``error:`` line on stderr when it failed, never a traceback nor an escaped exception."""
    from bpnn.errors import EXIT_CODES

    described = f"exit {result.exit_code}: {result.exception!r}\n{result.output}"
    assert result.exception is None or isinstance(result.exception, SystemExit), described
    assert result.exit_code in EXIT_CODES, described
    assert "Traceback" not in result.output, described
    if result.exit_code != 0:
        lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(lines) == 1, described


def run_in_process(
    *args: object, cwd: Path, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``invoke(*args)`` in the folder ``cwd``, answered as ``run_cli`` answers: a drop-in for
    the cases a subprocess each would make slow. An exception that escaped bpnn's error funnel
    is appended to stderr as a ``Traceback`` line, which every check of stderr refuses."""
    with contextlib.chdir(cwd):
        result = invoke(*args, input=input)
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += f"Traceback (in this process): {result.exception!r}\n"
    return subprocess.CompletedProcess(
        list(map(str, args)), result.exit_code, result.stdout, stderr
    )


def files_of(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (its path relative to it) with its bytes: equal before and
    after a refusal when it changed nothing."""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not path.is_symlink()
    }


# --- a folder of images (source: images) ------------------------------------------------------

#: the classes of ``make_shapes_folder``
SHAPES = ("circle", "square", "triangle")


def make_shapes_folder(root: Path, *, per_class: int = 30, seed: int = 0) -> Path:
    """``root/{circle,square,triangle}/NNN.{png,jpg}``: one light shape on a dark background
    per image, of random size and place, grey or colour, 20 to 40 pixels a side (so that
    resizing to ``data.size`` is exercised), PNG and JPEG mixed."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    for shape in SHAPES:
        folder = root / shape
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            side = int(rng.integers(20, 41))
            colour = bool(rng.integers(0, 2))
            mode = "RGB" if colour else "L"
            background = (0, 0, 0) if colour else 0
            image = Image.new(mode, (side, side), background)
            draw = ImageDraw.Draw(image)
            extent = rng.uniform(0.5, 0.9) * side
            x0, y0 = rng.uniform(0, side - extent, size=2)
            box = (x0, y0, x0 + extent, y0 + extent)
            fill = (
                tuple(int(v) for v in rng.integers(150, 256, size=3))
                if colour
                else int(rng.integers(150, 256))
            )
            if shape == "circle":
                draw.ellipse(box, fill=fill)
            elif shape == "square":
                draw.rectangle(box, fill=fill)
            else:
                draw.polygon(
                    [(x0, y0 + extent), (x0 + extent, y0 + extent), (x0 + extent / 2, y0)],
                    fill=fill,
                )
            suffix = ".png" if i % 3 else ".jpg"
            image.save(folder / f"{i:03d}{suffix}")
    return root
