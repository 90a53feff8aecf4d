"""Sound events from frame scores, their files, threshold tuning, and their evaluation, checked
on hand-made score curves and against sed_eval and sed_scores_eval called directly."""

import json
import time
import warnings

import click
import numpy as np
import pytest
from click.testing import CliRunner
from scipy.ndimage import median_filter

from fat.cli import FatGroup
from fat.cli.events import evaluate_events_command, tune_thresholds_command
from fat.core.errors import FatError
from fat.predict.event_metrics import EVENT_SETTINGS, PSDS_SCENARIO_1, evaluate_events
from fat.predict.events import (
    Event,
    EventRule,
    FrameScores,
    audio_id,
    class_thresholds,
    median_width,
    read_audacity_labels,
    read_events,
    read_scores_dir,
    read_thresholds,
    scores_to_events,
    search_thresholds,
    tune_thresholds,
    write_events,
    write_scores_dir,
)

with warnings.catch_warnings():  # the libraries' imports warn about their own code
    warnings.simplefilter("ignore")
    import dcase_util
    import sed_eval
    from sed_scores_eval import intersection_based
    from sed_scores_eval.base_modules.scores import create_score_dataframe


def curve(values_by_frame: dict[tuple[int, int], float], frames: int, base: float = 0.1):
    """A (frames, 1) score curve at `base` with the given [first, end) spans set."""
    out = np.full((frames, 1), base, dtype=np.float32)
    for (first, end), value in values_by_frame.items():
        out[first:end, 0] = value
    return out


def spans(events: list[Event]) -> list[tuple[float, float, str]]:
    return [(e.onset, e.offset, e.label) for e in events]


# --- the rule -----------------------------------------------------------------------------


def test_a_threshold_gives_exact_onsets_and_offsets():
    scores = np.full((20, 2), 0.1, dtype=np.float32)
    scores[3:7, 0] = 0.8
    scores[10:12, 1] = 0.6
    fs = FrameScores("a.wav", 0.1, scores, ("dog", "cat"))
    events = scores_to_events(fs, EventRule(threshold=0.5))
    assert spans(events) == [(0.3, 0.7, "dog"), (1.0, 1.2, "cat")]
    assert [e.score for e in events] == [0.8, 0.6]
    assert spans(scores_to_events(fs, EventRule(threshold=0.7))) == [(0.3, 0.7, "dog")]
    shifted = FrameScores("a.wav", 0.1, scores, ("dog", "cat"), start=2.0)
    assert spans(scores_to_events(shifted, EventRule()))[0] == (2.3, 2.7, "dog")
    assert np.allclose(shifted.times()[:3], [2.0, 2.1, 2.2]) and shifted.end == 4.0
    # a class active up to the last frame ends where the scores end
    scores[15:, 1] = 0.9
    assert spans(scores_to_events(fs, EventRule()))[-1] == (1.5, 2.0, "cat")


def test_hysteresis_keeps_an_event_through_a_dip_above_low():
    scores = curve({(1, 3): 0.7, (3, 4): 0.4, (4, 5): 0.7, (8, 10): 0.4}, 12)
    fs = FrameScores("a.wav", 0.1, scores, ("dog",))
    assert spans(scores_to_events(fs, EventRule())) == [(0.1, 0.3, "dog"), (0.4, 0.5, "dog")]
    rule = EventRule(threshold=0.5, hysteresis_low=0.3)
    # one event through the dip; frames 8-9 pass `low` but never the threshold
    assert spans(scores_to_events(fs, rule)) == [(0.1, 0.5, "dog")]
    assert EventRule(hysteresis_low=0.2).hysteresis_low == 0.2
    with pytest.raises(FatError, match="hysteresis_low"):
        EventRule(threshold=0.4, hysteresis_low=0.6)


def test_median_filter_removes_a_one_frame_spike():
    scores = curve({(5, 6): 0.9, (10, 15): 0.8}, 20, base=0.0)
    fs = FrameScores("a.wav", 0.1, scores, ("dog",))
    assert len(scores_to_events(fs, EventRule())) == 2
    events = scores_to_events(fs, EventRule(median_filter_s=0.3))
    assert spans(events) == [(1.0, 1.5, "dog")]
    assert (median_width(0.3, 0.1), median_width(0.4, 0.1), median_width(0.05, 0.1)) == (3, 5, 1)
    assert median_width(0.0, 0.02) == 1


def test_median_filter_equals_scipys_on_random_curves():
    rng = np.random.default_rng(3)
    scores = rng.random((400, 4)).astype(np.float32)
    fs = FrameScores("a.wav", 0.02, scores, tuple("abcd"))
    rule = EventRule(threshold=0.55, hysteresis_low=0.45, median_filter_s=0.14)
    filtered = median_filter(scores, size=(median_width(0.14, 0.02), 1), mode="nearest")
    plain = FrameScores("a.wav", 0.02, filtered, tuple("abcd"))
    unfiltered = EventRule(threshold=0.55, hysteresis_low=0.45)
    assert spans(scores_to_events(fs, rule)) == spans(scores_to_events(plain, unfiltered))


def test_min_gap_merges_and_min_duration_drops():
    scores = curve({(1, 3): 0.9, (4, 6): 0.9, (9, 11): 0.9, (14, 17): 0.9}, 20)
    fs = FrameScores("a.wav", 0.1, scores, ("dog",))
    merged = scores_to_events(fs, EventRule(min_gap_s=0.15))
    assert spans(merged) == [(0.1, 0.6, "dog"), (0.9, 1.1, "dog"), (1.4, 1.7, "dog")]
    kept = scores_to_events(fs, EventRule(min_duration_s=0.25))
    assert spans(kept) == [(1.4, 1.7, "dog")]
    # merging comes first: two 0.2 s events 0.1 s apart make one 0.5 s event that stays
    both = scores_to_events(fs, EventRule(min_gap_s=0.15, min_duration_s=0.3))
    assert spans(both) == [(0.1, 0.6, "dog"), (1.4, 1.7, "dog")]


def test_per_class_thresholds_from_a_file(tmp_path):
    vocabulary = ("dog", "cat", "bird")
    tsv = tmp_path / "thresholds.tsv"
    tsv.write_text("# tuned\ndog\t0.8\n\ncat\t0.2\n")
    assert read_thresholds(tsv) == {"dog": 0.8, "cat": 0.2}
    as_json = tmp_path / "thresholds.json"
    as_json.write_text(json.dumps({"dog": 0.8, "cat": 0.2}))
    assert read_thresholds(as_json) == {"dog": 0.8, "cat": 0.2}
    rule = EventRule(threshold=0.4, thresholds_file=str(tsv))
    assert class_thresholds(rule, vocabulary).tolist() == [0.8, 0.2, 0.4]
    assert class_thresholds(rule, vocabulary, {"bird": 0.9}).tolist() == [0.4, 0.4, 0.9]
    scores = np.full((10, 3), 0.5, dtype=np.float32)
    events = scores_to_events(FrameScores("a.wav", 0.1, scores, vocabulary), rule)
    assert [e.label for e in events] == ["cat", "bird"]  # dog needs 0.8
    bad = tmp_path / "bad.tsv"
    bad.write_text("dog\t0.8\ncat 0.2\n")
    with pytest.raises(FatError, match=r"bad\.tsv:2: expected class<TAB>threshold"):
        read_thresholds(bad)
    bad.write_text("dog\t1.5\n")
    with pytest.raises(FatError, match=r"bad\.tsv:1: threshold 1.5 is not in \[0, 1\]"):
        read_thresholds(bad)
    bad.write_text("wolf\t0.5\n")
    with pytest.raises(FatError, match="not in the vocabulary: wolf"):
        class_thresholds(EventRule(thresholds_file=str(bad)), vocabulary)
    with pytest.raises(FatError, match=r"bad\.tsv:1: class 'wolf' is not in the vocabulary"):
        read_thresholds(bad, vocabulary)


def test_an_hour_of_scores_takes_well_under_a_second():
    rng = np.random.default_rng(0)
    frames, classes = 36_000, 80
    scores = (rng.random((frames, classes)) * 0.45).astype(np.float32)
    for c in range(classes):  # a few hundred events per class
        for first in rng.integers(0, frames - 100, 300):
            scores[first : first + rng.integers(5, 100), c] = rng.uniform(0.5, 1.0)
    fs = FrameScores("long.wav", 0.1, scores, tuple(f"c{k}" for k in range(classes)))
    rule = EventRule(hysteresis_low=0.3, median_filter_s=0.5, min_gap_s=0.3, min_duration_s=0.2)
    elapsed = []
    for _ in range(2):  # the faster of two: the machine may be busy
        started = time.perf_counter()
        events = scores_to_events(fs, rule)
        elapsed.append(time.perf_counter() - started)
    assert len(events) > 10_000
    assert min(elapsed) < 1.0


# --- files --------------------------------------------------------------------------------


def test_scores_round_trip_through_sed_scores_eval_files(tmp_path):
    rng = np.random.default_rng(1)
    written = [
        FrameScores("/data/a.wav", 0.02, rng.random((50, 3)), ("dog", "cat", "bird")),
        FrameScores("b.flac", 0.1, rng.random((7, 3)), ("dog", "cat", "bird"), start=1.5),
    ]
    paths = write_scores_dir(tmp_path / "scores", written)
    assert [p.name for p in paths] == ["a.tsv", "b.tsv"]
    back = read_scores_dir(tmp_path / "scores")
    for before, after in zip(written, back, strict=True):
        assert after.filename == before.audio_id and after.vocabulary == before.vocabulary
        assert after.start == pytest.approx(before.start) and after.step == pytest.approx(
            before.step
        )
        assert np.array_equal(after.scores, before.scores)  # float32, written exactly
        assert np.allclose(after.boundaries(), before.boundaries())
    # the folder is sed_scores_eval's own format
    from sed_scores_eval.base_modules.io import read_sed_scores

    frames = read_sed_scores(tmp_path / "scores")
    assert sorted(frames) == ["a", "b"] and list(frames["a"].columns[:3]) == [
        "onset",
        "offset",
        "dog",
    ]
    (tmp_path / "scores" / "c.tsv").write_text("onset\toffset\tdog\n0\t0.1\t0.5\n0.1\t0.3\t0.2\n")
    with pytest.raises(FatError, match="c.tsv: frames of different lengths"):
        read_scores_dir(tmp_path / "scores")
    with pytest.raises(FatError, match=r"scores must lie in \[0, 1\]"):
        FrameScores("x.wav", 0.1, np.full((3, 1), 1.5), ("dog",))


def test_dcase_and_audacity_files_round_trip(tmp_path):
    events = [
        Event("a.wav", 0.5, 1.25, "dog", 0.9),
        Event("a.wav", 2.0, 3.125, "cat", 0.55),
        Event("b.wav", 0.0, 10.0, "dog", 0.7),
    ]
    plain = tmp_path / "events.tsv"
    write_events(plain, events)
    assert plain.read_text().splitlines()[:2] == [
        "filename\tonset\toffset\tevent_label",
        "a.wav\t0.500\t1.250\tdog",
    ]
    assert read_events(plain) == [e._replace(score=None) for e in events]
    scored = tmp_path / "scored.tsv"
    write_events(scored, events, with_score=True)
    assert scored.read_text().splitlines()[0].endswith("\tevent_label\tscore")
    assert read_events(scored, vocabulary=("dog", "cat")) == events
    # without a header, and with a row for a recording without events
    bare = tmp_path / "bare.tsv"
    bare.write_text("a.wav\t0.5\t1.25\tdog\nc.wav\t\t\t\nb.wav\t0\t10\tdog\t0.7\n")
    assert spans(read_events(bare)) == [(0.5, 1.25, "dog"), (0.0, 10.0, "dog")]
    track = write_events(tmp_path / "labels" / "a.txt", events[:2], fmt="audacity")
    assert track.read_text().splitlines()[0] == "0.500000\t1.250000\tdog"
    back = read_audacity_labels(track, "a.wav", ("dog", "cat"))
    assert back == [e._replace(score=None) for e in events[:2]]
    empty = write_events(tmp_path / "labels" / "c.txt", [], fmt="audacity")
    assert read_audacity_labels(empty) == []
    with pytest.raises(FatError, match="one recording's events"):
        write_events(tmp_path / "both.txt", events, fmt="audacity")
    assert audio_id("/x/y/a.wav") == "a" and audio_id("clip.1") == "clip.1"


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("a.wav\t0.5\t1.0\twolf", r"label 'wolf' is not in the vocabulary"),
        ("a.wav\t2.0\t1.0\tdog", r"onset 2.0 is not before offset 1.0"),
        ("a.wav\t-1\t1.0\tdog", r"negative time"),
        ("a.wav\tsoon\t1.0\tdog", r"onset 'soon' is not a number"),
        ("a.wav\t0.5\t1.0", r"expected 4 tab-separated columns, got 3"),
        ("a.wav\t0.5\t1.0\tdog\t0.3", r"expected 4 tab-separated columns, got 5"),
    ],
)
def test_a_bad_event_row_is_one_line_naming_file_and_line(tmp_path, row, message):
    path = tmp_path / "ref.tsv"
    path.write_text(f"filename\tonset\toffset\tevent_label\na.wav\t0\t1\tdog\n{row}\n")
    with pytest.raises(FatError, match=message) as caught:
        read_events(path, vocabulary=("dog", "cat"))
    assert str(caught.value).startswith(f"{path}:3: ") and "\n" not in str(caught.value)


def test_a_bad_audacity_line_names_file_and_line(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("0.5\t1.0\tdog\n\\\t100\t2000\n3.0\t2.0\tdog\n")
    with pytest.raises(FatError, match=r"a\.txt:3: onset 3.0 is not before offset 2.0"):
        read_audacity_labels(path)


# --- evaluation against the libraries -------------------------------------------------------


def library_event_metrics(reference, estimated, vocabulary):
    """sed_eval's event-based and segment-based metrics, fed file by file as its docs do."""
    events = sed_eval.sound_event.EventBasedMetrics(
        event_label_list=vocabulary, t_collar=0.2, percentage_of_length=0.2
    )
    segments = sed_eval.sound_event.SegmentBasedMetrics(
        event_label_list=vocabulary, time_resolution=1.0
    )
    files = sorted({e.filename for e in reference} | {e.filename for e in estimated})
    for name in files:

        def items(events_, name=name):
            rows = [e for e in events_ if e.filename == name]
            return dcase_util.containers.MetaDataContainer(
                [
                    {"filename": name, "onset": e.onset, "offset": e.offset, "event_label": e.label}
                    for e in rows
                ]
            )

        events.evaluate(items(reference), items(estimated))
        segments.evaluate(items(reference), items(estimated))
    return events, segments


def random_case(seed, files=3, frames=300, step=0.05, keep=0.8, jitter=0.15):
    """Smooth random scores for three classes and reference events (a share `keep` of them)
    near their peaks, their ends moved by up to `jitter` seconds and kept off the frame grid,
    so that no comparison sits on a collar's edge."""
    rng = np.random.default_rng(seed)
    vocabulary = ("dog", "cat", "bird")
    scores, reference = [], []
    for f in range(files):
        noise = rng.random((frames, 3))
        smooth = np.stack([np.convolve(noise[:, c], np.ones(9) / 9, "same") for c in range(3)], 1)
        values = np.clip((smooth - 0.35) * 3, 0, 1)
        scores.append(FrameScores(f"f{f}.wav", step, values, vocabulary))
        for c, label in enumerate(vocabulary[:2]):  # bird never has reference events
            active = np.flatnonzero(np.diff(np.r_[0, values[:, c] > 0.5, 0]))
            last = -1.0
            for first, end in zip(active[0::2], active[1::2], strict=True):
                onset = float(first * step + rng.uniform(-jitter, jitter))
                offset = float(end * step + rng.uniform(-jitter, jitter))
                onset, offset = round(max(onset, 0) + 0.0013, 3), round(offset + 0.0017, 3)
                # reference events of a class never overlap (sed_scores_eval refuses that)
                if offset > onset > last + 0.01 and rng.random() < keep:
                    reference.append(Event(f"f{f}.wav", onset, offset, label))
                    last = offset
    return scores, reference, vocabulary


def test_evaluate_events_equals_sed_eval_and_sed_scores_eval():
    scores, reference, vocabulary = random_case(0, keep=1.0, jitter=0.03)  # PSDS needs few misses
    rule = EventRule(threshold=0.5, median_filter_s=0.15)
    estimated = [e for fs in scores for e in scores_to_events(fs, rule)]
    result = evaluate_events(reference, estimated, scores, vocabulary)

    events, segments = library_event_metrics(reference, estimated, list(vocabulary))
    overall = events.results_overall_metrics()
    assert result.event_f1 == pytest.approx(overall["f_measure"]["f_measure"], abs=1e-9)
    assert result.event_precision == pytest.approx(overall["f_measure"]["precision"], abs=1e-9)
    assert result.event_recall == pytest.approx(overall["f_measure"]["recall"], abs=1e-9)
    assert result.event_error_rate == pytest.approx(overall["error_rate"]["error_rate"], abs=1e-9)
    seg = segments.results_overall_metrics()
    assert result.segment_f1 == pytest.approx(seg["f_measure"]["f_measure"], abs=1e-9)
    assert result.segment_error_rate == pytest.approx(seg["error_rate"]["error_rate"], abs=1e-9)
    per_class = events.results_class_wise_metrics()
    for row in result.per_class[:2]:
        assert row.event_f1 == pytest.approx(per_class[row.label]["f_measure"]["f_measure"])
    assert 0 < result.event_f1 < 1 and result.n_ref == len(reference)

    # PSDS over the classes with reference events (bird has none), durations from the scores
    frames = {
        fs.audio_id: create_score_dataframe(
            fs.scores[:, :2], fs.start + np.arange(len(fs.scores) + 1) * fs.step, ["dog", "cat"]
        ).astype({"dog": np.float32, "cat": np.float32})  # sed_scores_eval 0.0.4 + pandas 3
        for fs in scores
    }
    truth = {fs.audio_id: [] for fs in scores}
    for e in reference:
        truth[audio_id(e.filename)].append((e.onset, e.offset, e.label))
    durations = {fs.audio_id: len(fs.scores) * fs.step for fs in scores}
    psds, single, *_ = intersection_based.psds(
        frames,
        truth,
        durations,
        dtc_threshold=0.7,
        gtc_threshold=0.7,
        cttc_threshold=None,
        alpha_ct=0,
        alpha_st=1,
        max_efpr=100,
    )
    assert result.psds_classes == ("dog", "cat")
    assert result.psds == pytest.approx(psds, abs=1e-9) and result.psds > 0
    assert result.per_class[0].psds == pytest.approx(single["dog"], abs=1e-9)
    summary = result.to_dict()
    assert summary["psds"]["settings"]["dtc_threshold"] == PSDS_SCENARIO_1["dtc_threshold"]
    assert summary["psds"]["value"] == result.psds
    assert summary["event_based"]["settings"]["t_collar"] == EVENT_SETTINGS["t_collar"]
    assert summary["event_based"]["f_measure"] == result.event_f1
    assert summary["per_class"]["bird"]["psds"] is None
    assert json.loads(json.dumps(summary)) == summary
    assert any(line.startswith("PSDS") for line in result.lines())


def test_evaluation_refuses_labels_outside_the_vocabulary():
    reference = [Event("a.wav", 0, 1, "dog")]
    with pytest.raises(FatError, match="outside the vocabulary: wolf"):
        evaluate_events(reference, [Event("a.wav", 0, 1, "wolf")], None, ["dog"])


def test_threshold_search_f1_equals_sed_eval_at_every_candidate():
    scores, reference, vocabulary = random_case(5, files=2)
    rule = EventRule(hysteresis_low=0.35, median_filter_s=0.15, min_gap_s=0.2, min_duration_s=0.1)
    candidates = [0.2, 0.4, 0.5, 0.6, 0.8]
    search = search_thresholds(scores, reference, rule, candidates)
    assert sorted(search.fscores) == ["cat", "dog"]  # bird has no reference events
    for k, level in enumerate(candidates):
        estimated = [
            e for fs in scores for e in scores_to_events(fs, rule, dict.fromkeys(vocabulary, level))
        ]
        events, _ = library_event_metrics(reference, estimated, list(vocabulary))
        per_class = events.results_class_wise_metrics()
        for name in ("dog", "cat"):
            assert search.fscores[name][k] == pytest.approx(
                per_class[name]["f_measure"]["f_measure"], abs=1e-9
            ), (name, level)


def separable_case():
    """dog's true events score 0.7, its false ones 0.3; cat scores but has no references."""
    scores, reference = [], []
    for f in range(3):
        values = np.full((200, 2), 0.05, dtype=np.float32)
        values[20 + f * 10 : 60 + f * 10, 0] = 0.7
        values[120:150, 0] = 0.3
        values[80:100, 1] = 0.6
        scores.append(FrameScores(f"f{f}.wav", 0.1, values, ("dog", "cat")))
        reference.append(Event(f"f{f}.wav", 2.0 + f, 6.0 + f, "dog"))
    return scores, reference


def test_tune_thresholds_separates_true_from_false_events():
    scores, reference = separable_case()
    tuned = tune_thresholds(scores, reference, EventRule())
    assert list(tuned) == ["dog"]  # cat has no reference events: it keeps the default
    assert 0.3 < tuned["dog"] < 0.7
    estimated = [e for fs in scores for e in scores_to_events(fs, EventRule(), tuned)]
    result = evaluate_events(reference, estimated, None, ["dog", "cat"])
    assert [(r.label, r.event_f1) for r in result.per_class] == [("dog", 1.0), ("cat", None)]


# --- the commands ---------------------------------------------------------------------------


def cli() -> click.Group:
    group = FatGroup("fat")
    group.add_command(evaluate_events_command)
    group.add_command(tune_thresholds_command)
    return group


def test_the_commands_evaluate_and_tune_from_files(tmp_path):
    scores, reference = separable_case()
    write_scores_dir(tmp_path / "scores", scores)
    write_events(tmp_path / "ref.tsv", reference)
    runner = CliRunner()

    out = runner.invoke(
        cli(),
        ["tune-thresholds", str(tmp_path / "scores"), str(tmp_path / "ref.tsv"),
         "--out", str(tmp_path / "thr.tsv"), "--median-filter-s", "0.3", "-q"],
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    tuned = read_thresholds(tmp_path / "thr.tsv")
    assert list(tuned) == ["dog"] and 0.3 < tuned["dog"] < 0.7
    assert "1 keep --threshold 0.5" in out.output

    rule = EventRule(thresholds_file=str(tmp_path / "thr.tsv"))
    estimated = [
        e for fs in read_scores_dir(tmp_path / "scores") for e in scores_to_events(fs, rule)
    ]
    write_events(tmp_path / "est.tsv", estimated, with_score=True)
    out = runner.invoke(
        cli(),
        ["evaluate-events", str(tmp_path / "ref.tsv"), str(tmp_path / "est.tsv"),
         "--scores", str(tmp_path / "scores"), "--out", str(tmp_path / "eval"), "-q"],
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "PSDS (scenario 1" in out.output
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert summary["per_class"]["dog"]["event_f1"] == pytest.approx(1.0)
    assert summary["psds"]["classes"] == ["dog"]
    rows = (tmp_path / "eval" / "per_class.csv").read_text().splitlines()
    assert rows[0].startswith("label,n_ref,n_est,event_f1") and rows[1].startswith("cat,0,")

    (tmp_path / "bad.tsv").write_text("f0.wav\t1.0\t0.5\tdog\n")
    out = runner.invoke(
        cli(), ["evaluate-events", str(tmp_path / "bad.tsv"), str(tmp_path / "est.tsv")]
    )
    assert out.exit_code == 1
    assert (
        out.output.strip() == f"error: {tmp_path / 'bad.tsv'}:1: onset 1.0 is not before offset 0.5"
    )
