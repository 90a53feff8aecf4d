"""Checkpoints: everything to resume a run exactly or to predict with nothing else at hand.

Saved with torch.save and read back with `weights_only=True`, so loading a checkpoint cannot
run code: only tensors, numbers, strings, lists and dicts go in. Every checkpoint carries the
run's identity: its experiment settings, feature settings, vocabulary and normalisation.
"""

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from fat.core.errors import FatError
from fat.core.features import LogMelConfig
from fat.core.files import atomic_write
from fat.models import TaggingModel, create_model
from fat.models.pretrained import load_tensors
from fat.runs.directory import SNAPSHOT, RunDirectory
from fat.runs.settings import ExperimentConfig
from fat.store.normalize import Normalizer

FORMAT = 2  # 2: "experiment" apart from the run options (1 held both as "config")


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Written beside `path`, fsynced, then renamed over it: a kill or a power cut during the
    save leaves the previous checkpoint of that name whole."""
    # Serialised in memory first: torch's writer turns a failed file write (a full disk) into
    # "unexpected pos"; a plain write keeps the OSError for atomic_write to report.
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, **state}, buffer)
    with atomic_write(path, "wb") as f:
        f.write(buffer.getbuffer())


def load_checkpoint(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise FatError(f"{path}: no such checkpoint")
    state = load_tensors(path, str(path))
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise FatError(f"{path}: not a fat checkpoint of format {FORMAT}")
    return state


def saved_experiment(state: dict[str, Any], path: Path) -> ExperimentConfig:
    """The experiment a checkpoint carries, checked like any settings; FatError naming the
    checkpoint when they are not acceptable (a crafted or damaged file)."""
    try:
        return ExperimentConfig.from_dict(state["experiment"])
    except FatError as e:
        raise FatError(f"{path}: {e}") from None


def run_identity(
    experiment: ExperimentConfig,
    feature_config: LogMelConfig,
    vocabulary: tuple[str, ...],
    normalizer: Normalizer,
    single_label: bool = False,
) -> dict[str, Any]:
    """The part of every checkpoint that says what the model is and what it expects as input,
    and whether its probabilities are a softmax (`single_label`)."""
    return {
        "experiment": experiment.to_dict(),
        "feature_config": feature_config.to_dict(),
        "vocabulary": list(vocabulary),
        "normalizer": normalizer.to_dict(),
        "single_label": single_label,
    }


@dataclass
class TrainedModel:
    """A model restored from a checkpoint, with what prediction needs to feed it."""

    model: torch.nn.Module
    experiment: ExperimentConfig
    feature_config: LogMelConfig
    vocabulary: tuple[str, ...]
    normalizer: Normalizer
    epoch: int
    kind: str
    run: RunDirectory
    validation_ids: dict[str, list[str]] | None = None  # per split, the clips held out

    @property
    def single_label(self) -> bool:
        """Trained with softmax cross-entropy: its probabilities are a softmax over classes."""
        return bool(getattr(self.model, "single_label", False))

    def store(self) -> str:
        """The store the run trained from, wherever it is now (`RunDirectory.store`)."""
        return self.run.store()


def build_model(
    experiment: ExperimentConfig, n_mels: int, n_classes: int, single_label: bool = False
) -> TaggingModel:
    """The untrained network of `experiment`: its arch, width and settings, with the
    noisy-clip head when it trains one, giving a softmax when `single_label`; the one place a
    run's model is made."""
    model = create_model(
        experiment.arch, n_mels, n_classes, experiment.width, **experiment.model_kwargs
    )
    model.single_label = single_label
    if experiment.noisy_head:
        model.add_noisy_head()
    return model


def load_trained_model(run_dir: Path | str, kind: str = "best") -> TrainedModel:
    """A run's `kind` checkpoint (best, last, swa, ema, snapshot-<epoch>) as a model in eval
    mode on the CPU."""
    run = RunDirectory.existing(run_dir)
    path = run.checkpoint(kind)
    if not path.exists():
        raise FatError(f"{path}: {MISSING.get(kind.rstrip('0123456789'), 'no such checkpoint')}")
    state = load_checkpoint(path)
    experiment = saved_experiment(state, path)
    try:  # the settings a checkpoint carries pass the same checks as any others
        feature_config = LogMelConfig.from_dict(state["feature_config"])
    except FatError as e:
        raise FatError(f"{path}: {e}") from None
    vocabulary = tuple(state["vocabulary"])
    single_label = bool(state.get("single_label", False))  # older checkpoints: sigmoid
    model = build_model(experiment, feature_config.n_mels, len(vocabulary), single_label)
    model.load_state_dict(state["model"])
    model.eval()
    splits = run.saved_inputs().get("splits")
    return TrainedModel(
        model,
        experiment,
        feature_config,
        vocabulary,
        Normalizer.from_dict(state["normalizer"]),
        int(state["epoch"]),
        kind,
        run,
        {name: list(s["val"]) for name, s in splits.items()} if splits else None,
    )


# Why a checkpoint a run may lack is missing, by kind.
MISSING = {
    "best": "no checkpoint yet (the run has not finished an epoch)",
    "last": "no checkpoint yet (the run has not finished an epoch)",
    "swa": "run has no SWA checkpoint (train with --swa-start)",
    "ema": "run has no EMA checkpoint (train with --ema DECAY)",
    SNAPSHOT: "no such snapshot (`fat train --schedule cosine-restarts`)",
}
