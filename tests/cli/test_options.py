"""The command line as a whole: generated options match the settings records, every option
has help, -h works, `python -m fat` works."""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import fields
from pathlib import Path

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


def test_fat_variables_are_defaults_for_store_device_and_workers(tiny_store, tmp_path):
    from tests.synthetic import TINY, cli_flags

    env = {"FAT_STORE": str(tiny_store), "FAT_DEVICE": "cpu", "FAT_WORKERS": "0"}
    out = tmp_path / "run"
    args = ["train", "--out", str(out), "--print-config", *cli_flags(**TINY)]
    printed = CliRunner(env=env).invoke(main, args)
    assert printed.exit_code == 0, printed.output
    options = json.loads(printed.output)["options"]
    assert options["store"] == str(tiny_store) and options["device"] == "cpu"
    flag_wins = CliRunner(env=env).invoke(main, [*args, "--store", "other.zarr"])
    assert json.loads(flag_wins.output)["options"]["store"] == "other.zarr"
    assert "FAT_STORE" in CliRunner().invoke(main, ["train", "-h"]).output
    assert "FAT_STORE" in CliRunner().invoke(main, ["predict", "-h"]).output
    # Resuming, the run's saved store wins over the variable (it is a default, not a flag).
    train_args = ["train", "--out", str(out), *cli_flags(**TINY), "--quiet"]
    trained = CliRunner(env=env).invoke(main, train_args)
    assert trained.exit_code == 0, trained.output
    moved = {**env, "FAT_STORE": str(tmp_path / "no-such.zarr")}
    resume = ["train", "--resume", "--out", str(out), "--epochs", "3", "--quiet"]
    resumed = CliRunner(env=moved).invoke(main, resume)
    assert resumed.exit_code == 0, resumed.output


def test_shell_completion_script(tmp_path):
    fat = Path(sys.executable).parent / "fat"
    env = {**os.environ, "_FAT_COMPLETE": "bash_source"}
    done = subprocess.run([str(fat)], capture_output=True, text=True, env=env)
    assert done.returncode == 0 and "_fat_completion" in done.stdout and "complete " in done.stdout


def test_progress_bars_stay_out_of_logs(tiny_store):
    # stderr is a pipe here, as in a log file: the lines come, the bar redraws do not.
    fat = Path(sys.executable).parent / "fat"
    command = [str(fat), "store", "verify", str(tiny_store)]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr and "frame/s" not in done.stderr and "%|" not in done.stderr


@pytest.mark.slow
def test_ctrl_c_exits_130_with_one_line(tiny_store, tmp_path):
    from tests.synthetic import TINY, cli_flags, hears_ctrl_c

    fat = Path(sys.executable).parent / "fat"
    out = tmp_path / "run"
    flags = cli_flags(**{**TINY, "epochs": 500})
    command = [str(fat), "train", "--store", str(tiny_store), "--out", str(out), *flags]
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=hears_ctrl_c
    )
    deadline = time.monotonic() + 120
    while not (out / "checkpoints" / "last.pt").exists():  # training, past its first epoch
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr and stderr.strip().splitlines()[-1].startswith("interrupted")
    assert "--resume" in stderr.strip().splitlines()[-1]  # a run continues with --resume
    resume = ["train", "--resume", "--out", str(out), "--epochs", "3", "--quiet"]
    resumed = CliRunner().invoke(main, resume)
    assert resumed.exit_code == 0, resumed.output


# Commands that print what a store holds, or take seconds (report, export): no bar to hide.
NO_PROGRESS = {
    "fat store info",
    "fat store ls",
    "fat store show",
    "fat store stats",
    "fat report",
    "fat export",
    # One line per thing done; its one long part, an HDF5 file's copy without its holes, is a
    # single libhdf5 call per split with no steps to count.
    "fat store repair",
}


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[name for name, _ in COMMANDS])
def test_every_command_with_long_work_has_quiet(name, command):
    if isinstance(command, click.Group) or name in NO_PROGRESS:
        return
    assert "--quiet" in {o for p in command.params for o in getattr(p, "opts", [])}, name
