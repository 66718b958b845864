"""Distributed fine-tuning through torchrun: 2 CPU processes, gloo backend, a few steps on tiny data."""

import csv
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from nnjpeg_cuda.defence import load_file
from nnjpeg_cuda.models import cifar_resnet


@pytest.mark.slow
def test_torchrun_two_processes_gloo(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "cifar10_train.npz", x=rng.integers(0, 256, (40, 32, 32, 3), dtype=np.uint8),
             y=rng.integers(0, 10, 40, dtype=np.uint8))
    torch.save({"state_dict": cifar_resnet(20).net.state_dict()}, tmp_path / "w.th")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "nnjpeg_cuda", "finetune", "--arch", "resnet20", "--weights", str(tmp_path / "w.th"),
           "--data", str(tmp_path), "--levels", "50", "--out", str(out), "--batch-size", "8",
           "--checkpoint-every", "2", "--no-progress", "--device", "cpu"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    ckpt = load_file(out / "q50" / "last.ckpt")
    # 40 images over 2 processes = 20 each; batch 8 -> 3 steps per epoch
    assert ckpt["meta"]["step"] == 3
    assert ckpt["meta"]["config"]["extra"]["world_size"] == 2
    with open(out / "q50" / "log.csv") as f:
        assert [int(row["step"]) for row in csv.DictReader(f)] == [1, 2, 3]
    assert (out / "q50" / "member.ckpt").exists() and (out / "ensemble.ckpt").exists()
    # the weights moved away from the start (gradients were all-reduced and applied)
    start = cifar_resnet(20).net.state_dict()
    got = ckpt["tensors"]["model"]
    w0 = torch.load(tmp_path / "w.th", weights_only=True)["state_dict"]["conv1.weight"]
    assert not torch.equal(got["net.conv1.weight"], w0)
    assert set(k.replace("net.", "", 1) for k in got) == set(start)


_FREES_WRAPPER = """
import gc, sys
import torch
from torch.nn.parallel import DistributedDataParallel
from nnjpeg_cuda.defence import finetune
from nnjpeg_cuda.models import cifar_resnet

torch.distributed.init_process_group("gloo")
x = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
y = torch.randint(0, 10, (16,), generator=torch.Generator().manual_seed(1))
gc.disable()  # only finetune() itself may collect
finetune(cifar_resnet(20), (x, y), quality=50, batch_size=4, max_steps=1, progress=False)
alive = [o for o in gc.get_objects() if isinstance(o, DistributedDataParallel)]
torch.distributed.destroy_process_group()
sys.exit(f"{len(alive)} DistributedDataParallel wrapper(s) still alive" if alive else 0)
"""


@pytest.mark.slow
def test_finetune_frees_its_ddp_wrapper_before_returning(tmp_path):
    # A wrapper left to the garbage collector keeps the process group alive into interpreter finalisation,
    # where gloo's threads could abort the process (defence/finetune.py); this checks it is gone every run.
    script = tmp_path / "frees_wrapper.py"
    script.write_text(_FREES_WRAPPER)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", str(script)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
