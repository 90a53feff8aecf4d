"""`fat detect`: sound events with timestamps in recordings of any length (a command of its
own rather than an option of `fat tag`: it scores over time, turns scores into events by
rules of its own, and writes events, scores, pictures and an evaluation, not clip scores).
Its options are the fields of `DetectConfig` (how scores are made) and `EventRule` (how
they become events)."""

from pathlib import Path

import click

from fat.cli.options import given_settings, settings_options
from fat.predict.events import EventRule
from fat.predict.settings import DetectConfig

RUN = click.argument("run", type=click.Path(path_type=Path, exists=True, file_okay=False))


@click.command()
@RUN
@click.argument("audio", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--out",
    "-o",
    type=click.Path(path_type=Path),
    required=True,
    help="Folder for events.tsv (DCASE: filename, onset, offset, event_label), scores/ (one "
    "TSV of scores over time per file, as sed_scores_eval reads them) and figures/.",
)
@click.option(
    "--reference",
    type=click.Path(path_type=Path),
    help="A DCASE events file of the true events: drawn under the detected ones, and scored "
    "(event- and segment-based F1 and error rate, PSDS) into OUT/evaluation/.",
)
@click.option(
    "--classes",
    default=None,
    help="Only these classes' events, comma-separated (default: every class of the run).",
)
@click.option("--audacity", is_flag=True, help="Also an Audacity label track per file.")
@click.option("--with-score", is_flag=True, help="A score column in events.tsv.")
@click.option("--figures/--no-figures", default=True, show_default=True, help="A PNG per file.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@settings_options(DetectConfig, EventRule)
def detect(run, audio, out, reference, classes, audacity, with_score, figures, quiet, **kw) -> None:
    """Detect sound events with their onsets and offsets in AUDIO files (folders are searched;
    any length: decoded block by block), with RUN's model slid over each file every
    --hop-seconds, its scores over time turned into events per class by a threshold (one, a
    file of per-class values from `fat tune-thresholds`, or hysteresis), a median filter and
    minimum event length and gap."""
    from fat.analysis.detections import detect_files

    cfg = DetectConfig.from_dict(given_settings(DetectConfig, kw))
    rule = EventRule.from_dict(given_settings(EventRule, kw))
    chosen = [c.strip() for c in classes.split(",") if c.strip()] if classes else None
    done = detect_files(
        run, list(audio), cfg, rule, out, reference, audacity, with_score, figures, not quiet,
        chosen,
    )  # fmt: skip
    for line in done.lines():
        click.echo(line)
