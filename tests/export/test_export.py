"""Specification of ``bpnn export``: every exported copy computes the function ``bpnn predict``
computes, on the raw inputs ``bpnn predict`` takes, to 1e-5 in float32.

Checkpoints are trained through the CLI for two epochs on scikit-learn's built-in sets (and, in
the slow test, on MNIST). Each is exported through the CLI and read back with the format's own
runtime: onnxruntime, the printed ``torch.nn.Sequential``, skops and scikit-learn. A test is
skipped only where that runtime is not installed (CI installs them all through ``.[test]``).
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn import datasets
from typer.testing import CliRunner, Result

import bpnn
from bpnn.cli import app
from bpnn.errors import ExportError
from bpnn.export import FORMATS, to_onnx, to_sklearn, to_torch_source, to_torch_state_dict
from bpnn.model import Model
from bpnn.nn.activations import ACTIVATIONS, OUTPUT_ACTIVATIONS
from tests.support import REPO

MNIST = REPO.parent / "shared" / "data" / "mnist"
TOLERANCE = 1e-5

#: name -> (config text or a shipped config, raw inputs of the data set it trains on)
CONFIGS: dict[str, tuple[str, Callable[[], np.ndarray]]] = {
    "digits": ("configs/digits.yaml", lambda: datasets.load_digits().data),
    "binary": ("configs/binary.yaml", lambda: datasets.load_breast_cancer().data),
    "regression": ("configs/regression.yaml", lambda: datasets.load_diabetes().data),
    # batch norm to fold, dropout to leave out, gelu and elu with a non-default alpha
    "batchnorm_gelu_elu": (
        """\
name: batchnorm_gelu_elu
seed: 0
data: {source: digits}
model:
  hidden: [16, 12]
  activations: [gelu, {name: elu, alpha: 0.7}]
  batch_norm: true
  dropout: 0.1
optimizer: {name: adam, lr: 0.01}
train: {batch_size: 32}
""",
        lambda: datasets.load_digits().data,
    ),
    # the other four activations, one per layer
    "every_other_activation": (
        """\
name: every_other_activation
seed: 0
data: {source: digits}
model:
  hidden: [12, 10, 10, 8]
  activations: [{name: leaky_relu, slope: 0.2}, softplus, tanh, identity]
optimizer: {name: adam, lr: 0.01}
train: {batch_size: 32}
""",
        lambda: datasets.load_digits().data,
    ),
    # two classes through a softmax: scikit-learn holds it as one logistic output
    "two_class_softmax_tanh": (
        """\
name: two_class_softmax_tanh
seed: 0
data: {source: breast_cancer}
model: {hidden: [8], activation: tanh}
loss: cross_entropy
optimizer: {name: adam, lr: 0.01}
train: {batch_size: 32}
""",
        lambda: datasets.load_breast_cancer().data,
    ),
    # several sigmoid outputs under binary cross-entropy: each its own probability
    "multilabel": (
        """\
name: multilabel
seed: 0
data:
  source: inline
  X: [[0, 0], [0, 1], [1, 0], [1, 1], [0.5, 0.2]]
  y: [[0, 0, 1], [0, 1, 1], [1, 0, 0], [1, 1, 0], [1, 0, 1]]
model: {hidden: [4], activation: tanh}
loss: binary_cross_entropy
optimizer: {name: sgd, lr: 0.5}
train: {batch_size: 5}
""",
        lambda: np.array([[0.0, 0.0], [0.3, 0.9], [1.0, 0.2]]),
    ),
    "one_hot_sigmoid_bce": (
        """\
name: one_hot_sigmoid_bce
seed: 0
data: {source: iris, one_hot: true}
model: {hidden: [6], activation: tanh}
loss: binary_cross_entropy
optimizer: {name: adam, lr: 0.01}
train: {batch_size: 32}
""",
        lambda: datasets.load_iris().data,
    ),
}
#: the configs scikit-learn's MLP cannot hold, and the part its error must name
SKLEARN_UNMAPPABLE = {
    "batchnorm_gelu_elu": "model.activations: scikit-learn's MLP has one hidden activation "
    "for all layers, this network has gelu, elu",
    "every_other_activation": "model.activations: scikit-learn's MLP has one hidden activation "
    "for all layers, this network has leaky_relu, softplus, tanh, identity",
}


def bpnn_cli(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def train_checkpoint(folder: Path, config: str, *overrides: str) -> Path:
    """Train ``config`` (a shipped config's path, or YAML text) for two epochs."""
    if config.endswith(".yaml"):
        path = REPO / config
    else:
        path = folder / "config.yaml"
        path.write_text(config, encoding="utf-8")
    args = ["train", path, "--out", folder / "run", "--quiet", "--set", "train.epochs=2"]
    for override in overrides:
        args += ["--set", override]
    result = bpnn_cli(*args)
    assert result.exit_code == 0, result.stderr
    return folder / "run" / "checkpoints" / "best.npz"


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One checkpoint per entry of ``CONFIGS``, trained once for the module."""
    return {
        name: train_checkpoint(tmp_path_factory.mktemp(name), config)
        for name, (config, _) in CONFIGS.items()
    }


def assert_same_function(model: Model, exported: np.ndarray, expected: np.ndarray) -> None:
    """``exported`` equals ``expected`` (``Model.predict``) to 1e-5 absolute in the network's
    float32 output. Regression values are compared after the target scaling (``(y - offset) *
    factor``): values of about 150 have a float32 spacing of 1.5e-5, so in the data's own units
    the tolerance is 1e-5 target standard deviations."""
    assert exported.shape == expected.shape
    if model.task == "regression" and model.target_scaling is not None:
        exported = model.target_scaling.apply(exported, np.float64)
        expected = model.target_scaling.apply(expected, np.float64)
    np.testing.assert_allclose(exported, expected, rtol=0, atol=TOLERANCE)


# --- running the exported copies with their own runtimes ---------------------------------------


def run_onnx(path: Path, X: np.ndarray) -> np.ndarray:
    ort = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": X.astype(np.float32)})[0]


def torch_model(source: str) -> Any:
    """Execute the Python that ``bpnn export --format torch`` printed; return its model. It
    imports torch: a test that gets here is an oracle test (marker ``torch``, tests/conftest.py)."""
    namespace: dict = {}
    exec(source, namespace)
    return namespace["model"]


def run_torch(source: str, X: np.ndarray) -> np.ndarray:
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    model = torch_model(source)
    with torch.no_grad():
        return model(torch.as_tensor(X, dtype=torch.float32)).numpy()


def run_sklearn(path: Path, model: Model, X: np.ndarray) -> np.ndarray:
    skops_io = pytest.importorskip("skops.io", reason="the sklearn extra is not installed")
    assert skops_io.get_untrusted_types(file=path) == []  # loads with skops' defaults
    pipeline = skops_io.load(path)
    if model.task == "regression":
        return pipeline.predict(X).reshape(len(X), -1)
    np.testing.assert_array_equal(pipeline.predict(X), model.predict_labels(X))
    return pipeline.predict_proba(X)


def export_and_run(checkpoint: Path, fmt: str, folder: Path, X: np.ndarray) -> np.ndarray:
    """``bpnn export`` the checkpoint to ``folder`` and run the copy on the raw inputs ``X``."""
    model = bpnn.load_checkpoint(checkpoint)
    if fmt == "torch":
        pytest.importorskip("safetensors", reason="the torch extra is not installed")
    out = folder / {"onnx": "model.onnx", "torch": "model.safetensors", "sklearn": "m.skops"}[fmt]
    result = bpnn_cli("export", checkpoint, "--format", fmt, "--out", out)
    assert result.exit_code == 0, result.stderr
    assert f"wrote {out}" in result.stderr
    if fmt == "onnx":
        return run_onnx(out, X)
    if fmt == "torch":
        assert result.stdout == out.with_suffix(".py").read_text(encoding="utf-8")
        return run_torch(result.stdout, X)
    return run_sklearn(out, model, X)


# --- the same function ---------------------------------------------------------------------------


def by_format(*values: str) -> Any:
    """A parameter set ending with a format; the torch format's runs the printed
    ``torch.nn.Sequential``, so that case is an oracle test (marker ``torch``)."""
    return pytest.param(*values, marks=[pytest.mark.torch] if values[-1] == "torch" else [])


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        by_format(name, fmt)
        for name in CONFIGS
        for fmt in FORMATS
        if not (fmt == "sklearn" and name in SKLEARN_UNMAPPABLE)  # their errors: tested below
    ],
)
def test_exported_model_predicts_what_bpnn_predict_does(
    name: str, fmt: str, checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    if fmt == "sklearn":
        pytest.importorskip("skops", reason="the sklearn extra is not installed")
    X = CONFIGS[name][1]()
    model = bpnn.load_checkpoint(checkpoints[name])
    exported = export_and_run(checkpoints[name], fmt, tmp_path, X)
    assert_same_function(model, exported, model.predict(X))


@pytest.fixture(scope="module")
def mnist_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One epoch of configs/mnist.yaml, trained once for the module."""
    if not MNIST.is_dir():
        pytest.skip("../shared/data/mnist is not beside the repo")
    folder = tmp_path_factory.mktemp("mnist")
    return train_checkpoint(folder, "configs/mnist.yaml", f"data.path={MNIST}", "train.epochs=1")


@pytest.mark.slow
@pytest.mark.parametrize("fmt", [by_format(fmt) for fmt in FORMATS])
def test_mnist_exports_predict_the_test_images_as_bpnn_does(
    fmt: str, mnist_checkpoint: Path, tmp_path: Path
) -> None:
    with gzip.open(MNIST / "t10k-images-idx3-ubyte.gz") as handle:
        X = np.frombuffer(handle.read(), dtype=np.uint8, offset=16).reshape(-1, 784).copy()
    model = bpnn.load_checkpoint(mnist_checkpoint)
    exported = export_and_run(mnist_checkpoint, fmt, tmp_path, X)
    assert_same_function(model, exported, model.predict(X))


# --- what each format holds ------------------------------------------------------------------


def test_every_engine_activation_has_an_onnx_and_a_torch_form() -> None:
    from bpnn.export.onnx_format import ACTIVATION_NODES, OUTPUT_NODES
    from bpnn.export.torch_format import TORCH_MODULES, TORCH_OUTPUT_MODULES

    assert set(ACTIVATION_NODES) == set(ACTIVATIONS)
    assert set(TORCH_MODULES) == set(ACTIVATIONS)
    assert set(OUTPUT_NODES) == set(OUTPUT_ACTIVATIONS)
    assert set(TORCH_OUTPUT_MODULES) == set(OUTPUT_ACTIVATIONS)


def test_onnx_graph_has_a_dynamic_batch_the_metadata_and_no_training_layers(
    checkpoints: dict[str, Path],
) -> None:
    onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed")
    model = bpnn.load_checkpoint(checkpoints["batchnorm_gelu_elu"])
    proto = to_onnx(model)
    onnx.checker.check_model(proto, full_check=True)
    assert [(o.domain, o.version) for o in proto.opset_import] == [("", 17)]
    (graph_input,) = proto.graph.input
    assert graph_input.name == "input"
    batch, features = graph_input.type.tensor_type.shape.dim
    assert batch.dim_param == "batch" and features.dim_value == 64
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["bpnn_version"] == bpnn.__version__
    assert meta["classes"] == "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]"
    assert meta["feature_names"].startswith('["x0", "x1", ')
    ops = [node.op_type for node in proto.graph.node]
    assert ops[:2] == ["Sub", "Mul"]  # the input scaling comes first
    assert ops[-1] == "Softmax"
    assert not {"BatchNormalization", "Dropout"} & set(ops)


@pytest.mark.torch
def test_torch_state_dict_has_the_names_and_shapes_of_the_printed_sequential(
    checkpoints: dict[str, Path],
) -> None:
    model = bpnn.load_checkpoint(checkpoints["binary"])
    state_dict = to_torch_state_dict(model)
    assert state_dict["1.weight"].shape == (10, 30)  # Linear(30, 10): (out, in)
    assert all(value.dtype == np.float32 for value in state_dict.values())
    sequential = torch_model(to_torch_source(model, "unused.safetensors").split("model.load_")[0])
    expected = {name: tuple(t.shape) for name, t in sequential.state_dict().items()}
    assert {name: value.shape for name, value in state_dict.items()} == expected


def test_export_never_imports_torch(checkpoints: dict[str, Path], tmp_path: Path) -> None:
    pytest.importorskip("safetensors", reason="the torch extra is not installed")
    script = (
        "import sys; from pathlib import Path; from bpnn.export import export_checkpoint; "
        f"export_checkpoint(Path({str(checkpoints['digits'])!r}), 'torch', "
        f"Path({str(tmp_path / 'm.safetensors')!r})); print('torch' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize("name", SKLEARN_UNMAPPABLE)
def test_sklearn_export_names_the_part_that_does_not_map(
    name: str, checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    with pytest.raises(ExportError) as error:
        to_sklearn(bpnn.load_checkpoint(checkpoints[name]))
    assert str(error.value) == SKLEARN_UNMAPPABLE[name]
    out = tmp_path / "m.skops"
    result = bpnn_cli("export", checkpoints[name], "--format", "sklearn", "--out", out)
    assert result.exit_code == 2
    assert result.stderr == f"error: {SKLEARN_UNMAPPABLE[name]}\n"
    assert not out.exists()


def test_sklearn_export_names_an_activation_it_does_not_have(tmp_path: Path) -> None:
    checkpoint = train_checkpoint(
        tmp_path, "configs/binary.yaml", "model.activation=gelu", "train.epochs=1"
    )
    with pytest.raises(ExportError, match=r"^model.activation: scikit-learn's MLP has no gelu"):
        to_sklearn(bpnn.load_checkpoint(checkpoint))


# --- errors: missing extras, taken --out, unknown format ------------------------------------

#: the modules each format imports (a submodule imported earlier must be hidden too)
MISSING = {
    "onnx": ["onnx"],
    "torch": ["safetensors", "safetensors.numpy"],
    "sklearn": ["skops", "skops.io"],
}


@pytest.mark.parametrize("fmt", FORMATS)
def test_missing_extra_is_one_line_naming_the_pip_command(
    fmt: str, checkpoints: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for module in MISSING[fmt]:
        monkeypatch.setitem(sys.modules, module, None)  # importing it raises ImportError
    out = tmp_path / "model.out"
    result = bpnn_cli("export", checkpoints["digits"], "--format", fmt, "--out", out)
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: export --format {fmt} needs the {fmt} extra")
    assert line.endswith(f"pip install 'bpnn[{fmt}]'")
    assert not out.exists()


@pytest.mark.parametrize("fmt", FORMATS)
def test_export_refuses_an_existing_out_and_leaves_it_alone(
    fmt: str, checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "taken"
    out.write_text("mine", encoding="utf-8")
    result = bpnn_cli("export", checkpoints["digits"], "--format", fmt, "--out", out)
    assert result.exit_code == 2
    assert result.stderr == f"error: {out}: already exists; choose another --out\n"
    assert out.read_text(encoding="utf-8") == "mine"


def test_torch_export_refuses_when_the_python_beside_it_exists(
    checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    (tmp_path / "model.py").write_text("mine", encoding="utf-8")
    out = tmp_path / "model.safetensors"
    result = bpnn_cli("export", checkpoints["digits"], "--format", "torch", "--out", out)
    assert result.exit_code == 2
    assert "model.py: already exists" in result.stderr
    assert not out.exists()
    assert (tmp_path / "model.py").read_text(encoding="utf-8") == "mine"


def test_unknown_format_lists_the_formats(checkpoints: dict[str, Path], tmp_path: Path) -> None:
    result = bpnn_cli("export", checkpoints["digits"], "--format", "keras", "--out", tmp_path / "m")
    assert result.exit_code == 2
    assert result.stderr == "error: --format: unknown format 'keras'; choose from " + (
        ", ".join(FORMATS) + "\n"
    )


def test_help_and_docs_name_every_format() -> None:
    help_text = bpnn_cli("export", "--help").stdout
    docs = (REPO / "docs" / "export.md").read_text(encoding="utf-8")
    for fmt in FORMATS:
        assert fmt in help_text
        assert f"--format {fmt}" in docs
        assert f"pip install 'bpnn[{fmt}]'" in docs


# --- every activation of the registry, hidden and output, in every format ---------------------

#: a value away from the default for each activation option (the copy must carry it)
OPTIONS: dict[str, dict[str, float]] = {"leaky_relu": {"slope": 0.2}, "elu": {"alpha": 0.6}}
#: inline data: 24 rows of 3 features, two regression targets and three classes
ACTIVATION_X = np.random.default_rng(0).normal(0.0, 2.0, size=(24, 3))
ACTIVATION_TARGETS = {
    "regression": np.c_[np.tanh(ACTIVATION_X[:, 0]) * 5 + 3, ACTIVATION_X[:, 1] * 2 - 1],
    "multiclass": (ACTIVATION_X[:, 0] > 0).astype(int) + (ACTIVATION_X[:, 2] > 1).astype(int),
}


def test_every_activation_with_options_has_a_value_away_from_its_default() -> None:
    with_options = {name for name, cls in OUTPUT_ACTIVATIONS.items() if cls().options()}
    assert set(OPTIONS) == with_options


@pytest.fixture(scope="module")
def activation_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``(where, name, task) -> checkpoint``: a network with the activation ``name`` in its
    hidden layers (``where="hidden"``, regression) or as ``model.output`` (under mse, on
    regression targets or on one-hot classes), trained for two epochs once per case."""
    trained: dict[tuple[str, str, str], Path] = {}

    def checkpoint(where: str, name: str, task: str) -> Path:
        if (where, name, task) not in trained:
            spec = {"name": name, **OPTIONS.get(name, {})}
            model = (
                {"hidden": [6, 5], "activation": spec}
                if where == "hidden"
                else {"hidden": [6], "activation": "tanh", "output": spec}
            )
            data = {
                "source": "inline",
                "X": ACTIVATION_X.tolist(),
                "y": ACTIVATION_TARGETS[task].tolist(),
                **({"one_hot": True} if task == "multiclass" else {"scale_target": True}),
            }
            config = {
                "name": f"{where}_{name}_{task}",
                "seed": 0,
                "data": data,
                "model": model,
                "loss": "mse",
                "optimizer": {"name": "adam", "lr": 0.05},
                "train": {"batch_size": 8},
            }
            folder = tmp_path_factory.mktemp(f"{where}_{name}_{task}")
            trained[where, name, task] = train_checkpoint(folder, json.dumps(config))
        return trained[where, name, task]

    return checkpoint


@pytest.mark.parametrize("fmt", [by_format(fmt) for fmt in FORMATS])
@pytest.mark.parametrize(
    ("where", "name", "task"),
    [("hidden", name, "regression") for name in ACTIVATIONS]
    + [("output", name, task) for name in OUTPUT_ACTIVATIONS for task in ACTIVATION_TARGETS],
)
def test_every_activation_is_exported_exactly_or_refused_naming_it(
    where: str,
    name: str,
    task: str,
    fmt: str,
    activation_checkpoint: Callable[..., Path],
    tmp_path: Path,
) -> None:
    """Each pair of (activation, format) either computes what ``bpnn predict`` does to 1e-5 or
    is refused with one line naming the activation, exit 2, no file left: never a different
    function. onnx and torch carry every activation of the registry."""
    checkpoint = activation_checkpoint(where, name, task)
    model = bpnn.load_checkpoint(checkpoint)
    assert model.task == task
    out = tmp_path / f"model.{fmt}"
    result = bpnn_cli("export", checkpoint, "--format", fmt, "--out", out)
    if result.exit_code != 0:
        assert fmt == "sklearn", result.stderr  # onnx and torch have every activation
        assert result.exit_code == 2
        (line,) = result.stderr.splitlines()
        assert line.startswith(f"error: model.{'output' if where == 'output' else 'activation'}")
        assert f" {name} " in line
        assert list(tmp_path.iterdir()) == []
        return
    X = ACTIVATION_X * 1.5  # beyond the training range too
    if fmt == "onnx":
        exported = run_onnx(out, X)
    elif fmt == "torch":
        exported = run_torch(result.stdout, X)
    else:
        exported = run_sklearn(out, model, X)
    assert_same_function(model, exported, model.predict(X))
