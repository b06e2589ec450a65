"""Reading back the files bpnn and its users write, one hardened reader per format.

A file that comes back may have been edited, cut short or built to do harm, so nothing in it is
trusted before it is checked, and nothing large is allocated before its size is known:

- ``parse_json``: strict UTF-8, at most ``MAX_JSON_DEPTH`` levels of nesting (a deeper document
  is refused, never a ``RecursionError``), a size limit; the caller checks the fields.
- ``read_npz``: an ``.npz`` archive (checkpoints, weights files, data) without pickles. Every
  entry's ``.npy`` header is read first and its size (shape times item size) checked against
  what the archive says the entry holds, and the whole against the memory available, before a
  single array is inflated. A header that claims 10^12 values in a 100-byte entry is a corrupt
  file; ``max_inflation`` refuses entries that inflate more than that many times (a
  "compression bomb": checkpoints are written uncompressed, so one of them never does).

Every problem is one line naming the file (and the entry), raised as the caller's error type.
YAML is read by ``bpnn.config.reading`` (its size and alias limits).
"""

from __future__ import annotations

import json
import math
import os
import stat
import tokenize
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from bpnn.errors import BpnnError, DataError, MemoryLimitError
from bpnn.memory import available_bytes, format_size

#: JSON nested deeper than this (a metrics row has 3 levels, checkpoint metadata about 6)
MAX_JSON_DEPTH = 64
#: an entry smaller than this may inflate at any ratio (headers, small arrays)
SMALL_ENTRY = 1 << 20
#: the largest .npy header numpy itself reads
MAX_NPY_HEADER = 10_000


def json_depth(value: Any) -> int:
    """How deeply ``value`` nests lists and mappings (a number: 0), without recursion."""
    depth, level = 0, [(value, 1)]
    while level:
        item, here = level.pop()
        if isinstance(item, dict | list):
            depth = max(depth, here)
            children = item.values() if isinstance(item, dict) else item
            level.extend((child, here + 1) for child in children)
    return depth


def parse_json(
    text: str | bytes,
    where: str,
    error: type[BpnnError] = DataError,
    *,
    max_depth: int = MAX_JSON_DEPTH,
) -> Any:
    """The value of JSON ``text`` (bytes must be UTF-8), or ``error("WHERE: ...")``: not
    UTF-8, not JSON, or nested more than ``max_depth`` levels."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise error(f"{where}: not UTF-8 text") from None
    try:
        value = json.loads(text)
    except RecursionError:
        raise error(f"{where}: nested too deeply (more than {max_depth} levels)") from None
    except ValueError as problem:
        message = problem.msg if isinstance(problem, json.JSONDecodeError) else str(problem)
        raise error(f"{where}: not valid JSON ({message[:80]})") from None
    if json_depth(value) > max_depth:
        raise error(f"{where}: nested too deeply (more than {max_depth} levels)")
    return value


def read_bounded(path: Path, limit: int, error: type[BpnnError] = DataError) -> bytes:
    """The bytes of the regular file at ``path`` (a link to one is followed), at most ``limit``:
    a larger file, a FIFO, a device or a folder is ``error`` naming it, found without blocking
    or reading it all."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except OSError as problem:
        raise error(f"{path}: cannot read: {problem.strerror or problem}") from None
    with os.fdopen(descriptor, "rb") as handle:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise error(f"{path}: not a regular file")
        os.set_blocking(descriptor, True)
        try:
            data = handle.read(limit + 1)
        except OSError as problem:
            raise error(f"{path}: cannot read: {problem.strerror or problem}") from None
    if len(data) > limit:
        raise error(f"{path}: larger than {format_size(limit)}; not a file bpnn reads")
    return data


def read_json_file(path: Path, error: type[BpnnError] = DataError, *, limit: int = 64 << 20) -> Any:
    """The JSON value of the file at ``path`` (at most ``limit`` bytes), as ``parse_json``."""
    return parse_json(read_bounded(path, limit, error), str(path), error)


#: what parsing an ``.npy`` header (a Python literal, read by numpy with ``tokenize`` and
#: ``ast.literal_eval``) raises on text that is not one
HEADER_ERRORS = (
    ValueError,
    TypeError,
    SyntaxError,
    EOFError,
    zlib.error,
    tokenize.TokenError,
    RecursionError,
    MemoryError,
    OverflowError,
)


def _entry_header(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[tuple[int, ...], Any]:
    """The shape and dtype an entry's ``.npy`` header declares, read without its data."""
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(member, MAX_NPY_HEADER)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(member, MAX_NPY_HEADER)
        else:
            raise ValueError(f".npy format version {version} is not read")
        header_size = member.tell()
    return (tuple(shape), dtype, header_size)  # type: ignore[return-value]


def npz_headers(
    path: Path,
    error: type[BpnnError] = DataError,
    *,
    what: str = ".npz file",
    max_inflation: float | None = None,
) -> dict[str, tuple[tuple[int, ...], np.dtype[Any]]]:
    """Each entry of the ``.npz`` archive at ``path`` (by name, without ``.npy``) with the shape
    and dtype its header declares, every size checked (see the module's docstring); nothing is
    inflated but the headers. ``error`` is raised for a file that is not such an archive."""
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as handle:
            magic = handle.read(6)
        kind = "a single .npy array" if magic == b"\x93NUMPY" else "not a zip file"
        raise error(f"{path}: not a readable {what} ({kind}, not an .npz archive of named arrays)")
    headers: dict[str, tuple[tuple[int, ...], np.dtype[Any]]] = {}
    total = 0
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                entry = info.filename.removesuffix(".npy")
                where = f"{path}: entry '{entry[:60]}'"
                if info.is_dir() or not info.filename.endswith(".npy"):
                    raise error(f"{where} is not an array (.npy)")
                stored = info.compress_type == zipfile.ZIP_STORED
                if stored and info.file_size != info.compress_size:
                    raise error(f"{where}: its sizes disagree (a corrupt archive)")
                if (
                    max_inflation is not None
                    and info.file_size > SMALL_ENTRY
                    and info.file_size > max_inflation * max(info.compress_size, 1)
                ):
                    raise error(
                        f"{where} inflates from {format_size(info.compress_size)} to "
                        f"{format_size(info.file_size)} (more than {max_inflation:g} times): "
                        "refused unread"
                    )
                try:
                    shape, dtype, header_size = _entry_header(archive, info)
                except HEADER_ERRORS as problem:
                    raise error(f"{where}: not a readable .npy header ({problem})") from None
                if dtype.hasobject:
                    raise error(
                        f"{where} holds pickled objects, which bpnn never loads (not a file "
                        "bpnn or numpy's savez wrote from numbers or text)"
                    )
                if any(n < 0 for n in shape):
                    raise error(f"{where}: its header declares shape {shape}")
                size = math.prod(shape) * dtype.itemsize
                if header_size + size > info.file_size:
                    raise error(
                        f"{where}: its header declares {math.prod(shape)} values of {dtype} "
                        f"({format_size(size)}), the entry holds {format_size(info.file_size)} "
                        "(a corrupt file)"
                    )
                total += size
                headers[entry] = (shape, dtype)
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, zlib.error) as problem:
        raise error(f"{path}: not a readable {what} ({problem})") from None
    memory = available_bytes()
    if memory is not None and total > memory // 2:
        raise MemoryLimitError(
            f"{path}: its arrays need {format_size(total)}, more than half the memory "
            f"available ({format_size(memory)})"
        )
    return headers


def read_npz(
    path: Path,
    error: type[BpnnError] = DataError,
    *,
    what: str = ".npz file",
    max_inflation: float | None = None,
) -> dict[str, np.ndarray]:
    """The named arrays of the ``.npz`` archive at ``path``, read once ``npz_headers`` has
    checked every size. ``error`` is raised for anything wrong with the file."""
    npz_headers(path, error, what=what, max_inflation=max_inflation)
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (ValueError, OSError, EOFError, RuntimeError, zlib.error, zipfile.BadZipFile) as problem:
        message = " ".join(str(problem).split())[:120]
        raise error(f"{path}: not a readable {what} ({message})") from None
