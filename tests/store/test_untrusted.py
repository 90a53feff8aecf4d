"""A store is untrusted input (people download and share them): every store here is made by
the package's own writer, then damaged or crafted with zarr, h5py or plain file calls, and every
command must refuse it with one `FatError` line, never read or write a file outside it, never
allocate by what it claims and never hang. Also a cut-short RF64 file, and the plain-reader
snippet of docs/store.md on a fresh split."""

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import h5py
import numpy as np
import pytest
import soundfile as sf
import zarr
from click.testing import CliRunner

from fat import store as fat_store
from fat.cli import main
from fat.core.errors import FatError
from fat.core.labels import official_vocabulary
from fat.core.lock import ExclusiveLock
from fat.featurize.audio import load_audio
from fat.store import open_store
from fat.store.backends import HDF5Backend
from fat.store.copy import copy_store
from fat.store.layout import SplitMeta
from fat.store.merge import merge_stores
from tests.synthetic import SMALL_CONFIG, build_store, synthetic_clip

ROOT = Path(__file__).parents[2]
VOCAB = official_vocabulary()
SECRET = b"top secret, outside the store\n"


def fat(*args) -> tuple[int, str]:
    """`fat ARGS` in this process: (exit code, stdout and stderr)."""
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


def fat_process(*args, timeout: float = 60) -> tuple[int, str]:
    """`fat ARGS` in a subprocess that may not outlive `timeout` (a hang fails the test)."""
    done = subprocess.run(
        [sys.executable, "-m", "fat", *map(str, args)],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT,
    )  # fmt: skip
    return done.returncode, done.stdout + done.stderr


def assert_one_error_line(code: int, out: str, *words: str) -> None:
    lines = out.strip().splitlines()
    assert code == 1 and "Traceback" not in out, out[-3000:]
    assert lines[-1].startswith("error: ") and all(w in lines[-1] for w in words), out[-3000:]


def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "outside" / "secret.txt"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(SECRET * 100)
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_script(code: str, *args: str) -> subprocess.Popen:
    """Python `code` in a subprocess (run from the repository root), stdout piped."""
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )


# A. Links and stray files inside a Zarr store


def store_with_links(tmp_path: Path, target: Path) -> Path:
    path = tmp_path / "links.zarr"
    build_store(path, 6)
    (path / "curated" / "frames" / "c.99.0").symlink_to(target)
    (path / "curated" / "zz.json").symlink_to(target)
    return path


def test_links_inside_a_store_are_refused_by_every_reader_copy_merge_and_export(tmp_path):
    secret = secret_file(tmp_path)
    path = store_with_links(tmp_path, secret)
    with pytest.raises(FatError, match=r"is a symbolic link \(to '.*secret.txt'\)"):
        open_store(path)
    for command in (
        ["store", "info", path],
        ["store", "verify", path],
        ["store", "ls", path, "curated"],
        ["store", "show", path, "curated", "clip00001.wav"],
        ["store", "export", path, "curated", tmp_path / "out.npz"],
        ["store", "copy", path, tmp_path / "copy.zarr"],
        ["store", "merge", tmp_path / "merged.zarr", path],
    ):
        code, out = fat(*command)
        assert_one_error_line(code, out, "symbolic link")
        assert re.search(r"'curated/(zz\.json|frames/c\.99\.0)'", out), out
    assert not (tmp_path / "out.npz").exists() and not (tmp_path / "copy.zarr").exists()
    with pytest.raises(FatError, match="symbolic link"):
        copy_store(path, tmp_path / "copy2.zarr", progress=False)
    with pytest.raises(FatError, match="symbolic link"):
        merge_stores(tmp_path / "merged2.zarr", [path], progress=False)
    assert secret.read_bytes() == SECRET * 100


def test_a_writer_never_opens_a_lock_file_that_is_a_link(tmp_path):
    """The holder writes its pid into the lock file: one that is a link is refused by name (it
    was an OSError traceback), never written through."""
    secret = secret_file(tmp_path)
    path = tmp_path / "s.zarr"
    build_store(path, 3)
    (path / "writer.lock").unlink()
    (path / "writer.lock").symlink_to(secret)
    with pytest.raises(FatError, match=r"'writer.lock' is a symbolic link"):
        open_store(path, "a")
    h5 = tmp_path / "s.h5"
    build_store(h5, 3)
    (tmp_path / "s.h5.lock").unlink()
    (tmp_path / "s.h5.lock").symlink_to(secret)
    with pytest.raises(FatError, match=r"lock file 's.h5.lock' is a symbolic link"):
        open_store(h5, "a")
    assert secret.read_bytes() == SECRET * 100


def test_a_fifo_inside_a_store_is_refused_not_waited_on(tmp_path):
    path = tmp_path / "fifo.zarr"
    build_store(path, 6)
    chunk = path / "curated" / "frames" / "c.0.0"
    chunk.unlink()
    os.mkfifo(chunk)
    for command in ("verify", "info"):
        code, out = fat_process("store", command, path, timeout=30)
        assert_one_error_line(code, out, "'curated/frames/c.0.0' is a FIFO")


def store_with_stray_files(tmp_path: Path) -> Path:
    path = tmp_path / "stray.zarr"
    build_store(path, 20, frames_chunk=64)
    (path / "curated" / "zz.json").write_bytes(SECRET)
    (path / "curated" / "frames" / "c.9999.0").write_bytes(SECRET)  # past the chunk grid
    (path / "curated" / "frames" / "notes.txt").write_bytes(SECRET)
    (path / "curated" / "ids" / "c.0.1").write_bytes(SECRET)  # a column the grid lacks
    (path / "README").write_bytes(SECRET)
    return path


def test_a_copy_takes_only_the_files_the_format_names(tmp_path):
    path = store_with_stray_files(tmp_path)
    out = tmp_path / "copy.zarr"
    code, text = fat("store", "copy", path, out, "--quiet")
    assert code == 0 and "every clip verified" in text, text
    stray = {"curated/zz.json", "curated/frames/c.9999.0", "curated/frames/notes.txt",
             "curated/ids/c.0.1", "README"}  # fmt: skip
    copied = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert not copied & stray, copied & stray
    assert "curated/frames/c.0.0" in copied and "curated/commit/c.0" in copied
    with open_store(path) as a, open_store(out) as b:
        x, y = a.split("curated"), b.split("curated")
        assert x.clip_ids == y.clip_ids
        np.testing.assert_array_equal(x.read_rows(0, x.n_frames), y.read_rows(0, y.n_frames))
        assert b.verify() == ([], [])


def test_object_storage_gets_no_link_targets_and_no_stray_files(tmp_path, bucket):
    import s3fs

    secret = secret_file(tmp_path)
    code, out = fat("store", "copy", store_with_links(tmp_path, secret), f"s3://{bucket}/l.zarr")
    assert_one_error_line(code, out, "symbolic link")
    fs = s3fs.S3FileSystem()
    fs.invalidate_cache()
    assert fs.ls(bucket) == []
    url = f"s3://{bucket}/stray.zarr"
    code, out = fat("store", "copy", store_with_stray_files(tmp_path), url, "--quiet")
    assert code == 0, out
    fs.invalidate_cache()
    keys = {k.split("/stray.zarr/", 1)[1] for k in fs.find(f"{bucket}/stray.zarr")}
    assert "curated/frames/c.0.0" in keys and "zarr.json" in keys
    assert not keys & {"curated/zz.json", "curated/frames/c.9999.0", "curated/frames/notes.txt",
                       "curated/ids/c.0.1", "README"}  # fmt: skip
    assert fat("store", "verify", url) == (0, f"{url}: OK\n")


# B. HDF5 objects whose data lies outside the file


def crafted_hdf5(tmp_path: Path, kind: str, outside: Path) -> Path:
    """A real store's arrays copied into a new file whose curated/frames is `kind`: a dataset
    with external storage in `outside`, a virtual dataset over a dataset of another file, or
    an external or soft link."""
    source = tmp_path / "real.h5"
    build_store(source, 6)
    path = tmp_path / f"crafted-{kind.replace(' ', '-')}.h5"
    with h5py.File(source, "r") as src, h5py.File(path, "w", libver="latest") as out:
        out.attrs.update(dict(src.attrs))
        group = out.create_group("curated")
        group.attrs.update(dict(src["curated"].attrs))
        for name, dataset in src["curated"].items():
            if name != "frames":
                src.copy(dataset, group, name=name)
        frames = src["curated/frames"]
        shape, dtype = frames.shape, frames.dtype
        nbytes = int(np.prod(shape)) * dtype.itemsize
        if kind == "external":
            group.create_dataset("frames", shape, dtype, external=[(str(outside), 0, nbytes)])
        elif kind == "virtual":
            other = tmp_path / "other.h5"
            with h5py.File(other, "w") as f:
                f["frames"] = frames[...]
            layout = h5py.VirtualLayout(shape, dtype)
            layout[...] = h5py.VirtualSource(str(other), "frames", shape)
            group.create_virtual_dataset("frames", layout)
        elif kind == "external link":
            other = tmp_path / "other.h5"
            with h5py.File(other, "w") as f:
                f["frames"] = frames[...]
            group["frames"] = h5py.ExternalLink(str(other), "/frames")
        else:
            elsewhere = out.create_group("elsewhere")
            src.copy(frames, elsewhere, name="frames")
            group["frames"] = h5py.SoftLink("/elsewhere/frames")
    return path


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("external", "a dataset with external storage (in '"),
        ("virtual", "a virtual dataset"),
        ("external link", "an external link (to '"),
        ("soft link", "'/curated/frames' is a soft link (to '/elsewhere/frames')"),
    ],
)
def test_hdf5_data_outside_the_file_is_refused(tmp_path, kind, reason):
    outside = tmp_path / "outside.bin"
    outside.write_bytes(SECRET * 10000)
    path = crafted_hdf5(tmp_path, kind, outside)
    with pytest.raises(FatError, match=re.escape(reason)):
        open_store(path)
    out = tmp_path / "export.npz"
    code, text = fat("store", "export", path, "curated", out, "--quiet")
    assert_one_error_line(code, text, "not opened")
    assert not out.exists()


def test_an_hdf5_dataset_stored_in_a_fifo_is_refused_without_a_hang(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    path = crafted_hdf5(tmp_path, "external", fifo)
    code, out = fat_process("store", "verify", path, timeout=30)
    assert_one_error_line(code, out, "external storage", "pipe")


# C. Sizes a store claims


def claim_clips(path: Path, n_clips: int) -> None:
    """Index arrays grown (in their metadata only) and the commit mark moved to `n_clips`."""
    if path.suffix == ".zarr":
        arrays = {p.name: zarr.open_array(p, mode="r+") for p in (path / "curated").iterdir()
                  if p.is_dir()}  # fmt: skip
        file = None
    else:
        file = h5py.File(path, "r+")
        arrays = dict(file["curated"].items())
    for name in ("offsets", "lengths", "ids", "labels", "source", "info", "checksums"):
        arrays[name].resize((n_clips, *arrays[name].shape[1:]))
    arrays["commit"][0] = n_clips
    if file is not None:
        file.close()


def refusal_and_peak_memory(path: Path) -> tuple[str, int]:
    """The error opening the curated split of `path` raises, and the most memory Python held
    meanwhile."""
    tracemalloc.start()
    try:
        with open_store(path) as store, pytest.raises(FatError) as error:
            store.split("curated")
        return str(error.value), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("fmt", ["zarr", "h5"])
def test_a_clip_count_the_arrays_do_not_hold_is_refused_before_allocating(tmp_path, fmt):
    path = tmp_path / f"s.{fmt}"
    build_store(path, 48)
    claim_clips(path, 2_000_000)  # 256 MB of ids alone, in a store of a few hundred KB
    error, peak = refusal_and_peak_memory(path)
    assert "commit mark (2000000 clips" in error and "damaged" in error
    assert peak < 32 << 20, f"{peak / 2**20:.0f} MiB allocated"
    started = time.monotonic()
    code, out = fat("store", "info", path)
    assert code == 1 and "unreadable: commit mark (2000000 clips" in out, out
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("fmt", ["zarr", "h5"])
@pytest.mark.parametrize(
    ("array", "value"),
    [("lengths", 2**31 - 1), ("offsets", -5), ("lengths", -3), ("lengths", 0)],
)
def test_an_offset_or_length_outside_the_frames_is_refused_where_read(tmp_path, fmt, array, value):
    path = tmp_path / f"s.{fmt}"
    build_store(path, 6)
    if fmt == "zarr":
        zarr.open_array(path / "curated" / array, mode="r+")[2] = value
    else:
        with h5py.File(path, "r+") as f:
            f["curated"][array][2] = value
    with open_store(path) as store, pytest.raises(FatError, match="clip 2: offset"):
        store.split("curated")
    for command in (
        ["store", "show", path, "curated", "clip00002.wav"],
        ["store", "export", path, "curated", tmp_path / "out.npz", "--quiet"],
    ):
        code, out = fat(*command)
        assert_one_error_line(code, out, "clip 2: offset", "do not fit the")
    code, out = fat("store", "verify", path)
    assert code == 1 and "problem: split curated: unreadable (clip 2: offset" in out, out


def test_a_vocabulary_or_mel_count_out_of_bounds_is_refused(tmp_path):
    path = tmp_path / "s.zarr"
    build_store(path, 3)
    meta_file = path / "curated" / "zarr.json"
    document = json.loads(meta_file.read_text())
    meta = document["attributes"]["meta"]
    for change, pattern in (
        ({"vocabulary": [f"c{i}" for i in range(200_000)]}, r"vocabulary size 200,000"),
        ({"feature_config": {**meta["feature_config"], "n_mels": 10**6}}, r"n_mels.*1,?000,?000"),
        ({"vocabulary": "a string, not names"}, r"vocabulary is not a list"),
        ({"frames_chunk": 0}, r"frames_chunk 0"),
        ({"info_bytes": 10**9}, r"info_bytes 1,000,000,000"),
    ):
        with pytest.raises(FatError, match=pattern):
            SplitMeta.from_dict({**meta, **change})
        document["attributes"]["meta"] = {**meta, **change}
        meta_file.write_text(json.dumps(document))
        code, out = fat("store", "info", path)
        assert code == 1 and re.search(pattern, out), out


def test_metadata_nested_too_deep_for_the_parser_is_one_error_line(tmp_path):
    path = tmp_path / "s.zarr"
    build_store(path, 3)
    (path / "curated" / "zarr.json").write_text("[" * 100_000 + "]" * 100_000)
    code, out = fat("store", "info", path)
    assert code == 1 and "metadata is not JSON (RecursionError)" in out, out


def test_a_zarr_chunk_that_decompresses_past_the_bound_is_refused_unread(tmp_path):
    """A gzip chunk of a few KB that decodes to 256 MiB, where fat writes raw index rows."""
    from zarr.codecs import GzipCodec

    path = tmp_path / "s.zarr"
    build_store(path, 48)
    folder = path / "curated" / "ids"
    ids = zarr.open_array(folder, mode="r")[:]
    shutil.rmtree(folder)
    bomb = zarr.create_array(
        folder, shape=(1 << 21, 128), chunks=(1 << 21, 128), dtype="uint8",
        compressors=[GzipCodec()], fill_value=0,
    )  # fmt: skip
    bomb[: len(ids)] = ids
    assert sum(f.stat().st_size for f in folder.iterdir()) < 2 << 20
    error, peak = refusal_and_peak_memory(path)
    assert "array 'ids'" in error and "chunks of 268,435,456 bytes" in error
    assert peak < 32 << 20, f"{peak / 2**20:.0f} MiB allocated"
    document = json.loads((folder / "zarr.json").read_text())
    document["chunk_grid"]["configuration"]["chunk_shape"] = [1024, 128]
    (folder / "zarr.json").write_text(json.dumps(document))
    with open_store(path) as store, pytest.raises(FatError, match="has codecs"):
        store.split("curated")


# D. Two writers through a hard link


def test_a_second_writer_through_a_hard_link_is_refused_and_leaves_the_file_alone(tmp_path):
    path = tmp_path / "s.h5"
    build_store(path, 5, split="noisy")
    link = tmp_path / "hard.h5"
    os.link(path, link)
    with open_store(path, "a") as store:
        with store.writer("noisy", SMALL_CONFIG, VOCAB, commit_every=3) as w:
            for i in range(5, 12):
                w.add(synthetic_clip(i))
            w.commit()
            before = digest(path)
            proc = subprocess.run(
                [sys.executable, "-m", "tests.store.writer_script", str(link), "30",
                 "--first", "1000"],
                cwd=ROOT, capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            assert proc.returncode == 1, proc.stdout + proc.stderr
            assert "another process" in proc.stdout and "writing this store" in proc.stdout
            assert "hard link" in proc.stdout
            assert digest(path) == before  # the refused writer never touched it
            for i in range(12, 20):
                w.add(synthetic_clip(i))
    assert not (tmp_path / "hard.h5.lock").exists()
    with open_store(link) as store:
        assert store.verify() == ([], [])
        assert store.split("noisy").clip_ids == [synthetic_clip(i).clip_id for i in range(20)]


def shrink_below_commit(path: Path, clips: int) -> None:
    """What a second writer's clean-up did: every array cut to its view of the split, which is
    shorter than the first writer's commit mark."""
    with h5py.File(path, "r+") as f:
        group = f["curated"]
        frames = int(group["offsets"][clips])
        for name, dataset in group.items():
            rows = {"frames": frames, "mel_stats": 2, "stats_for": 1, "commit": 4}.get(name, clips)
            dataset.resize((rows, *dataset.shape[1:]))


def test_a_split_cut_below_its_commit_is_rolled_back_by_the_writer_and_by_repair(tmp_path):
    path = tmp_path / "s.h5"
    build_store(path, 30, commit_every=8)
    shrink_below_commit(path, 20)
    repaired = tmp_path / "repaired.h5"
    shutil.copy(path, repaired)
    with open_store(path) as store:
        problems, _ = store.verify()
        assert problems and "commit mark (30 clips" in problems[0], problems
    with open_store(path, "a") as store:  # the writer's rerun (featurize) recovers, then goes on
        with store.writer("curated", SMALL_CONFIG, VOCAB) as w:
            assert "last good commit of 20 clips" in w.recovery
            for i in range(20, 30):
                w.add(synthetic_clip(i))
    reference = tmp_path / "reference.h5"
    build_store(reference, 30)
    with open_store(path) as a, open_store(reference) as b:
        assert a.verify() == ([], [])
        x, y = a.split("curated"), b.split("curated")
        assert x.clip_ids == y.clip_ids
        np.testing.assert_array_equal(x.read_rows(0, x.n_frames), y.read_rows(0, y.n_frames))
    lines = fat_store.repair_store(repaired)
    assert any("rolled back to its last good commit of 20 clips" in line for line in lines), lines
    with open_store(repaired) as store:
        assert store.verify() == ([], [])
        assert len(store.split("curated")) == 20
    assert fat_store.repair_store(repaired) == [f"{repaired}: nothing to repair"]


# E. A kill while an HDF5 store is compacted

KILLED_IN_COMPACTION = """
import sys
import h5py
from fat.store import open_store

copy = h5py.Group.copy
def slow_copy(self, *args, **kw):  # the real compaction, stopped after its first split
    copy(self, *args, **kw)
    print("copying", flush=True)
    import time; time.sleep(600)

h5py.Group.copy = slow_copy
with open_store(sys.argv[1], "a") as store:
    store.backend.compact()
"""


def test_a_kill_during_compaction_is_explained_to_readers_and_recovered(tmp_path):
    path = tmp_path / "s.h5"
    build_store(path, 20)
    build_store(path, 5, split="test")
    proc = run_script(KILLED_IN_COMPACTION, str(path))
    assert proc.stdout.readline().strip() == "copying"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (tmp_path / "s.h5.compact").exists()
    left = tmp_path / "left" / "s.h5"  # the same state, for what a reader that may not write says
    left.parent.mkdir()
    shutil.copy(path, left)
    shutil.copy(tmp_path / "s.h5.compact", left.parent)
    with open_store(path) as store:  # a reader that may write finishes it, as a writer would
        assert store.verify() == ([], [])
        assert store.splits() == ["curated", "test"] and len(store.split("curated")) == 20
    assert not (tmp_path / "s.h5.compact").exists()
    code, out = fat("store", "verify", path)
    assert code == 0, out
    with pytest.raises(fat_store.backends.InterruptedWriter) as error:
        HDF5Backend(left, writable=False)
    message = str(error.value)
    assert "a writer was killed while it rewrote the file" in message
    assert f"fat store repair {left}" in message and "nothing committed is lost" in message


def test_a_killed_non_swmr_writer_is_named_and_repaired(tmp_path):
    path = tmp_path / "s.h5"
    build_store(path, 6)
    proc = run_script(
        "import sys, time, h5py\n"
        "f = h5py.File(sys.argv[1], 'a', libver='latest')\n"
        "print('open', flush=True)\n"
        "time.sleep(600)\n",
        str(path),
    )
    assert proc.stdout.readline().strip() == "open"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed = "while it created, renamed or deleted a split"
    with pytest.raises(fat_store.backends.InterruptedWriter, match=killed):
        HDF5Backend(path, writable=False)
    code, out = fat("store", "repair", path)
    assert code == 0 and out.splitlines() == [
        "cleared the 'open for writing' mark a killed writer left"
    ], out
    assert fat("store", "repair", path)[1].strip() == f"{path}: nothing to repair"
    with open_store(path) as store:
        assert store.verify() == ([], [])


# F. An overwrite's swap killed between its renames


def half_swapped(tmp_path: Path, fmt: str, keep_split: bool = False) -> Path:
    """A replacement written whole as curated~new, then `curated` renamed to curated~old (the
    kill between the two renames); `keep_split`: a split there too (the kill after both)."""
    path = tmp_path / f"s.{fmt}"
    build_store(path, 5)
    with open_store(path, "a") as store:
        w = store.writer("curated", SMALL_CONFIG, VOCAB, overwrite=True)
        for i in range(100, 107):
            w.add(synthetic_clip(i))
        w.commit()
        w.update_stats()
    if fmt == "zarr":
        (path / "curated").rename(path / "curated~old")
        if keep_split:
            (path / "curated~new").rename(path / "curated")
    else:
        with h5py.File(path, "r+", libver="latest") as f:
            f.move("curated", "curated~old")
            if keep_split:
                f.move("curated~new", "curated")
    return path


def writer_lock(path: Path) -> ExclusiveLock:
    """The store's writer lock, as a live writer holds it."""
    lock_file = path / "writer.lock" if path.suffix == ".zarr" else Path(f"{path}.lock")
    return ExclusiveLock(lock_file, path, "writing this store")


@pytest.mark.parametrize("fmt", ["zarr", "h5"])
def test_a_half_swapped_split_is_named_while_it_cannot_be_finished_then_finished(tmp_path, fmt):
    path = half_swapped(tmp_path, fmt)
    with writer_lock(path):  # another writer at work: a reader may not finish the swap
        with open_store(path) as store:
            assert "curated" in store and store.splits() == ["curated"]
            with pytest.raises(FatError) as error:
                store.split("curated")
            for words in ("half-swapped", "curated~old", "curated~new", "fat store repair"):
                assert words in str(error.value)
            problems, notes = store.verify()
            assert len(problems) == 1 and problems[0].startswith("split curated: half-swapped")
            assert not any("invalid" in p or "not a valid" in p for p in problems)
            assert not any("unfinished --overwrite" in n for n in notes)
        code, out = fat("store", "info", path)
        assert code == 1 and "unreadable: half-swapped" in out, out
    with open_store(path) as store:  # no writer now: the reader finishes the swap
        assert store.splits() == ["curated"] and len(store.split("curated")) == 7
        assert store.verify() == ([], [])
    with open_store(path) as store:
        assert not {"curated~old", "curated~new"} & set(store.backend.group_names())


@pytest.mark.parametrize("fmt", ["zarr", "h5"])
def test_an_old_copy_left_beside_the_new_split_is_a_note_then_removed(tmp_path, fmt):
    path = half_swapped(tmp_path, fmt, keep_split=True)
    with writer_lock(path), open_store(path) as store:
        problems, notes = store.verify()
        assert problems == [] and any("'curated~old', the copy an --overwrite" in n for n in notes)
        assert len(store.split("curated")) == 7
    removed = "split curated: removed curated~old, the copy an --overwrite replaced"
    assert fat_store.repair_store(path) == [removed]
    with open_store(path) as store:
        assert store.verify() == ([], []) and "curated~old" not in store.backend.group_names()


# G. A cut-short RF64 file


@pytest.mark.parametrize("subtype", ["PCM_16", "FLOAT"])
def test_a_truncated_rf64_file_is_refused_like_a_truncated_riff(tmp_path, subtype):
    samples = np.random.default_rng(0).uniform(-0.5, 0.5, 44100).astype(np.float32)
    for container in ("WAV", "RF64"):
        whole = tmp_path / f"whole-{container}.wav"
        sf.write(whole, samples, 44100, format=container, subtype=subtype)
        audio, source = load_audio(whole, 44100)
        assert len(audio) == 44100 and source.duration_s == 1.0
        cut = tmp_path / f"cut-{container}.wav"
        cut.write_bytes(whole.read_bytes()[:-20000])
        with pytest.raises(FatError, match=r"truncated: header says \d+ bytes of audio"):
            load_audio(cut, 44100)


# H. The plain reader of docs/store.md


def documented_reader() -> dict:
    text = (ROOT / "docs" / "store.md").read_text()
    section = text[text.index("## Reading a store without fat") :]
    namespace: dict = {}
    exec(re.search(r"```python\n(.*?)```", section, re.S).group(1), namespace)
    return namespace


@pytest.mark.parametrize("fmt", ["zarr", "h5"])
def test_the_documented_plain_reader_reads_a_fresh_split_and_a_filled_one(tmp_path, fmt):
    read_split = documented_reader()["read_split"]
    path = tmp_path / f"s.{fmt}"
    with open_store(path, "a") as store:
        store.writer("fresh", SMALL_CONFIG, VOCAB).close()  # created, nothing committed
    clips = build_store(path, 9)
    ids, vocabulary, frames, labels = read_split(path, "fresh")
    assert (ids, vocabulary, frames, len(labels)) == ([], list(VOCAB), {}, 0)
    ids, vocabulary, frames, labels = read_split(path, "curated")
    assert ids == [c.clip_id for c in clips]
    for k, clip in enumerate(clips):
        np.testing.assert_array_equal(frames[clip.clip_id], clip.features)
        np.testing.assert_array_equal(labels[k], clip.labels)
