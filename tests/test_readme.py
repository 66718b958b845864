"""The documentation runs: every ```python block of README.md, every ``nnjpeg-cuda`` line of its ```bash
blocks, and docs/API.md names every public function.

Opting out: a block preceded by the line ``<!-- readme-test: needs-gpu -->`` is marked ``cuda`` (it runs where
a CUDA GPU is present, and is skipped when it imports CuPy and CuPy is not installed). No other marker exists;
an unknown ``readme-test`` marker fails the test, so a typo cannot silently skip a block.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import nnjpeg_cuda
from nnjpeg_cuda import reference, tables
from nnjpeg_cuda.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MARKER = re.compile(r"<!--\s*readme-test:\s*(\S+)\s*-->")
MARKERS = {"needs-gpu"}


def _blocks(language: str):
    """(first line number, code, marker or None) of each fenced block in the given language."""
    lines = README.read_text().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        if lines[i].strip() == f"```{language}":
            start = i + 1
            end = next(j for j in range(start, len(lines)) if lines[j].strip() == "```")
            before = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
            marker = MARKER.search(before)
            blocks.append((start + 1, "\n".join(lines[start:end]) + "\n", marker.group(1) if marker else None))
            i = end
        i += 1
    return blocks


def _python_params():
    params = []
    for line, code, marker in _blocks("python"):
        marks = [pytest.mark.cuda] if marker == "needs-gpu" else []
        params.append(pytest.param(line, code, marker, id=f"README.md:{line}", marks=marks))
    return params


def test_readme_has_python_blocks_and_setup_commands():
    assert len(_blocks("python")) >= 4
    text = README.read_text()
    assert ("```bash\nmake bench   # the main job: python benchmarks/throughput.py on built-in images\n"
            "make test    # the test suite (pytest)\n```") in text


@pytest.mark.parametrize("line,code,marker", _python_params())
def test_readme_python_block(line, code, marker, tmp_path, monkeypatch):
    assert marker in (None, *MARKERS), f"README.md:{line}: unknown marker {marker!r}; known: {sorted(MARKERS)}"
    monkeypatch.chdir(tmp_path)  # files a snippet writes land in a temporary folder
    if marker == "needs-gpu" and re.search(r"^\s*import cupy", code, re.M):
        pytest.importorskip("cupy")
    exec(compile(code, f"README.md:{line}", "exec"), {"__name__": "__readme__"})


def _cli_lines():
    lines = []
    for _, code, marker in _blocks("bash"):
        for text in code.splitlines():
            if text.startswith("nnjpeg-cuda "):
                lines.append((marker, shlex.split(text, comments=True)[1:]))
    return lines


def test_readme_command_lines(tmp_path, monkeypatch, photos):
    lines = _cli_lines()
    assert len(lines) >= 4
    monkeypatch.chdir(tmp_path)
    Path("photos").mkdir()
    for name, image in photos.items():  # the photos/ folder the examples use
        Image.fromarray(np.ascontiguousarray(image[::2, ::2])).save(f"photos/{name}.png")
    for marker, argv in lines:
        assert marker is None, "command-line blocks have no GPU marker"
        assert main(argv) == 0, f"nnjpeg-cuda {shlex.join(argv)} failed"


def test_api_reference_names_every_public_function():
    text = (ROOT / "docs" / "API.md").read_text()
    public = {f"nnjpeg_cuda.{n}" for n in nnjpeg_cuda.__all__} | {f"tables.{n}" for n in tables.__all__}
    public |= {f"reference.{n}" for n, obj in vars(reference).items()
               if callable(obj) and not n.startswith("_") and getattr(obj, "__module__", "") == reference.__name__}
    missing = sorted(q for q in public if not re.search(rf"`{re.escape(q.split('.', 1)[1])}\b", text))
    assert not missing, f"docs/API.md does not mention {missing}: add them to the reference"
