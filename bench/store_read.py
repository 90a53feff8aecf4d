"""Random-crop read speed of the feature store: Zarr, Zarr+zstd, HDF5, the in-memory path and
a plain in-RAM numpy array, in one process on the same clips (one core: reads are single-threaded).

    python bench/store_read.py [--clips 2000] [--crops 5000] [--frames 128]
"""

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from fat.core.features import LogMelConfig
from fat.core.labels import official_vocabulary
from fat.store import ClipRecord, open_store


def make_clips(n: int, n_mels: int, min_frames: int, seed: int) -> list[ClipRecord]:
    rng = np.random.default_rng(seed)
    clips = []
    for i in range(n):
        frames = int(rng.integers(min_frames, 1500))
        features = (rng.normal(size=(n_mels, frames)) * 20 - 40).astype(np.float16)
        labels = np.zeros(80, np.uint8)
        labels[rng.integers(80)] = 1
        clips.append(ClipRecord(f"c{i:06d}.wav", features, labels, 44100, 1, frames / 127))
    return clips


def crops_per_second(read, picks: np.ndarray, starts: np.ndarray, length: int) -> float:
    for i in range(min(200, len(picks))):  # warm-up: open handles, page cache
        read(int(picks[i]), int(starts[i]), length)
    t0 = time.perf_counter()
    for clip, start in zip(picks.tolist(), starts.tolist(), strict=True):
        read(clip, start, length)
    return len(picks) / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=2000)
    parser.add_argument("--crops", type=int, default=5000)
    parser.add_argument("--frames", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    cfg = LogMelConfig()
    clips = make_clips(args.clips, cfg.n_mels, args.frames, args.seed)
    rng = np.random.default_rng(args.seed + 1)
    lengths = np.array([c.features.shape[1] for c in clips])
    picks = rng.integers(0, len(clips), args.crops)
    starts = (rng.random(args.crops) * (lengths[picks] - args.frames + 1)).astype(np.int64)
    tmp = Path(tempfile.mkdtemp(prefix="fat-bench-"))
    results: list[tuple[str, float, str]] = []
    try:
        stores = {
            "zarr (uncompressed)": (tmp / "s.zarr", "none"),
            "zarr (zstd)": (tmp / "z.zarr", "zstd"),
            "hdf5 (uncompressed)": (tmp / "s.h5", "none"),
        }
        for label, (path, compression) in stores.items():
            t0 = time.perf_counter()
            with open_store(path, "a") as store:
                with store.writer(
                    "bench", cfg, official_vocabulary(), compression=compression, commit_every=256
                ) as writer:
                    for clip in clips:
                        writer.add(clip)
            write_s = time.perf_counter() - t0
            with open_store(path) as store:
                split = store.split("bench")
                rate = crops_per_second(split.read_crop, picks, starts, args.frames)
                size = store.disk_usage()
            speed = split.nbytes() / write_s / 2**20
            note = f"write {speed:.0f} MiB/s, {size / 2**20:.0f} MiB on disk"
            results.append((label, rate, note))
        with open_store(stores["zarr (uncompressed)"][0]) as store:
            memory = store.split("bench").load()
            results.append(
                (
                    "in-memory path (Split.load)",
                    crops_per_second(memory.read_crop, picks, starts, args.frames),
                    "",
                )
            )
        frames = np.concatenate([c.features.T for c in clips])
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])

        def numpy_crop(clip: int, start: int, length: int) -> np.ndarray:
            first = offsets[clip] + start
            return frames[first : first + length].T

        reference = crops_per_second(numpy_crop, picks, starts, args.frames)
        results.append(("plain numpy array (reference)", reference, ""))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        f"{args.clips} clips of {cfg.n_mels} mels x {args.frames}..1500 frames float16, "
        f"{args.crops} random {cfg.n_mels}x{args.frames} crops, one process"
    )
    print("| reader | crops/s | time per crop vs numpy | notes |")
    print("|---|---:|---:|---|")
    for label, rate, note in results:
        print(f"| {label} | {rate:,.0f} | {reference / rate:.2f}x | {note} |")


if __name__ == "__main__":
    main()
