"""Event detection on long recordings: realtime factor and peak memory of `fat detect`'s
scoring (decode, log-mel, model) against the same model scoring the same audio once as
non-overlapping windows, for the width-0.25 CNN and CNN14 (random weights: the cost does not
depend on them), and the FLOP-bound realtime factor those models allow on this machine.

    python bench/detect.py [--minutes 60] [--dir DIR] [--json OUT] [--quick]

Each measurement runs in a process of its own (its peak RSS is its own); the recording is
noise at the run's sample rate. The FLOPs of a window come from torch's FlopCounterMode; the
machine's rate is a float32 matmul on every core (the best a dense kernel reaches here).
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fat.core.features import FEATURE_PRESETS, LogMelConfig  # noqa: E402
from fat.predict.detect import detect_file  # noqa: E402
from fat.predict.settings import DetectConfig  # noqa: E402
from fat.runs.checkpoint import TrainedModel, build_model  # noqa: E402
from fat.runs.directory import RunDirectory  # noqa: E402
from fat.runs.settings import ExperimentConfig  # noqa: E402
from fat.store.normalize import Normalizer  # noqa: E402

# name -> (arch, width, crop frames, feature settings)
MODELS = {
    "cnn-w0.25": ("cnn", 0.25, 128, LogMelConfig()),
    "cnn14": ("cnn14", 1.0, 512, FEATURE_PRESETS["panns"]),
}
CLASSES = 80


def trained(name: str) -> TrainedModel:
    arch, width, crop, features = MODELS[name]
    experiment = ExperimentConfig(arch=arch, width=width, crop_frames=crop)
    torch.manual_seed(0)
    model = build_model(experiment, features.n_mels, CLASSES).eval()
    normalizer = Normalizer(
        np.full(features.n_mels, -40.0, np.float32), np.full(features.n_mels, 20.0, np.float32)
    )
    vocabulary = tuple(f"class{c}" for c in range(CLASSES))
    return TrainedModel(model, experiment, features, vocabulary, normalizer, 0, "best",
                        RunDirectory("."))  # fmt: skip


def recording(folder: Path, name: str, minutes: float) -> Path:
    """Noise at the model's sample rate, written block by block (no hour in memory)."""
    rate = MODELS[name][3].sample_rate
    path = folder / f"{name}-{minutes:g}min.wav"
    if path.exists():
        return path
    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", rate, 1, "PCM_16") as f:
        for _ in range(int(minutes * 60)):
            f.write((rng.normal(size=rate) * 0.1).astype(np.float32))
    return path


def one(name: str, path: Path, method: str, hop: float | None) -> dict:
    """One detection in this process: seconds, realtime factor, peak RSS."""
    torch.set_num_threads(torch.get_num_threads())
    run = trained(name)
    fps = run.feature_config.frames_per_second
    crop_seconds = run.experiment.crop_frames / fps
    cfg = DetectConfig(method=method, hop_seconds=hop or crop_seconds, block_seconds=60.0)
    began = time.perf_counter()
    detection = detect_file(run, path, cfg)
    seconds = time.perf_counter() - began
    audio = sf.info(str(path)).duration
    return {
        "model": name,
        "method": detection.method,
        "hop_s": round(cfg.hop_seconds, 3),
        "audio_s": round(audio, 1),
        "seconds": round(seconds, 2),
        "realtime_factor": round(audio / seconds, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def flops_per_audio_second(name: str) -> float:
    """FLOPs the model spends per second of audio when it scores non-overlapping windows."""
    from torch.utils.flop_counter import FlopCounterMode

    run = trained(name)
    x = torch.zeros(1, run.feature_config.n_mels, run.experiment.crop_frames)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        run.model(x)
    crop_seconds = run.experiment.crop_frames / run.feature_config.frames_per_second
    return counter.get_total_flops() / crop_seconds


def machine_flops() -> float:
    """float32 FLOP/s of a large matmul on every core: the dense-kernel rate of this machine."""
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    torch.mm(a, b)
    rounds = 10
    began = time.perf_counter()
    for _ in range(rounds):
        torch.mm(a, b)
    return rounds * 2 * 2048**3 / (time.perf_counter() - began)


def in_child(name: str, path: Path, method: str, hop: float | None) -> dict:
    command = [sys.executable, __file__, "--one", name, str(path), method, str(hop or 0)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument(
        "--short-minutes", type=float, default=5.0, help="CNN14's windows scored alone: shorter"
    )
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--one", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        name, path, method, hop = args.one
        print(json.dumps(one(name, Path(path), method, float(hop) or None)))
        return
    folder = Path(tempfile.mkdtemp(prefix="fat-detect-", dir=args.dir))
    rate = machine_flops()
    rows, models = [], {}
    for name in MODELS:
        long = recording(folder, name, args.minutes)
        short = recording(folder, name, min(args.short_minutes, args.minutes))
        flops = flops_per_audio_second(name)
        models[name] = {
            "gflops_per_audio_second": round(flops / 1e9, 3),
            "flop_bound_realtime_factor": round(rate / flops, 1),
        }
        rows.append(in_child(name, long, "windows", None))  # non-overlapping: the reference
        rows.append(in_child(name, long, "shared", 0.25))
        ten = recording(folder, name, max(1.0, args.minutes / 6))
        rows.append(in_child(name, ten, "shared", 0.25))  # memory flat in the length?
        alone = long if name != "cnn14" else short
        rows.append(in_child(name, alone, "windows", 0.25))
    figures = {"machine_gflops": round(rate / 1e9, 1), "models": models, "runs": rows}
    print(json.dumps(figures, indent=1))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
