"""Sound event detection scored against reference events by the field's own libraries:
sed_eval's event-based and segment-based metrics (DCASE's collars and 1 s segments) and
sed_scores_eval's threshold-free PSDS (DCASE 2021+ scenario 1) from frame scores. Nothing
here re-implements a metric; it gathers the libraries' inputs and reads their results."""

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fat.core.errors import FatError
from fat.core.files import atomic_write
from fat.core.progress import progress_bar
from fat.predict.events import (
    Event,
    FrameScores,
    audio_id,
    import_quietly,
    reference_by_file,
    shared_vocabulary,
)

# sed_eval.sound_event.EventBasedMetrics settings: DCASE's onset collar, and an offset collar
# of max(0.2 s, 20% of the reference event's length).
EVENT_SETTINGS = {
    "t_collar": 0.2,
    "percentage_of_length": 0.2,
    "evaluate_onset": True,
    "evaluate_offset": True,
    "event_matching_type": "optimal",
}
SEGMENT_SECONDS = 1.0
# sed_scores_eval.intersection_based.psds settings of DCASE 2021+ task 4, scenario 1.
PSDS_SCENARIO_1 = {
    "dtc_threshold": 0.7,
    "gtc_threshold": 0.7,
    "cttc_threshold": None,
    "alpha_ct": 0.0,
    "alpha_st": 1.0,
    "max_efpr": 100.0,
    "unit_of_time": "hour",
}
CLASS_COLUMNS = (
    "label",
    "n_ref",
    "n_est",
    "event_f1",
    "event_precision",
    "event_recall",
    "event_error_rate",
    "segment_f1",
    "segment_error_rate",
    "psds",
)


@dataclass
class ClassResult:
    """One class's numbers; None where a metric is undefined (no events to count)."""

    label: str
    n_ref: int
    n_est: int
    event_f1: float | None
    event_precision: float | None
    event_recall: float | None
    event_error_rate: float | None
    segment_f1: float | None
    segment_error_rate: float | None
    psds: float | None = None


@dataclass
class EventEvaluation:
    """Estimated events (and frame scores) against reference events: overall (micro) and
    per class, with the settings each number was computed with."""

    vocabulary: tuple[str, ...]
    files: int
    n_ref: int
    n_est: int
    event_f1: float | None
    event_precision: float | None
    event_recall: float | None
    event_error_rate: float | None
    event_macro_f1: float | None  # the mean of the class-wise F1, as DCASE also reports
    segment_f1: float | None
    segment_error_rate: float | None
    per_class: list[ClassResult]
    psds: float | None = None
    # the classes PSDS covers: those with reference events (sed_scores_eval needs them)
    psds_classes: tuple[str, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The summary (JSON-ready): counts; the event-based, segment-based and PSDS numbers,
        each with the library and settings that made them (sed_eval's names: f_measure,
        error_rate); then per class."""
        psds = None
        if "psds" in self.settings:
            psds = {
                "value": self.psds,
                "classes": list(self.psds_classes),
                "settings": self.settings["psds"],
            }
        return {
            "counts": {
                "files": self.files,
                "reference_events": self.n_ref,
                "estimated_events": self.n_est,
            },
            "event_based": {
                "f_measure": self.event_f1,
                "precision": self.event_precision,
                "recall": self.event_recall,
                "error_rate": self.event_error_rate,
                "class_mean_f_measure": self.event_macro_f1,
                "settings": self.settings["event_based"],
            },
            "segment_based": {
                "f_measure": self.segment_f1,
                "error_rate": self.segment_error_rate,
                "settings": self.settings["segment_based"],
            },
            "psds": psds,
            "per_class": {
                r.label: {k: getattr(r, k) for k in CLASS_COLUMNS[1:]} for r in self.per_class
            },
        }

    def lines(self) -> list[str]:
        """A short console report: the overall numbers, then a row per class."""

        def num(value: float | None, width: int = 6) -> str:
            return f"{'-':>{width}}" if value is None else f"{value:>{width}.3f}"

        out = [
            f"{self.files} files, {self.n_ref} reference and {self.n_est} estimated events",
            f"event-based (collar 0.2 s, offset max(0.2 s, 20%)): F1 {num(self.event_f1, 0)}"
            f"  P {num(self.event_precision, 0)}  R {num(self.event_recall, 0)}"
            f"  ER {num(self.event_error_rate, 0)}  class-mean F1 {num(self.event_macro_f1, 0)}",
            f"segment-based ({SEGMENT_SECONDS:g} s segments): F1 {num(self.segment_f1, 0)}"
            f"  ER {num(self.segment_error_rate, 0)}",
        ]
        if self.psds is not None:
            s = PSDS_SCENARIO_1
            out.append(
                f"PSDS (scenario 1: dtc {s['dtc_threshold']}, gtc {s['gtc_threshold']}, "
                f"alpha_st {s['alpha_st']:g}, max eFPR {s['max_efpr']:g}/h): "
                f"{self.psds:.3f} over {len(self.psds_classes)} classes"
            )
        width = max([5, *(len(r.label) for r in self.per_class)])
        out.append(f"{'class':<{width}} {'ref':>5} {'est':>5} {'evF1':>6} {'evER':>6} "
                   f"{'segF1':>6} {'PSDS':>6}")  # fmt: skip
        for r in self.per_class:
            out.append(
                f"{r.label:<{width}} {r.n_ref:>5} {r.n_est:>5} {num(r.event_f1)} "
                f"{num(r.event_error_rate)} {num(r.segment_f1)} {num(r.psds)}"
            )
        return out

    def write(self, folder: Path) -> tuple[Path, Path]:
        """summary.json (`to_dict`) and per_class.csv (a row per class) into `folder`."""
        folder = Path(folder)
        summary, table = folder / "summary.json", folder / "per_class.csv"
        with atomic_write(summary) as f:
            json.dump(self.to_dict(), f, indent=1)
            f.write("\n")
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(CLASS_COLUMNS)
        for r in self.per_class:
            writer.writerow(["" if (v := getattr(r, k)) is None else v for k in CLASS_COLUMNS])
        with atomic_write(table) as f:
            f.write(text.getvalue())
        return summary, table


def _value(x: Any) -> float | None:
    """A library's number as a float, None for its NaN (no events to count)."""
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else x


def _class_result(name: str, events: dict, segments: dict) -> ClassResult:
    """One class's numbers from sed_eval's class-wise results. Recall and error rate of a
    class without reference events divide by zero (sed_eval then reports NaN or ~1e16):
    None."""
    n_ref = int(events["count"]["Nref"])
    has_ref = n_ref > 0
    return ClassResult(
        label=name,
        n_ref=n_ref,
        n_est=int(events["count"]["Nsys"]),
        event_f1=_value(events["f_measure"]["f_measure"]),
        event_precision=_value(events["f_measure"]["precision"]),
        event_recall=_value(events["f_measure"]["recall"]) if has_ref else None,
        event_error_rate=_value(events["error_rate"]["error_rate"]) if has_ref else None,
        segment_f1=_value(segments["f_measure"]["f_measure"]),
        segment_error_rate=(
            _value(segments["error_rate"]["error_rate"]) if segments["count"]["Nref"] > 0 else None
        ),
    )


def _check_labels(events: list[Event], vocabulary: set[str], what: str) -> None:
    outside = sorted({e.label for e in events} - vocabulary)
    if outside:
        raise FatError(f"{what} events have labels outside the vocabulary: {', '.join(outside)}")


def _as_items(events: list[Event]) -> list[dict[str, Any]]:
    return [
        {"filename": audio_id(e.filename), "onset": e.onset, "offset": e.offset,
         "event_label": e.label}
        for e in events
    ]  # fmt: skip


def _sed_eval_metrics(
    reference: list[Event], estimated: list[Event], vocabulary: list[str], progress: bool
) -> tuple[Any, Any, int]:
    """sed_eval's event-based and segment-based metrics fed file by file, as it requires;
    every recording with events in either list counts."""
    sed_eval = import_quietly("sed_eval")
    dcase_util = import_quietly("dcase_util")
    events = sed_eval.sound_event.EventBasedMetrics(event_label_list=vocabulary, **EVENT_SETTINGS)
    segments = sed_eval.sound_event.SegmentBasedMetrics(
        event_label_list=vocabulary, time_resolution=SEGMENT_SECONDS
    )
    by_file: dict[str, tuple[list[Event], list[Event]]] = {}
    for e in reference:
        by_file.setdefault(audio_id(e.filename), ([], []))[0].append(e)
    for e in estimated:
        by_file.setdefault(audio_id(e.filename), ([], []))[1].append(e)
    container = dcase_util.containers.MetaDataContainer
    for key in progress_bar(sorted(by_file), show=progress, desc="files"):
        ref, est = (container(_as_items(x)) for x in by_file[key])
        events.evaluate(reference_event_list=ref, estimated_event_list=est)
        segments.evaluate(reference_event_list=ref, estimated_event_list=est)
    return events, segments, len(by_file)


def _psds(
    reference: list[Event], scores: Sequence[FrameScores]
) -> tuple[float | None, dict[str, float], tuple[str, ...]]:
    """sed_scores_eval's PSDS (scenario 1) over the classes with reference events; the
    recordings' durations are the scores' extents."""
    intersection = import_quietly("sed_scores_eval.intersection_based")
    vocabulary = shared_vocabulary(scores)
    truth = reference_by_file(reference, {fs.audio_id for fs in scores}, vocabulary, "PSDS")
    classes = tuple(c for c in vocabulary if any(e.label == c for e in reference))
    if not classes:
        return None, {}, ()
    columns = ["onset", "offset", *classes]
    frames = {fs.audio_id: fs.to_sed_scores()[columns] for fs in scores}
    durations = {fs.audio_id: fs.end for fs in scores}
    value, per_class, *_ = intersection.psds(frames, truth, durations, **PSDS_SCENARIO_1)
    return float(value), {k: float(v) for k, v in per_class.items()}, classes


def evaluate_events(
    reference: list[Event],
    estimated: list[Event],
    scores: Sequence[FrameScores] | None = None,
    vocabulary: Sequence[str] | None = None,
    progress: bool = False,
) -> EventEvaluation:
    """`estimated` against `reference` events: sed_eval's event-based F1, precision, recall
    and error rate (`EVENT_SETTINGS`) and segment-based F1 and error rate (1 s segments),
    overall (micro) and per class; with `scores`, sed_scores_eval's PSDS
    (`PSDS_SCENARIO_1`) over the classes that have reference events. `vocabulary`: the
    classes reported (default: the labels of both lists, sorted); an event outside it is a
    FatError. Recordings are matched by audio id, so "a.wav" and "a" are one."""
    labels = {e.label for e in reference} | {e.label for e in estimated}
    vocab = sorted(labels) if vocabulary is None else list(vocabulary)
    _check_labels(reference, set(vocab), "reference")
    _check_labels(estimated, set(vocab), "estimated")
    if not vocab:
        raise FatError("no events in either list and no vocabulary: nothing to evaluate")
    events, segments, files = _sed_eval_metrics(reference, estimated, vocab, progress)
    psds, class_psds, psds_classes = (
        _psds(reference, scores) if scores is not None else (None, {}, ())
    )
    ev, seg = events.results_overall_metrics(), segments.results_overall_metrics()
    ev_class, seg_class = events.results_class_wise_metrics(), segments.results_class_wise_metrics()
    per_class = [_class_result(name, ev_class[name], seg_class[name]) for name in vocab]
    for row in per_class:
        row.psds = class_psds.get(row.label)
    macro = events.results_class_wise_average_metrics()["f_measure"]["f_measure"]
    settings: dict[str, Any] = {
        "event_based": {"library": "sed_eval", **EVENT_SETTINGS},
        "segment_based": {"library": "sed_eval", "time_resolution": SEGMENT_SECONDS},
    }
    if scores is not None:
        settings["psds"] = {"library": "sed_scores_eval", "scenario": 1, **PSDS_SCENARIO_1}
    return EventEvaluation(
        vocabulary=tuple(vocab),
        files=files,
        n_ref=len(reference),
        n_est=len(estimated),
        event_f1=_value(ev["f_measure"]["f_measure"]),
        event_precision=_value(ev["f_measure"]["precision"]),
        event_recall=_value(ev["f_measure"]["recall"]),
        event_error_rate=_value(ev["error_rate"]["error_rate"]) if reference else None,
        event_macro_f1=_value(macro),
        segment_f1=_value(seg["f_measure"]["f_measure"]),
        segment_error_rate=_value(seg["error_rate"]["error_rate"]) if reference else None,
        per_class=per_class,
        psds=psds,
        psds_classes=psds_classes,
        settings=settings,
    )
