"""The pure-PyTorch reference against independent oracles: scipy's DCT, matrix inverses, libjpeg's tables."""

import io

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.fft import dctn, idctn

from nnjpeg_cuda import reference, tables


def test_block_dct_matches_scipy_orthonormal_dct():
    rng = np.random.default_rng(0)
    plane = rng.uniform(-128, 127, size=(3, 16, 24))
    ours = reference.block_dct(torch.from_numpy(plane)).numpy()  # (3, 2, 3, 8, 8)
    for c in range(3):
        for by in range(2):
            for bx in range(3):
                block = plane[c, by * 8:(by + 1) * 8, bx * 8:(bx + 1) * 8]
                np.testing.assert_allclose(ours[c, by, bx], dctn(block, type=2, norm="ortho"), atol=1e-10)


def test_block_idct_matches_scipy_and_inverts_dct():
    rng = np.random.default_rng(1)
    coef = rng.normal(0, 50, size=(2, 1, 1, 8, 8))
    ours = reference.block_idct(torch.from_numpy(coef)).numpy()
    np.testing.assert_allclose(ours[0], idctn(coef[0, 0, 0], type=2, norm="ortho"), atol=1e-10)
    back = reference.block_dct(torch.from_numpy(ours)).numpy()
    np.testing.assert_allclose(back, coef, atol=1e-10)


def test_colour_transform_is_jfif_and_invertible():
    rgb = torch.tensor([[255.0, 0, 0], [0, 255.0, 0], [0, 0, 255.0], [128.0, 128, 128]], dtype=torch.float64)
    x = rgb.T.reshape(1, 3, 4, 1)
    ycc = reference.rgb_to_ycbcr(x)[0, :, :, 0].T
    # JFIF defines Cb = (B - Y) / 1.772 + 128 and Cr = (R - Y) / 1.402 + 128; grey stays grey.
    y_red = 0.299 * 255
    np.testing.assert_allclose(ycc[0].numpy(), [y_red, -y_red / 1.772 + 128, (255 - y_red) / 1.402 + 128], atol=1e-9)
    np.testing.assert_allclose(ycc[3].numpy(), [128, 128, 128], atol=1e-9)
    np.testing.assert_allclose(reference.ycbcr_to_rgb(reference.rgb_to_ycbcr(x)).numpy(), x.numpy(), atol=1e-9)


@pytest.mark.parametrize("quality", [1, 10, 25, 49, 50, 51, 75, 90, 100])
def test_standard_tables_equal_libjpeg_tables(quality):
    # Pillow reports the tables libjpeg actually wrote for quality=q (natural order).
    img = Image.fromarray(np.zeros((8, 8, 3), np.uint8))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    written = Image.open(io.BytesIO(buf.getvalue())).quantization
    ours = tables.standard(quality)
    np.testing.assert_array_equal(ours[0].flatten().numpy(), np.array(written[0], dtype=np.float32))
    np.testing.assert_array_equal(ours[1].flatten().numpy(), np.array(written[1], dtype=np.float32))


def test_quality_scaling_known_points():
    assert torch.equal(tables.standard(50), tables.STANDARD)
    assert torch.equal(tables.standard(100), torch.ones(2, 8, 8))
    # 5000 // 30 = 166 (integer division, as in libjpeg): 16 * 166 = 2656 -> (2656 + 50) // 100 = 27.
    assert tables.standard(30)[0, 0, 0].item() == 27.0
    assert tables.standard(1).max().item() == 255.0


def test_fancy_upsampling_keeps_constants_and_interpolates_ramps():
    c = torch.full((1, 1, 3, 4), 7.0, dtype=torch.float64)
    assert torch.allclose(reference._fancy_upsample(c, 6, 8), torch.full((1, 1, 6, 8), 7.0, dtype=torch.float64))
    ramp = torch.arange(4, dtype=torch.float64).view(1, 1, 1, 4).expand(1, 1, 1, 4)
    up = reference._fancy_upsample(ramp, 2, 8)[0, 0, 0]
    # Interior outputs sit a quarter sample from the nearest input (triangular filter).
    np.testing.assert_allclose(up.numpy(), [0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3.0], atol=1e-12)


def test_reference_round_trip_at_quality_100_is_near_lossless(photo_batch):
    x = photo_batch.double() / 255
    y = reference.roundtrip(x, quality=100)
    assert (y - x).abs().max().item() < 2.5 / 255
