"""lwlrap: label-weighted label-ranking average precision (the FSDKaggle2019 metric).

Follows Dan Ellis's reference definition used by the competition: for every (clip, true label)
pair, the precision of the ranked label list at that label's rank; a class's score is the mean
over its positive pairs, and the overall score weights each class by its share of positive
labels (equivalently, the plain mean over all positive pairs). Ties in scores count against the
label (a tied label is ranked as low as possible), which is what scikit-learn's
`label_ranking_average_precision_score` does; on tie-free scores the two conventions agree.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LwlrapResult:
    overall: float  # NaN when there is no positive label at all
    per_class: np.ndarray  # (n_classes,) float64, NaN for classes with no positive label
    weights: np.ndarray  # (n_classes,) share of positive labels per class, sums to 1


def label_precisions(truth: np.ndarray, scores: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """Precision at each true label's rank, shape (n_samples, n_classes); NaN where not true.

    Samples without any true label give an all-NaN row, so they contribute nothing.
    """
    truth = np.asarray(truth) > 0
    scores = np.asarray(scores, dtype=np.float64)
    if truth.shape != scores.shape or truth.ndim != 2:
        raise ValueError(f"truth {truth.shape} and scores {scores.shape} must be equal 2-D shapes")
    out = np.full(truth.shape, np.nan)
    for lo in range(0, truth.shape[0], chunk):
        t = truth[lo : lo + chunk]
        s = scores[lo : lo + chunk]
        # at_or_above[i, j, k]: label k scores at least as high as label j in sample i.
        at_or_above = s[:, None, :] >= s[:, :, None]
        rank = at_or_above.sum(axis=2)
        hits = (at_or_above & t[:, None, :]).sum(axis=2)
        out[lo : lo + chunk] = np.where(t, hits / rank, np.nan)
    return out


def lwlrap_details(truth: np.ndarray, scores: np.ndarray) -> LwlrapResult:
    """Overall lwlrap, per-class lwlrap and class weights in one pass."""
    precisions = label_precisions(truth, scores)
    positive = ~np.isnan(precisions)
    counts = positive.sum(axis=0)
    sums = np.where(positive, precisions, 0.0).sum(axis=0)
    total = counts.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
        weights = counts / total if total else np.zeros(counts.shape)
    overall = float(sums.sum() / total) if total else float("nan")
    return LwlrapResult(overall=overall, per_class=per_class, weights=weights)


def lwlrap(truth: np.ndarray, scores: np.ndarray) -> float:
    """Overall lwlrap; NaN when `truth` holds no positive label."""
    return lwlrap_details(truth, scores).overall


def per_sample_lwlrap(truth: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Mean precision over each sample's true labels (its LRAP); NaN for unlabelled samples."""
    precisions = label_precisions(truth, scores)
    counts = (~np.isnan(precisions)).sum(axis=1)
    sums = np.nansum(precisions, axis=1)
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
