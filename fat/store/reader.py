"""`Split`: a read view of one split at its last commit, on disk or in RAM."""

import mmap
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from fat.core.errors import FatError
from fat.core.features import LogMelConfig
from fat.store.backends import Backend
from fat.store.direct import ChunkFiles
from fat.store.index import SplitIndex
from fat.store.layout import SplitMeta, mel_stats_from_sums


def empty_populated(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """An uninitialised array whose memory the kernel maps in one go (MAP_POPULATE) where it
    can: numpy's page-by-page first touch, asking for huge pages, ran ~7x slower on the
    development VM (the kernel compacts memory to find them); see BENCHMARKS.md."""
    size = int(np.prod(shape)) * np.dtype(dtype).itemsize
    populate = getattr(mmap, "MAP_POPULATE", 0)
    if not populate or size < 1 << 26:
        return np.empty(shape, dtype)
    flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | populate
    return np.frombuffer(mmap.mmap(-1, size, flags=flags), dtype).reshape(shape)


class Split:
    """A read view of one split: its metadata, its index and a handle on its frames.

    `load()` gives the same view with the frames in RAM. A view on disk pickles as a way to
    reopen it (`reopen`), so a process that receives it (a DALI worker) opens its own handle
    instead of sharing one; a view in RAM pickles with its frames. `generation_now` reads the
    generation the store holds for this split now (`check_current`)."""

    def __init__(
        self,
        meta: SplitMeta,
        frames: Any,
        index: SplitIndex,
        reopen: Callable[[], "Split"] | None = None,
        generation_now: Callable[[], str] | None = None,
        direct: ChunkFiles | None = None,
        bulk: Any = None,
    ):
        self.meta = meta
        self.index = index
        self._frames = frames
        self._direct = direct
        self._bulk = bulk  # `Backend.bulk_frames`: what load() reads with, if not `direct`
        self._reopen = reopen
        self._generation_now = generation_now
        self._position = {clip_id: i for i, clip_id in enumerate(index.clip_ids)}
        # Plain attributes and Python ints for the per-crop hot path: no property chains or
        # numpy scalars there.
        self._n_clips = index.n_clips
        self._offset_list: list[int] = index.offsets.tolist()
        self._length_list: list[int] = index.lengths.tolist()

    @classmethod
    def open(cls, backend: Backend, name: str, reopen: Callable[[], "Split"] | None = None):
        meta = SplitMeta.from_dict(backend.meta(name))
        index = SplitIndex.read(backend, name, meta)

        def generation_now() -> str:
            return str(backend.meta(name).get("generation") or meta.generation)

        frames = backend.array(name, "frames")
        direct = backend.direct_frames(name)
        bulk = None if direct is not None else backend.bulk_frames(name)
        return cls(meta, frames, index, reopen, generation_now, direct, bulk)

    def check_current(self) -> None:
        """FatError when the store no longer holds this split (it was replaced or deleted
        since this view was opened): frames read since could belong to another split. Views in
        RAM are always current."""
        if self._generation_now is None:
            return
        try:
            now = self._generation_now()
        except Exception:  # noqa: BLE001 - a split deleted under us fails in format-specific ways
            now = None
        if now != self.meta.generation:
            raise FatError(
                f"split {self.name!r} was replaced or deleted while this process read it "
                "(`--overwrite` by another process?); start again to read the current one"
            )

    def __reduce__(self):
        if self.in_memory or self._reopen is None:
            return Split, (self.meta, self._frames, self.index)
        return _reopened, (self._reopen, self.meta.generation)

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
    def n_clips(self) -> int:
        return self._n_clips

    @property
    def n_frames(self) -> int:
        return self.index.n_frames

    @property
    def offsets(self) -> np.ndarray:
        return self.index.offsets

    @property
    def lengths(self) -> np.ndarray:
        return self.index.lengths

    @property
    def clip_ids(self) -> list[str]:
        return self.index.clip_ids

    @property
    def labels(self) -> np.ndarray:
        return self.index.labels

    @property
    def source(self) -> np.ndarray:
        return self.index.source

    @property
    def checksums(self) -> np.ndarray:
        return self.index.checksums

    def info(self, clip: int) -> dict:
        """The data set's facts about clip number `clip` (fold, source id, ...); {} if none."""
        return self.index.info(clip)

    @property
    def single_label(self) -> bool:
        """Every clip has exactly one label, as the data set says (ESC-50, a folder per class)."""
        return self.meta.single_label

    @property
    def dataset(self) -> str:
        return self.meta.dataset

    @property
    def stats(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Per-mel (mean, std) over the split, or None when not computed for the current clips."""
        return self.index.stats

    @property
    def frames_shape(self) -> tuple[int, ...]:
        """Shape of the whole frames array (on disk it may hold rows past the commit)."""
        return tuple(self._frames.shape)

    @property
    def frames_chunks(self) -> tuple[int, ...]:
        """Chunk shape of the frames array (the whole array when in memory)."""
        return tuple(getattr(self._frames, "chunks", None) or self._frames.shape)

    @property
    def in_memory(self) -> bool:
        return isinstance(self._frames, np.ndarray)

    @property
    def gathers(self) -> bool:
        """Whether `gather_rows` works: in RAM, by direct chunk reads, or through zarr (an HDF5
        split on disk reads crop by crop instead)."""
        return self.in_memory or self._direct is not None or hasattr(self._frames, "oindex")

    @property
    def direct(self) -> ChunkFiles | None:
        """The direct chunk reader of a split on disk, when its layout allows one."""
        return self._direct

    @property
    def durations(self) -> np.ndarray:
        """Duration in seconds of each clip's original audio."""
        return self.source[:, 2] if self.n_clips else np.zeros(0)

    @property
    def hours(self) -> float:
        return float(self.durations.sum() / 3600)

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
        i = clip if type(clip) is int and 0 <= clip < self._n_clips else self.index_of(clip)
        if start < 0 or length <= 0 or start + length > self._length_list[i]:
            raise FatError(
                f"crop [{start}, {start + length}) outside clip {self.clip_ids[i]!r} "
                f"of {self._length_list[i]} frames"
            )
        first = self._offset_list[i] + start
        return self._frames[first : first + length].T

    def iter_blocks(self, rows: int = 1 << 16) -> Iterator[tuple[int, np.ndarray]]:
        """The committed frames in large sequential blocks of at most `rows` rows and 64 MiB:
        (first row, block)."""
        cfg = self.feature_config
        rows = max(1, min(rows, (64 << 20) // (cfg.n_mels * np.dtype(cfg.dtype).itemsize)))
        for lo in range(0, self.n_frames, rows):
            yield lo, self.read_rows(lo, min(lo + rows, self.n_frames))

    def compute_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-mel mean and std over every committed frame (float64 accumulation)."""
        sums = np.zeros((2, self.feature_config.n_mels))
        for _, block in self.iter_blocks():
            block = block.astype(np.float64)
            sums[0] += block.sum(axis=0)
            sums[1] += np.square(block).sum(axis=0)
        return mel_stats_from_sums(sums, self.n_frames)

    def nbytes(self) -> int:
        cfg = self.feature_config
        return self.n_frames * cfg.n_mels * np.dtype(cfg.dtype).itemsize

    def gather_rows(self, rows: np.ndarray) -> np.ndarray:
        """Frames at any array of row indices of the concatenated frames, in one vectorised
        gather: in RAM, by direct chunk reads on disk, else through zarr (each chunk the rows
        touch read once, concurrently: a compressed or remote store)."""
        if self.in_memory:
            return self._frames[rows]
        if self._direct is not None:
            return self._direct.gather(rows)
        if not self.gathers:
            raise FatError(
                f"split {self.name!r}: no vectorised reads for this layout (HDF5 on disk); "
                "read crops one by one or load() it"
            )
        rows = np.asarray(rows)
        flat = self._frames.oindex[rows.ravel(), :]
        return flat.reshape(*rows.shape, flat.shape[-1])

    def with_frames(self, frames: np.ndarray) -> "Split":
        """This split's index over other frames in RAM of the same shape (e.g. normalised)."""
        if frames.shape != (self.n_frames, self.feature_config.n_mels):
            raise ValueError(f"frames {frames.shape} do not fit split {self.name!r}")
        return Split(self.meta, frames, self.index)

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
        cfg = self.feature_config
        frames = empty_populated((self.n_frames, cfg.n_mels), cfg.dtype)
        reader = self._direct or self._bulk
        if reader is not None:  # straight from the chunk files (or objects) into the array
            reader.read_into(0, frames)
        else:
            for lo, block in self.iter_blocks():
                frames[lo : lo + len(block)] = block
        self.check_current()
        return self.with_frames(frames)


def _reopened(reopen: Callable[[], Split], generation: str) -> Split:
    """The split `reopen` opens, which must be the same generation as the one pickled: a split
    replaced in the meantime would be read through the wrong index."""
    split = reopen()
    if split.meta.generation != generation:
        raise FatError(
            f"split {split.name!r} was replaced since this process first opened it; start again"
        )
    return split
