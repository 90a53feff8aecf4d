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


def write_tone(path: Path, seconds: float, freq: float, sr: int = 44100, subtype: str = "PCM_16"):
    import soundfile as sf

    t = np.arange(int(seconds * sr)) / sr
    noise = np.random.default_rng(int(freq)).normal(scale=0.01, size=t.shape)
    sf.write(path, 0.3 * np.sin(2 * np.pi * freq * t) + noise, sr, subtype=subtype)


def make_fsd_layout(root: Path, n_curated: int = 6, n_test: int = 3) -> Path:
    """A tiny FSDKaggle2019-style directory: curated + test splits of short tones."""
    vocab = official_vocabulary()
    root.mkdir(parents=True, exist_ok=True)
    for folder in ("train_curated", "train_noisy", "test"):
        (root / folder).mkdir(exist_ok=True)
    rows = ["fname,labels"]
    for i in range(n_curated):
        name = f"cur{i:03d}.wav"
        write_tone(root / "train_curated" / name, 0.5 + 0.25 * i, 200.0 * (i + 1))
        labels = [vocab[i % 80]] + ([vocab[(i + 7) % 80]] if i % 3 == 0 else [])
        rows.append(f'{name},"{",".join(labels)}"')
    (root / "train_curated.csv").write_text("\n".join(rows) + "\n")
    (root / "train_noisy.csv").write_text("fname,labels\n")
    sub = ["fname," + ",".join(vocab)]
    answers = ["fname,labels"]
    for i in range(n_test):
        name = f"test{i:03d}.wav"
        write_tone(root / "test" / name, 1.0, 300.0 * (i + 1))
        sub.append(name + "," + ",".join(["0"] * 80))
        answers.append(f"{name},{vocab[i]}")
    (root / "sample_submission.csv").write_text("\n".join(sub) + "\n")
    (root / "test_labels.csv").write_text("\n".join(answers) + "\n")
    return root
