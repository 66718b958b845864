"""The torch ops ``nnjpeg::roundtrip`` (with ``nnjpeg::roundtrip_out`` and ``nnjpeg::roundtrip_ste``),
``nnjpeg::roundtrip_backward`` and ``nnjpeg::roundtrip_backward_ste``.

Registered with ``torch.library.custom_op``: each has a fake implementation (so ``torch.compile`` traces
through it without running it) and the forwards have autograd (but ``nnjpeg::roundtrip_out``, the same
forward into a caller's tensor; ``nnjpeg::roundtrip_ste`` is the CPU "ste" forward that also returns the
clamp summary its backward uses). CPU and CUDA tensors run the compiled
kernels; tensors on other devices (or a build without the CUDA kernels) fall back to the pure-PyTorch
reference, with the same semantics.

These are the low-level ops: they take quantization *steps*, already scaled, per level and image.
Most code wants :func:`nnjpeg_cuda.roundtrip` instead.
"""

from __future__ import annotations

import warnings
from typing import Optional, Tuple

import torch
from torch import Tensor

from . import _kernel, cpu_cache, reference

__all__ = ["roundtrip_levels", "roundtrip_levels_out", "roundtrip_ste", "forward_levels", "roundtrip_backward",
           "roundtrip_backward_ste", "SUBSAMPLINGS", "COLORS", "GRADS"]

SUBSAMPLINGS = ("4:4:4", "4:2:0")
COLORS = ("ycbcr", "rgb")
GRADS = ("bpda", "ste", "smooth")
# Pixels a hair outside [0, 1] (float rounding in a preprocessing pipeline) are accepted and clamped.
RANGE_TOLERANCE = 1e-5


def check_options(subsampling: str, color: str, grad: str, channels: int) -> None:
    """Raise ValueError for an unknown or contradictory option."""
    if subsampling not in SUBSAMPLINGS:
        raise ValueError(f"subsampling must be one of {SUBSAMPLINGS}, got {subsampling!r}")
    if color not in COLORS:
        raise ValueError(f"color must be one of {COLORS}, got {color!r}")
    if grad not in GRADS:
        raise ValueError(f"grad must be one of {GRADS}, got {grad!r}")
    if color == "rgb" and subsampling != "4:4:4" and channels == 3:
        raise ValueError("color='rgb' has no chroma planes to subsample: use subsampling='4:4:4'")


def _check_op_args(images: Tensor, steps: Tensor, subsampling: str, color: str, grad: str) -> None:
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must have shape (N, C, H, W) with C = 1 or 3, got {tuple(images.shape)}")
    if images.dtype not in _kernel.KERNEL_DTYPES:
        raise TypeError(f"nnjpeg::roundtrip takes uint8, float32 or float64 images, got {images.dtype}")
    if images.shape[2] < 1 or images.shape[3] < 1:
        raise ValueError(f"images must be at least 1x1, got {tuple(images.shape[2:])}")
    if steps.dim() != 5 or tuple(steps.shape[2:]) != (2, 8, 8) or steps.shape[1] != images.shape[0] \
            or steps.shape[0] < 1:
        raise ValueError(f"steps must have shape (K, {images.shape[0]}, 2, 8, 8), got {tuple(steps.shape)}")
    if steps.dtype != torch.float32:
        raise TypeError(f"steps must be float32, got {steps.dtype}")
    if steps.device != images.device:
        raise ValueError(f"steps are on {steps.device}, images on {images.device}")
    check_options(subsampling, color, grad, images.shape[1])


def check_pixel_values(images: Tensor) -> None:
    """Raise ValueError for NaN/Inf or floats outside [0, 1] (one reduction over the images)."""
    if not images.is_floating_point() or images.numel() == 0:
        return
    lo, hi = torch.aminmax(images)
    check_pixel_range(float(lo), float(hi))


def check_pixel_range(lo: float, hi: float) -> None:
    """Raise ValueError unless [lo, hi], the range of float pixels (NaN if any is NaN), fits [0, 1]."""
    if lo != lo or hi != hi:
        raise ValueError("images contain NaN; pass finite pixels in [0, 1] (or validate=False to map NaN to 0)")
    if lo < -RANGE_TOLERANCE or hi > 1 + RANGE_TOLERANCE:
        raise ValueError(f"float images must lie in [0, 1], got values from {lo} to {hi} "
                         "(Inf included); uint8 images take 0..255")


def _check_step_values(steps: Tensor) -> None:
    # Broadcast (stride-0) dimensions repeat the same values: check each distinct element once (an
    # expanded (1, 4096, 2, 8, 8) table took 55 ms to check elementwise, 3x the kernel on CIFAR batches).
    steps = steps[tuple(slice(0, 1) if st == 0 else slice(None) for st in steps.stride())]
    if steps.numel():
        lo, hi = torch.stack(torch.aminmax(steps)).tolist()  # one sync; NaN propagates and fails lo >= 1
        if not (lo >= 1 and hi < float("inf")):
            raise ValueError("quantization steps must be finite and >= 1")


def empty_levels(images: Tensor, levels: int, cached: bool = False) -> Tensor:
    """Uninitialised (K, N, C, H, W) output whose levels keep the input's memory format.

    cached: a CPU output comes from the CPU output cache (``cpu_cache.py``; the real implementations).
    """
    n, c, h, w = images.shape
    channels_last = images.is_contiguous(memory_format=torch.channels_last) and not images.is_contiguous()
    shape = (levels, n, h, w, c) if channels_last else (levels, n, c, h, w)
    out = _empty(images, shape, cached)
    return out.permute(0, 1, 4, 2, 3) if channels_last else out


def _empty(images: Tensor, shape: Tuple[int, ...], cached: bool) -> Tensor:
    if cached and images.device.type == "cpu":
        return cpu_cache.empty(shape, images.dtype)
    return images.new_empty(shape)


def empty_grad_in(images: Tensor) -> Tensor:
    """Uninitialised contiguous gradient for images (a CPU one from the CPU output cache)."""
    return _empty(images, tuple(images.shape), cached=True)


def _reference_forward(images: Tensor, steps: Tensor, subsampling: str, color: str, grad: str) -> Tensor:
    compute = torch.float64 if images.dtype == torch.float64 else torch.float32
    x255 = reference._to_255(images, compute)
    rounding = "smooth" if grad == "smooth" else "round"
    return reference._from_255(reference.decode_levels(x255, steps.to(compute), subsampling, color, rounding),
                               images)


def _forward_into(images: Tensor, steps: Tensor, out: Tensor, subsampling: str, color: str, grad: str,
                  validate: bool, clamp_summary: Optional[Tensor] = None, pass_mask: Optional[Tensor] = None
                  ) -> None:
    """The forward of the ops: checks (as asked) and the kernel (or the reference) into ``out`` (and the CPU
    kernel's clamp summary and pass masks into ``clamp_summary`` and ``pass_mask``)."""
    # On CPU the kernel can check the pixels as it reads them (one pass over the input instead of two):
    # the output is then discarded if they are invalid (the kernel maps NaN to 0 and clamps, never crashes).
    fold = validate and images.is_floating_point() and images.device.type == "cpu" \
        and _kernel.has_kernel(images.device)
    if validate:
        _check_step_values(steps)
        if not fold:
            check_pixel_values(images)
    if images.shape[0] == 0:
        return
    if _kernel.has_kernel(images.device):
        seen = _kernel.forward(images, steps, out, subsampling, color, grad, want_range=fold,
                               clamp_summary=clamp_summary, pass_mask=pass_mask)
        if fold:
            if seen is None:  # this path (e.g. 4:2:0, float64, scalar ISA) does not fold: check separately
                check_pixel_values(images)
            else:
                check_pixel_range(*seen)
    else:
        warn_if_reference_serves(images.device)
        out.copy_(_reference_forward(images, steps, subsampling, color, grad))


def warn_if_reference_serves(device: torch.device) -> None:
    """Warns (once per process, Python's default filter) where CUDA tensors meet a build without the CUDA
    kernels: the pure-PyTorch reference then serves them, correct but many times slower, which a user timing
    or training on a GPU would otherwise not notice."""
    if device.type == "cuda" and not _kernel.cuda_built():
        warnings.warn("nnjpeg_cuda was built without its CUDA kernels (no nvcc at build time): CUDA tensors run "
                      "the pure-PyTorch reference, many times slower; rebuild with NNJPEG_CUDA=ON",
                      RuntimeWarning, stacklevel=2)


@torch.library.custom_op("nnjpeg::roundtrip", mutates_args=())
def roundtrip_levels(images: Tensor, steps: Tensor, subsampling: str, color: str, grad: str,
                     validate: bool) -> Tensor:
    """(N, C, H, W) images and (K, N, 2, 8, 8) steps -> (K, N, C, H, W) round-tripped images."""
    _check_op_args(images, steps, subsampling, color, grad)
    out = empty_levels(images, steps.shape[0], cached=True)
    _forward_into(images, steps, out, subsampling, color, grad, validate)
    return out


def _spans_overlap(a: Tensor, b: Tensor) -> bool:
    """True when the memory spans of a and b (first to last element) share a byte."""
    def span(t: Tensor):
        last = sum((size - 1) * stride for size, stride in zip(t.shape, t.stride())) if t.numel() else -1
        start = t.data_ptr()
        return start, start + (last + 1) * t.element_size()

    (a0, a1), (b0, b1) = span(a), span(b)
    return a.device == b.device and a0 < b1 and b0 < a1


def check_out_like(out: Tensor, images: Tensor) -> None:
    """Raise unless an ``out=`` tensor has the images' dtype and device (its shape is the caller's to check)."""
    if out.dtype != images.dtype:
        raise TypeError(f"out must have the images' dtype {images.dtype}, got {out.dtype}")
    if out.device != images.device:
        raise ValueError(f"out is on {out.device}, images are on {images.device}")


def _check_out(images: Tensor, steps: Tensor, out: Tensor) -> None:
    levels = (steps.shape[0], *images.shape)
    if tuple(out.shape) != levels:
        raise ValueError(f"out must have shape {levels}, got {tuple(out.shape)}")
    check_out_like(out, images)


@torch.library.custom_op("nnjpeg::roundtrip_out", mutates_args=("out",))
def roundtrip_levels_out(images: Tensor, steps: Tensor, subsampling: str, color: str, grad: str, validate: bool,
                         out: Tensor) -> None:
    """``nnjpeg::roundtrip`` into a caller's (K, N, C, H, W) tensor ``out`` (any strides, no autograd).

    A reused ``out`` skips allocating and zeroing a fresh output (csrc/cpu/output_pages.h). ``out`` must not
    overlap ``images``; after a ValueError (invalid pixels) its contents are unspecified.
    """
    _check_op_args(images, steps, subsampling, color, grad)
    _check_out(images, steps, out)
    if images.numel() and out.numel() and _spans_overlap(images, out):
        raise ValueError("out must not overlap images (the kernel reads each block after others were written)")
    _forward_into(images, steps, out, subsampling, color, grad, validate)


@roundtrip_levels_out.register_fake
def _roundtrip_levels_out_fake(images, steps, subsampling, color, grad, validate, out):
    _check_op_args(images, steps, subsampling, color, grad)
    _check_out(images, steps, out)


@roundtrip_levels.register_fake
def _roundtrip_levels_fake(images, steps, subsampling, color, grad, validate):
    _check_op_args(images, steps, subsampling, color, grad)
    return empty_levels(images, steps.shape[0])


def _reference_backward(grad_out: Tensor, images: Tensor, steps: Tensor, subsampling: str, color: str,
                        grad: str) -> Tensor:
    # torch.func.vjp keeps this usable inside a traced backward (torch.compile) as well as in eager mode.
    compute = torch.float64 if images.dtype == torch.float64 else torch.float32

    def forward(x):
        v = reference.decode_levels(reference._to_255(x, compute), steps.to(compute), subsampling, color, grad)
        return reference._from_255(v, x)

    _, vjp = torch.func.vjp(forward, images.detach().to(compute))
    (g,) = vjp(grad_out.to(compute))
    return g.to(images.dtype)


def kernel_has_backward(images: Tensor, subsampling: str, color: str) -> bool:
    """True when a compiled backward kernel serves this call (every mode, on CPU and CUDA tensors)."""
    return _kernel.has_kernel(images.device)


@torch.library.custom_op("nnjpeg::roundtrip_backward", mutates_args=())
def roundtrip_backward(grad_out: Tensor, images: Tensor, steps: Tensor, subsampling: str, color: str,
                       grad: str) -> Tensor:
    """Gradient of ``nnjpeg::roundtrip`` wrt images for grad = "ste" or "smooth" (summed over levels).

    The compiled kernels cover every mode on CPU and CUDA tensors; the autograd formula sends devices
    without a kernel through the reference instead (``_reference_backward``), outside any custom op.
    """
    _check_op_args(images, steps, subsampling, color, grad)
    if grad not in ("ste", "smooth"):
        raise ValueError(f"roundtrip_backward computes 'ste' and 'smooth' gradients, got {grad!r}")
    if not images.is_floating_point():
        raise TypeError("gradients need floating-point images")
    if not kernel_has_backward(images, subsampling, color):
        raise ValueError(f"no backward kernel for {images.device.type} tensors (CPU and CUDA only)")
    grad_in = empty_grad_in(images)
    if images.shape[0]:
        _kernel.backward(grad_out.to(images.dtype), images, steps, grad_in, subsampling, color, grad)
    return grad_in


@roundtrip_backward.register_fake
def _roundtrip_backward_fake(grad_out, images, steps, subsampling, color, grad):
    return torch.empty_like(images, memory_format=torch.contiguous_format)


def clamp_summary_shape(images: Tensor, levels: int) -> Tuple[int, int, int, int]:
    """(K, N, ceil(H/8), ceil(W/8)): one byte per block and level (csrc/include/nnjpeg/params.h)."""
    n, _, h, w = images.shape
    return levels, n, (h + 7) // 8, (w + 7) // 8


def pass_mask_shape(images: Tensor, levels: int) -> Tuple[int, int, int, int, int]:
    """(K, N, C, ceil(H/8), ceil(W/8)): one 64-bit word per block, channel and level (params.h)."""
    n, c, h, w = images.shape
    return levels, n, c, (h + 7) // 8, (w + 7) // 8


def _summarizes(images: Tensor, subsampling: str, color: str) -> bool:
    # The CPU kernel writes clamp summaries for float 4:4:4 / grayscale / plain RGB.
    return (images.device.type == "cpu" and images.is_floating_point() and _kernel.has_kernel(images.device)
            and not _kernel.uses_420(images.shape[1], subsampling, color))


@torch.library.custom_op("nnjpeg::roundtrip_ste", mutates_args=())
def roundtrip_ste(images: Tensor, steps: Tensor, subsampling: str, color: str, validate: bool
                  ) -> Tuple[Tensor, Tensor, Tensor]:
    """``nnjpeg::roundtrip`` with grad = "ste" on the CPU, plus each block's clamp summary and pass masks.

    The summary (K, N, ceil(H/8), ceil(W/8)) uint8 (bits in csrc/include/nnjpeg/params.h) lets the backward
    skip the output wherever no pixel was clamped; the pass masks (K, N, C, ceil(H/8), ceil(W/8)) int64, one
    bit per pixel (bit r * 8 + c of a block's word: its pixel was not clamped), tell it which pixels let the
    gradient through, so that it neither reads the output nor recomputes a block (ste_backward.h). Same
    output and same gradient as ``nnjpeg::roundtrip``, bitwise; CPU float 4:4:4, grayscale or plain RGB only.
    """
    _check_op_args(images, steps, subsampling, color, "ste")
    if not images.is_floating_point():
        raise TypeError("gradients need floating-point images")
    if not _summarizes(images, subsampling, color):
        raise ValueError("nnjpeg::roundtrip_ste takes CPU images without 4:2:0; use nnjpeg::roundtrip")
    out = empty_levels(images, steps.shape[0], cached=True)
    summary = torch.empty(clamp_summary_shape(images, steps.shape[0]), dtype=torch.uint8)
    pass_mask = cpu_cache.empty(pass_mask_shape(images, steps.shape[0]), torch.int64)
    _forward_into(images, steps, out, subsampling, color, "ste", validate, clamp_summary=summary,
                  pass_mask=pass_mask)
    return out, summary, pass_mask


@roundtrip_ste.register_fake
def _roundtrip_ste_fake(images, steps, subsampling, color, validate):
    _check_op_args(images, steps, subsampling, color, "ste")
    return (empty_levels(images, steps.shape[0]),
            images.new_empty(clamp_summary_shape(images, steps.shape[0]), dtype=torch.uint8),
            images.new_empty(pass_mask_shape(images, steps.shape[0]), dtype=torch.int64))


def forward_levels(images: Tensor, steps: Tensor, subsampling: str, color: str, grad: str, validate: bool) -> Tensor:
    """``nnjpeg::roundtrip``, or ``nnjpeg::roundtrip_ste`` (same output) for a CPU "ste" call whose gradient
    will be taken: its clamp summary spares the backward most of its work. What the public functions call."""
    if grad == "ste" and torch.is_grad_enabled() and images.requires_grad and _summarizes(images, subsampling, color):
        return roundtrip_ste(images, steps, subsampling, color, validate)[0]
    return roundtrip_levels(images, steps, subsampling, color, grad, validate)


def ste_from_output(images: Tensor, subsampling: str, color: str, grad: str) -> bool:
    """True when the "ste" gradient comes from the saved output (``nnjpeg::roundtrip_backward_ste``)."""
    return (grad == "ste" and images.is_floating_point() and _kernel.has_kernel(images.device)
            and not _kernel.uses_420(images.shape[1], subsampling, color))


def _check_ste_args(grad_out: Tensor, output: Tensor, images: Tensor, steps: Tensor, subsampling: str,
                    color: str, clamp_summary: Optional[Tensor] = None, pass_mask: Optional[Tensor] = None
                    ) -> None:
    _check_op_args(images, steps, subsampling, color, "ste")
    if _kernel.uses_420(images.shape[1], subsampling, color):
        raise ValueError("roundtrip_backward_ste covers 4:4:4, grayscale and plain RGB; 4:2:0 uses roundtrip_backward")
    if not images.is_floating_point():
        raise TypeError("gradients need floating-point images")
    levels = (steps.shape[0], *images.shape)
    for name, t in (("grad_out", grad_out), ("output", output)):
        if tuple(t.shape) != levels:
            raise ValueError(f"{name} must have shape {levels}, got {tuple(t.shape)}")
        if t.device != images.device:
            raise ValueError(f"{name} is on {t.device}, images on {images.device}")
    if output.dtype != images.dtype:
        raise TypeError(f"output must have the images' dtype {images.dtype}, got {output.dtype}")
    if pass_mask is not None and clamp_summary is None:
        raise ValueError("pass_mask is read with its clamp_summary: pass both")
    records = (("clamp_summary", clamp_summary, clamp_summary_shape, torch.uint8),
               ("pass_mask", pass_mask, pass_mask_shape, torch.int64))
    for name, t, shape_of, dtype in records:  # what nnjpeg::roundtrip_ste returned beside the output
        if t is None:
            continue
        want = shape_of(images, steps.shape[0])
        if tuple(t.shape) != want or t.dtype != dtype:
            raise ValueError(f"{name} must be {str(dtype).replace('torch.', '')} of shape {want}, got {t.dtype} "
                             f"{tuple(t.shape)}")
        if t.device.type != "cpu" or images.device.type != "cpu":
            raise ValueError(f"{name} comes from the CPU kernel: CPU tensors only")


@torch.library.custom_op("nnjpeg::roundtrip_backward_ste", mutates_args=())
def roundtrip_backward_ste(grad_out: Tensor, output: Tensor, images: Tensor, steps: Tensor, subsampling: str,
                           color: str, clamp_summary: Optional[Tensor] = None, pass_mask: Optional[Tensor] = None
                           ) -> Tensor:
    """The "ste" gradient of ``nnjpeg::roundtrip`` (4:4:4, grayscale, plain RGB) from its saved output.

    With the rounding's derivative 1 the round trip's Jacobian is the identity wherever the decoded pixel
    was not clamped (csrc/include/nnjpeg/ste_backward.h derives it), so the gradient is grad_out masked and
    summed over the levels: no DCT. Outputs strictly inside (0, 1) pass; blocks with an output of exactly
    0 or 1 recompute their decoded pixels from ``images`` and ``steps`` to tell px == 0 (passes) from
    px < 0. Equal to ``roundtrip_backward(..., grad="ste")`` up to float rounding.

    Args:
        grad_out: (K, N, C, H, W) gradient wrt the op's output.
        output: (K, N, C, H, W) the op's output for these images and steps (unmodified).
        images: (N, C, H, W) float32/float64 input of the forward.
        steps: (K, N, 2, 8, 8) float32 quantization steps of the forward.
        subsampling: "4:4:4" (or anything with grayscale / color = "rgb").
        color: "ycbcr" or "rgb".
        clamp_summary: optional, CPU: the (K, N, ceil(H/8), ceil(W/8)) uint8 summary ``nnjpeg::roundtrip_ste``
            returned with ``output``: blocks without a clamped pixel then skip the output, and almost no
            block is recomputed. The same gradient, bitwise.
        pass_mask: optional, with ``clamp_summary``: the (K, N, C, ceil(H/8), ceil(W/8)) int64 pass masks
            ``nnjpeg::roundtrip_ste`` returned with it: the output is then never read and no block is
            recomputed. The same gradient, bitwise.

    Shape:
        - output: (N, C, H, W), contiguous, the images' dtype.

    Example:
        >>> x = torch.rand(1, 3, 16, 16)
        >>> steps = torch.full((1, 1, 2, 8, 8), 8.0)
        >>> y = torch.ops.nnjpeg.roundtrip(x, steps, "4:4:4", "ycbcr", "ste", True)
        >>> g = torch.ops.nnjpeg.roundtrip_backward_ste(torch.ones_like(y), y, x, steps, "4:4:4", "ycbcr")
        >>> g.shape
        torch.Size([1, 3, 16, 16])
    """
    _check_ste_args(grad_out, output, images, steps, subsampling, color, clamp_summary, pass_mask)
    if not _kernel.has_kernel(images.device):
        raise ValueError(f"no backward kernel for {images.device.type} tensors (CPU and CUDA only)")
    grad_in = empty_grad_in(images)
    if images.shape[0]:
        summary = None if clamp_summary is None else clamp_summary.contiguous()
        mask = None if pass_mask is None else pass_mask.contiguous()
        _kernel.backward_ste(grad_out.to(images.dtype), output, images, steps, grad_in, subsampling, color,
                             clamp_summary=summary, pass_mask=mask)
    return grad_in


@roundtrip_backward_ste.register_fake
def _roundtrip_backward_ste_fake(grad_out, output, images, steps, subsampling, color, clamp_summary=None,
                                 pass_mask=None):
    _check_ste_args(grad_out, output, images, steps, subsampling, color, clamp_summary, pass_mask)
    return torch.empty_like(images, memory_format=torch.contiguous_format)


def _setup_context(ctx, inputs, output):
    images, steps, subsampling, color, grad, _validate = inputs
    if ste_from_output(images, subsampling, color, grad):
        # The output decides the clamp mask: an in-place change to it before backward raises (as for
        # torch.exp or torch.sigmoid, which save their outputs too).
        ctx.save_for_backward(images, steps, output)
    else:
        ctx.save_for_backward(images, steps)
    ctx.options = (subsampling, color, grad)


def _backward(ctx, grad_out):
    images, steps, *saved_output = ctx.saved_tensors
    subsampling, color, grad = ctx.options
    if grad == "bpda":
        # Identity per level (BPDA), summed over the levels. One level: a view of grad_out, no pass over memory
        # (as the gradient of a reshape; the sum of a size-1 dimension was a 154 MB copy into fresh pages on W1).
        grad_in = grad_out.squeeze(0) if grad_out.shape[0] == 1 else grad_out.sum(0)
    elif saved_output:
        grad_in = roundtrip_backward_ste(grad_out, saved_output[0], images, steps, subsampling, color)
    elif kernel_has_backward(images, subsampling, color):
        grad_in = roundtrip_backward(grad_out, images, steps, subsampling, color, grad)
    else:
        grad_in = _reference_backward(grad_out, images, steps, subsampling, color, grad)
    return grad_in, None, None, None, None, None


roundtrip_levels.register_autograd(_backward, setup_context=_setup_context)


def _setup_context_ste(ctx, inputs, output):
    images, steps, subsampling, color, _validate = inputs
    out, summary, pass_mask = output
    ctx.mark_non_differentiable(summary, pass_mask)
    # No zero-filled gradient for the summary (autograd would fill one per call with torch's OpenMP threads,
    # whose workers then spin for a while on the cores the backward kernel's threads need).
    ctx.set_materialize_grads(False)
    ctx.save_for_backward(images, steps, out, summary, pass_mask)  # an in-place change to out raises
    ctx.options = (subsampling, color)


def _backward_ste(ctx, grad_out, _grad_summary, _grad_pass_mask):
    if grad_out is None:  # the output took no part in the loss (only possible without materialized grads)
        return None, None, None, None, None
    images, steps, out, summary, pass_mask = ctx.saved_tensors
    subsampling, color = ctx.options
    grad_in = roundtrip_backward_ste(grad_out, out, images, steps, subsampling, color, summary, pass_mask)
    return grad_in, None, None, None, None


roundtrip_ste.register_autograd(_backward_ste, setup_context=_setup_context_ste)
