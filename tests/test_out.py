"""``out=``: the round trip written into a caller's tensor (``nnjpeg::roundtrip_out``).

Oracle: the same call without ``out=`` (a fresh output), which must give the same bits in every dtype,
mode and memory layout; bad ``out`` tensors raise clear errors before anything is written.
"""

import numpy as np
import pytest
import torch

import nnjpeg_cuda as nj
from nnjpeg_cuda import tables


@pytest.fixture(scope="module")
def images(photo_batch):
    return photo_batch.float() / 255  # (3, 3, 96, 120) real crops


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.float64, torch.float16])
@pytest.mark.parametrize("subsampling", ["4:4:4", "4:2:0"])
def test_out_holds_the_bits_of_a_fresh_output(images, dtype, subsampling):
    x = (images * 255).round().to(dtype) if dtype == torch.uint8 else images.to(dtype)
    out = torch.full_like(x, 7)
    got = nj.roundtrip(x, 40, subsampling=subsampling, out=out)
    assert got is out
    assert torch.equal(out, nj.roundtrip(x, 40, subsampling=subsampling))


@pytest.mark.parametrize("unbatched", [False, True])
def test_multi_level_out_and_unbatched_images(images, unbatched):
    x = images[0] if unbatched else images
    out = torch.empty((3, *x.shape))
    assert nj.roundtrip_multi(x, [90, 50, 10], out=out) is out
    assert torch.equal(out, nj.roundtrip_multi(x, [90, 50, 10]))
    one = torch.empty_like(x)
    assert torch.equal(nj.roundtrip(x, 25, table="nn", out=one), nj.roundtrip(x, 25, table="nn"))


def test_out_may_have_any_strides(images):
    want = nj.roundtrip(images, 60)
    channels_last = torch.empty_like(images, memory_format=torch.channels_last)
    nj.roundtrip(images, 60, out=channels_last)
    assert torch.equal(channels_last, want)
    wide = torch.zeros(*images.shape[:3], 2 * images.shape[3])
    nj.roundtrip(images, 60, out=wide[..., 1::2])  # every other column of a wider tensor
    assert torch.equal(wide[..., 1::2], want)
    assert torch.count_nonzero(wide[..., 0::2]) == 0  # nothing written between


def test_per_image_quality_and_validation_with_out(images):
    q = torch.tensor([90, 45, 5])
    out = torch.empty_like(images)
    assert torch.equal(nj.roundtrip(images, q, out=out), nj.roundtrip(images, q))
    bad = images.clone()
    bad[1, 0, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        nj.roundtrip(bad, 50, out=out)


def test_bad_out_raises_a_clear_error(images):
    with pytest.raises(ValueError, match=r"out must have shape \(3, 3, 96, 120\)"):
        nj.roundtrip(images, 50, out=torch.empty(3, 3, 96, 121))
    with pytest.raises(TypeError, match="dtype torch.float32"):
        nj.roundtrip(images, 50, out=torch.empty_like(images, dtype=torch.float64))
    with pytest.raises(ValueError, match="is on meta"):
        nj.roundtrip(images, 50, out=torch.empty_like(images, device="meta"))
    with pytest.raises(TypeError, match="out must be a torch.Tensor"):
        nj.roundtrip(images, 50, out=np.empty((3, 3, 96, 120), np.float32))
    with pytest.raises(ValueError, match=r"out must have shape \(2, 3, 3, 96, 120\)"):
        nj.roundtrip_multi(images, [90, 10], out=torch.empty_like(images))
    with pytest.raises(TypeError, match="layout='CHW'"):
        nj.roundtrip(images.permute(0, 2, 3, 1), 50, layout="HWC", out=torch.empty_like(images))


def test_out_overlapping_the_images_is_refused(images):
    x = images.clone()
    with pytest.raises(ValueError, match="overlap"):
        nj.roundtrip(x, 50, out=x)
    both = torch.zeros(4, 3, 96, 120)
    both[:3] = images
    with pytest.raises(ValueError, match="overlap"):
        nj.roundtrip(both[:3], 50, out=both[1:])
    nj.roundtrip(both[:2], 50, out=both[2:])  # adjacent, not overlapping
    assert torch.equal(both[2:], nj.roundtrip(images[:2], 50))


def test_out_refuses_autograd(images):
    x = images.clone().requires_grad_(True)
    with pytest.raises(RuntimeError, match="automatic differentiation"):
        nj.roundtrip(x, 50, out=torch.empty_like(images))
    with torch.no_grad():
        nj.roundtrip(x, 50, out=torch.empty_like(images))


def test_opcheck_roundtrip_out(images):
    steps = tables.level_tables([80, 20], "standard", 2).contiguous()
    for subsampling in ("4:4:4", "4:2:0"):
        out = torch.empty(2, 2, 3, 96, 120)
        torch.library.opcheck(torch.ops.nnjpeg.roundtrip_out.default,
                              (images[:2], steps, subsampling, "ycbcr", "bpda", True, out))


def test_compiled_function_writing_into_a_buffer(images):
    buf = torch.empty_like(images)

    def preprocess(x):
        return nj.roundtrip(x, 50, out=buf) * 2

    compiled = torch.compile(preprocess, fullgraph=True, backend="aot_eager")
    got = compiled(images)
    assert torch.equal(buf, nj.roundtrip(images, 50))
    assert torch.equal(got, buf * 2)
