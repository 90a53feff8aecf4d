"""Featurizing on many hosts: `fat featurize --shard I/N` and `fat store merge`."""

import subprocess

import numpy as np
import pytest
from click.testing import CliRunner

from fat.cli import main
from fat.core.errors import FatError
from fat.core.features import LogMelConfig
from fat.core.ids import parse_shard, shard_of
from fat.featurize.run import featurize_split
from fat.featurize.settings import FeaturizeOptions
from fat.store import open_store
from fat.store.merge import merge_stores
from tests.store.test_faults import tmpfs
from tests.synthetic import corrupt_frames, make_fsd_layout

CFG = LogMelConfig(n_mels=32)


def featurize(data, store, shard: str = "", split: str = "curated", cfg=CFG):
    options = FeaturizeOptions(workers=1, quiet=True, shard=shard)
    return featurize_split(data, split, store, cfg, options)


@pytest.fixture(scope="module")
def sharded(tmp_path_factory):
    root = tmp_path_factory.mktemp("shards")
    data = make_fsd_layout(root / "data", n_curated=14, n_test=5)
    for split in ("curated", "test"):
        featurize(data, root / "whole.zarr", split=split)
        for i in range(3):
            featurize(data, root / f"shard{i}.zarr", f"{i}/3", split)
    return root, data


def test_three_shards_merge_into_the_unsharded_store(sharded, tmp_path):
    root, _ = sharded
    shards = [root / f"shard{i}.zarr" for i in range(3)]
    with open_store(root / "whole.zarr") as whole:
        for i, path in enumerate(shards):  # each shard holds exactly its clips
            with open_store(path) as shard:
                ids = shard.split("curated").clip_ids
                assert ids and all(shard_of(c, 3) == i for c in ids)
        out = tmp_path / "merged.h5"  # another format on the way: the values must survive
        result = CliRunner().invoke(
            main, ["store", "merge", str(out), *map(str, shards), "--quiet"]
        )
        assert result.exit_code == 0, result.output
        assert "curated: 14 clips merged" in result.output
        with open_store(out) as merged:
            for name in ("curated", "test"):
                a, b = whole.split(name), merged.split(name)
                assert sorted(a.clip_ids) == sorted(b.clip_ids)
                assert a.feature_config == b.feature_config and a.vocabulary == b.vocabulary
                for clip_id in a.clip_ids:
                    np.testing.assert_array_equal(a.read(clip_id), b.read(clip_id))
                    assert a.labels_of(clip_id) == b.labels_of(clip_id)
                    k, j = a.index_of(clip_id), b.index_of(clip_id)
                    np.testing.assert_array_equal(a.source[k], b.source[j])
            assert merged.verify()[0] == []


def test_a_rerun_merge_continues_and_bad_inputs_are_refused(sharded, tmp_path):
    root, data = sharded
    shards = [root / f"shard{i}.zarr" for i in range(3)]
    out = tmp_path / "merged.zarr"
    first = merge_stores(out, shards[:1], progress=False)  # as if stopped after one input
    done = merge_stores(out, shards, progress=False)
    assert done.already["curated"] == first.added["curated"] > 0
    assert done.added["curated"] + done.already["curated"] == 14
    with pytest.raises(FatError, match="is in both"):
        merge_stores(tmp_path / "twice.zarr", [shards[0], shards[0]], progress=False)
    other = tmp_path / "other.zarr"
    featurize(data, other, "1/3", cfg=LogMelConfig(n_mels=16))
    with pytest.raises(FatError, match="other feature settings.*n_mels 32 vs 16"):
        merge_stores(tmp_path / "mixed.zarr", [shards[0], other], progress=False)
    damaged = tmp_path / "damaged.zarr"
    featurize(data, damaged, "2/3")
    corrupt_frames(damaged, 1)
    with pytest.raises(FatError, match="checksum"):
        merge_stores(tmp_path / "from-damaged.zarr", [shards[0], damaged], progress=False)


@pytest.mark.slow
def test_a_full_disk_while_merging_into_hdf5_is_one_line_and_a_rerun_completes(sharded, tmp_path):
    root, _ = sharded
    shards = [str(root / f"shard{i}.zarr") for i in range(3)]
    with tmpfs(tmp_path / "small", "400k") as disk:
        out = disk / "merged.h5"
        result = CliRunner().invoke(main, ["store", "merge", str(out), *shards, "--quiet"])
        lines = result.output.strip().splitlines()
        assert result.exit_code == 1 and len(lines) == 1, result.output
        assert lines[0].startswith(f"error: {out}: cannot write split")
        assert "No space left on device" in lines[0] and "rerun to continue" in lines[0]
        subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
        result = CliRunner().invoke(main, ["store", "merge", str(out), *shards, "--quiet"])
        assert result.exit_code == 0, result.output
        with open_store(out) as merged, open_store(root / "whole.zarr") as whole:
            assert merged.verify()[0] == []
            for name in ("curated", "test"):
                assert sorted(merged.split(name).clip_ids) == sorted(whole.split(name).clip_ids)


def test_shard_settings_are_checked():
    assert parse_shard("2/5") == (2, 5)
    for bad in ("5/5", "-1/3", "1", "a/b", "0/0"):
        with pytest.raises(FatError, match="shard must be I/N"):
            parse_shard(bad)
    with pytest.raises(FatError, match="shard must be I/N"):
        FeaturizeOptions(shard="3/3")
    # The assignment is a function of the id alone: the same on every host and run.
    assert shard_of("clip00001.wav", 7) == shard_of("clip00001.wav", 7)
    counts = np.bincount([shard_of(f"{i:06d}.wav", 4) for i in range(4000)], minlength=4)
    assert counts.min() > 900  # and it spreads the clips evenly
