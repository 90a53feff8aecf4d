"""A store's format from its contents when its name has no .zarr/.h5 suffix."""

from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from fat.cli import main
from fat.core.errors import FatError
from fat.core.labels import official_vocabulary
from fat.store import open_store
from fat.store.backends import STORE_FORMAT, STORE_FORMAT_VERSION
from tests.synthetic import SMALL_CONFIG, build_store, make_fsd_layout, synthetic_clip

FORMATS = {".zarr": "zarr", ".h5": "hdf5"}


def suffixless(store_path: Path, n_clips: int = 8) -> tuple[Path, list]:
    """A store built by the package at `store_path`, then renamed to a name without suffix."""
    clips = build_store(store_path, n_clips)
    bare = store_path.with_name("features")
    store_path.rename(bare)
    return bare, clips


def test_a_store_without_a_suffix_is_read_and_appended_by_its_contents(store_path):
    bare, clips = suffixless(store_path)
    with open_store(bare) as store:
        assert store.format == FORMATS[store_path.suffix]
        split = store.split("curated")
        assert split.clip_ids == [c.clip_id for c in clips]
        for clip in clips:
            stored = split.read(clip.clip_id)
            assert np.array_equal(stored.view(np.uint16), clip.features.view(np.uint16))
    with open_store(bare, "a") as store:
        with store.writer("more", SMALL_CONFIG, official_vocabulary()) as writer:
            writer.add(synthetic_clip(99))
    with open_store(bare) as store:
        assert store.splits() == ["curated", "more"]
        assert store.split("more").clip_ids == ["clip00099.wav"]
        assert store.verify() == ([], [])


def test_store_info_reads_a_store_without_a_suffix(store_path):
    bare, _ = suffixless(store_path)
    result = CliRunner().invoke(main, ["store", "info", str(bare)])
    assert result.exit_code == 0, result.output
    assert f"format   {FORMATS[store_path.suffix]}" in result.output
    assert "clips      8" in result.output


def test_an_hdf5_store_behind_a_user_block_is_recognised(tmp_path):
    path = tmp_path / "blocked.h5"
    with h5py.File(path, "w", userblock_size=1024, libver="latest") as f:
        f.attrs.update({"format": STORE_FORMAT, "format_version": STORE_FORMAT_VERSION})
    clips = build_store(path, 4)
    bare = path.with_name("blocked")
    path.rename(bare)
    assert bare.read_bytes()[:8] != b"\x89HDF\r\n\x1a\n"  # the signature sits at 1024
    with open_store(bare) as store:
        assert store.format == "hdf5"
        assert store.split("curated").clip_ids == [c.clip_id for c in clips]


def test_a_new_store_without_a_suffix_is_refused_naming_what_to_do(tmp_path):
    new = tmp_path / "features"
    with pytest.raises(FatError) as caught:
        open_store(new, "a")
    message = str(caught.value)
    assert "name it features.zarr (Zarr) or features.h5 (HDF5)" in message
    assert "--format" not in message and "\n" not in message
    assert list(tmp_path.iterdir()) == []  # refused before anything was made
    with pytest.raises(FatError, match="features: no such store"):
        open_store(new)


def test_something_else_without_a_suffix_is_not_taken_for_a_store(tmp_path):
    (tmp_path / "notes").write_text("not a store")
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "a.wav").write_bytes(b"RIFF")
    for name in ("notes", "folder"):
        for mode in ("r", "a"):
            with pytest.raises(FatError, match="not a fat feature store"):
                open_store(tmp_path / name, mode)
    assert (tmp_path / "notes").read_text() == "not a store"
    assert sorted(p.name for p in (tmp_path / "folder").iterdir()) == ["a.wav"]


def test_featurize_into_a_new_suffixless_store_names_its_format_option(tmp_path):
    data = make_fsd_layout(tmp_path / "data", n_curated=2, n_test=1)
    args = ["featurize", "--data-dir", str(data), "--split", "curated", "--workers", "1"]
    refused = CliRunner().invoke(main, [*args, "--store", str(tmp_path / "feats"), "--quiet"])
    assert refused.exit_code == 1
    assert refused.output.splitlines() == [
        f"error: {tmp_path / 'feats'}: a new store's format follows its suffix, and this name "
        "has none of .zarr, .h5; name it feats.zarr (Zarr) or feats.h5 (HDF5), "
        "or pass --format zarr|hdf5"
    ]
    made = CliRunner().invoke(
        main, [*args, "--store", str(tmp_path / "feats"), "--format", "hdf5", "--quiet"]
    )
    assert made.exit_code == 0, made.output
    again = CliRunner().invoke(main, [*args, "--store", str(tmp_path / "feats"), "--quiet"])
    assert again.exit_code == 0, again.output
    assert "0 clips written, 2 already in the store" in again.output
