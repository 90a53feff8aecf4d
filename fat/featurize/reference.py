"""The librosa oracle that `LogMelExtractor` is tested and benchmarked against.

librosa is a test/benchmark dependency only (the `test` extra), so it is imported on call.
"""

import numpy as np

from fat.core.features import LogMelConfig


def librosa_logmel(audio: np.ndarray, cfg: LogMelConfig) -> np.ndarray:
    """librosa's log-mel with exactly the settings `LogMelConfig` documents, (n_mels, frames)."""
    import librosa

    mel = librosa.feature.melspectrogram(
        y=audio,
        sr=cfg.sample_rate,
        n_fft=cfg.n_fft,
        hop_length=cfg.hop_length,
        win_length=cfg.win_length,
        window="hann",
        center=cfg.center,
        pad_mode=cfg.pad_mode,
        power=cfg.power,
        n_mels=cfg.n_mels,
        fmin=cfg.fmin,
        fmax=cfg.fmax,
        htk=False,
        norm="slaney",
    )
    return librosa.power_to_db(mel, ref=1.0, amin=cfg.amin, top_db=None)
