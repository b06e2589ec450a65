"""`bpnn config schema`: a valid JSON Schema that accepts every shipped config and refuses
unknown keys and unknown component names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bpnn.cli import app
from bpnn.config import parse_yaml
from tests.support import REPO

jsonschema = pytest.importorskip("jsonschema")

SHIPPED = [
    path
    for path in sorted((REPO / "configs").glob("*.yaml"))
    + sorted((REPO / "examples").glob("*.yaml"))
    if not path.name.endswith("-sweep.yaml")  # a sweep file, not a config
]
runner = CliRunner()


@pytest.fixture(scope="module")
def validator() -> object:
    result = runner.invoke(app, ["config", "schema"])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def errors(validator: object, text: str) -> list[str]:
    return [e.message for e in validator.iter_errors(parse_yaml(text, "test"))]  # type: ignore[attr-defined]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_the_schema_accepts_every_shipped_config(validator: object, path: Path) -> None:
    assert errors(validator, path.read_text()) == []


def test_the_schema_refuses_an_unknown_key(validator: object) -> None:
    problems = errors(validator, "train: {epochs: 3, epochz: 4}\n")
    assert any("epochz" in problem for problem in problems)
    assert errors(validator, "trian: {epochs: 3}\n")


def test_the_schema_knows_the_component_names_and_both_spellings(validator: object) -> None:
    assert errors(validator, "model: {activation: tanh}\n") == []
    assert errors(validator, "model: {activation: {name: leaky_relu, slope: 0.1}}\n") == []
    assert errors(validator, "optimizer: {name: sgd, lr: 0.1, momentum: 0.9}\n") == []
    assert errors(validator, "train: {early_stopping: true}\n") == []
    assert errors(validator, "model: {activation: tanhh}\n")
    assert errors(validator, "optimizer: {name: adam, lr: -1}\n")
    assert errors(validator, "data: {source: nowhere}\n")


def test_the_schema_knows_bias_init_reduction_half_sum_and_data_classes(validator: object) -> None:
    assert errors(validator, "model: {bias_init: {name: constant, value: 0.1}}\n") == []
    assert errors(validator, "model: {bias_init: pytorch_linear}\n") == []
    assert errors(validator, "model: {bias_init: he_normal}\n")  # a weight initializer only
    assert errors(validator, "loss: {name: mse, reduction: half_sum}\n") == []
    assert errors(validator, "data: {source: inline, X: [[1]], y: [1], classes: [0, 1]}\n") == []


def test_each_component_default_is_written_once() -> None:
    """A component's default name is written in its section's model only; the bare-name
    expansion of ``--set`` and the JSON schema read it from there (they repeated it)."""
    from bpnn.config import _DEFAULT_COMPONENTS, config_schema
    from tests.support import PACKAGE

    source = "".join(
        path.read_text(encoding="utf-8") for path in sorted((PACKAGE / "config").glob("*.py"))
    )
    schema = config_schema()
    model = schema["$defs"]["ModelConfig"]["properties"]
    for path, name in _DEFAULT_COMPONENTS.items():
        assert source.count(f'"{name}"') == 1, (path, name)
        key = path.removeprefix("model.")
        shown = (model if path.startswith("model.") else schema["properties"])[key]["default"]
        assert shown == name, path


def test_the_schema_knows_the_callbacks_a_config_names(validator: object) -> None:
    assert errors(validator, "train: {callbacks: [csv]}\n") == []
    assert errors(validator, "train: {callbacks: [{name: csv, delimiter: ';'}]}\n") == []
    assert errors(validator, "train: {callbacks: [cvs]}\n")
