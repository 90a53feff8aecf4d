"""Log-mel spectrograms that match librosa without importing it.

The transform is `librosa.power_to_db(librosa.feature.melspectrogram(...))` with the settings in
`LogMelConfig` (see its docstring); librosa is only needed by the tests that check the match.

Why it is built this way (measured on this repository's 2-core CPU; BENCHMARKS.md):
- Frames go through FFT, squaring and the mel product in blocks that stay in the L2 cache,
  windowed into a buffer the extractor keeps: fresh multi-megabyte arrays per clip cost more
  in page faults and cache misses than the arithmetic on them.
- The FFT writes FFTPACK's real "half-complex" layout (r0, r1, i1, r2, i2, ...) bin-major,
  (n_fft, frames): real and imaginary parts are plain rows, so squaring them in place and one
  sparse product with a mel basis that repeats each bin's weight on both rows gives mel power
  with no complex array, no |X|^2 array and no strided adds. Bin-major is the layout in which
  the sparse product is fast (0.15 ms vs 0.6-0.7 ms frame-major for a 5 s clip).
- The FFT is ducc0's when it is installed (the `fast` extra): 25% faster than scipy's
  pocketfft for n_fft 2560 on this CPU (0.35 vs 0.46 ms per 128 frames), same layout, results
  equal to float32 round-off. scipy's `fftpack.rfft` is the fallback and the reference.
- Every step releases the GIL, so threads featurize in parallel inside one process.
"""

import numpy as np
import scipy.fftpack
import scipy.sparse

from fat.config import LogMelConfig
from fat.melscale import mel_band_edges_hz

try:
    import ducc0.fft as ducc_fft
except ImportError:  # the `fast` extra is not installed: scipy computes the same numbers
    ducc_fft = None

FFT_BACKENDS = ("ducc0", "scipy")


def available_fft_backends() -> tuple[str, ...]:
    """Installed FFT backends, fastest first."""
    return FFT_BACKENDS if ducc_fft is not None else ("scipy",)


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


def analysis_window(cfg: LogMelConfig) -> np.ndarray:
    """Periodic Hann of `win_length`, zero-padded to `n_fft` with the window centred (librosa)."""
    n = np.arange(cfg.win_length)
    hann = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / cfg.win_length)
    window = np.zeros(cfg.n_fft, dtype=np.float32)
    start = (cfg.n_fft - cfg.win_length) // 2
    window[start : start + cfg.win_length] = hann
    return window


def halfcomplex_bins(n_fft: int) -> scipy.sparse.csr_matrix:
    """(n_fft // 2 + 1, n_fft) 0/1 matrix that sums each bin's squared real and imaginary rows
    of a half-complex spectrum (r0, r1, i1, r2, i2, ..., with r_{n/2} last when n is even) into
    its power."""
    n_bins = n_fft // 2 + 1
    bin_of_row = (np.arange(n_fft) + 1) // 2
    return scipy.sparse.csr_matrix(
        (np.ones(n_fft, dtype=np.float32), (bin_of_row, np.arange(n_fft))),
        shape=(n_bins, n_fft),
    )


class LogMelExtractor:
    """Turns a mono clip at `cfg.sample_rate` into a (n_mels, n_frames) float32 log-mel in dB.

    The result is a transposed view of a frame-major (n_frames, n_mels) array, the store's row
    layout; the store rounds it to `cfg.dtype`. Matches librosa (itself float32) to ~1e-5 dB.
    An instance keeps work buffers, so use one per thread.
    """

    # Frames per FFT block: 128 x 2560 float32 frames (1.3 MB) and their spectrum stay in this
    # CPU's L2 cache through FFT, squaring and the mel product. Measured on clips of 0.3-30 s,
    # 2 threads: 2,400x realtime vs 1,850x for whole clips at once; 64 and 256 were slower.
    FRAMES_PER_BLOCK = 128

    def __init__(self, cfg: LogMelConfig, fft_backend: str | None = None) -> None:
        self.cfg = cfg
        self.fft_backend = fft_backend or available_fft_backends()[0]
        if self.fft_backend not in available_fft_backends():
            raise ValueError(
                f"fft_backend {self.fft_backend!r} is not available; installed: "
                f"{available_fft_backends()} (ducc0 comes with `pip install fat[fast]`)"
            )
        self.window = analysis_window(cfg)
        # Each FFT bin feeds at most two adjacent triangles: the basis is ~98% zeros.
        mel_basis = scipy.sparse.csr_matrix(mel_filterbank(cfg))
        bins = halfcomplex_bins(cfg.n_fft)
        if cfg.power == 2.0:
            self._mel_of_squares = (mel_basis @ bins).tocsr()
        else:
            self._bins, self._mel_basis = bins, mel_basis
        self._block = np.empty((self.FRAMES_PER_BLOCK, cfg.n_fft), dtype=np.float32)
        self._spectrum = np.empty((cfg.n_fft, self.FRAMES_PER_BLOCK), dtype=np.float32)

    def _halfcomplex_fft(self, frames: np.ndarray) -> np.ndarray:
        """Half-complex spectra of (n, n_fft) frames, bin-major (n_fft, n)."""
        if self.fft_backend == "ducc0":
            out = self._spectrum[:, : len(frames)]
            return ducc_fft.r2r_fftpack(
                frames.T, axes=(0,), real2hermitian=True, forward=True, out=out
            )
        return scipy.fftpack.rfft(frames.T, axis=0)

    def _mel_power(self, frames: np.ndarray) -> np.ndarray:
        """Mel-band power of (n, n_fft) unwindowed frames, (n_mels, n)."""
        windowed = np.multiply(frames, self.window, out=self._block[: len(frames)])
        squares = self._halfcomplex_fft(windowed)
        np.square(squares, out=squares)
        if self.cfg.power == 2.0:
            return self._mel_of_squares @ squares
        power = self._bins @ squares
        return self._mel_basis @ np.power(power, self.cfg.power / 2.0, out=power)

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        cfg = self.cfg
        if audio.ndim != 1:
            raise ValueError(f"expected mono 1-D audio, got shape {audio.shape}")
        samples = np.asarray(audio, dtype=np.float32)
        short = cfg.min_samples - samples.shape[0]
        if short > 0:
            samples = np.pad(samples, (0, short))
        if cfg.center:
            half = cfg.n_fft // 2
            samples = np.pad(samples, (half, half))
        frames = np.lib.stride_tricks.sliding_window_view(samples, cfg.n_fft)[:: cfg.hop_length]
        mel = np.empty((len(frames), cfg.n_mels), dtype=np.float32)
        # Absurdly loud float audio overflows float32 power to inf: the result then holds inf,
        # for the caller to reject, rather than a warning on the console.
        with np.errstate(over="ignore", invalid="ignore"):
            for start in range(0, len(frames), self.FRAMES_PER_BLOCK):
                stop = start + self.FRAMES_PER_BLOCK
                mel[start:stop] = self._mel_power(frames[start:stop]).T
        np.maximum(mel, cfg.amin, out=mel)
        np.log10(mel, out=mel)
        mel *= 10.0
        assert len(mel) == cfg.n_frames(audio.shape[0]), (mel.shape, audio.shape)
        return mel.T
