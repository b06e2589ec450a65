"""Specification of bpnn.data: sources, splits, scaling, labels, file errors, MNIST and downloads.

Every data file is written by the tests into ``tmp_path``; MNIST comes from the shared copy next
to the repository (``../shared/data/mnist``) and downloads from HTTP servers on 127.0.0.1.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

from bpnn.config import DataConfig, load_config
from bpnn.data import (
    MNIST_FILES,
    Dataset,
    default_mnist_dir,
    download_mnist,
    encode_labels,
    generator_options,
    load_dataset,
    make_xor,
    read_idx,
    read_inputs,
)
from bpnn.errors import DataError
from bpnn.scaling import Scaling
from tests.support import REPO, SHARED_MNIST

needs_mnist = pytest.mark.skipif(
    not all((SHARED_MNIST / name).is_file() for name in MNIST_FILES),
    reason=f"shared MNIST files not found in {SHARED_MNIST}",
)


# --- helpers ----------------------------------------------------------------------------------


def load(task: str = "multiclass", seed: int = 0, **data: object) -> Dataset:
    return load_dataset(DataConfig(**data), task=task, seed=seed)


def data_error(call, *fragments: str) -> str:
    """Run ``call``; it must raise a one-line DataError containing every fragment."""
    with pytest.raises(DataError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


def write_csv(folder: Path, text: str, name: str = "data.csv") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def idx_bytes(array: np.ndarray) -> bytes:
    """``array`` in the IDX format (uint8 only, as MNIST)."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    return header + np.ascontiguousarray(array, np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray) -> Path:
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def tiny_images(n: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 4, 3), dtype=np.uint8), np.arange(n, dtype=np.uint8) % 4


IRIS_LIKE = (
    "length,width,species\n"
    + "".join(f"{1 + i * 0.1:.1f},{2 + (i % 7) * 0.3:.1f},setosa\n" for i in range(20))
    + "".join(f"{5 + i * 0.1:.1f},{1 + (i % 5) * 0.2:.1f},versicolor\n" for i in range(20))
    + "".join(f"{9 + i * 0.1:.1f},{3 + (i % 3) * 0.5:.1f},virginica\n" for i in range(20))
)


# --- sources: shapes, dtypes, tasks -----------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "task", "n", "features", "classes"),
    [
        ("digits", "multiclass", 1797, 64, 10),
        ("iris", "multiclass", 150, 4, 3),
        ("wine", "multiclass", 178, 13, 3),
        ("breast_cancer", "binary", 569, 30, 2),
        ("diabetes", "regression", 442, 10, None),
        ("xor", "binary", 400, 2, 2),
        ("moons", "binary", 100, 2, 2),
        ("circles", "binary", 100, 2, 2),
        ("blobs", "multiclass", 100, 2, 3),
        ("classification", "binary", 100, 20, 2),
        ("regression", "regression", 100, 100, None),
    ],
)
def test_every_builtin_and_synthetic_source_loads_with_its_shapes(
    source, task, n, features, classes
):
    d = load(task, source=source)
    assert d.task == task and d.source == source
    assert sum(d.n_samples) == n
    assert len(d.X_test) == int(np.ceil(0.2 * n))
    assert len(d.X_val) == int(np.ceil(0.1 * (n - len(d.X_test))))
    for X, y in ((d.X_train, d.y_train), (d.X_val, d.y_val), (d.X_test, d.y_test)):
        assert X.dtype == np.float32 and X.shape[1] == features == d.n_features
        assert len(y) == len(X)
        if classes is None:
            assert y.dtype == np.float32 and y.shape == (len(X), 1)
        else:
            assert y.dtype == np.int64 and y.ndim == 1
            assert y.min() >= 0 and y.max() < classes
    assert d.feature_names == [f"x{i}" for i in range(features)]
    assert d.n_classes == classes
    if classes is not None:
        assert np.array_equal(d.classes, np.arange(classes))


def test_xor_labels_are_the_sign_of_x0_times_x1():
    X, y = make_xor(n_samples=500, random_state=3)
    assert X.shape == (500, 2) and np.all(np.abs(X) <= 1)
    assert np.array_equal(y, (X[:, 0] * X[:, 1] > 0).astype(int))
    assert 0.4 < y.mean() < 0.6
    jittered, y_jittered = make_xor(n_samples=500, noise=0.1, random_state=3)
    assert np.array_equal(y_jittered, y) and not np.array_equal(jittered, X)


def test_generator_options_reach_the_generator():
    d = load("binary", source="moons", options={"n_samples": 300, "noise": 0.1})
    assert sum(d.n_samples) == 300
    d = load("multiclass", source="blobs", options={"centers": 5, "n_features": 3})
    assert d.n_classes == 5 and d.n_features == 3
    d = load("regression", source="regression", options={"n_features": 4, "n_targets": 2})
    assert d.y_train.shape[1] == 2 == d.n_targets and d.target_scaling.offset.shape == (2,)
    assert "n_samples" in generator_options("xor") and "random_state" not in generator_options(
        "moons"
    )


def test_unknown_generator_option_is_a_config_error_naming_the_key_and_the_valid_ones():
    from bpnn.config import validate
    from bpnn.errors import ConfigError

    # checked with the config (so `config check` finds it), before any data is generated
    for options, fragments in (
        ({"n_sample": 10}, ("data.options.n_sample", "n_samples, shuffle, noise")),
        ({"random_state": 1}, ("data.options.random_state", "seed")),
    ):
        with pytest.raises(ConfigError) as caught:
            validate({"data": {"source": "moons", "options": options}})
        assert all(fragment in str(caught.value) for fragment in fragments)
    data_error(lambda: load("binary", source="xor", options={"noise": -1}), "xor", "noise")


# --- determinism and splits -------------------------------------------------------------------


def arrays(d: Dataset) -> list[np.ndarray]:
    return [d.X_train, d.y_train, d.X_val, d.y_val, d.X_test, d.y_test]


@pytest.mark.parametrize(
    ("task", "source"),
    [("multiclass", "iris"), ("binary", "moons"), ("regression", "regression"), ("binary", "xor")],
)
def test_same_seed_gives_identical_arrays_and_another_seed_another_split(task, source):
    first, again, other = (
        load(task, 7, source=source),
        load(task, 7, source=source),
        load(task, 8, source=source),
    )
    for a, b in zip(arrays(first), arrays(again), strict=True):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
    assert first.input_scaling == again.input_scaling
    assert not np.array_equal(first.X_train, other.X_train)


def test_splits_are_stratified_and_together_hold_every_sample_once():
    d = load(source="digits", test_fraction=0.25, val_fraction=0.2, scale="none")
    for y in (d.y_train, d.y_val, d.y_test):
        share = np.bincount(y, minlength=10) / len(y)
        assert np.all(np.abs(share - 0.1) < 0.03)
    X, y = load_digits(return_X_y=True)
    rows = np.column_stack(
        [
            np.concatenate([d.X_train, d.X_val, d.X_test]),
            np.concatenate([d.y_train, d.y_val, d.y_test]),
        ]
    )
    original = np.column_stack([X, y])
    assert np.array_equal(
        np.unique(rows, axis=0, return_counts=True)[1],
        np.unique(original, axis=0, return_counts=True)[1],
    )
    assert np.array_equal(np.unique(rows, axis=0), np.unique(original, axis=0))


def test_zero_val_fraction_gives_empty_validation_arrays():
    d = load(source="iris", val_fraction=0.0)
    assert d.X_val.shape == (0, 4) and d.X_val.dtype == np.float32
    assert d.y_val.shape == (0,) and d.y_val.dtype == np.int64
    assert len(d.X_train) == 120
    r = load("regression", source="diabetes", val_fraction=0)
    assert r.y_val.shape == (0, 1)


def test_too_few_samples_per_class_for_a_stratified_split(tmp_path):
    path = write_csv(
        tmp_path, "a,label\n" + "".join(f"{i},{'x' if i else 'rare'}\n" for i in range(20))
    )
    data_error(lambda: load(source="csv", path=str(path)), "'rare'", "only 1 sample", "stratified")


# --- scaling ----------------------------------------------------------------------------------


def test_input_scaling_is_fitted_on_the_training_split_only():
    d = load(source="wine")
    assert np.allclose(d.X_train.mean(axis=0), 0, atol=1e-5)
    assert np.allclose(d.X_train.std(axis=0), 1, atol=1e-4)
    assert not np.allclose(d.X_test.mean(axis=0), 0, atol=1e-3)
    raw_train = d.input_scaling.invert(d.X_train)
    assert np.allclose(d.input_scaling.offset, raw_train.mean(axis=0))


def test_scaling_methods_are_affine_maps():
    X = np.array([[0.0, 5.0, 10.0], [2.0, 5.0, 30.0], [4.0, 5.0, 20.0]])
    standard = Scaling.fit(X, "standard")
    assert np.allclose(standard.apply(X, np.float64).mean(axis=0), 0)
    assert standard.factor[1] == 1.0  # a constant feature is not divided by 0
    minmax = Scaling.fit(X, "minmax").apply(X, np.float64)
    assert np.allclose(minmax.min(axis=0), [0, 0, 0]) and np.allclose(minmax.max(axis=0), [1, 0, 1])
    pixels = Scaling.fit(np.array([[0, 255]], np.uint8), "pixels")
    assert np.array_equal(
        pixels.apply(np.array([[0, 255]], np.uint8)), np.array([[0, 1]], np.float32)
    )
    assert Scaling.fit(X, "none") == Scaling.identity(3)
    assert np.array_equal(Scaling.identity(3).apply(X, np.float64), X)
    with pytest.raises(ValueError, match="unknown scaling"):
        Scaling.fit(X, "robust")


def test_scaling_apply_keeps_its_input_and_invert_goes_back():
    X = np.random.default_rng(0).normal(1000.0, 3.0, (50, 2))
    original = X.copy()
    s = Scaling.fit(X, "standard")
    out = s.apply(X)
    assert out.dtype == np.float32 and np.array_equal(X, original)
    assert np.allclose(s.invert(out), X, rtol=1e-6)
    assert s.apply(X, np.float64).dtype == np.float64


@pytest.mark.parametrize("scale", ["standard", "minmax", "pixels", "none"])
def test_the_scale_key_chooses_the_method(scale):
    d = load(source="digits", scale=scale)
    raw = load_dataset(DataConfig(source="digits", scale="none"), task="multiclass", seed=0)
    assert np.allclose(d.input_scaling.invert(d.X_train), raw.X_train, atol=1e-4)
    if scale == "minmax":
        assert d.X_train.min() == 0 and d.X_train.max() == 1
    if scale == "pixels":
        assert np.allclose(d.input_scaling.factor, 1 / 255)


def test_float64_dtype_on_request():
    d = load_dataset(DataConfig(source="diabetes"), task="regression", seed=0, dtype=np.float64)
    assert d.X_train.dtype == np.float64 and d.y_train.dtype == np.float64


def test_regression_targets_are_standardized_on_train_and_invertible():
    d = load("regression", source="diabetes")
    assert d.classes is None and d.n_classes is None
    assert abs(d.y_train.mean()) < 1e-5 and abs(d.y_train.std() - 1) < 1e-4
    original = d.target_scaling.invert(d.y_test)
    assert original.min() > 24.99 and original.max() < 346.01  # diabetes progression scores
    assert np.allclose(original, np.round(original), atol=1e-3)
    plain = load("regression", source="diabetes", scale_target=False)
    assert plain.target_scaling is None
    assert np.allclose(plain.y_test, original, atol=1e-3)


# --- labels and tasks -------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["diabetes", "regression"])
def test_classification_losses_refuse_continuous_targets(source):
    data_error(
        lambda: load("multiclass", source=source),
        f"loss needs class labels, but data '{source}' has continuous targets",
    )


def test_float_labels_with_fractions_are_continuous(tmp_path):
    path = write_csv(tmp_path, "a,y\n" + "".join(f"{i},{i / 7:.3f}\n" for i in range(30)))
    data_error(
        lambda: load("binary", source="csv", path=str(path)), "continuous targets", str(path)
    )
    assert load("regression", source="csv", path=str(path)).y_train.shape[1] == 1


def test_binary_needs_exactly_two_classes():
    data_error(
        lambda: load("binary", source="iris"), "exactly 2 classes", "'iris' has 3", "0, 1, 2"
    )


def test_regression_refuses_text_targets(tmp_path):
    path = write_csv(tmp_path, IRIS_LIKE)
    data_error(
        lambda: load("regression", source="csv", path=str(path)), "numeric targets", "setosa"
    )


def test_encode_labels_maps_to_indices_and_names_an_unknown_label():
    classes = np.array(["cat", "dog"])
    assert encode_labels(np.array(["dog", "cat", "dog"]), classes, "x.csv").tolist() == [1, 0, 1]
    assert encode_labels(np.array(["3", "7"]), np.array([3, 7]), "x.csv").tolist() == [0, 1]
    data_error(
        lambda: encode_labels(np.array(["cat", "cow"]), classes, "new.csv"), "new.csv", "'cow'"
    )
    data_error(lambda: encode_labels(np.array([1, 9]), np.array([0, 1]), "new.npz"), "new.npz", "9")


# --- CSV --------------------------------------------------------------------------------------


def test_csv_string_labels_round_trip_through_classes(tmp_path):
    path = write_csv(tmp_path, IRIS_LIKE)
    d = load(source="csv", path=str(path))
    assert d.classes.tolist() == ["setosa", "versicolor", "virginica"]
    assert d.classes.dtype.kind == "U"
    assert d.feature_names == ["length", "width"] and d.target_name == "species"
    assert d.source == str(path)
    labels = np.concatenate([d.classes[y] for y in (d.y_train, d.y_val, d.y_test)])
    lengths = np.concatenate(
        [d.input_scaling.invert(X)[:, 0] for X in (d.X_train, d.X_val, d.X_test)]
    )
    for label, length in zip(labels, lengths, strict=True):  # the label stayed with its row
        expected = "setosa" if length < 4 else "versicolor" if length < 8.5 else "virginica"
        assert label == expected


def test_csv_target_and_features_by_name_and_numeric_labels(tmp_path):
    text = "id,a,b,label\n" + "".join(f"{i},{i % 5},{i * 2},{i % 2}\n" for i in range(40))
    path = write_csv(tmp_path, text)
    d = load(source="csv", path=str(path), features=["b", "a"], target="label")
    assert d.feature_names == ["b", "a"] and d.classes.dtype == np.int64
    assert d.classes.tolist() == [0, 1]
    default = load(source="csv", path=str(path))  # target: the last column; features: the rest
    assert default.feature_names == ["id", "a", "b"] and default.target_name == "label"


def test_csv_test_path_is_used_as_given(tmp_path):
    train = write_csv(tmp_path, IRIS_LIKE, "train.csv")
    test = write_csv(
        tmp_path, "species,width,length,extra\nvirginica,3,9.5,x\nsetosa,2,1.1,y\n", "test.csv"
    )
    d = load(source="csv", path=str(train), test_path=str(test))
    assert len(d.X_test) == 2 and d.classes[d.y_test].tolist() == ["virginica", "setosa"]
    assert np.allclose(d.input_scaling.invert(d.X_test), [[9.5, 3], [1.1, 2]])
    assert sum(d.n_samples[:2]) == 60
    unseen = write_csv(tmp_path, "length,width,species\n1,2,daisy\n", "unseen.csv")
    data_error(
        lambda: load(source="csv", path=str(train), test_path=str(unseen)), str(unseen), "'daisy'"
    )


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("a,b,c\n1,2,3\n4,5,6\n", ["no target column 'label'", "columns: a, b, c"]),
        ("a,label\n1,x\n2,y\nfoo,x\n", ["line 4", "column 'a'", "'foo' is not a number"]),
        ("a,label\n1,x\n,y\n", ["'a' (1 row)", "the first at line 3", "data.missing: drop"]),
        ("a,b,label\n1,2,x\n-inf,2,y\n3,inf,x\n", ["2 infinite", "column(s) a, b"]),
        ("", ["empty file"]),
        ("\n\n", ["empty file"]),
        ("a,label\n", ["no data rows"]),
        ("a,label\n1,x\n2,y,3\n", ["line 3 has 3 fields", "header has 2"]),
        ("a,a,label\n1,2,x\n", ["duplicate column", "a"]),
    ],
)
def test_malformed_csv_is_a_one_line_error_naming_the_file_and_problem(tmp_path, text, fragments):
    path = write_csv(tmp_path, text)
    data_error(lambda: load(source="csv", path=str(path), target="label"), str(path), *fragments)


def test_a_file_that_does_not_exist(tmp_path):
    missing = tmp_path / "nope.csv"
    data_error(lambda: load(source="csv", path=str(missing)), str(missing), "no such file")
    data_error(lambda: load(source="csv", path=str(tmp_path)), str(tmp_path), "not a file")


def test_csv_feature_list_naming_a_missing_column(tmp_path):
    path = write_csv(tmp_path, IRIS_LIKE)
    data_error(
        lambda: load(source="csv", path=str(path), features=["length", "height"]),
        "missing column(s) height",
        "columns: length, width, species",
    )


# --- NPZ --------------------------------------------------------------------------------------


def test_npz_arrays_by_key_with_a_test_file(tmp_path):
    rng = np.random.default_rng(0)
    train, test = tmp_path / "train.npz", tmp_path / "test.npz"
    np.savez(train, inputs=rng.normal(size=(50, 2, 3)), targets=np.array(["a", "b"] * 25))
    np.savez(test, inputs=rng.normal(size=(10, 2, 3)), targets=np.array(["b"] * 10))
    d = load(source="npz", path=str(train), test_path=str(test), x_key="inputs", y_key="targets")
    assert d.n_features == 6 and d.n_samples == (45, 5, 10)
    assert d.classes.tolist() == ["a", "b"] and d.y_test.tolist() == [1] * 10


def test_npz_errors_name_the_file_and_the_problem(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, features=np.zeros((4, 2)), labels=np.zeros(4))
    data_error(
        lambda: load(source="npz", path=str(path)),
        str(path),
        "no array 'X'",
        "it has: features, labels",
    )
    np.savez(path, X=np.zeros((4, 2)), y=np.zeros(3))
    data_error(lambda: load(source="npz", path=str(path)), "'X' has 4 rows but 'y' has 3")
    np.savez(path, X=np.ones((40, 2)) * [1, np.inf], y=np.arange(40) % 2)
    data_error(lambda: load(source="npz", path=str(path)), "40 NaN/inf", "x1")
    np.savez(path, X=np.zeros(4), y=np.zeros(4))
    data_error(lambda: load(source="npz", path=str(path)), "row per sample")
    path.write_bytes(b"this is not a zip archive")
    data_error(lambda: load(source="npz", path=str(path)), str(path), "not a readable .npz file")
    np.save(tmp_path / "single.npy", np.zeros((3, 2)))
    (tmp_path / "single.npy").rename(path)
    data_error(lambda: load(source="npz", path=str(path)), "single .npy array")


# --- IDX --------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["-ubyte", "-ubyte.gz"])
def test_idx_pairs_load_flattened_with_pixel_scaling(tmp_path, suffix):
    images, labels = tiny_images()
    X_path = write_idx(tmp_path / f"img{suffix}", images)
    y_path = write_idx(tmp_path / f"lab{suffix}", labels)
    assert np.array_equal(read_idx(X_path), images)
    t_images, t_labels = tiny_images(8, seed=1)
    tX = write_idx(tmp_path / f"t-img{suffix}", t_images)
    ty = write_idx(tmp_path / f"t-lab{suffix}", t_labels)
    d = load(
        source="idx",
        path=str(X_path),
        labels_path=str(y_path),
        test_path=str(tX),
        test_labels_path=str(ty),
    )
    assert d.n_features == 12 and d.n_samples == (36, 4, 8)
    assert np.allclose(d.input_scaling.factor, 1 / 255) and d.X_train.max() <= 1
    assert np.allclose(d.X_test, t_images.reshape(8, 12) / 255)
    assert d.feature_names[:2] == ["pixel0", "pixel1"]


def test_idx_errors_name_the_file_and_the_problem(tmp_path):
    images, labels = tiny_images()
    good_y = write_idx(tmp_path / "lab-ubyte", labels)
    bad = tmp_path / "img-ubyte"

    def load_images():
        return load(source="idx", path=str(bad), labels_path=str(good_y))

    bad.write_bytes(b"\x08\x03\x00\x00" + bytes(100))
    data_error(load_images, str(bad), "bad IDX magic number 0x08030000")
    bad.write_bytes(idx_bytes(images)[:-5])
    data_error(load_images, str(bad), "truncated IDX file", "4x3", "480 bytes", "475")
    bad.write_bytes(idx_bytes(images) + b"\x00")
    data_error(load_images, str(bad), "larger than its header")
    bad.write_bytes(idx_bytes(images[:30]))
    data_error(load_images, str(bad), "30 images", str(good_y), "40 labels")
    gz = tmp_path / "img.gz"
    gz.write_bytes(gzip.compress(idx_bytes(images))[:-20])
    data_error(lambda: read_idx(gz), str(gz), "gzip")
    gz.write_bytes(idx_bytes(images))
    data_error(lambda: read_idx(gz), str(gz), "not a gzip file")
    bad.write_bytes(b"")
    data_error(load_images, str(bad), "empty file")


# --- MNIST ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mnist() -> Dataset:
    messages: list[str] = []
    start = time.perf_counter()
    d = load_dataset(
        DataConfig(source="mnist", path=str(SHARED_MNIST), mirrors=["http://127.0.0.1:9/"]),
        task="multiclass",
        seed=0,
        log=messages.append,
    )
    print(f"\nMNIST load_dataset: {time.perf_counter() - start:.2f} s")
    assert messages == []  # the files are there: nothing downloaded
    return d


@needs_mnist
def test_mnist_loads_from_the_shared_gz_files(mnist):
    assert mnist.n_samples == (54000, 6000, 10000)
    assert mnist.X_train.shape == (54000, 784) and mnist.X_train.dtype == np.float32
    assert mnist.X_train.min() == 0 and mnist.X_train.max() == 1
    assert mnist.y_test.dtype == np.int64 and mnist.classes.tolist() == list(range(10))
    for y in (mnist.y_train, mnist.y_val, mnist.y_test):
        assert set(np.unique(y)) == set(range(10))
    assert np.bincount(mnist.y_test).tolist()[:3] == [980, 1135, 1032]  # t10k, as published
    assert mnist.feature_names[-1] == "pixel783"


def test_default_mnist_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("BPNN_DATA_DIR", str(tmp_path))
    assert default_mnist_dir() == tmp_path / "mnist"
    monkeypatch.delenv("BPNN_DATA_DIR")
    assert default_mnist_dir() == Path.home() / ".cache" / "bpnn" / "mnist"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def serve(monkeypatch) -> Iterator:
    """``serve(folder)`` -> the base URL of an HTTP server on 127.0.0.1 serving ``folder``."""
    for variable in (
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    servers = []

    def start(folder: Path) -> str:
        handler = functools.partial(_QuietHandler, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.server_address[1]}/mnist/"

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join()


def corrupted_mirror(root: Path) -> Path:
    """A mirror whose files are valid gzip files of the wrong bytes."""
    (root / "mnist").mkdir(parents=True)
    for name in MNIST_FILES:
        (root / "mnist" / name).write_bytes(gzip.compress(b"\x00\x00\x08\x01 not the real thing"))
    return root


def real_mirror(root: Path) -> Path:
    """A mirror of the shared MNIST files (linked from tmp_path, never copied into the repo)."""
    (root / "mnist").mkdir(parents=True)
    for name in MNIST_FILES:
        os.symlink(SHARED_MNIST / name, root / "mnist" / name)
    return root


@needs_mnist
def test_mnist_downloads_missing_files_falling_back_past_a_corrupt_mirror(tmp_path, serve):
    bad = serve(corrupted_mirror(tmp_path / "bad"))
    good = serve(real_mirror(tmp_path / "good"))
    target = tmp_path / "cache" / "mnist"
    messages: list[str] = []
    d = load_dataset(
        DataConfig(source="mnist", path=str(target), mirrors=[bad, good], val_fraction=0.0),
        task="multiclass",
        seed=0,
        log=messages.append,
    )
    assert d.n_samples == (60000, 0, 10000)
    assert sorted(p.name for p in target.iterdir()) == sorted(MNIST_FILES)  # no temporary files
    for name, sha256 in MNIST_FILES.items():
        assert hashlib.sha256(gzip.decompress((target / name).read_bytes())).hexdigest() == sha256
    log = "\n".join(messages)
    assert f"downloading train-images-idx3-ubyte.gz from {bad}train-images-idx3-ubyte.gz" in log
    assert "checksum mismatch" in log
    assert f"{good}t10k-labels-idx1-ubyte.gz" in log


def test_mnist_download_that_fails_everywhere_keeps_nothing(tmp_path, serve):
    bad = serve(corrupted_mirror(tmp_path / "bad"))
    empty = tmp_path / "empty"
    (empty / "mnist").mkdir(parents=True)
    missing = serve(empty)
    target = tmp_path / "cache"
    message = data_error(
        lambda: load(source="mnist", path=str(target), mirrors=[bad, missing]),
        "mnist: could not download train-images-idx3-ubyte.gz",
        f"{bad}train-images-idx3-ubyte.gz (checksum mismatch",
        f"{missing}train-images-idx3-ubyte.gz (HTTP 404",
    )
    assert "tried" in message
    assert list(target.iterdir()) == []


def test_mnist_download_refuses_bytes_that_are_not_gzip(tmp_path, serve):
    root = tmp_path / "junk"
    (root / "mnist").mkdir(parents=True)
    name = "t10k-labels-idx1-ubyte.gz"
    (root / "mnist" / name).write_bytes(b"<html>mirror moved</html>")
    messages: list[str] = []
    with pytest.raises(DataError, match="not a valid gzip file"):
        download_mnist(tmp_path / "cache", [name], [serve(root)], messages.append)
    assert list((tmp_path / "cache").iterdir()) == []
    assert any("not a valid gzip file" in m for m in messages)


# --- predict inputs ---------------------------------------------------------------------------


def test_read_inputs_picks_the_model_columns_by_name(tmp_path):
    path = write_csv(tmp_path, "width,species,length\n2.5,setosa,1\n3,virginica,9\n")
    X = read_inputs(path, feature_names=["length", "width"], n_features=2, target="species")
    assert X.dtype == np.float64 and X.tolist() == [[1, 2.5], [9, 3]]


def test_read_inputs_names_missing_columns_and_ignores_extra_ones(tmp_path):
    # changed with tables: extra columns are left out (listed once through log), not an error
    path = write_csv(tmp_path, "width,colour,size\n2.5,1,2\n")
    data_error(
        lambda: read_inputs(
            path, feature_names=["length", "width"], n_features=2, target="species"
        ),
        str(path),
        "missing column(s) length",
    )
    headerless = write_csv(tmp_path, "1,2\n3,4\n", "headerless.csv")
    data_error(
        lambda: read_inputs(headerless, feature_names=["a", "b"], n_features=2, target=None),
        "must be a header",
    )
    bad = write_csv(tmp_path, "a,b\n1,x\n", "bad.csv")
    data_error(
        lambda: read_inputs(bad, feature_names=["a", "b"], n_features=2, target=None),
        "line 2, column 'b'",
    )


def test_read_inputs_from_npz_and_idx(tmp_path):
    np.savez(tmp_path / "x.npz", X=np.ones((3, 4)), y=np.zeros(3))
    np.savez(tmp_path / "only.npz", batch=np.ones((2, 2, 2)), ids=np.arange(2))
    names = [f"x{i}" for i in range(4)]
    assert read_inputs(
        tmp_path / "x.npz", feature_names=names, n_features=4, target=None
    ).shape == (3, 4)
    only = read_inputs(tmp_path / "only.npz", feature_names=names, n_features=4, target=None)
    assert only.shape == (2, 4)
    np.savez(tmp_path / "two.npz", a=np.ones((2, 4)), b=np.ones((2, 4)))
    data_error(
        lambda: read_inputs(tmp_path / "two.npz", feature_names=names, n_features=4, target=None),
        "no array 'X'",
        "it has: a, b",
    )
    images, _ = tiny_images(5)
    for name in ("im-ubyte", "im.idx", "im.gz"):
        path = write_idx(tmp_path / name, images)
        X = read_inputs(path, feature_names=[], n_features=12, target=None)
        assert X.dtype == np.float64 and np.array_equal(X, images.reshape(5, 12))
    data_error(
        lambda: read_inputs(path, feature_names=[], n_features=784, target=None),
        "12 features",
        "784",
    )
    data_error(
        lambda: read_inputs(tmp_path / "x.txt", feature_names=[], n_features=1, target=None),
        "unknown input file type",
    )


# --- shipped example configs ------------------------------------------------------------------


def test_the_iris_example_loads_with_species_names():
    config = load_config(REPO / "examples" / "iris.yaml")
    d = load_dataset(config.data, task=config.task, seed=config.seed)
    assert d.classes.tolist() == ["setosa", "versicolor", "virginica"]
    assert d.n_samples == (108, 12, 30) and d.n_features == 4
    X = read_inputs(
        REPO / "examples" / "iris.csv",
        feature_names=d.feature_names,
        n_features=4,
        target=d.target_name,
    )
    assert X.shape == (150, 4)


def test_the_moons_and_mnist_configs_are_valid():
    moons = load_config(REPO / "configs" / "moons.yaml")
    assert moons.task == "binary" and moons.data.options["n_samples"] == 1000
    mnist = load_config(REPO / "configs" / "mnist.yaml")
    assert mnist.model.hidden == [256, 128] and mnist.task == "multiclass"
    assert Path(mnist.data.path) == REPO.parent / "shared" / "data" / "mnist"


def test_mnist_with_no_mirrors_does_not_download(tmp_path):
    data_error(
        lambda: load(source="mnist", path=str(tmp_path), mirrors=[]),
        "train-images-idx3-ubyte.gz",
        str(tmp_path),
        "data.mirrors is empty",
    )


def test_a_split_too_small_says_stratified_only_when_it_is():
    from bpnn.data.splits import split
    from bpnn.errors import DataError

    with pytest.raises(DataError, match=r"too few samples for the test split: "):
        split(np.arange(1), None, None, 0.5, 0, "tiny", "test")
    strata, classes = np.array([0, 0, 1, 1]), np.array(["a", "b"])
    with pytest.raises(DataError, match=r"too few samples for the stratified test split: "):
        split(np.arange(4), strata, classes, 0.25, 0, "tiny", "test")
