"""Soft targets from a teacher (runs, CV directories, checkpoints: `fat.predict.ensemble`):
the teacher's probabilities sharpened or softened by a temperature, optionally blended with
the given labels; for the noisy split (`fat pseudo-label` -> `fat train --noisy-targets`)
and for every training split of a student (`fat train --teacher`, distillation)."""

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fat.core.errors import FatError
from fat.predict.ensemble import Source, predict_ensemble
from fat.predict.settings import PredictConfig
from fat.runs.checkpoint import load_trained_model

EPS = 1e-6


def sharpen(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Each probability's logit divided by `temperature`: below 1 pushes scores towards 0 and
    1 (sharper), above 1 towards 0.5; 1 leaves them."""
    if temperature <= 0:
        raise FatError(f"--temperature must be > 0, got {temperature}")
    p = np.clip(np.asarray(probs, np.float64), EPS, 1 - EPS)
    return 1 / (1 + np.exp(-np.log(p / (1 - p)) / temperature))


def soften(probs: np.ndarray, temperature: float, single_label: bool) -> np.ndarray:
    """`sharpen` for independent sigmoid scores; for a softmax over classes (single-label
    teachers), the softmax of log-probabilities over `temperature`, rows summing to 1."""
    if not single_label:
        return sharpen(probs, temperature)
    logits = np.log(np.clip(np.asarray(probs, np.float64), EPS, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    weights = np.exp(logits)
    return weights / weights.sum(axis=1, keepdims=True)


def teacher_targets(
    sources: Sequence[Source],
    split: str,
    store: Path | str | None = None,
    how: str = "mean",
    temperature: float = 1.0,
    blend: float = 0.0,
    cfg: PredictConfig | None = None,
    progress: bool = False,
) -> tuple[list[str], tuple[str, ...], np.ndarray]:
    """(clip ids, vocabulary, targets) for every clip of `split`: blend x the given labels +
    (1 - blend) x the teacher's probabilities softened by `temperature` (a softmax's
    as a softmax, sigmoids one by one)."""
    if not 0 <= blend <= 1:
        raise FatError(f"--blend must be in [0, 1], got {blend}")
    result = predict_ensemble(sources, split, store, how, None, cfg, progress)
    single_label = load_trained_model(*sources[0].members[0]).single_label
    soft = soften(result.probs, temperature, single_label)
    if blend:
        if result.labels is None:
            raise FatError(f"--blend: the {split} split has no labels to blend with")
        soft = blend * result.labels + (1 - blend) * soft
    return result.clip_ids, result.vocabulary, soft
