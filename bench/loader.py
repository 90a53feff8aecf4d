"""Training input speed: every input path of `fat bench input` (in RAM, on disk cold and warm)
against the raw numpy gather and a naive per-sample WAV -> log-mel loader, one process, same
machine, one run; then CNN training samples/s with the share of step time waiting for data.

    python bench/loader.py [--clips 2000] [--batches 150] [--workers 0] [--widths 0.25,1.0]

Crops are 128 mels x 128 frames, batch 64, from a Zarr store of FSDKaggle2019-like lengths.
"""

import argparse
import csv
import shutil
import tempfile
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
from fat.train.input_bench import measure_input, timed_rate
from fat.train.input_settings import InputBenchConfig
from fat.train.loop import train

CROP, BATCH = 128, 64


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

    return timed_rate(crops(), n_crops, warmup=2)


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
    parser.add_argument("--batches", type=int, default=150, help="Timed batches per path.")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=0, help="Loader worker processes.")
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
        config = InputBenchConfig(batches=args.batches, rounds=args.rounds, workers=args.workers)
        rates = measure_input(store, config)
        naive = naive_rate(tmp / "wav" / "train_curated", args.naive_crops, cfg)
        print(f"\n{args.clips} clips, crops {cfg.n_mels}x{CROP}, batch {BATCH}, 2 cores\n")
        print("| path | crops/s | vs raw gather | vs naive |\n|---|---:|---:|---:|")
        for r in rates:
            if r.crops_per_s is not None:
                ratio = "" if r.vs_reference is None else f"{r.vs_reference:.2f}"
                print(
                    f"| {r.path} | {r.crops_per_s:,.0f} | {ratio} | {r.crops_per_s / naive:,.0f}x |"
                )
        print(f"| naive: WAV decode + librosa log-mel per sample | {naive:,.0f} | | 1x |")
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
