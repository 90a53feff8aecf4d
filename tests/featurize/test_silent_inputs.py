"""`fat featurize` on inputs that are clearly a mistake: it says so instead of exiting 0
having written nothing."""

import shutil
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from fat.cli import main
from fat.core.errors import FatError
from fat.datasets.fat2019 import present_splits
from fat.featurize.run import featurize_split
from fat.featurize.settings import FeaturizeOptions
from fat.store import open_store
from tests.synthetic import make_fsd_layout

ONE = FeaturizeOptions(workers=1, quiet=True)


def featurize(*args: str):
    return CliRunner().invoke(main, ["featurize", "--workers", "1", "--quiet", *args])


def test_a_csv_with_only_a_header_beside_audio_files_is_an_error(tmp_path):
    data = make_fsd_layout(tmp_path / "data", n_curated=3, n_test=1)
    csv_path = data / "train_curated.csv"
    csv_path.write_text("fname,labels\n\n")
    message = (
        f"{csv_path}: lists no clips, while {data / 'train_curated'}/ holds 3 audio file(s); "
        "it needs one row per clip (fname,labels): is it the right CSV?"
    )
    with pytest.raises(FatError) as caught:
        featurize_split(data, "curated", tmp_path / "f.zarr", options=ONE)
    assert str(caught.value) == message
    assert not (tmp_path / "f.zarr").exists()  # refused before the store was made
    result = featurize(
        "--data-dir", str(data), "--split", "curated", "--store", str(tmp_path / "f.zarr")
    )
    assert result.exit_code == 1
    assert result.output.splitlines() == [f"error: {message}"]
    # A header-only CSV beside a folder without audio (a split not used) stays nothing to do.
    (data / "train_noisy" / "README.txt").write_text("not audio")
    summary = featurize_split(data, "noisy", tmp_path / "f.zarr", options=ONE)
    assert (summary.written, summary.clips_total, summary.skipped) == (0, 0, [])


def test_the_test_splits_clip_list_with_only_a_header_is_an_error_too(tmp_path):
    data = make_fsd_layout(tmp_path / "data", n_curated=1, n_test=2)
    submission = data / "sample_submission.csv"
    submission.write_text(submission.read_text().splitlines()[0] + "\n")
    with pytest.raises(
        FatError, match=r"sample_submission.csv: lists no clips, while .*test/ holds 2"
    ):
        featurize_split(data, "test", tmp_path / "f.zarr", options=ONE)


def kaggle_download(root: Path, *zipped: str) -> Path:
    """A data folder as the Kaggle download leaves it: the CSVs, and `zipped` split folders
    each replaced by its zip."""
    data = make_fsd_layout(root, n_curated=2, n_test=1)
    for folder in zipped:
        with zipfile.ZipFile(data / f"{folder}.zip", "w") as archive:
            for wav in sorted((data / folder).iterdir()):
                archive.write(wav, wav.name)
        shutil.rmtree(data / folder)
    return data


def test_split_all_on_an_unzipped_download_fails_naming_the_zip(tmp_path):
    data = kaggle_download(tmp_path / "data", "train_curated", "train_noisy", "test")
    for name in ("train_noisy.zip", "test.zip"):
        (data / name).unlink()
    message = (
        f"{data} holds train_curated.zip but no train_curated/ folder: unzip it first "
        f"(unzip {data / 'train_curated.zip'} -d {data / 'train_curated'})"
    )
    with pytest.raises(FatError) as caught:
        present_splits(data, None)
    assert str(caught.value) == message
    store = tmp_path / "f.zarr"
    result = featurize("--data-dir", str(data), "--split", "all", "--store", str(store))
    assert result.exit_code == 1
    assert result.output.splitlines() == [f"error: {message}"]
    assert not store.exists()
    one = featurize("--data-dir", str(data), "--split", "curated", "--store", str(store))
    assert one.exit_code == 1 and one.output.splitlines() == [f"error: {message}"]


def test_split_all_without_any_split_folder_fails(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    with pytest.raises(FatError, match="none of train_curated/, train_noisy/, test/ is there"):
        present_splits(data, None)
    result = featurize("--data-dir", str(data), "--split", "all", "--store", str(tmp_path / "f.h5"))
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"error: {data}: none of train_curated/, train_noisy/, test/ is there "
        "(expected the FSDKaggle2019 layout)"
    ]
    with zipfile.ZipFile(data / "freesound-audio-tagging-2019.zip", "w") as archive:
        archive.writestr("train_curated.csv", "fname,labels\n")
    with pytest.raises(FatError, match=r"only freesound-audio-tagging-2019.zip: unzip it first"):
        present_splits(data, None)


def test_split_all_warns_for_each_missing_split_and_featurizes_the_rest(tmp_path):
    data = kaggle_download(tmp_path / "data", "test")
    shutil.rmtree(data / "train_noisy")
    store = tmp_path / "f.zarr"
    splits, warnings = present_splits(data, None)
    assert splits == ["curated"]
    assert warnings == [
        f"{data}: no train_noisy/ folder for split 'noisy' (expected the FSDKaggle2019 "
        "layout); skipped",
        f"{data} holds test.zip but no test/ folder: unzip it first "
        f"(unzip {data / 'test.zip'} -d {data / 'test'}); skipped",
    ]
    result = featurize("--data-dir", str(data), "--split", "all", "--store", str(store))
    assert result.exit_code == 0, result.output
    assert [f"warning: {w}" for w in warnings] == [
        line for line in result.output.splitlines() if line.startswith("warning: ")
    ]
    assert "curated: 2 clips written, 0 already in the store, 0 skipped, of 2" in result.output
    with open_store(store) as opened:
        assert opened.splits() == ["curated"]
