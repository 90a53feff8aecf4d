"""The store under faults and hostile input: a full disk, storage that loses acknowledged writes,
two writers through two paths, interrupted overwrites, readers of a replaced split, damaged and
crafted stores. Each fault is made for real (a tmpfs, SIGKILL, a second process)."""

import json
import os
import pickle
import random
import shutil
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np
import pytest
import zarr

from fat.core.errors import FatError
from fat.core.labels import official_vocabulary
from fat.store import open_store, repair_store
from fat.store.crops import gather_crops
from tests.synthetic import SMALL_CONFIG, build_store, corrupt_frames, synthetic_clip

ROOT = Path(__file__).parents[2]
VOCAB = official_vocabulary()


def writer(path: Path, n_clips: int, *args: str, **popen) -> subprocess.Popen:
    """tests/store/writer_script.py in a subprocess: appends clips and prints each commit."""
    command = [sys.executable, "-m", "tests.store.writer_script", str(path), str(n_clips), *args]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True, **popen)


def run_writer(path: Path, n_clips: int, *args: str) -> tuple[int, str]:
    proc = writer(path, n_clips, *args)
    out, _ = proc.communicate(timeout=300)
    return proc.returncode, out


def kill_after(proc: subprocess.Popen, commits: int) -> None:
    seen = 0
    for line in proc.stdout:
        seen += line.startswith("committed")
        if seen >= commits:
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.communicate(timeout=60)


def stored(path: Path, split: str = "noisy") -> tuple[list[str], np.ndarray]:
    with open_store(path) as store:
        s = store.split(split)
        return s.clip_ids, np.asarray(s.read_rows(0, s.n_frames))


@contextmanager
def tmpfs(where: Path, size: str):
    """A small tmpfs mounted at `where` (root only; the test is skipped where it cannot be)."""
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or 'not root'})")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["zarr", "h5"])
def test_a_full_disk_keeps_the_last_commit_and_a_rerun_completes(tmp_path, fmt):
    with tmpfs(tmp_path / "small", "2m") as disk:
        path = disk / f"s.{fmt}"
        code, out = run_writer(path, 1000)
        lines = out.strip().splitlines()
        assert code == 1, out[-2000:]  # not a crash, not a traceback
        assert lines[-1].startswith("error: ") and "No space left on device" in lines[-1]
        assert "keeps its last commit of" in lines[-1] and "rerun" in lines[-1]
        ids, frames = stored(path)
        assert 0 < len(ids) < 1000 and ids == [f"clip{i:05d}.wav" for i in range(len(ids))]
        with open_store(path) as store:
            assert store.verify()[0] == []
        subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
        code, out = run_writer(path, 1000)
        assert code == 0, out[-2000:]
        reference = tmp_path / f"reference.{fmt}"
        assert run_writer(reference, 1000)[0] == 0
        a, b = stored(path), stored(reference)
        assert a[0] == b[0] and np.array_equal(a[1], b[1])


def test_a_full_disk_while_hdf5_gives_back_an_overwrite_space_is_one_line_then_repaired(
    tmp_path,
):
    with tmpfs(tmp_path / "small", "7m") as disk:
        path = disk / "s.h5"
        assert run_writer(path, 200)[0] == 0
        code, out = run_writer(path, 200, "--first", "300", "--overwrite")
        lines = out.strip().splitlines()
        assert code == 1 and lines[-1].startswith("error: "), out[-2000:]  # no traceback
        assert "the disk is full" in lines[-1] and "fat store repair" in lines[-1]
        assert sorted(p.name for p in disk.iterdir()) == ["s.h5", "s.h5.lock"]  # no .compact
        ids, _ = stored(path)
        assert ids == [f"clip{i:05d}.wav" for i in range(300, 500)]  # the replacement, whole
        with open_store(path) as store:
            assert store.verify()[0] == [] and store.splits() == ["noisy"]
        swollen = path.stat().st_size
        subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
        assert repair_store(path) == [
            "rewrote the file without its holes (a full disk had stopped that)"
        ]
        assert path.stat().st_size < 0.7 * swollen and stored(path)[0] == ids
        assert repair_store(path) == [f"{path}: nothing to repair"]  # the mark is gone


@pytest.mark.parametrize("fmt", ["zarr", "h5"])
def test_a_last_commit_that_does_not_read_back_is_rolled_back(tmp_path, fmt):
    """Storage that acknowledged writes and then lost them (HDF5's cache on a full disk): the
    next writer re-verifies the last commit's clips and moves the mark back before them."""
    path = tmp_path / f"s.{fmt}"
    build_store(path, 20, commit_every=8)  # commits of 8, 8, then 4 clips at close
    with open_store(path) as store:
        split = store.split("curated")
        assert split.index.previous == (16, int(split.offsets[16]))
        lost = int(split.offsets[18]) + 2
    corrupt_frames(path, lost)
    with open_store(path, "a") as store:
        with store.writer("curated", SMALL_CONFIG, VOCAB) as w:
            assert w.recovery and "clip00018.wav" in w.recovery and "16 before it" in w.recovery
            assert w.n_clips == 16
            for i in range(16, 20):
                w.add(synthetic_clip(i))
        assert store.verify() == ([], [])
        assert store.split("curated").clip_ids == [f"clip{i:05d}.wav" for i in range(20)]


@pytest.mark.parametrize("fmt", ["zarr", "h5"])
def test_two_paths_to_one_store_share_its_writer_lock(tmp_path, fmt):
    path = tmp_path / f"s.{fmt}"
    build_store(path, 3)
    link = tmp_path / f"link.{fmt}"
    link.symlink_to(path)
    with open_store(path, "a"):
        code, out = run_writer(link, 5, "--split", "curated")
    assert code == 1 and "another process" in out and "is writing this store" in out
    with open_store(link, "a") as store:  # once the first writer is gone, the link works
        assert len(store.split("curated")) == 3


def damaged_copies(path: Path, out: Path) -> list[Path]:
    """Copies of a store file with garbage written over parts of it, or cut short."""
    size = path.stat().st_size
    rng = random.Random(1)
    copies = []
    for i, (where, n) in enumerate(
        [(200, 512), (size // 2, 4096), (size - 4096, 4096), (4096, 20000)]
    ):
        copy = out / f"damaged{i}.h5"
        shutil.copy(path, copy)
        with open(copy, "r+b") as f:
            f.seek(where)
            f.write(bytes(rng.getrandbits(8) for _ in range(n)))
        copies.append(copy)
    for i, keep in enumerate([1000, size // 3]):
        copy = out / f"truncated{i}.h5"
        shutil.copy(path, copy)
        os.truncate(copy, keep)
        copies.append(copy)
    return copies


def test_no_command_hangs_or_tracebacks_on_a_damaged_hdf5_file(tmp_path):
    build_store(tmp_path / "good.h5", 60)
    for copy in damaged_copies(tmp_path / "good.h5", tmp_path):
        for command in (["store", "verify"], ["store", "info"]):
            done = subprocess.run(
                [sys.executable, "-m", "fat", *command, str(copy)],
                capture_output=True,
                text=True,
                timeout=60,  # a hang fails here
            )
            output = done.stdout + done.stderr
            # info reads no frames, so damage among them leaves it nothing to report
            assert done.returncode == (1 if "verify" in command else done.returncode), output
            assert done.returncode in (0, 1) and "Traceback" not in output, (copy.name, output)


@pytest.mark.parametrize("fmt", ["zarr", "h5"])
def test_an_interrupted_overwrite_keeps_the_old_split_and_its_rerun_continues(tmp_path, fmt):
    path = tmp_path / f"s.{fmt}"
    assert run_writer(path, 30)[0] == 0
    old = stored(path)
    # Killed after two commits of the replacement (clips 100..), before it was complete.
    kill_after(writer(path, 60, "--first", "100", "--overwrite", "--pause", "0.05"), 2)
    assert stored(path)[0] == old[0] and np.array_equal(stored(path)[1], old[1])
    with open_store(path) as store:
        problems, notes = store.verify()
        assert problems == [] and any("unfinished --overwrite" in n for n in notes)
    # An error inside the writer (Ctrl-C, a bug) keeps the old split too.
    other = tmp_path / f"other.{fmt}"
    shutil.copytree(path, other) if fmt == "zarr" else shutil.copy(path, other)
    with open_store(other, "a") as store, pytest.raises(KeyboardInterrupt):
        with store.writer("noisy", SMALL_CONFIG, VOCAB, overwrite=True, commit_every=3) as w:
            w.add(synthetic_clip(500))
            raise KeyboardInterrupt
    assert stored(other)[0] == old[0]
    code, out = run_writer(path, 60, "--first", "100", "--overwrite")
    assert code == 0 and int(out.splitlines()[0].split()[1]) >= 6  # continued, not restarted
    reference = tmp_path / f"reference.{fmt}"
    assert run_writer(reference, 60, "--first", "100")[0] == 0
    a, b = stored(path), stored(reference)
    assert a[0] == b[0] and np.array_equal(a[1], b[1])
    with open_store(path) as store:
        assert store.verify() == ([], [])


def test_a_swap_killed_half_way_is_finished_by_the_next_writer(tmp_path):
    path = tmp_path / "s.zarr"
    build_store(path, 5)
    with open_store(path, "a") as store:  # a replacement written whole, then the swap began
        w = store.writer("curated", SMALL_CONFIG, VOCAB, overwrite=True)
        for i in range(100, 107):
            w.add(synthetic_clip(i))
        w.commit()
        w.update_stats()
    (path / "curated").rename(path / "curated~old")  # killed between the two renames
    with open_store(path, "a") as store:
        assert store.recovered == ["split curated: finished the --overwrite a kill interrupted"]
        assert len(store.split("curated")) == 7 and store.splits() == ["curated"]
    assert not (path / "curated~old").exists() and not (path / "curated~new").exists()


def test_a_reader_of_a_replaced_split_gets_an_error_not_zeros(tmp_path):
    path = tmp_path / "s.zarr"
    assert run_writer(path, 40)[0] == 0
    with open_store(path) as store:
        split = store.split("noisy")
        clips, starts = np.arange(10), np.zeros(10, np.int64)
        before, _ = gather_crops(split, clips, starts, 3)
        assert np.abs(before).sum() > 0
        pickled = pickle.dumps(split)
        # Another process replaces the split (different clips, fewer frames).
        assert run_writer(path, 5, "--first", "500", "--overwrite")[0] == 0
        with pytest.raises(FatError, match="replaced or deleted while this process read it"):
            gather_crops(split, clips, starts, 3)
        with pytest.raises(FatError, match="replaced since this process first opened it"):
            pickle.loads(pickled)  # what a DALI worker does


def test_a_reader_in_a_second_process_sees_only_whole_commits(tmp_path):
    path = tmp_path / "s.zarr"
    proc = writer(path, 90, "--pause", "0.02")
    seen = set()
    while proc.poll() is None or not seen:
        try:
            with open_store(path) as store:
                if "noisy" not in store:
                    continue
                split = store.split("noisy")
                n = split.n_clips
                assert split.clip_ids == [f"clip{i:05d}.wav" for i in range(n)]
                for i in range(0, n, 7):
                    assert np.array_equal(split.read(i), synthetic_clip(i).features)
                seen.add(n)
        except FatError as e:
            assert "no such store" in str(e) or "not a fat feature store" in str(e)
    assert proc.wait(timeout=60) == 0
    assert len(seen) >= 3  # several distinct commits were read while the writer ran


def test_repeated_hdf5_overwrites_do_not_grow_the_file(tmp_path):
    path = tmp_path / "s.h5"
    sizes = []
    for _ in range(4):
        with open_store(path, "a") as store:
            with store.writer("curated", SMALL_CONFIG, VOCAB, overwrite=True) as w:
                for i in range(60):
                    w.add(synthetic_clip(i))
        sizes.append(path.stat().st_size)
    assert max(sizes) <= sizes[0] * 1.05, sizes


def test_crafted_ids_and_split_names_are_refused_when_read(tmp_path):
    path = tmp_path / "s.zarr"
    build_store(path, 3)
    ids = zarr.open_array(path / "curated" / "ids", mode="r+")
    evil = np.zeros(128, np.uint8)
    evil[: len(b"../../evil")] = np.frombuffer(b"../../evil", np.uint8)
    ids[1] = evil
    with open_store(path) as store, pytest.raises(FatError, match="path separator.*damaged"):
        store.split("curated")
    build_store(tmp_path / "t.zarr", 3)
    (tmp_path / "t.zarr" / "curated").rename(tmp_path / "t.zarr" / "a b")
    with open_store(tmp_path / "t.zarr") as store:
        assert store.splits() == []
        (problem,) = store.verify()[0]
        assert problem.startswith(
            "split 'a b': not a valid split name (clip id 'a b' has characters"
        )


def test_an_hdf5_writer_is_told_when_a_reader_holds_the_file(tmp_path):
    path = tmp_path / "s.h5"
    build_store(path, 3)
    with open_store(path) as store:
        store.split("curated")
        code, out = run_writer(path, 5, "--split", "curated")
    assert code == 1 and "open by another process for reading" in out
    assert "use a Zarr store for concurrent reads" in out and "errno" not in out


@pytest.mark.parametrize("damage", ["metadata", "index chunk", "frames chunk"])
def test_verify_and_info_report_an_unreadable_split(tmp_path, damage):
    path = tmp_path / "s.zarr"
    build_store(path, 30)
    build_store(path, 5, split="test")
    if damage == "metadata":
        meta_file = path / "curated" / "zarr.json"
        doc = json.loads(meta_file.read_text())
        del doc["attributes"]["meta"]["vocabulary"]
        meta_file.write_text(json.dumps(doc))
    else:
        array = "ids" if damage == "index chunk" else "frames"
        chunk = path / "curated" / array / "c.0.0"
        os.truncate(chunk, chunk.stat().st_size // 3)
    for command in ("verify", "info"):
        done = subprocess.run(
            [sys.executable, "-m", "fat", "store", command, str(path)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        output = done.stdout + done.stderr
        reads_frames = command == "verify" or damage != "frames chunk"  # info reads no frames
        assert done.returncode == (1 if reads_frames else 0) and "Traceback" not in output, output
        if reads_frames:
            assert "unreadable" in output and "curated" in output
        assert "split test" in output or command == "verify"  # the other split is still shown
    if damage == "metadata":
        assert "lacks 'vocabulary'" in output


def test_a_store_of_a_newer_format_is_refused(tmp_path):
    path = tmp_path / "s.zarr"
    build_store(path, 2)
    root = json.loads((path / "zarr.json").read_text())
    root["attributes"].update(format_version=99, tool_version="9.9.0")
    (path / "zarr.json").write_text(json.dumps(root))
    with pytest.raises(FatError) as error:
        open_store(path)
    assert "written by fat 9.9.0 (store format 99)" in str(error.value)
    assert "this is fat" in str(error.value) and str(error.value).endswith("upgrade fat")


def test_foreign_paths_are_refused_without_side_effects(tmp_path):
    a_file = tmp_path / "file.zarr"
    a_file.write_text("not a store")
    for mode in ("r", "a"):
        with pytest.raises(FatError, match="is a file, not a Zarr store"):
            open_store(a_file, mode)
    foreign = tmp_path / "foreign.zarr"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(FatError, match="without zarr.json"):
        open_store(foreign, "a")
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]
    other_h5 = tmp_path / "other.h5"
    with h5py.File(other_h5, "w") as f:
        f["x"] = np.arange(3)
    with pytest.raises(FatError, match="no fat store marker"):
        open_store(other_h5, "a")
    assert not (tmp_path / "other.h5.lock").exists()
