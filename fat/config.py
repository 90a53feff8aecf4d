"""Feature settings, saved with every store split so a number can be traced to how it was made."""

from dataclasses import asdict, dataclass, fields
from typing import Any

from fat.errors import FatError


def known_fields(cls, values: dict[str, Any], what: str) -> dict[str, Any]:
    """`values` if every key is a field of dataclass `cls`, else FatError naming the others
    (a saved config from another version must not load silently wrong)."""
    unknown = set(values) - {f.name for f in fields(cls)}
    if unknown:
        raise FatError(f"unknown {what} keys: {sorted(unknown)}")
    return dict(values)


@dataclass(frozen=True)
class LogMelConfig:
    """Log-mel spectrogram settings; defaults follow the strong FAT2019 solutions.

    The transform is librosa's `melspectrogram(center=True, pad_mode="constant", htk=False,
    norm="slaney")` followed by `power_to_db(ref=1.0, amin=amin, top_db=None)`: frames are
    centred with zero padding, the window is a periodic Hann, filters use the Slaney mel
    formula with Slaney (area) normalisation. dB rather than log(x + offset) because it is what
    librosa and DALI's `to_decibels` both produce, so the store can be checked against either.
    """

    sample_rate: int = 44100
    n_fft: int = 2560
    win_length: int = 2560
    hop_length: int = 347  # ~127 frames/s at 44.1 kHz
    window: str = "hann"  # periodic Hann
    n_mels: int = 128
    fmin: float = 20.0
    fmax: float = 22050.0
    power: float = 2.0
    mel_scale: str = "slaney"
    log_scale: str = "db"  # 10 * log10(max(S, amin)), ref 1.0, no top_db clipping
    amin: float = 1e-10
    center: bool = True
    # Shorter clips are zero-padded at the end to this many samples (one analysis window),
    # so every stored clip has at least 1 + n_fft // hop_length frames.
    min_samples: int = 2560
    dtype: str = "float16"

    def __post_init__(self) -> None:
        problems = []
        if self.sample_rate <= 0 or self.hop_length <= 0 or self.n_mels <= 0:
            problems.append("sample_rate, hop_length and n_mels must be positive")
        if not 0 < self.win_length <= self.n_fft:
            problems.append(f"win_length {self.win_length} must be in (0, n_fft={self.n_fft}]")
        if not 0 <= self.fmin < self.fmax <= self.sample_rate / 2:
            problems.append(f"need 0 <= fmin < fmax <= sample_rate/2, got {self.fmin}, {self.fmax}")
        if self.window != "hann" or self.mel_scale != "slaney" or self.log_scale != "db":
            problems.append("only window=hann, mel_scale=slaney, log_scale=db are implemented")
        if not self.center and self.min_samples < self.n_fft:
            problems.append(f"center=False needs min_samples >= n_fft ({self.n_fft})")
        if self.dtype not in ("float16", "float32"):
            problems.append(f"dtype must be float16 or float32, got {self.dtype}")
        if problems:
            raise FatError("invalid feature config: " + "; ".join(problems))

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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "LogMelConfig":
        return cls(**known_fields(cls, values, "feature config"))

    def differences(self, other: "LogMelConfig") -> list[str]:
        """Human-readable `name: mine != theirs` for every differing setting."""
        a, b = self.to_dict(), other.to_dict()
        return [f"{k}: {a[k]!r} != {b[k]!r}" for k in a if a[k] != b[k]]
