"""Training steps with the heap settings `fat` applies at start (`keep_freed_memory`: freed
tensor memory reused, huge pages for large buffers) against the C library's defaults: each
setting in its own single-thread process (the settings are process-wide and torch reads its
part at start), alternated, best of --rounds; wall, user and kernel seconds and minor page
faults per step of forward, BCE, backward and Adam on 32 random 128-mel crops, and the
process's peak resident memory.

    python bench/allocator.py [--archs cnn,skip_attention] [--compiled] [--rounds 2]
                              [--json out.json]
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = str(Path(__file__).parent)

STEPS = r"""
import json, resource, sys
if sys.argv[1] == "kept":
    from fat.core.memory import keep_freed_memory
    keep_freed_memory()
import torch
sys.path.insert(0, sys.argv[6])
from compile import seconds_per_step  # the step bench/compile.py times
from fat.models.registry import create_model
torch.set_num_threads(1)
torch.manual_seed(0)
model = create_model(sys.argv[2], 128, 80, width=float(sys.argv[3]))
model.train()
forward = model.forward_train
if sys.argv[4] == "compiled":
    from fat.train.compiled import compile_module
    forward = compile_module(forward, torch.device("cpu"))
x, y = torch.randn(32, 128, 128), torch.rand(32, 80)
seconds_per_step(forward, model, x, y, 3)
n = int(sys.argv[5])
before = resource.getrusage(resource.RUSAGE_SELF)
wall = seconds_per_step(forward, model, x, y, n)
after = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"wall": wall, "user": (after.ru_utime - before.ru_utime) / n,
                  "kernel": (after.ru_stime - before.ru_stime) / n,
                  "faults": (after.ru_minflt - before.ru_minflt) / n,
                  "max_rss_mb": after.ru_maxrss / 1024}))
"""


def measure(heap: str, arch: str, width: float, mode: str, steps: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("THP_MEM_ALLOC_ENABLE", None)
    argv = [sys.executable, "-c", STEPS, heap, arch, str(width), mode, str(steps), HERE]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archs", default="cnn,skip_attention")
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--compiled", action="store_true", help="Also the compiled step.")
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    figures = []
    for arch in args.archs.split(","):
        for mode in ("plain", "compiled") if args.compiled else ("plain",):
            best: dict[str, dict] = {}
            for _ in range(args.rounds):
                for heap in ("default", "kept"):
                    got = measure(heap, arch, args.width, mode, args.steps)
                    if heap not in best or got["wall"] < best[heap]["wall"]:
                        best[heap] = got
            row = {"arch": arch, "width": args.width, "step": mode}
            for heap, got in best.items():
                row |= {
                    f"{heap}_{k}": round(v, 3 if k in ("wall", "user", "kernel") else None)
                    for k, v in got.items()
                }
            row["speedup"] = round(best["default"]["wall"] / best["kept"]["wall"], 2)
            print(json.dumps(row), flush=True)
            figures.append(row)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
