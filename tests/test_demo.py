import csv
import json

import pandas as pd
from click.testing import CliRunner
from PIL import Image

from fat.cli import main
from fat.demo import SOUNDS
from fat.labels import official_vocabulary
from fat.store import open_store


def test_demo_data_layout_is_fsdkaggle2019_and_deterministic(tmp_path):
    for name in ("a", "b"):
        result = CliRunner().invoke(main, ["demo-data", str(tmp_path / name), "--scale", "0.1"])
        assert result.exit_code == 0, result.output
    a, b = tmp_path / "a", tmp_path / "b"
    for folder in ("train_curated", "train_noisy", "test"):
        files = sorted(p.name for p in (a / folder).iterdir())
        assert files and files == sorted(p.name for p in (b / folder).iterdir())
        assert all((a / folder / f).read_bytes() == (b / folder / f).read_bytes() for f in files)
    with open(a / "sample_submission.csv") as f:
        header = next(csv.reader(f))
    assert tuple(header[1:]) == official_vocabulary()
    with open(a / "train_curated.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 12
    assert all(set(r["labels"].split(",")) <= set(SOUNDS) for r in rows)


def test_demo_runs_end_to_end_at_tiny_scale(tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(
        main, ["demo", "--out", str(out), "--scale", "0.1", "--workers", "1", "--epochs", "2"]
    )
    assert result.exit_code == 0, result.output
    assert "store verified OK" in result.output
    with open_store(out / "features.zarr") as store:
        assert store.splits() == ["curated", "noisy", "test"]
        assert store.split("test").meta.labelled and store.split("noisy").n_clips == 24
        test_ids = store.split("test").clip_ids
        problems, _ = store.verify()
        assert problems == []
    with Image.open(out / "figures" / "clip.png") as image:
        assert image.size[0] > 600
    run = out / "runs" / "cnn"
    metrics = pd.read_csv(run / "metrics.csv")
    assert list(metrics["epoch"]) == [1, 2] and metrics["train_loss"].notna().all()
    submission = pd.read_csv(out / "submission.csv")
    assert submission.shape == (len(test_ids), 81)
    assert sorted(submission["fname"]) == sorted(test_ids)
    summary = json.loads((run / "eval" / "test" / "summary.json").read_text())
    assert 0 <= summary["lwlrap"] <= 1 and summary["n_clips"] == len(test_ids)
    assert f"test lwlrap {summary['lwlrap']:.3f}" in result.output
    index = (out / "report" / "index.md").read_text()
    for png in ("lwlrap.png", "loss.png", "lr.png", "grad_norms.png"):
        assert png in index and (out / "report" / png).exists()
