"""Noisy-label strategies: split weights, Lsoft targets, noisy-clip selection, staged training."""

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from fat.cli import main
from fat.core.errors import FatError
from fat.core.ids import read_clip_list
from fat.models import TrainingOutputs
from fat.runs.checkpoint import load_trained_model
from fat.runs.compose import resume_settings
from fat.runs.directory import RunDirectory
from fat.train.data import crop_plan, load_training_data
from fat.train.loop import train
from fat.train.losses import lsoft_targets, training_loss
from tests.synthetic import GiB, build_store, tiny_run, tiny_train_args


@pytest.fixture(scope="module")
def two_split_store(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("noisy") / "features.zarr"
    build_store(path, 40, split="curated")
    build_store(path, 80, split="noisy")
    return path


def test_split_weights_set_the_share_of_each_split(two_split_store):
    data = load_training_data(two_split_store, ("curated", "noisy"), 0.0, 0, GiB)
    weights = {"curated": 0.75, "noisy": 0.25}
    plan = crop_plan(
        data, 1, seed=0, batch_size=8, crop_frames=32, steps=200, split_weights=weights
    )
    share = float((plan.split == 0).mean())
    assert abs(share - 0.75) < 0.03
    plain = crop_plan(data, 1, seed=0, batch_size=8, crop_frames=32)
    assert abs(float((plain.split == 0).mean()) - 40 / 120) < 0.05
    for i, s in enumerate(data.splits):  # weighted sampling still draws training clips only
        assert set(plan.clip[plan.split == i].tolist()) <= set(s.train.tolist())
    only_noisy = crop_plan(data, 1, 0, 8, 32, steps=10, split_weights={"noisy": 1.0})
    assert np.all(only_noisy.split == 1)


def test_lsoft_blends_noisy_targets_only():
    labels = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    logits = torch.tensor([[-2.0, 3.0], [0.0, 0.0], [1.0, -1.0]], requires_grad=True)
    noisy = torch.tensor([0.0, 1.0, 0.5])
    target = lsoft_targets(labels, logits, noisy, beta=0.7)
    p = torch.sigmoid(logits.detach())
    assert torch.equal(target[0], labels[0])
    assert torch.allclose(target[1], 0.7 * labels[1] + 0.3 * p[1])
    assert torch.allclose(target[2], 0.85 * labels[2] + 0.15 * p[2])
    assert not target.requires_grad


def test_training_loss_routes_each_clip_through_its_head():
    target = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    main = torch.zeros(2, 2, requires_grad=True)
    noisy_head = torch.zeros(2, 2, requires_grad=True)
    aux = torch.zeros(2, 2, requires_grad=True)
    out = TrainingOutputs(main, (aux,), noisy_head)
    training_loss(out, target, torch.tensor([0.0, 1.0]), (0.5,)).backward()
    # The curated clip (row 0) trains the main head only, the noisy one (row 1) the noisy head.
    assert main.grad[0].abs().sum() > 0 and main.grad[1].abs().sum() == 0
    assert noisy_head.grad[0].abs().sum() == 0 and noisy_head.grad[1].abs().sum() > 0
    assert torch.allclose(aux.grad, 0.5 * (0.5 - target) / 4)  # weight x d(mean BCE)/d logit
    plain = training_loss(TrainingOutputs(main), target, torch.tensor([0.0, 1.0]), ())
    assert torch.isclose(plain, torch.nn.functional.binary_cross_entropy_with_logits(main, target))


def test_a_run_with_a_noisy_head_trains_saves_and_predicts(two_split_store, tmp_path):
    from fat.predict.ensemble import Source, predict_ensemble

    out = tmp_path / "noisy-head"
    changes = dict(epochs=1, train_splits=("curated", "noisy"), noisy_head=True)
    train(*tiny_run(two_split_store, out, **changes))
    trained = load_trained_model(out, "best")
    assert trained.model.noisy_classifier is not None
    assert "noisy_classifier.weight" in trained.model.state_dict()
    scores = predict_ensemble([Source.parse(str(out), "best")], "curated")
    assert np.isfinite(scores.probs).all() and scores.probs.shape[0] == 40
    args = tiny_train_args(two_split_store, tmp_path / "r", noisy_head=True)
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0 and "noisy_head needs the noisy split" in result.output


def test_select_noisy_round_trip_and_staged_training(two_split_store, tmp_path):
    base = dict(epochs=1, seed=2, lr=3e-4, log_every=10)
    pre = tmp_path / "pre"
    train(*tiny_run(two_split_store, pre, train_splits=("noisy",), **base))
    runner = CliRunner()
    lists = {}
    for threshold in ("0", "0.3"):
        out = tmp_path / f"keep{threshold}.txt"
        result = runner.invoke(
            main,
            ["select-noisy", str(pre), "--min-lwlrap", threshold, "--out", str(out), "--quiet"],
        )
        assert result.exit_code == 0, result.output
        lists[threshold] = read_clip_list(out)
    assert len(lists["0"]) == 80 and set(lists["0.3"]) < set(lists["0"])
    # Training on the selection: only listed noisy clips train.
    chosen = lists["0.3"]
    data = load_training_data(two_split_store, ("curated", "noisy"), 0.2, 2, GiB, chosen)
    noisy = data.splits[1]
    assert {noisy.split.clip_ids[i] for i in noisy.train} <= set(chosen)
    # The run keeps its own copy of the list: resuming needs the run, not the file.
    keep = tmp_path / "keep0.3.txt"
    listed = tmp_path / "listed"
    train(
        *tiny_run(
            two_split_store,
            listed,
            train_splits=("curated", "noisy"),
            noisy_clips=str(keep),
            **base,
        )
    )
    assert read_clip_list(RunDirectory(listed).noisy_clips_file) == chosen
    keep.unlink()
    resumed, options = resume_settings(listed, {"epochs": 2})
    train(resumed, options, resume=True)
    # Staged: fine-tune on curated from the noisy run's best weights.
    train(*tiny_run(two_split_store, tmp_path / "fine", init=str(pre), **{**base, "lr": 1e-12}))
    a, b = (
        load_trained_model(pre, "best").model,
        load_trained_model(tmp_path / "fine", "last").model,
    )
    for (name, p), q in zip(a.named_parameters(), b.parameters(), strict=True):
        assert torch.allclose(p, q, atol=1e-8), name


def test_bad_noisy_clip_list_names_the_line(two_split_store, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("clip00001.wav\n../etc/passwd\n")
    args = tiny_train_args(two_split_store, tmp_path / "r", train_splits="curated,noisy")
    result = CliRunner().invoke(main, [*args, "--noisy-clips", str(bad)])
    assert result.exit_code == 1 and f"{bad}:2:" in result.output


def test_pseudo_labels_from_a_teacher_train_the_noisy_clips(two_split_store, tmp_path):
    from fat.core.submission import read_submission, write_submission
    from fat.predict.ensemble import Source, predict_ensemble
    from fat.predict.pseudo_labels import sharpen

    teacher = tmp_path / "teacher"
    train(*tiny_run(two_split_store, teacher, epochs=1, train_splits=("curated",)))
    targets = tmp_path / "targets.csv"
    args = [str(teacher), "--temperature", "0.5", "--blend", "0.25", "--out", str(targets)]
    done = CliRunner().invoke(main, ["pseudo-label", *args, "--quiet"])
    assert done.exit_code == 0 and "soft targets for 80 noisy clips" in done.output, done.output
    ids, vocabulary, values = read_submission(targets)
    teacher_probs = predict_ensemble([Source.parse(str(teacher), "best")], "noisy")
    expected = 0.25 * teacher_probs.labels + 0.75 * sharpen(teacher_probs.probs, 0.5)
    assert ids == teacher_probs.clip_ids and np.allclose(values, expected, atol=2e-6)
    p = np.array([0.2, 0.5, 0.9])
    assert np.allclose(sharpen(p, 1.0), p)
    assert (np.abs(sharpen(p, 0.5) - 0.5) >= np.abs(p - 0.5)).all()

    # The student trains its noisy clips towards the file's rows, curated ones to their labels.
    data = load_training_data(
        two_split_store,
        ("curated", "noisy"),
        0.0,
        0,
        GiB,
        soft_targets={"noisy": (ids, vocabulary, values)},
    )
    noisy = data.splits[1]
    row = {c: k for k, c in enumerate(ids)}
    want = values[[row[c] for c in noisy.split.clip_ids[:5]]]
    assert np.allclose(noisy.targets_of(np.arange(5)), want, atol=1e-6)
    assert np.array_equal(data.splits[0].targets_of(np.arange(3)), data.splits[0].split.labels[:3])
    student = tmp_path / "student"
    changes = dict(epochs=1, train_splits=("curated", "noisy"), noisy_targets=str(targets))
    train(*tiny_run(two_split_store, student, **changes))
    assert read_submission(RunDirectory(student).noisy_targets_file)[0] == ids  # its own copy
    write_submission(targets, ids[:-1], vocabulary, values[:-1])  # one clip short
    with pytest.raises(FatError, match="1 noisy clips have none"):
        train(*tiny_run(two_split_store, tmp_path / "short", **changes))
