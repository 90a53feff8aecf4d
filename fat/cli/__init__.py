"""`fat` command line: a thin layer over library functions that tests call directly. Options
of commands with settings are generated from the settings records (`fat.cli.options`)."""

import sys

import click

from fat import __version__
from fat.core.errors import FatError
from fat.core.files import DISK_FULL
from fat.core.memory import keep_freed_memory


class FatGroup(click.Group):
    """Turns a FatError anywhere below into one `error: ...` line and exit status 1, and
    Ctrl-C into one line and status 130 (128 + SIGINT, as shells report it)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except FatError as e:
            click.echo("error: " + " ".join(str(e).split()), err=True)  # one line, always
            sys.exit(1)
        except OSError as e:
            if e.errno not in DISK_FULL:
                raise
            where = f" ({e.filename})" if e.filename else ""
            click.echo(
                f"error: the disk is full{where}: {e.strerror}; free space and run the command "
                "again (what was written before is intact)",
                err=True,
            )
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo(
                f"\ninterrupted; {AFTER_INTERRUPT.get(ctx.invoked_subcommand, INTACT)}", err=True
            )
            sys.exit(130)


INTACT = "what was written is intact"
RERUN = f"{INTACT}: the same command, run again, continues"
# What continues the work of a command stopped by Ctrl-C, by command.
AFTER_INTERRUPT = {
    "train": f"{INTACT}: `fat train --out RUN --resume` continues the run",
    "featurize": RERUN,
    "cv": RERUN,
    "store": RERUN,  # copy and merge continue; the other store commands only read
    "demo": RERUN,
}


@click.group(cls=FatGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fat")
def main() -> None:
    """Multi-label audio tagging for FSDKaggle2019-style data."""
    keep_freed_memory()  # before any command imports torch


def _register() -> None:
    from fat.cli.bench import bench
    from fat.cli.cv import cv, ensemble, pseudo_label
    from fat.cli.demo import demo, demo_data
    from fat.cli.detect import detect
    from fat.cli.events import evaluate_events_command, tune_thresholds_command
    from fat.cli.featurize import featurize
    from fat.cli.predict import embed, evaluate, export_model, predict, select_noisy, tag
    from fat.cli.report import report
    from fat.cli.store import store
    from fat.cli.train import train

    for command in (
        store,
        featurize,
        train,
        cv,
        predict,
        ensemble,
        pseudo_label,
        evaluate,
        tag,
        detect,
        evaluate_events_command,
        tune_thresholds_command,
        embed,
        export_model,
        report,
        bench,
        select_noisy,
        demo_data,
        demo,
    ):
        main.add_command(command)


_register()
