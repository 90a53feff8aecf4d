"""Stores on object storage, against a real S3-compatible server on 127.0.0.1 (`s3_server`):
`fat store copy` both ways, killed and rerun; the store commands, training (streamed, with
the chunk cache, and resumed) and prediction reading s3:// URLs; what is refused."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fat.cli import main
from fat.core.errors import FatError
from fat.store import open_store
from fat.store.layout import UNFINISHED_COPY
from fat.store.remote import ChunkCacheSpec, cache_size, evict
from fat.train.loop import train
from tests.store.test_faults import tmpfs
from tests.synthetic import build_store, tiny_run


@pytest.fixture(scope="module")
def local_store(tmp_path_factory) -> Path:
    """Two splits in small chunks (64 frames), so a split spans hundreds of chunk files."""
    path = tmp_path_factory.mktemp("objects") / "features.zarr"
    build_store(path, 60, split="curated", frames_chunk=64)
    build_store(path, 12, split="test", frames_chunk=64)
    return path


def fat(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


def assert_same_store(a, b) -> None:
    with open_store(a) as x, open_store(b) as y:
        assert x.splits() == y.splits()
        for name in x.splits():
            s, t = x.split(name), y.split(name)
            assert s.clip_ids == t.clip_ids and s.meta == t.meta
            np.testing.assert_array_equal(s.labels, t.labels)
            np.testing.assert_array_equal(s.checksums, t.checksums)
            np.testing.assert_array_equal(s.read_rows(0, s.n_frames), t.read_rows(0, t.n_frames))


def test_a_store_copied_to_object_storage_reads_as_the_local_one(local_store, bucket):
    url = f"s3://{bucket}/features.zarr"
    code, out = fat("store", "copy", local_store, url, "--quiet")
    assert code == 0, out
    assert "curated:" in out and "every clip verified" in out
    assert_same_store(local_store, url)
    for command in (["info"], ["ls", "curated"], ["show", "curated", "clip00003.wav"]):
        local, remote = (
            fat("store", *command[:1], local_store, *command[1:])[1],
            fat("store", *command[:1], url, *command[1:])[1],
        )
        assert remote.replace(url, str(local_store)) == local, command
    assert fat("store", "verify", url) == (0, f"{url}: OK\n")
    assert fat("store", "copy", local_store, url, "--quiet")[1].endswith("nothing to do\n")


def test_what_object_storage_refuses_is_one_line(local_store, bucket, tmp_path):
    url = f"s3://{bucket}/features.zarr"
    assert fat("store", "copy", local_store, url, "--quiet")[0] == 0
    with pytest.raises(FatError, match="read-only"):
        open_store(url, "a")
    for command in (
        ["featurize", "--data-dir", tmp_path, "--split", "curated", "--store", url],
        ["store", "merge", url, local_store],
    ):
        code, out = fat(*command)
        assert code == 1 and "read-only to fat" in out and len(out.splitlines()) == 1, out
    assert not Path("s3:").exists()  # no local folder made of the URL
    code, out = fat("store", "info", f"s3://{bucket}/features.h5")
    assert code == 1 and "HDF5 stores on object storage are not supported" in out
    code, out = fat("store", "info", f"s3://{bucket}/nothing.zarr")
    assert (code, out) == (
        1,
        f"error: s3://{bucket}/nothing.zarr: no such store (nothing at that URL)\n",
    )
    code, out = fat("store", "copy", local_store, url, "--quiet")
    assert code == 0  # the same store again: nothing to do
    other = tmp_path / "other.zarr"
    build_store(other, 3)
    code, out = fat("store", "copy", other, url, "--quiet")
    assert code == 1 and "not empty and not an unfinished copy" in out
    env = {**os.environ, "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}  # nothing listens there
    result = subprocess.run(
        [sys.executable, "-m", "fat", "store", "info", url],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 1 and "cannot reach the object store" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_copy_killed_midway_is_never_read_and_its_rerun_equals_the_source(
    local_store, bucket, tmp_path
):
    url = f"s3://{bucket}/features.zarr"
    assert fat("store", "copy", local_store, url, "--quiet")[0] == 0
    back = tmp_path / "back.zarr"
    command = [sys.executable, "-m", "fat", "store", "copy", url, str(back), "--quiet"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if len(list((back / "curated" / "frames").glob("c.*"))) >= 20:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.002)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the copy finished before it could be killed"
    assert (back / UNFINISHED_COPY).exists()
    with pytest.raises(FatError, match="has not finished; run that copy again"):
        open_store(back)
    code, out = fat("store", "info", back)
    assert code == 1 and "has not finished" in out
    code, out = fat("store", "copy", url, back, "--quiet")
    assert code == 0, out
    assert "already there" in out and not out.startswith("curated: 0 files")
    assert not (back / UNFINISHED_COPY).exists()
    assert not list(back.rglob("*.partial"))
    assert_same_store(local_store, back)


def test_a_damaged_file_on_arrival_leaves_the_copy_unfinished(local_store, bucket, tmp_path):
    import s3fs

    url = f"s3://{bucket}/features.zarr"
    assert fat("store", "copy", local_store, url, "--quiet")[0] == 0
    fs = s3fs.S3FileSystem()
    key = f"{bucket}/features.zarr/curated/frames/c.5.0"
    data = bytearray(fs.cat_file(key))
    data[100] ^= 0xFF  # one flipped byte in the remote copy: the same size, other frames
    fs.pipe_file(key, bytes(data))
    back = tmp_path / "back.zarr"
    code, out = fat("store", "copy", url, back, "--quiet")
    assert code == 1 and "checksum" in out and "run the copy again" in out, out
    assert (back / UNFINISHED_COPY).exists()


def test_training_streams_from_object_storage_through_a_bounded_chunk_cache(
    local_store, bucket, tmp_path
):
    url = f"s3://{bucket}/features.zarr"
    assert fat("store", "copy", local_store, url, "--quiet")[0] == 0
    out = tmp_path / "run"
    streamed = dict(memory_budget_gb=0.0, chunk_cache_gb=1.0, epochs=1)
    train(*tiny_run(url, out, **streamed))
    cache = out / "chunk-cache"
    cached = [p for p in cache.rglob("c.*") if p.is_file()]
    assert cached, "no chunk was cached"
    with open_store(local_store) as store:
        split = store.split("curated")
        chunk = split.frames_chunks[0] * split.frames_chunks[1] * 2
        assert len(cached) <= split.n_frames // 64 and all(
            p.stat().st_size == chunk for p in cached
        )
    for p in cached:
        os.utime(p, (1000, 1000))  # a chunk served from the cache again gets a new time
    train(*tiny_run(url, out, **{**streamed, "epochs": 2}), resume=True)
    assert any(p.stat().st_mtime > 1000 for p in cached), "epoch 2 fetched every chunk again"
    with open_store(url) as store:
        assert len(store.split("curated")) == 60  # read through, not changed
    code, text = fat("predict", out, "--quiet")
    assert code == 0, text
    code, text = fat("predict", out, "--store", local_store, "--out", tmp_path / "local.csv")
    assert code == 0, text
    assert (out / "submission_test.csv").read_text() == (tmp_path / "local.csv").read_text()
    small = tmp_path / "small"
    train(*tiny_run(url, small, memory_budget_gb=0.0, chunk_cache_gb=40e3 / 2**30, epochs=1))
    assert 0 < cache_size(small / "chunk-cache") <= 40e3


def test_chunks_once_cached_are_served_from_the_cache(local_store, bucket, tmp_path):
    url = f"s3://{bucket}/features.zarr"
    assert fat("store", "copy", local_store, url, "--quiet")[0] == 0
    spec = ChunkCacheSpec(str(tmp_path / "cache"), 1 << 30)
    with open_store(url, chunk_cache=spec) as store:
        split = store.split("curated")
        every_row = np.arange(split.n_frames)
        original = split.gather_rows(every_row)  # what streaming reads: through the cache
    cached = sorted((tmp_path / "cache").rglob("c.*"))
    assert len(cached) == split.n_frames // 64  # every full chunk; the last, partial one not
    for p in cached:  # change the cached copies only: what is read next shows where from
        p.write_bytes(bytes(p.stat().st_size))
    with open_store(url, chunk_cache=spec) as store:
        again = store.split("curated").gather_rows(every_row)
    assert not again[: 64 * len(cached)].any()
    np.testing.assert_array_equal(again[64 * len(cached) :], original[64 * len(cached) :])
    with open_store(url) as store:  # loaded into RAM: many chunk objects fetched at once
        loaded = store.split("curated").load()
        np.testing.assert_array_equal(loaded.read_rows(0, split.n_frames), original)
    with open_store(local_store) as store:
        np.testing.assert_array_equal(store.split("curated").read_rows(0, split.n_frames), original)


def test_the_chunk_cache_evicts_the_least_recently_used_first(tmp_path):
    for i in range(10):
        path = tmp_path / "a" / f"c.{i}.0"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(bytes(100))
        os.utime(path, (1000 + i, 1000 + i))
    assert evict(tmp_path, 450) == 400
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [f"c.{i}.0" for i in range(6, 10)]


@pytest.mark.slow
def test_a_full_disk_while_copying_from_object_storage_is_one_line_and_a_rerun_completes(
    local_store, bucket, tmp_path
):
    url = f"s3://{bucket}/features.zarr"
    assert fat("store", "copy", local_store, url, "--quiet")[0] == 0
    with tmpfs(tmp_path / "small", "200k") as disk:
        back = disk / "back.zarr"
        code, out = fat("store", "copy", url, back, "--quiet")
        lines = out.strip().splitlines()
        assert code == 1 and len(lines) == 1 and lines[0].startswith("error: "), out
        assert "disk is full" in lines[0] and "No space left on device" in lines[0]
        assert not list(disk.rglob(".*.tmp")) and not list(disk.rglob("*.partial"))
        subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
        code, out = fat("store", "copy", url, back, "--quiet")
        assert code == 0 and "every clip verified" in out, out
        assert_same_store(local_store, back)
