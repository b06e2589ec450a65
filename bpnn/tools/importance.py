"""``bpnn importance``: which raw input columns a trained model relies on.

**Permutation importance** (Breiman 2001; scikit-learn's ``permutation_importance``): shuffle
one raw column of held-out samples, breaking its link to the target, and measure how much the
model's score drops::

    importance_j = score(X, y) - mean over repeats r of score(X with column j shuffled, y)

with its standard deviation over the ``repeats``. The score is the model's own headline metric
as ``bpnn.evaluation.evaluate`` computes it: ``accuracy`` for a classifier, ``label_accuracy``
for a multi-label model, ``r2`` (R², scikit-learn's default for a regressor) for a regression.
A column is a *raw* column: a categorical table column, one-hot encoded into several inputs, is
shuffled as one (``RawColumnModel`` takes the table's columns and encodes them itself), and is
one row of the result.

**Gradient times input** (``method="gradient"``, Shrikumar et al. 2016), from bpnn's own
backward pass: for each sample, the gradient of the predicted class's logit (the output
pre-activation ``z_L``; every output of a regression or multi-label model) with respect to the
scaled inputs ``x``, times ``x``::

    attribution_j = mean over samples of |x_j * dz_L[k] / dx_j|

summed over the inputs a raw column is encoded into. The logit, not the probability, so that a
confident prediction (softmax saturated) still shows what moves it.

The samples: the run's validation split, rebuilt from the checkpoint's config and seed as
``bpnn eval`` rebuilds its test split (else the test split, else the training split), or a
labelled file read as ``bpnn eval --data`` reads it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bpnn.errors import ConfigError
from bpnn.evaluation import evaluate
from bpnn.metrics import accuracy_name
from bpnn.model import Model, load_model
from bpnn.outputs import refuse_existing
from bpnn.run.directory import Log, no_log
from bpnn.run.evaluate import checkpoint_dataset, labelled_file

if TYPE_CHECKING:
    import pandas as pd

METHODS = ("permutation", "gradient")


def score_name(task: str) -> str:
    """The metric importance is measured with: the task's accuracy, or R² for a regression."""
    return accuracy_name(task) or "r2"


class RawColumnModel:
    """A trained ``Model`` as a scikit-learn estimator of raw columns: ``score(X, y)`` takes a
    table of the model's raw columns (a pandas DataFrame; an array for a source without a table
    encoding) and the network's targets, encodes and scales the rows as ``predict`` does, and
    returns ``score_name``'s metric. It is already trained: ``fit`` changes nothing."""

    def __init__(self, model: Model, source: str) -> None:
        self.model = model
        self.source = source

    def fit(self, X: Any, y: Any = None) -> RawColumnModel:
        return self

    def score(self, X: Any, y: np.ndarray, sample_weight: np.ndarray | None = None) -> float:
        scaled = self.model.scaled_inputs(X, self.source)
        name = score_name(self.model.task)
        return evaluate(self.model, scaled, y, scores=False, weights=sample_weight)[name]


def raw_columns(model: Model, X: np.ndarray) -> pd.DataFrame | np.ndarray:
    """The raw columns behind encoded features ``X`` (unscaled, shape (n, inputs)): for a table
    a DataFrame of its columns (a one-hot block back to its category; an all-zero block, an
    unknown category encoded with ``data.unknown_category: ignore``, to a value outside the
    categories, which encodes to zeros again); without a table encoding ``X`` itself. Missing
    values were filled or their rows dropped by the encoding, so none is left."""
    if model.encoding is None:
        return X
    import pandas as pd  # start-up: loaded on use

    columns: dict[str, np.ndarray] = {}
    start = 0
    for column in model.encoding.columns:
        if column.kind == "numeric":
            columns[column.name] = X[:, start]
            start += 1
            continue
        width = len(column.categories)
        block = X[:, start : start + width]
        start += width
        unknown = "(unknown)"
        while unknown in column.categories:
            unknown += "_"
        labels = np.array([*column.categories, unknown], dtype=object)
        chosen = np.where(block.max(axis=1) > 0.5, block.argmax(axis=1), width)
        columns[column.name] = labels[chosen]
    return pd.DataFrame(columns)


@dataclass(frozen=True)
class ColumnImportance:
    """One raw column: the mean drop in the score when it is shuffled, its standard deviation
    over the repeats, and (``method="gradient"``) its mean |gradient x input|."""

    column: str
    importance: float
    std: float
    gradient: float | None = None


@dataclass(frozen=True)
class ImportanceReport:
    """What ``importance`` measured, the columns sorted by importance (most important first)."""

    checkpoint: str
    data: str  # "validation split", "test split", "training split" or the file's path
    from_file: bool  # data is a file (--data), not a split of the run's data
    samples: int
    score: str  # the metric's name: accuracy, label_accuracy or r2
    baseline: float  # the score before any shuffling
    repeats: int
    seed: int
    method: str
    columns: list[ColumnImportance]

    @property
    def described_data(self) -> str:
        """``the validation split`` or the file's path, for titles."""
        return self.data if self.from_file else f"the {self.data}"

    def as_json(self) -> dict[str, Any]:
        found = asdict(self)
        if self.method != "gradient":
            for column in found["columns"]:
                del column["gradient"]
        return found


def _samples(
    model: Model, path: Path, data_file: Path | None, log: Log
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, str]:
    """Raw (unscaled) encoded features, network targets, the rows' weights (a table's
    ``data.weight``; None) and what they are: the validation split of the checkpoint's data
    (else test, else training), or the labelled ``data_file`` (unweighted)."""
    if data_file is not None:
        X, y = labelled_file(model, data_file, log)
        return X, y, None, str(data_file)
    data = checkpoint_dataset(model, path, log)
    splits = (
        ("validation split", data.X_val, data.y_val, data.w_val),
        ("test split", data.X_test, data.y_test, data.w_test),
        ("training split", data.X_train, data.y_train, data.w_train),
    )
    name, X, y, weights = next((split for split in splits if len(split[1])), splits[-1])
    if name != "validation split":
        log(f"{path}: its run has no validation split; importance on its {name}")
    return data.input_scaling.invert(X), y, weights, name


def _gradient_times_input(model: Model, scaled: np.ndarray) -> np.ndarray:
    """Mean over the samples of ``|x * dz/dx|`` per input, for ``z`` the predicted class's logit
    (one sigmoid output: that output; a regression or multi-label model: every output)."""
    network = model.network
    outputs = network.predict(scaled)
    seed = np.ones_like(outputs)
    if model.task == "multiclass":
        seed = np.zeros_like(outputs)
        seed[np.arange(len(outputs)), outputs.argmax(axis=1)] = 1
    gradient = network.input_gradient(scaled, seed)
    return np.abs(gradient * scaled).mean(axis=0, dtype=np.float64)


def _per_raw_column(model: Model, values: np.ndarray) -> list[float]:
    """Per-input ``values`` summed over the inputs each raw column is encoded into."""
    if model.encoding is None:
        return [float(v) for v in values]
    sums, start = [], 0
    for column in model.encoding.columns:
        width = 1 if column.kind == "numeric" else len(column.categories)
        sums.append(float(values[start : start + width].sum()))
        start += width
    return sums


def importance(
    path: Path,
    data_file: Path | None = None,
    *,
    repeats: int = 5,
    method: str = "permutation",
    seed: int | None = None,
    plots: Path | None = None,
    log: Log = no_log,
) -> ImportanceReport:
    """Permutation importance of every raw input column of the checkpoint ``path`` (see the
    module's text), over ``repeats`` shuffles of each drawn from a numpy Generator of ``seed``
    (default: the run's ``seed``); with ``method="gradient"`` also gradient times input. With
    ``plots``, a bar chart of them is drawn into that new PNG file (``wrote PATH`` is logged;
    a file already there is refused before anything is measured)."""
    from sklearn.inspection import permutation_importance  # start-up: loaded on use

    if repeats < 1:
        raise ConfigError(f"--repeats: must be at least 1, got {repeats}")
    if method not in METHODS:
        raise ConfigError(f"--method: {method!r} is none of {', '.join(METHODS)}")
    if plots is not None:
        refuse_existing([plots], "--plots")
    model = load_model(path)
    seed = model.config.seed if seed is None else seed
    X, y, weights, where = _samples(model, path, data_file, log)
    if len(X) < 2:
        raise ConfigError(f"{where}: has {len(X)} sample(s); shuffling a column needs 2 or more")
    raw = raw_columns(model, X)
    names = model.encoding.column_names if model.encoding is not None else model.feature_names
    estimator = RawColumnModel(model, where)
    # scikit-learn takes a seed for its own RandomState: one drawn from the seeded Generator
    draw = int(np.random.default_rng(seed).integers(np.iinfo(np.int32).max))
    found = permutation_importance(
        estimator, raw, y, n_repeats=repeats, random_state=draw, sample_weight=weights
    )
    gradients: list[float | None] = [None] * len(names)
    if method == "gradient":
        scaled = model.scaled_inputs(X, where)
        gradients = list(_per_raw_column(model, _gradient_times_input(model, scaled)))
    columns = [
        ColumnImportance(name, float(mean), float(std), gradient)
        for name, mean, std, gradient in zip(
            names, found.importances_mean, found.importances_std, gradients, strict=True
        )
    ]
    columns.sort(key=lambda c: -c.importance)
    report = ImportanceReport(
        checkpoint=str(path),
        data=where,
        from_file=data_file is not None,
        samples=len(X),
        score=score_name(model.task),
        baseline=estimator.score(raw, y, weights),
        repeats=repeats,
        seed=seed,
        method=method,
        columns=columns,
    )
    if plots is not None:
        _draw(report, plots)
        log(f"wrote {plots}")
    return report


def _draw(report: ImportanceReport, out: Path) -> None:
    """``--plots OUT.png``: the importances as a bar chart with error bars (never over a file)."""
    from bpnn.plots import plot_importance  # start-up: matplotlib is loaded only to draw

    plot_importance(
        [c.column for c in report.columns],
        [c.importance for c in report.columns],
        [c.std for c in report.columns],
        out,
        f"{Path(report.checkpoint).name} on {report.described_data}",
        report.score,
        "--plots",
    )
