"""Soft targets for the noisy split from a teacher (runs, CV directories, checkpoints:
`fat.predict.ensemble`): the teacher's probabilities sharpened or softened by a temperature,
optionally blended with the given labels, for `fat train --noisy-targets FILE`."""

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fat.core.errors import FatError
from fat.predict.ensemble import Source, predict_ensemble
from fat.predict.settings import PredictConfig

EPS = 1e-6


def sharpen(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Each probability's logit divided by `temperature`: below 1 pushes scores towards 0 and
    1 (sharper), above 1 towards 0.5; 1 leaves them."""
    if temperature <= 0:
        raise FatError(f"--temperature must be > 0, got {temperature}")
    p = np.clip(np.asarray(probs, np.float64), EPS, 1 - EPS)
    return 1 / (1 + np.exp(-np.log(p / (1 - p)) / temperature))


def noisy_targets(
    sources: Sequence[Source],
    store: Path | str | None = None,
    how: str = "mean",
    temperature: float = 1.0,
    blend: float = 0.0,
    cfg: PredictConfig | None = None,
    progress: bool = False,
) -> tuple[list[str], tuple[str, ...], np.ndarray]:
    """(clip ids, vocabulary, targets) for every clip of the noisy split: blend x the given
    labels + (1 - blend) x the teacher's sharpened probabilities."""
    if not 0 <= blend <= 1:
        raise FatError(f"--blend must be in [0, 1], got {blend}")
    result = predict_ensemble(sources, "noisy", store, how, None, cfg, progress)
    soft = sharpen(result.probs, temperature)
    if blend:
        if result.labels is None:
            raise FatError("--blend: the noisy split has no labels to blend with")
        soft = blend * result.labels + (1 - blend) * soft
    return result.clip_ids, result.vocabulary, soft
