"""The prepared benchmark and study scripts run end to end at a tiny size: the FAT-size
rehearsal (bench/scale.py), the GPU check (bench/gpu_check.py) on the CPU, and the study of
docs/recipes.md (experiments/techniques.py)."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


def run_script(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


@pytest.mark.slow
def test_the_scale_rehearsal_measures_every_figure_at_a_tiny_scale(tmp_path):
    out = tmp_path / "scale.json"
    scale = "0.004"  # 20 curated, 79 noisy, 13 test clips of the real durations
    run_script("bench/scale.py", "--scale", scale, "--dir", str(tmp_path), "--json", str(out),
               "--batches", "3", "--rounds", "1")  # fmt: skip
    figures = json.loads(out.read_text())
    write = figures["write"]
    assert write["curated"]["clips"] == 20 and write["noisy"]["clips"] == 79
    assert write["test"]["clips"] == 13
    # The real durations: noisy clips are mostly 15 s, curated ones ~7.6 s on average.
    assert 12 < write["noisy"]["hours"] * 3600 / 79 <= 15.0
    assert 3 < write["curated"]["hours"] * 3600 / 20 < 12
    read = figures["read"]
    assert read["open_s"] > 0 and 0 < read["index_mb"] < 50
    assert read["disk_cold_one_file_gb_per_s"] > 0
    for split in ("curated", "noisy"):
        assert read[split]["load_warm_gb_per_s"] > 0
        assert read[split]["disk_cold_chunk_files_gb_per_s"] > 0
    assert figures["peak_rss_gb"] > 0
    paths = {r["path"]: r for r in figures["input"]}
    for path in ("numpy gather from RAM (reference)", "dali, RAM", "dali, disk cold"):
        assert paths[path]["crops_per_s"] > 0
    assert not list(tmp_path.glob("fat-scale-*/*.zarr"))  # removed without --keep


@pytest.mark.slow
def test_the_fsd50k_rehearsal_featurizes_a_sample_through_its_layout(tmp_path):
    out = tmp_path / "fsd50k.json"
    run_script("bench/scale.py", "--dataset", "fsd50k", "--scale", "0.001", "--dir",
               str(tmp_path), "--json", str(out), "--batches", "2", "--rounds", "1",
               "--featurize-clips", "6")  # fmt: skip
    figures = json.loads(out.read_text())
    assert figures["dataset"] == "fsd50k"
    assert {"train", "val", "eval"} == set(figures["write"])
    assert figures["write"]["train"]["clips"] == 37 and figures["write"]["eval"]["clips"] == 10
    assert figures["featurize"]["clips"] == 6 and figures["featurize"]["x_realtime"] > 0
    assert figures["featurize"]["full_set_hours_at_this_rate"] > 0
    assert figures["read"]["train"]["load_warm_gb_per_s"] > 0


@pytest.mark.slow
def test_the_gpu_check_runs_on_a_cpu_with_a_tiny_store(tmp_path):
    out = tmp_path / "gpu_check.json"
    done = run_script(
        "bench/gpu_check.py",
        "--device", "cpu", "--scale", "0.002", "--width", "0.0625", "--batch-size", "8",
        "--steps", "2", "--json", str(out),
    )  # fmt: skip
    rows = json.loads(out.read_text())["rows"]
    paths = {(r["arch"], r["path"]) for r in rows}
    for arch in ("cnn", "gcnn"):
        for path in ("RAM + DALI", "RAM + torch", "disk (Zarr) + DALI", "disk (Zarr) + torch"):
            assert (arch, path) in paths
    assert any(r["path"].startswith("torchrun") for r in rows)
    assert all(r["samples_per_s"] > 0 and 0 <= r["data_wait"] < 1 for r in rows)
    assert "skipped: GPU-resident (no GPU)" in done.stdout
    assert "| arch | path | samples/s | data wait |" in done.stdout


def test_the_gpu_check_fails_loudly_without_the_device_it_was_asked_for():
    done = subprocess.run(
        [sys.executable, "bench/gpu_check.py", "--device", "cuda:7", "--scale", "0.001"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    if done.returncode == 0:
        pytest.skip("this machine has the GPUs the check asked for")
    assert "no CUDA device" in done.stdout or "FAILED" in done.stdout


@pytest.mark.slow
def test_the_gpu_experiment_pack_runs_its_table_on_a_cpu_at_a_tiny_size(tmp_path):
    """Every row of the technique table through bench/gpu_experiments.sh (two seeds, four
    steps); then a time limit that leaves rows out, named as not run."""
    import os

    from experiments.techniques import ROWS
    from tests.synthetic import build_store

    store = tmp_path / "features.zarr"
    for split, n in (("curated", 40), ("noisy", 80), ("test", 20)):
        build_store(store, n, split=split)
    tiny = {"STEPS": "4", "WIDTH": "0.0625", "SEEDS": "0,1", "DEVICE": "cpu", "MINUTES": "0"}
    env = {**os.environ, **tiny, "STORE": str(store), "PYTHON": sys.executable}
    env |= {"EXTRA": "--crop-frames 32 --batch-size 8", "STEPS_PER_EPOCH": "2"}

    def pack(out: Path, **changes: str) -> dict:
        done = subprocess.run(
            ["bash", "bench/gpu_experiments.sh", str(out)],
            capture_output=True, text=True, timeout=900, cwd=ROOT, env={**env, **changes},
        )  # fmt: skip
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
        return json.loads((out / "gpu_experiments.json").read_text())

    figures = pack(tmp_path / "all")
    assert set(figures["rows"]) == {row.name for row in ROWS} and not figures["not_run"]
    seeds = {row.name: len(row.scored_seeds([0, 1])) for row in ROWS}  # a shared teacher: 1
    assert seeds["distill-teacher"] == 1 and seeds["distill"] == 2
    for name, row in figures["rows"].items():
        assert len(row["test_lwlrap"]) == seeds[name] and 0 < row["mean"] <= 1, name
        assert name == "baseline" or row["verdict"] in (
            "gain, outside the spread", "loss, outside the spread", "within the spread"
        )  # fmt: skip
    for name in ("fold-ensemble", "distill-teacher"):  # what each fold model scored alone
        folds = figures["rows"][name]
        assert len(folds["oof"]) == seeds[name], folds
        assert all(0 < m <= 1 for m in folds["fold_mean"]), folds
    limited = pack(tmp_path / "limited", MINUTES="0.05", ROWS="skip-attention,strong")
    assert limited["not_run"] and set(limited["rows"]) < {"baseline", "skip-attention", "strong"}


def test_a_shared_teacher_runs_once_and_its_row_is_paired_on_the_seeds_it_has(capsys):
    from experiments.techniques import ROWS, parse_args, plan, row_cpu_minutes, table

    args = parse_args(["store.zarr", "out", "--seeds", "3,4,5"])
    rows = [row for row in ROWS if row.name in ("baseline", "distill", "distill-teacher")]
    jobs = plan(args, rows)
    assert [t for t in jobs if t.startswith("teacher-cv")] == ["teacher-cv-s3"]
    for seed in (3, 4, 5):  # every student learns from the one teacher, with its own seed
        student = jobs[f"distill-s{seed}"]
        assert student.after == ["teacher-cv-s3"] and student.score == "best"
        assert student.argv[student.argv.index("--teacher") + 1] == f"{args.out}/teacher-cv-s3"
        assert student.argv[student.argv.index("--seed") + 1] == str(seed)
    assert jobs["teacher-cv-s3"].score == "best"
    results = {f"baseline-s{s}": {"test_lwlrap": v, "cpu_s": 60.0} for s, v in
               ((3, 0.70), (4, 0.72), (5, 0.74))}  # fmt: skip
    results |= {f"distill-s{s}": {"test_lwlrap": v, "cpu_s": 120.0} for s, v in
                ((3, 0.80), (4, 0.81), (5, 0.82))}  # fmt: skip
    results["teacher-cv-s3"] = {"test_lwlrap": 0.85, "cpu_s": 600.0}
    figures = table(args, rows, results)
    assert figures["distill"]["paired"] == pytest.approx([0.10, 0.09, 0.08])
    assert figures["distill-teacher"]["paired"] == pytest.approx([0.15])  # against seed 3 only
    assert figures["distill-teacher"]["verdict"] == "gain, outside the spread"
    assert row_cpu_minutes(rows[1], args.seeds, results) == pytest.approx(12.0)  # teacher + own
    assert "0.850 (seed 3 only)" in capsys.readouterr().out


def test_a_killed_study_continues_each_job_where_it_stopped(tmp_path):
    from experiments.techniques import continues_a_start, continuing
    from fat.runs.cv_directory import CVDirectory

    out = tmp_path / "baseline-s0"
    argv = ("train", "--store", "s.zarr", "--out", str(out), "--width", "0.25", "--epochs",
            "40", "--seed", "1", "--device", "cpu", "--log-every", "50", "--quiet")  # fmt: skip
    (out / "tensorboard").mkdir(parents=True)  # killed before its first checkpoint
    assert continuing(argv) == list(argv) and not out.exists()  # started again, from nothing
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "last.pt").write_bytes(b"")
    assert continuing(argv) == [
        "train", "--resume", "--out", str(out), "--store", "s.zarr", "--epochs", "40",
        "--device", "cpu", "--log-every", "50", "--quiet",
    ]  # fmt: skip
    assert continuing((*argv[:-1], "--compile", "--quiet"))[-2:] == ["--compile", "--quiet"]
    cv = ("cv", "--folds", "5", "--out", str(tmp_path / "cv"))
    assert continuing(cv) == list(cv)  # a CV continues when run again as it is
    assert not continues_a_start(list(cv), cv)
    CVDirectory(tmp_path / "cv").write_settings({"folds": 5, "options": {}})  # a CV begun
    assert continues_a_start(list(cv), cv)
    assert continues_a_start(continuing(argv), argv) and not continues_a_start(list(argv), argv)


def test_a_jobs_cpu_time_adds_up_over_the_starts_of_a_resumed_study(tmp_path):
    from experiments.techniques import ROWS, CpuLedger, process_cpu_seconds, row_cpu_minutes

    busy = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.5: pass\n"
    child = subprocess.Popen([sys.executable, "-c", busy + "time.sleep(30)"])
    try:
        for _ in range(100):  # until the busy half-second is spent
            if process_cpu_seconds(child.pid) >= 0.5:
                break
            time.sleep(0.1)
        assert 0.5 <= process_cpu_seconds(child.pid) < 5
    finally:
        child.kill()
        child.wait()
    first = CpuLedger(tmp_path, "baseline-s0", resumed=False)
    first.update(60.0)  # the last update before the study was killed
    again = CpuLedger(tmp_path, "baseline-s0", resumed=True)
    assert again.complete and again.update(30.0) == [60.0, 30.0]
    lost = CpuLedger(tmp_path, "baseline-s1", resumed=True)  # its first start kept no ledger
    assert not lost.complete and lost.update(30.0) == [30.0]
    baseline = next(row for row in ROWS if row.name == "baseline")
    results = {
        "baseline-s0": {"cpu_s": 90.0, "resumed": True, "cpu_complete": True},
        "baseline-s1": {"cpu_s": 30.0, "resumed": True, "cpu_complete": False},
        "baseline-s2": {"cpu_s": 150.0, "resumed": False},  # before ledgers: whole if not resumed
    }
    assert row_cpu_minutes(baseline, [0, 1, 2], results) == pytest.approx(2.0)


def test_a_study_on_a_cpu_runs_each_job_as_its_own_process_and_keeps_its_cpu_time(tmp_path):
    from tests.synthetic import build_store

    store = tmp_path / "features.zarr"
    for split, n in (("curated", 40), ("test", 20)):
        build_store(store, n, split=split)
    tiny = ["--steps", "4", "--steps-per-epoch", "2", "--width", "0.0625", "--seeds", "0"]
    extra = "--extra=--crop-frames 32 --batch-size 8"
    argv = [sys.executable, "experiments/techniques.py", str(store), str(tmp_path / "study")]
    done = subprocess.run(
        [*argv, *tiny, extra, "--rows", "baseline", "--jobs", "1"],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    result = json.loads((tmp_path / "study" / "results" / "baseline-s0.json").read_text())
    assert result["cpu_complete"] and len(result["cpu_starts"]) == 1
    assert result["cpu_s"] == result["cpu_starts"][0] > 0 and 0 < result["test_lwlrap"] <= 1
    ledger = json.loads((tmp_path / "study" / "cpu" / "baseline-s0.json").read_text())
    assert ledger == result["cpu_starts"]
    assert "| baseline |" in done.stdout
