"""Sound events in long recordings: scores over time in bounded memory (a file streamed block
by block scores as it does whole), events with their onsets and offsets where the sounds
were placed, scored by the field's libraries; and what a long file can do wrong."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from fat.cli import main
from fat.core.errors import FatError
from fat.predict.detect import detect_file
from fat.predict.settings import DetectConfig
from fat.runs.checkpoint import load_trained_model

SR = 16000
FEATURES = ["--sample-rate", "16000", "--n-fft", "512", "--hop", "160", "--n-mels", "32"]
TONES = {"low": 400.0, "mid": 1600.0, "high": 5000.0}
# (label, onset, offset) in seconds of the long recording
PLACED = [("low", 2.0, 4.5), ("high", 7.0, 9.0), ("mid", 12.0, 15.0), ("low", 18.5, 20.5),
          ("high", 23.0, 26.0), ("mid", 29.0, 31.0)]  # fmt: skip
LENGTH = 34.0


def background(seconds: float, rng) -> np.ndarray:
    return (rng.normal(size=int(seconds * SR)) * 0.02).astype(np.float32)


def tone(freq: float, seconds: float, rng) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    ramp = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.01)  # 10 ms fades: no clicks
    wobble = 1 + 0.01 * rng.normal()
    return (0.3 * np.sin(2 * np.pi * freq * wobble * t) * ramp).astype(np.float32)


def long_recording(path: Path, rate: int = SR, subtype: str | None = None) -> Path:
    """LENGTH seconds of background with the PLACED tones added at their times."""
    rng = np.random.default_rng(7)
    audio = background(LENGTH, rng)
    for label, onset, offset in PLACED:
        a = int(onset * SR)
        piece = tone(TONES[label], offset - onset, rng)
        audio[a : a + len(piece)] += piece
    if rate != SR:
        import soxr

        audio = soxr.resample(audio, SR, rate).astype(np.float32)
    sf.write(path, audio, rate, subtype=subtype)
    return path


@pytest.fixture(scope="module")
def detector(tmp_path_factory) -> Path:
    """A small CNN trained on 1 s clips of each tone over background, and of background alone
    (its own class, so the tones' scores can fall where there is none)."""
    root = tmp_path_factory.mktemp("tones")
    rng = np.random.default_rng(0)
    for label in [*TONES, "background"]:
        (root / "data" / label).mkdir(parents=True)
        for k in range(16):
            clip = background(1.0, rng)
            if label in TONES:
                clip += tone(TONES[label], 1.0, rng)
            sf.write(root / "data" / label / f"{label}{k:02d}.wav", clip, SR)
    store, run = root / "tones.zarr", root / "run"
    runner = CliRunner()
    done = runner.invoke(main, ["featurize", "--dataset", "folders", "--data-dir",
                                str(root / "data"), "--store", str(store), "-q", "-j", "1",
                                *FEATURES])  # fmt: skip
    assert done.exit_code == 0, done.output
    train = ["train", "--store", str(store), "--out", str(run), "--train-splits", "train",
             "--loss", "bce", "--arch", "cnn", "--width", "0.125", "--epochs", "12",
             "--batch-size", "8", "--crop-frames", "32", "--lr", "3e-3", "--mixup", "0",
             "--time-masks", "0", "--freq-masks", "0", "-q"]  # fmt: skip
    done = runner.invoke(main, train)
    assert done.exit_code == 0, done.output
    return run


@pytest.mark.parametrize("method", ["windows", "shared"])
def test_a_file_streamed_block_by_block_scores_as_it_does_whole(detector, tmp_path, method):
    trained = load_trained_model(detector)
    path = long_recording(tmp_path / "long.wav")
    whole = detect_file(trained, path, DetectConfig(method=method, block_seconds=3600))
    blocks = detect_file(trained, path, DetectConfig(method=method, block_seconds=1.0))
    assert whole.method == blocks.method == method
    assert whole.scores.scores.shape == blocks.scores.scores.shape
    steps = whole.scores.scores.shape[0]
    assert (steps - 1) * whole.scores.step < LENGTH <= steps * whole.scores.step  # to its end
    np.testing.assert_allclose(blocks.scores.scores, whole.scores.scores, atol=1e-5)


def test_shared_windows_stay_close_to_windows_scored_alone(detector, tmp_path):
    trained = load_trained_model(detector)
    path = long_recording(tmp_path / "long.wav")
    alone = detect_file(trained, path, DetectConfig(method="windows", hop_seconds=0.16))
    shared = detect_file(trained, path, DetectConfig(method="shared", hop_seconds=0.16))
    assert alone.scores.scores.shape == shared.scores.scores.shape
    difference = np.abs(alone.scores.scores - shared.scores.scores)
    assert np.median(difference) < 0.05  # context instead of zero padding at window edges


def test_events_land_where_the_sounds_were_placed(detector, tmp_path):
    from fat.predict.event_metrics import evaluate_events
    from fat.predict.events import Event, EventRule, scores_to_events

    trained = load_trained_model(detector)
    path = long_recording(tmp_path / "long.wav")
    detection = detect_file(trained, path, DetectConfig(hop_seconds=0.1))
    rule = EventRule(threshold=0.5, median_filter_s=0.3, min_duration_s=0.5)
    events = [e for e in scores_to_events(detection.scores, rule, None) if e.label in TONES]
    resolution = 0.1 + 32 / 100 / 2 + 0.05  # the hop, half a window, a frame
    for label, onset, offset in PLACED:
        near = [e for e in events if e.label == label and abs(e.onset - onset) <= resolution]
        assert len(near) == 1, (label, onset, [(e.label, e.onset, e.offset) for e in events])
        assert abs(near[0].offset - offset) <= resolution
    reference = [Event(str(path), on, off, label, None) for label, on, off in PLACED]
    result = evaluate_events(reference, events, None, tuple(TONES))
    assert result.to_dict()["event_based"]["f_measure"] >= 0.99


def test_fat_detect_writes_events_a_picture_and_scores(detector, tmp_path):
    path = long_recording(tmp_path / "long.wav")
    reference = tmp_path / "reference.tsv"
    reference.write_text(
        "filename\tonset\toffset\tevent_label\n"
        + "".join(f"long.wav\t{on}\t{off}\t{label}\n" for label, on, off in PLACED)
    )
    out = tmp_path / "out"
    done = CliRunner().invoke(main, ["detect", str(detector), str(path), "--out", str(out),
                                     "--hop-seconds", "0.1", "--median-filter-s", "0.3",
                                     "--min-duration-s", "0.5", "--reference", str(reference),
                                     "--audacity", "--classes", "low,mid,high", "-q"])  # fmt: skip
    assert done.exit_code == 0, done.output
    events = (out / "events.tsv").read_text().splitlines()
    assert events[0] == "filename\tonset\toffset\tevent_label"
    assert sum(line.split("\t")[3] in TONES for line in events[1:]) >= len(PLACED)
    assert (out / "long.txt").exists()  # the Audacity label track
    assert list((out / "figures").glob("long*.png"))
    assert list((out / "scores").glob("*.tsv"))
    summary = json.loads((out / "evaluation" / "summary.json").read_text())
    assert summary["event_based"]["f_measure"] >= 0.99
    assert set(summary["per_class"]) == set(TONES)  # --classes: the tones alone


def test_what_long_files_do_wrong_is_one_line_each(detector, tmp_path):
    trained = load_trained_model(detector)
    resampled = detect_file(trained, long_recording(tmp_path / "r.wav", rate=22050),
                            DetectConfig())  # fmt: skip
    assert resampled.notes == ["resampled from 22050 Hz to 16000 Hz"]
    short = tmp_path / "short.wav"
    sf.write(short, tone(400.0, 0.2, np.random.default_rng(1)), SR)
    one = detect_file(trained, short, DetectConfig())
    assert one.scores.scores.shape[0] >= 1 and np.isfinite(one.scores.scores).all()
    silence = tmp_path / "silence.wav"
    sf.write(silence, np.zeros(SR * 3, np.float32), SR)
    assert np.isfinite(detect_file(trained, silence, DetectConfig()).scores.scores).all()
    broken = long_recording(tmp_path / "broken.flac")
    data = bytearray(broken.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4000] = bytes(np.random.default_rng(0).integers(0, 256, 4000, np.uint8))
    broken.write_bytes(bytes(data))
    gapped = detect_file(trained, broken, DetectConfig(block_seconds=2.0))
    assert any("unreadable" in note for note in gapped.notes), gapped.notes
    steps = gapped.scores.scores.shape[0]
    assert (steps - 1) * gapped.scores.step < LENGTH <= steps * gapped.scores.step  # time kept


def test_a_model_with_frame_outputs_gives_them_at_its_own_rate(trained_gcnn, trained_cnn, tmp_path):
    trained = load_trained_model(trained_gcnn)
    rate = trained.feature_config.sample_rate
    path = tmp_path / "five.wav"
    sf.write(path, (np.random.default_rng(2).normal(size=5 * rate) * 0.05).astype(np.float32), rate)
    detection = detect_file(trained, path, DetectConfig())
    assert detection.method == "frames"  # auto: the GCNN's own frame outputs
    frames_per_step = detection.scores.step * trained.feature_config.frames_per_second
    assert frames_per_step == pytest.approx(4)  # the network pools time by 4
    steps = detection.scores.scores.shape[0]
    assert (steps - 1) * detection.scores.step < 5.0 <= (steps + 1) * detection.scores.step
    cnn = load_trained_model(trained_cnn)
    with pytest.raises(FatError, match="has no frame outputs"):
        detect_file(cnn, path, DetectConfig(method="frames"))


def test_how_overlapping_windows_combine_into_a_step():
    from fat.predict.detect import _Grid, combine_rule

    for combine, expected in (("mean", [0.9, 0.5, 0.1]), ("min", [0.9, 0.1, 0.1])):
        grid = _Grid(1, combine)
        grid.add(0, np.array([[0.9], [0.9]]))  # a window that hears the sound, over steps 0-1
        grid.add(1, np.array([[0.1], [0.1]]))  # one that does not, over steps 1-2
        np.testing.assert_allclose(grid.result(3)[:, 0], expected)
    auto = DetectConfig()
    assert combine_rule(auto, "shared", 1.0) == "min"  # long windows: min keeps onsets sharp
    assert combine_rule(auto, "windows", 0.3) == "mean"
    assert combine_rule(auto, "frames", 1.0) == "mean"
    assert combine_rule(DetectConfig(combine="mean"), "shared", 1.0) == "mean"
