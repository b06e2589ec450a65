"""The callbacks package (``bpnn.callbacks``): the registry a config names in
``train.callbacks``, the "best so far" base (``Monitor``), the finite-loss check every run has,
and the ``csv`` callback's ``metrics.csv`` against ``metrics.jsonl``, resumed runs included."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bpnn.callbacks import CALLBACKS, FiniteLossCheck, Monitor, NamedCallback
from bpnn.callbacks.csv_log import flat
from bpnn.errors import ConfigError, TrainingError
from bpnn.metrics import is_improvement
from bpnn.model import make_seeds
from bpnn.run import (
    RunDirectory,
    make_callbacks,
    make_trainer,
    prepare_run,
    read_metrics_file,
    run_training,
)
from bpnn.run.resume import resume_training
from tests.support import REPO, tiny_config


def test_the_registry_holds_every_named_callback_of_the_package() -> None:
    assert "csv" in CALLBACKS
    for name, cls in CALLBACKS.items():
        assert issubclass(cls, NamedCallback) and cls.name == name
        assert cls.__module__.startswith("bpnn.callbacks."), cls


def test_every_named_callback_is_documented() -> None:
    text = (REPO / "docs" / "config.md").read_text(encoding="utf-8")
    for name in CALLBACKS:
        assert f"`{name}`" in text, f"callback {name!r} is not in docs/config.md"


@pytest.mark.parametrize(
    ("callbacks", "message"),
    [
        (["cvs"], "train.callbacks[0]: unknown callback 'cvs' (did you mean 'csv'?)"),
        ([{"name": "csv", "sep": ";"}], "train.callbacks[0].sep: unknown option of callback"),
        (["csv", "csv"], "train.callbacks[1]: 'csv' is named twice"),
        ([{"name": "csv", "delimiter": "|"}], "train.callbacks[0].delimiter:"),
        ([{"delimiter": ";"}], "train.callbacks[0]"),
    ],
)
def test_a_bad_callback_is_one_error_naming_its_key(callbacks: list[Any], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        tiny_config(train={"callbacks": callbacks})
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_callback_is_a_name_or_a_mapping_and_round_trips() -> None:
    config = tiny_config(train={"callbacks": [{"name": "csv", "delimiter": ";"}]})
    assert config.train.callbacks[0].options == {"delimiter": ";"}
    assert tiny_config(train={"callbacks": ["csv"]}).train.callbacks[0].options == {
        "delimiter": ","
    }
    resolved = config.resolved()
    assert resolved["train"]["callbacks"] == [{"name": "csv", "delimiter": ";"}]
    assert tiny_config(**{"train": resolved["train"]}).resolved() == resolved


@given(
    values=st.lists(st.floats(allow_nan=False, allow_infinity=False, width=32), max_size=30),
    mode=st.sampled_from(["min", "max"]),
    min_delta=st.sampled_from([0.0, 0.01, 1.0]),
)
def test_a_monitor_keeps_the_best_so_far(values: list[float], mode: str, min_delta: float) -> None:
    monitor = Monitor("val_loss", mode, min_delta)
    best, best_epoch = None, None
    for epoch, value in enumerate(values, start=1):
        expected = is_improvement(value, best, mode, min_delta)
        assert monitor.improved(epoch, value) is expected
        if expected:
            best, best_epoch = value, epoch
        assert (monitor.best, monitor.best_epoch) == (best, best_epoch)
    again = Monitor("val_loss", mode, min_delta)
    again.load_state(monitor.state())
    assert (again.best, again.best_epoch) == (best, best_epoch)


@pytest.mark.parametrize("loss", [math.nan, math.inf, -math.inf])
def test_the_finite_loss_check_names_the_epoch_and_the_batch(loss: float) -> None:
    check = FiniteLossCheck()
    check.on_epoch_begin(4, {"lr": 0.1})
    check.on_backward_end(2, {"loss": 0.5})
    with pytest.raises(TrainingError, match=f"became {loss} at epoch 4, batch 2"):
        check.on_backward_end(2, {"loss": loss})


def test_every_trainer_checks_the_loss_first(tmp_path: Path) -> None:
    config = tiny_config()
    data, model = prepare_run(config)
    run = RunDirectory.create(tmp_path / "run", config.name, tmp_path)
    _, _, callbacks = make_callbacks(config, run, data, None)
    trainer = make_trainer(config, model, data, make_seeds(config.seed)[1], callbacks)
    assert isinstance(trainer.callbacks[0], FiniteLossCheck)
    assert sum(isinstance(c, FiniteLossCheck) for c in trainer.callbacks) == 1


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_diverging_run_stops_before_the_update_reaches_the_weights(tmp_path: Path) -> None:
    config = tiny_config(optimizer={"name": "sgd", "lr": 1e6}, train={"epochs": 5})
    with pytest.raises(TrainingError, match="training loss became"):
        run_training(config, tmp_path / "run")
    rows = read_metrics_file(tmp_path / "run" / "metrics.jsonl")
    assert all(math.isfinite(row["train_loss"]) for row in rows)


def csv_rows(path: Path, delimiter: str = ",") -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter=delimiter))


def assert_csv_matches_jsonl(run_dir: Path, delimiter: str = ",") -> None:
    expected = [flat(row) for row in read_metrics_file(run_dir / "metrics.jsonl")]
    rows = csv_rows(run_dir / "metrics.csv", delimiter)
    assert len(rows) == len(expected)
    for row, want in zip(rows, expected, strict=True):
        assert set(row) >= set(want)
        for key, value in want.items():
            if value is None:
                assert row[key] == ""
            else:
                assert float(row[key]) == value, key  # every digit: the same float back


def test_the_csv_callback_writes_every_epoch_of_metrics_jsonl(tmp_path: Path) -> None:
    config = tiny_config(train={"callbacks": [{"name": "csv", "delimiter": ";"}]})
    run_dir, _ = run_training(config, tmp_path / "run")
    assert_csv_matches_jsonl(run_dir, ";")
    header = (run_dir / "metrics.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header.startswith("epoch;train_loss;") and "health.0.grad_norm" in header


def test_a_named_callback_changes_no_metric(tmp_path: Path) -> None:
    plain, _ = run_training(tiny_config(), tmp_path / "plain")
    logged, _ = run_training(tiny_config(train={"callbacks": ["csv"]}), tmp_path / "logged")

    def metrics(run_dir: Path) -> list[dict[str, Any]]:
        rows = read_metrics_file(run_dir / "metrics.jsonl")
        return [{k: v for k, v in row.items() if k != "epoch_seconds"} for row in rows]

    assert metrics(plain) == metrics(logged)


def test_a_resumed_run_keeps_metrics_csv_equal_to_metrics_jsonl(tmp_path: Path) -> None:
    config = tiny_config(train={"epochs": 3, "callbacks": ["csv"]})
    run_dir, _ = run_training(config, tmp_path / "run")
    # a crash that tore the last CSV row and left a row of an epoch that will be trained again
    with (run_dir / "metrics.csv").open("a", encoding="utf-8") as handle:
        handle.write("4,0.5,0.")
    resume_training(run_dir, epochs=5)
    assert_csv_matches_jsonl(run_dir)
    assert len(csv_rows(run_dir / "metrics.csv")) == 5
