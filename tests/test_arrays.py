"""NumPy / CuPy arrays and the HWC layout through ``nnjpeg_cuda.roundtrip`` (python/nnjpeg_cuda/arrays.py).

Oracles: libjpeg through Pillow on real photos, and the torch CHW path (itself tested against the reference,
scipy and libjpeg in the other test files) for exact agreement of the layout plumbing.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage.metrics import peak_signal_noise_ratio

import nnjpeg_cuda
from nnjpeg_cuda import arrays, codec


def _chw(x: np.ndarray) -> torch.Tensor:
    """(..., H, W, C) array -> (..., C, H, W) contiguous tensor, for the torch path."""
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, -1, -3)))


def _libjpeg(rgb: np.ndarray, quality: int, subsampling: int) -> np.ndarray:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality, subsampling=subsampling)
    buf.seek(0)
    return np.array(Image.open(buf))


@pytest.mark.parametrize("subsampling,pil_subsampling", [("4:4:4", 0), ("4:2:0", 2)])
def test_hwc_numpy_photos_match_libjpeg(photos, subsampling, pil_subsampling):
    for name, rgb in photos.items():
        out = nnjpeg_cuda.roundtrip(rgb, quality=50, subsampling=subsampling, layout="HWC")
        assert isinstance(out, np.ndarray) and out.dtype == np.uint8 and out.shape == rgb.shape
        ref = _libjpeg(rgb, 50, pil_subsampling)
        # libjpeg's integer DCT and colour rounding differ slightly from our float pipeline; the two decoded
        # images agree far better than either agrees with the original.
        agree = peak_signal_noise_ratio(ref, out)
        fidelity = peak_signal_noise_ratio(rgb, ref)
        assert agree > 40 and agree > fidelity + 8, (name, agree, fidelity)


@pytest.mark.parametrize("dtype", [np.uint8, np.float16, np.float32, np.float64])
@pytest.mark.parametrize("batched", [False, True])
def test_hwc_equals_chw_tensor_path(photos, dtype, batched):
    rgb = np.stack([im[:72, :88] for im in photos.values()])
    x = rgb if dtype == np.uint8 else (rgb / 255).astype(dtype)
    x = x if batched else x[1]
    out = nnjpeg_cuda.roundtrip(x, quality=30, layout="HWC")
    assert isinstance(out, np.ndarray) and out.dtype == dtype and out.shape == x.shape
    assert out.flags["C_CONTIGUOUS"]
    expected = nnjpeg_cuda.roundtrip(_chw(x), quality=30)
    np.testing.assert_array_equal(out, np.moveaxis(expected.numpy(), -3, -1))


def test_chw_numpy_array(photos):
    x = np.ascontiguousarray(photos["coffee"][:64, :64].transpose(2, 0, 1))  # (3, 64, 64)
    out = nnjpeg_cuda.roundtrip(x, quality=40)
    assert isinstance(out, np.ndarray) and out.shape == x.shape
    np.testing.assert_array_equal(out, nnjpeg_cuda.roundtrip(torch.from_numpy(x), quality=40).numpy())


def test_gray_2d_array():
    from skimage import data

    gray = data.camera()[:100, :120]  # (H, W) uint8, as Pillow 'L' / OpenCV IMREAD_GRAYSCALE hold it
    out = nnjpeg_cuda.roundtrip(gray, quality=20, layout="HWC")
    assert out.shape == gray.shape and out.dtype == np.uint8
    expected = nnjpeg_cuda.roundtrip(torch.from_numpy(gray)[None], quality=20)[0].numpy()
    np.testing.assert_array_equal(out, expected)
    levels = nnjpeg_cuda.roundtrip_multi(gray, [80, 20], layout="HWC")
    assert levels.shape == (2, *gray.shape)
    np.testing.assert_array_equal(levels[1], out)


def test_multi_levels_equal_single_calls(photos):
    x = np.stack([photos["astronaut"][:48, :64], photos["chelsea"][:48, :64]])
    levels = nnjpeg_cuda.roundtrip_multi(x, [90, 50, 10], layout="HWC")
    assert isinstance(levels, np.ndarray) and levels.shape == (3, *x.shape)
    for k, q in enumerate([90, 50, 10]):
        np.testing.assert_array_equal(levels[k], nnjpeg_cuda.roundtrip(x, quality=q, layout="HWC"))


def test_zero_copy_in_and_out(photos, monkeypatch):
    x = np.ascontiguousarray(photos["chelsea"][:64, :80])
    seen = {}
    real = codec.roundtrip

    def spy(images, *args, **kwargs):
        out = real(images, *args, **kwargs)
        seen["in"], seen["out"] = images.data_ptr(), out.data_ptr()
        return out

    monkeypatch.setattr(codec, "roundtrip", spy)
    out = nnjpeg_cuda.roundtrip(x, quality=50, layout="HWC")
    assert seen["in"] == x.ctypes.data  # the op read the caller's buffer
    assert seen["out"] == out.ctypes.data  # and the caller got the op's buffer


def test_read_only_and_negative_stride_inputs(photos):
    rgb = photos["coffee"][:40, :56]
    expected = nnjpeg_cuda.roundtrip(np.ascontiguousarray(rgb), quality=60, layout="HWC")
    read_only = np.broadcast_to(rgb, (2, *rgb.shape))  # not writable
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = nnjpeg_cuda.roundtrip(read_only, quality=60, layout="HWC")
    np.testing.assert_array_equal(out[1], expected)
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])  # as OpenCV holds it; [..., ::-1] has a negative stride
    np.testing.assert_array_equal(nnjpeg_cuda.roundtrip(bgr[:, :, ::-1], quality=60, layout="HWC"), expected)
    big_endian = (rgb / 255).astype(">f4")
    out = nnjpeg_cuda.roundtrip(big_endian, quality=60, layout="HWC")
    np.testing.assert_allclose(out, nnjpeg_cuda.roundtrip((rgb / 255).astype(np.float32), quality=60, layout="HWC"))


def test_array_quality_and_table_arguments(photos):
    x = np.stack([photos["astronaut"][:32, :32], photos["coffee"][:32, :32]])
    per_image = nnjpeg_cuda.roundtrip(x, quality=np.array([80, 20]), layout="HWC")
    np.testing.assert_array_equal(per_image[0], nnjpeg_cuda.roundtrip(x[0], quality=80, layout="HWC"))
    np.testing.assert_array_equal(per_image[1], nnjpeg_cuda.roundtrip(x[1], quality=20, layout="HWC"))
    np.testing.assert_array_equal(nnjpeg_cuda.roundtrip(x, quality=np.int64(20), layout="HWC")[1], per_image[1])
    table = np.full((2, 8, 8), 30.0)
    out = nnjpeg_cuda.roundtrip(x, quality=50, table=table, layout="HWC")
    expected = nnjpeg_cuda.roundtrip(_chw(x), quality=50, table=torch.full((2, 8, 8), 30.0))
    np.testing.assert_array_equal(out, np.moveaxis(expected.numpy(), 1, -1))
    levels = nnjpeg_cuda.roundtrip_multi(x, np.array([80, 20]), layout="HWC")
    np.testing.assert_array_equal(levels[1], nnjpeg_cuda.roundtrip(x, quality=20, layout="HWC"))


def test_hwc_tensor_keeps_autograd():
    x = torch.rand(2, 24, 16, 3, requires_grad=True)
    y = nnjpeg_cuda.roundtrip(x, quality=50, layout="HWC")
    assert isinstance(y, torch.Tensor) and y.shape == x.shape
    torch.testing.assert_close(y, nnjpeg_cuda.roundtrip(x.detach().permute(0, 3, 1, 2), quality=50).permute(0, 2, 3, 1))
    (y * torch.arange(3.0)).sum().backward()  # BPDA: the gradient is the identity
    torch.testing.assert_close(x.grad, torch.arange(3.0).expand(2, 24, 16, 3))


@settings(max_examples=25, deadline=None)
@given(h=st.integers(1, 40), w=st.integers(1, 40), n=st.integers(0, 3), c=st.sampled_from([1, 3]),
       q=st.integers(1, 100), seed=st.integers(0, 2**16))
def test_hwc_any_size_matches_chw(h, w, n, c, q, seed):
    x = np.random.default_rng(seed).integers(0, 256, (n, h, w, c), dtype=np.uint8)
    out = nnjpeg_cuda.roundtrip(x, quality=q, layout="HWC")
    assert out.shape == x.shape
    np.testing.assert_array_equal(out, np.moveaxis(nnjpeg_cuda.roundtrip(_chw(x), quality=q).numpy(), 1, -1))


@pytest.mark.parametrize("images,layout,error,match", [
    (np.zeros((8, 8, 3), np.int64), "HWC", TypeError, "array dtype int64"),
    (np.zeros((8, 8, 3), bool), "HWC", TypeError, "array dtype bool"),
    (np.zeros((8, 8, 4), np.uint8), "HWC", ValueError, "got 4 .*drop the alpha"),
    (np.zeros((2, 2, 8, 8, 3), np.uint8), "HWC", ValueError, r"\(H, W\), \(H, W, C\) or \(N, H, W, C\)"),
    (np.zeros((8, 8, 3), np.uint8), "CHW", ValueError, "pass layout='HWC'"),
    (np.zeros((8, 8), np.uint8), "CHW", ValueError, "pass layout='HWC'"),
    (np.zeros((0, 8, 3), np.uint8), "HWC", ValueError, "at least 1x1"),
    (np.zeros((8, 8, 3), np.uint8), "NHWC", ValueError, "layout must be one of"),
    (np.full((8, 8, 3), 2.0, np.float32), "HWC", ValueError, r"\[0, 1\]"),
    (np.full((8, 8, 3), np.nan, np.float32), "HWC", ValueError, "NaN"),
])
def test_array_errors_speak_of_arrays(images, layout, error, match):
    with pytest.raises(error, match=match) as info:
        nnjpeg_cuda.roundtrip(images, layout=layout)
    assert "tensor" not in str(info.value).lower()


def test_unsupported_container():
    with pytest.raises(TypeError, match="NumPy array or a CuPy array, got list"):
        nnjpeg_cuda.roundtrip([[0, 1], [2, 3]])
    assert arrays.array_kind(np.zeros(1)) == "numpy" and arrays.array_kind(torch.zeros(1)) == "torch"


# --- CuPy (needs a GPU and cupy: pip install 'nnjpeg_cuda[cupy]') -----------------------------------------

@pytest.mark.cuda
def test_cupy_matches_numpy_and_runs_on_cupys_stream(photos, monkeypatch):
    cupy = pytest.importorskip("cupy")
    if not nnjpeg_cuda.cuda_built():
        pytest.skip("the CUDA kernels are not built")
    rgb = np.stack([im[:96, :128] for im in photos.values()])
    seen = {}
    real = codec.roundtrip

    def spy(images, *args, **kwargs):
        seen["stream"] = torch.cuda.current_stream().cuda_stream
        seen["in"] = images.data_ptr()
        return real(images, *args, **kwargs)

    monkeypatch.setattr(codec, "roundtrip", spy)
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        x = cupy.asarray(rgb)
        out = nnjpeg_cuda.roundtrip(x, quality=50, layout="HWC")
        stream.synchronize()
    assert isinstance(out, cupy.ndarray) and out.dtype == cupy.uint8 and out.shape == rgb.shape
    assert seen["stream"] == stream.ptr and seen["in"] == x.data.ptr  # CuPy's stream, no copy
    # The same CUDA kernel through the torch path: the array plumbing must not change a bit.
    expected = nnjpeg_cuda.roundtrip(torch.from_numpy(rgb).cuda(), quality=50, layout="HWC").cpu().numpy()
    np.testing.assert_array_equal(cupy.asnumpy(out), expected)


@pytest.mark.cuda
def test_cupy_float_multi_and_errors():
    cupy = pytest.importorskip("cupy")
    if not nnjpeg_cuda.cuda_built():
        pytest.skip("the CUDA kernels are not built")
    x = cupy.random.rand(2, 3, 32, 32, dtype=cupy.float32)
    levels = nnjpeg_cuda.roundtrip_multi(x, cupy.asarray([90, 10]))
    assert isinstance(levels, cupy.ndarray) and levels.shape == (2, 2, 3, 32, 32) and levels.dtype == cupy.float32
    expected = nnjpeg_cuda.roundtrip_multi(torch.from_numpy(cupy.asnumpy(x)).cuda(), [90, 10]).cpu().numpy()
    np.testing.assert_array_equal(cupy.asnumpy(levels), expected)
    with pytest.raises(TypeError, match="array dtype int32"):
        nnjpeg_cuda.roundtrip(cupy.zeros((8, 8, 3), cupy.int32), layout="HWC")
