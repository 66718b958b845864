"""Benchmark workloads W1/W2/W3: batches of real photos (the ones scikit-image ships), cropped or tiled.

W1 = 256 images of 224x224 (ImageNet-sized), W2 = 4096 of 32x32 (CIFAR-sized), W3 = 16 of 1024x1024.
Images are random crops of the photos at a few scales (W3 mirror-tiles them first), with a fixed seed,
so every run times the same pixels.

Example:
    >>> from workloads import make_batch
    >>> make_batch("W1", quick=True).shape
    torch.Size([16, 3, 224, 224])
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Dict, List

import numpy as np
import torch


@dataclass(frozen=True)
class Workload:
    name: str
    count: int  # images in the full run
    size: int   # square side in pixels
    quick_count: int  # images in the --quick (CI smoke) run

    def images(self, quick: bool) -> int:
        return self.quick_count if quick else self.count


WORKLOADS: Dict[str, Workload] = {
    "W1": Workload("W1", 256, 224, 4),
    "W2": Workload("W2", 4096, 32, 64),
    "W3": Workload("W3", 16, 1024, 1),
}

# Colour photos bundled with scikit-image (no download needed).
_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry")


@lru_cache(maxsize=1)
def _photos() -> List[np.ndarray]:
    import skimage.data

    out = []
    for name in _PHOTOS:
        try:
            img = getattr(skimage.data, name)()
        except Exception:  # a photo missing from this scikit-image version
            continue
        if img.ndim == 3 and img.shape[2] == 3:
            out.append(np.ascontiguousarray(img, dtype=np.uint8))
    if not out:
        raise RuntimeError("no colour photos available from scikit-image")
    return out


def _tile(img: np.ndarray, size: int) -> np.ndarray:
    """Mirror-tile a photo until both sides reach `size` (keeps natural image statistics at the seams)."""
    while img.shape[0] < size or img.shape[1] < size:
        img = np.concatenate([img, img[::-1]], axis=0) if img.shape[0] < size else img
        img = np.concatenate([img, img[:, ::-1]], axis=1) if img.shape[1] < size else img
    return img


def make_batch(name: str, quick: bool = False, seed: int = 0) -> torch.Tensor:
    """The uint8 (N, 3, S, S) batch of workload `name` (contiguous NCHW).

    Args:
        name: "W1", "W2" or "W3".
        quick: the small CI-sized batch instead of the full one.
        seed: crop positions and scales.

    Shape:
        - output: (N, 3, S, S), uint8.
    """
    import torch.nn.functional as F

    if name not in WORKLOADS:
        raise ValueError(f"unknown workload {name!r}; choose from {sorted(WORKLOADS)}")
    wl = WORKLOADS[name]
    n, s = wl.images(quick), wl.size
    rng = np.random.default_rng(seed)
    # Each photo at a few scales (computed once): the crop covers 1x to ~4x its side of the photo.
    sources = []
    for photo in _photos():
        src = torch.from_numpy(_tile(photo, s)).permute(2, 0, 1).float()[None]
        h, w = src.shape[2:]
        lo = max(s / h, s / w)
        for scale in np.geomspace(lo, max(lo, min(1.0, 4 * s / min(h, w))), 3):
            scaled = src if abs(scale - 1.0) < 1e-3 else F.interpolate(
                src, scale_factor=float(scale), mode="bilinear", antialias=True, align_corners=False)
            if min(scaled.shape[2:]) >= s:
                sources.append(scaled[0].round().clamp(0, 255).to(torch.uint8))
    out = torch.empty((n, 3, s, s), dtype=torch.uint8)
    for i in range(n):
        src = sources[int(rng.integers(len(sources)))]
        h, w = src.shape[1:]
        y, x = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1))
        out[i] = src[:, y:y + s, x:x + s]
    return out


def as_dtype(batch_u8: torch.Tensor, dtype: str) -> torch.Tensor:
    """The batch as "uint8" (0..255) or "float32" (0..1), contiguous NCHW."""
    if dtype == "uint8":
        return batch_u8.contiguous()
    if dtype == "float32":
        return (batch_u8.float() / 255).contiguous()
    raise ValueError(f"unknown dtype {dtype!r}; choose uint8 or float32")
