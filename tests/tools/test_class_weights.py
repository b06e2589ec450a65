"""``loss.class_weights`` that does not give one weight per class is refused in the same line by
every command that builds the network for a data set (``bpnn.model.network_loss``)."""

from __future__ import annotations

import pytest

from tests.support import assert_answered, invoke

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
