"""The scaled built-in tables are cached per (preset, quality, device): same values as computing them."""

import torch

import nnjpeg_cuda as nj
from nnjpeg_cuda import tables


def test_cached_tables_equal_freshly_scaled_ones():
    for name in ("standard", "nn", "fd"):
        for q in (1, 37, 75, 100):
            fresh = tables.scale(tables.get_base(name), q)
            for _ in range(2):
                got = tables.image_tables(q, name, 3)
                assert got.shape == (3, 2, 8, 8) and torch.equal(got, fresh.expand(3, 2, 8, 8))


def test_registering_a_preset_invalidates_the_cache():
    x = torch.rand(2, 3, 16, 16)
    before = nj.roundtrip(x, 60, table="nn")
    original = tables._PRESETS["nn"]
    try:
        tables.register_preset("nn", lambda: torch.full((2, 8, 8), 16.0))
        changed = nj.roundtrip(x, 60, table="nn")
        assert torch.equal(changed, nj.roundtrip(x, 60, table=torch.full((2, 8, 8), 16.0)))
        assert not torch.equal(changed, before)
    finally:
        tables.register_preset("nn", original)
    assert torch.equal(nj.roundtrip(x, 60, table="nn"), before)


def test_uncached_arguments_still_validate():
    import pytest

    with pytest.raises(ValueError, match="1..100"):
        tables.image_tables(0, "standard", 1)
    with pytest.raises(TypeError):
        tables.image_tables(True, "standard", 1)
