"""Property-based fuzzing of the public API against the float64 reference (hypothesis).

Every generated call either returns the reference's result within the bound stated in
``tests/_reliability.py`` (strict to float32 rounding, except where a DCT coefficient sits on a
quantization boundary) with the input's shape, dtype and memory format, or raises ValueError/TypeError.
Nothing else is acceptable: no other exception, no crash, no NaN.

Generated: ranks 3 and 4, 1 or 3 channels, batches 0..3, sizes 1..130 (odd, block-aligned and not),
uint8/float16/bfloat16/float32/float64, memory layouts (contiguous, channels_last, HWC storage, strided
slices, transposed, expanded with zero strides, channel slices of RGBA, arbitrary overlapping
``as_strided`` views), pixel content (noise, flat, 0/max extremes, checkerboards, ramps), quality as int,
per-image tensor, several levels or (K, N) tensor, standard / random user / per-image tables, both
subsamplings, both colour modes, all three gradient modes; and hostile variants of each argument.

CI runs a fixed, derandomized set (``derandomize=True``). Deeper runs:
``NNJPEG_FUZZ_EXAMPLES=20 NNJPEG_FUZZ_RANDOM=1 pytest tests/test_fuzz.py --hypothesis-show-statistics``
(20 times the CI example count, fresh random seeds).
"""

from __future__ import annotations

import math
import os

import pytest
import torch
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st

import nnjpeg_cuda as nj
from nnjpeg_cuda import reference, tables

from _reliability import check_levels, flip_budget, reference_levels_255

_SCALE = int(os.environ.get("NNJPEG_FUZZ_EXAMPLES", "1"))
_RANDOM = os.environ.get("NNJPEG_FUZZ_RANDOM", "0") == "1"


def fuzz_settings(examples: int):
    """CI-friendly settings: fixed examples unless NNJPEG_FUZZ_RANDOM=1; count scaled by NNJPEG_FUZZ_EXAMPLES."""
    return settings(max_examples=examples * _SCALE, deadline=None, derandomize=not _RANDOM, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


DTYPES = [torch.uint8, torch.float16, torch.bfloat16, torch.float32, torch.float64]
LAYOUTS = ["contiguous", "channels_last", "hwc", "sliced", "transposed", "expanded", "rgba_slice", "as_strided"]
CONTENTS = ["noise", "flat", "extremes", "checker", "ramp"]
SIZES = st.one_of(st.integers(1, 20), st.sampled_from([1, 2, 7, 8, 9, 15, 16, 17, 23, 24, 31, 33]),
                  st.integers(21, 130))


# --- building inputs ------------------------------------------------------------------------------------

def _content(kind: str, shape, gen: torch.Generator) -> torch.Tensor:
    """float64 pixels in [0, 1] of the given shape."""
    if kind == "noise":
        return torch.rand(shape, dtype=torch.float64, generator=gen)
    if kind == "flat":
        return torch.rand(1, dtype=torch.float64, generator=gen).expand(shape).clone()
    if kind == "extremes":
        return torch.randint(0, 2, shape, generator=gen).double()
    if len(shape) == 1:  # storage of an as_strided view
        i = torch.arange(shape[0])
        return (i % 2).double() if kind == "checker" else i.double() / max(1, shape[0] - 1)
    h, w = shape[-2], shape[-1]
    yy = torch.arange(h).view(h, 1)
    xx = torch.arange(w).view(1, w)
    if kind == "checker":
        return ((yy + xx) % 2).double().expand(shape).clone()
    return ((yy + 2 * xx).double() / max(1, h + 2 * w - 3)).clamp(0, 1).expand(shape).clone()  # ramp


def _to_dtype(x64: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    if dtype == torch.uint8:
        return torch.round(x64 * 255).to(torch.uint8)
    return x64.to(dtype)


def _with_dim(shape, dim: int, size: int):
    s = list(shape)
    s[dim] = size
    return tuple(s)


def build_images(shape, dtype, layout, kind, gen) -> torch.Tensor:
    """An image tensor of logical ``shape`` (rank 3 or 4) whose memory follows ``layout``."""
    make = lambda s: _to_dtype(_content(kind, s, gen), dtype)  # noqa: E731
    rank = len(shape)
    cdim = rank - 3
    if layout == "contiguous":
        return make(shape)
    if layout == "channels_last" and rank == 4:
        return make(shape).contiguous(memory_format=torch.channels_last)
    if layout in ("hwc", "channels_last"):
        perm = list(range(rank))
        stored = [shape[i] for i in perm[:cdim]] + [shape[-2], shape[-1], shape[cdim]]
        t = make(tuple(stored))
        return t.movedim(-1, cdim)
    if layout == "sliced":
        big = make(_with_dim(_with_dim(shape, -2, 2 * shape[-2] + 1), -1, 2 * shape[-1] + 2))
        return big[..., 1::2, 2::2][..., : shape[-2], : shape[-1]]
    if layout == "transposed":
        return make(_with_dim(_with_dim(shape, -2, shape[-1]), -1, shape[-2])).transpose(-1, -2)
    if layout == "expanded":
        dim = int(torch.randint(0, rank, (1,), generator=gen))
        return make(_with_dim(shape, dim, 1)).expand(shape)
    if layout == "rgba_slice":
        return make(_with_dim(shape, cdim, shape[cdim] + 1)).narrow(cdim, 1, shape[cdim])
    # as_strided: arbitrary non-negative strides, overlapping memory allowed (the input is only read).
    strides = [int(s) for s in torch.randint(0, 5, (rank,), generator=gen)]
    need = 1 + sum((n - 1) * s for n, s in zip(shape, strides) if n > 0)
    storage = make((need,))
    return storage.as_strided(shape, strides)


@st.composite
def image_specs(draw, max_batch: int = 3, max_elements: int = 3 * 3 * 96 * 96):
    rank = draw(st.sampled_from([3, 4]))
    channels = draw(st.sampled_from([1, 3]))
    batch = 1 if rank == 3 else draw(st.integers(0, max_batch))
    h, w = draw(SIZES), draw(SIZES)
    assume(max(batch, 1) * channels * h * w <= max_elements)  # keep the float64 reference quick
    shape = (channels, h, w) if rank == 3 else (batch, channels, h, w)
    return dict(shape=shape, dtype=draw(st.sampled_from(DTYPES)), layout=draw(st.sampled_from(LAYOUTS)),
                kind=draw(st.sampled_from(CONTENTS)), seed=draw(st.integers(0, 2**31 - 1)))


@st.composite
def codec_options(draw, channels: int):
    subsampling = draw(st.sampled_from(["4:4:4", "4:2:0"]))
    color = draw(st.sampled_from(["ycbcr", "rgb"]))
    if channels == 3 and color == "rgb":
        subsampling = "4:4:4"
    return dict(subsampling=subsampling, color=color, grad=draw(st.sampled_from(["bpda", "ste", "smooth"])))


@st.composite
def table_args(draw, n: int, allow_per_image: bool = True):
    kind = draw(st.sampled_from(["standard", "standard", "user", "per_image"] if allow_per_image
                                else ["standard", "user"]))
    if kind == "standard":
        return "standard"
    seed = draw(st.integers(0, 2**31 - 1))
    gen = torch.Generator().manual_seed(seed)
    lead = (n,) if kind == "per_image" else ()
    return torch.randint(1, 256, (*lead, 2, 8, 8), generator=gen).float()


def _qualities(draw, n: int):
    return draw(st.lists(st.integers(1, 100), min_size=n, max_size=n))


def _steps_for_call(api: str, quality, table, n: int) -> torch.Tensor:
    if api == "roundtrip_multi":
        return tables.level_tables(quality, table, n)
    return tables.image_tables(quality, table, n).unsqueeze(0)


def _run(api: str, x, quality, table, opts):
    if api == "roundtrip":
        return nj.roundtrip(x, quality, table, **opts)
    if api == "roundtrip_multi":
        return nj.roundtrip_multi(x, quality, table, **opts)
    return nj.JPEG(quality, table, **opts)(x)


def _check_layout(out: torch.Tensor, x: torch.Tensor, api: str) -> None:
    expect = x.shape if api != "roundtrip_multi" else out.shape[:1] + x.shape
    assert out.shape == expect and out.dtype == x.dtype and out.device == x.device
    if x.dim() == 4 and api != "roundtrip_multi" and x.is_contiguous(memory_format=torch.channels_last) \
            and not x.is_contiguous():
        assert out.is_contiguous(memory_format=torch.channels_last), "channels_last input lost its format"
    if out.is_floating_point():
        assert bool(torch.isfinite(out).all()), "non-finite output"


# --- properties -----------------------------------------------------------------------------------------

@fuzz_settings(80)
@given(spec=image_specs(), data=st.data())
def test_valid_calls_match_reference(spec, data):
    gen = torch.Generator().manual_seed(spec["seed"])
    x = build_images(spec["shape"], spec["dtype"], spec["layout"], spec["kind"], gen)
    xb = x if x.dim() == 4 else x.unsqueeze(0)
    n, c = xb.shape[:2]
    opts = data.draw(codec_options(c))
    api = data.draw(st.sampled_from(["roundtrip", "roundtrip", "roundtrip_multi", "JPEG"]))
    if api == "JPEG":
        if opts["color"] == "rgb":  # JPEG() checks its options for colour images when it is built
            opts["subsampling"] = "4:4:4"
        quality, table = data.draw(st.integers(1, 100)), data.draw(table_args(n, allow_per_image=False))
    elif api == "roundtrip":
        table = data.draw(table_args(n))
        quality = data.draw(st.integers(1, 100))
        if data.draw(st.booleans()):
            quality = torch.tensor(_qualities(data.draw, n), dtype=torch.int64)
    else:
        table = data.draw(table_args(n))
        k = data.draw(st.integers(1, 3))
        quality = data.draw(st.lists(st.integers(1, 100), min_size=k, max_size=k))
        if data.draw(st.booleans()):
            quality = torch.tensor([_qualities(data.draw, n) for _ in range(k)], dtype=torch.int64).reshape(k, n)
    note(f"x {tuple(x.shape)} {x.dtype} strides {x.stride()} api {api} quality {quality} opts {opts}")
    out = _run(api, x, quality, table, opts)
    _check_layout(out, x, api)
    levels = out if api == "roundtrip_multi" else out.unsqueeze(0)
    if x.dim() == 3:
        levels = levels.unsqueeze(1)
    check_levels(levels, xb, _steps_for_call(api, quality, table, n), opts["subsampling"], opts["color"],
                 opts["grad"])


HOSTILE = ["nan", "posinf", "neginf", "above", "below", "rank", "channels", "zero_size", "dtype", "not_tensor",
           "quality_value", "quality_type", "quality_shape", "table_shape", "table_value", "table_type",
           "table_batch", "table_device", "subsampling", "color", "grad", "rgb_420", "multi_empty",
           "multi_shape"]


def _hostile_value(kind: str, draw, x: torch.Tensor, n: int):
    """(images, quality, table, opts, api) for one hostile change of an otherwise valid call."""
    images, quality, table = x, 50, "standard"
    opts = dict(subsampling="4:4:4", color="ycbcr", grad="bpda")
    api = draw(st.sampled_from(["roundtrip", "roundtrip_multi", "JPEG"]))
    if kind in ("nan", "posinf", "neginf", "above", "below"):
        images = x.float() if not x.is_floating_point() else x.clone()
        images = images.clone()
        flat = images.view(-1) if images.is_contiguous() else images.reshape(-1)
        value = {"nan": math.nan, "posinf": math.inf, "neginf": -math.inf,
                 "above": draw(st.floats(1.01, 1e30)), "below": draw(st.floats(-1e30, -0.01))}[kind]  # bf16-safe
        flat[draw(st.integers(0, flat.numel() - 1))] = value
        images = flat.view(images.shape)
    elif kind == "rank":
        images = x.reshape(-1)[: 1] if draw(st.booleans()) else x.reshape(1, *x.shape, 1)
        if draw(st.booleans()):
            images = torch.zeros(x.shape[-2], x.shape[-1], dtype=x.dtype)
    elif kind == "channels":
        images = torch.zeros(n, draw(st.sampled_from([0, 2, 4, 5, 8])), 8, 8, dtype=x.dtype)
    elif kind == "zero_size":
        images = torch.zeros(n, x.shape[1], *draw(st.sampled_from([(0, 8), (8, 0), (0, 0)])), dtype=x.dtype)
    elif kind == "dtype":
        dt = draw(st.sampled_from([torch.int8, torch.int16, torch.int32, torch.int64, torch.bool,
                                   torch.complex64, torch.uint16, torch.float8_e4m3fn]))
        images = torch.zeros(x.shape, dtype=dt)
    elif kind == "not_tensor":
        images = draw(st.sampled_from([None, "image.png", 3, [[0.5]], {"x": 1}]))
    elif kind == "quality_value":
        quality = draw(st.sampled_from([0, 101, -1, -100, 1000, 2**40]))
    elif kind == "quality_type":
        quality = draw(st.sampled_from([50.5, "50", None, True, math.nan, 1j, torch.tensor([True] * n),
                                        torch.full((n,), 50.5)]))
    elif kind == "quality_shape":
        api = "roundtrip"
        quality = draw(st.sampled_from([torch.full((n + 1,), 50), torch.full((n, 2), 50), torch.full((1, 1, n), 50)]))
    elif kind == "table_shape":
        table = torch.ones(draw(st.sampled_from([(8, 8), (1, 8, 8), (3, 8, 8), (2, 8, 9), (2, 64), (1, 1, 2, 8, 8)])))
    elif kind == "table_value":
        table = torch.ones(2, 8, 8)
        table[draw(st.integers(0, 1)), draw(st.integers(0, 7)), draw(st.integers(0, 7))] = draw(
            st.sampled_from([0.0, -1.0, -1e30, math.nan, math.inf, -math.inf]))
    elif kind == "table_type":
        table = draw(st.sampled_from([None, 3, [[1.0] * 8] * 8, "no-such-preset", torch.ones(2, 8, 8, dtype=torch.bool),
                                      torch.ones(2, 8, 8, dtype=torch.complex64)]))
    elif kind == "table_batch":
        api = "roundtrip"
        table = torch.ones(n + 1, 2, 8, 8)
    elif kind == "table_device":
        api = "roundtrip"
        table = torch.ones(2, 8, 8, device="meta")
    elif kind in ("subsampling", "color", "grad"):
        opts[kind] = draw(st.sampled_from(["", "4:2:2", "YCbCr ", "none", "identity", None, 0]))
    elif kind == "rgb_420":
        images = torch.zeros(n, 3, 8, 8)
        opts.update(subsampling="4:2:0", color="rgb")
    elif kind == "multi_empty":
        api, quality = "roundtrip_multi", draw(st.sampled_from([[], torch.zeros(0, dtype=torch.int64)]))
    elif kind == "multi_shape":
        api = "roundtrip_multi"
        quality = draw(st.sampled_from([torch.full((2, n + 1), 50), torch.full((2, n, 1), 50), torch.tensor(50)]))
    return images, quality, table, opts, api


@fuzz_settings(120)
@given(kind=st.sampled_from(HOSTILE), spec=image_specs(max_batch=2), data=st.data())
def test_hostile_arguments_raise_clear_errors(kind, spec, data):
    gen = torch.Generator().manual_seed(spec["seed"])
    x = build_images(spec["shape"], spec["dtype"], spec["layout"], spec["kind"], gen)
    x = x if x.dim() == 4 else x.unsqueeze(0)
    assume(x.shape[0] >= 1)
    images, quality, table, opts, api = _hostile_value(kind, data.draw, x, x.shape[0])
    note(f"hostile {kind}: api {api} quality {quality!r} table {table!r} opts {opts}")
    with pytest.raises((ValueError, TypeError)) as info:
        _run(api, images, quality, table, opts)
    assert str(info.value), "error without a message"


@fuzz_settings(40)
@given(spec=image_specs(max_batch=2), poison=st.sampled_from([math.nan, math.inf, -math.inf, 7.0, -3.0, 1e38]),
       fraction=st.sampled_from([0.0, 0.01, 0.5, 1.0]), data=st.data())
def test_unvalidated_hostile_pixels_are_mapped_like_the_reference(spec, poison, fraction, data):
    """validate=False: NaN -> 0 and clamping, as the reference does; never NaN out, never a crash."""
    gen = torch.Generator().manual_seed(spec["seed"])
    dtype = data.draw(st.sampled_from([torch.float32, torch.float64]))
    x = build_images(spec["shape"], dtype, "contiguous", spec["kind"], gen)
    mask = torch.rand(x.shape, generator=gen) < fraction
    x = torch.where(mask, torch.tensor(poison, dtype=dtype), x)
    xb = x if x.dim() == 4 else x.unsqueeze(0)
    opts = data.draw(codec_options(xb.shape[1]))
    q = data.draw(st.integers(1, 100))
    out = nj.roundtrip(x, q, subsampling=opts["subsampling"], color=opts["color"], grad=opts["grad"], validate=False)
    assert bool(torch.isfinite(out).all()) and bool((out >= 0).all()) and bool((out <= 1).all())
    levels = (out if out.dim() == 4 else out.unsqueeze(0)).unsqueeze(0)
    check_levels(levels, xb, tables.image_tables(q, "standard", xb.shape[0]).unsqueeze(0), **opts)


@fuzz_settings(30)
@given(spec=image_specs(max_batch=2, max_elements=2 * 3 * 40 * 40), data=st.data())
def test_gradients_match_reference(spec, data):
    """Gradients of all three modes against autograd through the reference (in float64)."""
    gen = torch.Generator().manual_seed(spec["seed"])
    dtype = data.draw(st.sampled_from([torch.float32, torch.float64]))
    x = build_images(spec["shape"], dtype, spec["layout"], spec["kind"], gen).detach()
    xb = x if x.dim() == 4 else x.unsqueeze(0)
    n, c = xb.shape[:2]
    opts = data.draw(codec_options(c))
    q = data.draw(st.integers(1, 100))
    steps = tables.image_tables(q, "standard", n).unsqueeze(0)
    # Upstream gradient, zero where the clamp decision is ambiguous (a pixel at 0 or 255 within the
    # flip budget): there a float32 and a float64 run may legitimately disagree on whether it clamps.
    ref255 = reference_levels_255(xb, steps, **{k: opts[k] for k in ("subsampling", "color", "grad")})
    raw = reference.decode_levels(reference._to_255(xb, torch.float64), steps.double(), opts["subsampling"],
                                  opts["color"], "smooth" if opts["grad"] == "smooth" else "round")
    margin = flip_budget(reference._to_255(xb, torch.float64), steps, opts["subsampling"], opts["color"], 1e-2) + 0.05
    safe = ((raw - 0).abs() > margin) & ((raw - 255).abs() > margin)
    g_out = (torch.randn(ref255.shape, generator=gen, dtype=torch.float64) * safe)[0]
    g_out = g_out if x.dim() == 4 else g_out[0]

    xk = x.clone().requires_grad_(True)
    (nj.roundtrip(xk, q, **opts).double() * g_out).sum().backward()
    xr = x.double().clone().requires_grad_(True)
    (reference.roundtrip(xr, q, **opts) * g_out).sum().backward()
    assert xk.grad.shape == x.shape
    if x.numel() == 0:
        return
    tol = 1e-9 if dtype == torch.float64 else 2e-4 * (1 + float(xr.grad.abs().max()))
    err = float((xk.grad.double() - xr.grad).abs().max())
    assert err <= tol, f"gradient differs by {err:.3g} (tolerance {tol:.3g})"


@pytest.mark.parametrize("qualities", [torch.tensor([True, True]), torch.tensor([50.5, 60.0])],
                         ids=["bool", "fractional"])
def test_multi_rejects_bool_and_fractional_quality_tensors(qualities):
    """Regression: level_tables once cast each entry with int(), so True became quality 1 and 50.5 became 50."""
    with pytest.raises((ValueError, TypeError)):
        nj.roundtrip_multi(torch.rand(1, 3, 8, 8), qualities)
