"""Gradient modes against autograd through the float64 reference, and gradcheck for "smooth"."""

import pytest
import torch

import nnjpeg_cuda as nj
from nnjpeg_cuda import reference

CONFIGS = [("4:4:4", "ycbcr", 3), ("4:2:0", "ycbcr", 3), ("4:4:4", "rgb", 3), ("4:4:4", "ycbcr", 1)]


def _vjp(fn, x, g):
    x = x.detach().clone().requires_grad_(True)
    out = fn(x)
    out.backward(g)
    return out.detach(), x.grad


@pytest.mark.parametrize("subsampling,color,channels", CONFIGS)
@pytest.mark.parametrize("grad", ["bpda", "ste", "smooth"])
def test_gradient_matches_autograd_through_reference(subsampling, color, channels, grad):
    gen = torch.Generator().manual_seed(7)
    x = torch.rand(2, channels, 19, 27, dtype=torch.float64, generator=gen)
    g = torch.randn(2, channels, 19, 27, dtype=torch.float64, generator=gen)
    kwargs = dict(subsampling=subsampling, color=color, grad=grad)
    out, grad_ours = _vjp(lambda t: nj.roundtrip(t, 30, **kwargs), x, g)
    ref, grad_ref = _vjp(lambda t: reference.roundtrip(t, 30, **kwargs), x, g)
    torch.testing.assert_close(out, ref, atol=1e-9, rtol=0)
    torch.testing.assert_close(grad_ours, grad_ref, atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize("grad", ["ste", "smooth"])
def test_multi_level_gradient_is_the_sum_over_levels(grad):
    gen = torch.Generator().manual_seed(8)
    x = torch.rand(2, 3, 16, 24, dtype=torch.float64, generator=gen)
    g = torch.randn(3, 2, 3, 16, 24, dtype=torch.float64, generator=gen)
    _, multi = _vjp(lambda t: nj.roundtrip_multi(t, [80, 40, 10], grad=grad), x, g)
    total = sum(_vjp(lambda t: nj.roundtrip(t, q, grad=grad), x, g[k])[1] for k, q in enumerate([80, 40, 10]))
    torch.testing.assert_close(multi, total, atol=1e-9, rtol=1e-9)


def test_bpda_is_the_identity():
    x = torch.rand(2, 3, 16, 16, requires_grad=True)
    g = torch.randn(2, 3, 16, 16)
    nj.roundtrip(x, 10, subsampling="4:2:0", grad="bpda").backward(g)
    assert torch.equal(x.grad, g)


def test_ste_differs_from_identity_once_clamping_or_subsampling_is_on():
    gen = torch.Generator().manual_seed(9)
    x = torch.rand(1, 3, 16, 16, dtype=torch.float64, generator=gen)
    g = torch.randn(1, 3, 16, 16, dtype=torch.float64, generator=gen)
    # 4:4:4, no clamping (mid-grey content): the linear parts compose to the identity.
    mid = 0.25 + 0.5 * x
    _, g_mid = _vjp(lambda t: nj.roundtrip(t, 90, grad="ste"), mid, g)
    torch.testing.assert_close(g_mid, g, atol=1e-9, rtol=1e-9)
    _, g_sub = _vjp(lambda t: nj.roundtrip(t, 90, grad="ste", subsampling="4:2:0"), mid, g)
    assert (g_sub - g).abs().max().item() > 0.1
    saturated = torch.ones_like(x)  # decoded values overshoot 255 and are clamped
    _, g_sat = _vjp(lambda t: nj.roundtrip(t, 10, grad="ste"), saturated * 0.999 + 0.001 * x, g)
    assert (g_sat - g).abs().max().item() > 0.1


@pytest.mark.parametrize("subsampling", ["4:4:4", "4:2:0"])
def test_gradcheck_smooth_float64(subsampling):
    gen = torch.Generator().manual_seed(10)
    # Content away from 0 and 1, so no output sits on the clamp's kink.
    x = (0.3 + 0.4 * torch.rand(1, 3, 12, 12, dtype=torch.float64, generator=gen)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: nj.roundtrip(t, 50, grad="smooth", subsampling=subsampling), (x,),
                                    eps=1e-6, atol=1e-5)


def test_uint8_input_has_no_gradient_path():
    x = torch.randint(0, 256, (1, 3, 8, 8), dtype=torch.uint8)
    assert not nj.roundtrip(x, 50, grad="ste").requires_grad
