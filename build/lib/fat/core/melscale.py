"""Slaney's Auditory Toolbox mel scale, as in librosa: linear below 1 kHz, logarithmic above.

Shared by the filterbank (featurize) and the frequency axis of plots (core), so both agree.
"""

import numpy as np

from fat.core.features import LogMelConfig

_F_SP = 200.0 / 3
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = np.log(6.4) / 27.0


def hz_to_mel(hz: np.ndarray) -> np.ndarray:
    hz = np.asarray(hz, dtype=np.float64)
    # The maximum only keeps log() away from 0 Hz; np.where then discards those values.
    log_part = _MIN_LOG_MEL + np.log(np.maximum(hz, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOGSTEP
    return np.where(hz >= _MIN_LOG_HZ, log_part, hz / _F_SP)


def mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    return np.where(
        mel >= _MIN_LOG_MEL, _MIN_LOG_HZ * np.exp(_LOGSTEP * (mel - _MIN_LOG_MEL)), _F_SP * mel
    )


def mel_band_edges_hz(cfg: LogMelConfig) -> np.ndarray:
    """The n_mels + 2 edge frequencies of the triangular filters (centres are [1:-1])."""
    return mel_to_hz(np.linspace(hz_to_mel(cfg.fmin), hz_to_mel(cfg.fmax), cfg.n_mels + 2))
