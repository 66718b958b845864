"""Throughput of nnjpeg_cuda against every peer, side by side (issue 3).

Runs each contestant (contestants.py) on each workload (workloads.py) and dtype, measures the machine's
memory-copy bandwidth in the same run, and prints a markdown table: images/s, MPixel/s, spread of the
repeated runs, ratio to our forward kernel, and fraction of the memory-bound limit (read the input once,
write the output once, at the measured copy bandwidth). Writes a JSON file and a PNG bar chart.

Usage:
    python benchmarks/throughput.py                      # full run (a few minutes on 2 cores)
    python benchmarks/throughput.py --quick --json out.json   # CI smoke run, seconds
    python benchmarks/throughput.py --workloads W1 --dtypes float32 --only ours
    python benchmarks/throughput.py --workloads W1,W2 --dtypes uint8 --only "codec only"   # peers at their best

Pillow and OpenCV appear twice: "tensor in/out" rows time the conversions a PyTorch user pays, "codec only"
rows time encode + decode alone on the library's native input prepared beforehand (peers.py). Both at 4:4:4
and 4:2:0; the "ours / OpenCV's best" targets compare like with like (same subsampling) against OpenCV's
fastest row of any kind and say which row that was.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from typing import Dict, List

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from contestants import Skip, build_contestants  # noqa: E402
from measure import copy_bandwidth, time_alternating, time_call  # noqa: E402
from reporting import (bar_chart, cpu_targets, gpu_targets, markdown_table, peer_comparisons,  # noqa: E402
                       peer_table, targets_table, write_json)
from workloads import WORKLOADS, as_dtype, make_batch  # noqa: E402

DTYPES = ("float32", "uint8")


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    ap.add_argument("--workloads", default="W1,W2,W3", help="comma-separated subset of W1,W2,W3")
    ap.add_argument("--dtypes", default="float32,uint8", help="comma-separated subset of float32,uint8")
    ap.add_argument("--only", default="", help="run only contestants whose name contains this text")
    ap.add_argument("--quick", action="store_true", help="tiny batches and one or two runs (CI smoke test)")
    ap.add_argument("--budget", type=float, default=None, help="seconds of timed runs per case (default 1.0)")
    ap.add_argument("--max-pass", type=float, default=2.0,
                    help="time slow contestants on the first images of the batch, so that one pass takes about "
                         "this many seconds (default 2)")
    ap.add_argument("--json", default=None, help="write results here (default: benchmarks/throughput.json, "
                                                 "throughput_cuda.json with --device cuda, for a full run; nothing "
                                                 "for --quick or a partial run)")
    ap.add_argument("--plot", default=None, help="write the bar chart here (default: benchmarks/throughput.png, "
                                                 "throughput_cuda.png with --device cuda, for a full run; nothing "
                                                 "for --quick or a partial run)")
    args = ap.parse_args(argv)
    args.workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    args.dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    for w in args.workloads:
        if w not in WORKLOADS:
            ap.error(f"unknown workload {w!r}; choose from {', '.join(WORKLOADS)}")
    for d in args.dtypes:
        if d not in DTYPES:
            ap.error(f"unknown dtype {d!r}; choose from {', '.join(DTYPES)}")
    if args.device not in ("cpu", "cuda"):
        ap.error("--device must be cpu or cuda")
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: no CUDA device available")
    if args.device == "cuda" and not _cuda_kernels_built():  # "ours" would time the PyTorch reference
        ap.error("--device cuda: this build of nnjpeg_cuda has no CUDA kernels; rebuild it with NNJPEG_CUDA=ON")
    full = (not args.quick and not args.only and args.workloads == list(WORKLOADS)
            and args.dtypes == list(DTYPES))
    if full:  # a partial run (--only, --workloads, --dtypes) must not overwrite the recorded full-run files
        stem = "throughput" if args.device == "cpu" else "throughput_cuda"  # the GPU run keeps the CPU record
        args.json = args.json or os.path.join(HERE, stem + ".json")
        args.plot = args.plot or os.path.join(HERE, stem + ".png")
    if args.budget is None:
        args.budget = 0.02 if args.quick else 1.0
    return args


def _cuda_kernels_built() -> bool:
    import nnjpeg_cuda

    return nnjpeg_cuda.cuda_built()


def _versions() -> Dict[str, str]:
    import importlib

    out = {"python": platform.python_version()}
    for mod, key in (("torch", "torch"), ("numpy", "numpy"), ("nnjpeg_cuda", "nnjpeg_cuda"), ("PIL", "pillow"),
                     ("cv2", "opencv"), ("kornia", "kornia"), ("art", "adversarial-robustness-toolbox"),
                     ("torchvision", "torchvision")):
        try:
            out[key] = str(importlib.import_module(mod).__version__)
        except Exception:
            out[key] = "not installed"
    try:
        from PIL import features

        out["libjpeg-turbo (Pillow)"] = str(features.version("libjpeg_turbo"))
    except Exception:
        pass
    return out


def _machine(device: str) -> Dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except Exception:
        pass
    info = {"cpu": cpu, "cores": str(os.cpu_count()), "torch_threads": str(torch.get_num_threads()),
            "platform": platform.platform(), "nice": str(os.nice(0))}
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name()
    try:
        from nnjpeg_cuda import _C

        info["cpu_kernel_isa"] = _C.cpu_isa() if hasattr(_C, "cpu_isa") else "scalar"
    except Exception:
        pass
    return info


def _load() -> str:
    try:
        return "load average %.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        return "unknown"


def _timed_slice(c, batch: torch.Tensor, args):
    """The batch, or for a contestant whose pass would take over --max-pass seconds, its first images.

    Throughput is per image, so a slow contestant (kornia, the reference on W3) is timed on a prefix of the
    batch that takes about --max-pass seconds (estimated from a second probe pass over 1/16 of the batch); the
    table's "images" column says how many were timed.
    """
    n = batch.shape[0]
    if args.quick or n < 16:
        return batch, n
    probe = batch[: n // 16]
    fn = c.prepare(probe, args.device)
    fn()  # first call: lazy initialisation, not representative
    start = time.perf_counter()
    fn()
    estimate = (time.perf_counter() - start) * n / probe.shape[0]
    if estimate <= args.max_pass:
        return batch, n
    keep = max(probe.shape[0], int(n * args.max_pass / estimate))
    return batch[:keep], keep


# The ratio targets' pairs (reference, other): each pair is also timed in alternation, after the rows.
PAIRS = (("ours fwd", "ours fwd+bwd ste"), ("ours fwd", "ours multi K=5"),
         ("ours fwd, out= (reused output)", "ours multi K=5, out= (reused output)"))


def _paired(contestants, wl_name: str, dtype: str, batch: torch.Tensor, args) -> List[Dict]:
    """Our ratio targets' pairs on one workload, timed in alternation (measure.time_alternating).

    The rows time each contestant on its own, up to minutes apart; on a VM whose speed drifts by 20% within
    the hour, a ratio of two rows then says as much about the drift as about the kernels.
    """
    by_name = {c.name: c for c in contestants}
    out = []
    for ref_name, other_name in PAIRS:
        if ref_name not in by_name or other_name not in by_name or dtype not in by_name[other_name].dtypes:
            continue
        try:
            fns = {name: by_name[name].prepare(batch, args.device) for name in (ref_name, other_name)}
        except Skip:
            continue
        t = time_alternating(fns, args.device, rounds=3 if args.quick else 15, warmup=1 if args.quick else 2)
        out.append({"workload": wl_name, "dtype": dtype, "reference": ref_name, "contestant": other_name,
                    "time_ratio": t[other_name] / t[ref_name], "seconds": t})
    return out


def run(args) -> Dict:
    from tqdm import tqdm

    contestants = [c for c in build_contestants(args.device) if args.only in c.name]
    load_before = _load()
    bandwidth = copy_bandwidth(args.device, megabytes=32 if args.quick else 256)
    rows: List[Dict] = []
    paired: List[Dict] = []
    cases = [(w, d, c) for w in args.workloads for d in args.dtypes for c in contestants]
    last_case = {(w, d): i for i, (w, d, _) in enumerate(cases)}
    batches: Dict = {}
    uint8_batch: Dict = {}
    bar = tqdm(cases, desc="benchmark", unit="case", file=sys.stderr)
    for index, (wl_name, dtype, c) in enumerate(bar):
        bar.set_postfix_str(f"{wl_name} {dtype} {c.name}")
        if (wl_name, dtype) not in batches:
            if wl_name not in uint8_batch:
                uint8_batch.clear()
                uint8_batch[wl_name] = make_batch(wl_name, quick=args.quick)
            batches.clear()
            batches[(wl_name, dtype)] = as_dtype(uint8_batch[wl_name], dtype)
        batch = batches[(wl_name, dtype)]
        n, ch, h, w = batch.shape
        row = {"workload": wl_name, "dtype": dtype, "contestant": c.name, "height": h, "width": w,
               "library": c.library, "subsampling": c.subsampling, "native": c.native, "group": c.group}
        try:
            if dtype not in c.dtypes:
                raise Skip(f"takes {'/'.join(c.dtypes)} input")
            batch, n = _timed_slice(c, batch, args)
            fn = c.prepare(batch, args.device)
            # On a VM a fresh allocation sometimes takes host-level page faults: calls 2-5x slower for about a
            # second after another contestant freed gigabytes, and in short bursts later. A second of warm-up
            # and up to 25 runs keep both out of the median.
            t = time_call(fn, args.device, budget_s=args.budget, min_runs=2 if args.quick else 3,
                          max_runs=2 if args.quick else 25, warmup=0 if args.quick else 2,
                          warmup_s=0.0 if args.quick else 1.0)
        except Skip as skip:
            rows.append({**row, "status": "skipped", "images": n, "reason": str(skip)})
        else:
            bytes_per_image = ch * h * w * batch.element_size() * (1 + c.levels) * (2 if c.backward else 1)
            ips = n / t.median
            rows.append({**row, "status": "ok", "images": n, "seconds": t.median, "seconds_min": t.low,
                         "seconds_max": t.high, "runs": t.runs, "spread": t.spread, "cpu_per_wall": t.cpu_per_wall,
                         "images_per_s": ips, "mpix_per_s": ips * h * w / 1e6, "bytes_per_image": bytes_per_image,
                         "fraction_of_limit": ips / (bandwidth / bytes_per_image), "ours": c.ours})
        if dtype == "float32" and last_case[(wl_name, dtype)] == index:  # the workload's last float32 case
            bar.set_postfix_str(f"{wl_name} float32 ratio pairs, alternating")
            paired += _paired(contestants, wl_name, dtype, batches[(wl_name, dtype)], args)
    for r in rows:  # ratio to our forward kernel on the same workload and dtype
        ref = next((o for o in rows if o["workload"] == r["workload"] and o["dtype"] == r["dtype"]
                    and o["status"] == "ok" and o.get("ours")), None)
        if r["status"] == "ok" and ref:
            r["ratio_to_ours"] = r["images_per_s"] / ref["images_per_s"]
    return {"command": " ".join([os.path.basename(sys.executable)] + sys.argv), "quick": args.quick,
            "device": args.device, "machine": _machine(args.device), "versions": _versions(),
            "load_before": load_before, "load_after": _load(), "time_utc": time.strftime("%Y-%m-%d %H:%M UTC",
                                                                                         time.gmtime()),
            "copy_bandwidth_gb_per_s": bandwidth / 1e9, "quality": 75, "results": rows,
            "paired": paired,
            "targets": cpu_targets(rows, paired=paired) if args.device == "cpu" else gpu_targets(rows),
            "peer_comparisons": peer_comparisons(rows)}


def main(argv=None) -> int:
    args = parse_args(argv)
    out = run(args)
    print(f"\n{out['machine']['cpu']}, {out['machine']['cores']} cores, torch threads "
          f"{out['machine']['torch_threads']}; {out['load_before']} (before), {out['load_after']} (after)")
    bw = out["copy_bandwidth_gb_per_s"]
    print(f"memory copy: {bw:.1f} GB/s read+write -> limit {bw * 1e9 / 24 / 1e6:,.0f} MPixel/s for float32 RGB, "
          f"{bw * 1e9 / 6 / 1e6:,.0f} for uint8 (in + out)\n")
    print(markdown_table(out["results"]))
    if out["peer_comparisons"]:
        print("\nOurs against each peer's best row, same chroma subsampling (\"any input\": over every row of the "
              "library, tensor in/out and codec only, any dtype for ours float32, uint8 rows for ours uint8; "
              "\"tensor, same dtype\": the like-for-like PyTorch call):\n" + peer_table(out["peer_comparisons"]))
    if out["targets"]:
        print(f"\nTargets (issue 3, {'CPU' if args.device == 'cpu' else 'GPU'}):\n" + targets_table(out["targets"]))
    if args.json:
        write_json(args.json, out)
        print(f"\nJSON: {args.json}")
    if args.plot:
        where = out["machine"].get("gpu") or f"{out['machine']['cores']} CPU cores"
        bar_chart(out["results"], args.plot, f"JPEG round trip, quality 75, {where}")
        print(f"chart: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
