"""The GPU check: the full-width CNN and the GCNN trained for a fixed number of steps on a
FAT-size synthetic store through every input path, then once under torchrun (NCCL), printing
samples/s, the share of step time spent waiting for data and peak GPU memory. Any error fails
the check (exit 1) after the other paths have run.

    python bench/gpu_check.py [--store S | --scale 1.0] [--steps 40] [--json OUT]
    python bench/gpu_check.py --device cpu --scale 0.002 --width 0.0625 --batch-size 8 --steps 3

Paths: RAM + DALI (on a GPU its pipeline copies to the device), RAM + torch DataLoader (pinned
memory on a GPU), the splits resident in GPU memory, and the noisy and curated splits on disk
(Zarr, direct chunk reads, DALI with parallel workers). Each run trains two epochs of --steps
steps with bf16 autocast (the trainer's default on CUDA); the figures are the second epoch's,
after cuDNN's autotuning and the pipelines' start. On a CPU the GPU-only paths are skipped.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from scale import DATASETS, write_store  # noqa: E402 - the sibling script, run from anywhere

from fat.runs.history import load_run  # noqa: E402
from fat.runs.settings import ExperimentConfig, RunOptions  # noqa: E402
from fat.train.loop import train  # noqa: E402

# name: (loader, data_device, memory_budget_gb or None for the machine's default, workers)
PATHS = {
    "RAM + DALI": ("dali", "cpu", None, 0),
    "RAM + torch": ("torch", "cpu", None, 4),
    "GPU-resident": ("torch", "cuda", None, 0),
    "disk (Zarr) + DALI": ("dali", "cpu", 0.0, 4),
    "disk (Zarr) + torch": ("torch", "cpu", 0.0, 4),
}
GPU_ONLY = {"GPU-resident"}


def has_dali() -> bool:
    from fat.train.loaders import dali_unavailable

    return dali_unavailable() is None


def experiment_for(arch: str, args: argparse.Namespace) -> ExperimentConfig:
    return ExperimentConfig(
        arch=arch,
        width=args.width,
        train_splits=("curated", "noisy"),
        val_fraction=0.0,  # nothing to validate: the check times training steps
        epochs=2,
        steps_per_epoch=args.steps,
        batch_size=args.batch_size,
        crop_frames=128,
        seed=0,
    )


def one_run(arch: str, path: str, store: Path, out: Path, args: argparse.Namespace) -> dict:
    loader, data_device, budget, workers = PATHS[path]
    options = RunOptions(
        store=str(store),
        out=str(out),
        device=args.device,
        loader=loader,
        data_device=data_device,
        memory_budget_gb=budget,
        workers=min(workers, os.cpu_count() or 1),
        log_every=10,
        quiet=True,
    )
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    began = time.perf_counter()
    summary = train(experiment_for(arch, args), options)
    peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None
    return {
        "arch": arch,
        "path": path,
        "samples_per_s": round(summary.samples_per_s, 1),
        "data_wait": round(summary.data_wait_frac, 4),
        "gpu_memory_gib": None if peak is None else round(peak, 2),
        "wall_s": round(time.perf_counter() - began, 1),
    }


def torchrun_run(store: Path, out: Path, args: argparse.Namespace) -> dict:
    """The CNN through `torchrun --nproc_per_node 1`: the DDP set-up (NCCL on a GPU)."""
    e = experiment_for("cnn", args)
    flags = {
        "arch": e.arch,
        "width": e.width,
        "train-splits": ",".join(e.train_splits),
        "val-fraction": e.val_fraction,
        "epochs": e.epochs,
        "steps-per-epoch": e.steps_per_epoch,
        "batch-size": e.batch_size,
        "device": args.device,
        "loader": "dali" if has_dali() else "torch",
    }
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "1",
        "--master_port",
        str(29500 + os.getpid() % 1000),
        "-m",
        "fat",
        "train",
        "--store",
        str(store),
        "--out",
        str(out),
        "--quiet",
        *[part for k, v in flags.items() for part in (f"--{k}", str(v))],
    ]
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"torchrun exited {done.returncode}: {done.stderr[-2000:]}")
    last = load_run(out).metrics.iloc[-1]
    return {
        "arch": "cnn",
        "path": "torchrun --nproc_per_node 1 (the default input path)",
        "samples_per_s": round(float(last["samples_per_s"]), 1),
        "data_wait": round(float(last["data_wait_frac"]), 4),
        "gpu_memory_gib": None,  # another process's
        "wall_s": round(time.perf_counter() - began, 1),
    }


def table(rows: list[dict]) -> str:
    lines = ["| arch | path | samples/s | data wait | GPU memory GiB | wall s |", "|---" * 6 + "|"]
    for r in rows:
        memory = "" if r["gpu_memory_gib"] is None else f"{r['gpu_memory_gib']:.2f}"
        lines.append(
            f"| {r['arch']} | {r['path']} | {r['samples_per_s']:,.0f} | {r['data_wait']:.1%} | "
            f"{memory} | {r['wall_s']:.0f} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=None, help="A store to reuse.")
    parser.add_argument("--scale", type=float, default=1.0, help="Synthetic store size.")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--archs", default="cnn,gcnn")
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=40, help="Steps per epoch (two epochs).")
    parser.add_argument("--no-torchrun", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    on_gpu = args.device.startswith("cuda")
    if on_gpu and not torch.cuda.is_available():
        print("gpu check: no CUDA device here (use --device cpu for a dry run)")
        return 1
    work = Path(tempfile.mkdtemp(prefix="fat-gpu-check-"))
    store = args.store
    if store is None:
        store = work / "fat2019.zarr"
        began = time.perf_counter()
        write_store(store, DATASETS["fat2019"], args.scale, seed=0)
        print(f"wrote {store} in {time.perf_counter() - began:.0f} s", flush=True)
    rows, failures = [], []
    skipped = [p for p in PATHS if p in GPU_ONLY and not on_gpu]
    skipped += [p for p in PATHS if PATHS[p][0] == "dali" and not has_dali()]
    for path in skipped:
        print(f"skipped: {path} ({'no GPU' if path in GPU_ONLY else 'nvidia-dali not installed'})")
    runs = [(a, p) for a in args.archs.split(",") for p in PATHS if p not in skipped]
    for arch, path in runs:
        try:
            rows.append(one_run(arch, path, store, work / f"{arch}-{len(rows)}", args))
            print(json.dumps(rows[-1]), flush=True)
        except Exception as error:  # the check reports every path, then fails
            failures.append(f"{arch}, {path}: {error!r}")
            traceback.print_exc()
    if not args.no_torchrun:
        try:
            rows.append(torchrun_run(store, work / "torchrun", args))
            print(json.dumps(rows[-1]), flush=True)
        except Exception as error:
            failures.append(f"torchrun: {error!r}")
    device = torch.cuda.get_device_name() if on_gpu else "cpu"
    print(f"\n{device}, batch {args.batch_size}, width {args.width}, {args.steps} steps/epoch\n")
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps({"device": device, "rows": rows}, indent=1) + "\n")
    for failure in failures:
        print(f"FAILED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
