"""How the process's C heap treats the large buffers of CPU tensors. By default glibc serves
each buffer above its (adaptive) mmap threshold with a fresh mapping and trims freed memory
back to the kernel, so every training step faults its activations in again, page by page: a
third of a single-thread CPU training run's time went to the kernel (BENCHMARKS.md)."""

import ctypes
import os
import sys

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # the largest glibc accepts: buffers below it are reused from the heap
TRIM_THRESHOLD = 1 << 30  # free memory kept at the top of the heap before it is given back


def keep_freed_memory() -> bool:
    """Reuse freed tensor memory instead of giving it back to the kernel, and let torch back
    its buffers of 2 MB and more with huge pages (THP_MEM_ALLOC_ENABLE, read by torch at its
    first allocation, so this runs before torch is imported to count; a value the user set is
    kept). Returns whether the C library took the heap settings (glibc on Linux only)."""
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # another C library (musl) has no mallopt to call
        return False
    return bool(
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
