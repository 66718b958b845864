"""Limits: empty batches, 1x1 images, steps of 1 and 255, qualities 1 and 100, >2^31-element images, memory.

Oracles: the float64 reference (per-pixel bound of ``tests/_reliability.py``) and closed forms that do not
use it: a constant 8x8 block has only a DC coefficient ``8 (v - 128)``, so its round trip is
``128 + round(8 (v - 128) / Q) Q / 8`` per component; with every step 1 the error of a block is at most
``sqrt(64 * 0.25) = 4`` in L2 norm (Parseval), so no pixel moves by more than 4 levels.

Memory: measured in a child process as the growth of its peak resident set (VmHWM, reset through
/proc/self/clear_refs) over the call, compared with what the call must allocate: the output, plus for
4:2:0 the decoded-chroma workspace (K x N x 2 x ceil(H/16)*8 x ceil(W/16)*8 floats), plus for half
precision the float32 copies of the input and output.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import nnjpeg_cuda as nj
from nnjpeg_cuda import tables

from _reliability import check_levels

CONFIGS = [("4:4:4", "ycbcr", 3), ("4:2:0", "ycbcr", 3), ("4:4:4", "rgb", 3), ("4:4:4", "ycbcr", 1)]
DTYPES = [torch.uint8, torch.float16, torch.bfloat16, torch.float32, torch.float64]
UNDER_ASAN = "asan" in os.environ.get("LD_PRELOAD", "")

# JFIF equations (ITU-T T.871), written out here independently of the package.
_FWD = np.array([[0.299, 0.587, 0.114], [-0.168735892, -0.331264108, 0.5], [0.5, -0.418687589, -0.081312411]])
_INV = np.linalg.inv(_FWD)


def _dc_options(v: float, q: float) -> list:
    """Dequantized DC of a constant block of level-shifted value v: round(8 v / q) q / 8 (half to even).

    At an exact tie (8 v / q = k + 1/2, common with integer pixels) the kernel's DCT may land a hair on
    either side, so both neighbours are accepted there.
    """
    t = 8 * v / q
    if abs(t - np.floor(t) - 0.5) < 1e-9:
        return [np.floor(t) * q / 8, np.ceil(t) * q / 8]
    return [np.round(t) * q / 8]


def _dc_only_roundtrips(rgb255, q_luma: float, q_chroma: float) -> np.ndarray:
    """All admissible round trips of a constant block of colour ``rgb255`` (3,) or gray (1,): (M, C)."""
    rgb255 = np.asarray(rgb255, dtype=np.float64)
    if rgb255.size == 1:
        return np.array([[np.clip(128 + d, 0, 255)] for d in _dc_options(rgb255[0] - 128, q_luma)])
    ycc = _FWD @ rgb255 - np.array([128, 0, 0])
    outs = []
    for dy, dcb, dcr in itertools.product(_dc_options(ycc[0], q_luma), _dc_options(ycc[1], q_chroma),
                                          _dc_options(ycc[2], q_chroma)):
        outs.append(np.clip(_INV @ np.array([dy + 128, dcb, dcr]), 0, 255))
    return np.array(outs)


def _assert_one_of(actual: np.ndarray, options: np.ndarray, atol: float = 1e-6) -> None:
    """``actual`` (..., C) equals one admissible closed-form result everywhere."""
    flat = actual.reshape(-1, options.shape[1])
    ok = [bool(np.all(np.abs(flat - o) <= atol)) for o in options]
    assert any(ok), f"got {flat[:2].tolist()}..., closed form allows {options.tolist()}"


# --- empty batches and 1x1 images ------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("subsampling,color,channels", CONFIGS)
@pytest.mark.parametrize("size", [(1, 1), (17, 33)])
def test_zero_image_batch(dtype, subsampling, color, channels, size):
    x = torch.zeros(0, channels, *size, dtype=dtype)
    opts = dict(subsampling=subsampling, color=color)
    assert nj.roundtrip(x, 50, **opts).shape == x.shape
    assert nj.roundtrip(x, torch.zeros(0, dtype=torch.int64) + 50, **opts).shape == x.shape
    multi = nj.roundtrip_multi(x, [10, 90], **opts)
    assert multi.shape == (2, *x.shape) and multi.dtype == dtype
    assert nj.JPEG(50, **opts)(x).shape == x.shape
    if dtype.is_floating_point:
        for grad in ("bpda", "ste", "smooth"):
            xg = x.clone().requires_grad_(True)
            nj.roundtrip(xg, 50, grad=grad, **opts).sum().backward()
            assert xg.grad.shape == x.shape


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.float64])
@pytest.mark.parametrize("subsampling,color,channels", CONFIGS)
def test_one_by_one_images(dtype, subsampling, color, channels):
    gen = torch.Generator().manual_seed(11)
    pixels = torch.randint(0, 256, (64, channels, 1, 1), generator=gen)
    x = pixels.to(torch.uint8) if dtype == torch.uint8 else (pixels.double() / 255).to(dtype)
    for q in (1, 5, 50, 95, 100):
        out = nj.roundtrip(x, q, subsampling=subsampling, color=color)
        assert out.shape == x.shape and out.dtype == dtype
        check_levels(out.unsqueeze(0), x, tables.image_tables(q, "standard", 64).unsqueeze(0), subsampling, color)
        if color == "ycbcr" and dtype == torch.float64:  # closed form: a 1x1 image pads to a constant block
            steps = tables.standard(q)
            for i in range(8):
                want = _dc_only_roundtrips(pixels[i, :, 0, 0].numpy(), float(steps[0, 0, 0]), float(steps[1, 0, 0]))
                _assert_one_of(out[i, :, 0, 0].numpy() * 255, want)


# --- extreme steps and qualities -------------------------------------------------------------------------

@pytest.mark.parametrize("subsampling,color,channels", CONFIGS)
def test_every_step_one_moves_no_pixel_more_than_parseval_bound(subsampling, color, channels):
    gen = torch.Generator().manual_seed(5)
    x = torch.rand(3, channels, 37, 45, dtype=torch.float64, generator=gen)
    for table, q in ((torch.ones(2, 8, 8), 50), ("standard", 100)):  # steps are all 1 either way
        steps = tables.image_tables(q, table, 3)
        assert bool((steps == 1).all())
        out = nj.roundtrip(x, q, table, subsampling=subsampling, color=color)
        check_levels(out.unsqueeze(0), x, steps.unsqueeze(0), subsampling, color)
        if channels == 1 or color == "rgb":
            # Each plane independently: per-pixel error <= 4 levels (L2 error of a block <= 4).
            assert float((out - x).abs().max()) * 255 <= 4 + 1e-9


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.float64])
@pytest.mark.parametrize("subsampling,color,channels", CONFIGS)
def test_every_step_255_and_quality_1(dtype, subsampling, color, channels):
    gen = torch.Generator().manual_seed(6)
    x = torch.rand(2, channels, 40, 24, dtype=torch.float64, generator=gen)
    x = torch.round(x * 255).to(torch.uint8) if dtype == torch.uint8 else x.to(dtype)
    for table, q in ((torch.full((2, 8, 8), 255.0), 50), ("standard", 1)):
        steps = tables.image_tables(q, table, 2)
        if q == 50:
            assert bool((steps == 255).all())
        out = nj.roundtrip(x, q, table, subsampling=subsampling, color=color)
        check_levels(out.unsqueeze(0), x, steps.unsqueeze(0), subsampling, color)


@pytest.mark.parametrize("level", [0, 1, 64, 127, 128, 129, 200, 254, 255])
@pytest.mark.parametrize("q", [1, 100])
def test_constant_images_closed_form(level, q):
    """Flat images at both quality extremes: every block is DC-only, so the closed form gives each pixel."""
    for channels, rgb in ((1, [level]), (3, [level, 255 - level, (level * 7) % 256])):
        x = torch.tensor(rgb, dtype=torch.float64).view(1, channels, 1, 1).expand(1, channels, 16, 24) / 255
        out = nj.roundtrip(x, q)
        steps = tables.standard(q)
        want = _dc_only_roundtrips(np.array(rgb), float(steps[0, 0, 0]), float(steps[1, 0, 0]))
        _assert_one_of(out[0].permute(1, 2, 0).numpy() * 255, want)


def test_huge_and_tiny_steps_at_the_op_level():
    """Steps above 2048 (only reachable through the op) zero every coefficient (|F| <= 1024): flat 128."""
    x = torch.rand(2, 1, 16, 16, dtype=torch.float64)
    for step in (4096.0, 65535.0, 3e38):
        out = nj.ops.roundtrip_levels(x, torch.full((1, 2, 2, 8, 8), step), "4:4:4", "ycbcr", "bpda", True)
        assert bool((out * 255 - 128).abs().max() < 1e-9)
    with pytest.raises(ValueError):
        nj.ops.roundtrip_levels(x, torch.full((1, 2, 2, 8, 8), 0.5), "4:4:4", "ycbcr", "bpda", True)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("subsampling", ["4:4:4", "4:2:0"])
def test_input_offsets_past_2_31_through_a_sparse_view(channels, subsampling):
    """A view whose rows lie 2^27 bytes apart: element offsets reach 5.4e9 while only a few pages are touched
    (the storage is reserved, never written outside the view). Equal, bit for bit, to the same pixels
    stored densely, and within the bound of the reference."""
    rows, cols = 40, 21
    row_stride = 2**27 + 5
    size = (rows - 1) * row_stride + (cols - 1) * channels + channels
    assert size > 2**32
    try:
        storage = torch.empty(size, dtype=torch.uint8)
    except RuntimeError as exc:  # no overcommit on this machine
        pytest.skip(f"cannot reserve {size / 2**30:.1f} GiB of address space: {exc}")
    x = storage.as_strided((1, channels, rows, cols), (0, 1, row_stride, channels))
    x.copy_(torch.randint(0, 256, x.shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(4)))
    dense = x.contiguous()
    out = nj.roundtrip(x, 40, subsampling=subsampling)
    assert torch.equal(out, nj.roundtrip(dense, 40, subsampling=subsampling))
    check_levels(out.unsqueeze(0), dense, tables.image_tables(40, "standard", 1).unsqueeze(0), subsampling)


# --- memory ----------------------------------------------------------------------------------------------

_CHILD = textwrap.dedent(r"""
    import json, sys, torch, nnjpeg_cuda as nj

    def status_kib(key):
        for line in open("/proc/self/status"):
            if line.startswith(key):
                return int(line.split()[1])

    def run(spec):
        dtype = getattr(torch, spec["dtype"])
        x = torch.empty(spec["shape"], dtype=torch.uint8).random_(0, 256, generator=torch.Generator().manual_seed(1))
        if dtype != torch.uint8:
            x = x.to(dtype) / 255
        if spec.get("channels_last"):
            x = x.contiguous(memory_format=torch.channels_last)
        nj.empty_cpu_cache()  # the previous spec's freed output goes back to the OS: each spec maps its own
        open("/proc/self/clear_refs", "w").write("5")  # reset the peak (VmHWM) to the current RSS
        before = status_kib("VmRSS:")
        if spec["levels"] == 1:
            out = nj.roundtrip(x, 50, subsampling=spec["subsampling"])
        else:
            out = nj.roundtrip_multi(x, list(range(10, 10 + 10 * spec["levels"], 10)), subsampling=spec["subsampling"])
        result = {"before_kib": before, "peak_kib": status_kib("VmHWM:"), "after_kib": status_kib("VmRSS:"),
                  "out_bytes": out.numel() * out.element_size(), "in_bytes": x.numel() * x.element_size()}
        samples = []
        if spec.get("samples"):
            # Block-aligned crops, round-tripped on their own in the parent (4:4:4 blocks are independent):
            # the corners, the block holding element 2^31, and random blocks.
            h, w = x.shape[-2:]
            g = torch.Generator().manual_seed(2)
            rows = [0, (h - 1) // 8 * 8, (2**31 // w) // 8 * 8] + torch.randint(0, h // 8, (12,), generator=g).mul(8).tolist()
            cols = [0, (w - 1) // 8 * 8, (2**31 % w) // 8 * 8] + torch.randint(0, w // 8, (12,), generator=g).mul(8).tolist()
            for r, c in zip(rows, cols):
                crop = x[:, :, r:r + 8, c:c + 8]
                samples.append({"in": crop.flatten().tolist(), "shape": list(crop.shape),
                                "out": out[:, :, r:r + 8, c:c + 8].flatten().tolist(),
                                "offset_last": int((x.shape[1] - 1) * h * w + (r + crop.shape[2] - 1) * w
                                                   + c + crop.shape[3] - 1)})
        result["samples"] = samples
        return result

    torch.set_num_threads(2)
    nj.roundtrip(torch.zeros(1, 3, 8, 8), 50, subsampling="4:2:0")  # warm-up: imports, op registration
    print(json.dumps([run(spec) for spec in json.loads(sys.argv[1])]))
""")


def _mem_available_bytes() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _run_child(specs: list, timeout: float = 600) -> list:
    """Run each spec in one fresh child process (one after the other); their measurements, in order."""
    proc = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(specs)], capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _workspace_bytes(shape, levels, subsampling, dtype) -> int:
    n, c, h, w = shape
    if subsampling != "4:2:0" or c != 3:
        return 0
    return levels * n * 2 * ((h + 15) // 16 * 8) * ((w + 15) // 16 * 8) * (8 if dtype == "float64" else 4)


needs_procfs = pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs") or UNDER_ASAN,
                                  reason="needs Linux /proc/self/clear_refs, and no ASan (its allocator pads memory)")

# (shape, dtype, subsampling, levels, channels_last); the allowed growth is listed in _allowed_growth.
MEMORY_CASES = [
    ((2, 3, 1024, 1536), "uint8", "4:4:4", 1, False),
    ((2, 3, 1024, 1536), "uint8", "4:2:0", 1, False),
    ((2, 3, 1024, 1536), "uint8", "4:2:0", 3, False),
    ((2, 3, 1024, 1536), "float32", "4:4:4", 1, True),
    ((1, 1, 2048, 2048), "float64", "4:4:4", 2, False),
    ((2, 3, 1024, 1536), "float16", "4:2:0", 1, False),
]


def _allowed_growth(shape, dtype, subsampling, levels, out_bytes) -> int:
    numel = int(np.prod(shape))
    allowed = out_bytes + _workspace_bytes(shape, levels, subsampling, dtype)
    if dtype == "float16":  # the kernels read float32: a float32 copy in, a float32 result, then the cast
        allowed += 4 * numel + 4 * numel * levels
    return allowed + 8 * 2**20  # allocator slack


@pytest.fixture(scope="module")
def memory_results():
    specs = [dict(shape=list(shape), dtype=dtype, subsampling=sub, levels=k, channels_last=cl)
             for shape, dtype, sub, k, cl in MEMORY_CASES]
    return _run_child(specs, timeout=300)


@needs_procfs
@pytest.mark.parametrize("case", range(len(MEMORY_CASES)),
                         ids=[f"{d}-{s}-K{k}{'-cl' if cl else ''}" for _, d, s, k, cl in MEMORY_CASES])
def test_memory_is_bounded_by_the_output(case, memory_results):
    shape, dtype, subsampling, levels, _ = MEMORY_CASES[case]
    r = memory_results[case]
    growth = (r["peak_kib"] - r["before_kib"]) * 1024
    allowed = _allowed_growth(shape, dtype, subsampling, levels, r["out_bytes"])
    assert growth <= allowed, (f"peak RSS grew by {growth / 2**20:.1f} MiB for an output of "
                               f"{r['out_bytes'] / 2**20:.1f} MiB (allowed {allowed / 2**20:.1f} MiB)")
    # And the bound is not slack: the output itself must show up in the measurement.
    assert growth >= 0.9 * r["out_bytes"]


@pytest.mark.slow
@needs_procfs
def test_image_with_more_than_2_31_elements():
    """uint8 (1, 1, 46341, 46341): 2^31 + 4633 pixels in one plane, 2.1 GB in and 2.1 GB out."""
    side = 46341
    assert side * side > 2**31
    need = 2 * side * side + 2**30
    if _mem_available_bytes() < need:
        pytest.skip(f"needs {need / 2**30:.1f} GiB of free memory, {_mem_available_bytes() / 2**30:.1f} available")
    (r,) = _run_child([dict(shape=[1, 1, side, side], dtype="uint8", subsampling="4:4:4", levels=1, samples=True)],
                      timeout=900)
    growth = (r["peak_kib"] - r["before_kib"]) * 1024
    assert r["out_bytes"] == side * side
    assert growth <= r["out_bytes"] + 64 * 2**20, f"peak RSS grew by {growth / 2**20:.0f} MiB"
    assert max(s["offset_last"] for s in r["samples"]) >= 2**31  # sampled blocks beyond the 2^31 boundary
    steps = tables.image_tables(50, "standard", 1).unsqueeze(0)
    for s in r["samples"]:
        crop = torch.tensor(s["in"], dtype=torch.uint8).reshape(s["shape"])
        out = torch.tensor(s["out"], dtype=torch.uint8).reshape(s["shape"])
        check_levels(out.unsqueeze(0), crop, steps)
