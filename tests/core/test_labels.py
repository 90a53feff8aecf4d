import numpy as np
import pytest

from fat.core.errors import FatError
from fat.core.labels import official_vocabulary, read_labels_csv, read_vocabulary


def test_official_vocabulary_has_the_80_classes_in_submission_order():
    vocab = official_vocabulary()
    assert len(vocab) == 80 and len(set(vocab)) == 80
    assert vocab[0] == "Accelerating_and_revving_and_vroom" and vocab[-1] == "Zipper_(clothing)"
    assert vocab == tuple(sorted(vocab))
    # the seed report's weak classes by index
    assert [vocab[i] for i in (11, 29, 35, 56, 63, 77, 79)] == [
        "Buzz",
        "Electric_guitar",
        "Frying_(food)",
        "Run",
        "Slam",
        "Writing",
        "Zipper_(clothing)",
    ]


def test_vocabulary_comes_from_sample_submission_header(tmp_path):
    csv = tmp_path / "sample_submission.csv"
    csv.write_text("fname,Bark,Meow,Purr\na.wav,0,0,0\n")
    assert read_vocabulary(csv) == ("Bark", "Meow", "Purr")
    assert read_vocabulary(tmp_path / "absent.csv") == official_vocabulary()
    csv.write_text("name,Bark\n")
    with pytest.raises(FatError, match="sample_submission.csv:1"):
        read_vocabulary(csv)


def test_parses_multi_label_rows_to_multi_hot(tmp_path):
    csv = tmp_path / "train_curated.csv"
    csv.write_text('fname,labels\na.wav,Bark\nb.wav,"Meow,Purr"\nc.wav,"Purr, Bark"\n')
    table = read_labels_csv(csv, ("Bark", "Meow", "Purr"), strict=True)
    assert table.fnames == ["a.wav", "b.wav", "c.wav"]
    np.testing.assert_array_equal(table.targets, [[1, 0, 0], [0, 1, 1], [1, 0, 1]])
    assert table.targets.dtype == np.uint8
    assert table.labels_of(1) == ["Meow", "Purr"] and not table.issues


BAD_ROWS = (
    "fname,labels\n"
    "ok.wav,Bark\n"  # line 2
    "unknown.wav,Woof\n"  # line 3
    "ok.wav,Meow\n"  # line 4: duplicate
    "empty.wav,\n"  # line 5
    "extra.wav,Bark,Meow\n"  # line 6: 3 fields, unquoted
    "../up.wav,Bark\n"  # line 7
    "\n"
    "fine.wav,Meow\n"  # line 9
)


def test_lenient_parse_skips_and_lists_every_bad_row(tmp_path):
    csv = tmp_path / "train_noisy.csv"
    csv.write_text(BAD_ROWS)
    table = read_labels_csv(csv, ("Bark", "Meow"))
    assert table.fnames == ["ok.wav", "fine.wav"]
    found = [(issue.line, issue.fname, issue.reason.split(" ")[0]) for issue in table.issues]
    assert found == [
        (3, "unknown.wav", "unknown"),
        (4, "ok.wav", "duplicated"),
        (5, "empty.wav", "empty"),
        (6, "extra.wav", "malformed"),
        (7, "../up.wav", "clip"),
    ]
    assert str(table.issues[0]) == f"{csv}:3: unknown.wav: unknown label 'Woof'"


def test_strict_parse_stops_at_first_problem_with_file_and_line(tmp_path):
    csv = tmp_path / "train_noisy.csv"
    csv.write_text(BAD_ROWS)
    with pytest.raises(FatError, match=r"train_noisy.csv:3: unknown.wav: unknown label 'Woof'"):
        read_labels_csv(csv, ("Bark", "Meow"), strict=True)


def test_unreadable_files_are_clear_errors(tmp_path):
    with pytest.raises(FatError, match="cannot read"):
        read_labels_csv(tmp_path / "missing.csv", ("Bark",))
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(FatError, match="bin.csv"):
        read_labels_csv(tmp_path / "bin.csv", ("Bark",))
    (tmp_path / "hdr.csv").write_text("file,label\n")
    with pytest.raises(FatError, match="hdr.csv:1: header"):
        read_labels_csv(tmp_path / "hdr.csv", ("Bark",))


def test_unlabelled_clip_list(tmp_path):
    csv = tmp_path / "sample_submission.csv"
    csv.write_text("fname,Bark,Meow\nt1.wav,0,0\nt2.wav,0,0\n")
    table = read_labels_csv(csv, ("Bark", "Meow"), labelled=False)
    assert table.fnames == ["t1.wav", "t2.wav"] and table.targets.sum() == 0


def test_a_post_competition_csv_reads_by_its_first_two_columns(tmp_path):
    vocab = official_vocabulary()
    path = tmp_path / "test_post_competition.csv"
    path.write_text(
        "fname,labels,usage,freesound_id,license\n"
        f'4260ebea.wav,"{vocab[0]},{vocab[5]}",Public,110929,CC-BY\n'
        f"426eb1e0.wav,{vocab[2]},Private,411262,CC0\n"
    )
    table = read_labels_csv(path, vocab, strict=True)
    assert table.fnames == ["4260ebea.wav", "426eb1e0.wav"]
    assert table.targets[0, [0, 5]].tolist() == [1, 1] and table.targets[1, 2] == 1
    path.write_text("fname,usage,labels\n")
    with pytest.raises(FatError, match="header must be 'fname,labels'"):
        read_labels_csv(path, vocab)
