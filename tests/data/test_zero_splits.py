"""Specification of runs without a validation or a test split (issue 25, items 2 and 9).

``data.val_fraction: 0`` and ``data.test_fraction: 0`` mean "no such split" for every source;
such a run trains, evaluates, resumes, explains and sweeps. ``bpnn config check`` refuses what
``train`` refuses, with the same line. ``--set`` of one way of giving the test set replaces the
file's other way, and a failed MNIST download says where else the files can come from.
"""

from __future__ import annotations

import gzip
import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner, Result

from bpnn.cli import app
from bpnn.config import DataConfig, load_config, validate
from bpnn.data import MNIST_FILES, SOURCES, load_dataset
from bpnn.errors import ConfigError, DataError
from tests.support import REPO

IRIS = REPO / "examples" / "iris.yaml"
SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist"
HAVE_MNIST = all((SHARED_MNIST / name).is_file() for name in MNIST_FILES)


def bpnn_cli(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def error_line(result: Result) -> str:
    """The one error line of a failed command (its last line on stderr), no traceback."""
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), repr(result.exception)
    last = result.stderr.splitlines()[-1]
    assert last.startswith("error: "), result.stderr
    return last


# --- every source: a zero fraction is no such split -------------------------------------------


def _table(rows: int = 60) -> pd.DataFrame:
    """Numbers, a category and a label (3 classes)."""
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "size": np.round(rng.normal(size=rows), 3),
            "colour": rng.choice(["red", "green", "blue"], rows),
            "label": [f"k{i % 3}" for i in range(rows)],
        }
    )


def _idx(path: Path, array: np.ndarray) -> str:
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))
    return str(path)


def _csv(folder: Path) -> dict[str, Any]:
    _table().to_csv(folder / "t.csv", index=False)
    return {"path": str(folder / "t.csv")}


def _parquet(folder: Path) -> dict[str, Any]:
    pytest.importorskip("pyarrow")
    _table().to_parquet(folder / "t.parquet")
    return {"path": str(folder / "t.parquet")}


def _npz(folder: Path) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    np.savez(folder / "t.npz", X=rng.normal(size=(60, 3)), y=np.arange(60) % 3)
    return {"path": str(folder / "t.npz")}


def _idx_files(folder: Path) -> dict[str, Any]:
    images = np.random.default_rng(0).integers(0, 256, size=(60, 4, 4))
    return {
        "path": _idx(folder / "images.gz", images),
        "labels_path": _idx(folder / "labels.gz", np.arange(60) % 3),
    }


def _mnist(folder: Path) -> dict[str, Any]:
    if not HAVE_MNIST:
        pytest.skip(f"shared MNIST files not found in {SHARED_MNIST}")
    return {"path": str(SHARED_MNIST)}


def _inline(folder: Path) -> dict[str, Any]:
    return {"X": [[i, i % 3] for i in range(12)], "y": [i % 2 for i in range(12)]}


def _images(folder: Path) -> dict[str, Any]:
    pytest.importorskip("PIL")
    from tests.support import make_shapes_folder

    return {"path": str(make_shapes_folder(folder / "shapes", per_class=10)), "size": [8, 8]}


def _nothing(folder: Path) -> dict[str, Any]:
    return {}


#: the data keys a small data set of each registered source needs (files written in ``folder``)
SAMPLE_DATA: dict[str, Callable[[Path], dict[str, Any]]] = {
    **dict.fromkeys(("digits", "iris", "wine", "breast_cancer", "diabetes"), _nothing),
    **dict.fromkeys(("xor", "moons", "circles", "blobs", "classification", "regression"), _nothing),
    "csv": _csv,
    "parquet": _parquet,
    "npz": _npz,
    "idx": _idx_files,
    "mnist": _mnist,
    "inline": _inline,
    "images": _images,
}

ZERO = [{"val_fraction": 0}, {"test_fraction": 0}, {"val_fraction": 0, "test_fraction": 0}]


@pytest.mark.parametrize("zero", ZERO, ids=["val0", "test0", "both0"])
@pytest.mark.parametrize("name", sorted(SOURCES))
def test_a_zero_fraction_is_no_such_split_for_every_source(
    tmp_path: Path, name: str, zero: dict[str, float]
) -> None:
    assert set(SAMPLE_DATA) == set(SOURCES)  # a new source needs its sample data here
    source = SOURCES[name]
    fractions = {k: v for k, v in zero.items() if k in source.keys}  # mnist has its own test set
    config = DataConfig(source=name, **SAMPLE_DATA[name](tmp_path), **fractions)
    task = "multiclass" if "multiclass" in source.tasks else "regression"
    data = load_dataset(config, task=task, seed=0)
    n_train, n_val, n_test = data.n_samples
    assert n_train > 0
    assert (n_val == 0) == (config.val_fraction == 0)
    assert (n_test == 0) == (config.test_fraction == 0 and not config.has_test_file)
    for X, y, n in ((data.X_val, data.y_val, n_val), (data.X_test, data.y_test, n_test)):
        assert X.shape == (n, data.n_features) and len(y) == n


# --- a run without a validation and a test split, end to end -----------------------------------


@pytest.fixture(scope="module")
def bare_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Result]:
    """The iris table trained with no validation and no test split, early stopping and a
    plateau schedule left at their default monitors."""
    out = tmp_path_factory.mktemp("bare") / "run"
    result = bpnn_cli(
        "train",
        IRIS,
        "--out",
        out,
        "--set",
        "data.val_fraction=0",
        "--set",
        "data.test_fraction=0",
        "--set",
        "train.early_stopping=true",
        "--set",
        "schedule=reduce_on_plateau",
        "--set",
        "train.epochs=4",
    )
    return out, result


def test_a_table_trains_without_validation_and_test_splits_and_says_what_follows_what(
    bare_run: tuple[Path, Result],
) -> None:
    run, result = bare_run
    assert result.exit_code == 0, result.output
    checked = bpnn_cli(
        "config", "check", IRIS, "--set", "data.val_fraction=0", "--set", "data.test_fraction=0"
    )
    assert checked.exit_code == 0 and checked.stdout.strip() == f"{IRIS}: ok", checked.output
    assert (
        "no validation split (data.val_fraction is 0): best.npz follows train_loss, early "
        "stopping follows train_loss, reduce_on_plateau follows train_loss"
    ) in result.stderr
    assert "no test split (data.test_fraction is 0)" in result.stderr
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    assert (summary["train_samples"], summary["val_samples"], summary["test_samples"]) == (
        150,
        0,
        0,
    )
    assert summary["best_train_loss"] is not None and "train_accuracy" in summary
    saved = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))
    assert saved["train"]["early_stopping"]["monitor"] == "train_loss"
    assert saved["schedule"]["monitor"] == "train_loss"


def test_eval_of_a_run_without_a_test_split_reports_its_training_split_and_says_so(
    bare_run: tuple[Path, Result],
) -> None:
    run, _ = bare_run
    result = bpnn_cli("eval", run / "checkpoints" / "best.npz", "--json")
    assert result.exit_code == 0, result.output
    assert "trained without a test split (data.test_fraction is 0)" in result.stderr
    metrics = json.loads(result.stdout)
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    assert metrics["train_loss"] == summary["train_loss"]
    assert metrics["train_samples"] == 150 and "test_loss" not in metrics


def test_resume_and_explain_a_run_without_validation_and_test_splits(
    bare_run: tuple[Path, Result], tmp_path: Path
) -> None:
    run, _ = bare_run
    resumed = bpnn_cli("resume", run, "--epochs", "6")
    assert resumed.exit_code == 0, resumed.output
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    assert summary["epochs_run"] == 6 and summary["test_samples"] == 0
    explained = bpnn_cli(
        "explain", run / "config.yaml", "--checkpoint", run / "checkpoints" / "best.npz", "--json"
    )
    assert explained.exit_code == 0, explained.output


def test_a_sweep_ranks_table_trials_without_validation_and_test_splits_by_train_loss(
    tmp_path: Path,
) -> None:
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(
        f"base: {IRIS}\nmetric: train_loss\nmethod: grid\nspace:\n"
        "  data.val_fraction: [0]\n  data.test_fraction: [0]\n  train.epochs: [2]\n",
        encoding="utf-8",
    )
    result = bpnn_cli("sweep", sweep, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "best.yaml").is_file()
    assert "best: trial 0 train_loss" in result.stdout


# --- monitors without a validation split ---------------------------------------------------------


def test_default_monitors_follow_the_training_loss_without_a_validation_split() -> None:
    raw = {"train": {"early_stopping": True}, "schedule": "reduce_on_plateau"}
    without = validate({**raw, "data": {"val_fraction": 0}})
    assert without.train.early_stopping.monitor == "train_loss"
    assert without.schedule.options["monitor"] == "train_loss"
    with_validation = validate(raw)  # unchanged where there is a validation split
    assert with_validation.train.early_stopping.monitor == "val_loss"
    assert with_validation.schedule.options["monitor"] == "val_loss"
    for named in (
        {"train": {"early_stopping": {"monitor": "val_loss"}}},
        {"schedule": {"name": "reduce_on_plateau", "monitor": "val_accuracy"}},
    ):
        with pytest.raises(
            ConfigError, match=re.escape("data.val_fraction is 0: no validation split")
        ):
            validate({**named, "data": {"val_fraction": 0}})


# --- config check refuses what train refuses ---------------------------------------------------


def _iris_rows(folder: Path, text: str = "") -> str:
    """A copy of examples/iris.csv in ``folder`` (with ``text`` appended)."""
    path = folder / "iris.csv"
    path.write_text((REPO / "examples" / "iris.csv").read_text(encoding="utf-8") + text)
    return str(path)


#: configs only the data shows to be wrong: (data and other sections, a fragment of the line)
DATA_FAULTS = {
    "missing-file": (lambda d: {"data": {"source": "csv", "path": str(d / "none.csv")}}, "none"),
    "no-target-column": (
        lambda d: {"data": {"source": "csv", "path": _iris_rows(d), "target": "kind"}},
        "no target column 'kind'",
    ),
    "binary-on-3-classes": (
        lambda d: {
            "data": {"source": "csv", "path": _iris_rows(d)},
            "loss": "binary_cross_entropy",
        },
        "exactly 2 classes",
    ),
    "class-weights": (
        lambda d: {
            "data": {"source": "csv", "path": _iris_rows(d)},
            "loss": {"name": "cross_entropy", "class_weights": [1.0, 2.0]},
        },
        "loss.class_weights",
    ),
    "missing-values": (
        lambda d: {"data": {"source": "csv", "path": _iris_rows(d, "5.0,,1.0,0.2,setosa\n")}},
        "missing values",
    ),
    "split-too-small": (
        lambda d: {"data": {"source": "csv", "path": _iris_rows(d), "val_fraction": 0.99}},
        "too few samples",
    ),
    "npz-key": (
        lambda d: {"data": {"source": "npz", "path": _npz(d)["path"], "x_key": "inputs"}},
        "no array 'inputs'",
    ),
    "generator-refuses": (
        lambda d: {"data": {"source": "moons", "options": {"noise": "loud"}}},
        "'moons' refused them",
    ),
    "initial-weights": (
        lambda d: {"model": {"initial_weights": str(d / "none.npz")}},
        "none.npz",
    ),
    "mnist-no-mirrors": (
        lambda d: {"data": {"source": "mnist", "path": str(d), "mirrors": []}},
        "data.mirrors is empty",
    ),
}


@pytest.mark.parametrize("fault", sorted(DATA_FAULTS))
def test_config_check_refuses_what_train_refuses_in_the_data_with_the_same_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    make, fragment = DATA_FAULTS[fault]
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump({"name": "bad", **make(tmp_path)}), encoding="utf-8")
    check = bpnn_cli("config", "check", config)
    train = bpnn_cli("train", config, "-q", "--out", tmp_path / "run")
    assert check.exit_code == train.exit_code != 0, (check.output, train.output)
    line = error_line(check)
    assert fragment in line
    assert error_line(train) == line
    assert not (tmp_path / "run").exists()


def test_config_check_does_not_download_mnist_and_says_the_data_is_unchecked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("config check tried to download")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    config = tmp_path / "mnist.yaml"
    folder = tmp_path / "mnist"
    config.write_text(f"data: {{source: mnist, path: {folder}}}\n", encoding="utf-8")
    result = bpnn_cli("config", "check", config)
    assert result.exit_code == 0, result.output
    note = "the data is not checked, train would download it first: 4 of 4 MNIST files missing"
    assert f"{note} in {folder}" in result.stderr
    assert not folder.exists()


# --- --set data.test_path on a config with test_fraction -----------------------------------------


def test_set_test_path_replaces_the_files_test_fraction(tmp_path: Path) -> None:
    test_file = tmp_path / "test.csv"
    rows = (REPO / "examples" / "iris.csv").read_text(encoding="utf-8").splitlines()
    test_file.write_text("\n".join(rows[:1] + rows[1::10]) + "\n", encoding="utf-8")
    config = load_config(IRIS, [f"data.test_path={test_file}"])  # iris.yaml has test_fraction
    assert config.data.test_path == str(test_file)
    data = load_dataset(config.data, task=config.task, seed=config.seed)
    assert data.n_samples[2] == len(rows[1::10])
    assert data.n_samples[0] + data.n_samples[1] == 150  # every row of iris.csv trains
    # and back: --set test_fraction on a config with a test file
    with_file = tmp_path / "with-file.yaml"
    with_file.write_text(
        f"data: {{source: csv, path: {REPO / 'examples' / 'iris.csv'}, test_path: {test_file}}}\n",
        encoding="utf-8",
    )
    assert load_config(with_file, ["data.test_fraction=0.3"]).data.test_path is None
    # both ways at once, in the file or on the command line, is still an error
    with pytest.raises(
        ConfigError, match=re.escape("data.test_fraction: does not apply with data.test_path")
    ):
        load_config(IRIS, [f"data.test_path={test_file}", "data.test_fraction=0.3"])
    both = tmp_path / "both.yaml"
    both.write_text(
        f"data: {{source: csv, path: {test_file}, test_path: {test_file}, test_fraction: 0.2}}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=re.escape("data.test_fraction: does not apply")):
        load_config(both)
    result = bpnn_cli("config", "check", IRIS, "--set", f"data.test_path={test_file}")
    assert result.exit_code == 0, result.output


# --- a failed MNIST download ------------------------------------------------------------------


def test_a_failed_mnist_download_names_data_path_and_bpnn_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("[Errno 101] Network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", unreachable)
    monkeypatch.setenv("BPNN_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(DataError) as info:
        load_dataset(DataConfig(source="mnist"), task="multiclass", seed=0)
    message = str(info.value)
    assert "could not download train-images-idx3-ubyte.gz" in message
    assert "Network is unreachable" in message
    assert "--set data.path=DIR" in message and "BPNN_DATA_DIR" in message
    config = tmp_path / "mnist.yaml"
    config.write_text("data: {source: mnist}\n", encoding="utf-8")
    line = error_line(bpnn_cli("train", config, "-q", "--out", tmp_path / "run"))
    assert "--set data.path=DIR" in line and "BPNN_DATA_DIR" in line
    assert not (tmp_path / "run").exists()
