"""Classifiers: CIFAR-10 ResNet-20/32/44/56 (He et al. 2016) taking RGB images in [0, 1].

Example:
    >>> import torch
    >>> from nnjpeg_cuda.models import cifar_resnet
    >>> cifar_resnet(20)(torch.rand(2, 3, 32, 32)).shape
    torch.Size([2, 10])
"""

from .cifar_resnet import DEPTHS, ENV_VAR, Normalized, cifar_resnet, load_pretrained, models_dir, weights_file

__all__ = ["cifar_resnet", "load_pretrained", "models_dir", "weights_file", "Normalized", "DEPTHS", "ENV_VAR"]
