"""The log-mel of `LogMelExtractor`, computed with torch on a GPU.

`LogMelExtractor` (numba + ducc0 on the CPU) is the reference; this one is tested against it
(tests/test_featurize_compute.py, on the CPU in CI and on CUDA where there is one) and chosen
by `featurize --device`. One clip at a time: frames are a strided view of the padded clip,
then one FFT, one power, one matrix product with the dense filterbank and one dB pass, each a
single kernel over all frames of the clip.
"""

import numpy as np
import torch

from fat.core.features import LogMelConfig
from fat.featurize.logmel import analysis_window, mel_filterbank, reflect_padded


class TorchLogMelExtractor:
    """Mono float32 clip -> (n_mels, n_frames) float32 log-mel in dB, as `LogMelExtractor`."""

    def __init__(self, cfg: LogMelConfig, device: str | torch.device) -> None:
        self.cfg = cfg
        self.device = torch.device(device)
        self.window = torch.from_numpy(analysis_window(cfg)).to(self.device)
        # (n_bins, n_mels): frames @ basis gives the frame-major rows the store keeps.
        self.basis = torch.from_numpy(np.ascontiguousarray(mel_filterbank(cfg).T)).to(self.device)

    @torch.inference_mode()
    def __call__(self, audio: np.ndarray) -> np.ndarray:
        cfg = self.cfg
        if audio.ndim != 1:
            raise ValueError(f"expected mono 1-D audio, got shape {audio.shape}")
        # Frame f covers samples[f * hop :][:n_fft]; clip sample i is samples[lead + i].
        length = (cfg.n_frames(audio.shape[0]) - 1) * cfg.hop_length + cfg.n_fft
        lead = cfg.lead_samples
        if cfg.center and cfg.pad_mode == "reflect":
            audio, lead = reflect_padded(audio, cfg), 0
        clip = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
        samples = torch.zeros(length, dtype=torch.float32, device=self.device)
        used = min(clip.shape[0], length - lead)
        samples[lead : lead + used] = clip[:used].to(self.device)
        frames = samples.unfold(0, cfg.n_fft, cfg.hop_length)  # (n_frames, n_fft), a view
        spectrum = torch.fft.rfft(frames * self.window, dim=1)
        if cfg.power == 2.0:
            power = spectrum.real.square() + spectrum.imag.square()
        else:
            power = spectrum.abs().pow(cfg.power)
        # Full float32 products unless a caller switched TF32 on (torch's default is off; its
        # 10 mantissa bits would cost ~0.01 dB); the tests check the match on CUDA.
        mel = power @ self.basis
        db = mel.clamp_min_(cfg.amin).log10_().mul_(10.0)
        return db.cpu().numpy().T
