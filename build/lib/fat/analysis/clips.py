"""Clip figures: a run's predictions for a few clips, drawn over their log-mel.

The scores come from the same sliding-window inference as `fat predict`, so a figure shows
the numbers the submission holds for that clip, not those of some other forward pass.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fat.analysis.figures import plot_clip_prediction
from fat.analysis.plotting import file_slug
from fat.predict.scoring import open_run_split, predict_frames, predict_split
from fat.predict.settings import PredictConfig
from fat.runs.checkpoint import TrainedModel, load_trained_model
from fat.store import Split


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
    trained: TrainedModel, split: Split, clips: np.ndarray, cfg: PredictConfig
) -> list[ClipPrediction]:
    """Scores of `clips` exactly as `fat predict` computes them, with frame-level scores from
    the same windows for models that have them."""
    scores = predict_split(trained, split, cfg, clips)
    frames = predict_frames(trained, split, cfg, clips) or [None] * len(scores)
    return [
        ClipPrediction(clip, row, f)
        for clip, row, f in zip(np.asarray(clips).tolist(), scores, frames, strict=True)
    ]


def write_clip_figures(
    run: Path,
    out: Path,
    cfg: PredictConfig,
    store: Path | str | None = None,
    split: str = "test",
    n_clips: int = 2,
) -> list[Path]:
    """One figure per clip for the first `n_clips` labelled clips of `split` (of `store`,
    default the run's): log-mel, frame heat-map for models with frame outputs, top scores
    against the true labels. Written as `out/<run folder>_clip_<clip id stem>.png`."""
    run = Path(run)
    trained = load_trained_model(run, cfg.checkpoint)
    paths = []
    with open_run_split(trained, store, split) as data:
        for p in predict_clips(trained, data, pick_clips(data, n_clips), cfg):
            clip_id = data.clip_ids[p.clip]
            title = (
                f"{run.name}: {split}/{clip_id} ({cfg.checkpoint} checkpoint, windows: {cfg.tta})"
            )
            paths.append(
                plot_clip_prediction(
                    data.read(p.clip).astype(np.float32),
                    trained.feature_config,
                    trained.vocabulary,
                    p.scores,
                    data.labels_of(p.clip),
                    Path(out)
                    / f"{file_slug(run.name)}_clip_{file_slug(clip_id.rsplit('.', 1)[0])}.png",
                    frame_probs=p.frame_probs,
                    title=title,
                )
            )
    return paths
