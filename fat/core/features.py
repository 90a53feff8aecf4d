"""Feature settings, saved with every store split so a number can be traced to how it was made."""

import contextlib
from dataclasses import dataclass

from fat.core.settings import Settings, setting


@dataclass(frozen=True)
class LogMelConfig(Settings):
    """Log-mel spectrogram settings; defaults follow the strong FAT2019 solutions.

    The transform is librosa's `melspectrogram(center=True, pad_mode="constant", htk=False,
    norm="slaney")` followed by `power_to_db(ref=1.0, amin=amin, top_db=None)`: frames are
    centred with zero padding, the window is a periodic Hann, filters use the Slaney mel
    formula with Slaney (area) normalisation. dB rather than log(x + offset) because it is what
    librosa and DALI's `to_decibels` both produce, so the store can be checked against either.
    """

    KIND = "feature config"

    # 1 kHz (telephone and below) to 384 kHz (the highest rate audio interfaces record).
    sample_rate: int = setting(
        44100, "Sample rate (Hz) every clip is resampled to.", low=1000, high=384000
    )
    n_fft: int = setting(2560, "FFT size in samples.", low=16, high=2**16)
    win_length: int | None = setting(
        None, "Analysis window length in samples.", low=1, high=2**16, derived="n_fft"
    )
    hop_length: int = setting(
        347,
        "Samples between frames (~127 frames/s at 44.1 kHz); at most n_fft.",
        low=1,
        high=2**16,
        flag="--hop",
    )
    window: str = setting("hann", "Analysis window (a periodic Hann).", choices=("hann",))
    n_mels: int = setting(128, "Mel bands.", low=1, high=1024)  # 8x the usual 128
    fmin: float = setting(20.0, "Lowest mel filter edge (Hz).", low=0.0, high=192000.0)
    fmax: float | None = setting(
        None,
        "Highest mel filter edge (Hz).",
        above=0.0,
        high=192000.0,  # half the highest sample rate
        derived="sample_rate / 2",
    )
    power: float = setting(
        2.0, "Exponent of the magnitude spectrum (2: power).", above=0.0, high=4.0
    )
    mel_scale: str = setting("slaney", "Mel formula and filter normalisation.", choices=("slaney",))
    log_scale: str = setting(
        "db", "10 * log10(max(S, amin)), ref 1.0, no top_db clipping.", choices=("db",)
    )
    amin: float = setting(1e-10, "Floor of the mel power before the log.", above=0.0, high=1.0)
    center: bool = setting(True, "Centre frames on their sample (padding at both ends).")
    pad_mode: str = setting(
        "constant",
        "How centred frames are padded past a clip's ends: constant (zeros; librosa's "
        "pad_mode='constant'), or reflect (the clip mirrored, as torchlibrosa and PANNs do).",
        choices=("constant", "reflect"),
    )
    min_samples: int = setting(
        2560,
        "Shorter clips are zero-padded at the end to this many samples, so every stored clip "
        "has at least 1 + n_fft // hop_length frames.",
        low=0,
        high=10**7,  # 3.8 min at 44.1 kHz: a short clip's padding, 40 MB as float32
    )
    dtype: str = setting("float16", "Stored value type.", choices=("float16", "float32"))

    def __post_init__(self) -> None:
        # Settings that follow others unless given are resolved first, so the saved record
        # always holds the value that was used.
        if self.win_length is None:
            object.__setattr__(self, "win_length", self.n_fft)
        if self.fmax is None and isinstance(self.sample_rate, int):
            # Past float's range the quotient overflows: the range check then refuses sample_rate.
            with contextlib.suppress(OverflowError):
                object.__setattr__(self, "fmax", self.sample_rate / 2)
        super().__post_init__()

    def problems(self) -> list[str]:
        problems = []
        if self.hop_length > self.n_fft:  # frames would skip samples between them
            problems.append(f"hop_length {self.hop_length} must be at most n_fft={self.n_fft}")
        if not 0 < self.win_length <= self.n_fft:
            problems.append(f"win_length {self.win_length} must be in (0, n_fft={self.n_fft}]")
        if not 0 <= self.fmin < self.fmax <= self.sample_rate / 2:
            problems.append(f"need 0 <= fmin < fmax <= sample_rate/2, got {self.fmin}, {self.fmax}")
        if not self.center and self.min_samples < self.n_fft:
            problems.append(f"center=False needs min_samples >= n_fft ({self.n_fft})")
        if self.pad_mode == "reflect" and self.min_samples <= self.n_fft // 2:
            problems.append(f"pad_mode=reflect needs min_samples > n_fft // 2 ({self.n_fft // 2})")
        return problems

    @property
    def frames_per_second(self) -> float:
        return self.sample_rate / self.hop_length

    @property
    def lead_samples(self) -> int:
        """Zeros before the clip's first sample: frame f starts at f * hop - lead_samples."""
        return self.n_fft // 2 if self.center else 0

    def n_frames(self, n_samples: int) -> int:
        """Frames produced for a clip of `n_samples` samples (after minimum-length padding)."""
        padded = max(n_samples, self.min_samples) + 2 * self.lead_samples
        return 1 + (padded - self.n_fft) // self.hop_length


# Named feature settings (`fat featurize --preset NAME`); flags given with a preset override it.
FEATURE_PRESETS: dict[str, LogMelConfig] = {
    # The FAT2019 solutions' log-mel, and fat's default.
    "fat2019": LogMelConfig(),
    # What the PANNs networks (CNN14, CNN10, CNN6) were trained on: torchlibrosa's log-mel at
    # 32 kHz, window 1024, hop 320, 64 bands from 50 Hz to 14 kHz, reflect-padded frames.
    "panns": LogMelConfig(
        sample_rate=32000,
        n_fft=1024,
        hop_length=320,
        n_mels=64,
        fmin=50.0,
        fmax=14000.0,
        pad_mode="reflect",
        min_samples=1024,
    ),
}
