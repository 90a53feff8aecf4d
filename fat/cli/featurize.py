"""`fat featurize`: WAV -> log-mel, once, into a feature store. Its feature options are the
fields of `LogMelConfig`, its run options those of `FeaturizeOptions`."""

import sys
from pathlib import Path

import click

from fat.cli.options import given_settings, settings_file_option, settings_options, store_option
from fat.core.features import FEATURE_PRESETS, LogMelConfig
from fat.core.layout import SPLITS
from fat.core.settings import read_settings_file
from fat.featurize.settings import FeaturizeOptions


def _list_presets(ctx: click.Context, _param, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    for name, cfg in FEATURE_PRESETS.items():
        settings = ", ".join(f"{k}={v}" for k, v in cfg.to_dict().items())
        click.echo(f"{name}: {settings}")
    ctx.exit()


@click.command()
@click.option(
    "--data-dir",
    required=True,
    type=click.Path(path_type=Path),
    help="FSDKaggle2019-style directory (train_curated/, train_curated.csv, ...).",
)
@click.option(
    "--split", required=True, type=click.Choice([*SPLITS, "all"]), help="Which split to featurize."
)
@store_option("Feature store path: .zarr (default format) or .h5.", "store_path", required=True)
@click.option(
    "--labels",
    "labels_file",
    type=click.Path(path_type=Path),
    help="Answer-key CSV (fname,labels) for the test split.",
)
@click.option(
    "--preset",
    type=click.Choice(sorted(FEATURE_PRESETS)),
    help="Named feature settings to start from (--list-presets shows them); --config and "
    "flags given with it override it.",
)
@click.option(
    "--list-presets",
    is_flag=True,
    is_eager=True,
    expose_value=False,
    callback=_list_presets,
    help="Print the feature presets and exit.",
)
@settings_file_option("feature settings (a split's saved feature config works)")
@settings_options(FeaturizeOptions, LogMelConfig)
def featurize(data_dir, split, store_path, labels_file, preset, config_file, **kw) -> None:
    """Decode WAVs, compute log-mel features and write them into a feature store.

    Rerunning the same command after an interruption continues where it stopped."""
    from fat.featurize.inputs import splits_to_featurize
    from fat.featurize.run import featurize_split

    options = FeaturizeOptions.from_dict(given_settings(FeaturizeOptions, kw))
    saved = read_settings_file(config_file) if config_file is not None else {}
    base = FEATURE_PRESETS[preset].to_dict() if preset else {}
    cfg = LogMelConfig.from_dict({**base, **saved, **given_settings(LogMelConfig, kw)})
    splits, warnings = splits_to_featurize(data_dir, split)
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    skipped = 0
    for name in splits:
        labels = labels_file if name == "test" else None
        summary = featurize_split(data_dir, name, store_path, cfg, options, labels_file=labels)
        for line in summary.lines():
            click.echo(line)
        skipped += len(summary.skipped)
    if options.strict and skipped:
        click.echo(f"error: {skipped} clip(s) skipped and --strict was given", err=True)
        sys.exit(1)
