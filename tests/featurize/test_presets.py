"""Named feature presets (`fat featurize --preset`), and the PANNs one against PANNs' own front
end (torchlibrosa's Spectrogram + LogmelFilterBank, as its models compute it) on real WAVs."""

import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner

from fat.cli import main
from fat.core.features import FEATURE_PRESETS, LogMelConfig
from fat.featurize.logmel import LogMelExtractor
from fat.store import open_store
from tests.synthetic import make_fsd_layout

# Largest difference from torchlibrosa's log-mel, in dB: fat's float32 extractor agrees to
# float32 round-off (1e-4 dB measured); the store's float16 rounds values of magnitude up to
# 128 dB by at most 0.03 dB (0.015 measured).
EXTRACTOR_TOLERANCE_DB = 1e-3
STORE_TOLERANCE_DB = 0.05


def panns_front_end(audio: np.ndarray) -> np.ndarray:
    """(n_mels, frames) log-mel of PANNs' models: torchlibrosa with PANNs' settings."""
    from torchlibrosa.stft import LogmelFilterBank, Spectrogram

    spectrogram = Spectrogram(
        n_fft=1024, hop_length=320, win_length=1024, window="hann", center=True,
        pad_mode="reflect", freeze_parameters=True,
    )  # fmt: skip
    logmel = LogmelFilterBank(
        sr=32000, n_fft=1024, n_mels=64, fmin=50, fmax=14000, ref=1.0, amin=1e-10, top_db=None,
        freeze_parameters=True,
    )  # fmt: skip
    with torch.no_grad():
        out = logmel(spectrogram(torch.from_numpy(audio)[None].float()))
    return out[0, 0].numpy().T


def test_presets_are_listed_and_the_panns_one_is_what_panns_models_expect():
    panns = FEATURE_PRESETS["panns"]
    assert (panns.sample_rate, panns.n_fft, panns.hop_length, panns.n_mels) == (
        32000,
        1024,
        320,
        64,
    )
    assert (panns.fmin, panns.fmax, panns.pad_mode) == (50.0, 14000.0, "reflect")
    assert FEATURE_PRESETS["fat2019"] == LogMelConfig()
    result = CliRunner().invoke(main, ["featurize", "--list-presets"])
    assert result.exit_code == 0, result.output
    assert "panns" in result.output and "sample_rate=32000" in result.output
    assert "fat2019" in result.output


def test_the_panns_preset_matches_panns_front_end_on_real_wavs(tmp_path):
    root = make_fsd_layout(tmp_path / "data", n_curated=3, n_test=0)
    t = np.arange(int(2.7 * 32000)) / 32000
    rng = np.random.default_rng(1)
    sweep = 0.4 * np.sin(2 * np.pi * (200 + 3000 * t) * t) + 0.02 * rng.normal(size=t.shape)
    sf.write(root / "train_curated" / "cur000.wav", sweep, 32000, subtype="PCM_16")
    sf.write(root / "train_curated" / "cur001.wav", 0.3 * rng.normal(size=9001), 32000, "FLOAT")
    store = tmp_path / "panns.zarr"
    result = CliRunner().invoke(
        main, ["featurize", "--data-dir", str(root), "--split", "curated", "--store", str(store),
               "--preset", "panns", "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    with open_store(store) as s:
        split = s.split("curated")
        assert split.feature_config == FEATURE_PRESETS["panns"]
        for clip in ("cur000.wav", "cur001.wav"):
            audio, rate = sf.read(root / "train_curated" / clip, dtype="float32")
            assert rate == 32000
            theirs = panns_front_end(audio)
            stored = np.asarray(split.read(clip), np.float32)
            assert stored.shape == theirs.shape, clip
            assert np.abs(stored - theirs).max() < STORE_TOLERANCE_DB, clip
            exact = LogMelExtractor(FEATURE_PRESETS["panns"])(audio)
            assert np.abs(exact - theirs).max() < EXTRACTOR_TOLERANCE_DB, clip


def test_flags_given_with_a_preset_override_it(tmp_path):
    root = make_fsd_layout(tmp_path / "data", n_curated=2, n_test=0)
    store = tmp_path / "f.zarr"
    result = CliRunner().invoke(
        main, ["featurize", "--data-dir", str(root), "--split", "curated", "--store", str(store),
               "--preset", "panns", "--n-mels", "32", "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    with open_store(store) as s:
        cfg = s.split("curated").feature_config
    assert (cfg.n_mels, cfg.sample_rate, cfg.pad_mode) == (32, 32000, "reflect")
    unknown = CliRunner().invoke(main, ["featurize", "--data-dir", str(root), "--split", "curated",
                                        "--store", str(store), "--preset", "nope"])  # fmt: skip
    assert unknown.exit_code != 0 and "nope" in unknown.output
    with pytest.raises(Exception, match="pad_mode"):
        LogMelConfig(pad_mode="edge")
