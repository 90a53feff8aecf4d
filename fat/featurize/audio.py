"""Decoding audio files into mono float32 at the feature sample rate.

Everything that can go wrong with a file becomes a one-line `FatError` naming it, so one bad
clip in a dataset of thousands reads as a message, not a traceback.
"""

import math
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np
import soundfile as sf
import soxr

from fat.core.audio_files import not_a_file
from fat.core.errors import FatError


@dataclass(frozen=True)
class SourceInfo:
    """Facts about the file as stored, before downmixing and resampling."""

    sample_rate: int
    channels: int
    duration_s: float


def _error(path: Path, reason: str) -> FatError:
    return FatError(f"{path}: {' '.join(reason.split())}")


@dataclass(frozen=True)
class AudioLimits:
    """What a file's header may claim before it is decoded: a header is a few bytes anyone can
    write, and decoding trusts it with memory (a 3 s clip whose header says 1 Hz resamples to
    hours). Decoded size is bounded by what `max_seconds` of stereo 48 kHz audio takes."""

    min_sample_rate: int = 1000
    max_sample_rate: int = 384000
    max_channels: int = 32
    max_seconds: float = 600.0

    def check(self, path: Path, sample_rate: int, channels: int, frames: int, target_rate: int):
        """FatError naming the file and the claim that is out of bounds."""
        if sample_rate <= 0:
            raise _error(path, f"sample rate {sample_rate} in the header")
        if not self.min_sample_rate <= sample_rate <= self.max_sample_rate:
            raise _error(
                path,
                f"sample rate {sample_rate} Hz in the header, outside "
                f"{self.min_sample_rate}-{self.max_sample_rate} Hz",
            )
        if not 1 <= channels <= self.max_channels:
            raise _error(path, f"{channels} channels in the header (1-{self.max_channels})")
        seconds = frames / sample_rate
        if seconds > self.max_seconds:
            raise _error(
                path,
                f"{seconds:.1f} s of audio, over the limit of {self.max_seconds:g} s "
                "(--max-seconds)",
            )
        decoded = 4 * (frames * channels + seconds * target_rate)
        allowed = 4 * self.max_seconds * (2 * 48000 + target_rate)
        if decoded > allowed:
            raise _error(
                path,
                f"decodes to {decoded / 2**20:.0f} MiB, over the {allowed / 2**20:.0f} MiB "
                f"that --max-seconds {self.max_seconds:g} allows",
            )


@dataclass(frozen=True)
class WavLayout:
    """What a RIFF/WAVE header says, for the files the fast path can read without libsndfile."""

    format_tag: int  # 1: integer PCM (0xFFFE extensible headers give their sub-format's tag)
    channels: int
    sample_rate: int
    bits: int
    data_offset: int
    data_bytes: int

    @property
    def pcm16(self) -> bool:
        return self.format_tag == 1 and self.bits == 16 and self.channels > 0


def _wav_layout(path: Path, size: int) -> WavLayout | None:
    """The header of a RIFF/WAVE file (or RF64/BW64, whose 64-bit sizes are in its ds64
    chunk), None for other files and headers libsndfile should judge (no fmt or data chunk,
    streaming length); FatError when the file is cut short.

    libsndfile quietly shrinks the frame count to what the file holds, so a half-copied WAV
    would otherwise decode as a valid shorter clip. Only the header can tell.
    """
    with path.open("rb") as f:
        head = f.read(12)
        if head[:4] not in (b"RIFF", b"RF64", b"BW64") or head[8:12] != b"WAVE":
            return None
        fmt = b""
        data_size64 = None  # RF64: the data chunk's real size, from ds64
        pos = 12
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return None
            chunk_id, chunk_size = chunk[:4], int.from_bytes(chunk[4:], "little")
            pos += 8
            if chunk_id == b"fmt ":
                fmt = f.read(min(chunk_size, 40))
            elif chunk_id == b"ds64" and head[:4] != b"RIFF":
                ds64 = f.read(min(chunk_size, 16))  # RIFF size, then data size (8 bytes each)
                if len(ds64) == 16:
                    data_size64 = int.from_bytes(ds64[8:16], "little")
            elif chunk_id == b"data":
                if chunk_size == 0xFFFFFFFF and data_size64 is not None:
                    chunk_size = data_size64  # RF64 leaves the 32-bit field at its maximum
                # 0 and 0xFFFFFFFF are what streaming writers leave when the length is unknown.
                if chunk_size in (0, 0xFFFFFFFF) or len(fmt) < 16:
                    return None
                block_align = max(1, int.from_bytes(fmt[12:14], "little"))
                available = size - pos
                # Tolerate a partial last frame: some writers miscount by a few bytes.
                if chunk_size - available >= block_align:
                    raise _error(
                        path,
                        f"truncated: header says {chunk_size} bytes of audio, file has {available}",
                    )
                tag = int.from_bytes(fmt[0:2], "little")
                if tag == 0xFFFE and len(fmt) >= 26:  # WAVE_FORMAT_EXTENSIBLE: the GUID's tag
                    tag = int.from_bytes(fmt[24:26], "little")
                return WavLayout(
                    format_tag=tag,
                    channels=int.from_bytes(fmt[2:4], "little"),
                    sample_rate=int.from_bytes(fmt[4:8], "little"),
                    bits=int.from_bytes(fmt[14:16], "little"),
                    data_offset=pos,
                    data_bytes=min(chunk_size, available),
                )
            pos += chunk_size + (chunk_size & 1)  # chunks are padded to even sizes
            f.seek(pos)


def _check_file(path: Path) -> WavLayout | None:
    """FatError for a missing, unreadable, empty or cut-short file; its WAV layout if any."""
    reason = not_a_file(path)
    if reason:
        raise _error(path, reason)
    st = path.stat()
    if st.st_size == 0:
        raise _error(path, "empty file (0 bytes)")
    try:
        return _wav_layout(path, st.st_size)
    except OSError as e:
        raise _error(path, f"cannot read: {e.strerror}") from None


def _open(path: Path) -> sf.SoundFile:
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
    _check_file(path)
    with _open(path) as f:
        if f.samplerate <= 0:
            raise _error(path, f"sample rate {f.samplerate} in the header")
        return SourceInfo(f.samplerate, f.channels, f.frames / f.samplerate)


DEFAULT_LIMITS = AudioLimits()


def _read_pcm16(
    path: Path, wav: WavLayout, limits: AudioLimits, target_rate: int
) -> tuple[np.ndarray, SourceInfo]:
    """16-bit PCM WAV (all of FSDKaggle2019) straight from the file as int16 frames: libsndfile's
    open and read cost ~2x more per clip; the values are the same."""
    frames = wav.data_bytes // (2 * wav.channels)
    if frames == 0:
        raise _error(path, "no audio samples")
    limits.check(path, wav.sample_rate, wav.channels, frames, target_rate)
    try:
        with path.open("rb") as f:
            f.seek(wav.data_offset)
            data = np.fromfile(f, dtype="<i2", count=frames * wav.channels)
    except OSError as e:
        raise _error(path, f"cannot read: {e.strerror}") from None
    if data.size < frames * wav.channels:
        raise _error(path, f"truncated: header says {frames} frames, read {data.size}")
    data = data.reshape(frames, wav.channels)
    return data, SourceInfo(wav.sample_rate, wav.channels, frames / wav.sample_rate)


def _read_libsndfile(
    path: Path, limits: AudioLimits, target_rate: int
) -> tuple[np.ndarray, SourceInfo]:
    with _open(path) as f:
        expected = f.frames
        limits.check(path, f.samplerate, f.channels, expected, target_rate)
        # 16-bit PCM in other containers is read as integers and scaled in numpy: libsndfile's
        # own int-to-float conversion is slower, same values (2**-15 is exact in float32).
        dtype = "int16" if f.subtype == "PCM_16" else "float32"
        try:
            data = f.read(dtype=dtype, always_2d=True)
        except sf.LibsndfileError as e:
            raise _error(path, f"corrupt audio data: {e.error_string}") from None
        source = SourceInfo(f.samplerate, f.channels, data.shape[0] / f.samplerate)
    if data.shape[0] < expected:
        raise _error(path, f"truncated: header says {expected} frames, read {data.shape[0]}")
    if data.dtype == np.float32 and not np.isfinite(data).all():
        raise _error(path, "contains NaN or infinite samples")
    return data, source


@numba.njit(nogil=True, cache=True)
def _downmix(data, scale, out):  # pragma: no cover - compiled
    """out[i] = scale * (data[i, 0] + data[i, 1] + ...) in float32, one pass over (frames,
    channels) of any sample type: numpy's cast, per-channel adds and scaling took 3-4 passes
    (and a matrix-vector mean wakes BLAS threads that spin on the cores featurize needs)."""
    for i in range(data.shape[0]):
        total = np.float32(data[i, 0])
        for c in range(1, data.shape[1]):
            total += np.float32(data[i, c])
        out[i] = total * scale


def to_mono(data: np.ndarray) -> np.ndarray:
    """(frames, channels) int16 or float32 samples -> mono float32 in [-1, 1] (the mean)."""
    mono = np.empty(data.shape[0], dtype=np.float32)
    scale = (2.0**-15 if data.dtype == np.int16 else 1.0) / data.shape[1]
    _downmix(data, np.float32(scale), mono)
    return mono


@dataclass(frozen=True)
class AudioBlock:
    """Mono float32 samples at the target rate, starting at `start` (samples from the file's
    start, at the target rate); `gap` says why samples before it are missing (a corrupt
    stretch the decoder could not read), else None."""

    start: int
    samples: np.ndarray
    gap: str | None = None


class AudioStream:
    """A file decoded block by block (`block_seconds` of the source at a time) and resampled
    by one soxr stream, so memory follows the block, not the file, and the samples equal
    those of one pass over the whole file whatever the block size. A stretch the decoder
    cannot read is skipped: the stream reopens the file past it, and the next block carries
    the gap. `resampled`: the source rate, when it was not the target one."""

    def __init__(self, path: str | Path, sample_rate: int, block_seconds: float = 60.0):
        self.path = Path(path)
        self.sample_rate = sample_rate
        _check_file(self.path)
        with _open(self.path) as f:
            self.source = SourceInfo(f.samplerate, f.channels, f.frames / f.samplerate)
            self._frames = f.frames
        # Any length (that is the point of streaming); rates and channels as for any file.
        AudioLimits(max_seconds=math.inf).check(
            self.path, self.source.sample_rate, self.source.channels, 1, sample_rate
        )
        self.block = max(1, int(block_seconds * self.source.sample_rate))
        self.resampled = self.source.sample_rate if self.source.sample_rate != sample_rate else None

    def __iter__(self):
        rate = self.source.sample_rate
        stream = None
        if self.resampled:
            stream = soxr.ResampleStream(rate, self.sample_rate, 1, dtype="float32", quality="HQ")
        position, produced, gap = 0, 0, None
        f = _open(self.path)
        try:
            while position < self._frames:
                try:
                    data = f.read(min(self.block, self._frames - position), dtype="float32",
                                  always_2d=True)  # fmt: skip
                except sf.LibsndfileError as e:
                    f.close()
                    f, resume = self._reopen_after(position)
                    seconds = (position / rate, resume / rate)
                    gap = f"{seconds[0]:.2f}-{seconds[1]:.2f} s unreadable ({e.error_string})"
                    samples = np.zeros(resume - position, np.float32)  # the gap keeps time
                    position = resume
                else:
                    if len(data) == 0:
                        break
                    position += len(data)
                    samples = to_mono(data)
                    if not np.isfinite(samples).all():
                        samples = np.nan_to_num(samples, nan=0.0, posinf=0.0, neginf=0.0)
                last = position >= self._frames or f is None
                if stream is not None:
                    samples = stream.resample_chunk(samples, last=last)
                yield AudioBlock(produced, samples, gap)
                produced += len(samples)
                gap = None
                if f is None:
                    break
        finally:
            if f is not None:
                f.close()

    def _reopen_after(self, position: int):
        """The file reopened at the first block boundary past `position` that it can seek
        to, and that position; (None, end) when none is left."""
        for skip in range(1, 1 + max(1, (self._frames - position) // self.block)):
            resume = min(position + skip * self.block, self._frames)
            try:
                f = sf.SoundFile(self.path)
                f.seek(resume)
                return f, resume
            except (sf.LibsndfileError, RuntimeError):
                continue
        return None, self._frames


def load_audio(
    path: str | Path, sample_rate: int, limits: AudioLimits | None = None
) -> tuple[np.ndarray, SourceInfo]:
    """Decode `path` to a 1-D C-contiguous float32 array at `sample_rate` (channels averaged),
    after checking what its header claims against `limits`."""
    path = Path(path)
    limits = limits or DEFAULT_LIMITS
    wav = _check_file(path)
    if wav and wav.pcm16:
        data, source = _read_pcm16(path, wav, limits, sample_rate)
    else:
        data, source = _read_libsndfile(path, limits, sample_rate)
    mono = to_mono(data)
    if source.sample_rate != sample_rate:
        mono = np.ascontiguousarray(
            soxr.resample(mono, source.sample_rate, sample_rate, quality="HQ"), dtype=np.float32
        )
        if mono.size == 0:
            raise _error(path, f"too short to resample: {data.shape[0]} samples")
    return mono, source
