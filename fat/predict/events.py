"""Sound events from frame-level class scores: the rule that turns score curves into events
(median filter, hysteresis thresholds, gap merging, minimum duration), the files events and
scores live in (DCASE TSVs, Audacity label tracks, sed_scores_eval's per-file score TSVs),
and per-class thresholds tuned on labelled recordings.

A file is known by its audio id everywhere (`audio_id`: the file name without folders and
audio suffix), as sed_scores_eval names its score files, so "a.wav" in a reference list, "a"
in a score folder and "/data/a.wav" from `fat detect` are the same recording.

The field's libraries (sed_eval, sed_scores_eval) are the `events` extra; they are imported
when first needed (`import_quietly`).
"""

import importlib
import json
import math
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from types import ModuleType
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from fat.core.audio_files import AUDIO_SUFFIXES
from fat.core.errors import FatError
from fat.core.files import atomic_write
from fat.core.progress import progress_bar
from fat.core.settings import Settings, setting
from fat.core.textfiles import read_text

if TYPE_CHECKING:
    import pandas as pd

SECTION = "Event rule"
DCASE_COLUMNS = ("filename", "onset", "offset", "event_label")
SCORE_COLUMN = "score"
# Onset collar and offset collar (at least, and as a share of the reference event's length)
# of the event-based F1 that thresholds are tuned for: the DCASE task 4 collars.
TUNING_COLLARS = {"onset_collar": 0.2, "offset_collar": 0.2, "offset_collar_rate": 0.2}
DEFAULT_CANDIDATES = np.linspace(0.05, 0.95, 19)
# Slack on comparisons of durations computed from frame counts (n * step is inexact).
_EPS = 1e-9


def import_quietly(name: str) -> ModuleType:
    """Import one of the field's libraries (`sed_eval`, `sed_scores_eval`, `dcase_util`).
    Their imports warn about their own code (dcase_util's pkg_resources, escape sequences
    in sed_scores_eval's docstrings), nothing a user's console need show; a missing library
    is a FatError saying what to install."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return importlib.import_module(name)
    except ImportError as e:
        raise FatError(
            f"sound event evaluation needs sed_eval and sed_scores_eval ({e}); "
            "install them with: pip install 'fat[events]'"
        ) from None


def audio_id(filename: str) -> str:
    """The recording's id: its file name without folders and audio suffix ("a.wav" -> "a"),
    the name sed_scores_eval gives its score files."""
    name = PurePath(filename).name
    stem, dot, suffix = name.rpartition(".")
    return stem if dot and stem and f".{suffix.lower()}" in AUDIO_SUFFIXES else name


# --- frame scores -----------------------------------------------------------------------


@dataclass
class FrameScores:
    """One recording's class scores over time: frame k covers [start + k*step,
    start + (k+1)*step) and `scores[k]` holds every class's score in [0, 1] there (kept as
    float32, what models give)."""

    filename: str
    step: float
    scores: np.ndarray
    vocabulary: tuple[str, ...]
    start: float = 0.0

    def __post_init__(self) -> None:
        self.scores = np.asarray(self.scores, dtype=np.float32)
        self.vocabulary = tuple(self.vocabulary)
        self.step, self.start = float(self.step), float(self.start)
        where = f"scores of {self.filename}"
        if self.scores.ndim != 2 or self.scores.shape[0] == 0:
            raise FatError(f"{where}: expected (frames, classes), got shape {self.scores.shape}")
        if self.scores.shape[1] != len(self.vocabulary):
            raise FatError(
                f"{where}: {self.scores.shape[1]} score columns for {len(self.vocabulary)} classes"
            )
        if len(set(self.vocabulary)) != len(self.vocabulary):
            raise FatError(f"{where}: a class is named twice in the vocabulary")
        if not (math.isfinite(self.step) and self.step > 0):
            raise FatError(f"{where}: step must be a positive number of seconds, got {self.step}")
        if not (math.isfinite(self.start) and self.start >= 0):
            raise FatError(f"{where}: start must be >= 0 seconds, got {self.start}")
        # NaN fails both comparisons, so it is refused here too
        if not (self.scores.min() >= 0 and self.scores.max() <= 1):
            raise FatError(f"{where}: scores must lie in [0, 1] (NaN refused)")

    @property
    def audio_id(self) -> str:
        return audio_id(self.filename)

    @property
    def end(self) -> float:
        """Where the last frame ends: the recording's length as far as the scores know."""
        return float(self.boundaries()[-1])

    def boundaries(self) -> np.ndarray:
        """The T + 1 frame edges in seconds (sed_scores_eval's `timestamps`), rounded to 9
        decimals so that 0.1 * 3 is written as 0.3."""
        return np.round(self.start + np.arange(len(self.scores) + 1) * self.step, 9)

    def times(self) -> np.ndarray:
        """Each frame's start time in seconds, (T,)."""
        return self.boundaries()[:-1]

    def only(self, classes: Sequence[str]) -> "FrameScores":
        """These scores for `classes` alone (in that order)."""
        columns = [self.vocabulary.index(c) for c in classes]
        return FrameScores(
            self.filename, self.step, self.scores[:, columns], tuple(classes), self.start
        )

    def to_sed_scores(self) -> "pd.DataFrame":
        """The DataFrame sed_scores_eval evaluates: columns onset, offset, then one per class."""
        return score_frame(self.scores, self.boundaries(), self.vocabulary)


def score_frame(
    values: np.ndarray, boundaries: np.ndarray, classes: Sequence[str]
) -> "pd.DataFrame":
    """sed_scores_eval's score DataFrame (`create_score_dataframe`) with float32 class
    columns. float32 is what models give; it also keeps sed_scores_eval 0.0.4 working under
    pandas 3, whose read-only column arrays its Cython refuses unless converting them to
    float64 makes a copy (fixed upstream after 0.0.4)."""
    scores_module = import_quietly("sed_scores_eval.base_modules.scores")
    frame = scores_module.create_score_dataframe(values, boundaries, list(classes))
    return frame.astype({name: np.float32 for name in classes})


def write_scores_dir(folder: Path, frame_scores: Iterable[FrameScores]) -> list[Path]:
    """One score TSV per recording in `folder`, `<audio id>.tsv`, written by sed_scores_eval
    itself (`io.write_sed_scores`) so its tools read the folder as it is. Scores are written
    in float32's shortest exact form; each file is renamed into place whole."""
    io = import_quietly("sed_scores_eval.base_modules.io")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written, seen = [], set()
    for fs in frame_scores:
        if fs.audio_id in seen:
            raise FatError(f"two recordings have the audio id {fs.audio_id!r}; ids must differ")
        seen.add(fs.audio_id)
        frame = fs.to_sed_scores()
        path = folder / f"{fs.audio_id}.tsv"
        # a hidden non-.tsv name: sed_scores_eval's folder reader refuses other files
        tmp = folder / f".{fs.audio_id}.tsv.tmp"
        try:
            io.write_sed_scores(frame, tmp)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        written.append(path)
    return written


def read_frame_scores(path: Path) -> FrameScores:
    """One score TSV in sed_scores_eval's format (read by `io.read_sed_scores`); frames must
    be of equal length, as `FrameScores` holds them."""
    io = import_quietly("sed_scores_eval.base_modules.io")
    path = Path(path)
    try:
        frame = io.read_sed_scores(path)
    except (ValueError, TypeError, KeyError, AssertionError, OSError) as e:
        detail = " ".join(str(e).split())[:200]
        raise FatError(f"{path}: not a sed_scores_eval score file ({detail})") from None
    onsets = frame["onset"].to_numpy(np.float64)
    offsets = frame["offset"].to_numpy(np.float64)
    if len(onsets) == 0:
        raise FatError(f"{path}: no score frames")
    step = (offsets[-1] - onsets[0]) / len(onsets)
    if not np.allclose(offsets - onsets, step, rtol=0, atol=1e-6 + 1e-6 * step):
        raise FatError(f"{path}: frames of different lengths; fat reads equal frames only")
    classes = [str(c) for c in frame.columns[2:]]
    try:
        values = frame[frame.columns[2:]].to_numpy(np.float32)
    except ValueError as e:
        raise FatError(f"{path}: a score is not a number ({e})") from None
    return FrameScores(audio_id(path.stem), step, values, tuple(classes), float(onsets[0]))


def read_scores_dir(folder: Path, progress: bool = False) -> list[FrameScores]:
    """Every `*.tsv` score file of `folder`, by name; one vocabulary for all of them."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FatError(f"{folder}: not a folder of score files")
    paths = sorted(p for p in folder.iterdir() if p.suffix == ".tsv" and p.is_file())
    if not paths:
        raise FatError(f"{folder}: no score files (*.tsv)")
    out = [read_frame_scores(p) for p in progress_bar(paths, show=progress, desc="scores")]
    for fs, path in zip(out, paths, strict=True):
        if fs.vocabulary != out[0].vocabulary:
            raise FatError(f"{path}: its classes differ from those of {paths[0].name}")
    return out


# --- the event rule ---------------------------------------------------------------------


@dataclass(frozen=True)
class EventRule(Settings):
    """How frame scores become events, applied per class in this order: median filter,
    (hysteresis) thresholds, gaps shorter than `min_gap_s` merged, events shorter than
    `min_duration_s` dropped. A class whose own threshold (from a thresholds file) lies below
    `hysteresis_low` uses its threshold as its low too."""

    KIND = "event rule"

    threshold: float = setting(
        0.5,
        "A class is active where its (filtered) score exceeds this.",
        low=0.0,
        high=1.0,
        section=SECTION,
    )
    thresholds_file: str = setting(
        "",
        "Per-class thresholds: lines of class<TAB>threshold (what `fat tune-thresholds` "
        "writes) or a JSON object; classes it leaves out use --threshold.",
        section=SECTION,
    )
    hysteresis_low: float | None = setting(
        None,
        "Hysteresis: an event starts where the score exceeds the threshold and lasts while "
        "it stays above this.",
        low=0.0,
        high=1.0,
        derived="none, one threshold",
        section=SECTION,
    )
    median_filter_s: float = setting(
        0.0,
        "Median filter over time per class, its width in seconds (rounded to an odd number "
        "of frames); 0: none.",
        low=0.0,
        high=60.0,  # its cost grows with its width; SED filters are under a second or two
        section=SECTION,
    )
    min_duration_s: float = setting(
        0.0,
        "Events shorter than this (in seconds) are dropped.",
        low=0.0,
        high=86400.0,  # a day: longer than any recording scored at once
        section=SECTION,
    )
    min_gap_s: float = setting(
        0.0,
        "Two events of a class less than this many seconds apart become one.",
        low=0.0,
        high=86400.0,
        section=SECTION,
    )

    def problems(self) -> list[str]:
        low = self.hysteresis_low
        if low is not None and low > self.threshold:
            return [f"hysteresis_low must be in [0, threshold], got {low}"]
        return []


class Event(NamedTuple):
    """One sound event: a class active in a recording from `onset` to `offset` seconds;
    `score` is the detector's confidence (None for reference events). A named tuple: an hour
    of noisy scores can give hundreds of thousands of events, and tuples are made fast."""

    filename: str
    onset: float
    offset: float
    label: str
    score: float | None = None


def median_width(seconds: float, step: float) -> int:
    """The median filter's width in frames: `seconds` / `step` rounded to the nearest odd
    number (ties up), at least 1 (no filtering)."""
    return 2 * int(math.floor(seconds / step / 2 + _EPS)) + 1


def read_thresholds(path: Path, vocabulary: Iterable[str] | None = None) -> dict[str, float]:
    """Per-class thresholds from a file: a JSON object {"class": threshold, ...}, or lines
    `class<TAB>threshold` (blank lines and lines starting with # skipped). Each threshold is a
    number in [0, 1]; a class named twice, or outside `vocabulary` when given, is refused."""
    path = Path(path)
    known = None if vocabulary is None else frozenset(vocabulary)
    text = read_text(path, "thresholds file")
    if text.lstrip().startswith("{"):
        try:
            values = json.loads(text)
        except json.JSONDecodeError as e:
            raise FatError(f"{path}: not valid JSON ({e})") from None
        if not isinstance(values, dict):
            raise FatError(f"{path}: expected an object of class: threshold")
        rows = [(f"{path}: class {name!r}", name, value) for name, value in values.items()]
    else:
        rows = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            parts = line.split("\t")
            where = f"{path}:{number}"
            if len(parts) != 2:
                raise FatError(f"{where}: expected class<TAB>threshold, got {len(parts)} column(s)")
            rows.append((where, parts[0].strip(), parts[1].strip()))
    out: dict[str, float] = {}
    for where, name, value in rows:
        if name in out:
            raise FatError(f"{where}: class {name!r} is given twice")
        if known is not None and name not in known:
            raise FatError(f"{where}: class {name!r} is not in the vocabulary")
        out[name] = _threshold_value(value, where)
    return out


def _threshold_value(value: object, where: str) -> float:
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise FatError(f"{where}: threshold {value!r} is not a number") from None
    if not 0 <= number <= 1:
        raise FatError(f"{where}: threshold {number} is not in [0, 1]")
    return number


def write_thresholds(path: Path, thresholds: dict[str, float], comment: str = "") -> Path:
    """The `class<TAB>threshold` file `read_thresholds` (and --thresholds-file) reads; an
    optional `# comment` first line says where the values came from."""
    lines = [f"# {line}" for line in comment.splitlines()]
    lines += [f"{name}\t{value:.6g}" for name, value in thresholds.items()]
    with atomic_write(Path(path)) as f:
        f.write("\n".join(lines) + "\n")
    return Path(path)


def class_thresholds(
    rule: EventRule, vocabulary: Sequence[str], thresholds: dict[str, float] | None = None
) -> np.ndarray:
    """Each class's threshold, (C,): `thresholds` when given, else those of
    `rule.thresholds_file`, else `rule.threshold`; a class left out gets `rule.threshold`."""
    values = np.full(len(vocabulary), rule.threshold, dtype=np.float64)
    if thresholds is None:
        thresholds = read_thresholds(Path(rule.thresholds_file)) if rule.thresholds_file else {}
    where = rule.thresholds_file or "thresholds"
    unknown = sorted(set(thresholds) - set(vocabulary))
    if unknown:
        raise FatError(
            f"{where}: {len(unknown)} class(es) not in the vocabulary: {', '.join(unknown[:5])}"
        )
    index = {name: k for k, name in enumerate(vocabulary)}
    for name, value in thresholds.items():
        values[index[name]] = _threshold_value(value, f"{where}: class {name!r}")
    return values


def _majority(mask: np.ndarray, width: int) -> np.ndarray:
    """The median filter of width `width` (odd) over time of a boolean (T, C) mask, the ends
    extended by their edge values. median(s) > t holds exactly where more than half of the
    window's scores exceed t, so filtering the thresholded mask with window counts equals
    thresholding the median-filtered scores, in time independent of the width."""
    if width <= 1:
        return mask
    half = width // 2
    padded = np.concatenate([np.repeat(mask[:1], half, 0), mask, np.repeat(mask[-1:], half, 0)])
    counts = np.zeros((len(padded) + 1, mask.shape[1]), dtype=np.int32)
    np.cumsum(padded, axis=0, out=counts[1:])
    return (counts[width:] - counts[:-width]) > half


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The runs of True of a (C, T) mask: class, first frame and end frame (exclusive),
    ordered by class, then time."""
    edge = np.zeros((mask.shape[0], 1), dtype=np.int8)
    change = np.diff(np.concatenate([edge, mask.astype(np.int8), edge], axis=1), axis=1)
    cls, starts = np.nonzero(change == 1)
    _, ends = np.nonzero(change == -1)
    return cls, starts, ends


def _detect(
    scores: np.ndarray,
    step: float,
    highs: np.ndarray,
    lows: np.ndarray,
    rule: EventRule,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rule on a (T, C) score array with per-class thresholds `highs` and hysteresis
    lows `lows` (== highs without hysteresis): the events as class, first and end frame."""
    width = median_width(rule.median_filter_s, step)
    above_low = _majority(scores > lows, width).T
    above_high = _majority(scores > highs, width).T if (lows != highs).any() else above_low
    cls, starts, ends = _runs(above_low)
    if above_high is not above_low:  # keep the runs above `low` that reach the threshold
        seeds = np.zeros((above_high.shape[0], above_high.shape[1] + 1), dtype=np.int32)
        np.cumsum(above_high, axis=1, out=seeds[:, 1:])
        keep = seeds[cls, ends] > seeds[cls, starts]
        cls, starts, ends = cls[keep], starts[keep], ends[keep]
    if rule.min_gap_s > 0 and len(cls) > 1:
        gap_s = (starts[1:] - ends[:-1]) * step
        merged = (cls[1:] == cls[:-1]) & (gap_s < rule.min_gap_s - _EPS)
        first = np.concatenate([[True], ~merged])
        last = np.concatenate([~merged, [True]])
        cls, starts, ends = cls[first], starts[first], ends[last]
    if rule.min_duration_s > 0:
        keep = (ends - starts) * step >= rule.min_duration_s - _EPS
        cls, starts, ends = cls[keep], starts[keep], ends[keep]
    return cls, starts, ends


def _lows(rule: EventRule, highs: np.ndarray) -> np.ndarray:
    """Per-class hysteresis lows: `hysteresis_low`, never above the class's threshold."""
    return highs if rule.hysteresis_low is None else np.minimum(rule.hysteresis_low, highs)


def scores_to_events(
    frame_scores: FrameScores, rule: EventRule, thresholds: dict[str, float] | None = None
) -> list[Event]:
    """The events of one recording under `rule`, by onset, then class (vocabulary order).
    `thresholds`: per-class values that replace `rule.thresholds_file`. An event's score is
    the maximum of its class's unfiltered frame scores over the event's frames (the model's
    peak confidence; unlike a mean it does not sink with a long hysteresis tail). Times and
    scores are rounded to 6 decimals (sed_scores_eval evaluates times to 6 decimals)."""
    fs = frame_scores
    highs = class_thresholds(rule, fs.vocabulary, thresholds)
    cls, starts, ends = _detect(fs.scores, fs.step, highs, _lows(rule, highs), rule)
    if len(cls) == 0:
        return []
    n_frames = len(fs.scores)
    # the class-major scores with one extra value, so that an end index may be C * T
    flat = np.concatenate([fs.scores.T.ravel(), np.zeros(1, fs.scores.dtype)])
    bounds = np.empty(2 * len(cls), dtype=np.int64)
    bounds[0::2], bounds[1::2] = cls * n_frames + starts, cls * n_frames + ends
    peaks = np.round(np.maximum.reduceat(flat, bounds)[0::2].astype(np.float64), 6)
    edges = fs.boundaries()
    onsets, offsets = np.round(edges[starts], 6), np.round(edges[ends], 6)
    order = np.lexsort((cls, onsets))
    names, name = fs.vocabulary, fs.filename
    return [
        Event(name, on, off, names[c], peak)
        for on, off, c, peak in zip(
            onsets[order].tolist(),
            offsets[order].tolist(),
            cls[order].tolist(),
            peaks[order].tolist(),
            strict=True,
        )
    ]


# --- event files ------------------------------------------------------------------------


def _check_writable(event: Event) -> None:
    for text in (event.filename, event.label):
        if any(c in text for c in "\t\r\n"):
            raise FatError(f"{text!r}: a file name or label with a tab or line break")


def write_events(
    path: Path, events: Iterable[Event], fmt: str = "dcase", with_score: bool = False
) -> Path:
    """Events to a file at `path`. "dcase": a TSV of any number of recordings, DCASE's
    header `filename onset offset event_label` (and `score` when `with_score`), times with 3
    decimals. "audacity": one recording's label track (`onset offset label`, 6 decimals, as
    Audacity writes them; no score column), so one file per audio file; no events give an
    empty track."""
    events = list(events)
    for event in events:
        _check_writable(event)
    path = Path(path)
    if fmt == "dcase":
        header = list(DCASE_COLUMNS) + ([SCORE_COLUMN] if with_score else [])
        lines = ["\t".join(header)]
        for e in events:
            row = f"{e.filename}\t{e.onset:.3f}\t{e.offset:.3f}\t{e.label}"
            if with_score:
                if e.score is None:
                    raise FatError(f"{e.filename}: event {e.label} at {e.onset:.3f} has no score")
                row += f"\t{e.score:.6f}"
            lines.append(row)
        text = "\n".join(lines) + "\n"
    elif fmt == "audacity":
        if with_score:
            raise ValueError("Audacity label tracks have no score column")
        recordings = sorted({audio_id(e.filename) for e in events})
        if len(recordings) > 1:
            raise FatError(
                f"{path}: an Audacity label track holds one recording's events, not those of "
                f"{', '.join(recordings[:3])}{', ...' if len(recordings) > 3 else ''}"
            )
        text = "".join(f"{e.onset:.6f}\t{e.offset:.6f}\t{e.label}\n" for e in events)
    else:
        raise ValueError(f"unknown event file format {fmt!r}: dcase or audacity")
    with atomic_write(path) as f:
        f.write(text)
    return path


def _number(text: str, what: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise FatError(f"{where}: {what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise FatError(f"{where}: {what} {text!r} is not a finite number")
    return value


def _event(
    filename: str,
    onset: str,
    offset: str,
    label: str,
    score: str | None,
    where: str,
    vocabulary: frozenset[str] | None,
) -> Event:
    """One checked event from a file's fields; FatError naming `where` otherwise."""
    if not filename:
        raise FatError(f"{where}: no file name")
    start, end = _number(onset, "onset", where), _number(offset, "offset", where)
    if start < 0 or end < 0:
        raise FatError(f"{where}: negative time ({onset}, {offset})")
    if start >= end:
        raise FatError(f"{where}: onset {onset} is not before offset {offset}")
    if not label:
        raise FatError(f"{where}: no event label")
    if vocabulary is not None and label not in vocabulary:
        raise FatError(f"{where}: label {label!r} is not in the vocabulary")
    value = None if score is None else _number(score, "score", where)
    return Event(filename, start, end, label, value)


def read_events(path: Path, vocabulary: Iterable[str] | None = None) -> list[Event]:
    """A DCASE event TSV (sed_eval's and sed_scores_eval's reference format): rows
    `filename onset offset event_label [score]`, with or without the header line. A row
    with a file name alone (or empty onset, offset and label) is a recording without events
    and adds none. Any bad row is one FatError naming the file and line: a label outside
    `vocabulary`, onset not before offset, a negative time, a non-number, a wrong column
    count."""
    path = Path(path)
    known = None if vocabulary is None else frozenset(vocabulary)
    lines = read_text(path, "event list").splitlines()
    columns: int | None = None  # fixed by a header; without one, 4 or 5 per row
    events = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split("\t")]
        where = f"{path}:{number}"
        if columns is None and fields[0].lower() == "filename" and not events:
            header = tuple(f.lower() for f in fields)
            if header not in (DCASE_COLUMNS, (*DCASE_COLUMNS, SCORE_COLUMN)):
                raise FatError(
                    f"{where}: expected the header {' '.join(DCASE_COLUMNS)} [score], got "
                    f"{' '.join(fields)}"
                )
            columns = len(header)
            continue
        if len(fields) == 1 or (len(fields) >= 4 and not any(fields[1:4])):
            continue  # a recording without events
        if len(fields) != (columns or len(fields)) or len(fields) not in (4, 5):
            wanted = columns or "4 or 5"
            raise FatError(f"{where}: expected {wanted} tab-separated columns, got {len(fields)}")
        score = fields[4] if len(fields) == 5 else None
        events.append(_event(*fields[:4], score, where, known))
    return events


def read_audacity_labels(
    path: Path, filename: str | None = None, vocabulary: Iterable[str] | None = None
) -> list[Event]:
    """An Audacity label track (`onset offset label` per line; its frequency lines, which
    start with a backslash, skipped) as the events of `filename` (default: the track's
    name without .txt)."""
    path = Path(path)
    known = None if vocabulary is None else frozenset(vocabulary)
    name = filename if filename is not None else path.stem
    events = []
    for number, line in enumerate(read_text(path, "Audacity label track").splitlines(), 1):
        if not line.strip() or line.startswith("\\"):
            continue
        fields = [f.strip() for f in line.split("\t")]
        where = f"{path}:{number}"
        if len(fields) != 3:
            raise FatError(f"{where}: expected 3 tab-separated columns, got {len(fields)}")
        events.append(_event(name, *fields, None, where, known))
    return events


# --- threshold tuning -------------------------------------------------------------------


@dataclass
class ThresholdSearch:
    """Each class's event-based F1 (`TUNING_COLLARS`) on a labelled set at each candidate
    threshold, the rest of the rule held; classes without reference events are absent."""

    candidates: np.ndarray
    fscores: dict[str, np.ndarray] = field(default_factory=dict)
    # classes with reference events that no candidate detects any of (F1 0 throughout)
    missed: tuple[str, ...] = ()

    def best(self) -> dict[str, float]:
        """Per class, the candidate of highest F1; among equal ones the middle one (the
        middle of a plateau is the choice least likely to sit on an edge of it). Classes of
        `missed` are left out, so that they keep the rule's default threshold."""
        out = {}
        for name, f in self.fscores.items():
            if name in self.missed:
                continue
            tied = np.flatnonzero(f >= f.max() - 1e-12)
            out[name] = float(self.candidates[tied[(len(tied) - 1) // 2]])
        return out


def reference_by_file(
    reference: list[Event], ids: set[str], vocabulary: Sequence[str], what: str
) -> dict[str, list[tuple[float, float, str]]]:
    """sed_scores_eval's ground truth: per audio id of `ids`, (onset, offset, label) tuples.
    Events of a file without scores, of a class outside `vocabulary`, or overlapping another
    of their class (sed_scores_eval refuses those) are a FatError."""
    known = set(vocabulary)
    truth: dict[str, list[tuple[float, float, str]]] = {key: [] for key in ids}
    for e in reference:
        key = audio_id(e.filename)
        if key not in truth:
            raise FatError(f"{what}: {e.filename} has reference events but no scores")
        if e.label not in known:
            raise FatError(f"{what}: reference label {e.label!r} is not a class of the scores")
        truth[key].append((e.onset, e.offset, e.label))
    for key, events in truth.items():
        last: dict[str, tuple[float, float, str]] = {}
        for event in sorted(events):
            before = last.get(event[2])
            if before is not None and event[0] <= before[1]:
                raise FatError(
                    f"{what}: reference events of {event[2]!r} in {key} overlap or touch "
                    f"({before[0]:.3f}-{before[1]:.3f}, {event[0]:.3f}-{event[1]:.3f}); "
                    "merge them"
                )
            last[event[2]] = event
    return truth


def shared_vocabulary(scores: Sequence[FrameScores]) -> tuple[str, ...]:
    """The one vocabulary of all `scores` (evaluating them together needs one), whose audio
    ids must differ; FatError otherwise."""
    if not scores:
        raise FatError("no frame scores given")
    for fs in scores:
        if fs.vocabulary != scores[0].vocabulary:
            raise FatError(f"{fs.filename}: its classes differ from those of {scores[0].filename}")
    ids = [fs.audio_id for fs in scores]
    if len(set(ids)) != len(ids):
        raise FatError("two score files have the same audio id")
    return scores[0].vocabulary


def search_thresholds(
    scores: Sequence[FrameScores],
    reference: list[Event],
    rule: EventRule,
    candidates: Sequence[float] | np.ndarray = DEFAULT_CANDIDATES,
    progress: bool = False,
) -> ThresholdSearch:
    """Each class's event-based F1 at every candidate threshold (sorted, duplicates
    dropped), computed by sed_scores_eval's collar-based statistics for all candidates at
    once.

    The full rule (median filter, hysteresis, gap merging, minimum duration) is applied at
    each candidate. A higher threshold only shrinks or removes events, so the events of all
    candidates nest; each frame is given the number of candidates whose events cover it, and
    thresholding that count at k + 0.5 gives exactly the events of the k-th candidate.
    sed_scores_eval then evaluates every candidate from that one score curve per class."""
    collar = import_quietly("sed_scores_eval.collar_based")
    vocabulary = shared_vocabulary(scores)
    levels = np.unique(np.asarray(candidates, dtype=np.float64))
    if len(levels) == 0 or not ((levels >= 0) & (levels <= 1)).all():
        raise FatError("threshold candidates must be numbers in [0, 1]")
    truth = reference_by_file(reference, {fs.audio_id for fs in scores}, vocabulary, "tuning")
    labelled = sorted({label for events in truth.values() for _, _, label in events})
    if not labelled:
        raise FatError("tuning: the reference has no events")
    columns = [vocabulary.index(name) for name in labelled]
    frames = {}
    for fs in progress_bar(scores, show=progress, desc="thresholds"):
        sub = fs.scores[:, columns]
        count = np.zeros(sub.shape, dtype=np.int32)
        previous = None
        for level in levels:
            highs = np.full(len(columns), level)
            cls, starts, ends = _detect(sub, fs.step, highs, _lows(rule, highs), rule)
            marks = np.zeros((len(columns), len(sub) + 1), dtype=np.int8)
            marks[cls, starts], marks[cls, ends] = 1, -1  # runs never touch: ends < next starts
            mask = np.cumsum(marks[:, :-1], axis=1, dtype=np.int8).T.astype(bool)
            if previous is not None and (mask & ~previous).any():
                raise RuntimeError("events of a higher threshold are not within a lower one's")
            count += mask
            previous = mask
        frames[fs.audio_id] = score_frame(count, fs.boundaries(), labelled)
    deltas = collar.intermediate_statistics_deltas(frames, truth, **TUNING_COLLARS)
    fscores = {name: np.zeros(len(levels)) for name in labelled}
    for k in range(len(levels)):
        f, *_ = collar.fscore(frames, truth, k + 0.5, deltas=deltas, **TUNING_COLLARS)
        for name in labelled:
            fscores[name][k] = f[name]
    missed = tuple(name for name in labelled if fscores[name].max() <= 0)
    return ThresholdSearch(levels, fscores, missed)


def tune_thresholds(
    scores: Sequence[FrameScores],
    reference: list[Event],
    rule: EventRule,
    candidates: Sequence[float] | np.ndarray = DEFAULT_CANDIDATES,
) -> dict[str, float]:
    """Per class, the candidate threshold that maximises its event-based F1 (onset collar
    0.2 s, offset collar max(0.2 s, 20% of the reference event)) on the labelled recordings,
    the other settings of `rule` held. Classes without reference events, or whose events no
    candidate finds, are left out and so keep `rule.threshold`. Recordings with scores but no
    reference events count as recordings without events."""
    return search_thresholds(scores, reference, rule, candidates).best()
