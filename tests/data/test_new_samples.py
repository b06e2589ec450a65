"""New samples for ``predict`` and ``eval --data`` (``bpnn/data/new_samples.py``): which source
reads a file, and the one set of checks every file gets, whatever reads it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bpnn.data import SOURCES, ModelInputs, labelled_samples, samples_to_predict
from bpnn.data.new_samples import reader_for
from bpnn.data.options import DataConfig
from bpnn.errors import DataError

NAMES = ["a", "b", "c"]
MODEL = ModelInputs(NAMES, 3, "y")


def write_csv(path: Path, rows: list[list[object]]) -> Path:
    lines = [",".join([*NAMES, "y"])] + [",".join(map(str, row)) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_npz(path: Path, X: np.ndarray) -> Path:
    np.savez(path, X=X, y=np.zeros(len(X), dtype=np.int64))
    return path


@pytest.mark.parametrize(
    ("name", "source"),
    [
        ("new.csv", "csv"),
        ("NEW.CSV", "csv"),
        ("new.parquet", "parquet"),
        ("new.pq", "parquet"),
        ("new.npz", "npz"),
        ("t10k-images-idx3-ubyte.gz", "idx"),
        ("images.idx3", "idx"),
        ("images.idx", "idx"),
    ],
)
def test_the_file_name_picks_the_source_that_reads_it(name: str, source: str) -> None:
    reader = reader_for(MODEL, Path(name))
    assert reader is not None and reader.name == source


def test_a_source_with_samples_of_its_own_reads_whatever_the_name() -> None:
    config = DataConfig(source="images", path="shapes")
    model = ModelInputs(NAMES, 3, None, None, config)
    reader = reader_for(model, Path("new.csv"))
    assert reader is not None and reader.name == "images"


def test_an_unknown_file_names_every_registered_format(tmp_path: Path) -> None:
    path = tmp_path / "new.txt"
    path.write_text("1 2 3\n", encoding="utf-8")
    with pytest.raises(DataError) as error:
        samples_to_predict(MODEL, path)
    kinds = [source.file_kind for source in SOURCES.values() if source.file_kind]
    assert len(kinds) >= 4
    assert str(error.value).startswith(f"{path}: unknown input file type; use ")
    assert all(kind in str(error.value) for kind in kinds)
    with pytest.raises(DataError, match="labelled data must be a table"):
        labelled_samples(MODEL, path)


def message(call) -> str:
    with pytest.raises(DataError) as error:
        call()
    return str(error.value)


@pytest.mark.parametrize("fault", ["nan", "inf"])
@pytest.mark.parametrize("suffix", [".csv", ".npz"])
def test_predict_and_eval_say_the_same_of_a_bad_value(
    tmp_path: Path, suffix: str, fault: str
) -> None:
    """A NaN or infinite feature: one message for both commands (the finite-value check comes
    after whichever reader, with the column named). CSV reads "nan" as a missing value, which
    is a message of the table encoding, the same for both too."""
    value = float(fault)
    if suffix == ".csv":
        path = write_csv(tmp_path / "new.csv", [[1, 2, 3, 0], [4, value, 6, 1]])
    else:
        X = np.array([[1.0, 2.0, 3.0], [4.0, value, 6.0]])
        path = write_npz(tmp_path / "new.npz", X)
    predicted = message(lambda: samples_to_predict(MODEL, path))
    evaluated = message(lambda: labelled_samples(MODEL, path))
    assert predicted == evaluated
    assert predicted.startswith(str(path))
    assert "'b'" in predicted or " b" in predicted


@pytest.mark.parametrize("suffix", [".csv", ".npz"])
def test_predict_and_eval_say_the_same_of_too_few_features(tmp_path: Path, suffix: str) -> None:
    narrow = ModelInputs(["a", "b", "c", "d"], 4, "y")
    if suffix == ".csv":
        path = write_csv(tmp_path / "new.csv", [[1, 2, 3, 0]])
    else:
        path = write_npz(tmp_path / "new.npz", np.ones((2, 3)))
    predicted = message(lambda: samples_to_predict(narrow, path))
    evaluated = message(lambda: labelled_samples(narrow, path))
    assert predicted == evaluated
    if suffix == ".npz":
        assert predicted == f"{path}: 3 features per sample, but the training data has 4"
    else:
        assert "missing column(s) d" in predicted


def test_every_reader_gives_float64_rows(tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "new.csv", [[1, 2, 3, 0], [4, 5, 6, 1]])
    npz = write_npz(tmp_path / "new.npz", np.arange(6, dtype=np.uint8).reshape(2, 3))
    for path in (csv, npz):
        samples = samples_to_predict(MODEL, path)
        assert samples.X.dtype == np.float64 and samples.X.shape == (2, 3)
        X, y = labelled_samples(MODEL, path)
        assert X.dtype == np.float64 and X.shape == (2, 3) and len(y) == 2
