"""Timing: warm-up, then timed runs until both a minimum count and a minimum time are reached."""
from __future__ import annotations

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
    import numpy as np

    a = np.asarray(ms, dtype=np.float64)
    p50, p90, p99 = (float(v) for v in np.percentile(a, [50, 90, 99]))
    return {"runs": len(a), "p50_ms": p50, "p90_ms": p90, "p99_ms": p99, "mean_ms": float(a.mean()),
            "std_ms": float(a.std()), "min_ms": float(a.min())}
