"""`fat detect` from files to outputs (`detect_files`), and the picture of one detected
recording (`plot_detection`): its log-mel, the score curves of the classes that fire, and the
detected events as bars on one time axis, the reference events under them when given. An hour
reads as well as a minute: the log-mel arrives max-pooled to the figure's columns
(`Detection.overview`), and the curves are max-pooled to the same."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from fat.analysis.plotting import file_slug, literal, save_png  # noqa: E402
from fat.core.errors import FatError  # noqa: E402
from fat.core.features import LogMelConfig  # noqa: E402
from fat.core.melscale import mel_band_edges_hz  # noqa: E402
from fat.core.progress import progress_bar  # noqa: E402
from fat.core.wording import plural  # noqa: E402
from fat.predict.detect import Detection, audio_seconds, detect_file  # noqa: E402
from fat.predict.event_metrics import EventEvaluation, evaluate_events  # noqa: E402
from fat.predict.events import (  # noqa: E402
    Event,
    EventRule,
    audio_id,
    read_events,
    read_thresholds,
    scores_to_events,
    write_events,
    write_scores_dir,
)
from fat.predict.settings import DetectConfig  # noqa: E402
from fat.predict.tagging import audio_files  # noqa: E402
from fat.runs.checkpoint import load_trained_model  # noqa: E402

DPI = 100
MAX_CLASSES = 8  # curves drawn: the classes with the most event time
COLUMNS = 2000  # what the figure's 20 inches of plot show at 100 dpi


def plot_detection(
    detection: Detection,
    events: Sequence[Event],
    reference: Sequence[Event],
    features: LogMelConfig,
    path: Path,
) -> Path:
    """2000 x 1000 px: log-mel (top), score curves of the classes that fire (middle), events
    as bars per class with reference events in grey beneath (bottom); time in seconds, or in
    minutes past 10 minutes."""
    scores = detection.scores
    duration = len(scores.scores) * scores.step
    minutes = duration > 600
    unit = 60.0 if minutes else 1.0
    shown = _classes_shown(events, reference, scores.vocabulary)
    fig, (mel_ax, curve_ax, event_ax) = plt.subplots(
        3, 1, figsize=(20, 10), sharex=True, gridspec_kw={"height_ratios": [3, 2, 2]}
    )
    if detection.overview is not None and detection.overview.size:
        overview = detection.overview
        extent = (0, overview.shape[1] * detection.overview_step / unit, 0, overview.shape[0])
        mel_ax.imshow(overview, origin="lower", aspect="auto", cmap="magma", extent=extent,
                      interpolation="nearest")  # fmt: skip
        centres = mel_band_edges_hz(features)[1:-1]
        ticks = np.unique(np.linspace(0, features.n_mels - 1, 6).astype(int))
        mel_ax.set_yticks(ticks + 0.5, labels=[f"{centres[t]:.0f}" for t in ticks])
        mel_ax.set_ylabel("Hz (mel scale)")
    mel_ax.set_title(literal(Path(scores.filename).name), fontsize=11)
    pooled, step = _pooled(scores.scores, scores.step)
    times = (np.arange(len(pooled)) + 0.5) * step / unit
    colours = plt.get_cmap("tab10")
    for k, name in enumerate(shown):
        c = scores.vocabulary.index(name)
        curve_ax.plot(times, pooled[:, c], color=colours(k % 10), linewidth=1.0,
                      label=literal(name))  # fmt: skip
    curve_ax.set_ylim(0, 1.02)
    curve_ax.set_ylabel("score")
    if shown:
        curve_ax.legend(loc="upper right", fontsize=8, ncol=min(4, len(shown)))
    for k, name in enumerate(shown):
        row = len(shown) - 1 - k
        mine = [(e.onset / unit, (e.offset - e.onset) / unit) for e in events if e.label == name]
        truth = [
            (e.onset / unit, (e.offset - e.onset) / unit) for e in reference if e.label == name
        ]
        event_ax.broken_barh(mine, (row + 0.35, 0.5), color=colours(k % 10))
        if reference:
            event_ax.broken_barh(truth, (row + 0.05, 0.25), color="0.55")
    event_ax.set_yticks(np.arange(len(shown)) + 0.5, labels=[literal(n) for n in shown[::-1]])
    event_ax.set_ylim(0, max(1, len(shown)))
    event_ax.set_xlim(0, duration / unit)
    event_ax.set_xlabel("time (min)" if minutes else "time (s)")
    if reference:
        event_ax.set_title("detected (colour) and reference (grey) events", fontsize=9)
    fig.tight_layout()
    return save_png(fig, path, DPI)


def _classes_shown(
    events: Sequence[Event], reference: Sequence[Event], vocabulary: Sequence[str]
) -> list[str]:
    """The classes with events (detected or reference), most event time first, at most
    `MAX_CLASSES`, in vocabulary order."""
    time: dict[str, float] = {}
    for e in [*events, *reference]:
        time[e.label] = time.get(e.label, 0.0) + e.offset - e.onset
    top = sorted(time, key=lambda name: -time[name])[:MAX_CLASSES]
    return [name for name in vocabulary if name in top]


def _pooled(values: np.ndarray, step: float) -> tuple[np.ndarray, float]:
    """Scores max-pooled over time to at most `COLUMNS` rows, and the new step."""
    factor = max(1, int(np.ceil(len(values) / COLUMNS)))
    if factor == 1:
        return values, step
    whole = len(values) // factor * factor
    pooled = values[:whole].reshape(-1, factor, values.shape[1]).max(axis=1)
    if whole < len(values):
        pooled = np.concatenate([pooled, values[whole:].max(axis=0, keepdims=True)])
    return pooled, step * factor


@dataclass
class DetectSummary:
    """What `fat detect` did: per file its events and notes, the files skipped, what it
    wrote, and the evaluation against reference events when there were any."""

    out: Path
    files: list[tuple[Path, int, str, list[str]]] = field(default_factory=list)  # events, method
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    evaluation: EventEvaluation | None = None

    def lines(self) -> list[str]:
        out = []
        for path, n_events, method, notes in self.files:
            out.append(f"{path}: {plural(n_events, 'event')} ({method} scores)")
            out += [f"  note: {note}" for note in notes]
        out += [f"skipped {path}: {reason}" for path, reason in self.skipped]
        if self.evaluation is not None:
            out += self.evaluation.lines()
        out.append(f"wrote {self.out / EVENTS}")
        return out


EVENTS = "events.tsv"


def detect_files(
    run: Path,
    paths: list[Path],
    cfg: DetectConfig,
    rule: EventRule,
    out: Path,
    reference: Path | None = None,
    audacity: bool = False,
    with_score: bool = False,
    figures: bool = True,
    progress: bool = False,
    classes: list[str] | None = None,
) -> DetectSummary:
    """`fat detect`: every audio file under `paths` scored over time by the run and its events
    written to OUT/events.tsv, its scores to OUT/scores/, its picture to OUT/figures/ (and an
    Audacity label track, with `audacity`); scored against `reference` events when given.
    `classes`: only these classes' events (and evaluation)."""
    trained = load_trained_model(run, cfg.checkpoint)
    unknown = sorted(set(classes or ()) - set(trained.vocabulary))
    if unknown:
        raise FatError(f"--classes: {', '.join(unknown)} not in the run's vocabulary")
    wanted = set(classes or trained.vocabulary)
    files = audio_files(paths)
    thresholds = (
        read_thresholds(Path(rule.thresholds_file), trained.vocabulary)
        if (rule.thresholds_file)
        else None
    )
    truth = read_events(reference, trained.vocabulary) if reference is not None else []
    out = Path(out)
    summary = DetectSummary(out)
    all_events, all_scores = [], []
    total = sum(audio_seconds(files))
    bar = progress_bar(total=round(total), unit="s", desc="detect", show=progress)
    done = 0.0
    for path in files:

        def advance(seconds: float, start: float = done) -> None:
            bar.update(max(0, round(start + seconds) - bar.n))

        try:
            detection = detect_file(trained, path, cfg, COLUMNS if figures else 0, advance)
        except FatError as e:
            summary.skipped.append((path, str(e).removeprefix(f"{path}: ")))
            continue
        done += len(detection.scores.scores) * detection.scores.step
        scores = detection.scores
        events = [e for e in scores_to_events(scores, rule, thresholds) if e.label in wanted]
        all_events += events
        all_scores.append(scores)
        if audacity:
            write_events(out / f"{path.stem}.txt", events, fmt="audacity")
        if figures:
            mine = [e for e in truth if audio_id(e.filename) == scores.audio_id]
            plot_detection(detection, events, mine, trained.feature_config,
                           out / "figures" / f"{file_slug(path.stem)}.png")  # fmt: skip
        summary.files.append((path, len(events), detection.method, detection.notes))
    bar.close()
    write_scores_dir(out / "scores", all_scores)
    write_events(out / EVENTS, all_events, fmt="dcase", with_score=with_score)
    if reference is not None and all_scores:
        seen = {s.audio_id for s in all_scores}
        mine = [e for e in truth if audio_id(e.filename) in seen and e.label in wanted]
        vocabulary = tuple(c for c in trained.vocabulary if c in wanted)
        scored = [s.only(vocabulary) for s in all_scores] if classes else all_scores
        summary.evaluation = evaluate_events(mine, all_events, scored, vocabulary)
        summary.evaluation.write(out / "evaluation")
    return summary
