"""Designing quantization tables from data: DCT band statistics, DeepN-JPEG / Feature-Distillation-style
mappings, and a model-aware sensitivity ranking.

Three steps, each usable on its own:

1. :func:`analyze` streams images (a tensor or any iterable of batches, e.g. a ``DataLoader``) through the
   JFIF colour transform and the 8x8 DCT of :mod:`nnjpeg_cuda.reference` and keeps per-channel, per-band
   running moments (Chan/Welford merge, float64): the spread (std) and mean magnitude of every coefficient.
2. :func:`band_sensitivity` (optional, model-aware) measures on real data how much a classifier depends on
   each band: the mean |dLoss/dF| of its loss wrt the DCT coefficients ("gradient"), or the accuracy drop
   when the band is zeroed ("ablation").
3. :func:`design` turns these into a (2, 8, 8) luma/chroma *base* table; the IJG quality scaling then
   applies as to any base table.

Example:
    >>> import torch
    >>> from nnjpeg_cuda import tables
    >>> stats = tables.analyze(torch.rand(16, 3, 32, 32))
    >>> tables.design(stats, method="deepn").shape
    torch.Size([2, 8, 8])
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from . import reference

__all__ = ["BandStats", "analyze", "band_sensitivity", "design", "load_table_file", "save_table_file",
           "METHODS", "NN_TABLE_FILE"]

METHODS = ("deepn", "two_band", "model")
NN_TABLE_FILE = Path(__file__).resolve().parent / "presets" / "nn_table.json"


@dataclass
class BandStats:
    """Per-channel (Y, Cb, Cr), per-band statistics of 8x8 DCT coefficients (level-shifted, 0..255 scale).

    Attributes:
        count: number of 8x8 blocks per channel.
        mean: (3, 8, 8) mean coefficient.
        std: (3, 8, 8) standard deviation (population) — the "spread" DeepN-JPEG maps to steps.
        mean_abs: (3, 8, 8) mean magnitude.
    """

    count: int
    mean: Tensor
    std: Tensor
    mean_abs: Tensor

    def to_dict(self) -> dict:
        return {"count": self.count, "mean": self.mean.tolist(), "std": self.std.tolist(),
                "mean_abs": self.mean_abs.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "BandStats":
        return cls(int(d["count"]), *(torch.tensor(d[k], dtype=torch.float64) for k in ("mean", "std", "mean_abs")))


def _images_of(batch) -> Tensor:
    if isinstance(batch, (tuple, list)):
        if not batch:
            raise ValueError("empty batch")
        batch = batch[0]  # (images, labels) from a DataLoader
    if not isinstance(batch, Tensor):
        raise TypeError(f"batches must be tensors or (images, labels) tuples, got {type(batch).__name__}")
    if batch.dim() == 3:
        batch = batch.unsqueeze(0)
    if batch.dim() != 4 or batch.shape[1] != 3:
        raise ValueError(f"images must have shape (N, 3, H, W), got {tuple(batch.shape)}")
    return batch


def dct_coefficients(images: Tensor, color: str = "ycbcr") -> Tensor:
    """8x8 DCT coefficients of RGB images, JPEG conventions (0..255, level shift -128, edge padding).

    Args:
        images: (N, 3, H, W) uint8 in 0..255 or float in [0, 1].
        color: ``"ycbcr"`` (JFIF) or ``"rgb"`` (no colour transform).

    Returns:
        (N, 3, H8/8, W8/8, 8, 8) float64 coefficients, H8/W8 the sizes rounded up to multiples of 8.

    Example:
        >>> dct_coefficients(torch.zeros(1, 3, 8, 8)).shape
        torch.Size([1, 3, 1, 1, 8, 8])
    """
    x = _images_of(images)
    x255 = x.double() if not x.is_floating_point() else x.double() * 255
    if color == "ycbcr":
        x255 = reference.rgb_to_ycbcr(x255)
    elif color != "rgb":
        raise ValueError(f"color must be 'ycbcr' or 'rgb', got {color!r}")
    return reference.block_dct(reference._pad_to(x255 - 128, 8))


def analyze(images: Union[Tensor, Iterable], batch_size: int = 1024, color: str = "ycbcr", progress: bool = False
            ) -> BandStats:
    """Statistics of the 8x8 DCT coefficients of a data set, per channel and frequency band.

    Streams: only one batch of coefficients is in memory at a time; moments merge with Chan et al.'s
    parallel update (numerically stable, float64).

    Args:
        images: (N, 3, H, W) tensor (uint8 0..255 or float 0..1), or an iterable of such batches or of
            ``(images, labels)`` tuples (a ``DataLoader``).
        batch_size: slice size when ``images`` is one tensor.
        color: ``"ycbcr"`` (JFIF, as the codec) or ``"rgb"``.
        progress: show a tqdm bar.

    Returns:
        :class:`BandStats` with (3, 8, 8) mean, std and mean magnitude.

    Example:
        >>> s = analyze(torch.rand(8, 3, 16, 16))
        >>> s.std.shape, s.count
        (torch.Size([3, 8, 8]), 32)
    """
    if isinstance(images, Tensor):
        x = _images_of(images)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        batches = (x[i:i + batch_size] for i in range(0, x.shape[0], batch_size))
    elif isinstance(images, Iterable):
        batches = iter(images)
    else:
        raise TypeError(f"images must be a tensor or an iterable of batches, got {type(images).__name__}")
    if progress:
        try:
            from tqdm.auto import tqdm
            batches = tqdm(batches, desc="analyze", unit="batch")
        except ImportError:  # tqdm is optional
            pass
    n = 0
    mean = torch.zeros(3, 8, 8, dtype=torch.float64)
    m2 = torch.zeros(3, 8, 8, dtype=torch.float64)
    sum_abs = torch.zeros(3, 8, 8, dtype=torch.float64)
    for batch in batches:
        coef = dct_coefficients(batch, color).cpu()
        coef = coef.permute(1, 4, 5, 0, 2, 3).reshape(3, 8, 8, -1)  # (3, 8, 8, blocks)
        nb = coef.shape[-1]
        if nb == 0:
            continue
        bmean = coef.mean(-1)
        bm2 = ((coef - bmean.unsqueeze(-1)) ** 2).sum(-1)
        delta = bmean - mean
        total = n + nb
        mean = mean + delta * (nb / total)
        m2 = m2 + bm2 + delta ** 2 * (n * nb / total)
        sum_abs += coef.abs().sum(-1)
        n = total
    if n == 0:
        raise ValueError("no images to analyze")
    return BandStats(n, mean, torch.sqrt(m2 / n), sum_abs / n)


def band_sensitivity(model: torch.nn.Module, images: Union[Tensor, Iterable], labels: Optional[Tensor] = None,
                     method: str = "gradient", batch_size: int = 256, progress: bool = False) -> Tensor:
    """How much a classifier depends on each DCT band, measured on real data (model-aware design).

    Args:
        model: classifier taking RGB in [0, 1], (N, 3, H, W) -> (N, classes); put in eval mode here.
        images: (N, 3, H, W) uint8/float images with ``labels`` (N,), or an iterable of (images, labels).
        labels: class labels when ``images`` is a tensor.
        method: ``"gradient"``: mean |dL/dF| of the cross-entropy wrt each coefficient F (images rebuilt
            from their DCT, so the gradient is exact); ``"ablation"``: accuracy drop when the band is set to
            zero in every block (luma and chroma bands separately; 128 passes over the data).
        batch_size: slice size when ``images`` is a tensor.
        progress: tqdm bar.

    Returns:
        (3, 8, 8) float64 sensitivity per channel (Y, Cb, Cr) and band; larger = the model needs it more.
        With ``"ablation"`` the Cb and Cr entries are equal (the chroma band is zeroed in both at once).

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 10))
        >>> band_sensitivity(net, torch.rand(4, 3, 8, 8), torch.arange(4)).shape
        torch.Size([3, 8, 8])
    """
    if method not in ("gradient", "ablation"):
        raise ValueError(f"method must be 'gradient' or 'ablation', got {method!r}")
    if isinstance(images, Tensor):
        if labels is None or not isinstance(labels, Tensor) or labels.shape != (images.shape[0],):
            raise ValueError("pass labels (N,) with an images tensor")
        batches = [(images[i:i + batch_size], labels[i:i + batch_size]) for i in range(0, images.shape[0], batch_size)]
    else:
        batches = images
    if progress:
        try:
            from tqdm.auto import tqdm
            batches = tqdm(batches, desc=f"sensitivity ({method})", unit="batch")
        except ImportError:  # tqdm is optional
            pass
    was_training = model.training
    model.eval()
    param = next(model.parameters(), None)
    dtype = param.dtype if param is not None else torch.float32
    device = param.device if param is not None else torch.device("cpu")
    d = reference.dct_matrix(torch.float64).to(device)
    total = torch.zeros(3, 8, 8, dtype=torch.float64)
    count = 0
    try:
        for xb, yb in batches:
            xb = _images_of(xb).to(device)
            yb = yb.to(device)
            h, w = xb.shape[-2:]
            coef = dct_coefficients(xb).to(device)

            def rebuild(c: Tensor) -> Tensor:
                pix = reference._from_blocks(d.T @ c @ d)[..., :h, :w] + 128
                return (reference.ycbcr_to_rgb(pix) / 255).to(dtype)

            if method == "gradient":
                coef.requires_grad_(True)
                loss = torch.nn.functional.cross_entropy(model(rebuild(coef)), yb, reduction="sum")
                (g,) = torch.autograd.grad(loss, coef)
                total += g.abs().sum(dim=(2, 3)).sum(0).cpu()  # (3, 8, 8)
                count += coef.shape[0] * coef.shape[2] * coef.shape[3]
            else:
                with torch.no_grad():
                    base = (model(rebuild(coef)).argmax(1) == yb).sum().item()
                    for ch, sl in ((0, slice(0, 1)), (1, slice(1, 3))):
                        for u in range(8):
                            for v in range(8):
                                c2 = coef.clone()
                                c2[:, sl, :, :, u, v] = 0
                                acc = (model(rebuild(c2)).argmax(1) == yb).sum().item()
                                total[sl if ch else 0, u, v] += base - acc
                count += xb.shape[0]
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("no images to measure")
    return total / count


def _geomean(t: Tensor) -> Tensor:
    return torch.exp(torch.log(t).mean(dim=(-2, -1), keepdim=True))


def _chroma(x: Tensor) -> Tensor:
    """Combine the Cb and Cr planes of a (3, 8, 8) band quantity into one chroma plane (RMS)."""
    return torch.sqrt((x[1] ** 2 + x[2] ** 2) / 2)


def _piecewise(spread: Tensor, knots: Sequence[Tuple[float, float]]) -> Tensor:
    """Piecewise-linear map from spread to step through (spread, step) knots, constant outside them."""
    xs = [float(k[0]) for k in knots]
    ys = [float(k[1]) for k in knots]
    if len(xs) < 2 or any(b <= a for a, b in zip(xs, xs[1:])):
        raise ValueError(f"knots need >= 2 (spread, step) pairs with increasing spreads, got {knots}")
    if any(y <= 0 for y in ys):
        raise ValueError(f"knot steps must be positive, got {ys}")
    out = torch.full_like(spread, ys[0])
    for (x0, y0), (x1, y1) in zip(zip(xs, ys), zip(xs[1:], ys[1:])):
        t = ((spread - x0) / (x1 - x0)).clamp(0, 1)
        inside = spread >= x0
        out = torch.where(inside, y0 + t * (y1 - y0), out)
    return out


def design(stats: BandStats, method: str = "deepn", *, knots: Optional[Sequence[Tuple[float, float]]] = None,
           keep_energy: float = 0.95, low_step: float = 10.0, high_step: float = 80.0,
           sensitivity: Optional[Tensor] = None, alpha: float = 0.5, normalize: Optional[str] = "standard",
           min_step: float = 1.0, max_step: float = 255.0) -> Tensor:
    """A (2, 8, 8) luma/chroma base table from DCT band statistics.

    Methods:
        - ``"deepn"`` (DeepN-JPEG style): each band's step is a piecewise-linear, decreasing function of its
          spread (std): bands that carry the signal get small steps, the rest large ones. ``knots`` are
          (spread, step) pairs on the 0..255 DCT scale, constant outside; default
          ``((2, 100), (10, 40), (40, 12), (120, 6))``. Chroma uses the RMS of the Cb and Cr spreads.
        - ``"two_band"`` (Feature Distillation style): the smallest set of bands (per plane, largest spread
          first) holding ``keep_energy`` of the AC energy (sum of variances), plus DC, is the kept band
          with step ``low_step``; every other band gets ``high_step``.
        - ``"model"`` (model-aware, ours): the ``"deepn"`` map applied to an *effective* spread
          ``std · (g / geomean(g))^alpha``, g the classifier's per-band ``sensitivity`` (from
          :func:`band_sensitivity`, e.g. mean |dLoss/dF|). ``std · g`` is, to first order, the loss change a
          typical coefficient of the band causes, so bands the classifier reacts to more than their spread
          suggests get smaller steps, and bands it ignores larger ones. ``alpha = 0`` gives ``"deepn"``.

    Args:
        stats: from :func:`analyze`.
        method: ``"deepn"``, ``"two_band"`` or ``"model"``.
        knots: the piecewise-linear map for ``"deepn"`` / ``"model"``.
        keep_energy: in (0, 1], fraction of AC energy in the kept band (``"two_band"``).
        low_step, high_step: steps inside / outside the kept band (``"two_band"``).
        sensitivity: (3, 8, 8) per-band sensitivity, required for ``"model"``.
        alpha: weight of the model term in [0, 2] (``"model"``).
        normalize: ``"standard"`` rescales each plane so its geometric-mean step equals the standard IJG
            table's (so ``quality=q`` compresses about as hard as the standard table at q and only the
            *shape* of the table differs); ``None`` keeps the raw steps.
        min_step, max_step: final clamp (after normalisation), 1..255 for baseline JPEG.

    Returns:
        (2, 8, 8) float32 base table (luma, chroma), rounded to integers, for ``table=...`` anywhere.

    Example:
        >>> s = analyze(torch.rand(8, 3, 32, 32))
        >>> t = design(s, "two_band", keep_energy=0.5)
        >>> t.shape, bool((t >= 1).all())
        (torch.Size([2, 8, 8]), True)
    """
    if not isinstance(stats, BandStats):
        raise TypeError(f"stats must be a BandStats from analyze(), got {type(stats).__name__}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if normalize not in ("standard", None):
        raise ValueError(f"normalize must be 'standard' or None, got {normalize!r}")
    if not 1 <= min_step <= max_step:
        raise ValueError(f"need 1 <= min_step <= max_step, got {min_step}, {max_step}")
    spread = torch.stack([stats.std[0], _chroma(stats.std)]).double()  # (2, 8, 8)
    if method == "two_band":
        if not 0 < keep_energy <= 1:
            raise ValueError(f"keep_energy must be in (0, 1], got {keep_energy}")
        if not 0 < low_step <= high_step:
            raise ValueError(f"need 0 < low_step <= high_step, got {low_step}, {high_step}")
        table = torch.full((2, 8, 8), float(high_step), dtype=torch.float64)
        for p in range(2):
            var = spread[p].flatten() ** 2
            var[0] = 0  # DC is always kept
            order = torch.argsort(var, descending=True)
            cum = torch.cumsum(var[order], 0) / var.sum().clamp_min(1e-12)
            n_keep = int((cum < keep_energy).sum().item()) + 1
            keep = torch.zeros(64, dtype=torch.bool)
            keep[order[:n_keep]] = True
            keep[0] = True
            table[p] = torch.where(keep.view(8, 8), float(low_step), float(high_step))
    else:
        knots = knots or ((2.0, 100.0), (10.0, 40.0), (40.0, 12.0), (120.0, 6.0))
        if method == "model":
            if sensitivity is None:
                raise ValueError("method='model' needs sensitivity=band_sensitivity(model, data)")
            if not isinstance(sensitivity, Tensor) or tuple(sensitivity.shape) != (3, 8, 8):
                raise ValueError(f"sensitivity must be a (3, 8, 8) tensor, got "
                                 f"{getattr(sensitivity, 'shape', type(sensitivity).__name__)}")
            if not 0 <= alpha <= 2:
                raise ValueError(f"alpha must be in [0, 2], got {alpha}")
            s = sensitivity.double().clamp_min(0)
            s = torch.stack([s[0], _chroma(s)])
            s = torch.maximum(s, s.flatten(1).amax(1).view(2, 1, 1) * 1e-3 + 1e-30)
            spread = spread * (s / _geomean(s)) ** alpha  # effective spread: tilt by relative sensitivity
        table = _piecewise(spread, knots)
    if normalize == "standard":
        from .tables import STANDARD
        table = table / _geomean(table) * _geomean(STANDARD.double())
    return torch.round(table.clamp(min_step, max_step)).clamp(min_step, max_step).to(torch.float32)


def save_table_file(path: Union[str, Path], table: Tensor, **meta) -> None:
    """Write a (2, 8, 8) table as JSON (``{"table": [[...]], ...meta}``), the format of the shipped presets."""
    t = torch.as_tensor(table)
    if tuple(t.shape) != (2, 8, 8):
        raise ValueError(f"table must be (2, 8, 8), got {tuple(t.shape)}")
    doc = dict(meta)
    doc["table"] = [[[int(v) if float(v).is_integer() else float(v) for v in row] for row in plane]
                    for plane in t.tolist()]
    Path(path).write_text(json.dumps(doc, indent=1) + "\n")


def load_table_file(path: Union[str, Path] = NN_TABLE_FILE) -> Tensor:
    """Read a table written by :func:`save_table_file`: (2, 8, 8) float32."""
    doc = json.loads(Path(path).read_text())
    if not isinstance(doc, dict) or "table" not in doc:
        raise ValueError(f"{path}: expected a JSON object with a 'table' entry")
    t = torch.tensor(doc["table"], dtype=torch.float32)
    if tuple(t.shape) != (2, 8, 8) or not bool((t > 0).all()):
        raise ValueError(f"{path}: 'table' must be (2, 8, 8) positive numbers, got shape {tuple(t.shape)}")
    return t


# Feature-Distillation-style two-band preset (our parameters, see docs/DEFENCE.md): kept band = the
# 15 lowest zig-zag luma bands / 6 lowest chroma bands (u + v <= 4 / u + v <= 2), step 10; the rest 80.
def fd_table(low_step: float = 10.0, high_step: float = 80.0, luma_diag: int = 4, chroma_diag: int = 2) -> Tensor:
    """Two-band base table with a fixed low-frequency kept band (``u + v <= diag``), as in Feature Distillation.

    Args:
        low_step: step in the kept band; high_step: step everywhere else.
        luma_diag, chroma_diag: the kept band is ``u + v <= diag`` in each plane.

    Returns:
        (2, 8, 8) float32 base table.

    Example:
        >>> fd_table()[0, 0, :6]
        tensor([10., 10., 10., 10., 10., 80.])
    """
    u = torch.arange(8).view(8, 1)
    v = torch.arange(8).view(1, 8)
    planes = [torch.where(u + v <= d, float(low_step), float(high_step)) for d in (luma_diag, chroma_diag)]
    return torch.stack(planes).to(torch.float32)
