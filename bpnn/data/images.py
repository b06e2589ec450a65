"""``source: images``: a folder of PNG or JPEG files, one subfolder per class (the layout of
torchvision's ``ImageFolder``)::

    shapes/
      circle/001.png  circle/002.png  ...
      square/001.png  ...

Each image is converted to grey (one value per pixel) or RGB (three, ``data.channels``), resized
to ``data.size`` (height, width) with bilinear filtering and flattened, row by row, into one
sample; its class is its folder's name. Pixels are 0 to 255 and scaled by 1/255 (``scale:
pixels``) unless the config says otherwise. ``predict`` takes an image file or a folder of them
(class subfolders or none); ``eval --data`` a folder laid out as for training.

Pillow reads the files: ``pip install 'bpnn[images]'``; it is imported only when images are read.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

from bpnn.data.sources import (
    CLASSIFICATION,
    Log,
    ModelInputs,
    Raw,
    Samples,
    Source,
    one_line,
    pixel_names,
    register,
)
from bpnn.errors import DataError

if TYPE_CHECKING:
    from bpnn.data.options import DataConfig

#: the image files read, by suffix (any case); other files in a class folder are left alone
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
#: the most pixels one file may declare before it is decoded (a decompression bomb is refused)
MAX_IMAGE_PIXELS = 50_000_000
#: the largest side ``data.size`` may ask for
MAX_SIDE = 1024
#: ``data.channels`` -> Pillow's mode
MODES = {"grey": "L", "rgb": "RGB"}


def _pillow() -> Any:
    try:
        from PIL import Image
    except ImportError:
        raise DataError(
            "source 'images' reads PNG and JPEG files with Pillow, which is not installed: "
            "pip install 'bpnn[images]'"
        ) from None
    return Image


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and path.name[0] != "."


def _images_in(folder: Path) -> list[Path]:
    """The image files directly in ``folder``, in sorted order."""
    return sorted(p for p in folder.iterdir() if _is_image(p))


def _subfolders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _labelled_files(root: Path) -> tuple[list[Path], list[str]]:
    """Every image in ``root``'s class folders, and its class (the folder's name)."""
    if not root.is_dir():
        what = "not a folder" if root.exists() else "no such folder"
        raise DataError(f"{root}: {what} (data.path: a folder with one subfolder per class)")
    folders = _subfolders(root)
    if not folders:
        raise DataError(
            f"{root}: no class folders (one subfolder per class, as {root}/cat/1.png, "
            f"{root}/dog/2.png)"
        )
    files: list[Path] = []
    labels: list[str] = []
    for folder in folders:
        images = _images_in(folder)
        if not images:
            raise DataError(
                f"{folder}: class folder {folder.name!r} has no images "
                f"({', '.join(IMAGE_SUFFIXES)})"
            )
        files += images
        labels += [folder.name] * len(images)
    return files, labels


def read_image(path: Path, size: tuple[int, int], channels: str) -> np.ndarray:
    """One image as float64 pixels 0..255 of shape (height * width * channels,)."""
    image_module = _pillow()
    height, width = size
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", image_module.DecompressionBombWarning)
            with image_module.open(path) as image:
                if image.width * image.height > MAX_IMAGE_PIXELS:
                    raise DataError(
                        f"{path}: {image.width}x{image.height} pixels, more than "
                        f"{MAX_IMAGE_PIXELS:,}; refused (a decompression bomb may be one)"
                    )
                converted = image.convert(MODES[channels])
                if converted.size != (width, height):
                    converted = converted.resize((width, height), image_module.Resampling.BILINEAR)
                pixels = np.asarray(converted, dtype=np.float64)
    except DataError:
        raise
    except (
        OSError,
        ValueError,
        SyntaxError,
        image_module.DecompressionBombError,
        image_module.DecompressionBombWarning,
    ) as error:
        raise DataError(f"{path}: not a readable PNG or JPEG image ({one_line(error)})") from None
    return pixels.reshape(-1)


def read_images(files: list[Path], config: DataConfig) -> np.ndarray:
    """The images ``files`` as rows of a (n, height * width * channels) float64 array."""
    height, width = config.size
    X = np.empty((len(files), height * width * len(MODES[config.channels])))
    for i, path in enumerate(files):
        X[i] = read_image(path, (height, width), config.channels)
    return X


class ImagesSource(Source):
    name = "images"
    path_keys = ("path", "test_path")
    fields: ClassVar[dict[str, tuple[Any, Any]]] = {
        "size": (list[int], [28, 28]),
        "channels": (Literal["grey", "rgb"], "grey"),
    }
    default_scale = "pixels"
    tasks = CLASSIFICATION
    required = ("path",)
    reads_own_samples = True  # predict reads an image or a folder, eval a class-folder tree

    def check(self, config: DataConfig) -> None:
        size = config.size
        if len(size) != 2 or not all(1 <= side <= MAX_SIDE for side in size):
            raise ValueError(
                f"data.size: {size} is not [height, width] of two sides from 1 to {MAX_SIDE}"
            )

    def load(self, config: DataConfig, *, seed: int, log: Log) -> Raw:
        root = Path(config.path)
        files, labels = _labelled_files(root)
        log(f"reading {len(files)} images of {root} ({len(set(labels))} classes)")
        X = read_images(files, config)
        names = pixel_names(X.shape[1])
        raw = Raw(X=X, y=np.array(labels), feature_names=names, name=str(root))
        if config.test_path is not None:
            test_files, test_labels = _labelled_files(Path(config.test_path))
            raw.X_test, raw.y_test = read_images(test_files, config), np.array(test_labels)
            raw.test_name = config.test_path
        return raw

    def read_new(
        self, path: Path, model: ModelInputs, *, id_column: str | None, log: Log
    ) -> Samples:
        """An image file, or every image in a folder (and in its class folders, one level
        down), in sorted order."""
        config = model.config
        assert config is not None  # the model's own source reads: its config is at hand
        if path.is_dir():
            files = _images_in(path)
            for folder in _subfolders(path):
                files += _images_in(folder)
            if not files:
                raise DataError(f"{path}: no images ({', '.join(IMAGE_SUFFIXES)}) to predict")
        elif path.is_file():
            files = [path]
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            raise DataError(f"{path}: no such file")
        else:
            raise DataError(f"{path}: no such file or folder")
        return Samples(read_images(files, config), 0)

    def read_new_labelled(
        self, path: Path, model: ModelInputs, *, log: Log
    ) -> tuple[np.ndarray, np.ndarray]:
        """A folder laid out as for training: one subfolder per class."""
        config = model.config
        assert config is not None
        files, labels = _labelled_files(path)
        return read_images(files, config), np.array(labels)


register(ImagesSource())
