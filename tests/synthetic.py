"""Test data made on the spot: synthetic log-mel clips and stores, WAV tones in the
FSDKaggle2019 layout, and tiny training settings. Plain functions, importable by tests and by
the subprocesses they start (fixtures are in conftest.py)."""

import csv
import signal
from dataclasses import fields
from pathlib import Path

import numpy as np

from fat.core.features import LogMelConfig
from fat.core.labels import official_vocabulary
from fat.runs.settings import ExperimentConfig, RunOptions
from fat.store import ClipRecord, open_store

SMALL_CONFIG = LogMelConfig(n_mels=16)
GiB = 2**30
# A model and crops small enough to train in a second on a CPU.
TINY = dict(arch="cnn", width=0.0625, epochs=2, batch_size=8, crop_frames=32, lr=1e-3, seed=3)


def synthetic_clip(i: int, n_mels: int = 16, n_classes: int = 80) -> ClipRecord:
    """Clip number `i`: content is a pure function of `i`, so any process can re-derive it."""
    rng = np.random.default_rng(i)
    n_frames = int(rng.integers(3, 700))
    features = (rng.normal(size=(n_mels, n_frames)) * 20 - 40).astype(np.float16)
    labels = np.zeros(n_classes, dtype=np.uint8)
    labels[rng.choice(n_classes, size=int(rng.integers(1, 3)), replace=False)] = 1
    return ClipRecord(f"clip{i:05d}.wav", features, labels, 44100, 1 + i % 2, n_frames / 127)


def build_store(path: Path, n_clips: int, split: str = "curated", **writer_kw) -> list[ClipRecord]:
    clips = [synthetic_clip(i) for i in range(n_clips)]
    with open_store(path, "a") as store:
        with store.writer(split, SMALL_CONFIG, official_vocabulary(), **writer_kw) as writer:
            for clip in clips:
                writer.add(clip)
    return clips


def corrupt_frames(path: Path, row: int, split: str = "curated") -> None:
    """Change one stored frame behind the store's back, as bit rot or a stray write would."""
    import h5py
    import zarr

    if path.suffix == ".zarr":
        frames = zarr.open_array(path / split / "frames", mode="r+")
    else:
        frames = h5py.File(path, "r+")[split]["frames"]
    frames[row] = frames[row] + 1
    if path.suffix == ".h5":
        frames.file.close()


def write_tone(path: Path, seconds: float, freq: float, sr: int = 44100, subtype: str = "PCM_16"):
    import soundfile as sf

    t = np.arange(int(seconds * sr)) / sr
    noise = np.random.default_rng(int(freq)).normal(scale=0.01, size=t.shape)
    sf.write(path, 0.3 * np.sin(2 * np.pi * freq * t) + noise, sr, subtype=subtype)


def make_fsd_layout(root: Path, n_curated: int = 6, n_test: int = 3) -> Path:
    """A tiny FSDKaggle2019-style directory: curated + test splits of short tones."""
    vocab = official_vocabulary()
    root.mkdir(parents=True, exist_ok=True)
    for folder in ("train_curated", "train_noisy", "test"):
        (root / folder).mkdir(exist_ok=True)
    rows = ["fname,labels"]
    for i in range(n_curated):
        name = f"cur{i:03d}.wav"
        write_tone(root / "train_curated" / name, 0.5 + 0.25 * i, 200.0 * (i + 1))
        labels = [vocab[i % 80]] + ([vocab[(i + 7) % 80]] if i % 3 == 0 else [])
        rows.append(f'{name},"{",".join(labels)}"')
    (root / "train_curated.csv").write_text("\n".join(rows) + "\n")
    (root / "train_noisy.csv").write_text("fname,labels\n")
    sub = ["fname," + ",".join(vocab)]
    answers = ["fname,labels"]
    for i in range(n_test):
        name = f"test{i:03d}.wav"
        write_tone(root / "test" / name, 1.0, 300.0 * (i + 1))
        sub.append(name + "," + ",".join(["0"] * 80))
        answers.append(f"{name},{vocab[i]}")
    (root / "sample_submission.csv").write_text("\n".join(sub) + "\n")
    (root / "test_labels.csv").write_text("\n".join(answers) + "\n")
    return root


def tiny_run(store: Path, out: Path, **changes) -> tuple[ExperimentConfig, RunOptions]:
    """TINY settings with `changes`, each going to the record that has the field."""
    options_fields = {f.name for f in fields(RunOptions)}
    settings = {**TINY, "log_every": 1, "quiet": True, **changes}
    experiment = {k: v for k, v in settings.items() if k not in options_fields}
    options = {k: v for k, v in settings.items() if k in options_fields}
    return (
        ExperimentConfig(**experiment),
        RunOptions(store=str(store), out=str(out), **options),
    )


def hears_ctrl_c() -> None:
    """`preexec_fn` of a command a test stops with SIGINT: a shell script that starts the
    suite in the background (`&`) makes its processes ignore SIGINT, and their children
    inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def cli_flags(**settings) -> list[str]:
    """`batch_size=8, quiet=True` -> ["--batch-size", "8", "--quiet"]."""
    flags = []
    for key, value in settings.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            flags.append(flag)
        elif isinstance(value, tuple | list):
            flags += [flag, ",".join(map(str, value))]
        else:
            flags += [flag, str(value)]
    return flags


def tiny_train_args(store: Path, out: Path, **changes) -> list[str]:
    """`fat train` arguments for a TINY run."""
    return [
        "train",
        "--store",
        str(store),
        "--out",
        str(out),
        *cli_flags(**{**TINY, "quiet": True, **changes}),
    ]


def torchrun_fat(processes: int, port: int, *fat_args: str) -> list[str]:
    """`python -m torch.distributed.run --nproc_per_node N --master_port P -m fat ARGS`."""
    import sys

    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        str(processes),
        "--master_port",
        str(port),
        "-m",
        "fat",
        *fat_args,
    ]


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))
