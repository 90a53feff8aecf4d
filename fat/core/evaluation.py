"""One evaluation of clip scores against labels: lwlrap overall, per part (e.g. curated and
noisy) and per class, the field's other metrics (mAP, micro AP, AUC, d', accuracy: overall
and per class), loss, and which classes each class is confused with. Used alike by the
trainer's validation and by `fat evaluate`."""

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from fat.core.errors import FatError
from fat.core.metrics import (
    METRICS,
    ClassScores,
    LwlrapResult,
    class_scores,
    clip_metrics,
    lwlrap,
    lwlrap_details,
)

ALL = "all"  # the subset holding every evaluated clip


def binary_cross_entropy(truth: np.ndarray, probs: np.ndarray, eps: float = 1e-7) -> float:
    """Mean BCE of probabilities clipped to [eps, 1 - eps]."""
    p = np.clip(probs, eps, 1 - eps)
    return float(-(truth * np.log(p) + (1 - truth) * np.log(1 - p)).mean())


def cross_entropy(truth: np.ndarray, probs: np.ndarray, eps: float = 1e-7) -> float:
    """Mean categorical cross-entropy of a clip's probabilities (softmax outputs) against its
    label(s), each clip's labels sharing its target."""
    target = truth / np.maximum(truth.sum(axis=1, keepdims=True), 1)
    return float(-(target * np.log(np.clip(probs, eps, 1.0))).sum(axis=1).mean())


def most_confused(truth: np.ndarray, scores: np.ndarray, c: int, top: int = 3) -> list[int]:
    """Classes that most often outrank class c on clips truly labelled c (and are not true)."""
    rows = truth[:, c] > 0
    if not rows.any():
        return []
    above = (scores[rows] > scores[rows, c : c + 1]) & (truth[rows] == 0)
    counts = above.sum(axis=0)
    order = np.argsort(-counts, kind="stable")
    return [int(k) for k in order[:top] if counts[k] > 0]


def chance_lwlrap(truth: np.ndarray, draws: int = 20, seed: int = 0) -> float:
    """lwlrap of random scores on these labels (mean of `draws`): the floor to beat."""
    rng = np.random.default_rng(seed)
    return float(np.mean([lwlrap(truth, rng.random(truth.shape)) for _ in range(draws)]))


@dataclass(frozen=True)
class ClassResult:
    """One class with positive labels among the evaluated clips."""

    name: str
    lwlrap: float
    weight: float  # share of all positive labels
    positives: int
    confused_with: tuple[str, ...]
    by_part: dict[str, float]  # lwlrap per evaluated part
    ap: float = float("nan")  # average precision
    auc: float = float("nan")  # ROC AUC (NaN when every clip has the class)
    d_prime: float = float("nan")


@dataclass(frozen=True)
class Evaluation:
    subsets: dict[str, LwlrapResult]  # ALL, and each part by name
    parts: tuple[str, ...]
    truth: np.ndarray
    scores: np.ndarray
    vocabulary: tuple[str, ...]
    loss: float

    @property
    def lwlrap(self) -> float:
        return self.subsets[ALL].overall

    @cached_property
    def per_class_scores(self) -> ClassScores:
        return class_scores(self.truth, self.scores)

    @cached_property
    def metrics(self) -> dict[str, float]:
        """Every metric of `fat.core.metrics.METRICS` over all evaluated clips."""
        return clip_metrics(self.truth, self.scores, self.per_class_scores)

    def metric(self, name: str) -> float:
        if name not in METRICS:
            raise FatError(f"unknown metric {name!r}; choose from {', '.join(METRICS)}")
        return self.metrics[name]

    @cached_property
    def chance_lwlrap(self) -> float:
        """What random scores get on these labels: the floor to beat."""
        return chance_lwlrap(self.truth)

    def class_results(self) -> list[ClassResult]:
        """Classes present among the clips, worst first."""
        main, scores = self.subsets[ALL], self.per_class_scores
        rows = [
            ClassResult(
                name=name,
                lwlrap=float(main.per_class[c]),
                weight=float(main.weights[c]),
                positives=int(self.truth[:, c].sum()),
                confused_with=tuple(
                    self.vocabulary[k] for k in most_confused(self.truth, self.scores, c)
                ),
                by_part={p: float(self.subsets[p].per_class[c]) for p in self.parts},
                ap=float(scores.ap[c]),
                auc=float(scores.auc[c]),
                d_prime=float(scores.d_prime[c]),
            )
            for c, name in enumerate(self.vocabulary)
            if main.weights[c] > 0
        ]
        return sorted(rows, key=lambda r: r.lwlrap)


def evaluate_scores(
    parts: dict[str, tuple[np.ndarray, np.ndarray]],
    vocabulary: tuple[str, ...],
    single_label: bool = False,
) -> Evaluation:
    """`parts`: part name -> (truth, scores). lwlrap of all parts together and of each (the
    other metrics on demand). The scores must be finite (a broken model has nothing to rank).
    `single_label`: the scores are a softmax over classes, and the loss is cross-entropy."""
    truth = np.concatenate([t for t, _ in parts.values()])
    scores = np.concatenate([s for _, s in parts.values()])
    if truth.sum() == 0:
        raise FatError("no labels to evaluate against (featurize the split with --labels)")
    if not np.isfinite(scores).all():
        raise FatError("scores are not finite: nothing to rank")
    subsets = {ALL: lwlrap_details(truth, scores)}
    subsets.update({name: lwlrap_details(t, s) for name, (t, s) in parts.items()})
    loss = cross_entropy(truth, scores) if single_label else binary_cross_entropy(truth, scores)
    return Evaluation(subsets, tuple(parts), truth, scores, tuple(vocabulary), loss)
