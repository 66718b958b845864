"""Interrupted training: ``nnjpeg-cuda finetune`` killed with SIGKILL mid-epoch, then resumed.

A real child process trains a CIFAR ResNet-20 on a small synthetic CIFAR-format data set; once it has
written a checkpoint and logged steps past it, it is killed with SIGKILL (no handler runs). Then:

- the checkpoint on disk is intact (header, length, SHA-256, loadable) and holds a step before the kill;
- re-running the same command resumes: the log keeps the steps up to the checkpoint untouched (they
  are not redone), redoes the steps after it, and finishes; the final weights equal those of a run that
  was never interrupted (and so do the per-step losses): training continued from the checkpoint's step;
- a torn (truncated) or corrupted checkpoint is refused with a clear message, by the loader and by the
  command, which neither loads it nor silently starts over nor overwrites it.
"""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from nnjpeg_cuda.defence import CheckpointError, load_file
from nnjpeg_cuda.models import cifar_resnet

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals (SIGKILL)")]

N_IMAGES, BATCH, EPOCHS, EVERY = 192, 16, 2, 4  # 12 steps an epoch, 24 in all, a checkpoint every 4 steps
TOTAL = N_IMAGES // BATCH * EPOCHS
# One thread per child: bitwise-repeatable arithmetic, and fair to a shared CI machine.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("interrupted")
    rng = np.random.default_rng(0)
    np.savez(d / "cifar10_train.npz", x=rng.integers(0, 256, (N_IMAGES, 32, 32, 3), dtype=np.uint8),
             y=rng.integers(0, 10, N_IMAGES, dtype=np.uint8))
    torch.manual_seed(0)
    torch.save({"state_dict": cifar_resnet(20).net.state_dict()}, d / "start.th")
    return d


def _command(workdir: Path, out: Path):
    return [sys.executable, "-m", "nnjpeg_cuda", "finetune", "--arch", "resnet20", "--weights",
            str(workdir / "start.th"), "--data", str(workdir), "--levels", "50", "--table", "standard",
            "--out", str(out), "--batch-size", str(BATCH), "--epochs", str(EPOCHS), "--checkpoint-every", str(EVERY),
            "--device", "cpu", "--no-progress"]


def _log_rows(path: Path):
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return [r for r in csv.DictReader(f) if r.get("seconds")]


def _weights(path: Path) -> dict:
    return load_file(path)["tensors"]["model"]


@pytest.fixture(scope="module")
def uninterrupted(workdir) -> Path:
    out = workdir / "reference"
    proc = subprocess.run(_command(workdir, out), env=ENV, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out / "q50"


@pytest.fixture(scope="module")
def killed(workdir) -> dict:
    """Start the command, SIGKILL it mid-epoch after its first checkpoint; what was on disk then."""
    out = workdir / "killed"
    level = out / "q50"
    proc = subprocess.Popen(_command(workdir, out), env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    kill_after = EVERY + 2  # logged steps past the checkpoint at step EVERY, inside the first epoch
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"finetune ended (code {proc.returncode}) before it could be killed: "
                            f"{proc.stderr.read().decode()[-2000:]}")
            rows = _log_rows(level / "log.csv")
            if len(rows) >= kill_after and (level / "last.ckpt").exists():
                os.kill(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.01)
        else:
            pytest.fail("finetune made no progress within 300 s")
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    snapshot = level.parent.parent / "killed_snapshot"
    shutil.copytree(level, snapshot)
    return {"returncode": proc.returncode, "level": level, "snapshot": snapshot,
            "rows": _log_rows(snapshot / "log.csv")}


def test_killed_run_leaves_an_intact_checkpoint(killed):
    assert killed["returncode"] == -signal.SIGKILL
    level = killed["level"]
    ckpt = load_file(level / "last.ckpt")  # header, length and SHA-256 verified, weights_only load
    step = int(ckpt["meta"]["step"])
    logged = int(killed["rows"][-1]["step"])
    assert step % EVERY == 0 and 0 < step < logged < N_IMAGES // BATCH, (step, logged)  # killed mid-epoch 1
    print(f"SIGKILL after logged step {logged} of {TOTAL}; checkpoint on disk: step {step}")
    assert set(ckpt["tensors"]) == {"model", "optimizer"}
    assert not (level / "member.ckpt").exists()
    stray = [p.name for p in level.iterdir() if p.name.endswith(".tmp")]
    assert len(stray) <= 1  # at most the temporary file of a write the kill interrupted; never the target


def test_resume_continues_from_the_checkpoint_step(workdir, killed, uninterrupted):
    level = killed["level"]
    ck_step = int(load_file(level / "last.ckpt")["meta"]["step"])
    before = killed["rows"]
    proc = subprocess.run(_command(workdir, level.parent), env=ENV, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    after = _log_rows(level / "log.csv")
    assert [int(r["step"]) for r in after] == list(range(1, TOTAL + 1))
    # Steps up to the checkpoint were kept, not redone (their timestamps are those of the killed run) ...
    assert after[:ck_step] == before[:ck_step]
    # ... and the ones after it were redone, making the same updates as before the kill.
    for old, new in zip(before[ck_step:], after[ck_step:]):
        assert old["step"] == new["step"] and float(old["loss"]) == pytest.approx(float(new["loss"]), rel=1e-5)
    # The whole run equals one that was never interrupted: losses per step and the final weights.
    ref_rows = _log_rows(uninterrupted / "log.csv")
    assert [float(r["loss"]) for r in after] == pytest.approx([float(r["loss"]) for r in ref_rows], rel=1e-5)
    mine, ref = _weights(level / "member.ckpt"), _weights(uninterrupted / "member.ckpt")
    assert mine.keys() == ref.keys()
    for k in ref:
        torch.testing.assert_close(mine[k], ref[k], rtol=1e-5, atol=1e-6, msg=k)
    assert int(load_file(level / "last.ckpt")["meta"]["step"]) == TOTAL


@pytest.mark.parametrize("damage", ["half", "minus_one_byte", "header_only", "empty", "flipped_byte", "appended"])
def test_damaged_checkpoint_is_refused_by_the_loader(killed, tmp_path, damage):
    data = (killed["snapshot"] / "last.ckpt").read_bytes()
    header = data.index(b"\n") + 1
    flipped = bytearray(data)
    flipped[header + len(data[header:]) // 3] ^= 0x01
    damaged = {"half": data[: len(data) // 2], "minus_one_byte": data[:-1], "header_only": data[:header],
               "empty": b"", "flipped_byte": bytes(flipped), "appended": data + b"\0" * 16}[damage]
    path = tmp_path / "last.ckpt"
    path.write_bytes(damaged)
    expect = {"flipped_byte": "checksum", "empty": "header"}.get(damage, "truncated or torn")
    with pytest.raises(CheckpointError, match=expect):
        load_file(path)


def test_command_refuses_a_torn_checkpoint_and_keeps_it(workdir, killed):
    """The command stops with a clear message; it neither loads the file, nor starts over, nor overwrites it."""
    out = workdir / "torn"
    level = out / "q50"
    shutil.copytree(killed["snapshot"], level)
    data = (level / "last.ckpt").read_bytes()
    torn = data[: len(data) * 2 // 3]  # what a non-atomic writer killed mid-write would leave
    (level / "last.ckpt").write_bytes(torn)
    log_before = (level / "log.csv").read_bytes()
    proc = subprocess.run(_command(workdir, out), env=ENV, capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0
    assert "truncated or torn" in proc.stderr and str(level / "last.ckpt") in proc.stderr, proc.stderr[-2000:]
    assert (level / "last.ckpt").read_bytes() == torn
    assert (level / "log.csv").read_bytes() == log_before
    assert not (level / "member.ckpt").exists()
