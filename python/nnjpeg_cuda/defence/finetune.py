"""Noisy fine-tuning: train a classifier on images round-tripped at one compression level.

The round trip runs inside the training step, on the model's device (CPU kernels, CUDA kernels, or the
reference elsewhere), so the data pipeline stays plain uint8 tensors.

Resuming is exact: the order of the data (a seeded permutation per epoch), the augmentation and the
random qualities are drawn from generators seeded by ``(seed, epoch, step)``, so a run killed at any point
and resumed from its last checkpoint makes the same updates as one that was never interrupted (up to
the steps after that checkpoint, which are redone).
"""

from __future__ import annotations

import csv
import gc
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import codec, tables
from .checkpoint import CheckpointError, load_file, save_file

__all__ = ["FinetuneConfig", "finetune", "load_member", "save_member", "CHECKPOINT_NAME", "MEMBER_NAME"]

CHECKPOINT_NAME = "last.ckpt"
MEMBER_NAME = "member.ckpt"
LOG_NAME = "log.csv"
LOG_FIELDS = ("step", "epoch", "loss", "acc", "lr", "quality_mean", "seconds")


@dataclass
class FinetuneConfig:
    """Settings of one fine-tuning run (stored in its checkpoints)."""

    quality: int
    table: str = "nn"
    epochs: float = 1.0
    batch_size: int = 128
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    quality_spread: int = 0
    subsampling: str = "4:4:4"
    augment: bool = True
    seed: int = 0
    checkpoint_every: int = 100
    amp: bool = True
    extra: Dict = field(default_factory=dict)


def _dist():
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _check_data(train_data) -> Tuple[Tensor, Tensor]:
    if isinstance(train_data, torch.utils.data.TensorDataset):
        train_data = train_data.tensors
    if not isinstance(train_data, (tuple, list)) or len(train_data) != 2:
        raise TypeError("train_data must be (images, labels) tensors or a TensorDataset of them")
    x, y = train_data
    if not isinstance(x, Tensor) or not isinstance(y, Tensor):
        raise TypeError("train_data must hold tensors")
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"images must be (N, 3, H, W), got {tuple(x.shape)}")
    if y.shape != (x.shape[0],):
        raise ValueError(f"labels must be ({x.shape[0]},), got {tuple(y.shape)}")
    if x.shape[0] == 0:
        raise ValueError("no training images")
    return x, y.long()


def _augment(x: Tensor, gen: torch.Generator) -> Tensor:
    """Random crop with 4-pixel zero padding and horizontal flip (the CIFAR standard), from ``gen``."""
    n, _, h, w = x.shape
    flip = torch.rand(n, generator=gen) < 0.5
    dy = torch.randint(0, 9, (n,), generator=gen)
    dx = torch.randint(0, 9, (n,), generator=gen)
    padded = F.pad(x, (4, 4, 4, 4))
    rows = (dy.view(n, 1) + torch.arange(h).view(1, h)).to(x.device)
    cols = (dx.view(n, 1) + torch.arange(w).view(1, w)).to(x.device)
    out = padded[torch.arange(n, device=x.device).view(n, 1, 1, 1), torch.arange(3, device=x.device).view(1, 3, 1, 1),
                 rows.view(n, 1, h, 1), cols.view(n, 1, 1, w)]
    return torch.where(flip.to(x.device).view(n, 1, 1, 1), out.flip(-1), out)


def _read_log(path: Path, upto: int) -> List[dict]:
    rows = []
    if path.is_file():
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                try:
                    if int(row["step"]) <= upto and all(row.get(k) not in (None, "") for k in LOG_FIELDS):
                        rows.append(row)
                except (ValueError, KeyError):
                    break  # a torn last line after a kill
    return rows


def save_member(path: Union[str, os.PathLike], model: nn.Module, **meta) -> None:
    """Save a fine-tuned member's weights (one safe, checksummed file)."""
    model = model.module if hasattr(model, "module") else model
    save_file(path, {"model": model.state_dict()}, **meta)


def load_member(path: Union[str, os.PathLike], model: nn.Module) -> nn.Module:
    """Load weights written by :func:`save_member` (or a training checkpoint) into ``model``, in eval mode."""
    obj = load_file(path)
    model.load_state_dict(obj["tensors"]["model"])
    return model.eval()


def finetune(model: nn.Module, train_data, quality: int, table: tables.TableLike = "nn", *, epochs: float = 1.0,
             batch_size: int = 128, lr: float = 0.01, momentum: float = 0.9, weight_decay: float = 5e-4,
             quality_spread: int = 0, subsampling: str = "4:4:4", augment: bool = True, seed: int = 0,
             out_dir: Union[str, os.PathLike, None] = None, checkpoint_every: int = 100, resume: bool = True,
             max_steps: Optional[int] = None, amp: bool = True, grad: str = "bpda", progress: bool = True,
             desc: Optional[str] = None) -> Dict:
    """Fine-tune ``model`` on images round-tripped at ``quality`` (noisy training), in place.

    SGD with momentum and a cosine learning-rate decay over the run; cross-entropy loss; the model in
    train mode (batch-norm statistics adapt to the compressed images); eval mode at the end.

    Args:
        model: classifier taking RGB in [0, 1] (N, 3, H, W) -> logits; trained where its parameters are.
            Under ``torchrun`` with an initialised process group it is wrapped in DistributedDataParallel
            and each process takes every world_size-th sample of the epoch's permutation.
        train_data: ``(x, y)``: x uint8 (N, 3, H, W) in 0..255 (or float in [0, 1]), y int labels (N,);
            or a ``TensorDataset`` of them. Kept on the CPU; each batch moves to the model's device.
        quality: IJG quality of this level, 1..100.
        table: base table for the round trip: a preset name (default ``"nn"``) or a (2, 8, 8) tensor.
        epochs: passes over the data (fractions allowed: 0.5 = half an epoch).
        batch_size: per process.
        lr, momentum, weight_decay: SGD settings; the learning rate decays to 0 with a cosine.
        quality_spread: each image's quality is drawn uniformly from ``quality ± spread`` (clamped to 1..100).
        subsampling: ``"4:4:4"`` or ``"4:2:0"``.
        augment: random crop (pad 4) and horizontal flip before the round trip.
        seed: seeds the data order, augmentation and quality draws.
        out_dir: where ``last.ckpt`` (training state, atomic), ``log.csv`` (one row per step) and
            ``member.ckpt`` (final weights) go; None keeps nothing on disk.
        checkpoint_every: steps between checkpoints (one is also written at each epoch end).
        resume: continue from ``out_dir/last.ckpt`` if it exists (the run's settings must match).
        max_steps: stop after this global step (for tests and time budgets); a later call resumes.
        amp: bfloat16 autocast for the model on CUDA (ignored on the CPU).
        grad: gradient mode of the round trip (irrelevant to the weights: the input needs no gradient).
        progress: tqdm bar (process 0 only).
        desc: label of the bar.

    Returns:
        A summary dict: ``steps``, ``total_steps``, ``epochs_done``, ``final_loss`` (mean of the last 20
        steps), ``history`` (per-step dicts), ``seconds``, ``finished`` (False if stopped by ``max_steps``).

    Example:
        >>> import torch
        >>> from nnjpeg_cuda.models import cifar_resnet
        >>> x, y = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8), torch.randint(0, 10, (16,))
        >>> r = finetune(cifar_resnet(20), (x, y), quality=50, table="standard", batch_size=8, progress=False)
        >>> r["steps"]
        2
    """
    x, y = _check_data(train_data)
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise ValueError(f"quality must be an int in 1..100, got {quality!r}")
    if batch_size < 1 or epochs <= 0 or checkpoint_every < 1 or quality_spread < 0:
        raise ValueError("batch_size, epochs and checkpoint_every must be positive, quality_spread >= 0")
    codec.ops.check_options(subsampling, "ycbcr", grad, 3)
    base_table = tables.get_base(table)  # validates now, not mid-run
    rank, world = _dist()
    param = next(model.parameters())
    device = param.device
    n_per_rank = x.shape[0] // world
    if n_per_rank < 1:
        raise ValueError(f"{x.shape[0]} images cannot be split over {world} processes")
    steps_per_epoch = math.ceil(n_per_rank / batch_size)
    total_steps = max(1, math.ceil(steps_per_epoch * epochs))
    config = FinetuneConfig(quality, table if isinstance(table, str) else "custom", epochs, batch_size, lr, momentum,
                            weight_decay, quality_spread, subsampling, augment, seed, checkpoint_every, amp,
                            {"world_size": world, "n_train": int(x.shape[0])})

    train_model = model
    if world > 1:
        train_model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                                          else None)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total_steps)
                                                                                   / total_steps)))
    out = Path(out_dir) if out_dir is not None else None
    ckpt_path = out / CHECKPOINT_NAME if out else None
    step = 0
    if out and resume and ckpt_path.exists():
        state = load_file(ckpt_path, map_location=device)
        saved = state["meta"]["config"]
        mine = asdict(config)
        diff = {k for k in mine if k not in ("epochs", "checkpoint_every", "extra") and saved.get(k) != mine[k]}
        if diff or saved["extra"].get("world_size") != world or saved["extra"].get("n_train") != x.shape[0]:
            raise CheckpointError(f"{ckpt_path} was written with different settings ({sorted(diff) or 'data/world'}); "
                                  "use another --out or resume=False")
        model.load_state_dict(state["tensors"]["model"])
        opt.load_state_dict(state["tensors"]["optimizer"])
        step = int(state["meta"]["step"])
        sched = torch.optim.lr_scheduler.LambdaLR(opt, sched.lr_lambdas[0], last_epoch=step - 1) if step else sched
    history = [dict(r) for r in _read_log(out / LOG_NAME, step)] if out else []
    if out and rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        with open(out / LOG_NAME, "w", newline="") as f:  # drop rows past the checkpoint (redone below)
            w = csv.DictWriter(f, LOG_FIELDS)
            w.writeheader()
            w.writerows(history)

    def save_ckpt():
        if out and rank == 0:
            save_file(ckpt_path, {"model": model.state_dict(), "optimizer": opt.state_dict()},
                      step=step, total_steps=total_steps, config=asdict(config),
                      table=base_table, quality=quality)

    stop = total_steps if max_steps is None else min(total_steps, max_steps)
    bar = None
    if progress and rank == 0:
        try:
            from tqdm.auto import tqdm
        except ImportError:  # tqdm is optional: no bar without it
            tqdm = None
        bar = tqdm and tqdm(total=total_steps, initial=step, desc=desc or f"finetune q={quality}", unit="step")
    log_f = open(out / LOG_NAME, "a", newline="") if out and rank == 0 else None
    log_w = csv.DictWriter(log_f, LOG_FIELDS) if log_f else None
    train_model.train()
    t0 = time.time()
    use_amp = amp and device.type == "cuda"
    perm, perm_epoch = None, -1
    try:
        while step < stop:
            epoch, k = divmod(step, steps_per_epoch)
            if epoch != perm_epoch:
                perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
                perm = perm[: n_per_rank * world][rank::world]
                perm_epoch = epoch
            idx = perm[k * batch_size:(k + 1) * batch_size]
            gen = torch.Generator().manual_seed(((seed * 1_000_003 + step) * 7919 + rank) % (2 ** 63))
            xb = x[idx].to(device, non_blocking=True)
            yb = y[idx].to(device, non_blocking=True)
            xb = xb.float() / 255 if not xb.is_floating_point() else xb.float()
            if augment:
                xb = _augment(xb, gen)
            if quality_spread:
                q = torch.randint(max(1, quality - quality_spread), min(100, quality + quality_spread) + 1,
                                  (xb.shape[0],), generator=gen).to(device)
            else:
                q = quality
            with torch.no_grad():
                xb = codec.roundtrip(xb, quality=q, table=base_table.to(device), subsampling=subsampling,
                                     validate=False)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
                logits = train_model(xb)
            loss = F.cross_entropy(logits.float(), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            row = {"step": step, "epoch": round(step / steps_per_epoch, 4), "loss": round(loss.item(), 5),
                   "acc": round((logits.argmax(1) == yb).float().mean().item(), 4),
                   "lr": round(sched.get_last_lr()[0], 7),
                   "quality_mean": round(float(q.float().mean()) if isinstance(q, Tensor) else float(q), 2),
                   "seconds": round(time.time() - t0, 2)}
            history.append(row)
            if log_w:
                log_w.writerow(row)
                log_f.flush()
            if bar:
                bar.update(1)
                bar.set_postfix(loss=f"{row['loss']:.3f}", acc=f"{row['acc']:.3f}")
            if step % checkpoint_every == 0 or step % steps_per_epoch == 0 or step == stop:
                save_ckpt()
    finally:
        if bar:
            bar.close()
        if log_f:
            log_f.close()
        if train_model is not model:
            # Free the DistributedDataParallel wrapper now: it sits in a reference cycle and would keep the
            # process group alive until the garbage collector runs, maybe in interpreter finalisation, when a
            # gloo worker thread still releasing a finished collective (whose captured thread-local state holds
            # Python objects) takes the GIL and aborts the process ("terminate called without an active
            # exception": 1 run in 5-13 of tests/test_finetune_ddp.py before). destroy_process_group() then
            # drops the group's last reference, and its destructor waits for its threads.
            train_model = model
            gc.collect()
    model.eval()
    finished = step >= total_steps
    losses = [float(r["loss"]) for r in history[-20:]]
    summary = {"quality": quality, "steps": step, "total_steps": total_steps,
               "epochs_done": step / steps_per_epoch, "final_loss": sum(losses) / max(1, len(losses)),
               "seconds": time.time() - t0, "finished": finished, "config": asdict(config), "history": history}
    if out and rank == 0:
        if finished:
            save_member(out / MEMBER_NAME, model, quality=quality, table=base_table, config=asdict(config))
        (out / "summary.json").write_text(json.dumps({k: v for k, v in summary.items() if k != "history"}, indent=1))
    return summary
