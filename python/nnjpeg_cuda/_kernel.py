"""Glue between checked torch tensors and the pointer-level kernels in ``nnjpeg_cuda._C``.

Everything here assumes the caller (``ops.py``) already checked shapes, dtypes and devices; this file
only turns tensors into pointers, strides and the current stream.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

try:
    from . import _C
except ImportError as exc:  # pragma: no cover - only when the extension was not built
    _C = None
    _IMPORT_ERROR = exc
else:
    _IMPORT_ERROR = None

_DTYPE_CODE = {torch.uint8: 0, torch.float32: 1, torch.float64: 2}
_SUBSAMPLING_CODE = {"4:4:4": 0, "4:2:0": 1}
_COLOR_CODE = {"ycbcr": 0, "rgb": 1}
_ROUNDING_CODE = {"bpda": 0, "ste": 0, "smooth": 1}

KERNEL_DTYPES = tuple(_DTYPE_CODE)


def extension_available() -> bool:
    """True when the compiled extension imported."""
    return _C is not None


def cuda_built() -> bool:
    """True when the CUDA kernels are compiled into this build of the extension."""
    return _C is not None and bool(_C.cuda_built())


def has_kernel(device: torch.device) -> bool:
    """True when a compiled kernel serves tensors on ``device``."""
    if device.type == "cpu":
        return _C is not None
    if device.type == "cuda":
        return cuda_built()
    return False


def uses_420(channels: int, subsampling: str, color: str) -> bool:
    return channels == 3 and color == "ycbcr" and subsampling == "4:2:0"


def _device_args(t: torch.Tensor):
    if t.device.type == "cuda":
        index = t.device.index if t.device.index is not None else torch.cuda.current_device()
        return "cuda", index, torch.cuda.current_stream(index).cuda_stream
    return "cpu", 0, 0


def _steps_and_strides(steps: torch.Tensor):
    # The kernel indexes steps as [k * s0 + n * s1 + table * 64 + i]: the inner (2, 8, 8) must be dense.
    if steps.stride()[2:] != (64, 8, 1):
        steps = steps.contiguous()
    return steps, (steps.stride(0), steps.stride(1))


def _chroma_workspace(images: torch.Tensor, levels: int) -> torch.Tensor:
    """4:2:0: decoded Cb/Cr planes (K, N, 2, ceil(H/16)*8, ceil(W/16)*8) in the kernels' compute type."""
    n, _, h, w = images.shape
    return _workspace(images, (levels, n, 2, (h + 15) // 16 * 8, (w + 15) // 16 * 8))


def _workspace(images: torch.Tensor, shape) -> torch.Tensor:
    """Scratch for one call in the kernels' compute type, on the images' device."""
    compute = torch.float64 if images.dtype == torch.float64 else torch.float32
    if images.device.type == "cpu":
        from . import cpu_cache  # imports this module

        # From the CPU output cache: a fresh workspace each call would be pages the OS zeroes first.
        return cpu_cache.empty(shape, compute)
    return torch.empty(shape, dtype=compute, device=images.device)


def forward(images: torch.Tensor, steps: torch.Tensor, out: torch.Tensor, subsampling: str, color: str,
            grad: str, want_range: bool = False, clamp_summary: Optional[torch.Tensor] = None,
            pass_mask: Optional[torch.Tensor] = None):
    """Run the forward kernel: images (N, C, H, W) -> out (K, N, C, H, W) with steps (K, N, 2, 8, 8).

    With ``want_range`` (CPU float input), returns ``(min, max)`` of the input pixels (NaN if any is NaN)
    when the kernel's path folded that into its read of the input, else None: the caller validates then.
    ``clamp_summary`` (CPU, float, no 4:2:0): a contiguous (K, N, ceil(H/8), ceil(W/8)) uint8 tensor that
    receives every block's clamp summary (csrc/include/nnjpeg/params.h); ``pass_mask``, with it: a
    contiguous (K, N, C, ceil(H/8), ceil(W/8)) int64 tensor that receives every block's pass masks.
    """
    n, c, h, w = images.shape
    input_range = np.zeros(3, dtype=np.float32) if want_range and images.device.type == "cpu" else None
    k = steps.shape[0]
    steps, table_strides = _steps_and_strides(steps)
    workspace = _chroma_workspace(images, k) if uses_420(c, subsampling, color) else None
    device_type, device_index, stream = _device_args(images)
    _C.forward(
        device_type=device_type, input=images.data_ptr(), output=out.data_ptr(), tables=steps.data_ptr(),
        workspace=0 if workspace is None else workspace.data_ptr(), shape=(n, c, h, w), levels=k,
        in_strides=images.stride(), out_strides=out.stride(), table_strides=table_strides,
        dtype=_DTYPE_CODE[images.dtype], subsampling=_SUBSAMPLING_CODE[subsampling], color=_COLOR_CODE[color],
        rounding=_ROUNDING_CODE[grad], num_threads=torch.get_num_threads(), device=device_index, stream=stream,
        input_range=0 if input_range is None else input_range.ctypes.data,
        clamp_summary=0 if clamp_summary is None else clamp_summary.data_ptr(),
        pass_mask=0 if pass_mask is None else pass_mask.data_ptr())
    if input_range is None or input_range[2] != 1.0:
        return None
    return float(input_range[0]), float(input_range[1])


def backward(grad_out: torch.Tensor, images: torch.Tensor, steps: torch.Tensor, grad_in: torch.Tensor,
             subsampling: str, color: str, grad: str) -> None:
    """Run the backward kernel ("ste"/"smooth"): grad_out (K, N, C, H, W) -> grad_in (N, C, H, W).

    4:2:0 also needs the decoded chroma (as the forward) and the chroma gradient at full resolution,
    (K, N, 2, H, W): both workspaces live only for this call.
    """
    n, c, h, w = images.shape
    k = steps.shape[0]
    steps, table_strides = _steps_and_strides(steps)
    workspace = workspace2 = None
    if uses_420(c, subsampling, color):
        workspace = _chroma_workspace(images, k)
        workspace2 = _workspace(images, (k, n, 2, h, w))
    device_type, device_index, stream = _device_args(images)
    _C.backward(
        device_type=device_type, input=images.data_ptr(), grad_output=grad_out.data_ptr(),
        grad_input=grad_in.data_ptr(), tables=steps.data_ptr(),
        workspace=0 if workspace is None else workspace.data_ptr(),
        workspace2=0 if workspace2 is None else workspace2.data_ptr(), shape=(n, c, h, w), levels=k,
        in_strides=images.stride(), grad_out_strides=grad_out.stride(), grad_in_strides=grad_in.stride(),
        table_strides=table_strides, dtype=_DTYPE_CODE[images.dtype], subsampling=_SUBSAMPLING_CODE[subsampling],
        color=_COLOR_CODE[color], rounding=_ROUNDING_CODE[grad], num_threads=torch.get_num_threads(),
        device=device_index, stream=stream)


def backward_ste(grad_out: torch.Tensor, output: torch.Tensor, images: torch.Tensor, steps: torch.Tensor,
                 grad_in: torch.Tensor, subsampling: str, color: str, always_recompute: bool = False,
                 cuda_replay: bool = False, clamp_summary: Optional[torch.Tensor] = None,
                 pass_mask: Optional[torch.Tensor] = None) -> None:
    """Run the "ste" backward from the saved forward output (4:4:4, grayscale, plain RGB; no workspace).

    grad_out and output are (K, N, C, H, W), each with its own strides; images (N, C, H, W) and steps
    (K, N, 2, 8, 8) are read only in blocks whose output touches 0 or 1. always_recompute (tests) takes
    that path in every block; cuda_replay (tests, CPU tensors) runs the CUDA kernel's per-block function.
    clamp_summary: the forward's (K, N, ceil(H/8), ceil(W/8)) uint8 summary (CPU tensors), or None.
    pass_mask: with clamp_summary, the forward's (K, N, C, ceil(H/8), ceil(W/8)) int64 pass masks, or None.
    """
    n, c, h, w = images.shape
    k = steps.shape[0]
    steps, table_strides = _steps_and_strides(steps)
    device_type, device_index, stream = _device_args(images)
    if cuda_replay:
        device_type = "cuda_replay"
    _C.backward_ste(
        device_type=device_type, input=images.data_ptr(), output=output.data_ptr(),
        grad_output=grad_out.data_ptr(), grad_input=grad_in.data_ptr(), tables=steps.data_ptr(),
        shape=(n, c, h, w), levels=k, in_strides=images.stride(), out_strides=output.stride(),
        grad_out_strides=grad_out.stride(), grad_in_strides=grad_in.stride(), table_strides=table_strides,
        dtype=_DTYPE_CODE[images.dtype], subsampling=_SUBSAMPLING_CODE[subsampling], color=_COLOR_CODE[color],
        num_threads=torch.get_num_threads(), device=device_index, stream=stream, always_recompute=always_recompute,
        clamp_summary=0 if clamp_summary is None else clamp_summary.data_ptr(),
        pass_mask=0 if pass_mask is None else pass_mask.data_ptr())
