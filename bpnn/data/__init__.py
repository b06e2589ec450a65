"""Data: one ``Source`` per kind of data in the ``SOURCES`` registry, and ``load_dataset``.

Sources, by the name written in ``data.source``:

- built-in scikit-learn sets: ``digits``, ``iris``, ``wine``, ``breast_cancer``, ``diabetes``
  (``builtin.py``);
- synthetic generators: ``xor``, ``moons``, ``circles``, ``blobs``, ``classification``,
  ``regression`` (``builtin.py``);
- ``mnist``: the four IDX files, downloaded and verified when missing (``mnist.py``);
- files: ``csv``, ``parquet`` (``table_files.py``), ``npz``, ``idx`` (``arrays.py``), read by
  ``formats.py``; a table's columns (numbers, categories, missing values) become features
  through ``table.py``'s ``TableEncoding``;
- ``images``: a folder of class folders of PNG or JPEG files (``images.py``);
- ``inline``: rows and targets written in the config itself (``inline.py``).

Splits, labels and checks are in ``splits.py``; ``dataset.py`` puts them together. New samples
for ``predict`` and ``eval --data`` are read by the same sources (``new_samples.py``).
"""

# each registers its sources, in the order help and messages list them (isort would sort them)
# isort: off
from bpnn.data import builtin, table_files, arrays, inline, mnist, images  # noqa: F401

# isort: on
from bpnn.data.builtin import generator_options, make_xor
from bpnn.data.dataset import Dataset, load_dataset
from bpnn.data.formats import read_idx, read_table
from bpnn.data.mnist import MNIST_FILES, MNIST_MIRRORS, default_mnist_dir, download_mnist
from bpnn.data.new_samples import (
    labelled_samples,
    read_inputs,
    read_labelled,
    read_samples,
    samples_to_predict,
)
from bpnn.data.options import DataConfig
from bpnn.data.sources import SOURCES, ModelInputs, Raw, Samples, Source
from bpnn.data.splits import encode_labels, label_columns
from bpnn.data.table import TableEncoding

__all__ = [
    "MNIST_FILES",
    "MNIST_MIRRORS",
    "SOURCES",
    "DataConfig",
    "Dataset",
    "ModelInputs",
    "Raw",
    "Samples",
    "Source",
    "TableEncoding",
    "default_mnist_dir",
    "download_mnist",
    "encode_labels",
    "generator_options",
    "label_columns",
    "labelled_samples",
    "load_dataset",
    "make_xor",
    "read_idx",
    "read_inputs",
    "read_labelled",
    "read_samples",
    "read_table",
    "samples_to_predict",
]
