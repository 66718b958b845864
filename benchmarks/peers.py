"""Pillow and OpenCV JPEG round trips for the throughput benchmark, each measured two ways.

- "tensor in/out" (as a PyTorch user calls it): an (N, 3, H, W) tensor in, the same kind of tensor out;
  the layout, dtype and colour-order conversions are part of the timed pass.
- "codec only": the library's native input prepared outside the timed region (OpenCV: contiguous BGR HWC
  uint8 arrays; Pillow: PIL images made from contiguous RGB HWC uint8 arrays), decoded images out (OpenCV:
  BGR arrays; Pillow: loaded PIL images). Only encode + decode is timed: each peer at its best.

Both run 4:4:4 (our default) or 4:2:0 (the default of both libraries) at quality 75. With `threads` > 1
the images are split into `threads` contiguous parts, one task per thread (the calling thread does the
first part): `ThreadPoolExecutor.map` ignores `chunksize` and pays one future per image, which made two
threads slower than one on 32x32 images. Both libraries release the GIL while coding; OpenCV's own threads
(`cv2.setNumThreads`) do not parallelise `imencode` / `imdecode`.

Example:
    >>> import numpy as np
    >>> from peers import opencv_bgr_codec
    >>> out = opencv_bgr_codec("4:2:0")(np.zeros((16, 16, 3), np.uint8))
    >>> out.shape
    (16, 16, 3)
"""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, List, Optional, Sequence

import numpy as np
import torch

QUALITY = 75
SUBSAMPLINGS = ("4:4:4", "4:2:0")
_CV_SAMPLING = {"4:4:4": 0x111111, "4:2:0": 0x221111}  # cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444 / _420
_PIL_SAMPLING = {"4:4:4": 0, "4:2:0": 2}


def _check_subsampling(subsampling: str) -> None:
    if subsampling not in SUBSAMPLINGS:
        raise ValueError(f"subsampling must be one of {SUBSAMPLINGS}, got {subsampling!r}")


def _loop(fn: Callable, items: Sequence) -> list:
    return [fn(x) for x in items]


def split_map(fn: Callable, items: Sequence, pool: Optional[ThreadPoolExecutor], threads: int) -> list:
    """`[fn(x) for x in items]`, the items split into `threads` contiguous parts run side by side.

    Args:
        fn: per-item work (should release the GIL for threads to help).
        items: a sequence that supports slicing (list, range).
        pool: a pool with at least `threads - 1` workers, or None for one thread.
        threads: parts to split into; the calling thread runs the first.

    Example:
        >>> split_map(lambda x: 2 * x, range(5), None, 1)
        [0, 2, 4, 6, 8]
    """
    if pool is None or threads <= 1 or len(items) < 2:
        return _loop(fn, items)
    step = -(-len(items) // threads)
    parts = [items[i:i + step] for i in range(0, len(items), step)]
    futures = [pool.submit(_loop, fn, p) for p in parts[1:]]
    out = _loop(fn, parts[0])
    for f in futures:
        out.extend(f.result())
    return out


def opencv_bgr_codec(subsampling: str) -> Callable[[np.ndarray], np.ndarray]:
    """OpenCV's native round trip: contiguous BGR HWC uint8 in, decoded BGR HWC uint8 out."""
    import cv2

    _check_subsampling(subsampling)
    params = [cv2.IMWRITE_JPEG_QUALITY, QUALITY, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, _CV_SAMPLING[subsampling]]
    encode, decode, flag = cv2.imencode, cv2.imdecode, cv2.IMREAD_COLOR

    def codec(img: np.ndarray) -> np.ndarray:
        ok, data = encode(".jpg", img, params)
        if not ok:
            raise RuntimeError("cv2.imencode failed")
        return decode(data, flag)

    return codec


def opencv_chw_codec(subsampling: str) -> Callable[[np.ndarray, np.ndarray], None]:
    """OpenCV round trip of a chunk of (k, 3, H, W) RGB images, uint8 or float32 (0..1), written into `dst`.

    The conversions run once per chunk with OpenCV's SIMD routines (GIL released): float -> uint8 is
    `convertScaleAbs` (x 255, rounded, saturated), the RGB planes -> BGR HWC images is one `merge` (the
    planes seen as (k, H*W) strided views), the decoded images back to planes is one `split` (float: a numpy
    divide by 255). Per image only `imencode` + `imdecode` run, so the GIL-held Python work stays small.
    """
    import cv2

    bgr_codec = opencv_bgr_codec(subsampling)

    def codec(src: np.ndarray, dst: np.ndarray) -> None:
        k, _, h, w = src.shape
        planes = [src[:, c].reshape(k, h * w) for c in (2, 1, 0)]  # views: B, G, R
        if src.dtype != np.uint8:
            planes = [cv2.convertScaleAbs(p, alpha=255.0) for p in planes]
        bgr = cv2.merge(planes).reshape(k, h, w, 3)
        decoded = np.stack([bgr_codec(im) for im in bgr]).reshape(k, h * w, 3)
        for c, plane in zip((2, 1, 0), cv2.split(decoded)):
            if dst.dtype == np.uint8:
                dst[:, c] = plane.reshape(k, h, w)
            else:
                np.divide(plane.reshape(k, h, w), np.float32(255), out=dst[:, c])

    return codec


def pillow_image_codec(subsampling: str) -> Callable:
    """Pillow's native round trip: a PIL image in, the decoded (loaded) PIL image out."""
    from PIL import Image

    _check_subsampling(subsampling)
    sub = _PIL_SAMPLING[subsampling]

    def codec(img):
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=QUALITY, subsampling=sub)
        buf.seek(0)
        out = Image.open(buf)
        out.load()
        return out

    return codec


def pillow_chw_codec(subsampling: str) -> Callable[[np.ndarray, np.ndarray], None]:
    """Pillow round trip of a chunk of (k, 3, H, W) RGB images, uint8 or float32 (0..1), written into `dst`.

    Conversions per image inside the worker threads: float -> uint8 with numpy (x 255, rounded, clipped), the
    planes -> an RGB image with `Image.merge` (7x faster than a numpy HWC copy), the decoded image back to
    planes with `split` (float: divided by 255).
    """
    from PIL import Image

    inner = pillow_image_codec(subsampling)

    def one(src: np.ndarray, dst: np.ndarray) -> None:
        u8 = src if src.dtype == np.uint8 else np.clip(np.rint(src * np.float32(255)), 0, 255).astype(np.uint8)
        decoded = inner(Image.merge("RGB", [Image.fromarray(u8[c]) for c in range(3)]))
        for c, plane in enumerate(decoded.split()):
            if dst.dtype == np.uint8:
                dst[c] = np.asarray(plane)
            else:
                np.divide(np.asarray(plane), np.float32(255), out=dst[c])

    def codec(src: np.ndarray, dst: np.ndarray) -> None:
        for i in range(src.shape[0]):
            one(src[i], dst[i])

    return codec


CHUNK_PIXELS = 1 << 18  # images per conversion chunk: ~256 K pixels (768 KB of uint8), cache-sized


def tensor_pass(codec: Callable[[np.ndarray, np.ndarray], None], batch: torch.Tensor, threads: int) -> Callable:
    """A timed pass as a PyTorch user runs it: (N, 3, H, W) tensor -> codec over chunks of images -> tensor.

    Args:
        codec: (src, dst) -> None on (k, 3, H, W) numpy views of the input and of the output.
        batch: contiguous CPU tensor, uint8 or float32.
        threads: the chunks are split into this many contiguous runs, one per thread.

    The conversions (layout, dtype, colour order) run inside the worker threads on cache-sized chunks
    (CHUNK_PIXELS), with no batch-sized temporaries: the cheapest way we found to feed these libraries a tensor.
    """
    if batch.device.type != "cpu" or not batch.is_contiguous():
        raise ValueError("tensor_pass takes a contiguous CPU tensor")
    pool = ThreadPoolExecutor(threads - 1) if threads > 1 else None
    n, _, h, w = batch.shape
    step = max(1, CHUNK_PIXELS // (h * w))
    chunks = [(i, min(n, i + step)) for i in range(0, n, step)]

    def run() -> torch.Tensor:
        src = batch.numpy()
        out = np.empty(src.shape, src.dtype)
        split_map(lambda ab: codec(src[ab[0]:ab[1]], out[ab[0]:ab[1]]), chunks, pool, threads)
        return torch.from_numpy(out)

    return run


def to_hwc_u8(batch: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) uint8 or float32 (0..1) tensor -> contiguous (N, H, W, 3) uint8 array (RGB)."""
    x = batch if batch.dtype == torch.uint8 else batch.mul(255).round_().clamp_(0, 255).to(torch.uint8)
    return np.ascontiguousarray(x.numpy().transpose(0, 2, 3, 1))


def native_inputs(batch: torch.Tensor, library: str) -> List:
    """The batch as the library's native inputs (done outside the timed region).

    OpenCV: a list of contiguous BGR HWC uint8 arrays; Pillow: a list of RGB PIL images.
    """
    if batch.dtype != torch.uint8:
        raise TypeError(f"codec-only rows take the uint8 batch, got {batch.dtype}")
    hwc = to_hwc_u8(batch)
    if library == "OpenCV":
        return [np.ascontiguousarray(im[:, :, ::-1]) for im in hwc]
    if library == "Pillow":
        from PIL import Image

        return [Image.fromarray(np.ascontiguousarray(im)) for im in hwc]
    raise ValueError(f"unknown library {library!r}; choose OpenCV or Pillow")


def native_pass(codec: Callable, images: List, threads: int) -> Callable:
    """A timed pass of the codec alone over prepared native images; returns the decoded images."""
    pool = ThreadPoolExecutor(threads - 1) if threads > 1 else None
    return lambda: split_map(codec, images, pool, threads)
