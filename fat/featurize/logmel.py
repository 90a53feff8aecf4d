"""Log-mel spectrograms that match librosa without importing it.

The transform is `librosa.power_to_db(librosa.feature.melspectrogram(...))` with the settings in
`LogMelConfig` (see its docstring); librosa is only needed by the tests that check the match.

Why it is built this way (the measurements are in BENCHMARKS.md, "Featurize"):
- Frames go through windowing, FFT and the mel product in blocks of 128 that stay in cache,
  in buffers the extractor keeps: fresh multi-megabyte arrays per clip cost more in page
  faults and cache misses than the arithmetic on them.
- The FFT writes FFTPACK's real "half-complex" layout (r0, r1, i1, r2, i2, ...) bin-major,
  (n_fft, frames): real and imaginary parts are plain rows, and each mel band is a weighted
  sum of a contiguous run of them, computed for all frames at once.
- The FFT is ducc0's when it is installed (the `fast` extra; faster than scipy's pocketfft,
  same layout, results equal to float32 round-off); scipy's `fftpack.rfft` is the fallback.
- Windowing and the squared-magnitude mel product are small numba kernels, faster than
  numpy's broadcast multiply and a scipy sparse product. Windowing reads the clip in place,
  zeros outside it, so no padded copy is made.
- The dB conversion is fused into the mel kernel with a vectorised log (numpy's float32 log10
  is scalar code).
- Every step releases the GIL, so threads featurize in parallel inside one process.
"""

import numba
import numpy as np

from fat.core.features import LogMelConfig
from fat.core.melscale import mel_band_edges_hz

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


def reflect_padded(audio: np.ndarray, cfg: LogMelConfig) -> np.ndarray:
    """The clip zero-padded to `min_samples`, then mirrored by n_fft // 2 samples at each end
    (numpy's and torch's "reflect": the edge sample itself is not repeated)."""
    if len(audio) < cfg.min_samples:
        audio = np.pad(audio, (0, cfg.min_samples - len(audio)))
    return np.pad(audio, cfg.lead_samples, mode="reflect")


@numba.njit(nogil=True, cache=True)
def _window_frames(audio, offset, hop, window, out):  # pragma: no cover - compiled
    """out[f] = audio[offset + f * hop :][:n_fft] * window for each row f of out, with zeros
    for samples outside `audio`: the centring and minimum-length padding, without a padded
    copy of the clip."""
    n_fft = window.shape[0]
    n = audio.shape[0]
    for f in range(out.shape[0]):
        start = offset + f * hop
        row = out[f]
        if start >= 0 and start + n_fft <= n:
            for j in range(n_fft):
                row[j] = audio[start + j] * window[j]
        else:  # the first and last few frames of a clip
            for j in range(n_fft):
                i = start + j
                row[j] = audio[i] * window[j] if 0 <= i < n else np.float32(0.0)


# 10 * log10(x) = DB_PER_LN * (e * LN2 + ln(m)) for x = m * 2**e with m in [sqrt(1/2), sqrt(2)).
_SQRT_HALF_BITS = np.int32(0x3F3504F3)
_INF_BITS = np.int32(0x7F800000)
_MAGNITUDE_BITS = np.int32(0x7FFFFFFF)
_DB_PER_LN = np.float32(10.0 / np.log(10.0))
_LN2 = np.float32(np.log(2.0))


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _decibels(values, amin, exponents):  # pragma: no cover - compiled
    """values[:] = 10 * log10(max(values, amin)) in place, to float32 round-off (1e-5 dB at
    100 dB, as numpy's float32 log10); inf and NaN become inf. `exponents` is float32 scratch
    of the same length.

    numpy's float32 log10 is scalar code; this is loops that LLVM vectorises: the exponent
    from the bit pattern, ln of the mantissa from the atanh series 2 * (s + s^3/3 + ... + s^9/9)
    with s = (m - 1) / (m + 1), |s| <= 0.172 (truncation error < 3e-9). `error_model="numpy"`
    drops the division-by-zero check that stops the division from vectorising."""
    bits = values.view(np.int32)
    for f in range(values.shape[0]):
        v = values[f]
        values[f] = amin if v < amin else v  # NaN stays NaN
    for f in range(values.shape[0]):
        b = bits[f]
        e = (b - _SQRT_HALF_BITS) >> 23
        # inf and NaN of either sign (x86's NaN from inf * 0 is negative) give inf.
        finite = (b & _MAGNITUDE_BITS) < _INF_BITS
        exponents[f] = np.float32(e) if finite else np.float32(np.inf)
        bits[f] = b - (e << 23)
    for f in range(values.shape[0]):
        m = values[f]
        s = (m - np.float32(1.0)) / (m + np.float32(1.0))
        s2 = s * s
        series = np.float32(1.0) + s2 * (
            np.float32(1 / 3) + s2 * (np.float32(1 / 5) + s2 * (np.float32(1 / 7) + s2 / 9))
        )
        values[f] = _DB_PER_LN * (exponents[f] * _LN2 + np.float32(2.0) * s * series)


@numba.njit(nogil=True, cache=True)
def _log_mel(spectrum, band_start, band_stop, weights, half_power, amin, out):  # pragma: no cover
    """out[f, m] = dB of the sum over bins k of band m of weight * |X[k, f]|^(2 * half_power),
    from a bin-major half-complex spectrum (n_fft, n); `weights` holds each band's run of
    bins."""
    n_fft, n = spectrum.shape
    total = np.empty(n, dtype=np.float32)
    bin_power = np.empty(n, dtype=np.float32)
    exponents = np.empty(n, dtype=np.float32)
    w = 0
    for m in range(band_start.shape[0]):
        total[:] = 0.0
        for k in range(band_start[m], band_stop[m]):
            weight = weights[w]
            w += 1
            re = spectrum[2 * k - 1] if k > 0 else spectrum[0]
            if k > 0 and 2 * k < n_fft:  # not DC, not the Nyquist bin of an even n_fft
                im = spectrum[2 * k]
                for f in range(n):
                    bin_power[f] = re[f] * re[f] + im[f] * im[f]
            else:
                for f in range(n):
                    bin_power[f] = re[f] * re[f]
            if half_power != 1.0:
                for f in range(n):
                    bin_power[f] = bin_power[f] ** half_power
            for f in range(n):
                total[f] += weight * bin_power[f]
        _decibels(total, amin, exponents)
        for f in range(n):
            out[f, m] = total[f]


class LogMelExtractor:
    """Turns a mono clip at `cfg.sample_rate` into a (n_mels, n_frames) float32 log-mel in dB.

    The result is a transposed view of a frame-major (n_frames, n_mels) array, the store's row
    layout; the store rounds it to `cfg.dtype`. Matches librosa (itself float32) to ~1e-5 dB.
    An instance keeps work buffers, so use one per thread.
    """

    # Frames per block: large enough to amortise per-call overhead, small enough for the
    # block and its spectrum to stay in cache.
    FRAMES_PER_BLOCK = 128

    def __init__(self, cfg: LogMelConfig, fft_backend: str | None = None) -> None:
        self.cfg = cfg
        self.fft_backend = fft_backend or available_fft_backends()[0]
        if self.fft_backend not in available_fft_backends():
            raise ValueError(
                f"fft_backend {self.fft_backend!r} is not available; installed: "
                f"{available_fft_backends()} (ducc0: pip install 'fat-audio[fast]')"
            )
        self.window = analysis_window(cfg)
        # Each triangle covers a contiguous run of bins: store only those runs (~2% of the
        # dense filterbank), band after band.
        basis = mel_filterbank(cfg)
        nonzero = basis > 0
        self._band_start = nonzero.argmax(axis=1)
        self._band_stop = basis.shape[1] - nonzero[:, ::-1].argmax(axis=1)
        self._band_stop[~nonzero.any(axis=1)] = self._band_start[~nonzero.any(axis=1)]
        self._weights = np.concatenate(
            [row[a:b] for row, a, b in zip(basis, self._band_start, self._band_stop, strict=True)]
        )
        self._block = np.empty((self.FRAMES_PER_BLOCK, cfg.n_fft), dtype=np.float32)
        self._spectrum = np.empty((cfg.n_fft, self.FRAMES_PER_BLOCK), dtype=np.float32)

    def _halfcomplex_fft(self, frames: np.ndarray) -> np.ndarray:
        """Half-complex spectra of (n, n_fft) frames, bin-major (n_fft, n)."""
        if self.fft_backend == "ducc0":
            out = self._spectrum[:, : len(frames)]
            return ducc_fft.r2r_fftpack(
                frames.T, axes=(0,), real2hermitian=True, forward=True, out=out
            )
        import scipy.fftpack  # here, not at the top: slow to import, and ducc0 needs none of it

        return scipy.fftpack.rfft(frames.T, axis=0)

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        cfg = self.cfg
        if audio.ndim != 1:
            raise ValueError(f"expected mono 1-D audio, got shape {audio.shape}")
        n_frames = cfg.n_frames(audio.shape[0])
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        lead = cfg.lead_samples
        if cfg.center and cfg.pad_mode == "reflect":
            audio, lead = reflect_padded(audio, cfg), 0
        return self.frames_of(audio, n_frames, lead)

    def frames_of(self, signal: np.ndarray, n_frames: int, lead: int = 0) -> np.ndarray:
        """(n_mels, n_frames): frame f windows signal[f * hop - lead:][:n_fft], zeros outside
        `signal`. With `lead` 0 and the padding already in `signal`, a long signal's frames
        can be computed piece by piece (`StreamingLogMel`), equal to one pass."""
        cfg = self.cfg
        mel = np.empty((n_frames, cfg.n_mels), dtype=np.float32)
        half_power = cfg.power / 2.0
        amin = np.float32(cfg.amin)
        # Float audio loud enough to overflow float32 power gives inf, for the caller to reject.
        for start in range(0, n_frames, self.FRAMES_PER_BLOCK):
            block = self._block[: min(self.FRAMES_PER_BLOCK, n_frames - start)]
            offset = start * cfg.hop_length - lead
            _window_frames(signal, offset, cfg.hop_length, self.window, block)
            spectrum = self._halfcomplex_fft(block)
            _log_mel(
                spectrum,
                self._band_start,
                self._band_stop,
                self._weights,
                half_power,
                amin,
                mel[start : start + len(block)],
            )
        return mel.T


class StreamingLogMel:
    """The log-mel of a signal fed in pieces (`feed`, then `finish`), frame by frame as its
    samples arrive: equal to `LogMelExtractor` over the whole signal (the same padding at both
    ends, the same frames), in memory of one piece plus one window."""

    def __init__(self, cfg: LogMelConfig, extractor: LogMelExtractor | None = None):
        self.cfg = cfg
        self.extract = extractor or LogMelExtractor(cfg)
        self._reflect = cfg.center and cfg.pad_mode == "reflect"
        self._buffer = np.zeros(0, np.float32)  # the padded signal from `self._base` on
        self._base = 0
        self._next = 0  # the next frame to give
        self._seen = 0  # samples fed
        self._started = not self._reflect  # a reflected start needs lead + 1 samples first
        if not self._reflect:
            self._buffer = np.zeros(cfg.lead_samples, np.float32)

    def feed(self, samples: np.ndarray) -> np.ndarray:
        """The frames `samples` complete, (n_mels, k) with k >= 0."""
        samples = np.asarray(samples, np.float32)
        self._seen += len(samples)
        self._buffer = np.concatenate([self._buffer, samples])
        if not self._started:
            if len(self._buffer) <= self.cfg.lead_samples:
                return self._none()
            lead = self.cfg.lead_samples
            self._buffer = np.concatenate([self._buffer[lead:0:-1], self._buffer])
            self._started = True
        return self._ready(len(self._buffer) + self._base)

    def finish(self) -> np.ndarray:
        """The frames left once the signal has ended: its end padded as the whole-signal
        extractor pads it (to min_samples, then the centring pad)."""
        cfg = self.cfg
        if not self._started:  # shorter than the reflection: pad it whole, as one pass would
            return self.extract(self._buffer)
        short = max(0, cfg.min_samples - self._seen)
        self._buffer = np.concatenate([self._buffer, np.zeros(short, np.float32)])
        if self._reflect:
            tail = self._buffer[-2 : -cfg.lead_samples - 2 : -1]
        else:
            tail = np.zeros(cfg.lead_samples, np.float32)
        self._buffer = np.concatenate([self._buffer, tail])
        padded = max(self._seen, cfg.min_samples) + 2 * cfg.lead_samples
        total = 1 + (padded - cfg.n_fft) // cfg.hop_length
        return self._ready(None, total)

    def _ready(self, available: int | None, total: int | None = None) -> np.ndarray:
        cfg = self.cfg
        if total is None:  # frames whose whole window has arrived, in whole blocks: the FFT
            # of a block depends on its row count in the last bits, so blocks match one pass
            block = LogMelExtractor.FRAMES_PER_BLOCK
            total = max(0, (available - cfg.n_fft) // cfg.hop_length + 1) // block * block
        n = total - self._next
        if n <= 0:
            return self._none()
        start = self._next * cfg.hop_length - self._base
        frames = self.extract.frames_of(self._buffer[start:], n)
        self._next = total
        keep = self._next * cfg.hop_length - self._base  # samples no later frame needs
        self._buffer, self._base = self._buffer[keep:], self._base + keep
        return frames

    def _none(self) -> np.ndarray:
        return np.zeros((self.cfg.n_mels, 0), np.float32)
