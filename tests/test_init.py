"""`bpnn init`: a commented starter config from the examples shipped inside the package, and
those examples identical to the repository's configs/."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bpnn.cli import app
from bpnn.config import load_config
from bpnn.examples import example_names, example_text
from tests.support import REPO

runner = CliRunner()


def test_the_packaged_examples_are_the_repository_configs() -> None:
    """configs/ (with its weights/ and data/ files) travels as bpnn/configs/, byte for byte;
    the penguins table is also examples/penguins.csv."""

    def files(root: Path) -> dict[str, bytes]:
        return {
            str(p.relative_to(root)): p.read_bytes()
            for p in root.rglob("*")
            if p.is_file() and p.suffix in (".yaml", ".csv")
        }

    repo, packaged = files(REPO / "configs"), files(REPO / "bpnn" / "configs")
    assert sorted(packaged) == sorted(repo), "run: cp -r configs/. bpnn/configs/"
    assert repo["data/penguins.csv"] == (REPO / "examples" / "penguins.csv").read_bytes()
    for name, text in repo.items():
        assert packaged[name] == text, f"bpnn/configs/{name} differs from configs/{name}"


def test_init_lists_the_examples_from_the_packaged_folder() -> None:
    names = example_names()
    assert {"digits", "mnist", "xor", "regression"} <= set(names)
    assert names == sorted(p.stem for p in (REPO / "bpnn" / "configs").glob("*.yaml"))


@pytest.mark.parametrize("example", example_names())
def test_every_example_writes_a_config_that_loads(example: str, tmp_path: Path) -> None:
    out = tmp_path / f"{example}.yaml"
    result = runner.invoke(app, ["init", "--example", example, "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert text.lstrip().startswith("#")  # the comments come along
    config = load_config(out)
    assert config.name == example


def test_init_names_the_experiment_and_writes_name_yaml(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["init", "petals", "--example", "xor"])
    assert result.exit_code == 0, result.output
    assert load_config(tmp_path / "petals.yaml").name == "petals"
    assert "bpnn train petals.yaml" in result.stderr


def test_init_never_overwrites_a_file(tmp_path: Path) -> None:
    out = tmp_path / "mine.yaml"
    out.write_text("keep me\n")
    result = runner.invoke(app, ["init", "--out", str(out)])
    assert result.exit_code == 2
    assert "already exists" in result.stderr
    assert out.read_text() == "keep me\n"


def test_init_refuses_an_unknown_example_naming_the_real_ones(tmp_path: Path) -> None:
    result = runner.invoke(app, ["init", "--example", "nope", "--out", str(tmp_path / "x.yaml")])
    assert result.exit_code == 2
    assert "no such example" in result.stderr and "digits" in result.stderr
    assert not (tmp_path / "x.yaml").exists()


def test_init_to_stdout() -> None:
    result = runner.invoke(app, ["init", "--example", "xor", "--out", "-"])
    assert result.exit_code == 0
    assert result.stdout == example_text("xor").replace("configs/xor.yaml", "xor.yaml")


def test_init_comments_out_a_data_path_that_is_not_there(tmp_path: Path) -> None:
    out = tmp_path / "mnist.yaml"
    assert runner.invoke(app, ["init", "-e", "mnist", "--out", str(out)]).exit_code == 0
    assert "\n  # path: ../../shared/data/mnist" in out.read_text()
    assert load_config(out).data.path is None  # MNIST's cache folder then


@pytest.mark.slow
def test_init_and_train_from_an_installed_wheel_outside_the_repository(tmp_path: Path) -> None:
    """pip install bpnn, then `bpnn init --example digits --out digits.yaml && bpnn train
    digits.yaml` in a folder that is not a checkout: the examples travel in the wheel."""
    # built from a copy of what the wheel holds: a build in the checkout would leave build/ and
    # bpnn.egg-info/ in it
    source = tmp_path / "source"
    shutil.copytree(REPO / "bpnn", source / "bpnn", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    wheels = tmp_path / "wheels"
    build = [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-w", str(wheels)]
    subprocess.run(build, check=True, capture_output=True, timeout=300)
    (wheel,) = wheels.glob("bpnn-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    # bpnn from the wheel; its dependencies are this environment's, seen through a .pth file
    # (a plain path entry: the .pth files there, an editable bpnn's among them, are not run),
    # not 700 MB downloaded and installed once more
    (site_packages,) = env_dir.glob("lib/python*/site-packages")
    (site_packages / "dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    install = [
        str(python),
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-deps",
        "--no-index",
        str(wheel),
    ]
    done = subprocess.run(install, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    bpnn = str(env_dir / "bin" / "bpnn")
    init = subprocess.run(
        [bpnn, "init", "--example", "digits", "--out", "digits.yaml"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert init.returncode == 0, init.stderr
    train = subprocess.run(
        [bpnn, "train", "digits.yaml", "--out", "run", "--json", "--set", "train.epochs=2"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert train.returncode == 0, train.stderr
    import json

    summary = json.loads(train.stdout)
    assert summary["epochs_run"] == 2 and summary["test_accuracy"] > 0.5
    where = subprocess.run(
        [str(python), "-c", "import bpnn; print(bpnn.__file__)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert str(env_dir) in where.stdout  # the installed copy, not the checkout
