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
    assert run("store", "export", store, "curated", "clip00004.wav", out).exit_code == 0
    np.testing.assert_array_equal(np.load(out), synthetic_clip(4).features)


def test_errors_are_one_line_without_traceback(store, tmp_path):
    for args in (
        ("store", "show", store, "curated", "nope.wav"),
        ("store", "ls", store, "noisy"),
        ("store", "info", tmp_path / "absent.zarr"),
    ):
        result = run(*args)
        assert result.exit_code == 1
        assert result.output.startswith("error: ") and result.output.count("\n") == 1
