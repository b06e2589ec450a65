"""The ``data:`` section of a config: where the samples come from and how they are split and
scaled. The sources (``bpnn.data.sources.SOURCES``) decide which keys apply to each, its
defaults and its extra checks; ``bpnn.config`` puts this section into the whole config."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Any, Literal

from pydantic import create_model, model_validator

from bpnn.data.sources import SOURCES
from bpnn.schema import Fraction, Section

# every module of bpnn/data registers the sources it defines when imported: a new source is a
# new module there, with no list to add it to
for _module in pkgutil.iter_modules([str(Path(__file__).parent)]):
    if _module.name != "options":
        importlib.import_module(f"bpnn.data.{_module.name}")

#: the data sources by name, with the keys each takes (see ``bpnn.data.sources``)
SOURCE_NAMES = tuple(SOURCES)
#: keys that name files; relative paths are resolved against the config file's folder
PATH_KEYS = ("path", "labels_path", "test_path", "test_labels_path")
#: the keys of splitting and scaling (``SPLIT_KEYS``: each source says which it takes), which
#: follow the source's own keys in the section
SPLIT_FIELDS: dict[str, tuple[Any, Any]] = {
    "test_fraction": (Fraction, 0.2),
    "val_fraction": (Fraction, 0.1),
    "scale": (Literal["standard", "minmax", "pixels", "none"] | None, None),
    "scale_target": (bool | None, None),
    "one_hot": (bool, False),
}


class SharedDataConfig(Section):
    """Where the samples come from and how they are split and scaled (see ``bpnn.data``): the
    source and its files, each source's own keys (``Source.fields``), then the keys of splitting
    and scaling."""

    source: Literal[SOURCE_NAMES] = "digits"  # type: ignore[valid-type]
    path: str | None = None
    labels_path: str | None = None
    test_path: str | None = None
    test_labels_path: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _source_defaults(cls, value: Any) -> Any:
        """The source's own defaults (inline data: no test and no validation split)."""
        if isinstance(value, dict):
            name = value.get("source", "digits")
            source = SOURCES.get(name) if isinstance(name, str) else None
            if source is not None and source.defaults:
                return {**source.defaults, **value}
        return value

    @model_validator(mode="after")
    def _keys_fit_the_source(self) -> SharedDataConfig:
        source = SOURCES[self.source]
        extra = sorted(k for k in self.model_fields_set if k not in source.keys)
        if extra:
            raise ValueError(
                f"data.{extra[0]}: does not apply to source '{self.source}' "
                f"(it takes: {', '.join(sorted(source.keys))})"
            )
        if self.test_path is not None and "test_fraction" in self.model_fields_set:
            raise ValueError(
                "data.test_fraction: does not apply with data.test_path (the test set is given)"
            )
        for key in source.required:
            if getattr(self, key) is None:
                raise ValueError(f"data.{key}: required for source '{self.source}'")
        source.check(self)
        return self

    @property
    def has_test_file(self) -> bool:
        """The test set is given (MNIST's t10k, ``data.test_path``): no ``test_fraction``."""
        return SOURCES[self.source].has_test_set or self.test_path is not None

    def applicable_keys(self) -> set[str]:
        """The keys of this section that apply to its source (what ``resolved`` writes)."""
        keys = set(SOURCES[self.source].keys)
        if self.has_test_file:
            keys.discard("test_fraction")
        return keys


def _data_config() -> type[SharedDataConfig]:
    """``SharedDataConfig`` with every registered source's own keys (``Source.fields``), in the
    order the sources are registered, then ``SPLIT_FIELDS``."""
    fields: dict[str, tuple[Any, Any]] = {}
    for source in SOURCES.values():
        for key, spec in source.fields.items():
            if key in SharedDataConfig.model_fields or key in SPLIT_FIELDS:
                raise ValueError(f"data source {source.name!r}: data.{key} is a shared key")
            if key in fields and fields[key] is not spec:
                raise ValueError(f"data source {source.name!r}: data.{key} is declared twice")
            fields[key] = spec
    for source in SOURCES.values():
        unknown = sorted(set(source.path_keys) - set(PATH_KEYS))
        unknown += sorted(source.split_keys - set(SPLIT_FIELDS))
        if unknown:
            raise ValueError(f"data source {source.name!r}: no shared key data.{unknown[0]}")
    model = create_model(  # type: ignore[call-overload]
        "DataConfig", __base__=SharedDataConfig, **fields, **SPLIT_FIELDS
    )
    model.__doc__ = SharedDataConfig.__doc__
    return model


#: the ``data:`` section: the shared keys and every source's own
DataConfig = _data_config()
