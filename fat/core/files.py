"""Files written whole or not at all, and durably: a temporary file beside the target, flushed
and fsynced, renamed over it, then the directory fsynced, so a kill at any point leaves either
the old file or the new one, and a power cut cannot keep the name while losing the data."""

import errno
import os
import re
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from fat.core.errors import FatError


def fsync_directory(path: Path) -> None:
    """Make a rename or a new file in `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_write(path: Path, mode: str = "w", **open_kw) -> Iterator[IO]:
    """`with atomic_write(p) as f: f.write(...)`: `p` changes only when the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A name of its own per writer: two processes writing one file (two `fat cv --out X`)
    # must not rename each other's temporary file away.
    tmp = path.with_name(f".{path.name}.{_WRITER}-{os.getpid()}.{secrets.token_hex(4)}.tmp")
    _remove_left_by_the_dead(path)
    with replace_when_written(tmp, path, mode, **open_kw) as f:
        yield f
    fsync_directory(path.parent)


@contextmanager
def replace_when_written(tmp: Path, path: Path, mode: str = "w", **open_kw) -> Iterator[IO]:
    """`tmp` opened for the block, made durable and renamed to `path` when it succeeds; removed
    when it fails (a full disk: the one-line `disk_full` error)."""
    try:
        with open(tmp, mode, **open_kw) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, OSError) and e.errno in DISK_FULL:
            raise disk_full(path, e) from None
        raise


DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def disk_full(path: Path, error: OSError) -> FatError:
    """The one line for a write the device had no room for: nothing of it was kept."""
    return FatError(
        f"{path}: the disk is full ({error.strerror}); nothing was written there: free space "
        "and run the command again (what was written before is intact)"
    )


# This host, as a temporary file's name can hold it: a writer on another host sharing the
# directory has pids of its own, which this host must not judge.
_WRITER = re.sub(r"[^A-Za-z0-9]", "-", socket.gethostname())[:40] or "host"


def _remove_left_by_the_dead(path: Path) -> None:
    """Temporary files of `path` whose writer on this host was killed (its pid is gone): each
    kill would otherwise leave one more behind."""
    for stale in path.parent.glob(f".{path.name}.{_WRITER}-*.tmp"):
        pid = stale.name[len(path.name) + len(_WRITER) + 3 :].split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            stale.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def append_durably(path: Path, text: str) -> None:
    """Append `text` and fsync: a row of a log is on disk once this returns. On a full disk,
    the file is cut back to its length before (no half row) and the error is one line."""
    data = text.encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        before = os.fstat(fd).st_size
        try:
            view = memoryview(data)
            while view:  # unbuffered: a failed write leaves nothing waiting to be flushed
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except OSError as e:
            if e.errno not in DISK_FULL:
                raise
            os.ftruncate(fd, before)
            raise disk_full(path, e) from None
    finally:
        os.close(fd)
