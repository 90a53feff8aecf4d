"""Random reads of a Zarr frames array straight from the chunk files the store wrote.

zarr's read path costs a fraction of a millisecond of Python and asyncio per call, whatever
the size, which capped disk-backed training at a few thousand crops/s. The frames array is
the store's own layout (uncompressed, the `bytes` codec little-endian, flat `c.I.0` chunk
keys, one chunk of `chunk_rows` frames per file, always written whole): each chunk file is a
(chunk_rows, n_mels) array as it is in memory. So a crop of consecutive frames is one
`pread` from its chunk file into the batch buffer (two where it crosses a chunk), with the
kernel told about all of a batch's ranges first (POSIX_FADV_WILLNEED) so that reads from a
cold page cache overlap. Only layouts that are exactly this are read this way
(`from_zarr_metadata` returns None otherwise); anything else goes through zarr.

An open descriptor keeps the file it was opened on: a chunk a writer replaces later (zarr
renames a new file over the old one) still reads as it was, which holds the committed rows.
"""

import json
import os
import resource
from pathlib import Path
from typing import Any

import numpy as np

from fat.core.errors import FatError

# A chunk file is a store's own plain file: never a link followed out of the store, never a
# FIFO whose open would wait for a writer.
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)


def _raise_open_file_limit() -> int:
    """The soft limit on open files raised to the hard one (a split has thousands of chunk
    files); returns how many this reader may keep open."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = 65536 if hard == resource.RLIM_INFINITY else hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return max(64, soft // 2)  # leave half for everything else


def direct_layout(meta: dict[str, Any]) -> tuple[int, tuple[int, ...], str] | None:
    """(rows per chunk, row shape, dtype) of a Zarr array's metadata when its chunk files are
    raw little-endian rows named c.<i>.0 (uncompressed, whole rows per chunk); else None."""
    grid = meta.get("chunk_grid", {})
    keys = meta.get("chunk_key_encoding", {})
    shape = meta.get("shape", [])
    chunk = grid.get("configuration", {}).get("chunk_shape", [])
    knowable = (
        meta.get("codecs") == [{"name": "bytes", "configuration": {"endian": "little"}}]
        and grid.get("name") == "regular"
        and keys.get("name") == "default"
        and keys.get("configuration", {}).get("separator") == "."
        and len(shape) == len(chunk) >= 1
        and list(chunk[1:]) == list(shape[1:])  # whole rows in every chunk
        and np.dtype(meta.get("data_type", "")).byteorder in "=<|"
    )
    return (int(chunk[0]), tuple(chunk[1:]), meta["data_type"]) if knowable else None


class ChunkFiles:
    """A frames array as the chunk files the store wrote: read runs of consecutive rows, or
    rows at any indices."""

    def __init__(self, folder: Path, chunk_rows: int, row_shape: tuple[int, ...], dtype: str):
        self.folder = Path(folder)
        self.chunk_rows = chunk_rows
        self.row_shape = tuple(row_shape)
        self.dtype = np.dtype(dtype)
        self.row_bytes = int(np.prod(row_shape)) * self.dtype.itemsize
        self._fds: dict[int, int] = {}
        self._max_open = 0

    @classmethod
    def from_zarr_metadata(cls, folder: Path) -> "ChunkFiles | None":
        """The direct reader of the Zarr array in `folder`, None unless its layout is the one
        this reader knows (see the module docstring)."""
        try:
            layout = direct_layout(json.loads((Path(folder) / "zarr.json").read_text()))
        except (OSError, ValueError):
            return None
        return None if layout is None else cls(folder, *layout)

    def _fd(self, i: int) -> int:
        fd = self._fds.get(i)
        if fd is None:
            if not self._max_open:
                self._max_open = _raise_open_file_limit()
            if len(self._fds) >= self._max_open:
                self.close()
            path = self.folder / ("c." + ".".join([str(i)] + ["0"] * len(self.row_shape)))
            try:
                fd = os.open(path, _READ_FLAGS)
            except FileNotFoundError:
                raise FatError(
                    f"{path}: chunk file missing (the split was replaced, deleted or damaged)"
                ) from None
            except OSError as e:  # ELOOP: a link put there since the store was opened
                raise FatError(f"{path}: cannot read this chunk file ({e.strerror})") from None
            self._fds[i] = fd
        return fd

    def _runs(self, firsts: np.ndarray, length: int):
        """(crop, position in the crop, chunk, row in the chunk, rows) of every read that the
        runs [first, first + length) take, split where they cross a chunk."""
        for k, first in enumerate(firsts.tolist()):
            done = 0
            while done < length:
                chunk, row = divmod(first + done, self.chunk_rows)
                n = min(length - done, self.chunk_rows - row)
                yield k, done, chunk, row, n
                done += n

    def read_runs(
        self,
        firsts: np.ndarray,
        length: int,
        out: np.ndarray | None = None,
        slots: np.ndarray | None = None,
    ) -> np.ndarray:
        """Rows [first, first + length) for each first, as (len(firsts), length, *row_shape),
        or into `out[slots[k]]` for the k-th first (a batch buffer, with no copy between)."""
        if out is None:
            out = np.empty((len(firsts), length, *self.row_shape), self.dtype)
        self._fill(out, firsts, length, slots=slots)
        return out

    def read_into(self, first: int, out: np.ndarray, ahead: int = 16) -> None:
        """Rows [first, first + len(out)) into the C-contiguous `out`, chunk by chunk, each
        chunk asked for `ahead` chunks early: the sequential read that loads a split into RAM
        at the disk's rate (one chunk at a time waited on each file's small read-ahead)."""
        self._fill(out, np.array([first]), len(out), ahead)

    def _fill(
        self,
        out: np.ndarray,
        firsts: np.ndarray,
        length: int,
        ahead: int = 0,
        slots: np.ndarray | None = None,
    ) -> None:
        buffer = memoryview(out.reshape(-1)).cast("B")
        crop_bytes, rb = length * self.row_bytes, self.row_bytes
        where = range(len(firsts)) if slots is None else slots.tolist()
        pieces = list(self._runs(firsts, length))
        for _, _, chunk, row, n in pieces[:ahead]:
            os.posix_fadvise(self._fd(chunk), row * rb, n * rb, os.POSIX_FADV_WILLNEED)
        for j, (k, done, chunk, row, n) in enumerate(pieces):
            if ahead and j + ahead < len(pieces):
                _, _, later, later_row, later_n = pieces[j + ahead]
                os.posix_fadvise(
                    self._fd(later), later_row * rb, later_n * rb, os.POSIX_FADV_WILLNEED
                )
            start = where[k] * crop_bytes + done * rb
            got = os.preadv(self._fd(chunk), [buffer[start : start + n * rb]], row * rb)
            if got != n * rb:
                raise FatError(f"{self.folder}: chunk {chunk} cut short; damaged store")

    def prefetch_runs(self, firsts: np.ndarray, length: int) -> None:
        """Tell the kernel about every range the runs will read (POSIX_FADV_WILLNEED), all at
        once: reads from a cold page cache then overlap instead of waiting one by one."""
        rb = self.row_bytes
        for _, _, chunk, row, n in self._runs(firsts, length):
            os.posix_fadvise(self._fd(chunk), row * rb, n * rb, os.POSIX_FADV_WILLNEED)

    def gather(self, rows: np.ndarray) -> np.ndarray:
        """Rows at `rows` (any shape of row indices), in that shape plus the row shape: each
        distinct row read once (the path for clips shorter than the crop, which repeat)."""
        flat = np.asarray(rows, np.int64).ravel()
        unique, inverse = np.unique(flat, return_inverse=True)
        # Consecutive unique rows form runs; read each run whole.
        breaks = np.flatnonzero(np.diff(unique) != 1) + 1
        values = np.empty((len(unique), *self.row_shape), self.dtype)
        for lo, hi in zip(np.r_[0, breaks], np.r_[breaks, len(unique)], strict=True):
            values[lo:hi] = self.read_runs(unique[lo : lo + 1], hi - lo)[0]
        return values[inverse].reshape(*np.shape(rows), *self.row_shape)

    def drop_cache(self) -> None:
        """Drop these files' pages from the page cache (POSIX_FADV_DONTNEED; no root needed):
        the next reads come from the disk, as on a machine that never read them."""
        for path in self.folder.glob("c.*"):
            fd = os.open(path, _READ_FLAGS)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def __del__(self) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_fds": {}}  # descriptors are opened by whoever reads
