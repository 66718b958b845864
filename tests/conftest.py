"""Shared fixtures: real photos, PSNR, and GPU/data availability."""

from __future__ import annotations

import numpy as np
import pytest
import torch


def _photos() -> dict:
    import skimage.data

    # Real photos shipped inside scikit-image (no download): name -> uint8 (H, W, 3).
    return {"astronaut": skimage.data.astronaut(), "chelsea": skimage.data.chelsea(), "coffee": skimage.data.coffee()}


@pytest.fixture(scope="session")
def photos() -> dict:
    """Real RGB photos as uint8 (H, W, 3) numpy arrays."""
    return _photos()


@pytest.fixture(scope="session")
def photo_batch(photos) -> torch.Tensor:
    """Three real 96x120 crops (odd multiples of 8 avoided on purpose: 96 = 12 blocks, 120 = 15) as uint8 NCHW."""
    crops = [im[100:196, 150:270] for im in photos.values()]
    return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).contiguous()


def psnr(a, b, peak: float = 255.0) -> float:
    """PSNR in dB between two arrays on the same scale."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    mse = np.mean((a - b) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(peak**2 / mse))


def cuda_available() -> bool:
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    if cuda_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (none visible to torch)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
