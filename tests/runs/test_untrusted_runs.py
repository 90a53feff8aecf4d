"""Runs and the files around them when things go wrong: a full disk is one line and leaves
nothing half-written, two processes on one CV directory, error CSVs that no spreadsheet runs,
and unclear messages made clear."""

import csv
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from fat.cli import main
from fat.core.files import atomic_write
from fat.datasets import Issue
from fat.featurize.report import safe_cell, write_errors
from tests.store.test_faults import tmpfs
from tests.synthetic import TINY, cli_flags, tiny_train_args

ROOT = Path(__file__).parents[2]


def fat(*args: str) -> tuple[int, str]:
    done = subprocess.run([sys.executable, "-m", "fat", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True)  # fmt: skip
    return done.returncode, done.stdout + done.stderr


def one_error_line(code: int, out: str) -> str:
    lines = [line for line in out.strip().splitlines() if line.strip()]
    assert code == 1 and "Traceback" not in out, out[-3000:]
    assert lines[-1].startswith("error: "), out[-3000:]
    return lines[-1]


def fill(disk: Path) -> None:
    """Take every byte left on `disk`."""
    with open(disk / "filler", "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError:
            pass


def no_temporaries(folder: Path) -> bool:
    return not [p for p in folder.rglob(".*.tmp")]


@pytest.mark.slow
def test_a_full_disk_is_one_line_for_train_cv_predict_export_and_copy(tiny_store, tmp_path):
    with tmpfs(tmp_path / "small", "600k") as disk:
        # train: the run directory on a disk too small for a width-1 checkpoint
        run = disk / "run"
        line = one_error_line(*fat(*tiny_train_args(tiny_store, run, width=1.0, epochs=1)))
        assert "the disk is full" in line and "No space left" in line
        assert no_temporaries(disk)
        subprocess.run(["mount", "-o", "remount,size=200m", str(disk)], check=True)
        code, out = fat(*tiny_train_args(tiny_store, run, width=1.0, epochs=1))
        assert code == 0, out[-2000:]  # the rerun after freeing space completes
        fill(disk)
        for command in (
            ["predict", run, "--store", tiny_store, "--split", "curated", "--out",
             disk / "sub.csv", "-q"],
            ["store", "export", tiny_store, "curated", disk / "x.npz", "--format", "npz",
             "--quiet"],
            ["store", "copy", tiny_store, disk / "copy.zarr", "--quiet"],
            ["cv", *tiny_train_args(tiny_store, disk / "cv", epochs=1)[1:], "--folds", "2"],
        ):  # fmt: skip
            line = one_error_line(*fat(*command))
            assert "disk is full" in line or "No space left" in line, line
        assert not (disk / "sub.csv").exists() and not (disk / "x.npz").exists()


def test_a_full_disk_while_appending_a_log_leaves_no_half_row(tmp_path):
    from fat.core.files import append_durably

    with tmpfs(tmp_path / "small", "8k") as disk:
        log = disk / "steps.csv"
        log.write_text("step,loss\n")
        with pytest.raises(Exception, match="the disk is full"):
            for k in range(10000):
                append_durably(log, f"{k},{k * 0.5}\n")
        rows = log.read_text().splitlines()
        assert all(len(row.split(",")) == 2 for row in rows)  # no row cut short


def test_writers_of_one_file_at_once_each_write_it_whole(tmp_path):
    target, errors = tmp_path / "cv.json", []

    def write(k: int) -> None:
        try:
            for _ in range(50):
                with atomic_write(target) as f:
                    f.write(f'{{"writer": {k}}}' + " " * 1000)
        except Exception as e:  # noqa: BLE001 - the failure is what the test looks for
            errors.append(e)

    threads = [threading.Thread(target=write, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and target.read_text().startswith('{"writer": ')
    assert not list(tmp_path.glob(".cv.json.*.tmp"))


@pytest.mark.slow
def test_a_second_cv_of_one_directory_is_refused_before_it_writes(tiny_store, tmp_path):
    out = tmp_path / "cv"
    flags = cli_flags(**{**TINY, "epochs": 200})
    command = [sys.executable, "-m", "fat", "cv", "--store", str(tiny_store), "--out", str(out),
               *flags, "--folds", "2", "--quiet"]  # fmt: skip
    first = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not (out / "cv.json").exists():
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        before = (out / "cv.json").read_bytes()
        line = one_error_line(*fat(*command[3:]))
        assert "another process" in line and "running this cross-validation" in line
        assert (out / "cv.json").read_bytes() == before
    finally:
        first.kill()
        first.wait()


def test_the_errors_csv_runs_no_formula_and_keeps_no_raw_control_bytes(tmp_path):
    issues = [Issue("=HYPERLINK(\"http://x\")", 3, "+a\x00b.wav", "@SUM(1)"),
              Issue("data/-x.wav", None, "-x.wav", "bad\x07")]  # fmt: skip
    path = write_errors(tmp_path / "e.csv", issues)
    rows = list(csv.reader(path.open()))
    cells = [cell for row in rows[1:] for cell in row if cell]
    assert all(cell[0] not in "=+-@" for cell in cells), cells
    assert "\x00" not in path.read_text() and "\x07" not in path.read_text()
    assert safe_cell("plain.wav") == "plain.wav"


def test_featurize_names_what_a_path_is_when_it_is_no_file(tmp_path):
    from fat.datasets import DatasetOptions, get_dataset

    root = tmp_path / "mine"
    (root / "dog").mkdir(parents=True)
    sf.write(root / "dog" / "ok.wav", np.zeros(1600, np.float32), 16000)
    os.mkfifo(root / "dog" / "pipe.wav")
    (root / "dog" / "loop.wav").symlink_to(root / "dog" / "loop.wav")
    (root / "dog" / "dir.wav").mkdir()
    (root / "dog" / "zero.wav").symlink_to("/dev/zero")
    manifest = tmp_path / "clips.csv"
    manifest.write_text("path,labels\n" + "".join(
        f"mine/dog/{n},dog\n" for n in ("ok.wav", "pipe.wav", "loop.wav", "dir.wav", "zero.wav")
    ))  # fmt: skip
    listing = get_dataset("csv").read(tmp_path, None, DatasetOptions(manifest=manifest))
    reasons = {i.clip_id: i.reason for i in listing.splits["train"].issues}
    joined = " | ".join(reasons.values())
    assert "a named pipe (FIFO)" in joined and "a symbolic-link loop" in joined
    assert "a directory" in joined and "a character device" in joined
    assert "file not found" not in joined


def test_tag_has_the_max_seconds_option_its_skip_line_names(trained_cnn, tmp_path):
    from fat.runs.checkpoint import load_trained_model

    rate = load_trained_model(trained_cnn).feature_config.sample_rate
    long = tmp_path / "long.wav"
    sf.write(long, np.zeros(rate * 3, np.float32), rate)
    done = CliRunner().invoke(main, ["tag", str(trained_cnn), str(long), "--max-seconds", "1"])
    assert "--max-seconds" in done.output and "skipped" in done.output
    assert "No such option" not in done.output
    done = CliRunner().invoke(main, ["tag", str(trained_cnn), str(long), "--max-seconds", "10",
                                     "-q"])  # fmt: skip
    assert done.exit_code == 0 and "long.wav" in done.output


def test_a_run_without_validation_clips_says_so(tiny_store, tmp_path):
    done = CliRunner().invoke(main, tiny_train_args(tiny_store, tmp_path / "r", epochs=1,
                                                    val_fraction=0.0))  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "-inf" not in done.output and "no validation clips" in done.output
