"""Regenerate the README's command-line pictures: ``python docs/img/make_cli_pictures.py`` (a few seconds).

- ``compare_chelsea.png``: ``nnjpeg-cuda compress chelsea.png -q 90 30 10 --compare`` on a crop of
  scikit-image's ``chelsea`` photo.
- ``tables_presets.png``: ``nnjpeg-cuda tables standard nn fd -q 50 --plot`` (the three presets).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from PIL import Image
from skimage import data

from nnjpeg_cuda.cli import main

HERE = Path(__file__).resolve().parent


def run() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "chelsea.png"
        Image.fromarray(data.chelsea()[40:232, 60:316]).save(src)  # 192 x 256: the cat's face
        assert main(["compress", str(src), "-q", "90", "30", "10", "--compare", "-o", tmp, "--quiet"]) == 0
        shutil.copy(Path(tmp) / "chelsea_compare.png", HERE / "compare_chelsea.png")
    assert main(["tables", "standard", "nn", "fd", "-q", "50", "--plot", str(HERE / "tables_presets.png")]) == 0


if __name__ == "__main__":
    run()
