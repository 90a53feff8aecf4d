"""The data set adapters on tiny real layouts (tests/datasets/layouts.py): what each lists, and
the one-line layout errors and row issues that bad input gives."""

import csv
from pathlib import Path

import pytest

from fat.core.errors import FatError
from fat.core.ids import check_clip_id
from fat.datasets import DatasetListing, DatasetOptions, dataset_names, get_dataset
from fat.datasets.manifest import clip_ids_for
from tests.datasets.layouts import (
    WrittenLayout,
    make_audioset,
    make_csv_manifest,
    make_esc50,
    make_folders,
    make_fsd50k,
    write_audio,
    write_csv,
)


def read(name: str, root: Path, splits=None, **options) -> DatasetListing:
    return get_dataset(name).read(root, splits, DatasetOptions(**options))


def listed(listing: DatasetListing) -> dict[str, dict[str, tuple[str, ...]]]:
    return {name: {c.clip_id: c.labels for c in s.clips} for name, s in listing.splits.items()}


def infos(listing: DatasetListing) -> dict[str, dict[str, dict]]:
    return {name: {c.clip_id: c.info for c in s.clips} for name, s in listing.splits.items()}


def reasons(listing: DatasetListing, split: str) -> dict[str, str]:
    """clip id (or file name for an issue without one) -> reason, for one split's issues."""
    return {i.clip_id or Path(i.file).name: i.reason for i in listing.splits[split].issues}


def append_rows(path: Path, *lines: str) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))


def assert_matches(listing: DatasetListing, layout: WrittenLayout) -> None:
    assert listed(listing) == layout.clips
    assert infos(listing) == layout.info
    assert listing.vocabulary == layout.vocabulary
    assert listing.class_ids == layout.class_ids
    paths = {c.clip_id: c.path for s in listing.splits.values() for c in s.clips}
    assert paths == layout.paths
    assert all(not s.issues for s in listing.splits.values())


def test_dataset_names_lists_the_five_adapters():
    assert {"fsd50k", "esc50", "audioset", "csv", "folders"} <= set(dataset_names())
    heads = {name: get_dataset(name).headline for name in ("fsd50k", "esc50", "audioset")}
    assert heads == {"fsd50k": "map", "esc50": "accuracy", "audioset": "map"}
    assert get_dataset("folders").headline == "accuracy"
    assert get_dataset("fsd50k").splits == ("train", "val", "eval")


# FSD50K


def test_fsd50k_lists_train_val_and_eval(tmp_path):
    layout = make_fsd50k(tmp_path, n_train=4, n_val=2, n_eval=3)
    listing = read("fsd50k", tmp_path)
    assert list(listing.splits) == ["train", "val", "eval"]
    assert_matches(listing, layout)
    assert listing.dataset == "fsd50k" and not listing.single_label
    assert listing.class_ids[0] == "/m/0fsd000"
    assert any(len(labels) == 2 for labels in layout.clips["train"].values())
    assert all(s.labelled for s in listing.splits.values())

    only_val = read("fsd50k", tmp_path, ["val"])
    assert listed(only_val) == {"val": layout.clips["val"]}
    with pytest.raises(FatError, match="no split 'test'"):
        read("fsd50k", tmp_path, ["test"])


def test_fsd50k_bad_rows_and_unlisted_audio_are_issues(tmp_path):
    layout = make_fsd50k(tmp_path, n_train=3, n_val=1, n_eval=1)
    truth = tmp_path / "FSD50K.ground_truth"
    dev_audio = tmp_path / "FSD50K.dev_audio"
    for fsid in (5001, 5002, 5003, 5004):
        write_audio(dev_audio / f"{fsid}.wav", fsid)
    write_audio(dev_audio / "9999.wav", 9)  # present, listed nowhere
    first = next(iter(layout.clips["train"]))
    append_rows(
        truth / "dev.csv",
        '5001,"Not_a_class",/m/0zzz,train',
        f'{first[:-4]},"Bark",/m/0fsd000,train',
        '5002,"Bark",/m/0fsd000,test',
        '5003,"Bark",/m/0fsd000,val,extra',
        '5004,"Bark",/m/0fsd001,train',
        '5005,"Bark",/m/0fsd000,val',
        'x5006,"Bark",/m/0fsd000,train',
    )
    listing = read("fsd50k", tmp_path)
    train, val = reasons(listing, "train"), reasons(listing, "val")
    assert train["5001.wav"] == "label 'Not_a_class' is not in the vocabulary"
    assert train[first] == f"clip id {first!r} listed twice"
    assert train["5002.wav"] == "split 'test' is not train or val"
    assert train["5003.wav"] == "malformed row: 5 fields, expected 4"
    assert "do not match labels" in train["5004.wav"]
    assert val["5005.wav"].endswith("not found")
    assert train["x5006.wav"] == "fname 'x5006' is not a Freesound id (an integer)"
    assert train["9999.wav"] == "audio file not listed"
    assert len(train) == 7 and len(val) == 1
    issue = next(i for i in listing.splits["train"].issues if i.clip_id == "5002.wav")
    assert issue.file == str(truth / "dev.csv") and issue.line == 8
    assert listed(listing)["train"] == layout.clips["train"]  # the good rows still listed


def test_fsd50k_layout_errors_name_the_file(tmp_path):
    make_fsd50k(tmp_path, n_train=1, n_val=1, n_eval=1)
    truth = tmp_path / "FSD50K.ground_truth"
    vocabulary = truth / "vocabulary.csv"
    text = vocabulary.read_text()

    vocabulary.write_text("index,label,mid\n" + text)
    with pytest.raises(FatError, match=r"vocabulary.csv:1: expected rows 'index,label,mid'"):
        read("fsd50k", tmp_path)
    vocabulary.unlink()
    with pytest.raises(FatError, match=r"vocabulary.csv: missing; the fsd50k layout"):
        read("fsd50k", tmp_path)
    vocabulary.write_text(text)

    dev = (truth / "dev.csv").read_bytes()
    write_csv(truth / "dev.csv", [["1", "Bark", "train"]], ["fname", "labels", "split"])
    with pytest.raises(FatError, match=r"dev.csv:1: header must be 'fname,labels,mids,split'"):
        read("fsd50k", tmp_path)
    assert listed(read("fsd50k", tmp_path, ["eval"]))["eval"]  # eval needs no dev.csv
    (truth / "dev.csv").write_bytes(dev)
    (truth / "eval.csv").unlink()
    with pytest.raises(FatError, match=r"eval.csv: missing"):
        read("fsd50k", tmp_path, ["eval"])
    whole = read("fsd50k", tmp_path)  # unnamed splits: those that are there, and a note
    assert list(whole.splits) == ["train", "val"]
    assert whole.notes == [f"{truth / 'eval.csv'}: missing; split 'eval' skipped"]


# ESC-50


def test_esc50_lists_one_split_with_folds(tmp_path):
    layout = make_esc50(tmp_path, n_classes=5, per_class=2)
    listing = read("esc50", tmp_path)
    assert list(listing.splits) == ["train"]
    assert_matches(listing, layout)
    assert listing.single_label
    assert listing.vocabulary == ("dog", "rooster", "pig", "cow", "frog")  # in target order
    clip = listing.splits["train"].clips[0]
    assert clip.clip_id == "1-100000-A-0.wav"
    assert clip.info == {"fold": 1, "source": "100000", "take": "A", "esc10": True}
    assert sorted({c.info["fold"] for c in listing.splits["train"].clips}) == [1, 2, 3, 4, 5]


def test_esc50_bad_rows_are_issues(tmp_path):
    make_esc50(tmp_path, n_classes=3, per_class=2)
    audio = tmp_path / "audio"
    for name in ("6-1-A-0.wav", "1-2-A-0.wav", "1-3-A-7.wav", "1-5-A-2.wav", "5-9-A-1.wav"):
        write_audio(audio / name, 1)
    append_rows(
        tmp_path / "meta" / "esc50.csv",
        "6-1-A-0.wav,6,0,dog,True,1,A",
        "1-2-A-0.wav,1,0,cat,True,2,A",
        "1-3-A-7.wav,1,7,dog,False,3,A",
        "1-4-A-0.wav,1,0,dog,True,4,A",
        "1-5-A-2.wav,1,2,pig,maybe,5,A",
        "1-6-A-0.wav,1,0,dog,True",
    )
    listing = read("esc50", tmp_path)
    found = reasons(listing, "train")
    assert found["6-1-A-0.wav"] == "fold '6' is not 1-5"
    assert found["1-2-A-0.wav"] == "target 0 is 'dog' on line 2, 'cat' here"
    assert found["1-3-A-7.wav"] == "category 'dog' is target 0 on line 2, 7 here"
    assert found["1-4-A-0.wav"].endswith("not found")
    assert found["1-5-A-2.wav"] == "esc10 'maybe' is not True or False"
    assert found["1-6-A-0.wav"] == "malformed row: 5 fields, expected 7"
    assert found["5-9-A-1.wav"] == "audio file not listed"
    assert len(found) == 7
    assert listing.vocabulary == ("dog", "rooster", "pig")
    assert len(listing.splits["train"].clips) == 6


def test_esc50_layout_errors_name_the_file(tmp_path):
    make_esc50(tmp_path, n_classes=2, per_class=1)
    table = tmp_path / "meta" / "esc50.csv"
    rows = table.read_text().splitlines()
    table.write_text("\n".join(["filename,fold,target,category"] + rows[1:]) + "\n")
    with pytest.raises(FatError, match=r"esc50.csv:1: header must be 'filename,fold,target,"):
        read("esc50", tmp_path)
    table.unlink()
    with pytest.raises(FatError, match=r"meta/esc50.csv: missing; the esc50 layout"):
        read("esc50", tmp_path)
    with pytest.raises(FatError, match="no such data directory"):
        read("esc50", tmp_path / "nowhere")


# AudioSet


def test_audioset_finds_audio_under_each_name(tmp_path):
    layout = make_audioset(tmp_path, splits=(("balanced_train", 4), ("eval", 2)), n_classes=5)
    listing = read("audioset", tmp_path)
    assert sorted(listing.splits) == ["balanced_train", "eval"]
    assert_matches(listing, layout)
    assert listing.vocabulary[1] == "Male speech, man speaking"
    assert listing.class_ids[:2] == ("/m/09x0r", "/m/05zppz")
    assert not listing.single_label
    ids = [c.clip_id for s in listing.splits.values() for c in s.clips]
    assert any(i.startswith("Y-") for i in ids) and all(check_clip_id(i) is None for i in ids)
    suffixes = {c.path.name.split(".")[-1] for s in listing.splits.values() for c in s.clips}
    assert suffixes == {"wav", "flac", "mp3"}
    assert list(read("audioset", tmp_path, ["eval"]).splits) == ["eval"]


def test_audioset_bad_rows_are_issues(tmp_path):
    make_audioset(tmp_path, splits=(("eval", 2),), n_classes=3)
    write_audio(tmp_path / "audio" / "eval" / "Yabcdefghijk.wav", 3)
    append_rows(
        tmp_path / "eval_segments.csv",
        'abcdefghijk, 0.000, 10.000, "/m/09x0r,/m/0nothere"',
        'zzzzzzzzzzz, 30.000, 40.000, "/m/09x0r"',
        'abcdefghijk, 40.000, 30.000, "/m/09x0r"',
        "abcdefghijk, 0.000",
    )
    issues = read("audioset", tmp_path).splits["eval"].issues
    assert [(i.line, i.clip_id, i.reason.split(" (")[0]) for i in issues] == [
        (9, "Yabcdefghijk", "malformed row: 2 fields, expected 4"),  # malformed rows first
        (6, "Yabcdefghijk", "label '/m/0nothere' is not in class_labels_indices.csv"),
        (7, "Yzzzzzzzzzzz", "audio not found"),
        (8, "Yabcdefghijk", "start 40.000 and end 30.000 are not times with 0 <= start <= end"),
    ]
    missing = next(i for i in issues if i.clip_id == "Yzzzzzzzzzzz")
    assert "Yzzzzzzzzzzz zzzzzzzzzzz" in missing.reason
    assert "zzzzzzzzzzz_30.000" in missing.reason and "zzzzzzzzzzz_30 " in missing.reason
    assert "audio/eval/, audio/" in missing.reason


def test_audioset_layout_errors_name_the_file(tmp_path):
    make_audioset(tmp_path, splits=(("eval", 1),), n_classes=2)
    with pytest.raises(FatError, match="no split 'balanced_train'"):
        read("audioset", tmp_path, ["balanced_train"])
    (tmp_path / "audio" / "eval").rename(tmp_path / "elsewhere")
    (tmp_path / "audio").rmdir()
    with pytest.raises(FatError, match=r"no audio/ folder; the audioset layout"):
        read("audioset", tmp_path)
    (tmp_path / "eval_segments.csv").unlink()
    with pytest.raises(FatError, match=r"no \*_segments.csv"):
        read("audioset", tmp_path)
    classes = tmp_path / "class_labels_indices.csv"
    classes.write_text("index,mid,name\n0,/m/09x0r,Speech\n")
    with pytest.raises(FatError, match=r"class_labels_indices.csv:1: header must be"):
        read("audioset", tmp_path)
    classes.unlink()
    with pytest.raises(FatError, match=r"class_labels_indices.csv: missing; the audioset"):
        read("audioset", tmp_path)


# A CSV manifest


def test_csv_manifest_lists_splits_ids_and_folds(tmp_path):
    layout = make_csv_manifest(tmp_path, n_clips=8, splits=("train", "test"), folds=3)
    listing = read("csv", tmp_path, manifest=layout.options.manifest)
    assert list(listing.splits) == ["train", "test"]
    assert_matches(listing, layout)
    assert listing.single_label and listing.vocabulary == ("bird", "car", "dog")
    ids = set(listed(listing)["train"]) | set(listed(listing)["test"])
    assert {"clips__one__take.wav", "clips__two__take.wav", "clips__tone_2.mp3"} <= ids
    assert listed(read("csv", layout.options.manifest, ["test"])) == {"test": layout.clips["test"]}


def test_csv_manifest_multi_label_vocabulary_file_and_bom(tmp_path):
    layout = make_csv_manifest(tmp_path, n_clips=6, classes=("b", "a", "c"), multi_label=True)
    manifest = layout.options.manifest
    manifest.write_bytes(b"\xef\xbb\xbf" + manifest.read_bytes().replace(b"path,", b"File,", 1))
    vocabulary = tmp_path / "classes.txt"
    vocabulary.write_text("c\nb\n\na\nunused\n")
    listing = read("csv", tmp_path, manifest=manifest, vocabulary=vocabulary)
    assert listing.vocabulary == ("c", "b", "a", "unused")
    assert not listing.single_label
    assert listed(listing) == layout.clips


def test_csv_manifest_bad_rows_are_issues(tmp_path):
    layout = make_csv_manifest(tmp_path, n_clips=4, splits=("train",), folds=2)
    manifest = layout.options.manifest
    write_audio(tmp_path / "clips" / "extra.wav", 5)
    append_rows(
        manifest,
        "clips/more/clip003.flac,car,train,1",
        "clips/absent.wav,car,train,1",
        "clips/extra.wav,car,train,one",
        "clips/extra.wav,car,../up,1",
        "clips/extra.wav,car,train",
        f"{tmp_path / 'clips' / 'extra.wav'},car,test,0",
        "clips/owl.wav,owl,train,1",
    )
    vocabulary = tmp_path / "classes.txt"
    vocabulary.write_text("bird\ncar\ndog\n")
    listing = read("csv", tmp_path, manifest=manifest, vocabulary=vocabulary)
    issues = [(i.line, i.reason) for i in listing.splits["train"].issues]
    assert (10, "malformed row: 3 fields, expected 4") in issues
    assert (12, "label 'owl' is not in the vocabulary") in issues
    assert (6, "clip id 'clip003.flac' listed twice") in issues
    assert (8, "fold 'one' is not a non-negative integer") in issues
    assert (9, "split '../up' is not a valid split name") in issues
    assert any(line == 7 and reason.endswith("not found") for line, reason in issues)
    assert len(issues) == 6
    assert [c.clip_id for c in listing.splits["test"].clips] == ["extra.wav"]  # absolute path


def test_csv_manifest_layout_errors(tmp_path):
    manifest = write_csv(tmp_path / "m.csv", [["a.wav", "x"]], ["audio", "labels"])
    with pytest.raises(FatError, match=r"m.csv:1: header needs a path column"):
        read("csv", tmp_path, manifest=manifest)
    with pytest.raises(FatError, match="give it with --manifest"):
        read("csv", tmp_path)
    with pytest.raises(FatError, match=r"nothere.csv: missing"):
        read("csv", tmp_path, manifest=tmp_path / "nothere.csv")
    (tmp_path / "latin1.csv").write_bytes(b"path,labels\ncaf\xe9.wav,x\n")
    with pytest.raises(FatError, match=r"latin1.csv: not a UTF-8 text file"):
        read("csv", tmp_path, manifest=tmp_path / "latin1.csv")
    manifest = write_csv(tmp_path / "n.csv", [["a.wav", "x"]], ["path", "labels"])
    with pytest.raises(FatError, match=r"no split 'test'; it has train"):
        read("csv", tmp_path, ["test"], manifest=manifest)


# A folder per class


def test_folders_lists_every_audio_file_under_each_class(tmp_path):
    layout = make_folders(tmp_path, classes=("owl", "cat", "dog"), per_class=3)
    listing = read("folders", tmp_path)
    assert_matches(listing, layout)
    assert listing.vocabulary == ("cat", "dog", "owl") and listing.single_label
    assert {"cat__same.wav", "dog__same.wav", "cat_01.mp3"} <= set(listed(listing)["train"])

    (tmp_path / "empty").mkdir()
    (tmp_path / ".git").mkdir()
    write_audio(tmp_path / ".git" / "hidden.wav", 1)
    write_audio(tmp_path / "loose.wav", 2)
    listing = read("folders", tmp_path)
    assert listing.vocabulary == ("cat", "dog", "empty", "owl")
    assert reasons(listing, "train") == {
        "loose.wav": "not in a class folder",
        "empty": "class folder has no audio files (the class keeps its place)",
    }


def test_folders_layout_errors(tmp_path):
    write_audio(tmp_path / "loose.wav", 2)
    with pytest.raises(FatError, match="no class folders"):
        read("folders", tmp_path)
    (tmp_path / "a,b").mkdir()
    with pytest.raises(FatError, match=r"a,b: the folder's name cannot be a class name"):
        read("folders", tmp_path)


def test_clip_ids_stay_unique_and_valid(tmp_path):
    paths = [
        tmp_path / "a" / "x.wav",
        tmp_path / "b" / "x.wav",
        tmp_path / "a__x.wav",  # takes its own name: the derived id for a/x.wav moves aside
        tmp_path / "-dash.wav",
        tmp_path / ("long" * 40) / "y.wav",
        tmp_path / "z" / "y.wav",
        Path("/elsewhere/q r.wav"),
    ]
    ids = clip_ids_for(paths, tmp_path)
    assert ids[tmp_path / "a__x.wav"] == "a__x.wav"
    assert ids[tmp_path / "b" / "x.wav"] == "b__x.wav"
    assert ids[tmp_path / "-dash.wav"] == "_-dash.wav"
    assert ids[Path("/elsewhere/q r.wav")] == "elsewhere__q_r.wav"
    assert len(set(ids.values())) == len(paths)
    assert all(check_clip_id(i) is None for i in ids.values())
    assert clip_ids_for(paths, tmp_path) == ids


def test_layouts_are_deterministic(tmp_path):
    one = make_csv_manifest(tmp_path / "one", n_clips=4)
    two = make_csv_manifest(tmp_path / "two", n_clips=4)
    for clip, path in one.paths.items():
        assert path.read_bytes() == two.paths[clip].read_bytes()
    assert one.options.manifest.read_bytes() == two.options.manifest.read_bytes()
    with open(one.options.manifest, newline="") as f:
        assert next(csv.reader(f)) == ["path", "labels", "split"]
