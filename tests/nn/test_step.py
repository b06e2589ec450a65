"""Specification of ``bpnn.nn.step``: the one optimizer step (global-norm clip, then update)."""

from __future__ import annotations

import ast

import numpy as np

from bpnn.nn.initializers import xavier_normal
from bpnn.nn.losses import make_loss
from bpnn.nn.network import Network
from bpnn.nn.optimizers import make_optimizer
from bpnn.nn.step import clip_by_global_norm, optimizer_step
from tests.support import PACKAGE


def test_clipping_scales_to_the_norm_only_above_it() -> None:
    gradient = np.array([3.0, 4.0])  # norm 5
    assert clip_by_global_norm(gradient, None) is False
    assert clip_by_global_norm(gradient, 5.0) is False
    np.testing.assert_array_equal(gradient, [3.0, 4.0])
    assert clip_by_global_norm(gradient, 1.0) is True
    np.testing.assert_allclose(gradient, [0.6, 0.8], rtol=1e-15)


def test_a_step_of_sgd_moves_by_lr_times_the_clipped_gradient() -> None:
    network = Network(
        [2, 1], [], make_loss("mse"), weight_init=xavier_normal, rng=np.random.default_rng(0)
    )
    optimizer = make_optimizer("sgd")
    optimizer.build(network.params, network.weight_slice)
    network.grads[:] = [3.0, 4.0, 0.0]  # norm 5: clipped to norm 1
    before = network.params.copy()
    assert optimizer_step(network, optimizer, 0.5, grad_clip=1.0) is True
    np.testing.assert_allclose(network.params, before - 0.5 * np.array([0.6, 0.8, 0.0]))
    np.testing.assert_allclose(network.grads, [0.6, 0.8, 0.0])  # what the update used


def test_only_the_step_module_calls_update_step_outside_the_engine() -> None:
    """The clip-then-update step is written once: nothing outside bpnn/nn calls update_step."""
    callers = []
    for path in PACKAGE.rglob("*.py"):
        if path.is_relative_to(PACKAGE / "nn"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr == "update_step":
                callers.append(str(path.relative_to(PACKAGE)))
    assert callers == []
