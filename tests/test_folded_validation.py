"""Validation folded into the CPU kernel's read of the input (float32, SIMD paths: 4:4:4 and 4:2:0).

The kernel reports the min / max of the pixels it read (NaN if any is NaN); the Python layer raises from
that instead of a separate aminmax pass. Oracle: torch.aminmax over the same tensor, and the errors the
separate pass raises on the scalar path (which does not fold).
"""

import pytest
import torch

import nnjpeg_cuda as nj
from nnjpeg_cuda import _C, _kernel, ops, tables

SIMD = [isa for isa in _C.cpu_isas() if isa != "scalar"]


@pytest.fixture
def isa():
    before = _C.cpu_isa()
    yield _C.set_cpu_isa
    _C.set_cpu_isa(before)


def _steps(n: int) -> torch.Tensor:
    return tables.standard(50).float().expand(1, n, 2, 8, 8)


@pytest.mark.skipif(not SIMD, reason="no SIMD path in this build")
@pytest.mark.parametrize("shape", [(3, 3, 37, 53), (2, 1, 8, 8), (5, 3, 16, 136), (1, 3, 1, 1), (2, 3, 9, 300),
                                   (6, 3, 72, 40)])  # the last: 4:2:0 image by image (roundtrip_cpu.cpp)
@pytest.mark.parametrize("subsampling", ["4:4:4", "4:2:0"])
def test_kernel_range_equals_aminmax(isa, shape, subsampling):
    isa(SIMD[-1])
    gen = torch.Generator().manual_seed(sum(shape))
    x = torch.rand(shape, generator=gen) * 1.4 - 0.2  # out of range on purpose: only the reported range matters
    out = ops.empty_levels(x, 1)
    seen = _kernel.forward(x, _steps(shape[0]), out, subsampling, "ycbcr", "bpda", want_range=True)
    lo, hi = torch.aminmax(x)
    assert seen == (lo.item(), hi.item())


@pytest.mark.skipif(not SIMD, reason="no SIMD path in this build")
def test_kernel_range_is_nan_when_any_pixel_is_nan(isa):
    isa(SIMD[-1])
    x = torch.rand(2, 3, 20, 20)
    x[1, 2, 19, 19] = float("nan")  # in a partial edge block of the last image
    seen = _kernel.forward(x, _steps(2), ops.empty_levels(x, 1), "4:4:4", "ycbcr", "bpda", want_range=True)
    assert seen is not None and all(v != v for v in seen)


def test_paths_that_do_not_fold_report_nothing(isa):
    isa("scalar")
    x = torch.rand(1, 3, 16, 16)
    assert _kernel.forward(x, _steps(1), ops.empty_levels(x, 1), "4:4:4", "ycbcr", "bpda", want_range=True) is None


@pytest.mark.parametrize("where", [(0, 0, 0, 0), (1, 2, 21, 34), (2, 1, 13, 7), (2, 2, 23, 39)])
@pytest.mark.parametrize("bad,match", [(float("nan"), "NaN"), (float("inf"), "Inf"), (-float("inf"), "Inf"),
                                       (1.01, r"\[0, 1\]"), (-0.01, r"\[0, 1\]")])
@pytest.mark.parametrize("path", ["scalar"] + SIMD[-1:])
@pytest.mark.parametrize("subsampling", ["4:4:4", "4:2:0"])
def test_bad_pixels_anywhere_are_refused_on_every_path(isa, path, subsampling, where, bad, match):
    # 24 x 40 holds whole 8x8 blocks only (the SIMD path's row loads); in 22 x 35 the last block row and
    # column are partial (its per-pixel edge loads): the bad pixel lands in each kind.
    isa(path)
    for size in [(24, 40), (22, 35)]:
        x = torch.rand(3, 3, *size)
        n, ch, y, xx = where
        x[n, ch, min(y, size[0] - 1), min(xx, size[1] - 1)] = bad
        with pytest.raises(ValueError, match=match):
            nj.roundtrip(x, 50, subsampling=subsampling)
        assert torch.isfinite(nj.roundtrip(x, 50, subsampling=subsampling, validate=False)).all()


def test_folded_validation_accepts_the_tiny_overshoot_like_the_separate_pass(isa):
    for path in ["scalar"] + SIMD[-1:]:
        isa(path)
        x = torch.rand(2, 3, 16, 16)
        x[1, 1, 5, 5] = 1.0 + 1e-7
        x[0, 0, 0, 0] = -1e-7
        assert torch.isfinite(nj.roundtrip(x, 50)).all()
