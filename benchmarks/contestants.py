"""The contestants of the throughput benchmark: each turns a batch into a timed callable, or says why not.

Every contestant takes the same input, an (N, 3, H, W) torch tensor (uint8 0..255 or float32 0..1,
contiguous NCHW), at JPEG quality 75. Two kinds of rows for the peers that code real JPEG files:

- "tensor in/out" rows (and kornia, ART, ours): a tensor of the same kind comes out; conversions a PyTorch
  user would need (layout, dtype, colour order, tensor <-> numpy) are part of the timed work.
- "codec only" rows (Pillow, OpenCV; uint8 only): the library's native input is prepared outside the timed
  pass (see peers.py) and only encode + decode is timed: the peer at its best.

Pillow and OpenCV run both 4:4:4 chroma (our default) and 4:2:0 (their default); kornia's codec and ART's
`JpegCompression` (Pillow's default) are always 4:2:0.

Example:
    >>> from contestants import build_contestants
    >>> names = [c.name for c in build_contestants("cpu")]
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, List, Optional

import torch

import peers

QUALITY = peers.QUALITY
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
        ours: True for the entry every row's "x ours fwd" ratio is taken against ("ours fwd").
        group: "peer", "peer codec only", "reference" or "ours".
        library: "Pillow", "OpenCV", "kornia", "ART", "ours", ... (the targets pick a library's best row).
        subsampling: chroma subsampling of the JPEG it codes ("4:4:4" or "4:2:0").
        native: True for codec-only rows (native input prepared outside the timed pass).
    """

    name: str
    prepare: Callable
    dtypes: tuple = ("uint8", "float32")
    levels: int = 1
    backward: bool = False
    ours: bool = False
    group: str = field(default="peer")
    library: str = ""
    subsampling: str = "4:4:4"
    native: bool = False


def _needs(module: str, extra: str = "") -> None:
    import importlib

    try:
        importlib.import_module(module)
    except Exception as exc:  # ImportError, or a broken install
        raise Skip(f"{module} not installed ({type(exc).__name__}){extra}") from None


_MODULE = {"Pillow": "PIL", "OpenCV": "cv2"}
_CHW_CODEC = {"Pillow": peers.pillow_chw_codec, "OpenCV": peers.opencv_chw_codec}
_NATIVE_CODEC = {"Pillow": peers.pillow_image_codec, "OpenCV": peers.opencv_bgr_codec}


def _cpu_threads(device: str, threads: int) -> None:
    if device != "cpu":
        raise Skip("CPU library")
    if threads > 1 and (os.cpu_count() or 1) < 2:
        raise Skip("one CPU core")


def _peer_tensor(library: str, subsampling: str, threads: int) -> Callable:
    """Tensor in, tensor out, as a PyTorch user calls the library (conversions timed)."""

    def prepare(batch, device):
        _cpu_threads(device, threads)
        _needs(_MODULE[library])
        if library == "OpenCV":
            import cv2

            cv2.setNumThreads(threads)
        return peers.tensor_pass(_CHW_CODEC[library](subsampling), batch, threads)

    return prepare


def _peer_native(library: str, subsampling: str, threads: int) -> Callable:
    """The codec alone on the library's native input, prepared outside the timed pass."""

    def prepare(batch, device):
        _cpu_threads(device, threads)
        _needs(_MODULE[library])
        if library == "OpenCV":
            import cv2

            cv2.setNumThreads(threads)
        return peers.native_pass(_NATIVE_CODEC[library](subsampling), peers.native_inputs(batch, library), threads)

    return prepare


def peer_contestants(cores: int) -> List[Contestant]:
    """Pillow and OpenCV, 4:4:4 and 4:2:0, 1 and `cores` threads, tensor in/out and codec only."""
    out = []
    native_input = {"Pillow": "prepared PIL images", "OpenCV": "prepared BGR HWC uint8"}
    for library in ("Pillow", "OpenCV"):
        for sub in peers.SUBSAMPLINGS:
            for threads in sorted({1, cores}):
                t = f"{threads} thread{'s' if threads > 1 else ''}"
                out.append(Contestant(f"{library} {sub} {t}, tensor in/out", _peer_tensor(library, sub, threads),
                                      library=library, subsampling=sub))
            for threads in sorted({1, cores}):
                t = f"{threads} thread{'s' if threads > 1 else ''}"
                out.append(Contestant(f"{library} {sub} {t}, codec only ({native_input[library]})",
                                      _peer_native(library, sub, threads), dtypes=("uint8",), library=library,
                                      subsampling=sub, native=True, group="peer codec only"))
    return out


def _torchvision(batch: torch.Tensor, device: str) -> Callable:
    """encode_jpeg + decode_jpeg: libjpeg-turbo on the CPU, nvJPEG on a GPU (the batch moved there untimed)."""
    _needs("torchvision", " - it needs another torch than the pinned one (torchvision wants torch 2.14.1)")
    from torchvision.io import decode_jpeg, encode_jpeg

    batch = batch.to(device)

    def run():
        x = batch if batch.dtype == torch.uint8 else (batch * 255).round().clamp(0, 255).to(torch.uint8)
        imgs = list(x)
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
          validate: bool = True, reuse_out: bool = False, cpu_cache: bool = True) -> Callable:
    def prepare(batch, device):
        import nnjpeg_cuda

        if not cpu_cache and device != "cpu":
            raise Skip("the CPU output cache serves CPU results only")
        x = batch.to(device)
        # reuse_out: one output buffer for every call (out=), as a loop that keeps its buffer would
        out = (torch.empty((len(MULTI_QUALITIES), *x.shape) if multi else x.shape, dtype=x.dtype, device=device)
               if reuse_out else None)

        def forward(inp):
            if multi:
                return nnjpeg_cuda.roundtrip_multi(inp, list(MULTI_QUALITIES), subsampling=subsampling,
                                                   grad=grad or "bpda", out=out)
            return nnjpeg_cuda.roundtrip(inp, QUALITY, subsampling=subsampling, grad=grad or "bpda",
                                         validate=validate, out=out)

        if grad is None and not cpu_cache:
            return lambda: _without_cpu_cache(lambda: forward(x))
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


def _without_cpu_cache(fn: Callable):
    """fn() with the CPU output cache off: its output is fresh memory, as every result was before the cache.

    The previous call's result, cached when it was freed, is unmapped here, inside the timed pass, as it would
    have been when freed without the cache.
    """
    import nnjpeg_cuda

    limit = nnjpeg_cuda.cpu_cache_info()["limit_bytes"]
    nnjpeg_cuda.set_cpu_cache_limit(0)
    try:
        return fn()
    finally:
        nnjpeg_cuda.set_cpu_cache_limit(limit)


def build_contestants(device: str) -> List[Contestant]:
    """All contestants, peers first, then the reference, then our kernel's variants."""
    cores = os.cpu_count() or 1
    floats = ("float32",)
    return peer_contestants(cores) + [
        Contestant("torchvision encode+decode (4:2:0)", _torchvision, library="torchvision", subsampling="4:2:0"),
        Contestant("kornia fwd (4:2:0)", _kornia(False), dtypes=floats, library="kornia", subsampling="4:2:0"),
        Contestant("kornia fwd+bwd (4:2:0)", _kornia(True), dtypes=floats, backward=True, library="kornia",
                   subsampling="4:2:0"),
        Contestant("ART JpegCompression (4:2:0)", _art, dtypes=floats, library="ART", subsampling="4:2:0"),
        Contestant("ours: reference (PyTorch)", _reference, group="reference", library="reference"),
        Contestant("ours fwd", _ours(), ours=True, group="ours", library="ours"),
        Contestant("ours fwd, validate=False", _ours(validate=False), group="ours", library="ours"),
        Contestant("ours fwd, out= (reused output)", _ours(reuse_out=True), group="ours", library="ours"),
        Contestant("ours fwd, CPU cache off (fresh output)", _ours(cpu_cache=False), group="ours", library="ours"),
        Contestant("ours fwd 4:2:0", _ours("4:2:0"), group="ours", library="ours", subsampling="4:2:0"),
        Contestant("ours fwd+bwd bpda", _ours(grad="bpda"), dtypes=floats, backward=True, group="ours",
                   library="ours"),
        Contestant("ours fwd+bwd ste", _ours(grad="ste"), dtypes=floats, backward=True, group="ours",
                   library="ours"),
        Contestant("ours fwd+bwd smooth", _ours(grad="smooth"), dtypes=floats, backward=True, group="ours",
                   library="ours"),
        Contestant("ours multi K=5", _ours(multi=True), levels=len(MULTI_QUALITIES), group="ours", library="ours"),
        Contestant("ours multi K=5, out= (reused output)", _ours(multi=True, reuse_out=True),
                   levels=len(MULTI_QUALITIES), group="ours", library="ours"),
    ]
