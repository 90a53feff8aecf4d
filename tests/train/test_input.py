"""The training input at any size: the RAM budget and its rule, where each split lives, crops
gathered in device memory equal to the CPU ones, and `fat bench input`."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from fat.cli import main
from fat.core.errors import FatError
from fat.runs.settings import ExperimentConfig
from fat.train.data import available_memory, load_training_data, memory_budget
from fat.train.input_bench import measure_input
from fat.train.input_settings import InputBenchConfig
from fat.train.loaders import CropBatchSource, ResidentLoader, TorchLoader, place_data
from fat.train.loop import train
from tests.synthetic import GiB, build_store, tiny_run

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(scope="module")
def two_splits(tmp_path_factory) -> Path:
    """A small curated split and a noisy one about twice its size."""
    path = tmp_path_factory.mktemp("input") / "features.zarr"
    build_store(path, 30, split="curated")
    build_store(path, 60, split="noisy")
    return path


def test_the_default_budget_follows_the_machines_available_memory():
    for workers in (0, 3):
        budget, rule = memory_budget(None, workers)
        expected = int(available_memory() * 0.9) - (2 + workers) * GiB
        assert abs(budget - max(0, expected)) < 256 * 2**20  # MemAvailable moves a little
        assert f"{workers} x 1 GiB" in rule and "available" in rule
    assert memory_budget(None, 0)[0] > memory_budget(None, 3)[0] or memory_budget(None, 0)[0] == 0
    assert memory_budget(1.5, 4) == (int(1.5 * GiB), "1.5 GiB (--memory-budget-gb)")


def test_splits_go_to_ram_smallest_first_and_one_that_does_not_fit_streams(two_splits):
    with load_training_data(two_splits, ("noisy", "curated"), 0.0, 0, 0) as on_disk:
        sizes = {s.name: s.split.nbytes() for s in on_disk.splits}
    assert sizes["curated"] < sizes["noisy"]
    # Room for the curated split only: it is in RAM whole, the noisy one is not touched.
    budget = sizes["curated"] + sizes["noisy"] // 2
    with load_training_data(two_splits, ("noisy", "curated"), 0.0, 0, budget) as data:
        where = {s.name: s.split.in_memory for s in data.splits}
        assert where == {"curated": True, "noisy": False}
        noisy = data.splits[data.names.index("noisy")].split
        assert noisy.direct is not None  # streamed by direct chunk reads, nothing loaded
    with load_training_data(two_splits, ("noisy", "curated"), 0.0, 0, sum(sizes.values())) as d:
        assert all(s.split.in_memory for s in d.splits)


@pytest.mark.parametrize("device", DEVICES)
def test_crops_gathered_in_device_memory_equal_the_cpu_loaders(two_splits, device):
    # Batches mixing both splits, clips shorter than the crop among them (wrap and own frames).
    experiment = ExperimentConfig(
        train_splits=("curated", "noisy"),
        batch_size=8,
        crop_frames=96,
        seed=2,
        steps_per_epoch=12,
        split_weights={"curated": 0.5, "noisy": 0.5},
    )
    with load_training_data(two_splits, experiment.train_splits, 0.2, 0, GiB) as data:
        source = CropBatchSource(data, experiment)
        assert (min(s.split.lengths.min() for s in data.splits)) < 96
        with TorchLoader(source, torch.device("cpu")) as loader:
            reference = [[t.clone() for t in b] for e in (1, 2) for b in loader.epoch(e)]
        with ResidentLoader(source, torch.device(device)) as loader:
            got = [[t.cpu() for t in b] for e in (1, 2) for b in loader.epoch(e)]
    assert len(got) == len(reference) == 24
    assert any(len(set(b[2].tolist())) == 2 for b in reference)  # some batches mix splits
    for a, b in zip(got, reference, strict=True):
        assert [t.dtype for t in a] == [t.dtype for t in b]
        assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))


def test_resident_data_needs_every_split_in_ram(two_splits):
    experiment = ExperimentConfig(train_splits=("curated",), batch_size=4, crop_frames=32)
    with load_training_data(two_splits, ("curated",), 0.0, 0, 0) as data:
        with pytest.raises(FatError, match="every split in RAM"):
            ResidentLoader(CropBatchSource(data, experiment), torch.device("cpu"))
        with pytest.raises(FatError, match="needs training on a GPU"):
            place_data("cuda", torch.device("cpu"), data)
        assert place_data("auto", torch.device("cpu"), data) == torch.device("cpu")


def test_a_runs_first_lines_say_where_the_data_is(two_splits, tmp_path, capsys):
    budget_gb = 1e-6  # nothing fits: both splits stream and the disk rate is probed
    train(
        *tiny_run(
            two_splits,
            tmp_path / "run",
            train_splits=("curated", "noisy"),
            epochs=1,
            quiet=False,
            memory_budget_gb=budget_gb,
        )
    )
    lines = capsys.readouterr().err.splitlines()
    data_line = next(line for line in lines if line.startswith("data: "))
    assert "curated" in data_line and "noisy" in data_line and "from disk" in data_line
    assert "RAM budget 1e-06 GiB (--memory-budget-gb)" in data_line
    assert any(line.startswith("input: dali loader") for line in lines)
    assert any("disk-backed batches came at" in line for line in lines)


def test_measure_input_rates_every_path_against_the_raw_gather(two_splits):
    config = InputBenchConfig(splits=("curated", "noisy"), batch_size=8, batches=3, rounds=2)
    rates = {r.path: r for r in measure_input(two_splits, config, progress=False)}
    reference = rates["numpy gather from RAM (reference)"]
    assert reference.vs_reference == 1.0 and reference.crops_per_s > 0
    for path in ("dali, RAM", "torch, RAM", "dali, disk cold", "torch, disk warm"):
        assert rates[path].crops_per_s > 0 and rates[path].vs_reference > 0
    if not torch.cuda.is_available():
        assert rates["resident"].crops_per_s is None and "no CUDA" in rates["resident"].note
    # A budget too small for the splits: the RAM paths are named as impossible, disk still runs.
    small = config.replace(memory_budget_gb=1e-6, loaders=("dali",))
    rates = {r.path: r for r in measure_input(two_splits, small, progress=False)}
    assert "do not fit the RAM budget" in rates["numpy gather from RAM (reference)"].note
    assert "dali, RAM" not in rates and rates["dali, disk warm"].crops_per_s > 0
    assert rates["dali, disk warm"].vs_reference is None


def test_fat_bench_input_prints_a_table_or_json(two_splits):
    runner = CliRunner()
    flags = ["--store", str(two_splits), "--batch-size", "8", "--batches", "2", "--rounds", "1"]
    table = runner.invoke(main, ["bench", "input", *flags, "--quiet"])
    assert table.exit_code == 0, table.output
    first, *rows = table.output.splitlines()
    assert first.split()[:2] == ["path", "crops/s"] and len(rows) >= 7
    out = runner.invoke(
        main, ["bench", "input", *flags, "--quiet", "--format", "json", "--loaders", "dali"]
    )
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    assert report["settings"]["loaders"] == ["dali"]
    paths = [r["path"] for r in report["rates"]]
    assert "dali, disk cold" in paths and "torch, RAM" not in paths
    bad = runner.invoke(main, ["bench", "input", *flags, "--loaders", "dali,fast"])
    assert bad.exit_code == 1 and "loaders must be among dali, torch" in bad.output
    assert "Traceback" not in bad.output
    missing = runner.invoke(main, ["bench", "input", "--store", str(two_splits) + ".nope"])
    assert missing.exit_code == 1 and missing.output.startswith("error: ")
    assert np.isfinite(report["rates"][0]["crops_per_s"])
