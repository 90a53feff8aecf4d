"""Cross-validation (`fat cv`), out-of-fold predictions, and ensembles of folds, runs and
checkpoints (`fat ensemble`, `fat predict CV_DIR`)."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fat.cli import main
from fat.core.errors import FatError
from fat.core.holdout import holdout_mask, stratified_folds
from fat.core.metrics import lwlrap
from fat.core.submission import read_submission
from fat.predict.ensemble import Source, combine, fit_weights, predict_ensemble
from fat.runs.cv_directory import CVDirectory
from fat.store import open_store
from fat.train.cv import cross_validate
from tests.synthetic import tiny_run, tiny_train_args

ROOT = Path(__file__).parents[2]


def test_stratified_folds_spread_every_class_and_are_fixed_by_the_seed():
    rng = np.random.default_rng(0)
    labels = np.zeros((300, 20), bool)
    labels[np.arange(300), rng.integers(0, 20, 300)] = True
    labels[rng.random((300, 20)) < 0.05] = True  # ~1 in 2 clips with a second label
    labels[:3] = False  # unlabelled clips still get a fold
    folds = stratified_folds(labels, 5, seed=1)
    assert folds.min() == 0 and folds.max() == 4 and len(folds) == 300
    per_fold = np.array([labels[folds == j].sum(axis=0) for j in range(5)])
    spread = per_fold.max(axis=0) - per_fold.min(axis=0)
    shuffled = rng.permutation(np.arange(300) % 5)
    chance = np.array([labels[shuffled == j].sum(axis=0) for j in range(5)])
    assert spread.max() <= 3 and spread.mean() < (chance.max(0) - chance.min(0)).mean() / 2
    assert np.bincount(folds).max() - np.bincount(folds).min() <= 0.1 * 300 / 5  # classes first
    assert np.array_equal(folds, stratified_folds(labels, 5, seed=1))
    assert not np.array_equal(folds, stratified_folds(labels, 5, seed=2))
    # The trainer's hold-out: fold j of the first split; later splits train whole.
    assert np.array_equal(holdout_mask(labels, 0.2, 1, 0, folds=5, fold=2), folds == 2)
    assert not holdout_mask(labels, 0.2, 1, 1, folds=5, fold=2).any()
    with pytest.raises(ValueError, match="2 <= folds"):
        stratified_folds(labels[:3], 5, seed=0)


def test_combinations_and_fitted_weights():
    a = np.array([[0.9, 0.1, 0.5], [0.2, 0.6, 0.3]])
    b = np.array([[0.1, 0.9, 0.5], [0.4, 0.2, 0.8]])
    assert np.allclose(combine([a, b], "mean"), (a + b) / 2)
    assert np.allclose(combine([a, b], "gmean", [3, 1]), a**0.75 * b**0.25)
    ranks = combine([a, b], "rank")  # each clip's classes ranked 0..1, then averaged
    assert np.allclose(ranks, [[0.5, 0.5, 0.5], [0.25, 0.5, 0.75]])
    with pytest.raises(FatError, match="one weight >= 0 per member"):
        combine([a, b], "mean", [1.0])
    rng = np.random.default_rng(0)
    truth = np.zeros((200, 10))
    truth[np.arange(200), rng.integers(0, 10, 200)] = 1
    good = truth * 0.6 + rng.random((200, 10)) * 0.5  # informative
    noise = rng.random((200, 10))
    w = fit_weights([noise, good], truth, "mean")
    assert w.sum() == pytest.approx(1) and w[1] > 0.8
    assert lwlrap(truth, combine([noise, good], "mean", w)) >= lwlrap(truth, good) - 1e-9


def cv_args(store: Path, out: Path, *extra: str) -> list[str]:
    return ["cv", *tiny_train_args(store, out, epochs=1)[1:], "--folds", "2", *extra]


@pytest.fixture(scope="module")
def two_fold_cv(labelled_store, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cv") / "cv"
    summary = cross_validate(*tiny_run(labelled_store, out, epochs=1), folds=2)
    assert summary is not None and summary.folds == 2
    return out


def test_a_cv_predicts_every_clip_out_of_fold_and_scores_it(two_fold_cv, labelled_store):
    cv = CVDirectory(two_fold_cv)
    with open_store(labelled_store) as store:
        split = store.split("curated")
        ids, labels = split.clip_ids, split.labels.astype(float)
    held = [set(read_submission(cv.fold_oof(i))[0]) for i in range(2)]
    assert not held[0] & held[1] and held[0] | held[1] == set(ids)
    for i in range(2):  # each fold validated on exactly the clips it predicts out of fold
        saved = json.loads((cv.fold(i).path / "inputs.json").read_text())
        assert set(saved["splits"]["curated"]["val"]) == held[i]
    oof_ids, vocabulary, probs = read_submission(cv.oof)
    assert oof_ids == ids and len(vocabulary) == 80  # store order
    summary = cv.read_summary()
    assert summary["n_clips"] == 60 and len(summary["fold_lwlrap"]) == 2
    assert summary["lwlrap"] == pytest.approx(lwlrap(labels, probs), abs=1e-6)
    per_class = (two_fold_cv / "oof_per_class.csv").read_text().splitlines()
    assert per_class[0] == "class,lwlrap,weight,positives" and len(per_class) > 10


def test_predict_and_ensemble_of_a_cv_write_submissions(two_fold_cv, trained_cnn, tmp_path):
    runner = CliRunner()
    done = runner.invoke(main, ["predict", str(two_fold_cv), "--quiet"])
    assert done.exit_code == 0 and "mean of 2 folds" in done.output, done.output
    ids, _, mean_of_folds = read_submission(two_fold_cv / "submission_test.csv")
    folds = Source.parse(str(two_fold_cv), "best")
    each = [predict_ensemble([Source.parse(str(r), "best")], "test").probs for r in folds.runs]
    assert len(ids) == 12 and np.allclose(mean_of_folds, np.mean(each, axis=0), atol=2e-6)
    out = tmp_path / "sub.csv"
    args = ["ensemble", str(two_fold_cv), f"{trained_cnn}:last", "--how", "gmean"]
    done = runner.invoke(main, [*args, "--weights", "3,1", "--out", str(out), "--quiet"])
    assert done.exit_code == 0, done.output
    assert "ensemble" in done.output and f"{trained_cnn}:last" in done.output  # lwlrap rows
    _, vocabulary, probs = read_submission(out)
    assert probs.shape == (12, 80) and len(vocabulary) == 80
    run_alone = predict_ensemble([Source.parse(str(trained_cnn), "last")], "test").probs
    cv_part = combine(each, "gmean")
    assert np.allclose(probs, combine([cv_part, run_alone], "gmean", [3, 1]), atol=2e-6)
    refused = runner.invoke(main, [*args, "--weights", "from-oof", "--out", str(out)])
    assert refused.exit_code == 1 and "needs cross-validation directories" in refused.output


def test_weights_from_oof_across_two_cvs(two_fold_cv, labelled_store, tmp_path):
    other = tmp_path / "cv-b"
    cross_validate(*tiny_run(labelled_store, other, epochs=1, seed=5), folds=2)
    out = tmp_path / "sub.csv"
    args = ["ensemble", str(two_fold_cv), str(other), "--weights", "from-oof", "--out", str(out)]
    done = CliRunner().invoke(main, [*args, "--quiet"])
    assert done.exit_code == 0 and "weights from out-of-fold lwlrap" in done.output, done.output
    weights = [float(w) for w in done.output.split("lwlrap: ")[1].splitlines()[0].split(",")]
    assert sum(weights) == pytest.approx(1, abs=0.02)


def test_a_cv_refuses_to_continue_with_other_settings(two_fold_cv, labelled_store):
    with pytest.raises(FatError, match=r"lr differs from the saved run"):
        cross_validate(*tiny_run(labelled_store, two_fold_cv, epochs=1, lr=0.5), folds=2)
    with pytest.raises(FatError, match=r"holds a 2-fold cross-validation, not 3"):
        cross_validate(*tiny_run(labelled_store, two_fold_cv, epochs=1), folds=3)
    done = CliRunner().invoke(main, cv_args(labelled_store, two_fold_cv, "--fold", "1"))
    assert done.exit_code == 2 and "No such option '--fold'" in done.output  # train's alone


@pytest.mark.slow
def test_a_killed_cv_resumes_where_it_stopped(labelled_store, tmp_path):
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    command = [sys.executable, "-m", "fat", *cv_args(labelled_store, killed, "--epochs", "2")]
    proc = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.DEVNULL)
    cv = CVDirectory(killed)
    deadline_ok = _wait(lambda: cv.fold(1).checkpoint("last").exists(), proc)
    os.kill(proc.pid, signal.SIGKILL)  # fold 1 is training: fold 0 is done
    proc.wait()
    assert deadline_ok and cv.fold_oof(0).exists() and not cv.oof.exists()
    fold0 = cv.fold(0).checkpoint("last").stat().st_mtime_ns
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert cv.fold(0).checkpoint("last").stat().st_mtime_ns == fold0  # not trained again
    again = [sys.executable, "-m", "fat", *cv_args(labelled_store, whole, "--epochs", "2")]
    assert subprocess.run(again, cwd=ROOT, capture_output=True).returncode == 0
    a, b = read_submission(cv.oof), read_submission(CVDirectory(whole).oof)
    assert a[0] == b[0] and np.allclose(a[2], b[2], atol=1e-5)


def _wait(condition, proc, timeout: float = 300.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if condition():
            return True
        time.sleep(0.005)
    return False
