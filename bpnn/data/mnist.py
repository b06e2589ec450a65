"""MNIST: the four IDX ``.gz`` files, downloaded from ``data.mirrors`` when missing and kept only
when the SHA-256 of their decompressed content matches."""

from __future__ import annotations

import hashlib
import http.client
import os
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, ClassVar

from bpnn.data.formats import idx_pair
from bpnn.data.sources import Log, Raw, Source, one_line, pixel_names, register
from bpnn.errors import DataError
from bpnn.outputs import atomic_file
from bpnn.schema import PositiveFloat

if TYPE_CHECKING:
    from bpnn.data.options import DataConfig

#: the four MNIST files and the SHA-256 of each file's *decompressed* content
MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",  # noqa: E501
    "train-labels-idx1-ubyte.gz": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",  # noqa: E501
    "t10k-images-idx3-ubyte.gz": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte.gz": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
#: public MNIST mirrors, tried in order (base URLs; the file name is appended)
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)


#: what every failed download says: where else bpnn can find the files
ELSEWHERE = (
    ". Or copy the four files into a folder DIR and use --set data.path=DIR, or set "
    "BPNN_DATA_DIR=DIR (the default folder is then DIR/mnist)"
)


def default_mnist_dir() -> Path:
    """``$BPNN_DATA_DIR/mnist`` when the variable is set, else ``~/.cache/bpnn/mnist``."""
    base = os.environ.get("BPNN_DATA_DIR")
    return Path(base).expanduser() / "mnist" if base else Path.home() / ".cache" / "bpnn" / "mnist"


class MnistSource(Source):
    """MNIST's 60,000 training and 10,000 test images from ``data.path`` (default
    ``default_mnist_dir()``), downloaded there first when missing."""

    name = "mnist"
    path_keys = ("path",)
    split_keys = frozenset({"scale", "val_fraction"})  # its own test set; pixels, no targets
    fields: ClassVar[dict[str, tuple[Any, Any]]] = {
        "mirrors": (list[str] | None, None),  # None: MNIST_MIRRORS
        "download_timeout": (PositiveFloat, 120.0),  # seconds for each downloaded file
    }
    default_scale = "pixels"
    tasks = ("multiclass",)
    has_test_set = True

    def download_needed(self, config: DataConfig) -> str | None:
        folder, missing = _missing_files(config)
        if not missing or config.mirrors == []:  # no mirrors: loading fails at once, offline
            return None
        return f"{len(missing)} of 4 MNIST files missing in {folder}"

    def load(self, config: DataConfig, *, seed: int, log: Log) -> Raw:
        folder, missing = _missing_files(config)
        if missing:
            log(f"MNIST: {len(missing)} of 4 files missing in {folder}; downloading")
            mirrors = MNIST_MIRRORS if config.mirrors is None else config.mirrors
            download_mnist(folder, missing, mirrors, log, config.download_timeout)
        X, y = idx_pair(
            folder / "train-images-idx3-ubyte.gz", folder / "train-labels-idx1-ubyte.gz"
        )
        X_test, y_test = idx_pair(
            folder / "t10k-images-idx3-ubyte.gz", folder / "t10k-labels-idx1-ubyte.gz"
        )
        return Raw(X, y, pixel_names(X.shape[1]), "mnist", X_test, y_test, "mnist (t10k)")


def _missing_files(config: DataConfig) -> tuple[Path, list[str]]:
    """The folder of the MNIST files (``data.path``, else ``default_mnist_dir()``) and the
    files not in it."""
    folder = Path(config.path) if config.path else default_mnist_dir()
    return folder, [name for name in MNIST_FILES if not (folder / name).is_file()]


register(MnistSource())


def download_mnist(
    folder: Path,
    names: list[str],
    mirrors: tuple[str, ...] | list[str],
    log: Log,
    timeout: float = 120.0,
) -> None:
    """Download each of ``names`` into ``folder`` from the first mirror that serves it intact.

    Each download is written to a temporary file in ``folder`` while its decompressed bytes are
    hashed; it is renamed to its final name only when the SHA-256 matches ``MNIST_FILES``, and
    deleted otherwise, so a bad file is never kept. All mirrors failing is a ``DataError``.
    """
    if not mirrors:
        raise DataError(
            f"mnist: {', '.join(names)} missing in {folder}, and data.mirrors is empty{ELSEWHERE}"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(
            f"mnist: cannot create {folder}: {error.strerror or error}{ELSEWHERE}"
        ) from None
    for name in names:
        tried = []
        for base in mirrors:
            url = base.rstrip("/") + "/" + name
            log(f"downloading {name} from {url}")
            problem = _download_verified(url, folder / name, MNIST_FILES[name], timeout)
            if problem is None:
                log(f"saved {folder / name} (SHA-256 verified)")
                break
            log(f"{url}: {problem}")
            tried.append(f"{url} ({problem})")
        else:
            raise DataError(
                f"mnist: could not download {name}; tried: {'; '.join(tried)}{ELSEWHERE}"
            )


#: the largest decompressed MNIST file is 47,040,016 bytes; a stream inflating past this is refused
MAX_INFLATED_BYTES = 64 << 20
#: a download slower than this on average, after its first 30 seconds, is given up
MIN_BYTES_PER_SECOND = 1024
#: the longest a single read from the server may block
READ_TIMEOUT = 10.0


class _RefusedDownloadError(Exception):
    """A download that is not the file it should be: the message says why; the temporary goes."""


def _download_verified(url: str, target: Path, sha256: str, timeout: float = 120.0) -> str | None:
    """Download ``url`` (a gzip file) to ``target`` if its decompressed SHA-256 is ``sha256``.
    Returns None on success, else what went wrong (and nothing is left on disk: the download goes
    to a temporary of ``atomic_file``, removed on every exit, SIGTERM and Ctrl-C included, and
    renamed to ``target`` only once verified)."""
    opened = False
    try:
        with atomic_file(target, binary=True, unique=True) as out:
            opened = True
            problem = _fetch_verified(url, out, sha256, timeout)
            if problem is not None:
                raise _RefusedDownloadError(problem)
    except _RefusedDownloadError as refused:
        return str(refused)
    except OSError as error:
        if not opened:  # the temporary could not be made: no mirror will do better
            raise DataError(
                f"mnist: cannot write in {target.parent}: {error.strerror or error}{ELSEWHERE}"
            ) from None
        return one_line(error.strerror or error) or type(error).__name__
    return None


def _fetch_verified(url: str, out: IO[bytes], sha256: str, timeout: float) -> str | None:
    """Write the gzip file at ``url`` to ``out``, hashing its decompressed bytes; None when the
    SHA-256 is ``sha256``, else what went wrong.

    A download must finish within ``timeout`` seconds (``data.download_timeout``), no read may
    block longer than ``READ_TIMEOUT``, and after 30 seconds it must average at least
    ``MIN_BYTES_PER_SECOND``: a mirror that sends a byte now and then is given up."""
    started = time.monotonic()
    try:
        digest = hashlib.sha256()
        inflate = zlib.decompressobj(wbits=31)  # 31: expect a gzip header
        received = inflated = 0
        read_timeout = min(READ_TIMEOUT, timeout)
        with urllib.request.urlopen(url, timeout=read_timeout) as response:
            while chunk := response.read1(1 << 20):
                out.write(chunk)
                received += len(chunk)
                data = inflate.decompress(chunk, MAX_INFLATED_BYTES + 1 - inflated)
                inflated += len(data)
                if inflated > MAX_INFLATED_BYTES or inflate.unconsumed_tail:
                    return f"decompresses to more than {MAX_INFLATED_BYTES >> 20} MiB"
                digest.update(data)
                elapsed = time.monotonic() - started
                if elapsed > timeout:
                    return f"took longer than {timeout:g} s (data.download_timeout)"
                if elapsed > 30 and received / elapsed < MIN_BYTES_PER_SECOND:
                    return f"too slow ({received / elapsed:.0f} bytes/s after {elapsed:.0f} s)"
        if not inflate.eof:
            return "truncated gzip stream"
        if digest.hexdigest() != sha256:
            got = digest.hexdigest()
            return f"checksum mismatch (SHA-256 {got[:12]}..., expected {sha256[:12]}...)"
        return None
    except TimeoutError:
        return f"no data for {min(READ_TIMEOUT, timeout):g} s (timed out)"
    except urllib.error.HTTPError as error:
        return f"HTTP {error.code} {error.reason}"
    except urllib.error.URLError as error:
        return one_line(error.reason)
    except zlib.error as error:
        return f"not a valid gzip file ({one_line(error)})"
    except (OSError, http.client.HTTPException, ValueError) as error:
        return one_line(error) or type(error).__name__
