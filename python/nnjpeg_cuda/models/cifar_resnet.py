"""CIFAR ResNet-20/32/44/56 ("option A" shortcuts), the layout of Yerlan Idelbayev's pretrained weights.

The network takes RGB in [0, 1]: :class:`Normalized` applies the ImageNet mean/std inside the model,
so a JPEG layer or an attack works on plain pixels.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["cifar_resnet", "load_pretrained", "models_dir", "weights_file", "Normalized", "DEPTHS", "ENV_VAR"]

ENV_VAR = "NNJPEG_MODELS"
DEPTHS = (20, 32, 44, 56)
_FILES = {20: "resnet20-12fca82f.th", 32: "resnet32-d509ac18.th", 44: "resnet44-014dd654.th",
          56: "resnet56-4bfd9763.th"}
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


class _BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.pad = planes // 4 if (stride != 1 or in_planes != planes) else 0

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        short = x
        if self.pad:  # option A: subsample and zero-pad channels, no parameters
            short = F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))
        return F.relu(out + short)


class _ResNet(nn.Module):
    def __init__(self, n: int, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        layers, in_planes = [], 16
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            blocks = []
            for i in range(n):
                blocks.append(_BasicBlock(in_planes, planes, stride if i == 0 else 1))
                in_planes = planes
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = layers
        self.linear = nn.Linear(64, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))


class Normalized(nn.Module):
    """Wrap a classifier so it takes RGB in [0, 1]: ``net((x - mean) / std)``.

    Args:
        net: the classifier on normalised input.
        mean, std: per-channel statistics (3 floats each).

    Shape:
        - input: (N, 3, H, W) float in [0, 1]; output: whatever ``net`` returns.

    Example:
        >>> m = Normalized(nn.Flatten(), (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
        >>> m(torch.ones(1, 3, 1, 1))
        tensor([[1., 1., 1.]])
    """

    def __init__(self, net: nn.Module, mean: Sequence[float] = MEAN, std: Sequence[float] = STD):
        super().__init__()
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ValueError(f"mean and std need 3 values each (std > 0), got {mean}, {std}")
        self.net = net
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected images (N, 3, H, W), got {tuple(x.shape)}")
        if not x.is_floating_point():
            raise TypeError(f"expected float images in [0, 1], got {x.dtype} (divide uint8 by 255)")
        return self.net((x - self.mean.to(x.dtype)) / self.std.to(x.dtype))


def models_dir(arg: Union[str, os.PathLike, None] = None) -> Path:
    """The weights folder: ``arg`` or ``$NNJPEG_MODELS``; FileNotFoundError with a hint when neither exists."""
    value = os.fspath(arg) if arg is not None else os.environ.get(ENV_VAR)
    if not value:
        raise FileNotFoundError(f"no models folder: pass one or set {ENV_VAR} to the folder holding resnet20-*.th")
    path = Path(value).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"models folder {str(path)!r} does not exist")
    return path


def weights_file(depth: int, models_dir_: Union[str, os.PathLike, None] = None) -> Path:
    """Path of the pretrained weights for ``depth`` in the models folder."""
    _check_depth(depth)
    path = models_dir(models_dir_) / _FILES[depth]
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    return path


def _check_depth(depth: int) -> None:
    if isinstance(depth, bool) or not isinstance(depth, int) or depth not in DEPTHS:
        raise ValueError(f"depth must be one of {DEPTHS}, got {depth!r}")


def _load_state(path: Union[str, os.PathLike]) -> dict:
    obj = torch.load(path, map_location="cpu", weights_only=True)
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state dict (or a dict with 'state_dict'), got {type(obj).__name__}")
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    return {k[len("net."):] if k.startswith("net.") else k: v for k, v in state.items()}


def cifar_resnet(depth: int, weights: Union[str, os.PathLike, dict, None] = None, num_classes: int = 10) -> nn.Module:
    """A CIFAR ResNet with the input normalisation inside: takes RGB in [0, 1].

    Args:
        depth: 20, 32, 44 or 56 (n = (depth - 2) / 6 blocks per stage).
        weights: optional path to a ``.th``/``.pt`` file (``torch.load(weights_only=True)``: a state dict
            or ``{"state_dict": ...}``; ``module.``/``net.`` prefixes are stripped) or a state dict.
        num_classes: outputs of the last layer.

    Returns:
        :class:`Normalized` wrapping the ResNet, in eval mode if weights were given.

    Shape:
        - input: (N, 3, 32, 32) float in [0, 1]; output: (N, num_classes) logits.

    Example:
        >>> cifar_resnet(20)(torch.rand(1, 3, 32, 32)).shape
        torch.Size([1, 10])
    """
    _check_depth(depth)
    model = Normalized(_ResNet((depth - 2) // 6, num_classes))
    if weights is not None:
        state = weights if isinstance(weights, dict) else _load_state(weights)
        state = {k[len("net."):] if k.startswith("net.") else k: v for k, v in state.items()}
        model.net.load_state_dict(state)
        model.eval()
    return model


def load_pretrained(depth: int, models_dir: Union[str, os.PathLike, None] = None) -> nn.Module:
    """The pretrained CIFAR-10 ResNet of ``depth`` from the models folder (argument or ``$NNJPEG_MODELS``).

    Example:
        >>> model = load_pretrained(20, "/path/to/models")   # doctest: +SKIP
    """
    return cifar_resnet(depth, weights_file(depth, models_dir))
