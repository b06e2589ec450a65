"""``loss.class_weights`` that does not give one weight per class is refused in the same line by
every command that builds the network for a data set (``bpnn.model.network_loss``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.support import REPO, assert_answered, invoke, run_in_process

#: every command that builds a network from a config and its data; CONFIG: the config's path
COMMANDS = [
    ["train", "CONFIG", "--out", "run"],
    ["config", "check", "CONFIG"],
    ["explain", "CONFIG"],
    ["gradcheck", "CONFIG"],
    ["lr-find", "CONFIG"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[: c.index("CONFIG")]))
def test_class_weights_of_the_wrong_length_are_one_line_naming_the_key(
    tiny_config_file, run_cli, tmp_path, monkeypatch, command: list[str]
) -> None:
    """In this process, and ``train`` also through the real command line."""
    config = tiny_config_file(loss={"name": "cross_entropy", "class_weights": [1.0, 2.0]})
    args = [config if arg == "CONFIG" else arg for arg in command]
    monkeypatch.chdir(tmp_path)
    result = invoke(*args)
    assert_answered(result)
    assert result.exit_code == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {config}: loss.class_weights: has 2 entries, but the data has 3 classes "
        "(0, 1, 2); give one weight per class, in that order"
    ), result.stderr
    if command[0] == "train":
        real = run_cli(*args)
        assert (real.returncode, real.stderr) == (2, result.stderr)
    assert not (tmp_path / "run").exists()


# --- rules the training labels turn into weights (issue 28) ------------------------------------

PENGUINS = REPO / "examples" / "penguins.yaml"  # 152 Adelie, 68 Chinstrap, 124 Gentoo


def _trained(tmp_path: Path, *assignments: str) -> dict:
    sets = [part for assignment in assignments for part in ("--set", assignment)]
    result = run_in_process(
        "train",
        PENGUINS,
        "--set",
        "train.epochs=1",
        *sets,
        "--out",
        tmp_path / "run",
        "-q",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load((tmp_path / "run" / "config.yaml").read_text(encoding="utf-8"))


def test_balanced_class_weights_are_scikit_learns_on_the_training_split(tmp_path: Path) -> None:
    """``balanced``: ``n_samples / (n_classes * count)`` of the training split, written into
    the run's config.yaml, which resume, eval and every export read back."""
    from sklearn.utils.class_weight import compute_class_weight

    from bpnn.config import load_config
    from bpnn.run.pipeline import load_data

    saved = _trained(tmp_path, "loss.class_weights=balanced")
    data = load_data(load_config(PENGUINS, ["train.epochs=1"]))
    expected = compute_class_weight("balanced", classes=np.arange(3), y=data.y_train)
    assert saved["loss"]["class_weights"] == pytest.approx(expected.tolist(), rel=1e-12)
    assert saved["loss"]["class_weights"][1] > 1.5 > saved["loss"]["class_weights"][0]
    resumed = run_in_process(
        "resume", tmp_path / "run", "--epochs", "2", "-q", cwd=tmp_path
    )  # the saved list trains on
    assert resumed.returncode == 0, resumed.stderr


def test_class_weights_by_label_leave_the_other_classes_at_one(tmp_path: Path) -> None:
    saved = _trained(tmp_path, "loss.class_weights={Chinstrap: 2.5}")
    assert saved["loss"]["class_weights"] == [1.0, 2.5, 1.0]  # Adelie, Chinstrap, Gentoo


def test_a_label_the_data_does_not_have_is_one_line(tmp_path: Path) -> None:
    result = run_in_process(
        "train",
        PENGUINS,
        "--set",
        "loss.class_weights={Emperor: 2}",
        "--out",
        tmp_path / "r",
        cwd=tmp_path,
    )
    assert result.returncode == 2
    line = result.stderr.strip().splitlines()[-1]  # after the table's description
    assert line.endswith(
        "loss.class_weights.Emperor: not a class of the data (Adelie, Chinstrap, Gentoo)"
    )
    assert not (tmp_path / "r").exists()


def test_a_rule_in_a_tampered_run_config_is_refused_by_resume(tmp_path: Path) -> None:
    """A saved config always holds numbers; 'balanced' written into it by hand is one line."""
    _trained(tmp_path, "loss.class_weights=balanced")
    path = tmp_path / "run" / "config.yaml"
    saved = yaml.safe_load(path.read_text(encoding="utf-8"))
    saved["loss"]["class_weights"] = "balanced"
    path.write_text(yaml.safe_dump(saved), encoding="utf-8")
    result = run_in_process("resume", tmp_path / "run", "--epochs", "2", cwd=tmp_path)
    assert result.returncode in (2, 4, 5, 6), result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")


def test_balanced_pos_weight_is_negatives_over_positives(tmp_path: Path) -> None:
    """Binary cross-entropy's ``pos_weight: balanced`` on a binary table: ``count(0) /
    count(1)`` of the training split (PyTorch's recipe for BCEWithLogitsLoss)."""
    import pandas as pd

    from bpnn.config import load_config
    from bpnn.run.pipeline import load_data

    rng = np.random.default_rng(0)
    x = rng.normal(size=200)
    frame = pd.DataFrame({"x": x, "label": np.where(x > 0.8, "rare", "common")})
    frame.to_csv(tmp_path / "rare.csv", index=False)
    config = tmp_path / "rare.yaml"
    config.write_text(
        "name: rare\ndata: {source: csv, path: rare.csv, target: label}\n"
        "model: {hidden: [4]}\nloss: {name: binary_cross_entropy, pos_weight: balanced}\n"
        "train: {epochs: 2}\n",
        encoding="utf-8",
    )
    result = run_in_process("train", config, "--out", tmp_path / "run", "-q", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text(encoding="utf-8"))
    y = load_data(load_config(config)).y_train
    assert saved["loss"]["pos_weight"] == pytest.approx((y == 0).sum() / (y == 1).sum())
    assert saved["loss"]["pos_weight"] > 2


def test_a_new_run_says_the_class_counts_of_each_stratified_split(tmp_path: Path) -> None:
    result = run_in_process(
        "train", PENGUINS, "--set", "train.epochs=1", "--out", tmp_path / "run", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    counts = {}
    for line in result.stderr.splitlines():
        split, _, rest = line.partition(" split: ")
        if rest:
            inside = rest[rest.index("(") + 1 : -1]
            counts[split] = {k: int(v) for k, v in (p.split(": ") for p in inside.split(", "))}
    assert list(counts) == ["train", "val", "test"]
    assert sum(sum(c.values()) for c in counts.values()) == 344
    for split in counts.values():  # stratified: each split has the whole table's shares
        total = sum(split.values())
        for species, whole in {"Adelie": 152, "Chinstrap": 68, "Gentoo": 124}.items():
            assert abs(split[species] / total - whole / 344) < 0.03, (species, split)
