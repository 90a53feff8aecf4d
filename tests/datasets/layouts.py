"""Tiny real data sets in the layouts the adapters read (fat/datasets): FSD50K, ESC-50, AudioSet,
a user's CSV manifest and a folder per class. Each function writes real audio (short tones with
a little noise, 0.5-1 s) and the tables beside it under `root`, the same bytes for the same
arguments, and returns what an adapter should list. Plain functions, for the adapter tests and
for end-to-end tests of `fat featurize --dataset`."""

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fat.datasets import DatasetOptions

FSD50K_CLASSES = ("Bark", "Meow", "Chirp_and_tweet", "Accelerating_and_revving_and_vroom")
ESC50_CATEGORIES = ("dog", "rooster", "pig", "cow", "frog", "cat", "hen", "insects", "sheep")
AUDIOSET_CLASSES = (  # real mids and display names, commas included
    ("/m/09x0r", "Speech"),
    ("/m/05zppz", "Male speech, man speaking"),
    ("/m/02zsn", "Female speech, woman speaking"),
    ("/m/0ytgt", "Child speech, kid speaking"),
    ("/m/01h8n0", "Conversation"),
)
_YTID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"


@dataclass
class WrittenLayout:
    """What was written: the folder to read, the classes, and per split the clip ids an
    adapter lists with their labels and info; `options` are the ones to read it with."""

    root: Path
    vocabulary: tuple[str, ...]
    clips: dict[str, dict[str, tuple[str, ...]]]  # split -> clip id -> labels
    info: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    class_ids: tuple[str, ...] = ()
    options: DatasetOptions = field(default_factory=DatasetOptions)
    paths: dict[str, Path] = field(default_factory=dict)  # clip id -> audio file


def write_audio(path: Path, seed: int, sr: int = 16000, seconds: float | None = None) -> Path:
    """A tone with a little noise, a pure function of `seed` (0.5, 0.75 or 1 s unless
    `seconds`); the format from the suffix (.mp3 included)."""
    import soundfile as sf

    seconds = 0.5 + 0.25 * (seed % 3) if seconds is None else seconds
    t = np.arange(int(seconds * sr)) / sr
    noise = np.random.default_rng(seed).normal(scale=0.01, size=t.shape)
    x = (0.3 * np.sin(2 * np.pi * (220 + 55 * (seed % 16)) * t) + noise).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = "MP3" if path.suffix.lower() == ".mp3" else None
    sf.write(path, x, sr, format=fmt)
    return path


def write_csv(path: Path, rows: list[list[Any]], header: list[str] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        if header is not None:
            writer.writerow(header)
        writer.writerows(rows)
    return path


def _class_names(n: int, known: tuple[str, ...], pattern: str) -> tuple[str, ...]:
    return tuple(known[i] if i < len(known) else pattern.format(i) for i in range(n))


def make_fsd50k(
    root: Path, n_train: int = 4, n_val: int = 2, n_eval: int = 3, n_classes: int = 4
) -> WrittenLayout:
    """ROOT/FSD50K.{dev,eval}_audio/<fsid>.wav and FSD50K.ground_truth/{dev,eval,vocabulary}.csv;
    every third clip has two labels."""
    vocabulary = _class_names(n_classes, FSD50K_CLASSES, "Class_{}")
    mids = tuple(f"/m/0fsd{i:03d}" for i in range(n_classes))
    truth = root / "FSD50K.ground_truth"
    write_csv(
        truth / "vocabulary.csv",
        [[i, name, mid] for i, (name, mid) in enumerate(zip(vocabulary, mids, strict=True))],
    )
    clips: dict[str, dict[str, tuple[str, ...]]] = {"train": {}, "val": {}, "eval": {}}
    paths: dict[str, Path] = {}
    dev_rows, eval_rows = [], []
    counts = [("train", n_train), ("val", n_val), ("eval", n_eval)]
    k = 0
    for split, n in counts:
        folder = root / ("FSD50K.eval_audio" if split == "eval" else "FSD50K.dev_audio")
        for _ in range(n):
            fsid = 1000 + 37 * k
            picked = [k % n_classes] + ([(k + 1) % n_classes] if k % 3 == 0 else [])
            labels = tuple(vocabulary[i] for i in picked)
            row = [fsid, ",".join(labels), ",".join(mids[i] for i in picked)]
            (eval_rows if split == "eval" else dev_rows).append(
                row + ([] if split == "eval" else [split])
            )
            clips[split][f"{fsid}.wav"] = labels
            paths[f"{fsid}.wav"] = write_audio(folder / f"{fsid}.wav", k, 16000 if k % 2 else 44100)
            k += 1
    write_csv(truth / "dev.csv", dev_rows, ["fname", "labels", "mids", "split"])
    write_csv(truth / "eval.csv", eval_rows, ["fname", "labels", "mids"])
    info = {split: {clip: {} for clip in ids} for split, ids in clips.items()}
    return WrittenLayout(root, vocabulary, clips, info, mids, paths=paths)


def make_esc50(root: Path, n_classes: int = 5, per_class: int = 2) -> WrittenLayout:
    """ROOT/audio/{fold}-{src}-{take}-{target}.wav and ROOT/meta/esc50.csv (rows sorted by
    file name, as published); folds 1-5 in turn, esc10 for even targets."""
    vocabulary = _class_names(n_classes, ESC50_CATEGORIES, "class_{}")
    rows, clips, info, paths = [], {}, {}, {}
    for j in range(n_classes * per_class):
        target, fold, source, take = j % n_classes, 1 + j % 5, str(100000 + 7 * j), "AB"[j % 2]
        name = f"{fold}-{source}-{take}-{target}.wav"
        esc10 = target % 2 == 0
        rows.append([name, fold, target, vocabulary[target], esc10, source, take])
        clips[name] = (vocabulary[target],)
        info[name] = {"fold": fold, "source": source, "take": take, "esc10": esc10}
        paths[name] = write_audio(root / "audio" / name, j, 44100)
    header = ["filename", "fold", "target", "category", "esc10", "src_file", "take"]
    write_csv(root / "meta" / "esc50.csv", sorted(rows), header)
    return WrittenLayout(root, vocabulary, {"train": clips}, {"train": info}, paths=paths)


def ytid(seed: int) -> str:
    """An 11-character YouTube id, a pure function of `seed`; even seeds start with '-'."""
    rng = np.random.default_rng(seed + 7919)
    text = "".join(_YTID_CHARS[i] for i in rng.integers(0, len(_YTID_CHARS), size=11))
    return ("-" + text[1:]) if seed % 2 == 0 else text.replace("-", "x", 1)


# How the k-th segment's file is named, in turn: the adapter recognises each.
AUDIOSET_NAMES = ("Y{id}.wav", "{id}_{start}.flac", "{id}_{start_int}.wav", "{id}.mp3")


def make_audioset(
    root: Path,
    splits: tuple[tuple[str, int], ...] = (("balanced_train", 4), ("eval", 2)),
    n_classes: int = 5,
) -> WrittenLayout:
    """ROOT/class_labels_indices.csv, ROOT/<split>_segments.csv (the published comment lines,
    spaces after commas, labels quoted) and the audio in ROOT/audio/<split>/, named in turn as
    AUDIOSET_NAMES says; every other segment has two labels."""
    classes = [
        AUDIOSET_CLASSES[i] if i < len(AUDIOSET_CLASSES) else (f"/t/dd9{i:04d}", f"Class {i}")
        for i in range(n_classes)
    ]
    write_csv(
        root / "class_labels_indices.csv",
        [[i, mid, name] for i, (mid, name) in enumerate(classes)],
        ["index", "mid", "display_name"],
    )
    clips: dict[str, dict[str, tuple[str, ...]]] = {}
    info: dict[str, dict[str, dict[str, Any]]] = {}
    paths: dict[str, Path] = {}
    k = 0
    for split, n in splits:
        lines = [
            "# Segments csv created Sun Mar  5 10:54:31 2017",
            f"# num_ytids={n}, num_segs={n}, num_unique_labels={n_classes}, "
            f"num_positive_labels={n}",
            "# YTID, start_seconds, end_seconds, positive_labels",
        ]
        clips[split], info[split] = {}, {}
        for _ in range(n):
            yid, start = ytid(k), 10.0 * (k % 4)
            picked = [k % n_classes] + ([(k + 2) % n_classes] if k % 2 else [])
            mids = ",".join(classes[i][0] for i in picked)
            lines.append(f'{yid}, {start:.3f}, {start + 10:.3f}, "{mids}"')
            pattern = AUDIOSET_NAMES[k % len(AUDIOSET_NAMES)]
            name = pattern.format(id=yid, start=f"{start:.3f}", start_int=int(start))
            clip_id = f"Y{yid}"
            paths[clip_id] = write_audio(root / "audio" / split / name, k, 16000)
            clips[split][clip_id] = tuple(classes[i][1] for i in picked)
            info[split][clip_id] = {"ytid": yid, "start": start, "end": start + 10}
            k += 1
        (root / f"{split}_segments.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    vocabulary = tuple(name for _, name in classes)
    class_ids = tuple(mid for mid, _ in classes)
    return WrittenLayout(root, vocabulary, clips, info, class_ids, paths=paths)


def make_csv_manifest(
    root: Path,
    n_clips: int = 8,
    classes: tuple[str, ...] = ("bird", "car", "dog"),
    splits: tuple[str, ...] = ("train", "test"),
    multi_label: bool = False,
    folds: int | None = None,
) -> WrittenLayout:
    """ROOT/manifest.csv (path,labels,split[,fold]) and the audio in ROOT/clips/: clips 0 and 1
    share the name take.wav in two folders, clip 2 is an MP3 whose name has a space (so both
    get ids from their paths), the rest clipNNN.wav or .flac. Every fourth clip is in the
    second split; with `multi_label`, every even clip has two labels."""
    rows, paths = [], {}
    clips: dict[str, dict[str, tuple[str, ...]]] = {split: {} for split in splits}
    info: dict[str, dict[str, dict[str, Any]]] = {split: {} for split in splits}
    for k in range(n_clips):
        if k < 2:
            relative, clip_id = (
                f"clips/{('one', 'two')[k]}/take.wav",
                f"clips__{('one', 'two')[k]}__take.wav",
            )
        elif k == 2:
            relative, clip_id = "clips/tone 2.mp3", "clips__tone_2.mp3"
        else:
            relative = f"clips/more/clip{k:03d}.{'flac' if k % 3 == 0 else 'wav'}"
            clip_id = Path(relative).name
        labels = (classes[k % len(classes)],)
        if multi_label and k % 2 == 0:
            labels += (classes[(k + 1) % len(classes)],)
        split = splits[1] if len(splits) > 1 and k % 4 == 3 else splits[0]
        row = [relative, ",".join(labels), split]
        if folds:
            row.append(1 + k % folds)
            info[split][clip_id] = {"fold": 1 + k % folds}
        else:
            info[split][clip_id] = {}
        rows.append(row)
        clips[split][clip_id] = labels
        paths[clip_id] = write_audio(root / relative, k, 16000 if k % 2 else 44100)
    header = ["path", "labels", "split"] + (["fold"] if folds else [])
    manifest = write_csv(root / "manifest.csv", rows, header)
    vocabulary = tuple(
        sorted({name for split in clips.values() for ls in split.values() for name in ls})
    )
    options = DatasetOptions(manifest=manifest)
    return WrittenLayout(root, vocabulary, clips, info, options=options, paths=paths)


def make_folders(
    root: Path, classes: tuple[str, ...] = ("cat", "dog", "owl"), per_class: int = 3
) -> WrittenLayout:
    """ROOT/<class>/...: each class's first clip same.wav (so the ids come from the paths),
    its second an MP3 two folders down, the rest <class>_NN.wav; a notes.txt in each class
    folder (not audio, ignored)."""
    clips: dict[str, tuple[str, ...]] = {}
    paths = {}
    k = 0
    for name in classes:
        (root / name).mkdir(parents=True, exist_ok=True)
        (root / name / "notes.txt").write_text("not audio\n")
        for j in range(per_class):
            if j == 0:
                relative, clip_id = "same.wav", f"{name}__same.wav"
            elif j == 1:
                relative = f"sub/deeper/{name}_{j:02d}.mp3"
                clip_id = Path(relative).name
            else:
                relative = clip_id = f"{name}_{j:02d}.wav"
            paths[clip_id] = write_audio(root / name / relative, k, 16000)
            clips[clip_id] = (name,)
            k += 1
    info = {"train": {clip: {} for clip in clips}}
    return WrittenLayout(root, tuple(sorted(classes)), {"train": clips}, info, paths=paths)
