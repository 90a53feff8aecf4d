"""Every number a setting takes has a range, checked on construction: values from a flag, a
FAT_ variable, a settings file, a run's config.json, a checkpoint or a store's metadata are
refused by name, with the range, in one line, before anything is allocated or started."""

import json
import math
import multiprocessing
import shutil
import typing
from dataclasses import fields
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from fat.cli import main
from fat.core.errors import FatError
from fat.core.features import FEATURE_PRESETS, LogMelConfig
from fat.core.settings import MAX_WORKERS, Range, Settings, read_settings_file
from fat.demo.settings import DemoConfig
from fat.featurize.settings import FeaturizeOptions
from fat.predict.events import EventRule
from fat.predict.settings import DetectConfig, PredictConfig
from fat.runs.checkpoint import load_trained_model
from fat.runs.compose import resume_settings
from fat.runs.directory import RunDirectory
from fat.runs.recipes import list_recipes
from fat.runs.settings import ExperimentConfig, RunOptions
from fat.train.input_settings import InputBenchConfig
from fat.train.loop import train
from tests.synthetic import tiny_run

RECORDS = (
    ExperimentConfig,
    RunOptions,
    LogMelConfig,
    FeaturizeOptions,
    PredictConfig,
    DetectConfig,
    EventRule,
    InputBenchConfig,
    DemoConfig,
)


def as_saved(values: dict) -> dict:
    """`values` as a settings file or a saved run gives them back (JSON: NaN included)."""
    return json.loads(json.dumps(values))


def refusal(record: type[Settings], values: dict) -> str:
    with pytest.raises(FatError) as error:
        record.from_dict(as_saved(values))
    message = str(error.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("record", "values", "expected"),
    [
        (ExperimentConfig, {"crop_frames": 10**9}, "need crop_frames <= 100000 (range 8..100000)"),
        (ExperimentConfig, {"steps_per_epoch": 10**15}, "need steps_per_epoch <= 10000000"),
        (ExperimentConfig, {"lr": math.nan}, "need lr in (0, 3e+38], got nan"),
        (ExperimentConfig, {"time_masks": 10**9}, "need time_masks <= 64 (range 0..64)"),
        (ExperimentConfig, {"folds": 10**9}, "need folds <= 1000 (range 0..1000)"),
        (ExperimentConfig, {"seed": 2**80}, "need seed <= 4294967295 (range 0..4294967295)"),
        (ExperimentConfig, {"width": 500}, "need width <= 4 (range (0, 4]), got 500"),
        (ExperimentConfig, {"width": 1e6}, "need width <= 4"),
        (LogMelConfig, {"n_fft": 2**40}, "need n_fft <= 65536 (range 16..65536)"),
        (LogMelConfig, {"n_mels": 10**9}, "need n_mels <= 1024 (range 1..1024)"),
        (RunOptions, {"workers": 100_000}, f"need workers <= {MAX_WORKERS}"),
        (FeaturizeOptions, {"workers": 100_000}, f"need workers <= {MAX_WORKERS}"),
        (InputBenchConfig, {"workers": 100_000}, f"need workers <= {MAX_WORKERS}"),
        (DemoConfig, {"workers": 100_000}, f"need workers <= {MAX_WORKERS}"),
    ],
)
def test_the_audits_values_are_refused_by_name_with_their_range(record, values, expected):
    message = refusal(record, values)
    assert message.startswith(f"invalid {record.KIND}: {expected}"), message
    assert str(next(iter(values.values())))[:6] in message or "nan" in message


def numeric(hint) -> type | None:
    """int or float for a setting holding numbers (alone, optional, or a mapping's values)."""
    if typing.get_origin(hint) is dict:
        hint = typing.get_args(hint)[1]
    options = set(typing.get_args(hint)) - {type(None)} if typing.get_args(hint) else {hint}
    return next((t for t in (int, float) if options == {t}), None)


def numeric_fields(record: type[Settings]) -> list[tuple[str, type, Range]]:
    hints = typing.get_type_hints(record)
    found = []
    for f in fields(record):
        kind = numeric(hints[f.name])
        if kind is not None:
            found.append((f.name, kind, f.metadata.get("range")))
    return found


def test_every_number_has_a_range_of_its_type_holding_defaults_presets_and_recipes():
    assert {c for c in Settings.__subclasses__() if c.__module__.startswith("fat.")} == set(RECORDS)
    for record in RECORDS:
        default = record()
        for name, kind, bounds in numeric_fields(record):
            assert bounds is not None, f"{record.__name__}.{name} has no range"
            ends = (bounds.low, bounds.high)
            if kind is int:
                assert all(type(e) is int for e in ends) and not bounds.low_open, name
                assert not bounds.high_open, name
            else:
                assert all(type(e) is float for e in ends), f"{name}: float ends, as 0.0"
            value = getattr(default, name)
            for number in value.values() if isinstance(value, dict) else [value]:
                assert number is None or bounds.refusal(name, number) is None, name
    for preset in FEATURE_PRESETS.values():
        LogMelConfig.from_dict(preset.to_dict())
    recipes = list_recipes()
    assert len(recipes) >= 10
    for recipe in recipes:
        recipe.config()  # every value a recipe sets is within its range


def test_the_ends_of_a_range_are_allowed_and_one_past_them_is_not():
    assert ExperimentConfig(crop_frames=8).crop_frames == 8
    assert ExperimentConfig(crop_frames=100_000).crop_frames == 100_000
    assert "need crop_frames <= 100000" in refusal(ExperimentConfig, {"crop_frames": 100_001})
    assert "need crop_frames >= 8 (range 8..100000), got 7" in refusal(
        ExperimentConfig, {"crop_frames": 7}
    )
    assert ExperimentConfig(seed=2**32 - 1).seed == 2**32 - 1
    assert "need seed <= 4294967295" in refusal(ExperimentConfig, {"seed": 2**32})
    assert ExperimentConfig(width=4).width == 4.0 and ExperimentConfig(ema=0.999).ema == 0.999
    assert "need width > 0 (range (0, 4]), got 0" in refusal(ExperimentConfig, {"width": 0})
    assert "need ema < 1 (range [0, 1)), got 1.0" in refusal(ExperimentConfig, {"ema": 1.0})
    for record in (RunOptions, FeaturizeOptions, InputBenchConfig, DemoConfig):
        assert record(workers=MAX_WORKERS).workers == MAX_WORKERS
        message = refusal(record, {"workers": MAX_WORKERS + 1})
        assert f"need workers <= {MAX_WORKERS}" in message and str(MAX_WORKERS + 1) in message
    # 4 per usable core, within 8..256: enough for I/O-bound workers, never a process storm.
    assert 8 <= MAX_WORKERS <= 256


def test_nan_and_infinity_are_refused_for_every_float_setting():
    for record in RECORDS:
        hints = typing.get_type_hints(record)
        for name, kind, _ in numeric_fields(record):
            if kind is not float:
                continue
            for bad in (math.nan, math.inf, -math.inf):
                value = {"curated": bad} if typing.get_origin(hints[name]) is dict else bad
                message = refusal(record, {name: value})
                assert f"need {name}" in message, (record.__name__, name, message)


def test_integers_past_floats_range_are_refused_not_crashed(tmp_path):
    assert "need lr <= 3e+38" in refusal(ExperimentConfig, {"lr": 10**400})
    assert "an integer of 1329 bits" in refusal(ExperimentConfig, {"lr": 10**400})
    assert "need sample_rate <= 384000" in refusal(LogMelConfig, {"sample_rate": 10**400})
    path = tmp_path / "huge.json"
    path.write_text('{"experiment": {"epochs": ' + "9" * 5000 + "}}")
    with pytest.raises(FatError, match="huge.json: not valid JSON"):
        read_settings_file(path)


def test_settings_in_range_that_multiply_past_memory_are_refused():
    message = refusal(ExperimentConfig, {"batch_size": 4096, "crop_frames": 10_000})
    assert "batch_size x crop_frames must be at most 16777216 frames" in message
    message = refusal(ExperimentConfig, {"steps_per_epoch": 10**6, "batch_size": 32})
    assert "steps_per_epoch x batch_size must be at most 10000000 crops" in message
    message = refusal(InputBenchConfig, {"batch_size": 65536, "batches": 100_000})
    assert "batches x batch_size must be at most 10000000 crops" in message
    for key in ("rnn_hidden", "gcnn_channels"):
        message = refusal(ExperimentConfig, {"arch": "gcnn", "model_kwargs": {key: 10**9}})
        assert f"need model_kwargs {key} <= 4096" in message
    assert ExperimentConfig(arch="gcnn", model_kwargs={"rnn_hidden": 256}).model_kwargs
    assert "hop_length 4096 must be at most n_fft=2560" in refusal(
        LogMelConfig, {"hop_length": 4096}
    )


def test_applying_and_event_settings_have_ranges_too():
    assert "need batch_size <= 65536" in refusal(PredictConfig, {"batch_size": 10**9})
    assert "need hop_seconds > 0" in refusal(DetectConfig, {"hop_seconds": 0})
    assert "need median_filter_s <= 60" in refusal(EventRule, {"median_filter_s": 1e9})
    assert "need max_seconds <= 7200" in refusal(FeaturizeOptions, {"max_seconds": 1e12})
    assert "need commit_every <= 100000" in refusal(FeaturizeOptions, {"commit_every": 10**12})
    assert "need scale <= 100" in refusal(DemoConfig, {"scale": 1e9})


def test_help_shows_the_ranges():
    shown = CliRunner().invoke(main, ["train", "--help"]).output
    assert "[range: 8..100000]" in shown and f"0..{MAX_WORKERS}]" in shown


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    """A tiny one-epoch run with a checkpoint: the template the crafted runs are copied from."""
    from tests.synthetic import build_store

    root = tmp_path_factory.mktemp("ranges")
    build_store(root / "features.zarr", 24)
    out = root / "run"
    train(*tiny_run(root / "features.zarr", out, epochs=1))
    return out


def crafted_copy(trained_run: Path, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    return run


def test_a_run_whose_config_asks_for_100000_workers_is_refused_on_resume(trained_run, tmp_path):
    run = crafted_copy(trained_run, tmp_path)
    config = run / "config.json"
    saved = json.loads(config.read_text())
    saved["options"]["workers"] = 100_000
    config.write_text(json.dumps(saved))
    with pytest.raises(FatError, match=f"need workers <= {MAX_WORKERS}.*got 100000"):
        resume_settings(run, {"epochs": 2})
    assert multiprocessing.active_children() == []  # refused before any worker started
    intact = {**saved, "options": {**saved["options"], "workers": 0}}
    resume = ["train", "--out", str(run), "--resume", "--epochs", "2", "--print-config"]
    # From the run's config.json, or from --workers on an intact run:
    for written, flags in ((saved, []), (intact, ["--workers", "100000"])):
        config.write_text(json.dumps(written))
        done = CliRunner().invoke(main, resume + flags)
        assert done.exit_code == 1 and "Traceback" not in done.output, done.output
        assert f"need workers <= {MAX_WORKERS}" in done.output and "100000" in done.output
    assert CliRunner().invoke(main, resume).exit_code == 0  # the intact run resumes


def test_fat_workers_100000_is_refused_before_anything_runs(tmp_path):
    env = {"FAT_WORKERS": "100000", "FAT_DEVICE": "cpu"}
    store, out = str(tmp_path / "features.zarr"), str(tmp_path / "run")
    for args in (
        ["train", "--store", store, "--out", out, "--print-config"],
        ["featurize", "--store", store, "--split", "curated"],
    ):
        done = CliRunner(env=env).invoke(main, args)
        assert done.exit_code == 1 and "Traceback" not in done.output, done.output
        assert f"need workers <= {MAX_WORKERS}" in done.output and "100000" in done.output
    assert not Path(out).exists() and multiprocessing.active_children() == []


def test_a_crafted_checkpoint_is_refused_in_one_line_naming_its_file(trained_run, tmp_path):
    run = crafted_copy(trained_run, tmp_path)
    path = RunDirectory.existing(run).checkpoint("best")
    state = torch.load(path, weights_only=True)
    state["feature_config"]["n_fft"] = 2**40
    torch.save(state, path)
    with pytest.raises(FatError) as error:
        load_trained_model(run, "best")
    message = str(error.value)
    assert message.startswith(f"{path}: invalid feature config: need n_fft <= 65536"), message
    assert "\n" not in message
    state["feature_config"]["n_fft"] = 2560
    state["experiment"]["width"] = 1e6
    torch.save(state, path)
    with pytest.raises(FatError, match=r"best\.pt: invalid train config: need width <= 4"):
        load_trained_model(run, "best")
