"""Specification of the experiment config (bpnn.config): defaults in one place, YAML loading,
dotted ``--set`` overrides, and one-line errors that name the key.

No data is loaded here: every check happens when the config is validated.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bpnn.config import Config, load_config, validate
from bpnn.errors import ConfigError

ISSUE_EXAMPLE = """\
name: digits-mlp
seed: 0
data: {source: digits, test_fraction: 0.2, val_fraction: 0.1, scale: standard}
model: {hidden: [64, 32], activation: relu, init: he_normal}
loss: cross_entropy
optimizer: {name: adam, lr: 0.001}
train: {epochs: 30, batch_size: 32}
"""

SECTIONS = ("name", "seed", "data", "model", "loss", "optimizer", "schedule", "train")


def write(folder: Path, text: str, name: str = "exp.yaml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def config_error(raw: Any) -> str:
    """The message of the ConfigError that validating ``raw`` raises (it must raise one)."""
    with pytest.raises(ConfigError) as caught:
        validate(raw, "exp.yaml")
    message = str(caught.value)
    assert "\n" not in message, f"not one line: {message!r}"
    assert message.startswith("exp.yaml: "), message
    return message


def load_error(path: Path, overrides: list[str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(path, overrides or [])
    message = str(caught.value)
    assert "\n" not in message, f"not one line: {message!r}"
    return message


# --- defaults and the resolved config ---------------------------------------------------------


def test_empty_mapping_fills_every_section_with_defaults() -> None:
    resolved = validate({}).resolved()
    assert list(resolved) == list(SECTIONS)
    assert resolved["model"]["hidden"] == [64, 32]
    assert resolved["optimizer"] == {
        "name": "adam",
        "lr": 0.001,
        "weight_decay": 0.0,
        "beta1": 0.9,
        "beta2": 0.999,
        "eps": 1e-08,
        "amsgrad": False,
    }
    assert resolved["loss"] == {
        "name": "cross_entropy",
        "label_smoothing": 0.0,
        "class_weights": None,
        "reduction": "mean",
    }
    assert resolved["model"]["output"] == "softmax"  # auto: the loss's own, the fused gradient
    assert resolved["data"]["one_hot"] is False
    assert resolved["schedule"] == {"name": "constant", "warmup_epochs": 0}
    assert resolved["data"]["scale"] == "standard"
    assert resolved["data"]["scale_target"] is False
    assert resolved["train"]["early_stopping"] is None


def test_resolved_config_fills_component_options_with_their_defaults() -> None:
    config = validate(
        {
            "model": {"activation": "leaky_relu"},
            "schedule": "step",
            "optimizer": {"name": "adamw"},
            "train": {"early_stopping": True},
        }
    )
    resolved = config.resolved()
    assert resolved["model"]["activation"] == {"name": "leaky_relu", "slope": 0.01}
    assert resolved["schedule"] == {
        "name": "step",
        "warmup_epochs": 0,
        "step_size": 10,
        "gamma": 0.1,
    }
    assert resolved["optimizer"]["weight_decay"] == 0.01
    assert resolved["train"]["early_stopping"] == {
        "monitor": "val_loss",
        "patience": 10,
        "min_delta": 0.0,
        "mode": "auto",
        "restore_best": True,
    }


ROUND_TRIP_CASES = {
    "defaults": {},
    "issue example": yaml.safe_load(ISSUE_EXAMPLE),
    "adamw": {"optimizer": {"name": "adamw", "weight_decay": 0.05, "amsgrad": True}},
    "adam with l2": {"optimizer": {"name": "adam", "weight_decay": 0.05}},
    "early stopping": {"train": {"early_stopping": {"patience": 3, "monitor": "val_accuracy"}}},
    "batch norm and dropout": {
        "model": {"hidden": [4, 3], "batch_norm": True, "dropout": [0.1, 0.2]}
    },
    "per-layer activations": {
        "model": {"hidden": [4, 3], "activations": ["tanh", {"name": "leaky_relu", "slope": 0.2}]}
    },
    "synthetic source": {"data": {"source": "moons", "options": {"n_samples": 100}}},
    "regression": {"data": {"source": "diabetes"}, "loss": {"name": "huber", "delta": 0.5}},
    "schedule": {"schedule": {"name": "cosine", "warmup_epochs": 2}, "train": {"epochs": 5}},
    "label smoothing": {"loss": {"name": "cross_entropy", "label_smoothing": 0.1}},
}


@pytest.mark.parametrize("raw", ROUND_TRIP_CASES.values(), ids=ROUND_TRIP_CASES.keys())
def test_resolved_config_validates_to_the_same_config(raw: dict[str, Any]) -> None:
    config = validate(raw)
    again = validate(config.resolved())
    assert again == config
    assert again.resolved() == config.resolved()


@pytest.mark.parametrize("raw", ROUND_TRIP_CASES.values(), ids=ROUND_TRIP_CASES.keys())
def test_resolved_yaml_text_validates_to_the_same_config(raw: dict[str, Any]) -> None:
    config = validate(raw)
    assert validate(yaml.safe_load(config.to_yaml())) == config


def test_config_is_frozen() -> None:
    config = validate({})
    with pytest.raises(ValueError):
        config.seed = 3  # type: ignore[misc]


def test_issue_example_loads_as_written(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ISSUE_EXAMPLE))
    assert isinstance(config, Config)
    assert config.name == "digits-mlp"
    assert config.data.source == "digits"
    assert config.data.test_fraction == 0.2
    assert config.model.hidden == [64, 32]
    assert config.model.activation.name == "relu"
    assert config.model.init.name == "he_normal"
    assert config.loss.name == "cross_entropy"
    assert config.task == "multiclass"
    assert config.optimizer.name == "adam"
    assert config.optimizer.lr == 0.001
    assert (config.train.epochs, config.train.batch_size) == (30, 32)


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n"])
def test_empty_file_gives_all_defaults_and_the_file_stem_as_name(tmp_path: Path, text: str) -> None:
    config = load_config(write(tmp_path, text, "tiny-run.yaml"))
    expected = validate({}).resolved()
    expected["name"] = "tiny-run"
    assert config.resolved() == expected


def test_name_defaults_to_the_file_stem_but_the_file_wins(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "seed: 1\n", "my_exp.v2.yaml")).name == "my_exp.v2"
    assert load_config(write(tmp_path, "name: other\n", "my_exp.yaml")).name == "other"


def test_yaml_exponent_without_dot_parses_as_float(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "optimizer: {lr: 1e-3}\n"))
    assert config.optimizer.lr == 0.001
    assert isinstance(config.optimizer.lr, float)


def test_task_follows_from_the_loss() -> None:
    assert validate({"loss": "cross_entropy"}).task == "multiclass"
    assert validate({"loss": "binary_cross_entropy"}).task == "binary"
    assert validate({"loss": "mse", "data": {"source": "diabetes"}}).task == "regression"


def test_regression_loss_scales_the_target_by_default() -> None:
    assert validate({"loss": "mse", "data": {"source": "diabetes"}}).data.scale_target is True
    assert validate({"loss": "cross_entropy"}).data.scale_target is False


def test_mnist_and_idx_sources_default_to_pixel_scaling() -> None:
    assert validate({"data": {"source": "mnist"}}).data.scale == "pixels"
    assert validate({"data": {"source": "iris"}}).data.scale == "standard"


def test_early_stopping_true_means_its_defaults_and_false_means_off() -> None:
    assert validate({"train": {"early_stopping": True}}).train.early_stopping is not None
    assert validate({"train": {"early_stopping": False}}).train.early_stopping is None


# --- errors name the key ----------------------------------------------------------------------


def test_unknown_key_suggests_the_closest_known_key() -> None:
    message = config_error({"model": {"hiden": [4]}})
    assert "model.hiden" in message
    assert "did you mean 'hidden'" in message


def test_unknown_top_level_key_lists_the_sections() -> None:
    message = config_error({"trian": {"epochs": 2}})
    assert "trian: unknown key" in message
    assert "did you mean 'train'" in message


def test_zero_hidden_units_names_the_list_entry() -> None:
    message = config_error({"model": {"hidden": [4, 0]}})
    assert message == "exp.yaml: model.hidden[1]: must be a positive integer, got 0"


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"model": {"hidden": "abc"}}, "model.hidden"),
        ({"model": {"hidden": [4, "x"]}}, "model.hidden[1]"),
        ({"optimizer": {"lr": "fast"}}, "optimizer.lr"),
        ({"train": {"epochs": 2.5}}, "train.epochs"),
        ({"train": {"epochs": "10"}}, "train.epochs"),
        ({"train": {"batch_size": True}}, "train.batch_size"),
        ({"train": {"dtype": "float16"}}, "train.dtype"),
        ({"train": {"early_stopping": {"mode": "up"}}}, "train.early_stopping.mode"),
        ({"seed": "zero"}, "seed"),
        ({"data": {"source": "nope"}}, "data.source"),
        ({"model": {"batch_norm": "maybe"}}, "model.batch_norm"),
    ],
)
def test_wrong_type_names_the_key_and_the_value(raw: dict[str, Any], key: str) -> None:
    message = config_error(raw)
    assert f"exp.yaml: {key}: " in message


@pytest.mark.parametrize(
    ("raw", "key", "value"),
    [
        ({"optimizer": {"lr": 0}}, "optimizer.lr", "0"),
        ({"optimizer": {"lr": -0.1}}, "optimizer.lr", "-0.1"),
        ({"model": {"dropout": 1.5}}, "model.dropout", "1.5"),
        ({"train": {"early_stopping": {"patience": 0}}}, "train.early_stopping.patience", "0"),
        ({"optimizer": {"name": "adam", "beta1": 1.5}}, "optimizer.beta1", "1.5"),
        ({"optimizer": {"weight_decay": -1}}, "optimizer.weight_decay", "-1"),
        ({"train": {"grad_clip": 0}}, "train.grad_clip", "0"),
        ({"train": {"epochs": 0}}, "train.epochs", "0"),
        ({"seed": -1}, "seed", "-1"),
        ({"data": {"test_fraction": 1}}, "data.test_fraction", "1"),
        ({"data": {"val_fraction": 1}}, "data.val_fraction", "1"),
        ({"loss": {"name": "cross_entropy", "label_smoothing": 2}}, "loss.label_smoothing", "2"),
        ({"schedule": {"name": "step", "gamma": 0}}, "schedule.gamma", "0"),
    ],
)
def test_impossible_value_names_the_key_and_the_value(
    raw: dict[str, Any], key: str, value: str
) -> None:
    message = config_error(raw)
    assert f"exp.yaml: {key}: " in message
    assert value in message.split(f"{key}: ", 1)[1]


def test_adam_beta1_out_of_range_names_optimizer_beta1() -> None:
    message = config_error({"optimizer": {"name": "adam", "beta1": 1.5}})
    assert message.startswith("exp.yaml: optimizer.beta1: ")
    assert "[0, 1)" in message


def test_per_layer_dropout_out_of_range_names_the_entry() -> None:
    message = config_error({"model": {"hidden": [4, 4], "dropout": [0.1, 1.5]}})
    assert "model.dropout[1]" in message
    assert "1.5" in message


@pytest.mark.parametrize(
    ("raw", "where", "kind", "close"),
    [
        ({"model": {"activation": "relu2"}}, "model.activation", "activation", "relu"),
        ({"model": {"init": "he_normall"}}, "model.init", "initializer", "he_normal"),
        ({"loss": "cross_entropyy"}, "loss", "loss", "cross_entropy"),
        ({"optimizer": {"name": "adamm"}}, "optimizer", "optimizer", "adam"),
        ({"schedule": "cosinee"}, "schedule", "schedule", "cosine"),
    ],
)
def test_unknown_component_name_lists_the_choices(
    raw: dict[str, Any], where: str, kind: str, close: str
) -> None:
    message = config_error(raw)
    assert message.startswith(f"exp.yaml: {where}: unknown {kind} ")
    assert f"did you mean '{close}'" in message
    assert "choose from: " in message
    assert close in message.split("choose from: ", 1)[1].split(", ")


def test_unknown_activation_in_a_per_layer_list_names_its_index() -> None:
    message = config_error({"model": {"hidden": [3, 3], "activations": ["relu", "bogus"]}})
    assert "model.activations[1]: unknown activation 'bogus'" in message


@pytest.mark.parametrize(
    ("raw", "key", "close"),
    [
        ({"schedule": {"name": "step", "gama": 0.5}}, "schedule.gama", "gamma"),
        (
            {"model": {"activation": {"name": "leaky_relu", "slop": 0.1}}},
            "model.activation.slop",
            "slope",
        ),
        ({"loss": {"name": "huber", "delt": 2}}, "loss.delt", "delta"),
        ({"optimizer": {"name": "adam", "beta_1": 0.8}}, "optimizer.beta_1", "beta1"),
    ],
)
def test_unknown_component_option_suggests_the_closest_option(
    raw: dict[str, Any], key: str, close: str
) -> None:
    message = config_error(raw)
    assert f"exp.yaml: {key}: unknown option" in message
    assert f"did you mean '{close}'" in message


def test_option_of_an_optimizer_without_options_says_so() -> None:
    message = config_error({"optimizer": {"name": "sgd", "beta1": 0.5}})
    assert "optimizer.beta1: unknown option of optimizer 'sgd'" in message


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"data": {"source": "digits", "path": "x.csv"}}, "data.path"),
        ({"data": {"source": "iris", "options": {"n_samples": 10}}}, "data.options"),
        ({"data": {"source": "mnist", "test_fraction": 0.3}}, "data.test_fraction"),
        ({"data": {"source": "csv", "path": "x.csv", "x_key": "A"}}, "data.x_key"),
    ],
)
def test_data_key_that_does_not_apply_to_the_source_is_an_error(
    raw: dict[str, Any], key: str
) -> None:
    message = config_error(raw)
    assert f"{key}: does not apply to source '{raw['data']['source']}'" in message


def test_file_source_requires_a_path() -> None:
    assert "data.path: required for source 'csv'" in config_error({"data": {"source": "csv"}})


def test_per_layer_lists_must_have_one_entry_per_hidden_layer() -> None:
    message = config_error({"model": {"hidden": [4, 4], "dropout": [0.1]}})
    assert "model.dropout: has 1 entries for 2 hidden layers" in message


def test_name_must_be_usable_as_a_folder_name() -> None:
    assert "name: " in config_error({"name": "a/b"})


def test_target_scaling_of_a_classification_loss_is_an_error() -> None:
    message = config_error({"data": {"scale_target": True}})
    assert "data.scale_target" in message


def test_invalid_yaml_names_the_file_and_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\nmodel:\n  hidden: [1, 2\n  activation: relu\n")
    message = load_error(path)
    assert message.startswith(f"{path}: invalid YAML (line 4, ")


@pytest.mark.parametrize(
    ("text", "line", "key"),
    [
        ("name: x\noptimizer:\n  lr: 0.1\n  lr: 0.2\n", 4, "'lr'"),
        ("name: x\nseed: 1\nname: y\n", 3, "'name'"),
        ("name: x\ndata: {source: csv, path: a.csv, path: b.csv}\n", 2, "'path'"),
    ],
)
def test_a_key_written_twice_is_refused_with_its_line(
    tmp_path: Path, text: str, line: int, key: str
) -> None:
    """PyYAML keeps the last of two equal keys silently; the config reader refuses them."""
    path = write(tmp_path, text)
    message = load_error(path)
    assert message.startswith(f"{path}: invalid YAML (line {line}, column ")
    assert message.endswith(f": the key {key} is written twice")


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ('name: x\ndata: {source: "\\ud800"}\n', 2),
        ('name: x\n"\\udc00key": 1\n', 2),
        ('name: "\\ud800\\udc00"\n', 1),  # a pair of escapes is two lone halves in YAML
    ],
)
def test_an_escaped_surrogate_is_refused_with_its_line(
    tmp_path: Path, text: str, line: int
) -> None:
    """``"\\ud800"`` is valid YAML but no text: pydantic, rich and every file writer would fail
    on it later with a traceback."""
    path = write(tmp_path, text)
    message = load_error(path)
    assert message.startswith(f"{path}: invalid YAML (line {line}, column ")
    assert message.endswith(
        "a string holds an escaped surrogate (\\ud800 to \\udfff), which is not text"
    )


def test_a_merge_key_may_be_overridden() -> None:
    from bpnn.config.reading import parse_yaml

    text = "shared: &shared {lr: 0.1, name: adam}\noptimizer:\n  <<: *shared\n  lr: 0.2\n"
    assert parse_yaml(text, "merge.yaml")["optimizer"] == {"lr": 0.2, "name": "adam"}


def test_tab_indentation_is_reported_as_invalid_yaml_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "seed: 1\nmodel:\n\thidden: [4]\n")
    assert load_error(path).startswith(f"{path}: invalid YAML (line 3, ")


@pytest.mark.parametrize(("text", "kind"), [("- a\n- b\n", "list"), ("hello\n", "str")])
def test_top_level_that_is_not_a_mapping_is_an_error(tmp_path: Path, text: str, kind: str) -> None:
    path = write(tmp_path, text)
    assert load_error(path) == (f"{path}: expected a mapping of keys at the top level, got {kind}")


def test_missing_config_file_is_a_config_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    assert load_error(path) == f"{path}: no such config file"


def test_error_from_a_file_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "optimizer: {lr: 0}\n")
    assert load_error(path).startswith(f"{path}: optimizer.lr: ")


# --- --set overrides --------------------------------------------------------------------------


def test_set_overrides_dotted_keys(tmp_path: Path) -> None:
    path = write(tmp_path, ISSUE_EXAMPLE)
    config = load_config(path, ["train.epochs=5", "model.hidden=[8, 4]", "data.scale=minmax"])
    assert config.train.epochs == 5
    assert config.model.hidden == [8, 4]
    assert config.data.scale == "minmax"
    assert config.optimizer.lr == 0.001  # untouched


def test_set_values_are_typed_as_yaml(tmp_path: Path) -> None:
    path = write(tmp_path, ISSUE_EXAMPLE)
    config = load_config(
        path, ["optimizer.lr=1e-3", "train.shuffle=false", "seed=7", "train.grad_clip=2"]
    )
    assert config.optimizer.lr == 0.001 and isinstance(config.optimizer.lr, float)
    assert config.train.shuffle is False
    assert config.seed == 7
    assert config.train.grad_clip == 2.0


def test_repeated_set_of_the_same_key_keeps_the_last(tmp_path: Path) -> None:
    path = write(tmp_path, ISSUE_EXAMPLE)
    config = load_config(path, ["optimizer.lr=0.1", "optimizer.lr=0.2"])
    assert config.optimizer.lr == 0.2


def test_set_adds_a_section_the_file_does_not_have(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "seed: 1\n"), ["train.early_stopping.patience=3"])
    assert config.train.early_stopping is not None
    assert config.train.early_stopping.patience == 3


def test_set_option_upgrades_a_component_named_by_a_string(tmp_path: Path) -> None:
    path = write(tmp_path, ISSUE_EXAMPLE)  # loss: cross_entropy
    config = load_config(
        path,
        [
            "loss.label_smoothing=0.1",
            "model.activation.name=leaky_relu",
            "model.activation.slope=0.2",
        ],
    )
    assert config.loss.name == "cross_entropy"
    assert config.loss.options["label_smoothing"] == 0.1
    assert config.model.activation.name == "leaky_relu"
    assert config.model.activation.options == {"slope": 0.2}


def test_set_option_of_a_default_component_keeps_its_default_name(tmp_path: Path) -> None:
    """The file has no ``loss`` key: the option goes to the default loss (cross_entropy)."""
    config = load_config(write(tmp_path, "seed: 1\n"), ["loss.label_smoothing=0.1"])
    assert config.loss.name == "cross_entropy"
    assert config.loss.options["label_smoothing"] == 0.1


def test_set_option_of_early_stopping_written_as_true(tmp_path: Path) -> None:
    path = write(tmp_path, "train: {early_stopping: true}\n")
    config = load_config(path, ["train.early_stopping.patience=3"])
    assert config.train.early_stopping is not None
    assert config.train.early_stopping.patience == 3


def test_set_component_name_replaces_the_string(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ISSUE_EXAMPLE), ["optimizer.name=sgd"])
    assert config.optimizer.name == "sgd"


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("optimizer.lrr=0.1", "optimizer.lrr"),
        ("nope=1", "nope"),
        ("model.hiden=[4]", "model.hiden"),
        ("train.early_stopping.patiense=3", "train.early_stopping.patiense"),
        ("schedule.gamma=0.5", "schedule.gamma"),  # constant has no gamma: not ignored
    ],
)
def test_set_of_an_unknown_key_is_an_error_not_ignored(
    tmp_path: Path, override: str, key: str
) -> None:
    message = load_error(write(tmp_path, ISSUE_EXAMPLE), [override])
    assert key in message


def test_set_with_an_impossible_value_names_the_key(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, ISSUE_EXAMPLE), ["train.epochs=abc"])
    assert "train.epochs: " in message and "'abc'" in message


@pytest.mark.parametrize(
    "override", ["optimizer.lr", "=3", "optimizer..lr=3", ".lr=3", "optimizer.=3"]
)
def test_bad_set_syntax_is_a_one_line_error_with_an_example(tmp_path: Path, override: str) -> None:
    message = load_error(write(tmp_path, ISSUE_EXAMPLE), [override])
    assert message.startswith(f"--set {override!r}: expected KEY=VALUE")


def test_set_with_invalid_yaml_value_names_the_key(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, ISSUE_EXAMPLE), ["model.hidden=[1,"])
    assert message.startswith("--set model.hidden: invalid YAML")


def test_set_into_a_value_that_is_not_a_section_is_an_error(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, ISSUE_EXAMPLE), ["model.hidden.x=1"])
    assert "model.hidden" in message


# --- paths ------------------------------------------------------------------------------------


def test_relative_data_paths_resolve_against_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "experiments"
    folder.mkdir()
    path = write(folder, "data: {source: csv, path: data/table.csv, test_path: ../test.csv}\n")
    monkeypatch.chdir(tmp_path)
    config = load_config(Path("experiments") / "exp.yaml")
    assert Path(config.data.path) == (folder / "data" / "table.csv").resolve()
    assert Path(config.data.test_path) == (tmp_path / "test.csv").resolve()
    assert load_config(path).data.path == config.data.path


def test_absolute_data_paths_are_kept(tmp_path: Path) -> None:
    table = tmp_path / "elsewhere" / "t.csv"
    path = write(tmp_path, f"data: {{source: csv, path: '{table}'}}\n")
    assert Path(load_config(path).data.path) == table.resolve()


def test_relative_paths_given_with_set_resolve_against_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "experiments"
    folder.mkdir()
    path = write(folder, "data: {source: csv, path: data/table.csv}\n")
    monkeypatch.chdir(tmp_path)
    config = load_config(path, ["data.path=mine.csv"])
    assert Path(config.data.path) == (tmp_path / "mine.csv").resolve()


def test_resolved_config_of_a_file_source_keeps_its_absolute_path(tmp_path: Path) -> None:
    path = write(tmp_path, "data: {source: csv, path: t.csv, target: label}\n")
    resolved = load_config(path).resolved()
    assert resolved["data"]["path"] == str((tmp_path / "t.csv").resolve())
    assert resolved["data"]["target"] == "label"
    assert "x_key" not in resolved["data"]  # only the keys of the source
    assert validate(resolved) == load_config(path)
