"""The trainer on tiny real stores: data plans, both loaders, training, checkpoints, resume, DDP."""

import csv
import math
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import build_store

from fat.cli import main
from fat.errors import FatError
from fat.train.augment import mask_spans, mixup, step_generator
from fat.train.checkpoint import checkpoint_path, load_checkpoint, load_trained_model
from fat.train.config import TrainConfig
from fat.train.data import crop_plan, gather_crops, load_training_data, stratified_holdout
from fat.train.loaders import CropBatchSource, DaliLoader, TorchLoader
from fat.train.loop import train
from fat.train.schedule import lr_at

GiB = 2**30


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("train") / "features.zarr"
    build_store(path, 48)
    return path


def tiny_config(store: Path, out: Path, **kw) -> TrainConfig:
    base = dict(
        store=str(store),
        out=str(out),
        arch="cnn",
        width=0.0625,
        epochs=2,
        batch_size=8,
        crop_frames=32,
        lr=1e-3,
        log_every=1,
        seed=3,
    )
    return TrainConfig(**{**base, **kw})


def batches_per_epoch(store: Path, batch_size: int, val_fraction: float = 0.2) -> int:
    return len(load_training_data(store, ("curated",), val_fraction, 0, GiB).train[0]) // batch_size


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_holdout_is_stratified_and_fixed_by_seed():
    rng = np.random.default_rng(0)
    labels = np.zeros((400, 10), np.uint8)
    labels[np.arange(400), rng.integers(0, 10, 400)] = 1
    labels[rng.choice(400, 60, replace=False), 9] = 1
    val = stratified_holdout(labels, 0.25, seed=1)
    share = labels[val].sum(0) / labels.sum(0)
    assert np.all(np.abs(share - 0.25) < 0.05), share
    assert np.array_equal(val, stratified_holdout(labels, 0.25, seed=1))
    assert not np.array_equal(val, stratified_holdout(labels, 0.25, seed=2))


def test_crop_plan_covers_each_clip_once_and_repeats_by_seed(tiny_store):
    data = load_training_data(tiny_store, ("curated",), 0.2, 0, GiB)
    plan = crop_plan(data, epoch=1, seed=5, batch_size=4, crop_frames=32)
    assert plan.n_batches == len(data.train[0]) // 4
    assert len(set(plan.clip.tolist())) == len(plan.clip)  # no clip twice in an epoch
    assert set(plan.clip.tolist()) <= set(data.train[0].tolist())
    lengths = data.splits[0].lengths[plan.clip]
    assert np.all((plan.start >= 0) & (plan.start <= np.maximum(lengths - 32, 0)))
    again = crop_plan(data, epoch=1, seed=5, batch_size=4, crop_frames=32)
    other = crop_plan(data, epoch=2, seed=5, batch_size=4, crop_frames=32)
    assert np.array_equal(plan.clip, again.clip) and np.array_equal(plan.start, again.start)
    assert not np.array_equal(plan.clip, other.clip)


def test_short_clips_wrap_or_zero_pad(tiny_store):
    data = load_training_data(tiny_store, ("curated",), 0.0, 0, GiB)
    split = data.splits[0]
    short = int(np.argmin(split.lengths))
    n = int(split.lengths[short])
    assert n < 40
    whole = split.read(short).astype(np.float32)
    wrapped = gather_crops(split, np.array([short]), np.array([0]), 40, "wrap")[0]
    zeroed = gather_crops(split, np.array([short]), np.array([0]), 40, "zeros")[0]
    assert np.array_equal(wrapped[:, :n], whole) and np.array_equal(wrapped[:, n : 2 * n], whole)
    assert np.array_equal(zeroed[:, :n], whole) and not zeroed[:, n:].any()


def test_dali_and_torch_loaders_give_the_same_batches_from_ram_and_disk(tiny_store):
    def batches(loader_cls, budget):
        data = load_training_data(tiny_store, ("curated",), 0.2, 0, budget)
        source = CropBatchSource(data, tiny_store, batch_size=8, crop_frames=32, seed=1)
        loader = loader_cls(source, torch.device("cpu"))
        return [[t.clone() for t in b] for e in (1, 2) for b in loader.epoch(e)]

    reference = batches(TorchLoader, GiB)
    assert len(reference) == 2 * batches_per_epoch(tiny_store, 8)
    for loader_cls, budget in [(DaliLoader, GiB), (DaliLoader, 0), (TorchLoader, 0)]:
        got = batches(loader_cls, budget)
        assert len(got) == len(reference)
        for a, b in zip(got, reference, strict=True):
            assert a[0].dtype == torch.float16 and a[0].shape == (8, 16, 32)
            assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))
    x = torch.cat([b[0] for b in reference]).float()
    assert abs(float(x.mean())) < 0.2 and 0.8 < float(x.std()) < 1.2  # normalised
    assert not torch.equal(reference[0][0], reference[len(reference) // 2][0])  # epochs differ


def test_ddp_ranks_take_disjoint_batches(tiny_store):
    data = load_training_data(tiny_store, ("curated",), 0.0, 0, GiB)
    ranks = [CropBatchSource(data, tiny_store, 4, 32, seed=0, rank=r, world=2) for r in (0, 1)]
    n = ranks[0].n_batches(1)
    assert n == ranks[1].n_batches(1) == len(data.train[0]) // 8
    seen = [
        (int(s), int(c))
        for src in ranks
        for i in range(n)
        for s, c in zip(*src.samples(1, i)[:2], strict=True)
    ]
    assert len(seen) == len(set(seen)) == 8 * n


def test_masks_and_mixup_mechanics():
    x = torch.ones(4, 16, 32)
    masked = mask_spans(x, 2, count=1, max_width=8, gen=step_generator(0, 1, 0))
    zeros_per_sample = (masked[:, 0, :] == 0).sum(1)
    assert torch.all(zeros_per_sample <= 8) and torch.all(
        (masked == 0).all(1) | (masked == 1).all(1)
    )
    freq = mask_spans(x, 1, count=2, max_width=4, gen=step_generator(0, 1, 1))
    assert torch.all((freq == 0).all(2) | (freq == 1).all(2))
    a, ya = torch.randn(6, 16, 32), torch.eye(6, 80)
    mixed, ymix, partner, lam = mixup(a, ya, 0.4, step_generator(0, 1, 2))
    assert 0 <= lam <= 1
    assert torch.allclose(mixed, lam * a + (1 - lam) * a[partner])
    assert torch.allclose(ymix.sum(1), torch.ones(6))


def test_schedules_stay_in_bounds():
    for name in ("constant", "cyclic", "onecycle", "cosine"):
        lrs = [lr_at(name, s, 100, 10, 1e-3, 1e-5, cycle_epochs=2) for s in range(100)]
        assert all(1e-5 - 1e-12 <= v <= 1e-3 + 1e-12 for v in lrs), name
        assert max(lrs) == pytest.approx(1e-3, rel=0.02), name
    onecycle = [lr_at("onecycle", s, 100, 10, 1e-3, 1e-5) for s in range(100)]
    assert onecycle[0] == pytest.approx(1e-3 / 25) and onecycle[-1] == pytest.approx(1e-5)
    assert np.argmax(onecycle) == pytest.approx(30, abs=1)
    cyc = [lr_at("cyclic", s, 100, 10, 1e-3, 1e-5, cycle_epochs=2) for s in range(40)]
    assert cyc[0] == pytest.approx(1e-5) and cyc[10] == pytest.approx(1e-3)
    assert cyc[20] == pytest.approx(1e-5)  # period 2 epochs of 10 steps


@pytest.mark.parametrize("loader", ["dali", "torch"])
def test_training_writes_metrics_and_safe_checkpoints(tiny_store, tmp_path, loader):
    cfg = tiny_config(tiny_store, tmp_path / "run", loader=loader)
    summary = train(cfg, progress=False)
    rows = read_csv(tmp_path / "run" / "metrics.csv")
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    for r in rows:
        assert math.isfinite(float(r["train_loss"])) and 0 <= float(r["val_lwlrap"]) <= 1
        assert float(r["samples_per_s"]) > 0 and 0 <= float(r["data_wait_frac"]) < 1
        assert all(float(r[k]) > 0 for k in r if k.startswith("grad_norm:"))
    steps = read_csv(tmp_path / "run" / "steps.csv")
    assert len(steps) == 2 * batches_per_epoch(tiny_store, 8)
    per_class = read_csv(tmp_path / "run" / "per_class.csv")
    assert {r["subset"] for r in per_class} == {"all", "curated"}
    assert summary.best_epoch in (1, 2)
    best = load_checkpoint(checkpoint_path(tmp_path / "run", "best"))  # weights_only=True inside
    assert best["vocabulary"][0] == "Accelerating_and_revving_and_vroom"
    assert best["feature_config"]["n_mels"] == 16 and best["config"]["loader"] == loader
    restored = load_trained_model(tmp_path / "run", "last")
    assert restored.epoch == 2 and restored.config == cfg


def test_both_loaders_train_identically(tiny_store, tmp_path):
    losses = {}
    for loader in ("dali", "torch"):
        train(tiny_config(tiny_store, tmp_path / loader, loader=loader, epochs=1), progress=False)
        losses[loader] = [float(r["train_loss"]) for r in read_csv(tmp_path / loader / "steps.csv")]
    assert losses["dali"] == pytest.approx(losses["torch"], rel=1e-5)


def test_resume_continues_exactly(tiny_store, tmp_path):
    extras = dict(mixup=0.4, time_masks=1, freq_masks=1, schedule="cyclic", cycle_epochs=1)
    whole = tiny_config(tiny_store, tmp_path / "whole", epochs=3, **extras)
    train(whole, progress=False)
    parted = replace(whole, out=str(tmp_path / "parted"))
    train(parted, progress=False, stop_after=1)
    with pytest.raises(FatError, match="--resume"):
        train(parted, progress=False)
    train(parted, resume=True, progress=False)
    a = read_csv(tmp_path / "whole" / "steps.csv")
    b = read_csv(tmp_path / "parted" / "steps.csv")
    assert [r["step"] for r in a] == [r["step"] for r in b]
    assert [float(r["train_loss"]) for r in a] == pytest.approx(
        [float(r["train_loss"]) for r in b], rel=1e-6
    )
    assert len(read_csv(tmp_path / "parted" / "metrics.csv")) == 3
    with pytest.raises(FatError, match="lr"):
        train(replace(parted, lr=0.1, epochs=4), resume=True, progress=False)


def test_swa_checkpoint_and_column(tiny_store, tmp_path):
    cfg = tiny_config(tiny_store, tmp_path / "swa", epochs=3, swa_start=2, mixup=0.4)
    summary = train(cfg, progress=False)
    rows = read_csv(tmp_path / "swa" / "metrics.csv")
    assert rows[0]["swa_val_lwlrap"] == "" and all(
        float(r["swa_val_lwlrap"]) >= 0 for r in rows[1:]
    )
    swa = load_trained_model(tmp_path / "swa", "swa")
    last = load_trained_model(tmp_path / "swa", "last")
    assert summary.swa_lwlrap is not None
    differs = any(
        not torch.equal(p, q)
        for p, q in zip(
            swa.model.state_dict().values(), last.model.state_dict().values(), strict=True
        )
    )
    assert differs


def test_diverging_loss_stops_with_a_clear_error(tiny_store, tmp_path):
    cfg = tiny_config(tiny_store, tmp_path / "nan", lr=1e30, epochs=1)
    with pytest.raises(FatError, match="loss became"):
        train(cfg, progress=False)
    assert not checkpoint_path(tmp_path / "nan", "best").exists()


def test_cli_train_and_bad_input(tiny_store, tmp_path):
    runner = CliRunner()
    args = [
        "train",
        "--store",
        str(tiny_store),
        "--out",
        str(tmp_path / "cli"),
        "--width",
        "0.0625",
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--crop-frames",
        "32",
        "--quiet",
    ]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "best val lwlrap" in result.output
    again = runner.invoke(main, [*args[:-1], "--resume", "--epochs", "2", "--quiet"])
    assert again.exit_code == 0, again.output
    assert len(read_csv(tmp_path / "cli" / "metrics.csv")) == 2
    bad = runner.invoke(
        main,
        ["train", "--store", str(tmp_path / "none.zarr"), "--out", str(tmp_path / "x"), "--quiet"],
    )
    assert bad.exit_code == 1 and bad.output.count("\n") == 1 and "error:" in bad.output
    arch = runner.invoke(main, [*args[:3], "--out", str(tmp_path / "y"), "--arch", "nope"])
    assert arch.exit_code == 1 and "unknown arch" in arch.output


def test_ddp_two_processes_on_cpu(tiny_store, tmp_path):
    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(29500 + os.getpid() % 1000),
        "-m",
        "fat.cli",
        "train",
        "--store",
        str(tiny_store),
        "--out",
        str(out),
        "--width",
        "0.0625",
        "--epochs",
        "1",
        "--batch-size",
        "4",
        "--crop-frames",
        "32",
        "--quiet",
        "--log-every",
        "1",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = read_csv(out / "metrics.csv")
    assert len(rows) == 1 and math.isfinite(float(rows[0]["train_loss"]))
    assert len(read_csv(out / "steps.csv")) == batches_per_epoch(tiny_store, 8)  # 2 ranks x 4


def test_cli_model_options_reach_the_model(tiny_store, tmp_path):
    out = tmp_path / "g"
    args = [
        "train",
        "--store",
        str(tiny_store),
        "--out",
        str(out),
        "--arch",
        "gcnn",
        "--gcnn-channels",
        "8",
        "--rnn-gate",
        "sigmoid",
        "--model-arg",
        "pooling=prob",
        "--width",
        "0.5",
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--crop-frames",
        "32",
        "--quiet",
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    model = load_trained_model(out, "last").model
    assert model.pairs[0][0].conv.out_channels == 2 * 4  # 8 channels x width 0.5, GLU doubles
    assert model.rnn.gate == "sigmoid" and model.pooling == "prob"


def test_sigkilled_run_resumes_like_an_uninterrupted_one(tiny_store, tmp_path):
    import signal
    import time

    def command(out, *extra):
        return [
            sys.executable,
            "-m",
            "fat.cli",
            "train",
            "--store",
            str(tiny_store),
            "--out",
            str(out),
            "--width",
            "0.0625",
            "--epochs",
            "3",
            "--batch-size",
            "8",
            "--crop-frames",
            "32",
            "--steps-per-epoch",
            "60",
            "--log-every",
            "10",
            "--seed",
            "4",
            "--quiet",
            *extra,
        ]

    killed = tmp_path / "killed"
    proc = subprocess.Popen(command(killed), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    last = checkpoint_path(killed, "last")
    deadline = time.monotonic() + 120
    while not last.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    epochs_done = len(read_csv(killed / "metrics.csv"))
    assert 1 <= epochs_done < 3, "the run ended before the kill: the test proves nothing"
    assert subprocess.run(command(killed, "--resume"), capture_output=True).returncode == 0
    whole = tmp_path / "whole"
    assert subprocess.run(command(whole), capture_output=True).returncode == 0
    a, b = read_csv(killed / "steps.csv"), read_csv(whole / "steps.csv")
    assert [r["step"] for r in a] == [r["step"] for r in b]
    assert [float(r["train_loss"]) for r in a] == pytest.approx(
        [float(r["train_loss"]) for r in b], rel=1e-6
    )
    assert [r["epoch"] for r in read_csv(killed / "metrics.csv")] == ["1", "2", "3"]


def test_validation_from_disk_is_normalised_like_from_ram(tiny_store):
    """A split over the memory budget is read raw from disk; validation must normalise it as
    the in-RAM copy is, or best-checkpoint choice runs on different inputs."""
    from fat.train.loop import evaluate
    from fat.train.models import create_model

    model = create_model("cnn", 16, 80, width=0.0625)
    results = []
    for budget in (GiB, 0):
        data = load_training_data(tiny_store, ("curated",), 0.25, 0, budget)
        assert data.splits[0].in_memory == (budget == GiB)
        results.append(evaluate(model, data, 32, torch.device("cpu")))
    ram, disk = results
    assert disk["loss"] == pytest.approx(ram["loss"], rel=1e-6)
    assert disk["all"].overall == pytest.approx(ram["all"].overall, rel=1e-6)


def test_a_model_broken_in_a_later_epoch_leaves_best_intact(tiny_store, tmp_path):
    # Epoch 1 trains normally; epoch 2's single step at SWA's learning rate of 1e30 passes the
    # loss check (the loss is computed before the step) and leaves weights that overflow.
    cfg = tiny_config(
        tiny_store, tmp_path / "run", epochs=2, steps_per_epoch=1, swa_start=2, swa_lr=1e30
    )
    with pytest.raises(FatError, match="non-finite in epoch 2.*up to epoch 1"):
        train(cfg, progress=False)
    best = load_trained_model(tmp_path / "run", "best")
    assert best.epoch == 1
    assert all(torch.isfinite(p).all() for p in best.model.parameters())
    assert len(read_csv(tmp_path / "run" / "metrics.csv")) == 1
