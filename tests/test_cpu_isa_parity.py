"""The CPU SIMD paths (generic vectors, AVX2, AVX-512; chosen at run time) against the scalar path.

The scalar path runs the shared block math (csrc/include/nnjpeg) that the CUDA kernel also runs; the
SIMD paths run the same math with one block per vector lane. Their outputs and gradients must be bitwise
identical to it, whatever the layout, size, dtype, level count or thread count.
"""

import pytest
import torch

import nnjpeg_cuda
from nnjpeg_cuda import _kernel

pytestmark = [pytest.mark.skipif(not _kernel.extension_available(), reason="compiled extension not built"),
              pytest.mark.slow]  # ~25 s on 2 cores

C = _kernel._C


def _isas():
    return [isa for isa in C.cpu_isas() if isa != "scalar"] if _kernel.extension_available() else []


@pytest.fixture
def use_isa():
    def select(name):
        C.set_cpu_isa(name)

    yield select
    C.set_cpu_isa("auto")


def _bits(t: torch.Tensor) -> torch.Tensor:
    t = t.detach().contiguous().reshape(-1)
    return t if t.dtype == torch.uint8 else t.view(torch.int32 if t.dtype == torch.float32 else torch.int64)


def _photo(h, w):
    skimage_data = pytest.importorskip("skimage.data")
    img = torch.from_numpy(skimage_data.astronaut()).permute(2, 0, 1)
    return img[:, 60:60 + h, 90:90 + w].contiguous()


def _smooth_and_flat(g):
    """(3, 3, 48, 80): ramps with faint noise of both signs, whose AC terms mostly round to 0 or -0 (the SIMD
    decode's shortcut for such columns, simd_impl.h), and flat areas at 128 (level-shifted components exactly
    0: zero DC terms), 0 and 255."""
    yy, xx = torch.linspace(0, 1, 48)[:, None], torch.linspace(0, 1, 80)[None, :]
    x = (0.3 + 0.24 * xx + 0.16 * yy).expand(3, 3, 48, 80) + 0.003 * torch.randn(3, 3, 48, 80, generator=g)
    x[:, :, :16, :16] = 128 / 255
    x[:, :, 16:32, :16] = 0.0
    x[:, :, 32:, :16] = 1.0
    x[1] = x[1].flip(-1)  # descending ramps: negative AC terms
    return x.clamp(0, 1)


def _cases():
    g = torch.Generator().manual_seed(7)
    yield "smooth and flat 48x80 (columns whose AC terms round to 0)", _smooth_and_flat(g)
    yield "random 37x45 (edge blocks, partial groups)", torch.rand(3, 3, 37, 45, generator=g)
    yield "random 64x64 (interior groups)", torch.rand(2, 3, 64, 64, generator=g)
    yield "random 48x272 (4:2:0: interior macro-blocks, 17 per row)", torch.rand(2, 3, 48, 272, generator=g)
    yield "gray 23x17", torch.rand(4, 1, 23, 17, generator=g)
    yield "one block per image", torch.rand(5, 3, 8, 8, generator=g)
    yield "9 images of 12x20 (groups across images, every block at an edge)", torch.rand(9, 3, 12, 20, generator=g)
    yield "5 images of 72x136 (4:2:0: one pass with 8 lanes, two phases with 16)", torch.rand(5, 3, 72, 136, generator=g)
    yield "8 images of 100x150 (4:2:0 in one pass, image by image, edge macro-blocks)", torch.rand(8, 3, 100, 150,
                                                                                                   generator=g)
    yield "4 images of 48x600 (4:2:0 in one pass, 38 macro-blocks per row)", torch.rand(4, 3, 48, 600, generator=g)
    yield "42 images of 12x20 (4:2:0 in items of whole images, groups across images)", torch.rand(42, 3, 12, 20,
                                                                                                  generator=g)
    yield "1x1", torch.rand(2, 3, 1, 1, generator=g)
    yield "photo 137x153", _photo(137, 153)[None].float().div(255).repeat(2, 1, 1, 1)


def _variants(x):
    for dtype in (torch.float32, torch.uint8, torch.float64):
        v = x.mul(255).round().to(torch.uint8) if dtype == torch.uint8 else x.to(dtype)
        yield v
        yield v.contiguous(memory_format=torch.channels_last)


def _outputs(x):
    n = x.shape[0]
    out = {"q50": nnjpeg_cuda.roundtrip(x, 50), "q95 rgb": nnjpeg_cuda.roundtrip(x, 95, color="rgb"),
           "multi": nnjpeg_cuda.roundtrip_multi(x, [90, 40, 5]),
           "per-image quality": nnjpeg_cuda.roundtrip(x, torch.arange(n) * 17 % 100 + 1),
           "420": nnjpeg_cuda.roundtrip(x, 75, subsampling="4:2:0"),
           "420 multi smooth": nnjpeg_cuda.roundtrip_multi(x, [90, 20], subsampling="4:2:0", grad="smooth"),
           "420 per-image quality": nnjpeg_cuda.roundtrip(x, torch.arange(n) * 23 % 100 + 1, subsampling="4:2:0")}
    if x.is_floating_point():
        for grad in ("ste", "smooth"):
            p = x.detach().clone().requires_grad_(True)
            y = nnjpeg_cuda.roundtrip_multi(p, [80, 30], grad=grad)
            w = torch.linspace(-1, 1, y.numel(), dtype=y.dtype).reshape(y.shape)
            (y * w).sum().backward()
            out[f"{grad} forward"], out[f"{grad} grad"] = y.detach(), p.grad
    return out


@pytest.mark.parametrize("isa", _isas())
def test_simd_path_bitwise_equals_scalar(isa, use_isa):
    for name, x in _cases():
        for v in _variants(x):
            use_isa("scalar")
            expected = _outputs(v)
            use_isa(isa)
            got = _outputs(v)
            for key in expected:
                e, o = expected[key], got[key]
                assert o.shape == e.shape and o.dtype == e.dtype and o.stride() == e.stride(), (name, key)
                assert torch.equal(_bits(o), _bits(e)), f"{isa} differs from scalar: {name}, {v.dtype}, {key}"


@pytest.mark.parametrize("isa", _isas())
def test_simd_path_independent_of_thread_count(isa, use_isa):
    use_isa(isa)
    x = _photo(128, 160)[None].repeat(6, 1, 1, 1).float().div(255)
    old = torch.get_num_threads()
    try:
        results = []
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            results.append(_outputs(x))
    finally:
        torch.set_num_threads(old)
    for r in results[1:]:
        for key in r:
            assert torch.equal(_bits(r[key]), _bits(results[0][key])), key


def _hard_quotients(seed=11):
    """Divisors of many magnitudes and mantissas, and dividends whose quotient lies on or a few ulps from
    each half-integer (where round-half-even turns) and each integer, plus random, signed-zero and tiny ones."""
    import numpy as np

    rng = np.random.default_rng(seed)
    divisors = np.concatenate([
        rng.uniform(0.05, 600.0, 60),  # the quantizer's divisors: steps 1..255 times AAN scale products
        [1.0, 3.0, 255.0, 0.125, 2.0 ** 20, np.nextafter(np.float32(2.0), np.float32(0.0)), 1.9999999],
    ]).astype(np.float32)
    t = np.concatenate([np.arange(-300, 300) + 0.5, np.arange(-300, 300)]).astype(np.float64)
    for b in divisors:
        near = (t * np.float64(b)).astype(np.float32)
        ulps = [near]
        for _ in range(3):
            ulps.append(np.nextafter(ulps[-1], np.float32(np.inf)))
            ulps.insert(0, np.nextafter(ulps[0], np.float32(-np.inf)))
        values = np.concatenate(ulps + [rng.uniform(-20000, 20000, 500).astype(np.float32),
                                        np.array([0.0, -0.0, 1e-30, -1e-30, 2.0 ** -100], np.float32)])
        yield b, values.astype(np.float32)


@pytest.mark.parametrize("isa", C.cpu_isas() if _kernel.extension_available() else [])
def test_quantizer_division_is_ieee_division(isa, use_isa):
    """The SIMD quantizer divides by multiplying by 1 / divisor and correcting twice (simd_vec.h): every
    quotient must have the bits of the IEEE division, or a coefficient next to a rounding boundary rounds
    the other way on one path."""
    import numpy as np

    use_isa(isa)
    naive_misses = 0
    for b, a in _hard_quotients():
        got = np.array(C.cpu_divide_like_quantizer(a.tolist(), float(b)), dtype=np.float32)
        want = a / b
        assert np.array_equal(got.view(np.int32), want.view(np.int32)), (isa, float(b), a[got != want][:5])
        naive_misses += int(np.count_nonzero(a * (np.float32(1) / b) != want))
    assert naive_misses > 0  # the cases are hard: a * (1 / b) alone gets some wrong


@pytest.mark.parametrize("isa", C.cpu_isas() if _kernel.extension_available() else [])
def test_float_store_division_is_exact_on_every_value(isa, use_isa):
    """A float output is x / 255 of the clamped 0..255 value; the FMA paths multiply by 1 / 255 and correct
    once (simd_vec.h, to_pixel), which must give the division's bits for each of the 1.13e9 floats in
    [0, 255] (without the correction about 7.9e8 of them differ)."""
    use_isa(isa)
    assert C.cpu_store_division_mismatches() == 0


def test_isa_selection():
    assert C.cpu_isas()[0] == "scalar" and C.cpu_isa() in C.cpu_isas()
    with pytest.raises(ValueError, match="unknown or unsupported CPU code path"):
        C.set_cpu_isa("sse9")
    C.set_cpu_isa("scalar")
    try:
        assert C.cpu_isa() == "scalar"
    finally:
        C.set_cpu_isa("auto")
    assert C.cpu_isa() == C.cpu_isas()[-1]


@pytest.mark.parametrize("isa", _isas())
def test_tables_changed_in_place_between_calls_are_seen(isa, use_isa):
    # The SIMD forward keeps each table's prepared divisors per thread, found by address, and compares the
    # steps once per call (csrc/cpu/divisor_cache.h): new steps at the same address must be seen next call.
    use_isa(isa)
    x = _photo(64, 96)[None].float().div(255).repeat(4, 1, 1, 1)
    steps = nnjpeg_cuda.tables.level_tables([90, 30], "standard", 4).contiguous()
    for subsampling in ("4:4:4", "4:2:0"):
        first = torch.ops.nnjpeg.roundtrip(x, steps, subsampling, "ycbcr", "ste", True)
        old = steps.clone()
        steps.copy_(nnjpeg_cuda.tables.level_tables([20, 75], "standard", 4))
        second = torch.ops.nnjpeg.roundtrip(x, steps, subsampling, "ycbcr", "ste", True)
        assert torch.equal(second, torch.ops.nnjpeg.roundtrip(x, steps.clone(), subsampling, "ycbcr", "ste", True))
        assert not torch.equal(second, first)
        steps.copy_(old)
        assert torch.equal(torch.ops.nnjpeg.roundtrip(x, steps, subsampling, "ycbcr", "ste", True), first)
