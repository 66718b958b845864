"""The round trip in plain PyTorch: the oracle every kernel is tested against.

Runs on any device and in float64. Follows ``DESIGN.md`` ("The round trip, exactly") step by step,
with none of the kernels' fusion, so that each step can be read and checked on its own.

Example:
    >>> import torch
    >>> from nnjpeg_cuda import reference
    >>> x = torch.rand(2, 3, 32, 32, dtype=torch.float64)
    >>> y = reference.roundtrip(x, quality=50)
    >>> y.shape, y.dtype
    (torch.Size([2, 3, 32, 32]), torch.float64)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from . import tables as _tables

__all__ = ["roundtrip", "roundtrip_multi", "decode_levels", "dct_matrix", "block_dct", "block_idct",
           "rgb_to_ycbcr", "ycbcr_to_rgb"]

# JFIF (BT.601 full range). Rows: Y, Cb, Cr from R, G, B. The inverse is its exact matrix inverse.
_RGB_TO_YCBCR = [
    [0.299, 0.587, 0.114],
    [-0.299 / 1.772, -0.587 / 1.772, 0.5],
    [0.5, -0.587 / 1.402, -0.114 / 1.402],
]
_YCBCR_TO_RGB = [
    [1.0, 0.0, 1.402],
    [1.0, -0.114 * 1.772 / 0.587, -0.299 * 1.402 / 0.587],
    [1.0, 1.772, 0.0],
]


def dct_matrix(dtype=torch.float64, device=None) -> torch.Tensor:
    """The 8x8 orthonormal DCT-II matrix D, with ``F = D @ f @ D.T`` for a block f."""
    k = torch.arange(8, dtype=torch.float64).unsqueeze(1)
    n = torch.arange(8, dtype=torch.float64).unsqueeze(0)
    d = torch.cos((2 * n + 1) * k * math.pi / 16) * math.sqrt(2 / 8)
    d[0] = math.sqrt(1 / 8)
    return d.to(dtype=dtype, device=device)


def _to_blocks(plane: torch.Tensor) -> torch.Tensor:
    """(..., H, W) with H, W multiples of 8 -> (..., H/8, W/8, 8, 8)."""
    *lead, h, w = plane.shape
    return plane.reshape(*lead, h // 8, 8, w // 8, 8).transpose(-3, -2)


def _from_blocks(blocks: torch.Tensor) -> torch.Tensor:
    *lead, bh, bw, _, _ = blocks.shape
    return blocks.transpose(-3, -2).reshape(*lead, bh * 8, bw * 8)


def block_dct(plane: torch.Tensor) -> torch.Tensor:
    """Blockwise 8x8 DCT of (..., H, W) planes (H, W multiples of 8) -> (..., H/8, W/8, 8, 8)."""
    d = dct_matrix(plane.dtype, plane.device)
    return d @ _to_blocks(plane) @ d.T


def block_idct(coef: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`block_dct`: (..., H/8, W/8, 8, 8) -> (..., H, W)."""
    d = dct_matrix(coef.dtype, coef.device)
    return _from_blocks(d.T @ coef @ d)


def rgb_to_ycbcr(rgb: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB on 0..255 -> YCbCr on 0..255 (Cb, Cr centred on 128)."""
    m = torch.tensor(_RGB_TO_YCBCR, dtype=rgb.dtype, device=rgb.device)
    ycc = torch.einsum("ij,njhw->nihw", m, rgb)
    return ycc + torch.tensor([0.0, 128.0, 128.0], dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)


def ycbcr_to_rgb(ycc: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_ycbcr` (not clamped)."""
    shift = torch.tensor([0.0, 128.0, 128.0], dtype=ycc.dtype, device=ycc.device).view(1, 3, 1, 1)
    m = torch.tensor(_YCBCR_TO_RGB, dtype=ycc.dtype, device=ycc.device)
    return torch.einsum("ij,njhw->nihw", m, ycc - shift)


def _pad_to(x: torch.Tensor, multiple: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x
    return F.pad(x, (0, pw, 0, ph), mode="replicate")


def _quantize(coef: torch.Tensor, steps: torch.Tensor, rounding: str) -> torch.Tensor:
    t = coef / steps
    if rounding == "round":
        r = torch.round(t)
    elif rounding == "ste":
        r = t + (torch.round(t) - t).detach()
    elif rounding == "smooth":
        r0 = torch.round(t)
        r = r0 + (t - r0) ** 3
    else:
        raise ValueError(f"unknown rounding {rounding!r}")
    return r * steps


def _codec_plane(plane: torch.Tensor, steps: torch.Tensor, rounding: str) -> torch.Tensor:
    """Level-shifted planes (N, P, H8, W8), steps (K, N, 8, 8) -> decoded planes (K, N, P, H8, W8)."""
    coef = block_dct(plane)  # (N, P, bh, bw, 8, 8)
    q = steps[:, :, None, None, None]  # (K, N, 1, 1, 1, 8, 8)
    return block_idct(_quantize(coef.unsqueeze(0), q, rounding))


def _fancy_upsample(c: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """libjpeg's triangular h2v2 upsampling of (..., ceil(h/2), ceil(w/2)) chroma -> (..., h, w)."""
    up = torch.cat([c[..., :1, :], c[..., :-1, :]], dim=-2)
    down = torch.cat([c[..., 1:, :], c[..., -1:, :]], dim=-2)
    rows = torch.stack([0.75 * c + 0.25 * up, 0.75 * c + 0.25 * down], dim=-2)
    rows = rows.reshape(*c.shape[:-2], 2 * c.shape[-2], c.shape[-1])
    left = torch.cat([rows[..., :1], rows[..., :-1]], dim=-1)
    right = torch.cat([rows[..., 1:], rows[..., -1:]], dim=-1)
    cols = torch.stack([0.75 * rows + 0.25 * left, 0.75 * rows + 0.25 * right], dim=-1)
    cols = cols.reshape(*rows.shape[:-1], 2 * rows.shape[-1])
    return cols[..., :h, :w]


def decode_levels(x255: torch.Tensor, steps: torch.Tensor, subsampling: str = "4:4:4", color: str = "ycbcr",
                  rounding: str = "round") -> torch.Tensor:
    """The round trip of pixels on the 0..255 scale, before the final clamp.

    Args:
        x255: (N, C, H, W) floating-point pixels in [0, 255]; C = 1 or 3.
        steps: (K, N, 2, 8, 8) quantization steps (luma, chroma) per level and image.
        subsampling: ``"4:4:4"`` or ``"4:2:0"`` (colour YCbCr images only).
        color: ``"ycbcr"`` or ``"rgb"`` (no colour transform; every channel uses the luma table).
        rounding: ``"round"`` (half to even), ``"ste"`` (round forward, identity backward) or ``"smooth"``.

    Returns:
        (K, N, C, H, W) decoded pixels on the 0..255 scale, not clamped.
    """
    n, c, h, w = x255.shape
    ycc = c == 3 and color == "ycbcr"
    if not ycc:
        planes = _pad_to(x255, 8) - 128
        dec = _codec_plane(planes, steps[:, :, 0], rounding)
        return dec[..., :h, :w] + 128
    ycbcr = rgb_to_ycbcr(x255) - 128
    if subsampling == "4:4:4":
        planes = _pad_to(ycbcr, 8)
        luma = _codec_plane(planes[:, :1], steps[:, :, 0], rounding)
        chroma = _codec_plane(planes[:, 1:], steps[:, :, 1], rounding)
        dec = torch.cat([luma, chroma], dim=2)[..., :h, :w]
    else:
        planes = _pad_to(ycbcr, 16)
        luma = _codec_plane(planes[:, :1], steps[:, :, 0], rounding)[..., :h, :w]
        sub = F.avg_pool2d(planes[:, 1:], 2)
        chroma = _codec_plane(sub, steps[:, :, 1], rounding)
        chroma = chroma[..., : (h + 1) // 2, : (w + 1) // 2]
        k = steps.shape[0]
        up = _fancy_upsample(chroma.reshape(k * n, 2, *chroma.shape[-2:]), h, w).reshape(k, n, 2, h, w)
        dec = torch.cat([luma, up], dim=2)
    flat = dec.reshape(-1, 3, h, w) + torch.tensor([128.0, 128.0, 128.0], dtype=dec.dtype,
                                                     device=dec.device).view(1, 3, 1, 1)
    return ycbcr_to_rgb(flat).reshape(dec.shape)


def _to_255(images: torch.Tensor, compute_dtype: torch.dtype) -> torch.Tensor:
    x = images.to(compute_dtype)
    if not images.is_floating_point():
        return x
    return torch.nan_to_num(x * 255, nan=0.0, posinf=255.0, neginf=0.0).clamp(0, 255)


def _from_255(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    v = v.clamp(0, 255)
    if like.is_floating_point():
        return (v / 255).to(like.dtype)
    return torch.round(v).to(like.dtype)


def roundtrip_multi(images: torch.Tensor, qualities, table="standard", subsampling: str = "4:4:4",
                    color: str = "ycbcr", grad: str = "bpda", compute_dtype: torch.dtype = torch.float64
                    ) -> torch.Tensor:
    """Reference version of :func:`nnjpeg_cuda.roundtrip_multi`: (K, N, C, H, W) for K quality levels."""
    x = images.unsqueeze(0) if images.dim() == 3 else images
    steps = _tables.level_tables(qualities, table, x.shape[0], device=x.device)
    rounding = {"bpda": "round", "ste": "ste", "smooth": "smooth"}[grad]
    x255 = _to_255(x, compute_dtype)
    out = _from_255(decode_levels(x255, steps.to(compute_dtype), subsampling, color, rounding), x)
    if grad == "bpda" and x.is_floating_point():
        out = x.unsqueeze(0) + (out - x.unsqueeze(0)).detach()  # identity gradient
    return out if images.dim() == 4 else out[:, 0]


def roundtrip(images: torch.Tensor, quality=75, table="standard", subsampling: str = "4:4:4",
              color: str = "ycbcr", grad: str = "bpda", compute_dtype: torch.dtype = torch.float64
              ) -> torch.Tensor:
    """Reference version of :func:`nnjpeg_cuda.roundtrip` (same arguments, computed in ``compute_dtype``)."""
    x = images.unsqueeze(0) if images.dim() == 3 else images
    if isinstance(quality, torch.Tensor) and quality.dim() == 1:
        steps = _tables.image_tables(quality, table, x.shape[0], device=x.device).unsqueeze(0)
    else:
        steps = _tables.level_tables([quality], table, x.shape[0], device=x.device)
    rounding = {"bpda": "round", "ste": "ste", "smooth": "smooth"}[grad]
    x255 = _to_255(x, compute_dtype)
    out = _from_255(decode_levels(x255, steps.to(compute_dtype), subsampling, color, rounding), x)[0]
    if grad == "bpda" and x.is_floating_point():
        out = x + (out - x).detach()
    return out if images.dim() == 4 else out[0]
