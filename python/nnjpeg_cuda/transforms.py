"""``nn.Module`` wrappers: a JPEG layer / torchvision-style transform, and random-quality augmentation."""

from __future__ import annotations

import numbers
from typing import Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from . import codec, tables

__all__ = ["JPEG", "RandomJPEG"]


class JPEG(nn.Module):
    """JPEG-style round trip as a layer: ``nn.Sequential(JPEG(quality=50), model)`` defends ``model``.

    Also a torchvision-style transform for single (C, H, W) images.

    Args:
        quality: IJG quality in 1..100.
        table: preset name or (2, 8, 8) base tables (see :func:`nnjpeg_cuda.roundtrip`).
        subsampling, color, grad, validate: as in :func:`nnjpeg_cuda.roundtrip`.

    Shape:
        - input: (C, H, W) or (N, C, H, W), uint8 or float in [0, 1].
        - output: same as input.

    Example:
        >>> import torch
        >>> from nnjpeg_cuda import JPEG
        >>> layer = JPEG(quality=50, table="standard")
        >>> layer(torch.rand(2, 3, 32, 32)).shape
        torch.Size([2, 3, 32, 32])
    """

    def __init__(self, quality: int = 75, table: tables.TableLike = "standard", subsampling: str = "4:4:4",
                 color: str = "ycbcr", grad: str = "bpda", validate: bool = True):
        super().__init__()
        if isinstance(quality, bool) or not isinstance(quality, numbers.Integral):
            raise TypeError(f"JPEG(quality=...) takes an int in 1..100, got {type(quality).__name__}")
        quality = int(quality)
        codec.ops.check_options(subsampling, color, grad, 3)
        self.quality, self.subsampling, self.color, self.grad, self.validate = quality, subsampling, color, grad, validate
        self.table_name = table if isinstance(table, str) else "custom"
        # Scaled once here, so forward does no data-dependent checks (torch.compile(fullgraph=True) works).
        self.register_buffer("steps", tables.scale(tables.get_base(table), quality), persistent=False)

    def forward(self, images: Tensor) -> Tensor:
        x, unbatched = codec._as_batch(images)
        steps = self.steps.to(x.device)
        steps = (steps.expand(x.shape[0], 2, 8, 8) if steps.dim() == 3 else steps).unsqueeze(0)
        # squeeze, not [0], as in codec.roundtrip: the backward of [0] zero-fills and copies a K-level gradient.
        out = codec.ops.forward_levels(codec._kernel_dtype(x), steps, self.subsampling, self.color, self.grad,
                                       self.validate).squeeze(0).to(x.dtype)
        return out[0] if unbatched else out

    def extra_repr(self) -> str:
        return (f"quality={self.quality}, table={self.table_name!r}, subsampling={self.subsampling!r}, "
                f"color={self.color!r}, grad={self.grad!r}")


class RandomJPEG(nn.Module):
    """Round trip at a quality drawn uniformly per image from ``quality_range`` (data augmentation).

    Args:
        quality_range: (low, high) inclusive, within 1..100.
        table, subsampling, color, grad: as in :class:`JPEG`.
        generator: optional ``torch.Generator`` for reproducible draws.

    Shape:
        - input: (C, H, W) or (N, C, H, W); output: same.

    Example:
        >>> import torch
        >>> from nnjpeg_cuda import RandomJPEG
        >>> RandomJPEG((30, 90))(torch.rand(8, 3, 32, 32)).shape
        torch.Size([8, 3, 32, 32])
    """

    def __init__(self, quality_range: Union[Tuple[int, int], Sequence[int]] = (30, 90),
                 table: tables.TableLike = "standard", subsampling: str = "4:4:4", color: str = "ycbcr",
                 grad: str = "bpda", generator: torch.Generator = None):
        super().__init__()
        low, high = (int(v) for v in quality_range)
        if not 1 <= low <= high <= 100:
            raise ValueError(f"quality_range must satisfy 1 <= low <= high <= 100, got {quality_range}")
        self.low, self.high = low, high
        self.table, self.subsampling, self.color, self.grad = table, subsampling, color, grad
        self.generator = generator

    def forward(self, images: Tensor) -> Tensor:
        x, unbatched = codec._as_batch(images)
        q = torch.randint(self.low, self.high + 1, (x.shape[0],), generator=self.generator)
        out = codec.roundtrip(x, q.to(x.device), self.table, self.subsampling, self.color, self.grad)
        return out[0] if unbatched else out

    def extra_repr(self) -> str:
        return f"quality_range=({self.low}, {self.high}), subsampling={self.subsampling!r}, grad={self.grad!r}"
