"""Small, exactly understood classifiers and data for the evaluation tests (no downloads, no training).

``linear_toy`` is a matched-filter linear classifier, ``logits_k = <x - 0.5, t_k>``, over images
``x = 0.5 + a t_y + noise``: it classifies clean images almost perfectly, and the distance from ``x`` to
the nearest decision boundary has a closed form (the oracle for the minimum-norm attacks).
"""

from __future__ import annotations

import torch
from torch import nn


def linear_toy(n: int = 64, classes: int = 4, size: int = 8, signal: float = 0.3, noise: float = 0.03, seed: int = 0):
    """Return ``(model, x, y)``: a fixed linear classifier and n images (N, 3, size, size) in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    t = torch.randn(classes, 3, size, size, generator=g)
    t = t / t.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    y = torch.randint(0, classes, (n,), generator=g)
    x = (0.5 + signal * t[y] + noise * torch.randn(n, 3, size, size, generator=g)).clamp(0, 1)
    lin = nn.Linear(3 * size * size, classes)
    with torch.no_grad():
        lin.weight.copy_(t.flatten(1))
        lin.bias.copy_(-0.5 * t.flatten(1).sum(1))
    model = nn.Sequential(nn.Flatten(), lin).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model, x, y


def boundary_distance(model: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """Exact L2 distance from each image to the nearest decision boundary of a linear ``linear_toy`` model
    (ignoring the [0, 1] box): ``min_k (f_p - f_k) / ||w_p - w_k||`` with p the predicted class."""
    w = model[1].weight.double()
    f = model(x).double()
    p = f.argmax(1)
    diff = f.gather(1, p[:, None]) - f                      # (N, K)
    wdiff = (w[p][:, None, :] - w[None, :, :]).norm(dim=2)  # (N, K)
    d = diff / wdiff
    d[torch.arange(x.shape[0]), p] = float("inf")
    return d.min(1).values


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(-1) == y).float().mean())
