"""Robustness evaluation: attacks (via the Adversarial Robustness Toolbox), threat models, defences to
compare, the evaluation loop and its reports.

Needs the ``eval`` extra (``pip install "nnjpeg_cuda[eval]"``: adversarial-robustness-toolbox, tqdm,
matplotlib). See ``docs/REPRODUCTION.md`` for the results on CIFAR-10 and the command that produces them.

Example:
    >>> import torch
    >>> from nnjpeg_cuda.evaluation import AttackSpec, JPEGDefence, NoDefence, Threat, evaluate
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 3))
    >>> x, y = torch.rand(4, 3, 8, 8), torch.tensor([0, 1, 2, 0])
    >>> res = evaluate([NoDefence(model), JPEGDefence(model, 50)], model, x, y,
    ...                [AttackSpec("pgd", 8 / 255, steps=3)], [Threat("oblivious"), Threat("adaptive")],
    ...                progress=False)
    >>> len(res["records"])   # 2 clean + 2 oblivious + 2 adaptive
    6
"""

from .attacks import ATTACKS, EPS_ATTACKS, AttackSpec, art_available, perturbation_norms, run_attack
from .defences import (Defence, EnsembleDefence, JPEGDefence, NoDefence, RandomJPEGDefence, feature_distillation,
                       finetuned, nn_table, shield)
from .report import markdown, write_report
from .run import evaluate
from .threat import AGGREGATES, EOT, GRADS, THREATS, Threat, attack_models, craft, predict, robust_correct

__all__ = ["ATTACKS", "EPS_ATTACKS", "AttackSpec", "art_available", "perturbation_norms", "run_attack", "Defence",
           "EnsembleDefence", "JPEGDefence", "NoDefence", "RandomJPEGDefence", "feature_distillation", "finetuned",
           "nn_table", "shield", "markdown", "write_report", "evaluate", "AGGREGATES", "EOT", "GRADS", "THREATS",
           "Threat", "attack_models", "craft", "predict", "robust_correct"]
