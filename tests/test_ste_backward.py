"""The "ste" backward from the saved output (nnjpeg::roundtrip_backward_ste, csrc/include/nnjpeg/ste_backward.h).

Oracles: the backward kernel that recomputes the whole round trip (nnjpeg::roundtrip_backward, called
explicitly) and autograd through the float64 reference. Inputs are real photos, photos pushed into
saturation (outputs exactly 0 and 1, decoded pixels beyond [0, 255]), and flat black/white blocks whose
decoded pixels land exactly on 0 and 255, where only the recomputation can tell "passes" from "blocked".
"""

import numpy as np
import pytest
import torch

import nnjpeg_cuda as nj
from nnjpeg_cuda import _kernel, ops, reference

from _reliability import COEF_EPS, TOL_COMPUTE, flip_budget

pytestmark = pytest.mark.skipif(not _kernel.extension_available(), reason="needs the compiled extension")

CONFIGS = [("ycbcr", 3), ("rgb", 3), ("ycbcr", 1)]
LEVELS = [[75], [95, 50, 10]]
# |new - old|: the old kernel runs the DCT pair and the colour adjoints in the compute type, the new one
# only adds; both apply the same mask. Measured maxima: ~3e-6 (float32), ~4e-15 (float64) for unit
# gradients summed over three levels.
ATOL = {torch.float32: 5e-5, torch.float64: 1e-12}


def _images(photos, kind: str, channels: int, dtype) -> torch.Tensor:
    """(2, C, 37, 53) images: odd sizes, so the last block row and column are padding."""
    crops = [photos["astronaut"][60:97, 100:153], photos["coffee"][200:237, 300:353]]
    x = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).to(torch.float64) / 255
    if kind == "saturated":
        x = ((x - 0.5) * 2.2 + 0.5).clamp(0, 1)  # exact 0s and 1s, and ringing past the clamp
    elif kind == "flat":
        # 8x8-aligned black, white and mid-grey blocks: at quality 100 their decoded pixels are exactly 0 and 255.
        x = torch.full_like(x, 0.5)
        x[:, :, :16, :24] = 0.0
        x[:, :, 16:32, 24:48] = 1.0
    if channels == 1:
        x = x.mean(1, keepdim=True)
    return x.to(dtype)


def _layout(x: torch.Tensor, layout: str) -> torch.Tensor:
    if layout == "channels_last":
        return x.contiguous(memory_format=torch.channels_last)
    if layout == "strided":  # every other column of a wider tensor: W stride 2
        wide = torch.zeros(*x.shape[:3], 2 * x.shape[3], dtype=x.dtype)
        wide[..., ::2] = x
        return wide[..., ::2]
    return x.contiguous()


def _forward(x, qualities, color):
    steps = nj.tables.level_tables(qualities, "standard", x.shape[0]).contiguous()
    y = torch.ops.nnjpeg.roundtrip(x, steps, "4:4:4", color, "ste", True)
    return steps, y


def _reference_vjp(x, steps, color, g):
    """Autograd through the float64 reference; also returns its decoded pixels (before the clamp)."""
    x64 = x.detach().to(torch.float64).requires_grad_(True)
    px = reference.decode_levels((x64 * 255).clamp(0, 255), steps.to(torch.float64), "4:4:4", color, "ste")
    (px.clamp(0, 255) / 255).backward(g.to(torch.float64))
    return x64.grad, px.detach()


@pytest.mark.parametrize("color,channels", CONFIGS)
@pytest.mark.parametrize("qualities", LEVELS)
@pytest.mark.parametrize("kind", ["photo", "saturated"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_equals_the_recomputing_backward_kernel(photos, color, channels, qualities, kind, dtype):
    x = _images(photos, kind, channels, dtype)
    steps, y = _forward(x, qualities, color)
    g = torch.randn(y.shape, generator=torch.Generator().manual_seed(1), dtype=dtype)
    new = ops.roundtrip_backward_ste(g, y, x, steps, "4:4:4", color)
    old = ops.roundtrip_backward(g, x, steps, "4:4:4", color, "ste")
    torch.testing.assert_close(new, old, atol=ATOL[dtype], rtol=0)
    if kind == "saturated":  # the mask is doing something: clamped pixels get (almost) no gradient
        assert (new - g.sum(0)).abs().max() > 0.5


@pytest.mark.parametrize("color,channels", CONFIGS)
@pytest.mark.parametrize("qualities", LEVELS)
@pytest.mark.parametrize("kind", ["photo", "saturated"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_autograd_through_the_float64_reference(photos, color, channels, qualities, kind, dtype):
    x = _images(photos, kind, channels, dtype)
    steps, y = _forward(x, qualities, color)
    g = torch.randn(y.shape, generator=torch.Generator().manual_seed(2), dtype=dtype)
    xr = x.clone().requires_grad_(True)
    torch.ops.nnjpeg.roundtrip(xr, steps, "4:4:4", color, "ste", True).backward(g)
    expected, px = _reference_vjp(x, steps, color, g)
    # Tie-aware (tests/_reliability.py): a pixel whose reference value lies within the kernel's arithmetic
    # error plus the rounding-flip budget of 0 or 255, at some level, may clamp either way; compare elsewhere.
    budget = flip_budget((x.double() * 255).clamp(0, 255), steps, "4:4:4", color, COEF_EPS[dtype])
    near = TOL_COMPUTE[dtype] + budget
    tie = ((px.abs() <= near) | ((px - 255).abs() <= near)).any(0)
    assert tie.float().mean() < 0.5  # saturated float32 photos: flat 0/255 areas are ties (checked vs old kernel)
    torch.testing.assert_close(xr.grad.to(torch.float64)[~tie], expected[~tie],
                               atol=2e-5 if dtype == torch.float32 else 1e-12, rtol=0)


@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_memory_layouts_give_the_same_gradient(photos, layout, dtype):
    x = _images(photos, "saturated", 3, dtype)
    steps, y = _forward(x, [90, 30], "ycbcr")
    g = torch.randn(y.shape, generator=torch.Generator().manual_seed(3), dtype=dtype)
    expected = ops.roundtrip_backward_ste(g, y, x, steps, "4:4:4", "ycbcr")
    xl = _layout(x, layout)
    steps_l, y_l = _forward(xl, [90, 30], "ycbcr")
    assert torch.equal(y_l, y)
    # grad_out and the saved output in other layouts too: channels_last levels, and a transposed copy.
    g_l = g.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)
    y_t = y_l.transpose(3, 4).contiguous().transpose(3, 4)
    got = ops.roundtrip_backward_ste(g_l, y_t, xl, steps_l, "4:4:4", "ycbcr")
    assert torch.equal(got, expected)


def test_broadcast_grad_out_from_a_sum(photos):
    x = _images(photos, "saturated", 3, torch.float32).requires_grad_(True)
    nj.roundtrip_multi(x, [80, 20], grad="ste").sum().backward()  # grad_out: stride-0 ones
    steps, y = _forward(x.detach(), [80, 20], "ycbcr")
    old = ops.roundtrip_backward(torch.ones_like(y), x.detach(), steps, "4:4:4", "ycbcr", "ste")
    torch.testing.assert_close(x.grad, old, atol=ATOL[torch.float32], rtol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind", ["photo", "saturated", "flat"])
def test_fast_path_and_recomputed_blocks_agree_bitwise(photos, dtype, kind):
    x = _images(photos, kind, 3, dtype)
    steps, y = _forward(x, [100, 60], "ycbcr")
    g = torch.randn(y.shape, generator=torch.Generator().manual_seed(4), dtype=dtype)
    fast, slow = torch.empty_like(x), torch.empty_like(x)
    _kernel.backward_ste(g, y, x, steps, fast, "4:4:4", "ycbcr")
    _kernel.backward_ste(g, y, x, steps, slow, "4:4:4", "ycbcr", always_recompute=True)
    assert torch.equal(fast, slow)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("layout", ["contiguous", "strided"])
@pytest.mark.parametrize("always_recompute", [False, True])
def test_host_replay_of_the_cuda_kernel_equals_the_cpu_driver(photos, dtype, layout, always_recompute):
    # The CUDA kernel runs ste_backward_block per block; the CPU driver runs the same steps strip by strip.
    x = _layout(_images(photos, "saturated", 3, dtype), layout)
    steps, y = _forward(x, [90, 40, 15], "ycbcr")
    g = torch.randn(y.shape, generator=torch.Generator().manual_seed(6), dtype=dtype)
    cpu, replay = torch.empty_like(x), torch.empty_like(x)
    _kernel.backward_ste(g, y, x, steps, cpu, "4:4:4", "ycbcr", always_recompute)
    _kernel.backward_ste(g, y, x, steps, replay, "4:4:4", "ycbcr", always_recompute, cuda_replay=True)
    assert torch.equal(cpu, replay)


@pytest.mark.parametrize("always_recompute", [False, True])
@pytest.mark.parametrize("channels", [3, 1])
@pytest.mark.parametrize("qualities", [[75], [90, 40, 15]])
def test_every_cpu_simd_path_recomputes_bitwise_like_the_scalar_one(photos, always_recompute, channels, qualities):
    # float32 blocks that need their pixels run through the SIMD block math (ste_simd_impl.h), one block per lane.
    x = _layout(_images(photos, "saturated", channels, torch.float32), "strided")
    steps, y = _forward(x, qualities, "ycbcr")
    g = torch.randn(y.shape, generator=torch.Generator().manual_seed(8))
    results = {}
    try:
        for isa in _kernel._C.cpu_isas():  # "scalar" first
            _kernel._C.set_cpu_isa(isa)
            results[isa] = torch.empty_like(x)
            _kernel.backward_ste(g, y, x, steps, results[isa], "4:4:4", "ycbcr", always_recompute)
    finally:
        _kernel._C.set_cpu_isa("auto")
    assert "scalar" in results
    for isa, got in results.items():
        assert torch.equal(got, results["scalar"]), isa


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("always_recompute", [False, True])
def test_simd_recompute_across_small_images_with_their_own_tables(photos, layout, always_recompute):
    # Small images: one work item queues the blocks of several images into one vector, flushed where the
    # next image has other tables; the right and bottom edges (12 x 20) take the per-lane paths.
    crops = [photos[name][y:y + 12, x:x + 20] for name in ("astronaut", "coffee") for y, x in ((40, 60), (150, 210), (300, 90))]
    x = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).to(torch.float32) / 255
    x = _layout(((x - 0.5) * 2.4 + 0.5).clamp(0, 1), layout)
    qualities = torch.tensor([[90, 70, 50, 30, 95, 10], [40, 40, 80, 20, 60, 75]])
    steps = nj.tables.level_tables(qualities, "standard", x.shape[0]).contiguous()
    y = torch.ops.nnjpeg.roundtrip(x, steps, "4:4:4", "ycbcr", "ste", True)
    g = torch.randn(y.shape, generator=torch.Generator().manual_seed(9))
    results = {}
    try:
        for isa in _kernel._C.cpu_isas():
            _kernel._C.set_cpu_isa(isa)
            results[isa] = torch.empty_like(x)
            _kernel.backward_ste(g, y, x, steps, results[isa], "4:4:4", "ycbcr", always_recompute)
    finally:
        _kernel._C.set_cpu_isa("auto")
    for isa, got in results.items():
        assert torch.equal(got, results["scalar"]), isa
    want = ops.roundtrip_backward(g, x, steps, "4:4:4", "ycbcr", "ste")
    assert (results["scalar"] - want).abs().max() <= ATOL[torch.float32]


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cuda_kernel_equals_the_cpu_kernel(photos, dtype):
    x = _images(photos, "saturated", 3, dtype)
    steps, y = _forward(x, [90, 40, 15], "ycbcr")
    g = torch.randn(y.shape, generator=torch.Generator().manual_seed(7), dtype=dtype)
    cpu = ops.roundtrip_backward_ste(g, y, x, steps, "4:4:4", "ycbcr")
    xc, stepsc = x.cuda(), steps.cuda()
    yc = torch.ops.nnjpeg.roundtrip(xc, stepsc, "4:4:4", "ycbcr", "ste", True)
    assert torch.equal(yc.cpu(), y)
    gpu = ops.roundtrip_backward_ste(g.cuda(), yc, xc, stepsc, "4:4:4", "ycbcr")
    assert torch.equal(gpu.cpu(), cpu)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_outputs_exactly_on_the_bounds_need_the_recomputed_pixels(photos, dtype):
    # Flat black and white blocks: in float32 some decode exactly to 0 and 255 (gradient passes), others just
    # beyond (blocked). The output alone (exactly 0 or 1) cannot tell them apart; the recomputation can, and
    # must agree with the recomputing kernel. (With the AAN arithmetic, float64 decodes of these blocks miss
    # the bounds by a few ulps, so there only the agreement is checked.)
    x = _images(photos, "flat", 3, dtype)
    found = False
    for quality in (100, 95, 90, 75, 50):
        steps, y = _forward(x, [quality], "ycbcr")
        g = torch.ones_like(y)
        on_bound = (y == 0) | (y == 1)
        assert on_bound.any()
        new = ops.roundtrip_backward_ste(g, y, x, steps, "4:4:4", "ycbcr")
        old = ops.roundtrip_backward(g, x, steps, "4:4:4", "ycbcr", "ste")
        torch.testing.assert_close(new, old, atol=ATOL[dtype], rtol=0)
        naive = (g * ~on_bound).sum(0)  # what a mask from the output alone would give
        found = found or bool(((new - naive).abs() > 0.5).any())
    if dtype == torch.float32:
        assert found
    # (No float64-reference comparison here: a pixel decoded to exactly 0 by the kernel may be -1e-13 in the
    # reference; such ties are excluded in test_matches_autograd_through_the_float64_reference.)


def test_result_does_not_depend_on_the_thread_count(photo_batch):
    # 3 images x 12 block rows = 36 strips: enough work items for the CPU driver to start a second thread.
    x = ((photo_batch.to(torch.float32) / 255 - 0.5) * 2.2 + 0.5).clamp(0, 1)
    steps, y = _forward(x, [75, 25], "ycbcr")
    g = torch.randn(y.shape, generator=torch.Generator().manual_seed(5))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = ops.roundtrip_backward_ste(g, y, x, steps, "4:4:4", "ycbcr")
        torch.set_num_threads(2)
        two = ops.roundtrip_backward_ste(g, y, x, steps, "4:4:4", "ycbcr")
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one, two)


def test_autograd_routes_ste_444_to_the_new_op_and_420_to_the_old(photos, monkeypatch):
    calls = []
    old_backward = _kernel.backward
    monkeypatch.setattr(_kernel, "backward", lambda *a, **k: (calls.append("old"), old_backward(*a, **k)))
    x = _images(photos, "photo", 3, torch.float32)
    for subsampling, color, grad in [("4:4:4", "ycbcr", "ste"), ("4:4:4", "rgb", "ste")]:
        nj.roundtrip(x.clone().requires_grad_(True), 50, subsampling=subsampling, color=color,
                     grad=grad).sum().backward()
    assert calls == []
    nj.roundtrip(x.clone().requires_grad_(True), 50, subsampling="4:2:0", grad="ste").sum().backward()
    nj.roundtrip(x.clone().requires_grad_(True), 50, grad="smooth").sum().backward()
    assert calls == ["old", "old"]


def test_changing_the_output_in_place_before_backward_raises():
    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    y = nj.roundtrip(x, 50, grad="ste")
    y.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


@pytest.mark.parametrize("color,channels", CONFIGS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_opcheck(color, channels, dtype):
    x = torch.rand(2, channels, 13, 21, dtype=dtype)
    steps, y = _forward(x, [50, 20], color)
    g = torch.randn(y.shape, dtype=dtype)
    torch.library.opcheck(torch.ops.nnjpeg.roundtrip_backward_ste.default, (g, y, x, steps, "4:4:4", color))


def test_bad_arguments_raise():
    x = torch.rand(2, 3, 16, 16)
    steps, y = _forward(x, [50], "ycbcr")
    g = torch.ones_like(y)
    op = ops.roundtrip_backward_ste
    with pytest.raises(ValueError, match="grad_out must have shape"):
        op(g[:, :1], y, x, steps, "4:4:4", "ycbcr")
    with pytest.raises(ValueError, match="output must have shape"):
        op(g, y[..., :8], x, steps, "4:4:4", "ycbcr")
    with pytest.raises(TypeError, match="output must have the images' dtype"):
        op(g, y.double(), x, steps, "4:4:4", "ycbcr")
    with pytest.raises(ValueError, match="4:2:0"):
        op(g, y, x, steps, "4:2:0", "ycbcr")
    with pytest.raises(TypeError, match="floating-point"):
        op(g, y, (x * 255).to(torch.uint8), steps, "4:4:4", "ycbcr")
    with pytest.raises(ValueError, match="null output"):
        _kernel._C.backward_ste(
            device_type="cpu", input=x.data_ptr(), output=0, grad_output=g.data_ptr(), grad_input=x.data_ptr(),
            tables=steps.data_ptr(), shape=(2, 3, 16, 16), levels=1, in_strides=x.stride(), out_strides=y.stride(),
            grad_out_strides=g.stride(), grad_in_strides=x.stride(), table_strides=(steps.stride(0), steps.stride(1)),
            dtype=1, subsampling=0, color=0, num_threads=1, device=0, stream=0)
    with pytest.raises(ValueError, match="must be non-negative"):
        _kernel._C.backward_ste(
            device_type="cpu", input=x.data_ptr(), output=y.data_ptr(), grad_output=g.data_ptr(),
            grad_input=x.data_ptr(), tables=steps.data_ptr(), shape=(2, 3, 16, 16), levels=1, in_strides=x.stride(),
            out_strides=(-1, 0, 0, 0, 0), grad_out_strides=g.stride(), grad_in_strides=x.stride(),
            table_strides=(steps.stride(0), steps.stride(1)), dtype=1, subsampling=0, color=0, num_threads=1,
            device=0, stream=0)
