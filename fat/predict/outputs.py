"""What `fat predict`, `fat evaluate` and `fat embed` write, for a run directory or a
cross-validation directory alike (a CV's folds are averaged; its hold-out is its
out-of-fold predictions): submissions, frame-level outputs, evaluations, embeddings."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fat.core.errors import FatError
from fat.core.evaluation import Evaluation, evaluate_scores
from fat.core.files import atomic_write
from fat.core.ids import write_clip_list
from fat.core.submission import read_submission, write_submission
from fat.predict.ensemble import Source, predict_ensemble
from fat.predict.scoring import (
    VAL,
    open_run_split,
    predict_frames,
    predict_split,
    validated_splits,
    validation_clips,
)
from fat.predict.settings import PredictConfig
from fat.runs.checkpoint import load_trained_model
from fat.runs.cv_directory import CVDirectory, is_cv_directory
from fat.runs.directory import submission_file, write_evaluation
from fat.store import open_store


@dataclass(frozen=True)
class Written:
    """A file a command wrote and what it holds, for the line that says so."""

    path: Path
    what: str

    def line(self) -> str:
        return f"wrote {self.path}: {self.what}"


def predict_to_files(
    source: Path,
    split: str,
    cfg: PredictConfig,
    store: Path | str | None = None,
    out: Path | None = None,
    frames: Path | None = None,
    progress: bool = False,
) -> list[Written]:
    """The submission of a run or a CV directory (its folds' mean) for every clip of
    `split` (default file: SOURCE/submission_<split>.csv), and with `frames` the frame-level
    probabilities of a run's model that has them, one (T', classes) array per clip (.npz)."""
    out = out or submission_file(Path(source), split)
    if is_cv_directory(source):
        if frames is not None:
            raise FatError("--frames: predict one fold's run for frame-level outputs")
        member = Source.parse(str(source), cfg.checkpoint)
        result = predict_ensemble([member], split, store, "mean", None, cfg, progress=progress)
        write_submission(out, result.clip_ids, result.vocabulary, result.probs)
        folds = len(member.runs)
        return [Written(out, f"{len(result.clip_ids)} clips, mean of {folds} folds")]
    trained = load_trained_model(source, cfg.checkpoint)
    with open_run_split(trained, store, split) as data:
        probs = predict_split(trained, data, cfg, progress=progress)
        write_submission(out, data.clip_ids, trained.vocabulary, probs)
        written = [Written(out, f"{len(data)} clips x {len(trained.vocabulary)} classes")]
        if frames is not None:
            per_clip = predict_frames(trained, data, cfg, progress=progress)
            if per_clip is None:
                raise FatError(f"arch {trained.experiment.arch!r} has no frame-level outputs")
            named = {c: f.astype(np.float32) for c, f in zip(data.clip_ids, per_clip, strict=True)}
            with atomic_write(frames, "wb") as f:
                np.savez_compressed(f, **named)
            written.append(Written(frames, "frame probabilities (T', classes) per clip"))
    return written


def evaluate_run(
    source: Path | str,
    split: str = VAL,
    cfg: PredictConfig | None = None,
    store: Path | str | None = None,
    out: Path | None = None,
    progress: bool = False,
) -> tuple[Evaluation, Path]:
    """lwlrap of a run on a labelled store split, or on its own hold-out (`split="val"`,
    curated and noisy apart); of a CV directory, its folds' mean on a split, or its
    out-of-fold predictions (`split="val"`). Written to `out` (default SOURCE/eval/<split>);
    returns the evaluation and where it went."""
    cfg = cfg or PredictConfig()
    facts = {"split": split, "tta": cfg.tta, "checkpoint": cfg.checkpoint}
    if is_cv_directory(source):
        cv = CVDirectory(source)
        evaluation = _cv_evaluation(cv, split, cfg, store, progress)
        if split == VAL:
            facts["checkpoint"] = str(cv.read_settings().get("oof_checkpoint", "best"))
        out = Path(out) if out is not None else cv.eval_dir(split)
        facts["cv"] = str(source)
    else:
        trained = load_trained_model(source, cfg.checkpoint)
        names = validated_splits(trained) if split == VAL else [split]
        parts = {}
        for name in names:
            with open_run_split(trained, store, name) as data:
                clips = validation_clips(trained, data) if split == VAL else np.arange(len(data))
                probs = predict_split(trained, data, cfg, clips, progress)
                parts[name] = (data.labels[clips].astype(np.float64), probs)
        evaluation = evaluate_scores(parts, trained.vocabulary, trained.single_label)
        out = Path(out) if out is not None else trained.run.eval_dir(split)
        facts["run"] = str(source)
    write_evaluation(out, evaluation, facts)
    return evaluation, out


def _cv_evaluation(
    cv: CVDirectory, split: str, cfg: PredictConfig, store: Path | str | None, progress: bool
) -> Evaluation:
    """A CV's out-of-fold predictions (`split` "val"), or its folds' mean on a store split."""
    if split == VAL:
        return _out_of_fold(cv, store)
    member = Source.parse(str(cv.path), cfg.checkpoint)
    result = predict_ensemble([member], split, store, "mean", None, cfg, progress=progress)
    if result.labels is None:
        raise FatError(f"split {split!r} has no labels to evaluate against")
    return evaluate_scores({split: (result.labels, result.probs)}, result.vocabulary)


def _out_of_fold(cv: CVDirectory, store: Path | str | None) -> Evaluation:
    """The CV's oof.csv scored against the labels of the split it cross-validated."""
    if not cv.oof.exists():
        raise FatError(f"{cv.oof}: missing (every fold must finish: run `fat cv` again)")
    ids, vocabulary, probs = read_submission(cv.oof)
    name = cv.read_settings()["experiment"]["train_splits"][0]
    with open_store(store or cv.store(), "r") as opened:
        split = opened.split(name)
        truth = split.labels[[split.index_of(c) for c in ids]].astype(np.float64)
    return evaluate_scores({name: (truth, probs)}, vocabulary)


def write_embeddings(out: Path, vectors: np.ndarray, ids: list[str], what: str) -> Written:
    """EMB.npy (float32 rows) and EMB.ids.txt (one id per row), each whole or not at all."""
    vectors = vectors.astype(np.float32)
    with atomic_write(out, "wb") as f:
        np.save(f, vectors)
    ids_file = out.with_suffix(".ids.txt")
    write_clip_list(ids_file, ids, f"{what} of the rows of {out.name}")
    return Written(out, f"{vectors.shape[0]} x {vectors.shape[1]}; {what} in {ids_file}")
