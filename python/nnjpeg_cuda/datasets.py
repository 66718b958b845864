"""CIFAR-10 from the project's lossless ``.npz`` archives (never JPEG-compressed copies).

The data folder holds ``cifar10_train.npz`` and ``cifar10_test.npz``, each with ``x`` uint8 (N, 32, 32, 3)
RGB HWC and ``y`` uint8 (N,). Its location comes from an argument or the ``NNJPEG_DATA`` environment
variable; the library never assumes a path.

Example:
    >>> from nnjpeg_cuda import datasets
    >>> x, y = datasets.load_cifar10("test")          # doctest: +SKIP
    >>> x.shape, x.dtype, y.shape                      # doctest: +SKIP
    (torch.Size([10000, 3, 32, 32]), torch.uint8, torch.Size([10000]))
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Tuple, Union

import numpy as np
import torch

__all__ = ["data_dir", "load_cifar10", "CIFAR10_CLASSES", "ENV_VAR"]

ENV_VAR = "NNJPEG_DATA"
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
_SPLITS = ("train", "test")


def data_dir(arg: Union[str, os.PathLike, None] = None) -> Path:
    """The data folder: ``arg`` if given, else ``$NNJPEG_DATA``.

    Args:
        arg: a folder path, or None to use the environment variable.

    Returns:
        The folder as a ``Path``.

    Raises:
        FileNotFoundError: neither is set, or the folder does not exist.

    Example:
        >>> data_dir("/tmp")
        PosixPath('/tmp')
    """
    value = os.fspath(arg) if arg is not None else os.environ.get(ENV_VAR)
    if not value:
        raise FileNotFoundError(f"no data folder: pass one (e.g. --data DIR) or set {ENV_VAR} to the folder holding "
                                "cifar10_train.npz and cifar10_test.npz")
    path = Path(value).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"data folder {str(path)!r} does not exist (from {'argument' if arg else ENV_VAR})")
    return path


def load_cifar10(split: str, data_dir: Union[str, os.PathLike, None] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Load a CIFAR-10 split as tensors.

    Args:
        split: ``"train"`` (50 000 images) or ``"test"`` (10 000).
        data_dir: folder holding ``cifar10_{split}.npz``; default ``$NNJPEG_DATA``.

    Returns:
        ``(x, y)``: x uint8 (N, 3, 32, 32) RGB, contiguous; y int64 (N,) labels 0..9 (see ``CIFAR10_CLASSES``).

    Shape:
        - x: (N, 3, 32, 32); y: (N,).

    Example:
        >>> x, y = load_cifar10("test", "/path/to/data")   # doctest: +SKIP
    """
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {_SPLITS}, got {split!r}")
    folder = globals()["data_dir"](data_dir)
    path = folder / f"cifar10_{split}.npz"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: the data folder must hold cifar10_{split}.npz")
    with np.load(path, allow_pickle=False) as d:
        if "x" not in d or "y" not in d:
            raise ValueError(f"{path} must hold arrays 'x' and 'y', found {sorted(d.files)}")
        x, y = d["x"], d["y"]
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != (32, 32, 3) or y.shape != (x.shape[0],):
        raise ValueError(f"{path}: expected x uint8 (N, 32, 32, 3) and y (N,), got x {x.dtype} {x.shape}, "
                         f"y {y.shape}")
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    return xt, torch.from_numpy(y.astype(np.int64))
