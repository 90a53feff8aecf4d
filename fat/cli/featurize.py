"""`fat featurize`: WAV -> log-mel, once, into a feature store."""

import json
import sys
from dataclasses import fields
from pathlib import Path

import click

from fat.config import LogMelConfig
from fat.dataset import SPLITS
from fat.errors import FatError

# Flags that set LogMelConfig fields; `None` means "from --config or the default".
_CONFIG_FLAGS = {
    "sample_rate": ("--sample-rate", int),
    "n_fft": ("--n-fft", int),
    "win_length": ("--win-length", int),
    "hop_length": ("--hop", int),
    "n_mels": ("--n-mels", int),
    "fmin": ("--fmin", float),
    "fmax": ("--fmax", float),
    "min_samples": ("--min-samples", int),
    "dtype": ("--dtype", click.Choice(["float16", "float32"])),
}


def feature_config(config_file: Path | None, overrides: dict) -> LogMelConfig:
    """Defaults, then a JSON config file, then command-line flags."""
    values = LogMelConfig().to_dict()
    if config_file is not None:
        try:
            values.update(json.loads(Path(config_file).read_text()))
        except (OSError, json.JSONDecodeError) as e:
            raise FatError(f"{config_file}: cannot read feature config ({e})") from None
    values.update({k: v for k, v in overrides.items() if v is not None})
    if overrides.get("n_fft") is not None and overrides.get("win_length") is None:
        values["win_length"] = values["n_fft"]
    if overrides.get("sample_rate") is not None and overrides.get("fmax") is None:
        values["fmax"] = values["sample_rate"] / 2
    known = {f.name for f in fields(LogMelConfig)}
    return LogMelConfig.from_dict({k: v for k, v in values.items() if k in known})


def _config_options(command):
    for name, (flag, kind) in reversed(_CONFIG_FLAGS.items()):
        default = getattr(LogMelConfig(), name)
        command = click.option(
            flag, name, type=kind, default=None, help=f"Feature setting (default {default})."
        )(command)
    return command


@click.command()
@click.option(
    "--data-dir",
    required=True,
    type=click.Path(path_type=Path),
    help="FSDKaggle2019-style directory (train_curated/, train_curated.csv, ...).",
)
@click.option(
    "--split",
    "split",
    required=True,
    type=click.Choice([*SPLITS, "all"]),
    help="Which split to featurize.",
)
@click.option(
    "--store",
    "store_path",
    required=True,
    type=click.Path(path_type=Path),
    help="Feature store path: .zarr (default format) or .h5.",
)
@click.option(
    "--format",
    "store_format",
    type=click.Choice(["zarr", "hdf5"]),
    help="Store format when the suffix does not say.",
)
@click.option(
    "--labels",
    "labels_file",
    type=click.Path(path_type=Path),
    help="Answer-key CSV (fname,labels) for the test split.",
)
@click.option("--workers", type=int, default=None, help="Featurizing threads (default: all cores).")
@click.option("--overwrite", is_flag=True, help="Recompute the split from scratch.")
@click.option("--strict", is_flag=True, help="Exit 1 if any clip or CSV row is skipped.")
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path),
    help="JSON file of feature settings (flags override it).",
)
@click.option(
    "--compression",
    type=click.Choice(["none", "zstd"]),
    default="none",
    show_default=True,
    help="Chunk compression (Zarr only).",
)
@click.option(
    "--commit-every",
    type=int,
    default=256,
    show_default=True,
    help="Clips per commit (or every 5 s): what a kill can lose and a rerun redoes.",
)
@click.option(
    "--device",
    default="auto",
    show_default=True,
    help="Where the log-mel runs: cpu, cuda[:N] (torch), or auto: CUDA when there is a GPU "
    "and at most 4 workers (measured faster there), else the CPU.",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@_config_options
def featurize(
    data_dir,
    split,
    store_path,
    store_format,
    labels_file,
    workers,
    overwrite,
    strict,
    config_file,
    compression,
    commit_every,
    device,
    quiet,
    **config_flags,
) -> None:
    """Decode WAVs, compute log-mel features and write them into a feature store.

    Rerunning the same command after an interruption continues where it stopped."""
    from fat.featurize.run import featurize_split

    cfg = feature_config(config_file, config_flags)
    splits = list(SPLITS) if split == "all" else [split]
    skipped = 0
    for name in splits:
        if split == "all" and not (data_dir / SPLITS[name].folder).is_dir():
            click.echo(f"{name}: no {SPLITS[name].folder}/ in {data_dir}, nothing to do")
            continue
        summary = featurize_split(
            data_dir,
            name,
            store_path,
            cfg,
            workers=workers,
            overwrite=overwrite,
            strict=strict,
            labels_file=labels_file if name == "test" else None,
            store_format=store_format,
            compression=compression,
            commit_every=commit_every,
            progress=not quiet,
            device=device,
        )
        for line in summary.lines():
            click.echo(line)
        skipped += len(summary.skipped)
    if strict and skipped:
        click.echo(f"error: {skipped} clip(s) skipped and --strict was given", err=True)
        sys.exit(1)
