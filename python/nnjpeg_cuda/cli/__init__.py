"""The ``nnjpeg-cuda`` command line (also ``python -m nnjpeg_cuda``).

Each sub-command lives in its own module of this package, which defines ``register(subparsers)``: it
adds its parser and sets ``func`` (called with the parsed arguments, returns the exit code).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import List, Optional

# Sub-command modules, in the order --help lists them. A module that is absent is skipped.
COMMANDS = ("compress", "tables", "finetune", "evaluate")


class CommandError(Exception):
    """A user-facing error: printed without a traceback, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    from .._version import __version__

    parser = argparse.ArgumentParser(prog="nnjpeg-cuda", description="JPEG-style defence against adversarial "
                                     "examples: compress images, design tables, fine-tune, evaluate.")
    parser.add_argument("--version", action="version", version=f"nnjpeg-cuda {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{name}":
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except CommandError as exc:
        print(f"nnjpeg-cuda {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
