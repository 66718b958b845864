"""Streaming (non-temporal) stores of the CPU forward (csrc/cpu/streaming_stores.h).

A float32 output of at least 32 MiB whose pages are already resident (a buffer the allocator reused) is
stored with streaming stores on the SIMD path, and so is such a uint8 output with 4:2:0 (16-byte pieces,
AVX-512); everything else with plain stores. Oracle: the same images run one at a time (outputs far below the
threshold, so plain stores), which must give the same bits.
"""

import numpy as np
import pytest
import torch

from nnjpeg_cuda import _C, _kernel, ops, tables

SIMD = [isa for isa in _C.cpu_isas() if isa != "scalar"]
STREAMING_MIN_BYTES = 32 << 20


def _streams(out: torch.Tensor, subsampling: str = "4:4:4") -> bool:
    k, n, c, h, w = out.shape
    return _C.cpu_streams_output(output=out.data_ptr(), shape=(n, c, h, w), levels=k, out_strides=out.stride(),
                                 dtype=_kernel._DTYPE_CODE[out.dtype], subsampling=int(subsampling == "4:2:0"))


def _large_batch(photos) -> torch.Tensor:
    """12 real 512x512 crops (flipped variants), float32: a 36 MiB output per level."""
    crops = []
    for name in ("astronaut", "coffee", "chelsea"):
        im = photos[name]
        crop = im[: min(512, im.shape[0]), : min(512, im.shape[1])]
        crop = np.pad(crop, ((0, 512 - crop.shape[0]), (0, 512 - crop.shape[1]), (0, 0)), mode="reflect")
        crops += [crop, crop[::-1], crop[:, ::-1], crop[::-1, ::-1]]
    return torch.from_numpy(np.ascontiguousarray(np.stack(crops))).permute(0, 3, 1, 2).float().div(255).contiguous()


@pytest.fixture
def isa():
    before = _C.cpu_isa()
    yield _C.set_cpu_isa
    _C.set_cpu_isa(before)


@pytest.mark.skipif(not SIMD, reason="no SIMD path in this build")
@pytest.mark.parametrize("subsampling,qualities,dtype", [("4:4:4", [75], torch.float32),
                                                         ("4:2:0", [90, 30], torch.float32),
                                                         ("4:2:0", [90, 60, 30, 10], torch.uint8)])
def test_a_reused_large_output_is_streamed_with_the_same_bits(photos, isa, subsampling, qualities, dtype):
    x = _large_batch(photos)
    if dtype == torch.uint8:
        x = (x * 255).round().to(torch.uint8)
    n = x.shape[0]
    steps = tables.level_tables(qualities, "standard", n).contiguous()
    out = ops.empty_levels(x, len(qualities))
    assert out.numel() * out.element_size() >= STREAMING_MIN_BYTES
    out.fill_(7)  # touched: resident pages, as a reused buffer
    assert _streams(out, subsampling)
    for name in SIMD:
        isa(name)
        _kernel.forward(x, steps, out, subsampling, "ycbcr", "bpda")
        for i in range(n):  # one image at a time: a 3 MiB output, plain stores
            one = ops.empty_levels(x[i:i + 1], len(qualities))
            assert not _streams(one)
            _kernel.forward(x[i:i + 1], steps[:, i:i + 1], one, subsampling, "ycbcr", "bpda")
            assert torch.equal(out[:, i:i + 1], one), (name, i)


def test_only_large_aligned_dense_outputs_with_resident_pages_stream():
    big = torch.zeros(1, 12, 3, 512, 512)  # 36 MiB, touched by zeros()
    assert _streams(big)
    assert not _streams(torch.zeros(1, 2, 3, 512, 512))  # 6 MiB: likely read again from the cache
    u8 = torch.zeros(4, 12, 3, 512, 512, dtype=torch.uint8)  # 36 MiB
    assert not _streams(u8)  # uint8 4:4:4: 8-byte rows
    assert _streams(u8, "4:2:0")  # uint8 4:2:0: 16-byte pieces
    assert not _streams(torch.zeros(4, 12, 3, 512, 520, dtype=torch.uint8)[..., :512], "4:2:0")  # rows off 16 bytes
    assert not _streams(torch.zeros(1, 12, 512, 512, 3).permute(0, 1, 4, 2, 3))  # channels_last: strided rows
    shifted = torch.zeros(12 * 3 * 512 * 512 + 1)[1:].view(1, 12, 3, 512, 512)  # 4 bytes off 32-byte alignment
    assert not _streams(shifted)


@pytest.mark.skipif(not SIMD, reason="no SIMD path in this build")
def test_a_fresh_large_output_is_populated_first_with_the_same_bits(photos):
    # nnjpeg_cuda.roundtrip allocates a fresh 36 MiB output: the CPU driver populates its pages up front
    # (csrc/cpu/output_pages.h) and then streams into them. The bits are those of one image at a time.
    import nnjpeg_cuda as nj

    x = _large_batch(photos)
    fresh = nj.roundtrip(x, 60)
    for i in range(x.shape[0]):
        assert torch.equal(fresh[i:i + 1], nj.roundtrip(x[i:i + 1], 60)), i


def test_populating_an_output_leaves_its_neighbours_alone(photos):
    # out= a view in the middle of a large untouched buffer: the output's pages are populated (rounded out to
    # whole pages), the values beside it must survive.
    import nnjpeg_cuda as nj

    x = _large_batch(photos)
    n = x.numel()
    buf = torch.empty(n + 2048)  # fresh: only the sentinel pages get touched below
    buf[:1024] = 7.0
    buf[-1024:] = 9.0
    out = buf[1024:1024 + n].view(x.shape)
    nj.roundtrip(x, 60, out=out)
    assert torch.equal(buf[:1024], torch.full((1024,), 7.0)) and torch.equal(buf[-1024:], torch.full((1024,), 9.0))
    assert torch.equal(out, nj.roundtrip(x, 60))


def _streams_grad(grad_in: torch.Tensor) -> bool:
    return _C.cpu_streams_grad_input(grad_input=grad_in.data_ptr(), shape=tuple(grad_in.shape),
                                     grad_in_strides=grad_in.stride(), dtype=_kernel._DTYPE_CODE[grad_in.dtype])


@pytest.mark.parametrize("qualities", [[30], [90, 30]])
@pytest.mark.parametrize("summary", ["none", "summary", "pass masks"])
@pytest.mark.parametrize("always_recompute", [False, True])
def test_the_ste_backward_streams_a_large_gradient_with_the_same_bits(photos, qualities, summary, always_recompute):
    # The "ste" backward (csrc/cpu/ste_backward_cpu.cpp) streams a large float32 gradient, also where a
    # recomputed block then overwrites what its strip streamed. Oracle: the same backward into a gradient
    # 4 bytes off 32-byte alignment (plain stores), and one image at a time (far below the threshold).
    x = ((_large_batch(photos) - 0.5) * 1.6 + 0.5).clamp(0, 1)  # stretched: many clamped blocks
    n = x.shape[0]
    steps = tables.level_tables(qualities, "standard", n).contiguous()
    y, clamp_summary, pass_mask = ops.roundtrip_ste(x, steps, "4:4:4", "ycbcr", True)
    assert bool((clamp_summary & 1).any())
    g = torch.randn(y.shape, generator=torch.Generator().manual_seed(21))
    kwargs = dict(always_recompute=always_recompute, clamp_summary=clamp_summary if summary != "none" else None,
                  pass_mask=pass_mask if summary == "pass masks" else None)
    streamed = torch.empty_like(x).fill_(-1.0)  # resident pages
    assert streamed.numel() * 4 >= STREAMING_MIN_BYTES and _streams_grad(streamed)
    _kernel.backward_ste(g, y, x, steps, streamed, "4:4:4", "ycbcr", **kwargs)
    plain = torch.empty(x.numel() + 1)[1:].view(x.shape).fill_(-1.0)
    assert not _streams_grad(plain)
    _kernel.backward_ste(g, y, x, steps, plain, "4:4:4", "ycbcr", **kwargs)
    assert torch.equal(streamed, plain)
    for i in range(0, n, 5):
        one = torch.empty_like(x[i:i + 1])
        assert not _streams_grad(one)
        s = dict(kwargs, clamp_summary=clamp_summary[:, i:i + 1].contiguous() if summary != "none" else None,
                 pass_mask=pass_mask[:, i:i + 1].contiguous() if summary == "pass masks" else None)
        _kernel.backward_ste(g[:, i:i + 1], y[:, i:i + 1], x[i:i + 1], steps[:, i:i + 1], one, "4:4:4", "ycbcr", **s)
        assert torch.equal(streamed[i:i + 1], one), i


def test_only_large_aligned_dense_float32_gradients_with_resident_pages_stream():
    assert _streams_grad(torch.zeros(12, 3, 512, 512))
    assert not _streams_grad(torch.zeros(2, 3, 512, 512))  # 6 MiB
    assert not _streams_grad(torch.zeros(12, 3, 512, 512, dtype=torch.float64))
    assert not _streams_grad(torch.zeros(12, 512, 512, 3).permute(0, 3, 1, 2))  # channels_last
    assert not _streams_grad(torch.zeros(12, 3, 512, 516)[..., :512])  # row stride 516: rows off 32-byte boundaries
