"""The command line as a whole: generated options match the settings records, every option
has help, -h works, `python -m fat` works."""

import subprocess
import sys
from dataclasses import fields

import click
import pytest
from click.testing import CliRunner

from fat.cli import main
from fat.cli.options import flag_of
from fat.core.features import LogMelConfig
from fat.featurize.settings import FeaturizeOptions
from fat.predict.settings import PredictConfig
from fat.runs.settings import ExperimentConfig, RunOptions


def commands(group: click.Group, prefix: str = "fat"):
    for name, command in group.commands.items():
        yield f"{prefix} {name}", command
        if isinstance(command, click.Group):
            yield from commands(command, f"{prefix} {name}")


COMMANDS = list(commands(main))


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[name for name, _ in COMMANDS])
def test_every_option_has_help(name, command):
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help and param.help.strip(), f"{name} {param.opts[0]} has no help"
    assert command.help, f"{name} has no description"


@pytest.mark.parametrize(
    ("command", "records"),
    [
        ("train", (ExperimentConfig, RunOptions)),
        ("featurize", (LogMelConfig, FeaturizeOptions)),
        ("predict", (PredictConfig,)),
        ("evaluate", (PredictConfig,)),
        ("report", (PredictConfig,)),
        ("select-noisy", (PredictConfig,)),
    ],
)
def test_options_are_the_settings_fields(command, records):
    """A setting added to a record becomes a flag with its help; none is written by hand."""
    options = {p.name: p for p in main.commands[command].params if isinstance(p, click.Option)}
    for record in records:
        for f in fields(record):
            assert f.name in options, f"{command}: no option for {record.__name__}.{f.name}"
            option = options[f.name]
            assert (
                flag_of(f) in option.opts
                or f"--no-{f.name.replace('_', '-')}" in option.secondary_opts
            )
            assert f.metadata["help"] in option.help


def test_short_help_flag_and_python_dash_m():
    assert CliRunner().invoke(main, ["train", "-h"]).exit_code == 0
    assert CliRunner().invoke(main, ["store", "info", "-h"]).exit_code == 0
    done = subprocess.run([sys.executable, "-m", "fat", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "featurize" in done.stdout
