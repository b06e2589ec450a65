"""``source: images``: a folder of class folders of PNG/JPEG files, through training, eval,
predict (a folder or one file), export and explain, and each error as one line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from bpnn.config import validate
from bpnn.data import load_dataset
from bpnn.errors import ConfigError, DataError
from tests.support import REPO, SHAPES, make_shapes_folder

pytest.importorskip("PIL")


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_shapes_folder(tmp_path_factory.mktemp("images") / "shapes", per_class=20)


def images_config(path: Path, **data: object) -> dict[str, object]:
    return {
        "name": "shapes",
        "data": {"source": "images", "path": str(path), "size": [12, 12], **data},
        "model": {"hidden": [32]},
        "train": {"epochs": 30, "batch_size": 16},
        "optimizer": {"name": "adam", "lr": 0.01},
    }


@pytest.mark.parametrize(("channels", "width"), [("grey", 144), ("rgb", 432)])
def test_images_become_scaled_pixel_rows_labelled_by_their_folder(
    shapes: Path, channels: str, width: int
) -> None:
    config = validate(images_config(shapes, channels=channels))
    data = load_dataset(config.data, task="multiclass", seed=0)
    assert data.X_train.shape[1] == width and sum(data.n_samples) == 60
    assert list(data.classes) == list(SHAPES)
    assert config.data.scale == "pixels"  # the source's default: 0..255 -> 0..1
    everything = np.concatenate([data.X_train, data.X_val, data.X_test])
    assert everything.min() >= 0 and everything.max() <= 1 and everything.max() > 0.5


def test_train_eval_predict_export_and_explain_an_image_model(
    shapes: Path, tmp_path: Path, run_cli: object
) -> None:
    import yaml

    config = tmp_path / "shapes.yaml"
    config.write_text(yaml.safe_dump(images_config(shapes)), encoding="utf-8")
    trained = run_cli("train", config, "--out", tmp_path / "run", "-q")  # type: ignore[operator]
    assert trained.returncode == 0, trained.stderr
    best = tmp_path / "run" / "checkpoints" / "best.npz"

    evaluated = run_cli("eval", best, "--data", shapes, "--json")  # type: ignore[operator]
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["test_accuracy"] > 0.6  # three classes: chance 1/3

    folder = run_cli("predict", best, shapes / "circle")  # type: ignore[operator]
    assert folder.returncode == 0, folder.stderr
    lines = folder.stdout.splitlines()
    assert lines[0].split(",") == ["label", *(f"p_{shape}" for shape in SHAPES)]
    assert len(lines) == 1 + 20
    one = run_cli("predict", best, shapes / "square" / "001.png")  # type: ignore[operator]
    assert one.returncode == 0 and len(one.stdout.splitlines()) == 2, one.stderr

    explained = run_cli("explain", config)  # type: ignore[operator]
    assert explained.returncode == 0, explained.stderr
    if "onnxruntime" in sys.modules or _have("onnxruntime"):
        exported = run_cli(  # type: ignore[operator]
            "export", best, "--format", "onnx", "--out", tmp_path / "shapes.onnx"
        )
        assert exported.returncode == 0, exported.stderr


def _have(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def test_bad_image_data_is_one_error_naming_the_place(shapes: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such folder"):
        load_dataset(validate(images_config(tmp_path / "missing")).data, task="multiclass", seed=0)
    empty = tmp_path / "empty"
    (empty / "cat").mkdir(parents=True)
    with pytest.raises(DataError, match="class folder 'cat' has no images"):
        load_dataset(validate(images_config(empty)).data, task="multiclass", seed=0)
    broken = tmp_path / "broken"
    (broken / "cat").mkdir(parents=True)
    (broken / "cat" / "1.png").write_bytes(b"not a png at all")
    with pytest.raises(DataError, match=r"1\.png: not a readable PNG or JPEG image"):
        load_dataset(validate(images_config(broken)).data, task="multiclass", seed=0)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"size": [12]}, "data.size"),
        ({"size": [0, 12]}, "data.size"),
        ({"size": [4096, 4096]}, "data.size"),
        ({"channels": "cmyk"}, "data.channels"),
        ({"x_key": "X"}, "data.x_key: does not apply to source 'images'"),
    ],
)
def test_bad_image_keys_are_config_errors(shapes: Path, data: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        validate(images_config(shapes, **data))


def test_the_size_key_is_only_for_images() -> None:
    with pytest.raises(ConfigError, match=r"data\.size: does not apply to source 'digits'"):
        validate({"data": {"source": "digits", "size": [8, 8]}})


def test_without_pillow_the_error_names_the_extra(
    shapes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(DataError, match=r"pip install 'bpnn\[images\]'"):
        load_dataset(validate(images_config(shapes)).data, task="multiclass", seed=0)


def test_an_image_declaring_too_many_pixels_is_refused_before_decoding(tmp_path: Path) -> None:
    """A PNG whose header declares 20000 x 20000 pixels (400 million: a decompression bomb;
    Pillow's own limit raises its DecompressionBombError there) is one line, not a traceback."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"") + chunk(b"IEND", b"")
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "bomb.png").write_bytes(png)
    with pytest.raises(DataError, match=r"bomb\.png: .*(decompression bomb|pixels)"):
        load_dataset(validate(images_config(tmp_path)).data, task="multiclass", seed=0)


def test_the_shipped_shapes_are_the_ones_the_tests_draw(tmp_path: Path) -> None:
    """configs/data/shapes (what configs/images.yaml trains on) is make_shapes_folder's output:
    the same files, and pixels equal to the ones drawn now (JPEG within its decoder's noise)."""
    from PIL import Image

    shipped = REPO / "configs" / "data" / "shapes"
    drawn = make_shapes_folder(tmp_path / "shapes", per_class=30)
    names = sorted(p.relative_to(shipped) for p in shipped.rglob("*.*"))
    assert names == sorted(p.relative_to(drawn) for p in drawn.rglob("*.*"))
    for name in names:
        a = np.asarray(Image.open(shipped / name), dtype=np.float64)
        b = np.asarray(Image.open(drawn / name), dtype=np.float64)
        assert a.shape == b.shape, name
        assert np.abs(a - b).mean() <= (2.0 if name.suffix == ".jpg" else 0.0), name
