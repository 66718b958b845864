"""The CPU output cache (python/nnjpeg_cuda/cpu_cache.py, csrc/cpu/output_cache.h): large results reuse the
memory of freed ones, the results stay exact, the cache keeps to its limit, and it survives fork."""

import io
import multiprocessing
import os
import subprocess
import sys

import pytest
import torch

import nnjpeg_cuda as nj
from nnjpeg_cuda import cpu_cache

pytestmark = pytest.mark.skipif(not nj.extension_available(), reason="needs the compiled extension")

MIB = 2**20


@pytest.fixture(autouse=True)
def fresh_cache():
    info = nj.cpu_cache_info()
    nj.empty_cpu_cache()
    yield
    nj.set_cpu_cache_limit(info["limit_bytes"])
    nj.empty_cpu_cache()


def _photo_batch(n=4, side=384):  # 4 x 3 x 384 x 384 float32: 6.75 MiB, above the 4 MiB threshold
    g = torch.Generator().manual_seed(0)
    smooth = torch.nn.functional.interpolate(torch.rand(n, 3, side // 16, side // 16, generator=g), size=side,
                                             mode="bilinear", align_corners=False)
    return (smooth + 0.05 * torch.rand(n, 3, side, side, generator=g)).clamp(0, 1)


def test_a_freed_result_is_reused_by_the_next_call_of_its_size():
    x = _photo_batch()
    first = nj.roundtrip(x, 50)
    address, expected = first.data_ptr(), first.clone()
    misses = nj.cpu_cache_info()["misses"]
    del first
    assert nj.cpu_cache_info()["cached_bytes"] >= x.numel() * 4
    again = nj.roundtrip(x, 50)
    info = nj.cpu_cache_info()
    assert again.data_ptr() == address and info["misses"] == misses and info["hits"] >= 1
    assert torch.equal(again, expected)


def test_the_420_chroma_workspace_comes_from_the_cache_too():
    x = _photo_batch(n=16)  # the (1, 16, 2, 192, 192) float32 workspace is 4.5 MiB
    expected = nj.roundtrip(x, 50, subsampling="4:2:0", out=torch.empty_like(x))
    nj.roundtrip(x, 50, subsampling="4:2:0", out=torch.empty_like(x))  # its workspace given back after the call
    before = nj.cpu_cache_info()
    again = nj.roundtrip(x, 50, subsampling="4:2:0", out=torch.empty_like(x))  # out=: the workspace is the hit
    after = nj.cpu_cache_info()
    assert after["hits"] == before["hits"] + 1 and after["misses"] == before["misses"]
    assert torch.equal(again, expected)


def test_results_from_the_cache_equal_those_into_plain_memory():
    x = _photo_batch()
    for quality, subsampling in [(75, "4:4:4"), (30, "4:2:0")]:
        stale = nj.roundtrip(x.flip(0), 90, subsampling=subsampling)  # leaves other contents in the block
        del stale
        cached = nj.roundtrip(x, quality, subsampling=subsampling)
        assert nj.cpu_cache_info()["hits"] >= 1
        plain = nj.roundtrip(x, quality, subsampling=subsampling, out=torch.empty_like(x))
        assert torch.equal(cached, plain)
    multi = nj.roundtrip_multi(x, [20, 60])
    assert torch.equal(multi[1], nj.roundtrip(x, 60))


def test_gradients_come_from_the_cache_and_stay_exact():
    x = _photo_batch().requires_grad_(True)
    upstream = torch.rand_like(x)
    grads = []
    for _ in range(2):
        nj.roundtrip(x, 50, grad="ste").backward(upstream)
        grads.append(x.grad)
        x.grad = None
    assert nj.cpu_cache_info()["hits"] >= 1
    nj.set_cpu_cache_limit(0)
    nj.roundtrip(x, 50, grad="ste").backward(upstream)
    assert torch.equal(grads[0], x.grad) and torch.equal(grads[1], x.grad)


def test_small_results_bypass_the_cache():
    small = nj.roundtrip(torch.rand(2, 3, 64, 64), 50)
    del small
    assert nj.cpu_cache_info()["cached_bytes"] == 0


def test_limit_zero_turns_caching_off_and_the_limit_is_kept():
    x = _photo_batch()
    nj.set_cpu_cache_limit(0)
    out = nj.roundtrip(x, 50)
    out.resize_(2 * out.numel())  # plain torch memory again: resizable
    del out
    assert nj.cpu_cache_info() == {**nj.cpu_cache_info(), "cached_bytes": 0, "limit_bytes": 0}
    nj.set_cpu_cache_limit(10 * MIB)
    a, b = nj.roundtrip(x, 50), nj.roundtrip(x, 60)  # 8 MiB blocks: only one fits under 10 MiB
    del a, b
    assert 0 < nj.cpu_cache_info()["cached_bytes"] <= 10 * MIB
    nj.set_cpu_cache_limit(MIB)  # trims to the new limit at once
    assert nj.cpu_cache_info()["cached_bytes"] == 0


def test_empty_cpu_cache_gives_the_blocks_back():
    out = nj.roundtrip(_photo_batch(), 50)
    del out
    assert nj.cpu_cache_info()["cached_bytes"] > 0
    nj.empty_cpu_cache()
    assert nj.cpu_cache_info()["cached_bytes"] == 0


@pytest.mark.parametrize("bad", [-1, 1.5, True, "1"])
def test_bad_limits_raise(bad):
    with pytest.raises(ValueError, match="limit_bytes"):
        nj.set_cpu_cache_limit(bad)


def test_cached_tensors_behave_as_tensors():
    x = _photo_batch()
    unresizable = nj.roundtrip(x, 50)
    with pytest.raises(RuntimeError, match="not resizable"):  # (torch leaves its shape changed, as for frombuffer)
        unresizable.resize_(2 * unresizable.numel())
    del unresizable
    out = nj.roundtrip(x, 50)
    buffer = io.BytesIO()
    torch.save(out, buffer)
    buffer.seek(0)
    assert torch.equal(torch.load(buffer), out)
    view = out[1:]
    del out
    assert nj.cpu_cache_info()["cached_bytes"] == 0  # a view keeps the block in use
    assert torch.isfinite(view).all() and view.numpy().shape == view.shape
    expected = view.clone()
    view.share_memory_()  # what torch.multiprocessing does to send it: the data moves to shared memory
    assert view.is_shared() and torch.equal(view, expected)


def _child_roundtrip(queue):
    torch.set_num_threads(1)  # as DataLoader workers do: the parent's OpenMP pool does not survive fork
    x = _photo_batch()
    out = nj.roundtrip(x, 50)
    del out
    again = nj.roundtrip(x, 50)
    queue.put((nj.cpu_cache_info()["hits"] >= 1, float(again.sum())))


@pytest.mark.skipif(sys.platform != "linux", reason="fork start method")
def test_a_forked_child_starts_with_an_empty_cache_and_works():
    x = _photo_batch()
    held = nj.roundtrip(x, 50)
    parked = nj.roundtrip(x, 60)
    del parked  # the parent holds this block in its cache when it forks
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child_roundtrip, args=(queue,))
    child.start()
    reused, total = queue.get(timeout=120)
    child.join(timeout=120)
    assert child.exitcode == 0 and reused
    assert total == pytest.approx(float(held.sum()), rel=1e-6)
    assert nj.cpu_cache_info()["cached_bytes"] > 0  # the parent's cache is untouched


def test_environment_variable_sets_the_limit():
    code = "import nnjpeg_cuda as nj; print(nj.cpu_cache_info()['limit_bytes'])"
    for value, expected in [("0", 0), ("64", 64 * MIB)]:
        env = {**os.environ, "NNJPEG_CPU_CACHE_MB": value}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        assert int(out.stdout) == expected


def test_empty_returns_the_requested_tensor():
    t = cpu_cache.empty((3, 1024, 1024), torch.float32)
    assert t.shape == (3, 1024, 1024) and t.dtype == torch.float32 and t.is_contiguous()
    t.fill_(2)
    assert float(t.sum()) == 2 * t.numel()
