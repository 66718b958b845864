"""Defence: checkpoint files, noisy fine-tuning (loss, resume, CLI) and the voting ensemble."""

import csv
import io
import hashlib
import os
import pickle

import numpy as np
import pytest
import torch
from torch import nn

import nnjpeg_cuda
from nnjpeg_cuda.cli import main as cli_main
from nnjpeg_cuda.defence import CheckpointError, Ensemble, finetune, load_file, load_member, save_file
from nnjpeg_cuda.defence.checkpoint import MAGIC
from nnjpeg_cuda.models import cifar_resnet


# ---------------------------------------------------------------- checkpoint files
def test_checkpoint_roundtrip_and_no_temp_files(tmp_path):
    state = {"w": torch.randn(3, 4), "opt": {"state": {0: {"m": torch.ones(2)}}, "lr": [0.1]}}
    save_file(tmp_path / "a.ckpt", state, step=7, config={"q": 50, "name": "x"})
    obj = load_file(tmp_path / "a.ckpt")
    assert torch.equal(obj["tensors"]["w"], state["w"])
    assert obj["tensors"]["opt"]["state"][0]["m"].sum() == 2
    assert obj["meta"] == {"step": 7, "config": {"q": 50, "name": "x"}}
    assert os.listdir(tmp_path) == ["a.ckpt"]


def test_torn_and_corrupted_files_are_refused(tmp_path):
    path = tmp_path / "a.ckpt"
    save_file(path, {"w": torch.randn(100)})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 10])  # what a kill during a non-atomic write leaves
    with pytest.raises(CheckpointError, match="truncated or torn"):
        load_file(path)
    flipped = bytearray(data)
    flipped[-20] ^= 0xFF
    path.write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError, match="checksum"):
        load_file(path)
    torch.save({"w": torch.ones(1)}, path)
    with pytest.raises(CheckpointError, match="header"):
        load_file(path)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_file(tmp_path / "missing.ckpt")


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_arbitrary_pickles_are_not_executed(tmp_path):
    # A well-formed file (valid checksum) whose payload holds a pickled callable: weights_only refuses it.
    buf = io.BytesIO()
    torch.save({"tensors": {}, "meta": {"x": _Evil()}}, buf)
    payload = buf.getvalue()
    header = MAGIC + b" " + hashlib.sha256(payload).hexdigest().encode() + b" " + str(len(payload)).encode() + b"\n"
    (tmp_path / "evil.ckpt").write_bytes(header + payload)
    with pytest.raises(pickle.UnpicklingError):
        load_file(tmp_path / "evil.ckpt")


def test_replace_is_atomic_old_file_survives_a_failed_write(tmp_path, monkeypatch):
    path = tmp_path / "a.ckpt"
    save_file(path, {"w": torch.zeros(1)}, step=1)

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        save_file(path, {"w": torch.ones(1)}, step=2)
    monkeypatch.undo()
    assert load_file(path)["meta"]["step"] == 1
    assert os.listdir(tmp_path) == ["a.ckpt"]  # the temp file was removed


# ---------------------------------------------------------------- fine-tuning
class _Tiny(nn.Module):
    """A small CNN so the fine-tuning tests run in about a second."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).mean(dim=(2, 3)))


def _toy_data(n=64, seed=0):
    """Two classes: reddish vs bluish noisy images (learnable, survives JPEG)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = torch.rand(n, 3, 16, 16, generator=g) * 0.5
    x[y == 0, 0] += 0.4
    x[y == 1, 2] += 0.4
    return (x.clamp(0, 1) * 255).to(torch.uint8), y


def _params(m):
    return torch.cat([p.detach().flatten() for p in m.state_dict().values() if p.is_floating_point()])


@pytest.mark.slow
def test_finetune_loss_decreases():
    torch.manual_seed(0)
    model = _Tiny()
    r = finetune(model, _toy_data(), quality=30, table="nn", epochs=6, batch_size=16, lr=0.05, progress=False)
    losses = [float(h["loss"]) for h in r["history"]]
    assert r["steps"] == r["total_steps"] == 24 and r["finished"]
    assert np.mean(losses[-4:]) < 0.6 * np.mean(losses[:4])
    assert not model.training


def test_finetune_resume_continues_at_the_right_step(tmp_path):
    data = _toy_data()
    kw = dict(quality=50, table="standard", epochs=2, batch_size=16, lr=0.05, quality_spread=10,
              checkpoint_every=3, progress=False)
    torch.manual_seed(0)
    ref = _Tiny()
    start = {k: v.clone() for k, v in ref.state_dict().items()}
    full = finetune(ref, data, out_dir=tmp_path / "full", **kw)

    m1 = _Tiny()
    m1.load_state_dict(start)
    part = finetune(m1, data, out_dir=tmp_path / "run", max_steps=5, **kw)
    assert part["steps"] == 5 and not part["finished"]
    assert load_file(tmp_path / "run" / "last.ckpt")["meta"]["step"] == 5
    assert not (tmp_path / "run" / "member.ckpt").exists()
    m2 = _Tiny()
    m2.load_state_dict(start)  # a fresh process: weights come from the checkpoint, not from m1
    rest = finetune(m2, data, out_dir=tmp_path / "run", **kw)
    assert rest["steps"] == 8 and rest["finished"]
    torch.testing.assert_close(_params(m2), _params(ref), rtol=1e-5, atol=1e-6)
    with open(tmp_path / "run" / "log.csv") as f:
        steps = [int(r["step"]) for r in csv.DictReader(f)]
    assert steps == list(range(1, 9))
    assert [h["loss"] for h in full["history"]] == pytest.approx([float(h["loss"]) for h in rest["history"]],
                                                                  rel=1e-4)
    member = load_member(tmp_path / "run" / "member.ckpt", _Tiny())
    torch.testing.assert_close(_params(member), _params(ref), rtol=1e-5, atol=1e-6)


def test_resume_after_a_kill_drops_the_torn_log_line(tmp_path):
    data = _toy_data(32)
    kw = dict(quality=50, table="standard", epochs=1, batch_size=8, checkpoint_every=2, progress=False)
    finetune(_Tiny(), data, out_dir=tmp_path, max_steps=2, **kw)
    with open(tmp_path / "log.csv", "a") as f:  # rows written after the checkpoint, then a torn line
        f.write("3,0.75,0.5,0.5,0.01,50.0,1.0\n4,1.0,0.4")
    r = finetune(_Tiny(), data, out_dir=tmp_path, **kw)
    assert r["steps"] == 4
    with open(tmp_path / "log.csv") as f:
        assert [int(row["step"]) for row in csv.DictReader(f)] == [1, 2, 3, 4]


def test_resume_refuses_other_settings(tmp_path):
    data = _toy_data(32)
    finetune(_Tiny(), data, quality=50, table="standard", batch_size=8, out_dir=tmp_path, max_steps=1, progress=False)
    with pytest.raises(CheckpointError, match="different settings"):
        finetune(_Tiny(), data, quality=30, table="standard", batch_size=8, out_dir=tmp_path, progress=False)


@pytest.mark.parametrize("kw, err", [(dict(quality=0), ValueError), (dict(quality=50, table="jpeg"), ValueError),
                                     (dict(quality=50, batch_size=0), ValueError),
                                     (dict(quality=50, subsampling="4:2:2"), ValueError)])
def test_finetune_bad_arguments(kw, err):
    with pytest.raises(err):
        finetune(_Tiny(), _toy_data(8), progress=False, **kw)


def test_finetune_bad_data():
    with pytest.raises(TypeError):
        finetune(_Tiny(), torch.zeros(4, 3, 8, 8), quality=50, progress=False)
    with pytest.raises(ValueError, match="labels"):
        finetune(_Tiny(), (torch.zeros(4, 3, 8, 8), torch.zeros(3)), quality=50, progress=False)


def test_cli_finetune_levels_and_resume(tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "cifar10_train.npz", x=rng.integers(0, 256, (48, 32, 32, 3), dtype=np.uint8),
             y=rng.integers(0, 10, 48, dtype=np.uint8))
    torch.save({"state_dict": cifar_resnet(20).net.state_dict()}, tmp_path / "w.th")
    args = ["finetune", "--arch", "resnet20", "--weights", str(tmp_path / "w.th"), "--data", str(tmp_path),
            "--levels", "60,20", "--out", str(tmp_path / "out"), "--batch-size", "16", "--subset", "32",
            "--no-progress", "--checkpoint-every", "1"]
    assert cli_main(args + ["--max-steps", "1"]) == 0
    assert (tmp_path / "out" / "q60" / "last.ckpt").exists() and not (tmp_path / "out" / "q20").exists()
    assert cli_main(args) == 0
    assert "resumed" not in capsys.readouterr().err
    for q in (60, 20):
        assert (tmp_path / "out" / f"q{q}" / "member.ckpt").exists()
    ens = Ensemble.load(tmp_path / "out" / "ensemble.ckpt")
    assert ens.qualities == [60, 20] and ens.table_name == "nn"
    assert ens.predict(torch.rand(2, 3, 32, 32)).shape == (2,)
    assert cli_main(args) == 0  # everything done: skips both levels
    assert "done already" in capsys.readouterr().out
    assert cli_main(["finetune", "--out", str(tmp_path / "o2"), "--data", str(tmp_path / "nope")]) == 2
    assert cli_main(args + ["--table", "jpeg"]) == 2
    assert "unknown table preset" in capsys.readouterr().err


# ---------------------------------------------------------------- ensemble
def _logits_from_votes(votes, probs_boost):
    """Member logits (K, N=1, C) whose argmax is ``votes[k]``, with a tunable confidence per member."""
    k, c = len(votes), 4
    logits = torch.zeros(k, 1, c)
    for i, (v, b) in enumerate(zip(votes, probs_boost)):
        logits[i, 0, v] = b
    return logits


def test_majority_vote_and_documented_tie_break():
    # 2 votes for class 1 and 2 votes for class 2; class 2's voters are more confident -> class 2 wins.
    lg = _logits_from_votes([1, 1, 2, 2], [1.0, 1.0, 5.0, 5.0])
    mean_prob = torch.softmax(lg, -1).mean(0)
    assert mean_prob[0, 2] > mean_prob[0, 1]
    assert Ensemble.combine(lg, "majority").argmax(-1).item() == 2
    lg = _logits_from_votes([1, 1, 2, 2], [5.0, 5.0, 1.0, 1.0])
    assert Ensemble.combine(lg, "majority").argmax(-1).item() == 1


def test_majority_beats_confidence_and_soft_uses_it():
    # 3 weak votes for class 0 against 2 very confident votes for class 3.
    lg = _logits_from_votes([0, 0, 0, 3, 3], [0.1, 0.1, 0.1, 20.0, 20.0])
    assert Ensemble.combine(lg, "majority").argmax(-1).item() == 0
    assert Ensemble.combine(lg, "soft").argmax(-1).item() == 3
    torch.testing.assert_close(Ensemble.combine(lg, "soft"), torch.softmax(lg, -1).mean(0))
    votes = Ensemble.combine(lg, "majority").floor()
    assert votes.tolist() == [[3.0, 0.0, 0.0, 2.0]]


def _small_members(k, seed=0):
    torch.manual_seed(seed)
    return [nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(4, 5)) for _ in range(k)]


def test_member_logits_see_their_own_level():
    members = _small_members(3)
    ens = Ensemble(members, [90, 40, 5], table="nn").eval()
    x = torch.rand(4, 3, 16, 16)
    got = ens.member_logits(x)
    for k, (m, q) in enumerate(zip(members, [90, 40, 5])):
        torch.testing.assert_close(got[k], m(nnjpeg_cuda.roundtrip(x, quality=q, table="nn")))
    pred, votes = ens.predict(x, return_votes=True)
    assert torch.equal(votes, got.argmax(-1))
    assert torch.equal(pred, Ensemble.combine(got).argmax(-1))
    assert torch.equal(ens.predict((x * 255).round().to(torch.uint8)),
                       ens.predict((x * 255).round() / 255))


@pytest.mark.parametrize("grad", ["bpda", "ste"])
def test_ensemble_is_differentiable(grad):
    members = _small_members(2)
    ens = Ensemble(members, [70, 20], table="standard", vote="soft", grad=grad).eval()
    x = torch.rand(2, 3, 16, 16, requires_grad=True)
    ens.member_logits(x).sum().backward()
    if grad == "bpda":  # identity through the codec: sum over members of d member / d its input
        expect = torch.zeros_like(x)
        for m, q in zip(members, [70, 20]):
            xq = nnjpeg_cuda.roundtrip(x.detach(), quality=q).requires_grad_(True)
            m(xq).sum().backward()
            expect += xq.grad
        torch.testing.assert_close(x.grad, expect)
    assert x.grad.abs().sum() > 0


def test_ensemble_save_load_roundtrip(tmp_path):
    members = [cifar_resnet(20) for _ in range(2)]
    ens = Ensemble(members, [80, 30], table="fd", vote="soft", arch="resnet20").eval()
    ens.save(tmp_path / "e.ckpt")
    back = Ensemble.load(tmp_path / "e.ckpt")
    x = torch.rand(3, 3, 32, 32)
    torch.testing.assert_close(back(x), ens(x))
    assert back.vote == "soft" and back.table_name == "fd" and back.qualities == [80, 30]
    assert Ensemble.load(tmp_path / "e.ckpt", vote="majority").vote == "majority"
    save_file(tmp_path / "other.ckpt", {"w": torch.ones(1)})
    with pytest.raises(CheckpointError, match="Ensemble"):
        Ensemble.load(tmp_path / "other.ckpt", arch="resnet20")


def test_ensemble_custom_table_and_callable_arch(tmp_path):
    t = torch.full((2, 8, 8), 12.0)
    ens = Ensemble(_small_members(2), [50, 10], table=t).eval()
    ens.save(tmp_path / "e.ckpt")
    back = Ensemble.load(tmp_path / "e.ckpt", arch=lambda: _small_members(1)[0])
    assert torch.equal(back.base_table, t)
    x = torch.rand(2, 3, 8, 8)
    torch.testing.assert_close(back(x), ens(x))


@pytest.mark.parametrize("kw", [dict(qualities=[50]), dict(qualities=[50, 0]), dict(vote="max"),
                                dict(table="nope"), dict(subsampling="4:1:1")])
def test_ensemble_bad_arguments(kw):
    args = dict(models=_small_members(2), qualities=[50, 20])
    args.update(kw)
    with pytest.raises(ValueError):
        Ensemble(**args)


def test_ensemble_bad_input():
    ens = Ensemble(_small_members(2), [50, 20])
    with pytest.raises(ValueError, match="N, 3, H, W"):
        ens(torch.rand(3, 8, 8))


@pytest.mark.slow
def test_ensemble_torch_compile_fullgraph():
    ens = Ensemble(_small_members(3), [90, 50, 10], table="nn").eval()
    x = torch.rand(2, 3, 16, 16)
    compiled = torch.compile(ens, fullgraph=True, backend="eager")
    torch.testing.assert_close(compiled(x), ens(x))
    compiled_inductor = torch.compile(ens)
    torch.testing.assert_close(compiled_inductor(x), ens(x), rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    rng = np.random.default_rng(1)
    np.savez(tmp_path / "cifar10_train.npz", x=rng.integers(0, 256, (48, 32, 32, 3), dtype=np.uint8),
             y=rng.integers(0, 10, 48, dtype=np.uint8))
    torch.save({"state_dict": cifar_resnet(20).net.state_dict()}, tmp_path / "w.th")

    def cmd(out):
        return [sys.executable, "-m", "nnjpeg_cuda", "finetune", "--weights", str(tmp_path / "w.th"),
                "--data", str(tmp_path), "--levels", "40", "--out", str(out), "--batch-size", "8",
                "--epochs", "3", "--checkpoint-every", "1", "--no-progress", "--device", "cpu"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    assert subprocess.run(cmd(tmp_path / "ref"), env=env, capture_output=True, timeout=300).returncode == 0

    proc = subprocess.Popen(cmd(tmp_path / "run"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = tmp_path / "run" / "q40" / "log.csv"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if log.exists() and len(log.read_text().splitlines()) >= 1 + 8:  # past the first epoch (6 steps)
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "run" / "q40" / "member.ckpt").exists(), "the run finished before the kill"
    step_at_kill = load_file(tmp_path / "run" / "q40" / "last.ckpt")["meta"]["step"]
    assert 0 < step_at_kill < 18
    assert subprocess.run(cmd(tmp_path / "run"), env=env, capture_output=True, timeout=300).returncode == 0
    ref = load_file(tmp_path / "ref" / "q40" / "member.ckpt")["tensors"]["model"]
    got = load_file(tmp_path / "run" / "q40" / "member.ckpt")["tensors"]["model"]
    for k in ref:
        torch.testing.assert_close(got[k], ref[k], rtol=1e-5, atol=1e-6, msg=k)
    with open(log) as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == list(range(1, 19))
