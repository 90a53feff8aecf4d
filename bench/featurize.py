"""Featurize speed: `fat featurize` (all cores, end to end into a Zarr store) vs a reference loop
of soundfile + librosa in one process (BLAS limited to one thread), same clips, same settings.

    python bench/featurize.py [--clips 600] [--workers N]

fat's times cover the whole `featurize_split` call (CSV, store, threads, every write), as a user
sees them after start-up. For whole processes, start-up and imports included:

    python bench/featurize.py --write-clips DIR            # the same clips, kept in DIR
    farm-bench -n 5 --timeout 600 -- .venv/bin/fat featurize --data-dir DIR --split curated \
        --store /tmp/b.zarr --overwrite --quiet --vs '.venv/bin/python bench/featurize.py \
        --librosa-only DIR'
"""

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from threadpoolctl import threadpool_limits

from fat.config import LogMelConfig
from fat.featurize.reference import librosa_logmel
from fat.featurize.run import featurize_split
from fat.labels import official_vocabulary


def write_clips(root: Path, n: int, seed: int) -> float:
    """FSDKaggle2019-like curated split: durations 0.3-30 s (log-normal, median ~4.5 s)."""
    rng = np.random.default_rng(seed)
    folder = root / "train_curated"
    folder.mkdir(parents=True)
    rows = ["fname,labels"]
    total = 0.0
    vocab = official_vocabulary()
    for i in range(n):
        seconds = float(np.clip(rng.lognormal(1.5, 0.8), 0.3, 30.0))
        t = np.arange(int(seconds * 44100)) / 44100
        audio = 0.2 * np.sin(2 * np.pi * rng.uniform(100, 5000) * t) + rng.normal(0, 0.05, t.size)
        channels = 2 if i % 5 == 0 else 1
        sf.write(folder / f"{i:06d}.wav", np.stack([audio] * channels, axis=1), 44100, "PCM_16")
        rows.append(f"{i:06d}.wav,{vocab[i % 80]}")
        total += seconds
    (root / "train_curated.csv").write_text("\n".join(rows) + "\n")
    return total


def librosa_loop(folder: Path, cfg: LogMelConfig) -> float:
    t0 = time.perf_counter()
    with threadpool_limits(1):
        for path in sorted(folder.glob("*.wav")):
            audio, _ = sf.read(path, dtype="float32", always_2d=True)
            librosa_logmel(audio.mean(axis=1), cfg).astype(np.float16)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=600)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write-clips", type=Path, help="Only write the clips into this folder.")
    parser.add_argument("--librosa-only", type=Path, help="Only run the librosa loop on a folder.")
    args = parser.parse_args()
    cfg = LogMelConfig()
    if args.write_clips:
        write_clips(args.write_clips, args.clips, args.seed)
        return
    if args.librosa_only:
        librosa_loop(args.librosa_only / "train_curated", cfg)
        return
    tmp = Path(tempfile.mkdtemp(prefix="fat-bench-"))
    try:
        audio_s = write_clips(tmp / "data", args.clips, args.seed)
        sf.read(next((tmp / "data" / "train_curated").glob("*.wav")))  # warm the page cache
        ref_s = librosa_loop(tmp / "data" / "train_curated", cfg)
        runs = {}
        for workers in sorted({1, args.workers}):
            summary = featurize_split(
                tmp / "data",
                "curated",
                tmp / f"w{workers}.zarr",
                cfg,
                workers=workers,
                progress=False,
            )
            assert summary.written == args.clips and not summary.skipped
            runs[workers] = (summary.seconds, summary.startup_seconds)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        f"{args.clips} clips, {audio_s / 60:.1f} min of 44.1 kHz audio, default LogMelConfig "
        f"(n_fft {cfg.n_fft}, hop {cfg.hop_length}, {cfg.n_mels} mels), {os.cpu_count()} cores"
    )
    print("| pipeline | cores | clips/s | x realtime | x realtime per core | per core vs librosa |")
    print("|---|---:|---:|---:|---:|---:|")
    ref_core = audio_s / ref_s
    print(
        f"| soundfile + librosa loop | 1 | {args.clips / ref_s:.1f} | {audio_s / ref_s:.0f} | "
        f"{ref_core:.0f} | 1.00x |"
    )
    cores = os.cpu_count() or 1
    for workers, (seconds, startup) in runs.items():
        # "after the first clip" leaves out the one-off start (CSV, store, first clip's buffers)
        # that a split of many hours amortises; it counts all clips, overstating by one in 600.
        timings = (("end to end", seconds), ("after the first clip", seconds - startup))
        for label, elapsed in timings:
            per_core = audio_s / elapsed / cores
            print(
                f"| fat featurize --workers {workers}, {label} | {cores} | "
                f"{args.clips / elapsed:.1f} | {audio_s / elapsed:.0f} | {per_core:.0f} | "
                f"{per_core / ref_core:.2f}x |"
            )


if __name__ == "__main__":
    main()
