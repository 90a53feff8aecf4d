"""Stores on object storage (s3://, gs://, any fsspec URL): Zarr read through zarr's fsspec
store, read-only, with an optional size-bounded local cache of frame chunks.

Where and as whom to connect comes from the standard places of the filesystem's library
(for S3: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_ENDPOINT_URL or ~/.aws, and fsspec's
FSSPEC_S3_* variables), never from fat's own files. Writing goes through `fat store copy`.
"""

import asyncio
import functools
import hashlib
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISREG
from typing import Any

import numpy as np

from fat.core.errors import FatError, one_line
from fat.store.backends import Backend, check_format, not_a_store
from fat.store.direct import direct_layout
from fat.store.layout import COMMIT_ARRAY, MAX_METADATA_BYTES, UNFINISHED_COPY
from fat.store.safety import (
    array_from_metadata,
    check_zarr_array,
    chunk_prefix_rows,
    parse_metadata,
)

URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# Packages that provide a protocol, named in the error when one is missing.
PROTOCOL_PACKAGES = {"s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs"}
# Chunk GETs zarr keeps in flight (its default is 10): a round trip to a real object store
# takes tens of milliseconds. On the local test server it changed nothing (BENCHMARKS.md).
REMOTE_CONCURRENCY = 64
BULK_CHUNKS = 64  # chunk objects fetched at once when a split is loaded into RAM


def is_url(location: Any) -> bool:
    """Whether `location` names a store by URL (s3://...) rather than a local path."""
    return (
        isinstance(location, str)
        and bool(URL.match(location))
        and not location.startswith("file://")
    )


def store_location(value: str | Path) -> str | Path:
    """A command-line store argument: URLs stay strings, anything else is a local path."""
    if isinstance(value, str) and value.startswith("file://"):
        return Path(value.removeprefix("file://"))
    return value if is_url(value) else Path(value)


def remote_error(url: str, error: BaseException) -> FatError:
    """One line saying why `url` could not be read, for the errors object storage raises."""
    name = type(error).__name__
    if isinstance(error, FileNotFoundError):
        return FatError(f"{url}: no such store (nothing at that URL)")
    if isinstance(error, PermissionError) or "AccessDenied" in str(error):
        return FatError(f"{url}: access denied ({one_line(error)})")
    if "NoCredentials" in name or "Unable to locate credentials" in str(error):
        return FatError(
            f"{url}: no credentials; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            "(or the filesystem's own options)"
        )
    if "Connect" in name or "connect" in str(error).lower():
        return FatError(
            f"{url}: cannot reach the object store ({one_line(error)}); check AWS_ENDPOINT_URL "
            "or FSSPEC_S3_ENDPOINT_URL"
        )
    return FatError(f"{url}: cannot read from object storage ({name}: {one_line(error)})")


def filesystem(url: str) -> tuple[Any, str]:
    """(fsspec filesystem, path inside it) of a store URL; FatError when its protocol's package
    is not installed or the URL is not one fsspec knows."""
    import fsspec

    protocol = url.split("://", 1)[0].lower()
    try:
        return fsspec.core.url_to_fs(url)
    except ImportError:
        package = PROTOCOL_PACKAGES.get(protocol, f"the fsspec package for {protocol}://")
        raise FatError(
            f"{url}: reading {protocol}:// stores needs {package} "
            "(pip install 'fat-audio[s3]' for S3)"
        ) from None
    except ValueError as e:
        raise FatError(f"{url}: not a URL fsspec can open ({one_line(e)})") from None


@dataclass(frozen=True)
class ChunkCacheSpec:
    """A local cache of the frame chunks read from object storage: `folder` holds them, at
    most about `max_bytes`; the least recently used go first."""

    folder: str
    max_bytes: int


@functools.cache
def _chunk_cache_class() -> type:
    from zarr.storage import WrapperStore

    class ChunkCache(WrapperStore):
        """Serves the keys `cacheable` accepts from files under `folder`, each fetched from the
        wrapped store once; written by rename, so processes sharing the folder see whole files."""

        def __init__(self, store, root: Path, folder: Path, max_bytes: int, cacheable):
            super().__init__(store)
            self._root = root  # the whole cache, which `max_bytes` bounds
            self._folder = folder  # this split's part of it
            self._max_bytes = max_bytes
            self._cacheable = cacheable
            self._bytes: int | None = None  # this process's running estimate of the total

        async def get(self, key, prototype, byte_range=None):
            if byte_range is not None or not self._cacheable(key):
                return await self._store.get(key, prototype, byte_range)
            path = self._folder / key
            try:
                data = path.read_bytes()
                os.utime(path)  # the access time of least-recently-used eviction
                return prototype.buffer.from_bytes(data)
            except FileNotFoundError:
                pass
            buffer = await self._store.get(key, prototype)
            if buffer is not None:
                await asyncio.to_thread(self._keep, path, buffer.to_bytes())
            return buffer

        def _keep(self, path: Path, data: bytes) -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            # One name per thread: loader threads and processes may fetch the same chunk.
            partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.partial")
            partial.write_bytes(data)
            os.replace(partial, path)
            if self._bytes is None or self._bytes + len(data) > self._max_bytes * 0.9:
                # Near the bound, count what is there: other processes and threads write to it
                # too, and an estimate of this one's writes alone let the cache outgrow it.
                self._bytes = cache_size(self._root)
            else:
                self._bytes += len(data)
            if self._bytes > self._max_bytes:
                self._bytes = evict(self._root, int(self._max_bytes * 0.9))

    return ChunkCache


def _cached_files(folder: Path) -> list[tuple[float, int, Path]]:
    """(modified, size, path) of every file under `folder`; a file another thread or process
    evicts while this one lists the folder is left out, not an error."""
    files = []
    for f in folder.rglob("*"):
        try:
            stat = f.stat()
        except FileNotFoundError:
            continue
        if S_ISREG(stat.st_mode):
            files.append((stat.st_mtime, stat.st_size, f))
    return files


def cache_size(folder: Path) -> int:
    return sum(size for _, size, _ in _cached_files(folder))


def evict(folder: Path, keep_bytes: int) -> int:
    """Delete the least recently used files under `folder` until at most `keep_bytes` remain
    (over every process sharing it); returns what remains."""
    files = _cached_files(folder)
    total = sum(size for _, size, _ in files)
    for _, size, f in sorted(files, key=lambda t: t[0]):
        if total <= keep_bytes:
            break
        f.unlink(missing_ok=True)
        total -= size
    return total


class RemoteChunks:
    """A remote frames array in the raw layout `direct_layout` knows, read as its chunk objects:
    loading a split fetches them many at a time, straight into the output array."""

    def __init__(self, call, fs, folder: str, layout: tuple[int, tuple[int, ...], str]):
        self._call, self._fs, self._folder = call, fs, folder
        self.chunk_rows, row_shape, dtype = layout
        self.dtype = np.dtype(dtype)
        self.row_size = int(np.prod(row_shape))

    def read_into(self, first: int, out: np.ndarray) -> None:
        """Rows [first, first + len(out)) into `out`, BULK_CHUNKS chunk GETs in flight."""
        rows = self.chunk_rows
        wanted = range(first // rows, (first + len(out) - 1) // rows + 1) if len(out) else []
        flat = out.reshape(len(out), self.row_size)
        for lo in range(0, len(wanted), BULK_CHUNKS):
            batch = list(wanted[lo : lo + BULK_CHUNKS])
            paths = [f"{self._folder}/c.{i}.0" for i in batch]
            data = self._call(lambda paths=paths: self._fs.cat(paths, on_error="raise"))
            for i, path in zip(batch, paths, strict=True):
                chunk = np.frombuffer(data[path], self.dtype).reshape(-1, self.row_size)
                a, b = max(i * rows, first), min((i + 1) * rows, first + len(out))
                flat[a - first : b - first] = chunk[a - i * rows : b - i * rows]


def _read_only(url: Any) -> FatError:
    return FatError(
        f"{url}: stores on object storage are read-only to fat; write a local store and "
        "`fat store copy` it there"
    )


def check_writable_location(location: Any) -> None:
    """FatError (before any path is made of it) when `location` is a store on object storage."""
    if is_url(location):
        raise _read_only(location)


class RemoteZarrBackend(Backend):
    """A Zarr store at a URL, read-only. `chunk_cache`: frame chunks that can no longer change
    (full chunks below the split's commit) are kept on local disk once read."""

    def __init__(self, path: str, writable: bool, chunk_cache: ChunkCacheSpec | None = None):
        if writable:
            raise _read_only(path)
        self.path = path  # type: ignore[assignment] - a URL, kept as the string it is
        self.writable = False
        self.recovered: list[str] = []
        self._url = path.rstrip("/")
        self._fs, self._root = filesystem(self._url)
        self._chunk_cache = chunk_cache
        import zarr
        from zarr.storage import FsspecStore

        self._zarr = zarr
        try:
            raw = self._fs.cat_file(f"{self._root}/zarr.json", start=0, end=MAX_METADATA_BYTES + 1)
            document = parse_metadata(raw, str(path))
            self._store = FsspecStore.from_url(self._url, read_only=True)
        except FatError:
            raise
        except Exception as e:  # noqa: BLE001 - object stores fail in library-specific ways
            raise remote_error(self._url, e) from None
        if not isinstance(document, dict) or document.get("node_type") != "group":
            raise not_a_store(path, "its zarr.json is not a Zarr group")
        check_format(path, document.get("attributes", {}))  # type: ignore[arg-type]
        self._arrays: dict[tuple[str, str], Any] = {}
        self._listings: dict[str, dict[str, list[str]]] = {}
        zarr.config.set({"async.concurrency": REMOTE_CONCURRENCY})

    @staticmethod
    def lock_path_for(path: Path) -> Path:
        raise _read_only(path)

    @staticmethod
    def probe(path: Path) -> bool:
        raise _read_only(path)

    def create_split(self, split, meta, arrays):
        raise _read_only(self.path)

    def delete_split(self, split):
        raise _read_only(self.path)

    def rename_split(self, split, new_name):
        raise _read_only(self.path)

    def _call(self, what: Callable[[], Any]) -> Any:
        try:
            return what()
        except FatError:
            raise
        except Exception as e:  # noqa: BLE001
            raise remote_error(self._url, e) from None

    def unfinished_copy(self) -> bool:
        return bool(self._call(lambda: self._fs.exists(f"{self._root}/{UNFINISHED_COPY}")))

    def group_names(self) -> list[str]:
        def names() -> list[str]:
            self._fs.invalidate_cache(self._root)
            entries = self._fs.ls(self._root, detail=True)
            folders = [
                e["name"].rstrip("/").rsplit("/", 1)[-1]
                for e in entries
                if e["type"] == "directory"
            ]
            return sorted(
                f for f in folders if self._fs.exists(f"{self._root}/{f}/{COMMIT_ARRAY}/zarr.json")
            )

        return self._call(names)

    def _metadata(self, key: str, where: str) -> Any:
        """The JSON object at `key` (under the store), read no further than
        `MAX_METADATA_BYTES`."""
        path = f"{self._root}/{key}"
        raw = self._call(lambda: self._fs.cat_file(path, start=0, end=MAX_METADATA_BYTES + 1))
        return parse_metadata(raw, where)

    def meta(self, split):
        where = f"{self.path}: split {split!r}"
        document = self._metadata(f"{split}/zarr.json", where)
        try:
            return dict(document["attributes"]["meta"])
        except (ValueError, KeyError, TypeError) as e:
            raise FatError(f"{where} has no readable metadata ({e!r})") from None

    def bulk_frames(self, split):
        document = self._metadata(f"{split}/frames/zarr.json", f"{self.path}: split {split!r}")
        layout = direct_layout(document)
        folder = self._frames(split).rsplit("/", 1)[0]
        return None if layout is None else RemoteChunks(self._call, self._fs, folder, layout)

    def _frames(self, split: str) -> str:
        return f"{self._root}/{split}/frames/zarr.json"

    def array(self, split, name):
        key = (split, name)
        if key not in self._arrays:
            where = f"{self.path}: split {split!r}, array {name!r}"
            document = self._metadata(f"{split}/{name}/zarr.json", where)
            check_zarr_array(document, where, name == "frames")
            store = self._store
            if name == "frames" and self._chunk_cache is not None:
                store = self._cached(split)
            path = f"{split}/{name}"
            self._arrays[key] = self._call(lambda: array_from_metadata(store, path, document))
        return self._arrays[key]

    def _cached(self, split: str) -> Any:
        """The store wrapped in the chunk cache for `split`'s frames: a folder per store URL and
        split generation (a replaced split never reads the old one's chunks)."""
        spec = self._chunk_cache
        assert spec is not None
        meta = self.meta(split)
        mark = self.array(split, COMMIT_ARRAY)[:2]
        committed = int(mark[1]) if len(mark) == 2 else 0  # a fresh split has no mark yet
        chunk_rows = int(meta.get("frames_chunk") or 0)
        prefix = f"{split}/frames/c."

        def cacheable(key: str) -> bool:  # a full chunk below the commit never changes
            if not key.startswith(prefix) or not chunk_rows:
                return False
            first = key[len(prefix) :].split(".", 1)[0]
            return first.isdigit() and (int(first) + 1) * chunk_rows <= committed

        url_hash = hashlib.sha1(self._url.encode()).hexdigest()[:16]
        folder = Path(spec.folder) / url_hash / str(meta.get("generation") or "0")
        return _chunk_cache_class()(
            self._store, Path(spec.folder), folder, spec.max_bytes, cacheable
        )

    def rows_on_disk(self, split, name):
        array = self.array(split, name)
        if not all(array.shape[1:]):
            return int(array.shape[0])
        found = self._chunk_names(split).get(name, [])
        return chunk_prefix_rows(found, int(array.chunks[0]), int(array.shape[0]))

    def _chunk_names(self, split: str) -> dict[str, list[str]]:
        """{array: its chunk names as c.I.J} from one listing of the whole split (a request
        per thousand objects, not a listing per array), kept until `refresh`."""
        if split not in self._listings:
            base = f"{self._root}/{split}"

            def keys() -> list[str]:
                self._fs.invalidate_cache(base)
                return self._fs.find(base, detail=False)

            try:
                listed = self._call(keys)
            except FatError:
                listed = []  # nothing written yet
            names: dict[str, list[str]] = {}
            for key in listed:
                parts = key[len(base) + 1 :].split("/")  # ARRAY/c.I.J, or ARRAY/c/I/J
                if len(parts) >= 2 and parts[1].split(".")[0] == "c":
                    names.setdefault(parts[0], []).append(".".join(parts[1:]))
            self._listings[split] = names
        return self._listings[split]

    def refresh(self):
        self._arrays.clear()
        self._listings.clear()
        self._fs.invalidate_cache()

    def disk_usage(self):
        return int(self._call(lambda: self._fs.du(self._root)))

    def close(self):
        self._arrays.clear()
