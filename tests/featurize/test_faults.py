"""featurize on hostile input: headers that lie, files a worker dies on, names that cannot be
ids, CSVs with a byte-order mark, bad vocabularies and settings files."""

import contextlib
import json
import os
import signal
import struct
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
from fat.core.errors import FatError
from fat.core.labels import official_vocabulary, read_labels_csv, read_vocabulary
from fat.featurize.run import WORKER_DIED, errors_csv_path, featurize_split, in_flight_path
from fat.featurize.settings import FeaturizeOptions
from fat.store import open_store
from tests.synthetic import make_fsd_layout, read_csv, write_tone

ONE = FeaturizeOptions(workers=1, quiet=True)


def set_wav_rate(path: Path, rate: int) -> None:
    """Overwrite the sample rate (and byte rate) in a PCM WAV's fmt chunk, as a lying header."""
    data = bytearray(path.read_bytes())
    fmt = data.index(b"fmt ") + 8
    channels, bits = (
        struct.unpack_from("<H", data, fmt + 2)[0],
        struct.unpack_from("<H", data, fmt + 14)[0],
    )
    struct.pack_into("<II", data, fmt + 4, rate, rate * channels * bits // 8)
    path.write_bytes(bytes(data))


def test_headers_that_claim_absurd_rates_or_lengths_are_skipped_before_decoding(tmp_path):
    root = make_fsd_layout(tmp_path / "data", n_curated=5, n_test=0)
    folder = root / "train_curated"
    # cur000 (0.5 s) claims 1 Hz: 22,050 samples would be 6 hours, resampled to 44.1 kHz.
    set_wav_rate(folder / "cur000.wav", 1)
    set_wav_rate(folder / "cur001.wav", 0)
    sf.write(folder / "cur002.wav", np.zeros((2000, 1), np.float32), 1, subtype="FLOAT")
    summary = featurize_split(
        root,
        "curated",
        tmp_path / "f.zarr",
        options=FeaturizeOptions(workers=1, quiet=True, max_seconds=1.3),
    )
    reasons = {s.clip_id: s.reason for s in summary.skipped}
    assert reasons["cur000.wav"] == "sample rate 1 Hz in the header, outside 1000-384000 Hz"
    assert reasons["cur001.wav"] == "sample rate 0 in the header"
    assert "sample rate 1 Hz" in reasons["cur002.wav"]  # the libsndfile path checks too
    assert reasons["cur004.wav"] == "1.5 s of audio, over the limit of 1.3 s (--max-seconds)"
    assert summary.written == 1 and "cur003.wav" not in reasons  # 1.25 s: within the limit
    rows = read_csv(errors_csv_path(tmp_path / "f.zarr", "curated"))
    assert {r["clip_id"] for r in rows} >= {"cur000.wav", "cur001.wav", "cur002.wav"}


def test_clip_ids_are_checked_when_a_folder_is_listed(tmp_path):
    root = make_fsd_layout(tmp_path / "data", n_curated=2, n_test=2)
    (root / "sample_submission.csv").unlink()  # no clip list: every file in test/
    for name in ("b c.wav", "café.wav"):
        write_tone(root / "test" / name, 0.5, 440)
    summary = featurize_split(root, "test", tmp_path / "f.zarr", options=ONE)
    reasons = {s.clip_id: s.reason for s in summary.skipped}
    assert set(reasons) == {"b c.wav", "café.wav"} and all("rename" in r for r in reasons.values())
    assert summary.written == 2
    with open_store(tmp_path / "f.zarr") as store:
        assert store.split("test").clip_ids == ["test000.wav", "test001.wav"]


def test_csvs_with_a_byte_order_mark_and_vocabulary_headers(tmp_path):
    vocab = official_vocabulary()
    labels = tmp_path / "train_curated.csv"
    labels.write_bytes(b"\xef\xbb\xbffname,labels\na.wav,Bark\n")
    assert read_labels_csv(labels, vocab).fnames == ["a.wav"]
    sub = tmp_path / "sample_submission.csv"
    sub.write_bytes(b"\xef\xbb\xbffname,Bark ,Meow\n")
    assert read_vocabulary(sub) == ("Bark", "Meow")
    for header, reason in [
        ("fname,Bark,,Meow", "column 3: empty class name"),
        ("fname,Bark,Bark ", "column 3: class 'Bark' again (first in column 2)"),
        ('fname,"Bark,Meow"', "column 2: class name 'Bark,Meow' has a comma"),
    ]:
        sub.write_text(header + "\n")
        with pytest.raises(FatError) as error:
            read_vocabulary(sub)
        assert str(error.value) == f"{sub}:1: {reason}" or reason in str(error.value)


def test_a_settings_file_with_an_unknown_key_or_a_wrong_type_is_refused(tmp_path):
    root = make_fsd_layout(tmp_path / "data", n_curated=1, n_test=0)
    config = tmp_path / "c.json"
    for content, reason in [
        ({"n_mel": 64}, "unknown setting(s) n_mel"),
        ({"n_mels": "64"}, "n_mels must be an integer, got '64'"),
        ({"n_mels": [64]}, "n_mels must be an integer"),
    ]:
        config.write_text(json.dumps(content))
        result = CliRunner().invoke(
            main,
            [
                "featurize",
                "--data-dir",
                str(root),
                "--split",
                "curated",
                "--store",
                str(tmp_path / "f.zarr"),
                "--config",
                str(config),
                "--quiet",
            ],
        )
        assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
        assert reason in result.output


def watch_memory(
    pid: int, limit_mb: float, stop: threading.Event
) -> tuple[list[int], threading.Thread]:
    """What the kernel's out-of-memory killer does, for one process tree: SIGKILL any process
    in it whose resident memory passes `limit_mb`. Returns the pids killed and the watcher."""
    killed = []

    def tree(root: int) -> list[int]:
        try:
            children = Path(f"/proc/{root}/task/{root}/children").read_text().split()
        except OSError:
            return []
        return [root] + [p for c in children for p in tree(int(c))]

    def rss_mb(p: int) -> float:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0

    def loop() -> None:
        while not stop.is_set():
            for p in tree(pid):
                if rss_mb(p) > limit_mb:
                    # Recorded first: the root dying lets communicate() return at once.
                    killed.append(p)
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(p, signal.SIGKILL)
            time.sleep(0.005)

    watcher = threading.Thread(target=loop, daemon=True)
    watcher.start()
    return killed, watcher


def featurize_watched(root: Path, store: Path, workers: int) -> tuple[int, str, list[int]]:
    command = [
        sys.executable,
        "-m",
        "fat",
        "featurize",
        "--data-dir",
        str(root),
        "--split",
        "curated",
        "--store",
        str(store),
        "--workers",
        str(workers),
        "--quiet",
    ]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    stop = threading.Event()
    killed, watcher = watch_memory(proc.pid, 350, stop)
    out, _ = proc.communicate(timeout=600)
    stop.set()
    watcher.join()
    return proc.returncode, out, killed


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 5], ids=["threads", "processes"])
def test_a_file_whose_worker_the_system_kills_is_skipped_on_the_rerun(tmp_path, workers):
    """A clip that needs more memory than the machine allows (a long 48 kHz stereo file here;
    a process tree past 350 MB is killed, as the kernel's OOM killer would): the run dies, the
    rerun tries the clips that were in flight one at a time, skips the one whose worker dies
    again, and writes the rest; before, every rerun died on that file."""
    root = make_fsd_layout(tmp_path / "data", n_curated=8, n_test=0)
    t = np.arange(550 * 48000) / 48000
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    sf.write(root / "train_curated" / "cur003.wav", np.stack([tone, tone], 1), 48000, "PCM_16")
    store = tmp_path / "f.zarr"
    code, out, killed = featurize_watched(root, store, workers)
    assert killed and code != 0, out
    assert "cur003.wav" in in_flight_path(store, "curated").read_text()
    code, out, killed = featurize_watched(root, store, workers)
    assert code == 0 and killed, out
    assert f"cur003.wav: {WORKER_DIED}" in out
    assert "7 clips written" in out or "clips written" in out
    with open_store(store) as s:
        assert sorted(s.split("curated").clip_ids) == [
            f"cur{i:03d}.wav" for i in range(8) if i != 3
        ]
    assert not in_flight_path(store, "curated").exists()
