"""Untrusted files: model weights, members, ensembles, checkpoints and image arrays load without running code.

Each crafted file carries a pickle ``__reduce__`` payload that, if unpickled, writes a marker file. A
positive control first shows the payload is live (an unsafe ``torch.load(weights_only=False)`` /
``np.load(allow_pickle=True)`` does create the marker); then every loader of the package must refuse the
file with an exception, and the marker must not exist. The checksummed checkpoint format is no defence
on its own (an attacker writes a valid checksum), so those files are crafted with valid headers.
A static scan also checks that no module of the package calls an unsafe deserializer.
"""

from __future__ import annotations

import ast
import hashlib
import io
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

import nnjpeg_cuda
from nnjpeg_cuda.cli import main as cli_main
from nnjpeg_cuda.datasets import load_cifar10
from nnjpeg_cuda.defence import CheckpointError, Ensemble, load_file, load_member
from nnjpeg_cuda.defence.checkpoint import MAGIC
from nnjpeg_cuda.models import cifar_resnet


class Payload:
    """Unpickling this calls ``exec``, which writes ``marker``: proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('code ran')",))


def _torch_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _with_valid_header(payload: bytes) -> bytes:
    """What an attacker writes: our checkpoint header with a correct checksum around a malicious payload."""
    return MAGIC + b" " + hashlib.sha256(payload).hexdigest().encode() + b" " + str(len(payload)).encode() + b"\n" \
        + payload


@pytest.fixture
def marker(tmp_path) -> Path:
    return tmp_path / "code_ran.txt"


def _assert_payload_is_live(build, tmp_path: Path) -> None:
    """Positive control: the same crafted file (built with its own marker) runs its payload under an unsafe load."""
    probe = tmp_path / "control_marker.txt"
    torch.load(io.BytesIO(build(probe)), weights_only=False)
    assert probe.exists(), "control: the crafted payload did not run even under an unsafe load"


def _evil_state_dict(marker: Path) -> dict:
    state = cifar_resnet(20).net.state_dict()
    state["conv1.weight"] = Payload(marker)  # hidden among real tensors
    return state


def test_plain_weights_file_with_payload_is_refused(tmp_path, marker):
    build = lambda m: _torch_bytes({"state_dict": _evil_state_dict(m)})  # noqa: E731
    _assert_payload_is_live(build, tmp_path)
    path = tmp_path / "resnet20.th"
    path.write_bytes(build(marker))
    with pytest.raises(pickle.UnpicklingError):
        cifar_resnet(20, path)
    assert not marker.exists()


@pytest.mark.parametrize("loader", ["load_file", "load_member", "Ensemble.load"])
def test_checkpoint_with_valid_checksum_and_payload_is_refused(tmp_path, marker, loader):
    meta = {"kind": "nnjpeg_cuda.Ensemble", "qualities": [50], "base_table": torch.ones(2, 8, 8), "table_name": "x",
            "subsampling": "4:4:4", "color": "ycbcr", "grad": "bpda", "vote": "majority", "arch": "resnet20"}
    build = lambda m: _torch_bytes({"tensors": {"model": _evil_state_dict(m), "member0": _evil_state_dict(m)},  # noqa
                                    "meta": meta})
    _assert_payload_is_live(build, tmp_path)
    path = tmp_path / "evil.ckpt"
    path.write_bytes(_with_valid_header(build(marker)))
    with pytest.raises(pickle.UnpicklingError):
        if loader == "load_file":
            load_file(path)
        elif loader == "load_member":
            load_member(path, cifar_resnet(20))
        else:
            Ensemble.load(path)
    assert not marker.exists()


def test_payload_in_checkpoint_metadata_is_refused(tmp_path, marker):
    build = lambda m: _torch_bytes({"tensors": {}, "meta": {"step": 3, "note": Payload(m)}})  # noqa: E731
    _assert_payload_is_live(build, tmp_path)
    (tmp_path / "last.ckpt").write_bytes(_with_valid_header(build(marker)))
    with pytest.raises(pickle.UnpicklingError):
        load_file(tmp_path / "last.ckpt")
    assert not marker.exists()


def test_ensemble_file_cannot_name_arbitrary_code_as_its_architecture(tmp_path):
    """A clean file (no pickle tricks) whose ``arch`` names a callable path is refused, not imported."""
    ens = Ensemble([cifar_resnet(20)], [50], table="standard", arch="resnet20")
    ens.save(tmp_path / "ens.ckpt")
    obj = load_file(tmp_path / "ens.ckpt")
    for arch in ("os.system", "builtins.exec", "resnet20; import os", "resnet-1"):
        obj["meta"]["arch"] = arch
        (tmp_path / "crafted.ckpt").write_bytes(_with_valid_header(_torch_bytes(obj)))
        with pytest.raises(ValueError, match="arch"):
            Ensemble.load(tmp_path / "crafted.ckpt")
    with pytest.raises(CheckpointError, match="does not hold an Ensemble"):
        obj["meta"]["kind"] = "something else"
        (tmp_path / "crafted.ckpt").write_bytes(_with_valid_header(_torch_bytes(obj)))
        Ensemble.load(tmp_path / "crafted.ckpt")


def test_cli_finetune_refuses_crafted_weights(tmp_path, marker, capsys):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "cifar10_train.npz", x=rng.integers(0, 256, (16, 32, 32, 3), dtype=np.uint8),
             y=rng.integers(0, 10, 16, dtype=np.uint8))
    (tmp_path / "evil.th").write_bytes(_torch_bytes({"state_dict": _evil_state_dict(marker)}))
    code = cli_main(["finetune", "--weights", str(tmp_path / "evil.th"), "--data", str(tmp_path), "--levels", "50",
                     "--out", str(tmp_path / "out"), "--batch-size", "8", "--no-progress"])
    assert code == 2
    assert "cannot load weights" in capsys.readouterr().err
    assert not marker.exists()
    assert not (tmp_path / "out" / "q50" / "last.ckpt").exists()


def test_data_arrays_with_pickled_objects_are_refused(tmp_path, marker, capsys):
    x = np.empty((2,), dtype=object)
    x[0], x[1] = Payload(marker), Payload(marker)
    np.savez(tmp_path / "cifar10_train.npz", x=x, y=np.zeros(2, dtype=np.uint8))
    with np.load(tmp_path / "cifar10_train.npz", allow_pickle=True) as d:  # positive control
        d["x"]
    assert marker.exists(), "control: the object array did not run its payload under allow_pickle=True"
    marker.unlink()
    with pytest.raises(ValueError):
        load_cifar10("train", tmp_path)
    assert not marker.exists()
    code = cli_main(["tables", "--design", "deepn", "--images", str(tmp_path / "cifar10_train.npz")])
    assert code == 2 and "allow_pickle" in capsys.readouterr().err
    assert not marker.exists()


_UNSAFE_CALLS = {("pickle", "load"), ("pickle", "loads"), ("pickle", "Unpickler"), ("marshal", "loads"),
                 ("marshal", "load"), ("dill", "load"), ("dill", "loads"), ("cloudpickle", "loads"),
                 ("jit", "load"), ("yaml", "load"), ("yaml", "unsafe_load")}


def _unsafe_calls(tree: ast.AST):
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        kw = {k.arg: k.value for k in node.keywords}
        if isinstance(f, ast.Name) and f.id in ("eval", "exec"):
            yield f"{f.id}()", node.lineno
        if not isinstance(f, ast.Attribute):
            continue
        owner = f.value.attr if isinstance(f.value, ast.Attribute) else getattr(f.value, "id", None)
        if (owner, f.attr) in _UNSAFE_CALLS:
            yield f"{owner}.{f.attr}()", node.lineno
        if owner == "torch" and f.attr == "load":
            w = kw.get("weights_only")
            if not (isinstance(w, ast.Constant) and w.value is True):
                yield "torch.load() without weights_only=True", node.lineno
        if owner in ("np", "numpy") and f.attr == "load":
            a = kw.get("allow_pickle")
            if a is not None and not (isinstance(a, ast.Constant) and a.value is False):
                yield "np.load(allow_pickle=...) not False", node.lineno


def test_no_module_calls_an_unsafe_deserializer():
    root = Path(nnjpeg_cuda.__file__).parent
    found = []
    files = sorted(root.rglob("*.py"))
    assert len(files) > 10
    for path in files:
        for what, line in _unsafe_calls(ast.parse(path.read_text(), str(path))):
            found.append(f"{path.relative_to(root)}:{line}: {what}")
    assert not found, "unsafe deserialization in the package:\n" + "\n".join(found)


def test_the_scan_finds_unsafe_calls():
    """The scanner itself flags what it should (so the test above can fail)."""
    code = ("import torch, pickle, numpy as np\ntorch.load(f)\ntorch.load(f, weights_only=False)\n"
            "pickle.loads(b)\nnp.load(p, allow_pickle=True)\ntorch.jit.load(p)\neval(s)\n"
            "torch.load(f, weights_only=True)\nnp.load(p)\n")
    assert [line for _, line in _unsafe_calls(ast.parse(code))] == [2, 3, 4, 5, 6, 7]
