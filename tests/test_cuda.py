"""The CUDA kernel: its grid arithmetic replayed on the host (always), and on a GPU (marked cuda) the same
results as the CPU kernel, on the current stream, for every mode."""

import pytest
import torch

import nnjpeg_cuda as nj
from nnjpeg_cuda import _C, reference


@pytest.mark.parametrize("items", [0, 1, 127, 128, 129, 1000, 123457])
def test_cuda_grid_visits_every_block_exactly_once(items):
    visits = _C.cuda_grid_visits(items)
    assert len(visits) == items
    assert all(v == 1 for v in visits)


@pytest.mark.parametrize("items,max_blocks", [(1000, 1), (1000, 3), (129 * 7 + 5, 7), (50000, 64)])
def test_cuda_grid_stride_loop_covers_items_beyond_one_sweep(items, max_blocks):
    # A capped grid makes each thread loop over several items: the path large batches take on a GPU.
    visits = _C.cuda_grid_visits(items, max_blocks=max_blocks)
    assert len(visits) == items and all(v == 1 for v in visits)


def test_cuda_built_reports_the_build():
    assert isinstance(nj.cuda_built(), bool)


CONFIGS = [("4:4:4", "ycbcr", 3), ("4:2:0", "ycbcr", 3), ("4:4:4", "rgb", 3), ("4:4:4", "ycbcr", 1)]


@pytest.mark.cuda
@pytest.mark.parametrize("subsampling,color,channels", CONFIGS)
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.float64, torch.float16])
def test_cuda_matches_cpu(subsampling, color, channels, dtype):
    assert nj.cuda_built(), "a GPU is present but the CUDA kernels were not built"
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(3, channels, 45, 77, generator=gen, dtype=torch.float64)
    x = (x * 255).round().to(torch.uint8) if dtype == torch.uint8 else x.to(dtype)
    q = torch.tensor([10, 50, 90])
    cpu = nj.roundtrip(x, q, subsampling=subsampling, color=color)
    gpu = nj.roundtrip(x.cuda(), q.cuda(), subsampling=subsampling, color=color).cpu()
    if dtype == torch.float64:
        torch.testing.assert_close(gpu, cpu, atol=1e-9, rtol=0)
    elif dtype == torch.uint8:
        assert (gpu.int() - cpu.int()).abs().float().mean().item() < 1e-3
    else:
        # Same float32 arithmetic, but FMA contraction differs between nvcc and the host compiler: allow
        # rare rounding-boundary flips (the kernel-vs-reference bound in test_kernel_vs_reference.py).
        diff = (gpu.double() - cpu.double()).abs()
        assert (diff > 1e-3).double().mean().item() < 0.01


@pytest.mark.cuda
@pytest.mark.parametrize("grad", ["ste", "smooth"])
def test_cuda_backward_matches_reference(grad):
    x = torch.rand(2, 3, 24, 40, dtype=torch.float64, device="cuda", requires_grad=True)
    g = torch.randn_like(x)
    nj.roundtrip(x, 40, grad=grad).backward(g)
    xr = x.detach().cpu().requires_grad_(True)
    reference.roundtrip(xr, 40, grad=grad).backward(g.cpu())
    torch.testing.assert_close(x.grad.cpu(), xr.grad, atol=1e-9, rtol=1e-9)


@pytest.mark.cuda
def test_cuda_multi_level_channels_last_and_streams():
    x = torch.rand(4, 3, 64, 64, device="cuda").contiguous(memory_format=torch.channels_last)
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        out = nj.roundtrip_multi(x, [90, 50, 10])
    stream.synchronize()
    for k, q in enumerate([90, 50, 10]):
        assert torch.equal(out[k], nj.roundtrip(x, q))
    assert nj.roundtrip(x, 50).is_contiguous(memory_format=torch.channels_last)


@pytest.mark.cuda
def test_cuda_compile_fullgraph():
    model = torch.nn.Sequential(nj.JPEG(40), torch.nn.Conv2d(3, 4, 3)).cuda()
    x = torch.rand(2, 3, 32, 32, device="cuda")
    torch.testing.assert_close(torch.compile(model, fullgraph=True)(x), model(x))


@pytest.mark.cuda
@pytest.mark.slow
def test_cuda_tiles_past_the_grid_cap_are_computed():
    # More tiles than kMaxGridBlocks (launch.h: 1 << 20 thread blocks of 16 8x8 blocks each), so every thread
    # block loops: the last images are computed in the grid-stride loop's second sweep. 257 gray 2048x2048
    # uint8 images = 16.8M blocks (1.1 GB in, 1.1 GB out on the GPU).
    n, side = 257, 2048
    assert n * (side // 8) ** 2 > 16 * (1 << 20)
    x = torch.randint(0, 256, (n, 1, side, side), dtype=torch.uint8, device="cuda",
                      generator=torch.Generator(device="cuda").manual_seed(0))
    gpu = nj.roundtrip(x, 50)
    for i in (0, n - 1):  # the first sweep's first tiles and the second sweep's last ones
        cpu = nj.roundtrip(x[i:i + 1].cpu(), 50)
        assert (gpu[i:i + 1].cpu().int() - cpu.int()).abs().float().mean().item() < 1e-3
