"""A run's life as a newcomer meets it: run and CV directories used from any working
directory and after moving with their store, CV directories with every command that reads
runs, resume and CV continuation under one rule, and what a failed or mistaken start leaves."""

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from fat.cli import main
from fat.core.errors import FatError
from fat.runs.compose import compose_settings, resume_settings
from fat.runs.cv_directory import CVDirectory
from fat.runs.directory import RunDirectory
from fat.train.cv import cross_validate
from tests.synthetic import build_store, tiny_run, tiny_train_args


def fat(*args: str) -> str:
    """Run `fat ARGS` in-process; its output, after checking it succeeded."""
    done = CliRunner().invoke(main, [*map(str, args)])
    assert done.exit_code == 0, done.output
    return done.output


def fails(*args: str) -> str:
    done = CliRunner().invoke(main, [*map(str, args)])
    assert done.exit_code == 1 and "Traceback" not in done.output, done.output
    return done.output


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A project folder with a store and a run and a 2-fold CV trained from it, all named by
    the relative paths a user types there."""
    root = tmp_path / "project"
    root.mkdir()
    monkeypatch.chdir(root)
    build_store(Path("features.zarr"), 40, split="curated")
    build_store(Path("features.zarr"), 8, split="test")
    fat(*tiny_train_args(Path("features.zarr"), Path("runs/cnn"), epochs=1))
    cross_validate(*tiny_run(Path("features.zarr"), Path("cv/cnn"), epochs=1), folds=2)
    return root


def every_reading_command(run: Path, cv: Path, out: Path) -> None:
    """Each command that reads a run or a CV directory, without --store."""
    fat("evaluate", run, "--quiet")
    fat("evaluate", run, "--split", "test", "--quiet")
    fat("predict", run, "--out", out / "run.csv", "--quiet")
    fat("embed", run, "--split", "test", "--out", out / "emb.npy", "--quiet")
    fat("report", run, "--out", out / "report", "--clips", "1")
    fat("predict", cv, "--out", out / "cv.csv", "--quiet")
    fat("evaluate", cv, "--quiet")
    fat("evaluate", cv, "--split", "test", "--quiet")
    fat("report", cv, "--out", out / "cv-report", "--clips", "1")
    fat("ensemble", cv, run, "--weights", "equal", "--out", out / "ens.csv", "--quiet")
    fat("train", "--out", run, "--resume", "--epochs", "2", "--quiet")


@pytest.mark.slow
def test_runs_and_cvs_work_from_any_folder_and_after_moving_with_their_store(
    project, tmp_path, monkeypatch
):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the saved store path was typed relative to the project
    every_reading_command(project / "runs/cnn", project / "cv/cnn", elsewhere)
    moved = tmp_path / "moved"
    shutil.move(project, moved)  # the run, the CV and their store, together
    monkeypatch.chdir(tmp_path)
    every_reading_command(moved / "runs/cnn", moved / "cv/cnn", elsewhere)
    # the resume saved where it found the store
    assert Path(RunDirectory(moved / "runs/cnn").store()) == moved / "features.zarr"


def test_a_run_whose_store_is_gone_names_the_run_and_store_option(project, tmp_path):
    shutil.move(project / "features.zarr", tmp_path / "away.zarr")
    out = fails("predict", project / "runs/cnn", "--quiet")
    assert f"run {project / 'runs/cnn'}: its store" in out and "give --store PATH" in out
    fat("predict", project / "runs/cnn", "--store", tmp_path / "away.zarr", "--quiet")
    out = fails("evaluate", project / "cv/cnn", "--quiet")
    assert f"cv {project / 'cv/cnn'}: its store" in out


def test_cv_directories_evaluate_out_of_fold_and_on_a_split(project):
    out = fat("evaluate", "cv/cnn", "--quiet")
    assert "on 40 clips (val)" in out and (project / "cv/cnn/eval/val/summary.json").exists()
    out = fat("evaluate", "cv/cnn", "--split", "test", "--quiet")
    assert "on 8 clips (test)" in out and (project / "cv/cnn/eval/test/per_class.csv").exists()
    fat("report", "cv/cnn", "--out", "report", "--clips", "0")
    page = (project / "report/index.md").read_text()
    assert "cnn-fold0" in page and "cnn-fold1" in page


def test_a_cv_continues_to_more_epochs_under_the_resume_rule(project):
    cv = CVDirectory(project / "cv/cnn")
    before = cv.oof.read_text()
    summary = cross_validate(*tiny_run(Path("features.zarr"), Path("cv/cnn"), epochs=2), folds=2)
    assert summary is not None and cv.read_settings()["experiment"]["epochs"] == 2
    from fat.runs.checkpoint import load_checkpoint

    for i in range(2):
        assert load_checkpoint(cv.fold(i).checkpoint("last"))["epoch"] == 2
    assert cv.oof.read_text() != before  # predicted again by the longer-trained folds
    with pytest.raises(FatError, match="mixup differs from the saved run"):
        cross_validate(*tiny_run(Path("features.zarr"), Path("cv/cnn"), mixup=0.1), folds=2)


def test_cv_takes_a_settings_file_as_train_does(project):
    fat("train", "--arch", "cnn", "--lr", "0.002", "--print-config", "--out", "x")
    printed = fat("train", "--lr", "0.002", "--print-config")
    Path("settings.json").write_text(printed)
    shown = fat("cv", "--config", "settings.json", "--folds", "3", "--print-config")
    assert '"lr": 0.002' in shown and '"folds": 3' in shown
    experiment, _ = compose_settings("baseline-2019", Path("settings.json"), {"epochs": 4})
    assert experiment.lr == 0.002 and experiment.epochs == 4  # recipe < file < flags


def test_a_failed_start_leaves_no_directory_and_a_non_run_is_named(project, tmp_path):
    out = fails(*tiny_train_args(tmp_path / "missing.zarr", tmp_path / "runs/x", epochs=1))
    assert "missing.zarr" in out and not (tmp_path / "runs/x").exists()
    (tmp_path / "litter").mkdir()
    (tmp_path / "litter/.lock").write_text("")
    assert "not a run directory (no config.json" in fails("predict", tmp_path / "litter")
    assert "a feature store" in fails("predict", project / "features.zarr")
    assert "a cross-validation directory" in fails("export", "cv/cnn", "--out", "m.pt")


def test_resume_before_a_first_checkpoint_says_so(project, tmp_path):
    run = RunDirectory(project / "runs/cnn")
    shutil.rmtree(run.path / "checkpoints")
    with pytest.raises(FatError, match="no checkpoint yet"):
        resume_settings(run.path)


def test_an_unknown_model_setting_is_refused_before_a_config_is_written(project):
    out = fails("train", "--model-arg", "foo=1", "--print-config")
    assert "arch 'cnn' has no setting foo" in out


def test_checkpoint_names_are_one_list_snapshots_included(project):
    out = fails("predict", "runs/cnn", "--checkpoint", "snapshot-3", "--quiet")
    assert "no such snapshot" in out  # accepted as a name, missing in this run
    assert "checkpoint must be one of" in fails("predict", "runs/cnn", "--checkpoint", "worst")
