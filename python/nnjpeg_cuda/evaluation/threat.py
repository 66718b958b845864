"""Threat models: which network the attacker differentiates, and how a defence is scored against it.

- **oblivious** (gray-box, the paper's setting): the attacker knows the classifier but not the defence.
  Adversarial examples are crafted on the undefended base model, then classified by the defended
  pipeline. One set of examples serves every defence.
- **adaptive** (white-box): the attacker differentiates through the whole defence
  (Athalye, Carlini & Wagner 2018). The round trip's gradient is chosen by ``grad``:

  * ``bpda``: the round trip is the identity on the backward pass (BPDA);
  * ``ste``: straight-through rounding through the exact linear parts (colour, DCT, table);
  * ``smooth``: rounding replaced by ``round(t) + (t - round(t))^3`` in the forward and backward pass.

  An ensemble is attacked as a whole (``aggregate="logits"``: the summed logits of all members, one
  network) or per member (``aggregate="members"``: one attack on each member's own pipeline; an image
  counts as robust only if the ensemble classifies every one of those K adversarial images correctly).
  A defence with randomness (a random quality) is attacked through expectation over transformation:
  :class:`EOT` averages the logits over ``eot`` draws, so the attack follows the mean gradient.

Whatever the attack differentiates, the *score* always comes from the defence's own forward pass
(majority vote, true rounding).

Example:
    >>> import torch
    >>> from nnjpeg_cuda.evaluation.threat import Threat
    >>> Threat("adaptive", grad="ste").label
    'adaptive[ste]'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

import torch
from torch import Tensor, nn

from . import attacks as _attacks

__all__ = ["THREATS", "GRADS", "AGGREGATES", "Threat", "EOT", "attack_models", "craft", "robust_correct",
           "predict"]

THREATS = ("oblivious", "adaptive")
GRADS = ("bpda", "ste", "smooth")
AGGREGATES = ("logits", "members")


@dataclass(frozen=True)
class Threat:
    """A threat model.

    Args:
        kind: ``"oblivious"`` or ``"adaptive"``.
        grad: the round trip's gradient for adaptive attacks: ``"bpda"``, ``"ste"`` or ``"smooth"``.
        aggregate: how an ensemble is attacked: ``"logits"`` (summed logits) or ``"members"`` (each member).
        eot: draws averaged per gradient for a randomised defence (expectation over transformation).

    Example:
        >>> Threat("adaptive", "bpda", "members").label
        'adaptive[bpda,members]'
    """

    kind: str = "oblivious"
    grad: str = "bpda"
    aggregate: str = "logits"
    eot: int = 8

    def __post_init__(self):
        if self.kind not in THREATS:
            raise ValueError(f"unknown threat model {self.kind!r}; choose from {', '.join(THREATS)}")
        if self.grad not in GRADS:
            raise ValueError(f"unknown gradient mode {self.grad!r}; choose from {', '.join(GRADS)}")
        if self.aggregate not in AGGREGATES:
            raise ValueError(f"unknown ensemble aggregate {self.aggregate!r}; choose from {', '.join(AGGREGATES)}")
        if isinstance(self.eot, bool) or int(self.eot) != self.eot or self.eot < 1:
            raise ValueError(f"eot must be a positive int (draws per gradient), got {self.eot!r}")

    @property
    def label(self) -> str:
        """``oblivious``, or ``adaptive[grad]`` with ``,members`` / ``,eot=K`` when they apply."""
        if self.kind == "oblivious":
            return "oblivious"
        extra = [self.grad] + (["members"] if self.aggregate == "members" else [])
        return f"adaptive[{','.join(extra)}]"

    def effective(self, defence) -> "Threat":
        """The same threat with the options that do not apply to ``defence`` reset (for de-duplication)."""
        if self.kind == "oblivious":
            return Threat("oblivious")
        grad = self.grad if getattr(defence, "has_codec", True) else "bpda"
        aggregate = self.aggregate if getattr(defence, "is_ensemble", False) else "logits"
        eot = self.eot if getattr(defence, "randomized", False) else 1
        return Threat("adaptive", grad, aggregate, eot)


class EOT(nn.Module):
    """Expectation over transformation: the mean logits of ``samples`` forward passes of a random model.

    Args:
        model: a model whose forward pass is random (e.g. a random JPEG quality per call).
        samples: draws per call; the batch is tiled ``samples`` times, so memory grows accordingly.

    Shape:
        - input: (N, C, H, W); output: (N, classes).

    Example:
        >>> import torch
        >>> eot = EOT(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3)), samples=4)
        >>> eot(torch.rand(2, 3, 2, 2)).shape
        torch.Size([2, 3])
    """

    def __init__(self, model: nn.Module, samples: int = 8):
        super().__init__()
        if isinstance(samples, bool) or int(samples) != samples or samples < 1:
            raise ValueError(f"samples must be a positive int, got {samples!r}")
        self.model, self.samples = model, int(samples)

    def forward(self, x: Tensor) -> Tensor:
        n = x.shape[0]
        logits = self.model(x.repeat(self.samples, *([1] * (x.dim() - 1))))
        return logits.reshape(self.samples, n, -1).mean(0)


def attack_models(defence, base_model: nn.Module, threat: Threat) -> List[nn.Module]:
    """The differentiable network(s) the attacker uses against ``defence`` under ``threat``.

    Args:
        defence: a :class:`nnjpeg_cuda.evaluation.defences.Defence`.
        base_model: the undefended classifier (oblivious threat).
        threat: the threat model.

    Returns:
        A list of logit models; one adversarial set is crafted per entry (several only for
        ``aggregate="members"``).

    Example:
        >>> import torch
        >>> from nnjpeg_cuda.evaluation.defences import NoDefence
        >>> m = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
        >>> len(attack_models(NoDefence(m), m, Threat("oblivious")))
        1
    """
    if threat.kind == "oblivious":
        return [base_model]
    t = threat.effective(defence)
    if t.aggregate == "members":
        models = defence.member_surrogates(t.grad)
    else:
        models = [defence.surrogate(t.grad)]
    if getattr(defence, "randomized", False):
        models = [EOT(m, t.eot) for m in models]
    return models


@torch.no_grad()
def predict(model: nn.Module, x: Tensor, batch_size: int = 256) -> Tensor:
    """Labels ``argmax(model(x))`` in batches, eval mode, no gradients.

    Args:
        model: a classifier or :class:`~nnjpeg_cuda.evaluation.defences.Defence` (scores (N, classes)).
        x: images (N, C, H, W) in [0, 1].
        batch_size: images per forward pass.

    Returns:
        int64 labels (N,) on ``x``'s device.

    Example:
        >>> import torch
        >>> predict(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3)), torch.rand(5, 3, 2, 2)).shape
        torch.Size([5])
    """
    was_training = model.training
    model.eval()
    try:
        out = [model(x[i:i + batch_size]).argmax(-1) for i in range(0, x.shape[0], batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long, device=x.device)


def craft(defence, base_model: nn.Module, x: Tensor, y: Tensor, spec: "_attacks.AttackSpec", threat: Threat,
          *, batch_size: int = 128, seed: Optional[int] = 0) -> List[Tensor]:
    """Adversarial candidates for ``defence`` under ``threat`` (one per attacked model).

    Args:
        defence: the defence (ignored by the oblivious threat except for its device).
        base_model: the undefended classifier.
        x, y: clean images in [0, 1] and labels.
        spec: the attack (:class:`~nnjpeg_cuda.evaluation.attacks.AttackSpec`).
        threat: the threat model.
        batch_size, seed: as in :func:`~nnjpeg_cuda.evaluation.attacks.run_attack`.

    Returns:
        A list of adversarial batches, each shaped like ``x``.

    Example:
        >>> import torch
        >>> from nnjpeg_cuda.evaluation.attacks import AttackSpec
        >>> from nnjpeg_cuda.evaluation.defences import JPEGDefence
        >>> m = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 3))
        >>> d = JPEGDefence(m, quality=50)
        >>> adv = craft(d, m, torch.rand(2, 3, 8, 8), torch.tensor([0, 1]), AttackSpec("fgsm", 8 / 255),
        ...             Threat("adaptive"))
        >>> len(adv), adv[0].shape
        (1, torch.Size([2, 3, 8, 8]))
    """
    return [_attacks.run_attack(m, x, y, spec, batch_size=batch_size, seed=seed)
            for m in attack_models(defence, base_model, threat)]


def robust_correct(defence, candidates: List[Tensor], y: Tensor, *, batch_size: int = 256,
                   seed: Optional[int] = 0) -> Tensor:
    """Whether the defence classifies every adversarial candidate of each image correctly.

    Args:
        defence: the defended pipeline (its forward pass is the prediction).
        candidates: adversarial batches from :func:`craft`.
        y: true labels (N,).
        batch_size: images per forward pass.
        seed: seeds torch's generator for a randomised defence's draws (restored afterwards).

    Returns:
        bool tensor (N,).

    Example:
        >>> import torch
        >>> m = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
        >>> robust_correct(m, [torch.rand(4, 3, 2, 2)], torch.zeros(4, dtype=torch.long)).shape
        torch.Size([4])
    """
    if not candidates:
        raise ValueError("candidates must hold at least one adversarial batch")
    ok = torch.ones(y.shape[0], dtype=torch.bool, device=y.device)
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        for xa in candidates:
            ok &= predict(defence, xa, batch_size).to(y.device) == y
    return ok
