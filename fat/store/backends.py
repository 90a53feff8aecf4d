"""Storage backends: the few primitive operations the feature store needs, for Zarr v3 and HDF5.

Everything about clips, commits and verification lives in the modules around this one and is
written once; a backend only creates, renames and deletes splits (a group of growable arrays
plus a JSON meta record), hands out array handles that slice like numpy, makes every write so
far durable on `sync` (raising when it could not), and knows its own crash-safety mechanics:

- Zarr: every chunk and metadata file is replaced atomically (zarr's LocalStore writes a
  temporary file and renames it), so a reader or a killed writer only ever sees whole chunks.
- HDF5: appends run in SWMR mode, whose ordered metadata flushes keep the file consistent at
  every instant. A writer killed in SWMR mode leaves the "open for write" flag set in the
  superblock; the next writer (which holds the store lock, so no fat writer is alive) clears
  it the way `h5clear -s` does before reopening. h5py reports a failed write of cached data
  only when a dataset is flushed or closed, and ignores it when a dataset object is freed:
  so the backend keeps one handle per dataset and flushes each one on `sync`.
"""

import contextlib
import ctypes
import errno
import glob
import json
import os
import shutil
import struct
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np

from fat import __version__
from fat.core.errors import FatError, one_line
from fat.core.files import DISK_FULL
from fat.store.direct import ChunkFiles
from fat.store.layout import COMMIT_ARRAY, UNFINISHED_COPY, ArraySpec
from fat.store.safety import (
    array_from_metadata,
    check_hdf5_file,
    check_store_tree,
    check_zarr_array,
    chunk_prefix_rows,
    read_metadata_file,
)

try:
    import fcntl
except ImportError:  # Windows: no OFD locks; the lock on the path remains
    fcntl = None  # type: ignore[assignment]

STORE_FORMAT = "fat-feature-store"
# 2: the commit mark also holds the previous commit; splits have a generation id; an
# overwrite builds the new split under a temporary name. 3: splits name their data set and
# keep each clip's facts (the info array). Stores of formats 1 and 2 read as before.
STORE_FORMAT_VERSION = 3
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
SWMR_READ_ATTEMPTS = 20


def not_a_store(path: Path, why: str) -> FatError:
    return FatError(f"{path}: not a fat feature store ({why})")


def check_format(path: Path, attrs: Any) -> None:
    """FatError unless `attrs` (the store root's) mark a fat store this version can read."""
    if not hasattr(attrs, "get") or attrs.get("format") != STORE_FORMAT:
        raise not_a_store(path, "no fat store marker")
    try:
        version = int(attrs.get("format_version", 0))
    except (TypeError, ValueError, OverflowError):
        raise not_a_store(path, "its format_version is not a number") from None
    if version > STORE_FORMAT_VERSION:
        raise FatError(
            f"{path}: written by fat {attrs.get('tool_version', '?')} (store format {version}); "
            f"this is fat {__version__} (store format {STORE_FORMAT_VERSION}); upgrade fat"
        )


def _root_attributes() -> dict[str, Any]:
    return {
        "format": STORE_FORMAT,
        "format_version": STORE_FORMAT_VERSION,
        "tool_version": __version__,
    }


class Backend(ABC):
    """Primitive storage operations; array handles support `a[i:j]`, `a[i:j] = v`, `.shape`,
    `.chunks` and `.resize(shape)` (both zarr.Array and h5py.Dataset do)."""

    def __init__(self, path: Path, writable: bool):
        self.path = Path(path)
        self.writable = writable
        # What opening finished that a killed writer had left undone, one line each.
        self.recovered: list[str] = []

    @staticmethod
    @abstractmethod
    def lock_path_for(path: Path) -> Path:
        """Where the single-writer lock of the store at `path` (resolved) lives."""

    @staticmethod
    @abstractmethod
    def probe(path: Path) -> bool:
        """Before any side effect: whether a store exists at `path` (False: none yet, one may
        be created there); FatError when something else is there."""

    @abstractmethod
    def group_names(self) -> list[str]:
        """Every complete split group, including temporary ones (see `fat.store.store`)."""

    @abstractmethod
    def create_split(self, split: str, meta: dict[str, Any], arrays: dict[str, ArraySpec]) -> None:
        """Create all arrays with zero rows, in the order given: the commit mark comes last,
        so a split whose creation was interrupted is recognisably incomplete (and not listed)."""

    @abstractmethod
    def delete_split(self, split: str) -> None: ...

    @abstractmethod
    def rename_split(self, split: str, new_name: str) -> None:
        """Give `split` the name `new_name`, which must be free; atomic where the format allows."""

    @abstractmethod
    def meta(self, split: str) -> dict[str, Any]: ...

    @abstractmethod
    def array(self, split: str, name: str) -> Any: ...

    def direct_frames(self, split: str) -> ChunkFiles | None:
        """A reader of the split's frames that bypasses the format's library, where the
        layout allows one (`fat.store.direct`); None to read through the library."""
        return None

    def bulk_frames(self, split: str) -> Any:
        """A reader whose `read_into(first, out)` loads a split's frames faster than the
        format's library does (many chunks fetched at once from object storage); None."""
        return None

    def unfinished_copy(self) -> bool:
        """Whether `fat store copy` is still filling this store (`UNFINISHED_COPY`)."""
        return False

    def rows_on_disk(self, split: str, name: str) -> int:
        """How many leading rows of an array the storage really holds (past them a read
        returns fill values out of nothing): what a reader may allocate for it."""
        return int(self.array(split, name).shape[0])

    def sync(self) -> None:  # noqa: B027 - optional hook, most backends need nothing
        """Make every write so far visible to readers before the next one (commit ordering),
        raising OSError when a write failed."""

    @abstractmethod
    def refresh(self) -> None:
        """Drop cached array metadata so a reader sees a concurrent writer's appends."""

    @abstractmethod
    def disk_usage(self) -> int: ...

    def compact(self) -> None:  # noqa: B027 - only formats that leave holes need it
        """Give back the space of deleted splits, where the format does not reuse it."""

    @abstractmethod
    def close(self) -> None: ...


class ZarrBackend(Backend):
    def __init__(self, path: Path, writable: bool):
        import zarr

        super().__init__(path, writable)
        self._zarr = zarr
        exists = self.probe(self.path)
        if not exists and not writable:
            raise FatError(f"{self.path}: no such store")
        if not exists:
            self.path.mkdir(parents=True, exist_ok=True)
            zarr.create_group(self.path, attributes=_root_attributes())
        read_metadata_file(self.path / "zarr.json", str(self.path))  # bounded before zarr reads it
        try:
            self._root = zarr.open_group(self.path, mode="r+" if writable else "r")
        except Exception as e:  # zarr raises several types for unreadable metadata
            raise not_a_store(self.path, f"cannot open as Zarr: {e}") from None
        check_format(self.path, self._root.attrs)
        self._arrays: dict[tuple[str, str], Any] = {}
        self._separators: dict[tuple[str, str], str] = {}

    @staticmethod
    def lock_path_for(path: Path) -> Path:
        return path / "writer.lock"

    def unfinished_copy(self) -> bool:
        return (self.path / UNFINISHED_COPY).exists()

    @staticmethod
    def probe(path: Path) -> bool:
        if path.is_file():
            raise FatError(f"{path}: is a file, not a Zarr store (a Zarr store is a directory)")
        if not path.exists():
            return False
        if not path.is_dir():
            raise FatError(f"{path}: neither a directory nor a file; not a Zarr store")
        entries = {p.name for p in path.iterdir()}
        if entries <= {"writer.lock"}:
            return False
        if "zarr.json" not in entries:
            raise not_a_store(path, "a directory without zarr.json; choose another path")
        check_store_tree(path)  # before any lock or read: nothing in it may lead outside
        return True

    def group_names(self) -> list[str]:
        return sorted(
            p.name for p in self.path.iterdir() if (p / COMMIT_ARRAY / "zarr.json").is_file()
        )

    def create_split(self, split, meta, arrays):
        from zarr.codecs import ZstdCodec

        group = self._root.create_group(split, overwrite=True, attributes={"meta": meta})
        for name, spec in arrays.items():
            group.create_array(
                name,
                shape=(0, *spec.row_shape),
                chunks=(spec.chunk_rows, *spec.row_shape),
                dtype=spec.dtype,
                fill_value=0,
                compressors=[ZstdCodec(level=3)] if spec.compression == "zstd" else None,
                # Flat chunk files (c.0.0) rather than one directory per chunk (c/0/0): a
                # directory per 1024 frames made each chunk write a mkdir too, and a split of
                # thousands of directories is slow to list, copy and delete.
                chunk_key_encoding={"name": "default", "separator": "."},
            )

    def _forget(self, split: str) -> None:
        self._arrays = {k: v for k, v in self._arrays.items() if k[0] != split}

    def delete_split(self, split):
        self._forget(split)
        shutil.rmtree(self.path / split, ignore_errors=True)

    def rename_split(self, split, new_name):
        self._forget(split)
        os.rename(self.path / split, self.path / new_name)  # one directory rename: atomic

    def meta(self, split):
        # The group's zarr.json read as the file it is: zarr's own open costs a millisecond of
        # asyncio, and readers check a split's generation on every batch.
        where = f"{self.path}: split {split!r}"
        document = read_metadata_file(self.path / split / "zarr.json", where)
        try:
            return dict(document["attributes"]["meta"])
        except (ValueError, KeyError, TypeError) as e:
            raise FatError(f"{where} has no readable metadata ({e!r})") from None

    def direct_frames(self, split):
        return ChunkFiles.from_zarr_metadata(self.path / split / "frames")

    def array(self, split, name):
        key = (split, name)
        if key not in self._arrays:
            folder = self.path / split / name
            where = f"{self.path}: split {split!r}, array {name!r}"
            document = read_metadata_file(folder / "zarr.json", where)
            self._separators[key] = check_zarr_array(document, where, name == "frames")
            array = array_from_metadata(self._root.store, f"{split}/{name}", document)
            if self.writable:
                # By default zarr compares every chunk it writes with the fill value to skip
                # empty ones: a full extra pass over the data for chunks that are never empty.
                array = array.with_config({"write_empty_chunks": True})
            self._arrays[key] = array
        return self._arrays[key]

    def rows_on_disk(self, split, name):
        array = self.array(split, name)
        if not all(array.shape[1:]):
            return int(array.shape[0])  # rows of no values: nothing to allocate
        folder = self.path / split / name
        try:
            if self._separators[(split, name)] == "/":  # c/I/0: one folder per first index
                names = [f"c.{n}" for n in os.listdir(folder / "c")]
            else:
                names = os.listdir(folder)
        except FileNotFoundError:
            names = []
        return chunk_prefix_rows(names, int(array.chunks[0]), int(array.shape[0]))

    def refresh(self):
        self._arrays.clear()

    def disk_usage(self):
        return sum(f.stat().st_size for f in self.path.rglob("*") if f.is_file())

    def close(self):
        self._arrays.clear()


def _hdf5_library() -> ctypes.CDLL:
    """The HDF5 shared library h5py itself loaded (same handle, so ids are shared)."""
    import h5py

    libs = os.path.join(os.path.dirname(h5py.__file__), os.pardir, "h5py.libs", "libhdf5-*.so*")
    found = sorted(glob.glob(libs))
    return ctypes.CDLL(found[0] if found else "libhdf5.so")


def clear_hdf5_write_flag(path: Path) -> None:
    """What `h5clear -s --increment=0` does: clear the superblock's "open for write" flag a
    killed SWMR writer leaves, and move the end-of-allocation marker to the real end of file.
    Only call it while holding the store's writer lock (no live writer)."""
    from h5py import h5f, h5p

    lib = _hdf5_library()
    fapl = h5p.create(h5p.FILE_ACCESS)
    fapl.set_libver_bounds(h5f.LIBVER_LATEST, h5f.LIBVER_LATEST)
    true = ctypes.c_bool(True)
    for prop in (b"clear_status_flags", b"skip_eof_check"):
        if lib.H5Pset(ctypes.c_int64(fapl.id), prop, ctypes.byref(true)) < 0:
            raise FatError(f"{path}: cannot recover HDF5 file after a crash (H5Pset {prop!r})")
    fid = h5f.open(os.fsencode(path), h5f.ACC_RDWR, fapl=fapl)
    try:
        if lib.H5Fincrement_filesize(ctypes.c_int64(fid.id), ctypes.c_uint64(0)) < 0:
            raise FatError(f"{path}: cannot recover HDF5 file after a crash (EOA fix-up)")
    finally:
        fid.close()


_FLOCK = "hhqqi4x"  # struct flock on Linux: type, whence, start, len, pid (0 for OFD locks)


def _flock(kind: int) -> bytes:
    return struct.pack(_FLOCK, kind, os.SEEK_SET, 0, 0, 0)


def lock_inode(path: Path, subject: Path | str) -> int | None:
    """An open descriptor that holds an exclusive OFD lock on the file at `path`: the lock is on
    the file itself, so every path to it (a hard link, which the lock file's name cannot follow)
    meets it. HDF5's own locks are flock()s, which OFD locks do not touch. None where the
    platform has no OFD locks. FatError, with the file untouched, when another process holds it."""
    setlk = getattr(fcntl, "F_OFD_SETLK", None)
    if setlk is None:
        return None
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.fcntl(fd, setlk, _flock(fcntl.F_WRLCK))
    except OSError as e:
        os.close(fd)
        if e.errno not in (errno.EAGAIN, errno.EACCES):
            raise FatError(f"{subject}: cannot lock the store file ({one_line(e)})") from None
        raise FatError(
            f"{subject}: another process is writing this store (through another path to the "
            "same file, such as a hard link); wait for it to finish or stop it first"
        ) from None
    return fd


def inode_locked(path: Path) -> bool | None:
    """Whether a writer holds `lock_inode`'s lock on the file at `path` (None: cannot tell)."""
    getlk = getattr(fcntl, "F_OFD_GETLK", None)
    if getlk is None:
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        answer = fcntl.fcntl(fd, getlk, _flock(fcntl.F_WRLCK))
    except OSError:
        return None
    finally:
        os.close(fd)
    return struct.unpack(_FLOCK, answer)[0] != fcntl.F_UNLCK


class InterruptedWriter(FatError):
    """A store a killed writer left in a state only a writer can clear; opening it for writing
    (any writer, or `repair_store`) does."""


# Set in an HDF5 store's root while it is rewritten without its holes; left there when the disk
# was too full to finish, so that the next writer tries again.
HOLES_MARK = "holes_to_give_back"


def _disk_full(error: BaseException) -> bool:
    """Whether an OSError (or HDF5's RuntimeError, which carries the errno only in its text)
    says the device had no room."""
    if getattr(error, "errno", None) in DISK_FULL:
        return True
    text = str(error)
    return "No space left on device" in text or "Disk quota exceeded" in text


def compaction_file(path: Path) -> Path:
    """Where an HDF5 store is rewritten without its holes before it replaces the original."""
    return path.with_name(path.name + ".compact")


class HDF5Backend(Backend):
    def __init__(self, path: Path, writable: bool):
        import h5py

        super().__init__(path, writable)
        self._h5py = h5py
        self._datasets: dict[tuple[str, str], Any] = {}
        self._inode_lock: int | None = None
        self._file = None
        exists = self.probe(self.path)
        if not exists and not writable:
            raise FatError(f"{self.path}: no such store")
        if not exists:
            with h5py.File(self.path, "w", libver="latest") as f:
                f.attrs.update(_root_attributes())
        if writable:  # before anything opens the file: a refused writer leaves it untouched
            self._inode_lock = lock_inode(self.path, self.path)
        try:
            self._file = self._open()
            try:
                check_format(self.path, dict(self._file.attrs))
                check_hdf5_file(self._file, self.path)
            except FatError:
                raise
            except Exception as e:  # noqa: BLE001 - h5py raises KeyError, OSError... on damage
                raise not_a_store(self.path, f"unreadable HDF5, damaged? ({one_line(e)})") from None
            self._enter_swmr()
            if writable and os.path.lexists(compaction_file(self.path)):
                self.compact()  # a kill interrupted the last one: finish its work
                self.recovered.append(
                    "rewrote the file without its holes (a kill interrupted that)"
                )
            elif writable and self._file.attrs.get(HOLES_MARK, False):
                self.compact()  # the last one found the disk full
                self.recovered.append(
                    "rewrote the file without its holes (a full disk had stopped that)"
                )
        except BaseException:
            self.close()
            raise

    @staticmethod
    def probe(path: Path) -> bool:
        if not path.exists():
            return False
        if not path.is_file():
            raise FatError(f"{path}: not a file; an HDF5 store is one .h5 file")
        if not has_hdf5_signature(path):
            raise not_a_store(path, "not an HDF5 file")
        return True

    def _open(self):
        h5py = self._h5py
        try:
            if not self.writable:
                try:
                    return self._open_swmr_read()
                except OSError as e:
                    if "already open for" not in str(e):
                        raise
                    if inode_locked(self.path):  # a live writer outside SWMR mode right now
                        raise FatError(self._locked_message()) from None
                    raise self._interrupted() from None
            try:
                return h5py.File(self.path, "a", libver="latest")
            except OSError as e:
                if "already open for" not in str(e):
                    raise
                clear_hdf5_write_flag(self.path)  # a killed SWMR writer; we hold the lock
                self.recovered.append("cleared the 'open for writing' mark a killed writer left")
                return h5py.File(self.path, "a", libver="latest")
        except OSError as e:
            if "errno = 11" in str(e) or "unable to lock file" in str(e):
                raise FatError(self._locked_message()) from None
            raise not_a_store(self.path, f"cannot open as HDF5: {e}") from None

    def _open_swmr_read(self):
        """Read-only in SWMR mode, which works whether or not a writer is appending right now.
        A SWMR reader retries metadata whose checksum fails, taking it for a write in progress;
        HDF5's default of 100 retries with exponential back-off waits about an hour on a damaged
        file, 20 give up after about a second and still cover a writer's update."""
        from h5py import h5f, h5p

        fapl = h5p.create(h5p.FILE_ACCESS)
        fapl.set_libver_bounds(h5f.LIBVER_LATEST, h5f.LIBVER_LATEST)
        attempts = ctypes.c_uint(SWMR_READ_ATTEMPTS)
        if _hdf5_library().H5Pset_metadata_read_attempts(ctypes.c_int64(fapl.id), attempts) < 0:
            raise FatError(
                f"{self.path}: cannot set up an HDF5 reader (H5Pset_metadata_read_attempts)"
            )
        flags = h5f.ACC_RDONLY | h5f.ACC_SWMR_READ
        return self._h5py.File(h5f.open(os.fsencode(self.path), flags, fapl=fapl))

    def _interrupted(self) -> InterruptedWriter:
        """What a reader says of a file a writer left marked open outside SWMR mode, when no
        writer holds it any more: that writer was killed."""
        if os.path.lexists(compaction_file(self.path)):
            what = (
                "while it rewrote the file to give back the space of a replaced split (after "
                "an --overwrite; a copy of the whole file, outside SWMR mode)"
            )
            cost = "nothing committed is lost"
        else:
            what = "while it created, renamed or deleted a split (outside SWMR mode)"
            cost = "check it with `fat store verify` afterwards"
        return InterruptedWriter(
            f"{self.path}: a writer was killed {what}, and the file is still marked open for "
            f"writing; run the writer again or `fat store repair {self.path}` to clear the mark "
            f"({cost})"
        )

    def _locked_message(self) -> str:
        if self.writable:
            return (
                f"{self.path}: open by another process for reading; close it (a notebook, "
                "`fat store`, a disk-backed training run) or use a Zarr store for concurrent reads"
            )
        return (
            f"{self.path}: another process is creating or replacing a split in it right now; "
            "try again when it has finished"
        )

    @staticmethod
    def lock_path_for(path: Path) -> Path:
        return path.with_name(path.name + ".lock")

    def _enter_swmr(self) -> None:
        # A writer spends all its time in SWMR mode, where readers may open the file and a
        # SIGKILL leaves it consistent; only creating/deleting a split briefly leaves it.
        if self.writable and not self._file.swmr_mode:
            self._file.flush()
            self._file.swmr_mode = True

    def _reopen_for_structure(self) -> None:
        # SWMR mode forbids creating or deleting objects and cannot be switched off in place.
        self.sync()
        self._datasets.clear()
        if self._file.swmr_mode:
            self._file.close()
            self._file = self._open()

    def group_names(self):
        groups = self._file.items()
        Group = self._h5py.Group
        return sorted(n for n, g in groups if isinstance(g, Group) and COMMIT_ARRAY in g)

    def create_split(self, split, meta, arrays):
        self._reopen_for_structure()
        if split in self._file:
            del self._file[split]
        group = self._file.create_group(split)
        group.attrs["meta"] = json.dumps(meta)
        for name, spec in arrays.items():
            if spec.compression != "none":
                raise FatError(
                    f"{self.path}: HDF5 stores are uncompressed (got {spec.compression})"
                )
            group.create_dataset(
                name,
                shape=(0, *spec.row_shape),
                maxshape=(None, *spec.row_shape),
                chunks=(spec.chunk_rows, *spec.row_shape),
                dtype=np.dtype(spec.dtype),
                fillvalue=0,
            )
        self._enter_swmr()

    def delete_split(self, split):
        self._reopen_for_structure()
        if split in self._file:
            del self._file[split]
        self._enter_swmr()

    def rename_split(self, split, new_name):
        self._reopen_for_structure()
        self._file.move(split, new_name)
        self._enter_swmr()

    def rows_on_disk(self, split, name):
        # Uncompressed chunks only (filters are refused on open): N rows take N rows' bytes of
        # the file, so no more can be real than the file holds (SWMR keeps its size current).
        array = self.array(split, name)
        row_bytes = int(np.prod(array.shape[1:])) * array.dtype.itemsize
        if row_bytes == 0:
            return int(array.shape[0])
        return min(int(array.shape[0]), self.path.stat().st_size // row_bytes)

    def meta(self, split):
        return json.loads(self._file[split].attrs["meta"])

    def array(self, split, name):
        key = (split, name)
        if key not in self._datasets:
            self._datasets[key] = self._file[split][name]
        return self._datasets[key]

    def sync(self):
        if self.writable:
            for dataset in self._datasets.values():
                dataset.flush()  # raises where a cached chunk could not be written
            self._file.flush()

    def refresh(self):
        Group, Dataset = self._h5py.Group, self._h5py.Dataset
        for group in self._file.values():
            for dataset in group.values() if isinstance(group, Group) else ():
                if isinstance(dataset, Dataset):
                    dataset.refresh()

    def disk_usage(self):
        return self.path.stat().st_size

    def compact(self):
        """Rewrite the file without the holes deleted splits left (HDF5 does not reuse freed
        space across opens): every group copied into a new file, which then replaces this one.
        A full disk stops it with one line and nothing left behind; the file keeps its holes
        and a mark that makes the next writer (or `fat store repair`) try again."""
        self._reopen_for_structure()
        tmp = compaction_file(self.path)
        tmp.unlink(missing_ok=True)  # a killed compaction's, or anything there: never followed
        try:
            self._file.attrs[HOLES_MARK] = True
            self._file.flush()
            with self._h5py.File(tmp, "x", libver="latest") as out:
                out.attrs.update({k: v for k, v in self._file.attrs.items() if k != HOLES_MARK})
                for name in self._file:
                    self._file.copy(self._file[name], out, name=name)
                out.flush()
                os.fsync(out.id.get_vfd_handle())
        except (OSError, RuntimeError) as e:
            tmp.unlink(missing_ok=True)
            with contextlib.suppress(OSError, RuntimeError):
                self._enter_swmr()
            if not _disk_full(e):
                raise
            raise FatError(
                f"{self.path}: the disk is full (No space left on device) while rewriting the "
                "file to give back the space of a replaced split, which takes a copy of the "
                f"file's size ({self.path.stat().st_size / 2**20:.1f} MiB); every split is "
                f"complete and nothing was lost: free space and run `fat store repair "
                f"{self.path}` (or any writer) to give the space back"
            ) from None
        lock = lock_inode(tmp, self.path)  # the file that takes the store's name is locked first
        self._file.close()
        os.replace(tmp, self.path)
        if self._inode_lock is not None:
            os.close(self._inode_lock)
        self._inode_lock = lock
        self._file = self._open()
        self._enter_swmr()

    def close(self):
        if self._file:
            self._datasets.clear()
            # Closing fails only after a write already failed (it flushes what could not be
            # written): that failure was reported, and the last commit is intact.
            with contextlib.suppress(OSError, RuntimeError):
                self._file.close()
        if self._inode_lock is not None:
            os.close(self._inode_lock)
            self._inode_lock = None


BACKENDS: dict[str, type[Backend]] = {"zarr": ZarrBackend, "hdf5": HDF5Backend}
SUFFIXES = {".zarr": "zarr", ".h5": "hdf5", ".hdf5": "hdf5"}


class NewStoreFormatUnknown(FatError):
    """Nothing at a path to create a store at, and its name says no format: the caller may add
    the ways it has of choosing one (`fat featurize --format`)."""


def has_hdf5_signature(path: Path) -> bool:
    """Whether `path` holds the HDF5 signature where HDF5 looks for it: at byte 0, or after a
    user block at 512, 1024, 2048, ... Read directly rather than with `h5py.is_hdf5`, which
    opens the file through HDF5 (and its file locks) where a few bytes tell."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            offset = 0
            while offset + len(HDF5_SIGNATURE) <= size:
                f.seek(offset)
                if f.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE:
                    return True
                offset = offset * 2 if offset else 512
    except OSError as e:
        raise FatError(f"{path}: cannot read it ({one_line(e)})") from None
    return False


def detect_format(path: Path) -> str | None:
    """The format of what is at `path`, from its contents: a directory with a zarr.json at its
    root is Zarr, a file with the HDF5 signature HDF5; None for anything else or nothing."""
    path = Path(path)
    if path.is_dir():
        return "zarr" if (path / "zarr.json").is_file() else None
    if path.is_file() and has_hdf5_signature(path):
        return "hdf5"
    return None


def format_for(path: Path | str, format: str | None = None, mode: str = "r") -> str:
    """The backend name for the store at `path`: the explicit `format`, else by suffix (.zarr,
    .h5, .hdf5), else from what is there (`detect_format`). A new store (`mode` "a", nothing
    there yet) needs a suffix or `format`: an empty name says nothing about what to create."""
    if format is not None:
        if format not in BACKENDS:
            raise FatError(f"unknown store format {format!r}; choose one of {sorted(BACKENDS)}")
        return format
    path = Path(path)
    by_suffix = SUFFIXES.get(path.suffix.lower())
    if by_suffix is not None:
        return by_suffix
    found = detect_format(path)
    if found is not None:
        return found
    if _nothing_there(path):
        if mode == "r":
            raise FatError(f"{path}: no such store")
        raise NewStoreFormatUnknown(
            f"{path}: a new store's format follows its suffix, and this name has none of "
            f".zarr, .h5; name it {path.name}.zarr (Zarr) or {path.name}.h5 (HDF5)"
        )
    if path.is_dir():
        raise not_a_store(path, "a directory without zarr.json, so not a Zarr store")
    raise not_a_store(path, "a file without the HDF5 signature, so not an HDF5 store")


def _nothing_there(path: Path) -> bool:
    """No file, or a directory with nothing in it but a writer lock (what Zarr creates into)."""
    if path.is_dir():
        return {p.name for p in path.iterdir()} <= {"writer.lock"}
    return not path.exists()
