"""A trained run applied to store splits: Kaggle submissions, frame-level outputs, evaluation
against labels, and the noisy clips whose labels a run agrees with."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from tqdm import tqdm

from fat.core.device import torch_device
from fat.core.errors import FatError
from fat.core.holdout import holdout_mask
from fat.core.ids import write_clip_list
from fat.core.metrics import per_sample_lwlrap
from fat.core.progress import progress_bar
from fat.models.input import ModelInput
from fat.predict.inference import embed_clips, frame_scores, score_clips
from fat.predict.settings import PredictConfig
from fat.runs.checkpoint import TrainedModel, load_trained_model
from fat.store import Split, open_store

VAL = "val"  # `fat evaluate --split val`: the run's own hold-out of each training split


@contextmanager
def open_run_split(
    trained: TrainedModel, store_path: Path | str | None, split_name: str
) -> Iterator[Split]:
    """The store split (default store: the run's), refused if its features or vocabulary are
    not what the run learned on; the store is closed on exit."""
    store_path = store_path or trained.store()
    with open_store(store_path, "r") as store:
        if split_name not in store:
            have = ", ".join(store.splits()) or "none"
            raise FatError(f"{store_path}: no split {split_name!r} (splits: {have})")
        split = store.split(split_name)
        diffs = trained.feature_config.differences(split.feature_config)
        if diffs:
            raise FatError(
                f"{store_path}:{split_name}: features differ from the run's: " + "; ".join(diffs)
            )
        if split.vocabulary != trained.vocabulary:
            raise FatError(f"{store_path}:{split_name}: label vocabulary differs from the run's")
        yield split


def _prepare(
    trained: TrainedModel, split: Split, cfg: PredictConfig, clips: np.ndarray | None
) -> tuple[np.ndarray, ModelInput]:
    """The clips to score (default: all) and the model's input on its device, with the model
    moved there."""
    device = torch_device(cfg.device)
    trained.model.to(device)
    clips = np.arange(len(split)) if clips is None else np.asarray(clips)
    return clips, ModelInput(trained.normalizer, device, "wrap")


def _bar(total: int, desc: str, progress: bool) -> tqdm:
    return progress_bar(total=total, desc=desc, unit="clip", show=progress, leave=False)


def _over_windows(trained, split, cfg, clips, progress, verb, reduce_clips, **extra):
    """`reduce_clips` (score_clips or embed_clips) over the run's sliding windows of `clips`."""
    clips, inputs = _prepare(trained, split, cfg, clips)
    with _bar(len(clips), f"{verb} {split.name}", progress) as bar:
        return reduce_clips(
            trained.model,
            split,
            clips,
            trained.experiment.crop_frames,
            inputs,
            overlap=cfg.overlap,
            batch_size=cfg.batch_size,
            progress=bar.update,
            **extra,
        )


def predict_split(
    trained: TrainedModel,
    split: Split,
    cfg: PredictConfig,
    clips: np.ndarray | None = None,
    progress: bool = False,
) -> np.ndarray:
    """Clip probabilities (n, n_classes) for `clips` (default: every clip of the split), from
    sliding windows over each whole clip."""
    return _over_windows(trained, split, cfg, clips, progress, "predict", score_clips, tta=cfg.tta)


def embed_split(
    trained: TrainedModel,
    split: Split,
    cfg: PredictConfig,
    clips: np.ndarray | None = None,
    progress: bool = False,
) -> np.ndarray:
    """Clip embeddings (n, D): the layer before the run's classifier, averaged over the same
    sliding windows as `predict_split`."""
    return _over_windows(trained, split, cfg, clips, progress, "embed", embed_clips)


def predict_frames(
    trained: TrainedModel,
    split: Split,
    cfg: PredictConfig,
    clips: np.ndarray | None = None,
    progress: bool = False,
) -> list[np.ndarray] | None:
    """Frame-level probabilities (T', n_classes) over each whole clip, from the windows
    `predict_split` scores; None for a model without frame outputs."""
    clips, inputs = _prepare(trained, split, cfg, clips)
    out = []
    for clip in progress_bar(clips.tolist(), desc="frames", unit="clip", show=progress):
        frames = frame_scores(
            trained.model,
            split,
            clip,
            trained.experiment.crop_frames,
            inputs,
            cfg.overlap,
        )
        if frames is None:
            return None
        out.append(frames)
    return out


def validated_splits(trained: TrainedModel) -> list[str]:
    """The splits whose clips validated the run: its training splits' hold-outs, or the
    split named by --val-split."""
    e = trained.experiment
    return [e.val_split] if e.val_split else list(e.train_splits)


def validation_clips(trained: TrainedModel, split: Split) -> np.ndarray:
    """The clips `split` held out for validation in the run: the ids the run saved (so clips
    added to the store since do not change it), or for a run without them the same rule."""
    splits = validated_splits(trained)
    if split.name not in splits:
        raise FatError(f"the run did not train on {split.name!r}, so it has no hold-out there")
    if trained.validation_ids is not None:
        ids = trained.validation_ids.get(split.name, [])
        missing = [c for c in ids if c not in split]
        if missing:
            raise FatError(
                f"split {split.name!r} no longer holds {len(missing)} of the run's validation "
                f"clips (e.g. {missing[0]!r}); it was featurized again since the run"
            )
        return np.array([split.index_of(c) for c in ids], np.int64)
    held = holdout_mask(
        split.labels,
        trained.experiment.val_fraction,
        trained.experiment.seed,
        splits.index(split.name),
        trained.experiment.folds,
        trained.experiment.fold,
    )
    return np.flatnonzero(held)


def select_agreeing_clips(
    clip_ids: list[str], truth: np.ndarray, scores: np.ndarray, min_lwlrap: float
) -> tuple[list[str], np.ndarray]:
    """Clips whose labels the model agrees with: per-clip lwlrap (LRAP of its own labels
    under the model's ranking) at least `min_lwlrap`. Returns (kept ids, every clip's score)."""
    agreement = per_sample_lwlrap(truth, scores)
    keep = np.nan_to_num(agreement, nan=-1.0) >= min_lwlrap
    return [c for c, k in zip(clip_ids, keep, strict=True) if k], agreement


def select_noisy_clips(
    run_dir: Path | str,
    min_lwlrap: float,
    out: Path,
    cfg: PredictConfig | None = None,
    store: Path | str | None = None,
    progress: bool = False,
) -> tuple[list[str], np.ndarray]:
    """Score the noisy split with a run and write the clips whose labels it agrees with to
    `out`, a clip list for `fat train --noisy-clips`. Returns (kept ids, every clip's score)."""
    cfg = cfg or PredictConfig()
    trained = load_trained_model(run_dir, cfg.checkpoint)
    with open_run_split(trained, store, "noisy") as data:
        probs = predict_split(trained, data, cfg, progress=progress)
        kept, agreement = select_agreeing_clips(data.clip_ids, data.labels, probs, min_lwlrap)
    comment = (
        f"fat select-noisy {run_dir} --min-lwlrap {min_lwlrap}: {len(kept)} of {len(agreement)}"
    )
    write_clip_list(out, kept, comment)
    return kept, agreement
