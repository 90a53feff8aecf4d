"""`fat train`: a thin layer over `fat.train.loop.train`."""

import json
from pathlib import Path

import click

from fat.errors import FatError


def parse_pairs(text: str, what: str) -> dict[str, float]:
    """`a=0.6,b=0.4` -> {"a": 0.6, "b": 0.4}; bad items name themselves."""
    pairs = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = item.partition("=")
        try:
            if not sep:
                raise ValueError
            pairs[key.strip()] = float(value)
        except ValueError:
            raise FatError(f"{what}: expected name=number, got {item!r}") from None
    return pairs


def parse_model_kwargs(items: tuple[str, ...]) -> dict:
    """`--model-arg key=value`, value parsed as JSON when it can be (numbers, booleans)."""
    kwargs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise FatError(f"--model-arg: expected key=value, got {item!r}")
        try:
            kwargs[key] = json.loads(value)
        except json.JSONDecodeError:
            kwargs[key] = value
    return kwargs


@click.command()
@click.option("--store", required=True, type=click.Path(path_type=Path), help="Feature store.")
@click.option("--arch", default="cnn", show_default=True, help="Model from the registry.")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Run directory.")
@click.option("--epochs", default=10, show_default=True)
@click.option("--batch-size", default=32, show_default=True)
@click.option("--lr", default=3e-4, show_default=True)
@click.option("--lr-min", default=1e-5, show_default=True, help="Low end of LR schedules.")
@click.option(
    "--schedule",
    type=click.Choice(["constant", "cyclic", "onecycle", "cosine"]),
    default="constant",
    show_default=True,
)
@click.option("--cycle-epochs", default=4.0, show_default=True, help="Cyclic LR period.")
@click.option("--optimizer", type=click.Choice(["adam", "adamw"]), default="adam")
@click.option("--weight-decay", default=0.0, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--crop-frames", default=128, show_default=True)
@click.option("--pad", type=click.Choice(["wrap", "zeros"]), default="wrap", show_default=True)
@click.option("--width", default=1.0, show_default=True, help="Channel multiplier.")
@click.option("--model-arg", multiple=True, help="Extra model setting key=value (repeatable).")
@click.option(
    "--gcnn-channels", type=int, default=None, help="GCNN conv channels (64 or 128; x --width)."
)
@click.option(
    "--rnn-gate",
    type=click.Choice(["gated", "sigmoid"]),
    default=None,
    help="GCNN recurrent layer: gated = linear BiGRU x sigmoid BiGRU (the paper), "
    "sigmoid = one sigmoid BiGRU (the seed).",
)
@click.option("--train-splits", default="curated", show_default=True, help="curated[,noisy]")
@click.option("--val-fraction", default=0.2, show_default=True)
@click.option("--mixup", default=0.0, show_default=True, help="Beta alpha; 0 = off.")
@click.option("--time-masks", default=0, show_default=True, help="SpecAugment time masks.")
@click.option("--time-mask-frames", default=16, show_default=True)
@click.option("--freq-masks", default=0, show_default=True, help="SpecAugment mel masks.")
@click.option("--freq-mask-bins", default=8, show_default=True)
@click.option("--swa-start", default=0, show_default=True, help="SWA from this epoch; 0 = off.")
@click.option("--swa-lr", default=0.0, show_default=True, help="Constant LR during SWA.")
@click.option("--grad-clip", default=0.0, show_default=True, help="Max grad norm; 0 = off.")
@click.option("--loader", type=click.Choice(["dali", "torch"]), default="dali", show_default=True)
@click.option("--workers", default=0, show_default=True, help="Loader worker processes.")
@click.option("--memory-budget-gb", default=8.0, show_default=True, help="Load splits to RAM.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto")
@click.option("--log-every", default=10, show_default=True, help="Steps between steps.csv rows.")
@click.option("--steps-per-epoch", default=0, show_default=True, help="0 = one pass.")
@click.option("--split-weights", default="", help="Batch shares, e.g. curated=0.6,noisy=0.4.")
@click.option("--noisy-loss", type=click.Choice(["bce", "lsoft"]), default="bce")
@click.option("--lsoft-beta", default=0.7, show_default=True)
@click.option("--noisy-clips", default="", help="File of noisy clip ids to train on.")
@click.option("--init", "init_run", default="", help="Start from this run's best weights.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last epoch.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.pass_context
def train(ctx: click.Context, **kw) -> None:
    """Train a tagger on crops streamed from the store.

    With --resume the saved settings of the run in --out are used; flags given again may
    only change what does not alter the experiment (--epochs, --workers, --loader, --device,
    --log-every, --memory-budget-gb).
    """
    from fat.train.checkpoint import checkpoint_path, load_checkpoint
    from fat.train.config import TrainConfig
    from fat.train.loop import train as run_training

    explicit = {
        name
        for name in kw
        if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE
    }
    resume, quiet = kw.pop("resume"), kw.pop("quiet")
    kw["model_kwargs"] = parse_model_kwargs(kw.pop("model_arg"))
    for option in ("gcnn_channels", "rnn_gate"):  # model settings with flags of their own
        value = kw.pop(option)
        if value is not None:
            kw["model_kwargs"][option] = value
    kw["train_splits"] = tuple(s.strip() for s in kw["train_splits"].split(",") if s.strip())
    kw["split_weights"] = parse_pairs(kw["split_weights"], "--split-weights")
    kw["init"] = kw.pop("init_run")
    kw["store"], kw["out"] = str(kw["store"]), str(kw["out"])
    kw["name"] = Path(kw["out"]).name
    renamed = {
        "model_arg": "model_kwargs",
        "gcnn_channels": "model_kwargs",
        "rnn_gate": "model_kwargs",
        "init_run": "init",
    }
    explicit = {renamed.get(name, name) for name in explicit}
    if resume:
        saved = load_checkpoint(checkpoint_path(kw["out"], "last"))["config"]
        kw = {**saved, **{k: v for k, v in kw.items() if k in explicit or k == "out"}}
    summary = run_training(TrainConfig.from_dict(kw), resume=resume, progress=not quiet)
    if summary.epochs_run:
        click.echo(
            f"run {summary.out}: {summary.epochs_run} epochs, best val lwlrap "
            f"{summary.best_lwlrap:.4f} at epoch {summary.best_epoch}, "
            f"{summary.samples_per_s:.0f} samples/s, data wait {summary.data_wait_frac:.1%}"
        )
