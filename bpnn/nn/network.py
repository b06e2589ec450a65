"""The multilayer perceptron: a list of layers and a loss, with forward and backward passes.

For hidden layer ``l`` the forward pass computes ``z_l = a_{l-1} @ W_l + b_l`` and
``a_l = g(z_l)`` (optionally batch-normalizing ``z_l`` and applying dropout to ``a_l``); the
output layer's ``z_L`` goes to the loss, which owns the output activation. The backward pass
starts from the loss's ``delta_L = dL/dz_L`` and applies, layer by layer in reverse::

    dL/dW_l = a_{l-1}^T @ delta_l,    dL/db_l = sum(delta_l),
    delta_{l-1} = (delta_l @ W_l^T) * g'(z_{l-1})

All parameters live in one flat buffer ``params`` and all gradients in ``grads`` (the weight
matrices first, so ``weight_slice`` is the part that weight decay applies to); layers hold views.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bpnn.nn.activations import Activation
from bpnn.nn.initializers import Initializer, zeros
from bpnn.nn.layers import (
    CHECK,
    EVAL,
    EVAL_BACKWARD,
    TRAIN,
    ActivationLayer,
    BatchNorm,
    Dense,
    Dropout,
    Layer,
    Mode,
)
from bpnn.nn.losses import Loss


class Network:
    """An MLP ``sizes[0] -> sizes[1] -> ... -> sizes[-1]`` trained with ``loss``.

    ``activations`` has one entry per hidden layer, ``dropout`` one rate per hidden layer.
    ``weight_init`` and ``bias_init`` (zeros by default) draw each dense layer's weight matrix
    and then its bias from ``rng``, layer by layer. Parameters are named ``"{i}.weight"``,
    ``"{i}.bias"`` (and ``"{i}.bn_scale"``, ``"{i}.bn_shift"`` with batch norm) for dense layer
    ``i = 0, 1, ...``.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        activations: Sequence[Activation],
        loss: Loss,
        *,
        weight_init: Initializer,
        rng: np.random.Generator,
        bias_init: Initializer = zeros,
        batch_norm: bool = False,
        dropout: Sequence[float] | None = None,
        dtype: np.dtype | type = np.float32,
    ) -> None:
        hidden = len(sizes) - 2
        if hidden < 0 or any(int(n) < 1 for n in sizes):
            raise ValueError(
                f"sizes must be at least [inputs, outputs] of positive ints, got {list(sizes)}"
            )
        if len(activations) != hidden:
            raise ValueError(
                f"need one activation per hidden layer ({hidden}), got {len(activations)}"
            )
        dropout = [0.0] * hidden if dropout is None else list(dropout)
        if len(dropout) != hidden:
            raise ValueError(
                f"need one dropout rate per hidden layer ({hidden}), got {len(dropout)}"
            )
        self.sizes = [int(n) for n in sizes]
        self.loss = loss
        self.dtype = np.dtype(dtype)
        self.activations = list(activations)
        #: the generator dropout draws its masks from (None without dropout); saved for resuming
        self.dropout_rng = rng if any(rate > 0 for rate in dropout) else None
        #: the output activation of the last loss_and_gradients call (for running accuracy)
        self.last_output: np.ndarray | None = None

        # (index of the dense block, layer) pairs; names are "{block}.{parameter}"
        self.layers: list[tuple[int, Layer]] = []
        for i, (fan_in, fan_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:], strict=True)):
            is_hidden = i < hidden
            dense = Dense(
                fan_in,
                fan_out,
                weight_init,
                use_bias=not (batch_norm and is_hidden),
                bias_init=bias_init,
                input_gradient=i > 0,
            )
            self.layers.append((i, dense))
            if is_hidden:
                if batch_norm:
                    self.layers.append((i, BatchNorm(fan_out)))
                self.layers.append((i, ActivationLayer(self.activations[i])))
                if dropout[i] > 0:
                    self.layers.append((i, Dropout(dropout[i], rng)))
        self._allocate(rng)

    def _allocate(self, rng: np.random.Generator) -> None:
        """One flat buffer for all parameters, one for all gradients; weights first."""
        specs = [
            (block, layer, spec) for block, layer in self.layers for spec in layer.parameter_specs()
        ]
        ordered = [s for s in specs if s[2].decay] + [s for s in specs if not s[2].decay]
        total = sum(int(np.prod(spec.shape)) for _, _, spec in ordered)
        self.params = np.empty(total, dtype=self.dtype)
        self.grads = np.zeros(total, dtype=self.dtype)
        self.weight_slice = slice(0, sum(int(np.prod(s.shape)) for _, _, s in ordered if s.decay))

        self._param_views: dict[str, np.ndarray] = {}
        self._grad_views: dict[str, np.ndarray] = {}
        offset = 0
        for block, _, spec in ordered:
            size = int(np.prod(spec.shape))
            name = f"{block}.{spec.name}"
            self._param_views[name] = self.params[offset : offset + size].reshape(spec.shape)
            self._grad_views[name] = self.grads[offset : offset + size].reshape(spec.shape)
            offset += size
        # initialize in layer order (not buffer order), so the draws read like the architecture
        for block, _, spec in specs:
            value = spec.initializer(rng, spec.shape, spec.fan_in, spec.fan_out)
            self._param_views[f"{block}.{spec.name}"][...] = value
        for block, layer in self.layers:
            prefix = f"{block}."
            layer.bind(
                {k[len(prefix) :]: v for k, v in self._param_views.items() if k.startswith(prefix)},
                {k[len(prefix) :]: v for k, v in self._grad_views.items() if k.startswith(prefix)},
            )

    # --- names -------------------------------------------------------------------------------
    def parameters(self) -> dict[str, np.ndarray]:
        """Every trainable tensor by name, in layer order (views into the flat buffer)."""
        order = [f"{b}.{s.name}" for b, layer in self.layers for s in layer.parameter_specs()]
        return {name: self._param_views[name] for name in order}

    def gradients(self) -> dict[str, np.ndarray]:
        """The gradient views, same names and order as ``parameters()``."""
        return {name: self._grad_views[name] for name in self.parameters()}

    def buffers(self) -> dict[str, np.ndarray]:
        """Non-trainable state by name (batch norm's running statistics)."""
        return {f"{b}.{k}": v for b, layer in self.layers for k, v in layer.buffers().items()}

    def load_buffers(self, buffers: dict[str, np.ndarray]) -> None:
        """Copy saved buffers back in place (shapes must match)."""
        own = self.buffers()
        if set(own) != set(buffers):
            raise ValueError(f"buffers differ: expected {sorted(own)}, got {sorted(buffers)}")
        for name, value in buffers.items():
            if own[name].shape != value.shape:
                raise ValueError(
                    f"buffer {name}: expected shape {own[name].shape}, got {value.shape}"
                )
            own[name][...] = value

    # --- passes ------------------------------------------------------------------------------
    def forward(self, X: np.ndarray, mode: Mode = EVAL) -> np.ndarray:
        """The last layer's pre-activation ``z_L`` for a batch ``X`` of shape (batch, inputs)."""
        out = np.asarray(X, dtype=self.dtype)
        for _, layer in self.layers:
            out = layer.forward(out, mode)
        return out

    def backward(self, delta: np.ndarray) -> np.ndarray:
        """Backpropagate ``delta = dL/dz_L``, filling ``grads`` (every entry is overwritten).
        Returns ``delta_1 = dL/dz_1``, the first dense layer's: its ``dL/dX`` is not computed
        (training never needs it; ``input_gradient`` does)."""
        for _, layer in reversed(self.layers):
            delta = layer.backward(delta)
        return delta

    def input_gradient(self, X: np.ndarray, output_gradient: np.ndarray) -> np.ndarray:
        """``dS/dX`` for ``S = sum(output_gradient * z_L)``, shape (n, inputs): how a chosen
        combination of the output pre-activations (a one-hot row: one logit per sample) moves
        with each input, in evaluation mode (running batch-norm statistics, no dropout). The
        backward pass carried one step further: ``dX = delta_1 @ W_1^T``. ``grads`` is
        overwritten."""
        self.forward(X, EVAL_BACKWARD)
        delta = np.array(output_gradient, dtype=self.dtype)  # a copy: layers overwrite it
        return self.backward(delta) @ self._param_views["0.weight"].T

    def loss_and_gradients(
        self,
        X: np.ndarray,
        y: np.ndarray,
        *,
        l2: float = 0.0,
        mode: Mode = CHECK,
        weights: np.ndarray | None = None,
    ) -> float:
        """Forward and backward on one batch: returns the loss, leaves ``dL/dparams`` in ``grads``.
        ``weights``: a weight per sample of the batch (``Loss``: the weighted mean).

        With ``l2 > 0`` the loss gains ``l2/2 * sum(W^2)`` over the weight matrices and their
        gradients gain ``l2 * W`` (the classic L2 penalty; biases are not penalized).
        ``mode`` defaults to ``CHECK``: training-mode batch norm, no dropout, no side effects.
        """
        z = self.forward(X, mode)
        a, loss = self.loss.output_and_value(z, y, weights)
        self.last_output = a
        self.backward(self.loss.gradient(z, a, y, weights))
        if l2:
            weights = self.params[self.weight_slice]
            loss += 0.5 * l2 * float(np.dot(weights, weights))
            self.grads[self.weight_slice] += l2 * weights
        return loss

    def train_step(
        self, X: np.ndarray, y: np.ndarray, *, l2: float = 0.0, weights: np.ndarray | None = None
    ) -> float:
        """``loss_and_gradients`` in training mode (dropout on, batch-norm statistics updated)."""
        return self.loss_and_gradients(X, y, l2=l2, mode=TRAIN, weights=weights)

    def predict(self, X: np.ndarray, batch_size: int = 8192) -> np.ndarray:
        """The output activation (probabilities or values) in evaluation mode, in chunks."""
        X = np.asarray(X, dtype=self.dtype)
        chunks = [
            self.loss.output(self.forward(X[i : i + batch_size], EVAL))
            for i in range(0, len(X), batch_size)
        ]
        if not chunks:
            return np.empty((0, self.sizes[-1]), dtype=self.dtype)
        return np.concatenate(chunks) if len(chunks) > 1 else chunks[0]

    def evaluate(
        self,
        X: np.ndarray,
        y: np.ndarray,
        batch_size: int = 8192,
        weights: np.ndarray | None = None,
    ) -> tuple[float, np.ndarray]:
        """The mean loss over a whole data set and the outputs, in one pass in evaluation mode.

        Chunk losses are combined with the weights the loss itself averages with (the sample
        count, or the sum of class weights), so the result equals one pass over all of ``X``
        (with ``reduction="sum"``: the summed loss per sample).
        """
        X = np.asarray(X, dtype=self.dtype)
        total, weight, outputs = 0.0, 0.0, []
        for i in range(0, len(X), batch_size):
            z = self.forward(X[i : i + batch_size], EVAL)
            chunk_y = y[i : i + batch_size]
            chunk_w = None if weights is None else weights[i : i + batch_size]
            a, chunk_loss = self.loss.output_and_value(z, chunk_y, chunk_w)
            total += self.loss.batch_total(chunk_loss, chunk_y, chunk_w)
            weight += self.loss.batch_weight(chunk_y, chunk_w)
            outputs.append(a)
        if not outputs:
            return float("nan"), np.empty((0, self.sizes[-1]), dtype=self.dtype)
        return total / weight, np.concatenate(outputs) if len(outputs) > 1 else outputs[0]

    def trace(self) -> list[dict[str, np.ndarray]]:
        """What the last ``loss_and_gradients`` computed, per dense block ``l`` (copies)::

            input = a_{l-1}   z = a_{l-1} W_l + b_l   a = g(z) (the output: the loss's output)
            delta = dL/dz_l   grad_weight = a_{l-1}^T delta   grad_bias = sum(delta)

        With batch norm, ``z`` is the dense layer's product before normalization and ``a`` the
        activation of the normalized value. A read-only view for ``bpnn explain``.
        """
        blocks: list[dict[str, np.ndarray]] = []
        for block, layer in self.layers:
            if isinstance(layer, Dense):
                if getattr(layer, "z", None) is None or getattr(layer, "delta", None) is None:
                    raise ValueError("trace needs a loss_and_gradients call first")
                entry = {
                    "input": layer.x.copy(),
                    "z": layer.z.copy(),
                    "delta": layer.delta.copy(),
                    "grad_weight": layer.dW.copy(),
                }
                if layer.db is not None:
                    entry["grad_bias"] = layer.db.copy()
                blocks.append(entry)
            elif isinstance(layer, ActivationLayer):
                blocks[block]["a"] = layer.a.copy()
        assert self.last_output is not None
        blocks[-1]["a"] = self.last_output.copy()
        return blocks

    def kink_pattern(self) -> np.ndarray:
        """The side of the kink of every unit of kinked activations in the last forward pass.

        Gradient checking compares this before and after a finite-difference step: if it changed,
        the step crossed a kink (ReLU at 0) and the numerical gradient there is meaningless.
        """
        sides = [
            (layer.z > 0).ravel()
            for _, layer in self.layers
            if isinstance(layer, ActivationLayer) and layer.activation.has_kink
        ]
        return np.concatenate(sides) if sides else np.zeros(0, dtype=bool)
