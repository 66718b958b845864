"""Timing and the machine's memory-copy bandwidth, for the throughput benchmark.

Example:
    >>> from measure import time_call
    >>> t = time_call(lambda: sum(range(1000)), "cpu", budget_s=0.01)
    >>> t.median > 0
    True
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

import torch


MIN_CPU_WALL_S = 0.01  # shortest pass whose process CPU time / wall time is recorded (the clock ticks ~4 ms)


@dataclass
class Timing:
    median: float  # seconds per call
    low: float     # fastest run
    high: float    # slowest run
    runs: int
    cpu_per_wall: float = 0.0  # median process CPU time / wall time per run (CPU only): ~threads busy

    @property
    def spread(self) -> float:
        """(slowest - fastest) / median: how noisy the repeated runs were."""
        return (self.high - self.low) / self.median if self.median > 0 else 0.0


def _once(fn: Callable, device: str, cpu: Optional[List[float]] = None) -> float:
    if device == "cuda":
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        start.record()
        fn()
        stop.record()
        torch.cuda.synchronize()
        return start.elapsed_time(stop) / 1000
    cpu_begin, begin = time.process_time(), time.perf_counter()
    fn()
    wall = time.perf_counter() - begin
    # The process clock ticks coarsely: on a pass of a few milliseconds its ratio to wall time reads 0 or
    # above the core count, so only longer passes count (a run with none reports 0).
    if cpu is not None and wall >= MIN_CPU_WALL_S:
        cpu.append((time.process_time() - cpu_begin) / wall)
    return wall


def time_call(fn: Callable, device: str, budget_s: float = 1.5, min_runs: int = 3, max_runs: int = 10,
              warmup: int = 1, warmup_s: float = 0.0) -> Timing:
    """Median time of `fn()` after untimed warm-up calls; as many runs as fit in `budget_s` (within bounds).

    Args:
        fn: one full pass of the work.
        device: "cpu" (wall clock) or "cuda" (CUDA events, synchronised).
        budget_s: time the timed runs may take together (the first run sets how many fit).
        min_runs, max_runs: bounds on the number of timed runs.
        warmup: untimed calls first (allocations, lazy imports, caches).
        warmup_s: keep warming up until this much time has passed too (at most 10 calls): on a VM, memory
            another contestant just freed can come back with host-level page faults for a second or so.

    On the CPU the result also carries the median process CPU time / wall time of the runs: about the
    number of cores the pass kept busy (a 2-thread pass near 1.0 did not get its second core, e.g. because
    another job held it, or the work serialised on the GIL).
    """
    begin, calls = time.perf_counter(), 0
    while calls < warmup or (time.perf_counter() - begin < warmup_s and calls < 10):
        fn()
        calls += 1
    cpu: List[float] = []
    times: List[float] = [_once(fn, device, cpu)]
    runs = max(min_runs, min(max_runs, int(budget_s / max(times[0], 1e-9))))
    for _ in range(runs - 1):
        times.append(_once(fn, device, cpu))
    return Timing(statistics.median(times), min(times), max(times), len(times),
                  statistics.median(cpu) if cpu else 0.0)


def time_alternating(fns: Dict[str, Callable], device: str, rounds: int = 15, warmup: int = 2) -> Dict[str, float]:
    """Median seconds per call of each of `fns`, timed in alternation: round i calls them in order, round
    i + 1 in reverse, so that a machine whose speed drifts (a shared VM) slows every one of them alike and
    their ratios hold even where the separate rows, timed minutes apart, do not.

    Args:
        fns: name -> one full pass of the work.
        device: "cpu" or "cuda" (as `time_call`).
        rounds: timed calls of each.
        warmup: untimed calls of each first.

    Example:
        >>> t = time_alternating({"a": lambda: sum(range(100)), "b": lambda: sum(range(1000))}, "cpu", rounds=3)
        >>> sorted(t) == ["a", "b"] and all(v > 0 for v in t.values())
        True
    """
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    times: Dict[str, List[float]] = {name: [] for name in names}
    for i in range(rounds):
        for name in names if i % 2 == 0 else names[::-1]:
            times[name].append(_once(fns[name], device))
    return {name: statistics.median(t) for name, t in times.items()}


def copy_bandwidth(device: str, megabytes: int = 256, runs: int = 7) -> float:
    """Memory-copy bandwidth in bytes/s (bytes read + bytes written), with torch's threads on `device`."""
    n = megabytes * (1 << 20) // 4
    src = torch.rand(n, device=device)
    dst = torch.empty_like(src)
    t = time_call(lambda: dst.copy_(src), device, budget_s=0.0, min_runs=runs, max_runs=runs, warmup=2)
    return 2 * src.numel() * src.element_size() / t.median
