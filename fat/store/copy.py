"""`copy_store`: a Zarr store copied file by file between local disk and object storage (either
way), every clip checked against its checksum at the destination, resumable.

The destination holds a marker (`UNFINISHED_COPY`) from the first file written until every
split has arrived and verified, and `open_store` refuses a store that has one, so a copy that
dies half-way is never taken for a whole store. Running the copy again continues it: files
already there with the source's size are kept (a file lands whole or not at all: a rename on
local disk, a single PUT on object storage), and the final verification re-reads every clip.
A split whose commit moved on in the source since the copy began is copied again from scratch.
Only the files the store's format names are copied (the root's and each split's metadata, each
array's metadata and the chunk files inside its chunk grid): a stray file in a store someone
else made stays behind, and a store holding a link is refused when it is opened.
"""

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fat.core.errors import FatError
from fat.core.files import replace_when_written
from fat.core.ids import check_clip_id
from fat.core.progress import progress_bar
from fat.store.backends import ZarrBackend
from fat.store.layout import COMMIT_ARRAY, UNFINISHED_COPY, SplitMeta
from fat.store.reader import Split
from fat.store.remote import RemoteZarrBackend, filesystem, is_url, remote_error
from fat.store.safety import check_zarr_array, parse_metadata
from fat.store.store import open_store
from fat.store.verify import verify_split

BATCH_BYTES = 64 << 20  # bytes fetched (concurrently) and written per batch
BATCH_FILES = 256


@dataclass
class CopySummary:
    destination: str
    copied: dict[str, int] = field(default_factory=dict)  # per split: files copied now
    kept: dict[str, int] = field(default_factory=dict)  # per split: files already there
    bytes_copied: int = 0
    already_whole: bool = False  # an earlier copy finished: nothing to do

    def lines(self) -> list[str]:
        if self.already_whole:
            return [f"{self.destination}: already a whole copy; nothing to do"]
        return [
            f"{name}: {self.copied[name]} files copied, {self.kept[name]} already there, "
            "every clip verified"
            for name in self.copied
        ] + [f"copied {self.bytes_copied / 2**20:.1f} MiB to {self.destination}"]


class Location:
    """One end of a copy: an fsspec filesystem and the store's root path in it."""

    def __init__(self, where: str | Path):
        self.remote = is_url(where)
        if self.remote:
            self.name = str(where).rstrip("/")
            self.fs, self.root = filesystem(self.name)
        else:
            import fsspec

            # Absolute: a copy rerun from another folder is still the same copy.
            self.name = str(Path(where).absolute())
            self.fs, self.root = fsspec.filesystem("file"), self.name

    def call(self, what, *args, **kw):
        try:
            return what(*args, **kw)
        except FatError:
            raise
        except Exception as e:  # noqa: BLE001 - object stores fail in library-specific ways
            raise remote_error(self.name, e) from None

    def sizes(self, prefix: str) -> dict[str, int]:
        """Every file under `prefix` (relative keys) with its size; {} when there is none."""
        base = f"{self.root}/{prefix}".rstrip("/")
        if not self.call(self.fs.exists, base):
            return {}
        found = self.call(self.fs.find, base, detail=True)
        return {k[len(self.root) + 1 :]: int(v["size"]) for k, v in found.items()}

    def read(self, keys: list[str]) -> dict[str, bytes]:
        paths = [f"{self.root}/{k}" for k in keys]
        data = self.call(self.fs.cat, paths, on_error="raise")
        return {k: data[p] for k, p in zip(keys, paths, strict=True)}

    def write(self, files: dict[str, bytes]) -> None:
        if self.remote:  # each PUT lands whole or not at all
            self.call(self.fs.pipe, {f"{self.root}/{k}": v for k, v in files.items()})
            return
        for key, data in files.items():
            path = Path(self.root) / key
            path.parent.mkdir(parents=True, exist_ok=True)
            # No directory fsync per chunk file: the final verification re-reads them all.
            with replace_when_written(path.with_name(f".{path.name}.partial"), path, "wb") as f:
                f.write(data)

    def delete(self, prefix: str) -> None:
        base = f"{self.root}/{prefix}"
        if self.call(self.fs.exists, base):
            self.call(self.fs.rm, base, recursive=True)

    def read_json(self, key: str) -> dict[str, Any] | None:
        if not self.call(self.fs.exists, f"{self.root}/{key}"):
            return None
        return json.loads(self.read([key])[key])


def _state(split: Split) -> dict[str, Any]:
    return {"generation": split.meta.generation, "n_clips": split.n_clips, "frames": split.n_frames}


def _batches(keys: list[str], sizes: dict[str, int]) -> Iterator[list[str]]:
    batch: list[str] = []
    size = 0
    for key in keys:
        if batch and (size + sizes[key] > BATCH_BYTES or len(batch) >= BATCH_FILES):
            yield batch
            batch, size = [], 0
        batch.append(key)
        size += sizes[key]
    if batch:
        yield batch


def copy_store(source: str | Path, destination: str | Path, progress: bool = True) -> CopySummary:
    """Copy the Zarr store `source` to `destination` (a new path or URL, or the destination
    of an unfinished copy of the same store, which is continued)."""
    src, dst = Location(source), Location(destination)
    if src.name == dst.name:
        raise FatError(f"{destination}: the destination cannot be the source")
    with open_store(source) as store:
        if store.format != "zarr":
            raise FatError(f"{source}: store copy copies Zarr stores; this one is {store.format}")
        splits = {name: store.split(name) for name in store.splits()}
        state = {"source": src.name, "splits": {n: _state(s) for n, s in splits.items()}}
    marker = dst.read_json(UNFINISHED_COPY)
    if marker is None and dst.read_json("zarr.json") is not None and _same(destination, state):
        return CopySummary(dst.name, already_whole=True)
    if marker is None:
        if dst.sizes(""):
            raise FatError(
                f"{destination}: not empty and not an unfinished copy; choose a new destination"
            )
        dst.write({UNFINISHED_COPY: json.dumps(state).encode()})
        marker = state
    elif not isinstance(marker, dict) or marker.get("source") != src.name:
        raise FatError(f"{destination}: holds an unfinished copy of another store, not of {source}")
    before = marker.get("splits") if isinstance(marker.get("splits"), dict) else {}
    for name in set(before) | set(splits):
        if check_clip_id(name) is None and before.get(name) != state["splits"].get(name):
            dst.delete(name)  # changed or deleted in the source since the copy began
    dst.write({UNFINISHED_COPY: json.dumps(state).encode()})
    dst.write(src.read(["zarr.json"]))
    summary = CopySummary(dst.name)
    for name in splits:
        copied, kept, nbytes = _copy_split(src, dst, name, splits[name].meta, progress)
        summary.copied[name], summary.kept[name] = copied, kept
        summary.bytes_copied += nbytes
        _verify_arrived(dst, name, state["splits"][name], progress)
    dst.call(dst.fs.rm, f"{dst.root}/{UNFINISHED_COPY}")  # the store is whole from here on
    return summary


def _same(destination: str | Path, state: dict[str, Any]) -> bool:
    """Whether the store at `destination` holds exactly the splits `state` describes."""
    try:
        with open_store(destination) as store:
            have = {name: _state(store.split(name)) for name in store.splits()}
    except FatError:
        return False
    return have == state["splits"]


def _store_files(src: Location, name: str, meta: SplitMeta) -> dict[str, int]:
    """The files of split `name` that the store's format names, with their sizes: the split's
    metadata, and of each array of its layout the metadata and the chunk files inside the
    array's chunk grid. Anything else in the folder is not the store's, and is not copied."""
    sizes = src.sizes(name)
    grids: dict[str, tuple[str, list[int]]] = {}
    for array in meta.array_specs():
        key = f"{name}/{array}/zarr.json"
        if key not in sizes:
            continue
        where = f"{src.name}: split {name!r}, array {array!r}"
        document = parse_metadata(src.read([key])[key], where)
        separator = check_zarr_array(document, where, array == "frames")
        shape = document["shape"]
        chunk = document["chunk_grid"]["configuration"]["chunk_shape"]
        grids[array] = (separator, [math.ceil(n / c) for n, c in zip(shape, chunk, strict=True)])
    kept = {}
    for key, size in sizes.items():
        parts = key.split("/", 2)
        if key == f"{name}/zarr.json":
            kept[key] = size
        elif len(parts) == 3 and parts[1] in grids:
            rest = parts[2]
            if rest == "zarr.json" or _in_grid(rest, *grids[parts[1]]):
                kept[key] = size
    return kept


def _in_grid(key: str, separator: str, counts: list[int]) -> bool:
    """Whether `key` (inside an array's folder) names one of the array's chunks."""
    head, _, rest = key.partition(separator)
    coords = rest.split(separator)
    return (
        head == "c"
        and len(coords) == len(counts)
        and all(c.isdigit() and int(c) < n for c, n in zip(coords, counts, strict=True))
    )


def _copy_split(
    src: Location, dst: Location, name: str, meta: SplitMeta, progress: bool
) -> tuple[int, int, int]:
    """(files copied, files kept, bytes copied) of split `name`; its commit mark goes last."""
    sizes = _store_files(src, name, meta)
    there = dst.sizes(name)
    commit = f"{name}/{COMMIT_ARRAY}/"
    keys = sorted(sizes, key=lambda k: (k.startswith(commit), k))
    todo = [k for k in keys if there.get(k) != sizes[k] or k.startswith(commit)]
    for stale in set(there) - set(sizes):  # what a killed copy left half-written
        dst.call(dst.fs.rm, f"{dst.root}/{stale}")
    total = sum(sizes[k] for k in todo)
    with progress_bar(
        total=total, desc=f"copy {name}", unit="B", unit_scale=True, show=progress
    ) as bar:
        for batch in _batches(todo, sizes):
            data = src.read(batch)
            for key in batch:
                if len(data[key]) != sizes[key]:
                    raise FatError(f"{src.name}: {key} changed while it was copied; run again")
            dst.write(data)
            bar.update(sum(sizes[k] for k in batch))
    return len(todo), len(keys) - len(todo), total


def _verify_arrived(dst: Location, name: str, expected: dict[str, Any], progress: bool) -> None:
    """Every clip of split `name` read back at the destination and checked against its
    checksum; FatError (the copy stays unfinished) when one does not match."""
    backend = (
        RemoteZarrBackend(dst.name, False) if dst.remote else ZarrBackend(Path(dst.root), False)
    )
    try:
        split = Split.open(backend, name)
        if _state(split) != expected:
            raise FatError(
                f"{dst.name}: split {name!r} arrived as {_state(split)}, expected {expected}; "
                "the source changed during the copy? run it again"
            )
        with progress_bar(
            total=split.n_frames, desc=f"verify {name}", unit="frame", show=progress
        ) as bar:
            problems, _ = verify_split(split, check_data=True, progress=bar.update)
    finally:
        backend.close()
    if problems:
        raise FatError(f"{dst.name}: {problems[0]} after copying; run the copy again")
