"""``nnjpeg-cuda evaluate``: clean and robust accuracy of the defences on CIFAR-10, with a report.

Example:
    nnjpeg-cuda evaluate --models ../shared/models --data ../shared/data --attacks fgsm,pgd,cw,deepfool \\
        --eps 2/255,4/255,8/255 --threat oblivious,adaptive --n 1000 --seed 0 --out eval/

writes ``eval/report.md``, ``eval/results.json``, ``eval/accuracy_vs_eps.png`` and
``eval/quality_levels.png``. Exit codes: 0 done; 2 bad arguments, missing data/models, or the attack
library not installed.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Dict, List

from . import CommandError

DEFENCES = ("none", "jpeg", "fd", "nn", "shield", "random", "ensemble")


def _csv(choices=None, kind=str):
    def parse(text: str):
        items = [t.strip() for t in text.split(",") if t.strip()]
        if not items:
            raise argparse.ArgumentTypeError("expected a comma-separated list")
        out = []
        for t in items:
            try:
                v = kind(t)
            except (ValueError, ZeroDivisionError) as exc:
                raise argparse.ArgumentTypeError(f"bad value {t!r}: {exc}") from None
            if choices is not None and v not in choices:
                raise argparse.ArgumentTypeError(f"{t!r} is not one of {', '.join(choices)}")
            out.append(v)
        return out
    return parse


def eps_value(text: str) -> float:
    """An L-inf budget: ``8/255`` or ``0.031``, on the [0, 1] pixel scale."""
    v = float(Fraction(text))
    if not 0 < v <= 1:
        raise ValueError("must be in (0, 1] on the pixel scale, e.g. 8/255")
    return v


def quality_value(text: str) -> int:
    q = int(text)
    if not 1 <= q <= 100:
        raise ValueError("quality must be in 1..100")
    return q


def _steps(text: str) -> Dict[str, int]:
    out = {}
    for item in _csv()(text):
        name, _, value = item.partition("=")
        if name not in ("fgsm", "pgd", "cw", "deepfool") or not value.isdigit() or int(value) < 1:
            raise argparse.ArgumentTypeError(f"bad --steps entry {item!r}: use e.g. pgd=10,cw=20,deepfool=50")
        out[name] = int(value)
    return out


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate", help="robustness of the defences on CIFAR-10 (attacks, threat models, report)",
        description="Attack the CIFAR-10 classifier undefended and behind each defence (standard JPEG, Feature "
                    "Distillation table, NN-favoured table, SHIELD-like ensemble, random quality, the fine-tuned "
                    "ensemble) under the oblivious (gray-box) and adaptive (white-box) threat models, and write "
                    "report.md, results.json and PNG plots. Attacks come from the Adversarial Robustness "
                    "Toolbox (pip install 'nnjpeg_cuda[eval]'). Exit codes: 0 done, 2 bad arguments or missing "
                    "inputs.",
        epilog="example: nnjpeg-cuda evaluate --attacks fgsm,pgd --eps 2/255,4/255,8/255 --n 500 --out eval/")
    p.add_argument("--models", metavar="DIR", help="folder of the pretrained CIFAR ResNets (default: $NNJPEG_MODELS)")
    p.add_argument("--depth", type=int, default=20, choices=(20, 32, 44, 56), help="ResNet depth (default: 20)")
    p.add_argument("--data", metavar="DIR", help="folder holding cifar10_test.npz (default: $NNJPEG_DATA)")
    p.add_argument("--ensemble", metavar="PATH", help="fine-tuned ensemble saved by nnjpeg_cuda.defence.Ensemble "
                   "(adds the 'ensemble' defence)")
    p.add_argument("--attacks", type=_csv(("fgsm", "pgd", "cw", "deepfool")), default=["fgsm", "pgd", "cw", "deepfool"],
                   help="comma-separated: fgsm,pgd,cw,deepfool (default: all)")
    p.add_argument("--eps", type=_csv(kind=eps_value), default=[2 / 255, 4 / 255, 8 / 255],
                   help="L-inf budgets for fgsm/pgd, pixel scale (default: 2/255,4/255,8/255)")
    p.add_argument("--threat", type=_csv(("oblivious", "adaptive")), default=["oblivious", "adaptive"],
                   help="threat models (default: oblivious,adaptive)")
    p.add_argument("--grads", type=_csv(("bpda", "ste", "smooth")), default=["bpda"],
                   help="round-trip gradients for adaptive attacks (default: bpda)")
    p.add_argument("--ensemble-attack", type=_csv(("logits", "members")), default=["logits"],
                   help="attack ensembles through their summed logits and/or member by member (default: logits)")
    p.add_argument("--eot", type=int, default=8, help="draws per gradient (EOT) for randomised defences (default: 8)")
    p.add_argument("--defences", type=_csv(DEFENCES), default=None,
                   help=f"which defences (default: all of {','.join(DEFENCES)}; 'ensemble' needs --ensemble)")
    p.add_argument("--qualities", type=_csv(kind=quality_value), default=[25, 50, 75],
                   help="qualities of the standard-JPEG defence (default: 25,50,75)")
    p.add_argument("--nn-qualities", type=_csv(kind=quality_value), default=[50],
                   help="qualities of the NN-favoured-table defence (default: 50)")
    p.add_argument("--random-range", type=_csv(kind=quality_value), default=[20, 80],
                   help="quality range LOW,HIGH of the random-quality defence (default: 20,80)")
    p.add_argument("--n", type=int, default=1000, help="test images, drawn at random with --seed (default: 1000)")
    p.add_argument("--slow-n", type=int, default=None,
                   help="C&W and DeepFool on the first SLOW_N of them only (default: all n)")
    p.add_argument("--seed", type=int, default=0, help="seed for the image sample and the attacks (default: 0)")
    p.add_argument("--steps", type=_steps, default={}, help="iterations, e.g. pgd=10,cw=20,deepfool=50")
    p.add_argument("--batch-size", type=int, default=128, help="images per batch (default: 128)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                   help="where to run (default: auto = cuda when available)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--out", default="eval", metavar="DIR", help="output folder (default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise CommandError("--device cuda: no CUDA device is available")
    return torch.device(name)


def _load_model(args, device):
    """The pretrained base classifier (eval mode)."""
    from ..models import load_pretrained

    try:
        return load_pretrained(args.depth, args.models).to(device).eval()
    except FileNotFoundError as exc:
        raise CommandError(str(exc)) from None


def _load_data(args):
    """The CIFAR-10 test split: uint8 (N, 3, 32, 32), int64 (N,)."""
    from ..datasets import load_cifar10

    try:
        return load_cifar10("test", args.data)
    except FileNotFoundError as exc:
        raise CommandError(str(exc)) from None


def _load_ensemble(path: str, device):
    from ..defence import Ensemble

    if not Path(path).exists():
        raise CommandError(f"--ensemble {path!r} does not exist")
    return Ensemble.load(path).to(device).eval()


def _chosen_defences(args) -> List[str]:
    chosen = args.defences or [d for d in DEFENCES if d != "ensemble" or args.ensemble]
    if "ensemble" in chosen and not args.ensemble:
        raise CommandError("the 'ensemble' defence needs --ensemble PATH (a fine-tuned ensemble)")
    if len(args.random_range) != 2 or args.random_range[0] > args.random_range[1]:
        raise CommandError(f"--random-range takes LOW,HIGH with LOW <= HIGH, got {args.random_range}")
    return chosen


def build_defences(args, model, device) -> List:
    """The defences named by ``--defences`` over ``model``."""
    from ..evaluation import defences as D

    chosen = _chosen_defences(args)
    out = []
    for name in chosen:
        if name == "none":
            out.append(D.NoDefence(model))
        elif name == "jpeg":
            out += [D.JPEGDefence(model, q) for q in args.qualities]
        elif name == "fd":
            out.append(D.feature_distillation(model))
        elif name == "nn":
            out += [D.nn_table(model, q) for q in args.nn_qualities]
        elif name == "shield":
            out.append(D.shield(model))
        elif name == "random":
            out.append(D.RandomJPEGDefence(model, tuple(args.random_range)))
        elif name == "ensemble":
            out.append(D.finetuned(_load_ensemble(args.ensemble, device)))
    return [d.to(device) for d in out]


def run(args) -> int:
    import torch

    from ..evaluation import AttackSpec, Threat, art_available, evaluate, write_report

    if not art_available():
        raise CommandError("the attacks need the Adversarial Robustness Toolbox: pip install 'nnjpeg_cuda[eval]'")
    if args.n < 1:
        raise CommandError(f"--n must be >= 1, got {args.n}")
    if args.slow_n is not None and args.slow_n < 1:
        raise CommandError(f"--slow-n must be >= 1, got {args.slow_n}")
    if args.eot < 1:
        raise CommandError(f"--eot must be >= 1, got {args.eot}")
    if args.batch_size < 1:
        raise CommandError(f"--batch-size must be >= 1, got {args.batch_size}")
    _chosen_defences(args)
    if args.ensemble and not Path(args.ensemble).exists():
        raise CommandError(f"--ensemble {args.ensemble!r} does not exist")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = _device(args.device)
    x_all, y_all = _load_data(args)
    if args.n > x_all.shape[0]:
        raise CommandError(f"--n {args.n} is more than the {x_all.shape[0]} test images")
    idx = torch.randperm(x_all.shape[0], generator=torch.Generator().manual_seed(args.seed))[:args.n]
    x, y = x_all[idx].float().div(255), y_all[idx]
    model = _load_model(args, device)
    defences = build_defences(args, model, device)

    specs = []
    for name in args.attacks:
        steps = args.steps.get(name)
        if name in ("fgsm", "pgd"):
            specs += [AttackSpec(name, e, steps) for e in args.eps]
        else:
            specs.append(AttackSpec(name, None, steps))
    threats = []
    for kind in args.threat:
        if kind == "oblivious":
            threats.append(Threat("oblivious"))
        else:
            threats += [Threat("adaptive", g, a, args.eot) for g in args.grads for a in args.ensemble_attack]

    command = "nnjpeg-cuda evaluate " + " ".join(shlex.quote(a) for a in sys.argv[2:]) \
        if len(sys.argv) > 1 and sys.argv[1] == "evaluate" else None
    if not args.quiet:
        print(f"evaluate: {args.n} images (seed {args.seed}), {len(defences)} defences, {len(specs)} attacks, "
              f"{len(threats)} threat models, on {device}", file=sys.stderr)
    t0 = time.perf_counter()
    results = evaluate(defences, model, x, y, specs, threats, slow_n=args.slow_n, batch_size=args.batch_size,
                       seed=args.seed, progress=not args.quiet)
    results["meta"]["seconds"] = round(time.perf_counter() - t0, 1)
    results["meta"]["model"] = f"resnet{args.depth}"
    files = write_report(results, args.out, command)
    if not args.quiet:
        for f in files.values():
            print(f"wrote {f}", file=sys.stderr)
    return 0
