"""Distillation (`fat train --teacher`): a student learns a teacher's soft predictions for
every training clip, kept in the run so that a resume never needs the teacher again."""

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fat.cli import main
from fat.core.submission import read_submission
from fat.predict.ensemble import Source, predict_ensemble
from fat.predict.pseudo_labels import sharpen, soften
from fat.runs.checkpoint import load_checkpoint
from fat.runs.directory import RunDirectory
from fat.train.loop import train
from tests.synthetic import build_store, read_csv, tiny_run, tiny_train_args
from tests.train.test_faults import wait_for

SPLITS = ("curated", "noisy")


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("distill") / "features.zarr"
    build_store(path, 40, split="curated")
    build_store(path, 60, split="noisy")
    return path


@pytest.fixture(scope="module")
def teacher(store, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("teacher") / "run"
    train(*tiny_run(store, out, epochs=1, width=0.125, train_splits=("curated",)))
    return out


def student_args(store: Path, out: Path, *extra: str, **changes) -> list[str]:
    return [*tiny_train_args(store, out, train_splits=SPLITS, **changes), *extra]


def losses(run: Path) -> list[float]:
    return [float(r["train_loss"]) for r in read_csv(run / "steps.csv")]


def test_the_student_keeps_the_teachers_targets_for_every_training_clip(store, teacher, tmp_path):
    out = tmp_path / "student"
    flags = ["--teacher", str(teacher), "--teacher-temperature", "2", "--teacher-weight", "0.75"]
    done = CliRunner().invoke(main, student_args(store, out, *flags, epochs=1))
    assert done.exit_code == 0, done.output
    run = RunDirectory(out)
    for split in SPLITS:
        ids, vocabulary, values = read_submission(run.teacher_file(split))
        said = predict_ensemble([Source.parse(str(teacher), "best")], split, store)
        expected = 0.25 * said.labels + 0.75 * sharpen(said.probs, 2.0)
        assert ids == said.clip_ids and vocabulary == said.vocabulary
        assert np.allclose(values, expected, atol=2e-6)
    saved = json.loads((out / "config.json").read_text())["experiment"]
    assert saved["teacher"] == [str(teacher)] and saved["teacher_weight"] == 0.75


def test_the_teachers_weight_moves_the_student_from_its_labels(store, teacher, tmp_path):
    """Weight 0 keeps the labels as targets, so the student steps as one trained without a
    teacher; weight 1 trains towards the teacher alone, and the losses part."""
    alone = tmp_path / "alone"
    assert CliRunner().invoke(main, student_args(store, alone, epochs=1)).exit_code == 0
    runs = {}
    for weight in ("0", "1"):
        runs[weight] = tmp_path / f"weight{weight}"
        args = student_args(store, runs[weight], "--teacher", str(teacher), epochs=1)
        done = CliRunner().invoke(main, [*args, "--teacher-weight", weight])
        assert done.exit_code == 0, done.output
    assert losses(runs["0"]) == pytest.approx(losses(alone), rel=1e-6)
    assert losses(runs["1"]) != pytest.approx(losses(alone), rel=1e-3)


def test_soften_keeps_a_softmax_a_distribution():
    probs = np.array([[0.7, 0.2, 0.1], [0.05, 0.05, 0.9]])
    assert np.allclose(soften(probs, 1.0, single_label=True), probs)
    hot = soften(probs, 4.0, single_label=True)
    assert np.allclose(hot.sum(axis=1), 1) and (hot.max(axis=1) < probs.max(axis=1)).all()
    assert (np.argsort(hot, axis=1) == np.argsort(probs, axis=1)).all()
    assert np.allclose(soften(probs, 0.5, single_label=False), sharpen(probs, 0.5))


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--noisy-targets", "targets.csv"], "--teacher and --noisy-targets both replace targets"),
        (["--teacher-temperature", "0"], "need teacher_temperature > 0"),
        (["--teacher-weight", "1.5"], "teacher_weight"),
    ],
)
def test_conflicting_or_out_of_range_teacher_settings_are_one_line(
    store, teacher, tmp_path, extra, message
):
    args = student_args(store, tmp_path / "s", "--teacher", str(teacher), *extra)
    done = CliRunner().invoke(main, args)
    assert done.exit_code != 0 and message in done.output
    assert "Traceback" not in done.output


def test_a_teacher_that_is_no_run_is_named(store, tmp_path):
    missing = tmp_path / "no-such-run"
    done = CliRunner().invoke(main, student_args(store, tmp_path / "s", "--teacher", str(missing)))
    assert done.exit_code == 1 and str(missing) in done.output
    assert done.output.count("\n") == 1, done.output


@pytest.mark.slow
def test_a_killed_student_resumes_without_its_teacher(store, teacher, tmp_path):
    """SIGKILL after the first checkpoint; the teacher is then gone, and the resumed student
    steps exactly as one that ran through."""
    borrowed = tmp_path / "teacher"
    shutil.copytree(teacher, borrowed)
    settings = dict(epochs=6, steps_per_epoch=10, log_every=1, seed=4)
    command = [sys.executable, "-m", "fat", *student_args(store, tmp_path / "killed", **settings)]
    command += ["--teacher", str(borrowed), "--teacher-temperature", "2"]
    killed = RunDirectory(tmp_path / "killed")
    proc = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    assert wait_for(lambda: killed.checkpoint("last").exists())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert load_checkpoint(killed.checkpoint("last"))["epoch"] < 6  # killed part-way
    shutil.rmtree(borrowed)
    resumed = subprocess.run([*command, "--resume"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    shutil.copytree(teacher, borrowed)
    whole = [*command[: command.index("--out") + 1], str(tmp_path / "whole")]
    whole += command[command.index("--out") + 2 :]
    assert subprocess.run(whole, capture_output=True).returncode == 0
    assert losses(tmp_path / "killed") == pytest.approx(losses(tmp_path / "whole"), rel=1e-6)


@pytest.mark.parametrize("compiled", [False, True], ids=["plain", "compiled"])
def test_a_crop_teacher_answers_the_students_input_as_its_own(store, teacher, compiled):
    """The student's input, normalised by the student's statistics, reaches each member as
    that member's own normalisation of the same raw crop would; compiled (`--compile`) to
    rounding."""
    import torch

    from fat.models.input import ModelInput
    from fat.runs.checkpoint import load_trained_model
    from fat.store import open_store
    from fat.store.normalize import Normalizer
    from fat.train.crop_teacher import load_crop_teacher

    with open_store(store) as s:
        splits = [s.split(name) for name in SPLITS]
        student = Normalizer.from_splits(splits)  # curated and noisy: not the teacher's own
        raw = np.stack([splits[1].read_rows(k * 40, k * 40 + 32) for k in range(4)])
        crop_teacher = load_crop_teacher(
            [str(teacher)], splits[0].feature_config, splits[0].vocabulary, student,
            torch.device("cpu"), temperature=2.0, weight=1.0, compiled=compiled,
        )  # fmt: skip
    assert all(hasattr(m, "_orig_mod") == compiled for m in crop_teacher.models)
    own = np.full(4, 32)
    member = load_trained_model(teacher)
    assert not np.allclose(member.normalizer.mean, student.mean)
    with torch.no_grad():
        expected = torch.sigmoid(member.model(ModelInput(member.normalizer, "cpu")(raw, own)) / 2)
    x = ModelInput(student, "cpu")(raw, own)
    labels = torch.zeros_like(expected)
    assert torch.allclose(crop_teacher.targets(x, labels), expected, atol=1e-5)
    crop_teacher.weight = 0.25
    assert torch.allclose(crop_teacher.targets(x, labels + 1), 0.25 * expected + 0.75, atol=1e-5)


def test_crop_targets_train_end_to_end_and_need_the_teacher_to_resume(store, teacher, tmp_path):
    borrowed = tmp_path / "teacher"
    shutil.copytree(teacher, borrowed)
    teach = ["--teacher", str(borrowed), "--teacher-weight", "1"]
    runs = {}
    for targets in ("clip", "crop"):
        runs[targets] = tmp_path / targets
        args = student_args(store, runs[targets], *teach, "--teacher-targets", targets, epochs=1)
        done = CliRunner().invoke(main, args)
        assert done.exit_code == 0, done.output
    assert not RunDirectory(runs["crop"]).teacher_file("curated").exists()  # nothing to keep
    assert losses(runs["crop"]) != pytest.approx(losses(runs["clip"]), rel=1e-3)
    alone, weight0 = tmp_path / "alone", tmp_path / "weight0"
    assert CliRunner().invoke(main, student_args(store, alone, epochs=1)).exit_code == 0
    args = student_args(store, weight0, *teach[:2], "--teacher-targets", "crop", epochs=1)
    assert CliRunner().invoke(main, [*args, "--teacher-weight", "0"]).exit_code == 0
    assert losses(weight0) == pytest.approx(losses(alone), rel=1e-6)  # the teacher drew no RNG
    shutil.rmtree(borrowed)
    resume = ["train", "--resume", "--out", str(runs["crop"]), "--epochs", "2", "--quiet"]
    done = CliRunner().invoke(main, resume)
    assert done.exit_code == 1 and done.output.count("\n") == 1, done.output
    assert "--teacher-targets crop needs its teacher at each start" in done.output
    done = CliRunner().invoke(
        main, student_args(store, tmp_path / "x", "--teacher-targets", "crop")
    )
    assert done.exit_code != 0 and "--teacher-targets crop needs --teacher" in done.output
