"""Reading a config's YAML: a safe loader (no tags that build objects, no duplicate keys), size
and alias-expansion limits checked before a value is built, and one-line errors naming the file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from bpnn.errors import ConfigError, short
from bpnn.readers import read_bounded


class _Loader(yaml.SafeLoader):
    """Safe YAML loader that also reads ``1e-3`` as a float (plain YAML 1.1 wants ``1.0e-3``)
    and refuses a key written twice in one mapping (PyYAML keeps the last one silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # ``<<: *base``: overridden at will
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: the base class says so
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"the key {short(key)} is written twice",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_str(self, node: yaml.ScalarNode) -> str:
        """A string, refused when a double-quoted escape (``"\\ud800"``) left a lone surrogate
        in it: that is no text, and would break whatever prints or writes it later."""
        value = super().construct_yaml_str(node)
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                "a string holds an escaped surrogate (\\ud800 to \\udfff), which is not text",
                node.start_mark,
            ) from None
        return value


_Loader.add_constructor("tag:yaml.org,2002:str", _Loader.construct_yaml_str)


#: the plain scalars ``_Loader`` reads as floats, ``1e-3`` among them
FLOAT_PATTERN = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+][0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", FLOAT_PATTERN, list("-+0123456789."))


class _Dumper(yaml.SafeDumper):
    """Safe YAML writer that quotes every string ``_Loader`` would read as something else (the
    string ``"1e-3"`` is written ``'1e-3'``): what bpnn writes, it reads back unchanged."""


_Dumper.add_implicit_resolver("tag:yaml.org,2002:float", FLOAT_PATTERN, list("-+0123456789."))


def dump_yaml(data: Any) -> str:
    """``data`` as YAML text that ``parse_yaml`` reads back equal (keys in their order)."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False)


#: a config is small: larger text, or aliases that expand to more values, is refused unread
MAX_CONFIG_BYTES = 1 << 20
MAX_CONFIG_VALUES = 1_000_000


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """How many values ``node`` becomes once every alias is expanded (shared nodes counted
    once per use), computed over the node graph without expanding it."""
    if id(node) in sizes:
        return sizes[id(node)]
    sizes[id(node)] = 1  # a recursive alias counts once here; construction refuses it
    total = 1
    if isinstance(node, yaml.SequenceNode):
        total += sum(_expanded_size(child, sizes) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        total += sum(_expanded_size(k, sizes) + _expanded_size(v, sizes) for k, v in node.value)
    sizes[id(node)] = min(total, MAX_CONFIG_VALUES + 1)
    return sizes[id(node)]


def parse_yaml(text: str, source: str) -> Any:
    """Parse YAML text; a syntax error becomes a one-line ``ConfigError`` naming ``source``.
    Text over ``MAX_CONFIG_BYTES`` or aliases expanding beyond ``MAX_CONFIG_VALUES`` values (a
    "billion laughs" document) are refused before anything is built from them."""
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"{source}: {len(text)} characters; a config is at most {MAX_CONFIG_BYTES} "
            "(put large data in a file)"
        )
    try:
        node = yaml.compose(text, Loader=_Loader)
        if node is not None and _expanded_size(node, {}) > MAX_CONFIG_VALUES:
            raise ConfigError(
                f"{source}: its aliases expand to more than {MAX_CONFIG_VALUES} values; "
                "a config cannot be that large"
            )
        return yaml.load(text, Loader=_Loader)
    except RecursionError:
        raise ConfigError(f"{source}: nested too deeply") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(f"{source}: invalid YAML{where}: {problem}") from None


def read_yaml_file(path: Path, kind: str = "config") -> Any:
    """The parsed YAML of a ``kind`` file (a config, a sweep file); a missing or unreadable file
    is a one-line ``ConfigError`` naming it."""
    if not path.exists():
        raise ConfigError(f"{path}: no such {kind} file")
    data = read_bounded(path, 4 * MAX_CONFIG_BYTES, ConfigError)  # UTF-8: 4 bytes a character
    if data.startswith(b"PK\x03\x04"):
        raise ConfigError(f"{path}: an .npz archive (a checkpoint?), not a YAML {kind} file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {error.start}), not a YAML {kind} file"
        ) from None
    return parse_yaml(text, str(path))
