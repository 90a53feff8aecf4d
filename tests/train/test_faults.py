"""Training under faults: a store that changed under a run, kills during a checkpoint save and a
log rewrite, two trainers of one run, a checkpoint carrying code, degenerate data, a DDP rank
that dies."""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from fat.cli import main
from fat.core.errors import FatError
from fat.core.labels import official_vocabulary
from fat.predict.outputs import evaluate_run
from fat.runs.checkpoint import load_checkpoint, load_trained_model
from fat.runs.directory import RunDirectory
from fat.store import ClipRecord, open_store
from fat.train.data import load_training_data
from fat.train.loop import train
from tests.synthetic import (
    SMALL_CONFIG,
    GiB,
    build_store,
    read_csv,
    synthetic_clip,
    tiny_run,
    tiny_train_args,
    torchrun_fat,
)

ROOT = Path(__file__).parents[2]


def copy_store(source: Path, target: Path) -> Path:
    import shutil

    shutil.copytree(source, target)
    return target


def append_clips(store: Path, first: int, n: int) -> None:
    with open_store(store, "a") as s:
        with s.writer("curated", SMALL_CONFIG, official_vocabulary()) as w:
            for i in range(first, first + n):
                w.add(synthetic_clip(i))


def test_a_store_that_grew_refuses_resume_and_evaluate_keeps_the_saved_hold_out(
    tiny_store, tmp_path
):
    store = copy_store(tiny_store, tmp_path / "s.zarr")
    experiment, options = tiny_run(store, tmp_path / "run", epochs=2)
    train(experiment, options, stop_after=1)
    held_out = RunDirectory(tmp_path / "run").read_inputs()["splits"]["curated"]["val"]
    before, _ = evaluate_run(tmp_path / "run", "val")
    append_clips(store, 1000, 10)  # 4 of those would have joined the hold-out, before
    with pytest.raises(FatError, match="had 48 clips when the run started and has 58 now"):
        train(experiment, options, resume=True)
    after, _ = evaluate_run(tmp_path / "run", "val")
    assert len(after.truth) == len(held_out) == len(before.truth)
    assert after.lwlrap == pytest.approx(before.lwlrap)
    trained = load_trained_model(tmp_path / "run")
    assert trained.validation_ids["curated"] == held_out


def test_a_replaced_store_split_refuses_resume(tiny_store, tmp_path):
    store = copy_store(tiny_store, tmp_path / "s.zarr")
    experiment, options = tiny_run(store, tmp_path / "run", epochs=2)
    train(experiment, options, stop_after=1)
    with open_store(store, "a") as s:  # featurized again: the same clips, a new split
        with s.writer("curated", SMALL_CONFIG, official_vocabulary(), overwrite=True) as w:
            for i in range(48):
                w.add(synthetic_clip(i))
    with pytest.raises(FatError, match="was replaced \\(featurized again\\)"):
        train(experiment, options, resume=True)


def wait_for(condition, timeout: float = 120.0, every: float = 0.0005) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return False


def train_command(store: Path, out: Path, *extra: str) -> list[str]:
    # width 1: a checkpoint of ~50 MB, whose save takes long enough to be killed in.
    settings = dict(width=1.0, epochs=3, steps_per_epoch=2, log_every=1, seed=4)
    return [sys.executable, "-m", "fat", *tiny_train_args(store, out, **settings), *extra]


def being_written(path: Path) -> list[Path]:
    """The temporary files `atomic_write` is filling for `path` (one per writer)."""
    try:
        return list(path.parent.glob(f".{path.name}.*.tmp"))
    except FileNotFoundError:
        return []


def filling(path: Path) -> bool:
    """Whether a temporary file for `path` has bytes in it (it may be renamed meanwhile)."""
    for tmp in being_written(path):
        try:
            if tmp.stat().st_size > 0:
                return True
        except FileNotFoundError:
            pass
    return False


@pytest.mark.slow
def test_a_kill_inside_the_checkpoint_save_leaves_the_last_one_and_resume_matches(
    tiny_store, tmp_path
):
    killed = tmp_path / "killed"
    run = RunDirectory(killed)
    proc = subprocess.Popen(train_command(tiny_store, killed), stderr=subprocess.DEVNULL)
    assert wait_for(lambda: run.checkpoint("last").exists())  # epoch 1 saved
    last = run.checkpoint("last")
    assert wait_for(lambda: filling(last))  # epoch 2 being saved
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert load_checkpoint(run.checkpoint("last"))["epoch"] == 1  # the previous one, whole
    assert (
        subprocess.run(
            train_command(tiny_store, killed, "--resume"), capture_output=True
        ).returncode
        == 0
    )
    whole = tmp_path / "whole"
    assert subprocess.run(train_command(tiny_store, whole), capture_output=True).returncode == 0
    a, b = read_csv(killed / "steps.csv"), read_csv(whole / "steps.csv")
    assert [r["step"] for r in a] == [r["step"] for r in b]
    assert [float(r["train_loss"]) for r in a] == pytest.approx(
        [float(r["train_loss"]) for r in b], rel=1e-6
    )


@pytest.mark.slow
def test_a_kill_while_resume_rewrites_the_logs_keeps_the_history(tiny_store, tmp_path):
    out = tmp_path / "run"
    assert subprocess.run(train_command(tiny_store, out), capture_output=True).returncode == 0
    steps = out / "steps.csv"
    rows = read_csv(steps)
    # A long history to rewrite (what a long run leaves): copies of its rows, all kept.
    with open(steps, "a", newline="") as f:
        writer = csv.DictWriter(f, list(rows[0]))
        for _ in range(60000):
            writer.writerows(rows)
    size = steps.stat().st_size
    proc = subprocess.Popen(
        train_command(tiny_store, out, "--resume", "--epochs", "4"), stderr=subprocess.DEVNULL
    )
    assert wait_for(lambda: being_written(steps) or steps.stat().st_size < size)  # rewriting
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert steps.stat().st_size == size and len(read_csv(steps)) == len(rows) * 60001


@pytest.mark.slow
def test_a_second_trainer_of_the_same_run_is_refused(tiny_store, tmp_path):
    out = tmp_path / "run"
    args = tiny_train_args(tiny_store, out, epochs=50, steps_per_epoch=20, log_every=10)
    first = subprocess.Popen(
        [sys.executable, "-m", "fat", *args], cwd=ROOT, stderr=subprocess.DEVNULL
    )
    try:
        assert wait_for(lambda: (out / "config.json").exists())
        for extra in ([], ["--resume"]):
            second = subprocess.run(
                [sys.executable, "-m", "fat", *args, *extra],
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert second.returncode == 1, second.stderr
            refusal = f"{out}: another process (pid {first.pid}) is training this run"
            assert second.stderr.startswith(f"error: {refusal}; wait for it to finish")
            assert second.stderr.count("\n") == 1
    finally:
        first.kill()
        first.wait()


def test_a_checkpoint_that_carries_code_is_refused(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pt"
    torch.save({"format": 2, "model": Payload()}, path)
    with pytest.raises(FatError, match="refused: it holds Python objects beyond tensors"):
        load_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        ({"log_every": 0}, "log_every >= 1"),
        ({"workers": -1}, "workers >= 0"),
        ({"seed": -1}, "seed >= 0"),
        ({"steps_per_epoch": -2}, "steps_per_epoch >= 0"),
        ({"memory_budget_gb": -1.0}, "memory_budget_gb >= 0"),
    ],
)
def test_impossible_settings_are_refused_by_name(tmp_path, settings, reason):
    with pytest.raises(FatError, match=reason):
        tiny_run(tmp_path / "s.zarr", tmp_path / "r", **settings)


def write_split(store: Path, name: str, clips: list[ClipRecord], labelled: bool = True) -> None:
    with open_store(store, "a") as s:
        with s.writer(name, SMALL_CONFIG, official_vocabulary(), labelled=labelled) as w:
            for clip in clips:
                w.add(clip)


def test_degenerate_training_data_gets_a_clear_message(tmp_path):
    store = tmp_path / "s.zarr"
    write_split(store, "curated", [])
    write_split(
        store,
        "noisy",
        [
            ClipRecord(c.clip_id, c.features, c.labels * 0, 44100, 1, 1.0)
            for c in map(synthetic_clip, range(5))
        ],
        labelled=False,
    )
    for splits, reason in [
        (("curated",), "has no committed clips"),
        (("noisy",), "has no labels to train on"),
    ]:
        with pytest.raises(FatError, match=reason):
            train(*tiny_run(store, tmp_path / "r", train_splits=splits))
    small = tmp_path / "small.zarr"
    build_store(small, 10)
    with pytest.raises(FatError, match="--batch-size 16 is larger than the 10 training clips"):
        train(*tiny_run(small, tmp_path / "r2", batch_size=16))
    nan = tmp_path / "nan.zarr"
    bad = synthetic_clip(3)
    features = bad.features.copy()
    features[2, 5] = np.nan
    write_split(
        nan,
        "curated",
        [synthetic_clip(i) for i in range(8)]
        + [ClipRecord("nan.wav", features, bad.labels, 44100, 1, 1.0)],
    )
    with pytest.raises(FatError, match="non-finite values.*fat store verify"):
        load_training_data(nan, ("curated",), 0.2, 0, GiB)


def test_classes_without_a_training_clip_are_named(tiny_store, tmp_path):
    result = CliRunner().invoke(main, tiny_train_args(tiny_store, tmp_path / "run", epochs=1))
    assert result.exit_code == 0, result.output
    assert "classes have no training clip" in result.output
    assert "the model can only learn them as absent" in result.output


@pytest.mark.slow
def test_a_ddp_rank_that_dies_stops_the_other_with_a_clear_message(tiny_store, tmp_path):
    out = tmp_path / "ddp"
    args = tiny_train_args(
        tiny_store, out, epochs=200, batch_size=4, steps_per_epoch=50, log_every=5
    )
    command = torchrun_fat(2, 29600 + os.getpid() % 300, *args)
    proc = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )

    def rank(n: int) -> int | None:
        for child in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split():
            environ = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
            if f"RANK={n}".encode() in environ:
                return int(child)
        return None

    assert wait_for(
        lambda: (out / "steps.csv").exists() and len(read_csv(out / "steps.csv")) >= 2, every=0.1
    )
    os.kill(rank(1), signal.SIGKILL)
    output, _ = proc.communicate(timeout=120)  # no hang
    assert proc.returncode != 0
    assert "error: rank 0 stopped" in output and "resume with --resume" in output, output[-3000:]
