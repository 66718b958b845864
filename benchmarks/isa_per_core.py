"""Per-core speed of each CPU code path of our kernel (scalar, generic, AVX2, AVX-512), on one thread.

Measured in process CPU time rather than wall time, so that other jobs sharing the cores disturb it less
than the main benchmark (it still shares caches and memory bandwidth with them). Workloads as in
throughput.py (W1/W2/W3 photos), quality 75, 4:4:4, validate=False (the kernel alone plus the output
allocation).

Usage:
    python benchmarks/isa_per_core.py [--workloads W1,W2] [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from workloads import WORKLOADS, as_dtype, make_batch  # noqa: E402


def cpu_time(fn, runs: int) -> float:
    fn()
    times = []
    for _ in range(runs):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return statistics.median(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workloads", default="W1,W2,W3")
    ap.add_argument("--quick", action="store_true", help="small batches, one run")
    args = ap.parse_args(argv)
    import nnjpeg_cuda
    from nnjpeg_cuda import _C

    torch.set_num_threads(1)
    print("| workload | dtype | pass | " + " | ".join(_C.cpu_isas()) + " |")
    print("| --- | --- | --- |" + " ---: |" * len(_C.cpu_isas()))
    try:
        for wl in args.workloads.split(","):
            u8 = make_batch(wl, quick=args.quick)
            n, _, h, w = u8.shape
            for dtype in ("float32", "uint8"):
                x = as_dtype(u8, dtype)
                passes = {"fwd": lambda: nnjpeg_cuda.roundtrip(x, 75, validate=False)}
                if dtype == "float32":
                    upstream = torch.ones_like(x)

                    def fwd_bwd():
                        p = x.detach().requires_grad_(True)
                        y = nnjpeg_cuda.roundtrip(p, 75, grad="ste", validate=False)
                        y.backward(upstream)
                    passes["fwd+bwd ste"] = fwd_bwd
                for name, fn in passes.items():
                    cells = []
                    for isa in _C.cpu_isas():
                        _C.set_cpu_isa(isa)
                        cells.append(f"{n * h * w / cpu_time(fn, 1 if args.quick else 5) / 1e6:.0f}")
                    print(f"| {wl} | {dtype} | {name} | " + " | ".join(cells) + " |", flush=True)
    finally:
        _C.set_cpu_isa("auto")
    print("\nMPixel/s per core (process CPU time, 1 thread)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
