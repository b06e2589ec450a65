"""The lock of a folder that one bpnn process at a time may write: a run directory (``train``,
``resume``), a sweep folder (``sweep``). An OS lock (``flock``) on ``FOLDER/.lock``, which the OS
releases when the process ends, however (SIGKILL included), so a killed process never leaves
the folder locked; the file holds the holder's process id, for the message of the refused one.
The lock file is opened as every file bpnn writes (``open_regular``): a link or a FIFO there is
refused."""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

from bpnn.errors import OutputError
from bpnn.outputs import open_regular


class FolderLock:
    """The lock of ``folder`` (``folder/.lock``)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / ".lock"
        self._fd: int | None = None
        self._owns_file = False  # created or claimed by this process: release removes it

    @property
    def held(self) -> bool:
        """Whether this process holds it."""
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock; another process holding it is an ``OutputError`` naming that process.
        ``release`` removes the lock file again if this process created or claimed it; a
        refused command leaves the one a killed process left (and with it the folder) as it
        found it."""
        while True:
            try:
                fd = open_regular(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
                created = True
            except FileExistsError:
                try:
                    fd = open_regular(self.path, os.O_RDWR)
                except FileNotFoundError:  # its holder removed it just now: try again
                    continue
                except OSError as error:
                    raise OutputError(
                        f"{self.folder}: cannot lock: {error.strerror or error}"
                    ) from None
                created = False
            except OSError as error:
                raise OutputError(
                    f"{self.folder}: cannot lock: {error.strerror or error}"
                ) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as error:
                holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
                os.close(fd)
                if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise OutputError(f"{self.folder}: cannot lock: {error.strerror}") from None
                raise OutputError(
                    f"{self.folder}: in use by another bpnn process (pid {holder}); "
                    "wait for it to end or choose another directory"
                ) from None
            try:
                same_file = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same_file = False
            if same_file:  # not a file its last holder removed while we opened it
                self._fd = fd
                self._owns_file = created
                return
            os.close(fd)

    def claim(self) -> None:
        """Write this process's id into the lock file (after every check has passed)."""
        assert self._fd is not None
        self._owns_file = True
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        """Release the lock, and remove the lock file if this process created or claimed it."""
        if self._fd is None:
            return
        if self._owns_file:
            self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None
