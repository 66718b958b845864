"""NumPy and CuPy arrays, and height-width-channel layouts, for :func:`nnjpeg_cuda.roundtrip`.

``nnjpeg_cuda.roundtrip`` / ``roundtrip_multi`` hand their input here when it is not a torch tensor or when
``layout="HWC"``. The array is wrapped without a copy (``torch.from_numpy`` for NumPy, DLPack for CuPy),
run through the same op as tensors (the CPU kernel for NumPy, the CUDA kernel for CuPy, on CuPy's current
stream), and the result comes back as the input's array type, again without a copy.

Layouts:
    - ``"CHW"`` (default): (C, H, W) or batched (N, C, H, W), as torch holds images.
    - ``"HWC"``: (H, W), (H, W, C) or batched (N, H, W, C), as NumPy, Pillow, OpenCV and scikit-image hold
      them. A 2-D array is one gray image. Batched gray images are (N, H, W, 1).

Example:
    >>> import numpy as np, nnjpeg_cuda
    >>> photo = np.random.default_rng(0).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    >>> out = nnjpeg_cuda.roundtrip(photo, quality=50, layout="HWC")
    >>> type(out).__name__, out.shape, out.dtype
    ('ndarray', (32, 48, 3), dtype('uint8'))
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from typing import Callable, Tuple

import numpy as np
import torch
from torch import Tensor

__all__ = ["roundtrip", "roundtrip_multi", "LAYOUTS", "array_kind"]

LAYOUTS = ("CHW", "HWC")
# NumPy dtypes the codec takes (bfloat16 is torch-only); float16 runs through float32 like tensors do.
ARRAY_DTYPES = (np.uint8, np.float16, np.float32, np.float64)


def array_kind(images) -> str:
    """``"torch"``, ``"numpy"`` or ``"cupy"`` for a supported image container; TypeError otherwise.

    CuPy is recognised without importing it (it is an optional dependency).
    """
    if isinstance(images, Tensor):
        return "torch"
    if isinstance(images, np.ndarray):
        return "numpy"
    if type(images).__module__.split(".")[0] == "cupy" and hasattr(images, "__cuda_array_interface__"):
        return "cupy"
    raise TypeError(f"images must be a torch.Tensor, a NumPy array or a CuPy array, got {type(images).__name__}")


def _noun(kind: str) -> str:
    return "tensor" if kind == "torch" else "array"


def _check_layout(layout: str) -> None:
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS} (batched: N first), got {layout!r}")


def _check_shape(shape: Tuple[int, ...], layout: str, kind: str) -> None:
    """Rank, channels and size, phrased for the caller's container and layout."""
    noun = _noun(kind)
    if layout == "HWC":
        if len(shape) not in (2, 3, 4):
            raise ValueError(f"with layout='HWC' images must be an {noun} of shape (H, W), (H, W, C) or "
                             f"(N, H, W, C), got {shape}")
        channels = shape[-1] if len(shape) > 2 else 1
        if channels not in (1, 3):
            hint = " (drop the alpha channel first, e.g. images[..., :3])" if channels == 4 else ""
            raise ValueError(f"images must have 1 (gray) or 3 (RGB) channels in the last axis with layout='HWC', "
                             f"got {channels} (shape {shape}){hint}")
        spatial = shape[-3:-1] if len(shape) > 2 else shape
    else:
        if len(shape) not in (3, 4):
            hint = "; for (H, W, C) images pass layout='HWC'" if len(shape) == 2 else ""
            raise ValueError(f"images must be an {noun} of shape (C, H, W) or (N, C, H, W), got {shape}{hint}")
        channels = shape[-3]
        if channels not in (1, 3):
            hint = "; this looks like (H, W, C): pass layout='HWC'" if shape[-1] in (1, 3) else ""
            raise ValueError(f"images must have 1 (gray) or 3 (RGB) channels before height and width with "
                             f"layout='CHW', got {channels} (shape {shape}){hint}")
        spatial = shape[-2:]
    if min(spatial) < 1:
        raise ValueError(f"images must be at least 1x1 pixels, got {tuple(spatial)} (shape {shape})")


def _check_array_dtype(dtype: np.dtype) -> None:
    if not any(dtype.newbyteorder("=") == d for d in ARRAY_DTYPES):  # any byte order
        raise TypeError(f"unsupported array dtype {dtype}: use uint8 (0..255) or float16/float32/float64 (0..1)")


def _numpy_to_tensor(images: np.ndarray) -> Tensor:
    """Zero-copy view of a NumPy array (copies only for negative strides or a non-native byte order)."""
    if not images.dtype.isnative:
        images = images.astype(images.dtype.newbyteorder("="))
    if any(s < 0 for s in images.strides):  # e.g. img[:, :, ::-1] (BGR -> RGB): torch has no negative strides
        images = np.ascontiguousarray(images)
    with warnings.catch_warnings():
        # Read-only arrays (np.broadcast_to, memory maps, Pillow's __array_interface__) are only read here.
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(images)


@contextlib.contextmanager
def _cupy_stream(images):
    """Make torch's current device and stream CuPy's current device and stream of ``images``."""
    cupy = sys.modules["cupy"]
    with images.device:
        stream = cupy.cuda.get_current_stream()
    device = torch.device("cuda", images.device.id)
    torch_stream = (torch.cuda.ExternalStream(stream.ptr, device=device) if stream.ptr
                    else torch.cuda.default_stream(device))
    with torch.cuda.device(device), torch.cuda.stream(torch_stream):
        yield


def _cupy_to_tensor(images) -> Tensor:
    cupy = sys.modules["cupy"]
    if any(s < 0 for s in images.strides):
        images = cupy.ascontiguousarray(images)
    return torch.from_dlpack(images)  # inside _cupy_stream: producer and consumer stream are the same


def _to_hwc(out: Tensor, squeeze_gray: bool) -> Tensor:
    """(..., C, H, W) -> (..., H, W, C), a view; (..., H, W) for a 2-D gray input."""
    out = out.movedim(-3, -1)
    return out[..., 0] if squeeze_gray else out


def _tensor_arg(value, device: torch.device):
    """Array-valued ``quality``/``table`` arguments become tensors on the images' device."""
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value)).to(device)
    if type(value).__module__.split(".")[0] == "cupy" and hasattr(value, "__cuda_array_interface__"):
        return torch.from_dlpack(sys.modules["cupy"].ascontiguousarray(value)).to(device)
    if isinstance(value, (list, tuple)):
        return [int(v) if isinstance(v, np.integer) else v for v in value]
    return value


def _run(images, layout: str, call: Callable[[Tensor, object, object], Tensor], quality, table):
    """Shared body of :func:`roundtrip` and :func:`roundtrip_multi`."""
    kind = array_kind(images)
    _check_layout(layout)
    _check_shape(tuple(images.shape), layout, kind)
    if kind != "torch":
        _check_array_dtype(np.dtype(images.dtype))
    context = _cupy_stream(images) if kind == "cupy" else contextlib.nullcontext()
    with context:
        x = {"torch": lambda a: a, "numpy": _numpy_to_tensor, "cupy": _cupy_to_tensor}[kind](images)
        gray_2d = layout == "HWC" and x.dim() == 2
        if layout == "HWC":
            x = x.unsqueeze(0) if gray_2d else x.movedim(-1, -3)  # a view: channels_last strides
        out = call(x, _tensor_arg(quality, x.device), _tensor_arg(table, x.device))
        if layout == "HWC":
            out = _to_hwc(out, gray_2d)
        if kind == "numpy":
            return out.numpy()
        if kind == "cupy":
            return sys.modules["cupy"].from_dlpack(out)
        return out


def roundtrip(images, quality=75, table="standard", subsampling: str = "4:4:4", color: str = "ycbcr",
              grad: str = "bpda", validate: bool = True, layout: str = "CHW"):
    """:func:`nnjpeg_cuda.roundtrip` for NumPy/CuPy arrays and for HWC layouts (tensors too).

    Args:
        images: NumPy array (CPU kernel), CuPy array (CUDA kernel, on CuPy's current stream) or torch tensor;
            uint8 in 0..255 or float16/float32/float64 in [0, 1] (tensors also bfloat16).
        quality: int in 1..100, or N per-image qualities (a tensor, NumPy or CuPy array).
        table: preset name, or (2, 8, 8) / (N, 2, 8, 8) base tables (a tensor, NumPy or CuPy array).
        subsampling, color, grad, validate: as in :func:`nnjpeg_cuda.roundtrip`.
        layout: ``"CHW"`` or ``"HWC"`` (see the module docstring).

    Returns:
        The input's type (NumPy array, CuPy array or tensor), shape and dtype. Arrays come back
        C-contiguous in the input's layout, sharing memory with the op's output (no copy).

    Shape:
        - layout "CHW": (C, H, W) or (N, C, H, W); layout "HWC": (H, W), (H, W, C) or (N, H, W, C); C = 1 or 3.
        - output: same as images.

    Example:
        >>> import numpy as np, nnjpeg_cuda
        >>> batch = np.random.default_rng(0).random((4, 32, 32, 3), dtype=np.float32)  # NHWC in [0, 1]
        >>> nnjpeg_cuda.roundtrip(batch, quality=30, layout="HWC").shape
        (4, 32, 32, 3)
    """
    from . import codec

    def call(x, q, t):
        return codec.roundtrip(x, q, t, subsampling, color, grad, validate)

    return _run(images, layout, call, quality, table)


def roundtrip_multi(images, qualities, table="standard", subsampling: str = "4:4:4", color: str = "ycbcr",
                    grad: str = "bpda", validate: bool = True, layout: str = "CHW"):
    """:func:`nnjpeg_cuda.roundtrip_multi` for NumPy/CuPy arrays and for HWC layouts (tensors too).

    Args:
        images, table, subsampling, color, grad, validate, layout: as in :func:`roundtrip`.
        qualities: K ints in 1..100, or a (K,) / (K, N) tensor, NumPy or CuPy array.

    Returns:
        The input's array type with a leading level axis: (K, *images.shape).

    Shape:
        - images: as in :func:`roundtrip`.
        - output: (K, *images.shape), e.g. (K, N, H, W, C) for an NHWC batch.

    Example:
        >>> import numpy as np, nnjpeg_cuda
        >>> photo = np.zeros((16, 16, 3), dtype=np.uint8)
        >>> nnjpeg_cuda.roundtrip_multi(photo, [90, 50, 10], layout="HWC").shape
        (3, 16, 16, 3)
    """
    from . import codec

    def call(x, q, t):
        return codec.roundtrip_multi(x, q, t, subsampling, color, grad, validate)

    return _run(images, layout, call, qualities, table)
