"""Timing: warm-up, then timed runs until both a minimum count and a minimum time are reached."""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def measure(fn: Callable[[], object], warmup: int = 5, min_runs: int = 20, min_seconds: float = 1.0,
            max_runs: int = 10000) -> dict:
    for _ in range(warmup):
        fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < max_runs and (len(times) < min_runs or time.perf_counter() - start < min_seconds):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return summarize(times)


def summarize(ms: list[float]) -> dict:
    s = sorted(ms)

    def pct(p: float) -> float:
        k = (len(s) - 1) * p
        lo, hi = int(k), min(int(k) + 1, len(s) - 1)
        return s[lo] + (s[hi] - s[lo]) * (k - lo)

    return {"runs": len(s), "p50_ms": pct(0.5), "p90_ms": pct(0.9), "p99_ms": pct(0.99),
            "mean_ms": statistics.fmean(s), "std_ms": statistics.pstdev(s), "min_ms": s[0]}
