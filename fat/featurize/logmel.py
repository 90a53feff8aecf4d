"""Log-mel spectrograms that match librosa without importing it.

The transform is `librosa.power_to_db(librosa.feature.melspectrogram(...))` with the settings in
`LogMelConfig` (see its docstring); librosa is only needed by the tests that check the match.
"""

import warnings

import numpy as np
import torch

from fat.config import LogMelConfig
from fat.melscale import mel_band_edges_hz


def mel_filterbank(cfg: LogMelConfig) -> np.ndarray:
    """Slaney-scale, area-normalised triangular filters, shape (n_mels, n_fft // 2 + 1).

    Equal to `librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax, htk=False, norm="slaney")`.
    """
    fft_hz = np.fft.rfftfreq(cfg.n_fft, d=1.0 / cfg.sample_rate)
    edges_hz = mel_band_edges_hz(cfg)
    widths = np.diff(edges_hz)
    ramps = edges_hz[:, None] - fft_hz[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    # Area normalisation keeps roughly constant energy per band despite widening triangles.
    weights *= (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None]
    return weights.astype(np.float32)


class LogMelExtractor:
    """Turns a mono clip at `cfg.sample_rate` into a (n_mels, n_frames) log-mel array in dB.

    Computes in float32: it matches librosa to ~1e-4 dB (librosa itself works in float32) and
    is ~3x faster than float64 on CPU.
    """

    def __init__(self, cfg: LogMelConfig) -> None:
        self.cfg = cfg
        self.window = torch.hann_window(cfg.win_length, periodic=True, dtype=torch.float32)
        # Each FFT bin feeds at most two adjacent triangles, so the basis is ~98% zeros at the
        # defaults: a CSR product is ~15x faster than the dense one (0.13 vs 2.0 ms per 5 s).
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta")
            self.mel_basis = torch.from_numpy(mel_filterbank(cfg)).to_sparse_csr()
        self.out_dtype = getattr(torch, cfg.dtype)

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        cfg = self.cfg
        if audio.ndim != 1:
            raise ValueError(f"expected mono 1-D audio, got shape {audio.shape}")
        samples = np.ascontiguousarray(audio, dtype=np.float32)
        short = cfg.min_samples - samples.shape[0]
        if short > 0:
            samples = np.pad(samples, (0, short))
        spec = torch.stft(
            torch.from_numpy(samples),
            n_fft=cfg.n_fft,
            hop_length=cfg.hop_length,
            win_length=cfg.win_length,
            window=self.window,
            center=cfg.center,
            pad_mode="constant",
            return_complex=True,
        ).mT
        # re^2 + im^2 is several times faster than abs() (no sqrt, no complex kernel); on the
        # frame-major view the stft returns it runs on contiguous memory.
        power = spec.real.square() + spec.imag.square()
        if cfg.power != 2.0:
            power = power.pow_(cfg.power / 2.0)
        mel = (self.mel_basis @ power.T).clamp_(min=cfg.amin).log10_().mul_(10.0)
        out = mel.to(self.out_dtype).numpy()
        assert out.shape[1] == cfg.n_frames(audio.shape[0]), (out.shape, audio.shape)
        return out
