"""``nnjpeg-cuda compress``: round-trip image files or folders and write the results as PNG.

Example:
    nnjpeg-cuda compress photos/ -q 50 -o out/              # out/<name>.png for every image in photos/
    nnjpeg-cuda compress cat.jpg -q 90 50 10 --compare      # compressed/cat_q90.png, ..., cat_compare.png

Exit codes: 0 all images done; 1 some images could not be read (the others are done); 2 bad arguments,
missing files or folders, or a folder without images.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np

from . import CommandError
from ._images import Source, UnreadableImage, find_images, pillow, psnr, read_image, write_png
from .tables import quality_arg, resolve_table

SMALL_PANEL = 128  # panels narrower than this are enlarged (nearest neighbour) in the comparison picture


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "compress", help="round-trip image files or folders and write PNGs",
        description="JPEG-style round trip of images in any format Pillow reads; writes the decoded images as "
                    "PNG (lossless, so the file shows exactly what the codec produced). Alpha channels are "
                    "kept unchanged. Exit codes: 0 done, 1 some images unreadable, 2 bad arguments or paths.",
        epilog="example: nnjpeg-cuda compress photos/ -q 90 50 10 --compare -o out/")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and/or folders of images")
    p.add_argument("-o", "--output", default="compressed", metavar="DIR",
                   help="output folder, created if needed (default: %(default)s)")
    p.add_argument("-q", "--quality", type=quality_arg, nargs="+", default=[50], metavar="Q",
                   help="IJG quality 1..100; several values write one PNG per quality (default: 50)")
    p.add_argument("-t", "--table", default="standard", metavar="TABLE",
                   help="quantization table: a preset name (see 'nnjpeg-cuda tables --list') or a table JSON "
                        "file (default: %(default)s)")
    p.add_argument("--subsampling", choices=("4:4:4", "4:2:0"), default="4:4:4",
                   help="chroma subsampling (default: %(default)s)")
    p.add_argument("--color", choices=("ycbcr", "rgb"), default="ycbcr",
                   help="code YCbCr (JPEG) or the RGB planes directly (default: %(default)s)")
    p.add_argument("--compare", action="store_true",
                   help="also write <name>_compare.png: the original beside each result, with its PSNR")
    p.add_argument("-r", "--recursive", action="store_true", help="look for images in sub-folders too")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                   help="where to run (default: auto = cuda when available)")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no per-image lines")
    p.set_defaults(func=run)


def _device(name: str) -> str:
    import torch

    from .. import cuda_built

    gpu = torch.cuda.is_available() and cuda_built()
    if name == "cuda" and not gpu:
        raise CommandError("--device cuda: no CUDA GPU available or the CUDA kernels were not built")
    return ("cuda" if gpu else "cpu") if name == "auto" else name


def _outputs(sources: Sequence[Source], out_dir: Path, qualities: Sequence[int]) -> List[Dict[int, Path]]:
    """Output path per source and quality; CommandError when two inputs would write the same file."""
    plans, seen = [], {}
    for src in sources:
        if len(qualities) == 1:
            plan = {qualities[0]: out_dir / f"{src.name}.png"}
        else:
            plan = {q: out_dir / f"{src.name}_q{q}.png" for q in qualities}
        for path in plan.values():
            if path in seen and seen[path] != src.path:
                raise CommandError(f"{seen[path]} and {src.path} would both be written to {path}; "
                                   "compress them separately or rename one")
            seen[path] = src.path
        plans.append(plan)
    return plans


def side_by_side(original: np.ndarray, results: Sequence[np.ndarray], labels: Sequence[str]):
    """A PIL image: the original and each result side by side, each under its label."""
    image_module = pillow()
    from PIL import ImageDraw, ImageFont

    h, w = original.shape[:2]
    scale = max(1, -(-SMALL_PANEL // w))  # enlarge tiny images (e.g. 32x32) so they can be seen
    font_size = max(12, min(28, w * scale // 14))
    try:
        font = ImageFont.load_default(size=font_size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        font = ImageFont.load_default()
    gap, strip = 6, font_size + 10
    panels = [original, *results]
    canvas = image_module.new("RGB", (len(panels) * (w * scale + gap) - gap, h * scale + strip), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (pixels, label) in enumerate(zip(panels, labels)):
        panel = image_module.fromarray(pixels).convert("RGB")
        if scale > 1:
            panel = panel.resize((w * scale, h * scale), image_module.Resampling.NEAREST)
        x = i * (w * scale + gap)
        canvas.paste(panel, (x, strip))
        draw.text((x + 2, 4), label, fill="black", font=font)
    return canvas


def _progress(items, enabled: bool):
    if not enabled:
        return items, print
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is in the cli and test extras
        return items, print
    bar = tqdm(items, unit="image", desc="compress", file=sys.stderr)
    return bar, tqdm.write


def run(args: argparse.Namespace) -> int:
    import torch

    import nnjpeg_cuda

    sources = find_images(args.inputs, args.recursive)
    table = resolve_table(args.table)
    device = _device(args.device)
    qualities = list(dict.fromkeys(args.quality))  # unique, in the given order
    out_dir = Path(args.output)
    plans = _outputs(sources, out_dir, qualities)
    items, say = _progress(list(zip(sources, plans)), enabled=not args.quiet and len(sources) > 1)
    if args.quiet:
        say = lambda *a, **k: None  # noqa: E731
    failed, scores = [], []
    for src, plan in items:
        try:
            pixels, alpha = read_image(src.path)
        except UnreadableImage as exc:
            print(f"nnjpeg-cuda compress: {exc}", file=sys.stderr)
            failed.append(src.path)
            continue
        x = torch.from_numpy(pixels).to(device)
        levels = nnjpeg_cuda.roundtrip_multi(x, qualities, table=table, subsampling=args.subsampling,
                                             color=args.color, layout="HWC").cpu().numpy()
        labels = ["original"]
        for q, decoded in zip(qualities, levels):
            write_png(plan[q], decoded, alpha)
            score = psnr(pixels, decoded)
            scores.append(score)
            labels.append(f"q={q}  PSNR {score:.2f} dB")
            say(f"{src.path} -> {plan[q]}  (q={q}, PSNR {score:.2f} dB)")
        if args.compare:
            compare_path = out_dir / f"{src.name}_compare.png"
            compare_path.parent.mkdir(parents=True, exist_ok=True)
            side_by_side(pixels, list(levels), labels).save(compare_path)
            say(f"{src.path} -> {compare_path}  (comparison)")
    done = len(sources) - len(failed)
    if not args.quiet:
        mean = f", mean PSNR {np.mean(scores):.2f} dB" if scores else ""
        print(f"compressed {done} of {len(sources)} images into {out_dir}{mean}")
    if failed:
        print(f"nnjpeg-cuda compress: {len(failed)} image(s) could not be read", file=sys.stderr)
        return 1
    return 0

