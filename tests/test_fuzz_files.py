"""Fuzz tests of issue 27: the files bpnn reads back, damaged at random. A run directory's
``metrics.jsonl``, ``summary.json`` and ``config.yaml``; the ``.npy`` headers inside a checkpoint
and a data archive; a sweep folder's ``sweep.jsonl`` and sweep files themselves; Parquet columns
of any Arrow type; config files of raw, hostile YAML. Whatever the damage, every command that
reads the file answers with exit 0 or a code of ``EXIT_CODES`` and one ``error:`` line
(``support.assert_answered``); a
refusal changes no byte of what the user had; a run whose summary or config is damaged is still
listed by ``bpnn runs``.

In this process (``support.invoke``), derandomized: CI sees the same examples on every run. The
categories' named cases, through the real command line, are in ``tests/run/test_faults.py``,
``test_tampered_files.py``, ``tests/sweep/test_tampered_sweep.py`` and
``tests/data/test_hostile_tables.py``.
"""

from __future__ import annotations

import datetime
import json
import shutil
import struct
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests import support
from tests.support import assert_answered, files_of, invoke

FUZZ = settings(
    max_examples=70,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

#: any JSON value, the hostile ones included: NaN and infinities, huge integers, nesting
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


@pytest.fixture(scope="module")
def folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as name:
        yield Path(name)


@pytest.fixture(scope="module")
def finished_run(folder: Path) -> Path:
    """A finished run of the tiny config (4 epochs), trained once for the module."""
    config = folder / "tiny.yaml"
    config.write_text(support.tiny_yaml(train={"epochs": 4}), encoding="utf-8")
    result = invoke("train", config, "--out", folder / "finished", "-q")
    assert result.exit_code == 0, result.output
    return folder / "finished"


def fresh_copy(run: Path, folder: Path) -> Path:
    """A copy of ``run`` in a new folder of its own under ``folder`` (one per example)."""
    target = Path(tempfile.mkdtemp(dir=folder)) / "run"
    shutil.copytree(run, target)
    return target


# --- metrics.jsonl ---------------------------------------------------------------------------


@st.composite
def damaged_metrics(draw: st.DrawFn, text: bytes) -> bytes:
    """``text`` (the rows of a run's metrics.jsonl) with one random damage."""
    lines = text.split(b"\n")[:-1]
    index = draw(st.integers(0, len(lines) - 1))
    kind = draw(
        st.sampled_from(["value", "delete", "health", "line", "bytes", "cut", "insert", "swap"])
    )
    event(f"metrics: {kind}")
    if kind in ("value", "delete", "health"):
        row = json.loads(lines[index])
        if kind == "health" and isinstance(row.get("health"), dict) and row["health"]:
            layer = draw(st.sampled_from(sorted(row["health"])))
            measures = row["health"][layer]
            key = draw(st.sampled_from([*sorted(measures), "extra"]))
            measures[key] = draw(JSON)
        else:
            key = draw(st.sampled_from(sorted(row)) | st.text(max_size=6))
            if kind == "delete":
                row.pop(key, None)
            else:
                row[key] = draw(JSON)
        lines[index] = json.dumps(row).encode()
    elif kind == "line":
        lines[index] = draw(st.text(max_size=40)).encode("utf-8", "surrogatepass")
    elif kind == "bytes":
        lines[index] = draw(st.binary(max_size=40))
    elif kind == "insert":
        lines.insert(index, json.dumps(draw(JSON)).encode())
    elif kind == "swap" and len(lines) > 1:
        other = draw(st.integers(0, len(lines) - 1))
        lines[index], lines[other] = lines[other], lines[index]
    data = b"\n".join(lines) + b"\n"
    if kind == "cut":
        data = data[: draw(st.integers(0, len(data)))]
    return data


@FUZZ
@given(data=st.data())
def test_damaged_metrics_are_answered_and_a_refusal_changes_nothing(
    finished_run: Path, folder: Path, data: st.DataObject
) -> None:
    """diagnose and runs answer; where diagnose refuses the file, resume and plot refuse it
    too (one reading of the file), and none of them changes a byte."""
    run = fresh_copy(finished_run, folder)
    metrics = run / "metrics.jsonl"
    metrics.write_bytes(data.draw(damaged_metrics(metrics.read_bytes())))
    before = files_of(run)
    diagnosed = invoke("diagnose", run)
    assert_answered(diagnosed)
    listed = invoke("runs", run.parent, "--json")
    assert_answered(listed)
    assert listed.exit_code == 0, listed.stderr
    event(f"diagnose exit {diagnosed.exit_code}")
    if diagnosed.exit_code != 0 and diagnosed.stderr.startswith(f"error: {metrics}"):
        for command in (["resume", run, "--epochs", 6, "-q"], ["plot", run]):
            refused = invoke(*command)
            assert_answered(refused)
            assert refused.exit_code != 0, (command, diagnosed.stderr, refused.output)
        assert files_of(run) == before


# --- summary.json and config.yaml of a run ---------------------------------------------------


@FUZZ
@given(summary=st.one_of(JSON.map(lambda v: json.dumps(v).encode()), st.binary(max_size=60)))
def test_a_damaged_summary_is_a_run_without_one(
    finished_run: Path, folder: Path, summary: bytes
) -> None:
    run = fresh_copy(finished_run, folder)
    (run / "summary.json").write_bytes(summary)
    listed = invoke("runs", run.parent, "--json")
    assert_answered(listed)
    assert listed.exit_code == 0, listed.stderr
    (record,) = json.loads(listed.stdout)
    assert record["name"] == "run"
    assert_answered(invoke("diagnose", run))


#: what a hand-edited config.yaml may hold: sections and values of any kind, YAML's own syntax
YAML_PIECES = st.sampled_from(
    [
        "name: tiny\n",
        "seed: 0\n",
        "data: {source: iris}\n",
        "model: {hidden: [8]}\n",
        "optimizer: {name: adam, lr: 0.01}\n",
        "train: {epochs: 3, batch_size: 16}\n",
        "model: 5\n",
        "data: [iris]\n",
        "train: {epochs: .inf}\n",
        "a: &a [1, 2]\nb: *a\n",
        "!!python/object/apply:os.system [echo]\n",
        "model: {hidden: [8], hidden: [4]}\n",
        "{[}\n",
        "\t- tab\n",
        "key: 'unterminated\n",
        "---\n---\n",
    ]
)
YAML_TEXT = st.lists(YAML_PIECES | st.text(max_size=20), max_size=8).map("".join)


@FUZZ
@given(config=YAML_TEXT)
def test_a_damaged_run_config_is_listed_and_refused_by_resume_in_one_line(
    finished_run: Path, folder: Path, config: str
) -> None:
    run = fresh_copy(finished_run, folder)
    (run / "config.yaml").write_text(config, encoding="utf-8", errors="surrogatepass")
    before = files_of(run)
    listed = invoke("runs", run.parent, "--json")
    assert_answered(listed)
    assert listed.exit_code == 0, listed.stderr
    resumed = invoke("resume", run, "--epochs", 6, "-q")
    assert_answered(resumed)
    event(f"resume exit {resumed.exit_code}")
    if resumed.exit_code != 0:
        assert files_of(run) == before


@FUZZ
@given(text=YAML_TEXT | st.binary(max_size=80).map(lambda b: b.decode("latin-1")))
def test_hostile_yaml_as_a_config_is_answered(folder: Path, text: str) -> None:
    path = Path(tempfile.mkdtemp(dir=folder)) / "config.yaml"
    path.write_text(text, encoding="latin-1", errors="replace")
    checked = invoke("config", "check", path)
    assert_answered(checked)
    event(f"config check exit {checked.exit_code}")


# --- .npy headers inside an archive -----------------------------------------------------------

#: what an entry's header may declare: dtypes bpnn writes and ones it must refuse
DESCRS = st.sampled_from(["<f4", "<f8", ">f4", "<i8", "|u1", "|b1", "|O", "<U3", "|V8", "<c16"])
SHAPES = st.lists(
    st.integers(-2, 12) | st.sampled_from([10**6, 2**31, 10**12, 2**62]), max_size=3
).map(tuple)


def npy_bytes(header: str, body: bytes) -> bytes:
    """An ``.npy`` file (format 1.0) of ``header`` (the dict's text, padded) and ``body``."""
    text = header.encode("latin-1", "replace")
    text += b" " * (63 - (10 + len(text)) % 64) + b"\n"
    if len(text) > 65535:
        text = text[:65535]
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + body


@st.composite
def tampered_archive(draw: st.DrawFn, entries: dict[str, bytes]) -> dict[str, bytes]:
    """``entries`` (an archive's ``.npy`` files by name) with one entry's header replaced."""
    name = draw(st.sampled_from(sorted(entries)))
    original = entries[name]
    length = struct.unpack("<H", original[8:10])[0]
    body = original[10 + length :]
    if draw(st.booleans()):
        descr, fortran, shape = draw(DESCRS), draw(st.booleans()), draw(SHAPES)
        header = f"{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape!r}, }}"
    else:
        header = draw(st.text(max_size=60))
    if draw(st.booleans()):
        body = body[: draw(st.integers(0, len(body)))]
    event(f"npy header of {name.split('/')[0]}")
    return {**entries, name: npy_bytes(header, body)}


def entries_of(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def write_archive(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


@pytest.fixture(scope="module")
def inputs(folder: Path) -> Path:
    """Four iris-shaped samples to predict, as an ``.npz``."""
    path = folder / "inputs.npz"
    np.savez(path, X=np.random.default_rng(0).normal(size=(4, 4)))
    return path


@FUZZ
@given(data=st.data())
def test_a_tampered_npy_header_in_a_checkpoint_is_answered(
    finished_run: Path, folder: Path, inputs: Path, data: st.DataObject
) -> None:
    entries = entries_of(finished_run / "checkpoints" / "best.npz")
    path = Path(tempfile.mkdtemp(dir=folder)) / "best.npz"
    write_archive(path, data.draw(tampered_archive(entries)))
    evaluated = invoke("eval", path)
    assert_answered(evaluated)
    assert_answered(invoke("predict", path, inputs))
    event(f"eval exit {evaluated.exit_code}")


@FUZZ
@given(data=st.data())
def test_a_tampered_npy_header_in_data_to_predict_is_answered(
    finished_run: Path, folder: Path, inputs: Path, data: st.DataObject
) -> None:
    path = Path(tempfile.mkdtemp(dir=folder)) / "inputs.npz"
    write_archive(path, data.draw(tampered_archive(entries_of(inputs))))
    predicted = invoke("predict", finished_run / "checkpoints" / "best.npz", path)
    assert_answered(predicted)
    event(f"predict exit {predicted.exit_code}")


# --- Parquet columns of any Arrow type ---------------------------------------------------------

ROWS = 24

#: a column of ROWS values of each Arrow type a Parquet file may hold
COLUMNS: dict[str, Callable[[np.ndarray], pa.Array]] = {
    "float16": lambda x: pa.array(x.astype(np.float16)),
    "float32": lambda x: pa.array(x.astype(np.float32)),
    "int8": lambda x: pa.array((x * 100).astype(np.int8)),
    "uint64": lambda x: pa.array(np.abs(x * 1e6).astype(np.uint64)),
    "bool": lambda x: pa.array(x > 0),
    "string": lambda x: pa.array([f"{v:.1f}" for v in x]),
    "large_string": lambda x: pa.array([f"c{int(v > 0)}" for v in x], pa.large_string()),
    "dictionary": lambda x: pa.array([f"c{int(v * 3)}" for v in x]).dictionary_encode(),
    "decimal": lambda x: pa.array([round(float(v), 2) for v in x]).cast(pa.decimal128(8, 2)),
    "null": lambda x: pa.nulls(len(x)),
    "binary": lambda x: pa.array([bytes([int(abs(v) * 10)]) for v in x]),
    "date": lambda x: pa.array([datetime.date(2024, 1, 1 + i % 28) for i in range(len(x))]),
    "timestamp": lambda x: pa.array((x * 1e9).astype("int64")).cast(pa.timestamp("ns")),
    "duration": lambda x: pa.array((x * 1e3).astype("int64")).cast(pa.duration("ms")),
    "list": lambda x: pa.array([[float(v)] for v in x]),
    "struct": lambda x: pa.array([{"a": float(v)} for v in x]),
    "map": lambda x: pa.array([[("k", float(v))] for v in x], pa.map_(pa.string(), pa.float64())),
}


@st.composite
def parquet_tables(draw: st.DrawFn) -> pa.Table:
    """x (numbers), f (a column of a random type, some values missing) and a target y."""
    x = np.linspace(-1.0, 1.0, ROWS)
    kind = draw(st.sampled_from(sorted(COLUMNS)))
    column = COLUMNS[kind](x)
    missing = draw(st.lists(st.integers(0, ROWS - 1), max_size=4, unique=True))
    if missing and kind != "null":
        mask = np.zeros(ROWS, dtype=bool)
        mask[missing] = True
        column = pa.array(column.to_pylist(), column.type, mask=mask)
    target = pa.array((x > 0).astype(np.int64))
    if draw(st.booleans()):  # the odd column as the target instead
        column, target = target, column
    event(f"parquet: {kind}")
    return pa.table({"x": x, "f": column, "y": target})


@pytest.fixture(scope="module")
def parquet_checkpoint(folder: Path) -> Path:
    """A model trained on two numeric Parquet columns ``x`` and ``f`` to predict ``y``."""
    x = np.linspace(-1.0, 1.0, ROWS)
    path = folder / "numbers.parquet"
    pq.write_table(pa.table({"x": x, "f": x**2, "y": (x > 0).astype(np.int64)}), path)
    config = folder / "parquet.yaml"
    config.write_text(parquet_config(path), encoding="utf-8")
    result = invoke("train", config, "--out", folder / "parquet-run", "-q")
    assert result.exit_code == 0, result.output
    return folder / "parquet-run" / "checkpoints" / "best.npz"


def parquet_config(path: Path) -> str:
    return (
        f"name: parquet\nseed: 0\ndata: {{source: parquet, path: '{path}', target: y}}\n"
        "model: {hidden: [4]}\ntrain: {epochs: 1, batch_size: 8}\n"
    )


@settings(FUZZ, max_examples=60)
@given(table=parquet_tables())
def test_a_parquet_column_of_any_type_is_answered_by_check_predict_and_eval(
    parquet_checkpoint: Path, folder: Path, table: pa.Table
) -> None:
    work = Path(tempfile.mkdtemp(dir=folder))
    path = work / "table.parquet"
    pq.write_table(table, path)
    config = work / "config.yaml"
    config.write_text(parquet_config(path), encoding="utf-8")
    checked = invoke("config", "check", config)
    assert_answered(checked)
    assert_answered(invoke("predict", parquet_checkpoint, path))
    assert_answered(invoke("eval", parquet_checkpoint, "--data", path))
    event(f"config check exit {checked.exit_code}")


# --- a sweep folder's records ------------------------------------------------------------------


@pytest.fixture(scope="module")
def finished_sweep(folder: Path) -> tuple[Path, Path]:
    """``(sweep file, folder)`` of a finished grid of two one-epoch trials."""
    (folder / "tiny.yaml").write_text(
        support.tiny_yaml(train={"epochs": 1, "batch_size": 64}), encoding="utf-8"
    )
    sweep = folder / "sweep.yaml"
    sweep.write_text(support.TWO_TRIAL_GRID, encoding="utf-8")
    result = invoke("sweep", sweep, "--out", folder / "sweep", "--workers", "1")
    assert result.exit_code == 0, result.output
    return sweep, folder / "sweep"


@settings(FUZZ, max_examples=30)
@given(data=st.data())
def test_damaged_sweep_records_are_answered_and_a_refusal_changes_nothing(
    finished_sweep: tuple[Path, Path], folder: Path, data: st.DataObject
) -> None:
    sweep, finished = finished_sweep
    copy = Path(tempfile.mkdtemp(dir=folder)) / "sweep"
    shutil.copytree(finished, copy)
    records = copy / "sweep.jsonl"
    records.write_bytes(data.draw(damaged_metrics(records.read_bytes())))
    before = files_of(copy)
    plotted = invoke("plot", copy, "--out", copy.parent / "sweep.png")
    assert_answered(plotted)
    resumed = invoke("sweep", sweep, "--out", copy, "--workers", "1")
    assert_answered(resumed)
    event(f"sweep exit {resumed.exit_code}")
    if resumed.exit_code != 0:
        assert files_of(copy) == before


# --- sweep files --------------------------------------------------------------------------------

SPACE_KEYS = ["optimizer.lr", "model.hidden", "loss", "train.epochs", "name", "model.dropout", ""]
DISTRIBUTIONS = st.one_of(
    JSON,
    st.lists(JSON, max_size=3),
    st.fixed_dictionaries({}, optional={"log_uniform": JSON, "uniform": JSON, "int": JSON}),
)


@st.composite
def sweep_files(draw: st.DrawFn) -> dict[str, object]:
    """A sweep file of ``tiny.yaml``: any metric, method, trials and space, extra keys."""
    spec: dict[str, object] = {
        "base": "tiny.yaml",
        "metric": draw(st.sampled_from(["val_accuracy", "val_loss", "test_r2", "accuracy"])),
        "method": draw(st.sampled_from(["grid", "random", "tpe", "bayes"])),
    }
    if draw(st.booleans()):
        spec["trials"] = draw(st.integers(-1, 3) | JSON)
    spec["space"] = draw(st.dictionaries(st.sampled_from(SPACE_KEYS), DISTRIBUTIONS, max_size=3))
    for _ in range(draw(st.integers(0, 2))):
        spec[draw(st.sampled_from(["seed", "prune", "prune_startup_trials", "budget"]))] = draw(
            JSON
        )
    return spec


@settings(FUZZ, max_examples=100)
@given(spec=sweep_files())
def test_a_sweep_file_refused_before_a_trial_is_one_line_and_creates_nothing(
    folder: Path, spec: dict[str, object]
) -> None:
    """Every sweep file that ``load_sweep`` refuses is one line from ``bpnn sweep``, with no
    sweep folder created; the ones it accepts are left to the sweep tests (they would train)."""
    from bpnn.errors import BpnnError
    from bpnn.sweep.spec import load_sweep

    work = Path(tempfile.mkdtemp(dir=folder))
    (work / "tiny.yaml").write_text(support.tiny_yaml(train={"epochs": 1}), encoding="utf-8")
    path = work / "sweep.yaml"
    path.write_text(json.dumps(spec, allow_nan=True), encoding="utf-8")  # JSON is YAML
    try:
        load_sweep(path)
    except BpnnError as error:
        assert "\n" not in str(error)
        refused = invoke("sweep", path, "--out", work / "out", "--workers", "1")
        assert_answered(refused)
        assert refused.exit_code != 0 and not (work / "out").exists()
        event("refused")
    else:
        event("accepted")
