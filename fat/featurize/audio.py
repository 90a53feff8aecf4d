"""Decoding audio files into mono float32 at the feature sample rate.

Everything that can go wrong with a file becomes a one-line `FatError` naming it, so one bad
clip in a dataset of thousands reads as a message, not a traceback.
"""

import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from fat.errors import FatError


@dataclass(frozen=True)
class SourceInfo:
    """Facts about the file as stored, before downmixing and resampling."""

    sample_rate: int
    channels: int
    duration_s: float


def _error(path: Path, reason: str) -> FatError:
    return FatError(f"{path}: {' '.join(reason.split())}")


def _wav_truncation(path: Path, size: int) -> str | None:
    """Why a RIFF/WAVE file is cut short, or None.

    libsndfile quietly shrinks the frame count to what the file holds, so a half-copied WAV
    would otherwise decode as a valid shorter clip. Only the header can tell.
    """
    with path.open("rb") as f:
        head = f.read(12)
        if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        block_align = 1
        pos = 12
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return None  # no data chunk: libsndfile gives the better message
            chunk_id, chunk_size = chunk[:4], int.from_bytes(chunk[4:], "little")
            pos += 8
            if chunk_id == b"fmt " and chunk_size >= 14:
                block_align = max(1, int.from_bytes(f.read(14)[12:14], "little"))
            elif chunk_id == b"data":
                # 0 and 0xFFFFFFFF are what streaming writers leave when the length is unknown.
                if chunk_size in (0, 0xFFFFFFFF):
                    return None
                available = size - pos
                # Tolerate a partial last frame: some writers miscount by a few bytes.
                if chunk_size - available >= block_align:
                    return (
                        f"truncated: header says {chunk_size} bytes of audio, file has {available}"
                    )
                return None
            pos += chunk_size + (chunk_size & 1)  # chunks are padded to even sizes
            f.seek(pos)


def _open(path: Path) -> sf.SoundFile:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise _error(path, "file not found") from None
    except OSError as e:
        raise _error(path, f"cannot access: {e.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise _error(path, "not a regular file")
    if st.st_size == 0:
        raise _error(path, "empty file (0 bytes)")
    try:
        truncation = _wav_truncation(path, st.st_size)
    except OSError as e:
        raise _error(path, f"cannot read: {e.strerror}") from None
    if truncation:
        raise _error(path, truncation)
    try:
        f = sf.SoundFile(path)
    except sf.LibsndfileError as e:
        raise _error(path, f"not a readable audio file: {e.error_string}") from None
    if f.frames == 0:
        f.close()
        raise _error(path, "no audio samples")
    return f


def probe_audio(path: str | Path) -> SourceInfo:
    """Header facts without decoding, for planning and ETAs."""
    path = Path(path)
    with _open(path) as f:
        return SourceInfo(f.samplerate, f.channels, f.frames / f.samplerate)


def load_audio(path: str | Path, sample_rate: int) -> tuple[np.ndarray, SourceInfo]:
    """Decode `path` to a 1-D C-contiguous float32 array at `sample_rate` (channels averaged)."""
    path = Path(path)
    with _open(path) as f:
        expected = f.frames
        # 16-bit PCM (all of FSDKaggle2019) is read as integers and scaled here: libsndfile's
        # own int-to-float conversion is 4x slower (0.45 vs 0.13 ms per 5 s clip), same values
        # (the scale 2**-15 is exact in float32).
        pcm16 = f.subtype == "PCM_16"
        try:
            data = f.read(dtype="int16" if pcm16 else "float32", always_2d=True)
        except sf.LibsndfileError as e:
            raise _error(path, f"corrupt audio data: {e.error_string}") from None
        source = SourceInfo(f.samplerate, f.channels, data.shape[0] / f.samplerate)
    if data.shape[0] < expected:
        raise _error(path, f"truncated: header says {expected} frames, read {data.shape[0]}")
    if not pcm16 and not np.isfinite(data).all():
        raise _error(path, "contains NaN or infinite samples")
    # Channel by channel: ~10x faster than mean(axis=1) over a (frames, 2) array, and unlike a
    # matrix-vector product it never wakes BLAS threads, which spin on the cores the
    # featurize threads need (measured: 3 of 7 CPU-seconds of a run).
    channels = data.shape[1]
    mono = data[:, 0].astype(np.float32)
    for c in range(1, channels):
        mono += data[:, c]
    scale = (2.0**-15 if pcm16 else 1.0) / channels
    if scale != 1.0:
        mono *= np.float32(scale)
    if source.sample_rate != sample_rate:
        mono = soxr.resample(mono, source.sample_rate, sample_rate, quality="HQ")
        if mono.size == 0:
            raise _error(path, f"too short to resample: {data.shape[0]} samples")
    return np.ascontiguousarray(mono, dtype=np.float32), source
