"""Ensembles of trained runs: a cross-validation's folds, several runs, several checkpoints of
one run, combined by mean, geometric mean or rank, with weights given or fitted on the
members' out-of-fold predictions.

A source is a run directory, `RUN:KIND` for one checkpoint of it (best, last, swa, ema,
snapshot-<epoch>, or snapshots: all of a cosine-restarts run's), or a cross-validation
directory, whose folds are combined first (the same way, equal weights); then the sources
are combined with their weights."""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fat.core.errors import FatError
from fat.core.evaluation import Evaluation, evaluate_scores
from fat.core.metrics import lwlrap
from fat.core.submission import read_submission
from fat.predict.scoring import open_run_split, predict_split
from fat.predict.settings import PredictConfig
from fat.runs.checkpoint import load_trained_model
from fat.runs.cv_directory import CVDirectory, is_cv_directory
from fat.runs.directory import KINDS, SNAPSHOT, RunDirectory
from fat.store import open_store

HOWS = ("mean", "gmean", "rank")
EPS = 1e-7  # probabilities are clipped here before a log


@dataclass(frozen=True)
class Source:
    """One ensemble argument: the (run, checkpoint) pairs it stands for."""

    name: str
    members: tuple[tuple[Path, str], ...]
    cv: Path | None  # the cross-validation directory, when it is one

    @classmethod
    def parse(cls, text: str, checkpoint: str) -> "Source":
        """RUN, CV_DIR, or either with :best, :last, :swa, :ema, :snapshot-<epoch>, or
        :snapshots (every cosine-restart snapshot); `checkpoint` where none is named."""
        path, kind = text, checkpoint
        head, sep, tail = text.rpartition(":")
        if sep and (tail in KINDS or tail == "snapshots" or tail.startswith(SNAPSHOT)):
            path, kind = head, tail
        if is_cv_directory(path):
            runs, cv = [r.path for r in CVDirectory(path).folds()], Path(path)
        else:
            runs, cv = [RunDirectory.existing(path).path], None
        if kind != "snapshots":
            return cls(text, tuple((run, kind) for run in runs), cv)
        members = tuple((run, k) for run in runs for k in RunDirectory(run).snapshots())
        if not members:
            raise FatError(f"{path}: no snapshots (train with --schedule cosine-restarts)")
        return cls(text, members, cv)

    @property
    def runs(self) -> tuple[Path, ...]:
        return tuple(dict.fromkeys(run for run, _ in self.members))


def rank_within_clip(probs: np.ndarray) -> np.ndarray:
    """Each clip's class scores replaced by their rank among the clip's classes, in [0, 1]:
    lwlrap only compares classes within a clip, so that is the order worth averaging."""
    ranks = probs.argsort(axis=1).argsort(axis=1).astype(np.float64)
    return ranks / max(probs.shape[1] - 1, 1)


def combine(probs: Sequence[np.ndarray], how: str, weights: Sequence[float] | None = None):
    """The weighted combination of several (n, classes) score arrays."""
    if how not in HOWS:
        raise FatError(f"--how must be one of {', '.join(HOWS)}, got {how!r}")
    w = np.full(len(probs), 1.0 / len(probs)) if weights is None else np.asarray(weights, float)
    if len(w) != len(probs) or (w < 0).any() or w.sum() <= 0:
        raise FatError(f"need one weight >= 0 per member ({len(probs)}), not all 0; got {list(w)}")
    w = w / w.sum()
    stack = np.stack([np.asarray(p, np.float64) for p in probs])
    if how == "gmean":
        return np.exp(np.tensordot(w, np.log(np.clip(stack, EPS, 1.0)), axes=1))
    if how == "rank":
        stack = np.stack([rank_within_clip(p) for p in stack])
    return np.tensordot(w, stack, axes=1)


def fit_weights(members: Sequence[np.ndarray], truth: np.ndarray, how: str) -> np.ndarray:
    """Weights (summing to 1) that maximise the lwlrap of the combination on `truth`: from
    equal weights, coordinate ascent giving one member 0.05 more (taken from the others in
    proportion) or 0.05 less, while a move helps."""
    k, step = len(members), 0.05
    w = np.full(k, 1.0 / k)
    best = lwlrap(truth, combine(members, how, w))
    for _ in range(400):
        trials = []
        for i in range(k):
            trials.append((1 - step) * w + step * np.eye(k)[i])
            if w[i] > 0:
                less = w.copy()
                less[i] -= min(step, w[i])
                trials.append(less / less.sum())
        scores = [lwlrap(truth, combine(members, how, t)) for t in trials]
        top = int(np.argmax(scores))
        if scores[top] <= best + 1e-9:
            break
        w, best = trials[top], scores[top]
    return w


@dataclass
class EnsemblePrediction:
    clip_ids: list[str]
    vocabulary: tuple[str, ...]
    probs: np.ndarray
    by_source: dict[str, np.ndarray]
    weights: np.ndarray
    labels: np.ndarray | None  # the split's labels, when it has any

    def evaluate(self) -> dict[str, Evaluation] | None:
        """lwlrap of the ensemble and of each source alone, on a labelled split."""
        if self.labels is None:
            return None
        parts = {"ensemble": self.probs, **self.by_source}
        return {
            n: evaluate_scores({"split": (self.labels, p)}, self.vocabulary)
            for n, p in parts.items()
        }


def source_probs(
    source: Source,
    split_name: str,
    store: Path | str | None,
    how: str,
    cfg: PredictConfig,
    progress: bool = False,
) -> tuple[list[str], tuple[str, ...], np.ndarray, np.ndarray]:
    """(clip ids, vocabulary, probabilities, labels) of one source on a store split: a CV's
    folds combined by `how`."""
    outs, ids, vocabulary, labels = [], None, None, None
    for run, kind in source.members:
        trained = load_trained_model(run, kind)
        with open_run_split(trained, store, split_name) as split:
            probs = predict_split(trained, split, cfg, progress=progress)
            if ids is not None and (split.clip_ids != ids or trained.vocabulary != vocabulary):
                raise FatError(
                    f"{run}: its {split_name} split holds other clips or classes than "
                    f"{source.runs[0]}'s; give --store so that every member reads the same one"
                )
            ids, vocabulary, labels = split.clip_ids, trained.vocabulary, split.labels
        outs.append(probs)
    return ids, vocabulary, combine(outs, how), labels


def oof_of(source: Source) -> tuple[list[str], tuple[str, ...], np.ndarray]:
    if source.cv is None or not CVDirectory(source.cv).oof.exists():
        raise FatError(
            f"{source.name}: --weights from-oof needs cross-validation directories with their "
            "out-of-fold predictions (oof.csv, written by `fat cv`)"
        )
    return read_submission(CVDirectory(source.cv).oof)


def _oof_truth(source: Source, clip_ids: list[str]) -> np.ndarray:
    """The labels of a CV's out-of-fold clips, from the store and split it cross-validated."""
    cv = CVDirectory(source.cv)
    split_name = cv.read_settings()["experiment"]["train_splits"][0]
    with open_store(cv.store(), "r") as opened:
        split = opened.split(split_name)
        return split.labels[[split.index_of(c) for c in clip_ids]].astype(np.float64)


def oof_weights(sources: Sequence[Source], how: str) -> np.ndarray:
    """Weights fitted on the sources' out-of-fold predictions (every source a CV of the same
    clips)."""
    oofs = [oof_of(s) for s in sources]
    ids = oofs[0][0]
    for s, o in zip(sources[1:], oofs[1:], strict=True):
        if sorted(o[0]) != sorted(ids):
            raise FatError(f"{s.name}: its out-of-fold clips differ from {sources[0].name}'s")
    aligned = []
    for o in oofs:
        where = {c: n for n, c in enumerate(o[0])}
        aligned.append(o[2][[where[c] for c in ids]])
    return fit_weights(aligned, _oof_truth(sources[0], ids), how)


def predict_ensemble(
    sources: Sequence[Source],
    split_name: str,
    store: Path | str | None = None,
    how: str = "mean",
    weights: Sequence[float] | np.ndarray | None = None,
    cfg: PredictConfig | None = None,
    progress: bool = False,
) -> EnsemblePrediction:
    """Every source's probabilities on a store split and their combination."""
    cfg = cfg or PredictConfig()
    if not sources:
        raise FatError("an ensemble needs at least one run or cross-validation directory")
    by_source, first = {}, None
    for source in sources:
        ids, vocabulary, probs, labels = source_probs(source, split_name, store, how, cfg, progress)
        if first is not None and (ids != first[0] or vocabulary != first[1]):
            raise FatError(
                f"{source.name}: predicts other clips or classes of {split_name!r} than "
                f"{sources[0].name}; give --store so that every member reads the same split"
            )
        first = first or (ids, vocabulary, labels)
        by_source[source.name] = probs
    w = np.full(len(sources), 1.0 / len(sources)) if weights is None else np.asarray(weights)
    combined = combine(list(by_source.values()), how, w)
    ids, vocabulary, labels = first
    labelled = labels is not None and labels.sum() > 0
    return EnsemblePrediction(
        ids,
        vocabulary,
        combined,
        by_source,
        w / w.sum(),
        labels.astype(float) if labelled else None,
    )
