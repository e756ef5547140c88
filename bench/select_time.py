"""Benchmark: `edgefit select` on the full zoo as a whole process.

Cold: an empty cost cache (the zoo is measured: torch + timm imported, 76 networks traced on the
meta device). Warm: the cache is filled; median of 5 whole-process runs. Also records whether a warm
run imports torch. Writes bench/results/select_time.json.

    .venv/bin/python bench/select_time.py
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUDGET = ROOT / "budgets" / "raspberry-pi-4.yaml"
EDGEFIT = Path(sys.executable).with_name("edgefit")


def run(env) -> float:
    t = time.perf_counter()
    r = subprocess.run([str(EDGEFIT), "select", str(BUDGET), "--json"], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    if r.returncode not in (0, 1):
        raise SystemExit(f"select failed: {r.stderr}")
    return elapsed


def main() -> None:
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "EDGEFIT_CACHE_DIR": cache}
        cold = run(env)
        run(env)  # one warm-up of the OS file cache
        warm = [run(env) for _ in range(5)]
        probe = subprocess.run(
            [sys.executable, "-c",
             "import sys\nfrom edgefit.cli import main\n"
             f"try:\n    main(['select', r'{BUDGET}', '--json'])\nexcept SystemExit:\n    pass\n"
             "print('IMPORTED_TORCH', 'torch' in sys.modules, file=sys.stderr)"],
            env=env, capture_output=True, text=True)
        imported_torch = "IMPORTED_TORCH True" in probe.stderr
    result = {
        "benchmark": "edgefit select, full zoo, whole process",
        "budget": str(BUDGET.relative_to(ROOT)),
        "cold_cache_s": round(cold, 3),
        "warm_runs_s": [round(w, 3) for w in warm],
        "warm_median_s": round(statistics.median(warm), 3),
        "warm_target_s": 1.0,
        "warm_imports_torch": imported_torch,
        "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(), "platform": platform.platform()},
        "date": time.strftime("%Y-%m-%d"),
    }
    out = ROOT / "bench" / "results" / "select_time.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
