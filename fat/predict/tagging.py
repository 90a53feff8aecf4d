"""`tag_files`: a trained run on audio files a user has, without a store of theirs.

Each file is decoded and featurized exactly as `fat featurize` would with the run's own
feature config (into a temporary store, so the stored dtype and every step match), then
scored with `predict_split`: the same sliding windows and TTA as `fat predict`. A file that
cannot be read is skipped with its reason."""

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fat.core.audio_files import audio_files_under, suffix_list
from fat.core.errors import FatError
from fat.core.progress import progress_bar
from fat.featurize.audio import AudioLimits
from fat.featurize.run import ClipFeaturizer
from fat.predict.scoring import embed_split, predict_frames, predict_split
from fat.predict.settings import PredictConfig
from fat.runs.checkpoint import TrainedModel, load_trained_model
from fat.store import Split, open_store

SPLIT = "tag"


@dataclass
class TagResult:
    vocabulary: tuple[str, ...]
    files: list[Path] = field(default_factory=list)  # the files scored, in order
    probs: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    frames: list[np.ndarray] | None = None  # per file, (T', n_classes), for frame models
    features: list[np.ndarray] = field(default_factory=list)  # per file, (n_mels, T)
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    def top(self, k: int, threshold: float = 0.0) -> list[list[tuple[str, float]]]:
        """Per file, its best `k` labels scoring at least `threshold`, best first."""
        out = []
        for row in self.probs:
            best = np.argsort(-row, kind="stable")[:k]
            out.append([(self.vocabulary[j], float(row[j])) for j in best if row[j] >= threshold])
        return out


def audio_files(paths: list[Path]) -> list[Path]:
    """The files named and every audio file under the folders named, in sorted order."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += audio_files_under(p)
        elif p.exists():
            files.append(p)
        else:
            raise FatError(f"{p}: no such file or folder")
    if not files:
        raise FatError(f"no audio files ({suffix_list()}) in " + ", ".join(map(str, paths)))
    return files


@contextmanager
def featurized_files(
    trained: TrainedModel, paths: list[Path], progress: bool = False, max_seconds: float = 600.0
) -> Iterator[tuple[Split | None, list[Path], list[tuple[Path, str]]]]:
    """(split, files, skipped): the audio files under `paths` featurized with the run's own
    feature config into a temporary store (None when no file could be read), the files in
    its clip order, and each file skipped with its reason."""
    files, skipped = [], []
    featurize = ClipFeaturizer(trained.feature_config, limits=AudioLimits(max_seconds=max_seconds))
    no_labels = np.zeros(len(trained.vocabulary), np.uint8)
    with tempfile.TemporaryDirectory(prefix="fat-tag-") as tmp:
        store_path = Path(tmp) / "tag.zarr"
        with open_store(store_path, "a") as store:
            writer = store.writer(SPLIT, trained.feature_config, trained.vocabulary, False)
            with writer:
                bar = progress_bar(audio_files(paths), desc="featurize", unit="file", show=progress)
                for k, path in enumerate(bar):
                    done = featurize(f"file{k:07d}", path, no_labels)  # ids any name can take
                    if done.error:
                        skipped.append((path, done.error))
                        continue
                    writer.add(done.clip)
                    files.append(path)
        if not files:
            yield None, files, skipped
            return
        with open_store(store_path) as store:
            yield store.split(SPLIT), files, skipped


def tag_files(
    run: Path | str,
    paths: list[Path],
    cfg: PredictConfig | None = None,
    frames: bool = False,
    progress: bool = False,
    max_seconds: float = 600.0,
) -> TagResult:
    """Every audio file under `paths` scored with the run as `fat predict` scores a clip;
    files longer than `max_seconds` (by their header) are skipped with the reason."""
    cfg = cfg or PredictConfig()
    trained = load_trained_model(run, cfg.checkpoint)
    result = TagResult(trained.vocabulary)
    files = featurized_files(trained, paths, progress, max_seconds)
    with files as (split, result.files, result.skipped):
        if split is None:
            return result
        result.probs = predict_split(trained, split, cfg, progress=progress)
        result.features = [np.asarray(split.read(i), np.float32) for i in range(len(split))]
        if frames:
            result.frames = predict_frames(trained, split, cfg)
    return result


def embed_files(
    run: Path | str,
    paths: list[Path],
    cfg: PredictConfig | None = None,
    progress: bool = False,
    max_seconds: float = 600.0,
) -> tuple[np.ndarray, list[Path], list[tuple[Path, str]]]:
    """(embeddings (n, D), the files embedded, the files skipped with their reason): what
    `embed_split` gives for a store, for audio files, featurized as `tag_files` does."""
    cfg = cfg or PredictConfig()
    trained = load_trained_model(run, cfg.checkpoint)
    with featurized_files(trained, paths, progress, max_seconds) as (split, files, skipped):
        if split is None:
            raise FatError(
                "no audio file could be read: " + "; ".join(f"{p}: {r}" for p, r in skipped)
            )
        return embed_split(trained, split, cfg, progress=progress), files, skipped
