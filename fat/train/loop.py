"""`train(config)`: the whole training run, top to bottom.

One process, or one rank of `torchrun --nproc_per_node N` (DDP: each rank takes every N-th
batch of the shared epoch plan; rank 0 validates and writes). Files in the run directory:
config.json, metrics.csv (per epoch), steps.csv (every `log_every` steps), per_class.csv,
checkpoints/{best,last,swa}.pt.
"""

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm import tqdm

from fat.errors import FatError
from fat.metrics import lwlrap_details
from fat.train.augment import mask_spans, mixup, step_generator
from fat.train.checkpoint import (
    checkpoint_path,
    load_checkpoint,
    load_trained_model,
    run_identity,
    save_checkpoint,
)
from fat.train.config import TrainConfig
from fat.train.data import TrainingData, load_training_data, read_clip_list
from fat.train.inference import score_clips
from fat.train.loaders import CropBatchSource, make_loader
from fat.train.logs import CsvLog
from fat.train.losses import lsoft_targets
from fat.train.models import create_model
from fat.train.schedule import lr_at

# metrics.csv, one row per epoch; then a grad_norm:GROUP column per layer group of the model.
METRIC_COLUMNS = [
    "epoch",
    "step",
    "lr",
    "train_loss",
    "val_loss",
    "val_lwlrap",
    "val_lwlrap_curated",
    "val_lwlrap_noisy",
    "swa_val_lwlrap",
    "samples_per_s",
    "data_wait_frac",
    "epoch_seconds",
]

# Changing these between a run and its resumption would not continue the same experiment.
_RESUMABLE_CHANGES = {"epochs", "workers", "loader", "device", "log_every", "memory_budget_gb"}


@dataclass
class RunSummary:
    out: Path
    epochs_run: int
    best_epoch: int
    best_lwlrap: float
    last_lwlrap: float
    swa_lwlrap: float | None
    samples_per_s: float
    data_wait_frac: float


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise FatError("--device cuda asked for, but torch sees no CUDA device")
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    return torch.device("cuda", local_rank)


def tensorboard_writer(out: Path, enabled: bool):
    """A TensorBoard writer into out/tensorboard when the tensorboard package is installed."""
    if not enabled:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # optional: metrics.csv holds the same numbers
        return None
    return SummaryWriter(str(out / "tensorboard"))


def group_grad_norms(
    groups: list[tuple[str, torch.nn.Module]], device: torch.device
) -> dict[str, torch.Tensor]:
    """L2 norm of the gradient of each layer group (0 for groups without gradients yet)."""
    norms = {}
    for name, module in groups:
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        norms[name] = (
            torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
            if grads
            else torch.zeros((), device=device)
        )
    return norms


def evaluate(
    model: torch.nn.Module, data: TrainingData, crop_frames: int, device: torch.device
) -> dict:
    """Whole-clip validation on each split's held-out clips: loss, lwlrap overall, per split."""
    scores, truths, names = [], [], []
    for split, val, name in zip(data.splits, data.val, data.names, strict=True):
        if len(val):
            norm = data.normalizer_for(split)
            scores.append(score_clips(model, split, val, crop_frames, device, norm))
            truths.append(split.labels[val].astype(np.float64))
            names.append(name)
    if not scores:
        return {"loss": math.nan, "all": None, "finite": True}
    probs, truth = np.concatenate(scores), np.concatenate(truths)
    if not np.isfinite(probs).all():  # a broken model: nothing to rank
        return {"loss": math.nan, "all": None, "finite": False}
    clipped = np.clip(probs, 1e-7, 1 - 1e-7)
    loss = float(-(truth * np.log(clipped) + (1 - truth) * np.log(1 - clipped)).mean())
    result = {"loss": loss, "all": lwlrap_details(truth, probs), "finite": True}
    for name, s, t in zip(names, scores, truths, strict=True):
        result[name] = lwlrap_details(t, s)
    return result


def broken_model(model: torch.nn.Module, result: dict, epoch: int, out: Path) -> str | None:
    """Why the model after `epoch` must not be validated or saved, or None. The training loss
    is checked before each step, so the last step of an epoch can still leave weights that
    overflow or are NaN: caught here, before they could become best.pt."""
    finite_weights = all(bool(torch.isfinite(p).all()) for p in model.parameters())
    if finite_weights and result["finite"]:
        return None
    what = "weights" if not finite_weights else "validation scores"
    return (
        f"the model's {what} became non-finite in epoch {epoch}; stopped. Checkpoints up to "
        f"epoch {epoch - 1} in {out / 'checkpoints'} are intact; try a lower --lr or --grad-clip"
    )


def train(
    cfg: TrainConfig, resume: bool = False, progress: bool = True, stop_after: int | None = None
) -> RunSummary:
    """Run `cfg` to its last epoch. `resume` continues from checkpoints/last.pt.
    `stop_after` ends the call after that many epochs, as if killed after a checkpoint."""
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    device = pick_device(cfg.device, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)  # NCCL and every un-placed CUDA call use this rank's GPU
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    lead = rank == 0
    out = Path(cfg.out)
    last_path = checkpoint_path(out, "last")
    if not resume and last_path.exists():
        raise FatError(f"{out} already holds a run; add --resume to continue it or pick --out")
    torch.manual_seed(cfg.seed)

    # Data: which clips train and validate is fixed by the seed; crops by (seed, epoch).
    noisy_ids = read_clip_list(Path(cfg.noisy_clips)) if cfg.noisy_clips else None
    data = load_training_data(
        cfg.store,
        cfg.train_splits,
        cfg.val_fraction,
        cfg.seed,
        int(cfg.memory_budget_gb * 2**30),
        noisy_ids,
    )
    feature_config, vocabulary = data.splits[0].feature_config, data.splits[0].vocabulary
    n_classes = len(vocabulary)

    # Model and optimizer.
    model = create_model(
        cfg.arch, feature_config.n_mels, n_classes, cfg.width, **cfg.model_kwargs
    ).to(device)
    if cfg.init and not resume:
        init = load_trained_model(cfg.init, "best")
        if init.vocabulary != vocabulary or init.config.arch != cfg.arch:
            raise FatError(f"--init {cfg.init}: its arch or vocabulary differs from this run")
        model.load_state_dict(init.model.state_dict())
    opt_cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    optimizer = opt_cls(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    swa_model = torch.optim.swa_utils.AveragedModel(model) if cfg.swa_start else None
    groups = model.layer_groups()
    identity = run_identity(cfg, feature_config, vocabulary, data.normalizer)

    # Where we start: fresh, or exactly where the last checkpoint left off.
    start_epoch, step, best_lwlrap, best_epoch = 1, 0, -math.inf, 0
    if resume:
        state = load_checkpoint(last_path)
        saved = TrainConfig.from_dict(state["config"]).to_dict()
        changed = [k for k, v in cfg.to_dict().items() if saved[k] != v]
        if set(changed) - _RESUMABLE_CHANGES:
            raise FatError(f"--resume: settings differ from the saved run: {sorted(changed)}")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if swa_model is not None and state.get("swa_model") is not None:
            swa_model.load_state_dict(state["swa_model"])
        torch.set_rng_state(state["torch_rng"])
        if device.type == "cuda" and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(state["cuda_rng"], device)  # dropout draws on the GPU
        start_epoch, step = int(state["epoch"]) + 1, int(state["step"])
        best_lwlrap, best_epoch = float(state["best_lwlrap"]), int(state["best_epoch"])
    if lead:
        out.mkdir(parents=True, exist_ok=True)
        info = {k: v for k, v in identity.items() if k != "normalizer"}
        info["normalizer"] = {k: v.tolist() for k, v in identity["normalizer"].items()}
        (out / "config.json").write_text(json.dumps(info, indent=1))
    grad_cols = [f"grad_norm:{name}" for name, _ in groups]
    metrics_log = CsvLog(
        out / "metrics.csv",
        [*METRIC_COLUMNS, *grad_cols],
        keep=lambda row: int(row["epoch"]) < start_epoch,
        enabled=lead,
    )
    steps_log = CsvLog(
        out / "steps.csv",
        ["step", "epoch", "lr", "train_loss", *grad_cols],
        keep=lambda row: int(row["step"]) <= step,
        enabled=lead,
    )
    per_class_log = CsvLog(
        out / "per_class.csv",
        ["epoch", "subset", "class", "lwlrap", "weight"],
        keep=lambda row: int(row["epoch"]) < start_epoch,
        enabled=lead,
    )

    source = CropBatchSource(
        data,
        cfg.store,
        cfg.batch_size,
        cfg.crop_frames,
        cfg.seed,
        start_epoch,
        cfg.steps_per_epoch,
        cfg.split_weights,
        cfg.pad,
        rank,
        world,
    )
    steps_per_epoch = source.n_batches(start_epoch)
    if steps_per_epoch == 0:
        raise FatError(
            f"{data.n_train} training clips make no full batch of {cfg.batch_size} per each of "
            f"{world} processes; lower --batch-size or set --steps-per-epoch"
        )
    loader = make_loader(cfg.loader, source, device, cfg.workers)
    total_steps = steps_per_epoch * cfg.epochs
    net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    noisy_index = data.names.index("noisy") if "noisy" in data.names else -1
    board = tensorboard_writer(out, lead)

    summary = None
    for epoch in range(start_epoch, cfg.epochs + 1):
        model.train()
        t0, wait, seen = time.perf_counter(), 0.0, 0
        loss_sum = torch.zeros((), device=device)
        log_loss, log_n = torch.zeros((), device=device), 0
        grad_sum = {name: torch.zeros((), device=device) for name, _ in groups}
        bar = tqdm(
            total=steps_per_epoch,
            desc=f"epoch {epoch}/{cfg.epochs}",
            disable=not (progress and lead),
            leave=False,
        )
        batches = iter(loader.epoch(epoch))
        for i in range(steps_per_epoch):
            t_wait = time.perf_counter()
            x, y, split_ids = next(batches)
            wait += time.perf_counter() - t_wait
            lr = lr_at(
                cfg.schedule,
                step,
                total_steps,
                steps_per_epoch,
                cfg.lr,
                cfg.lr_min,
                cfg.cycle_epochs,
            )
            if swa_model is not None and epoch >= cfg.swa_start and cfg.swa_lr > 0:
                lr = cfg.swa_lr
            for g in optimizer.param_groups:
                g["lr"] = lr
            x = x.to(device, non_blocking=True).float()
            y = y.to(device, non_blocking=True).float()
            noisy = (split_ids.to(device) == noisy_index).float()
            gen = step_generator(cfg.seed, epoch, i, rank)
            x = mask_spans(x, 2, cfg.time_masks, cfg.time_mask_frames, gen)
            x = mask_spans(x, 1, cfg.freq_masks, cfg.freq_mask_bins, gen)
            if cfg.mixup > 0:
                x, y, partner, lam = mixup(x, y, cfg.mixup, gen)
                noisy = lam * noisy + (1 - lam) * noisy[partner]
            # bf16 autocast on CUDA only: this CPU has no native bf16 and runs it far slower.
            with torch.autocast("cuda", torch.bfloat16, enabled=device.type == "cuda"):
                logits = net(x).float()
            target = y
            if cfg.noisy_loss == "lsoft":
                target = lsoft_targets(y, logits, noisy, cfg.lsoft_beta)
            loss = F.binary_cross_entropy_with_logits(logits, target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            norms = group_grad_norms(groups, device)
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            step += 1
            seen += x.shape[0]
            loss_sum += loss.detach()
            log_loss += loss.detach()
            log_n += 1
            for name, value in norms.items():
                grad_sum[name] += value.detach()  # stays on the device: no sync per step
            if step % cfg.log_every == 0 or i == steps_per_epoch - 1:
                mean_loss = log_loss.item() / log_n
                if not math.isfinite(mean_loss):
                    raise FatError(
                        f"loss became {mean_loss} at epoch {epoch}, step {step}; stopped. "
                        f"Checkpoints up to epoch {epoch - 1} in {out / 'checkpoints'} are intact;"
                        " try a lower --lr or --grad-clip"
                    )
                steps_log.write(
                    {
                        "step": step,
                        "epoch": round(epoch - 1 + (i + 1) / steps_per_epoch, 4),
                        "lr": lr,
                        "train_loss": mean_loss,
                        **{f"grad_norm:{k}": float(v) for k, v in norms.items()},
                    }
                )
                log_loss.zero_()
                log_n = 0
                bar.set_postfix(loss=f"{mean_loss:.4f}", lr=f"{lr:.2e}")
            bar.update()
        bar.close()
        for _ in batches:  # lets the DALI iterator see the epoch's end and reset
            pass
        seconds = time.perf_counter() - t0
        # Summed over ranks: loss, samples seen, seconds waited for data.
        totals = torch.stack(
            [loss_sum / steps_per_epoch, loss_sum.new_tensor(seen), loss_sum.new_tensor(wait)]
        )
        if world > 1:
            dist.all_reduce(totals)
        train_loss = float(totals[0]) / world
        samples_per_s = float(totals[1]) / seconds
        data_wait_frac = float(totals[2]) / world / seconds

        # Validation, SWA and checkpoints: rank 0 only, the others wait at the barrier.
        row, failure = None, None
        if lead:
            result = evaluate(model, data, cfg.crop_frames, device)
            failure = broken_model(model, result, epoch, out)
        if world > 1:
            shared = [failure]
            dist.broadcast_object_list(shared, src=0)
            failure = shared[0]
        if failure:
            raise FatError(failure)
        if lead:
            swa_lwlrap = None
            if swa_model is not None and epoch >= cfg.swa_start:
                swa_model.update_parameters(model)
                update_swa_batchnorm(swa_model, source, epoch, device)
                swa_result = evaluate(swa_model.module, data, cfg.crop_frames, device)
                swa_lwlrap = swa_result["all"].overall if swa_result["all"] else math.nan
            val = result["all"].overall if result["all"] else math.nan
            row = {
                "epoch": epoch,
                "step": step,
                "lr": lr,
                "train_loss": train_loss,
                "val_loss": result["loss"],
                "val_lwlrap": val,
                "val_lwlrap_curated": result["curated"].overall if "curated" in result else "",
                "val_lwlrap_noisy": result["noisy"].overall if "noisy" in result else "",
                "swa_val_lwlrap": "" if swa_lwlrap is None else swa_lwlrap,
                "samples_per_s": samples_per_s,
                "data_wait_frac": data_wait_frac,
                "epoch_seconds": seconds,
                **{f"grad_norm:{k}": float(v) / steps_per_epoch for k, v in grad_sum.items()},
            }
            metrics_log.write(row)
            if board is not None:
                for key, value in row.items():
                    if isinstance(value, float) and key != "epoch":
                        board.add_scalar(key.replace(":", "/"), value, epoch)
                board.flush()
            for subset in ("all", "curated", "noisy"):
                if result.get(subset) is not None:
                    details = result[subset]
                    for c, name in enumerate(vocabulary):
                        per_class_log.write(
                            {
                                "epoch": epoch,
                                "subset": subset,
                                "class": name,
                                "lwlrap": details.per_class[c],
                                "weight": details.weights[c],
                            }
                        )
            base = {**identity, "epoch": epoch, "step": step}
            # Without a validation set (NaN) the best model is simply the latest one; a broken
            # model never gets here (broken_model above).
            if math.isnan(val) or val > best_lwlrap:
                best_lwlrap, best_epoch = (best_lwlrap if math.isnan(val) else val), epoch
                save_checkpoint(
                    checkpoint_path(out, "best"),
                    {**base, "model": model.state_dict(), "val_lwlrap": val},
                )
            if swa_lwlrap is not None:
                save_checkpoint(
                    checkpoint_path(out, "swa"),
                    {**base, "model": swa_model.module.state_dict(), "val_lwlrap": swa_lwlrap},
                )
            # last.pt goes last: once it names this epoch, every file above is complete.
            save_checkpoint(
                last_path,
                {
                    **base,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "swa_model": swa_model.state_dict() if swa_model is not None else None,
                    "torch_rng": torch.get_rng_state(),
                    "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                    "best_lwlrap": best_lwlrap,
                    "best_epoch": best_epoch,
                    "val_lwlrap": val,
                },
            )
            if progress:
                tqdm.write(
                    f"epoch {epoch}/{cfg.epochs}: train loss {train_loss:.4f}, "
                    f"val loss {result['loss']:.4f}, val lwlrap {val:.4f}"
                    + (f", swa {swa_lwlrap:.4f}" if swa_lwlrap is not None else "")
                    + f", {row['samples_per_s']:.0f} samples/s, "
                    f"data wait {row['data_wait_frac']:.1%}"
                )
            summary = RunSummary(
                out,
                epoch,
                best_epoch,
                best_lwlrap,
                val,
                swa_lwlrap,
                row["samples_per_s"],
                row["data_wait_frac"],
            )
        if world > 1:
            dist.barrier()
        if stop_after is not None and epoch - start_epoch + 1 >= stop_after:
            break
    if summary is None:  # other ranks, or nothing left to run
        summary = RunSummary(out, start_epoch - 1, best_epoch, best_lwlrap, math.nan, None, 0, 0)
    return summary


@torch.no_grad()
def update_swa_batchnorm(
    swa_model: torch.optim.swa_utils.AveragedModel,
    source: CropBatchSource,
    epoch: int,
    device: torch.device,
    max_batches: int = 100,
) -> None:
    """Recompute BatchNorm statistics for the averaged weights from training crops."""
    n = min(source.n_batches(epoch), max_batches)
    inputs = (torch.from_numpy(source.batch(epoch, i)[0]).to(device).float() for i in range(n))
    torch.optim.swa_utils.update_bn(inputs, swa_model, device)
