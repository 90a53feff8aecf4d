"""Prediction with a trained run: Kaggle submissions, and evaluation against known labels."""

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fat.errors import FatError
from fat.metrics import LwlrapResult, lwlrap, lwlrap_details
from fat.store import Split, open_store
from fat.train.checkpoint import TrainedModel
from fat.train.data import holdout_mask
from fat.train.inference import score_clips


def open_split_for(run: TrainedModel, store_path: Path | str, split_name: str) -> Split:
    """The store split, refused if its features or vocabulary are not what the run learned on."""
    store = open_store(store_path, "r")
    if split_name not in store:
        raise FatError(f"{store_path}: no split {split_name!r} (splits: {store.splits})")
    split = store.split(split_name)
    diffs = run.feature_config.differences(split.feature_config)
    if diffs:
        raise FatError(
            f"{store_path}:{split_name}: features differ from the run's: " + "; ".join(diffs)
        )
    if split.vocabulary != run.vocabulary:
        raise FatError(f"{store_path}:{split_name}: label vocabulary differs from the run's")
    return split


def predict_split(
    run: TrainedModel,
    split: Split,
    device: torch.device,
    clips: np.ndarray | None = None,
    tta: str = "mean",
    overlap: float = 0.5,
    batch_size: int = 64,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Clip probabilities (n, n_classes) for `clips` (default: every clip of the split)."""
    if tta not in ("mean", "max"):
        raise FatError(f"--tta must be mean or max, got {tta!r}")
    clips = np.arange(len(split)) if clips is None else clips
    run.model.to(device)
    return score_clips(
        run.model,
        split,
        clips,
        run.config.crop_frames,
        device,
        normalizer=run.normalizer,
        overlap=overlap,
        tta=tta,
        batch_size=batch_size,
        progress=progress,
    )


def write_submission(path: Path, clip_ids: list[str], vocabulary, probs: np.ndarray) -> None:
    """Kaggle's format: `fname` and the classes in vocabulary order, one row per clip."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["fname", *vocabulary])
        for clip_id, row in zip(clip_ids, probs, strict=True):
            writer.writerow([clip_id, *(f"{p:.6f}" for p in row)])
    tmp.replace(path)


def validation_clips(run: TrainedModel, split: Split) -> np.ndarray:
    """The clips `split` held out for validation in the run (same seed, same rule)."""
    if split.name not in run.config.train_splits:
        raise FatError(f"the run did not train on {split.name!r}, so it has no hold-out there")
    position = run.config.train_splits.index(split.name)
    held = holdout_mask(split.labels, run.config.val_fraction, run.config.seed, position)
    return np.flatnonzero(held)


def most_confused(truth: np.ndarray, scores: np.ndarray, c: int, top: int = 3) -> list[int]:
    """Classes that most often outrank class c on clips truly labelled c (and are not true)."""
    rows = truth[:, c] > 0
    if not rows.any():
        return []
    above = (scores[rows] > scores[rows, c : c + 1]) & (truth[rows] == 0)
    counts = above.sum(axis=0)
    order = np.argsort(-counts, kind="stable")
    return [int(k) for k in order[:top] if counts[k] > 0]


@dataclass
class Evaluation:
    subsets: dict[str, LwlrapResult]  # "all", and per split when several were evaluated
    truth: np.ndarray
    scores: np.ndarray
    vocabulary: tuple[str, ...]

    def per_class_rows(self) -> list[dict]:
        main = self.subsets["all"]
        rows = []
        for c, name in enumerate(self.vocabulary):
            if main.weights[c] == 0:
                continue
            row = {
                "class": name,
                "lwlrap": main.per_class[c],
                "weight": main.weights[c],
                "positives": int(self.truth[:, c].sum()),
                "confused_with": ";".join(
                    self.vocabulary[k] for k in most_confused(self.truth, self.scores, c)
                ),
            }
            for subset, result in self.subsets.items():
                if subset != "all":
                    row[f"lwlrap_{subset}"] = result.per_class[c]
            rows.append(row)
        return sorted(rows, key=lambda r: r["lwlrap"])

    def write(self, out: Path, extra: dict) -> None:
        out.mkdir(parents=True, exist_ok=True)
        summary = {
            **extra,
            "n_clips": int(len(self.truth)),
            "lwlrap": self.subsets["all"].overall,
            "chance_lwlrap": chance_lwlrap(self.truth),
            **{f"lwlrap_{k}": v.overall for k, v in self.subsets.items() if k != "all"},
        }
        (out / "summary.json").write_text(json.dumps(summary, indent=1))
        rows = self.per_class_rows()
        columns = list(rows[0]) if rows else ["class", "lwlrap", "weight"]
        with open(out / "per_class.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, columns)
            writer.writeheader()
            writer.writerows(rows)


def chance_lwlrap(truth: np.ndarray, draws: int = 20, seed: int = 0) -> float:
    """lwlrap of random scores on these labels (mean of `draws`): the floor to beat."""
    rng = np.random.default_rng(seed)
    return float(np.mean([lwlrap(truth, rng.random(truth.shape)) for _ in range(draws)]))


def evaluate_scores(
    parts: dict[str, tuple[np.ndarray, np.ndarray]], vocabulary: tuple[str, ...]
) -> Evaluation:
    """`parts`: subset name -> (truth, scores). lwlrap of all parts together and of each."""
    truth = np.concatenate([t for t, _ in parts.values()])
    scores = np.concatenate([s for _, s in parts.values()])
    if truth.sum() == 0:
        raise FatError("no labels to evaluate against (featurize the split with --labels)")
    subsets = {"all": lwlrap_details(truth, scores)}
    if len(parts) > 1:
        subsets.update({name: lwlrap_details(t, s) for name, (t, s) in parts.items()})
    return Evaluation(subsets, truth, scores, vocabulary)


def select_agreeing_clips(
    clip_ids: list[str], truth: np.ndarray, scores: np.ndarray, min_lwlrap: float
) -> tuple[list[str], np.ndarray]:
    """Clips whose labels the model agrees with: per-clip lwlrap (LRAP of its own labels
    under the model's ranking) at least `min_lwlrap`. Returns (kept ids, every clip's score)."""
    from fat.metrics import per_sample_lwlrap

    agreement = per_sample_lwlrap(truth, scores)
    keep = np.nan_to_num(agreement, nan=-1.0) >= min_lwlrap
    return [c for c, k in zip(clip_ids, keep, strict=True) if k], agreement
