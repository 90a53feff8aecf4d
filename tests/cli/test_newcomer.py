"""What a newcomer meets on the command line: words that count right, grouped help with
short flags, one way to ask for JSON, tables that are tables, exports that keep their own
manifests, and mistakes that are errors instead of silent successes."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from fat.cli import main
from fat.runs.settings import SECTIONS
from tests.synthetic import TINY, cli_flags, hears_ctrl_c, make_fsd_layout, tiny_train_args


def invoke(*args: str):
    return CliRunner().invoke(main, [*map(str, args)])


def test_train_help_groups_its_options_in_sections_in_order():
    shown = invoke("train", "--help")
    assert shown.exit_code == 0
    lines = shown.output.splitlines()
    headings = [line[:-1] for line in lines if line.endswith(":") and not line.startswith(" ")]
    assert headings == ["Start from", *SECTIONS, "Other options"]
    start = shown.output.split("Start from:")[1].split(SECTIONS[0])[0]
    assert all(flag in start for flag in ("--recipe", "--config", "--resume"))
    for short, long in (
        ("-o", "--out"),
        ("-q", "--quiet"),
        ("-b", "--batch-size"),
        ("-j", "--workers"),
    ):
        assert f"{short}, {long}" in shown.output
    assert "--fold " not in invoke("cv", "--help").output


def test_short_flags_train_a_run_and_its_summary_counts_one_epoch(tiny_store, tmp_path):
    args = tiny_train_args(tiny_store, tmp_path / "r", epochs=1)
    args = [a for a in args if a not in ("--quiet",)]
    out_at = args.index("--out")
    args[out_at] = "-o"
    done = invoke(*args, "-q", "-b", "8", "-j", "0")
    assert done.exit_code == 0, done.output
    assert ": 1 epoch, best val lwlrap" in done.output


def test_every_json_output_is_asked_for_with_format(tiny_store):
    rates = invoke("bench", "input", "--store", tiny_store, "--format", "json", "--quiet",
                   "--loaders", "torch", "--batches", "2", "--splits", "curated")  # fmt: skip
    assert rates.exit_code == 0, rates.output
    assert "rates" in json.loads(rates.output)
    assert invoke("bench", "input", "--store", tiny_store, "--json").exit_code == 2


@pytest.fixture(scope="module")
def tagged_run(labelled_store, tmp_path_factory) -> tuple[Path, Path]:
    from fat.train.loop import train
    from tests.synthetic import tiny_run

    root = tmp_path_factory.mktemp("tagged")
    run = root / "run"
    train(*tiny_run(labelled_store, run, epochs=1))
    return run, make_fsd_layout(root / "data", n_curated=0, n_test=2)


def test_tag_table_is_a_table_and_counts_its_figures(tagged_run, tmp_path):
    run, data = tagged_run
    shown = invoke("tag", run, data / "test", "--top-k", "2", "--quiet")
    assert shown.exit_code == 0, shown.output
    header, *rows = shown.output.splitlines()
    assert header.split() == ["file", "rank", "label", "score"]
    assert len(rows) == 4 and rows[1].split()[0] == "2"  # a file's second label: no file name
    label_at = header.index("label")
    assert all(row[label_at - 1] == " " for row in rows)  # labels start in one column
    one = invoke("tag", run, data / "test" / "test000.wav", "--frames", tmp_path / "f", "-q")
    assert one.exit_code == 0 and "wrote 1 figure into" in one.output


def test_two_exports_of_one_name_keep_a_manifest_each(tagged_run, tmp_path):
    run, _ = tagged_run
    assert (
        invoke("export", run, "--format", "onnx", "--out", tmp_path / "tagger.onnx").exit_code == 0
    )
    assert invoke("export", run, "--out", tmp_path / "tagger.pt").exit_code == 0
    assert json.loads((tmp_path / "tagger.onnx.json").read_text())["format"] == "onnx"
    assert json.loads((tmp_path / "tagger.pt.json").read_text())["format"] == "torchscript"


def test_an_empty_noisy_clip_list_is_an_error(tiny_store, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("# no clips\n")
    args = tiny_train_args(tiny_store, tmp_path / "r", epochs=1)
    done = invoke(*args, "--noisy-clips", empty, "--train-splits", "curated,noisy")
    assert done.exit_code == 1 and "lists no clips" in done.output, done.output


@pytest.mark.slow
def test_ctrl_c_on_a_cv_says_to_run_it_again(tiny_store, tmp_path):
    fat = Path(sys.executable).parent / "fat"
    out = tmp_path / "cv"
    flags = cli_flags(**{**TINY, "epochs": 500})
    command = [
        str(fat),
        "cv",
        "--store",
        str(tiny_store),
        "--out",
        str(out),
        *flags,
        "--folds",
        "2",
    ]
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=hears_ctrl_c
    )
    deadline = time.monotonic() + 120
    while not (out / "fold0" / "checkpoints" / "last.pt").exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    last = stderr.strip().splitlines()[-1]
    assert proc.returncode == 130 and "run again, continues" in last and "--resume" not in last
