"""The learning-rate range test (Smith 2017, "Cyclical Learning Rates"; the fastai LR finder).

From the config's initial weights, train on up to ``steps`` batches while the rate grows
geometrically from ``start`` to ``end``::

    lr_i = start * (end / start) ** (i / (steps - 1))          i = 0 .. steps-1

and record each batch's loss (computed before the update with ``lr_i``). The losses are
smoothed by a bias-corrected exponential moving average::

    avg_i = beta * avg_{i-1} + (1 - beta) * loss_i,    smooth_i = avg_i / (1 - beta^(i+1))

with ``beta = 0.9``, and the test stops when the smoothed loss exceeds ``4x`` its minimum or a
loss is not finite. The suggestion is the start of the descent (``early_descent``): the rate
from which the smoothed loss stays a quarter of the way down from its starting level (the
median of the first 20 % of the steps) to its minimum. Three more opinions are reported: the
steepest descent (the most negative ``d smooth / d log lr``, a central difference over +-5 % of
the steps, between the first 5 % of the steps and the minimum), the rate of the minimum divided
by 10, and fastai's "valley" rule (``valley``). ``bench/lr_find.py`` measures them all: the
steepest descent often lies close to where the loss diverges, too high for a whole training
(docs/tuning.md).

It uses its own copies of everything: the data, a model built from the config's seed (the same
initial weights ``bpnn train`` starts from), an optimizer and a shuffling generator of its own.
No run directory is created, and nothing of it carries over into a later ``train``. The loop is
a small one of ``network.train_step`` and ``optimizer.update_step`` over shuffled batches of the
training split (with the config's L2 penalty and gradient clipping), not the ``Trainer``, whose
schedule changes the rate only between epochs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bpnn.config import Config
from bpnn.errors import ConfigError
from bpnn.model import make_seeds
from bpnn.nn.step import optimizer_step
from bpnn.outputs import output_set, refuse_existing, write_new
from bpnn.run import build_model, build_optimizer, load_data

#: the smoothing factor of the exponential moving average of the loss: it averages about
#: 1 / (1 - BETA) = 10 steps (fastai's 0.98 averages 50, half of a 100-step test, and its curve
#: lags the rates by several decades)
BETA = 0.9
#: stop when the smoothed loss exceeds this multiple of its minimum
DIVERGENCE = 4.0
#: the suggestion: where the smoothed loss has made this fraction of its fall to the minimum
FALL_FRACTION = 0.25
#: the starting level of the loss: the median over this fraction of the first steps
START_FRACTION = 0.2
#: a curve whose minimum is not this fraction below its starting level shows no descent
MIN_FALL = 0.1


@dataclass
class LrFindResult:
    """The curve of a range test and its suggestions."""

    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    suggested_lr: float
    steepest_lr: float
    min_loss_lr: float
    valley_lr: float
    stop_reason: str
    start: float
    end: float
    steps: int
    warnings: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {
            "suggested_lr": self.suggested_lr,
            "steepest_lr": self.steepest_lr,
            "min_loss_lr": self.min_loss_lr,
            "valley_lr": self.valley_lr,
            "lrs": self.lrs,
            "losses": self.losses,
            "smoothed_losses": self.smoothed,
            "stop_reason": self.stop_reason,
        }


def geometric_rates(start: float, end: float, steps: int) -> np.ndarray:
    """``steps`` rates from ``start`` to ``end``, evenly spaced on a log scale."""
    if steps == 1:
        return np.array([start])
    return start * (end / start) ** (np.arange(steps) / (steps - 1))


def smooth(losses: list[float], beta: float = BETA) -> list[float]:
    """The bias-corrected exponential moving average of ``losses``."""
    average, out = 0.0, []
    for i, loss in enumerate(losses):
        average = beta * average + (1 - beta) * loss
        out.append(average / (1 - beta ** (i + 1)))
    return out


def starting_level(smoothed: list[float]) -> float:
    """The loss before the rate does anything: the median of the first ``START_FRACTION`` of
    the smoothed curve."""
    return float(np.median(smoothed[: max(1, round(len(smoothed) * START_FRACTION))]))


def early_descent(
    lrs: list[float], smoothed: list[float], fraction: float = FALL_FRACTION
) -> float:
    """The rate from which ``smoothed`` stays at least ``fraction`` of the way down from its
    starting level (the median of the first ``START_FRACTION`` of the steps) to its minimum,
    up to the minimum: the start of the real descent, past the batch noise of the flat start
    (a dip of that noise below the line does not count, since the loss climbs back over it)."""
    values = np.asarray(smoothed)
    lowest = int(np.argmin(values))
    level = starting_level(smoothed)
    line = level - fraction * (level - values[lowest])
    above = np.flatnonzero(values[: lowest + 1] > line)
    return float(lrs[0 if len(above) == 0 else above[-1] + 1])


def steepest_descent(lrs: list[float], smoothed: list[float]) -> float:
    """The rate where ``smoothed`` falls fastest against log lr: the slope over +-5 % of the
    steps, between the first 5 % and the minimum."""
    values = np.asarray(smoothed)
    lowest = int(np.argmin(values))
    n, log_lrs = len(values), np.log(np.asarray(lrs))
    if n < 3:
        return float(lrs[lowest])
    # the slope at i over a window of +-k steps (5 % of the curve): batch noise in the flat start
    # makes steeper one-step slopes than the real descent
    k = max(1, n // 20)
    index = np.arange(n)
    ahead, behind = np.minimum(index + k, n - 1), np.maximum(index - k, 0)
    slopes = (values[ahead] - values[behind]) / (log_lrs[ahead] - log_lrs[behind])
    # only the descent up to the minimum counts, after the first few (noisiest) steps
    first = min(n // 20, max(lowest - 1, 0))
    return float(lrs[first + int(np.argmin(slopes[first : lowest + 1]))])


def minimum_over_ten(lrs: list[float], smoothed: list[float]) -> float:
    """A tenth of the rate at the smoothed loss's minimum."""
    return float(lrs[int(np.argmin(smoothed))]) / 10


def valley(lrs: list[float], smoothed: list[float]) -> float:
    """fastai's "valley" rule: the longest run of steps over which the smoothed loss keeps
    falling (a longest decreasing subsequence), and the rate half-way into its middle third."""
    n = len(smoothed)
    run = [1] * n  # run[i]: the longest decreasing subsequence ending at i
    start = end = 0
    for i in range(1, n):
        for j in range(i):
            if smoothed[i] < smoothed[j] and run[i] < run[j] + 1:
                run[i] = run[j] + 1
        if run[end] < run[i]:
            end = i
            start = end - run[end]
    third = (end - start) / 3
    return float(lrs[max(0, start + int(third) + int(third / 2))])


def lr_find(
    config: Config,
    *,
    start: float = 1e-7,
    end: float = 10.0,
    steps: int = 100,
    log: Callable[[str], None] = lambda message: None,
) -> LrFindResult:
    """Run the range test on ``config`` (see the module docstring); nothing is written."""
    if not 0 < start < end:
        raise ConfigError(f"lr-find: --start {start:g} must be positive and below --end {end:g}")
    if steps < 2:
        raise ConfigError(f"lr-find: --steps {steps} must be at least 2")
    data = load_data(config, log)
    init_rng, shuffle_rng = make_seeds(config.seed)
    model = build_model(config, data, init_rng)
    network = model.network
    optimizer = build_optimizer(config, network)
    l2, clip = config.l2_penalty(), config.train.grad_clip
    X, y, batch_size = data.X_train, data.y_train, config.train.batch_size

    rates = geometric_rates(start, end, steps)
    lrs: list[float] = []
    losses: list[float] = []
    smoothed: list[float] = []
    average, best = 0.0, math.inf
    stop_reason = f"completed {steps} steps"
    order, position = np.empty(0, dtype=np.int64), 0
    for i, lr in enumerate(rates):
        if position >= len(order):
            order, position = shuffle_rng.permutation(len(X)), 0
        index = order[position : position + batch_size]
        position += batch_size
        with np.errstate(over="ignore", invalid="ignore"):
            loss = network.train_step(X[index], y[index], l2=l2)
        if not math.isfinite(loss):
            stop_reason = f"the loss became {loss} at lr {lr:.3g} (step {i + 1})"
            break
        lrs.append(float(lr))
        losses.append(float(loss))
        average = BETA * average + (1 - BETA) * loss
        smoothed.append(average / (1 - BETA ** (i + 1)))
        best = min(best, smoothed[-1])
        if smoothed[-1] > DIVERGENCE * best:
            stop_reason = (
                f"the smoothed loss exceeded {DIVERGENCE:g}x its minimum at lr {lr:.3g} "
                f"(step {i + 1})"
            )
            break
        with np.errstate(over="ignore", invalid="ignore"):
            optimizer_step(network, optimizer, float(lr), clip)
    if not lrs:
        raise ConfigError(f"lr-find: {stop_reason}; try a lower --start")
    warnings = []
    if len(lrs) < 10:
        why = "before the loss diverged" if len(lrs) < steps else "in all"
        remedy = "a lower --end" if len(lrs) < steps else "more --steps"
        warnings.append(
            f"only {len(lrs)} steps {why}: the curve is too short to trust; try {remedy}"
        )
    level = starting_level(smoothed)
    if min(smoothed) > level * (1 - MIN_FALL):
        warnings.append(
            f"the smoothed loss never fell {MIN_FALL:.0%} below its starting level "
            f"({level:.4g}): the suggestion is noise; try a wider range (--start, --end) or "
            "check the data and the model"
        )
    first_steps = round(len(smoothed) * START_FRACTION)
    if len(smoothed) >= 10 and int(np.argmin(smoothed)) < first_steps:
        warnings.append(
            f"the smoothed loss was lowest in the first {START_FRACTION:.0%} of the steps, "
            f"at lr {lrs[int(np.argmin(smoothed))]:.3g}: the range starts too high to see a "
            "descent; try a lower --start"
        )
    if len(lrs) == steps and smoothed[-1] <= min(smoothed) * 1.0001:
        warnings.append(
            "the loss was still falling at --end: the best rate may be higher; try a higher --end"
        )
    return LrFindResult(
        lrs,
        losses,
        smoothed,
        early_descent(lrs, smoothed),
        steepest_descent(lrs, smoothed),
        minimum_over_ten(lrs, smoothed),
        valley(lrs, smoothed),
        stop_reason,
        start,
        end,
        steps,
        warnings,
    )


def write_csv(result: LrFindResult, path: Path) -> None:
    """The curve as CSV: ``step,lr,loss,smoothed_loss``."""
    rows = ["step,lr,loss,smoothed_loss"]
    rows += [
        f"{i + 1},{lr!r},{loss!r},{s!r}"
        for i, (lr, loss, s) in enumerate(
            zip(result.lrs, result.losses, result.smoothed, strict=True)
        )
    ]
    write_new(path, "\n".join(rows) + "\n", "--out")


def write_outputs(result: LrFindResult, folder: Path, title: str) -> list[Path]:
    """``lr_find.png`` and ``lr_find.csv`` in ``folder`` (created if needed); refuses to
    overwrite either file."""
    from bpnn.plots import plot_lr_find  # start-up: matplotlib is loaded only to draw

    png, csv = folder / "lr_find.png", folder / "lr_find.csv"
    refuse_existing((png, csv), "--out")
    with output_set(folder, "--out") as written:
        write_csv(result, csv)
        written.append(csv)
        plot_lr_find(
            result.lrs, result.losses, result.smoothed, result.suggested_lr, png, title, "--out"
        )
        written.append(png)
    return [png, csv]
