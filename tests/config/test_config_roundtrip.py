"""Every resolved config loads back as the same config: ``Config.resolved()``, its YAML
(``config.yaml``, ``bpnn config show``) and the copy in a checkpoint, for the shipped configs,
for generated ones, and for real runs of every kind of data source (train -> eval -> predict ->
resume)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from bpnn import checkpoint
from bpnn.cli import app
from bpnn.config import Config, load_config, validate
from bpnn.data import SOURCES
from bpnn.metrics import epoch_metric_names
from bpnn.nn.activations import ACTIVATIONS
from bpnn.nn.initializers import INITIALIZERS
from bpnn.nn.losses import LOSSES
from tests.support import REPO

runner = CliRunner()


def assert_loads_back(config: Config, folder: Path) -> None:
    """The resolved config comes back unchanged from every place a run keeps it."""
    resolved = config.resolved()
    assert validate(resolved).resolved() == resolved  # plain data
    assert validate(resolved) == config

    path = folder / "config.yaml"  # YAML, as a run saves it
    path.write_text(config.to_yaml())
    assert load_config(path).resolved() == resolved

    shown = runner.invoke(app, ["config", "show", str(path)])  # what `config show` prints
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines(True)  # a table's target and features follow as comments
    assert "".join(line for line in lines if not line.startswith("#")) == config.to_yaml()

    saved = folder / "saved.npz"  # the copy in a checkpoint (JSON inside the .npz)
    saved.unlink(missing_ok=True)
    contents = checkpoint.CheckpointContents(
        config=resolved, epoch=1, task=config.task, params={"0.weight": np.zeros((1, 1))}
    )
    checkpoint.save(saved, contents)
    assert validate(checkpoint.load(saved).config).resolved() == resolved


# --- the shipped configs ----------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_config_loads_back_as_itself(path: Path, tmp_path: Path):
    assert_loads_back(load_config(path), tmp_path)


# --- generated configs ------------------------------------------------------------------------

FILES = "/data/files"  # never read: validating a config does not load its data
BUILTIN = [name for name, source in SOURCES.items() if not source.required and name != "mnist"]


@st.composite
def data_sections(draw: st.DrawFn) -> dict[str, Any]:
    source = draw(st.sampled_from([*BUILTIN, "csv", "npz", "idx", "mnist"]))
    data: dict[str, Any] = {"source": source}
    test_file = False
    if source == "csv":
        data["path"] = f"{FILES}/train.csv"
        if draw(st.booleans()):
            data["target"] = "label"
        if draw(st.booleans()):
            data["features"] = draw(st.lists(st.sampled_from("abcdef"), min_size=1, unique=True))
    if source == "npz":
        data["path"] = f"{FILES}/train.npz"
        if draw(st.booleans()):
            data["x_key"], data["y_key"] = "inputs", "targets"
    if source == "idx":
        data["path"], data["labels_path"] = f"{FILES}/img.idx", f"{FILES}/lab.idx"
    if source in ("csv", "npz", "idx") and draw(st.booleans()):
        test_file = True
        data["test_path"] = f"{FILES}/test.{source}"
        if source == "idx":
            data["test_labels_path"] = f"{FILES}/test-lab.idx"
    if source == "mnist":
        test_file = True
        if draw(st.booleans()):
            data["path"] = f"{FILES}/mnist"
    if SOURCES[source].keys >= {"options"} and draw(st.booleans()):
        data["options"] = {"n_samples": draw(st.integers(50, 500))}
    if not test_file and draw(st.booleans()):
        data["test_fraction"] = draw(st.sampled_from([0.1, 0.2, 0.35]))
    if draw(st.booleans()):
        data["val_fraction"] = draw(st.sampled_from([0.0, 0.1, 0.25]))
    if draw(st.booleans()):
        data["scale"] = draw(st.sampled_from(["standard", "minmax", "pixels", "none"]))
    return data


ACTIVATION_CHOICES = [
    *[name for name in ACTIVATIONS if name not in ("leaky_relu", "elu")],
    {"name": "leaky_relu", "slope": 0.2},
    {"name": "elu", "alpha": 0.5},
    "leaky_relu",
]
OPTIMIZER_CHOICES = [
    {"name": "sgd"},
    {"name": "momentum", "momentum": 0.8, "dampening": 0.1},
    {"name": "nesterov"},
    {"name": "rmsprop", "rho": 0.9, "centered": True},
    {"name": "adagrad", "eps": 1e-9},
    {"name": "adam", "beta1": 0.85, "amsgrad": True},
    {"name": "adam"},
    {"name": "adamw", "beta2": 0.99},
]


@st.composite
def raw_configs(draw: st.DrawFn) -> dict[str, Any]:
    data = draw(data_sections())
    task = draw(st.sampled_from(SOURCES[data["source"]].tasks))
    if task == "multilabel":  # binary_cross_entropy on several 0/1 target columns
        if data["source"] == "csv":
            data["target"] = ["yes1", "yes2"]
        else:  # npz: the file's 2-D y would say so, and validating never reads it
            task = "binary"
    loss_task = "binary" if task == "multilabel" else task
    loss_name = draw(st.sampled_from([n for n, loss in LOSSES.items() if loss.task == loss_task]))
    loss: Any = loss_name
    if loss_name == "cross_entropy" and draw(st.booleans()):
        loss = {"name": loss_name, "label_smoothing": 0.1}
    if loss_name == "huber" and draw(st.booleans()):
        loss = {"name": loss_name, "delta": 2.0}
    if task == "regression" and draw(st.booleans()):
        data["scale_target"] = draw(st.booleans())

    hidden = draw(st.lists(st.integers(1, 64), min_size=1, max_size=3))
    model: dict[str, Any] = {"hidden": hidden}
    if draw(st.booleans()):
        model["activations"] = draw(
            st.lists(
                st.sampled_from(ACTIVATION_CHOICES), min_size=len(hidden), max_size=len(hidden)
            )
        )
    elif draw(st.booleans()):
        model["activation"] = draw(st.sampled_from(ACTIVATION_CHOICES))
    if draw(st.booleans()):
        model["init"] = draw(st.sampled_from([*INITIALIZERS, {"name": "normal", "std": 0.1}]))
    if draw(st.booleans()):
        model["batch_norm"] = draw(st.booleans())
    if draw(st.booleans()):
        rates = st.sampled_from([0.0, 0.1, 0.5])
        model["dropout"] = draw(rates | st.lists(rates, min_size=len(hidden), max_size=len(hidden)))

    optimizer = dict(draw(st.sampled_from(OPTIMIZER_CHOICES)))
    optimizer["lr"] = draw(st.sampled_from([1e-4, 0.001, 0.05, 1.0]))
    if draw(st.booleans()):
        optimizer["weight_decay"] = draw(st.sampled_from([0.0, 1e-4, 0.01]))

    has_validation = data.get("val_fraction", 0.1) > 0
    metrics = epoch_metric_names(task, has_validation)
    monitor = draw(st.sampled_from(metrics))
    epochs = draw(st.integers(2, 100))  # more than the one warmup epoch below
    schedule = draw(
        st.sampled_from(
            [
                "constant",
                {"name": "step", "step_size": 3, "gamma": 0.5},
                {"name": "exponential", "gamma": 0.9, "warmup_epochs": 1},
                {"name": "cosine", "min_lr": 1e-5},
                {"name": "reduce_on_plateau", "monitor": monitor, "patience": 2},
            ]
        )
    )
    train: dict[str, Any] = {"epochs": epochs}
    if draw(st.booleans()):
        train["batch_size"] = draw(st.integers(1, 256))
    if draw(st.booleans()):
        train["shuffle"] = draw(st.booleans())
    if draw(st.booleans()):
        train["grad_clip"] = draw(st.sampled_from([0.5, 5.0]))
    if draw(st.booleans()):
        train["dtype"] = draw(st.sampled_from(["float32", "float64"]))
    stopping = draw(st.sampled_from([None, True, False, "custom"]))
    if stopping == "custom":
        train["early_stopping"] = {
            "monitor": monitor,
            "patience": draw(st.integers(1, 20)),
            "min_delta": draw(st.sampled_from([0.0, 1e-3])),
            "restore_best": draw(st.booleans()),
        }
    elif stopping is not None:
        train["early_stopping"] = stopping and has_validation  # the default monitor: val_loss

    raw = {
        "name": draw(st.sampled_from(["run", "exp-1", "a.b_c"])),
        "seed": draw(st.integers(0, 2**32)),
        "data": data,
        "model": model,
        "loss": loss,
        "optimizer": optimizer,
        "schedule": schedule,
        "train": train,
    }
    for key in ("name", "seed", "schedule"):  # these may be left to their defaults
        if draw(st.booleans()):
            del raw[key]
    if loss == "cross_entropy" and draw(st.booleans()):
        del raw["loss"]  # the default loss
    return raw


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=raw_configs())
def test_every_valid_config_loads_back_as_itself(raw: dict[str, Any], tmp_path_factory):
    config = validate(raw)
    assert_loads_back(config, tmp_path_factory.mktemp("roundtrip"))


@settings(max_examples=60, deadline=None)
@given(raw=raw_configs())
def test_a_resolved_config_is_a_fixed_point_of_validate(raw: dict[str, Any]):
    resolved = validate(raw).resolved()
    text = yaml.safe_dump(resolved, sort_keys=False)
    assert validate(yaml.safe_load(text)).resolved() == resolved


# --- real runs of every kind of source: train -> eval -> predict -> resume --------------------


def idx_bytes(array: np.ndarray) -> bytes:
    """``array`` (uint8) as an IDX file."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    return header + np.ascontiguousarray(array, np.uint8).tobytes()


def three_classes(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` samples of 4 features in 3 separable classes."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    X = rng.normal(size=(n, 4)) + 3.0 * y[:, None]
    return X, y


def write_csv(path: Path, X: np.ndarray, y: np.ndarray) -> None:
    names = np.array(["red", "green", "blue"])
    rows = ["a,b,c,d,colour"] + [
        ",".join(f"{v:.4f}" for v in x) + f",{names[label]}" for x, label in zip(X, y, strict=True)
    ]
    path.write_text("\n".join(rows) + "\n")


def make_source(kind: str, folder: Path) -> tuple[dict[str, Any], Path]:
    """A data section of ``kind`` with its files written into ``folder``, and a file of inputs
    for ``bpnn predict``."""
    X, y = three_classes(150, seed=1)
    X_test, y_test = three_classes(45, seed=2)
    if kind == "csv":
        write_csv(folder / "train.csv", X, y)
        write_csv(folder / "test.csv", X_test, y_test)
        data = {"source": "csv", "path": "train.csv", "test_path": "test.csv", "target": "colour"}
        return data, folder / "test.csv"
    if kind == "npz":
        np.savez(folder / "train.npz", X=X, y=y)
        np.savez(folder / "test.npz", X=X_test, y=y_test)
        return {"source": "npz", "path": "train.npz", "test_path": "test.npz"}, folder / "test.npz"
    if kind == "idx":
        images = np.clip(X * 20 + 40, 0, 255).astype(np.uint8).reshape(150, 2, 2)
        test_images = np.clip(X_test * 20 + 40, 0, 255).astype(np.uint8).reshape(45, 2, 2)
        for name, array in [
            ("img.idx", images),
            ("lab.idx", y.astype(np.uint8)),
            ("test-img.idx", test_images),
            ("test-lab.idx", y_test.astype(np.uint8)),
        ]:
            (folder / name).write_bytes(idx_bytes(array))
        data = {
            "source": "idx",
            "path": "img.idx",
            "labels_path": "lab.idx",
            "test_path": "test-img.idx",
            "test_labels_path": "test-lab.idx",
        }
        return data, folder / "test-img.idx"
    if kind == "csv-fraction":  # no test file: the test split is a fraction of path
        write_csv(folder / "train.csv", X, y)
        return {"source": "csv", "path": "train.csv", "test_fraction": 0.25}, folder / "train.csv"
    np.savez(folder / "inputs.npz", X=X[:10])  # iris: 4 features too
    return {"source": "iris"}, folder / "inputs.npz"


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["csv", "npz", "idx", "csv-fraction", "builtin"])
def test_a_run_of_every_source_evaluates_predicts_and_resumes(kind: str, tmp_path: Path):
    data, inputs = make_source(kind, tmp_path)
    config_path = tmp_path / "config.yaml"
    config_path.write_text(
        yaml.safe_dump(
            {
                "data": data,
                "model": {"hidden": [8], "dropout": 0.1},
                "optimizer": {"name": "adam", "lr": 0.05},
                "train": {"epochs": 2, "batch_size": 16},
            }
        )
    )
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", str(config_path), "--out", str(run), "-q"])
    assert result.exit_code == 0, result.output

    # config.yaml, `config show` of it and the checkpoints' copy: one config
    saved = load_config(run / "config.yaml")
    assert saved.resolved() == load_config(config_path).resolved()
    shown = runner.invoke(app, ["config", "show", str(run / "config.yaml")])
    assert shown.exit_code == 0, shown.output
    shown_config = "".join(
        line for line in shown.output.splitlines(True) if not line.startswith("#")
    )
    assert shown_config == (run / "config.yaml").read_text()  # (a table's features: comments)
    for which in ("last", "best"):
        in_checkpoint = checkpoint.load(run / "checkpoints" / f"{which}.npz").config
        assert validate(in_checkpoint).resolved() == saved.resolved() == in_checkpoint
    assert ("test_fraction" in saved.resolved()["data"]) == (kind in ("csv-fraction", "builtin"))

    evaluated = runner.invoke(app, ["eval", str(run / "checkpoints" / "best.npz"), "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    summary = json.loads((run / "summary.json").read_text())
    assert json.loads(evaluated.stdout)["test_loss"] == summary["test_loss"]

    predicted = runner.invoke(app, ["predict", str(run / "checkpoints" / "best.npz"), str(inputs)])
    assert predicted.exit_code == 0, predicted.output
    assert len(predicted.output.strip().splitlines()) > 1

    resumed = runner.invoke(app, ["resume", str(run), "--epochs", "3", "-q"])
    assert resumed.exit_code == 0, resumed.output
    assert load_config(run / "config.yaml").train.epochs == 3
    assert checkpoint.load(run / "checkpoints" / "last.npz").epoch == 3
    # and the saved config trains again, as it is
    again = runner.invoke(
        app, ["train", str(run / "config.yaml"), "--out", str(tmp_path / "b"), "-q"]
    )
    assert again.exit_code == 0, again.output


# --- what bpnn writes as YAML, it reads back ---------------------------------------------------

#: strings that a YAML reader may take for something else: numbers in every spelling,
#: booleans and nulls of YAML 1.1, infinities
LOOKALIKES = st.sampled_from(
    [
        "1e-3",
        "1E3",
        "-2e+5",
        ".5",
        "1_000",
        "0x1F",
        "0o17",
        "inf",
        ".inf",
        "-.Inf",
        ".nan",
        "yes",
        "No",
        "on",
        "null",
        "~",
        "",
        "12:30",
        "2024-01-01",
        "3.",
        "+1",
        "=",
        "<<",
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False)
    | LOOKALIKES
    | st.text(max_size=10)
)
DATA = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=6) | LOOKALIKES, inner, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(data=DATA)
def test_dump_yaml_is_read_back_by_the_config_reader_as_it_was(data: Any) -> None:
    """config.yaml, best.yaml and a sweep's sweep.yaml are written by ``dump_yaml``: a string
    such as "1e-3", which bpnn's reader takes for a number when plain, comes back a string."""
    from bpnn.config.reading import dump_yaml, parse_yaml

    assert parse_yaml(dump_yaml(data), "dumped") == data
