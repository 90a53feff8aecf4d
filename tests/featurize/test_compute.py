"""Decoding and log-mel computation, checked against librosa on small real files."""

from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch

from fat.core.errors import FatError
from fat.core.features import FEATURE_PRESETS, LogMelConfig
from fat.featurize.audio import load_audio, probe_audio
from fat.featurize.logmel import (
    FFT_BACKENDS,
    LogMelExtractor,
    _decibels,
    available_fft_backends,
    mel_filterbank,
)
from fat.featurize.logmel_torch import TorchLogMelExtractor
from fat.featurize.reference import librosa_logmel
from fat.store import ClipRecord, encode_clip

# float32 computation vs librosa (itself float32), over bins louder than -80 dB: quieter bins
# are dominated by FFT round-off in both implementations. Measured ~6e-5 dB.
TOL_DB_FLOAT32 = 1e-3
# Stored float16 everywhere: half a float16 step is 0.031 dB for |x| in [64, 128).
TOL_DB_FLOAT16 = 0.04

DEFAULT = LogMelConfig()
# Odd sizes, and win_length < n_fft so the window is zero-padded to n_fft (centred).
ODD = LogMelConfig(
    sample_rate=16000,
    n_fft=1024,
    win_length=800,
    hop_length=160,
    n_mels=64,
    fmin=50.0,
    fmax=8000.0,
    min_samples=1024,
)


def noise_and_tones(sample_rate: int, seconds: float, seed: int = 0) -> np.ndarray:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    rng = np.random.default_rng(seed)
    y = 0.05 * rng.standard_normal(t.size) + 0.3 * np.sin(2 * np.pi * 440 * t)
    y += 0.1 * np.sin(2 * np.pi * 3000 * t)
    return y.astype(np.float32)


@pytest.mark.parametrize("cfg", [DEFAULT, ODD], ids=["default", "odd"])
def test_mel_filterbank_matches_librosa(cfg: LogMelConfig) -> None:
    ours = mel_filterbank(cfg)
    theirs = librosa.filters.mel(
        sr=cfg.sample_rate,
        n_fft=cfg.n_fft,
        n_mels=cfg.n_mels,
        fmin=cfg.fmin,
        fmax=cfg.fmax,
        htk=False,
        norm="slaney",
    )
    assert ours.shape == (cfg.n_mels, cfg.n_fft // 2 + 1)
    assert ours.dtype == np.float32
    assert np.abs(ours - theirs).max() <= 1e-6 * theirs.max()


# Odd n_fft (the half-complex layout then has no lone Nyquist row) and magnitude, not power.
ODD_MAGNITUDE = LogMelConfig(**{**ODD.to_dict(), "n_fft": 1023, "power": 1.0})
# No centring: the first frame starts at the first sample, no zeros in front.
UNCENTRED = LogMelConfig(**{**ODD.to_dict(), "center": False})
BACKENDS = [
    pytest.param(
        b, marks=pytest.mark.skipif(b not in available_fft_backends(), reason=f"{b} missing")
    )
    for b in FFT_BACKENDS
]


@pytest.mark.parametrize("fft_backend", BACKENDS)
@pytest.mark.parametrize(
    "cfg",
    [DEFAULT, ODD, ODD_MAGNITUDE, UNCENTRED, FEATURE_PRESETS["panns"]],
    ids=["default", "odd", "magnitude", "uncentred", "panns-reflect"],
)
def test_logmel_matches_librosa(cfg: LogMelConfig, fft_backend: str) -> None:
    y = noise_and_tones(cfg.sample_rate, 3.0)
    expected = librosa_logmel(y, cfg)

    exact = LogMelExtractor(cfg, fft_backend)(y)
    assert exact.shape == expected.shape == (cfg.n_mels, cfg.n_frames(y.size))
    assert exact.dtype == np.float32
    assert exact.T.flags.c_contiguous  # frame-major: the store's row layout, no copy
    loud = expected > -80
    assert loud.mean() > 0.9
    assert np.abs(exact - expected)[loud].max() <= TOL_DB_FLOAT32

    stored = encode_clip(ClipRecord("c", exact, np.zeros(1), 1, 1, 1.0), cfg.dtype).frames.T
    assert stored.dtype == np.float16
    assert np.abs(stored.astype(np.float32) - expected).max() <= TOL_DB_FLOAT16


TORCH_DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]


@pytest.mark.parametrize("device", TORCH_DEVICES)
@pytest.mark.parametrize(
    "cfg",
    [DEFAULT, ODD, ODD_MAGNITUDE, UNCENTRED, FEATURE_PRESETS["panns"]],
    ids=["default", "odd", "magnitude", "uncentred", "panns-reflect"],
)
@pytest.mark.parametrize("seconds", [0.01, 2.0], ids=["shorter-than-a-window", "2s"])
def test_torch_logmel_matches_the_reference(cfg: LogMelConfig, device: str, seconds: float) -> None:
    """`fat featurize --device cuda` computes with torch; the numba/ducc0 extractor is the
    reference it must equal, to float32 round-off where the sound is (as against librosa)
    and to one float16 step once stored."""
    y = noise_and_tones(cfg.sample_rate, seconds, seed=5)
    reference = LogMelExtractor(cfg)(y)

    got = TorchLogMelExtractor(cfg, device)(y)

    assert got.shape == reference.shape == (cfg.n_mels, cfg.n_frames(y.size))
    assert got.dtype == np.float32
    loud = reference > -80
    assert loud.mean() > 0.5
    assert np.abs(got - reference)[loud].max() <= TOL_DB_FLOAT32
    stored = [
        encode_clip(ClipRecord("c", x, np.zeros(1), 1, 1, 1.0), "float16").frames[loud.T]
        for x in (got, reference)
    ]
    steps = np.abs(stored[0].view(np.int16).astype(int) - stored[1].view(np.int16))
    assert steps.max() <= 1


def test_decibels_match_log10_over_the_float32_range() -> None:
    """The vectorised dB conversion against float64 log10: every binade from below `amin` to
    float32's largest value, exact powers of two, the mantissa's edges, and non-finite input."""
    rng = np.random.default_rng(0)
    amin = np.float32(1e-10)
    x = np.concatenate(
        [
            np.exp(rng.uniform(np.log(1e-12), np.log(3e38), 200_000)),
            2.0 ** np.arange(-33, 128),
            np.sqrt(0.5) * 2.0 ** np.arange(-33, 127),
            [0.0, 1e-45, 1e-10, 3.4028235e38],
        ]
    ).astype(np.float32)
    expected = 10 * np.log10(np.maximum(x.astype(np.float64), amin))
    got = x.copy()
    _decibels(got, amin, np.empty_like(got))
    # float32 keeps ~7 digits: ~1e-5 dB at 100 dB; numpy's own float32 log10 is as close.
    np.testing.assert_allclose(got, expected, rtol=1.2e-7, atol=1e-5)
    assert got[x <= amin].max() == np.float32(-100.0)

    special = np.array([np.inf, np.nan, -np.nan, 1.0], dtype=np.float32)
    special[2] = np.frombuffer(np.uint32(0xFFC00000).tobytes(), np.float32)[0]  # x86's NaN
    _decibels(special, amin, np.empty_like(special))
    assert special.tolist() == [np.inf, np.inf, np.inf, 0.0]


def test_fft_backends_agree() -> None:
    if len(available_fft_backends()) < 2:
        pytest.skip("needs ducc0 (the fast extra) and scipy")
    y = noise_and_tones(DEFAULT.sample_rate, 2.0, seed=3)
    a, b = (LogMelExtractor(DEFAULT, name)(y) for name in FFT_BACKENDS)
    assert np.abs(a - b)[a > -80].max() <= 1e-4


def test_unknown_fft_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="fft_backend"):
        LogMelExtractor(DEFAULT, "fftw")


# Largest decoding error each format may add, from its quantisation step.
FORMAT_ATOL = {
    "PCM_U8": 2.0**-7,
    "PCM_16": 2.0**-15,
    "PCM_24": 2.0**-23,
    "PCM_32": 1e-7,  # below float32 resolution near 0.5: the read is the limit
    "FLOAT": 0.0,
}


@pytest.mark.parametrize("subtype", sorted(FORMAT_ATOL))
def test_decodes_wav_formats(tmp_path: Path, subtype: str) -> None:
    y = 0.5 * noise_and_tones(44100, 0.25)
    path = tmp_path / f"clip_{subtype}.wav"
    sf.write(path, y, 44100, subtype=subtype)

    audio, info = load_audio(path, 44100)

    assert audio.dtype == np.float32 and audio.ndim == 1 and audio.flags.c_contiguous
    assert audio.shape == y.shape
    np.testing.assert_allclose(audio, y, rtol=0, atol=FORMAT_ATOL[subtype])
    assert info == probe_audio(path)
    assert (info.sample_rate, info.channels, info.duration_s) == (44100, 1, 0.25)


def _with_list_chunk(path: Path) -> None:
    """Insert a LIST chunk of odd length (padded) between fmt and data, as tagging tools do."""
    raw = path.read_bytes()
    data_at = raw.index(b"data")
    info = b"INFOISFT\x05\x00\x00\x00test\x00"
    chunk = b"LIST" + len(info).to_bytes(4, "little") + info + b"\x00"
    body = raw[12:data_at] + chunk + raw[data_at:]
    path.write_bytes(b"RIFF" + (len(body) + 4).to_bytes(4, "little") + b"WAVE" + body)


@pytest.mark.parametrize("container", ["WAV", "WAVEX", "WAV+LIST"])
@pytest.mark.parametrize("channels", [1, 2, 3])
def test_pcm16_wav_read_directly_equals_libsndfile(
    tmp_path: Path, container: str, channels: int
) -> None:
    """16-bit WAV skips libsndfile; the result must be what libsndfile decodes."""
    y = np.stack([noise_and_tones(22050, 0.3, seed=c) * 0.8 for c in range(channels)], axis=1)
    path = tmp_path / "clip.wav"
    sf.write(path, y, 22050, subtype="PCM_16", format=container.split("+")[0])
    if container.endswith("+LIST"):
        _with_list_chunk(path)

    audio, info = load_audio(path, 22050)

    reference, sr = sf.read(path, dtype="float32", always_2d=True)
    assert (info.sample_rate, info.channels) == (sr, channels) == (22050, channels)
    assert info.duration_s == reference.shape[0] / sr
    np.testing.assert_allclose(audio, reference.mean(axis=1), rtol=0, atol=1e-7)


def test_stereo_is_downmixed_to_mean(tmp_path: Path) -> None:
    left, right = noise_and_tones(44100, 0.2, seed=1), noise_and_tones(44100, 0.2, seed=2)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), 44100, subtype="FLOAT")

    audio, info = load_audio(path, 44100)

    assert info.channels == 2
    np.testing.assert_allclose(audio, (left + right) / 2, rtol=0, atol=1e-7)


def test_resampling_keeps_length_and_pitch(tmp_path: Path) -> None:
    sr_in, sr_out = 22050, 44100
    t = np.arange(sr_in) / sr_in
    path = tmp_path / "tone_22k.wav"
    sf.write(path, (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32), sr_in)

    audio, info = load_audio(path, sr_out)

    assert info.sample_rate == sr_in and info.duration_s == 1.0
    assert abs(audio.size - sr_out) <= 1
    spectrum = np.abs(np.fft.rfft(audio))
    peak_hz = np.fft.rfftfreq(audio.size, d=1.0 / sr_out)[spectrum.argmax()]
    assert abs(peak_hz - 1000) <= 1.0


def test_clip_shorter_than_a_window_is_padded(tmp_path: Path) -> None:
    path = tmp_path / "blip.wav"
    n = 300  # ~7 ms
    sf.write(path, noise_and_tones(44100, n / 44100), 44100)

    audio, _ = load_audio(path, DEFAULT.sample_rate)
    out = LogMelExtractor(DEFAULT)(audio)

    assert audio.size == n
    assert out.shape == (DEFAULT.n_mels, DEFAULT.n_frames(n))
    assert np.isfinite(out).all()


def test_silent_clip_is_floored_not_an_error(tmp_path: Path) -> None:
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros(44100, dtype=np.float32), 44100)

    out = LogMelExtractor(DEFAULT)(load_audio(path, DEFAULT.sample_rate)[0])

    # the amin floor, 10 * log10(1e-10) in float32
    np.testing.assert_allclose(out, -100, rtol=0, atol=1e-5)


def test_long_low_rate_clip(tmp_path: Path) -> None:
    sr_in, seconds = 8000, 60
    path = tmp_path / "long.wav"
    sf.write(path, noise_and_tones(sr_in, seconds), sr_in)

    audio, info = load_audio(path, DEFAULT.sample_rate)
    out = LogMelExtractor(DEFAULT)(audio)

    assert info.duration_s == seconds
    assert abs(audio.size - seconds * DEFAULT.sample_rate) <= 1
    assert out.shape == (DEFAULT.n_mels, DEFAULT.n_frames(audio.size))


def _empty(path: Path) -> None:
    path.touch()


def _text(path: Path) -> None:
    path.write_text("this is not audio\n")


def _truncated(path: Path) -> None:
    sf.write(path, noise_and_tones(44100, 0.5), 44100, subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _nan(path: Path) -> None:
    y = noise_and_tones(44100, 0.1)
    y[100] = np.nan
    sf.write(path, y, 44100, subtype="FLOAT")


def _missing(path: Path) -> None:
    pass


@pytest.mark.parametrize(
    "make, reason",
    [
        (_empty, "empty file"),
        (_text, "not a readable audio file"),
        (_truncated, "truncated"),
        (_nan, "NaN"),
        (_missing, "not found"),
    ],
    ids=["empty", "text", "truncated", "nan", "missing"],
)
def test_bad_files_raise_one_line_fat_error(tmp_path: Path, make, reason: str) -> None:
    path = tmp_path / "bad_clip.wav"
    make(path)

    with pytest.raises(FatError) as caught:
        load_audio(path, 44100)

    message = str(caught.value)
    assert "bad_clip.wav" in message and reason in message
    assert "\n" not in message
    if make is not _nan:  # NaNs are only found by decoding, which probing skips
        with pytest.raises(FatError, match="bad_clip.wav"):
            probe_audio(path)
