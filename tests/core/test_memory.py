"""The heap settings `fat` starts with: large tensor buffers are not faulted in again, page by
page, at every step."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from fat.cli import main

THP = Path("/sys/kernel/mm/transparent_hugepage/enabled")
FAULTS = r"""
import json, resource, sys
if sys.argv[1] == "kept":
    from fat.core.memory import keep_freed_memory
    assert keep_freed_memory()
import torch
torch.ones(1)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    torch.empty(10 << 20).fill_(1.0)  # 40 MB: above any mmap threshold glibc accepts
print(json.dumps((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20))
"""


def faults_per_buffer(heap: str) -> float:
    done = subprocess.run(
        [sys.executable, "-c", FAULTS, heap], capture_output=True, text=True, check=True,
        env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    return json.loads(done.stdout)


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or not THP.exists() or "[never]" in THP.read_text(),
    reason="needs Linux with transparent huge pages",
)
def test_a_large_buffer_is_faulted_in_by_huge_pages_not_4k_pages():
    default, kept = faults_per_buffer("default"), faults_per_buffer("kept")
    assert default > 5000  # 40 MB in 4 KB pages: 10,240 faults
    assert kept < default / 10, (default, kept)


def test_every_command_starts_with_the_heap_settings(monkeypatch):
    monkeypatch.delenv("THP_MEM_ALLOC_ENABLE", raising=False)
    done = CliRunner().invoke(main, ["train", "--list-recipes"])
    assert done.exit_code == 0, done.output
    assert os.environ["THP_MEM_ALLOC_ENABLE"] == "1"
    monkeypatch.setenv("THP_MEM_ALLOC_ENABLE", "0")  # what a user set is kept
    CliRunner().invoke(main, ["train", "--list-recipes"])
    assert os.environ["THP_MEM_ALLOC_ENABLE"] == "0"
