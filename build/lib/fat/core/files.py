"""Files written whole or not at all, and durably: a temporary file beside the target, flushed
and fsynced, renamed over it, then the directory fsynced, so a kill at any point leaves either
the old file or the new one, and a power cut cannot keep the name while losing the data."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


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
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, mode, **open_kw) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def append_durably(path: Path, text: str) -> None:
    """Append `text` and fsync: a row of a log is on disk once this returns."""
    with open(path, "a") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
