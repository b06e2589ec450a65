"""The example configs shipped inside the package (``bpnn/configs/``, copies of the repository's
``configs/``), and the starter config ``bpnn init`` writes from one of them.

The examples are listed from the packaged folder, so a config added there is offered by
``bpnn init --example`` with no change here.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from bpnn.errors import ConfigError

#: the example ``bpnn init`` starts from when none is named
DEFAULT_EXAMPLE = "digits"
#: data keys holding paths, which are relative to the config file
_PATH_LINE = re.compile(
    r"^(\s*)((?:test_)?(?:labels_)?path|initial_weights):\s*([^#\s]+)(.*)$", re.MULTILINE
)


def _folder() -> resources.abc.Traversable:
    return resources.files("bpnn") / "configs"


def example_names() -> list[str]:
    """The names of the shipped example configs (``digits``, ``mnist``, ...), sorted."""
    return sorted(
        entry.name.removesuffix(".yaml")
        for entry in _folder().iterdir()
        if entry.name.endswith(".yaml")
    )


def example_text(name: str) -> str:
    """The text of one shipped example, comments included; a ``ConfigError`` naming the
    examples there are when ``name`` is not one."""
    names = example_names()
    if name not in names:
        raise ConfigError(f"--example {name}: no such example (examples: {', '.join(names)})")
    return (_folder() / f"{name}.yaml").read_text(encoding="utf-8")


def starter_config(example: str, name: str | None, target: Path) -> str:
    """The commented starter config for the file ``target``: ``example``'s text with ``name:``
    set to ``name`` (when given), its comments' ``configs/EXAMPLE.yaml`` replaced by ``target``,
    and any relative data path that does not exist from ``target``'s folder commented out, so
    that a source with a default location (MNIST's cache) uses it."""
    text = example_text(example).replace(f"configs/{example}.yaml", str(target))
    folder = target.parent
    if name is not None:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
            raise ConfigError(
                f"NAME {name!r}: must be letters, digits, '.', '_' or '-' (it names the run folder)"
            )
        text, found = re.subn(r"^name:.*$", f"name: {name}", text, count=1, flags=re.MULTILINE)
        if not found:
            text = f"name: {name}\n{text}"

    def unless_present(match: re.Match[str]) -> str:
        indent, key, value, rest = match.groups()
        if Path(value).is_absolute() or (folder / value).exists():
            return match.group(0)
        shipped = _folder() / value
        if shipped.is_file() or shipped.is_dir():  # travels with the example (weights, images)
            return f"{indent}{key}: {Path(str(shipped))}  # shipped with bpnn"
        return f"{indent}# {key}: {value}{rest}  (not found from here; the default applies)"

    return _PATH_LINE.sub(unless_present, text)
