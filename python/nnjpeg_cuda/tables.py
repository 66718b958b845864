"""Quantization tables: the IJG base tables, quality scaling, presets and user tables.

Every table here is a *base* table of shape (2, 8, 8) (luma, chroma) in natural (row-major) order:
entry ``[c, u, v]`` is the step for vertical frequency u and horizontal frequency v. The quality
scaling of the IJG library turns a base table into the steps the codec uses, for any base table
(standard, NN-favoured, or your own).

Example:
    >>> from nnjpeg_cuda import tables
    >>> tables.standard(50)[0, 0, :4]
    tensor([16., 11., 10., 16.])
    >>> tables.scale(tables.STANDARD, 90).shape
    torch.Size([2, 8, 8])
"""

from __future__ import annotations

import numbers
from typing import Callable, Dict, Sequence, Union

import torch

__all__ = ["STANDARD", "standard", "scale", "quality_scale_factor", "get_base", "register_preset", "presets",
           "level_tables", "image_tables"]

# ITU T.81 Annex K, tables K.1 (luminance) and K.2 (chrominance), natural order.
_LUMA = [
    16, 11, 10, 16, 24, 40, 51, 61,
    12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77,
    24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101,
    72, 92, 95, 98, 112, 100, 103, 99,
]
_CHROMA = [
    17, 18, 24, 47, 99, 99, 99, 99,
    18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
]

#: The IJG / JPEG standard base tables, (2, 8, 8) float32 (luma, chroma).
STANDARD = torch.tensor([_LUMA, _CHROMA], dtype=torch.float32).reshape(2, 8, 8)

TableLike = Union[str, torch.Tensor]
_PRESETS: Dict[str, Callable[[], torch.Tensor]] = {"standard": lambda: STANDARD}


def register_preset(name: str, loader: Callable[[], torch.Tensor]) -> None:
    """Make ``table=name`` available everywhere a table is accepted.

    Args:
        name: preset name, e.g. ``"nn"``.
        loader: returns the (2, 8, 8) base table; called lazily, on each use.
    """
    _PRESETS[name] = loader
    _SCALED_CACHE.clear()


# Scaled tables of the built-in presets at an int quality, per device: a call with quality=75 on a small
# batch otherwise spends ~40% of its Python overhead rebuilding the same (2, 8, 8) table. Only built-in
# loaders are cached (a registered loader is documented to run on each use).
_SCALED_CACHE: Dict[tuple, torch.Tensor] = {}
_CACHED_PRESETS = ("standard", "nn", "fd")


def _cached_scaled_preset(name: str, quality: int, device) -> torch.Tensor:
    device = torch.device(device) if device is not None else torch.device("cpu")
    key = (name, int(quality), str(device))
    steps = _SCALED_CACHE.get(key)
    if steps is None:
        steps = scale(get_base(name, device), quality)
        if len(_SCALED_CACHE) < 1024:
            _SCALED_CACHE[key] = steps
    return steps


def presets() -> list:
    """Names accepted as ``table=...``."""
    return sorted(_PRESETS)


def _check_quality_values(q: torch.Tensor) -> None:
    if q.is_floating_point() and not bool(torch.all(q == torch.round(q))):
        raise ValueError("quality must be whole numbers in 1..100")
    if q.numel() and not bool(((q >= 1) & (q <= 100)).all()):
        raise ValueError(f"quality must be in 1..100, got values from {q.min().item()} to {q.max().item()}")


def quality_scale_factor(quality: Union[int, torch.Tensor]) -> torch.Tensor:
    """The IJG scale factor in percent: ``5000 // q`` below 50, else ``200 - 2q``.

    Args:
        quality: int in 1..100 or an integer tensor of qualities.

    Returns:
        Tensor of the same shape (float32).
    """
    q = torch.as_tensor(quality)
    if q.dtype == torch.bool or q.is_complex():
        raise TypeError(f"quality must be an integer or integer tensor, got {q.dtype}")
    _check_quality_values(q)
    q = q.to(torch.int64)
    return torch.where(q < 50, torch.div(5000, q, rounding_mode="floor"), 200 - 2 * q).to(torch.float32)


def scale(base: torch.Tensor, quality: Union[int, torch.Tensor]) -> torch.Tensor:
    """Scale a base table by an IJG quality, as libjpeg's ``jpeg_set_quality`` does (baseline: 1..255).

    Args:
        base: base table(s) (..., 8, 8), positive.
        quality: int in 1..100, or a tensor of N qualities (then ``base`` broadcasts against (N, 1, 1, 1)).

    Returns:
        ``clamp(floor((base * s + 50) / 100), 1, 255)`` as float32.

    Shape:
        base (2, 8, 8) and quality int -> (2, 8, 8); base (2, 8, 8) or (N, 2, 8, 8) and quality (N,) -> (N, 2, 8, 8).

    Example:
        >>> scale(STANDARD, 100).unique()
        tensor([1.])
    """
    s = quality_scale_factor(quality).to(base.device)
    if s.dim() == 1:
        s = s.view(-1, *([1] * (base.dim() if base.dim() == 3 else base.dim() - 1)))
    return torch.clamp(torch.floor((base.to(torch.float32) * s + 50) / 100), 1, 255)


def standard(quality: int = 75) -> torch.Tensor:
    """The standard JPEG tables at an IJG quality: (2, 8, 8) float32, what libjpeg uses for ``quality=q``."""
    return scale(STANDARD, quality)


def get_base(table: TableLike, device=None) -> torch.Tensor:
    """Resolve and validate a ``table`` argument into base tables, float32 on ``device``.

    Args:
        table: a preset name (see :func:`presets`), a (2, 8, 8) tensor, or (N, 2, 8, 8) (one per image).

    Returns:
        (2, 8, 8) or (N, 2, 8, 8) float32 tensor.
    """
    if isinstance(table, str):
        if table not in _PRESETS:
            raise ValueError(f"unknown table preset {table!r}; choose one of {presets()} or pass a (2, 8, 8) tensor")
        base = _PRESETS[table]()
    elif isinstance(table, torch.Tensor):
        base = table
    else:
        raise TypeError(f"table must be a preset name or a tensor, got {type(table).__name__}")
    if base.dim() not in (3, 4) or tuple(base.shape[-3:]) != (2, 8, 8):
        raise ValueError(f"table must have shape (2, 8, 8) or (N, 2, 8, 8), got {tuple(base.shape)}")
    if base.is_complex() or base.dtype == torch.bool:
        raise TypeError(f"table must be a real tensor, got {base.dtype}")
    base = base.to(device=device, dtype=torch.float32)
    if not bool(torch.isfinite(base).all()):
        raise ValueError("table contains NaN or Inf")
    if not bool((base > 0).all()):
        raise ValueError("table entries must be positive")
    return base


def image_tables(quality, table: TableLike, n: int, device=None) -> torch.Tensor:
    """Steps for one level: (N, 2, 8, 8) float32, from a quality (int or (N,) tensor) and a table.

    The result may be a broadcast view of a cached table: read it, do not write to it.
    """
    if isinstance(table, str) and table in _CACHED_PRESETS and isinstance(quality, numbers.Integral) \
            and not isinstance(quality, bool) and 1 <= quality <= 100 and (device is None or
                                                                        torch.device(device).type != "meta"):
        return _cached_scaled_preset(table, quality, device).expand(n, 2, 8, 8)
    base = get_base(table, device)
    if base.dim() == 4 and base.shape[0] != n:
        raise ValueError(f"per-image table has {base.shape[0]} entries for a batch of {n} images")
    if isinstance(quality, torch.Tensor) and quality.dim() > 0:
        if quality.dim() != 1 or quality.shape[0] != n:
            raise ValueError(f"per-image quality must have shape ({n},), got {tuple(quality.shape)}")
        if base.device.type != "meta" and quality.device != base.device:
            raise ValueError(f"per-image quality is on {quality.device}, images are on {base.device}")
    elif not isinstance(quality, (numbers.Integral, torch.Tensor)) or isinstance(quality, bool):
        raise TypeError(f"quality must be an int in 1..100 or a tensor of N ints, got {type(quality).__name__}")
    steps = scale(base, quality)
    return steps.expand(n, 2, 8, 8) if steps.dim() == 3 else steps


def level_tables(qualities: Union[Sequence[int], torch.Tensor], table: TableLike, n: int, device=None
                 ) -> torch.Tensor:
    """Steps for K levels: (K, N, 2, 8, 8) float32.

    Args:
        qualities: K ints, a (K,) tensor, or a (K, N) tensor (per level and image).
        table: as in :func:`get_base`.
        n: batch size.
    """
    if isinstance(qualities, torch.Tensor):
        if qualities.dim() not in (1, 2) or qualities.shape[0] == 0:
            raise ValueError(f"qualities must have shape (K,) or (K, N) with K >= 1, got {tuple(qualities.shape)}")
        # Entries stay tensors (0-dim for a (K,) tensor) so quality_scale_factor rejects bool or fractional values.
        per_level = [qualities[k] for k in range(qualities.shape[0])]
    else:
        per_level = list(qualities)
        if not per_level:
            raise ValueError("qualities must hold at least one level")
    per_image = [image_tables(q, table, n, device) for q in per_level]
    if n > 1 and all(t.stride(0) == 0 for t in per_image):
        # One table per level for every image: keep the image dimension broadcast (stride 0), which tells the
        # kernels that the images share their tables (the CPU one then fills its vectors across images).
        return torch.stack([t[0] for t in per_image]).unsqueeze(1).expand(-1, n, -1, -1, -1)
    return torch.stack(per_image)


# The table designer and the data-driven presets ("nn": shipped NN-favoured table, "fd": two-band table).
from .table_design import BandStats, analyze, band_sensitivity, design, fd_table, load_table_file  # noqa: E402

_NN_CACHE: list = []


def _nn_table() -> torch.Tensor:
    """The shipped NN-favoured table (``presets/nn_table.json``, see ``scripts/make_nn_table.py``), read once."""
    if not _NN_CACHE:
        _NN_CACHE.append(load_table_file())
    return _NN_CACHE[0].clone()


register_preset("nn", _nn_table)
register_preset("fd", fd_table)
__all__ += ["analyze", "design", "band_sensitivity", "BandStats", "fd_table", "load_table_file"]
