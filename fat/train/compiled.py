"""`--compile`: modules of a training step compiled by torch.compile, with the settings under
which a compiled run follows the plain one."""

import shutil
from collections.abc import Callable
from typing import Any, TypeVar, cast

import torch

from fat.core.errors import FatError

Step = TypeVar("Step", bound=Callable[..., Any])  # a module, or a method such as forward_train


def compile_module(module: Step, device: torch.device) -> Step:
    """`module` compiled with static shapes (a new shape recompiles, never goes symbolic: a
    second crop length in one process otherwise made inductor fail on symbolic shapes)."""
    if device.type == "cpu" and not any(shutil.which(c) for c in ("c++", "g++", "clang++")):
        raise FatError("--compile on a CPU needs a C++ compiler (c++, g++ or clang++) on PATH")
    # Random ops (dropout) drawn from torch's own generator, as uncompiled: the same masks, so
    # a compiled run follows the plain one to rounding and resumes from its saved RNG state.
    import torch._inductor.config as inductor  # lazy: only compiled runs need it

    inductor.fallback_random = True
    return cast(Step, torch.compile(module, dynamic=False))
