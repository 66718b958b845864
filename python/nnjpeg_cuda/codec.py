"""The public round-trip functions: argument checking, batching and dtypes around ``nnjpeg::roundtrip``."""

from __future__ import annotations

from typing import Callable, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from . import ops, tables

__all__ = ["roundtrip", "roundtrip_multi"]

SUPPORTED_DTYPES = (torch.uint8, torch.float16, torch.bfloat16, torch.float32, torch.float64)
QualityLike = Union[int, Tensor]


def _as_batch(images) -> Tuple[Tensor, bool]:
    """Check the image tensor's type, rank, channels, size and dtype; return (N, C, H, W) and 'was unbatched'."""
    if not isinstance(images, Tensor):
        raise TypeError(f"images must be a torch.Tensor, got {type(images).__name__}")
    if images.dim() not in (3, 4):
        raise ValueError(f"images must have shape (C, H, W) or (N, C, H, W), got {tuple(images.shape)}")
    if images.dtype not in SUPPORTED_DTYPES:
        raise TypeError(f"unsupported dtype {images.dtype}: use uint8 (0..255) or float16/bfloat16/float32/float64 "
                        "(0..1)")
    x = images.unsqueeze(0) if images.dim() == 3 else images
    if x.shape[1] not in (1, 3):
        raise ValueError(f"images must have 1 (gray) or 3 (RGB) channels, got {x.shape[1]} "
                         f"(shape {tuple(images.shape)}; channels come before height and width)")
    if x.shape[2] < 1 or x.shape[3] < 1:
        raise ValueError(f"images must be at least 1x1 pixels, got {tuple(x.shape[2:])}")
    return x, images.dim() == 3


def _kernel_dtype(x: Tensor) -> Tensor:
    # The kernels read uint8, float32 and float64; half precision goes through float32.
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def _check_tensor_device(name: str, value, device: torch.device) -> None:
    if isinstance(value, Tensor) and value.dim() > 0 and value.device != device:
        raise ValueError(f"{name} is on {value.device}, images are on {device}; move it to the images' device")


def _into(out, images: Tensor, x: Tensor, steps: Tensor, subsampling: str, color: str, grad: str, validate: bool,
          want_shape: Tuple[int, ...], as_levels: Callable[[Tensor], Tensor]) -> Tensor:
    """The round trip of batch x written into the caller's ``out`` (shape want_shape, images' dtype/device).

    as_levels: out -> its (K, N, C, H, W) view, the op's layout. Half precision runs in float32 and is copied in.
    """
    if not isinstance(out, Tensor):
        raise TypeError(f"out must be a torch.Tensor, got {type(out).__name__}")
    if tuple(out.shape) != want_shape:
        raise ValueError(f"out must have shape {want_shape}, got {tuple(out.shape)}")
    ops.check_out_like(out, images)
    if torch.is_grad_enabled() and (images.requires_grad or out.requires_grad):
        raise RuntimeError("out= does not support automatic differentiation: call without out= to get gradients "
                           "(or under torch.no_grad())")
    kx, levels_first = _kernel_dtype(x), as_levels(out)
    if kx.dtype != x.dtype:  # float16 / bfloat16: the kernels compute in float32
        levels_first.copy_(ops.roundtrip_levels(kx, steps, subsampling, color, grad, validate))
    else:
        ops.roundtrip_levels_out(kx, steps, subsampling, color, grad, validate, levels_first)
    return out


def roundtrip(images: Tensor, quality: QualityLike = 75, table: tables.TableLike = "standard",
              subsampling: str = "4:4:4", color: str = "ycbcr", grad: str = "bpda", validate: bool = True,
              layout: str = "CHW", out: Optional[Tensor] = None) -> Tensor:
    """JPEG-style round trip (colour transform, 8x8 DCT, quantize, dequantize, IDCT, back) of a batch.

    Args:
        images: float images in [0, 1] (float16, bfloat16, float32, float64) or uint8 in [0, 255];
            contiguous or channels_last; on CPU, CUDA (compiled kernels) or any other device (reference).
        quality: IJG quality in 1..100, or a tensor of N qualities (one per image).
        table: base quantization tables: a preset name (``"standard"``, see :func:`nnjpeg_cuda.tables.presets`),
            a (2, 8, 8) tensor (luma, chroma), or (N, 2, 8, 8) (one per image). Quality scaling applies.
        subsampling: ``"4:4:4"`` or ``"4:2:0"`` (chroma averaged over 2x2, upsampled as libjpeg does).
        color: ``"ycbcr"`` (JFIF colour transform) or ``"rgb"`` (each channel coded with the luma table).
        grad: gradient for attacks and training: ``"bpda"`` (identity), ``"ste"`` (straight-through rounding
            through the exact linear parts) or ``"smooth"`` (rounding replaced by round(t) + (t - round(t))^3
            in the forward as well).
        validate: check pixel values (NaN, Inf, range) and table values. With ``False`` the kernels map NaN
            to 0 and clamp to the valid range instead of raising; it saves one reduction over the input.
        layout: ``"CHW"`` (torch's (N, C, H, W)) or ``"HWC"`` ((H, W), (H, W, C) or (N, H, W, C), as image
            libraries hold images). NumPy arrays (CPU kernel) and CuPy arrays (CUDA kernel, CuPy's current
            stream) are accepted too and come back as the same array type, without copies: see
            :mod:`nnjpeg_cuda.arrays`.
        out: a tensor of the images' shape, dtype and device to write the result into (any strides, not
            overlapping the images), as torch's ``out=``: no autograd. A buffer reused from call to call
            skips allocating and zeroing a fresh output (up to 1.4x on 1024x1024 batches on the development
            machine). Torch tensors, layout "CHW".

    Returns:
        Tensor of the input's shape, dtype, device and memory format (``out`` itself when given). Float
        output is not rounded to 256 levels; uint8 output is rounded half to even.

    Shape:
        - images: (C, H, W) or (N, C, H, W), C = 1 or 3, any H, W >= 1.
        - output: same as images.

    Example:
        >>> import torch, nnjpeg_cuda
        >>> x = torch.rand(4, 3, 32, 32)
        >>> y = nnjpeg_cuda.roundtrip(x, quality=50)
        >>> y.shape
        torch.Size([4, 3, 32, 32])
    """
    if layout != "CHW" or not isinstance(images, Tensor):
        if out is not None:
            raise TypeError("out= takes torch tensors with layout='CHW'")
        from . import arrays  # NumPy / CuPy arrays and HWC layouts; torch tensors in CHW go straight on
        return arrays.roundtrip(images, quality, table, subsampling, color, grad, validate, layout=layout)
    x, unbatched = _as_batch(images)
    ops.check_options(subsampling, color, grad, x.shape[1])
    _check_tensor_device("quality", quality, x.device)
    _check_tensor_device("table", table, x.device)
    steps = tables.image_tables(quality, table, x.shape[0], device=x.device).unsqueeze(0)
    if out is not None:
        return _into(out, images, x, steps, subsampling, color, grad, validate, tuple(images.shape),
                     lambda o: (o.unsqueeze(0) if unbatched else o).unsqueeze(0))
    # squeeze, not [0]: its backward is a view of the gradient, where [0] would zero-fill and copy a K-level one.
    out = ops.forward_levels(_kernel_dtype(x), steps, subsampling, color, grad, validate).squeeze(0)
    out = out.to(x.dtype)
    return out[0] if unbatched else out


def roundtrip_multi(images: Tensor, qualities: Union[Sequence[int], Tensor], table: tables.TableLike = "standard",
                    subsampling: str = "4:4:4", color: str = "ycbcr", grad: str = "bpda", validate: bool = True,
                    layout: str = "CHW", out: Optional[Tensor] = None) -> Tensor:
    """Round trip at K quality levels at once: the input is read once and the forward DCT is shared.

    Args:
        images: as in :func:`roundtrip`.
        qualities: K ints in 1..100, a (K,) tensor, or a (K, N) tensor (per level and image).
        table, subsampling, color, grad, validate, layout: as in :func:`roundtrip`. Gradients sum over the
            levels. NumPy / CuPy arrays come back as the same array type, shape (K, *images.shape).
        out: a (K, *images.shape) tensor to write the result into, as in :func:`roundtrip`.

    Returns:
        (K, N, C, H, W) tensor (or (K, C, H, W) for an unbatched input), the input's dtype and device
        (``out`` itself when given).

    Example:
        >>> import torch, nnjpeg_cuda
        >>> x = torch.rand(2, 3, 32, 32)
        >>> nnjpeg_cuda.roundtrip_multi(x, [90, 50, 10]).shape
        torch.Size([3, 2, 3, 32, 32])
    """
    if layout != "CHW" or not isinstance(images, Tensor):
        if out is not None:
            raise TypeError("out= takes torch tensors with layout='CHW'")
        from . import arrays
        return arrays.roundtrip_multi(images, qualities, table, subsampling, color, grad, validate, layout=layout)
    x, unbatched = _as_batch(images)
    ops.check_options(subsampling, color, grad, x.shape[1])
    _check_tensor_device("qualities", qualities, x.device)
    _check_tensor_device("table", table, x.device)
    steps = tables.level_tables(qualities, table, x.shape[0], device=x.device)
    if out is not None:
        return _into(out, images, x, steps, subsampling, color, grad, validate, (steps.shape[0], *images.shape),
                     lambda o: o.unsqueeze(1) if unbatched else o)
    out = ops.forward_levels(_kernel_dtype(x), steps, subsampling, color, grad, validate).to(x.dtype)
    return out[:, 0] if unbatched else out
