"""The registered torch ops: opcheck (schema, fake tensors, autograd registration) and torch.compile."""

import warnings

import pytest
import torch

import nnjpeg_cuda as nj


def _steps(n, qualities=(50, 20)):
    return nj.tables.level_tables(list(qualities), "standard", n).contiguous()


@pytest.mark.parametrize("subsampling", ["4:4:4", "4:2:0"])
@pytest.mark.parametrize("grad", ["bpda", "ste", "smooth"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.uint8])
def test_opcheck_roundtrip(subsampling, grad, dtype):
    x = torch.rand(2, 3, 13, 21)
    x = (x * 255).round().to(torch.uint8) if dtype == torch.uint8 else x.to(dtype)
    torch.library.opcheck(torch.ops.nnjpeg.roundtrip.default, (x, _steps(2), subsampling, "ycbcr", grad, True))


def test_opcheck_roundtrip_channels_last_and_gray():
    x = torch.rand(2, 3, 16, 24).contiguous(memory_format=torch.channels_last)
    torch.library.opcheck(torch.ops.nnjpeg.roundtrip.default, (x, _steps(2), "4:4:4", "ycbcr", "ste", True))
    g = torch.rand(2, 1, 9, 10, dtype=torch.float64)
    torch.library.opcheck(torch.ops.nnjpeg.roundtrip.default, (g, _steps(2), "4:4:4", "ycbcr", "smooth", True))


@pytest.mark.parametrize("subsampling,color,channels",
                         [("4:4:4", "ycbcr", 3), ("4:2:0", "ycbcr", 3), ("4:4:4", "rgb", 3), ("4:4:4", "ycbcr", 1)])
def test_opcheck_roundtrip_backward(subsampling, color, channels):
    x = torch.rand(2, channels, 13, 21)
    grad_out = torch.randn(2, 2, channels, 13, 21)
    torch.library.opcheck(torch.ops.nnjpeg.roundtrip_backward.default,
                          (grad_out, x, _steps(2), subsampling, color, "ste"))


@pytest.mark.parametrize("subsampling", ["4:4:4", "4:2:0"])
@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_compile_fullgraph_backward_through_the_op(subsampling, backend):
    layer = nj.JPEG(quality=40, grad="ste", subsampling=subsampling)

    def loss_fn(x):
        return (layer(x) ** 2).sum()

    compiled = torch.compile(loss_fn, fullgraph=True, backend=backend)
    x1 = torch.rand(2, 3, 16, 16, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_(True)
    compiled(x1).backward()
    loss_fn(x2).backward()
    torch.testing.assert_close(x1.grad, x2.grad)


def test_compile_fullgraph_defended_model_matches_eager():
    torch.manual_seed(0)
    model = torch.nn.Sequential(nj.JPEG(quality=40), torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(),
                                torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 10))
    compiled = torch.compile(model, fullgraph=True, backend="inductor")
    x = torch.rand(4, 3, 32, 32)
    torch.testing.assert_close(compiled(x), model(x))


def test_meta_tensors_propagate_shapes_without_running():
    x = torch.empty(5, 3, 17, 33, device="meta")
    out = torch.ops.nnjpeg.roundtrip(x, torch.empty(3, 5, 2, 8, 8, device="meta"), "4:2:0", "ycbcr", "bpda", True)
    assert out.shape == (3, 5, 3, 17, 33) and out.device.type == "meta"


def test_cuda_tensors_on_a_build_without_cuda_kernels_warn(monkeypatch):
    from nnjpeg_cuda import _kernel, ops

    monkeypatch.setattr(_kernel, "cuda_built", lambda: False)
    with pytest.warns(RuntimeWarning, match="without its CUDA kernels"):
        ops.warn_if_reference_serves(torch.device("cuda"))
    monkeypatch.setattr(_kernel, "cuda_built", lambda: True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ops.warn_if_reference_serves(torch.device("cuda"))
        ops.warn_if_reference_serves(torch.device("cpu"))
