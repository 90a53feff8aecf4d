"""The trainer on tiny real stores: data plans, both loaders, training, checkpoints, resume, DDP."""

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from fat.cli import main
from fat.core.errors import FatError
from fat.core.holdout import stratified_holdout
from fat.models.input import ModelInput
from fat.runs.checkpoint import load_checkpoint, load_trained_model
from fat.runs.directory import RunDirectory
from fat.runs.settings import MIXERS, ExperimentConfig
from fat.store.crops import gather_crops
from fat.train.augment import (
    MIXER_FUNCTIONS,
    concat,
    mask_spans,
    mixup,
    resized_crop,
    specmix,
    step_generator,
)
from fat.train.data import class_balanced_weights, crop_plan, load_training_data
from fat.train.loaders import CropBatchSource, DaliLoader, TorchLoader
from fat.train.loop import train
from fat.train.schedule import lr_at
from tests.synthetic import GiB, read_csv, tiny_run, tiny_train_args, torchrun_fat


def batches_per_epoch(store: Path, batch_size: int, val_fraction: float = 0.2) -> int:
    with load_training_data(store, ("curated",), val_fraction, 0, GiB) as data:
        return len(data.splits[0].train) // batch_size


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
    train_clips = data.splits[0].train
    assert plan.n_batches == len(train_clips) // 4
    assert len(set(plan.clip.tolist())) == len(plan.clip)  # no clip twice in an epoch
    assert set(plan.clip.tolist()) <= set(train_clips.tolist())
    lengths = data.splits[0].split.lengths[plan.clip]
    assert np.all((plan.start >= 0) & (plan.start <= np.maximum(lengths - 32, 0)))
    again = crop_plan(data, epoch=1, seed=5, batch_size=4, crop_frames=32)
    other = crop_plan(data, epoch=2, seed=5, batch_size=4, crop_frames=32)
    assert np.array_equal(plan.clip, again.clip) and np.array_equal(plan.start, again.start)
    assert not np.array_equal(plan.clip, other.clip)


def test_balanced_sampling_draws_every_class_about_equally_often():
    rng = np.random.default_rng(0)
    labels = np.zeros((300, 6))
    labels[np.arange(300), rng.choice(6, 300, p=[0.5, 0.25, 0.1, 0.08, 0.05, 0.02])] = 1
    labels[:30, 5] = 1  # some clips carry a rare class as a second label
    p = class_balanced_weights(labels)
    assert p.sum() == pytest.approx(1) and (p > 0).all()
    drawn = labels[rng.choice(300, 60_000, p=p)].sum(axis=0)
    assert drawn.max() / drawn.min() < 1.6  # against 0.5 / 0.02 = 25x for uniform draws
    with pytest.raises(FatError, match="no training clip carries a label"):
        class_balanced_weights(np.zeros((4, 3)))


def test_a_balanced_plan_is_seeded_and_draws_only_training_clips(tiny_store):
    data = load_training_data(tiny_store, ("curated",), 0.2, 0, GiB)
    plan = crop_plan(data, 1, seed=5, batch_size=4, crop_frames=32, sampler="balanced")
    again = crop_plan(data, 1, seed=5, batch_size=4, crop_frames=32, sampler="balanced")
    assert plan.n_batches == len(data.splits[0].train) // 4
    assert set(plan.clip.tolist()) <= set(data.splits[0].train.tolist())
    assert np.array_equal(plan.clip, again.clip) and np.array_equal(plan.start, again.start)
    assert len(set(plan.clip.tolist())) < len(plan.clip)  # with replacement


def test_short_clips_wrap_or_zero_pad(tiny_store):
    data = load_training_data(tiny_store, ("curated",), 0.0, 0, GiB)
    split = data.splits[0].split
    short = int(np.argmin(split.lengths))
    n = int(split.lengths[short])
    assert n < 40
    whole = split.read(short).astype(np.float32)
    crops, own = gather_crops(split, np.array([short]), np.array([0]), 40)
    assert own.tolist() == [n]
    raw = crops[0].T.astype(np.float32)  # the store gives the clip repeated
    assert np.array_equal(raw[:, :n], whole) and np.array_equal(raw[:, n : 2 * n], whole)
    cpu = torch.device("cpu")
    wrapped = ModelInput(data.normalizer, cpu, "wrap")(crops, own)[0].numpy()
    zeroed = ModelInput(data.normalizer, cpu, "zeros")(crops, own)[0].numpy()
    normalised = data.normalizer.apply(split.read(short).T).T
    assert np.array_equal(wrapped[:, :n], normalised) and np.array_equal(
        wrapped[:, n : 2 * n], normalised
    )
    assert np.array_equal(zeroed[:, :n], normalised) and not zeroed[:, n:].any()


def test_dali_and_torch_loaders_give_the_same_batches_from_ram_and_disk(tiny_store):
    def batches(loader_cls, budget):
        experiment = ExperimentConfig(batch_size=8, crop_frames=32, seed=1)
        with load_training_data(tiny_store, ("curated",), 0.2, 0, budget) as data:
            source = CropBatchSource(data, experiment)
            with loader_cls(source, torch.device("cpu")) as loader:
                return [[t.clone() for t in b] for e in (1, 2) for b in loader.epoch(e)]

    reference = batches(TorchLoader, GiB)
    assert len(reference) == 2 * batches_per_epoch(tiny_store, 8)
    for loader_cls, budget in [(DaliLoader, GiB), (DaliLoader, 0), (TorchLoader, 0)]:
        got = batches(loader_cls, budget)
        assert len(got) == len(reference)
        for a, b in zip(got, reference, strict=True):
            assert a[0].dtype == torch.float16 and a[0].shape == (8, 32, 16)  # (B, T, mels)
            assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))
    with load_training_data(tiny_store, ("curated",), 0.2, 0, GiB) as data:
        inputs = ModelInput(data.normalizer, torch.device("cpu"))
        x = torch.cat([inputs(b[0], b[3]) for b in reference])
    assert x.shape[1:] == (16, 32)
    assert abs(float(x.mean())) < 0.2 and 0.8 < float(x.std()) < 1.2  # normalised
    assert not torch.equal(reference[0][0], reference[len(reference) // 2][0])  # epochs differ


def test_ddp_ranks_take_disjoint_batches(tiny_store):
    data = load_training_data(tiny_store, ("curated",), 0.0, 0, GiB)
    experiment = ExperimentConfig(batch_size=4, crop_frames=32, seed=0)
    ranks = [CropBatchSource(data, experiment, rank=r, world=2) for r in (0, 1)]
    n = ranks[0].n_batches(1)
    assert n == ranks[1].n_batches(1) == len(data.splits[0].train) // 8
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


def test_concat_and_specmix_mechanics():
    a = torch.arange(6.0)[:, None, None].expand(6, 16, 40).clone()  # sample i is all i
    labels = torch.eye(6, 80)
    for step in range(5):
        mixed, y, partner, share = concat(a, labels, 0.4, step_generator(0, 1, step))
        moved = partner != torch.arange(6)
        assert torch.allclose(mixed[~moved], a[~moved]) and share == 0.5
        ramp = (mixed[moved] - a[moved]) / (a[partner][moved] - a[moved])  # the partner's share
        assert torch.allclose(ramp, ramp[:, :1, :])  # the same for every mel band
        assert (ramp.diff(dim=2) >= -1e-6).all() and (ramp[:, :, 0] < 0.05).all()
        assert (ramp[:, :, -1] > 0.95).all()  # from the crop alone to the partner alone
        assert (ramp[:, :, 19:21].mean(dim=2) - 0.5).abs().max() < 0.1  # each keeps half
        assert torch.equal(y, torch.maximum(labels, labels[partner]))  # both sounds are there
        mixed, y, partner, share = specmix(a, labels, 0.4, step_generator(0, 2, step))
        own = (mixed == a).float().mean(dim=(1, 2))
        moved = partner != torch.arange(6)
        assert torch.allclose(own[moved], torch.full((int(moved.sum()),), share))
        assert torch.allclose(y, share * labels + (1 - share) * labels[partner])
    assert tuple(MIXER_FUNCTIONS) == MIXERS  # every mixer setting has its function


def test_resized_crops_zoom_into_a_window_of_each_crop():
    ramp = torch.linspace(0, 1, 64)[None, None, :].expand(8, 16, 64).contiguous()  # time ramp
    assert resized_crop(ramp, 1.0, step_generator(0)) is ramp
    out = resized_crop(ramp, 0.5, step_generator(0))
    again = resized_crop(ramp, 0.5, step_generator(0))
    assert out.shape == ramp.shape and torch.equal(out, again)
    inside = out[:, :, 2:-2]  # away from the border, where bilinear sampling clamps
    assert (inside.diff(dim=2) >= -1e-6).all()  # still a ramp in time, in order
    spans = inside[:, 0, -1] - inside[:, 0, 0]
    assert (spans < 0.94 * (ramp[0, 0, -3] - ramp[0, 0, 2])).any()  # some were zoomed in
    assert (spans > 0.4 * (ramp[0, 0, -3] - ramp[0, 0, 2]) * 0.9).all()  # to no less than half


@pytest.mark.parametrize("mixer", ["concat", "specmix"])
def test_each_mixer_and_resized_crops_train_alike_on_both_loaders(tiny_store, tmp_path, mixer):
    losses = []
    for loader in ("torch", "dali"):
        out = tmp_path / loader
        changes = dict(epochs=1, mixup=0.4, mixer=mixer, loader=loader, crop_scale=0.8)
        train(*tiny_run(tiny_store, out, **changes))
        losses.append([float(r["train_loss"]) for r in read_csv(out / "steps.csv")])
    assert losses[0] == pytest.approx(losses[1], rel=1e-6) and all(map(math.isfinite, losses[0]))


def test_schedules_stay_in_bounds():
    def lrs(schedule: str, steps: int, **kw) -> list[float]:
        e = ExperimentConfig(schedule=schedule, epochs=10, lr=1e-3, lr_min=1e-5, **kw)
        return [lr_at(e, s, 10) for s in range(steps)]  # 10 epochs of 10 steps

    for name in ("constant", "cyclic", "onecycle", "cosine", "cosine-restarts"):
        values = lrs(name, 100, cycle_epochs=2)
        assert all(1e-5 - 1e-12 <= v <= 1e-3 + 1e-12 for v in values), name
        assert max(values) == pytest.approx(1e-3, rel=0.02), name
    onecycle = lrs("onecycle", 100)
    assert onecycle[0] == pytest.approx(1e-3 / 25) and onecycle[-1] == pytest.approx(1e-5)
    assert np.argmax(onecycle) == pytest.approx(30, abs=1)
    cyc = lrs("cyclic", 40, cycle_epochs=2)
    assert cyc[0] == pytest.approx(1e-5) and cyc[10] == pytest.approx(1e-3)
    assert cyc[20] == pytest.approx(1e-5)  # period 2 epochs of 10 steps
    swa = lrs("cosine", 100, swa_start=8, swa_lr=5e-4)
    assert swa[69] != 5e-4 and swa[70:] == [5e-4] * 30  # epoch 8 starts at step 70
    restarts = lrs("cosine-restarts", 40, cycle_epochs=2)
    assert restarts[0] == restarts[20] == pytest.approx(1e-3)  # back up at each restart
    assert restarts[19] == restarts[39] == pytest.approx(1e-5)  # down at each cycle's end
    with pytest.raises(FatError, match="whole cycle_epochs"):
        ExperimentConfig(schedule="cosine-restarts", cycle_epochs=1.5)


def test_cosine_restarts_keep_a_snapshot_per_cycle_for_an_ensemble(tiny_store, tmp_path):
    from fat.core.submission import read_submission
    from fat.predict.ensemble import Source

    out = tmp_path / "restarts"
    changes = dict(epochs=4, schedule="cosine-restarts", cycle_epochs=2, train_splits=("curated",))
    train(*tiny_run(tiny_store, out, **changes))
    assert RunDirectory(out).snapshots() == ["snapshot-2", "snapshot-4"]
    source = Source.parse(f"{out}:snapshots", "best")
    assert [kind for _, kind in source.members] == ["snapshot-2", "snapshot-4"]
    submission = tmp_path / "snapshots.csv"
    args = ["ensemble", f"{out}:snapshots", "--split", "curated", "--out", str(submission)]
    done = CliRunner().invoke(main, [*args, "--quiet"])
    assert done.exit_code == 0, done.output
    assert read_submission(submission)[2].shape == (48, 80)
    refused = CliRunner().invoke(main, ["ensemble", f"{out}:snapshot-3", "--out", str(submission)])
    assert refused.exit_code == 1 and "no such snapshot" in refused.output


@pytest.mark.parametrize("loader", ["dali", "torch"])
def test_training_writes_metrics_and_safe_checkpoints(tiny_store, tmp_path, loader):
    experiment, options = tiny_run(tiny_store, tmp_path / "run", loader=loader)
    summary = train(experiment, options)
    rows = read_csv(tmp_path / "run" / "metrics.csv")
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    for r in rows:
        assert math.isfinite(float(r["train_loss"])) and 0 <= float(r["val_lwlrap"]) <= 1
        assert float(r["samples_per_s"]) > 0 and 0 <= float(r["data_wait_frac"]) < 1
        assert all(float(r[k]) > 0 for k in r if k.startswith("grad_norm:"))
    steps = read_csv(tmp_path / "run" / "steps.csv")
    assert len(steps) == 2 * batches_per_epoch(tiny_store, 8)
    per_class = read_csv(tmp_path / "run" / "val_per_class.csv")
    assert {r["subset"] for r in per_class} == {"all", "curated"}
    assert summary.best_epoch in (1, 2)
    run = RunDirectory(tmp_path / "run")
    best = load_checkpoint(run.checkpoint("best"))  # weights_only=True inside
    assert best["vocabulary"][0] == "Accelerating_and_revving_and_vroom"
    assert best["feature_config"]["n_mels"] == 16 and best["experiment"] == experiment.to_dict()
    assert run.read_settings() == (experiment.to_dict(), options.to_dict())
    assert options.loader == loader
    restored = load_trained_model(tmp_path / "run", "last")
    assert restored.epoch == 2 and restored.experiment == experiment


def test_both_loaders_train_identically(tiny_store, tmp_path):
    losses = {}
    for loader in ("dali", "torch"):
        train(*tiny_run(tiny_store, tmp_path / loader, loader=loader, epochs=1))
        losses[loader] = [float(r["train_loss"]) for r in read_csv(tmp_path / loader / "steps.csv")]
    assert losses["dali"] == pytest.approx(losses["torch"], rel=1e-5)


def test_resume_continues_exactly(tiny_store, tmp_path):
    extras = dict(mixup=0.4, time_masks=1, freq_masks=1, schedule="cyclic", cycle_epochs=1)
    experiment, whole = tiny_run(tiny_store, tmp_path / "whole", epochs=3, **extras)
    train(experiment, whole)
    parted = whole.replace(out=str(tmp_path / "parted"))
    train(experiment, parted, stop_after=1)
    with pytest.raises(FatError, match="--resume"):
        train(experiment, parted)
    train(experiment, parted, resume=True)
    a = read_csv(tmp_path / "whole" / "steps.csv")
    b = read_csv(tmp_path / "parted" / "steps.csv")
    assert [r["step"] for r in a] == [r["step"] for r in b]
    assert [float(r["train_loss"]) for r in a] == pytest.approx(
        [float(r["train_loss"]) for r in b], rel=1e-6
    )
    assert len(read_csv(tmp_path / "parted" / "metrics.csv")) == 3
    with pytest.raises(FatError, match="lr"):
        train(experiment.replace(lr=0.1, epochs=4), parted, resume=True)


def test_swa_checkpoint_and_column(tiny_store, tmp_path):
    summary = train(*tiny_run(tiny_store, tmp_path / "swa", epochs=3, swa_start=2, mixup=0.4))
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


def test_ema_of_the_weights_is_validated_saved_and_resumed(tiny_store, tmp_path):
    def weights(run, kind):
        return load_trained_model(tmp_path / run, kind).model.state_dict()

    # A decay next to 0 follows the model: its average is the last step's weights.
    train(*tiny_run(tiny_store, tmp_path / "follow", epochs=1, ema=1e-12))
    follow, last = weights("follow", "ema"), weights("follow", "last")
    assert all(
        torch.allclose(a.float(), b.float())
        for a, b in zip(follow.values(), last.values(), strict=True)
    )
    experiment, whole = tiny_run(tiny_store, tmp_path / "whole", epochs=3, ema=0.9, mixup=0.4)
    summary = train(experiment, whole)
    rows = read_csv(tmp_path / "whole" / "metrics.csv")
    assert summary.ema_lwlrap is not None and all(float(r["ema_val_lwlrap"]) >= 0 for r in rows)
    ema, last = weights("whole", "ema"), weights("whole", "last")
    assert any(not torch.equal(a, b) for a, b in zip(ema.values(), last.values(), strict=True))
    parted = whole.replace(out=str(tmp_path / "parted"))
    train(experiment, parted, stop_after=1)
    train(experiment, parted, resume=True)  # the average resumes with the run
    for a, b in zip(ema.values(), weights("parted", "ema").values(), strict=True):
        assert torch.allclose(a.float(), b.float(), atol=1e-6)
    (tmp_path / "follow" / "checkpoints" / "ema.pt").unlink()  # as a run without --ema
    with pytest.raises(FatError, match=r"no EMA checkpoint \(train with --ema DECAY\)"):
        load_trained_model(tmp_path / "follow", "ema")


def test_diverging_loss_stops_with_a_clear_error(tiny_store, tmp_path):
    with pytest.raises(FatError, match="loss became"):
        train(*tiny_run(tiny_store, tmp_path / "nan", lr=1e30, epochs=1))
    assert not RunDirectory(tmp_path / "nan").checkpoint("best").exists()


def test_cli_train_and_bad_input(tiny_store, tmp_path):
    runner = CliRunner()
    args = tiny_train_args(tiny_store, tmp_path / "cli", epochs=1)
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "best val lwlrap" in result.output
    again = runner.invoke(
        main, ["train", "--out", str(tmp_path / "cli"), "--resume", "--epochs", "2", "--quiet"]
    )
    assert again.exit_code == 0, again.output
    assert len(read_csv(tmp_path / "cli" / "metrics.csv")) == 2
    bad = runner.invoke(
        main,
        ["train", "--store", str(tmp_path / "none.zarr"), "--out", str(tmp_path / "x"), "--quiet"],
    )
    assert bad.exit_code == 1 and bad.output.count("\n") == 1 and "error:" in bad.output
    arch = runner.invoke(main, tiny_train_args(tiny_store, tmp_path / "y", arch="nope"))
    assert arch.exit_code == 1 and "unknown arch" in arch.output
    refused = runner.invoke(
        main, ["train", "--out", str(tmp_path / "cli"), "--resume", "--lr", "0.1"]
    )
    assert refused.exit_code == 1 and "lr" in refused.output and "epochs" in refused.output


def test_print_config_then_config_file_trains_the_same_run(tiny_store, tmp_path):
    """`--print-config > c.json` then `--config c.json --store S --out O`: the same run as
    the flags made, step for step; flags given with --config override the file."""
    runner = CliRunner()
    flags = tiny_train_args(tiny_store, tmp_path / "flags", epochs=1, mixup=0.4, schedule="cyclic")
    flags += ["--model-arg", "gcnn_channels=8", "--arch", "gcnn", "--split-weights", "curated=1"]
    printed = runner.invoke(main, [*flags, "--print-config"])
    assert printed.exit_code == 0, printed.output
    config = tmp_path / "c.json"
    config.write_text(printed.output)
    settings = json.loads(printed.output)
    assert settings["experiment"]["model_kwargs"] == {"gcnn_channels": 8}
    assert settings["experiment"]["train_splits"] == ["curated"]
    assert not (tmp_path / "flags").exists()  # printing trains nothing
    assert runner.invoke(main, flags).exit_code == 0
    moved_store = tmp_path / "elsewhere.zarr"
    shutil.copytree(tiny_store, moved_store)
    from_file = ["train", "--config", str(config), "--store", str(moved_store)]
    from_file += ["--out", str(tmp_path / "file")]
    assert runner.invoke(main, from_file).exit_code == 0
    a, b = (RunDirectory(tmp_path / d).read_settings() for d in ("flags", "file"))
    assert a[0] == b[0]  # the same experiment
    assert b[1]["store"] == str(moved_store) and b[1]["out"] == str(tmp_path / "file")
    assert read_csv(tmp_path / "flags" / "steps.csv") == read_csv(tmp_path / "file" / "steps.csv")
    toml = tmp_path / "c.toml"
    toml.write_text("[experiment]\nepochs = 1\nbatch_size = 8\ncrop_frames = 32\nwidth = 0.0625\n")
    print_toml = runner.invoke(
        main, ["train", "--config", str(toml), "--lr", "0.01", "--print-config"]
    )
    experiment = json.loads(print_toml.output)["experiment"]
    assert experiment["batch_size"] == 8 and experiment["lr"] == 0.01
    for bad, reason in [
        ('{"experiment": {"n_mel": 64}}', "n_mel"),
        ('{"experiment": {"epochs": "2"}}', "epochs must be an integer"),
        ('{"epoch": 3}', "unknown key"),
    ]:
        config.write_text(bad)
        result = runner.invoke(main, ["train", "--config", str(config), "--print-config"])
        assert result.exit_code == 1 and reason in result.output, result.output


def test_resume_after_the_run_and_the_store_moved(tiny_store, tmp_path):
    store = tmp_path / "store.zarr"
    shutil.copytree(tiny_store, store)
    experiment, options = tiny_run(store, tmp_path / "run", epochs=3)
    train(experiment, options)
    whole = read_csv(tmp_path / "run" / "steps.csv")
    shutil.rmtree(tmp_path / "run")
    train(experiment, options, stop_after=1)
    (tmp_path / "moved").mkdir()
    shutil.move(tmp_path / "run", tmp_path / "moved" / "run")
    shutil.move(store, tmp_path / "moved" / "store.zarr")
    run = tmp_path / "moved" / "run"
    result = CliRunner().invoke(
        main, ["train", "--out", str(run), "--store", str(run.parent / "store.zarr"), "--resume"]
    )
    assert result.exit_code == 0, result.output
    steps = read_csv(run / "steps.csv")
    assert [r["step"] for r in steps] == [r["step"] for r in whole]
    assert [float(r["train_loss"]) for r in steps] == pytest.approx(
        [float(r["train_loss"]) for r in whole], rel=1e-6
    )
    saved_experiment, saved_options = RunDirectory(run).read_settings()
    assert saved_experiment == experiment.to_dict()
    assert saved_options["out"] == str(run) and saved_options["store"] == str(
        run.parent / "store.zarr"
    )


@pytest.mark.slow
def test_ddp_two_processes_on_cpu(tiny_store, tmp_path):
    out = tmp_path / "ddp"
    args = tiny_train_args(tiny_store, out, epochs=1, batch_size=4, log_every=1)
    cmd = torchrun_fat(2, 29500 + os.getpid() % 1000, *args)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = read_csv(out / "metrics.csv")
    assert len(rows) == 1 and math.isfinite(float(rows[0]["train_loss"]))
    assert len(read_csv(out / "steps.csv")) == batches_per_epoch(tiny_store, 8)  # 2 ranks x 4


def test_cli_model_options_reach_the_model(tiny_store, tmp_path):
    out = tmp_path / "g"
    model_args = ["gcnn_channels=8", "rnn_gate=sigmoid", "pooling=prob"]
    args = tiny_train_args(tiny_store, out, arch="gcnn", width=0.5, epochs=1)
    result = CliRunner().invoke(main, [*args, *(f"--model-arg={a}" for a in model_args)])
    assert result.exit_code == 0, result.output
    model = load_trained_model(out, "last").model
    assert model.pairs[0][0].conv.out_channels == 2 * 4  # 8 channels x width 0.5, GLU doubles
    assert model.rnn.gate == "sigmoid" and model.pooling == "prob"
    listed = CliRunner().invoke(main, ["train", "--list-models"])
    assert "gcnn_vanishing:" in listed.output and "rnn_gate='sigmoid'" in listed.output
    other = tiny_train_args(tiny_store, tmp_path / "other", epochs=1)
    unknown = CliRunner().invoke(main, [*other, "--model-arg", "colour=red"])
    assert unknown.exit_code == 1 and "no setting colour" in unknown.output


@pytest.mark.slow
def test_sigkilled_run_resumes_like_an_uninterrupted_one(tiny_store, tmp_path):
    import signal
    import time

    def command(out, *extra):
        settings = dict(epochs=3, steps_per_epoch=60, log_every=10, seed=4)
        return [sys.executable, "-m", "fat", *tiny_train_args(tiny_store, out, **settings), *extra]

    killed = tmp_path / "killed"
    proc = subprocess.Popen(command(killed), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    last = RunDirectory(killed).checkpoint("last")
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
    from fat.core.evaluation import evaluate_scores
    from fat.models import create_model
    from fat.train.loop import validation_scores

    model = create_model("cnn", 16, 80, width=0.0625)
    results = []
    for budget in (GiB, 0):
        with load_training_data(tiny_store, ("curated",), 0.25, 0, budget) as data:
            assert data.splits[0].split.in_memory == (budget == GiB)
            scores = validation_scores(model, data, 32, torch.device("cpu"))
            results.append(evaluate_scores(scores, data.splits[0].split.vocabulary))
    ram, disk = results
    assert disk.loss == pytest.approx(ram.loss, rel=1e-6)
    assert disk.lwlrap == pytest.approx(ram.lwlrap, rel=1e-6)


def test_a_model_broken_in_a_later_epoch_leaves_best_intact(tiny_store, tmp_path):
    # Epoch 1 trains normally; epoch 2's single step at SWA's learning rate of 1e30 passes the
    # loss check (the loss is computed before the step) and leaves weights that overflow.
    settings = dict(epochs=2, steps_per_epoch=1, swa_start=2, swa_lr=1e30)
    with pytest.raises(FatError, match="non-finite in epoch 2.*up to epoch 1"):
        train(*tiny_run(tiny_store, tmp_path / "run", **settings))
    best = load_trained_model(tmp_path / "run", "best")
    assert best.epoch == 1
    assert all(torch.isfinite(p).all() for p in best.model.parameters())
    assert len(read_csv(tmp_path / "run" / "metrics.csv")) == 1


def test_tensorboard_events_hold_the_metrics_of_metrics_csv(tiny_store, tmp_path):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    import pandas as pd
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    train(*tiny_run(tiny_store, out, epochs=2))
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    logged = [e.value for e in events.Scalars("val_lwlrap")]
    assert logged == pytest.approx(pd.read_csv(out / "metrics.csv")["val_lwlrap"].tolist())


@pytest.mark.slow
def test_a_compiled_training_step_agrees_with_the_plain_one_and_resumes(tiny_store, tmp_path):
    experiment, plain = tiny_run(tiny_store, tmp_path / "plain", epochs=2, mixup=0.4)
    train(experiment, plain)
    compiled = plain.replace(out=str(tmp_path / "compiled"), compile=True)
    train(experiment, compiled, stop_after=1)
    train(experiment, compiled, resume=True)
    a = [float(r["train_loss"]) for r in read_csv(tmp_path / "plain" / "steps.csv")]
    b = [float(r["train_loss"]) for r in read_csv(tmp_path / "compiled" / "steps.csv")]
    assert len(a) == len(b) and b == pytest.approx(a, rel=1e-3)  # to rounding
    state = load_checkpoint(RunDirectory(tmp_path / "compiled").checkpoint("last"))
    assert not any("_orig_mod" in key for key in state["model"])  # the model saved as it is
    assert load_trained_model(tmp_path / "compiled", "best").epoch >= 1
