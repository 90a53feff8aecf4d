"""`cross_validate`: K runs over a stratified K-fold cut of the first training split (the
other splits, noisy, train whole in every fold), then the out-of-fold predictions of every
clip of that split and their lwlrap, overall, per fold and per class.

Each fold is an ordinary run directory trained by `train`; a CV that was killed resumes on
the same command: finished folds are left as they are, an interrupted one resumes from its
last checkpoint, and out-of-fold predictions a fold already wrote are kept."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fat.core.errors import FatError
from fat.core.evaluation import evaluate_scores
from fat.core.holdout import dataset_fold_values
from fat.core.submission import read_submission, write_submission
from fat.predict.scoring import open_run_split, predict_split, validation_clips
from fat.predict.settings import PredictConfig
from fat.runs.checkpoint import load_checkpoint, load_trained_model
from fat.runs.compose import continued_experiment, saved_options
from fat.runs.cv_directory import CVDirectory, is_cv_directory
from fat.runs.directory import LOCK
from fat.runs.settings import ExperimentConfig, RunOptions
from fat.store import open_store
from fat.train.data import dataset_folds
from fat.train.loop import learning_rule, train


@dataclass(frozen=True)
class CVSummary:
    out: Path
    folds: int
    oof_score: float  # of `metric`, over every out-of-fold clip
    fold_scores: tuple[float, ...]
    n_clips: int
    metric: str = "lwlrap"

    @property
    def mean_fold_score(self) -> float:
        return float(np.mean(self.fold_scores))

    def line(self) -> str:
        folds = " / ".join(f"{v:.4f}" for v in self.fold_scores)
        return (
            f"cv {self.out}: {self.folds} folds, out-of-fold {self.metric} {self.oof_score:.4f} "
            f"on {self.n_clips} clips; per fold {folds} (mean {self.mean_fold_score:.4f})"
        )


def cv_settings(
    experiment: ExperimentConfig, options: RunOptions, folds: int, predict: PredictConfig
) -> dict:
    return {
        "folds": folds,
        "experiment": experiment.replace(folds=folds, fold=0).to_dict(),
        "options": options.to_dict(),
        "oof_checkpoint": predict.checkpoint,
    }


def _start_or_continue(cv: CVDirectory, settings: dict) -> None:
    """Write the CV's settings; for a CV directory that holds some already, only what a
    resumed run may change (`check_resumable_as`: more epochs) may differ, and options may
    (a moved store, another device)."""
    if is_cv_directory(cv.path):
        saved = cv.read_settings()
        if int(saved.get("folds", 0)) != settings["folds"]:
            raise FatError(
                f"{cv.path} holds a {saved.get('folds')}-fold cross-validation, not "
                f"{settings['folds']}; run it with its own --folds, or pick another --out"
            )
        mine = settings["experiment"]
        changes = {k: v for k, v in mine.items() if saved.get("experiment", {}).get(k) != v}
        continued_experiment(saved.get("experiment", {}), changes, f"cv {cv.path}")
    elif cv.path.exists() and any(p.name != LOCK for p in cv.path.iterdir()):
        raise FatError(f"{cv.path} exists and is not a cross-validation directory; pick --out")
    cv.write_settings(settings)


def _fold_done(cv: CVDirectory, i: int, epochs: int) -> bool:
    """Fold i has trained all `epochs` and predicted its held-out clips."""
    run = cv.fold(i)
    if not cv.fold_oof(i).exists() or not run.has_checkpoint():
        return False
    return int(load_checkpoint(run.checkpoint("last"))["epoch"]) >= epochs


def cross_validate(
    experiment: ExperimentConfig,
    options: RunOptions,
    folds: int,
    predict: PredictConfig | None = None,
    stop_after_folds: int | None = None,
) -> CVSummary | None:
    """Train the `folds` runs into `options.out`/fold<i>, write each fold's out-of-fold
    probabilities, then the whole split's (oof.csv) and their scores. Run again, it continues
    where it stopped, also with more --epochs (each fold resumes to them). `stop_after_folds`
    ends the call after that many folds trained in it (as if killed); it then returns None."""
    if not options.out or not options.store:
        raise FatError("a cross-validation needs a store and an output directory (--store, --out)")
    if experiment.folds_from == "dataset":
        folds = shipped_folds(options.store, experiment.train_splits[0])
    if folds < 2:
        raise FatError(f"--folds must be at least 2, got {folds}")
    options = saved_options(options)
    predict = predict or PredictConfig()
    cv = CVDirectory(options.out)
    with cv.lock():  # before anything is written: a second `fat cv --out X` is refused
        return _run_folds(cv, experiment, options, folds, predict, stop_after_folds)


def _run_folds(
    cv: CVDirectory,
    experiment: ExperimentConfig,
    options: RunOptions,
    folds: int,
    predict: PredictConfig,
    stop_after_folds: int | None,
) -> CVSummary | None:
    _start_or_continue(cv, cv_settings(experiment, options, folds, predict))
    name = options.name or cv.path.name
    trained_here = 0
    for i in range(folds):
        if _fold_done(cv, i, experiment.epochs):
            continue
        run = cv.fold(i)
        fold_options = options.replace(out=str(run.path), name=f"{name}-fold{i}")
        train(experiment.replace(folds=folds, fold=i), fold_options, resume=run.has_checkpoint())
        _write_fold_oof(cv, i, options.store, predict)
        trained_here += 1
        if stop_after_folds is not None and trained_here >= stop_after_folds and i + 1 < folds:
            return None
    return write_oof(cv, options.store, experiment.train_splits[0])


def shipped_folds(store: str, split_name: str) -> int:
    """How many folds the data set ships in `split_name` (`--folds dataset`)."""
    with open_store(store, "r") as opened:
        if split_name not in opened:
            raise FatError(f"{store}: no split {split_name!r}; featurize it first")
        return len(dataset_fold_values(dataset_folds(opened.split(split_name))))


def _write_fold_oof(cv: CVDirectory, i: int, store: str, predict: PredictConfig) -> None:
    """Fold i's probabilities for the clips it held out, with the checkpoint `predict` names."""
    trained = load_trained_model(cv.fold(i).path, predict.checkpoint)
    first = trained.experiment.train_splits[0]
    with open_run_split(trained, store, first) as split:
        clips = validation_clips(trained, split)
        probs = predict_split(trained, split, predict, clips)
        ids = [split.clip_ids[c] for c in clips.tolist()]
    write_submission(cv.fold_oof(i), ids, trained.vocabulary, probs)


def write_oof(cv: CVDirectory, store: str, split_name: str) -> CVSummary:
    """oof.csv (every clip of the folded split, in store order) and its scores, from the
    folds' own files; FatError if a clip is missing or held out twice."""
    k = int(cv.read_settings()["folds"])
    parts = [read_submission(cv.fold_oof(i)) for i in range(k)]
    vocabulary = parts[0][1]
    with open_store(store, "r") as opened:
        split = opened.split(split_name)
        order = {clip_id: n for n, clip_id in enumerate(split.clip_ids)}
        labels = split.labels.astype(np.float64)
    ids = [c for p in parts for c in p[0]]
    if len(set(ids)) != len(ids):
        raise FatError(f"{cv.path}: a clip is out of fold in two folds; the folds disagree")
    unknown = [c for c in ids if c not in order]
    if unknown:
        raise FatError(f"{cv.path}: out-of-fold clip {unknown[0]!r} is not in {store}:{split_name}")
    rows = np.array([order[c] for c in ids])
    probs = np.concatenate([p[2] for p in parts])
    sort = np.argsort(rows)
    rows, probs, ids = rows[sort], probs[sort], [ids[j] for j in sort]
    write_submission(cv.oof, ids, vocabulary, probs)
    experiment = ExperimentConfig.from_dict(cv.read_settings()["experiment"])
    single_label, metric = learning_rule(experiment, split)
    evaluation = evaluate_scores({split_name: (labels[rows], probs)}, vocabulary, single_label)
    per_fold = []
    for p in parts:
        fold_rows = np.array([order[c] for c in p[0]])
        part = {split_name: (labels[fold_rows], p[2])}
        per_fold.append(evaluate_scores(part, vocabulary, single_label).metric(metric))
    summary = {
        "folds": k,
        "split": split_name,
        "n_clips": len(ids),
        "of_clips": len(order),
        **evaluation.metrics,
        "metric": metric,
        f"fold_{metric}": per_fold,
        f"mean_fold_{metric}": float(np.mean(per_fold)),
        "chance_lwlrap": evaluation.chance_lwlrap,
    }
    per_class = [
        {"class": r.name, "lwlrap": r.lwlrap, "weight": r.weight, "positives": r.positives}
        for r in evaluation.class_results()
    ]
    cv.write_scores(summary, per_class)
    return CVSummary(cv.path, k, evaluation.metric(metric), tuple(per_fold), len(ids), metric)
