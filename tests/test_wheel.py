"""``pip wheel .`` gives a CPU-only wheel that installs into a fresh virtual environment and works there.

The wheel is built with ``NNJPEG_CUDA=OFF`` (what a machine without nvcc builds) into a temporary folder,
with its own CMake build folder (the editable install's ``build/`` is left alone). The fresh venv sees
torch and numpy from this environment through a ``.pth`` path entry, not through site-packages processing,
so the editable install of the package stays invisible there; the test checks that the import really comes
from the wheel. About a minute on 2 cores, most of it the C++ compile.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import numpy
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _source_version() -> str:
    text = (ROOT / "python" / "nnjpeg_cuda" / "_version.py").read_text()
    return re.search(r'__version__\s*=\s*"([^"]+)"', text).group(1)


def _run(cmd, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=600, **kwargs)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    if shutil.which("cmake") is None and importlib.util.find_spec("cmake") is None:
        pytest.skip("no cmake to build the wheel with")
    out = tmp_path_factory.mktemp("wheel")
    env = dict(os.environ, NNJPEG_CUDA="OFF")
    cmd = [sys.executable, "-m", "pip", "wheel", ROOT, "--no-deps", "-w", out / "dist", "-C",
           f"build-dir={out / 'build'}"]
    if importlib.util.find_spec("scikit_build_core") and importlib.util.find_spec("pybind11"):
        cmd.append("--no-build-isolation")  # offline and faster; the isolated build fetches the same two
    _run(cmd, env=env)
    [whl] = (out / "dist").glob("nnjpeg_cuda-*.whl")
    return whl


def test_wheel_metadata_and_contents(wheel):
    version = _source_version()
    assert wheel.name.startswith(f"nnjpeg_cuda-{version}-")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        metadata = zf.read(f"nnjpeg_cuda-{version}.dist-info/METADATA").decode()
        entry_points = zf.read(f"nnjpeg_cuda-{version}.dist-info/entry_points.txt").decode()
    assert re.search(rf"^Version: {re.escape(version)}$", metadata, re.M)
    assert "nnjpeg-cuda = nnjpeg_cuda.cli:main" in entry_points
    assert any(re.fullmatch(r"nnjpeg_cuda/_C\..*\.so|nnjpeg_cuda/_C\..*\.pyd", n) for n in names), names
    if (ROOT / ".git").exists() and shutil.which("git"):
        tracked = _run(["git", "-C", ROOT, "ls-files", "python/nnjpeg_cuda"]).stdout.split()
        expected = {p.removeprefix("python/") for p in tracked}
        assert expected <= names, f"missing from the wheel: {sorted(expected - names)}"
    assert not any(n.startswith(("tests/", "csrc/", "build/")) for n in names)


def test_extension_does_not_link_torch(wheel, tmp_path):
    # The kernels take raw pointers: the binary must not depend on libtorch (torch-version independent).
    if shutil.which("readelf") is None:
        pytest.skip("readelf not available")
    with zipfile.ZipFile(wheel) as zf:
        [so] = [n for n in zf.namelist() if n.startswith("nnjpeg_cuda/_C.") and n.endswith(".so")]
        path = Path(zf.extract(so, tmp_path))
    needed = re.findall(r"\(NEEDED\).*\[(.+)\]", _run(["readelf", "-d", path]).stdout)
    assert needed and not [n for n in needed if re.match(r"lib(torch|c10|cudart|cuda)", n)], needed


def test_wheel_installs_and_runs_in_fresh_venv(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    purelib = Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).stdout.strip())
    # torch and numpy (and their dependencies) from this environment, as plain path entries.
    deps = {str(Path(m.__file__).resolve().parents[1]) for m in (torch, numpy)} | {sysconfig.get_path("purelib")}
    (purelib / "host_deps.pth").write_text("\n".join(sorted(deps)) + "\n")
    # --ignore-installed: where this environment holds a regular (non-editable) install, as in CI, the path
    # entry above makes pip think the package is already there and skip the wheel.
    _run([sys.executable, "-m", "pip", "--python", py, "install", "--no-deps", "--no-index", "--ignore-installed",
          wheel])
    script = (
        "import importlib.metadata as md, json, torch, nnjpeg_cuda\n"
        "x = torch.rand(2, 3, 20, 28, dtype=torch.float64, generator=torch.Generator().manual_seed(0))\n"
        "y = nnjpeg_cuda.roundtrip(x, quality=50)\n"
        "ref = nnjpeg_cuda.reference.roundtrip(x, quality=50)\n"
        "print(json.dumps({'file': nnjpeg_cuda.__file__, 'version': nnjpeg_cuda.__version__,\n"
        "                  'metadata': md.version('nnjpeg_cuda'), 'extension': nnjpeg_cuda.extension_available(),\n"
        "                  'cuda_built': nnjpeg_cuda.cuda_built(), 'max_err': float((y - ref).abs().max())}))\n")
    result = json.loads(_run([py, "-c", script], cwd=tmp_path).stdout.strip().splitlines()[-1])
    assert Path(result["file"]).resolve().is_relative_to(env_dir.resolve()), result["file"]  # the wheel's copy
    assert result["version"] == result["metadata"] == _source_version()
    assert result["extension"] and not result["cuda_built"]  # compiled CPU kernels, no CUDA (NNJPEG_CUDA=OFF)
    assert result["max_err"] <= 1e-9  # the installed float64 kernel agrees with the reference
    script_dir = Path(sysconfig.get_path("scripts", vars={"base": str(env_dir), "platbase": str(env_dir)}))
    cli = _run([script_dir / "nnjpeg-cuda", "--version"], cwd=tmp_path)
    assert cli.stdout.strip() == f"nnjpeg-cuda {_source_version()}"
