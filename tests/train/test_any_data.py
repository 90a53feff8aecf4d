"""Training on any data set's splits: a named validation split, single-label data trained with
a softmax, best.pt chosen by the data set's headline metric (or any other), and
cross-validation over the folds a data set ships."""

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from fat.cli import main
from fat.core.submission import read_submission
from fat.runs.checkpoint import load_trained_model
from fat.runs.cv_directory import CVDirectory
from fat.store import ClipRecord, open_store
from fat.train.cv import cross_validate
from fat.train.loop import train
from tests.synthetic import SMALL_CONFIG, tiny_run

CLASSES = tuple(f"class_{c}" for c in range(6))


def single_label_clip(i: int, folds: bool = True) -> ClipRecord:
    """A clip of class i % 6 whose frames carry the class (a bright band), in fold
    1 + (i // 6) % 3 (every class in every fold) when the data set ships folds."""
    rng = np.random.default_rng(i)
    c = i % len(CLASSES)
    features = rng.normal(size=(16, 80)).astype(np.float32) * 3 - 40
    features[2 * c : 2 * c + 3] += 25
    labels = np.zeros(len(CLASSES), np.uint8)
    labels[c] = 1
    info = {"fold": 1 + (i // 6) % 3} if folds else {}
    return ClipRecord(f"c{i:04d}.wav", features, labels, 16000, 1, 1.0, info)


@pytest.fixture(scope="module")
def single_label_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("esc") / "features.zarr"
    with open_store(path, "a") as store:
        with store.writer(
            "train", SMALL_CONFIG, CLASSES, dataset="esc50", single_label=True
        ) as writer:
            for i in range(72):
                writer.add(single_label_clip(i))
        with store.writer("eval", SMALL_CONFIG, CLASSES, dataset="esc50", single_label=True) as w:
            for i in range(1000, 1024):
                w.add(single_label_clip(i, folds=False))
    return path


def test_single_label_data_trains_a_softmax_and_picks_best_by_accuracy(
    single_label_store, tmp_path
):
    run = tmp_path / "run"
    summary = train(*tiny_run(single_label_store, run, train_splits=("train",), epochs=3))
    assert summary.metric == "accuracy" and "best val accuracy" in summary.line()
    trained = load_trained_model(run)
    assert trained.single_label
    metrics = pd.read_csv(run / "metrics.csv")
    assert summary.best_score == pytest.approx(metrics["val_accuracy"].max())
    best = metrics[metrics["val_accuracy"] == metrics["val_accuracy"].max()]
    assert int(best["epoch"][best["val_loss"].idxmin()]) == trained.epoch  # ties: lower loss
    done = CliRunner().invoke(main, ["predict", str(run), "--split", "eval", "-q"])
    assert done.exit_code == 0, done.output
    _, vocabulary, probs = read_submission(run / "submission_eval.csv")
    assert vocabulary == CLASSES and np.allclose(probs.sum(axis=1), 1, atol=1e-4)  # a softmax
    done = CliRunner().invoke(main, ["evaluate", str(run), "--split", "eval", "-q"])
    assert done.exit_code == 0 and "accuracy" in done.output, done.output
    scores = json.loads((run / "eval" / "eval" / "summary.json").read_text())
    assert {"lwlrap", "map", "micro_ap", "auc", "d_prime", "accuracy"} <= set(scores)


def test_a_named_split_validates_and_select_by_any_metric(single_label_store, tmp_path):
    run = tmp_path / "run"
    experiment, options = tiny_run(
        single_label_store, run, train_splits=("train",), val_split="eval", loss="bce",
        select_by="map", epochs=3,
    )  # fmt: skip
    summary = train(experiment, options)
    inputs = json.loads((run / "inputs.json").read_text())
    assert inputs["splits"]["train"]["val"] == []  # the training split trains whole
    assert len(inputs["splits"]["train"]["train"]) == 72
    assert len(inputs["splits"]["eval"]["val"]) == 24 and inputs["splits"]["eval"]["train"] == []
    assert not load_trained_model(run).single_label  # --loss bce: sigmoids
    metrics = pd.read_csv(run / "metrics.csv")
    assert summary.metric == "map"
    assert summary.best_score == pytest.approx(metrics["val_map"].max())
    done = CliRunner().invoke(main, ["evaluate", str(run), "-q"])  # --split val: the val split
    assert done.exit_code == 0 and "on 24 clips (val)" in done.output, done.output


def test_cross_validation_over_the_folds_the_data_set_ships(single_label_store, tmp_path):
    out = tmp_path / "cv"
    args = ["cv", "--store", str(single_label_store), "--out", str(out), "--folds", "dataset",
            "--train-splits", "train", "--arch", "cnn", "--width", "0.0625", "--epochs", "1",
            "--batch-size", "8", "--crop-frames", "32", "-q"]  # fmt: skip
    done = CliRunner().invoke(main, args)
    assert done.exit_code == 0, done.output
    assert "3 folds, out-of-fold accuracy" in done.output and "mean" in done.output
    cv = CVDirectory(out)
    with open_store(single_label_store) as store:
        split = store.split("train")
        fold_of = {split.clip_ids[i]: split.info(i)["fold"] for i in range(len(split))}
    for k in range(3):
        held = json.loads((cv.fold(k).path / "inputs.json").read_text())["splits"]["train"]["val"]
        assert {fold_of[c] for c in held} == {k + 1}  # fold k holds out the data set's fold k+1
    summary = cv.read_summary()
    assert len(summary["fold_accuracy"]) == 3 and "mean_fold_accuracy" in summary
    with pytest.raises(Exception, match="has no fold"):
        cross_validate(*tiny_run(single_label_store, tmp_path / "x", train_splits=("eval",),
                                 folds_from="dataset", folds=2), folds=2)  # fmt: skip
