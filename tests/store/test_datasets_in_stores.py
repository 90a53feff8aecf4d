"""What a store keeps of the data set a split came from: its name, whether clips carry one
label, its class ids, and each clip's facts; and what it refuses to mix."""

import dataclasses
import shutil

import pytest

from fat.core.errors import FatError
from fat.core.labels import official_vocabulary
from fat.store import open_store
from fat.store.merge import merge_stores
from tests.synthetic import SMALL_CONFIG, build_store, synthetic_clip


def write(path, split, clips, **kw):
    with open_store(path, "a") as store:
        with store.writer(split, SMALL_CONFIG, official_vocabulary(), **kw) as writer:
            for clip in clips:
                writer.add(clip)


def test_clip_facts_and_data_set_facts_survive_a_round_trip_and_a_merge(store_path, tmp_path):
    clips = [
        dataclasses.replace(synthetic_clip(i), info={"fold": 1 + i % 5, "source": f"s{i // 2}"})
        for i in range(12)
    ]
    ids = tuple(f"/m/{i:03d}" for i in range(80))
    write(store_path, "train", clips, dataset="esc50", single_label=True, class_ids=ids)
    with open_store(store_path) as store:
        split = store.split("train")
        assert split.dataset == "esc50" and split.single_label and split.meta.class_ids == ids
        assert [split.info(i)["fold"] for i in range(12)] == [1 + i % 5 for i in range(12)]
        assert split.info(3) == {"fold": 4, "source": "s1"}
    merged = tmp_path / "merged.zarr"
    merge_stores(merged, [store_path], progress=False)
    with open_store(merged) as store:
        split = store.split("train")
        assert split.dataset == "esc50" and split.info(11) == {"fold": 2, "source": "s5"}


def test_facts_too_long_for_their_row_are_refused_naming_the_clip(tmp_path):
    clip = dataclasses.replace(synthetic_clip(0), info={"note": "x" * 200})
    with pytest.raises(FatError, match=r"clip 'clip00000.wav': clip facts .* at most 128 bytes"):
        write(tmp_path / "s.zarr", "train", [clip])


def test_a_store_holds_one_data_set_and_one_set_of_features(tmp_path):
    path = tmp_path / "s.zarr"
    build_store(path, 4, split="curated")
    with pytest.raises(FatError, match="holds fat2019 splits .* goes into another store"):
        write(path, "train", [synthetic_clip(9)], dataset="fsd50k")
    other = dataclasses.replace(SMALL_CONFIG, n_mels=8)
    with open_store(path, "a") as store, pytest.raises(FatError, match="every split of a store"):
        store.writer("test", other, official_vocabulary())


def test_verify_flags_a_store_that_mixes_feature_settings(tmp_path):
    path, elsewhere = tmp_path / "s.zarr", tmp_path / "o.zarr"
    build_store(path, 4, split="curated")
    small = dataclasses.replace(SMALL_CONFIG, n_mels=8)
    with open_store(elsewhere, "a") as store:
        with store.writer("test", small, official_vocabulary()) as writer:
            writer.add(synthetic_clip(1, n_mels=8))
    shutil.copytree(elsewhere / "test", path / "test")  # as older versions let it happen
    with open_store(path) as store:
        problems, _ = store.verify()
    assert any("split test: feature settings differ from split curated's" in p for p in problems)
