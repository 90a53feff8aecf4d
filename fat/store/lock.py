"""One writer per store, enforced with an advisory lock the kernel drops when the writer dies."""

import fcntl
import os
from pathlib import Path

from fat.core.errors import FatError


class WriterLock:
    """An exclusive `flock` on a small file; released on close or on any process death (SIGKILL
    included), so a killed writer never leaves a stale lock behind."""

    def __init__(self, lock_path: Path, store_path: Path):
        self.lock_path = Path(lock_path)
        self.store_path = store_path
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise FatError(
                f"{self.store_path}: another process (pid {holder}) is writing this store; "
                "wait for it to finish or stop it first"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None
