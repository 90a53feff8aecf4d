"""Training input speed: crops/s of fat's DALI path and torch DataLoader path against a naive
per-sample WAV -> log-mel loader and a plain in-RAM array, one process, same machine, one run;
then CNN training samples/s with the share of step time spent waiting for data.

    python bench/loader.py [--clips 2000] [--batches 300] [--widths 0.25,1.0]

Crops are 128 mels x 128 frames, batch 64, from a Zarr store of FSDKaggle2019-like lengths.
"""

import argparse
import csv
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from featurize import write_clips  # bench/featurize.py: FSDKaggle2019-like WAVs
from store_read import make_clips  # bench/store_read.py: FSDKaggle2019-like log-mel clips

from fat.core.features import LogMelConfig
from fat.core.labels import official_vocabulary
from fat.featurize.reference import librosa_logmel
from fat.runs.settings import ExperimentConfig, RunOptions
from fat.store import open_store
from fat.train.data import load_training_data
from fat.train.loaders import CropBatchSource, DaliLoader, TorchLoader
from fat.train.loop import train

CROP, BATCH = 128, 64


def rate(batches, n_batches: int, warmup: int = 3) -> float:
    """Crops/s over `n_batches` batches after `warmup` (pipeline start, first prefetch)."""
    it = iter(batches)
    for _ in range(warmup):
        next(it)
    t0 = time.perf_counter()
    n = 0
    for _ in range(n_batches):
        n += len(next(it)[0])
    return n / (time.perf_counter() - t0)


def loader_rate(kind, store: Path, in_ram: bool, n_batches: int, workers: int = 0) -> float:
    experiment = ExperimentConfig(batch_size=BATCH, crop_frames=CROP, steps_per_epoch=n_batches + 3)
    with load_training_data(store, ("curated",), 0.0, 0, 2**34 if in_ram else 0) as data:
        with kind(CropBatchSource(data, experiment), torch.device("cpu"), workers) as loader:
            return rate(loader.epoch(1), n_batches)


def naive_rate(wav_dir: Path, n_crops: int, cfg: LogMelConfig) -> float:
    """What most FAT2019 kernels did: per sample, read the WAV, compute log-mel, crop."""
    files = sorted(wav_dir.glob("*.wav"))
    rng = np.random.default_rng(0)

    def crops():
        while True:
            audio, _ = sf.read(files[rng.integers(len(files))], dtype="float32", always_2d=True)
            mel = librosa_logmel(audio.mean(axis=1), cfg)
            start = rng.integers(max(mel.shape[1] - CROP, 0) + 1)
            padded = np.resize(mel, (cfg.n_mels, max(mel.shape[1], CROP)))
            yield (padded[None, :, start : start + CROP],)

    return rate(crops(), n_crops, warmup=2)


def ram_rates(store: Path, n_batches: int) -> tuple[float, float]:
    """The frames as one plain in-RAM numpy array: a per-crop slicing loop, and one vectorised
    gather per batch (the ceiling any loader on this machine could reach)."""
    split = open_store(store).split("curated").load()
    frames, offsets, lengths = split.read_rows(0, split.n_frames), split.offsets, split.lengths
    rng = np.random.default_rng(1)
    clips = rng.integers(0, len(lengths), n_batches * BATCH)
    starts = (rng.random(len(clips)) * (lengths[clips] - CROP + 1)).astype(np.int64)
    first = offsets[clips] + starts
    t0 = time.perf_counter()
    for f in first.tolist():
        np.ascontiguousarray(frames[f : f + CROP].T)
    loop = len(first) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for b in range(n_batches):
        rows = first[b * BATCH : (b + 1) * BATCH, None] + np.arange(CROP)
        np.ascontiguousarray(frames[rows].transpose(0, 2, 1))
    return loop, len(first) / (time.perf_counter() - t0)


def training_rate(store: Path, out: Path, width: float, steps: int, loader: str) -> dict:
    experiment = ExperimentConfig(
        width=width, epochs=1, batch_size=32, val_fraction=0.0, steps_per_epoch=steps
    )
    options = RunOptions(store=str(store), out=str(out), loader=loader, log_every=steps, quiet=True)
    train(experiment, options)
    with open(out / "metrics.csv", newline="") as f:
        row = next(csv.DictReader(f))
    return {"samples_per_s": float(row["samples_per_s"]), "wait": float(row["data_wait_frac"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=2000)
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--disk-batches", type=int, default=150)
    parser.add_argument("--naive-crops", type=int, default=100)
    parser.add_argument("--widths", default="0.25,1.0")
    parser.add_argument("--train-steps", type=int, default=24)
    args = parser.parse_args()
    torch.set_num_threads(2)
    cfg = LogMelConfig()
    tmp = Path(tempfile.mkdtemp(prefix="fat-bench-loader-"))
    try:
        store = tmp / "features.zarr"
        with open_store(store, "a") as s:
            with s.writer("curated", cfg, official_vocabulary()) as writer:
                for clip in make_clips(args.clips, cfg.n_mels, 20, seed=0):
                    writer.add(clip)
        write_clips(tmp / "wav", 60, seed=0)
        results = []
        loop, vectorised = ram_rates(store, args.batches)
        results.append(("plain in-RAM array, per-crop slicing loop", loop))
        results.append(("plain in-RAM array, one vectorised gather per batch", vectorised))
        results.append(
            ("fat DALI path, store in RAM", loader_rate(DaliLoader, store, True, args.batches))
        )
        results.append(
            (
                "fat torch DataLoader path, store in RAM",
                loader_rate(TorchLoader, store, True, args.batches // 4),
            )
        )
        results.append(
            (
                "fat DALI path, Zarr on disk, 2 workers",
                loader_rate(DaliLoader, store, False, args.disk_batches, 2),
            )
        )
        results.append(
            (
                "fat torch DataLoader path, Zarr on disk, 2 workers",
                loader_rate(TorchLoader, store, False, args.disk_batches, 2),
            )
        )
        naive = naive_rate(tmp / "wav" / "train_curated", args.naive_crops, cfg)
        results.append(("naive: WAV decode + librosa log-mel per sample", naive))
        print(f"\n{args.clips} clips, crops {cfg.n_mels}x{CROP}, batch {BATCH}, 2 cores\n")
        print("| loader | crops/s | vs naive |\n|---|---:|---:|")
        for name, value in results:
            print(f"| {name} | {value:,.0f} | {value / naive:,.1f}x |")
        print(
            "\n| CNN training (CPU, batch 32, DALI path) | samples/s | data wait |\n|---|---:|---:|"
        )
        for width in (float(w) for w in args.widths.split(",")):
            r = training_rate(store, tmp / f"run{width}", width, args.train_steps, "dali")
            print(f"| width {width} | {r['samples_per_s']:.1f} | {r['wait']:.1%} |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
