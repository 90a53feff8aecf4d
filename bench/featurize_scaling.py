"""Where featurize stops scaling with threads: each stage of a worker's job on N threads, then
the whole `featurize_split`, on the same clips (x realtime; higher is better).

    python bench/featurize_scaling.py [--clips 600] [--workers 1,2,4,8,16] [--device cpu]

Stages, each run over every clip with N threads: decode; log-mel of audio already in RAM;
decode + log-mel + encode (a worker's whole job); and featurize_split, which adds the ordered
hand-off to the one writer and the store writes.
"""

import argparse
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np
from featurize import fat_run, write_clips  # bench/featurize.py: the same clips and call

from fat.core.features import LogMelConfig
from fat.featurize.audio import load_audio
from fat.featurize.run import ClipFeaturizer, compute_device


def on_threads(job, items: list, workers: int, make_state) -> float:
    """Seconds to run job(state, item) over `items` on `workers` threads, a state per thread."""
    local = threading.local()

    def run(item):
        if not hasattr(local, "state"):
            local.state = make_state()
        return job(local.state, item)

    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        for _ in pool.map(run, items):
            pass
    return time.perf_counter() - started


_featurizer: ClipFeaturizer | None = None


def _start_process(cfg: LogMelConfig, device: str) -> None:
    global _featurizer
    _featurizer = ClipFeaturizer(cfg, device)


def _featurize_in_process(path: Path) -> np.ndarray:
    """The stored frames, which return to the parent pickled, as a process pool's would."""
    return _featurizer(path.name, path, np.zeros(80, np.uint8)).clip.frames


def on_processes(paths: list[Path], workers: int, cfg: LogMelConfig, device: str) -> float:
    """Seconds for a worker's whole job over `paths` on `workers` spawned processes, the
    encoded clips pickled back as a process pool would return them; pool start-up excluded."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, context, _start_process, (cfg, device)) as pool:
        list(pool.map(_featurize_in_process, paths[:workers]))  # every process started
        started = time.perf_counter()
        list(pool.map(_featurize_in_process, paths, chunksize=4))
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=600)
    parser.add_argument("--workers", default=f"1,2,4,8,{os.cpu_count()}")
    parser.add_argument("--rounds", type=int, default=2, help="Median over rounds.")
    parser.add_argument("--device", default="cpu", help="Log-mel device: cpu or cuda[:N].")
    parser.add_argument("--format", default="zarr", choices=["zarr", "hdf5"])
    parser.add_argument("--switch-interval", type=float, help="sys.setswitchinterval, seconds.")
    parser.add_argument("--processes", action="store_true", help="Also the job on N processes.")
    args = parser.parse_args()
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    cfg = LogMelConfig()
    device = compute_device(args.device, workers=1)
    worker_counts = sorted({int(w) for w in args.workers.split(",")})
    tmp = Path(tempfile.mkdtemp(prefix="fat-bench-scaling-"))
    store = tmp / ("b.zarr" if args.format == "zarr" else "b.h5")
    try:
        audio_s = write_clips(tmp / "data", args.clips, seed=0)
        paths = sorted((tmp / "data" / "train_curated").glob("*.wav"))
        audio = [load_audio(p, cfg.sample_rate)[0] for p in paths]
        labels = np.zeros(80, np.uint8)
        stages = {
            "decode": (lambda _, p: load_audio(p, cfg.sample_rate), paths, lambda: None),
            "log-mel of audio in RAM": (
                lambda f, a: f.extract(a),
                audio,
                lambda: ClipFeaturizer(cfg, device),
            ),
            "decode + log-mel + encode": (
                lambda f, p: f(p.name, p, labels),
                paths,
                lambda: ClipFeaturizer(cfg, device),
            ),
        }
        for job, items, make in stages.values():  # compile, initialise CUDA
            on_threads(job, items[:4], 1, make)
        table: dict[str, dict[int, list[float]]] = {}
        for _ in range(args.rounds):
            for workers in worker_counts:
                for name, (job, items, make) in stages.items():
                    seconds = on_threads(job, items, workers, make)
                    table.setdefault(name, {}).setdefault(workers, []).append(seconds)
                if args.processes:
                    seconds = on_processes(paths, workers, cfg, device)
                    name = "decode + log-mel + encode, on processes"
                    table.setdefault(name, {}).setdefault(workers, []).append(seconds)
                summary, _ = fat_run(tmp / "data", store, cfg, workers, device, args.format)
                table.setdefault("featurize_split", {}).setdefault(workers, []).append(
                    summary.seconds
                )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        f"{args.clips} clips, {audio_s / 60:.1f} min of audio, log-mel on {device}, "
        f"{args.format} store, {os.cpu_count()} cores, switch interval "
        f"{sys.getswitchinterval() * 1e3:g} ms, x realtime, median of {args.rounds} rounds"
    )
    print("| stage | " + " | ".join(f"{w} threads" for w in worker_counts) + " |")
    print("|---|" + "---:|" * len(worker_counts))
    for name, by_workers in table.items():
        cells = [f"{audio_s / statistics.median(by_workers[w]):.0f}" for w in worker_counts]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
