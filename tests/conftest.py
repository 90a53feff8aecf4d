"""Shared fixtures: small real stores built from deterministic synthetic log-mel clips."""

from pathlib import Path

import numpy as np
import pytest

from fat.config import LogMelConfig
from fat.labels import official_vocabulary
from fat.store import ClipRecord, open_store

SMALL_CONFIG = LogMelConfig(n_mels=16)


def synthetic_clip(i: int, n_mels: int = 16, n_classes: int = 80) -> ClipRecord:
    """Clip number `i`: content is a pure function of `i`, so any process can re-derive it."""
    rng = np.random.default_rng(i)
    n_frames = int(rng.integers(3, 700))
    features = (rng.normal(size=(n_mels, n_frames)) * 20 - 40).astype(np.float16)
    labels = np.zeros(n_classes, dtype=np.uint8)
    labels[rng.choice(n_classes, size=int(rng.integers(1, 3)), replace=False)] = 1
    return ClipRecord(f"clip{i:05d}.wav", features, labels, 44100, 1 + i % 2, n_frames / 127)


def build_store(path: Path, n_clips: int, split: str = "curated", **writer_kw) -> list[ClipRecord]:
    clips = [synthetic_clip(i) for i in range(n_clips)]
    with open_store(path, "a") as store:
        with store.writer(split, SMALL_CONFIG, official_vocabulary(), **writer_kw) as writer:
            for clip in clips:
                writer.add(clip)
    return clips


@pytest.fixture(params=["zarr", "h5"])
def store_path(request, tmp_path) -> Path:
    return tmp_path / f"features.{request.param}"
