"""Featurize speed: `fat featurize` (all cores, end to end into a Zarr store) vs a reference loop
of soundfile + librosa in one process (BLAS limited to one thread), same clips, same settings.

    python bench/featurize.py [--clips 600] [--workers N] [--rounds 3]

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
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from threadpoolctl import threadpool_limits

from fat.core.features import LogMelConfig
from fat.core.labels import official_vocabulary
from fat.featurize.logmel import available_fft_backends
from fat.featurize.reference import librosa_logmel
from fat.featurize.run import FeaturizeSummary, featurize_split
from fat.featurize.settings import FeaturizeOptions


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


def librosa_loop(folder: Path, cfg: LogMelConfig) -> tuple[float, float]:
    """Wall and CPU seconds of the reference loop over every WAV in `folder`."""
    t0, c0 = time.perf_counter(), time.process_time()
    with threadpool_limits(1):
        for path in sorted(folder.glob("*.wav")):
            audio, _ = sf.read(path, dtype="float32", always_2d=True)
            librosa_logmel(audio.mean(axis=1), cfg).astype(np.float16)
    return time.perf_counter() - t0, time.process_time() - c0


def remove_store(store: Path) -> None:
    """A Zarr store is a folder, an HDF5 store a file."""
    if store.is_dir():
        shutil.rmtree(store)
    store.unlink(missing_ok=True)


def fat_run(
    data: Path,
    store: Path,
    cfg: LogMelConfig,
    workers: int,
    device: str = "cpu",
    store_format: str | None = None,
) -> tuple[FeaturizeSummary, float]:
    """One `featurize_split` call of the curated split into a fresh store, and the CPU seconds
    all its threads used."""
    remove_store(store)
    c0 = time.process_time()
    options = FeaturizeOptions(
        workers=workers, device=device, store_format=store_format, quiet=True
    )
    summary = featurize_split(data, "curated", store, cfg, options)
    assert not summary.skipped and summary.written > 0, summary.lines()
    return summary, time.process_time() - c0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=600)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--rounds", type=int, default=3, help="Interleaved rounds; medians.")
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
    # Each round runs every pipeline once, in turn, so a slow spell of this shared machine
    # hits all of them; the table shows medians over rounds and the range of the ratio.
    timings: dict[str, list[tuple[float, float]]] = {}
    try:
        audio_s = write_clips(tmp / "data", args.clips, args.seed)
        sf.read(next((tmp / "data" / "train_curated").glob("*.wav")))  # warm the page cache
        for _ in range(args.rounds):
            timings.setdefault("librosa", []).append(
                librosa_loop(tmp / "data" / "train_curated", cfg)
            )
            for workers in sorted({1, args.workers}):
                summary, cpu = fat_run(tmp / "data", tmp / "b.zarr", cfg, workers)
                after_first = summary.seconds - summary.startup_seconds
                timings.setdefault(f"{workers}/end to end", []).append((summary.seconds, cpu))
                timings.setdefault(f"{workers}/after the first clip", []).append((after_first, cpu))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    cores = os.cpu_count() or 1
    print(
        f"{args.clips} clips, {audio_s / 60:.1f} min of 44.1 kHz audio, default LogMelConfig "
        f"(n_fft {cfg.n_fft}, hop {cfg.hop_length}, {cfg.n_mels} mels), FFT "
        f"{available_fft_backends()[0]}, {cores} cores, median of {args.rounds} rounds"
    )
    print(
        "| pipeline | cores | clips/s | x realtime | x realtime per core | per core vs librosa "
        "(range over rounds) | x realtime per CPU-second |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    reference = timings.pop("librosa")
    ref_core = audio_s / statistics.median(wall for wall, _ in reference)
    rows = [("soundfile + librosa loop", 1, reference)]
    for key, runs in timings.items():
        workers, label = key.split("/")
        rows.append((f"fat featurize --workers {workers}, {label}", cores, runs))
    for name, used, runs in rows:
        wall = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        per_core = audio_s / wall / used
        # The ratio of each round's fat run to the same round's librosa run.
        ratios = [r / w / used for (w, _), (r, _) in zip(runs, reference, strict=True)]
        print(
            f"| {name} | {used} | {args.clips / wall:.1f} | {audio_s / wall:.0f} | "
            f"{per_core:.0f} | {per_core / ref_core:.2f}x ({min(ratios):.2f}-{max(ratios):.2f}) | "
            f"{audio_s / cpu:.0f} |"
        )


if __name__ == "__main__":
    main()
