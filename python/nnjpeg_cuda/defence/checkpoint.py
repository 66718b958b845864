"""Safe, atomic, checksummed files for model weights, training state and ensembles.

File layout: one header line ``NNJPEGCKPT1 <sha256 hex> <payload length>\\n`` followed by the payload,
a ``torch.save`` archive of plain data only (tensors, dicts, lists, str, int, float, bool, None).

- Writing goes to a temporary file in the target folder, is flushed and fsync'ed, then ``os.replace``'d
  over the target: a reader (or a process killed with SIGKILL mid-write) sees the old file or the new
  one, never a mix.
- Reading checks the header, the length and the SHA-256 before unpickling anything, so a torn or
  corrupted file is refused with :class:`CheckpointError`, and then loads with ``weights_only=True``
  (no arbitrary code runs, whatever the file holds).

Example:
    >>> import torch, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "a.ckpt")
    >>> save_file(path, {"w": torch.ones(2)}, step=3)
    >>> load_file(path)["meta"]["step"]
    3
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path
from typing import Any, Dict, Union

import torch

__all__ = ["CheckpointError", "save_file", "load_file", "MAGIC"]

MAGIC = b"NNJPEGCKPT1"
PathLike = Union[str, os.PathLike]


class CheckpointError(ValueError):
    """A checkpoint file is missing, truncated, corrupted or not in this format."""


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def save_file(path: PathLike, tensors: Dict[str, Any], **meta: Any) -> None:
    """Write ``{"tensors": tensors, "meta": meta}`` atomically with a checksum.

    Args:
        path: target file; its folder is created.
        tensors: a dict of tensors (or nested plain containers of them, e.g. an optimizer state dict).
        **meta: plain metadata (str, int, float, bool, None, lists, dicts, tensors).

    Example:
        >>> save_file("/tmp/x.ckpt", {"w": torch.zeros(1)}, note="hi")   # doctest: +SKIP
    """
    if not isinstance(tensors, dict):
        raise TypeError(f"tensors must be a dict, got {type(tensors).__name__}")
    buf = io.BytesIO()
    cpu = _to_cpu(tensors)
    torch.save({"tensors": cpu, "meta": _to_cpu(meta)}, buf)
    payload = buf.getvalue()
    header = MAGIC + b" " + hashlib.sha256(payload).hexdigest().encode() + b" " + str(len(payload)).encode() + b"\n"
    _atomic_write(Path(path), header + payload)


def _to_cpu(obj):
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def load_file(path: PathLike, map_location: Union[str, torch.device, None] = "cpu") -> Dict[str, Any]:
    """Read a file written by :func:`save_file`: ``{"tensors": ..., "meta": ...}``.

    Args:
        path: the file.
        map_location: where tensors go (default CPU).

    Raises:
        CheckpointError: the file is missing, not in this format, truncated (a torn write) or its
            checksum does not match.
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint {str(p)!r} does not exist")
    data = p.read_bytes()
    nl = data.find(b"\n", 0, 200)
    parts = data[:nl].split(b" ") if nl > 0 else []
    if len(parts) != 3 or parts[0] != MAGIC:
        raise CheckpointError(f"{p} is not an nnjpeg_cuda checkpoint (missing {MAGIC.decode()} header); "
                              "plain torch files can be loaded with torch.load(weights_only=True)")
    try:
        length = int(parts[2])
    except ValueError:
        raise CheckpointError(f"{p}: corrupted header") from None
    payload = data[nl + 1:]
    if len(payload) != length:
        raise CheckpointError(f"{p} is truncated or torn: {len(payload)} of {length} payload bytes; "
                              "it was not written completely (use an earlier checkpoint or start again)")
    if hashlib.sha256(payload).hexdigest().encode() != parts[1]:
        raise CheckpointError(f"{p} is corrupted: SHA-256 checksum mismatch")
    obj = torch.load(io.BytesIO(payload), map_location=map_location, weights_only=True)
    if not isinstance(obj, dict) or "tensors" not in obj or "meta" not in obj:
        raise CheckpointError(f"{p}: unexpected payload layout")
    return obj
