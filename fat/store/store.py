"""The feature store: log-mel frames of many clips, grouped by split, keyed by clip id.

Layout of one split (the same arrays in Zarr and HDF5; reasoning in docs/store.md):

    frames     (total_frames, n_mels)  float16/32   all clips concatenated along time
    offsets    (n_clips,) int64        first frame of each clip in `frames`
    lengths    (n_clips,) int32        frames per clip
    ids        (n_clips, 128) uint8    clip id, ASCII, NUL-padded
    labels     (n_clips, n_classes) uint8   multi-hot targets (all zero when unlabelled)
    source     (n_clips, 3) float64    original sample rate, channels, duration in seconds
    checksums  (n_clips,) uint32       CRC-32 of the clip's stored frames
    mel_stats  (2, n_mels) float64     per-mel mean and std over the split
    stats_for  (1,) int64              how many clips `mel_stats` covers
    commit     (2,) int64              [n_clips, n_frames] committed: the only thing readers trust

A commit writes frames and index rows past the committed end, then overwrites `commit`.
Rows beyond `commit` are invisible and get overwritten by the next writer, so a writer killed
at any point leaves exactly the clips of the last commit.
"""

import math
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from fat import __version__
from fat.config import LogMelConfig
from fat.errors import FatError
from fat.ids import check_clip_id, validate_clip_id
from fat.store.backends import BACKENDS, ArraySpec, Backend, format_for
from fat.store.lock import WriterLock

ID_BYTES = 128
COMPRESSIONS = ("none", "zstd")


def default_frames_chunk(format: str, compression: str) -> int:
    """Frames per chunk of the frames array. Measured trade-off (BENCHMARKS.md): each chunk
    Zarr writes costs a file create, write and rename, so uncompressed Zarr takes 4096 frames
    (1 MiB), written ~1.6x faster than 1024 with crops read as fast (zarr's ~0.3 ms per read
    dominates). zstd stays at 1024, as a crop decompresses its whole chunk; so does HDF5, whose
    crop reads were 2x slower with 1 MiB chunks (its default chunk cache is 1 MiB)."""
    return 4096 if (format, compression) == ("zarr", "none") else 1024


# Rows per chunk of the index arrays. Every commit rewrites the open chunk of each; 4096 rows
# (512 KiB of ids) made featurize 2.4% slower, and opening a split reads all of them anyway.
_INDEX_CHUNK = 1024


@dataclass(frozen=True)
class SplitMeta:
    """What a split was made with; written once when the split is created."""

    name: str
    feature_config: LogMelConfig
    vocabulary: tuple[str, ...]
    labelled: bool
    tool_version: str
    created_utc: str
    frames_chunk: int
    compression: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "feature_config": self.feature_config.to_dict(),
            "vocabulary": list(self.vocabulary),
            "labelled": self.labelled,
            "tool_version": self.tool_version,
            "created_utc": self.created_utc,
            "frames_chunk": self.frames_chunk,
            "compression": self.compression,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SplitMeta":
        return cls(
            name=d["name"],
            feature_config=LogMelConfig.from_dict(d["feature_config"]),
            vocabulary=tuple(d["vocabulary"]),
            labelled=bool(d["labelled"]),
            tool_version=d["tool_version"],
            created_utc=d["created_utc"],
            frames_chunk=int(d["frames_chunk"]),
            compression=d["compression"],
        )


@dataclass(frozen=True)
class ClipRecord:
    """One featurized clip, as handed to a writer."""

    clip_id: str
    features: np.ndarray  # (n_mels, n_frames)
    labels: np.ndarray  # (n_classes,) multi-hot
    source_sample_rate: int
    source_channels: int
    source_duration_s: float


@dataclass(frozen=True)
class EncodedClip:
    """A clip in the store's row layout plus what a commit records about it.

    Made by `encode_clip`, which is pure and thread-safe: featurize's worker threads encode in
    parallel and the single writer only writes."""

    record: ClipRecord
    frames: np.ndarray  # (n_frames, n_mels), store dtype, C order
    checksum: int
    sums: np.ndarray  # (2, n_mels) float64: per-mel sum and sum of squares of the stored values

    def __reduce__(self):
        # Pickled (from featurize's worker processes) without record.features, which the
        # writer never reads: the float32 log-mel would be 2/3 of the bytes. It comes back as
        # a view of `frames`, the values as stored.
        r = self.record
        facts = (r.clip_id, r.labels, r.source_sample_rate, r.source_channels, r.source_duration_s)
        return _unpickle_encoded_clip, (facts, self.frames, self.checksum, self.sums)


def _unpickle_encoded_clip(facts: tuple, frames: np.ndarray, checksum: int, sums: np.ndarray):
    clip_id, labels, sample_rate, channels, duration_s = facts
    record = ClipRecord(clip_id, frames.T, labels, sample_rate, channels, duration_s)
    return EncodedClip(record, frames, checksum, sums)


def encode_clip(clip: ClipRecord, dtype: str) -> EncodedClip:
    """`clip` as the store keeps it, in `dtype`; FatError for features that are not 2-D frames."""
    if clip.features.ndim != 2 or clip.features.shape[1] == 0:
        raise FatError(
            f"clip {clip.clip_id!r}: features {clip.features.shape}, expected (n_mels, T > 0)"
        )
    features = np.ascontiguousarray(clip.features.T)
    if dtype == "float16" and features.dtype == np.float32:  # float64 would round twice
        # Imported here: it brings numba and a compiled kernel, which only writers need.
        from fat.store.float16 import to_float16_with_sums

        frames, sums = to_float16_with_sums(features)
    else:
        frames = features.astype(dtype, copy=False)
        values = frames.astype(np.float32, copy=False)
        sums = np.stack(
            [values.sum(axis=0, dtype=np.float64), np.square(values).sum(axis=0, dtype=np.float64)]
        )
    return EncodedClip(clip, frames, checksum(frames), sums)


def _array_specs(meta: SplitMeta) -> dict[str, ArraySpec]:
    cfg = meta.feature_config
    return {
        "frames": ArraySpec(cfg.dtype, (cfg.n_mels,), meta.frames_chunk, meta.compression),
        "offsets": ArraySpec("int64", (), _INDEX_CHUNK),
        "lengths": ArraySpec("int32", (), _INDEX_CHUNK),
        "ids": ArraySpec("uint8", (ID_BYTES,), _INDEX_CHUNK),
        "labels": ArraySpec("uint8", (len(meta.vocabulary),), _INDEX_CHUNK),
        "source": ArraySpec("float64", (3,), _INDEX_CHUNK),
        "checksums": ArraySpec("uint32", (), _INDEX_CHUNK),
        "mel_stats": ArraySpec("float64", (cfg.n_mels,), 2),
        "stats_for": ArraySpec("int64", (), 1),
        "commit": ArraySpec("int64", (), 2),
    }


def _encode_ids(clip_ids: list[str]) -> np.ndarray:
    out = np.zeros((len(clip_ids), ID_BYTES), dtype=np.uint8)
    for i, clip_id in enumerate(clip_ids):
        raw = validate_clip_id(clip_id).encode("ascii")
        out[i, : len(raw)] = np.frombuffer(raw, dtype=np.uint8)
    return out


def _decode_ids(raw: np.ndarray) -> list[str]:
    return [bytes(row).rstrip(b"\0").decode("ascii", errors="replace") for row in raw]


def checksum(frames: np.ndarray) -> int:
    """CRC-32 of a clip's frames as stored: (n_frames, n_mels), C order, store dtype."""
    return zlib.crc32(np.ascontiguousarray(frames))


class Split:
    """A read view of one split at its last commit; `load()` gives the same view in RAM."""

    def __init__(self, backend: Backend | None, meta: SplitMeta, frames: Any, index: dict):
        self._backend = backend
        self.meta = meta
        self._frames = frames
        self._index = index  # shared as-is by the in-memory copy `load()` makes
        self.n_clips: int = index["n_clips"]
        self.n_frames: int = index["n_frames"]
        self.offsets: np.ndarray = index["offsets"]
        self.lengths: np.ndarray = index["lengths"]
        self.clip_ids: list[str] = index["clip_ids"]
        self.labels: np.ndarray = index["labels"]
        self.source: np.ndarray = index["source"]
        self.checksums: np.ndarray = index["checksums"]
        self._stats: tuple[np.ndarray, np.ndarray] | None = index["stats"]
        self._position = {clip_id: i for i, clip_id in enumerate(self.clip_ids)}
        self._offset_list: list[int] = self.offsets.tolist()
        self._length_list: list[int] = self.lengths.tolist()

    @classmethod
    def open(cls, backend: Backend, name: str) -> "Split":
        meta = SplitMeta.from_dict(backend.meta(name))

        def rows(array: str, n: int) -> np.ndarray:
            return np.asarray(backend.array(name, array)[:n])

        commit = rows("commit", 2)
        n_clips, n_frames = (int(commit[0]), int(commit[1])) if len(commit) == 2 else (0, 0)
        stats_for = rows("stats_for", 1)
        stats = None
        if len(stats_for) and int(stats_for[0]) == n_clips and n_clips > 0:
            mel_stats = rows("mel_stats", 2)
            stats = (mel_stats[0], mel_stats[1])
        index = {
            "n_clips": n_clips,
            "n_frames": n_frames,
            "offsets": rows("offsets", n_clips).astype(np.int64),
            "lengths": rows("lengths", n_clips).astype(np.int64),
            "clip_ids": _decode_ids(rows("ids", n_clips)),
            "labels": rows("labels", n_clips),
            "source": rows("source", n_clips),
            "checksums": rows("checksums", n_clips),
            "stats": stats,
        }
        return cls(backend, meta, backend.array(name, "frames"), index)

    @property
    def name(self) -> str:
        return self.meta.name

    @property
    def feature_config(self) -> LogMelConfig:
        return self.meta.feature_config

    @property
    def vocabulary(self) -> tuple[str, ...]:
        return self.meta.vocabulary

    @property
    def frames_chunks(self) -> tuple[int, ...]:
        """Chunk shape of the frames array (the whole array when in memory)."""
        return tuple(getattr(self._frames, "chunks", None) or self._frames.shape)

    @property
    def in_memory(self) -> bool:
        return isinstance(self._frames, np.ndarray)

    @property
    def durations(self) -> np.ndarray:
        """Duration in seconds of each clip's original audio."""
        return self.source[:, 2] if self.n_clips else np.zeros(0)

    @property
    def hours(self) -> float:
        return float(self.durations.sum() / 3600)

    @property
    def stats(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Per-mel (mean, std) over the split, or None when not computed for the current clips."""
        return self._stats

    def __len__(self) -> int:
        return self.n_clips

    def __contains__(self, clip_id: str) -> bool:
        return clip_id in self._position

    def index_of(self, clip: int | str) -> int:
        """Position of a clip given its id or index; FatError for an unknown one."""
        if isinstance(clip, str):
            try:
                return self._position[clip]
            except KeyError:
                raise FatError(f"split {self.name!r} has no clip {clip!r}") from None
        i = int(clip)
        if not 0 <= i < self.n_clips:
            raise FatError(f"split {self.name!r}: clip index {i} outside 0..{self.n_clips - 1}")
        return i

    def labels_of(self, clip: int | str) -> list[str]:
        return [self.vocabulary[j] for j in np.flatnonzero(self.labels[self.index_of(clip)])]

    def read_rows(self, start: int, stop: int) -> np.ndarray:
        """Raw stored frames [start, stop) of the concatenated array, (rows, n_mels)."""
        return self._frames[start:stop]  # numpy, zarr and h5py all return an ndarray

    def read(self, clip: int | str) -> np.ndarray:
        """A whole clip as (n_mels, n_frames) in the store dtype."""
        i = self.index_of(clip)
        start = self._offset_list[i]
        return self._frames[start : start + self._length_list[i]].T

    def read_crop(self, clip: int | str, start: int, length: int) -> np.ndarray:
        """Frames [start, start + length) of a clip as (n_mels, length); touches only the chunks
        holding them. The crop must lie inside the clip (padding is the caller's policy)."""
        # The hot path of training: Python ints from lists, no numpy scalars, no extra copies.
        i = clip if type(clip) is int and 0 <= clip < self.n_clips else self.index_of(clip)
        if start < 0 or length <= 0 or start + length > self._length_list[i]:
            raise FatError(
                f"crop [{start}, {start + length}) outside clip {self.clip_ids[i]!r} "
                f"of {self._length_list[i]} frames"
            )
        first = self._offset_list[i] + start
        return self._frames[first : first + length].T

    def iter_blocks(self, rows: int = 1 << 16) -> Iterator[tuple[int, np.ndarray]]:
        """The committed frames in large sequential blocks: (first row, block)."""
        for lo in range(0, self.n_frames, rows):
            yield lo, self.read_rows(lo, min(lo + rows, self.n_frames))

    def compute_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-mel mean and std over every committed frame (float64 accumulation)."""
        n_mels = self.feature_config.n_mels
        total = np.zeros(n_mels)
        total_sq = np.zeros(n_mels)
        for _, block in self.iter_blocks():
            block = block.astype(np.float64)
            total += block.sum(axis=0)
            total_sq += np.square(block).sum(axis=0)
        count = max(self.n_frames, 1)
        mean = total / count
        std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
        return mean, std

    def nbytes(self) -> int:
        return (
            self.n_frames
            * self.feature_config.n_mels
            * np.dtype(self.feature_config.dtype).itemsize
        )

    def gather_rows(self, rows: np.ndarray) -> np.ndarray:
        """Frames at any array of row indices of the concatenated frames, in one vectorised
        gather: the fast path of batch assembly, for splits in RAM only."""
        if not self.in_memory:
            raise FatError(f"split {self.name!r}: gather_rows needs the split in RAM (load())")
        return self._frames[rows]

    def with_frames(self, frames: np.ndarray) -> "Split":
        """This split's index over other frames in RAM of the same shape (e.g. normalised)."""
        if frames.shape != (self.n_frames, self.feature_config.n_mels):
            raise ValueError(f"frames {frames.shape} do not fit split {self.name!r}")
        return Split(None, self.meta, frames, self._index)

    def load(self, budget_bytes: int | None = None) -> "Split":
        """This split with all frames in RAM (the fast path), if they fit `budget_bytes`."""
        if self.in_memory:
            return self
        need = self.nbytes()
        if budget_bytes is not None and need > budget_bytes:
            raise FatError(
                f"split {self.name!r} needs {need / 2**30:.2f} GiB in memory, "
                f"over the budget of {budget_bytes / 2**30:.2f} GiB"
            )
        frames = np.empty((self.n_frames, self.feature_config.n_mels), self.feature_config.dtype)
        for lo, block in self.iter_blocks():
            frames[lo : lo + len(block)] = block
        return self.with_frames(frames)

    def verify(
        self, check_data: bool = True, progress: Callable[[int], None] | None = None
    ) -> tuple[list[str], list[str]]:
        """(problems, notes). Problems make a store invalid; notes are worth knowing only.
        `progress` is called with the number of frames checked since its last call."""
        problems: list[str] = []
        notes: list[str] = []
        where = f"split {self.name}"
        n = self.n_clips
        cfg = self.feature_config
        if n == 0:
            notes.append(f"{where}: no clips")
        expected = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]) if n else np.zeros(0)
        for i in np.flatnonzero(self.offsets != expected)[:20]:
            problems.append(
                f"{where}: clip {i} ({self.clip_ids[i]}) offset {self.offsets[i]}, "
                f"expected {expected[i]}"
            )
        if int(self.lengths.sum()) != self.n_frames:
            problems.append(
                f"{where}: clip lengths sum to {int(self.lengths.sum())} "
                f"but {self.n_frames} frames are committed"
            )
        if self._frames.shape[0] < self.n_frames:
            problems.append(
                f"{where}: frames array has {self._frames.shape[0]} rows, "
                f"fewer than the {self.n_frames} committed"
            )
        if self._frames.shape[1:] != (cfg.n_mels,):
            problems.append(f"{where}: frames rows {self._frames.shape[1:]} != n_mels {cfg.n_mels}")
        for i in np.flatnonzero(self.lengths <= 0)[:20]:
            problems.append(f"{where}: clip {self.clip_ids[i]} has {self.lengths[i]} frames")
        seen: set[str] = set()
        for clip_id in self.clip_ids:
            reason = check_clip_id(clip_id)
            if reason:
                problems.append(f"{where}: {reason}")
            elif clip_id in seen:
                problems.append(f"{where}: clip id {clip_id} appears twice")
            seen.add(clip_id)
        if self.labels.shape[1:] != (len(self.vocabulary),):
            problems.append(
                f"{where}: labels have {self.labels.shape[1:]} columns, "
                f"vocabulary has {len(self.vocabulary)}"
            )
        for i in np.flatnonzero((self.labels > 1).any(axis=1) if n else [])[:20]:
            problems.append(f"{where}: clip {self.clip_ids[i]} has label values outside 0/1")
        if self.meta.labelled:
            for i in np.flatnonzero(self.labels.sum(axis=1) == 0 if n else [])[:20]:
                problems.append(f"{where}: clip {self.clip_ids[i]} has no label")
        if n and self._stats is None:
            notes.append(f"{where}: mel mean/std not computed for the current {n} clips")
        if self._stats is not None and not all(np.isfinite(s).all() for s in self._stats):
            problems.append(f"{where}: mel mean/std are not finite")
        if check_data and not problems and n:
            problems += self._verify_data(progress)
        return problems, notes

    def _verify_data(self, progress: Callable[[int], None] | None) -> list[str]:
        """Recompute every clip's checksum and look for non-finite values, reading sequentially."""
        problems: list[str] = []
        clip = 0
        for lo, block in self.iter_blocks():
            hi = lo + len(block)
            while clip < self.n_clips and self.offsets[clip] + self.lengths[clip] <= hi:
                a = self.offsets[clip] - lo
                frames = block[a : a + self.lengths[clip]]
                name = f"split {self.name}: clip {self.clip_ids[clip]}"
                if a < 0:  # clip straddles the block boundary: read it whole
                    frames = self.read_rows(
                        self.offsets[clip], self.offsets[clip] + self.lengths[clip]
                    )
                if not np.isfinite(frames).all():
                    problems.append(f"{name}: non-finite values")
                if checksum(frames) != int(self.checksums[clip]):
                    problems.append(f"{name}: checksum mismatch (data changed since written)")
                clip += 1
            if progress:
                progress(len(block))
        return problems


class SplitWriter:
    """Appends clips to a split in commits of `commit_every` clips (or every `commit_seconds`).

    Opening a writer on an existing split resumes it: `committed` holds the ids already there,
    and new clips go after the last commit. Use as a context manager; `close()` commits what is
    buffered and refreshes the split's mel statistics.
    """

    def __init__(
        self,
        backend: Backend,
        meta: SplitMeta,
        commit_every: int = 64,
        commit_seconds: float = 5.0,
    ):
        self._backend = backend
        self.meta = meta
        self._commit_every = commit_every
        self._commit_seconds = commit_seconds
        split = Split.open(backend, meta.name)
        self.committed: set[str] = set(split.clip_ids)
        self.n_clips = split.n_clips
        self.n_frames = split.n_frames
        self._buffer: list[EncodedClip] = []
        self._buffered: set[str] = set()
        self._last_commit = time.monotonic()
        # Per-mel running sums over the clips this writer committed. When it started on an
        # empty split they cover the whole split, and closing needs no second pass over the
        # frames; a resumed split gets the full pass (its earlier clips' sums are not kept).
        n_mels = meta.feature_config.n_mels
        self._sums = np.zeros((2, n_mels)) if self.n_clips == 0 else None

    def add(self, clip: ClipRecord | EncodedClip) -> None:
        """Buffer one clip (encoded here unless `encode_clip` already did it off this thread);
        it becomes visible at the next commit."""
        cfg = self.meta.feature_config
        encoded = clip if isinstance(clip, EncodedClip) else encode_clip(clip, cfg.dtype)
        record = encoded.record
        validate_clip_id(record.clip_id)
        if record.clip_id in self.committed or record.clip_id in self._buffered:
            raise FatError(f"split {self.meta.name!r} already has clip {record.clip_id!r}")
        if encoded.frames.shape[1:] != (cfg.n_mels,) or encoded.frames.dtype != cfg.dtype:
            raise FatError(
                f"clip {record.clip_id!r}: frames {encoded.frames.shape} {encoded.frames.dtype}, "
                f"expected (T, {cfg.n_mels}) {cfg.dtype}"
            )
        if record.labels.shape != (len(self.meta.vocabulary),):
            raise FatError(
                f"clip {record.clip_id!r}: labels {record.labels.shape} do not fit vocabulary"
            )
        self._buffer.append(encoded)
        self._buffered.add(record.clip_id)
        if (
            len(self._buffer) >= self._commit_every
            or time.monotonic() - self._last_commit >= self._commit_seconds
        ):
            self.commit()

    def _grow(self, name: str, rows: int) -> Any:
        array = self._backend.array(self.meta.name, name)
        if array.shape[0] < rows:
            chunk = array.chunks[0]
            new_rows = max(rows, 2 * array.shape[0])
            array.resize((math.ceil(new_rows / chunk) * chunk, *array.shape[1:]))
        return array

    def commit(self) -> None:
        """Write buffered clips past the committed end, then move the commit mark over them."""
        self._last_commit = time.monotonic()
        if not self._buffer:
            return
        clips, self._buffer = self._buffer, []
        self._buffered.clear()
        lengths = np.array([len(c.frames) for c in clips], dtype=np.int64)
        offsets = self.n_frames + np.concatenate([[0], np.cumsum(lengths)[:-1]])
        n0, n1 = self.n_clips, self.n_clips + len(clips)
        f0, f1 = self.n_frames, self.n_frames + int(lengths.sum())
        records = [c.record for c in clips]
        rows = {
            "offsets": offsets,
            "lengths": lengths.astype(np.int32),
            "ids": _encode_ids([r.clip_id for r in records]),
            "labels": np.stack([r.labels for r in records]).astype(np.uint8),
            "source": np.array(
                [[r.source_sample_rate, r.source_channels, r.source_duration_s] for r in records],
                dtype=np.float64,
            ),
            "checksums": np.array([c.checksum for c in clips], dtype=np.uint32),
        }
        self._grow("frames", f1)[f0:f1] = np.concatenate([c.frames for c in clips])
        for name, values in rows.items():
            self._grow(name, n1)[n0:n1] = values
        self._backend.sync()  # data before the commit mark, in this order, for every reader
        self._grow("commit", 2)[0:2] = np.array([n1, f1], dtype=np.int64)
        self._backend.sync()
        self.n_clips, self.n_frames = n1, f1
        self.committed.update(r.clip_id for r in records)
        if self._sums is not None:
            self._sums += sum(c.sums for c in clips)

    def update_stats(self) -> None:
        """Per-mel mean/std over all committed clips (from the running sums when they cover
        the split, else by reading every frame), and record which clips they cover."""
        if self._sums is not None:
            count = max(self.n_frames, 1)
            mean = self._sums[0] / count
            std = np.sqrt(np.maximum(self._sums[1] / count - mean**2, 0.0))
        else:
            mean, std = Split.open(self._backend, self.meta.name).compute_stats()
        self._grow("mel_stats", 2)[0:2] = np.stack([mean, std])
        self._backend.sync()
        self._grow("stats_for", 1)[0:1] = np.array([self.n_clips], dtype=np.int64)
        self._backend.sync()

    def close(self) -> None:
        self.commit()
        if self.n_clips:
            self.update_stats()

    def __enter__(self) -> "SplitWriter":
        return self

    def __exit__(self, exc_type, *_) -> None:
        if exc_type is None:
            self.close()
        else:
            self.commit()  # keep what was finished; stats can be refreshed by a later run


class FeatureStore:
    """A store on disk. `mode="r"` reads (also while a writer appends; call `refresh()` to see
    new commits); `mode="a"` creates or appends and holds the store's single-writer lock."""

    def __init__(self, path: Path | str, mode: str = "r", format: str | None = None):
        if mode not in ("r", "a"):
            raise ValueError(f"mode must be 'r' or 'a', got {mode!r}")
        self.path = Path(path)
        self.format = format_for(self.path, format)
        self.mode = mode
        self._lock: WriterLock | None = None
        backend_class = BACKENDS[self.format]
        if mode == "a":
            lock_path = backend_class.lock_path_for(self.path)
            lock_path.parent.mkdir(parents=True, exist_ok=True)
            self._lock = WriterLock(lock_path, self.path)
            self._lock.acquire()
            try:
                self.backend = backend_class(self.path, writable=True)
            except BaseException:
                self._lock.release()
                raise
        else:
            self.backend = backend_class(self.path, writable=False)
        self._splits: dict[str, Split] = {}

    def splits(self) -> list[str]:
        return self.backend.split_names()

    def __contains__(self, split: str) -> bool:
        return split in self.splits()

    def split(self, name: str) -> Split:
        if name not in self._splits:
            if name not in self.splits():
                have = ", ".join(self.splits()) or "none"
                raise FatError(f"{self.path}: no split {name!r} (splits: {have})")
            self._splits[name] = Split.open(self.backend, name)
        return self._splits[name]

    def refresh(self) -> None:
        """Forget cached views so the next `split()` sees the latest commit."""
        self.backend.refresh()
        self._splits.clear()

    def writer(
        self,
        split: str,
        feature_config: LogMelConfig,
        vocabulary: tuple[str, ...],
        labelled: bool = True,
        overwrite: bool = False,
        frames_chunk: int | None = None,
        compression: str = "none",
        commit_every: int = 64,
        on_create: Callable[[SplitMeta], None] | None = None,
    ) -> SplitWriter:
        """A writer for `split`: creates it, resumes it, or (`overwrite`) recreates it.

        Resuming a split made with other feature settings or vocabulary is refused."""
        if self.mode != "a":
            raise FatError(f"{self.path}: opened read-only; open with mode='a' to write")
        validate_clip_id(split)  # split names become group/file names: same rules as ids
        self._splits.pop(split, None)
        if split in self.splits() and not overwrite:
            meta = SplitMeta.from_dict(self.backend.meta(split))
            diffs = meta.feature_config.differences(feature_config)
            if diffs:
                raise FatError(
                    f"{self.path}: split {split!r} was made with other feature settings "
                    f"({'; '.join(diffs)}); use the same settings, another store, or --overwrite"
                )
            if meta.vocabulary != tuple(vocabulary):
                raise FatError(
                    f"{self.path}: split {split!r} has another label vocabulary "
                    f"({len(meta.vocabulary)} classes vs {len(vocabulary)}); use --overwrite"
                )
            if meta.labelled != labelled:
                made = "with" if meta.labelled else "without"
                raise FatError(
                    f"{self.path}: split {split!r} was made {made} labels; "
                    "use --overwrite to change that"
                )
        else:
            if compression not in COMPRESSIONS:
                raise FatError(f"unknown compression {compression!r} (none or zstd)")
            if self.format == "hdf5" and compression != "none":
                raise FatError("HDF5 stores are uncompressed; use a .zarr store for zstd")
            meta = SplitMeta(
                name=split,
                feature_config=feature_config,
                vocabulary=tuple(vocabulary),
                labelled=labelled,
                tool_version=__version__,
                created_utc=datetime.now(UTC).isoformat(timespec="seconds"),
                frames_chunk=frames_chunk or default_frames_chunk(self.format, compression),
                compression=compression,
            )
            self.backend.delete_split(split)
            self.backend.create_split(split, meta.to_dict(), _array_specs(meta), "commit")
            if on_create:
                on_create(meta)
        return SplitWriter(self.backend, meta, commit_every=commit_every)

    def delete_split(self, split: str) -> None:
        if self.mode != "a":
            raise FatError(f"{self.path}: opened read-only")
        self._splits.pop(split, None)
        self.backend.delete_split(split)

    def verify(
        self, check_data: bool = True, progress: Callable[[int], None] | None = None
    ) -> tuple[list[str], list[str]]:
        problems: list[str] = []
        notes: list[str] = []
        for name in self.splits():
            try:
                p, n = self.split(name).verify(check_data=check_data, progress=progress)
            except FatError:
                raise
            except Exception as e:  # unreadable arrays are exactly what verify must report
                p, n = [f"split {name}: unreadable ({type(e).__name__}: {e})"], []
            problems += p
            notes += n
        return problems, notes

    def disk_usage(self) -> int:
        return self.backend.disk_usage()

    def close(self) -> None:
        self.backend.close()
        if self._lock:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> "FeatureStore":
        return self

    def __exit__(self, *_) -> None:
        self.close()


def open_store(path: Path | str, mode: str = "r", format: str | None = None) -> FeatureStore:
    """Open (mode "a": create) a feature store; the format follows the suffix unless given."""
    return FeatureStore(path, mode=mode, format=format)
