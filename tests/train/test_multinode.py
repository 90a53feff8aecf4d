"""`fat train` across nodes: two torchrun agents on this machine stand for two nodes (c10d
rendezvous, one gloo process each) against one store, as `torchrun --nnodes 2` on two hosts."""

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import closing, suppress
from pathlib import Path

import numpy as np
import pytest
import torch

from fat.runs.directory import RunDirectory
from fat.runs.settings import ExperimentConfig
from fat.train.data import load_training_data
from fat.train.loaders import CropBatchSource
from tests.synthetic import TINY, GiB, read_csv, tiny_train_args

ROOT = Path(__file__).parent.parent.parent


def free_port() -> int:
    with closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node(n: int, nodes: int, port: int, *fat_args: str) -> list[str]:
    """One node's `torchrun --nnodes N --nproc-per-node 1 --rdzv-backend c10d` command; node 0
    hosts the rendezvous, as the first host of a job would."""
    return [
        sys.executable, "-m", "torch.distributed.run",
        "--nnodes", str(nodes), "--nproc-per-node", "1",
        "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}",
        "--rdzv-id", "fat-test", "--rdzv-conf", f"is_host={int(n == 0)}",
        "-m", "fat", *fat_args,
    ]  # fmt: skip


def start_nodes(nodes: int, *fat_args: str) -> list[subprocess.Popen]:
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return [
        subprocess.Popen(
            node(n, nodes, port, *fat_args),
            cwd=ROOT,
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        for n in range(nodes)
    ]


def finish(procs: list[subprocess.Popen], timeout: float = 300) -> list[tuple[int, str]]:
    return [(p.wait(timeout=timeout), p.stdout.read()) for p in procs]


def test_the_ranks_of_a_step_together_take_the_single_process_batch(tiny_store):
    """Rank r of W takes batch i * W + r of the shared plan, so at each step the ranks' batches
    together are the batch a single process with W times the batch size takes at that step."""
    with load_training_data(tiny_store, ("curated",), 0.2, 0, GiB) as data:
        experiment = ExperimentConfig(**{**TINY, "batch_size": 4, "steps_per_epoch": 3})
        ranks = [CropBatchSource(data, experiment, 1, r, 2) for r in range(2)]
        whole = CropBatchSource(
            data, ExperimentConfig(**{**TINY, "batch_size": 8, "steps_per_epoch": 3})
        )
        assert [s.n_batches(1) for s in ranks] == [whole.n_batches(1)] * 2 == [3, 3]
        for i in range(3):
            parts = [s.samples(1, i) for s in ranks]
            together = [np.concatenate([p[k] for p in parts]) for k in range(3)]
            for mine, single in zip(together, whole.samples(1, i), strict=True):
                np.testing.assert_array_equal(mine, single)


@pytest.mark.slow
def test_two_nodes_with_synced_batchnorm_train_as_one_process_with_the_global_batch(
    tiny_store, tmp_path
):
    """GCNN (no dropout), nothing random after the crops: with --sync-batchnorm, 2 nodes of
    batch 4 take the same steps as 1 process of batch 8, up to float summation order."""
    same = dict(
        arch="gcnn", epochs=1, steps_per_epoch=3, log_every=1, mixup=0, time_masks=0,
        freq_masks=0, sync_batchnorm=True,
    )  # fmt: skip
    nodes, single = tmp_path / "nodes", tmp_path / "single"
    for code, text in finish(
        start_nodes(2, *tiny_train_args(tiny_store, nodes, batch_size=4, **same))
    ):
        assert code == 0, text[-3000:]
    done = subprocess.run(
        [sys.executable, "-m", "fat", *tiny_train_args(tiny_store, single, batch_size=8, **same)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    # steps.csv holds rank 0's own loss; an epoch's train_loss is the mean over the ranks.
    losses = [float(read_csv(run / "metrics.csv")[0]["train_loss"]) for run in (nodes, single)]
    assert losses[0] == pytest.approx(losses[1], rel=1e-4)
    a, b = (
        torch.load(RunDirectory(run).checkpoint("last"), weights_only=False)["model"]
        for run in (nodes, single)
    )
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)


@pytest.mark.slow
def test_two_nodes_train_resume_and_refuse_another_world_size(tiny_store, tmp_path):
    out = tmp_path / "run"
    settings = dict(epochs=2, batch_size=4, steps_per_epoch=4, log_every=1)
    results = finish(start_nodes(2, *tiny_train_args(tiny_store, out, **settings)))
    for code, text in results:
        assert code == 0, text[-3000:]
    assert len(read_csv(out / "metrics.csv")) == 2  # rank 0 alone writes, once per epoch
    assert len(read_csv(out / "steps.csv")) == 2 * 4
    state = torch.load(RunDirectory(out).checkpoint("last"), weights_only=False)
    assert state["world_size"] == 2
    args = tiny_train_args(tiny_store, out, **{**settings, "epochs": 3})
    alone = subprocess.run(
        [sys.executable, "-m", "fat", *args, "--resume"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert alone.returncode == 1
    assert "trained as 2 process(es) and this is 1" in alone.stderr, alone.stderr[-2000:]
    for code, text in finish(start_nodes(2, *args, "--resume")):
        assert code == 0, text[-3000:]
    epochs = read_csv(out / "metrics.csv")
    assert [int(r["epoch"]) for r in epochs] == [1, 2, 3]
    assert len(read_csv(out / "steps.csv")) == 3 * 4


@pytest.mark.slow
def test_when_a_node_dies_the_other_stops_with_a_clear_message(tiny_store, tmp_path):
    out = tmp_path / "run"
    args = tiny_train_args(
        tiny_store, out, epochs=200, batch_size=4, steps_per_epoch=50, log_every=2
    )
    first, second = start_nodes(2, *args)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not (
        (out / "steps.csv").exists() and len(read_csv(out / "steps.csv")) >= 2
    ):
        assert first.poll() is None and second.poll() is None, "a node ended early"
        time.sleep(0.1)
    _kill_tree(second.pid)  # the whole second node: its agent and its rank
    began = time.monotonic()
    code = first.wait(timeout=180)  # no hang
    text = first.stdout.read()
    second.wait(timeout=60)
    assert code != 0 and time.monotonic() - began < 180
    assert "error: rank 0 stopped" in text and "resume with --resume" in text, text[-3000:]


def _kill_tree(pid: int) -> None:
    """SIGKILL a process and everything under it, as a node losing power would."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    for child in children:
        _kill_tree(int(child))
    with suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
