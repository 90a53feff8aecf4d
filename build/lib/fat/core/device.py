"""Where computation runs: the one place that reads a device name (`auto`, `cpu`, `cuda`,
`cuda:N`) for featurize, train and predict alike."""

import re
from pathlib import Path

from fat.core.errors import FatError

DEVICE_HELP = "auto (CUDA when torch sees a GPU, else the CPU), cpu, cuda or cuda:N."
_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


def check_device_name(name: str) -> str | None:
    """Why `name` is not a device name, or None when it is."""
    if not isinstance(name, str) or not _DEVICE.fullmatch(name):
        return f"device must be auto, cpu, cuda or cuda:N, got {name!r}"
    return None


def gpu_available() -> bool:
    """Whether torch sees a CUDA GPU. torch is only imported where an NVIDIA driver is loaded,
    so a CPU-only machine pays nothing for asking (featurize does not otherwise need torch)."""
    if not Path("/proc/driver/nvidia/version").exists():
        return False
    import torch

    return torch.cuda.is_available()


def device_name(name: str, local_rank: int = 0) -> str:
    """The concrete device for `name`: "cpu" or "cuda:N". `auto` is this process's GPU
    (`cuda:local_rank`, one per DDP rank) when there is one, else the CPU; plain `cuda` is
    the same GPU, and an error without one."""
    reason = check_device_name(name)
    if reason:
        raise FatError(reason)
    if name == "cpu" or (name == "auto" and not gpu_available()):
        return "cpu"
    if not gpu_available():
        raise FatError(f"device {name!r} asked for, but torch sees no CUDA device")
    import torch

    index = int(name.partition(":")[2] or local_rank)
    if index >= torch.cuda.device_count():
        raise FatError(f"device {name!r}: this machine has {torch.cuda.device_count()} GPU(s)")
    return f"cuda:{index}"


def torch_device(name: str, local_rank: int = 0):
    """`device_name` as a torch.device."""
    import torch

    return torch.device(device_name(name, local_rank))
