"""Fuzz tests of issue #15: random configs through ``bpnn config check`` (and one epoch of
``bpnn train`` for those it accepts), random corruptions of a checkpoint through ``bpnn eval`` and
``bpnn predict``. Whatever the input, the answer is exit 0 or a code of ``EXIT_CODES`` with one
line on stderr, never a traceback.

The commands run in-process through Typer's ``CliRunner`` (a subprocess per example would take
minutes); an exception that escapes ``reported_errors`` shows as ``result.exception``. The
examples are derandomized, so CI sees the same ones on every run.
"""

from __future__ import annotations

import copy
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.support import assert_answered, files_of, invoke

FUZZ = settings(
    max_examples=50,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

#: a valid, tiny config: 60 XOR points, a 2 -> 4 -> 2 network, one epoch
BASE: dict[str, Any] = {
    "name": "fuzz",
    "seed": 0,
    "data": {"source": "xor", "options": {"n_samples": 60}},
    "model": {"hidden": [4]},
    "optimizer": {"name": "adam", "lr": 0.01},
    "train": {"epochs": 1, "batch_size": 16},
}

#: where a perturbation may land: existing keys, keys of optional sections, unknown keys
PATHS = [
    ("name",),
    ("seed",),
    ("data",),
    ("data", "source"),
    ("data", "options"),
    ("data", "options", "n_samples"),
    ("data", "options", "noise"),
    ("data", "options", "bogus"),
    ("data", "test_fraction"),
    ("data", "val_fraction"),
    ("data", "scale"),
    ("data", "path"),
    ("model",),
    ("model", "hidden"),
    ("model", "hidden", 0),
    ("model", "activation"),
    ("model", "activations"),
    ("model", "init"),
    ("model", "dropout"),
    ("model", "batch_norm"),
    ("loss",),
    ("loss", "name"),
    ("loss", "class_weights"),
    ("loss", "label_smoothing"),
    ("optimizer",),
    ("optimizer", "name"),
    ("optimizer", "lr"),
    ("optimizer", "weight_decay"),
    ("optimizer", "beta1"),
    ("optimizer", "momentum"),
    ("schedule",),
    ("schedule", "name"),
    ("schedule", "warmup_epochs"),
    ("train",),
    ("train", "epochs"),
    ("train", "batch_size"),
    ("train", "grad_clip"),
    ("train", "dtype"),
    ("train", "max_memory"),
    ("train", "early_stopping"),
    ("train", "early_stopping", "patience"),
    ("train", "early_stopping", "monitor"),
    ("unknown",),
]

NAMES = st.sampled_from(
    [
        "xor", "moons", "blobs", "iris", "mnist", "npz", "csv", "relu", "tanh", "sigmoid",
        "softmax", "adam", "adamw", "sgd", "cosine", "step", "constant", "cross_entropy",
        "mse", "float32", "float64", "he_normal", "zeros", "val_loss", "train_accuracy", "",
    ]
)  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-3, max_value=40),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-2, max_value=2),
    NAMES,
    st.text(max_size=20),
    st.integers(min_value=-5, max_value=50).map(str),
    st.floats(min_value=0, max_value=1).map(repr),
)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(NAMES, st.text(max_size=8)), children, max_size=4),
    ),
    max_leaves=8,
)


def _set(config: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    node: Any = config
    for part in path[:-1]:
        child = node.get(part) if isinstance(node, dict) else None
        if not isinstance(child, dict | list):
            child = {}
            node[part] = child
        node = child
    last = path[-1]
    if isinstance(node, list):
        if isinstance(last, int) and last < len(node):
            node[last] = value
    elif isinstance(node, dict):
        node[last] = value


#: plausible values per key: most examples stay valid enough to train, so the training path
#: meets the odd combinations (a schedule with early stopping, float64 with dropout, ...)
PLAUSIBLE: dict[tuple[Any, ...], st.SearchStrategy[Any]] = {
    ("seed",): st.integers(0, 100),
    ("data", "source"): st.sampled_from(["xor", "moons", "blobs", "circles", "iris"]),
    ("data", "options", "n_samples"): st.integers(20, 300),
    ("data", "options", "noise"): st.floats(0, 1),
    ("data", "test_fraction"): st.floats(0.05, 0.5),
    ("data", "val_fraction"): st.floats(0, 0.4),
    ("data", "scale"): st.sampled_from(["standard", "minmax", "none", "pixels"]),
    ("model", "hidden"): st.lists(st.integers(1, 16), max_size=3),
    ("model", "activation"): st.sampled_from(["relu", "tanh", "sigmoid", "elu", "gelu"]),
    ("model", "init"): st.sampled_from(["he_uniform", "xavier_normal", "zeros", "normal"]),
    ("model", "dropout"): st.floats(0, 0.9),
    ("model", "batch_norm"): st.booleans(),
    ("loss",): st.sampled_from(["cross_entropy", "binary_cross_entropy", "mse"]),
    ("loss", "label_smoothing"): st.floats(0, 0.5),
    ("optimizer", "name"): st.sampled_from(["sgd", "momentum", "rmsprop", "adagrad", "adamw"]),
    ("optimizer", "lr"): st.floats(1e-5, 10),
    ("optimizer", "weight_decay"): st.floats(0, 0.1),
    ("schedule",): st.sampled_from(["constant", "step", "exponential", "cosine"]),
    ("schedule", "name"): st.just("reduce_on_plateau"),
    ("train", "batch_size"): st.integers(1, 128),
    ("train", "grad_clip"): st.floats(0.1, 10),
    ("train", "dtype"): st.sampled_from(["float32", "float64"]),
    ("train", "max_memory"): st.sampled_from(["1GiB", 10**9, "64KiB"]),
    ("train", "shuffle"): st.booleans(),
    ("train", "early_stopping"): st.one_of(st.booleans(), st.just({"patience": 1})),
}


@st.composite
def configs(draw: st.DrawFn) -> str:
    """YAML text: the base config with a few keys set to plausible values (most often) or to
    random ones (wrong types, huge, negative, inf/nan, unknown keys, nested garbage), and now
    and then random text."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.text(max_size=200))
    config = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(PATHS + list(PLAUSIBLE)))
        plausible = path in PLAUSIBLE and draw(st.integers(0, 3)) > 0
        _set(config, path, draw(PLAUSIBLE[path] if plausible else VALUES))
    try:
        return yaml.safe_dump(config, sort_keys=False)
    except yaml.YAMLError:  # pragma: no cover - safe_dump takes every value drawn here
        return "name: fuzz\n"


def _small_enough(config: Any) -> bool:
    """Train only configs that finish in a moment: few samples, a small network."""
    options = config.data.options
    sizes = [v for v in options.values() if isinstance(v, int) and not isinstance(v, bool)]
    return (
        config.data.source in ("xor", "moons", "blobs", "circles", "iris")
        and all(size <= 500 for size in sizes)
        and sum(config.model.hidden) <= 64
    )


@pytest.fixture(scope="module")
def folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as name:
        yield Path(name)


@FUZZ
@given(text=configs())
def test_random_configs_are_answered_by_check_and_one_epoch_of_train(
    folder: Path, text: str
) -> None:
    from bpnn.config import load_config
    from bpnn.errors import BpnnError

    path = folder / "config.yaml"
    path.write_text(text, encoding="utf-8")
    check = invoke("config", "check", path)
    assert_answered(check)
    event(f"config check exit {check.exit_code}")
    if check.exit_code != 0:
        train = invoke("train", path, "--out", folder / "refused", "-q")
        assert_answered(train)
        assert train.exit_code == check.exit_code, (check.stderr, train.stderr)
        assert not (folder / "refused").exists()
        return
    try:
        config = load_config(path, ["train.epochs=1"])
    except BpnnError:
        return  # train.epochs itself was the perturbation: `config check` found no fault
    if not _small_enough(config):
        event("accepted, too large to train here")
        return
    with tempfile.TemporaryDirectory(dir=folder) as runs:
        train = invoke("train", path, "--set", "train.epochs=1", "--out", Path(runs) / "run", "-q")
        assert_answered(train)
        event(f"one epoch of train: exit {train.exit_code}")


# --- checkpoints ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkpoint_file(folder: Path) -> Path:
    config = folder / "tiny.yaml"
    config.write_text(yaml.safe_dump(BASE), encoding="utf-8")
    result = invoke("train", config, "--out", folder / "tiny", "-q")
    assert result.exit_code == 0, result.output
    np.savez(folder / "inputs.npz", X=np.random.default_rng(0).normal(size=(5, 2)))
    return folder / "tiny" / "checkpoints" / "best.npz"


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as archive:
        return {k: archive[k] for k in archive.files}


ARRAYS = st.one_of(
    st.builds(np.zeros, st.lists(st.integers(0, 4), max_size=3).map(tuple)),
    st.just(np.array(np.nan)),
    st.just(np.array("text")),
    st.just(np.array([b"\x00\xff"])),
    st.just(np.zeros((2, 2), dtype=np.int8)),
    st.just(np.zeros(0)),
    st.just(np.full((2, 4), np.inf)),
)


@st.composite
def corruptions(draw: st.DrawFn, original: bytes, arrays: dict[str, np.ndarray]) -> Any:
    """A corrupted checkpoint: bytes (flipped or cut) or arrays (replaced, removed, NaN, a
    tampered meta JSON)."""
    kind = draw(st.sampled_from(["flip", "truncate", "replace", "nan", "remove", "meta"]))
    if kind == "flip":
        data = bytearray(original)
        for _ in range(draw(st.integers(1, 8))):
            data[draw(st.integers(0, len(data) - 1))] ^= draw(st.integers(1, 255))
        return bytes(data)
    if kind == "truncate":
        return original[: draw(st.integers(0, len(original) - 1))]
    arrays = dict(arrays)
    key = draw(st.sampled_from(sorted(arrays)))
    if kind == "replace":
        arrays[key] = draw(ARRAYS)
    elif kind == "nan":
        value = arrays[key]
        arrays[key] = np.full(value.shape, np.nan) if value.dtype.kind == "f" else np.array(np.nan)
    elif kind == "remove":
        del arrays[key]
    else:
        meta = json.loads(str(arrays["meta"]))
        section = draw(st.sampled_from(["", "config", "trainer", "metrics", "callbacks"]))
        if section == "callbacks":  # one callback's state (resume restores them)
            states = meta.get("trainer", {}).get("callbacks", {})
            name = draw(st.sampled_from(sorted(states) or ["checkpointer"]))
            target = states.get(name) if isinstance(states.get(name), dict) else meta
        else:
            target = (
                meta if not section or not isinstance(meta.get(section), dict) else meta[section]
            )
        field = draw(st.one_of(st.sampled_from(sorted(target) or ["x"]), st.text(max_size=5)))
        if draw(st.booleans()):
            target.pop(field, None)
        else:
            target[field] = draw(VALUES.filter(lambda v: _json_safe(v)))
        arrays["meta"] = np.array(json.dumps(meta))
    return arrays


def _json_safe(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=True)
    except (TypeError, ValueError):
        return False
    return True


@settings(FUZZ, max_examples=70)
@given(data=st.data())
def test_corrupted_checkpoints_are_answered_by_eval_and_predict(
    checkpoint_file: Path, folder: Path, data: st.DataObject
) -> None:
    corrupted = data.draw(corruptions(checkpoint_file.read_bytes(), _arrays(checkpoint_file)))
    path = folder / "corrupted.npz"
    if isinstance(corrupted, bytes):
        path.write_bytes(corrupted)
    else:
        np.savez(path, **corrupted)
    evaluated = invoke("eval", path)
    assert_answered(evaluated)
    assert_answered(invoke("predict", path, folder / "inputs.npz"))
    event(f"eval exit {evaluated.exit_code}")


@settings(FUZZ, max_examples=60)
@given(data=st.data())
def test_a_corrupted_last_checkpoint_is_answered_by_resume_and_a_refusal_changes_nothing(
    checkpoint_file: Path, folder: Path, data: st.DataObject
) -> None:
    """resume reads more of a checkpoint than eval does (the optimizer's state, the trainer's
    random streams, the epoch): whatever is corrupted, the answer is one line, and a refused
    resume leaves the run as it was."""
    run = Path(tempfile.mkdtemp(dir=folder)) / "run"
    shutil.copytree(checkpoint_file.parent.parent, run)
    last = run / "checkpoints" / "last.npz"
    corrupted = data.draw(corruptions(last.read_bytes(), _arrays(last)))
    if isinstance(corrupted, bytes):
        last.write_bytes(corrupted)
    else:
        np.savez(last, **corrupted)
    before = files_of(run)
    resumed = invoke("resume", run, "--epochs", 2, "-q")
    assert_answered(resumed)
    event(f"resume exit {resumed.exit_code}")
    if resumed.exit_code == 1:  # not refused: weights it took diverged (a NaN loss) and the
        # run records its failure, its checkpoints kept as they were
        after = files_of(run)
        assert all(after[name] == data for name, data in before.items() if "checkpoints/" in name)
        assert json.loads(after["summary.json"])["stop_reason"] == "error"
    elif resumed.exit_code != 0:
        assert files_of(run) == before
