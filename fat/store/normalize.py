"""Per-mel standardisation with the training splits' statistics: what every model reads, applied
on the model's device to the raw crops the store gives."""

from dataclasses import dataclass
from typing import Any

import numpy as np

from fat.store.reader import Split

STD_FLOOR = 1e-3  # a constant mel band (e.g. above a low sample rate's Nyquist) has std 0


@dataclass(frozen=True)
class Normalizer:
    """Per-mel mean and std, kept with the run that learned on them."""

    mean: np.ndarray  # (n_mels,) float32
    std: np.ndarray  # (n_mels,) float32

    @classmethod
    def from_splits(cls, splits: list[Split]) -> "Normalizer":
        """Pooled mean/std over the splits' frames, from each split's stored statistics."""
        n = np.array([s.n_frames for s in splits], dtype=np.float64)
        stats = [s.stats if s.stats is not None else s.compute_stats() for s in splits]
        means = np.stack([m for m, _ in stats])
        second = np.stack([sd**2 + m**2 for m, sd in stats])
        mean = (n[:, None] * means).sum(0) / n.sum()
        var = (n[:, None] * second).sum(0) / n.sum() - mean**2
        std = np.maximum(np.sqrt(np.maximum(var, 0)), STD_FLOOR)
        return cls(mean.astype(np.float32), std.astype(np.float32))

    def to_dict(self) -> dict[str, list[float]]:
        """As runs save it (inputs.json and checkpoints): plain lists, loadable without code."""
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, saved: dict[str, Any]) -> "Normalizer":
        """From `to_dict`'s form (lists), or the tensors older checkpoints hold."""
        return cls(np.asarray(saved["mean"], np.float32), np.asarray(saved["std"], np.float32))

    def apply(self, frames: np.ndarray) -> np.ndarray:
        """(..., n_mels) raw frames -> normalised float32 (the reference of what models get;
        training and prediction normalise on their device, `fat.predict.inference`)."""
        return (frames.astype(np.float32) - self.mean) / self.std
