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


# ---- The field's other metrics, from scikit-learn ------------------------------------------

# Every clip-level metric `fat evaluate` reports, higher is better for all; the first that a
# data set names is its headline (FSD50K and AudioSet report mAP, ESC-50 accuracy).
METRICS = {
    "lwlrap": "label-weighted label-ranking average precision (FSDKaggle2019)",
    "map": "macro mean average precision over classes with a positive (FSD50K, AudioSet)",
    "micro_ap": "average precision of all (clip, class) scores pooled",
    "auc": "macro ROC AUC over classes with positives and negatives",
    "d_prime": "d' = sqrt(2) * inverse normal CDF of the macro AUC (AudioSet papers)",
    "accuracy": "top-1 accuracy: the best-scored class is a true label (ESC-50)",
}


@dataclass(frozen=True)
class ClassScores:
    """Per class (n_classes,), NaN where undefined: AP needs a positive, AUC and d' a positive
    and a negative."""

    ap: np.ndarray
    auc: np.ndarray
    d_prime: np.ndarray


def d_prime(auc: np.ndarray | float) -> np.ndarray | float:
    """Sensitivity index from ROC AUC, as the AudioSet papers compute it."""
    from scipy.stats import norm

    return np.sqrt(2.0) * norm.ppf(auc)


def class_scores(truth: np.ndarray, scores: np.ndarray) -> ClassScores:
    """Average precision, ROC AUC and d' of each class (scikit-learn's, class by class, where
    each is defined)."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    truth = np.asarray(truth) > 0
    n = truth.shape[1]
    ap, auc = np.full(n, np.nan), np.full(n, np.nan)
    positives = truth.sum(axis=0)
    for c in np.flatnonzero(positives > 0):
        ap[c] = average_precision_score(truth[:, c], scores[:, c])
        if positives[c] < len(truth):
            auc[c] = roc_auc_score(truth[:, c], scores[:, c])
    with np.errstate(divide="ignore", invalid="ignore"):
        return ClassScores(ap, auc, d_prime(auc))


def clip_metrics(
    truth: np.ndarray, scores: np.ndarray, per_class: ClassScores | None = None
) -> dict[str, float]:
    """Every metric of `METRICS` on these clips (NaN where undefined)."""
    from sklearn.metrics import average_precision_score

    truth = np.asarray(truth) > 0
    per_class = per_class or class_scores(truth, scores)
    has_ap, has_auc = ~np.isnan(per_class.ap), ~np.isnan(per_class.auc)
    macro_auc = float(per_class.auc[has_auc].mean()) if has_auc.any() else float("nan")
    labelled = truth.any(axis=1)
    top = np.argmax(scores, axis=1)
    return {
        "lwlrap": lwlrap(truth, scores),
        "map": float(per_class.ap[has_ap].mean()) if has_ap.any() else float("nan"),
        "micro_ap": float(average_precision_score(truth.ravel(), np.ravel(scores)))
        if truth.any()
        else float("nan"),
        "auc": macro_auc,
        "d_prime": float(d_prime(macro_auc)),
        "accuracy": float(truth[np.arange(len(truth)), top][labelled].mean())
        if labelled.any()
        else float("nan"),
    }
