"""The tiled CUDA forward kernels (csrc/include/nnjpeg/tile_444.h, and the 4:2:0 luma phase of tile_420.h),
run on the host.

The kernels split each 8x8 block over 8 threads that exchange rows and columns through shared memory. The
binding replays their phases in barrier order on the CPU (``_C.emulate_cuda_tile_forward``): this checks the
kernels' indexing, tiling and phase structure without a GPU. Their arithmetic is the shared block math in
the same order, so the result must equal the CPU kernel's bit for bit.
"""

import pytest
import torch

import nnjpeg_cuda as nj
from nnjpeg_cuda import _C, _kernel, tables

CODES = {torch.uint8: 0, torch.float32: 1, torch.float64: 2}


def emulate(images: torch.Tensor, steps: torch.Tensor, color: str = "ycbcr", grad: str = "bpda",
            subsampling: str = "4:4:4") -> torch.Tensor:
    out = torch.full((steps.shape[0], *images.shape), 77, dtype=images.dtype)  # poisoned: every pixel rewritten
    steps = steps.contiguous()
    n, _, h, w = images.shape
    # 4:2:0: the chroma phase's decoded Cb/Cr, in the compute dtype (poisoned too: all of it written first)
    workspace = torch.full((steps.shape[0], n, 2, (h + 15) // 16 * 8, (w + 15) // 16 * 8), float("nan"),
                           dtype=torch.float64 if images.dtype == torch.float64 else torch.float32)
    _C.emulate_cuda_tile_forward(
        input=images.data_ptr(), output=out.data_ptr(), tables=steps.data_ptr(), shape=tuple(images.shape),
        levels=steps.shape[0], in_strides=images.stride(), out_strides=out.stride(),
        table_strides=(steps.stride(0), steps.stride(1)), dtype=CODES[images.dtype],
        color=_kernel._COLOR_CODE[color], rounding=_kernel._ROUNDING_CODE[grad],
        subsampling=_kernel._SUBSAMPLING_CODE[subsampling], workspace=workspace.data_ptr())
    return out


@pytest.mark.parametrize("color,channels", [("ycbcr", 3), ("rgb", 3), ("ycbcr", 1)])
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.float64])
@pytest.mark.parametrize("size", [(1, 1), (8, 8), (13, 29), (40, 72), (64, 64)])
def test_tile_kernel_equals_cpu_kernel_bitwise(color, channels, dtype, size):
    gen = torch.Generator().manual_seed(sum(size) + channels)
    # 5 images: the number of 8x8 blocks is rarely a multiple of the 16-block tile, so the last tile is partial.
    x = torch.rand(5, channels, *size, generator=gen, dtype=torch.float64)
    x = (x * 255).round().to(torch.uint8) if dtype == torch.uint8 else x.to(dtype)
    qualities = [90, 35, 3]
    steps = tables.level_tables(qualities, "standard", 5)
    expected = nj.roundtrip_multi(x, qualities, color=color)
    assert torch.equal(emulate(x, steps, color), expected)


def test_tile_kernel_smooth_rounding_and_per_image_tables():
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(3, 3, 24, 40, generator=gen)
    base = torch.randint(1, 90, (3, 2, 8, 8), generator=gen).float()
    steps = tables.image_tables(torch.tensor([20, 50, 80]), base, 3)[None]
    expected = nj.roundtrip(x, torch.tensor([20, 50, 80]), table=base, grad="smooth")
    assert torch.equal(emulate(x, steps, grad="smooth")[0], expected)


def test_tile_kernel_channels_last_input():
    x = torch.rand(2, 3, 32, 48).contiguous(memory_format=torch.channels_last)
    steps = tables.level_tables([60], "standard", 2)
    assert torch.equal(emulate(x, steps)[0], nj.roundtrip(x.contiguous(), 60))


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.float64])
@pytest.mark.parametrize("size", [(1, 1), (8, 8), (13, 29), (16, 16), (40, 72), (33, 50)])
def test_tiled_420_luma_phase_equals_cpu_kernel_bitwise(dtype, size):
    # The 4:2:0 forward as the GPU runs it: the chroma phase block by block, then the luma phase in tiles.
    gen = torch.Generator().manual_seed(sum(size) + 7)
    x = torch.rand(5, 3, *size, generator=gen, dtype=torch.float64)
    x = (x * 255).round().to(torch.uint8) if dtype == torch.uint8 else x.to(dtype)
    qualities = [90, 35, 3]
    steps = tables.level_tables(qualities, "standard", 5)
    expected = nj.roundtrip_multi(x, qualities, subsampling="4:2:0")
    assert torch.equal(emulate(x, steps, subsampling="4:2:0"), expected)


def test_tiled_420_smooth_rounding_and_per_image_tables():
    gen = torch.Generator().manual_seed(2)
    x = torch.rand(3, 3, 24, 40, generator=gen)
    base = torch.randint(1, 90, (3, 2, 8, 8), generator=gen).float()
    steps = tables.image_tables(torch.tensor([20, 50, 80]), base, 3)[None]
    expected = nj.roundtrip(x, torch.tensor([20, 50, 80]), table=base, grad="smooth", subsampling="4:2:0")
    assert torch.equal(emulate(x, steps, grad="smooth", subsampling="4:2:0")[0], expected)
