"""The on-disk crop path (direct reads of the store's chunk files, or zarr for other layouts)
against the RAM path: the same crops, bit for bit, wherever a crop falls."""

import numpy as np
import pytest

from fat.core.errors import FatError
from fat.store import open_store
from fat.store.crops import gather_crops, prefetch_crops
from tests.synthetic import build_store


@pytest.mark.parametrize(
    "name, writer_kw, direct",
    [
        ("s.zarr", {"frames_chunk": 64}, True),
        ("s.zarr", {"frames_chunk": 64, "compression": "zstd"}, False),
        ("s.h5", {"frames_chunk": 64}, False),
    ],
    ids=["direct chunk reads", "zstd through zarr", "hdf5 crop by crop"],
)
def test_disk_crops_equal_ram_crops_across_chunks_and_short_clips(
    tmp_path, name, writer_kw, direct
):
    path = tmp_path / name
    build_store(path, 30, **writer_kw)
    rng = np.random.default_rng(0)
    with open_store(path) as store:
        disk = store.split("curated")
        ram = disk.load()
        assert (disk.direct is not None) == direct and not disk.in_memory
        assert np.array_equal(ram.read_rows(0, ram.n_frames), disk.read_rows(0, disk.n_frames))
        crop = 100  # longer than some clips (wrapped), across 64-frame chunk borders
        assert (disk.lengths < crop).any() and (disk.lengths > 2 * 64).any()
        for _ in range(20):
            clips = rng.integers(0, disk.n_clips, 16)
            starts = (rng.random(16) * np.maximum(disk.lengths[clips] - crop + 1, 1)).astype(int)
            prefetch_crops(disk, clips, starts, crop)
            got, own = gather_crops(disk, clips, starts, crop, prefetch=bool(rng.integers(2)))
            want, want_own = gather_crops(ram, clips, starts, crop)
            assert got.dtype == want.dtype and np.array_equal(got, want)
            assert np.array_equal(own, want_own)


def test_a_chunk_file_gone_from_under_a_reader_is_one_error_line(tmp_path):
    path = tmp_path / "s.zarr"
    build_store(path, 20, frames_chunk=64)
    with open_store(path) as store:
        split = store.split("curated")
        (path / "curated" / "frames" / "c.3.0").unlink()
        with pytest.raises(FatError, match=r"c\.3\.0: chunk file missing"):
            split.direct.read_runs(np.array([3 * 64]), 10)


def test_a_chunk_file_cut_short_is_a_damaged_store(tmp_path):
    path = tmp_path / "s.zarr"
    build_store(path, 20, frames_chunk=64)
    chunk = path / "curated" / "frames" / "c.2.0"
    chunk.write_bytes(chunk.read_bytes()[:100])
    with open_store(path) as store:
        with pytest.raises(FatError, match="chunk 2 cut short; damaged store"):
            store.split("curated").direct.read_runs(np.array([2 * 64 + 10]), 20)
