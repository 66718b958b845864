"""Bad input gets a clear ValueError/TypeError naming the problem; NaN/Inf follow the documented policy."""

import pytest
import torch

import nnjpeg_cuda as nj

X = torch.rand(2, 3, 16, 16)


@pytest.mark.parametrize("images,error,match", [
    (torch.rand(16, 16), ValueError, "shape"),
    (torch.rand(1, 1, 3, 16, 16), ValueError, "shape"),
    (torch.rand(2, 4, 16, 16), ValueError, "channels"),
    (torch.rand(2, 16, 16, 3), ValueError, "channels"),
    (torch.rand(2, 3, 0, 16), ValueError, "1x1"),
    (torch.zeros(2, 3, 8, 8, dtype=torch.int32), TypeError, "dtype"),
    (torch.zeros(2, 3, 8, 8, dtype=torch.bool), TypeError, "dtype"),
    (torch.zeros(2, 3, 8, 8, dtype=torch.complex64), TypeError, "dtype"),
    ([[0.5]], TypeError, "Tensor"),
])
def test_bad_images(images, error, match):
    with pytest.raises(error, match=match):
        nj.roundtrip(images, 50)


@pytest.mark.parametrize("quality,error,match", [
    (0, ValueError, "1..100"),
    (101, ValueError, "1..100"),
    (-5, ValueError, "1..100"),
    (50.5, TypeError, "quality"),
    (True, TypeError, "quality"),
    ("high", TypeError, "quality"),
    (torch.tensor([50, 0]), ValueError, "1..100"),
    (torch.tensor([50, 60, 70]), ValueError, r"\(2,\)"),
    (torch.tensor([50.5, 60.0]), ValueError, "whole numbers"),
])
def test_bad_quality(quality, error, match):
    with pytest.raises(error, match=match):
        nj.roundtrip(X, quality)


@pytest.mark.parametrize("table,error,match", [
    ("nonexistent", ValueError, "preset"),
    (torch.ones(8, 8), ValueError, r"\(2, 8, 8\)"),
    (torch.ones(3, 8, 8), ValueError, r"\(2, 8, 8\)"),
    (torch.ones(3, 2, 8, 8), ValueError, "3 entries for a batch of 2"),
    (torch.zeros(2, 8, 8), ValueError, "positive"),
    (-torch.ones(2, 8, 8), ValueError, "positive"),
    (torch.full((2, 8, 8), float("nan")), ValueError, "NaN"),
    (torch.full((2, 8, 8), float("inf")), ValueError, "Inf"),
    (torch.ones(2, 8, 8, dtype=torch.complex64), TypeError, "real"),
    (3.0, TypeError, "table"),
])
def test_bad_table(table, error, match):
    with pytest.raises(error, match=match):
        nj.roundtrip(X, 50, table=table)


def test_per_image_settings_on_another_device_are_refused():
    with pytest.raises(ValueError, match="device"):
        nj.roundtrip(X, torch.tensor([50, 60], device="meta"))
    with pytest.raises(ValueError, match="device"):
        nj.roundtrip(X, 50, table=torch.ones(2, 2, 8, 8, device="meta"))


@pytest.mark.parametrize("kwargs,match", [
    (dict(subsampling="4:2:2"), "subsampling"),
    (dict(color="lab"), "color"),
    (dict(grad="exact"), "grad"),
    (dict(color="rgb", subsampling="4:2:0"), "rgb"),
])
def test_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        nj.roundtrip(X, 50, **kwargs)


def test_bad_multi_levels():
    with pytest.raises(ValueError, match="at least one"):
        nj.roundtrip_multi(X, [])
    with pytest.raises(ValueError, match="1..100"):
        nj.roundtrip_multi(X, [50, 200])
    with pytest.raises(ValueError, match=r"\(K,\) or \(K, N\)"):
        nj.roundtrip_multi(X, torch.ones(2, 2, 2, dtype=torch.int64))


@pytest.mark.parametrize("bad,match", [(float("nan"), "NaN"), (float("inf"), "Inf"), (-float("inf"), "Inf"),
                                       (1.5, r"\[0, 1\]"), (-0.2, r"\[0, 1\]")])
def test_bad_pixel_values_are_refused(bad, match):
    x = X.clone()
    x[1, 2, 3, 4] = bad
    with pytest.raises(ValueError, match=match):
        nj.roundtrip(x, 50)
    with pytest.raises(ValueError, match=match):
        nj.JPEG(50)(x)


def test_without_validation_nan_is_zero_and_range_is_clamped():
    # The documented policy with validate=False: NaN -> 0, values clamped to [0, 1], never garbage.
    x = X.clone()
    x[0, 0, :4, :4] = float("nan")
    x[0, 1, 4:8, 4:8] = float("inf")
    x[1, 2, :8, :8] = 7.0
    x[1, 0, 8:, 8:] = -3.0
    out = nj.roundtrip(x, 50, validate=False)
    expected = nj.roundtrip(torch.nan_to_num(x, nan=0.0).clamp(0, 1), 50)
    assert torch.isfinite(out).all()
    assert torch.equal(out, expected)


def test_tiny_overshoot_from_float_rounding_is_accepted():
    x = X.clone()
    x[0, 0, 0, 0] = 1.0 + 1e-7
    assert torch.isfinite(nj.roundtrip(x, 50)).all()


def test_the_binding_rejects_bad_raw_calls():
    from nnjpeg_cuda import _C

    kwargs = dict(device_type="cpu", input=1, output=1, tables=1, workspace=0, shape=(1, 3, 8, 8), levels=1,
                  in_strides=(192, 64, 8, 1), out_strides=(192, 192, 64, 8, 1), table_strides=(0, 0), dtype=1,
                  subsampling=0, color=0, rounding=0, num_threads=1, device=0, stream=0)
    for change, match in [(dict(input=0), "null"), (dict(shape=(1, 2, 8, 8)), "channels"),
                          (dict(dtype=7), "dtype"), (dict(levels=0), "levels"), (dict(subsampling=1), "workspace"),
                          (dict(in_strides=(192, 64, -8, 1)), "non-negative"), (dict(device_type="tpu"), "device")]:
        with pytest.raises(ValueError, match=match):
            _C.forward(**{**kwargs, **change})


def test_layer_argument_errors():
    with pytest.raises(TypeError, match="quality"):
        nj.JPEG(quality=50.0)
    with pytest.raises(ValueError, match="grad"):
        nj.JPEG(quality=50, grad="none")
    with pytest.raises(ValueError, match="quality_range"):
        nj.RandomJPEG((90, 10))


def test_numpy_integer_qualities_are_accepted_like_ints():
    import numpy as np

    assert torch.equal(nj.roundtrip(X, np.int64(50)), nj.roundtrip(X, 50))
    assert torch.equal(nj.JPEG(np.int32(40))(X), nj.roundtrip(X, 40))
    with pytest.raises(TypeError, match="quality"):
        nj.roundtrip(X, np.float64(50))
    with pytest.raises(TypeError, match="quality"):
        nj.roundtrip(X, np.bool_(True))
