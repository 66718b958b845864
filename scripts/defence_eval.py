"""Clean test accuracy of the base model, the base model behind JPEG (standard vs NN table), each
fine-tuned member and the ensemble; writes docs/defence_results.json and docs/defence_accuracy.png.

Command (after `nnjpeg-cuda finetune ... --out runs/defence_r20`, see docs/DEFENCE.md):

    OMP_NUM_THREADS=1 NNJPEG_DATA=../shared/data NNJPEG_MODELS=../shared/models \\
        python scripts/defence_eval.py --run runs/defence_r20

Member accuracies and the ensemble's votes come from the same member logits (each member on the test
images round-tripped at its level), so the ensemble costs no extra pass.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

import nnjpeg_cuda
from nnjpeg_cuda import datasets, models
from nnjpeg_cuda.defence import Ensemble

ROOT = Path(__file__).resolve().parents[1]


def logits_of(model, x, quality=None, table="standard", batch=500, desc=""):
    out = []
    with torch.no_grad():
        for i in tqdm(range(0, x.shape[0], batch), desc=desc, leave=False):
            xb = x[i:i + batch].float() / 255
            if quality is not None:
                xb = nnjpeg_cuda.roundtrip(xb, quality=quality, table=table)
            out.append(model(xb))
    return torch.cat(out)


def compression_stats(x, levels):
    """How hard each table compresses: PSNR of the round trip and the fraction of non-zero quantized
    DCT coefficients (a bit-rate proxy), per table and level, on uint8 images x."""
    from nnjpeg_cuda import tables
    from nnjpeg_cuda.table_design import dct_coefficients

    coef = dct_coefficients(x)  # (N, 3, bh, bw, 8, 8) float64
    out = {}
    for t in ("standard", "nn"):
        base = tables.get_base(t).double()
        rows = {"psnr_db": [], "nonzero_percent": []}
        for q in levels:
            steps = tables.scale(base, q).double()
            per_plane = torch.stack([steps[0], steps[1], steps[1]]).view(1, 3, 1, 1, 8, 8)
            nz = (torch.round(coef / per_plane) != 0).double().mean().item()
            y = nnjpeg_cuda.roundtrip(x.float() / 255, quality=q, table=t)
            mse = ((y.double() - x.double() / 255) ** 2).mean().item()
            rows["psnr_db"].append(round(10 * torch.log10(torch.tensor(1.0 / mse)).item(), 2))
            rows["nonzero_percent"].append(round(100 * nz, 2))
        out[t] = rows
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default="runs/defence_r20", help="folder written by nnjpeg-cuda finetune")
    ap.add_argument("--data", default=None)
    ap.add_argument("--models", default=None)
    ap.add_argument("--test-images", type=int, default=10000)
    ap.add_argument("--out", default=str(ROOT / "docs" / "defence_results.json"))
    args = ap.parse_args(argv)
    t0 = time.time()
    run = Path(args.run)
    ens = Ensemble.load(run / "ensemble.ckpt", arch="resnet20")
    levels, table = ens.qualities, ens.table_name
    x, y = datasets.load_cifar10("test", args.data)
    x, y = x[: args.test_images], y[: args.test_images]
    acc = lambda logits: round(100.0 * (logits.argmax(-1) == y).float().mean().item(), 2)  # noqa: E731
    base = models.load_pretrained(20, args.models)
    res = {"test_images": int(x.shape[0]), "levels": levels, "table": table, "run": str(run)}
    res["base_clean"] = acc(logits_of(base, x, desc="base clean"))
    res["base_jpeg"] = {}
    for t in ("standard", "nn"):
        res["base_jpeg"][t] = [acc(logits_of(base, x, q, t, desc=f"base {t} q{q}")) for q in levels]
        print(t, res["base_jpeg"][t], flush=True)
    res["compression"] = compression_stats(x[:2000], levels)
    print(json.dumps(res["compression"]), flush=True)
    member_logits = torch.stack([logits_of(m, x, q, ens.base_table, desc=f"member q{q}")
                                 for m, q in zip(ens.members, levels)])
    res["members"] = [acc(lg) for lg in member_logits]
    res["ensemble_majority"] = acc(Ensemble.combine(member_logits, "majority"))
    res["ensemble_soft"] = acc(Ensemble.combine(member_logits, "soft"))
    torch.save(member_logits, run / "test_member_logits.pt")  # for further analysis (ignored folder)
    # each member left out in turn: does one weak level (e.g. the hardest) pull the vote down?
    res["ensemble_majority_without"] = {str(q): acc(Ensemble.combine(
        torch.cat([member_logits[:k], member_logits[k + 1:]]), "majority")) for k, q in enumerate(levels)}
    votes = member_logits.argmax(-1)
    top = torch.nn.functional.one_hot(votes, 10).sum(0).max(-1).values
    res["majority_tied_images"] = int(sum(
        (torch.nn.functional.one_hot(votes, 10).sum(0) == t.view(-1, 1)).sum(-1)[i] > 1
        for i, t in enumerate(top)))
    # check: the Ensemble module's own forward agrees with the cached logits on a slice
    with torch.no_grad():
        res["module_check_agree"] = bool(torch.equal(ens.predict(x[:200]), Ensemble.combine(
            member_logits[:, :200], "majority").argmax(-1)))
    res["seconds"] = round(time.time() - t0, 1)
    Path(args.out).write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps(res, indent=1))
    plot(res, Path(args.out).with_name("defence_accuracy.png"))
    return 0


def plot(res, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lv = res["levels"]
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    ax.plot(lv, res["base_jpeg"]["standard"], "o-", label="base + JPEG, standard table")
    ax.plot(lv, res["base_jpeg"]["nn"], "s-", label="base + JPEG, NN table")
    ax.plot(lv, res["members"], "^-", label="fine-tuned member (NN table)")
    ax.axhline(res["base_clean"], color="k", ls=":", label=f"base, no JPEG ({res['base_clean']:.2f}%)")
    ax.axhline(res["ensemble_majority"], color="C3", ls="--",
               label=f"ensemble, majority ({res['ensemble_majority']:.2f}%)")
    ax.set_xlabel("JPEG quality")
    ax.set_ylabel("clean test accuracy (%)")
    ax.set_title(f"ResNet-20, CIFAR-10 test ({res['test_images']} images)")
    ax.invert_xaxis()
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    raise SystemExit(main())
