"""Real tables: categorical columns, missing values, the table encoding in checkpoints, and
predictions that scripts can join (``--id``, JSON lines, full precision)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import OneHotEncoder
from typer.testing import CliRunner

from bpnn.checkpoint import load as load_checkpoint
from bpnn.checkpoint import save as save_checkpoint
from bpnn.cli import app
from bpnn.config import DataConfig, validate
from bpnn.data import TableEncoding, load_dataset, read_labelled, read_samples
from bpnn.errors import DataError
from bpnn.model import load_model
from bpnn.run import run_training
from tests.support import REPO

PENGUINS = REPO / "examples" / "penguins.csv"
runner = CliRunner()


def mixed_table(rows: int = 90, seed: int = 0) -> pd.DataFrame:
    """A string column, an integer code, a number and a label that depends on all three."""
    rng = np.random.default_rng(seed)
    colour = rng.choice(["red", "green", "blue"], rows)
    cyl = rng.choice([4, 6, 8], rows)
    size = np.round(rng.normal(size=rows), 3)
    label = np.where((colour == "red") ^ (cyl == 8) ^ (size > 0), "yes", "no")
    return pd.DataFrame({"colour": colour, "cyl": cyl, "size": size, "label": label})


def write(tmp_path: Path, frame: pd.DataFrame, name: str = "data.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def load(path: Path, log: list[str] | None = None, **data: object):
    config = DataConfig(source="csv", path=str(path), target="label", **data)
    return load_dataset(
        config, task="multiclass", seed=0, log=(log.append if log is not None else None)
    )


def train(path: Path, out: Path, **data: object) -> Path:
    config = validate(
        {
            "name": "table",
            "data": {"source": "csv", "path": str(path), "target": "label", **data},
            "model": {"hidden": [8]},
            "train": {"epochs": 3, "batch_size": 16},
        }
    )
    run_dir, _ = run_training(config, out)
    return run_dir / "checkpoints" / "last.npz"


# --- columns of any kind ------------------------------------------------------------------------


def test_string_columns_are_categorical_and_one_hot_encoded_on_the_training_split(tmp_path):
    data = load(write(tmp_path, mixed_table()))
    assert data.feature_names == ["colour=blue", "colour=green", "colour=red", "cyl", "size"]
    kinds = {c.name: c.kind for c in data.encoding.columns}
    assert kinds == {"colour": "categorical", "cyl": "numeric", "size": "numeric"}
    raw = data.input_scaling.invert(data.X_train)
    one_hot = np.round(raw[:, :3], 5)  # float32 training data
    assert np.allclose(one_hot.sum(axis=1), 1) and set(np.unique(one_hot)) <= {0.0, 1.0}


def test_an_explicit_list_makes_integer_codes_categorical_too(tmp_path):
    data = load(write(tmp_path, mixed_table()), categorical=["cyl"])
    assert data.feature_names == [
        "colour=blue",
        "colour=green",
        "colour=red",
        "cyl=4",
        "cyl=6",
        "cyl=8",
        "size",
    ]
    with pytest.raises(DataError, match=r"data\.categorical names wheels, not among the feature"):
        load(write(tmp_path, mixed_table()), categorical=["wheels"])


def test_categories_come_from_the_training_split_only(tmp_path):
    frame = mixed_table()
    frame.loc[0, "colour"] = "violet"  # one row: in the training split or not
    data = load(write(tmp_path, frame), unknown_category="ignore", test_fraction=0.5)
    in_training = "colour=violet" in data.feature_names
    raw_train = data.input_scaling.invert(data.X_train)
    assert in_training == any(np.all(np.isclose(raw_train[:, 1:3], 0), axis=1))


def test_a_typo_in_a_numeric_column_is_named_not_taken_for_categories(tmp_path):
    frame = mixed_table().astype({"size": object})
    frame.loc[4, "size"] = "1.2.3"
    with pytest.raises(DataError, match=r"line 6, column 'size': '1.2.3' is not a number"):
        load(write(tmp_path, frame))


def test_an_identifier_column_is_refused_rather_than_one_hot_encoded(tmp_path):
    frame = mixed_table()
    frame.insert(0, "name", [f"penguin {i}" for i in range(len(frame))])
    with pytest.raises(DataError, match=r"column 'name' has \d+ distinct values in \d+ training"):
        load(write(tmp_path, frame))
    assert "name" not in load(write(tmp_path, frame), features=["colour", "size"]).feature_names


def test_the_encoding_applies_exactly_what_scikit_learn_fitted(tmp_path):
    frame = mixed_table(200, seed=3)
    frame.loc[frame.index[::7], "size"] = np.nan
    frame.loc[frame.index[::11], "colour"] = None
    kinds = {"colour": "categorical", "cyl": "categorical", "size": "numeric"}
    train, new = frame.iloc[:150], frame.iloc[150:]
    for impute in ("mean", "median", "most_frequent"):
        encoding = TableEncoding.fit(train, kinds, missing="impute", impute=impute)
        X, kept = encoding.transform(new, "new")
        assert kept is None
        size = SimpleImputer(strategy=impute).fit(train[["size"]])
        assert np.array_equal(X[:, -1], size.transform(new[["size"]])[:, 0])
    texts = train[["colour"]].astype(object).where(train[["colour"]].notna(), None)
    most = SimpleImputer(strategy="most_frequent", missing_values=None).fit(texts)
    new_colour = new[["colour"]].astype(object).where(new[["colour"]].notna(), None)
    filled = most.transform(new_colour)
    encoder = OneHotEncoder(handle_unknown="ignore").fit(most.transform(texts))
    assert list(encoding.columns[0].categories) == list(encoder.categories_[0])
    expected = encoder.transform(filled).toarray()
    assert np.array_equal(X[:, : expected.shape[1]], expected)
    cyl = OneHotEncoder().fit(train[["cyl"]].astype(str))
    assert encoding.columns[1].categories == ("4", "6", "8")
    width = expected.shape[1]
    assert np.array_equal(
        X[:, width : width + 3], cyl.transform(new[["cyl"]].astype(str)).toarray()
    )


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.sampled_from(["a", "b", " c", "dd", None]), min_size=1, max_size=40),
    st.lists(st.sampled_from(["a", "b", "c", "dd", "zz"]), min_size=1, max_size=40),
)
def test_one_hot_equals_scikit_learn_with_unknowns_ignored(train_values, new_values):
    train = pd.DataFrame({"k": pd.Series(train_values, dtype=object)})
    if train["k"].isna().all():
        return
    encoding = TableEncoding.fit(
        train, {"k": "categorical"}, missing="drop", unknown_category="ignore"
    )
    X, _ = encoding.transform(pd.DataFrame({"k": new_values}), "new")
    seen = [v.strip() for v in train_values if v is not None]
    encoder = OneHotEncoder(handle_unknown="ignore").fit(np.array(seen, dtype=object)[:, None])
    expected = encoder.transform(np.array(new_values, dtype=object)[:, None]).toarray()
    assert np.array_equal(X, expected)
    assert TableEncoding.from_dict(json.loads(json.dumps(encoding.to_dict()))) == encoding


#: how a raw column is held, and the values (None: missing) a test table draws for it
HELD_AS = {
    "float": [0.5, -2.0, 3.25, None],
    "int": [4, 6, -8],
    "nullable float": [1.5, -0.25, None],
    "numbers as text": ["1.5", "-3", "0.125", None],
    "categorical": ["a", "b", " c", None],
}


def held_as(kind: str, values: list[object]) -> pd.Series:
    if kind == "float":
        return pd.Series([np.nan if v is None else v for v in values], dtype=float)
    if kind == "int":
        return pd.Series(values, dtype=np.int64)
    if kind == "nullable float":
        return pd.Series(values, dtype="Float64")
    return pd.Series(values, dtype=object)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_each_split_holds_its_rows_of_the_column_by_column_encoding(data):
    """Numeric columns held any way (floats, integers, nullable floats, numbers as text) and
    categorical ones, in any order, with and without gaps, under each ``data.missing``: every
    part that ``transform_parts`` writes (a few cells at a time: ``CELLS_AT_ONCE`` made small)
    equals its rows of the encoding spelled out column by column, and the table is unchanged."""
    import bpnn.data.table_columns as table_module

    n = data.draw(st.integers(2, 40))
    missing = data.draw(st.sampled_from(["impute", "error", "drop"]))
    kinds = data.draw(st.lists(st.sampled_from(sorted(HELD_AS)), min_size=1, max_size=5))
    pools = {
        kind: [v for v in pool if v is not None or missing == "impute"]
        for kind, pool in HELD_AS.items()
    }
    cells = [data.draw(st.lists(st.sampled_from(pools[k]), min_size=n, max_size=n)) for k in kinds]
    frame = pd.DataFrame(
        {f"c{j}": held_as(k, v) for j, (k, v) in enumerate(zip(kinds, cells, strict=True))}
    )
    columns = {
        f"c{j}": "categorical" if kind == "categorical" else "numeric"
        for j, kind in enumerate(kinds)
    }
    train = np.arange(0, n, 2)
    assume(not frame.iloc[train].isna().all().any())  # else refused (tested elsewhere)
    before = frame.copy(deep=True)
    encoding = TableEncoding.fit(
        frame, columns, rows=train, missing=missing, unknown_category="ignore"
    )
    expected = []
    for column, raw in zip(encoding.columns, cells, strict=True):
        if column.kind == "numeric":
            values = [column.fill if v is None else float(v) for v in raw]
            expected.append(np.array(values, dtype=float)[:, None])
        else:
            texts = [column.fill if v is None else v.strip() for v in raw]
            expected.append(np.array([[t == c for c in column.categories] for t in texts], float))
    whole = np.hstack(expected)
    order = np.random.default_rng(n).permutation(n)
    parts = [order[: n // 3], order[n // 3 :], np.arange(n)]  # the last: every row in order
    chunk = data.draw(st.integers(1, 16))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(table_module, "CELLS_AT_ONCE", chunk)
        written = encoding.transform_parts(frame, parts, "table")
    for X, rows in zip(written, parts, strict=True):
        assert X.flags.c_contiguous and X.dtype == np.float64
        assert np.array_equal(X, whole[rows])
    pd.testing.assert_frame_equal(frame, before)


# --- missing values -----------------------------------------------------------------------------


def with_blanks(tmp_path: Path) -> Path:
    text = write(tmp_path, mixed_table()).read_text().splitlines()
    text[3] = ",".join(["", *text[3].split(",")[1:]])  # an empty colour
    cells = text[5].split(",")
    text[5] = ",".join([*cells[:2], "NA", cells[3]])  # size NA
    cells = text[8].split(",")
    text[8] = ",".join([*cells[:2], "null", cells[3]])
    path = tmp_path / "blanks.csv"
    path.write_text("\n".join(text) + "\n")
    return path


def test_missing_values_are_an_error_by_default_naming_columns_counts_and_the_other_settings(
    tmp_path,
):
    path = with_blanks(tmp_path)
    with pytest.raises(DataError) as info:
        load(path)
    message = str(info.value)
    for fragment in ("'colour' (1 row)", "'size' (2 rows)", "data.missing: drop", "impute"):
        assert fragment in message


def test_missing_drop_leaves_the_rows_out_and_says_how_many(tmp_path):
    log: list[str] = []
    data = load(with_blanks(tmp_path), log, missing="drop")
    assert sum(data.n_samples) == 87
    assert any("dropped 3 row(s) with missing feature values" in line for line in log)


def test_missing_impute_fills_in_from_the_training_split(tmp_path):
    log: list[str] = []
    data = load(with_blanks(tmp_path), log, missing="impute", impute="median")
    assert sum(data.n_samples) == 90
    size = next(c for c in data.encoding.columns if c.name == "size")
    colour = next(c for c in data.encoding.columns if c.name == "colour")
    assert isinstance(size.fill, float) and colour.fill in ("blue", "green", "red")
    assert any("2 missing, imputed with the median" in line for line in log)
    assert any("1 missing, imputed with the most frequent" in line for line in log)


def test_a_missing_target_drops_the_row_and_says_so(tmp_path):
    frame = mixed_table()
    frame.loc[[2, 5], "label"] = None
    log: list[str] = []
    data = load(write(tmp_path, frame), log)
    assert sum(data.n_samples) == 88
    assert any("dropped 2 row(s) with no value in the target 'label'" in line for line in log)


def test_the_default_target_is_announced_with_its_classes(tmp_path):
    log: list[str] = []
    config = DataConfig(source="csv", path=str(PENGUINS), missing="impute")
    load_dataset(config, task="multiclass", seed=0, log=log.append)
    assert log[0] == (
        "target: 'year' (the last column; set data.target to choose another): "
        "3 classes: 2007, 2008, 2009"
    )
    assert log[1] == "features: 7 columns -> 12 inputs"


# --- checkpoints, predict and eval ---------------------------------------------------------------


@pytest.fixture(scope="module")
def penguins(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("penguins") / "run"
    overrides = ["--set", "train.epochs=5"]
    result = runner.invoke(
        app,
        ["train", str(REPO / "examples" / "penguins.yaml"), "--out", str(out), "-q", *overrides],
    )
    assert result.exit_code == 0, result.output
    return out / "checkpoints" / "last.npz"


def test_the_encoding_round_trips_through_a_checkpoint(penguins):
    model = load_model(penguins)
    assert model.encoding is not None
    assert model.encoding.feature_names == model.feature_names
    sex = next(c for c in model.encoding.columns if c.name == "sex")
    assert sex.categories == ("female", "male") and sex.fill in sex.categories
    meta = load_checkpoint(penguins)
    assert meta.table == model.encoding.to_dict()


def test_predict_of_raw_rows_equals_predict_of_the_encoded_rows(penguins):
    model = load_model(penguins)
    raw = pd.read_csv(PENGUINS)  # pandas' own NA handling: the same cells are missing
    encoded, _ = model.encoding.transform(raw, "penguins")
    assert np.isfinite(encoded).all()
    assert np.array_equal(model.predict(raw), model.predict(encoded))
    samples = read_samples(
        PENGUINS,
        feature_names=model.feature_names,
        n_features=model.n_features,
        target=model.target_name,
        encoding=model.encoding,
    )
    assert np.array_equal(samples.X, encoded)


def test_a_checkpoint_without_a_table_encoding_still_loads_and_reads_numeric_tables(tmp_path):
    iris = REPO / "examples" / "iris.csv"
    config = validate(
        {"data": {"source": "csv", "path": str(iris), "target": "species"}, "train": {"epochs": 2}}
    )
    run_dir, _ = run_training(config, tmp_path / "iris")
    contents = load_checkpoint(run_dir / "checkpoints" / "last.npz")
    contents.table = None  # as bpnn wrote checkpoints before tables
    old = tmp_path / "old.npz"
    save_checkpoint(old, contents)
    model = load_model(old)
    assert model.encoding is None
    result = runner.invoke(app, ["predict", str(old), str(iris)])
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 151


def test_unknown_category_at_predict_time_error_or_all_zeros(tmp_path):
    path = write(tmp_path, mixed_table())
    strict = train(path, tmp_path / "strict")
    lenient = train(path, tmp_path / "lenient", unknown_category="ignore")
    new = mixed_table(5, seed=9)
    new.loc[2, "colour"] = "mauve"
    new_path = write(tmp_path, new, "new.csv")
    result = runner.invoke(app, ["predict", str(strict), str(new_path)])
    assert result.exit_code == 2
    assert (
        f"error: {new_path}: line 4, column 'colour': unknown category 'mauve' "
        "(known: blue, green, red)"
    ) in result.output
    model = load_model(lenient)
    X = read_samples(
        new_path,
        feature_names=model.feature_names,
        n_features=5,
        target="label",
        encoding=model.encoding,
    ).X
    assert X[2, :3].tolist() == [0, 0, 0] and X[3, :3].sum() == 1
    result = runner.invoke(app, ["predict", str(lenient), str(new_path)])
    assert result.exit_code == 0, result.output


def test_predict_id_copies_the_column_through_first_at_full_precision(penguins, tmp_path):
    frame = pd.read_csv(PENGUINS, keep_default_na=False)
    frame.insert(0, "tag", [f"P-{i:04d}" for i in range(len(frame))])
    path = tmp_path / "tagged.csv"
    frame.to_csv(path, index=False)
    result = runner.invoke(app, ["predict", str(penguins), str(path), "--id", "tag"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "tag,label,p_Adelie,p_Chinstrap,p_Gentoo"
    assert lines[1].startswith("P-0000,") and len(lines) == 345
    model = load_model(penguins)
    probabilities = model.predict(model.encode(pd.read_csv(PENGUINS))).astype(np.float32)
    written = np.array([[float(v) for v in line.split(",")[2:]] for line in lines[1:]])
    assert np.array_equal(written.astype(np.float32), probabilities)  # %.9g round-trips
    missing = runner.invoke(app, ["predict", str(penguins), str(path), "--id", "nope"])
    assert missing.exit_code == 2 and "missing column(s) nope" in missing.output


def test_predict_jsonl_writes_one_object_per_row(penguins):
    result = runner.invoke(app, ["predict", str(penguins), str(PENGUINS), "--format", "jsonl"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 344
    assert list(rows[0]) == ["label", "p_Adelie", "p_Chinstrap", "p_Gentoo"]
    assert rows[0]["label"] in ("Adelie", "Chinstrap", "Gentoo")
    assert sum(rows[0][k] for k in list(rows[0])[1:]) == pytest.approx(1, abs=1e-6)
    bad = runner.invoke(app, ["predict", str(penguins), str(PENGUINS), "--format", "xml"])
    assert bad.exit_code == 2 and "--format" in bad.output


def test_predict_and_eval_treat_extra_and_missing_columns_alike(penguins, tmp_path):
    frame = pd.read_csv(PENGUINS, keep_default_na=False)
    frame["notes"] = "x"
    extra = tmp_path / "extra.csv"
    frame.to_csv(extra, index=False)
    narrow = tmp_path / "narrow.csv"
    frame.drop(columns=["island", "sex"]).to_csv(narrow, index=False)
    for command in (["predict", str(penguins)], ["eval", str(penguins), "--data"]):
        ok = runner.invoke(app, [*command, str(extra)])
        assert ok.exit_code == 0, ok.output
        assert ok.stderr.count("ignoring column(s) the model does not use: notes") == 1
        refused = runner.invoke(app, [*command, str(narrow)])
        assert refused.exit_code == 2
        assert f"error: {narrow}: missing column(s) island, sex the model needs" in refused.output


def test_eval_data_of_the_raw_table_reads_blanks_and_strings(penguins):
    model = load_model(penguins)
    X, y = read_labelled(
        PENGUINS, feature_names=model.feature_names, target="species", encoding=model.encoding
    )
    assert X.shape == (344, 10) and set(y) == {"Adelie", "Chinstrap", "Gentoo"}


# --- sources and reports -------------------------------------------------------------------------


def test_parquet_trains_like_the_same_csv(tmp_path):
    frame = mixed_table()
    csv_data = load(write(tmp_path, frame))
    parquet = tmp_path / "data.parquet"
    frame.to_parquet(parquet)
    config = DataConfig(source="parquet", path=str(parquet), target="label")
    parquet_data = load_dataset(config, task="multiclass", seed=0)
    assert parquet_data.feature_names == csv_data.feature_names
    assert np.array_equal(parquet_data.X_train, csv_data.X_train)
    assert np.array_equal(parquet_data.y_test, csv_data.y_test)


def test_parquet_with_pandas_nullable_types_loads_like_the_csv(tmp_path):
    """pandas' nullable dtypes (Float64, Int64, string), as ``convert_dtypes`` makes them and
    a Parquet file keeps them, with blanks: the same matrices as the CSV's."""
    frame = mixed_table()
    frame["weight"] = np.round(np.linspace(1.0, 9.0, len(frame)), 2)
    frame.loc[frame.index[::9], "size"] = np.nan
    csv_data = load(write(tmp_path, frame), missing="impute")
    parquet = tmp_path / "nullable.parquet"
    frame.convert_dtypes().to_parquet(parquet)
    config = DataConfig(source="parquet", path=str(parquet), target="label", missing="impute")
    parquet_data = load_dataset(config, task="multiclass", seed=0)
    assert parquet_data.feature_names == csv_data.feature_names
    for split in ("X_train", "X_val", "X_test"):
        assert np.array_equal(getattr(parquet_data, split), getattr(csv_data, split))


def test_config_show_lists_the_features_after_encoding():
    result = runner.invoke(app, ["config", "show", str(REPO / "examples" / "penguins.yaml")])
    assert result.exit_code == 0, result.output
    assert "# target: 'species': 3 classes: Adelie, Chinstrap, Gentoo" in result.stdout
    assert "#   island             categorical, 3 categories: Biscoe, Dream, Torgersen" in (
        result.stdout
    )
    assert "11 missing, imputed with the most frequent" in result.stdout


def test_predict_with_missing_drop_keeps_each_row_in_place_with_empty_cells(tmp_path):
    path = write(tmp_path, mixed_table())
    checkpoint = train(path, tmp_path / "drop", missing="drop")
    new = mixed_table(4, seed=5).astype({"colour": object})
    new.loc[1, "colour"] = None
    new_path = write(tmp_path, new.drop(columns="label"), "new.csv")
    result = runner.invoke(app, ["predict", str(checkpoint), str(new_path), "--format", "jsonl"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 4
    assert rows[1] == {"label": None, "p_no": None, "p_yes": None}
    assert all(row["label"] in ("no", "yes") for i, row in enumerate(rows) if i != 1)
    csv_rows = runner.invoke(app, ["predict", str(checkpoint), str(new_path)]).stdout.splitlines()
    assert csv_rows[2] == ",,"
