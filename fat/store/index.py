"""The typed index of a split at one commit: where each clip's frames are, its id, labels and
source facts. Readers hold it in RAM (~0.2 KB per clip) and trust nothing past the commit."""

from dataclasses import dataclass

import numpy as np

from fat.store.backends import Backend
from fat.store.layout import COMMIT_ARRAY, decode_ids


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

    @property
    def n_clips(self) -> int:
        return len(self.clip_ids)

    @classmethod
    def read(cls, backend: Backend, split: str) -> "SplitIndex":
        """The index as of the split's last commit; rows past it are ignored."""

        def rows(array: str, n: int) -> np.ndarray:
            return np.asarray(backend.array(split, array)[:n])

        commit = rows(COMMIT_ARRAY, 2)
        n_clips, n_frames = (int(commit[0]), int(commit[1])) if len(commit) == 2 else (0, 0)
        stats_for = rows("stats_for", 1)
        stats = None
        if len(stats_for) and int(stats_for[0]) == n_clips and n_clips > 0:
            mel_stats = rows("mel_stats", 2)
            stats = (mel_stats[0], mel_stats[1])
        return cls(
            n_frames=n_frames,
            offsets=rows("offsets", n_clips).astype(np.int64),
            lengths=rows("lengths", n_clips).astype(np.int64),
            clip_ids=decode_ids(rows("ids", n_clips)),
            labels=rows("labels", n_clips),
            source=rows("source", n_clips),
            checksums=rows("checksums", n_clips),
            stats=stats,
        )
