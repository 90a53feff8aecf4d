"""What makes a store safe to open when it came from someone else.

A store is input: people download and share them. So before fat reads or writes one, every
file fat would touch must be the store's own and shaped as fat writes it, and nothing a store
claims may size an allocation or a wait beyond what the store holds:

- Zarr: every entry under the store's folder is a plain file or folder (no symbolic link,
  FIFO, socket or device), checked before anything is opened or locked; every array's
  metadata uses only what fat writes (raw little- or big-endian bytes, zstd for the frames, a
  regular chunk grid, numbers of at most 8 bytes, chunks of at most `MAX_CHUNK_BYTES`), so no
  other codec (sharding, gzip, a plugin's) ever decodes a store's bytes.
- HDF5: every object is reached by hard links (no soft or external link), and no dataset keeps
  its data outside the file (external storage, a virtual dataset) or behind a filter.
- Rows a reader takes on trust (the commit mark) are checked against the rows the storage
  holds (`chunk_prefix_rows`; HDF5: the file's size) before any array is read.
"""

import json
import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from fat.core.errors import FatError
from fat.store.layout import MAX_CHUNK_BYTES, MAX_METADATA_BYTES

NUMBER_TYPES = {
    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64",
}  # fmt: skip


def _not_its_own(root: Path, entry: str, what: str) -> FatError:
    relative = os.path.relpath(entry, root)
    return FatError(
        f"{root}: {relative!r} is {what}; a store holds only its own files, so it is not "
        "opened (remove that entry, or get the store again)"
    )


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a plain file"


def check_store_tree(root: Path) -> None:
    """FatError naming the first entry under the folder `root` that is a symbolic link (which
    may lead anywhere) or anything but a plain file or folder (a FIFO's read never returns).
    The root itself may be a link: that is the user's own way to the store."""
    folders = [str(root)]
    while folders:
        folder = folders.pop()
        try:
            with os.scandir(folder) as listing:
                entries = list(listing)
        except (FileNotFoundError, NotADirectoryError):
            continue  # a writer renamed or deleted it meanwhile
        except OSError as e:
            raise FatError(f"{root}: cannot list {folder!r} ({e.strerror})") from None
        for entry in entries:
            try:
                if entry.is_symlink():
                    target = os.readlink(entry.path)
                    raise _not_its_own(root, entry.path, f"a symbolic link (to {target!r})")
                if entry.is_dir(follow_symlinks=False):
                    folders.append(entry.path)
                elif not entry.is_file(follow_symlinks=False):
                    kind = _kind(entry.stat(follow_symlinks=False).st_mode)
                    raise _not_its_own(root, entry.path, kind)
            except FileNotFoundError:
                continue  # gone since the listing: a writer's rename


def read_metadata_file(path: Path, where: str) -> Any:
    """A zarr.json read and parsed, at most `MAX_METADATA_BYTES`; FatError naming `where` when
    it is missing, too large or not JSON."""
    try:
        with open(path, "rb") as f:
            # Sized first: read(n) would set aside n bytes before it knew the file's size.
            if os.fstat(f.fileno()).st_size > MAX_METADATA_BYTES:
                raise FatError(
                    f"{where}: metadata over {MAX_METADATA_BYTES >> 20} MiB; not made by fat"
                )
            raw = f.read()
    except OSError as e:
        raise FatError(f"{where}: no readable metadata ({e.strerror or e})") from None
    return parse_metadata(raw, where)


def parse_metadata(raw: bytes, where: str) -> Any:
    """`raw` JSON metadata parsed; FatError naming `where` when too large or not JSON."""
    if len(raw) > MAX_METADATA_BYTES:
        raise FatError(f"{where}: metadata over {MAX_METADATA_BYTES >> 20} MiB; not made by fat")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as e:  # nesting deep enough exhausts the parser's stack
        raise FatError(f"{where}: metadata is not JSON ({type(e).__name__})") from None


def check_zarr_array(document: Any, where: str, compressible: bool) -> str:
    """The chunk key separator of the Zarr array `document` (its zarr.json) describes, after a
    FatError unless it is laid out as fat writes arrays; `compressible`: zstd allowed (frames)."""
    try:
        problem, separator = _zarr_array_problem(document, compressible)
    except (TypeError, ValueError, AttributeError, KeyError, OverflowError) as e:
        problem, separator = f"malformed ({type(e).__name__}: {e})", "."
    if problem:
        raise FatError(f"{where}: array metadata {problem}; damaged, or not made by fat")
    return separator


def _zarr_array_problem(doc: Any, compressible: bool) -> tuple[str | None, str]:
    if not isinstance(doc, dict) or doc.get("node_type") != "array" or doc.get("zarr_format") != 3:
        return "is not a Zarr v3 array", "."
    if doc.get("storage_transformers"):
        return "names storage transformers", "."
    if doc.get("data_type") not in NUMBER_TYPES:
        return f"has data type {str(doc.get('data_type'))[:40]!r}", "."
    grid, keys = doc["chunk_grid"], doc["chunk_key_encoding"]
    shape, chunk = list(doc["shape"]), list(grid["configuration"]["chunk_shape"])
    if grid.get("name") != "regular" or len(shape) != len(chunk) or not shape:
        return "has no regular chunk grid", "."
    if not all(isinstance(n, int) and n >= 0 for n in shape) or not all(
        isinstance(n, int) and n >= 1 for n in chunk
    ):
        return f"has shape {shape} and chunks {chunk}", "."
    separator = keys.get("configuration", {}).get("separator", "/")
    if keys.get("name") != "default" or separator not in (".", "/"):
        return "names chunks in a way fat does not write", "."
    chunk_bytes = int(np.prod(chunk, dtype=object)) * np.dtype(doc["data_type"]).itemsize
    if chunk_bytes > MAX_CHUNK_BYTES:
        return f"has chunks of {chunk_bytes:,} bytes (over {MAX_CHUNK_BYTES:,})", separator
    codecs = [c.get("name") if isinstance(c, dict) else c for c in doc["codecs"]]
    allowed_after = ["zstd"] if compressible else []
    if not codecs or codecs[0] != "bytes" or any(c not in allowed_after for c in codecs[1:]):
        return f"has codecs {codecs!r}", separator
    return None, separator


def array_from_metadata(store: Any, path: str, document: dict[str, Any]) -> Any:
    """The zarr array at `path` of `store`, built from the metadata `document` already read and
    checked (`check_zarr_array`): zarr reads by exactly what was checked, and no second read."""
    from zarr import Array
    from zarr.core.array import AsyncArray
    from zarr.storage import StorePath

    return Array(AsyncArray.from_dict(StorePath(store, path), document))


def chunk_prefix_rows(names: Iterable[str], chunk_rows: int, rows: int) -> int:
    """How many leading rows (at most `rows`) the chunk files `names` (c.I.0... or c.I, as
    the array's folder lists them) hold: up to the first chunk that is missing, past which
    Zarr reads the fill value out of nothing."""
    present = set()
    for name in names:
        parts = name.split(".")
        # Whole rows per chunk: every other coordinate of a chunk of the array is 0.
        whole_rows = all(p == "0" for p in parts[2:])
        if parts[0] == "c" and len(parts) > 1 and parts[1].isdigit() and whole_rows:
            present.add(int(parts[1]))
    first_missing = 0
    while first_missing in present:
        first_missing += 1
    return min(rows, first_missing * chunk_rows)


def check_hdf5_file(file: Any, path: Path) -> None:
    """FatError unless every object fat reads in the open HDF5 `file` (the root's members and
    theirs) is reached by a hard link, and every dataset among them keeps its data inside the
    file, chunked and unfiltered, as fat writes them."""
    import h5py

    def refuse(where: str, what: str) -> FatError:
        return FatError(
            f"{path}: {where!r} is {what}; a store keeps everything in its own file, so it is "
            "not opened (damaged, or not made by fat)"
        )

    groups: list[tuple[str, Any]] = [("", file)]
    for depth in range(2):  # the root and the splits: fat reads nothing deeper
        found = []
        for prefix, group in groups:
            for name in group:  # iterating names follows no link
                where = f"{prefix}/{name}"
                try:
                    link = group.get(name, getlink=True)
                except Exception as e:  # noqa: BLE001 - a user-defined link type h5py cannot map
                    raise refuse(where, f"a link of an unknown kind ({type(e).__name__})") from None
                if isinstance(link, h5py.SoftLink):
                    raise refuse(where, f"a soft link (to {link.path!r})")
                if isinstance(link, h5py.ExternalLink):
                    raise refuse(where, f"an external link (to {link.filename!r})")
                if not isinstance(link, h5py.HardLink):
                    raise refuse(where, "a link of an unknown kind")
                item = group[name]
                if isinstance(item, h5py.Dataset):
                    _check_hdf5_dataset(item, where, refuse)
                elif isinstance(item, h5py.Group) and depth == 0:
                    found.append((where, item))
        groups = found


def _check_hdf5_dataset(dataset: Any, where: str, refuse) -> None:
    if dataset.is_virtual:
        raise refuse(where, "a virtual dataset (its data lives in other files)")
    external = dataset.external
    if external:
        names = ", ".join(repr(os.fsdecode(entry[0])) for entry in external[:3])
        raise refuse(where, f"a dataset with external storage (in {names})")
    if dataset.chunks is None:
        raise refuse(where, "a dataset that is not chunked")
    if dataset.id.get_create_plist().get_nfilters():
        raise refuse(where, "a filtered (compressed) dataset, which fat never writes")
