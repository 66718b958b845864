"""A/B of the "ste" backward's three routes on the CPU: recomputing the round trip, from the saved output, and
from the output with the forward's clamp summary and pass masks (the default).

Times the forward alone and forward+backward ("ste", 4:4:4, quality 75) through ``nnjpeg_cuda.roundtrip`` on
float32 photos (workload W1's crops, the first ``--images`` of them), routed in turn to
``nnjpeg::roundtrip_backward`` (recompute), to ``nnjpeg::roundtrip_backward_ste`` after the plain forward, and
to ``nnjpeg::roundtrip_ste`` + ``nnjpeg::roundtrip_backward_ste`` with its summary and masks. Reports the
medians of wall and process CPU time and the issue-3 ratio forward / (forward + backward) (target >= 0.5), as
a markdown table. Routes are measured one after the other: on a guest whose speed drifts, compare them with
``--runs`` high and more than once.

Usage:
    python benchmarks/ste_backward_ab.py [--threads 1,2] [--images 64] [--runs 9]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import nnjpeg_cuda as nj  # noqa: E402
from nnjpeg_cuda import ops  # noqa: E402
from workloads import make_batch  # noqa: E402


def _median_times(fn, runs: int):
    fn()
    wall, cpu = [], []
    for _ in range(runs):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall) * 1e3, statistics.median(cpu) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2", help="comma-separated torch thread counts")
    parser.add_argument("--images", type=int, default=64, help="images of W1 (224x224) per batch")
    parser.add_argument("--runs", type=int, default=9, help="timed runs per measurement (median)")
    args = parser.parse_args()

    x = make_batch("W1")[: args.images].float().div(255).contiguous()
    g = torch.randn_like(x)
    from_output, summarizes = ops.ste_from_output, ops._summarizes
    routes = (("recompute", lambda *a: False, lambda *a: False),
              ("from the output", from_output, lambda *a: False),
              ("from the summary and pass masks (default)", from_output, summarizes))

    def forward():
        with torch.no_grad():
            nj.roundtrip(x, 75)

    def forward_backward():
        nj.roundtrip(x.detach().requires_grad_(True), 75, grad="ste").backward(g)

    print(f"{tuple(x.shape)} float32, quality 75, 4:4:4, torch {torch.__version__}\n")
    print("| threads | backward | fwd wall ms | fwd+bwd wall ms | fwd cpu ms | fwd+bwd cpu ms | fwd/(fwd+bwd) wall | cpu |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    try:
        for threads in (int(t) for t in args.threads.split(",")):
            torch.set_num_threads(threads)
            for name, route, summary in routes:
                ops.ste_from_output, ops._summarizes = route, summary
                f1 = _median_times(forward, args.runs)
                fb = _median_times(forward_backward, args.runs)
                f2 = _median_times(forward, args.runs)
                fw, fc = min(f1[0], f2[0]), min(f1[1], f2[1])
                print(f"| {threads} | {name} | {fw:.1f} | {fb[0]:.1f} | {fc:.1f} | {fb[1]:.1f} | {fw / fb[0]:.2f} | "
                      f"{fc / fb[1]:.2f} |", flush=True)
    finally:
        ops.ste_from_output, ops._summarizes = from_output, summarizes


if __name__ == "__main__":
    main()
