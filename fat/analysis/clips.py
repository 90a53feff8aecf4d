"""Clip figures: a run's predictions for a few clips, drawn over their log-mel.

The scores come from the same sliding-window inference as `fat predict`, so a figure shows
the numbers the submission holds for that clip, not those of some other forward pass.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fat.analysis.figures import plot_clip_prediction
from fat.store import Split
from fat.train.checkpoint import TrainedModel, load_trained_model
from fat.train.inference import frame_scores
from fat.train.predict import open_split_for, predict_split


@dataclass(frozen=True)
class ClipPrediction:
    """One clip's whole-clip scores and, for models with frame outputs, its frame scores."""

    clip: int  # index in the split
    scores: np.ndarray  # (n_classes,), as `fat predict` writes them
    frame_probs: np.ndarray | None  # (T', n_classes) over the whole clip


def pick_clips(split: Split, n: int) -> np.ndarray:
    """The first `n` clips that have labels, or the first `n` clips when none has: a figure
    is most telling where it can show true labels next to the predictions."""
    labelled = np.flatnonzero(split.labels.sum(axis=1) > 0)
    return (labelled if len(labelled) else np.arange(len(split)))[:n]


def predict_clips(
    trained: TrainedModel,
    split: Split,
    clips: np.ndarray,
    device: torch.device,
    tta: str = "mean",
    overlap: float = 0.5,
) -> list[ClipPrediction]:
    """Scores of `clips` exactly as `fat predict` computes them, with frame-level scores from
    the same windows for models that have them."""
    scores = predict_split(trained, split, device, clips, tta, overlap)
    # predict_split has put the model on `device`, where frame_scores expects it.
    return [
        ClipPrediction(
            clip,
            row,
            frame_scores(
                trained.model,
                split,
                clip,
                trained.config.crop_frames,
                device,
                trained.normalizer,
                overlap,
            ),
        )
        for clip, row in zip(np.asarray(clips).tolist(), scores, strict=True)
    ]


def write_clip_figures(
    run: Path,
    out: Path,
    *,
    store: Path | str | None = None,
    split: str = "test",
    n_clips: int = 2,
    checkpoint: str = "best",
    tta: str = "mean",
    overlap: float = 0.5,
    device: torch.device | None = None,
) -> list[Path]:
    """One figure per clip for the first `n_clips` labelled clips of `split` (of `store`,
    default the run's): log-mel, frame heat-map for models with frame outputs, top scores
    against the true labels. Written as `out/<run folder>_clip_<clip id stem>.png`."""
    run = Path(run)
    trained = load_trained_model(run, checkpoint)
    data = open_split_for(trained, store or trained.config.store, split)
    predictions = predict_clips(
        trained, data, pick_clips(data, n_clips), device or torch.device("cpu"), tta, overlap
    )
    paths = []
    for p in predictions:
        clip_id = data.clip_ids[p.clip]
        paths.append(
            plot_clip_prediction(
                data.read(p.clip).astype(np.float32),
                trained.feature_config,
                trained.vocabulary,
                p.scores,
                data.labels_of(p.clip),
                Path(out) / f"{run.name}_clip_{clip_id.rsplit('.', 1)[0]}.png",
                frame_probs=p.frame_probs,
                title=f"{run.name}: {split}/{clip_id} ({checkpoint} checkpoint, windows: {tta})",
            )
        )
    return paths
