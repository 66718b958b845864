"""The compiled CPU kernel against the float64 pure-PyTorch reference.

Stated bound. The kernel computes in float32 for uint8/float32 images (float64 for float64 images), the
reference in float64. They agree to float32 rounding except at rounding boundaries:
- a DCT coefficient F with t = F/Q within float32 error of k + 1/2 may round to either neighbour, and
  the whole 8x8 block (for 4:2:0 chroma, its 16x16 pixels and 2 pixels of upsampling around them) then
  differs by one step. Integer pixel values make exact ties common in gray and plain-RGB mode (the DC
  coefficient is sum/8), so such blocks are found from the reference's own coefficients
  (|t - floor(t) - 1/2| < 1e-4) and excused;
- a uint8 output whose exact value is within 1e-3 of a half-integer may round either way.
So: float64 images agree to 1e-9 (tie-free random inputs); float32 images agree to 1e-5 outside tie blocks;
uint8 images differ only in tie blocks, or by one level at half-integer outputs.
"""

import numpy as np
import pytest
import torch

import nnjpeg_cuda as nj
from nnjpeg_cuda import reference

QUALITIES = [1, 3, 10, 25, 50, 75, 90, 97, 100]
CONFIGS = [("4:4:4", "ycbcr", 3), ("4:2:0", "ycbcr", 3), ("4:4:4", "rgb", 3), ("4:4:4", "ycbcr", 1)]


def _images(photo_batch, channels):
    x = photo_batch
    if channels == 1:
        x = x.double().mean(dim=1, keepdim=True).round().to(torch.uint8)
    return x


def _near_tie_blocks(plane: torch.Tensor, steps: torch.Tensor, block: int) -> torch.Tensor:
    """(N, P, H, W) level-shifted planes, (N, 8, 8) steps -> (N, H', W') pixel mask of blocks with a near tie."""
    coef = reference.block_dct(reference._pad_to(plane, 8))  # (N, P, bh, bw, 8, 8)
    q = steps.double()[:, None, None, None]
    t = coef / q
    near = ((t - torch.floor(t) - 0.5).abs() < 1e-4).flatten(-2).any(-1).any(1)  # (N, bh, bw)
    return near.repeat_interleave(block, 1).repeat_interleave(block, 2)


def tie_mask(x255: torch.Tensor, steps: torch.Tensor, subsampling: str, color: str) -> torch.Tensor:
    """(N, H, W) True where the reference has a quantization tie that may flip (see module docstring)."""
    n, c, h, w = x255.shape
    ycc = c == 3 and color == "ycbcr"
    planes = reference.rgb_to_ycbcr(x255) - 128 if ycc else x255 - 128
    if not ycc:
        return _near_tie_blocks(planes, steps[:, 0], 8)[:, :h, :w]
    if subsampling == "4:4:4":
        return (_near_tie_blocks(planes[:, :1], steps[:, 0], 8) | _near_tie_blocks(planes[:, 1:], steps[:, 1], 8)
                )[:, :h, :w]
    luma = _near_tie_blocks(planes[:, :1], steps[:, 0], 8)[:, :h, :w]
    sub = torch.nn.functional.avg_pool2d(reference._pad_to(planes[:, 1:], 16), 2)
    chroma = _near_tie_blocks(sub, steps[:, 1], 16).double()
    chroma = torch.nn.functional.max_pool2d(chroma[:, None], 5, stride=1, padding=2)[:, 0] > 0
    return luma | chroma[:, :h, :w]


def _steps(quality, n):
    return nj.tables.image_tables(quality, "standard", n)


@pytest.mark.parametrize("subsampling,color,channels", CONFIGS)
@pytest.mark.parametrize("quality", QUALITIES)
def test_float32_kernel_matches_reference_on_real_photos(photo_batch, subsampling, color, channels, quality):
    # Sub-level jitter keeps the photo's content but breaks the exact ties that integer pixels create.
    gen = torch.Generator().manual_seed(quality)
    jitter = (torch.rand(photo_batch[:, :channels].shape, generator=gen) - 0.5) * 0.5
    x = ((_images(photo_batch, channels).float() + jitter).clamp(0, 255) / 255)
    out = nj.roundtrip(x, quality, subsampling=subsampling, color=color)
    ref = reference.roundtrip(x.double(), quality, subsampling=subsampling, color=color)
    diff = (out.double() - ref).abs().amax(1)  # (N, H, W)
    ties = tie_mask(x.double() * 255, _steps(quality, x.shape[0]), subsampling, color)
    assert diff[~ties].max().item() <= 1e-5
    assert ties.double().mean().item() < 0.1, "too many tie blocks for the comparison to mean anything"


@pytest.mark.parametrize("subsampling,color,channels", CONFIGS)
@pytest.mark.parametrize("quality", QUALITIES)
def test_uint8_kernel_matches_reference_on_real_photos(photo_batch, subsampling, color, channels, quality):
    x = _images(photo_batch, channels)
    out = nj.roundtrip(x, quality, subsampling=subsampling, color=color)
    assert out.dtype == torch.uint8
    ref = reference.roundtrip(x, quality, subsampling=subsampling, color=color)
    diff = (out.int() - ref.int()).abs()
    steps = _steps(quality, x.shape[0])
    exact = reference.decode_levels(x.double(), steps[None].double(), subsampling, color)[0]
    half = (exact - torch.floor(exact) - 0.5).abs() < 1e-3
    ties = tie_mask(x.double(), steps, subsampling, color)[:, None]
    assert ((diff > 1) & ~ties).sum().item() == 0
    assert ((diff > 0) & ~half & ~ties).sum().item() == 0
    # Integer pixels make coefficients (0,0), (0,4), (4,0), (4,4) multiples of 1/8: at Q <= 2 in plain-RGB mode
    # most blocks hold an exact tie, so the bound below only keeps a quarter of the blocks in play there.
    assert ties.double().mean().item() < 0.8, "too many tie blocks for the comparison to mean anything"


@pytest.mark.parametrize("subsampling,color,channels", CONFIGS)
@pytest.mark.parametrize("size", [(1, 1), (7, 9), (37, 53), (17, 33), (8, 16)])
def test_float64_kernel_equals_reference_on_odd_sizes(subsampling, color, channels, size):
    gen = torch.Generator().manual_seed(hash((subsampling, color, channels, size)) % 2**31)
    x = torch.rand(2, channels, *size, dtype=torch.float64, generator=gen)
    for quality in (5, 50, 95):
        out = nj.roundtrip(x, quality, subsampling=subsampling, color=color)
        ref = reference.roundtrip(x, quality, subsampling=subsampling, color=color)
        assert out.shape == x.shape and out.dtype == torch.float64
        assert (out - ref).abs().max().item() <= 1e-9


@pytest.mark.parametrize("subsampling", ["4:4:4", "4:2:0"])
def test_per_image_quality_and_tables_match_reference(subsampling):
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(3, 3, 24, 40, dtype=torch.float64, generator=gen)
    q = torch.tensor([10, 50, 90])
    out = nj.roundtrip(x, q, subsampling=subsampling)
    ref = reference.roundtrip(x, q, subsampling=subsampling)
    assert (out - ref).abs().max().item() <= 1e-9
    base = torch.randint(1, 120, (3, 2, 8, 8), generator=gen).float()
    out = nj.roundtrip(x, 60, table=base, subsampling=subsampling)
    ref = reference.roundtrip(x, 60, table=base, subsampling=subsampling)
    assert (out - ref).abs().max().item() <= 1e-9


@pytest.mark.parametrize("subsampling,color,channels", CONFIGS)
def test_multi_level_equals_single_calls_bitwise(photo_batch, subsampling, color, channels):
    x = _images(photo_batch, channels).float() / 255
    qualities = [95, 60, 30, 10, 2]
    multi = nj.roundtrip_multi(x, qualities, subsampling=subsampling, color=color)
    assert multi.shape == (5, *x.shape)
    for k, q in enumerate(qualities):
        assert torch.equal(multi[k], nj.roundtrip(x, q, subsampling=subsampling, color=color))


def test_multi_level_with_per_level_and_image_qualities_matches_reference():
    gen = torch.Generator().manual_seed(4)
    x = torch.rand(2, 3, 16, 24, dtype=torch.float64, generator=gen)
    q = torch.tensor([[90, 20], [40, 70]])  # (K, N)
    out = nj.roundtrip_multi(x, q)
    for k in range(2):
        ref = reference.roundtrip(x, q[k])
        assert (out[k] - ref).abs().max().item() <= 1e-9


@pytest.mark.parametrize("subsampling", ["4:4:4", "4:2:0"])
def test_strided_inputs_give_the_same_result(photo_batch, subsampling):
    x = photo_batch.float() / 255
    dense = nj.roundtrip(x, 40, subsampling=subsampling)
    cl = x.contiguous(memory_format=torch.channels_last)
    out_cl = nj.roundtrip(cl, 40, subsampling=subsampling)
    assert out_cl.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(out_cl, dense)
    wide = torch.zeros(3, 3, 96, 240)
    wide[..., ::2] = x  # a strided view: every other column
    out_view = nj.roundtrip(wide[..., ::2], 40, subsampling=subsampling)
    assert torch.equal(out_view, dense)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_inputs_follow_float32(photo_batch, dtype):
    x = (photo_batch.float() / 255).to(dtype)
    out = nj.roundtrip(x, 50)
    assert out.dtype == dtype
    expected = nj.roundtrip(x.float(), 50).to(dtype)
    assert torch.equal(out, expected)


def test_unbatched_image_round_trips_like_a_batch_of_one(photo_batch):
    x = photo_batch[0].float() / 255
    out = nj.roundtrip(x, 30)
    assert out.shape == x.shape
    assert torch.equal(out, nj.roundtrip(x[None], 30)[0])


def test_kernel_is_not_the_reference_fallback():
    # The compiled extension must be what serves CPU tensors (the fallback would hide kernel bugs).
    assert nj.extension_available()
    from nnjpeg_cuda import _kernel
    assert _kernel.has_kernel(torch.device("cpu"))
