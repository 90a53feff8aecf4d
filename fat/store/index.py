"""The typed index of a split at one commit: where each clip's frames are, its id, labels and
source facts. Readers hold it in RAM (~0.2 KB per clip) and trust nothing past the commit."""

from dataclasses import dataclass

import numpy as np

from fat.core.errors import FatError
from fat.core.ids import check_clip_id
from fat.store.backends import Backend
from fat.store.layout import COMMIT_ARRAY, decode_ids, decode_info


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
    def read(cls, backend: Backend, split: str) -> "SplitIndex":
        """The index as of the split's last commit; rows past it are ignored. FatError for a
        clip id that is not a valid one: such a store is damaged or was not made by fat."""

        def rows(array: str, n: int) -> np.ndarray:
            return np.asarray(backend.array(split, array)[:n])

        commit = rows(COMMIT_ARRAY, 4)
        n_clips, n_frames = (int(commit[0]), int(commit[1])) if len(commit) >= 2 else (0, 0)
        previous = (int(commit[2]), int(commit[3])) if len(commit) == 4 else None
        stored = backend.array(split, "offsets").shape[0], backend.array(split, "frames").shape[0]
        if not (0 <= n_clips <= stored[0] and 0 <= n_frames <= stored[1]):
            raise FatError(
                f"commit mark ({n_clips} clips, {n_frames} frames) outside the "
                f"arrays ({stored[0]} rows, {stored[1]} frames); the store is damaged"
            )
        if previous is not None and not (
            0 <= previous[0] <= n_clips and 0 <= previous[1] <= n_frames
        ):
            previous = None  # a damaged previous mark only disables the re-verification
        stats_for = rows("stats_for", 1)
        stats = None
        if len(stats_for) and int(stats_for[0]) == n_clips and n_clips > 0:
            mel_stats = rows("mel_stats", 2)
            stats = (mel_stats[0], mel_stats[1])
        clip_ids = decode_ids(rows("ids", n_clips))
        for i, clip_id in enumerate(clip_ids):
            reason = check_clip_id(clip_id)
            if reason:
                raise FatError(f"clip {i}: {reason}; the store is damaged")
        return cls(
            n_frames=n_frames,
            offsets=rows("offsets", n_clips).astype(np.int64),
            lengths=rows("lengths", n_clips).astype(np.int64),
            clip_ids=clip_ids,
            labels=rows("labels", n_clips),
            source=rows("source", n_clips),
            checksums=rows("checksums", n_clips),
            stats=stats,
            previous=previous,
            info_rows=rows("info", n_clips) if backend.meta(split).get("info_bytes") else None,
        )
