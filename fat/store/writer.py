"""Writing clips into a split: `encode_clip` (pure, on any thread) and `SplitWriter` (commits)."""

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fat.core.errors import FatError
from fat.core.ids import validate_clip_id
from fat.store.backends import Backend
from fat.store.index import DamagedIndex, SplitIndex, last_good_commit
from fat.store.layout import (
    COMMIT_ARRAY,
    SplitMeta,
    checksum,
    encode_ids,
    encode_info,
    mel_stats_from_sums,
)
from fat.store.reader import Split


@dataclass(frozen=True)
class ClipRecord:
    """One featurized clip, as handed to a writer."""

    clip_id: str
    features: np.ndarray  # (n_mels, n_frames)
    labels: np.ndarray  # (n_classes,) multi-hot
    source_sample_rate: int
    source_channels: int
    source_duration_s: float
    info: dict[str, Any] = field(default_factory=dict)  # the data set's facts: fold, source id


@dataclass(frozen=True)
class EncodedClip:
    """A clip in the store's row layout plus what a commit records about it.

    Made by `encode_clip`, which is pure and thread-safe: featurize's workers encode in
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
        facts = (
            r.clip_id, r.labels, r.source_sample_rate, r.source_channels, r.source_duration_s,
            r.info,
        )  # fmt: skip
        return _unpickle_encoded_clip, (facts, self.frames, self.checksum, self.sums)


def _unpickle_encoded_clip(facts: tuple, frames: np.ndarray, checksum: int, sums: np.ndarray):
    clip_id, labels, sample_rate, channels, duration_s, info = facts
    record = ClipRecord(clip_id, frames.T, labels, sample_rate, channels, duration_s, info)
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


class SplitWriter:
    """Appends clips to a split in commits of `commit_every` clips (or every `commit_seconds`).

    Opening a writer on an existing split resumes it: `committed` holds the ids already there,
    and new clips go after the last commit, whose clips are verified first (`recovery` says
    what was rolled back, if anything). Use as a context manager; `close()` commits what is
    buffered and refreshes the split's mel statistics. A failed write is a FatError that
    leaves the split at its last commit.
    """

    def __init__(
        self,
        backend: Backend,
        meta: SplitMeta,
        group: str | None = None,
        commit_every: int = 64,
        commit_seconds: float = 5.0,
        on_complete: Callable[[], None] | None = None,
    ):
        """`group`: where in the store the split's arrays are (default its name);
        `on_complete`: called once the writer has closed without an error."""
        self._backend = backend
        self.meta = meta
        self._group = group or meta.name
        self._on_complete = on_complete
        self._commit_every = commit_every
        self._commit_seconds = commit_seconds
        index, damage = self._read_index()
        self.recovery = damage or self._verify_last_commit(index)
        index = SplitIndex.read(backend, self._group, meta)
        self.committed: set[str] = set(index.clip_ids)
        self.n_clips = index.n_clips
        self.n_frames = index.n_frames
        self._buffer: list[EncodedClip] = []
        self._buffered: set[str] = set()
        self._last_commit = time.monotonic()
        # Per-mel running sums over the clips this writer committed. When it started on an
        # empty split they cover the whole split, and closing needs no second pass over the
        # frames; a resumed split gets the full pass (its earlier clips' sums are not kept).
        n_mels = meta.feature_config.n_mels
        self._sums = np.zeros((2, n_mels)) if self.n_clips == 0 else None
        self._failed = False

    def _read_index(self) -> tuple[SplitIndex, str | None]:
        """The split's index, and None; or, for a split whose index points outside its arrays,
        the index after the commit mark moved back to its last good commit (`last_good_commit`)
        and what was done. Only a writer, which holds the store's lock, may move the mark: a
        reader just reports the damage."""
        try:
            return SplitIndex.read(self._backend, self._group, self.meta), None
        except DamagedIndex as e:
            damage = str(e)
        n, frames = last_good_commit(self._backend, self._group, self.meta)
        self._grow(COMMIT_ARRAY, 4)[0:4] = np.array([n, frames, n, frames], dtype=np.int64)
        self._backend.sync()
        return SplitIndex.read(self._backend, self._group, self.meta), (
            f"the split was damaged ({damage}); rolled back to its last good commit of {n} clips"
        )

    def _verify_last_commit(self, index: SplitIndex) -> str | None:
        """Re-read the clips of the last commit against their checksums, and move the commit
        mark back to the previous one if any does not match: the storage acknowledged writes it
        then lost (HDF5 on a full disk). Only those clips are read, so this is cheap."""
        if index.previous is None or index.previous[0] >= index.n_clips:
            return None
        n0, f0 = index.previous
        split = Split(self.meta, self._backend.array(self._group, "frames"), index)
        for clip in range(n0, index.n_clips):
            try:
                intact = checksum(split.read(clip).T) == int(index.checksums[clip])
            except Exception:  # noqa: BLE001 - damaged rows fail in many ways; all mean "lost"
                intact = False
            if not intact:
                self._grow(COMMIT_ARRAY, 4)[0:4] = np.array([n0, f0, n0, f0], dtype=np.int64)
                self._backend.sync()
                return (
                    f"the last commit's {index.n_clips - n0} clips did not read back intact "
                    f"(clip {index.clip_ids[clip]} first); rolled back to the {n0} before it"
                )
        return None

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
        if record.info and self.meta.info_bytes:
            try:
                encode_info([record.info], self.meta.info_bytes)
            except FatError as e:
                raise FatError(f"clip {record.clip_id!r}: {e}") from None
        self._buffer.append(encoded)
        self._buffered.add(record.clip_id)
        if (
            len(self._buffer) >= self._commit_every
            or time.monotonic() - self._last_commit >= self._commit_seconds
        ):
            self.commit()

    @contextmanager
    def _writes(self) -> Iterator[None]:
        """A failed write (a full disk, an I/O error) as one FatError; the writer then writes
        nothing more, so the split stays at its last commit."""
        try:
            yield
        except (OSError, RuntimeError) as e:  # h5py reports write errors as either
            self._failed = True
            self._discard_uncommitted()
            reason = _write_error_reason(e)
            raise FatError(
                f"{self._backend.path}: cannot write split {self.meta.name!r} ({reason}); it "
                f"keeps its last commit of {self.n_clips} clips: free space or fix the disk, "
                "then rerun to continue"
            ) from None

    def _discard_uncommitted(self) -> None:
        """Shrink every array to its committed rows, so no unwritable data past the commit is
        left in a cache that closing the store would try to flush again."""
        committed = {"frames": self.n_frames, "mel_stats": 2, "stats_for": 1, COMMIT_ARRAY: 4}
        for name in self.meta.array_specs():
            array = self._backend.array(self._group, name)
            rows = committed.get(name, self.n_clips)
            try:
                if array.shape[0] > rows:
                    array.resize((rows, *array.shape[1:]))
            except (OSError, RuntimeError):
                pass  # best effort: the commit mark is what protects the data

    def _grow(self, name: str, rows: int) -> Any:
        array = self._backend.array(self._group, name)
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
            "ids": encode_ids([r.clip_id for r in records]),
            "labels": np.stack([r.labels for r in records]).astype(np.uint8),
            "source": np.array(
                [[r.source_sample_rate, r.source_channels, r.source_duration_s] for r in records],
                dtype=np.float64,
            ),
            "checksums": np.array([c.checksum for c in clips], dtype=np.uint32),
        }
        if self.meta.info_bytes:
            rows["info"] = encode_info([r.info for r in records], self.meta.info_bytes)
        with self._writes():
            self._grow("frames", f1)[f0:f1] = np.concatenate([c.frames for c in clips])
            for name, values in rows.items():
                self._grow(name, n1)[n0:n1] = values
            self._backend.sync()  # data before the commit mark, in this order, for every reader
            mark = self._grow(COMMIT_ARRAY, 4)
            mark[2:4] = np.array([n0, f0], dtype=np.int64)  # the commit this one follows
            self._backend.sync()
            mark[0:2] = np.array([n1, f1], dtype=np.int64)
            self._backend.sync()
        self.n_clips, self.n_frames = n1, f1
        self.committed.update(r.clip_id for r in records)
        if self._sums is not None:
            self._sums += sum(c.sums for c in clips)

    def update_stats(self) -> None:
        """Per-mel mean/std over all committed clips (from the running sums when they cover
        the split, else by reading every frame), and record which clips they cover."""
        if self._sums is not None:
            mean, std = mel_stats_from_sums(self._sums, self.n_frames)
        else:
            mean, std = Split.open(self._backend, self._group).compute_stats()
        with self._writes():
            self._grow("mel_stats", 2)[0:2] = np.stack([mean, std])
            self._backend.sync()
            self._grow("stats_for", 1)[0:1] = np.array([self.n_clips], dtype=np.int64)
            self._backend.sync()

    def close(self) -> None:
        if self._failed:
            return
        self.commit()
        if self.n_clips:
            self.update_stats()
        if self._on_complete is not None:
            self._on_complete()
            self._on_complete = None

    def __enter__(self) -> "SplitWriter":
        return self

    def __exit__(self, exc_type, *_) -> None:
        if exc_type is None:
            self.close()
        elif not self._failed:
            self.commit()  # keep what was finished; stats can be refreshed by a later run


def _write_error_reason(error: Exception) -> str:
    """The operating system's reason from an OSError or from h5py's long HDF5 message."""
    if getattr(error, "strerror", None):
        return error.strerror
    text = " ".join(str(error).split())
    marker = "error message = '"
    if marker in text:
        return text.split(marker, 1)[1].split("'", 1)[0]
    return text[:200]
