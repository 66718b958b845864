"""``nnjpeg-cuda tables``: print and plot quantization tables (presets, table files, or designed from images).

Example:
    nnjpeg-cuda tables --list                                  # preset names
    nnjpeg-cuda tables standard nn -q 50 --plot tables.png     # the steps the codec uses at quality 50
    nnjpeg-cuda tables --design deepn --images photos/ --save my_table.json

Exit codes: 0 done; 2 unknown table, unreadable table file, or bad arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import List, Tuple, Union

import torch

from . import CommandError

DESIGN_METHODS = ("deepn", "two_band")  # "model" needs a classifier: use tables.design from Python


def quality_arg(text: str) -> int:
    """argparse type: an IJG quality, an int in 1..100."""
    try:
        q = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"quality must be a whole number in 1..100, got {text!r}") from None
    if not 1 <= q <= 100:
        raise argparse.ArgumentTypeError(f"quality must be in 1..100, got {q}")
    return q


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return n


def _read_table_file(path: Path) -> torch.Tensor:
    from .. import tables

    loader = getattr(tables, "load_table_file", None)
    try:
        if loader is not None:
            return loader(path)
        doc = json.loads(path.read_text())
        table = torch.tensor(doc["table"] if isinstance(doc, dict) else doc, dtype=torch.float32)
        return tables.get_base(table)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CommandError(f"cannot read table file {path}: {exc}") from exc


def save_table(path: str, table: torch.Tensor, **meta) -> None:
    """Write a (2, 8, 8) table as JSON, ``{"table": [[[...]]], **meta}``: the format TABLE arguments read."""
    doc = dict(meta, table=[[[int(v) if float(v).is_integer() else float(v) for v in row] for row in plane]
                            for plane in table.tolist()])
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(doc, indent=1) + "\n")


def resolve_table(spec: str) -> Union[str, torch.Tensor]:
    """A ``--table``/TABLE argument: a preset name, or a JSON table file ({"table": [2][8][8]})."""
    from .. import tables

    if spec in tables.presets():
        return spec
    path = Path(spec)
    if path.is_file():
        return _read_table_file(path)
    raise CommandError(f"unknown table {spec!r}: not a preset ({', '.join(tables.presets())}) and not a file")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "tables", help="print and plot quantization tables",
        description="Print (and optionally plot) luma/chroma quantization tables: presets, table JSON files, "
                    "or a table designed from your images. Without -q the base tables are shown; with -q, "
                    "the steps the codec uses at that IJG quality.",
        epilog="example: nnjpeg-cuda tables standard nn -q 50 --plot tables.png")
    p.add_argument("tables", nargs="*", metavar="TABLE",
                   help="preset names or table JSON files (default: standard, unless --design is given)")
    p.add_argument("-q", "--quality", type=quality_arg, metavar="Q", help="scale the tables to IJG quality Q")
    p.add_argument("--list", action="store_true", help="list the preset names and exit")
    p.add_argument("--json", action="store_true", help="print JSON instead of aligned text")
    p.add_argument("--plot", metavar="FILE.png", help="write a heat-map picture of the tables")
    p.add_argument("--design", choices=DESIGN_METHODS, metavar="METHOD",
                   help=f"design a table from --images with tables.design: {', '.join(DESIGN_METHODS)}")
    p.add_argument("--images", metavar="PATH",
                   help="images for --design: a folder (any format Pillow reads) or a .npz/.npy array (N, H, W, 3)")
    p.add_argument("--limit", type=_positive_int, default=None, metavar="N", help="use at most N images for --design")
    p.add_argument("--save", metavar="FILE.json", help="write the designed table as JSON (usable as TABLE)")
    p.set_defaults(func=run)


def _array_images(path: Path) -> torch.Tensor:
    import numpy as np

    try:
        data = np.load(path)
        if isinstance(data, np.lib.npyio.NpzFile):
            key = "x" if "x" in data.files else data.files[0]
            data = data[key]
    except (OSError, ValueError, IndexError) as exc:
        raise CommandError(f"cannot read images from {path}: {exc}") from exc
    if data.ndim != 4 or data.shape[-1] != 3:
        raise CommandError(f"{path}: expected an array of RGB images (N, H, W, 3), got shape {data.shape}")
    return torch.from_numpy(np.ascontiguousarray(data)).permute(0, 3, 1, 2)


def _design(args) -> Tuple[str, torch.Tensor]:
    from .. import tables
    from ._images import UnreadableImage, find_images, read_image

    if not hasattr(tables, "design"):
        raise CommandError("this version of nnjpeg_cuda has no table designer (tables.design)")
    if not args.images:
        raise CommandError("--design needs --images PATH (a folder of images or a .npz/.npy array)")
    path = Path(args.images)
    if path.suffix in (".npz", ".npy") and path.is_file():
        batches = _array_images(path)[: args.limit]
    else:
        sources = find_images([args.images])[: args.limit]
        batches = []
        for src in sources:
            try:
                pixels, _ = read_image(src.path)
            except UnreadableImage as exc:
                print(f"nnjpeg-cuda tables: skipped: {exc}", file=sys.stderr)
                continue
            if pixels.ndim == 2:
                pixels = pixels[:, :, None].repeat(3, axis=2)
            batches.append(torch.from_numpy(pixels).permute(2, 0, 1).unsqueeze(0))
        if not batches:
            raise CommandError(f"no readable images in {args.images}")
    stats = tables.analyze(batches, progress=isinstance(batches, list))
    table = tables.design(stats, method=args.design)
    if args.save:
        save_table(args.save, table, method=args.design, images=str(args.images))
        print(f"wrote {args.save}", file=sys.stderr)
    return f"designed ({args.design})", table


def _rows(name: str, table: torch.Tensor, quality) -> dict:
    from .. import tables

    steps = tables.scale(tables.get_base(table), quality) if quality is not None else tables.get_base(table)
    as_list = [[[int(v) if float(v).is_integer() else round(float(v), 3) for v in row] for row in plane]
               for plane in steps.tolist()]
    return {"name": name, "quality": quality, "luma": as_list[0], "chroma": as_list[1]}


def format_text(entry: dict) -> str:
    """Aligned text of one table entry (from :func:`_rows`)."""
    what = "base table" if entry["quality"] is None else f"steps at quality {entry['quality']}"
    lines = [f"{entry['name']}: {what}"]
    for plane in ("luma", "chroma"):
        lines.append(f"  {plane}")
        lines += ["    " + " ".join(f"{v:>5g}" for v in row) for row in entry[plane]]
    return "\n".join(lines)


def plot(entries: List[dict], path: str) -> None:
    """Heat maps (rows: tables; columns: luma, chroma) with the step written in each cell."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    vmax = max(max(max(r) for r in e[p]) for e in entries for p in ("luma", "chroma"))
    fig, axes = plt.subplots(len(entries), 2, figsize=(7.5, 3.3 * len(entries)), squeeze=False,
                             layout="constrained")
    for row, entry in zip(axes, entries):
        for col, (ax, plane) in enumerate(zip(row, ("luma", "chroma"))):
            values = entry[plane]
            image = ax.imshow(values, cmap="viridis", vmin=1, vmax=vmax)
            for u in range(8):
                for v in range(8):
                    ax.text(v, u, f"{values[u][v]:g}", ha="center", va="center", fontsize=7,
                            color="white" if values[u][v] < 0.6 * vmax else "black")
            q = "" if entry["quality"] is None else f", q={entry['quality']}"
            ax.set_title(f"{entry['name']} {plane}{q}", fontsize=10)
            ax.set_xticks(range(8))
            ax.set_yticks(range(8))
            ax.set_xlabel("horizontal frequency v")
            if col == 0:
                ax.set_ylabel("vertical frequency u")
        fig.colorbar(image, ax=list(row), shrink=0.8, label="quantization step")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    from .. import tables

    if args.list:
        print("\n".join(tables.presets()))
        return 0
    if args.save and not args.design:
        raise CommandError("--save writes a designed table: use it with --design")
    specs = args.tables or ([] if args.design else ["standard"])
    named = [(spec, resolve_table(spec)) for spec in specs]
    if args.design:
        named.append(_design(args))
    entries = [_rows(name, table, args.quality) for name, table in named]
    if args.json:
        print(json.dumps(entries))
    else:
        print("\n\n".join(format_text(e) for e in entries))
    if args.plot:
        plot(entries, args.plot)
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0
