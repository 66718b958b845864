"""Shared oracle for the reliability tests: the kernel's output against the float64 reference, per pixel.

The bound (on the 0..255 scale), for every output pixel p:

    |kernel(p) - reference(p)| <= tol_compute + tol_output + budget(p)

- ``tol_compute``: float32 arithmetic error of the kernel (the reference runs in float64); tiny for
  float64 images.
- ``tol_output``: the output dtype's own rounding (0.5 for uint8, half an ulp for float16/bfloat16).
- ``budget(p)``: the only place where the two may legitimately differ by more. A DCT coefficient whose
  quotient ``t = F / Q`` lies within the compute error of a rounding boundary (``k + 1/2``) may round to
  neighbouring integers in float32 and float64; its dequantized value then moves by one step ``Q``, and
  a pixel by at most ``Q * 0.25`` (the largest entry of an orthonormal 8x8 DCT basis image), times the
  colour transform's largest gain. ``budget`` adds this up over the coefficients that are ambiguous in
  the blocks that feed pixel p (with 4:2:0, every chroma block the upsampler reads). Where no coefficient
  is ambiguous the budget is 0 and the comparison is strict.

Everything here is computed from the reference's own building blocks in float64; it never looks at the
kernel's output.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nnjpeg_cuda import reference

# Absolute error of a float32 DCT coefficient on the 0..255 scale (|F| <= 1024): a conservative 100x the
# measured worst case, so that a rounding flip is never missed.
COEF_EPS = {torch.float32: 1e-2, torch.float64: 1e-9}
# Kernel arithmetic error of a decoded pixel on the 0..255 scale (measured worst: 5.5e-5 for float32).
TOL_COMPUTE = {torch.float32: 5e-4, torch.float64: 1e-8}
# Largest |d pixel / d component| of the YCbCr -> RGB matrix, summed over the two chroma components.
_CHROMA_GAIN = 1.772


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the kernel computes in for images of ``dtype``."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def output_tolerance(dtype: torch.dtype) -> float:
    """Rounding of the output dtype, on the 0..255 scale."""
    return {torch.uint8: 0.5, torch.float16: 255 * 2.0**-11, torch.bfloat16: 255 * 2.0**-8,
            torch.float32: 255 * 2.0**-24, torch.float64: 0.0}[dtype]


def _block_budget(planes: torch.Tensor, steps: torch.Tensor, eps: float) -> torch.Tensor:
    """Planes (N, P, H8, W8) level-shifted, steps (K, N, 8, 8) -> per-pixel budget (K, N, P, H8, W8)."""
    coef = reference.block_dct(planes)  # (N, P, bh, bw, 8, 8)
    q = steps[:, :, None, None, None]  # (K, N, 1, 1, 1, 8, 8)
    t = coef.unsqueeze(0) / q
    ambiguous = (t - torch.floor(t) - 0.5).abs() <= eps / q
    block = 0.25 * (ambiguous * q).sum(dim=(-1, -2))  # (K, N, P, bh, bw)
    return block.repeat_interleave(8, dim=-2).repeat_interleave(8, dim=-1)


def flip_budget(x255: torch.Tensor, steps: torch.Tensor, subsampling: str, color: str, eps: float) -> torch.Tensor:
    """Per-pixel allowance for rounding flips: (K, N, C, H, W) on the 0..255 scale (see the module doc).

    Args:
        x255: (N, C, H, W) float64 pixels on 0..255 (after NaN mapping and clamping).
        steps: (K, N, 2, 8, 8) quantization steps.
        subsampling, color: as in :func:`nnjpeg_cuda.roundtrip`.
        eps: absolute coefficient error that counts as "near a boundary".
    """
    n, c, h, w = x255.shape
    k = steps.shape[0]
    steps = steps.double()
    if not (c == 3 and color == "ycbcr"):
        planes = reference._pad_to(x255, 8) - 128
        return _block_budget(planes, steps[:, :, 0], eps)[..., :h, :w]
    ycc = reference.rgb_to_ycbcr(x255) - 128
    if subsampling == "4:4:4":
        planes = reference._pad_to(ycc, 8)
        luma = _block_budget(planes[:, :1], steps[:, :, 0], eps)
        chroma = _block_budget(planes[:, 1:], steps[:, :, 1], eps).sum(dim=2, keepdim=True)
    else:
        planes = reference._pad_to(ycc, 16)
        luma = _block_budget(planes[:, :1], steps[:, :, 0], eps)
        sub = F.avg_pool2d(planes[:, 1:], 2)
        chroma = _block_budget(sub, steps[:, :, 1], eps).sum(dim=2, keepdim=True)  # (K, N, 1, Hc, Wc)
        # The upsampler mixes each chroma sample with its neighbours (possibly in the next block).
        chroma = F.max_pool2d(chroma.reshape(k * n, 1, *chroma.shape[-2:]), 3, stride=1, padding=1)
        chroma = chroma.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1).reshape(k, n, 1, *planes.shape[-2:])
    total = luma + _CHROMA_GAIN * chroma
    return total[..., :h, :w].expand(k, n, c, h, w)


def reference_levels_255(x: torch.Tensor, steps: torch.Tensor, subsampling: str, color: str, grad: str
                         ) -> torch.Tensor:
    """The float64 reference's decoded pixels, clamped, on 0..255 (not rounded to the output dtype)."""
    x255 = reference._to_255(x, torch.float64)
    rounding = "smooth" if grad == "smooth" else "round"
    return reference.decode_levels(x255, steps.double(), subsampling, color, rounding).clamp(0, 255)


def to_255(out: torch.Tensor) -> torch.Tensor:
    """Output pixels on the 0..255 scale in float64."""
    return out.double() if out.dtype == torch.uint8 else out.double() * 255


def check_levels(out: torch.Tensor, x: torch.Tensor, steps: torch.Tensor, subsampling: str = "4:4:4",
                 color: str = "ycbcr", grad: str = "bpda") -> dict:
    """Assert the per-pixel bound for kernel output ``out`` (K, N, C, H, W) of images ``x`` (N, C, H, W).

    Returns figures for reporting: pixels compared, pixels with a non-zero budget, the largest error
    outside any budget, and the largest error overall (all on 0..255).
    """
    assert out.shape == (steps.shape[0], *x.shape), f"output shape {tuple(out.shape)} for input {tuple(x.shape)}"
    cdt = compute_dtype(x.dtype if x.dtype in (torch.uint8, torch.float32, torch.float64) else torch.float32)
    ref = reference_levels_255(x, steps, subsampling, color, grad)
    budget = flip_budget(reference._to_255(x, torch.float64), steps, subsampling, color, COEF_EPS[cdt])
    err = (to_255(out) - ref).abs()
    allowed = TOL_COMPUTE[cdt] + output_tolerance(out.dtype) + budget
    bad = err > allowed
    if bool(bad.any()):
        idx = tuple(int(i) for i in bad.nonzero()[0])
        raise AssertionError(
            f"kernel differs from the float64 reference beyond the stated bound at {idx} (K, N, C, H, W): "
            f"|diff| = {err[idx].item():.6g} > allowed {allowed[idx].item():.6g} on 0..255 "
            f"(shape {tuple(x.shape)}, dtype {x.dtype}, {subsampling}, {color}, {grad}); "
            f"{int(bad.sum())} of {err.numel()} pixels")
    strict = budget == 0
    return {
        "pixels": err.numel(),
        "budgeted": int((~strict).sum()),
        "max_err_strict": float(err[strict].max()) if bool(strict.any()) else 0.0,
        "max_err": float(err.max()) if err.numel() else 0.0,
    }
