"""Our round trip against libjpeg itself (through Pillow) on real photos.

libjpeg computes with integer DCTs and colour conversion, so the two decoded images differ slightly;
the bound is a PSNR between them: >= 40 dB at quality >= 50 and >= 36 dB at 10..49, both subsamplings.
The measured figures are printed (run pytest with -s to see them).
"""

import io

import numpy as np
import pytest
import torch
from PIL import Image

import nnjpeg_cuda as nj
from conftest import psnr

PIL_SUBSAMPLING = {"4:4:4": 0, "4:2:0": 2}


def _libjpeg_round_trip(image: np.ndarray, **save_args) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", **save_args)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert(Image.fromarray(image).mode))


def _ours(image: np.ndarray, quality, **kwargs) -> np.ndarray:
    x = torch.from_numpy(image)
    x = x[None] if x.dim() == 2 else x.permute(2, 0, 1)
    y = nj.roundtrip(x.contiguous(), quality, **kwargs)
    return y[0].numpy() if image.ndim == 2 else y.permute(1, 2, 0).numpy()


@pytest.mark.parametrize("subsampling", ["4:4:4", "4:2:0"])
@pytest.mark.parametrize("quality", [10, 25, 49, 50, 75, 90, 95])
def test_psnr_against_libjpeg_on_real_photos(photos, subsampling, quality):
    bound = 40.0 if quality >= 50 else 36.0
    for name, image in photos.items():
        image = image[:-3, :-5]  # odd sizes: partial blocks at the right and bottom edges
        ref = _libjpeg_round_trip(image, quality=quality, subsampling=PIL_SUBSAMPLING[subsampling])
        value = psnr(_ours(image, quality, subsampling=subsampling), ref)
        print(f"libjpeg vs nnjpeg_cuda  {name:9s} q={quality:3d} {subsampling}: {value:.1f} dB")
        assert value >= bound, f"{name} q={quality} {subsampling}: {value:.1f} dB < {bound} dB"


def test_custom_tables_match_libjpeg_qtables(photos):
    image = photos["chelsea"]
    gen = torch.Generator().manual_seed(0)
    base = torch.randint(2, 60, (2, 8, 8), generator=gen).float()
    # quality 50 leaves a base table unscaled, which is what Pillow's qtables= writes.
    qtables = [base[0].flatten().int().tolist(), base[1].flatten().int().tolist()]
    ref = _libjpeg_round_trip(image, qtables=qtables, subsampling=0)
    value = psnr(_ours(image, 50, table=base), ref)
    print(f"libjpeg qtables vs nnjpeg_cuda: {value:.1f} dB")
    assert value >= 40.0


def test_grayscale_matches_libjpeg(photos):
    gray = np.asarray(Image.fromarray(photos["astronaut"]).convert("L"))
    for quality in (20, 75):
        value = psnr(_ours(gray, quality), _libjpeg_round_trip(gray, quality=quality))
        print(f"libjpeg vs nnjpeg_cuda  gray q={quality}: {value:.1f} dB")
        assert value >= (40.0 if quality >= 50 else 36.0)


def test_distortion_grows_as_quality_drops(photos):
    image = photos["coffee"]
    values = [psnr(_ours(image, q), image) for q in (95, 75, 50, 25, 10)]
    assert values == sorted(values, reverse=True), values
