"""Each published layout through the whole tool: `fat featurize --dataset NAME` -> train ->
evaluate -> predict, on small real data sets the tests write (MP3 among them); the metrics
equal scikit-learn's on the same predictions; ESC-50's protocol runs its 5 folds; FSD50K
validates on its own val split."""

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.metrics import accuracy_score, average_precision_score

from fat.cli import main
from fat.core.submission import read_submission
from fat.store import open_store
from tests.datasets.layouts import (
    make_audioset,
    make_csv_manifest,
    make_esc50,
    make_folders,
    make_fsd50k,
)

FEATURES = ["--sample-rate", "16000", "--n-fft", "512", "--hop", "160", "--n-mels", "32"]
TRAIN = ["--arch", "cnn", "--width", "0.0625", "--epochs", "2", "--batch-size", "4",
         "--crop-frames", "32", "--seed", "1", "-q"]  # fmt: skip


def fat(*args) -> str:
    done = CliRunner().invoke(main, [str(a) for a in args])
    assert done.exit_code == 0, done.output
    return done.output


def featurize(layout, store: Path, dataset: str, *extra) -> str:
    return fat("featurize", "--dataset", dataset, "--data-dir", layout.root, "--store", store,
               "--workers", "1", "--quiet", *FEATURES, *extra)  # fmt: skip


def labels_of(store: Path, split: str, ids: list[str]) -> np.ndarray:
    with open_store(store) as opened:
        s = opened.split(split)
        return s.labels[[s.index_of(c) for c in ids]]


def test_fsd50k_trains_on_train_selects_on_val_and_scores_eval(tmp_path):
    layout = make_fsd50k(tmp_path / "FSD50K", n_train=12, n_val=4, n_eval=6, n_classes=4)
    store = tmp_path / "fsd50k.zarr"
    featurize(layout, store, "fsd50k")
    with open_store(store) as opened:
        assert set(opened.splits()) == {"train", "val", "eval"}
        train = opened.split("train")
        assert train.dataset == "fsd50k" and train.vocabulary == layout.vocabulary
        assert train.meta.class_ids == layout.class_ids
    run = tmp_path / "run"
    out = fat("train", "--store", store, "--out", run, "--train-splits", "train",
              "--val-split", "val", *TRAIN)  # fmt: skip
    assert "best val map" in out  # the data set's headline picks best.pt
    inputs = json.loads((run / "inputs.json").read_text())
    assert sorted(inputs["splits"]["val"]["val"]) == sorted(layout.clips["val"])
    fat("evaluate", run, "--split", "eval", "-q")
    fat("predict", run, "--split", "eval", "--out", tmp_path / "eval.csv", "-q")
    ids, vocabulary, probs = read_submission(tmp_path / "eval.csv")
    assert vocabulary == layout.vocabulary and sorted(ids) == sorted(layout.clips["eval"])
    truth = labels_of(store, "eval", ids)
    summary = json.loads((run / "eval" / "eval" / "summary.json").read_text())
    present = [c for c in range(truth.shape[1]) if truth[:, c].any()]
    expected = np.mean([average_precision_score(truth[:, c], probs[:, c]) for c in present])
    assert summary["map"] == pytest.approx(expected, abs=2e-6)  # probabilities as written
    assert summary["micro_ap"] == pytest.approx(
        average_precision_score(truth, probs, average="micro"), abs=2e-6
    )


def test_esc50_runs_its_five_fold_protocol(tmp_path):
    layout = make_esc50(tmp_path / "ESC-50", n_classes=4, per_class=5)
    store = tmp_path / "esc50.zarr"
    featurize(layout, store, "esc50")
    with open_store(store) as opened:
        split = opened.split("train")
        assert split.single_label and sorted({split.info(i)["fold"] for i in range(20)}) == [
            1, 2, 3, 4, 5
        ]  # fmt: skip
    out = fat("cv", "--store", store, "--out", tmp_path / "cv", "--folds", "dataset",
              "--train-splits", "train", *TRAIN)  # fmt: skip
    assert "5 folds, out-of-fold accuracy" in out
    summary = json.loads((tmp_path / "cv" / "oof_summary.json").read_text())
    ids, _, probs = read_submission(tmp_path / "cv" / "oof.csv")
    truth = labels_of(store, "train", ids)
    assert summary["accuracy"] == pytest.approx(accuracy_score(truth.argmax(1), probs.argmax(1)))
    assert len(summary["fold_accuracy"]) == 5
    assert summary["mean_fold_accuracy"] == pytest.approx(np.mean(summary["fold_accuracy"]))
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-4)  # single-label: a softmax


def test_audioset_segments_featurize_train_and_evaluate(tmp_path):
    layout = make_audioset(tmp_path / "audioset", (("balanced_train", 12), ("eval", 5)), 4)
    store = tmp_path / "audioset.zarr"
    featurize(layout, store, "audioset")
    run = tmp_path / "run"
    fat("train", "--store", store, "--out", run, "--train-splits", "balanced_train",
        "--val-split", "eval", *TRAIN)  # fmt: skip
    fat("evaluate", run, "--split", "eval", "-q")
    summary = json.loads((run / "eval" / "eval" / "summary.json").read_text())
    assert summary["n_clips"] == 5 and summary["map"] is not None
    fat("predict", run, "--split", "eval", "-q")
    ids, vocabulary, _ = read_submission(run / "submission_eval.csv")
    assert vocabulary == layout.vocabulary and sorted(ids) == sorted(layout.clips["eval"])


def test_a_csv_of_your_own_with_mp3s(tmp_path):
    layout = make_csv_manifest(tmp_path / "mine", n_clips=12, splits=("train", "test"))
    assert any(p.suffix == ".mp3" for p in layout.paths.values())
    store = tmp_path / "mine.zarr"
    fat("featurize", "--dataset", "csv", "--manifest", layout.options.manifest, "--store", store,
        "--workers", "1", "--quiet", *FEATURES)  # fmt: skip
    run = tmp_path / "run"
    fat("train", "--store", store, "--out", run, "--train-splits", "train", "--val-split", "test",
        *TRAIN)  # fmt: skip
    out = fat("evaluate", run, "-q")
    assert "accuracy" in out
    fat("predict", run, "--split", "test", "-q")
    _, vocabulary, _ = read_submission(run / "submission_test.csv")
    assert vocabulary == layout.vocabulary


def test_a_folder_per_class_with_mp3s_and_tag_reads_mp3_folders(tmp_path):
    layout = make_folders(tmp_path / "classes", per_class=6)
    mp3s = [p for p in layout.paths.values() if p.suffix == ".mp3"]
    assert mp3s
    store = tmp_path / "folders.zarr"
    out = featurize(layout, store, "folders")
    assert "0 skipped" in out
    run = tmp_path / "run"
    fat("train", "--store", store, "--out", run, "--train-splits", "train", "--val-fraction",
        "0.34", *TRAIN)  # fmt: skip
    assert "accuracy" in fat("evaluate", run, "-q")
    fat("predict", run, "--split", "train", "-q")
    assert read_submission(run / "submission_train.csv")[1] == layout.vocabulary
    tagged = fat("tag", run, layout.root, "--format", "json", "-q")
    files = {Path(row["file"]) for row in json.loads(tagged)}
    assert set(mp3s) <= files and len(files) == len(layout.paths)  # every format, one list


def test_bad_rows_and_files_go_to_the_errors_csv_and_the_rest_is_featurized(tmp_path):
    layout = make_fsd50k(tmp_path / "FSD50K", n_train=6, n_val=2, n_eval=2, n_classes=3)
    dev = layout.root / "FSD50K.ground_truth" / "dev.csv"
    with dev.open("a") as f:
        f.write("4242,Not_a_class,/m/x,train\n")  # a label outside the vocabulary
    missing = next(iter(layout.clips["train"]))
    layout.paths[missing].unlink()  # listed, but the file is gone
    (layout.root / "FSD50K.dev_audio" / "777.wav").write_bytes(
        layout.paths[next(iter(layout.clips["val"]))].read_bytes()
    )  # present, but not listed
    store = tmp_path / "s.zarr"
    out = featurize(layout, store, "fsd50k", "--split", "train")
    assert "train: 5 clips written" in out
    errors = (tmp_path / "s.zarr.train.errors.csv").read_text()
    assert "Not_a_class" in errors and f"{missing}" in errors and "777.wav" in errors
    assert "not listed" in errors and "not found" in errors
    esc = make_esc50(tmp_path / "ESC-50", n_classes=2, per_class=1)
    done = CliRunner().invoke(
        main, ["featurize", "--dataset", "esc50", "--data-dir", str(esc.root), "--store",
               str(store), "--workers", "1", "-q", *FEATURES],
    )  # fmt: skip
    assert done.exit_code == 1 and "holds fsd50k splits" in done.output
    assert len(done.output.strip().splitlines()) == 1
