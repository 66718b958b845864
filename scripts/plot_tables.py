"""Heatmaps of the CIFAR-10 DCT band statistics and of the designed tables next to the standard table.

Command (reads the shipped python/nnjpeg_cuda/presets/nn_table.json, no data needed, a few seconds):

    python scripts/plot_tables.py            # writes docs/tables_heatmap.png
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from nnjpeg_cuda import tables  # noqa: E402
from nnjpeg_cuda.table_design import NN_TABLE_FILE  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    doc = json.loads(NN_TABLE_FILE.read_text())
    std = np.array(doc["band_std"])
    sens = np.array(doc["band_sensitivity"])
    panels = [("log10 std, Y", np.log10(std[0])), ("log10 std, Cb", np.log10(std[1])),
              ("|dL/dF|, Y (ResNet-20)", sens[0]), ("|dL/dF|, Cb", sens[1])]
    tabs = [("standard (IJG)", tables.STANDARD), ("nn (shipped: " + doc["chosen"] + ")", tables.get_base("nn")),
            ("fd preset", tables.get_base("fd")), ("deepn", np.array(doc["candidates"]["deepn"])),
            ("model(alpha=1)", np.array(doc["candidates"]["model(alpha=1)"]))]
    fig, axes = plt.subplots(3, 5, figsize=(14, 8.4))
    for ax in axes.flat:
        ax.set_xticks([]), ax.set_yticks([])
    for ax, (title, m) in zip(axes[0], panels):
        im = ax.imshow(m, cmap="viridis")
        ax.set_title(title, fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046)
    axes[0, 4].axis("off")
    for row, plane in ((1, 0), (2, 1)):
        for ax, (title, t) in zip(axes[row], tabs):
            t = np.asarray(t)[plane]
            im = ax.imshow(t, cmap="magma_r", vmin=1, vmax=210)
            for (i, j), v in np.ndenumerate(t):
                ax.text(j, i, f"{int(v)}", ha="center", va="center", fontsize=5.5,
                        color="white" if v > 100 else "black")
            ax.set_title(f"{title}, {'luma' if plane == 0 else 'chroma'}", fontsize=8)
    fig.suptitle("CIFAR-10 train: DCT band statistics (row 1) and base tables (rows 2-3: luma, chroma); "
                 "step at quality 50 = base", fontsize=10)
    fig.tight_layout()
    out = ROOT / "docs" / "tables_heatmap.png"
    fig.savefig(out, dpi=100)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
