"""nnjpeg_cuda: a fast JPEG-style round trip for PyTorch, as a defence against adversarial examples.

Example:
    >>> import torch, nnjpeg_cuda
    >>> x = torch.rand(8, 3, 32, 32)
    >>> y = nnjpeg_cuda.roundtrip(x, quality=50)
    >>> defended = torch.nn.Sequential(nnjpeg_cuda.JPEG(quality=50), torch.nn.Identity())
"""

from . import arrays, ops, reference, tables
from ._kernel import cuda_built, extension_available
from ._version import __version__
from .codec import roundtrip, roundtrip_multi
from .cpu_cache import cpu_cache_info, empty_cpu_cache, set_cpu_cache_limit
from .transforms import JPEG, RandomJPEG

__all__ = ["roundtrip", "roundtrip_multi", "JPEG", "RandomJPEG", "tables", "reference", "ops", "arrays",
           "cuda_built", "extension_available", "cpu_cache_info", "empty_cpu_cache", "set_cpu_cache_limit",
           "__version__"]

_LAZY_SUBMODULES = ("datasets", "models", "defence")


def __getattr__(name):
    # `nnjpeg_cuda.models`, `.datasets`, `.defence` import on first use (keeps `import nnjpeg_cuda` light).
    if name in _LAZY_SUBMODULES:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
