"""`fat bench ...`: how fast this machine feeds a model from a user's own store."""

import json
from pathlib import Path

import click

from fat.cli.options import given_settings, settings_options, store_option, table_format_option
from fat.train.input_settings import InputBenchConfig


@click.group()
def bench() -> None:
    """Measure this machine on your own data (input)."""


@bench.command(name="input")
@store_option("Feature store to read the crops from.", "store_path", required=True)
@table_format_option("table: a line per path; json: the rates and settings.", ("table", "json"))
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@settings_options(InputBenchConfig)
def input_command(store_path: Path, fmt: str, quiet: bool, **kw) -> None:
    """Crops/s the training input reaches on each path (RAM, disk cold and warm, GPU memory)
    against one numpy gather of the same crops. Run it before a long training run: a path far
    below the model's samples/s is where the run would wait."""
    from fat.train.input_bench import measure_input, rate_table

    config = InputBenchConfig.from_dict(given_settings(InputBenchConfig, kw))
    rates = measure_input(store_path, config, progress=not quiet)
    if fmt == "json":
        rows = [r.to_dict() for r in rates]
        click.echo(json.dumps({"settings": config.to_dict(), "rates": rows}, indent=1))
    else:
        click.echo(rate_table(rates))
