"""Featurize with the log-mel on each device and over worker counts, end to end into a store,
on the same clips: the measurement behind `fat featurize --device`.

    python bench/featurize_devices.py [--clips 600] [--workers 1,4,16] [--format zarr]

cpu: decode, log-mel (numba + ducc0) and encoding on the worker threads. cuda: the same, but
the log-mel in torch on the GPU. "writer alone" is the bound the single writer sets: the same
encoded clips written and committed with nothing else running. Devices without a GPU print
the cpu rows only.
"""

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from featurize import (
    fat_run,
    remove_store,
    write_clips,
)  # bench/featurize.py: the same clips and call

from fat.core.device import gpu_available
from fat.core.features import LogMelConfig
from fat.core.labels import official_vocabulary
from fat.featurize.audio import load_audio
from fat.featurize.logmel import LogMelExtractor
from fat.store import ClipRecord, encode_clip, open_store


def writer_alone(folder: Path, store: Path, cfg: LogMelConfig, store_format: str) -> float:
    """Seconds to write and commit every clip of `folder`, encoded beforehand."""
    extract = LogMelExtractor(cfg)
    labels = np.zeros(len(official_vocabulary()), np.uint8)
    clips = []
    for path in sorted(folder.glob("*.wav")):
        audio, info = load_audio(path, cfg.sample_rate)
        record = ClipRecord(
            path.name, extract(audio), labels, info.sample_rate, info.channels, info.duration_s
        )
        clips.append(encode_clip(record, cfg.dtype))
    remove_store(store)
    started = time.perf_counter()
    with open_store(store, "a", format=store_format) as opened:
        # 256 clips per commit, as featurize commits
        with opened.writer(
            "curated", cfg, official_vocabulary(), labelled=True, commit_every=256
        ) as writer:
            for clip in clips:
                writer.add(clip)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=600)
    parser.add_argument("--workers", default=f"1,4,{os.cpu_count()}")
    parser.add_argument("--rounds", type=int, default=2, help="Median over rounds.")
    parser.add_argument("--format", default="zarr", choices=["zarr", "hdf5"])
    args = parser.parse_args()
    cfg = LogMelConfig()
    devices = ["cpu"] + (["cuda"] if gpu_available() else [])
    worker_counts = sorted({int(w) for w in args.workers.split(",")})
    tmp = Path(tempfile.mkdtemp(prefix="fat-bench-devices-"))
    store = tmp / ("b.zarr" if args.format == "zarr" else "b.h5")
    runs: dict[tuple[str, int], list[tuple[float, float]]] = {}
    try:
        audio_s = write_clips(tmp / "data", args.clips, seed=0)
        for device in devices:  # one untimed run each: kernels compiled, CUDA initialised
            fat_run(tmp / "data", store, cfg, 1, device, args.format)
        for _ in range(args.rounds):
            for device in devices:
                for workers in worker_counts:
                    summary, _ = fat_run(tmp / "data", store, cfg, workers, device, args.format)
                    runs.setdefault((summary.compute, workers), []).append(
                        (summary.seconds, summary.seconds - summary.startup_seconds)
                    )
        alone = statistics.median(
            writer_alone(tmp / "data" / "train_curated", store, cfg, args.format)
            for _ in range(args.rounds)
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        f"{args.clips} clips, {audio_s / 60:.1f} min of audio, default LogMelConfig, "
        f"{args.format} store, {os.cpu_count()} cores, median of {args.rounds} rounds"
    )
    print("| log-mel on | workers | clips/s | x realtime | x realtime after the first clip |")
    print("|---|---:|---:|---:|---:|")
    for (compute, workers), timings in runs.items():
        wall = statistics.median(w for w, _ in timings)
        after_first = statistics.median(a for _, a in timings)
        print(
            f"| {compute} | {workers} | {args.clips / wall:.0f} | {audio_s / wall:.0f} | "
            f"{audio_s / after_first:.0f} |"
        )
    print(
        f"| writer alone (encoded clips) | - | {args.clips / alone:.0f} | {audio_s / alone:.0f} | |"
    )


if __name__ == "__main__":
    main()
