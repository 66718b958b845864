"""Attacks: a thin adapter over the Adversarial Robustness Toolbox (ART).

Why ART. Three maintained PyTorch-capable attack libraries were checked against the pinned torch
(2.13.0, CPU build), reading each wheel's ``Requires-Dist`` (``pip download --no-deps``) and running
``pip install --dry-run``:

- **torchattacks 3.5.1** requires ``torchvision>=0.8.2``; every torchvision that exists for torch 2.13
  pins another torch, so it cannot be installed beside ours. Rejected.
- **foolbox 3.3.4** installs cleanly (numpy, scipy, eagerpy, GitPython, requests; no torch pin), but its
  last release and its eagerpy backend (last release 2021) are no longer developed.
- **adversarial-robustness-toolbox 1.20.1** (LF AI & Data, released regularly) needs only numpy, scipy,
  scikit-learn, six, setuptools and tqdm; torch and torchvision appear only in its optional
  ``pytorch`` extra, which we do not install. Its ``PyTorchClassifier`` never imports torchvision.
  **Chosen.**

ART works on NumPy arrays: each call converts the batch to NumPy and back, and the classifier wrapper
moves it to the model's device for every forward/backward. For 32x32 images this copy is small next
to a ResNet's forward and backward pass, and the same code runs on a GPU (``device_type="gpu"``).

Attacks (names used everywhere in this package and on the command line):

======== ===================================================== ===============================
name     ART class                                             budget
======== ===================================================== ===============================
fgsm     ``FastGradientMethod`` (L-inf)                        ``eps`` (L-inf)
pgd      ``ProjectedGradientDescentPyTorch`` (L-inf, 1 random   ``eps`` (L-inf), step
         start, step ``2.5 * eps / steps`` as in Madry et al.)  ``2.5 eps / steps``
cw       ``CarliniL2Method`` (confidence 0)                     none: minimum-norm L2
deepfool ``DeepFool`` (overshoot 0.02 as in the DeepFool paper) none: minimum-norm L2
======== ===================================================== ===============================

``cw`` and ``deepfool`` look for the smallest L2 perturbation that changes the label, so they take no
``eps``; report their accuracy together with the perturbation size (:func:`perturbation_norms`). ART's
DeepFool moves away from the model's *predicted* class (it ignores ``y``); the other three use ``y``.

Cost on a CPU. ART's C&W computes one backward pass per class present in the batch for each of its
two class gradients, plus line-search forward passes, and its DeepFool one backward pass per class and
iteration: for a CIFAR ResNet-20 both cost about 1.4 s per image on one core, against about 0.08 s for
PGD-10. Run them on fewer images (``slow_n`` in :func:`nnjpeg_cuda.evaluation.evaluate`, ``--slow-n`` on
the command line).

No attack is written by hand. The pieces around them (EOT, ensembles attacked per member) are model
wrappers in :mod:`nnjpeg_cuda.evaluation.threat`.

Example:
    >>> import torch
    >>> from nnjpeg_cuda.evaluation import attacks
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 10))
    >>> x, y = torch.rand(4, 3, 8, 8), torch.tensor([0, 1, 2, 3])
    >>> x_adv = attacks.run_attack(model, x, y, "pgd", eps=8 / 255, steps=5, seed=0)
    >>> bool((x_adv - x).abs().max() <= 8 / 255 + 1e-6)
    True
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Dict, Mapping, Optional, Tuple

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["ATTACKS", "EPS_ATTACKS", "AttackSpec", "run_attack", "perturbation_norms", "art_available",
           "DEFAULT_STEPS"]

#: Attack names understood by :func:`run_attack`.
ATTACKS = ("fgsm", "pgd", "cw", "deepfool")
#: Attacks bounded by an L-inf ``eps``; the others are minimum-norm L2 attacks.
EPS_ATTACKS = ("fgsm", "pgd")
#: Iterations when ``steps`` is not given: PGD steps, C&W optimiser steps per binary-search step,
#: DeepFool's maximum number of linearisations.
DEFAULT_STEPS: Dict[str, int] = {"fgsm": 1, "pgd": 10, "cw": 10, "deepfool": 20}


def art_available() -> bool:
    """Whether the Adversarial Robustness Toolbox can be imported (``pip install "nnjpeg_cuda[eval]"``)."""
    try:
        import art.attacks.evasion  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class AttackSpec:
    """One attack configuration.

    Args:
        name: one of :data:`ATTACKS`.
        eps: L-inf budget on the [0, 1] pixel scale for ``fgsm``/``pgd`` (e.g. ``8 / 255``); must be None
            for ``cw``/``deepfool``.
        steps: iterations (see :data:`DEFAULT_STEPS`); None for the default.
        options: extra keyword arguments passed to the ART attack's constructor, as a dict (e.g.
            ``{"binary_search_steps": 5}`` for C&W, ``{"num_random_init": 3}`` for PGD restarts); stored as
            a sorted tuple of pairs so that the spec stays hashable.

    Example:
        >>> AttackSpec("pgd", 8 / 255).label
        'pgd@8/255'
    """

    name: str
    eps: Optional[float] = None
    steps: Optional[int] = None
    options: Tuple[Tuple[str, object], ...] = ()

    def __post_init__(self):
        opts = self.options.items() if isinstance(self.options, Mapping) else self.options
        try:
            object.__setattr__(self, "options", tuple(sorted((str(k), v) for k, v in opts)))
        except (TypeError, ValueError):
            raise TypeError(f"options must be a dict of ART keyword arguments, got {self.options!r}") from None
        if self.name not in ATTACKS:
            raise ValueError(f"unknown attack {self.name!r}; choose from {', '.join(ATTACKS)}")
        if self.name in EPS_ATTACKS:
            if self.eps is None or isinstance(self.eps, bool) or not float(self.eps) > 0:
                raise ValueError(f"attack {self.name!r} needs eps > 0 (L-inf, [0, 1] scale), got {self.eps!r}")
            if float(self.eps) > 1:
                raise ValueError(f"eps={self.eps} is on the 0..255 scale; pass it on the [0, 1] scale "
                                 f"(e.g. {self.eps}/255)")
        elif self.eps is not None:
            raise ValueError(f"attack {self.name!r} is a minimum-norm L2 attack and takes no eps")
        if self.steps is not None and (isinstance(self.steps, bool) or int(self.steps) != self.steps
                                       or self.steps < 1):
            raise ValueError(f"steps must be a positive int, got {self.steps!r}")

    @property
    def label(self) -> str:
        """Short name, e.g. ``pgd@8/255`` or ``cw``."""
        if self.eps is None:
            return self.name
        return f"{self.name}@{_eps_label(self.eps)}"


def _eps_label(eps: float) -> str:
    k = eps * 255
    return f"{round(k)}/255" if abs(k - round(k)) < 1e-6 else f"{eps:g}"


@contextlib.contextmanager
def _seeded(seed: Optional[int]):
    """Seed NumPy's and torch's global generators (ART draws random starts from NumPy), then restore."""
    if seed is None:
        yield
        return
    np_state, torch_state = np.random.get_state(), torch.random.get_rng_state()
    np.random.seed(seed)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        np.random.set_state(np_state)
        torch.random.set_rng_state(torch_state)


def _check_inputs(model, x, y) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module returning logits, got {type(model).__name__}")
    if not isinstance(x, Tensor) or not isinstance(y, Tensor):
        raise TypeError("x and y must be torch tensors")
    if x.dim() != 4 or not x.is_floating_point():
        raise ValueError(f"x must be float images (N, C, H, W) in [0, 1], got {x.dtype} {tuple(x.shape)}")
    if y.dim() != 1 or y.shape[0] != x.shape[0] or y.is_floating_point():
        raise ValueError(f"y must be N integer labels, got {y.dtype} {tuple(y.shape)} for {x.shape[0]} images")
    if x.numel() and (float(x.min()) < 0 or float(x.max()) > 1):
        raise ValueError("x must lie in [0, 1] (convert uint8 images with x.float() / 255)")


def _classifier(model: nn.Module, x: Tensor, nb_classes: int):
    from art.estimators.classification import PyTorchClassifier

    return PyTorchClassifier(model=model, loss=nn.CrossEntropyLoss(), input_shape=tuple(x.shape[1:]),
                             nb_classes=nb_classes, clip_values=(0.0, 1.0), channels_first=True,
                             device_type="gpu" if x.is_cuda else "cpu")


def _build(spec: AttackSpec, classifier, batch_size: int):
    from art.attacks.evasion import CarliniL2Method, DeepFool, FastGradientMethod, ProjectedGradientDescentPyTorch

    steps = spec.steps or DEFAULT_STEPS[spec.name]
    opts = dict(spec.options)
    if spec.name == "fgsm":
        return FastGradientMethod(classifier, norm=np.inf, eps=float(spec.eps), batch_size=batch_size, **opts)
    if spec.name == "pgd":
        kw = dict(norm=np.inf, eps=float(spec.eps), eps_step=2.5 * float(spec.eps) / steps, max_iter=steps,
                  num_random_init=1, batch_size=batch_size, verbose=False)
        kw.update(opts)
        return ProjectedGradientDescentPyTorch(classifier, **kw)
    if spec.name == "cw":
        kw = dict(confidence=0.0, learning_rate=0.1, binary_search_steps=5, max_iter=steps, initial_const=0.1,
                  max_halving=2, max_doubling=2, batch_size=batch_size, verbose=False)
        kw.update(opts)
        return CarliniL2Method(classifier, **kw)
    kw = dict(max_iter=steps, epsilon=0.02, nb_grads=10, batch_size=batch_size, verbose=False)
    kw.update(opts)
    return DeepFool(classifier, **kw)


def run_attack(model: nn.Module, x: Tensor, y: Tensor, name: str, eps: Optional[float] = None, *,
               steps: Optional[int] = None, nb_classes: Optional[int] = None, batch_size: int = 128,
               seed: Optional[int] = 0, **options) -> Tensor:
    """Craft untargeted adversarial examples against ``model`` with an ART attack.

    The model is attacked as given: wrap a defence in its differentiable surrogate first (see
    :mod:`nnjpeg_cuda.evaluation.threat`) to attack through it. The model is put in eval mode.

    Args:
        model: ``nn.Module`` mapping images in [0, 1] to logits (N, classes); on ``x``'s device.
        x: clean images, float in [0, 1].
        y: true labels (the attack moves away from them).
        name: ``"fgsm"``, ``"pgd"``, ``"cw"`` or ``"deepfool"``.
        eps: L-inf budget on the [0, 1] scale for fgsm/pgd; None for cw/deepfool.
        steps: iterations; default :data:`DEFAULT_STEPS`.
        nb_classes: number of classes; default: inferred from one forward pass.
        batch_size: images per ART batch.
        seed: seeds NumPy's and torch's generators for the attack's random start (restored afterwards);
            None leaves them alone.
        **options: passed to the ART attack's constructor (overrides the defaults above).

    Returns:
        Adversarial images: float32 tensor of ``x``'s shape on ``x``'s device, in [0, 1].

    Shape:
        - x: (N, C, H, W); y: (N,); output: (N, C, H, W).

    Example:
        >>> import torch
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 10))
        >>> x_adv = run_attack(model, torch.rand(2, 3, 8, 8), torch.tensor([1, 2]), "fgsm", eps=4 / 255)
        >>> x_adv.shape
        torch.Size([2, 3, 8, 8])
    """
    spec = name if isinstance(name, AttackSpec) else AttackSpec(name, eps, steps, dict(options))
    _check_inputs(model, x, y)
    if not art_available():
        raise ImportError("attacks need the Adversarial Robustness Toolbox: pip install 'nnjpeg_cuda[eval]' "
                          "(or pip install adversarial-robustness-toolbox)")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if x.shape[0] == 0:
        return x.detach().float().clone()
    was_training = model.training
    model.eval()
    try:
        if nb_classes is None:
            with torch.no_grad():
                nb_classes = int(model(x[:1].float()).shape[-1])
        classifier = _classifier(model, x, nb_classes)
        attack = _build(spec, classifier, batch_size)
        x_np = x.detach().float().cpu().numpy()
        y_np = y.detach().cpu().numpy().astype(np.int64)
        with _seeded(seed):
            x_adv = attack.generate(x=x_np, y=y_np)
    finally:
        model.train(was_training)
    return torch.from_numpy(np.clip(x_adv, 0.0, 1.0).astype(np.float32)).to(x.device)


def perturbation_norms(x: Tensor, x_adv: Tensor) -> Dict[str, Tensor]:
    """Per-image L2 and L-inf sizes of ``x_adv - x`` (pixel scale [0, 1]).

    Args:
        x: clean images (N, C, H, W).
        x_adv: adversarial images, same shape.

    Returns:
        ``{"l2": (N,), "linf": (N,)}`` float tensors.

    Example:
        >>> x = torch.zeros(1, 3, 2, 2)
        >>> perturbation_norms(x, x + 0.5)["l2"]
        tensor([1.7321])
    """
    if x.shape != x_adv.shape:
        raise ValueError(f"x and x_adv must have the same shape, got {tuple(x.shape)} and {tuple(x_adv.shape)}")
    d = (x_adv.float() - x.float()).flatten(1)
    return {"l2": d.norm(dim=1), "linf": d.abs().amax(dim=1) if d.shape[1] else d.new_zeros(d.shape[0])}
