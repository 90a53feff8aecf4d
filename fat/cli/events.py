"""`fat evaluate-events` and `fat tune-thresholds`: sound events scored against reference
events, and per-class thresholds tuned on labelled recordings. The rule's options are the
fields of `EventRule`; the work is in fat/predict/events.py and event_metrics.py."""

from pathlib import Path

import click

from fat.cli.options import given_settings, settings_options
from fat.core.wording import plural
from fat.predict.events import EventRule

EVENT_FILE = click.Path(path_type=Path, exists=True, dir_okay=False)
SCORES_DIR = click.Path(path_type=Path, exists=True, file_okay=False)
QUIET = click.option("--quiet", "-q", is_flag=True, help="No progress bars.")


@click.command("evaluate-events")
@click.argument("reference", type=EVENT_FILE)
@click.argument("estimated", type=EVENT_FILE)
@click.option(
    "--scores",
    "scores_dir",
    type=SCORES_DIR,
    default=None,
    help="Folder of per-file score TSVs (sed_scores_eval's format, as `fat detect` writes "
    "them): adds the threshold-free PSDS (DCASE scenario 1).",
)
@click.option(
    "--out",
    "-o",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Folder for summary.json and per_class.csv.",
)
@QUIET
def evaluate_events_command(
    reference: Path, estimated: Path, scores_dir: Path | None, out: Path | None, quiet: bool
) -> None:
    """Score ESTIMATED events against REFERENCE events (both DCASE TSVs: filename, onset,
    offset, event_label): sed_eval's event-based F1 and error rate (collar 0.2 s, offset
    collar max(0.2 s, 20% of the event)) and segment-based F1 and error rate (1 s), overall
    and per class; with --scores, sed_scores_eval's PSDS too. The classes are the labels of
    both files."""
    from fat.predict.event_metrics import evaluate_events
    from fat.predict.events import read_events, read_scores_dir

    truth, found = read_events(reference), read_events(estimated)
    vocabulary = sorted({e.label for e in truth} | {e.label for e in found})
    scores = read_scores_dir(scores_dir, progress=not quiet) if scores_dir is not None else None
    result = evaluate_events(truth, found, scores, vocabulary, progress=not quiet)
    for line in result.lines():
        click.echo(line)
    if out is not None:
        summary, table = result.write(out)
        click.echo(f"wrote {summary} and {table}")


@click.command("tune-thresholds")
@click.argument("scores_dir", type=SCORES_DIR)
@click.argument("reference", type=EVENT_FILE)
@click.option(
    "--out",
    "-o",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="The class<TAB>threshold file to write (what --thresholds-file reads).",
)
@QUIET
@settings_options(EventRule, exclude=("thresholds_file",))
def tune_thresholds_command(
    scores_dir: Path, reference: Path, out: Path, quiet: bool, **kw: object
) -> None:
    """Per class, the threshold (of 0.05, 0.10, ..., 0.95) of best event-based F1 (collar
    0.2 s, offset collar max(0.2 s, 20%)) on the recordings of SCORES_DIR (score TSVs, as
    `fat detect` writes them) against REFERENCE (a DCASE event TSV), the other rule options
    held. Classes without reference events, or whose events no threshold finds, are left out
    of OUT and so keep --threshold."""
    from fat.predict.events import read_events, read_scores_dir, search_thresholds, write_thresholds

    rule = EventRule.from_dict(given_settings(EventRule, kw))
    scores = read_scores_dir(scores_dir, progress=not quiet)
    truth = read_events(reference, scores[0].vocabulary)
    search = search_thresholds(scores, truth, rule, progress=not quiet)
    best = search.best()
    index = {float(v): k for k, v in enumerate(search.candidates)}
    width = max([5, *(len(name) for name in search.fscores)])
    click.echo(f"{'class':<{width}} {'threshold':>9} {'F1':>6}")
    for name, value in best.items():
        click.echo(f"{name:<{width}} {value:>9.2f} {search.fscores[name][index[value]]:>6.3f}")
    for name in search.missed:
        click.echo(f"{name:<{width}} {'-':>9} {0:>6.3f}  (no threshold finds its events)")
    vocabulary = scores[0].vocabulary
    left = len(vocabulary) - len(best)
    rule_text = ", ".join(f"{k}={v}" for k, v in rule.to_dict().items() if k != "thresholds_file")
    write_thresholds(
        out,
        best,
        f"fat tune-thresholds: best event-based F1 per class on {plural(len(scores), 'file')}"
        f"\nrule: {rule_text}",
    )
    click.echo(
        f"wrote {out}: {plural(len(best), 'class', 'classes')} tuned; {left} keep "
        f"--threshold {rule.threshold:g}"
    )
