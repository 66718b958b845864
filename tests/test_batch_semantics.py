"""Batch semantics: each image is independent of the batch, per-image settings equal scalar calls, and the
output is identical across runs and thread counts."""

import pytest
import torch

import nnjpeg_cuda as nj


@pytest.fixture
def batch(photo_batch):
    return photo_batch.float() / 255


@pytest.mark.parametrize("subsampling", ["4:4:4", "4:2:0"])
def test_each_image_is_independent_of_the_rest_of_the_batch(batch, subsampling):
    full = nj.roundtrip(batch, 35, subsampling=subsampling)
    for i in range(batch.shape[0]):
        assert torch.equal(full[i], nj.roundtrip(batch[i:i + 1], 35, subsampling=subsampling)[0])
    shuffled = nj.roundtrip(batch.flip(0), 35, subsampling=subsampling)
    assert torch.equal(shuffled, full.flip(0))


@pytest.mark.parametrize("subsampling", ["4:4:4", "4:2:0"])
def test_per_image_quality_equals_the_scalar_call(batch, subsampling):
    qualities = torch.tensor([5, 50, 95])
    out = nj.roundtrip(batch, qualities, subsampling=subsampling)
    for i, q in enumerate(qualities.tolist()):
        assert torch.equal(out[i], nj.roundtrip(batch[i], q, subsampling=subsampling))


def test_per_image_table_equals_the_scalar_call(batch):
    gen = torch.Generator().manual_seed(1)
    base = torch.randint(1, 100, (3, 2, 8, 8), generator=gen).float()
    out = nj.roundtrip(batch, 70, table=base)
    for i in range(3):
        assert torch.equal(out[i], nj.roundtrip(batch[i], 70, table=base[i]))


@pytest.mark.parametrize("subsampling", ["4:4:4", "4:2:0"])
def test_output_is_identical_across_runs_and_thread_counts(subsampling):
    gen = torch.Generator().manual_seed(2)
    x = torch.rand(16, 3, 72, 88, generator=gen)  # enough blocks for every thread count to split the work
    before = torch.get_num_threads()
    try:
        results = []
        for threads in (1, 2, 3, 1):
            torch.set_num_threads(threads)
            results.append(nj.roundtrip(x, 40, subsampling=subsampling))
    finally:
        torch.set_num_threads(before)
    for r in results[1:]:
        assert torch.equal(r, results[0])


def test_empty_batch_gives_an_empty_result():
    x = torch.rand(0, 3, 16, 16)
    out = nj.roundtrip(x, 50)
    assert out.shape == (0, 3, 16, 16)
    assert nj.roundtrip_multi(x, [10, 90]).shape == (2, 0, 3, 16, 16)
    assert nj.roundtrip(x, torch.empty(0, dtype=torch.int64)).shape == (0, 3, 16, 16)


def test_jpeg_layer_and_random_jpeg(batch):
    layer = nj.JPEG(quality=30, subsampling="4:2:0")
    assert torch.equal(layer(batch), nj.roundtrip(batch, 30, subsampling="4:2:0"))
    assert torch.equal(layer(batch[0]), nj.roundtrip(batch[0], 30, subsampling="4:2:0"))
    aug = nj.RandomJPEG((20, 80), generator=torch.Generator().manual_seed(5))
    q = torch.randint(20, 81, (3,), generator=torch.Generator().manual_seed(5))
    assert torch.equal(aug(batch), nj.roundtrip(batch, q))
