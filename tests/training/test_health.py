"""Specification of gradient and activation health (bpnn.training.health): the per-layer numbers in
every epoch's logs, the diagnoses, and that measuring them never changes training."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bpnn.config import Config, load_config, validate
from bpnn.nn.activations import ACTIVATIONS
from bpnn.nn.initializers import INITIALIZERS
from bpnn.nn.layers import EVAL, ActivationLayer
from bpnn.nn.losses import LOSSES
from bpnn.nn.network import Network
from bpnn.run import run_training
from bpnn.training.diagnoses import Diagnoser, diagnose
from bpnn.training.health import HealthMonitor, activation_health
from tests.support import PACKAGE, REPO

TINY: dict[str, Any] = {
    "name": "tiny",
    "seed": 0,
    "data": {"source": "iris"},
    "model": {"hidden": [8, 6], "activation": "relu"},
    "optimizer": {"name": "adam", "lr": 0.01},
    "train": {"epochs": 3, "batch_size": 16},
}
LAYER_KEYS = {"grad_norm", "update_ratio", "dead_fraction", "saturated_fraction"}


def tiny(**train: Any) -> Config:
    raw = copy.deepcopy(TINY)
    raw["train"].update(train)
    return validate(raw)


def metrics(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def network(activation: str, sizes: list[int]) -> Network:
    return Network(
        sizes,
        [ACTIVATIONS[activation]()] * (len(sizes) - 2),
        LOSSES["cross_entropy"](),
        weight_init=INITIALIZERS["he_normal"],
        rng=np.random.default_rng(0),
        dtype=np.float64,
    )


def test_every_epoch_has_health_for_every_layer(tmp_path: Path):
    run_training(tiny(), tmp_path / "run")
    rows = metrics(tmp_path / "run")
    assert [sorted(row["health"]) for row in rows] == [["0", "1", "2"]] * 3
    for row in rows:
        for layer, values in row["health"].items():
            assert set(values) == LAYER_KEYS
            assert values["grad_norm"] > 0 and values["update_ratio"] > 0
            if layer == "2":  # the output layer has no hidden activation
                assert values["dead_fraction"] is None
            else:
                assert 0 <= values["dead_fraction"] <= 1
            assert values["saturated_fraction"] is None  # relu does not saturate
    assert "clipped_fraction" not in rows[0]


def test_health_never_changes_training(tmp_path: Path):
    run_training(tiny(), tmp_path / "on")
    run_training(tiny(health=False), tmp_path / "off")
    on, off = metrics(tmp_path / "on"), metrics(tmp_path / "off")
    assert "health" not in off[0]
    strip = {"health", "epoch_seconds"}
    assert [{k: v for k, v in r.items() if k not in strip} for r in on] == [
        {k: v for k, v in r.items() if k != "epoch_seconds"} for r in off
    ]
    from bpnn import checkpoint

    a = checkpoint.load(tmp_path / "on" / "checkpoints" / "last.npz")
    b = checkpoint.load(tmp_path / "off" / "checkpoints" / "last.npz")
    for name in a.params:
        assert np.array_equal(a.params[name], b.params[name])
    summary = json.loads((tmp_path / "on" / "summary.json").read_text())
    assert summary["diagnoses"] == []
    assert "diagnoses" not in json.loads((tmp_path / "off" / "summary.json").read_text())


def test_dead_fraction_counts_units_never_positive_on_the_sample():
    net = network("relu", [2, 4, 3])
    W = net.parameters()["0.weight"]
    W[...] = [[1.0, -1.0, 1.0, -1.0], [1.0, -1.0, 0.0, -2.0]]  # units 1 and 3 never positive
    net.parameters()["0.bias"][...] = 0.0
    X = np.array([[1.0, 0.5], [0.2, 0.1], [2.0, 3.0]])  # positive inputs
    layers = [layer for _, layer in net.layers if isinstance(layer, ActivationLayer)]
    [(dead, saturated)] = activation_health(layers, X, lambda chunk: net.forward(chunk, EVAL))
    assert dead == 0.5 and saturated is None


def test_saturated_fraction_counts_units_stuck_at_a_bound():
    net = network("sigmoid", [1, 4, 2])
    net.parameters()["0.weight"][...] = [[50.0, -50.0, 0.1, 1.0]]
    net.parameters()["0.bias"][...] = [0.0, 0.0, 0.0, 0.0]
    X = np.array([[1.0], [2.0], [3.0]])
    # unit 0 is at 1 and unit 1 at 0 on every row; units 2 and 3 are not near a bound
    layers = [layer for _, layer in net.layers if isinstance(layer, ActivationLayer)]
    [(dead, saturated)] = activation_health(layers, X, lambda chunk: net.forward(chunk, EVAL))
    assert dead is None and saturated == 0.5


def test_gradient_norm_and_update_ratio_match_a_hand_computation(tmp_path: Path):
    """One batch per epoch with plain SGD: the norm is ||dL/dW|| of that batch and the update
    ratio is lr * ||dL/dW|| / ||W||."""
    from bpnn.model import make_seeds
    from bpnn.run import build_model, load_data, make_trainer

    config = validate(
        {**TINY, "optimizer": {"name": "sgd", "lr": 0.1}, "train": {"epochs": 1, "batch_size": 200}}
    )
    data = load_data(config)
    init_rng, shuffle_rng = make_seeds(config.seed)
    model = build_model(config, data, init_rng)
    W0 = model.network.parameters()["0.weight"].copy()
    order = make_seeds(config.seed)[1].permutation(len(data.X_train))
    loss = model.network.loss_and_gradients(data.X_train[order], data.y_train[order])
    assert math.isfinite(loss)
    expected_norm = float(np.linalg.norm(model.network.gradients()["0.weight"]))
    monitor = HealthMonitor()
    trainer = make_trainer(config, model, data, shuffle_rng, [monitor])
    end = trainer.fit()
    health = end["health"]["0"]
    assert health["grad_norm"] == pytest.approx(expected_norm, rel=1e-5)
    assert health["update_ratio"] == pytest.approx(
        0.1 * expected_norm / np.linalg.norm(W0), rel=1e-5
    )


def test_clipped_fraction_is_logged_with_gradient_clipping(tmp_path: Path):
    run_training(tiny(grad_clip=1e-6), tmp_path / "run")
    rows = metrics(tmp_path / "run")
    assert [row["clipped_fraction"] for row in rows] == [1.0] * 3
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert any(
        d["kind"] == "exploding_gradients" and d["layer"] is None for d in summary["diagnoses"]
    )


def epoch(number: int, **layers: dict[str, float | None]) -> dict[str, Any]:
    full = {
        key: {
            "grad_norm": 1.0,
            "update_ratio": 1e-3,
            "dead_fraction": None,
            "saturated_fraction": None,
            **values,
        }
        for key, values in layers.items()
    }
    return {"epoch": number, "lr": 0.01, "health": full}


def test_each_diagnosis_is_said_once_and_names_its_layer():
    diagnoser = Diagnoser()
    first = diagnoser.update(epoch(1, **{"0": {"dead_fraction": 0.75}, "1": {}}))
    again = diagnoser.update(epoch(2, **{"0": {"dead_fraction": 0.8}, "1": {}}))
    assert [(d.kind, d.layer, d.epoch) for d in first] == [("dying_relu", 0, 1)]
    assert again == []
    assert "layer 0" in first[0].message and "leaky_relu" in first[0].message


@pytest.mark.parametrize(
    ("rows", "kind", "layer"),
    [
        (
            [epoch(1, **{"0": {"grad_norm": 1e-6}, "1": {"grad_norm": 0.1}})],
            "vanishing_gradients",
            0,
        ),
        (
            [epoch(1, **{"0": {"grad_norm": 1.0}}), epoch(2, **{"0": {"grad_norm": 20.0}})],
            "exploding_gradients",
            0,
        ),
        ([epoch(1, **{"0": {"saturated_fraction": 0.9}})], "saturation", 0),
    ],
)
def test_diagnoses_fire_past_their_thresholds(rows, kind, layer):
    found = diagnose(rows)
    assert [(d.kind, d.layer) for d in found] == [(kind, layer)]


def test_a_healthy_history_has_no_diagnosis():
    rows = [epoch(n, **{"0": {"grad_norm": 0.1}, "1": {"grad_norm": 0.2}}) for n in range(1, 5)]
    assert diagnose(rows) == []


# --- the learning-rate diagnoses: evidence from the loss curve, steps at the base rate ----------


def curve(
    losses: list[float],
    ratios: float | list[float] = 1e-3,
    lrs: float | list[float] = 0.01,
) -> list[dict[str, Any]]:
    """The rows of a run of two dense layers whose training loss in epoch ``e`` is
    ``losses[e - 1]``, both layers with the update ratio ``ratios`` (one for each epoch, or one
    for all) at the rate ``lrs`` (likewise)."""
    n = len(losses)
    ratios = ratios if isinstance(ratios, list) else [ratios] * n
    lrs = lrs if isinstance(lrs, list) else [lrs] * n
    rows = []
    for number, (loss, ratio, lr) in enumerate(zip(losses, ratios, lrs, strict=True), 1):
        row = epoch(number, **{"0": {"update_ratio": ratio}, "1": {"update_ratio": ratio}})
        rows.append({**row, "lr": lr, "train_loss": loss})
    return rows


def kinds(rows: list[dict[str, Any]]) -> list[tuple[str, int | None, int]]:
    return [(d.kind, d.layer, d.epoch) for d in diagnose(rows)]


def test_a_healthy_curve_with_a_cosine_tail_has_no_diagnosis():
    """configs/mnist.yaml's shape: the loss falls fast and levels off near its floor while the
    cosine schedule takes the rate from 1e-3 down to 6e-06; the steps shrink with the rate."""
    epochs = 20
    lrs = [1e-3 * (1 + math.cos(math.pi * e / epochs)) / 2 for e in range(epochs)]
    losses = [0.05 + 0.3 * 0.7**e for e in range(epochs)]
    ratios = [1e-3 * lr / lrs[0] for lr in lrs]  # the step at the base rate stays 1e-3
    assert ratios[-1] < 1e-5
    assert kinds(curve(losses, ratios, lrs)) == []


def test_a_rising_loss_with_large_steps_is_a_rate_too_high():
    [found] = diagnose(curve([1.0, 0.8, 0.9, 1.1, 1.3], ratios=0.05, lrs=0.3))
    assert (found.kind, found.layer, found.epoch) == ("lr_too_high", None, 5)
    assert "the training loss has risen above where it started" in found.message
    assert "optimizer.lr=0.3 is likely too high" in found.message


def test_an_oscillating_loss_with_large_steps_is_a_rate_too_high():
    [found] = diagnose(curve([1.0, 0.5, 0.8, 0.45, 0.7, 0.4], ratios=0.05))
    assert (found.kind, found.layer, found.epoch) == ("lr_too_high", None, 5)
    assert "oscillates (it rose in 2 of the last 4 epochs" in found.message


def test_a_loss_that_is_not_finite_with_large_steps_is_a_rate_too_high():
    rows = curve([1.0, 0.8, 0.7], ratios=0.05)
    rows[2]["val_loss"] = None  # metrics.jsonl's null: the loss was inf or nan
    [found] = diagnose(rows)
    assert (found.kind, found.epoch) == ("lr_too_high", 3)
    assert found.message.startswith("the validation loss is not finite in epoch 3")


def test_a_flat_high_loss_with_tiny_steps_is_a_rate_too_low():
    [found] = diagnose(curve([2.30 - 0.001 * e for e in range(10)], ratios=1e-6, lrs=1e-5))
    assert (found.kind, found.layer, found.epoch) == ("lr_too_low", None, 6)
    assert "the training loss fell by 0.2% in the last 5 epochs" in found.message
    assert "optimizer.lr=1e-05 is likely too low" in found.message


@pytest.mark.parametrize(
    "rows",
    [
        # configs/textbook-digits.yaml: one step of 1.2 of the weights, and the loss falls
        curve([2.36, 0.93, 0.92, 0.90, 0.85, 0.6, 0.3, 0.1], ratios=[1.2] + [0.03] * 7),
        # tiny steps, but the loss has come down to a quarter of its start: converged
        curve([1.0, 0.5, 0.3, 0.25, 0.24, 0.24, 0.24, 0.24], ratios=1e-6),
    ],
    ids=["large-steps-falling-loss", "tiny-steps-converged-loss"],
)
def test_step_sizes_alone_are_no_diagnosis(rows):
    assert kinds(rows) == []


def test_the_rate_is_judged_at_the_base_rate_not_the_schedules():
    """A step schedule drops the rate four decades after epoch 3: the steps shrink with it, and
    the loss is flat; at the base rate the steps are still the healthy 1e-3."""
    lrs = [1e-2] * 3 + [1e-6] * 7
    ratios = [1e-3 * lr / 1e-2 for lr in lrs]
    losses = [2.3] * 10
    assert kinds(curve(losses, ratios, lrs)) == []
    # the same steps at a constant rate of 1e-6 are a rate too low, said at that base rate
    [found] = diagnose(curve(losses, ratios, lrs=1e-6))
    assert (found.kind, found.epoch) == ("lr_too_low", 8)
    assert "optimizer.lr=1e-06 is likely too low" in found.message


def test_the_base_rate_given_wins_over_the_rates_seen():
    """During a warmup the rate so far is below optimizer.lr: steps of 1e-6 at a rate of 1e-5
    are steps of 1e-3 at the base rate 1e-2 (what the health monitor passes in)."""
    rows = curve([2.3] * 10, ratios=1e-6, lrs=1e-5)
    found = []
    diagnoser = Diagnoser(base_lr=1e-2)
    for row in rows:
        found += diagnoser.update(row)
    assert found == []
    assert [d.kind for d in diagnose(rows)] == ["lr_too_low"]


def test_a_stall_that_vanishing_gradients_explain_is_not_a_rate_too_low():
    """configs/vanishing.yaml's pattern: the steps are tiny because the gradients are."""
    rows = curve([2.30] * 8, ratios=1e-7)
    for row in rows:
        row["health"]["0"]["grad_norm"] = 1e-9
        row["health"]["1"]["grad_norm"] = 1e-3
    assert kinds(rows) == [("vanishing_gradients", 0, 1)]


@given(
    start=st.floats(1e-3, 1e3),
    epochs=st.lists(
        st.tuples(st.floats(0.0, 0.9), st.floats(1e-9, 1e3), st.floats(1e-7, 10.0)),
        min_size=1,
        max_size=40,
    ),
)
def test_a_loss_that_never_rises_never_gets_a_rate_too_high(start, epochs):
    """Whatever the steps and the rates: a training loss that falls (or stays) every epoch is
    no evidence of a rate too high."""
    losses, loss = [], start
    for drop, _, _ in epochs:
        losses.append(loss)
        loss *= 1 - drop
    rows = curve(losses, [ratio for _, ratio, _ in epochs], [lr for _, _, lr in epochs])
    assert [d.message for d in diagnose(rows) if "too high" in d.message] == []


@pytest.mark.slow
def test_vanishing_config_is_diagnosed_and_its_twin_is_not(tmp_path: Path):
    messages: list[str] = []
    _, summary = run_training(
        load_config(REPO / "configs" / "vanishing.yaml", ["train.epochs=2"]),
        tmp_path / "vanishing",
        log=messages.append,
    )
    kinds = {d["kind"] for d in summary["diagnoses"]}
    assert "vanishing_gradients" in kinds
    assert any(m.startswith("diagnosis (vanishing_gradients): layer 0") for m in messages)
    _, twin = run_training(
        load_config(REPO / "configs" / "vanishing-fixed.yaml", ["train.epochs=2"]),
        tmp_path / "fixed",
    )
    assert "vanishing_gradients" not in {d["kind"] for d in twin["diagnoses"]}


def test_diagnose_command_prints_the_table_and_the_json(tmp_path: Path):
    from typer.testing import CliRunner

    from bpnn.cli import app

    run_training(tiny(), tmp_path / "run")
    runner = CliRunner()
    table = runner.invoke(app, ["diagnose", str(tmp_path / "run")])
    assert table.exit_code == 0, table.output
    assert "grad norm" in table.output and "update ratio" in table.output
    as_json = runner.invoke(app, ["diagnose", str(tmp_path / "run"), "--json"])
    parsed = json.loads(as_json.stdout)
    assert [row["epoch"] for row in parsed["health"]] == [1, 2, 3]
    assert set(parsed["health"][0]["layers"]["0"]) == LAYER_KEYS
    assert parsed["diagnoses"] == []


def test_plot_draws_the_health_figure(tmp_path: Path):
    run_training(tiny(), tmp_path / "run")
    assert (tmp_path / "run" / "plots" / "health.png").is_file()


def test_resumed_run_keeps_its_diagnoses_and_says_them_once(tmp_path: Path):
    from bpnn.run import resume_training

    config = tiny(grad_clip=1e-6)
    said: list[str] = []
    run_training(config, tmp_path / "run", log=said.append)
    summary = resume_training(tmp_path / "run", epochs=5, log=said.append)
    assert sum("clipping was active" in m for m in said) == 1
    assert [d["kind"] for d in summary["diagnoses"]] == ["exploding_gradients"]


def test_summary_and_diagnose_judge_the_update_ratios_at_the_configs_base_rate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A run stopped inside its warmup has seen only a fraction of ``optimizer.lr``: the replay
    behind summary.json and ``bpnn diagnose`` judges at the config's rate, as the health callback
    did during training, not at the largest ``lr`` of the metrics."""
    from typer.testing import CliRunner

    import bpnn.run.pipeline as pipeline
    from bpnn.cli import app

    seen: list[float | None] = []

    def recording(history: Any, base_lr: float | None = None) -> list[Any]:
        seen.append(base_lr)
        return diagnose(history, base_lr=base_lr)

    monkeypatch.setattr(pipeline, "diagnose", recording)
    raw = copy.deepcopy(TINY)
    raw["schedule"] = {"name": "constant", "warmup_epochs": 5}
    raw["train"]["epochs"] = 6
    raw["train"]["early_stopping"] = {"monitor": "train_loss", "patience": 1, "min_delta": 10.0}
    config = validate(raw)  # stopped early at epoch 2, inside its warmup: never at the lr
    run_training(config, tmp_path / "run")
    result = CliRunner().invoke(app, ["diagnose", str(tmp_path / "run"), "--json"])
    assert result.exit_code == 0, result.output
    largest = max(row["lr"] for row in pipeline.RunDirectory(tmp_path / "run").read_metrics())
    assert largest < config.optimizer.lr
    assert seen == [config.optimizer.lr, config.optimizer.lr]


def test_each_activation_says_itself_whether_its_units_die_or_saturate() -> None:
    """The health report reads the traits from the activation classes (it listed the names):
    a new activation declares them where it is defined."""
    from bpnn.nn.activations import ACTIVATIONS

    dying = {name for name, cls in ACTIVATIONS.items() if cls.can_die}
    saturating = {name: cls.saturates_at for name, cls in ACTIVATIONS.items() if cls.saturates_at}
    assert dying == {"relu", "leaky_relu", "elu"}
    assert saturating == {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0)}
    assert "RELU_FAMILY" not in (PACKAGE / "training" / "health.py").read_text(encoding="utf-8")
