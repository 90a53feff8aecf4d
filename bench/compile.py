"""A training step compiled (`fat train --compile`, torch.compile with random ops from torch's
own generator) against the same step uncompiled, in one process: forward, BCE loss, backward
and an Adam step on a batch of random log-mel crops, one thread (as the technique table's CPU
jobs run), for each network and crop length; the compile time is reported on its own. Also
the forward pass alone in eval mode without gradients, as a crop teacher's members run
beside a compiled student.

    python bench/compile.py [--archs cnn,skip_attention] [--width 0.25] [--steps 15]
                            [--rounds 2] [--json out.json]
"""

import argparse
import json
import time
from pathlib import Path

import torch

from fat.models.registry import create_model
from fat.train.compiled import compile_module


def seconds_per_step(net, model, x, y, steps: int) -> float:
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    began = time.perf_counter()
    for _ in range(steps):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x).logits, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - began) / steps


@torch.no_grad()
def seconds_per_forward(forward, x, steps: int) -> float:
    began = time.perf_counter()
    for _ in range(steps):
        forward(x)
    return (time.perf_counter() - began) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archs", default="cnn,skip_attention")
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--frames", default="128,256", help="Crop lengths, comma-separated.")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=15, help="Timed steps per round.")
    parser.add_argument("--rounds", type=int, default=2, help="Alternated rounds (best kept).")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cpu = torch.device("cpu")
    figures = []
    for arch in args.archs.split(","):
        for frames in map(int, args.frames.split(",")):
            torch.manual_seed(0)
            model = create_model(arch, 128, 80, width=args.width)
            model.train()
            plain = model.forward_train
            compiled = compile_module(model.forward_train, cpu)
            x, y = torch.randn(args.batch_size, 128, frames), torch.rand(args.batch_size, 80)
            began = time.perf_counter()
            seconds_per_step(compiled, model, x, y, 2)  # compiles, then one warm step
            compile_s = time.perf_counter() - began
            seconds_per_step(plain, model, x, y, 2)
            eager = fast = float("inf")
            for _ in range(args.rounds):
                eager = min(eager, seconds_per_step(plain, model, x, y, args.steps))
                fast = min(fast, seconds_per_step(compiled, model, x, y, args.steps))
            model.eval()
            plain_forward, compiled_forward = model, compile_module(model, cpu)
            seconds_per_forward(compiled_forward, x, 2)  # compiles the eval graph
            eager_forward = fast_forward = float("inf")
            for _ in range(args.rounds):
                eager_forward = min(
                    eager_forward, seconds_per_forward(plain_forward, x, args.steps)
                )
                fast_forward = min(
                    fast_forward, seconds_per_forward(compiled_forward, x, args.steps)
                )
            row = {
                "arch": arch, "width": args.width, "frames": frames,
                "plain_s_per_step": round(eager, 3), "compiled_s_per_step": round(fast, 3),
                "speedup": round(eager / fast, 2), "compile_s": round(compile_s, 1),
                "plain_s_per_forward": round(eager_forward, 3),
                "compiled_s_per_forward": round(fast_forward, 3),
                "forward_speedup": round(eager_forward / fast_forward, 2),
            }  # fmt: skip
            print(json.dumps(row), flush=True)
            figures.append(row)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
