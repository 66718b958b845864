"""Regenerate the shipped NN-favoured table, python/nnjpeg_cuda/presets/nn_table.json.

Command (about 3 minutes on 2 CPU cores):

    NNJPEG_DATA=../shared/data NNJPEG_MODELS=../shared/models python scripts/make_nn_table.py

What it does, on the CIFAR-10 *training* set only (the test set is never looked at):
1. splits the 50 000 training images (seeded) into 45 000 for statistics and 5 000 held out;
2. `tables.analyze` on the 45 000: per-channel, per-band DCT spread;
3. `tables.band_sensitivity` of the pretrained ResNet-20 on 2 000 of them (mean |dLoss/dF|);
4. designs candidate tables (DeepN-style piecewise-linear, two-band at several energies, model-aware);
5. scores each by the pretrained ResNet-20's accuracy behind the round trip at qualities 90/70/50/30/10 on
   2 000 held-out training images, and ships the one with the best mean accuracy (all scores are stored
   in the JSON next to the table, with the band statistics for the docs' heatmap).
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

import nnjpeg_cuda
from nnjpeg_cuda import datasets, models, tables
from nnjpeg_cuda.table_design import NN_TABLE_FILE, save_table_file

LEVELS = (90, 70, 50, 30, 10)


def accuracy_behind_jpeg(model, x, y, table, levels=LEVELS, batch=500):
    accs = []
    with torch.no_grad():
        for q in levels:
            correct = 0
            for i in range(0, x.shape[0], batch):
                xb = nnjpeg_cuda.roundtrip(x[i:i + batch].float() / 255, quality=q, table=table)
                correct += (model(xb).argmax(1) == y[i:i + batch]).sum().item()
            accs.append(100.0 * correct / x.shape[0])
    return accs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None, help="CIFAR-10 folder (default $NNJPEG_DATA)")
    ap.add_argument("--models", default=None, help="pretrained weights folder (default $NNJPEG_MODELS)")
    ap.add_argument("--out", default=str(NN_TABLE_FILE))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--score-images", type=int, default=2000)
    args = ap.parse_args(argv)
    t0 = time.time()
    x, y = datasets.load_cifar10("train", args.data)
    perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(args.seed))
    fit, held = perm[:45000], perm[45000:]
    stats = tables.analyze(x[fit], batch_size=2048, progress=True)
    model = models.load_pretrained(20, args.models)
    sens_idx = fit[: args.score_images]
    sens = tables.band_sensitivity(model, x[sens_idx], y[sens_idx], method="gradient", progress=True)
    cands = {
        "deepn": dict(method="deepn"),
        "two_band(0.90)": dict(method="two_band", keep_energy=0.90),
        "two_band(0.95)": dict(method="two_band", keep_energy=0.95),
        "two_band(0.98)": dict(method="two_band", keep_energy=0.98),
        "model(alpha=0.5)": dict(method="model", sensitivity=sens, alpha=0.5),
        "model(alpha=1)": dict(method="model", sensitivity=sens, alpha=1.0),
    }
    xs, ys = x[held[: args.score_images]], y[held[: args.score_images]]
    scores = {"standard": accuracy_behind_jpeg(model, xs, ys, "standard")}
    designed = {}
    for name, kw in cands.items():
        designed[name] = tables.design(stats, **kw)
        scores[name] = accuracy_behind_jpeg(model, xs, ys, designed[name])
        print(f"{name:18s} " + " ".join(f"{a:6.2f}" for a in scores[name]), file=sys.stderr)
    best = max(cands, key=lambda k: sum(scores[k]) / len(LEVELS))
    params = {k: v for k, v in cands[best].items() if k != "sensitivity"}
    save_table_file(args.out, designed[best], chosen=best, design_params=params,
                    command="NNJPEG_DATA=../shared/data NNJPEG_MODELS=../shared/models python scripts/make_nn_table.py",
                    normalize="standard (geometric-mean step equal to the IJG table's, per plane)",
                    selection=f"best mean accuracy of pretrained ResNet-20 at qualities {list(LEVELS)} on "
                              f"{args.score_images} held-out CIFAR-10 training images (seed {args.seed})",
                    scores_percent={k: [round(a, 2) for a in v] for k, v in scores.items()},
                    band_std=[[[round(v, 3) for v in r] for r in p] for p in stats.std.tolist()],
                    band_sensitivity=[[[float(f"{v:.4g}") for v in r] for r in p] for p in sens.tolist()],
                    candidates={k: t.int().tolist() for k, t in designed.items()})
    print(f"chose {best}; wrote {args.out} in {time.time() - t0:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
