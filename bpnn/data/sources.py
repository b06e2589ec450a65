"""The data-source registry: one small ``Source`` object per kind of data.

A source says which ``data.*`` config keys it takes, which scaling suits it by default, which
tasks its targets serve, and how to load its raw samples. ``bpnn.config`` derives the list of
source names and the keys each one accepts from ``SOURCES``, so a source registered here is
known everywhere at once (``config check``, ``train``, the docs test).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from bpnn.errors import DataError

if TYPE_CHECKING:
    from bpnn.data.options import DataConfig
    from bpnn.data.table import TableEncoding

Log = Callable[[str], None]

#: the keys every source takes: where the samples go and how they are scaled
SPLIT_KEYS = frozenset({"scale", "scale_target", "test_fraction", "val_fraction", "one_hot"})
ALL_TASKS = ("multiclass", "binary", "regression")
CLASSIFICATION = ("multiclass", "binary")


@dataclass
class Raw:
    """What a source loads: unscaled features and original labels, before any split.

    A table source (``csv``, ``parquet``) leaves ``X`` as None and gives its feature columns as
    ``table`` (and ``table_test``), with the ``plan`` of their encoding, which ``load_dataset``
    fits on the training split and applies to every split."""

    X: np.ndarray | None
    y: np.ndarray
    feature_names: list[str]
    name: str  # for messages: the source name or the data file's path
    X_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    test_name: str | None = None
    continuous: bool = False  # targets are real values by nature (regression sources)
    target_name: str | None = None  # the CSV's label column (predict ignores it)
    table: Any = None  # a pandas DataFrame of the raw feature columns (table sources)
    table_test: Any = None
    plan: Any = None  # bpnn.data.table.TablePlan: each column's kind and the policies
    target_defaulted: bool = False  # the target is the last column because none was named
    where: Callable[[int], str] | None = None  # a table row's place in its file, for messages
    test_where: Callable[[int], str] | None = None
    weights: np.ndarray | None = None  # a weight per row (a table's data.weight column)
    weights_test: np.ndarray | None = None


#: what ``eval --data`` reads: the formats with labels in the same file
LABELLED_FILES = "labelled data must be a table (.csv, .parquet: with the target column) or .npz"


@dataclass(frozen=True)
class ModelInputs:
    """What a trained model takes, for reading new samples: its raw feature names and width,
    its target column(s) (a table's, to set aside), its table encoding and its data section."""

    feature_names: list[str]
    n_features: int
    target: str | Sequence[str] | None = None
    encoding: TableEncoding | None = None
    config: DataConfig | None = None  # None: the file's format alone says how to read it

    @property
    def table_encoding(self) -> TableEncoding:
        """How a table's columns become its features: the model's encoding, or without one
        every feature column numeric."""
        from bpnn.data.table import TableEncoding

        return self.encoding or TableEncoding.numeric(self.feature_names)


@dataclass
class Samples:
    """New samples read for ``bpnn predict``: raw features of the rows kept, which rows of the
    file they are, and the identifier column asked for."""

    X: np.ndarray
    n_rows: int  # rows in the file (0: not a table)
    kept: np.ndarray | None = None  # rows with features (data.missing: drop); None: every row
    ids: np.ndarray | None = None  # the --id column as written, one per row of the file


class Source:
    """A kind of data. Subclasses set the class attributes and implement ``load``."""

    name: ClassVar[str]
    #: the shared file keys it takes, of ``path``, ``test_path``, ``labels_path``,
    #: ``test_labels_path`` (relative paths are resolved against the config file's folder)
    path_keys: ClassVar[tuple[str, ...]] = ()
    #: the shared keys of splitting and scaling it takes (``mnist``: not ``test_fraction``)
    split_keys: ClassVar[frozenset[str]] = SPLIT_KEYS
    #: the ``data.scale`` used when the config does not set one
    default_scale: ClassVar[str] = "standard"
    #: the tasks its targets serve (a regression set cannot train a classifier)
    tasks: ClassVar[tuple[str, ...]] = ALL_TASKS
    #: keys that must be set for this source
    required: ClassVar[tuple[str, ...]] = ()
    #: the source brings its own test set (no test_fraction)
    has_test_set: ClassVar[bool] = False
    #: defaults of its ``data.*`` keys that differ from the config's (inline: no splits)
    defaults: ClassVar[dict[str, Any]] = {}
    #: regression targets are standardized unless ``data.scale_target`` says otherwise
    scale_targets: ClassVar[bool] = True
    #: the fewest classes a classification run on it may have (2: else nothing to learn)
    min_classes: ClassVar[int] = 2
    #: a table of named columns, encoded by ``bpnn.data.table`` (``config show`` lists them)
    tabular: ClassVar[bool] = False
    #: the source's own ``data.*`` keys, beyond the shared ones: name -> ``(type, default)`` as
    #: pydantic takes them (``{"size": (list[int], [28, 28])}``: a list, as YAML writes it, since
    #: sections are strict); ``bpnn.data.options`` adds them to the ``data:`` section (sources
    #: may share a key by sharing its declaration, as ``parquet`` does ``csv``'s)
    fields: ClassVar[dict[str, tuple[Any, Any]]] = {}
    #: file names (any case) in this source's format, which ``predict`` and ``eval --data`` read
    #: with ``read_new`` whatever source the model was trained on (``.csv``; none: no format)
    suffixes: ClassVar[tuple[str, ...]] = ()
    #: how messages name that format: ``.npz``, ``IDX (.gz, .idx, -ubyte)``
    file_kind: ClassVar[str] = ""
    #: new samples for a model trained on this source come in its own form, whatever their
    #: name (``images``: an image file or a folder), not in the shared formats above
    reads_own_samples: ClassVar[bool] = False

    def load(self, config: DataConfig, *, seed: int, log: Log) -> Raw:
        """The raw samples of this source; ``seed`` drives any randomness (generators)."""
        raise NotImplementedError

    def check(self, config: DataConfig) -> None:
        """Extra checks of the config's keys (raise ``ValueError`` naming the key)."""

    def target_columns(self, config: DataConfig) -> int:
        """How many target columns the config gives each sample (several 0/1 columns make
        binary cross-entropy a ``multilabel`` run): 1 unless the source says otherwise."""
        return 1

    def download_needed(self, config: DataConfig) -> str | None:
        """What ``load`` would download first, in a few words (None: the data is at hand), so
        that ``config check`` leaves such data unchecked rather than download it."""
        return None

    @property
    def keys(self) -> frozenset[str]:
        """The ``data.*`` keys this source takes (any other key set for it is a config error):
        ``source``, its split and path keys and its own ``fields``."""
        return frozenset({"source", *self.split_keys, *self.path_keys, *self.fields})

    def reads(self, path: Path) -> bool:
        """Whether ``path`` is a file in this source's format (by its name: ``suffixes``), so
        that ``predict`` and ``eval --data`` read it with ``read_new``."""
        return path.name.lower().endswith(self.suffixes) if self.suffixes else False

    def read_new(
        self, path: Path, model: ModelInputs, *, id_column: str | None, log: Log
    ) -> Samples:
        """The raw features of the new samples at ``path`` for ``predict``, in the layout
        ``load`` gives them (``id_column``: a table's identifier column, which only tabular
        sources are asked for). The checks every reader shares (the model's width, finite
        numbers) are made by ``bpnn.data.new_samples``, not here."""
        raise DataError(f"{path}: {self.name} files cannot be read for predict")

    def read_new_labelled(
        self, path: Path, model: ModelInputs, *, log: Log
    ) -> tuple[np.ndarray, np.ndarray]:
        """New labelled samples at ``path`` for ``eval --data``: raw features and labels as
        written (``bpnn.data.new_samples`` maps them to the model's classes)."""
        raise DataError(f"{path}: {LABELLED_FILES}")

    def estimated_bytes(self, config: DataConfig) -> int | None:
        """The memory its samples will take, when it is known before loading (generators)."""
        return None


#: every data source by the name written in ``data.source``
SOURCES: dict[str, Source] = {}


def register(source: Source) -> Source:
    """Add ``source`` to ``SOURCES`` under its name (each name once)."""
    if source.name in SOURCES:
        raise ValueError(f"data source {source.name!r} is registered twice")
    SOURCES[source.name] = source
    return source


# --- message helpers shared by the sources ----------------------------------------------------


def generic_names(n: int) -> list[str]:
    return [f"x{i}" for i in range(n)]


def pixel_names(n: int) -> list[str]:
    return [f"pixel{i}" for i in range(n)]


def is_number(text: Any) -> bool:
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True


def scalar(value: Any) -> Any:
    """A NumPy scalar as the plain Python value (so messages show 3, not np.int64(3))."""
    return value.item() if isinstance(value, np.generic) else value


#: the most characters of one value a message shows (a table's cell may hold megabytes)
SHOWN = 60


def _cut(text: str, length: int) -> str:
    return text if len(text) <= SHOWN else f"{text[:SHOWN]}... ({length} characters)"


def quoted(value: Any) -> str:
    """A value for a message, as ``repr`` writes it (a NumPy scalar as the plain value): a long
    one cut after ``SHOWN`` characters, with its length."""
    value = scalar(value)
    text = repr(value)
    return _cut(text, len(value) if isinstance(value, str) else len(text))


def listing(values: Any, limit: int = 10) -> str:
    """``a, b, c`` (at most ``limit`` items, each cut as ``quoted`` cuts a value, then
    ``... (N in all)``)."""
    items = [_cut(text, len(text)) for text in (str(scalar(v)) for v in values)]
    shown = ", ".join(items[:limit])
    return shown if len(items) <= limit else f"{shown}, ... ({len(items)} in all)"


def one_line(error: Any) -> str:
    """An exception (or any object) as one line of text."""
    return " ".join(str(error).split())
