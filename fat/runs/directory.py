"""The run directory: where every file of a training run is, by name, and the writers and
readers of its small files (settings, inputs, evaluations). The logs written while it trains
are `fat.runs.logs`'; reading it back for reports is `fat.runs.history`.

    config.json          {"experiment": {...}, "options": {...}}: the run's settings, in the
                         form `fat train --config` reads (a local store as an absolute path)
    inputs.json          what the model reads: feature config, vocabulary, normaliser; the
                         clips each split trains and validates on; the store relative to here
    metrics.csv          one row per epoch: EpochRecord's fields, then grad_norm:<group>
    steps.csv            every `log_every` steps: StepRecord's fields, then grad_norm:<group>
    val_per_class.csv    per epoch, subset and class: validation lwlrap and class weight
    noisy_clips.txt      the noisy clip ids the run trains on, when it was given a list
    noisy_targets.csv    the noisy clips' soft targets, when it was given them
    teacher_<split>.csv  the teacher's targets for every clip of a training split (--teacher)
    checkpoints/         best.pt, last.pt, swa.pt, ema.pt, snapshot-<epoch>.pt
                         (format: fat.runs.checkpoint)
    eval/<split>/        from `fat evaluate`: summary.json, per_class.csv (one row per class)
    submission_<split>.csv  `fat predict`'s default output
    chunk-cache/         chunks of a store on object storage, kept for later epochs
    tensorboard/         the metrics as TensorBoard events, when tensorboard is installed
"""

import csv
import io
import json
import math
import os
from pathlib import Path
from typing import Any

from fat.core.errors import FatError, one_line
from fat.core.evaluation import Evaluation
from fat.core.features import LogMelConfig
from fat.core.files import atomic_write
from fat.core.ids import write_clip_list
from fat.core.lock import ExclusiveLock
from fat.runs.settings import run_settings
from fat.store.normalize import Normalizer
from fat.store.remote import is_url

CONFIG = "config.json"
INPUTS = "inputs.json"
METRICS = "metrics.csv"
STEPS = "steps.csv"
VAL_PER_CLASS = "val_per_class.csv"
NOISY_CLIPS = "noisy_clips.txt"
NOISY_TARGETS = "noisy_targets.csv"
CHECKPOINTS = "checkpoints"
EVAL = "eval"
EVAL_SUMMARY = "summary.json"
EVAL_PER_CLASS = "per_class.csv"
CHUNK_CACHE = "chunk-cache"
TENSORBOARD = "tensorboard"
LOCK = ".lock"
KINDS = ("best", "last", "swa", "ema")  # the checkpoints a run keeps by name
SNAPSHOT = "snapshot-"  # + epoch: the end of a cosine-restarts cycle
CHECKPOINT_HELP = f"Which checkpoint of the run: {', '.join(KINDS)} or {SNAPSHOT}<epoch>."


def checkpoint_kind(kind: str) -> str:
    """`kind` when it names a checkpoint a run can hold, else FatError listing those."""
    if kind in KINDS or (kind.startswith(SNAPSHOT) and kind[len(SNAPSHOT) :].isdigit()):
        return kind
    raise FatError(
        f"checkpoint must be one of {', '.join(KINDS)} or {SNAPSHOT}<epoch>, got {kind!r}"
    )


def write_json(path: Path, value: Any) -> None:
    """Whole or not at all, and durably (`atomic_write`)."""
    with atomic_write(path) as f:
        f.write(json.dumps(value, indent=1))


def csv_text(columns: list[str], rows: list[dict], header: bool) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, extrasaction="ignore", lineterminator="\n")
    if header:
        writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def absolute_store(store: str) -> str:
    """A local store as an absolute path (a URL as it is), so that a saved run finds it from
    any working directory."""
    return store if not store or is_url(store) else os.path.abspath(store)


def locate_store(saved: str, base: Path, from_base: str | None, owner: str) -> str:
    """Where the store `owner` saved as `saved` is now: the saved path when it is there, else
    the same place relative to `base` (a run and its store moved together); FatError naming
    both and `--store` when neither holds it."""
    if not saved or is_url(saved):
        return saved
    candidates = [Path(saved)]  # relative only in runs saved before stores were absolute
    if from_base:
        candidates.append(base / from_base)
    for candidate in candidates:
        if candidate.exists():
            return str(candidate)
    also = f" nor at {candidates[1]}" if len(candidates) > 1 else ""
    raise FatError(f"{owner}: its store {saved} is not there{also}; give --store PATH")


class RunDirectory:
    """One run's directory: where each file is, and the writers and readers of the small ones."""

    def __init__(self, path: Path | str):
        self.path = Path(path)

    @classmethod
    def existing(cls, path: Path | str) -> "RunDirectory":
        """The run in `path`; FatError saying what `path` is instead when it is not one."""
        run = cls(path)
        if not (run.path / CONFIG).is_file():
            raise FatError(f"{run.path}: not a run directory ({not_a_run(run.path)})")
        return run

    def checkpoint(self, kind: str) -> Path:
        return self.path / CHECKPOINTS / f"{checkpoint_kind(kind)}.pt"

    def has_checkpoint(self) -> bool:
        return self.checkpoint("last").exists()

    def snapshots(self) -> list[str]:
        """The checkpoint kinds of the run's cosine-restart snapshots, in epoch order."""
        found = [p.stem[len(SNAPSHOT) :] for p in (self.path / CHECKPOINTS).glob(SNAPSHOT + "*.pt")]
        return [SNAPSHOT + e for e in sorted((e for e in found if e.isdigit()), key=int)]

    def write_settings(self, experiment: dict[str, Any], options: dict[str, Any]) -> None:
        write_json(self.path / CONFIG, {"experiment": experiment, "options": options})

    def read_settings(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(experiment, options) as saved; FatError naming config.json when it is unreadable."""
        path = self.path / CONFIG
        return run_settings(read_json(path, "not a training run directory?"), str(path))

    def write_inputs(
        self,
        feature_config: LogMelConfig,
        vocabulary,
        normalizer: Normalizer,
        splits: dict[str, dict],
        store: str,
    ) -> None:
        """What the model reads: feature settings, vocabulary, normaliser, and per training
        split its generation, clip count and which clips train and which validate (so a
        resumed run or `fat evaluate` uses these clips, not a hold-out drawn again); and the
        store relative to the run, found there when both have moved."""
        write_json(
            self.path / INPUTS,
            {
                "feature_config": feature_config.to_dict(),
                "vocabulary": list(vocabulary),
                "normalizer": normalizer.to_dict(),
                "splits": splits,
                "store_from_run": relative_to(store, self.path),
            },
        )

    def read_inputs(self) -> dict[str, Any]:
        return read_json(self.path / INPUTS, "written when a run starts")

    def saved_inputs(self) -> dict[str, Any]:
        """inputs.json, or {} for a run that has not written it yet."""
        return self.read_inputs() if (self.path / INPUTS).exists() else {}

    def saved_normalizer(self) -> Normalizer | None:
        norm = self.saved_inputs().get("normalizer")
        return Normalizer.from_dict(norm) if norm else None

    def store(self) -> str:
        """The store the run trained from, found from any working directory (`locate_store`)."""
        _, options = self.read_settings()
        relative = self.saved_inputs().get("store_from_run")
        return locate_store(str(options.get("store", "")), self.path, relative, f"run {self.path}")

    def lock(self) -> ExclusiveLock:
        """Held by the process training this run (one at a time)."""
        self.path.mkdir(parents=True, exist_ok=True)
        return ExclusiveLock(self.path / LOCK, self.path, "training this run")

    def save_noisy_clips(self, clip_ids: list[str], source: str) -> None:
        write_clip_list(self.noisy_clips_file, clip_ids, f"noisy clips to train on, from {source}")

    @property
    def noisy_clips_file(self) -> Path:
        return self.path / NOISY_CLIPS

    @property
    def noisy_targets_file(self) -> Path:
        return self.path / NOISY_TARGETS

    def teacher_file(self, split: str) -> Path:
        return self.path / f"teacher_{split}.csv"

    def eval_dir(self, split: str) -> Path:
        return self.path / EVAL / split

    def submission(self, split: str) -> Path:
        return submission_file(self.path, split)

    @property
    def chunk_cache(self) -> Path:
        return self.path / CHUNK_CACHE


def submission_file(directory: Path, split: str) -> Path:
    """`fat predict`'s default output in a run or cross-validation directory."""
    return directory / f"submission_{split}.csv"


def write_evaluation(out: Path, evaluation: Evaluation, facts: dict[str, Any]) -> None:
    """summary.json and per_class.csv of one `fat evaluate` into `out` (usually a run's or
    a cross-validation's `eval_dir(split)`): one row per class present, worst first; a
    column per evaluated part when there are several."""
    out.mkdir(parents=True, exist_ok=True)
    several = len(evaluation.parts) > 1
    by_part = {p: evaluation.subsets[p].overall for p in evaluation.parts} if several else {}
    summary = {
        **facts,
        "n_clips": int(len(evaluation.truth)),
        **evaluation.metrics,
        "loss": evaluation.loss,
        "chance_lwlrap": evaluation.chance_lwlrap,
        **{f"lwlrap_{p}": value for p, value in by_part.items()},
    }
    # NaN (a metric undefined on these clips) is no JSON value: null says "not defined"
    summary = {
        k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in summary.items()
    }
    write_json(out / EVAL_SUMMARY, summary)
    rows = [
        {
            "class": r.name,
            "lwlrap": r.lwlrap,
            "ap": r.ap,
            "auc": r.auc,
            "d_prime": r.d_prime,
            "weight": r.weight,
            "positives": r.positives,
            "confused_with": ";".join(r.confused_with),
            **({f"lwlrap_{p}": v for p, v in r.by_part.items()} if several else {}),
        }
        for r in evaluation.class_results()
    ]
    columns = list(rows[0]) if rows else ["class", "lwlrap", "weight"]
    with atomic_write(out / EVAL_PER_CLASS, newline="") as f:
        f.write(csv_text(columns, rows, header=True))


def relative_to(store: str, base: Path) -> str | None:
    """`store` relative to `base` (None for a URL or a path on another drive)."""
    if not store or is_url(store):
        return None
    try:
        return os.path.relpath(os.path.abspath(store), os.path.abspath(base))
    except ValueError:
        return None


def not_a_run(path: Path) -> str:
    """What `path` is, for the message that it is not a run directory."""
    if (path / "cv.json").is_file():
        return "a cross-validation directory; this command takes one of its foldN runs"
    if (path / "zarr.json").is_file() or path.suffix in (".zarr", ".h5", ".hdf5"):
        return "a feature store; give the run directory that `fat train --out` made"
    if not path.exists():
        return "no such directory"
    return "no config.json: `fat train --out DIR` makes one"


def read_json(path: Path, missing_hint: str = "") -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except FileNotFoundError:
        hint = f" ({missing_hint})" if missing_hint else ""
        raise FatError(f"{path}: missing{hint}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FatError(f"{path}: not readable JSON ({one_line(e)})") from None
    if not isinstance(value, dict):
        raise FatError(f"{path}: expected a JSON object, got {type(value).__name__}")
    return value
