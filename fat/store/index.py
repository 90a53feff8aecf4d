"""The typed index of a split at one commit: where each clip's frames are, its id, labels and
source facts. Readers hold it in RAM (~0.2 KB per clip) and trust nothing past the commit."""

from dataclasses import dataclass

import numpy as np

from fat.core.errors import FatError
from fat.core.ids import check_clip_id
from fat.store.backends import Backend
from fat.store.layout import (
    COMMIT_ARRAY,
    MAX_CHUNK_BYTES,
    SplitMeta,
    checksum,
    decode_ids,
    decode_info,
)


@dataclass(frozen=True)
class SplitIndex:
    n_frames: int  # committed rows of the frames array
    offsets: np.ndarray  # (n_clips,) int64: first frame of each clip
    lengths: np.ndarray  # (n_clips,) int64: frames per clip
    clip_ids: list[str]
    labels: np.ndarray  # (n_clips, n_classes) uint8 multi-hot
    source: np.ndarray  # (n_clips, 3) float64: sample rate, channels, duration (s)
    checksums: np.ndarray  # (n_clips,) uint32
    stats: tuple[np.ndarray, np.ndarray] | None  # per-mel (mean, std), None if not current
    # (n_clips, n_frames) of the commit before the last; None in stores of format 1
    previous: tuple[int, int] | None = None
    # (n_clips, INFO_BYTES) uint8: each clip's facts as JSON, decoded on demand (`info`);
    # None for splits made before clips carried them
    info_rows: np.ndarray | None = None

    def info(self, clip: int) -> dict:
        """The data set's facts about clip `clip` ({} when the split keeps none)."""
        return decode_info(self.info_rows[clip]) if self.info_rows is not None else {}

    @property
    def n_clips(self) -> int:
        return len(self.clip_ids)

    @classmethod
    def read(cls, backend: Backend, split: str, meta: SplitMeta) -> "SplitIndex":
        """The index as of the split's last commit; rows past it are ignored. Every array is
        checked against the layout `meta` gives, and every number it takes on trust (the commit
        mark, each clip's offset and length) against what the storage holds, before anything is
        allocated by it: a store may come from anyone. FatError for a clip id that is not a
        valid one; `DamagedIndex` where a writer can roll the split back (`last_good_commit`)."""

        def rows(array: str, n: int) -> np.ndarray:
            return np.asarray(backend.array(split, array)[:n])

        check_arrays(backend, split, meta, [COMMIT_ARRAY])
        commit = rows(COMMIT_ARRAY, 4)
        # The other arrays opened after the mark was read: a writer grows them before it moves.
        check_arrays(backend, split, meta)
        n_clips, n_frames = (int(commit[0]), int(commit[1])) if len(commit) >= 2 else (0, 0)
        previous = (int(commit[2]), int(commit[3])) if len(commit) == 4 else None
        arrays = index_arrays(meta)
        # Read after the commit mark: a writer's rows are on disk before the mark moves.
        stored = min(backend.rows_on_disk(split, name) for name in arrays)
        frames_stored = backend.rows_on_disk(split, "frames")
        if not (0 <= n_clips <= stored and 0 <= n_frames <= frames_stored):
            raise DamagedIndex(
                f"commit mark ({n_clips} clips, {n_frames} frames) outside what the arrays "
                f"hold ({stored} rows, {frames_stored} frames); the store is damaged"
            )
        if previous is not None and not (
            0 <= previous[0] <= n_clips and 0 <= previous[1] <= n_frames
        ):
            previous = None  # a damaged previous mark only disables the re-verification
        offsets = rows("offsets", n_clips).astype(np.int64)
        lengths = rows("lengths", n_clips).astype(np.int64)
        bad = np.flatnonzero((offsets < 0) | (lengths < 1) | (offsets > n_frames - lengths))
        if len(bad):
            i = int(bad[0])
            raise DamagedIndex(
                f"clip {i}: offset {offsets[i]} and length {lengths[i]} do not fit the "
                f"{n_frames} committed frames ({len(bad)} such clips); the store is damaged"
            )
        stats_for = rows("stats_for", 1)
        stats = None
        if len(stats_for) and int(stats_for[0]) == n_clips and n_clips > 0:
            mel_stats = rows("mel_stats", 2)
            if len(mel_stats) == 2:
                stats = (mel_stats[0], mel_stats[1])
        clip_ids = decode_ids(rows("ids", n_clips))
        for i, clip_id in enumerate(clip_ids):
            reason = check_clip_id(clip_id)
            if reason:
                raise DamagedIndex(f"clip {i}: {reason}; the store is damaged")
        return cls(
            n_frames=n_frames,
            offsets=offsets,
            lengths=lengths,
            clip_ids=clip_ids,
            labels=rows("labels", n_clips),
            source=rows("source", n_clips),
            checksums=rows("checksums", n_clips),
            stats=stats,
            previous=previous,
            info_rows=rows("info", n_clips) if meta.info_bytes else None,
        )


class DamagedIndex(FatError):
    """A split whose commit mark or clip index points outside its arrays: unreadable as it is;
    a writer rolls it back to its last good commit (`last_good_commit`)."""


def index_arrays(meta: SplitMeta) -> list[str]:
    """The arrays with a row per clip."""
    fixed = {"frames", "mel_stats", "stats_for", COMMIT_ARRAY}
    return [name for name in meta.array_specs() if name not in fixed]


def check_arrays(
    backend: Backend, split: str, meta: SplitMeta, names: list[str] | None = None
) -> None:
    """FatError naming the first array of `split` (of `names`, default all) whose rows, value
    type or chunks are not the ones `meta` gives: a row wider than the layout's, or a chunk
    larger than MAX_CHUNK_BYTES, would size allocations by what the store claims."""
    for name, spec in meta.array_specs().items():
        if names is not None and name not in names:
            continue
        array = backend.array(split, name)
        shape, chunks = tuple(array.shape), tuple(array.chunks or ())
        dtype, wanted = np.dtype(array.dtype), np.dtype(spec.dtype)
        problem = None
        if shape[1:] != spec.row_shape:
            problem = f"rows of shape {shape[1:]}, expected {spec.row_shape}"
        elif dtype.kind != wanted.kind or dtype.itemsize > 8:
            problem = f"values of type {dtype}, expected {wanted}"
        elif len(chunks) != len(shape) or chunks[0] < 1:
            problem = f"chunks {chunks}"
        elif int(np.prod(chunks, dtype=object)) * dtype.itemsize > MAX_CHUNK_BYTES:
            problem = f"chunks {chunks} of over {MAX_CHUNK_BYTES >> 20} MiB"
        if problem:
            raise FatError(f"array {name!r} has {problem}; damaged, or not made by fat")


def last_good_commit(backend: Backend, split: str, meta: SplitMeta) -> tuple[int, int]:
    """(clips, frames) of the longest run of clips from the first that the arrays hold whole:
    index rows present, frames contiguous and inside the frames array, ids valid and checksums
    matching. Where a damaged split (`DamagedIndex`) can be rolled back to; reads every frame
    of those clips, so only for repairs."""
    check_arrays(backend, split, meta)
    commit = np.asarray(backend.array(split, COMMIT_ARRAY)[:2])
    claimed = int(commit[0]) if len(commit) >= 1 else 0
    n = max(0, min([claimed] + [backend.rows_on_disk(split, a) for a in index_arrays(meta)]))
    frames_stored = backend.rows_on_disk(split, "frames")
    offsets = np.asarray(backend.array(split, "offsets")[:n], np.int64)
    lengths = np.asarray(backend.array(split, "lengths")[:n], np.int64)
    ids = decode_ids(np.asarray(backend.array(split, "ids")[:n]))
    checksums = np.asarray(backend.array(split, "checksums")[:n])
    frames = backend.array(split, "frames")
    end = 0
    for i in range(n):
        length = int(lengths[i])
        whole = (
            int(offsets[i]) == end
            and 1 <= length <= frames_stored - end
            and check_clip_id(ids[i]) is None
        )
        if whole:
            try:
                data = np.asarray(frames[end : end + length])
                whole = checksum(data) == int(checksums[i])
            except Exception:  # noqa: BLE001 - a damaged chunk fails in format-specific ways
                whole = False
        if not whole:
            return i, end
        end += length
    return n, end
