"""Dotted ``--set KEY=VALUE`` overrides, applied to the raw mapping before it is validated."""

from __future__ import annotations

from typing import Any

from bpnn.config.reading import parse_yaml, short
from bpnn.config.sections import _DEFAULT_COMPONENTS
from bpnn.errors import ConfigError


def apply_override(raw: dict[str, Any], assignment: str) -> None:
    """Apply one ``dotted.key=value`` (value parsed as YAML) to the raw config dict in place."""
    key, sep, text = assignment.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {short(assignment)}: expected KEY=VALUE, e.g. optimizer.lr=0.01")
    value = parse_yaml(text, f"--set {key}") if text.strip() else None
    parts = key.split(".")
    node = raw
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        path = ".".join(parts[: depth + 1])
        if child is None and path in _DEFAULT_COMPONENTS:
            child = _DEFAULT_COMPONENTS[path]  # --set loss.label_smoothing=0.1, no loss: key
        if isinstance(child, str) and path in _DEFAULT_COMPONENTS:
            child = {"name": child}  # loss: cross_entropy  +  loss.label_smoothing=0.1
        if child is True and path == "train.early_stopping":
            child = {}  # early_stopping: true  +  train.early_stopping.patience=3
        if child is None:
            child = {}
        if not isinstance(child, dict):
            raise ConfigError(
                f"--set {key}: {'.'.join(parts[: depth + 1])} is {short(child)}, not a section"
            )
        node[part] = child
        node = child
    node[parts[-1]] = value


#: keys that say one thing in two ways, in groups: the test set given as files, or as a fraction
#: of the data. ``--set`` of a key of one group replaces the file's keys of the others
ALTERNATIVE_KEYS = {"data": (("test_path", "test_labels_path"), ("test_fraction",))}


def _drop_replaced_keys(raw: dict[str, Any], override_raw: dict[str, Any]) -> None:
    """Remove from ``raw`` (the file with the overrides applied) the keys an override replaced
    in another way (``ALTERNATIVE_KEYS``): ``--set data.test_path=FILE`` on a config with a
    ``test_fraction`` means the test set comes from the file. Both ways in the file alone, or
    both in ``--set``, are still an error."""
    for section, groups in ALTERNATIVE_KEYS.items():
        given, values = override_raw.get(section), raw.get(section)
        if not isinstance(given, dict) or not isinstance(values, dict):
            continue
        for group in groups:
            if any(key in given for key in group):
                replaced = {key for other in groups if other is not group for key in other}
                for key in replaced - given.keys():
                    values.pop(key, None)
