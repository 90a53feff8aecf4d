"""One holder at a time, enforced with an advisory lock the kernel drops when the holder dies:
the single writer of a store, the single trainer of a run directory. The lock is `filelock`'s
(flock on Unix, msvcrt on Windows), so importing a store works on every platform."""

import os
from pathlib import Path

from filelock import FileLock, Timeout

from fat.core.errors import FatError


class ExclusiveLock:
    """An exclusive lock on a small file; released on close or on any process death (SIGKILL
    included), so a killed holder never leaves a stale lock behind. The holder writes its pid
    into the file; `subject` and `doing` make the refusal: "<subject>: another process
    (pid N) is <doing>; ..."."""

    def __init__(self, lock_path: Path, subject: Path | str, doing: str):
        self.lock_path = Path(lock_path)
        self.subject = subject
        self.doing = doing
        # No soft (file-exists) fallback: such a lock would outlive a killed holder.
        self._lock = FileLock(self.lock_path, timeout=0, thread_local=False, fallback_to_soft=False)

    def acquire(self) -> None:
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            try:
                holder = self.lock_path.read_text(errors="replace").strip()[:64] or "unknown"
            except OSError:
                holder = "unknown"
            raise FatError(
                f"{self.subject}: another process (pid {holder}) is {self.doing}; "
                "wait for it to finish or stop it first"
            ) from None
        self.lock_path.write_text(str(os.getpid()))

    def release(self) -> None:
        if self._lock.is_locked:
            self._lock.release()

    def __enter__(self) -> "ExclusiveLock":
        self.acquire()
        return self

    def __exit__(self, *_) -> None:
        self.release()
