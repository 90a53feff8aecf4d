"""The technique table: each technique of the toolbox against the `default` recipe at one
budget, three seeds, paired by seed, scored on the test split.

    python experiments/techniques.py STORE OUT [--steps 2000] [--seeds 0,1,2] [--jobs 2]
    python experiments/techniques.py STORE OUT --device cuda --width 1.0 --minutes 8 \\
        --in-process --json figures.json          # the GPU experiment pack

Every run has the same number of steps of --batch-size (a 5-fold ensemble: that many per
fold model) and trains on all curated clips (no hold-out; cross-validation holds out its
folds). A job's numbers go to OUT/results/TAG.json the moment it ends (test lwlrap, CPU and
wall seconds, its command), so a killed study reruns only what had not finished (a training
job killed half-way resumes from its last epoch), and each finished row can be kept as it
lands; a job that fails is reported and the study goes on without the rows that need it.
The CPU seconds of each start of a job go to OUT/cpu/TAG.json while it runs, so a job
resumed by a later study still reports its whole cost.
On a CPU, --jobs single-thread processes run at a time; --in-process runs the jobs one after
another inside this process (no start-up per job, for a GPU). --minutes: start no job that
would end past that much wall time (estimated from the jobs so far); the rows that did not
fit are listed as such. A row's shared job (a distillation teacher) runs once, at the first
seed, and serves every seed's student; the spread of such a row is the students'.

A difference counts as outside the seed spread when it has the same sign for every seed and
its mean is larger than the standard deviation over seeds of the baseline and of the row."""

import argparse
import json
import os
import resource
import shlex
import shutil
import subprocess
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HALF = ("--train-splits", "curated,noisy", "--split-weights", "curated=0.5,noisy=0.5")


@dataclass(frozen=True)
class Row:
    """A row of the table: what it changes, the jobs of one seed that make it (each a fat
    command; `{out}` and `{seed}` filled in), and which of them is scored, with which
    checkpoint."""

    name: str
    what: str
    jobs: tuple[tuple[str, tuple[str, ...]], ...]  # (tag, fat arguments)
    scored: str = ""  # the tag whose run is scored; the row's own name when empty
    kind: str = "best"
    steps_share: dict[str, float] = field(default_factory=dict)  # tag -> share of --steps
    shared: tuple[str, ...] = ()  # tags run once, at the first seed, for every seed's jobs

    @property
    def scored_tag(self) -> str:
        return self.scored or self.name

    def job_seed(self, tag: str, seed: int, seeds: list[int]) -> int:
        """The seed whose job `tag` serves `seed`: the first seed for a shared job."""
        return seeds[0] if tag in self.shared else seed

    def scored_seeds(self, seeds: list[int]) -> list[int]:
        return sorted({self.job_seed(self.scored_tag, s, seeds) for s in seeds})


def train(*flags: str) -> tuple[str, ...]:
    return ("train", "--train-splits", "curated", *flags)


def cv(*flags: str) -> tuple[str, ...]:
    return ("cv", "--folds", "5", "--train-splits", "curated", *flags)


# The rows, most wanted first (a time limit drops the last): each row's jobs for one seed.
ROWS = [
    Row("baseline", "`default` recipe: mixup 0.4, SpecAugment 2+2, one-cycle to 1e-3",
        (("baseline", train()),)),
    Row("skip-attention", "`--arch skip_attention` (aux heads 0.4/0.2/0.1)",
        (("skip-attention", train("--arch", "skip_attention")),)),
    Row("noisy-lsoft", "+ noisy clips half and half, `--noisy-loss lsoft --lsoft-beta 0.7`",
        (("noisy-lsoft", train(*HALF, "--noisy-loss", "lsoft", "--lsoft-beta", "0.7")),)),
    Row("noisy-pseudo",
        "noisy half and half, targets `fat pseudo-label BASELINE --temperature 0.5 --blend 0.25`",
        (("pseudo", ("pseudo-label", "{out}/baseline-s{seed}", "--temperature", "0.5",
                     "--blend", "0.25", "--out", "{out}/pseudo-s{seed}.csv")),
         ("noisy-pseudo", train(*HALF, "--noisy-targets", "{out}/pseudo-s{seed}.csv")))),
    Row("fold-ensemble", "5-fold CV of the baseline, the fold models' mean (5x the CPU)",
        (("fold-ensemble", cv()),)),
    Row("distill",
        "`--teacher` the 5-fold skip-attention ensemble (T 2, weight 0.9), curated + noisy half "
        "and half; one teacher (the first seed's) for every student",
        (("teacher-cv", cv("--arch", "skip_attention")),
         ("distill", ("train", *HALF, "--teacher", "{out}/teacher-cv-s{first}",
                      "--teacher-temperature", "2", "--teacher-weight", "0.9"))),
        shared=("teacher-cv",)),
    Row("distill-t1", "distill at the default temperature, `--teacher-temperature 1`",
        (("teacher-cv", cv("--arch", "skip_attention")),
         ("distill-t1", ("train", *HALF, "--teacher", "{out}/teacher-cv-s{first}",
                         "--teacher-temperature", "1", "--teacher-weight", "0.9"))),
        shared=("teacher-cv",)),
    Row("distill-crop",
        "distill, the teacher predicting each crop the student trains on "
        "(`--teacher-targets crop`; ~2.5x the CPU per step)",
        (("teacher-cv", cv("--arch", "skip_attention")),
         ("distill-crop", ("train", *HALF, "--teacher", "{out}/teacher-cv-s{first}",
                           "--teacher-temperature", "2", "--teacher-weight", "0.9",
                           "--teacher-targets", "crop"))),
        shared=("teacher-cv",)),
    Row("distill-teacher", "the teacher above: a 5-fold skip-attention ensemble",
        (("teacher-cv", cv("--arch", "skip_attention")),), scored="teacher-cv",
        shared=("teacher-cv",)),
    Row("strong", "`--recipe strong` at this budget: skip-attention, noisy half and half, Lsoft",
        (("strong", ("train", "--recipe", "strong")),)),
    Row("balanced", "`--sampler balanced`", (("balanced", train("--sampler", "balanced")),)),
    Row("ema", "`--ema 0.999`, the average scored", (("ema", train("--ema", "0.999")),),
        kind="ema"),
    Row("mixer-concat", "`--mixer concat` (two halves joined by a sigmoid ramp, labels united)",
        (("mixer-concat", train("--mixer", "concat")),)),
    Row("mixer-specmix", "`--mixer specmix` instead of mixup",
        (("mixer-specmix", train("--mixer", "specmix")),)),
    Row("noisy-half", "+ noisy clips, `--split-weights curated=0.5,noisy=0.5`",
        (("noisy-half", train(*HALF)),)),
    Row("noisy-selected", "noisy half and half, clips kept by `fat select-noisy BASELINE`",
        (("select", ("select-noisy", "{out}/baseline-s{seed}", "--min-lwlrap", "0.5",
                     "--out", "{out}/keep-s{seed}.txt")),
         ("noisy-selected", train(*HALF, "--noisy-clips", "{out}/keep-s{seed}.txt")))),
    Row("staged", "half the steps on noisy clips alone, then half on curated from them",
        (("pretrain-noisy", ("train", "--train-splits", "noisy")),
         ("staged", train("--init", "{out}/pretrain-noisy-s{seed}"))),
        steps_share={"pretrain-noisy": 0.5, "staged": 0.5}),
]  # fmt: skip
TRAINING = {"train", "cv"}


@dataclass
class Job:
    tag: str  # NAME-sSEED
    argv: list[str]
    after: list[str]  # tags that must have finished first
    score: str = ""  # checkpoint kind scored on the test split; "" for preparation steps
    units: float = 0.0  # its length in baseline runs (for the time limit's estimate)


def plan(args: argparse.Namespace, rows: list[Row]) -> dict[str, Job]:
    """Every job of every row and seed, in the order they should start."""
    jobs: dict[str, Job] = {}
    for row in rows:
        for seed in args.seeds:
            before: list[str] = []
            for tag, template in row.jobs:
                job_seed = row.job_seed(tag, seed, args.seeds)
                full = f"{tag}-s{job_seed}"
                argv = [
                    a.format(out=args.out, seed=job_seed, first=args.seeds[0]) for a in template
                ]
                share = row.steps_share.get(tag, 1.0)
                if argv[0] in TRAINING:
                    argv += budget_flags(args, job_seed, share, full, cv=argv[0] == "cv")
                elif argv[0] in ("pseudo-label", "select-noisy"):
                    argv += ["--device", args.device, "--quiet"]
                needs = [t for t in before] + [
                    f"baseline-s{job_seed}" for a in argv if f"{args.out}/baseline-s{job_seed}" in a
                ]
                score = row.kind if tag == row.scored_tag else ""
                units = share * (5 if argv[0] == "cv" else 1) if argv[0] in TRAINING else 0.1
                if full not in jobs:
                    jobs[full] = Job(full, argv, sorted(set(needs) - {full}), score, units)
                elif score:
                    jobs[full].score = score
                before.append(full)
    return jobs


def budget_flags(
    args: argparse.Namespace, seed: int, share: float, tag: str, cv: bool
) -> list[str]:
    steps = max(1, round(args.steps * share))
    epochs = max(1, steps // args.steps_per_epoch)
    flags = ["--store", str(args.store), "--out", f"{args.out}/{tag}", "--width", str(args.width)]
    flags += ["--epochs", str(epochs), "--steps-per-epoch", str(steps // epochs)]
    flags += ["--batch-size", str(args.batch_size), "--seed", str(seed), "--device", args.device]
    flags += ["--log-every", str(args.steps_per_epoch), "--quiet", *shlex.split(args.extra)]
    return flags + ([] if cv else ["--val-fraction", "0"])  # CV holds out its folds


def continuing(argv: tuple[str, ...]) -> list[str]:
    """The command of a job, continuing what a killed study left of it: a training run with a
    checkpoint resumes from its last epoch (its saved settings); one without is started again;
    a cross-validation continues when run again as it is."""
    if argv[0] != "train":
        return list(argv)
    flag = {name: argv[i + 1] for i, name in enumerate(argv[:-1]) if name.startswith("--")}
    out = Path(flag["--out"])
    if not (out / "checkpoints" / "last.pt").exists():
        shutil.rmtree(out, ignore_errors=True)
        return list(argv)
    kept = ("--out", "--store", "--epochs", "--device", "--log-every")
    compiled = ["--compile"] if "--compile" in argv else []  # a machine option: may change
    return ["train", "--resume", *[a for k in kept for a in (k, flag[k])], *compiled, "--quiet"]


def continues_a_start(argv: list[str], planned: tuple[str, ...]) -> bool:
    """Whether this start of a job continues an earlier one: a training run resumed from its
    checkpoint, or a cross-validation run again over folds it had begun."""
    if argv[0] == "cv":
        from fat.runs.cv_directory import is_cv_directory

        return is_cv_directory(argv[argv.index("--out") + 1])
    return argv != list(planned)


class CpuLedger:
    """CPU seconds of each start of a job's process, in OUT/cpu/TAG.json, updated while it
    runs, so that a job killed with its study and resumed later still has its whole cost (to
    within one update interval per kill). `complete` is false for a job resumed from a start
    that kept no ledger."""

    def __init__(self, out: Path, tag: str, resumed: bool):
        self.path = out / "cpu" / f"{tag}.json"
        self.path.parent.mkdir(exist_ok=True)
        kept = json.loads(self.path.read_text()) if resumed and self.path.exists() else None
        self.complete = not resumed or kept is not None
        self.starts: list[float] = (kept or []) + [0.0]

    def update(self, seconds: float) -> list[float]:
        self.starts[-1] = seconds
        partial = self.path.with_suffix(".part")
        partial.write_text(json.dumps(self.starts))
        partial.replace(self.path)
        return self.starts


def process_cpu_seconds(pid: int) -> float:
    """User + system seconds of a running process and of its children it has waited for."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def run_job(job: Job, args: argparse.Namespace) -> dict:
    """One fat command; its CPU seconds (the process and its children, over every start of a
    job its study resumed) and wall seconds (of this start)."""
    start = time.monotonic()
    log = args.out / "logs" / f"{job.tag}.log"
    argv = continuing(job.argv)
    resumed = continues_a_start(argv, job.argv)
    ledger = None if args.in_process else CpuLedger(args.out, job.tag, resumed)
    if args.in_process:
        from click.testing import CliRunner

        from fat.cli import main

        before = resource.getrusage(resource.RUSAGE_SELF)
        done = CliRunner().invoke(main, argv)
        after = resource.getrusage(resource.RUSAGE_SELF)
        log.write_text(done.output)
        code = done.exit_code
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    else:
        env = {**os.environ, "OMP_NUM_THREADS": "1"} if args.device == "cpu" else None
        with open(log, "w") as out:
            proc = subprocess.Popen([args.fat, *argv], stdout=out, stderr=out, env=env)
            updated = time.monotonic()
            while True:  # the ledger updated every 30 s until the process ends
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                if time.monotonic() - updated >= 30:
                    ledger.update(process_cpu_seconds(proc.pid))
                    updated = time.monotonic()
                time.sleep(1)
        code = os.waitstatus_to_exitcode(status)
        cpu = sum(ledger.update(usage.ru_utime + usage.ru_stime))
    if code != 0:
        raise RuntimeError(f"{job.tag} failed (exit {code}); see {log}")
    result = {"tag": job.tag, "cpu_s": cpu, "wall_s": time.monotonic() - start}
    result["command"] = "fat " + shlex.join(job.argv)
    result["resumed"] = resumed
    if ledger is not None:
        result |= {"cpu_starts": ledger.starts, "cpu_complete": ledger.complete}
    if job.score:
        result["test_lwlrap"] = test_lwlrap(args.out / job.tag, job.score, args.device)
    if job.score and job.argv[0] == "cv":
        result |= fold_figures(args.out / job.tag, job.score, args.device)
    return result


def test_lwlrap(run: Path, kind: str, device: str) -> float:
    from fat.core.metrics import lwlrap
    from fat.predict.ensemble import Source, predict_ensemble
    from fat.predict.settings import PredictConfig

    cfg = PredictConfig(device=device)
    pred = predict_ensemble([Source.parse(str(run), kind)], "test", cfg=cfg)
    return float(lwlrap(pred.labels, pred.probs))


def fold_figures(cv_dir: Path, kind: str, device: str) -> dict:
    """What a fold ensemble is made of: its out-of-fold lwlrap and each fold model's own test
    lwlrap (the ensemble's own test lwlrap is the row's score)."""
    from fat.runs.cv_directory import CVDirectory

    cv = CVDirectory(cv_dir)
    members = [test_lwlrap(run.path, kind, device) for run in cv.folds()]
    return {"oof_lwlrap": cv.read_summary()["lwlrap"], "fold_test_lwlrap": members}


def run_study(args: argparse.Namespace, jobs: dict[str, Job]) -> tuple[dict[str, dict], list[str]]:
    """Run what has no result yet, --jobs at a time, each after the jobs it needs; returns the
    results and the tags that a time limit or a failed prerequisite left out."""
    results_dir = args.out / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    (args.out / "logs").mkdir(exist_ok=True)
    results = {p.stem: json.loads(p.read_text()) for p in results_dir.glob("*.json")}
    todo = [tag for tag in jobs if tag not in results]
    running: dict[Future, str] = {}
    skipped: list[str] = []
    started = time.monotonic()
    pace: list[float] = []  # wall seconds per unit of the jobs so far
    with ThreadPoolExecutor(max_workers=1 if args.in_process else args.jobs) as pool:
        while todo or running:
            for tag in list(todo):
                if len(running) >= (1 if args.in_process else args.jobs):
                    break
                job = jobs[tag]
                if any(t in skipped for t in job.after):
                    todo.remove(tag)
                    skipped.append(tag)
                    continue
                if not all(t in results for t in job.after):
                    continue
                elapsed = (time.monotonic() - started) / 60
                estimate = np.mean(pace) * job.units / 60 if pace else 0.0
                if args.minutes and elapsed + estimate > args.minutes:
                    todo.remove(tag)
                    skipped.append(tag)
                    continue
                todo.remove(tag)
                running[pool.submit(run_job, job, args)] = tag
            if not running:
                if todo:  # what is left waits on jobs that never ran
                    skipped += todo
                    todo = []
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                tag = running.pop(future)
                try:
                    result = future.result()
                except RuntimeError as e:  # the study goes on; what needs this job is left out
                    print(f"{time.strftime('%H:%M:%S')} {e}", flush=True)
                    skipped.append(tag)
                    continue
                (results_dir / f"{tag}.json").write_text(json.dumps(result, indent=1) + "\n")
                results[tag] = result
                pace.append(result["wall_s"] / jobs[tag].units)
                print(f"{time.strftime('%H:%M:%S')} done {tag}", flush=True)
    return results, skipped


def row_cpu_minutes(row: Row, seeds: list[int], results: dict[str, dict]) -> float:
    """CPU minutes of one seed of `row` from nothing (a shared job counted whole in each), the
    mean over the seeds whose jobs' CPU time is known whole (ran in one start, or resumed with
    a ledger of every start); NaN when none is."""
    per_seed = []
    for s in row.scored_seeds(seeds):
        done = [results[f"{tag}-s{row.job_seed(tag, s, seeds)}"] for tag, _ in row.jobs]
        if all(r.get("cpu_complete", not r.get("resumed")) for r in done):
            per_seed.append(sum(r["cpu_s"] for r in done) / 60)
    return float(np.mean(per_seed)) if per_seed else float("nan")


def spread_note(deltas: np.ndarray, spread: float) -> str:
    if (deltas > 0).all() and deltas.mean() > spread:
        return "**gain, outside the spread**"
    if (deltas < 0).all() and -deltas.mean() > spread:
        return "loss, outside the spread"
    return "within the spread"


def table(args: argparse.Namespace, rows: list[Row], results: dict[str, dict]) -> dict:
    """The markdown table (printed) and its figures (returned)."""
    seeds = args.seeds
    figures: dict[str, dict] = {}
    lines = [
        "| row | change against the baseline | test lwlrap, seeds "
        + " / ".join(map(str, seeds))
        + " | mean +- std | paired vs baseline (per seed) | | CPU-min per seed |",
        "|---|---|---|---|---|---|---:|",
    ]
    base = None
    for row in rows:
        row_seeds = row.scored_seeds(seeds)
        tags = [f"{row.scored_tag}-s{s}" for s in row_seeds]
        if not all(t in results for t in tags):
            lines.append(f"| {row.name} | {row.what} | not run (time limit) | | | | |")
            continue
        values = np.array([results[t]["test_lwlrap"] for t in tags])
        cpu = row_cpu_minutes(row, seeds, results)
        std = values.std(ddof=1) if len(row_seeds) > 1 else 0.0
        spread = std
        cpu_min = None if np.isnan(cpu) else cpu
        entry = {"test_lwlrap": values.tolist(), "mean": values.mean(), "cpu_min": cpu_min}
        paired = note = ""
        if row.name == "baseline":
            base = values
        elif base is not None:
            deltas = values - base[[seeds.index(s) for s in row_seeds]]
            paired = f"{deltas.mean():+.3f} (" + " / ".join(f"{d:+.3f}" for d in deltas) + ")"
            spread = max(spread, base.std(ddof=1) if len(seeds) > 1 else 0.0)
            note = spread_note(deltas, spread)
            entry |= {"paired": deltas.tolist(), "verdict": note.strip("*")}
        figures[row.name] = entry
        per_seed = " / ".join(f"{v:.3f}" for v in values)
        if row_seeds != seeds:
            per_seed += f" (seed {' / '.join(map(str, row_seeds))} only)"
        lines.append(
            f"| {row.name} | {row.what} | {per_seed} | {values.mean():.3f} +- {std:.3f} "
            f"| {paired} | {note} | {'?' if np.isnan(cpu) else f'{cpu:.1f}'} |"
        )
    print("\n".join(lines + fold_lines(rows, seeds, results, figures)))
    return figures


def fold_lines(
    rows: list[Row], seeds: list[int], results: dict[str, dict], figures: dict[str, dict]
) -> list[str]:
    """For each fold-ensemble row: its out-of-fold lwlrap and its fold models' own test
    lwlrap against the ensemble's (what averaging the folds adds)."""
    lines = []
    for row in rows:
        done = [results.get(f"{row.scored_tag}-s{s}", {}) for s in row.scored_seeds(seeds)]
        if row.name not in figures or not all("fold_test_lwlrap" in r for r in done):
            continue
        members = np.array([np.mean(r["fold_test_lwlrap"]) for r in done])
        gain = np.array(figures[row.name]["test_lwlrap"]) - members
        figures[row.name] |= {"oof": [r["oof_lwlrap"] for r in done], "fold_mean": members.tolist()}
        lines += [
            "",
            f"{row.name}: out-of-fold lwlrap "
            + " / ".join(f"{r['oof_lwlrap']:.3f}" for r in done)
            + "; its fold models alone on the test split (mean of 5) "
            + " / ".join(f"{m:.3f}" for m in members)
            + "; the ensemble over its members "
            + " / ".join(f"{g:+.3f}" for g in gain),
        ]
    return lines


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--steps", type=int, default=2000, help="steps of every run")
    parser.add_argument("--steps-per-epoch", type=int, default=50)
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--jobs", type=int, default=2, help="processes at a time (CPU)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rows", default="", help="comma-separated row names (default all)")
    parser.add_argument("--minutes", type=float, default=0.0, help="wall-time limit (0: none)")
    parser.add_argument("--in-process", action="store_true")
    parser.add_argument("--extra", default="", help="flags added to every training command")
    parser.add_argument("--json", type=Path, default=None, help="figures as JSON")
    parser.add_argument("--fat", default=str(Path(sys.executable).parent / "fat"))
    args = parser.parse_args(argv)
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.out = args.out.resolve()
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    names = [n for n in args.rows.split(",") if n]
    unknown = set(names) - {r.name for r in ROWS}
    if unknown:
        raise SystemExit(f"unknown rows: {sorted(unknown)}")
    rows = [r for r in ROWS if not names or r.name in names or r.name == "baseline"]
    if args.device != "cpu" or args.in_process:
        import torch

        torch.set_num_threads(os.cpu_count() or 1)
    results, skipped = run_study(args, plan(args, rows))
    figures = table(args, rows, results)
    if args.json:
        settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        document = {"settings": settings, "rows": figures, "not_run": skipped}
        args.json.write_text(json.dumps(document, indent=1) + "\n")


if __name__ == "__main__":
    main()
