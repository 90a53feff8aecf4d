"""Settings records: types, choices and unknown keys refused by name; files read; derived
defaults resolved before saving."""

import pytest

from fat.core.errors import FatError
from fat.core.features import LogMelConfig
from fat.core.settings import read_settings_file
from fat.featurize.settings import FeaturizeOptions
from fat.predict.settings import PredictConfig
from fat.runs.settings import ExperimentConfig, RunOptions


def test_wrong_types_and_unknown_keys_are_refused_by_name():
    with pytest.raises(FatError, match="feature config: n_mels must be an integer, got '64'"):
        LogMelConfig.from_dict({"n_mels": "64"})
    with pytest.raises(FatError, match="unknown setting.*n_mel"):
        LogMelConfig.from_dict({"n_mel": 64})
    with pytest.raises(FatError, match="n_mels must be an integer, got \\[64\\]"):
        LogMelConfig(n_mels=[64])
    with pytest.raises(FatError, match="true or false"):
        LogMelConfig(center=1)
    with pytest.raises(FatError, match="schedule must be one of constant, cyclic"):
        ExperimentConfig(schedule="linear")
    with pytest.raises(FatError, match="model_kwargs must be a mapping"):
        ExperimentConfig(model_kwargs=["x"])
    with pytest.raises(FatError, match="device must be auto, cpu, cuda or cuda:N"):
        RunOptions(device="gpu")
    with pytest.raises(FatError, match="log_every >= 1"):
        RunOptions(log_every=0)
    with pytest.raises(FatError, match="seed >= 0"):
        ExperimentConfig(seed=-1)
    with pytest.raises(FatError, match="overlap"):
        PredictConfig(overlap=1.0)
    with pytest.raises(FatError, match="workers >= 1"):
        FeaturizeOptions(workers=0)


def test_values_are_normalised_to_their_declared_types():
    cfg = ExperimentConfig.from_dict({"lr": 1, "train_splits": ["curated", "noisy"]})
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float)
    assert cfg.train_splits == ("curated", "noisy")
    assert ExperimentConfig.from_dict(cfg.to_dict()) == cfg  # a saved record loads back equal
    assert cfg.replace(epochs=3).epochs == 3 and cfg.replace(epochs=3).lr == 1.0


def test_derived_defaults_follow_the_settings_they_derive_from():
    assert LogMelConfig(n_fft=4096).win_length == 4096
    assert LogMelConfig(sample_rate=32000).fmax == 16000.0
    assert LogMelConfig(n_fft=4096, win_length=2048).win_length == 2048
    assert LogMelConfig() == LogMelConfig(win_length=2560, fmax=22050.0)
    assert LogMelConfig(n_fft=4096).to_dict()["win_length"] == 4096  # saved resolved


def test_settings_files_json_toml_and_bad_ones(tmp_path):
    (tmp_path / "a.json").write_text('{"n_mels": 64}')
    (tmp_path / "a.toml").write_text("n_mels = 64\n")
    (tmp_path / "bom.json").write_bytes(b'\xef\xbb\xbf{"n_mels": 64}')
    for name in ("a.json", "a.toml", "bom.json"):
        assert LogMelConfig.from_dict(read_settings_file(tmp_path / name)).n_mels == 64
    (tmp_path / "bad.json").write_text("{n_mels: 64")
    (tmp_path / "list.json").write_text("[1]")
    for name, reason in [
        ("bad.json", "not valid JSON"),
        ("list.json", "expected an object"),
        ("none.json", "cannot read"),
    ]:
        with pytest.raises(FatError, match=reason) as error:
            read_settings_file(tmp_path / name)
        assert name in str(error.value)


def test_resumable_settings_are_declared_on_the_fields():
    saved = ExperimentConfig(epochs=2)
    saved.check_resumable_as(saved.replace(epochs=5))
    with pytest.raises(FatError, match="lr, mixup differ from the saved run.*only epochs"):
        saved.check_resumable_as(saved.replace(lr=0.1, mixup=0.2))
