"""The evaluation loop, the defences, the report files and the ``nnjpeg-cuda evaluate`` command.

Oracles: accuracies recomputed directly from the model's own predictions on the crafted images; the
defences' outputs recomputed from the codec and the model; the report files parsed back (JSON, PNG).
"""

from __future__ import annotations

import json

import pytest
import torch

from _evaluation_toys import accuracy, linear_toy

pytest.importorskip("art", reason="the attacks need adversarial-robustness-toolbox (pip install '.[eval]')")

from nnjpeg_cuda import JPEG, roundtrip  # noqa: E402
from nnjpeg_cuda.cli import main  # noqa: E402
from nnjpeg_cuda.cli import evaluate as cli_eval  # noqa: E402
from nnjpeg_cuda.evaluation import (AttackSpec, JPEGDefence, NoDefence, RandomJPEGDefence, Threat,  # noqa: E402
                                    evaluate, report, run_attack)
from nnjpeg_cuda.evaluation import defences as D  # noqa: E402


@pytest.fixture(scope="module")
def toy():
    return linear_toy(n=48, size=16)


def _rec(res, defence, threat_label, attack, eps=None):
    (r,) = [r for r in res["records"] if r["defence"] == defence and r["threat_label"] == threat_label
            and r["attack"] == attack and r["eps"] == eps]
    return r


def test_defences_compute_codec_then_model(toy):
    model, x, _ = toy
    torch.testing.assert_close(NoDefence(model)(x), model(x))
    torch.testing.assert_close(JPEGDefence(model, 40)(x), model(roundtrip(x, 40)))
    fd = D.feature_distillation(model)
    torch.testing.assert_close(fd(x), model(roundtrip(x, D.FD_QUALITY, table="fd")))
    assert (fd.kind, JPEGDefence(model, 40).name) == ("fd", "jpeg-q40")
    torch.manual_seed(0)
    r = RandomJPEGDefence(model, (30, 30))(x)  # a one-value range is deterministic
    torch.testing.assert_close(r, model(roundtrip(x, 30)))
    with pytest.raises(ValueError, match="quality"):
        JPEGDefence(model, 0)
    with pytest.raises(TypeError, match="nn.Module"):
        JPEGDefence("resnet", 50)


def test_ensemble_defences_and_their_surrogates(toy):
    from nnjpeg_cuda.defence import Ensemble

    model, x, _ = toy
    d = D.shield(model)
    assert (d.kind, d.qualities, d.is_ensemble) == ("shield", [20, 40, 60, 80], True)
    reference = Ensemble([model] * 4, [20, 40, 60, 80], table="standard", vote="majority")
    torch.testing.assert_close(d(x), reference(x))
    member_logits = reference.member_logits(x)
    for grad in ("bpda", "ste", "smooth"):
        s = d.surrogate(grad)
        assert s.ensemble.grad == grad
        if grad != "smooth":  # smooth rounding changes the forward pass too
            torch.testing.assert_close(s(x), member_logits.sum(0))
    members = d.member_surrogates("ste")
    assert len(members) == 4 and all(m[0].grad == "ste" for m in members)
    for k, m in enumerate(members):
        torch.testing.assert_close(m(x), member_logits[k])
    with pytest.raises(TypeError, match="Ensemble"):
        D.EnsembleDefence(model)


def test_per_member_attack_counts_an_image_robust_only_if_every_member_attack_fails(toy):
    model, x, y = toy
    x, y = x[:24], y[:24]
    d = D.shield(model, qualities=(30, 90))
    spec = AttackSpec("fgsm", 16 / 255)
    res = evaluate([d], model, x, y, [spec], [Threat("adaptive", "bpda", "members")], progress=False)
    cands = [run_attack(torch.nn.Sequential(JPEG(q, grad="bpda"), model), x, y, "fgsm", eps=16 / 255)
             for q in (30, 90)]
    with torch.no_grad():
        ok = (d(cands[0]).argmax(1) == y) & (d(cands[1]).argmax(1) == y)
    assert _rec(res, "shield", "adaptive[bpda,members]", "fgsm", 16 / 255)["correct"] == int(ok.sum())


def test_evaluate_records_match_direct_predictions(toy):
    model, x, y = toy
    defences = [NoDefence(model), JPEGDefence(model, 50), JPEGDefence(model, 90)]
    specs = [AttackSpec("fgsm", 8 / 255), AttackSpec("deepfool")]
    res = evaluate(defences, model, x, y, specs, [Threat("oblivious"), Threat("adaptive", "bpda")], slow_n=20,
                   progress=False)
    assert res["meta"]["n"] == 48 and res["meta"]["slow_n"] == 20 and res["meta"]["seed"] == 0
    # 3 clean + 3 defences x 2 attacks oblivious + 3 x 2 adaptive (the undefended one reusing the oblivious set)
    assert len(res["records"]) == 3 + 6 + 6
    assert _rec(res, "none", "clean", "clean")["accuracy"] == pytest.approx(accuracy(model, x, y))
    # Oblivious: crafted on the base model, scored by the defence.
    x_obl = run_attack(model, x, y, "fgsm", eps=8 / 255)
    r = _rec(res, "jpeg-q50", "oblivious", "fgsm", 8 / 255)
    assert r["n"] == 48 and r["accuracy"] == pytest.approx(accuracy(model, JPEG(50)(x_obl), y))
    assert r["linf_max"] <= 8 / 255 + 1e-6
    # Adaptive BPDA: crafted through the round trip.
    x_ad = run_attack(torch.nn.Sequential(JPEG(50, grad="bpda"), model), x, y, "fgsm", eps=8 / 255)
    r = _rec(res, "jpeg-q50", "adaptive[bpda]", "fgsm", 8 / 255)
    assert r["accuracy"] == pytest.approx(accuracy(model, JPEG(50)(x_ad), y))
    # Against no defence the adaptive attack is the oblivious one.
    assert _rec(res, "none", "adaptive[bpda]", "fgsm", 8 / 255)["correct"] == \
        _rec(res, "none", "oblivious", "fgsm", 8 / 255)["correct"]
    # Minimum-norm attacks run on the first slow_n images, with their clean accuracy on the same subset.
    r = _rec(res, "jpeg-q90", "oblivious", "deepfool")
    assert r["n"] == 20 and r["clean_accuracy"] == pytest.approx(accuracy(JPEGDefence(model, 90), x[:20], y[:20]))
    assert _rec(res, "none", "oblivious", "deepfool")["accuracy"] <= 0.1


def test_evaluate_deduplicates_variants_that_do_not_apply(toy):
    model, x, y = toy
    threats = [Threat("adaptive", g, a) for g in ("bpda", "ste") for a in ("logits", "members")]
    res = evaluate([NoDefence(model), JPEGDefence(model, 50)], model, x[:8], y[:8], [AttackSpec("fgsm", 4 / 255)],
                   threats, progress=False)
    labels = sorted((r["defence"], r["threat_label"]) for r in res["records"] if r["attack"] != "clean")
    assert labels == [("jpeg-q50", "adaptive[bpda]"), ("jpeg-q50", "adaptive[ste]"), ("none", "adaptive[bpda]")]


def test_evaluate_input_errors(toy):
    model, x, y = toy
    with pytest.raises(ValueError, match="distinct"):
        evaluate([NoDefence(model), NoDefence(model)], model, x, y, [], [Threat()], progress=False)
    with pytest.raises(ValueError, match=r"\(N,\)"):
        evaluate([NoDefence(model)], model, x, y[:3], [], [Threat()], progress=False)


def test_report_files(toy, tmp_path):
    model, x, y = toy
    defences = [NoDefence(model)] + [JPEGDefence(model, q) for q in (30, 60, 90)]
    specs = [AttackSpec("fgsm", e) for e in (2 / 255, 8 / 255)] + [AttackSpec("pgd", 8 / 255, steps=3)]
    res = evaluate(defences, model, x[:16], y[:16], specs, [Threat("oblivious"), Threat("adaptive")],
                   progress=False)
    files = report.write_report(res, tmp_path / "out", command="nnjpeg-cuda evaluate --n 16")
    assert set(files) == {"json", "markdown", "accuracy_vs_eps", "quality_levels"}
    back = json.loads(files["json"].read_text())
    assert back["records"] == json.loads(json.dumps(res["records"]))
    text = files["markdown"].read_text()
    assert "16 test images (seed 0)" in text and "nnjpeg-cuda evaluate --n 16" in text
    assert "## Oblivious (gray-box)" in text and "## Adaptive (white-box), adaptive[bpda]" in text
    row = next(line for line in text.splitlines() if line.startswith("| jpeg-q30 |"))
    clean = _rec(res, "jpeg-q30", "clean", "clean")["accuracy"]
    assert row.split("|")[2].strip() == f"{100 * clean:.1f}"
    import matplotlib.image as mpimg

    for key in ("accuracy_vs_eps", "quality_levels"):
        img = mpimg.imread(files[key])
        assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    # Re-rendering from the JSON alone gives the same report.
    files["markdown"].unlink()
    files["quality_levels"].unlink()
    assert report.main([str(tmp_path / "out")]) == 0
    assert files["markdown"].read_text() == text and files["quality_levels"].is_file()


# --- the command line ------------------------------------------------------------------------------------------


@pytest.fixture
def fake_inputs(monkeypatch):
    """Stand in for the CIFAR-10 files and the ResNet: 40 uint8 16x16 images and the linear toy model."""
    model, x, y = linear_toy(n=40, size=16, seed=1)
    monkeypatch.setattr(cli_eval, "_load_model", lambda args, device: model)
    monkeypatch.setattr(cli_eval, "_load_data", lambda args: ((x * 255).round().to(torch.uint8), y))
    return model


@pytest.mark.slow
def test_cli_writes_the_report(fake_inputs, tmp_path, capsys):
    out = tmp_path / "eval"
    code = main(["evaluate", "--attacks", "fgsm,pgd,deepfool", "--eps", "2/255,8/255", "--steps", "pgd=3",
                 "--threat", "oblivious,adaptive", "--defences", "none,jpeg,fd,random", "--qualities", "30,70",
                 "--eot", "2", "--n", "24", "--slow-n", "8", "--seed", "3", "--out", str(out), "--quiet"])
    assert code == 0
    names = {p.name for p in out.iterdir()}
    assert {"report.md", "results.json", "accuracy_vs_eps.png", "quality_levels.png"} <= names
    res = json.loads((out / "results.json").read_text())
    assert res["meta"]["n"] == 24 and res["meta"]["seed"] == 3 and res["meta"]["slow_n"] == 8
    defences = {r["defence"] for r in res["records"]}
    assert defences == {"none", "jpeg-q30", "jpeg-q70", "fd", "random-jpeg-q20-80"}
    eot = {r["eot"] for r in res["records"] if r["defence"] == "random-jpeg-q20-80" and r["threat"] == "adaptive"}
    assert eot == {2}
    assert "24 test images (seed 3); C&W and DeepFool on the first 8" in (out / "report.md").read_text()


@pytest.mark.parametrize("argv,message", [
    (["--eps", "8"], "pixel scale"),
    (["--attacks", "fgsm,bim"], "not one of"),
    (["--defences", "ensemble"], "needs --ensemble"),
    (["--ensemble", "no/such/file.ckpt"], "does not exist"),
    (["--n", "0"], "--n must be"),
    (["--n", "100000"], "more than"),
    (["--random-range", "80,20"], "LOW <= HIGH"),
    (["--steps", "pgd=0"], "bad --steps"),
])
def test_cli_rejects_bad_arguments(fake_inputs, tmp_path, capsys, argv, message):
    base = ["evaluate", "--out", str(tmp_path / "never"), "--quiet", "--attacks", "fgsm", "--n", "10"]
    try:
        code = main(base + argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "never").exists()
