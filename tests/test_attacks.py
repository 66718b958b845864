"""The attack adapter (ART) and the threat models, checked against closed-form oracles.

Oracles: torch autograd for FGSM's signed-gradient step; the exact distance to the nearest decision
boundary of a linear classifier for the minimum-norm attacks (DeepFool must land just past it, and no
successful C&W perturbation can be shorter); the expectation of a random linear model for EOT; and,
on real CIFAR-10 data, an oblivious attack as the baseline that BPDA must beat.
"""

from __future__ import annotations

import os

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from _evaluation_toys import accuracy, boundary_distance, linear_toy

pytest.importorskip("art", reason="the attacks need adversarial-robustness-toolbox (pip install '.[eval]')")

from nnjpeg_cuda import JPEG  # noqa: E402
from nnjpeg_cuda.evaluation import attacks as A  # noqa: E402
from nnjpeg_cuda.evaluation import threat as T  # noqa: E402
from nnjpeg_cuda.evaluation.defences import JPEGDefence, NoDefence, RandomJPEGDefence  # noqa: E402


@pytest.fixture(scope="module")
def toy():
    model, x, y = linear_toy(n=64)
    assert accuracy(model, x, y) >= 0.95  # the oracle setting: a classifier that works on clean images
    return model, x, y


def test_fgsm_is_the_signed_gradient_step(toy):
    model, x, y = toy
    eps = 4 / 255
    x_adv = A.run_attack(model, x, y, "fgsm", eps=eps)
    xr = x.clone().requires_grad_(True)
    F.cross_entropy(model(xr), y, reduction="sum").backward()
    expected = (x + eps * xr.grad.sign()).clamp(0, 1)
    torch.testing.assert_close(x_adv, expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("eps", [2 / 255, 8 / 255])
def test_pgd_stays_in_the_ball_and_beats_fgsm(toy, eps):
    model, x, y = toy
    x_pgd = A.run_attack(model, x, y, "pgd", eps=eps, steps=10, seed=0)
    x_fgsm = A.run_attack(model, x, y, "fgsm", eps=eps)
    assert float((x_pgd - x).abs().max()) <= eps + 1e-6
    assert float(x_pgd.min()) >= 0 and float(x_pgd.max()) <= 1
    with torch.no_grad():
        loss_pgd = F.cross_entropy(model(x_pgd), y)
        loss_fgsm = F.cross_entropy(model(x_fgsm), y)
    assert float(loss_pgd) >= float(loss_fgsm) - 1e-4
    assert accuracy(model, x_pgd, y) <= accuracy(model, x_fgsm, y)


def test_pgd_random_start_follows_the_seed(toy):
    model, x, y = toy
    a = A.run_attack(model, x, y, "pgd", eps=8 / 255, steps=2, seed=1)
    b = A.run_attack(model, x, y, "pgd", eps=8 / 255, steps=2, seed=1)
    c = A.run_attack(model, x, y, "pgd", eps=8 / 255, steps=2, seed=2)
    torch.testing.assert_close(a, b, atol=0, rtol=0)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("name,eps", [("fgsm", 8 / 255), ("pgd", 8 / 255), ("cw", None), ("deepfool", None)])
def test_every_attack_lowers_the_accuracy_of_an_undefended_model(toy, name, eps):
    model, x, y = toy
    x_adv = A.run_attack(model, x, y, name, eps=eps, seed=0)
    assert x_adv.shape == x.shape and x_adv.dtype == torch.float32
    assert accuracy(model, x_adv, y) <= 0.2 < accuracy(model, x, y)


def test_deepfool_lands_just_past_the_nearest_boundary(toy):
    model, x, y = toy
    x_adv = A.run_attack(model, x, y, "deepfool")
    dist = boundary_distance(model, x)
    l2 = A.perturbation_norms(x, x_adv)["l2"].double()
    ratio = l2 / dist
    # Exact for a linear model: one step onto the boundary, then the 2 % overshoot of the DeepFool paper.
    assert float(ratio.min()) >= 1.0 and float(ratio.max()) <= 1.03, ratio
    assert accuracy(model, x_adv, model(x).argmax(1)) == 0.0


def test_cw_never_beats_the_exact_minimum_and_comes_close(toy):
    model, x, y = toy
    x_adv = A.run_attack(model, x, y, "cw")  # the adapter's defaults
    with torch.no_grad():
        fooled = model(x_adv).argmax(1) != model(x).argmax(1)
    assert float(fooled.float().mean()) >= 0.9
    ratio = A.perturbation_norms(x, x_adv)["l2"].double()[fooled] / boundary_distance(model, x)[fooled]
    assert float(ratio.min()) >= 1 - 1e-3  # no perturbation can be shorter than the exact minimum
    assert float(ratio.median()) <= 1.5


def test_attack_spec_and_input_errors(toy):
    model, x, y = toy
    with pytest.raises(ValueError, match="unknown attack"):
        A.AttackSpec("bim", 0.1)
    with pytest.raises(ValueError, match="needs eps"):
        A.AttackSpec("pgd")
    with pytest.raises(ValueError, match="0..255 scale"):
        A.AttackSpec("fgsm", 8)
    with pytest.raises(ValueError, match="takes no eps"):
        A.AttackSpec("cw", 0.1)
    with pytest.raises(ValueError, match="positive int"):
        A.AttackSpec("pgd", 0.1, steps=0)
    with pytest.raises(TypeError, match="nn.Module"):
        A.run_attack(lambda t: t, x, y, "fgsm", eps=0.1)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        A.run_attack(model, x * 255, y, "fgsm", eps=0.1)
    with pytest.raises(ValueError, match="float images"):
        A.run_attack(model, (x * 255).to(torch.uint8), y, "fgsm", eps=0.1)
    with pytest.raises(ValueError, match="integer labels"):
        A.run_attack(model, x, y.float(), "fgsm", eps=0.1)
    assert A.AttackSpec("pgd", 8 / 255, options={"num_random_init": 2}) == \
        A.AttackSpec("pgd", 8 / 255, options={"num_random_init": 2})  # hashable and comparable


# --- threat models -----------------------------------------------------------------------------------------


def test_threat_validation_and_labels():
    assert T.Threat("oblivious").label == "oblivious"
    assert T.Threat("adaptive", "smooth", "members").label == "adaptive[smooth,members]"
    for bad in (dict(kind="white"), dict(grad="exact"), dict(aggregate="mean"), dict(eot=0)):
        with pytest.raises(ValueError):
            T.Threat(**{"kind": "adaptive", **bad})


def test_adaptive_surrogate_uses_the_requested_gradient(toy):
    model, x, _ = toy
    d = JPEGDefence(model, quality=30)
    for grad in T.GRADS:
        (m,) = T.attack_models(d, model, T.Threat("adaptive", grad))
        assert isinstance(m[0], JPEG) and m[0].grad == grad and m[1] is model
    # BPDA oracle: the gradient through the surrogate is the model's gradient at the compressed image.
    (m,) = T.attack_models(d, model, T.Threat("adaptive", "bpda"))
    xr = x[:4].clone().requires_grad_(True)
    m(xr).sum().backward()
    xc = JPEG(30)(x[:4]).requires_grad_(True)
    model(xc).sum().backward()
    torch.testing.assert_close(xr.grad, xc.grad)
    assert T.attack_models(d, model, T.Threat("oblivious")) == [model]
    assert T.attack_models(NoDefence(model), model, T.Threat("adaptive", "ste")) == [model]


def test_randomised_defence_is_attacked_through_eot(toy):
    model, _, _ = toy
    d = RandomJPEGDefence(model, (20, 80))
    (m,) = T.attack_models(d, model, T.Threat("adaptive", eot=5))
    assert isinstance(m, T.EOT) and m.samples == 5
    assert T.Threat("adaptive", "ste", "members", 5).effective(d) == T.Threat("adaptive", "ste", "logits", 5)
    assert T.Threat("adaptive", "ste", "members", 5).effective(JPEGDefence(model, 50)).eot == 1


def test_eot_estimates_the_expectation():
    torch.manual_seed(0)
    lin = nn.Linear(12, 3)

    class Noisy(nn.Module):
        def forward(self, x):
            return lin(x.flatten(1) + torch.randn_like(x.flatten(1)))  # E[logits] = lin(x)

    x = torch.rand(4, 3, 2, 2)
    with torch.no_grad():
        est = T.EOT(Noisy(), samples=4000)(x)
        exact = lin(x.flatten(1))
    sd = lin.weight.norm(dim=1) / 4000 ** 0.5  # std of the mean of 4000 draws
    assert bool(((est - exact).abs() <= 5 * sd).all())
    with pytest.raises(ValueError):
        T.EOT(Noisy(), samples=0)


def test_robust_correct_needs_every_candidate(toy):
    model, x, y = toy
    wrong = A.run_attack(model, x, y, "fgsm", eps=16 / 255)
    ok_clean = T.robust_correct(model, [x], y)
    both = T.robust_correct(model, [x, wrong], y)
    assert torch.equal(both, ok_clean & T.robust_correct(model, [wrong], y))
    with pytest.raises(ValueError):
        T.robust_correct(model, [], y)


# --- real data: an adaptive attack must beat the oblivious one on the same defence ---------------------------


def _real_data():
    if not os.environ.get("NNJPEG_DATA") or not os.environ.get("NNJPEG_MODELS"):
        pytest.skip("set NNJPEG_DATA and NNJPEG_MODELS (CIFAR-10 and the pretrained ResNets) for this test")
    from nnjpeg_cuda.datasets import load_cifar10
    from nnjpeg_cuda.models import load_pretrained

    x, y = load_cifar10("test")
    idx = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(0))[:64]
    return load_pretrained(20).eval(), x[idx].float() / 255, y[idx]


@pytest.mark.data
@pytest.mark.slow
def test_bpda_through_jpeg_beats_the_oblivious_attack():
    model, x, y = _real_data()
    defence = JPEGDefence(model, quality=50).eval()
    spec = A.AttackSpec("pgd", 8 / 255, steps=10)
    oblivious = T.craft(defence, model, x, y, spec, T.Threat("oblivious"))
    adaptive = T.craft(defence, model, x, y, spec, T.Threat("adaptive", "bpda"))
    acc_clean = float(T.robust_correct(defence, [x], y).float().mean())
    acc_base = accuracy(model, oblivious[0], y)
    acc_obl = float(T.robust_correct(defence, oblivious, y).float().mean())
    acc_bpda = float(T.robust_correct(defence, adaptive, y).float().mean())
    assert acc_base <= 0.05  # the attack works on the undefended model
    assert acc_obl >= 0.25  # the paper's effect: JPEG removes much of an oblivious perturbation
    assert acc_bpda <= acc_obl - 0.2, (acc_clean, acc_obl, acc_bpda)
