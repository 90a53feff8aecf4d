"""One holder at a time, enforced with an advisory lock the kernel drops when the holder dies:
the single writer of a store, the single trainer of a run directory."""

import fcntl
import os
from pathlib import Path

from fat.core.errors import FatError


class ExclusiveLock:
    """An exclusive `flock` on a small file; released on close or on any process death (SIGKILL
    included), so a killed holder never leaves a stale lock behind. `subject` and `doing` make
    the refusal: "<subject>: another process (pid N) is <doing>; ..."."""

    def __init__(self, lock_path: Path, subject: Path | str, doing: str):
        self.lock_path = Path(lock_path)
        self.subject = subject
        self.doing = doing
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise FatError(
                f"{self.subject}: another process (pid {holder}) is {self.doing}; "
                "wait for it to finish or stop it first"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> "ExclusiveLock":
        self.acquire()
        return self

    def __exit__(self, *_) -> None:
        self.release()
