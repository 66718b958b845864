"""Determinism and isolation: the round trip of an image depends on that image and its options only.

Bitwise identical (compared as raw bits, so -0.0 and 0.0 would differ) across: repeated calls, separate
processes, torch thread counts 1..8, batch composition and order, memory layout of the same values,
roundtrip_multi's shared DCT vs single-level calls, calls made concurrently from Python threads (the
kernel releases the GIL), and calls in a child forked after the kernel's worker threads started (they are
kept between calls: csrc/cpu/worker_pool.cpp). Forward and the "ste"/"smooth" backward kernels both.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

import nnjpeg_cuda as nj

CONFIGS = [("4:4:4", "ycbcr", 3), ("4:2:0", "ycbcr", 3), ("4:4:4", "rgb", 3), ("4:4:4", "ycbcr", 1)]
DTYPES = [torch.uint8, torch.float16, torch.float32, torch.float64]
_BITS = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def bits(t: torch.Tensor) -> torch.Tensor:
    """The tensor's raw bits (contiguous), for bitwise comparison."""
    return t.detach().contiguous().view(_BITS[t.element_size()])


def assert_bitwise_equal(a: torch.Tensor, b: torch.Tensor, what: str = "") -> None:
    assert a.shape == b.shape and a.dtype == b.dtype, f"{what}: {a.shape} {a.dtype} vs {b.shape} {b.dtype}"
    diff = bits(a) != bits(b)
    assert not bool(diff.any()), f"{what}: {int(diff.sum())} of {a.numel()} elements differ bitwise"


def images(dtype, channels, n=4, h=67, w=101, seed=0) -> torch.Tensor:
    x = torch.rand(n, channels, h, w, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    return torch.round(x * 255).to(torch.uint8) if dtype == torch.uint8 else x.to(dtype)


def digest(t: torch.Tensor) -> str:
    return hashlib.sha256(bits(t).numpy().tobytes()).hexdigest()


@pytest.fixture
def restore_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("subsampling,color,channels", CONFIGS)
def test_repeated_calls_are_bitwise_identical(dtype, subsampling, color, channels):
    x = images(dtype, channels)
    q = torch.tensor([5, 50, 90, 100])
    first = nj.roundtrip(x, q, subsampling=subsampling, color=color)
    for _ in range(3):
        assert_bitwise_equal(nj.roundtrip(x, q, subsampling=subsampling, color=color), first, "repeat")
    assert_bitwise_equal(x, images(dtype, channels), "input modified")


@pytest.mark.parametrize("grad", ["bpda", "ste", "smooth"])
@pytest.mark.parametrize("subsampling,color,channels", CONFIGS)
def test_thread_count_does_not_change_a_bit(grad, subsampling, color, channels, restore_threads):
    x = images(torch.float32, channels, n=3, h=131, w=205)  # 3 x 17 x 26 blocks: every thread gets work
    g = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    results = []
    for threads in (1, 2, 3, 8):
        torch.set_num_threads(threads)
        xg = x.clone().requires_grad_(True)
        out = nj.roundtrip(xg, 30, subsampling=subsampling, color=color, grad=grad)
        (out * g).sum().backward()
        results.append((threads, out.detach(), xg.grad))
    for threads, out, grad_in in results[1:]:
        assert_bitwise_equal(out, results[0][1], f"forward, {threads} threads vs 1")
        assert_bitwise_equal(grad_in, results[0][2], f"backward, {threads} threads vs 1")


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.float64])
@pytest.mark.parametrize("subsampling,color,channels", CONFIGS)
def test_batch_composition_and_layout_do_not_matter(dtype, subsampling, color, channels):
    x = images(dtype, channels, n=5)
    q = torch.tensor([10, 35, 50, 75, 95])
    opts = dict(subsampling=subsampling, color=color)
    batch = nj.roundtrip(x, q, **opts)
    for i in range(5):  # each image alone, with its own quality
        assert_bitwise_equal(nj.roundtrip(x[i:i + 1], int(q[i]), **opts)[0], batch[i], f"image {i} alone")
        assert_bitwise_equal(nj.roundtrip(x[i], int(q[i]), **opts), batch[i], f"image {i} unbatched")
    perm = torch.tensor([3, 0, 4, 1, 2])
    assert_bitwise_equal(nj.roundtrip(x[perm], q[perm], **opts), batch[perm], "permuted batch")
    mixed = torch.cat([images(dtype, channels, n=3, seed=9), x[1:3]])  # other images around it
    assert_bitwise_equal(nj.roundtrip(mixed, torch.tensor([60, 20, 80, 35, 50]), **opts)[3:], batch[1:3], "mixed")
    # Same values in other memory layouts: channels_last, a strided view, and a zero-stride expansion.
    assert_bitwise_equal(nj.roundtrip(x.contiguous(memory_format=torch.channels_last), q, **opts), batch,
                         "channels_last")
    big = torch.zeros(5, channels, 2 * x.shape[2], 2 * x.shape[3], dtype=dtype)
    big[:, :, ::2, ::2] = x
    assert_bitwise_equal(nj.roundtrip(big[:, :, ::2, ::2], q, **opts), batch, "strided view")
    one = x[2:3].expand(4, -1, -1, -1)
    assert_bitwise_equal(nj.roundtrip(one, int(q[2]), **opts), batch[2:3].expand(4, -1, -1, -1), "expanded batch")


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
@pytest.mark.parametrize("subsampling,color,channels", CONFIGS)
def test_multi_level_equals_single_levels(dtype, subsampling, color, channels):
    x = images(dtype, channels, n=3)
    multi = nj.roundtrip_multi(x, [10, 50, 90], subsampling=subsampling, color=color)
    for k, q in enumerate((10, 50, 90)):
        assert_bitwise_equal(nj.roundtrip(x, q, subsampling=subsampling, color=color), multi[k], f"level {q}")


def test_random_jpeg_is_reproducible_with_a_generator():
    x = images(torch.float32, 3, n=8)
    a = nj.RandomJPEG((20, 90), generator=torch.Generator().manual_seed(7))(x)
    b = nj.RandomJPEG((20, 90), generator=torch.Generator().manual_seed(7))(x)
    assert_bitwise_equal(a, b, "RandomJPEG with equal seeds")


_CHILD = textwrap.dedent(r"""
    import hashlib, sys, torch, nnjpeg_cuda as nj
    torch.set_num_threads(int(sys.argv[1]))
    out = []
    for dtype, sub, ch in [(torch.uint8, "4:2:0", 3), (torch.float32, "4:4:4", 3), (torch.float64, "4:4:4", 1)]:
        x = torch.rand(4, ch, 67, 101, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
        x = torch.round(x * 255).to(torch.uint8) if dtype == torch.uint8 else x.to(dtype)
        y = nj.roundtrip(x, torch.tensor([5, 50, 90, 100]), subsampling=sub)
        bits = {1: torch.uint8, 4: torch.int32, 8: torch.int64}[y.element_size()]
        out.append(hashlib.sha256(y.contiguous().view(bits).numpy().tobytes()).hexdigest())
    print(" ".join(out))
""")


def test_separate_processes_agree_bitwise():
    want = []
    for dtype, sub, ch in [(torch.uint8, "4:2:0", 3), (torch.float32, "4:4:4", 3), (torch.float64, "4:4:4", 1)]:
        want.append(digest(nj.roundtrip(images(dtype, ch), torch.tensor([5, 50, 90, 100]), subsampling=sub)))
    for threads in ("1",):  # this process runs with torch's default (2 on CI); the child with 1
        proc = subprocess.run([sys.executable, "-c", _CHILD, threads], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert proc.stdout.split() == want, f"child with {threads} thread(s) computed different bits"


def test_concurrent_python_threads_match_serial_calls():
    jobs = []
    for i in range(24):
        dtype = (torch.uint8, torch.float32, torch.float64)[i % 3]
        sub, color, ch = CONFIGS[i % 4]
        jobs.append((images(dtype, ch, n=2, h=48 + i, w=80 - i, seed=i), 10 + 3 * i, sub, color,
                     ("bpda", "ste", "smooth")[i % 3]))

    def call(job):
        x, q, sub, color, grad = job
        out = nj.roundtrip(x, q, subsampling=sub, color=color)
        if not x.is_floating_point():
            return out, None
        xg = x.clone().requires_grad_(True)
        nj.roundtrip(xg, q, subsampling=sub, color=color, grad=grad).square().sum().backward()
        return out, xg.grad

    serial = [call(job) for job in jobs]
    with ThreadPoolExecutor(max_workers=6) as pool:
        for _ in range(3):
            concurrent = list(pool.map(call, jobs))
            for i, ((a, ga), (b, gb)) in enumerate(zip(serial, concurrent)):
                assert_bitwise_equal(b, a, f"job {i} forward")
                if ga is not None:
                    assert_bitwise_equal(gb, ga, f"job {i} backward")


_FORK_BATCH = images(torch.float32, 3, n=6, h=96, w=130, seed=3)  # made before the fork: no torch ops in the child


def _forked_child_digests(queue):
    digests = [digest(nj.roundtrip(_FORK_BATCH, 40))]  # one call, which hands one task to a worker
    threads = len(os.listdir("/proc/self/task"))  # before the queue starts its feeder thread
    digests.append(digest(nj.roundtrip(_FORK_BATCH, 40, subsampling="4:2:0")))
    queue.put((digests, threads))


@pytest.mark.skipif(sys.platform != "linux", reason="fork start method")
def test_a_child_forked_after_the_workers_started_runs_multithreaded_calls(restore_threads):
    torch.set_num_threads(2)  # the child inherits it: its calls hand work to worker threads of its own
    # (forward only: PyTorch refuses autograd in a child forked after the parent's autograd threads ran)
    want = [digest(nj.roundtrip(_FORK_BATCH, 40, subsampling=sub)) for sub in ("4:4:4", "4:2:0")]
    time.sleep(0.2)  # the workers back to waiting: idle when the process forks
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_forked_child_digests, args=(queue,))
    child.start()
    child.join(timeout=120)
    assert child.exitcode == 0
    digests, threads = queue.get(timeout=10)
    assert digests == want
    assert threads >= 2  # no worker survives a fork: the child's first call started one of its own
