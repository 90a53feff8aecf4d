import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner

from fat.cli import main
from fat.core.errors import FatError
from fat.core.features import LogMelConfig
from fat.core.labels import official_vocabulary
from fat.featurize.audio import load_audio
from fat.featurize.logmel import LogMelExtractor
from fat.featurize.run import THREADS_UP_TO, compute_device, errors_csv_path, featurize_split
from fat.featurize.settings import FeaturizeOptions
from fat.store import open_store
from tests.synthetic import make_fsd_layout, write_tone


@pytest.fixture
def data_dir(tmp_path) -> Path:
    return make_fsd_layout(tmp_path / "data")


def test_featurize_curated_matches_direct_computation(data_dir, tmp_path):
    store_path = tmp_path / "f.zarr"
    summary = featurize_split(
        data_dir, "curated", store_path, options=FeaturizeOptions(workers=1, quiet=True)
    )
    assert summary.written == 6 and not summary.skipped and summary.errors_csv is None
    cfg = LogMelConfig()
    extract = LogMelExtractor(cfg)
    with open_store(store_path) as store:
        split = store.split("curated")
        assert split.feature_config == cfg and split.meta.labelled
        assert split.clip_ids == [f"cur{i:03d}.wav" for i in range(6)]
        vocab = official_vocabulary()
        assert split.labels_of("cur003.wav") == sorted([vocab[3], vocab[10]], key=vocab.index)
        audio, _ = load_audio(data_dir / "train_curated" / "cur002.wav", cfg.sample_rate)
        # numpy's own float16 cast as the oracle of the store's fast rounding
        expected = extract(audio).astype(np.float16)
        assert np.array_equal(split.read("cur002.wav").view(np.uint16), expected.view(np.uint16))
        assert split.source[2].tolist() == [44100, 1, 1.0]
        assert split.stats is not None and store.verify() == ([], [])


def test_parallel_workers_write_the_same_store(data_dir, tmp_path):
    featurize_split(
        data_dir, "curated", tmp_path / "one.zarr", options=FeaturizeOptions(workers=1, quiet=True)
    )
    featurize_split(
        data_dir, "curated", tmp_path / "two.h5", options=FeaturizeOptions(workers=2, quiet=True)
    )
    # Past THREADS_UP_TO workers, worker processes; a commit every 4 clips interleaves commits
    # with the 8-clip batches they return.
    processes = featurize_split(
        data_dir,
        "curated",
        tmp_path / "processes.zarr",
        options=FeaturizeOptions(workers=THREADS_UP_TO + 1, commit_every=4, quiet=True),
    )
    assert processes.written == 6 and not processes.skipped
    with open_store(tmp_path / "one.zarr") as a:
        x = a.split("curated")
        for other in ("two.h5", "processes.zarr"):
            with open_store(tmp_path / other) as b:
                y = b.split("curated")
                assert x.clip_ids == y.clip_ids and x.checksums.tolist() == y.checksums.tolist()
                np.testing.assert_array_equal(
                    x.read_rows(0, x.n_frames), y.read_rows(0, y.n_frames)
                )
                np.testing.assert_allclose(x.stats, y.stats)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_log_mel_writes_what_the_cpu_writes(data_dir, tmp_path):
    assert compute_device("auto", workers=THREADS_UP_TO) == "cuda:0"
    assert compute_device("auto", workers=THREADS_UP_TO + 1) == "cpu"
    cpu = featurize_split(
        data_dir,
        "curated",
        tmp_path / "cpu.zarr",
        options=FeaturizeOptions(device="cpu", quiet=True),
    )
    gpu = featurize_split(
        data_dir,
        "curated",
        tmp_path / "gpu.zarr",
        options=FeaturizeOptions(device="cuda", quiet=True),
    )
    assert gpu.compute.startswith("cuda") and cpu.compute.startswith("cpu")
    with open_store(tmp_path / "cpu.zarr") as a, open_store(tmp_path / "gpu.zarr") as b:
        x, y = a.split("curated"), b.split("curated")
        assert x.clip_ids == y.clip_ids
        rows = x.read_rows(0, x.n_frames).astype(np.float32)
        loud = rows > -80
        assert np.abs(rows - y.read_rows(0, y.n_frames))[loud].max() <= 0.04


@pytest.mark.skipif(torch.cuda.is_available(), reason="tests the machine without a GPU")
def test_without_a_gpu_auto_is_the_cpu_and_cuda_a_clear_error(data_dir, tmp_path):
    assert compute_device("auto", workers=1) == "cpu"
    with pytest.raises(FatError, match="sees no CUDA device"):
        compute_device("cuda", workers=1)
    result = CliRunner().invoke(
        main,
        ["featurize", "--data-dir", str(data_dir), "--split", "curated"]
        + ["--store", str(tmp_path / "f.zarr"), "--device", "cuda", "--quiet"],
    )
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "error: device 'cuda' asked for, but torch sees no CUDA device"
    ]


def test_test_split_takes_labels_only_from_an_answer_key(data_dir, tmp_path):
    store_path = tmp_path / "f.zarr"
    featurize_split(data_dir, "test", store_path, options=FeaturizeOptions(workers=1, quiet=True))
    featurize_split(
        data_dir,
        "test",
        tmp_path / "g.zarr",
        options=FeaturizeOptions(workers=1, quiet=True),
        labels_file=data_dir / "test_labels.csv",
    )
    with open_store(store_path) as plain, open_store(tmp_path / "g.zarr") as keyed:
        assert not plain.split("test").meta.labelled
        assert plain.split("test").labels.sum() == 0
        assert keyed.split("test").labels_of("test001.wav") == [official_vocabulary()[1]]


def _add_bad_inputs(data_dir: Path) -> dict[str, str]:
    """Bad and awkward files in train_noisy; returns clip -> expected reason fragment
    (None for clips that must be featurized correctly)."""
    folder = data_dir / "train_noisy"
    (folder / "empty.wav").write_bytes(b"")
    write_tone(folder / "trunc.wav", 1.0, 440)
    data = (folder / "trunc.wav").read_bytes()
    (folder / "trunc.wav").write_bytes(data[: len(data) // 2])
    (folder / "text.wav").write_text("this is not audio\n")
    sf.write(folder / "silent.wav", np.zeros(44100), 44100)
    write_tone(folder / "tiny.wav", 0.005, 1000)  # 5 ms
    write_tone(folder / "long.wav", 60.0, 440, sr=8000)  # 60 s, resampled
    write_tone(folder / "stereo24.wav", 0.5, 440, subtype="PCM_24")
    write_tone(folder / "dup.wav", 0.5, 660)
    # Finite float samples whose power overflows float32: a log-mel of +inf dB.
    sf.write(folder / "huge.wav", np.full(4410, 1e30, np.float32), 44100, subtype="FLOAT")
    rows = [
        "fname,labels",
        "empty.wav,Bark",
        "trunc.wav,Bark",
        "text.wav,Bark",
        "silent.wav,Bark",
        "tiny.wav,Meow",
        "long.wav,Purr",
        "stereo24.wav,Bark",
        "missing.wav,Bark",
        "unknown.wav,Woof",
        "dup.wav,Bark",
        "dup.wav,Meow",
        "huge.wav,Bark",
    ]
    (data_dir / "train_noisy.csv").write_text("\n".join(rows) + "\n")
    return {
        "empty.wav": "empty file",
        "trunc.wav": "truncated",
        "text.wav": "not",
        "missing.wav": "not found",
        "unknown.wav": "unknown label",
        "dup.wav": "duplicated",
        "huge.wav": "non-finite values in the log-mel",
    }


def test_bad_inputs_are_skipped_with_one_line_each(data_dir, tmp_path):
    expected = _add_bad_inputs(data_dir)
    store_path = tmp_path / "f.zarr"
    summary = featurize_split(
        data_dir, "noisy", store_path, options=FeaturizeOptions(workers=1, quiet=True)
    )
    reasons = {s.clip_id: s.reason for s in summary.skipped}
    assert set(reasons) == set(expected)
    for clip, fragment in expected.items():
        assert fragment in reasons[clip], (clip, reasons[clip])
        assert "\n" not in reasons[clip]
    cfg = LogMelConfig()
    with open_store(store_path) as store:
        split = store.split("noisy")
        assert sorted(split.clip_ids) == [
            "dup.wav",
            "long.wav",
            "silent.wav",
            "stereo24.wav",
            "tiny.wav",
        ]
        assert np.all(split.read("silent.wav").astype(np.float32) == -100)
        assert split.lengths[split.index_of("tiny.wav")] == cfg.n_frames(cfg.min_samples)
        assert split.lengths[split.index_of("long.wav")] == cfg.n_frames(60 * 44100)
        assert split.source[split.index_of("long.wav")].tolist() == [8000, 1, 60.0]
        assert split.labels_of("dup.wav") == ["Bark"]  # first row wins
        assert store.verify()[0] == []
    with open(errors_csv_path(store_path, "noisy")) as f:
        rows = list(csv.DictReader(f))
    assert {r["clip_id"] for r in rows} == set(expected)
    assert next(r for r in rows if r["clip_id"] == "unknown.wav")["line"] == "10"


def test_cli_strict_exits_1_and_summary_lists_skips(data_dir, tmp_path):
    _add_bad_inputs(data_dir)
    args = [
        "featurize",
        "--data-dir",
        str(data_dir),
        "--split",
        "noisy",
        "--workers",
        "1",
        "--store",
        str(tmp_path / "f.zarr"),
        "--quiet",
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "skipped" in result.output and "empty file (0 bytes)" in result.output
    strict = CliRunner().invoke(main, [*args, "--strict"])
    assert strict.exit_code == 1
    assert "Traceback" not in strict.output


def test_other_settings_refused_and_overwrite_recomputes(data_dir, tmp_path):
    store_path = tmp_path / "f.zarr"
    base = [
        "featurize",
        "--data-dir",
        str(data_dir),
        "--split",
        "curated",
        "--workers",
        "1",
        "--store",
        str(store_path),
        "--quiet",
    ]
    assert CliRunner().invoke(main, base).exit_code == 0
    refused = CliRunner().invoke(main, [*base, "--n-mels", "64"])
    assert refused.exit_code == 1
    assert refused.output.count("\n") == 1 and "n_mels: 128 != 64" in refused.output
    again = CliRunner().invoke(main, base)
    assert "0 clips written, 6 already in the store" in again.output
    redone = CliRunner().invoke(main, [*base, "--n-mels", "64", "--overwrite"])
    assert redone.exit_code == 0 and "6 clips written" in redone.output
    with open_store(store_path) as store:
        assert store.split("curated").feature_config.n_mels == 64


def _children(pid: int) -> set[int]:
    return {int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, THREADS_UP_TO + 1], ids=["threads", "processes"])
def test_sigkill_then_rerun_equals_uninterrupted(tmp_path, workers):
    data_dir = make_fsd_layout(tmp_path / "data", n_curated=40, n_test=0)
    store_path = tmp_path / "killed.zarr"
    command = [
        sys.executable,
        "-m",
        "fat",
        "featurize",
        "--data-dir",
        str(data_dir),
        "--split",
        "curated",
        "--workers",
        str(workers),
        "--commit-every",
        "2",
        "--quiet",
    ]
    proc = subprocess.Popen([*command, "--store", str(store_path)], stdout=subprocess.DEVNULL)
    committed = 0
    deadline = time.monotonic() + 120
    while committed < 6 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
        try:
            with open_store(store_path) as store:
                committed = store.split("curated").n_clips if "curated" in store else 0
        except FatError:
            pass  # not created yet
    children = _children(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # Worker processes (and multiprocessing's helpers) leave with their parent.
    deadline = time.monotonic() + 20
    while any(Path(f"/proc/{c}").exists() for c in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [c for c in children if Path(f"/proc/{c}").exists()]
    with open_store(store_path) as store:
        interrupted = store.split("curated").n_clips
        assert 6 <= interrupted < 40, "the kill must land mid-run"
        assert store.verify()[0] == []
    subprocess.run([*command, "--store", str(store_path)], check=True)
    subprocess.run([*command, "--store", str(tmp_path / "clean.zarr")], check=True)
    with open_store(store_path) as a, open_store(tmp_path / "clean.zarr") as b:
        x, y = a.split("curated"), b.split("curated")
        assert x.clip_ids == y.clip_ids and x.n_clips == 40
        np.testing.assert_array_equal(x.read_rows(0, x.n_frames), y.read_rows(0, y.n_frames))
        np.testing.assert_allclose(x.stats[0], y.stats[0])
