"""The forward's per-block clamp summary and pass masks, and the "ste" backward that uses them
(``nnjpeg::roundtrip_ste``).

The summary (csrc/include/nnjpeg/params.h) says per block and level whether some decoded pixel was clamped
and whether some unclamped one was stored as exactly 0 or 1; the pass masks, one bit per pixel of the blocks
with a clamped pixel, say which were not clamped. Oracles: the stored output itself (exact properties), the
float64 reference's decoded pixels away from the bounds, the scalar CPU path (bitwise), and the backward
without the summary, which must give the same gradient bit for bit.
"""

import numpy as np
import pytest
import torch

import nnjpeg_cuda as nj
from nnjpeg_cuda import _C, _kernel, ops, reference

from _reliability import COEF_EPS, TOL_COMPUTE, flip_budget
from test_ste_backward import CONFIGS, LEVELS, _images, _layout

pytestmark = pytest.mark.skipif(not _kernel.extension_available(), reason="needs the compiled extension")
KINDS = ["photo", "saturated", "flat"]


def _summary(x, qualities, color):
    steps = nj.tables.level_tables(qualities, "standard", x.shape[0]).contiguous()
    y, summary, _ = ops.roundtrip_ste(x, steps, "4:4:4", color, True)
    return steps, y, summary


def _summary_and_masks(x, qualities, color, shared_tables=False):
    """shared_tables: one table per level for every image (stride 0): the CPU kernel's SIMD groups then run
    across image boundaries."""
    steps = nj.tables.level_tables(qualities, "standard", x.shape[0])
    steps = steps if shared_tables else steps.contiguous()
    return (steps, *ops.roundtrip_ste(x, steps, "4:4:4", color, True))


def _mask_bits(masks: torch.Tensor) -> torch.Tensor:
    """(K, N, C, by, bx) int64 words -> (K, N, by, bx, C*8*8) bools, bit r*8+c of channel ch at ch*64 + r*8+c."""
    bits = (masks.unsqueeze(-1) >> torch.arange(64)) & 1
    return bits.permute(0, 1, 3, 4, 2, 5).reshape(*masks.shape[:2], *masks.shape[3:], -1).bool()


def _per_block(t: torch.Tensor) -> torch.Tensor:
    """(K, N, C, H, W) -> (K, N, by, bx, C*8*8) with the padding filled by edge values (never 0 or 1 alone)."""
    k, n, c, h, w = t.shape
    ph, pw = (-h) % 8, (-w) % 8
    t = torch.nn.functional.pad(t.reshape(k * n, c, h, w), (0, pw, 0, ph), mode="replicate")
    t = t.reshape(k, n, c, (h + ph) // 8, 8, (w + pw) // 8, 8)
    return t.permute(0, 1, 3, 5, 2, 4, 6).reshape(k, n, (h + ph) // 8, (w + pw) // 8, -1)


@pytest.mark.parametrize("color,channels", CONFIGS)
@pytest.mark.parametrize("qualities", LEVELS)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_summary_agrees_with_the_output_and_the_reference(photos, color, channels, qualities, kind, dtype):
    x = _images(photos, kind, channels, dtype)
    steps, y, summary = _summary(x, qualities, color)
    assert summary.dtype == torch.uint8 and tuple(summary.shape) == (len(qualities), 2, 5, 7)
    assert torch.equal(y, torch.ops.nnjpeg.roundtrip(x, steps, "4:4:4", color, "ste", True))
    blocks = _per_block(y)
    on_bound = ((blocks == 0) | (blocks == 1)).any(-1)
    inside = ((blocks > 0) & (blocks < 1)).all(-1)
    s = summary.int()
    assert bool((s <= 3).all())
    assert torch.equal(s == 0, inside | (s == 0))  # an empty summary: every output strictly inside (0, 1)
    assert bool((s[on_bound] != 0).all())          # an output on a bound: clamped or on the bound
    # Clamped or not, from the float64 reference where its pixels are clearly away from 0 and 255: beyond the
    # kernel's arithmetic error plus the rounding-flip budget (tests/_reliability.py), as the other oracles.
    x255 = (x.double() * 255).clamp(0, 255)
    px = _per_block(reference.decode_levels(x255, steps.double(), "4:4:4", color, "ste"))
    near = _per_block(TOL_COMPUTE[dtype] + flip_budget(x255, steps, "4:4:4", color, COEF_EPS[dtype]))
    surely_clamped = ((px < -near) | (px > 255 + near)).any(-1)
    surely_free = ((px > near) & (px < 255 - near)).all(-1)
    assert bool((s[surely_clamped] & 1).all())
    assert bool((s[surely_free] == 0).all())
    if kind == "saturated":
        assert bool((s & 1).any())


def _inside(k, n, c, h, w) -> torch.Tensor:
    """(K, N, by, bx, C*8*8) bools: True for the pixels inside the image, False for the padding."""
    ones = torch.ones(k * n, c, h, w)
    padded = torch.nn.functional.pad(ones, (0, (-w) % 8, 0, (-h) % 8))
    return _per_block(padded.reshape(k, n, c, *padded.shape[2:])).bool()


@pytest.mark.parametrize("color,channels", CONFIGS)
@pytest.mark.parametrize("qualities", LEVELS)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_pass_masks_agree_with_the_output_and_the_reference(photos, color, channels, qualities, kind, dtype):
    x = _images(photos, kind, channels, dtype)
    steps, y, summary, masks = _summary_and_masks(x, qualities, color)
    assert masks.dtype == torch.int64 and tuple(masks.shape) == (len(qualities), 2, channels, 5, 7)
    clamped = (summary & 1).bool()
    assert bool(_mask_bits(masks)[~clamped].all())  # a block without a clamped pixel: every bit set
    bits = _mask_bits(masks)[clamped]
    inside = _inside(*y.shape)[clamped]
    out = _per_block(y)[clamped]
    assert bool(bits[~inside].all())  # the padding's bits are set
    bits, out = bits[inside], out[inside]
    assert bool(((out == 0) | (out == 1))[~bits].all())  # a clamped pixel is stored on a bound
    assert bool(bits[(out > 0) & (out < 1)].all())        # one strictly inside (0, 1) was not clamped
    assert bool((~bits).any()) == bool(clamped.any())    # a block with a clamped pixel has a bit clear
    x255 = (x.double() * 255).clamp(0, 255)
    px = _per_block(reference.decode_levels(x255, steps.double(), "4:4:4", color, "ste"))[clamped][inside]
    near = _per_block(TOL_COMPUTE[dtype] + flip_budget(x255, steps, "4:4:4", color, COEF_EPS[dtype]))
    near = near[clamped][inside]
    assert bool((~bits[(px < -near) | (px > 255 + near)]).all())
    assert bool(bits[(px > near) & (px < 255 - near)].all())
    if kind == "saturated":
        assert bool(clamped.any())


def _whole_blocks(photos) -> torch.Tensor:
    """(2, 3, 64, 128) float32, whole blocks only (every SIMD group interior): saturated photo detail, flat
    black and white 8x8-aligned areas (exactly 0 and 255 when decoded) and blocks that mix both."""
    crops = [photos["astronaut"][100:164, 150:278], photos["chelsea"][50:114, 100:228]]
    x = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255
    x = ((x - 0.5) * 2.4 + 0.5).clamp(0, 1)
    x[:, :, 0:16, 0:32] = 0.0
    x[:, :, 16:32, 32:64] = 1.0
    x[:, :, 36:40, 64:128] = 1.0  # half of each block flat white, half photo
    return x.contiguous()


@pytest.mark.parametrize("whole", [False, True])
def test_flat_blocks_decoded_exactly_on_the_bounds_are_marked(photos, whole):
    # float32 flat black and white blocks decode exactly to 0 and 255 at some qualities: on a bound, not clamped.
    x = _whole_blocks(photos) if whole else _images(photos, "flat", 3, torch.float32)
    found = False
    for quality in (100, 95, 90, 75, 50):
        _, y, summary = _summary(x, [quality], "ycbcr")
        found = found or bool(((summary & 2) != 0).any())
    assert found


@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided"])
@pytest.mark.parametrize("qualities", LEVELS + [[100, 95]])
@pytest.mark.parametrize("size", ["partial blocks", "whole blocks", "small, whole blocks"])
@pytest.mark.parametrize("shared_tables", [False, True])
def test_every_cpu_path_writes_the_same_summary(photos, layout, qualities, size, shared_tables):
    if size == "partial blocks":
        x = _images(photos, "saturated", 3, torch.float32)
    else:
        x = _whole_blocks(photos)
    if size == "small, whole blocks":  # 9 blocks per image: SIMD groups of fewer blocks, or across images
        x = torch.cat([x[:, :, 8 * i:8 * i + 24, 8 * i:8 * i + 24] for i in range(4)])
    x = _layout(x, layout)
    results = {}
    try:
        for isa in _C.cpu_isas():  # "scalar" first
            _C.set_cpu_isa(isa)
            results[isa] = _summary_and_masks(x, qualities, "ycbcr", shared_tables)[1:]
    finally:
        _C.set_cpu_isa("auto")
    for isa, (y, summary, masks) in results.items():
        assert torch.equal(y, results["scalar"][0]), isa
        assert torch.equal(summary, results["scalar"][1]), isa
        assert bool((summary & 1).any())
        assert torch.equal(masks, results["scalar"][2]), isa


@pytest.mark.parametrize("color,channels", CONFIGS)
@pytest.mark.parametrize("qualities", LEVELS)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_backward_with_the_summary_is_bitwise_the_one_without(photos, color, channels, qualities, kind, dtype):
    x = _images(photos, kind, channels, dtype)
    steps, y, summary, masks = _summary_and_masks(x, qualities, color)
    g = torch.randn(y.shape, generator=torch.Generator().manual_seed(11), dtype=dtype)
    without = ops.roundtrip_backward_ste(g, y, x, steps, "4:4:4", color)
    with_summary = ops.roundtrip_backward_ste(g, y, x, steps, "4:4:4", color, summary)
    assert torch.equal(with_summary, without)
    with_masks = ops.roundtrip_backward_ste(g, y, x, steps, "4:4:4", color, summary, masks)
    assert torch.equal(with_masks, without)
    # The masks alone decide: the backward with them reads neither the output nor the images.
    got = torch.empty_like(x)
    _kernel.backward_ste(g, torch.full_like(y, 0.5), torch.full_like(x, float("nan")), steps, got, "4:4:4", color,
                         clamp_summary=summary, pass_mask=masks)
    assert torch.equal(got, without)
    for kwargs in (dict(clamp_summary=summary), dict(clamp_summary=summary, pass_mask=masks)):
        replay = torch.empty_like(x)  # the CUDA kernel's per-block function, with the summary, on the host
        _kernel.backward_ste(g, y, x, steps, replay, "4:4:4", color, cuda_replay=True, **kwargs)
        assert torch.equal(replay, without)


@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided"])
@pytest.mark.parametrize("whole", [False, True])
def test_backward_with_the_summary_in_every_layout_and_path(photos, layout, whole):
    x = _layout(_whole_blocks(photos) if whole else _images(photos, "saturated", 3, torch.float32), layout)
    steps, y, summary, masks = _summary_and_masks(x, [100, 90, 30], "ycbcr")
    assert not whole or bool((summary == 3).any())  # some blocks mix clamped and on-bound pixels
    g = torch.randn(y.shape, generator=torch.Generator().manual_seed(12))
    want = ops.roundtrip_backward_ste(g, y, x, steps, "4:4:4", "ycbcr")
    wide = torch.zeros(*g.shape[:4], 2 * g.shape[4])
    wide[..., ::2] = g
    try:
        for isa in _C.cpu_isas():
            _C.set_cpu_isa(isa)
            for grad_out in (g, wide[..., ::2]):  # dense rows, and a W stride of 2
                for kwargs in (dict(clamp_summary=summary), dict(clamp_summary=summary, pass_mask=masks)):
                    got = torch.empty_like(x)
                    _kernel.backward_ste(grad_out, y, x, steps, got, "4:4:4", "ycbcr", **kwargs)
                    assert torch.equal(got, want), (isa, kwargs.keys())
                    _kernel.backward_ste(grad_out, y, x, steps, got, "4:4:4", "ycbcr", always_recompute=True, **kwargs)
                    assert torch.equal(got, want), (isa, kwargs.keys())
    finally:
        _C.set_cpu_isa("auto")


def test_public_ste_gradients_take_the_summary_and_agree_with_the_plain_op(photos, monkeypatch):
    calls = []
    real = ops.roundtrip_ste
    monkeypatch.setattr(ops, "roundtrip_ste", lambda *a: (calls.append(1), real(*a))[1])
    x = _images(photos, "saturated", 3, torch.float32)
    steps = nj.tables.image_tables(40, "standard", x.shape[0]).unsqueeze(0)
    g = torch.randn(x.shape, generator=torch.Generator().manual_seed(13))
    a = x.clone().requires_grad_(True)
    nj.roundtrip(a, 40, grad="ste").backward(g)
    assert calls == [1]
    b = x.clone().requires_grad_(True)
    torch.ops.nnjpeg.roundtrip(b, steps, "4:4:4", "ycbcr", "ste", True)[0].backward(g)
    assert torch.equal(a.grad, b.grad)
    nj.roundtrip(x, 40, grad="ste")  # no gradient wanted: the plain op
    with torch.no_grad():
        nj.roundtrip(x.clone().requires_grad_(True), 40, grad="ste")
    nj.roundtrip(x.clone().requires_grad_(True), 40, grad="ste", subsampling="4:2:0").sum().backward()
    assert calls == [1]
    layer = nj.JPEG(quality=40, grad="ste")
    c = x.clone().requires_grad_(True)
    layer(c).backward(g)
    assert calls == [1, 1] and torch.equal(c.grad, a.grad)


def test_compiled_ste_backward_matches_eager(photos):
    x = _images(photos, "saturated", 3, torch.float32)
    g = torch.randn(x.shape, generator=torch.Generator().manual_seed(14))

    def loss(inp):
        return (nj.roundtrip(inp, 30, grad="ste") * g).sum()

    a, b = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    loss(a).backward()
    torch.compile(loss, fullgraph=True, backend="aot_eager")(b).backward()
    assert torch.equal(a.grad, b.grad)


def test_opcheck_roundtrip_ste_and_the_backward_with_a_summary():
    x = torch.rand(2, 3, 13, 21)
    steps = nj.tables.level_tables([50, 20], "standard", 2).contiguous()
    torch.library.opcheck(torch.ops.nnjpeg.roundtrip_ste.default, (x, steps, "4:4:4", "ycbcr", True))
    y, summary, masks = ops.roundtrip_ste(x, steps, "4:4:4", "ycbcr", True)
    g = torch.randn(y.shape)
    torch.library.opcheck(torch.ops.nnjpeg.roundtrip_backward_ste.default,
                          (g, y, x, steps, "4:4:4", "ycbcr", summary))
    torch.library.opcheck(torch.ops.nnjpeg.roundtrip_backward_ste.default,
                          (g, y, x, steps, "4:4:4", "ycbcr", summary, masks))


def test_bad_summaries_and_calls_raise():
    x = torch.rand(2, 3, 16, 16)
    steps = nj.tables.level_tables([50], "standard", 2).contiguous()
    y, summary, masks = ops.roundtrip_ste(x, steps, "4:4:4", "ycbcr", True)
    g = torch.ones_like(y)
    with pytest.raises(ValueError, match=r"clamp_summary must be uint8 of shape \(1, 2, 2, 2\)"):
        ops.roundtrip_backward_ste(g, y, x, steps, "4:4:4", "ycbcr", summary[:, :1])
    with pytest.raises(ValueError, match="clamp_summary must be uint8"):
        ops.roundtrip_backward_ste(g, y, x, steps, "4:4:4", "ycbcr", summary.int())
    with pytest.raises(ValueError, match="pass_mask is read with its clamp_summary"):
        ops.roundtrip_backward_ste(g, y, x, steps, "4:4:4", "ycbcr", None, masks)
    with pytest.raises(ValueError, match=r"pass_mask must be int64 of shape \(1, 2, 3, 2, 2\)"):
        ops.roundtrip_backward_ste(g, y, x, steps, "4:4:4", "ycbcr", summary, masks[:, :, :1])
    with pytest.raises(ValueError, match="pass_mask must be int64"):
        ops.roundtrip_backward_ste(g, y, x, steps, "4:4:4", "ycbcr", summary, masks.int())
    with pytest.raises(ValueError, match="pass_mask is read with a clamp_summary only"):
        _kernel.backward_ste(g, y, x, steps, torch.empty_like(x), "4:4:4", "ycbcr", pass_mask=masks)
    with pytest.raises(ValueError, match="pass_mask is written with a clamp_summary only"):
        _kernel.forward(x, steps, torch.empty_like(y), "4:4:4", "ycbcr", "ste", pass_mask=masks)
    with pytest.raises(ValueError, match="use nnjpeg::roundtrip"):
        ops.roundtrip_ste(x, steps, "4:2:0", "ycbcr", True)
    with pytest.raises(TypeError, match="floating-point"):
        ops.roundtrip_ste((x * 255).to(torch.uint8), steps, "4:4:4", "ycbcr", True)
    with pytest.raises(ValueError, match="NaN"):
        ops.roundtrip_ste(torch.full_like(x, float("nan")), steps, "4:4:4", "ycbcr", True)
    out = torch.empty_like(y)
    workspace = torch.empty(1, 2, 2, 8, 8)
    with pytest.raises(ValueError, match="clamp_summary is written by the CPU kernel"):
        _C.forward(device_type="cpu", input=x.data_ptr(), output=out.data_ptr(), tables=steps.data_ptr(),
                   workspace=workspace.data_ptr(), shape=(2, 3, 16, 16), levels=1, in_strides=x.stride(),
                   out_strides=out.stride(), table_strides=(steps.stride(0), steps.stride(1)), dtype=1, subsampling=1,
                   color=0, rounding=0, num_threads=1, device=0, stream=0, clamp_summary=summary.data_ptr())


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("whole", [False, True])
def test_backward_with_the_summary_of_many_levels(photos, layout, whole):
    # More levels than the strip driver reads up front (8: csrc/cpu/ste_backward_cpu.cpp), on whole dense rows
    # (summed as one span per block row) and otherwise: bitwise the backward without the summary.
    x = _layout(_whole_blocks(photos) if whole else _images(photos, "saturated", 3, torch.float32), layout)
    steps, y, summary, masks = _summary_and_masks(x, list(range(95, 5, -8)), "ycbcr")
    assert summary.shape[0] > 8 and bool((summary & 1).any()) and bool((summary == 0).any())
    g = torch.randn(y.shape, generator=torch.Generator().manual_seed(15))
    want = ops.roundtrip_backward_ste(g, y, x, steps, "4:4:4", "ycbcr")
    assert torch.equal(ops.roundtrip_backward_ste(g, y, x, steps, "4:4:4", "ycbcr", summary), want)
    assert torch.equal(ops.roundtrip_backward_ste(g, y, x, steps, "4:4:4", "ycbcr", summary, masks), want)


def test_the_backward_fills_no_gradient_for_the_summary(photos):
    # The summary is non-differentiable: autograd must not zero-fill a gradient for it on every backward
    # (a torch OpenMP fill whose spinning workers slowed the kernel after it: W2 fwd+bwd 42 -> 37 ms).
    x = _images(photos, "saturated", 3, torch.float32).requires_grad_(True)
    g = torch.randn(x.shape, generator=torch.Generator().manual_seed(16))
    y = nj.roundtrip(x, 40, grad="ste")
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        y.backward(g)
    names = [e.key for e in prof.key_averages()]
    assert "nnjpeg::roundtrip_backward_ste" in names
    assert "aten::zeros" not in names and "aten::fill_" not in names and "aten::zero_" not in names, names


@pytest.mark.parametrize("width", [1, 7, 8, 13, 16, 24, 40, 53])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("qualities", [[75], [95, 40, 10]])
def test_row_by_row_backward_from_the_pass_masks_on_every_isa(width, channels, qualities):
    # With the pass masks, dense float32 rows take a masked copy row by row on AVX2 and AVX-512
    # (csrc/cpu/ste_pass_rows_impl.h): vectors of 16 and 8 pixels, then a scalar loop for the last width % 8.
    # Oracle: the backward without the summary (the strip driver, recomputing where the output cannot tell).
    gen = torch.Generator().manual_seed(width * 10 + channels)
    x = (torch.rand(3, channels, 19, width, generator=gen) * 1.6 - 0.3).clamp(0, 1)
    steps, y, summary, masks = _summary_and_masks(x, qualities, "ycbcr")
    g = torch.randn(y.shape, generator=gen)
    g[g.abs() < 0.3] = -0.0  # signed zeros: each level's sum starts from +0, as the strip driver's
    want = ops.roundtrip_backward_ste(g, y, x, steps, "4:4:4", "ycbcr")
    try:
        for isa in _C.cpu_isas():
            _C.set_cpu_isa(isa)
            got = torch.empty_like(x)
            _kernel.backward_ste(g, y, x, steps, got, "4:4:4", "ycbcr", clamp_summary=summary, pass_mask=masks)
            assert torch.equal(got.view(torch.int32), want.view(torch.int32)), isa
    finally:
        _C.set_cpu_isa("auto")
    assert bool((summary & 1).any())
