"""``nnjpeg-cuda finetune``: one fine-tuned classifier per compression level (noisy training).

Example:
    nnjpeg-cuda finetune --arch resnet20 --weights ../shared/models/resnet20-12fca82f.th \\
        --data ../shared/data --levels 90,70,50,30,10 --out runs/r20 --epochs 1 --subset 10000

Writes ``OUT/q{level}/`` per level (``last.ckpt`` training state, ``log.csv``, ``summary.json``,
``member.ckpt`` final weights), ``OUT/ensemble.ckpt`` (all members, loadable with
``nnjpeg_cuda.defence.Ensemble.load``) and ``OUT/run.json``. Re-running the same command resumes: finished
levels are skipped, an interrupted one continues from its last checkpoint.

Distributed: ``torchrun --nproc-per-node 2 -m nnjpeg_cuda finetune ...`` (gloo on CPU, nccl on GPU).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from . import CommandError


def _levels(text: str):
    try:
        levels = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"levels must be comma-separated ints, got {text!r}") from None
    if not levels or any(not 1 <= q <= 100 for q in levels):
        raise argparse.ArgumentTypeError(f"levels must be ints in 1..100, got {text!r}")
    return levels


def register(subparsers) -> None:
    p = subparsers.add_parser("finetune", help="fine-tune one classifier per JPEG level (noisy training)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default="resnet20", choices=["resnet20", "resnet32", "resnet44", "resnet56"])
    p.add_argument("--weights", default=None, help="starting weights (.th/.pt/.ckpt); default: pretrained file "
                   "of --arch in $NNJPEG_MODELS")
    p.add_argument("--data", default=None, help="CIFAR-10 folder (default $NNJPEG_DATA)")
    p.add_argument("--levels", type=_levels, default=[90, 70, 50, 30, 10], help="qualities, e.g. 90,70,50,30,10")
    p.add_argument("--out", required=True, help="output folder (checkpoints, logs, members)")
    p.add_argument("--table", default="nn", help="table preset for the round trip (default nn)")
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--subset", type=int, default=None, help="use this many training images (seeded choice)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--random-quality-spread", type=int, default=0, metavar="S",
                   help="draw each image's quality from level±S")
    p.add_argument("--subsampling", default="4:4:4", choices=["4:4:4", "4:2:0"])
    p.add_argument("--checkpoint-every", type=int, default=100, help="steps between checkpoints")
    p.add_argument("--max-steps", type=int, default=None, help="stop each level after this step (resumable)")
    p.add_argument("--resume", dest="resume", action="store_true", default=True,
                   help="continue from OUT's checkpoints (default)")
    p.add_argument("--no-resume", dest="resume", action="store_false", help="start over, ignoring checkpoints")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if available)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    import torch

    from .. import datasets, models, tables
    from ..defence import Ensemble, finetune, load_member

    dist = "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1
    if args.device:
        device = torch.device(args.device)
    else:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if dist and not torch.distributed.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend)
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(device)
    rank = torch.distributed.get_rank() if dist else 0
    try:
        try:
            tables.get_base(args.table)
            x, y = datasets.load_cifar10("train", args.data)
            depth = int(args.arch[6:])
            weights = args.weights or models.weights_file(depth)
        except (FileNotFoundError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        if args.subset is not None:
            if not 1 <= args.subset <= x.shape[0]:
                raise CommandError(f"--subset must be in 1..{x.shape[0]}")
            idx = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(args.seed))[: args.subset]
            x, y = x[idx], y[idx]
        out = Path(args.out)
        summaries = {}
        for q in args.levels:
            level_dir = out / f"q{q}"
            member_file = level_dir / "member.ckpt"
            if args.resume and member_file.exists():
                summaries[q] = json.loads((level_dir / "summary.json").read_text()) if (
                    level_dir / "summary.json").exists() else {"quality": q}
                if rank == 0:
                    print(f"level {q}: done already ({member_file})")
                continue
            torch.manual_seed(args.seed)
            model = _start_model(depth, weights).to(device)
            try:
                s = finetune(model, (x, y), quality=q, table=args.table, epochs=args.epochs,
                             batch_size=args.batch_size, lr=args.lr, quality_spread=args.random_quality_spread,
                             subsampling=args.subsampling, seed=args.seed, out_dir=level_dir,
                             checkpoint_every=args.checkpoint_every,
                             resume=args.resume, max_steps=args.max_steps, progress=not args.no_progress,
                             desc=f"q={q}")
            except ValueError as exc:  # bad table/settings, or a checkpoint that does not fit (CheckpointError)
                raise CommandError(str(exc)) from None
            summaries[q] = {k: v for k, v in s.items() if k != "history"}
            if not s["finished"]:
                if rank == 0:
                    print(f"level {q}: stopped at step {s['steps']}/{s['total_steps']} (--max-steps); re-run to resume")
                return 0
        if rank == 0:
            members = [load_member(out / f"q{q}" / "member.ckpt", models.cifar_resnet(depth)) for q in args.levels]
            Ensemble(members, args.levels, table=args.table, subsampling=args.subsampling,
                     arch=args.arch).save(out / "ensemble.ckpt")
            (out / "run.json").write_text(json.dumps({"args": {k: v for k, v in vars(args).items() if k != "func"},
                                                      "levels": summaries}, indent=1, default=str))
            print(f"members and ensemble in {out}")
        return 0
    finally:
        if dist and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def _start_model(depth, weights):
    from .. import models
    from ..defence import CheckpointError, load_file

    try:
        return models.cifar_resnet(depth, weights)
    except Exception as first:  # maybe one of our own checkpoint files
        try:
            return models.cifar_resnet(depth, load_file(weights)["tensors"]["model"])
        except (CheckpointError, KeyError):
            raise CommandError(f"cannot load weights {weights}: {first}") from None
