"""The contestants of the throughput benchmark: each turns a batch into a timed callable, or says why not.

Every contestant takes the same input, an (N, 3, H, W) torch tensor (uint8 0..255 or float32 0..1,
contiguous NCHW), and produces a tensor of the same kind, at JPEG quality 75. Conversions a PyTorch user
would need (layout, dtype, tensor <-> numpy) are part of the timed work. Peers that code real JPEG files
(Pillow, OpenCV, torchvision) run 4:4:4 chroma, like our default; kornia's codec is always 4:2:0.

Example:
    >>> from contestants import build_contestants
    >>> names = [c.name for c in build_contestants("cpu")]
"""

from __future__ import annotations

import io
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, List, Optional

import numpy as np
import torch

QUALITY = 75
MULTI_QUALITIES = (90, 75, 50, 30, 10)  # roundtrip_multi with K = 5 levels


class Skip(Exception):
    """Raised by a contestant's `prepare` when it cannot run this case; the message is the reason."""


@dataclass
class Contestant:
    """One benchmark entry.

    Args:
        name: label in the table.
        prepare: (batch, device) -> a zero-argument callable doing one full pass over the batch.
            Raises Skip with a reason when the case is not supported.
        dtypes: input dtypes it takes ("uint8", "float32").
        levels: output images per input image (K for roundtrip_multi), for the memory-bound limit.
        backward: True when the pass includes a backward pass (another read and write of the batch).
        ours: True for this project's kernel entries.
    """

    name: str
    prepare: Callable
    dtypes: tuple = ("uint8", "float32")
    levels: int = 1
    backward: bool = False
    ours: bool = False
    group: str = field(default="peer")


def _to_hwc_u8(batch: torch.Tensor) -> List[np.ndarray]:
    x = batch if batch.dtype == torch.uint8 else (batch * 255).round_().clamp_(0, 255).to(torch.uint8)
    x = x.permute(0, 2, 3, 1).contiguous().numpy()
    return [x[i] for i in range(x.shape[0])]


def _from_hwc_u8(images: List[np.ndarray], like: torch.Tensor) -> torch.Tensor:
    out = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    return out if like.dtype == torch.uint8 else out.float().div_(255)


def _per_image(codec: Callable[[np.ndarray], np.ndarray], threads: int) -> Callable:
    """Wrap a per-image HWC uint8 codec into a batch pass over `threads` threads (codecs release the GIL)."""

    def prepare(batch: torch.Tensor, device: str) -> Callable:
        if device != "cpu":
            raise Skip("CPU library")
        if threads > 1 and (os.cpu_count() or 1) < 2:
            raise Skip("one CPU core")
        pool = ThreadPoolExecutor(threads) if threads > 1 else None

        def run():
            images = _to_hwc_u8(batch)
            decoded = list(pool.map(codec, images, chunksize=max(1, len(images) // (4 * threads)))) if pool \
                else [codec(im) for im in images]
            return _from_hwc_u8(decoded, batch)

        return run

    return prepare


def _pillow_codec(img: np.ndarray) -> np.ndarray:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=QUALITY, subsampling=0)
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"))


def _opencv_codec(img: np.ndarray) -> np.ndarray:
    import cv2

    # OpenCV works in BGR; the swap is part of a PyTorch (RGB) user's cost.
    ok, data = cv2.imencode(".jpg", img[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, QUALITY,
                                                        cv2.IMWRITE_JPEG_SAMPLING_FACTOR, 0x111111])
    if not ok:
        raise RuntimeError("cv2.imencode failed")
    return cv2.imdecode(data, cv2.IMREAD_COLOR)[:, :, ::-1]


def _needs(module: str, extra: str = "") -> None:
    import importlib

    try:
        importlib.import_module(module)
    except Exception as exc:  # ImportError, or a broken install
        raise Skip(f"{module} not installed ({type(exc).__name__}){extra}") from None


def _pillow(threads: int) -> Callable:
    inner = _per_image(_pillow_codec, threads)

    def prepare(batch, device):
        _needs("PIL")
        return inner(batch, device)

    return prepare


def _opencv(threads: int) -> Callable:
    inner = _per_image(_opencv_codec, threads)

    def prepare(batch, device):
        _needs("cv2")
        import cv2

        cv2.setNumThreads(threads)
        return inner(batch, device)

    return prepare


def _torchvision(batch: torch.Tensor, device: str) -> Callable:
    _needs("torchvision", " - it needs another torch than the pinned one (torchvision wants torch 2.14.1)")
    from torchvision.io import decode_jpeg, encode_jpeg

    def run():
        x = batch if batch.dtype == torch.uint8 else (batch * 255).round().clamp(0, 255).to(torch.uint8)
        imgs = list(x.to(device))
        data = encode_jpeg(imgs, quality=QUALITY)
        out = torch.stack(decode_jpeg(data, device=device))
        if device == "cuda":
            torch.cuda.synchronize()
        return out if batch.dtype == torch.uint8 else out.float() / 255

    return run


def _kornia(backward: bool) -> Callable:
    def prepare(batch, device):
        _needs("kornia")
        from kornia.enhance import jpeg_codec_differentiable

        x = batch.to(device)
        q = torch.tensor([float(QUALITY)], device=device)
        chunk = max(1, (1 << 24) // (x.shape[2] * x.shape[3]))  # bound its temporaries: ~16 MPixel per call

        upstream = torch.ones_like(x[:chunk])  # the incoming gradient exists before the backward pass

        def run():
            outs = []
            for part in x.split(chunk):
                p = part.detach().requires_grad_(backward)
                y = jpeg_codec_differentiable(p, q)
                if backward:
                    y.backward(upstream[: p.shape[0]])
                    outs.append(p.grad)
                else:
                    outs.append(y)
            return torch.cat(outs)

        return run

    return prepare


def _art(batch: torch.Tensor, device: str) -> Callable:
    if device != "cpu":
        raise Skip("CPU library")
    _needs("art")
    from art.defences.preprocessor import JpegCompression

    defence = JpegCompression(clip_values=(0.0, 1.0), quality=QUALITY, channels_first=True)

    def run():
        x = batch.numpy()
        out, _ = defence(x)
        return torch.from_numpy(out)

    return run


def _reference(batch: torch.Tensor, device: str) -> Callable:
    from nnjpeg_cuda import reference

    x = batch.to(device)
    return lambda: reference.roundtrip(x, QUALITY, compute_dtype=torch.float32)


def _ours(subsampling: str = "4:4:4", grad: Optional[str] = None, multi: bool = False,
          validate: bool = True) -> Callable:
    def prepare(batch, device):
        import nnjpeg_cuda

        x = batch.to(device)

        def forward(inp):
            if multi:
                return nnjpeg_cuda.roundtrip_multi(inp, list(MULTI_QUALITIES), subsampling=subsampling,
                                                   grad=grad or "bpda")
            return nnjpeg_cuda.roundtrip(inp, QUALITY, subsampling=subsampling, grad=grad or "bpda",
                                         validate=validate)

        if grad is None:
            return lambda: forward(x)

        upstream = torch.ones_like(forward(x))  # the incoming gradient exists before the backward pass

        def run():
            p = x.detach().requires_grad_(True)
            y = forward(p)
            y.backward(upstream)
            return p.grad

        return run

    return prepare


def build_contestants(device: str) -> List[Contestant]:
    """All contestants, peers first, then the reference, then our kernel's variants."""
    cores = os.cpu_count() or 1
    floats = ("float32",)
    return [
        Contestant("Pillow 1 thread", _pillow(1)),
        Contestant(f"Pillow {cores} threads", _pillow(cores)),
        Contestant("OpenCV 1 thread", _opencv(1)),
        Contestant(f"OpenCV {cores} threads", _opencv(cores)),
        Contestant("torchvision encode+decode", _torchvision),
        Contestant("kornia fwd (4:2:0)", _kornia(False), dtypes=floats),
        Contestant("kornia fwd+bwd (4:2:0)", _kornia(True), dtypes=floats, backward=True),
        Contestant("ART JpegCompression", _art, dtypes=floats),
        Contestant("ours: reference (PyTorch)", _reference, group="reference"),
        Contestant("ours fwd", _ours(), ours=True, group="ours"),
        Contestant("ours fwd, validate=False", _ours(validate=False), group="ours"),
        Contestant("ours fwd 4:2:0", _ours("4:2:0"), group="ours"),
        Contestant("ours fwd+bwd bpda", _ours(grad="bpda"), dtypes=floats, backward=True, group="ours"),
        Contestant("ours fwd+bwd ste", _ours(grad="ste"), dtypes=floats, backward=True, group="ours"),
        Contestant("ours fwd+bwd smooth", _ours(grad="smooth"), dtypes=floats, backward=True, group="ours"),
        Contestant("ours multi K=5", _ours(multi=True), levels=len(MULTI_QUALITIES), group="ours"),
    ]
