"""A data set at full size, without its audio: a store with the real data set's clip counts and
durations (frames from a generator), then in one run what a user of that store meets: write
MB/s, open time, index memory, load-into-RAM GB/s, peak RSS, the disk's own sequential read
rate, and the training input on every path (`fat bench input`'s measurement, no model); and,
with --featurize-clips N, the featurize rate on N real WAVs of the data set's durations read
through its own layout (`fat featurize --dataset`), and the full set's time at that rate.

    python bench/scale.py [--dataset fat2019|fsd50k] [--scale 1.0] [--dir DIR] [--keep]
                          [--featurize-clips N] [--json OUT]

FSDKaggle2019 (default) at --scale 1 is ~11 GB (curated 4,970 clips / 10.5 h, noisy 19,815 /
80 h, test 3,361); FSD50K ~15 GB (51,197 clips, 108.3 h: train 36,796 and val 4,170 of the
dev set's 40,966, eval 10,231; 200 classes). --scale multiplies the clip counts. The store is
deleted at the end unless --keep (the GPU check, bench/gpu_check.py, can reuse a kept one).
"""

import argparse
import json
import os
import resource
import shutil
import tempfile
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from fat.core.features import LogMelConfig
from fat.core.labels import official_vocabulary
from fat.store import ClipRecord, open_store
from fat.store.reader import empty_populated
from fat.train.input_bench import measure_input, rate_table
from fat.train.input_settings import InputBenchConfig


@dataclass(frozen=True)
class SplitShape:
    """A split of the real data set: clip count, total hours and how durations spread."""

    name: str
    clips: int
    hours: float
    longest_s: float
    full_length_share: float  # clips at the longest duration (noisy clips are mostly 15 s)


@dataclass(frozen=True)
class DatasetShape:
    name: str  # the data set's adapter (`fat featurize --dataset`)
    splits: tuple[SplitShape, ...]
    classes: int
    train_splits: tuple[str, ...]
    unlabelled: tuple[str, ...] = ()


DATASETS = {
    "fat2019": DatasetShape(
        "fat2019",
        (
            SplitShape("curated", 4970, 10.5, 30.0, 0.0),
            SplitShape("noisy", 19815, 80.0, 15.0, 0.93),
            SplitShape("test", 3361, 3361 * 10.5 / 4970, 30.0, 0.0),  # durations like curated
        ),
        80,
        ("curated", "noisy"),
        ("test",),
    ),
    # FSD50K (Fonseca et al. 2022): dev 40,966 clips, 80.4 h; eval 10,231 clips, 27.9 h; clips
    # 0.3-30 s. The dev hours split between train and val by clip count.
    "fsd50k": DatasetShape(
        "fsd50k",
        (
            SplitShape("train", 36796, 80.4 * 36796 / 40966, 30.0, 0.0),
            SplitShape("val", 4170, 80.4 * 4170 / 40966, 30.0, 0.0),
            SplitShape("eval", 10231, 27.9, 30.0, 0.0),
        ),
        200,
        ("train",),
    ),
}


def durations(shape: SplitShape, n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` clip durations in seconds: a share at the longest duration, the rest log-normal,
    scaled so the split's mean is the real one (hours / clips), clipped to [0.3 s, longest]."""
    mean = shape.hours * 3600 / shape.clips
    full = rng.random(n) < shape.full_length_share
    rest = rng.lognormal(0.0, 0.8, n)[~full]
    rest_mean = (mean * n - full.sum() * shape.longest_s) / max(len(rest), 1)
    seconds = np.full(n, shape.longest_s)
    seconds[~full] = np.clip(rest / rest.mean() * rest_mean, 0.3, shape.longest_s)
    return seconds


def vocabulary_of(data: DatasetShape) -> tuple[str, ...]:
    if data.name == "fat2019":
        return official_vocabulary()
    return tuple(f"Class_{c:03d}" for c in range(data.classes))


def write_store(path: Path, data: DatasetShape, scale: float, seed: int) -> dict:
    """Writes the data set's splits; returns per-split clips, GB and write MB/s."""
    cfg = LogMelConfig()
    vocabulary = vocabulary_of(data)
    frames_per_s = cfg.sample_rate / cfg.hop_length
    rng = np.random.default_rng(seed)
    pool = (rng.normal(size=(cfg.n_mels, 1 << 16)) * 20 - 40).astype(cfg.dtype)
    report = {}
    with open_store(path, "a") as store:
        for shape in data.splits:
            n = max(2, round(shape.clips * scale))
            lengths = np.maximum(1, (durations(shape, n, rng) * frames_per_s).astype(int))
            starts = rng.integers(0, pool.shape[1] - lengths.max(), n)
            labels = np.zeros((n, len(vocabulary)), np.uint8)
            labels[np.arange(n), rng.integers(0, len(vocabulary), n)] = 1
            began = time.perf_counter()
            labelled = shape.name not in data.unlabelled
            writer = store.writer(shape.name, cfg, vocabulary, labelled=labelled, dataset=data.name)
            with writer:
                for i in tqdm(range(n), desc=f"write {shape.name}", unit="clip"):
                    features = pool[:, starts[i] : starts[i] + lengths[i]]
                    clip = ClipRecord(
                        f"{shape.name}{i:06d}.wav",
                        features,
                        labels[i] if labelled else np.zeros(len(vocabulary), np.uint8),
                        44100,
                        1,
                        lengths[i] / frames_per_s,
                    )
                    writer.add(clip)
            seconds = time.perf_counter() - began
            size = int(lengths.sum()) * cfg.n_mels * np.dtype(cfg.dtype).itemsize
            report[shape.name] = {
                "clips": n,
                "hours": round(float(lengths.sum() / frames_per_s / 3600), 2),
                "gb": round(size / 1e9, 3),
                "write_mb_per_s": round(size / seconds / 1e6, 1),
                "write_s": round(seconds, 1),
            }
    return report


def chunk_files(path: Path, split: str) -> list[Path]:
    return sorted((path / split / "frames").glob("c.*"))


def read_files(files: list[Path], ahead: int = 16) -> tuple[int, float]:
    """(bytes, seconds) of reading the files in order, each asked for `ahead` files early
    (POSIX_FADV_WILLNEED), as a sequential reader with deep read-ahead would."""
    buffer = memoryview(bytearray(8 << 20))
    fds = [os.open(f, os.O_RDONLY) for f in files]
    total, began = 0, time.perf_counter()
    try:
        for i, fd in enumerate(fds):
            if i + ahead < len(fds):
                os.posix_fadvise(fds[i + ahead], 0, 0, os.POSIX_FADV_WILLNEED)
            if i == 0:
                for early in fds[1:ahead]:
                    os.posix_fadvise(early, 0, 0, os.POSIX_FADV_WILLNEED)
            while n := os.readv(fd, [buffer]):
                total += n
    finally:
        for fd in fds:
            os.close(fd)
    return total, time.perf_counter() - began


def drop_files(files: list[Path]) -> None:
    for file in files:
        fd = os.open(file, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def disk_sequential_rate(folder: Path, size: int = 2 << 30) -> float:
    """GB/s of one large file read cold, the disk's own sequential rate beside the chunks'."""
    scratch = folder / "sequential.bin"
    block = np.random.default_rng(0).bytes(64 << 20)
    with open(scratch, "wb") as f:
        for _ in range(size // len(block)):
            f.write(block)
        os.fsync(f.fileno())
    try:
        drop_files([scratch])
        read, seconds = read_files([scratch])
        return read / seconds / 1e9
    finally:
        scratch.unlink()


def open_and_load(path: Path, data: DatasetShape) -> dict:
    """Open time and index memory of all splits; the disk's cold sequential read rate, of one
    large file and of the training splits' chunk files; load-into-RAM GB/s with those files
    just read (warm), beside the rate of allocating the same memory alone."""
    os.sync()  # written pages must be clean before they can be dropped from the cache
    report = {"disk_cold_one_file_gb_per_s": round(disk_sequential_rate(path.parent), 2)}
    tracemalloc.start()
    began = time.perf_counter()
    with open_store(path) as store:
        opened = [store.split(s.name) for s in data.splits]
        report["open_s"] = round(time.perf_counter() - began, 4)
        report["index_mb"] = round(tracemalloc.get_traced_memory()[0] / 1e6, 2)
        tracemalloc.stop()
        del opened
        for name in data.train_splits:
            files = chunk_files(path, name)
            drop_files(files)
            size, seconds = read_files(files)
            split = store.split(name)
            read_files(files)  # warm: this VM reclaims pages untouched for a minute
            began = time.perf_counter()
            frames = split.load()
            took = time.perf_counter() - began
            del frames
            began = time.perf_counter()
            memory = empty_populated((split.n_frames, split.feature_config.n_mels), np.float16)
            allocate = time.perf_counter() - began
            del memory
            report[name] = {
                "disk_cold_chunk_files_gb_per_s": round(size / seconds / 1e9, 2),
                "load_warm_gb_per_s": round(split.nbytes() / took / 1e9, 2),
                "load_s": round(took, 2),
                "allocate_alone_gb_per_s": round(split.nbytes() / allocate / 1e9, 2),
            }
    return report


def featurize_rate(folder: Path, data: DatasetShape, clips: int, seed: int) -> dict:
    """`clips` WAVs (44.1 kHz mono, the first training split's durations) written in the data
    set's own layout, featurized through its adapter into a new store with every core: clips/s,
    x realtime, and the whole data set's hours at that rate."""
    from fat.datasets import DatasetOptions, get_dataset
    from fat.featurize.run import featurize_listing
    from fat.featurize.settings import FeaturizeOptions

    shape = next(s for s in data.splits if s.name == data.train_splits[0])
    rng = np.random.default_rng(seed)
    seconds = durations(shape, clips, rng)
    root = folder / f"{data.name}-audio"
    split = write_layout(root, data, seconds, rng)
    listing = get_dataset(data.name).read(root, [split], DatasetOptions())
    summary = featurize_listing(
        listing, split, folder / "featurized.zarr", options=FeaturizeOptions(quiet=True)
    )
    total_hours = sum(s.hours for s in data.splits)
    return {
        "clips": summary.written,
        "audio_hours": round(summary.audio_seconds / 3600, 3),
        "clips_per_s": round(summary.clips_per_second, 1),
        "x_realtime": round(summary.x_realtime, 1),
        "compute": summary.compute,
        "full_set_hours_at_this_rate": round(total_hours / summary.x_realtime, 3),
    }


def write_layout(root: Path, data: DatasetShape, seconds: np.ndarray, rng) -> str:
    """Noise clips of `seconds` in the data set's published layout; the split they are in."""
    import soundfile as sf

    def noise(length: float) -> np.ndarray:
        return (rng.normal(size=int(length * 44100)) * 0.1).astype(np.float32)

    vocabulary = vocabulary_of(data)
    if data.name == "fsd50k":
        (root / "FSD50K.ground_truth").mkdir(parents=True)
        (root / "FSD50K.dev_audio").mkdir()
        (root / "FSD50K.eval_audio").mkdir()
        rows = ["fname,labels,mids,split"]
        for k, length in enumerate(seconds):
            sf.write(root / "FSD50K.dev_audio" / f"{k + 1}.wav", noise(length), 44100)
            c = k % len(vocabulary)
            rows.append(f"{k + 1},{vocabulary[c]},/m/{c:05d},train")
        (root / "FSD50K.ground_truth" / "dev.csv").write_text("\n".join(rows) + "\n")
        (root / "FSD50K.ground_truth" / "eval.csv").write_text("fname,labels,mids\n")
        classes = [f"{c},{name},/m/{c:05d}" for c, name in enumerate(vocabulary)]
        (root / "FSD50K.ground_truth" / "vocabulary.csv").write_text("\n".join(classes) + "\n")
        return "train"
    for folder in ("train_curated", "train_noisy", "test"):
        (root / folder).mkdir(parents=True)
    rows = ["fname,labels"]
    for k, length in enumerate(seconds):
        sf.write(root / "train_curated" / f"{k:08x}.wav", noise(length), 44100)
        rows.append(f"{k:08x}.wav,{vocabulary[k % len(vocabulary)]}")
    (root / "train_curated.csv").write_text("\n".join(rows) + "\n")
    (root / "train_noisy.csv").write_text("fname,labels\n")
    (root / "sample_submission.csv").write_text("fname," + ",".join(vocabulary) + "\n")
    return "curated"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="fat2019")
    parser.add_argument("--scale", type=float, default=1.0, help="Clip counts x this.")
    parser.add_argument("--dir", type=Path, default=None, help="Where the store goes.")
    parser.add_argument("--keep", action="store_true", help="Keep the store afterwards.")
    parser.add_argument("--json", type=Path, default=None, help="Also write the figures here.")
    parser.add_argument("--batches", type=int, default=100, help="Timed batches per path.")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--featurize-clips", type=int, default=0, help="WAVs to time featurize on (0: none)."
    )
    args = parser.parse_args()
    data = DATASETS[args.dataset]
    folder = Path(tempfile.mkdtemp(prefix="fat-scale-", dir=args.dir))
    path = folder / f"{data.name}.zarr"
    try:
        figures = {"dataset": data.name, "scale": args.scale, "store": str(path)}
        if args.featurize_clips:
            figures["featurize"] = featurize_rate(folder, data, args.featurize_clips, args.seed)
        figures["write"] = write_store(path, data, args.scale, args.seed)
        figures["read"] = open_and_load(path, data)
        config = InputBenchConfig(
            splits=data.train_splits, batches=args.batches, rounds=args.rounds
        )
        rates = measure_input(path, config)
        figures["input"] = [r.to_dict() for r in rates]
        figures["peak_rss_gb"] = round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9, 2
        )
        print(json.dumps({k: v for k, v in figures.items() if k != "input"}, indent=1))
        print(rate_table(rates))
        if args.json:
            args.json.write_text(json.dumps(figures, indent=1) + "\n")
    finally:
        if args.keep:
            print(f"kept {path}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
