"""fat.analysis.report on two small synthetic run directories written the way the trainer does."""

import csv
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from fat.analysis.clips import pick_clips, predict_clips
from fat.analysis.figures import (
    BarChart,
    plot_clip_prediction,
    plot_grad_norms,
    plot_loss_curves,
    plot_lr_schedule,
    plot_metric_curves,
    plot_per_class,
    plot_per_class_split,
    zoomed_ticks,
)
from fat.analysis.report import write_report
from fat.cli import main
from fat.core.errors import FatError
from fat.core.features import LogMelConfig
from fat.core.labels import official_vocabulary
from fat.predict.scoring import validation_clips
from fat.predict.settings import PredictConfig
from fat.runs.checkpoint import load_trained_model
from fat.runs.directory import (
    CONFIG,
    EVAL_PER_CLASS,
    EVAL_SUMMARY,
    INPUTS,
    METRICS,
    STEPS,
    VAL_PER_CLASS,
)
from fat.runs.history import load_run
from fat.runs.logs import METRIC_COLUMNS as TRAINER_COLUMNS
from fat.runs.logs import VAL_PER_CLASS_COLUMNS, grad_norm_column
from fat.store import open_store

VOCAB = list(official_vocabulary())
PRESENT = VOCAB[:10]  # the classes the synthetic validation set has labels for
EPOCHS = 5
GROUPS = ("block1", "head")
METRIC_COLUMNS = [*TRAINER_COLUMNS, *[grad_norm_column(g) for g in GROUPS]]


def write_csv(path: Path, columns: list[str], rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(rows)


def make_run(
    root: Path, folder: str, name: str, seed: int, splits: bool, steps: bool, evaluated: bool
) -> tuple[Path, float, int]:
    """A run directory; returns it with its best val lwlrap and best epoch."""
    rng = np.random.default_rng(seed)
    run = root / folder
    run.mkdir()
    # An empty name is what the trainer saves when none is given: the folder's name is shown.
    config = {"experiment": {"arch": "cnn", "epochs": EPOCHS}, "options": {"name": name}}
    (run / CONFIG).write_text(json.dumps(config))
    inputs = {"feature_config": LogMelConfig(n_mels=16).to_dict(), "vocabulary": VOCAB}
    (run / INPUTS).write_text(json.dumps(inputs))
    val = np.round(np.array([0.3, 0.45, 0.55, 0.6, 0.58]) + rng.uniform(-0.02, 0.02, EPOCHS), 4)
    metrics, step_rows, per_class = [], [], []
    for e in range(1, EPOCHS + 1):
        head = 0.0 if e == EPOCHS else 0.5 / e  # a group whose gradient dies
        metrics.append(
            {
                "epoch": e,
                "step": 8 * e,
                "lr": 1e-3 * (1 - (e - 1) / EPOCHS),
                "train_loss": 0.2 / e,
                "val_loss": 0.1 + 0.01 * e,
                "val_lwlrap": val[e - 1],
                "val_lwlrap_curated": val[e - 1] + 0.05 if splits else "",
                "val_lwlrap_noisy": val[e - 1] - 0.1 if splits else "",
                "swa_val_lwlrap": val[e - 1] + 0.01 if splits and e >= 4 else "",
                "samples_per_s": 900.0,
                "data_wait_frac": 0.1,
                "epoch_seconds": 3.0,
                "grad_norm:block1": 2.0 / e,
                "grad_norm:head": head,
            }
        )
        for i in range(1, 5):
            step_rows.append(
                {
                    "step": 8 * (e - 1) + 2 * i,
                    "epoch": round(e - 1 + i / 4, 4),
                    "lr": 1e-3 * (1 - (e - 1 + i / 4) / EPOCHS),
                    "train_loss": 0.2 / e,
                    "grad_norm:block1": 2.0 / e,
                    "grad_norm:head": head,
                }
            )
        subsets = (
            {"all": PRESENT, "curated": PRESENT[:7], "noisy": PRESENT[3:]}
            if splits
            else {"all": PRESENT}
        )
        for subset, present in subsets.items():
            for c in VOCAB:  # the trainer writes every class, NaN where it has no labels
                per_class.append(
                    {
                        "epoch": e,
                        "subset": subset,
                        "class": c,
                        "lwlrap": round(float(rng.uniform(0.1, 1.0)), 4) if c in present else "nan",
                        "weight": 0.1 if c in present else 0.0,
                    }
                )
    write_csv(run / METRICS, METRIC_COLUMNS, metrics)
    if steps:
        write_csv(run / STEPS, list(step_rows[0]), step_rows)
    write_csv(run / VAL_PER_CLASS, VAL_PER_CLASS_COLUMNS, per_class)
    if evaluated:
        (run / "eval" / "test").mkdir(parents=True)
        (run / "eval" / "test" / EVAL_SUMMARY).write_text(json.dumps({"lwlrap": 0.5123}))
        rows = [
            {
                "class": c,
                "lwlrap": 0.1 * (i + 1),
                "weight": 0.1,
                "positives": 3,
                "confused_with": "Bark;Bass_drum",
                "lwlrap_curated": 0.1 * (i + 1),
                "lwlrap_noisy": "" if i % 2 else 0.05 * (i + 1),
            }
            for i, c in enumerate(PRESENT)
        ]
        write_csv(run / "eval" / "test" / EVAL_PER_CLASS, list(rows[0]), rows)
    best = int(np.argmax(val))
    return run, float(val[best]), best + 1


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> list[tuple[Path, float, int]]:
    root = tmp_path_factory.mktemp("runs")
    return [
        make_run(root, "run_a", "mixup", 1, splits=True, steps=True, evaluated=True),
        make_run(root, "base", "", 2, splits=False, steps=False, evaluated=False),
    ]


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) in pixels, after checking the image is not blank."""
    with Image.open(path) as image:
        image.load()
        pixels = np.asarray(image.convert("L"))
        assert pixels.std() > 5, f"{path} looks blank"
        return image.size


def count_bars(path: Path) -> int:
    """Horizontal bars in a per-class chart, counted from its pixels: bands of rows that hold
    a run of at least 5 coloured pixels. Text, grid and the mean lines are grey, black or a
    couple of pixels thin; the bars are the only wide coloured shapes."""
    with Image.open(path) as image:
        rgb = np.asarray(image.convert("RGB"), dtype=int)
    coloured = (rgb.max(axis=2) - rgb.min(axis=2)) > 40
    run = 5
    sums = np.cumsum(np.pad(coloured, ((0, 0), (1, 0))), axis=1)
    rows = ((sums[:, run:] - sums[:, :-run]) == run).any(axis=1)
    return int((np.diff(rows.astype(int), prepend=0) == 1).sum())


def test_load_run(runs):
    (a, best_a, epoch_a), (b, _, _) = runs
    run = load_run(a)
    assert run.name == "mixup" and run.arch == "cnn" and run.epochs == EPOCHS
    assert len(run.vocabulary) == 80
    assert run.best == (epoch_a, pytest.approx(best_a))
    assert run.steps is not None and len(run.steps) == 4 * EPOCHS
    assert run.grad_groups(run.steps) == list(GROUPS)
    values, weights = run.per_class_at(epoch_a, "all")
    assert sorted(values.index) == sorted(PRESENT) and math.isclose(weights.sum(), 1.0)
    assert set(run.evals) == {"test"} and run.evals["test"].summary["lwlrap"] == 0.5123

    other = load_run(b)
    assert other.name == "base"  # empty name -> folder name
    assert other.steps is None and other.evals == {}
    assert other.metrics["swa_val_lwlrap"].isna().all()


def test_curve_figures(runs, tmp_path):
    histories = [load_run(r) for r, _, _ in runs]
    for plot, name in (
        (plot_metric_curves, "lwlrap.png"),
        (plot_loss_curves, "loss.png"),
        (plot_lr_schedule, "lr.png"),  # run_a from steps.csv, base from metrics.csv
    ):
        assert png_size(plot(histories, tmp_path / name)) == (1000, 500)
    # one panel per run, 150 + 300 px each; the dead head group is drawn on the floor
    assert png_size(plot_grad_norms(histories, tmp_path / "grad.png")) == (1000, 750)
    # many runs share the width: 5 in 2 columns (3 rows), 9 in 3 columns (3 rows)
    assert png_size(plot_grad_norms((histories * 3)[:5], tmp_path / "g5.png")) == (1000, 1050)
    assert png_size(plot_grad_norms((histories * 5)[:9], tmp_path / "g9.png")) == (1000, 1050)
    with pytest.raises(FatError, match="no run records"):
        plot_metric_curves(histories, tmp_path / "x.png", metrics=("no_such_column",))


def test_per_class_charts(runs, tmp_path):
    (a, _, epoch), _ = runs
    run = load_run(a)
    values, weights = run.per_class_at(epoch, "all")
    chart = plot_per_class(values, tmp_path / "pc.png", "per class", weights=weights)
    assert isinstance(chart, BarChart) and chart.n_bars == len(PRESENT)
    assert set(chart.classes) == set(PRESENT)
    assert list(chart.classes) == list(values.sort_values(ascending=False).index)
    assert png_size(chart.path) == (1000, 400)  # max(400, 150 + 25 * 10)
    assert count_bars(chart.path) == len(PRESENT)

    # 80 entries with NaN for absent classes: only the present ones become bars; height grows
    padded = values.reindex(VOCAB)
    many = plot_per_class(padded.fillna(0.5), tmp_path / "pc80.png", "all 80")
    assert many.n_bars == 80 and png_size(many) == (1000, 150 + 25 * 80)
    assert count_bars(many) == 80
    assert plot_per_class(padded, tmp_path / "pc10.png", "NaN dropped").n_bars == 10

    curated, _ = run.per_class_at(epoch, "curated")
    noisy, _ = run.per_class_at(epoch, "noisy")
    split = plot_per_class_split(curated, noisy, tmp_path / "split.png", "curated vs noisy")
    assert split.n_bars == 10  # 7 curated + 7 noisy, overlapping in 4
    assert split.classes[:7] == tuple(curated.sort_values(ascending=False).index)
    assert png_size(split.path) == (1000, 525)  # 150 + 37.5 * 10


def test_clip_prediction(tmp_path):
    cfg = LogMelConfig(n_mels=16)
    rng = np.random.default_rng(0)
    features = rng.normal(-40, 10, size=(16, 300)).astype(np.float32)
    scores = rng.uniform(0, 0.5, size=80)
    scores[[3, 7]] = [0.95, 0.9]
    frames = rng.uniform(0, 1, size=(75, 80))  # T' = T / 4
    with_frames = plot_clip_prediction(
        features, cfg, VOCAB, scores, [VOCAB[3], VOCAB[7]], tmp_path / "a.png", frames
    )
    assert png_size(with_frames) == (1000, 800)  # 350 + (100 + 25*5) + (100 + 25*5)
    # a true label outside the top 5 gets its own bar below them
    scores[11] = 0.0
    without = plot_clip_prediction(
        features, cfg, VOCAB, scores, [VOCAB[3], VOCAB[11]], tmp_path / "b.png"
    )
    assert png_size(without) == (1000, 600)  # 350 + (100 + 25*6)
    with pytest.raises(FatError, match="frame_probs"):
        plot_clip_prediction(features, cfg, VOCAB, scores, [], tmp_path / "c.png", frames.T)
    with pytest.raises(FatError, match="not in the vocabulary"):
        plot_clip_prediction(features, cfg, VOCAB, scores, ["Nope"], tmp_path / "d.png")


def test_write_report(runs, tmp_path):
    out = tmp_path / "report"
    out.mkdir()
    clip = plot_clip_prediction(
        np.zeros((16, 50)) + np.arange(50),
        LogMelConfig(n_mels=16),
        VOCAB,
        np.linspace(1, 0, 80),
        [VOCAB[0]],
        out / "clip_x.png",
    )
    index = write_report([r for r, _, _ in runs], out, clip_figures=[clip])
    text = index.read_text()

    written = {p.name for p in out.glob("*.png")}
    referenced = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert set(referenced) == written and len(referenced) == len(written)
    expected = {"lwlrap.png", "loss.png", "lr.png", "grad_norms.png", "clip_x.png"}
    expected |= {f"mixup_per_class_epoch{runs[0][2]}.png", f"base_per_class_epoch{runs[1][2]}.png"}
    expected |= {f"mixup_curated_vs_noisy_epoch{runs[0][2]}.png"}
    expected |= {"mixup_eval_test_per_class.png", "mixup_eval_test_curated_vs_noisy.png"}
    assert written == expected
    for name in written:
        assert png_size(out / name)[0] == 1000
    assert text.count("### ") == len(written)  # every figure under its own heading

    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| ")}
    for (_, best, epoch), name in zip(runs, ("mixup", "base"), strict=True):
        cells = [c.strip() for c in rows[name].split("|")[1:-1]]
        assert cells[1:5] == ["cnn", str(EPOCHS), f"{best:.4f}", str(epoch)]
    assert "test 0.5123" in rows["mixup"]


def headless_chromium():
    """A WebDriver session of the system's Chromium (Debian's chromium and chromium-driver),
    or a skip saying what is missing."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    import shutil

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not browser or not driver:
        pytest.skip("no chromium/chromedriver (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    # Headless, and nothing that reaches for the network this machine does not have.
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = webdriver.ChromeService(executable_path=driver)
    return webdriver.Chrome(options=options, service=service)


def test_the_html_report_loads_in_a_browser_with_every_figure_and_sorts(runs, tmp_path):
    out = tmp_path / "report"
    write_report([r for r, _, _ in runs], out)
    page = out / "index.html"
    assert "http" not in page.read_text().split("<body>", 1)[1].split("<script>")[0]
    figures = len(list(out.glob("*.png")))
    # The page alone, moved away from its PNGs: it must hold its figures itself.
    alone = tmp_path / "elsewhere" / "index.html"
    alone.parent.mkdir()
    alone.write_bytes(page.read_bytes())
    browser = headless_chromium()
    try:
        browser.get(alone.as_uri())
        images = browser.execute_script(
            "return Array.from(document.images).map(i => i.complete && i.naturalWidth)"
        )
        assert len(images) == figures and all(w == 1000 for w in images), images
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
        column = "return Array.from(document.querySelectorAll('table.sortable')[0].tBodies[0]" \
                 ".rows).map(r => r.cells[3].textContent)"  # fmt: skip
        header = browser.find_elements("css selector", "table.sortable th")[3]  # best val lwlrap
        header.click()
        ascending = browser.execute_script(column)
        assert ascending == sorted(ascending, key=float)
        header.click()
        assert browser.execute_script(column) == ascending[::-1]
    finally:
        browser.quit()


def garble(run: Path, name: str, content: str | bytes | None) -> None:
    path = run / name
    if content is None:
        path.unlink()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        (
            "metrics.csv",
            "epoch,lr,train_loss,val_lwlrap\n1,0.1,0.5,0.3\n2,0.1,0.4,0.3,9,9\n",
            "CSV",
        ),
        ("metrics.csv", "epoch,lr,train_loss,val_lwlrap\n1,0.1,oops,0.3\n", "not a number"),
        ("metrics.csv", "epoch,lr,loss\n1,0.1,0.5\n", "missing column"),
        ("metrics.csv", "", "empty"),
        ("metrics.csv", b"\x89PNG\r\n\x1a\n\xff\xfe\x00", "CSV"),
        ("metrics.csv", "epoch,lr,train_loss,val_lwlrap\n1.5,0.1,0.5,0.3\n", "whole number"),
        ("metrics.csv", None, "missing"),
        ("config.json", "{not json", "JSON"),
        ("config.json", '{"train": {}}', "unknown key"),
        ("config.json", '{"experiment": []}', "experiment"),
        ("inputs.json", "[1, 2]", "JSON object"),
        ("steps.csv", "step,epoch,lr\n1,0.1,x\n", "not a number"),
        ("val_per_class.csv", "epoch,subset,class,lwlrap\n1,all,Bark,0.5\n", "weight"),
    ],
)
def test_garbled_files(tmp_path, name, content, reason):
    run, _, _ = make_run(tmp_path, "r", "x", 0, splits=False, steps=True, evaluated=False)
    garble(run, name, content)
    with pytest.raises(FatError) as error:
        load_run(run)
    message = str(error.value)
    assert name in message and reason in message and "\n" not in message
    with pytest.raises(FatError, match=re.escape(name)):
        write_report([run], tmp_path / "out")


def test_runs_repeated_over_seeds_are_compared(tmp_path):
    runs = [
        make_run(
            tmp_path, f"{config}-s{seed}", "", seed=seed, splits=True, steps=False, evaluated=False
        )[0]
        for config in ("plain", "lsoft")
        for seed in range(3)
    ]
    index = write_report(runs, tmp_path / "report")
    text = index.read_text()
    assert "## Comparison across seeds" in text and "comparison.png" in text
    table = pd.read_csv(tmp_path / "report" / "comparison.csv")
    assert list(table["config"]) == ["plain", "lsoft"] and list(table["seeds"]) == [3, 3]
    finals = [load_run(r).metrics["val_lwlrap_curated"].iloc[-1] for r in runs[:3]]
    assert table["mean"][0] == pytest.approx(np.mean(finals))
    assert table["std"][0] == pytest.approx(np.std(finals, ddof=1))
    with Image.open(tmp_path / "report" / "comparison.png") as image:
        assert image.size[0] == 1000


def test_comparison_axis_zooms_to_the_data():
    finals = [0.941, 0.909, 0.955, 0.907, 0.869, 0.962]  # differences of 0.01 matter
    ticks = zoomed_ticks(finals)
    assert ticks[0] <= min(finals) and ticks[-1] >= max(finals)
    assert ticks[0] > 0.8 and ticks[-1] - ticks[0] < 0.15  # not an axis from 0
    assert np.all(np.diff(ticks) > 0)
    same = zoomed_ticks([0.5, 0.5, np.nan])
    assert same[0] < 0.5 < same[-1] and same[-1] - same[0] >= 0.01
    with pytest.raises(FatError, match="no finite value"):
        zoomed_ticks([np.nan])


@pytest.fixture(scope="module")
def real_run(labelled_store, trained_gcnn) -> tuple[Path, Path]:
    """A GCNN (it has frame outputs, so clip figures get the heat-map) and its store, which
    has a labelled test split."""
    return labelled_store, trained_gcnn


def clip_figure_height(scores: np.ndarray, truth: np.ndarray, top_k: int = 5) -> int:
    """Pixel height plot_clip_prediction documents, with the frame heat-map: 350 + (100 +
    25 * top_k) + (100 + 25 * bars), bars = top_k + true labels ranked below the top k."""
    top = set(np.argsort(-scores, kind="stable")[:top_k].tolist())
    bars = top_k + sum(1 for c in np.flatnonzero(truth) if c not in top)
    return 350 + (100 + 25 * top_k) + (100 + 25 * bars)


@pytest.mark.slow
def test_report_on_a_real_run(real_run, tmp_path):
    store, run = real_run
    out = tmp_path / "report"
    result = CliRunner().invoke(
        main, ["report", str(run), "--out", str(out), "--clips", "2", "--device", "cpu"]
    )
    assert result.exit_code == 0, result.output

    written = {p.name for p in out.glob("*.png")}
    referenced = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", (out / "index.md").read_text())
    assert sorted(referenced) == sorted(written)

    for name in ("lwlrap.png", "loss.png", "lr.png"):
        assert png_size(out / name) == (1000, 500)
    assert png_size(out / "grad_norms.png") == (1000, 450)  # one run: 150 + 300

    # One bar per class with a label among the validation clips the trainer held out.
    trained = load_trained_model(run)
    curated = open_store(store).split("curated")
    held_out = curated.labels[validation_clips(trained, curated)]
    n_present = int((held_out.sum(axis=0) > 0).sum())
    best_epoch = load_run(run).best[0]
    chart = out / f"{run.name}_per_class_epoch{best_epoch}.png"
    assert count_bars(chart) == n_present
    assert png_size(chart) == (1000, max(400, 150 + 25 * n_present))

    # One figure per requested clip, sized by that clip's scores and true labels.
    test = open_store(store).split("test")
    clips = sorted(f for f in written if f.startswith("gcnn_clip_"))
    assert clips == sorted(f"gcnn_clip_{c[:-4]}.png" for c in test.clip_ids[:2])
    for p in predict_clips(trained, test, np.arange(2), PredictConfig(device="cpu")):
        expected = clip_figure_height(p.scores, test.labels[p.clip])
        assert png_size(out / f"gcnn_clip_{test.clip_ids[p.clip][:-4]}.png") == (1000, expected)


@pytest.mark.parametrize("tta", ["mean", "max"])
def test_clip_scores_are_the_submission_scores(real_run, tmp_path, tta):
    store, run = real_run
    sub = tmp_path / "sub.csv"
    result = CliRunner().invoke(
        main, ["predict", str(run), "--out", str(sub), "--tta", tta, "--quiet"]
    )
    assert result.exit_code == 0, result.output
    trained = load_trained_model(run)
    test = open_store(store).split("test")
    clips = pick_clips(test, 3)
    predictions = predict_clips(trained, test, clips, PredictConfig(tta=tta, device="cpu"))
    submission = pd.read_csv(sub).set_index("fname")
    for p in predictions:
        assert np.allclose(p.scores, submission.loc[test.clip_ids[p.clip]], atol=2e-6)
        # The heat-map covers the whole clip at the GCNN's frame rate (4 input frames each).
        assert p.frame_probs.shape == (int(np.ceil(test.lengths[p.clip] / 4)), 80)
        assert p.frame_probs.min() >= 0 and p.frame_probs.max() <= 1


def test_names_with_markdown_html_and_mathtext_characters_are_escaped(tmp_path):
    """Run, class and split names come from users and stores: in headings, alt text and figure
    titles they must read literally (two `$` made matplotlib parse maths and savefig raise)."""
    name = "a|b $\\bad$ [c](d) <b>#x *y*"
    run, _, _ = make_run(tmp_path, "r", name, 1, splits=True, steps=True, evaluated=True)
    index = write_report([run], tmp_path / "report")
    text = index.read_text()
    escaped = "a\\|b \\$\\\\bad\\$ \\[c\\]\\(d\\) \\<b\\>\\#x \\*y\\*"
    assert f"### {escaped}: per-class lwlrap" in text
    assert f"![{escaped}: per-class lwlrap" in text
    assert "<b>" not in text and "[c](d)" not in text
    figures = list((tmp_path / "report").glob("*.png"))
    assert figures and all(
        p.name.startswith(("a_b_bad_c_d_b_x_y_", "lwlrap", "loss", "lr", "grad")) for p in figures
    ), [p.name for p in figures]
