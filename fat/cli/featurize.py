"""`fat featurize`: audio -> log-mel, once, into a feature store, from a data set in its own
published layout (`fat.datasets`). Its feature options are the fields of `LogMelConfig`, its
run options those of `FeaturizeOptions`."""

import sys
from pathlib import Path

import click

from fat.cli.options import given_settings, settings_file_option, settings_options, store_option
from fat.core.features import FEATURE_PRESETS, LogMelConfig
from fat.core.settings import read_settings_file
from fat.featurize.settings import FeaturizeOptions


def _list_presets(ctx: click.Context, _param, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    for name, cfg in FEATURE_PRESETS.items():
        settings = ", ".join(f"{k}={v}" for k, v in cfg.to_dict().items())
        click.echo(f"{name}: {settings}")
    ctx.exit()


def _list_datasets(ctx: click.Context, _param, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from fat.datasets import dataset_names, get_dataset

    for name in dataset_names():
        adapter = get_dataset(name)
        splits = ", ".join(adapter.splits) or "from the data"
        click.echo(f"{name}: {adapter.description}\n  splits: {splits}; metric: {adapter.headline}")
    ctx.exit()


@click.command()
@click.option(
    "--dataset",
    default="fat2019",
    show_default=True,
    help="The data set's layout (--list-datasets shows them): fat2019, fsd50k, esc50, "
    "audioset, csv (--manifest), folders (one folder per class).",
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    help="The data set's root folder, as published (default for csv: the manifest's folder).",
)
@click.option(
    "--split",
    default="all",
    show_default=True,
    help="Which of the data set's splits to featurize, by its own name (fat2019: curated, "
    "noisy, test; fsd50k: train, val, eval), or all.",
)
@store_option("Feature store path: .zarr (default format) or .h5.", "store_path", required=True)
@click.option(
    "--labels",
    "labels_file",
    type=click.Path(path_type=Path),
    help="fat2019: answer-key CSV (fname,labels) for the test split.",
)
@click.option(
    "--manifest",
    type=click.Path(path_type=Path),
    help="csv: the table of clips (columns path, labels; optional split, fold).",
)
@click.option(
    "--vocabulary",
    type=click.Path(path_type=Path),
    help="csv: the class names, one per line, in order (default: the labels seen, sorted).",
)
@click.option(
    "--list-datasets",
    is_flag=True,
    is_eager=True,
    expose_value=False,
    callback=_list_datasets,
    help="Print the data set layouts and exit.",
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
def featurize(
    dataset,
    data_dir,
    split,
    store_path,
    labels_file,
    manifest,
    vocabulary,
    preset,
    config_file,
    **kw,
) -> None:
    """Decode audio files, compute log-mel features and write them into a feature store.

    Rerunning the same command after an interruption continues where it stopped."""
    from fat.core.errors import FatError
    from fat.datasets import DatasetOptions, get_dataset
    from fat.featurize.run import featurize_listing

    options = FeaturizeOptions.from_dict(given_settings(FeaturizeOptions, kw))
    saved = read_settings_file(config_file) if config_file is not None else {}
    base = FEATURE_PRESETS[preset].to_dict() if preset else {}
    cfg = LogMelConfig.from_dict({**base, **saved, **given_settings(LogMelConfig, kw)})
    from fat.store.remote import check_writable_location

    check_writable_location(store_path)  # before any data is read: a URL is read-only to fat
    if data_dir is None and manifest is None:
        raise FatError("--data-dir: the data set's root folder is needed")
    root = data_dir if data_dir is not None else Path(manifest).parent
    given = DatasetOptions(manifest=manifest, vocabulary=vocabulary, labels=labels_file)
    listing = get_dataset(dataset).read(root, None if split == "all" else [split], given)
    for note in listing.notes:
        click.echo(f"warning: {note}", err=True)
    skipped = 0
    for name in listing.splits:
        summary = featurize_listing(listing, name, store_path, cfg, options)
        for line in summary.lines():
            click.echo(line)
        skipped += len(summary.skipped)
    if options.strict and skipped:
        click.echo(f"error: {skipped} clip(s) skipped and --strict was given", err=True)
        sys.exit(1)
