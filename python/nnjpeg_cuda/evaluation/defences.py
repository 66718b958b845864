"""The defences compared in the robustness table, each an ``nn.Module`` over the same classifier(s).

Every defence maps images in [0, 1] to class scores (N, classes) whose argmax is its prediction, and can
hand an attacker a differentiable *surrogate* of itself with a chosen round-trip gradient (``bpda``,
``ste``, ``smooth``; see :mod:`nnjpeg_cuda.evaluation.threat`).

========================= =================================================================
factory / class           defence
========================= =================================================================
:class:`NoDefence`        the classifier alone
:class:`JPEGDefence`      one round trip, then the classifier: standard JPEG at a quality, the
                          Feature Distillation table (:func:`feature_distillation`), or our
                          NN-favoured table on one model (:func:`nn_table`)
:class:`RandomJPEGDefence` a random quality per image and call (randomised: attacked with EOT)
:class:`EnsembleDefence`  an :class:`nnjpeg_cuda.defence.Ensemble` (one member per quality, vote):
                          :func:`shield` (the same base model for every member, standard table,
                          20/40/60/80, majority vote) or our fine-tuned ensemble (:func:`finetuned`)
========================= =================================================================

Example:
    >>> import torch
    >>> from nnjpeg_cuda.evaluation import defences
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 10))
    >>> d = defences.JPEGDefence(model, quality=50)
    >>> d(torch.rand(2, 3, 8, 8)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from .. import tables as _tables
from ..transforms import JPEG, RandomJPEG

__all__ = ["Defence", "NoDefence", "JPEGDefence", "RandomJPEGDefence", "EnsembleDefence", "feature_distillation",
           "nn_table", "shield", "finetuned", "SHIELD_QUALITIES", "FD_QUALITY"]

#: SHIELD's qualities (Das et al., KDD 2018).
SHIELD_QUALITIES = (20, 40, 60, 80)
#: Quality at which a base table is used exactly as given (IJG scale factor 100 %).
FD_QUALITY = 50


def _check_model(model) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")


def _check_quality(quality) -> int:
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise ValueError(f"quality must be an int in 1..100, got {quality!r}")
    return quality


class Defence(nn.Module):
    """Base class: a defended classifier.

    Attributes:
        name: label in reports (e.g. ``"jpeg-q50"``).
        kind: family for plots: ``none``, ``jpeg``, ``fd``, ``nn``, ``random-jpeg``, ``shield``, ``ensemble``.
        quality: the quality level for single-level defences, else None.
        randomized: the forward pass draws random numbers (attacked with EOT).
        has_codec: the pipeline contains a round trip (so ``grad`` matters).
        is_ensemble: several members (so ``aggregate="members"`` differs from summed logits).
    """

    kind = "none"
    randomized = False
    has_codec = True
    is_ensemble = False

    def __init__(self, name: str, quality: Optional[int] = None):
        super().__init__()
        self.name, self.quality = name, quality

    def surrogate(self, grad: str = "bpda") -> nn.Module:
        """A differentiable network (images -> logits) for adaptive attacks, with the given round-trip gradient."""
        raise NotImplementedError

    def member_surrogates(self, grad: str = "bpda") -> List[nn.Module]:
        """One surrogate per member (for ensembles); a single-model defence returns ``[surrogate(grad)]``."""
        return [self.surrogate(grad)]

    def extra_repr(self) -> str:
        return f"name={self.name!r}"


class NoDefence(Defence):
    """The undefended classifier.

    Args:
        model: classifier taking images in [0, 1].
        name: label in reports.

    Shape:
        - input: (N, C, H, W) in [0, 1]; output: (N, classes) logits.

    Example:
        >>> import torch
        >>> m = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
        >>> NoDefence(m)(torch.rand(2, 3, 2, 2)).shape
        torch.Size([2, 3])
    """

    kind = "none"
    has_codec = False

    def __init__(self, model: nn.Module, name: str = "none"):
        _check_model(model)
        super().__init__(name)
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    def surrogate(self, grad: str = "bpda") -> nn.Module:
        return self.model


class JPEGDefence(Defence):
    """One JPEG-style round trip, then the classifier.

    Args:
        model: classifier taking images in [0, 1].
        quality: IJG quality in 1..100 (scales the base table).
        table: base table: ``"standard"``, ``"nn"``, ``"fd"`` or a (2, 8, 8) tensor.
        subsampling, color: as in :func:`nnjpeg_cuda.roundtrip`.
        name: label in reports (default ``"{kind}-q{quality}"``).
        kind: family for plots (default from the table name).

    Shape:
        - input: (N, 3, H, W) in [0, 1]; output: (N, classes) logits.

    Example:
        >>> import torch
        >>> m = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 3))
        >>> JPEGDefence(m, 75).name
        'jpeg-q75'
    """

    def __init__(self, model: nn.Module, quality: int, table: _tables.TableLike = "standard",
                 subsampling: str = "4:4:4", color: str = "ycbcr", name: Optional[str] = None,
                 kind: Optional[str] = None):
        _check_model(model)
        quality = _check_quality(quality)
        kind = kind or {"standard": "jpeg", "nn": "nn", "fd": "fd"}.get(table if isinstance(table, str) else "",
                                                                         "custom")
        super().__init__(name or f"{kind}-q{quality}", quality)
        self.kind = kind
        self.model, self.table, self.subsampling, self.color = model, table, subsampling, color
        self.codec = JPEG(quality, table, subsampling, color, grad="bpda")

    def forward(self, x: Tensor) -> Tensor:
        return self.model(self.codec(x))

    def surrogate(self, grad: str = "bpda") -> nn.Module:
        return nn.Sequential(JPEG(self.quality, self.table, self.subsampling, self.color, grad=grad), self.model)


class RandomJPEGDefence(Defence):
    """A round trip at a quality drawn uniformly per image and per call, then the classifier.

    Args:
        model: classifier taking images in [0, 1].
        quality_range: (low, high) inclusive.
        table, subsampling, color: as in :class:`JPEGDefence`.
        name: label in reports.

    Shape:
        - input: (N, 3, H, W) in [0, 1]; output: (N, classes) logits.

    Example:
        >>> import torch
        >>> m = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 3))
        >>> RandomJPEGDefence(m, (20, 80)).randomized
        True
    """

    kind = "random-jpeg"
    randomized = True

    def __init__(self, model: nn.Module, quality_range: Tuple[int, int] = (20, 80),
                 table: _tables.TableLike = "standard", subsampling: str = "4:4:4", color: str = "ycbcr",
                 name: Optional[str] = None):
        _check_model(model)
        low, high = (_check_quality(q) for q in quality_range)
        super().__init__(name or f"random-jpeg-q{low}-{high}")
        self.model, self.range, self.table, self.subsampling, self.color = model, (low, high), table, subsampling, color
        self.codec = RandomJPEG((low, high), table, subsampling, color, grad="bpda")

    def forward(self, x: Tensor) -> Tensor:
        return self.model(self.codec(x))

    def surrogate(self, grad: str = "bpda") -> nn.Module:
        return nn.Sequential(RandomJPEG(self.range, self.table, self.subsampling, self.color, grad=grad), self.model)


class _SummedLogits(nn.Module):
    """The ensemble as one network for the attacker: the sum of its members' logits."""

    def __init__(self, ensemble: nn.Module):
        super().__init__()
        self.ensemble = ensemble

    def forward(self, x: Tensor) -> Tensor:
        return self.ensemble.member_logits(x).sum(0)


class EnsembleDefence(Defence):
    """An :class:`nnjpeg_cuda.defence.Ensemble`: member k sees the input compressed at quality k; they vote.

    The scores are the ensemble's own ``forward`` (vote counts plus a tie-break for a majority vote), so
    the prediction is exactly the ensemble's.

    Args:
        ensemble: the :class:`~nnjpeg_cuda.defence.Ensemble` (e.g. from ``Ensemble.load``).
        name: label in reports.
        kind: family for plots (``"ensemble"``, ``"shield"``).

    Shape:
        - input: (N, 3, H, W) in [0, 1]; output: (N, classes) scores.

    Example:
        >>> import torch
        >>> from nnjpeg_cuda.defence import Ensemble
        >>> m = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 3))
        >>> d = EnsembleDefence(Ensemble([m, m], [30, 70], table="standard"))
        >>> d(torch.rand(2, 3, 8, 8)).shape
        torch.Size([2, 3])
    """

    is_ensemble = True
    kind = "ensemble"

    def __init__(self, ensemble: nn.Module, name: str = "ensemble", kind: str = "ensemble"):
        from ..defence import Ensemble

        if not isinstance(ensemble, Ensemble):
            raise TypeError(f"ensemble must be an nnjpeg_cuda.defence.Ensemble, got {type(ensemble).__name__}")
        super().__init__(name)
        self.kind = kind
        self.ensemble = ensemble

    @property
    def qualities(self) -> List[int]:
        return list(self.ensemble.qualities)

    def _table(self):
        e = self.ensemble
        return e.table_name if e.table_name != "custom" else e.base_table

    def _with_grad(self, grad: str) -> nn.Module:
        from ..defence import Ensemble

        e = self.ensemble
        return Ensemble(list(e.members), e.qualities, table=e.base_table.clone(), subsampling=e.subsampling,
                        vote=e.vote, grad=grad, color=e.color).to(e.base_table.device).eval()

    def forward(self, x: Tensor) -> Tensor:
        return self.ensemble(x)

    def surrogate(self, grad: str = "bpda") -> nn.Module:
        """Summed logits of all members, each behind its own round trip with gradient ``grad``."""
        return _SummedLogits(self._with_grad(grad))

    def member_surrogates(self, grad: str = "bpda") -> List[nn.Module]:
        """Member k's own pipeline: round trip at quality k (gradient ``grad``), then model k."""
        e = self.ensemble
        return [nn.Sequential(JPEG(q, e.base_table.clone(), e.subsampling, e.color, grad=grad), m)
                for m, q in zip(e.members, e.qualities)]

    def extra_repr(self) -> str:
        return f"name={self.name!r}, kind={self.kind!r}"


def feature_distillation(model: nn.Module, name: str = "fd") -> JPEGDefence:
    """Feature Distillation's two-band table (preset ``"fd"``) used as given (quality 50 = scale 100 %).

    Example:
        >>> import torch
        >>> m = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 3))
        >>> feature_distillation(m).quality
        50
    """
    return JPEGDefence(model, FD_QUALITY, table="fd", name=name, kind="fd")


def nn_table(model: nn.Module, quality: int = 50, name: Optional[str] = None) -> JPEGDefence:
    """Our NN-favoured table (preset ``"nn"``) at ``quality``, one model.

    Example:
        >>> import torch
        >>> m = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 3))
        >>> nn_table(m, 50).name
        'nn-q50'
    """
    return JPEGDefence(model, quality, table="nn", name=name, kind="nn")


def shield(model: nn.Module, qualities: Sequence[int] = SHIELD_QUALITIES, name: str = "shield") -> EnsembleDefence:
    """SHIELD-like: the same (not fine-tuned) model behind standard JPEG at 20/40/60/80, majority vote.

    Example:
        >>> import torch
        >>> m = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 3))
        >>> shield(m).qualities
        [20, 40, 60, 80]
    """
    from ..defence import Ensemble

    _check_model(model)
    ens = Ensemble([model] * len(qualities), list(qualities), table="standard", vote="majority")
    return EnsembleDefence(ens, name=name, kind="shield")


def finetuned(ensemble: nn.Module, name: str = "ours-ensemble") -> EnsembleDefence:
    """Our fine-tuned ensemble (an :class:`nnjpeg_cuda.defence.Ensemble`, e.g. from ``Ensemble.load``).

    Example:
        >>> from nnjpeg_cuda.defence import Ensemble
        >>> d = finetuned(Ensemble.load("runs/defence_r20/ensemble.ckpt"))    # doctest: +SKIP
    """
    return EnsembleDefence(ensemble, name=name, kind="ensemble")
