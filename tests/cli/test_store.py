import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from fat.cli import main
from fat.core.labels import official_vocabulary
from fat.store.layout import default_frames_chunk
from tests.synthetic import build_store, corrupt_frames, synthetic_clip


@pytest.fixture
def store(store_path):
    build_store(store_path, 12)
    return store_path


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_info_describes_splits_and_settings(store):
    result = run("store", "info", store)
    assert result.exit_code == 0, result.output
    assert "split curated" in result.output
    assert "clips      12" in result.output
    assert "x 16 mels (float16)" in result.output
    chunk = default_frames_chunk("zarr" if store.suffix == ".zarr" else "hdf5", "none")
    assert "hop_length=347" in result.output and f"chunking   {chunk} frames" in result.output


def test_ls_formats_and_label_filter(store):
    vocab = official_vocabulary()
    clips = [synthetic_clip(i) for i in range(12)]
    label = vocab[int(np.flatnonzero(clips[0].labels)[0])]
    expected = [c.clip_id for c in clips if c.labels[vocab.index(label)]]
    as_json = json.loads(
        run("store", "ls", store, "curated", "--format", "json", "--label", label).output
    )
    assert [row["id"] for row in as_json] == expected
    assert all(label in row["labels"].split(",") for row in as_json)
    as_csv = run("store", "ls", store, "curated", "--format", "csv").output.splitlines()
    assert as_csv[0] == "id,duration_s,frames,labels" and len(as_csv) == 13
    table = run("store", "ls", store, "curated").output
    assert "clip00011.wav" in table
    bad = run("store", "ls", store, "curated", "--label", "Woof")
    assert bad.exit_code == 1 and "not in the vocabulary" in bad.output


def test_show_prints_stats_and_renders_png(store, tmp_path):
    png = tmp_path / "clip.png"
    result = run("store", "show", store, "curated", "clip00003.wav", "--png", png)
    assert result.exit_code == 0, result.output
    assert "labels" in result.output and "44100 Hz, 2 channel(s)" in result.output
    with Image.open(png) as image:
        assert image.size[0] > 600 and image.size[1] > 300


def test_stats_counts_labels_and_draws(store, tmp_path):
    png = tmp_path / "stats.png"
    result = run("store", "stats", store, "curated", "--png", png)
    assert result.exit_code == 0, result.output
    total = sum(int(c.labels.sum()) for c in (synthetic_clip(i) for i in range(12)))
    counted = sum(
        int(line.split()[-1])
        for line in result.output.splitlines()[-20:]
        if line.split() and line.split()[-1].isdigit() and not line.startswith("clips")
    )
    assert counted == total
    assert png.stat().st_size > 10_000


def test_verify_ok_then_fails_on_corruption(store):
    assert run("store", "verify", store).exit_code == 0

    corrupt_frames(store, 5)
    result = run("store", "verify", store)
    assert result.exit_code == 1 and "checksum mismatch" in result.output


def test_export_writes_the_clip_as_npy(store, tmp_path):
    out = tmp_path / "x.npy"
    args = ("store", "export", store, "curated", out, "--format", "npy", "--clip", "clip00004.wav")
    assert run(*args).exit_code == 0
    np.testing.assert_array_equal(np.load(out), synthetic_clip(4).features)
    result = run("store", "export", store, "curated", tmp_path / "y.npy", "--format", "npy")
    assert result.exit_code == 1 and "exactly one --clip" in result.output


def expected_clips(n: int = 12):
    vocab = official_vocabulary()
    return [(c.clip_id, c.features.T, [vocab[k] for k in np.flatnonzero(c.labels)])
            for c in (synthetic_clip(i) for i in range(n))]  # fmt: skip


def test_export_npz_reads_back_with_numpy(store, tmp_path):
    out = tmp_path / "curated.npz"
    assert run("store", "export", store, "curated", out, "--quiet").exit_code == 0
    z = np.load(out)  # no pickle needed
    vocab = list(z["vocabulary"])
    assert json.loads(str(z["feature_config"]))["n_mels"] == 16
    for k, (clip_id, frames, names) in enumerate(expected_clips()):
        assert z["clip_ids"][k] == clip_id
        got = z["frames"][z["offsets"][k] : z["offsets"][k] + z["lengths"][k]]
        np.testing.assert_array_equal(got, frames)
        assert [vocab[j] for j in np.flatnonzero(z["labels"][k])] == names
    again = run("store", "export", store, "curated", out)
    assert again.exit_code == 1 and "already exists" in again.output


def test_export_hf_reads_back_with_datasets(store, tmp_path):
    datasets = pytest.importorskip("datasets", reason="the hf extra is not installed")
    out = tmp_path / "curated-hf"
    assert run("store", "export", store, "curated", out, "--format", "hf", "--quiet").exit_code == 0
    dataset = datasets.load_from_disk(str(out)).with_format("numpy")
    names = dataset.features["labels"].feature.names
    assert len(dataset) == 12 and names == list(official_vocabulary())
    for row, (clip_id, frames, labels) in zip(dataset, expected_clips(), strict=True):
        assert row["clip_id"] == clip_id
        np.testing.assert_array_equal(row["log_mel"], frames)
        assert [names[j] for j in row["labels"]] == labels
    assert not list(tmp_path.glob(".curated-hf*"))  # nothing partial left beside it


def test_export_lhotse_reads_back_with_lhotse(store, tmp_path):
    lhotse = pytest.importorskip("lhotse", reason="the lhotse extra is not installed")
    out = tmp_path / "curated-lhotse"
    args = ("store", "export", store, "curated", out, "--format", "lhotse", "--quiet")
    assert run(*args, "--clip", "clip00003.wav", "--clip", "clip00007.wav").exit_code == 0
    cuts = lhotse.CutSet.from_file(out / "cuts.jsonl.gz")
    wanted = {c[0]: c for c in expected_clips()}
    assert [cut.id for cut in cuts] == ["clip00003.wav", "clip00007.wav"]
    for cut in cuts:
        _, frames, labels = wanted[cut.id]
        np.testing.assert_array_equal(cut.load_features(), frames)
        assert cut.custom["labels"] == labels and cut.supervisions[0].custom["labels"] == labels
        assert cut.num_frames == len(frames)


def test_errors_are_one_line_without_traceback(store, tmp_path):
    for args in (
        ("store", "show", store, "curated", "nope.wav"),
        ("store", "ls", store, "noisy"),
        ("store", "info", tmp_path / "absent.zarr"),
    ):
        result = run(*args)
        assert result.exit_code == 1
        assert result.output.startswith("error: ") and result.output.count("\n") == 1
