"""Table designer: streaming DCT statistics against scipy, the design rules against numpy, presets."""

import json

import numpy as np
import pytest
import torch
from scipy.fft import dctn

import nnjpeg_cuda
from nnjpeg_cuda import tables
from nnjpeg_cuda.table_design import NN_TABLE_FILE, BandStats, dct_coefficients

# JFIF RGB -> YCbCr written out independently of the package (ITU-T T.871).
JFIF = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])


def numpy_band_coefficients(x_uint8: np.ndarray) -> np.ndarray:
    """(N, 3, H, W) uint8 with H, W multiples of 8 -> (3, 8, 8, blocks) DCT coefficients, scipy's DCT."""
    ycc = np.einsum("ij,njhw->nihw", JFIF, x_uint8.astype(np.float64))
    ycc[:, 1:] += 128
    ycc -= 128
    n, c, h, w = ycc.shape
    blocks = ycc.reshape(n, c, h // 8, 8, w // 8, 8).transpose(0, 1, 2, 4, 3, 5)
    coef = dctn(blocks, axes=(-2, -1), norm="ortho")
    return coef.transpose(1, 4, 5, 0, 2, 3).reshape(3, 8, 8, -1)


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(0)
    base = torch.rand(24, 3, 4, 4, generator=g)  # smooth-ish images: low frequencies dominate
    x = torch.nn.functional.interpolate(base, size=(32, 24), mode="bilinear", align_corners=False)
    x = x + 0.05 * torch.randn(x.shape, generator=g)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


def test_analyze_matches_scipy(images):
    s = tables.analyze(images, batch_size=5)  # 5 does not divide 24: uneven batches merge
    coef = numpy_band_coefficients(images.numpy())
    assert s.count == coef.shape[-1] == 24 * 4 * 3
    # the JFIF constants above are the standard's 6-digit ones: agreement to ~1e-5 on a 0..2000 scale
    np.testing.assert_allclose(s.mean.numpy(), coef.mean(-1), atol=1e-3)
    np.testing.assert_allclose(s.std.numpy(), coef.std(-1), rtol=1e-6, atol=1e-3)
    np.testing.assert_allclose(s.mean_abs.numpy(), np.abs(coef).mean(-1), rtol=1e-6, atol=1e-3)


def test_analyze_streams_dataloader_and_float_input(images):
    one = tables.analyze(images)
    ds = torch.utils.data.TensorDataset(images.float() / 255, torch.zeros(len(images)))
    loader = torch.utils.data.DataLoader(ds, batch_size=7)
    streamed = tables.analyze(loader)
    torch.testing.assert_close(streamed.std, one.std, rtol=1e-6, atol=1e-4)  # float32 /255 input
    torch.testing.assert_close(streamed.mean_abs, one.mean_abs, rtol=1e-6, atol=1e-4)


def test_analyze_pads_like_the_codec():
    x = torch.randint(0, 256, (2, 3, 13, 9), dtype=torch.uint8)
    assert dct_coefficients(x).shape == (2, 3, 2, 2, 8, 8)
    assert tables.analyze(x).count == 2 * 2 * 2


@pytest.mark.parametrize("bad, err", [(torch.zeros(2, 1, 8, 8), ValueError), ("images", TypeError),
                                      ([], ValueError)])
def test_analyze_rejects_bad_input(bad, err):
    with pytest.raises(err):
        tables.analyze(bad)


def _stats(std_y, std_c):
    std = torch.stack([torch.as_tensor(std_y, dtype=torch.float64), torch.as_tensor(std_c, dtype=torch.float64),
                       torch.as_tensor(std_c, dtype=torch.float64)])
    return BandStats(100, torch.zeros_like(std), std, std * 0.8)


def test_deepn_is_the_piecewise_linear_map():
    g = torch.Generator().manual_seed(1)
    std_y = torch.rand(8, 8, generator=g, dtype=torch.float64) * 150
    std_c = torch.rand(8, 8, generator=g, dtype=torch.float64) * 50
    knots = ((2.0, 100.0), (10.0, 40.0), (40.0, 12.0), (120.0, 6.0))
    t = tables.design(_stats(std_y, std_c), "deepn", knots=knots, normalize=None)
    xs, ys = zip(*knots)
    np.testing.assert_array_equal(t[0].numpy(), np.round(np.interp(std_y.numpy(), xs, ys)))
    np.testing.assert_array_equal(t[1].numpy(), np.round(np.interp(std_c.numpy(), xs, ys)))


def test_normalize_matches_the_standard_geometric_mean():
    s = _stats(torch.linspace(200, 1, 64).view(8, 8), torch.linspace(60, 0.5, 64).view(8, 8))
    t = tables.design(s, "deepn")
    gm = lambda a: float(np.exp(np.log(np.asarray(a, dtype=np.float64)).mean()))  # noqa: E731
    for p in range(2):
        assert gm(t[p]) == pytest.approx(gm(tables.STANDARD[p]), rel=0.03)


def test_two_band_keeps_the_energy_fraction():
    std_y = torch.linspace(100, 1, 64, dtype=torch.float64).view(8, 8)
    s = _stats(std_y, std_y / 3)
    t = tables.design(s, "two_band", keep_energy=0.9, low_step=7, high_step=70, normalize=None)
    var = std_y.flatten().numpy() ** 2
    var[0] = 0
    order = np.argsort(-var)
    frac = np.cumsum(var[order]) / var.sum()
    n_keep = int((frac < 0.9).sum()) + 1
    expect = np.full(64, 70.0)
    expect[order[:n_keep]] = 7
    expect[0] = 7
    np.testing.assert_array_equal(t[0].flatten().numpy(), expect)
    assert set(t.unique().tolist()) == {7.0, 70.0}


def test_model_aware_tilts_by_sensitivity():
    s = _stats(torch.full((8, 8), 20.0), torch.full((8, 8), 20.0))
    flat = torch.ones(3, 8, 8)
    deepn = tables.design(s, "deepn", normalize=None)
    assert torch.equal(tables.design(s, "model", sensitivity=flat, normalize=None), deepn)
    assert torch.equal(tables.design(s, "model", sensitivity=torch.rand(3, 8, 8) + 0.1, alpha=0.0, normalize=None),
                       deepn)
    sens = flat.clone()
    sens[0, 3, 5] = 10.0  # the classifier needs this luma band more than its spread says
    t = tables.design(s, "model", sensitivity=sens, alpha=1.0, normalize=None)
    assert t[0, 3, 5] < deepn[0, 3, 5]
    assert bool((t[0].flatten()[torch.arange(64) != 29] >= deepn[0].flatten()[torch.arange(64) != 29]).all())


@pytest.mark.parametrize("kw", [dict(method="jpeg"), dict(method="model"), dict(method="two_band", keep_energy=0),
                                dict(method="deepn", knots=((5, 10),)), dict(method="deepn", normalize="max"),
                                dict(method="model", sensitivity=torch.ones(2, 8, 8))])
def test_design_rejects_bad_arguments(kw):
    with pytest.raises(ValueError):
        tables.design(_stats(torch.ones(8, 8), torch.ones(8, 8)), **kw)


def test_band_sensitivity_gradient_matches_pixel_gradient():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.Tanh(), torch.nn.Flatten(),
                              torch.nn.Linear(4 * 16 * 16, 10)).double()
    x = torch.randint(0, 256, (3, 3, 16, 16), dtype=torch.uint8)
    y = torch.tensor([1, 5, 7])
    got = tables.band_sensitivity(net, x, y, method="gradient")
    # Oracle: gradient wrt RGB pixels by autograd, chained by hand to YCbCr (inverse of JFIF) and to the
    # blockwise DCT with scipy (orthonormal, so the coefficient gradient is the DCT of the pixel gradient).
    xr = (x.double() / 255).requires_grad_(True)
    torch.nn.functional.cross_entropy(net(xr), y, reduction="sum").backward()
    g_rgb = xr.grad.numpy() / 255
    inv = np.linalg.inv(JFIF)
    g_ycc = np.einsum("ij,nihw->njhw", inv, g_rgb)
    coef_g = numpy_band_coefficients_plain(g_ycc)
    np.testing.assert_allclose(got.numpy(), np.abs(coef_g).mean(-1), rtol=1e-3, atol=1e-9)


def numpy_band_coefficients_plain(planes):
    n, c, h, w = planes.shape
    blocks = planes.reshape(n, c, h // 8, 8, w // 8, 8).transpose(0, 1, 2, 4, 3, 5)
    return dctn(blocks, axes=(-2, -1), norm="ortho").transpose(1, 4, 5, 0, 2, 3).reshape(3, 8, 8, -1)


class _MeanColour(torch.nn.Module):
    """Predicts from the image's mean colour only: depends on the DC bands, never on an AC band."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(3, 4)
        with torch.no_grad():
            self.lin.weight.copy_(torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [-1, -1, -1]]) * 10)
            self.lin.bias.zero_()

    def forward(self, x):
        return self.lin(x.mean(dim=(2, 3)) - 0.5)


def test_band_sensitivity_ablation_finds_the_dc_band():
    x = torch.randint(0, 256, (16, 3, 16, 16), dtype=torch.uint8)
    model = _MeanColour()
    y = model(x.float() / 255).argmax(1)
    s = tables.band_sensitivity(model, x, y, method="ablation")
    assert s[0, 0, 0] > 0 or s[1, 0, 0] > 0
    ac = s.clone()
    ac[:, 0, 0] = 0
    assert float(ac.abs().max()) < 1e-12


def test_presets_nn_and_fd():
    assert {"standard", "nn", "fd"} <= set(tables.presets())
    nn_t = tables.get_base("nn")
    doc = json.loads(NN_TABLE_FILE.read_text())
    assert nn_t.shape == (2, 8, 8) and bool((nn_t >= 1).all()) and bool((nn_t <= 255).all())
    assert torch.equal(nn_t, torch.tensor(doc["candidates"][doc["chosen"]], dtype=torch.float32))
    assert "make_nn_table.py" in doc["command"]
    assert torch.equal(tables.get_base("fd"), tables.fd_table())
    x = torch.rand(2, 3, 16, 16)
    for name in ("nn", "fd"):
        y = nnjpeg_cuda.roundtrip(x, quality=50, table=name)
        ref = nnjpeg_cuda.reference.roundtrip(x.double(), quality=50, table=tables.get_base(name))
        torch.testing.assert_close(y.double(), ref, atol=2e-5, rtol=0)
    assert nnjpeg_cuda.JPEG(quality=30, table="nn").steps.shape == (2, 8, 8)
    # quality scaling applies to the NN table as to any base table
    torch.testing.assert_close(tables.scale(nn_t, 50), nn_t)
    assert bool((tables.scale(nn_t, 10) >= tables.scale(nn_t, 90)).all())
