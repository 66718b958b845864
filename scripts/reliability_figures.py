"""Regenerate the memory and leak figures of docs/RELIABILITY.md (markdown tables and docs/img/reliability.png).

Runs the same child processes as tests/test_limits.py (peak resident memory of one call against its output)
and tests/test_leaks.py (resident memory and time per call over many calls), and prints markdown tables.

Usage:
    python scripts/reliability_figures.py [--giant] [--png docs/img/reliability.png]

``--giant`` adds the uint8 (1, 1, 46341, 46341) image (2^31 + 4633 pixels; needs about 5 GiB free).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import test_leaks  # noqa: E402
import test_limits  # noqa: E402

MIB = 2**20


def _child(code: str, arg) -> object:
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(arg)], capture_output=True, text=True, timeout=1800)
    if proc.returncode:
        raise SystemExit(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def memory_table(giant: bool):
    cases = list(test_limits.MEMORY_CASES)
    if giant:
        cases.append(((1, 1, 46341, 46341), "uint8", "4:4:4", 1, False))
    specs = [dict(shape=list(s), dtype=d, subsampling=sub, levels=k, channels_last=cl) for s, d, sub, k, cl in cases]
    results = _child(test_limits._CHILD, specs)
    rows = []
    print("| input | dtype | subsampling | levels | input MiB | output MiB | 4:2:0 workspace MiB | peak RSS growth MiB "
          "| growth / (output + workspace) | test bound MiB |")
    print("| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for (shape, dtype, sub, k, cl), r in zip(cases, results):
        ws = test_limits._workspace_bytes(shape, k, sub, dtype)
        growth = (r["peak_kib"] - r["before_kib"]) * 1024
        bound = test_limits._allowed_growth(shape, dtype, sub, k, r["out_bytes"])
        name = "x".join(map(str, shape)) + (" channels_last" if cl else "")
        print(f"| {name} | {dtype} | {sub} | {k} | {r['in_bytes'] / MIB:.1f} | {r['out_bytes'] / MIB:.1f} | "
              f"{ws / MIB:.1f} | {growth / MIB:.1f} | {growth / (r['out_bytes'] + ws):.3f} | {bound / MIB:.1f} |")
        rows.append((f"{dtype} {sub} K{k}", growth / MIB, (r["out_bytes"] + ws) / MIB, bound / MIB))
    return rows


def leak_table():
    results = _child(test_leaks._CHILD, test_leaks.WORKLOADS)
    print("| workload | calls measured | RSS first KiB | RSS last KiB | growth KiB | bytes per call | "
          "µs per call, first chunk | µs per call, last chunk |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    total = 0
    for name, chunks, per_chunk in test_leaks.WORKLOADS:
        r = results[name]
        calls = chunks * per_chunk
        total += r["calls"]
        growth = r["rss_kib"][-1] - r["rss_kib"][0]
        t = r["seconds_per_call"]
        print(f"| {name} | {calls} | {r['rss_kib'][0]} | {r['rss_kib'][-1]} | {growth} | {growth * 1024 / calls:.1f} | "
              f"{t[0] * 1e6:.0f} | {t[-1] * 1e6:.0f} |")
    print(f"\n{total} calls in all, warm-ups included.")
    return results


def plot(mem_rows, leaks, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    names = [r[0] for r in mem_rows]
    xs = range(len(mem_rows))
    a.bar([x - 0.2 for x in xs], [r[2] for r in mem_rows], 0.4, label="output + 4:2:0 workspace")
    a.bar([x + 0.2 for x in xs], [r[1] for r in mem_rows], 0.4, label="measured peak RSS growth")
    a.scatter(list(xs), [r[3] for r in mem_rows], marker="_", s=400, color="k", label="test bound", zorder=3)
    a.set_xticks(list(xs), names, rotation=30, ha="right", fontsize=8)
    a.set_ylabel("MiB")
    a.set_title("Memory of one call vs its output")
    a.legend(fontsize=8)
    for name, chunks, per_chunk in test_leaks.WORKLOADS:
        rss = leaks[name]["rss_kib"]
        b.plot([i * per_chunk for i in range(len(rss))], [v - rss[0] for v in rss], marker="o", label=name)
    b.set_xlabel("calls after warm-up")
    b.set_ylabel("RSS change (KiB)")
    b.set_title("Resident memory over repeated calls")
    b.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"\nwrote {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--giant", action="store_true", help="add the >2^31-element image (needs ~5 GiB free)")
    ap.add_argument("--png", default=str(ROOT / "docs" / "img" / "reliability.png"))
    args = ap.parse_args()
    print("## Memory of one call\n")
    mem = memory_table(args.giant)
    print("\n## Resident memory over many calls\n")
    leaks = leak_table()
    plot(mem, leaks, Path(args.png))


if __name__ == "__main__":
    main()
