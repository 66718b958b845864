"""Ensemble inference: each member sees the input round-tripped at its own level; the members vote."""

from __future__ import annotations

import os
from typing import Callable, Optional, Sequence, Union

import torch
from torch import Tensor, nn

from .. import codec, tables
from .checkpoint import CheckpointError, load_file, save_file

__all__ = ["Ensemble", "VOTES"]

VOTES = ("majority", "soft")


def _arch_factory(arch) -> Callable[[], nn.Module]:
    if callable(arch) and not isinstance(arch, str):
        return arch
    if isinstance(arch, str) and arch.startswith("resnet") and arch[6:].isdigit():
        from ..models import cifar_resnet
        depth = int(arch[6:])
        return lambda: cifar_resnet(depth)
    raise ValueError(f"arch must be 'resnet20' / 'resnet32' / 'resnet44' / 'resnet56' or a callable returning a "
                     f"fresh member module, got {arch!r}")


class Ensemble(nn.Module):
    """K classifiers, member k behind a JPEG-style round trip at quality ``qualities[k]``, combined by vote.

    The input is read once: one ``nnjpeg::roundtrip`` op call produces all K levels (the forward DCT is
    shared), which is what :func:`nnjpeg_cuda.roundtrip_multi` runs; the steps are scaled once here so
    that ``forward`` has no data-dependent Python and compiles with ``torch.compile(fullgraph=True)``.

    Voting:
        - ``"majority"``: each member votes for its argmax class. ``forward`` returns
          ``votes + 0.5 * mean_probability`` per class: its argmax is the class with the most votes, and
          among classes tied on votes the one with the highest mean softmax probability over the members
          (a remaining exact tie goes to the lowest class index, as ``torch.argmax`` does).
        - ``"soft"``: ``forward`` returns the mean softmax probability over the members.

    Args:
        models: K member classifiers taking RGB in [0, 1], (N, 3, H, W) -> (N, classes).
        qualities: K IJG qualities (1..100), one per member.
        table: base table preset name (default ``"nn"``) or a (2, 8, 8) tensor, shared by the members.
        subsampling, color: as in :func:`nnjpeg_cuda.roundtrip`.
        vote: ``"majority"`` or ``"soft"``.
        grad: gradient of the round trip (``"bpda"``, ``"ste"``, ``"smooth"``): the ensemble is
            differentiable with respect to its input (for attacks); gradients flow through every member.
        arch: optional name stored by :meth:`save` (e.g. ``"resnet20"``) so :meth:`load` can rebuild members.

    Shape:
        - input: (N, 3, H, W) float in [0, 1] (uint8 is divided by 255).
        - output: (N, classes) scores; ``member_logits``: (K, N, classes).

    Example:
        >>> import torch
        >>> from nnjpeg_cuda.models import cifar_resnet
        >>> ens = Ensemble([cifar_resnet(20) for _ in range(3)], [90, 50, 10], table="standard").eval()
        >>> ens(torch.rand(2, 3, 32, 32)).shape
        torch.Size([2, 10])
        >>> pred, votes = ens.predict(torch.rand(2, 3, 32, 32), return_votes=True)
        >>> votes.shape
        torch.Size([3, 2])
    """

    def __init__(self, models: Sequence[nn.Module], qualities: Sequence[int], table: tables.TableLike = "nn",
                 subsampling: str = "4:4:4", vote: str = "majority", grad: str = "bpda", color: str = "ycbcr",
                 arch: Optional[str] = None):
        super().__init__()
        models = list(models)
        qualities = [int(q) if not isinstance(q, bool) and float(q).is_integer() else q for q in qualities]
        if not models or len(models) != len(qualities):
            raise ValueError(f"need one quality per member and at least one member, got {len(models)} models and "
                             f"{len(qualities)} qualities")
        if not all(isinstance(m, nn.Module) for m in models):
            raise TypeError("models must be nn.Module instances")
        if not all(isinstance(q, int) and 1 <= q <= 100 for q in qualities):
            raise ValueError(f"qualities must be ints in 1..100, got {qualities}")
        if vote not in VOTES:
            raise ValueError(f"vote must be one of {VOTES}, got {vote!r}")
        codec.ops.check_options(subsampling, color, grad, 3)
        base = tables.get_base(table)
        if base.dim() != 3:
            raise ValueError("the ensemble takes one (2, 8, 8) base table, not per-image tables")
        self.members = nn.ModuleList(models)
        self.qualities = qualities
        self.table_name = table if isinstance(table, str) else "custom"
        self.subsampling, self.color, self.grad, self.vote, self.arch = subsampling, color, grad, vote, arch
        self.register_buffer("base_table", base.clone())
        self.register_buffer("steps", torch.stack([tables.scale(base, q) for q in qualities]), persistent=False)

    def _inputs(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected images (N, 3, H, W), got {getattr(x, 'shape', type(x).__name__)}")
        if not x.is_floating_point():
            x = x.float() / 255
        return x

    def compressed(self, x: Tensor) -> Tensor:
        """The K round-tripped copies of ``x``: (K, N, 3, H, W), one op call."""
        x = self._inputs(x)
        xk = codec._kernel_dtype(x)
        steps = self.steps.to(xk.device).unsqueeze(1).expand(len(self.members), xk.shape[0], 2, 8, 8)
        return codec.ops.forward_levels(xk, steps, self.subsampling, self.color, self.grad, True).to(x.dtype)

    def member_logits(self, x: Tensor) -> Tensor:
        """Each member's logits on its own compressed copy: (K, N, classes)."""
        xs = self.compressed(x)
        return torch.stack([m(xs[k]) for k, m in enumerate(self.members)])

    @staticmethod
    def combine(logits: Tensor, vote: str = "majority") -> Tensor:
        """Vote scores (N, classes) from member logits (K, N, classes); see the class docstring for the rule."""
        probs = torch.softmax(logits.float(), dim=-1).mean(0)
        if vote == "soft":
            return probs
        if vote != "majority":
            raise ValueError(f"vote must be one of {VOTES}, got {vote!r}")
        votes = nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).sum(0).to(probs.dtype)
        return votes + 0.5 * probs

    def forward(self, x: Tensor) -> Tensor:
        return self.combine(self.member_logits(x), self.vote)

    def predict(self, x: Tensor, return_votes: bool = False):
        """Predicted classes (N,); with ``return_votes`` also each member's vote (K, N)."""
        logits = self.member_logits(x)
        pred = self.combine(logits, self.vote).argmax(-1)
        return (pred, logits.argmax(-1)) if return_votes else pred

    def extra_repr(self) -> str:
        return (f"qualities={self.qualities}, table={self.table_name!r}, vote={self.vote!r}, "
                f"subsampling={self.subsampling!r}, grad={self.grad!r}")

    def save(self, path: Union[str, os.PathLike]) -> None:
        """Write the members' weights and the settings to one safe, checksummed file (see ``checkpoint``)."""
        save_file(path, {f"member{k}": m.state_dict() for k, m in enumerate(self.members)},
                  kind="nnjpeg_cuda.Ensemble", qualities=list(self.qualities), base_table=self.base_table,
                  table_name=self.table_name, subsampling=self.subsampling, color=self.color, grad=self.grad,
                  vote=self.vote, arch=self.arch)

    @classmethod
    def load(cls, path: Union[str, os.PathLike], arch=None, **overrides) -> "Ensemble":
        """Rebuild an ensemble saved by :meth:`save`.

        Args:
            path: the file.
            arch: ``"resnet20"``..``"resnet56"`` or a callable returning a fresh member; default: the name
                stored at save time.
            **overrides: settings to change (``vote``, ``grad``, ``subsampling``).

        Returns:
            The ensemble in eval mode, on the CPU.
        """
        obj = load_file(path)
        meta = obj["meta"]
        if meta.get("kind") != "nnjpeg_cuda.Ensemble":
            raise CheckpointError(f"{path} does not hold an Ensemble (kind {meta.get('kind')!r})")
        factory = _arch_factory(arch if arch is not None else meta.get("arch"))
        members = []
        for k in range(len(meta["qualities"])):
            m = factory()
            m.load_state_dict(obj["tensors"][f"member{k}"])
            members.append(m)
        kw = dict(subsampling=meta["subsampling"], color=meta["color"], grad=meta["grad"], vote=meta["vote"],
                  arch=meta.get("arch") if isinstance(arch, (str, type(None))) else None)
        kw.update(overrides)
        table = meta["table_name"] if meta["table_name"] in tables.presets() and torch.equal(
            tables.get_base(meta["table_name"]), meta["base_table"]) else meta["base_table"]
        return cls(members, meta["qualities"], table=table, **kw).eval()
