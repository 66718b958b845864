"""The CPU output cache: large results reuse the memory of freed ones instead of fresh pages.

Every call without ``out=`` returns a new tensor. A large one (32 MiB and more: a W1 float32 batch of 256
ImageNet-sized images is 154 MB) would be a fresh mapping whose pages the OS zeroes at their first touch,
which on a small machine costs as much as the round trip itself. Outputs and gradients of 4 MiB and more
therefore come from a cache of blocks that freed results gave back (csrc/cpu/output_cache.h), as PyTorch's
CUDA caching allocator does for GPU memory: a training loop's second batch writes into memory the first one
touched. The cache holds at most ``limit`` bytes of freed blocks (default: 2 GiB, or an eighth of the memory
if less; environment variable ``NNJPEG_CPU_CACHE_MB``, ``0`` turns it off).

Tensors from the cache are ordinary CPU tensors, except that their storage cannot be resized
(``resize_`` to a larger size raises), as for ``torch.frombuffer``.

Example:
    >>> import nnjpeg_cuda
    >>> info = nnjpeg_cuda.cpu_cache_info()
    >>> sorted(info)
    ['cached_bytes', 'hits', 'limit_bytes', 'misses']
    >>> nnjpeg_cuda.empty_cpu_cache()
"""

from __future__ import annotations

import math
from typing import Dict, Sequence

import torch

from . import _kernel

__all__ = ["cpu_cache_info", "empty_cpu_cache", "set_cpu_cache_limit", "empty"]


def _cache():
    return _kernel._C if _kernel.extension_available() else None


def empty(shape: Sequence[int], dtype: torch.dtype) -> torch.Tensor:
    """An uninitialised contiguous CPU tensor; from the cache when it is large enough and the cache is on.

    Args:
        shape: the tensor's sizes.
        dtype: its dtype.

    Example:
        >>> empty((2, 3), torch.float32).shape
        torch.Size([2, 3])
    """
    c = _cache()
    count = math.prod(shape)
    nbytes = count * dtype.itemsize
    if c is None or nbytes < c.cpu_cache_min_bytes or c.cpu_cache_stats()["limit_bytes"] == 0:
        return torch.empty(tuple(shape), dtype=dtype)
    return torch.frombuffer(c.CachedBlock(nbytes), dtype=dtype, count=count).view(tuple(shape))


def cpu_cache_info() -> Dict[str, int]:
    """The CPU output cache: ``cached_bytes`` (held, not in use), ``limit_bytes``, ``hits``, ``misses``.

    Example:
        >>> nnjpeg_cuda.cpu_cache_info()["limit_bytes"] >= 0
        True
    """
    c = _cache()
    return dict(c.cpu_cache_stats()) if c else {"cached_bytes": 0, "limit_bytes": 0, "hits": 0, "misses": 0}


def empty_cpu_cache() -> None:
    """Give every cached block back to the OS (the results in use keep theirs), like ``torch.cuda.empty_cache``.

    Example:
        >>> nnjpeg_cuda.empty_cpu_cache()
        >>> nnjpeg_cuda.cpu_cache_info()["cached_bytes"]
        0
    """
    c = _cache()
    if c:
        c.cpu_cache_empty()


def set_cpu_cache_limit(limit_bytes: int) -> None:
    """Set how many bytes of freed results the CPU cache may hold (0 turns it off) and trim it to that.

    Args:
        limit_bytes: the new limit, an int >= 0.

    Example:
        >>> nnjpeg_cuda.set_cpu_cache_limit(1 << 30)
    """
    if isinstance(limit_bytes, bool) or not isinstance(limit_bytes, int) or limit_bytes < 0:
        raise ValueError(f"limit_bytes must be an int >= 0, got {limit_bytes!r}")
    c = _cache()
    if c:
        c.cpu_cache_set_limit(limit_bytes)
