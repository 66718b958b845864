"""The evaluation loop: every defence, threat model, attack and budget on the same images.

Crafting is shared where it can be: oblivious examples are crafted once per attack on the base model
and scored by every defence; an adaptive attack on the undefended model is the oblivious one; threat
variants that do not apply to a defence (a gradient mode without a codec, ``members`` without an
ensemble) are run once.

Example:
    >>> import torch
    >>> from nnjpeg_cuda.evaluation import AttackSpec, JPEGDefence, NoDefence, Threat, evaluate
    >>> m = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 3))
    >>> x, y = torch.rand(4, 3, 8, 8), torch.tensor([0, 1, 2, 0])
    >>> res = evaluate([NoDefence(m), JPEGDefence(m, 50)], m, x, y, [AttackSpec("fgsm", 8 / 255)],
    ...                [Threat("oblivious")], progress=False)
    >>> sorted({r["defence"] for r in res["records"]})
    ['jpeg-q50', 'none']
"""

from __future__ import annotations

import platform
import time
from typing import Dict, List, Optional, Sequence

import torch
from torch import Tensor, nn

from .._version import __version__
from .attacks import DEFAULT_STEPS, AttackSpec, perturbation_norms
from .threat import Threat, craft, robust_correct

__all__ = ["evaluate"]


def _jobs(defences, specs, threats):
    """(threat, spec, defence or None) in crafting order; None = the shared oblivious set."""
    jobs, seen = [], set()
    for threat in threats:
        for spec in specs:
            if threat.kind == "oblivious":
                jobs.append((Threat("oblivious"), spec, None))
                continue
            for d in defences:
                eff = threat.effective(d)
                key = (d.name, spec, eff) if d.has_codec else (d.name, spec, "none")
                if key in seen:
                    continue
                seen.add(key)
                jobs.append((eff, spec, d))
    return jobs


def _record(defence, threat: Threat, spec: Optional[AttackSpec], ok: Tensor, clean_ok: Tensor,
            x: Optional[Tensor] = None, chosen: Optional[Tensor] = None, seconds: float = 0.0) -> Dict:
    n = int(ok.numel())
    rec = {"defence": defence.name, "kind": defence.kind, "quality": defence.quality,
           "threat": threat.kind, "threat_label": threat.label if spec is not None else "clean",
           "grad": threat.grad if threat.kind == "adaptive" else None,
           "aggregate": threat.aggregate if threat.kind == "adaptive" else None,
           "eot": threat.eot if (threat.kind == "adaptive" and defence.randomized) else None,
           "attack": spec.name if spec is not None else "clean", "eps": spec.eps if spec is not None else None,
           "eps_label": spec.label if spec is not None else "clean",
           "n": n, "correct": int(ok.sum()), "accuracy": float(ok.float().mean()) if n else float("nan"),
           "clean_accuracy": float(clean_ok.float().mean()) if n else float("nan"), "seconds": round(seconds, 3)}
    if x is not None and chosen is not None:
        norms = perturbation_norms(x, chosen)
        # Size of the perturbations that fooled the defence (minimum-norm attacks: smaller is stronger).
        fooled = clean_ok & ~ok
        rec["l2_median_fooled"] = float(norms["l2"][fooled].median()) if bool(fooled.any()) else None
        rec["l2_median"] = float(norms["l2"].median()) if n else None
        rec["linf_max"] = float(norms["linf"].max()) if n else None
    return rec


def _choose(defence, candidates: List[Tensor], y: Tensor, batch_size: int, seed) -> (Tensor, Tensor):
    """Per image: robust only if every candidate is classified correctly; keep a fooling candidate."""
    ok = torch.ones_like(y, dtype=torch.bool)
    chosen = candidates[0].clone()
    for xa in candidates:
        ok_k = robust_correct(defence, [xa], y, batch_size=batch_size, seed=seed)
        newly = ok & ~ok_k
        chosen[newly] = xa[newly]
        ok &= ok_k
    return ok, chosen


def evaluate(defences: Sequence[nn.Module], base_model: nn.Module, x: Tensor, y: Tensor,
             attacks: Sequence[AttackSpec], threats: Sequence[Threat], *, slow_n: Optional[int] = None,
             batch_size: int = 128, seed: int = 0, progress: bool = True) -> Dict:
    """Clean and robust accuracy of every defence under every (threat, attack) pair.

    Args:
        defences: :class:`~nnjpeg_cuda.evaluation.defences.Defence` objects with distinct names.
        base_model: the undefended classifier the oblivious attacker uses.
        x: images, float in [0, 1] (uint8 is converted).
        y: labels.
        attacks: attack configurations.
        threats: threat models (see :class:`~nnjpeg_cuda.evaluation.threat.Threat`).
        slow_n: C&W and DeepFool run on the first ``slow_n`` images only (None: all).
        batch_size: images per attack/forward batch.
        seed: seeds attacks' random starts and randomised defences.
        progress: show a tqdm progress bar.

    Returns:
        ``{"meta": {...}, "records": [...]}``: one record per (defence, threat, attack) with ``n``,
        ``correct``, ``accuracy``, ``clean_accuracy`` (on the same images) and, for attacks, perturbation
        sizes; ``attack == "clean"`` records hold the clean accuracy on all images.

    Shape:
        - x: (N, C, H, W); y: (N,).
    """
    from tqdm.auto import tqdm

    defences = list(defences)
    names = [d.name for d in defences]
    if len(set(names)) != len(names):
        raise ValueError(f"defence names must be distinct, got {names}")
    if not defences:
        raise ValueError("need at least one defence")
    if x.dtype == torch.uint8:
        x = x.float() / 255
    if x.dim() != 4 or y.shape != (x.shape[0],):
        raise ValueError(f"x must be (N, C, H, W) and y (N,), got {tuple(x.shape)} and {tuple(y.shape)}")
    if slow_n is not None and slow_n < 1:
        raise ValueError(f"slow_n must be >= 1, got {slow_n}")
    device = next(iter(base_model.parameters()), torch.empty(0)).device
    x, y = x.to(device), y.to(device)
    base_model.eval()
    for d in defences:
        d.eval()

    records: List[Dict] = []
    clean = {}
    for d in defences:
        t0 = time.perf_counter()
        clean[d.name] = robust_correct(d, [x], y, batch_size=batch_size, seed=seed)
        records.append(_record(d, Threat("oblivious"), None, clean[d.name], clean[d.name],
                               seconds=time.perf_counter() - t0))

    def subset(spec):
        k = x.shape[0] if (spec.name in ("fgsm", "pgd") or slow_n is None) else min(slow_n, x.shape[0])
        return x[:k], y[:k], k

    oblivious_sets: Dict[AttackSpec, List[Tensor]] = {}
    jobs = _jobs(defences, list(attacks), list(threats))
    bar = tqdm(jobs, desc="evaluate", unit="attack", disable=not progress)
    for threat, spec, d in bar:
        xs, ys, k = subset(spec)
        bar.set_postfix_str(f"{threat.label} {spec.label} {d.name if d is not None else 'base model'} n={k}")
        if d is None or not d.has_codec:
            # Oblivious (and adaptive against no defence): one set, crafted on the base model.
            t0 = time.perf_counter()
            if spec not in oblivious_sets:
                oblivious_sets[spec] = craft(None, base_model, xs, ys, spec, Threat("oblivious"),
                                             batch_size=batch_size, seed=seed)
            t_craft = time.perf_counter() - t0
            for dd in (defences if d is None else [d]):
                t1 = time.perf_counter()
                ok, chosen = _choose(dd, oblivious_sets[spec], ys, batch_size, seed)
                records.append(_record(dd, threat, spec, ok, clean[dd.name][:k], xs, chosen,
                                       t_craft + time.perf_counter() - t1))
            continue
        t0 = time.perf_counter()
        candidates = craft(d, base_model, xs, ys, spec, threat, batch_size=batch_size, seed=seed)
        ok, chosen = _choose(d, candidates, ys, batch_size, seed)
        records.append(_record(d, threat, spec, ok, clean[d.name][:k], xs, chosen, time.perf_counter() - t0))

    meta = {"n": int(x.shape[0]), "slow_n": int(min(slow_n, x.shape[0])) if slow_n else int(x.shape[0]),
            "seed": seed, "attacks": [{"name": s.name, "eps": s.eps, "steps": s.steps or DEFAULT_STEPS[s.name],
                                       "options": dict(s.options)}
                                      for s in attacks],
            "threats": [t.label + (f" eot={t.eot}" if t.kind == "adaptive" else "") for t in threats],
            "defences": [{"name": d.name, "kind": d.kind, "quality": d.quality, "repr": repr(d).splitlines()[0]}
                         for d in defences],
            "device": str(device), "torch": torch.__version__, "nnjpeg_cuda": __version__,
            "threads": torch.get_num_threads(), "platform": platform.platform()}
    return {"meta": meta, "records": records}
