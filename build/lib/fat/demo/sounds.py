"""Synthetic sounds named after FSDKaggle2019 classes: each a generator `(rng, n) -> samples`
whose parameters vary per clip (pitch, rate, envelope), so telling classes apart is learning.

`SOUNDS` are the default demo data's 12 classes. `HARD_SOUNDS` add 27 more for the hard
preset, among them pairs built to be confused: the same mechanism with overlapping
parameters (knock and tap, male and female singing, glockenspiel and marimba, a guitar note
and a strum, accordion and harmonica, drip and raindrops, clapping and finger snaps,
crackle and applause, hiss and whispering)."""

from collections.abc import Callable

import numpy as np

SAMPLE_RATE = 22050  # half of the feature rate: small files, and featurize's resampling is used

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


# The hard preset's further classes.


def _notes(rng, n, make, every: tuple[float, float]) -> np.ndarray:
    """Notes from `make()` (a fresh draw each) at intervals drawn from `every` seconds."""
    return _bursts(rng, n, make, rng.uniform(*every))


def _tone(freqs, decay: float, seconds: float) -> np.ndarray:
    """Partials at `freqs`, the k-th at 1/(k+1) of the first's level, decaying together."""
    m = int(seconds * SAMPLE_RATE)
    partials = sum(np.sin(2 * np.pi * f * _t(m)) / (1 + i) for i, f in enumerate(freqs))
    return partials * _decay(m, decay)


def tap(rng, n):  # a knock's mechanism, lighter and brighter
    m = int(0.02 * SAMPLE_RATE)
    tick = lambda: np.convolve(rng.normal(size=m), np.ones(3) / 3, "same") * _decay(m, 140)  # noqa: E731
    return _bursts(rng, n, tick, rng.uniform(0.25, 0.5))


def bass_drum(rng, n):
    m = int(0.3 * SAMPLE_RATE)
    f = rng.uniform(45, 70) + 80 * _decay(m, 30)
    hit = np.sin(2 * np.pi * np.cumsum(f) / SAMPLE_RATE) * _decay(m, 12)
    return _bursts(rng, n, lambda: hit, rng.uniform(0.4, 0.7))


def finger_snapping(rng, n):
    m = int(0.03 * SAMPLE_RATE)
    snap = lambda: np.diff(rng.normal(size=m + 1)) * _decay(m, 150)  # noqa: E731
    return _bursts(rng, n, snap, rng.uniform(0.5, 1.0))


def clapping(rng, n):
    m = int(0.05 * SAMPLE_RATE)
    clap = lambda: np.convolve(rng.normal(size=m), np.hanning(6), "same") * _decay(m, 70)  # noqa: E731
    return _bursts(rng, n, clap, rng.uniform(0.3, 0.6))


def glockenspiel(rng, n):
    return _notes(
        rng, n, lambda: _tone([f := rng.uniform(1200, 2600), 2.76 * f], 4, 0.8), (0.25, 0.6)
    )


def marimba(rng, n):
    return _notes(rng, n, lambda: _tone([f := rng.uniform(500, 1400), 3.9 * f], 9, 0.5), (0.2, 0.5))


def chink_and_clink(rng, n):
    ratios = (1.0, 1.7, 2.45, 3.1)
    note = lambda: _tone([rng.uniform(2800, 4500) * r for r in ratios], 35, 0.25)  # noqa: E731
    return _notes(rng, n, note, (0.3, 0.9))


def _pluck(rng, f0: float, seconds: float, decay: float, partials: int = 8) -> np.ndarray:
    m = int(seconds * SAMPLE_RATE)
    return _harmonic(f0, m, partials, 0.7) * _decay(m, decay) * (1 - _decay(m, 400))


def acoustic_guitar(rng, n):
    return _notes(rng, n, lambda: _pluck(rng, rng.uniform(110, 400), 1.2, 3), (0.5, 1.0))


def strum(rng, n):
    def chord():
        root = rng.uniform(110, 250)
        m = int(1.2 * SAMPLE_RATE)
        out = np.zeros(m + 6 * int(0.025 * SAMPLE_RATE))
        for k, ratio in enumerate((1.0, 1.26, 1.5, 2.0, 2.52)):
            at = k * int(rng.uniform(0.015, 0.035) * SAMPLE_RATE)
            out[at : at + m] += _pluck(rng, root * ratio, 1.2, 3)
        return out

    return _notes(rng, n, chord, (0.6, 1.2))


def bass_guitar(rng, n):
    return _notes(rng, n, lambda: _pluck(rng, rng.uniform(41, 100), 1.0, 2, 6), (0.4, 0.8))


def electric_guitar(rng, n):
    clean = _notes(rng, n, lambda: _pluck(rng, rng.uniform(110, 400), 1.2, 2), (0.4, 0.9))
    return np.tanh(rng.uniform(3, 8) * clean / (np.abs(clean).max() + 1e-9))


def _sustained(rng, n, f0, partials, tilt, tremolo, breath=0.0) -> np.ndarray:
    swell = np.clip(np.sin(np.pi * np.linspace(0, 1, n)) * 3, 0, 1)
    wobble = 1 + 0.3 * np.sin(2 * np.pi * tremolo * _t(n))
    return _harmonic(f0, n, partials, tilt) * swell * wobble + breath * rng.normal(size=n)


def accordion(rng, n):
    return _sustained(rng, n, rng.uniform(150, 500), 10, 0.8, rng.uniform(5, 7))


def harmonica(rng, n):
    return _sustained(rng, n, rng.uniform(250, 800), 7, 0.65, rng.uniform(4, 6), breath=0.05)


def _singing(rng, n, lo: float, hi: float) -> np.ndarray:
    f0 = rng.uniform(lo, hi) * (1 + 0.03 * np.sin(2 * np.pi * rng.uniform(4.5, 6) * _t(n)))
    phrase = np.clip(np.sin(2 * np.pi * rng.uniform(0.3, 0.7) * _t(n) + 1), 0, None)
    return _harmonic(f0, n, 8, 0.7) * phrase


def female_singing(rng, n):
    return _singing(rng, n, 200, 450)


def male_singing(rng, n):  # overlaps the lower female range on purpose
    return _singing(rng, n, 100, 260)


def cricket(rng, n):
    f = rng.uniform(3800, 5200)
    pulses = (np.sin(2 * np.pi * rng.uniform(15, 30) * _t(n)) > 0.3).astype(float)
    chirps = np.sin(2 * np.pi * rng.uniform(1, 3) * _t(n)) > -0.2
    return np.sin(2 * np.pi * f * _t(n)) * pulses * chirps


def hiss(rng, n):  # whispering's noise without its syllables
    return np.diff(rng.normal(size=n + 1)) * rng.uniform(0.8, 1.0)


def waves_and_surf(rng, n):
    noise = np.convolve(rng.normal(size=n), np.ones(24) / 24, "same")
    return noise * (0.2 + np.sin(np.pi * rng.uniform(0.1, 0.25) * _t(n) + rng.uniform(0, 3)) ** 2)


def crackle(rng, n):  # applause's clicks, sparse and sharp
    clicks = (rng.random(n) < rng.uniform(0.0008, 0.003)) * rng.normal(size=n)
    return np.convolve(clicks, np.hanning(8), "same")


def frying(rng, n):
    return crackle(rng, n) + 0.15 * np.diff(rng.normal(size=n + 1))


def _blip(rng, lo: float, hi: float) -> np.ndarray:
    m = int(0.06 * SAMPLE_RATE)
    f = rng.uniform(lo, hi) * (1 + 0.8 * np.linspace(0, 1, m))
    return np.sin(2 * np.pi * np.cumsum(f) / SAMPLE_RATE) * _decay(m, 60)


def drip(rng, n):
    return _notes(rng, n, lambda: _blip(rng, 700, 1800), (0.5, 1.2))


def raindrop(rng, n):  # drips, many and overlapping
    return _notes(rng, n, lambda: _blip(rng, 900, 2500), (0.05, 0.15))


def mechanical_fan(rng, n):
    hum = _harmonic(rng.uniform(50, 120), n, 4, 0.5)
    return 0.4 * hum + np.convolve(rng.normal(size=n), np.ones(6) / 6, "same")


def tick_tock(rng, n):
    f1, f2 = rng.uniform(1500, 2500), rng.uniform(900, 1400)
    every = rng.uniform(0.45, 0.55)
    out, k, start = np.zeros(n), 0, int(rng.uniform(0, every) * SAMPLE_RATE)
    while start < n:
        click = _tone([f1 if k % 2 == 0 else f2], 200, 0.02)[: n - start]
        out[start : start + len(click)] += click
        start += int(every * SAMPLE_RATE)
        k += 1
    return out


def walk_and_footsteps(rng, n):
    m = int(0.08 * SAMPLE_RATE)
    step = lambda: np.convolve(rng.normal(size=m), np.ones(32) / 32, "same") * _decay(m, 35)  # noqa: E731
    return _bursts(rng, n, step, rng.uniform(0.45, 0.7))


def computer_keyboard(rng, n):
    m = int(0.015 * SAMPLE_RATE)
    key = lambda: np.convolve(rng.normal(size=m), np.ones(2) / 2, "same") * _decay(m, 250)  # noqa: E731
    return _bursts(rng, n, key, rng.uniform(0.08, 0.2))


def purr(rng, n):
    noise = np.convolve(rng.normal(size=n), np.ones(40) / 40, "same")
    return noise * (1 + np.sin(2 * np.pi * rng.uniform(20, 30) * _t(n)))


HARD_SOUNDS: dict[str, Sound] = {
    **SOUNDS,
    "Tap": tap,
    "Bass_drum": bass_drum,
    "Finger_snapping": finger_snapping,
    "Clapping": clapping,
    "Glockenspiel": glockenspiel,
    "Marimba_and_xylophone": marimba,
    "Chink_and_clink": chink_and_clink,
    "Acoustic_guitar": acoustic_guitar,
    "Strum": strum,
    "Bass_guitar": bass_guitar,
    "Electric_guitar": electric_guitar,
    "Accordion": accordion,
    "Harmonica": harmonica,
    "Female_singing": female_singing,
    "Male_singing": male_singing,
    "Cricket": cricket,
    "Hiss": hiss,
    "Waves_and_surf": waves_and_surf,
    "Crackle": crackle,
    "Frying_(food)": frying,
    "Drip": drip,
    "Raindrop": raindrop,
    "Mechanical_fan": mechanical_fan,
    "Tick-tock": tick_tock,
    "Walk_and_footsteps": walk_and_footsteps,
    "Computer_keyboard": computer_keyboard,
    "Purr": purr,
}

# Pairs made to be confused; the hard preset's wrong noisy labels pick the partner often.
CONFUSABLE = (
    ("Knock", "Tap"),
    ("Male_singing", "Female_singing"),
    ("Glockenspiel", "Marimba_and_xylophone"),
    ("Acoustic_guitar", "Strum"),
    ("Accordion", "Harmonica"),
    ("Drip", "Raindrop"),
    ("Clapping", "Finger_snapping"),
    ("Crackle", "Applause"),
    ("Hiss", "Whispering"),
    ("Bicycle_bell", "Chink_and_clink"),
    ("Stream", "Waves_and_surf"),
    ("Gong", "Church_bell"),
)
