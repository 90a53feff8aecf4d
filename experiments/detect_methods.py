"""How `fat detect`'s ways of scoring windows compare, on recordings whose events are known:
a CNN and a GCNN trained on 1 s clips of three tones over noise (and noise alone), then ten
long recordings with the tones placed at random times; event-based and segment-based F1 from
sed_eval (through `fat.predict.event_metrics`) for each model and method, and how far the
shared convolutional pass moves the CNN's scores from windows scored alone.

    python experiments/detect_methods.py [--out DIR] [--recordings 10] [--seconds 120]
"""

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from click.testing import CliRunner

from fat.cli import main as fat
from fat.predict.detect import detect_file
from fat.predict.event_metrics import evaluate_events
from fat.predict.events import Event, EventRule, scores_to_events
from fat.predict.settings import DetectConfig
from fat.runs.checkpoint import load_trained_model

SR = 16000
TONES = {"low": 400.0, "mid": 1600.0, "high": 5000.0}
FEATURES = ["--sample-rate", "16000", "--n-fft", "512", "--hop", "160", "--n-mels", "32"]
RULE = EventRule(threshold=0.5, median_filter_s=0.3, min_duration_s=0.5)


def noise(seconds: float, rng) -> np.ndarray:
    return (rng.normal(size=int(seconds * SR)) * 0.02).astype(np.float32)


def tone(freq: float, seconds: float, rng) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    ramp = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.01)
    return (0.3 * np.sin(2 * np.pi * freq * (1 + 0.01 * rng.normal()) * t) * ramp).astype(
        np.float32
    )


def train_runs(root: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    for label in [*TONES, "background"]:
        (root / "data" / label).mkdir(parents=True, exist_ok=True)
        for k in range(24):
            clip = noise(1.0, rng) + (tone(TONES[label], 1.0, rng) if label in TONES else 0)
            sf.write(root / "data" / label / f"{label}{k:02d}.wav", clip, SR)
    store = root / "tones.zarr"
    args = ["featurize", "--dataset", "folders", "--data-dir", str(root / "data"), "--store",
            str(store), "-q", *FEATURES]  # fmt: skip
    run = CliRunner().invoke(fat, args)
    assert run.exit_code == 0, run.output
    runs = {}
    for arch, crop in (("cnn", 128), ("gcnn", 128)):
        out = root / arch
        args = ["train", "--store", str(store), "--out", str(out), "--train-splits", "train",
                "--loss", "bce", "--arch", arch, "--width", "0.25", "--epochs", "15",
                "--batch-size", "16", "--crop-frames", str(crop), "--lr", "2e-3", "--mixup", "0",
                "--time-masks", "0", "--freq-masks", "0", "-q"]  # fmt: skip
        done = CliRunner().invoke(fat, args)
        assert done.exit_code == 0, done.output
        runs[arch] = out
    return runs


def recordings(root: Path, n: int, seconds: float) -> list[tuple[Path, list[Event]]]:
    out = []
    for k in range(n):
        rng = np.random.default_rng(100 + k)
        audio, events, t = noise(seconds, rng), [], 1.0 + rng.random()
        while t < seconds - 5:
            label = list(TONES)[int(rng.integers(3))]
            length = 1.0 + 3.0 * rng.random()
            a = int(t * SR)
            piece = tone(TONES[label], length, rng)
            audio[a : a + len(piece)] += piece
            path = root / f"long{k}.wav"
            events.append(Event(path.name, round(t, 3), round(t + length, 3), label, None))
            t += length + 1.0 + 3.0 * rng.random()
        sf.write(root / f"long{k}.wav", audio, SR)
        out.append((root / f"long{k}.wav", events))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--recordings", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=120.0)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="fat-detect-methods-"))
    runs = train_runs(root)
    recs = recordings(root, args.recordings, args.seconds)
    reference = [e for _, events in recs for e in events]
    rows, differences = {}, []
    variants = (
        ("cnn", "windows", "mean"),
        ("cnn", "windows", "min"),
        ("cnn", "shared", "mean"),
        ("cnn", "shared", "min"),
        ("gcnn", "windows", "min"),
        ("gcnn", "frames", "mean"),
    )
    for arch, method, combine in variants:
        trained = load_trained_model(runs[arch])
        events, scores = [], []
        cfg = DetectConfig(method=method, hop_seconds=0.32, combine=combine)
        for path, _ in recs:
            detection = detect_file(trained, path, cfg)
            scores.append(detection.scores)
            events += [e for e in scores_to_events(detection.scores, RULE) if e.label in TONES]
        only = [s.only(tuple(TONES)) for s in scores]
        result = evaluate_events(reference, events, only, tuple(TONES)).to_dict()
        rows[f"{arch} {method} {combine}"] = {
            "step_s": round(scores[0].step, 3),
            "event_f1": round(result["event_based"]["f_measure"], 3),
            "segment_f1": round(result["segment_based"]["f_measure"], 3),
            "psds": round(result["psds"]["value"], 3),
        }
        if arch == "cnn" and combine == "mean":  # shared against alone, as fat predict combines
            differences.append(np.concatenate([s.scores for s in scores]))
    gap = np.abs(differences[0] - differences[1])
    figures = {
        "rows": rows,
        "cnn_shared_vs_alone": {
            "median_abs": round(float(np.median(gap)), 4),
            "p99_abs": round(float(np.quantile(gap, 0.99)), 4),
            "max_abs": round(float(gap.max()), 4),
        },
    }
    print(json.dumps(figures, indent=1))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "detect_methods.json").write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
