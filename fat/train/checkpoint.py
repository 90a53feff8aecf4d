"""Checkpoints: everything to resume a run exactly or to predict with nothing else at hand.

Saved with torch.save and read back with `weights_only=True`, so loading a checkpoint cannot
run code: only tensors, numbers, strings, lists and dicts go in.
"""

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fat.config import LogMelConfig
from fat.errors import FatError
from fat.train.config import TrainConfig
from fat.train.data import Normalizer

FORMAT = 1
KINDS = ("best", "last", "swa")


def checkpoint_path(run_dir: Path | str, kind: str) -> Path:
    return Path(run_dir) / "checkpoints" / f"{kind}.pt"


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write to a temporary file and rename, so a kill never leaves a half-written checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".pt.tmp")
    torch.save({"format": FORMAT, **state}, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise FatError(f"{path}: no such checkpoint")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a damaged or foreign file
        raise FatError(f"{path}: not a readable fat checkpoint ({type(e).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise FatError(f"{path}: not a fat checkpoint of format {FORMAT}")
    return state


def run_identity(
    config: TrainConfig,
    feature_config: LogMelConfig,
    vocabulary: tuple[str, ...],
    normalizer: Normalizer,
) -> dict[str, Any]:
    """The part of every checkpoint that says what the model is and what it expects as input."""
    return {
        "config": config.to_dict(),
        "feature_config": feature_config.to_dict(),
        "vocabulary": list(vocabulary),
        "normalizer": {
            "mean": torch.from_numpy(normalizer.mean),
            "std": torch.from_numpy(normalizer.std),
        },
    }


@dataclass
class TrainedModel:
    """A model restored from a run, with what prediction needs to feed it."""

    model: torch.nn.Module
    config: TrainConfig
    feature_config: LogMelConfig
    vocabulary: tuple[str, ...]
    normalizer: Normalizer
    epoch: int
    kind: str


def load_trained_model(run_dir: Path | str, kind: str = "best") -> TrainedModel:
    from fat.train.models import create_model

    if kind not in KINDS:
        raise FatError(f"checkpoint must be one of {KINDS}, got {kind!r}")
    path = checkpoint_path(run_dir, kind)
    if not path.exists() and kind == "swa":
        raise FatError(f"{path}: run has no SWA checkpoint (train with --swa-start)")
    state = load_checkpoint(path)
    config = TrainConfig.from_dict(state["config"])
    feature_config = LogMelConfig.from_dict(state["feature_config"])
    vocabulary = tuple(state["vocabulary"])
    model = create_model(
        config.arch, feature_config.n_mels, len(vocabulary), config.width, **config.model_kwargs
    )
    model.load_state_dict(state["model"])
    model.eval()
    norm = state["normalizer"]
    normalizer = Normalizer(
        np.asarray(norm["mean"].numpy(), np.float32), np.asarray(norm["std"].numpy(), np.float32)
    )
    return TrainedModel(
        model, config, feature_config, vocabulary, normalizer, int(state["epoch"]), kind
    )
