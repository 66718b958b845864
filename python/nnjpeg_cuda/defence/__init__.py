"""The defence: noisy fine-tuning per compression level, and ensemble inference by vote.

Example:
    >>> import torch
    >>> from nnjpeg_cuda.defence import Ensemble
    >>> from nnjpeg_cuda.models import cifar_resnet
    >>> ens = Ensemble([cifar_resnet(20), cifar_resnet(20)], [90, 30], table="standard").eval()
    >>> ens.predict(torch.rand(2, 3, 32, 32)).shape
    torch.Size([2])
"""

from .checkpoint import CheckpointError, load_file, save_file
from .ensemble import VOTES, Ensemble
from .finetune import FinetuneConfig, finetune, load_member, save_member

__all__ = ["Ensemble", "VOTES", "finetune", "FinetuneConfig", "load_member", "save_member", "CheckpointError",
           "save_file", "load_file"]
