"""fat predict / fat evaluate on a real tiny run: submission format, metric equality, refusals."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from fat.cli import main
from fat.core.evaluation import most_confused
from fat.core.features import LogMelConfig
from fat.core.labels import official_vocabulary
from fat.core.metrics import lwlrap, lwlrap_details
from fat.models.input import ModelInput
from fat.predict.export import manifest_of
from fat.predict.inference import score_clips, window_starts
from fat.predict.scoring import predict_split
from fat.predict.settings import PredictConfig
from fat.runs.checkpoint import TrainedModel, load_trained_model
from fat.store import open_store
from fat.store.crops import gather_crops
from tests.synthetic import SMALL_CONFIG, synthetic_clip


@pytest.fixture(scope="module")
def trained_run(labelled_store, trained_cnn) -> tuple[Path, Path]:
    return labelled_store, trained_cnn


def test_window_starts_cover_the_clip():
    assert window_starts(20, 32, 0.5) == [0]
    assert window_starts(100, 32, 0.5) == [0, 16, 32, 48, 64, 68]
    assert window_starts(64, 32, 0.5) == [0, 16, 32]
    assert window_starts(64, 32, 0.0) == [0, 32]


def test_predict_writes_a_kaggle_submission(trained_run, tmp_path):
    store, run = trained_run
    out = tmp_path / "submission.csv"
    result = CliRunner().invoke(main, ["predict", str(run), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    sub = pd.read_csv(out)
    vocab = official_vocabulary()
    assert list(sub.columns) == ["fname", *vocab] and sub.shape == (12, 81)
    test = open_store(store).split("test")
    assert sorted(sub["fname"]) == sorted(test.clip_ids)
    probs = sub[list(vocab)].to_numpy()
    assert np.all((probs >= 0) & (probs <= 1)) and np.isfinite(probs).all()
    # The same numbers as scoring in-process with the run's model and normalizer.
    trained = load_trained_model(run)
    inputs = ModelInput(trained.normalizer, torch.device("cpu"))
    direct = score_clips(trained.model, test, np.arange(12), 32, inputs)
    assert np.allclose(probs, direct, atol=2e-6)


def window_probabilities(trained: TrainedModel, split, clip: int, crop: int = 32) -> np.ndarray:
    """(windows, classes): the run's probabilities for each window of a clip, one forward
    pass per clip, windows every crop / 2 frames plus one flush with the end, and a clip
    shorter than the crop repeated to fill it."""
    features = trained.normalizer.apply(split.read(clip).T).T  # (n_mels, T) like training
    length = features.shape[1]
    starts = list(range(0, max(length - crop, 0) + 1, crop // 2))
    if length > crop and starts[-1] != length - crop:
        starts.append(length - crop)
    windows = np.stack([features[:, (s + np.arange(crop)) % length] for s in starts])
    with torch.no_grad():
        return torch.sigmoid(trained.model(torch.from_numpy(windows).float())).double().numpy()


def test_tta_reduces_each_clips_windows_by_mean_or_max(trained_run, tmp_path):
    store, run = trained_run
    test = open_store(store).split("test")
    vocab = list(official_vocabulary())
    written = {}
    for tta in ("mean", "max"):
        out = tmp_path / f"{tta}.csv"
        result = CliRunner().invoke(
            main, ["predict", str(run), "--out", str(out), "--tta", tta, "--quiet"]
        )
        assert result.exit_code == 0, result.output
        written[tta] = pd.read_csv(out).set_index("fname").loc[test.clip_ids, vocab].to_numpy()
    trained = load_trained_model(run)
    windows = [window_probabilities(trained, test, i) for i in range(len(test))]
    assert np.allclose(written["mean"], [w.mean(axis=0) for w in windows], atol=2e-6)
    assert np.allclose(written["max"], [w.max(axis=0) for w in windows], atol=2e-6)
    several = np.array([len(w) > 1 for w in windows])
    assert several.sum() >= 3  # clips longer than one window, where mean and max must differ
    # ... by far more than the tolerance above, so those checks tell the two apart.
    assert (written["max"] - written["mean"])[several].max(axis=1).min() > 1e-5


def test_evaluate_matches_the_metric(trained_run, tmp_path):
    store, run = trained_run
    sub = tmp_path / "s.csv"
    CliRunner().invoke(main, ["predict", str(run), "--out", str(sub), "--quiet"])
    out = tmp_path / "eval"
    result = CliRunner().invoke(
        main, ["evaluate", str(run), "--split", "test", "--out", str(out), "--quiet"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    test = open_store(store).split("test")
    exact = predict_split(load_trained_model(run), test, PredictConfig())
    assert summary["lwlrap"] == pytest.approx(lwlrap(test.labels, exact), abs=1e-12)
    # The submission rounds to 6 decimals, which can tie near-equal scores (ties count
    # against the label): the same metric to that precision.
    probs = pd.read_csv(sub).set_index("fname").loc[test.clip_ids].to_numpy()
    assert summary["lwlrap"] == pytest.approx(lwlrap(test.labels, probs), abs=1e-3)
    per_class = pd.read_csv(out / "per_class.csv")
    details = lwlrap_details(test.labels, exact)
    assert len(per_class) == int((details.weights > 0).sum())
    assert per_class["lwlrap"].is_monotonic_increasing  # worst first
    assert f"{summary['lwlrap']:.4f}" in result.output
    val = CliRunner().invoke(main, ["evaluate", str(run), "--quiet"])
    assert val.exit_code == 0 and (run / "eval" / "val" / "summary.json").exists()


def test_most_confused_counts_outranking_classes():
    truth = np.array([[1, 0, 0], [1, 0, 0], [1, 0, 1]])
    scores = np.array([[0.2, 0.9, 0.1], [0.3, 0.5, 0.4], [0.1, 0.8, 0.9]])
    assert most_confused(truth, scores, 0) == [1, 2]


def test_predict_refuses_other_features(trained_run, tmp_path):
    _, run = trained_run
    other = tmp_path / "other.zarr"
    with open_store(other, "a") as s:
        cfg = LogMelConfig(n_mels=16, hop_length=512)
        with s.writer("test", cfg, official_vocabulary()) as w:
            w.add(synthetic_clip(0))
    result = CliRunner().invoke(main, ["predict", str(run), "--store", str(other), "--quiet"])
    assert result.exit_code == 1 and "hop_length" in result.output
    assert SMALL_CONFIG.hop_length == 347


def test_gcnn_frame_outputs_cover_each_clip(trained_run, trained_gcnn, tmp_path):
    store, _ = trained_run
    frames = tmp_path / "frames.npz"
    args = ["predict", str(trained_gcnn), "--out", str(tmp_path / "g.csv"), "--frames", str(frames)]
    result = CliRunner().invoke(main, [*args, "--quiet"])
    assert result.exit_code == 0, result.output
    test = open_store(store).split("test")
    with np.load(frames) as saved:
        assert sorted(saved.files) == sorted(test.clip_ids)
        for i, clip_id in enumerate(test.clip_ids):
            f = saved[clip_id]
            assert f.shape == (int(np.ceil(test.lengths[i] / 4)), 80)  # 4 input frames each
            assert f.min() >= 0 and f.max() <= 1
    cnn = CliRunner().invoke(
        main,
        [
            "predict",
            str(trained_run[1]),
            "--out",
            str(tmp_path / "c.csv"),
            "--frames",
            str(tmp_path / "c.npz"),
            "--quiet",
        ],
    )
    assert cnn.exit_code == 1 and "no frame-level outputs" in cnn.output


def test_embed_writes_the_layer_before_the_classifier_with_ids(trained_run, tmp_path):
    store, run = trained_run
    out = tmp_path / "emb.npy"
    args = ["embed", str(run), "--store", str(store), "--split", "test", "--out", str(out)]
    result = CliRunner().invoke(main, [*args, "--quiet"])
    assert result.exit_code == 0, result.output
    vectors = np.load(out)
    ids = (tmp_path / "emb.ids.txt").read_text().splitlines()[1:]  # after the comment line
    trained = load_trained_model(run, "best")
    with open_store(store) as s:
        split = s.split("test")
        assert ids == split.clip_ids and vectors.shape == (12, trained.model.classifier.in_features)
        crop, model = trained.experiment.crop_frames, trained.model.eval()
        inputs = ModelInput(trained.normalizer, torch.device("cpu"), trained.experiment.pad)
        for k in (0, 5):  # each row: the mean over the clip's windows of the classifier's input
            starts = window_starts(int(split.lengths[k]), crop, 0.5)
            crops, own = gather_crops(split, np.full(len(starts), k), np.array(starts), crop)
            with torch.no_grad():
                windows = model.features(inputs(crops, own))[0].numpy()
            np.testing.assert_allclose(vectors[k], windows.mean(axis=0), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_an_exported_model_scores_clips_as_fat_predict_does(trained_run, tmp_path, fmt):
    store, run = trained_run
    out = tmp_path / ("tagger.pt" if fmt == "torchscript" else "tagger.onnx")
    result = CliRunner().invoke(main, ["export", str(run), "--format", fmt, "--out", str(out)])
    assert result.exit_code == 0, result.output
    manifest = json.loads(manifest_of(out).read_text())
    trained = load_trained_model(run, "best")
    assert manifest["vocabulary"] == list(trained.vocabulary)
    crop = manifest["windows"]["crop_frames"]
    if fmt == "torchscript":
        exported = torch.jit.load(str(out))

        def run_exported(x):
            with torch.no_grad():
                return exported(torch.from_numpy(x)).numpy()
    else:
        onnxruntime = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
        session = onnxruntime.InferenceSession(str(out))

        def run_exported(x):
            return session.run(None, {"log_mel": x})[0]

    with open_store(store) as s:
        split = s.split("test")
        expected = predict_split(trained, split, PredictConfig())
        for k in (0, 3, 7):  # the manifest's window rule, the exported model, the mean
            starts = window_starts(int(split.lengths[k]), crop, 0.5)
            crops, _ = gather_crops(split, np.full(len(starts), k), np.array(starts), crop)
            x = np.ascontiguousarray(crops.transpose(0, 2, 1), dtype=np.float32)
            got = run_exported(x).mean(axis=0)
            np.testing.assert_allclose(got, expected[k], rtol=1e-4, atol=1e-5)


def test_tag_scores_a_wav_as_predict_scores_it_featurized_into_a_store(trained_run, tmp_path):
    from fat.featurize.run import featurize_split
    from fat.featurize.settings import FeaturizeOptions
    from fat.predict.tagging import tag_files
    from tests.synthetic import make_fsd_layout

    _, run = trained_run
    trained = load_trained_model(run, "best")
    data = make_fsd_layout(tmp_path / "data", n_curated=1, n_test=3)
    store = tmp_path / "features.zarr"
    options = FeaturizeOptions(workers=1, quiet=True)
    featurize_split(data, "test", store, trained.feature_config, options)
    (data / "test" / "broken.wav").write_bytes(b"RIFF not really")
    tagged = tag_files(run, [data / "test"])
    assert [p.name for p in tagged.files] == ["test000.wav", "test001.wav", "test002.wav"]
    assert [(p.name, "not a readable audio file" in why) for p, why in tagged.skipped] == [
        ("broken.wav", True)
    ]
    with open_store(store) as s:
        split = s.split("test")
        expected = predict_split(trained, split, PredictConfig())
        rows = [split.index_of(p.name) for p in tagged.files]
    np.testing.assert_array_equal(tagged.probs, expected[rows])

    wav = str(data / "test" / "test001.wav")
    args = ["tag", str(run), wav, "--format", "json", "--top-k", "3", "--quiet"]
    shown = CliRunner().invoke(main, args)
    assert shown.exit_code == 0, shown.output
    labels = json.loads(shown.output)[0]["labels"]
    best = np.argsort(-expected[rows[1]])[:3]
    assert [x["label"] for x in labels] == [trained.vocabulary[j] for j in best]
    table = CliRunner().invoke(main, ["tag", str(run), wav, "--threshold", "2", "--quiet"])
    assert "(nothing >= 2.0)" in table.output
    figures = CliRunner().invoke(main, ["tag", str(run), wav, "--frames", str(tmp_path / "f")])
    assert figures.exit_code == 0 and len(list((tmp_path / "f").glob("*.png"))) == 1


def test_embed_on_audio_files_gives_the_vectors_of_the_same_clips_in_a_store(trained_run, tmp_path):
    from fat.featurize.run import featurize_split
    from fat.featurize.settings import FeaturizeOptions
    from fat.predict.scoring import embed_split
    from tests.synthetic import make_fsd_layout

    _, run = trained_run
    trained = load_trained_model(run, "best")
    data = make_fsd_layout(tmp_path / "data", n_curated=1, n_test=3)
    store = tmp_path / "features.zarr"
    featurize_split(
        data, "test", store, trained.feature_config, FeaturizeOptions(workers=1, quiet=True)
    )
    (data / "test" / "broken.wav").write_bytes(b"RIFF not really")
    out = tmp_path / "emb.npy"
    result = CliRunner().invoke(
        main, ["embed", str(run), str(data / "test"), "--out", str(out), "--quiet"]
    )
    assert result.exit_code == 0, result.output
    assert "skipped" in result.output and "broken.wav" in result.output
    ids = (tmp_path / "emb.ids.txt").read_text().splitlines()[1:]
    assert [Path(i).name for i in ids] == ["test000.wav", "test001.wav", "test002.wav"]
    with open_store(store) as s:
        split = s.split("test")
        expected = embed_split(trained, split, PredictConfig())
        rows = [split.index_of(Path(i).name) for i in ids]
    np.testing.assert_array_equal(np.load(out), expected[rows].astype(np.float32))
    both = CliRunner().invoke(
        main, ["embed", str(run), str(data / "test"), "--store", str(store), "--out", str(out)]
    )
    assert both.exit_code == 1 and "not both" in both.output


def test_a_waveform_export_scores_a_wav_as_fat_tag_does(trained_run, tmp_path):
    import soundfile as sf

    from fat.predict.tagging import tag_files
    from tests.synthetic import make_fsd_layout

    _, run = trained_run
    out = tmp_path / "tagger.pt"
    args = ["export", str(run), "--format", "torchscript", "--waveform", "--out", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    manifest = json.loads(manifest_of(out).read_text())
    assert manifest["input"]["name"] == "waveform"
    rate = manifest["feature_config"]["sample_rate"]
    data = make_fsd_layout(tmp_path / "data", n_curated=1, n_test=3)
    short = data / "test" / "short.wav"  # shorter than one window: repeated to fill it
    sf.write(short, 0.2 * np.sin(np.arange(3000) / 7.0), rate, subtype="PCM_16")
    wide = np.stack([np.sin(np.arange(40000) / 5.0), np.cos(np.arange(40000) / 9.0)], 1)
    sf.write(data / "test" / "stereo.wav", 0.2 * wide, rate, subtype="PCM_16")
    tagged = tag_files(run, [data / "test"])
    exported = torch.jit.load(str(out))
    assert len(tagged.files) == 5
    for path, expected in zip(tagged.files, tagged.probs, strict=True):
        audio, file_rate = sf.read(path, dtype="float32")
        assert file_rate == rate
        with torch.no_grad():
            got = exported(torch.from_numpy(audio)).numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-4, err_msg=path.name)
    onnx = CliRunner().invoke(main, [*args[:3], "onnx", "--waveform", "--out", str(tmp_path / "x")])
    assert onnx.exit_code == 1 and "--waveform needs --format torchscript" in onnx.output
