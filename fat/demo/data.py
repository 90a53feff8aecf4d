"""Synthetic datasets in the exact FSDKaggle2019 layout, for the demo, tests and benchmarks.

Each class has a class-typical synthetic sound whose parameters vary per clip (pitch,
duration, envelope, loudness, background noise), so telling classes apart is a real learning
problem (`fat.demo.sounds`). Two presets:

- `default`, the demo's: 12 classes; about 15% of clips mix two sources; clips last 0.4 s to
  15 s. The noisy split has twice the clips and other acoustics (more noise, band-limiting),
  and ~30% of its clips show labels other than the truth: ~15% one wrong label instead of the
  true ones, ~14% an extra wrong label, and ~1% a missing label (only two-label clips can
  lose one). At scale 1 the whole dataset stays under 50 MB for every seed.
- `hard`, for telling training techniques apart: 39 classes, 12 pairs of them built to be
  confused; 11 curated clips lead with each class (429; 11-20 per class with the second
  labels), ~25% of clips multi-label; every recording with background noise and half with
  reverb or band limits; a noisy split 4.7x the curated one in field acoustics (more noise,
  more reverb and band limits) with ~48% of its clips mislabelled (one wrong label, the
  confusable partner half the time; an extra one; a missing one; or the labelled sound quiet
  under an unlabelled louder one); 390 test clips like the curated ones. Clips of 0.4-8 s,
  ~135 MB at scale 1 (capped at 145 MB).
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy import signal

from fat.core.errors import FatError
from fat.core.labels import official_vocabulary
from fat.core.layout import SAMPLE_SUBMISSION, SPLITS
from fat.core.progress import progress_bar
from fat.demo.sounds import CONFUSABLE, HARD_SOUNDS, SAMPLE_RATE, SOUNDS

MIN_SECONDS, MAX_SECONDS = 0.4, 15.0
WAV_HEADER_BYTES = 44  # soundfile's PCM_16 WAV header; each sample takes 2 more bytes
# The whole dataset stays under 50 MB at scale 1; the CSVs take ~0.05 MB of it.
AUDIO_BYTES_PER_SCALE = 49_900_000
LABEL_CSVS = {"curated": "train_curated.csv", "noisy": "train_noisy.csv", "test": "test_labels.csv"}
BAD_FILES = ("bad_empty.wav", "bad_text.wav", "bad_missing.wav")


def _normalise(x: np.ndarray, peak: float) -> np.ndarray:
    return x * (peak / (np.abs(x).max() + 1e-9))


def _draw_samples(rng: np.random.Generator) -> int:
    seconds = float(np.clip(rng.lognormal(0.7, 0.7), MIN_SECONDS, MAX_SECONDS))
    return int(seconds * SAMPLE_RATE)


def _clip(rng: np.random.Generator, labels: list[str], n: int, noisy: bool) -> np.ndarray:
    mix = np.zeros(n)
    for i, label in enumerate(labels):
        part = _normalise(SOUNDS[label](rng, n), rng.uniform(0.3, 0.8))
        if i:  # a second source starts at a random offset
            shift = int(rng.uniform(0, 0.5) * n)
            part = np.concatenate([np.zeros(shift), part[: n - shift]])
        mix += part
    noise_level = rng.uniform(0.05, 0.3) if noisy else rng.uniform(0.0, 0.03)
    mix += rng.normal(scale=noise_level * 0.3, size=n)
    if noisy and rng.random() < 0.5:  # band-limited, like a phone or a cheap recorder
        kernel = np.ones(int(rng.integers(4, 12)))
        mix = np.convolve(mix, kernel / kernel.size, "same")
    return _normalise(mix, rng.uniform(0.2, 0.9)).astype(np.float32)


def _labels_for(rng: np.random.Generator, classes: list[str]) -> list[str]:
    first = str(rng.choice(classes))
    if rng.random() < 0.15:
        return [first, str(rng.choice([c for c in classes if c != first]))]
    return [first]


def _corrupt(rng: np.random.Generator, labels: list[str], classes: list[str]) -> list[str]:
    """Noisy-split labels: 15% one wrong label instead of the true ones, ~14% an extra wrong
    label, ~1% a missing one (7% of the two-label clips), the rest the truth."""
    r = rng.random()
    if r < 0.15:
        return [str(rng.choice([c for c in classes if c not in labels]))]  # wrong
    if r < 0.22 and len(labels) > 1:
        return labels[:1]  # missing
    if r < 0.30:
        return labels + [str(rng.choice([c for c in classes if c not in labels]))]  # extra
    return labels


class _ByteBudget:
    """Caps clip lengths so that all WAVs fit in `total` bytes.

    Each cap leaves exactly enough for the clips still to come at MIN_SECONDS, so it only bites
    when the drawn lengths would overflow: a seed that fits (seed 0 does) is left unchanged, and
    one that would not gets its last clips cut, down to MIN_SECONDS.
    """

    _MIN_WAV_BYTES = WAV_HEADER_BYTES + 2 * int(MIN_SECONDS * SAMPLE_RATE)

    def __init__(self, total: int, clips: int):
        self.left, self.clips_left = total, clips

    def take(self, samples: int) -> int:
        self.clips_left -= 1
        reserved = self.clips_left * self._MIN_WAV_BYTES
        samples = min(samples, (self.left - reserved - WAV_HEADER_BYTES) // 2)
        self.left -= WAV_HEADER_BYTES + 2 * samples
        return samples


@dataclass(frozen=True)
class DemoClip:
    split: str
    name: str
    audio: np.ndarray  # float32 at SAMPLE_RATE
    truth: list[str]  # what the audio holds
    shown: list[str]  # what the split's CSV says: not always the truth in the noisy split

    @property
    def wav_bytes(self) -> int:
        return WAV_HEADER_BYTES + 2 * len(self.audio)


def _default_clips(seed: int, scale: float) -> Iterator[DemoClip]:
    classes = list(SOUNDS)
    rng = np.random.default_rng(seed)
    counts = {"curated": int(120 * scale), "noisy": int(240 * scale), "test": int(60 * scale)}
    budget = _ByteBudget(int(AUDIO_BYTES_PER_SCALE * scale), sum(counts.values()))
    for split, count in counts.items():
        noisy = split == "noisy"
        for i in range(count):
            truth = _labels_for(rng, classes)
            audio = _clip(rng, truth, budget.take(_draw_samples(rng)), noisy)
            shown = _corrupt(rng, truth, classes) if noisy else truth
            yield DemoClip(split, f"{split[0]}{seed:02d}{i:05d}.wav", audio, truth, shown)


# The hard preset (see the module docstring).
HARD_COUNTS = {"curated": 11, "noisy": 52, "test": 10}  # clips per class at scale 1
HARD_AUDIO_BYTES_PER_SCALE = 145_000_000
HARD_MAX_SECONDS = 8.0


def _partner(label: str) -> str | None:
    for pair in CONFUSABLE:
        if label in pair:
            return pair[1 - pair.index(label)]
    return None


def _other(rng: np.random.Generator, classes: list[str], not_in: list[str]) -> str:
    return str(rng.choice([c for c in classes if c not in not_in]))


def _hard_labels(rng: np.random.Generator, classes: list[str], first: str) -> list[str]:
    """`first`, alone or with one (20%) or two (5%) more; a second label is the first's
    confusable partner a third of the time it has one."""
    labels = [first]
    r = rng.random()
    extra = 2 if r < 0.05 else int(r < 0.25)
    for _ in range(extra):
        partner = _partner(labels[0])
        if partner and partner not in labels and rng.random() < 1 / 3:
            labels.append(partner)
        else:
            labels.append(_other(rng, classes, labels))
    return labels


def _hard_noisy_labels(
    rng: np.random.Generator, truth: list[str], classes: list[str]
) -> tuple[list[str], list[str], bool]:
    """(what the audio holds, what the CSV shows, whether the shown sound is quiet under an
    unlabelled loud one) for a noisy clip: ~10% quiet under another, ~18% one wrong label
    (the confusable partner half the time), ~12% an extra wrong label, ~8% a label missing
    (a wrong label instead for single-label clips): ~48% show other labels than the truth."""
    r = rng.random()
    if r < 0.10:
        return truth + [_other(rng, classes, truth)], truth, True  # the added source is loud
    if 0.40 <= r < 0.48 and len(truth) > 1:
        drop = int(rng.integers(len(truth)))
        return truth, truth[:drop] + truth[drop + 1 :], False
    if r < 0.28 or 0.40 <= r < 0.48:
        partner = _partner(truth[0])
        wrong = partner if partner and rng.random() < 0.5 else _other(rng, classes, truth)
        return truth, [wrong], False
    if r < 0.40:
        return truth, truth + [_other(rng, classes, truth)], False
    return truth, truth, False


def _reverb(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    rt60 = rng.uniform(0.2, 0.8)
    m = int(rt60 * SAMPLE_RATE)
    ir = rng.normal(size=m) * np.exp(-6.9 * np.arange(m) / m)  # -60 dB at rt60
    ir[0] = 1.0
    wet = signal.fftconvolve(x, ir)[: len(x)]
    return x + rng.uniform(0.3, 0.8) * wet / (np.abs(wet).max() + 1e-9) * np.abs(x).max()


def _band_limit(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    if rng.random() < 0.6:  # a phone or a cheap recorder: no highs
        sos = signal.butter(4, rng.uniform(1500, 5000), "lowpass", fs=SAMPLE_RATE, output="sos")
    else:  # a small speaker: no lows
        sos = signal.butter(4, rng.uniform(300, 900), "highpass", fs=SAMPLE_RATE, output="sos")
    return signal.sosfilt(sos, x)


def _hard_clip(rng, sources: list[str], quiet_first: bool, n: int, field: bool) -> np.ndarray:
    """Sources mixed (later ones weaker, at random offsets) in varied recording conditions:
    background noise, band limits and reverb in every split (curated recordings differ too),
    more and stronger ones in the noisy split's field recordings."""
    mix = np.zeros(n)
    for i, label in enumerate(sources):
        level = rng.uniform(0.3, 0.8) if i == 0 else rng.uniform(0.1, 0.6)
        if quiet_first and i < len(sources) - 1:
            level = rng.uniform(0.04, 0.12)  # the labelled sound under the loud last one
        elif quiet_first:
            level = rng.uniform(0.5, 0.9)
        part = _normalise(HARD_SOUNDS[label](rng, n), level)
        if i:
            shift = int(rng.uniform(0, 0.5) * n)
            part = np.concatenate([np.zeros(shift), part[: n - shift]])
        mix += part
    effects = 0.6 if field else 0.5
    if rng.random() < effects:
        mix = _reverb(rng, mix)
    if rng.random() < effects:
        mix = _band_limit(rng, mix)
    noise_level = rng.uniform(0.15, 0.6) if field else rng.uniform(0.08, 0.45)
    mix += rng.normal(scale=noise_level * 0.3 * np.abs(mix).max(), size=n)
    return _normalise(mix, rng.uniform(0.2, 0.9)).astype(np.float32)


def _hard_samples(rng: np.random.Generator) -> int:
    seconds = float(np.clip(rng.lognormal(-0.15, 0.6), MIN_SECONDS, HARD_MAX_SECONDS))
    return int(seconds * SAMPLE_RATE)


def _hard_clips(seed: int, scale: float) -> Iterator[DemoClip]:
    classes = list(HARD_SOUNDS)
    rng = np.random.default_rng(seed)
    counts = {split: int(k * len(classes) * scale) for split, k in HARD_COUNTS.items()}
    budget = _ByteBudget(int(HARD_AUDIO_BYTES_PER_SCALE * scale), sum(counts.values()))
    for split, count in counts.items():
        field = split == "noisy"
        # Every class leads equally often: ~13 curated clips each, not 9 for some and 26 for others.
        firsts = rng.permutation(np.tile(np.arange(len(classes)), -(-count // len(classes))))
        for i in range(count):
            labels = _hard_labels(rng, classes, classes[firsts[i]])
            if field:
                truth, shown, quiet = _hard_noisy_labels(rng, labels, classes)
            else:
                truth, shown, quiet = labels, labels, False
            audio = _hard_clip(rng, truth, quiet, budget.take(_hard_samples(rng)), field)
            yield DemoClip(split, f"{split[0]}{seed:02d}{i:05d}.wav", audio, truth, shown)


PRESETS: dict[str, Callable[[int, float], Iterator[DemoClip]]] = {
    "default": _default_clips,
    "hard": _hard_clips,
}


def generate_clips(
    seed: int = 0, scale: float = 1.0, preset: str = "default"
) -> Iterator[DemoClip]:
    """The dataset's clips in file order, with their true labels, without writing anything."""
    if preset not in PRESETS:
        raise FatError(f"unknown demo data preset {preset!r}; choose from {', '.join(PRESETS)}")
    return PRESETS[preset](seed, scale)


def _csv_row(name: str, labels: list[str], vocab: tuple[str, ...]) -> str:
    ordered = sorted(labels, key=vocab.index)
    return f'{name},"{",".join(ordered)}"' if len(ordered) > 1 else f"{name},{ordered[0]}"


def _write_lines(path: Path, header: str, rows: list[str]) -> None:
    path.write_text("\n".join([header, *rows]) + "\n")


def _write_bad_files(out: Path) -> None:
    """An empty file, a text file named .wav, and a CSV row whose file does not exist."""
    empty, text, missing = BAD_FILES
    noisy = out / SPLITS["noisy"].folder
    (noisy / empty).write_bytes(b"")
    (noisy / text).write_text("not audio\n")
    with open(out / LABEL_CSVS["noisy"], "a") as f:
        f.write(f"{empty},Bark\n{text},Meow\n{missing},Bark\n")


def write_demo_dataset(
    out: Path,
    seed: int = 0,
    scale: float = 1.0,
    bad_files: bool = False,
    preset: str = "default",
    progress: bool = False,
) -> dict[str, int]:
    """Write train_curated/, train_noisy/, test/, their CSVs, sample_submission.csv (80
    columns) and test_labels.csv (the answer key). Returns the number of clips per split.
    With `bad_files`, train_noisy.csv also lists the three BAD_FILES, which featurize skips."""
    out = Path(out)
    vocab = official_vocabulary()
    rows: dict[str, list[str]] = {split: [] for split in LABEL_CSVS}
    for split in rows:
        (out / SPLITS[split].folder).mkdir(parents=True, exist_ok=True)
    clips = progress_bar(generate_clips(seed, scale, preset), desc="clips", show=progress)
    for clip in clips:
        path = out / SPLITS[clip.split].folder / clip.name
        sf.write(path, clip.audio, SAMPLE_RATE, "PCM_16")
        rows[clip.split].append(_csv_row(clip.name, clip.shown, vocab))
    for split, name in LABEL_CSVS.items():
        _write_lines(out / name, "fname,labels", rows[split])
    zeros = ",".join(["0"] * len(vocab))
    test_ids = [row.split(",")[0] for row in rows["test"]]
    _write_lines(
        out / SAMPLE_SUBMISSION, "fname," + ",".join(vocab), [f"{c},{zeros}" for c in test_ids]
    )
    if bad_files:
        _write_bad_files(out)
    return {split: len(r) for split, r in rows.items()}
