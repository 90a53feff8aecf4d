"""What `fat featurize` tells: the summary of a split (counts, speed, skipped clips), its
progress bar, and the errors CSV beside the store that lists every skipped clip."""

import csv
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from fat.core.files import atomic_write
from fat.core.progress import progress_bar
from fat.datasets import Issue


@dataclass
class FeaturizeSummary:
    split: str
    store: Path
    clips_total: int = 0
    written: int = 0
    already_committed: int = 0
    skipped: list[Issue] = field(default_factory=list)
    seconds: float = 0.0
    startup_seconds: float = 0.0  # until the first clip came back: reading the CSV, store open
    audio_seconds: float = 0.0
    errors_csv: Path | None = None
    compute: str = ""  # where the log-mel ran: "cpu (ducc0 FFT), 2 threads", "cuda (torch), ..."
    notes: list[str] = field(default_factory=list)  # e.g. a commit the store rolled back
    started: float = field(default_factory=time.perf_counter)

    def add(self, clip_id: str, path: Path, error: str | None, audio_seconds: float) -> None:
        """Account for one clip of file `path`: written (`audio_seconds` long), or skipped
        with its reason, `error`."""
        if not self.startup_seconds:
            self.startup_seconds = time.perf_counter() - self.started
        if error is not None:
            self.skipped.append(Issue(str(path), None, clip_id, error))
            return
        self.written += 1
        self.audio_seconds += audio_seconds

    @property
    def audio_hours_per_s(self) -> float:
        return self.audio_seconds / 3600 / max(time.perf_counter() - self.started, 1e-9)

    @property
    def clips_per_second(self) -> float:
        return self.written / self.seconds if self.seconds else 0.0

    @property
    def x_realtime(self) -> float:
        return self.audio_seconds / self.seconds if self.seconds else 0.0

    def lines(self) -> list[str]:
        out = [
            f"{self.split}: {self.written} clips written, {self.already_committed} already in "
            f"the store, {len(self.skipped)} skipped, of {self.clips_total}",
        ]
        if self.written:
            out.append(
                f"{self.split}: {self.audio_seconds / 3600:.3f} h of audio in {self.seconds:.1f} s "
                f"({self.clips_per_second:.1f} clips/s, {self.x_realtime:.0f}x realtime, "
                f"log-mel on {self.compute})"
            )
        out += self.notes
        out += [
            f"skipped {s.file}{f':{s.line}' if s.line else ''}: {s.reason}" for s in self.skipped
        ]
        if self.errors_csv:
            out.append(f"skipped clips listed in {self.errors_csv}")
        return out


def describe_compute(device: str, fft_backend: str, workers: int, on_processes: bool) -> str:
    """Where the log-mel ran, as the summary says it: "cpu (ducc0 FFT), 2 threads"."""
    where = "processes" if on_processes else "threads"
    what = f"cpu ({fft_backend} FFT)" if device == "cpu" else f"{device} (torch)"
    return what + f", {workers} {where if workers > 1 else 'thread'}"


class ClipProgress:
    """The progress bar of one split: clips done, and hours of audio per second so far."""

    def __init__(self, split: str, total: int, show: bool) -> None:
        self._bar = progress_bar(total=total, unit="clip", show=show, desc=split)

    def update(self, summary: FeaturizeSummary) -> None:
        self._bar.update(1)
        self._bar.set_postfix_str(f"{summary.audio_hours_per_s:.3f} audio-h/s", refresh=False)

    def close(self) -> None:
        self._bar.close()


def errors_csv_path(store_path: Path, split: str) -> Path:
    """Where the skipped clips of a split are listed: beside the store."""
    return store_path.with_name(f"{store_path.name}.{split}.errors.csv")


def write_errors(path: Path, skipped: list[Issue]) -> Path | None:
    """The errors CSV always describes the latest run: rewritten, or removed when clean."""
    if not skipped:
        path.unlink(missing_ok=True)
        return None
    with atomic_write(path, newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "line", "clip_id", "reason"])
        for s in skipped:
            writer.writerow(
                [safe_cell(s.file), s.line or "", safe_cell(s.clip_id), safe_cell(s.reason)]
            )
    return path


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def safe_cell(text: str) -> str:
    """A cell a spreadsheet shows as text: control characters (NUL, ...) written as \\xNN,
    and a leading =, +, -, @ or tab quoted with ' so that no name from a file or a CSV row
    runs as a formula when the errors CSV is opened."""
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
