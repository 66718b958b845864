"""Image files for the command line: finding them in folders, reading them with Pillow, PSNR.

Pillow is an optional dependency (the ``cli`` extra); it is imported when a command first needs it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, Optional, Tuple

import numpy as np

from . import CommandError


def pillow():
    """The ``PIL.Image`` module, or a CommandError that says how to install it."""
    try:
        from PIL import Image
    except ImportError as exc:  # pragma: no cover - Pillow is in the test extra
        raise CommandError("this command reads images with Pillow: pip install 'nnjpeg_cuda[cli]'") from exc
    return Image


def image_extensions() -> frozenset:
    """Lower-case file suffixes Pillow can open (``.png``, ``.jpg``, ``.webp``, ...)."""
    image = pillow()
    return frozenset(ext for ext, fmt in image.registered_extensions().items() if fmt in image.OPEN)


@dataclass(frozen=True)
class Source:
    """One input image: its path and its name relative to the argument it came from (no suffix)."""

    path: Path
    name: Path


def find_images(paths: Iterable[str], recursive: bool = False) -> List[Source]:
    """Expand file and folder arguments into image files, in a stable (sorted) order.

    Files given by name are taken whatever their suffix (Pillow decides if it can read them); inside folders
    only files with a suffix Pillow knows are taken. Raises CommandError for a path that does not exist or
    a folder without images.
    """
    extensions = image_extensions()
    sources: List[Source] = []
    for arg in paths:
        path = Path(arg)
        if path.is_dir():
            pattern = "**/*" if recursive else "*"
            found = sorted(p for p in path.glob(pattern) if p.is_file() and p.suffix.lower() in extensions)
            if not found:
                hint = "" if recursive else " (use --recursive to look in sub-folders too)"
                raise CommandError(f"no images found in folder {arg}{hint}")
            sources += [Source(p, p.relative_to(path).with_suffix("")) for p in found]
        elif path.is_file():
            sources.append(Source(path, Path(path.stem)))
        else:
            raise CommandError(f"no such file or folder: {arg}")
    return sources


class UnreadableImage(Exception):
    """An input file that Pillow cannot decode."""


def read_image(path: Path) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Read an image as uint8 pixels for the codec, and its alpha channel (kept aside, not coded).

    Returns:
        (pixels, alpha): pixels (H, W) for gray images (modes 1, L, LA, I, I;16, F) and (H, W, 3) for the
        rest; alpha (H, W) uint8 or None. 16-bit gray is scaled to 8 bits (x / 257, rounded); float gray
        in [0, 1] is scaled by 255.
    """
    image_module = pillow()
    try:
        with image_module.open(path) as im:
            im.load()
            has_alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
            gray = im.mode in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")
            alpha = np.array(im.convert("RGBA").getchannel("A")) if has_alpha else None
            if im.mode.startswith("I") or im.mode == "F":
                pixels = _high_depth_to_uint8(np.array(im), im.mode)
            else:
                pixels = np.array(im.convert("L" if gray else "RGB"))  # a writable copy, as torch prefers
    except (OSError, SyntaxError, ValueError, image_module.DecompressionBombError) as exc:
        raise UnreadableImage(f"cannot read image {path}: {exc}") from exc
    return pixels, alpha


def _high_depth_to_uint8(values: np.ndarray, mode: str) -> np.ndarray:
    """16-bit, 32-bit integer and float gray images to 0..255 (Pillow's own conversion clips, not scales)."""
    if mode == "F":
        v = values.astype(np.float64)
        finite_max = float(np.nanmax(v)) if v.size else 0.0
        v = v * 255 if finite_max <= 1.0 else v  # float images in [0, 1], else taken as 0..255
        return np.clip(np.nan_to_num(np.rint(v)), 0, 255).astype(np.uint8)
    v = values.astype(np.int64)
    if mode.startswith("I;16") or (v.size and v.max() > 255):
        v = (v + 128) // 257  # 0..65535 -> 0..255, rounded
    return np.clip(v, 0, 255).astype(np.uint8)


def write_png(path: Path, pixels: np.ndarray, alpha: Optional[np.ndarray] = None) -> None:
    """Write uint8 (H, W) or (H, W, 3) pixels as PNG, with the alpha channel put back when given."""
    image_module = pillow()
    im = image_module.fromarray(pixels)
    if alpha is not None:
        im.putalpha(image_module.fromarray(alpha))
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, format="PNG")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two uint8 images in dB (``inf`` when they are equal)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)
