"""A small synthetic dataset in the exact FSDKaggle2019 layout, for the demo and benchmarks.

Each class has a class-typical synthetic sound whose parameters vary per clip (pitch,
duration, envelope, loudness, background noise), so telling classes apart is a real learning
problem. About 15% of clips mix two sources; clips last 0.4 s to 15 s. The noisy split has
twice the clips and other acoustics (more noise, band-limiting), and ~30% of its clips show
labels other than the truth: ~15% one wrong label instead of the true ones, ~14% an extra wrong
label, and ~1% a missing label (only two-label clips can lose one). At scale 1 the whole
dataset stays under 50 MB for every seed.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from fat.core.labels import official_vocabulary
from fat.core.layout import SAMPLE_SUBMISSION, SPLITS

SAMPLE_RATE = 22050  # half of the feature rate: small files, and featurize's resampling is used
MIN_SECONDS, MAX_SECONDS = 0.4, 15.0
WAV_HEADER_BYTES = 44  # soundfile's PCM_16 WAV header; each sample takes 2 more bytes
# The whole dataset stays under 50 MB at scale 1; the CSVs take ~0.05 MB of it.
AUDIO_BYTES_PER_SCALE = 49_900_000
LABEL_CSVS = {"curated": "train_curated.csv", "noisy": "train_noisy.csv", "test": "test_labels.csv"}
BAD_FILES = ("bad_empty.wav", "bad_text.wav", "bad_missing.wav")

Sound = Callable[[np.random.Generator, int], np.ndarray]


def _t(n: int) -> np.ndarray:
    return np.arange(n) / SAMPLE_RATE


def _decay(n: int, rate: float) -> np.ndarray:
    return np.exp(-rate * _t(n))


def _bursts(rng, n, make, every: float) -> np.ndarray:
    out = np.zeros(n)
    start = int(rng.uniform(0, every) * SAMPLE_RATE)
    while start < n:
        burst = make()[: n - start]
        out[start : start + len(burst)] += burst
        start += int(every * rng.uniform(0.6, 1.4) * SAMPLE_RATE)
    return out


def _harmonic(f0: np.ndarray | float, n: int, partials: int, tilt: float) -> np.ndarray:
    phase = 2 * np.pi * np.cumsum(np.broadcast_to(f0, (n,))) / SAMPLE_RATE
    return sum(np.sin(k * phase) * tilt ** (k - 1) for k in range(1, partials + 1))


def bark(rng, n):
    f0 = rng.uniform(350, 650)
    m = int(0.15 * SAMPLE_RATE)
    return _bursts(rng, n, lambda: _harmonic(f0, m, 6, 0.6) * _decay(m, 25), 0.5)


def meow(rng, n):
    lo, hi = rng.uniform(350, 500), rng.uniform(650, 900)
    glide = lo + (hi - lo) * np.sin(np.pi * np.linspace(0, 1, n)) ** 2
    return _harmonic(glide, n, 5, 0.5) * np.sin(np.pi * np.linspace(0, 1, n))


def church_bell(rng, n):
    f0 = rng.uniform(200, 400)
    ratios = (0.5, 1.0, 1.19, 1.5, 2.0, 2.5)
    return sum(np.sin(2 * np.pi * f0 * r * _t(n)) / (1 + i) for i, r in enumerate(ratios)) * _decay(
        n, rng.uniform(0.5, 1.5)
    )


def bicycle_bell(rng, n):
    f0 = rng.uniform(2500, 3500)
    m = int(0.6 * SAMPLE_RATE)
    ring = (np.sin(2 * np.pi * f0 * _t(m)) + 0.5 * np.sin(2 * np.pi * 1.41 * f0 * _t(m))) * _decay(
        m, 6
    )
    return _bursts(rng, n, lambda: ring, 0.8)


def knock(rng, n):
    m = int(0.04 * SAMPLE_RATE)
    thud = lambda: np.convolve(rng.normal(size=m), np.ones(8) / 8, "same") * _decay(m, 80)  # noqa: E731
    return _bursts(rng, n, thud, rng.uniform(0.2, 0.4))


def applause(rng, n):
    clicks = (rng.random(n) < rng.uniform(0.01, 0.03)) * rng.normal(size=n)
    return np.convolve(clicks, np.hanning(30), "same")


def stream(rng, n):
    noise = rng.normal(size=n)
    return np.convolve(noise, np.ones(12) / 12, "same") * (
        1 + 0.3 * np.sin(2 * np.pi * 0.5 * _t(n))
    )


def buzz(rng, n):
    f0 = rng.uniform(90, 160)
    saw = 2 * ((f0 * _t(n)) % 1.0) - 1
    return saw * (0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(3, 8) * _t(n)))


def whispering(rng, n):
    noise = np.diff(rng.normal(size=n + 1))  # tilted towards high frequencies
    syllables = np.clip(np.sin(2 * np.pi * rng.uniform(3, 5) * _t(n)), 0, None)
    return noise * syllables


def hi_hat(rng, n):
    m = int(0.05 * SAMPLE_RATE)
    tick = lambda: np.diff(rng.normal(size=m + 1)) * _decay(m, 60)  # noqa: E731
    return _bursts(rng, n, tick, 60 / rng.uniform(90, 160) / 2)


def gong(rng, n):
    f0 = rng.uniform(60, 120)
    ratios = (1.0, 1.52, 2.31, 2.9, 3.7)
    return sum(np.sin(2 * np.pi * f0 * r * _t(n) + i) for i, r in enumerate(ratios)) * _decay(
        n, rng.uniform(0.3, 0.8)
    )


def chirp_and_tweet(rng, n):
    m = int(0.08 * SAMPLE_RATE)

    def tweet():
        lo = rng.uniform(3000, 4500)
        sweep = lo + rng.uniform(1000, 2500) * np.linspace(0, 1, m)
        return np.sin(2 * np.pi * np.cumsum(sweep) / SAMPLE_RATE) * np.hanning(m)

    return _bursts(rng, n, tweet, rng.uniform(0.15, 0.3))


SOUNDS: dict[str, Sound] = {
    "Bark": bark,
    "Meow": meow,
    "Church_bell": church_bell,
    "Bicycle_bell": bicycle_bell,
    "Knock": knock,
    "Applause": applause,
    "Stream": stream,
    "Buzz": buzz,
    "Whispering": whispering,
    "Hi-hat": hi_hat,
    "Gong": gong,
    "Chirp_and_tweet": chirp_and_tweet,
}


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


def generate_clips(seed: int = 0, scale: float = 1.0) -> Iterator[DemoClip]:
    """The dataset's clips in file order, with their true labels, without writing anything."""
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
    out: Path, seed: int = 0, scale: float = 1.0, bad_files: bool = False
) -> dict[str, int]:
    """Write train_curated/, train_noisy/, test/, their CSVs, sample_submission.csv (80
    columns) and test_labels.csv (the answer key). Returns the number of clips per split.
    With `bad_files`, train_noisy.csv also lists the three BAD_FILES, which featurize skips."""
    out = Path(out)
    vocab = official_vocabulary()
    rows: dict[str, list[str]] = {split: [] for split in LABEL_CSVS}
    for split in rows:
        (out / SPLITS[split].folder).mkdir(parents=True, exist_ok=True)
    for clip in generate_clips(seed, scale):
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
