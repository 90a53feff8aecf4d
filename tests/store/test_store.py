import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zarr

from fat.core.errors import FatError
from fat.core.features import LogMelConfig
from fat.core.labels import official_vocabulary
from fat.store import ClipRecord, encode_clip, open_store
from fat.store.float16 import to_float16_with_sums
from tests.synthetic import SMALL_CONFIG, build_store, corrupt_frames, synthetic_clip


def test_round_trip_reads_exact_values(store_path):
    clips = build_store(store_path, 40, commit_every=7)
    with open_store(store_path) as store:
        split = store.split("curated")
        assert split.n_clips == 40
        assert split.clip_ids == [c.clip_id for c in clips]
        for i, clip in enumerate(clips):
            assert np.array_equal(split.read(i), clip.features)
            assert np.array_equal(split.read(clip.clip_id), clip.features)
            assert np.array_equal(split.labels[i], clip.labels)
        assert split.source[3].tolist() == [44100, 2, clips[3].features.shape[1] / 127]
        assert split.feature_config == SMALL_CONFIG
        assert split.vocabulary == official_vocabulary()


def test_encoded_clip_pickles_without_the_unrounded_features():
    """Featurize's worker processes send encoded clips back pickled: the stored frames and the
    facts a commit records, not the float32 log-mel they were rounded from."""
    features = np.random.default_rng(0).normal(size=(128, 500)).astype(np.float32)
    clip = ClipRecord("a.wav", features, np.eye(80, dtype=np.uint8)[3], 22050, 2, 1.5)
    encoded = encode_clip(clip, "float16")

    raw = pickle.dumps(encoded, protocol=pickle.HIGHEST_PROTOCOL)
    back = pickle.loads(raw)

    assert len(raw) < encoded.frames.nbytes + 4096
    assert np.array_equal(back.frames, encoded.frames) and back.checksum == encoded.checksum
    assert np.array_equal(back.sums, encoded.sums)
    r = back.record
    assert (r.clip_id, r.source_sample_rate, r.source_channels, r.source_duration_s) == (
        "a.wav",
        22050,
        2,
        1.5,
    )
    assert np.array_equal(r.labels, clip.labels)
    assert np.array_equal(r.features, encoded.frames.T)


def test_zarr_and_hdf5_hold_identical_values(tmp_path):
    build_store(tmp_path / "a.zarr", 25)
    build_store(tmp_path / "a.h5", 25)
    with open_store(tmp_path / "a.zarr") as z, open_store(tmp_path / "a.h5") as h:
        a, b = z.split("curated"), h.split("curated")
        assert np.array_equal(a.read_rows(0, a.n_frames), b.read_rows(0, b.n_frames))
        assert np.array_equal(a.offsets, b.offsets) and np.array_equal(a.labels, b.labels)
        np.testing.assert_array_equal(a.stats[0], b.stats[0])


def test_crops_across_chunk_boundaries(store_path):
    clips = build_store(store_path, 30, frames_chunk=64)
    with open_store(store_path) as store:
        split = store.split("curated")
        rng = np.random.default_rng(1)
        for _ in range(200):
            i = int(rng.integers(30))
            n = clips[i].features.shape[1]
            length = int(rng.integers(1, n + 1))
            start = int(rng.integers(0, n - length + 1))
            crop = split.read_crop(i, start, length)
            assert np.array_equal(crop, clips[i].features[:, start : start + length])
        with pytest.raises(FatError, match="outside clip"):
            split.read_crop(0, 0, clips[0].features.shape[1] + 1)


def test_in_memory_path_matches_disk_and_respects_budget(store_path):
    build_store(store_path, 20)
    with open_store(store_path) as store:
        split = store.split("curated")
        memory = split.load()
        assert memory.in_memory and not split.in_memory
        for i in range(20):
            assert np.array_equal(memory.read(i), split.read(i))
        assert np.array_equal(memory.read_crop(5, 1, 2), split.read_crop(5, 1, 2))
        with pytest.raises(FatError, match="over the budget"):
            split.load(budget_bytes=split.nbytes() - 1)


def test_stats_are_per_mel_mean_and_std(store_path):
    clips = build_store(store_path, 12)
    everything = np.concatenate([c.features.astype(np.float64) for c in clips], axis=1)
    with open_store(store_path) as store:
        mean, std = store.split("curated").stats
    np.testing.assert_allclose(mean, everything.mean(axis=1), rtol=1e-9)
    np.testing.assert_allclose(std, everything.std(axis=1), rtol=1e-6)
    # A resumed writer cannot use its running sums (they miss the earlier clips): same result.
    with open_store(store_path, "a") as store:
        with store.writer("curated", SMALL_CONFIG, official_vocabulary()) as writer:
            writer.add(synthetic_clip(12))
        split = store.split("curated")
        np.testing.assert_allclose(split.stats[0], split.compute_stats()[0], rtol=1e-9)
        np.testing.assert_allclose(split.stats[1], split.compute_stats()[1], rtol=1e-6)


def test_resume_appends_after_last_commit(store_path):
    build_store(store_path, 10)
    with open_store(store_path, "a") as store:
        writer = store.writer("curated", SMALL_CONFIG, official_vocabulary())
        assert writer.committed == {f"clip{i:05d}.wav" for i in range(10)}
        with writer:
            with pytest.raises(FatError, match="already has clip"):
                writer.add(synthetic_clip(3))
            for i in range(10, 15):
                writer.add(synthetic_clip(i))
    with open_store(store_path) as store:
        split = store.split("curated")
        assert split.n_clips == 15 and store.verify() == ([], [])
        assert np.array_equal(split.read(14), synthetic_clip(14).features)


def test_other_feature_settings_are_refused_and_overwrite_recreates(store_path):
    build_store(store_path, 5)
    other = LogMelConfig(n_mels=16, hop_length=512)
    with open_store(store_path, "a") as store:
        with pytest.raises(FatError, match="hop_length: 347 != 512"):
            store.writer("curated", other, official_vocabulary())
        with store.writer("curated", other, official_vocabulary(), overwrite=True) as writer:
            assert writer.n_clips == 0
            writer.add(synthetic_clip(0))
    with open_store(store_path) as store:
        assert store.split("curated").feature_config.hop_length == 512
        assert store.split("curated").n_clips == 1


@pytest.mark.parametrize("bad_id", ["../evil.wav", "a/b.wav", "..", ".hidden", "a\\b", ""])
def test_path_traversal_ids_are_rejected(store_path, bad_id):
    with open_store(store_path, "a") as store:
        writer = store.writer("curated", SMALL_CONFIG, official_vocabulary())
        clip = synthetic_clip(0)
        with pytest.raises(FatError):
            writer.add(ClipRecord(bad_id, clip.features, clip.labels, 44100, 1, 1.0))
        with pytest.raises(FatError):
            store.writer("../outside", SMALL_CONFIG, official_vocabulary())
    assert not (store_path.parent / "evil.wav").exists()
    assert not (store_path.parent / "outside").exists()


def test_second_writer_is_refused_with_a_clear_message(store_path):
    with open_store(store_path, "a"):
        with pytest.raises(FatError, match=r"another process \(pid \d+\) is writing"):
            open_store(store_path, "a")
    with open_store(store_path, "a"):  # released on close
        pass


def test_reader_sees_commits_while_writer_appends(store_path):
    build_store(store_path, 4)
    with open_store(store_path, "a") as writer_store, open_store(store_path) as reader:
        assert reader.split("curated").n_clips == 4
        with writer_store.writer("curated", SMALL_CONFIG, official_vocabulary()) as writer:
            for i in range(4, 9):
                writer.add(synthetic_clip(i))
            writer.commit()
            reader.refresh()
            split = reader.split("curated")
            assert split.n_clips == 9
            assert np.array_equal(split.read(8), synthetic_clip(8).features)


def test_unknown_format_and_missing_store_are_clear_errors(tmp_path):
    with pytest.raises(FatError, match="suffix"):
        open_store(tmp_path / "x.bin", "a")
    with pytest.raises(FatError, match="no such store"):
        open_store(tmp_path / "missing.zarr")
    (tmp_path / "plain.h5").write_bytes(b"not hdf5 at all")
    with pytest.raises(FatError, match="not a fat feature store"):
        open_store(tmp_path / "plain.h5")


def test_verify_catches_deliberate_corruption(store_path):
    clips = build_store(store_path, 10)
    with open_store(store_path) as store:
        assert store.verify() == ([], [])
        target = int(store.split("curated").offsets[6]) + 1
    corrupt_frames(store_path, target)
    with open_store(store_path) as store:
        problems, _ = store.verify()
    assert problems == [
        f"split curated: clip {clips[6].clip_id}: checksum mismatch (data changed since written)"
    ]


def test_verify_catches_broken_index(tmp_path):
    path = tmp_path / "s.zarr"
    build_store(path, 6)
    lengths = zarr.open_array(path / "curated" / "lengths", mode="r+")
    lengths[2] = lengths[2] + 5
    with open_store(path) as store:
        problems, _ = store.verify()
    assert any("offset" in p for p in problems)
    assert any("lengths sum" in p for p in problems)


ROOT = Path(__file__).parents[2]


def _run_writer(path: Path, n_clips: int, kill_after_commits: int | None, delay: float):
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.store.writer_script", str(path), str(n_clips)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    seen = 0
    if kill_after_commits is not None:
        for line in proc.stdout:
            if line.startswith("committed"):
                seen += 1
                if seen >= kill_after_commits:
                    time.sleep(delay)  # lands the kill at an arbitrary point of later work
                    os.kill(proc.pid, signal.SIGKILL)
                    break
    proc.communicate(timeout=120)
    return proc.returncode


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["zarr", "h5"])
def test_sigkill_during_appends_leaves_a_valid_store_and_rerun_completes(tmp_path, fmt):
    path = tmp_path / f"kill.{fmt}"
    n_clips = 600  # far more than four short runs can write, so every run is killed mid-way
    rng = np.random.default_rng(7)
    previous = 0
    kills = 0
    for _ in range(4):
        code = _run_writer(path, n_clips, int(rng.integers(1, 6)), float(rng.uniform(0, 0.01)))
        if code == 0:
            break
        assert code == -signal.SIGKILL
        kills += 1
        with open_store(path) as store:
            problems, _ = store.verify()
            assert problems == []
            split = store.split("noisy")
            # exactly a prefix of the clip sequence: everything committed, nothing partial
            assert split.clip_ids == [f"clip{i:05d}.wav" for i in range(split.n_clips)]
            assert split.n_clips >= previous
            for i in range(split.n_clips):
                assert np.array_equal(split.read(i), synthetic_clip(i).features)
            previous = split.n_clips
    assert kills >= 3, "the writer finished before it could be killed: test proves nothing"
    assert _run_writer(path, n_clips, None, 0) == 0
    reference = tmp_path / f"reference.{fmt}"
    assert _run_writer(reference, n_clips, None, 0) == 0
    with open_store(path) as resumed, open_store(reference) as uninterrupted:
        a, b = resumed.split("noisy"), uninterrupted.split("noisy")
        assert resumed.verify() == ([], [])
        assert a.clip_ids == b.clip_ids
        assert np.array_equal(a.read_rows(0, a.n_frames), b.read_rows(0, b.n_frames))
        np.testing.assert_allclose(a.stats[0], b.stats[0])


def test_float16_rounding_and_sums_equal_numpy() -> None:
    """Every float16 value, the midpoints between neighbours (ties to even) and one float32 step
    either side, plus random float32 values; then zeros, subnormals, overflow, inf and NaN,
    which take numpy's cast."""
    half = np.arange(2**16, dtype=np.uint16).view(np.float16)
    exact = np.sort(half[np.isfinite(half) & (np.abs(half) >= 2**-14)].astype(np.float32))
    exact = exact[np.abs(exact) < 65504]
    mids = ((exact[1:].astype(np.float64) + exact[:-1]) / 2).astype(np.float32)
    near = np.concatenate([exact, mids])
    near = near[(np.abs(near) >= 2**-14) & (np.abs(near) < 65504)]
    rng = np.random.default_rng(0)
    normal = np.concatenate(
        [
            near,
            np.nextafter(near, np.float32(np.inf)),
            np.nextafter(near, np.float32(-np.inf)),
            rng.normal(-40, 30, 200_000).astype(np.float32),
        ]
    )
    normal = normal[: len(normal) // 64 * 64].reshape(-1, 64)
    # Each value outside float16's normal range alone in an array: any one must be noticed.
    odd_ones = [np.inf, -np.inf, np.nan, 65519.99, 1e-30, -0.0, 0.0, 3e-6, -6e-7]
    arrays = [normal]
    for value in odd_ones:
        arrays.append(normal.copy())
        arrays[-1][5, 9] = value

    for values in arrays:
        got16, sums = to_float16_with_sums(values)

        with np.errstate(over="ignore", invalid="ignore"):
            want = values.astype(np.float16)
        assert got16.shape == values.shape and got16.dtype == np.float16
        number = ~np.isnan(want)
        assert np.array_equal(got16.view(np.uint16)[number], want.view(np.uint16)[number])
        assert np.isnan(got16[~number]).all()
        stored = want.astype(np.float64)
        np.testing.assert_allclose(sums[0], stored.sum(axis=0), rtol=1e-12)
        np.testing.assert_allclose(sums[1], np.square(stored).sum(axis=0), rtol=1e-12)


def test_the_plain_zarr_h5py_reader_of_docs_store_md_reads_the_store(store_path):
    import re

    text = (Path(__file__).parents[2] / "docs" / "store.md").read_text()
    section = text[text.index("## Reading a store without fat") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace: dict = {}
    exec(code, namespace)  # the documented snippet, as a reader would paste it
    clips = build_store(store_path, 7)
    ids, vocabulary, frames, labels = namespace["read_split"](store_path, "curated")
    assert ids == [c.clip_id for c in clips] and vocabulary == list(official_vocabulary())
    for k, clip in enumerate(clips):
        np.testing.assert_array_equal(frames[clip.clip_id], clip.features)
        np.testing.assert_array_equal(labels[k], clip.labels)
