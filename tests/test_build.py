"""Properties of the build itself: what the extension links, and whether the CUDA path is compiled."""

import os
import shutil
import subprocess
import sys

import pytest

import nnjpeg_cuda as nj
from nnjpeg_cuda import _C


@pytest.mark.skipif(not sys.platform.startswith("linux") or shutil.which("ldd") is None, reason="needs ldd")
def test_extension_links_neither_libtorch_nor_a_shared_cuda_runtime():
    linked = subprocess.run(["ldd", _C.__file__], capture_output=True, text=True, check=True).stdout
    assert "libtorch" not in linked and "libc10" not in linked
    assert "libcudart.so" not in linked


def test_cuda_path_is_compiled_when_the_build_asked_for_it():
    # .ci/run sets NNJPEG_CUDA=ON whenever nvcc is on the PATH, so CI proves the CUDA kernels compile.
    if os.environ.get("NNJPEG_CUDA", "").upper() != "ON":
        pytest.skip("NNJPEG_CUDA=ON was not requested for this build")
    assert nj.cuda_built()


def test_extension_imports_without_a_gpu():
    assert nj.extension_available()
    assert nj._kernel.has_kernel(__import__("torch").device("cpu"))
